//! Atomic flows: several operations in one write transaction, all or nothing.

mod common;

use authdb::prelude::*;
use authdb::{AuthDb, Error, NewUser, User};
use chrono::Duration;
use common::{TempDb, assert_clean, mem_db, oauth_account, profile, recording_provider, t0};

fn counts(db: &AuthDb) -> (u64, u64, u64, u64, u64) {
    let r = db.check_integrity().unwrap();
    assert!(r.is_clean(), "{r}");
    (
        r.users,
        r.accounts,
        r.sessions,
        r.verification_requests,
        r.credentials,
    )
}

#[test]
fn oauth_sign_up_commits_everything() {
    let t = TempDb::new();
    let (user, session) = {
        let db = t.open();
        let (user, session) = db
            .write(|tx| {
                let user = tx.create_user(&NewUser {
                    name: Some("Ada".into()),
                    email: Some("ada@example.com".into()),
                    ..NewUser::default()
                })?;
                tx.link_account(
                    &user.id,
                    &oauth_account("github", "42", Some("r"), Some("a")),
                )?;
                let session = tx.create_session(&user.id)?;
                Ok((user, session))
            })
            .unwrap();
        assert_eq!(counts(&db), (1, 1, 1, 0, 0));
        (user, session)
    };
    let db = t.open();
    assert_eq!(db.get_user(&user.id).unwrap().as_ref(), Some(&user));
    assert_eq!(
        db.get_user_by_provider_account_id("github", "42").unwrap(),
        Some(user.clone())
    );
    assert_eq!(
        db.get_session(&session.session_token).unwrap(),
        Some(session)
    );
    assert_eq!(counts(&db), (1, 1, 1, 0, 0));
}

#[test]
fn error_midway_leaves_nothing() {
    let t = TempDb::new();
    {
        let db = t.open();
        let owner = db.create_user(&profile("owner@example.com")).unwrap();
        db.link_account(&owner.id, &oauth_account("github", "42", None, None))
            .unwrap();
        let before = counts(&db);

        let err = db
            .write(|tx| {
                let user = tx.create_user(&profile("newcomer@example.com"))?;
                tx.create_session(&user.id)?;
                tx.set_password(&user.id, "pw")?;
                // Conflict: the provider account belongs to `owner`.
                tx.link_account(&user.id, &oauth_account("github", "42", None, None))?;
                tx.create_session(&user.id)
            })
            .unwrap_err();
        assert!(matches!(err, Error::AccountLinkedToAnotherUser), "{err:?}");
        assert_eq!(db.get_user_by_email("newcomer@example.com").unwrap(), None);
        assert_eq!(counts(&db), before);
        assert_eq!(
            db.get_user_by_provider_account_id("github", "42")
                .unwrap()
                .map(|u| u.id),
            Some(owner.id)
        );
    }
    let db = t.open();
    assert_eq!(db.get_user_by_email("newcomer@example.com").unwrap(), None);
    assert_eq!(counts(&db), (1, 1, 0, 0, 0));
}

#[test]
fn caller_error_in_closure_also_rolls_back() {
    let (db, _clock) = mem_db();
    let err = db
        .write(|tx| {
            let u = tx.create_user(&profile("a@example.com"))?;
            tx.create_session(&u.id)?;
            // The application decides to bail out with an error of its own.
            Err::<(), _>(Error::InvalidConfig("application said no"))
        })
        .unwrap_err();
    assert!(matches!(err, Error::InvalidConfig("application said no")));
    assert_eq!(counts(&db), (0, 0, 0, 0, 0));
}

#[test]
fn begin_write_dropped_without_commit_leaves_nothing() {
    let t = TempDb::new();
    {
        let db = t.open();
        {
            let tx = db.begin_write().unwrap();
            let u = tx.create_user(&profile("a@example.com")).unwrap();
            tx.link_account(&u.id, &oauth_account("github", "1", None, None))
                .unwrap();
            tx.create_session(&u.id).unwrap();
            // Dropped here: aborted.
        }
        assert_eq!(counts(&db), (0, 0, 0, 0, 0));
        let tx = db.begin_write().unwrap();
        tx.create_user(&profile("b@example.com")).unwrap();
        tx.abort().unwrap();
        assert_eq!(db.get_user_by_email("b@example.com").unwrap(), None);
        assert_eq!(counts(&db), (0, 0, 0, 0, 0));
        // The email is free after both aborts.
        let tx = db.begin_write().unwrap();
        tx.create_user(&profile("a@example.com")).unwrap();
        tx.commit().unwrap();
    }
    let db = t.open();
    assert_eq!(counts(&db), (1, 0, 0, 0, 0));
    assert!(db.get_user_by_email("a@example.com").unwrap().is_some());
    assert_eq!(db.get_user_by_email("b@example.com").unwrap(), None);
}

/// The email sign-in callback: consume the link, find or create the user, mark the email
/// verified, start a session, all in one transaction.
fn email_sign_in(
    db: &AuthDb,
    identifier: &str,
    token: &str,
    secret: &str,
) -> authdb::Result<Option<(User, authdb::Session)>> {
    db.write(|tx| {
        let Some(req) = tx.use_verification_request(identifier, token, secret)? else {
            return Ok(None);
        };
        let user = match tx.get_user_by_email(&req.identifier)? {
            Some(u) => tx.update_user(&User {
                email_verified: Some(req.created_at),
                ..u
            })?,
            None => tx.create_user(&NewUser {
                email: Some(req.identifier.clone()),
                email_verified: Some(req.created_at),
                ..NewUser::default()
            })?,
        };
        let session = tx.create_session(&user.id)?;
        Ok(Some((user, session)))
    })
}

#[test]
fn email_sign_in_flow_creates_then_updates_user() {
    let t = TempDb::new();
    let (p, sent) = recording_provider();
    let uid = {
        let db = t.open();
        db.create_verification_request(
            "new@example.com",
            "https://x/cb",
            "746f6b2d6e65772d757365722d303031",
            "sec",
            &p,
        )
        .unwrap();
        let raw = sent.lock()[0].2.clone();
        t.clock.advance(Duration::minutes(2));
        let (user, session) = email_sign_in(&db, "New@Example.com", &raw, "sec")
            .unwrap()
            .unwrap();
        assert_eq!(user.email.as_deref(), Some("new@example.com"));
        assert_eq!(user.email_verified, Some(t0()));
        assert_eq!(session.user_id, user.id);
        assert_eq!(counts(&db), (1, 0, 1, 0, 0));
        // The link is spent: a second click does nothing at all.
        assert_eq!(
            email_sign_in(&db, "new@example.com", &raw, "sec").unwrap(),
            None
        );
        assert_eq!(counts(&db), (1, 0, 1, 0, 0));
        user.id
    };
    let db = t.open();
    // Second sign-in of the same person updates rather than creates.
    db.create_verification_request(
        "new@example.com",
        "https://x/cb",
        "746f6b2d6e65772d757365722d303032",
        "sec",
        &p,
    )
    .unwrap();
    t.clock.advance(Duration::minutes(1));
    let (user, _session) = email_sign_in(
        &db,
        "new@example.com",
        "746f6b2d6e65772d757365722d303032",
        "sec",
    )
    .unwrap()
    .unwrap();
    assert_eq!(user.id, uid);
    assert_eq!(user.email_verified, Some(t0() + Duration::minutes(2)));
    assert_eq!(user.updated_at, t0() + Duration::minutes(3));
    assert_eq!(counts(&db), (1, 0, 2, 0, 0));
}

#[test]
fn email_sign_in_failure_keeps_the_link() {
    // If the flow fails after consuming the link, the consumption is rolled back too.
    let (db, _clock) = mem_db();
    let (p, _sent) = recording_provider();
    db.create_verification_request(
        "x@example.com",
        "https://x/cb",
        "746f6b2d782d6578616d706c652d3031",
        "sec",
        &p,
    )
    .unwrap();
    let err = db
        .write(|tx| {
            let req = tx
                .use_verification_request(
                    "x@example.com",
                    "746f6b2d782d6578616d706c652d3031",
                    "sec",
                )?
                .expect("live link");
            let user = tx.create_user(&profile(&req.identifier))?;
            // Unknown user id: fails after the link was consumed and a user created.
            tx.create_session(&authdb::UserId(uuid::Uuid::now_v7()))?;
            Ok(user)
        })
        .unwrap_err();
    assert!(matches!(err, Error::UserNotFound(_)), "{err:?}");
    assert_eq!(counts(&db), (0, 0, 0, 1, 0));
    assert!(
        db.get_verification_request(
            "x@example.com",
            "746f6b2d782d6578616d706c652d3031",
            "sec",
            &p
        )
        .unwrap()
        .is_some()
    );
}

#[test]
fn reads_inside_a_transaction_see_its_own_writes_outside_do_not() {
    let (db, _clock) = mem_db();
    let tx = db.begin_write().unwrap();
    let u = tx.create_user(&profile("Ada@Example.com")).unwrap();
    assert_eq!(tx.get_user(&u.id).unwrap().as_ref(), Some(&u));
    assert_eq!(
        tx.get_user_by_email("ada@example.com").unwrap().as_ref(),
        Some(&u)
    );
    // Conflicts are seen inside the transaction too.
    assert!(matches!(
        tx.create_user(&profile("ADA@example.com")),
        Err(Error::EmailTaken)
    ));
    tx.link_account(&u.id, &oauth_account("github", "1", None, None))
        .unwrap();
    assert_eq!(
        tx.get_user_by_provider_account_id("github", "1")
            .unwrap()
            .as_ref(),
        Some(&u)
    );
    tx.set_password(&u.id, "pw").unwrap();
    assert!(
        tx.get_user_by_credentials(&authdb::Credentials {
            email: "ada@example.com".into(),
            password: "pw".into()
        })
        .unwrap()
        .is_some()
    );
    // A session made after the password change (which ends earlier ones) stays.
    let s = tx.create_session(&u.id).unwrap();
    assert_eq!(tx.get_session(&s.session_token).unwrap().as_ref(), Some(&s));
    assert_eq!(tx.list_sessions(&u.id).unwrap().len(), 1);

    // Readers outside see the last committed state (nothing yet).
    assert_eq!(db.get_user(&u.id).unwrap(), None);
    assert_eq!(db.get_session(&s.session_token).unwrap(), None);
    assert_eq!(counts(&db), (0, 0, 0, 0, 0));

    tx.commit().unwrap();
    // set_password replaced the security stamp; everything else is as created.
    let stored = db.get_user(&u.id).unwrap().unwrap();
    assert_ne!(stored.security_stamp, u.security_stamp);
    assert_eq!(
        stored,
        authdb::User {
            security_stamp: stored.security_stamp,
            ..u
        }
    );
    assert_eq!(db.get_session(&s.session_token).unwrap(), Some(s));
    assert_eq!(counts(&db), (1, 1, 1, 0, 1));
}

#[test]
fn deletes_inside_a_transaction_are_seen_by_it() {
    let (db, _clock) = mem_db();
    let u = db.create_user(&profile("a@example.com")).unwrap();
    let s = db.create_session(&u.id).unwrap();
    db.write(|tx| {
        tx.delete_session(&s.session_token)?;
        assert_eq!(tx.get_session(&s.session_token)?, None);
        tx.delete_user(&u.id)?;
        assert_eq!(tx.get_user(&u.id)?, None);
        assert_eq!(tx.get_user_by_email("a@example.com")?, None);
        // The email is free within the same transaction.
        tx.create_user(&profile("A@example.com"))?;
        Ok(())
    })
    .unwrap();
    assert_eq!(counts(&db), (1, 0, 0, 0, 0));
    assert_ne!(
        db.get_user_by_email("a@example.com").unwrap().unwrap().id,
        u.id
    );
    assert_clean(&db);
}
