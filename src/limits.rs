//! Input size limits. Every string authdb stores has one; a value over it is an
//! [`Error::InvalidInput`](crate::Error::InvalidInput) and nothing is written.

use crate::error::{Error, InputProblem, Result};
use crate::model::{NewAccount, NewUser};

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
/// Longest password, in bytes (argon2 over a huge password would be a denial of service).
pub const MAX_PASSWORD_LEN: usize = 1024;
/// Longest verification URL, in bytes.
pub const MAX_URL_LEN: usize = 8 * 1024;
/// Longest raw verification token or secret, in bytes.
pub const MAX_TOKEN_LEN: usize = 1024;

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

/// An email or identifier: non-empty after trimming, within the limit. Returns the normalized
/// form (the index key).
pub(crate) fn email(field: &'static str, value: &str) -> Result<String> {
    check_len(field, value, MAX_EMAIL_LEN)?;
    let n = crate::email::normalize_email(value);
    if n.is_empty() {
        return Err(Error::invalid(field, InputProblem::Empty));
    }
    // Lowercasing can grow a string (a few Unicode characters expand); keep the key bounded too.
    check_len(field, &n, MAX_EMAIL_LEN)?;
    Ok(n)
}

/// Checks a user profile; returns the normalized email, if any.
pub(crate) fn user(u: &NewUser) -> Result<Option<String>> {
    optional("name", u.name.as_ref(), MAX_NAME_LEN)?;
    optional("image", u.image.as_ref(), MAX_IMAGE_LEN)?;
    u.email.as_deref().map(|e| email("email", e)).transpose()
}

pub(crate) fn account(a: &NewAccount) -> Result<()> {
    required("provider_type", &a.provider_type, MAX_PROVIDER_ID_LEN)?;
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
    Ok(())
}
