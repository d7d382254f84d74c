//! Fault injection (the `faults` fuzz target, and `tests/fuzz_regressions.rs`, which includes
//! this file by path).
//!
//! [`Disk`] is a redb [`StorageBackend`](redb::StorageBackend) over two byte vectors: what the
//! OS holds now (`live`) and what the last successful `sync_data` made durable (`synced`).
//! After a countdown of mutating calls (`write`, `set_len`, `sync_data`) it starts refusing
//! writes, syncs or both, for good.
//!
//! [`FaultRun`] applies the model-based operations ([`Op`]) to authdb on such a disk and to the
//! reference model, comparing results as it goes. Every model call is recorded, so that any
//! earlier model state can be rebuilt by replaying. When an operation fails because of the
//! fault, it is *in doubt*: it may or may not have reached the disk (redb reports an error
//! for a commit whose final sync succeeded but whose file shrink failed, for one). The run then
//! stops and [`FaultRun::finish`] reopens every disk image a crash could leave behind (the
//! bytes of the last successful sync at the moment of the fault, and the synced and live bytes
//! after the handle was dropped), on a fresh backend with `verify_on_open`, and requires each
//! to open, to pass `check_integrity()` and to hold exactly the acknowledged operations: the
//! model state before the operation in doubt, after it, or after one of its intermediate
//! commits (`purge_expired` and a failed `create_verification_request` commit twice).

#![allow(dead_code)]

use std::collections::HashSet;
use std::fmt::{self, Write as _};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use authdb::{
    Adapter, AuthDb, Credentials, Durability, EmailProvider, EncryptionKey, Error, ManualClock,
    NewAccount, NewUser, PasswordParams, Session, SessionId, SessionInfo, User, UserId,
    VerificationRequest,
};
use chrono::{DateTime, Duration, Utc};
use parking_lot::Mutex;

use crate::model::driver::{
    Extras, Fresh, IdMap, bogus_session, bogus_user, changed, from_micros, odd_time, pick, start,
};
use crate::model::ops::{
    ACCESS_TOKENS, ALL_FROM, BOGUS_FROM, BOGUS_SESSION_TOKEN, Case, Change, EMAILS, IMAGES,
    LINK_MAX_AGES, NAMES, Op, PASSWORD_COUNT, PROVIDER_ACCOUNT_IDS, PROVIDER_TYPES, PROVIDERS,
    REFRESH_TOKENS, SECRETS, SETTINGS, STEPS, TOKENS, URL, password,
};
use crate::model::reference::{
    Counts, MAccount, MErr, MRequest, MResult, MSession, MSessionInfo, MUser, Micros, NO_SESSION,
    NO_USER, Reference, Secret, micros_of,
};

// ---- the disk ------------------------------------------------------------------------------

/// Which mutating calls fail once the fault has fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailMode {
    /// `write` and `set_len` fail (a full disk); `sync_data` still works.
    Writes,
    /// `sync_data` fails; writes still reach the OS (a failing device under a page cache).
    Syncs,
    /// Every mutating call fails (the device is gone).
    All,
}

/// When and how the disk fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// Mutating calls that succeed before the first failure.
    pub after: u32,
    /// What fails from then on.
    pub mode: FailMode,
    /// A tiny page cache (redb may then write pages before a commit).
    pub small_cache: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Call {
    Write,
    Sync,
}

#[derive(Default)]
struct DiskState {
    live: Vec<u8>,
    synced: Vec<u8>,
    calls: u32,
    plan: Option<(u32, FailMode)>,
    failed: bool,
}

impl DiskState {
    fn check(&mut self, call: Call) -> std::io::Result<()> {
        self.calls = self.calls.saturating_add(1);
        let Some((after, mode)) = self.plan else {
            return Ok(());
        };
        let refused = match mode {
            FailMode::Writes => call == Call::Write,
            FailMode::Syncs => call == Call::Sync,
            FailMode::All => true,
        };
        if self.calls > after && refused {
            self.failed = true;
            return Err(std::io::Error::other("injected fault"));
        }
        Ok(())
    }
}

/// An in-memory disk that can be told to fail (see the module docs). Clones share the disk.
#[derive(Clone, Default)]
pub struct Disk(Arc<Mutex<DiskState>>);

impl fmt::Debug for Disk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0.lock();
        f.debug_struct("Disk")
            .field("live", &s.live.len())
            .field("synced", &s.synced.len())
            .field("calls", &s.calls)
            .field("failed", &s.failed)
            .finish()
    }
}

impl Disk {
    /// A disk holding `bytes` (live and synced), failing as `plan` says.
    pub fn new(bytes: Vec<u8>, plan: Option<(u32, FailMode)>) -> Self {
        Self(Arc::new(Mutex::new(DiskState {
            synced: bytes.clone(),
            live: bytes,
            calls: 0,
            plan,
            failed: false,
        })))
    }

    /// Whether a call has been refused.
    pub fn failed(&self) -> bool {
        self.0.lock().failed
    }

    /// The bytes as of the last successful sync.
    pub fn synced(&self) -> Vec<u8> {
        self.0.lock().synced.clone()
    }

    /// The bytes the OS holds now.
    pub fn live(&self) -> Vec<u8> {
        self.0.lock().live.clone()
    }

    /// Mutating calls so far.
    pub fn calls(&self) -> u32 {
        self.0.lock().calls
    }
}

fn out_of_range() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidInput, "out of range")
}

impl redb::StorageBackend for Disk {
    fn len(&self) -> Result<u64, std::io::Error> {
        Ok(self.0.lock().live.len() as u64)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), std::io::Error> {
        let s = self.0.lock();
        let start = usize::try_from(offset).map_err(|_| out_of_range())?;
        let end = start.checked_add(out.len()).ok_or_else(out_of_range)?;
        out.copy_from_slice(s.live.get(start..end).ok_or_else(out_of_range)?);
        Ok(())
    }

    fn set_len(&self, len: u64) -> Result<(), std::io::Error> {
        let mut s = self.0.lock();
        s.check(Call::Write)?;
        let len = usize::try_from(len).map_err(|_| out_of_range())?;
        s.live.resize(len, 0);
        Ok(())
    }

    fn sync_data(&self) -> Result<(), std::io::Error> {
        let mut s = self.0.lock();
        s.check(Call::Sync)?;
        let s = &mut *s;
        s.synced.clone_from(&s.live);
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), std::io::Error> {
        let mut s = self.0.lock();
        s.check(Call::Write)?;
        let start = usize::try_from(offset).map_err(|_| out_of_range())?;
        let end = start.checked_add(data.len()).ok_or_else(out_of_range)?;
        s.live
            .get_mut(start..end)
            .ok_or_else(out_of_range)?
            .copy_from_slice(data);
        Ok(())
    }
}

// ---- helpers of its own (the shared ones come from tests/model/driver.rs) -------------------

/// A stored timestamp: whole microseconds.
fn exact(t: DateTime<Utc>) -> Micros {
    assert_eq!(
        t.timestamp_subsec_nanos() % 1000,
        0,
        "timestamp finer than a microsecond"
    );
    micros_of(t)
}

/// An operation failed because of the injected fault: its effect is in doubt.
#[derive(Debug)]
pub struct InDoubt;

type Step = Result<(), InDoubt>;

/// One recorded model call, replayable on a fresh model.
type Replay = Box<dyn Fn(&mut Reference)>;

type SetPassword<'a> = Box<dyn Fn(&UserId, &str) -> authdb::Result<()> + 'a>;
type UseRequest<'a> =
    Box<dyn Fn(&str, &str, &str) -> authdb::Result<Option<VerificationRequest>> + 'a>;
type ListSessions<'a> = Box<dyn Fn(&UserId) -> authdb::Result<Vec<SessionInfo>> + 'a>;
type DeleteSessions<'a> = Box<dyn Fn(&UserId) -> authdb::Result<u64> + 'a>;
type DeleteSessionById<'a> = Box<dyn Fn(&UserId, &SessionId) -> authdb::Result<bool> + 'a>;

struct TxnExtras<'a> {
    set_password: SetPassword<'a>,
    use_request: UseRequest<'a>,
    list_sessions: ListSessions<'a>,
    delete_sessions: DeleteSessions<'a>,
    delete_session_by_id: DeleteSessionById<'a>,
}

impl Extras for TxnExtras<'_> {
    fn set_password(&self, u: &UserId, p: &str) -> authdb::Result<()> {
        (self.set_password)(u, p)
    }
    fn use_request(
        &self,
        i: &str,
        t: &str,
        s: &str,
    ) -> authdb::Result<Option<VerificationRequest>> {
        (self.use_request)(i, t, s)
    }
    fn list_sessions(&self, u: &UserId) -> authdb::Result<Vec<SessionInfo>> {
        (self.list_sessions)(u)
    }
    fn delete_sessions(&self, u: &UserId) -> authdb::Result<u64> {
        (self.delete_sessions)(u)
    }
    fn delete_session_by_id(&self, u: &UserId, s: &SessionId) -> authdb::Result<bool> {
        (self.delete_session_by_id)(u, s)
    }
}

macro_rules! txn_extras {
    ($tx:expr) => {{
        let tx = $tx;
        TxnExtras {
            set_password: Box::new(move |u: &UserId, p: &str| tx.set_password(u, p)),
            use_request: Box::new(move |i: &str, t: &str, s: &str| {
                tx.use_verification_request(i, t, s)
            }),
            list_sessions: Box::new(move |u: &UserId| tx.list_sessions(u)),
            delete_sessions: Box::new(move |u: &UserId| tx.delete_sessions(u)),
            delete_session_by_id: Box::new(move |u: &UserId, s: &SessionId| {
                tx.delete_session_by_id(u, s)
            }),
        }
    }};
}

// ---- the run -------------------------------------------------------------------------------

/// A verification request without its id: identifier, token hash, expires, created, updated.
type RequestView = (String, Secret, Micros, Micros, Micros);

/// What the whole store looks like through its public API, in the model's vocabulary.
#[derive(Debug, PartialEq, Eq)]
struct Digest {
    counts: Counts,
    users: Vec<Option<MUser>>,
    lists: Vec<Vec<MSessionInfo>>,
    by_email: Vec<Option<u32>>,
    by_account: Vec<Option<u32>>,
    by_credentials: Vec<MResult<Option<u32>>>,
    by_token: Vec<Option<MSession>>,
    requests: Vec<Option<RequestView>>,
}

/// How a run ended, for statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Every operation ran; no fault fired.
    Clean,
    /// The fault fired during an operation that still succeeded.
    AckedThroughFault,
    /// An operation failed because of the fault.
    InDoubt,
}

/// One fault-injection run: authdb on a failing [`Disk`] next to the reference model.
pub struct FaultRun {
    disk: Disk,
    clock: Arc<ManualClock>,
    max_age: Micros,
    update_age: Micros,
    /// Whether the store has an OAuth token encryption key.
    with_key: bool,
    small_cache: bool,
    db: Option<AuthDb>,
    model: Reference,
    /// Model calls of every acknowledged operation.
    log: Vec<Replay>,
    /// Model calls of the operation in progress.
    pending: Vec<Replay>,
    /// Lengths of `pending` at the operation's intermediate commits.
    points: Vec<usize>,
    users: IdMap,
    accounts: IdMap,
    sessions: IdMap,
    requests: IdMap,
    users_seen: Vec<u32>,
    tokens: Vec<(String, u32)>,
    providers: Vec<EmailProvider>,
    send_ok: Arc<AtomicBool>,
    steps: usize,
    current: String,
    /// The synced bytes right after the operation that hit the fault (a crash at that moment).
    crash_image: Option<Vec<u8>>,
    ending: Ending,
    /// `Some` once the first open (which creates the database) succeeded.
    db_created: Option<()>,
    plan: Plan,
    /// The operation during which the fault fired.
    fault_op: String,
}

fn passwords() -> PasswordParams {
    PasswordParams {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    }
}

/// Runs `case` on a disk failing as `plan` says, then checks what a crash leaves behind.
pub fn run(case: &Case, plan: Plan) -> Ending {
    let mut r = FaultRun::new(case.settings, plan);
    if r.db.is_some() {
        for op in &case.ops {
            if r.apply(op).is_err() || r.disk.failed() {
                break;
            }
        }
    }
    r.finish()
}

impl FaultRun {
    fn new(settings: u8, plan: Plan) -> Self {
        let (max_age, update_age, with_key) = SETTINGS[usize::from(settings) % SETTINGS.len()];
        let send_ok = Arc::new(AtomicBool::new(true));
        let providers = LINK_MAX_AGES
            .iter()
            .map(|&age| {
                let ok = send_ok.clone();
                EmailProvider::new("email", move |_| {
                    if ok.load(Ordering::SeqCst) {
                        Ok(())
                    } else {
                        Err("faults: the mail server is down".into())
                    }
                })
                .max_age(Duration::microseconds(age))
            })
            .collect();
        let mut users = IdMap::default();
        users.bind(bogus_user().0, NO_USER);
        let mut sessions = IdMap::default();
        sessions.bind(bogus_session().0, NO_SESSION);
        let mut r = Self {
            disk: Disk::new(Vec::new(), Some((plan.after, plan.mode))),
            clock: Arc::new(ManualClock::new(start())),
            max_age,
            update_age,
            with_key,
            small_cache: plan.small_cache,
            db: None,
            model: Reference::new(micros_of(start()), max_age, update_age, with_key),
            log: Vec::new(),
            pending: Vec::new(),
            points: Vec::new(),
            users,
            accounts: IdMap::default(),
            sessions,
            requests: IdMap::default(),
            users_seen: Vec::new(),
            tokens: Vec::new(),
            providers,
            send_ok,
            steps: 0,
            current: "open".to_owned(),
            crash_image: None,
            ending: Ending::Clean,
            db_created: None,
            plan,
            fault_op: String::new(),
        };
        match r.open(r.disk.clone()) {
            Ok(db) => {
                r.db = Some(db);
                r.db_created = Some(());
            }
            Err(e) => {
                assert!(r.disk.failed(), "open failed without a fault: {e}");
                r.crash_image = Some(r.disk.synced());
                r.ending = Ending::InDoubt;
            }
        }
        r
    }

    fn open(&self, disk: Disk) -> authdb::Result<AuthDb> {
        let mut b = AuthDb::builder()
            .clock(self.clock.clone())
            .session_max_age(Duration::microseconds(self.max_age))
            .session_update_age(Duration::microseconds(self.update_age))
            .password_params(passwords())
            .durability(Durability::Immediate)
            .verify_on_open(true);
        if self.with_key {
            b = b.encryption_key(EncryptionKey::from_bytes([7; 32]));
        }
        if self.small_cache {
            b = b.cache_size(16 * 1024);
        }
        b.open_backend(disk)
    }

    fn db(&self) -> AuthDb {
        self.db.clone().expect("database is open")
    }

    /// Applies one top-level operation. `Err` when it is in doubt.
    fn apply(&mut self, op: &Op) -> Step {
        self.pending.clear();
        self.points.clear();
        self.steps += 1;
        self.current = format!("{op:?}");
        let failed_before = self.disk.failed();
        let out = match op {
            Op::Txn { ops, commit } => self.txn(ops, *commit),
            Op::Reopen => self.reopen(),
            Op::Purge => self.purge(),
            leaf => {
                let db = self.db();
                self.leaf(&db, &db, leaf)
            }
        };
        if out.is_err() {
            self.fault_op = format!("step {}: {op:?}", self.steps);
            self.crash_image = Some(self.disk.synced());
            self.ending = Ending::InDoubt;
            return out;
        }
        // Acknowledged: part of every candidate state from now on.
        self.log.append(&mut self.pending);
        self.points.clear();
        if self.disk.failed() && !failed_before {
            self.fault_op = format!("step {}: {op:?}", self.steps);
            self.crash_image = Some(self.disk.synced());
            self.ending = Ending::AckedThroughFault;
            return Ok(());
        }
        let db = self.db();
        self.check_live(&db);
        Ok(())
    }

    /// Integrity and row counts of the open database against the live model.
    fn check_live(&self, db: &AuthDb) {
        let r = db.check_integrity().expect("check_integrity");
        assert!(
            r.is_clean(),
            "step {}: integrity problems after {}:\n{r}",
            self.steps,
            self.current
        );
        assert_eq!(
            counts(&r),
            self.model.counts(),
            "step {}: stored rows after {}: store (left) and model (right) disagree",
            self.steps,
            self.current
        );
    }

    // ---- recording model calls -----------------------------------------------------------

    /// Runs a model call on the live model and records it for replay.
    fn m<T>(&mut self, f: impl Fn(&mut Reference) -> T + 'static) -> T {
        let out = f(&mut self.model);
        self.pending.push(Box::new(move |m| {
            f(m);
        }));
        out
    }

    /// Like [`Self::m`], also reporting the ids the model handed out.
    fn m_fresh<T>(&mut self, f: impl Fn(&mut Reference) -> T + 'static) -> (T, Fresh) {
        let before = self.model.next_ids();
        let out = self.m(f);
        let after = self.model.next_ids();
        let fresh = Fresh {
            user: (after.0 > before.0).then_some(before.0),
            account: (after.1 > before.1).then_some(before.1),
            session: (after.2 > before.2).then_some(before.2),
            request: (after.3 > before.3).then_some(before.3),
        };
        (out, fresh)
    }

    /// Marks an intermediate commit of the operation in progress.
    fn commit_point(&mut self) {
        self.points.push(self.pending.len());
    }

    fn replay(&self, extra: &[Replay]) -> Reference {
        let mut m = Reference::new(
            micros_of(start()),
            self.max_age,
            self.update_age,
            self.with_key,
        );
        for r in self.log.iter().chain(extra) {
            r(&mut m);
        }
        m
    }

    // ---- comparing -----------------------------------------------------------------------

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

    fn map<T, U>(&mut self, r: authdb::Result<T>, f: impl FnOnce(&mut Self, T) -> U) -> MResult<U> {
        match r {
            Ok(v) => Ok(f(self, v)),
            Err(e) => Err(self.err(&e)),
        }
    }

    /// Compares a store result with the model's. An unexpected error after the fault fired
    /// puts the operation in doubt instead.
    fn expect<T: PartialEq + fmt::Debug>(&self, got: &MResult<T>, want: &MResult<T>) -> Step {
        if let Err(MErr::Unexpected(_)) = got
            && self.disk.failed()
        {
            return Err(InDoubt);
        }
        assert_eq!(
            got, want,
            "step {}: {}: store (left) and model (right) disagree",
            self.steps, self.current
        );
        Ok(())
    }

    fn user(&mut self, u: &User, fresh: Fresh) -> MUser {
        MUser {
            id: self.users.model(u.id.0, fresh.user),
            name: u.name.clone(),
            email: u.email.clone(),
            image: u.image.clone(),
            email_verified: u.email_verified.map(exact),
            created_at: exact(u.created_at),
            updated_at: exact(u.updated_at),
        }
    }

    fn session(&mut self, s: &Session, fresh: Fresh) -> MSession {
        MSession {
            id: self.sessions.model(s.id.0, fresh.session),
            user: self.users.known(s.user_id.0),
            expires: exact(s.expires),
            session_token: Secret(s.session_token.clone()),
            access_token: Secret(s.access_token.clone()),
            created_at: exact(s.created_at),
            updated_at: exact(s.updated_at),
        }
    }

    fn session_info(&self, s: &SessionInfo) -> MSessionInfo {
        MSessionInfo {
            id: self.sessions.known(s.id.0),
            user: self.users.known(s.user_id.0),
            expires: exact(s.expires),
            created_at: exact(s.created_at),
            updated_at: exact(s.updated_at),
        }
    }

    fn request(&mut self, r: &VerificationRequest, fresh: Fresh) -> MRequest {
        MRequest {
            id: self.requests.model(r.id.0, fresh.request),
            identifier: r.identifier.clone(),
            token: Secret(r.token.clone()),
            expires: exact(r.expires),
            created_at: exact(r.created_at),
            updated_at: exact(r.updated_at),
        }
    }

    // ---- resolving indices (as the driver does) ------------------------------------------

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

    // ---- top-level operations ------------------------------------------------------------

    fn reopen(&mut self) -> Step {
        self.db = None;
        match self.open(self.disk.clone()) {
            Ok(db) => {
                self.db = Some(db);
                Ok(())
            }
            Err(_) if self.disk.failed() => Err(InDoubt),
            Err(e) => panic!("step {}: reopen failed without a fault: {e}", self.steps),
        }
    }

    fn purge(&mut self) -> Step {
        let got = self.db().purge_expired();
        // The store purges sessions, commits, then verification requests, and commits again.
        let tokens: Vec<String> = self.tokens.iter().map(|(t, _)| t.clone()).collect();
        let before = self.model.counts();
        self.m(move |m| {
            for t in &tokens {
                m.get_session(t);
            }
        });
        let sessions = before.sessions - self.model.counts().sessions;
        self.commit_point();
        let p = self.m(Reference::purge);
        assert_eq!(p.sessions, 0, "model: sessions purged in the first step");
        let got = self.map(got, |_, p| (p.sessions, p.verification_requests));
        self.expect(&got, &Ok((sessions, p.verification_requests)))
    }

    fn txn(&mut self, ops: &[Op], commit: bool) -> Step {
        let db = self.db();
        let runnable = |op: &&Op| !matches!(op, Op::Txn { .. } | Op::Purge | Op::Reopen);
        self.m(Reference::begin);
        let mut inner: Step = Ok(());
        let committed: authdb::Result<()> = if ops.len() % 2 == 1 {
            let r = db.write(|tx| {
                let tx = &*tx;
                let x = txn_extras!(tx);
                for op in ops.iter().filter(runnable) {
                    inner = self.leaf(tx, &x, op);
                    if inner.is_err() {
                        return Err(Error::InvalidConfig("faults: in doubt"));
                    }
                }
                if commit {
                    Ok(())
                } else {
                    Err(Error::InvalidConfig("faults: roll back"))
                }
            });
            match r {
                Err(Error::InvalidConfig(_)) => Err(Error::InvalidConfig("rolled back")),
                other => other,
            }
        } else {
            let tx = db.begin_write().map_err(|e| {
                assert!(
                    self.disk.failed(),
                    "begin_write failed without a fault: {e}"
                );
                e
            });
            match tx {
                Err(e) => {
                    inner = Err(InDoubt);
                    Err(e)
                }
                Ok(tx) => {
                    {
                        let x = txn_extras!(&tx);
                        for op in ops.iter().filter(runnable) {
                            inner = self.leaf(&tx, &x, op);
                            if inner.is_err() {
                                break;
                            }
                        }
                    }
                    if commit && inner.is_ok() {
                        tx.commit()
                    } else {
                        drop(tx);
                        Err(Error::InvalidConfig("rolled back"))
                    }
                }
            }
        };
        if inner.is_err() {
            // Failed before the commit: nothing of the transaction can be on disk.
            self.m(|m| m.end(false));
            return Err(InDoubt);
        }
        match committed {
            Ok(()) => {
                assert!(
                    commit,
                    "step {}: a dropped transaction committed",
                    self.steps
                );
                self.m(|m| m.end(true));
                Ok(())
            }
            Err(Error::InvalidConfig(_)) => {
                assert!(
                    !commit || inner.is_err(),
                    "rolled back a committing transaction"
                );
                self.m(|m| m.end(false));
                Ok(())
            }
            Err(e) => {
                assert!(
                    self.disk.failed(),
                    "step {}: commit failed without a fault: {e}",
                    self.steps
                );
                // The commit may or may not have reached the disk.
                self.m(|m| m.end(true));
                Err(InDoubt)
            }
        }
    }

    // ---- leaf operations -----------------------------------------------------------------

    fn leaf(&mut self, a: &dyn Adapter, x: &dyn Extras, op: &Op) -> Step {
        match *op {
            Op::CreateUser {
                email,
                name,
                verified,
            } => {
                let p = NewUser {
                    name: name.map(|i| pick(&NAMES, i).to_owned()),
                    email: email.map(|i| pick(&EMAILS, i).to_owned()),
                    image: None,
                    email_verified: verified.map(odd_time),
                };
                let got = a.create_user(&p);
                let (want, fresh) = self.m_fresh(move |m| m.create_user(&p));
                let got = self.map(got, |d, u| d.user(&u, fresh));
                if let Ok(u) = &got
                    && Some(u.id) == fresh.user
                {
                    self.users_seen.push(u.id);
                }
                self.expect(&got, &want)
            }
            Op::GetUser { user } => {
                let (uid, m) = self.user_ref(user);
                let got = a.get_user(&uid);
                let got = self.map(got, |d, u| u.map(|u| d.user(&u, Fresh::default())));
                let want = Ok(self.model.get_user(m));
                self.expect(&got, &want)
            }
            Op::GetUserByEmail { email } => {
                let e = pick(&EMAILS, email);
                let got = a.get_user_by_email(e);
                let got = self.map(got, |d, u| u.map(|u| d.user(&u, Fresh::default())));
                let want = Ok(self.model.get_user_by_email(e));
                self.expect(&got, &want)
            }
            Op::GetUserByAccount { provider, account } => {
                let (p, acc) = (
                    pick(&PROVIDERS, provider),
                    pick(&PROVIDER_ACCOUNT_IDS, account),
                );
                let got = a.get_user_by_provider_account_id(p, acc);
                let got = self.map(got, |d, u| u.map(|u| d.user(&u, Fresh::default())));
                let want = Ok(self.model.get_user_by_account(p, acc));
                self.expect(&got, &want)
            }
            Op::GetUserByCredentials { email, password: p } => {
                let (e, pw) = (pick(&EMAILS, email), password(p));
                let got = a.get_user_by_credentials(&Credentials {
                    email: e.to_owned(),
                    password: pw.clone(),
                });
                let got = self.map(got, |d, u| u.map(|u| d.user(&u, Fresh::default())));
                let want = self.model.get_user_by_credentials(e, &pw);
                self.expect(&got, &want)
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
                let p = NewUser {
                    name: changed(name, &NAMES, cur.and_then(|u| u.name.clone())),
                    email: changed(email, &EMAILS, cur.and_then(|u| u.email.clone())),
                    image: changed(image, &IMAGES, cur.and_then(|u| u.image.clone())),
                    email_verified: match verified {
                        Change::Keep => cur.and_then(|u| u.email_verified).map(from_micros),
                        Change::Clear => None,
                        Change::Set(i) => Some(odd_time(i)),
                    },
                };
                let got = a.update_user(&User {
                    id: uid,
                    name: p.name.clone(),
                    email: p.email.clone(),
                    image: p.image.clone(),
                    email_verified: p.email_verified,
                    created_at: DateTime::UNIX_EPOCH,
                    updated_at: DateTime::UNIX_EPOCH,
                });
                let got = self.map(got, |d, u| d.user(&u, Fresh::default()));
                let want = self.m(move |r| r.update_user(m, &p));
                self.expect(&got, &want)
            }
            Op::DeleteUser { user } => {
                let (uid, m) = self.user_ref(user);
                let got = a.delete_user(&uid);
                let got = self.map(got, |_, ()| ());
                self.m(move |r| r.delete_user(m));
                self.expect(&got, &Ok(()))
            }
            Op::SetPassword { user, password: p } => {
                let (uid, m) = self.user_ref(user);
                let pw = password(p);
                let got = x.set_password(&uid, &pw);
                let got = self.map(got, |_, ()| ());
                let want = self.m(move |r| r.set_password(m, &pw));
                self.expect(&got, &want)
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
                let (uid, m) = self.user_ref(user);
                let acc = NewAccount {
                    provider_type: pick(&PROVIDER_TYPES, provider_type).to_owned(),
                    provider_id: pick(&PROVIDERS, provider).to_owned(),
                    provider_account_id: pick(&PROVIDER_ACCOUNT_IDS, account).to_owned(),
                    refresh_token: refresh.map(|i| pick(&REFRESH_TOKENS, i).to_owned()),
                    access_token: access.map(|i| pick(&ACCESS_TOKENS, i).to_owned()),
                    access_token_expires: expires.map(odd_time),
                };
                let got = a.link_account(&uid, &acc);
                let (want, fresh) = self.m_fresh(move |r| r.link_account(m, &acc));
                let got = self.map(got, |d, a| MAccount {
                    id: d.accounts.model(a.id.0, fresh.account),
                    user: d.users.known(a.user_id.0),
                    provider_type: a.provider_type.clone(),
                    provider_id: a.provider_id.clone(),
                    provider_account_id: a.provider_account_id.clone(),
                    refresh_token: a.refresh_token.clone().map(Secret),
                    access_token: a.access_token.clone().map(Secret),
                    access_token_expires: a.access_token_expires.map(exact),
                    created_at: exact(a.created_at),
                    updated_at: exact(a.updated_at),
                });
                self.expect(&got, &want)
            }
            Op::UnlinkAccount {
                user,
                provider,
                account,
            } => {
                let (uid, m) = self.user_ref(user);
                let (p, acc) = (
                    pick(&PROVIDERS, provider),
                    pick(&PROVIDER_ACCOUNT_IDS, account),
                );
                let got = a.unlink_account(&uid, p, acc);
                let got = self.map(got, |_, ()| ());
                self.m(move |r| r.unlink_account(m, p, acc));
                self.expect(&got, &Ok(()))
            }
            Op::CreateSession { user } => {
                let (uid, m) = self.user_ref(user);
                let got = a.create_session(&uid);
                let (token, access) = match &got {
                    Ok(s) => (s.session_token.clone(), s.access_token.clone()),
                    // Unknown (in doubt, or refused): never looked up by token.
                    Err(_) => ("(none)".to_owned(), String::new()),
                };
                let t = token.clone();
                let (want, fresh) = self.m_fresh(move |r| r.create_session(m, &t, &access));
                let got = self.map(got, |d, s| d.session(&s, fresh));
                if let Ok(s) = &got
                    && Some(s.id) == fresh.session
                {
                    self.tokens.push((token, s.id));
                }
                self.expect(&got, &want)
            }
            Op::GetSession { session } => {
                let (t, ..) = self.session_ref(session);
                let got = a.get_session(&t);
                let got = self.map(got, |d, s| s.map(|s| d.session(&s, Fresh::default())));
                let want = self.m(move |r| r.get_session(&t));
                self.expect(&got, &Ok(want))
            }
            Op::UpdateSession {
                session,
                force,
                stale,
            } => {
                let (t, ..) = self.session_ref(session);
                let current = self.model.peek_session(&t).filter(|_| !stale);
                let arg = match current {
                    Some(s) => Session {
                        id: SessionId(self.sessions.store(s.id)),
                        user_id: UserId(self.users.store(s.user)),
                        expires: from_micros(s.expires),
                        session_token: t.clone(),
                        access_token: s.access_token.0,
                        created_at: from_micros(s.created_at),
                        updated_at: from_micros(s.updated_at),
                    },
                    None => Session {
                        id: bogus_session(),
                        user_id: bogus_user(),
                        expires: DateTime::from_timestamp(4_102_444_800, 0).expect("valid time"),
                        session_token: t.clone(),
                        access_token: "0".repeat(64),
                        created_at: DateTime::UNIX_EPOCH,
                        updated_at: DateTime::UNIX_EPOCH,
                    },
                };
                let got = a.update_session(&arg, force);
                let got = self.map(got, |d, s| s.map(|s| d.session(&s, Fresh::default())));
                let want = self.m(move |r| r.update_session(&t, force));
                self.expect(&got, &Ok(want))
            }
            Op::DeleteSession { session } => {
                let (t, ..) = self.session_ref(session);
                let got = a.delete_session(&t);
                let got = self.map(got, |_, ()| ());
                self.m(move |r| r.delete_session(&t));
                self.expect(&got, &Ok(()))
            }
            Op::ListSessions { user } => {
                let (uid, m) = self.user_ref(user);
                let got = x.list_sessions(&uid);
                let got = self.map(got, |d, l| l.iter().map(|s| d.session_info(s)).collect());
                let want = Ok(self.model.list_sessions(m));
                self.expect(&got, &want)
            }
            Op::DeleteSessions { user } => {
                let (uid, m) = self.user_ref(user);
                let got = x.delete_sessions(&uid);
                let got = self.map(got, |_, n| n);
                let want = self.m(move |r| r.delete_sessions(m));
                self.expect(&got, &Ok(want))
            }
            Op::DeleteSessionById { user, session } => {
                let (_, sid, sm) = self.session_ref(session);
                let (uid, m) = self.user_ref(user);
                let got = x.delete_session_by_id(&uid, &sid);
                let got = self.map(got, |_, b| b);
                let want = self.m(move |r| r.delete_session_by_id(m, sm));
                self.expect(&got, &Ok(want))
            }
            Op::CreateVerification {
                identifier,
                token,
                secret,
                send_ok,
                max_age,
            } => {
                let (i, t, s) = (
                    pick(&EMAILS, identifier),
                    pick(&TOKENS, token),
                    pick(&SECRETS, secret),
                );
                let age = usize::from(max_age) % LINK_MAX_AGES.len();
                self.send_ok.store(send_ok, Ordering::SeqCst);
                let got = a.create_verification_request(i, URL, t, s, &self.providers[age]);
                self.send_ok.store(true, Ordering::SeqCst);
                // The store commits the request, sends, and on a failed send removes it again
                // in a second commit.
                let link_age = LINK_MAX_AGES[age];
                let ((inserted, _), fresh) =
                    self.m_fresh(move |r| r.create_request(i, URL, t, s, link_age, true));
                let want = match inserted {
                    Ok(_) if !send_ok => {
                        self.commit_point();
                        self.m(move |r| r.delete_request(i, t, s));
                        Err(MErr::SendFailed)
                    }
                    other => other,
                };
                let got = self.map(got, |d, r| d.request(&r, fresh));
                self.expect(&got, &want)
            }
            Op::GetVerification {
                identifier,
                token,
                secret,
            } => {
                let (i, t, s) = (
                    pick(&EMAILS, identifier),
                    pick(&TOKENS, token),
                    pick(&SECRETS, secret),
                );
                let got = a.get_verification_request(i, t, s, &self.providers[0]);
                let got = self.map(got, |d, r| r.map(|r| d.request(&r, Fresh::default())));
                let want = self.m(move |r| r.get_request(i, t, s));
                self.expect(&got, &Ok(want))
            }
            Op::DeleteVerification {
                identifier,
                token,
                secret,
            } => {
                let (i, t, s) = (
                    pick(&EMAILS, identifier),
                    pick(&TOKENS, token),
                    pick(&SECRETS, secret),
                );
                let got = a.delete_verification_request(i, t, s, &self.providers[0]);
                let got = self.map(got, |_, ()| ());
                self.m(move |r| r.delete_request(i, t, s));
                self.expect(&got, &Ok(()))
            }
            Op::UseVerification {
                identifier,
                token,
                secret,
            } => {
                let (i, t, s) = (
                    pick(&EMAILS, identifier),
                    pick(&TOKENS, token),
                    pick(&SECRETS, secret),
                );
                let got = x.use_request(i, t, s);
                let got = self.map(got, |d, r| r.map(|r| d.request(&r, Fresh::default())));
                let want = self.m(move |r| r.use_request(i, t, s));
                self.expect(&got, &Ok(want))
            }
            Op::Advance { step } => {
                let d = STEPS[usize::from(step) % STEPS.len()].micros();
                self.clock.advance(Duration::microseconds(d));
                self.m(move |r| r.now += d);
                Ok(())
            }
            Op::Purge | Op::Txn { .. } | Op::Reopen => Ok(()),
        }
    }

    // ---- after the run -------------------------------------------------------------------

    /// Reopens every disk image a crash could leave and checks each against the candidate
    /// model states.
    fn finish(mut self) -> Ending {
        let ending = self.ending;
        // The candidates: before the operation in doubt, after each intermediate commit, after
        // it. Without a doubt, everything was acknowledged and `pending` is empty.
        let mut candidates: Vec<(String, usize)> = vec![("acknowledged".into(), 0)];
        if ending == Ending::InDoubt {
            for &p in &self.points {
                candidates.push((
                    format!("after {p} model calls of the operation in doubt"),
                    p,
                ));
            }
            candidates.push(("after the operation in doubt".into(), self.pending.len()));
        }
        let crash = self.crash_image.take();
        // A graceful close after the fault.
        self.db = None;
        let mut images: Vec<(&str, Vec<u8>)> = Vec::new();
        if let Some(c) = crash {
            images.push(("synced at the fault", c));
        }
        images.push(("synced after close", self.disk.synced()));
        // Until the first sync completes, the file may hold a partly written header that redb
        // does not recognize (the database never existed durably); past it, whatever the OS
        // kept of later writes must be recoverable.
        if !self.disk.synced().is_empty() {
            images.push(("live after close", self.disk.live()));
        }
        let mut seen: HashSet<Vec<u8>> = HashSet::new();
        for (label, bytes) in images {
            if !seen.insert(bytes.clone()) {
                continue;
            }
            self.current = format!("reopen the {label} image");
            let db = match self.open(Disk::new(bytes, None)) {
                Ok(db) => db,
                // A crash while redb creates the file can leave it extended but without a
                // header, which redb then refuses ("not a redb database"): the database never
                // existed. Refusing is acceptable; panicking is not.
                Err(_) if self.db_created.is_none() => continue,
                Err(e) => panic!("{}: {e}", self.current),
            };
            let r = db.check_integrity().expect("check_integrity");
            assert!(r.is_clean(), "{}: integrity problems:\n{r}", self.current);
            let got = self.digest_db(&db, counts(&r));
            let mut tried = Vec::new();
            let matched = candidates.iter().any(|(name, k)| {
                // Rebuilt for every image: a digest mutates the model as reads mutate the store.
                let mut m = self.replay(&self.pending[..*k]);
                // Time does not roll back: a clock move inside the operation in doubt (in a
                // transaction) happened whatever became of the transaction.
                m.now = self.model.now;
                let want = self.digest_model(&mut m);
                let ok = got == want;
                tried.push((name.clone(), want));
                ok
            });
            if !matched {
                let mut msg = format!(
                    "{}: the stored state matches no candidate.\n{:?}, {ending:?} at {} \
                     ({} mutating calls)\nstored: {got:#?}\n",
                    self.current,
                    self.plan,
                    self.fault_op,
                    self.disk.calls(),
                );
                for (name, want) in tried {
                    let _ = writeln!(msg, "candidate {name}: {want:#?}");
                }
                panic!("{msg}");
            }
        }
        ending
    }

    fn digest_db(&mut self, db: &AuthDb, counts: Counts) -> Digest {
        let users: Vec<u32> = self.users_seen.clone();
        let mut d = Digest {
            counts,
            users: Vec::new(),
            lists: Vec::new(),
            by_email: Vec::new(),
            by_account: Vec::new(),
            by_credentials: Vec::new(),
            by_token: Vec::new(),
            requests: Vec::new(),
        };
        let id = |u: Option<User>, me: &Self| u.map(|u| me.users.known(u.id.0));
        for &m in users.iter().chain([NO_USER].iter()) {
            let uid = UserId(self.users.store(m));
            let u = db.get_user(&uid).expect("get_user");
            d.users.push(u.map(|u| self.user(&u, Fresh::default())));
            let l = db.list_sessions(&uid).expect("list_sessions");
            d.lists
                .push(l.iter().map(|s| self.session_info(s)).collect());
        }
        for e in EMAILS {
            d.by_email.push(id(
                db.get_user_by_email(e).expect("get_user_by_email"),
                self,
            ));
            for p in 0..PASSWORD_COUNT {
                let r = db.get_user_by_credentials(&Credentials {
                    email: e.to_owned(),
                    password: password(p),
                });
                let r = self.map(r, |me, u| id(u, me));
                d.by_credentials.push(r);
            }
        }
        for p in PROVIDERS {
            for acc in PROVIDER_ACCOUNT_IDS {
                let u = db
                    .get_user_by_provider_account_id(p, acc)
                    .expect("get_user_by_provider_account_id");
                d.by_account.push(id(u, self));
            }
        }
        let tokens: Vec<String> = self.tokens.iter().map(|(t, _)| t.clone()).collect();
        for t in &tokens {
            let s = db.get_session(t).expect("get_session");
            d.by_token
                .push(s.map(|s| self.session(&s, Fresh::default())));
        }
        for e in EMAILS {
            for t in TOKENS {
                for s in SECRETS {
                    let r = db
                        .get_verification_request(e, t, s, &self.providers[0])
                        .expect("get_verification_request");
                    d.requests.push(r.map(|r| {
                        (
                            r.identifier,
                            Secret(r.token),
                            exact(r.expires),
                            exact(r.created_at),
                            exact(r.updated_at),
                        )
                    }));
                }
            }
        }
        d
    }

    /// The same digest from a model (mutates it as the store's reads mutate the store).
    fn digest_model(&self, m: &mut Reference) -> Digest {
        let seen_user = |mut u: MUser| {
            u.id = self.users.seen(u.id);
            u
        };
        let seen_info = |mut s: MSessionInfo| {
            s.id = self.sessions.seen(s.id);
            s.user = self.users.seen(s.user);
            s
        };
        let mut d = Digest {
            counts: m.counts(),
            users: Vec::new(),
            lists: Vec::new(),
            by_email: Vec::new(),
            by_account: Vec::new(),
            by_credentials: Vec::new(),
            by_token: Vec::new(),
            requests: Vec::new(),
        };
        for &u in self.users_seen.iter().chain([NO_USER].iter()) {
            d.users.push(m.get_user(u).map(seen_user));
            d.lists
                .push(m.list_sessions(u).into_iter().map(seen_info).collect());
        }
        for e in EMAILS {
            d.by_email
                .push(m.get_user_by_email(e).map(|u| self.users.seen(u.id)));
            for p in 0..PASSWORD_COUNT {
                d.by_credentials.push(
                    m.get_user_by_credentials(e, &password(p))
                        .map(|u| u.map(|u| self.users.seen(u.id))),
                );
            }
        }
        for p in PROVIDERS {
            for acc in PROVIDER_ACCOUNT_IDS {
                d.by_account
                    .push(m.get_user_by_account(p, acc).map(|u| self.users.seen(u.id)));
            }
        }
        for (t, _) in &self.tokens {
            d.by_token.push(m.get_session(t).map(|mut s| {
                s.id = self.sessions.seen(s.id);
                s.user = self.users.seen(s.user);
                s
            }));
        }
        for e in EMAILS {
            for t in TOKENS {
                for s in SECRETS {
                    d.requests.push(
                        m.get_request(e, t, s).map(|r| {
                            (r.identifier, r.token, r.expires, r.created_at, r.updated_at)
                        }),
                    );
                }
            }
        }
        d
    }
}

fn counts(r: &authdb::IntegrityReport) -> Counts {
    Counts {
        users: r.users,
        accounts: r.accounts,
        sessions: r.sessions,
        verification_requests: r.verification_requests,
        credentials: r.credentials,
    }
}
