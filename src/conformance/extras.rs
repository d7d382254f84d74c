//! What authdb adds to the adapter operations: passwords, security stamps, session listing,
//! input limits, transactions and purging — and the fine print of the shared rules
//! (timestamps, Auth.js tokens, lookups with any input).

use chrono::Duration;
use serde_json::json;

use super::{
    Backend, Fixture, MICRO, TOK, TOK2, URL, assert_account_is, failing_provider, full_account,
    new_user, oauth, obj, passkey, profile, random_uuid, recording_provider, register_passkey,
    report, sent, session_with, stored_user, unknown_user_id, webauthn_account,
};
use crate::contract::{
    AccountStore, AuthenticatorStore, SessionStore, UserStore, VerificationStore,
};
use crate::error::{Error, InputProblem};
use crate::limits;
use crate::model::{
    Credentials, NewAccount, NewAuthenticator, NewSession, NewUser, PurgeStats, User, UserPatch,
    VerificationToken,
};
use crate::token::hash_verification_token;

fn creds(email: &str, password: &str) -> Credentials {
    Credentials {
        email: email.to_owned(),
        password: password.to_owned(),
    }
}

/// True if `err` is `InvalidInput` for `field` with an `Empty` problem.
fn is_empty_err(err: &Error, field: &str) -> bool {
    matches!(err, Error::InvalidInput { field: f, problem: InputProblem::Empty } if *f == field)
}

/// True if `err` is `InvalidInput` for `field`, `TooLong` with these lengths.
fn is_too_long_err(err: &Error, field: &str, len: usize, max: usize) -> bool {
    matches!(
        err,
        Error::InvalidInput { field: f, problem: InputProblem::TooLong { len: l, max: m } }
            if *f == field && *l == len && *m == max
    )
}

/// `Maintenance::now` is the clock truncated to microseconds, and so is every stored time.
pub(super) fn store_clock_and_timestamps<S: Backend>(fx: &Fixture<S>) {
    assert_eq!(
        fx.store.now(),
        fx.now(),
        "Maintenance::now is the store's clock"
    );
    let base = fx.now();
    fx.set_time(base + Duration::nanoseconds(1_234_567));
    assert_eq!(
        fx.store.now(),
        base + Duration::microseconds(1234),
        "now is truncated to microseconds"
    );
    let fine = base + Duration::days(1) + Duration::nanoseconds(7_654_321);
    let truncated = base + Duration::days(1) + Duration::microseconds(7654);
    let u = fx
        .store
        .create_user(&NewUser {
            email_verified: Some(fine),
            ..profile("ada@example.com")
        })
        .expect("create_user");
    assert_eq!(
        u.email_verified,
        Some(truncated),
        "email_verified is truncated"
    );
    assert_eq!(
        u.created_at,
        base + Duration::microseconds(1234),
        "created_at is truncated"
    );
    assert_eq!(
        stored_user(fx, &u.id),
        u,
        "what was returned is what is read"
    );
    let s = fx
        .store
        .create_session_with(&NewSession {
            user_id: u.id,
            session_token: random_uuid(),
            expires: fine,
        })
        .expect("create_session_with");
    assert_eq!(s.expires, truncated, "the session's expiry is truncated");
    assert_eq!(
        fx.store.get_session(&s.session_token).expect("get_session"),
        Some(s.clone())
    );
    let moved = fx
        .store
        .set_session_expiry(&s.session_token, fine + Duration::days(1))
        .expect("set_session_expiry")
        .expect("live");
    assert_eq!(moved.expires, truncated + Duration::days(1));
    let acc = fx
        .store
        .link_account(
            &u.id,
            &NewAccount {
                access_token_expires: Some(fine),
                ..oauth("github", "1", None, Some("a"))
            },
        )
        .expect("link_account");
    assert_eq!(acc.access_token_expires, Some(truncated));
    assert_eq!(
        fx.store.get_account("github", "1").expect("get_account"),
        Some(acc)
    );
    let t = VerificationToken {
        identifier: "ada@example.com".to_owned(),
        token: hash_verification_token("t", "s"),
        expires: fine,
    };
    fx.store
        .create_verification_token(&t)
        .expect("create_verification_token");
    assert_eq!(
        fx.store
            .use_verification_token(&t.identifier, &t.token)
            .expect("use_verification_token")
            .map(|x| x.expires),
        Some(truncated)
    );
}

/// `set_password` + `get_user_by_credentials`: only the right password of a user with one.
pub(super) fn password_and_credentials<S: Backend>(fx: &Fixture<S>) {
    let u = new_user(fx, Some("Ada@Example.com"));
    let without = new_user(fx, Some("without@example.com"));
    let anonymous = new_user(fx, None);
    fx.store
        .set_password(&u.id, "correct horse battery staple")
        .expect("set_password");
    fx.store
        .set_password(&anonymous.id, "pw")
        .expect("set_password");
    let stored = stored_user(fx, &u.id);
    for email in ["ada@example.com", " ADA@EXAMPLE.COM ", "Ada@Example.com"] {
        assert_eq!(
            fx.store
                .get_user_by_credentials(&creds(email, "correct horse battery staple"))
                .expect("get_user_by_credentials")
                .as_ref(),
            Some(&stored),
            "the right password with {email:?}"
        );
    }
    for (email, password, what) in [
        (
            "ada@example.com",
            "Correct horse battery staple",
            "a wrong password",
        ),
        ("ada@example.com", "", "an empty password"),
        (
            "nobody@example.com",
            "correct horse battery staple",
            "an unknown email",
        ),
        ("without@example.com", "pw", "a user without password"),
        (
            "without@example.com",
            "",
            "a user without password, empty password",
        ),
        (
            "",
            "pw",
            "a blank email (a user without email has a password)",
        ),
        ("   ", "pw", "a white-space email"),
    ] {
        assert_eq!(
            fx.store
                .get_user_by_credentials(&creds(email, password))
                .expect("get_user_by_credentials"),
            None,
            "{what} gives none"
        );
    }
    // Replacing the password: the old one stops working.
    fx.store
        .set_password(&u.id, "new password")
        .expect("set_password");
    assert_eq!(
        fx.store
            .get_user_by_credentials(&creds("ada@example.com", "correct horse battery staple"))
            .expect("get_user_by_credentials"),
        None
    );
    assert_eq!(
        fx.store
            .get_user_by_credentials(&creds("ada@example.com", "new password"))
            .expect("get_user_by_credentials")
            .map(|x| x.id),
        Some(u.id)
    );
    assert_eq!(report(fx).credentials, 2);
    assert_eq!(stored_user(fx, &without.id), without);
}

/// Passwords are 1 to `MAX_PASSWORD_LEN` bytes; a refused one changes nothing.
pub(super) fn password_limits<S: Backend>(fx: &Fixture<S>) {
    let u = new_user(fx, Some("a@example.com"));
    let err = fx
        .store
        .set_password(&u.id, "")
        .expect_err("an empty password is refused");
    assert!(is_empty_err(&err, "password"), "{err:?}");
    let max = limits::MAX_PASSWORD_LEN;
    let over = "p".repeat(max + 1);
    let err = fx.store.set_password(&u.id, &over).expect_err("too long");
    assert!(is_too_long_err(&err, "password", max + 1, max), "{err:?}");
    assert_eq!(report(fx).credentials, 0);
    let err = fx
        .store
        .get_user_by_credentials(&creds("a@example.com", &over))
        .expect_err("an oversized password is refused on lookup too");
    assert!(is_too_long_err(&err, "password", max + 1, max), "{err:?}");
    // Exactly at the limit, counted in bytes.
    let at = "é".repeat(max / 2);
    assert_eq!(at.len(), max);
    fx.store
        .set_password(&u.id, &at)
        .expect("a password at the limit");
    let err = fx
        .store
        .set_password(&u.id, &format!("{at}x"))
        .expect_err("one byte over");
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
    assert_eq!(
        fx.store
            .get_user_by_credentials(&creds("a@example.com", &at))
            .expect("get_user_by_credentials")
            .map(|x| x.id),
        Some(u.id),
        "the refused set kept the old password"
    );
}

/// The security stamp changes with the credentials (password, sign-out everywhere, email) and
/// not with anything else.
pub(super) fn security_stamp<S: Backend>(fx: &Fixture<S>) {
    let u = new_user(fx, Some("ada@example.com"));
    let v = new_user(fx, Some("bob@example.com"));
    assert_ne!(
        u.security_stamp, v.security_stamp,
        "stamps are random per user"
    );
    assert_ne!(u.security_stamp, [0; 16], "a stamp is set at creation");
    let stamp = |fx: &Fixture<S>| stored_user(fx, &u.id).security_stamp;
    let s0 = u.security_stamp;
    assert_eq!(stamp(fx), s0);

    // Not credentials: kept.
    let renamed = fx
        .store
        .patch_user(
            &u.id,
            &UserPatch {
                name: Some(Some("Ada".to_owned())),
                image: Some(Some("https://example.com/a.png".to_owned())),
                ..UserPatch::default()
            },
        )
        .expect("patch_user");
    assert_eq!(
        renamed.security_stamp, s0,
        "patch_user of the name keeps the stamp"
    );
    let renamed = fx
        .store
        .update_user(&User {
            name: Some("Ada L.".to_owned()),
            ..renamed
        })
        .expect("update_user");
    assert_eq!(
        renamed.security_stamp, s0,
        "update_user of the name keeps the stamp"
    );
    fx.store.create_session(&u.id).expect("create_session");
    fx.store
        .link_account(&u.id, &oauth("github", "1", None, None))
        .expect("link_account");
    register_passkey(fx, &u.id, &random_uuid(), 1);
    assert_eq!(
        stamp(fx),
        s0,
        "sessions, accounts and passkeys keep the stamp"
    );

    // Credentials: replaced. (set_password also ends the user's sessions by default.)
    fx.store.set_password(&u.id, "pw").expect("set_password");
    let s1 = stamp(fx);
    assert_ne!(s1, s0, "set_password replaces the stamp");
    fx.store.create_session(&u.id).expect("create_session");
    assert_eq!(fx.store.delete_sessions(&u.id).expect("delete_sessions"), 1);
    let s2 = stamp(fx);
    assert_ne!(s2, s1, "delete_sessions replaces the stamp");
    let changed = fx
        .store
        .patch_user(
            &u.id,
            &UserPatch {
                email: Some(Some("ada@new.example.com".to_owned())),
                ..UserPatch::default()
            },
        )
        .expect("patch_user email");
    assert_ne!(
        changed.security_stamp, s2,
        "patch_user of the email replaces the stamp"
    );
    assert_eq!(
        stamp(fx),
        changed.security_stamp,
        "the returned stamp is the stored one"
    );
    let s3 = changed.security_stamp;
    let changed = fx
        .store
        .update_user(&User {
            email: Some("ada@third.example.com".to_owned()),
            ..changed
        })
        .expect("update_user email");
    assert_ne!(
        changed.security_stamp, s3,
        "update_user of the email replaces the stamp"
    );
    assert_eq!(stamp(fx), changed.security_stamp);
    let s4 = changed.security_stamp;
    let cleared = fx
        .store
        .patch_user(
            &u.id,
            &UserPatch {
                email: Some(None),
                ..UserPatch::default()
            },
        )
        .expect("patch_user clearing the email");
    assert_ne!(
        cleared.security_stamp, s4,
        "removing the email replaces the stamp"
    );
    assert_eq!(
        stored_user(fx, &v.id).security_stamp,
        v.security_stamp,
        "another user's stamp never changed"
    );
}

/// `list_sessions`: the user's live sessions, oldest first, without tokens.
pub(super) fn list_sessions<S: Backend>(fx: &Fixture<S>) {
    let u = new_user(fx, None);
    let other = new_user(fx, None);
    let s1 = fx.store.create_session(&u.id).expect("create_session");
    fx.advance(Duration::days(10));
    let s2 = session_with(fx, &u.id, fx.now() + Duration::days(60));
    fx.advance(Duration::days(1));
    let s3 = fx.store.create_session(&u.id).expect("create_session");
    fx.store.create_session(&other.id).expect("create_session");

    let listed = fx.store.list_sessions(&u.id).expect("list_sessions");
    let ids: Vec<_> = listed.iter().map(|i| i.id).collect();
    assert_eq!(ids, vec![s1.id, s2.id, s3.id], "oldest first");
    for (info, s) in listed.iter().zip([&s1, &s2, &s3]) {
        assert_eq!(info.user_id, u.id);
        assert_eq!(info.expires, s.expires);
        assert_eq!(info.created_at, s.created_at);
        assert_eq!(info.updated_at, s.updated_at);
    }
    fx.set_time(s1.expires + MICRO);
    let ids: Vec<_> = fx
        .store
        .list_sessions(&u.id)
        .expect("list_sessions")
        .iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(ids, vec![s2.id, s3.id], "expired sessions are left out");
    assert!(
        fx.store
            .list_sessions(&unknown_user_id())
            .expect("list_sessions")
            .is_empty()
    );
}

/// `delete_sessions` signs one user out everywhere; `delete_session_by_id` signs out one
/// device of its owner only.
pub(super) fn delete_sessions_and_by_id<S: Backend>(fx: &Fixture<S>) {
    let a = new_user(fx, None);
    let b = new_user(fx, None);
    let mine: Vec<_> = (0..3)
        .map(|_| fx.store.create_session(&a.id).expect("create_session"))
        .collect();
    let theirs = fx.store.create_session(&b.id).expect("create_session");
    assert_eq!(fx.store.delete_sessions(&a.id).expect("delete_sessions"), 3);
    for s in &mine {
        assert_eq!(
            fx.store.get_session(&s.session_token).expect("get_session"),
            None
        );
    }
    assert_eq!(fx.store.delete_sessions(&a.id).expect("delete_sessions"), 0);
    assert_eq!(
        fx.store
            .get_session(&theirs.session_token)
            .expect("get_session"),
        Some(theirs.clone()),
        "another user's session stays"
    );

    let a1 = fx.store.create_session(&a.id).expect("create_session");
    let a2 = fx.store.create_session(&a.id).expect("create_session");
    assert!(
        !fx.store
            .delete_session_by_id(&a.id, &theirs.id)
            .expect("delete_session_by_id"),
        "a cannot sign out b's device"
    );
    assert_eq!(
        fx.store
            .get_session(&theirs.session_token)
            .expect("get_session"),
        Some(theirs)
    );
    assert!(
        fx.store
            .delete_session_by_id(&a.id, &a1.id)
            .expect("delete_session_by_id")
    );
    assert!(
        !fx.store
            .delete_session_by_id(&a.id, &a1.id)
            .expect("delete_session_by_id"),
        "already gone"
    );
    assert_eq!(
        fx.store
            .get_session(&a1.session_token)
            .expect("get_session"),
        None
    );
    let ids: Vec<_> = fx
        .store
        .list_sessions(&a.id)
        .expect("list_sessions")
        .iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(ids, vec![a2.id]);
    assert_eq!(report(fx).sessions, 2);
}

/// `create_session_with`: tokens are unique among stored sessions (live or expired), 1 to
/// `MAX_SESSION_TOKEN_LEN` bytes; an expiry in the past is accepted.
pub(super) fn create_session_with_token_rules<S: Backend>(fx: &Fixture<S>) {
    let u = new_user(fx, None);
    let v = new_user(fx, None);
    let s = session_with(fx, &u.id, fx.now() + Duration::days(1));
    for owner in [&u.id, &v.id] {
        let err = fx
            .store
            .create_session_with(&NewSession {
                user_id: *owner,
                session_token: s.session_token.clone(),
                expires: fx.now() + Duration::days(2),
            })
            .expect_err("a token in use is refused");
        assert!(matches!(err, Error::SessionTokenTaken), "{err:?}");
        assert!(err.is_conflict(), "SessionTokenTaken is a conflict");
    }
    assert_eq!(
        fx.store.get_session(&s.session_token).expect("get_session"),
        Some(s),
        "the original session is untouched"
    );

    // An expiry in the past is accepted; the session reads as expired. Its token stays taken
    // until the session is deleted.
    let past = session_with(fx, &u.id, fx.now() - Duration::seconds(1));
    let err = fx
        .store
        .create_session_with(&NewSession {
            user_id: u.id,
            session_token: past.session_token.clone(),
            expires: fx.now() + Duration::days(1),
        })
        .expect_err("the token of an expired session is taken too");
    assert!(matches!(err, Error::SessionTokenTaken), "{err:?}");
    assert_eq!(
        fx.store
            .get_session(&past.session_token)
            .expect("get_session"),
        None,
        "an already expired session reads as expired"
    );
    assert_eq!(report(fx).sessions, 1, "the read deleted it");

    let empty = NewSession {
        user_id: u.id,
        session_token: String::new(),
        expires: fx.now() + Duration::days(1),
    };
    let err = fx
        .store
        .create_session_with(&empty)
        .expect_err("an empty token is refused");
    assert!(is_empty_err(&err, "session_token"), "{err:?}");
    let max = limits::MAX_SESSION_TOKEN_LEN;
    let err = fx
        .store
        .create_session_with(&NewSession {
            session_token: "t".repeat(max + 1),
            ..empty.clone()
        })
        .expect_err("an oversized token is refused");
    assert!(
        is_too_long_err(&err, "session_token", max + 1, max),
        "{err:?}"
    );
    assert_eq!(report(fx).sessions, 1, "refused sessions are not stored");
    let at_limit = "t".repeat(max);
    let s = fx
        .store
        .create_session_with(&NewSession {
            session_token: at_limit.clone(),
            ..empty
        })
        .expect("a token at the limit");
    assert_eq!(
        fx.store.get_session(&at_limit).expect("get_session"),
        Some(s)
    );
}

/// Every operation that needs a user refuses a missing one with `UserNotFound(id)` and writes
/// nothing.
pub(super) fn unknown_user_is_user_not_found<S: Backend>(fx: &Fixture<S>) {
    let deleted = new_user(fx, Some("gone@example.com"));
    fx.store.delete_user(&deleted.id).expect("delete_user");
    for ghost in [unknown_user_id(), deleted.id] {
        let check = |what: &str, err: Error| {
            assert!(
                matches!(err, Error::UserNotFound(id) if id == ghost),
                "{what}: expected UserNotFound({ghost}), got {err:?}"
            );
        };
        check(
            "create_session",
            fx.store.create_session(&ghost).expect_err("create_session"),
        );
        check(
            "create_session_with",
            fx.store
                .create_session_with(&NewSession {
                    user_id: ghost,
                    session_token: random_uuid(),
                    expires: fx.now() + Duration::days(1),
                })
                .expect_err("create_session_with"),
        );
        check(
            "link_account",
            fx.store
                .link_account(&ghost, &oauth("github", "ghost", Some("r"), Some("a")))
                .expect_err("link_account"),
        );
        check(
            "create_authenticator",
            fx.store
                .create_authenticator(&passkey(&ghost, &random_uuid(), 0))
                .expect_err("create_authenticator"),
        );
        check(
            "set_password",
            fx.store
                .set_password(&ghost, "pw")
                .expect_err("set_password"),
        );
        check(
            "patch_user",
            fx.store
                .patch_user(
                    &ghost,
                    &UserPatch {
                        name: Some(Some("x".to_owned())),
                        ..UserPatch::default()
                    },
                )
                .expect_err("patch_user"),
        );
        check(
            "update_user",
            fx.store
                .update_user(&User {
                    id: ghost,
                    ..deleted.clone()
                })
                .expect_err("update_user"),
        );
    }
    let r = report(fx);
    assert_eq!(
        (
            r.users,
            r.accounts,
            r.sessions,
            r.credentials,
            r.authenticators
        ),
        (0, 0, 0, 0, 0),
        "nothing was written"
    );
    assert_eq!(
        fx.store
            .get_account("github", "ghost")
            .expect("get_account"),
        None
    );
}

/// `provider_type` is one of oauth, oidc, email, webauthn; anything else is refused.
pub(super) fn invalid_provider_type<S: Backend>(fx: &Fixture<S>) {
    let u = new_user(fx, None);
    for bad in ["oauth2", "OAuth", "OIDC", "credentials", "saml", " oauth"] {
        let err = fx
            .store
            .link_account(
                &u.id,
                &NewAccount {
                    provider_type: bad.to_owned(),
                    ..oauth("github", "1", None, None)
                },
            )
            .expect_err("an unknown provider type is refused");
        assert!(
            matches!(
                err,
                Error::InvalidValue {
                    field: "provider_type",
                    ..
                }
            ),
            "{bad:?}: {err:?}"
        );
    }
    let err = fx
        .store
        .link_account(
            &u.id,
            &NewAccount {
                provider_type: String::new(),
                ..oauth("github", "1", None, None)
            },
        )
        .expect_err("an empty provider type is refused");
    assert!(is_empty_err(&err, "provider_type"), "{err:?}");
    assert_eq!(report(fx).accounts, 0, "nothing was linked");
    for (i, good) in crate::model::PROVIDER_TYPES.iter().enumerate() {
        let acc = fx
            .store
            .link_account(
                &u.id,
                &NewAccount {
                    provider_type: (*good).to_owned(),
                    ..oauth("p", &i.to_string(), None, None)
                },
            )
            .expect("an accepted provider type");
        assert_eq!(acc.provider_type, *good);
    }
    assert_eq!(
        fx.store.list_accounts(&u.id).expect("list_accounts").len(),
        crate::model::PROVIDER_TYPES.len()
    );
}

/// `patch_user`'s errors write nothing; clearing the email frees it.
pub(super) fn patch_user_rules<S: Backend>(fx: &Fixture<S>) {
    let a = new_user(fx, Some("a@example.com"));
    let b = new_user(fx, Some("b@example.com"));
    fx.advance(Duration::minutes(1));
    let err = fx
        .store
        .patch_user(
            &a.id,
            &UserPatch {
                name: Some(Some("changed".to_owned())),
                email: Some(Some("B@Example.com".to_owned())),
                ..UserPatch::default()
            },
        )
        .expect_err("a taken email is refused");
    assert!(matches!(err, Error::EmailTaken), "{err:?}");
    let err = fx
        .store
        .patch_user(
            &a.id,
            &UserPatch {
                name: Some(Some("changed".to_owned())),
                email: Some(Some(" ".to_owned())),
                ..UserPatch::default()
            },
        )
        .expect_err("a blank email is refused");
    assert!(is_empty_err(&err, "email"), "{err:?}");
    let err = fx
        .store
        .patch_user(
            &a.id,
            &UserPatch {
                extra: Some(obj(json!({"big": "x".repeat(limits::MAX_EXTRA_LEN)}))),
                ..UserPatch::default()
            },
        )
        .expect_err("an oversized extra is refused");
    assert!(
        matches!(
            err,
            Error::InvalidInput {
                field: "extra",
                problem: InputProblem::TooLong { .. }
            }
        ),
        "{err:?}"
    );
    assert_eq!(stored_user(fx, &a.id), a, "a is unchanged");
    assert_eq!(stored_user(fx, &b.id), b, "b is unchanged");

    let cleared = fx
        .store
        .patch_user(
            &a.id,
            &UserPatch {
                email: Some(None),
                ..UserPatch::default()
            },
        )
        .expect("clearing the email");
    assert_eq!(cleared.email, None);
    assert_eq!(
        fx.store.get_user_by_email("a@example.com").expect("lookup"),
        None
    );
    let c = new_user(fx, Some("A@example.com"));
    assert_eq!(
        fx.store
            .get_user_by_email("a@example.com")
            .expect("lookup")
            .map(|x| x.id),
        Some(c.id)
    );
    let moved = fx
        .store
        .patch_user(
            &a.id,
            &UserPatch {
                email: Some(Some("a2@example.com".to_owned())),
                ..UserPatch::default()
            },
        )
        .expect("setting a new email");
    assert_eq!(
        fx.store
            .get_user_by_email("A2@example.com")
            .expect("lookup"),
        Some(moved)
    );
}

/// `list_accounts`: the user's accounts, oldest first, secrets unsealed; `[]` for others.
pub(super) fn list_accounts<S: Backend>(fx: &Fixture<S>) {
    let u = new_user(fx, None);
    let other = new_user(fx, None);
    let want = full_account(fx.now());
    let first = fx.store.link_account(&u.id, &want).expect("link_account");
    fx.advance(Duration::seconds(1));
    let second = fx
        .store
        .link_account(&u.id, &oauth("github", "work", Some("r"), Some("a")))
        .expect("link_account");
    fx.advance(Duration::seconds(1));
    let third = fx
        .store
        .link_account(&u.id, &oauth("github", "personal", None, None))
        .expect("link_account");
    fx.store
        .link_account(&other.id, &oauth("github", "theirs", None, None))
        .expect("link_account");
    let listed = fx.store.list_accounts(&u.id).expect("list_accounts");
    assert_eq!(
        listed,
        vec![first, second, third],
        "oldest first, as linked"
    );
    assert_account_is(&listed[0], &want, &u.id, "list_accounts");
    assert!(
        fx.store
            .list_accounts(&unknown_user_id())
            .expect("list_accounts")
            .is_empty()
    );
}

/// Secrets at their size limits round-trip; one byte over is refused.
pub(super) fn account_secrets_round_trip<S: Backend>(fx: &Fixture<S>) {
    let u = new_user(fx, None);
    let big = NewAccount {
        refresh_token: Some("r".repeat(limits::MAX_OAUTH_TOKEN_LEN)),
        access_token: Some("é".repeat(limits::MAX_OAUTH_TOKEN_LEN / 2)),
        id_token: Some("i".repeat(limits::MAX_ID_TOKEN_LEN)),
        token_type: Some("DPoP".to_owned()),
        scope: Some("s".repeat(limits::MAX_SCOPE_LEN)),
        session_state: Some("🔑".repeat(limits::MAX_SESSION_STATE_LEN / 4)),
        extra: obj(json!({
            "refresh_token_expires_in": 0,
            "float": 1.5,
            "null": null,
            "text": "ünïcödé",
            "list": [true, false, {"deep": []}]
        })),
        access_token_expires: Some(fx.now() + Duration::seconds(3599)),
        ..oauth("google", "big", None, None)
    };
    let linked = fx
        .store
        .link_account(&u.id, &big)
        .expect("link_account at the limits");
    assert_account_is(&linked, &big, &u.id, "link_account");
    let stored = fx
        .store
        .get_account("google", "big")
        .expect("get_account")
        .expect("stored");
    assert_account_is(&stored, &big, &u.id, "get_account");

    for (field, acc) in [
        (
            "refresh_token",
            NewAccount {
                refresh_token: Some("r".repeat(limits::MAX_OAUTH_TOKEN_LEN + 1)),
                ..oauth("google", "over", None, None)
            },
        ),
        (
            "access_token",
            NewAccount {
                access_token: Some("a".repeat(limits::MAX_OAUTH_TOKEN_LEN + 1)),
                ..oauth("google", "over", None, None)
            },
        ),
        (
            "id_token",
            NewAccount {
                id_token: Some("i".repeat(limits::MAX_ID_TOKEN_LEN + 1)),
                ..oauth("google", "over", None, None)
            },
        ),
        (
            "scope",
            NewAccount {
                scope: Some("s".repeat(limits::MAX_SCOPE_LEN + 1)),
                ..oauth("google", "over", None, None)
            },
        ),
        (
            "extra",
            NewAccount {
                extra: obj(json!({"k": "x".repeat(limits::MAX_EXTRA_LEN)})),
                ..oauth("google", "over", None, None)
            },
        ),
    ] {
        let err = fx
            .store
            .link_account(&u.id, &acc)
            .expect_err("a value over its limit is refused");
        assert!(
            matches!(err, Error::InvalidInput { field: f, problem: InputProblem::TooLong { .. } } if f == field),
            "{field}: {err:?}"
        );
    }
    assert_eq!(
        fx.store.get_account("google", "over").expect("get_account"),
        None
    );
    assert_eq!(
        fx.store.list_accounts(&u.id).expect("list_accounts"),
        vec![linked]
    );
}

/// Auth.js verification tokens: identifiers normalized, any hash string accepted, a live hash
/// is taken, an expired one is replaced, a miss deletes nothing.
pub(super) fn verification_token_rules<S: Backend>(fx: &Fixture<S>) {
    let t = VerificationToken {
        identifier: "Info@Example.com".to_owned(),
        token: hash_verification_token(&random_uuid(), "secret"),
        expires: fx.now() + Duration::minutes(10),
    };
    fx.store
        .create_verification_token(&t)
        .expect("create_verification_token");
    for ident in ["info@example.com", "someone@example.com"] {
        let err = fx
            .store
            .create_verification_token(&VerificationToken {
                identifier: ident.to_owned(),
                ..t.clone()
            })
            .expect_err("a live hash is taken");
        assert!(
            matches!(err, Error::VerificationTokenTaken),
            "{ident}: {err:?}"
        );
    }
    assert_eq!(
        fx.store
            .use_verification_token(" INFO@example.COM", &t.token)
            .expect("use_verification_token"),
        Some(t.clone()),
        "matched after normalization, returned as first given"
    );

    // Any string is accepted as the hash.
    let odd = VerificationToken {
        identifier: "odd@example.com".to_owned(),
        token: "not a hex hash, but Auth.js lets adapters store any string".to_owned(),
        expires: fx.now() + Duration::minutes(10),
    };
    assert_eq!(
        fx.store
            .create_verification_token(&odd)
            .expect("create_verification_token"),
        odd
    );
    assert_eq!(
        fx.store
            .use_verification_token(&odd.identifier, &odd.token)
            .expect("use_verification_token"),
        Some(odd)
    );

    // An expired token's hash may be reused; the old one is replaced.
    let first = VerificationToken {
        identifier: "a@example.com".to_owned(),
        token: hash_verification_token("reused", "secret"),
        expires: fx.now() + Duration::minutes(1),
    };
    fx.store
        .create_verification_token(&first)
        .expect("create_verification_token");
    // A miss (wrong identifier) deletes nothing, even once expired.
    fx.set_time(first.expires + MICRO);
    assert_eq!(
        fx.store
            .use_verification_token("b@example.com", &first.token)
            .expect("use_verification_token"),
        None
    );
    assert_eq!(
        report(fx).verification_requests,
        1,
        "a miss deletes nothing"
    );
    let second = VerificationToken {
        identifier: "b@example.com".to_owned(),
        token: first.token.clone(),
        expires: fx.now() + Duration::minutes(10),
    };
    fx.store
        .create_verification_token(&second)
        .expect("an expired hash is replaced");
    assert_eq!(
        fx.store
            .use_verification_token(&first.identifier, &first.token)
            .expect("use_verification_token"),
        None,
        "the old token is gone"
    );
    assert_eq!(
        fx.store
            .use_verification_token(&second.identifier, &second.token)
            .expect("use_verification_token"),
        Some(second)
    );

    // Required and limited fields.
    let base = VerificationToken {
        identifier: "c@example.com".to_owned(),
        token: "t".to_owned(),
        expires: fx.now() + Duration::minutes(10),
    };
    for (field, bad, empty) in [
        (
            "identifier",
            VerificationToken {
                identifier: "  ".to_owned(),
                ..base.clone()
            },
            true,
        ),
        (
            "token",
            VerificationToken {
                token: String::new(),
                ..base.clone()
            },
            true,
        ),
        (
            "token",
            VerificationToken {
                token: "t".repeat(limits::MAX_TOKEN_LEN + 1),
                ..base.clone()
            },
            false,
        ),
    ] {
        let err = fx
            .store
            .create_verification_token(&bad)
            .expect_err("an invalid token is refused");
        let ok = if empty {
            is_empty_err(&err, field)
        } else {
            is_too_long_err(
                &err,
                field,
                limits::MAX_TOKEN_LEN + 1,
                limits::MAX_TOKEN_LEN,
            )
        };
        assert!(ok, "{field}: {err:?}");
    }
    assert_eq!(report(fx).verification_requests, 0);
}

/// Lookups are not limited: an oversized or odd argument finds nothing (and is no error).
pub(super) fn oversized_lookups_find_nothing<S: Backend>(fx: &Fixture<S>) {
    let u = new_user(fx, Some("ada@example.com"));
    let s = fx.store.create_session(&u.id).expect("create_session");
    let (p, _outbox) = recording_provider();
    fx.store
        .create_verification_request("ada@example.com", URL, TOK, "sec", &p)
        .expect("create_verification_request");
    let huge = "x".repeat(100_000);
    let huge_email = format!("{huge}@example.com");
    let odd = "a\u{0}\u{202E}b@example.com";
    for q in [huge_email.as_str(), huge.as_str(), odd] {
        assert_eq!(
            fx.store.get_user_by_email(q).expect("get_user_by_email"),
            None
        );
        assert_eq!(
            fx.store
                .get_user_by_credentials(&creds(q, "pw"))
                .expect("get_user_by_credentials"),
            None
        );
        assert_eq!(fx.store.get_account(q, q).expect("get_account"), None);
        assert_eq!(
            fx.store
                .get_user_by_account(q, q)
                .expect("get_user_by_account"),
            None
        );
        assert_eq!(
            fx.store
                .get_user_by_provider_account_id(q, q)
                .expect("get_user_by_provider_account_id"),
            None
        );
        assert_eq!(
            fx.store.get_authenticator(q).expect("get_authenticator"),
            None
        );
        assert_eq!(fx.store.get_session(q).expect("get_session"), None);
        assert_eq!(
            fx.store
                .get_session_and_user(q)
                .expect("get_session_and_user"),
            None
        );
        assert_eq!(
            fx.store
                .get_verification_request(q, q, q, &p)
                .expect("get_verification_request"),
            None
        );
        assert_eq!(
            fx.store
                .get_verification_request(q, TOK, "sec", &p)
                .expect("get_verification_request"),
            None
        );
        assert_eq!(
            fx.store
                .use_verification_request(q, q, q)
                .expect("use_verification_request"),
            None
        );
        assert_eq!(
            fx.store
                .use_verification_token(q, q)
                .expect("use_verification_token"),
            None
        );
        assert_eq!(
            fx.store
                .unlink_account_by_provider(q, q)
                .expect("unlink_account_by_provider"),
            None
        );
        fx.store
            .unlink_account(&u.id, q, q)
            .expect("unlink_account");
        fx.store.delete_session(q).expect("delete_session");
        assert_eq!(
            fx.store
                .delete_session_returning(q)
                .expect("delete_session_returning"),
            None
        );
        fx.store
            .delete_verification_request(q, q, q, &p)
            .expect("delete_verification_request");
    }
    assert_eq!(
        fx.store.get_session(&s.session_token).expect("get_session"),
        Some(s)
    );
    assert_eq!(report(fx).verification_requests, 1);
}

/// Every stored string has a limit; over it (or empty where required) is `InvalidInput` naming
/// the field, and nothing is written or sent.
pub(super) fn input_limits<S: Backend>(fx: &Fixture<S>) {
    let name_over = NewUser {
        name: Some("n".repeat(limits::MAX_NAME_LEN + 1)),
        ..NewUser::default()
    };
    let err = fx
        .store
        .create_user(&name_over)
        .expect_err("an oversized name");
    assert!(
        is_too_long_err(&err, "name", limits::MAX_NAME_LEN + 1, limits::MAX_NAME_LEN),
        "{err:?}"
    );
    let err = fx
        .store
        .create_user(&NewUser {
            image: Some("i".repeat(limits::MAX_IMAGE_LEN + 1)),
            ..NewUser::default()
        })
        .expect_err("an oversized image");
    assert!(
        is_too_long_err(
            &err,
            "image",
            limits::MAX_IMAGE_LEN + 1,
            limits::MAX_IMAGE_LEN
        ),
        "{err:?}"
    );
    let err = fx
        .store
        .create_user(&NewUser {
            extra: obj(json!({"k": "x".repeat(limits::MAX_EXTRA_LEN)})),
            ..NewUser::default()
        })
        .expect_err("an oversized extra");
    assert!(
        matches!(
            err,
            Error::InvalidInput {
                field: "extra",
                problem: InputProblem::TooLong { .. }
            }
        ),
        "{err:?}"
    );
    assert_eq!(report(fx).users, 0, "no refused user was stored");
    let u = fx
        .store
        .create_user(&NewUser {
            name: Some("n".repeat(limits::MAX_NAME_LEN)),
            ..NewUser::default()
        })
        .expect("a name at the limit");
    assert_eq!(
        stored_user(fx, &u.id).name.as_deref().map(str::len),
        Some(limits::MAX_NAME_LEN)
    );

    let acc = |f: fn(&mut NewAccount)| {
        let mut a = oauth("github", "1", None, None);
        f(&mut a);
        a
    };
    for (field, a, empty) in [
        (
            "provider_id",
            acc(|a| a.provider_id = "p".repeat(limits::MAX_PROVIDER_ID_LEN + 1)),
            false,
        ),
        ("provider_id", acc(|a| a.provider_id.clear()), true),
        (
            "provider_account_id",
            acc(|a| a.provider_account_id = "p".repeat(limits::MAX_PROVIDER_ACCOUNT_ID_LEN + 1)),
            false,
        ),
        (
            "provider_account_id",
            acc(|a| a.provider_account_id.clear()),
            true,
        ),
        (
            "token_type",
            acc(|a| a.token_type = Some("t".repeat(limits::MAX_TOKEN_TYPE_LEN + 1))),
            false,
        ),
        (
            "session_state",
            acc(|a| a.session_state = Some("s".repeat(limits::MAX_SESSION_STATE_LEN + 1))),
            false,
        ),
    ] {
        let err = fx
            .store
            .link_account(&u.id, &a)
            .expect_err("an invalid account");
        let ok = if empty {
            is_empty_err(&err, field)
        } else {
            matches!(err, Error::InvalidInput { field: f, problem: InputProblem::TooLong { .. } } if f == field)
        };
        assert!(ok, "{field}: {err:?}");
    }
    assert_eq!(report(fx).accounts, 0, "no refused account was stored");

    let pk = |f: fn(&mut NewAuthenticator)| {
        let mut a = passkey(&u.id, "cred", 0);
        f(&mut a);
        a
    };
    for (field, a, empty) in [
        ("credential_id", pk(|a| a.credential_id.clear()), true),
        (
            "credential_id",
            pk(|a| a.credential_id = "c".repeat(limits::MAX_CREDENTIAL_ID_LEN + 1)),
            false,
        ),
        (
            "provider_account_id",
            pk(|a| a.provider_account_id.clear()),
            true,
        ),
        (
            "credential_public_key",
            pk(|a| a.credential_public_key.clear()),
            true,
        ),
        (
            "credential_public_key",
            pk(|a| a.credential_public_key = "k".repeat(limits::MAX_PUBLIC_KEY_LEN + 1)),
            false,
        ),
        (
            "credential_device_type",
            pk(|a| a.credential_device_type.clear()),
            true,
        ),
        (
            "credential_device_type",
            pk(|a| a.credential_device_type = "d".repeat(limits::MAX_DEVICE_TYPE_LEN + 1)),
            false,
        ),
        (
            "transports",
            pk(|a| a.transports = Some("t".repeat(limits::MAX_TRANSPORTS_LEN + 1))),
            false,
        ),
    ] {
        let err = fx
            .store
            .create_authenticator(&a)
            .expect_err("an invalid authenticator");
        let ok = if empty {
            is_empty_err(&err, field)
        } else {
            matches!(err, Error::InvalidInput { field: f, problem: InputProblem::TooLong { .. } } if f == field)
        };
        assert!(ok, "{field}: {err:?}");
    }
    assert_eq!(
        report(fx).authenticators,
        0,
        "no refused authenticator was stored"
    );

    let (p, outbox) = recording_provider();
    let long_url = "u".repeat(limits::MAX_URL_LEN + 1);
    let long_token = "t".repeat(limits::MAX_TOKEN_LEN + 1);
    for (field, ident, url, tok, sec, empty) in [
        ("identifier", " ", URL, TOK, "s", true),
        ("url", "a@example.com", "", TOK, "s", true),
        ("token", "a@example.com", URL, "", "s", true),
        ("secret", "a@example.com", URL, TOK, "", true),
        ("url", "a@example.com", long_url.as_str(), TOK, "s", false),
        (
            "token",
            "a@example.com",
            URL,
            long_token.as_str(),
            "s",
            false,
        ),
        (
            "secret",
            "a@example.com",
            URL,
            TOK,
            long_token.as_str(),
            false,
        ),
    ] {
        let err = fx
            .store
            .create_verification_request(ident, url, tok, sec, &p)
            .expect_err("an invalid verification request");
        let ok = if empty {
            is_empty_err(&err, field)
        } else {
            matches!(err, Error::InvalidInput { field: f, problem: InputProblem::TooLong { .. } } if f == field)
        };
        assert!(ok, "{field}: {err:?}");
    }
    for d in [Duration::zero(), Duration::seconds(-1)] {
        let err = fx
            .store
            .create_verification_request("a@example.com", URL, TOK, "s", &p.clone().max_age(d))
            .expect_err("a non-positive link max age");
        assert!(
            matches!(
                err,
                Error::InvalidInput {
                    problem: InputProblem::NotPositive,
                    ..
                }
            ),
            "{d}: {err:?}"
        );
    }
    assert!(sent(&outbox).is_empty(), "nothing was sent");
    assert_eq!(
        report(fx).verification_requests,
        0,
        "no refused request was stored"
    );
}

/// `Transactional::write`: everything the closure does commits together when it returns `Ok`,
/// and the closure sees its own writes.
pub(super) fn transaction_commits_everything<S: Backend>(fx: &Fixture<S>) {
    let (p, outbox) = recording_provider();
    let credential_id = random_uuid();
    let token = random_uuid();
    let expires = fx.now() + Duration::days(7);
    let (user, session, v3_session, account) = fx
        .store
        .write(|tx| {
            let user = tx.create_user(&NewUser {
                name: Some("Ada".to_owned()),
                ..profile("ada@example.com")
            })?;
            assert_eq!(
                tx.get_user_by_email("ADA@example.com")?.as_ref(),
                Some(&user),
                "the transaction sees its own user"
            );
            let account = tx.link_account(&user.id, &full_account(fx.now()))?;
            tx.link_account(&user.id, &webauthn_account(&credential_id))?;
            tx.create_authenticator(&passkey(&user.id, &credential_id, 0))?;
            // Before the sessions: setting a password ends the user's sessions.
            tx.set_password(&user.id, "pw")?;
            let session = tx.create_session_with(&NewSession {
                user_id: user.id,
                session_token: token.clone(),
                expires,
            })?;
            let v3_session = tx.create_session(&user.id)?;
            assert_eq!(
                tx.get_session(&token)?.as_ref(),
                Some(&session),
                "the transaction sees its own session"
            );
            tx.create_verification_request("ada@example.com", URL, TOK, "sec", &p)?;
            tx.create_verification_token(&VerificationToken {
                identifier: "ada@example.com".to_owned(),
                token: hash_verification_token("tok2", "sec"),
                expires,
            })?;
            Ok((user, session, v3_session, account))
        })
        .expect("the transaction commits");
    let stored = stored_user(fx, &user.id);
    assert_eq!(
        fx.store
            .get_session_and_user(&token)
            .expect("get_session_and_user"),
        Some((session, stored.clone()))
    );
    assert_eq!(
        fx.store
            .get_session(&v3_session.session_token)
            .expect("get_session"),
        Some(v3_session)
    );
    assert_eq!(
        fx.store
            .get_account(&account.provider_id, &account.provider_account_id)
            .expect("get_account"),
        Some(account)
    );
    assert!(
        fx.store
            .get_authenticator(&credential_id)
            .expect("get_authenticator")
            .is_some()
    );
    assert_eq!(
        fx.store
            .get_user_by_credentials(&creds("ada@example.com", "pw"))
            .expect("get_user_by_credentials"),
        Some(stored)
    );
    assert_eq!(sent(&outbox).len(), 1, "the sender ran once");
    assert!(
        fx.store
            .use_verification_request("ada@example.com", TOK, "sec")
            .expect("use_verification_request")
            .is_some()
    );
    assert!(
        fx.store
            .use_verification_token("ada@example.com", &hash_verification_token("tok2", "sec"))
            .expect("use_verification_token")
            .is_some()
    );
    let r = report(fx);
    assert_eq!(
        (
            r.users,
            r.accounts,
            r.sessions,
            r.credentials,
            r.authenticators
        ),
        (1, 2, 2, 1, 1)
    );
}

/// `Transactional::write`: when the closure returns `Err`, nothing it did is kept — neither
/// new records nor changes to existing ones — and the error is returned.
pub(super) fn transaction_err_keeps_nothing<S: Backend>(fx: &Fixture<S>) {
    let owner = new_user(fx, Some("owner@example.com"));
    let owner_account = fx
        .store
        .link_account(&owner.id, &oauth("github", "42", Some("r"), Some("a")))
        .expect("link_account");
    let owner_key = register_passkey(fx, &owner.id, &random_uuid(), 5);
    fx.store
        .set_password(&owner.id, "owner pw")
        .expect("set_password");
    // After the password: setting a password ends the user's sessions.
    let owner_session = fx.store.create_session(&owner.id).expect("create_session");
    let owner = stored_user(fx, &owner.id);
    let before = report(fx);

    // The application bails out with an error of its own after many writes.
    let err = fx
        .store
        .write(|tx| {
            let u = tx.create_user(&profile("newcomer@example.com"))?;
            tx.link_account(&u.id, &oauth("google", "n", Some("r"), None))?;
            tx.create_session(&u.id)?;
            tx.set_password(&u.id, "pw")?;
            tx.create_authenticator(&passkey(&u.id, "newcomer-key", 0))?;
            tx.create_verification_token(&VerificationToken {
                identifier: "newcomer@example.com".to_owned(),
                token: hash_verification_token("t", "s"),
                expires: fx.now() + Duration::hours(1),
            })?;
            // Changes to existing records.
            tx.patch_user(
                &owner.id,
                &UserPatch {
                    name: Some(Some("hijacked".to_owned())),
                    email: Some(Some("hijacked@example.com".to_owned())),
                    ..UserPatch::default()
                },
            )?;
            tx.delete_session(&owner_session.session_token)?;
            tx.update_authenticator_counter(&owner_key.credential_id, 99)?;
            tx.set_password(&owner.id, "hijacked pw")?;
            tx.unlink_account_by_provider("github", "42")?;
            Err::<(), _>(Error::InvalidConfig("conformance: the application said no"))
        })
        .expect_err("the closure's error is returned");
    assert!(
        matches!(
            err,
            Error::InvalidConfig("conformance: the application said no")
        ),
        "{err:?}"
    );
    assert_eq!(
        fx.store
            .get_user_by_email("newcomer@example.com")
            .expect("lookup"),
        None
    );
    assert_eq!(
        fx.store.get_account("google", "n").expect("get_account"),
        None
    );
    assert_eq!(
        fx.store
            .get_authenticator("newcomer-key")
            .expect("get_authenticator"),
        None
    );
    assert_eq!(
        fx.store
            .use_verification_token("newcomer@example.com", &hash_verification_token("t", "s"))
            .expect("use_verification_token"),
        None
    );
    assert_eq!(stored_user(fx, &owner.id), owner, "the owner is unchanged");
    assert_eq!(
        fx.store
            .get_session(&owner_session.session_token)
            .expect("get_session"),
        Some(owner_session.clone())
    );
    assert_eq!(
        fx.store
            .get_authenticator(&owner_key.credential_id)
            .expect("get_authenticator"),
        Some(owner_key.clone())
    );
    assert_eq!(
        fx.store.get_account("github", "42").expect("get_account"),
        Some(owner_account.clone())
    );
    assert!(
        fx.store
            .get_user_by_credentials(&creds("owner@example.com", "owner pw"))
            .expect("get_user_by_credentials")
            .is_some(),
        "the owner's password is unchanged"
    );
    assert_eq!(report(fx), before, "the store holds what it held before");

    // A failing operation propagated with `?` rolls back the writes before it.
    let err = fx
        .store
        .write(|tx| {
            let u = tx.create_user(&profile("newcomer@example.com"))?;
            tx.create_session(&u.id)?;
            tx.set_password(&u.id, "pw")?;
            // Conflict: the provider account belongs to `owner`.
            tx.link_account(&u.id, &oauth("github", "42", None, None))?;
            tx.create_session(&u.id)
        })
        .expect_err("the conflict is returned");
    assert!(matches!(err, Error::AccountLinkedToAnotherUser), "{err:?}");
    assert_eq!(
        fx.store
            .get_user_by_email("newcomer@example.com")
            .expect("lookup"),
        None
    );
    assert_eq!(
        fx.store.get_account("github", "42").expect("get_account"),
        Some(owner_account)
    );
    assert_eq!(report(fx), before);
}

/// Inside a transaction, an operation that fails has written nothing, so the closure can
/// handle the error and commit the rest.
pub(super) fn transaction_failed_call_writes_nothing<S: Backend>(fx: &Fixture<S>) {
    let other = new_user(fx, Some("other@example.com"));
    fx.store
        .link_account(&other.id, &oauth("github", "taken", None, None))
        .expect("link_account");
    let taken_key = register_passkey(fx, &other.id, &random_uuid(), 1);
    let (ok_provider, outbox) = recording_provider();
    let user = fx
        .store
        .write(|tx| {
            let u = tx.create_user(&profile("ada@example.com"))?;
            let err = tx
                .create_user(&NewUser {
                    name: Some("twin".to_owned()),
                    ..profile("ADA@example.com")
                })
                .expect_err("taken inside the transaction");
            assert!(matches!(err, Error::EmailTaken), "{err:?}");
            let err = tx
                .link_account(&u.id, &oauth("github", "taken", Some("r"), None))
                .expect_err("linked to another user");
            assert!(matches!(err, Error::AccountLinkedToAnotherUser), "{err:?}");
            let err = tx
                .create_authenticator(&passkey(&u.id, &taken_key.credential_id, 0))
                .expect_err("a registered credential id");
            assert!(matches!(err, Error::AuthenticatorTaken), "{err:?}");
            let err = tx
                .create_verification_request("ada@example.com", URL, TOK, "s", &failing_provider())
                .expect_err("the sender fails");
            assert!(matches!(err, Error::SendFailed(_)), "{err:?}");
            let err = tx
                .create_session_with(&NewSession {
                    user_id: u.id,
                    session_token: String::new(),
                    expires: fx.now() + Duration::days(1),
                })
                .expect_err("an empty token");
            assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
            tx.create_session(&u.id)?;
            tx.create_verification_request("ada@example.com", URL, TOK2, "s", &ok_provider)?;
            Ok(u)
        })
        .expect("the rest commits");
    assert_eq!(stored_user(fx, &user.id), user);
    assert_eq!(
        fx.store
            .list_sessions(&user.id)
            .expect("list_sessions")
            .len(),
        1
    );
    assert!(
        fx.store
            .list_accounts(&user.id)
            .expect("list_accounts")
            .is_empty()
    );
    assert!(
        fx.store
            .list_authenticators(&user.id)
            .expect("list_authenticators")
            .is_empty()
    );
    assert_eq!(
        fx.store
            .get_user_by_account("github", "taken")
            .expect("get_user_by_account")
            .map(|u| u.id),
        Some(other.id)
    );
    assert_eq!(sent(&outbox).len(), 1);
    let r = report(fx);
    assert_eq!(
        (
            r.users,
            r.accounts,
            r.sessions,
            r.verification_requests,
            r.authenticators
        ),
        (2, 2, 1, 1, 1),
        "only the successful operations were written"
    );
}

/// `purge_expired` removes exactly the expired sessions and links and says how many.
pub(super) fn purge_expired_counts<S: Backend>(fx: &Fixture<S>) {
    let (provider, _outbox) = recording_provider();
    let short = provider.clone().max_age(Duration::hours(1));
    let u = new_user(fx, None);
    let old: Vec<_> = (0..3)
        .map(|_| fx.store.create_session(&u.id).expect("create_session"))
        .collect();
    for i in 0..2 {
        fx.store
            .create_verification_request(
                "a@example.com",
                URL,
                &format!("{TOK}{i}"),
                "secret",
                &short,
            )
            .expect("create_verification_request");
    }
    fx.store
        .create_verification_token(&VerificationToken {
            identifier: "a@example.com".to_owned(),
            token: hash_verification_token("authjs", "secret"),
            expires: fx.now() + Duration::hours(2),
        })
        .expect("create_verification_token");
    fx.advance(Duration::days(10));
    let live: Vec<_> = (0..2)
        .map(|_| fx.store.create_session(&u.id).expect("create_session"))
        .collect();
    fx.store
        .create_verification_request("a@example.com", URL, TOK2, "secret", &provider)
        .expect("create_verification_request");

    // At exactly the old sessions' expiry they are live; every link has expired.
    fx.set_time(old[0].expires);
    assert_eq!(
        fx.store.purge_expired().expect("purge_expired"),
        PurgeStats {
            sessions: 0,
            verification_requests: 4,
            web_sessions: 0,
        }
    );
    let r = report(fx);
    assert_eq!((r.sessions, r.verification_requests), (5, 0));

    fx.advance(MICRO);
    assert_eq!(
        fx.store.purge_expired().expect("purge_expired"),
        PurgeStats {
            sessions: 3,
            verification_requests: 0,
            web_sessions: 0,
        }
    );
    assert_eq!(report(fx).sessions, 2);
    for s in &live {
        assert_eq!(
            fx.store
                .get_session(&s.session_token)
                .expect("get_session")
                .as_ref(),
            Some(s),
            "live sessions stay"
        );
    }
    assert_eq!(
        fx.store.purge_expired().expect("purge_expired"),
        PurgeStats::default(),
        "a second purge finds nothing"
    );
}

/// Whether `err` is `InvalidInput` for `field` with too little entropy (`min` bits).
fn is_low_entropy_err(err: &Error, field: &str, min: u32) -> bool {
    matches!(err, Error::InvalidInput { field: f, problem: InputProblem::TooLittleEntropy { min: m, .. } } if *f == field && *m == min)
}

/// By default a raw verification token needs 128 bits of estimated entropy and a caller-chosen
/// session token 120 (a random UUID passes both); shorter ones are `InvalidInput` naming the
/// field and the limit, never the token, and nothing is stored or sent. Lookups by a short
/// token find nothing and are no error.
pub(super) fn entropy_floor<S: Backend>(fx: &Fixture<S>) {
    let (p, outbox) = recording_provider();
    let min = limits::MIN_VERIFICATION_TOKEN_BITS;
    let code = "493817";
    let err = fx
        .store
        .create_verification_request("a@example.com", URL, code, "secret", &p)
        .expect_err("a six-digit code is refused by default");
    assert!(is_low_entropy_err(&err, "token", min), "{err:?}");
    assert!(
        !err.to_string().contains(code),
        "the message does not show the token: {err}"
    );
    assert!(
        err.to_string().contains("128"),
        "the message names the limit: {err}"
    );
    let err = fx
        .store
        .create_verification_token(&VerificationToken {
            identifier: "a@example.com".to_owned(),
            token: code.to_owned(),
            expires: fx.now() + Duration::minutes(10),
        })
        .expect_err("a short Auth.js token string is refused");
    assert!(is_low_entropy_err(&err, "token", min), "{err:?}");
    assert!(sent(&outbox).is_empty(), "nothing was sent");
    assert_eq!(report(fx).verification_requests, 0, "nothing was stored");

    // Just under and at the floor, by alphabet.
    let under_and_at = [
        ("f".repeat(31), "f".repeat(32)), // hex: 4 bits a character
        ("7".repeat(38), "7".repeat(39)), // decimal: log2(10) bits a digit
        ("Z".repeat(21), "Z".repeat(22)), // base64: 6 bits a character
    ];
    for (i, (under, at)) in under_and_at.iter().enumerate() {
        let err = fx
            .store
            .create_verification_request("b@example.com", URL, under, "secret", &p)
            .expect_err("under the floor");
        assert!(is_low_entropy_err(&err, "token", min), "{i}: {err:?}");
        fx.store
            .create_verification_request("b@example.com", URL, at, "secret", &p)
            .unwrap_or_else(|e| panic!("{i}: at the floor: {e:?}"));
    }
    // A random UUID (hyphens do not count, its 32 hex digits do) and Auth.js's hashed token.
    let uuid = random_uuid();
    fx.store
        .create_verification_request("c@example.com", URL, &uuid, "secret", &p)
        .expect("a UUID is 128 bits");
    let hashed = VerificationToken {
        identifier: "c@example.com".to_owned(),
        token: hash_verification_token(code, "secret"),
        expires: fx.now() + Duration::minutes(10),
    };
    fx.store
        .create_verification_token(&hashed)
        .expect("a 64-hex hash is accepted whatever it hashes");
    assert_eq!(report(fx).verification_requests, 5);

    // Lookups by a short token find nothing, with no error and no write.
    assert_eq!(
        fx.store
            .get_verification_request("a@example.com", code, "secret", &p)
            .expect("get_verification_request"),
        None
    );
    assert_eq!(
        fx.store
            .use_verification_request("a@example.com", code, "secret")
            .expect("use_verification_request"),
        None
    );
    assert_eq!(
        fx.store
            .use_verification_token("a@example.com", code)
            .expect("use_verification_token"),
        None
    );
    fx.store
        .delete_verification_request("a@example.com", code, "secret", &p)
        .expect("delete_verification_request");
    assert_eq!(report(fx).verification_requests, 5);

    // Caller-chosen session tokens: 120 bits.
    let u = new_user(fx, None);
    let new = |token: String| NewSession {
        user_id: u.id,
        session_token: token,
        expires: fx.now() + Duration::days(1),
    };
    let smin = limits::MIN_SESSION_TOKEN_BITS;
    for short in ["abc".to_owned(), "9".repeat(20), "e".repeat(29)] {
        let err = fx
            .store
            .create_session_with(&new(short.clone()))
            .expect_err("a guessable session token is refused");
        assert!(is_low_entropy_err(&err, "session_token", smin), "{err:?}");
        assert!(!err.to_string().contains(&short), "{err}");
    }
    for ok in [
        random_uuid(),
        "e".repeat(30),
        crate::token::random_token().expect("random"),
    ] {
        let s = fx
            .store
            .create_session_with(&new(ok.clone()))
            .unwrap_or_else(|e| panic!("{ok}: {e:?}"));
        assert_eq!(
            fx.store.get_session(&ok).expect("get_session"),
            Some(s),
            "{ok}"
        );
    }
    assert_eq!(report(fx).sessions, 3);
}

/// A store with short codes allowed: a link for `identifier` under `code` (v3, secret
/// `secret`), checked to be stored.
fn mail_code<S: Backend>(fx: &Fixture<S>, identifier: &str, code: &str) {
    let (p, _outbox) = recording_provider();
    fx.store
        .create_verification_request(identifier, URL, code, "secret", &p)
        .unwrap_or_else(|e| panic!("create_verification_request({code}): {e:?}"));
}

/// An Auth.js-style link for `identifier` under the token string `code`, as given.
fn store_code<S: Backend>(fx: &Fixture<S>, identifier: &str, code: &str) {
    fx.store
        .create_verification_token(&VerificationToken {
            identifier: identifier.to_owned(),
            token: code.to_owned(),
            expires: fx.now() + Duration::minutes(10),
        })
        .unwrap_or_else(|e| panic!("create_verification_token({code}): {e:?}"));
}

/// One failed guess through `use_verification_token`; it must find nothing.
fn guess<S: Backend>(fx: &Fixture<S>, identifier: &str, code: &str) {
    assert_eq!(
        fx.store
            .use_verification_token(identifier, code)
            .expect("use_verification_token"),
        None,
        "{code} is a wrong guess"
    );
}

/// Short codes are accepted (at least one character, at most `MAX_TOKEN_LEN` bytes) and work.
pub(super) fn short_codes_accepted<S: Backend>(fx: &Fixture<S>) {
    let (p, outbox) = recording_provider();
    fx.store
        .create_verification_request("a@example.com", URL, "493817", "secret", &p)
        .expect("a six-digit code");
    assert_eq!(sent(&outbox)[0].token, "493817");
    store_code(fx, "b@example.com", "7");
    let got = fx
        .store
        .use_verification_request("A@example.com", "493817", "secret")
        .expect("use_verification_request");
    assert!(got.is_some(), "the code works");
    assert!(
        fx.store
            .use_verification_token("b@example.com", "7")
            .expect("use_verification_token")
            .is_some(),
        "a one-character token works"
    );
    let err = fx
        .store
        .create_verification_request("a@example.com", URL, "", "secret", &p)
        .expect_err("an empty token");
    assert!(is_empty_err(&err, "token"), "{err:?}");
    let long = "1".repeat(limits::MAX_TOKEN_LEN + 1);
    let err = fx
        .store
        .create_verification_token(&VerificationToken {
            identifier: "a@example.com".to_owned(),
            token: long,
            expires: fx.now() + Duration::minutes(10),
        })
        .expect_err("an oversized token");
    assert!(
        is_too_long_err(
            &err,
            "token",
            limits::MAX_TOKEN_LEN + 1,
            limits::MAX_TOKEN_LEN
        ),
        "{err:?}"
    );
    // Session tokens keep their floor.
    let u = new_user(fx, None);
    let err = fx
        .store
        .create_session_with(&NewSession {
            user_id: u.id,
            session_token: "123456".to_owned(),
            expires: fx.now() + Duration::days(1),
        })
        .expect_err("short session tokens stay refused");
    assert!(
        is_low_entropy_err(&err, "session_token", limits::MIN_SESSION_TOKEN_BITS),
        "{err:?}"
    );
    assert_eq!(report(fx).verification_requests, 0);
}

/// `SHORT_CODE_ATTEMPTS` wrong guesses for an identifier (spelled any way that normalizes
/// alike, through any lookup) delete every outstanding link of it: the right code then fails.
/// Other identifiers' links stay.
pub(super) fn short_codes_wrong_guesses_burn_links<S: Backend>(fx: &Fixture<S>) {
    let n = super::SHORT_CODE_ATTEMPTS;
    mail_code(fx, "ada@example.com", "111111");
    store_code(fx, "Ada@Example.com", "222222");
    mail_code(fx, "bob@example.com", "333333");
    let (p, _outbox) = recording_provider();
    // n - 1 misses through three different lookups and spellings.
    for i in 0..n - 1 {
        match i % 3 {
            0 => guess(fx, " ADA@example.com", "000000"),
            1 => assert_eq!(
                fx.store
                    .get_verification_request("ada@EXAMPLE.com", "000001", "secret", &p)
                    .expect("get_verification_request"),
                None
            ),
            _ => assert_eq!(
                fx.store
                    .use_verification_request("ada@example.com", "000002", "secret")
                    .expect("use_verification_request"),
                None
            ),
        }
    }
    assert_eq!(
        report(fx).verification_requests,
        3,
        "under the limit nothing is deleted"
    );
    // A miss for another identifier does not count for this one.
    guess(fx, "bob@example.com", "999999");
    assert_eq!(report(fx).verification_requests, 3);
    // The limit: both of Ada's links go, Bob's stays.
    guess(fx, "ada@example.com", "000003");
    assert_eq!(report(fx).verification_requests, 1, "Ada's links are burnt");
    assert_eq!(
        fx.store
            .use_verification_request("ada@example.com", "111111", "secret")
            .expect("use_verification_request"),
        None,
        "the right code fails after the limit"
    );
    guess(fx, "ada@example.com", "222222");
    assert!(
        fx.store
            .use_verification_request("bob@example.com", "333333", "secret")
            .expect("use_verification_request")
            .is_some(),
        "Bob's link still works"
    );
    // A new code mailed afterwards works.
    mail_code(fx, "ada@example.com", "444444");
    assert!(
        fx.store
            .use_verification_request("ada@example.com", "444444", "secret")
            .expect("use_verification_request")
            .is_some(),
        "a fresh code works"
    );
}

/// A successful use (or lookup) forgets the failures.
pub(super) fn short_codes_success_resets_failures<S: Backend>(fx: &Fixture<S>) {
    let n = super::SHORT_CODE_ATTEMPTS;
    let (p, _outbox) = recording_provider();
    mail_code(fx, "ada@example.com", "111111");
    for _ in 0..n - 1 {
        guess(fx, "ada@example.com", "000000");
    }
    assert!(
        fx.store
            .use_verification_request("ada@example.com", "111111", "secret")
            .expect("use_verification_request")
            .is_some(),
        "the right code within the limit"
    );
    mail_code(fx, "ada@example.com", "222222");
    for _ in 0..n - 1 {
        guess(fx, "ada@example.com", "000000");
    }
    assert_eq!(
        report(fx).verification_requests,
        1,
        "the count started again after the success"
    );
    // A successful get resets too.
    assert!(
        fx.store
            .get_verification_request("ada@example.com", "222222", "secret", &p)
            .expect("get_verification_request")
            .is_some()
    );
    for _ in 0..n - 1 {
        guess(fx, "ada@example.com", "000000");
    }
    assert_eq!(report(fx).verification_requests, 1);
    guess(fx, "ada@example.com", "000000");
    assert_eq!(report(fx).verification_requests, 0, "the limit burns it");
}

/// Misses for an identifier without any link are not counted: there is nothing to guess.
pub(super) fn short_codes_uncounted_without_a_link<S: Backend>(fx: &Fixture<S>) {
    let n = super::SHORT_CODE_ATTEMPTS;
    for _ in 0..n + 2 {
        guess(fx, "ada@example.com", "000000");
    }
    mail_code(fx, "ada@example.com", "111111");
    for _ in 0..n - 1 {
        guess(fx, "ada@example.com", "000000");
    }
    assert_eq!(
        report(fx).verification_requests,
        1,
        "only misses while a link existed count"
    );
}

/// Failures count within `VERIFICATION_ATTEMPT_WINDOW_SECS` of the first; after it the count
/// starts again, and purge removes the stale counter.
pub(super) fn short_codes_count_in_a_window<S: Backend>(fx: &Fixture<S>) {
    let n = super::SHORT_CODE_ATTEMPTS;
    let window = Duration::seconds(limits::VERIFICATION_ATTEMPT_WINDOW_SECS);
    let (p, _outbox) = recording_provider();
    let long_lived = p.clone().max_age(Duration::days(3));
    fx.store
        .create_verification_request("ada@example.com", URL, "111111", "secret", &long_lived)
        .expect("create_verification_request");
    for _ in 0..n - 1 {
        guess(fx, "ada@example.com", "000000");
    }
    fx.advance(window - MICRO);
    guess(fx, "ada@example.com", "000000");
    assert_eq!(
        report(fx).verification_requests,
        0,
        "within the window the failures add up"
    );

    fx.store
        .create_verification_request("bob@example.com", URL, "222222", "secret", &long_lived)
        .expect("create_verification_request");
    for _ in 0..n - 1 {
        guess(fx, "bob@example.com", "000000");
    }
    fx.advance(window);
    fx.store.purge_expired().expect("purge_expired");
    for _ in 0..n - 1 {
        guess(fx, "bob@example.com", "000000");
    }
    assert_eq!(
        report(fx).verification_requests,
        1,
        "after the window the count starts again"
    );
    guess(fx, "bob@example.com", "000000");
    assert_eq!(report(fx).verification_requests, 0);
}

/// The count is written in the lookup's transaction: a transaction that fails keeps none of
/// its misses.
pub(super) fn short_codes_counting_is_transactional<S: Backend>(fx: &Fixture<S>) {
    let n = super::SHORT_CODE_ATTEMPTS;
    mail_code(fx, "ada@example.com", "111111");
    for _ in 0..3 {
        let err = fx
            .store
            .write(|tx| {
                for _ in 0..n - 1 {
                    assert_eq!(
                        tx.use_verification_token("ada@example.com", "000000")?,
                        None
                    );
                }
                Err::<(), _>(Error::InvalidConfig("rolled back on purpose"))
            })
            .expect_err("the closure fails");
        assert!(matches!(err, Error::InvalidConfig(_)), "{err:?}");
    }
    assert_eq!(
        report(fx).verification_requests,
        1,
        "rolled-back misses do not count"
    );
    fx.store
        .write(|tx| {
            for _ in 0..n {
                assert_eq!(
                    tx.use_verification_token("ada@example.com", "000000")?,
                    None
                );
            }
            Ok(())
        })
        .expect("the transaction commits");
    assert_eq!(
        report(fx).verification_requests,
        0,
        "committed misses burn the link, within one transaction too"
    );
}
