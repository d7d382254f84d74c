//! [`PgAuthDb`]: the pool, the settings, and where each operation runs.

use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;

use authdb::{IntegrityReport, Maintenance, PurgeStats, Result, Transactional};
use chrono::{DateTime, Utc};

use crate::config::{Config, PgBuilder};
use crate::db::{Db, Runner};
use crate::error::{PgError, backend, is_retryable, pg};
use crate::ops::impl_stores;
use crate::pool::{Conn, Manager};
use crate::tx::{PgTx, TxState};

/// How often a single-operation transaction is run again after a serialization failure or a
/// deadlock (SQLSTATE 40001, 40P01), which PostgreSQL reports before anything is applied.
const RETRIES: usize = 3;

pub(crate) struct Inner {
    pub(crate) pool: r2d2::Pool<Manager>,
    pub(crate) cfg: Config,
    pub(crate) schema: String,
}

/// authdb's store on PostgreSQL: every operation of the store traits ([`UserStore`],
/// [`AccountStore`], [`SessionStore`], [`VerificationStore`], [`AuthenticatorStore`]),
/// [`Transactional`] and [`Maintenance`], with the same behaviour as authdb's redb file
/// (it passes `authdb::conformance`).
///
/// Cheap to clone (an `Arc` inside) and safe to share between threads; clones share one
/// connection pool. Each call takes a pooled connection for its duration; each write is one
/// SQL transaction (reads that need no transaction are single statements). Calls block: from
/// async code run them on a blocking thread (`tokio::task::spawn_blocking`).
///
/// Time comes from the configured [`Clock`](authdb::Clock), never from the server's `now()`.
///
/// [`UserStore`]: authdb::UserStore
/// [`AccountStore`]: authdb::AccountStore
/// [`SessionStore`]: authdb::SessionStore
/// [`VerificationStore`]: authdb::VerificationStore
/// [`AuthenticatorStore`]: authdb::AuthenticatorStore
#[derive(Clone)]
pub struct PgAuthDb {
    pub(crate) inner: Arc<Inner>,
}

impl fmt::Debug for PgAuthDb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.inner.pool.state();
        f.debug_struct("PgAuthDb")
            .field("schema", &self.inner.schema)
            .field("connections", &state.connections)
            .field("idle_connections", &state.idle_connections)
            .finish_non_exhaustive()
    }
}

impl PgAuthDb {
    /// A [`PgBuilder`] with the defaults.
    pub fn builder() -> PgBuilder {
        PgBuilder::default()
    }

    /// Connects to `url` with the default settings (schema `authdb`, no encryption key); see
    /// [`PgBuilder::connect`].
    pub fn connect(url: &str) -> Result<PgAuthDb> {
        PgBuilder::default().url(url).connect()
    }

    /// The schema holding the tables.
    pub fn schema(&self) -> &str {
        &self.inner.schema
    }

    /// How many connections the pool holds, and how many of them are idle.
    pub fn pool_state(&self) -> (u32, u32) {
        let s = self.inner.pool.state();
        (s.connections, s.idle_connections)
    }

    /// A pooled connection (waiting at most the checkout timeout).
    pub(crate) fn conn(&self) -> Result<r2d2::PooledConnection<Manager>> {
        self.inner
            .pool
            .get()
            .map_err(|e| backend(PgError::pool(&e)))
    }

    /// Runs `f` as one transaction on a pooled connection: commits on `Ok`, rolls back on
    /// `Err`; runs it again after a serialization failure or deadlock.
    fn in_transaction<T>(&self, mut f: impl FnMut(&mut Db<'_>) -> Result<T>) -> Result<T> {
        let mut conn = self.conn()?;
        let mut attempt = 0;
        loop {
            let Conn { client, stmts } = &mut *conn;
            let mut tx = client.transaction().map_err(pg)?;
            let result = f(&mut Db::new(&mut tx, stmts, &self.inner.cfg));
            let result = match result {
                Ok(v) => commit(tx).map(|()| v),
                Err(e) => {
                    // Nothing to keep; if the connection is gone the server rolls back anyway.
                    let _ = tx.rollback();
                    Err(e)
                }
            };
            match result {
                Err(e) if attempt < RETRIES && is_retryable(&e) => attempt += 1,
                result => return result,
            }
        }
    }
}

/// Commits. When `COMMIT` fails because the connection was lost (or with anything but the
/// server's own refusal), the client cannot know whether the server committed: reported as
/// [`PgError::commit_outcome_unknown`].
pub(crate) fn commit(tx: postgres::Transaction<'_>) -> Result<()> {
    tx.commit().map_err(|e| {
        let p = PgError::from_postgres(e);
        if p.is_connection_error() || p.code().is_none() {
            backend(p.into_commit_lost())
        } else {
            backend(p)
        }
    })
}

impl Runner for PgAuthDb {
    fn cfg(&self) -> &Config {
        &self.inner.cfg
    }

    fn read<T>(&self, f: impl FnOnce(&mut Db<'_>) -> Result<T>) -> Result<T> {
        let mut conn = self.conn()?;
        let Conn { client, stmts } = &mut *conn;
        f(&mut Db::new(client, stmts, &self.inner.cfg))
    }

    fn write<T>(&self, f: impl FnMut(&mut Db<'_>) -> Result<T>) -> Result<T> {
        self.in_transaction(f)
    }
}

impl_stores!(PgAuthDb);

impl Transactional for PgAuthDb {
    type Tx<'a> = PgTx<'a>;

    /// Runs `f` in one SQL transaction (READ COMMITTED, with row locks taken by each
    /// operation) on one pooled connection, and commits if it returns `Ok`; on `Err`, or a
    /// panic, it is rolled back and nothing `f` did is kept.
    ///
    /// Inside, each writing operation runs in a savepoint: one that fails (a conflict, a
    /// missing user, invalid input, a failed sender) has changed nothing and `f` may go on.
    /// After a database error ([`Error::Backend`](authdb::Error::Backend)) PostgreSQL has
    /// aborted the transaction: every later call fails and the commit is refused, so return
    /// the error. The sender of `create_verification_request` runs while the transaction
    /// is open; `set_password` and `get_user_by_credentials` run argon2 while it is open.
    /// Not retried on serialization failures (`f` is `FnOnce`): the error is returned.
    fn write<T>(&self, f: impl FnOnce(&mut PgTx<'_>) -> Result<T>) -> Result<T> {
        let mut conn = self.conn()?;
        let Conn { client, stmts } = &mut *conn;
        let tx = client.transaction().map_err(pg)?;
        let mut ptx = PgTx {
            state: RefCell::new(TxState {
                tx,
                stmts,
                poisoned: false,
            }),
            cfg: &self.inner.cfg,
        };
        let result = f(&mut ptx);
        let TxState { tx, poisoned, .. } = ptx.state.into_inner();
        match result {
            Ok(v) if !poisoned => commit(tx).map(|()| v),
            Ok(_) => {
                let _ = tx.rollback();
                Err(backend(PgError::aborted()))
            }
            Err(e) => {
                let _ = tx.rollback();
                Err(e)
            }
        }
    }
}

impl Maintenance for PgAuthDb {
    fn now(&self) -> DateTime<Utc> {
        self.inner.cfg.now()
    }

    /// Deletes expired sessions, then expired verification tokens, [`PURGE_BATCH`](crate::PURGE_BATCH)
    /// rows per statement (each its own transaction), found through the expiry indexes
    /// (`sessions_expires_idx`, `verification_tokens_expires_idx`). Rows that another
    /// transaction holds locked are skipped (`SKIP LOCKED`): that transaction is deleting or
    /// reading them.
    fn purge_expired(&self) -> Result<PurgeStats> {
        crate::maintenance::purge_expired(self)
    }

    /// See the [crate documentation](crate#integrity) for what the schema makes structural
    /// and what this checks.
    fn check_integrity(&self) -> Result<IntegrityReport> {
        crate::maintenance::check_integrity(self)
    }
}
