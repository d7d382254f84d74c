//! The schema: its name, its version and the migrations that build it, applied at connect.

use authdb::{Error, Result};
use postgres::Client;

use crate::error::{PgError, backend, pg};

/// The schema version this build creates and understands, recorded in the table
/// `<schema>.schema_version` (one row per applied migration).
pub const SCHEMA_VERSION: i32 = 2;

/// The migrations, in order: (version, description, SQL). The SQL runs with `search_path`
/// set to the configured schema.
const MIGRATIONS: &[(i32, &str, &str)] = &[
    (
        1,
        "users, accounts, sessions, verification tokens, credentials, authenticators",
        include_str!("../migrations/0001_init.sql"),
    ),
    (
        2,
        "failed verification attempts; verification tokens by identifier",
        include_str!("../migrations/0002_verification_attempts.sql"),
    ),
];

/// Whether `name` can be used as the schema name: 1 to 63 ASCII letters, digits and
/// underscores, not starting with a digit (so it needs no escaping beyond double quotes, and
/// PostgreSQL does not truncate it).
pub(crate) fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    b.first().is_some_and(|c| !c.is_ascii_digit())
        && b.len() <= 63
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

/// The schema name as a quoted identifier (the name was checked by [`valid_name`]).
pub(crate) fn quoted(name: &str) -> String {
    format!("\"{name}\"")
}

/// The advisory lock that serializes migrations of one schema across processes: FNV-1a of
/// the schema name, so that different schemas in one database do not wait for each other.
fn lock_key(schema: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in b"authdb-postgres/migrate/"
        .iter()
        .chain(schema.as_bytes().iter())
    {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h.cast_signed()
}

/// Brings the schema to [`SCHEMA_VERSION`]: creates it when missing, applies each missing
/// migration and records it, all in one transaction under an advisory lock (a second
/// process connecting at the same moment waits, then finds the work done). A schema of a
/// newer version is [`Error::UnsupportedSchemaVersion`] and is not touched.
pub(crate) fn migrate(client: &mut Client, schema: &str, now: i64) -> Result<()> {
    let q = quoted(schema);
    let mut tx = client.transaction().map_err(pg)?;
    let encoding: String = tx
        .query_one("SELECT current_setting('server_encoding')", &[])
        .map_err(pg)?
        .get(0);
    if encoding != "UTF8" {
        return Err(backend(PgError::setup(format!(
            "the database's encoding is {encoding}; authdb-postgres needs UTF8"
        ))));
    }
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&lock_key(schema)])
        .map_err(pg)?;
    let exists = tx
        .query_opt("SELECT 1 FROM pg_namespace WHERE nspname = $1", &[&schema])
        .map_err(pg)?
        .is_some();
    if !exists {
        tx.batch_execute(&format!("CREATE SCHEMA {q}"))
            .map_err(pg)?;
    }
    tx.batch_execute(&format!(
        "SET LOCAL search_path TO {q};
         CREATE TABLE IF NOT EXISTS schema_version (
             version     integer PRIMARY KEY,
             description text NOT NULL,
             applied_at  bigint NOT NULL
         );"
    ))
    .map_err(pg)?;
    let found: Option<i32> = tx
        .query_one("SELECT max(version) FROM schema_version", &[])
        .map_err(pg)?
        .get(0);
    let found = found.unwrap_or(0);
    if found > SCHEMA_VERSION {
        return Err(Error::UnsupportedSchemaVersion {
            found: u64::try_from(found).unwrap_or(0),
            supported: SCHEMA_VERSION.unsigned_abs().into(),
        });
    }
    for (version, description, sql) in MIGRATIONS {
        if *version > found {
            tx.batch_execute(sql).map_err(pg)?;
            tx.execute(
                "INSERT INTO schema_version (version, description, applied_at) \
                 VALUES ($1, $2, $3)",
                &[version, description, &now],
            )
            .map_err(pg)?;
        }
    }
    tx.commit().map_err(pg)
}

/// The constraints and indexes the guarantees rest on, by table: `check_integrity` reports
/// any that is missing (dropped by hand), since what it enforces is no longer checked.
pub(crate) const STRUCTURE: &[(&str, &str)] = &[
    ("users", "users_pkey"),
    ("users", "users_email_unique"),
    ("users", "users_email_key_present"),
    ("users", "users_extra_object"),
    ("users", "users_security_stamp_len"),
    ("accounts", "accounts_pkey"),
    ("accounts", "accounts_user_fk"),
    ("accounts", "accounts_provider_unique"),
    ("accounts", "accounts_provider_type_known"),
    ("accounts", "accounts_user_idx"),
    ("sessions", "sessions_pkey"),
    ("sessions", "sessions_user_fk"),
    ("sessions", "sessions_token_hash_len"),
    ("sessions", "sessions_user_idx"),
    ("sessions", "sessions_expires_idx"),
    ("verification_tokens", "verification_tokens_pkey"),
    ("verification_tokens", "verification_tokens_token_hash_len"),
    (
        "verification_tokens",
        "verification_tokens_identifier_key_present",
    ),
    ("verification_tokens", "verification_tokens_expires_idx"),
    (
        "verification_tokens",
        "verification_tokens_identifier_key_idx",
    ),
    ("verification_attempts", "verification_attempts_pkey"),
    (
        "verification_attempts",
        "verification_attempts_identifier_hash_len",
    ),
    (
        "verification_attempts",
        "verification_attempts_failures_positive",
    ),
    ("verification_attempts", "verification_attempts_window_idx"),
    ("credentials", "credentials_pkey"),
    ("credentials", "credentials_user_fk"),
    ("credentials", "credentials_argon2id"),
    ("authenticators", "authenticators_pkey"),
    ("authenticators", "authenticators_user_fk"),
    ("authenticators", "authenticators_user_idx"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names() {
        for ok in ["authdb", "a", "_x1", "Auth_DB_2", &"a".repeat(63)] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in [
            "",
            "1a",
            "a-b",
            "a b",
            "a\"b",
            "ä",
            &"a".repeat(64),
            "a;drop",
        ] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn lock_keys_differ_by_schema() {
        assert_ne!(lock_key("authdb"), lock_key("authdb2"));
        assert_eq!(lock_key("authdb"), lock_key("authdb"));
    }

    #[test]
    fn migrations_are_in_order_and_end_at_the_version() {
        let versions: Vec<i32> = MIGRATIONS.iter().map(|m| m.0).collect();
        let expected: Vec<i32> = (1..=SCHEMA_VERSION).collect();
        assert_eq!(versions, expected);
    }
}
