//! [`ExportCounts`]: how many records of each kind an export holds.

use serde::{Deserialize, Serialize};

use super::record::ExportRecord;

/// How many records of each kind an export holds (its end line), or an import read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct ExportCounts {
    /// Users.
    pub users: u64,
    /// Passwords.
    pub passwords: u64,
    /// Linked accounts.
    pub accounts: u64,
    /// Sessions (expired ones included).
    pub sessions: u64,
    /// WebAuthn authenticators.
    pub authenticators: u64,
    /// Email sign-in links (expired ones included).
    pub verification_tokens: u64,
    /// Web sessions of a cookie-session layer (expired ones included). An end line without
    /// this count (written before web sessions were exported) reads as 0.
    #[serde(default)]
    pub web_sessions: u64,
}

impl ExportCounts {
    /// Every record counted.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.users
            + self.passwords
            + self.accounts
            + self.sessions
            + self.authenticators
            + self.verification_tokens
            + self.web_sessions
    }

    /// Counts one more record of `record`'s kind.
    pub(super) fn count(&mut self, record: &ExportRecord) {
        *match record {
            ExportRecord::User(_) => &mut self.users,
            ExportRecord::Password(_) => &mut self.passwords,
            ExportRecord::Account(_) => &mut self.accounts,
            ExportRecord::Session(_) => &mut self.sessions,
            ExportRecord::Authenticator(_) => &mut self.authenticators,
            ExportRecord::VerificationToken(_) => &mut self.verification_tokens,
            ExportRecord::WebSession(_) => &mut self.web_sessions,
        } += 1;
    }
}
