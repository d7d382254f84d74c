//! The operation set as a family of traits, one per kind of record.
//!
//! [`AuthDb`](crate::AuthDb) (each call its own transaction) and [`WriteTxn`](crate::WriteTxn)
//! (every call inside one transaction) implement all of them with the same behaviour; another
//! backend implements them too and proves it with the [conformance suite](crate::conformance)
//! (feature `conformance`). Bring them into scope with `use authdb::prelude::*;`.
//!
//! Shared rules:
//! - Reads return `Ok(None)` for *not found* and *expired*; errors are conflicts, missing
//!   referenced records, invalid input and storage failures.
//! - A call that returns an error has written nothing.
//! - *Expired* means the store's clock is strictly later than `expires`.
//! - Emails and verification identifiers are compared after [`normalize_email`](crate::normalize_email).

use chrono::{DateTime, Utc};

use crate::email::EmailProvider;
use crate::error::Result;
use crate::integrity::IntegrityReport;
use crate::model::{
    Account, Authenticator, Credentials, NewAccount, NewAuthenticator, NewSession, NewUser,
    PurgeStats, Session, SessionId, SessionInfo, User, UserId, UserPatch, VerificationRequest,
    VerificationToken,
};

/// Users and their passwords.
pub trait UserStore {
    /// Creates a user from a profile. The email (if any) must not belong to another user after
    /// normalization, else [`Error::EmailTaken`](crate::Error::EmailTaken). An email that is
    /// empty after trimming is [`Error::InvalidInput`](crate::Error::InvalidInput).
    fn create_user(&self, profile: &NewUser) -> Result<User>;

    /// The user with this id, or `None`.
    fn get_user(&self, id: &UserId) -> Result<Option<User>>;

    /// The user with this email (normalized), or `None`. An empty or white-space email is
    /// `None` without a lookup.
    fn get_user_by_email(&self, email: &str) -> Result<Option<User>>;

    /// The user whose email and password match, or `None`.
    ///
    /// Unknown emails and wrong passwords both give `None` and take about the same time (an
    /// argon2 verification against a dummy hash), so the call does not reveal which emails
    /// exist. A password over [`MAX_PASSWORD_LEN`](crate::limits::MAX_PASSWORD_LEN) bytes is
    /// [`Error::InvalidInput`](crate::Error::InvalidInput), without hashing.
    fn get_user_by_credentials(&self, credentials: &Credentials) -> Result<Option<User>>;

    /// Replaces the stored name, email, image, email-verified time and extra fields of an
    /// existing user (`created_at` and the security stamp are kept, unless the email changes,
    /// which replaces the stamp; `updated_at` is set to now) and returns the stored user. A
    /// missing user is [`Error::UserNotFound`](crate::Error::UserNotFound); an email taken by
    /// another user is [`Error::EmailTaken`](crate::Error::EmailTaken).
    fn update_user(&self, user: &User) -> Result<User>;

    /// Changes only the fields the patch names (Auth.js's `updateUser`); otherwise as
    /// [`update_user`](Self::update_user).
    fn patch_user(&self, id: &UserId, patch: &UserPatch) -> Result<User>;

    /// Deletes the user and, in the same transaction, their accounts, sessions, password and
    /// authenticators. Deleting a missing user is not an error.
    fn delete_user(&self, id: &UserId) -> Result<()>;

    /// Sets (or replaces) a user's password, stored as an argon2id hash, replaces the user's
    /// security stamp and, unless the store is configured otherwise
    /// (`Builder::password_change_ends_sessions(false)`), deletes every session of the user. The password must be 1 to
    /// [`MAX_PASSWORD_LEN`](crate::limits::MAX_PASSWORD_LEN) bytes; the user must exist.
    fn set_password(&self, user_id: &UserId, password: &str) -> Result<()>;
}

/// Provider accounts linked to users.
pub trait AccountStore {
    /// Links an account to an existing user.
    ///
    /// If the same provider account is already linked to this user its tokens and fields are
    /// refreshed (a token given as `None` keeps the stored one); linked to another user it is
    /// [`Error::AccountLinkedToAnotherUser`](crate::Error::AccountLinkedToAnotherUser). A
    /// missing user is [`Error::UserNotFound`](crate::Error::UserNotFound). Storing a token
    /// without an encryption key is [`Error::EncryptionKeyRequired`](crate::Error::EncryptionKeyRequired).
    fn link_account(&self, user_id: &UserId, account: &NewAccount) -> Result<Account>;

    /// Removes the account if it belongs to `user_id`; otherwise does nothing (v3's
    /// `unlinkAccount`, with the ownership check). Not an error when missing.
    fn unlink_account(
        &self,
        user_id: &UserId,
        provider_id: &str,
        provider_account_id: &str,
    ) -> Result<()>;

    /// Removes the account `(provider_id, provider_account_id)` whoever owns it (Auth.js's
    /// `unlinkAccount`) and returns what was removed, or `None`.
    fn unlink_account_by_provider(
        &self,
        provider_id: &str,
        provider_account_id: &str,
    ) -> Result<Option<Account>>;

    /// The account `(provider_id, provider_account_id)` with its secrets unsealed, or `None`.
    fn get_account(&self, provider_id: &str, provider_account_id: &str) -> Result<Option<Account>>;

    /// The user owning the account `(provider_id, provider_account_id)`, or `None` (v3's name).
    fn get_user_by_provider_account_id(
        &self,
        provider_id: &str,
        provider_account_id: &str,
    ) -> Result<Option<User>>;

    /// The user owning the account (Auth.js's `getUserByAccount`); the same as
    /// [`get_user_by_provider_account_id`](Self::get_user_by_provider_account_id).
    fn get_user_by_account(
        &self,
        provider_id: &str,
        provider_account_id: &str,
    ) -> Result<Option<User>> {
        self.get_user_by_provider_account_id(provider_id, provider_account_id)
    }

    /// The user's linked accounts, oldest first, with their secrets unsealed.
    fn list_accounts(&self, user_id: &UserId) -> Result<Vec<Account>>;
}

/// Database sessions.
pub trait SessionStore {
    /// Creates a session for an existing user with a fresh random token, expiring after the
    /// session max age. Only the SHA-256 of the token is stored.
    fn create_session(&self, user_id: &UserId) -> Result<Session>;

    /// Creates a session with a token and expiry the caller chose (Auth.js's `createSession`).
    /// A token already in use is [`Error::SessionTokenTaken`](crate::Error::SessionTokenTaken);
    /// an unknown user [`Error::UserNotFound`](crate::Error::UserNotFound).
    fn create_session_with(&self, session: &NewSession) -> Result<Session>;

    /// The session for this token, or `None`: unknown tokens (any string) and expired sessions
    /// (which are deleted by this call) give `None`.
    fn get_session(&self, session_token: &str) -> Result<Option<Session>>;

    /// The session and its user (Auth.js's `getSessionAndUser`), or `None` like
    /// [`get_session`](Self::get_session).
    fn get_session_and_user(&self, session_token: &str) -> Result<Option<(Session, User)>>;

    /// Extends a session when it is due, working from the *stored* session found by
    /// `session.session_token` (v3's `updateSession`).
    ///
    /// With `due = expires − max_age + update_age`: if now is after `due`, the expiry moves to
    /// now + max age and the session is returned; otherwise, with `force`, it is written
    /// unchanged (only `updated_at` moves) and returned; otherwise `None` and nothing is
    /// written. A missing or expired session gives `None` and is never revived.
    fn update_session(&self, session: &Session, force: bool) -> Result<Option<Session>>;

    /// Writes exactly this expiry (Auth.js's `updateSession`, which decides it itself). A
    /// missing or expired session gives `None`, nothing is written, and it is never revived.
    fn set_session_expiry(
        &self,
        session_token: &str,
        expires: DateTime<Utc>,
    ) -> Result<Option<Session>>;

    /// Deletes the session with this token. Not an error when missing.
    fn delete_session(&self, session_token: &str) -> Result<()>;

    /// Deletes the session with this token and returns it (live or expired), or `None`
    /// (Auth.js's `deleteSession`).
    fn delete_session_returning(&self, session_token: &str) -> Result<Option<Session>>;

    /// The user's live sessions (expired ones are left out), oldest first, without tokens.
    fn list_sessions(&self, user_id: &UserId) -> Result<Vec<SessionInfo>>;

    /// Deletes every session of the user ("sign out everywhere") and replaces the user's
    /// security stamp. Returns how many sessions were removed.
    fn delete_sessions(&self, user_id: &UserId) -> Result<u64>;

    /// Deletes one of the user's sessions by id; returns whether it existed. A session of
    /// another user is left alone.
    fn delete_session_by_id(&self, user_id: &UserId, session_id: &SessionId) -> Result<bool>;
}

/// Email sign-in links: NextAuth v3's verification requests and Auth.js's verification tokens,
/// in one table (a link made through either is found through the other when the hashes agree).
pub trait VerificationStore {
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
    /// or `None`. An expired request is deleted and gives `None`. Does not consume it.
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

    /// Single-use v3 sign-in: finds the request matching identifier and hash, checks its expiry
    /// and deletes it, in one transaction. Of two concurrent calls for one link only one gets
    /// `Some`. A matching request is deleted whether or not it had expired.
    fn use_verification_request(
        &self,
        identifier: &str,
        token: &str,
        secret: &str,
    ) -> Result<Option<VerificationRequest>>;

    /// Stores an already hashed token (Auth.js's `createVerificationToken`). A live token with
    /// the same hash is [`Error::VerificationTokenTaken`](crate::Error::VerificationTokenTaken);
    /// an expired one is replaced.
    fn create_verification_token(&self, token: &VerificationToken) -> Result<VerificationToken>;

    /// Single use (Auth.js's `useVerificationToken`): the token matching both identifier and
    /// hash is deleted and returned; an expired one is deleted and gives `None`.
    fn use_verification_token(
        &self,
        identifier: &str,
        token_hash: &str,
    ) -> Result<Option<VerificationToken>>;
}

/// WebAuthn authenticators (passkeys).
pub trait AuthenticatorStore {
    /// Registers an authenticator for an existing user. A credential id already registered is
    /// [`Error::AuthenticatorTaken`](crate::Error::AuthenticatorTaken); an unknown user
    /// [`Error::UserNotFound`](crate::Error::UserNotFound).
    fn create_authenticator(&self, authenticator: &NewAuthenticator) -> Result<Authenticator>;

    /// The authenticator with this credential id, or `None`.
    fn get_authenticator(&self, credential_id: &str) -> Result<Option<Authenticator>>;

    /// The user's authenticators, oldest first (`[]` for an unknown user).
    fn list_authenticators(&self, user_id: &UserId) -> Result<Vec<Authenticator>>;

    /// Stores the signature counter of a successful assertion. An unknown credential is
    /// [`Error::AuthenticatorNotFound`](crate::Error::AuthenticatorNotFound). A counter that
    /// does not increase while either value is non-zero is
    /// [`Error::CounterNotIncreased`](crate::Error::CounterNotIncreased) — WebAuthn's signal
    /// of a cloned authenticator — and nothing is written.
    fn update_authenticator_counter(
        &self,
        credential_id: &str,
        counter: u64,
    ) -> Result<Authenticator>;
}

/// Every adapter operation: NextAuth v3's sixteen, Auth.js's additions, and authdb's own.
/// Implemented for every type that implements the five stores.
pub trait Adapter:
    UserStore + AccountStore + SessionStore + VerificationStore + AuthenticatorStore
{
}

impl<T> Adapter for T where
    T: UserStore + AccountStore + SessionStore + VerificationStore + AuthenticatorStore
{
}

/// A store that runs several operations as one transaction.
pub trait Transactional {
    /// The transaction handed to [`write`](Self::write)'s closure.
    type Tx<'a>: Adapter
    where
        Self: 'a;

    /// Runs `f` in one transaction and commits if it returns `Ok`; on `Err` nothing `f` did is
    /// kept. Inside `f`, use the transaction for every operation.
    fn write<T>(&self, f: impl FnOnce(&mut Self::Tx<'_>) -> Result<T>) -> Result<T>;
}

/// Housekeeping every backend offers.
pub trait Maintenance {
    /// The store's current time (its clock), truncated to what it stores (microseconds).
    fn now(&self) -> DateTime<Utc>;

    /// Deletes expired sessions and verification requests, in batches.
    fn purge_expired(&self) -> Result<PurgeStats>;

    /// Checks that every index agrees with every table and reports every disagreement.
    fn check_integrity(&self) -> Result<IntegrityReport>;
}
