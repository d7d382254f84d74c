//! The reference model: SPEC.md's semantics as a plain in-memory store.
//!
//! Written from SPEC.md and the rustdoc of the public API, not from authdb's internals: its own
//! normalization, expiry rule, throttle formula, cascade, verification matching and input
//! checks. It uses authdb's public value types only (`NewUser`, `NewAccount`,
//! `InputProblem`). Ids are small integers handed out in creation order; the driver maps the
//! store's UUIDs to them. Timestamps are microseconds since the Unix epoch.
//!
//! Transactions: the data lives in [`Tables`], which is cloned at `begin` and put back on a
//! drop. The clock and the id counters live outside it (time does not roll back, and an id
//! handed out in a dropped transaction is never reused).

use std::collections::BTreeMap;
use std::fmt;

use authdb::{InputProblem, NewAccount, NewUser};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

/// Microseconds since the Unix epoch.
pub type Micros = i64;

/// The model id of the user id that never existed.
pub const NO_USER: u32 = u32::MAX;
/// The model id of the session id that never existed.
pub const NO_SESSION: u32 = u32::MAX;

// Input limits from SPEC.md ("Input limits").
const MAX_EMAIL: usize = 320;
const MAX_NAME: usize = 1024;
const MAX_IMAGE: usize = 8 * 1024;
const MAX_PROVIDER_ID: usize = 128;
const MAX_PROVIDER_ACCOUNT_ID: usize = 512;
const MAX_OAUTH_TOKEN: usize = 8 * 1024;
const MAX_PASSWORD: usize = 1024;
// Not in SPEC.md's list; the rustdoc of `authdb::limits` gives these.
const MAX_URL: usize = 8 * 1024;
const MAX_TOKEN: usize = 1024;

/// A secret string (session token, access token, token hash) that compares by value but
/// never prints: `Debug` shows a short SHA-256 tag, enough to tell two values apart.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = Sha256::digest(self.0.as_bytes());
        write!(f, "Secret(#{:02x}{:02x}{:02x})", h[0], h[1], h[2])
    }
}

/// Errors, by kind. `UserNotFound` carries the model user id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MErr {
    EmailTaken,
    AccountLinkedToAnotherUser,
    VerificationTokenTaken,
    UserNotFound(u32),
    InvalidInput {
        field: &'static str,
        problem: InputProblem,
    },
    SendFailed,
    EncryptionKeyRequired,
    /// An error the model never produces (storage, corruption...): always a mismatch.
    Unexpected(String),
}

/// The model's result type.
pub type MResult<T> = Result<T, MErr>;

/// A user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MUser {
    pub id: u32,
    pub name: Option<String>,
    pub email: Option<String>,
    pub image: Option<String>,
    pub email_verified: Option<Micros>,
    pub created_at: Micros,
    pub updated_at: Micros,
}

/// An OAuth account.
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
    pub created_at: Micros,
    pub updated_at: Micros,
}

/// A session as returned by `create/get/update_session`.
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

/// A verification request as returned; `token` is the lowercase hex SHA-256 of token+secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MRequest {
    pub id: u32,
    pub identifier: String,
    pub token: Secret,
    pub expires: Micros,
    pub created_at: Micros,
    pub updated_at: Micros,
}

/// What `purge_expired` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MPurge {
    pub sessions: u64,
    pub verification_requests: u64,
}

/// Row counts, compared with `check_integrity`'s report (expired rows still stored count).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    pub users: u64,
    pub accounts: u64,
    pub sessions: u64,
    pub verification_requests: u64,
    pub credentials: u64,
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
    /// By `token + secret` concatenated (the store keys by its SHA-256: same thing).
    requests: BTreeMap<String, StoredRequest>,
    /// Plain passwords by user (the store keeps argon2id hashes; verification is equality).
    passwords: BTreeMap<u32, String>,
}

#[derive(Debug, Clone, Default)]
struct Ids {
    user: u32,
    account: u32,
    session: u32,
    request: u32,
}

fn take(counter: &mut u32) -> u32 {
    let id = *counter;
    *counter += 1;
    id
}

/// The reference store.
#[derive(Debug)]
pub struct Reference {
    /// The clock, in microseconds.
    pub now: Micros,
    /// Session max age.
    pub max_age: Micros,
    /// Session update age.
    pub update_age: Micros,
    /// Whether the store has a key to encrypt OAuth tokens with (without one, tokens cannot
    /// be stored).
    pub encryption_key: bool,
    ids: Ids,
    t: Tables,
    saved: Option<Tables>,
}

/// Trim, then lowercase (Unicode): the one normalization of emails and identifiers.
pub fn normalize(email: &str) -> String {
    email.trim().to_lowercase()
}

/// SPEC: expired means strictly later than `expires`.
fn expired(now: Micros, expires: Micros) -> bool {
    now > expires
}

/// A time truncated to whole microseconds (what the store keeps).
pub fn micros_of(t: DateTime<Utc>) -> Micros {
    t.timestamp() * 1_000_000 + i64::from(t.timestamp_subsec_nanos() / 1000)
}

/// Lowercase hex SHA-256 of `token + secret` (NextAuth v3's verification hash).
pub fn verification_hash(key: &str) -> String {
    use std::fmt::Write;
    let mut hex = String::with_capacity(64);
    for b in Sha256::digest(key.as_bytes()) {
        let _ = write!(hex, "{b:02x}");
    }
    hex
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

/// An email or identifier: at most 320 bytes, not empty after trimming. Returns the key.
fn email_key(field: &'static str, value: &str) -> MResult<String> {
    too_long(field, value, MAX_EMAIL)?;
    let n = normalize(value);
    if n.is_empty() {
        return Err(MErr::InvalidInput {
            field,
            problem: InputProblem::Empty,
        });
    }
    Ok(n)
}

/// A profile's fields: name and image within limits, email valid. Returns the email key.
fn check_profile(p: &NewUser) -> MResult<Option<String>> {
    if let Some(n) = &p.name {
        too_long("name", n, MAX_NAME)?;
    }
    if let Some(i) = &p.image {
        too_long("image", i, MAX_IMAGE)?;
    }
    p.email
        .as_deref()
        .map(|e| email_key("email", e))
        .transpose()
}

impl Reference {
    /// An empty store at `now`.
    pub fn new(now: Micros, max_age: Micros, update_age: Micros, encryption_key: bool) -> Self {
        Self {
            now,
            max_age,
            update_age,
            encryption_key,
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
        }
    }

    /// Every stored user id.
    pub fn user_ids(&self) -> Vec<u32> {
        self.t.users.keys().copied().collect()
    }

    /// The stored user (for building `update_user` arguments).
    pub fn peek_user(&self, id: u32) -> Option<&MUser> {
        self.t.users.get(&id)
    }

    /// The stored session's public fields (for building `update_session` arguments).
    pub fn peek_session(&self, token: &str) -> Option<MSession> {
        self.t.sessions.get(token).map(|s| session_view(token, s))
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

    /// `update_user`: replaces name, email, image, email_verified of user `id`.
    pub fn update_user(&mut self, id: u32, p: &NewUser) -> MResult<MUser> {
        let key = check_profile(p)?;
        if !self.t.users.contains_key(&id) {
            return Err(MErr::UserNotFound(id));
        }
        if let Some(k) = &key
            && self.user_by_key(k).is_some_and(|other| other.id != id)
        {
            return Err(MErr::EmailTaken);
        }
        let now = self.now;
        let u = self.t.users.get_mut(&id).expect("checked");
        u.name.clone_from(&p.name);
        u.email.clone_from(&p.email);
        u.image.clone_from(&p.image);
        u.email_verified = p.email_verified.map(micros_of);
        u.updated_at = now;
        Ok(u.clone())
    }

    /// `delete_user`: the user and, with it, their accounts, sessions and password.
    pub fn delete_user(&mut self, id: u32) {
        self.t.users.remove(&id);
        self.t.accounts.retain(|_, a| a.user != id);
        self.t.sessions.retain(|_, s| s.user != id);
        self.t.passwords.remove(&id);
    }

    pub fn set_password(&mut self, id: u32, password: &str) -> MResult<()> {
        required("password", password, MAX_PASSWORD)?;
        if !self.t.users.contains_key(&id) {
            return Err(MErr::UserNotFound(id));
        }
        self.t.passwords.insert(id, password.to_owned());
        Ok(())
    }

    // ---- accounts ------------------------------------------------------------------------

    pub fn link_account(&mut self, user: u32, a: &NewAccount) -> MResult<MAccount> {
        required("provider_type", &a.provider_type, MAX_PROVIDER_ID)?;
        required("provider_id", &a.provider_id, MAX_PROVIDER_ID)?;
        required(
            "provider_account_id",
            &a.provider_account_id,
            MAX_PROVIDER_ACCOUNT_ID,
        )?;
        if let Some(t) = &a.refresh_token {
            too_long("refresh_token", t, MAX_OAUTH_TOKEN)?;
        }
        if let Some(t) = &a.access_token {
            too_long("access_token", t, MAX_OAUTH_TOKEN)?;
        }
        // Tokens are stored encrypted or not at all (rustdoc of `Builder::encryption_key`);
        // a configuration problem, reported before looking anything up.
        if !self.encryption_key && (a.refresh_token.is_some() || a.access_token.is_some()) {
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
            // Re-link: the tokens refresh; a token given as `None` keeps the stored one. The
            // access token's expiry belongs to the access token and moves with it.
            stored.provider_type.clone_from(&a.provider_type);
            if let Some(t) = &a.refresh_token {
                stored.refresh_token = Some(Secret(t.clone()));
            }
            if let Some(t) = &a.access_token {
                stored.access_token = Some(Secret(t.clone()));
                stored.access_token_expires = a.access_token_expires.map(micros_of);
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

    // ---- sessions ------------------------------------------------------------------------

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
        let s = StoredSession {
            id: take(&mut self.ids.session),
            user,
            access_token: access_token.to_owned(),
            expires: self.now + self.max_age,
            created_at: self.now,
            updated_at: self.now,
        };
        let view = session_view(session_token, &s);
        let old = self.t.sessions.insert(session_token.to_owned(), s);
        assert!(old.is_none(), "model: session token handed out twice");
        Ok(view)
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

    /// `update_session`, from the stored session. SPEC does not say whether an expired one is
    /// deleted here; like `get_session`, it is (an expired session is dead either way).
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

    pub fn delete_session(&mut self, token: &str) {
        self.t.sessions.remove(token);
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

    /// Deletes every stored session of the user (expired ones too); returns how many.
    pub fn delete_sessions(&mut self, user: u32) -> u64 {
        let before = self.t.sessions.len();
        self.t.sessions.retain(|_, s| s.user != user);
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

    // ---- verification requests -----------------------------------------------------------

    /// `create_verification_request`. Returns the request and whether the sender was called.
    pub fn create_request(
        &mut self,
        identifier: &str,
        url: &str,
        token: &str,
        secret: &str,
        link_max_age: Micros,
        send_ok: bool,
    ) -> (MResult<MRequest>, bool) {
        let checked = (|| {
            email_key("identifier", identifier)?;
            required("url", url, MAX_URL)?;
            required("token", token, MAX_TOKEN)?;
            required("secret", secret, MAX_TOKEN)?;
            if link_max_age <= 0 {
                return Err(MErr::InvalidInput {
                    field: "provider.max_age",
                    problem: InputProblem::NotPositive,
                });
            }
            Ok(())
        })();
        if let Err(e) = checked {
            return (Err(e), false);
        }
        let key = format!("{token}{secret}");
        // The hash is the unique key: a live request with it is a conflict whatever its
        // identifier; an expired one is replaced.
        if self
            .t
            .requests
            .get(&key)
            .is_some_and(|r| !expired(self.now, r.expires))
        {
            return (Err(MErr::VerificationTokenTaken), false);
        }
        if !send_ok {
            // "If the sender fails, the request is removed again": the request is gone. The
            // expired request it replaced is gone too (the store replaced it before sending).
            self.t.requests.remove(&key);
            take(&mut self.ids.request);
            return (Err(MErr::SendFailed), true);
        }
        let r = StoredRequest {
            id: take(&mut self.ids.request),
            identifier: identifier.to_owned(),
            expires: self.now + link_max_age,
            created_at: self.now,
            updated_at: self.now,
        };
        let view = request_view(&key, &r);
        self.t.requests.insert(key, r);
        (Ok(view), true)
    }

    /// The stored request for `token + secret` if its identifier matches (normalized, never
    /// empty): NextAuth matched on the hash alone (CVE-2021-21310); SPEC requires both.
    fn matching(&self, identifier: &str, key: &str) -> Option<&StoredRequest> {
        let given = normalize(identifier);
        self.t
            .requests
            .get(key)
            .filter(|r| !given.is_empty() && normalize(&r.identifier) == given)
    }

    pub fn get_request(&mut self, identifier: &str, token: &str, secret: &str) -> Option<MRequest> {
        let key = format!("{token}{secret}");
        let r = self.matching(identifier, &key)?;
        if expired(self.now, r.expires) {
            self.t.requests.remove(&key);
            return None;
        }
        Some(request_view(&key, r))
    }

    pub fn delete_request(&mut self, identifier: &str, token: &str, secret: &str) {
        let key = format!("{token}{secret}");
        if self.matching(identifier, &key).is_some() {
            self.t.requests.remove(&key);
        }
    }

    /// Single use: a matching request is deleted whether or not it has expired; it is
    /// returned only if live.
    pub fn use_request(&mut self, identifier: &str, token: &str, secret: &str) -> Option<MRequest> {
        let key = format!("{token}{secret}");
        let r = self.matching(identifier, &key)?.clone();
        self.t.requests.remove(&key);
        (!expired(self.now, r.expires)).then(|| request_view(&key, &r))
    }

    // ---- housekeeping --------------------------------------------------------------------

    pub fn purge(&mut self) -> MPurge {
        let now = self.now;
        let (s0, r0) = (self.t.sessions.len(), self.t.requests.len());
        self.t.sessions.retain(|_, s| !expired(now, s.expires));
        self.t.requests.retain(|_, r| !expired(now, r.expires));
        MPurge {
            sessions: (s0 - self.t.sessions.len()) as u64,
            verification_requests: (r0 - self.t.requests.len()) as u64,
        }
    }
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

fn request_view(key: &str, r: &StoredRequest) -> MRequest {
    MRequest {
        id: r.id,
        identifier: r.identifier.clone(),
        token: Secret(verification_hash(key)),
        expires: r.expires,
        created_at: r.created_at,
        updated_at: r.updated_at,
    }
}
