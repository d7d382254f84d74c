//! [`ExportRecord`]: one record as a backend stores it — secrets in their stored form (hashes,
//! sealed bytes, PHC strings), times in microseconds since the Unix epoch. The export's lines
//! are these records spelled in JSON; a backend reads its tables into them (export) and
//! stores them as they come (import).
//!
//! None of these types implements `Serialize`, and their `Debug` output hides every stored
//! secret (hashes, sealed values, password hashes, security stamps, web session data).

use std::fmt;

use crate::model::redact::{Redacted, redact_map, redact_opt};
use crate::model::{AccountId, Extra, SessionId, UserId, VerificationRequestId};

use super::error::{ImportError, Refusal};

/// A user.
#[derive(Clone, PartialEq)]
pub struct StoredUser {
    /// The user's id.
    pub id: UserId,
    /// The display name.
    pub name: Option<String>,
    /// The email address as given (not normalized).
    pub email: Option<String>,
    /// When the address was verified (microseconds).
    pub email_verified: Option<i64>,
    /// The image URL.
    pub image: Option<String>,
    /// The application's extra fields.
    pub extra: Extra,
    /// The security stamp.
    pub security_stamp: [u8; 16],
    /// Created (microseconds).
    pub created_at: i64,
    /// Last updated (microseconds).
    pub updated_at: i64,
}

/// A user's password.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredPassword {
    /// Whose.
    pub user_id: UserId,
    /// The argon2id PHC string.
    pub phc: String,
    /// Last set (microseconds).
    pub updated_at: i64,
}

/// A linked provider account, its secrets sealed under the store's encryption key (bound to
/// the account id and the field, so they open again with the same key in any backend).
#[derive(Clone, PartialEq, Eq)]
pub struct StoredAccount {
    /// The account's id.
    pub id: AccountId,
    /// Whose.
    pub user_id: UserId,
    /// `oauth`, `oidc`, `email` or `webauthn`.
    pub provider_type: String,
    /// The provider (`github`).
    pub provider_id: String,
    /// The account's id at the provider.
    pub provider_account_id: String,
    /// The sealed refresh token.
    pub refresh_token: Option<Vec<u8>>,
    /// The sealed access token.
    pub access_token: Option<Vec<u8>>,
    /// When the access token expires (microseconds).
    pub access_token_expires: Option<i64>,
    /// The token type.
    pub token_type: Option<String>,
    /// The granted scope.
    pub scope: Option<String>,
    /// The sealed ID token.
    pub id_token: Option<Vec<u8>>,
    /// The session state.
    pub session_state: Option<String>,
    /// The sealed JSON of the provider-specific extra fields.
    pub extra: Option<Vec<u8>>,
    /// Created (microseconds).
    pub created_at: i64,
    /// Last updated (microseconds).
    pub updated_at: i64,
}

/// A database session, under the SHA-256 of its token.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredSession {
    /// The SHA-256 of the session token.
    pub token_hash: [u8; 32],
    /// The session's id.
    pub id: SessionId,
    /// Whose.
    pub user_id: UserId,
    /// When it expires (microseconds).
    pub expires: i64,
    /// Created (microseconds).
    pub created_at: i64,
    /// Last updated (microseconds).
    pub updated_at: i64,
}

/// A WebAuthn authenticator.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredAuthenticator {
    /// The credential id (base64url, as the browser gives it).
    pub credential_id: String,
    /// Whose.
    pub user_id: UserId,
    /// The provider account id of the passkey.
    pub provider_account_id: String,
    /// The public key.
    pub credential_public_key: String,
    /// The signature counter.
    pub counter: u64,
    /// `singleDevice` or `multiDevice`.
    pub credential_device_type: String,
    /// Whether it is backed up.
    pub credential_backed_up: bool,
    /// The transports, comma-separated.
    pub transports: Option<String>,
    /// Created (microseconds).
    pub created_at: i64,
    /// Last updated (microseconds).
    pub updated_at: i64,
}

/// An email sign-in link, under the key its token is stored by (the SHA-256 that Auth.js and
/// NextAuth v3 compute from the token and the secret).
#[derive(Clone, PartialEq, Eq)]
pub struct StoredVerificationToken {
    /// The key the link is stored under.
    pub token_hash: [u8; 32],
    /// The link's id.
    pub id: VerificationRequestId,
    /// The identifier (an email address) as given.
    pub identifier: String,
    /// When it expires (microseconds).
    pub expires: i64,
    /// Created (microseconds).
    pub created_at: i64,
    /// Last updated (microseconds).
    pub updated_at: i64,
}

/// A web session of a cookie-session layer, under the SHA-256 of its id.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredWebSession {
    /// The SHA-256 of the web session's 16-byte id.
    pub id_hash: [u8; 32],
    /// The user it signs in, if any.
    pub user_id: Option<UserId>,
    /// When it expires (microseconds).
    pub expires: i64,
    /// Created (microseconds).
    pub created_at: i64,
    /// Last saved (microseconds).
    pub updated_at: i64,
    /// The session data, opaque to authdb.
    pub data: Vec<u8>,
}

/// One record of an export, as a backend stores it.
///
/// An export lists them in this order of kinds — users, passwords, accounts, sessions,
/// authenticators, verification tokens, web sessions — so that every record comes after the
/// user it refers to; [`Exporter`](super::Exporter) refuses a kind out of that order.
///
/// Non-exhaustive: a later version may add a kind, which a backend's [`ImportSink`] should
/// refuse (rather than drop) until it can store it.
///
/// [`ImportSink`]: super::ImportSink
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ExportRecord {
    /// A user.
    User(StoredUser),
    /// A password.
    Password(StoredPassword),
    /// A linked account.
    Account(StoredAccount),
    /// A database session.
    Session(StoredSession),
    /// A WebAuthn authenticator.
    Authenticator(StoredAuthenticator),
    /// An email sign-in link.
    VerificationToken(StoredVerificationToken),
    /// A web session.
    WebSession(StoredWebSession),
}

impl ExportRecord {
    /// The position of this record's kind in the export order (0 for users).
    #[must_use]
    pub fn kind_order(&self) -> u8 {
        match self {
            Self::User(_) => 0,
            Self::Password(_) => 1,
            Self::Account(_) => 2,
            Self::Session(_) => 3,
            Self::Authenticator(_) => 4,
            Self::VerificationToken(_) => 5,
            Self::WebSession(_) => 6,
        }
    }

    /// The user this record refers to, if any (every kind but users and verification tokens,
    /// and web sessions that sign no one in).
    #[must_use]
    pub fn user_id(&self) -> Option<UserId> {
        match self {
            Self::User(_) | Self::VerificationToken(_) => None,
            Self::Password(p) => Some(p.user_id),
            Self::Account(a) => Some(a.user_id),
            Self::Session(s) => Some(s.user_id),
            Self::Authenticator(a) => Some(a.user_id),
            Self::WebSession(w) => w.user_id,
        }
    }

    /// A short description naming the record by its id, never by a secret.
    fn what(&self) -> String {
        match self {
            Self::User(u) => format!("user {}", u.id),
            Self::Password(p) => format!("the password of user {}", p.user_id),
            Self::Account(a) => format!("account {}", a.id),
            Self::Session(s) => format!("session {}", s.id),
            Self::Authenticator(_) => "the authenticator".to_owned(),
            Self::VerificationToken(v) => format!("verification token {}", v.id),
            Self::WebSession(_) => "the web session".to_owned(),
        }
    }

    /// The error for this record meeting `why`, worded the same by every backend (the reader
    /// adds the line number).
    #[must_use]
    pub fn refused(&self, why: Refusal) -> ImportError {
        let what = self.what();
        let message = match (why, self) {
            (Refusal::UserMissing, _) => format!(
                "{what} refers to user {}, which is not in the database or earlier in the export",
                self.user_id().map_or_else(String::new, |u| u.to_string())
            ),
            (Refusal::Exists, Self::User(_) | Self::Account(_)) => format!("{what} already exists"),
            (Refusal::Exists, Self::Password(p)) => {
                format!("user {} already has a password", p.user_id)
            }
            (Refusal::Exists, Self::Session(_)) => {
                format!("{what}: a session with this token hash already exists")
            }
            (Refusal::Exists, Self::Authenticator(_)) => {
                "an authenticator with this credential id already exists".to_owned()
            }
            (Refusal::Exists, Self::VerificationToken(_)) => {
                format!("{what}: a link with this token hash already exists")
            }
            (Refusal::Exists, Self::WebSession(_)) => {
                "a web session with this id hash already exists".to_owned()
            }
            (Refusal::EmailTaken, _) => format!(
                "{what}: the email address is already used by another user (compared after \
                 normalization)"
            ),
            (Refusal::ProviderAccountTaken, Self::Account(a)) => format!(
                "{what}: this provider account is already linked (provider `{}`)",
                a.provider_id
            ),
            (Refusal::ProviderAccountTaken, _) => {
                format!("{what}: this provider account is already linked")
            }
        };
        ImportError::refused(message)
    }
}

impl fmt::Debug for StoredUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredUser")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("email", &self.email)
            .field("email_verified", &self.email_verified)
            .field("image", &self.image)
            .field("extra", &redact_map(&self.extra))
            .field("security_stamp", &Redacted)
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .finish()
    }
}

impl fmt::Debug for StoredPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredPassword")
            .field("user_id", &self.user_id)
            .field("phc", &Redacted)
            .field("updated_at", &self.updated_at)
            .finish()
    }
}

impl fmt::Debug for StoredAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredAccount")
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
            .field("extra", &redact_opt(&self.extra))
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .finish()
    }
}

impl fmt::Debug for StoredSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredSession")
            .field("token_hash", &Redacted)
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("expires", &self.expires)
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .finish()
    }
}

impl fmt::Debug for StoredAuthenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredAuthenticator")
            .field("credential_id", &self.credential_id)
            .field("user_id", &self.user_id)
            .field("provider_account_id", &self.provider_account_id)
            .field("credential_public_key", &self.credential_public_key)
            .field("counter", &self.counter)
            .field("credential_device_type", &self.credential_device_type)
            .field("credential_backed_up", &self.credential_backed_up)
            .field("transports", &self.transports)
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .finish()
    }
}

impl fmt::Debug for StoredVerificationToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredVerificationToken")
            .field("token_hash", &Redacted)
            .field("id", &self.id)
            .field("identifier", &self.identifier)
            .field("expires", &self.expires)
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .finish()
    }
}

impl fmt::Debug for StoredWebSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredWebSession")
            .field("id_hash", &Redacted)
            .field("user_id", &self.user_id)
            .field("expires", &self.expires)
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .field("data_len", &self.data.len())
            .finish()
    }
}
