//! # authdb
//!
//! An embedded, synchronous, single-file store for web-app authentication data — users, linked
//! OAuth accounts, sessions, email sign-in links, passwords and passkeys — implementing the
//! NextAuth.js (v3) and Auth.js (next-auth v4, @auth/core v5) adapter operations
//! transactionally on [redb](https://docs.rs/redb).
//!
//! The operations are a family of traits ([`UserStore`], [`AccountStore`], [`SessionStore`],
//! [`VerificationStore`], [`AuthenticatorStore`], together [`Adapter`]) implemented by
//! [`AuthDb`] and by [`WriteTxn`]; `use authdb::prelude::*;` brings them into scope.
//!
//! ```
//! use authdb::prelude::*;
//! use authdb::{AuthDb, NewUser};
//!
//! let db = AuthDb::builder().in_memory()?; // or AuthDb::open("auth.redb")?
//! let user = db.create_user(&NewUser {
//!     email: Some("Ada@Example.com".into()),
//!     ..NewUser::default()
//! })?;
//! let session = db.create_session(&user.id)?;
//! // The cookie carries `session.session_token`; the file holds only its SHA-256.
//! let found = db.get_session(&session.session_token)?.expect("live session");
//! assert_eq!(found.user_id, user.id);
//! assert_eq!(db.get_user_by_email("ada@example.com ")?.unwrap().id, user.id);
//! # Ok::<(), authdb::Error>(())
//! ```
//!
//! ## What it is not
//! - Not an OAuth client or an HTTP/cookie layer: the web framework and your OAuth library do
//!   that and call authdb to store the results.
//! - Not multi-node: one process opens the file at a time (a second open is
//!   [`Error::AlreadyOpen`]). Share the [`AuthDb`] handle (it is `Clone`) inside the process.
//! - Not async: calls block; run them on a blocking thread pool from async code (feature
//!   `tokio`: `authdb::tokio::AsyncAuthDb` does that for every operation).
//!
//! ## Guarantees
//! - Every operation is one redb write transaction that updates a record and all of its index
//!   entries together, or changes nothing. [`AuthDb::write`] runs several operations as one.
//! - Session tokens are stored only as SHA-256 hashes; passwords as argon2id hashes;
//!   verification tokens as NextAuth's `sha256(token + secret)`; OAuth tokens, ID tokens and
//!   provider-specific account fields sealed with XChaCha20-Poly1305.
//! - Secrets never appear in `Debug` output, error messages or `Serialize` output: every
//!   field `Debug` redacts is also skipped by serde (it deserializes as empty). Hand secrets
//!   over field by field.
//! - [`AuthDb::check_integrity`] verifies that every index agrees with every table.

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

mod autocommit;
pub mod backend;
mod backup;
mod builder;
mod clock;
mod codec;
mod config;
#[cfg(feature = "conformance")]
pub mod conformance;
mod contract;
mod crypto;
mod db;
mod email;
mod error;
pub mod export;
mod file;
mod group;
mod handle;
mod integrity;
pub mod limits;
mod migrate;
mod model;
mod password;
mod purge;
mod rekey;
mod salvage;
mod schema;
mod snapshot;
mod source;
mod stats;
mod tables;
mod token;
#[cfg(feature = "tokio")]
pub mod tokio;
mod txn;
pub mod web_sessions;

pub use backup::BackupStats;
pub use builder::Builder;
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::Durability;
pub use contract::{
    AccountStore, Adapter, AuthenticatorStore, Maintenance, SessionStore, Transactional, UserStore,
    VerificationStore,
};
pub use crypto::EncryptionKey;
pub use db::AuthDb;
pub use email::{EmailProvider, SendError, VerificationMail, normalize_email};
pub use error::{Error, InputProblem, Result};
pub use export::{ExportCounts, ImportError, import_into_new_file};
pub use group::WriteStats;
pub use handle::ShareMode;
pub use integrity::{IntegrityProblem, IntegrityReport};
pub use model::{
    Account, AccountId, Authenticator, Credentials, Extra, NewAccount, NewAuthenticator,
    NewSession, NewUser, PROVIDER_TYPES, ParseIdError, PurgeStats, Session, SessionId, SessionInfo,
    User, UserId, UserPatch, VerificationRequest, VerificationRequestId, VerificationToken,
};
pub use password::PasswordParams;
pub use purge::{PURGE_BATCH, PurgeTask, PurgeTaskStats};
pub use rekey::{REKEY_BATCH, RekeyStats, rekey, rekey_with_progress};
pub use salvage::{
    SalvageOptions, SalvageProgress, SalvageReport, TableSalvage, salvage, salvage_with,
    salvage_with_progress,
};
pub use schema::SCHEMA_VERSION;
pub use stats::{Stats, StorageStats};
pub use token::hash_verification_token;
pub use txn::WriteTxn;
pub use web_sessions::{WebSession, WebSessionHandle, WebSessionId, WebSessionInfo};

/// Every trait of the operation set, for `use authdb::prelude::*;`.
pub mod prelude {
    pub use crate::contract::{
        AccountStore, Adapter, AuthenticatorStore, Maintenance, SessionStore, Transactional,
        UserStore, VerificationStore,
    };
}

/// The README's code samples, compiled and run as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// Entry points for the fuzz targets in `fuzz/`. Not part of the stable API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    use crate::codec::{
        AccountRecord, AuthenticatorRecord, CHECKSUM_LEN, CredentialRecord, SessionRecord,
        UserRecord, VerificationRecord, WebSessionRecord, checksum_of, decode,
    };
    use crate::tables;

    /// Decodes `bytes` as a stored value of the record type of table number `table % 7`
    /// (users, accounts, sessions, verification requests, credentials, authenticators, web
    /// sessions) and turns it into its model, as a read would; never panics.
    ///
    /// Every stored value ends with a checksum over its key and bytes, which arbitrary input
    /// almost never matches. So `bytes` is decoded twice: once as given (reaching the checksum
    /// check), then with its last four bytes replaced by the right checksum, so the decoders
    /// behind the check see every input. The second result is returned.
    pub fn decode_record(table: u8, bytes: &[u8]) -> crate::Result<()> {
        let _ = decode_as(table, bytes);
        let Some((body, _)) = bytes.split_last_chunk::<CHECKSUM_LEN>() else {
            return decode_as(table, bytes);
        };
        let mut sealed = body.to_vec();
        sealed.extend_from_slice(&checksum_of(key_of(table), body));
        decode_as(table, &sealed)
    }

    /// The token or id hash the values are stored under here.
    const HASH: [u8; 32] = [0; 32];

    /// The key the values of `table` are checked against here.
    fn key_of(table: u8) -> &'static [u8] {
        match table % 7 {
            // Users, accounts and passwords are keyed by a 16-byte id, authenticators by a
            // credential id ("id"), the others by a 32-byte hash.
            0 | 1 | 4 => &HASH[..16],
            5 => b"id",
            _ => &HASH,
        }
    }

    fn decode_as(table: u8, bytes: &[u8]) -> crate::Result<()> {
        let enc = crate::EncryptionKey::from_bytes([7; 32]);
        let key = key_of(table);
        match table % 7 {
            0 => tables::users::to_model(&decode::<UserRecord>(key, bytes)?).map(drop),
            1 => tables::accounts::to_model(&decode::<AccountRecord>(key, bytes)?, Some(&enc))
                .map(drop),
            2 => tables::sessions::to_info(&SessionRecord::decode(&HASH, bytes)?).map(drop),
            3 => tables::verification::to_model(&decode::<VerificationRecord>(key, bytes)?, &HASH)
                .map(drop),
            4 => decode::<CredentialRecord>(key, bytes).map(drop),
            5 => {
                tables::authenticators::to_model("id", &decode::<AuthenticatorRecord>(key, bytes)?)
                    .map(drop)
            }
            _ => tables::web_sessions::to_info(&decode::<WebSessionRecord>(key, bytes)?, &HASH)
                .map(drop),
        }
    }
}
