//! Hardening, tried as an attacker would: look-alike email addresses, weak secrets, guessable
//! verification and session tokens (and the failed-attempt limit of short codes), sessions
//! that outlive a password change, unbounded session counts and lifetimes, a planted symlink,
//! a database file others can read.

mod common;

use std::sync::{Arc, Mutex};

use authdb::prelude::*;
use authdb::{AuthDb, EmailProvider, EncryptionKey, Error, InputProblem, NewUser};
use chrono::Duration;
use common::{TempDb, mem_db, profile};

/// A provider that records the address each link was mailed to.
fn recipients() -> (EmailProvider, Arc<Mutex<Vec<String>>>) {
    let sent = Arc::new(Mutex::new(Vec::new()));
    let s = Arc::clone(&sent);
    let p = EmailProvider::new("email", move |mail| {
        s.lock().unwrap().push(mail.identifier.to_owned());
        Ok(())
    });
    (p, sent)
}

#[test]
fn a_look_alike_address_reaches_the_account_not_the_typist() {
    let (db, _clock) = mem_db();
    let kevin = db.create_user(&profile("kevin@x.io")).unwrap();
    let (p, sent) = recipients();
    // The Kelvin sign (U+212A) folds to K under NFKC: the same account...
    let kelvin = "\u{212A}evin@x.io";
    assert_eq!(db.get_user_by_email(kelvin).unwrap().unwrap().id, kevin.id);
    assert!(matches!(
        db.create_user(&profile(kelvin)),
        Err(Error::EmailTaken)
    ));
    // ...and the link for that account goes to the account's own address.
    db.create_verification_request(
        kelvin,
        "https://x/cb",
        "6b656c76696e2d746f6b656e2d303031",
        "s",
        &p,
    )
    .unwrap();
    // An address with no account yet gets the normalized form, never the typed look-alike.
    db.create_verification_request(
        "ANA\u{FF20}Y.IO",
        "https://x/cb",
        "66756c6c77696474682d746f6b656e31",
        "s",
        &p,
    )
    .unwrap();
    assert_eq!(
        *sent.lock().unwrap(),
        vec!["kevin@x.io".to_owned(), "ana@y.io".to_owned()]
    );
}

#[test]
fn fullwidth_at_sign_is_the_same_address() {
    let (db, _clock) = mem_db();
    db.create_user(&profile("ada@x.io")).unwrap();
    assert!(matches!(
        db.create_user(&profile("ada\u{FF20}x.io")),
        Err(Error::EmailTaken)
    ));
}

#[test]
fn bidi_and_invisible_characters_are_refused() {
    let (db, _clock) = mem_db();
    let (p, sent) = recipients();
    for bad in [
        "ada\u{202E}@x.io",
        "ada\u{200B}@x.io",
        "\u{2066}ada@x.io",
        "ada@x.io\u{FEFF}",
    ] {
        assert!(
            matches!(
                db.create_user(&profile(bad)),
                Err(Error::InvalidValue { field: "email", .. })
            ),
            "{bad:?}"
        );
        assert!(matches!(
            db.create_verification_request(bad, "https://x/cb", "tok-0123456789abcdef", "s", &p),
            Err(Error::InvalidValue {
                field: "identifier",
                ..
            })
        ));
    }
    assert!(sent.lock().unwrap().is_empty());
    assert_eq!(db.check_integrity().unwrap().users, 0);
}

#[test]
fn dotless_and_dotted_i_stay_distinct_from_i() {
    let (db, _clock) = mem_db();
    let plain = db.create_user(&profile("i@x.io")).unwrap();
    let dotless = db.create_user(&profile("\u{0131}@x.io")).unwrap();
    let dotted = db.create_user(&profile("\u{0130}@x.io")).unwrap();
    assert_ne!(plain.id, dotless.id);
    assert_ne!(plain.id, dotted.id);
    assert_eq!(
        db.get_user_by_email("I@X.IO").unwrap().unwrap().id,
        plain.id
    );
    assert_eq!(
        db.get_user_by_email("\u{0131}@x.io").unwrap().unwrap().id,
        dotless.id
    );
}

#[test]
fn weak_secrets_make_no_key() {
    for weak in ["", "x", "hunter2", &"a".repeat(31)] {
        assert!(matches!(
            EncryptionKey::from_secret(weak),
            Err(Error::InvalidInput {
                problem: InputProblem::TooShort { min: 32, .. },
                ..
            })
        ));
    }
    let secret = "0123456789abcdef0123456789abcdef";
    let k = EncryptionKey::from_secret(secret).unwrap();
    assert_eq!(k, EncryptionKey::from_secret(secret).unwrap());
    assert_ne!(
        k,
        EncryptionKey::from_secret("0123456789abcdef0123456789abcdeF").unwrap()
    );
    // Not the 0.1 derivation: a file sealed with it needs the legacy key (then a rekey).
    #[allow(deprecated)]
    let legacy = EncryptionKey::from_secret_v1(secret);
    assert_ne!(k, legacy);
}

#[test]
fn tokens_sealed_under_another_key_are_reported_as_such() {
    let t = TempDb::new();
    let uid = {
        let db = t.open();
        let u = db.create_user(&profile("a@x.io")).unwrap();
        db.link_account(
            &u.id,
            &common::oauth_account("github", "1", Some("r"), Some("a")),
        )
        .unwrap();
        u.id
    };
    let other = common::builder(&t.clock)
        .encryption_key(EncryptionKey::generate().unwrap())
        .open(t.path())
        .unwrap();
    let err = other.list_accounts(&uid).unwrap_err();
    assert!(
        err.to_string().contains("different encryption key"),
        "{err}"
    );
}

#[test]
fn a_password_change_ends_every_session_unless_configured_otherwise() {
    let (db, _clock) = mem_db();
    let u = db.create_user(&profile("a@x.io")).unwrap();
    let s1 = db.create_session(&u.id).unwrap();
    let s2 = db.create_session(&u.id).unwrap();
    db.set_password(&u.id, "first password").unwrap();
    assert!(db.get_session(&s1.session_token).unwrap().is_none());
    assert!(db.get_session(&s2.session_token).unwrap().is_none());
    // Inside a transaction too.
    let s3 = db.create_session(&u.id).unwrap();
    db.write(|tx| tx.set_password(&u.id, "second password"))
        .unwrap();
    assert!(db.get_session(&s3.session_token).unwrap().is_none());
    assert!(db.check_integrity().unwrap().is_clean());

    let clock = Arc::new(authdb::ManualClock::new(common::t0()));
    let keep = common::builder(&clock)
        .password_change_ends_sessions(false)
        .in_memory()
        .unwrap();
    let u = keep.create_user(&profile("a@x.io")).unwrap();
    let s = keep.create_session(&u.id).unwrap();
    keep.set_password(&u.id, "first password").unwrap();
    assert!(keep.get_session(&s.session_token).unwrap().is_some());
    assert_ne!(
        keep.get_user(&u.id).unwrap().unwrap().security_stamp,
        u.security_stamp
    );
}

#[test]
fn an_absolute_lifetime_caps_every_extension() {
    let clock = Arc::new(authdb::ManualClock::new(common::t0()));
    let db = common::builder(&clock)
        .session_max_age(Duration::days(30))
        .absolute_session_lifetime(Duration::days(45))
        .in_memory()
        .unwrap();
    let u = db.create_user(&NewUser::default()).unwrap();
    let s = db.create_session(&u.id).unwrap();
    let cap = s.created_at + Duration::days(45);
    clock.advance(Duration::days(20));
    let s = db.update_session(&s, false).unwrap().unwrap();
    assert_eq!(s.expires, cap, "extension stops at creation + 45 days");
    let set = db
        .set_session_expiry(&s.session_token, cap + Duration::days(100))
        .unwrap()
        .unwrap();
    assert_eq!(set.expires, cap);
    // Shortening is always allowed.
    let shorter = db
        .set_session_expiry(&s.session_token, cap - Duration::days(1))
        .unwrap()
        .unwrap();
    assert_eq!(shorter.expires, cap - Duration::days(1));
    clock.set(cap);
    assert!(db.get_session(&s.session_token).unwrap().is_none());
    assert!(db.check_integrity().unwrap().is_clean());
    assert!(
        common::builder(&clock)
            .absolute_session_lifetime(Duration::zero())
            .in_memory()
            .is_err()
    );
}

#[test]
fn a_session_cap_removes_the_oldest() {
    let clock = Arc::new(authdb::ManualClock::new(common::t0()));
    let db = common::builder(&clock)
        .max_sessions_per_user(2)
        .in_memory()
        .unwrap();
    let u = db.create_user(&NewUser::default()).unwrap();
    let other = db.create_user(&NewUser::default()).unwrap();
    let theirs = db.create_session(&other.id).unwrap();
    let mut made = Vec::new();
    for _ in 0..4 {
        clock.advance(Duration::seconds(1));
        made.push(db.create_session(&u.id).unwrap());
    }
    let live: Vec<_> = db
        .list_sessions(&u.id)
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(live, vec![made[2].id, made[3].id]);
    assert!(db.get_session(&made[0].session_token).unwrap().is_none());
    assert!(db.get_session(&theirs.session_token).unwrap().is_some());
    assert!(db.check_integrity().unwrap().is_clean());
    assert!(
        common::builder(&clock)
            .max_sessions_per_user(0)
            .in_memory()
            .is_err()
    );
}

#[cfg(unix)]
#[test]
fn a_symlink_in_place_of_the_database_is_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("elsewhere.redb");
    let link = dir.path().join("auth.redb");
    let clock = Arc::new(authdb::ManualClock::new(common::t0()));
    let made = common::builder(&clock).open(&target).unwrap();
    made.create_user(&profile("victim@x.io")).unwrap();
    drop(made);
    let before = std::fs::read(&target).unwrap();
    std::os::unix::fs::symlink(&target, &link).unwrap();
    assert!(matches!(
        common::builder(&clock).open(&link),
        Err(Error::InvalidConfig(_))
    ));
    assert!(matches!(
        common::builder(&clock).open_read_only(&link),
        Err(Error::InvalidConfig(_))
    ));
    assert_eq!(
        std::fs::read(&target).unwrap(),
        before,
        "nothing written through the link"
    );
    // Allowed explicitly.
    let db = common::builder(&clock)
        .follow_symlinks(true)
        .open(&link)
        .unwrap();
    assert!(db.get_user_by_email("victim@x.io").unwrap().is_some());
}

#[cfg(unix)]
#[test]
fn a_database_others_can_read_is_made_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let t = TempDb::new();
    drop(t.open());
    std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o644)).unwrap();
    drop(t.open());
    let mode = std::fs::metadata(t.path()).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn a_session_cap_never_evicts_the_session_it_just_made() {
    let clock = Arc::new(authdb::ManualClock::new(common::t0()));
    let db = common::builder(&clock)
        .max_sessions_per_user(1)
        .in_memory()
        .unwrap();
    let u = db.create_user(&NewUser::default()).unwrap();
    for token in [
        "session-b-5f1e0c7a2b9d4e8f6a3c1b0d9e8f7a6b",
        "session-a-5f1e0c7a2b9d4e8f6a3c1b0d9e8f7a6b",
        "session-c-5f1e0c7a2b9d4e8f6a3c1b0d9e8f7a6b",
    ] {
        db.create_session_with(&authdb::NewSession {
            user_id: u.id,
            session_token: token.into(),
            expires: db.now() + Duration::hours(1),
        })
        .unwrap();
        // Same microsecond every time: creation order, not token order, decides.
        assert!(
            db.get_session(token).unwrap().is_some(),
            "{token} was evicted"
        );
        assert_eq!(db.list_sessions(&u.id).unwrap().len(), 1);
    }
}

#[test]
fn a_password_change_ends_framework_sessions_and_purge_removes_expired_ones() {
    use authdb::web_sessions::{WebSession, WebSessionId};
    let (db, clock) = mem_db();
    let u = db.create_user(&profile("a@x.io")).unwrap();
    let mine = WebSession {
        id: WebSessionId::from_bytes([1; 16]),
        user_id: Some(u.id),
        expires: db.now() + Duration::hours(1),
        data: b"{}".to_vec(),
    };
    let anon = WebSession {
        id: WebSessionId::from_bytes([2; 16]),
        user_id: None,
        expires: db.now() + Duration::hours(1),
        data: b"{}".to_vec(),
    };
    assert!(db.web_session_create(&mine).unwrap());
    assert!(db.web_session_create(&anon).unwrap());
    db.set_password(&u.id, "new password").unwrap();
    assert!(db.web_session_load(&mine.id).unwrap().is_none());
    assert!(db.web_session_load(&anon.id).unwrap().is_some());
    clock.advance(Duration::hours(2));
    assert_eq!(db.purge_expired().unwrap().web_sessions, 1);
    assert!(db.check_integrity().unwrap().is_clean());
}

#[test]
fn entropy_estimates_follow_the_alphabet() {
    use authdb::limits::token_entropy_bits as bits;
    assert_eq!(bits(""), 0);
    assert_eq!(bits("------"), 0);
    assert_eq!(bits("123456"), 19, "six digits: 6 × log2(10)");
    assert_eq!(bits(&"9".repeat(39)), 129);
    assert_eq!(bits(&"9".repeat(38)), 126);
    assert_eq!(bits("deadbeef"), 32);
    assert_eq!(bits("DEADbeef"), 32, "hex in either case");
    assert_eq!(
        bits("67e55044-10b1-426f-9247-bb680e5fe0c8"),
        128,
        "a UUID: its 32 hex digits, hyphens ignored"
    );
    assert_eq!(bits(&"ab".repeat(32)), 256, "a SHA-256 in hex");
    assert_eq!(bits(&"Z".repeat(22)), 132, "22 base64 characters");
    assert_eq!(
        bits(&format!("{}==", "Z".repeat(22))),
        132,
        "padding counts nothing"
    );
    assert_eq!(bits(&"A".repeat(22)), 88, "only hex digits count as hex");
    assert_eq!(bits("a_b-c"), 30, "base64url");
    assert_eq!(
        bits("ünï"),
        18,
        "anything else: 6 bits a character, not a byte"
    );
}

#[test]
fn a_short_code_is_refused_by_default_naming_the_field_not_the_token() {
    let (db, _clock) = mem_db();
    let (p, sent) = recipients();
    let err = db
        .create_verification_request("a@x.io", "https://x/cb", "482916", "s", &p)
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidInput {
                field: "token",
                problem: InputProblem::TooLittleEntropy { bits: 19, min: 128 }
            }
        ),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains("`token`") && msg.contains("128"), "{msg}");
    assert!(!msg.contains("482916"), "{msg}");
    assert!(sent.lock().unwrap().is_empty(), "nothing was mailed");
    let err = db
        .create_verification_token(&authdb::VerificationToken {
            identifier: "a@x.io".into(),
            token: "x".into(),
            expires: db.now() + Duration::minutes(5),
        })
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidInput {
                field: "token",
                problem: InputProblem::TooLittleEntropy { .. }
            }
        ),
        "{err:?}"
    );
    assert_eq!(db.check_integrity().unwrap().verification_requests, 0);
}

#[test]
fn allowing_short_codes_needs_a_positive_attempt_limit() {
    let clock = Arc::new(authdb::ManualClock::new(common::t0()));
    let err = common::builder(&clock)
        .allow_short_verification_tokens(0)
        .in_memory()
        .unwrap_err();
    assert!(matches!(err, Error::InvalidConfig(_)), "{err:?}");
    assert!(
        common::builder(&clock)
            .allow_short_verification_tokens(1)
            .in_memory()
            .is_ok()
    );
}

fn short_code_db(t: &TempDb, max: u32) -> AuthDb {
    common::builder(&t.clock)
        .durability(authdb::Durability::Immediate)
        .allow_short_verification_tokens(max)
        .open(t.path())
        .unwrap()
}

#[test]
fn failed_attempts_survive_a_reopen() {
    let t = TempDb::new();
    let db = short_code_db(&t, 3);
    let (p, _sent) = recipients();
    db.create_verification_request("ada@x.io", "https://x/cb", "482916", "s", &p)
        .unwrap();
    for _ in 0..2 {
        assert!(
            db.use_verification_request("ada@x.io", "000000", "s")
                .unwrap()
                .is_none()
        );
    }
    drop(db);
    let db = short_code_db(&t, 3);
    assert!(
        db.use_verification_request("ada@x.io", "111111", "s")
            .unwrap()
            .is_none()
    );
    assert!(
        db.use_verification_request("ada@x.io", "482916", "s")
            .unwrap()
            .is_none(),
        "the third failure (across the reopen) burnt the link"
    );
    common::assert_clean(&db);
}

#[test]
fn an_attacker_brute_forcing_six_digits_gets_the_limit_per_mailed_code() {
    let (db, _clock) = {
        let clock = Arc::new(authdb::ManualClock::new(common::t0()));
        let db = common::builder(&clock)
            .allow_short_verification_tokens(5)
            .in_memory()
            .unwrap();
        (db, clock)
    };
    let (p, _sent) = recipients();
    db.create_verification_request("victim@x.io", "https://x/cb", "739204", "s", &p)
        .unwrap();
    // Ten wrong codes, then the right one: too late.
    let guesses = (0..10u32)
        .map(|g| format!("{g:06}"))
        .chain(["739204".to_owned()]);
    let found = guesses
        .filter(|code| {
            db.use_verification_request("VICTIM@x.io", code, "s")
                .unwrap()
                .is_some()
        })
        .count();
    assert_eq!(
        found, 0,
        "never guessed, not even the right code after the limit"
    );
    assert_eq!(
        db.check_integrity().unwrap().verification_requests,
        0,
        "the fifth miss burnt the link; later misses count nothing (no link)"
    );
    assert!(
        db.use_verification_request("victim@x.io", "739204", "s")
            .unwrap()
            .is_none()
    );
}

#[test]
fn burning_keeps_the_indexes_consistent_and_purge_drops_stale_counters() {
    let (db, clock) = {
        let clock = Arc::new(authdb::ManualClock::new(common::t0()));
        let db = common::builder(&clock)
            .allow_short_verification_tokens(2)
            .in_memory()
            .unwrap();
        (db, clock)
    };
    let (p, _sent) = recipients();
    for code in ["111111", "222222", "333333"] {
        db.create_verification_request("ada@x.io", "https://x/cb", code, "s", &p)
            .unwrap();
    }
    db.create_verification_request("bob@x.io", "https://x/cb", "444444", "s", &p)
        .unwrap();
    assert!(
        db.get_verification_request("bob@x.io", "000000", "s", &p)
            .unwrap()
            .is_none()
    );
    common::assert_clean(&db);
    for _ in 0..2 {
        assert!(
            db.use_verification_token("ada@x.io", "000000")
                .unwrap()
                .is_none()
        );
    }
    let r = db.check_integrity().unwrap();
    assert!(r.is_clean(), "{r}");
    assert_eq!(r.verification_requests, 1, "Ada's three links are gone");
    // Bob's one failure is stale after the window (his link, 24 hours old, is still live at
    // this instant); purge removes the counter and the count restarts.
    clock.advance(Duration::seconds(
        authdb::limits::VERIFICATION_ATTEMPT_WINDOW_SECS,
    ));
    db.purge_expired().unwrap();
    assert!(
        db.get_verification_request("bob@x.io", "000000", "s", &p)
            .unwrap()
            .is_none()
    );
    assert_eq!(
        db.check_integrity().unwrap().verification_requests,
        1,
        "a limit of 2, but the first failure no longer counts"
    );
    assert!(
        db.get_verification_request("bob@x.io", "000000", "s", &p)
            .unwrap()
            .is_none()
    );
    assert_eq!(db.check_integrity().unwrap().verification_requests, 0);
}

#[test]
fn a_migrated_short_link_is_found_only_with_short_codes_allowed() {
    // The floor also covers lookups: a short raw token finds nothing by default, whatever is
    // stored (a link made while short codes were allowed stops working without the limit).
    let t = TempDb::new();
    let db = short_code_db(&t, 3);
    let (p, _sent) = recipients();
    db.create_verification_request("ada@x.io", "https://x/cb", "482916", "s", &p)
        .unwrap();
    drop(db);
    let db = t.open();
    assert!(
        db.get_verification_request("ada@x.io", "482916", "s", &p)
            .unwrap()
            .is_none()
    );
    assert!(
        db.use_verification_request("ada@x.io", "482916", "s")
            .unwrap()
            .is_none()
    );
    drop(db);
    let db = short_code_db(&t, 3);
    assert!(
        db.use_verification_request("ada@x.io", "482916", "s")
            .unwrap()
            .is_some(),
        "untouched by the refused lookups"
    );
}

#[test]
fn caller_chosen_session_tokens_need_120_bits() {
    let (db, _clock) = mem_db();
    let u = db.create_user(&profile("ada@x.io")).unwrap();
    let new = |token: &str| authdb::NewSession {
        user_id: u.id,
        session_token: token.to_owned(),
        expires: db.now() + Duration::days(1),
    };
    let err = db.create_session_with(&new("abc123")).unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidInput {
                field: "session_token",
                problem: InputProblem::TooLittleEntropy { min: 120, .. }
            }
        ),
        "{err:?}"
    );
    assert!(!err.to_string().contains("abc123"));
    db.create_session_with(&new("67e55044-10b1-426f-9247-bb680e5fe0c8"))
        .expect("a random UUID (Auth.js's default) is accepted");
}
