//! What a person signs in with: a password, or a finished OAuth authorization.

use std::fmt;

use authdb::NewAccount;

/// The credentials [`Backend::authenticate`](axum_login::AuthnBackend::authenticate) takes.
#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)] // made once per sign-in and moved: a box would only add an allocation
pub enum Credentials {
    /// Email and password, checked against the stored argon2id hash.
    Password(authdb::Credentials),
    /// The result of an OAuth authorization-code exchange, to sign in (or up) with.
    OAuth(OAuthCredentials),
}

impl Credentials {
    /// Password credentials.
    pub fn password(email: impl Into<String>, password: impl Into<String>) -> Self {
        Self::Password(authdb::Credentials {
            email: email.into(),
            password: password.into(),
        })
    }
}

impl From<OAuthCredentials> for Credentials {
    fn from(c: OAuthCredentials) -> Self {
        Self::OAuth(c)
    }
}

/// An OAuth (or OpenID Connect) sign-in the app has finished with the provider: the account
/// (provider, the person's id there, the tokens) and what the provider says about them.
///
/// `Debug` hides the tokens (see [`NewAccount`]).
#[derive(Clone, Debug, Default)]
pub struct OAuthCredentials {
    /// The provider account, as it is linked: `provider_type` (`"oauth"` or `"oidc"`),
    /// `provider_id`, `provider_account_id` and the tokens, sealed in the file (the database
    /// needs an encryption key to store tokens).
    pub account: NewAccount,
    /// The profile the provider returned.
    pub profile: OAuthProfile,
}

/// What the provider says about the person.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct OAuthProfile {
    /// Display name.
    pub name: Option<String>,
    /// Email address.
    pub email: Option<String>,
    /// Whether the provider verified that the person controls `email`. An unverified email
    /// proves nothing (many providers let anyone type any address): it is neither stored on
    /// a new user nor matched against existing users.
    pub email_verified: bool,
    /// Avatar URL.
    pub image: Option<String>,
}

/// Shows whether an email is present, not the address.
impl fmt::Debug for OAuthProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthProfile")
            .field("name", &self.name)
            .field("email", &self.email.as_ref().map(|_| "<redacted>"))
            .field("email_verified", &self.email_verified)
            .field("image", &self.image)
            .finish()
    }
}
