//! Database sessions.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::ids::{SessionId, UserId};
use super::redact::Redacted;

/// A database session, as returned by `create_session`, `get_session` and `update_session`.
///
/// The file holds only the SHA-256 of `session_token`: the plain token exists in this value and
/// in the caller's cookie. `access_token` is derived from the session token (a domain-separated
/// SHA-256), so it is stable for the session's life, reveals nothing about the session token,
/// and is never stored either. Both are hidden from `Debug` and skipped by `Serialize`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The store-generated id.
    pub id: SessionId,
    /// The user signed in by this session.
    pub user_id: UserId,
    /// When the session expires (it is valid up to and including this instant).
    pub expires: DateTime<Utc>,
    /// The session token, for the cookie: 64 lowercase hex characters when the store made it,
    /// the caller's string for `create_session_with`.
    #[serde(skip_serializing, default)]
    pub session_token: String,
    /// The session's access token (64 lowercase hex characters).
    #[serde(skip_serializing, default)]
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

/// A session whose token and expiry the caller chose (Auth.js's `createSession`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewSession {
    /// The user to sign in.
    pub user_id: UserId,
    /// The token: any non-empty string up to
    /// [`MAX_SESSION_TOKEN_LEN`](crate::limits::MAX_SESSION_TOKEN_LEN) bytes (Auth.js uses a
    /// random UUID). Only its SHA-256 is stored. Not serialized.
    #[serde(skip_serializing, default)]
    pub session_token: String,
    /// When it expires. A time already past is allowed: the session then reads as expired.
    pub expires: DateTime<Utc>,
}

impl fmt::Debug for NewSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewSession")
            .field("user_id", &self.user_id)
            .field("session_token", &Redacted)
            .field("expires", &self.expires)
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
