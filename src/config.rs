//! The settings every transaction reads, fixed when the database is opened.

use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Utc};

use crate::clock::Clock;
use crate::crypto::EncryptionKey;
use crate::error::Result;
use crate::model::User;
use crate::password::{self, PasswordParams};

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
    pub(crate) password: PasswordParams,
    pub(crate) key: Option<EncryptionKey>,
    pub(crate) dummy_phc: OnceLock<String>,
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

    fn dummy_phc(&self) -> Result<&str> {
        if let Some(h) = self.dummy_phc.get() {
            return Ok(h);
        }
        let h = self
            .password
            .hash("authdb: dummy password for absent users")?;
        Ok(self.dummy_phc.get_or_init(|| h))
    }

    /// Verifies `password` against what was found; with nothing found, verifies against a dummy
    /// hash of the same cost so that timing does not reveal whether the email exists.
    pub(crate) fn verify_credentials(
        &self,
        found: Option<(User, String)>,
        password: &str,
    ) -> Result<Option<User>> {
        if let Some((user, phc)) = found {
            Ok(password::verify(&phc, password)?.then_some(user))
        } else {
            password::verify(self.dummy_phc()?, password)?;
            Ok(None)
        }
    }
}
