//! The schema: created at connect, idempotent, safe when processes connect at once, refused
//! when newer; what `check_integrity` reports when the tables were changed by hand; what the
//! tables hold (hashes and sealed values only). Needs `AUTHDB_POSTGRES_URL`.

mod common;

use std::sync::{Arc, Barrier};

use authdb::prelude::*;
use authdb::{Error, IntegrityProblem, NewAccount, NewUser};
use authdb_postgres::{PgAuthDb, SCHEMA_VERSION};

fn versions(admin: &mut postgres::Client, schema: &str) -> Vec<i32> {
    admin
        .query(
            &format!("SELECT version FROM \"{schema}\".schema_version ORDER BY version"),
            &[],
        )
        .expect("schema_version")
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// Every migration, each applied once.
fn all_versions() -> Vec<i32> {
    (1..=SCHEMA_VERSION).collect()
}

#[test]
fn concurrent_first_connects_migrate_once() {
    let Some(url) = common::url("concurrent_first_connects_migrate_once") else {
        return;
    };
    let schemas = common::Schemas::new(&url);
    let schema = schemas.fresh("race");
    let barrier = Arc::new(Barrier::new(8));
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let (url, schema, barrier) = (url.clone(), schema.clone(), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                common::builder(&url, &schema, common::clock())
                    .pool_size(1)
                    .connect()
                    .map(|db| db.check_integrity())
            })
        })
        .collect();
    for h in handles {
        let report = h.join().expect("thread").expect("connect").expect("check");
        assert!(report.is_clean(), "{report}");
    }
    let mut admin = common::admin(&url);
    assert_eq!(versions(&mut admin, &schema), all_versions());
}

#[test]
fn reconnecting_keeps_the_data() {
    let Some(url) = common::url("reconnecting_keeps_the_data") else {
        return;
    };
    let schemas = common::Schemas::new(&url);
    let schema = schemas.fresh("again");
    let db = common::builder(&url, &schema, common::clock())
        .connect()
        .expect("connect");
    let u = db
        .create_user(&NewUser {
            email: Some("ada@example.com".into()),
            ..NewUser::default()
        })
        .expect("create_user");
    drop(db);
    let db = common::builder(&url, &schema, common::clock())
        .connect()
        .expect("reconnect");
    assert_eq!(db.get_user(&u.id).expect("get_user"), Some(u));
    let mut admin = common::admin(&url);
    assert_eq!(versions(&mut admin, &schema), all_versions());
}

#[test]
fn a_newer_schema_is_refused_and_left_alone() {
    let Some(url) = common::url("a_newer_schema_is_refused_and_left_alone") else {
        return;
    };
    let schemas = common::Schemas::new(&url);
    let schema = schemas.fresh("newer");
    common::builder(&url, &schema, common::clock())
        .connect()
        .expect("connect");
    let mut admin = common::admin(&url);
    admin
        .execute(
            &format!(
                "INSERT INTO \"{schema}\".schema_version (version, description, applied_at) \
                 VALUES ($1, 'from the future', 0)"
            ),
            &[&(SCHEMA_VERSION + 1)],
        )
        .expect("insert");
    let err = common::builder(&url, &schema, common::clock())
        .connect()
        .expect_err("refused");
    assert!(
        matches!(err, Error::UnsupportedSchemaVersion { found, supported }
            if found == u64::from((SCHEMA_VERSION + 1).unsigned_abs())
                && supported == u64::from(SCHEMA_VERSION.unsigned_abs())),
        "{err:?}"
    );
    assert_eq!(
        versions(&mut admin, &schema),
        (1..=SCHEMA_VERSION + 1).collect::<Vec<_>>()
    );
}

#[test]
fn stores_in_different_schemas_are_independent() {
    let Some(url) = common::url("stores_in_different_schemas_are_independent") else {
        return;
    };
    let schemas = common::Schemas::new(&url);
    let a = common::builder(&url, &schemas.fresh("a"), common::clock())
        .connect()
        .expect("connect a");
    let b = common::builder(&url, &schemas.fresh("b"), common::clock())
        .connect()
        .expect("connect b");
    let profile = NewUser {
        email: Some("same@example.com".into()),
        ..NewUser::default()
    };
    a.create_user(&profile).expect("in a");
    b.create_user(&profile)
        .expect("in b: another schema, no conflict");
    assert_eq!(a.check_integrity().expect("a").users, 1);
    assert_eq!(b.check_integrity().expect("b").users, 1);
}

#[test]
fn the_tables_hold_no_secret_in_plain_form() {
    let Some(url) = common::url("the_tables_hold_no_secret_in_plain_form") else {
        return;
    };
    let schemas = common::Schemas::new(&url);
    let schema = schemas.fresh("plain");
    let db = common::builder(&url, &schema, common::clock())
        .connect()
        .expect("connect");
    let u = db
        .create_user(&NewUser {
            email: Some("ada@example.com".into()),
            ..NewUser::default()
        })
        .expect("create_user");
    db.set_password(&u.id, "the-password-itself")
        .expect("set_password");
    let s = db.create_session(&u.id).expect("create_session");
    db.link_account(
        &u.id,
        &NewAccount {
            provider_type: "oauth".into(),
            provider_id: "github".into(),
            provider_account_id: "1".into(),
            refresh_token: Some("the-refresh-token".into()),
            access_token: Some("the-access-token".into()),
            id_token: Some("the-id-token".into()),
            extra: serde_json::json!({"the-extra": "the-extra-value"})
                .as_object()
                .cloned()
                .unwrap_or_default(),
            ..NewAccount::default()
        },
    )
    .expect("link_account");
    let mut admin = common::admin(&url);
    let dump: String = admin
        .query_one(
            &format!(
                "SELECT concat_ws(' ', \
                   (SELECT string_agg(t::text, ' ') FROM \"{schema}\".users t), \
                   (SELECT string_agg(t::text, ' ') FROM \"{schema}\".accounts t), \
                   (SELECT string_agg(t::text, ' ') FROM \"{schema}\".sessions t), \
                   (SELECT string_agg(t::text, ' ') FROM \"{schema}\".credentials t), \
                   (SELECT string_agg(encode(t::text::bytea, 'escape'), ' ') \
                      FROM \"{schema}\".accounts t))"
            ),
            &[],
        )
        .expect("dump")
        .get(0);
    for secret in [
        "the-password-itself",
        s.session_token.as_str(),
        s.access_token.as_str(),
        "the-refresh-token",
        "the-access-token",
        "the-id-token",
        "the-extra-value",
    ] {
        assert!(!dump.contains(secret), "{secret} is stored in plain form");
    }
    let hash: Vec<u8> = admin
        .query_one(
            &format!("SELECT token_hash FROM \"{schema}\".sessions"),
            &[],
        )
        .expect("session row")
        .get(0);
    assert_eq!(hash, authdb::backend::session_token_hash(&s.session_token));
}

#[test]
fn check_integrity_reports_what_the_schema_cannot_enforce() {
    let Some(url) = common::url("check_integrity_reports_what_the_schema_cannot_enforce") else {
        return;
    };
    let schemas = common::Schemas::new(&url);
    let schema = schemas.fresh("tamper");
    let db: PgAuthDb = common::builder(&url, &schema, common::clock())
        .connect()
        .expect("connect");
    let u = db
        .create_user(&NewUser {
            email: Some("ada@example.com".into()),
            ..NewUser::default()
        })
        .expect("create_user");
    db.create_session(&u.id).expect("create_session");
    assert!(db.check_integrity().expect("check").is_clean());

    let mut admin = common::admin(&url);
    admin
        .batch_execute(&format!(
            "SET search_path TO \"{schema}\";
             UPDATE users SET email_key = 'someone-else@example.com';
             UPDATE sessions SET created_at = 9223372036854775807;
             ALTER TABLE sessions DROP CONSTRAINT sessions_user_fk;"
        ))
        .expect("tamper");
    let r = db.check_integrity().expect("check");
    let problems = r.problems();
    assert!(
        problems.iter().any(|p| matches!(p,
            IntegrityProblem::StaleIndexEntry { index: "users_email_unique", key }
                if key == "someone-else@example.com")),
        "{r}"
    );
    assert!(
        problems.iter().any(|p| matches!(p,
            IntegrityProblem::CorruptRecord { table: "sessions", detail, .. }
                if detail.contains("created_at"))),
        "{r}"
    );
    assert!(
        problems.iter().any(|p| matches!(p,
            IntegrityProblem::CorruptRecord { key, .. } if key == "sessions_user_fk")),
        "{r}"
    );
    assert_eq!(problems.len(), 3, "{r}");
    assert_eq!((r.users, r.sessions), (1, 1));
}
