//! The lines of an export as JSON: the header, one line per [`ExportRecord`] with Auth.js's
//! field names, the end line; and the checks a record line must pass before any backend
//! stores it (the limits of the operations that create the record, well-formed PHC strings
//! and sealed values, times in range). Backend-specific rules (uniqueness, a record's user
//! being there) are the sink's.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::limits;
use crate::model::web_session::MAX_WEB_SESSION_DATA_LEN;
use crate::model::{
    AccountId, Extra, NewAccount, NewAuthenticator, NewUser, SessionId, UserId,
    VerificationRequestId,
};

use super::counts::ExportCounts;
use super::encoding::{B64, Hex, MICROS, Ts, split_seconds};
use super::error::ImportError;
use super::record::{
    ExportRecord, StoredAccount, StoredAuthenticator, StoredPassword, StoredSession, StoredUser,
    StoredVerificationToken, StoredWebSession,
};

/// The `format` of the header line.
pub const EXPORT_FORMAT: &str = "authdb-export";
/// The export format version this build writes and reads.
pub const EXPORT_VERSION: u64 = 1;

/// The first line.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct Header {
    pub(super) format: String,
    pub(super) version: u64,
    pub(super) schema_version: u64,
}

/// Every line after the header.
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind")]
pub(super) enum Line {
    #[serde(rename = "user")]
    User(UserLine),
    #[serde(rename = "password")]
    Password(PasswordLine),
    #[serde(rename = "account")]
    Account(AccountLine),
    #[serde(rename = "session")]
    Session(SessionLine),
    #[serde(rename = "authenticator")]
    Authenticator(AuthenticatorLine),
    #[serde(rename = "verificationToken")]
    Verification(VerificationLine),
    #[serde(rename = "webSession")]
    WebSession(WebSessionLine),
    #[serde(rename = "end")]
    End(EndLine),
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct UserLine {
    id: Uuid,
    name: Option<String>,
    email: Option<String>,
    email_verified: Option<Ts>,
    image: Option<String>,
    #[serde(default)]
    extra: Extra,
    security_stamp: Hex<16>,
    created_at: Ts,
    updated_at: Ts,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct PasswordLine {
    user_id: Uuid,
    hash: String,
    updated_at: Ts,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AccountLine {
    id: Uuid,
    #[serde(rename = "userId")]
    user_id: Uuid,
    #[serde(rename = "type")]
    provider_type: String,
    provider: String,
    #[serde(rename = "providerAccountId")]
    provider_account_id: String,
    refresh_token_sealed: Option<B64>,
    access_token_sealed: Option<B64>,
    expires_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at_us: Option<u32>,
    token_type: Option<String>,
    scope: Option<String>,
    id_token_sealed: Option<B64>,
    session_state: Option<String>,
    extra_sealed: Option<B64>,
    #[serde(rename = "createdAt")]
    created_at: Ts,
    #[serde(rename = "updatedAt")]
    updated_at: Ts,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct SessionLine {
    id: Uuid,
    user_id: Uuid,
    session_token_hash: Hex<32>,
    expires: Ts,
    created_at: Ts,
    updated_at: Ts,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct AuthenticatorLine {
    #[serde(rename = "credentialID")]
    credential_id: String,
    user_id: Uuid,
    provider_account_id: String,
    credential_public_key: String,
    counter: u64,
    credential_device_type: String,
    credential_backed_up: bool,
    transports: Option<String>,
    created_at: Ts,
    updated_at: Ts,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct VerificationLine {
    id: Uuid,
    identifier: String,
    token: Hex<32>,
    expires: Ts,
    created_at: Ts,
    updated_at: Ts,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct WebSessionLine {
    id_hash: Hex<32>,
    user_id: Option<Uuid>,
    expires: Ts,
    data: B64,
    created_at: Ts,
    updated_at: Ts,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EndLine {
    pub(super) counts: ExportCounts,
}

impl From<ExportRecord> for Line {
    fn from(r: ExportRecord) -> Self {
        match r {
            ExportRecord::User(u) => Line::User(UserLine {
                id: u.id.0,
                name: u.name,
                email: u.email,
                email_verified: u.email_verified.map(Ts),
                image: u.image,
                extra: u.extra,
                security_stamp: Hex(u.security_stamp),
                created_at: Ts(u.created_at),
                updated_at: Ts(u.updated_at),
            }),
            ExportRecord::Password(p) => Line::Password(PasswordLine {
                user_id: p.user_id.0,
                hash: p.phc,
                updated_at: Ts(p.updated_at),
            }),
            ExportRecord::Account(a) => {
                let (expires_at, expires_at_us) = split_seconds(a.access_token_expires);
                Line::Account(AccountLine {
                    id: a.id.0,
                    user_id: a.user_id.0,
                    provider_type: a.provider_type,
                    provider: a.provider_id,
                    provider_account_id: a.provider_account_id,
                    refresh_token_sealed: a.refresh_token.map(B64),
                    access_token_sealed: a.access_token.map(B64),
                    expires_at,
                    expires_at_us,
                    token_type: a.token_type,
                    scope: a.scope,
                    id_token_sealed: a.id_token.map(B64),
                    session_state: a.session_state,
                    extra_sealed: a.extra.map(B64),
                    created_at: Ts(a.created_at),
                    updated_at: Ts(a.updated_at),
                })
            }
            ExportRecord::Session(s) => Line::Session(SessionLine {
                id: s.id.0,
                user_id: s.user_id.0,
                session_token_hash: Hex(s.token_hash),
                expires: Ts(s.expires),
                created_at: Ts(s.created_at),
                updated_at: Ts(s.updated_at),
            }),
            ExportRecord::Authenticator(a) => Line::Authenticator(AuthenticatorLine {
                credential_id: a.credential_id,
                user_id: a.user_id.0,
                provider_account_id: a.provider_account_id,
                credential_public_key: a.credential_public_key,
                counter: a.counter,
                credential_device_type: a.credential_device_type,
                credential_backed_up: a.credential_backed_up,
                transports: a.transports,
                created_at: Ts(a.created_at),
                updated_at: Ts(a.updated_at),
            }),
            ExportRecord::VerificationToken(v) => Line::Verification(VerificationLine {
                id: v.id.0,
                identifier: v.identifier,
                token: Hex(v.token_hash),
                expires: Ts(v.expires),
                created_at: Ts(v.created_at),
                updated_at: Ts(v.updated_at),
            }),
            ExportRecord::WebSession(w) => Line::WebSession(WebSessionLine {
                id_hash: Hex(w.id_hash),
                user_id: w.user_id.map(|u| u.0),
                expires: Ts(w.expires),
                data: B64(w.data),
                created_at: Ts(w.created_at),
                updated_at: Ts(w.updated_at),
            }),
        }
    }
}

/// The largest sealed value of a secret of `max` plaintext bytes (format byte, key id,
/// nonce, ciphertext, tag).
fn sealed_max(max: usize) -> usize {
    1 + 4 + 24 + max + 16
}

/// A sealed value must look like one authdb 0.2 made (it is not opened: the import needs no
/// key).
fn check_sealed(field: &str, v: Option<&B64>, max: usize) -> Result<(), ImportError> {
    if let Some(B64(b)) = v
        && (b.len() < sealed_max(0) || b.len() > sealed_max(max) || b.first() != Some(&2))
    {
        return Err(ImportError::refused(format!(
            "`{field}` is not a value sealed by authdb 0.2"
        )));
    }
    Ok(())
}

impl Line {
    /// The record of a record line, checked as the operation that creates it checks its
    /// input (`None` for the end line).
    pub(super) fn into_record(self) -> Result<Option<ExportRecord>, ImportError> {
        let bad = ImportError::refused;
        Ok(Some(match self {
            Line::End(_) => return Ok(None),
            Line::User(u) => {
                let id = u.id;
                let profile = NewUser {
                    name: u.name,
                    email: u.email,
                    image: u.image,
                    email_verified: None,
                    extra: u.extra,
                };
                limits::user(&profile).map_err(|e| bad(format!("user {id}: {e}")))?;
                ExportRecord::User(StoredUser {
                    id: UserId(id),
                    name: profile.name,
                    email: profile.email,
                    email_verified: u.email_verified.map(|t| t.0),
                    image: profile.image,
                    extra: profile.extra,
                    security_stamp: u.security_stamp.0,
                    created_at: u.created_at.0,
                    updated_at: u.updated_at.0,
                })
            }
            Line::Password(p) => {
                if p.hash.len() > 1024 || !crate::password::is_valid_phc(&p.hash) {
                    return Err(bad(format!(
                        "the password of user {} is not an argon2id PHC string",
                        p.user_id
                    )));
                }
                ExportRecord::Password(StoredPassword {
                    user_id: UserId(p.user_id),
                    phc: p.hash,
                    updated_at: p.updated_at.0,
                })
            }
            Line::Account(a) => account(a)?,
            Line::Session(s) => ExportRecord::Session(StoredSession {
                token_hash: s.session_token_hash.0,
                id: SessionId(s.id),
                user_id: UserId(s.user_id),
                expires: s.expires.0,
                created_at: s.created_at.0,
                updated_at: s.updated_at.0,
            }),
            Line::Authenticator(a) => {
                let check = NewAuthenticator {
                    credential_id: a.credential_id,
                    user_id: UserId(a.user_id),
                    provider_account_id: a.provider_account_id,
                    credential_public_key: a.credential_public_key,
                    counter: a.counter,
                    credential_device_type: a.credential_device_type,
                    credential_backed_up: a.credential_backed_up,
                    transports: a.transports,
                };
                limits::authenticator(&check).map_err(|e| bad(format!("authenticator: {e}")))?;
                ExportRecord::Authenticator(StoredAuthenticator {
                    credential_id: check.credential_id,
                    user_id: check.user_id,
                    provider_account_id: check.provider_account_id,
                    credential_public_key: check.credential_public_key,
                    counter: check.counter,
                    credential_device_type: check.credential_device_type,
                    credential_backed_up: check.credential_backed_up,
                    transports: check.transports,
                    created_at: a.created_at.0,
                    updated_at: a.updated_at.0,
                })
            }
            Line::Verification(v) => {
                limits::email("identifier", &v.identifier)
                    .map_err(|e| bad(format!("verification token {}: {e}", v.id)))?;
                ExportRecord::VerificationToken(StoredVerificationToken {
                    token_hash: v.token.0,
                    id: VerificationRequestId(v.id),
                    identifier: v.identifier,
                    expires: v.expires.0,
                    created_at: v.created_at.0,
                    updated_at: v.updated_at.0,
                })
            }
            Line::WebSession(w) => {
                if w.data.0.len() > MAX_WEB_SESSION_DATA_LEN {
                    return Err(bad(format!(
                        "the web session's `data` is {} bytes, over the limit of \
                         {MAX_WEB_SESSION_DATA_LEN}",
                        w.data.0.len()
                    )));
                }
                ExportRecord::WebSession(StoredWebSession {
                    id_hash: w.id_hash.0,
                    user_id: w.user_id.map(UserId),
                    expires: w.expires.0,
                    created_at: w.created_at.0,
                    updated_at: w.updated_at.0,
                    data: w.data.0,
                })
            }
        }))
    }
}

fn account(a: AccountLine) -> Result<ExportRecord, ImportError> {
    let bad = ImportError::refused;
    let id = a.id;
    let check = NewAccount {
        provider_type: a.provider_type,
        provider_id: a.provider,
        provider_account_id: a.provider_account_id,
        token_type: a.token_type,
        scope: a.scope,
        session_state: a.session_state,
        ..NewAccount::default()
    };
    limits::account(&check).map_err(|e| bad(format!("account {id}: {e}")))?;
    check_sealed(
        "refresh_token_sealed",
        a.refresh_token_sealed.as_ref(),
        limits::MAX_OAUTH_TOKEN_LEN,
    )?;
    check_sealed(
        "access_token_sealed",
        a.access_token_sealed.as_ref(),
        limits::MAX_OAUTH_TOKEN_LEN,
    )?;
    check_sealed(
        "id_token_sealed",
        a.id_token_sealed.as_ref(),
        limits::MAX_ID_TOKEN_LEN,
    )?;
    check_sealed(
        "extra_sealed",
        a.extra_sealed.as_ref(),
        limits::MAX_EXTRA_LEN,
    )?;
    let expires = match (a.expires_at, a.expires_at_us) {
        (None, None) => None,
        (Some(s), us) => {
            let us = i64::from(us.unwrap_or(0));
            let m = s
                .checked_mul(MICROS)
                .and_then(|m| m.checked_add(us))
                .filter(|m| {
                    us < MICROS
                        && chrono::DateTime::<chrono::Utc>::from_timestamp_micros(*m).is_some()
                });
            Some(m.ok_or_else(|| bad(format!("account {id}: `expires_at` is out of range")))?)
        }
        (None, Some(_)) => {
            return Err(bad(format!(
                "account {id}: `expires_at_us` without `expires_at`"
            )));
        }
    };
    Ok(ExportRecord::Account(StoredAccount {
        id: AccountId(id),
        user_id: UserId(a.user_id),
        provider_type: check.provider_type,
        provider_id: check.provider_id,
        provider_account_id: check.provider_account_id,
        refresh_token: a.refresh_token_sealed.map(|b| b.0),
        access_token: a.access_token_sealed.map(|b| b.0),
        access_token_expires: expires,
        token_type: check.token_type,
        scope: check.scope,
        id_token: a.id_token_sealed.map(|b| b.0),
        session_state: check.session_state,
        extra: a.extra_sealed.map(|b| b.0),
        created_at: a.created_at.0,
        updated_at: a.updated_at.0,
    }))
}
