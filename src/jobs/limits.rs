//! Whether the podman host enforces the jobs' memory, CPU and pids limits,
//! as the podman image found out at its start (cgroup v2 it can write: yes;
//! a read-only cgroup v1 tree, as on CI hosts: no), and the words every job
//! report carries about it. Limits are set on every container either way.

pub use crate::spec::limits::DEFAULT_PIDS_LIMIT;

/// What the podman host said about limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enforcement {
    /// How they are enforced, in words.
    Enforced(String),
    /// Why not, in words.
    NotEnforced(String),
}

const ENFORCED: &str = "enforced:";
const NOT_ENFORCED: &str = "not enforced:";

impl Enforcement {
    /// Reads the verdict line the podman image writes at start
    /// (`enforced: …` or `not enforced: …`); anything else is not enforced.
    pub fn parse(verdict: &str) -> Enforcement {
        let line = verdict.lines().next().unwrap_or_default().trim();
        if let Some(how) = line.strip_prefix(ENFORCED) {
            Enforcement::Enforced(how.trim().to_owned())
        } else if let Some(why) = line.strip_prefix(NOT_ENFORCED) {
            Enforcement::NotEnforced(why.trim().to_owned())
        } else {
            Enforcement::NotEnforced(format!(
                "the podman host's limits verdict `{line}` is not understood (fix: use the \
                 podman image built from this release's docker/podman)"
            ))
        }
    }

    pub fn is_enforced(&self) -> bool {
        matches!(self, Enforcement::Enforced(_))
    }

    /// The report's `limits` field: `enforced: …` or `not enforced: …`.
    pub fn describe(&self) -> String {
        match self {
            Enforcement::Enforced(how) => format!("{ENFORCED} {how}"),
            Enforcement::NotEnforced(why) => format!("{NOT_ENFORCED} {why}"),
        }
    }
}
