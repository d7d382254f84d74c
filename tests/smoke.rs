mod common;

use authdb::NewUser;
use authdb::prelude::*;
use common::TempDb;

#[test]
fn create_read_reopen() {
    let t = TempDb::new();
    let (uid, token) = {
        let db = t.open();
        let u = db
            .create_user(&NewUser {
                email: Some("Ada@Example.com".into()),
                ..NewUser::default()
            })
            .unwrap();
        let s = db.create_session(&u.id).unwrap();
        common::assert_clean(&db);
        (u.id, s.session_token)
    };
    let db = t.open();
    assert_eq!(
        db.get_user_by_email(" ada@example.COM")
            .unwrap()
            .unwrap()
            .id,
        uid
    );
    let s = db.get_session(&token).unwrap().unwrap();
    assert_eq!(s.user_id, uid);
    assert_eq!(s.session_token, token);
    common::assert_clean(&db);
    // The plain token never reaches the file.
    drop(db);
    let bytes = common::file_bytes(&t.path());
    assert!(!bytes.windows(token.len()).any(|w| w == token.as_bytes()));
}

#[test]
fn second_open_is_a_clear_error() {
    let t = TempDb::new();
    let _db = t.open();
    let err = common::builder(&t.clock).open(t.path()).unwrap_err();
    assert!(matches!(err, authdb::Error::AlreadyOpen), "{err:?}");
}

#[cfg(unix)]
#[test]
fn new_file_is_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let t = TempDb::new();
    drop(t.open());
    let mode = std::fs::metadata(t.path()).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
}

#[test]
fn ids_display_and_parse() {
    let db = authdb::AuthDb::builder().in_memory().unwrap();
    let u = db.create_user(&NewUser::default()).unwrap();
    let parsed: authdb::UserId = u.id.to_string().parse().unwrap();
    assert_eq!(parsed, u.id);
    assert!("not-a-uuid".parse::<authdb::UserId>().is_err());
    // UUID v7: time-ordered ids.
    assert_eq!(u.id.0.get_version_num(), 7);
}

#[test]
fn oauth_tokens_are_encrypted_at_rest() {
    use authdb::{EncryptionKey, Error, NewAccount};
    let t = TempDb::new();
    let account = NewAccount {
        provider_type: "oauth".into(),
        provider_id: "github".into(),
        provider_account_id: "77".into(),
        refresh_token: Some("refresh-SECRET-1234567890".into()),
        access_token: Some("access-SECRET-1234567890".into()),
        access_token_expires: None,
        ..Default::default()
    };
    let uid = {
        let db = t.open();
        let u = db.create_user(&NewUser::default()).unwrap();
        let a = db.link_account(&u.id, &account).unwrap();
        assert_eq!(a.access_token.as_deref(), Some("access-SECRET-1234567890"));
        u.id
    };
    let bytes = common::file_bytes(&t.path());
    for secret in ["refresh-SECRET", "access-SECRET"] {
        assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()));
    }
    // Read back with the key.
    let db = t.open();
    let accounts = db.list_accounts(&uid).unwrap();
    assert_eq!(accounts.len(), 1);
    assert_eq!(
        accounts[0].refresh_token.as_deref(),
        Some("refresh-SECRET-1234567890")
    );
    assert_eq!(
        db.get_account("github", "77")
            .unwrap()
            .unwrap()
            .access_token
            .as_deref(),
        Some("access-SECRET-1234567890")
    );
    drop(db);
    // A wrong key cannot read them (and says so); no key cannot store new ones.
    let wrong = common::builder(&t.clock)
        .encryption_key(EncryptionKey::from_bytes([1; 32]))
        .open(t.path())
        .unwrap();
    assert!(matches!(
        wrong.list_accounts(&uid),
        Err(Error::Corrupt { .. })
    ));
    drop(wrong);
    let keyless = authdb::AuthDb::builder().in_memory().unwrap();
    let u = keyless.create_user(&NewUser::default()).unwrap();
    assert!(matches!(
        keyless.link_account(&u.id, &account),
        Err(Error::EncryptionKeyRequired)
    ));
    assert!(keyless.list_accounts(&u.id).unwrap().is_empty());
    let no_tokens = NewAccount {
        refresh_token: None,
        access_token: None,
        ..account
    };
    keyless.link_account(&u.id, &no_tokens).unwrap();
}

#[test]
fn compact_needs_the_only_handle_and_keeps_data() {
    let t = TempDb::new();
    let mut db = t.open();
    let mut tokens = Vec::new();
    for i in 0..300 {
        let u = db
            .create_user(&NewUser {
                email: Some(format!("u{i}@example.com")),
                ..NewUser::default()
            })
            .unwrap();
        tokens.push((u.id, db.create_session(&u.id).unwrap().session_token));
    }
    for (uid, _) in tokens.iter().skip(10) {
        db.delete_user(uid).unwrap();
    }
    let clone = db.clone();
    assert!(matches!(db.compact(), Err(authdb::Error::Busy)));
    drop(clone);
    let before = std::fs::metadata(t.path()).unwrap().len();
    assert!(db.compact().unwrap());
    let after = std::fs::metadata(t.path()).unwrap().len();
    assert!(after < before, "{after} < {before}");
    for (uid, token) in tokens.iter().take(10) {
        assert_eq!(&db.get_session(token).unwrap().unwrap().user_id, uid);
    }
    common::assert_clean(&db);
    drop(db);
    let db = t.open();
    assert_eq!(db.check_integrity().unwrap().users, 10);
}
