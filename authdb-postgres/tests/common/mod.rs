//! Shared by the tests: the server from `AUTHDB_POSTGRES_URL`, a fresh schema per store
//! (dropped when the test ends), and the configuration the conformance suite asks for.

#![allow(dead_code)] // each test binary uses part of this

use std::io::Write as _;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use authdb::{Clock, EncryptionKey, ManualClock, PasswordParams};
use authdb_postgres::{PgAuthDb, PgBuilder};
use chrono::Duration;

/// The server to test against, or `None` (and a note on stderr) when none is configured.
pub fn url(test: &str) -> Option<String> {
    match std::env::var("AUTHDB_POSTGRES_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            // Straight to stderr, not through `eprintln!`, which the test harness captures:
            // the skip shows in a plain `cargo test` run.
            let _ = writeln!(
                std::io::stderr(),
                "{test}: skipped (set AUTHDB_POSTGRES_URL=postgres://... to run it)"
            );
            None
        }
    }
}

/// A connection for the test itself (to inspect, tamper with or kill what the store does).
pub fn admin(url: &str) -> postgres::Client {
    postgres::Client::connect(url, postgres::NoTls).expect("connect to AUTHDB_POSTGRES_URL")
}

/// Fresh schema names, all dropped (`DROP SCHEMA … CASCADE`) when this is dropped, also
/// when the test fails.
pub struct Schemas {
    url: String,
    names: Mutex<Vec<String>>,
    next: AtomicUsize,
}

impl Schemas {
    pub fn new(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            names: Mutex::new(Vec::new()),
            next: AtomicUsize::new(0),
        }
    }

    /// A schema name no other test or run uses.
    pub fn fresh(&self, tag: &str) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let name = format!(
            "authdb_t_{tag}_{n}_{}",
            &uuid::Uuid::now_v7().simple().to_string()[20..]
        );
        self.names.lock().unwrap().push(name.clone());
        name
    }

    pub fn count(&self) -> usize {
        self.names.lock().unwrap().len()
    }
}

impl Drop for Schemas {
    fn drop(&mut self) {
        let names = std::mem::take(
            &mut *self
                .names
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        if names.is_empty() {
            return;
        }
        match postgres::Client::connect(&self.url, postgres::NoTls) {
            Ok(mut c) => {
                for n in names {
                    if let Err(e) =
                        c.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{n}\" CASCADE"))
                    {
                        eprintln!("could not drop schema {n}: {e}");
                    }
                }
            }
            Err(e) => eprintln!("could not connect to drop the test schemas: {e}"),
        }
    }
}

/// Cheap argon2, for tests.
pub fn fast_passwords() -> PasswordParams {
    PasswordParams {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    }
}

/// The configuration the conformance suite asks for (30-day sessions extended at most daily,
/// an encryption key, cheap passwords), a small pool, on `schema`.
pub fn builder(url: &str, schema: &str, clock: Arc<dyn Clock>) -> PgBuilder {
    PgAuthDb::builder()
        .url(url)
        .schema(schema)
        .clock(clock)
        .session_max_age(Duration::days(30))
        .session_update_age(Duration::hours(24))
        .encryption_key(EncryptionKey::from_bytes([7; 32]))
        .password_params(fast_passwords())
        .pool_size(4)
        .min_idle(Some(1))
}

/// A manual clock at the conformance suite's start time.
pub fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(authdb::conformance::start_time()))
}
