//! Short verification codes on PostgreSQL (`allow_short_verification_tokens`): failed attempts
//! are shared by every connection and survive a reconnect, concurrent guesses are each
//! counted, the limit deletes the identifier's links, stale counters are purged, and a schema
//! of version 1 gains the attempts table. Needs `AUTHDB_POSTGRES_URL`.

mod common;

use std::sync::{Arc, Barrier};

use authdb::prelude::*;
use authdb::{EmailProvider, Error, InputProblem};
use authdb_postgres::PgAuthDb;

const URL: &str = "https://app.example.com/cb";

fn provider() -> EmailProvider {
    EmailProvider::new("email", |_| Ok(()))
}

fn connect(url: &str, schema: &str, max: Option<u32>) -> PgAuthDb {
    let b = common::builder(url, schema, common::clock());
    match max {
        Some(n) => b.allow_short_verification_tokens(n),
        None => b,
    }
    .connect()
    .expect("connect")
}

fn attempts_rows(url: &str, schema: &str) -> i64 {
    common::admin(url)
        .query_one(
            &format!("SELECT count(*) FROM \"{schema}\".verification_attempts"),
            &[],
        )
        .expect("count")
        .get(0)
}

#[test]
fn a_short_code_is_refused_by_default_and_zero_attempts_at_connect() {
    let Some(url) = common::url("a_short_code_is_refused_by_default_and_zero_attempts_at_connect")
    else {
        return;
    };
    let schemas = common::Schemas::new(&url);
    let schema = schemas.fresh("floor");
    let db = connect(&url, &schema, None);
    let err = db
        .create_verification_request("a@example.com", URL, "482916", "secret", &provider())
        .expect_err("refused");
    assert!(
        matches!(
            err,
            Error::InvalidInput {
                field: "token",
                problem: InputProblem::TooLittleEntropy { min: 128, .. }
            }
        ),
        "{err:?}"
    );
    let err = common::builder(&url, &schema, common::clock())
        .allow_short_verification_tokens(0)
        .connect()
        .expect_err("zero attempts");
    assert!(matches!(err, Error::InvalidConfig(_)), "{err:?}");
}

#[test]
fn failed_attempts_survive_a_reconnect_and_are_never_stored_in_plain() {
    let Some(url) =
        common::url("failed_attempts_survive_a_reconnect_and_are_never_stored_in_plain")
    else {
        return;
    };
    let schemas = common::Schemas::new(&url);
    let schema = schemas.fresh("reconnect");
    let db = connect(&url, &schema, Some(3));
    db.create_verification_request("ada@example.com", URL, "482916", "secret", &provider())
        .expect("a short code");
    for _ in 0..2 {
        assert_eq!(
            db.use_verification_request("ada@example.com", "000000", "secret")
                .expect("use"),
            None
        );
    }
    assert_eq!(attempts_rows(&url, &schema), 1);
    let stored: Vec<u8> = common::admin(&url)
        .query_one(
            &format!("SELECT identifier_hash FROM \"{schema}\".verification_attempts"),
            &[],
        )
        .expect("row")
        .get(0);
    assert_eq!(stored.len(), 32, "a hash, not the address");
    drop(db);
    let db = connect(&url, &schema, Some(3));
    assert_eq!(
        db.use_verification_token("ada@example.com", "111111")
            .expect("use"),
        None
    );
    assert_eq!(
        db.use_verification_request("ada@example.com", "482916", "secret")
            .expect("use"),
        None,
        "the third failure (across the reconnect) deleted the link"
    );
    assert_eq!(attempts_rows(&url, &schema), 0, "the counter went with it");
    let r = db.check_integrity().expect("check_integrity");
    assert!(r.is_clean(), "{r}");
}

#[test]
fn concurrent_wrong_guesses_are_each_counted() {
    let Some(url) = common::url("concurrent_wrong_guesses_are_each_counted") else {
        return;
    };
    let schemas = common::Schemas::new(&url);
    let schema = schemas.fresh("race");
    let max = 8;
    let db = connect(&url, &schema, Some(max + 1));
    db.create_verification_request("ada@example.com", URL, "482916", "secret", &provider())
        .expect("a short code");
    let barrier = Arc::new(Barrier::new(max as usize));
    let handles: Vec<_> = (0..max)
        .map(|i| {
            let (db, barrier) = (db.clone(), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                db.use_verification_token("ada@example.com", &format!("{i:06}"))
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().expect("thread").expect("use"), None);
    }
    let failures: i32 = common::admin(&url)
        .query_one(
            &format!("SELECT failures FROM \"{schema}\".verification_attempts"),
            &[],
        )
        .expect("row")
        .get(0);
    assert_eq!(failures.unsigned_abs(), max, "no failure was lost");
    assert_eq!(
        db.use_verification_token("ada@example.com", "999999")
            .expect("use"),
        None
    );
    assert_eq!(
        db.check_integrity().expect("check").verification_requests,
        0,
        "the limit deleted the link"
    );
}

#[test]
fn purge_removes_stale_counters() {
    let Some(url) = common::url("purge_removes_stale_counters") else {
        return;
    };
    let schemas = common::Schemas::new(&url);
    let schema = schemas.fresh("purge");
    let clock = common::clock();
    let db = common::builder(&url, &schema, clock.clone())
        .allow_short_verification_tokens(3)
        .connect()
        .expect("connect");
    let long = provider().max_age(chrono::Duration::days(3));
    db.create_verification_request("ada@example.com", URL, "482916", "secret", &long)
        .expect("a short code");
    assert_eq!(
        db.use_verification_token("ada@example.com", "000000")
            .expect("use"),
        None
    );
    db.purge_expired().expect("purge");
    assert_eq!(attempts_rows(&url, &schema), 1, "a fresh counter stays");
    clock.advance(chrono::Duration::seconds(
        authdb::limits::VERIFICATION_ATTEMPT_WINDOW_SECS,
    ));
    db.purge_expired().expect("purge");
    assert_eq!(attempts_rows(&url, &schema), 0, "a stale one goes");
}

#[test]
fn a_version_1_schema_gains_the_attempts_table() {
    let Some(url) = common::url("a_version_1_schema_gains_the_attempts_table") else {
        return;
    };
    let schemas = common::Schemas::new(&url);
    let schema = schemas.fresh("upgrade");
    drop(connect(&url, &schema, None));
    // Back to what version 1 made.
    common::admin(&url)
        .batch_execute(&format!(
            "SET search_path TO \"{schema}\";
             DROP TABLE verification_attempts;
             DROP INDEX verification_tokens_identifier_key_idx;
             DELETE FROM schema_version WHERE version = 2;"
        ))
        .expect("downgrade");
    let db = connect(&url, &schema, Some(2));
    let r = db.check_integrity().expect("check_integrity");
    assert!(r.is_clean(), "{r}");
    db.create_verification_request("ada@example.com", URL, "482916", "secret", &provider())
        .expect("a short code");
    assert_eq!(
        db.use_verification_token("ada@example.com", "000000")
            .expect("use"),
        None
    );
    assert_eq!(attempts_rows(&url, &schema), 1);
}
