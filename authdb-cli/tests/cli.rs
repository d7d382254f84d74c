//! The `authdb` binary, run as a user would run it, on populated files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use authdb::prelude::*;
use authdb::{AuthDb, EncryptionKey, NewAccount, NewUser, ShareMode, VerificationToken};

const KEY_HEX: &str = "hex:0909090909090909090909090909090909090909090909090909090909090909";

fn key() -> EncryptionKey {
    EncryptionKey::from_bytes([9; 32])
}

fn authdb(args: &[&str]) -> Output {
    authdb_env(args, &[])
}

fn authdb_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_authdb"));
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn open(path: &Path) -> AuthDb {
    AuthDb::builder().encryption_key(key()).open(path).unwrap()
}

/// A file with users, passwords, OAuth accounts, live and expired sessions and links.
fn populated(dir: &Path, n: usize) -> PathBuf {
    let path = dir.join("auth.redb");
    let db = AuthDb::builder()
        .encryption_key(key())
        .password_params(authdb::PasswordParams {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        })
        .open(&path)
        .unwrap();
    let now = db.now();
    db.write(|tx| {
        for i in 0..n {
            let u = tx.create_user(&NewUser {
                name: Some(format!("User {i}")),
                email: Some(format!("User{i}@Example.com")),
                ..NewUser::default()
            })?;
            tx.link_account(
                &u.id,
                &NewAccount {
                    provider_type: "oauth".into(),
                    provider_id: "github".into(),
                    provider_account_id: format!("{i}"),
                    access_token: Some(format!("gho_{i}")),
                    refresh_token: Some(format!("ghr_{i}")),
                    ..NewAccount::default()
                },
            )?;
            tx.create_session(&u.id)?;
            if i % 3 == 0 {
                tx.create_session_with(&authdb::NewSession {
                    user_id: u.id,
                    session_token: format!("old-{i}-5f1e0c7a2b9d4e8f6a3c1b0d"),
                    expires: now - chrono::Duration::hours(2),
                })?;
            }
            if i % 4 == 0 {
                tx.create_verification_token(&VerificationToken {
                    identifier: format!("user{i}@example.com"),
                    token: authdb::hash_verification_token(&format!("t{i}"), "s"),
                    expires: now + chrono::Duration::hours(if i % 8 == 0 { -1 } else { 1 }),
                })?;
            }
        }
        Ok(())
    })
    .unwrap();
    let u = db.get_user_by_email("user0@example.com").unwrap().unwrap();
    db.set_password(&u.id, "a password").unwrap();
    path
}

fn export_bytes(path: &Path) -> Vec<u8> {
    let o = authdb(&["export", s(path), "-q"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    o.stdout
}

#[test]
fn stats_check_purge_compact() {
    let dir = tempfile::tempdir().unwrap();
    let f = populated(dir.path(), 30);
    let o = authdb(&["stats", s(&f)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("users           30"), "{text}");
    // (Setting user 0's password signed them out: one live and one expired session fewer.)
    assert!(
        text.contains("sessions        29 live, 9 expired"),
        "{text}"
    );
    let o = authdb(&["stats", s(&f), "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["users"], 30);
    assert_eq!(v["schema_version"], 2);
    assert_eq!(v["verification_expired"], 4);
    assert!(v["file_bytes"].as_u64().unwrap() > 0);
    assert!(v["storage"]["allocated_bytes"].as_u64().unwrap() > 0);

    let o = authdb(&["check", s(&f)]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("clean"));
    let o = authdb(&["check", s(&f), "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["clean"], true);

    let o = authdb(&["purge", s(&f), "--json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["sessions"], 9);
    assert_eq!(v["verification_tokens"], 4);
    let o = authdb(&["compact", s(&f)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(code(&authdb(&["check", s(&f)])), 0);
}

#[test]
fn a_file_held_by_an_app_and_files_that_are_not_databases() {
    let dir = tempfile::tempdir().unwrap();
    let f = populated(dir.path(), 3);
    let app = open(&f);
    for cmd in ["stats", "check", "purge", "compact", "export"] {
        let o = authdb(&[cmd, s(&f)]);
        assert_eq!(code(&o), 3, "{cmd}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("is held by another process"),
            "{}",
            stderr(&o)
        );
    }
    drop(app);
    let junk = dir.path().join("junk.redb");
    std::fs::write(&junk, b"SQLite format 3\0 not really").unwrap();
    let before = std::fs::read(&junk).unwrap();
    for cmd in ["stats", "check", "export"] {
        let o = authdb(&[cmd, s(&junk)]);
        assert_eq!(code(&o), 1, "{cmd}");
        assert!(
            stderr(&o).contains("junk.redb is not an authdb database"),
            "{}",
            stderr(&o)
        );
    }
    assert_eq!(
        std::fs::read(&junk).unwrap(),
        before,
        "a refused file was modified"
    );
    let o = authdb(&["stats", s(&dir.path().join("missing.redb"))]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("missing.redb: no such file"));
    assert!(!dir.path().join("missing.redb").exists());
    assert_eq!(code(&authdb(&["frobnicate"])), 2);
}

#[test]
fn export_import_round_trip_and_backup() {
    let dir = tempfile::tempdir().unwrap();
    let f = populated(dir.path(), 40);
    let first = export_bytes(&f);
    let jsonl = dir.path().join("dump.jsonl");
    let o = authdb(&["export", s(&f), "-o", s(&jsonl), "--json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(std::fs::read(&jsonl).unwrap(), first);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&jsonl).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    // Export → import into a new file → export: the same bytes.
    let g = dir.path().join("moved.redb");
    let o = authdb(&["import", s(&g), s(&jsonl)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("imported 40 users"), "{}", stdout(&o));
    assert_eq!(export_bytes(&g), first);
    // Users stay signed in: a session token still works in the moved file.
    let db = open(&g);
    let acc = db.get_account("github", "7").unwrap().unwrap();
    assert_eq!(acc.access_token.as_deref(), Some("gho_7"));
    drop(db);

    let b = dir.path().join("backup.redb");
    let o = authdb(&["backup", s(&f), s(&b)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).contains("check_integrity: clean"),
        "{}",
        stdout(&o)
    );
    assert_eq!(export_bytes(&b), first);
    // Never overwrites.
    let o = authdb(&["backup", s(&f), s(&b)]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("already exists"), "{}", stderr(&o));
}

#[test]
fn bad_imports_name_the_line_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let f = populated(dir.path(), 10);
    let good = export_bytes(&f);
    let target = dir.path().join("target.redb");
    let existing = populated(&dir.path().join("other").tap_mkdir(), 2);
    let existing_before = export_bytes(&existing);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("truncated", good[..good.len() * 2 / 3].to_vec(), "line "),
        (
            "wrong version",
            {
                let mut v =
                    b"{\"format\":\"authdb-export\",\"version\":9,\"schemaVersion\":2}\n".to_vec();
                v.extend(good.splitn(2, |b| *b == b'\n').nth(1).unwrap());
                v
            },
            "line 1: export format version 9 is not supported",
        ),
        (
            "over-limit line",
            {
                let mut v = good.splitn(2, |b| *b == b'\n').next().unwrap().to_vec();
                v.push(b'\n');
                v.extend(std::iter::repeat_n(b'x', 2 << 20));
                v
            },
            "line 2: the line is longer than the limit",
        ),
        (
            "not an export",
            std::fs::read(&f).unwrap(),
            "line 1: not an authdb export",
        ),
    ];
    for (what, bytes, needle) in cases {
        let input = dir.path().join(format!("{what}.jsonl"));
        std::fs::write(&input, &bytes).unwrap();
        let o = authdb(&["import", s(&target), s(&input)]);
        assert_eq!(code(&o), 5, "{what}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(err.contains(needle), "{what}: {err}");
        assert!(
            err.contains(&format!("{what}.jsonl")),
            "{what}: the file is not named: {err}"
        );
        assert!(
            !target.exists(),
            "{what}: a failed import left {}",
            target.display()
        );
        // Into an existing database: nothing changes.
        let o = authdb(&["import", s(&existing), s(&input)]);
        assert_eq!(code(&o), 5, "{what}");
        assert_eq!(export_bytes(&existing), existing_before, "{what}");
    }
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

trait TapMkdir {
    fn tap_mkdir(self) -> Self;
}

impl TapMkdir for PathBuf {
    fn tap_mkdir(self) -> Self {
        std::fs::create_dir_all(&self).unwrap();
        self
    }
}

#[test]
fn rekey_and_salvage() {
    let dir = tempfile::tempdir().unwrap();
    let f = populated(dir.path(), 25);
    let new_hex = "hex:0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a";
    let env = [("OLD_KEY", KEY_HEX), ("NEW_KEY", new_hex)];
    let o = authdb_env(
        &[
            "rekey",
            s(&f),
            "--old-key-env",
            "OLD_KEY",
            "--new-key-env",
            "NEW_KEY",
            "--json",
        ],
        &env,
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["resealed"], 50);
    let db = AuthDb::builder()
        .encryption_key(EncryptionKey::from_bytes([10; 32]))
        .open(&f)
        .unwrap();
    assert_eq!(
        db.get_account("github", "3")
            .unwrap()
            .unwrap()
            .refresh_token
            .as_deref(),
        Some("ghr_3")
    );
    drop(db);
    let o = authdb_env(
        &[
            "rekey",
            s(&f),
            "--old-key-env",
            "OLD_KEY",
            "--new-key-env",
            "UNSET_VAR",
        ],
        &env,
    );
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("UNSET_VAR is not set"));

    // Salvage: an undamaged file, then a damaged one.
    let out = dir.path().join("salvaged.redb");
    let o = authdb_env(&["salvage", s(&f), s(&out), "--key-env", "NEW_KEY"], &env);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("0 lost"), "{}", stdout(&o));
    let mut bytes = std::fs::read(&f).unwrap();
    let n = bytes.len();
    for i in (n / 3..n / 3 + 40).step_by(7) {
        bytes[i] ^= 0x5a;
    }
    let damaged = dir.path().join("damaged.redb");
    std::fs::write(&damaged, &bytes).unwrap();
    let out2 = dir.path().join("salvaged2.redb");
    let o = authdb_env(&["salvage", s(&damaged), s(&out2), "--json"], &env);
    assert!(matches!(code(&o), 0 | 4), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["output_clean"], true);
    assert_eq!(code(&authdb(&["check", s(&out2)])), 0);
}

#[test]
fn backup_beside_a_running_app_that_keeps_writing() {
    let dir = tempfile::tempdir().unwrap();
    let f = populated(dir.path(), 200);
    // The app shares the file so that the tool can read beside it.
    let app = AuthDb::builder()
        .encryption_key(key())
        .share_mode(ShareMode::SingleWriter)
        .open(&f)
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let n = Arc::new(AtomicU64::new(0));
    let writer = {
        let (app, stop, n) = (app.clone(), stop.clone(), n.clone());
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                app.write(|tx| {
                    let u = tx.create_user(&NewUser {
                        email: Some(format!("w{i}@writer.test")),
                        ..NewUser::default()
                    })?;
                    tx.create_session(&u.id)
                })
                .unwrap();
                i += 1;
                n.store(i, Ordering::Relaxed);
            }
            i
        })
    };
    while n.load(Ordering::Relaxed) < 5 {
        std::thread::yield_now();
    }
    let b = dir.path().join("live-backup.redb");
    let o = authdb(&["backup", s(&f), s(&b), "--json"]);
    stop.store(true, Ordering::Relaxed);
    let total = writer.join().unwrap();
    drop(app);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["clean"], true);
    // A prefix of the writer's commits, each whole.
    let copy = open(&b);
    let mut k = 0;
    while k < total {
        match copy
            .get_user_by_email(&format!("w{k}@writer.test"))
            .unwrap()
        {
            Some(u) => assert_eq!(copy.list_sessions(&u.id).unwrap().len(), 1),
            None => break,
        }
        k += 1;
    }
    for j in k..total {
        assert!(
            copy.get_user_by_email(&format!("w{j}@writer.test"))
                .unwrap()
                .is_none()
        );
    }
    assert!(k >= 5, "the backup misses commits made before it started");
    assert!(copy.check_integrity().unwrap().is_clean());
}
