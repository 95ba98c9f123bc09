//! Messages to the user on stderr, prefixed with the binary's name like any Unix tool, so a
//! line from the runtime cannot be mistaken for one from the workload.

use std::fmt::Display;
use std::io::Write;

/// Writes one whole line to stderr in a single `write`, so lines from the runtime, its init
/// and the workload do not interleave mid-line.
fn emit(mut line: String) {
    line.push('\n');
    let _ = std::io::stderr().write_all(line.as_bytes());
}

/// Writes `--debug` notes and errors for one run.
#[derive(Clone, Debug)]
pub struct Reporter {
    /// The executable's name (`redis_latest`), the prefix of every line.
    pub program: String,
    /// Whether `--debug` notes are printed.
    pub debug: bool,
}

impl Reporter {
    /// A reporter for `program`, printing debug notes when `debug` is set.
    pub fn new(program: impl Into<String>, debug: bool) -> Self {
        Self {
            program: program.into(),
            debug,
        }
    }

    /// Prints a `--debug` note (nothing without `--debug`).
    pub fn debug(&self, message: impl Display) {
        if self.debug {
            emit(format!("{}: debug: {message}", self.program));
        }
    }

    /// Prints a warning: something fell back to a slower or less faithful way.
    pub fn warn(&self, message: impl Display) {
        emit(format!("{}: warning: {message}", self.program));
    }

    /// Prints an error with its chain of causes, one `caused by` line each.
    pub fn error(&self, error: &(dyn std::error::Error + 'static)) {
        emit(self.format_error(error));
    }

    /// The text [`Reporter::error`] prints.
    pub fn format_error(&self, error: &(dyn std::error::Error + 'static)) -> String {
        let mut out = format!("{}: error: {error}", self.program);
        let mut cause = error.source();
        while let Some(err) = cause {
            // `#[error(transparent)]` and `{source}` in a message repeat the cause: skip it.
            let text = err.to_string();
            if !out.contains(&text) {
                out.push_str(&format!("\n  caused by: {text}"));
            }
            cause = err.source();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer failed")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn error_lists_causes_once() {
        let r = Reporter::new("img", false);
        let err = Outer(std::io::Error::other("disk on fire"));
        assert_eq!(
            r.format_error(&err),
            "img: error: outer failed\n  caused by: disk on fire"
        );
        let err = std::io::Error::other("plain");
        assert_eq!(r.format_error(&err), "img: error: plain");
    }
}
