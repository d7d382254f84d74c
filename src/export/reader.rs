//! Reading an export: [`read_export`] checks the header, turns every line into a checked
//! [`ExportRecord`] and hands it to an [`ImportSink`] (the backend, which stores it), names
//! the line of the first problem, and checks the end line's counts.

use std::io::BufRead;

use crate::backup::PROGRESS_EVERY;
use crate::error::Error;

use super::counts::ExportCounts;
use super::error::ImportError;
use super::lines::{EXPORT_FORMAT, EXPORT_VERSION, Header, Line};
use super::record::ExportRecord;

/// The longest line import accepts, in bytes (the largest record authdb can store is well
/// below it, even with every character escaped).
pub const MAX_IMPORT_LINE_BYTES: usize = 1024 * 1024;

/// Where [`read_export`] puts the records it reads: a backend's import, inside the one
/// transaction that makes the import all or nothing.
///
/// Each record has passed the checks every backend shares (field limits, well-formed
/// hashes, PHC strings, sealed values and times) and comes in export order, so its user (if
/// any) came before it. The sink checks what depends on the data already there — duplicate
/// keys, the record's user being present — and reports those with
/// [`ExportRecord::refused`] so that every backend words them alike. An error stops the
/// import; the reader adds the line number, and the caller must then write nothing (roll
/// back).
pub trait ImportSink {
    /// Stores one record (or, if the sink documents it, deliberately skips it).
    fn put(&mut self, record: ExportRecord) -> Result<(), ImportError>;
}

/// Reads an export from `input` into `sink`: the header first (the format and its version),
/// then every record line in turn, then the end line, whose counts must match the records
/// read; nothing but blank space may follow it. Calls `progress` with the number of records
/// read so far every few thousand records and at the end.
///
/// Returns the counts of the records read (and handed to `sink`). On the first problem it
/// stops with an [`ImportError`] naming the line; records handed to `sink` before it must
/// then be discarded by the caller.
pub fn read_export<S: ImportSink + ?Sized>(
    input: impl BufRead,
    sink: &mut S,
    mut progress: impl FnMut(u64),
) -> Result<ExportCounts, ImportError> {
    let mut lines = LineReader {
        r: input,
        n: 0,
        max: MAX_IMPORT_LINE_BYTES,
    };
    let Some(first) = lines.next_line()? else {
        return Err(ImportError::at(
            1,
            "the input is empty: expected the header of an authdb export",
        ));
    };
    check_header(&first)?;
    let mut counts = ExportCounts::default();
    loop {
        let Some(bytes) = lines.next_line()? else {
            return Err(ImportError::at(
                lines.n + 1,
                "the input ends without its end line: the export is truncated",
            ));
        };
        let n = lines.n;
        let at_line = |mut e: ImportError| {
            e.line = Some(n);
            e
        };
        let line: Line = serde_json::from_slice(&bytes)
            .map_err(|e| ImportError::at(n, format!("not a valid record: {}", json_problem(&e))))?;
        if let Line::End(end) = line {
            if end.counts != counts {
                return Err(ImportError::at(
                    n,
                    format!(
                        "the end line counts {} records but the export holds {}: the export is \
                         incomplete or was edited",
                        end.counts.total(),
                        counts.total()
                    ),
                ));
            }
            if let Some(extra) = lines.next_line()? {
                if extra.iter().all(u8::is_ascii_whitespace) && lines.next_line()?.is_none() {
                    break;
                }
                return Err(ImportError::at(lines.n, "a line after the end line"));
            }
            break;
        }
        let Some(record) = line.into_record().map_err(at_line)? else {
            continue;
        };
        counts.count(&record);
        sink.put(record).map_err(at_line)?;
        if counts.total().is_multiple_of(PROGRESS_EVERY) {
            progress(counts.total());
        }
    }
    progress(counts.total());
    Ok(counts)
}

/// Reads lines of at most `max` bytes (without the newline), counting them.
struct LineReader<R> {
    r: R,
    n: u64,
    max: usize,
}

impl<R: BufRead> LineReader<R> {
    fn next_line(&mut self) -> Result<Option<Vec<u8>>, ImportError> {
        let mut buf = Vec::new();
        let line_no = self.n + 1;
        loop {
            let avail = self
                .r
                .fill_buf()
                .map_err(|e| ImportError::from(Error::from(e)))?;
            if avail.is_empty() {
                if buf.is_empty() {
                    return Ok(None);
                }
                break;
            }
            let (take, done) = match avail.iter().position(|&b| b == b'\n') {
                Some(i) => (i, true),
                None => (avail.len(), false),
            };
            if buf.len() + take > self.max {
                return Err(ImportError::at(
                    line_no,
                    format!("the line is longer than the limit of {} bytes", self.max),
                ));
            }
            buf.extend_from_slice(avail.get(..take).unwrap_or_default());
            self.r.consume(if done { take + 1 } else { take });
            if done {
                break;
            }
        }
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
        self.n = line_no;
        Ok(Some(buf))
    }
}

/// A serde_json error with every quoted value cut out (a value may be a hash or a sealed
/// token); field names (in backquotes) and positions are kept.
fn json_problem(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    let mut out = String::with_capacity(msg.len());
    let mut quoted = false;
    for ch in msg.chars() {
        if ch == '"' {
            if !quoted {
                out.push_str("\"…\"");
            }
            quoted = !quoted;
        } else if !quoted {
            out.push(ch);
        }
    }
    // serde_json appends " at line 1 column N": the line is ours to name.
    match out.rfind(" at line 1 column ") {
        Some(i) => format!(
            "{} (column {})",
            out.get(..i).unwrap_or_default(),
            e.column()
        ),
        None => out,
    }
}

fn check_header(bytes: &[u8]) -> Result<(), ImportError> {
    let not_export = || {
        ImportError::at(
            1,
            format!(
                "not an authdb export: the first line must be the header {{\"format\":\"{EXPORT_FORMAT}\",…}}"
            ),
        )
    };
    let v: serde_json::Value = serde_json::from_slice(bytes).map_err(|_| not_export())?;
    if v.get("format").and_then(serde_json::Value::as_str) != Some(EXPORT_FORMAT) {
        return Err(not_export());
    }
    match v.get("version").and_then(serde_json::Value::as_u64) {
        Some(EXPORT_VERSION) => {}
        Some(other) => {
            return Err(ImportError::at(
                1,
                format!(
                    "export format version {other} is not supported (this authdb reads version \
                     {EXPORT_VERSION})"
                ),
            ));
        }
        None => return Err(ImportError::at(1, "the header has no format version")),
    }
    serde_json::from_value::<Header>(v)
        .map_err(|e| ImportError::at(1, format!("bad header: {}", json_problem(&e))))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_problems_hide_values() {
        let Err(e) = serde_json::from_str::<Line>(r#"{"kind":"session","id":"secret-value"}"#)
        else {
            panic!("must fail");
        };
        let m = json_problem(&e);
        assert!(!m.contains("secret-value"), "{m}");
    }
}
