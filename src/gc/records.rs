//! What the node owns: every image reference one of its containers was
//! made from, with the image id and the last time it was in use (kubelet's
//! image records), kept in `<state>/gc/<store>.json` so ownership outlives
//! a restart. Only what is recorded here is ever collected.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The most references kept; past it the least recently used is forgotten
/// (forgotten means never collected, the safe side).
pub const MAX_RECORDS: usize = 4096;
/// The largest records file read.
const MAX_FILE_BYTES: u64 = 4 << 20;

/// One owned reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub id: String,
    /// Unix seconds.
    pub last_used: u64,
}

/// The node's image records and where they are kept.
#[derive(Debug)]
pub struct Records {
    path: PathBuf,
    images: BTreeMap<String, Record>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct File {
    images: BTreeMap<String, Record>,
}

impl Records {
    /// Reads the records `file` in `state_dir`/gc; a missing or unreadable
    /// file starts empty (logged: ownership is then learnt again).
    pub fn load(state_dir: &Path, file: &str) -> Records {
        let path = state_dir.join("gc").join(file);
        let images = match read(&path) {
            Ok(file) => file.images,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(err) => {
                tracing::warn!(path = %path.display(), error = %err, "starting with no image records");
                BTreeMap::new()
            }
        };
        Records { path, images }
    }

    /// `reference` (image `id`) is in use by the node now.
    pub fn touch(&mut self, reference: &str, id: &str, now: u64) {
        self.images.insert(
            reference.to_string(),
            Record {
                id: id.to_string(),
                last_used: now,
            },
        );
        self.bound();
    }

    /// `reference` is the node's; first seen `now` unless recorded already.
    pub fn note(&mut self, reference: &str, id: &str, now: u64) {
        if !self.images.contains_key(reference) {
            self.touch(reference, id, now);
        }
    }

    /// Forgets the least recently used past [`MAX_RECORDS`].
    fn bound(&mut self) {
        while self.images.len() > MAX_RECORDS {
            let oldest = self
                .images
                .iter()
                .min_by_key(|(_, record)| record.last_used)
                .map(|(reference, _)| reference.clone());
            match oldest {
                Some(reference) => self.images.remove(&reference),
                None => break,
            };
        }
    }

    pub fn forget(&mut self, reference: &str) {
        self.images.remove(reference);
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &Record)> {
        self.images.iter()
    }

    /// Writes the records (a temporary file renamed over the old).
    pub fn save(&self) -> std::io::Result<()> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = File {
            images: self.images.clone(),
        };
        let text = serde_json::to_vec_pretty(&file).map_err(std::io::Error::other)?;
        let temporary = self.path.with_extension("json.tmp");
        std::fs::write(&temporary, text)?;
        std::fs::rename(&temporary, &self.path)
    }
}

fn read(path: &Path) -> std::io::Result<File> {
    use std::io::Read;
    let mut text = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_FILE_BYTES)
        .read_to_end(&mut text)?;
    serde_json::from_slice(&text)
        .map_err(|err| std::io::Error::new(std::io::ErrorKind::InvalidData, err))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_survive_a_restart_and_stay_bounded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut records = Records::load(dir.path(), "images.json");
        records.touch("worker:1", "sha256:a", 10);
        records.touch("worker:2", "sha256:b", 20);
        records.save().expect("save");
        let again = Records::load(dir.path(), "images.json");
        let seen: Vec<_> = again
            .iter()
            .map(|(r, rec)| (r.as_str(), rec.last_used))
            .collect();
        assert_eq!(seen, [("worker:1", 10), ("worker:2", 20)]);

        let mut many = Records::load(dir.path(), "images.json");
        for i in 0..(MAX_RECORDS as u64 + 5) {
            many.touch(&format!("image:{i}"), "sha256:x", 100 + i);
        }
        assert_eq!(many.iter().count(), MAX_RECORDS);
        assert!(
            many.iter().all(|(r, _)| r != "worker:1"),
            "the least recently used went first"
        );
    }

    #[test]
    fn a_corrupt_file_starts_empty() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("gc")).expect("mkdir");
        std::fs::write(dir.path().join("gc/images.json"), "{not json").expect("write");
        assert_eq!(Records::load(dir.path(), "images.json").iter().count(), 0);
    }
}
