//! Input size limits. Every string authdb stores has one; a value over it is an
//! [`Error::InvalidInput`](crate::Error::InvalidInput) and nothing is written.
//!
//! Tokens that stand in for a password (raw verification tokens, caller-chosen session
//! tokens) also have an entropy floor, estimated by [`token_entropy_bits`]; see
//! [`MIN_VERIFICATION_TOKEN_BITS`] and [`MIN_SESSION_TOKEN_BITS`].

use crate::error::{Error, InputProblem, Result};
use crate::model::{Extra, NewAccount, NewAuthenticator, NewUser, PROVIDER_TYPES};

/// Longest email address or verification identifier, in bytes (RFC 3696's 320).
pub const MAX_EMAIL_LEN: usize = 320;
/// Longest user name, in bytes.
pub const MAX_NAME_LEN: usize = 1024;
/// Longest image URL, in bytes.
pub const MAX_IMAGE_LEN: usize = 8 * 1024;
/// Longest provider id or provider type, in bytes.
pub const MAX_PROVIDER_ID_LEN: usize = 128;
/// Longest provider account id, in bytes.
pub const MAX_PROVIDER_ACCOUNT_ID_LEN: usize = 512;
/// Longest OAuth access or refresh token, in bytes.
pub const MAX_OAUTH_TOKEN_LEN: usize = 8 * 1024;
/// Longest OpenID Connect ID token, in bytes.
pub const MAX_ID_TOKEN_LEN: usize = 16 * 1024;
/// Longest account token type, in bytes.
pub const MAX_TOKEN_TYPE_LEN: usize = 128;
/// Longest account scope string, in bytes.
pub const MAX_SCOPE_LEN: usize = 4 * 1024;
/// Longest OpenID Connect session state, in bytes.
pub const MAX_SESSION_STATE_LEN: usize = 1024;
/// Largest `extra` object of a user or an account, in bytes of compact JSON.
pub const MAX_EXTRA_LEN: usize = 16 * 1024;
/// Longest password, in bytes (argon2 over a huge password would be a denial of service).
pub const MAX_PASSWORD_LEN: usize = 1024;
/// Longest verification URL, in bytes.
pub const MAX_URL_LEN: usize = 8 * 1024;
/// Longest raw verification token, secret or hashed verification token, in bytes.
pub const MAX_TOKEN_LEN: usize = 1024;
/// Shortest application secret `EncryptionKey::from_secret` accepts, in bytes (256 bits of a
/// random secret; see the security notes in the README).
pub const MIN_SECRET_LEN: usize = 32;
/// Longest caller-chosen session token (`create_session_with`), in bytes.
pub const MAX_SESSION_TOKEN_LEN: usize = 1024;
/// Fewest bits of estimated entropy ([`token_entropy_bits`]) a raw verification token must
/// carry, unless the store was opened with `allow_short_verification_tokens` (for apps that
/// mail short one-time codes, which then get a failed-attempt limit instead). 32 hex
/// characters, a UUID, 22 base64 characters or 39 decimal digits reach it.
pub const MIN_VERIFICATION_TOKEN_BITS: u32 = 128;
/// Fewest bits of estimated entropy ([`token_entropy_bits`]) a caller-chosen session token
/// (`create_session_with`) must carry. Lower than [`MIN_VERIFICATION_TOKEN_BITS`] so that a
/// random UUID (Auth.js's default session token, 122 random bits) is accepted.
pub const MIN_SESSION_TOKEN_BITS: u32 = 120;
/// How long a failed-attempt counter of a verification identifier lasts (with
/// `allow_short_verification_tokens`): failures are counted from the first one for this long;
/// after it the count starts again and `purge_expired` removes the stale counter. 24 hours,
/// Auth.js's default lifetime of an email sign-in link.
pub const VERIFICATION_ATTEMPT_WINDOW_SECS: i64 = 24 * 60 * 60;
/// Longest WebAuthn credential id, in bytes.
pub const MAX_CREDENTIAL_ID_LEN: usize = 1024;
/// Longest WebAuthn public key, in bytes.
pub const MAX_PUBLIC_KEY_LEN: usize = 4 * 1024;
/// Longest WebAuthn device type, in bytes.
pub const MAX_DEVICE_TYPE_LEN: usize = 32;
/// Longest WebAuthn transports list, in bytes.
pub const MAX_TRANSPORTS_LEN: usize = 256;

pub(crate) fn check_len(field: &'static str, value: &str, max: usize) -> Result<()> {
    if value.len() > max {
        return Err(Error::invalid(
            field,
            InputProblem::TooLong {
                len: value.len(),
                max,
            },
        ));
    }
    Ok(())
}

/// A secret key input: at least [`MIN_SECRET_LEN`] bytes, at most [`MAX_TOKEN_LEN`].
pub(crate) fn secret(field: &'static str, value: &str) -> Result<()> {
    check_len(field, value, MAX_TOKEN_LEN)?;
    if value.len() < MIN_SECRET_LEN {
        return Err(Error::invalid(
            field,
            InputProblem::TooShort {
                len: value.len(),
                min: MIN_SECRET_LEN,
            },
        ));
    }
    Ok(())
}

/// An estimate of the entropy of a random token, in whole bits, from the characters it
/// actually uses (the token is assumed to be drawn uniformly from that alphabet; a token that
/// is not random carries less than this):
///
/// - only decimal digits (`-` ignored): log2(10) ≈ 3.32 bits per digit;
/// - only hexadecimal digits, either case (`-` ignored, so a UUID counts its 32 hex digits:
///   128 bits): 4 bits per digit;
/// - only base64 or base64url characters (`A-Z a-z 0-9 + / - _`; trailing `=` padding is not
///   counted): 6 bits per character;
/// - anything else (other punctuation, non-ASCII): 6 bits per character (per `char`, not per
///   byte) — deliberately no more than base64, so a long UTF-8 encoding earns nothing.
#[must_use]
pub fn token_entropy_bits(token: &str) -> u32 {
    // Thousandths of a bit per character, rounded down.
    const DECIMAL: u64 = 3_321;
    const HEX: u64 = 4_000;
    const WIDE: u64 = 6_000;
    let digits = || token.chars().filter(|c| *c != '-');
    let (per_char, chars) = if digits().all(|c| c.is_ascii_digit()) {
        (DECIMAL, digits().count())
    } else if digits().all(|c| c.is_ascii_hexdigit()) {
        (HEX, digits().count())
    } else {
        // base64 (padding not counted) or anything else: 6 bits per character either way.
        (WIDE, token.trim_end_matches('=').chars().count())
    };
    let milli = per_char.saturating_mul(chars as u64);
    u32::try_from(milli / 1_000).unwrap_or(u32::MAX)
}

/// A token with an entropy floor: within `max` bytes, non-empty, and (when `min_bits` is
/// `Some`) carrying at least that many estimated bits. The error names the field and the
/// limit, never the token.
pub(crate) fn token(
    field: &'static str,
    value: &str,
    max: usize,
    min_bits: Option<u32>,
) -> Result<()> {
    required(field, value, max)?;
    if let Some(min) = min_bits {
        let bits = token_entropy_bits(value);
        if bits < min {
            return Err(Error::invalid(
                field,
                InputProblem::TooLittleEntropy { bits, min },
            ));
        }
    }
    Ok(())
}

/// A raw verification token (or the token string an Auth.js adapter receives): the
/// [`MIN_VERIFICATION_TOKEN_BITS`] floor unless short tokens are allowed.
pub(crate) fn verification_token(
    field: &'static str,
    value: &str,
    allow_short: bool,
) -> Result<()> {
    token(
        field,
        value,
        MAX_TOKEN_LEN,
        (!allow_short).then_some(MIN_VERIFICATION_TOKEN_BITS),
    )
}

/// Whether a lookup by this raw verification token may find a link: by default a token under
/// [`MIN_VERIFICATION_TOKEN_BITS`] finds nothing (no such link can have been stored by a store
/// with the floor, and one stored while short tokens were allowed stops working when they no
/// longer are, since nothing would count the guesses). Lookups are not input-limited: a token
/// that cannot match gives "not found", never an error.
pub(crate) fn verification_token_findable(value: &str, allow_short: bool) -> bool {
    allow_short || token_entropy_bits(value) >= MIN_VERIFICATION_TOKEN_BITS
}

/// A caller-chosen session token: within [`MAX_SESSION_TOKEN_LEN`] and at least
/// [`MIN_SESSION_TOKEN_BITS`].
pub(crate) fn session_token(field: &'static str, value: &str) -> Result<()> {
    token(
        field,
        value,
        MAX_SESSION_TOKEN_LEN,
        Some(MIN_SESSION_TOKEN_BITS),
    )
}

/// [`VERIFICATION_ATTEMPT_WINDOW_SECS`] in microseconds.
const ATTEMPT_WINDOW_MICROS: i64 = VERIFICATION_ATTEMPT_WINDOW_SECS * 1_000_000;

/// One more failed verification attempt for an identifier whose counter is `stored`
/// (`(failures, window start µs)`, `None` when it has none), at `now`, with a limit of `max`
/// failures: `Some(counter)` to store, or `None` when the limit is reached — then every
/// outstanding link of the identifier is deleted, and its counter with them. A counter whose
/// window has passed starts again from zero.
pub(crate) fn next_failed_attempt(
    stored: Option<(u32, i64)>,
    now: i64,
    max: u32,
) -> Option<(u32, i64)> {
    let (failures, start) = match stored {
        Some((n, start)) if !attempt_counter_is_stale(start, now) => (n, start),
        _ => (0, now),
    };
    let failures = failures.saturating_add(1);
    (failures < max).then_some((failures, start))
}

/// Whether a failed-attempt counter whose window began at `window_start` is over at `now`
/// (then it no longer counts and purge removes it). A window start in the future (the clock
/// went back) still counts.
pub(crate) fn attempt_counter_is_stale(window_start: i64, now: i64) -> bool {
    window_start <= stale_attempts_before(now)
}

/// The latest window start that is stale at `now` (see [`attempt_counter_is_stale`]), for
/// backends that delete stale counters with one range condition.
pub(crate) fn stale_attempts_before(now: i64) -> i64 {
    now.saturating_sub(ATTEMPT_WINDOW_MICROS)
}

/// A required string: non-empty and within its limit.
pub(crate) fn required(field: &'static str, value: &str, max: usize) -> Result<()> {
    if value.is_empty() {
        return Err(Error::invalid(field, InputProblem::Empty));
    }
    check_len(field, value, max)
}

fn optional(field: &'static str, value: Option<&String>, max: usize) -> Result<()> {
    value.map_or(Ok(()), |v| check_len(field, v, max))
}

/// An email or identifier: non-empty after normalization, within the limit, free of control
/// and invisible formatting characters. Returns the normalized form (the index key).
pub(crate) fn email(field: &'static str, value: &str) -> Result<String> {
    check_len(field, value, MAX_EMAIL_LEN)?;
    let n = crate::email::normalize_email(value);
    if n.is_empty() {
        return Err(Error::invalid(field, InputProblem::Empty));
    }
    if !crate::email::is_printable(&n) {
        return Err(Error::InvalidValue {
            field,
            reason: "contains control or invisible formatting characters",
        });
    }
    // Normalization can grow a string; keep the key bounded too.
    check_len(field, &n, MAX_EMAIL_LEN)?;
    Ok(n)
}

/// The compact JSON of an `extra` object, within [`MAX_EXTRA_LEN`]; `None` when empty.
pub(crate) fn extra(field: &'static str, value: &Extra) -> Result<Option<Vec<u8>>> {
    if value.is_empty() {
        return Ok(None);
    }
    let json = serde_json::to_vec(value).map_err(|_| Error::InvalidValue {
        field,
        reason: "cannot be encoded as JSON",
    })?;
    if json.len() > MAX_EXTRA_LEN {
        return Err(Error::invalid(
            field,
            InputProblem::TooLong {
                len: json.len(),
                max: MAX_EXTRA_LEN,
            },
        ));
    }
    Ok(Some(json))
}

/// Checks a user profile; returns the compact JSON of its `extra` fields (`None` when empty).
pub(crate) fn user(u: &NewUser) -> Result<Option<Vec<u8>>> {
    optional("name", u.name.as_ref(), MAX_NAME_LEN)?;
    optional("image", u.image.as_ref(), MAX_IMAGE_LEN)?;
    if let Some(e) = &u.email {
        email("email", e)?;
    }
    extra("extra", &u.extra)
}

/// Checks an account; the `extra` object is checked when it is encoded for sealing.
pub(crate) fn account(a: &NewAccount) -> Result<()> {
    required("provider_type", &a.provider_type, MAX_PROVIDER_ID_LEN)?;
    if !PROVIDER_TYPES.contains(&a.provider_type.as_str()) {
        return Err(Error::InvalidValue {
            field: "provider_type",
            reason: "must be one of oauth, oidc, email, webauthn",
        });
    }
    required("provider_id", &a.provider_id, MAX_PROVIDER_ID_LEN)?;
    required(
        "provider_account_id",
        &a.provider_account_id,
        MAX_PROVIDER_ACCOUNT_ID_LEN,
    )?;
    optional(
        "refresh_token",
        a.refresh_token.as_ref(),
        MAX_OAUTH_TOKEN_LEN,
    )?;
    optional("access_token", a.access_token.as_ref(), MAX_OAUTH_TOKEN_LEN)?;
    optional("token_type", a.token_type.as_ref(), MAX_TOKEN_TYPE_LEN)?;
    optional("scope", a.scope.as_ref(), MAX_SCOPE_LEN)?;
    optional("id_token", a.id_token.as_ref(), MAX_ID_TOKEN_LEN)?;
    optional(
        "session_state",
        a.session_state.as_ref(),
        MAX_SESSION_STATE_LEN,
    )?;
    Ok(())
}

pub(crate) fn authenticator(a: &NewAuthenticator) -> Result<()> {
    required("credential_id", &a.credential_id, MAX_CREDENTIAL_ID_LEN)?;
    required(
        "provider_account_id",
        &a.provider_account_id,
        MAX_PROVIDER_ACCOUNT_ID_LEN,
    )?;
    required(
        "credential_public_key",
        &a.credential_public_key,
        MAX_PUBLIC_KEY_LEN,
    )?;
    required(
        "credential_device_type",
        &a.credential_device_type,
        MAX_DEVICE_TYPE_LEN,
    )?;
    optional("transports", a.transports.as_ref(), MAX_TRANSPORTS_LEN)?;
    Ok(())
}
