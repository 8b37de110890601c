//! A job's output as the runner keeps it: both streams interleaved up to a
//! size cap (the rest is counted, not kept), plus the results extracted
//! from complete lines as they pass, so the cap never hides a result.

use std::collections::BTreeMap;

use serde::Serialize;

use super::engine::{LogChunk, LogStream};
use super::job::Extractor;

/// Default cap on the log text kept per op.
pub const DEFAULT_LOG_CAP: usize = 1024 * 1024;

/// Captured output of one op.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CapturedLogs {
    /// The first `cap` bytes of output (lossy UTF-8).
    pub text: String,
    /// All bytes the op wrote.
    pub bytes: u64,
    /// True when `text` is not everything.
    pub truncated: bool,
}

/// Collects chunks; extracts results line by line.
#[derive(Debug)]
pub struct LogCapture {
    cap: usize,
    kept: Vec<u8>,
    total: u64,
    /// Incomplete last line per stream.
    partial: [Vec<u8>; 2],
    extractors: Vec<Extractor>,
    results: BTreeMap<String, Option<String>>,
}

impl LogCapture {
    pub fn new(cap: usize, extractors: Vec<Extractor>) -> Self {
        let results = extractors.iter().map(|e| (e.name.clone(), None)).collect();
        LogCapture {
            cap,
            kept: Vec::new(),
            total: 0,
            partial: [Vec::new(), Vec::new()],
            extractors,
            results,
        }
    }

    pub fn push(&mut self, chunk: &LogChunk) {
        self.total += chunk.bytes.len() as u64;
        let room = self.cap.saturating_sub(self.kept.len());
        self.kept
            .extend_from_slice(&chunk.bytes[..room.min(chunk.bytes.len())]);
        let slot = stream_index(chunk.stream);
        let mut buffer = std::mem::take(&mut self.partial[slot]);
        buffer.extend_from_slice(&chunk.bytes);
        let mut start = 0;
        while let Some(end) = buffer[start..].iter().position(|&b| b == b'\n') {
            let line = String::from_utf8_lossy(&buffer[start..start + end]).into_owned();
            self.line(chunk.stream, line.trim_end_matches('\r'));
            start += end + 1;
        }
        // A line longer than the cap is matched in pieces rather than kept whole.
        let rest = buffer.split_off(start);
        if rest.len() > self.cap {
            let line = String::from_utf8_lossy(&rest).into_owned();
            self.line(chunk.stream, &line);
        } else {
            self.partial[slot] = rest;
        }
    }

    fn line(&mut self, stream: LogStream, line: &str) {
        for extractor in &self.extractors {
            let wanted = match stream {
                LogStream::Stdout => extractor.stdout,
                LogStream::Stderr => extractor.stderr,
            };
            if !wanted {
                continue;
            }
            if let Some(captures) = extractor.regex.captures(line) {
                let value = captures
                    .get(1)
                    .or_else(|| captures.get(0))
                    .map(|m| m.as_str().to_owned());
                self.results.insert(extractor.name.clone(), value);
            }
        }
    }

    /// Ends the capture: unterminated last lines count as lines.
    pub fn finish(mut self) -> (CapturedLogs, BTreeMap<String, Option<String>>) {
        for (slot, stream) in [(0, LogStream::Stdout), (1, LogStream::Stderr)] {
            let rest = std::mem::take(&mut self.partial[slot]);
            if !rest.is_empty() {
                let line = String::from_utf8_lossy(&rest).into_owned();
                self.line(stream, &line);
            }
        }
        let logs = CapturedLogs {
            text: String::from_utf8_lossy(&self.kept).into_owned(),
            bytes: self.total,
            truncated: self.total > self.kept.len() as u64,
        };
        (logs, self.results)
    }
}

fn stream_index(stream: LogStream) -> usize {
    match stream {
        LogStream::Stdout => 0,
        LogStream::Stderr => 1,
    }
}

#[cfg(test)]
#[path = "logs_tests.rs"]
mod tests;
