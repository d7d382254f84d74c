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
