//! # authdb-axum-login
//!
//! An [axum-login](https://docs.rs/axum-login) backend on an [authdb](https://docs.rs/authdb)
//! file: password and OAuth sign-in, sign-up, "sign out everywhere" and permissions, with
//! every session tied to the user's security stamp.
//!
//! - [`Backend`] implements `AuthnBackend` with [`Credentials`]: a password (checked against
//!   the argon2id hash on tokio's blocking pool, in the same time for unknown emails) or a
//!   finished OAuth authorization ([`OAuthCredentials`]), whose account linking is decided
//!   and written in one transaction by [`oauth_sign_in`] under NextAuth's
//!   `OAuthAccountNotLinked` rules ([`Error::OAuthAccountNotLinked`]).
//! - [`User`] implements `AuthUser`; its `session_auth_hash` is derived from authdb's
//!   security stamp, so a password change ([`Backend::change_password`]), "sign out
//!   everywhere" ([`Backend::sign_out_everywhere`]) or a new email address ends every other
//!   session at its next request.
//! - `AuthzBackend`: permissions are the strings in the user's extra field
//!   [`PERMISSIONS_FIELD`].
//!
//! Sessions: with [authdb-tower-sessions](https://docs.rs/authdb-tower-sessions) the
//! tower-sessions records live in the same file, indexed by user, and "sign out everywhere"
//! deletes them at once.
//!
//! ```
//! use authdb::{AuthDb, NewUser};
//! use authdb_axum_login::{Backend, Credentials};
//! use axum_login::AuthnBackend;
//!
//! # let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
//! # rt.block_on(async {
//! let backend = Backend::new(AuthDb::builder().in_memory()?);
//! let ada = NewUser {
//!     email: Some("ada@example.com".into()),
//!     ..NewUser::default()
//! };
//! let user = backend.sign_up(ada, "correct horse".into()).await?;
//!
//! let creds = Credentials::password("ada@example.com", "correct horse");
//! let signed_in = backend.authenticate(creds).await?.expect("right password");
//! assert_eq!(signed_in.id(), user.id());
//! let wrong = Credentials::password("ada@example.com", "wrong horse");
//! assert!(backend.authenticate(wrong).await?.is_none());
//! # Ok::<(), authdb_axum_login::Error>(())
//! # }).unwrap();
//! ```
//!
//! In an axum app (the whole of it: `examples/axum_login`):
//!
//! ```no_run
//! use authdb::AuthDb;
//! use authdb_axum_login::Backend;
//! use authdb_tower_sessions::AuthDbSessionStore;
//! use axum::Router;
//! use axum::routing::get;
//! use axum_login::tower_sessions::SessionManagerLayer;
//! use axum_login::{AuthManagerLayerBuilder, login_required};
//!
//! let db = AuthDb::open("auth.redb")?;
//! let sessions = SessionManagerLayer::new(AuthDbSessionStore::new(db.clone()));
//! let auth = AuthManagerLayerBuilder::new(Backend::new(db), sessions).build();
//! let app: Router = Router::new()
//!     .route("/private", get(|| async { "signed in" }))
//!     .route_layer(login_required!(Backend, login_url = "/login"))
//!     .layer(auth);
//! # Ok::<(), authdb::Error>(())
//! ```
//!
//! Versions: axum-login 0.18 (on tower-sessions 0.14 and axum 0.8).

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod backend;
mod credentials;
mod error;
mod oauth;
mod permissions;
mod user;

pub use backend::Backend;
pub use credentials::{Credentials, OAuthCredentials, OAuthProfile};
pub use error::Error;
pub use oauth::{OAuthOutcome, oauth_sign_in};
pub use permissions::{PERMISSIONS_FIELD, permissions_of};
pub use user::User;

/// The axum-login auth session of an app using this backend.
pub type AuthSession = axum_login::AuthSession<Backend>;
