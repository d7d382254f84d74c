//! # authdb-postgres
//!
//! authdb's operation set — the NextAuth v3 and Auth.js adapter operations as the trait family
//! [`UserStore`], [`AccountStore`], [`SessionStore`], [`VerificationStore`] and
//! [`AuthenticatorStore`], plus [`Transactional`] and [`Maintenance`] — on PostgreSQL, with the
//! behaviour of authdb's redb file (both pass `authdb::conformance`).
//!
//! ```no_run
//! use authdb::prelude::*;
//! use authdb::{EncryptionKey, NewUser};
//! use authdb_postgres::PgAuthDb;
//!
//! let db = PgAuthDb::builder()
//!     .url("postgres://app@127.0.0.1/app")
//!     .encryption_key(EncryptionKey::from_bytes([7; 32]))
//!     .connect()?; // creates or migrates the schema `authdb`
//! let user = db.create_user(&NewUser {
//!     email: Some("Ada@Example.com".into()),
//!     ..NewUser::default()
//! })?;
//! let session = db.create_session(&user.id)?;
//! // The cookie carries `session.session_token`; the table holds only its SHA-256.
//! assert_eq!(db.get_session(&session.session_token)?.unwrap().user_id, user.id);
//! // Several operations as one SQL transaction:
//! db.write(|tx| {
//!     tx.delete_sessions(&user.id)?;
//!     tx.set_password(&user.id, "correct horse battery staple")
//! })?;
//! # Ok::<(), authdb::Error>(())
//! ```
//!
//! ## Guarantees
//! - The same rules as the redb store, computed by the same code: validation, hashing,
//!   sealing and the session-update and counter decisions come from `authdb::backend`, so a
//!   value written here is what the redb store would write (session token hashes, verification
//!   hashes, sealed OAuth tokens that open with the same key).
//! - Every write is one SQL transaction: it happens completely or not at all. A connection
//!   lost mid-operation is [`Error::Backend`](authdb::Error::Backend) (with a [`PgError`]) and
//!   the server rolls the transaction back; only a loss *during* `COMMIT` leaves the outcome
//!   unknown ([`PgError::commit_outcome_unknown`]), and even then the operation is atomic.
//! - Races have one winner: uniqueness is enforced by constraints (`users_email_unique` on
//!   the normalized email, `accounts_provider_unique`, the primary keys of sessions,
//!   verification tokens and authenticators) and decided with `INSERT … ON CONFLICT` or row
//!   locks; single-use sign-in links are consumed with `DELETE … RETURNING`.
//! - Time comes from the configured [`Clock`](authdb::Clock), never from the server.
//! - Secrets are never stored in plain form: session tokens as SHA-256, passwords as argon2id,
//!   OAuth tokens, ID tokens and provider-specific account fields sealed.
//!
//! ## Schema
//! Tables `users`, `accounts`, `sessions`, `verification_tokens`, `credentials` and
//! `authenticators` live in one schema (default `authdb`), created at the first connect and
//! migrated in place by later versions; `schema_version` records each applied migration
//! ([`SCHEMA_VERSION`] is this build's). Migrations run in one transaction under an advisory
//! lock, so processes connecting at the same moment do not race. A schema of a newer version
//! is refused with [`Error::UnsupportedSchemaVersion`](authdb::Error::UnsupportedSchemaVersion).
//! Times are bigint microseconds since the Unix epoch (UTC).
//!
//! ## Differences from the redb store
//! - A U+0000 (NUL) character in a stored free-text field (a user's name or image, an
//!   account's provider id, provider account id, token type, scope or session state, a
//!   WebAuthn field) is [`Error::InvalidValue`](authdb::Error::InvalidValue): PostgreSQL's
//!   `text` cannot hold it. Lookups with such a string find nothing, as on redb.
//! - An authenticator counter above 2^63 − 1 is stored as its bits and reads negative in SQL
//!   (authdb reads it back exactly).
//! - Reads are single statements on a pooled connection rather than snapshot transactions;
//!   the reads that return two records (`get_session_and_user`, `get_user_by_account`) are one
//!   statement each, so they are consistent.
//!
//! ## Integrity
//! [`check_integrity`](authdb::Maintenance::check_integrity) reads every table in one
//! `REPEATABLE READ` snapshot. What redb's check verifies by hand is structural here:
//! - index ↔ table agreement: PostgreSQL maintains its indexes itself (physical index damage
//!   is the job of `amcheck`'s `bt_index_check`, not of this check);
//! - uniqueness (normalized email, provider account, token hashes, credential ids): unique
//!   constraints;
//! - no orphans (accounts, sessions, passwords, authenticators of a missing user): foreign keys
//!   with `ON DELETE CASCADE`;
//! - well-formed values: column types and `CHECK` constraints (32-byte token hashes, 16-byte
//!   security stamps, `extra` a JSON object, a known provider type, an argon2id PHC prefix).
//!
//! What it still checks, and reports as [`IntegrityProblem`](authdb::IntegrityProblem)s:
//! - the applied migrations are exactly 1 ..= [`SCHEMA_VERSION`];
//! - every constraint and index above still exists (one dropped by hand removes a guarantee);
//! - `users.email_key` equals `authdb::normalize_email(email)` and
//!   `verification_tokens.identifier_key` equals the identifier's normalized form (the keys
//!   are computed by the client, so a row written by hand could disagree);
//! - a user's `extra` parses as a JSON object for authdb;
//! - every stored time lies in the range authdb can represent.
//!
//! Sealed account fields are not opened (that needs the key; the redb check does not open them
//! either). The report counts every row of each table, expired sessions and links included.

#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

mod config;
mod db;
mod error;
mod maintenance;
mod ops;
mod pool;
mod schema;
mod store;
mod transfer;
mod tx;

pub use config::PgBuilder;
pub use error::{BACKEND, PgError};
pub use maintenance::PURGE_BATCH;
pub use schema::SCHEMA_VERSION;
pub use store::PgAuthDb;
pub use transfer::{ImportOptions, ImportReport};
pub use tx::PgTx;

#[doc(no_inline)]
pub use authdb::{
    AccountStore, Adapter, AuthenticatorStore, Maintenance, SessionStore, Transactional, UserStore,
    VerificationStore,
};

/// The README's code samples, compiled as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
