//! [`User`]: an authdb user as axum-login sees it.

use std::fmt;

use authdb::UserId;
use axum_login::AuthUser;
use sha2::{Digest, Sha256};

/// A signed-in (or signing-in) user: the stored [`authdb::User`] and the session
/// validation hash axum-login keeps in every session of theirs.
///
/// The hash is derived from the user's security stamp, which authdb replaces when their
/// credentials change (`set_password`, `delete_sessions`, a new email address). axum-login
/// compares the hash in a session with the user's current one on every request and ends
/// the session on a mismatch, so each of those events signs out every other session.
#[derive(Clone)]
pub struct User {
    user: authdb::User,
    auth_hash: [u8; 32],
}

impl User {
    /// The axum-login user for a stored user.
    pub fn new(user: authdb::User) -> Self {
        let auth_hash = session_auth_hash(&user);
        Self { user, auth_hash }
    }

    /// The user's id.
    pub fn id(&self) -> UserId {
        self.user.id
    }

    /// The stored user (profile, extra fields, times).
    pub fn profile(&self) -> &authdb::User {
        &self.user
    }

    /// The stored user, unwrapped.
    pub fn into_profile(self) -> authdb::User {
        self.user
    }
}

impl From<authdb::User> for User {
    fn from(user: authdb::User) -> Self {
        Self::new(user)
    }
}

/// `authdb::User`'s `Debug` (which hides the security stamp); the hash is hidden too.
impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("user", &self.user)
            .field("auth_hash", &"<redacted>")
            .finish()
    }
}

impl AuthUser for User {
    type Id = UserId;

    fn id(&self) -> UserId {
        self.user.id
    }

    fn session_auth_hash(&self) -> &[u8] {
        &self.auth_hash
    }
}

/// `SHA-256(label, user id, security stamp)`. Sessions store this, never the stamp: the
/// session data sits in the database file (and, with a cookie store, in the browser).
fn session_auth_hash(user: &authdb::User) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"authdb-axum-login/session-auth-hash/v1\0");
    h.update(user.id.to_bytes());
    h.update(user.security_stamp);
    h.finalize().into()
}
