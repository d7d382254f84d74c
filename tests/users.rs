//! Users: create, lookups, email normalization, update, delete with cascade.

mod common;

use authdb::prelude::*;
use authdb::{Credentials, Error, InputProblem, NewUser, User};
use chrono::{Duration, TimeZone, Utc};
use common::{TempDb, assert_clean, mem_db, oauth_account, profile, t0};

fn full_profile(email: &str) -> NewUser {
    NewUser {
        name: Some("Ada Lovelace".into()),
        email: Some(email.into()),
        image: Some("https://example.com/ada.png".into()),
        email_verified: Some(Utc.with_ymd_and_hms(2029, 6, 1, 8, 30, 0).unwrap()),
        ..Default::default()
    }
}

#[test]
fn create_user_stores_profile_with_clock_timestamps_and_v7_id() {
    let t = TempDb::new();
    let created = {
        let db = t.open();
        let u = db.create_user(&full_profile(" Ada@Example.COM ")).unwrap();
        assert_eq!(u.id.0.get_version_num(), 7, "ids are UUID v7");
        assert_eq!(u.name.as_deref(), Some("Ada Lovelace"));
        // Stored as given; only the index key is normalized.
        assert_eq!(u.email.as_deref(), Some(" Ada@Example.COM "));
        assert_eq!(u.image.as_deref(), Some("https://example.com/ada.png"));
        assert_eq!(
            u.email_verified,
            Some(Utc.with_ymd_and_hms(2029, 6, 1, 8, 30, 0).unwrap())
        );
        assert_eq!(u.created_at, t0());
        assert_eq!(u.updated_at, t0());
        assert_eq!(db.get_user(&u.id).unwrap().as_ref(), Some(&u));
        assert_clean(&db);
        u
    };
    let db = t.open();
    assert_eq!(db.get_user(&created.id).unwrap(), Some(created.clone()));
    assert_eq!(
        db.get_user_by_email("ada@example.com").unwrap(),
        Some(created)
    );
    assert_clean(&db);
}

#[test]
fn ids_are_distinct_and_time_ordered() {
    let (db, _clock) = mem_db();
    let a = db.create_user(&NewUser::default()).unwrap();
    let b = db.create_user(&NewUser::default()).unwrap();
    assert_ne!(a.id, b.id);
    assert!(a.id < b.id, "UUID v7 ids made later sort later");
}

#[test]
fn email_taken_after_normalization_writes_nothing() {
    let t = TempDb::new();
    let first = {
        let db = t.open();
        let first = db.create_user(&profile("ada@example.com")).unwrap();
        for variant in [
            "ADA@EXAMPLE.COM",
            "  Ada@Example.com",
            "ada@example.com\t\n",
        ] {
            let err = db.create_user(&full_profile(variant)).unwrap_err();
            assert!(matches!(err, Error::EmailTaken), "{variant:?}: {err:?}");
            assert!(err.is_conflict());
        }
        assert_eq!(db.check_integrity().unwrap().users, 1);
        first
    };
    let db = t.open();
    let r = db.check_integrity().unwrap();
    assert!(r.is_clean(), "{r}");
    assert_eq!(r.users, 1);
    assert_eq!(
        db.get_user_by_email("ADA@example.com").unwrap(),
        Some(first)
    );
}

#[test]
fn lookups_by_email_in_any_case_and_spacing() {
    let (db, _clock) = mem_db();
    let u = db.create_user(&profile("Grace.Hopper@Navy.MIL")).unwrap();
    for q in [
        "grace.hopper@navy.mil",
        "GRACE.HOPPER@NAVY.MIL",
        "  Grace.Hopper@Navy.MIL  ",
        "\tgrace.HOPPER@navy.Mil\n",
    ] {
        assert_eq!(db.get_user_by_email(q).unwrap().as_ref(), Some(&u), "{q:?}");
    }
    assert_eq!(db.get_user_by_email("grace@navy.mil").unwrap(), None);
}

#[test]
fn unicode_email_is_normalized_with_unicode_lowercase() {
    let (db, _clock) = mem_db();
    let u = db.create_user(&profile("ÉLODIE@Exemple.FR")).unwrap();
    assert_eq!(
        db.get_user_by_email("élodie@exemple.fr")
            .unwrap()
            .map(|x| x.id),
        Some(u.id)
    );
    assert!(matches!(
        db.create_user(&profile("élodie@EXEMPLE.fr")),
        Err(Error::EmailTaken)
    ));
}

#[test]
fn several_users_without_email() {
    let t = TempDb::new();
    let ids = {
        let db = t.open();
        let ids: Vec<_> = (0..3)
            .map(|i| {
                db.create_user(&NewUser {
                    name: Some(format!("anon {i}")),
                    ..NewUser::default()
                })
                .unwrap()
                .id
            })
            .collect();
        assert_clean(&db);
        ids
    };
    let db = t.open();
    assert_eq!(db.check_integrity().unwrap().users, 3);
    for (i, id) in ids.iter().enumerate() {
        let u = db.get_user(id).unwrap().unwrap();
        assert_eq!(u.email, None);
        assert_eq!(u.name, Some(format!("anon {i}")));
    }
    assert_clean(&db);
}

#[test]
fn empty_or_blank_email_on_create_is_invalid_input() {
    let (db, _clock) = mem_db();
    for e in ["", " ", " \t\n "] {
        let err = db.create_user(&profile(e)).unwrap_err();
        assert!(
            matches!(
                err,
                Error::InvalidInput {
                    field: "email",
                    problem: InputProblem::Empty
                }
            ),
            "{e:?}: {err:?}"
        );
    }
    assert_eq!(db.check_integrity().unwrap().users, 0);
}

#[test]
fn empty_or_blank_email_lookup_is_none() {
    let (db, _clock) = mem_db();
    // A user without email exists: a blank lookup must not find it.
    db.create_user(&NewUser::default()).unwrap();
    db.create_user(&profile("x@example.com")).unwrap();
    assert_eq!(db.get_user_by_email("").unwrap(), None);
    assert_eq!(db.get_user_by_email("  ").unwrap(), None);
    assert_eq!(db.get_user_by_email("\t\n").unwrap(), None);
    // Inside a transaction too.
    db.write(|tx| {
        assert_eq!(tx.get_user_by_email("").unwrap(), None);
        assert_eq!(tx.get_user_by_email("   ").unwrap(), None);
        Ok(())
    })
    .unwrap();
}

#[test]
fn get_user_unknown_id_is_none() {
    let (db, _clock) = mem_db();
    let u = db.create_user(&NewUser::default()).unwrap();
    db.delete_user(&u.id).unwrap();
    assert_eq!(db.get_user(&u.id).unwrap(), None);
    let random = authdb::UserId(uuid::Uuid::now_v7());
    assert_eq!(db.get_user(&random).unwrap(), None);
}

#[test]
fn update_user_replaces_fields_keeps_created_at_moves_updated_at() {
    let t = TempDb::new();
    let updated = {
        let db = t.open();
        let u = db.create_user(&full_profile("ada@example.com")).unwrap();
        t.clock.advance(Duration::minutes(5));
        let new_verified = Utc.with_ymd_and_hms(2030, 1, 1, 12, 1, 0).unwrap();
        let mut changed = User {
            name: None,
            image: Some("https://example.com/new.png".into()),
            email_verified: Some(new_verified),
            // A caller-supplied created_at/updated_at is ignored.
            created_at: t0() - Duration::days(400),
            updated_at: t0() - Duration::days(400),
            ..u.clone()
        };
        changed.email = Some("Ada@Example.com".into());
        let out = db.update_user(&changed).unwrap();
        assert_eq!(out.id, u.id);
        assert_eq!(out.name, None);
        assert_eq!(out.email.as_deref(), Some("Ada@Example.com"));
        assert_eq!(out.image.as_deref(), Some("https://example.com/new.png"));
        assert_eq!(out.email_verified, Some(new_verified));
        assert_eq!(out.created_at, t0());
        assert_eq!(out.updated_at, t0() + Duration::minutes(5));
        assert_eq!(db.get_user(&u.id).unwrap().as_ref(), Some(&out));
        // Case-only change of the email keeps it findable.
        assert_eq!(
            db.get_user_by_email("ada@example.com").unwrap().as_ref(),
            Some(&out)
        );
        assert_clean(&db);
        out
    };
    let db = t.open();
    assert_eq!(db.get_user(&updated.id).unwrap(), Some(updated));
    assert_clean(&db);
}

#[test]
fn update_user_reindexes_email_and_frees_the_old_one() {
    let t = TempDb::new();
    let (uid, other_id) = {
        let db = t.open();
        let u = db.create_user(&profile("old@example.com")).unwrap();
        t.clock.advance(Duration::seconds(1));
        let out = db
            .update_user(&User {
                email: Some("New@Example.com".into()),
                ..u.clone()
            })
            .unwrap();
        assert_eq!(db.get_user_by_email("old@example.com").unwrap(), None);
        assert_eq!(
            db.get_user_by_email("new@example.com").unwrap(),
            Some(out.clone())
        );
        // The old address is free for someone else.
        let other = db.create_user(&profile("OLD@example.com")).unwrap();
        assert_clean(&db);
        (u.id, other.id)
    };
    let db = t.open();
    assert_eq!(
        db.get_user_by_email("new@EXAMPLE.com").unwrap().unwrap().id,
        uid
    );
    assert_eq!(
        db.get_user_by_email("old@example.com").unwrap().unwrap().id,
        other_id
    );
    assert_eq!(db.check_integrity().unwrap().users, 2);
    assert_clean(&db);
}

#[test]
fn update_user_removing_email_frees_it() {
    let (db, _clock) = mem_db();
    let u = db.create_user(&profile("a@example.com")).unwrap();
    let out = db
        .update_user(&User {
            email: None,
            ..u.clone()
        })
        .unwrap();
    assert_eq!(out.email, None);
    assert_eq!(db.get_user_by_email("a@example.com").unwrap(), None);
    db.create_user(&profile("a@example.com")).unwrap();
    assert_clean(&db);
}

#[test]
fn update_user_to_taken_email_is_conflict_and_writes_nothing() {
    let t = TempDb::new();
    let (a, b) = {
        let db = t.open();
        let a = db.create_user(&full_profile("a@example.com")).unwrap();
        let b = db.create_user(&profile("b@example.com")).unwrap();
        t.clock.advance(Duration::hours(1));
        let err = db
            .update_user(&User {
                name: Some("changed".into()),
                email: Some(" B@EXAMPLE.COM".into()),
                ..a.clone()
            })
            .unwrap_err();
        assert!(matches!(err, Error::EmailTaken), "{err:?}");
        assert_eq!(db.get_user(&a.id).unwrap().as_ref(), Some(&a));
        assert_eq!(
            db.get_user_by_email("a@example.com").unwrap().as_ref(),
            Some(&a)
        );
        assert_eq!(
            db.get_user_by_email("b@example.com").unwrap().as_ref(),
            Some(&b)
        );
        (a, b)
    };
    let db = t.open();
    assert_eq!(db.get_user(&a.id).unwrap(), Some(a));
    assert_eq!(db.get_user(&b.id).unwrap(), Some(b));
    assert_clean(&db);
}

#[test]
fn update_user_blank_email_is_invalid_input() {
    let (db, _clock) = mem_db();
    let u = db.create_user(&profile("a@example.com")).unwrap();
    let err = db
        .update_user(&User {
            email: Some("   ".into()),
            ..u.clone()
        })
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidInput {
                field: "email",
                problem: InputProblem::Empty
            }
        ),
        "{err:?}"
    );
    assert_eq!(db.get_user(&u.id).unwrap(), Some(u));
}

#[test]
fn update_missing_user_is_user_not_found_and_writes_nothing() {
    let (db, _clock) = mem_db();
    let u = db.create_user(&profile("a@example.com")).unwrap();
    db.delete_user(&u.id).unwrap();
    let err = db
        .update_user(&User {
            email: Some("b@example.com".into()),
            ..u.clone()
        })
        .unwrap_err();
    assert!(
        matches!(err, Error::UserNotFound(id) if id == u.id),
        "{err:?}"
    );
    assert_eq!(db.get_user(&u.id).unwrap(), None);
    assert_eq!(db.get_user_by_email("b@example.com").unwrap(), None);
    let r = db.check_integrity().unwrap();
    assert!(r.is_clean(), "{r}");
    assert_eq!(r.users, 0);
}

#[test]
fn delete_user_cascades_everything_in_one_go() {
    let t = TempDb::new();
    let (victim, keep, victim_token, keep_token) = {
        let db = t.open();
        let victim = db.create_user(&profile("victim@example.com")).unwrap();
        let keep = db.create_user(&profile("keep@example.com")).unwrap();
        db.link_account(
            &victim.id,
            &oauth_account("github", "1", Some("r"), Some("a")),
        )
        .unwrap();
        db.link_account(&victim.id, &oauth_account("google", "2", None, None))
            .unwrap();
        db.link_account(&keep.id, &oauth_account("github", "3", None, None))
            .unwrap();
        // Passwords first: setting one ends the user's sessions.
        db.set_password(&victim.id, "victim password").unwrap();
        db.set_password(&keep.id, "keep password").unwrap();
        let vs1 = db.create_session(&victim.id).unwrap();
        db.create_session(&victim.id).unwrap();
        let ks = db.create_session(&keep.id).unwrap();
        let before = db.check_integrity().unwrap();
        assert_eq!(
            (
                before.users,
                before.accounts,
                before.sessions,
                before.credentials
            ),
            (2, 3, 3, 2)
        );

        db.delete_user(&victim.id).unwrap();

        assert_eq!(db.get_user(&victim.id).unwrap(), None);
        assert_eq!(db.get_user_by_email("victim@example.com").unwrap(), None);
        assert_eq!(
            db.get_user_by_provider_account_id("github", "1").unwrap(),
            None
        );
        assert_eq!(
            db.get_user_by_provider_account_id("google", "2").unwrap(),
            None
        );
        assert_eq!(db.get_session(&vs1.session_token).unwrap(), None);
        assert!(db.list_sessions(&victim.id).unwrap().is_empty());
        let creds = Credentials {
            email: "victim@example.com".into(),
            password: "victim password".into(),
        };
        assert_eq!(db.get_user_by_credentials(&creds).unwrap(), None);
        let after = db.check_integrity().unwrap();
        assert!(after.is_clean(), "{after}");
        assert_eq!(
            (
                after.users,
                after.accounts,
                after.sessions,
                after.credentials
            ),
            (1, 1, 1, 1)
        );
        (victim, keep, vs1.session_token, ks.session_token)
    };
    let db = t.open();
    assert_eq!(db.get_user(&victim.id).unwrap(), None);
    assert_eq!(db.get_session(&victim_token).unwrap(), None);
    assert_eq!(
        db.get_session(&keep_token).unwrap().unwrap().user_id,
        keep.id
    );
    assert_eq!(
        db.get_user_by_provider_account_id("github", "3")
            .unwrap()
            .unwrap()
            .id,
        keep.id
    );
    let r = db.check_integrity().unwrap();
    assert!(r.is_clean(), "{r}");
    assert_eq!(
        (r.users, r.accounts, r.sessions, r.credentials),
        (1, 1, 1, 1)
    );
}

#[test]
fn delete_user_is_idempotent_and_frees_email() {
    let t = TempDb::new();
    {
        let db = t.open();
        let u = db.create_user(&profile("Gone@Example.com")).unwrap();
        db.delete_user(&u.id).unwrap();
        db.delete_user(&u.id).unwrap();
        db.delete_user(&authdb::UserId(uuid::Uuid::now_v7()))
            .unwrap();
        assert_clean(&db);
    }
    let db = t.open();
    assert_eq!(db.get_user_by_email("gone@example.com").unwrap(), None);
    let again = db.create_user(&profile("GONE@example.com")).unwrap();
    assert_eq!(
        db.get_user_by_email("gone@example.com")
            .unwrap()
            .unwrap()
            .id,
        again.id
    );
    let r = db.check_integrity().unwrap();
    assert!(r.is_clean(), "{r}");
    assert_eq!(r.users, 1);
}

#[test]
fn timestamps_are_truncated_to_microseconds_consistently() {
    let (db, _clock) = mem_db();
    let fine =
        Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap() + Duration::nanoseconds(1_234_567);
    let u = db
        .create_user(&NewUser {
            email_verified: Some(fine),
            ..NewUser::default()
        })
        .unwrap();
    let expected =
        Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap() + Duration::microseconds(1234);
    assert_eq!(u.email_verified, Some(expected));
    assert_eq!(db.get_user(&u.id).unwrap(), Some(u));
}
