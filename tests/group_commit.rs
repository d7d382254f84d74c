//! Group commit: concurrent single-operation writes share transactions, yet every caller gets
//! its own result, conflicts do not spoil their neighbours, and everything acknowledged is on
//! disk after a reopen.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Barrier};

use authdb::prelude::*;
use authdb::{Error, NewUser};
use common::TempDb;

#[test]
fn concurrent_writes_each_get_their_own_result() {
    let t = TempDb::new();
    let db = t.open();
    let threads = 8;
    let per_thread = 40;
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|i| {
            let db = db.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                let mut mine = Vec::new();
                let mut conflicts = 0;
                for j in 0..per_thread {
                    // Every thread also tries a shared email: exactly one of these wins per j.
                    match db.create_user(&NewUser {
                        email: Some(format!("SHARED{j}@example.com")),
                        ..NewUser::default()
                    }) {
                        Ok(_) => {}
                        Err(Error::EmailTaken) => conflicts += 1,
                        Err(e) => panic!("unexpected error {e}"),
                    }
                    let u = db
                        .create_user(&NewUser {
                            email: Some(format!("t{i}-{j}@example.com")),
                            ..NewUser::default()
                        })
                        .unwrap();
                    // A missing user is refused inside a batch without spoiling it.
                    let ghost = authdb::UserId(uuid::Uuid::now_v7());
                    assert!(matches!(
                        db.create_session(&ghost),
                        Err(Error::UserNotFound(id)) if id == ghost
                    ));
                    let s = db.create_session(&u.id).unwrap();
                    assert_eq!(s.user_id, u.id);
                    mine.push((u.id, s.session_token));
                }
                (mine, conflicts)
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut conflicts = 0;
    for h in handles {
        let (mine, c) = h.join().unwrap();
        all.extend(mine);
        conflicts += c;
    }
    assert_eq!(conflicts, (threads - 1) * per_thread);
    let tokens: HashSet<_> = all.iter().map(|(_, t)| t.clone()).collect();
    assert_eq!(tokens.len(), threads * per_thread);
    common::assert_clean(&db);
    let stats = db.write_stats();
    // Two creates, one refused and one accepted session per iteration.
    assert_eq!(stats.operations as usize, threads * per_thread * 4);
    assert!(stats.transactions >= 1 && stats.transactions <= stats.operations);
    println!(
        "group commit: {} operations in {} transactions",
        stats.operations, stats.transactions
    );
    drop(db);

    let db = t.open();
    for (uid, token) in &all {
        let s = db
            .get_session(token)
            .unwrap()
            .expect("acknowledged session survives reopen");
        assert_eq!(&s.user_id, uid);
    }
    for j in 0..per_thread {
        assert!(
            db.get_user_by_email(&format!("shared{j}@example.com"))
                .unwrap()
                .is_some()
        );
    }
    let report = db.check_integrity().unwrap();
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.users as usize, threads * per_thread + per_thread);
    assert_eq!(report.sessions as usize, threads * per_thread);
}

/// A clock that panics at its `n`th reading (1-based), once; otherwise a fixed time.
struct PanicOnce {
    calls: std::sync::atomic::AtomicU64,
    at: u64,
}

impl authdb::Clock for PanicOnce {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        let n = self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        assert!(n != self.at, "the clock failed inside an operation");
        common::t0()
    }
}

/// Queues `n` sign-ups behind a held write lock so that they run as one batch, after a first
/// batch of one; returns each caller's outcome (`Err` holds a panic message).
fn one_batch_of(
    db: &authdb::AuthDb,
    emails: Vec<String>,
) -> Vec<std::thread::Result<authdb::Result<authdb::User>>> {
    use std::time::Duration;
    let held = db.begin_write().unwrap();
    let first = {
        let db = db.clone();
        std::thread::spawn(move || db.create_user(&common::profile("first@example.com")))
    };
    // The first caller leads and drains the queue at once, then waits for the lock.
    std::thread::sleep(Duration::from_millis(100));
    let rest: Vec<_> = emails
        .into_iter()
        .map(|e| {
            let db = db.clone();
            std::thread::spawn(move || {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    db.create_user(&common::profile(&e))
                }))
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    drop(held);
    first.join().unwrap().unwrap();
    rest.into_iter().map(|h| h.join().unwrap()).collect()
}

#[test]
fn a_panicking_job_reaches_its_caller_only_and_costs_one_transaction() {
    let clock = Arc::new(PanicOnce {
        calls: std::sync::atomic::AtomicU64::new(0),
        // Reading 1 is the first batch's job; reading 3 is the second job of the big batch.
        at: 3,
    });
    let db = authdb::AuthDb::builder()
        .clock(clock)
        .password_params(common::fast_passwords())
        .in_memory()
        .unwrap();
    let before = db.write_stats();
    let emails: Vec<String> = (0..7).map(|i| format!("u{i}@example.com")).collect();
    let outcomes = one_batch_of(&db, emails);
    let panicked = outcomes.iter().filter(|o| o.is_err()).count();
    let ok = outcomes.iter().filter(|o| matches!(o, Ok(Ok(_)))).count();
    assert_eq!(
        (panicked, ok),
        (1, 6),
        "one caller sees the panic, the rest succeed"
    );
    let after = db.write_stats();
    assert_eq!(after.operations - before.operations, 8);
    // The batch of one, the abandoned batch of seven, and one rerun of the other six.
    assert_eq!(after.transactions - before.transactions, 3);
    assert!(db.check_integrity().unwrap().is_clean());
    assert_eq!(db.check_integrity().unwrap().users, 7);
}

#[test]
fn a_corrupt_record_fails_one_job_and_the_batch_reruns_once() {
    let t = TempDb::new();
    let victim = {
        let db = t.open();
        db.create_user(&common::profile("victim@example.com"))
            .unwrap()
            .id
    };
    // Damage the victim's record with raw redb: updating it is then a Corrupt error.
    {
        let raw = redb::Database::open(t.path()).unwrap();
        let wtx = raw.begin_write().unwrap();
        let users: redb::TableDefinition<[u8; 16], &[u8]> = redb::TableDefinition::new("users");
        wtx.open_table(users)
            .unwrap()
            .insert(victim.to_bytes(), &[2u8, 0xff][..])
            .unwrap();
        wtx.commit().unwrap();
    }
    let db = t.open();
    let before = db.write_stats();
    let held = db.begin_write().unwrap();
    let first = {
        let db = db.clone();
        std::thread::spawn(move || db.create_user(&common::profile("first@example.com")))
    };
    std::thread::sleep(std::time::Duration::from_millis(100));
    let mut handles = Vec::new();
    for i in 0..6 {
        let db = db.clone();
        handles.push(std::thread::spawn(move || {
            db.create_user(&common::profile(&format!("ok{i}@example.com")))
                .map(drop)
        }));
    }
    {
        let db = db.clone();
        handles.push(std::thread::spawn(move || db.delete_user(&victim)));
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    drop(held);
    first.join().unwrap().unwrap();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 6);
    assert!(
        matches!(results[6], Err(Error::Corrupt { .. })),
        "{:?}",
        results[6]
    );
    let after = db.write_stats();
    // 1 + (abandoned batch) + (one rerun) — not one transaction per job.
    assert!(
        after.transactions - before.transactions <= 3,
        "{before:?} -> {after:?}"
    );
}
