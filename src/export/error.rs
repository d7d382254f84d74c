//! [`ImportError`], why an import stopped, and [`Refusal`], the conflicts a backend meets
//! while storing a record.

use std::fmt;

use crate::error::Error;

/// Why an import stopped. Nothing was written.
///
/// Its message never quotes a stored secret (hashes, sealed values, password hashes, web
/// session data): a malformed line is described by field name and column.
#[derive(Debug)]
pub struct ImportError {
    pub(super) line: Option<u64>,
    message: String,
    source: Option<Error>,
}

impl ImportError {
    /// An error at line `line` (1-based).
    pub(super) fn at(line: u64, message: impl Into<String>) -> Self {
        Self {
            line: Some(line),
            message: message.into(),
            source: None,
        }
    }

    /// A record refused by an [`ImportSink`](super::ImportSink) for a reason of its own (the
    /// reader adds the line number). Prefer [`ExportRecord::refused`](super::ExportRecord::refused)
    /// for the conflicts every backend meets, so that each backend words them alike.
    #[must_use]
    pub fn refused(message: impl Into<String>) -> Self {
        Self {
            line: None,
            message: message.into(),
            source: None,
        }
    }

    /// The 1-based number of the offending line, when one line is to blame.
    #[must_use]
    pub fn line(&self) -> Option<u64> {
        self.line
    }

    /// The storage (or other authdb) error behind it, if any.
    #[must_use]
    pub fn error(&self) -> Option<&Error> {
        self.source.as_ref()
    }

    /// The message, without the line number.
    #[must_use]
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(n) => write!(f, "line {n}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ImportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_ref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl From<Error> for ImportError {
    fn from(e: Error) -> Self {
        Self {
            line: None,
            message: e.to_string(),
            source: Some(e),
        }
    }
}

/// A conflict between a record being imported and what the target already holds (or what
/// came earlier in the export). [`ExportRecord::refused`](super::ExportRecord::refused) turns
/// it into the [`ImportError`] every backend reports for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// A record with the same key exists: the same user id, account id, session token hash,
    /// credential id, verification token hash or web session id hash, or (for a password) the
    /// user already has one.
    Exists,
    /// The record's user is neither in the target nor earlier in the export.
    UserMissing,
    /// Another user has the same email address (after normalization).
    EmailTaken,
    /// The provider account is already linked.
    ProviderAccountTaken,
}
