//! Hand-written seed inputs: short scenarios that reach the interesting outcomes (conflicts,
//! collisions, expiry at the exact microsecond, dropped transactions, reopening) so that the
//! fuzzer starts from them instead of from nothing. `examples/seeds.rs` writes them to
//! `seeds/` together with `ops.dict`.

use crate::faults::{FailMode, Plan};
use crate::input::{FChange, FaultInput, FuzzCase, FuzzOp};

use FuzzOp::{
    Advance, CreateSession, CreateUser, CreateVerification, DeleteSession, DeleteSessionById,
    DeleteSessions, DeleteUser, DeleteVerification, GetSession, GetUser, GetUserByAccount,
    GetUserByCredentials, GetUserByEmail, GetVerification, LinkAccount, ListSessions, Purge,
    Reopen, SetPassword, Txn, UnlinkAccount, UpdateSession, UpdateUser, UseVerification,
};

fn user(email: u8) -> FuzzOp {
    CreateUser {
        email: Some(email),
        name: None,
        verified: None,
    }
}

fn set_email(user: u8, email: u8) -> FuzzOp {
    UpdateUser {
        user,
        email: FChange::Set(email),
        name: FChange::Keep,
        image: FChange::Keep,
        verified: FChange::Keep,
    }
}

fn link(user: u8, provider: u8, account: u8) -> FuzzOp {
    LinkAccount {
        user,
        provider,
        account,
        provider_type: 0,
        refresh: Some(0),
        access: Some(1),
        expires: Some(3),
    }
}

fn request(identifier: u8, token: u8, secret: u8, send_ok: bool) -> FuzzOp {
    CreateVerification {
        identifier,
        token,
        secret,
        send_ok,
        max_age: 0,
    }
}

fn case(settings: u8, ops: Vec<FuzzOp>) -> FuzzCase {
    FuzzCase { settings, ops }
}

/// The `ops` seeds (also the operation part of the `faults` seeds).
pub fn ops_seeds() -> Vec<FuzzCase> {
    vec![
        // Every operation once, in a sensible order.
        case(
            0,
            vec![
                CreateUser {
                    email: Some(0),
                    name: Some(0),
                    verified: Some(1),
                },
                GetUser { user: 0 },
                GetUserByEmail { email: 1 },
                SetPassword {
                    user: 0,
                    password: 0,
                },
                GetUserByCredentials {
                    email: 1,
                    password: 0,
                },
                link(0, 0, 0),
                GetUserByAccount {
                    provider: 0,
                    account: 0,
                },
                CreateSession { user: 0 },
                GetSession { session: 0 },
                UpdateSession {
                    session: 0,
                    force: true,
                    stale: false,
                },
                ListSessions { user: 0 },
                request(0, 0, 0, true),
                GetVerification {
                    identifier: 1,
                    token: 0,
                    secret: 0,
                },
                UseVerification {
                    identifier: 0,
                    token: 0,
                    secret: 0,
                },
                request(2, 2, 1, true),
                DeleteVerification {
                    identifier: 3,
                    token: 2,
                    secret: 1,
                },
                UnlinkAccount {
                    user: 0,
                    provider: 0,
                    account: 0,
                },
                DeleteSessionById {
                    user: 0,
                    session: 0,
                },
                DeleteSessions { user: 0 },
                DeleteSession { session: 0 },
                Advance { step: 5 },
                Purge,
                Reopen,
                DeleteUser { user: 0 },
            ],
        ),
        // Emails differing in case and white space collide; a swap works only through a third
        // address inside one transaction.
        case(
            0,
            vec![
                user(0),
                user(2),
                user(1),
                set_email(0, 3),
                Txn {
                    len: 2,
                    commit: false,
                },
                set_email(0, 2),
                set_email(1, 0),
                Txn {
                    len: 3,
                    commit: true,
                },
                set_email(0, 4),
                set_email(1, 1),
                set_email(0, 3),
                GetUserByEmail { email: 0 },
                Reopen,
                GetUserByEmail { email: 2 },
            ],
        ),
        // A provider account linked to one user cannot be linked to another; re-linking
        // refreshes the tokens; deleting the user frees it.
        case(
            0,
            vec![
                user(0),
                user(2),
                link(0, 0, 0),
                link(1, 0, 0),
                LinkAccount {
                    user: 1,
                    provider: 0,
                    account: 0,
                    provider_type: 1,
                    refresh: None,
                    access: Some(0),
                    expires: None,
                },
                link(1, 1, 0),
                DeleteUser { user: 1 },
                link(0, 1, 0),
                GetUserByAccount {
                    provider: 1,
                    account: 0,
                },
                LinkAccount {
                    user: 0,
                    provider: 0,
                    account: 1,
                    provider_type: 2,
                    refresh: None,
                    access: None,
                    expires: None,
                },
            ],
        ),
        // Session throttle: exactly at `due` is not due, one microsecond later it is; expiry is
        // strict.
        case(
            0,
            vec![
                user(0),
                CreateSession { user: 0 },
                Advance { step: 2 },
                Advance { step: 3 },
                UpdateSession {
                    session: 0,
                    force: false,
                    stale: true,
                },
                Advance { step: 1 },
                UpdateSession {
                    session: 0,
                    force: false,
                    stale: false,
                },
                Advance { step: 5 },
                ListSessions { user: 0 },
                GetSession { session: 0 },
                Purge,
            ],
        ),
        // Short sessions extended on every update; several sessions per user.
        case(
            1,
            vec![
                user(4),
                CreateSession { user: 0 },
                CreateSession { user: 0 },
                Advance { step: 1 },
                UpdateSession {
                    session: 1,
                    force: false,
                    stale: false,
                },
                Advance { step: 2 },
                Advance { step: 2 },
                GetSession { session: 0 },
                GetSession { session: 1 },
                DeleteSessions { user: 0 },
                CreateSession { user: 200 },
            ],
        ),
        // Update age above max age.
        case(
            2,
            vec![
                user(2),
                CreateSession { user: 0 },
                Advance { step: 1 },
                UpdateSession {
                    session: 0,
                    force: false,
                    stale: false,
                },
                Advance { step: 2 },
                UpdateSession {
                    session: 0,
                    force: true,
                    stale: false,
                },
                Purge,
            ],
        ),
        // Verification links: ("t1", "xs") and ("t1x", "s") share one hash; a failed send
        // keeps nothing; an expired link is replaced; single use.
        case(
            0,
            vec![
                request(0, 0, 0, true),
                request(2, 1, 1, true),
                GetVerification {
                    identifier: 2,
                    token: 1,
                    secret: 1,
                },
                UseVerification {
                    identifier: 1,
                    token: 1,
                    secret: 1,
                },
                UseVerification {
                    identifier: 0,
                    token: 0,
                    secret: 0,
                },
                request(2, 1, 1, false),
                request(2, 1, 1, true),
                Advance { step: 4 },
                request(0, 0, 0, true),
                CreateVerification {
                    identifier: 5,
                    token: 2,
                    secret: 0,
                    send_ok: true,
                    max_age: 1,
                },
                Purge,
            ],
        ),
        // A transaction with a conflict inside, dropped; then committed; then reopened.
        case(
            0,
            vec![
                user(0),
                Txn {
                    len: 6,
                    commit: false,
                },
                user(2),
                user(1),
                CreateSession { user: 0 },
                link(0, 0, 0),
                SetPassword {
                    user: 0,
                    password: 1,
                },
                request(2, 0, 0, true),
                Txn {
                    len: 7,
                    commit: true,
                },
                user(2),
                user(1),
                CreateSession { user: 0 },
                link(0, 0, 0),
                SetPassword {
                    user: 0,
                    password: 1,
                },
                request(2, 0, 0, true),
                GetUserByEmail { email: 3 },
                Reopen,
                GetUserByCredentials {
                    email: 3,
                    password: 1,
                },
            ],
        ),
        // Passwords: invalid ones, wrong ones, a deleted user's.
        case(
            0,
            vec![
                user(0),
                SetPassword {
                    user: 0,
                    password: 2,
                },
                SetPassword {
                    user: 0,
                    password: 3,
                },
                SetPassword {
                    user: 0,
                    password: 0,
                },
                GetUserByCredentials {
                    email: 1,
                    password: 1,
                },
                GetUserByCredentials {
                    email: 0,
                    password: 3,
                },
                SetPassword {
                    user: 240,
                    password: 0,
                },
                DeleteUser { user: 0 },
                GetUserByCredentials {
                    email: 0,
                    password: 0,
                },
                user(1),
                GetUserByCredentials {
                    email: 0,
                    password: 0,
                },
            ],
        ),
        // Users without email, names and images changing, a deleted user's leftovers.
        case(
            0,
            vec![
                CreateUser {
                    email: None,
                    name: Some(1),
                    verified: None,
                },
                CreateUser {
                    email: Some(5),
                    name: None,
                    verified: None,
                },
                UpdateUser {
                    user: 0,
                    email: FChange::Set(2),
                    name: FChange::Clear,
                    image: FChange::Set(1),
                    verified: FChange::Set(9),
                },
                UpdateUser {
                    user: 0,
                    email: FChange::Clear,
                    name: FChange::Set(2),
                    image: FChange::Keep,
                    verified: FChange::Clear,
                },
                CreateSession { user: 0 },
                DeleteUser { user: 0 },
                GetSession { session: 130 },
                UpdateUser {
                    user: 130,
                    email: FChange::Keep,
                    name: FChange::Keep,
                    image: FChange::Keep,
                    verified: FChange::Keep,
                },
                DeleteSessionById {
                    user: 130,
                    session: 130,
                },
            ],
        ),
        // Clock moves inside transactions (committed and dropped: time does not roll back),
        // past a link's and a session's expiry. (From a `faults` crash: see
        // tests/fuzz_regressions.rs.)
        case(
            1,
            vec![
                user(0),
                CreateSession { user: 0 },
                request(2, 0, 0, true),
                Txn {
                    len: 2,
                    commit: false,
                },
                Advance { step: 4 },
                user(4),
                GetVerification {
                    identifier: 2,
                    token: 0,
                    secret: 0,
                },
                Txn {
                    len: 3,
                    commit: true,
                },
                Advance { step: 1 },
                GetSession { session: 0 },
                user(4),
                Purge,
            ],
        ),
    ]
}

/// The `faults` seeds: the `ops` seeds with faults early, late and in between.
pub fn fault_seeds() -> Vec<FaultInput> {
    let mut out = Vec::new();
    for (i, case) in (0u32..).zip(ops_seeds()) {
        for (k, mode) in (0u32..).zip([FailMode::Writes, FailMode::Syncs, FailMode::All]) {
            out.push(FaultInput {
                plan: Plan {
                    after: 3 + 17 * i + 29 * k,
                    mode,
                    small_cache: (i + k) % 2 == 1,
                },
                case: case.clone(),
            });
        }
    }
    out
}
