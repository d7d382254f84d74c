//! Human and JSON output, and progress bars on standard error.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

/// Where reports go: text by default, one JSON document with `--json`.
pub(crate) struct Out {
    pub(crate) json: bool,
}

impl Out {
    pub(crate) fn new(json: bool) -> Self {
        Self { json }
    }

    /// Prints `value` as JSON (with `--json`) or `text`.
    pub(crate) fn report<T: Serialize + ?Sized>(&self, value: &T, text: &str) {
        if self.json {
            self.json_value(value);
        } else {
            println!("{text}");
        }
        crate::flush_stdout();
    }

    #[allow(clippy::unused_self)] // a method, so that every output goes through `Out`
    pub(crate) fn json_value<T: Serialize + ?Sized>(&self, value: &T) {
        match serde_json::to_string_pretty(value) {
            Ok(s) => println!("{s}"),
            Err(e) => eprintln!("authdb: cannot encode the report: {e}"),
        }
    }
}

/// A progress bar (or, with no known total, a counting spinner) on standard error, drawn by
/// `indicatif`. Hidden when standard error is not a terminal, with `--json` and with
/// `--quiet`: scripts see only the report. Cleared when done or dropped, so that it never
/// mixes with the report.
pub(crate) struct Progress {
    bar: ProgressBar,
}

/// Redraws per second at most: enough to look alive, cheap on a slow terminal.
const REFRESH_HZ: u8 = 8;

impl Progress {
    /// A hidden indicator (for work that reports nothing).
    pub(crate) fn hidden() -> Self {
        Self {
            bar: ProgressBar::hidden(),
        }
    }

    fn new(shown: bool, len: Option<u64>, style: &str, label: &str) -> Self {
        if !shown {
            return Self::hidden();
        }
        let bar =
            ProgressBar::with_draw_target(len, ProgressDrawTarget::stderr_with_hz(REFRESH_HZ));
        bar.set_style(
            ProgressStyle::with_template(style).unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_message(label.to_owned());
        if len.is_none() {
            bar.enable_steady_tick(Duration::from_millis(120));
        }
        Self { bar }
    }

    /// A spinner, for work that reports no count.
    pub(crate) fn spinner(shown: bool, label: &str) -> Self {
        Self::new(shown, None, "{spinner} {msg} ({elapsed})", label)
    }

    /// A spinner counting `unit`s, for work whose total is not known ahead.
    pub(crate) fn counter(shown: bool, label: &str, unit: &str) -> Self {
        Self::new(
            shown,
            None,
            &format!("{{spinner}} {{msg}}: {{human_pos}} {unit} ({{elapsed}})"),
            label,
        )
    }

    /// A bar towards `total` `unit`s.
    pub(crate) fn bar(shown: bool, label: &str, total: u64, unit: &str) -> Self {
        Self::new(
            shown,
            Some(total),
            &format!(
                "{{msg}} [{{bar:32}}] {{human_pos}}/{{human_len}} {unit} ({{percent}}%, eta {{eta}})"
            ),
            label,
        )
    }

    /// A bar towards `total` bytes (of an input file).
    pub(crate) fn bytes(shown: bool, label: &str, total: u64) -> Self {
        Self::new(
            shown,
            Some(total),
            "{msg} [{bar:32}] {bytes}/{total_bytes} ({bytes_per_sec}, eta {eta})",
            label,
        )
    }

    /// Moves to `n`; a count past the expected total stretches the bar.
    pub(crate) fn set(&self, n: u64) {
        if self.bar.length().is_some_and(|len| n > len) {
            self.bar.set_length(n);
        }
        self.bar.set_position(n);
    }

    /// Turns into a bar towards `total` (a second phase whose size the first found out).
    pub(crate) fn into_bar(self, shown: bool, label: &str, total: u64, unit: &str) -> Self {
        drop(self);
        Self::bar(shown, label, total, unit)
    }

    /// A reader that moves this (byte) bar as it is read.
    pub(crate) fn wrap_read<R: std::io::Read>(&self, r: R) -> impl std::io::Read + use<R> {
        self.bar.wrap_read(r)
    }

    /// Whether anything is drawn.
    #[cfg(test)]
    pub(crate) fn is_hidden(&self) -> bool {
        self.bar.is_hidden()
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

/// Whether progress is drawn: on a terminal, unless `--json` or `--quiet`.
pub(crate) fn progress_shown(json: bool, quiet: bool) -> bool {
    !json && !quiet && crate::stderr_is_tty()
}

/// `1536` → `1.5 KiB`.
pub(crate) fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} bytes")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::Progress;

    #[test]
    fn hidden_unless_shown() {
        for p in [
            Progress::counter(false, "backup", "entries"),
            Progress::bar(false, "export", 10, "records"),
            Progress::bytes(false, "import", 10),
            Progress::spinner(false, "reading"),
        ] {
            assert!(p.is_hidden());
            p.set(11);
        }
        // --json and --quiet hide it whatever standard error is.
        assert!(!super::progress_shown(true, false));
        assert!(!super::progress_shown(false, true));
    }

    #[test]
    fn a_count_past_the_total_stretches_the_bar() {
        let p = Progress {
            bar: indicatif::ProgressBar::hidden(),
        };
        p.bar.set_length(10);
        p.set(25);
        assert_eq!(p.bar.length(), Some(25));
        assert_eq!(p.bar.position(), 25);
    }
}
