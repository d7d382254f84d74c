//! The optional session rules the conformance suite (which runs the defaults) does not reach:
//! a password change ending sessions or not, an absolute session lifetime, a per-user session
//! cap (also under concurrent sign-ins). Needs `AUTHDB_POSTGRES_URL`.

mod common;

use std::sync::{Arc, Barrier};

use authdb::prelude::*;
use authdb::{NewSession, NewUser, UserId};
use authdb_postgres::PgAuthDb;
use chrono::Duration;

/// A caller-chosen session token (32 hex characters: over the 120-bit floor).
const GIVEN: &str = "676976656e2d73657373696f6e2d3031";

fn user(db: &PgAuthDb) -> UserId {
    db.create_user(&NewUser::default()).expect("create_user").id
}

#[test]
fn password_change_ends_sessions_unless_configured_otherwise() {
    let Some(url) = common::url("password_change_ends_sessions_unless_configured_otherwise") else {
        return;
    };
    let schemas = common::Schemas::new(&url);
    let schema = schemas.fresh("pwsess");
    let ends = common::builder(&url, &schema, common::clock())
        .connect()
        .expect("connect");
    let u = user(&ends);
    let s = ends.create_session(&u).expect("create_session");
    let stamp = ends
        .get_user(&u)
        .expect("get")
        .expect("user")
        .security_stamp;
    ends.set_password(&u, "pw").expect("set_password");
    assert_eq!(
        ends.get_session(&s.session_token).expect("get_session"),
        None
    );
    assert_ne!(
        ends.get_user(&u)
            .expect("get")
            .expect("user")
            .security_stamp,
        stamp
    );

    let keeps = common::builder(&url, &schema, common::clock())
        .password_change_ends_sessions(false)
        .connect()
        .expect("connect");
    let s = keeps.create_session(&u).expect("create_session");
    let stamp = keeps
        .get_user(&u)
        .expect("get")
        .expect("user")
        .security_stamp;
    keeps.set_password(&u, "pw2").expect("set_password");
    assert_eq!(
        keeps.get_session(&s.session_token).expect("get_session"),
        Some(s)
    );
    assert_ne!(
        keeps
            .get_user(&u)
            .expect("get")
            .expect("user")
            .security_stamp,
        stamp,
        "the stamp changes either way"
    );
}

#[test]
fn absolute_session_lifetime_caps_every_expiry() {
    let Some(url) = common::url("absolute_session_lifetime_caps_every_expiry") else {
        return;
    };
    let schemas = common::Schemas::new(&url);
    let clock = common::clock();
    let db = common::builder(&url, &schemas.fresh("abs"), clock.clone())
        .session_update_age(Duration::zero())
        .absolute_session_lifetime(Duration::days(2))
        .connect()
        .expect("connect");
    let t0 = db.now();
    let u = user(&db);
    let s = db.create_session(&u).expect("create_session");
    assert_eq!(s.expires, t0 + Duration::days(2), "computed expiry capped");
    let given = db
        .create_session_with(&NewSession {
            user_id: u,
            session_token: GIVEN.into(),
            expires: t0 + Duration::days(9),
        })
        .expect("create_session_with");
    assert_eq!(given.expires, t0 + Duration::days(2), "given expiry capped");

    clock.advance(Duration::days(1));
    let extended = db
        .update_session(&s, false)
        .expect("update_session")
        .expect("written");
    assert_eq!(extended.expires, t0 + Duration::days(2), "extension capped");
    let moved = db
        .set_session_expiry(GIVEN, t0 + Duration::days(5))
        .expect("set_session_expiry")
        .expect("live");
    assert_eq!(moved.expires, t0 + Duration::days(2));
    let earlier = db
        .set_session_expiry(GIVEN, t0 + Duration::hours(30))
        .expect("set_session_expiry")
        .expect("live");
    assert_eq!(
        earlier.expires,
        t0 + Duration::hours(30),
        "earlier is kept as given"
    );

    clock.advance(Duration::days(1) + Duration::microseconds(1));
    assert_eq!(db.get_session(&s.session_token).expect("get_session"), None);
    assert_eq!(
        db.set_session_expiry(&s.session_token, t0 + Duration::days(3))
            .expect("set_session_expiry"),
        None,
        "not revived"
    );
}

#[test]
fn max_sessions_per_user_removes_the_oldest() {
    let Some(url) = common::url("max_sessions_per_user_removes_the_oldest") else {
        return;
    };
    let schemas = common::Schemas::new(&url);
    let clock = common::clock();
    let db = common::builder(&url, &schemas.fresh("cap"), clock.clone())
        .max_sessions_per_user(2)
        .pool_size(8)
        .connect()
        .expect("connect");
    let (u, other) = (user(&db), user(&db));
    let mut made = Vec::new();
    for _ in 0..3 {
        made.push(db.create_session(&u).expect("create_session"));
        clock.advance(Duration::seconds(1));
    }
    let other_session = db.create_session(&other).expect("create_session");
    let live: Vec<_> = db
        .list_sessions(&u)
        .expect("list_sessions")
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(live, vec![made[1].id, made[2].id], "the oldest went");
    assert!(
        db.get_session(&other_session.session_token)
            .expect("get")
            .is_some()
    );
    // A taken token is refused and removes nothing.
    let err = db
        .create_session_with(&NewSession {
            user_id: u,
            session_token: made[2].session_token.clone(),
            expires: db.now() + Duration::days(1),
        })
        .expect_err("taken");
    assert!(matches!(err, authdb::Error::SessionTokenTaken), "{err:?}");
    assert_eq!(db.list_sessions(&u).expect("list").len(), 2);

    // Eight sign-ins at once still leave at most two.
    let barrier = Arc::new(Barrier::new(8));
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let (db, barrier) = (db.clone(), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                db.create_session(&u)
            })
        })
        .collect();
    for h in handles {
        h.join().expect("thread").expect("create_session");
    }
    assert_eq!(db.list_sessions(&u).expect("list").len(), 2);
    let r = db.check_integrity().expect("check_integrity");
    assert!(r.is_clean(), "{r}");
    assert_eq!(r.sessions, 3, "two of the user's and the other user's one");
}
