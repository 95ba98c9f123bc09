//! Download progress of a registry pull: one bar per blob on a terminal (several download at
//! once), a line per blob otherwise, nothing with `-q`.

use crate::progress::Mode;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget};
use oci2bin_build::source::registry::DownloadEvent;
use std::collections::HashMap;
use std::time::Instant;

/// A size for people: KB below a megabyte (configs are small).
fn human(bytes: u64) -> String {
    if bytes < 1_000_000 {
        format!("{:.1} KB", bytes as f64 / 1e3)
    } else {
        format!("{:.1} MB", bytes as f64 / 1e6)
    }
}

/// A blob being downloaded.
struct Blob {
    bar: ProgressBar,
    what: String,
    started: Instant,
}

/// Shows the downloads of one pull.
pub struct PullProgress {
    mode: Mode,
    bars: MultiProgress,
    blobs: HashMap<String, Blob>,
}

impl PullProgress {
    /// Reports in `mode`.
    pub fn new(mode: Mode) -> Self {
        let target = if mode == Mode::Terminal {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        PullProgress {
            mode,
            bars: MultiProgress::with_draw_target(target),
            blobs: HashMap::new(),
        }
    }

    /// Prints a line above the bars (or plainly), unless quiet.
    fn line(&self, msg: &str) {
        match self.mode {
            Mode::Terminal => {
                let _ = self.bars.println(msg);
            }
            mode => mode.line(msg),
        }
    }

    /// Handles one event.
    pub fn event(&mut self, e: DownloadEvent<'_>) {
        match e {
            DownloadEvent::Start { digest, what, size } => {
                let bar = self.bars.add(ProgressBar::new(size));
                bar.set_style(crate::progress::bytes_style());
                bar.set_message(format!("pull {what} {}", digest.short()));
                if self.mode == Mode::Lines {
                    self.line(&format!("  pulling {what} {digest} ({})", human(size)));
                }
                self.blobs.insert(
                    digest.to_string(),
                    Blob {
                        bar,
                        what: what.to_string(),
                        started: Instant::now(),
                    },
                );
            }
            DownloadEvent::Bytes { digest, bytes } => {
                if let Some(b) = self.blobs.get(&digest.to_string()) {
                    b.bar.inc(bytes);
                }
            }
            DownloadEvent::Retry {
                digest,
                attempt,
                resume_from,
                error,
            } => {
                let what = match self.blobs.get(&digest.to_string()) {
                    Some(b) => {
                        b.bar.set_position(resume_from);
                        b.what.clone()
                    }
                    None => "blob".into(),
                };
                self.line(&format!(
                    "  {what} {}: {error}; attempt {attempt}, resuming at byte {resume_from}",
                    digest.short()
                ));
            }
            DownloadEvent::Done { digest, size } => {
                if let Some(b) = self.blobs.remove(&digest.to_string()) {
                    b.bar.finish_and_clear();
                    self.bars.remove(&b.bar);
                    let secs = b.started.elapsed().as_secs_f64().max(1e-3);
                    self.line(&format!(
                        "  pulled {} {} ({}, {}/s)",
                        b.what,
                        digest.short(),
                        human(size),
                        human((size as f64 / secs) as u64)
                    ));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_well() {
        assert_eq!(human(1234), "1.2 KB");
        assert_eq!(human(12_345_678), "12.3 MB");
    }
}
