//! The operations of the model-based test, as plain data: the one operation language of the
//! proptest run (`strategy.rs`), the fuzz targets (`fuzz/`) and the fault-injection harness.
//!
//! Every field is a small integer that the driver resolves against a small domain (the
//! constants below) or against what was handed out so far (users, session tokens), always
//! modulo the domain's size. So any value of these types is a valid operation: proptest
//! strategies and `arbitrary` can both produce them. No closures, no references.
//!
//! Under `cfg(fuzzing)` — set by the fuzz crate (`fuzz/build.rs`, and by cargo-fuzz itself) —
//! the types also derive `arbitrary::Arbitrary` (the fuzz input *is* this language) and
//! `serde::Serialize` (which `fuzz/src/input.rs` uses to write seed inputs and to print a case
//! as Rust). authdb's own test crates never set it.

use sha2::{Digest, Sha256};

/// Emails (and verification identifiers). Collisions are the point: after NFKC, lowercasing
/// and trimming, `a@x.io`, ` A@x.io` and the fullwidth `Ａ＠x.io` are one address, `b@x.io`
/// and `B@X.IO ` another, the Kelvin sign's `K@x.io` and `k@x.io` a third. Index 5 is white
/// space only (invalid for writes, `None` for lookups); index 9 holds a zero-width space
/// (refused for writes with `InvalidValue`, matching nothing on lookups).
pub const EMAILS: [&str; 10] = [
    "a@x.io",
    " A@x.io",
    "b@x.io",
    "B@X.IO ",
    "c@x.io",
    "   ",
    "\u{FF21}\u{FF20}x.io",
    "\u{212A}@x.io",
    "k@x.io",
    "a\u{200B}@x.io",
];

/// Display names (the index picks one; `name` fields are optional on top of that).
pub const NAMES: [&str; 3] = ["Ada", "Bob", "ada"];

/// Avatar URLs.
pub const IMAGES: [&str; 2] = ["https://img.example/1.png", "https://img.example/2.png"];

/// OAuth provider ids.
pub const PROVIDERS: [&str; 2] = ["github", "google"];

/// Provider account ids (also the `provider_account_id` of authenticators).
pub const PROVIDER_ACCOUNT_IDS: [&str; 3] = ["1", "2", "3"];

/// Provider types: the four accepted ones, the empty one (`InvalidInput`) and one outside the
/// accepted set (`InvalidValue`).
pub const PROVIDER_TYPES: [&str; 6] = ["oauth", "oidc", "", "email", "webauthn", "saml"];

/// OAuth refresh tokens.
pub const REFRESH_TOKENS: [&str; 2] = ["refresh-1", "refresh-2"];

/// OAuth access tokens.
pub const ACCESS_TOKENS: [&str; 2] = ["access-1", "access-2"];

/// Account token types.
pub const TOKEN_TYPES: [&str; 2] = ["bearer", "DPoP"];

/// Account scopes.
pub const SCOPES: [&str; 2] = ["openid email", "read:user"];

/// OpenID Connect ID tokens.
pub const ID_TOKENS: [&str; 2] = ["eyJ.id-1.sig", "eyJ.id-2.sig"];

/// OpenID Connect session states.
pub const SESSION_STATES: [&str; 2] = ["state-1", "state-2"];

/// A user's `extra` object by index: empty, two ordinary ones, one holding a JSON `null`, and
/// one over `MAX_EXTRA_LEN` as JSON.
pub fn user_extra(ix: u8) -> authdb::Extra {
    let json = match ix % 5 {
        0 => serde_json::json!({}),
        1 => serde_json::json!({"role": "admin"}),
        2 => serde_json::json!({"role": "user", "plan": 1}),
        3 => serde_json::json!({"role": null}),
        _ => serde_json::json!({"blob": "x".repeat(16 * 1024)}),
    };
    object(json)
}

/// What `patch_user` merges into a user's `extra`: nothing, a set key, a removed key (JSON
/// `null`), two set keys, and removals of a present and an absent key.
pub fn patch_extra(ix: u8) -> authdb::Extra {
    let json = match ix % 5 {
        0 => serde_json::json!({}),
        1 => serde_json::json!({"role": "editor"}),
        2 => serde_json::json!({"role": null}),
        3 => serde_json::json!({"plan": 2, "theme": "dark"}),
        _ => serde_json::json!({"plan": null, "absent": null}),
    };
    object(json)
}

/// An account's `extra` object by index (index 0 is empty: "keep" on a re-link).
pub fn account_extra(ix: u8) -> authdb::Extra {
    let json = match ix % 3 {
        0 => serde_json::json!({}),
        1 => serde_json::json!({"refresh_token_expires_in": 3600}),
        _ => serde_json::json!({"tenant": "t-1"}),
    };
    object(json)
}

fn object(v: serde_json::Value) -> authdb::Extra {
    match v {
        serde_json::Value::Object(m) => m,
        _ => unreachable!("extra domains are objects"),
    }
}

/// Passwords: two good ones, the empty one (invalid for `set_password`, merely wrong for a
/// sign-in) and one byte over the 1 KiB limit (invalid everywhere).
pub const PASSWORD_COUNT: u8 = 4;

/// The password with this index.
pub fn password(ix: u8) -> String {
    match ix % PASSWORD_COUNT {
        0 => "correct horse".to_owned(),
        1 => "battery staple".to_owned(),
        2 => String::new(),
        _ => "p".repeat(1025),
    }
}

/// Raw verification tokens: 32 hex characters (128 bits, the store's entropy floor) and
/// more, built from a tiny domain. With [`SECRETS`], `T1 + "a5"` and `T1 + "a" + "5"` are the
/// same string, so two different (token, secret) pairs share one hash: NextAuth's hash has no
/// separator, and the store must treat them as the same link.
pub const TOKENS: [&str; 3] = [
    "0123456789abcdef0123456789abcdef",
    "0123456789abcdef0123456789abcdefa",
    "fedcba9876543210fedcba9876543210",
];

/// Verification secrets.
pub const SECRETS: [&str; 2] = ["a5", "5"];

/// The sign-in URL mailed with a link.
pub const URL: &str = "https://app.example/api/auth/callback/email";

/// Lowercase hex SHA-256 of `s` (NextAuth's and Auth.js's verification token hash; computed
/// here, not by authdb).
pub fn sha256_hex(s: &str) -> String {
    use std::fmt::Write;
    Sha256::digest(s.as_bytes())
        .iter()
        .fold(String::with_capacity(64), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

/// How many hashed verification tokens [`token_hash`] knows.
pub const TOKEN_HASH_COUNT: u8 = 8;

/// The v3 pre-image `token + secret` of the pair (`TOKENS[t]`, `SECRETS[s]`).
pub fn v3_key(t: usize, s: usize) -> String {
    format!("{}{}", TOKENS[t], SECRETS[s])
}

/// The hashed verification token (Auth.js's `createVerificationToken` / `useVerificationToken`
/// argument) with this index. The first four are the hashes of v3 (token, secret) pairs from
/// [`TOKENS`] and [`SECRETS`] — so links made through either API meet — one of them in upper
/// case (the same key); then strings that are not 64 hex characters, stored apart from every
/// v3 hash: the v3 pre-image `TOKENS[0] + SECRETS[0]` itself, an opaque string, a hash
/// missing its first digit, and the empty string (invalid for writes). All but the empty one
/// are longer than 32 characters (the entropy floor on raw tokens).
pub fn token_hash(ix: u8) -> String {
    match ix % TOKEN_HASH_COUNT {
        0 => sha256_hex(&v3_key(0, 0)),
        1 => sha256_hex(&v3_key(0, 0)).to_uppercase(),
        2 => sha256_hex(&v3_key(2, 0)),
        3 => sha256_hex(&v3_key(2, 1)),
        4 => v3_key(0, 0),
        5 => "opaque-verification-token-00112233445566778899aabbccddeeff".to_owned(),
        6 => sha256_hex(&v3_key(0, 0))[1..].to_owned(),
        _ => String::new(),
    }
}

/// How many caller-chosen session tokens [`session_token`] knows.
pub const SESSION_TOKEN_COUNT: u8 = 5;

/// A caller-chosen session token (`create_session_with`) with this index: two of letters,
/// digits and hyphens (over the 120-bit entropy floor), a random-UUID-shaped one (what Auth.js
/// makes), the empty one and one byte over the 1 KiB limit (both invalid).
pub fn session_token(ix: u8) -> String {
    match ix % SESSION_TOKEN_COUNT {
        0 => "session-a-0123456789abcdef0123456789abcdef".to_owned(),
        1 => "session-b-0123456789abcdef0123456789abcdef".to_owned(),
        2 => "8b0f2c4e-3a5d-4e7f-9a1b-2c3d4e5f6a7b".to_owned(),
        3 => String::new(),
        _ => "s".repeat(1025),
    }
}

/// Expiries a caller chooses (`create_session_with`, `set_session_expiry`,
/// `create_verification_token`), in microseconds after the store's now: past, exactly now
/// (still valid) and future, each one microsecond either side of the boundary. The driver
/// adds a sub-microsecond part that the store must truncate.
pub const EXPIRY_OFFSETS: [i64; 7] = [
    -3_600_000_000,
    -1,
    0,
    1,
    3_600_000_000,
    2 * 24 * 3_600_000_000,
    40 * 24 * 3_600_000_000,
];

/// WebAuthn credential ids; the last one is empty (invalid).
pub const CREDENTIAL_IDS: [&str; 4] = ["cred-A", "cred-B", "cred-C", ""];

/// WebAuthn public keys; the last one is empty (invalid).
pub const PUBLIC_KEYS: [&str; 2] = ["pQECAyYgASFYIBx", ""];

/// WebAuthn device types; the last one is one byte over the 32-byte limit.
pub const DEVICE_TYPES: [&str; 3] = [
    "singleDevice",
    "multiDevice",
    "multiDevice-multiDevice-multiDevi",
];

/// WebAuthn transports.
pub const TRANSPORTS: [&str; 2] = ["internal", "internal,hybrid"];

/// Signature counters: zero (an authenticator that does not count), small ones (so that equal
/// and smaller values come up) and the largest.
pub const COUNTERS: [u64; 5] = [0, 1, 2, 7, u64::MAX];

/// How many web session ids (tower-sessions' 16-byte cookie values) [`web_session_id`] knows.
pub const WEB_SESSION_ID_COUNT: u8 = 4;

/// The web session id with this index: four fixed 16-byte values (the store keys records by
/// their SHA-256; ids that differ in one byte land far apart in the expiry index's ties).
pub fn web_session_id(ix: u8) -> [u8; 16] {
    let mut id = [0x5A; 16];
    id[0] = ix % WEB_SESSION_ID_COUNT;
    id[15] = 0xC3 ^ (ix % WEB_SESSION_ID_COUNT);
    id
}

/// The largest web session data the store accepts (`MAX_WEB_SESSION_DATA_LEN`, restated from
/// docs/behaviour.md).
pub const MAX_WEB_SESSION_DATA: usize = 64 * 1024;

/// How many web session data values [`web_session_data`] knows.
pub const WEB_SESSION_DATA_COUNT: u8 = 4;

/// Web session data by index: empty, two small JSON documents, and one byte over the limit
/// (invalid).
pub fn web_session_data(ix: u8) -> Vec<u8> {
    match ix % WEB_SESSION_DATA_COUNT {
        0 => Vec::new(),
        1 => br#"{"cart":3}"#.to_vec(),
        2 => br#"{"axum-login.data":{"user_id":"u","auth_hash":[1,2,3]}}"#.to_vec(),
        _ => vec![b'x'; MAX_WEB_SESSION_DATA + 1],
    }
}

/// Batch sizes of `web_session_delete_expired` (on a transaction: the most records it
/// removes): 0 (the default batch on `AuthDb`; nothing inside a transaction), 1, 2, 1000.
pub const WEB_PURGE_BATCHES: [usize; 4] = [0, 1, 2, 1000];

/// `user` and `session` indices from this one up pick among everything ever handed out (and
/// `CreateSessionWith::token` from here reuses a handed-out token).
pub const ALL_FROM: u8 = 128;

/// `user` and `session` indices from this one up mean "an id / a token that never existed".
pub const BOGUS_FROM: u8 = 224;

/// A session token never handed out (any string is a valid lookup).
pub const BOGUS_SESSION_TOKEN: &str = "not-a-session-token";

/// How far the clock moves.
pub const STEPS: [Step; 6] = [
    Step::Zero,
    Step::Micro,
    Step::Hour,
    Step::Hours23,
    Step::Hours25,
    Step::Days31,
];

/// A clock advance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Does not move (so that several rows get the same timestamp).
    Zero,
    /// One microsecond: the smallest stored difference; crosses `now > expires` exactly.
    Micro,
    /// One hour.
    Hour,
    /// 23 hours: with one `Hour`, exactly the default update age.
    Hours23,
    /// 25 hours: past the default update age and the default link lifetime.
    Hours25,
    /// 31 days: past the default session lifetime.
    Days31,
}

impl Step {
    /// The advance in microseconds.
    pub fn micros(self) -> i64 {
        const HOUR: i64 = 3_600_000_000;
        match self {
            Step::Zero => 0,
            Step::Micro => 1,
            Step::Hour => HOUR,
            Step::Hours23 => 23 * HOUR,
            Step::Hours25 => 25 * HOUR,
            Step::Days31 => 31 * 24 * HOUR,
        }
    }
}

/// The settings of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Session max age, in microseconds.
    pub max_age: i64,
    /// Session update age, in microseconds.
    pub update_age: i64,
    /// Whether the store has an encryption key for OAuth secrets.
    pub encryption_key: bool,
    /// Whether `set_password` ends the user's sessions (`Builder::password_change_ends_sessions`).
    pub password_ends_sessions: bool,
}

const HOUR: i64 = 3_600_000_000;

/// The settings a case picks from.
pub const SETTINGS: [Settings; 4] = [
    // NextAuth's defaults: 30 days, 24 hours; authdb's defaults otherwise.
    Settings {
        max_age: 30 * 24 * HOUR,
        update_age: 24 * HOUR,
        encryption_key: true,
        password_ends_sessions: true,
    },
    // Short sessions extended on every update (update age zero); a password change keeps the
    // sessions.
    Settings {
        max_age: 2 * HOUR,
        update_age: 0,
        encryption_key: true,
        password_ends_sessions: false,
    },
    // Update age above max age: never due before expiry.
    Settings {
        max_age: HOUR,
        update_age: 2 * HOUR,
        encryption_key: true,
        password_ends_sessions: true,
    },
    // The defaults without an encryption key: OAuth secrets cannot be stored.
    Settings {
        max_age: 30 * 24 * HOUR,
        update_age: 24 * HOUR,
        encryption_key: false,
        password_ends_sessions: true,
    },
];

/// Link lifetimes of the email provider, in microseconds (the default 24 h, and 1 h).
pub const LINK_MAX_AGES: [i64; 2] = [24 * 3_600_000_000, 3_600_000_000];

/// A change of one field in `update_user` (pass the stored value back, `None`, or a domain
/// value) or in `patch_user` (leave it out of the patch, clear it, set it).
#[cfg_attr(fuzzing, derive(arbitrary::Arbitrary, serde::Serialize))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// `update_user`: pass the currently stored value back; `patch_user`: absent.
    Keep,
    /// Set it to `None` (`patch_user`: `Some(None)`).
    Clear,
    /// Set it to the domain value with this index.
    Set(u8),
}

/// One operation.
///
/// `user` fields pick a user, newest first, modulo the number of candidates: below
/// [`ALL_FROM`] among the users stored now; from [`ALL_FROM`] among every user created so far
/// (deleted ones, and ones created in dropped transactions, included); from [`BOGUS_FROM`]
/// (or with no candidate) the id that never existed. `session` fields pick a session token
/// the same way (stored sessions, every token handed out, a bogus token). Times called
/// `expires` index [`EXPIRY_OFFSETS`] (relative to the store's now); `verified` and
/// `access expires` are fixed times (seconds after a base).
#[cfg_attr(fuzzing, derive(arbitrary::Arbitrary, serde::Serialize))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    // ---- users --------------------------------------------------------------------------
    /// `create_user` with an optional email, name, image, `email_verified` (seconds after a
    /// base, plus a sub-microsecond part that must be truncated) and an `extra` object
    /// ([`user_extra`]).
    CreateUser {
        email: Option<u8>,
        name: Option<u8>,
        image: Option<u8>,
        verified: Option<u8>,
        extra: u8,
    },
    /// `get_user`.
    GetUser { user: u8 },
    /// `get_user_by_email`.
    GetUserByEmail { email: u8 },
    /// `get_user_by_provider_account_id` (v3), or `get_user_by_account` (Auth.js) when
    /// `authjs`.
    GetUserByAccount {
        provider: u8,
        account: u8,
        authjs: bool,
    },
    /// `get_user_by_credentials`.
    GetUserByCredentials { email: u8, password: u8 },
    /// `update_user` from the stored user with some fields changed (and garbage timestamps
    /// and security stamp, which the store must ignore); `extra: Set` indexes [`user_extra`].
    UpdateUser {
        user: u8,
        email: Change,
        name: Change,
        image: Change,
        verified: Change,
        extra: Change,
    },
    /// `patch_user`: each field absent (`Keep`), cleared or set; `extra` merges
    /// [`patch_extra`] (absent when `None`).
    PatchUser {
        user: u8,
        email: Change,
        name: Change,
        image: Change,
        verified: Change,
        extra: Option<u8>,
    },
    /// `delete_user`.
    DeleteUser { user: u8 },
    /// `set_password`.
    SetPassword { user: u8, password: u8 },

    // ---- accounts -----------------------------------------------------------------------
    /// `link_account` (`expires` seconds after a base for `access_token_expires`; `extra`
    /// indexes [`account_extra`], 0 being empty).
    LinkAccount {
        user: u8,
        provider: u8,
        account: u8,
        provider_type: u8,
        refresh: Option<u8>,
        access: Option<u8>,
        expires: Option<u8>,
        token_type: Option<u8>,
        scope: Option<u8>,
        id_token: Option<u8>,
        session_state: Option<u8>,
        extra: u8,
    },
    /// `unlink_account` (v3: only the owner's).
    UnlinkAccount { user: u8, provider: u8, account: u8 },
    /// `unlink_account_by_provider` (Auth.js: whoever owns it; returns it).
    UnlinkAccountByProvider { provider: u8, account: u8 },
    /// `get_account`.
    GetAccount { provider: u8, account: u8 },
    /// `list_accounts`.
    ListAccounts { user: u8 },

    // ---- sessions -----------------------------------------------------------------------
    /// `create_session`.
    CreateSession { user: u8 },
    /// `create_session_with`: `token` below [`ALL_FROM`] indexes [`session_token`], from it a
    /// token handed out before (taken while its session is stored).
    CreateSessionWith { user: u8, token: u8, expires: u8 },
    /// `get_session`.
    GetSession { session: u8 },
    /// `get_session_and_user`.
    GetSessionAndUser { session: u8 },
    /// `update_session`; `stale` passes a copy of the session with wrong fields besides the
    /// token (the store must work from the stored session).
    UpdateSession {
        session: u8,
        force: bool,
        stale: bool,
    },
    /// `set_session_expiry`.
    SetSessionExpiry { session: u8, expires: u8 },
    /// `delete_session`.
    DeleteSession { session: u8 },
    /// `delete_session_returning`.
    DeleteSessionReturning { session: u8 },
    /// `list_sessions`.
    ListSessions { user: u8 },
    /// `delete_sessions`.
    DeleteSessions { user: u8 },
    /// `delete_session_by_id` with the id of a handed-out session and some user.
    DeleteSessionById { user: u8, session: u8 },

    // ---- email sign-in ------------------------------------------------------------------
    /// `create_verification_request`; the sender fails unless `send_ok`.
    CreateVerification {
        identifier: u8,
        token: u8,
        secret: u8,
        send_ok: bool,
        max_age: u8,
    },
    /// `get_verification_request`.
    GetVerification {
        identifier: u8,
        token: u8,
        secret: u8,
    },
    /// `delete_verification_request`.
    DeleteVerification {
        identifier: u8,
        token: u8,
        secret: u8,
    },
    /// `use_verification_request` (single use).
    UseVerification {
        identifier: u8,
        token: u8,
        secret: u8,
    },
    /// `create_verification_token` with the hash [`token_hash`]`(hash)`.
    CreateVerificationToken {
        identifier: u8,
        hash: u8,
        expires: u8,
    },
    /// `use_verification_token` (single use).
    UseVerificationToken { identifier: u8, hash: u8 },

    // ---- authenticators -----------------------------------------------------------------
    /// `create_authenticator` (`account` indexes [`PROVIDER_ACCOUNT_IDS`], `key`
    /// [`PUBLIC_KEYS`], `device` [`DEVICE_TYPES`], `counter` [`COUNTERS`]).
    CreateAuthenticator {
        user: u8,
        credential: u8,
        account: u8,
        key: u8,
        counter: u8,
        device: u8,
        backed_up: bool,
        transports: Option<u8>,
    },
    /// `get_authenticator`.
    GetAuthenticator { credential: u8 },
    /// `list_authenticators`.
    ListAuthenticators { user: u8 },
    /// `update_authenticator_counter`.
    UpdateAuthenticatorCounter { credential: u8, counter: u8 },

    // ---- web sessions (tower-sessions records) -------------------------------------------
    /// `web_session_create` of the id [`web_session_id`]`(id)`, naming `user` (none when
    /// `None`), expiring at `expires`, holding [`web_session_data`]`(data)`.
    WebSessionCreate {
        id: u8,
        user: Option<u8>,
        expires: u8,
        data: u8,
    },
    /// `web_session_save` (create or replace).
    WebSessionSave {
        id: u8,
        user: Option<u8>,
        expires: u8,
        data: u8,
    },
    /// `web_session_load`.
    WebSessionLoad { id: u8 },
    /// `web_session_delete`.
    WebSessionDelete { id: u8 },
    /// `web_session_delete_expired` with the batch size [`WEB_PURGE_BATCHES`]`[batch]`.
    WebSessionDeleteExpired { batch: u8 },
    /// `web_session_list_for_user`.
    WebSessionList { user: u8 },
    /// `web_session_delete_for_user`.
    WebSessionDeleteForUser { user: u8 },
    /// `web_session_delete_by_handle` with the handle of the id [`web_session_id`]`(id)`.
    WebSessionDeleteByHandle { user: u8, id: u8 },

    // ---- time, housekeeping, transactions -----------------------------------------------
    /// Moves the clock by `STEPS[step % len]`.
    Advance { step: u8 },
    /// `purge_expired` (not available inside a transaction: skipped there).
    Purge,
    /// Several operations in one write transaction, committed or dropped. Nested `Txn`,
    /// `Purge` and `Reopen` are skipped inside. The way it ends also varies with the number
    /// of operations: even → `begin_write` + `commit()` / drop, odd → `AuthDb::write` with a
    /// closure returning `Ok` / `Err`.
    Txn { ops: Vec<Op>, commit: bool },
    /// Drops the `AuthDb` and opens the same file again.
    Reopen,
}

impl Op {
    /// The operation's name, for statistics.
    pub fn name(&self) -> &'static str {
        match self {
            Op::CreateUser { .. } => "CreateUser",
            Op::GetUser { .. } => "GetUser",
            Op::GetUserByEmail { .. } => "GetUserByEmail",
            Op::GetUserByAccount { authjs: false, .. } => "GetUserByProviderAccountId",
            Op::GetUserByAccount { authjs: true, .. } => "GetUserByAccount",
            Op::GetUserByCredentials { .. } => "GetUserByCredentials",
            Op::UpdateUser { .. } => "UpdateUser",
            Op::PatchUser { .. } => "PatchUser",
            Op::DeleteUser { .. } => "DeleteUser",
            Op::SetPassword { .. } => "SetPassword",
            Op::LinkAccount { .. } => "LinkAccount",
            Op::UnlinkAccount { .. } => "UnlinkAccount",
            Op::UnlinkAccountByProvider { .. } => "UnlinkAccountByProvider",
            Op::GetAccount { .. } => "GetAccount",
            Op::ListAccounts { .. } => "ListAccounts",
            Op::CreateSession { .. } => "CreateSession",
            Op::CreateSessionWith { .. } => "CreateSessionWith",
            Op::GetSession { .. } => "GetSession",
            Op::GetSessionAndUser { .. } => "GetSessionAndUser",
            Op::UpdateSession { .. } => "UpdateSession",
            Op::SetSessionExpiry { .. } => "SetSessionExpiry",
            Op::DeleteSession { .. } => "DeleteSession",
            Op::DeleteSessionReturning { .. } => "DeleteSessionReturning",
            Op::ListSessions { .. } => "ListSessions",
            Op::DeleteSessions { .. } => "DeleteSessions",
            Op::DeleteSessionById { .. } => "DeleteSessionById",
            Op::CreateVerification { .. } => "CreateVerification",
            Op::GetVerification { .. } => "GetVerification",
            Op::DeleteVerification { .. } => "DeleteVerification",
            Op::UseVerification { .. } => "UseVerification",
            Op::CreateVerificationToken { .. } => "CreateVerificationToken",
            Op::UseVerificationToken { .. } => "UseVerificationToken",
            Op::CreateAuthenticator { .. } => "CreateAuthenticator",
            Op::GetAuthenticator { .. } => "GetAuthenticator",
            Op::ListAuthenticators { .. } => "ListAuthenticators",
            Op::UpdateAuthenticatorCounter { .. } => "UpdateAuthenticatorCounter",
            Op::WebSessionCreate { .. } => "WebSessionCreate",
            Op::WebSessionSave { .. } => "WebSessionSave",
            Op::WebSessionLoad { .. } => "WebSessionLoad",
            Op::WebSessionDelete { .. } => "WebSessionDelete",
            Op::WebSessionDeleteExpired { .. } => "WebSessionDeleteExpired",
            Op::WebSessionList { .. } => "WebSessionList",
            Op::WebSessionDeleteForUser { .. } => "WebSessionDeleteForUser",
            Op::WebSessionDeleteByHandle { .. } => "WebSessionDeleteByHandle",
            Op::Advance { .. } => "Advance",
            Op::Purge => "Purge",
            Op::Txn { .. } => "Txn",
            Op::Reopen => "Reopen",
        }
    }

    /// Whether the operation runs inside a transaction (`Txn`, `Purge` and `Reopen` do not).
    pub fn is_leaf(&self) -> bool {
        !matches!(self, Op::Txn { .. } | Op::Purge | Op::Reopen)
    }
}

/// A whole run: settings and operations.
#[cfg_attr(fuzzing, derive(serde::Serialize))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    /// Index into [`SETTINGS`].
    pub settings: u8,
    /// The operations, in order.
    pub ops: Vec<Op>,
}
