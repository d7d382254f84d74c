//! The `Adapter` trait: NextAuth's 16 adapter operations.

use crate::email::EmailProvider;
use crate::error::Result;
use crate::model::{
    Account, Credentials, NewAccount, NewUser, Session, User, UserId, VerificationRequest,
};

/// The 16 operations of a NextAuth.js (v3) adapter.
///
/// Implemented by [`AuthDb`](crate::AuthDb) (each call is its own transaction) and by
/// [`WriteTxn`](crate::WriteTxn) (all calls share one transaction, committed together). The
/// behaviour is the same in both places. Another backend could implement it too.
///
/// Reads return `Ok(None)` for *not found* and *expired*; errors are conflicts, missing
/// referenced users, invalid input and storage failures. A call that fails writes nothing.
pub trait Adapter {
    /// Creates a user from a profile. The email (if any) must not belong to another user after
    /// normalization ([`normalize_email`](crate::normalize_email)), else [`Error::EmailTaken`].
    /// An email that is empty after trimming is [`Error::InvalidInput`].
    ///
    /// [`Error::EmailTaken`]: crate::Error::EmailTaken
    /// [`Error::InvalidInput`]: crate::Error::InvalidInput
    fn create_user(&self, profile: &NewUser) -> Result<User>;

    /// The user with this id, or `None`.
    fn get_user(&self, id: &UserId) -> Result<Option<User>>;

    /// The user with this email (normalized), or `None`. An empty or white-space email is
    /// `None` without a lookup.
    fn get_user_by_email(&self, email: &str) -> Result<Option<User>>;

    /// The user owning the account `(provider_id, provider_account_id)`, or `None`.
    fn get_user_by_provider_account_id(
        &self,
        provider_id: &str,
        provider_account_id: &str,
    ) -> Result<Option<User>>;

    /// The user whose email and password match, or `None`.
    ///
    /// Unknown emails and wrong passwords both give `None` and take about the same time (an
    /// argon2 verification against a dummy hash), so the call does not reveal which emails
    /// exist. A password over [`MAX_PASSWORD_LEN`](crate::limits::MAX_PASSWORD_LEN) bytes is
    /// [`Error::InvalidInput`](crate::Error::InvalidInput), without hashing.
    fn get_user_by_credentials(&self, credentials: &Credentials) -> Result<Option<User>>;

    /// Replaces the stored name, email, image and email-verified time of an existing user
    /// (`created_at` is kept, `updated_at` set to now) and returns the stored user. A missing
    /// user is [`Error::UserNotFound`](crate::Error::UserNotFound); an email taken by another
    /// user is [`Error::EmailTaken`](crate::Error::EmailTaken).
    fn update_user(&self, user: &User) -> Result<User>;

    /// Deletes the user and, in the same transaction, their accounts, sessions and password.
    /// Deleting a missing user is not an error.
    fn delete_user(&self, id: &UserId) -> Result<()>;

    /// Links an OAuth account to an existing user.
    ///
    /// If the same provider account is already linked to this user its tokens are refreshed
    /// (a token given as `None` keeps the stored one); linked to another user it is
    /// [`Error::AccountLinkedToAnotherUser`](crate::Error::AccountLinkedToAnotherUser). A
    /// missing user is [`Error::UserNotFound`](crate::Error::UserNotFound).
    fn link_account(&self, user_id: &UserId, account: &NewAccount) -> Result<Account>;

    /// Removes the account if it belongs to `user_id`; otherwise does nothing. Not an error
    /// when missing.
    fn unlink_account(
        &self,
        user_id: &UserId,
        provider_id: &str,
        provider_account_id: &str,
    ) -> Result<()>;

    /// Creates a session for an existing user with fresh random tokens, expiring after the
    /// session max age. Only the SHA-256 of the session token is stored.
    fn create_session(&self, user_id: &UserId) -> Result<Session>;

    /// The session for this token, or `None`: unknown tokens (any string) and expired sessions
    /// (which are deleted by this call) give `None`.
    fn get_session(&self, session_token: &str) -> Result<Option<Session>>;

    /// Extends a session when it is due, working from the *stored* session found by
    /// `session.session_token`.
    ///
    /// With `due = expires − max_age + update_age`: if now is after `due`, the expiry moves to
    /// now + max age and the session is returned; otherwise, with `force`, it is written
    /// unchanged (only `updated_at` moves) and returned; otherwise `None` and nothing is
    /// written. A missing or expired session gives `None` and is never revived.
    fn update_session(&self, session: &Session, force: bool) -> Result<Option<Session>>;

    /// Deletes the session with this token. Not an error when missing.
    fn delete_session(&self, session_token: &str) -> Result<()>;

    /// Stores an email sign-in request (the hash of `token + secret`, expiring after the
    /// provider's max age), then calls the provider's sender with the raw token and URL. If the
    /// sender fails, the request is removed again and [`Error::SendFailed`](crate::Error::SendFailed)
    /// returned.
    fn create_verification_request(
        &self,
        identifier: &str,
        url: &str,
        token: &str,
        secret: &str,
        provider: &EmailProvider,
    ) -> Result<VerificationRequest>;

    /// The request matching both the identifier (normalized) and the hash of `token + secret`,
    /// or `None`. An expired request is deleted and gives `None`. Does not consume it; see
    /// `use_verification_request` for the single-use form.
    fn get_verification_request(
        &self,
        identifier: &str,
        token: &str,
        secret: &str,
        provider: &EmailProvider,
    ) -> Result<Option<VerificationRequest>>;

    /// Deletes the request matching identifier and hash. Not an error when missing.
    fn delete_verification_request(
        &self,
        identifier: &str,
        token: &str,
        secret: &str,
        provider: &EmailProvider,
    ) -> Result<()>;
}
