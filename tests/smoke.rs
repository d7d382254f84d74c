mod common;

use authdb::{Adapter, NewUser};
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
