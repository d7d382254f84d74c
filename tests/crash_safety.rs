//! Crash safety: a writer process is killed with SIGKILL at random moments; after each kill the
//! file reopens with every acknowledged operation fully present, every interrupted one either
//! fully applied or not at all, and a clean integrity check.
//!
//! The writer is this test binary run again (`crash_child`, a test that does nothing unless
//! `AUTHDB_CRASH_CHILD` names a database file). It runs several threads of durable operations:
//! atomic OAuth sign-ups through `AuthDb::write`, single operations (which go through group
//! commit) and verification requests. Before each operation it prints a `BEGIN` line and after
//! the commit returns an `ACK` line, flushed, on stdout; the parent reads them on a pipe.
//!
//! `AUTHDB_CRASH_ROUNDS` sets the number of kills (default 60), `AUTHDB_CRASH_SEED` the seed of
//! the kill delays, `AUTHDB_CRASH_MAX_DELAY_MS` (default 250) the longest delay from starting the
//! writer to killing it. The same file is used for every round, so data acknowledged in early
//! rounds must survive every later crash and recovery too. Reopens alternate between
//! `verify_on_open(true)` and `(false)` (redb's own recovery of an unclean file).
//!
//! The session tokens in ACK lines travel only on the pipe between the two processes (test
//! data); the parent never prints them.
#![cfg(unix)]

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use authdb::prelude::*;
use authdb::{AuthDb, Credentials, Durability, EmailProvider, User};
use common::{Rng, env_u64, fast_passwords, oauth_account, profile};

const CHILD_ENV: &str = "AUTHDB_CRASH_CHILD";
const TAG_ENV: &str = "AUTHDB_CRASH_TAG";
const CHILD_TEST: &str = "crash_child";
const PROVIDER: &str = "github";
const SECRET: &str = "crash-test-secret";
const RENAMED: &str = "renamed";
/// A child that has not been killed after this long stops by itself (the parent then fails).
const CHILD_MAX_RUN: Duration = Duration::from_secs(30);

fn provider() -> EmailProvider {
    EmailProvider::new("email", |_| Ok(()))
}

/// A raw token of 32 hex characters (128 bits, the store's entropy floor), one per identifier.
fn verification_token(ident: &str) -> String {
    authdb::hash_verification_token(ident, "crash-token")[..32].to_owned()
}

fn password_for(email: &str) -> String {
    format!("pw-{email}")
}

// ---------------------------------------------------------------------------------------------
// The child: durable writes, a BEGIN line before and an ACK line after each one.
// ---------------------------------------------------------------------------------------------

/// Writes one whole line to stdout and flushes it (the parent reads it on a pipe).
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    out.write_all(line.as_bytes()).unwrap();
    out.write_all(b"\n").unwrap();
    out.flush().unwrap();
}

/// Stops the child with a message on stderr (the parent shows it: the child must only end by
/// being killed).
fn child_fail(what: &str, e: &authdb::Error) -> ! {
    eprintln!("crash child: {what} failed: {e}");
    std::process::exit(3);
}

/// Runs `f` and ends the child on error; `what` never contains a secret.
fn must<T>(what: &str, r: authdb::Result<T>) -> T {
    r.unwrap_or_else(|e| child_fail(what, &e))
}

/// OAuth sign-ups (user + account + session) in one transaction each.
fn child_signups(db: &AuthDb, tag: &str, stop: Instant) {
    for n in 0.. {
        if Instant::now() > stop {
            return;
        }
        let email = format!("{tag}-s{n}@crash.test");
        let pa = format!("{tag}-s{n}");
        say(&format!("BEGIN SIGNUP {email} {pa}"));
        let session = must(
            "sign-up",
            db.write(|tx| {
                let user = tx.create_user(&profile(&email))?;
                tx.link_account(&user.id, &oauth_account(PROVIDER, &pa, None, None))?;
                tx.create_session(&user.id)
            }),
        );
        say(&format!("ACK SIGNUP {email} {}", session.session_token));
    }
}

/// Single operations (each goes through group commit, shared with the other threads).
fn child_singles(db: &AuthDb, tag: &str, thread: usize, stop: Instant) {
    for n in 0.. {
        if Instant::now() > stop {
            return;
        }
        let email = format!("{tag}-g{thread}-{n}@crash.test");
        say(&format!("BEGIN USER {email}"));
        let user = must("create_user", db.create_user(&profile(&email)));
        say(&format!("ACK USER {email}"));

        say(&format!("BEGIN SESSION {email}"));
        let session = must("create_session", db.create_session(&user.id));
        say(&format!("ACK SESSION {email} {}", session.session_token));

        if n % 2 == 0 {
            say(&format!("BEGIN RENAME {email}"));
            must(
                "update_user",
                db.update_user(&User {
                    name: Some(RENAMED.to_owned()),
                    ..user.clone()
                }),
            );
            say(&format!("ACK RENAME {email}"));
        }
        if n % 4 == 1 {
            say(&format!("BEGIN PASSWORD {email}"));
            must(
                "set_password",
                db.set_password(&user.id, &password_for(&email)),
            );
            say(&format!("ACK PASSWORD {email}"));
        }
        if n % 3 == 0 {
            say(&format!("BEGIN DELSESSION {email}"));
            must("delete_session", db.delete_session(&session.session_token));
            say(&format!("ACK DELSESSION {email}"));
        }
    }
}

/// Verification requests, half of them used (single-use consume) right away.
fn child_verifications(db: &AuthDb, tag: &str, stop: Instant) {
    let provider = provider();
    for n in 0.. {
        if Instant::now() > stop {
            return;
        }
        let ident = format!("{tag}-v{n}@crash.test");
        let token = verification_token(&ident);
        say(&format!("BEGIN VREQ {ident}"));
        must(
            "create_verification_request",
            db.create_verification_request(&ident, "https://x.test/cb", &token, SECRET, &provider),
        );
        say(&format!("ACK VREQ {ident}"));
        let w = db.write_stats();
        say(&format!("STATS {} {}", w.operations, w.transactions));
        if n % 2 == 0 {
            say(&format!("BEGIN VUSE {ident}"));
            let used = must(
                "use_verification_request",
                db.use_verification_request(&ident, &token, SECRET),
            );
            let result = if used.is_some() { "some" } else { "none" };
            say(&format!("ACK VUSE {ident} {result}"));
        }
    }
}

/// The writer process. A no-op when run as an ordinary test.
#[test]
fn crash_child() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let tag = std::env::var(TAG_ENV).expect("AUTHDB_CRASH_TAG is set by the parent");
    let db = AuthDb::builder()
        .password_params(fast_passwords())
        .durability(Durability::Immediate)
        // The parent's model keeps a user's session across a password change.
        .password_change_ends_sessions(false)
        .open(&path)
        .unwrap_or_else(|e| child_fail("open", &e));
    say("READY");
    let stop = Instant::now() + CHILD_MAX_RUN;
    let tag = Arc::new(tag);
    let mut handles = Vec::new();
    {
        let (db, tag) = (db.clone(), Arc::clone(&tag));
        handles.push(thread::spawn(move || child_signups(&db, &tag, stop)));
    }
    for t in 1..=2 {
        let (db, tag) = (db.clone(), Arc::clone(&tag));
        handles.push(thread::spawn(move || child_singles(&db, &tag, t, stop)));
    }
    {
        let (db, tag) = (db.clone(), Arc::clone(&tag));
        handles.push(thread::spawn(move || child_verifications(&db, &tag, stop)));
    }
    for h in handles {
        h.join().unwrap();
    }
    say("DONE");
}

// ---------------------------------------------------------------------------------------------
// The parent: the model of what was acknowledged, and its check against the reopened file.
// ---------------------------------------------------------------------------------------------

/// Where one operation stands, as far as the parent knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum St {
    /// Not started, or found not applied after a crash: its effects must be absent.
    #[default]
    Absent,
    /// Started and not acknowledged when the writer was killed: either outcome is allowed once;
    /// the outcome found on the first reopen is then fixed for every later round.
    InFlight,
    /// Acknowledged, or found applied after a crash: its effects must be present.
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Op {
    Signup,
    User,
    Session,
    Rename,
    Password,
    DelSession,
    VReq,
    VUse,
}

impl Op {
    fn parse(s: &str) -> Self {
        match s {
            "SIGNUP" => Op::Signup,
            "USER" => Op::User,
            "SESSION" => Op::Session,
            "RENAME" => Op::Rename,
            "PASSWORD" => Op::Password,
            "DELSESSION" => Op::DelSession,
            "VREQ" => Op::VReq,
            "VUSE" => Op::VUse,
            other => panic!("unknown op {other:?} from the child"),
        }
    }
}

/// One email (a user, or a verification identifier) and the operations made on it.
#[derive(Debug, Default)]
struct Entity {
    ops: BTreeMap<Op, St>,
    provider_account_id: Option<String>,
    /// The session token, once acknowledged (never printed by the parent).
    token: Option<String>,
}

impl Entity {
    fn st(&self, op: Op) -> St {
        self.ops.get(&op).copied().unwrap_or_default()
    }
}

#[derive(Debug, Default)]
struct Model {
    entities: BTreeMap<String, Entity>,
    acked: u64,
    outcomes: Outcomes,
}

impl Model {
    /// Applies the child's complete output lines of one round.
    fn apply(&mut self, lines: &[String]) {
        for line in lines {
            let mut f = line.split(' ');
            let (Some(verb), Some(op), Some(key)) = (f.next(), f.next(), f.next()) else {
                continue;
            };
            if verb != "BEGIN" && verb != "ACK" {
                continue;
            }
            let op = Op::parse(op);
            let extra = f.next();
            let e = self.entities.entry(key.to_owned()).or_default();
            if verb == "BEGIN" {
                assert_eq!(e.st(op), St::Absent, "{op:?} {key} begun twice");
                e.ops.insert(op, St::InFlight);
                if op == Op::Signup {
                    e.provider_account_id = extra.map(str::to_owned);
                }
            } else {
                assert_eq!(e.st(op), St::InFlight, "{op:?} {key} acked without a begin");
                e.ops.insert(op, St::Done);
                self.acked += 1;
                match op {
                    Op::Signup | Op::Session => e.token = extra.map(str::to_owned),
                    Op::VUse => assert_eq!(extra, Some("some"), "VUSE {key}: a fresh link works"),
                    _ => {}
                }
            }
        }
    }
}

/// How the interrupted operations turned out.
#[derive(Debug, Default)]
struct Outcomes {
    applied: u64,
    absent: u64,
}

/// Checks operation `op` of `e` against whether its effect is `applied` in the file, and fixes
/// an interrupted operation's outcome for later rounds.
fn settle(e: &mut Entity, op: Op, applied: bool, key: &str, out: &mut Outcomes) {
    let st = e.st(op);
    match st {
        St::Done => assert!(
            applied,
            "{op:?} {key}: acknowledged (or seen applied) but missing"
        ),
        St::Absent => assert!(
            !applied,
            "{op:?} {key}: never begun (or seen absent) but present"
        ),
        St::InFlight => {
            let now = if applied {
                out.applied += 1;
                St::Done
            } else {
                out.absent += 1;
                St::Absent
            };
            e.ops.insert(op, now);
        }
    }
}

#[derive(Debug, Default, PartialEq, Eq)]
struct Expected {
    users: u64,
    accounts: u64,
    sessions: u64,
    verification_requests: u64,
    credentials: u64,
}

/// The counts the integrity report must show, derived from the model alone (every operation
/// settled: done or absent).
fn expected_counts(model: &Model) -> Expected {
    let mut exp = Expected::default();
    for e in model.entities.values() {
        let done = |op| e.st(op) == St::Done;
        if done(Op::Signup) {
            exp.users += 1;
            exp.accounts += 1;
            exp.sessions += 1;
        }
        if done(Op::User) {
            exp.users += 1;
        }
        if done(Op::Session) && !done(Op::DelSession) {
            exp.sessions += 1;
        }
        if done(Op::Password) {
            exp.credentials += 1;
        }
        if done(Op::VReq) && !done(Op::VUse) {
            exp.verification_requests += 1;
        }
    }
    exp
}

/// Reopens the file and checks the entities whose key starts with `prefix` (all of them for
/// an empty prefix) one by one, then the counts of everything against the model. Returns how
/// many entities it checked one by one.
fn verify(path: &Path, model: &mut Model, verify_on_open: bool, prefix: &str) -> usize {
    let db = AuthDb::builder()
        .password_params(fast_passwords())
        .verify_on_open(verify_on_open)
        .open(path)
        .unwrap_or_else(|e| panic!("reopen after kill (verify_on_open={verify_on_open}): {e}"));
    let provider = provider();
    let mut checked = 0;
    for (key, e) in &mut model.entities {
        if !key.starts_with(prefix) {
            continue;
        }
        checked += 1;
        let out = &mut model.outcomes;
        if e.ops.contains_key(&Op::Signup) {
            check_signup(&db, key, e, out);
        } else if e.ops.contains_key(&Op::User) {
            check_single(&db, key, e, out);
        } else {
            check_verification(&db, key, e, out, &provider);
        }
    }
    let report = db.check_integrity().unwrap();
    assert!(
        report.is_clean(),
        "integrity problems after a kill:\n{report}"
    );
    let found = Expected {
        users: report.users,
        accounts: report.accounts,
        sessions: report.sessions,
        verification_requests: report.verification_requests,
        credentials: report.credentials,
    };
    assert_eq!(
        found,
        expected_counts(model),
        "the file holds exactly what the model expects"
    );
    checked
}

fn check_signup(db: &AuthDb, email: &str, e: &mut Entity, out: &mut Outcomes) {
    let pa = e.provider_account_id.clone().unwrap();
    let user = db.get_user_by_email(email).unwrap();
    let owner = db.get_user_by_provider_account_id(PROVIDER, &pa).unwrap();
    if let Some(u) = &user {
        assert_eq!(owner.as_ref().map(|o| o.id), Some(u.id), "{email}: account");
        assert_eq!(
            db.list_sessions(&u.id).unwrap().len(),
            1,
            "{email}: session"
        );
        if let Some(token) = &e.token {
            let s = db.get_session(token).unwrap();
            assert_eq!(
                s.map(|s| s.user_id),
                Some(u.id),
                "{email}: session by token"
            );
        }
    } else {
        assert!(
            owner.is_none(),
            "{email}: half a sign-up (account without user)"
        );
    }
    settle(e, Op::Signup, user.is_some(), email, out);
}

fn check_single(db: &AuthDb, email: &str, e: &mut Entity, out: &mut Outcomes) {
    let Some(u) = db.get_user_by_email(email).unwrap() else {
        // No user: nothing after its creation can have happened.
        for op in [
            Op::User,
            Op::Session,
            Op::Rename,
            Op::Password,
            Op::DelSession,
        ] {
            settle(e, op, false, email, out);
        }
        return;
    };
    settle(e, Op::User, true, email, out);

    let live = db.list_sessions(&u.id).unwrap().len();
    assert!(live <= 1, "{email}: {live} sessions, at most one was made");
    let live = live == 1;
    if let Some(token) = &e.token {
        let by_token = db.get_session(token).unwrap();
        assert_eq!(
            by_token.as_ref().map(|s| s.user_id),
            live.then_some(u.id),
            "{email}: session"
        );
    }
    if e.st(Op::DelSession) == St::Absent {
        settle(e, Op::Session, live, email, out);
    } else {
        assert_eq!(
            e.st(Op::Session),
            St::Done,
            "{email}: delete of an unacked session"
        );
        settle(e, Op::DelSession, !live, email, out);
    }

    match u.name.as_deref() {
        None => settle(e, Op::Rename, false, email, out),
        Some(RENAMED) => settle(e, Op::Rename, true, email, out),
        Some(other) => panic!("{email}: unexpected name {other:?}"),
    }

    // A password never set is covered by the credential count of the integrity report; only
    // one that was set (or may have been) is looked up (a lookup costs an argon2 verify).
    if e.st(Op::Password) != St::Absent {
        let by_pw = db
            .get_user_by_credentials(&Credentials {
                email: email.to_owned(),
                password: password_for(email),
            })
            .unwrap();
        if let Some(p) = &by_pw {
            assert_eq!(p.id, u.id);
        }
        settle(e, Op::Password, by_pw.is_some(), email, out);
    }
}

fn check_verification(
    db: &AuthDb,
    ident: &str,
    e: &mut Entity,
    out: &mut Outcomes,
    provider: &EmailProvider,
) {
    let found = db
        .get_verification_request(ident, &verification_token(ident), SECRET, provider)
        .unwrap();
    if let Some(r) = &found {
        assert_eq!(r.identifier, ident);
    }
    let present = found.is_some();
    if e.st(Op::VUse) == St::Absent {
        settle(e, Op::VReq, present, ident, out);
    } else {
        assert_eq!(
            e.st(Op::VReq),
            St::Done,
            "{ident}: use of an unacked request"
        );
        settle(e, Op::VUse, !present, ident, out);
    }
}

/// Reads complete lines (ending in a newline) until end of file; a line cut off by the kill is
/// not an acknowledgement.
fn read_lines(out: impl Read) -> Vec<String> {
    let mut r = BufReader::new(out);
    let mut lines = Vec::new();
    let mut buf = String::new();
    loop {
        buf.clear();
        match r.read_line(&mut buf) {
            Ok(0) | Err(_) => return lines,
            Ok(_) if buf.ends_with('\n') => lines.push(buf.trim_end().to_owned()),
            Ok(_) => return lines,
        }
    }
}

#[derive(Debug, Default)]
struct RoundStats {
    kills: u64,
    kills_before_ready: u64,
    acks: u64,
    /// The writers' group-commit counters, last seen in each round, summed:
    /// (single-operation writes, transactions).
    group_commit: (u64, u64),
}

fn one_round(path: &Path, round: u64, delay: Duration, model: &mut Model, stats: &mut RoundStats) {
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args(["--exact", CHILD_TEST, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, path)
        .env(TAG_ENV, format!("r{round}"))
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let reader = thread::spawn(move || read_lines(stdout));
    let err_reader = thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    // The random kill moment (not a wait for anything).
    thread::sleep(delay);
    let _ = child.kill();
    let status = child.wait().unwrap();
    let lines = reader.join().unwrap();
    let err = err_reader.join().unwrap();
    assert_eq!(
        status.signal(),
        Some(9),
        "round {round}: the writer must end by SIGKILL, it ended with {status}; stderr:\n{err}"
    );
    stats.kills += 1;
    if !lines.iter().any(|l| l.ends_with("READY")) {
        stats.kills_before_ready += 1;
    }
    if let Some(last) = lines.iter().rev().find_map(|l| l.strip_prefix("STATS ")) {
        let mut n = last.split(' ').map(|x| x.parse::<u64>().unwrap());
        stats.group_commit.0 += n.next().unwrap();
        stats.group_commit.1 += n.next().unwrap();
    }
    let before = model.acked;
    model.apply(&lines);
    stats.acks += model.acked - before;
}

#[test]
fn sigkill_at_random_moments_loses_nothing_acknowledged() {
    let rounds = env_u64("AUTHDB_CRASH_ROUNDS", 60);
    let seed = env_u64("AUTHDB_CRASH_SEED", 0x00C0_FFEE);
    let max_delay_ms = env_u64("AUTHDB_CRASH_MAX_DELAY_MS", 250);
    let mut rng = Rng::new(seed);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.redb");
    let mut model = Model::default();
    let mut stats = RoundStats::default();
    let mut full_checks = 0;
    for round in 0..rounds {
        let delay = Duration::from_millis(rng.below(max_delay_ms + 1));
        one_round(&path, round, delay, &mut model, &mut stats);
        // This round's entities one by one, every entity every tenth round; the counts of
        // everything every round. Alternate the two recovery paths: a full verify-and-repair,
        // and redb's own recovery of a file that was not shut down cleanly.
        let prefix = if round % 10 == 9 {
            full_checks += 1;
            String::new()
        } else {
            format!("r{round}-")
        };
        verify(&path, &mut model, round % 2 == 0, &prefix);
    }
    // One last clean open with the default settings checks everything once more.
    let checked = verify(&path, &mut model, true, "");
    println!(
        "crash safety: seed {seed:#x}, {rounds} rounds, {} kills ({} before the writer was \
         ready), {} acknowledged operations verified, {} entities checked one by one in {} full \
         checks, interrupted operations found applied {} / not applied {}; the writers' single \
         operations (at the last report before each kill) took {} commits for {} operations",
        stats.kills,
        stats.kills_before_ready,
        stats.acks,
        checked,
        full_checks + 1,
        model.outcomes.applied,
        model.outcomes.absent,
        stats.group_commit.1,
        stats.group_commit.0,
    );
    assert!(
        stats.acks > 0,
        "the writer acknowledged nothing in {rounds} rounds"
    );
}
