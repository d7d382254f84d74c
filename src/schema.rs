//! Table and index definitions, key layouts and the schema version.
//!
//! Schema version 2:
//!
//! | table | key | value |
//! |---|---|---|
//! | `meta` | `&str` | `u64` (`schema_version`) |
//! | `users` | user id (16 bytes) | user record |
//! | `idx:users_by_email` | normalized email | user id |
//! | `accounts` | account id | account record (secrets sealed) |
//! | `idx:accounts_by_provider` | (provider id, provider account id) | account id |
//! | `idx:accounts_by_user` (multimap) | user id | account id |
//! | `sessions:v2` | `r` + token hash | session record (fixed width) |
//! |  | `u` + user id + token hash | empty (by-user index) |
//! |  | `x` + expiry (sortable) + token hash | empty (expiry index, a lower bound) |
//! | `verification_requests` | SHA-256 of `token + secret` | request record |
//! | `idx:verification_by_expiry` | (expires µs, token hash) | `()` |
//! | `idx:verification_by_identifier` (multimap) | identifier hash | token hash |
//! | `verification_attempts` | identifier hash | (failed attempts, window start µs) |
//! | `credentials` | user id | credential record (argon2id PHC string) |
//! | `authenticators` | credential id | authenticator record |
//! | `idx:authenticators_by_user` (multimap) | user id | credential id |
//! | `web_sessions` | `r` + SHA-256 of the 16-byte id | tower-sessions record (data opaque) |
//! |  | `u` + user id + id hash | empty (by-user index, for records naming a user) |
//! |  | `x` + expiry (sortable) + id hash | empty (expiry index, exact) |
//!
//! An identifier hash is [`verification_identifier_key`](crate::backend::verification_identifier_key):
//! a SHA-256 of the normalized identifier, so neither table holds an address in plain form.
//! The attempts table is written only by stores opened with
//! [`allow_short_verification_tokens`](crate::Builder::allow_short_verification_tokens).
//!
//! Version 1 (see `migrate.rs`) had three session tables (`sessions`,
//! `idx:sessions_by_user`, `idx:sessions_by_expiry`), no authenticators, and older user and
//! account records.

use redb::{MultimapTableDefinition, TableDefinition};

use crate::error::Result;

/// The schema version this build writes and understands. Files of version 1 are migrated on
/// open.
pub const SCHEMA_VERSION: u64 = 2;

pub(crate) const META_NAME: &str = "meta";
pub(crate) const USERS_NAME: &str = "users";
pub(crate) const USERS_BY_EMAIL_NAME: &str = "idx:users_by_email";
pub(crate) const ACCOUNTS_NAME: &str = "accounts";
pub(crate) const ACCOUNTS_BY_PROVIDER_NAME: &str = "idx:accounts_by_provider";
pub(crate) const ACCOUNTS_BY_USER_NAME: &str = "idx:accounts_by_user";
pub(crate) const SESSIONS_NAME: &str = "sessions:v2";
/// The by-user entries of the session table (named in integrity reports).
pub(crate) const SESSIONS_BY_USER_NAME: &str = "sessions:v2/by-user";
/// The expiry entries of the session table (named in integrity reports).
pub(crate) const SESSIONS_BY_EXPIRY_NAME: &str = "sessions:v2/by-expiry";
pub(crate) const VERIFICATION_NAME: &str = "verification_requests";
pub(crate) const VERIFICATION_BY_EXPIRY_NAME: &str = "idx:verification_by_expiry";
pub(crate) const VERIFICATION_BY_IDENTIFIER_NAME: &str = "idx:verification_by_identifier";
pub(crate) const VERIFICATION_ATTEMPTS_NAME: &str = "verification_attempts";
pub(crate) const CREDENTIALS_NAME: &str = "credentials";
pub(crate) const AUTHENTICATORS_NAME: &str = "authenticators";
pub(crate) const AUTHENTICATORS_BY_USER_NAME: &str = "idx:authenticators_by_user";
pub(crate) const WEB_SESSIONS_NAME: &str = "web_sessions";
/// The by-user entries of the web session table (named in integrity reports).
pub(crate) const WEB_SESSIONS_BY_USER_NAME: &str = "web_sessions/by-user";
/// The expiry entries of the web session table (named in integrity reports).
pub(crate) const WEB_SESSIONS_BY_EXPIRY_NAME: &str = "web_sessions/by-expiry";

pub(crate) const SCHEMA_VERSION_KEY: &str = "schema_version";

pub(crate) type IdKey = [u8; 16];
pub(crate) type HashKey = [u8; 32];
pub(crate) type ExpiryKey = (i64, HashKey);

pub(crate) const META: TableDefinition<&str, u64> = TableDefinition::new(META_NAME);
pub(crate) const USERS: TableDefinition<IdKey, &[u8]> = TableDefinition::new(USERS_NAME);
pub(crate) const USERS_BY_EMAIL: TableDefinition<&str, IdKey> =
    TableDefinition::new(USERS_BY_EMAIL_NAME);
pub(crate) const ACCOUNTS: TableDefinition<IdKey, &[u8]> = TableDefinition::new(ACCOUNTS_NAME);
pub(crate) const ACCOUNTS_BY_PROVIDER: TableDefinition<(&str, &str), IdKey> =
    TableDefinition::new(ACCOUNTS_BY_PROVIDER_NAME);
pub(crate) const ACCOUNTS_BY_USER: MultimapTableDefinition<IdKey, IdKey> =
    MultimapTableDefinition::new(ACCOUNTS_BY_USER_NAME);
pub(crate) const SESSIONS: TableDefinition<&[u8], &[u8]> = TableDefinition::new(SESSIONS_NAME);
pub(crate) const VERIFICATION: TableDefinition<HashKey, &[u8]> =
    TableDefinition::new(VERIFICATION_NAME);
pub(crate) const VERIFICATION_BY_EXPIRY: TableDefinition<ExpiryKey, ()> =
    TableDefinition::new(VERIFICATION_BY_EXPIRY_NAME);
pub(crate) const VERIFICATION_BY_IDENTIFIER: MultimapTableDefinition<HashKey, HashKey> =
    MultimapTableDefinition::new(VERIFICATION_BY_IDENTIFIER_NAME);
pub(crate) const VERIFICATION_ATTEMPTS: TableDefinition<HashKey, (u32, i64)> =
    TableDefinition::new(VERIFICATION_ATTEMPTS_NAME);
pub(crate) const CREDENTIALS: TableDefinition<IdKey, &[u8]> =
    TableDefinition::new(CREDENTIALS_NAME);
pub(crate) const AUTHENTICATORS: TableDefinition<&str, &[u8]> =
    TableDefinition::new(AUTHENTICATORS_NAME);
pub(crate) const AUTHENTICATORS_BY_USER: MultimapTableDefinition<IdKey, &str> =
    MultimapTableDefinition::new(AUTHENTICATORS_BY_USER_NAME);
pub(crate) const WEB_SESSIONS: TableDefinition<&[u8], &[u8]> =
    TableDefinition::new(WEB_SESSIONS_NAME);

/// The tables of schema version 1 that version 2 replaced (read only by the migration).
pub(crate) mod v1 {
    use redb::{MultimapTableDefinition, TableDefinition};

    use super::{ExpiryKey, HashKey, IdKey};

    pub(crate) const SESSIONS: TableDefinition<HashKey, &[u8]> = TableDefinition::new("sessions");
    pub(crate) const SESSIONS_BY_USER: MultimapTableDefinition<IdKey, HashKey> =
        MultimapTableDefinition::new("idx:sessions_by_user");
    pub(crate) const SESSIONS_BY_EXPIRY: TableDefinition<ExpiryKey, ()> =
        TableDefinition::new("idx:sessions_by_expiry");
}

/// Creates every table of this version (those missing) and records the schema version.
pub(crate) fn create_tables(wtx: &redb::WriteTransaction) -> Result<()> {
    wtx.open_table(META)?
        .insert(SCHEMA_VERSION_KEY, SCHEMA_VERSION)?;
    wtx.open_table(USERS)?;
    wtx.open_table(USERS_BY_EMAIL)?;
    wtx.open_table(ACCOUNTS)?;
    wtx.open_table(ACCOUNTS_BY_PROVIDER)?;
    wtx.open_multimap_table(ACCOUNTS_BY_USER)?;
    wtx.open_table(SESSIONS)?;
    wtx.open_table(VERIFICATION)?;
    wtx.open_table(VERIFICATION_BY_EXPIRY)?;
    wtx.open_multimap_table(VERIFICATION_BY_IDENTIFIER)?;
    wtx.open_table(VERIFICATION_ATTEMPTS)?;
    wtx.open_table(CREDENTIALS)?;
    wtx.open_table(AUTHENTICATORS)?;
    wtx.open_multimap_table(AUTHENTICATORS_BY_USER)?;
    wtx.open_table(WEB_SESSIONS)?;
    Ok(())
}

/// The schema version stored in the file, or `None` for an empty database.
pub(crate) fn stored_version(db: &redb::Database) -> Result<Option<u64>> {
    use redb::ReadableDatabase;
    let rtx = db.begin_read()?;
    match rtx.open_table(META) {
        Ok(meta) => Ok(meta.get(SCHEMA_VERSION_KEY)?.map(|g| g.value())),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}
