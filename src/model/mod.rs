//! The records authdb stores and returns.
//!
//! Timestamps are stored with microsecond precision: a value passed in with finer precision
//! comes back truncated to the microsecond, and every returned value is exactly what a later
//! read returns.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The error returned when parsing an id from a string fails.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid id (expected a UUID)")]
pub struct ParseIdError;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        ///
        /// A UUID v7 made by the store (time-ordered, so new records sit together in the
        /// B-tree). Displays and parses as the hyphenated UUID string.
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            pub(crate) fn generate() -> Self {
                Self(Uuid::now_v7())
            }

            /// The id as 16 big-endian bytes (its key in the tables).
            #[must_use]
            pub fn to_bytes(&self) -> [u8; 16] {
                *self.0.as_bytes()
            }

            /// The id from its 16 bytes.
            #[must_use]
            pub fn from_bytes(b: [u8; 16]) -> Self {
                Self(Uuid::from_bytes(b))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0.hyphenated())
            }
        }

        impl FromStr for $name {
            type Err = ParseIdError;
            fn from_str(s: &str) -> Result<Self, ParseIdError> {
                Uuid::parse_str(s).map(Self).map_err(|_| ParseIdError)
            }
        }

        impl From<Uuid> for $name {
            fn from(u: Uuid) -> Self {
                Self(u)
            }
        }
    };
}

id_type!(
    /// The id of a [`User`].
    UserId
);
id_type!(
    /// The id of an [`Account`].
    AccountId
);
id_type!(
    /// The id of a [`Session`].
    SessionId
);
id_type!(
    /// The id of a [`VerificationRequest`].
    VerificationRequestId
);

/// Redacts a secret in hand-written `Debug` output.
pub(crate) struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

fn redact_opt<T>(v: &Option<T>) -> Option<Redacted> {
    v.as_ref().map(|_| Redacted)
}

/// The profile a user is created from (NextAuth's `createUser(profile)`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewUser {
    /// Display name. At most 1 KiB.
    pub name: Option<String>,
    /// Email address, stored as given; unique after trimming and lowercasing. At most 320 bytes.
    pub email: Option<String>,
    /// Avatar URL. At most 8 KiB.
    pub image: Option<String>,
    /// When the email address was verified (set by email sign-in).
    pub email_verified: Option<DateTime<Utc>>,
}

/// A stored user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
    /// When the user was created.
    pub created_at: DateTime<Utc>,
    /// When the user was last written.
    pub updated_at: DateTime<Utc>,
}

/// An OAuth account to link to a user (NextAuth's `linkAccount` arguments).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewAccount {
    /// The provider's kind, e.g. `"oauth"`. At most 128 bytes.
    pub provider_type: String,
    /// The provider id, e.g. `"github"`. At most 128 bytes.
    pub provider_id: String,
    /// The user's id at the provider. At most 512 bytes.
    pub provider_account_id: String,
    /// OAuth refresh token. At most 8 KiB.
    pub refresh_token: Option<String>,
    /// OAuth access token. At most 8 KiB.
    pub access_token: Option<String>,
    /// When the OAuth access token expires.
    pub access_token_expires: Option<DateTime<Utc>>,
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
            .finish()
    }
}

/// A stored OAuth account linked to a user.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// The store-generated id.
    pub id: AccountId,
    /// The user it belongs to.
    pub user_id: UserId,
    /// The provider's kind, e.g. `"oauth"`.
    pub provider_type: String,
    /// The provider id.
    pub provider_id: String,
    /// The user's id at the provider.
    pub provider_account_id: String,
    /// OAuth refresh token.
    pub refresh_token: Option<String>,
    /// OAuth access token.
    pub access_token: Option<String>,
    /// When the OAuth access token expires.
    pub access_token_expires: Option<DateTime<Utc>>,
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
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .finish()
    }
}

/// A database session, as returned by `create_session`, `get_session` and `update_session`.
///
/// The file holds only the SHA-256 of `session_token`: the plain token exists in this value and
/// in the caller's cookie. `access_token` is derived from the session token (a domain-separated
/// SHA-256), so it is stable for the session's life, reveals nothing about the session token,
/// and is never stored either.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The store-generated id.
    pub id: SessionId,
    /// The user signed in by this session.
    pub user_id: UserId,
    /// When the session expires (it is valid up to and including this instant).
    pub expires: DateTime<Utc>,
    /// The session token (64 lowercase hex characters), for the cookie.
    pub session_token: String,
    /// The session's access token (64 lowercase hex characters).
    pub access_token: String,
    /// When the session was created.
    pub created_at: DateTime<Utc>,
    /// When the session was last written.
    pub updated_at: DateTime<Utc>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("expires", &self.expires)
            .field("session_token", &Redacted)
            .field("access_token", &Redacted)
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .finish()
    }
}

/// A session as listed by `list_sessions`: everything but the tokens, which the store does not
/// have in plain form.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// The session's id (pass it to `delete_session_by_id` to sign that device out).
    pub id: SessionId,
    /// The user signed in by this session.
    pub user_id: UserId,
    /// When the session expires.
    pub expires: DateTime<Utc>,
    /// When the session was created.
    pub created_at: DateTime<Utc>,
    /// When the session was last written.
    pub updated_at: DateTime<Utc>,
}

/// A stored email sign-in (verification) request.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerificationRequest {
    /// The store-generated id.
    pub id: VerificationRequestId,
    /// The identifier (email address) the link was sent to, as given.
    pub identifier: String,
    /// Lowercase hex SHA-256 of `token + secret`: the hash, never the raw token.
    pub token: String,
    /// When the link stops working (it works up to and including this instant).
    pub expires: DateTime<Utc>,
    /// When the request was created.
    pub created_at: DateTime<Utc>,
    /// When the request was last written.
    pub updated_at: DateTime<Utc>,
}

impl fmt::Debug for VerificationRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerificationRequest")
            .field("id", &self.id)
            .field("identifier", &self.identifier)
            .field("token", &Redacted)
            .field("expires", &self.expires)
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .finish()
    }
}

/// Email and password, for `get_user_by_credentials`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    /// The email address (normalized before lookup).
    pub email: String,
    /// The password. At most 1 KiB.
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

/// What `purge_expired` removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurgeStats {
    /// Expired sessions removed.
    pub sessions: u64,
    /// Expired verification requests removed.
    pub verification_requests: u64,
}
