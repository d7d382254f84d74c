//! `Maintenance`: batched purging through the expiry indexes, and the integrity check.

use std::collections::HashSet;

use authdb::backend::hex;
use authdb::{IntegrityProblem, IntegrityReport, PurgeStats, Result, UserId, normalize_email};
use chrono::DateTime;
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::ToSql;
use postgres::{IsolationLevel, Row, Transaction};

use crate::db::Runner;
use crate::error::pg;
use crate::pool::Conn;
use crate::schema::{SCHEMA_VERSION, STRUCTURE};
use crate::store::PgAuthDb;

/// Rows deleted per statement (and transaction) by `purge_expired`: authdb's
/// [`PURGE_BATCH`](authdb::PURGE_BATCH).
pub const PURGE_BATCH: usize = authdb::PURGE_BATCH;

const PURGE_SESSIONS: &str = "DELETE FROM sessions WHERE token_hash IN (\
     SELECT token_hash FROM sessions WHERE expires < $1 \
     ORDER BY expires LIMIT $2 FOR UPDATE SKIP LOCKED)";
const PURGE_VERIFICATION: &str = "DELETE FROM verification_tokens WHERE token_hash IN (\
     SELECT token_hash FROM verification_tokens WHERE expires < $1 \
     ORDER BY expires LIMIT $2 FOR UPDATE SKIP LOCKED)";
/// Stale failed-attempt counters: `$1` is the latest stale window start
/// (`authdb::backend::stale_attempts_before`).
const PURGE_ATTEMPTS: &str = "DELETE FROM verification_attempts WHERE identifier_hash IN (\
     SELECT identifier_hash FROM verification_attempts WHERE window_start <= $1 \
     ORDER BY window_start LIMIT $2 FOR UPDATE SKIP LOCKED)";

/// Removes the rows expired at the start of the call, batch by batch.
pub(crate) fn purge_expired(db: &PgAuthDb) -> Result<PurgeStats> {
    let now = db.cfg().now_micros();
    let batch = i64::try_from(PURGE_BATCH).unwrap_or(i64::MAX);
    let run = |sql: &'static str, before: i64| -> Result<u64> {
        let mut total = 0;
        loop {
            let n = db.write(|d| d.exec(sql, &[&before, &batch]))?;
            total += n;
            if n < PURGE_BATCH as u64 {
                return Ok(total);
            }
        }
    };
    let stats = PurgeStats {
        sessions: run(PURGE_SESSIONS, now)?,
        verification_requests: run(PURGE_VERIFICATION, now)?,
        // This backend keeps no web-session (tower-sessions) records.
        web_sessions: 0,
    };
    // Not in the stats, which count expired rows (as authdb's own purge).
    run(PURGE_ATTEMPTS, authdb::backend::stale_attempts_before(now))?;
    Ok(stats)
}

/// Every row of `sql`, streamed (the tables may be large).
fn each_row(
    tx: &mut Transaction<'_>,
    sql: &str,
    mut f: impl FnMut(&Row) -> Result<()>,
) -> Result<()> {
    let mut rows = tx
        .query_raw(sql, std::iter::empty::<&(dyn ToSql + Sync)>())
        .map_err(pg)?;
    while let Some(row) = rows.next().map_err(pg)? {
        f(&row)?;
    }
    Ok(())
}

fn corrupt(table: &'static str, key: String, detail: impl Into<String>) -> IntegrityProblem {
    IntegrityProblem::CorruptRecord {
        table,
        key,
        detail: detail.into(),
    }
}

/// Reports each stored time of a row that is outside what authdb can represent.
fn check_times(
    r: &mut IntegrityReport,
    table: &'static str,
    key: &str,
    times: &[(&str, Option<i64>)],
) {
    for (name, t) in times {
        if let Some(m) = t
            && DateTime::from_timestamp_micros(*m).is_none()
        {
            r.push(corrupt(
                table,
                key.to_owned(),
                format!("{name} out of range"),
            ));
        }
    }
}

/// A column that does not decode (only possible if the schema was altered) as a problem.
fn get<'r, T: postgres::types::FromSql<'r>>(
    row: &'r Row,
    i: usize,
    table: &'static str,
    r: &mut IntegrityReport,
) -> Option<T> {
    match row.try_get(i) {
        Ok(v) => Some(v),
        Err(e) => {
            r.push(corrupt(table, "?".to_owned(), format!("column {i}: {e}")));
            None
        }
    }
}

/// The checks of [`check_integrity`](authdb::Maintenance::check_integrity) on one snapshot
/// (a `REPEATABLE READ READ ONLY` transaction).
pub(crate) fn check_integrity(db: &PgAuthDb) -> Result<IntegrityReport> {
    let mut conn = db.conn()?;
    let Conn { client, .. } = &mut *conn;
    let mut tx = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .map_err(pg)?;
    let mut r = IntegrityReport::default();

    // The schema version this build expects.
    let versions: Vec<i32> = tx
        .query("SELECT version FROM schema_version ORDER BY version", &[])
        .map_err(pg)?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let expected: Vec<i32> = (1..=SCHEMA_VERSION).collect();
    if versions != expected {
        r.push(corrupt(
            "schema_version",
            "version".to_owned(),
            format!("applied migrations are {versions:?}, expected {expected:?}"),
        ));
    }

    // The constraints and indexes the structural guarantees rest on.
    let present: HashSet<String> = tx
        .query(
            "SELECT c.conname::text FROM pg_constraint c \
             JOIN pg_namespace n ON n.oid = c.connamespace WHERE n.nspname = $1 \
             UNION SELECT i.indexname::text FROM pg_indexes i WHERE i.schemaname = $1",
            &[&db.schema()],
        )
        .map_err(pg)?
        .iter()
        .map(|row| row.get(0))
        .collect();
    for (table, name) in STRUCTURE {
        if !present.contains(*name) {
            r.push(corrupt(
                table,
                (*name).to_owned(),
                "constraint or index missing: what it enforces is no longer guaranteed",
            ));
        }
    }

    // Users: the unique key is the normalized email; extra is an object; times in range.
    let mut users = 0;
    each_row(
        &mut tx,
        "SELECT id, email, email_key, extra::text, email_verified, created_at, updated_at \
         FROM users",
        |row| {
            const T: &str = "users";
            users += 1;
            let Some(id) = get::<uuid::Uuid>(row, 0, T, &mut r) else {
                return Ok(());
            };
            let key = UserId(id).to_string();
            let email = get::<Option<String>>(row, 1, T, &mut r).flatten();
            let email_key = get::<Option<String>>(row, 2, T, &mut r).flatten();
            let wanted = email.as_deref().map(normalize_email);
            if wanted != email_key {
                r.push(match (&wanted, &email_key) {
                    (Some(_), None) => IntegrityProblem::MissingIndexEntry {
                        index: "users_email_unique",
                        key: key.clone(),
                    },
                    _ => IntegrityProblem::StaleIndexEntry {
                        index: "users_email_unique",
                        key: email_key.clone().unwrap_or_else(|| key.clone()),
                    },
                });
            }
            let extra = get::<Option<String>>(row, 3, T, &mut r).flatten();
            if let Some(j) = extra
                && serde_json::from_str::<authdb::Extra>(&j).is_err()
            {
                r.push(corrupt(T, key.clone(), "extra is not a JSON object"));
            }
            let verified = get::<Option<i64>>(row, 4, T, &mut r).flatten();
            let created = get::<i64>(row, 5, T, &mut r);
            let updated = get::<i64>(row, 6, T, &mut r);
            check_times(
                &mut r,
                T,
                &key,
                &[
                    ("email_verified", verified),
                    ("created_at", created),
                    ("updated_at", updated),
                ],
            );
            Ok(())
        },
    )?;
    r.users = users;

    // Accounts: times (the sealed fields need the key; like authdb's own check, they are
    // opened only when read).
    let mut accounts = 0;
    each_row(
        &mut tx,
        "SELECT id, access_token_expires, created_at, updated_at FROM accounts",
        |row| {
            const T: &str = "accounts";
            accounts += 1;
            let key =
                get::<uuid::Uuid>(row, 0, T, &mut r).map_or_else(String::new, |u| u.to_string());
            let times = [
                (
                    "access_token_expires",
                    get::<Option<i64>>(row, 1, T, &mut r).flatten(),
                ),
                ("created_at", get::<i64>(row, 2, T, &mut r)),
                ("updated_at", get::<i64>(row, 3, T, &mut r)),
            ];
            check_times(&mut r, T, &key, &times);
            Ok(())
        },
    )?;
    r.accounts = accounts;

    // Sessions (expired ones included): times.
    let mut sessions = 0;
    each_row(
        &mut tx,
        "SELECT token_hash, expires, created_at, updated_at FROM sessions",
        |row| {
            const T: &str = "sessions";
            sessions += 1;
            let key = get::<Vec<u8>>(row, 0, T, &mut r).map_or_else(String::new, |h| hex(&h));
            let times = [
                ("expires", get::<i64>(row, 1, T, &mut r)),
                ("created_at", get::<i64>(row, 2, T, &mut r)),
                ("updated_at", get::<i64>(row, 3, T, &mut r)),
            ];
            check_times(&mut r, T, &key, &times);
            Ok(())
        },
    )?;
    r.sessions = sessions;

    // Verification tokens: the match key is the normalized identifier; times.
    let mut links = 0;
    each_row(
        &mut tx,
        "SELECT token_hash, identifier, identifier_key, expires, created_at, updated_at \
         FROM verification_tokens",
        |row| {
            const T: &str = "verification_tokens";
            links += 1;
            let key = get::<Vec<u8>>(row, 0, T, &mut r).map_or_else(String::new, |h| hex(&h));
            let identifier = get::<String>(row, 1, T, &mut r);
            let identifier_key = get::<String>(row, 2, T, &mut r);
            if let (Some(i), Some(k)) = (identifier, identifier_key)
                && normalize_email(&i) != k
            {
                r.push(IntegrityProblem::StaleIndexEntry {
                    index: "verification_tokens.identifier_key",
                    key: key.clone(),
                });
            }
            let times = [
                ("expires", get::<i64>(row, 3, T, &mut r)),
                ("created_at", get::<i64>(row, 4, T, &mut r)),
                ("updated_at", get::<i64>(row, 5, T, &mut r)),
            ];
            check_times(&mut r, T, &key, &times);
            Ok(())
        },
    )?;
    r.verification_requests = links;

    // Failed-attempt counters: their CHECK constraints (listed above) keep the hash 32 bytes
    // and the count positive; the window start must be a representable time.
    each_row(
        &mut tx,
        "SELECT identifier_hash, window_start FROM verification_attempts",
        |row| {
            const T: &str = "verification_attempts";
            let key = get::<Vec<u8>>(row, 0, T, &mut r).map_or_else(String::new, |h| hex(&h));
            let times = [("window_start", get::<i64>(row, 1, T, &mut r))];
            check_times(&mut r, T, &key, &times);
            Ok(())
        },
    )?;

    // Passwords: the CHECK constraint keeps them argon2id PHC strings.
    let mut credentials = 0;
    each_row(
        &mut tx,
        "SELECT user_id, updated_at FROM credentials",
        |row| {
            const T: &str = "credentials";
            credentials += 1;
            let key =
                get::<uuid::Uuid>(row, 0, T, &mut r).map_or_else(String::new, |u| u.to_string());
            let times = [("updated_at", get::<i64>(row, 1, T, &mut r))];
            check_times(&mut r, T, &key, &times);
            Ok(())
        },
    )?;
    r.credentials = credentials;

    // Authenticators: times.
    let mut authenticators = 0;
    each_row(
        &mut tx,
        "SELECT credential_id, created_at, updated_at FROM authenticators",
        |row| {
            const T: &str = "authenticators";
            authenticators += 1;
            let key = get::<String>(row, 0, T, &mut r).unwrap_or_default();
            let times = [
                ("created_at", get::<i64>(row, 1, T, &mut r)),
                ("updated_at", get::<i64>(row, 2, T, &mut r)),
            ];
            check_times(&mut r, T, &key, &times);
            Ok(())
        },
    )?;
    r.authenticators = authenticators;

    tx.commit().map_err(pg)?;
    Ok(r)
}
