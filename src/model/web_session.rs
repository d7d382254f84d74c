//! The records of a cookie-session layer such as tower-sessions (see [`crate::web_sessions`]
//! for the operations).

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};

use super::ids::{ParseIdError, UserId};
use super::redact::Redacted;

/// The largest `data` a web session may hold, in bytes.
pub const MAX_WEB_SESSION_DATA_LEN: usize = 64 * 1024;

/// How many expired web sessions [`AuthDb::web_session_delete_expired`] removes per write
/// transaction when given a batch size of 0.
pub const WEB_SESSION_PURGE_BATCH: usize = 1000;

/// The 16-byte id of a web session: the value its cookie carries (tower-sessions' `Id`, as
/// the little-endian bytes of its `i128`). A bearer secret: `Debug` hides it, and the store
/// keeps only its SHA-256.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct WebSessionId([u8; 16]);

impl WebSessionId {
    /// The id from its 16 bytes.
    #[must_use]
    pub fn from_bytes(b: [u8; 16]) -> Self {
        Self(b)
    }

    /// The id's 16 bytes.
    #[must_use]
    pub fn to_bytes(&self) -> [u8; 16] {
        self.0
    }

    /// What the store keeps in the id's place: its SHA-256.
    pub(crate) fn hash(&self) -> [u8; 32] {
        use sha2::Digest;
        sha2::Sha256::digest(self.0).into()
    }
}

impl fmt::Debug for WebSessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("WebSessionId").field(&Redacted).finish()
    }
}

/// A public name for one web session: the SHA-256 of its id (what the file stores), as 64
/// lowercase hex characters. It reveals nothing about the id, so it can be shown in a
/// "your devices" page and sent back to sign that device out
/// ([`AuthDb::web_session_delete_by_handle`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WebSessionHandle(pub(crate) [u8; 32]);

impl WebSessionHandle {
    /// The handle of the web session with this id.
    #[must_use]
    pub fn of(id: &WebSessionId) -> Self {
        Self(id.hash())
    }
}

impl fmt::Display for WebSessionHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::token::hex(&self.0))
    }
}

impl fmt::Debug for WebSessionHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WebSessionHandle({self})")
    }
}

impl FromStr for WebSessionHandle {
    type Err = ParseIdError;

    /// Parses 64 hex characters (either case).
    fn from_str(s: &str) -> std::result::Result<Self, ParseIdError> {
        crate::token::unhex32(s).map(Self).ok_or(ParseIdError)
    }
}

/// One web session: what [`AuthDb::web_session_create`] and
/// [`AuthDb::web_session_save`] store and [`AuthDb::web_session_load`] returns. `Debug`
/// hides the id and shows only the length of `data`.
#[derive(Clone, PartialEq, Eq)]
pub struct WebSession {
    /// The id (the cookie value). Only its SHA-256 is stored.
    pub id: WebSessionId,
    /// The user this session signs in, if any: it fills the by-user index.
    pub user_id: Option<UserId>,
    /// When it expires (valid up to and including this instant). A time already past is
    /// allowed: the record then reads as expired.
    pub expires: DateTime<Utc>,
    /// The session data, in the caller's own self-describing encoding, at most
    /// [`MAX_WEB_SESSION_DATA_LEN`] bytes.
    pub data: Vec<u8>,
}

impl fmt::Debug for WebSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSession")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("expires", &self.expires)
            .field("data_len", &self.data.len())
            .finish()
    }
}

/// A web session as listed by [`AuthDb::web_session_list_for_user`]: no id, no data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebSessionInfo {
    /// Its public handle (pass it to [`AuthDb::web_session_delete_by_handle`]).
    pub handle: WebSessionHandle,
    /// The user it signs in.
    pub user_id: Option<UserId>,
    /// When it expires.
    pub expires: DateTime<Utc>,
    /// When it was first stored.
    pub created_at: DateTime<Utc>,
    /// When it was last saved.
    pub updated_at: DateTime<Utc>,
    /// How many bytes of data it holds.
    pub data_len: usize,
}
