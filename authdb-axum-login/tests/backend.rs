//! The backend without HTTP: the session hash follows the security stamp, the OAuth linking
//! rules, sign-up's checks, permissions, and what `Debug` shows.

use std::collections::HashSet;

use authdb::prelude::*;
use authdb::{AuthDb, EncryptionKey, NewAccount, NewUser, UserPatch};
use authdb_axum_login::{
    Backend, Credentials, Error, OAuthCredentials, OAuthOutcome, OAuthProfile, User, oauth_sign_in,
    permissions_of,
};
use axum_login::{AuthUser, AuthnBackend, AuthzBackend};
use serde_json::json;

fn db() -> AuthDb {
    AuthDb::builder()
        .encryption_key(EncryptionKey::from_bytes([9; 32]))
        // The stamp alone must end sessions, without the session records being deleted.
        .password_change_ends_sessions(false)
        .in_memory()
        .unwrap()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn hash_of(db: &AuthDb, u: &User) -> Vec<u8> {
    User::new(db.get_user(&u.id()).unwrap().unwrap())
        .session_auth_hash()
        .to_vec()
}

fn oauth(sub: &str, email: Option<&str>, verified: bool) -> OAuthCredentials {
    OAuthCredentials {
        account: NewAccount {
            provider_type: "oauth".into(),
            provider_id: "mock".into(),
            provider_account_id: sub.into(),
            access_token: Some("access-token-0123456789abcdef0123456789abcdef".into()),
            refresh_token: Some("refresh-token-0123456789abcdef0123456789abcdef".into()),
            ..NewAccount::default()
        },
        profile: OAuthProfile {
            name: Some(format!("Person {sub}")),
            email: email.map(str::to_owned),
            email_verified: verified,
            image: None,
        },
    }
}

#[test]
fn the_session_hash_follows_the_security_stamp() {
    let db = db();
    let backend = Backend::new(db.clone());
    rt().block_on(async {
        let ada = NewUser {
            email: Some("ada@example.com".into()),
            ..NewUser::default()
        };
        let user = backend.sign_up(ada, "first password".into()).await.unwrap();
        let h0 = user.session_auth_hash().to_vec();
        assert_eq!(h0.len(), 32);
        assert_eq!(hash_of(&db, &user), h0);

        // A profile change keeps sessions.
        let rename = UserPatch {
            name: Some(Some("Ada L.".into())),
            ..UserPatch::default()
        };
        db.patch_user(&user.id(), &rename).unwrap();
        assert_eq!(hash_of(&db, &user), h0);

        // Each credential event gives a new hash.
        let changed = backend
            .change_password(&user.id(), "second password")
            .await
            .unwrap();
        let h1 = changed.session_auth_hash().to_vec();
        assert_ne!(h1, h0);
        assert_eq!(hash_of(&db, &user), h1);
        backend.sign_out_everywhere(&user.id()).await.unwrap();
        let h2 = hash_of(&db, &user);
        assert_ne!(h2, h1);
        let new_email = UserPatch {
            email: Some(Some("ada@lovelace.example".into())),
            ..UserPatch::default()
        };
        db.patch_user(&user.id(), &new_email).unwrap();
        assert_ne!(hash_of(&db, &user), h2);

        // axum-login reloads the user by id on every request.
        let loaded = backend.get_user(&user.id()).await.unwrap().unwrap();
        assert_eq!(loaded.session_auth_hash(), hash_of(&db, &user).as_slice());
    });
}

#[test]
fn password_authentication() {
    let db = db();
    let backend = Backend::new(db.clone());
    rt().block_on(async {
        let ada = NewUser {
            email: Some("ada@example.com".into()),
            ..NewUser::default()
        };
        let user = backend.sign_up(ada, "first password".into()).await.unwrap();
        let ok = Credentials::password("ADA@example.com ", "first password");
        assert_eq!(
            backend.authenticate(ok).await.unwrap().unwrap().id(),
            user.id()
        );
        for (email, pw) in [
            ("ada@example.com", "wrong password"),
            ("bob@example.com", "first password"),
            ("", "first password"),
            ("ada@example.com", ""),
        ] {
            let c = Credentials::password(email, pw);
            assert!(backend.authenticate(c).await.unwrap().is_none(), "{email}");
        }
        let long = Credentials::password("ada@example.com", "x".repeat(2000));
        assert!(backend.authenticate(long).await.unwrap().is_none());
    });
}

#[test]
fn sign_up_checks_before_writing() {
    let db = db();
    let backend = Backend::new(db.clone());
    rt().block_on(async {
        let ada = || NewUser {
            email: Some("ada@example.com".into()),
            ..NewUser::default()
        };
        let e = backend.sign_up(ada(), String::new()).await.unwrap_err();
        assert!(
            matches!(e, Error::Store(authdb::Error::InvalidInput { .. })),
            "{e:?}"
        );
        let e = backend.sign_up(ada(), "x".repeat(2000)).await.unwrap_err();
        assert!(
            matches!(e, Error::Store(authdb::Error::InvalidInput { .. })),
            "{e:?}"
        );
        let e = backend
            .sign_up(NewUser::default(), "a password".into())
            .await
            .unwrap_err();
        assert!(
            matches!(e, Error::Store(authdb::Error::InvalidValue { .. })),
            "{e:?}"
        );
        assert!(db.get_user_by_email("ada@example.com").unwrap().is_none());

        backend.sign_up(ada(), "a password".into()).await.unwrap();
        let e = backend.sign_up(ada(), "other".into()).await.unwrap_err();
        assert!(
            matches!(e, Error::Store(authdb::Error::EmailTaken)),
            "{e:?}"
        );
    });
}

#[test]
fn oauth_linking_rules() {
    let db = db();
    // New account, new email: a user is created and the account linked.
    let out = db
        .write(|tx| oauth_sign_in(tx, &oauth("1", Some("Grace@Example.com"), true)))
        .unwrap();
    let OAuthOutcome::Created(grace) = out else {
        panic!("expected a new user, got {out:?}")
    };
    assert_eq!(grace.email.as_deref(), Some("grace@example.com"));
    let account = db.get_account("mock", "1").unwrap().unwrap();
    assert_eq!(account.user_id, grace.id);
    assert_eq!(account.extra.get("email_verified"), Some(&json!(true)));

    // The same account again: that user, tokens refreshed.
    let mut again = oauth("1", Some("grace@example.com"), true);
    again.account.access_token = Some("access-token-ffffffffffffffffffffffffffffffff".into());
    let out = db.write(|tx| oauth_sign_in(tx, &again)).unwrap();
    assert!(
        matches!(&out, OAuthOutcome::Existing(u) if u.id == grace.id),
        "{out:?}"
    );
    assert_eq!(
        db.get_account("mock", "1").unwrap().unwrap().access_token,
        again.account.access_token
    );

    // Another account whose verified email is Grace's: refused, nothing written.
    let out = db
        .write(|tx| oauth_sign_in(tx, &oauth("2", Some("grace@example.com"), true)))
        .unwrap();
    assert!(matches!(out, OAuthOutcome::NotLinked), "{out:?}");
    assert!(db.get_account("mock", "2").unwrap().is_none());
    let backend = Backend::new(db.clone());
    let e = rt()
        .block_on(backend.authenticate(Credentials::OAuth(oauth(
            "2",
            Some("grace@example.com"),
            true,
        ))))
        .unwrap_err();
    assert!(matches!(e, Error::OAuthAccountNotLinked), "{e:?}");

    // The same email unverified: neither matched nor stored.
    let out = db
        .write(|tx| oauth_sign_in(tx, &oauth("3", Some("grace@example.com"), false)))
        .unwrap();
    let OAuthOutcome::Created(other) = out else {
        panic!("expected a new user, got {out:?}")
    };
    assert_ne!(other.id, grace.id);
    assert_eq!(other.email, None);

    // An invalid account (empty provider account id): the whole sign-in is undone.
    let e = db
        .write(|tx| oauth_sign_in(tx, &oauth("", Some("new@example.com"), true)))
        .unwrap_err();
    assert!(matches!(e, authdb::Error::InvalidInput { .. }), "{e:?}");
    assert!(db.get_user_by_email("new@example.com").unwrap().is_none());
    let report = db.check_integrity().unwrap();
    assert!(report.is_clean(), "{report:?}");
}

#[test]
fn permissions_come_from_the_extra_field() {
    let db = db();
    let backend = Backend::new(db.clone());
    let set = |v: serde_json::Value| {
        let mut extra = authdb::Extra::new();
        extra.insert("permissions".into(), v);
        NewUser {
            email: Some(format!("u{}@example.com", rand_suffix())),
            extra,
            ..NewUser::default()
        }
    };
    let plain = User::new(db.create_user(&NewUser::default()).unwrap());
    assert!(permissions_of(plain.profile()).unwrap().is_empty());
    let admin = User::new(db.create_user(&set(json!(["admin", "billing"]))).unwrap());
    assert_eq!(
        permissions_of(admin.profile()).unwrap(),
        HashSet::from(["admin".to_owned(), "billing".to_owned()])
    );
    for bad in [json!("admin"), json!([1]), json!({"admin": true})] {
        let u = User::new(db.create_user(&set(bad)).unwrap());
        assert!(matches!(
            permissions_of(u.profile()),
            Err(Error::MalformedPermissions(id)) if id == u.id()
        ));
    }
    rt().block_on(async {
        assert!(backend.has_perm(&admin, "admin".into()).await.unwrap());
        assert!(!backend.has_perm(&admin, "root".into()).await.unwrap());
        assert!(!backend.has_perm(&plain, "admin".into()).await.unwrap());
    });
}

fn rand_suffix() -> String {
    authdb::backend::random_session_token().unwrap()[..12].to_owned()
}

#[test]
fn debug_shows_no_secret() {
    let db = db();
    let user = User::new(db.create_user(&NewUser::default()).unwrap());
    let stamp_hex = authdb::backend::hex(&user.profile().security_stamp);
    let hash_hex = authdb::backend::hex(user.session_auth_hash());
    let shown = format!("{user:?}");
    assert!(
        !shown.contains(&stamp_hex) && !shown.contains(&hash_hex),
        "{shown}"
    );
    assert!(
        !shown.contains(&format!("{:?}", user.session_auth_hash())),
        "{shown}"
    );

    let creds = Credentials::OAuth(oauth("1", Some("grace@example.com"), true));
    let shown = format!("{creds:?}");
    for secret in ["access-token-", "refresh-token-", "grace@example.com"] {
        assert!(!shown.contains(secret), "{shown}");
    }
    let shown = format!(
        "{:?}",
        Credentials::password("a@example.com", "hunter2 hunter2")
    );
    assert!(!shown.contains("hunter2"), "{shown}");
}
