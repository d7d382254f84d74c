//! Accounts: link, re-link (token refresh), conflicts, lookups, unlink.

mod common;

use authdb::prelude::*;
use authdb::{Error, NewAccount, NewUser, UserId};
use chrono::{Duration, TimeZone, Utc};
use common::{TempDb, assert_clean, mem_db, oauth_account, profile, t0};

#[test]
fn link_account_stores_everything_and_survives_reopen() {
    let t = TempDb::new();
    let expires = Utc.with_ymd_and_hms(2030, 1, 1, 20, 0, 0).unwrap();
    let (uid, acc) = {
        let db = t.open();
        let u = db.create_user(&profile("ada@example.com")).unwrap();
        t.clock.advance(Duration::seconds(3));
        let acc = db
            .link_account(
                &u.id,
                &NewAccount {
                    access_token_expires: Some(expires),
                    ..oauth_account("github", "4242", Some("refresh-1"), Some("access-1"))
                },
            )
            .unwrap();
        assert_eq!(acc.id.0.get_version_num(), 7);
        assert_eq!(acc.user_id, u.id);
        assert_eq!(acc.provider_type, "oauth");
        assert_eq!(acc.provider_id, "github");
        assert_eq!(acc.provider_account_id, "4242");
        assert_eq!(acc.refresh_token.as_deref(), Some("refresh-1"));
        assert_eq!(acc.access_token.as_deref(), Some("access-1"));
        assert_eq!(acc.access_token_expires, Some(expires));
        assert_eq!(acc.created_at, t0() + Duration::seconds(3));
        assert_eq!(acc.updated_at, t0() + Duration::seconds(3));
        assert_eq!(
            db.get_user_by_provider_account_id("github", "4242")
                .unwrap()
                .unwrap()
                .id,
            u.id
        );
        assert_clean(&db);
        (u.id, acc)
    };
    let db = t.open();
    assert_eq!(
        db.get_user_by_provider_account_id("github", "4242")
            .unwrap()
            .unwrap()
            .id,
        uid
    );
    // A re-link with `None` tokens returns the stored record unchanged but for updated_at:
    // that shows every stored field survived the reopen.
    t.clock.advance(Duration::seconds(1));
    let again = db
        .link_account(&uid, &oauth_account("github", "4242", None, None))
        .unwrap();
    assert_eq!(again.id, acc.id);
    assert_eq!(again.refresh_token, acc.refresh_token);
    assert_eq!(again.access_token, acc.access_token);
    assert_eq!(again.access_token_expires, acc.access_token_expires);
    assert_eq!(again.created_at, acc.created_at);
    assert_eq!(again.updated_at, t0() + Duration::seconds(4));
    assert_clean(&db);
}

#[test]
fn link_to_unknown_user_is_user_not_found_and_writes_nothing() {
    let (db, _clock) = mem_db();
    let ghost = UserId(uuid::Uuid::now_v7());
    let err = db
        .link_account(&ghost, &oauth_account("github", "1", Some("r"), None))
        .unwrap_err();
    assert!(
        matches!(err, Error::UserNotFound(id) if id == ghost),
        "{err:?}"
    );
    assert_eq!(
        db.get_user_by_provider_account_id("github", "1").unwrap(),
        None
    );
    let r = db.check_integrity().unwrap();
    assert!(r.is_clean(), "{r}");
    assert_eq!(r.accounts, 0);

    // A deleted user is unknown too.
    let u = db.create_user(&NewUser::default()).unwrap();
    db.delete_user(&u.id).unwrap();
    assert!(matches!(
        db.link_account(&u.id, &oauth_account("github", "1", None, None)),
        Err(Error::UserNotFound(_))
    ));
    assert_eq!(db.check_integrity().unwrap().accounts, 0);
}

#[test]
fn relink_same_user_refreshes_tokens() {
    let t = TempDb::new();
    let uid = {
        let db = t.open();
        let u = db.create_user(&NewUser::default()).unwrap();
        let first = db
            .link_account(
                &u.id,
                &oauth_account("google", "g1", Some("r1"), Some("a1")),
            )
            .unwrap();
        t.clock.advance(Duration::hours(1));
        let new_exp = t0() + Duration::hours(2);
        let second = db
            .link_account(
                &u.id,
                &NewAccount {
                    access_token_expires: Some(new_exp),
                    ..oauth_account("google", "g1", Some("r2"), Some("a2"))
                },
            )
            .unwrap();
        assert_eq!(second.id, first.id, "the same account row is updated");
        assert_eq!(second.refresh_token.as_deref(), Some("r2"));
        assert_eq!(second.access_token.as_deref(), Some("a2"));
        assert_eq!(second.access_token_expires, Some(new_exp));
        assert_eq!(second.created_at, first.created_at);
        assert_eq!(second.updated_at, t0() + Duration::hours(1));

        // Google sends no refresh token after the first consent: the stored one is kept,
        // while the new access token replaces the old one.
        t.clock.advance(Duration::hours(1));
        let third = db
            .link_account(&u.id, &oauth_account("google", "g1", None, Some("a3")))
            .unwrap();
        assert_eq!(third.id, first.id);
        assert_eq!(third.refresh_token.as_deref(), Some("r2"));
        assert_eq!(third.access_token.as_deref(), Some("a3"));
        assert_eq!(third.access_token_expires, None);
        assert_eq!(third.updated_at, t0() + Duration::hours(2));
        let r = db.check_integrity().unwrap();
        assert!(r.is_clean(), "{r}");
        assert_eq!(r.accounts, 1);
        u.id
    };
    // What is stored is the third state: a None-token re-link after reopen echoes it.
    let db = t.open();
    let echo = db
        .link_account(&uid, &oauth_account("google", "g1", None, None))
        .unwrap();
    assert_eq!(echo.refresh_token.as_deref(), Some("r2"));
    assert_eq!(echo.access_token.as_deref(), Some("a3"));
    assert_eq!(db.check_integrity().unwrap().accounts, 1);
    assert_clean(&db);
}

#[test]
fn pair_linked_to_another_user_is_conflict_and_nothing_changes() {
    let t = TempDb::new();
    let (a, b) = {
        let db = t.open();
        let a = db.create_user(&profile("a@example.com")).unwrap();
        let b = db.create_user(&profile("b@example.com")).unwrap();
        let acc = db
            .link_account(&a.id, &oauth_account("github", "7", Some("ra"), Some("aa")))
            .unwrap();
        t.clock.advance(Duration::minutes(1));
        let err = db
            .link_account(&b.id, &oauth_account("github", "7", Some("rb"), Some("ab")))
            .unwrap_err();
        assert!(matches!(err, Error::AccountLinkedToAnotherUser), "{err:?}");
        assert!(err.is_conflict());
        assert_eq!(
            db.get_user_by_provider_account_id("github", "7")
                .unwrap()
                .unwrap()
                .id,
            a.id
        );
        // The owner's tokens were not touched: a None re-link echoes the stored row.
        let echo = db
            .link_account(&a.id, &oauth_account("github", "7", None, None))
            .unwrap();
        assert_eq!(echo.id, acc.id);
        assert_eq!(echo.refresh_token.as_deref(), Some("ra"));
        assert_eq!(echo.access_token.as_deref(), Some("aa"));
        let r = db.check_integrity().unwrap();
        assert!(r.is_clean(), "{r}");
        assert_eq!(r.accounts, 1);
        (a.id, b.id)
    };
    let db = t.open();
    assert_eq!(
        db.get_user_by_provider_account_id("github", "7")
            .unwrap()
            .unwrap()
            .id,
        a
    );
    // b can still link a different account of the same provider.
    db.link_account(&b, &oauth_account("github", "8", None, None))
        .unwrap();
    assert_eq!(db.check_integrity().unwrap().accounts, 2);
    assert_clean(&db);
}

#[test]
fn two_accounts_of_one_provider_on_one_user() {
    let (db, _clock) = mem_db();
    let u = db.create_user(&NewUser::default()).unwrap();
    let a1 = db
        .link_account(&u.id, &oauth_account("github", "work", None, None))
        .unwrap();
    let a2 = db
        .link_account(&u.id, &oauth_account("github", "personal", None, None))
        .unwrap();
    assert_ne!(a1.id, a2.id);
    for id in ["work", "personal"] {
        assert_eq!(
            db.get_user_by_provider_account_id("github", id)
                .unwrap()
                .unwrap()
                .id,
            u.id
        );
    }
    let r = db.check_integrity().unwrap();
    assert!(r.is_clean(), "{r}");
    assert_eq!(r.accounts, 2);
}

#[test]
fn provider_lookup_is_exact_on_both_parts() {
    let (db, _clock) = mem_db();
    let u = db.create_user(&NewUser::default()).unwrap();
    db.link_account(&u.id, &oauth_account("github", "123", None, None))
        .unwrap();
    assert!(
        db.get_user_by_provider_account_id("github", "123")
            .unwrap()
            .is_some()
    );
    assert_eq!(
        db.get_user_by_provider_account_id("github", "1234")
            .unwrap(),
        None
    );
    assert_eq!(
        db.get_user_by_provider_account_id("gitlab", "123").unwrap(),
        None
    );
    assert_eq!(
        db.get_user_by_provider_account_id("GitHub", "123").unwrap(),
        None
    );
    // The pair is a tuple key: no ambiguity from concatenation.
    assert_eq!(
        db.get_user_by_provider_account_id("githu", "b123").unwrap(),
        None
    );
    assert_eq!(db.get_user_by_provider_account_id("", "").unwrap(), None);
}

#[test]
fn unlink_checks_ownership_and_is_idempotent() {
    let t = TempDb::new();
    let (a, b) = {
        let db = t.open();
        let a = db.create_user(&NewUser::default()).unwrap();
        let b = db.create_user(&NewUser::default()).unwrap();
        db.link_account(&a.id, &oauth_account("github", "1", None, None))
            .unwrap();
        db.link_account(&a.id, &oauth_account("google", "1", None, None))
            .unwrap();

        // b cannot unlink a's account: a no-op, not an error.
        db.unlink_account(&b.id, "github", "1").unwrap();
        assert_eq!(
            db.get_user_by_provider_account_id("github", "1")
                .unwrap()
                .unwrap()
                .id,
            a.id
        );
        assert_eq!(db.check_integrity().unwrap().accounts, 2);

        db.unlink_account(&a.id, "github", "1").unwrap();
        assert_eq!(
            db.get_user_by_provider_account_id("github", "1").unwrap(),
            None
        );
        // The other account of a stays.
        assert_eq!(
            db.get_user_by_provider_account_id("google", "1")
                .unwrap()
                .unwrap()
                .id,
            a.id
        );
        db.unlink_account(&a.id, "github", "1").unwrap();
        db.unlink_account(&a.id, "nobody", "nothing").unwrap();
        let r = db.check_integrity().unwrap();
        assert!(r.is_clean(), "{r}");
        assert_eq!(r.accounts, 1);
        (a.id, b.id)
    };
    let db = t.open();
    assert_eq!(
        db.get_user_by_provider_account_id("github", "1").unwrap(),
        None
    );
    assert_eq!(db.check_integrity().unwrap().accounts, 1);
    // After unlinking, the pair is free: b may link it now.
    db.link_account(&b, &oauth_account("github", "1", None, None))
        .unwrap();
    assert_eq!(
        db.get_user_by_provider_account_id("github", "1")
            .unwrap()
            .unwrap()
            .id,
        b
    );
    db.unlink_account(&a, "google", "1").unwrap();
    let r = db.check_integrity().unwrap();
    assert!(r.is_clean(), "{r}");
    assert_eq!(r.accounts, 1);
}

#[test]
fn deleting_a_user_frees_their_provider_accounts() {
    let (db, _clock) = mem_db();
    let a = db.create_user(&NewUser::default()).unwrap();
    db.link_account(&a.id, &oauth_account("github", "1", None, None))
        .unwrap();
    db.delete_user(&a.id).unwrap();
    let b = db.create_user(&NewUser::default()).unwrap();
    db.link_account(&b.id, &oauth_account("github", "1", None, None))
        .unwrap();
    assert_eq!(
        db.get_user_by_provider_account_id("github", "1")
            .unwrap()
            .unwrap()
            .id,
        b.id
    );
    assert_clean(&db);
}

#[test]
fn empty_required_account_fields_are_invalid_input() {
    let (db, _clock) = mem_db();
    let u = db.create_user(&NewUser::default()).unwrap();
    let base = oauth_account("github", "1", None, None);
    let cases = [
        (
            "provider_type",
            NewAccount {
                provider_type: String::new(),
                ..base.clone()
            },
        ),
        (
            "provider_id",
            NewAccount {
                provider_id: String::new(),
                ..base.clone()
            },
        ),
        (
            "provider_account_id",
            NewAccount {
                provider_account_id: String::new(),
                ..base.clone()
            },
        ),
    ];
    for (field, acc) in cases {
        let err = db.link_account(&u.id, &acc).unwrap_err();
        assert!(
            matches!(
                err,
                Error::InvalidInput { field: f, problem: authdb::InputProblem::Empty } if f == field
            ),
            "{field}: {err:?}"
        );
    }
    assert_eq!(db.check_integrity().unwrap().accounts, 0);
}
