//! Input size limits. Every string authdb stores has one; a value over it is an
//! [`Error::InvalidInput`](crate::Error::InvalidInput) and nothing is written.

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
