//! The records authdb stores and returns.
//!
//! Timestamps are stored with microsecond precision: a value passed in with finer precision
//! comes back truncated to the microsecond, and every returned value is exactly what a later
//! read returns.

mod account;
mod authenticator;
mod ids;
pub(crate) mod redact;
mod session;
mod user;
mod verification;
pub(crate) mod web_session;

use serde::{Deserialize, Serialize};

pub use account::{Account, NewAccount, PROVIDER_TYPES};
pub use authenticator::{Authenticator, NewAuthenticator};
pub use ids::{AccountId, ParseIdError, SessionId, UserId, VerificationRequestId};
pub(crate) use redact::Redacted;
pub use session::{NewSession, Session, SessionInfo};
pub use user::{Credentials, Extra, NewUser, User, UserPatch};
pub use verification::{VerificationRequest, VerificationToken};

/// What `purge_expired` removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurgeStats {
    /// Expired sessions removed.
    pub sessions: u64,
    /// Expired verification requests removed.
    pub verification_requests: u64,
    /// Expired web-session (tower-sessions) records removed.
    #[serde(default)]
    pub web_sessions: u64,
}
