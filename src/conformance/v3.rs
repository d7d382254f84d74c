//! NextAuth v3's operations as authdb specifies them (docs/behaviour.md): email normalization,
//! full-replace user updates, re-linking, the session update-age throttle, v3 verification
//! requests and their interplay with Auth.js verification tokens.

use chrono::Duration;

use super::{
    Backend, Fixture, MICRO, TOK, TOK_OTHER, TOK2, TOK3, URL, failing_provider, new_user, oauth,
    profile, random_uuid, recording_provider, register_passkey, report, sent, session_with,
    stored_user, unknown_user_id,
};
use crate::email::{EmailProvider, normalize_email};
use crate::error::{Error, InputProblem};
use crate::model::{NewAccount, NewUser, Session, User, VerificationToken};
use crate::token::hash_verification_token;

/// The email is stored exactly as given; the user is found by any spelling that normalizes to
/// the same address.
pub(super) fn create_user_stores_email_as_given<S: Backend>(fx: &Fixture<S>) {
    let u = fx
        .store
        .create_user(&profile(" Ada@Example.COM "))
        .expect("create_user");
    assert_eq!(
        u.email.as_deref(),
        Some(" Ada@Example.COM "),
        "stored as given"
    );
    for q in [
        "ada@example.com",
        "ADA@EXAMPLE.COM",
        "  Ada@Example.COM  ",
        "\tada@EXAMPLE.com\n",
    ] {
        assert_eq!(
            fx.store
                .get_user_by_email(q)
                .expect("get_user_by_email")
                .as_ref(),
            Some(&u),
            "lookup by {q:?}"
        );
    }
    assert_eq!(
        fx.store
            .get_user_by_email("ada@example.org")
            .expect("get_user_by_email"),
        None
    );
    assert_eq!(
        fx.store
            .get_user_by_email("da@example.com")
            .expect("get_user_by_email"),
        None
    );
}

/// An address that normalizes to a taken one is `EmailTaken`, and nothing is written.
pub(super) fn email_normalization_and_email_taken<S: Backend>(fx: &Fixture<S>) {
    let first = new_user(fx, Some("ada@example.com"));
    for variant in [
        "ADA@EXAMPLE.COM",
        "  Ada@Example.com",
        "ada@example.com\t\n",
    ] {
        let err = fx
            .store
            .create_user(&NewUser {
                name: Some("impostor".to_owned()),
                ..profile(variant)
            })
            .expect_err("a taken email is refused");
        assert!(matches!(err, Error::EmailTaken), "{variant:?}: {err:?}");
        assert!(err.is_conflict(), "EmailTaken is a conflict");
    }
    assert_eq!(report(fx).users, 1, "no user was added");
    assert_eq!(
        fx.store
            .get_user_by_email("Ada@example.com")
            .expect("get_user_by_email"),
        Some(first)
    );

    // Unicode lowercase.
    let e = new_user(fx, Some("ÉLODIE@Exemple.FR"));
    assert_eq!(
        fx.store
            .get_user_by_email("élodie@exemple.fr")
            .expect("get_user_by_email")
            .map(|u| u.id),
        Some(e.id)
    );
    let err = fx
        .store
        .create_user(&profile("élodie@EXEMPLE.fr"))
        .expect_err("a taken email is refused");
    assert!(matches!(err, Error::EmailTaken), "{err:?}");
}

/// Compatibility characters fold (NFKC): a fullwidth look-alike is the same address.
pub(super) fn email_nfkc_folding<S: Backend>(fx: &Fixture<S>) {
    assert_eq!(normalize_email(" Ada@Example.COM "), "ada@example.com");
    assert_eq!(
        normalize_email("ａｄａ＠ｅｘａｍｐｌｅ．ｃｏｍ"),
        "ada@example.com"
    );
    let u = new_user(fx, Some("ada@example.com"));
    assert_eq!(
        fx.store
            .get_user_by_email("ａｄａ＠ｅｘａｍｐｌｅ．ｃｏｍ")
            .expect("get_user_by_email")
            .map(|x| x.id),
        Some(u.id),
        "a fullwidth spelling finds the user"
    );
    let err = fx
        .store
        .create_user(&profile("ＡＤＡ＠example.com"))
        .expect_err("a fullwidth look-alike is the same address");
    assert!(matches!(err, Error::EmailTaken), "{err:?}");
    // The Kelvin sign folds to the letter K.
    let k = new_user(fx, Some("\u{212A}evin@example.com"));
    assert_eq!(
        fx.store
            .get_user_by_email("kevin@example.com")
            .expect("get_user_by_email")
            .map(|x| x.id),
        Some(k.id)
    );
    assert_eq!(report(fx).users, 2);
}

/// Blank, oversized or invisible-character addresses are refused on write and find nothing on
/// lookup.
pub(super) fn email_invalid_on_write_none_on_lookup<S: Backend>(fx: &Fixture<S>) {
    new_user(fx, None);
    for blank in ["", " ", " \t\n "] {
        let err = fx
            .store
            .create_user(&profile(blank))
            .expect_err("a blank email is refused");
        assert!(
            matches!(
                err,
                Error::InvalidInput {
                    field: "email",
                    problem: InputProblem::Empty
                }
            ),
            "{blank:?}: {err:?}"
        );
        assert_eq!(
            fx.store
                .get_user_by_email(blank)
                .expect("get_user_by_email"),
            None,
            "a blank lookup finds nothing, not even a user without email"
        );
    }
    let long = format!("{}@example.com", "a".repeat(crate::limits::MAX_EMAIL_LEN));
    let err = fx
        .store
        .create_user(&profile(&long))
        .expect_err("an oversized email is refused");
    assert!(
        matches!(
            err,
            Error::InvalidInput {
                field: "email",
                problem: InputProblem::TooLong { .. }
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        fx.store
            .get_user_by_email(&long)
            .expect("get_user_by_email"),
        None
    );
    for sneaky in [
        "ada\u{200B}@example.com",
        "ada@exam\u{202E}ple.com",
        "ada@example.com\u{0}",
        "a\u{7}da@example.com",
    ] {
        let err = fx
            .store
            .create_user(&profile(sneaky))
            .expect_err("an email with invisible or control characters is refused");
        assert!(
            matches!(err, Error::InvalidValue { field: "email", .. }),
            "{sneaky:?}: {err:?}"
        );
        assert_eq!(
            fx.store
                .get_user_by_email(sneaky)
                .expect("get_user_by_email"),
            None
        );
    }
    assert_eq!(report(fx).users, 1, "only the user without email exists");
}

/// Any number of users may have no email.
pub(super) fn users_without_email<S: Backend>(fx: &Fixture<S>) {
    let ids: Vec<_> = (0..3)
        .map(|i| {
            fx.store
                .create_user(&NewUser {
                    name: Some(format!("anonymous {i}")),
                    ..NewUser::default()
                })
                .expect("create_user without email")
                .id
        })
        .collect();
    for (i, id) in ids.iter().enumerate() {
        let u = stored_user(fx, id);
        assert_eq!(u.email, None);
        assert_eq!(u.name, Some(format!("anonymous {i}")));
    }
    assert_eq!(report(fx).users, 3);
}

/// `update_user` replaces name, email, image, email_verified and extra; keeps the id,
/// created_at and (for an unchanged address) the stamp; ignores what the caller says about
/// those.
pub(super) fn update_user_replaces_fields<S: Backend>(fx: &Fixture<S>) {
    let u = fx
        .store
        .create_user(&NewUser {
            name: Some("Ada".to_owned()),
            email: Some("ada@example.com".to_owned()),
            image: Some("https://example.com/a.png".to_owned()),
            email_verified: Some(fx.now()),
            extra: super::obj(serde_json::json!({"role": "admin"})),
        })
        .expect("create_user");
    fx.advance(Duration::minutes(5));
    let verified = fx.now() - Duration::minutes(1);
    let out = fx
        .store
        .update_user(&User {
            name: None,
            image: Some("https://example.com/b.png".to_owned()),
            email_verified: Some(verified),
            extra: super::obj(serde_json::json!({"team": "blue"})),
            // What the caller holds for these is ignored.
            security_stamp: [0xAB; 16],
            created_at: fx.now() - Duration::days(400),
            updated_at: fx.now() - Duration::days(400),
            ..u.clone()
        })
        .expect("update_user");
    assert_eq!(out.id, u.id);
    assert_eq!(out.name, None, "a None name is written as None");
    assert_eq!(out.email, u.email);
    assert_eq!(out.image.as_deref(), Some("https://example.com/b.png"));
    assert_eq!(out.email_verified, Some(verified));
    assert_eq!(
        out.extra,
        super::obj(serde_json::json!({"team": "blue"})),
        "extra is replaced, not merged"
    );
    assert_eq!(out.created_at, u.created_at, "created_at is kept");
    assert_eq!(out.updated_at, fx.now(), "updated_at is now");
    assert_eq!(out.security_stamp, u.security_stamp, "the stamp is kept");
    assert_eq!(stored_user(fx, &u.id), out);
}

/// Changing the email re-indexes it: the old address is free, the new one finds the user.
pub(super) fn update_user_reindexes_email<S: Backend>(fx: &Fixture<S>) {
    let u = new_user(fx, Some("old@example.com"));
    let out = fx
        .store
        .update_user(&User {
            email: Some("New@Example.com".to_owned()),
            ..u.clone()
        })
        .expect("update_user");
    assert_eq!(out.email.as_deref(), Some("New@Example.com"));
    assert_eq!(
        fx.store
            .get_user_by_email("old@example.com")
            .expect("lookup"),
        None
    );
    assert_eq!(
        fx.store
            .get_user_by_email("new@example.com")
            .expect("lookup"),
        Some(out.clone())
    );
    let other = new_user(fx, Some("OLD@example.com"));
    assert_eq!(
        fx.store
            .get_user_by_email("old@example.com")
            .expect("lookup")
            .map(|x| x.id),
        Some(other.id),
        "the old address was free for another user"
    );

    // A case-only change keeps the user findable.
    let recased = fx
        .store
        .update_user(&User {
            email: Some("NEW@example.COM".to_owned()),
            ..out
        })
        .expect("update_user with a case-only change");
    assert_eq!(
        fx.store
            .get_user_by_email("new@example.com")
            .expect("lookup"),
        Some(recased)
    );

    // Removing the email frees it.
    let stripped = fx
        .store
        .update_user(&User {
            email: None,
            ..stored_user(fx, &u.id)
        })
        .expect("update_user removing the email");
    assert_eq!(stripped.email, None);
    assert_eq!(
        fx.store
            .get_user_by_email("new@example.com")
            .expect("lookup"),
        None
    );
    new_user(fx, Some("new@example.com"));
    assert_eq!(report(fx).users, 3);
}

/// A taken email, a blank email and a missing user are errors that write nothing.
pub(super) fn update_user_errors_write_nothing<S: Backend>(fx: &Fixture<S>) {
    let a = fx
        .store
        .create_user(&NewUser {
            name: Some("A".to_owned()),
            ..profile("a@example.com")
        })
        .expect("create_user");
    let b = new_user(fx, Some("b@example.com"));
    fx.advance(Duration::hours(1));
    let err = fx
        .store
        .update_user(&User {
            name: Some("changed".to_owned()),
            email: Some(" B@EXAMPLE.COM".to_owned()),
            ..a.clone()
        })
        .expect_err("a taken email is refused");
    assert!(matches!(err, Error::EmailTaken), "{err:?}");
    let err = fx
        .store
        .update_user(&User {
            name: Some("changed".to_owned()),
            email: Some("   ".to_owned()),
            ..a.clone()
        })
        .expect_err("a blank email is refused");
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
    assert_eq!(stored_user(fx, &a.id), a, "a is unchanged");
    assert_eq!(stored_user(fx, &b.id), b, "b is unchanged");
    assert_eq!(
        fx.store.get_user_by_email("a@example.com").expect("lookup"),
        Some(a.clone())
    );

    fx.store.delete_user(&a.id).expect("delete_user");
    let err = fx
        .store
        .update_user(&User {
            email: Some("c@example.com".to_owned()),
            ..a.clone()
        })
        .expect_err("a missing user is refused");
    assert!(
        matches!(err, Error::UserNotFound(id) if id == a.id),
        "{err:?}"
    );
    assert_eq!(
        fx.store.get_user(&a.id).expect("get_user"),
        None,
        "not recreated"
    );
    assert_eq!(
        fx.store.get_user_by_email("c@example.com").expect("lookup"),
        None
    );
    assert_eq!(report(fx).users, 1);
}

/// Deleting a user twice, or a user that never existed, succeeds; the user's email, provider
/// accounts and credential ids are free again; verification requests are untouched.
pub(super) fn delete_user_is_idempotent_and_frees_keys<S: Backend>(fx: &Fixture<S>) {
    let (provider, _outbox) = recording_provider();
    let u = new_user(fx, Some("Gone@Example.com"));
    fx.store
        .link_account(&u.id, &oauth("github", "1", None, None))
        .expect("link_account");
    let credential_id = random_uuid();
    register_passkey(fx, &u.id, &credential_id, 1);
    fx.store
        .create_verification_request("gone@example.com", URL, TOK, "sec", &provider)
        .expect("create_verification_request");

    fx.store.delete_user(&u.id).expect("delete_user");
    fx.store.delete_user(&u.id).expect("delete_user again");
    fx.store
        .delete_user(&unknown_user_id())
        .expect("delete_user of an unknown id");

    assert!(
        fx.store
            .get_verification_request("gone@example.com", TOK, "sec", &provider)
            .expect("get_verification_request")
            .is_some(),
        "verification requests are not tied to users"
    );
    let again = new_user(fx, Some("GONE@example.com"));
    assert_eq!(
        fx.store
            .get_user_by_email("gone@example.com")
            .expect("lookup")
            .map(|x| x.id),
        Some(again.id)
    );
    fx.store
        .link_account(&again.id, &oauth("github", "1", None, None))
        .expect("the provider account is free again");
    register_passkey(fx, &again.id, &credential_id, 0);
    assert_eq!(
        fx.store
            .get_authenticator(&credential_id)
            .expect("get_authenticator")
            .map(|a| a.user_id),
        Some(again.id),
        "the credential id is free again"
    );
}

/// Re-linking the same provider account to the same user refreshes it: tokens given as `Some`
/// replace the stored ones, a token given as `None` keeps the stored one.
pub(super) fn link_account_relink_refreshes_tokens<S: Backend>(fx: &Fixture<S>) {
    let u = new_user(fx, None);
    let first = fx
        .store
        .link_account(&u.id, &oauth("google", "g1", Some("r1"), Some("a1")))
        .expect("link_account");
    fx.advance(Duration::hours(1));
    let new_exp = fx.now() + Duration::hours(1);
    let second = fx
        .store
        .link_account(
            &u.id,
            &NewAccount {
                access_token_expires: Some(new_exp),
                scope: Some("openid email".to_owned()),
                ..oauth("google", "g1", Some("r2"), Some("a2"))
            },
        )
        .expect("re-link");
    assert_eq!(second.id, first.id, "the same account is updated");
    assert_eq!(second.refresh_token.as_deref(), Some("r2"));
    assert_eq!(second.access_token.as_deref(), Some("a2"));
    assert_eq!(second.access_token_expires, Some(new_exp));
    assert_eq!(second.scope.as_deref(), Some("openid email"));
    assert_eq!(second.created_at, first.created_at, "created_at is kept");
    assert_eq!(second.updated_at, fx.now(), "updated_at is now");

    // Google sends no refresh token after the first consent: the stored one is kept.
    fx.advance(Duration::hours(1));
    let third = fx
        .store
        .link_account(&u.id, &oauth("google", "g1", None, Some("a3")))
        .expect("re-link without refresh token");
    assert_eq!(third.id, first.id);
    assert_eq!(
        third.refresh_token.as_deref(),
        Some("r2"),
        "refresh token kept"
    );
    assert_eq!(
        third.access_token.as_deref(),
        Some("a3"),
        "access token replaced"
    );
    assert_eq!(third.updated_at, fx.now());

    // No tokens at all: both kept.
    let fourth = fx
        .store
        .link_account(&u.id, &oauth("google", "g1", None, None))
        .expect("re-link without tokens");
    assert_eq!(fourth.refresh_token.as_deref(), Some("r2"));
    assert_eq!(fourth.access_token.as_deref(), Some("a3"));
    assert_eq!(
        fx.store
            .get_account("google", "g1")
            .expect("get_account")
            .as_ref(),
        Some(&fourth),
        "the stored account is the returned one"
    );
    assert_eq!(
        fx.store.list_accounts(&u.id).expect("list_accounts").len(),
        1,
        "still one account"
    );
}

/// A provider account linked to one user cannot be linked to another; nothing changes.
pub(super) fn account_linked_to_another_user<S: Backend>(fx: &Fixture<S>) {
    let a = new_user(fx, Some("a@example.com"));
    let b = new_user(fx, Some("b@example.com"));
    let acc = fx
        .store
        .link_account(&a.id, &oauth("github", "7", Some("ra"), Some("aa")))
        .expect("link_account");
    fx.advance(Duration::minutes(1));
    let err = fx
        .store
        .link_account(&b.id, &oauth("github", "7", Some("rb"), Some("ab")))
        .expect_err("an account of another user is refused");
    assert!(matches!(err, Error::AccountLinkedToAnotherUser), "{err:?}");
    assert!(
        err.is_conflict(),
        "AccountLinkedToAnotherUser is a conflict"
    );
    assert_eq!(
        fx.store.get_account("github", "7").expect("get_account"),
        Some(acc),
        "the owner's account is untouched"
    );
    assert!(
        fx.store
            .list_accounts(&b.id)
            .expect("list_accounts")
            .is_empty()
    );
    fx.store
        .link_account(&b.id, &oauth("github", "8", None, None))
        .expect("b may link another account of the same provider");
    assert_eq!(report(fx).accounts, 2);
}

/// `unlink_account` removes an account only for its owner; otherwise it does nothing.
pub(super) fn unlink_account_checks_ownership<S: Backend>(fx: &Fixture<S>) {
    let a = new_user(fx, None);
    let b = new_user(fx, None);
    let gh = fx
        .store
        .link_account(&a.id, &oauth("github", "1", None, None))
        .expect("link_account");
    let go = fx
        .store
        .link_account(&a.id, &oauth("google", "1", None, None))
        .expect("link_account");

    fx.store
        .unlink_account(&b.id, "github", "1")
        .expect("unlinking someone else's account is not an error");
    assert_eq!(
        fx.store.get_account("github", "1").expect("get_account"),
        Some(gh),
        "another user's account is left alone"
    );
    fx.store
        .unlink_account(&a.id, "github", "1")
        .expect("unlink_account");
    assert_eq!(
        fx.store.get_account("github", "1").expect("get_account"),
        None
    );
    assert_eq!(
        fx.store.list_accounts(&a.id).expect("list_accounts"),
        vec![go],
        "the other account stays"
    );
    fx.store
        .unlink_account(&a.id, "github", "1")
        .expect("unlinking again is not an error");
    fx.store
        .unlink_account(&a.id, "nobody", "nothing")
        .expect("unlinking a missing account is not an error");
    fx.store
        .link_account(&b.id, &oauth("github", "1", None, None))
        .expect("the unlinked pair is free");
    assert_eq!(report(fx).accounts, 2);
}

/// The (provider, provider account id) pair is matched exactly, as a pair.
pub(super) fn provider_lookup_is_exact<S: Backend>(fx: &Fixture<S>) {
    let u = new_user(fx, None);
    fx.store
        .link_account(&u.id, &oauth("github", "123", None, None))
        .expect("link_account");
    assert_eq!(
        fx.store
            .get_user_by_provider_account_id("github", "123")
            .expect("lookup")
            .map(|x| x.id),
        Some(u.id)
    );
    for (p, id) in [
        ("github", "1234"),
        ("github", "12"),
        ("gitlab", "123"),
        ("GitHub", "123"),
        ("githu", "b123"),
        ("github1", "23"),
        ("", ""),
    ] {
        assert_eq!(
            fx.store
                .get_user_by_provider_account_id(p, id)
                .expect("lookup"),
            None,
            "({p:?}, {id:?})"
        );
        assert_eq!(fx.store.get_account(p, id).expect("get_account"), None);
    }
}

/// `create_session`: fresh 64-hex tokens, expiry now + 30 days (the configured max age).
pub(super) fn create_session_defaults<S: Backend>(fx: &Fixture<S>) {
    let u = new_user(fx, None);
    fx.advance(Duration::seconds(10));
    let s = fx.store.create_session(&u.id).expect("create_session");
    assert_eq!(s.user_id, u.id);
    assert!(
        super::is_lower_hex_64(&s.session_token),
        "session token format"
    );
    assert!(
        super::is_lower_hex_64(&s.access_token),
        "access token format"
    );
    assert_ne!(s.session_token, s.access_token);
    assert_eq!(s.expires, fx.now() + Duration::days(30), "max age 30 days");
    assert_eq!(s.created_at, fx.now());
    assert_eq!(s.updated_at, fx.now());
    assert_eq!(
        fx.store
            .get_session(&s.session_token)
            .expect("get_session")
            .as_ref(),
        Some(&s)
    );
    let other = fx.store.create_session(&u.id).expect("create_session");
    assert_ne!(other.session_token, s.session_token, "tokens differ");
    assert_ne!(other.access_token, s.access_token);
    assert_ne!(other.id, s.id);

    let ghost = unknown_user_id();
    let err = fx
        .store
        .create_session(&ghost)
        .expect_err("a session for a missing user is refused");
    assert!(
        matches!(err, Error::UserNotFound(id) if id == ghost),
        "{err:?}"
    );
    assert_eq!(report(fx).sessions, 2);
}

/// A session is valid at exactly its expiry and gone a microsecond later (deleted by the read
/// that found it expired).
pub(super) fn session_valid_at_expires_gone_after<S: Backend>(fx: &Fixture<S>) {
    let u = new_user(fx, None);
    let s = fx.store.create_session(&u.id).expect("create_session");
    fx.set_time(s.expires);
    assert_eq!(
        fx.store
            .get_session(&s.session_token)
            .expect("get_session")
            .as_ref(),
        Some(&s),
        "valid at exactly expires"
    );
    assert_eq!(
        fx.store.list_sessions(&u.id).expect("list_sessions").len(),
        1
    );
    fx.advance(MICRO);
    assert!(
        fx.store
            .list_sessions(&u.id)
            .expect("list_sessions")
            .is_empty(),
        "list_sessions leaves the expired session out"
    );
    assert_eq!(report(fx).sessions, 1, "list_sessions does not delete it");
    assert_eq!(
        fx.store
            .get_session_and_user(&s.session_token)
            .expect("get_session_and_user"),
        None,
        "expired"
    );
    assert_eq!(
        fx.store.get_session(&s.session_token).expect("get_session"),
        None
    );
    assert_eq!(report(fx).sessions, 0, "the read deleted it");
    fx.set_time(super::start_time());
    assert_eq!(
        fx.store.get_session(&s.session_token).expect("get_session"),
        None,
        "deleted, so not back when the clock goes back"
    );
}

/// Unknown tokens of any shape find nothing and change nothing.
pub(super) fn unknown_session_tokens<S: Backend>(fx: &Fixture<S>) {
    let u = new_user(fx, None);
    let s = fx.store.create_session(&u.id).expect("create_session");
    let jwt = concat!(
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.",
        "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
    );
    let upper = s.session_token.to_uppercase();
    let zeros = "0".repeat(64);
    let probes = [
        "",
        " ",
        jwt,
        &zeros,
        &upper,
        &s.access_token,
        &s.session_token[..63],
        "\u{0}\u{ffff}",
    ];
    for probe in probes {
        assert_eq!(
            fx.store.get_session(probe).expect("get_session"),
            None,
            "{probe:?}"
        );
        assert_eq!(
            fx.store
                .get_session_and_user(probe)
                .expect("get_session_and_user"),
            None
        );
        let copy = Session {
            session_token: probe.to_owned(),
            ..s.clone()
        };
        assert_eq!(
            fx.store
                .update_session(&copy, true)
                .expect("update_session"),
            None
        );
        assert_eq!(
            fx.store
                .set_session_expiry(probe, fx.now() + Duration::days(1))
                .expect("set_session_expiry"),
            None
        );
        assert_eq!(
            fx.store
                .delete_session_returning(probe)
                .expect("delete_session_returning"),
            None
        );
        fx.store.delete_session(probe).expect("delete_session");
    }
    let long = "x".repeat(100_000);
    assert_eq!(fx.store.get_session(&long).expect("get_session"), None);
    assert_eq!(
        fx.store
            .get_session_and_user(&long)
            .expect("get_session_and_user"),
        None
    );
    assert_eq!(
        fx.store
            .get_session(&s.session_token)
            .expect("get_session")
            .as_ref(),
        Some(&s),
        "the real session is untouched"
    );
    assert_eq!(report(fx).sessions, 1);
}

/// Not yet due (now ≤ expires − max age + update age): `update_session` gives none and writes
/// nothing.
pub(super) fn update_session_not_due_writes_nothing<S: Backend>(fx: &Fixture<S>) {
    let u = new_user(fx, None);
    let s = fx.store.create_session(&u.id).expect("create_session");
    fx.set_time(s.created_at + Duration::hours(24));
    assert_eq!(
        fx.store.update_session(&s, false).expect("update_session"),
        None,
        "at exactly the update age it is not due"
    );
    assert_eq!(
        fx.store
            .get_session(&s.session_token)
            .expect("get_session")
            .as_ref(),
        Some(&s),
        "nothing was written (updated_at did not move)"
    );
}

/// Due: the expiry moves to now + max age, from the stored session.
pub(super) fn update_session_due_extends<S: Backend>(fx: &Fixture<S>) {
    let u = new_user(fx, None);
    let s = fx.store.create_session(&u.id).expect("create_session");
    fx.set_time(s.created_at + Duration::hours(24) + MICRO);
    let out = fx
        .store
        .update_session(&s, false)
        .expect("update_session")
        .expect("a due session is extended");
    assert_eq!(out.id, s.id);
    assert_eq!(out.session_token, s.session_token);
    assert_eq!(
        out.access_token, s.access_token,
        "the access token is stable"
    );
    assert_eq!(out.created_at, s.created_at);
    assert_eq!(out.expires, fx.now() + Duration::days(30));
    assert_eq!(out.updated_at, fx.now());
    assert_eq!(
        fx.store
            .get_session(&s.session_token)
            .expect("get_session")
            .as_ref(),
        Some(&out)
    );
    fx.advance(Duration::hours(1));
    assert_eq!(
        fx.store
            .update_session(&out, false)
            .expect("update_session"),
        None,
        "just extended: not due again for another 24 hours"
    );
    fx.advance(Duration::hours(23) + MICRO);
    let again = fx
        .store
        .update_session(&out, false)
        .expect("update_session")
        .expect("due again 24 hours after the extension");
    assert_eq!(again.expires, fx.now() + Duration::days(30));
}

/// Forced but not due: written unchanged except updated_at. Forced and due: extended.
pub(super) fn update_session_force<S: Backend>(fx: &Fixture<S>) {
    let u = new_user(fx, None);
    let s = fx.store.create_session(&u.id).expect("create_session");
    fx.advance(Duration::hours(2));
    let forced = fx
        .store
        .update_session(&s, true)
        .expect("update_session")
        .expect("force returns the session");
    assert_eq!(forced.expires, s.expires, "force alone does not extend");
    assert_eq!(forced.updated_at, fx.now(), "updated_at moves");
    assert_eq!(forced.created_at, s.created_at);
    assert_eq!(forced.id, s.id);
    assert_eq!(
        fx.store
            .get_session(&s.session_token)
            .expect("get_session")
            .as_ref(),
        Some(&forced)
    );
    fx.advance(Duration::days(2));
    let extended = fx
        .store
        .update_session(&s, true)
        .expect("update_session")
        .expect("forced and due");
    assert_eq!(extended.expires, fx.now() + Duration::days(30));
}

/// `update_session` works from the stored session, not from the caller's copy.
pub(super) fn update_session_uses_stored_session<S: Backend>(fx: &Fixture<S>) {
    let u = new_user(fx, None);
    let s = fx.store.create_session(&u.id).expect("create_session");
    fx.advance(Duration::hours(1));
    let stale = Session {
        expires: super::start_time(),
        updated_at: super::start_time() - Duration::days(9),
        ..s.clone()
    };
    assert_eq!(
        fx.store
            .update_session(&stale, false)
            .expect("update_session"),
        None,
        "a copy that looks due does not make the stored session due"
    );
    assert_eq!(
        fx.store
            .get_session(&s.session_token)
            .expect("get_session")
            .as_ref(),
        Some(&s)
    );

    fx.set_time(super::start_time() + Duration::days(3));
    let future = Session {
        expires: super::start_time() + Duration::days(3650),
        ..s.clone()
    };
    let out = fx
        .store
        .update_session(&future, false)
        .expect("update_session")
        .expect("the stored session is due");
    assert_eq!(
        out.expires,
        fx.now() + Duration::days(30),
        "the copy's expiry is not written"
    );
    let extended_to = out.expires;
    fx.advance(Duration::minutes(1));
    let forced = fx
        .store
        .update_session(&future, true)
        .expect("update_session")
        .expect("forced");
    assert_eq!(forced.expires, extended_to, "force keeps the stored expiry");
}

/// An expired session is never extended or re-dated, by either update.
pub(super) fn expired_session_never_revived<S: Backend>(fx: &Fixture<S>) {
    let u = new_user(fx, None);

    // set_session_expiry: none, nothing written (not even a deletion).
    let a = session_with(fx, &u.id, fx.now() + Duration::hours(1));
    fx.set_time(a.expires + MICRO);
    assert_eq!(
        fx.store
            .set_session_expiry(&a.session_token, fx.now() + Duration::days(30))
            .expect("set_session_expiry"),
        None,
        "an expired session is not re-dated"
    );
    assert_eq!(
        fx.store.get_session(&a.session_token).expect("get_session"),
        None,
        "still expired"
    );

    // update_session: none, and the expired session is deleted.
    let b = fx.store.create_session(&u.id).expect("create_session");
    fx.set_time(b.expires + MICRO);
    assert_eq!(
        fx.store.update_session(&b, true).expect("update_session"),
        None
    );
    assert_eq!(
        fx.store.update_session(&b, false).expect("update_session"),
        None
    );
    let lying = Session {
        expires: b.expires + Duration::days(30),
        ..b.clone()
    };
    assert_eq!(
        fx.store
            .update_session(&lying, true)
            .expect("update_session"),
        None,
        "a copy claiming a live expiry cannot revive it"
    );
    assert_eq!(report(fx).sessions, 0, "both expired sessions are gone");
    fx.set_time(super::start_time());
    assert_eq!(
        fx.store.get_session(&b.session_token).expect("get_session"),
        None
    );
    assert_eq!(
        fx.store
            .set_session_expiry(&b.session_token, fx.now() + Duration::days(1))
            .expect("set_session_expiry"),
        None
    );
    assert_eq!(report(fx).sessions, 0);
}

/// A deleted session is not recreated by an update.
pub(super) fn deleted_session_never_revived<S: Backend>(fx: &Fixture<S>) {
    let u = new_user(fx, None);
    let s = fx.store.create_session(&u.id).expect("create_session");
    fx.store
        .delete_session(&s.session_token)
        .expect("delete_session");
    fx.advance(Duration::days(2));
    assert_eq!(
        fx.store.update_session(&s, true).expect("update_session"),
        None
    );
    assert_eq!(
        fx.store.update_session(&s, false).expect("update_session"),
        None
    );
    assert_eq!(
        fx.store
            .set_session_expiry(&s.session_token, fx.now() + Duration::days(30))
            .expect("set_session_expiry"),
        None
    );
    assert_eq!(
        fx.store.get_session(&s.session_token).expect("get_session"),
        None
    );
    assert_eq!(report(fx).sessions, 0);
}

/// `delete_session` removes one session; again, or for an unknown token, it is not an error.
pub(super) fn delete_session_is_idempotent<S: Backend>(fx: &Fixture<S>) {
    let u = new_user(fx, None);
    let keep = fx.store.create_session(&u.id).expect("create_session");
    let gone = fx.store.create_session(&u.id).expect("create_session");
    fx.store
        .delete_session(&gone.session_token)
        .expect("delete_session");
    fx.store
        .delete_session(&gone.session_token)
        .expect("delete_session again");
    fx.store
        .delete_session("never-issued")
        .expect("delete_session of an unknown token");
    assert_eq!(
        fx.store
            .get_session(&gone.session_token)
            .expect("get_session"),
        None
    );
    assert_eq!(
        fx.store
            .get_session(&keep.session_token)
            .expect("get_session"),
        Some(keep)
    );
    assert_eq!(report(fx).sessions, 1);
}

/// `create_verification_request` stores the hash of token + secret and sends the raw token.
/// The link goes to the address the account is keyed by, as the account stores it — never to a
/// look-alike as typed (the Kelvin sign folds to `k` under NFKC), and for an address without
/// an account, to its normalized form.
pub(super) fn verification_request_mails_the_account_address<S: Backend>(fx: &Fixture<S>) {
    new_user(fx, Some("Kevin@Example.com"));
    let (provider, outbox) = recording_provider();
    fx.store
        .create_verification_request("\u{212A}evin@example.com", URL, TOK, "s", &provider)
        .expect("create_verification_request");
    fx.store
        .create_verification_request(" NEW\u{FF20}Example.com", URL, TOK2, "s", &provider)
        .expect("create_verification_request");
    let to: Vec<String> = sent(&outbox).into_iter().map(|m| m.identifier).collect();
    assert_eq!(to, vec!["Kevin@Example.com", "new@example.com"]);
}

pub(super) fn verification_request_create_and_send<S: Backend>(fx: &Fixture<S>) {
    // The hash is SHA-256 of token + secret (sha256("hello world"), a published vector).
    assert_eq!(
        hash_verification_token("hello ", "world"),
        "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
    );
    let (provider, outbox) = recording_provider();
    let req = fx
        .store
        .create_verification_request(" Ada@Example.com", URL, TOK, "s3cret", &provider)
        .expect("create_verification_request");
    assert_eq!(
        req.identifier, " Ada@Example.com",
        "the identifier as given"
    );
    assert_eq!(
        req.token,
        hash_verification_token(TOK, "s3cret"),
        "the hash, not the token"
    );
    assert_eq!(
        req.expires,
        fx.now() + Duration::hours(24),
        "default link max age"
    );
    assert_eq!(req.created_at, fx.now());
    assert_eq!(req.updated_at, fx.now());
    assert_eq!(
        sent(&outbox),
        vec![super::Mail {
            identifier: "ada@example.com".to_owned(),
            url: URL.to_owned(),
            token: TOK.to_owned(),
            provider: "email".to_owned(),
        }],
        "the sender got the normalized address (no account has it), URL, raw token and provider"
    );
    assert_eq!(
        fx.store
            .get_verification_request("ada@example.com", TOK, "s3cret", &provider)
            .expect("get_verification_request"),
        Some(req),
        "found by the normalized identifier"
    );

    // The provider's max age.
    let short = provider.clone().max_age(Duration::minutes(15));
    let r = fx
        .store
        .create_verification_request("b@example.com", URL, TOK2, "s3cret", &short)
        .expect("create_verification_request");
    assert_eq!(r.expires, fx.now() + Duration::minutes(15));
    assert_eq!(sent(&outbox).len(), 2);

    // Several links may be outstanding for one address.
    fx.store
        .create_verification_request("b@example.com", URL, TOK3, "s3cret", &provider)
        .expect("a second link for one address");
    for tok in [TOK2, TOK3] {
        assert!(
            fx.store
                .get_verification_request("b@example.com", tok, "s3cret", &provider)
                .expect("get_verification_request")
                .is_some(),
            "{tok} is still valid: a new link does not cancel the others"
        );
    }
}

/// A failing sender: `SendFailed`, and nothing is kept.
pub(super) fn verification_request_send_failed<S: Backend>(fx: &Fixture<S>) {
    let err = fx
        .store
        .create_verification_request("a@example.com", URL, TOK, "sec", &failing_provider())
        .expect_err("a failing sender is an error");
    let Error::SendFailed(source) = &err else {
        panic!("expected SendFailed, got {err:?}");
    };
    assert_eq!(
        source.to_string(),
        "smtp is down",
        "SendFailed carries the sender's error"
    );
    assert_eq!(report(fx).verification_requests, 0, "no request is kept");
    let (provider, outbox) = recording_provider();
    assert_eq!(
        fx.store
            .get_verification_request("a@example.com", TOK, "sec", &provider)
            .expect("get_verification_request"),
        None
    );
    assert_eq!(
        fx.store
            .use_verification_token("a@example.com", &hash_verification_token(TOK, "sec"))
            .expect("use_verification_token"),
        None
    );
    fx.store
        .create_verification_request("a@example.com", URL, TOK, "sec", &provider)
        .expect("the same token can be used again right away");
    assert_eq!(sent(&outbox).len(), 1);
}

/// CVE-2021-21310: a link is matched by identifier AND hash, never by the hash alone.
pub(super) fn verification_request_identifier_must_match<S: Backend>(fx: &Fixture<S>) {
    let (p, _outbox) = recording_provider();
    fx.store
        .create_verification_request("victim@example.com", URL, TOK, "sec", &p)
        .expect("create_verification_request");
    assert_eq!(
        fx.store
            .get_verification_request("attacker@example.com", TOK, "sec", &p)
            .expect("get_verification_request"),
        None
    );
    assert_eq!(
        fx.store
            .use_verification_request("attacker@example.com", TOK, "sec")
            .expect("use_verification_request"),
        None
    );
    assert_eq!(
        fx.store
            .use_verification_token("attacker@example.com", &hash_verification_token(TOK, "sec"))
            .expect("use_verification_token"),
        None
    );
    fx.store
        .delete_verification_request("attacker@example.com", TOK, "sec", &p)
        .expect("delete_verification_request");
    for blank in ["", "  "] {
        assert_eq!(
            fx.store
                .get_verification_request(blank, TOK, "sec", &p)
                .expect("get_verification_request"),
            None,
            "a blank identifier matches nothing"
        );
    }
    assert_eq!(
        fx.store
            .get_verification_request("victim@example.com", TOK2, "sec", &p)
            .expect("get_verification_request"),
        None,
        "wrong token"
    );
    assert_eq!(
        fx.store
            .get_verification_request("victim@example.com", TOK, "sec2", &p)
            .expect("get_verification_request"),
        None,
        "wrong secret"
    );
    assert!(
        fx.store
            .get_verification_request("victim@example.com", TOK, "sec", &p)
            .expect("get_verification_request")
            .is_some(),
        "none of that consumed or removed it"
    );

    // An expired request is not deleted by a lookup with the wrong identifier either.
    let req = fx
        .store
        .get_verification_request("victim@example.com", TOK, "sec", &p)
        .expect("get_verification_request")
        .expect("present");
    fx.set_time(req.expires + MICRO);
    assert_eq!(
        fx.store
            .get_verification_request("attacker@example.com", TOK, "sec", &p)
            .expect("get_verification_request"),
        None
    );
    assert_eq!(
        report(fx).verification_requests,
        1,
        "only a full match may touch a request"
    );
}

/// `get_verification_request` does not consume the link.
pub(super) fn verification_request_get_does_not_consume<S: Backend>(fx: &Fixture<S>) {
    let (p, _outbox) = recording_provider();
    let req = fx
        .store
        .create_verification_request("Mixed.Case@Example.COM ", URL, TOK, "sec", &p)
        .expect("create_verification_request");
    for q in [
        "mixed.case@example.com",
        "  MIXED.CASE@EXAMPLE.COM",
        "Mixed.Case@Example.COM ",
    ] {
        assert_eq!(
            fx.store
                .get_verification_request(q, TOK, "sec", &p)
                .expect("get_verification_request")
                .as_ref(),
            Some(&req),
            "{q:?}"
        );
    }
    assert_eq!(report(fx).verification_requests, 1);
}

/// `delete_verification_request` removes the match; again, or for no match, not an error.
pub(super) fn verification_request_delete<S: Backend>(fx: &Fixture<S>) {
    let (p, _outbox) = recording_provider();
    fx.store
        .create_verification_request("a@example.com", URL, TOK, "sec", &p)
        .expect("create_verification_request");
    fx.store
        .create_verification_request("a@example.com", URL, TOK_OTHER, "sec", &p)
        .expect("create_verification_request");
    fx.store
        .delete_verification_request("A@EXAMPLE.com", TOK, "sec", &p)
        .expect("delete_verification_request");
    fx.store
        .delete_verification_request("a@example.com", TOK, "sec", &p)
        .expect("delete_verification_request again");
    fx.store
        .delete_verification_request("nobody@example.com", TOK3, "y", &p)
        .expect("delete_verification_request of nothing");
    assert_eq!(
        fx.store
            .get_verification_request("a@example.com", TOK, "sec", &p)
            .expect("get_verification_request"),
        None
    );
    assert!(
        fx.store
            .get_verification_request("a@example.com", TOK_OTHER, "sec", &p)
            .expect("get_verification_request")
            .is_some()
    );
    assert_eq!(report(fx).verification_requests, 1);
}

/// `use_verification_request` is single use and normalizes the identifier.
pub(super) fn verification_request_use_is_single_use<S: Backend>(fx: &Fixture<S>) {
    let (p, _outbox) = recording_provider();
    let req = fx
        .store
        .create_verification_request("x@EXAMPLE.com", URL, TOK, "sec", &p)
        .expect("create_verification_request");
    assert_eq!(
        fx.store
            .use_verification_request("X@example.COM ", TOK, "sec")
            .expect("use_verification_request"),
        Some(req)
    );
    assert_eq!(
        fx.store
            .use_verification_request("x@example.com", TOK, "sec")
            .expect("use_verification_request"),
        None,
        "the second use gives none"
    );
    assert_eq!(
        fx.store
            .get_verification_request("x@example.com", TOK, "sec", &p)
            .expect("get_verification_request"),
        None
    );
    assert_eq!(report(fx).verification_requests, 0);
}

/// Links work up to and including their expiry; an expired one is none and is deleted by the
/// read (get or use) that found it.
pub(super) fn verification_request_expiry<S: Backend>(fx: &Fixture<S>) {
    let (p, _outbox) = recording_provider();
    let req = fx
        .store
        .create_verification_request("a@example.com", URL, TOK, "sec", &p)
        .expect("create_verification_request");
    fx.set_time(req.expires);
    assert_eq!(
        fx.store
            .get_verification_request("a@example.com", TOK, "sec", &p)
            .expect("get_verification_request")
            .as_ref(),
        Some(&req),
        "valid at exactly expires"
    );
    fx.advance(MICRO);
    assert_eq!(
        fx.store
            .get_verification_request("a@example.com", TOK, "sec", &p)
            .expect("get_verification_request"),
        None
    );
    assert_eq!(
        report(fx).verification_requests,
        0,
        "get deleted the expired request"
    );

    let req = fx
        .store
        .create_verification_request("a@example.com", URL, TOK2, "sec", &p)
        .expect("create_verification_request");
    fx.set_time(req.expires + MICRO);
    assert_eq!(
        fx.store
            .use_verification_request("a@example.com", TOK2, "sec")
            .expect("use_verification_request"),
        None
    );
    assert_eq!(
        report(fx).verification_requests,
        0,
        "use deleted the expired request"
    );
    fx.set_time(req.created_at);
    assert_eq!(
        fx.store
            .get_verification_request("a@example.com", TOK2, "sec", &p)
            .expect("get_verification_request"),
        None,
        "deleted, so not back when the clock goes back"
    );
}

/// A live link with the same hash is `VerificationTokenTaken` (nothing sent); once it has
/// expired, the hash can be used again.
pub(super) fn verification_request_token_taken<S: Backend>(fx: &Fixture<S>) {
    let (p, outbox) = recording_provider();
    let first = fx
        .store
        .create_verification_request("a@example.com", URL, TOK, "sec", &p)
        .expect("create_verification_request");
    for ident in ["a@example.com", "b@example.com"] {
        let err = fx
            .store
            .create_verification_request(ident, URL, TOK, "sec", &p)
            .expect_err("a live hash is taken");
        assert!(
            matches!(err, Error::VerificationTokenTaken),
            "{ident}: {err:?}"
        );
        assert!(err.is_conflict(), "VerificationTokenTaken is a conflict");
    }
    let err = fx
        .store
        .create_verification_token(&VerificationToken {
            identifier: "a@example.com".to_owned(),
            token: first.token.clone(),
            expires: fx.now() + Duration::hours(1),
        })
        .expect_err("the same hash through the Auth.js API is taken too");
    assert!(matches!(err, Error::VerificationTokenTaken), "{err:?}");
    assert_eq!(sent(&outbox).len(), 1, "a refused request sends nothing");
    assert_eq!(
        fx.store
            .get_verification_request("a@example.com", TOK, "sec", &p)
            .expect("get_verification_request")
            .as_ref(),
        Some(&first),
        "the original is intact"
    );
    fx.store
        .create_verification_request("a@example.com", URL, TOK, "sec2", &p)
        .expect("another secret makes another hash");

    fx.set_time(first.expires + MICRO);
    let again = fx
        .store
        .create_verification_request("c@example.com", URL, TOK, "sec", &p)
        .expect("an expired hash can be reused");
    assert_ne!(again.id, first.id);
    assert_eq!(again.token, first.token);
    assert_eq!(
        fx.store
            .get_verification_request("a@example.com", TOK, "sec", &p)
            .expect("get_verification_request"),
        None,
        "the old request was replaced"
    );
    assert!(
        fx.store
            .get_verification_request("c@example.com", TOK, "sec", &p)
            .expect("get_verification_request")
            .is_some()
    );
}

/// A link made through either API is found through the other when the hashes agree.
pub(super) fn verification_hash_interop<S: Backend>(fx: &Fixture<S>) {
    let (p, _outbox) = recording_provider();

    // v3 request → Auth.js token.
    let req = fx
        .store
        .create_verification_request("Ada@Example.com", URL, TOK, "app-secret", &p)
        .expect("create_verification_request");
    let hash = hash_verification_token(TOK, "app-secret");
    assert_eq!(
        fx.store
            .use_verification_token("someone@example.com", &hash)
            .expect("use_verification_token"),
        None,
        "the identifier must match here too"
    );
    assert_eq!(
        fx.store
            .use_verification_token("ada@example.com", &hash)
            .expect("use_verification_token"),
        Some(VerificationToken {
            identifier: "Ada@Example.com".to_owned(),
            token: hash.clone(),
            expires: req.expires,
        }),
        "a v3 request is usable as an Auth.js token"
    );
    assert_eq!(
        fx.store
            .get_verification_request("ada@example.com", TOK, "app-secret", &p)
            .expect("get_verification_request"),
        None,
        "and it was consumed"
    );

    // Auth.js token → v3 request.
    let token = VerificationToken {
        identifier: "grace@example.com".to_owned(),
        token: hash_verification_token(TOK_OTHER, "app-secret"),
        expires: fx.now() + Duration::minutes(10),
    };
    fx.store
        .create_verification_token(&token)
        .expect("create_verification_token");
    let found = fx
        .store
        .get_verification_request("Grace@example.com", TOK_OTHER, "app-secret", &p)
        .expect("get_verification_request")
        .expect("an Auth.js token is found as a v3 request");
    assert_eq!(found.identifier, token.identifier);
    assert_eq!(found.token, token.token);
    assert_eq!(found.expires, token.expires);
    let used = fx
        .store
        .use_verification_request("grace@example.com", TOK_OTHER, "app-secret")
        .expect("use_verification_request")
        .expect("and used as one");
    assert_eq!(used.token, token.token);
    assert_eq!(
        fx.store
            .use_verification_token(&token.identifier, &token.token)
            .expect("use_verification_token"),
        None,
        "single use across both APIs"
    );

    // A provider with another id makes no difference to the hash.
    let other = EmailProvider::new("magic-link", |_| Ok(()));
    fx.store
        .create_verification_request("h@example.com", URL, TOK3, "app-secret", &other)
        .expect("create_verification_request");
    assert!(
        fx.store
            .use_verification_token(
                "h@example.com",
                &hash_verification_token(TOK3, "app-secret")
            )
            .expect("use_verification_token")
            .is_some()
    );
}
