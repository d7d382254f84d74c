//! Users: the profile a user is created from, the stored user, partial updates, credentials.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::ids::UserId;
use super::redact::Redacted;

/// Application-defined fields stored with a user or an account: a JSON object.
pub type Extra = serde_json::Map<String, serde_json::Value>;

/// The profile a user is created from (NextAuth's `createUser(profile)`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewUser {
    /// Display name. At most 1 KiB.
    pub name: Option<String>,
    /// Email address, stored as given; unique after [normalization](crate::normalize_email).
    /// At most 320 bytes.
    pub email: Option<String>,
    /// Avatar URL. At most 8 KiB.
    pub image: Option<String>,
    /// When the email address was verified (set by email sign-in).
    pub email_verified: Option<DateTime<Utc>>,
    /// Application-defined fields (Auth.js's extra user columns, such as `role` or `phone`).
    /// At most [`MAX_EXTRA_LEN`](crate::limits::MAX_EXTRA_LEN) bytes as JSON.
    #[serde(default)]
    pub extra: Extra,
}

/// A stored user.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// The store-generated id.
    pub id: UserId,
    /// Display name.
    pub name: Option<String>,
    /// Email address as given (the unique index holds its normalized form).
    pub email: Option<String>,
    /// Avatar URL.
    pub image: Option<String>,
    /// When the email address was verified.
    pub email_verified: Option<DateTime<Utc>>,
    /// Application-defined fields.
    #[serde(default)]
    pub extra: Extra,
    /// 16 random bytes replaced whenever the user's credentials change: by `set_password`,
    /// `delete_sessions` and any change of email address. Derive session-validation hashes
    /// from it (axum-login's `session_auth_hash`) so that those events sign every other
    /// session out. Read-only: `update_user` and `patch_user` ignore what the caller holds.
    /// Not serialized (see the crate docs on secrets and serde).
    #[serde(skip_serializing, default)]
    pub security_stamp: [u8; 16],
    /// When the user was created.
    pub created_at: DateTime<Utc>,
    /// When the user was last written.
    pub updated_at: DateTime<Utc>,
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("email", &self.email)
            .field("image", &self.image)
            .field("email_verified", &self.email_verified)
            .field("extra", &self.extra)
            .field("security_stamp", &Redacted)
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .finish()
    }
}

/// A partial update of a user (Auth.js's `updateUser`, which sends only what changed).
///
/// Each field is `None` to leave it as it is, `Some(None)` to clear it and `Some(Some(v))` to
/// set it. `extra` merges: every key given is set, and a key given as JSON `null` is removed.
///
/// ```
/// use authdb::UserPatch;
/// let verified_now = UserPatch {
///     email_verified: Some(Some(chrono::Utc::now())),
///     ..UserPatch::default()
/// };
/// assert!(verified_now.name.is_none());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[allow(clippy::option_option)] // "absent" and "set to null" are different requests
pub struct UserPatch {
    /// The display name.
    #[serde(default)]
    pub name: Option<Option<String>>,
    /// The email address (a change re-indexes it and replaces the security stamp).
    #[serde(default)]
    pub email: Option<Option<String>>,
    /// The avatar URL.
    #[serde(default)]
    pub image: Option<Option<String>>,
    /// When the email address was verified.
    #[serde(default)]
    pub email_verified: Option<Option<DateTime<Utc>>>,
    /// Application-defined fields to merge in (`null` removes a key).
    #[serde(default)]
    pub extra: Option<Extra>,
}

impl UserPatch {
    /// The user this patch makes of `user` (fields it does not name are kept).
    #[must_use]
    pub fn apply_to(&self, user: &User) -> NewUser {
        let mut extra = user.extra.clone();
        if let Some(more) = &self.extra {
            for (k, v) in more {
                if v.is_null() {
                    extra.remove(k);
                } else {
                    extra.insert(k.clone(), v.clone());
                }
            }
        }
        NewUser {
            name: self.name.clone().unwrap_or_else(|| user.name.clone()),
            email: self.email.clone().unwrap_or_else(|| user.email.clone()),
            image: self.image.clone().unwrap_or_else(|| user.image.clone()),
            email_verified: self.email_verified.unwrap_or(user.email_verified),
            extra,
        }
    }
}

/// Email and password, for `get_user_by_credentials`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    /// The email address (normalized before lookup).
    pub email: String,
    /// The password. At most 1 KiB. Not serialized.
    #[serde(skip_serializing, default)]
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("email", &self.email)
            .field("password", &Redacted)
            .finish()
    }
}
