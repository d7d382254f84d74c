//! What `check_integrity` reports.

use std::fmt;

use crate::model::UserId;
use crate::schema;

/// One disagreement found by [`AuthDb::check_integrity`](crate::AuthDb::check_integrity).
///
/// Keys are shown as ids (UUIDs), hex hashes or normalized emails — never a token or password.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IntegrityProblem {
    /// A stored record cannot be decoded: its checksum does not match its bytes and key
    /// (damage; the detail then says "checksum mismatch"), or its bytes do not decode, or a
    /// field is out of range.
    CorruptRecord {
        /// The table.
        table: &'static str,
        /// The record's key.
        key: String,
        /// Why it cannot be decoded (never the record's content).
        detail: String,
    },
    /// A record's own id differs from the key it is stored under.
    KeyMismatch {
        /// The table.
        table: &'static str,
        /// The key it is stored under.
        key: String,
    },
    /// A record lacks an index entry it should have.
    MissingIndexEntry {
        /// The index.
        index: &'static str,
        /// The record's key.
        key: String,
    },
    /// An index entry points to no record, or to a record that does not match the entry.
    StaleIndexEntry {
        /// The index.
        index: &'static str,
        /// The index entry's key.
        key: String,
    },
    /// A record refers to a user that does not exist.
    MissingUser {
        /// The table of the referring record.
        table: &'static str,
        /// The referring record's key.
        key: String,
        /// The missing user.
        user_id: UserId,
    },
    /// The schema version in the `meta` table is missing or not this build's.
    SchemaVersion {
        /// What is stored.
        found: Option<u64>,
    },
}

impl fmt::Display for IntegrityProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::CorruptRecord { table, key, detail } => {
                write!(f, "{table}[{key}]: corrupt record: {detail}")
            }
            Self::KeyMismatch { table, key } => {
                write!(f, "{table}[{key}]: record id differs from its key")
            }
            Self::MissingIndexEntry { index, key } => {
                write!(f, "{index}: no entry for record {key}")
            }
            Self::StaleIndexEntry { index, key } => {
                write!(f, "{index}[{key}]: entry does not match any record")
            }
            Self::MissingUser {
                table,
                key,
                user_id,
            } => write!(f, "{table}[{key}]: refers to missing user {user_id}"),
            Self::SchemaVersion { found } => write!(
                f,
                "meta: schema version is {found:?}, expected {}",
                schema::SCHEMA_VERSION
            ),
        }
    }
}

/// The result of [`AuthDb::check_integrity`](crate::AuthDb::check_integrity).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IntegrityReport {
    problems: Vec<IntegrityProblem>,
    /// Users checked.
    pub users: u64,
    /// Accounts checked.
    pub accounts: u64,
    /// Sessions checked (expired ones included).
    pub sessions: u64,
    /// Verification requests checked (expired ones included).
    pub verification_requests: u64,
    /// Passwords checked.
    pub credentials: u64,
    /// WebAuthn authenticators checked.
    pub authenticators: u64,
    /// Web sessions (tower-sessions records) checked, expired ones included.
    pub web_sessions: u64,
}

impl IntegrityReport {
    /// True when no problem was found.
    #[must_use]
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }

    /// Every problem found.
    #[must_use]
    pub fn problems(&self) -> &[IntegrityProblem] {
        &self.problems
    }

    /// Records a problem (for backends that build their own report).
    pub fn push(&mut self, p: IntegrityProblem) {
        self.problems.push(p);
    }
}

impl fmt::Display for IntegrityReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} users, {} accounts, {} sessions, {} verification requests, {} passwords, \
             {} authenticators, {} web sessions: {}",
            self.users,
            self.accounts,
            self.sessions,
            self.verification_requests,
            self.credentials,
            self.authenticators,
            self.web_sessions,
            if self.is_clean() {
                "clean".to_owned()
            } else {
                format!("{} problems", self.problems.len())
            }
        )?;
        for p in &self.problems {
            writeln!(f, "  {p}")?;
        }
        Ok(())
    }
}

/// A 16-byte key shown as a UUID.
pub(crate) fn id_str(k: &[u8; 16]) -> String {
    UserId::from_bytes(*k).to_string()
}
