//! The conformance suite (`authdb::conformance`) against `AuthDb`: once in memory, once on
//! files (a new file per case).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use authdb::{AuthDb, Builder, EncryptionKey, ManualClock, PasswordParams};
use chrono::Duration;

/// The configuration the suite asks for: the given clock, 30-day sessions extended at most
/// daily, an encryption key, cheap password hashing.
fn builder(clock: Arc<ManualClock>) -> Builder {
    AuthDb::builder()
        .clock(clock)
        .session_max_age(Duration::days(30))
        .session_update_age(Duration::hours(24))
        .encryption_key(EncryptionKey::from_bytes([7; 32]))
        .password_params(PasswordParams {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        })
}

#[test]
fn conformance_in_memory() {
    authdb::conformance::run_all(|clock| {
        builder(clock).in_memory().expect("an in-memory database")
    });
}

#[test]
fn conformance_on_file() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let next = AtomicUsize::new(0);
    authdb::conformance::run_all(|clock| {
        let n = next.fetch_add(1, Ordering::Relaxed);
        let path = dir.path().join(format!("case-{n}.redb"));
        builder(clock).open(&path).expect("a new database file")
    });
}

#[test]
fn short_codes_in_memory() {
    authdb::conformance::run_short_codes(|clock| {
        builder(clock)
            .allow_short_verification_tokens(authdb::conformance::SHORT_CODE_ATTEMPTS)
            .in_memory()
            .expect("an in-memory database")
    });
}

#[test]
fn short_codes_on_file() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let next = AtomicUsize::new(0);
    authdb::conformance::run_short_codes(|clock| {
        let n = next.fetch_add(1, Ordering::Relaxed);
        let path = dir.path().join(format!("case-{n}.redb"));
        builder(clock)
            .allow_short_verification_tokens(authdb::conformance::SHORT_CODE_ATTEMPTS)
            .open(&path)
            .expect("a new database file")
    });
}
