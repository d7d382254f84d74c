//! Every documented input limit (src/limits.rs): at the limit accepted, one byte over refused
//! with `InvalidInput { field, TooLong }`, nothing written, and the value never echoed.

mod common;

use authdb::limits::{
    MAX_EMAIL_LEN, MAX_IMAGE_LEN, MAX_NAME_LEN, MAX_OAUTH_TOKEN_LEN, MAX_PASSWORD_LEN,
    MAX_PROVIDER_ACCOUNT_ID_LEN, MAX_PROVIDER_ID_LEN, MAX_TOKEN_LEN, MAX_URL_LEN,
};
use authdb::prelude::*;
use authdb::{AuthDb, Credentials, Error, InputProblem, NewAccount, NewUser, User};
use common::{TempDb, mem_db, oauth_account, profile, recording_provider};

/// A value of exactly `len` bytes made of a marker letter (so an echo would be visible).
fn val(len: usize) -> String {
    "Q".repeat(len)
}

/// An email of exactly `len` bytes.
fn email(len: usize) -> String {
    let domain = "@example.com";
    format!("{}{domain}", "q".repeat(len - domain.len()))
}

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

/// Asserts `err` is `InvalidInput { field, TooLong { len, max } }` and that neither its
/// Display nor its Debug contains `value`.
fn assert_too_long(err: &Error, field: &str, len: usize, max: usize, value: &str) {
    assert!(
        matches!(
            err,
            Error::InvalidInput {
                field: f,
                problem: InputProblem::TooLong { len: l, max: m }
            } if *f == field && *l == len && *m == max
        ),
        "expected {field} TooLong {len}/{max}, got {err:?}"
    );
    let shown = format!("{err} {err:?}");
    let probe = &value[..value.len().min(16)];
    assert!(
        !shown.contains(probe),
        "error output echoes the value: {shown}"
    );
    assert!(shown.contains(field), "{shown}");
}

#[test]
fn documented_limit_values() {
    // The numbers SPEC.md promises.
    assert_eq!(MAX_EMAIL_LEN, 320);
    assert_eq!(MAX_NAME_LEN, 1024);
    assert_eq!(MAX_IMAGE_LEN, 8 * 1024);
    assert_eq!(MAX_PROVIDER_ID_LEN, 128);
    assert_eq!(MAX_PROVIDER_ACCOUNT_ID_LEN, 512);
    assert_eq!(MAX_OAUTH_TOKEN_LEN, 8 * 1024);
    assert_eq!(MAX_PASSWORD_LEN, 1024);
    assert_eq!(MAX_URL_LEN, 8 * 1024);
    assert_eq!(MAX_TOKEN_LEN, 1024);
}

#[test]
fn user_fields_at_and_over_the_limit() {
    let t = TempDb::new();
    let (at_id, at_email) = {
        let db = t.open();
        let at = NewUser {
            name: Some(val(MAX_NAME_LEN)),
            email: Some(email(MAX_EMAIL_LEN)),
            image: Some(val(MAX_IMAGE_LEN)),
            email_verified: None,
            ..Default::default()
        };
        let u = db.create_user(&at).unwrap();
        assert_eq!(u.name.as_ref().map(String::len), Some(MAX_NAME_LEN));
        assert_eq!(u.image.as_ref().map(String::len), Some(MAX_IMAGE_LEN));

        let over_cases: [(&str, NewUser, usize, usize); 3] = [
            (
                "name",
                NewUser {
                    name: Some(val(MAX_NAME_LEN + 1)),
                    ..NewUser::default()
                },
                MAX_NAME_LEN + 1,
                MAX_NAME_LEN,
            ),
            (
                "email",
                profile(&email(MAX_EMAIL_LEN + 1)),
                MAX_EMAIL_LEN + 1,
                MAX_EMAIL_LEN,
            ),
            (
                "image",
                NewUser {
                    image: Some(val(MAX_IMAGE_LEN + 1)),
                    ..NewUser::default()
                },
                MAX_IMAGE_LEN + 1,
                MAX_IMAGE_LEN,
            ),
        ];
        for (field, p, len, max) in &over_cases {
            let err = db.create_user(p).unwrap_err();
            let value = match *field {
                "email" => p.email.clone().unwrap(),
                _ => val(*len),
            };
            assert_too_long(&err, field, *len, *max, &value);
            // Same refusal through update_user, which leaves the stored user as it was.
            let err = db
                .update_user(&User {
                    name: p.name.clone(),
                    email: p.email.clone(),
                    image: p.image.clone(),
                    ..u.clone()
                })
                .unwrap_err();
            assert_too_long(&err, field, *len, *max, &value);
            assert_eq!(db.get_user(&u.id).unwrap().as_ref(), Some(&u));
        }
        assert_eq!(counts(&db), (1, 0, 0, 0, 0));
        assert_eq!(
            db.get_user_by_email(&email(MAX_EMAIL_LEN + 1)).unwrap(),
            None
        );
        (u.id, email(MAX_EMAIL_LEN))
    };
    let db = t.open();
    let u = db
        .get_user_by_email(&at_email.to_uppercase())
        .unwrap()
        .unwrap();
    assert_eq!(u.id, at_id);
    assert_eq!(u.name.map(|n| n.len()), Some(MAX_NAME_LEN));
    assert_eq!(u.image.map(|n| n.len()), Some(MAX_IMAGE_LEN));
    assert_eq!(counts(&db), (1, 0, 0, 0, 0));
}

#[test]
fn email_limit_counts_bytes_and_surrounding_white_space() {
    let (db, _clock) = mem_db();
    // Multi-byte: 'é' is 2 bytes; lowercase keeps the length.
    let local = "é".repeat((MAX_EMAIL_LEN - 12) / 2);
    let e = format!("{local}@example.com");
    assert_eq!(e.len(), MAX_EMAIL_LEN);
    db.create_user(&profile(&e)).unwrap();
    // The raw value is what is limited: padding pushes a 320-byte address over.
    let padded = format!(" {}", email(MAX_EMAIL_LEN));
    let err = db.create_user(&profile(&padded)).unwrap_err();
    assert_too_long(
        &err,
        "email",
        MAX_EMAIL_LEN + 1,
        MAX_EMAIL_LEN,
        &email(MAX_EMAIL_LEN),
    );
    assert_eq!(counts(&db).0, 1);
}

#[test]
fn email_that_grows_when_lowercased_is_refused() {
    let (db, _clock) = mem_db();
    // 'İ' (2 bytes) lowercases to "i̇" (3 bytes): 320 bytes given, 474 after normalization.
    let e = format!("{}@example.com", "İ".repeat((MAX_EMAIL_LEN - 12) / 2));
    assert_eq!(e.len(), MAX_EMAIL_LEN);
    let norm_len = authdb::normalize_email(&e).len();
    assert!(norm_len > MAX_EMAIL_LEN);
    let err = db.create_user(&profile(&e)).unwrap_err();
    assert_too_long(&err, "email", norm_len, MAX_EMAIL_LEN, &e);
    assert_eq!(counts(&db).0, 0);
}

#[test]
fn account_fields_at_and_over_the_limit() {
    let t = TempDb::new();
    let uid = {
        let db = t.open();
        let u = db.create_user(&NewUser::default()).unwrap();
        let at = NewAccount {
            // provider_type is one of four words now; its length limit is checked below.
            provider_type: "oidc".into(),
            provider_id: "p".repeat(MAX_PROVIDER_ID_LEN),
            provider_account_id: "a".repeat(MAX_PROVIDER_ACCOUNT_ID_LEN),
            refresh_token: Some(val(MAX_OAUTH_TOKEN_LEN)),
            access_token: Some(val(MAX_OAUTH_TOKEN_LEN)),
            access_token_expires: None,
            ..Default::default()
        };
        let acc = db.link_account(&u.id, &at).unwrap();
        assert_eq!(
            acc.refresh_token.as_ref().map(String::len),
            Some(MAX_OAUTH_TOKEN_LEN)
        );

        let base = oauth_account("github", "1", None, None);
        let cases: [(&str, NewAccount, usize, usize); 5] = [
            (
                "provider_type",
                NewAccount {
                    provider_type: val(MAX_PROVIDER_ID_LEN + 1),
                    ..base.clone()
                },
                MAX_PROVIDER_ID_LEN + 1,
                MAX_PROVIDER_ID_LEN,
            ),
            (
                "provider_id",
                NewAccount {
                    provider_id: val(MAX_PROVIDER_ID_LEN + 1),
                    ..base.clone()
                },
                MAX_PROVIDER_ID_LEN + 1,
                MAX_PROVIDER_ID_LEN,
            ),
            (
                "provider_account_id",
                NewAccount {
                    provider_account_id: val(MAX_PROVIDER_ACCOUNT_ID_LEN + 1),
                    ..base.clone()
                },
                MAX_PROVIDER_ACCOUNT_ID_LEN + 1,
                MAX_PROVIDER_ACCOUNT_ID_LEN,
            ),
            (
                "refresh_token",
                NewAccount {
                    refresh_token: Some(val(MAX_OAUTH_TOKEN_LEN + 1)),
                    ..base.clone()
                },
                MAX_OAUTH_TOKEN_LEN + 1,
                MAX_OAUTH_TOKEN_LEN,
            ),
            (
                "access_token",
                NewAccount {
                    access_token: Some(val(MAX_OAUTH_TOKEN_LEN + 1)),
                    ..base.clone()
                },
                MAX_OAUTH_TOKEN_LEN + 1,
                MAX_OAUTH_TOKEN_LEN,
            ),
        ];
        for (field, acc, len, max) in &cases {
            let err = db.link_account(&u.id, acc).unwrap_err();
            assert_too_long(&err, field, *len, *max, &val(*len));
        }
        assert_eq!(counts(&db), (1, 1, 0, 0, 0));
        assert_eq!(
            db.get_user_by_provider_account_id("github", "1").unwrap(),
            None
        );

        // A re-link of the existing account with an oversized token changes nothing.
        let err = db
            .link_account(
                &u.id,
                &NewAccount {
                    refresh_token: Some(val(MAX_OAUTH_TOKEN_LEN + 1)),
                    access_token: Some("short".into()),
                    ..at.clone()
                },
            )
            .unwrap_err();
        assert_too_long(
            &err,
            "refresh_token",
            MAX_OAUTH_TOKEN_LEN + 1,
            MAX_OAUTH_TOKEN_LEN,
            &val(MAX_OAUTH_TOKEN_LEN + 1),
        );
        u.id
    };
    let db = t.open();
    // A re-link without tokens echoes what is stored: the at-limit tokens survived.
    let echo = db
        .link_account(
            &uid,
            &NewAccount {
                provider_type: "oidc".into(),
                provider_id: "p".repeat(MAX_PROVIDER_ID_LEN),
                provider_account_id: "a".repeat(MAX_PROVIDER_ACCOUNT_ID_LEN),
                refresh_token: None,
                access_token: None,
                access_token_expires: None,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(echo.refresh_token, Some(val(MAX_OAUTH_TOKEN_LEN)));
    assert_eq!(echo.access_token, Some(val(MAX_OAUTH_TOKEN_LEN)));
    assert_eq!(counts(&db), (1, 1, 0, 0, 0));
}

#[test]
fn password_at_and_over_the_limit() {
    let t = TempDb::new();
    let at = val(MAX_PASSWORD_LEN);
    let over = val(MAX_PASSWORD_LEN + 1);
    {
        let db = t.open();
        let u = db.create_user(&profile("a@example.com")).unwrap();
        let err = db.set_password(&u.id, &over).unwrap_err();
        assert_too_long(
            &err,
            "password",
            MAX_PASSWORD_LEN + 1,
            MAX_PASSWORD_LEN,
            &over,
        );
        let err = db.write(|tx| tx.set_password(&u.id, &over)).unwrap_err();
        assert_too_long(
            &err,
            "password",
            MAX_PASSWORD_LEN + 1,
            MAX_PASSWORD_LEN,
            &over,
        );
        assert_eq!(counts(&db).4, 0);
        db.set_password(&u.id, &at).unwrap();
        let err = db
            .get_user_by_credentials(&Credentials {
                email: "a@example.com".into(),
                password: over.clone(),
            })
            .unwrap_err();
        assert_too_long(
            &err,
            "password",
            MAX_PASSWORD_LEN + 1,
            MAX_PASSWORD_LEN,
            &over,
        );
    }
    let db = t.open();
    assert_eq!(counts(&db).4, 1);
    assert!(
        db.get_user_by_credentials(&Credentials {
            email: "a@example.com".into(),
            password: at,
        })
        .unwrap()
        .is_some()
    );
}

#[test]
fn verification_fields_at_and_over_the_limit() {
    let t = TempDb::new();
    let (p, sent) = recording_provider();
    let ident = email(MAX_EMAIL_LEN);
    let url = val(MAX_URL_LEN);
    let token = "t".repeat(MAX_TOKEN_LEN);
    let secret = "s".repeat(MAX_TOKEN_LEN);
    {
        let db = t.open();
        db.create_verification_request(&ident, &url, &token, &secret, &p)
            .unwrap();
        assert_eq!(sent.lock().len(), 1);

        let over_ident = email(MAX_EMAIL_LEN + 1);
        let over_url = val(MAX_URL_LEN + 1);
        let over_token = val(MAX_TOKEN_LEN + 1);
        // Raw tokens carry the 128 bits of the entropy floor (32 hex characters).
        let x = "0123456789abcdef0123456789abcdef";
        let cases = [
            (
                "identifier",
                over_ident.as_str(),
                url.as_str(),
                x,
                "y",
                MAX_EMAIL_LEN,
            ),
            (
                "url",
                "a@example.com",
                over_url.as_str(),
                x,
                "y",
                MAX_URL_LEN,
            ),
            (
                "token",
                "a@example.com",
                "u",
                over_token.as_str(),
                "y",
                MAX_TOKEN_LEN,
            ),
            (
                "secret",
                "a@example.com",
                "u",
                x,
                over_token.as_str(),
                MAX_TOKEN_LEN,
            ),
        ];
        for (field, i, u, tk, s, max) in cases {
            let err = db.create_verification_request(i, u, tk, s, &p).unwrap_err();
            let value = match field {
                "identifier" => i,
                "url" => u,
                "token" => tk,
                _ => s,
            };
            assert_too_long(&err, field, max + 1, max, value);
        }
        assert_eq!(sent.lock().len(), 1, "refused requests send nothing");
        assert_eq!(counts(&db).3, 1);
    }
    let db = t.open();
    assert_eq!(counts(&db).3, 1);
    assert!(
        db.use_verification_request(&ident.to_uppercase(), &token, &secret)
            .unwrap()
            .is_some()
    );
}

#[test]
fn oversized_lookups_are_just_not_found() {
    // Reads take any string: a huge probe is hashed or looked up, never an error or panic.
    let (db, _clock) = mem_db();
    let (p, _sent) = recording_provider();
    let huge = val(1 << 20);
    assert_eq!(db.get_user_by_email(&huge).unwrap(), None);
    assert_eq!(db.get_session(&huge).unwrap(), None);
    assert_eq!(
        db.get_user_by_provider_account_id(&huge, &huge).unwrap(),
        None
    );
    assert_eq!(
        db.get_verification_request(&huge, &huge, &huge, &p)
            .unwrap(),
        None
    );
    db.delete_session(&huge).unwrap();
    db.delete_verification_request(&huge, &huge, &huge, &p)
        .unwrap();
    assert_eq!(counts(&db), (0, 0, 0, 0, 0));
}
