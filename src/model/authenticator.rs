//! WebAuthn authenticators (passkeys).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::ids::UserId;

/// A WebAuthn authenticator to register (Auth.js's `createAuthenticator`).
///
/// Nothing here is secret (the public key is public by design), so `Debug` and `Serialize`
/// show every field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewAuthenticator {
    /// The credential id, base64url as the browser gives it; unique. At most 1 KiB.
    pub credential_id: String,
    /// The user the passkey signs in.
    pub user_id: UserId,
    /// The id of the user's `webauthn` account. At most 512 bytes.
    pub provider_account_id: String,
    /// The credential's public key (base64). At most 4 KiB.
    pub credential_public_key: String,
    /// The signature counter reported at registration.
    pub counter: u64,
    /// `"singleDevice"` or `"multiDevice"`. At most 32 bytes.
    pub credential_device_type: String,
    /// Whether the credential is backed up (synced passkey).
    pub credential_backed_up: bool,
    /// The transports, comma separated (`"internal,hybrid"`). At most 256 bytes.
    pub transports: Option<String>,
}

/// A stored WebAuthn authenticator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Authenticator {
    /// The credential id (unique).
    pub credential_id: String,
    /// The user the passkey signs in.
    pub user_id: UserId,
    /// The id of the user's `webauthn` account.
    pub provider_account_id: String,
    /// The credential's public key (base64).
    pub credential_public_key: String,
    /// The last signature counter seen.
    pub counter: u64,
    /// `"singleDevice"` or `"multiDevice"`.
    pub credential_device_type: String,
    /// Whether the credential is backed up.
    pub credential_backed_up: bool,
    /// The transports, comma separated.
    pub transports: Option<String>,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
    /// When it was last written (a counter update).
    pub updated_at: DateTime<Utc>,
}
