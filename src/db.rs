//! `AuthDb`: the handle, its transactions and group commit.

use std::sync::Arc;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::group::{GroupCommit, WriteStats};
use crate::handle::Handle;
use crate::integrity::{self, IntegrityReport};
use crate::schema::{self, SCHEMA_VERSION};
use crate::txn::WriteTxn;

pub(crate) struct Inner {
    // Dropped before `db`: a cached snapshot is a live read transaction.
    snapshots: crate::snapshot::SnapshotCache,
    pub(crate) db: Handle,
    pub(crate) cfg: Config,
    group: GroupCommit,
}

/// An authdb database: one redb file holding users, accounts, sessions, verification requests,
/// passwords and passkeys, with every index kept in step.
///
/// Cheap to clone (an `Arc` inside) and safe to share between threads. Reads run on snapshots
/// and never wait for writers; writes are serialized, and concurrent single-operation writes
/// share one transaction and one fsync (group commit). Every method is one transaction; use
/// [`AuthDb::write`] to run several operations as one.
///
/// The operations come from the store traits (`use authdb::prelude::*;`).
///
/// Calls block (a durable commit waits for the disk): from async code, run them on a blocking
/// thread (`tokio::task::spawn_blocking`).
#[derive(Clone)]
pub struct AuthDb {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for AuthDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthDb")
            .field("durability", &self.inner.cfg.durability)
            .finish_non_exhaustive()
    }
}

impl AuthDb {
    /// Takes an opened redb database: creates the schema in an empty one, migrates an older
    /// one, refuses a newer one.
    pub(crate) fn init(db: redb::Database, cfg: Config) -> Result<AuthDb> {
        match schema::stored_version(&db)? {
            None => crate::file::create_schema(&db)?,
            Some(SCHEMA_VERSION) => {}
            Some(v) if v > SCHEMA_VERSION => {
                return Err(Error::UnsupportedSchemaVersion {
                    found: v,
                    supported: SCHEMA_VERSION,
                });
            }
            Some(v) => crate::migrate::migrate(&db, v)?,
        }
        Ok(Self::with_handle(Handle::ReadWrite(db), cfg))
    }

    /// Takes a read-only redb database: its schema must be this build's (a file that needs a
    /// migration must be opened read-write once first).
    pub(crate) fn init_read_only(db: redb::ReadOnlyDatabase, cfg: Config) -> Result<AuthDb> {
        let rtx = redb::ReadableDatabase::begin_read(&db)?;
        let found = match rtx.open_table(schema::META) {
            Ok(meta) => {
                redb::ReadableTable::get(&meta, schema::SCHEMA_VERSION_KEY)?.map(|g| g.value())
            }
            Err(redb::TableError::TableDoesNotExist(_)) => None,
            Err(e) => return Err(e.into()),
        };
        drop(rtx);
        match found {
            Some(SCHEMA_VERSION) => Ok(Self::with_handle(Handle::ReadOnly(db), cfg)),
            Some(v) if v > SCHEMA_VERSION => Err(Error::UnsupportedSchemaVersion {
                found: v,
                supported: SCHEMA_VERSION,
            }),
            Some(v) => Err(Error::MigrationFailed {
                from: v,
                detail: "a read-only open cannot migrate the file; open it read-write once".into(),
            }),
            None => Err(Error::corrupt(
                schema::META_NAME,
                "no schema version: not an authdb file",
            )),
        }
    }

    fn with_handle(db: Handle, cfg: Config) -> AuthDb {
        AuthDb {
            inner: Arc::new(Inner {
                db,
                snapshots: crate::snapshot::SnapshotCache::default(),
                cfg,
                group: GroupCommit::default(),
            }),
        }
    }

    /// Whether this handle was opened read-only (it serves every read and refuses every write
    /// with [`Error::ReadOnly`]).
    pub fn is_read_only(&self) -> bool {
        self.inner.db.is_read_only()
    }

    pub(crate) fn cfg(&self) -> &Config {
        &self.inner.cfg
    }

    /// Runs one write operation through group commit (see `group.rs`): it shares a transaction
    /// and an fsync with the operations of other threads waiting at the same moment.
    pub(crate) fn submit<T: Send + 'static>(
        &self,
        op: impl FnMut(&WriteTxn<'_>) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.inner.group.submit(&self.inner.db, &self.inner.cfg, op)
    }

    /// Runs one write operation in a transaction of its own, outside group commit: for
    /// housekeeping (purge) whose large batches must not delay sign-ins sharing a commit.
    pub(crate) fn run_alone<T>(&self, op: impl FnOnce(&WriteTxn<'_>) -> Result<T>) -> Result<T> {
        self.inner.group.count_alone();
        let tx = WriteTxn::begin(&self.inner.db, &self.inner.cfg)?;
        let out = op(&tx)?;
        tx.commit()?;
        Ok(out)
    }

    /// A read snapshot.
    pub(crate) fn read(&self) -> Result<std::sync::Arc<redb::ReadTransaction>> {
        let cfg = &self.inner.cfg;
        self.inner
            .snapshots
            .read(&self.inner.db, &cfg.generation, cfg.reuse_snapshots)
    }

    /// Runs `f` in one write transaction and commits if it returns `Ok`; on `Err` nothing `f`
    /// did is kept. Inside `f`, use `tx` for every operation: calling this `AuthDb`'s own
    /// methods from inside would wait for the write lock `f` holds. This is how to make a flow
    /// atomic:
    ///
    /// ```
    /// use authdb::prelude::*;
    /// use authdb::{AuthDb, NewAccount, NewUser};
    ///
    /// let db = AuthDb::builder().in_memory()?;
    /// // OAuth sign-up: user + account + session, all or nothing.
    /// let session = db.write(|tx| {
    ///     let user = tx.create_user(&NewUser {
    ///         email: Some("ada@example.com".into()),
    ///         ..NewUser::default()
    ///     })?;
    ///     tx.link_account(&user.id, &NewAccount {
    ///         provider_type: "oauth".into(),
    ///         provider_id: "github".into(),
    ///         provider_account_id: "1234".into(),
    ///         ..NewAccount::default()
    ///     })?;
    ///     tx.create_session(&user.id)
    /// })?;
    /// assert!(db.get_session(&session.session_token)?.is_some());
    /// # Ok::<(), authdb::Error>(())
    /// ```
    #[cfg_attr(
        feature = "tracing",
        tracing::instrument(level = "debug", skip_all, err(level = "debug"))
    )]
    pub fn write<T>(&self, f: impl FnOnce(&mut WriteTxn<'_>) -> Result<T>) -> Result<T> {
        let mut tx = self.begin_write()?;
        let out = f(&mut tx)?;
        tx.commit()?;
        Ok(out)
    }

    /// Begins a write transaction; commit it with [`WriteTxn::commit`]. Dropping it aborts.
    /// Waits while another write transaction is open.
    pub fn begin_write(&self) -> Result<WriteTxn<'_>> {
        WriteTxn::begin(&self.inner.db, &self.inner.cfg)
    }

    /// The store's current time (from its [`Clock`](crate::Clock)), truncated to the
    /// microsecond as stored. Use it for times you write yourself (such as `email_verified`)
    /// so that they agree with the store's expiry decisions, including under a
    /// [`ManualClock`](crate::ManualClock).
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.cfg().now()
    }

    /// Compacts the file, returning freed pages to the file system (redb's `compact`); returns
    /// whether anything was compacted. Useful after purging many rows.
    ///
    /// It needs the only handle: with other clones of this `AuthDb` (or a
    /// [`PurgeTask`](crate::PurgeTask)) alive it returns [`Error::Busy`] and does nothing.
    /// Writes are blocked while it runs.
    #[cfg_attr(
        feature = "tracing",
        tracing::instrument(level = "debug", skip_all, ret, err(level = "debug"))
    )]
    pub fn compact(&mut self) -> Result<bool> {
        let inner = Arc::get_mut(&mut self.inner).ok_or(Error::Busy)?;
        // Compaction needs no live read transaction, the cached snapshot included.
        inner.snapshots.clear();
        match &mut inner.db {
            Handle::ReadWrite(db) => Ok(db.compact()?),
            Handle::ReadOnly(_) => Err(Error::ReadOnly),
        }
    }

    /// How many single-operation writes were made and in how many transactions (group commit
    /// puts the writes of concurrent callers into one transaction and one fsync).
    pub fn write_stats(&self) -> WriteStats {
        self.inner.group.stats()
    }

    /// Walks every table and index and reports every disagreement between them.
    #[cfg_attr(
        feature = "tracing",
        tracing::instrument(level = "debug", skip_all, err(level = "debug"))
    )]
    pub fn check_integrity(&self) -> Result<IntegrityReport> {
        integrity::check(&*self.read()?)
    }
}
