//! Several processes on one file (redb's shared modes): read-only handles, writer processes
//! racing for the same unique keys, a reader following a writer's commits, and a writer killed
//! mid-write while the others go on.
//!
//! The other processes are this test binary run again (`mp_child`, a test that does nothing
//! unless `AUTHDB_MP_CHILD` names a database file); each prints result lines on stdout.
#![cfg(unix)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use authdb::prelude::*;
use authdb::{AuthDb, Builder, Durability, EmailProvider, Error, ShareMode, UserId};
use common::{fast_passwords, oauth_account, profile};

const CHILD_ENV: &str = "AUTHDB_MP_CHILD";
const ROLE_ENV: &str = "AUTHDB_MP_ROLE";
const MODE_ENV: &str = "AUTHDB_MP_MODE";
const CHILD_TEST: &str = "mp_child";
const WRITERS: usize = 4;
/// A child still running after this long stops by itself.
const CHILD_MAX_RUN: Duration = Duration::from_secs(30);

fn builder(mode: ShareMode) -> Builder {
    AuthDb::builder()
        .share_mode(mode)
        .password_params(fast_passwords())
        .encryption_key(common::test_key())
}

fn mode_name(mode: ShareMode) -> &'static str {
    match mode {
        ShareMode::SingleWriter => "single",
        ShareMode::MultiWriter => "multi",
        _ => "exclusive",
    }
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").unwrap();
    out.flush().unwrap();
}

fn outcome<T>(r: &authdb::Result<T>) -> &'static str {
    match r {
        Ok(_) => "WON",
        Err(e) if e.is_conflict() => "LOST",
        Err(_) => "ERROR",
    }
}

/// The other process. A no-op when run as an ordinary test.
#[test]
fn mp_child() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let role = std::env::var(ROLE_ENV).unwrap();
    let mode = match std::env::var(MODE_ENV).unwrap().as_str() {
        "single" => ShareMode::SingleWriter,
        _ => ShareMode::MultiWriter,
    };
    let deadline = Instant::now() + CHILD_MAX_RUN;
    if role == "reader" {
        let db = builder(mode).open_read_only(&path).unwrap();
        say("READY");
        // Each line on stdin is a user id the writer has committed: it must become visible.
        for line in std::io::stdin().lock().lines() {
            let id: UserId = line.unwrap().trim().parse().unwrap();
            loop {
                if db.get_user(&id).unwrap().is_some() {
                    say(&format!("SEEN {id}"));
                    break;
                }
                assert!(Instant::now() < deadline, "never saw {id}");
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        return;
    }
    let db = builder(mode).open(&path).unwrap();
    say("READY");
    // Start together: wait for the parent's go (a line on stdin).
    let mut go = String::new();
    std::io::stdin().lock().read_line(&mut go).unwrap();
    match role.as_str() {
        "email" => {
            let r = db.create_user(&profile("race@example.com"));
            say(outcome(&r));
        }
        "token" => {
            let r = db.use_verification_request(
                "race@example.com",
                "race-token-5f1e0c7a2b9d4e8f6a3c1b0d",
                "race-secret",
            );
            say(match r {
                Ok(Some(_)) => "WON",
                Ok(None) => "LOST",
                Err(_) => "ERROR",
            });
        }
        "account" => {
            let me = db.create_user(&authdb::NewUser::default()).unwrap();
            let r = db.link_account(&me.id, &oauth_account("github", "race", None, None));
            say(outcome(&r));
        }
        "writer" => {
            // Durable sign-ups until the deadline; ACK after each commit returns.
            let tag = std::process::id();
            for i in 0.. {
                if Instant::now() > deadline {
                    break;
                }
                let u = db
                    .create_user(&profile(&format!("w{tag}-{i}@example.com")))
                    .unwrap();
                say(&format!("ACK {}", u.id));
            }
        }
        other => panic!("unknown role {other}"),
    }
}

fn spawn(path: &Path, role: &str, mode: ShareMode) -> (Child, std::sync::mpsc::Receiver<String>) {
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args(["--exact", CHILD_TEST, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, path)
        .env(ROLE_ENV, role)
        .env(MODE_ENV, mode_name(mode))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            // The test harness prints its own lines (and `test mp_child ... ` before our
            // first one); keep ours.
            let line = line.rsplit("... ").next().unwrap_or_default().to_owned();
            let ours = line
                .split_whitespace()
                .next()
                .is_some_and(|w| ["READY", "WON", "LOST", "ERROR", "ACK", "SEEN"].contains(&w));
            if ours && tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

fn expect_line(rx: &std::sync::mpsc::Receiver<String>, what: &str) -> String {
    let line = rx
        .recv_timeout(Duration::from_secs(20))
        .unwrap_or_else(|_| panic!("no {what} line from the child"));
    assert!(line.starts_with(what), "expected {what}, got {line}");
    line
}

/// Starts `WRITERS` children in `role`, lets them go at once, returns their one-word results.
fn race(path: &Path, role: &str) -> Vec<String> {
    let children: Vec<_> = (0..WRITERS)
        .map(|_| spawn(path, role, ShareMode::MultiWriter))
        .collect();
    for (_, rx) in &children {
        expect_line(rx, "READY");
    }
    let mut children: Vec<_> = children
        .into_iter()
        .map(|(mut c, rx)| {
            let mut stdin = c.stdin.take().unwrap();
            writeln!(stdin, "go").unwrap();
            (c, rx)
        })
        .collect();
    let results = children
        .iter()
        .map(|(_, rx)| {
            rx.recv_timeout(Duration::from_secs(20))
                .expect("a result line")
        })
        .collect();
    for (c, _) in &mut children {
        assert!(c.wait().unwrap().success());
    }
    results
}

fn one_winner(results: &[String]) {
    assert_eq!(
        results.iter().filter(|r| *r == "WON").count(),
        1,
        "{results:?}"
    );
    assert_eq!(
        results.iter().filter(|r| *r == "LOST").count(),
        WRITERS - 1,
        "{results:?}"
    );
}

#[test]
fn writer_processes_race_for_one_email_one_token_one_account() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.redb");
    {
        let db = builder(ShareMode::MultiWriter).open(&path).unwrap();
        let p = EmailProvider::new("email", |_| Ok(()));
        db.create_verification_request(
            "race@example.com",
            "https://x/cb",
            "race-token-5f1e0c7a2b9d4e8f6a3c1b0d",
            "race-secret",
            &p,
        )
        .unwrap();
    }
    one_winner(&race(&path, "email"));
    one_winner(&race(&path, "token"));
    one_winner(&race(&path, "account"));
    let db = builder(ShareMode::MultiWriter).open(&path).unwrap();
    assert!(db.check_integrity().unwrap().is_clean());
    assert!(db.get_user_by_email("race@example.com").unwrap().is_some());
    // 1 race winner + WRITERS users made by the account racers.
    assert_eq!(db.check_integrity().unwrap().users, 1 + WRITERS as u64);
    assert_eq!(db.check_integrity().unwrap().accounts, 1);
}

#[test]
fn a_reader_process_sees_every_committed_write() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.redb");
    let db = builder(ShareMode::SingleWriter).open(&path).unwrap();
    let (mut reader, rx) = spawn(&path, "reader", ShareMode::SingleWriter);
    expect_line(&rx, "READY");
    let mut stdin = reader.stdin.take().unwrap();
    for i in 0..50 {
        let u = db
            .create_user(&profile(&format!("r{i}@example.com")))
            .unwrap();
        writeln!(stdin, "{}", u.id).unwrap();
        assert_eq!(expect_line(&rx, "SEEN"), format!("SEEN {}", u.id));
    }
    drop(stdin);
    assert!(reader.wait().unwrap().success());
}

#[test]
fn a_killed_writer_loses_no_acknowledged_write_and_the_others_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.redb");
    drop(builder(ShareMode::MultiWriter).open(&path).unwrap());
    let mut children: Vec<_> = (0..3)
        .map(|_| spawn(&path, "writer", ShareMode::MultiWriter))
        .collect();
    for (_, rx) in &children {
        expect_line(rx, "READY");
    }
    for (c, _) in &mut children {
        writeln!(c.stdin.take().unwrap(), "go").unwrap();
    }
    let mut acked: Vec<UserId> = Vec::new();
    let collect = |rx: &std::sync::mpsc::Receiver<String>, acked: &mut Vec<UserId>| -> usize {
        let mut n = 0;
        while let Ok(line) = rx.try_recv() {
            if let Some(id) = line.strip_prefix("ACK ") {
                acked.push(id.parse().unwrap());
                n += 1;
            }
        }
        n
    };
    std::thread::sleep(Duration::from_millis(400));
    // SIGKILL the first writer in the middle of its loop.
    children[0].0.kill().unwrap();
    children[0].0.wait().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    for (_, rx) in &children {
        collect(rx, &mut acked);
    }
    // The survivors keep committing after the kill.
    std::thread::sleep(Duration::from_millis(400));
    let after: usize = children[1..]
        .iter()
        .map(|(_, rx)| collect(rx, &mut acked))
        .sum();
    assert!(after > 0, "the other writers went on after the kill");
    for (c, _) in &mut children[1..] {
        c.kill().unwrap();
        c.wait().unwrap();
    }
    for (_, rx) in &children {
        collect(rx, &mut acked);
    }
    let db = builder(ShareMode::MultiWriter).open(&path).unwrap();
    assert!(db.check_integrity().unwrap().is_clean());
    for id in &acked {
        assert!(db.get_user(id).unwrap().is_some(), "acknowledged {id} lost");
    }
    eprintln!("{} acknowledged sign-ups checked", acked.len());
}

#[test]
fn read_only_handles_serve_reads_and_refuse_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.redb");
    let (uid, token) = {
        let db = builder(ShareMode::Exclusive).open(&path).unwrap();
        let u = db.create_user(&profile("ro@example.com")).unwrap();
        (u.id, db.create_session(&u.id).unwrap().session_token)
    };
    let ro = builder(ShareMode::SingleWriter)
        .open_read_only(&path)
        .unwrap();
    assert!(ro.is_read_only());
    assert_eq!(ro.get_user(&uid).unwrap().unwrap().id, uid);
    assert_eq!(ro.get_session(&token).unwrap().unwrap().user_id, uid);
    assert!(ro.check_integrity().unwrap().is_clean());
    assert!(matches!(
        ro.create_user(&profile("x@example.com")),
        Err(Error::ReadOnly)
    ));
    assert!(matches!(ro.delete_session(&token), Err(Error::ReadOnly)));
    assert!(matches!(ro.purge_expired(), Err(Error::ReadOnly)));
    assert!(matches!(ro.begin_write().map(drop), Err(Error::ReadOnly)));
    drop(ro);
    // Nothing was written.
    let db = builder(ShareMode::Exclusive).open(&path).unwrap();
    assert_eq!(db.check_integrity().unwrap().users, 1);
    assert!(db.get_user_by_email("x@example.com").unwrap().is_none());
}

#[test]
fn a_read_only_open_does_not_create_or_migrate() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.redb");
    assert!(
        builder(ShareMode::SingleWriter)
            .open_read_only(&missing)
            .is_err()
    );
    assert!(!missing.exists());
    let v1 = dir.path().join("v1.redb");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1.redb"),
        &v1,
    )
    .unwrap();
    assert!(matches!(
        builder(ShareMode::SingleWriter).open_read_only(&v1),
        Err(Error::MigrationFailed { from: 1, .. })
    ));
}

#[test]
fn settings_a_shared_mode_forbids_fail_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.redb");
    for mode in [ShareMode::SingleWriter, ShareMode::MultiWriter] {
        let r = builder(mode).durability(Durability::None).open(&path);
        assert!(matches!(r, Err(Error::InvalidConfig(_))), "{r:?}");
    }
    // The exclusive mode excludes a second handle, even a read-only one.
    let db = builder(ShareMode::Exclusive).open(&path).unwrap();
    assert!(matches!(
        builder(ShareMode::Exclusive).open_read_only(&path),
        Err(Error::AlreadyOpen)
    ));
    drop(db);
}
