//! Download progress for hf-hub as log lines.

use std::time::{Duration, Instant};

use hf_hub::api::tokio::Progress;

/// bar): one at the start, one per 10 %, one at the end, with the rate.
#[derive(Debug, Clone, Default)]
pub(super) struct LogProgress {
    file: String,
    total: usize,
    done: usize,
    reported_tenths: usize,
    started: Option<Instant>,
}

impl LogProgress {
    fn rate_mib_s(&self) -> f64 {
        let secs = self
            .started
            .map_or(Duration::ZERO, |s| s.elapsed())
            .as_secs_f64()
            .max(1e-3);
        self.done as f64 / secs / (1024.0 * 1024.0)
    }
}

impl Progress for LogProgress {
    async fn init(&mut self, size: usize, filename: &str) {
        self.file = filename.to_string();
        self.total = size;
        self.started = Some(Instant::now());
        tracing::info!(file = %self.file, bytes = size, "download started");
    }

    async fn update(&mut self, size: usize) {
        self.done += size;
        let tenths = (self.done * 10).checked_div(self.total).unwrap_or(10);
        if tenths > self.reported_tenths && tenths < 10 {
            self.reported_tenths = tenths;
            tracing::info!(
                file = %self.file,
                percent = tenths * 10,
                mib_per_s = format!("{:.1}", self.rate_mib_s()),
                "downloading"
            );
        }
    }

    async fn finish(&mut self) {
        tracing::info!(
            file = %self.file,
            bytes = self.total,
            mib_per_s = format!("{:.1}", self.rate_mib_s()),
            "download finished"
        );
    }
}
