//! Progress for the long steps: bars on a terminal, plain lines otherwise, nothing with `-q`.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

/// How to report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Bars and spinners.
    Terminal,
    /// One line per step.
    Lines,
    /// Errors only.
    Quiet,
}

impl Mode {
    /// Picks the mode for stderr.
    pub fn detect(quiet: bool) -> Self {
        if quiet {
            Mode::Quiet
        } else if std::io::stderr().is_terminal() {
            Mode::Terminal
        } else {
            Mode::Lines
        }
    }

    /// Prints a line unless quiet.
    pub fn line(self, msg: &str) {
        if self != Mode::Quiet {
            eprintln!("{msg}");
        }
    }

    /// A byte-counting bar (hidden unless on a terminal).
    pub fn bytes_bar(self, total: u64, msg: String) -> ProgressBar {
        if self != Mode::Terminal {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        bar.set_style(bytes_style());
        bar.set_message(msg);
        bar
    }

    /// A bar counting steps (compiled crates) under a heading line; hidden unless on a
    /// terminal, where the heading is printed once either way.
    pub fn count_bar(self, heading: &str) -> ProgressBar {
        self.line(heading);
        if self != Mode::Terminal {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("  [{bar:30}] {pos}/{len} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.enable_steady_tick(std::time::Duration::from_millis(200));
        bar
    }

    /// A spinner for a step of unknown length (hidden unless on a terminal).
    pub fn spinner(self, msg: &str) -> ProgressBar {
        if self != Mode::Terminal {
            self.line(msg);
            return ProgressBar::hidden();
        }
        let s = ProgressBar::new_spinner();
        s.set_message(msg.to_string());
        s.enable_steady_tick(std::time::Duration::from_millis(120));
        s
    }
}

/// The style of every byte-counting bar (layers, pulls).
pub fn bytes_style() -> ProgressStyle {
    ProgressStyle::with_template("{msg:30} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}
