//! Files an op left in its output directory, read from the tar archive the
//! engine returns, with a cap on what is kept.

use std::io::Read;

use serde::Serialize;

/// Default cap on the archive read from an op's output directory.
pub const DEFAULT_OUTPUT_CAP: usize = 4 * 1024 * 1024;

/// One regular file from the output directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutputFile {
    /// Path relative to the output directory.
    pub path: String,
    pub size: u64,
    /// The content when it is UTF-8 text and was read whole.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// True when the content is missing because the archive was cut at the cap.
    pub truncated: bool,
}

/// Reads the regular files of `archive` (a tar of the directory itself, so
/// every path starts with its name). A cut archive yields what is complete.
pub fn files(archive: &[u8]) -> Vec<OutputFile> {
    let mut out = Vec::new();
    let mut tar = tar::Archive::new(archive);
    let Ok(entries) = tar.entries() else {
        return out;
    };
    for entry in entries {
        let Ok(mut entry) = entry else { break };
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let Ok(path) = entry.path().map(|p| p.into_owned()) else {
            continue;
        };
        // Drop the directory's own name: `output/a/b.txt` → `a/b.txt`.
        let relative: std::path::PathBuf = path.components().skip(1).collect();
        let size = entry.header().size().unwrap_or(0);
        let mut bytes = Vec::new();
        let complete = entry.read_to_end(&mut bytes).is_ok() && bytes.len() as u64 == size;
        out.push(OutputFile {
            path: relative.to_string_lossy().into_owned(),
            size,
            content: complete.then(|| String::from_utf8(bytes).ok()).flatten(),
            truncated: !complete,
        });
    }
    out
}
