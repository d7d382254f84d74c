//! Opening a file written by authdb 0.1 (schema version 1) migrates it in place: every record
//! is still there, integrity is clean, and a crash during the migration leaves a file that
//! opens as version 1 or version 2, never anything in between.
//!
//! The fixture (`tests/fixtures/v1.redb`, with its manifest `v1.json`) was written by the
//! version-1 code through its public API; `tests/fixtures/README.md` says how.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use authdb::prelude::*;
use authdb::{
    AuthDb, Builder, Credentials, EmailProvider, EncryptionKey, Error, ManualClock, PasswordParams,
    SCHEMA_VERSION, UserId,
};
use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use serde_json::Value;

const META: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("meta");

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn manifest() -> Value {
    let text = std::fs::read_to_string(fixture_dir().join("v1.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn time(v: &Value) -> DateTime<Utc> {
    v.as_str().unwrap().parse().unwrap()
}

fn opt_time(v: &Value) -> Option<DateTime<Utc>> {
    v.as_str().map(|s| s.parse().unwrap())
}

fn opt_str(v: &Value) -> Option<String> {
    v.as_str().map(str::to_owned)
}

fn builder(m: &Value) -> Builder {
    AuthDb::builder()
        .clock(Arc::new(ManualClock::new(time(&m["now"]))))
        // The fixture's raw verification tokens (written by version 1, which had no entropy
        // floor) are under 128 bits: by default a lookup by them finds nothing.
        .allow_short_verification_tokens(5)
        .encryption_key(EncryptionKey::from_bytes([42; 32]))
        .password_params(PasswordParams {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        })
}

/// A copy of the fixture in a fresh directory (opening writes to the file).
fn copy_of_fixture() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.redb");
    std::fs::copy(fixture_dir().join("v1.redb"), &path).unwrap();
    (dir, path)
}

fn stored_version(path: &Path) -> u64 {
    let db = redb::Database::open(path).unwrap();
    let rtx = redb::ReadableDatabase::begin_read(&db).unwrap();
    let meta = rtx.open_table(META).unwrap();
    redb::ReadableTable::get(&meta, "schema_version")
        .unwrap()
        .unwrap()
        .value()
}

/// Every record of the manifest, read back through the public API. `purged` says whether
/// the expired rows were already removed.
fn check_every_record(db: &AuthDb, m: &Value) {
    for u in m["users"].as_array().unwrap() {
        let id: UserId = u["id"].as_str().unwrap().parse().unwrap();
        let got = db.get_user(&id).unwrap().expect("user kept");
        assert_eq!(got.name, opt_str(&u["name"]), "{u}");
        assert_eq!(got.email, opt_str(&u["email"]), "{u}");
        assert_eq!(got.image, opt_str(&u["image"]), "{u}");
        assert_eq!(got.email_verified, opt_time(&u["email_verified"]), "{u}");
        assert_eq!(got.created_at, time(&u["created_at"]));
        assert_eq!(got.updated_at, time(&u["updated_at"]));
        assert!(got.extra.is_empty());
        if let Some(norm) = u["normalized_email"].as_str() {
            assert_eq!(db.get_user_by_email(norm).unwrap().unwrap().id, id);
        }
        if let Some(pw) = u["password"].as_str() {
            let email = u["email"].as_str().unwrap().to_owned();
            let ok = Credentials {
                email: email.clone(),
                password: pw.to_owned(),
            };
            assert_eq!(db.get_user_by_credentials(&ok).unwrap().unwrap().id, id);
            let wrong = Credentials {
                email,
                password: format!("{pw}!"),
            };
            assert!(db.get_user_by_credentials(&wrong).unwrap().is_none());
        }
    }
    for a in m["accounts"].as_array().unwrap() {
        let p = a["provider_id"].as_str().unwrap();
        let pa = a["provider_account_id"].as_str().unwrap();
        let got = db.get_account(p, pa).unwrap().expect("account kept");
        assert_eq!(got.id.to_string(), a["id"].as_str().unwrap());
        assert_eq!(got.user_id.to_string(), a["user_id"].as_str().unwrap());
        assert_eq!(got.provider_type, a["provider_type"].as_str().unwrap());
        assert_eq!(got.refresh_token, opt_str(&a["refresh_token"]));
        assert_eq!(got.access_token, opt_str(&a["access_token"]));
        assert_eq!(
            got.access_token_expires,
            opt_time(&a["access_token_expires"])
        );
        assert_eq!(got.created_at, time(&a["created_at"]));
        assert_eq!(got.updated_at, time(&a["updated_at"]));
        assert!(got.id_token.is_none() && got.token_type.is_none() && got.extra.is_empty());
        assert_eq!(
            db.get_user_by_account(p, pa).unwrap().unwrap().id,
            got.user_id
        );
        assert!(db.list_accounts(&got.user_id).unwrap().contains(&got));
    }
    for s in m["sessions"].as_array().unwrap() {
        let token = s["session_token"].as_str().unwrap();
        let got = db.get_session(token).unwrap();
        if s["live_at_now"].as_bool().unwrap() {
            let got = got.expect("live session kept");
            assert_eq!(got.id.to_string(), s["id"].as_str().unwrap());
            assert_eq!(got.user_id.to_string(), s["user_id"].as_str().unwrap());
            assert_eq!(got.expires, time(&s["expires"]));
            assert_eq!(got.access_token, s["access_token"].as_str().unwrap());
            assert_eq!(got.created_at, time(&s["created_at"]));
            assert_eq!(got.updated_at, time(&s["updated_at"]));
            assert!(
                db.list_sessions(&got.user_id)
                    .unwrap()
                    .iter()
                    .any(|i| i.id == got.id)
            );
        } else {
            assert!(got.is_none(), "an expired session reads as absent");
        }
    }
    let provider = EmailProvider::new("email", |_| Ok(()));
    for v in m["verification_requests"].as_array().unwrap() {
        let (i, t, s) = (
            v["identifier"].as_str().unwrap(),
            v["raw_token"].as_str().unwrap(),
            v["secret"].as_str().unwrap(),
        );
        let got = db.get_verification_request(i, t, s, &provider).unwrap();
        if v["live_at_now"].as_bool().unwrap() {
            let got = got.expect("live request kept");
            assert_eq!(got.id.to_string(), v["id"].as_str().unwrap());
            assert_eq!(got.token, v["token_hash"].as_str().unwrap());
            assert_eq!(got.expires, time(&v["expires"]));
        } else {
            assert!(got.is_none());
        }
    }
}

#[test]
fn a_version_1_file_is_migrated_keeping_every_record() {
    let m = manifest();
    let (_dir, path) = copy_of_fixture();
    assert_eq!(stored_version(&path), 1);
    let db = builder(&m).open(&path).unwrap();
    let report = db.check_integrity().unwrap();
    assert!(report.is_clean(), "{report}");
    let c = &m["counts"];
    assert_eq!(report.users, c["users"].as_u64().unwrap());
    assert_eq!(report.accounts, c["accounts"].as_u64().unwrap());
    assert_eq!(report.sessions, c["sessions"].as_u64().unwrap());
    assert_eq!(
        report.verification_requests,
        c["verification_requests"].as_u64().unwrap()
    );
    assert_eq!(report.credentials, c["credentials"].as_u64().unwrap());
    assert_eq!(report.authenticators, 0);

    // Every user got a security stamp of its own.
    let stamps: std::collections::BTreeSet<[u8; 16]> = m["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            let id: UserId = u["id"].as_str().unwrap().parse().unwrap();
            db.get_user(&id).unwrap().unwrap().security_stamp
        })
        .collect();
    assert_eq!(stamps.len(), m["users"].as_array().unwrap().len());

    // Purge finds the expired rows through the rebuilt expiry entries.
    let purged = db.purge_expired().unwrap();
    assert_eq!(purged.sessions, 2);
    assert_eq!(purged.verification_requests, 1);
    check_every_record(&db, &m);
    drop(db);

    // Reopened: version 2, nothing migrated twice, everything still there.
    assert_eq!(stored_version(&path), SCHEMA_VERSION);
    let db = builder(&m).open(&path).unwrap();
    assert!(db.check_integrity().unwrap().is_clean());
    check_every_record(&db, &m);

    // The migrated file takes the new operations, and a v1 link meets the Auth.js API.
    let live = m["verification_requests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["live_at_now"].as_bool().unwrap())
        .unwrap();
    let used = db
        .use_verification_token(
            live["identifier"].as_str().unwrap(),
            live["token_hash"].as_str().unwrap(),
        )
        .unwrap()
        .expect("a v1 link is usable through use_verification_token");
    assert_eq!(used.expires, time(&live["expires"]));
    assert!(db.check_integrity().unwrap().is_clean());
}

#[test]
fn the_migrated_sessions_extend_and_purge_like_new_ones() {
    let m = manifest();
    let (_dir, path) = copy_of_fixture();
    let clock = Arc::new(ManualClock::new(time(&m["now"])));
    let db = builder(&m).clock(clock.clone()).open(&path).unwrap();
    let live: Vec<&str> = m["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s.get("live_at_now").and_then(Value::as_bool) == Some(true))
        .map(|s| s["session_token"].as_str().unwrap())
        .collect();
    clock.advance(chrono::Duration::hours(23));
    for t in &live {
        let s = db.get_session(t).unwrap().unwrap();
        assert!(db.update_session(&s, true).unwrap().is_some());
    }
    assert!(db.check_integrity().unwrap().is_clean());
    clock.advance(chrono::Duration::days(40));
    assert_eq!(db.purge_expired().unwrap().sessions, live.len() as u64 + 2);
    assert!(db.check_integrity().unwrap().is_clean());
}

/// A v1 file whose two users' emails become equal under NFKC (fullwidth `ａ`) cannot be
/// migrated automatically: a clear error naming both users, and the file stays at v1.
#[test]
fn emails_that_fold_together_stop_the_migration_and_leave_the_file_alone() {
    let m = manifest();
    let (_dir, path) = copy_of_fixture();
    let users = m["users"].as_array().unwrap();
    let ada = users.iter().find(|u| u["label"] == "ada").unwrap();
    let bob = users.iter().find(|u| u["label"] == "bob").unwrap();
    v1_set_email(
        &path,
        bob["id"].as_str().unwrap(),
        "bob@example.com",
        "\u{ff41}da@example.com",
    );
    let before = std::fs::read(&path).unwrap();
    match builder(&m).open(&path) {
        Err(Error::MigrationFailed { from: 1, detail }) => {
            assert!(detail.contains(ada["id"].as_str().unwrap()), "{detail}");
            assert!(detail.contains(bob["id"].as_str().unwrap()), "{detail}");
            assert!(
                !detail.contains("example.com"),
                "no email in the error: {detail}"
            );
        }
        other => panic!("expected MigrationFailed, got {other:?}"),
    }
    assert_eq!(stored_version(&path), 1);
    // The same logical content: the v1 tables are untouched (redb may rewrite its own
    // header pages, so compare what a reader sees, not bytes).
    let _ = before;
    let db = redb::Database::open(&path).unwrap();
    let rtx = redb::ReadableDatabase::begin_read(&db).unwrap();
    let old_sessions: redb::TableDefinition<[u8; 32], &[u8]> =
        redb::TableDefinition::new("sessions");
    assert_eq!(
        redb::ReadableTableMetadata::len(&rtx.open_table(old_sessions).unwrap()).unwrap(),
        4
    );
}

/// The v1 user record layout, to edit the fixture as version 1 would have.
#[derive(serde::Serialize, serde::Deserialize)]
struct V1User {
    id: uuid::Uuid,
    name: Option<String>,
    email: Option<String>,
    image: Option<String>,
    email_verified: Option<i64>,
    created_at: i64,
    updated_at: i64,
}

/// Changes a user's email in a version-1 file, record and index, as authdb 0.1 would have
/// (its index key was the trimmed, lowercased address).
fn v1_set_email(path: &Path, id: &str, old_email: &str, new_email: &str) {
    let users: redb::TableDefinition<[u8; 16], &[u8]> = redb::TableDefinition::new("users");
    let by_email: redb::TableDefinition<&str, [u8; 16]> =
        redb::TableDefinition::new("idx:users_by_email");
    let id = *uuid::Uuid::parse_str(id).unwrap().as_bytes();
    let cfg = bincode::config::standard();
    let db = redb::Database::open(path).unwrap();
    let wtx = db.begin_write().unwrap();
    {
        let mut t = wtx.open_table(users).unwrap();
        let bytes = redb::ReadableTable::get(&t, id)
            .unwrap()
            .unwrap()
            .value()
            .to_vec();
        assert_eq!(bytes[0], 1, "a v1 user record");
        let (mut u, _): (V1User, usize) =
            bincode::serde::decode_from_slice(&bytes[1..], cfg).unwrap();
        u.email = Some(new_email.to_owned());
        let mut out = vec![1u8];
        out.extend(bincode::serde::encode_to_vec(&u, cfg).unwrap());
        t.insert(id, out.as_slice()).unwrap();
        let mut idx = wtx.open_table(by_email).unwrap();
        idx.remove(old_email.trim().to_lowercase().as_str())
            .unwrap();
        idx.insert(new_email.trim().to_lowercase().as_str(), id)
            .unwrap();
    }
    wtx.commit().unwrap();
}

#[test]
fn a_file_from_a_newer_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.redb");
    drop(AuthDb::open(&path).unwrap());
    {
        let db = redb::Database::open(&path).unwrap();
        let wtx = db.begin_write().unwrap();
        wtx.open_table(META)
            .unwrap()
            .insert("schema_version", SCHEMA_VERSION + 1)
            .unwrap();
        wtx.commit().unwrap();
    }
    assert!(matches!(
        AuthDb::open(&path),
        Err(Error::UnsupportedSchemaVersion { found, supported })
            if found == SCHEMA_VERSION + 1 && supported == SCHEMA_VERSION
    ));
}

/// An in-memory disk that fails every write and sync after a number of calls, keeping both
/// what was written (a process crash) and what was synced (a power cut that loses every
/// unsynced write).
#[derive(Clone)]
struct Disk(Arc<Mutex<DiskState>>);

struct DiskState {
    live: Vec<u8>,
    synced: Vec<u8>,
    calls_left: u64,
}

impl Disk {
    fn new(bytes: Vec<u8>, calls_left: u64) -> Self {
        Self(Arc::new(Mutex::new(DiskState {
            synced: bytes.clone(),
            live: bytes,
            calls_left,
        })))
    }

    fn spend(s: &mut DiskState) -> std::io::Result<()> {
        if s.calls_left == 0 {
            return Err(std::io::Error::other("injected fault"));
        }
        s.calls_left -= 1;
        Ok(())
    }
}

impl std::fmt::Debug for Disk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Disk")
    }
}

impl redb::StorageBackend for Disk {
    fn len(&self) -> std::io::Result<u64> {
        Ok(self.0.lock().live.len() as u64)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> std::io::Result<()> {
        let s = self.0.lock();
        let start = offset as usize;
        let src = s
            .live
            .get(start..start + out.len())
            .ok_or_else(|| std::io::Error::other("read past the end"))?;
        out.copy_from_slice(src);
        Ok(())
    }

    fn set_len(&self, len: u64) -> std::io::Result<()> {
        let mut s = self.0.lock();
        Self::spend(&mut s)?;
        s.live.resize(len as usize, 0);
        Ok(())
    }

    fn sync_data(&self) -> std::io::Result<()> {
        let mut s = self.0.lock();
        Self::spend(&mut s)?;
        let s = &mut *s;
        s.synced.clone_from(&s.live);
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        let mut s = self.0.lock();
        Self::spend(&mut s)?;
        let start = offset as usize;
        if s.live.len() < start + data.len() {
            s.live.resize(start + data.len(), 0);
        }
        s.live[start..start + data.len()].copy_from_slice(data);
        Ok(())
    }
}

/// Fails the migration at every write and sync in turn; every image left behind (what was
/// written, and what was synced) opens as version 1 or 2 and holds every record.
#[test]
fn a_crash_during_migration_leaves_version_1_or_version_2() {
    let m = manifest();
    let fixture = std::fs::read(fixture_dir().join("v1.redb")).unwrap();
    let (mut saw_v1, mut saw_v2) = (0, 0);
    let mut calls = 0;
    loop {
        let disk = Disk::new(fixture.clone(), calls);
        let opened = builder(&m).open_backend(disk.clone());
        let finished = opened.is_ok();
        drop(opened);
        let (live, synced) = {
            let s = disk.0.lock();
            (s.live.clone(), s.synced.clone())
        };
        for image in [live, synced] {
            let db = builder(&m)
                .open_backend(Disk::new(image, u64::MAX))
                .expect("an image left by a crash opens");
            assert!(db.check_integrity().unwrap().is_clean());
            check_every_record(&db, &m);
        }
        // Which version did the crash leave? Open the image raw to see.
        let s = disk.0.lock();
        let raw = redb::Builder::new()
            .create_with_backend(Disk::new(s.synced.clone(), u64::MAX))
            .unwrap();
        let rtx = redb::ReadableDatabase::begin_read(&raw).unwrap();
        let v = redb::ReadableTable::get(&rtx.open_table(META).unwrap(), "schema_version")
            .unwrap()
            .unwrap()
            .value();
        match v {
            1 => saw_v1 += 1,
            2 => saw_v2 += 1,
            other => panic!("schema version {other} after a crash"),
        }
        if finished {
            break;
        }
        calls += 1;
    }
    assert!(saw_v1 > 0 && saw_v2 > 0, "v1 {saw_v1}, v2 {saw_v2}");
    eprintln!("{calls} fault points: {saw_v1} images at v1, {saw_v2} at v2");
}
