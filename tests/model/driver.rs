//! The driver: applies each [`Op`] to authdb and to the [`Reference`] model and compares.
//!
//! Results are compared in the model's vocabulary: the store's UUIDs are mapped to model ids
//! (a new UUID is bound to the id the model just handed out, or — for a record first seen by a
//! read, such as a link made through `create_verification_token` — to the id the model holds
//! for it), security stamps to the model's stamp numbers the same way, timestamps to
//! microseconds (which must be exact: no sub-microsecond part), errors to their kind. After
//! every top-level operation `check_integrity()` must be clean and its row counts must equal
//! the model's (so rows that are expired but still stored are compared too).
//! [`Driver::finish`] compares the whole state ([`Digest`]), reopens the file and compares it
//! again.
//!
//! The driver runs on a database file ([`Driver::new`]) or on any redb storage backend
//! ([`Driver::on_backend`]): the fault-injection harness (`fuzz/src/faults.rs`) gives it a disk
//! that starts failing. Then an unexpected error after the fault puts the operation *in doubt*
//! ([`InDoubt`]) instead of failing the run, and [`Driver::candidates`] gives the model states
//! the disk may hold: before the operation, after each of its intermediate commits, after it.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use authdb::prelude::*;
use authdb::{
    Account, AuthDb, Authenticator, Builder, Credentials, Durability, EmailProvider, EncryptionKey,
    Error, IntegrityReport, ManualClock, NewAccount, NewAuthenticator, NewSession, NewUser,
    PasswordParams, Session, SessionId, SessionInfo, User, UserId, UserPatch, VerificationRequest,
    VerificationToken, WebSession, WebSessionHandle, WebSessionId, WebSessionInfo, WriteTxn,
};
use chrono::{DateTime, Duration, Utc};
use parking_lot::Mutex;
use uuid::Uuid;

use super::ops::{
    ACCESS_TOKENS, ALL_FROM, BOGUS_FROM, BOGUS_SESSION_TOKEN, COUNTERS, CREDENTIAL_IDS, Case,
    Change, DEVICE_TYPES, EMAILS, EXPIRY_OFFSETS, ID_TOKENS, IMAGES, LINK_MAX_AGES, NAMES, Op,
    PASSWORD_COUNT, PROVIDER_ACCOUNT_IDS, PROVIDER_TYPES, PROVIDERS, PUBLIC_KEYS, REFRESH_TOKENS,
    SCOPES, SECRETS, SESSION_STATES, SESSION_TOKEN_COUNT, SETTINGS, STEPS, TOKEN_HASH_COUNT,
    TOKEN_TYPES, TOKENS, TRANSPORTS, URL, WEB_PURGE_BATCHES, WEB_SESSION_DATA_COUNT,
    WEB_SESSION_ID_COUNT, account_extra, password, patch_extra, session_token, token_hash,
    user_extra, web_session_data, web_session_id,
};
use super::reference::{
    Counts, LinkKey, MAccount, MAuthenticator, MErr, MPurge, MRequest, MResult, MSession,
    MSessionInfo, MToken, MUser, MWebInfo, MWebSession, Micros, NO_SESSION, NO_USER, Reference,
    Secret, micros_of,
};

/// The model id an unknown store id (or stamp) maps to: never equal to a real model id.
pub const UNKNOWN: u32 = u32::MAX - 1;

/// The user id that never existed.
pub fn bogus_user() -> UserId {
    UserId(Uuid::from_u128(0xB0605))
}

/// The session id that never existed.
pub fn bogus_session() -> SessionId {
    SessionId(Uuid::from_u128(0xB0605))
}

/// Where a run starts: 2030-01-01T12:00:00Z.
pub fn start() -> DateTime<Utc> {
    DateTime::from_timestamp(1_893_499_200, 0).expect("valid time")
}

/// A time with a sub-microsecond part (which the store truncates), `k` seconds after a base.
pub fn odd_time(k: u8) -> DateTime<Utc> {
    DateTime::from_timestamp(1_900_000_000 + i64::from(k), 987_654_321).expect("valid time")
}

pub fn from_micros(m: Micros) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(m).expect("valid time")
}

pub fn pick<'a>(domain: &[&'a str], ix: u8) -> &'a str {
    domain[usize::from(ix) % domain.len()]
}

/// A text field of `update_user` after `c`; `kept` is the stored value.
pub fn changed(c: Change, domain: &[&str], kept: Option<String>) -> Option<String> {
    match c {
        Change::Keep => kept,
        Change::Clear => None,
        Change::Set(i) => Some(pick(domain, i).to_owned()),
    }
}

/// A text field of a `UserPatch`: absent, cleared or set.
#[allow(clippy::option_option)]
pub fn patched(c: Change, domain: &[&str]) -> Option<Option<String>> {
    match c {
        Change::Keep => None,
        Change::Clear => Some(None),
        Change::Set(i) => Some(Some(pick(domain, i).to_owned())),
    }
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Row counts from an integrity report.
pub fn counts_of(r: &IntegrityReport) -> Counts {
    Counts {
        users: r.users,
        accounts: r.accounts,
        sessions: r.sessions,
        verification_requests: r.verification_requests,
        credentials: r.credentials,
        authenticators: r.authenticators,
        web_sessions: r.web_sessions,
    }
}

/// The web session operations, which `AuthDb` and `WriteTxn` offer as inherent methods (they
/// are not part of the Auth.js trait family).
pub trait WebSessions {
    fn web_create(&self, s: &WebSession) -> authdb::Result<bool>;
    fn web_save(&self, s: &WebSession) -> authdb::Result<()>;
    fn web_load(&self, id: &WebSessionId) -> authdb::Result<Option<WebSession>>;
    fn web_delete(&self, id: &WebSessionId) -> authdb::Result<bool>;
    fn web_list(&self, user: &UserId) -> authdb::Result<Vec<WebSessionInfo>>;
    fn web_delete_for_user(&self, user: &UserId) -> authdb::Result<u64>;
    fn web_delete_by_handle(&self, user: &UserId, h: &WebSessionHandle) -> authdb::Result<bool>;
    /// `AuthDb`: every expired record, in batches of `batch` (one commit each); `WriteTxn`:
    /// at most `batch` expired records.
    fn web_delete_expired(&self, batch: usize) -> authdb::Result<u64>;
}

macro_rules! web_sessions_for {
    ($t:ty) => {
        impl WebSessions for $t {
            fn web_create(&self, s: &WebSession) -> authdb::Result<bool> {
                self.web_session_create(s)
            }
            fn web_save(&self, s: &WebSession) -> authdb::Result<()> {
                self.web_session_save(s)
            }
            fn web_load(&self, id: &WebSessionId) -> authdb::Result<Option<WebSession>> {
                self.web_session_load(id)
            }
            fn web_delete(&self, id: &WebSessionId) -> authdb::Result<bool> {
                self.web_session_delete(id)
            }
            fn web_list(&self, user: &UserId) -> authdb::Result<Vec<WebSessionInfo>> {
                self.web_session_list_for_user(user)
            }
            fn web_delete_for_user(&self, user: &UserId) -> authdb::Result<u64> {
                self.web_session_delete_for_user(user)
            }
            fn web_delete_by_handle(
                &self,
                user: &UserId,
                h: &WebSessionHandle,
            ) -> authdb::Result<bool> {
                self.web_session_delete_by_handle(user, h)
            }
            fn web_delete_expired(&self, batch: usize) -> authdb::Result<u64> {
                self.web_session_delete_expired(batch)
            }
        }
    };
}
web_sessions_for!(AuthDb);
web_sessions_for!(WriteTxn<'_>);

/// What a leaf operation runs on: `AuthDb` or a write transaction.
pub trait Target: Adapter + WebSessions {
    /// Whether this is the database itself (operations commit on their own).
    fn is_db(&self) -> bool;
}

impl Target for AuthDb {
    fn is_db(&self) -> bool {
        true
    }
}

impl Target for WriteTxn<'_> {
    fn is_db(&self) -> bool {
        false
    }
}

/// Store values (UUIDs, stamps) ↔ model numbers of one kind.
pub struct IdMap<K> {
    to_model: HashMap<K, u32>,
    to_store: HashMap<u32, K>,
}

impl<K> Default for IdMap<K> {
    fn default() -> Self {
        Self {
            to_model: HashMap::new(),
            to_store: HashMap::new(),
        }
    }
}

impl<K: Copy + Eq + Hash> IdMap<K> {
    pub fn bind(&mut self, k: K, m: u32) {
        self.to_model.insert(k, m);
        self.to_store.insert(m, k);
    }

    /// The model number of a store value; an unknown value is bound to `expected` (the number
    /// the model just handed out, or holds for the record) if that is not bound yet.
    pub fn model(&mut self, k: K, expected: Option<u32>) -> u32 {
        if let Some(&m) = self.to_model.get(&k) {
            return m;
        }
        match expected {
            Some(m) if !self.to_store.contains_key(&m) => {
                self.bind(k, m);
                m
            }
            _ => UNKNOWN,
        }
    }

    /// The model number of a store value, without binding.
    pub fn known(&self, k: K) -> u32 {
        self.to_model.get(&k).copied().unwrap_or(UNKNOWN)
    }

    pub fn store(&self, m: u32) -> K {
        self.to_store[&m]
    }

    /// A model number as the store side can name it: itself if bound, else [`UNKNOWN`].
    pub fn seen(&self, m: u32) -> u32 {
        if self.to_store.contains_key(&m) {
            m
        } else {
            UNKNOWN
        }
    }
}

/// The ids the model handed out during one operation.
#[derive(Clone, Copy, Default)]
pub struct Fresh {
    pub user: Option<u32>,
    pub account: Option<u32>,
    pub session: Option<u32>,
    pub request: Option<u32>,
}

/// What the email provider's sender was given.
#[derive(Clone, PartialEq, Eq)]
struct Mail {
    identifier: String,
    url: String,
    token: String,
}

/// An operation failed because of an injected storage fault: its effect is in doubt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InDoubt;

/// What applying an operation gives: done (and compared), or in doubt.
pub type Applied = Result<(), InDoubt>;

/// A redb storage backend for the driver's database, instead of a file.
pub struct Backend {
    /// Opens the database with the driver's settings on (a handle to) the backend.
    pub open: Box<dyn Fn(Builder) -> authdb::Result<AuthDb>>,
    /// Whether the backend has started failing.
    pub faulted: Box<dyn Fn() -> bool>,
    /// How many times the backend's bytes were changed so far, if it counts: while the count
    /// stands still, the stored state (a function of the bytes) is unchanged, and the
    /// integrity check after an operation that wrote nothing is skipped (its result cannot
    /// differ from the last one).
    pub changes: Option<Box<dyn Fn() -> u64>>,
    /// redb's page cache size, if not the builder's default.
    pub cache_size: Option<usize>,
}

enum Storage {
    File(tempfile::TempDir),
    Backend(Backend),
}

/// The model states recorded for the operation in progress (fault-injection runs only).
#[derive(Default)]
struct History {
    before: Option<Reference>,
    points: Vec<Reference>,
}

/// Runs a case against a fresh database file and the model; panics on the first
/// disagreement. Returns what was run.
pub fn run(case: &Case, passwords: PasswordParams) -> Stats {
    run_driver(Driver::new(case.settings, passwords), case)
}

/// [`run`] on a storage backend that does not fail (the `ops` fuzz target's in-memory disk:
/// no file system calls).
pub fn run_on(case: &Case, passwords: PasswordParams, backend: Backend) -> Stats {
    let mut d = Driver::with_storage(Storage::Backend(backend), case.settings, passwords);
    d.open().expect("open the database");
    run_driver(d, case)
}

fn run_driver(mut d: Driver, case: &Case) -> Stats {
    for op in &case.ops {
        d.apply(op);
    }
    d.finish();
    d.stats
}

/// How many operations ran and how often each operation had each outcome (`"CreateUser:
/// Err(EmailTaken)"`, `"UpdateSession: Some"`...): to see what the random cases reach.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    /// Results compared, including those inside transactions and the final comparison.
    pub ops: usize,
    /// Outcome counts by operation and outcome.
    pub outcomes: BTreeMap<String, u64>,
}

impl Stats {
    /// Adds another run's counts.
    pub fn add(&mut self, other: &Stats) {
        self.ops += other.ops;
        for (k, v) in &other.outcomes {
            *self.outcomes.entry(k.clone()).or_default() += v;
        }
    }
}

/// A short name for an outcome: the error kind, `None`/`Some`, or `Ok`.
fn outcome<T: std::fmt::Debug>(r: &MResult<T>) -> String {
    let head = |s: String| {
        s.split(['(', ' ', '{'])
            .next()
            .unwrap_or_default()
            .to_owned()
    };
    match r {
        Err(e) => format!("Err({})", head(format!("{e:?}"))),
        Ok(v) => {
            let s = format!("{v:?}");
            if s == "None" || s == "[]" || s == "false" || s == "0" {
                "None/empty".to_owned()
            } else if s == "()" {
                "Ok".to_owned()
            } else {
                "Some/Ok".to_owned()
            }
        }
    }
}

/// One read of the whole-state comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    /// The integrity report's row counts.
    Counts,
    User(u32),
    Sessions(u32),
    Accounts(u32),
    Authenticators(u32),
    ByEmail(&'static str),
    SignIn(&'static str, u8),
    Owner(&'static str, &'static str),
    Account(&'static str, &'static str),
    Session(String),
    Request(&'static str, &'static str, &'static str),
    Authenticator(&'static str),
    /// `use_verification_token` for every identifier and hash, in a dropped transaction.
    Tokens,
    /// `web_session_load` of the web session id with this index.
    WebLoad(u8),
    /// `web_session_list_for_user`.
    WebList(u32),
}

/// The answer to one [`Query`], in the model's vocabulary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    Counts(Counts),
    User(Option<MUser>),
    Sessions(Vec<MSessionInfo>),
    Accounts(Vec<MAccount>),
    Authenticators(Vec<MAuthenticator>),
    /// The id of the user found.
    Owner(Option<u32>),
    SignIn(MResult<Option<u32>>),
    Account(Option<MAccount>),
    Session(Option<MSession>),
    Request(Option<MRequest>),
    Authenticator(Option<MAuthenticator>),
    Tokens(Vec<Option<MToken>>),
    WebSession(Option<MWebSession>),
    WebList(Vec<MWebInfo>),
}

/// What the whole store looks like through its public API: every query with its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digest(pub Vec<(Query, Seen)>);

impl Digest {
    /// The first query whose answers differ, described; `None` when equal.
    pub fn diff(&self, want: &Digest) -> Option<String> {
        if self == want {
            return None;
        }
        for ((q, a), (_, b)) in self.0.iter().zip(&want.0) {
            if a != b {
                let q = Driver::label(q);
                return Some(format!("{q}:\n  store: {a:?}\n  model: {b:?}"));
            }
        }
        Some(format!("{} answers against {}", self.0.len(), want.0.len()))
    }
}

/// A query, named when a message needs it.
struct LazyLabel<'a>(&'a Query);

/// One run: the database, the model and what maps between them.
pub struct Driver {
    storage: Storage,
    clock: Arc<ManualClock>,
    max_age: Micros,
    update_age: Micros,
    key: Option<EncryptionKey>,
    password_ends_sessions: bool,
    passwords: PasswordParams,
    db: Option<AuthDb>,
    /// The reference model.
    pub model: Reference,
    users: IdMap<Uuid>,
    accounts: IdMap<Uuid>,
    sessions: IdMap<Uuid>,
    requests: IdMap<Uuid>,
    stamps: IdMap<[u8; 16]>,
    /// Model ids of every user created so far (also deleted ones, and ones from dropped
    /// transactions), in creation order: what `user` indexes.
    users_seen: Vec<u32>,
    /// Every session token handed out so far with its model id: what `session` indexes.
    tokens: Vec<(String, u32)>,
    /// The access token each session token came with (derived from it: always the same).
    access: HashMap<String, String>,
    providers: Vec<EmailProvider>,
    send_ok: Arc<AtomicBool>,
    mail: Arc<Mutex<Vec<Mail>>>,
    /// Whether new store values may be bound to model numbers (off while digesting a disk
    /// image against candidate states).
    bind: bool,
    /// Inside a `Txn` (intermediate commits are not commits there).
    in_txn: bool,
    history: Option<History>,
    /// The backend's change count when integrity was last checked clean, and the row counts
    /// that check found.
    checked_at: Option<(u64, Counts)>,
    /// Operations applied so far.
    pub steps: usize,
    current: String,
    kind: &'static str,
    /// What ran.
    pub stats: Stats,
}

impl Driver {
    /// A fresh database file (on tmpfs when there is one) with settings `SETTINGS[settings]`,
    /// opened.
    pub fn new(settings: u8, passwords: PasswordParams) -> Self {
        let shm = std::path::Path::new("/dev/shm");
        let dir = if shm.is_dir() {
            tempfile::tempdir_in(shm).or_else(|_| tempfile::tempdir())
        } else {
            tempfile::tempdir()
        }
        .expect("temporary directory");
        let mut d = Self::with_storage(Storage::File(dir), settings, passwords);
        d.open().expect("open the database file");
        d
    }

    /// A driver whose database lives on `backend`, not opened yet ([`Driver::open`]). It
    /// records the model states a crash may leave ([`Driver::candidates`]).
    pub fn on_backend(settings: u8, passwords: PasswordParams, backend: Backend) -> Self {
        let mut d = Self::with_storage(Storage::Backend(backend), settings, passwords);
        d.history = Some(History::default());
        d
    }

    fn with_storage(storage: Storage, settings: u8, passwords: PasswordParams) -> Self {
        let settings = SETTINGS[usize::from(settings) % SETTINGS.len()];
        let (max_age, update_age) = (settings.max_age, settings.update_age);
        let clock = Arc::new(ManualClock::new(start()));
        let send_ok = Arc::new(AtomicBool::new(true));
        let mail = Arc::new(Mutex::new(Vec::new()));
        let providers = LINK_MAX_AGES
            .iter()
            .map(|&age| {
                let (ok, log) = (send_ok.clone(), mail.clone());
                EmailProvider::new("email", move |m| {
                    log.lock().push(Mail {
                        identifier: m.identifier.to_owned(),
                        url: m.url.to_owned(),
                        token: m.token.to_owned(),
                    });
                    if ok.load(Ordering::SeqCst) {
                        Ok(())
                    } else {
                        Err("model: the mail server is down".into())
                    }
                })
                .max_age(Duration::microseconds(age))
            })
            .collect();
        let mut users = IdMap::default();
        users.bind(bogus_user().0, NO_USER);
        let mut sessions = IdMap::default();
        sessions.bind(bogus_session().0, NO_SESSION);
        Self {
            storage,
            clock,
            max_age,
            update_age,
            key: settings
                .encryption_key
                .then(|| EncryptionKey::from_bytes([7; 32])),
            password_ends_sessions: settings.password_ends_sessions,
            passwords,
            db: None,
            model: Reference::new(
                micros_of(start()),
                max_age,
                update_age,
                settings.encryption_key,
                settings.password_ends_sessions,
            ),
            users,
            accounts: IdMap::default(),
            sessions,
            requests: IdMap::default(),
            stamps: IdMap::default(),
            users_seen: Vec::new(),
            tokens: Vec::new(),
            access: HashMap::new(),
            providers,
            send_ok,
            mail,
            bind: true,
            in_txn: false,
            history: None,
            checked_at: None,
            steps: 0,
            current: String::new(),
            kind: "",
            stats: Stats::default(),
        }
    }

    /// A builder with the run's settings. Durable commits: redb documents that a non-durable
    /// commit is persisted only by a later durable one; its clean close happens to do one, but
    /// that is not a documented promise, so the test does not lean on it. On tmpfs the fsync
    /// is free.
    pub fn builder(&self) -> Builder {
        let mut b = AuthDb::builder()
            .clock(self.clock.clone())
            .session_max_age(Duration::microseconds(self.max_age))
            .session_update_age(Duration::microseconds(self.update_age))
            .password_params(self.passwords)
            .password_change_ends_sessions(self.password_ends_sessions)
            .durability(Durability::Immediate)
            .verify_on_open(true);
        if let Some(k) = &self.key {
            b = b.encryption_key(k.clone());
        }
        if let Storage::Backend(Backend {
            cache_size: Some(c),
            ..
        }) = &self.storage
        {
            b = b.cache_size(*c);
        }
        b
    }

    /// Opens the database (again).
    pub fn open(&mut self) -> authdb::Result<()> {
        let b = self.builder();
        let db = match &self.storage {
            Storage::File(dir) => b.open(dir.path().join("model.redb"))?,
            Storage::Backend(be) => (be.open)(b)?,
        };
        self.db = Some(db);
        Ok(())
    }

    /// Drops the database handle.
    pub fn close(&mut self) {
        self.db = None;
    }

    fn faulted(&self) -> bool {
        match &self.storage {
            Storage::Backend(b) => (b.faulted)(),
            Storage::File(_) => false,
        }
    }

    /// The open database.
    pub fn db(&self) -> &AuthDb {
        self.db.as_ref().expect("database is open")
    }

    /// The store id of the `n`-th user created in this run.
    pub fn user_id(&self, n: usize) -> UserId {
        UserId(self.users.store(self.users_seen[n]))
    }

    /// The `n`-th session token handed out in this run.
    pub fn token(&self, n: usize) -> &str {
        &self.tokens[n].0
    }

    /// What the operation in progress was, for messages.
    pub fn current(&self) -> String {
        format!("step {}: {}", self.steps, self.current)
    }

    /// Applies one top-level operation, then checks integrity. Panics on a disagreement.
    pub fn apply(&mut self, op: &Op) {
        let applied = self.try_apply(op);
        assert!(
            applied.is_ok(),
            "{}: in doubt without an injected fault",
            self.current()
        );
    }

    /// Applies one top-level operation; then, unless the storage has faulted, checks
    /// integrity and row counts. `Err` when the operation is in doubt.
    pub fn try_apply(&mut self, op: &Op) -> Applied {
        if let Some(h) = &mut self.history {
            h.before = Some(self.model.clone());
            h.points.clear();
        }
        match op {
            Op::Txn { ops, commit } => self.txn(ops, *commit)?,
            Op::Reopen => self.reopen()?,
            Op::Purge => self.purge()?,
            leaf => {
                let db = self.db().clone();
                self.leaf(&db, leaf)?;
            }
        }
        if !self.faulted() {
            self.check_integrity();
        }
        Ok(())
    }

    /// The model states a disk may hold after the run, named: with an operation in doubt, the
    /// state before it, after each of its intermediate commits and after it; otherwise the
    /// acknowledged state. Time does not roll back: each has the clock of now.
    pub fn candidates(&self, in_doubt: bool) -> Vec<(String, Reference)> {
        let mut out = Vec::new();
        let h = self.history.as_ref();
        if in_doubt {
            let before = h.and_then(|h| h.before.clone());
            out.push((
                "before the operation in doubt".to_owned(),
                before.unwrap_or_else(|| self.model.clone()),
            ));
            for (i, p) in h.into_iter().flat_map(|h| &h.points).enumerate() {
                out.push((
                    format!("after commit {} of the operation in doubt", i + 1),
                    p.clone(),
                ));
            }
            out.push((
                "after the operation in doubt".to_owned(),
                self.model.clone(),
            ));
        } else {
            out.push(("acknowledged".to_owned(), self.model.clone()));
        }
        for (_, m) in &mut out {
            m.now = self.model.now;
        }
        out
    }

    fn reopen(&mut self) -> Applied {
        self.steps += 1;
        "Reopen".clone_into(&mut self.current);
        self.kind = "Reopen";
        self.db = None;
        match self.open() {
            Ok(()) => Ok(()),
            Err(_) if self.faulted() => Err(InDoubt),
            Err(e) => panic!("{}: reopening failed: {e}", self.current()),
        }
    }

    fn txn(&mut self, ops: &[Op], commit: bool) -> Applied {
        let db = self.db().clone();
        self.model.begin();
        self.in_txn = true;
        let mut inner: Applied = Ok(());
        let ended: authdb::Result<()> = if ops.len() % 2 == 1 {
            // `AuthDb::write`: committed when the closure returns `Ok`.
            db.write(|tx| {
                let tx = &*tx;
                for op in ops.iter().filter(|op| op.is_leaf()) {
                    inner = self.leaf(tx, op);
                    if inner.is_err() {
                        return Err(Error::InvalidConfig("model: in doubt"));
                    }
                }
                if commit {
                    Ok(())
                } else {
                    Err(Error::InvalidConfig("model: roll back"))
                }
            })
        } else {
            match db.begin_write() {
                Err(e) => {
                    assert!(self.faulted(), "begin_write failed without a fault: {e}");
                    inner = Err(InDoubt);
                    Err(e)
                }
                Ok(tx) => {
                    for op in ops.iter().filter(|op| op.is_leaf()) {
                        inner = self.leaf(&tx, op);
                        if inner.is_err() {
                            break;
                        }
                    }
                    if commit && inner.is_ok() {
                        tx.commit()
                    } else {
                        drop(tx);
                        Err(Error::InvalidConfig("model: roll back"))
                    }
                }
            }
        };
        self.in_txn = false;
        if inner.is_err() {
            // Failed before the commit: nothing of the transaction can be on disk.
            self.model.end(false);
            return Err(InDoubt);
        }
        match ended {
            Ok(()) => {
                assert!(
                    commit,
                    "{}: a dropped transaction committed",
                    self.current()
                );
                self.model.end(true);
                Ok(())
            }
            Err(Error::InvalidConfig(_)) if !commit => {
                self.model.end(false);
                Ok(())
            }
            Err(_) if self.faulted() => {
                // The commit may or may not have reached the disk.
                self.model.end(true);
                Err(InDoubt)
            }
            Err(e) => panic!("{}: the transaction's commit failed: {e}", self.current()),
        }
    }

    /// Marks an intermediate commit of the operation in progress (an `AuthDb` operation that
    /// commits more than once: a failed send, `purge_expired`).
    fn commit_point(&mut self) {
        if !self.in_txn
            && let Some(h) = &mut self.history
        {
            h.points.push(self.model.clone());
        }
    }

    // ---- comparing -----------------------------------------------------------------------

    /// Compares a store result with the model's. An unexpected error after an injected fault
    /// puts the operation in doubt instead.
    fn expect<T: PartialEq + std::fmt::Debug>(
        &mut self,
        got: &MResult<T>,
        want: &MResult<T>,
    ) -> Applied {
        if let Err(MErr::Unexpected(_)) = got
            && self.faulted()
        {
            return Err(InDoubt);
        }
        self.stats.ops += 1;
        let key = format!("{}: {}", self.kind, outcome(want));
        *self.stats.outcomes.entry(key).or_default() += 1;
        // Several invalid inputs: the store reports one of them.
        if let (Err(e), Err(MErr::OneOf(options))) = (got, want)
            && options.contains(e)
        {
            return Ok(());
        }
        assert_eq!(
            got,
            want,
            "{}: store (left) and model (right) disagree",
            self.current()
        );
        Ok(())
    }

    fn err(&self, e: &Error) -> MErr {
        match e {
            Error::EmailTaken => MErr::EmailTaken,
            Error::AccountLinkedToAnotherUser => MErr::AccountLinkedToAnotherUser,
            Error::VerificationTokenTaken => MErr::VerificationTokenTaken,
            Error::SessionTokenTaken => MErr::SessionTokenTaken,
            Error::AuthenticatorTaken => MErr::AuthenticatorTaken,
            Error::AuthenticatorNotFound => MErr::AuthenticatorNotFound,
            Error::CounterNotIncreased { stored, given } => MErr::CounterNotIncreased {
                stored: *stored,
                given: *given,
            },
            Error::UserNotFound(id) => MErr::UserNotFound(self.users.known(id.0)),
            Error::InvalidInput { field, problem } => MErr::InvalidInput {
                field,
                problem: *problem,
            },
            Error::InvalidValue { field, .. } => MErr::InvalidValue { field },
            Error::SendFailed(_) => MErr::SendFailed,
            Error::EncryptionKeyRequired => MErr::EncryptionKeyRequired,
            other => MErr::Unexpected(other.to_string()),
        }
    }

    /// A stored timestamp: whole microseconds.
    fn exact(&self, t: DateTime<Utc>) -> Micros {
        assert_eq!(
            t.timestamp_subsec_nanos() % 1000,
            0,
            "{}: timestamp finer than a microsecond",
            self.current()
        );
        micros_of(t)
    }

    fn v7(&self, u: Uuid) -> Uuid {
        assert_eq!(
            u.get_version_num(),
            7,
            "{}: store ids are UUID v7",
            self.current()
        );
        u
    }

    /// A store user in model terms. Its stamp is bound to the stamp number the model holds
    /// for the user now, if both are new.
    fn user(&mut self, u: &User, fresh: Option<u32>) -> MUser {
        let id = self.users.model(self.v7(u.id.0), fresh);
        let expected = self
            .model
            .peek_user(id)
            .map(|m| m.stamp)
            .filter(|_| self.bind);
        MUser {
            id,
            name: u.name.clone(),
            email: u.email.clone(),
            image: u.image.clone(),
            email_verified: u.email_verified.map(|t| self.exact(t)),
            extra: u.extra.clone(),
            stamp: self.stamps.model(u.security_stamp, expected),
            created_at: self.exact(u.created_at),
            updated_at: self.exact(u.updated_at),
        }
    }

    fn account(&mut self, a: &Account, fresh: Option<u32>) -> MAccount {
        MAccount {
            id: self.accounts.model(self.v7(a.id.0), fresh),
            user: self.users.known(a.user_id.0),
            provider_type: a.provider_type.clone(),
            provider_id: a.provider_id.clone(),
            provider_account_id: a.provider_account_id.clone(),
            refresh_token: a.refresh_token.clone().map(Secret),
            access_token: a.access_token.clone().map(Secret),
            access_token_expires: a.access_token_expires.map(|t| self.exact(t)),
            token_type: a.token_type.clone(),
            scope: a.scope.clone(),
            id_token: a.id_token.clone().map(Secret),
            session_state: a.session_state.clone(),
            extra: a.extra.clone(),
            created_at: self.exact(a.created_at),
            updated_at: self.exact(a.updated_at),
        }
    }

    fn session(&mut self, s: &Session, fresh: Option<u32>) -> MSession {
        MSession {
            id: self.sessions.model(self.v7(s.id.0), fresh),
            user: self.users.known(s.user_id.0),
            expires: self.exact(s.expires),
            session_token: Secret(s.session_token.clone()),
            access_token: Secret(s.access_token.clone()),
            created_at: self.exact(s.created_at),
            updated_at: self.exact(s.updated_at),
        }
    }

    fn session_info(&self, s: &SessionInfo) -> MSessionInfo {
        MSessionInfo {
            id: self.sessions.known(s.id.0),
            user: self.users.known(s.user_id.0),
            expires: self.exact(s.expires),
            created_at: self.exact(s.created_at),
            updated_at: self.exact(s.updated_at),
        }
    }

    fn request(&mut self, r: &VerificationRequest, expected: Option<u32>) -> MRequest {
        let expected = expected.filter(|_| self.bind);
        MRequest {
            id: self.requests.model(self.v7(r.id.0), expected),
            identifier: r.identifier.clone(),
            token: Secret(r.token.clone()),
            expires: self.exact(r.expires),
            created_at: self.exact(r.created_at),
            updated_at: self.exact(r.updated_at),
        }
    }

    fn vtoken(&self, t: &VerificationToken) -> MToken {
        MToken {
            identifier: t.identifier.clone(),
            token: Secret(t.token.clone()),
            expires: self.exact(t.expires),
        }
    }

    fn authenticator(&self, a: &Authenticator) -> MAuthenticator {
        MAuthenticator {
            credential_id: a.credential_id.clone(),
            user: self.users.known(a.user_id.0),
            provider_account_id: a.provider_account_id.clone(),
            credential_public_key: a.credential_public_key.clone(),
            counter: a.counter,
            credential_device_type: a.credential_device_type.clone(),
            credential_backed_up: a.credential_backed_up,
            transports: a.transports.clone(),
            created_at: self.exact(a.created_at),
            updated_at: self.exact(a.updated_at),
        }
    }

    /// A loaded web session in model terms; it must carry the id asked for.
    fn web_session(&self, w: &WebSession, id: &WebSessionId) -> MWebSession {
        use sha2::Digest as _;
        assert!(
            w.id == *id,
            "{}: web_session_load returned another id",
            self.current()
        );
        MWebSession {
            user: w.user_id.map(|u| self.users.known(u.0)),
            expires: self.exact(w.expires),
            data: (w.data.len(), sha2::Sha256::digest(&w.data).into()),
        }
    }

    fn web_info(&self, i: &WebSessionInfo) -> MWebInfo {
        MWebInfo {
            handle: i.handle.to_string(),
            user: i.user_id.map(|u| self.users.known(u.0)),
            expires: self.exact(i.expires),
            created_at: self.exact(i.created_at),
            updated_at: self.exact(i.updated_at),
            data_len: i.data_len,
        }
    }

    /// The web session a create or save passes, and the model user it names.
    fn new_web_session(
        &self,
        id: u8,
        user: Option<u8>,
        expires: u8,
        data: u8,
    ) -> (WebSession, Option<u32>) {
        let user = user.map(|u| self.user_ref(u));
        let s = WebSession {
            id: WebSessionId::from_bytes(web_session_id(id)),
            user_id: user.map(|(uid, _)| uid),
            expires: self.expiry(expires),
            data: web_session_data(data % WEB_SESSION_DATA_COUNT),
        };
        (s, user.map(|(_, m)| m))
    }

    /// A store list of authenticators: checked to be oldest first, then with ties in
    /// `created_at` ordered by credential id (the order among ties is not specified).
    fn authenticators(&self, list: &[Authenticator]) -> Vec<MAuthenticator> {
        let mut out: Vec<MAuthenticator> = list.iter().map(|a| self.authenticator(a)).collect();
        assert!(
            out.windows(2).all(|w| w[0].created_at <= w[1].created_at),
            "{}: authenticators are listed oldest first",
            self.current()
        );
        out.sort_by(|a, b| (a.created_at, &a.credential_id).cmp(&(b.created_at, &b.credential_id)));
        out
    }

    fn map<T, U>(&mut self, r: authdb::Result<T>, f: impl FnOnce(&mut Self, T) -> U) -> MResult<U> {
        match r {
            Ok(v) => Ok(f(self, v)),
            Err(e) => Err(self.err(&e)),
        }
    }

    /// Runs the model side of an operation and reports the ids it handed out.
    fn model_op<T>(&mut self, f: impl FnOnce(&mut Reference) -> T) -> (T, Fresh) {
        let before = self.model.next_ids();
        let out = f(&mut self.model);
        let after = self.model.next_ids();
        let fresh = Fresh {
            user: (after.0 > before.0).then_some(before.0),
            account: (after.1 > before.1).then_some(before.1),
            session: (after.2 > before.2).then_some(before.2),
            request: (after.3 > before.3).then_some(before.3),
        };
        (out, fresh)
    }

    fn check_integrity(&mut self) {
        let changes = match &self.storage {
            Storage::Backend(Backend {
                changes: Some(c), ..
            }) => Some(c()),
            _ => None,
        };
        let counts = match (changes, self.checked_at) {
            // Nothing written since the last clean check: the same report, without walking.
            (Some(now), Some((then, counts))) if now == then => counts,
            _ => {
                let r = self.db().check_integrity().expect("check_integrity");
                assert!(r.is_clean(), "{}: integrity problems:\n{r}", self.current());
                counts_of(&r)
            }
        };
        // The model's rows must match even when the store wrote nothing (a write it skipped).
        assert_eq!(
            counts,
            self.model.counts(),
            "{}: stored rows: store (left) and model (right) disagree",
            self.current()
        );
        self.checked_at = changes.map(|c| (c, counts));
    }

    // ---- resolving indices ---------------------------------------------------------------

    fn user_ref(&self, ix: u8) -> (UserId, u32) {
        let pool: Vec<u32> = if ix < ALL_FROM {
            self.users_seen
                .iter()
                .copied()
                .filter(|m| self.model.peek_user(*m).is_some())
                .collect()
        } else {
            self.users_seen.clone()
        };
        if ix >= BOGUS_FROM || pool.is_empty() {
            return (bogus_user(), NO_USER);
        }
        let m = pool[pool.len() - 1 - usize::from(ix) % pool.len()];
        (UserId(self.users.store(m)), m)
    }

    fn session_ref(&self, ix: u8) -> (String, SessionId, u32) {
        let pool: Vec<&(String, u32)> = self
            .tokens
            .iter()
            .filter(|(t, _)| ix >= ALL_FROM || self.model.peek_session(t).is_some())
            .collect();
        if ix >= BOGUS_FROM || pool.is_empty() {
            return (BOGUS_SESSION_TOKEN.to_owned(), bogus_session(), NO_SESSION);
        }
        let (t, m) = pool[pool.len() - 1 - usize::from(ix) % pool.len()];
        (t.clone(), SessionId(self.sessions.store(*m)), *m)
    }

    /// A caller-chosen session token: from the domain, or (from [`ALL_FROM`]) one handed out
    /// before.
    fn new_session_token(&self, ix: u8) -> String {
        if ix >= ALL_FROM && !self.tokens.is_empty() {
            let n = self.tokens.len();
            self.tokens[n - 1 - usize::from(ix) % n].0.clone()
        } else {
            session_token(ix)
        }
    }

    /// A caller-chosen expiry: `EXPIRY_OFFSETS[ix]` after now, plus a sub-microsecond part.
    fn expiry(&self, ix: u8) -> DateTime<Utc> {
        let offset = EXPIRY_OFFSETS[usize::from(ix) % EXPIRY_OFFSETS.len()];
        from_micros(self.model.now + offset) + Duration::nanoseconds(987)
    }

    /// Checks the access token a session token came with: 64 lowercase hex characters, not
    /// the session token, and the same every time this session token is used.
    fn check_access_token(&mut self, session_token: &str, access_token: &str) {
        assert!(
            is_hex64(access_token) && access_token != session_token,
            "{}: an access token is 64 lowercase hex characters, unlike the session token",
            self.current()
        );
        let context = self.current();
        let known = self
            .access
            .entry(session_token.to_owned())
            .or_insert_with(|| access_token.to_owned());
        assert_eq!(
            known, access_token,
            "{context}: the access token is derived from the session token"
        );
    }

    // ---- operations ----------------------------------------------------------------------

    /// Applies one operation that both `AuthDb` and a write transaction offer.
    fn leaf(&mut self, a: &dyn Target, op: &Op) -> Applied {
        self.steps += 1;
        self.current = format!("{op:?}");
        self.kind = op.name();
        match *op {
            Op::CreateUser {
                email,
                name,
                image,
                verified,
                extra,
            } => self.create_user(
                a,
                &NewUser {
                    name: name.map(|i| pick(&NAMES, i).to_owned()),
                    email: email.map(|i| pick(&EMAILS, i).to_owned()),
                    image: image.map(|i| pick(&IMAGES, i).to_owned()),
                    email_verified: verified.map(odd_time),
                    extra: user_extra(extra),
                },
            ),
            Op::GetUser { user } => self.get_user(a, self.user_ref(user)),
            Op::GetUserByEmail { email } => self.get_user_by_email(a, pick(&EMAILS, email)),
            Op::GetUserByAccount {
                provider,
                account,
                authjs,
            } => self.get_user_by_account(
                a,
                pick(&PROVIDERS, provider),
                pick(&PROVIDER_ACCOUNT_IDS, account),
                authjs,
            ),
            Op::GetUserByCredentials { email, password: p } => {
                self.get_user_by_credentials(a, pick(&EMAILS, email), &password(p))
            }
            Op::UpdateUser {
                user,
                email,
                name,
                image,
                verified,
                extra,
            } => {
                let (uid, m) = self.user_ref(user);
                let cur = self.model.peek_user(m).cloned();
                let cur = cur.as_ref();
                let profile = NewUser {
                    name: changed(name, &NAMES, cur.and_then(|u| u.name.clone())),
                    email: changed(email, &EMAILS, cur.and_then(|u| u.email.clone())),
                    image: changed(image, &IMAGES, cur.and_then(|u| u.image.clone())),
                    email_verified: match verified {
                        Change::Keep => cur.and_then(|u| u.email_verified).map(from_micros),
                        Change::Clear => None,
                        Change::Set(i) => Some(odd_time(i)),
                    },
                    extra: match extra {
                        Change::Keep => cur.map(|u| u.extra.clone()).unwrap_or_default(),
                        Change::Clear => authdb::Extra::new(),
                        Change::Set(i) => user_extra(i),
                    },
                };
                self.update_user(a, (uid, m), &profile)
            }
            Op::PatchUser {
                user,
                email,
                name,
                image,
                verified,
                extra,
            } => {
                let patch = UserPatch {
                    name: patched(name, &NAMES),
                    email: patched(email, &EMAILS),
                    image: patched(image, &IMAGES),
                    email_verified: match verified {
                        Change::Keep => None,
                        Change::Clear => Some(None),
                        Change::Set(i) => Some(Some(odd_time(i))),
                    },
                    extra: extra.map(patch_extra),
                };
                self.patch_user(a, self.user_ref(user), &patch)
            }
            Op::DeleteUser { user } => self.delete_user(a, self.user_ref(user)),
            Op::SetPassword { user, password: p } => {
                self.set_password(a, self.user_ref(user), &password(p))
            }
            Op::LinkAccount {
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
            } => {
                let opt = |v: Option<u8>, domain: &[&str]| v.map(|i| pick(domain, i).to_owned());
                let acc = NewAccount {
                    provider_type: pick(&PROVIDER_TYPES, provider_type).to_owned(),
                    provider_id: pick(&PROVIDERS, provider).to_owned(),
                    provider_account_id: pick(&PROVIDER_ACCOUNT_IDS, account).to_owned(),
                    refresh_token: opt(refresh, &REFRESH_TOKENS),
                    access_token: opt(access, &ACCESS_TOKENS),
                    access_token_expires: expires.map(odd_time),
                    token_type: opt(token_type, &TOKEN_TYPES),
                    scope: opt(scope, &SCOPES),
                    id_token: opt(id_token, &ID_TOKENS),
                    session_state: opt(session_state, &SESSION_STATES),
                    extra: account_extra(extra),
                };
                self.link_account(a, self.user_ref(user), &acc)
            }
            Op::UnlinkAccount {
                user,
                provider,
                account,
            } => self.unlink_account(
                a,
                self.user_ref(user),
                pick(&PROVIDERS, provider),
                pick(&PROVIDER_ACCOUNT_IDS, account),
            ),
            Op::UnlinkAccountByProvider { provider, account } => self.unlink_account_by_provider(
                a,
                pick(&PROVIDERS, provider),
                pick(&PROVIDER_ACCOUNT_IDS, account),
            ),
            Op::GetAccount { provider, account } => self.get_account(
                a,
                pick(&PROVIDERS, provider),
                pick(&PROVIDER_ACCOUNT_IDS, account),
            ),
            Op::ListAccounts { user } => self.list_accounts(a, self.user_ref(user)),
            Op::CreateSession { user } => self.create_session(a, self.user_ref(user)),
            Op::CreateSessionWith {
                user,
                token,
                expires,
            } => {
                let t = self.new_session_token(token);
                let e = self.expiry(expires);
                self.create_session_with(a, self.user_ref(user), &t, e)
            }
            Op::GetSession { session } => {
                let (t, ..) = self.session_ref(session);
                self.get_session(a, &t)
            }
            Op::GetSessionAndUser { session } => {
                let (t, ..) = self.session_ref(session);
                self.get_session_and_user(a, &t)
            }
            Op::UpdateSession {
                session,
                force,
                stale,
            } => {
                let (t, ..) = self.session_ref(session);
                self.update_session(a, &t, force, stale)
            }
            Op::SetSessionExpiry { session, expires } => {
                let (t, ..) = self.session_ref(session);
                let e = self.expiry(expires);
                self.set_session_expiry(a, &t, e)
            }
            Op::DeleteSession { session } => {
                let (t, ..) = self.session_ref(session);
                self.delete_session(a, &t)
            }
            Op::DeleteSessionReturning { session } => {
                let (t, ..) = self.session_ref(session);
                self.delete_session_returning(a, &t)
            }
            Op::ListSessions { user } => self.list_sessions(a, self.user_ref(user)),
            Op::DeleteSessions { user } => self.delete_sessions(a, self.user_ref(user)),
            Op::DeleteSessionById { user, session } => {
                let (_, sid, sm) = self.session_ref(session);
                self.delete_session_by_id(a, self.user_ref(user), (sid, sm))
            }
            Op::CreateVerification {
                identifier,
                token,
                secret,
                send_ok,
                max_age,
            } => self.create_request(
                a,
                pick(&EMAILS, identifier),
                pick(&TOKENS, token),
                pick(&SECRETS, secret),
                send_ok,
                usize::from(max_age) % LINK_MAX_AGES.len(),
            ),
            Op::GetVerification {
                identifier,
                token,
                secret,
            } => self.get_request(
                a,
                pick(&EMAILS, identifier),
                pick(&TOKENS, token),
                pick(&SECRETS, secret),
            ),
            Op::DeleteVerification {
                identifier,
                token,
                secret,
            } => self.delete_request(
                a,
                pick(&EMAILS, identifier),
                pick(&TOKENS, token),
                pick(&SECRETS, secret),
            ),
            Op::UseVerification {
                identifier,
                token,
                secret,
            } => self.use_request(
                a,
                pick(&EMAILS, identifier),
                pick(&TOKENS, token),
                pick(&SECRETS, secret),
            ),
            Op::CreateVerificationToken {
                identifier,
                hash,
                expires,
            } => {
                let e = self.expiry(expires);
                self.create_token(a, pick(&EMAILS, identifier), &token_hash(hash), e)
            }
            Op::UseVerificationToken { identifier, hash } => {
                self.use_token(a, pick(&EMAILS, identifier), &token_hash(hash))
            }
            Op::CreateAuthenticator {
                user,
                credential,
                account,
                key,
                counter,
                device,
                backed_up,
                transports,
            } => {
                let (user_id, m) = self.user_ref(user);
                let new = NewAuthenticator {
                    credential_id: pick(&CREDENTIAL_IDS, credential).to_owned(),
                    user_id,
                    provider_account_id: pick(&PROVIDER_ACCOUNT_IDS, account).to_owned(),
                    credential_public_key: pick(&PUBLIC_KEYS, key).to_owned(),
                    counter: COUNTERS[usize::from(counter) % COUNTERS.len()],
                    credential_device_type: pick(&DEVICE_TYPES, device).to_owned(),
                    credential_backed_up: backed_up,
                    transports: transports.map(|i| pick(&TRANSPORTS, i).to_owned()),
                };
                self.create_authenticator(a, m, &new)
            }
            Op::GetAuthenticator { credential } => {
                self.get_authenticator(a, pick(&CREDENTIAL_IDS, credential))
            }
            Op::ListAuthenticators { user } => self.list_authenticators(a, self.user_ref(user)),
            Op::UpdateAuthenticatorCounter {
                credential,
                counter,
            } => self.update_counter(
                a,
                pick(&CREDENTIAL_IDS, credential),
                COUNTERS[usize::from(counter) % COUNTERS.len()],
            ),
            Op::WebSessionCreate {
                id,
                user,
                expires,
                data,
            } => {
                let (s, m) = self.new_web_session(id, user, expires, data);
                let got = a.web_create(&s);
                let got = self.map(got, |_, b| b);
                let want = self
                    .model
                    .web_create(s.id.to_bytes(), m, s.expires, &s.data);
                self.expect(&got, &want)
            }
            Op::WebSessionSave {
                id,
                user,
                expires,
                data,
            } => {
                let (s, m) = self.new_web_session(id, user, expires, data);
                let got = a.web_save(&s);
                let got = self.map(got, |_, ()| ());
                let want = self.model.web_save(s.id.to_bytes(), m, s.expires, &s.data);
                self.expect(&got, &want)
            }
            Op::WebSessionLoad { id } => {
                let id = WebSessionId::from_bytes(web_session_id(id));
                let got = a.web_load(&id);
                let got = self.map(got, |d, w| w.map(|w| d.web_session(&w, &id)));
                let want = Ok(self.model.web_load(&id.to_bytes()));
                self.expect(&got, &want)
            }
            Op::WebSessionDelete { id } => {
                let id = WebSessionId::from_bytes(web_session_id(id));
                let got = a.web_delete(&id);
                let got = self.map(got, |_, b| b);
                let want = Ok(self.model.web_delete(&id.to_bytes()));
                self.expect(&got, &want)
            }
            Op::WebSessionDeleteExpired { batch } => {
                let batch = WEB_PURGE_BATCHES[usize::from(batch) % WEB_PURGE_BATCHES.len()];
                let got = a.web_delete_expired(batch);
                let want = if a.is_db() {
                    // Batches of `batch` (0: the default) records, one commit each, until a
                    // batch comes up short.
                    let size = if batch == 0 {
                        authdb::web_sessions::WEB_SESSION_PURGE_BATCH
                    } else {
                        batch
                    };
                    let mut total = 0;
                    loop {
                        let n = self.model.web_purge_batch(size);
                        total += n;
                        if n < size as u64 {
                            break;
                        }
                        self.commit_point();
                    }
                    total
                } else {
                    self.model.web_purge_batch(batch)
                };
                let got = self.map(got, |_, n| n);
                self.expect(&got, &Ok(want))
            }
            Op::WebSessionList { user } => {
                let (uid, m) = self.user_ref(user);
                let got = a.web_list(&uid);
                let got = self.map(got, |d, l| {
                    l.iter().map(|i| d.web_info(i)).collect::<Vec<_>>()
                });
                let want = Ok(self.model.web_list(m));
                self.expect(&got, &want)
            }
            Op::WebSessionDeleteForUser { user } => {
                let (uid, m) = self.user_ref(user);
                let got = a.web_delete_for_user(&uid);
                let got = self.map(got, |_, n| n);
                let want = Ok(self.model.web_delete_for_user(m));
                self.expect(&got, &want)
            }
            Op::WebSessionDeleteByHandle { user, id } => {
                let (uid, m) = self.user_ref(user);
                let id = WebSessionId::from_bytes(web_session_id(id));
                let got = a.web_delete_by_handle(&uid, &WebSessionHandle::of(&id));
                let got = self.map(got, |_, b| b);
                let want = Ok(self.model.web_delete_by_handle(m, &id.to_bytes()));
                self.expect(&got, &want)
            }
            Op::Advance { step } => {
                let d = STEPS[usize::from(step) % STEPS.len()].micros();
                self.clock.advance(Duration::microseconds(d));
                self.model.now += d;
                Ok(())
            }
            // Not available inside a transaction (and handled by `try_apply` outside one).
            Op::Purge | Op::Txn { .. } | Op::Reopen => Ok(()),
        }
    }

    fn create_user(&mut self, a: &dyn Adapter, profile: &NewUser) -> Applied {
        let got = a.create_user(profile);
        let (want, fresh) = self.model_op(|m| m.create_user(profile));
        let got = self.map(got, |d, u| d.user(&u, fresh.user));
        if let Ok(u) = &got
            && Some(u.id) == fresh.user
        {
            self.users_seen.push(u.id);
        }
        self.expect(&got, &want)
    }

    fn get_user(&mut self, a: &dyn Adapter, (uid, m): (UserId, u32)) -> Applied {
        let got = a.get_user(&uid);
        let got = self.map(got, |d, u| u.map(|u| d.user(&u, None)));
        let want = Ok(self.model.get_user(m));
        self.expect(&got, &want)
    }

    fn get_user_by_email(&mut self, a: &dyn Adapter, email: &str) -> Applied {
        let got = a.get_user_by_email(email);
        let got = self.map(got, |d, u| u.map(|u| d.user(&u, None)));
        let want = Ok(self.model.get_user_by_email(email));
        self.expect(&got, &want)
    }

    fn get_user_by_account(
        &mut self,
        a: &dyn Adapter,
        provider: &str,
        account: &str,
        authjs: bool,
    ) -> Applied {
        let got = if authjs {
            a.get_user_by_account(provider, account)
        } else {
            a.get_user_by_provider_account_id(provider, account)
        };
        let got = self.map(got, |d, u| u.map(|u| d.user(&u, None)));
        let want = Ok(self.model.get_user_by_account(provider, account));
        self.expect(&got, &want)
    }

    fn get_user_by_credentials(&mut self, a: &dyn Adapter, email: &str, password: &str) -> Applied {
        let got = a.get_user_by_credentials(&Credentials {
            email: email.to_owned(),
            password: password.to_owned(),
        });
        let got = self.map(got, |d, u| u.map(|u| d.user(&u, None)));
        let want = self.model.get_user_by_credentials(email, password);
        self.expect(&got, &want)
    }

    fn update_user(&mut self, a: &dyn Adapter, (uid, m): (UserId, u32), p: &NewUser) -> Applied {
        // The caller's copy carries wrong timestamps and a wrong stamp: the store keeps
        // `created_at` and the stamp and sets `updated_at` itself.
        let user = User {
            id: uid,
            name: p.name.clone(),
            email: p.email.clone(),
            image: p.image.clone(),
            email_verified: p.email_verified,
            extra: p.extra.clone(),
            security_stamp: [0x5A; 16],
            created_at: DateTime::UNIX_EPOCH,
            updated_at: DateTime::UNIX_EPOCH,
        };
        let got = a.update_user(&user);
        let want = self.model.update_user(m, p);
        let got = self.map(got, |d, u| d.user(&u, None));
        self.expect(&got, &want)
    }

    fn patch_user(&mut self, a: &dyn Adapter, (uid, m): (UserId, u32), p: &UserPatch) -> Applied {
        let got = a.patch_user(&uid, p);
        let want = self.model.patch_user(m, p);
        let got = self.map(got, |d, u| d.user(&u, None));
        self.expect(&got, &want)
    }

    fn delete_user(&mut self, a: &dyn Adapter, (uid, m): (UserId, u32)) -> Applied {
        let got = a.delete_user(&uid);
        let got = self.map(got, |_, ()| ());
        self.model.delete_user(m);
        self.expect(&got, &Ok(()))
    }

    fn set_password(
        &mut self,
        a: &dyn Adapter,
        (uid, m): (UserId, u32),
        password: &str,
    ) -> Applied {
        let got = a.set_password(&uid, password);
        let got = self.map(got, |_, ()| ());
        let want = self.model.set_password(m, password);
        self.expect(&got, &want)
    }

    fn link_account(
        &mut self,
        a: &dyn Adapter,
        (uid, m): (UserId, u32),
        acc: &NewAccount,
    ) -> Applied {
        let got = a.link_account(&uid, acc);
        let (want, fresh) = self.model_op(|r| r.link_account(m, acc));
        let got = self.map(got, |d, a| d.account(&a, fresh.account));
        self.expect(&got, &want)
    }

    fn unlink_account(
        &mut self,
        a: &dyn Adapter,
        (uid, m): (UserId, u32),
        provider: &str,
        account: &str,
    ) -> Applied {
        let got = a.unlink_account(&uid, provider, account);
        let got = self.map(got, |_, ()| ());
        self.model.unlink_account(m, provider, account);
        self.expect(&got, &Ok(()))
    }

    fn unlink_account_by_provider(
        &mut self,
        a: &dyn Adapter,
        provider: &str,
        account: &str,
    ) -> Applied {
        let got = a.unlink_account_by_provider(provider, account);
        let got = self.map(got, |d, a| a.map(|a| d.account(&a, None)));
        let want = Ok(self.model.unlink_account_by_provider(provider, account));
        self.expect(&got, &want)
    }

    fn get_account(&mut self, a: &dyn Adapter, provider: &str, account: &str) -> Applied {
        let got = a.get_account(provider, account);
        let got = self.map(got, |d, a| a.map(|a| d.account(&a, None)));
        let want = Ok(self.model.get_account(provider, account));
        self.expect(&got, &want)
    }

    fn list_accounts(&mut self, a: &dyn Adapter, (uid, m): (UserId, u32)) -> Applied {
        let got = a.list_accounts(&uid);
        let got = self.map(got, |d, l| {
            l.iter().map(|a| d.account(a, None)).collect::<Vec<_>>()
        });
        let want = Ok(self.model.list_accounts(m));
        self.expect(&got, &want)
    }

    fn create_session(&mut self, a: &dyn Adapter, (uid, m): (UserId, u32)) -> Applied {
        let got = a.create_session(&uid);
        let (token, access) = match &got {
            Ok(s) => {
                assert!(
                    is_hex64(&s.session_token),
                    "{}: generated session tokens are 64 lowercase hex characters",
                    self.current()
                );
                assert!(
                    self.tokens.iter().all(|(t, _)| *t != s.session_token),
                    "{}: a session token was handed out twice",
                    self.current()
                );
                self.check_access_token(&s.session_token, &s.access_token);
                (s.session_token.clone(), s.access_token.clone())
            }
            // Unknown (refused, or in doubt): never looked up by token.
            Err(_) => (String::from("(none)"), String::new()),
        };
        let (want, fresh) = self.model_op(|r| r.create_session(m, &token, &access));
        let got = self.map(got, |d, s| d.session(&s, fresh.session));
        if let Ok(s) = &got
            && Some(s.id) == fresh.session
        {
            self.tokens.push((token, s.id));
        }
        self.expect(&got, &want)
    }

    fn create_session_with(
        &mut self,
        a: &dyn Adapter,
        (uid, m): (UserId, u32),
        token: &str,
        expires: DateTime<Utc>,
    ) -> Applied {
        let got = a.create_session_with(&NewSession {
            user_id: uid,
            session_token: token.to_owned(),
            expires,
        });
        let access = match &got {
            Ok(s) => {
                assert_eq!(
                    s.session_token,
                    token,
                    "{}: the session carries the caller's token",
                    self.current()
                );
                self.check_access_token(token, &s.access_token);
                s.access_token.clone()
            }
            Err(_) => match self.access.get(token) {
                Some(known) => known.clone(),
                // In doubt: the session may be on disk, with the access token derived from
                // its token. Derive it the same way (a scratch store) to compare later.
                None if self.faulted() => derived_access_token(token, self.passwords),
                None => String::new(),
            },
        };
        let (want, fresh) = self.model_op(|r| r.create_session_with(m, token, &access, expires));
        let got = self.map(got, |d, s| d.session(&s, fresh.session));
        if let Ok(s) = &got
            && Some(s.id) == fresh.session
        {
            self.tokens.push((token.to_owned(), s.id));
        }
        self.expect(&got, &want)
    }

    fn get_session(&mut self, a: &dyn Adapter, token: &str) -> Applied {
        let got = a.get_session(token);
        let got = self.map(got, |d, s| s.map(|s| d.session(&s, None)));
        let want = self.model.get_session(token);
        self.expect(&got, &Ok(want))
    }

    fn get_session_and_user(&mut self, a: &dyn Adapter, token: &str) -> Applied {
        let got = a.get_session_and_user(token);
        let got = self.map(got, |d, su| {
            su.map(|(s, u)| (d.session(&s, None), d.user(&u, None)))
        });
        let want = self.model.get_session_and_user(token);
        self.expect(&got, &Ok(want))
    }

    fn update_session(
        &mut self,
        a: &dyn Adapter,
        token: &str,
        force: bool,
        stale: bool,
    ) -> Applied {
        // The caller's copy: either what the model holds, or wrong in every field but the
        // token. The store must work from the stored session either way.
        let current = self.model.peek_session(token).filter(|_| !stale);
        let arg = match current {
            Some(s) => Session {
                id: SessionId(self.sessions.store(s.id)),
                user_id: UserId(self.users.store(s.user)),
                expires: from_micros(s.expires),
                session_token: token.to_owned(),
                access_token: s.access_token.0,
                created_at: from_micros(s.created_at),
                updated_at: from_micros(s.updated_at),
            },
            None => Session {
                id: bogus_session(),
                user_id: bogus_user(),
                expires: DateTime::from_timestamp(4_102_444_800, 0).expect("valid time"),
                session_token: token.to_owned(),
                access_token: "0".repeat(64),
                created_at: DateTime::UNIX_EPOCH,
                updated_at: DateTime::UNIX_EPOCH,
            },
        };
        let got = a.update_session(&arg, force);
        let got = self.map(got, |d, s| s.map(|s| d.session(&s, None)));
        let want = self.model.update_session(token, force);
        self.expect(&got, &Ok(want))
    }

    fn set_session_expiry(
        &mut self,
        a: &dyn Adapter,
        token: &str,
        expires: DateTime<Utc>,
    ) -> Applied {
        let got = a.set_session_expiry(token, expires);
        let got = self.map(got, |d, s| s.map(|s| d.session(&s, None)));
        let want = self.model.set_session_expiry(token, expires);
        self.expect(&got, &Ok(want))
    }

    fn delete_session(&mut self, a: &dyn Adapter, token: &str) -> Applied {
        let got = a.delete_session(token);
        let got = self.map(got, |_, ()| ());
        self.model.delete_session(token);
        self.expect(&got, &Ok(()))
    }

    fn delete_session_returning(&mut self, a: &dyn Adapter, token: &str) -> Applied {
        let got = a.delete_session_returning(token);
        let got = self.map(got, |d, s| s.map(|s| d.session(&s, None)));
        let want = self.model.delete_session_returning(token);
        self.expect(&got, &Ok(want))
    }

    fn list_sessions(&mut self, a: &dyn Adapter, (uid, m): (UserId, u32)) -> Applied {
        let got = a.list_sessions(&uid);
        let got = self.map(got, |d, l| {
            l.iter().map(|s| d.session_info(s)).collect::<Vec<_>>()
        });
        let want = Ok(self.model.list_sessions(m));
        self.expect(&got, &want)
    }

    fn delete_sessions(&mut self, a: &dyn Adapter, (uid, m): (UserId, u32)) -> Applied {
        let got = a.delete_sessions(&uid);
        let got = self.map(got, |_, n| n);
        let want = self.model.delete_sessions(m);
        self.expect(&got, &Ok(want))
    }

    fn delete_session_by_id(
        &mut self,
        a: &dyn Adapter,
        (uid, m): (UserId, u32),
        (sid, sm): (SessionId, u32),
    ) -> Applied {
        let got = a.delete_session_by_id(&uid, &sid);
        let got = self.map(got, |_, b| b);
        let want = self.model.delete_session_by_id(m, sm);
        self.expect(&got, &Ok(want))
    }

    fn create_request(
        &mut self,
        a: &dyn Adapter,
        identifier: &str,
        token: &str,
        secret: &str,
        send_ok: bool,
        max_age: usize,
    ) -> Applied {
        self.mail.lock().clear();
        let recipient = self.model.mail_recipient(identifier);
        self.send_ok.store(send_ok, Ordering::SeqCst);
        let provider = self.providers[max_age].clone();
        let got = a.create_verification_request(identifier, URL, token, secret, &provider);
        self.send_ok.store(true, Ordering::SeqCst);
        let (inserted, fresh) = self
            .model_op(|r| r.create_request(identifier, URL, token, secret, LINK_MAX_AGES[max_age]));
        // Stored (and, on `AuthDb`, committed), then sent; if the sender fails, the request is
        // removed again (in a second commit).
        let sent = inserted.is_ok();
        let want = match inserted {
            Ok(_) if !send_ok => {
                self.commit_point();
                self.model.delete_request(identifier, token, secret);
                Err(MErr::SendFailed)
            }
            other => other,
        };
        let got = self.map(got, |d, r| d.request(&r, fresh.request));
        self.expect(&got, &want)?;
        let mail = std::mem::take(&mut *self.mail.lock());
        let expected = Mail {
            identifier: recipient,
            url: URL.to_owned(),
            token: token.to_owned(),
        };
        assert!(
            mail.len() == usize::from(sent) && mail.iter().all(|m| *m == expected),
            "{}: the sender was called {} times, expected {} (with the recipient, URL and raw \
             token)",
            self.current(),
            mail.len(),
            usize::from(sent)
        );
        Ok(())
    }

    fn get_request(
        &mut self,
        a: &dyn Adapter,
        identifier: &str,
        token: &str,
        secret: &str,
    ) -> Applied {
        let expected = self.model.peek_link(&LinkKey::v3(token, secret));
        let got = a.get_verification_request(identifier, token, secret, &self.providers[0]);
        let got = self.map(got, |d, r| r.map(|r| d.request(&r, expected)));
        let want = self.model.get_request(identifier, token, secret);
        self.expect(&got, &Ok(want))
    }

    fn delete_request(
        &mut self,
        a: &dyn Adapter,
        identifier: &str,
        token: &str,
        secret: &str,
    ) -> Applied {
        let got = a.delete_verification_request(identifier, token, secret, &self.providers[0]);
        let got = self.map(got, |_, ()| ());
        self.model.delete_request(identifier, token, secret);
        self.expect(&got, &Ok(()))
    }

    fn use_request(
        &mut self,
        a: &dyn Adapter,
        identifier: &str,
        token: &str,
        secret: &str,
    ) -> Applied {
        let expected = self.model.peek_link(&LinkKey::v3(token, secret));
        let got = a.use_verification_request(identifier, token, secret);
        let got = self.map(got, |d, r| r.map(|r| d.request(&r, expected)));
        let want = self.model.use_request(identifier, token, secret);
        self.expect(&got, &Ok(want))
    }

    fn create_token(
        &mut self,
        a: &dyn Adapter,
        identifier: &str,
        hash: &str,
        expires: DateTime<Utc>,
    ) -> Applied {
        let got = a.create_verification_token(&VerificationToken {
            identifier: identifier.to_owned(),
            token: hash.to_owned(),
            expires,
        });
        let got = self.map(got, |d, t| d.vtoken(&t));
        let want = self.model.create_token(identifier, hash, expires);
        self.expect(&got, &want)
    }

    fn use_token(&mut self, a: &dyn Adapter, identifier: &str, hash: &str) -> Applied {
        let got = a.use_verification_token(identifier, hash);
        let got = self.map(got, |d, t| t.map(|t| d.vtoken(&t)));
        let want = self.model.use_token(identifier, hash);
        self.expect(&got, &Ok(want))
    }

    fn create_authenticator(&mut self, a: &dyn Adapter, m: u32, new: &NewAuthenticator) -> Applied {
        let got = a.create_authenticator(new);
        let got = self.map(got, |d, a| d.authenticator(&a));
        let want = self.model.create_authenticator(
            &new.credential_id,
            m,
            &new.provider_account_id,
            &new.credential_public_key,
            new.counter,
            &new.credential_device_type,
            new.credential_backed_up,
            new.transports.as_deref(),
        );
        self.expect(&got, &want)
    }

    fn get_authenticator(&mut self, a: &dyn Adapter, credential_id: &str) -> Applied {
        let got = a.get_authenticator(credential_id);
        let got = self.map(got, |d, a| a.map(|a| d.authenticator(&a)));
        let want = Ok(self.model.get_authenticator(credential_id));
        self.expect(&got, &want)
    }

    fn list_authenticators(&mut self, a: &dyn Adapter, (uid, m): (UserId, u32)) -> Applied {
        let got = a.list_authenticators(&uid);
        let got = self.map(got, |d, l| d.authenticators(&l));
        let want = Ok(self.model.list_authenticators(m));
        self.expect(&got, &want)
    }

    fn update_counter(&mut self, a: &dyn Adapter, credential_id: &str, counter: u64) -> Applied {
        let got = a.update_authenticator_counter(credential_id, counter);
        let got = self.map(got, |d, a| d.authenticator(&a));
        let want = self
            .model
            .update_authenticator_counter(credential_id, counter);
        self.expect(&got, &want)
    }

    fn purge(&mut self) -> Applied {
        self.steps += 1;
        "Purge".clone_into(&mut self.current);
        self.kind = "Purge";
        let got = self.db().purge_expired();
        // Sessions are purged and committed first, then links, then web sessions.
        let sessions = self.model.purge_sessions();
        self.commit_point();
        let verification_requests = self.model.purge_requests();
        self.commit_point();
        let web_sessions = self.model.purge_web();
        let got = self.map(got, |_, p| MPurge {
            sessions: p.sessions,
            verification_requests: p.verification_requests,
            web_sessions: p.web_sessions,
        });
        self.expect(
            &got,
            &Ok(MPurge {
                sessions,
                verification_requests,
                web_sessions,
            }),
        )
    }

    // ---- the whole state -----------------------------------------------------------------

    /// Compares everything observable, reopens the file and compares again.
    pub fn finish(&mut self) {
        self.compare_all("final state");
        self.db = None;
        self.open().expect("reopen the database file");
        self.compare_all("final state after reopening");
    }

    fn compare_all(&mut self, label: &str) {
        self.kind = "final";
        label.clone_into(&mut self.current);
        let db = self.db().clone();
        let report = db.check_integrity().expect("check_integrity");
        assert!(report.is_clean(), "{label}: integrity problems:\n{report}");
        let got = self.digest_store(&db, counts_of(&report), true);
        let mut model = self.model.clone();
        let want = self.digest_model(&mut model);
        self.model = model;
        self.stats.ops += got.0.len();
        if let Some(diff) = got.diff(&want) {
            panic!(
                "{label} (after step {}): store and model disagree on {diff}",
                self.steps
            );
        }
        // Every stored user is one the driver knows.
        for m in self.model.user_ids() {
            assert!(
                self.users_seen.contains(&m),
                "model user {m} was never seen"
            );
        }
    }

    /// The reads of a whole-state comparison, in order.
    fn queries(&self) -> Vec<Query> {
        let mut q = vec![Query::Counts];
        for &u in self.users_seen.iter().chain(&[NO_USER]) {
            q.extend([
                Query::User(u),
                Query::Sessions(u),
                Query::Accounts(u),
                Query::Authenticators(u),
                Query::WebList(u),
            ]);
        }
        for e in EMAILS {
            q.push(Query::ByEmail(e));
            q.extend((0..PASSWORD_COUNT).map(|p| Query::SignIn(e, p)));
        }
        for p in PROVIDERS {
            for acc in PROVIDER_ACCOUNT_IDS {
                q.extend([Query::Owner(p, acc), Query::Account(p, acc)]);
            }
        }
        let mut tokens: Vec<String> = self.tokens.iter().map(|(t, _)| t.clone()).collect();
        tokens.extend((0..SESSION_TOKEN_COUNT).map(session_token));
        tokens.push(BOGUS_SESSION_TOKEN.to_owned());
        let mut seen = std::collections::HashSet::new();
        q.extend(
            tokens
                .into_iter()
                .filter(|t| seen.insert(t.clone()))
                .map(Query::Session),
        );
        for e in EMAILS {
            for t in TOKENS {
                for s in SECRETS {
                    q.push(Query::Request(e, t, s));
                }
            }
        }
        q.extend(CREDENTIAL_IDS.iter().map(|c| Query::Authenticator(c)));
        q.push(Query::Tokens);
        q.extend((0..WEB_SESSION_ID_COUNT).map(Query::WebLoad));
        q
    }

    fn label(q: &Query) -> String {
        match q {
            Query::Session(t) => format!("Session(token {:?})", Secret(t.clone())),
            other => format!("{other:?}"),
        }
    }

    /// Everything observable in `db`, in the model's vocabulary. With `bind`, store values
    /// seen for the first time are bound to what the driver's model holds (the driver's own
    /// comparison); without, they map to [`UNKNOWN`] (a disk image against candidate states).
    pub fn digest_store(&mut self, db: &AuthDb, counts: Counts, bind: bool) -> Digest {
        fn ok<T>(r: authdb::Result<T>, what: &LazyLabel<'_>) -> T {
            r.unwrap_or_else(|e| panic!("digest: {}: {e}", Driver::label(what.0)))
        }
        let before = std::mem::replace(&mut self.bind, bind);
        let mut out = Vec::new();
        for q in self.queries() {
            // Named only in a panic message.
            let what = LazyLabel(&q);
            let seen = match &q {
                Query::Counts => Seen::Counts(counts),
                Query::User(m) => {
                    let u = ok(db.get_user(&UserId(self.users.store(*m))), &what);
                    Seen::User(u.map(|u| self.user(&u, None)))
                }
                Query::Sessions(m) => {
                    let l = ok(db.list_sessions(&UserId(self.users.store(*m))), &what);
                    Seen::Sessions(l.iter().map(|s| self.session_info(s)).collect())
                }
                Query::Accounts(m) => {
                    let l = ok(db.list_accounts(&UserId(self.users.store(*m))), &what);
                    Seen::Accounts(l.iter().map(|a| self.account(a, None)).collect())
                }
                Query::Authenticators(m) => {
                    let l = ok(db.list_authenticators(&UserId(self.users.store(*m))), &what);
                    Seen::Authenticators(self.authenticators(&l))
                }
                Query::ByEmail(e) => {
                    let u = ok(db.get_user_by_email(e), &what);
                    Seen::Owner(u.map(|u| self.users.known(u.id.0)))
                }
                Query::SignIn(e, p) => {
                    let r = db.get_user_by_credentials(&Credentials {
                        email: (*e).to_owned(),
                        password: password(*p),
                    });
                    Seen::SignIn(self.map(r, |d, u| u.map(|u| d.users.known(u.id.0))))
                }
                Query::Owner(p, acc) => {
                    let u = ok(db.get_user_by_account(p, acc), &what);
                    Seen::Owner(u.map(|u| self.users.known(u.id.0)))
                }
                Query::Account(p, acc) => {
                    let a = ok(db.get_account(p, acc), &what);
                    Seen::Account(a.map(|a| self.account(&a, None)))
                }
                Query::Session(t) => {
                    let s = ok(db.get_session(t), &what);
                    Seen::Session(s.map(|s| self.session(&s, None)))
                }
                Query::Request(e, t, s) => {
                    let expected = self.model.peek_link(&LinkKey::v3(t, s));
                    let r = ok(
                        db.get_verification_request(e, t, s, &self.providers[0]),
                        &what,
                    );
                    Seen::Request(r.map(|r| self.request(&r, expected)))
                }
                Query::Authenticator(c) => {
                    let a = ok(db.get_authenticator(c), &what);
                    Seen::Authenticator(a.map(|a| self.authenticator(&a)))
                }
                Query::Tokens => {
                    let tx = ok(db.begin_write(), &what);
                    let mut all = Vec::new();
                    for e in EMAILS {
                        for h in 0..TOKEN_HASH_COUNT {
                            let t = ok(tx.use_verification_token(e, &token_hash(h)), &what);
                            all.push(t.map(|t| self.vtoken(&t)));
                        }
                    }
                    drop(tx);
                    Seen::Tokens(all)
                }
                Query::WebLoad(i) => {
                    let id = WebSessionId::from_bytes(web_session_id(*i));
                    let w = ok(db.web_session_load(&id), &what);
                    Seen::WebSession(w.map(|w| self.web_session(&w, &id)))
                }
                Query::WebList(m) => {
                    let l = ok(
                        db.web_session_list_for_user(&UserId(self.users.store(*m))),
                        &what,
                    );
                    Seen::WebList(l.iter().map(|i| self.web_info(i)).collect())
                }
            };
            out.push((q, seen));
        }
        self.bind = before;
        Digest(out)
    }

    /// The same digest from a model (which it mutates as the store's reads mutate the store:
    /// expired sessions and links found by token are deleted).
    pub fn digest_model(&self, m: &mut Reference) -> Digest {
        let user = |mut u: MUser| {
            u.id = self.users.seen(u.id);
            u.stamp = self.stamps.seen(u.stamp);
            u
        };
        let account = |mut a: MAccount| {
            a.id = self.accounts.seen(a.id);
            a.user = self.users.seen(a.user);
            a
        };
        let info = |mut s: MSessionInfo| {
            s.id = self.sessions.seen(s.id);
            s.user = self.users.seen(s.user);
            s
        };
        let authenticator = |mut a: MAuthenticator| {
            a.user = self.users.seen(a.user);
            a
        };
        let mut out = Vec::new();
        for q in self.queries() {
            let seen = match &q {
                Query::Counts => Seen::Counts(m.counts()),
                Query::User(u) => Seen::User(m.get_user(*u).map(user)),
                Query::Sessions(u) => {
                    Seen::Sessions(m.list_sessions(*u).into_iter().map(info).collect())
                }
                Query::Accounts(u) => {
                    Seen::Accounts(m.list_accounts(*u).into_iter().map(account).collect())
                }
                Query::Authenticators(u) => Seen::Authenticators(
                    m.list_authenticators(*u)
                        .into_iter()
                        .map(authenticator)
                        .collect(),
                ),
                Query::ByEmail(e) => {
                    Seen::Owner(m.get_user_by_email(e).map(|u| self.users.seen(u.id)))
                }
                Query::SignIn(e, p) => Seen::SignIn(
                    m.get_user_by_credentials(e, &password(*p))
                        .map(|u| u.map(|u| self.users.seen(u.id))),
                ),
                Query::Owner(p, acc) => {
                    Seen::Owner(m.get_user_by_account(p, acc).map(|u| self.users.seen(u.id)))
                }
                Query::Account(p, acc) => Seen::Account(m.get_account(p, acc).map(account)),
                Query::Session(t) => Seen::Session(m.get_session(t).map(|mut s| {
                    s.id = self.sessions.seen(s.id);
                    s.user = self.users.seen(s.user);
                    s
                })),
                Query::Request(e, t, s) => Seen::Request(m.get_request(e, t, s).map(|mut r| {
                    r.id = self.requests.seen(r.id);
                    r
                })),
                Query::Authenticator(c) => {
                    Seen::Authenticator(m.get_authenticator(c).map(authenticator))
                }
                Query::Tokens => {
                    m.begin();
                    let mut all = Vec::new();
                    for e in EMAILS {
                        for h in 0..TOKEN_HASH_COUNT {
                            all.push(m.use_token(e, &token_hash(h)));
                        }
                    }
                    m.end(false);
                    Seen::Tokens(all)
                }
                Query::WebLoad(i) => {
                    Seen::WebSession(m.web_load(&web_session_id(*i)).map(|mut w| {
                        w.user = w.user.map(|u| self.users.seen(u));
                        w
                    }))
                }
                Query::WebList(u) => Seen::WebList(
                    m.web_list(*u)
                        .into_iter()
                        .map(|mut i| {
                            i.user = i.user.map(|u| self.users.seen(u));
                            i
                        })
                        .collect(),
                ),
            };
            out.push((q, seen));
        }
        Digest(out)
    }
}

/// The access token a store derives from `session_token` (for a session created while a fault
/// put its result in doubt): made by a scratch in-memory store.
fn derived_access_token(session_token: &str, passwords: PasswordParams) -> String {
    let db = AuthDb::builder()
        .password_params(passwords)
        .in_memory()
        .expect("scratch store");
    let user = db.create_user(&NewUser::default()).expect("scratch user");
    db.create_session_with(&NewSession {
        user_id: user.id,
        session_token: session_token.to_owned(),
        expires: start(),
    })
    .map(|s| s.access_token)
    .unwrap_or_default()
}
