//! Concurrency stress, sized for 2 cores: worker threads run mixed operations on small shared
//! domains (so they collide) against one `AuthDb` for a bounded time, while a checker thread
//! verifies snapshots. Every few hundred milliseconds all workers meet for three one-winner
//! races (same email, same verification link, same provider account).
//!
//! Expected: no deadlock, no error other than the conflicts and missing users that concurrent
//! work can cause, every snapshot's integrity check clean, exactly one winner per race, and at
//! the end the model invariants and a clean integrity check, also after reopening the file.
//!
//! `AUTHDB_STRESS_SECS` (default 5) sets the duration, `AUTHDB_STRESS_SEED` the seed.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use authdb::prelude::*;
use authdb::{
    AuthDb, Credentials, EmailProvider, Error, ManualClock, User, UserId, normalize_email,
};
use common::{Rng, TempDb, env_u64, oauth_account, profile};

const WORKERS: usize = 5;
const EPOCH: Duration = Duration::from_millis(250);
const EMAILS: u64 = 12;
const PROVIDERS: [&str; 2] = ["github", "google"];
const PROVIDER_ACCOUNTS: u64 = 10;
const VTOKENS: u64 = 6;
const SECRET: &str = "stress-secret";
const PASSWORD: &str = "stress password";
/// Beyond the run time, how long the threads may take to finish before it is called a hang.
const HANG_SLACK: Duration = Duration::from_secs(120);
const DEFAULT_SEED: u64 = 0x57E5_5000;

fn provider() -> EmailProvider {
    EmailProvider::new("email", |_| Ok(())).max_age(chrono::Duration::hours(6))
}

/// A domain email in a random spelling (case and white space differ; the normalized form not).
fn spelled(rng: &mut Rng) -> String {
    let i = rng.below(EMAILS);
    let base = format!("u{i}@stress.test");
    match rng.below(4) {
        0 => base,
        1 => base.to_uppercase(),
        2 => format!("  {base}\t"),
        _ => format!("U{i}@Stress.Test"),
    }
}

/// What one kind of operation returned over the run.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    ok: u64,
    conflict: u64,
    user_not_found: u64,
}

/// Everything the threads share.
struct Shared {
    clock: Arc<ManualClock>,
    provider: EmailProvider,
    /// Every user id ever created by the mixed work (deleted ones included).
    users: Mutex<Vec<UserId>>,
    /// Every session token ever issued.
    tokens: Mutex<Vec<String>>,
    /// Unexpected errors and broken invariants seen by any thread.
    failures: Mutex<Vec<String>>,
    tallies: Mutex<BTreeMap<&'static str, Tally>>,
    races: Mutex<Vec<RaceEntry>>,
    ops: AtomicU64,
    snapshots: AtomicU64,
}

impl Shared {
    fn fail(&self, what: String) {
        self.failures.lock().unwrap().push(what);
    }

    /// Counts a result; anything but success or one of the `allowed` errors is a failure.
    fn outcome<T>(&self, op: &'static str, r: authdb::Result<T>, allowed: &[Allowed]) -> Option<T> {
        self.ops.fetch_add(1, Ordering::Relaxed);
        let mut tallies = self.tallies.lock().unwrap();
        let t = tallies.entry(op).or_default();
        match r {
            Ok(v) => {
                t.ok += 1;
                Some(v)
            }
            Err(e) if e.is_conflict() && allowed.contains(&Allowed::Conflict) => {
                t.conflict += 1;
                None
            }
            Err(Error::UserNotFound(_)) if allowed.contains(&Allowed::UserNotFound) => {
                t.user_not_found += 1;
                None
            }
            Err(e) => {
                drop(tallies);
                self.fail(format!("{op}: unexpected error {e} ({e:?})"));
                None
            }
        }
    }

    /// A user id from the registry: mostly a recent one (likely alive), sometimes any.
    fn random_user(&self, rng: &mut Rng) -> Option<UserId> {
        let users = self.users.lock().unwrap();
        if users.is_empty() {
            return None;
        }
        let n = users.len();
        let i = if rng.chance(3, 4) {
            n - 1 - rng.index(n.min(16))
        } else {
            rng.index(n)
        };
        Some(users[i])
    }

    fn random_token(&self, rng: &mut Rng) -> Option<String> {
        let tokens = self.tokens.lock().unwrap();
        (!tokens.is_empty()).then(|| tokens[rng.index(tokens.len())].clone())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Allowed {
    Conflict,
    UserNotFound,
}
use Allowed::{Conflict, UserNotFound};

/// One mixed operation, chosen at random.
fn mixed_op(s: &Shared, db: &AuthDb, rng: &mut Rng) {
    let account = |rng: &mut Rng| {
        oauth_account(
            PROVIDERS[rng.index(2)],
            &format!("pa{}", rng.below(PROVIDER_ACCOUNTS)),
            None,
            None,
        )
    };
    match rng.below(20) {
        0 | 1 => {
            let email = spelled(rng);
            if let Some(u) = s.outcome("create_user", db.create_user(&profile(&email)), &[Conflict])
            {
                s.users.lock().unwrap().push(u.id);
            }
        }
        2 => {
            let Some(id) = s.random_user(rng) else { return };
            let Some(Some(u)) = s.outcome("get_user", db.get_user(&id), &[]) else {
                return;
            };
            let email = spelled(rng);
            let r = db.update_user(&User {
                email: Some(email),
                name: Some(format!("n{}", rng.below(100))),
                ..u
            });
            s.outcome("update_user", r, &[Conflict, UserNotFound]);
        }
        3 => {
            if let Some(id) = s.random_user(rng) {
                s.outcome("delete_user", db.delete_user(&id), &[]);
            }
        }
        4 => {
            if let Some(id) = s.random_user(rng) {
                let a = account(rng);
                s.outcome(
                    "link_account",
                    db.link_account(&id, &a),
                    &[Conflict, UserNotFound],
                );
            }
        }
        5 => {
            if let Some(id) = s.random_user(rng) {
                let a = account(rng);
                let r = db.unlink_account(&id, &a.provider_id, &a.provider_account_id);
                s.outcome("unlink_account", r, &[]);
            }
        }
        6 | 7 => {
            if let Some(id) = s.random_user(rng)
                && let Some(sess) =
                    s.outcome("create_session", db.create_session(&id), &[UserNotFound])
            {
                s.tokens.lock().unwrap().push(sess.session_token);
            }
        }
        8 => {
            let Some(t) = s.random_token(rng) else { return };
            if let Some(Some(sess)) = s.outcome("get_session", db.get_session(&t), &[]) {
                let force = rng.chance(1, 2);
                if let Some(Some(up)) =
                    s.outcome("update_session", db.update_session(&sess, force), &[])
                    && up.user_id != sess.user_id
                {
                    s.fail("update_session moved a session to another user".into());
                }
            }
        }
        9 => {
            if let Some(t) = s.random_token(rng) {
                s.outcome("delete_session", db.delete_session(&t), &[]);
            }
        }
        10 => {
            let Some(id) = s.random_user(rng) else { return };
            if rng.chance(1, 2) {
                s.outcome("delete_sessions", db.delete_sessions(&id), &[]);
            } else if let Some(list) = s.outcome("list_sessions", db.list_sessions(&id), &[]) {
                if list.iter().any(|x| x.user_id != id) {
                    s.fail("list_sessions returned another user's session".into());
                }
                if let Some(first) = list.first() {
                    let r = db.delete_session_by_id(&id, &first.id);
                    s.outcome("delete_session_by_id", r, &[]);
                }
            }
        }
        11 => {
            if let Some(id) = s.random_user(rng) {
                s.outcome(
                    "set_password",
                    db.set_password(&id, PASSWORD),
                    &[UserNotFound],
                );
            }
        }
        12 => {
            let email = spelled(rng);
            let c = Credentials {
                email: email.clone(),
                password: PASSWORD.into(),
            };
            if let Some(Some(u)) = s.outcome(
                "get_user_by_credentials",
                db.get_user_by_credentials(&c),
                &[],
            ) && u.email.as_deref().map(normalize_email) != Some(normalize_email(&email))
            {
                s.fail("get_user_by_credentials returned a user with another email".into());
            }
        }
        13 => {
            let ident = spelled(rng);
            let token = vtoken(rng.below(VTOKENS));
            let r = db.create_verification_request(
                &ident,
                "https://x.test/cb",
                &token,
                SECRET,
                &s.provider,
            );
            s.outcome("create_verification_request", r, &[Conflict]);
        }
        14 => {
            // Email sign-in as one transaction: consume the link, find or create the user,
            // create a session. Inside one transaction the email cannot be taken in between.
            let ident = spelled(rng);
            let token = vtoken(rng.below(VTOKENS));
            let r = db.write(|tx| {
                let Some(_req) = tx.use_verification_request(&ident, &token, SECRET)? else {
                    return Ok(None);
                };
                let user = match tx.get_user_by_email(&ident)? {
                    Some(u) => u,
                    None => tx.create_user(&profile(&ident))?,
                };
                Ok(Some((user.id, tx.create_session(&user.id)?)))
            });
            if let Some(Some((uid, sess))) = s.outcome("email_sign_in_flow", r, &[]) {
                s.users.lock().unwrap().push(uid);
                s.tokens.lock().unwrap().push(sess.session_token);
            }
        }
        15 => {
            let ident = spelled(rng);
            let token = vtoken(rng.below(VTOKENS));
            if rng.chance(1, 2) {
                let r = db.get_verification_request(&ident, &token, SECRET, &s.provider);
                if let Some(Some(v)) = s.outcome("get_verification_request", r, &[])
                    && normalize_email(&v.identifier) != normalize_email(&ident)
                {
                    s.fail("get_verification_request: another identifier".into());
                }
            } else {
                let r = db.delete_verification_request(&ident, &token, SECRET, &s.provider);
                s.outcome("delete_verification_request", r, &[]);
            }
        }
        16 => {
            // OAuth sign-up as one transaction.
            let email = spelled(rng);
            let a = account(rng);
            let r = db.write(|tx| {
                let u = tx.create_user(&profile(&email))?;
                tx.link_account(&u.id, &a)?;
                Ok((u.id, tx.create_session(&u.id)?))
            });
            if let Some((uid, sess)) = s.outcome("oauth_sign_up_flow", r, &[Conflict]) {
                s.users.lock().unwrap().push(uid);
                s.tokens.lock().unwrap().push(sess.session_token);
            }
        }
        17 => {
            let email = spelled(rng);
            if let Some(Some(u)) = s.outcome("get_user_by_email", db.get_user_by_email(&email), &[])
                && u.email.as_deref().map(normalize_email) != Some(normalize_email(&email))
            {
                s.fail("get_user_by_email returned a user with another email".into());
            }
        }
        18 => {
            let a = account(rng);
            let r = db.get_user_by_provider_account_id(&a.provider_id, &a.provider_account_id);
            s.outcome("get_user_by_provider_account_id", r, &[]);
        }
        _ => {
            s.outcome("purge_expired", db.purge_expired(), &[]);
        }
    }
}

/// The outcome of one worker in one race.
#[derive(Debug, Clone)]
struct RaceEntry {
    epoch: usize,
    kind: &'static str,
    /// The user that won (for the email and link races), if this worker won.
    won_user: Option<UserId>,
    won: bool,
}

fn race_email(epoch: usize) -> String {
    format!("race-{epoch}@race.test")
}

fn race_token(epoch: usize) -> String {
    format!("race-token-{epoch}-5f1e0c7a2b9d4e8f6a3c")
}

/// The raw verification token with this index (over the 128-bit entropy floor).
fn vtoken(i: u64) -> String {
    format!("vtoken-{i}-5f1e0c7a2b9d4e8f6a3c1b0d")
}

/// The three one-winner races of one epoch; every worker runs this between barriers.
fn races(s: &Shared, db: &AuthDb, barrier: &Barrier, epoch: usize, worker: usize) {
    let record = |kind: &'static str, won: bool, won_user: Option<UserId>| {
        s.races.lock().unwrap().push(RaceEntry {
            epoch,
            kind,
            won_user,
            won,
        });
    };
    // Set-up: each worker's own user for the link race, worker 0's verification request.
    let own = s.outcome(
        "race setup: create_user",
        db.create_user(&profile(&format!("link-{epoch}-{worker}@race.test"))),
        &[],
    );
    if worker == 0 {
        let r = db.create_verification_request(
            &race_email(epoch),
            "https://x.test/cb",
            &race_token(epoch),
            SECRET,
            &s.provider,
        );
        s.outcome("race setup: create_verification_request", r, &[]);
    }

    barrier.wait();
    let email = match worker % 4 {
        0 => race_email(epoch),
        1 => race_email(epoch).to_uppercase(),
        2 => format!(" {} ", race_email(epoch)),
        _ => format!("Race-{epoch}@Race.Test"),
    };
    let r = s.outcome(
        "race: create_user",
        db.create_user(&profile(&email)),
        &[Conflict],
    );
    record("email", r.is_some(), r.map(|u| u.id));

    barrier.wait();
    let r = db.use_verification_request(&race_email(epoch), &race_token(epoch), SECRET);
    let used = s
        .outcome("race: use_verification_request", r, &[])
        .flatten();
    record("verification", used.is_some(), None);

    barrier.wait();
    if let Some(own) = own {
        let r = db.link_account(
            &own.id,
            &oauth_account("race", &epoch.to_string(), None, None),
        );
        let won = s.outcome("race: link_account", r, &[Conflict]).is_some();
        record("link", won, won.then_some(own.id));
    }
}

fn worker(s: &Shared, db: &AuthDb, barrier: &Barrier, start: Instant, epochs: usize, id: usize) {
    let seed = env_u64("AUTHDB_STRESS_SEED", DEFAULT_SEED);
    let mut rng = Rng::new(seed ^ (id as u64).wrapping_mul(0xA24B_AED4_963E_E407));
    for epoch in 0..epochs {
        let end = start + EPOCH * (epoch as u32 + 1);
        while Instant::now() < end {
            mixed_op(s, db, &mut rng);
        }
        barrier.wait();
        races(s, db, barrier, epoch, id);
        barrier.wait();
        if id == 0 {
            // Time moves between epochs only, never during a race: sessions (12 h) and links
            // (6 h) expire over the run.
            s.clock
                .advance(chrono::Duration::minutes(30 + rng.below(240).cast_signed()));
        }
    }
}

/// The read-only checker: integrity of every snapshot, and answers that agree with the query.
fn checker(s: &Shared, db: &AuthDb, stop: &AtomicBool) {
    let seed = env_u64("AUTHDB_STRESS_SEED", DEFAULT_SEED);
    let mut rng = Rng::new(seed ^ 0xC0DE);
    while !stop.load(Ordering::Relaxed) {
        match db.check_integrity() {
            Ok(r) if r.is_clean() => {}
            Ok(r) => s.fail(format!("snapshot integrity problems:\n{r}")),
            Err(e) => s.fail(format!("check_integrity: {e}")),
        }
        s.snapshots.fetch_add(1, Ordering::Relaxed);
        for _ in 0..20 {
            let email = spelled(&mut rng);
            match db.get_user_by_email(&email) {
                Ok(Some(u))
                    if u.email.as_deref().map(normalize_email) != Some(normalize_email(&email)) =>
                {
                    s.fail("checker: get_user_by_email answered another email".into());
                }
                Ok(_) => {}
                Err(e) => s.fail(format!("checker: get_user_by_email: {e}")),
            }
            if let Some(id) = s.random_user(&mut rng) {
                match db.list_sessions(&id) {
                    Ok(list) if list.iter().any(|x| x.user_id != id) => {
                        s.fail("checker: list_sessions answered another user's".into());
                    }
                    Ok(_) => {}
                    Err(e) => s.fail(format!("checker: list_sessions: {e}")),
                }
            }
        }
        let w = db.write_stats();
        if w.transactions > w.operations {
            s.fail(format!(
                "write stats: {w:?} (more transactions than operations)"
            ));
        }
    }
}

/// The counts a clean file must have, derived from everything the threads created.
#[derive(Debug, PartialEq, Eq)]
struct Counts {
    users: u64,
    accounts: u64,
    sessions: u64,
    verification_requests: u64,
    credentials: u64,
}

/// Checks the end-state invariants and returns the counts derived from the model.
fn final_invariants(s: &Shared, db: &AuthDb, epochs: usize) -> Counts {
    // Every user ever created: the mixed ones, the race winners and the link-race users.
    let mut ids: BTreeSet<UserId> = s.users.lock().unwrap().iter().copied().collect();
    for e in 0..epochs {
        for w in 0..WORKERS {
            if let Some(u) = db
                .get_user_by_email(&format!("link-{e}-{w}@race.test"))
                .unwrap()
            {
                ids.insert(u.id);
            }
        }
        if let Some(u) = db.get_user_by_email(&race_email(e)).unwrap() {
            ids.insert(u.id);
        }
    }
    let mut emails = BTreeMap::new();
    let mut live = Vec::new();
    for id in &ids {
        let Some(u) = db.get_user(id).unwrap() else {
            continue;
        };
        if let Some(email) = &u.email {
            let n = normalize_email(email);
            // Each email maps to at most one user, and the index agrees.
            assert!(
                emails.insert(n.clone(), u.id).is_none(),
                "two users with email {n}"
            );
            assert_eq!(db.get_user_by_email(&n).unwrap().map(|x| x.id), Some(u.id));
        }
        live.push(u);
    }
    // Every live session belongs to a live user.
    let mut sessions = 0;
    let tokens: BTreeSet<String> = s.tokens.lock().unwrap().iter().cloned().collect();
    for t in &tokens {
        if let Some(sess) = db.get_session(t).unwrap() {
            assert!(
                db.get_user(&sess.user_id).unwrap().is_some(),
                "session of a missing user"
            );
            sessions += 1;
        }
    }
    for u in &live {
        for info in db.list_sessions(&u.id).unwrap() {
            assert_eq!(info.user_id, u.id);
        }
    }
    // Every linked account belongs to a live user; domain and race accounts.
    let mut accounts = 0;
    let mut keys: Vec<(String, String)> = Vec::new();
    for p in PROVIDERS {
        for i in 0..PROVIDER_ACCOUNTS {
            keys.push((p.to_owned(), format!("pa{i}")));
        }
    }
    for e in 0..epochs {
        keys.push(("race".to_owned(), e.to_string()));
    }
    for (p, pa) in &keys {
        if let Some(u) = db.get_user_by_provider_account_id(p, pa).unwrap() {
            assert!(
                live.iter().any(|l| l.id == u.id),
                "account of an unknown user"
            );
            accounts += 1;
        }
    }
    let mut verification_requests = 0;
    for i in 0..EMAILS {
        for t in 0..VTOKENS {
            let ident = format!("u{i}@stress.test");
            let r = db
                .get_verification_request(&ident, &vtoken(t), SECRET, &s.provider)
                .unwrap();
            verification_requests += u64::from(r.is_some());
        }
    }
    let mut credentials = 0;
    for u in &live {
        let Some(email) = &u.email else { continue };
        let c = Credentials {
            email: email.clone(),
            password: PASSWORD.into(),
        };
        if let Some(found) = db.get_user_by_credentials(&c).unwrap() {
            assert_eq!(found.id, u.id);
            credentials += 1;
        }
    }
    Counts {
        users: live.len() as u64,
        accounts,
        sessions,
        verification_requests,
        credentials,
    }
}

fn report_counts(db: &AuthDb) -> Counts {
    let r = db.check_integrity().unwrap();
    assert!(r.is_clean(), "integrity problems at the end:\n{r}");
    Counts {
        users: r.users,
        accounts: r.accounts,
        sessions: r.sessions,
        verification_requests: r.verification_requests,
        credentials: r.credentials,
    }
}

/// Checks the races: exactly one winner each, and the stored state names that winner.
fn check_races(s: &Shared, db: &AuthDb, epochs: usize) {
    let races = s.races.lock().unwrap();
    for e in 0..epochs {
        for kind in ["email", "verification", "link"] {
            let entries: Vec<_> = races
                .iter()
                .filter(|r| r.epoch == e && r.kind == kind)
                .collect();
            assert_eq!(entries.len(), WORKERS, "epoch {e} {kind}: every worker ran");
            let winners: Vec<_> = entries.iter().filter(|r| r.won).collect();
            assert_eq!(
                winners.len(),
                1,
                "epoch {e} {kind}: exactly one winner: {entries:?}"
            );
            let w = winners[0].won_user;
            match kind {
                "email" => {
                    let stored = db.get_user_by_email(&race_email(e)).unwrap().map(|u| u.id);
                    assert_eq!(stored, w, "epoch {e}: the email belongs to the winner");
                }
                "link" => {
                    let stored = db
                        .get_user_by_provider_account_id("race", &e.to_string())
                        .unwrap()
                        .map(|u| u.id);
                    assert_eq!(stored, w, "epoch {e}: the account belongs to the winner");
                }
                _ => {
                    let r = db
                        .get_verification_request(
                            &race_email(e),
                            &race_token(e),
                            SECRET,
                            &s.provider,
                        )
                        .unwrap();
                    assert!(r.is_none(), "epoch {e}: the used link is gone");
                }
            }
        }
    }
}

#[test]
fn mixed_operations_from_many_threads_keep_every_invariant() {
    let secs = env_u64("AUTHDB_STRESS_SECS", 5);
    let epochs = usize::try_from(secs * 1000 / EPOCH.as_millis() as u64)
        .unwrap()
        .max(1);
    let t = TempDb::new();
    let open = || {
        common::builder(&t.clock)
            .session_max_age(chrono::Duration::hours(12))
            .session_update_age(chrono::Duration::hours(1))
            .open(t.path())
            .unwrap()
    };
    let db = open();
    let shared = Arc::new(Shared {
        clock: t.clock.clone(),
        provider: provider(),
        users: Mutex::default(),
        tokens: Mutex::default(),
        failures: Mutex::default(),
        tallies: Mutex::default(),
        races: Mutex::default(),
        ops: AtomicU64::new(0),
        snapshots: AtomicU64::new(0),
    });
    let stop = Arc::new(AtomicBool::new(false));
    let barrier = Arc::new(Barrier::new(WORKERS));
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let start = Instant::now();
    let mut handles = Vec::new();
    for id in 0..WORKERS {
        let (s, db, b, done) = (
            Arc::clone(&shared),
            db.clone(),
            Arc::clone(&barrier),
            done_tx.clone(),
        );
        handles.push(thread::spawn(move || {
            worker(&s, &db, &b, start, epochs, id);
            let _ = done.send(());
        }));
    }
    let (checker_done_tx, checker_done_rx) = mpsc::channel::<()>();
    let checker_handle = {
        let (s, db, stop) = (Arc::clone(&shared), db.clone(), Arc::clone(&stop));
        thread::spawn(move || {
            checker(&s, &db, &stop);
            let _ = checker_done_tx.send(());
        })
    };
    drop(done_tx);

    // Watchdog: every thread must finish within the run time plus a generous slack (a
    // deadlocked thread never does; the test then fails instead of hanging).
    let deadline = start + EPOCH * epochs as u32 + HANG_SLACK;
    for n in 0..WORKERS {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            done_rx.recv_timeout(left).is_ok(),
            "deadlock or hang: {} of {WORKERS} workers did not finish; failures so far: {:?}",
            WORKERS - n,
            shared.failures.lock().unwrap()
        );
    }
    stop.store(true, Ordering::Relaxed);
    assert!(
        checker_done_rx.recv_timeout(HANG_SLACK).is_ok(),
        "the checker thread hangs"
    );
    for h in handles {
        h.join().unwrap();
    }
    checker_handle.join().unwrap();

    let failures = shared.failures.lock().unwrap().clone();
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );

    check_races(&shared, &db, epochs);
    db.purge_expired().unwrap();
    let expected = final_invariants(&shared, &db, epochs);
    assert_eq!(
        report_counts(&db),
        expected,
        "the file holds exactly what the threads made"
    );
    println!(
        "stress: {secs} s, {WORKERS} workers + 1 checker, {epochs} race rounds x 3 races, {} \
         operations, {} clean snapshots, write stats {:?}, end state {expected:?}",
        shared.ops.load(Ordering::Relaxed),
        shared.snapshots.load(Ordering::Relaxed),
        db.write_stats(),
    );
    for (op, t) in shared.tallies.lock().unwrap().iter() {
        println!("  {op}: {t:?}");
    }

    // Reopen: the same state, still clean.
    drop(db);
    let db = open();
    assert_eq!(report_counts(&db), expected, "after reopening");
    assert_eq!(
        final_invariants(&shared, &db, epochs),
        expected,
        "after reopening"
    );
    check_races(&shared, &db, epochs);
}
