//! Rotating the encryption key: every sealed value moves to the new key, in batches; an
//! interrupted run resumes where it stopped; values under neither key are reported.

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};

use authdb::prelude::*;
use authdb::{AuthDb, Durability, EncryptionKey, NewAccount};
use common::{TempDb, fast_passwords, profile};

fn open_with(t: &TempDb, key: &EncryptionKey) -> AuthDb {
    AuthDb::builder()
        .clock(t.clock.clone())
        .password_params(fast_passwords())
        .encryption_key(key.clone())
        .durability(Durability::Immediate)
        .open(t.path())
        .unwrap()
}

fn fill(t: &TempDb, key: &EncryptionKey, n: usize) {
    let db = open_with(t, key);
    for chunk in (0..n).collect::<Vec<_>>().chunks(100) {
        db.write(|tx| {
            for &i in chunk {
                let u = tx.create_user(&profile(&format!("k{i}@rekey.test")))?;
                let mut extra = authdb::Extra::new();
                extra.insert("n".into(), serde_json::json!(i));
                tx.link_account(
                    &u.id,
                    &NewAccount {
                        provider_type: "oidc".into(),
                        provider_id: "google".into(),
                        provider_account_id: format!("g{i}"),
                        refresh_token: Some(format!("refresh-{i}")),
                        access_token: Some(format!("access-{i}")),
                        id_token: (i % 2 == 0).then(|| format!("id-{i}")),
                        extra,
                        ..NewAccount::default()
                    },
                )?;
                // An account without secrets needs nothing.
                tx.link_account(
                    &u.id,
                    &common::oauth_account("plain", &format!("p{i}"), None, None),
                )?;
            }
            Ok(())
        })
        .unwrap();
    }
}

fn assert_readable(t: &TempDb, key: &EncryptionKey, n: usize) {
    let db = open_with(t, key);
    for i in 0..n {
        let a = db.get_account("google", &format!("g{i}")).unwrap().unwrap();
        assert_eq!(
            a.access_token.as_deref(),
            Some(format!("access-{i}").as_str())
        );
        assert_eq!(
            a.refresh_token.as_deref(),
            Some(format!("refresh-{i}").as_str())
        );
        assert_eq!(a.extra["n"], serde_json::json!(i));
    }
    common::assert_clean(&db);
}

#[test]
fn rekey_moves_every_secret_and_resumes_after_an_interruption() {
    let n = authdb::REKEY_BATCH * 2 + 37;
    let t = TempDb::new();
    let old = EncryptionKey::from_bytes([1; 32]);
    let new = EncryptionKey::from_bytes([2; 32]);
    fill(&t, &old, n);

    // Interrupted after the first batch (a panic in the progress callback stands in for a
    // crash or Ctrl-C): that batch is committed, the rest is not touched.
    let r = catch_unwind(AssertUnwindSafe(|| {
        authdb::rekey_with_progress(t.path(), &old, &new, |done| {
            assert!(done < authdb::REKEY_BATCH as u64 + 1, "interrupted");
        })
    }));
    assert!(r.is_err());
    {
        let db = open_with(&t, &old);
        assert!(
            db.get_account("google", "g0").is_err(),
            "first batch not re-sealed"
        );
        assert!(
            db.get_account("google", &format!("g{}", n - 1))
                .unwrap()
                .is_some()
        );
    }
    let stats = authdb::rekey(t.path(), &old, &new).unwrap();
    assert!(stats.unreadable.is_empty(), "{stats:?}");
    assert!(
        stats.already_new > 0,
        "the resumed run redid the first batch: {stats:?}"
    );
    assert_eq!(stats.accounts, 2 * n as u64);
    assert_readable(&t, &new, n);
    // The old key no longer opens anything.
    let db = open_with(&t, &old);
    assert!(db.get_account("google", "g1").is_err());
    drop(db);
    // Again: nothing left to do.
    let again = authdb::rekey(t.path(), &old, &new).unwrap();
    assert_eq!(again.resealed, 0);
}

#[test]
fn values_under_neither_key_are_reported_and_left_alone() {
    let t = TempDb::new();
    let real = EncryptionKey::from_bytes([3; 32]);
    fill(&t, &real, 10);
    let stats = authdb::rekey(
        t.path(),
        &EncryptionKey::from_bytes([4; 32]),
        &EncryptionKey::from_bytes([5; 32]),
    )
    .unwrap();
    assert_eq!(stats.unreadable.len(), 10);
    assert_eq!(stats.resealed, 0);
    assert_readable(&t, &real, 10);
}

#[test]
fn rekey_refuses_a_file_held_by_a_running_app() {
    let t = TempDb::new();
    let key = EncryptionKey::from_bytes([6; 32]);
    fill(&t, &key, 1);
    let app = open_with(&t, &key);
    let e = authdb::rekey(t.path(), &key, &EncryptionKey::from_bytes([7; 32])).unwrap_err();
    assert!(matches!(e, authdb::Error::AlreadyOpen), "{e}");
    drop(app);
}
