//! Model-based randomized test (issue 2): random operation sequences run against authdb and
//! against a reference model of SPEC.md (`tests/model/`), compared after every step, with
//! `check_integrity()` clean after every step and the whole state compared at the end (before
//! and after reopening the file).
//!
//! `AUTHDB_MODEL_CASES` (default 256) and `AUTHDB_MODEL_OPS` (default 60) set the number of
//! cases and the longest case, for long runs:
//! `AUTHDB_MODEL_CASES=1000 cargo test --test model_based -- --nocapture`.
//!
//! The fuzz targets in `fuzz/` run the same operations, model and driver from arbitrary bytes
//! (`fuzz/src/lib.rs` also has the test that random bytes decode to runnable cases).

// tests/model/ops.rs derives `arbitrary::Arbitrary` under `cfg(fuzzing)`, which only the fuzz
// crate sets (fuzz/build.rs); here that cfg name is unknown to cargo's check-cfg.

mod common;
mod model;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use authdb::prelude::*;
use chrono::{DateTime, Duration, Utc};
use parking_lot::Mutex;
use proptest::test_runner::{Config, FileFailurePersistence, TestRunner};

use model::ops::{COUNTERS, SECRETS, TOKENS, session_token, sha256_hex, token_hash, v3_key};
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
        image: None,
        verified: None,
        extra: 0,
    }
}

fn set_email(user: u8, email: u8) -> Op {
    Op::UpdateUser {
        user,
        email: Change::Set(email),
        name: Change::Keep,
        image: Change::Keep,
        verified: Change::Keep,
        extra: Change::Keep,
    }
}

fn patch(user: u8, email: Change, extra: Option<u8>) -> Op {
    Op::PatchUser {
        user,
        email,
        name: Change::Keep,
        image: Change::Keep,
        verified: Change::Keep,
        extra,
    }
}

fn t0() -> DateTime<Utc> {
    common::t0()
}

// EMAILS: 0 "a@x.io", 1 " A@x.io", 2 "b@x.io", 3 "B@X.IO ", 4 "c@x.io", 5 "   ",
// 6 fullwidth "Ａ＠x.io" (= "a@x.io"), 7 Kelvin sign "K@x.io", 8 "k@x.io", 9 "a\u{200B}@x.io".
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
                image: None,
                verified: None,
                extra: 0,
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
            // Before the session: a password change ends the user's sessions.
            Op::SetPassword { user, password: 1 },
            Op::CreateSession { user },
            Op::LinkAccount {
                user,
                provider: 0,
                account: 0,
                provider_type: 0,
                refresh: Some(0),
                access: None,
                expires: None,
                token_type: None,
                scope: Some(1),
                id_token: None,
                session_state: None,
                extra: 1,
            },
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

/// NextAuth's hash has no separator: (`TOKENS[0]`, "a5") and (`TOKENS[0]` + "a", "5") are one
/// link. The second
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
            TOKENS[0],
            SECRETS[0],
            &authdb::EmailProvider::new("e", |_| Ok(())),
        )
        .unwrap()
        .unwrap();
    assert_eq!(
        r.token,
        authdb::hash_verification_token(TOKENS[1], SECRETS[1])
    );
    assert_eq!(r.expires, t0() + Duration::hours(25 + 24));
    d.finish();
}

/// The security stamp (docs/behaviour.md section 2), checked on the store's bytes directly:
/// replaced by `set_password`, `delete_sessions` and a change of the normalized email (set,
/// changed or cleared); kept by every other change, by a case-only or compatibility-form
/// spelling of the same address, by refused calls and by dropped transactions; never taken
/// from the caller.
#[test]
fn security_stamp_changes_exactly_when_credentials_change() {
    let mut d = driver();
    run(&mut d, &[create_user(0)]);
    let uid = d.user_id(0);
    let stamp = |d: &Driver| d.db().get_user(&uid).unwrap().unwrap().security_stamp;
    let mut last = stamp(&d);
    let mut step = |d: &mut Driver, op: Op, changes: bool| {
        let what = format!("{op:?}");
        run(d, &[op]);
        let now = stamp(d);
        assert_eq!(now != last, changes, "{what}: stamp changed?");
        last = now;
    };
    let name_only = Op::UpdateUser {
        user: 0,
        email: Change::Keep,
        name: Change::Set(1),
        image: Change::Set(0),
        verified: Change::Set(3),
        extra: Change::Set(2),
    };
    step(&mut d, name_only, false);
    step(&mut d, set_email(0, 1), false); // " A@x.io": the same address
    step(&mut d, set_email(0, 6), false); // fullwidth: the same address after NFKC
    step(&mut d, patch(0, Change::Keep, Some(3)), false);
    step(&mut d, set_email(0, 2), true);
    step(&mut d, patch(0, Change::Clear, None), true);
    step(&mut d, patch(0, Change::Clear, None), false); // already none
    step(&mut d, patch(0, Change::Set(7), None), true); // set from none
    step(&mut d, patch(0, Change::Set(8), None), false); // Kelvin sign: the same address
    step(&mut d, set_email(0, 9), false); // refused: invisible character
    step(
        &mut d,
        Op::SetPassword {
            user: 0,
            password: 2,
        },
        false, // refused: empty
    );
    step(
        &mut d,
        Op::SetPassword {
            user: 0,
            password: 0,
        },
        true,
    );
    step(&mut d, Op::DeleteSessions { user: 0 }, true);
    step(
        &mut d,
        Op::Txn {
            ops: vec![
                Op::SetPassword {
                    user: 0,
                    password: 1,
                },
                Op::DeleteSessions { user: 0 },
            ],
            commit: false,
        },
        false,
    );
    step(&mut d, Op::CreateSession { user: 0 }, false);
    step(&mut d, Op::Reopen, false);
    // `update_user` ignores the stamp the caller holds.
    let mut u = d.db().get_user(&uid).unwrap().unwrap();
    u.security_stamp = [0; 16];
    assert_eq!(d.db().update_user(&u).unwrap().security_stamp, last);
    d.finish();
}

/// `patch_user` changes only what it names and merges `extra` key by key (`null` removes).
#[test]
fn patch_user_merges_extra() {
    let mut d = driver();
    run(
        &mut d,
        &[
            Op::CreateUser {
                email: Some(0),
                name: Some(0),
                image: Some(1),
                verified: Some(2),
                extra: 2, // {"role": "user", "plan": 1}
            },
            patch(0, Change::Keep, Some(1)), // role: editor
            patch(0, Change::Keep, Some(4)), // plan: null, absent: null
            patch(0, Change::Keep, None),
            Op::PatchUser {
                user: 0,
                email: Change::Keep,
                name: Change::Clear,
                image: Change::Keep,
                verified: Change::Clear,
                extra: Some(3), // plan: 2, theme: dark
            },
            patch(0, Change::Keep, Some(2)), // role: null
            Op::Reopen,
        ],
    );
    let u = d.db().get_user(&d.user_id(0)).unwrap().unwrap();
    assert_eq!(
        serde_json::Value::Object(u.extra.clone()),
        serde_json::json!({"plan": 2, "theme": "dark"})
    );
    assert_eq!(
        (u.name, u.image.as_deref()),
        (None, Some("https://img.example/2.png"))
    );
    assert!(u.email_verified.is_none());
    d.finish();
}

/// Auth.js sessions: the caller's token (taken while its session is stored, live or expired)
/// and expiry (kept even if past); `set_session_expiry` neither revives nor deletes an expired
/// session; `delete_session_returning` returns it.
#[test]
fn caller_chosen_sessions() {
    let mut d = driver();
    let with = |token, expires| Op::CreateSessionWith {
        user: 0,
        token,
        expires,
    };
    run(
        &mut d,
        &[
            create_user(0),
            with(2, 4), // the UUID-shaped token, in an hour
            with(2, 5), // taken
            with(0, 1), // a microsecond ago: stored, expired
            with(0, 4), // taken: by an expired session
            Op::SetSessionExpiry {
                session: 128, // "session-a": expired, not revived
                expires: 6,
            },
            Op::SetSessionExpiry {
                session: 129, // the UUID-shaped one: to exactly now
                expires: 2,
            },
            Op::GetSession { session: 129 },
            Op::Advance { step: 1 },
            Op::GetSessionAndUser { session: 129 }, // expired now: deleted
            Op::DeleteSessionReturning { session: 128 }, // "session-a", expired: returned
            with(128, 5),                           // "session-a" again, free now
            with(3, 4),                             // empty: invalid
        ],
    );
    let s = d.db().get_session(&session_token(0)).unwrap().unwrap();
    assert_eq!(
        s.expires,
        t0() + Duration::days(2) + Duration::microseconds(1)
    );
    assert!(
        d.db()
            .get_session("8b0f2c4e-3a5d-4e7f-9a1b-2c3d4e5f6a7b")
            .unwrap()
            .is_none()
    );
    d.finish();
}

/// The two email sign-in APIs share one table: an Auth.js token hash of 64 hex digits (either
/// case) is the key of the v3 request with that hash; any other string is kept apart (the v3
/// pre-image `TOKENS[0] + SECRETS[0]` does not meet the v3 link). A live duplicate is taken, an expired one
/// replaced; use is single and needs the identifier.
#[test]
fn verification_apis_meet() {
    assert_eq!(
        token_hash(0),
        authdb::hash_verification_token(TOKENS[0], SECRETS[0]),
        "the model's hashes are NextAuth's"
    );
    assert_eq!(
        token_hash(3),
        authdb::hash_verification_token(TOKENS[2], SECRETS[1])
    );
    assert_eq!(
        sha256_hex(&v3_key(0, 0)),
        authdb::hash_verification_token(TOKENS[1], SECRETS[1])
    );
    let mut d = driver();
    let token = |identifier, hash, expires| Op::CreateVerificationToken {
        identifier,
        hash,
        expires,
    };
    let use_token = |identifier, hash| Op::UseVerificationToken { identifier, hash };
    run(
        &mut d,
        &[
            Op::CreateVerification {
                identifier: 0,
                token: 0,
                secret: 0,
                send_ok: true,
                max_age: 0,
            },
            token(2, 1, 4),  // its hash in upper case: taken
            token(0, 4, 4),  // the pre-image: another key
            use_token(2, 0), // wrong identifier: nothing
            use_token(6, 1), // fullwidth "a@x.io", upper case: the v3 link, used
            Op::GetVerification {
                identifier: 0,
                token: 1,
                secret: 1,
            },
            token(2, 3, 1), // hash of (TOKENS[2], SECRETS[1]), expired already
            Op::GetVerification {
                identifier: 3,
                token: 2,
                secret: 1,
            }, // expired: deleted
            token(2, 3, 2), // exactly now: live
            token(2, 3, 4), // taken
            Op::Advance { step: 1 },
            token(3, 3, 4), // the expired one is replaced
            Op::UseVerification {
                identifier: 2,
                token: 2,
                secret: 1,
            }, // made through Auth.js, used through v3
            token(9, 5, 4), // invisible character in the identifier: refused
            token(0, 7, 4), // empty hash: refused
            use_token(0, 4), // the pre-image token
            use_token(0, 4),
        ],
    );
    d.finish();
}

/// WebAuthn counters: a counter must increase unless stored and given are both zero; equal
/// is a clone's sign; unknown credentials, taken credential ids, the cascade of delete_user.
#[test]
fn authenticator_counters() {
    assert_eq!(COUNTERS[..2], [0, 1]);
    let mut d = driver();
    let passkey = |user, credential, counter| Op::CreateAuthenticator {
        user,
        credential,
        account: 0,
        key: 0,
        counter,
        device: 1,
        backed_up: false,
        transports: None,
    };
    let counter = |credential, counter| Op::UpdateAuthenticatorCounter {
        credential,
        counter,
    };
    run(
        &mut d,
        &[
            create_user(0),
            create_user(2),
            passkey(0, 0, 0),
            passkey(1, 0, 2), // taken
            passkey(1, 1, 2),
            counter(0, 0), // 0 → 0: a non-counting authenticator passes
            counter(0, 0),
            counter(0, 3),
            counter(0, 3), // equal: refused
            counter(0, 2), // lower: refused
            counter(0, 0), // back to zero: refused
            counter(0, 4), // up to u64::MAX
            counter(1, 2), // equal
            counter(2, 1), // unknown credential
            counter(3, 1), // empty credential id: unknown
            Op::ListAuthenticators { user: 0 },
            Op::DeleteUser { user: 0 },
            Op::ListAuthenticators { user: 128 },
            Op::GetAuthenticator { credential: 1 },
            Op::ListAuthenticators { user: 255 },
        ],
    );
    // `user: 0` is the newest user (the second): cred-A was theirs and went with them.
    assert!(d.db().get_authenticator("cred-A").unwrap().is_none());
    let b = d.db().get_authenticator("cred-B").unwrap().unwrap();
    assert_eq!((b.user_id, b.counter), (d.user_id(0), 2));
    assert!(
        d.db()
            .list_authenticators(&d.user_id(1))
            .unwrap()
            .is_empty()
    );
    d.finish();
}
