//! `WriteTxn`: every operation inside one redb write transaction. The operations of each store
//! trait live in a file of their own beside this one.

mod accounts;
mod authenticators;
mod sessions;
mod users;
mod verification;
mod web_sessions;

use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::error::{Error, InputProblem, Result};
use crate::handle::Handle;
use crate::model::UserId;
use crate::tables::users::UserTables;

pub(crate) use sessions::{SessionUpdate, plan_session_update, update_expiry};

/// One write transaction with every authdb operation on it.
///
/// Get one from [`AuthDb::write`](crate::AuthDb::write) (commits when the closure returns `Ok`)
/// or [`AuthDb::begin_write`](crate::AuthDb::begin_write) (commit with [`WriteTxn::commit`]).
/// Dropping it without committing aborts it: nothing it did is kept. Only one write transaction
/// is open at a time per database; others wait for it, so keep it short.
///
/// The operations come from the store traits (`use authdb::prelude::*;`), with the same
/// semantics as on [`AuthDb`](crate::AuthDb); reads see this transaction's own writes.
pub struct WriteTxn<'db> {
    pub(crate) txn: redb::WriteTransaction,
    pub(crate) cfg: &'db Config,
}

impl std::fmt::Debug for WriteTxn<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteTxn").finish_non_exhaustive()
    }
}

impl<'db> WriteTxn<'db> {
    pub(crate) fn begin(db: &Handle, cfg: &'db Config) -> Result<Self> {
        let mut txn = db.writable()?.begin_write()?;
        txn.set_durability(cfg.durability.to_redb())?;
        Ok(Self { txn, cfg })
    }

    /// Commits every change made in this transaction, atomically. With durable commits (the
    /// default) the data is on disk when this returns.
    pub fn commit(self) -> Result<()> {
        self.txn.commit()?;
        self.cfg.generation.bump();
        Ok(())
    }

    /// Discards every change made in this transaction (the same as dropping it).
    pub fn abort(self) -> Result<()> {
        self.txn.abort()?;
        Ok(())
    }

    /// The store's current time, as [`AuthDb::now`](crate::AuthDb::now).
    pub fn now(&self) -> DateTime<Utc> {
        self.cfg.now()
    }

    pub(crate) fn now_micros(&self) -> i64 {
        self.cfg.now_micros()
    }

    /// Fails with [`Error::UserNotFound`] unless the user exists.
    pub(crate) fn require_user(&self, user_id: &UserId) -> Result<()> {
        UserTables::open(&self.txn)?
            .get(&user_id.to_bytes())?
            .map(drop)
            .ok_or(Error::UserNotFound(*user_id))
    }

    /// Gives the user a new security stamp (their credentials changed).
    pub(crate) fn renew_stamp(&self, user_id: &UserId) -> Result<()> {
        let mut users = UserTables::open(&self.txn)?;
        if let Some(old) = users.get(&user_id.to_bytes())? {
            let mut rec = old.clone();
            rec.security_stamp = crate::tables::users::new_stamp()?;
            rec.updated_at = self.now_micros();
            users.put(&rec, Some(&old))?;
        }
        Ok(())
    }

    /// Stores an already computed argon2id PHC string as `user_id`'s password, renews the
    /// user's security stamp and (unless configured otherwise) ends the user's sessions.
    pub(crate) fn store_password_hash(&self, user_id: &UserId, phc: &str) -> Result<()> {
        self.require_user(user_id)?;
        crate::tables::credentials::put(&self.txn, user_id, phc, self.now_micros())?;
        if self.cfg.password_change_ends_sessions {
            let user = user_id.to_bytes();
            crate::tables::sessions::SessionTable::open(&self.txn)?.remove_all_of(&user)?;
            // The framework's sessions (tower-sessions records naming the user) end too.
            crate::tables::web_sessions::WebSessionTable::open(&self.txn)?.remove_all_of(&user)?;
        }
        self.renew_stamp(user_id)
    }

    /// Removes up to `limit` expired sessions; returns (entries walked, sessions removed).
    pub(crate) fn purge_sessions(&self, now: i64, limit: usize) -> Result<(usize, u64)> {
        crate::tables::sessions::SessionTable::open(&self.txn)?.purge(now, limit)
    }

    /// Removes up to `limit` expired verification requests; returns how many were walked.
    pub(crate) fn purge_verification(&self, now: i64, limit: usize) -> Result<u64> {
        crate::tables::verification::VerificationTables::open(&self.txn)?.purge(now, limit)
    }
}

/// `a + b` as a storable timestamp, or [`Error::InvalidInput`] on overflow.
pub(crate) fn add_micros(field: &'static str, a: i64, b: i64) -> Result<i64> {
    a.checked_add(b)
        .filter(|t| DateTime::<Utc>::from_timestamp_micros(*t).is_some())
        .ok_or(Error::invalid(field, InputProblem::OutOfRange))
}
