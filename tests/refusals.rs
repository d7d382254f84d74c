//! "A refused operation wrote nothing" — the invariant group commit relies on when it commits a
//! refused operation's neighbours — checked for every kind of refusal: each one runs inside a
//! transaction that is then committed, and the whole store (its export, every record and every
//! field) must be byte-for-byte what it was. An operation that wrote before refusing would
//! change the export.

mod common;

use authdb::prelude::*;
use authdb::{
    AuthDb, EmailProvider, Error, NewAccount, NewAuthenticator, NewSession, User, UserPatch,
    VerificationToken, WriteTxn,
};
use chrono::Duration;
use common::{mem_db, oauth_account, profile};

/// The whole store, as the export writes it.
fn dump(db: &AuthDb) -> Vec<u8> {
    let mut out = Vec::new();
    db.export_to(&mut out).unwrap();
    out
}

struct World {
    ada: User,
    bob: User,
    session_token: String,
    credential_id: String,
}

fn populate(db: &AuthDb) -> World {
    let ada = db.create_user(&profile("ada@example.com")).unwrap();
    let bob = db.create_user(&profile("bob@example.com")).unwrap();
    db.link_account(&ada.id, &oauth_account("github", "1", Some("r"), Some("a")))
        .unwrap();
    db.set_password(&ada.id, "correct horse").unwrap();
    let session_token = db.create_session(&ada.id).unwrap().session_token;
    let p = EmailProvider::new("email", |_| Ok(()));
    db.create_verification_request(
        "ada@example.com",
        "https://x/cb",
        "746f6b2d726566757361c3a5c3a5c3a531",
        "sec",
        &p,
    )
    .unwrap();
    db.create_verification_token(&VerificationToken {
        identifier: "bob@example.com".into(),
        token: authdb::hash_verification_token("t2", "sec"),
        expires: db.now() + Duration::hours(1),
    })
    .unwrap();
    let credential_id = "cred-1".to_owned();
    db.create_authenticator(&NewAuthenticator {
        credential_id: credential_id.clone(),
        user_id: ada.id,
        provider_account_id: "ada-webauthn".into(),
        credential_public_key: "cHVibGlj".into(),
        counter: 5,
        credential_device_type: "singleDevice".into(),
        credential_backed_up: false,
        transports: None,
    })
    .unwrap();
    World {
        ada,
        bob,
        session_token,
        credential_id,
    }
}

type Refusal = (&'static str, Box<dyn Fn(&WriteTxn<'_>, &World) -> Error>);

fn refusals() -> Vec<Refusal> {
    fn err<T: std::fmt::Debug>(r: authdb::Result<T>) -> Error {
        r.expect_err("the operation must be refused")
    }
    let p = || EmailProvider::new("email", |_| Ok(()));
    vec![
        (
            "create_user: taken email",
            Box::new(|tx, _| err(tx.create_user(&profile("ADA@example.com")))),
        ),
        (
            "create_user: invisible character",
            Box::new(|tx, _| err(tx.create_user(&profile("a\u{200B}@x.io")))),
        ),
        (
            "update_user: taken email",
            Box::new(|tx, w| {
                err(tx.update_user(&User {
                    email: Some("bob@example.com".into()),
                    ..w.ada.clone()
                }))
            }),
        ),
        (
            "update_user: missing user",
            Box::new(|tx, w| {
                err(tx.update_user(&User {
                    id: authdb::UserId(uuid::Uuid::now_v7()),
                    ..w.ada.clone()
                }))
            }),
        ),
        (
            "patch_user: taken email",
            Box::new(|tx, w| {
                err(tx.patch_user(
                    &w.ada.id,
                    &UserPatch {
                        email: Some(Some("BOB@example.com".into())),
                        name: Some(Some("x".into())),
                        ..UserPatch::default()
                    },
                ))
            }),
        ),
        (
            "patch_user: extra over the limit",
            Box::new(|tx, w| {
                let mut extra = authdb::Extra::new();
                extra.insert("big".into(), serde_json::Value::String("x".repeat(20_000)));
                err(tx.patch_user(
                    &w.ada.id,
                    &UserPatch {
                        extra: Some(extra),
                        ..UserPatch::default()
                    },
                ))
            }),
        ),
        (
            "link_account: linked to another user",
            Box::new(|tx, w| {
                err(tx.link_account(&w.bob.id, &oauth_account("github", "1", Some("r2"), None)))
            }),
        ),
        (
            "link_account: unknown provider type",
            Box::new(|tx, w| {
                err(tx.link_account(
                    &w.ada.id,
                    &NewAccount {
                        provider_type: "saml".into(),
                        ..oauth_account("x", "y", None, None)
                    },
                ))
            }),
        ),
        (
            "link_account: missing user",
            Box::new(|tx, _| {
                err(tx.link_account(
                    &authdb::UserId(uuid::Uuid::now_v7()),
                    &oauth_account("x", "y", None, None),
                ))
            }),
        ),
        (
            "create_session: missing user",
            Box::new(|tx, _| err(tx.create_session(&authdb::UserId(uuid::Uuid::now_v7())))),
        ),
        (
            "create_session_with: token taken",
            Box::new(|tx, w| {
                err(tx.create_session_with(&NewSession {
                    user_id: w.bob.id,
                    session_token: w.session_token.clone(),
                    expires: tx.now(),
                }))
            }),
        ),
        (
            "create_session_with: empty token",
            Box::new(|tx, w| {
                err(tx.create_session_with(&NewSession {
                    user_id: w.bob.id,
                    session_token: String::new(),
                    expires: tx.now(),
                }))
            }),
        ),
        (
            "create_verification_request: token taken",
            Box::new(move |tx, _| {
                err(tx.create_verification_request(
                    "ada@example.com",
                    "https://x/cb",
                    "746f6b2d726566757361c3a5c3a5c3a531",
                    "sec",
                    &p(),
                ))
            }),
        ),
        (
            "create_verification_request: bad identifier",
            Box::new(move |tx, _| {
                err(tx.create_verification_request(
                    "  ",
                    "https://x/cb",
                    "746f6b2d726566757361c3a5c3a5c3a539",
                    "sec",
                    &p(),
                ))
            }),
        ),
        (
            "create_verification_token: token taken",
            Box::new(|tx, _| {
                err(tx.create_verification_token(&VerificationToken {
                    identifier: "bob@example.com".into(),
                    token: authdb::hash_verification_token("t2", "sec"),
                    expires: tx.now() + Duration::hours(2),
                }))
            }),
        ),
        (
            "create_authenticator: credential taken",
            Box::new(|tx, w| {
                err(tx.create_authenticator(&NewAuthenticator {
                    credential_id: w.credential_id.clone(),
                    user_id: w.bob.id,
                    provider_account_id: "b".into(),
                    credential_public_key: "k".into(),
                    counter: 0,
                    credential_device_type: "singleDevice".into(),
                    credential_backed_up: false,
                    transports: None,
                }))
            }),
        ),
        (
            "create_authenticator: missing user",
            Box::new(|tx, _| {
                err(tx.create_authenticator(&NewAuthenticator {
                    credential_id: "new".into(),
                    user_id: authdb::UserId(uuid::Uuid::now_v7()),
                    provider_account_id: "b".into(),
                    credential_public_key: "k".into(),
                    counter: 0,
                    credential_device_type: "singleDevice".into(),
                    credential_backed_up: false,
                    transports: None,
                }))
            }),
        ),
        (
            "update_authenticator_counter: not increased",
            Box::new(|tx, w| err(tx.update_authenticator_counter(&w.credential_id, 5))),
        ),
        (
            "update_authenticator_counter: unknown",
            Box::new(|tx, _| err(tx.update_authenticator_counter("nope", 9))),
        ),
        (
            "set_password: empty",
            Box::new(|tx, w| err(tx.set_password(&w.ada.id, ""))),
        ),
        (
            "set_password: missing user",
            Box::new(|tx, _| err(tx.set_password(&authdb::UserId(uuid::Uuid::now_v7()), "pw"))),
        ),
    ]
}

#[test]
fn every_refusal_inside_a_committed_transaction_leaves_the_store_unchanged() {
    // The detector detects: a write as small as a counter step changes the dump.
    {
        let (db, _clock) = mem_db();
        let w = populate(&db);
        let before = dump(&db);
        db.update_authenticator_counter(&w.credential_id, 6)
            .unwrap();
        assert!(before != dump(&db), "the export must show every write");
    }
    for (name, refuse) in refusals() {
        let (db, _clock) = mem_db();
        let w = populate(&db);
        let before = dump(&db);
        let e = db
            .write(|tx| {
                let e = refuse(tx, &w);
                Ok(e)
            })
            .unwrap();
        assert!(
            !matches!(e, Error::Storage(_) | Error::Corrupt { .. }),
            "{name}: {e}"
        );
        assert!(before == dump(&db), "{name} wrote before refusing ({e})");
        assert!(db.check_integrity().unwrap().is_clean(), "{name}");
    }
}

/// The same refusals through `AuthDb` (group commit), interleaved with healthy writes from
/// other threads: every refusal keeps the store as the healthy writes alone leave it.
#[test]
fn refusals_in_a_shared_batch_do_not_spoil_their_neighbours() {
    let (db, _clock) = mem_db();
    let w = populate(&db);
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let db = db.clone();
            std::thread::spawn(move || {
                for i in 0..20 {
                    db.create_user(&profile(&format!("n{t}-{i}@example.com")))
                        .unwrap();
                    assert!(matches!(
                        db.create_user(&profile("ada@example.com")),
                        Err(Error::EmailTaken)
                    ));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let report = db.check_integrity().unwrap();
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.users, 2 + 80);
    assert_eq!(
        db.get_user_by_email("ada@example.com").unwrap().unwrap().id,
        w.ada.id
    );
}
