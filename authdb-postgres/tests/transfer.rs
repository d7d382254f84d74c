//! Moving a database between backends through authdb's export format: redb file → export →
//! PostgreSQL → export → new redb file gives byte-identical exports, and the moved data
//! behaves (passwords sign in, old session tokens and sign-in links work, sealed tokens open
//! with the same key). Bad imports fail alike on both backends and write nothing. Needs
//! `AUTHDB_POSTGRES_URL`.

#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_precision_loss,
    clippy::many_single_char_names
)]

mod common;

use std::io::Cursor;
use std::sync::Arc;

use authdb::prelude::*;
use authdb::{
    AuthDb, Credentials, EncryptionKey, ManualClock, NewAccount, NewAuthenticator, NewSession,
    NewUser, VerificationToken, WebSession, WebSessionId,
};
use authdb_postgres::{ImportOptions, PgAuthDb};
use chrono::Duration;

const SECRET: &str = "the nextauth secret";

/// A 64-hex-character token made from `seed` (not random, but above the entropy floor).
fn token(seed: u64) -> String {
    use std::fmt::Write as _;
    let mut x = seed ^ 0x9E37_79B9_7F4A_7C15;
    let mut out = String::with_capacity(64);
    for _ in 0..4 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let _ = write!(out, "{x:016x}");
    }
    out
}

fn redb_builder(clock: &Arc<ManualClock>) -> authdb::Builder {
    AuthDb::builder()
        .clock(clock.clone())
        .session_max_age(Duration::days(30))
        .session_update_age(Duration::hours(24))
        .encryption_key(EncryptionKey::from_bytes([7; 32]))
        .password_params(common::fast_passwords())
}

fn pg(url: &str, schemas: &common::Schemas, clock: &Arc<ManualClock>) -> PgAuthDb {
    common::builder(url, &schemas.fresh("xfer"), clock.clone())
        .connect()
        .expect("connect and create the schema")
}

/// What a populated store holds that a test checks after the move.
struct Seeded {
    /// (email as typed, password) of users with a password.
    passwords: Vec<(String, String)>,
    /// Live session tokens.
    sessions: Vec<String>,
    /// (identifier, raw token) of live sign-in links.
    links: Vec<(String, String)>,
    /// (provider, provider account id, access token, refresh token).
    tokens: Vec<(String, String, String, Option<String>)>,
}

/// Every kind of record: users with extra fields (and without email), passwords, OAuth and
/// OIDC accounts with sealed tokens and extra fields (some with a sub-second expiry),
/// live and expired sessions, authenticators (one counter above 2^63), live and expired
/// sign-in links.
fn populate(db: &AuthDb, n: usize) -> Seeded {
    let now = db.now();
    let mut s = Seeded {
        passwords: Vec::new(),
        sessions: Vec::new(),
        links: Vec::new(),
        tokens: Vec::new(),
    };
    for i in 0..n {
        let mut extra = authdb::Extra::new();
        if i % 2 == 0 {
            extra.insert("role".into(), serde_json::json!("admin"));
            extra.insert("score".into(), serde_json::json!(i as f64 / 7.0));
            extra.insert(
                "prefs".into(),
                serde_json::json!({"theme": "dark", "tags": ["a", "ü", i]}),
            );
        }
        let email = match i % 3 {
            0 => format!("User{i}@Example.COM"),
            1 => format!("ünï{i}@exämple.org"),
            _ => format!("  spaced{i}@example.io "),
        };
        let user = db
            .write(|tx| {
                let u = tx.create_user(&NewUser {
                    name: (i % 4 != 0).then(|| format!("User \"{i}\" \u{1F600}")),
                    email: (i % 7 != 6).then_some(email.clone()),
                    image: (i % 2 == 0).then(|| format!("https://img.test/{i}.png")),
                    email_verified: (i % 3 == 1)
                        .then(|| now - Duration::microseconds(i as i64 * 1_234_567)),
                    extra: extra.clone(),
                })?;
                let oidc = i % 2 == 1;
                let mut acc_extra = authdb::Extra::new();
                if oidc {
                    acc_extra.insert("refresh_token_expires_in".into(), serde_json::json!(3600));
                }
                let refresh = (i % 3 != 2).then(|| format!("refresh-{i}"));
                tx.link_account(
                    &u.id,
                    &NewAccount {
                        provider_type: if oidc { "oidc" } else { "oauth" }.into(),
                        provider_id: if oidc { "google" } else { "github" }.into(),
                        provider_account_id: format!("pa-{i}"),
                        refresh_token: refresh.clone(),
                        access_token: Some(format!("access-{i}")),
                        access_token_expires: Some(
                            now + Duration::microseconds(3_600_000_000 + (i as i64 % 2) * 123_456),
                        ),
                        token_type: Some("bearer".into()),
                        scope: oidc.then(|| "openid email".into()),
                        id_token: oidc.then(|| format!("eyJ.{i}.sig")),
                        session_state: (i % 5 == 0).then(|| "state".into()),
                        extra: acc_extra,
                    },
                )?;
                s.tokens.push((
                    if oidc { "google" } else { "github" }.into(),
                    format!("pa-{i}"),
                    format!("access-{i}"),
                    refresh,
                ));
                if i % 4 == 0 {
                    tx.create_session_with(&NewSession {
                        user_id: u.id,
                        session_token: token(10_000 + i as u64),
                        expires: now - Duration::hours(1),
                    })?;
                }
                if i % 3 == 0 {
                    tx.create_authenticator(&NewAuthenticator {
                        credential_id: format!("cred-{i}"),
                        user_id: u.id,
                        provider_account_id: format!("pa-{i}"),
                        credential_public_key: format!("pk-{i}"),
                        counter: if i == 3 { u64::MAX - 1 } else { i as u64 },
                        credential_device_type: "singleDevice".into(),
                        credential_backed_up: i % 2 == 0,
                        transports: (i % 2 == 0).then(|| "usb,nfc".into()),
                    })?;
                }
                Ok(u)
            })
            .unwrap();
        if i % 5 == 0 && user.email.is_some() {
            let pw = format!("correct horse {i}");
            db.set_password(&user.id, &pw).unwrap();
            s.passwords.push((email.clone(), pw));
        }
        // After the password (which signs the user out).
        s.sessions
            .push(db.create_session(&user.id).unwrap().session_token);
        if i % 4 == 1 {
            let raw = token(20_000 + i as u64);
            let identifier = format!("link{i}@example.com");
            db.create_verification_token(&VerificationToken {
                identifier: identifier.clone(),
                token: authdb::hash_verification_token(&raw, SECRET),
                expires: now + Duration::hours(1),
            })
            .unwrap();
            s.links.push((identifier, raw));
        } else if i % 4 == 2 {
            db.create_verification_token(&VerificationToken {
                identifier: format!("old{i}@example.com"),
                token: authdb::hash_verification_token(&token(30_000 + i as u64), SECRET),
                expires: now - Duration::minutes(5),
            })
            .unwrap();
        }
    }
    s
}

/// Asserts two exports are the same bytes; on a difference, names the first line that
/// differs (rather than printing both exports whole).
fn assert_same(got: &[u8], want: &[u8], what: &str) {
    if got == want {
        return;
    }
    let (g, w) = (String::from_utf8_lossy(got), String::from_utf8_lossy(want));
    let (mut gl, mut wl) = (g.lines(), w.lines());
    for n in 1.. {
        let (a, b) = (gl.next(), wl.next());
        assert_eq!(a, b, "{what}: line {n} differs");
        if a.is_none() {
            break;
        }
    }
    panic!("{what}: the bytes differ (line endings)");
}

fn export_redb(db: &AuthDb) -> Vec<u8> {
    let mut out = Vec::new();
    db.export_to(&mut out).unwrap();
    out
}

fn export_pg(db: &PgAuthDb) -> Vec<u8> {
    let mut out = Vec::new();
    db.export_to(&mut out).unwrap();
    out
}

/// The moved data works as it did: passwords, old session tokens, sign-in links (once),
/// sealed tokens opened with the same key.
fn behaves(store: &impl Adapter, seeded: &Seeded) {
    for (email, pw) in &seeded.passwords {
        let c = Credentials {
            email: email.clone(),
            password: pw.clone(),
        };
        let u = store.get_user_by_credentials(&c).unwrap();
        assert!(u.is_some(), "password of {email}");
        let wrong = Credentials {
            email: email.clone(),
            password: "wrong".into(),
        };
        assert!(store.get_user_by_credentials(&wrong).unwrap().is_none());
    }
    for t in &seeded.sessions {
        let (s, u) = store
            .get_session_and_user(t)
            .unwrap()
            .expect("a live session by its old token");
        assert_eq!(s.user_id, u.id);
        assert_eq!(s.session_token, *t);
    }
    for (provider, pa, access, refresh) in &seeded.tokens {
        let a = store.get_account(provider, pa).unwrap().expect("account");
        assert_eq!(a.access_token.as_deref(), Some(access.as_str()));
        assert_eq!(a.refresh_token, *refresh);
    }
    for (identifier, raw) in &seeded.links {
        let hash = authdb::hash_verification_token(raw, SECRET);
        assert!(
            store
                .use_verification_token(identifier, &hash)
                .unwrap()
                .is_some(),
            "link of {identifier}"
        );
        assert!(
            store
                .use_verification_token(identifier, &hash)
                .unwrap()
                .is_none(),
            "single use"
        );
    }
}

#[test]
fn redb_to_postgres_to_redb_is_byte_identical_and_behaves() {
    let Some(url) = common::url("redb_to_postgres_to_redb_is_byte_identical_and_behaves") else {
        return;
    };
    let schemas = common::Schemas::new(&url);
    let clock = common::clock();
    let dir = tempfile::tempdir().unwrap();
    let src = redb_builder(&clock)
        .open(dir.path().join("src.redb"))
        .unwrap();
    let seeded = populate(&src, 40);
    let first = export_redb(&src);
    let text = String::from_utf8(first.clone()).unwrap();
    for kind in [
        "user",
        "password",
        "account",
        "session",
        "authenticator",
        "verificationToken",
    ] {
        assert!(text.contains(&format!("{{\"kind\":\"{kind}\"")), "{kind}");
    }
    assert!(text.contains("\"expires_at_us\":123456"));

    // Into PostgreSQL, and out again: the same bytes.
    let pgdb = pg(&url, &schemas, &clock);
    let counts = pgdb.import_from(Cursor::new(&first)).unwrap();
    assert_eq!(counts.users, 40);
    assert_eq!(counts.authenticators, 14);
    let second = export_pg(&pgdb);
    assert_same(&second, &first, "redb → PostgreSQL → export");
    assert!(pgdb.check_integrity().unwrap().is_clean());

    // Back into a new redb file: the same bytes again.
    let path = dir.path().join("back.redb");
    authdb::import_into_new_file(&path, Cursor::new(&second), |_| {}).unwrap();
    let back = redb_builder(&clock).open(&path).unwrap();
    assert_same(&export_redb(&back), &first, "PostgreSQL → redb → export");
    assert!(back.check_integrity().unwrap().is_clean());

    // The data behaves the same on both.
    assert_eq!(
        pgdb.get_authenticator("cred-3").unwrap().unwrap().counter,
        u64::MAX - 1
    );
    behaves(&pgdb, &seeded);
    behaves(&back, &seeded);
}

/// Imports `input` into both an in-memory redb store and PostgreSQL; both must refuse with
/// the same message and line, and neither may change.
fn refused_alike(redb: &AuthDb, pgdb: &PgAuthDb, input: &[u8]) -> authdb::ImportError {
    let (before_r, before_p) = (export_redb(redb), export_pg(pgdb));
    let er = redb
        .import_from(Cursor::new(input))
        .expect_err("redb refuses");
    let ep = pgdb
        .import_from(Cursor::new(input))
        .expect_err("PostgreSQL refuses");
    assert_eq!(er.to_string(), ep.to_string());
    assert_eq!(er.line(), ep.line());
    assert_eq!(
        export_redb(redb),
        before_r,
        "redb: a failed import wrote something"
    );
    assert_eq!(
        export_pg(pgdb),
        before_p,
        "PostgreSQL: a failed import wrote something"
    );
    ep
}

fn join(lines: &[&str]) -> Vec<u8> {
    (lines.join("\n") + "\n").into_bytes()
}

#[test]
fn bad_imports_fail_alike_and_write_nothing() {
    let Some(url) = common::url("bad_imports_fail_alike_and_write_nothing") else {
        return;
    };
    let schemas = common::Schemas::new(&url);
    let clock = common::clock();
    let src = redb_builder(&clock).in_memory().unwrap();
    populate(&src, 8);
    let good = String::from_utf8(export_redb(&src)).unwrap();
    let lines: Vec<&str> = good.lines().collect();
    let first_of = |kind: &str| {
        lines
            .iter()
            .position(|l| l.starts_with(&format!("{{\"kind\":\"{kind}\"")))
            .unwrap()
    };

    for with_data in [false, true] {
        let rdb = redb_builder(&clock).in_memory().unwrap();
        let pgdb = pg(&url, &schemas, &clock);
        if with_data {
            let other = NewUser {
                email: Some("someone@else.test".into()),
                ..NewUser::default()
            };
            rdb.create_user(&other).unwrap();
            pgdb.create_user(&other).unwrap();
        }
        // Truncated, wrong header, a malformed line, an unknown field.
        let e = refused_alike(&rdb, &pgdb, &join(&lines[..lines.len() - 1]));
        assert!(e.to_string().contains("truncated"), "{e}");
        let e = refused_alike(&rdb, &pgdb, b"id,email\n");
        assert_eq!(e.line(), Some(1));
        let mut l = lines.clone();
        let odd = lines[1].replacen(
            "{\"kind\":\"user\",",
            "{\"kind\":\"user\",\"isAdmin\":1,",
            1,
        );
        l[1] = &odd;
        let e = refused_alike(&rdb, &pgdb, &join(&l));
        assert_eq!(e.line(), Some(2));
        // A duplicated user, session, authenticator, link, account, password.
        for kind in [
            "user",
            "session",
            "authenticator",
            "verificationToken",
            "account",
            "password",
        ] {
            let at = first_of(kind);
            let mut l = lines.clone();
            l.insert(at + 1, lines[at]);
            let e = refused_alike(&rdb, &pgdb, &join(&l));
            assert_eq!(e.line(), Some(at as u64 + 2), "{kind}: {e}");
            assert!(
                e.to_string().contains("already"),
                "{kind}: {e} (expected a duplicate)"
            );
        }
        // A session before its user.
        let at = first_of("session");
        let mut l = lines.clone();
        let s = l.remove(at);
        l.insert(1, s);
        let e = refused_alike(&rdb, &pgdb, &join(&l));
        assert_eq!(e.line(), Some(2));
        assert!(e.to_string().contains("not in the database"), "{e}");
        // Another user with the same email (after normalization), another account with the
        // same provider account: the unique keys.
        let mut u: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
        u["id"] = serde_json::json!("0190a000-0000-7000-8000-0000000000aa");
        u["email"] = serde_json::json!(
            u["email"]
                .as_str()
                .unwrap()
                .to_uppercase()
                .trim()
                .to_owned()
        );
        let dup_email = u.to_string();
        let mut l = lines.clone();
        l.insert(2, &dup_email);
        let e = refused_alike(&rdb, &pgdb, &join(&l));
        assert_eq!(e.line(), Some(3));
        assert!(
            e.to_string().contains("email address is already used"),
            "{e}"
        );
        let at = first_of("account");
        let mut a: serde_json::Value = serde_json::from_str(lines[at]).unwrap();
        a["id"] = serde_json::json!("0190a000-0000-7000-8000-0000000000bb");
        let dup_acc = a.to_string();
        let mut l = lines.clone();
        l.insert(at + 1, &dup_acc);
        let e = refused_alike(&rdb, &pgdb, &join(&l));
        assert_eq!(e.line(), Some(at as u64 + 2));
        assert!(
            e.to_string().contains("provider account is already linked"),
            "{e}"
        );
        // Counts that do not match.
        let mut l = lines.clone();
        l.remove(first_of("authenticator"));
        let e = refused_alike(&rdb, &pgdb, &join(&l));
        assert_eq!(e.line(), Some(lines.len() as u64 - 1));
    }

    // The same export twice: the second run is refused at its first record, and the first
    // import stays as it was.
    let p = pg(&url, &schemas, &clock);
    p.import_from(Cursor::new(good.as_bytes())).unwrap();
    let before = export_pg(&p);
    let e = p.import_from(Cursor::new(good.as_bytes())).unwrap_err();
    assert_eq!(e.line(), Some(2));
    assert!(e.to_string().contains("already exists"), "{e}");
    assert_same(&export_pg(&p), &before, "after the refused second import");
}

#[test]
fn postgres_refuses_web_sessions_unless_told_to_skip_them() {
    let Some(url) = common::url("postgres_refuses_web_sessions_unless_told_to_skip_them") else {
        return;
    };
    let schemas = common::Schemas::new(&url);
    let clock = common::clock();
    let src = redb_builder(&clock).in_memory().unwrap();
    populate(&src, 6);
    let user = src.get_user_by_email("user0@example.com").unwrap().unwrap();
    for i in 0..3u8 {
        src.web_session_create(&WebSession {
            id: WebSessionId::from_bytes([i + 1; 16]),
            user_id: (i != 1).then_some(user.id),
            expires: src.now() + Duration::hours(1),
            data: vec![i, 0, 255],
        })
        .unwrap();
    }
    let with_web = String::from_utf8(export_redb(&src)).unwrap();
    let first_web = with_web
        .lines()
        .position(|l| l.starts_with("{\"kind\":\"webSession\""))
        .unwrap();

    let p = pg(&url, &schemas, &clock);
    let e = p.import_from(Cursor::new(with_web.as_bytes())).unwrap_err();
    assert_eq!(e.line(), Some(first_web as u64 + 1));
    assert!(e.to_string().contains("no web-session store"), "{e}");
    assert_eq!(
        export_pg(&p),
        export_pg(&pg(&url, &schemas, &clock)),
        "nothing written"
    );

    let report = p
        .import_from_with(
            Cursor::new(with_web.as_bytes()),
            ImportOptions::default().skip_web_sessions(true),
            |_| {},
        )
        .unwrap();
    assert_eq!(report.skipped_web_sessions, 3);
    assert_eq!(report.read.web_sessions, 3);
    assert_eq!(report.read.users, 6);

    // Everything but the web sessions arrived: the export is the redb one without them.
    let expected: String = with_web
        .lines()
        .filter(|l| !l.starts_with("{\"kind\":\"webSession\""))
        .map(|l| l.replace("\"webSessions\":3}", "\"webSessions\":0}") + "\n")
        .collect();
    assert_same(
        &export_pg(&p),
        expected.as_bytes(),
        "PostgreSQL without web sessions",
    );
}
