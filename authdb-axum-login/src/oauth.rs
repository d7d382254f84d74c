//! The OAuth sign-in decision: which user a finished provider authorization signs in, under
//! NextAuth's `OAuthAccountNotLinked` rules.

use authdb::prelude::*;
use authdb::{NewUser, normalize_email};
use serde_json::Value;

use crate::credentials::OAuthCredentials;

/// What [`oauth_sign_in`] decided (and, for the first two, wrote).
#[derive(Clone, Debug)]
pub enum OAuthOutcome {
    /// The provider account was linked to this user, who signs in; the stored tokens were
    /// refreshed.
    Existing(authdb::User),
    /// A new user was created from the profile and the account linked to them.
    Created(authdb::User),
    /// NextAuth's `OAuthAccountNotLinked`: the account is new and the provider's verified
    /// email belongs to an existing user. Nothing was written.
    NotLinked,
}

/// Finishes an OAuth sign-in inside one write transaction (`tx`, from `AuthDb::write` or
/// `AsyncAuthDb::write`), so that two callbacks for the same person cannot both create a
/// user:
///
/// 1. an account already linked signs its user in (re-linking refreshes its tokens);
/// 2. otherwise, when the provider verified the email and a user has that email, nothing is
///    written and the outcome is [`OAuthOutcome::NotLinked`] — no automatic linking by
///    email (an attacker's provider account must not take over an existing user);
/// 3. otherwise a user is created from the profile (with the email only if the provider
///    verified it) and the account linked to them.
///
/// The account's `extra` records what the provider said about the email (`email`,
/// `email_verified`), sealed like its tokens, as `examples/web` does: a later first
/// verification of the user's address can tell which providers vouched for it.
pub fn oauth_sign_in(tx: &impl Adapter, creds: &OAuthCredentials) -> authdb::Result<OAuthOutcome> {
    let account = &creds.account;
    let profile = &creds.profile;
    let mut account = account.clone();
    account.extra.insert(
        "email".into(),
        profile.email.clone().map_or(Value::Null, Value::String),
    );
    account.extra.insert(
        "email_verified".into(),
        Value::Bool(profile.email_verified && profile.email.is_some()),
    );
    if let Some(owner) =
        tx.get_user_by_provider_account_id(&account.provider_id, &account.provider_account_id)?
    {
        tx.link_account(&owner.id, &account)?;
        return Ok(OAuthOutcome::Existing(owner));
    }
    let verified_email = profile
        .email
        .as_deref()
        .filter(|_| profile.email_verified)
        .map(normalize_email);
    if let Some(email) = &verified_email
        && tx.get_user_by_email(email)?.is_some()
    {
        return Ok(OAuthOutcome::NotLinked);
    }
    let user = tx.create_user(&NewUser {
        name: profile.name.clone(),
        email: verified_email,
        image: profile.image.clone(),
        email_verified: None,
        ..NewUser::default()
    })?;
    tx.link_account(&user.id, &account)?;
    Ok(OAuthOutcome::Created(user))
}
