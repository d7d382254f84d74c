//! Sessions: tokens, expiry, the update_session throttle, listing and deleting, purging.

mod common;

use std::sync::Arc;

use authdb::prelude::*;
use authdb::{AuthDb, Error, ManualClock, NewUser, Session, UserId};
use chrono::{DateTime, Duration, Utc};
use common::{TempDb, assert_clean, builder, mem_db, t0};

const MICRO: Duration = Duration::microseconds(1);

fn is_lower_hex_64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn user(db: &AuthDb) -> UserId {
    db.create_user(&NewUser::default()).unwrap().id
}

/// How many session rows the file holds (expired ones included).
fn stored_sessions(db: &AuthDb) -> u64 {
    let r = db.check_integrity().unwrap();
    assert!(r.is_clean(), "{r}");
    r.sessions
}

fn db_with(clock: &Arc<ManualClock>, max_age: Duration, update_age: Duration) -> AuthDb {
    builder(clock)
        .session_max_age(max_age)
        .session_update_age(update_age)
        .in_memory()
        .unwrap()
}

#[test]
fn create_session_tokens_and_default_expiry_survive_reopen() {
    let t = TempDb::new();
    let s = {
        let db = t.open();
        let uid = user(&db);
        t.clock.advance(Duration::seconds(10));
        let s = db.create_session(&uid).unwrap();
        assert_eq!(s.user_id, uid);
        assert_eq!(s.id.0.get_version_num(), 7);
        assert!(is_lower_hex_64(&s.session_token), "session token format");
        assert!(is_lower_hex_64(&s.access_token), "access token format");
        assert_ne!(s.session_token, s.access_token);
        let now = t0() + Duration::seconds(10);
        assert_eq!(s.expires, now + Duration::days(30));
        assert_eq!(s.created_at, now);
        assert_eq!(s.updated_at, now);
        assert_eq!(db.get_session(&s.session_token).unwrap().as_ref(), Some(&s));
        let other = db.create_session(&uid).unwrap();
        assert_ne!(other.session_token, s.session_token);
        assert_ne!(other.access_token, s.access_token);
        assert_eq!(stored_sessions(&db), 2);
        s
    };
    let db = t.open();
    assert_eq!(db.get_session(&s.session_token).unwrap(), Some(s));
    assert_eq!(stored_sessions(&db), 2);
}

#[test]
fn custom_max_age() {
    let clock = Arc::new(ManualClock::new(t0()));
    let db = db_with(&clock, Duration::hours(2), Duration::minutes(10));
    let s = db.create_session(&user(&db)).unwrap();
    assert_eq!(s.expires, t0() + Duration::hours(2));
    assert_eq!(
        db.get_session(&s.session_token).unwrap().unwrap().expires,
        t0() + Duration::hours(2)
    );
}

#[test]
fn create_session_for_missing_user_is_error_and_writes_nothing() {
    let (db, _clock) = mem_db();
    let ghost = UserId(uuid::Uuid::now_v7());
    let err = db.create_session(&ghost).unwrap_err();
    assert!(
        matches!(err, Error::UserNotFound(id) if id == ghost),
        "{err:?}"
    );
    assert_eq!(stored_sessions(&db), 0);
}

#[test]
fn valid_at_exactly_expires_gone_one_microsecond_later() {
    let t = TempDb::new();
    let (uid, s) = {
        let db = t.open();
        let uid = user(&db);
        let s = db.create_session(&uid).unwrap();
        t.clock.set(s.expires);
        assert_eq!(db.get_session(&s.session_token).unwrap().as_ref(), Some(&s));
        assert_eq!(db.list_sessions(&uid).unwrap().len(), 1);
        t.clock.advance(MICRO);
        // Still stored until someone looks at it.
        assert_eq!(stored_sessions(&db), 1);
        assert_eq!(db.get_session(&s.session_token).unwrap(), None);
        // ...and that look deleted it.
        assert_eq!(stored_sessions(&db), 0);
        assert!(db.list_sessions(&uid).unwrap().is_empty());
        (uid, s)
    };
    // Even with the clock moved back, the deleted row stays deleted after a reopen.
    t.clock.set(t0());
    let db = t.open();
    assert_eq!(stored_sessions(&db), 0);
    assert_eq!(db.get_session(&s.session_token).unwrap(), None);
    assert!(db.list_sessions(&uid).unwrap().is_empty());
}

#[test]
fn unknown_tokens_of_any_shape_are_none() {
    let (db, _clock) = mem_db();
    let s = db.create_session(&user(&db)).unwrap();
    let jwt = concat!(
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.",
        "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
    );
    let upper = s.session_token.to_uppercase();
    let long = "x".repeat(100_000);
    for probe in [
        "",
        " ",
        jwt,
        &"0".repeat(64),
        &upper,
        &s.access_token,
        &s.session_token[..63],
        &long,
        "\u{0}\u{ffff}",
    ] {
        assert_eq!(
            db.get_session(probe).unwrap(),
            None,
            "{} bytes",
            probe.len()
        );
        assert_eq!(
            db.update_session(
                &Session {
                    session_token: probe.to_owned(),
                    ..s.clone()
                },
                true
            )
            .unwrap(),
            None
        );
        db.delete_session(probe).unwrap();
    }
    // The real session is untouched by all of that.
    assert_eq!(db.get_session(&s.session_token).unwrap().as_ref(), Some(&s));
    assert_eq!(stored_sessions(&db), 1);
}

#[test]
fn update_session_not_due_writes_nothing() {
    let t = TempDb::new();
    let (uid, s) = {
        let db = t.open();
        let uid = user(&db);
        let s = db.create_session(&uid).unwrap();
        // Default update age 24 h: due = created + 24 h, strictly after.
        t.clock.set(t0() + Duration::hours(24));
        assert_eq!(db.update_session(&s, false).unwrap(), None);
        let listed = db.list_sessions(&uid).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].updated_at, t0());
        assert_eq!(listed[0].expires, s.expires);
        (uid, s)
    };
    let db = t.open();
    let stored = db.get_session(&s.session_token).unwrap().unwrap();
    assert_eq!(stored, s, "nothing was written");
    assert_eq!(db.list_sessions(&uid).unwrap()[0].updated_at, t0());
}

#[test]
fn update_session_due_extends_from_now() {
    let t = TempDb::new();
    let (s, extended) = {
        let db = t.open();
        let s = db.create_session(&user(&db)).unwrap();
        let now = t0() + Duration::hours(24) + MICRO;
        t.clock.set(now);
        let out = db.update_session(&s, false).unwrap().unwrap();
        assert_eq!(out.id, s.id);
        assert_eq!(out.session_token, s.session_token);
        assert_eq!(out.access_token, s.access_token);
        assert_eq!(out.created_at, s.created_at);
        assert_eq!(out.expires, now + Duration::days(30));
        assert_eq!(out.updated_at, now);
        assert_eq!(
            db.get_session(&s.session_token).unwrap().as_ref(),
            Some(&out)
        );
        // Just extended: not due again until another 24 h have passed.
        t.clock.advance(Duration::hours(1));
        assert_eq!(db.update_session(&out, false).unwrap(), None);
        assert_eq!(stored_sessions(&db), 1);
        (s, out)
    };
    let db = t.open();
    assert_eq!(db.get_session(&s.session_token).unwrap(), Some(extended));
    assert_eq!(stored_sessions(&db), 1);
}

#[test]
fn update_session_force_moves_only_updated_at() {
    let t = TempDb::new();
    let forced = {
        let db = t.open();
        let s = db.create_session(&user(&db)).unwrap();
        t.clock.advance(Duration::hours(2));
        let out = db.update_session(&s, true).unwrap().unwrap();
        assert_eq!(out.expires, s.expires, "force does not extend");
        assert_eq!(out.updated_at, t0() + Duration::hours(2));
        assert_eq!(out.created_at, s.created_at);
        assert_eq!(
            db.get_session(&s.session_token).unwrap().as_ref(),
            Some(&out)
        );
        out
    };
    let db = t.open();
    assert_eq!(db.get_session(&forced.session_token).unwrap(), Some(forced));
    assert_eq!(stored_sessions(&db), 1);
}

#[test]
fn update_session_due_and_forced_extends() {
    let (db, clock) = mem_db();
    let s = db.create_session(&user(&db)).unwrap();
    clock.advance(Duration::days(2));
    let out = db.update_session(&s, true).unwrap().unwrap();
    assert_eq!(out.expires, t0() + Duration::days(32));
}

#[test]
fn update_session_uses_the_stored_session_not_the_callers_copy() {
    let (db, clock) = mem_db();
    let s = db.create_session(&user(&db)).unwrap();

    // A caller copy claiming an old expiry (which would look due) changes nothing.
    clock.advance(Duration::hours(1));
    let stale_copy = Session {
        expires: t0(),
        updated_at: t0() - Duration::days(9),
        ..s.clone()
    };
    assert_eq!(db.update_session(&stale_copy, false).unwrap(), None);
    assert_eq!(db.get_session(&s.session_token).unwrap().as_ref(), Some(&s));

    // A caller copy claiming a far-future expiry (which would look not due) does not stop
    // a due extension, and its expiry is not written.
    let now = t0() + Duration::days(3);
    clock.set(now);
    let future_copy = Session {
        expires: t0() + Duration::days(3650),
        ..s.clone()
    };
    let out = db.update_session(&future_copy, false).unwrap().unwrap();
    assert_eq!(out.expires, now + Duration::days(30));

    // Force with a caller copy of another expiry keeps the stored expiry.
    clock.advance(Duration::minutes(1));
    let forced = db.update_session(&future_copy, true).unwrap().unwrap();
    assert_eq!(forced.expires, now + Duration::days(30));
    assert_eq!(
        db.get_session(&s.session_token).unwrap().unwrap().expires,
        now + Duration::days(30)
    );
    assert_clean(&db);
}

#[test]
fn expired_session_is_never_revived() {
    let t = TempDb::new();
    let s = {
        let db = t.open();
        let s = db.create_session(&user(&db)).unwrap();
        t.clock.set(s.expires + MICRO);
        assert_eq!(db.update_session(&s, true).unwrap(), None);
        assert_eq!(db.update_session(&s, false).unwrap(), None);
        // The expired row was removed by the update attempt.
        assert_eq!(stored_sessions(&db), 0);
        // Even a caller copy that claims a live expiry cannot bring it back.
        let lying = Session {
            expires: s.expires + Duration::days(30),
            ..s.clone()
        };
        assert_eq!(db.update_session(&lying, true).unwrap(), None);
        assert_eq!(stored_sessions(&db), 0);
        s
    };
    t.clock.set(t0());
    let db = t.open();
    assert_eq!(db.get_session(&s.session_token).unwrap(), None);
    assert_eq!(stored_sessions(&db), 0);
}

#[test]
fn expired_session_update_inside_transaction_also_deletes() {
    let (db, clock) = mem_db();
    let s = db.create_session(&user(&db)).unwrap();
    clock.set(s.expires + MICRO);
    let out = db.write(|tx| tx.update_session(&s, true)).unwrap();
    assert_eq!(out, None);
    assert_eq!(stored_sessions(&db), 0);
}

#[test]
fn deleted_session_is_not_recreated_by_update() {
    let (db, clock) = mem_db();
    let s = db.create_session(&user(&db)).unwrap();
    db.delete_session(&s.session_token).unwrap();
    clock.advance(Duration::days(2));
    assert_eq!(db.update_session(&s, true).unwrap(), None);
    assert_eq!(db.update_session(&s, false).unwrap(), None);
    assert_eq!(stored_sessions(&db), 0);
}

#[test]
fn update_age_zero_extends_on_every_later_call() {
    let clock = Arc::new(ManualClock::new(t0()));
    let db = db_with(&clock, Duration::hours(1), Duration::zero());
    let s = db.create_session(&user(&db)).unwrap();
    let mut last = s.clone();
    for step in 1..=3 {
        clock.advance(MICRO);
        let out = db.update_session(&last, false).unwrap().unwrap();
        let now = t0() + MICRO * step;
        assert_eq!(out.expires, now + Duration::hours(1), "step {step}");
        assert_eq!(out.updated_at, now);
        last = out;
    }
    assert_eq!(
        db.get_session(&s.session_token).unwrap().unwrap().expires,
        t0() + MICRO * 3 + Duration::hours(1)
    );
    assert_clean(&db);
}

#[test]
fn delete_session_is_idempotent() {
    let t = TempDb::new();
    let (keep, gone) = {
        let db = t.open();
        let uid = user(&db);
        let keep = db.create_session(&uid).unwrap();
        let gone = db.create_session(&uid).unwrap();
        db.delete_session(&gone.session_token).unwrap();
        db.delete_session(&gone.session_token).unwrap();
        assert_eq!(db.get_session(&gone.session_token).unwrap(), None);
        assert_eq!(stored_sessions(&db), 1);
        (keep, gone)
    };
    let db = t.open();
    assert_eq!(db.get_session(&gone.session_token).unwrap(), None);
    assert_eq!(db.get_session(&keep.session_token).unwrap(), Some(keep));
    assert_eq!(stored_sessions(&db), 1);
}

#[test]
fn list_sessions_oldest_first_without_expired() {
    let (db, clock) = mem_db();
    let uid = user(&db);
    let other = user(&db);
    let s1 = db.create_session(&uid).unwrap();
    clock.advance(Duration::days(10));
    let s2 = db.create_session(&uid).unwrap();
    clock.advance(Duration::days(1));
    let s3 = db.create_session(&uid).unwrap();
    db.create_session(&other).unwrap();

    let listed = db.list_sessions(&uid).unwrap();
    let ids: Vec<_> = listed.iter().map(|i| i.id).collect();
    assert_eq!(ids, vec![s1.id, s2.id, s3.id]);
    assert_eq!(listed[1].expires, s2.expires);
    assert_eq!(listed[1].created_at, s2.created_at);
    assert!(listed.iter().all(|i| i.user_id == uid));

    // s1 expires at t0 + 30 d.
    clock.set(s1.expires + MICRO);
    let ids: Vec<_> = db
        .list_sessions(&uid)
        .unwrap()
        .iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(ids, vec![s2.id, s3.id]);
    assert!(
        db.list_sessions(&UserId(uuid::Uuid::now_v7()))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn delete_sessions_signs_out_everywhere_for_one_user_only() {
    let t = TempDb::new();
    let (uid, other_session) = {
        let db = t.open();
        let uid = user(&db);
        let other = user(&db);
        let mine: Vec<_> = (0..3).map(|_| db.create_session(&uid).unwrap()).collect();
        let theirs = db.create_session(&other).unwrap();
        assert_eq!(db.delete_sessions(&uid).unwrap(), 3);
        for s in &mine {
            assert_eq!(db.get_session(&s.session_token).unwrap(), None);
        }
        assert_eq!(db.delete_sessions(&uid).unwrap(), 0);
        assert_eq!(stored_sessions(&db), 1);
        (uid, theirs)
    };
    let db = t.open();
    assert!(db.list_sessions(&uid).unwrap().is_empty());
    assert_eq!(
        db.get_session(&other_session.session_token).unwrap(),
        Some(other_session)
    );
    assert_eq!(stored_sessions(&db), 1);
}

#[test]
fn delete_session_by_id_only_for_its_owner() {
    let t = TempDb::new();
    let (a, b, a1, a2, b1) = {
        let db = t.open();
        let a = user(&db);
        let b = user(&db);
        let a1 = db.create_session(&a).unwrap();
        let a2 = db.create_session(&a).unwrap();
        let b1 = db.create_session(&b).unwrap();
        // a cannot sign out b's device.
        assert!(!db.delete_session_by_id(&a, &b1.id).unwrap());
        assert_eq!(
            db.get_session(&b1.session_token).unwrap().as_ref(),
            Some(&b1)
        );
        assert!(db.delete_session_by_id(&a, &a1.id).unwrap());
        assert!(!db.delete_session_by_id(&a, &a1.id).unwrap());
        assert_eq!(db.get_session(&a1.session_token).unwrap(), None);
        assert_eq!(stored_sessions(&db), 2);
        (a, b, a1, a2, b1)
    };
    let db = t.open();
    assert_eq!(db.get_session(&a1.session_token).unwrap(), None);
    assert_eq!(db.get_session(&a2.session_token).unwrap(), Some(a2.clone()));
    assert_eq!(db.get_session(&b1.session_token).unwrap(), Some(b1));
    let ids: Vec<_> = db.list_sessions(&a).unwrap().iter().map(|i| i.id).collect();
    assert_eq!(ids, vec![a2.id]);
    assert_eq!(db.list_sessions(&b).unwrap().len(), 1);
    assert_eq!(stored_sessions(&db), 2);
}

fn verification_count(db: &AuthDb) -> u64 {
    db.check_integrity().unwrap().verification_requests
}

#[test]
fn purge_expired_counts_and_leaves_live_rows() {
    let t = TempDb::new();
    let (provider, _sent) = common::recording_provider();
    let short = provider.clone().max_age(Duration::hours(1));
    let (live, expired_at_edge) = {
        let db = t.open();
        let uid = user(&db);
        let old: Vec<_> = (0..3).map(|_| db.create_session(&uid).unwrap()).collect();
        for i in 0..2 {
            db.create_verification_request(
                "a@example.com",
                "https://example.com/cb",
                &format!("6f6c642d746f6b656e2d6162636465660{i}"),
                "secret",
                &short,
            )
            .unwrap();
        }
        t.clock.advance(Duration::days(10));
        let live: Vec<_> = (0..2).map(|_| db.create_session(&uid).unwrap()).collect();
        db.create_verification_request(
            "a@example.com",
            "https://example.com/cb",
            "6e65772d746f6b656e2d616263646566",
            "secret",
            &provider,
        )
        .unwrap();
        // Nothing is expired yet at exactly the old sessions' expiry.
        // At exactly the old sessions' expiry they are still live; every request has expired
        // (the 1 h ones at t0 + 1 h, the 24 h one at t0 + 11 d).
        t.clock.set(old[0].expires);
        assert_eq!(
            db.purge_expired().unwrap(),
            authdb::PurgeStats {
                sessions: 0,
                verification_requests: 3,
                web_sessions: 0,
            }
        );
        assert_eq!(stored_sessions(&db), 5);
        assert_eq!(verification_count(&db), 0);

        t.clock.advance(MICRO);
        let stats = db.purge_expired().unwrap();
        assert_eq!(stats.sessions, 3);
        assert_eq!(stats.verification_requests, 0);
        assert_eq!(stored_sessions(&db), 2);
        assert_eq!(verification_count(&db), 0);
        for s in &live {
            assert_eq!(db.get_session(&s.session_token).unwrap().as_ref(), Some(s));
        }
        // A second purge finds nothing.
        assert_eq!(db.purge_expired().unwrap(), authdb::PurgeStats::default());
        (live, old[0].clone())
    };
    let db = t.open();
    assert_eq!(stored_sessions(&db), 2);
    assert_eq!(
        db.get_session(&expired_at_edge.session_token).unwrap(),
        None
    );
    for s in &live {
        assert_eq!(db.get_session(&s.session_token).unwrap().as_ref(), Some(s));
    }
}

#[test]
fn purge_leaves_unexpired_verification_requests() {
    let (db, clock) = mem_db();
    let (provider, _sent) = common::recording_provider();
    let short = provider.clone().max_age(Duration::minutes(5));
    db.create_verification_request(
        "a@example.com",
        "u",
        "746f6b2d70757267652d61626364ee31",
        "s",
        &short,
    )
    .unwrap();
    db.create_verification_request(
        "a@example.com",
        "u",
        "746f6b2d70757267652d61626364ee32",
        "s",
        &provider,
    )
    .unwrap();
    clock.advance(Duration::minutes(5) + MICRO);
    let stats = db.purge_expired().unwrap();
    assert_eq!(stats.verification_requests, 1);
    assert_eq!(stats.sessions, 0);
    assert_eq!(verification_count(&db), 1);
    assert!(
        db.get_verification_request(
            "a@example.com",
            "746f6b2d70757267652d61626364ee32",
            "s",
            &provider
        )
        .unwrap()
        .is_some()
    );
    assert_clean(&db);
}

#[test]
fn purge_handles_more_than_one_batch() {
    let (db, clock) = mem_db();
    let uid = user(&db);
    let n = authdb::PURGE_BATCH + 5;
    db.write(|tx| {
        for _ in 0..n {
            tx.create_session(&uid)?;
        }
        Ok(())
    })
    .unwrap();
    clock.advance(Duration::days(31));
    let live = db.create_session(&uid).unwrap();
    let stats = db.purge_expired().unwrap();
    assert_eq!(stats.sessions, n as u64);
    assert_eq!(stored_sessions(&db), 1);
    assert!(db.get_session(&live.session_token).unwrap().is_some());
}

#[test]
fn spawn_purge_task_purges_in_the_background() {
    let (db, clock) = mem_db();
    let uid = user(&db);
    let doomed = db.create_session(&uid).unwrap();
    clock.advance(Duration::days(20));
    let live = db.create_session(&uid).unwrap();
    clock.set(doomed.expires + MICRO);

    let task = db.spawn_purge_task(std::time::Duration::from_millis(5));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while task.stats().purged.sessions == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "purge task did nothing: {:?}",
            task.stats()
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let stats = task.stop();
    assert_eq!(stats.errors, 0);
    assert_eq!(stats.purged.sessions, 1);
    assert!(stats.runs >= 1);
    assert_eq!(stored_sessions(&db), 1);
    assert_eq!(db.get_session(&live.session_token).unwrap(), Some(live));
}

#[test]
fn out_of_range_expiry_is_invalid_input_not_a_panic() {
    let far: DateTime<Utc> = DateTime::<Utc>::MAX_UTC - Duration::days(1);
    let clock = Arc::new(ManualClock::new(far));
    let db = builder(&clock).in_memory().unwrap();
    let uid = user(&db);
    let err = db.create_session(&uid).unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidInput {
                field: "expires",
                problem: authdb::InputProblem::OutOfRange
            }
        ),
        "{err:?}"
    );
    assert_eq!(stored_sessions(&db), 0);
}
