//! `spec.podman.jobs.hostImages`: the image patterns a node lets jobs copy
//! from the host's Docker engine. Plain data the spec validates and the job
//! runner consults (`crate::jobs::images`).

use glob::{MatchOptions, Pattern};

/// `spec.podman.jobs.hostImages`: image references the node lets jobs copy
/// from the host's Docker engine. `*` and `?` stay within one `/` segment,
/// `**` spans segments; the reference is matched as the job writes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostImages(Vec<Pattern>);

/// A pattern that does not parse, with its index in the list.
#[derive(Debug, thiserror::Error)]
#[error("pattern {index} `{pattern}` is not a valid image pattern: {message}")]
pub struct PatternError {
    pub index: usize,
    pub pattern: String,
    pub message: String,
}

const OPTIONS: MatchOptions = MatchOptions {
    case_sensitive: true,
    require_literal_separator: true,
    require_literal_leading_dot: false,
};

impl HostImages {
    pub fn parse(patterns: &[String]) -> Result<HostImages, PatternError> {
        patterns
            .iter()
            .enumerate()
            .map(|(index, text)| {
                Pattern::new(text).map_err(|err| PatternError {
                    index,
                    pattern: text.clone(),
                    message: err.msg.to_owned(),
                })
            })
            .collect::<Result<_, _>>()
            .map(HostImages)
    }

    /// True when `image` may be copied from the host engine.
    pub fn allows(&self, image: &str) -> bool {
        self.0.iter().any(|p| p.matches_with(image, OPTIONS))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::HostImages;

    fn patterns(list: &[&str]) -> HostImages {
        HostImages::parse(&list.iter().map(|p| p.to_string()).collect::<Vec<_>>())
            .expect("valid patterns")
    }

    #[test]
    fn star_stays_in_one_segment_and_double_star_spans_them() {
        let host = patterns(&["garage-test/*", "myorg/**"]);
        assert!(host.allows("garage-test/busybox:1"));
        assert!(!host.allows("garage-test/deep/busybox:1"));
        assert!(host.allows("myorg/team/model:1.2"));
        assert!(!host.allows("busybox:1"));
        assert!(!HostImages::default().allows("garage-test/busybox:1"));
    }

    #[test]
    fn a_bad_pattern_in_the_node_spec_is_located() {
        let text = "apiVersion: garage.ai/v1alpha1\nkind: Node\nmetadata:\n  name: n\nspec:\n  podman:\n    jobs:\n      hostImages: [\"ok/*\", \"bad[\"]\n";
        let err = crate::spec::parse(text, Path::new("node.yaml")).expect_err("refused");
        let message = err.to_string();
        assert!(
            message.starts_with("node.yaml:8:")
                && message.contains("spec.podman.jobs.hostImages[1]")
                && message.contains("pattern 1 `bad[` is not a valid image pattern"),
            "{message}"
        );
    }
}
