//! The reference model: docs/behaviour.md's semantics as a plain in-memory store.
//!
//! Written from docs/behaviour.md and the rustdoc of the public API, not from authdb's
//! internals: its own normalization (NFKC, lowercase, trim), expiry rule, throttle formula,
//! cascade, verification matching and keying, security-stamp rule, counter rule and input
//! checks. It uses authdb's public value types only (`NewUser`, `NewAccount`, `UserPatch`,
//! `Extra`, `InputProblem`). Ids are small integers handed out in creation order; the driver
//! maps the store's UUIDs to them. Timestamps are microseconds since the Unix epoch.
//!
//! Security stamps are random in the store, so the model gives each stamp a number instead,
//! drawn from a counter that never rolls back: a user keeps their number until an event that
//! replaces the stamp gives them a new one. The driver maps stamps to numbers the way it maps
//! ids, so a store that replaces a stamp when it should not, or keeps one it should replace,
//! disagrees with the model.
//!
//! Transactions: the data lives in [`Tables`], which is cloned at `begin` and put back on a
//! drop. The clock and the id counters live outside it (time does not roll back, and an id
//! handed out in a dropped transaction is never reused).

use std::collections::BTreeMap;
use std::fmt;

use authdb::{Extra, InputProblem, NewAccount, NewUser, UserPatch};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use unicode_normalization::UnicodeNormalization;

/// Microseconds since the Unix epoch.
pub type Micros = i64;

/// The model id of the user id that never existed.
pub const NO_USER: u32 = u32::MAX;
/// The model id of the session id that never existed.
pub const NO_SESSION: u32 = u32::MAX;

// Input limits from docs/behaviour.md, section 8.
const MAX_EMAIL: usize = 320;
const MAX_NAME: usize = 1024;
const MAX_IMAGE: usize = 8 * 1024;
const MAX_EXTRA: usize = 16 * 1024;
const MAX_PROVIDER_ID: usize = 128;
const MAX_PROVIDER_ACCOUNT_ID: usize = 512;
const MAX_OAUTH_TOKEN: usize = 8 * 1024;
const MAX_ID_TOKEN: usize = 16 * 1024;
const MAX_TOKEN_TYPE: usize = 128;
const MAX_SCOPE: usize = 4 * 1024;
const MAX_SESSION_STATE: usize = 1024;
const MAX_PASSWORD: usize = 1024;
const MAX_URL: usize = 8 * 1024;
const MAX_TOKEN: usize = 1024;
const MAX_SESSION_TOKEN: usize = 1024;
const MAX_CREDENTIAL_ID: usize = 1024;
const MAX_PUBLIC_KEY: usize = 4 * 1024;
const MAX_DEVICE_TYPE: usize = 32;
const MAX_TRANSPORTS: usize = 256;
const MAX_WEB_SESSION_DATA: usize = 64 * 1024;

/// docs/behaviour.md section 2: the accepted provider types.
const PROVIDER_TYPES: [&str; 4] = ["oauth", "oidc", "email", "webauthn"];

/// A secret string (session token, access token, token hash) that compares by value but
/// never prints: `Debug` shows a short SHA-256 tag, enough to tell two values apart.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = Sha256::digest(self.0.as_bytes());
        write!(
            f,
            "Secret(#{:02x}{:02x}{:02x}{:02x})",
            h[0], h[1], h[2], h[3]
        )
    }
}

/// Errors, by kind. `UserNotFound` carries the model user id; `InvalidValue` only the field
/// (its reason is prose).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MErr {
    EmailTaken,
    AccountLinkedToAnotherUser,
    VerificationTokenTaken,
    SessionTokenTaken,
    AuthenticatorTaken,
    AuthenticatorNotFound,
    CounterNotIncreased {
        stored: u64,
        given: u64,
    },
    UserNotFound(u32),
    InvalidInput {
        field: &'static str,
        problem: InputProblem,
    },
    InvalidValue {
        field: &'static str,
    },
    SendFailed,
    EncryptionKeyRequired,
    /// Several input values are invalid: the store reports one of them (docs/behaviour.md does
    /// not order the checks of one call's inputs).
    OneOf(Vec<MErr>),
    /// An error the model never produces (storage, corruption...): always a mismatch.
    Unexpected(String),
}

/// The model's result type.
pub type MResult<T> = Result<T, MErr>;

/// A user. `stamp` is the model number of the security stamp (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MUser {
    pub id: u32,
    pub name: Option<String>,
    pub email: Option<String>,
    pub image: Option<String>,
    pub email_verified: Option<Micros>,
    pub extra: Extra,
    pub stamp: u32,
    pub created_at: Micros,
    pub updated_at: Micros,
}

/// A provider account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MAccount {
    pub id: u32,
    pub user: u32,
    pub provider_type: String,
    pub provider_id: String,
    pub provider_account_id: String,
    pub refresh_token: Option<Secret>,
    pub access_token: Option<Secret>,
    pub access_token_expires: Option<Micros>,
    pub token_type: Option<String>,
    pub scope: Option<String>,
    pub id_token: Option<Secret>,
    pub session_state: Option<String>,
    pub extra: Extra,
    pub created_at: Micros,
    pub updated_at: Micros,
}

/// A session as returned by `create/get/update_session` and friends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MSession {
    pub id: u32,
    pub user: u32,
    pub expires: Micros,
    pub session_token: Secret,
    pub access_token: Secret,
    pub created_at: Micros,
    pub updated_at: Micros,
}

/// A session as listed by `list_sessions` (no tokens).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MSessionInfo {
    pub id: u32,
    pub user: u32,
    pub expires: Micros,
    pub created_at: Micros,
    pub updated_at: Micros,
}

/// A v3 verification request as returned; `token` is the lowercase hex hash (its key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MRequest {
    pub id: u32,
    pub identifier: String,
    pub token: Secret,
    pub expires: Micros,
    pub created_at: Micros,
    pub updated_at: Micros,
}

/// An Auth.js verification token as returned: the identifier as stored, the hash string the
/// caller passed, the expiry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MToken {
    pub identifier: String,
    pub token: Secret,
    pub expires: Micros,
}

/// A WebAuthn authenticator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MAuthenticator {
    pub credential_id: String,
    pub user: u32,
    pub provider_account_id: String,
    pub credential_public_key: String,
    pub counter: u64,
    pub credential_device_type: String,
    pub credential_backed_up: bool,
    pub transports: Option<String>,
    pub created_at: Micros,
    pub updated_at: Micros,
}

/// A web session (tower-sessions record) as `web_session_load` returns it (the id is the one
/// asked for).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MWebSession {
    pub user: Option<u32>,
    pub expires: Micros,
    /// The data's length and SHA-256 (the data itself can be 64 KiB).
    pub data: (usize, [u8; 32]),
}

/// A web session as `web_session_list_for_user` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MWebInfo {
    /// The public handle: SHA-256 of the id, as lowercase hex.
    pub handle: String,
    pub user: Option<u32>,
    pub expires: Micros,
    pub created_at: Micros,
    pub updated_at: Micros,
    pub data_len: usize,
}

/// What `purge_expired` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MPurge {
    pub sessions: u64,
    pub verification_requests: u64,
    pub web_sessions: u64,
}

/// Row counts, compared with `check_integrity`'s report (expired rows still stored count).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    pub users: u64,
    pub accounts: u64,
    pub sessions: u64,
    pub verification_requests: u64,
    pub credentials: u64,
    pub authenticators: u64,
    pub web_sessions: u64,
}

#[derive(Debug, Clone)]
struct StoredSession {
    id: u32,
    user: u32,
    access_token: String,
    expires: Micros,
    created_at: Micros,
    updated_at: Micros,
}

#[derive(Debug, Clone)]
struct StoredWeb {
    user: Option<u32>,
    expires: Micros,
    created_at: Micros,
    updated_at: Micros,
    data: Vec<u8>,
}

#[derive(Debug, Clone)]
struct StoredRequest {
    id: u32,
    identifier: String,
    expires: Micros,
    created_at: Micros,
    updated_at: Micros,
}

/// Everything stored: what a transaction may roll back.
#[derive(Debug, Clone, Default)]
pub struct Tables {
    users: BTreeMap<u32, MUser>,
    /// By (provider id, provider account id).
    accounts: BTreeMap<(String, String), MAccount>,
    /// By the raw session token (the store keys by its hash: same thing, one to one).
    sessions: BTreeMap<String, StoredSession>,
    /// v3 requests and Auth.js tokens, by [`LinkKey`].
    requests: BTreeMap<LinkKey, StoredRequest>,
    /// Plain passwords by user (the store keeps argon2id hashes; verification is equality).
    passwords: BTreeMap<u32, String>,
    /// By credential id.
    authenticators: BTreeMap<String, MAuthenticator>,
    /// Web sessions by their 16-byte id.
    web: BTreeMap<[u8; 16], StoredWeb>,
}

/// The key of a sign-in link (docs/behaviour.md section 4): a 32-byte hash, written as
/// lowercase hex, for v3 requests (`sha256(token + secret)`) and for Auth.js tokens of 64
/// hex digits (either case); any other Auth.js token string is keyed apart from all hashes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum LinkKey {
    Hash(String),
    Opaque(String),
}

impl LinkKey {
    /// A v3 request's key.
    pub fn v3(token: &str, secret: &str) -> Self {
        LinkKey::Hash(verification_hash(&format!("{token}{secret}")))
    }

    /// An Auth.js token's key.
    pub fn authjs(token_hash: &str) -> Self {
        if token_hash.len() == 64 && token_hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            LinkKey::Hash(token_hash.to_ascii_lowercase())
        } else {
            LinkKey::Opaque(token_hash.to_owned())
        }
    }
}

#[derive(Debug, Clone, Default)]
struct Ids {
    user: u32,
    account: u32,
    session: u32,
    request: u32,
    stamp: u32,
}

fn take(counter: &mut u32) -> u32 {
    let id = *counter;
    *counter += 1;
    id
}

/// The reference store.
#[derive(Debug, Clone)]
pub struct Reference {
    /// The clock, in microseconds.
    pub now: Micros,
    /// Session max age.
    pub max_age: Micros,
    /// Session update age.
    pub update_age: Micros,
    /// Whether the store has a key to seal OAuth secrets with (without one, they cannot be
    /// stored).
    pub encryption_key: bool,
    /// Whether `set_password` deletes the user's sessions (the default).
    pub password_ends_sessions: bool,
    ids: Ids,
    t: Tables,
    saved: Option<Tables>,
}

/// docs/behaviour.md section 3: NFKC, then lowercase, then trim.
pub fn normalize(email: &str) -> String {
    email
        .nfkc()
        .collect::<String>()
        .to_lowercase()
        .trim()
        .to_owned()
}

/// Control characters and invisible formatting characters (section 3: "bidirectional
/// overrides and isolates, zero-width spaces and joiners, and similar").
fn printable(s: &str) -> bool {
    !s.chars().any(|c| {
        c.is_control()
            || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206F}' | '\u{FEFF}')
    })
}

/// Section 5: expired means strictly later than `expires`.
fn expired(now: Micros, expires: Micros) -> bool {
    now > expires
}

/// A time truncated to whole microseconds (what the store keeps).
pub fn micros_of(t: DateTime<Utc>) -> Micros {
    t.timestamp() * 1_000_000 + i64::from(t.timestamp_subsec_nanos() / 1000)
}

/// Lowercase hex SHA-256 of `key` (NextAuth v3's verification hash of `token + secret`).
pub fn verification_hash(key: &str) -> String {
    hex(&Sha256::digest(key.as_bytes()))
}

/// Bytes as lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(2 * bytes.len());
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

fn too_long(field: &'static str, value: &str, max: usize) -> MResult<()> {
    if value.len() > max {
        return Err(MErr::InvalidInput {
            field,
            problem: InputProblem::TooLong {
                len: value.len(),
                max,
            },
        });
    }
    Ok(())
}

fn required(field: &'static str, value: &str, max: usize) -> MResult<()> {
    if value.is_empty() {
        return Err(MErr::InvalidInput {
            field,
            problem: InputProblem::Empty,
        });
    }
    too_long(field, value, max)
}

/// The input checks of one call: every violation is collected; the call fails with the one,
/// or with [`MErr::OneOf`] them.
#[derive(Default)]
struct Checks(Vec<MErr>);

impl Checks {
    fn check<T>(&mut self, r: MResult<T>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.0.push(e);
                None
            }
        }
    }

    fn done(mut self) -> MResult<()> {
        match self.0.len() {
            0 => Ok(()),
            1 => Err(self.0.remove(0)),
            _ => Err(MErr::OneOf(self.0)),
        }
    }
}

fn optional(field: &'static str, value: Option<&String>, max: usize) -> MResult<()> {
    value.map_or(Ok(()), |v| too_long(field, v, max))
}

/// An `extra` object: at most `MAX_EXTRA` bytes as compact JSON.
fn check_extra(field: &'static str, extra: &Extra) -> MResult<()> {
    let json = serde_json::to_string(extra).expect("a JSON object encodes");
    too_long(field, &json, MAX_EXTRA)
}

/// An email or identifier being written: at most 320 bytes as given, not empty after
/// normalization, printable, at most 320 bytes normalized. Returns the key.
fn email_key(field: &'static str, value: &str) -> MResult<String> {
    too_long(field, value, MAX_EMAIL)?;
    let n = normalize(value);
    if n.is_empty() {
        return Err(MErr::InvalidInput {
            field,
            problem: InputProblem::Empty,
        });
    }
    if !printable(&n) {
        return Err(MErr::InvalidValue { field });
    }
    too_long(field, &n, MAX_EMAIL)?;
    Ok(n)
}

/// A profile's fields: name, image and extra within limits, email valid. Returns the email
/// key.
fn check_profile(p: &NewUser) -> MResult<Option<String>> {
    let mut c = Checks::default();
    c.check(optional("name", p.name.as_ref(), MAX_NAME));
    c.check(optional("image", p.image.as_ref(), MAX_IMAGE));
    c.check(check_extra("extra", &p.extra));
    let key = c.check(
        p.email
            .as_deref()
            .map(|e| email_key("email", e))
            .transpose(),
    );
    c.done()?;
    Ok(key.flatten())
}

impl Reference {
    /// An empty store at `now`.
    pub fn new(
        now: Micros,
        max_age: Micros,
        update_age: Micros,
        encryption_key: bool,
        password_ends_sessions: bool,
    ) -> Self {
        Self {
            now,
            max_age,
            update_age,
            encryption_key,
            password_ends_sessions,
            ids: Ids::default(),
            t: Tables::default(),
            saved: None,
        }
    }

    // ---- transactions --------------------------------------------------------------------

    /// Starts a transaction.
    pub fn begin(&mut self) {
        assert!(self.saved.is_none(), "model: nested transaction");
        self.saved = Some(self.t.clone());
    }

    /// Ends the transaction, keeping its writes or not.
    pub fn end(&mut self, commit: bool) {
        let saved = self.saved.take().expect("model: no transaction");
        if !commit {
            self.t = saved;
        }
    }

    /// Rows stored, expired ones included.
    pub fn counts(&self) -> Counts {
        Counts {
            users: self.t.users.len() as u64,
            accounts: self.t.accounts.len() as u64,
            sessions: self.t.sessions.len() as u64,
            verification_requests: self.t.requests.len() as u64,
            credentials: self.t.passwords.len() as u64,
            authenticators: self.t.authenticators.len() as u64,
            web_sessions: self.t.web.len() as u64,
        }
    }

    /// Every stored user id.
    pub fn user_ids(&self) -> Vec<u32> {
        self.t.users.keys().copied().collect()
    }

    /// The stored user (for building `update_user` arguments, and the stamp the driver
    /// expects).
    pub fn peek_user(&self, id: u32) -> Option<&MUser> {
        self.t.users.get(&id)
    }

    /// The stored session's public fields (for building `update_session` arguments).
    pub fn peek_session(&self, token: &str) -> Option<MSession> {
        self.t.sessions.get(token).map(|s| session_view(token, s))
    }

    /// The model id of the link stored under `key`, live or expired.
    pub fn peek_link(&self, key: &LinkKey) -> Option<u32> {
        self.t.requests.get(key).map(|r| r.id)
    }

    /// The next model ids (user, account, session, request): a create that succeeds takes one.
    pub fn next_ids(&self) -> (u32, u32, u32, u32) {
        (
            self.ids.user,
            self.ids.account,
            self.ids.session,
            self.ids.request,
        )
    }

    fn user_by_key(&self, key: &str) -> Option<&MUser> {
        self.t
            .users
            .values()
            .find(|u| u.email.as_deref().map(normalize).as_deref() == Some(key))
    }

    /// Gives the user a new security stamp; `updated_at` moves too (section 2).
    fn renew_stamp(&mut self, id: u32) {
        let now = self.now;
        if let Some(u) = self.t.users.get_mut(&id) {
            u.stamp = take(&mut self.ids.stamp);
            u.updated_at = now;
        }
    }

    // ---- users ---------------------------------------------------------------------------

    pub fn create_user(&mut self, p: &NewUser) -> MResult<MUser> {
        let key = check_profile(p)?;
        if let Some(k) = &key
            && self.user_by_key(k).is_some()
        {
            return Err(MErr::EmailTaken);
        }
        let u = MUser {
            id: take(&mut self.ids.user),
            name: p.name.clone(),
            email: p.email.clone(),
            image: p.image.clone(),
            email_verified: p.email_verified.map(micros_of),
            extra: p.extra.clone(),
            stamp: take(&mut self.ids.stamp),
            created_at: self.now,
            updated_at: self.now,
        };
        self.t.users.insert(u.id, u.clone());
        Ok(u)
    }

    pub fn get_user(&self, id: u32) -> Option<MUser> {
        self.t.users.get(&id).cloned()
    }

    pub fn get_user_by_email(&self, email: &str) -> Option<MUser> {
        let key = normalize(email);
        if key.is_empty() {
            return None;
        }
        self.user_by_key(&key).cloned()
    }

    pub fn get_user_by_account(&self, provider: &str, account: &str) -> Option<MUser> {
        let a = self
            .t
            .accounts
            .get(&(provider.to_owned(), account.to_owned()))?;
        self.get_user(a.user)
    }

    pub fn get_user_by_credentials(&self, email: &str, password: &str) -> MResult<Option<MUser>> {
        too_long("password", password, MAX_PASSWORD)?;
        Ok(self
            .get_user_by_email(email)
            .filter(|u| self.t.passwords.get(&u.id).map(String::as_str) == Some(password)))
    }

    /// `update_user`: replaces name, email, image, email_verified and extra of user `id`. A
    /// change of the normalized email (set, cleared or changed) replaces the stamp.
    pub fn update_user(&mut self, id: u32, p: &NewUser) -> MResult<MUser> {
        let key = check_profile(p)?;
        let Some(old) = self.t.users.get(&id) else {
            return Err(MErr::UserNotFound(id));
        };
        if let Some(k) = &key
            && self.user_by_key(k).is_some_and(|other| other.id != id)
        {
            return Err(MErr::EmailTaken);
        }
        let email_changed = old.email.as_deref().map(normalize) != key;
        let stamp = if email_changed {
            take(&mut self.ids.stamp)
        } else {
            old.stamp
        };
        let now = self.now;
        let u = self.t.users.get_mut(&id).expect("checked");
        u.name.clone_from(&p.name);
        u.email.clone_from(&p.email);
        u.image.clone_from(&p.image);
        u.email_verified = p.email_verified.map(micros_of);
        u.extra.clone_from(&p.extra);
        u.stamp = stamp;
        u.updated_at = now;
        Ok(u.clone())
    }

    /// `patch_user`: the user must exist; each field the patch names is cleared or set,
    /// `extra` merges key by key (JSON `null` removes); the result is written as by
    /// `update_user`.
    pub fn patch_user(&mut self, id: u32, patch: &UserPatch) -> MResult<MUser> {
        let Some(u) = self.t.users.get(&id) else {
            return Err(MErr::UserNotFound(id));
        };
        let mut extra = u.extra.clone();
        for (k, v) in patch.extra.iter().flatten() {
            if v.is_null() {
                extra.remove(k);
            } else {
                extra.insert(k.clone(), v.clone());
            }
        }
        let pick = |given: &Option<Option<String>>, kept: &Option<String>| match given {
            None => kept.clone(),
            Some(v) => v.clone(),
        };
        let profile = NewUser {
            name: pick(&patch.name, &u.name),
            email: pick(&patch.email, &u.email),
            image: pick(&patch.image, &u.image),
            email_verified: match patch.email_verified {
                None => u.email_verified.map(from_micros),
                Some(v) => v,
            },
            extra,
        };
        self.update_user(id, &profile)
    }

    /// `delete_user`: the user and, with it, their accounts, sessions, password and
    /// authenticators.
    pub fn delete_user(&mut self, id: u32) {
        self.t.users.remove(&id);
        self.t.accounts.retain(|_, a| a.user != id);
        self.t.sessions.retain(|_, s| s.user != id);
        self.t.passwords.remove(&id);
        self.t.authenticators.retain(|_, a| a.user != id);
        self.t.web.retain(|_, w| w.user != Some(id));
    }

    /// `set_password`: stores the password, replaces the stamp and (by default) ends the
    /// user's sessions (rustdoc of `Builder::password_change_ends_sessions`).
    pub fn set_password(&mut self, id: u32, password: &str) -> MResult<()> {
        required("password", password, MAX_PASSWORD)?;
        if !self.t.users.contains_key(&id) {
            return Err(MErr::UserNotFound(id));
        }
        self.t.passwords.insert(id, password.to_owned());
        if self.password_ends_sessions {
            // Database sessions and the framework's (web session records naming the user).
            self.t.sessions.retain(|_, s| s.user != id);
            self.t.web.retain(|_, w| w.user != Some(id));
        }
        self.renew_stamp(id);
        Ok(())
    }

    // ---- accounts ------------------------------------------------------------------------

    pub fn link_account(&mut self, user: u32, a: &NewAccount) -> MResult<MAccount> {
        required("provider_type", &a.provider_type, MAX_PROVIDER_ID)?;
        if !PROVIDER_TYPES.contains(&a.provider_type.as_str()) {
            return Err(MErr::InvalidValue {
                field: "provider_type",
            });
        }
        required("provider_id", &a.provider_id, MAX_PROVIDER_ID)?;
        required(
            "provider_account_id",
            &a.provider_account_id,
            MAX_PROVIDER_ACCOUNT_ID,
        )?;
        optional("refresh_token", a.refresh_token.as_ref(), MAX_OAUTH_TOKEN)?;
        optional("access_token", a.access_token.as_ref(), MAX_OAUTH_TOKEN)?;
        optional("token_type", a.token_type.as_ref(), MAX_TOKEN_TYPE)?;
        optional("scope", a.scope.as_ref(), MAX_SCOPE)?;
        optional("id_token", a.id_token.as_ref(), MAX_ID_TOKEN)?;
        optional("session_state", a.session_state.as_ref(), MAX_SESSION_STATE)?;
        check_extra("extra", &a.extra)?;
        // Secrets are stored sealed or not at all (section 4); a configuration problem,
        // reported before looking anything up.
        let secrets = a.refresh_token.is_some()
            || a.access_token.is_some()
            || a.id_token.is_some()
            || !a.extra.is_empty();
        if !self.encryption_key && secrets {
            return Err(MErr::EncryptionKeyRequired);
        }
        if !self.t.users.contains_key(&user) {
            return Err(MErr::UserNotFound(user));
        }
        let now = self.now;
        let key = (a.provider_id.clone(), a.provider_account_id.clone());
        if let Some(stored) = self.t.accounts.get_mut(&key) {
            if stored.user != user {
                return Err(MErr::AccountLinkedToAnotherUser);
            }
            // Re-link (section 6.2): provider_type and every field given replace the stored
            // ones; a field given as `None` keeps the stored one; the access token brings its
            // expiry along; a non-empty extra replaces the stored object.
            stored.provider_type.clone_from(&a.provider_type);
            if let Some(t) = &a.refresh_token {
                stored.refresh_token = Some(Secret(t.clone()));
            }
            if let Some(t) = &a.access_token {
                stored.access_token = Some(Secret(t.clone()));
                stored.access_token_expires = a.access_token_expires.map(micros_of);
            }
            if let Some(t) = &a.id_token {
                stored.id_token = Some(Secret(t.clone()));
            }
            if a.token_type.is_some() {
                stored.token_type.clone_from(&a.token_type);
            }
            if a.scope.is_some() {
                stored.scope.clone_from(&a.scope);
            }
            if a.session_state.is_some() {
                stored.session_state.clone_from(&a.session_state);
            }
            if !a.extra.is_empty() {
                stored.extra.clone_from(&a.extra);
            }
            stored.updated_at = now;
            return Ok(stored.clone());
        }
        let acc = MAccount {
            id: take(&mut self.ids.account),
            user,
            provider_type: a.provider_type.clone(),
            provider_id: a.provider_id.clone(),
            provider_account_id: a.provider_account_id.clone(),
            refresh_token: a.refresh_token.clone().map(Secret),
            access_token: a.access_token.clone().map(Secret),
            access_token_expires: a.access_token_expires.map(micros_of),
            token_type: a.token_type.clone(),
            scope: a.scope.clone(),
            id_token: a.id_token.clone().map(Secret),
            session_state: a.session_state.clone(),
            extra: a.extra.clone(),
            created_at: now,
            updated_at: now,
        };
        self.t.accounts.insert(key, acc.clone());
        Ok(acc)
    }

    pub fn unlink_account(&mut self, user: u32, provider: &str, account: &str) {
        let key = (provider.to_owned(), account.to_owned());
        if self.t.accounts.get(&key).is_some_and(|a| a.user == user) {
            self.t.accounts.remove(&key);
        }
    }

    /// Auth.js's `unlinkAccount`: whoever owns it; returns what was removed.
    pub fn unlink_account_by_provider(
        &mut self,
        provider: &str,
        account: &str,
    ) -> Option<MAccount> {
        self.t
            .accounts
            .remove(&(provider.to_owned(), account.to_owned()))
    }

    pub fn get_account(&self, provider: &str, account: &str) -> Option<MAccount> {
        self.t
            .accounts
            .get(&(provider.to_owned(), account.to_owned()))
            .cloned()
    }

    /// The user's accounts, oldest first (ties: link order).
    pub fn list_accounts(&self, user: u32) -> Vec<MAccount> {
        let mut out: Vec<MAccount> = self
            .t
            .accounts
            .values()
            .filter(|a| a.user == user)
            .cloned()
            .collect();
        out.sort_by_key(|a| (a.created_at, a.id));
        out
    }

    // ---- sessions ------------------------------------------------------------------------

    fn insert_session(
        &mut self,
        user: u32,
        session_token: &str,
        access_token: &str,
        expires: Micros,
    ) -> MSession {
        let s = StoredSession {
            id: take(&mut self.ids.session),
            user,
            access_token: access_token.to_owned(),
            expires,
            created_at: self.now,
            updated_at: self.now,
        };
        let view = session_view(session_token, &s);
        self.t.sessions.insert(session_token.to_owned(), s);
        view
    }

    /// `create_session`; the store draws the tokens, the driver passes them in.
    pub fn create_session(
        &mut self,
        user: u32,
        session_token: &str,
        access_token: &str,
    ) -> MResult<MSession> {
        if !self.t.users.contains_key(&user) {
            return Err(MErr::UserNotFound(user));
        }
        assert!(
            !self.t.sessions.contains_key(session_token),
            "model: session token handed out twice"
        );
        let expires = self.now + self.max_age;
        Ok(self.insert_session(user, session_token, access_token, expires))
    }

    /// `create_session_with`: the caller's token (1 to 1024 bytes, not in use by a live or
    /// an expired session) and expiry (kept even if past). The access token is derived by the
    /// store; the driver passes in the one it returned (and checks it is stable).
    pub fn create_session_with(
        &mut self,
        user: u32,
        session_token: &str,
        access_token: &str,
        expires: DateTime<Utc>,
    ) -> MResult<MSession> {
        required("session_token", session_token, MAX_SESSION_TOKEN)?;
        if !self.t.users.contains_key(&user) {
            return Err(MErr::UserNotFound(user));
        }
        if self.t.sessions.contains_key(session_token) {
            return Err(MErr::SessionTokenTaken);
        }
        Ok(self.insert_session(user, session_token, access_token, micros_of(expires)))
    }

    /// `get_session`: an expired session is deleted and gives `None`.
    pub fn get_session(&mut self, token: &str) -> Option<MSession> {
        let s = self.t.sessions.get(token)?;
        if expired(self.now, s.expires) {
            self.t.sessions.remove(token);
            return None;
        }
        Some(session_view(token, s))
    }

    /// `get_session_and_user`: as `get_session`, with the session's user.
    pub fn get_session_and_user(&mut self, token: &str) -> Option<(MSession, MUser)> {
        let s = self.get_session(token)?;
        let u = self.get_user(s.user)?;
        Some((s, u))
    }

    /// `update_session`, from the stored session; an expired one is deleted (section 5).
    pub fn update_session(&mut self, token: &str, force: bool) -> Option<MSession> {
        let now = self.now;
        let (max_age, update_age) = (self.max_age, self.update_age);
        let s = self.t.sessions.get_mut(token)?;
        if expired(now, s.expires) {
            self.t.sessions.remove(token);
            return None;
        }
        let due = s.expires - max_age + update_age;
        if now > due {
            s.expires = now + max_age;
        } else if !force {
            return None;
        }
        s.updated_at = now;
        Some(session_view(token, s))
    }

    /// `set_session_expiry`: exactly this expiry for a live session; a missing or expired one
    /// gives `None` and nothing is written (not even the deletion the reads do).
    pub fn set_session_expiry(&mut self, token: &str, expires: DateTime<Utc>) -> Option<MSession> {
        let now = self.now;
        let s = self.t.sessions.get_mut(token)?;
        if expired(now, s.expires) {
            return None;
        }
        s.expires = micros_of(expires);
        s.updated_at = now;
        Some(session_view(token, s))
    }

    pub fn delete_session(&mut self, token: &str) {
        self.t.sessions.remove(token);
    }

    /// `delete_session_returning`: the removed session, live or expired.
    pub fn delete_session_returning(&mut self, token: &str) -> Option<MSession> {
        self.t
            .sessions
            .remove(token)
            .map(|s| session_view(token, &s))
    }

    /// Live sessions of the user, oldest first (ties: creation order).
    pub fn list_sessions(&self, user: u32) -> Vec<MSessionInfo> {
        let mut out: Vec<MSessionInfo> = self
            .t
            .sessions
            .values()
            .filter(|s| s.user == user && !expired(self.now, s.expires))
            .map(|s| MSessionInfo {
                id: s.id,
                user: s.user,
                expires: s.expires,
                created_at: s.created_at,
                updated_at: s.updated_at,
            })
            .collect();
        out.sort_by_key(|s| (s.created_at, s.id));
        out
    }

    /// Deletes every stored session of the user (expired ones too) and replaces the user's
    /// stamp; returns how many sessions were removed.
    pub fn delete_sessions(&mut self, user: u32) -> u64 {
        let before = self.t.sessions.len();
        self.t.sessions.retain(|_, s| s.user != user);
        self.renew_stamp(user);
        (before - self.t.sessions.len()) as u64
    }

    /// Deletes the user's session with this id (expired or not); whether it existed.
    pub fn delete_session_by_id(&mut self, user: u32, session: u32) -> bool {
        let before = self.t.sessions.len();
        self.t
            .sessions
            .retain(|_, s| !(s.user == user && s.id == session));
        before != self.t.sessions.len()
    }

    // ---- email sign-in -------------------------------------------------------------------

    /// Stores a link under `key` unless a live one holds it (an expired one is replaced).
    fn insert_link(
        &mut self,
        key: LinkKey,
        identifier: &str,
        expires: Micros,
    ) -> MResult<StoredRequest> {
        if self
            .t
            .requests
            .get(&key)
            .is_some_and(|r| !expired(self.now, r.expires))
        {
            return Err(MErr::VerificationTokenTaken);
        }
        let r = StoredRequest {
            id: take(&mut self.ids.request),
            identifier: identifier.to_owned(),
            expires,
            created_at: self.now,
            updated_at: self.now,
        };
        self.t.requests.insert(key, r.clone());
        Ok(r)
    }

    /// `create_verification_request` up to the send: checks and stores the request. The
    /// driver calls the sender; when it fails, the request is removed again (as by
    /// `delete_request`), in a second commit on `AuthDb`.
    pub fn create_request(
        &mut self,
        identifier: &str,
        url: &str,
        token: &str,
        secret: &str,
        link_max_age: Micros,
    ) -> MResult<MRequest> {
        let mut c = Checks::default();
        c.check(email_key("identifier", identifier));
        c.check(required("url", url, MAX_URL));
        c.check(required("token", token, MAX_TOKEN));
        c.check(required("secret", secret, MAX_TOKEN));
        if link_max_age <= 0 {
            c.check::<()>(Err(MErr::InvalidInput {
                field: "provider.max_age",
                problem: InputProblem::NotPositive,
            }));
        }
        c.done()?;
        let key = LinkKey::v3(token, secret);
        let r = self.insert_link(key.clone(), identifier, self.now + link_max_age)?;
        Ok(request_view(&key, &r))
    }

    /// Where the sender of a v3 link mails it (rustdoc of `VerificationMail::identifier`): the
    /// email of the user this identifier belongs to, as stored, or else the normalized
    /// identifier; never the identifier as typed.
    pub fn mail_recipient(&self, identifier: &str) -> String {
        let key = normalize(identifier);
        self.user_by_key(&key)
            .and_then(|u| u.email.clone())
            .unwrap_or(key)
    }

    /// The stored link under `key` if its identifier matches (normalized, never empty):
    /// NextAuth matched on the hash alone (CVE-2021-21310); section 6.4 requires both.
    fn matching(&self, identifier: &str, key: &LinkKey) -> Option<&StoredRequest> {
        let given = normalize(identifier);
        self.t
            .requests
            .get(key)
            .filter(|r| !given.is_empty() && normalize(&r.identifier) == given)
    }

    /// The v3 view of the live link under the key of `token + secret`, whichever API made it.
    pub fn get_request(&mut self, identifier: &str, token: &str, secret: &str) -> Option<MRequest> {
        let key = LinkKey::v3(token, secret);
        let r = self.matching(identifier, &key)?;
        if expired(self.now, r.expires) {
            self.t.requests.remove(&key);
            return None;
        }
        Some(request_view(&key, r))
    }

    pub fn delete_request(&mut self, identifier: &str, token: &str, secret: &str) {
        let key = LinkKey::v3(token, secret);
        if self.matching(identifier, &key).is_some() {
            self.t.requests.remove(&key);
        }
    }

    /// Single use: a matching link is deleted whether or not it has expired; it is returned
    /// only if live.
    fn take_link(&mut self, identifier: &str, key: &LinkKey) -> Option<StoredRequest> {
        let r = self.matching(identifier, key)?.clone();
        self.t.requests.remove(key);
        (!expired(self.now, r.expires)).then_some(r)
    }

    pub fn use_request(&mut self, identifier: &str, token: &str, secret: &str) -> Option<MRequest> {
        let key = LinkKey::v3(token, secret);
        self.take_link(identifier, &key)
            .map(|r| request_view(&key, &r))
    }

    /// `create_verification_token`: the caller's identifier, hash and expiry (kept even if
    /// past).
    pub fn create_token(
        &mut self,
        identifier: &str,
        token_hash: &str,
        expires: DateTime<Utc>,
    ) -> MResult<MToken> {
        let mut c = Checks::default();
        c.check(email_key("identifier", identifier));
        c.check(required("token", token_hash, MAX_TOKEN));
        c.done()?;
        let r = self.insert_link(LinkKey::authjs(token_hash), identifier, micros_of(expires))?;
        Ok(MToken {
            identifier: r.identifier,
            token: Secret(token_hash.to_owned()),
            expires: r.expires,
        })
    }

    /// `use_verification_token`: single use; returns the stored identifier and expiry with
    /// the hash string given here.
    pub fn use_token(&mut self, identifier: &str, token_hash: &str) -> Option<MToken> {
        self.take_link(identifier, &LinkKey::authjs(token_hash))
            .map(|r| MToken {
                identifier: r.identifier,
                token: Secret(token_hash.to_owned()),
                expires: r.expires,
            })
    }

    // ---- authenticators ------------------------------------------------------------------

    #[allow(clippy::too_many_arguments)]
    pub fn create_authenticator(
        &mut self,
        credential_id: &str,
        user: u32,
        provider_account_id: &str,
        public_key: &str,
        counter: u64,
        device_type: &str,
        backed_up: bool,
        transports: Option<&str>,
    ) -> MResult<MAuthenticator> {
        let mut c = Checks::default();
        c.check(required("credential_id", credential_id, MAX_CREDENTIAL_ID));
        c.check(required(
            "provider_account_id",
            provider_account_id,
            MAX_PROVIDER_ACCOUNT_ID,
        ));
        c.check(required(
            "credential_public_key",
            public_key,
            MAX_PUBLIC_KEY,
        ));
        c.check(required(
            "credential_device_type",
            device_type,
            MAX_DEVICE_TYPE,
        ));
        if let Some(t) = transports {
            c.check(too_long("transports", t, MAX_TRANSPORTS));
        }
        c.done()?;
        if !self.t.users.contains_key(&user) {
            return Err(MErr::UserNotFound(user));
        }
        if self.t.authenticators.contains_key(credential_id) {
            return Err(MErr::AuthenticatorTaken);
        }
        let a = MAuthenticator {
            credential_id: credential_id.to_owned(),
            user,
            provider_account_id: provider_account_id.to_owned(),
            credential_public_key: public_key.to_owned(),
            counter,
            credential_device_type: device_type.to_owned(),
            credential_backed_up: backed_up,
            transports: transports.map(str::to_owned),
            created_at: self.now,
            updated_at: self.now,
        };
        self.t
            .authenticators
            .insert(credential_id.to_owned(), a.clone());
        Ok(a)
    }

    pub fn get_authenticator(&self, credential_id: &str) -> Option<MAuthenticator> {
        self.t.authenticators.get(credential_id).cloned()
    }

    /// The user's authenticators, oldest first; ties in any order (the driver sorts ties by
    /// credential id on both sides).
    pub fn list_authenticators(&self, user: u32) -> Vec<MAuthenticator> {
        let mut out: Vec<MAuthenticator> = self
            .t
            .authenticators
            .values()
            .filter(|a| a.user == user)
            .cloned()
            .collect();
        out.sort_by(|a, b| (a.created_at, &a.credential_id).cmp(&(b.created_at, &b.credential_id)));
        out
    }

    /// Section 6.5: while the stored or the given counter is non-zero, the new one must be
    /// strictly greater.
    pub fn update_authenticator_counter(
        &mut self,
        credential_id: &str,
        counter: u64,
    ) -> MResult<MAuthenticator> {
        let now = self.now;
        let a = self
            .t
            .authenticators
            .get_mut(credential_id)
            .ok_or(MErr::AuthenticatorNotFound)?;
        if (a.counter != 0 || counter != 0) && counter <= a.counter {
            return Err(MErr::CounterNotIncreased {
                stored: a.counter,
                given: counter,
            });
        }
        a.counter = counter;
        a.updated_at = now;
        Ok(a.clone())
    }

    // ---- housekeeping --------------------------------------------------------------------

    /// `purge_expired`'s first part (its own commit on `AuthDb`): expired sessions.
    pub fn purge_sessions(&mut self) -> u64 {
        let now = self.now;
        let before = self.t.sessions.len();
        self.t.sessions.retain(|_, s| !expired(now, s.expires));
        (before - self.t.sessions.len()) as u64
    }

    /// `purge_expired`'s second part: expired links (v3 requests and Auth.js tokens).
    pub fn purge_requests(&mut self) -> u64 {
        let now = self.now;
        let before = self.t.requests.len();
        self.t.requests.retain(|_, r| !expired(now, r.expires));
        (before - self.t.requests.len()) as u64
    }

    /// `purge_expired`'s third part: expired web sessions.
    pub fn purge_web(&mut self) -> u64 {
        let now = self.now;
        let before = self.t.web.len();
        self.t.web.retain(|_, w| !expired(now, w.expires));
        (before - self.t.web.len()) as u64
    }

    pub fn purge(&mut self) -> MPurge {
        MPurge {
            sessions: self.purge_sessions(),
            verification_requests: self.purge_requests(),
            web_sessions: self.purge_web(),
        }
    }

    // ---- web sessions (docs/behaviour.md 6.5a) --------------------------------------------

    /// The checks of a web session write: data within the limit (an input check), then the
    /// named user exists.
    fn check_web(&self, user: Option<u32>, data: &[u8]) -> MResult<()> {
        if data.len() > MAX_WEB_SESSION_DATA {
            return Err(MErr::InvalidInput {
                field: "data",
                problem: InputProblem::TooLong {
                    len: data.len(),
                    max: MAX_WEB_SESSION_DATA,
                },
            });
        }
        match user {
            Some(u) if !self.t.users.contains_key(&u) => Err(MErr::UserNotFound(u)),
            _ => Ok(()),
        }
    }

    /// `web_session_create`: `false` (nothing written) when the id is taken, live or expired.
    pub fn web_create(
        &mut self,
        id: [u8; 16],
        user: Option<u32>,
        expires: DateTime<Utc>,
        data: &[u8],
    ) -> MResult<bool> {
        self.check_web(user, data)?;
        if self.t.web.contains_key(&id) {
            return Ok(false);
        }
        self.t.web.insert(
            id,
            StoredWeb {
                user,
                expires: micros_of(expires),
                created_at: self.now,
                updated_at: self.now,
                data: data.to_vec(),
            },
        );
        Ok(true)
    }

    /// `web_session_save`: creates or replaces; a replaced record keeps its `created_at`.
    pub fn web_save(
        &mut self,
        id: [u8; 16],
        user: Option<u32>,
        expires: DateTime<Utc>,
        data: &[u8],
    ) -> MResult<()> {
        self.check_web(user, data)?;
        let created_at = self.t.web.get(&id).map_or(self.now, |w| w.created_at);
        self.t.web.insert(
            id,
            StoredWeb {
                user,
                expires: micros_of(expires),
                created_at,
                updated_at: self.now,
                data: data.to_vec(),
            },
        );
        Ok(())
    }

    /// `web_session_load`: the live record, or `None`; an expired one stays stored.
    pub fn web_load(&self, id: &[u8; 16]) -> Option<MWebSession> {
        self.t
            .web
            .get(id)
            .filter(|w| !expired(self.now, w.expires))
            .map(|w| MWebSession {
                user: w.user,
                expires: w.expires,
                data: (w.data.len(), Sha256::digest(&w.data).into()),
            })
    }

    /// `web_session_delete`: whether a record (live or expired) was there.
    pub fn web_delete(&mut self, id: &[u8; 16]) -> bool {
        self.t.web.remove(id).is_some()
    }

    /// One batch of `web_session_delete_expired`: removes up to `limit` expired records, in
    /// the order of the expiry index (expiry, then SHA-256 of the id); returns how many.
    pub fn web_purge_batch(&mut self, limit: usize) -> u64 {
        let now = self.now;
        let mut due: Vec<(Micros, [u8; 32], [u8; 16])> = self
            .t
            .web
            .iter()
            .filter(|(_, w)| expired(now, w.expires))
            .map(|(id, w)| (w.expires, Sha256::digest(id).into(), *id))
            .collect();
        due.sort_unstable();
        due.truncate(limit);
        for (_, _, id) in &due {
            self.t.web.remove(id);
        }
        due.len() as u64
    }

    /// `web_session_list_for_user`: the user's live records, oldest first (ties by handle).
    pub fn web_list(&self, user: u32) -> Vec<MWebInfo> {
        let mut out: Vec<MWebInfo> = self
            .t
            .web
            .iter()
            .filter(|(_, w)| w.user == Some(user) && !expired(self.now, w.expires))
            .map(|(id, w)| MWebInfo {
                handle: hex(&Sha256::digest(id)),
                user: w.user,
                expires: w.expires,
                created_at: w.created_at,
                updated_at: w.updated_at,
                data_len: w.data.len(),
            })
            .collect();
        out.sort_by(|a, b| (a.created_at, &a.handle).cmp(&(b.created_at, &b.handle)));
        out
    }

    /// `web_session_delete_for_user`: every record of the user, expired ones too.
    pub fn web_delete_for_user(&mut self, user: u32) -> u64 {
        let before = self.t.web.len();
        self.t.web.retain(|_, w| w.user != Some(user));
        (before - self.t.web.len()) as u64
    }

    /// `web_session_delete_by_handle`: the record with this id, if it names `user`.
    pub fn web_delete_by_handle(&mut self, user: u32, id: &[u8; 16]) -> bool {
        let owned = self.t.web.get(id).is_some_and(|w| w.user == Some(user));
        if owned {
            self.t.web.remove(id);
        }
        owned
    }
}

fn from_micros(m: Micros) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(m).expect("valid time")
}

fn session_view(token: &str, s: &StoredSession) -> MSession {
    MSession {
        id: s.id,
        user: s.user,
        expires: s.expires,
        session_token: Secret(token.to_owned()),
        access_token: Secret(s.access_token.clone()),
        created_at: s.created_at,
        updated_at: s.updated_at,
    }
}

fn request_view(key: &LinkKey, r: &StoredRequest) -> MRequest {
    let hash = match key {
        LinkKey::Hash(h) => h.clone(),
        LinkKey::Opaque(_) => unreachable!("v3 requests are keyed by a hash"),
    };
    MRequest {
        id: r.id,
        identifier: r.identifier.clone(),
        token: Secret(hash),
        expires: r.expires,
        created_at: r.created_at,
        updated_at: r.updated_at,
    }
}
