//! Email normalization and the email sign-in provider.

use std::fmt;
use std::sync::Arc;

use chrono::Duration;

use crate::model::Redacted;

/// The one normalization applied to every email address and verification identifier, at every
/// write and every lookup: Unicode NFKC (compatibility forms fold: fullwidth `＠` is `@`, the
/// Kelvin sign is `K`), then lowercase, then trim white space.
///
/// ```
/// assert_eq!(authdb::normalize_email("  Alice@Example.COM "), "alice@example.com");
/// assert_eq!(authdb::normalize_email("\u{212A}evin＠x.io"), "kevin@x.io");
/// ```
#[must_use]
pub fn normalize_email(email: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    let folded: String = email.nfkc().collect::<String>().to_lowercase();
    folded.trim().to_owned()
}

/// False if `s` holds a control character or an invisible formatting character (bidi
/// controls, zero-width characters, the byte-order mark): such addresses are refused, since
/// two of them can look identical and differ.
pub(crate) fn is_printable(s: &str) -> bool {
    !s.chars().any(|c| {
        c.is_control()
            || matches!(c,
                '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206F}'
                | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}')
    })
}

/// The error type a sender returns.
pub type SendError = Box<dyn std::error::Error + Send + Sync + 'static>;

type Sender = dyn Fn(&VerificationMail<'_>) -> Result<(), SendError> + Send + Sync + 'static;

/// An email sign-in provider: its id, how long its links live, and the function that delivers
/// a link (NextAuth's `sendVerificationRequest`).
///
/// ```
/// use authdb::EmailProvider;
/// use chrono::Duration;
///
/// let provider = EmailProvider::new("email", |mail| {
///     // Deliver `mail.url` to `mail.identifier` (SMTP, an API, a queue...).
///     let _ = (mail.identifier, mail.url);
///     Ok(())
/// })
/// .max_age(Duration::minutes(15));
/// assert_eq!(provider.id(), "email");
/// ```
#[derive(Clone)]
pub struct EmailProvider {
    id: String,
    max_age: Duration,
    sender: Arc<Sender>,
}

impl EmailProvider {
    /// A provider with the given id and sender, whose links live 24 hours.
    pub fn new(
        id: impl Into<String>,
        sender: impl Fn(&VerificationMail<'_>) -> Result<(), SendError> + Send + Sync + 'static,
    ) -> Self {
        Self {
            id: id.into(),
            max_age: Duration::hours(24),
            sender: Arc::new(sender),
        }
    }

    /// How long a link lives. Default 24 hours. Must be positive, or
    /// `create_verification_request` returns [`Error::InvalidInput`](crate::Error::InvalidInput).
    #[must_use]
    pub fn max_age(mut self, d: Duration) -> Self {
        self.max_age = d;
        self
    }

    /// The provider id.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }

    /// How long a link lives.
    #[must_use]
    pub fn link_max_age(&self) -> Duration {
        self.max_age
    }

    /// Calls the sender (backends call it after the link is stored).
    pub fn send(&self, mail: &VerificationMail<'_>) -> Result<(), SendError> {
        (self.sender)(mail)
    }
}

impl fmt::Debug for EmailProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmailProvider")
            .field("id", &self.id)
            .field("max_age", &self.max_age)
            .finish_non_exhaustive()
    }
}

/// What the sender of an [`EmailProvider`] is given.
pub struct VerificationMail<'a> {
    /// The address to send to: the email of the account this identifier belongs to, as the
    /// account stores it, or the normalized identifier when no account has it yet. Never the
    /// identifier as typed: a look-alike (`\u{212A}evin@x.io`) that normalizes to an account's
    /// address must not receive that account's link.
    pub identifier: &'a str,
    /// The sign-in link (it contains the raw token).
    pub url: &'a str,
    /// The raw token (only its hash is stored).
    pub token: &'a str,
    /// The provider sending the link.
    pub provider: &'a EmailProvider,
}

impl fmt::Debug for VerificationMail<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerificationMail")
            .field("identifier", &self.identifier)
            .field("url", &Redacted)
            .field("token", &Redacted)
            .field("provider", &self.provider.id)
            .finish()
    }
}
