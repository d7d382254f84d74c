//! The driver: applies each [`Op`] to authdb and to the [`Reference`] model and compares.
//!
//! Results are compared in the model's vocabulary: the store's UUIDs are mapped to model ids
//! (a new UUID is bound to the id the model just handed out), timestamps to microseconds
//! (which must be exact: no sub-microsecond part), errors to their kind. After every
//! top-level operation `check_integrity()` must be clean and its row counts must equal the
//! model's (so rows that are expired but still stored are compared too). [`Driver::finish`]
//! compares the whole state, reopens the file and compares it again.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use authdb::{
    Adapter, AuthDb, Credentials, Durability, EmailProvider, EncryptionKey, Error, ManualClock,
    NewAccount, NewUser, PasswordParams, Session, SessionId, SessionInfo, User, UserId,
    VerificationRequest, WriteTxn,
};
use chrono::{DateTime, Duration, Utc};
use parking_lot::Mutex;
use uuid::Uuid;

use super::ops::{
    ACCESS_TOKENS, ALL_FROM, BOGUS_FROM, BOGUS_SESSION_TOKEN, Case, Change, EMAILS, IMAGES,
    LINK_MAX_AGES, NAMES, Op, PROVIDER_ACCOUNT_IDS, PROVIDER_TYPES, PROVIDERS, REFRESH_TOKENS,
    SECRETS, SETTINGS, STEPS, TOKENS, URL, password,
};
use super::reference::{
    Counts, MAccount, MErr, MPurge, MRequest, MResult, MSession, MSessionInfo, MUser, Micros,
    NO_SESSION, NO_USER, Reference, Secret, micros_of,
};

/// The model id an unknown store id maps to: never equal to a real model id.
pub(crate) const UNKNOWN: u32 = u32::MAX - 1;

/// The user id that never existed.
pub(crate) fn bogus_user() -> UserId {
    UserId(Uuid::from_u128(0xB0605))
}

/// The session id that never existed.
pub(crate) fn bogus_session() -> SessionId {
    SessionId(Uuid::from_u128(0xB0605))
}

/// Where a run starts: 2030-01-01T12:00:00Z.
pub(crate) fn start() -> DateTime<Utc> {
    DateTime::from_timestamp(1_893_499_200, 0).expect("valid time")
}

/// A time with a sub-microsecond part (which the store truncates), `k` seconds after a base.
pub(crate) fn odd_time(k: u8) -> DateTime<Utc> {
    DateTime::from_timestamp(1_900_000_000 + i64::from(k), 987_654_321).expect("valid time")
}

pub(crate) fn from_micros(m: Micros) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(m).expect("valid time")
}

pub(crate) fn pick<'a>(domain: &[&'a str], ix: u8) -> &'a str {
    domain[usize::from(ix) % domain.len()]
}

/// A text field of `update_user` after `c`; `kept` is the stored value.
pub(crate) fn changed(c: Change, domain: &[&str], kept: Option<String>) -> Option<String> {
    match c {
        Change::Keep => kept,
        Change::Clear => None,
        Change::Set(i) => Some(pick(domain, i).to_owned()),
    }
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Store UUIDs ↔ model ids of one kind.
#[derive(Default)]
pub(crate) struct IdMap {
    to_model: HashMap<Uuid, u32>,
    to_store: HashMap<u32, Uuid>,
}

impl IdMap {
    pub(crate) fn bind(&mut self, u: Uuid, m: u32) {
        self.to_model.insert(u, m);
        self.to_store.insert(m, u);
    }

    /// The model id of a store id; an unknown id is bound to `fresh` (the id the model just
    /// handed out), if any, and must be a UUID v7.
    pub(crate) fn model(&mut self, u: Uuid, fresh: Option<u32>) -> u32 {
        if let Some(&m) = self.to_model.get(&u) {
            return m;
        }
        match fresh {
            Some(m) if !self.to_store.contains_key(&m) => {
                assert_eq!(u.get_version_num(), 7, "store ids are UUID v7");
                self.bind(u, m);
                m
            }
            _ => UNKNOWN,
        }
    }

    pub(crate) fn known(&self, u: Uuid) -> u32 {
        self.to_model.get(&u).copied().unwrap_or(UNKNOWN)
    }

    pub(crate) fn store(&self, m: u32) -> Uuid {
        self.to_store[&m]
    }

    /// A model id as the store side can name it: itself if bound, else [`UNKNOWN`].
    pub(crate) fn seen(&self, m: u32) -> u32 {
        if m == NO_USER || self.to_store.contains_key(&m) {
            m
        } else {
            UNKNOWN
        }
    }
}

/// The ids the model handed out during one operation.
#[derive(Clone, Copy, Default)]
pub(crate) struct Fresh {
    pub(crate) user: Option<u32>,
    pub(crate) account: Option<u32>,
    pub(crate) session: Option<u32>,
    pub(crate) request: Option<u32>,
}

/// What the email provider's sender was given.
#[derive(Clone, PartialEq, Eq)]
struct Mail {
    identifier: String,
    url: String,
    token: String,
}

/// The operations authdb offers besides the `Adapter` trait, on `AuthDb` and on `WriteTxn`.
pub(crate) trait Extras {
    fn set_password(&self, u: &UserId, p: &str) -> authdb::Result<()>;
    fn use_request(&self, i: &str, t: &str, s: &str)
    -> authdb::Result<Option<VerificationRequest>>;
    fn list_sessions(&self, u: &UserId) -> authdb::Result<Vec<SessionInfo>>;
    fn delete_sessions(&self, u: &UserId) -> authdb::Result<u64>;
    fn delete_session_by_id(&self, u: &UserId, s: &SessionId) -> authdb::Result<bool>;
}

impl Extras for AuthDb {
    fn set_password(&self, u: &UserId, p: &str) -> authdb::Result<()> {
        AuthDb::set_password(self, u, p)
    }
    fn use_request(
        &self,
        i: &str,
        t: &str,
        s: &str,
    ) -> authdb::Result<Option<VerificationRequest>> {
        self.use_verification_request(i, t, s)
    }
    fn list_sessions(&self, u: &UserId) -> authdb::Result<Vec<SessionInfo>> {
        AuthDb::list_sessions(self, u)
    }
    fn delete_sessions(&self, u: &UserId) -> authdb::Result<u64> {
        AuthDb::delete_sessions(self, u)
    }
    fn delete_session_by_id(&self, u: &UserId, s: &SessionId) -> authdb::Result<bool> {
        AuthDb::delete_session_by_id(self, u, s)
    }
}

impl Extras for WriteTxn<'_> {
    fn set_password(&self, u: &UserId, p: &str) -> authdb::Result<()> {
        WriteTxn::set_password(self, u, p)
    }
    fn use_request(
        &self,
        i: &str,
        t: &str,
        s: &str,
    ) -> authdb::Result<Option<VerificationRequest>> {
        self.use_verification_request(i, t, s)
    }
    fn list_sessions(&self, u: &UserId) -> authdb::Result<Vec<SessionInfo>> {
        WriteTxn::list_sessions(self, u)
    }
    fn delete_sessions(&self, u: &UserId) -> authdb::Result<u64> {
        WriteTxn::delete_sessions(self, u)
    }
    fn delete_session_by_id(&self, u: &UserId, s: &SessionId) -> authdb::Result<bool> {
        WriteTxn::delete_session_by_id(self, u, s)
    }
}

/// Runs a case against a fresh database file and the model; panics on the first
/// disagreement. Returns what was run.
pub fn run(case: &Case, passwords: PasswordParams) -> Stats {
    let mut d = Driver::new(case.settings, passwords);
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
    /// Operations applied, including those inside transactions and the final comparison.
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

/// One run: the database, the model and what maps between them.
pub struct Driver {
    dir: tempfile::TempDir,
    clock: Arc<ManualClock>,
    max_age: Micros,
    update_age: Micros,
    key: Option<EncryptionKey>,
    passwords: PasswordParams,
    db: Option<AuthDb>,
    /// The reference model.
    pub model: Reference,
    users: IdMap,
    accounts: IdMap,
    sessions: IdMap,
    requests: IdMap,
    /// Model ids of every user created so far (also deleted ones, and ones from dropped
    /// transactions), in creation order: what `user` indexes.
    users_seen: Vec<u32>,
    /// Every session token handed out so far with its model id: what `session` indexes.
    tokens: Vec<(String, u32)>,
    providers: Vec<EmailProvider>,
    send_ok: Arc<AtomicBool>,
    mail: Arc<Mutex<Vec<Mail>>>,
    /// Operations applied so far.
    pub steps: usize,
    current: String,
    kind: &'static str,
    /// What ran.
    pub stats: Stats,
}

impl Driver {
    /// A fresh database file (on tmpfs when there is one) with settings `SETTINGS[settings]`.
    pub fn new(settings: u8, passwords: PasswordParams) -> Self {
        let (max_age, update_age, with_key) = SETTINGS[usize::from(settings) % SETTINGS.len()];
        let shm = std::path::Path::new("/dev/shm");
        let dir = if shm.is_dir() {
            tempfile::tempdir_in(shm).or_else(|_| tempfile::tempdir())
        } else {
            tempfile::tempdir()
        }
        .expect("temporary directory");
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
        let mut d = Self {
            dir,
            clock,
            max_age,
            update_age,
            key: with_key.then(|| EncryptionKey::from_bytes([7; 32])),
            passwords,
            db: None,
            model: Reference::new(micros_of(start()), max_age, update_age, with_key),
            users,
            accounts: IdMap::default(),
            sessions,
            requests: IdMap::default(),
            users_seen: Vec::new(),
            tokens: Vec::new(),
            providers,
            send_ok,
            mail,
            steps: 0,
            current: String::new(),
            kind: "",
            stats: Stats::default(),
        };
        d.open();
        d
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("model.redb")
    }

    /// Opens the file. Durable commits: redb documents that a non-durable commit is persisted
    /// only by a later durable one; its clean close happens to do one, but that is not a
    /// documented promise, so the test does not lean on it. On tmpfs the fsync is free.
    fn open(&mut self) {
        let mut b = AuthDb::builder()
            .clock(self.clock.clone())
            .session_max_age(Duration::microseconds(self.max_age))
            .session_update_age(Duration::microseconds(self.update_age))
            .password_params(self.passwords)
            .durability(Durability::Immediate);
        if let Some(k) = &self.key {
            b = b.encryption_key(k.clone());
        }
        let db = b.open(self.path()).expect("open the database file");
        self.db = Some(db);
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

    /// Applies one top-level operation, then checks integrity.
    pub fn apply(&mut self, op: &Op) {
        match op {
            Op::Txn { ops, commit } => self.txn(ops, *commit),
            Op::Reopen => {
                self.steps += 1;
                self.db = None;
                self.open();
            }
            Op::Purge => {
                self.steps += 1;
                self.current = format!("{op:?}");
                self.kind = op.name();
                self.purge();
            }
            leaf => {
                let db = self.db().clone();
                self.leaf(&db, &db, leaf);
            }
        }
        self.check_integrity();
    }

    fn txn(&mut self, ops: &[Op], commit: bool) {
        let db = self.db().clone();
        let runnable = |op: &&Op| !matches!(op, Op::Txn { .. } | Op::Purge | Op::Reopen);
        self.model.begin();
        if ops.len() % 2 == 1 {
            // `AuthDb::write`: committed when the closure returns `Ok`.
            let r = db.write(|tx| {
                let tx = &*tx;
                for op in ops.iter().filter(runnable) {
                    self.leaf(tx, tx, op);
                }
                if commit {
                    Ok(())
                } else {
                    Err(Error::InvalidConfig("model: roll back"))
                }
            });
            assert_eq!(r.is_ok(), commit, "step {}: write() result", self.steps);
        } else {
            let tx = db.begin_write().expect("begin_write");
            for op in ops.iter().filter(runnable) {
                self.leaf(&tx, &tx, op);
            }
            if commit {
                tx.commit().expect("commit");
            } else {
                drop(tx);
            }
        }
        self.model.end(commit);
    }

    // ---- comparing -----------------------------------------------------------------------

    fn expect<T: PartialEq + std::fmt::Debug>(&mut self, got: &MResult<T>, want: &MResult<T>) {
        self.stats.ops += 1;
        let key = format!("{}: {}", self.kind, outcome(want));
        *self.stats.outcomes.entry(key).or_default() += 1;
        assert_eq!(
            got, want,
            "step {}: {}: store (left) and model (right) disagree",
            self.steps, self.current
        );
    }

    fn err(&self, e: &Error) -> MErr {
        match e {
            Error::EmailTaken => MErr::EmailTaken,
            Error::AccountLinkedToAnotherUser => MErr::AccountLinkedToAnotherUser,
            Error::VerificationTokenTaken => MErr::VerificationTokenTaken,
            Error::UserNotFound(id) => MErr::UserNotFound(self.users.known(id.0)),
            Error::InvalidInput { field, problem } => MErr::InvalidInput {
                field,
                problem: *problem,
            },
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
            "step {}: {}: timestamp finer than a microsecond",
            self.steps,
            self.current
        );
        micros_of(t)
    }

    fn user(&mut self, u: &User, fresh: Fresh) -> MUser {
        MUser {
            id: self.users.model(u.id.0, fresh.user),
            name: u.name.clone(),
            email: u.email.clone(),
            image: u.image.clone(),
            email_verified: u.email_verified.map(|t| self.exact(t)),
            created_at: self.exact(u.created_at),
            updated_at: self.exact(u.updated_at),
        }
    }

    fn session(&mut self, s: &Session, fresh: Fresh) -> MSession {
        MSession {
            id: self.sessions.model(s.id.0, fresh.session),
            user: self.users.known(s.user_id.0),
            expires: self.exact(s.expires),
            session_token: Secret(s.session_token.clone()),
            access_token: Secret(s.access_token.clone()),
            created_at: self.exact(s.created_at),
            updated_at: self.exact(s.updated_at),
        }
    }

    fn request(&mut self, r: &VerificationRequest, fresh: Fresh) -> MRequest {
        MRequest {
            id: self.requests.model(r.id.0, fresh.request),
            identifier: r.identifier.clone(),
            token: Secret(r.token.clone()),
            expires: self.exact(r.expires),
            created_at: self.exact(r.created_at),
            updated_at: self.exact(r.updated_at),
        }
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

    fn check_integrity(&self) {
        let r = self.db().check_integrity().expect("check_integrity");
        assert!(
            r.is_clean(),
            "step {}: integrity problems after {}:\n{r}",
            self.steps,
            self.current
        );
        let got = Counts {
            users: r.users,
            accounts: r.accounts,
            sessions: r.sessions,
            verification_requests: r.verification_requests,
            credentials: r.credentials,
        };
        assert_eq!(
            got,
            self.model.counts(),
            "step {}: stored rows after {}: store (left) and model (right) disagree",
            self.steps,
            self.current
        );
    }

    // ---- resolving indices ---------------------------------------------------------------

    fn user_ref(&self, ix: u8) -> (UserId, u32) {
        let pool: Vec<u32> = if ix < ALL_FROM {
            let stored: Vec<u32> = self
                .users_seen
                .iter()
                .copied()
                .filter(|m| self.model.peek_user(*m).is_some())
                .collect();
            stored
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

    // ---- operations ----------------------------------------------------------------------

    /// Applies one operation that both `AuthDb` and a write transaction offer.
    fn leaf(&mut self, a: &dyn Adapter, x: &dyn Extras, op: &Op) {
        self.steps += 1;
        self.current = format!("{op:?}");
        self.kind = op.name();
        match *op {
            Op::CreateUser {
                email,
                name,
                verified,
            } => self.create_user(
                a,
                &NewUser {
                    name: name.map(|i| pick(&NAMES, i).to_owned()),
                    email: email.map(|i| pick(&EMAILS, i).to_owned()),
                    image: None,
                    email_verified: verified.map(odd_time),
                },
            ),
            Op::GetUser { user } => self.get_user(a, self.user_ref(user)),
            Op::GetUserByEmail { email } => self.get_user_by_email(a, pick(&EMAILS, email)),
            Op::GetUserByAccount { provider, account } => self.get_user_by_account(
                a,
                pick(&PROVIDERS, provider),
                pick(&PROVIDER_ACCOUNT_IDS, account),
            ),
            Op::GetUserByCredentials { email, password: p } => {
                self.get_user_by_credentials(a, pick(&EMAILS, email), &password(p));
            }
            Op::UpdateUser {
                user,
                email,
                name,
                image,
                verified,
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
                };
                self.update_user(a, (uid, m), &profile);
            }
            Op::DeleteUser { user } => self.delete_user(a, self.user_ref(user)),
            Op::SetPassword { user, password: p } => {
                self.set_password(x, self.user_ref(user), &password(p));
            }
            Op::LinkAccount {
                user,
                provider,
                account,
                provider_type,
                refresh,
                access,
                expires,
            } => {
                let acc = NewAccount {
                    provider_type: pick(&PROVIDER_TYPES, provider_type).to_owned(),
                    provider_id: pick(&PROVIDERS, provider).to_owned(),
                    provider_account_id: pick(&PROVIDER_ACCOUNT_IDS, account).to_owned(),
                    refresh_token: refresh.map(|i| pick(&REFRESH_TOKENS, i).to_owned()),
                    access_token: access.map(|i| pick(&ACCESS_TOKENS, i).to_owned()),
                    access_token_expires: expires.map(odd_time),
                };
                self.link_account(a, self.user_ref(user), &acc);
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
            Op::CreateSession { user } => self.create_session(a, self.user_ref(user)),
            Op::GetSession { session } => {
                let (t, ..) = self.session_ref(session);
                self.get_session(a, &t);
            }
            Op::UpdateSession {
                session,
                force,
                stale,
            } => {
                let (t, ..) = self.session_ref(session);
                self.update_session(a, &t, force, stale);
            }
            Op::DeleteSession { session } => {
                let (t, ..) = self.session_ref(session);
                self.delete_session(a, &t);
            }
            Op::ListSessions { user } => self.list_sessions(x, self.user_ref(user)),
            Op::DeleteSessions { user } => self.delete_sessions(x, self.user_ref(user)),
            Op::DeleteSessionById { user, session } => {
                let (_, sid, sm) = self.session_ref(session);
                self.delete_session_by_id(x, self.user_ref(user), (sid, sm));
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
                x,
                pick(&EMAILS, identifier),
                pick(&TOKENS, token),
                pick(&SECRETS, secret),
            ),
            Op::Advance { step } => {
                let d = STEPS[usize::from(step) % STEPS.len()].micros();
                self.clock.advance(Duration::microseconds(d));
                self.model.now += d;
            }
            // Not available inside a transaction (and handled by `apply` outside one).
            Op::Purge | Op::Txn { .. } | Op::Reopen => {}
        }
    }

    fn create_user(&mut self, a: &dyn Adapter, profile: &NewUser) {
        let got = a.create_user(profile);
        let (want, fresh) = self.model_op(|m| m.create_user(profile));
        let got = self.map(got, |d, u| d.user(&u, fresh));
        if let Ok(u) = &got
            && Some(u.id) == fresh.user
        {
            self.users_seen.push(u.id);
        }
        self.expect(&got, &want);
    }

    fn get_user(&mut self, a: &dyn Adapter, (uid, m): (UserId, u32)) {
        let got = a.get_user(&uid);
        let got = self.map(got, |d, u| u.map(|u| d.user(&u, Fresh::default())));
        self.expect(&got, &Ok(self.model.get_user(m)));
    }

    fn get_user_by_email(&mut self, a: &dyn Adapter, email: &str) {
        let got = a.get_user_by_email(email);
        let got = self.map(got, |d, u| u.map(|u| d.user(&u, Fresh::default())));
        self.expect(&got, &Ok(self.model.get_user_by_email(email)));
    }

    fn get_user_by_account(&mut self, a: &dyn Adapter, provider: &str, account: &str) {
        let got = a.get_user_by_provider_account_id(provider, account);
        let got = self.map(got, |d, u| u.map(|u| d.user(&u, Fresh::default())));
        self.expect(&got, &Ok(self.model.get_user_by_account(provider, account)));
    }

    fn get_user_by_credentials(&mut self, a: &dyn Adapter, email: &str, password: &str) {
        let got = a.get_user_by_credentials(&Credentials {
            email: email.to_owned(),
            password: password.to_owned(),
        });
        let got = self.map(got, |d, u| u.map(|u| d.user(&u, Fresh::default())));
        let want = self.model.get_user_by_credentials(email, password);
        self.expect(&got, &want);
    }

    fn update_user(&mut self, a: &dyn Adapter, (uid, m): (UserId, u32), p: &NewUser) {
        // The caller's copy carries wrong timestamps: the store keeps `created_at` and sets
        // `updated_at` itself.
        let user = User {
            id: uid,
            name: p.name.clone(),
            email: p.email.clone(),
            image: p.image.clone(),
            email_verified: p.email_verified,
            created_at: DateTime::UNIX_EPOCH,
            updated_at: DateTime::UNIX_EPOCH,
        };
        let got = a.update_user(&user);
        let got = self.map(got, |d, u| d.user(&u, Fresh::default()));
        let want = self.model.update_user(m, p);
        self.expect(&got, &want);
    }

    fn delete_user(&mut self, a: &dyn Adapter, (uid, m): (UserId, u32)) {
        let got = a.delete_user(&uid);
        let got = self.map(got, |_, ()| ());
        self.model.delete_user(m);
        self.expect(&got, &Ok(()));
    }

    fn set_password(&mut self, x: &dyn Extras, (uid, m): (UserId, u32), password: &str) {
        let got = x.set_password(&uid, password);
        let got = self.map(got, |_, ()| ());
        let want = self.model.set_password(m, password);
        self.expect(&got, &want);
    }

    fn link_account(&mut self, a: &dyn Adapter, (uid, m): (UserId, u32), acc: &NewAccount) {
        let got = a.link_account(&uid, acc);
        let (want, fresh) = self.model_op(|r| r.link_account(m, acc));
        let got = self.map(got, |d, a| MAccount {
            id: d.accounts.model(a.id.0, fresh.account),
            user: d.users.known(a.user_id.0),
            provider_type: a.provider_type.clone(),
            provider_id: a.provider_id.clone(),
            provider_account_id: a.provider_account_id.clone(),
            refresh_token: a.refresh_token.clone().map(Secret),
            access_token: a.access_token.clone().map(Secret),
            access_token_expires: a.access_token_expires.map(|t| d.exact(t)),
            created_at: d.exact(a.created_at),
            updated_at: d.exact(a.updated_at),
        });
        self.expect(&got, &want);
    }

    fn unlink_account(
        &mut self,
        a: &dyn Adapter,
        (uid, m): (UserId, u32),
        provider: &str,
        account: &str,
    ) {
        let got = a.unlink_account(&uid, provider, account);
        let got = self.map(got, |_, ()| ());
        self.model.unlink_account(m, provider, account);
        self.expect(&got, &Ok(()));
    }

    fn create_session(&mut self, a: &dyn Adapter, (uid, m): (UserId, u32)) {
        let got = a.create_session(&uid);
        let (token, access) = match &got {
            Ok(s) => {
                assert!(
                    is_hex64(&s.session_token) && is_hex64(&s.access_token),
                    "step {}: tokens are 64 lowercase hex characters",
                    self.steps
                );
                assert_ne!(
                    Secret(s.session_token.clone()),
                    Secret(s.access_token.clone()),
                    "session and access tokens differ"
                );
                assert!(
                    self.tokens.iter().all(|(t, _)| *t != s.session_token),
                    "step {}: a session token was handed out twice",
                    self.steps
                );
                (s.session_token.clone(), s.access_token.clone())
            }
            Err(_) => (String::from("(none)"), String::new()),
        };
        let (want, fresh) = self.model_op(|r| r.create_session(m, &token, &access));
        let got = self.map(got, |d, s| d.session(&s, fresh));
        if let Ok(s) = &got
            && Some(s.id) == fresh.session
        {
            self.tokens.push((token, s.id));
        }
        self.expect(&got, &want);
    }

    fn get_session(&mut self, a: &dyn Adapter, token: &str) {
        let got = a.get_session(token);
        let got = self.map(got, |d, s| s.map(|s| d.session(&s, Fresh::default())));
        let want = self.model.get_session(token);
        self.expect(&got, &Ok(want));
    }

    fn update_session(&mut self, a: &dyn Adapter, token: &str, force: bool, stale: bool) {
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
        let got = self.map(got, |d, s| s.map(|s| d.session(&s, Fresh::default())));
        let want = self.model.update_session(token, force);
        self.expect(&got, &Ok(want));
    }

    fn delete_session(&mut self, a: &dyn Adapter, token: &str) {
        let got = a.delete_session(token);
        let got = self.map(got, |_, ()| ());
        self.model.delete_session(token);
        self.expect(&got, &Ok(()));
    }

    fn list_sessions(&mut self, x: &dyn Extras, (uid, m): (UserId, u32)) {
        let got = x.list_sessions(&uid);
        let got = self.map(got, |d, list| {
            list.iter()
                .map(|s| MSessionInfo {
                    id: d.sessions.known(s.id.0),
                    user: d.users.known(s.user_id.0),
                    expires: d.exact(s.expires),
                    created_at: d.exact(s.created_at),
                    updated_at: d.exact(s.updated_at),
                })
                .collect::<Vec<_>>()
        });
        self.expect(&got, &Ok(self.model.list_sessions(m)));
    }

    fn delete_sessions(&mut self, x: &dyn Extras, (uid, m): (UserId, u32)) {
        let got = x.delete_sessions(&uid);
        let got = self.map(got, |_, n| n);
        let want = self.model.delete_sessions(m);
        self.expect(&got, &Ok(want));
    }

    fn delete_session_by_id(
        &mut self,
        x: &dyn Extras,
        (uid, m): (UserId, u32),
        (sid, sm): (SessionId, u32),
    ) {
        let got = x.delete_session_by_id(&uid, &sid);
        let got = self.map(got, |_, b| b);
        let want = self.model.delete_session_by_id(m, sm);
        self.expect(&got, &Ok(want));
    }

    fn create_request(
        &mut self,
        a: &dyn Adapter,
        identifier: &str,
        token: &str,
        secret: &str,
        send_ok: bool,
        max_age: usize,
    ) {
        self.mail.lock().clear();
        self.send_ok.store(send_ok, Ordering::SeqCst);
        let provider = self.providers[max_age].clone();
        let got = a.create_verification_request(identifier, URL, token, secret, &provider);
        self.send_ok.store(true, Ordering::SeqCst);
        let ((want, sent), fresh) = self.model_op(|r| {
            r.create_request(
                identifier,
                URL,
                token,
                secret,
                LINK_MAX_AGES[max_age],
                send_ok,
            )
        });
        let got = self.map(got, |d, r| d.request(&r, fresh));
        self.expect(&got, &want);
        let mail = std::mem::take(&mut *self.mail.lock());
        let expected = Mail {
            identifier: identifier.to_owned(),
            url: URL.to_owned(),
            token: token.to_owned(),
        };
        assert!(
            mail.len() == usize::from(sent) && mail.iter().all(|m| *m == expected),
            "step {}: {}: the sender was called {} times, expected {} (with the identifier, \
             URL and raw token)",
            self.steps,
            self.current,
            mail.len(),
            usize::from(sent)
        );
    }

    fn get_request(&mut self, a: &dyn Adapter, identifier: &str, token: &str, secret: &str) {
        let got = a.get_verification_request(identifier, token, secret, &self.providers[0]);
        let got = self.map(got, |d, r| r.map(|r| d.request(&r, Fresh::default())));
        let want = self.model.get_request(identifier, token, secret);
        self.expect(&got, &Ok(want));
    }

    fn delete_request(&mut self, a: &dyn Adapter, identifier: &str, token: &str, secret: &str) {
        let got = a.delete_verification_request(identifier, token, secret, &self.providers[0]);
        let got = self.map(got, |_, ()| ());
        self.model.delete_request(identifier, token, secret);
        self.expect(&got, &Ok(()));
    }

    fn use_request(&mut self, x: &dyn Extras, identifier: &str, token: &str, secret: &str) {
        let got = x.use_request(identifier, token, secret);
        let got = self.map(got, |d, r| r.map(|r| d.request(&r, Fresh::default())));
        let want = self.model.use_request(identifier, token, secret);
        self.expect(&got, &Ok(want));
    }

    fn purge(&mut self) {
        let got = self.db().purge_expired();
        let got = self.map(got, |_, p| MPurge {
            sessions: p.sessions,
            verification_requests: p.verification_requests,
        });
        let want = self.model.purge();
        self.expect(&got, &Ok(want));
    }

    // ---- the whole state -----------------------------------------------------------------

    /// Compares everything observable, reopens the file and compares again.
    pub fn finish(&mut self) {
        self.compare_all("final state");
        self.db = None;
        self.open();
        self.compare_all("final state after reopening");
    }

    fn compare_all(&mut self, label: &str) {
        self.kind = "final";
        let db = self.db().clone();
        let mut users: Vec<(UserId, u32)> = (0..self.users_seen.len())
            .map(|i| {
                let m = self.users_seen[i];
                (UserId(self.users.store(m)), m)
            })
            .collect();
        users.push((bogus_user(), NO_USER));
        for &u in &users {
            self.current = format!("{label}: get_user / list_sessions of model user {}", u.1);
            self.get_user(&db, u);
            self.list_sessions(&db, u);
        }
        for e in EMAILS {
            self.current = format!("{label}: get_user_by_email({e:?})");
            self.get_user_by_email(&db, e);
            for p in 0..super::ops::PASSWORD_COUNT {
                self.current = format!("{label}: get_user_by_credentials({e:?}, password #{p})");
                self.get_user_by_credentials(&db, e, &password(p));
            }
        }
        for p in PROVIDERS {
            for acc in PROVIDER_ACCOUNT_IDS {
                self.current = format!("{label}: get_user_by_provider_account_id({p}, {acc})");
                self.get_user_by_account(&db, p, acc);
            }
        }
        let tokens: Vec<String> = self
            .tokens
            .iter()
            .map(|(t, _)| t.clone())
            .chain([BOGUS_SESSION_TOKEN.to_owned()])
            .collect();
        for (i, t) in tokens.iter().enumerate() {
            self.current = format!("{label}: get_session(token #{i})");
            self.get_session(&db, t);
        }
        for e in EMAILS {
            for t in TOKENS {
                for s in SECRETS {
                    self.current = format!("{label}: get_verification_request({e:?}, {t}, {s})");
                    self.get_request(&db, e, t, s);
                }
            }
        }
        self.current = format!("{label}: integrity");
        self.check_integrity();
        // Every stored user is one the driver knows.
        for m in self.model.user_ids() {
            assert!(
                self.users_seen.contains(&m),
                "model user {m} was never seen"
            );
        }
    }
}
