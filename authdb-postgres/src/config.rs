//! [`PgBuilder`]: the settings a [`PgAuthDb`] connects with, and the settings every operation
//! reads.

use std::fmt::{self, Write as _};
use std::str::FromStr;
use std::sync::Arc;

use authdb::backend::PasswordChecker;
use std::time::Duration as StdDuration;

use authdb::{Clock, EncryptionKey, Error, PasswordParams, Result, SystemClock};
use chrono::{DateTime, Duration, Utc};
use postgres::Socket;
use postgres::tls::{MakeTlsConnect, TlsConnect};

use crate::error::{PgError, backend};
use crate::pool::{Connector, Manager, no_tls};
use crate::schema;
use crate::store::{Inner, PgAuthDb};

/// Settings shared by every operation, fixed at connect.
pub(crate) struct Config {
    pub(crate) max_age: i64,
    pub(crate) update_age: i64,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) key: Option<EncryptionKey>,
    /// Hashes and checks passwords exactly as the redb store does (bounded concurrency,
    /// a decoy verification for absent users).
    passwords: PasswordChecker,
    /// Sessions never extend past `created_at` plus this (microseconds), when set.
    pub(crate) absolute_lifetime: Option<i64>,
    /// At most this many sessions per user, when set: creating one more removes the oldest.
    pub(crate) max_sessions_per_user: Option<u32>,
    /// Whether `set_password` deletes the user's sessions.
    pub(crate) password_change_ends_sessions: bool,
    /// With `allow_short_verification_tokens`: the failed attempts per identifier after which
    /// its links are deleted. `None`: raw verification tokens need authdb's entropy floor and
    /// nothing is counted.
    pub(crate) max_failed_verifications: Option<u32>,
}

impl Config {
    /// The clock, truncated to microseconds (what is stored).
    pub(crate) fn now_micros(&self) -> i64 {
        authdb::backend::micros(self.clock.now())
    }

    pub(crate) fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(self.now_micros()).unwrap_or_else(|| self.clock.now())
    }

    /// Hashes a new password, waiting for a hashing slot.
    pub(crate) fn hash_password(&self, password: &str) -> Result<String> {
        self.passwords.hash(password)
    }

    /// Verifies `password` against what was found; with nothing found, against a dummy hash
    /// of the same cost, so that timing does not tell which emails exist. Waits for a
    /// hashing slot.
    pub(crate) fn verify_credentials<U>(
        &self,
        found: Option<(U, String)>,
        password: &str,
    ) -> Result<Option<U>> {
        self.passwords.verify(found, password)
    }

    /// Whether raw verification tokens under authdb's entropy floor are accepted.
    pub(crate) fn short_tokens_allowed(&self) -> bool {
        self.max_failed_verifications.is_some()
    }

    /// `expires`, or the session's absolute end (creation + the absolute lifetime) if that
    /// comes first.
    pub(crate) fn cap_expiry(&self, created_at: i64, expires: i64) -> i64 {
        authdb::backend::cap_session_expiry(created_at, expires, self.absolute_lifetime)
    }
}

/// Configures and connects a [`PgAuthDb`].
///
/// ```no_run
/// use authdb_postgres::PgAuthDb;
/// use authdb::EncryptionKey;
/// use std::time::Duration;
///
/// # fn load_key() -> [u8; 32] { [7; 32] }
/// let db = PgAuthDb::builder()
///     .url("postgres://app@db.internal/app")
///     .schema("authdb")
///     .pool_size(16)
///     .statement_timeout(Some(Duration::from_secs(5)))
///     .encryption_key(EncryptionKey::from_bytes(load_key()))
///     .connect()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// ## Defaults
/// - schema: `authdb` (created, with its tables, at the first connect)
/// - pool: at most 10 connections, at least 1 kept open, each checked with an empty query
///   when taken from the pool
/// - connect timeout (a new connection): 5 s; checkout timeout (waiting for a free pooled
///   connection): 10 s; statement timeout (server side): 30 s
/// - TCP keepalives: first probe after 30 s idle, every 10 s, 3 probes (a vanished server is
///   noticed in about a minute instead of hours)
/// - application name: `authdb-postgres` (visible in `pg_stat_activity`)
/// - as `authdb::Builder`: session max age 30 days, update age 24 hours, [`SystemClock`],
///   default [`PasswordParams`], no encryption key, a password change ends the user's
///   sessions, at most 4 password hashes at once, no absolute session lifetime, no cap on
///   sessions per user, raw verification tokens of at least 128 bits (no short codes, see
///   [`allow_short_verification_tokens`](Self::allow_short_verification_tokens))
///
/// Connections are made without TLS unless a connector is given with [`tls`](Self::tls).
#[must_use]
pub struct PgBuilder {
    url: Option<String>,
    pg: Option<postgres::Config>,
    schema: String,
    pool_size: u32,
    min_idle: Option<u32>,
    connect_timeout: StdDuration,
    checkout_timeout: StdDuration,
    statement_timeout: Option<StdDuration>,
    validate_on_checkout: bool,
    application_name: String,
    session_max_age: Duration,
    session_update_age: Duration,
    clock: Arc<dyn Clock>,
    password: PasswordParams,
    key: Option<EncryptionKey>,
    password_change_ends_sessions: bool,
    max_concurrent_hashes: usize,
    absolute_lifetime: Option<Duration>,
    max_sessions_per_user: Option<u32>,
    max_failed_verifications: Option<u32>,
    connector: Option<Connector>,
}

impl fmt::Debug for PgBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may carry a password: never shown.
        f.debug_struct("PgBuilder")
            .field("schema", &self.schema)
            .field("pool_size", &self.pool_size)
            .field("min_idle", &self.min_idle)
            .field("connect_timeout", &self.connect_timeout)
            .field("checkout_timeout", &self.checkout_timeout)
            .field("statement_timeout", &self.statement_timeout)
            .field("validate_on_checkout", &self.validate_on_checkout)
            .field("application_name", &self.application_name)
            .field("session_max_age", &self.session_max_age)
            .field("session_update_age", &self.session_update_age)
            .field("password", &self.password)
            .field("encryption_key", &self.key)
            .field(
                "password_change_ends_sessions",
                &self.password_change_ends_sessions,
            )
            .field("max_concurrent_hashes", &self.max_concurrent_hashes)
            .field("absolute_lifetime", &self.absolute_lifetime)
            .field("max_sessions_per_user", &self.max_sessions_per_user)
            .field("max_failed_verifications", &self.max_failed_verifications)
            .field("tls", &self.connector.is_some())
            .finish_non_exhaustive()
    }
}

impl Default for PgBuilder {
    fn default() -> Self {
        Self {
            url: None,
            pg: None,
            schema: "authdb".to_owned(),
            pool_size: 10,
            min_idle: Some(1),
            connect_timeout: StdDuration::from_secs(5),
            checkout_timeout: StdDuration::from_secs(10),
            statement_timeout: Some(StdDuration::from_secs(30)),
            validate_on_checkout: true,
            application_name: "authdb-postgres".to_owned(),
            session_max_age: Duration::days(30),
            session_update_age: Duration::hours(24),
            clock: Arc::new(SystemClock),
            password: PasswordParams::default(),
            key: None,
            password_change_ends_sessions: true,
            max_concurrent_hashes: 4,
            absolute_lifetime: None,
            max_sessions_per_user: None,
            max_failed_verifications: None,
            connector: None,
        }
    }
}

impl PgBuilder {
    /// The server to connect to, as a `postgres://user:password@host:port/dbname?...` URL or
    /// a `key=value` connection string (libpq's formats, as the `postgres` crate parses them).
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self.pg = None;
        self
    }

    /// The server to connect to, as an already built `postgres::Config` (instead of
    /// [`url`](Self::url)). Its connect timeout, keepalive and application-name settings are
    /// replaced by this builder's.
    pub fn pg_config(mut self, config: postgres::Config) -> Self {
        self.pg = Some(config);
        self.url = None;
        self
    }

    /// Connects through TLS with `tls`, any connector the `postgres` crate accepts (for
    /// example `postgres_native_tls::MakeTlsConnector` or `postgres_openssl::MakeTlsConnector`,
    /// from crates of their own); the URL's `sslmode` then applies (`require` refuses a
    /// server without TLS). Without this, connections are made without TLS (`NoTls`).
    pub fn tls<T>(mut self, tls: T) -> Self
    where
        T: MakeTlsConnect<Socket> + Clone + Send + Sync + 'static,
        T::TlsConnect: Send,
        T::Stream: Send,
        <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
    {
        self.connector = Some(Box::new(move |config: &postgres::Config| {
            config.connect(tls.clone())
        }));
        self
    }

    /// The schema holding authdb's tables (default `authdb`): 1 to 63 ASCII letters, digits
    /// and underscores, not starting with a digit. It is created at the first connect if
    /// missing. Several stores may share a database with different schemas.
    pub fn schema(mut self, name: impl Into<String>) -> Self {
        self.schema = name.into();
        self
    }

    /// The most connections the pool opens (default 10). A `write` closure holds one for its
    /// whole run.
    pub fn pool_size(mut self, n: u32) -> Self {
        self.pool_size = n;
        self
    }

    /// How many idle connections the pool keeps open (default 1; `None` keeps
    /// [`pool_size`](Self::pool_size)). Connecting waits until this many are open.
    pub fn min_idle(mut self, n: Option<u32>) -> Self {
        self.min_idle = n;
        self
    }

    /// How long making one new connection may take (default 5 s).
    pub fn connect_timeout(mut self, d: StdDuration) -> Self {
        self.connect_timeout = d;
        self
    }

    /// How long an operation waits for a free pooled connection before it fails with
    /// [`Error::Backend`] ([`PgError::is_pool_timeout`](crate::PgError::is_pool_timeout));
    /// default 10 s. Connecting also fails after this long if the server cannot be reached.
    pub fn checkout_timeout(mut self, d: StdDuration) -> Self {
        self.checkout_timeout = d;
        self
    }

    /// The server-side `statement_timeout` of every connection (default 30 s; `None` leaves
    /// the server's setting). A statement running longer is cancelled and its operation
    /// fails with [`Error::Backend`] ([`PgError::is_timeout`](crate::PgError::is_timeout)),
    /// having written nothing. Waiting for a row lock counts.
    pub fn statement_timeout(mut self, d: Option<StdDuration>) -> Self {
        self.statement_timeout = d;
        self
    }

    /// Whether a connection taken from the pool is first checked with an empty query
    /// (default on). It costs a round trip per operation; off, a connection the server
    /// closed while it sat idle (a restart, an idle timeout) fails the one operation that
    /// next uses it, with [`Error::Backend`], before the pool replaces it.
    pub fn validate_on_checkout(mut self, on: bool) -> Self {
        self.validate_on_checkout = on;
        self
    }

    /// The `application_name` of every connection (default `authdb-postgres`).
    pub fn application_name(mut self, name: impl Into<String>) -> Self {
        self.application_name = name.into();
        self
    }

    /// How long a session lives after it is created or extended. Must be positive.
    pub fn session_max_age(mut self, d: Duration) -> Self {
        self.session_max_age = d;
        self
    }

    /// How often an active session's expiry is pushed forward by `update_session`. Must not
    /// be negative; zero extends on every call.
    pub fn session_update_age(mut self, d: Duration) -> Self {
        self.session_update_age = d;
        self
    }

    /// The clock used for every expiry decision and timestamp. The server's `now()` is never
    /// used: times are written by the client, from this clock.
    pub fn clock(mut self, c: Arc<dyn Clock>) -> Self {
        self.clock = c;
        self
    }

    /// argon2id cost for passwords set from now on.
    pub fn password_params(mut self, p: PasswordParams) -> Self {
        self.password = p;
        self
    }

    /// The key that seals OAuth tokens, ID tokens and provider-specific account fields.
    /// Without one, storing any of them is [`Error::EncryptionKeyRequired`]. Values sealed
    /// here open in an authdb redb file with the same key, and the other way round.
    pub fn encryption_key(mut self, key: EncryptionKey) -> Self {
        self.key = Some(key);
        self
    }

    /// Whether `set_password` deletes every session of the user (on by default, as
    /// `authdb::Builder`): whoever changed the password signs in again. Off keeps the
    /// sessions; the security stamp changes either way.
    pub fn password_change_ends_sessions(mut self, on: bool) -> Self {
        self.password_change_ends_sessions = on;
        self
    }

    /// How many argon2 computations (password checks and new hashes) may run at once in this
    /// process; more callers wait. Each holds the configured argon2 memory (19 MiB by
    /// default). Default 4; at least 1.
    pub fn max_concurrent_hashes(mut self, n: usize) -> Self {
        self.max_concurrent_hashes = n;
        self
    }

    /// An absolute session lifetime: no session's expiry — computed (`create_session`,
    /// `update_session`) or given (`create_session_with`, `set_session_expiry`) — lies past
    /// its creation plus `d`. Off by default. Must be positive.
    pub fn absolute_session_lifetime(mut self, d: Duration) -> Self {
        self.absolute_lifetime = Some(d);
        self
    }

    /// At most `n` sessions per user: creating one more deletes the user's oldest (by
    /// creation time) in the same transaction. Off by default. Must be at least 1.
    pub fn max_sessions_per_user(mut self, n: u32) -> Self {
        self.max_sessions_per_user = Some(n);
        self
    }

    /// Accepts short raw verification tokens (one-time codes mailed to the user) and limits
    /// guessing instead: at most `max_failed_attempts` failed attempts per identifier, exactly
    /// as [`authdb::Builder::allow_short_verification_tokens`] describes. By default a raw
    /// verification token needs
    /// [`MIN_VERIFICATION_TOKEN_BITS`](authdb::limits::MIN_VERIFICATION_TOKEN_BITS) (128) bits
    /// of estimated entropy and nothing is counted.
    ///
    /// With it, a miss of `use_verification_token`, `use_verification_request` or
    /// `get_verification_request` for an identifier that has links counts a failure in the
    /// table `verification_attempts` (keyed by a SHA-256 of the normalized identifier), in the
    /// lookup's transaction, which locks the identifier's links (so concurrent guesses are
    /// counted one after the other); the limit deletes every link of the identifier; a match
    /// forgets the failures; `purge_expired` removes counters older than
    /// [`VERIFICATION_ATTEMPT_WINDOW_SECS`](authdb::limits::VERIFICATION_ATTEMPT_WINDOW_SECS).
    /// `0` is refused at connect with [`Error::InvalidConfig`].
    pub fn allow_short_verification_tokens(mut self, max_failed_attempts: u32) -> Self {
        self.max_failed_verifications = Some(max_failed_attempts);
        self
    }

    fn config(&self) -> Result<Config> {
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
        let absolute_lifetime = match self.absolute_lifetime {
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
            max_age,
            update_age,
            clock: Arc::clone(&self.clock),
            key: self.key.clone(),
            passwords,
            absolute_lifetime,
            max_sessions_per_user: self.max_sessions_per_user,
            password_change_ends_sessions: self.password_change_ends_sessions,
            max_failed_verifications: self.max_failed_verifications,
        })
    }

    fn pg_config_checked(&self) -> Result<postgres::Config> {
        let mut pg = match (&self.pg, &self.url) {
            (Some(c), _) => c.clone(),
            (None, Some(url)) => postgres::Config::from_str(url)
                .map_err(|_| Error::InvalidConfig("the PostgreSQL URL cannot be parsed"))?,
            (None, None) => {
                return Err(Error::InvalidConfig(
                    "no PostgreSQL server given (PgBuilder::url)",
                ));
            }
        };
        pg.connect_timeout(self.connect_timeout)
            .application_name(&self.application_name)
            .keepalives(true)
            .keepalives_idle(StdDuration::from_secs(30))
            .keepalives_interval(StdDuration::from_secs(10))
            .keepalives_retries(3);
        Ok(pg)
    }

    /// Connects: builds the pool (waiting until [`min_idle`](Self::min_idle) connections are
    /// open), then creates or migrates the schema to [`SCHEMA_VERSION`](crate::SCHEMA_VERSION).
    ///
    /// Errors: [`Error::InvalidConfig`] for a bad setting or URL, [`Error::Backend`] when the
    /// server cannot be reached or refuses, [`Error::UnsupportedSchemaVersion`] when the schema
    /// was made by a newer authdb-postgres (it is left untouched).
    pub fn connect(self) -> Result<PgAuthDb> {
        if !schema::valid_name(&self.schema) {
            return Err(Error::InvalidConfig(
                "the schema name must be 1 to 63 ASCII letters, digits or underscores, not \
                 starting with a digit",
            ));
        }
        if self.pool_size == 0 {
            return Err(Error::InvalidConfig("the pool size must be at least 1"));
        }
        if self.min_idle.is_some_and(|n| n > self.pool_size) {
            return Err(Error::InvalidConfig(
                "min_idle must not exceed the pool size",
            ));
        }
        let cfg = self.config()?;
        let pg = self.pg_config_checked()?;
        let mut init = format!("SET search_path TO {};", schema::quoted(&self.schema));
        if let Some(t) = self.statement_timeout {
            let ms = t.as_millis().clamp(1, i32::MAX as u128);
            let _ = write!(init, " SET statement_timeout = {ms};");
        }
        let manager = Manager {
            config: pg,
            connector: self.connector.unwrap_or_else(no_tls),
            init,
        };
        let pool = r2d2::Pool::builder()
            .max_size(self.pool_size)
            .min_idle(self.min_idle)
            .connection_timeout(self.checkout_timeout)
            .test_on_check_out(self.validate_on_checkout)
            .build(manager)
            .map_err(|e| backend(PgError::pool(&e)))?;
        {
            let mut conn = pool.get().map_err(|e| backend(PgError::pool(&e)))?;
            schema::migrate(&mut conn.client, &self.schema, cfg.now_micros())?;
        }
        Ok(PgAuthDb {
            inner: Arc::new(Inner {
                pool,
                cfg,
                schema: self.schema,
            }),
        })
    }
}
