//! Online backup: a copy taken from one read snapshot while a writer keeps committing opens,
//! is integrity-clean, and holds exactly a prefix of the writer's commits.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use authdb::prelude::*;
use authdb::{AuthDb, Durability, NewUser};
use common::{TempDb, builder, oauth_account, profile};

fn export(db: &AuthDb) -> Vec<u8> {
    let mut out = Vec::new();
    db.export_to(&mut out).unwrap();
    out
}

#[test]
fn backup_of_a_quiet_database_is_an_exact_copy() {
    let t = TempDb::new();
    let db = t.open();
    for i in 0..200 {
        db.write(|tx| {
            let u = tx.create_user(&profile(&format!("u{i}@backup.test")))?;
            tx.link_account(
                &u.id,
                &oauth_account("github", &format!("{i}"), Some("r"), Some("a")),
            )?;
            tx.create_session(&u.id)
        })
        .unwrap();
    }
    let out = t.dir.path().join("copy.redb");
    let stats = db.backup_to(&out).unwrap();
    assert!(stats.entries >= 200 * 6, "{stats:?}");
    assert_eq!(stats.file_bytes, std::fs::metadata(&out).unwrap().len());
    let copy = builder(&t.clock).open(&out).unwrap();
    common::assert_clean(&copy);
    assert_eq!(export(&copy), export(&db));
    // A backup never overwrites.
    let e = db.backup_to(&out).unwrap_err();
    assert!(e.to_string().contains("already exists"), "{e}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}

#[test]
fn backup_while_a_writer_keeps_writing() {
    let t = TempDb::new();
    let db = builder(&t.clock)
        .durability(Durability::Immediate)
        .open(t.path())
        .unwrap();
    // Enough data that the copy takes a while.
    for i in 0..1500 {
        db.write(|tx| {
            let u = tx.create_user(&NewUser {
                name: Some(format!("seed {i} {}", "x".repeat(200))),
                ..profile(&format!("seed{i}@backup.test"))
            })?;
            tx.create_session(&u.id)
        })
        .unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let writer = {
        let (db, stop, written) = (db.clone(), stop.clone(), written.clone());
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                // One commit = a user, its account and its session.
                db.write(|tx| {
                    let u = tx.create_user(&profile(&format!("live{i}@backup.test")))?;
                    tx.link_account(
                        &u.id,
                        &oauth_account("gitlab", &format!("live{i}"), None, Some("tok")),
                    )?;
                    tx.create_session(&u.id)
                })
                .unwrap();
                i += 1;
                written.store(i, Ordering::Relaxed);
            }
            i
        })
    };
    while written.load(Ordering::Relaxed) < 20 {
        std::thread::yield_now();
    }
    let before = written.load(Ordering::Relaxed);
    let out = t.dir.path().join("online.redb");
    db.backup_to(&out).unwrap();
    let during = written.load(Ordering::Relaxed) - before;
    std::thread::sleep(std::time::Duration::from_millis(50));
    stop.store(true, Ordering::Relaxed);
    let total = writer.join().unwrap();
    let copy = builder(&t.clock).open(&out).unwrap();
    common::assert_clean(&copy);
    // Exactly a prefix of the writer's commits, each complete: user, account and session.
    let mut k = 0u64;
    while k < total {
        match copy
            .get_user_by_email(&format!("live{k}@backup.test"))
            .unwrap()
        {
            Some(u) => {
                assert_eq!(
                    copy.list_accounts(&u.id).unwrap().len(),
                    1,
                    "commit {k} is torn"
                );
                assert_eq!(
                    copy.list_sessions(&u.id).unwrap().len(),
                    1,
                    "commit {k} is torn"
                );
                k += 1;
            }
            None => break,
        }
    }
    for j in k..total {
        assert!(
            copy.get_user_by_email(&format!("live{j}@backup.test"))
                .unwrap()
                .is_none(),
            "commit {j} is in the copy but commit {k} is not"
        );
    }
    assert!(
        k >= before,
        "the copy misses commits made before it started"
    );
    let r = copy.check_integrity().unwrap();
    assert_eq!(r.users, 1500 + k);
    assert_eq!(r.accounts, k);
    println!(
        "writer committed {during} transactions while the backup ran; the copy holds {k} of {total}"
    );
}
