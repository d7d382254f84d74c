//! Model-based randomized test (issue 2): random operation sequences run against authdb and
//! against a reference model of SPEC.md (`tests/model/`), compared after every step, with
//! `check_integrity()` clean after every step and the whole state compared at the end (before
//! and after reopening the file).
//!
//! `AUTHDB_MODEL_CASES` (default 256) and `AUTHDB_MODEL_OPS` (default 60) set the number of
//! cases and the longest case, for long runs:
//! `AUTHDB_MODEL_CASES=1000 cargo test --test model_based`.

mod common;
mod model;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use authdb::Adapter;
use chrono::{DateTime, Duration, Utc};
use parking_lot::Mutex;
use proptest::test_runner::{Config, FileFailurePersistence, TestRunner};

use model::{Change, Driver, Op};

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn store_agrees_with_model() {
    let cases = env_number("AUTHDB_MODEL_CASES", 256);
    let max_ops = env_number("AUTHDB_MODEL_OPS", 60);
    let mut runner = TestRunner::new(Config {
        cases: u32::try_from(cases).unwrap_or(u32::MAX),
        failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
        ..Config::default()
    });
    let stats = Mutex::new(model::driver::Stats::default());
    let runs = AtomicUsize::new(0);
    let started = Instant::now();
    let result = runner.run(&model::strategy::case(max_ops), |case| {
        let s = model::run(&case, common::fast_passwords());
        stats.lock().add(&s);
        runs.fetch_add(1, Ordering::Relaxed);
        Ok(())
    });
    if let Err(e) = result {
        panic!("the store and the model disagree: {e}");
    }
    let stats = stats.into_inner();
    // Shown with `--nocapture`: how much ran and which outcomes the cases reached.
    eprintln!(
        "model-based: {} cases, {} compared results in {:.1?}",
        runs.load(Ordering::Relaxed),
        stats.ops,
        started.elapsed()
    );
    for (outcome, n) in &stats.outcomes {
        eprintln!("  {n:7}  {outcome}");
    }
}

/// The byte decoder a fuzz target would use: arbitrary bytes become runnable cases (here
/// from a fixed pseudo-random stream) on which the store and the model agree.
#[test]
fn decoded_bytes_run_cleanly() {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut ops = 0;
    for len in (0..40).map(|i| i * 13) {
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                // xorshift64
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x.to_le_bytes()[3]
            })
            .collect();
        let case = model::ops::decode(&bytes);
        assert!(case.ops.len() <= bytes.len());
        ops += model::run(&case, common::fast_passwords()).ops;
    }
    assert!(ops > 0);
}

/// A driver with NextAuth's default session settings.
fn driver() -> Driver {
    Driver::new(0, common::fast_passwords())
}

fn run(d: &mut Driver, ops: &[Op]) {
    for op in ops {
        d.apply(op);
    }
}

fn create_user(email: u8) -> Op {
    Op::CreateUser {
        email: Some(email),
        name: None,
        verified: None,
    }
}

fn set_email(user: u8, email: u8) -> Op {
    Op::UpdateUser {
        user,
        email: Change::Set(email),
        name: Change::Keep,
        image: Change::Keep,
        verified: Change::Keep,
    }
}

fn t0() -> DateTime<Utc> {
    common::t0()
}

// EMAILS: 0 "a@x.io", 1 " A@x.io", 2 "b@x.io", 3 "B@X.IO ", 4 "c@x.io".
// `user: n` picks the n-th newest stored user (0 is the newest); `Driver::user_id(n)` is the
// n-th user created (0 is the first).

/// Two users swap emails: directly it is a conflict; through a third address in one
/// transaction it works, and the passwords follow the users, not the addresses.
#[test]
fn email_swap_between_two_users() {
    // A has "a@x.io", B (newer) "b@x.io".
    const A: u8 = 1;
    const B: u8 = 0;
    let mut d = driver();
    run(
        &mut d,
        &[
            create_user(0),
            create_user(2),
            Op::SetPassword {
                user: A,
                password: 0,
            },
            // "B@X.IO " is B's "b@x.io": taken.
            set_email(A, 3),
            // A direct swap is a conflict both ways (two operations: `begin_write`, then a
            // drop that keeps nothing).
            Op::Txn {
                ops: vec![set_email(A, 2), set_email(B, 0)],
                commit: false,
            },
            // Through "c@x.io", committed (three operations: `AuthDb::write`).
            Op::Txn {
                ops: vec![set_email(A, 4), set_email(B, 1), set_email(A, 3)],
                commit: true,
            },
            Op::GetUserByCredentials {
                email: 2,
                password: 0,
            },
            Op::Reopen,
        ],
    );
    let (u0, u1) = (d.user_id(0), d.user_id(1));
    let db = d.db();
    let a = db.get_user_by_email("a@x.io").unwrap().unwrap();
    assert_eq!((a.id, a.email.as_deref()), (u1, Some(" A@x.io")));
    let b = db.get_user_by_email("b@x.io").unwrap().unwrap();
    assert_eq!((b.id, b.email.as_deref()), (u0, Some("B@X.IO ")));
    assert!(db.get_user_by_email("c@x.io").unwrap().is_none());
    let creds = |email: &str| authdb::Credentials {
        email: email.into(),
        password: model::ops::password(0),
    };
    assert_eq!(
        db.get_user_by_credentials(&creds(" b@x.io"))
            .unwrap()
            .unwrap()
            .id,
        u0
    );
    assert!(
        db.get_user_by_credentials(&creds("a@x.io"))
            .unwrap()
            .is_none()
    );
    d.finish();
}

/// `update_session` at exactly `due` (created + update age) is not due; one microsecond
/// later it is. A forced update before that only moves `updated_at`.
#[test]
fn session_update_at_exactly_due() {
    let mut d = driver();
    let update = |force, stale| Op::UpdateSession {
        session: 0,
        force,
        stale,
    };
    run(
        &mut d,
        &[
            Op::CreateUser {
                email: None,
                name: None,
                verified: None,
            },
            Op::CreateSession { user: 0 },
            Op::Advance { step: 2 }, // 1 h
            Op::Advance { step: 3 }, // 23 h: now == due
            update(false, true),
            update(true, false),
        ],
    );
    let s = d.db().get_session(d.token(0)).unwrap().unwrap();
    assert_eq!(s.expires, t0() + Duration::days(30));
    assert_eq!(s.updated_at, t0() + Duration::hours(24));
    run(
        &mut d,
        &[
            update(false, false),
            Op::Advance { step: 1 }, // 1 µs: now > due
            update(false, true),
        ],
    );
    let s = d.db().get_session(d.token(0)).unwrap().unwrap();
    let now = t0() + Duration::hours(24) + Duration::microseconds(1);
    assert_eq!((s.expires, s.updated_at), (now + Duration::days(30), now));
    // At exactly the new expiry it is still valid; one microsecond later it is gone.
    run(
        &mut d,
        &[
            Op::Advance { step: 5 }, // 31 days: past
            Op::ListSessions { user: 0 },
            Op::UpdateSession {
                session: 0,
                force: true,
                stale: false,
            },
            Op::GetSession { session: 0 },
            Op::Purge,
        ],
    );
    assert!(d.db().list_sessions(&d.user_id(0)).unwrap().is_empty());
    d.finish();
}

/// A conflict inside a transaction fails that operation only; dropping the transaction
/// keeps nothing of the others, committing keeps all of them.
#[test]
fn txn_dropped_after_conflict() {
    let mut d = driver();
    // A sign-up flow: its new user is the newest (`user: 0`) inside the transaction.
    let flow = || {
        let user = 0;
        vec![
            create_user(2),
            create_user(1), // " A@x.io": taken by the first user
            Op::CreateSession { user },
            Op::LinkAccount {
                user,
                provider: 0,
                account: 0,
                provider_type: 0,
                refresh: Some(0),
                access: None,
                expires: None,
            },
            Op::SetPassword { user, password: 1 },
            Op::CreateVerification {
                identifier: 2,
                token: 0,
                secret: 0,
                send_ok: true,
                max_age: 0,
            },
        ]
    };
    run(&mut d, &[create_user(0)]);
    // Six operations: `begin_write` + drop.
    run(
        &mut d,
        &[Op::Txn {
            ops: flow(),
            commit: false,
        }],
    );
    {
        let db = d.db();
        assert!(db.get_user_by_email("b@x.io").unwrap().is_none());
        assert!(db.get_user(&d.user_id(1)).unwrap().is_none());
        assert!(db.get_session(d.token(0)).unwrap().is_none());
        assert!(
            db.get_user_by_provider_account_id("github", "1")
                .unwrap()
                .is_none()
        );
    }
    // The same flow committed (plus one operation: through `AuthDb::write`).
    let mut ops = flow();
    ops.push(Op::GetUserByEmail { email: 3 });
    run(&mut d, &[Op::Txn { ops, commit: true }, Op::Reopen]);
    {
        let db = d.db();
        let u = db.get_user_by_email("B@x.io").unwrap().unwrap();
        assert_eq!(u.id, d.user_id(2));
        assert_eq!(db.get_session(d.token(1)).unwrap().unwrap().user_id, u.id);
        assert_eq!(
            db.get_user_by_provider_account_id("github", "1")
                .unwrap()
                .unwrap()
                .id,
            u.id
        );
    }
    d.finish();
}

/// NextAuth's hash has no separator: ("t1", "xs") and ("t1x", "s") are one link. The second
/// request is a conflict while the first lives; the link matches only its own identifier
/// (normalized) and works once.
#[test]
fn verification_hash_collision_and_single_use() {
    let mut d = driver();
    let req = |identifier, token, secret| (identifier, token, secret);
    let create = |(identifier, token, secret), send_ok| Op::CreateVerification {
        identifier,
        token,
        secret,
        send_ok,
        max_age: 0,
    };
    let (first, twin) = (req(0, 0, 0), req(2, 1, 1));
    run(
        &mut d,
        &[
            create(first, true),
            create(twin, true), // same hash, other identifier: taken
            Op::GetVerification {
                identifier: 2,
                token: 1,
                secret: 1,
            }, // "b@x.io": no match
            Op::UseVerification {
                identifier: 1,
                token: 1,
                secret: 1,
            }, // " A@x.io" + the twin pair: the same link, used
            Op::UseVerification {
                identifier: 0,
                token: 0,
                secret: 0,
            }, // second use: none
            create(twin, false), // the sender fails: nothing kept
            Op::GetVerification {
                identifier: 2,
                token: 1,
                secret: 1,
            },
            create(twin, true),
            Op::Advance { step: 4 }, // 25 h: expired
            // The sender fails: the new request is removed again, and the expired one it
            // replaced stays gone (the driver compares stored row counts after each step).
            create(twin, false),
            create(first, true),
            Op::Purge,
        ],
    );
    let r = d
        .db()
        .get_verification_request(
            "a@x.io",
            "t1",
            "xs",
            &authdb::EmailProvider::new("e", |_| Ok(())),
        )
        .unwrap()
        .unwrap();
    assert_eq!(r.token, authdb::hash_verification_token("t1x", "s"));
    assert_eq!(r.expires, t0() + Duration::hours(25 + 24));
    d.finish();
}
