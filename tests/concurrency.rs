//! Races between threads sharing one `AuthDb`: uniqueness and single use hold.

mod common;

use std::sync::{Arc, Barrier};
use std::thread;

use authdb::prelude::*;
use authdb::{AuthDb, Error, NewUser};
use common::{TempDb, assert_clean, mem_db, oauth_account, profile, recording_provider};

/// A raw verification token of 32 hex characters (the 128-bit entropy floor).
const TOK: &str = "636c69636b2d746f6b656e2d30303031";

const THREADS: usize = 8;

/// Runs `f(i)` on `THREADS` threads released together; returns the results in thread order.
fn race<T: Send + 'static>(
    db: &AuthDb,
    f: impl Fn(&AuthDb, usize) -> T + Send + Sync + 'static,
) -> Vec<T> {
    let barrier = Arc::new(Barrier::new(THREADS));
    let f = Arc::new(f);
    let handles: Vec<_> = (0..THREADS)
        .map(|i| {
            let db = db.clone();
            let barrier = Arc::clone(&barrier);
            let f = Arc::clone(&f);
            thread::spawn(move || {
                barrier.wait();
                f(&db, i)
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

#[test]
fn auth_db_is_clone_send_sync() {
    fn assert_traits<T: Clone + Send + Sync + 'static>() {}
    // Checked at compile time: this does not build if a bound is missing.
    assert_traits::<AuthDb>();
}

#[test]
fn create_user_same_email_in_different_cases_exactly_one_wins() {
    let t = TempDb::new();
    let winner = {
        let db = t.open();
        let results = race(&db, |db, i| {
            let email = match i % 4 {
                0 => "race@example.com".to_owned(),
                1 => "RACE@EXAMPLE.COM".to_owned(),
                2 => format!("  Race@Example.com{}", " ".repeat(i)),
                _ => "\trace@EXAMPLE.com\n".to_owned(),
            };
            db.create_user(&NewUser {
                name: Some(format!("thread {i}")),
                ..profile(&email)
            })
        });
        let oks: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(oks.len(), 1, "exactly one create wins: {results:?}");
        let taken = results
            .iter()
            .filter(|r| matches!(r, Err(Error::EmailTaken)))
            .count();
        assert_eq!(taken, THREADS - 1, "{results:?}");
        let winner = oks[0].clone();
        assert_eq!(
            db.get_user_by_email("race@example.com").unwrap().as_ref(),
            Some(&winner)
        );
        let r = db.check_integrity().unwrap();
        assert!(r.is_clean(), "{r}");
        assert_eq!(r.users, 1);
        winner
    };
    let db = t.open();
    assert_eq!(
        db.get_user_by_email("RACE@example.com").unwrap(),
        Some(winner)
    );
    let r = db.check_integrity().unwrap();
    assert!(r.is_clean(), "{r}");
    assert_eq!(r.users, 1);
}

#[test]
fn use_verification_request_concurrently_exactly_one_some() {
    let t = TempDb::new();
    {
        let db = t.open();
        let (p, _sent) = recording_provider();
        let req = db
            .create_verification_request("click@example.com", "https://x/cb", TOK, "sec", &p)
            .unwrap();
        let results = race(&db, |db, i| {
            // Mail scanner and person, in assorted spellings of the address.
            let ident = if i % 2 == 0 {
                "click@example.com"
            } else {
                " CLICK@example.com"
            };
            db.use_verification_request(ident, TOK, "sec").unwrap()
        });
        let somes: Vec<_> = results.iter().flatten().collect();
        assert_eq!(somes.len(), 1, "{results:?}");
        assert_eq!(somes[0], &req);
        assert_eq!(db.check_integrity().unwrap().verification_requests, 0);
    }
    let db = t.open();
    assert_eq!(db.check_integrity().unwrap().verification_requests, 0);
    assert_eq!(
        db.use_verification_request("click@example.com", TOK, "sec")
            .unwrap(),
        None
    );
}

#[test]
fn link_same_provider_account_to_different_users_exactly_one_wins() {
    let t = TempDb::new();
    let db = t.open();
    let users: Vec<_> = (0..THREADS)
        .map(|_| db.create_user(&NewUser::default()).unwrap().id)
        .collect();
    let users = Arc::new(users);
    let u = Arc::clone(&users);
    let results = race(&db, move |db, i| {
        db.link_account(&u[i], &oauth_account("github", "shared", Some("r"), None))
    });
    let winners: Vec<_> = results
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.as_ref().ok().map(|a| (i, a.clone())))
        .collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    let (wi, acc) = &winners[0];
    assert_eq!(acc.user_id, users[*wi]);
    let conflicts = results
        .iter()
        .filter(|r| matches!(r, Err(Error::AccountLinkedToAnotherUser)))
        .count();
    assert_eq!(conflicts, THREADS - 1, "{results:?}");
    assert_eq!(
        db.get_user_by_provider_account_id("github", "shared")
            .unwrap()
            .unwrap()
            .id,
        users[*wi]
    );
    let r = db.check_integrity().unwrap();
    assert!(r.is_clean(), "{r}");
    assert_eq!(r.accounts, 1);
    drop(db);
    let db = t.open();
    assert_eq!(
        db.get_user_by_provider_account_id("github", "shared")
            .unwrap()
            .unwrap()
            .id,
        users[*wi]
    );
    assert_eq!(db.check_integrity().unwrap().accounts, 1);
}

#[test]
fn same_verification_token_created_concurrently_exactly_one_wins() {
    let (db, _clock) = mem_db();
    let results = race(&db, |db, i| {
        let (p, _sent) = recording_provider();
        db.create_verification_request(&format!("u{i}@example.com"), "https://x/cb", TOK, "sec", &p)
    });
    let oks = results.iter().filter(|r| r.is_ok()).count();
    let taken = results
        .iter()
        .filter(|r| matches!(r, Err(Error::VerificationTokenTaken)))
        .count();
    assert_eq!((oks, taken), (1, THREADS - 1), "{results:?}");
    assert_eq!(db.check_integrity().unwrap().verification_requests, 1);
}

#[test]
fn mixed_concurrent_work_keeps_indexes_consistent() {
    let (db, _clock) = mem_db();
    race(&db, |db, i| {
        for j in 0..20 {
            let u = db
                .create_user(&profile(&format!("u{i}-{j}@example.com")))
                .unwrap();
            db.link_account(
                &u.id,
                &oauth_account("github", &format!("{i}-{j}"), None, None),
            )
            .unwrap();
            let s = db.create_session(&u.id).unwrap();
            assert_eq!(
                db.get_session(&s.session_token).unwrap().unwrap().user_id,
                u.id
            );
            if j % 3 == 0 {
                db.delete_user(&u.id).unwrap();
            } else if j % 3 == 1 {
                db.delete_session(&s.session_token).unwrap();
            }
        }
    });
    let r = db.check_integrity().unwrap();
    assert!(r.is_clean(), "{r}");
    // Per thread: 20 users, 7 deleted (j = 0, 3, ..., 18); sessions kept for j % 3 == 2.
    assert_eq!(r.users, (THREADS * 13) as u64);
    assert_eq!(r.accounts, (THREADS * 13) as u64);
    assert_eq!(r.sessions, (THREADS * 6) as u64);
    assert_clean(&db);
}
