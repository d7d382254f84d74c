//! Human and JSON output, and progress lines on standard error.

use std::time::{Duration, Instant};

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

/// A progress indicator on standard error: a line redrawn in place on a terminal, a line per
/// few seconds otherwise; nothing with `--quiet`.
pub(crate) struct Progress {
    label: &'static str,
    enabled: bool,
    tty: bool,
    last: Instant,
    shown: bool,
    n: u64,
}

impl Progress {
    pub(crate) fn new(label: &'static str, enabled: bool) -> Self {
        Self {
            label,
            enabled,
            tty: crate::stderr_is_tty(),
            last: Instant::now(),
            shown: false,
            n: 0,
        }
    }

    pub(crate) fn tick(&mut self, n: u64) {
        self.n = n;
        let every = if self.tty {
            Duration::from_millis(200)
        } else {
            Duration::from_secs(5)
        };
        if !self.enabled || self.last.elapsed() < every {
            return;
        }
        self.last = Instant::now();
        self.shown = true;
        if self.tty {
            eprint!("\r{}: {n}", self.label);
        } else {
            eprintln!("{}: {n}", self.label);
        }
    }

    /// Ends the indicator (a final count if one was shown).
    pub(crate) fn done(&mut self) {
        if self.enabled && self.shown {
            if self.tty {
                eprintln!("\r{}: {}", self.label, self.n);
            } else {
                eprintln!("{}: {} (done)", self.label, self.n);
            }
        }
        self.shown = false;
    }
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
