//! OAuth (and other provider) accounts linked to users.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::ids::{AccountId, UserId};
use super::redact::{redact_map, redact_opt};
use super::user::Extra;

/// The provider kinds an account may have (Auth.js's `AdapterAccountType`).
pub const PROVIDER_TYPES: [&str; 4] = ["oauth", "oidc", "email", "webauthn"];

/// An account to link to a user (the arguments of `link_account`; Auth.js's `AdapterAccount`).
///
/// Secrets — `refresh_token`, `access_token`, `id_token` and `extra` — are sealed with the
/// database's [`EncryptionKey`](crate::EncryptionKey) before they are stored, never kept in
/// plain form, hidden from `Debug` and skipped by `Serialize`.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewAccount {
    /// The provider's kind: one of [`PROVIDER_TYPES`] (`oauth`, `oidc`, `email`, `webauthn`).
    pub provider_type: String,
    /// The provider id, e.g. `"github"`. At most 128 bytes.
    pub provider_id: String,
    /// The user's id at the provider. At most 512 bytes.
    pub provider_account_id: String,
    /// OAuth refresh token. At most 8 KiB.
    #[serde(skip_serializing, default)]
    pub refresh_token: Option<String>,
    /// OAuth access token. At most 8 KiB.
    #[serde(skip_serializing, default)]
    pub access_token: Option<String>,
    /// When the OAuth access token expires (Auth.js's `expires_at`, Unix seconds: whole
    /// seconds round-trip exactly).
    pub access_token_expires: Option<DateTime<Utc>>,
    /// The token type, e.g. `"bearer"`. At most 128 bytes.
    #[serde(default)]
    pub token_type: Option<String>,
    /// The granted scopes. At most 4 KiB.
    #[serde(default)]
    pub scope: Option<String>,
    /// The OpenID Connect ID token (it carries personal data, so it is sealed). At most 16 KiB.
    #[serde(skip_serializing, default)]
    pub id_token: Option<String>,
    /// The OpenID Connect session state. At most 1 KiB.
    #[serde(default)]
    pub session_state: Option<String>,
    /// Provider-specific fields (such as `refresh_token_expires_in`), sealed. At most
    /// [`MAX_EXTRA_LEN`](crate::limits::MAX_EXTRA_LEN) bytes as JSON.
    #[serde(skip_serializing, default)]
    pub extra: Extra,
}

impl fmt::Debug for NewAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewAccount")
            .field("provider_type", &self.provider_type)
            .field("provider_id", &self.provider_id)
            .field("provider_account_id", &self.provider_account_id)
            .field("refresh_token", &redact_opt(&self.refresh_token))
            .field("access_token", &redact_opt(&self.access_token))
            .field("access_token_expires", &self.access_token_expires)
            .field("token_type", &self.token_type)
            .field("scope", &self.scope)
            .field("id_token", &redact_opt(&self.id_token))
            .field("session_state", &self.session_state)
            .field("extra", &redact_map(&self.extra))
            .finish()
    }
}

/// A stored account linked to a user, with its secrets unsealed.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// The store-generated id.
    pub id: AccountId,
    /// The user it belongs to.
    pub user_id: UserId,
    /// The provider's kind.
    pub provider_type: String,
    /// The provider id.
    pub provider_id: String,
    /// The user's id at the provider.
    pub provider_account_id: String,
    /// OAuth refresh token.
    #[serde(skip_serializing, default)]
    pub refresh_token: Option<String>,
    /// OAuth access token.
    #[serde(skip_serializing, default)]
    pub access_token: Option<String>,
    /// When the OAuth access token expires.
    pub access_token_expires: Option<DateTime<Utc>>,
    /// The token type.
    #[serde(default)]
    pub token_type: Option<String>,
    /// The granted scopes.
    #[serde(default)]
    pub scope: Option<String>,
    /// The OpenID Connect ID token.
    #[serde(skip_serializing, default)]
    pub id_token: Option<String>,
    /// The OpenID Connect session state.
    #[serde(default)]
    pub session_state: Option<String>,
    /// Provider-specific fields.
    #[serde(skip_serializing, default)]
    pub extra: Extra,
    /// When the account was linked.
    pub created_at: DateTime<Utc>,
    /// When the account was last written (a re-link refreshes its tokens).
    pub updated_at: DateTime<Utc>,
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Account")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("provider_type", &self.provider_type)
            .field("provider_id", &self.provider_id)
            .field("provider_account_id", &self.provider_account_id)
            .field("refresh_token", &redact_opt(&self.refresh_token))
            .field("access_token", &redact_opt(&self.access_token))
            .field("access_token_expires", &self.access_token_expires)
            .field("token_type", &self.token_type)
            .field("scope", &self.scope)
            .field("id_token", &redact_opt(&self.id_token))
            .field("session_state", &self.session_state)
            .field("extra", &redact_map(&self.extra))
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .finish()
    }
}
