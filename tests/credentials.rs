//! Passwords (set_password / get_user_by_credentials), secrets never in the file, and Debug
//! output never showing a secret.

mod common;

use authdb::prelude::*;
use authdb::{
    Account, Credentials, EmailProvider, Error, InputProblem, NewAccount, NewUser, Session,
    VerificationMail, VerificationRequest,
};
use chrono::Utc;
use common::{TempDb, assert_clean, contains_bytes, mem_db, oauth_account, profile};

fn creds(email: &str, password: &str) -> Credentials {
    Credentials {
        email: email.into(),
        password: password.into(),
    }
}

#[test]
fn right_password_finds_user_wrong_does_not() {
    let t = TempDb::new();
    let uid = {
        let db = t.open();
        let u = db.create_user(&profile("Ada@Example.com")).unwrap();
        db.set_password(&u.id, "correct horse battery staple")
            .unwrap();
        let found = db
            .get_user_by_credentials(&creds("ada@example.com", "correct horse battery staple"))
            .unwrap()
            .unwrap();
        assert_eq!(found.id, u.id);
        // Setting a password replaced the security stamp (and nothing else a caller sees).
        assert_ne!(found.security_stamp, u.security_stamp);
        assert_eq!(
            found,
            authdb::User {
                security_stamp: found.security_stamp,
                ..u.clone()
            }
        );
        assert_eq!(
            db.get_user_by_credentials(&creds("ada@example.com", "Correct horse battery staple"))
                .unwrap(),
            None
        );
        assert_eq!(
            db.get_user_by_credentials(&creds("ada@example.com", ""))
                .unwrap(),
            None
        );
        assert_clean(&db);
        u.id
    };
    let db = t.open();
    let found = db
        .get_user_by_credentials(&creds(" ADA@EXAMPLE.COM ", "correct horse battery staple"))
        .unwrap()
        .unwrap();
    assert_eq!(found.id, uid);
    assert_eq!(
        db.get_user_by_credentials(&creds("ada@example.com", "wrong"))
            .unwrap(),
        None
    );
    let r = db.check_integrity().unwrap();
    assert!(r.is_clean(), "{r}");
    assert_eq!(r.credentials, 1);
}

#[test]
fn unknown_email_blank_email_and_no_password_give_none() {
    let (db, _clock) = mem_db();
    let with = db.create_user(&profile("with@example.com")).unwrap();
    db.set_password(&with.id, "pw").unwrap();
    db.create_user(&profile("without@example.com")).unwrap();
    let no_email = db.create_user(&NewUser::default()).unwrap();
    db.set_password(&no_email.id, "pw").unwrap();

    assert_eq!(
        db.get_user_by_credentials(&creds("nobody@example.com", "pw"))
            .unwrap(),
        None
    );
    assert_eq!(
        db.get_user_by_credentials(&creds("without@example.com", "pw"))
            .unwrap(),
        None
    );
    assert_eq!(
        db.get_user_by_credentials(&creds("without@example.com", ""))
            .unwrap(),
        None
    );
    // A user with a password but no email cannot be found by a blank email.
    assert_eq!(db.get_user_by_credentials(&creds("", "pw")).unwrap(), None);
    assert_eq!(
        db.get_user_by_credentials(&creds("   ", "pw")).unwrap(),
        None
    );
    // Inside a transaction, the same answers.
    db.write(|tx| {
        assert!(
            tx.get_user_by_credentials(&creds("WITH@example.com", "pw"))?
                .is_some()
        );
        assert!(
            tx.get_user_by_credentials(&creds("with@example.com", "nope"))?
                .is_none()
        );
        assert!(
            tx.get_user_by_credentials(&creds("nobody@example.com", "pw"))?
                .is_none()
        );
        Ok(())
    })
    .unwrap();
}

#[test]
fn password_limits() {
    let (db, _clock) = mem_db();
    let u = db.create_user(&profile("a@example.com")).unwrap();
    let err = db.set_password(&u.id, "").unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidInput {
                field: "password",
                problem: InputProblem::Empty
            }
        ),
        "{err:?}"
    );
    let max = authdb::limits::MAX_PASSWORD_LEN;
    assert_eq!(max, 1024);
    let over = "p".repeat(max + 1);
    let err = db.set_password(&u.id, &over).unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidInput {
                field: "password",
                problem: InputProblem::TooLong { len, max: m }
            } if len == max + 1 && m == max
        ),
        "{err:?}"
    );
    assert_eq!(db.check_integrity().unwrap().credentials, 0);
    // Over the limit on lookup: refused before any hashing.
    let err = db
        .get_user_by_credentials(&creds("a@example.com", &over))
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidInput {
                field: "password",
                problem: InputProblem::TooLong { .. }
            }
        ),
        "{err:?}"
    );
    // Exactly at the limit works, multi-byte characters counted in bytes.
    let at = "é".repeat(max / 2);
    assert_eq!(at.len(), max);
    db.set_password(&u.id, &at).unwrap();
    assert_eq!(
        db.get_user_by_credentials(&creds("a@example.com", &at))
            .unwrap()
            .map(|x| x.id),
        Some(u.id)
    );
    let err = db.set_password(&u.id, &format!("{at}x")).unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidInput {
                field: "password",
                ..
            }
        ),
        "{err:?}"
    );
    // The failed set kept the old password.
    assert!(
        db.get_user_by_credentials(&creds("a@example.com", &at))
            .unwrap()
            .is_some()
    );
}

#[test]
fn set_password_for_missing_user_is_user_not_found() {
    let (db, _clock) = mem_db();
    let u = db.create_user(&NewUser::default()).unwrap();
    db.delete_user(&u.id).unwrap();
    let err = db.set_password(&u.id, "pw").unwrap_err();
    assert!(
        matches!(err, Error::UserNotFound(id) if id == u.id),
        "{err:?}"
    );
    let err = db.write(|tx| tx.set_password(&u.id, "pw")).unwrap_err();
    assert!(matches!(err, Error::UserNotFound(_)), "{err:?}");
    assert_eq!(db.check_integrity().unwrap().credentials, 0);
}

#[test]
fn replaced_password() {
    let t = TempDb::new();
    {
        let db = t.open();
        let u = db.create_user(&profile("a@example.com")).unwrap();
        db.set_password(&u.id, "first").unwrap();
        db.set_password(&u.id, "second").unwrap();
        assert_eq!(
            db.get_user_by_credentials(&creds("a@example.com", "first"))
                .unwrap(),
            None
        );
        assert!(
            db.get_user_by_credentials(&creds("a@example.com", "second"))
                .unwrap()
                .is_some()
        );
        // Set inside a transaction too.
        db.write(|tx| tx.set_password(&u.id, "third")).unwrap();
    }
    let db = t.open();
    assert_eq!(
        db.get_user_by_credentials(&creds("a@example.com", "second"))
            .unwrap(),
        None
    );
    assert!(
        db.get_user_by_credentials(&creds("a@example.com", "third"))
            .unwrap()
            .is_some()
    );
    assert_eq!(db.check_integrity().unwrap().credentials, 1);
}

#[test]
fn password_follows_email_change_and_is_removed_with_user() {
    let t = TempDb::new();
    {
        let db = t.open();
        let u = db.create_user(&profile("old@example.com")).unwrap();
        db.set_password(&u.id, "pw").unwrap();
        let u = db
            .update_user(&authdb::User {
                email: Some("new@example.com".into()),
                ..u
            })
            .unwrap();
        assert_eq!(
            db.get_user_by_credentials(&creds("old@example.com", "pw"))
                .unwrap(),
            None
        );
        assert!(
            db.get_user_by_credentials(&creds("new@example.com", "pw"))
                .unwrap()
                .is_some()
        );
        db.delete_user(&u.id).unwrap();
        assert_eq!(
            db.get_user_by_credentials(&creds("new@example.com", "pw"))
                .unwrap(),
            None
        );
        // A new user with the same email does not inherit the old password.
        db.create_user(&profile("new@example.com")).unwrap();
        assert_eq!(
            db.get_user_by_credentials(&creds("new@example.com", "pw"))
                .unwrap(),
            None
        );
    }
    let db = t.open();
    let r = db.check_integrity().unwrap();
    assert!(r.is_clean(), "{r}");
    assert_eq!(r.credentials, 0);
    assert_eq!(
        db.get_user_by_credentials(&creds("new@example.com", "pw"))
            .unwrap(),
        None
    );
}

#[test]
fn file_never_holds_plain_secrets() {
    let t = TempDb::new();
    let password = "PlainPassword-7f3a9c-unique";
    let raw_token = "RawVerificationToken-51d2e8-unique";
    let secret = "NextAuthSecret-0b7c44-unique";
    let url = format!("https://example.com/callback?token={raw_token}");
    let (session, user_email) = {
        let db = t.open();
        let u = db.create_user(&profile("ada@example.com")).unwrap();
        db.set_password(&u.id, password).unwrap();
        let session = db.create_session(&u.id).unwrap();
        // Extend it too, so that the token went through update_session.
        t.clock.advance(chrono::Duration::days(2));
        let session = db.update_session(&session, false).unwrap().unwrap();
        let (p, sent) = common::recording_provider();
        db.create_verification_request("ada@example.com", &url, raw_token, secret, &p)
            .unwrap();
        assert_eq!(
            sent.lock()[0].2,
            raw_token,
            "the sender did get the raw token"
        );
        // Sanity for the scan below: something we did store can be found in the file.
        (session, "ada@example.com")
    };
    let bytes = common::file_bytes(&t.path());
    assert!(
        contains_bytes(&bytes, user_email.as_bytes()),
        "scan sanity check: the stored email must be visible in the file"
    );
    for (what, needle) in [
        ("password", password),
        ("session token", session.session_token.as_str()),
        ("session access token", session.access_token.as_str()),
        ("raw verification token", raw_token),
        ("secret", secret),
    ] {
        assert!(
            !contains_bytes(&bytes, needle.as_bytes()),
            "the file contains the {what}"
        );
    }
    // Everything still works from the hashes after reopening.
    let db = t.open();
    assert!(
        db.get_user_by_credentials(&creds("ada@example.com", password))
            .unwrap()
            .is_some()
    );
    assert_eq!(
        db.get_session(&session.session_token).unwrap(),
        Some(session)
    );
    assert!(
        db.use_verification_request("ada@example.com", raw_token, secret)
            .unwrap()
            .is_some()
    );
}

#[test]
fn debug_output_never_shows_secrets() {
    const SECRET: &str = "s3cr3t-value-that-must-not-leak";
    let now = Utc::now();
    let session = Session {
        id: authdb::SessionId(uuid::Uuid::now_v7()),
        user_id: authdb::UserId(uuid::Uuid::now_v7()),
        expires: now,
        session_token: format!("{SECRET}-session"),
        access_token: format!("{SECRET}-access"),
        created_at: now,
        updated_at: now,
    };
    let new_account = NewAccount {
        refresh_token: Some(format!("{SECRET}-refresh")),
        access_token: Some(format!("{SECRET}-oauth-access")),
        ..oauth_account("github", "1", None, None)
    };
    let account = Account {
        id: authdb::AccountId(uuid::Uuid::now_v7()),
        user_id: authdb::UserId(uuid::Uuid::now_v7()),
        provider_type: "oauth".into(),
        provider_id: "github".into(),
        provider_account_id: "1".into(),
        refresh_token: Some(format!("{SECRET}-refresh")),
        access_token: Some(format!("{SECRET}-oauth-access")),
        access_token_expires: None,
        token_type: Some("bearer".into()),
        scope: Some("read:user".into()),
        id_token: Some(format!("{SECRET}-id-token")),
        session_state: None,
        extra: secret_extra(),
        created_at: now,
        updated_at: now,
    };
    let new_session = authdb::NewSession {
        user_id: account.user_id,
        session_token: format!("{SECRET}-chosen"),
        expires: now,
    };
    let vtoken = authdb::VerificationToken {
        identifier: "ada@example.com".into(),
        token: format!("{SECRET}-vt"),
        expires: now,
    };
    let credentials = creds("ada@example.com", SECRET);
    let request = VerificationRequest {
        id: authdb::VerificationRequestId(uuid::Uuid::now_v7()),
        identifier: "ada@example.com".into(),
        token: format!("{SECRET}-hash"),
        expires: now,
        created_at: now,
        updated_at: now,
    };
    let smtp_password = format!("{SECRET}-smtp");
    let provider = EmailProvider::new("email", move |_| {
        let _ = &smtp_password;
        Ok(())
    });
    let url = format!("https://example.com/cb?token={SECRET}-url");
    let mail = VerificationMail {
        identifier: "ada@example.com",
        url: &url,
        token: &format!("{SECRET}-raw"),
        provider: &provider,
    };
    let outputs = [
        ("Session", format!("{session:?}"), "expires"),
        ("Session#", format!("{session:#?}"), "user_id"),
        ("NewAccount", format!("{new_account:?}"), "github"),
        ("Account", format!("{account:?}"), "github"),
        ("Credentials", format!("{credentials:?}"), "ada@example.com"),
        (
            "VerificationRequest",
            format!("{request:?}"),
            "ada@example.com",
        ),
        ("VerificationMail", format!("{mail:?}"), "ada@example.com"),
        ("EmailProvider", format!("{provider:?}"), "email"),
        ("Some(Session)", format!("{:?}", Some(&session)), "expires"),
        ("NewSession", format!("{new_session:?}"), "expires"),
        (
            "VerificationToken",
            format!("{vtoken:?}"),
            "ada@example.com",
        ),
        (
            "Account.extra keys",
            format!("{account:?}"),
            "refresh_token_expires_in",
        ),
    ];
    // serde: every field Debug hides is skipped by Serialize as well.
    let json = |v: serde_json::Result<String>| v.unwrap();
    let serialized = [
        (
            "Session json",
            json(serde_json::to_string(&session)),
            "expires",
        ),
        (
            "Account json",
            json(serde_json::to_string(&account)),
            "github",
        ),
        (
            "NewAccount json",
            json(serde_json::to_string(&new_account)),
            "github",
        ),
        (
            "Credentials json",
            json(serde_json::to_string(&credentials)),
            "ada@example.com",
        ),
        (
            "VerificationRequest json",
            json(serde_json::to_string(&request)),
            "ada@example.com",
        ),
        (
            "NewSession json",
            json(serde_json::to_string(&new_session)),
            "expires",
        ),
        (
            "VerificationToken json",
            json(serde_json::to_string(&vtoken)),
            "ada@example.com",
        ),
    ];
    for (ty, out, visible) in outputs.into_iter().chain(serialized) {
        assert!(!out.contains(SECRET), "{ty} Debug leaks a secret: {out}");
        assert!(
            out.contains(visible),
            "{ty} Debug should still show {visible:?}: {out}"
        );
    }
}

/// Provider-specific account fields whose values are secret.
fn secret_extra() -> authdb::Extra {
    const SECRET: &str = "s3cr3t-value-that-must-not-leak";
    let mut m = authdb::Extra::new();
    m.insert(
        "refresh_token_expires_in".into(),
        serde_json::Value::String(format!("{SECRET}-extra")),
    );
    m
}

#[test]
fn debug_of_real_records_never_shows_tokens() {
    let (db, _clock) = mem_db();
    let u = db.create_user(&profile("a@example.com")).unwrap();
    let acc = db
        .link_account(
            &u.id,
            &oauth_account("github", "1", Some("refresh-XYZ"), Some("access-XYZ")),
        )
        .unwrap();
    let s = db.create_session(&u.id).unwrap();
    let (p, _sent) = common::recording_provider();
    let req = db
        .create_verification_request(
            "a@example.com",
            "https://x/cb",
            "raw-XYZ-5f1e0c7a2b9d4e8f6a3c1b0d9e8f7a6b",
            "sec",
            &p,
        )
        .unwrap();
    let out = format!("{acc:?} {s:?} {req:?} {db:?}");
    for needle in [
        "refresh-XYZ",
        "access-XYZ",
        &s.session_token,
        &s.access_token,
        &req.token,
    ] {
        assert!(!out.contains(needle), "Debug leaks {needle}: {out}");
    }
}
