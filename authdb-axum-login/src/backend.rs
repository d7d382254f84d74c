//! [`Backend`]: axum-login's `AuthnBackend` on an authdb database.

use authdb::limits::MAX_PASSWORD_LEN;
use authdb::prelude::*;
use authdb::tokio::AsyncAuthDb;
use authdb::{NewUser, UserId};
use axum_login::AuthnBackend;

use crate::credentials::{Credentials, OAuthCredentials};
use crate::error::Error;
use crate::oauth::{OAuthOutcome, oauth_sign_in};
use crate::user::User;

/// axum-login's authentication backend on an authdb database (and its authorization
/// backend: see [`PERMISSIONS_FIELD`](crate::PERMISSIONS_FIELD)).
///
/// Every call runs on tokio's blocking pool ([`AsyncAuthDb`]): argon2 and durable commits
/// never hold an executor thread. Cheap to clone; clones share the database.
#[derive(Clone, Debug)]
pub struct Backend {
    db: AsyncAuthDb,
}

impl Backend {
    /// A backend on `db` (an [`authdb::AuthDb`] or an [`AsyncAuthDb`]).
    pub fn new(db: impl Into<AsyncAuthDb>) -> Self {
        Self { db: db.into() }
    }

    /// The database.
    pub fn db(&self) -> &AsyncAuthDb {
        &self.db
    }

    /// Password sign-up: creates the user and sets their password (argon2id, hashed outside
    /// the write lock). An email already in use is
    /// [`authdb::Error::EmailTaken`] (as [`Error::Store`]); an empty or over-long password is
    /// [`authdb::Error::InvalidInput`], checked before anything is written.
    ///
    /// Two commits (the user, then the password, so that no writer waits for argon2); if the
    /// second fails the user is deleted again.
    pub async fn sign_up(&self, profile: NewUser, password: String) -> Result<User, Error> {
        authdb::backend::validate_required("password", &password, MAX_PASSWORD_LEN)?;
        if profile.email.is_none() {
            return Err(authdb::Error::InvalidValue {
                field: "email",
                reason: "is required for a password sign-up",
            }
            .into());
        }
        let created = self.db.create_user(&profile).await?;
        if let Err(e) = self.db.set_password(&created.id, &password).await {
            self.db.delete_user(&created.id).await?;
            return Err(e.into());
        }
        // The password gave the user a new security stamp: read it back.
        self.reload(&created.id).await
    }

    /// Sets a new password: replaces the security stamp, so every session of the user that
    /// axum-login holds ends at its next request, and (unless the database was built with
    /// `password_change_ends_sessions(false)`) deletes the user's session records at once.
    /// Returns the user with the new stamp: log the current session in again with it
    /// (after `session.cycle_id()`) to keep it signed in.
    pub async fn change_password(&self, user_id: &UserId, password: &str) -> Result<User, Error> {
        self.db.set_password(user_id, password).await?;
        self.reload(user_id).await
    }

    /// "Sign out everywhere", in one transaction: deletes the user's web sessions (the
    /// tower-sessions records naming them) and database sessions and replaces the security
    /// stamp (so a session held elsewhere, in a cookie store say, ends too). Returns how many
    /// web sessions were deleted.
    pub async fn sign_out_everywhere(&self, user_id: &UserId) -> Result<u64, Error> {
        let uid = *user_id;
        Ok(self
            .db
            .write(move |tx| {
                tx.delete_sessions(&uid)?;
                tx.web_session_delete_for_user(&uid)
            })
            .await?)
    }

    /// An OAuth sign-in, decided and written in one transaction by
    /// [`oauth_sign_in`](crate::oauth_sign_in): the linked user, or a new user, or
    /// [`Error::OAuthAccountNotLinked`]. Also tells whether the user is new.
    pub async fn sign_in_oauth(&self, creds: OAuthCredentials) -> Result<(User, bool), Error> {
        match self.db.write(move |tx| oauth_sign_in(tx, &creds)).await? {
            OAuthOutcome::Existing(u) => Ok((User::new(u), false)),
            OAuthOutcome::Created(u) => Ok((User::new(u), true)),
            OAuthOutcome::NotLinked => Err(Error::OAuthAccountNotLinked),
        }
    }

    async fn reload(&self, user_id: &UserId) -> Result<User, Error> {
        self.db
            .get_user(user_id)
            .await?
            .map(User::new)
            .ok_or(Error::Store(authdb::Error::UserNotFound(*user_id)))
    }
}

impl AuthnBackend for Backend {
    type User = User;
    type Credentials = Credentials;
    type Error = Error;

    /// Passwords: `Ok(None)` for an unknown email, a wrong password, and input authdb refuses
    /// (an empty email, a password over 1 KiB), all in about the same time. OAuth: see
    /// [`Backend::sign_in_oauth`].
    async fn authenticate(&self, creds: Credentials) -> Result<Option<User>, Error> {
        match creds {
            Credentials::Password(c) => match self.db.get_user_by_credentials(&c).await {
                Ok(found) => Ok(found.map(User::new)),
                Err(authdb::Error::InvalidInput { .. } | authdb::Error::InvalidValue { .. }) => {
                    Ok(None)
                }
                Err(e) => Err(e.into()),
            },
            Credentials::OAuth(c) => self.sign_in_oauth(c).await.map(|(u, _)| Some(u)),
        }
    }

    async fn get_user(&self, user_id: &UserId) -> Result<Option<User>, Error> {
        Ok(self.db.get_user(user_id).await?.map(User::new))
    }
}
