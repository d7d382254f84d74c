//! The conformance suite: authdb's behaviour contract as executable cases, written against the
//! trait family only ([`Adapter`], [`Transactional`], [`Maintenance`]), so that every backend —
//! [`AuthDb`](crate::AuthDb) today, others later — proves the same behaviour by passing it.
//!
//! Compiled with the `conformance` feature. The cases come in three groups, run in this order:
//!
//! 1. `authjs::*` — every case of Auth.js's adapter test suite (`runBasicTests`), restated for
//!    this API (Auth.js's `updateUser` is [`patch_user`](crate::contract::UserStore::patch_user),
//!    its `updateSession` is [`set_session_expiry`](crate::contract::SessionStore::set_session_expiry),
//!    and so on), plus the checks Auth.js leaves to the database;
//! 2. `v3::*` — NextAuth v3's operations as authdb specifies them (email normalization, the
//!    session update-age throttle, single-use sign-in links, CVE-2021-21310, ...);
//! 3. `extras::*` — what authdb adds: passwords, security stamps, session listing, input
//!    limits, transactions, purging.
//!
//! A backend runs them all with [`run_all`]:
//!
//! ```no_run
//! use authdb::{AuthDb, EncryptionKey, PasswordParams};
//!
//! // In a #[test] of the backend's crate (with authdb's `conformance` feature on).
//! authdb::conformance::run_all(|clock| {
//!     AuthDb::builder()
//!         .clock(clock)
//!         .encryption_key(EncryptionKey::from_bytes([7; 32]))
//!         .password_params(PasswordParams { memory_kib: 64, iterations: 1, parallelism: 1 })
//!         .in_memory()
//!         .expect("an empty in-memory store")
//! });
//! ```
//!
//! Setting the environment variable `AUTHDB_CONFORMANCE_FILTER` runs only the cases whose name
//! contains its value (for example `v3::update_session`).
//!
//! A store that accepts short verification codes (and limits failed attempts instead) runs
//! [`run_short_codes`] too, with a store made with that setting.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

mod authjs;
mod extras;
mod v3;

use std::fmt::{self, Write as _};
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::Value;

use crate::clock::{Clock, ManualClock};
use crate::contract::{Adapter, Maintenance, Transactional};
use crate::email::EmailProvider;
use crate::integrity::IntegrityReport;
use crate::model::{
    Account, Authenticator, Extra, NewAccount, NewAuthenticator, NewSession, NewUser, Session,
    User, UserId,
};

/// What a backend must implement to run the suite: every store, transactions and housekeeping.
/// Implemented automatically for every type that has them.
pub trait Backend: Adapter + Transactional + Maintenance {}

impl<T: Adapter + Transactional + Maintenance + ?Sized> Backend for T {}

/// One named behaviour check.
pub struct Case<S> {
    /// The case's name, `group::name` (for example `authjs::create_user`).
    pub name: &'static str,
    /// The check: it panics (through `assert!` and friends) when the store misbehaves.
    pub run: fn(&Fixture<S>),
}

impl<S> fmt::Debug for Case<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Case")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// What a case works on: an empty store and the manual clock that store reads.
pub struct Fixture<S> {
    /// The store under test. It was empty when the case began.
    pub store: S,
    /// The store's clock; cases move it to make sessions and links expire.
    pub clock: Arc<ManualClock>,
}

impl<S> fmt::Debug for Fixture<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fixture")
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

impl<S> Fixture<S> {
    /// The clock's current time: the store's now (which the store truncates to microseconds;
    /// the cases keep the clock on whole microseconds unless they test that truncation).
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Moves the clock forward by `d` (backwards if negative).
    pub fn advance(&self, d: Duration) {
        self.clock.advance(d);
    }

    /// Sets the clock to `at`.
    pub fn set_time(&self, at: DateTime<Utc>) {
        self.clock.set(at);
    }
}

/// When every case's clock starts: 2026-01-01T00:00:00Z.
///
/// # Panics
/// Never (the instant is valid).
pub fn start_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .expect("a valid instant")
}

macro_rules! case {
    ($group:ident :: $name:ident) => {
        Case {
            name: concat!(stringify!($group), "::", stringify!($name)),
            run: $group::$name::<S>,
        }
    };
}

/// Every case: the Auth.js ones, then the v3 ones, then authdb's extras.
///
/// Each expects a fresh, empty store made as [`run_all`] describes.
pub fn cases<S: Backend>() -> Vec<Case<S>> {
    vec![
        // Auth.js's adapter test suite, case by case.
        case!(authjs::create_user),
        case!(authjs::get_user),
        case!(authjs::get_user_by_email),
        case!(authjs::create_session),
        case!(authjs::get_session_and_user),
        case!(authjs::update_user),
        case!(authjs::update_session),
        case!(authjs::link_account),
        case!(authjs::get_user_by_account),
        case!(authjs::delete_session),
        case!(authjs::create_verification_token),
        case!(authjs::use_verification_token),
        case!(authjs::unlink_account),
        case!(authjs::delete_user),
        case!(authjs::get_account),
        case!(authjs::create_authenticator),
        case!(authjs::get_authenticator),
        case!(authjs::list_authenticators_by_user_id),
        case!(authjs::update_authenticator_counter),
        // NextAuth v3's operations.
        case!(v3::create_user_stores_email_as_given),
        case!(v3::email_normalization_and_email_taken),
        case!(v3::email_nfkc_folding),
        case!(v3::email_invalid_on_write_none_on_lookup),
        case!(v3::users_without_email),
        case!(v3::update_user_replaces_fields),
        case!(v3::update_user_reindexes_email),
        case!(v3::update_user_errors_write_nothing),
        case!(v3::delete_user_is_idempotent_and_frees_keys),
        case!(v3::link_account_relink_refreshes_tokens),
        case!(v3::account_linked_to_another_user),
        case!(v3::unlink_account_checks_ownership),
        case!(v3::provider_lookup_is_exact),
        case!(v3::create_session_defaults),
        case!(v3::session_valid_at_expires_gone_after),
        case!(v3::unknown_session_tokens),
        case!(v3::update_session_not_due_writes_nothing),
        case!(v3::update_session_due_extends),
        case!(v3::update_session_force),
        case!(v3::update_session_uses_stored_session),
        case!(v3::expired_session_never_revived),
        case!(v3::deleted_session_never_revived),
        case!(v3::delete_session_is_idempotent),
        case!(v3::verification_request_create_and_send),
        case!(v3::verification_request_mails_the_account_address),
        case!(v3::verification_request_send_failed),
        case!(v3::verification_request_identifier_must_match),
        case!(v3::verification_request_get_does_not_consume),
        case!(v3::verification_request_delete),
        case!(v3::verification_request_use_is_single_use),
        case!(v3::verification_request_expiry),
        case!(v3::verification_request_token_taken),
        case!(v3::verification_hash_interop),
        // authdb's own.
        case!(extras::store_clock_and_timestamps),
        case!(extras::password_and_credentials),
        case!(extras::password_limits),
        case!(extras::security_stamp),
        case!(extras::list_sessions),
        case!(extras::delete_sessions_and_by_id),
        case!(extras::create_session_with_token_rules),
        case!(extras::unknown_user_is_user_not_found),
        case!(extras::invalid_provider_type),
        case!(extras::patch_user_rules),
        case!(extras::list_accounts),
        case!(extras::account_secrets_round_trip),
        case!(extras::verification_token_rules),
        case!(extras::oversized_lookups_find_nothing),
        case!(extras::input_limits),
        case!(extras::transaction_commits_everything),
        case!(extras::transaction_err_keeps_nothing),
        case!(extras::transaction_failed_call_writes_nothing),
        case!(extras::purge_expired_counts),
        case!(extras::entropy_floor),
    ]
}

/// Runs every case (or those selected by `AUTHDB_CONFORMANCE_FILTER`), each on a fresh store,
/// and panics at the end listing every case that failed.
///
/// For each case it makes a [`ManualClock`] at [`start_time`] and calls `make(clock)`, which
/// must return an **empty** store that reads that clock, with a session max age of 30 days, a
/// session update age of 24 hours, an encryption key (so OAuth tokens can be stored) and cheap
/// password hashing. The store must be empty when the case starts and pass
/// [`check_integrity`](Maintenance::check_integrity) when it ends; a panic in `make`, in the
/// case or in that check fails the case, and the next case runs regardless.
///
/// # Panics
/// When a case fails (after running all of them).
pub fn run_all<S: Backend>(make: impl Fn(Arc<ManualClock>) -> S) {
    run_cases(cases::<S>(), &make);
}

/// The failed-attempt limit the short-code cases expect the store to be opened with.
pub const SHORT_CODE_ATTEMPTS: u32 = 3;

/// The cases of a store that accepts short verification codes and limits failed attempts
/// (`allow_short_verification_tokens(SHORT_CODE_ATTEMPTS)` on `authdb::Builder`, its
/// equivalent elsewhere).
pub fn short_code_cases<S: Backend>() -> Vec<Case<S>> {
    vec![
        case!(extras::short_codes_accepted),
        case!(extras::short_codes_wrong_guesses_burn_links),
        case!(extras::short_codes_success_resets_failures),
        case!(extras::short_codes_uncounted_without_a_link),
        case!(extras::short_codes_count_in_a_window),
        case!(extras::short_codes_counting_is_transactional),
    ]
}

/// Runs [`short_code_cases`] as [`run_all`] runs the others. `make` must return an empty
/// store configured as [`run_all`] asks, plus a limit of [`SHORT_CODE_ATTEMPTS`] failed
/// verification attempts per identifier with short verification tokens allowed.
///
/// # Panics
/// When a case fails (after running all of them).
pub fn run_short_codes<S: Backend>(make: impl Fn(Arc<ManualClock>) -> S) {
    run_cases(short_code_cases::<S>(), &make);
}

/// Runs `cases` (those selected by `AUTHDB_CONFORMANCE_FILTER`), each on a fresh store.
fn run_cases<S: Backend>(cases: Vec<Case<S>>, make: &impl Fn(Arc<ManualClock>) -> S) {
    let filter = std::env::var("AUTHDB_CONFORMANCE_FILTER")
        .ok()
        .filter(|f| !f.is_empty());
    let selected: Vec<Case<S>> = cases
        .into_iter()
        .filter(|c| filter.as_deref().is_none_or(|f| c.name.contains(f)))
        .collect();
    if selected.is_empty() {
        // A filter may select cases of the other entry point only.
        eprintln!("conformance: AUTHDB_CONFORMANCE_FILTER={filter:?} selects no case here");
        return;
    }
    let mut failed: Vec<(&'static str, String)> = Vec::new();
    for case in &selected {
        if let Err(why) = run_case(case, make) {
            eprintln!("conformance case {} FAILED: {why}", case.name);
            failed.push((case.name, why));
        }
    }
    eprintln!(
        "conformance: {} of {} cases passed",
        selected.len() - failed.len(),
        selected.len()
    );
    let mut list = String::new();
    for (name, why) in &failed {
        let why = why.replace('\n', "\n      ");
        write!(list, "\n  {name}: {why}").expect("writing to a String");
    }
    assert!(
        failed.is_empty(),
        "{} of {} conformance cases failed:{list}",
        failed.len(),
        selected.len()
    );
}

/// Runs one case on a fresh store; the panic message if it (or the checks around it) failed.
fn run_case<S: Backend>(
    case: &Case<S>,
    make: &impl Fn(Arc<ManualClock>) -> S,
) -> Result<(), String> {
    panic::catch_unwind(AssertUnwindSafe(|| {
        let clock = Arc::new(ManualClock::new(start_time()));
        let fx = Fixture {
            store: make(Arc::clone(&clock)),
            clock,
        };
        let before = fx
            .store
            .check_integrity()
            .expect("check_integrity on the new store");
        assert!(
            before.is_clean()
                && before.users == 0
                && before.accounts == 0
                && before.sessions == 0
                && before.verification_requests == 0
                && before.credentials == 0
                && before.authenticators == 0,
            "`make` must return an empty store; it returned one with {before:?}"
        );
        (case.run)(&fx);
        let after = fx
            .store
            .check_integrity()
            .unwrap_or_else(|e| panic!("check_integrity after the case failed: {e}"));
        assert!(
            after.is_clean(),
            "check_integrity after the case found problems:\n{after}"
        );
    }))
    .map_err(|payload| panic_message(payload.as_ref()))
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panicked with a non-string payload".to_owned()
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers shared by the cases.

/// One microsecond: the store's time resolution.
const MICRO: Duration = Duration::microseconds(1);

/// A sign-in URL for the v3 verification operations.
const URL: &str = "https://app.example.com/api/auth/callback/email?token=t";

/// Raw verification tokens for the cases: 32 hex characters each, the 128 bits of
/// [`MIN_VERIFICATION_TOKEN_BITS`](crate::limits::MIN_VERIFICATION_TOKEN_BITS), all different.
const TOK: &str = "5f1e0c7a2b9d4e8f6a3c1b0d9e8f7a6b";
const TOK2: &str = "0a9b8c7d6e5f40312233445566778899";
const TOK3: &str = "c0ffee00c0ffee11c0ffee22c0ffee33";
const TOK_OTHER: &str = "d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6";

/// A random (version 4) UUID string, as Auth.js makes session tokens and ids.
fn random_uuid() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the OS random number generator");
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .hyphenated()
        .to_string()
}

/// A user id no store has made.
fn unknown_user_id() -> UserId {
    UserId(uuid::Uuid::now_v7())
}

/// A JSON object (the `extra` fields) from a `json!` literal.
fn obj(v: Value) -> Extra {
    match v {
        Value::Object(m) => m,
        other => panic!("not a JSON object: {other}"),
    }
}

/// A profile with only an email.
fn profile(email: &str) -> NewUser {
    NewUser {
        email: Some(email.to_owned()),
        ..NewUser::default()
    }
}

/// Creates a user with this email (or none).
fn new_user<S: Backend>(fx: &Fixture<S>, email: Option<&str>) -> User {
    let p = NewUser {
        email: email.map(str::to_owned),
        ..NewUser::default()
    };
    fx.store
        .create_user(&p)
        .unwrap_or_else(|e| panic!("create_user({email:?}): {e:?}"))
}

/// The stored user, which must exist.
fn stored_user<S: Backend>(fx: &Fixture<S>, id: &UserId) -> User {
    fx.store
        .get_user(id)
        .expect("get_user")
        .unwrap_or_else(|| panic!("user {id} should exist"))
}

/// An OAuth account of `provider` with id `account_id` and optional tokens.
fn oauth(
    provider: &str,
    account_id: &str,
    refresh: Option<&str>,
    access: Option<&str>,
) -> NewAccount {
    NewAccount {
        provider_type: "oauth".to_owned(),
        provider_id: provider.to_owned(),
        provider_account_id: account_id.to_owned(),
        refresh_token: refresh.map(str::to_owned),
        access_token: access.map(str::to_owned),
        ..NewAccount::default()
    }
}

/// An account with all eleven fields set (Auth.js's fixture account, our values).
fn full_account(now: DateTime<Utc>) -> NewAccount {
    NewAccount {
        provider_type: "oidc".to_owned(),
        provider_id: "github".to_owned(),
        provider_account_id: random_uuid(),
        refresh_token: Some(random_uuid()),
        access_token: Some(random_uuid()),
        // Auth.js's `expires_at` is whole Unix seconds.
        access_token_expires: Some(now + Duration::days(30) + Duration::seconds(7)),
        token_type: Some("bearer".to_owned()),
        scope: Some("read:user user:email".to_owned()),
        id_token: Some(format!("eyJhbGciOiJSUzI1NiJ9.{}.sig", random_uuid())),
        session_state: Some(random_uuid()),
        extra: obj(serde_json::json!({
            "refresh_token_expires_in": 15_897_600,
            "nested": {"ok": true, "list": [1, 2, 3]}
        })),
    }
}

/// The `webauthn` account a passkey belongs to.
fn webauthn_account(credential_id: &str) -> NewAccount {
    NewAccount {
        provider_type: "webauthn".to_owned(),
        provider_id: "webauthn".to_owned(),
        provider_account_id: credential_id.to_owned(),
        ..NewAccount::default()
    }
}

/// A passkey of `user` with this credential id and counter.
fn passkey(user: &UserId, credential_id: &str, counter: u64) -> NewAuthenticator {
    NewAuthenticator {
        credential_id: credential_id.to_owned(),
        user_id: *user,
        provider_account_id: credential_id.to_owned(),
        credential_public_key: format!("pQECAyYgASFYI{}", random_uuid()),
        counter,
        credential_device_type: "multiDevice".to_owned(),
        credential_backed_up: true,
        transports: Some("internal,hybrid".to_owned()),
    }
}

/// Links the `webauthn` account and registers the passkey, as Auth.js's WebAuthn flow does.
fn register_passkey<S: Backend>(
    fx: &Fixture<S>,
    user: &UserId,
    credential_id: &str,
    counter: u64,
) -> Authenticator {
    fx.store
        .link_account(user, &webauthn_account(credential_id))
        .expect("link the webauthn account");
    fx.store
        .create_authenticator(&passkey(user, credential_id, counter))
        .expect("create_authenticator")
}

/// Creates a session with a random UUID token (Auth.js's `createSession`).
fn session_with<S: Backend>(fx: &Fixture<S>, user: &UserId, expires: DateTime<Utc>) -> Session {
    let s = NewSession {
        user_id: *user,
        session_token: random_uuid(),
        expires,
    };
    fx.store
        .create_session_with(&s)
        .expect("create_session_with")
}

/// Asserts that an account holds exactly what was linked.
fn assert_account_is(got: &Account, want: &NewAccount, user: &UserId, what: &str) {
    assert_eq!(got.user_id, *user, "{what}: user_id");
    assert_eq!(
        got.provider_type, want.provider_type,
        "{what}: provider_type"
    );
    assert_eq!(got.provider_id, want.provider_id, "{what}: provider_id");
    assert_eq!(
        got.provider_account_id, want.provider_account_id,
        "{what}: provider_account_id"
    );
    assert_eq!(
        got.refresh_token, want.refresh_token,
        "{what}: refresh_token"
    );
    assert_eq!(got.access_token, want.access_token, "{what}: access_token");
    assert_eq!(
        got.access_token_expires, want.access_token_expires,
        "{what}: access_token_expires"
    );
    assert_eq!(got.token_type, want.token_type, "{what}: token_type");
    assert_eq!(got.scope, want.scope, "{what}: scope");
    assert_eq!(got.id_token, want.id_token, "{what}: id_token");
    assert_eq!(
        got.session_state, want.session_state,
        "{what}: session_state"
    );
    assert_eq!(got.extra, want.extra, "{what}: extra");
}

/// Asserts that an authenticator holds exactly what was registered.
fn assert_authenticator_is(got: &Authenticator, want: &NewAuthenticator, what: &str) {
    assert_eq!(
        got.credential_id, want.credential_id,
        "{what}: credential_id"
    );
    assert_eq!(got.user_id, want.user_id, "{what}: user_id");
    assert_eq!(
        got.provider_account_id, want.provider_account_id,
        "{what}: provider_account_id"
    );
    assert_eq!(
        got.credential_public_key, want.credential_public_key,
        "{what}: credential_public_key"
    );
    assert_eq!(got.counter, want.counter, "{what}: counter");
    assert_eq!(
        got.credential_device_type, want.credential_device_type,
        "{what}: credential_device_type"
    );
    assert_eq!(
        got.credential_backed_up, want.credential_backed_up,
        "{what}: credential_backed_up"
    );
    assert_eq!(got.transports, want.transports, "{what}: transports");
}

/// The store's integrity report, which must be clean (its counts include expired rows).
fn report<S: Backend>(fx: &Fixture<S>) -> IntegrityReport {
    let r = fx.store.check_integrity().expect("check_integrity");
    assert!(r.is_clean(), "integrity problems:\n{r}");
    r
}

/// What a recording email provider's sender was given.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Mail {
    identifier: String,
    url: String,
    token: String,
    provider: String,
}

type Outbox = Arc<Mutex<Vec<Mail>>>;

/// An email provider (id `email`, default max age) whose sender records every mail.
fn recording_provider() -> (EmailProvider, Outbox) {
    let outbox: Outbox = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&outbox);
    let provider = EmailProvider::new("email", move |m| {
        sink.lock().expect("outbox lock").push(Mail {
            identifier: m.identifier.to_owned(),
            url: m.url.to_owned(),
            token: m.token.to_owned(),
            provider: m.provider.id().to_owned(),
        });
        Ok(())
    });
    (provider, outbox)
}

/// The mails sent so far.
fn sent(outbox: &Outbox) -> Vec<Mail> {
    outbox.lock().expect("outbox lock").clone()
}

/// An email provider whose sender always fails.
fn failing_provider() -> EmailProvider {
    EmailProvider::new("email", |_| Err("smtp is down".into()))
}

/// True for 64 lowercase hex characters.
fn is_lower_hex_64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}
