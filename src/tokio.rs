//! [`AsyncAuthDb`]: every operation as an `async fn` for tokio apps (feature `tokio`).
//!
//! authdb's calls block: a durable commit waits for the disk, and a password check runs
//! argon2 for tens of milliseconds. On an executor thread that would stall every other task
//! scheduled there. `AsyncAuthDb` runs each call on tokio's blocking pool
//! ([`spawn_blocking`](::tokio::task::spawn_blocking)) and awaits it, so executor threads only
//! ever wait on a future. Group commit still works: concurrent calls from many tasks land on
//! many blocking threads and share transactions and fsyncs as they would from many threads.
//!
//! ```
//! use authdb::NewUser;
//! use authdb::tokio::AsyncAuthDb;
//!
//! # let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
//! # rt.block_on(async {
//! let db = AsyncAuthDb::new(authdb::AuthDb::builder().in_memory()?);
//! let user = db
//!     .create_user(&NewUser {
//!         email: Some("ada@example.com".into()),
//!         ..NewUser::default()
//!     })
//!     .await?;
//! let session = db.create_session(&user.id).await?;
//! // Several operations as one transaction, on the blocking pool too:
//! let uid = user.id;
//! let n = db
//!     .write(move |tx| {
//!         use authdb::prelude::*;
//!         tx.create_session(&uid)?;
//!         Ok(tx.list_sessions(&uid)?.len())
//!     })
//!     .await?;
//! assert_eq!(n, 2);
//! assert!(db.get_session(&session.session_token).await?.is_some());
//! # Ok::<(), authdb::Error>(())
//! # }).unwrap();
//! ```
//!
//! Each `async fn` clones its arguments (they must outlive the blocking call) and takes the
//! same arguments and returns the same result as the blocking operation it names. The
//! runtime must be a tokio runtime (current-thread or multi-thread); a panic inside an
//! operation resumes on the awaiting task.

use chrono::{DateTime, Utc};

use crate::contract::{
    AccountStore, AuthenticatorStore, SessionStore, UserStore, VerificationStore,
};
use crate::db::AuthDb;
use crate::email::EmailProvider;
use crate::error::{Error, Result};
use crate::group::WriteStats;
use crate::integrity::IntegrityReport;
use crate::model::web_session::{WebSession, WebSessionHandle, WebSessionId, WebSessionInfo};
use crate::model::{
    Account, Authenticator, Credentials, NewAccount, NewAuthenticator, NewSession, NewUser,
    PurgeStats, Session, SessionId, SessionInfo, User, UserId, UserPatch, VerificationRequest,
    VerificationToken,
};
use crate::txn::WriteTxn;

/// An [`AuthDb`] for async code: every operation is an `async fn` that runs the blocking call
/// on tokio's blocking pool. Cheap to clone (it is an `AuthDb`, an `Arc` inside); share one
/// per process.
#[derive(Clone, Debug)]
pub struct AsyncAuthDb {
    db: AuthDb,
}

impl From<AuthDb> for AsyncAuthDb {
    fn from(db: AuthDb) -> Self {
        Self { db }
    }
}

impl AsyncAuthDb {
    /// Wraps an opened database.
    #[must_use]
    pub fn new(db: AuthDb) -> Self {
        Self { db }
    }

    /// The blocking handle (for code already on a blocking thread, or for what has no async
    /// form here, such as [`AuthDb::begin_write`]).
    #[must_use]
    pub fn inner(&self) -> &AuthDb {
        &self.db
    }

    /// The blocking handle, unwrapped (for [`AuthDb::compact`], which needs the only one).
    #[must_use]
    pub fn into_inner(self) -> AuthDb {
        self.db
    }

    /// Runs `f` with the blocking handle on tokio's blocking pool and returns its result: the
    /// building block of every method here, and the way to run anything else (a read and a
    /// decision together, say) off the executor.
    pub async fn run<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce(&AuthDb) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let db = self.db.clone();
        match ::tokio::task::spawn_blocking(move || f(&db)).await {
            Ok(r) => r,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Err(Error::Storage(Box::new(redb::Error::Io(
                std::io::Error::other("the blocking task was cancelled (runtime shutting down)"),
            )))),
        }
    }

    /// Runs `f` in one write transaction on the blocking pool and commits if it returns `Ok`
    /// ([`AuthDb::write`]); on `Err` nothing `f` did is kept. Use `tx` for every operation
    /// inside; the closure owns what it uses (`move`).
    pub async fn write<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce(&mut WriteTxn<'_>) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        self.run(move |db| db.write(f)).await
    }

    /// [`Maintenance::purge_expired`](crate::Maintenance::purge_expired) on the blocking
    /// pool: deletes expired sessions and verification requests, in batches.
    pub async fn purge_expired(&self) -> Result<PurgeStats> {
        self.run(AuthDb::purge_expired).await
    }

    /// [`Maintenance::check_integrity`](crate::Maintenance::check_integrity) on the blocking
    /// pool: walks every table and index.
    pub async fn check_integrity(&self) -> Result<IntegrityReport> {
        self.run(AuthDb::check_integrity).await
    }

    /// The store's current time ([`AuthDb::now`]); does not block.
    #[must_use]
    pub fn now(&self) -> DateTime<Utc> {
        self.db.now()
    }

    /// Group-commit counters ([`AuthDb::write_stats`]); does not block.
    #[must_use]
    pub fn write_stats(&self) -> WriteStats {
        self.db.write_stats()
    }
}

/// Generates one `async fn` per operation: it turns each argument into an owned value
/// (`&T` by `ToOwned`, anything else by move), runs the operation on the blocking pool with
/// references to them, and documents which blocking operation it runs.
macro_rules! async_ops {
    ($( $owner:ident :: $name:ident ( $($args:tt)* ) -> $ret:ty; )*) => {
        impl AsyncAuthDb {
            $( async_ops!(@fn $owner $name [$($args)*] [] [] [] $ret); )*
        }
    };
    // A borrowed argument: owned copy moved into the blocking call, borrowed again there.
    (@fn $owner:ident $name:ident [$a:ident : & $t:ty $(, $($rest:tt)*)?]
        [$($params:tt)*] [$($owned:tt)*] [$($call:tt)*] $ret:ty) => {
        async_ops!(@fn $owner $name [$($($rest)*)?]
            [$($params)* $a: &$t,] [$($owned)* let $a = ToOwned::to_owned($a);]
            [$($call)* &$a,] $ret);
    };
    // A `Copy` argument, moved as it is.
    (@fn $owner:ident $name:ident [$a:ident : $t:ty $(, $($rest:tt)*)?]
        [$($params:tt)*] [$($owned:tt)*] [$($call:tt)*] $ret:ty) => {
        async_ops!(@fn $owner $name [$($($rest)*)?]
            [$($params)* $a: $t,] [$($owned)*] [$($call)* $a,] $ret);
    };
    (@fn $owner:ident $name:ident [] [$($params:tt)*] [$($owned:tt)*] [$($call:tt)*] $ret:ty) => {
        #[doc = concat!(
            "[`", stringify!($owner), "::", stringify!($name), "`](crate::",
            stringify!($owner), "::", stringify!($name), "), run on the blocking pool."
        )]
        pub async fn $name(&self, $($params)*) -> Result<$ret> {
            $($owned)*
            self.run(move |db| $owner::$name(db, $($call)*)).await
        }
    };
}

async_ops! {
    UserStore::create_user(profile: &NewUser) -> User;
    UserStore::get_user(id: &UserId) -> Option<User>;
    UserStore::get_user_by_email(email: &str) -> Option<User>;
    UserStore::get_user_by_credentials(credentials: &Credentials) -> Option<User>;
    UserStore::update_user(user: &User) -> User;
    UserStore::patch_user(id: &UserId, patch: &UserPatch) -> User;
    UserStore::delete_user(id: &UserId) -> ();
    UserStore::set_password(user_id: &UserId, password: &str) -> ();

    AccountStore::link_account(user_id: &UserId, account: &NewAccount) -> Account;
    AccountStore::unlink_account(user_id: &UserId, provider_id: &str, provider_account_id: &str)
        -> ();
    AccountStore::unlink_account_by_provider(provider_id: &str, provider_account_id: &str)
        -> Option<Account>;
    AccountStore::get_account(provider_id: &str, provider_account_id: &str) -> Option<Account>;
    AccountStore::get_user_by_provider_account_id(provider_id: &str, provider_account_id: &str)
        -> Option<User>;
    AccountStore::get_user_by_account(provider_id: &str, provider_account_id: &str)
        -> Option<User>;
    AccountStore::list_accounts(user_id: &UserId) -> Vec<Account>;

    SessionStore::create_session(user_id: &UserId) -> Session;
    SessionStore::create_session_with(session: &NewSession) -> Session;
    SessionStore::get_session(session_token: &str) -> Option<Session>;
    SessionStore::get_session_and_user(session_token: &str) -> Option<(Session, User)>;
    SessionStore::update_session(session: &Session, force: bool) -> Option<Session>;
    SessionStore::set_session_expiry(session_token: &str, expires: DateTime<Utc>)
        -> Option<Session>;
    SessionStore::delete_session(session_token: &str) -> ();
    SessionStore::delete_session_returning(session_token: &str) -> Option<Session>;
    SessionStore::list_sessions(user_id: &UserId) -> Vec<SessionInfo>;
    SessionStore::delete_sessions(user_id: &UserId) -> u64;
    SessionStore::delete_session_by_id(user_id: &UserId, session_id: &SessionId) -> bool;

    VerificationStore::create_verification_request(
        identifier: &str, url: &str, token: &str, secret: &str, provider: &EmailProvider
    ) -> VerificationRequest;
    VerificationStore::get_verification_request(
        identifier: &str, token: &str, secret: &str, provider: &EmailProvider
    ) -> Option<VerificationRequest>;
    VerificationStore::delete_verification_request(
        identifier: &str, token: &str, secret: &str, provider: &EmailProvider
    ) -> ();
    VerificationStore::use_verification_request(identifier: &str, token: &str, secret: &str)
        -> Option<VerificationRequest>;
    VerificationStore::create_verification_token(token: &VerificationToken) -> VerificationToken;
    VerificationStore::use_verification_token(identifier: &str, token_hash: &str)
        -> Option<VerificationToken>;

    AuthenticatorStore::create_authenticator(authenticator: &NewAuthenticator) -> Authenticator;
    AuthenticatorStore::get_authenticator(credential_id: &str) -> Option<Authenticator>;
    AuthenticatorStore::list_authenticators(user_id: &UserId) -> Vec<Authenticator>;
    AuthenticatorStore::update_authenticator_counter(credential_id: &str, counter: u64)
        -> Authenticator;

    AuthDb::web_session_create(session: &WebSession) -> bool;
    AuthDb::web_session_save(session: &WebSession) -> ();
    AuthDb::web_session_load(id: &WebSessionId) -> Option<WebSession>;
    AuthDb::web_session_delete(id: &WebSessionId) -> bool;
    AuthDb::web_session_delete_expired(batch: usize) -> u64;
    AuthDb::web_session_list_for_user(user_id: &UserId) -> Vec<WebSessionInfo>;
    AuthDb::web_session_delete_for_user(user_id: &UserId) -> u64;
    AuthDb::web_session_delete_by_handle(user_id: &UserId, handle: &WebSessionHandle) -> bool;
}
