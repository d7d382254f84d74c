//! Export and import in JSON Lines: the round trip is byte-exact and keeps every field (ids,
//! times, stamps, hashes, sealed tokens); a bad import names its line and writes nothing.

#![allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_wrap,
    clippy::naive_bytecount
)]

mod common;

use std::io::Cursor;
use std::sync::Arc;

use authdb::export::{ExportRecord, Exporter, ImportSink, read_export};
use authdb::prelude::*;
use authdb::{
    AuthDb, Credentials, ManualClock, NewAccount, NewAuthenticator, NewSession, NewUser,
    VerificationToken, WebSession, WebSessionId,
};
use chrono::Duration;
use common::{Rng, TempDb, builder, t0};

/// A 64-hex-character token drawn from `seed` (above the entropy floor).
fn token(seed: u64) -> String {
    let mut r = Rng::new(seed);
    let mut b = [0u8; 32];
    r.fill(&mut b);
    common::hex(&b)
}

/// The id of web session number `i`.
fn web_id(i: usize) -> WebSessionId {
    let mut r = Rng::new(1000 + i as u64);
    let mut b = [0u8; 16];
    r.fill(&mut b);
    WebSessionId::from_bytes(b)
}

/// Fills `db` with `n` users and every kind of record: mixed-case and non-ASCII emails,
/// extra fields, passwords, OAuth accounts with every token and a sub-second expiry, live and
/// expired sessions and links, passkeys, web sessions (signed in, anonymous, expired, with
/// binary data). Returns the session tokens.
fn populate(db: &AuthDb, n: usize) -> Vec<String> {
    let now = db.now();
    let mut tokens = Vec::new();
    for i in 0..n {
        let mut extra = authdb::Extra::new();
        if i % 3 == 0 {
            extra.insert(
                "role".into(),
                serde_json::json!(if i % 2 == 0 { "admin" } else { "user" }),
            );
            extra.insert("score".into(), serde_json::json!(i as f64 / 7.0));
        }
        let email = match i % 4 {
            0 => format!("User{i}@Example.COM"),
            1 => format!("ünï{i}@exämple.org"),
            2 => format!("plain{i}@example.net"),
            _ => format!("  spaced{i}@example.io "),
        };
        let (user, s) = db
            .write(|tx| {
                let u = tx.create_user(&NewUser {
                    name: (i % 5 != 0).then(|| format!("User \"{i}\" \u{1F600}")),
                    email: (i % 11 != 10).then_some(email.clone()),
                    image: (i % 2 == 0).then(|| format!("https://img.test/{i}.png")),
                    email_verified: (i % 3 == 1)
                        .then(|| now - Duration::microseconds(i as i64 * 1_234_567)),
                    extra: extra.clone(),
                })?;
                let mut acc_extra = authdb::Extra::new();
                if i % 4 == 1 {
                    acc_extra.insert(
                        "refresh_token_expires_in".into(),
                        serde_json::json!(3600 + i),
                    );
                }
                tx.link_account(
                    &u.id,
                    &NewAccount {
                        provider_type: if i % 2 == 0 { "oauth" } else { "oidc" }.into(),
                        provider_id: if i % 2 == 0 { "github" } else { "google" }.into(),
                        provider_account_id: format!("pa-{i}"),
                        refresh_token: (i % 3 != 2).then(|| format!("refresh-{i}")),
                        access_token: Some(format!("access-{i}")),
                        access_token_expires: Some(
                            now + Duration::microseconds(if i % 2 == 0 {
                                3_600_000_000
                            } else {
                                3_600_123_456
                            }),
                        ),
                        token_type: Some("bearer".into()),
                        scope: (i % 2 == 1).then(|| "openid email".into()),
                        id_token: (i % 2 == 1).then(|| format!("eyJ.{i}.sig")),
                        session_state: (i % 7 == 0).then(|| "state".into()),
                        extra: acc_extra,
                    },
                )?;
                let s = tx.create_session(&u.id)?;
                if i % 4 == 0 {
                    tx.create_session_with(&NewSession {
                        user_id: u.id,
                        session_token: token(i as u64),
                        expires: now - Duration::hours(1),
                    })?;
                }
                if i % 6 == 0 {
                    tx.create_authenticator(&NewAuthenticator {
                        credential_id: format!("cred-{i}"),
                        user_id: u.id,
                        provider_account_id: format!("pa-{i}"),
                        credential_public_key: format!("pk-{i}"),
                        counter: i as u64,
                        credential_device_type: "singleDevice".into(),
                        credential_backed_up: i % 12 == 0,
                        transports: (i % 12 == 0).then(|| "usb,nfc".into()),
                    })?;
                }
                if i % 3 == 0 {
                    tx.web_session_create(&WebSession {
                        id: web_id(i),
                        user_id: (i % 2 == 0).then_some(u.id),
                        expires: if i % 9 == 0 {
                            now - Duration::minutes(1)
                        } else {
                            now + Duration::hours(2)
                        },
                        data: [
                            b"{\"cart\":".as_slice(),
                            &[0, 255, 10, b'"'],
                            &i.to_le_bytes(),
                        ]
                        .concat(),
                    })?;
                }
                Ok((u, s))
            })
            .unwrap();
        if i % 10 == 0 {
            db.set_password(&user.id, &format!("pw-{i}")).unwrap();
        }
        tokens.push(s.session_token);
        if i % 5 == 0 {
            db.create_verification_token(&VerificationToken {
                identifier: format!("link{i}@example.com"),
                token: authdb::hash_verification_token(&format!("t{i}"), "secret"),
                expires: if i % 10 == 0 {
                    now - Duration::minutes(5)
                } else {
                    now + Duration::hours(1)
                },
            })
            .unwrap();
        }
    }
    tokens
}

fn export(db: &AuthDb) -> Vec<u8> {
    let mut out = Vec::new();
    db.export_to(&mut out).unwrap();
    out
}

fn mem(clock: &Arc<ManualClock>) -> AuthDb {
    builder(clock).in_memory().unwrap()
}

#[test]
fn round_trip_is_byte_exact_and_keeps_every_field() {
    let clock = Arc::new(ManualClock::new(t0()));
    let db = mem(&clock);
    let tokens = populate(&db, 60);
    let first = export(&db);
    let text = String::from_utf8(first.clone()).unwrap();
    assert!(text.starts_with("{\"format\":\"authdb-export\",\"version\":1,\"schemaVersion\":2}\n"));
    for needle in [
        "\"providerAccountId\"",
        "\"userId\"",
        "\"expires_at\":",
        "\"emailVerified\"",
        "\"expires_at_us\":123456",
        "\"securityStamp\"",
        "\"sessionTokenHash\"",
        "$argon2id$",
        "\"credentialID\"",
        "{\"kind\":\"webSession\",\"idHash\":\"",
        // 20 web sessions, less the two signed out by a password change (users 0 and 30).
        "\"webSessions\":18}}",
    ] {
        assert!(text.contains(needle), "{needle} missing");
    }
    // No secret in plain form.
    for t in &tokens {
        assert!(!text.contains(t.as_str()));
    }
    assert!(!text.contains("access-1") && !text.contains("refresh-1") && !text.contains("pw-10"));

    // Into an empty in-memory database, and into a new file.
    let copy = mem(&clock);
    let counts = copy.import_from(Cursor::new(&first)).unwrap();
    assert_eq!(counts.users, 60);
    assert_eq!(counts.web_sessions, 18);
    assert_eq!(
        export(&copy),
        first,
        "export → import → export changed the bytes"
    );
    common::assert_clean(&copy);

    let t = TempDb::new();
    let path = t.dir.path().join("imported.redb");
    authdb::import_into_new_file(&path, Cursor::new(&first), |_| {}).unwrap();
    let file_db = builder(&clock).open(&path).unwrap();
    assert_eq!(export(&file_db), first);
    common::assert_clean(&file_db);

    // Everything works in the copy: sessions by token, tokens unsealed, passwords, links.
    for (i, tok) in tokens.iter().enumerate() {
        // (A password change signs the user out, so some users have no session left.)
        let got = copy.get_session(tok).unwrap();
        assert_eq!(got, db.get_session(tok).unwrap());
        let Some(s) = got else { continue };
        let acc = copy
            .get_account(
                if i % 2 == 0 { "github" } else { "google" },
                &format!("pa-{i}"),
            )
            .unwrap()
            .unwrap();
        assert_eq!(
            Some(acc.clone()),
            db.get_account(&acc.provider_id, &acc.provider_account_id)
                .unwrap()
        );
        assert_eq!(
            acc.access_token.as_deref(),
            Some(format!("access-{i}").as_str())
        );
        let u = copy.get_user(&s.user_id).unwrap().unwrap();
        assert_eq!(u, db.get_user(&s.user_id).unwrap().unwrap());
        assert_eq!(
            u.security_stamp,
            db.get_user(&s.user_id).unwrap().unwrap().security_stamp
        );
    }
    let c = Credentials {
        email: "user0@example.com".into(),
        password: "pw-0".into(),
    };
    assert!(copy.get_user_by_credentials(&c).unwrap().is_some());
    assert!(copy.get_authenticator("cred-6").unwrap().is_some());
    let link = copy
        .use_verification_token(
            "link5@example.com",
            &authdb::hash_verification_token("t5", "secret"),
        )
        .unwrap();
    assert!(link.is_some());
    // Web sessions: loaded by their id, with their data and user; listed per user.
    for i in (0..60).step_by(3) {
        let got = copy.web_session_load(&web_id(i)).unwrap();
        assert_eq!(got, db.web_session_load(&web_id(i)).unwrap());
        // Expired (every ninth) or signed out by a password change (users 0 and 30).
        if i % 9 != 0 && i % 30 != 0 {
            let w = got.expect("a live web session");
            assert_eq!(&w.data[w.data.len() - 8..], &i.to_le_bytes());
            if let Some(u) = &w.user_id {
                let listed = copy.web_session_list_for_user(u).unwrap();
                assert_eq!(listed, db.web_session_list_for_user(u).unwrap());
                assert_eq!(listed.len(), 1);
            }
        }
    }
}

fn refused(db: &AuthDb, input: &[u8]) -> authdb::ImportError {
    let before = export(db);
    let e = db
        .import_from(Cursor::new(input))
        .expect_err("import must fail");
    assert_eq!(export(db), before, "a failed import wrote something");
    common::assert_clean(db);
    e
}

#[test]
fn bad_input_names_the_line_and_writes_nothing() {
    let clock = Arc::new(ManualClock::new(t0()));
    let src = mem(&clock);
    populate(&src, 12);
    let good = export(&src);
    let lines: Vec<&[u8]> = good
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let join = |ls: &[&[u8]]| -> Vec<u8> {
        let mut v = Vec::new();
        for l in ls {
            v.extend_from_slice(l);
            v.push(b'\n');
        }
        v
    };
    // Into an empty database and into one that already has data.
    for target in [mem(&clock), {
        let d = mem(&clock);
        d.create_user(&common::profile("someone@else.test"))
            .unwrap();
        d
    }] {
        // Truncated in the middle of a line.
        let cut = &good[..good.len() / 2];
        let e = refused(&target, cut);
        assert!(e.line().is_some(), "{e}");
        // Truncated at a line boundary: no end line.
        let e = refused(&target, &join(&lines[..lines.len() - 1]));
        assert_eq!(e.line(), Some(lines.len() as u64), "{e}");
        assert!(e.to_string().contains("truncated"), "{e}");
        // Wrong version, not an export, empty.
        let mut v2 = b"{\"format\":\"authdb-export\",\"version\":2,\"schemaVersion\":2}\n".to_vec();
        v2.extend_from_slice(&join(&lines[1..]));
        let e = refused(&target, &v2);
        assert_eq!(e.line(), Some(1));
        assert!(e.to_string().contains("version 2 is not supported"), "{e}");
        let e = refused(&target, b"id,email\n1,a@b.c\n");
        assert!(
            e.to_string().starts_with("line 1: not an authdb export"),
            "{e}"
        );
        assert_eq!(refused(&target, b"").line(), Some(1));
        // A line over the limit.
        let mut big = join(&lines[..3]);
        big.extend(std::iter::repeat_n(
            b' ',
            authdb::export::MAX_IMPORT_LINE_BYTES + 10,
        ));
        big.push(b'\n');
        let e = refused(&target, &big);
        assert_eq!(e.line(), Some(4));
        assert!(e.to_string().contains("longer than the limit"), "{e}");
        // A duplicated user line.
        let mut dup = lines.clone();
        dup.insert(2, lines[1]);
        let e = refused(&target, &join(&dup));
        assert_eq!(e.line(), Some(3));
        assert!(e.to_string().contains("already exists"), "{e}");
        // An unknown field, a record before its user, counts that do not match.
        let odd = String::from_utf8(lines[1].to_vec()).unwrap().replacen(
            "{\"kind\":\"user\",",
            "{\"kind\":\"user\",\"isAdmin\":true,",
            1,
        );
        let mut l = lines.clone();
        l[1] = odd.as_bytes();
        let e = refused(&target, &join(&l));
        assert_eq!(e.line(), Some(2));
        assert!(e.to_string().contains("isAdmin"), "{e}");
        let session_at = lines
            .iter()
            .position(|l| l.starts_with(b"{\"kind\":\"session\""))
            .unwrap();
        let mut l = lines.clone();
        let s = l.remove(session_at);
        l.insert(1, s);
        let e = refused(&target, &join(&l));
        assert_eq!(e.line(), Some(2));
        assert!(e.to_string().contains("not in the database"), "{e}");
        let mut l = lines.clone();
        l.remove(session_at);
        let e = refused(&target, &join(&l));
        assert_eq!(e.line(), Some(lines.len() as u64 - 1));
        // A value over its limit (a name of 2 KiB).
        let long = String::from_utf8(lines[2].to_vec()).unwrap();
        let v: serde_json::Value = serde_json::from_str(&long).unwrap();
        let mut v = v;
        v["name"] = serde_json::json!("n".repeat(2048));
        let long = v.to_string();
        let mut l = lines.clone();
        l[2] = long.as_bytes();
        let e = refused(&target, &join(&l));
        assert_eq!(e.line(), Some(3));
        assert!(e.to_string().contains("`name`"), "{e}");
    }
    // Importing the same export twice: the second run refuses (duplicates), the first stays.
    let copy = mem(&clock);
    copy.import_from(Cursor::new(&good)).unwrap();
    let e = refused(&copy, &good);
    assert_eq!(e.line(), Some(2));
}

#[test]
fn a_new_file_import_that_fails_leaves_no_file() {
    let t = TempDb::new();
    let path = t.dir.path().join("never.redb");
    let e = authdb::import_into_new_file(&path, Cursor::new(b"{\"format\":\"authdb-export\",\"version\":1,\"schemaVersion\":2}\n{\"kind\":\"nope\"}\n"), |_| {}).unwrap_err();
    assert_eq!(e.line(), Some(2));
    assert!(!path.exists());
    assert_eq!(
        std::fs::read_dir(t.dir.path()).unwrap().count(),
        0,
        "temporary files left"
    );
}

#[test]
fn export_import_throughput() {
    // Measured, not asserted: `cargo test --release --test export -- --nocapture throughput`.
    let n: usize = std::env::var("AUTHDB_EXPORT_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let clock = Arc::new(ManualClock::new(t0()));
    let db = mem(&clock);
    populate(&db, n);
    let t = std::time::Instant::now();
    let out = export(&db);
    let te = t.elapsed();
    let lines = out.iter().filter(|b| **b == b'\n').count();
    let copy = mem(&clock);
    let t = std::time::Instant::now();
    copy.import_from(Cursor::new(&out)).unwrap();
    let ti = t.elapsed();
    println!(
        "{lines} lines, {} bytes: export {:.0} lines/s, import {:.0} lines/s",
        out.len(),
        lines as f64 / te.as_secs_f64(),
        lines as f64 / ti.as_secs_f64()
    );
}

#[test]
fn web_session_lines_are_checked() {
    let clock = Arc::new(ManualClock::new(t0()));
    let src = mem(&clock);
    populate(&src, 12);
    let good = export(&src);
    let text = String::from_utf8(good.clone()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with("{\"kind\":\"webSession\"") && !l.contains("\"userId\":null"))
        .expect("a signed-in web session");
    let target = mem(&clock);
    let with = |i: usize, line: &str| -> Vec<u8> {
        let mut l = lines.clone();
        l[i] = line;
        (l.join("\n") + "\n").into_bytes()
    };
    let mut v: serde_json::Value = serde_json::from_str(lines[at]).unwrap();

    // Its user is missing.
    v["userId"] = serde_json::json!("0190a000-0000-7000-8000-000000000001");
    let e = refused(&target, &with(at, &v.to_string()));
    assert_eq!(e.line(), Some(at as u64 + 1));
    assert!(
        e.to_string()
            .contains("the web session refers to user 0190a000"),
        "{e}"
    );

    // The same id hash twice (the count is fixed up so that only the duplicate is wrong).
    let mut l = lines.clone();
    l.insert(at + 1, lines[at]);
    let n = l.len();
    let mut end: serde_json::Value = serde_json::from_str(l[n - 1]).unwrap();
    let c = end["counts"]["webSessions"].as_u64().unwrap();
    end["counts"]["webSessions"] = serde_json::json!(c + 1);
    let end = end.to_string();
    l[n - 1] = &end;
    let e = refused(&target, (l.join("\n") + "\n").as_bytes());
    assert_eq!(e.line(), Some(at as u64 + 2));
    assert!(
        e.to_string()
            .contains("web session with this id hash already exists"),
        "{e}"
    );

    // Data over the limit, data that is not base64, a short id hash.
    let mut v2 = v.clone();
    v2["userId"] = serde_json::Value::Null;
    let big = vec![b'x'; authdb::web_sessions::MAX_WEB_SESSION_DATA_LEN + 1];
    v2["data"] = serde_json::json!(base64ish(&big));
    let e = refused(&target, &with(at, &v2.to_string()));
    assert_eq!(e.line(), Some(at as u64 + 1));
    assert!(e.to_string().contains("over the limit"), "{e}");
    let mut v3 = v.clone();
    v3["data"] = serde_json::json!("not base64!");
    let e = refused(&target, &with(at, &v3.to_string()));
    assert!(e.to_string().contains("base64"), "{e}");
    assert!(
        !e.to_string().contains("not base64!"),
        "the value is quoted: {e}"
    );
    let mut v4 = v;
    v4["idHash"] = serde_json::json!("abcd");
    let e = refused(&target, &with(at, &v4.to_string()));
    assert!(e.to_string().contains("64 hexadecimal digits"), "{e}");

    // An end line without `webSessions` (an older export with none) is accepted.
    let old: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| !l.starts_with("{\"kind\":\"webSession\""))
        .collect();
    let mut end: serde_json::Value = serde_json::from_str(old[old.len() - 1]).unwrap();
    end["counts"].as_object_mut().unwrap().remove("webSessions");
    let mut old: Vec<String> = old.iter().map(|s| (*s).to_owned()).collect();
    let last = old.len() - 1;
    old[last] = end.to_string();
    let counts = target
        .import_from(Cursor::new(old.join("\n") + "\n"))
        .unwrap();
    assert_eq!(counts.web_sessions, 0);
    assert_eq!(counts.users, 12);
}

/// Standard padded base64 (a test's own, to build lines by hand).
fn base64ish(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Collects what the reader hands over, as a backend's sink would store it.
#[derive(Default)]
struct Collect(Vec<ExportRecord>);

impl ImportSink for Collect {
    fn put(&mut self, record: ExportRecord) -> Result<(), authdb::ImportError> {
        self.0.push(record);
        Ok(())
    }
}

/// Refuses every session, as a backend would whose sessions' users are missing.
struct NoSessions;

impl ImportSink for NoSessions {
    fn put(&mut self, record: ExportRecord) -> Result<(), authdb::ImportError> {
        match record {
            ExportRecord::Session(_) => Err(record.refused(authdb::export::Refusal::UserMissing)),
            _ => Ok(()),
        }
    }
}

#[test]
fn the_format_api_reads_and_writes_the_same_lines_for_any_backend() {
    let clock = Arc::new(ManualClock::new(t0()));
    let src = mem(&clock);
    populate(&src, 24);
    let good = export(&src);

    // Read by the backend-neutral reader, written back by the backend-neutral writer: the
    // same bytes, so another backend that lists the same records writes the same export.
    let mut sink = Collect::default();
    let read = read_export(Cursor::new(&good), &mut sink, |_| {}).unwrap();
    assert_eq!(read.total(), sink.0.len() as u64);
    let mut out = Vec::new();
    let mut ex = Exporter::new(&mut out).unwrap();
    for r in sink.0.iter().cloned() {
        ex.write(r).unwrap();
    }
    assert_eq!(ex.finish().unwrap(), read);
    assert_eq!(out, good);

    // Records carry their stored form; Debug shows none of the secrets.
    let dbg = format!("{:?}", sink.0);
    assert!(dbg.contains("<redacted>"));
    for r in &sink.0 {
        match r {
            ExportRecord::Session(s) => assert!(!dbg.contains(&common::hex(&s.token_hash))),
            ExportRecord::Password(p) => assert!(!dbg.contains(&p.phc)),
            _ => {}
        }
    }

    // A record of a kind earlier than the previous one is refused (its user would come
    // after it).
    let user = sink
        .0
        .iter()
        .find(|r| matches!(r, ExportRecord::User(_)))
        .unwrap()
        .clone();
    let session = sink
        .0
        .iter()
        .find(|r| matches!(r, ExportRecord::Session(_)))
        .unwrap()
        .clone();
    let mut ex = Exporter::new(Vec::new()).unwrap();
    ex.write(session).unwrap();
    assert!(matches!(
        ex.write(user),
        Err(authdb::Error::InvalidValue {
            field: "record",
            ..
        })
    ));

    // A sink's refusal gets the line number.
    let e = read_export(Cursor::new(&good), &mut NoSessions, |_| {}).unwrap_err();
    let first_session = String::from_utf8(good.clone())
        .unwrap()
        .lines()
        .position(|l| l.starts_with("{\"kind\":\"session\""))
        .unwrap();
    assert_eq!(e.line(), Some(first_session as u64 + 1));
    assert!(
        e.to_string().contains("which is not in the database"),
        "{e}"
    );
}
