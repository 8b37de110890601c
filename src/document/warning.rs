//! Warnings: a value the document accepts that is probably not what was
//! meant (a price area that the coordinates contradict). Placed like
//! errors, with a fix; printed by `garage validate` and logged by the
//! agent, never a reason to refuse the document.

use std::fmt;

use super::Site;

/// A located warning about an accepted document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentWarning {
    pub site: Site,
    pub message: String,
    pub fix: String,
}

impl fmt::Display for DocumentWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} warning: {} (fix: {})",
            self.site, self.message, self.fix
        )
    }
}
