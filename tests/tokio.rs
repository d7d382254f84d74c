//! `authdb::tokio::AsyncAuthDb` (feature `tokio`): executor threads never wait for a commit,
//! every kind of operation works through it, and panics and transactions behave as on
//! `AuthDb`.
#![cfg(feature = "tokio")]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use authdb::prelude::*;
use authdb::tokio::AsyncAuthDb;
use authdb::{Credentials, NewAuthenticator, WebSession, WebSessionId};
use common::{TempDb, profile, recording_provider};

fn multi_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// How long each writer's `write` closure holds the write lock, standing in for a slow disk.
const HOLD: Duration = Duration::from_millis(20);
const WRITERS: usize = 8;
const ROUNDS: usize = 6;

/// Runs the workload (8 tasks, each `ROUNDS` × {a durable create_user, a durable
/// create_session, a durable `write` holding the lock `HOLD`}) while a timer task ticks
/// every millisecond; returns the longest gap between two ticks and the number of ticks.
/// `blocking` runs the same calls directly on the executor threads instead, as a control.
fn timer_gap_under_writes(blocking: bool) -> (Duration, u64) {
    let tmp = TempDb::new();
    let db = AsyncAuthDb::new(tmp.open()); // durable commits (Durability::Immediate), on a file
    let rt = multi_thread();
    let (gap, ticks) = rt.block_on(async move {
        let stop = Arc::new(AtomicBool::new(false));
        let ticker = {
            let stop = stop.clone();
            tokio::spawn(async move {
                let (mut max, mut ticks) = (Duration::ZERO, 0u64);
                let mut last = Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    let now = Instant::now();
                    max = max.max(now - last);
                    last = now;
                    ticks += 1;
                }
                (max, ticks)
            })
        };
        // Let the ticker start.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let mut writers = Vec::new();
        for w in 0..WRITERS {
            let db = db.clone();
            writers.push(tokio::spawn(async move {
                for r in 0..ROUNDS {
                    let p = profile(&format!("w{w}r{r}@example.com"));
                    let hold = move |tx: &mut authdb::WriteTxn<'_>| {
                        std::thread::sleep(HOLD);
                        tx.create_user(&profile(&format!("h{w}r{r}@example.com")))
                    };
                    if blocking {
                        let inner = db.inner();
                        let u = inner.create_user(&p).unwrap();
                        inner.create_session(&u.id).unwrap();
                        inner.write(hold).unwrap();
                    } else {
                        let u = db.create_user(&p).await.unwrap();
                        db.create_session(&u.id).await.unwrap();
                        db.write(hold).await.unwrap();
                    }
                }
            }));
        }
        for w in writers {
            w.await.unwrap();
        }
        stop.store(true, Ordering::Relaxed);
        let out = ticker.await.unwrap();
        let report = db.check_integrity().await.unwrap();
        assert!(report.is_clean(), "{report}");
        assert_eq!(report.users, (WRITERS * ROUNDS * 2) as u64);
        assert_eq!(report.sessions, (WRITERS * ROUNDS) as u64);
        out
    });
    (gap, ticks)
}

#[test]
fn executor_threads_never_block_on_a_commit() {
    let (gap, ticks) = timer_gap_under_writes(false);
    let (control_gap, control_ticks) = timer_gap_under_writes(true);
    eprintln!(
        "timer max gap: {gap:?} over {ticks} ticks through AsyncAuthDb; \
         {control_gap:?} over {control_ticks} ticks with the same calls made on the executor"
    );
    // The control shows the probe sees blocking: with both executor threads stuck in
    // commits, the timer misses at least one whole lock hold.
    assert!(control_gap >= HOLD, "control gap {control_gap:?}");
    // Through AsyncAuthDb the timer keeps ticking: its longest gap stays far below what a
    // blocked executor shows (the control waits for many commits in a row). The bound leaves
    // room for the scheduling noise of a busy 2-core machine.
    assert!(
        gap < Duration::from_millis(100) && gap * 4 < control_gap,
        "timer stalled for {gap:?} (control {control_gap:?})"
    );
}

#[test]
fn every_kind_of_operation_works_through_the_async_handle() {
    let tmp = TempDb::new();
    let db: AsyncAuthDb = tmp.open().into();
    let rt = multi_thread();
    rt.block_on(async {
        // Users and passwords.
        let user = db.create_user(&profile("ada@example.com")).await.unwrap();
        db.set_password(&user.id, "correct horse").await.unwrap();
        let creds = Credentials {
            email: "ADA@example.com".into(),
            password: "correct horse".into(),
        };
        assert_eq!(
            db.get_user_by_credentials(&creds)
                .await
                .unwrap()
                .unwrap()
                .id,
            user.id
        );
        assert!(db.get_user_by_email("nobody@x.io").await.unwrap().is_none());

        // Accounts.
        let acct = common::oauth_account("github", "42", Some("r"), Some("a"));
        db.link_account(&user.id, &acct).await.unwrap();
        assert_eq!(
            db.get_user_by_account("github", "42")
                .await
                .unwrap()
                .unwrap()
                .id,
            user.id
        );
        assert_eq!(db.list_accounts(&user.id).await.unwrap().len(), 1);

        // Sessions.
        let s = db.create_session(&user.id).await.unwrap();
        let (found, u) = db
            .get_session_and_user(&s.session_token)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((found.id, u.id), (s.id, user.id));
        assert!(db.update_session(&s, true).await.unwrap().is_some());
        assert_eq!(db.list_sessions(&user.id).await.unwrap().len(), 1);

        // Email sign-in.
        let (provider, sent) = recording_provider();
        db.create_verification_request(
            "ada@example.com",
            "https://x/cb",
            "746f6b2d746f6b696f2d616263646566",
            "sec",
            &provider,
        )
        .await
        .unwrap();
        assert_eq!(sent.lock().len(), 1);
        assert!(
            db.use_verification_request(
                "ada@example.com",
                "746f6b2d746f6b696f2d616263646566",
                "sec"
            )
            .await
            .unwrap()
            .is_some()
        );

        // Passkeys.
        db.create_authenticator(&NewAuthenticator {
            credential_id: "cred".into(),
            user_id: user.id,
            provider_account_id: "cred".into(),
            credential_public_key: "pk".into(),
            counter: 0,
            credential_device_type: "singleDevice".into(),
            credential_backed_up: false,
            transports: None,
        })
        .await
        .unwrap();
        assert_eq!(
            db.update_authenticator_counter("cred", 5)
                .await
                .unwrap()
                .counter,
            5
        );

        // Web sessions.
        let ws = WebSession {
            id: WebSessionId::from_bytes([9; 16]),
            user_id: Some(user.id),
            expires: db.now() + chrono::Duration::hours(1),
            data: b"{}".to_vec(),
        };
        assert!(db.web_session_create(&ws).await.unwrap());
        assert_eq!(db.web_session_load(&ws.id).await.unwrap(), Some(ws.clone()));
        assert_eq!(
            db.web_session_list_for_user(&user.id).await.unwrap().len(),
            1
        );

        // A transaction, and a generic blocking closure.
        let uid = user.id;
        let removed = db
            .write(move |tx| {
                let n = tx.delete_sessions(&uid)?;
                Ok(n + tx.web_session_delete_for_user(&uid)?)
            })
            .await
            .unwrap();
        assert_eq!(removed, 2);
        let emails = db
            .run(move |db| Ok(db.get_user(&uid)?.and_then(|u| u.email)))
            .await
            .unwrap();
        assert_eq!(emails.as_deref(), Some("ada@example.com"));

        // Housekeeping.
        db.purge_expired().await.unwrap();
        assert_eq!(db.web_session_delete_expired(0).await.unwrap(), 0);
        assert!(db.check_integrity().await.unwrap().is_clean());
        db.delete_user(&user.id).await.unwrap();
        assert!(db.get_user(&user.id).await.unwrap().is_none());
    });
    // Back to the blocking handle: the only one left, so compaction may run.
    let mut inner = db.into_inner();
    inner.compact().unwrap();
}

#[test]
fn a_current_thread_runtime_works_too() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let (db, _clock) = common::mem_db();
    let db = AsyncAuthDb::new(db);
    rt.block_on(async {
        let u = db.create_user(&profile("a@b.c")).await.unwrap();
        assert_eq!(db.get_user(&u.id).await.unwrap().unwrap().id, u.id);
    });
}

#[test]
fn a_panic_in_a_blocking_call_reaches_the_awaiting_task() {
    let rt = multi_thread();
    let (db, _clock) = common::mem_db();
    let db = AsyncAuthDb::new(db);
    let outcome = rt.block_on(async move {
        tokio::spawn(async move { db.run(|_| -> authdb::Result<()> { panic!("boom") }).await })
            .await
    });
    let err = outcome.unwrap_err();
    assert!(err.is_panic());
}

#[test]
fn the_handle_is_clone_send_sync_and_static() {
    fn check<T: Clone + Send + Sync + 'static>() {}
    check::<AsyncAuthDb>();
}
