//! proptest strategies for [`Op`] and [`Case`].
//!
//! Indices are drawn from the domains' own sizes. User and session indices favour the few
//! newest (most likely alive) and otherwise range over all of `u8` (the driver takes them
//! modulo what exists; the top values mean "never existed"). Weights keep the interesting
//! outcomes (conflicts, matches, due updates, counters that do not increase) frequent: see the
//! outcome table the test prints with `--nocapture`.

use proptest::prelude::*;

use super::ops::{
    COUNTERS, Case, Change, EMAILS, EXPIRY_OFFSETS, Op, SETTINGS, STEPS, TOKEN_HASH_COUNT,
    WEB_PURGE_BATCHES, WEB_SESSION_DATA_COUNT, WEB_SESSION_ID_COUNT,
};

fn ix(n: usize) -> impl Strategy<Value = u8> + Clone {
    0..u8::try_from(n).expect("small domain")
}

/// A user or session: mostly one of the three newest.
fn recent() -> impl Strategy<Value = u8> + Clone {
    prop_oneof![3 => 0..3u8, 1 => any::<u8>()]
}

/// An email: mostly one of the colliding ASCII spellings, sometimes a compatibility form
/// (fullwidth, Kelvin sign), white space only or an invisible character.
fn email() -> impl Strategy<Value = u8> + Clone {
    prop_oneof![8 => 0..5u8, 3 => 6..9u8, 1 => Just(5u8), 1 => Just(9u8)]
}

/// A password: mostly a valid one.
fn password() -> impl Strategy<Value = u8> + Clone {
    prop_oneof![6 => Just(0u8), 2 => Just(1u8), 1 => 2..4u8]
}

/// An identifier for a verification link: mostly "a@x.io" in some spelling or "b@x.io".
/// (Verification tokens favour `TOKENS[0]` and `TOKENS[1]`, whose pairs collide.)
fn identifier() -> impl Strategy<Value = u8> + Clone {
    prop_oneof![6 => prop_oneof![0..2u8, Just(6u8)], 3 => 2..4u8, 1 => 4..EMAILS.len() as u8]
}

/// A hashed verification token: mostly one meeting a v3 link (`TOKENS[0] + SECRETS[0]`).
fn token_hash() -> impl Strategy<Value = u8> + Clone {
    prop_oneof![6 => 0..2u8, 2 => 2..4u8, 2 => 4..TOKEN_HASH_COUNT]
}

/// A v3 (token, secret) pair: mostly one of the two colliding pairs.
fn token_secret() -> impl Strategy<Value = (u8, u8)> + Clone {
    prop_oneof![
        6 => prop_oneof![Just((0u8, 0u8)), Just((1u8, 1u8))],
        2 => (0..3u8, 0..2u8),
    ]
}

/// A credential id: mostly the first one, so that counters meet stored authenticators.
fn credential() -> impl Strategy<Value = u8> + Clone {
    prop_oneof![6 => Just(0u8), 3 => 1..3u8, 1 => Just(3u8)]
}

/// A provider account: mostly the one `link_account` favours.
fn provider_account() -> impl Strategy<Value = (u8, u8)> + Clone {
    (
        prop_oneof![3 => Just(0u8), 1 => Just(1u8)],
        prop_oneof![3 => 0..2u8, 1 => Just(2u8)],
    )
}

/// A caller-chosen expiry: mostly in the future.
fn expires() -> impl Strategy<Value = u8> + Clone {
    prop_oneof![1 => 0..3u8, 4 => 3..EXPIRY_OFFSETS.len() as u8]
}

fn change(n: usize) -> impl Strategy<Value = Change> + Clone {
    prop_oneof![
        3 => Just(Change::Keep),
        1 => Just(Change::Clear),
        3 => ix(n).prop_map(Change::Set),
    ]
}

/// `update_user`'s email change, `patch_user`'s too: mostly one of the colliding spellings.
fn email_change() -> impl Strategy<Value = Change> + Clone {
    prop_oneof![
        3 => Just(Change::Keep),
        1 => Just(Change::Clear),
        3 => email().prop_map(Change::Set),
    ]
}

fn create_user() -> impl Strategy<Value = Op> {
    (
        proptest::option::weighted(0.85, email()),
        proptest::option::of(ix(3)),
        proptest::option::weighted(0.2, ix(2)),
        proptest::option::of(ix(4)),
        prop_oneof![4 => Just(0u8), 2 => 1..4u8, 1 => Just(4u8)],
    )
        .prop_map(|(email, name, image, verified, extra)| Op::CreateUser {
            email,
            name,
            image,
            verified,
            extra,
        })
}

fn link_account() -> impl Strategy<Value = Op> {
    let opt2 = || proptest::option::weighted(0.3, ix(2));
    (
        (
            recent(),
            prop_oneof![3 => Just(0u8), 1 => Just(1u8)],
            prop_oneof![3 => 0..2u8, 1 => Just(2u8)],
            prop_oneof![8 => prop_oneof![Just(0u8), Just(1u8), Just(3u8), Just(4u8)], 1 => Just(2u8), 1 => Just(5u8)],
        ),
        (
            proptest::option::of(ix(2)),
            proptest::option::of(ix(2)),
            proptest::option::of(ix(3)),
        ),
        (opt2(), opt2(), opt2(), opt2(), prop_oneof![3 => Just(0u8), 1 => 1..3u8]),
    )
        .prop_map(
            |(
                (user, provider, account, provider_type),
                (refresh, access, expires),
                (token_type, scope, id_token, session_state, extra),
            )| Op::LinkAccount {
                user,
                provider,
                account,
                provider_type,
                refresh,
                access,
                expires,
                token_type,
                scope,
                id_token,
                session_state,
                extra,
            },
        )
}

/// A web session write: an id of the small domain, mostly naming a recent user, mostly with
/// valid data.
fn web_write() -> impl Strategy<Value = (u8, Option<u8>, u8, u8)> {
    (
        ix(WEB_SESSION_ID_COUNT.into()),
        proptest::option::weighted(0.7, recent()),
        expires(),
        prop_oneof![8 => 0..WEB_SESSION_DATA_COUNT - 1, 1 => Just(WEB_SESSION_DATA_COUNT - 1)],
    )
}

fn create_authenticator() -> impl Strategy<Value = Op> {
    (
        recent(),
        credential(),
        ix(3),
        prop_oneof![8 => Just(0u8), 1 => Just(1u8)],
        ix(COUNTERS.len()),
        prop_oneof![8 => 0..2u8, 1 => Just(2u8)],
        any::<bool>(),
        proptest::option::of(ix(2)),
    )
        .prop_map(
            |(user, credential, account, key, counter, device, backed_up, transports)| {
                Op::CreateAuthenticator {
                    user,
                    credential,
                    account,
                    key,
                    counter,
                    device,
                    backed_up,
                    transports,
                }
            },
        )
}

/// An operation that can also run inside a transaction (no `Txn`, `Purge`, `Reopen`).
pub fn leaf() -> impl Strategy<Value = Op> {
    let user = recent;
    let session = recent;
    let vreq = || (identifier(), token_secret()).prop_map(|(i, (t, s))| (i, t, s));
    let provider = provider_account;
    prop_oneof![
        // users
        8 => create_user(),
        2 => user().prop_map(|user| Op::GetUser { user }),
        3 => email().prop_map(|email| Op::GetUserByEmail { email }),
        2 => (provider(), any::<bool>())
            .prop_map(|((provider, account), authjs)| Op::GetUserByAccount { provider, account, authjs }),
        4 => (email(), password()).prop_map(|(email, password)| Op::GetUserByCredentials { email, password }),
        4 => (user(), email_change(), change(3), change(2), change(3), change(5)).prop_map(
            |(user, email, name, image, verified, extra)| Op::UpdateUser { user, email, name, image, verified, extra }
        ),
        4 => (user(), email_change(), change(3), change(2), change(3), proptest::option::of(ix(5))).prop_map(
            |(user, email, name, image, verified, extra)| Op::PatchUser { user, email, name, image, verified, extra }
        ),
        1 => user().prop_map(|user| Op::DeleteUser { user }),
        3 => (user(), password()).prop_map(|(user, password)| Op::SetPassword { user, password }),
        // accounts
        5 => link_account(),
        1 => (user(), provider())
            .prop_map(|(user, (provider, account))| Op::UnlinkAccount { user, provider, account }),
        1 => provider().prop_map(|(provider, account)| Op::UnlinkAccountByProvider { provider, account }),
        1 => provider().prop_map(|(provider, account)| Op::GetAccount { provider, account }),
        1 => user().prop_map(|user| Op::ListAccounts { user }),
        // sessions
        5 => user().prop_map(|user| Op::CreateSession { user }),
        4 => (user(), prop_oneof![6 => 0..3u8, 1 => 3..5u8, 3 => ALL_TOKENS], expires())
            .prop_map(|(user, token, expires)| Op::CreateSessionWith { user, token, expires }),
        3 => session().prop_map(|session| Op::GetSession { session }),
        2 => session().prop_map(|session| Op::GetSessionAndUser { session }),
        4 => (session(), any::<bool>(), any::<bool>())
            .prop_map(|(session, force, stale)| Op::UpdateSession { session, force, stale }),
        3 => (session(), expires()).prop_map(|(session, expires)| Op::SetSessionExpiry { session, expires }),
        1 => session().prop_map(|session| Op::DeleteSession { session }),
        2 => session().prop_map(|session| Op::DeleteSessionReturning { session }),
        2 => user().prop_map(|user| Op::ListSessions { user }),
        1 => user().prop_map(|user| Op::DeleteSessions { user }),
        1 => (user(), session()).prop_map(|(user, session)| Op::DeleteSessionById { user, session }),
        // email sign-in
        4 => (vreq(), proptest::bool::weighted(0.8), prop_oneof![4 => Just(0u8), 1 => Just(1u8)]).prop_map(
            |((identifier, token, secret), send_ok, max_age)| Op::CreateVerification {
                identifier, token, secret, send_ok, max_age,
            }
        ),
        3 => vreq().prop_map(|(identifier, token, secret)| Op::GetVerification { identifier, token, secret }),
        1 => vreq().prop_map(|(identifier, token, secret)| Op::DeleteVerification { identifier, token, secret }),
        3 => vreq().prop_map(|(identifier, token, secret)| Op::UseVerification { identifier, token, secret }),
        4 => (identifier(), token_hash(), expires())
            .prop_map(|(identifier, hash, expires)| Op::CreateVerificationToken { identifier, hash, expires }),
        3 => (identifier(), token_hash())
            .prop_map(|(identifier, hash)| Op::UseVerificationToken { identifier, hash }),
        // authenticators
        7 => create_authenticator(),
        1 => credential().prop_map(|credential| Op::GetAuthenticator { credential }),
        1 => user().prop_map(|user| Op::ListAuthenticators { user }),
        3 => (credential(), ix(COUNTERS.len()))
            .prop_map(|(credential, counter)| Op::UpdateAuthenticatorCounter { credential, counter }),
        // web sessions
        4 => web_write().prop_map(|(id, user, expires, data)| Op::WebSessionCreate { id, user, expires, data }),
        4 => web_write().prop_map(|(id, user, expires, data)| Op::WebSessionSave { id, user, expires, data }),
        3 => ix(WEB_SESSION_ID_COUNT.into()).prop_map(|id| Op::WebSessionLoad { id }),
        1 => ix(WEB_SESSION_ID_COUNT.into()).prop_map(|id| Op::WebSessionDelete { id }),
        2 => ix(WEB_PURGE_BATCHES.len()).prop_map(|batch| Op::WebSessionDeleteExpired { batch }),
        2 => user().prop_map(|user| Op::WebSessionList { user }),
        1 => user().prop_map(|user| Op::WebSessionDeleteForUser { user }),
        1 => (user(), ix(WEB_SESSION_ID_COUNT.into()))
            .prop_map(|(user, id)| Op::WebSessionDeleteByHandle { user, id }),
        // time
        6 => ix(STEPS.len()).prop_map(|step| Op::Advance { step }),
    ]
}

/// `CreateSessionWith::token` values that reuse a handed-out token.
const ALL_TOKENS: std::ops::Range<u8> = super::ops::ALL_FROM..super::ops::BOGUS_FROM;

/// Any operation.
pub fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        60 => leaf(),
        1 => Just(Op::Purge),
        1 => Just(Op::Reopen),
        3 => (proptest::collection::vec(leaf(), 1..6), proptest::bool::weighted(0.6))
            .prop_map(|(ops, commit)| Op::Txn { ops, commit }),
    ]
}

/// A user made before the random part of a case: always a valid email or none.
fn setup_user() -> impl Strategy<Value = Op> {
    (
        proptest::option::weighted(0.8, prop_oneof![3 => 0..5u8, 1 => 7..9u8]),
        proptest::option::of(ix(3)),
    )
        .prop_map(|(email, name)| Op::CreateUser {
            email,
            name,
            image: None,
            verified: None,
            extra: 0,
        })
}

/// A case of up to `max_ops` operations, after one to three `CreateUser` (so that most
/// operations find a user to work on).
pub fn case(max_ops: usize) -> impl Strategy<Value = Case> {
    (
        ix(SETTINGS.len()),
        proptest::collection::vec(setup_user(), 1..4),
        proptest::collection::vec(op(), 1..=max_ops),
    )
        .prop_map(|(settings, mut ops, more)| {
            ops.extend(more);
            Case { settings, ops }
        })
}
