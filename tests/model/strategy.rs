//! proptest strategies for [`Op`] and [`Case`].
//!
//! Indices are drawn from the domains' own sizes. User and session indices favour the few
//! newest (most likely alive) and otherwise range over all of `u8` (the driver takes them
//! modulo what exists; the top values mean "never existed"). Weights keep the interesting
//! outcomes (conflicts, matches, due updates) frequent: see the outcome table the test prints
//! with `--nocapture`.

use proptest::prelude::*;

use super::ops::{Case, Change, Op, SETTINGS, STEPS};

fn ix(n: usize) -> impl Strategy<Value = u8> + Clone {
    0..u8::try_from(n).expect("small domain")
}

/// A user or session: mostly one of the three newest.
fn recent() -> impl Strategy<Value = u8> + Clone {
    prop_oneof![3 => 0..3u8, 1 => any::<u8>()]
}

/// A password: mostly a valid one.
fn password() -> impl Strategy<Value = u8> + Clone {
    prop_oneof![6 => Just(0u8), 2 => Just(1u8), 1 => 2..4u8]
}

/// An identifier for a verification request: mostly "a@x.io" / "b@x.io" in some spelling.
/// (Verification tokens favour "t1" and "t1x", whose pairs collide.)
fn identifier() -> impl Strategy<Value = u8> + Clone {
    prop_oneof![6 => 0..2u8, 3 => 2..4u8, 1 => 4..6u8]
}

fn change(n: usize) -> impl Strategy<Value = Change> {
    prop_oneof![
        3 => Just(Change::Keep),
        1 => Just(Change::Clear),
        3 => ix(n).prop_map(Change::Set),
    ]
}

fn create_user() -> impl Strategy<Value = Op> {
    (
        proptest::option::weighted(0.85, ix(6)),
        proptest::option::of(ix(3)),
        proptest::option::of(ix(4)),
    )
        .prop_map(|(email, name, verified)| Op::CreateUser {
            email,
            name,
            verified,
        })
}

/// An operation that can also run inside a transaction (no `Txn`, `Purge`, `Reopen`).
pub fn leaf() -> impl Strategy<Value = Op> {
    let user = recent;
    let session = recent;
    let email = || ix(6);
    let vreq = || {
        (
            identifier(),
            prop_oneof![4 => 0..2u8, 1 => Just(2u8)],
            ix(2),
        )
    };
    prop_oneof![
        8 => create_user(),
        2 => user().prop_map(|user| Op::GetUser { user }),
        3 => email().prop_map(|email| Op::GetUserByEmail { email }),
        2 => (ix(2), ix(3)).prop_map(|(provider, account)| Op::GetUserByAccount { provider, account }),
        5 => (email(), password()).prop_map(|(email, password)| Op::GetUserByCredentials { email, password }),
        5 => (user(), change(6), change(3), change(2), change(3)).prop_map(
            |(user, email, name, image, verified)| Op::UpdateUser { user, email, name, image, verified }
        ),
        1 => user().prop_map(|user| Op::DeleteUser { user }),
        3 => (user(), password()).prop_map(|(user, password)| Op::SetPassword { user, password }),
        6 => (
            user(),
            prop_oneof![3 => Just(0u8), 1 => Just(1u8)],
            prop_oneof![3 => 0..2u8, 1 => Just(2u8)],
            prop_oneof![5 => ix(2), 1 => Just(2u8)],
            proptest::option::of(ix(2)),
            proptest::option::of(ix(2)),
            proptest::option::of(ix(3)),
        )
            .prop_map(|(user, provider, account, provider_type, refresh, access, expires)| {
                Op::LinkAccount { user, provider, account, provider_type, refresh, access, expires }
            }),
        2 => (user(), ix(2), ix(3))
            .prop_map(|(user, provider, account)| Op::UnlinkAccount { user, provider, account }),
        6 => user().prop_map(|user| Op::CreateSession { user }),
        4 => session().prop_map(|session| Op::GetSession { session }),
        5 => (session(), any::<bool>(), any::<bool>())
            .prop_map(|(session, force, stale)| Op::UpdateSession { session, force, stale }),
        2 => session().prop_map(|session| Op::DeleteSession { session }),
        2 => user().prop_map(|user| Op::ListSessions { user }),
        1 => user().prop_map(|user| Op::DeleteSessions { user }),
        1 => (user(), session()).prop_map(|(user, session)| Op::DeleteSessionById { user, session }),
        5 => (vreq(), proptest::bool::weighted(0.8), prop_oneof![4 => Just(0u8), 1 => Just(1u8)]).prop_map(
            |((identifier, token, secret), send_ok, max_age)| Op::CreateVerification {
                identifier, token, secret, send_ok, max_age,
            }
        ),
        4 => vreq().prop_map(|(identifier, token, secret)| Op::GetVerification { identifier, token, secret }),
        1 => vreq().prop_map(|(identifier, token, secret)| Op::DeleteVerification { identifier, token, secret }),
        4 => vreq().prop_map(|(identifier, token, secret)| Op::UseVerification { identifier, token, secret }),
        6 => ix(STEPS.len()).prop_map(|step| Op::Advance { step }),
    ]
}

/// Any operation.
pub fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        40 => leaf(),
        1 => Just(Op::Purge),
        1 => Just(Op::Reopen),
        2 => (proptest::collection::vec(leaf(), 1..6), proptest::bool::weighted(0.6))
            .prop_map(|(ops, commit)| Op::Txn { ops, commit }),
    ]
}

/// A user made before the random part of a case: always a valid email or none.
fn setup_user() -> impl Strategy<Value = Op> {
    (
        proptest::option::weighted(0.8, ix(5)),
        proptest::option::of(ix(3)),
    )
        .prop_map(|(email, name)| Op::CreateUser {
            email,
            name,
            verified: None,
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
