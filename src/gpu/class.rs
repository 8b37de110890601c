//! Node classes for the coordinator's markets: a GPU's NVML name normalised
//! to a short, stable slug (`rtx-4090`, `h100`, `t4`), and `cpu` for a host
//! without one. Pure string work, so the coordinator can classify names it
//! receives in benchmark reports without NVML.

/// The class of a host with no GPU.
pub const CPU_CLASS: &str = "cpu";

/// Words that name the vendor or brand line rather than the model.
const BRAND: &[&str] = &[
    "nvidia",
    "geforce",
    "tesla",
    "amd",
    "radeon",
    "intel",
    "gpu",
    "graphics",
    "generation",
    "tm",
];

/// Whether `word` describes memory or form factor (`80gb`, `hbm3`,
/// `pcie`, `sxm5`, `nvl`), which the class leaves out: one market per model.
fn is_variant(word: &str) -> bool {
    let size = word
        .strip_suffix("gb")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    let tagged = |prefix: &str| {
        word.strip_prefix(prefix)
            .is_some_and(|rest| rest.bytes().all(|b| b.is_ascii_alphanumeric()))
    };
    size || tagged("hbm") || tagged("gddr") || tagged("sxm") || tagged("pcie") || word == "nvl"
}

/// The market class of a GPU named `name` by NVML: lowercase words of
/// letters and digits joined by `-`, without vendor, brand, memory size,
/// memory type or form factor. "NVIDIA GeForce RTX 4090" → `rtx-4090`,
/// "NVIDIA H100 80GB HBM3" → `h100`, "Tesla T4" → `t4`. A name with
/// nothing left is `unknown-gpu`.
pub fn gpu_class(name: &str) -> String {
    let lower = name.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty() && !BRAND.contains(w) && !is_variant(w))
        .collect();
    if words.is_empty() {
        "unknown-gpu".to_owned()
    } else {
        words.join("-")
    }
}

/// The class of a host with GPUs named `names`: the first GPU's class, or
/// [`CPU_CLASS`] when there are none.
pub fn host_class<'a>(mut names: impl Iterator<Item = &'a str>) -> String {
    names.next().map_or_else(|| CPU_CLASS.to_owned(), gpu_class)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typical_nvml_names_become_short_classes() {
        for (name, class) in [
            ("NVIDIA GeForce RTX 4090", "rtx-4090"),
            ("NVIDIA GeForce RTX 4090 Laptop GPU", "rtx-4090-laptop"),
            ("NVIDIA GeForce RTX 3060 Ti", "rtx-3060-ti"),
            ("NVIDIA GeForce GTX 1080 Ti", "gtx-1080-ti"),
            ("NVIDIA H100 80GB HBM3", "h100"),
            ("NVIDIA H100 PCIe", "h100"),
            ("NVIDIA H100 NVL", "h100"),
            ("NVIDIA H200", "h200"),
            ("NVIDIA A100-SXM4-40GB", "a100"),
            ("NVIDIA A100 80GB PCIe", "a100"),
            ("Tesla T4", "t4"),
            ("AMD Radeon RX 7900 XTX", "rx-7900-xtx"),
            ("rtx-4090", "rtx-4090"),
            ("Tesla V100-SXM2-16GB", "v100"),
            ("NVIDIA L4", "l4"),
            ("NVIDIA RTX A6000", "rtx-a6000"),
            ("NVIDIA RTX 6000 Ada Generation", "rtx-6000-ada"),
            ("Quadro RTX 8000", "quadro-rtx-8000"),
            ("NVIDIA", "unknown-gpu"),
            ("", "unknown-gpu"),
        ] {
            assert_eq!(gpu_class(name), class, "{name:?}");
        }
    }

    #[test]
    fn a_host_is_classed_by_its_first_gpu_or_as_cpu() {
        assert_eq!(host_class(std::iter::empty()), "cpu");
        assert_eq!(
            host_class(["NVIDIA GeForce RTX 4090", "Tesla T4"].into_iter()),
            "rtx-4090"
        );
    }
}
