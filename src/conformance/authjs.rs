//! Auth.js's adapter test suite (`runBasicTests` of `@auth/utils`), case by case, restated for
//! authdb's API. Where Auth.js reads the database behind the adapter's back, these cases read it
//! through the store's own lookups; where its fixtures are random, ours are random too.

use chrono::Duration;
use serde_json::json;

use super::{
    Backend, Fixture, MICRO, assert_account_is, assert_authenticator_is, full_account, new_user,
    oauth, passkey, random_uuid, register_passkey, report, session_with, stored_user,
    unknown_user_id,
};
use crate::error::Error;
use crate::model::{NewAccount, NewSession, NewUser, UserPatch, VerificationToken};
use crate::token::hash_verification_token;

/// A full profile, as Auth.js's fixture user (with its custom-model columns in `extra`).
fn full_profile<S>(fx: &Fixture<S>) -> NewUser {
    NewUser {
        name: Some("Ada Lovelace".to_owned()),
        email: Some("ada@example.com".to_owned()),
        image: Some("https://example.com/ada.png".to_owned()),
        email_verified: Some(fx.now() - Duration::minutes(3)),
        extra: super::obj(json!({"role": "admin", "phone": "00000000000"})),
    }
}

/// `createUser`: the store keeps every field of the profile and returns what it stored.
pub(super) fn create_user<S: Backend>(fx: &Fixture<S>) {
    let profile = full_profile(fx);
    let created = fx.store.create_user(&profile).expect("create_user");
    assert_eq!(created.name, profile.name, "name");
    assert_eq!(created.email, profile.email, "email");
    assert_eq!(created.image, profile.image, "image");
    assert_eq!(
        created.email_verified, profile.email_verified,
        "email_verified"
    );
    assert_eq!(created.extra, profile.extra, "extra");
    assert_eq!(created.created_at, fx.now(), "created_at is now");
    assert_eq!(created.updated_at, fx.now(), "updated_at is now");
    assert_eq!(
        stored_user(fx, &created.id),
        created,
        "get_user returns exactly what create_user returned"
    );
    let other = fx
        .store
        .create_user(&NewUser::default())
        .expect("create_user with an empty profile");
    assert_ne!(other.id, created.id, "the store makes a new id per user");
}

/// `getUser`: an unknown id is none; a known one is the stored user.
pub(super) fn get_user<S: Backend>(fx: &Fixture<S>) {
    assert_eq!(
        fx.store.get_user(&unknown_user_id()).expect("get_user"),
        None,
        "an unknown id finds nothing"
    );
    let u = fx
        .store
        .create_user(&full_profile(fx))
        .expect("create_user");
    assert_eq!(fx.store.get_user(&u.id).expect("get_user"), Some(u));
}

/// `getUserByEmail`: an unknown address is none; the user's address finds the user.
pub(super) fn get_user_by_email<S: Backend>(fx: &Fixture<S>) {
    let u = fx
        .store
        .create_user(&full_profile(fx))
        .expect("create_user");
    for missing in ["non-existent-email", "nobody@example.com"] {
        assert_eq!(
            fx.store
                .get_user_by_email(missing)
                .expect("get_user_by_email"),
            None,
            "{missing:?} finds nothing"
        );
    }
    assert_eq!(
        fx.store
            .get_user_by_email("ada@example.com")
            .expect("get_user_by_email"),
        Some(u)
    );
}

/// `createSession`: a session with the caller's token (a random UUID) and expiry.
pub(super) fn create_session<S: Backend>(fx: &Fixture<S>) {
    let user = new_user(fx, Some("ada@example.com"));
    let new = NewSession {
        user_id: user.id,
        session_token: random_uuid(),
        expires: fx.now() + Duration::weeks(1),
    };
    let s = fx
        .store
        .create_session_with(&new)
        .expect("create_session_with");
    assert_eq!(s.user_id, user.id, "user_id");
    assert_eq!(s.session_token, new.session_token, "the caller's token");
    assert_eq!(s.expires, new.expires, "the caller's expiry");
    assert_eq!(s.created_at, fx.now(), "created_at is now");
    assert_eq!(s.updated_at, fx.now(), "updated_at is now");
    assert!(
        super::is_lower_hex_64(&s.access_token),
        "the session's access token is 64 lowercase hex characters"
    );
    assert_ne!(s.access_token, s.session_token);
    assert_eq!(
        fx.store
            .get_session(&new.session_token)
            .expect("get_session"),
        Some(s),
        "get_session returns exactly what create_session_with returned"
    );
}

/// `getSessionAndUser`: an unknown token is none; a live one gives the session and its user.
pub(super) fn get_session_and_user<S: Backend>(fx: &Fixture<S>) {
    let user = fx
        .store
        .create_user(&full_profile(fx))
        .expect("create_user");
    let s = session_with(fx, &user.id, fx.now() + Duration::weeks(1));
    assert_eq!(
        fx.store
            .get_session_and_user("invalid-token")
            .expect("get_session_and_user"),
        None
    );
    assert_eq!(
        fx.store
            .get_session_and_user(&s.session_token)
            .expect("get_session_and_user"),
        Some((s, user))
    );
}

/// `updateUser`: a partial update changes only what it names; absent fields stay, fields given
/// as `Some(None)` are cleared, `extra` merges.
pub(super) fn update_user<S: Backend>(fx: &Fixture<S>) {
    let u = fx
        .store
        .create_user(&full_profile(fx))
        .expect("create_user");
    fx.advance(Duration::minutes(1));

    // Only the name (Auth.js's test).
    let renamed = fx
        .store
        .patch_user(
            &u.id,
            &UserPatch {
                name: Some(Some("Updated Name".to_owned())),
                ..UserPatch::default()
            },
        )
        .expect("patch_user name");
    assert_eq!(renamed.name.as_deref(), Some("Updated Name"));
    assert_eq!(renamed.email, u.email, "absent email is kept");
    assert_eq!(renamed.image, u.image, "absent image is kept");
    assert_eq!(
        renamed.email_verified, u.email_verified,
        "absent email_verified is kept"
    );
    assert_eq!(renamed.extra, u.extra, "absent extra is kept");
    assert_eq!(renamed.id, u.id);
    assert_eq!(renamed.created_at, u.created_at, "created_at is kept");
    assert_eq!(renamed.updated_at, fx.now(), "updated_at is now");
    assert_eq!(
        stored_user(fx, &u.id),
        renamed,
        "the stored user is the returned one"
    );

    // Clear the image, set email_verified, merge extra; the name is absent.
    fx.advance(Duration::minutes(1));
    let verified = fx.now();
    let patched = fx
        .store
        .patch_user(
            &u.id,
            &UserPatch {
                image: Some(None),
                email_verified: Some(Some(verified)),
                extra: Some(super::obj(json!({"phone": null, "team": "blue"}))),
                ..UserPatch::default()
            },
        )
        .expect("patch_user image/email_verified/extra");
    assert_eq!(
        patched.name.as_deref(),
        Some("Updated Name"),
        "absent name is kept"
    );
    assert_eq!(patched.image, None, "Some(None) clears the image");
    assert_eq!(patched.email_verified, Some(verified));
    assert_eq!(
        patched.extra,
        super::obj(json!({"role": "admin", "team": "blue"})),
        "extra merges: null removes a key, a value sets one, others are kept"
    );
    assert_eq!(patched.email, u.email);
    assert_eq!(patched.updated_at, fx.now());
    assert_eq!(stored_user(fx, &u.id), patched);

    // Clearing email_verified and the name.
    let cleared = fx
        .store
        .patch_user(
            &u.id,
            &UserPatch {
                name: Some(None),
                email_verified: Some(None),
                ..UserPatch::default()
            },
        )
        .expect("patch_user clear");
    assert_eq!(cleared.name, None);
    assert_eq!(cleared.email_verified, None);
    assert_eq!(cleared.extra, patched.extra);

    // An empty patch changes no field.
    let same = fx
        .store
        .patch_user(&u.id, &UserPatch::default())
        .expect("empty patch_user");
    assert_eq!(
        (
            &same.name,
            &same.email,
            &same.image,
            &same.email_verified,
            &same.extra
        ),
        (
            &cleared.name,
            &cleared.email,
            &cleared.image,
            &cleared.email_verified,
            &cleared.extra
        )
    );
    assert_eq!(stored_user(fx, &u.id), same);
}

/// `updateSession`: the expiry the caller gives is written exactly.
pub(super) fn update_session<S: Backend>(fx: &Fixture<S>) {
    let user = new_user(fx, Some("ada@example.com"));
    let s = session_with(fx, &user.id, fx.now() + Duration::weeks(1));
    let new_expiry = fx.now() + Duration::days(30);
    assert_ne!(s.expires, new_expiry);
    fx.advance(Duration::minutes(1));
    let out = fx
        .store
        .set_session_expiry(&s.session_token, new_expiry)
        .expect("set_session_expiry")
        .expect("a live session is updated");
    assert_eq!(out.expires, new_expiry, "exactly the given expiry");
    assert_eq!(out.id, s.id);
    assert_eq!(out.user_id, s.user_id);
    assert_eq!(out.session_token, s.session_token);
    assert_eq!(out.created_at, s.created_at);
    assert_eq!(out.updated_at, fx.now(), "updated_at is now");
    assert_eq!(
        fx.store.get_session(&s.session_token).expect("get_session"),
        Some(out),
        "the stored session is the returned one"
    );
    // A shorter expiry is written just as well: the caller decides.
    let shorter = fx.now() + Duration::hours(1);
    let out = fx
        .store
        .set_session_expiry(&s.session_token, shorter)
        .expect("set_session_expiry")
        .expect("a live session is updated");
    assert_eq!(out.expires, shorter);
    assert_eq!(
        fx.store
            .set_session_expiry("invalid-token", new_expiry)
            .expect("set_session_expiry"),
        None,
        "an unknown token gives none"
    );
}

/// `linkAccount`: all eleven fields of an account round-trip exactly.
pub(super) fn link_account<S: Backend>(fx: &Fixture<S>) {
    let user = new_user(fx, Some("ada@example.com"));
    let want = full_account(fx.now());
    let linked = fx
        .store
        .link_account(&user.id, &want)
        .expect("link_account");
    assert_account_is(&linked, &want, &user.id, "link_account's result");
    assert_eq!(linked.created_at, fx.now(), "created_at is now");
    assert_eq!(linked.updated_at, fx.now(), "updated_at is now");
    let stored = fx
        .store
        .get_account(&want.provider_id, &want.provider_account_id)
        .expect("get_account")
        .expect("the linked account is found");
    assert_account_is(&stored, &want, &user.id, "get_account");
    assert_eq!(
        stored, linked,
        "get_account returns exactly what link_account returned"
    );
}

/// `getUserByAccount`: an unknown pair is none; a linked one gives its user.
pub(super) fn get_user_by_account<S: Backend>(fx: &Fixture<S>) {
    let user = fx
        .store
        .create_user(&full_profile(fx))
        .expect("create_user");
    let account = full_account(fx.now());
    fx.store
        .link_account(&user.id, &account)
        .expect("link_account");
    assert_eq!(
        fx.store
            .get_user_by_account("invalid-provider", "invalid-provider-account-id")
            .expect("get_user_by_account"),
        None
    );
    assert_eq!(
        fx.store
            .get_user_by_account(&account.provider_id, &account.provider_account_id)
            .expect("get_user_by_account"),
        Some(user.clone())
    );
    assert_eq!(
        fx.store
            .get_user_by_provider_account_id(&account.provider_id, &account.provider_account_id)
            .expect("get_user_by_provider_account_id"),
        Some(user),
        "v3's name for the same lookup agrees"
    );
}

/// `deleteSession`: the session is removed and returned (live or expired); then it is gone.
pub(super) fn delete_session<S: Backend>(fx: &Fixture<S>) {
    let user = new_user(fx, Some("ada@example.com"));
    let s = session_with(fx, &user.id, fx.now() + Duration::weeks(1));
    let other = session_with(fx, &user.id, fx.now() + Duration::weeks(1));
    assert_eq!(
        fx.store
            .delete_session_returning(&s.session_token)
            .expect("delete_session_returning"),
        Some(s.clone()),
        "the deleted session is returned"
    );
    assert_eq!(
        fx.store.get_session(&s.session_token).expect("get_session"),
        None
    );
    assert_eq!(
        fx.store
            .get_session_and_user(&s.session_token)
            .expect("get_session_and_user"),
        None
    );
    assert_eq!(
        fx.store
            .delete_session_returning(&s.session_token)
            .expect("delete_session_returning"),
        None,
        "a second delete finds nothing"
    );
    assert_eq!(
        fx.store
            .get_session(&other.session_token)
            .expect("get_session"),
        Some(other),
        "another session of the user is untouched"
    );

    // An expired session is still removed and returned.
    let short = session_with(fx, &user.id, fx.now() + Duration::hours(1));
    fx.advance(Duration::hours(2));
    let gone = fx
        .store
        .delete_session_returning(&short.session_token)
        .expect("delete_session_returning")
        .expect("an expired session is returned too");
    assert_eq!(gone.id, short.id);
    assert_eq!(gone.user_id, short.user_id);
    assert_eq!(gone.expires, short.expires);
    fx.set_time(super::start_time());
    assert_eq!(
        fx.store
            .get_session(&short.session_token)
            .expect("get_session"),
        None,
        "it was deleted, so it does not come back when the clock goes back"
    );
}

/// `createVerificationToken`: the token is stored as given and returned.
pub(super) fn create_verification_token<S: Backend>(fx: &Fixture<S>) {
    let token = VerificationToken {
        identifier: "info@example.com".to_owned(),
        token: hash_verification_token(&random_uuid(), "anything"),
        expires: fx.now() + Duration::minutes(15),
    };
    let created = fx
        .store
        .create_verification_token(&token)
        .expect("create_verification_token");
    assert_eq!(created, token, "the stored token is returned as given");
    assert_eq!(report(fx).verification_requests, 1, "one link is stored");
    assert_eq!(
        fx.store
            .use_verification_token(&token.identifier, &token.token)
            .expect("use_verification_token"),
        Some(token),
        "what was stored is what comes back"
    );
}

/// `useVerificationToken`: single use, matched by identifier and hash, expired gives none.
pub(super) fn use_verification_token<S: Backend>(fx: &Fixture<S>) {
    let token = VerificationToken {
        identifier: "info@example.com".to_owned(),
        token: hash_verification_token(&random_uuid(), "anything"),
        expires: fx.now() + Duration::minutes(15),
    };
    fx.store
        .create_verification_token(&token)
        .expect("create_verification_token");

    // The right hash with another identifier neither matches nor consumes.
    assert_eq!(
        fx.store
            .use_verification_token("attacker@example.com", &token.token)
            .expect("use_verification_token"),
        None,
        "a wrong identifier gives none"
    );
    assert_eq!(
        fx.store
            .use_verification_token(&token.identifier, &hash_verification_token("x", "anything"))
            .expect("use_verification_token"),
        None,
        "a wrong hash gives none"
    );
    assert_eq!(
        fx.store
            .use_verification_token(&token.identifier, &token.token)
            .expect("use_verification_token"),
        Some(token.clone()),
        "the first use returns the token"
    );
    assert_eq!(
        fx.store
            .use_verification_token(&token.identifier, &token.token)
            .expect("use_verification_token"),
        None,
        "the second use gives none"
    );

    // Valid up to and including its expiry.
    let edge = VerificationToken {
        identifier: "info@example.com".to_owned(),
        token: hash_verification_token(&random_uuid(), "anything"),
        expires: fx.now() + Duration::minutes(15),
    };
    fx.store
        .create_verification_token(&edge)
        .expect("create_verification_token");
    fx.set_time(edge.expires);
    assert_eq!(
        fx.store
            .use_verification_token(&edge.identifier, &edge.token)
            .expect("use_verification_token"),
        Some(edge.clone()),
        "a token works at exactly its expiry"
    );

    // Expired: none, and it is deleted.
    let expired = VerificationToken {
        identifier: "info@example.com".to_owned(),
        token: hash_verification_token(&random_uuid(), "anything"),
        expires: fx.now() + Duration::minutes(15),
    };
    fx.store
        .create_verification_token(&expired)
        .expect("create_verification_token");
    fx.set_time(expired.expires + MICRO);
    assert_eq!(
        fx.store
            .use_verification_token(&expired.identifier, &expired.token)
            .expect("use_verification_token"),
        None,
        "an expired token gives none"
    );
    fx.set_time(expired.expires - Duration::minutes(1));
    assert_eq!(
        fx.store
            .use_verification_token(&expired.identifier, &expired.token)
            .expect("use_verification_token"),
        None,
        "the expired token was deleted by the failed use"
    );
}

/// `unlinkAccount`: the account is removed, whoever owns it, and returned.
pub(super) fn unlink_account<S: Backend>(fx: &Fixture<S>) {
    let user = new_user(fx, Some("ada@example.com"));
    let want = full_account(fx.now());
    let linked = fx
        .store
        .link_account(&user.id, &want)
        .expect("link_account");
    let keep = fx
        .store
        .link_account(&user.id, &oauth("google", "g-1", None, None))
        .expect("link_account");
    assert_eq!(
        fx.store
            .get_account(&want.provider_id, &want.provider_account_id)
            .expect("get_account")
            .as_ref(),
        Some(&linked)
    );
    let removed = fx
        .store
        .unlink_account_by_provider(&want.provider_id, &want.provider_account_id)
        .expect("unlink_account_by_provider")
        .expect("the linked account is returned");
    assert_eq!(removed, linked, "the removed account, secrets included");
    assert_eq!(
        fx.store
            .get_account(&want.provider_id, &want.provider_account_id)
            .expect("get_account"),
        None
    );
    assert_eq!(
        fx.store
            .get_user_by_account(&want.provider_id, &want.provider_account_id)
            .expect("get_user_by_account"),
        None
    );
    assert_eq!(
        fx.store.list_accounts(&user.id).expect("list_accounts"),
        vec![keep],
        "the user's other account stays"
    );
    assert_eq!(
        fx.store
            .unlink_account_by_provider(&want.provider_id, &want.provider_account_id)
            .expect("unlink_account_by_provider"),
        None,
        "a second unlink finds nothing"
    );
    assert!(
        fx.store.get_user(&user.id).expect("get_user").is_some(),
        "the user stays"
    );
}

/// `deleteUser`: the user goes, with every account, session, authenticator and password.
pub(super) fn delete_user<S: Backend>(fx: &Fixture<S>) {
    let victim = fx
        .store
        .create_user(&full_profile(fx))
        .expect("create_user");
    let keeper = new_user(fx, Some("keeper@example.com"));
    let v_session = session_with(fx, &victim.id, fx.now() + Duration::weeks(1));
    let v_v3_session = fx.store.create_session(&victim.id).expect("create_session");
    let v_account = full_account(fx.now());
    fx.store
        .link_account(&victim.id, &v_account)
        .expect("link_account");
    let v_passkey = register_passkey(fx, &victim.id, &random_uuid(), 1);
    fx.store
        .set_password(&victim.id, "victim password")
        .expect("set_password");
    let k_session = session_with(fx, &keeper.id, fx.now() + Duration::weeks(1));
    let k_account = fx
        .store
        .link_account(&keeper.id, &oauth("github", "keeper", Some("r"), Some("a")))
        .expect("link_account");
    let k_passkey = register_passkey(fx, &keeper.id, &random_uuid(), 1);

    fx.store.delete_user(&victim.id).expect("delete_user");

    assert_eq!(fx.store.get_user(&victim.id).expect("get_user"), None);
    assert_eq!(
        fx.store
            .get_user_by_email("ada@example.com")
            .expect("get_user_by_email"),
        None
    );
    for token in [&v_session.session_token, &v_v3_session.session_token] {
        assert_eq!(
            fx.store.get_session(token).expect("get_session"),
            None,
            "sessions go"
        );
    }
    assert_eq!(
        fx.store
            .get_account(&v_account.provider_id, &v_account.provider_account_id)
            .expect("get_account"),
        None,
        "accounts go"
    );
    assert_eq!(
        fx.store
            .get_account("webauthn", &v_passkey.credential_id)
            .expect("get_account"),
        None,
        "the webauthn account goes"
    );
    assert_eq!(
        fx.store
            .get_authenticator(&v_passkey.credential_id)
            .expect("get_authenticator"),
        None,
        "authenticators go"
    );
    assert!(
        fx.store
            .list_sessions(&victim.id)
            .expect("list_sessions")
            .is_empty()
    );
    assert!(
        fx.store
            .list_accounts(&victim.id)
            .expect("list_accounts")
            .is_empty()
    );
    assert!(
        fx.store
            .list_authenticators(&victim.id)
            .expect("list_authenticators")
            .is_empty()
    );
    let creds = crate::model::Credentials {
        email: "ada@example.com".to_owned(),
        password: "victim password".to_owned(),
    };
    assert_eq!(
        fx.store
            .get_user_by_credentials(&creds)
            .expect("get_user_by_credentials"),
        None,
        "the password goes"
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
        (1, 2, 1, 0, 1),
        "only the keeper's records remain"
    );

    // The other user keeps everything.
    assert_eq!(
        fx.store
            .get_session(&k_session.session_token)
            .expect("get_session"),
        Some(k_session)
    );
    assert_eq!(
        fx.store
            .get_account("github", "keeper")
            .expect("get_account"),
        Some(k_account)
    );
    assert_eq!(
        fx.store
            .get_authenticator(&k_passkey.credential_id)
            .expect("get_authenticator"),
        Some(k_passkey)
    );
    assert_eq!(stored_user(fx, &keeper.id), keeper);
}

/// `getAccount`: found only by the exact (provider, provider account id) pair.
pub(super) fn get_account<S: Backend>(fx: &Fixture<S>) {
    let user = new_user(fx, Some("get-account@example.com"));
    let provider_account_id = random_uuid();
    let want = NewAccount {
        provider_type: "oauth".to_owned(),
        provider_id: "auth0".to_owned(),
        provider_account_id: provider_account_id.clone(),
        ..NewAccount::default()
    };
    let linked = fx
        .store
        .link_account(&user.id, &want)
        .expect("link_account");
    for (provider, id) in [
        ("invalid-provider", "invalid-provider-account-id"),
        ("invalid-provider", provider_account_id.as_str()),
        ("auth0", "invalid-provider-account-id"),
        // Auth.js passes the two arguments the other way round; authdb does not.
        (provider_account_id.as_str(), "auth0"),
    ] {
        assert_eq!(
            fx.store.get_account(provider, id).expect("get_account"),
            None,
            "({provider:?}, {id:?}) finds nothing"
        );
    }
    let found = fx
        .store
        .get_account("auth0", &provider_account_id)
        .expect("get_account")
        .expect("the linked account is found");
    assert_account_is(&found, &want, &user.id, "get_account");
    assert_eq!(found, linked);
}

/// `createAuthenticator`: every field is stored; a credential id is registered once.
pub(super) fn create_authenticator<S: Backend>(fx: &Fixture<S>) {
    let user = new_user(fx, Some("create-authenticator@example.com"));
    let credential_id = random_uuid();
    fx.store
        .link_account(&user.id, &super::webauthn_account(&credential_id))
        .expect("link the webauthn account");
    let want = passkey(&user.id, &credential_id, 42);
    let created = fx
        .store
        .create_authenticator(&want)
        .expect("create_authenticator");
    assert_authenticator_is(&created, &want, "create_authenticator's result");
    assert_eq!(created.created_at, fx.now(), "created_at is now");
    assert_eq!(created.updated_at, fx.now(), "updated_at is now");
    assert_eq!(
        fx.store
            .get_authenticator(&credential_id)
            .expect("get_authenticator")
            .as_ref(),
        Some(&created),
        "get_authenticator returns exactly what create_authenticator returned"
    );

    // The same credential id again, for this user or another: taken, nothing written.
    let other = new_user(fx, Some("other@example.com"));
    fx.advance(Duration::seconds(1));
    for dup in [
        passkey(&user.id, &credential_id, 7),
        passkey(&other.id, &credential_id, 7),
    ] {
        let err = fx
            .store
            .create_authenticator(&dup)
            .expect_err("a registered credential id is refused");
        assert!(matches!(err, Error::AuthenticatorTaken), "{err:?}");
        assert!(err.is_conflict(), "AuthenticatorTaken is a conflict");
    }
    assert_eq!(
        fx.store
            .get_authenticator(&credential_id)
            .expect("get_authenticator"),
        Some(created.clone()),
        "the registered authenticator is unchanged"
    );
    assert_eq!(
        fx.store
            .list_authenticators(&user.id)
            .expect("list_authenticators"),
        vec![created]
    );
    assert!(
        fx.store
            .list_authenticators(&other.id)
            .expect("list_authenticators")
            .is_empty()
    );

    // A passkey without transports.
    let bare = crate::model::NewAuthenticator {
        transports: None,
        credential_backed_up: false,
        credential_device_type: "singleDevice".to_owned(),
        ..passkey(&other.id, &random_uuid(), 0)
    };
    let stored = fx
        .store
        .create_authenticator(&bare)
        .expect("create_authenticator without transports");
    assert_authenticator_is(&stored, &bare, "create_authenticator without transports");
    assert_eq!(
        fx.store
            .get_authenticator(&bare.credential_id)
            .expect("get_authenticator"),
        Some(stored)
    );
}

/// `getAuthenticator`: an unknown credential id is none; a registered one is found.
pub(super) fn get_authenticator<S: Backend>(fx: &Fixture<S>) {
    let user = new_user(fx, Some("get-authenticator@example.com"));
    let credential_id = random_uuid();
    let created = register_passkey(fx, &user.id, &credential_id, 9);
    assert_eq!(
        fx.store
            .get_authenticator("invalid-credential-id")
            .expect("get_authenticator"),
        None
    );
    assert_eq!(
        fx.store
            .get_authenticator(&credential_id)
            .expect("get_authenticator"),
        Some(created)
    );
}

/// `listAuthenticatorsByUserId`: each user's authenticators, oldest first; `[]` for others.
pub(super) fn list_authenticators_by_user_id<S: Backend>(fx: &Fixture<S>) {
    let user1 = new_user(fx, Some("list-authenticators-1@example.com"));
    let user2 = new_user(fx, Some("list-authenticators-2@example.com"));
    let a1 = register_passkey(fx, &user1.id, &random_uuid(), 3);
    fx.advance(Duration::seconds(1));
    let a2 = register_passkey(fx, &user1.id, &random_uuid(), 0);
    fx.advance(Duration::seconds(1));
    let a3 = register_passkey(fx, &user2.id, &random_uuid(), 11);
    assert!(
        fx.store
            .list_authenticators(&unknown_user_id())
            .expect("list_authenticators")
            .is_empty(),
        "an unknown user has none"
    );
    assert_eq!(
        fx.store
            .list_authenticators(&user1.id)
            .expect("list_authenticators"),
        vec![a1, a2],
        "user 1's two, oldest first"
    );
    assert_eq!(
        fx.store
            .list_authenticators(&user2.id)
            .expect("list_authenticators"),
        vec![a3]
    );
}

/// `updateAuthenticatorCounter`: the counter must increase (unless it stays at zero); an
/// unknown credential is an error; a refused update writes nothing.
pub(super) fn update_authenticator_counter<S: Backend>(fx: &Fixture<S>) {
    let user = new_user(fx, Some("update-counter@example.com"));
    let credential_id = random_uuid();
    let created = register_passkey(fx, &user.id, &credential_id, 10);

    let err = fx
        .store
        .update_authenticator_counter("invalid-credential-id", 5)
        .expect_err("an unknown credential id is an error");
    assert!(matches!(err, Error::AuthenticatorNotFound), "{err:?}");

    fx.advance(Duration::seconds(30));
    let updated = fx
        .store
        .update_authenticator_counter(&credential_id, 25)
        .expect("an increasing counter is stored");
    assert_eq!(updated.counter, 25);
    assert_eq!(updated.updated_at, fx.now(), "updated_at is now");
    assert_eq!(updated.created_at, created.created_at);
    assert_eq!(
        crate::model::Authenticator {
            counter: created.counter,
            updated_at: created.updated_at,
            ..updated.clone()
        },
        created,
        "only the counter and updated_at change"
    );
    assert_eq!(
        fx.store
            .get_authenticator(&credential_id)
            .expect("get_authenticator")
            .as_ref(),
        Some(&updated)
    );

    // Not increasing: refused, nothing written.
    fx.advance(Duration::seconds(30));
    for given in [25, 24, 0] {
        let err = fx
            .store
            .update_authenticator_counter(&credential_id, given)
            .expect_err("a counter that does not increase is refused");
        assert!(
            matches!(err, Error::CounterNotIncreased { stored: 25, given: g } if g == given),
            "given {given}: {err:?}"
        );
    }
    assert_eq!(
        fx.store
            .get_authenticator(&credential_id)
            .expect("get_authenticator"),
        Some(updated),
        "a refused update writes nothing"
    );

    // An authenticator that does not count (always 0) passes, and may start counting.
    let zero_id = random_uuid();
    register_passkey(fx, &user.id, &zero_id, 0);
    let z = fx
        .store
        .update_authenticator_counter(&zero_id, 0)
        .expect("0 -> 0 is accepted");
    assert_eq!(z.counter, 0);
    let z = fx
        .store
        .update_authenticator_counter(&zero_id, 1)
        .expect("0 -> 1 is accepted");
    assert_eq!(z.counter, 1);
    let err = fx
        .store
        .update_authenticator_counter(&zero_id, 0)
        .expect_err("1 -> 0 is refused");
    assert!(
        matches!(
            err,
            Error::CounterNotIncreased {
                stored: 1,
                given: 0
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        fx.store
            .get_authenticator(&zero_id)
            .expect("get_authenticator")
            .map(|a| a.counter),
        Some(1)
    );
}
