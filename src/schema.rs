//! Table and index definitions, key layouts and the schema version.
//!
//! | table | key | value |
//! |---|---|---|
//! | `meta` | `&str` | `u64` (`schema_version`) |
//! | `users` | user id (16 bytes) | user record |
//! | `idx:users_by_email` | normalized email | user id |
//! | `accounts` | account id | account record |
//! | `idx:accounts_by_provider` | (provider id, provider account id) | account id |
//! | `idx:accounts_by_user` (multimap) | user id | account id |
//! | `sessions` | SHA-256 of the session token | session record |
//! | `idx:sessions_by_user` (multimap) | user id | session token hash |
//! | `idx:sessions_by_expiry` | (expires µs, session token hash) | `()` |
//! | `verification_requests` | SHA-256 of `token + secret` | request record |
//! | `idx:verification_by_expiry` | (expires µs, token hash) | `()` |
//! | `credentials` | user id | credential record (argon2id PHC string) |

use redb::{MultimapTableDefinition, TableDefinition};

/// The schema version this build writes and understands.
pub const SCHEMA_VERSION: u64 = 1;

pub(crate) const META_NAME: &str = "meta";
pub(crate) const USERS_NAME: &str = "users";
pub(crate) const USERS_BY_EMAIL_NAME: &str = "idx:users_by_email";
pub(crate) const ACCOUNTS_NAME: &str = "accounts";
pub(crate) const ACCOUNTS_BY_PROVIDER_NAME: &str = "idx:accounts_by_provider";
pub(crate) const ACCOUNTS_BY_USER_NAME: &str = "idx:accounts_by_user";
pub(crate) const SESSIONS_NAME: &str = "sessions";
pub(crate) const SESSIONS_BY_USER_NAME: &str = "idx:sessions_by_user";
pub(crate) const SESSIONS_BY_EXPIRY_NAME: &str = "idx:sessions_by_expiry";
pub(crate) const VERIFICATION_NAME: &str = "verification_requests";
pub(crate) const VERIFICATION_BY_EXPIRY_NAME: &str = "idx:verification_by_expiry";
pub(crate) const CREDENTIALS_NAME: &str = "credentials";

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
pub(crate) const SESSIONS: TableDefinition<HashKey, &[u8]> = TableDefinition::new(SESSIONS_NAME);
pub(crate) const SESSIONS_BY_USER: MultimapTableDefinition<IdKey, HashKey> =
    MultimapTableDefinition::new(SESSIONS_BY_USER_NAME);
pub(crate) const SESSIONS_BY_EXPIRY: TableDefinition<ExpiryKey, ()> =
    TableDefinition::new(SESSIONS_BY_EXPIRY_NAME);
pub(crate) const VERIFICATION: TableDefinition<HashKey, &[u8]> =
    TableDefinition::new(VERIFICATION_NAME);
pub(crate) const VERIFICATION_BY_EXPIRY: TableDefinition<ExpiryKey, ()> =
    TableDefinition::new(VERIFICATION_BY_EXPIRY_NAME);
pub(crate) const CREDENTIALS: TableDefinition<IdKey, &[u8]> =
    TableDefinition::new(CREDENTIALS_NAME);
