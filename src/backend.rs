//! Building blocks for implementing the store traits on another database (the PostgreSQL
//! crate uses them), so that every backend hashes, seals, validates and decides exactly as
//! this one does. Nothing here touches redb.

use chrono::{DateTime, Utc};

use crate::crypto::{EncryptionKey, account_ad};
use crate::error::Result;
use crate::model::{AccountId, NewAccount, NewAuthenticator, NewUser};

/// The SHA-256 of a session token: what a backend stores in its place.
#[must_use]
pub fn session_token_hash(session_token: &str) -> [u8; 32] {
    crate::token::session_key(session_token)
}

/// The session's access token, derived from the session token (never stored).
#[must_use]
pub fn session_access_token(session_token: &str) -> String {
    crate::token::session_access_token(session_token)
}

/// A fresh session token: 32 random bytes as 64 lowercase hex characters.
pub fn random_session_token() -> Result<String> {
    crate::token::random_token()
}

/// The 32-byte key a v3 verification request (`token` + `secret`) is stored under.
#[must_use]
pub fn verification_request_key(token: &str, secret: &str) -> [u8; 32] {
    crate::token::verification_key(token, secret)
}

/// The 32-byte key an Auth.js verification token hash is stored under (equal to
/// [`verification_request_key`] when the hash is that request's hex hash).
#[must_use]
pub fn verification_token_key(token_hash: &str) -> [u8; 32] {
    crate::token::verification_token_key(token_hash)
}

/// Validates a raw verification token as `create_verification_request` and
/// `create_verification_token` do: non-empty, at most [`MAX_TOKEN_LEN`](crate::limits::MAX_TOKEN_LEN)
/// bytes and, unless `allow_short`, at least
/// [`MIN_VERIFICATION_TOKEN_BITS`](crate::limits::MIN_VERIFICATION_TOKEN_BITS) of estimated
/// entropy ([`InputProblem::TooLittleEntropy`](crate::InputProblem::TooLittleEntropy)).
pub fn validate_verification_token(
    field: &'static str,
    token: &str,
    allow_short: bool,
) -> Result<()> {
    crate::limits::verification_token(field, token, allow_short)
}

/// Whether a lookup (get, delete or use) by this raw verification token may find a link: by
/// default a token under the entropy floor finds nothing (and is no error).
#[must_use]
pub fn verification_token_findable(token: &str, allow_short: bool) -> bool {
    crate::limits::verification_token_findable(token, allow_short)
}

/// Validates a caller-chosen session token as `create_session_with` does: non-empty, at most
/// [`MAX_SESSION_TOKEN_LEN`](crate::limits::MAX_SESSION_TOKEN_LEN) bytes, at least
/// [`MIN_SESSION_TOKEN_BITS`](crate::limits::MIN_SESSION_TOKEN_BITS) of estimated entropy.
pub fn validate_session_token(field: &'static str, token: &str) -> Result<()> {
    crate::limits::session_token(field, token)
}

/// The key a verification identifier's failed attempts are counted under, from its
/// normalized form (`normalized` = [`normalize_email`](crate::normalize_email) of the
/// identifier, non-empty): a domain-separated SHA-256, so that the address is never stored.
#[must_use]
pub fn verification_identifier_key(normalized: &str) -> [u8; 32] {
    crate::tables::verification::identifier_key(normalized)
}

/// One more failed verification attempt (with `allow_short_verification_tokens`): from the
/// identifier's stored counter `(failures, window start µs)` (`None` when it has none), at
/// `now` µs, with a limit of `max_failures`, the counter to store — or `None` when the limit
/// is reached: then delete every outstanding link of the identifier and its counter. A
/// counter older than [`VERIFICATION_ATTEMPT_WINDOW_SECS`](crate::limits::VERIFICATION_ATTEMPT_WINDOW_SECS)
/// starts again. Count only identifiers that have a link (live or expired).
#[must_use]
pub fn next_failed_attempt(
    stored: Option<(u32, i64)>,
    now: i64,
    max_failures: u32,
) -> Option<(u32, i64)> {
    crate::limits::next_failed_attempt(stored, now, max_failures)
}

/// The latest window start (µs) of a stale failed-attempt counter at `now` (`now` minus the
/// window): a counter whose window started at or before it no longer counts, and purge
/// deletes it.
#[must_use]
pub fn stale_attempts_before(now: i64) -> i64 {
    crate::limits::stale_attempts_before(now)
}

/// Lowercase hex.
#[must_use]
pub fn hex(bytes: &[u8]) -> String {
    crate::token::hex(bytes)
}

/// 16 fresh random bytes for a user's security stamp.
pub fn new_security_stamp() -> Result<[u8; 16]> {
    crate::tables::users::new_stamp()
}

/// Validates a user profile as `create_user` does; returns the compact JSON of its extra
/// fields (`None` when empty).
pub fn validate_user(profile: &NewUser) -> Result<Option<Vec<u8>>> {
    crate::limits::user(profile)
}

/// Validates an account as `link_account` does (the extra object is checked by
/// [`extra_json`]).
pub fn validate_account(account: &NewAccount) -> Result<()> {
    crate::limits::account(account)
}

/// Validates an authenticator as `create_authenticator` does.
pub fn validate_authenticator(a: &NewAuthenticator) -> Result<()> {
    crate::limits::authenticator(a)
}

/// Validates an email or verification identifier; returns its normalized form.
pub fn validate_email(field: &'static str, value: &str) -> Result<String> {
    crate::limits::email(field, value)
}

/// Validates a required string (non-empty, at most `max` bytes).
pub fn validate_required(field: &'static str, value: &str, max: usize) -> Result<()> {
    crate::limits::required(field, value, max)
}

/// Validates an optional length (at most `max` bytes).
pub fn validate_len(field: &'static str, value: &str, max: usize) -> Result<()> {
    crate::limits::check_len(field, value, max)
}

/// The compact JSON of an extra object within its limit; `None` when empty.
pub fn extra_json(field: &'static str, value: &crate::Extra) -> Result<Option<Vec<u8>>> {
    crate::limits::extra(field, value)
}

/// Seals one secret field (`refresh_token`, `access_token`, `id_token`, `extra`) of an
/// account, in the format every backend stores (it names the key; it is bound to the account
/// and the field).
pub fn seal_account_secret(
    key: &EncryptionKey,
    account: &AccountId,
    field: &str,
    plaintext: &str,
) -> Result<Vec<u8>> {
    key.seal(&account_ad(&account.to_bytes(), field), plaintext)
}

/// Opens a value made by [`seal_account_secret`] for the same account and field.
pub fn open_account_secret(
    key: &EncryptionKey,
    account: &AccountId,
    field: &str,
    sealed: &[u8],
) -> Result<String> {
    key.open(&account_ad(&account.to_bytes(), field), sealed)
}

/// Verifies a password against an argon2id PHC string (a malformed string is
/// [`Error::Corrupt`](crate::Error::Corrupt)).
pub fn verify_password(phc: &str, password: &str) -> Result<bool> {
    crate::password::verify(phc, password)
}

/// v3's `update_session` rule for a live session: `Some(new expiry)` when it is written
/// (moved when due, unchanged when only forced), `None` when nothing is written. All times
/// in microseconds since the epoch.
pub fn session_update_expiry(
    now: i64,
    expires: i64,
    max_age: i64,
    update_age: i64,
    force: bool,
) -> Result<Option<i64>> {
    crate::txn::update_expiry(now, expires, max_age, update_age, force)
}

/// WebAuthn's counter rule: may a stored counter move to `given`?
#[must_use]
pub fn counter_may_advance(stored: u64, given: u64) -> bool {
    (stored == 0 && given == 0) || given > stored
}

/// A timestamp as authdb stores it: microseconds since the Unix epoch.
#[must_use]
pub fn micros(t: DateTime<Utc>) -> i64 {
    crate::codec::micros(t)
}

pub use crate::password::PasswordChecker;

/// True if `phc` is an argon2id PHC string (what `check_integrity` accepts as a password).
#[must_use]
pub fn is_valid_password_hash(phc: &str) -> bool {
    crate::password::is_valid_phc(phc)
}

/// `a + b` microseconds as a storable timestamp, or [`Error::InvalidInput`](crate::Error::InvalidInput)
/// (`OutOfRange`) naming `field`.
pub fn add_micros(field: &'static str, a: i64, b: i64) -> Result<i64> {
    crate::txn::add_micros(field, a, b)
}

/// `expires`, or the session's absolute end (`created_at` + `absolute_lifetime`, when one is
/// configured) if that comes first. Microseconds.
#[must_use]
pub fn cap_session_expiry(created_at: i64, expires: i64, absolute_lifetime: Option<i64>) -> i64 {
    absolute_lifetime.map_or(expires, |life| expires.min(created_at.saturating_add(life)))
}
