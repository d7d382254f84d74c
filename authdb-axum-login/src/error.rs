//! The backend's error type.

use authdb::UserId;

/// What [`Backend`](crate::Backend) calls fail with. axum-login wraps it in
/// `axum_login::Error::Backend`.
///
/// Messages never contain a password, token or email address.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The provider account is linked to no user, and the verified email the provider gave
    /// belongs to an existing user: NextAuth's `OAuthAccountNotLinked`. The person should
    /// sign in the way they did before and link the provider from their account. Nothing
    /// was written.
    #[error(
        "OAuthAccountNotLinked: the provider's email belongs to an existing user; sign in as \
         before and link this provider from the account"
    )]
    OAuthAccountNotLinked,
    /// The user's `permissions` extra field is not a list of strings.
    #[error("user {0}: the `permissions` field is not an array of strings")]
    MalformedPermissions(UserId),
    /// The store refused or failed (for example [`authdb::Error::EmailTaken`] at sign-up).
    #[error(transparent)]
    Store(#[from] authdb::Error),
}
