//! The settings every transaction reads, fixed when the database is opened.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::clock::Clock;
use crate::crypto::EncryptionKey;
use crate::error::Result;
use crate::model::User;
use crate::password::PasswordChecker;

/// When a commit is on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Durability {
    /// Every commit is flushed to disk (fsync) before it returns. The default.
    #[default]
    Immediate,
    /// Commits are not flushed: fast, but a crash may lose recent commits (never corrupts the
    /// file; the database reopens at an earlier consistent state). For caches and tests.
    None,
}

impl Durability {
    pub(crate) fn to_redb(self) -> redb::Durability {
        match self {
            Self::Immediate => redb::Durability::Immediate,
            Self::None => redb::Durability::None,
        }
    }
}

/// Settings shared by every transaction.
pub(crate) struct Config {
    pub(crate) max_age_micros: i64,
    pub(crate) update_age_micros: i64,
    pub(crate) durability: Durability,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) key: Option<EncryptionKey>,
    /// Hashes and checks passwords: bounded concurrency, decoy verification.
    pub(crate) passwords: PasswordChecker,
    /// Sessions never extend past `created_at` plus this (microseconds), when set.
    pub(crate) absolute_lifetime_micros: Option<i64>,
    /// At most this many sessions per user, when set: creating one more removes the oldest.
    pub(crate) max_sessions_per_user: Option<usize>,
    /// Whether `set_password` signs the user out everywhere.
    pub(crate) password_change_ends_sessions: bool,
    /// With `allow_short_verification_tokens`: the failed attempts per identifier after which
    /// its links are deleted. `None`: raw verification tokens need the entropy floor and
    /// nothing is counted.
    pub(crate) max_failed_verifications: Option<u32>,
    /// This process's commits, which invalidate the shared read snapshot.
    pub(crate) generation: crate::snapshot::Generation,
    /// Whether reads may share a snapshot until the next commit (exclusive mode only).
    pub(crate) reuse_snapshots: bool,
}

impl Config {
    /// The store's clock, truncated to what is stored (microseconds).
    pub(crate) fn now_micros(&self) -> i64 {
        crate::codec::micros(self.clock.now())
    }

    /// The store's clock, truncated to what is stored.
    pub(crate) fn now(&self) -> DateTime<Utc> {
        let m = self.now_micros();
        DateTime::from_timestamp_micros(m).unwrap_or_else(|| self.clock.now())
    }

    /// Whether raw verification tokens under the entropy floor are accepted.
    pub(crate) fn short_tokens_allowed(&self) -> bool {
        self.max_failed_verifications.is_some()
    }

    /// Hashes a new password, waiting for a hashing slot.
    pub(crate) fn hash_password(&self, password: &str) -> Result<String> {
        self.passwords.hash(password)
    }

    /// Verifies `password` against what was found (see [`PasswordChecker::verify`]).
    pub(crate) fn verify_credentials(
        &self,
        found: Option<(User, String)>,
        password: &str,
    ) -> Result<Option<User>> {
        self.passwords.verify(found, password)
    }
}
