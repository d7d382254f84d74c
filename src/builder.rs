//! [`Builder`]: the settings an [`AuthDb`] is opened with.

use std::path::Path;
use std::sync::Arc;

use chrono::Duration;

use crate::clock::{Clock, SystemClock};
use crate::config::{Config, Durability};
use crate::crypto::EncryptionKey;
use crate::db::AuthDb;
use crate::error::{Error, Result};
use crate::file;
use crate::handle::ShareMode;
use crate::password::{PasswordChecker, PasswordParams};

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
/// - share mode: [`ShareMode::Exclusive`]
/// - password change ends sessions: on (`set_password` signs the user out everywhere)
/// - concurrent password hashes: 4 (each takes the argon2 memory cost, 19 MiB by default)
/// - absolute session lifetime: none; sessions per user: unlimited
/// - follow symlinks: off (a symbolic link at the database path is refused)
/// - verification tokens: at least
///   [`MIN_VERIFICATION_TOKEN_BITS`](crate::limits::MIN_VERIFICATION_TOKEN_BITS) of estimated
///   entropy, no failed-attempt counting (see
///   [`allow_short_verification_tokens`](Self::allow_short_verification_tokens))
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
    share: ShareMode,
    password_change_ends_sessions: bool,
    max_concurrent_hashes: usize,
    absolute_lifetime: Option<Duration>,
    max_sessions_per_user: Option<usize>,
    follow_symlinks: bool,
    max_failed_verifications: Option<u32>,
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
            .field("share_mode", &self.share)
            .field(
                "password_change_ends_sessions",
                &self.password_change_ends_sessions,
            )
            .field("max_concurrent_hashes", &self.max_concurrent_hashes)
            .field("absolute_lifetime", &self.absolute_lifetime)
            .field("max_sessions_per_user", &self.max_sessions_per_user)
            .field("follow_symlinks", &self.follow_symlinks)
            .field("max_failed_verifications", &self.max_failed_verifications)
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
            share: ShareMode::Exclusive,
            password_change_ends_sessions: true,
            max_concurrent_hashes: 4,
            absolute_lifetime: None,
            max_sessions_per_user: None,
            follow_symlinks: false,
            max_failed_verifications: None,
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

    /// Whether `set_password` deletes every session of the user (on by default): whoever
    /// changed the password signs in again (the app then creates a fresh session for the
    /// browser that made the change). Off keeps the sessions; the security stamp changes
    /// either way.
    pub fn password_change_ends_sessions(mut self, on: bool) -> Self {
        self.password_change_ends_sessions = on;
        self
    }

    /// How many argon2 computations (password checks and new hashes) may run at once; more
    /// callers wait. Each holds the configured argon2 memory (19 MiB by default), so a burst
    /// of sign-in attempts cannot exhaust memory. Default 4; at least 1.
    pub fn max_concurrent_hashes(mut self, n: usize) -> Self {
        self.max_concurrent_hashes = n;
        self
    }

    /// An absolute session lifetime: no extension (`update_session`, `set_session_expiry`)
    /// takes a session past its creation plus `d`. Off by default. Must be positive.
    pub fn absolute_session_lifetime(mut self, d: Duration) -> Self {
        self.absolute_lifetime = Some(d);
        self
    }

    /// At most `n` sessions per user: creating one more deletes the user's oldest (by
    /// creation time). Off by default. Must be at least 1.
    pub fn max_sessions_per_user(mut self, n: usize) -> Self {
        self.max_sessions_per_user = Some(n);
        self
    }

    /// Whether opening may follow a symbolic link at the database path. Off by default: a
    /// link planted in place of the database (by someone who can write its directory) makes
    /// `open` fail with [`Error::InvalidConfig`] instead of writing where the link points.
    pub fn follow_symlinks(mut self, on: bool) -> Self {
        self.follow_symlinks = on;
        self
    }

    /// Accepts raw verification tokens of any length (at least one character, at most
    /// [`MAX_TOKEN_LEN`](crate::limits::MAX_TOKEN_LEN) bytes), for apps that mail short
    /// one-time codes (six digits, say), and limits guessing instead: at most
    /// `max_failed_attempts` failed attempts per identifier.
    ///
    /// By default a raw verification token — the `token` of `create_verification_request`,
    /// `get_verification_request`, `delete_verification_request` and
    /// `use_verification_request`, and the token string of `create_verification_token` and
    /// `use_verification_token` — must carry at least
    /// [`MIN_VERIFICATION_TOKEN_BITS`](crate::limits::MIN_VERIFICATION_TOKEN_BITS) (128) bits
    /// as [`token_entropy_bits`](crate::limits::token_entropy_bits) estimates them; a shorter
    /// one is [`Error::InvalidInput`] with
    /// [`InputProblem::TooLittleEntropy`](crate::InputProblem::TooLittleEntropy). Guessing a
    /// 128-bit token is hopeless, so by default nothing is counted.
    ///
    /// With this setting, a `use_verification_token`, `use_verification_request` or
    /// `get_verification_request` that finds no live link for the identifier (normalized) while
    /// the identifier has one counts a failure, in the same write transaction as the lookup.
    /// The `max_failed_attempts`-th failure deletes every outstanding link of the identifier:
    /// even the right code then fails, and the user must have a new one mailed. A successful
    /// use or lookup forgets the failures. Failures are counted for
    /// [`VERIFICATION_ATTEMPT_WINDOW_SECS`](crate::limits::VERIFICATION_ATTEMPT_WINDOW_SECS)
    /// (24 hours) from the first; an older counter starts again, and `purge_expired` removes
    /// it. Counters are keyed by a SHA-256 of the normalized identifier, never the address.
    /// `get_verification_request` on [`AuthDb`] then always runs as a write transaction.
    ///
    /// Auth.js hashes its token before the adapter sees it (64 hex characters, which pass the
    /// floor whatever the code was): an Auth.js app that mails short codes must set this to get
    /// the attempt limit.
    ///
    /// `0` is refused at open with [`Error::InvalidConfig`].
    pub fn allow_short_verification_tokens(mut self, max_failed_attempts: u32) -> Self {
        self.max_failed_verifications = Some(max_failed_attempts);
        self
    }

    /// How processes share the file (see [`ShareMode`]). Default [`ShareMode::Exclusive`].
    /// The shared modes need durable commits: with [`Durability::None`] opening fails with
    /// [`Error::InvalidConfig`] (a commit kept only in this process's memory would be invisible
    /// to the others).
    pub fn share_mode(mut self, mode: ShareMode) -> Self {
        self.share = mode;
        self
    }

    fn redb_builder(&self) -> redb::Builder {
        let mut b = redb::Builder::new();
        b.set_cache_size(self.cache_size)
            .set_check_integrity_on_open(self.verify_on_open)
            .set_concurrency_mode(self.share.to_redb());
        b
    }

    fn config(self) -> Result<Config> {
        if self.share != ShareMode::Exclusive && self.durability == Durability::None {
            return Err(Error::InvalidConfig(
                "Durability::None cannot be used in a shared mode: other processes would not see the commits",
            ));
        }
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
        let absolute_lifetime_micros = match self.absolute_lifetime {
            None => None,
            Some(d) => match d.num_microseconds() {
                Some(m) if m > 0 => Some(m),
                _ => {
                    return Err(Error::InvalidConfig(
                        "absolute session lifetime must be positive and in range",
                    ));
                }
            },
        };
        if self.max_sessions_per_user == Some(0) {
            return Err(Error::InvalidConfig(
                "max sessions per user must be at least 1",
            ));
        }
        if self.max_failed_verifications == Some(0) {
            return Err(Error::InvalidConfig(
                "allow_short_verification_tokens needs at least 1 failed attempt",
            ));
        }
        // The decoy hash is made now, not on first use: the first unknown-email sign-in must
        // take as long as every other one.
        let passwords = PasswordChecker::new(self.password, self.max_concurrent_hashes)?;
        Ok(Config {
            max_age_micros: max_age,
            update_age_micros: update_age,
            durability: self.durability,
            clock: self.clock,
            key: self.key,
            passwords,
            absolute_lifetime_micros,
            max_sessions_per_user: self.max_sessions_per_user,
            password_change_ends_sessions: self.password_change_ends_sessions,
            max_failed_verifications: self.max_failed_verifications,
            generation: crate::snapshot::Generation::default(),
            reuse_snapshots: self.share == ShareMode::Exclusive,
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
        let follow = self.follow_symlinks;
        let cfg = self.config()?;
        let db = file::open(path, &redb, follow)?;
        AuthDb::init(db, cfg)
    }

    /// Opens an existing database file read-only: every read operation works, every write is
    /// [`Error::ReadOnly`] (reads that would delete an expired row leave it for a writer).
    /// With [`ShareMode::SingleWriter`] or [`ShareMode::MultiWriter`] it follows the commits
    /// of the writer processes; in [`ShareMode::Exclusive`] it excludes any writer. The file
    /// must exist and be of this schema version (a read-only open migrates nothing), and its
    /// pages are not verified on open (`verify_on_open` needs a writer).
    pub fn open_read_only(self, path: impl AsRef<Path>) -> Result<AuthDb> {
        file::check_not_symlink(path.as_ref(), self.follow_symlinks)?;
        let redb = self.redb_builder();
        let cfg = self.config()?;
        let db = redb
            .open_read_only(path.as_ref())
            .map_err(file::map_open_error)?;
        AuthDb::init_read_only(db, cfg)
    }

    /// Opens a database on a custom redb storage backend: for fault injection in tests, or a
    /// storage layer of your own. An empty backend gets a new database.
    pub fn open_backend(self, backend: impl redb::StorageBackend) -> Result<AuthDb> {
        let redb = self.redb_builder();
        let cfg = self.config()?;
        let db = redb
            .create_with_backend(backend)
            .map_err(file::map_open_error)?;
        AuthDb::init(db, cfg)
    }

    /// Opens a fresh database held in memory (redb's in-memory backend): for tests.
    pub fn in_memory(self) -> Result<AuthDb> {
        self.open_backend(redb::backends::InMemoryBackend::new())
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
}
