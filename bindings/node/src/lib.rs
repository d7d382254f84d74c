//! The native half of `@authdb/authjs-adapter`: an authdb handle for Node.js.
//!
//! Every operation is an [`AsyncTask`]: its arguments are converted on the JavaScript thread,
//! the authdb call runs on libuv's thread pool (a durable commit never blocks the event loop),
//! and the result is converted back on the JavaScript thread. The JavaScript half (`index.js`)
//! turns these plain records (timestamps as milliseconds, extra fields as JSON text) into
//! Auth.js's shapes; this file knows nothing of Auth.js beyond the operation set.
//!
//! Handles are shared per process: [`open`] keeps one `AuthDb` per file (by canonical path) in
//! a process-wide registry, so a module that is evaluated again (a dev server's reload, a
//! worker thread) gets the handle that already owns the file instead of `AlreadyOpen`.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// JavaScript numbers are f64: timestamps, counters and sizes cross as f64 and are range-checked
// before every conversion (see `time_from_ms`, `time_from_secs`, `counter`).
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_precision_loss,
    clippy::cast_sign_loss,
    clippy::doc_markdown
)]

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Mutex, MutexGuard, OnceLock};

use authdb::prelude::*;
use authdb::{
    Account, AuthDb, Authenticator, Durability, EncryptionKey, Error as DbError, Extra, NewAccount,
    NewAuthenticator, NewSession, NewUser, PurgeTask, Session, ShareMode, User, UserId, UserPatch,
    VerificationToken,
};
use chrono::{DateTime, Utc};
use napi::bindgen_prelude::{JsObjectValue, ToNapiValue, TypeName};
use napi::{Env, JsValue, Status, Task};
use napi_derive::napi;

// ---------------------------------------------------------------------------------------------
// Errors

/// An error about the arguments, found before any work is queued (thrown synchronously).
fn arg_error(msg: impl Into<String>) -> napi::Error {
    napi::Error::new(Status::InvalidArg, msg.into())
}

/// The `code` a JavaScript error carries for each authdb error: the variant's name.
fn error_code(e: &DbError) -> &'static str {
    match e {
        DbError::EmailTaken => "EmailTaken",
        DbError::AccountLinkedToAnotherUser => "AccountLinkedToAnotherUser",
        DbError::VerificationTokenTaken => "VerificationTokenTaken",
        DbError::SessionTokenTaken => "SessionTokenTaken",
        DbError::AuthenticatorTaken => "AuthenticatorTaken",
        DbError::AuthenticatorNotFound => "AuthenticatorNotFound",
        DbError::CounterNotIncreased { .. } => "CounterNotIncreased",
        DbError::UserNotFound(_) => "UserNotFound",
        DbError::InvalidInput { .. } => "InvalidInput",
        DbError::InvalidValue { .. } => "InvalidValue",
        DbError::InvalidConfig(_) => "InvalidConfig",
        DbError::EncryptionKeyRequired => "EncryptionKeyRequired",
        DbError::SendFailed(_) => "SendFailed",
        DbError::Busy => "Busy",
        DbError::AlreadyOpen => "AlreadyOpen",
        DbError::MigrationFailed { .. } => "MigrationFailed",
        DbError::UnsupportedSchemaVersion { .. } => "UnsupportedSchemaVersion",
        DbError::Corrupt { .. } => "Corrupt",
        DbError::PasswordHash(_) => "PasswordHash",
        DbError::Randomness(_) => "Randomness",
        DbError::Backend { .. } => "Backend",
        DbError::Storage(_) => "Storage",
        DbError::ReadOnly => "ReadOnly",
        _ => "AuthDbError",
    }
}

/// What went wrong in an operation: an authdb error, or a failure of the binding itself.
pub enum Failure {
    Db(DbError),
    /// The operation panicked (authdb promises not to; this keeps Node alive if it does).
    Panic,
}

/// Builds the JavaScript `Error` a promise is rejected with: `name` `AuthDbError`, `code` the
/// authdb error's name (see [`error_code`]), `field` for input errors. Authdb's messages
/// never contain a token, password or secret, so they are passed on as they are.
fn js_error(env: Env, failure: &Failure) -> napi::Error {
    let (code, message, field) = match failure {
        Failure::Db(e) => {
            let field = match e {
                DbError::InvalidInput { field, .. } | DbError::InvalidValue { field, .. } => {
                    Some(*field)
                }
                _ => None,
            };
            (error_code(e), format!("authdb: {e}"), field)
        }
        Failure::Panic => (
            "Internal",
            "authdb: internal error (the operation panicked; nothing was returned)".to_owned(),
            None,
        ),
    };
    let base = napi::Error::new(Status::GenericFailure, message.clone());
    let built = env.create_error(base).and_then(|mut obj| {
        obj.set_named_property("name", "AuthDbError")?;
        obj.set_named_property("code", code)?;
        if let Some(field) = field {
            obj.set_named_property("field", field)?;
        }
        Ok(napi::Error::from(obj.to_unknown()))
    });
    built.unwrap_or_else(|_| napi::Error::new(Status::GenericFailure, message))
}

// ---------------------------------------------------------------------------------------------
// The task every operation runs as

type Work<T> = Box<dyn FnOnce() -> authdb::Result<T> + Send>;

/// One authdb call on libuv's thread pool; resolves with `T` or rejects with an `AuthDbError`.
pub struct Job<T> {
    work: Option<Work<T>>,
}

impl<T> Job<T> {
    fn new(
        f: impl FnOnce() -> authdb::Result<T> + Send + 'static,
    ) -> napi::bindgen_prelude::AsyncTask<Self>
    where
        T: ToNapiValue + TypeName + Send + 'static,
    {
        napi::bindgen_prelude::AsyncTask::new(Self {
            work: Some(Box::new(f)),
        })
    }
}

impl<T: ToNapiValue + TypeName + Send + 'static> Task for Job<T> {
    type Output = Result<T, Failure>;
    type JsValue = T;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        let Some(work) = self.work.take() else {
            return Err(napi::Error::new(
                Status::GenericFailure,
                "authdb: a task ran twice".to_owned(),
            ));
        };
        // A panic must not unwind into libuv (that aborts the process).
        Ok(match catch_unwind(AssertUnwindSafe(work)) {
            Ok(result) => result.map_err(Failure::Db),
            Err(_) => Err(Failure::Panic),
        })
    }

    fn resolve(&mut self, env: Env, output: Self::Output) -> napi::Result<T> {
        output.map_err(|f| js_error(env, &f))
    }
}

// ---------------------------------------------------------------------------------------------
// Conversions

/// Largest magnitude of a JavaScript `Date`'s time value (ECMAScript: ±8.64e15 ms).
const MAX_DATE_MS: f64 = 8.64e15;

fn time_from_ms(field: &str, ms: f64) -> napi::Result<DateTime<Utc>> {
    if !ms.is_finite() || ms.abs() > MAX_DATE_MS {
        return Err(arg_error(format!("`{field}` must be a valid Date")));
    }
    DateTime::from_timestamp_micros((ms.trunc() as i64) * 1000)
        .ok_or_else(|| arg_error(format!("`{field}` must be a valid Date")))
}

fn ms(t: DateTime<Utc>) -> f64 {
    t.timestamp_millis() as f64
}

/// Auth.js's `expires_at`: Unix seconds (a whole number in practice; fractions are kept to
/// the microsecond).
fn time_from_secs(field: &str, secs: f64) -> napi::Result<DateTime<Utc>> {
    if !secs.is_finite() || secs.abs() > MAX_DATE_MS / 1000.0 {
        return Err(arg_error(format!(
            "`{field}` must be a finite number of seconds since 1970"
        )));
    }
    DateTime::from_timestamp_micros((secs * 1e6).round() as i64).ok_or_else(|| {
        arg_error(format!(
            "`{field}` must be a finite number of seconds since 1970"
        ))
    })
}

fn secs(t: DateTime<Utc>) -> f64 {
    t.timestamp_micros() as f64 / 1e6
}

fn user_id(field: &str, s: &str) -> napi::Result<UserId> {
    UserId::from_str(s).map_err(|_| {
        arg_error(format!(
            "`{field}` must be a UUID (authdb's user ids are UUIDs)"
        ))
    })
}

/// An `extra` object given as JSON text (the JavaScript half serializes it).
fn extra_from_json(field: &str, json: Option<&str>) -> napi::Result<Extra> {
    let Some(json) = json else {
        return Ok(Extra::new());
    };
    match serde_json::from_str::<serde_json::Value>(json) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        _ => Err(arg_error(format!("`{field}` must be a JSON object"))),
    }
}

fn extra_to_json(extra: &Extra) -> Option<String> {
    if extra.is_empty() {
        None
    } else {
        serde_json::to_string(extra).ok()
    }
}

/// A stored user. `extra` is the JSON text of the application's own fields (absent when none).
#[napi(object)]
pub struct RawUser {
    pub id: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub image: Option<String>,
    /// Milliseconds since 1970.
    pub email_verified: Option<f64>,
    pub extra: Option<String>,
    pub created_at: f64,
    pub updated_at: f64,
}

impl From<User> for RawUser {
    fn from(u: User) -> Self {
        Self {
            id: u.id.to_string(),
            extra: extra_to_json(&u.extra),
            name: u.name,
            email: u.email,
            image: u.image,
            email_verified: u.email_verified.map(ms),
            created_at: ms(u.created_at),
            updated_at: ms(u.updated_at),
        }
    }
}

/// A user profile to create, or the fields to set in an update.
#[napi(object)]
pub struct UserInput {
    pub name: Option<String>,
    pub email: Option<String>,
    pub image: Option<String>,
    /// Milliseconds since 1970.
    pub email_verified: Option<f64>,
    /// JSON text of an object: the application's own fields.
    pub extra: Option<String>,
}

/// A linked provider account. `expires_at` is in Unix seconds; `extra` is JSON text.
#[napi(object)]
pub struct RawAccount {
    pub id: String,
    pub user_id: String,
    pub provider_type: String,
    pub provider: String,
    pub provider_account_id: String,
    pub refresh_token: Option<String>,
    pub access_token: Option<String>,
    pub expires_at: Option<f64>,
    pub token_type: Option<String>,
    pub scope: Option<String>,
    pub id_token: Option<String>,
    pub session_state: Option<String>,
    pub extra: Option<String>,
    pub created_at: f64,
    pub updated_at: f64,
}

impl From<Account> for RawAccount {
    fn from(a: Account) -> Self {
        Self {
            id: a.id.to_string(),
            user_id: a.user_id.to_string(),
            extra: extra_to_json(&a.extra),
            provider_type: a.provider_type,
            provider: a.provider_id,
            provider_account_id: a.provider_account_id,
            refresh_token: a.refresh_token,
            access_token: a.access_token,
            expires_at: a.access_token_expires.map(secs),
            token_type: a.token_type,
            scope: a.scope,
            id_token: a.id_token,
            session_state: a.session_state,
            created_at: ms(a.created_at),
            updated_at: ms(a.updated_at),
        }
    }
}

/// An account to link.
#[napi(object)]
pub struct AccountInput {
    pub provider_type: String,
    pub provider: String,
    pub provider_account_id: String,
    pub refresh_token: Option<String>,
    pub access_token: Option<String>,
    /// Unix seconds.
    pub expires_at: Option<f64>,
    pub token_type: Option<String>,
    pub scope: Option<String>,
    pub id_token: Option<String>,
    pub session_state: Option<String>,
    /// JSON text of an object: provider-specific fields.
    pub extra: Option<String>,
}

/// A session. `expires` is in milliseconds since 1970.
#[napi(object)]
pub struct RawSession {
    pub id: String,
    pub session_token: String,
    pub user_id: String,
    pub expires: f64,
    pub created_at: f64,
    pub updated_at: f64,
}

impl From<Session> for RawSession {
    fn from(s: Session) -> Self {
        Self {
            id: s.id.to_string(),
            user_id: s.user_id.to_string(),
            session_token: s.session_token,
            expires: ms(s.expires),
            created_at: ms(s.created_at),
            updated_at: ms(s.updated_at),
        }
    }
}

#[napi(object)]
pub struct RawSessionAndUser {
    pub session: RawSession,
    pub user: RawUser,
}

/// An email sign-in token (the hash Auth.js made). `expires` in milliseconds since 1970.
#[napi(object)]
pub struct RawVerificationToken {
    pub identifier: String,
    pub token: String,
    pub expires: f64,
}

impl From<VerificationToken> for RawVerificationToken {
    fn from(v: VerificationToken) -> Self {
        Self {
            identifier: v.identifier,
            token: v.token,
            expires: ms(v.expires),
        }
    }
}

/// A WebAuthn authenticator.
#[napi(object)]
pub struct RawAuthenticator {
    pub credential_id: String,
    pub user_id: String,
    pub provider_account_id: String,
    pub credential_public_key: String,
    pub counter: f64,
    pub credential_device_type: String,
    pub credential_backed_up: bool,
    pub transports: Option<String>,
    pub created_at: f64,
    pub updated_at: f64,
}

impl From<Authenticator> for RawAuthenticator {
    fn from(a: Authenticator) -> Self {
        Self {
            credential_id: a.credential_id,
            user_id: a.user_id.to_string(),
            provider_account_id: a.provider_account_id,
            credential_public_key: a.credential_public_key,
            counter: a.counter as f64,
            credential_device_type: a.credential_device_type,
            credential_backed_up: a.credential_backed_up,
            transports: a.transports,
            created_at: ms(a.created_at),
            updated_at: ms(a.updated_at),
        }
    }
}

#[napi(object)]
pub struct AuthenticatorInput {
    pub credential_id: String,
    pub user_id: String,
    pub provider_account_id: String,
    pub credential_public_key: String,
    pub counter: f64,
    pub credential_device_type: String,
    pub credential_backed_up: bool,
    pub transports: Option<String>,
}

/// Largest integer a JavaScript number holds exactly.
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

fn counter(field: &str, n: f64) -> napi::Result<u64> {
    if !n.is_finite() || n < 0.0 || n.fract() != 0.0 || n > MAX_SAFE_INTEGER {
        return Err(arg_error(format!(
            "`{field}` must be a non-negative integer"
        )));
    }
    Ok(n as u64)
}

/// What `checkIntegrity` reports.
#[napi(object)]
pub struct RawIntegrity {
    pub clean: bool,
    pub problems: Vec<String>,
    pub users: f64,
    pub accounts: f64,
    pub sessions: f64,
    pub verification_tokens: f64,
    pub authenticators: f64,
}

/// What `purgeExpired` removed.
#[napi(object)]
pub struct RawPurge {
    pub sessions: f64,
    pub verification_tokens: f64,
}

// ---------------------------------------------------------------------------------------------
// Opening, and the per-process registry

/// How to open a database file.
#[napi(object)]
pub struct OpenOptions {
    /// The database file (created if missing).
    pub path: String,
    /// A secret string the OAuth-token encryption key is derived from (such as AUTH_SECRET).
    pub encryption_secret: Option<String>,
    /// Or the key itself: 32 bytes as 64 hex characters.
    pub encryption_key_hex: Option<String>,
    /// `"immediate"` (default: every commit is flushed to disk) or `"none"`.
    pub durability: Option<String>,
    /// Bytes of page cache (default 64 MiB).
    pub cache_size: Option<f64>,
    /// Verify every page checksum when the file is opened (default true).
    pub verify_on_open: Option<bool>,
    /// Seconds between purges of expired sessions and sign-in links (default 3600; 0: never).
    pub purge_interval_seconds: Option<f64>,
    /// How processes share the file: `"exclusive"` (default), `"single-writer"` or
    /// `"multi-writer"` (authdb's `ShareMode`).
    pub share_mode: Option<String>,
}

/// The settings a file was opened with; a second open in the process must ask for the same.
#[derive(PartialEq)]
struct Settings {
    key: Option<EncryptionKey>,
    durability: Durability,
    cache_size: Option<usize>,
    verify_on_open: bool,
    purge_every: Option<std::time::Duration>,
    share: ShareMode,
}

struct Entry {
    db: AuthDb,
    settings: Settings,
    _purge: Option<PurgeTask>,
}

fn registry() -> MutexGuard<'static, HashMap<PathBuf, Entry>> {
    static REGISTRY: OnceLock<Mutex<HashMap<PathBuf, Entry>>> = OnceLock::new();
    let m = REGISTRY.get_or_init(|| Mutex::new(HashMap::new()));
    // The lock is never held across user code; a poisoned map is still consistent.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The registry key for a path: absolute, with its directory canonicalized (the file itself
/// may not exist yet).
fn canonical(path: &str) -> std::io::Result<PathBuf> {
    let abs = std::path::absolute(Path::new(path))?;
    match (abs.parent(), abs.file_name()) {
        (Some(dir), Some(name)) => Ok(dir.canonicalize()?.join(name)),
        _ => Ok(abs),
    }
}

fn hex_key(s: &str) -> napi::Result<EncryptionKey> {
    let bad = || arg_error("`encryptionKey` given as bytes must be exactly 32 bytes");
    if s.len() != 64 || !s.is_ascii() {
        return Err(bad());
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        let pair = s.get(2 * i..2 * i + 2).ok_or_else(bad)?;
        *byte = u8::from_str_radix(pair, 16).map_err(|_| bad())?;
    }
    Ok(EncryptionKey::from_bytes(out))
}

fn settings(o: &OpenOptions) -> napi::Result<Settings> {
    let key = match (&o.encryption_secret, &o.encryption_key_hex) {
        (Some(_), Some(_)) => {
            return Err(arg_error(
                "give the encryption key either as a secret string or as bytes, not both",
            ));
        }
        (Some(secret), None) => {
            if secret.is_empty() {
                return Err(arg_error("`encryptionKey` must not be empty"));
            }
            Some(
                EncryptionKey::from_secret(secret)
                    .into_key()
                    .map_err(|e| arg_error(format!("`encryptionKey`: {e}")))?,
            )
        }
        (None, Some(hex)) => Some(hex_key(hex)?),
        (None, None) => None,
    };
    let durability = match o.durability.as_deref() {
        None | Some("immediate") => Durability::Immediate,
        Some("none") => Durability::None,
        Some(_) => return Err(arg_error("`durability` must be \"immediate\" or \"none\"")),
    };
    let cache_size = match o.cache_size {
        None => None,
        Some(n) if n.is_finite() && n >= 0.0 && n.fract() == 0.0 && n <= MAX_SAFE_INTEGER => {
            Some(n as usize)
        }
        Some(_) => return Err(arg_error("`cacheSize` must be a non-negative integer")),
    };
    let purge_every = match o.purge_interval_seconds {
        None => Some(std::time::Duration::from_secs(3600)),
        Some(0.0) => None,
        Some(n) if n.is_finite() && n > 0.0 && n <= 1e9 => {
            Some(std::time::Duration::from_secs_f64(n))
        }
        Some(_) => {
            return Err(arg_error(
                "`purgeIntervalSeconds` must be a number of seconds (0 turns purging off)",
            ));
        }
    };
    let share = match o.share_mode.as_deref() {
        None | Some("exclusive") => ShareMode::Exclusive,
        Some("single-writer") => ShareMode::SingleWriter,
        Some("multi-writer") => ShareMode::MultiWriter,
        Some(_) => {
            return Err(arg_error(
                "`shareMode` must be \"exclusive\", \"single-writer\" or \"multi-writer\"",
            ));
        }
    };
    Ok(Settings {
        key,
        durability,
        cache_size,
        verify_on_open: o.verify_on_open.unwrap_or(true),
        purge_every,
        share,
    })
}

/// `EncryptionKey::from_secret` as a `Result` whether authdb returns the key itself or a
/// `Result` (newer versions refuse secrets that are too short).
trait IntoKey {
    fn into_key(self) -> authdb::Result<EncryptionKey>;
}

impl IntoKey for EncryptionKey {
    fn into_key(self) -> authdb::Result<EncryptionKey> {
        Ok(self)
    }
}

impl IntoKey for authdb::Result<EncryptionKey> {
    fn into_key(self) -> authdb::Result<EncryptionKey> {
        self
    }
}

fn open_shared(path: &str, s: Settings) -> authdb::Result<AuthDb> {
    let key = canonical(path).map_err(DbError::from)?;
    let mut reg = registry();
    if let Some(entry) = reg.get(&key) {
        if entry.settings == s {
            return Ok(entry.db.clone());
        }
        return Err(DbError::InvalidConfig(
            "this file is already open in this process with different options \
             (encryption key, durability, share mode, cache size, verifyOnOpen or purge interval)",
        ));
    }
    let mut b = AuthDb::builder()
        .durability(s.durability)
        .verify_on_open(s.verify_on_open)
        .share_mode(s.share);
    if let Some(k) = &s.key {
        b = b.encryption_key(k.clone());
    }
    if let Some(c) = s.cache_size {
        b = b.cache_size(c);
    }
    let db = b.open(&key)?;
    let purge = s.purge_every.map(|every| db.spawn_purge_task(every));
    reg.insert(
        key,
        Entry {
            db: db.clone(),
            settings: s,
            _purge: purge,
        },
    );
    Ok(db)
}

/// Opens (or joins) the database at `options.path`. Resolves with a handle; the file stays
/// open in this process until [`forget`] is called for it and every handle is collected.
#[napi(strict)]
pub fn open(options: OpenOptions) -> napi::Result<napi::bindgen_prelude::AsyncTask<Job<Handle>>> {
    if options.path.is_empty() {
        return Err(arg_error("`path` must be a non-empty string"));
    }
    let s = settings(&options)?;
    let path = options.path;
    Ok(Job::new(move || {
        open_shared(&path, s).map(|db| Handle { db })
    }))
}

/// Drops this process's shared handle to the file at `path` (the file is released once every
/// JavaScript handle to it has been collected). Returns whether one was registered.
#[napi(strict)]
pub fn forget(path: String) -> bool {
    let Ok(key) = canonical(&path) else {
        return false;
    };
    registry().remove(&key).is_some()
}

// ---------------------------------------------------------------------------------------------
// The handle

type Pending<T> = napi::bindgen_prelude::AsyncTask<Job<T>>;

/// An open authdb database. Every method returns a promise; the work runs off the JavaScript
/// thread.
#[napi]
pub struct Handle {
    db: AuthDb,
}

#[napi]
impl Handle {
    // -- users

    #[napi(strict)]
    pub fn create_user(&self, input: UserInput) -> napi::Result<Pending<RawUser>> {
        let profile = NewUser {
            name: input.name,
            email: input.email,
            image: input.image,
            email_verified: input
                .email_verified
                .map(|t| time_from_ms("emailVerified", t))
                .transpose()?,
            extra: extra_from_json("extra", input.extra.as_deref())?,
        };
        let db = self.db.clone();
        Ok(Job::new(move || {
            db.create_user(&profile).map(RawUser::from)
        }))
    }

    /// `null` for an unknown id, including a string that is not a UUID (no user has it).
    #[napi(strict)]
    pub fn get_user(&self, id: String) -> Pending<Option<RawUser>> {
        let db = self.db.clone();
        Job::new(move || match UserId::from_str(&id) {
            Ok(id) => Ok(db.get_user(&id)?.map(RawUser::from)),
            Err(_) => Ok(None),
        })
    }

    #[napi(strict)]
    pub fn get_user_by_email(&self, email: String) -> Pending<Option<RawUser>> {
        let db = self.db.clone();
        Job::new(move || Ok(db.get_user_by_email(&email)?.map(RawUser::from)))
    }

    #[napi(strict)]
    pub fn get_user_by_account(
        &self,
        provider: String,
        provider_account_id: String,
    ) -> Pending<Option<RawUser>> {
        let db = self.db.clone();
        Job::new(move || {
            Ok(db
                .get_user_by_account(&provider, &provider_account_id)?
                .map(RawUser::from))
        })
    }

    /// A partial update: fields of `set` that are given are set, fields named in `clear`
    /// (`name`, `email`, `image`, `emailVerified`) are cleared, and `set.extra` is merged key
    /// by key (a key whose value is JSON `null` is removed).
    #[napi(strict)]
    pub fn update_user(
        &self,
        id: String,
        set: UserInput,
        clear: Vec<String>,
    ) -> napi::Result<Pending<RawUser>> {
        let id = user_id("id", &id)?;
        let mut patch = UserPatch {
            name: set.name.map(Some),
            email: set.email.map(Some),
            image: set.image.map(Some),
            email_verified: set
                .email_verified
                .map(|t| time_from_ms("emailVerified", t).map(Some))
                .transpose()?,
            extra: set
                .extra
                .as_deref()
                .map(|j| extra_from_json("extra", Some(j)))
                .transpose()?,
        };
        for field in &clear {
            match field.as_str() {
                "name" => patch.name = Some(None),
                "email" => patch.email = Some(None),
                "image" => patch.image = Some(None),
                "emailVerified" => patch.email_verified = Some(None),
                other => {
                    return Err(arg_error(format!(
                        "cannot clear `{other}` (only name, email, image and emailVerified)"
                    )));
                }
            }
        }
        let db = self.db.clone();
        Ok(Job::new(move || {
            db.patch_user(&id, &patch).map(RawUser::from)
        }))
    }

    #[napi(strict)]
    pub fn delete_user(&self, id: String) -> napi::Result<Pending<()>> {
        let id = user_id("userId", &id)?;
        let db = self.db.clone();
        Ok(Job::new(move || db.delete_user(&id)))
    }

    // -- accounts

    #[napi(strict)]
    pub fn link_account(
        &self,
        user_id_str: String,
        input: AccountInput,
    ) -> napi::Result<Pending<RawAccount>> {
        let uid = user_id("userId", &user_id_str)?;
        let account = NewAccount {
            provider_type: input.provider_type,
            provider_id: input.provider,
            provider_account_id: input.provider_account_id,
            refresh_token: input.refresh_token,
            access_token: input.access_token,
            access_token_expires: input
                .expires_at
                .map(|s| time_from_secs("expires_at", s))
                .transpose()?,
            token_type: input.token_type,
            scope: input.scope,
            id_token: input.id_token,
            session_state: input.session_state,
            extra: extra_from_json("extra", input.extra.as_deref())?,
        };
        let db = self.db.clone();
        Ok(Job::new(move || {
            db.link_account(&uid, &account).map(RawAccount::from)
        }))
    }

    #[napi(strict)]
    pub fn unlink_account(
        &self,
        provider: String,
        provider_account_id: String,
    ) -> Pending<Option<RawAccount>> {
        let db = self.db.clone();
        Job::new(move || {
            Ok(db
                .unlink_account_by_provider(&provider, &provider_account_id)?
                .map(RawAccount::from))
        })
    }

    #[napi(strict)]
    pub fn get_account(
        &self,
        provider: String,
        provider_account_id: String,
    ) -> Pending<Option<RawAccount>> {
        let db = self.db.clone();
        Job::new(move || {
            Ok(db
                .get_account(&provider, &provider_account_id)?
                .map(RawAccount::from))
        })
    }

    // -- sessions

    #[napi(strict)]
    pub fn create_session(
        &self,
        session_token: String,
        user_id_str: String,
        expires: f64,
    ) -> napi::Result<Pending<RawSession>> {
        let session = NewSession {
            user_id: user_id("userId", &user_id_str)?,
            session_token,
            expires: time_from_ms("expires", expires)?,
        };
        let db = self.db.clone();
        Ok(Job::new(move || {
            db.create_session_with(&session).map(RawSession::from)
        }))
    }

    #[napi(strict)]
    pub fn get_session_and_user(
        &self,
        session_token: String,
    ) -> Pending<Option<RawSessionAndUser>> {
        let db = self.db.clone();
        Job::new(move || {
            Ok(db
                .get_session_and_user(&session_token)?
                .map(|(s, u)| RawSessionAndUser {
                    session: s.into(),
                    user: u.into(),
                }))
        })
    }

    #[napi(strict)]
    pub fn update_session(
        &self,
        session_token: String,
        expires: f64,
    ) -> napi::Result<Pending<Option<RawSession>>> {
        let expires = time_from_ms("expires", expires)?;
        let db = self.db.clone();
        Ok(Job::new(move || {
            Ok(db
                .set_session_expiry(&session_token, expires)?
                .map(RawSession::from))
        }))
    }

    #[napi(strict)]
    pub fn delete_session(&self, session_token: String) -> Pending<Option<RawSession>> {
        let db = self.db.clone();
        Job::new(move || {
            Ok(db
                .delete_session_returning(&session_token)?
                .map(RawSession::from))
        })
    }

    // -- email sign-in

    #[napi(strict)]
    pub fn create_verification_token(
        &self,
        identifier: String,
        token: String,
        expires: f64,
    ) -> napi::Result<Pending<RawVerificationToken>> {
        let vt = VerificationToken {
            identifier,
            token,
            expires: time_from_ms("expires", expires)?,
        };
        let db = self.db.clone();
        Ok(Job::new(move || {
            db.create_verification_token(&vt)
                .map(RawVerificationToken::from)
        }))
    }

    #[napi(strict)]
    pub fn use_verification_token(
        &self,
        identifier: String,
        token: String,
    ) -> Pending<Option<RawVerificationToken>> {
        let db = self.db.clone();
        Job::new(move || {
            Ok(db
                .use_verification_token(&identifier, &token)?
                .map(RawVerificationToken::from))
        })
    }

    // -- WebAuthn

    #[napi(strict)]
    pub fn create_authenticator(
        &self,
        input: AuthenticatorInput,
    ) -> napi::Result<Pending<RawAuthenticator>> {
        let a = NewAuthenticator {
            user_id: user_id("userId", &input.user_id)?,
            counter: counter("counter", input.counter)?,
            credential_id: input.credential_id,
            provider_account_id: input.provider_account_id,
            credential_public_key: input.credential_public_key,
            credential_device_type: input.credential_device_type,
            credential_backed_up: input.credential_backed_up,
            transports: input.transports,
        };
        let db = self.db.clone();
        Ok(Job::new(move || {
            db.create_authenticator(&a).map(RawAuthenticator::from)
        }))
    }

    #[napi(strict)]
    pub fn get_authenticator(&self, credential_id: String) -> Pending<Option<RawAuthenticator>> {
        let db = self.db.clone();
        Job::new(move || {
            Ok(db
                .get_authenticator(&credential_id)?
                .map(RawAuthenticator::from))
        })
    }

    /// `[]` for an unknown user, including a string that is not a UUID.
    #[napi(strict)]
    pub fn list_authenticators(&self, user_id_str: String) -> Pending<Vec<RawAuthenticator>> {
        let db = self.db.clone();
        Job::new(move || match UserId::from_str(&user_id_str) {
            Ok(id) => Ok(db
                .list_authenticators(&id)?
                .into_iter()
                .map(RawAuthenticator::from)
                .collect()),
            Err(_) => Ok(Vec::new()),
        })
    }

    #[napi(strict)]
    pub fn update_authenticator_counter(
        &self,
        credential_id: String,
        new_counter: f64,
    ) -> napi::Result<Pending<RawAuthenticator>> {
        let n = counter("newCounter", new_counter)?;
        let db = self.db.clone();
        Ok(Job::new(move || {
            db.update_authenticator_counter(&credential_id, n)
                .map(RawAuthenticator::from)
        }))
    }

    // -- housekeeping

    /// Removes expired sessions and sign-in links now.
    #[napi(strict)]
    pub fn purge_expired(&self) -> Pending<RawPurge> {
        let db = self.db.clone();
        Job::new(move || {
            let s = db.purge_expired()?;
            Ok(RawPurge {
                sessions: s.sessions as f64,
                verification_tokens: s.verification_requests as f64,
            })
        })
    }

    /// Checks that every index agrees with every table.
    #[napi(strict)]
    pub fn check_integrity(&self) -> Pending<RawIntegrity> {
        let db = self.db.clone();
        Job::new(move || {
            let r = db.check_integrity()?;
            Ok(RawIntegrity {
                clean: r.is_clean(),
                problems: r.problems().iter().map(ToString::to_string).collect(),
                users: r.users as f64,
                accounts: r.accounts as f64,
                sessions: r.sessions as f64,
                verification_tokens: r.verification_requests as f64,
                authenticators: r.authenticators as f64,
            })
        })
    }

    // -- test hooks: reads that change nothing, for the test suite's `db` helpers

    /// The session with this token as stored (no expiry deletion: read in a transaction that
    /// is then discarded).
    #[napi(strict)]
    pub fn test_read_session(&self, session_token: String) -> Pending<Option<RawSession>> {
        let db = self.db.clone();
        Job::new(move || {
            let tx = db.begin_write()?;
            let found = tx.get_session(&session_token)?;
            tx.abort()?;
            Ok(found.map(RawSession::from))
        })
    }

    /// The live sign-in token matching identifier and hash, without using it up (read in a
    /// transaction that is then discarded).
    #[napi(strict)]
    pub fn test_read_verification_token(
        &self,
        identifier: String,
        token: String,
    ) -> Pending<Option<RawVerificationToken>> {
        let db = self.db.clone();
        Job::new(move || {
            let tx = db.begin_write()?;
            let found = tx.use_verification_token(&identifier, &token)?;
            tx.abort()?;
            Ok(found.map(RawVerificationToken::from))
        })
    }
}
