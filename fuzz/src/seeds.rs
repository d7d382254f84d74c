//! Hand-written seed inputs: short scenarios that reach the interesting outcomes (conflicts,
//! collisions, expiry at the exact microsecond, dropped transactions, reopening, the Auth.js
//! operations meeting the v3 ones) so that the fuzzer starts from them instead of from
//! nothing. `examples/seeds.rs` writes them to `seeds/` together with `ops.dict`.

use crate::faults::{FailMode, Plan};
use crate::input::{FaultInput, FuzzCase};
use crate::model::{Case, Change, Op};

use Op::{
    Advance, CreateAuthenticator, CreateSession, CreateSessionWith, CreateVerification,
    CreateVerificationToken, DeleteSession, DeleteSessionById, DeleteSessionReturning,
    DeleteSessions, DeleteUser, DeleteVerification, GetAccount, GetAuthenticator, GetSession,
    GetSessionAndUser, GetUser, GetUserByAccount, GetUserByCredentials, GetUserByEmail,
    GetVerification, ListAccounts, ListAuthenticators, ListSessions, PatchUser, Purge, Reopen,
    SetPassword, SetSessionExpiry, Txn, UnlinkAccount, UnlinkAccountByProvider,
    UpdateAuthenticatorCounter, UpdateSession, UpdateUser, UseVerification, UseVerificationToken,
};

fn user(email: u8) -> Op {
    Op::CreateUser {
        email: Some(email),
        name: None,
        image: None,
        verified: None,
        extra: 0,
    }
}

fn set_email(user: u8, email: u8) -> Op {
    UpdateUser {
        user,
        email: Change::Set(email),
        name: Change::Keep,
        image: Change::Keep,
        verified: Change::Keep,
        extra: Change::Keep,
    }
}

fn link(user: u8, provider: u8, account: u8) -> Op {
    Op::LinkAccount {
        user,
        provider,
        account,
        provider_type: 0,
        refresh: Some(0),
        access: Some(1),
        expires: Some(3),
        token_type: Some(0),
        scope: Some(0),
        id_token: None,
        session_state: None,
        extra: 0,
    }
}

/// `link_account` with only the required fields (and a provider type).
fn link_bare(user: u8, provider: u8, account: u8, provider_type: u8) -> Op {
    Op::LinkAccount {
        user,
        provider,
        account,
        provider_type,
        refresh: None,
        access: None,
        expires: None,
        token_type: None,
        scope: None,
        id_token: None,
        session_state: None,
        extra: 0,
    }
}

fn request(identifier: u8, token: u8, secret: u8, send_ok: bool) -> Op {
    CreateVerification {
        identifier,
        token,
        secret,
        send_ok,
        max_age: 0,
    }
}

fn passkey(user: u8, credential: u8, counter: u8) -> Op {
    CreateAuthenticator {
        user,
        credential,
        account: 0,
        key: 0,
        counter,
        device: 0,
        backed_up: true,
        transports: Some(1),
    }
}

fn txn(commit: bool, ops: Vec<Op>) -> Op {
    Txn { ops, commit }
}

fn case(settings: u8, ops: Vec<Op>) -> FuzzCase {
    FuzzCase(Case { settings, ops })
}

/// The `ops` seeds (also the operation part of the `faults` seeds).
pub fn ops_seeds() -> Vec<FuzzCase> {
    vec![
        // Every v3 operation once, in a sensible order.
        case(
            0,
            vec![
                Op::CreateUser {
                    email: Some(0),
                    name: Some(0),
                    image: Some(0),
                    verified: Some(1),
                    extra: 1,
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
                    authjs: false,
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
        // Every Auth.js operation once: the OAuth, database-session, email and WebAuthn flows.
        case(
            0,
            vec![
                user(2),
                PatchUser {
                    user: 0,
                    email: Change::Keep,
                    name: Change::Set(0),
                    image: Change::Keep,
                    verified: Change::Set(2),
                    extra: Some(3),
                },
                link(0, 1, 1),
                GetUserByAccount {
                    provider: 1,
                    account: 1,
                    authjs: true,
                },
                GetAccount {
                    provider: 1,
                    account: 1,
                },
                ListAccounts { user: 0 },
                CreateSessionWith {
                    user: 0,
                    token: 2,
                    expires: 5,
                },
                GetSessionAndUser { session: 0 },
                SetSessionExpiry {
                    session: 0,
                    expires: 6,
                },
                DeleteSessionReturning { session: 0 },
                CreateVerificationToken {
                    identifier: 2,
                    hash: 2,
                    expires: 4,
                },
                UseVerificationToken {
                    identifier: 3,
                    hash: 2,
                },
                link_bare(0, 0, 2, 4),
                passkey(0, 0, 1),
                GetAuthenticator { credential: 0 },
                ListAuthenticators { user: 0 },
                UpdateAuthenticatorCounter {
                    credential: 0,
                    counter: 2,
                },
                UnlinkAccountByProvider {
                    provider: 1,
                    account: 1,
                },
                DeleteUser { user: 0 },
                GetAuthenticator { credential: 0 },
            ],
        ),
        // Emails differing in case, white space and compatibility forms collide; a swap works
        // only through a third address inside one transaction.
        case(
            0,
            vec![
                user(0),
                user(2),
                user(7),
                set_email(0, 3),
                set_email(0, 6),
                set_email(0, 8),
                txn(false, vec![set_email(1, 2), set_email(2, 0)]),
                txn(
                    true,
                    vec![set_email(1, 4), set_email(2, 1), set_email(1, 3)],
                ),
                GetUserByEmail { email: 0 },
                GetUserByEmail { email: 6 },
                Reopen,
                GetUserByEmail { email: 2 },
                set_email(0, 9),
            ],
        ),
        // The security stamp: replaced by set_password, delete_sessions and a change of the
        // normalized email; kept by other changes (and by an email of another case).
        case(
            0,
            vec![
                user(0),
                GetUser { user: 0 },
                set_email(0, 1),
                GetUser { user: 0 },
                SetPassword {
                    user: 0,
                    password: 1,
                },
                GetUser { user: 0 },
                DeleteSessions { user: 0 },
                GetUser { user: 0 },
                PatchUser {
                    user: 0,
                    email: Change::Set(2),
                    name: Change::Set(1),
                    image: Change::Keep,
                    verified: Change::Keep,
                    extra: None,
                },
                PatchUser {
                    user: 0,
                    email: Change::Clear,
                    name: Change::Keep,
                    image: Change::Keep,
                    verified: Change::Keep,
                    extra: Some(2),
                },
                UpdateUser {
                    user: 0,
                    email: Change::Keep,
                    name: Change::Clear,
                    image: Change::Set(0),
                    verified: Change::Keep,
                    extra: Change::Set(2),
                },
                txn(
                    false,
                    vec![SetPassword {
                        user: 0,
                        password: 0,
                    }],
                ),
                GetUser { user: 0 },
            ],
        ),
        // A provider account linked to one user cannot be linked to another; re-linking
        // refreshes the fields given; deleting the user frees it; provider types are checked.
        case(
            0,
            vec![
                user(0),
                user(2),
                link(0, 0, 0),
                link(1, 0, 0),
                Op::LinkAccount {
                    user: 1,
                    provider: 0,
                    account: 0,
                    provider_type: 1,
                    refresh: None,
                    access: Some(0),
                    expires: None,
                    token_type: Some(1),
                    scope: None,
                    id_token: Some(0),
                    session_state: Some(1),
                    extra: 1,
                },
                link(1, 1, 0),
                DeleteUser { user: 1 },
                link(0, 1, 0),
                GetUserByAccount {
                    provider: 1,
                    account: 0,
                    authjs: false,
                },
                link_bare(0, 0, 1, 2),
                link_bare(0, 0, 1, 5),
                ListAccounts { user: 0 },
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
        // Caller-chosen sessions: a taken token, a past expiry, an expiry set exactly to now,
        // one microsecond later expired (set_session_expiry neither revives nor deletes it;
        // delete_session_returning still returns it), a reused token after deletion.
        case(
            1,
            vec![
                user(4),
                CreateSessionWith {
                    user: 0,
                    token: 0,
                    expires: 4,
                },
                CreateSessionWith {
                    user: 0,
                    token: 0,
                    expires: 4,
                },
                CreateSessionWith {
                    user: 0,
                    token: 1,
                    expires: 0,
                },
                CreateSessionWith {
                    user: 0,
                    token: 3,
                    expires: 4,
                },
                SetSessionExpiry {
                    session: 1,
                    expires: 2,
                },
                Advance { step: 1 },
                SetSessionExpiry {
                    session: 129,
                    expires: 5,
                },
                GetSession { session: 128 },
                DeleteSessionReturning { session: 129 },
                CreateSessionWith {
                    user: 0,
                    token: 129,
                    expires: 5,
                },
                CreateSession { user: 0 },
                UpdateSession {
                    session: 0,
                    force: false,
                    stale: false,
                },
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
        // The two verification APIs meet: a v3 link used as an Auth.js token (upper-case hash)
        // and the other way round; the v3 pre-image as an opaque token does not meet it.
        case(
            0,
            vec![
                request(0, 0, 0, true),
                CreateVerificationToken {
                    identifier: 0,
                    hash: 1,
                    expires: 4,
                },
                CreateVerificationToken {
                    identifier: 0,
                    hash: 4,
                    expires: 4,
                },
                UseVerificationToken {
                    identifier: 6,
                    hash: 1,
                },
                CreateVerificationToken {
                    identifier: 2,
                    hash: 3,
                    expires: 1,
                },
                GetVerification {
                    identifier: 3,
                    token: 2,
                    secret: 1,
                },
                CreateVerificationToken {
                    identifier: 2,
                    hash: 3,
                    expires: 6,
                },
                Advance { step: 1 },
                UseVerification {
                    identifier: 2,
                    token: 2,
                    secret: 1,
                },
                CreateVerificationToken {
                    identifier: 9,
                    hash: 5,
                    expires: 4,
                },
                UseVerificationToken {
                    identifier: 0,
                    hash: 4,
                },
                Purge,
            ],
        ),
        // Authenticators: a taken credential id, counters that must increase unless both are
        // zero, an unknown credential, the cascade of delete_user.
        case(
            0,
            vec![
                user(0),
                user(2),
                passkey(1, 0, 0),
                passkey(0, 0, 3),
                passkey(0, 1, 3),
                UpdateAuthenticatorCounter {
                    credential: 0,
                    counter: 0,
                },
                UpdateAuthenticatorCounter {
                    credential: 0,
                    counter: 2,
                },
                UpdateAuthenticatorCounter {
                    credential: 0,
                    counter: 2,
                },
                UpdateAuthenticatorCounter {
                    credential: 1,
                    counter: 1,
                },
                UpdateAuthenticatorCounter {
                    credential: 2,
                    counter: 3,
                },
                passkey(0, 3, 0),
                ListAuthenticators { user: 0 },
                ListAuthenticators { user: 1 },
                DeleteUser { user: 0 },
                ListAuthenticators { user: 128 },
                GetAuthenticator { credential: 1 },
            ],
        ),
        // A transaction with a conflict inside, dropped; then committed; then reopened.
        case(
            0,
            vec![
                user(0),
                txn(
                    false,
                    vec![
                        user(2),
                        user(1),
                        CreateSession { user: 0 },
                        link(0, 0, 0),
                        SetPassword {
                            user: 0,
                            password: 1,
                        },
                        request(2, 0, 0, true),
                    ],
                ),
                txn(
                    true,
                    vec![
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
                    ],
                ),
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
        // Users without email, names, images and extras changing, a deleted user's leftovers.
        case(
            0,
            vec![
                Op::CreateUser {
                    email: None,
                    name: Some(1),
                    image: None,
                    verified: None,
                    extra: 3,
                },
                Op::CreateUser {
                    email: Some(5),
                    name: None,
                    image: None,
                    verified: None,
                    extra: 0,
                },
                Op::CreateUser {
                    email: Some(4),
                    name: None,
                    image: None,
                    verified: None,
                    extra: 4,
                },
                UpdateUser {
                    user: 0,
                    email: Change::Set(2),
                    name: Change::Clear,
                    image: Change::Set(1),
                    verified: Change::Set(9),
                    extra: Change::Set(1),
                },
                UpdateUser {
                    user: 0,
                    email: Change::Clear,
                    name: Change::Set(2),
                    image: Change::Keep,
                    verified: Change::Clear,
                    extra: Change::Clear,
                },
                CreateSession { user: 0 },
                DeleteUser { user: 0 },
                GetSession { session: 130 },
                UpdateUser {
                    user: 130,
                    email: Change::Keep,
                    name: Change::Keep,
                    image: Change::Keep,
                    verified: Change::Keep,
                    extra: Change::Keep,
                },
                PatchUser {
                    user: 130,
                    email: Change::Keep,
                    name: Change::Keep,
                    image: Change::Keep,
                    verified: Change::Keep,
                    extra: None,
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
                txn(false, vec![Advance { step: 4 }, user(4)]),
                txn(
                    true,
                    vec![
                        GetVerification {
                            identifier: 2,
                            token: 0,
                            secret: 0,
                        },
                        Advance { step: 1 },
                        GetSession { session: 0 },
                    ],
                ),
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
        let modes = [
            FailMode::Writes,
            FailMode::Syncs,
            FailMode::All,
            FailMode::PowerCut { seed: i },
        ];
        for (k, mode) in (0u32..).zip(modes) {
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
