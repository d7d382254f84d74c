//! Connection loss, timeouts and an unreachable server: always a clear `Error::Backend`
//! carrying a `PgError`, never a half-applied operation. All but the unreachable-server test
//! need `AUTHDB_POSTGRES_URL`.

mod common;

use std::time::{Duration as StdDuration, Instant};

use authdb::prelude::*;
use authdb::{Error, NewSession, NewUser};
use authdb_postgres::{PgAuthDb, PgError};
use chrono::Duration;

/// The `PgError` inside a backend error.
fn pg_error(e: &Error) -> &PgError {
    match e {
        Error::Backend { backend, source } => {
            assert_eq!(*backend, "postgres");
            source.downcast_ref::<PgError>().expect("a PgError")
        }
        other => panic!("expected Error::Backend, got {other:?}"),
    }
}

/// Terminates the server processes of the connections named `app`; returns how many.
fn kill(admin: &mut postgres::Client, app: &str, only_in_transaction: bool) -> i64 {
    let sql = if only_in_transaction {
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE application_name = $1 AND state LIKE 'idle in transaction%'"
    } else {
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1"
    };
    admin.query_one(sql, &[&app]).expect("terminate").get(0)
}

fn unique_app() -> String {
    format!("authdb-test-{}", uuid::Uuid::now_v7().simple())
}

#[test]
fn connection_killed_mid_transaction_keeps_nothing() {
    let Some(url) = common::url("connection_killed_mid_transaction_keeps_nothing") else {
        return;
    };
    let schemas = common::Schemas::new(&url);
    let app = unique_app();
    let db = common::builder(&url, &schemas.fresh("kill"), common::clock())
        .application_name(&app)
        .connect()
        .expect("connect");
    let mut admin = common::admin(&url);
    let err = db
        .write(|tx| {
            let u = tx.create_user(&NewUser {
                email: Some("lost@example.com".into()),
                ..NewUser::default()
            })?;
            tx.set_password(&u.id, "pw")?;
            // The server process of this transaction dies between two operations.
            assert_eq!(kill(&mut admin, &app, true), 1);
            let e = tx
                .create_session(&u.id)
                .expect_err("the connection is gone");
            assert!(pg_error(&e).is_connection_error(), "{e}");
            // Every later call fails at once, without touching the dead connection.
            let again = tx.get_user(&u.id).expect_err("still gone");
            assert!(matches!(again, Error::Backend { .. }), "{again:?}");
            Err::<(), _>(e)
        })
        .expect_err("the transaction fails");
    assert!(pg_error(&err).is_connection_error(), "{err}");
    // The pool replaced the dead connection; nothing of the transaction was kept.
    assert_eq!(db.get_user_by_email("lost@example.com").expect("get"), None);
    let r = db.check_integrity().expect("check_integrity");
    assert!(r.is_clean(), "{r}");
    assert_eq!((r.users, r.credentials, r.sessions), (0, 0, 0));
}

#[test]
fn a_closure_that_ignores_a_database_error_cannot_commit() {
    let Some(url) = common::url("a_closure_that_ignores_a_database_error_cannot_commit") else {
        return;
    };
    let schemas = common::Schemas::new(&url);
    let app = unique_app();
    let db = common::builder(&url, &schemas.fresh("ignore"), common::clock())
        .application_name(&app)
        .connect()
        .expect("connect");
    let mut admin = common::admin(&url);
    let err = db
        .write(|tx| {
            tx.create_user(&NewUser::default())?;
            kill(&mut admin, &app, true);
            // Swallowed: the closure returns Ok anyway.
            let _ = tx.create_user(&NewUser::default());
            Ok(())
        })
        .expect_err("the commit is refused");
    assert!(matches!(err, Error::Backend { .. }), "{err:?}");
    assert_eq!(db.check_integrity().expect("check").users, 0);
}

#[test]
fn idle_connections_killed_by_the_server_are_replaced() {
    let Some(url) = common::url("idle_connections_killed_by_the_server_are_replaced") else {
        return;
    };
    let schemas = common::Schemas::new(&url);
    let schema = schemas.fresh("idle");
    let mut admin = common::admin(&url);

    // Validated on checkout (the default): the caller never sees the dead connection.
    let app = unique_app();
    let db = common::builder(&url, &schema, common::clock())
        .application_name(&app)
        .connect()
        .expect("connect");
    let u = db.create_user(&NewUser::default()).expect("create_user");
    assert!(kill(&mut admin, &app, false) >= 1);
    std::thread::sleep(StdDuration::from_millis(100));
    assert_eq!(
        db.get_user(&u.id).expect("get_user").map(|x| x.id),
        Some(u.id)
    );

    // Without validation: the one operation that meets the dead connection fails cleanly,
    // the next one gets a new connection.
    let app = unique_app();
    let db = common::builder(&url, &schema, common::clock())
        .application_name(&app)
        .pool_size(1)
        .validate_on_checkout(false)
        .connect()
        .expect("connect");
    assert!(kill(&mut admin, &app, false) >= 1);
    std::thread::sleep(StdDuration::from_millis(100));
    let e = db
        .create_session(&u.id)
        .expect_err("the pooled connection is dead");
    assert!(pg_error(&e).is_connection_error(), "{e}");
    db.create_session(&u.id).expect("a fresh connection");
    assert_eq!(
        db.list_sessions(&u.id).expect("list").len(),
        1,
        "the failed call wrote nothing"
    );
}

#[test]
fn statement_timeout_fails_cleanly() {
    let Some(url) = common::url("statement_timeout_fails_cleanly") else {
        return;
    };
    let schemas = common::Schemas::new(&url);
    let schema = schemas.fresh("timeout");
    let db = common::builder(&url, &schema, common::clock())
        .statement_timeout(Some(StdDuration::from_millis(300)))
        .connect()
        .expect("connect");
    let u = db
        .create_user(&NewUser {
            name: Some("before".into()),
            ..NewUser::default()
        })
        .expect("create_user");
    // Another client holds the user's row lock.
    let mut admin = common::admin(&url);
    let mut blocker = admin.transaction().expect("begin");
    blocker
        .execute(
            &format!("SELECT 1 FROM \"{schema}\".users WHERE id = $1 FOR UPDATE"),
            &[&u.id.0],
        )
        .expect("lock the row");
    let started = Instant::now();
    let e = db
        .update_user(&authdb::User {
            name: Some("after".into()),
            ..u.clone()
        })
        .expect_err("the lock wait is cancelled");
    assert!(pg_error(&e).is_timeout(), "{e}");
    assert!(started.elapsed() < StdDuration::from_secs(5));
    blocker.rollback().expect("rollback");
    assert_eq!(
        db.get_user(&u.id)
            .expect("get")
            .expect("user")
            .name
            .as_deref(),
        Some("before")
    );
    // The connection that timed out is usable again.
    db.create_session_with(&NewSession {
        user_id: u.id,
        session_token: "5f1e0c7a2b9d4e8f6a3c1b0d9e8f7a6b".into(),
        expires: db.now() + Duration::days(1),
    })
    .expect("create_session_with");
}

#[test]
fn pool_exhaustion_is_a_clear_error() {
    let Some(url) = common::url("pool_exhaustion_is_a_clear_error") else {
        return;
    };
    let schemas = common::Schemas::new(&url);
    let db = common::builder(&url, &schemas.fresh("pool"), common::clock())
        .pool_size(1)
        .checkout_timeout(StdDuration::from_millis(300))
        .connect()
        .expect("connect");
    let inner = db.clone();
    let err = db
        .write(|tx| {
            tx.create_user(&NewUser::default())?;
            // The only connection is held by this transaction.
            let e = inner
                .get_user_by_email("a@example.com")
                .expect_err("no connection free");
            assert!(pg_error(&e).is_pool_timeout(), "{e}");
            Err::<(), _>(e)
        })
        .expect_err("rolled back");
    assert!(pg_error(&err).is_pool_timeout());
    assert_eq!(db.check_integrity().expect("check").users, 0);
}

#[test]
fn unreachable_server_is_a_backend_error() {
    let started = Instant::now();
    let err = PgAuthDb::builder()
        .url("postgres://nobody@127.0.0.1:1/none")
        .connect_timeout(StdDuration::from_secs(1))
        .checkout_timeout(StdDuration::from_secs(2))
        .connect()
        .expect_err("nothing listens on port 1");
    assert!(
        matches!(
            err,
            Error::Backend {
                backend: "postgres",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(started.elapsed() < StdDuration::from_secs(10));
}

#[test]
fn bad_settings_are_invalid_config() {
    for b in [
        PgAuthDb::builder()
            .url("postgres://x@127.0.0.1/db")
            .schema("1bad"),
        PgAuthDb::builder()
            .url("postgres://x@127.0.0.1/db")
            .schema("a\"; drop"),
        PgAuthDb::builder()
            .url("postgres://x@127.0.0.1/db")
            .pool_size(0),
        PgAuthDb::builder()
            .url("postgres://x@127.0.0.1/db")
            .session_max_age(Duration::zero()),
        PgAuthDb::builder().url("not a url ::: ="),
        PgAuthDb::builder(),
    ] {
        let e = b.connect().expect_err("refused before connecting");
        assert!(matches!(e, Error::InvalidConfig(_)), "{e:?}");
    }
}

#[test]
fn a_given_connector_is_used() {
    let Some(url) = common::url("a_given_connector_is_used") else {
        return;
    };
    let schemas = common::Schemas::new(&url);
    // `NoTls` through the TLS hook: the same path a real TLS connector takes.
    let db = common::builder(&url, &schemas.fresh("tls"), common::clock())
        .tls(postgres::NoTls)
        .connect()
        .expect("connect");
    let u = db.create_user(&NewUser::default()).expect("create_user");
    assert!(db.get_user(&u.id).expect("get_user").is_some());
}
