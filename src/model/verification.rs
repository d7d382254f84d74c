//! Email sign-in links: v3 verification requests and Auth.js verification tokens.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::ids::VerificationRequestId;
use super::redact::Redacted;

/// A stored email sign-in (verification) request (NextAuth v3).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerificationRequest {
    /// The store-generated id.
    pub id: VerificationRequestId,
    /// The identifier (email address) the link was sent to, as given.
    pub identifier: String,
    /// Lowercase hex SHA-256 of `token + secret`: the hash, never the raw token. Hidden from
    /// `Debug`, skipped by `Serialize`.
    #[serde(skip_serializing, default)]
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

/// An Auth.js verification token: the caller hashes the emailed token itself and passes the
/// hash here; authdb never sees the raw token or the secret.
///
/// A `token` of 64 hex characters (Auth.js's `sha256(token + secret)`) is stored under the
/// same key as a v3 request with that hash, so links made by either API can be checked by the
/// other. Any other string (up to [`MAX_TOKEN_LEN`](crate::limits::MAX_TOKEN_LEN) bytes) is
/// accepted and stored only as a domain-separated SHA-256 of it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerificationToken {
    /// The email address (normalized for matching, returned as first given).
    pub identifier: String,
    /// The hashed token. Hidden from `Debug`, skipped by `Serialize`.
    #[serde(skip_serializing, default)]
    pub token: String,
    /// When the link stops working (it works up to and including this instant).
    pub expires: DateTime<Utc>,
}

impl fmt::Debug for VerificationToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerificationToken")
            .field("identifier", &self.identifier)
            .field("token", &Redacted)
            .field("expires", &self.expires)
            .finish()
    }
}
