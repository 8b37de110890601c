//! The host's memory as `/proc/meminfo` says it: for the benchmark's host
//! facts and for the worker, which refuses a model file larger than the
//! memory it could be read into (issue 9, C14).

use std::path::{Path, PathBuf};

/// What `/proc/meminfo` says, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemInfo {
    pub total_bytes: u64,
    pub available_bytes: u64,
}

/// Parses `/proc/meminfo` (`MemTotal:  24576000 kB`); `None` without
/// `MemTotal`. Kernels before 3.14 have no `MemAvailable`: then `MemFree`.
pub fn parse_meminfo(text: &str) -> Option<MemInfo> {
    let field = |name: &str| {
        text.lines().find_map(|line| {
            let rest = line.strip_prefix(name)?.strip_prefix(':')?;
            let mut parts = rest.split_whitespace();
            let value: u64 = parts.next()?.parse().ok()?;
            match parts.next() {
                Some("kB") => Some(value * 1024),
                None => Some(value),
                Some(_) => None,
            }
        })
    };
    Some(MemInfo {
        total_bytes: field("MemTotal")?,
        available_bytes: field("MemAvailable").or_else(|| field("MemFree"))?,
    })
}

/// This host's memory; `None` where `/proc/meminfo` cannot be read.
pub fn read() -> Option<MemInfo> {
    parse_meminfo(&std::fs::read_to_string("/proc/meminfo").ok()?)
}

/// A file that would not fit in the memory available to read it into.
#[derive(Debug, thiserror::Error)]
#[error("{} is {file_bytes} bytes, more than the {available_bytes} bytes of memory available to load it (fix: use a smaller or more quantised model, or free memory; a sparse or truncated download also shows this)", path.display())]
pub struct TooLarge {
    pub path: PathBuf,
    pub file_bytes: u64,
    pub available_bytes: u64,
}

/// Checks, before a file is read whole, that its length fits in the memory
/// available (`available`, from [`read`] in production); a file of unknown
/// length or a host of unknown memory passes.
pub fn check_fits(path: &Path, available: Option<MemInfo>) -> Result<(), TooLarge> {
    let (Ok(metadata), Some(memory)) = (std::fs::metadata(path), available) else {
        return Ok(());
    };
    if metadata.len() > memory.available_bytes {
        return Err(TooLarge {
            path: path.to_owned(),
            file_bytes: metadata.len(),
            available_bytes: memory.available_bytes,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_reads_kilobytes_and_falls_back_to_memfree() {
        let text =
            "MemTotal:       24576000 kB\nMemFree:         1000 kB\nMemAvailable:   20480000 kB\n";
        assert_eq!(
            parse_meminfo(text),
            Some(MemInfo {
                total_bytes: 24_576_000 * 1024,
                available_bytes: 20_480_000 * 1024,
            })
        );
        let old_kernel = "MemTotal: 2048 kB\nMemFree: 1024 kB\n";
        assert_eq!(
            parse_meminfo(old_kernel).map(|m| m.available_bytes),
            Some(1024 * 1024)
        );
        assert_eq!(parse_meminfo("MemFree: 1 kB\n"), None);
        assert_eq!(parse_meminfo("MemTotal: lots\n"), None);
    }

    #[test]
    fn a_sparse_file_larger_than_memory_is_refused_before_it_is_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sparse.gguf");
        let file = std::fs::File::create(&path).expect("create");
        // 26 GB apparent size, a few blocks on disk: the sparse GGUF.
        file.set_len(26 << 30).expect("set_len");
        let memory = Some(MemInfo {
            total_bytes: 24 << 30,
            available_bytes: 20 << 30,
        });
        let err = check_fits(&path, memory).expect_err("refused");
        assert_eq!((err.file_bytes, err.available_bytes), (26 << 30, 20 << 30));
        assert!(
            err.to_string().contains("sparse.gguf is 27917287424 bytes"),
            "{err}"
        );
        let small = dir.path().join("small.gguf");
        std::fs::write(&small, b"GGUF").expect("write");
        assert!(check_fits(&small, memory).is_ok());
        assert!(check_fits(&path, None).is_ok());
    }
}
