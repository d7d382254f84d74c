//! `AuthDb` and its `Builder`.

use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;

use chrono::Duration;
use redb::ReadableDatabase;

use crate::read::Source;

use crate::adapter::Adapter;
use crate::clock::{Clock, SystemClock};
use crate::crypto::EncryptionKey;
use crate::email::EmailProvider;
use crate::error::{Error, Result};
use crate::group::{GroupCommit, WriteStats};
use crate::integrity::{self, IntegrityReport};
use crate::limits::{self, MAX_PASSWORD_LEN};
use crate::model::{
    Account, Credentials, NewAccount, NewUser, PurgeStats, Session, SessionId, SessionInfo, User,
    UserId, VerificationRequest,
};
use crate::password::{self, PasswordParams};
use crate::read::{self, Lookup};
use crate::schema::{self, SCHEMA_VERSION, SCHEMA_VERSION_KEY};
use crate::token;
use crate::txn::{self, SessionUpdate, WriteTxn};

/// How many expired rows `purge_expired` removes per write transaction.
pub const PURGE_BATCH: usize = 1000;

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
    dummy_phc: OnceLock<String>,
}

impl Config {
    /// The store's clock, truncated to what is stored (microseconds).
    pub(crate) fn now_micros(&self) -> i64 {
        crate::codec::micros(self.clock.now())
    }

    /// The store's clock, truncated to what is stored.
    pub(crate) fn now(&self) -> chrono::DateTime<chrono::Utc> {
        let m = self.now_micros();
        chrono::DateTime::from_timestamp_micros(m).unwrap_or_else(|| self.clock.now())
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

/// Configures and opens an [`AuthDb`].
///
/// ## Defaults
/// - session max age: 30 days (NextAuth's `session.maxAge`)
/// - session update age: 24 hours (NextAuth's `session.updateAge`; zero means "extend on every
///   update")
/// - durability: [`Durability::Immediate`]
/// - clock: [`SystemClock`]
/// - cache size: 64 MiB (redb's own default is 1 GiB, too much for a web app's side store)
/// - password hashing: [`PasswordParams::default`] (argon2id, OWASP parameters)
/// - encryption key: none (accounts with OAuth tokens then cannot be stored)
/// - verify on open: on (every page checksum is verified when the file is opened)
#[must_use]
pub struct Builder {
    session_max_age: Duration,
    session_update_age: Duration,
    durability: Durability,
    clock: Arc<dyn Clock>,
    cache_size: usize,
    password: PasswordParams,
    verify_on_open: bool,
    key: Option<EncryptionKey>,
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("session_max_age", &self.session_max_age)
            .field("session_update_age", &self.session_update_age)
            .field("durability", &self.durability)
            .field("cache_size", &self.cache_size)
            .field("password", &self.password)
            .field("verify_on_open", &self.verify_on_open)
            .field("encryption_key", &self.key)
            .finish_non_exhaustive()
    }
}

impl Default for Builder {
    fn default() -> Self {
        Self {
            session_max_age: Duration::days(30),
            session_update_age: Duration::hours(24),
            durability: Durability::Immediate,
            clock: Arc::new(SystemClock),
            cache_size: 64 * 1024 * 1024,
            password: PasswordParams::default(),
            verify_on_open: true,
            key: None,
        }
    }
}

impl Builder {
    /// How long a session lives after it is created or extended. Must be positive.
    pub fn session_max_age(mut self, d: Duration) -> Self {
        self.session_max_age = d;
        self
    }

    /// How often an active session's expiry is pushed forward by `update_session`. Must not be
    /// negative; zero extends on every call.
    pub fn session_update_age(mut self, d: Duration) -> Self {
        self.session_update_age = d;
        self
    }

    /// When commits reach the disk.
    pub fn durability(mut self, d: Durability) -> Self {
        self.durability = d;
        self
    }

    /// The clock used for every expiry decision and timestamp.
    pub fn clock(mut self, c: Arc<dyn Clock>) -> Self {
        self.clock = c;
        self
    }

    /// Bytes of memory redb may use to cache pages.
    pub fn cache_size(mut self, bytes: usize) -> Self {
        self.cache_size = bytes;
        self
    }

    /// argon2id cost for passwords set from now on.
    pub fn password_params(mut self, p: PasswordParams) -> Self {
        self.password = p;
        self
    }

    /// The key that encrypts OAuth access and refresh tokens in the file. Without one,
    /// `link_account` with a token is [`Error::EncryptionKeyRequired`]: tokens are never stored
    /// in plain form. Accounts without tokens need no key.
    pub fn encryption_key(mut self, key: EncryptionKey) -> Self {
        self.key = Some(key);
        self
    }

    /// Whether opening a file verifies the checksum of every page first (redb's
    /// `set_check_integrity_on_open`). On by default: a file damaged outside redb (a bad disk,
    /// a bad copy) then fails to open with [`Error::Storage`] instead of being trusted. Opening
    /// reads the whole file, so a large database opens more slowly. Turning this off makes the
    /// open constant-time, but a file damaged outside redb may then make redb panic, or make
    /// reads return wrong or missing data without an error (both seen in `tests/corruption.rs`).
    pub fn verify_on_open(mut self, on: bool) -> Self {
        self.verify_on_open = on;
        self
    }

    fn redb_builder(&self) -> redb::Builder {
        let mut b = redb::Builder::new();
        b.set_cache_size(self.cache_size)
            .set_check_integrity_on_open(self.verify_on_open);
        b
    }

    fn config(self) -> Result<Config> {
        let max_age = self
            .session_max_age
            .num_microseconds()
            .ok_or(Error::InvalidConfig("session max age is out of range"))?;
        let update_age = self
            .session_update_age
            .num_microseconds()
            .ok_or(Error::InvalidConfig("session update age is out of range"))?;
        if max_age <= 0 {
            return Err(Error::InvalidConfig("session max age must be positive"));
        }
        if update_age < 0 {
            return Err(Error::InvalidConfig(
                "session update age must not be negative",
            ));
        }
        self.password.validate()?;
        Ok(Config {
            max_age_micros: max_age,
            update_age_micros: update_age,
            durability: self.durability,
            clock: self.clock,
            password: self.password,
            key: self.key,
            dummy_phc: OnceLock::new(),
        })
    }

    /// Opens the database file at `path`, creating it (owner-only permissions on Unix) if
    /// missing.
    ///
    /// Errors: [`Error::AlreadyOpen`] if another `AuthDb` holds the file,
    /// [`Error::UnsupportedSchemaVersion`] for a file from a newer authdb, [`Error::Storage`]
    /// for a file that is not a redb database or cannot be read.
    pub fn open(self, path: impl AsRef<Path>) -> Result<AuthDb> {
        let path = path.as_ref();
        let redb = self.redb_builder();
        let cfg = self.config()?;
        let needs_init = match std::fs::metadata(path) {
            Ok(m) => m.len() == 0,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
            Err(e) => return Err(e.into()),
        };
        if needs_init {
            init_file(path, &redb)?;
        }
        let file = owner_only().open(path)?;
        let backend = redb::backends::FileBackend::new(file).map_err(map_open_error)?;
        let db = redb.create_with_backend(backend).map_err(map_open_error)?;
        AuthDb::init(db, cfg)
    }

    /// Opens a database on a custom redb storage backend: for fault injection in tests, or a
    /// storage layer of your own. An empty backend gets a new database.
    pub fn open_backend(self, backend: impl redb::StorageBackend) -> Result<AuthDb> {
        let redb = self.redb_builder();
        let cfg = self.config()?;
        let db = redb.create_with_backend(backend).map_err(map_open_error)?;
        AuthDb::init(db, cfg)
    }

    /// Opens a fresh database held in memory (redb's in-memory backend): for tests.
    pub fn in_memory(self) -> Result<AuthDb> {
        self.open_backend(redb::backends::InMemoryBackend::new())
    }
}

/// Read-write, create if missing, owner-only permissions on Unix.
fn owner_only() -> std::fs::OpenOptions {
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts
}

/// Creates a complete, empty authdb database at `path` without ever leaving a half-made file
/// there: it is built and synced under a temporary name in the same directory, then linked
/// into place. (redb writes its magic number last, so a crash or a full disk during a
/// first open in place left a file that could never be opened again.)
fn init_file(path: &Path, redb: &redb::Builder) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or(Error::InvalidConfig("the database path has no file name"))?;
    let mut nonce = [0u8; 8];
    token::random_bytes(&mut nonce)?;
    let tmp = dir.join(format!(
        ".{}.authdb-init-{}",
        name.to_string_lossy(),
        token::hex(&nonce)
    ));
    let made = (|| {
        let file = owner_only().create_new(true).open(&tmp)?;
        let backend = redb::backends::FileBackend::new(file).map_err(map_open_error)?;
        let db = redb.create_with_backend(backend).map_err(map_open_error)?;
        create_schema(&db)
    })();
    let result = made.and_then(|()| publish(&tmp, path, &dir));
    let _ = std::fs::remove_file(&tmp);
    result
}

/// Puts the finished file at `path` unless another opener got there first with a real one.
fn publish(tmp: &Path, path: &Path, dir: &Path) -> Result<()> {
    match std::fs::hard_link(tmp, path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            if std::fs::metadata(path)?.len() == 0 {
                std::fs::rename(tmp, path)?;
            }
        }
        // A file system without hard links: rename, which cannot fail half-way either.
        Err(_) if !path.exists() => std::fs::rename(tmp, path)?,
        Err(e) => return Err(e.into()),
    }
    #[cfg(unix)]
    std::fs::File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Creates every table and records the schema version, in one durable commit.
fn create_schema(db: &redb::Database) -> Result<()> {
    let mut wtx = db.begin_write()?;
    wtx.set_durability(redb::Durability::Immediate)?;
    {
        wtx.open_table(schema::META)?
            .insert(SCHEMA_VERSION_KEY, SCHEMA_VERSION)?;
        wtx.open_table(schema::USERS)?;
        wtx.open_table(schema::USERS_BY_EMAIL)?;
        wtx.open_table(schema::ACCOUNTS)?;
        wtx.open_table(schema::ACCOUNTS_BY_PROVIDER)?;
        wtx.open_multimap_table(schema::ACCOUNTS_BY_USER)?;
        wtx.open_table(schema::SESSIONS)?;
        wtx.open_multimap_table(schema::SESSIONS_BY_USER)?;
        wtx.open_table(schema::SESSIONS_BY_EXPIRY)?;
        wtx.open_table(schema::VERIFICATION)?;
        wtx.open_table(schema::VERIFICATION_BY_EXPIRY)?;
        wtx.open_table(schema::CREDENTIALS)?;
    }
    wtx.commit()?;
    Ok(())
}

fn map_open_error(e: redb::DatabaseError) -> Error {
    match e {
        redb::DatabaseError::DatabaseAlreadyOpen => Error::AlreadyOpen,
        other => other.into(),
    }
}

struct Inner {
    db: redb::Database,
    cfg: Config,
    group: GroupCommit,
}

/// An authdb database: one redb file holding users, accounts, sessions, verification requests
/// and passwords, with every index kept in step.
///
/// Cheap to clone (an `Arc` inside) and safe to share between threads. Reads run on snapshots
/// and never wait for writers; writes are serialized. Every method is one transaction; use
/// [`AuthDb::write`] to run several operations as one.
///
/// The 16 adapter operations come from the [`Adapter`] trait (`use authdb::Adapter;`).
///
/// Calls block (a durable commit waits for the disk): from async code, run them on a blocking
/// thread (`tokio::task::spawn_blocking`).
#[derive(Clone)]
pub struct AuthDb {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for AuthDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthDb")
            .field("durability", &self.inner.cfg.durability)
            .finish_non_exhaustive()
    }
}

impl AuthDb {
    /// Opens (or creates) the database file at `path` with the default settings.
    /// See [`Builder::open`].
    pub fn open(path: impl AsRef<Path>) -> Result<AuthDb> {
        Builder::default().open(path)
    }

    /// A [`Builder`] with the defaults.
    pub fn builder() -> Builder {
        Builder::default()
    }

    fn init(db: redb::Database, cfg: Config) -> Result<AuthDb> {
        let version = {
            let rtx = db.begin_read()?;
            match rtx.open_table(schema::META) {
                Ok(meta) => meta.get(SCHEMA_VERSION_KEY)?.map(|g| g.value()),
                Err(redb::TableError::TableDoesNotExist(_)) => None,
                Err(e) => return Err(e.into()),
            }
        };
        match version {
            Some(v) if v > SCHEMA_VERSION => {
                return Err(Error::UnsupportedSchemaVersion {
                    found: v,
                    supported: SCHEMA_VERSION,
                });
            }
            Some(SCHEMA_VERSION) => {}
            Some(v) => {
                return Err(Error::corrupt(
                    schema::META_NAME,
                    format!("unknown schema version {v}"),
                ));
            }
            None => create_schema(&db)?,
        }
        Ok(AuthDb {
            inner: Arc::new(Inner {
                db,
                cfg,
                group: GroupCommit::default(),
            }),
        })
    }

    fn cfg(&self) -> &Config {
        &self.inner.cfg
    }

    /// Runs one write operation through group commit (see `group.rs`): it shares a transaction
    /// and an fsync with the operations of other threads waiting at the same moment.
    fn submit<T: Send + 'static>(
        &self,
        op: impl FnMut(&WriteTxn<'_>) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.inner.group.submit(&self.inner.db, &self.inner.cfg, op)
    }

    fn read(&self) -> Result<redb::ReadTransaction> {
        Ok(self.inner.db.begin_read()?)
    }

    /// Runs `f` in one write transaction and commits if it returns `Ok`; on `Err` nothing `f`
    /// did is kept. Inside `f`, use `tx` for every operation: calling this `AuthDb`'s own
    /// methods from inside would wait for the write lock `f` holds. This is how to make a flow
    /// atomic:
    ///
    /// ```
    /// use authdb::{Adapter, AuthDb, NewAccount, NewUser};
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
    ///         refresh_token: None,
    ///         access_token: None,
    ///         access_token_expires: None,
    ///     })?;
    ///     tx.create_session(&user.id)
    /// })?;
    /// assert!(db.get_session(&session.session_token)?.is_some());
    /// # Ok::<(), authdb::Error>(())
    /// ```
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

    /// The store's current time (from its [`Clock`]), truncated to the microsecond as stored.
    /// Use it for times you write yourself (such as `email_verified`) so that they agree with
    /// the store's expiry decisions, including under a [`ManualClock`](crate::ManualClock).
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.cfg().now()
    }

    /// The session for this token and its user, read from one snapshot (Auth.js's
    /// `getSessionAndUser`), or `None` like [`get_session`](Adapter::get_session). An expired
    /// session is deleted.
    pub fn get_session_and_user(&self, session_token: &str) -> Result<Option<(Session, User)>> {
        let rtx = self.read()?;
        match read::find_session(&rtx, session_token, self.cfg().now_micros())? {
            Lookup::Live(s) => Ok(read::get_user(&rtx, &s.user_id)?.map(|u| (s, u))),
            Lookup::Missing => Ok(None),
            Lookup::Expired => {
                drop(rtx);
                self.get_session(session_token).map(|_| None)
            }
        }
    }

    /// Compacts the file, returning freed pages to the file system (redb's `compact`); returns
    /// whether anything was compacted. Useful after purging many rows.
    ///
    /// It needs the only handle: with other clones of this `AuthDb` (or a [`PurgeTask`])
    /// alive it returns [`Error::Busy`] and does nothing. Writes are blocked while it runs.
    pub fn compact(&mut self) -> Result<bool> {
        let inner = Arc::get_mut(&mut self.inner).ok_or(Error::Busy)?;
        Ok(inner.db.compact()?)
    }

    /// How many single-operation writes were made and in how many transactions (group commit
    /// puts the writes of concurrent callers into one transaction and one fsync).
    pub fn write_stats(&self) -> WriteStats {
        self.inner.group.stats()
    }

    /// Walks every table and index and reports every disagreement between them.
    pub fn check_integrity(&self) -> Result<IntegrityReport> {
        integrity::check(&self.read()?)
    }

    /// Deletes expired sessions and verification requests, walking the expiry indexes in
    /// batches of [`PURGE_BATCH`] rows per transaction (so writers are never blocked long).
    /// The cost is proportional to the number of expired rows, not to the table sizes.
    pub fn purge_expired(&self) -> Result<PurgeStats> {
        let now = self.cfg().now_micros();
        let mut stats = PurgeStats::default();
        loop {
            let n = self.submit(move |tx| tx.purge_sessions(now, PURGE_BATCH))?;
            stats.sessions += n;
            if n < PURGE_BATCH as u64 {
                break;
            }
        }
        loop {
            let n = self.submit(move |tx| tx.purge_verification(now, PURGE_BATCH))?;
            stats.verification_requests += n;
            if n < PURGE_BATCH as u64 {
                break;
            }
        }
        Ok(stats)
    }

    /// Starts a background thread that calls [`purge_expired`](Self::purge_expired) every
    /// `interval` until the returned handle is stopped or dropped. Errors are counted in the
    /// handle, not printed.
    pub fn spawn_purge_task(&self, interval: std::time::Duration) -> PurgeTask {
        let (stop, rx) = mpsc::channel::<()>();
        let db = self.clone();
        let stats = Arc::new(parking_lot::Mutex::new(PurgeTaskStats::default()));
        let shared = Arc::clone(&stats);
        let thread = std::thread::Builder::new()
            .name("authdb-purge".into())
            .spawn(move || {
                // Any message or a dropped sender ends the loop.
                while let Err(RecvTimeoutError::Timeout) = rx.recv_timeout(interval) {
                    let result = db.purge_expired();
                    let mut s = shared.lock();
                    s.runs += 1;
                    match result {
                        Ok(p) => {
                            s.purged.sessions += p.sessions;
                            s.purged.verification_requests += p.verification_requests;
                        }
                        Err(_) => s.errors += 1,
                    }
                }
            })
            .ok();
        PurgeTask {
            stop: Some(stop),
            thread,
            stats,
        }
    }

    /// Sets (or replaces) a user's password, stored as an argon2id PHC string. The password
    /// must be 1 to [`MAX_PASSWORD_LEN`] bytes; the user must exist. The hash is computed
    /// before the write transaction begins.
    pub fn set_password(&self, user_id: &UserId, password: &str) -> Result<()> {
        limits::required("password", password, MAX_PASSWORD_LEN)?;
        if self.get_user(user_id)?.is_none() {
            return Err(Error::UserNotFound(*user_id));
        }
        let phc = self.cfg().password.hash(password)?;
        let uid = *user_id;
        self.submit(move |tx| tx.store_password_hash(&uid, &phc))
    }

    /// Single-use email sign-in: finds the request matching identifier and hash, checks its
    /// expiry and deletes it, in one transaction. Of two concurrent calls for one link, only one
    /// gets `Some`. See [`WriteTxn::use_verification_request`].
    pub fn use_verification_request(
        &self,
        identifier: &str,
        token: &str,
        secret: &str,
    ) -> Result<Option<VerificationRequest>> {
        let (i, t, s) = (identifier.to_owned(), token.to_owned(), secret.to_owned());
        self.submit(move |tx| tx.use_verification_request(&i, &t, &s))
    }

    /// The user's linked accounts, oldest first, with their OAuth tokens decrypted.
    pub fn list_accounts(&self, user_id: &UserId) -> Result<Vec<Account>> {
        read::list_accounts(&self.read()?, self.cfg().key.as_ref(), user_id)
    }

    /// The account `(provider_id, provider_account_id)` (Auth.js's `getAccount`), with its
    /// OAuth tokens decrypted, or `None`.
    pub fn get_account(
        &self,
        provider_id: &str,
        provider_account_id: &str,
    ) -> Result<Option<Account>> {
        read::get_account(
            &self.read()?,
            self.cfg().key.as_ref(),
            provider_id,
            provider_account_id,
        )
    }

    /// The user's live sessions, oldest first, without tokens.
    pub fn list_sessions(&self, user_id: &UserId) -> Result<Vec<SessionInfo>> {
        read::list_sessions(&self.read()?, user_id, self.cfg().now_micros())
    }

    /// Deletes every session of the user ("sign out everywhere"); returns how many.
    pub fn delete_sessions(&self, user_id: &UserId) -> Result<u64> {
        let uid = *user_id;
        self.submit(move |tx| tx.delete_sessions(&uid))
    }

    /// Deletes one of the user's sessions by id; returns whether it existed.
    pub fn delete_session_by_id(&self, user_id: &UserId, session_id: &SessionId) -> Result<bool> {
        let (uid, sid) = (*user_id, *session_id);
        self.submit(move |tx| tx.delete_session_by_id(&uid, &sid))
    }
}

/// Counters of a [`PurgeTask`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PurgeTaskStats {
    /// How many purges ran.
    pub runs: u64,
    /// How many purges failed.
    pub errors: u64,
    /// Everything removed so far.
    pub purged: PurgeStats,
}

/// The handle of [`AuthDb::spawn_purge_task`]. Dropping it stops the task.
#[derive(Debug)]
pub struct PurgeTask {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    stats: Arc<parking_lot::Mutex<PurgeTaskStats>>,
}

impl PurgeTask {
    /// What the task has done so far.
    #[must_use]
    pub fn stats(&self) -> PurgeTaskStats {
        *self.stats.lock()
    }

    /// Stops the task and waits for a purge in progress to finish.
    pub fn stop(mut self) -> PurgeTaskStats {
        self.halt();
        self.stats()
    }

    fn halt(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for PurgeTask {
    fn drop(&mut self) {
        self.halt();
    }
}

impl Adapter for AuthDb {
    fn create_user(&self, profile: &NewUser) -> Result<User> {
        let p = profile.clone();
        self.submit(move |tx| tx.create_user(&p))
    }

    fn get_user(&self, id: &UserId) -> Result<Option<User>> {
        read::get_user(&self.read()?, id)
    }

    fn get_user_by_email(&self, email: &str) -> Result<Option<User>> {
        if email.trim().is_empty() {
            return Ok(None);
        }
        read::get_user_by_email(&self.read()?, email)
    }

    fn get_user_by_provider_account_id(
        &self,
        provider_id: &str,
        provider_account_id: &str,
    ) -> Result<Option<User>> {
        read::get_user_by_provider_account_id(&self.read()?, provider_id, provider_account_id)
    }

    fn get_user_by_credentials(&self, credentials: &Credentials) -> Result<Option<User>> {
        limits::check_len("password", &credentials.password, MAX_PASSWORD_LEN)?;
        // Read in a snapshot, verify (slow) outside any transaction.
        let found = read::credential_for_email(&self.read()?, &credentials.email)?;
        self.cfg().verify_credentials(found, &credentials.password)
    }

    fn update_user(&self, user: &User) -> Result<User> {
        let u = user.clone();
        self.submit(move |tx| tx.update_user(&u))
    }

    fn delete_user(&self, id: &UserId) -> Result<()> {
        let id = *id;
        self.submit(move |tx| tx.delete_user(&id))
    }

    fn link_account(&self, user_id: &UserId, account: &NewAccount) -> Result<Account> {
        let (uid, a) = (*user_id, account.clone());
        self.submit(move |tx| tx.link_account(&uid, &a))
    }

    fn unlink_account(
        &self,
        user_id: &UserId,
        provider_id: &str,
        provider_account_id: &str,
    ) -> Result<()> {
        let (uid, p, pa) = (
            *user_id,
            provider_id.to_owned(),
            provider_account_id.to_owned(),
        );
        self.submit(move |tx| tx.unlink_account(&uid, &p, &pa))
    }

    fn create_session(&self, user_id: &UserId) -> Result<Session> {
        let uid = *user_id;
        self.submit(move |tx| tx.create_session(&uid))
    }

    fn get_session(&self, session_token: &str) -> Result<Option<Session>> {
        // Read a snapshot; only an expired session needs the write lock (to delete it, after
        // checking again inside the write transaction).
        match read::find_session(&self.read()?, session_token, self.cfg().now_micros())? {
            Lookup::Live(s) => Ok(Some(s)),
            Lookup::Missing => Ok(None),
            Lookup::Expired => {
                let t = session_token.to_owned();
                self.submit(move |tx| tx.get_session(&t))?;
                Ok(None)
            }
        }
    }

    fn update_session(&self, session: &Session, force: bool) -> Result<Option<Session>> {
        // Decide on a snapshot first: the common "not due yet" case takes no write lock.
        let key = token::session_key(&session.session_token);
        let rec = read::session(&self.read()?.sessions()?, &key)?;
        match txn::plan_session_update(self.cfg(), self.cfg().now_micros(), rec.as_ref(), force)? {
            SessionUpdate::Gone { expired: false } | SessionUpdate::NotDue => Ok(None),
            _ => {
                let s = session.clone();
                self.submit(move |tx| tx.update_session(&s, force))
            }
        }
    }

    fn delete_session(&self, session_token: &str) -> Result<()> {
        let t = session_token.to_owned();
        self.submit(move |tx| tx.delete_session(&t))
    }

    fn create_verification_request(
        &self,
        identifier: &str,
        url: &str,
        token: &str,
        secret: &str,
        provider: &EmailProvider,
    ) -> Result<VerificationRequest> {
        // Commit first so the link works the moment it arrives; then send outside any
        // transaction; on failure remove the request again.
        let (i, u, t, s, p) = (
            identifier.to_owned(),
            url.to_owned(),
            token.to_owned(),
            secret.to_owned(),
            provider.clone(),
        );
        let (req, key) =
            self.submit(move |tx| tx.insert_verification_request(&i, &u, &t, &s, &p))?;
        let mail = crate::email::VerificationMail {
            identifier,
            url,
            token,
            provider,
        };
        if let Err(e) = provider.send(&mail) {
            let id = req.id;
            self.submit(move |tx| tx.remove_verification_if(&key, id))?;
            return Err(Error::SendFailed(e));
        }
        Ok(req)
    }

    fn get_verification_request(
        &self,
        identifier: &str,
        token: &str,
        secret: &str,
        provider: &EmailProvider,
    ) -> Result<Option<VerificationRequest>> {
        let now = self.cfg().now_micros();
        match read::find_verification(&self.read()?, identifier, token, secret, now)? {
            Lookup::Live(r) => Ok(Some(r)),
            Lookup::Missing => Ok(None),
            Lookup::Expired => {
                let (i, t, s, p) = (
                    identifier.to_owned(),
                    token.to_owned(),
                    secret.to_owned(),
                    provider.clone(),
                );
                self.submit(move |tx| tx.get_verification_request(&i, &t, &s, &p))?;
                Ok(None)
            }
        }
    }

    fn delete_verification_request(
        &self,
        identifier: &str,
        token: &str,
        secret: &str,
        provider: &EmailProvider,
    ) -> Result<()> {
        let (i, t, s, p) = (
            identifier.to_owned(),
            token.to_owned(),
            secret.to_owned(),
            provider.clone(),
        );
        self.submit(move |tx| tx.delete_verification_request(&i, &t, &s, &p))
    }
}
