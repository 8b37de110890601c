//! Log capture: the text kept is capped, results are extracted from all of it.

use std::path::Path;

use crate::jobs::engine::{LogChunk, LogStream};
use crate::jobs::logs::LogCapture;
use crate::jobs::parse;

fn chunk(stream: LogStream, text: &str) -> LogChunk {
    LogChunk {
        stream,
        bytes: text.as_bytes().to_vec(),
    }
}

#[test]
fn capture_caps_text_but_extracts_from_everything() {
    let text = "version: \"0.1\"\ntype: container\nops:\n  - type: container/run\n    id: a\n    results:\n      loss: 'loss=([0-9.]+)'\n      err: {regex: 'E: (.*)', logType: [stderr]}\n    args: {image: busybox}\n";
    let job = parse(text, Path::new("j.yaml")).expect("valid");
    let mut capture = LogCapture::new(16, job.ops[0].results.clone());
    capture.push(&chunk(LogStream::Stdout, "step 1 loss=0.9\nstep 2 lo"));
    capture.push(&chunk(LogStream::Stderr, "E: disk\n"));
    capture.push(&chunk(LogStream::Stdout, "ss=0.5\nE: not stderr\n"));
    let (logs, results) = capture.finish();
    assert_eq!(logs.text, "step 1 loss=0.9\n");
    assert!(logs.truncated);
    assert_eq!(logs.bytes, 54);
    assert_eq!(results["loss"].as_deref(), Some("0.5"));
    assert_eq!(results["err"].as_deref(), Some("disk"));
}
