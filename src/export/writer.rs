//! [`Exporter`]: writes an export — the header, one line per record, the end line with the
//! counts — for any backend that can list its records in export order.

use std::io::{BufWriter, Write};

use serde::Serialize;

use crate::backup::PROGRESS_EVERY;
use crate::error::{Error, Result};
use crate::schema::SCHEMA_VERSION;

use super::counts::ExportCounts;
use super::lines::{EXPORT_FORMAT, EXPORT_VERSION, EndLine, Header, Line};
use super::record::ExportRecord;

/// Writes an export (see the [module docs](crate::export) for the format) to `W`.
///
/// A backend creates one, [`write`](Self::write)s every record in export order (the order of
/// kinds of [`ExportRecord`]; within a kind, by the record's key bytes, so that every backend
/// writes the same data as the same bytes), then calls [`finish`](Self::finish), which writes
/// the end line. An export without its end line is refused by import as truncated.
///
/// ```
/// use authdb::export::Exporter;
///
/// let mut out = Vec::new();
/// let counts = Exporter::new(&mut out)?.finish()?;
/// assert_eq!(counts.total(), 0);
/// assert!(out.starts_with(b"{\"format\":\"authdb-export\""));
/// # Ok::<(), authdb::Error>(())
/// ```
pub struct Exporter<W: Write, P: FnMut(u64) = fn(u64)> {
    w: BufWriter<W>,
    counts: ExportCounts,
    last_kind: u8,
    progress: P,
}

impl<W: Write> Exporter<W> {
    /// Starts an export to `out`: writes the header line.
    pub fn new(out: W) -> Result<Self> {
        Self::with_progress(out, no_progress)
    }
}

fn no_progress(_: u64) {}

impl<W: Write, P: FnMut(u64)> Exporter<W, P> {
    /// As [`new`](Exporter::new), calling `progress` with the number of records written so
    /// far every few thousand records and once at the end.
    pub fn with_progress(out: W, progress: P) -> Result<Self> {
        let mut e = Self {
            w: BufWriter::new(out),
            counts: ExportCounts::default(),
            last_kind: 0,
            progress,
        };
        e.line(&Header {
            format: EXPORT_FORMAT.into(),
            version: EXPORT_VERSION,
            schema_version: SCHEMA_VERSION,
        })?;
        Ok(e)
    }

    fn line<T: Serialize>(&mut self, v: &T) -> Result<()> {
        serde_json::to_writer(&mut self.w, v).map_err(std::io::Error::other)?;
        self.w.write_all(b"\n")?;
        Ok(())
    }

    /// Writes one record. A record of a kind that comes earlier in the export order than the
    /// previous one is [`Error::InvalidValue`] (an import could not read it back: a record
    /// must come after its user).
    pub fn write(&mut self, record: ExportRecord) -> Result<()> {
        let kind = record.kind_order();
        if kind < self.last_kind {
            return Err(Error::InvalidValue {
                field: "record",
                reason: "out of export order (users, passwords, accounts, sessions, \
                         authenticators, verification tokens, web sessions)",
            });
        }
        self.last_kind = kind;
        self.counts.count(&record);
        self.line(&Line::from(record))?;
        let n = self.counts.total();
        if n.is_multiple_of(PROGRESS_EVERY) {
            (self.progress)(n);
        }
        Ok(())
    }

    /// The records written so far, by kind.
    pub fn counts(&self) -> ExportCounts {
        self.counts
    }

    /// Writes the end line and flushes; returns the counts.
    pub fn finish(mut self) -> Result<ExportCounts> {
        let counts = self.counts;
        self.line(&Line::End(EndLine { counts }))?;
        self.w.flush()?;
        (self.progress)(counts.total());
        Ok(counts)
    }
}
