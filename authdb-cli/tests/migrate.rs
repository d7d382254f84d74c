//! `authdb migrate-from` on NextAuth databases the test builds: SQLite with the NextAuth v3
//! TypeORM schema and with the Auth.js Prisma schema, and PostgreSQL (Prisma schema) when
//! `AUTHDB_POSTGRES_URL` is set (each test uses a fresh schema and drops it).

use std::path::Path;
use std::process::{Command, Output};

use authdb::prelude::*;
use authdb::{AuthDb, EncryptionKey};

const KEY_HEX: &str = "hex:0707070707070707070707070707070707070707070707070707070707070707";
const SECRET: &str = "nextauth-secret";

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_authdb"))
        .args(args)
        .env("MIGRATION_KEY", KEY_HEX)
        .output()
        .unwrap()
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

fn open(p: &Path) -> AuthDb {
    AuthDb::builder()
        .encryption_key(EncryptionKey::from_bytes([7; 32]))
        .open(p)
        .unwrap()
}

fn future(days: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now() + chrono::Duration::days(days)
}

/// NextAuth v3 (TypeORM) tables with realistic rows: mixed-case duplicate emails, an orphan
/// account, live sessions with plain tokens, a hashed verification token.
fn v3_sqlite(path: &Path) {
    let c = rusqlite::Connection::open(path).unwrap();
    let exp = future(20).format("%Y-%m-%d %H:%M:%S").to_string();
    let vexp = future(1).format("%Y-%m-%d %H:%M:%S%.3f").to_string();
    c.execute_batch(&format!(
        "CREATE TABLE users (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT, email TEXT UNIQUE,
            email_verified DATETIME, image TEXT,
            created_at DATETIME NOT NULL DEFAULT (datetime('now')),
            updated_at DATETIME NOT NULL DEFAULT (datetime('now')));
         CREATE TABLE accounts (id INTEGER PRIMARY KEY AUTOINCREMENT, compound_id TEXT UNIQUE,
            user_id INTEGER NOT NULL, provider_type TEXT NOT NULL, provider_id TEXT NOT NULL,
            provider_account_id TEXT NOT NULL, refresh_token TEXT, access_token TEXT,
            access_token_expires DATETIME,
            created_at DATETIME NOT NULL DEFAULT (datetime('now')),
            updated_at DATETIME NOT NULL DEFAULT (datetime('now')));
         CREATE TABLE sessions (id INTEGER PRIMARY KEY AUTOINCREMENT, user_id INTEGER NOT NULL,
            expires DATETIME NOT NULL, session_token TEXT NOT NULL UNIQUE,
            access_token TEXT NOT NULL UNIQUE,
            created_at DATETIME NOT NULL DEFAULT (datetime('now')),
            updated_at DATETIME NOT NULL DEFAULT (datetime('now')));
         CREATE TABLE verification_requests (id INTEGER PRIMARY KEY AUTOINCREMENT,
            identifier TEXT NOT NULL, token TEXT NOT NULL UNIQUE, expires DATETIME NOT NULL,
            created_at DATETIME NOT NULL DEFAULT (datetime('now')),
            updated_at DATETIME NOT NULL DEFAULT (datetime('now')));
         INSERT INTO users (id, name, email, email_verified, image, created_at) VALUES
            (1, 'Ada Lovelace', 'Ada@Example.com', '2021-03-04 05:06:07', NULL, '2021-01-01 00:00:00'),
            (2, 'Grace Hopper', 'grace@navy.mil', NULL, 'https://img/grace.png', '2021-02-01 00:00:00'),
            (3, 'Ada again', 'ada@example.COM ', NULL, NULL, '2022-01-01 00:00:00'),
            (4, 'No email', NULL, NULL, NULL, '2022-02-02 00:00:00');
         INSERT INTO accounts (user_id, compound_id, provider_type, provider_id, provider_account_id, refresh_token, access_token, access_token_expires) VALUES
            (1, 'c1', 'oauth', 'github', '1001', 'ghr_ada', 'gho_ada', '{exp}'),
            (2, 'c2', 'oauth', 'google', '2002', NULL, 'ya29.grace', NULL),
            (3, 'c3', 'oauth', 'gitlab', '3003', NULL, 'glpat', NULL),
            (99, 'c99', 'oauth', 'github', '9999', NULL, 'orphan-token', NULL);
         INSERT INTO sessions (user_id, expires, session_token, access_token) VALUES
            (1, '{exp}', 'ada-session-token', 'ada-access'),
            (2, '{exp}', 'grace-session-token', 'grace-access'),
            (42, '{exp}', 'orphan-session', 'orphan-access');
         INSERT INTO verification_requests (identifier, token, expires) VALUES
            ('grace@navy.mil', '{hash}', '{vexp}');",
        hash = authdb::hash_verification_token("raw-link-token-5f1e0c7a2b9d4e8f", SECRET),
    ))
    .unwrap();
}

#[test]
fn migrate_from_nextauth_v3_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("nextauth.sqlite");
    v3_sqlite(&src);
    let out = dir.path().join("auth.redb");
    let s = |p: &Path| p.to_str().unwrap().to_owned();

    // Dry run: the report, nothing written.
    let o = run(&[
        "migrate-from",
        &s(&src),
        &s(&out),
        "--dry-run",
        "--key-env",
        "MIGRATION_KEY",
        "--json",
    ]);
    assert_eq!(
        o.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let r = json(&o);
    assert_eq!(r["dry_run"], true);
    assert!(!out.exists());

    // Without a key the OAuth tokens cannot be sealed: refused, nothing written.
    let o = run(&["migrate-from", &s(&src), &s(&out)]);
    assert_eq!(o.status.code(), Some(5));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--key-env"));
    assert!(!out.exists());

    let o = run(&[
        "migrate-from",
        &s(&src),
        &s(&out),
        "--key-env",
        "MIGRATION_KEY",
        "--json",
    ]);
    assert_eq!(
        o.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let r = json(&o);
    assert_eq!(r["schema"], "NextAuth v3 (TypeORM)");
    assert_eq!(r["moved"]["users"], 3);
    assert_eq!(r["moved"]["accounts"], 2);
    assert_eq!(r["moved"]["sessions"], 2);
    assert_eq!(r["moved"]["verificationTokens"], 1);
    let refused = r["refused"].as_array().unwrap();
    let why = |id: &str| {
        refused
            .iter()
            .find(|x| x["id"] == id)
            .map(|x| x["reason"].as_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    assert!(why("3").contains("duplicate email"), "{refused:?}");
    assert!(why("3").contains("user 1"), "{refused:?}");
    assert!(
        refused
            .iter()
            .any(|x| x["table"] == "accounts" && x["reason"].as_str().unwrap().contains("orphan"))
    );
    assert!(
        refused
            .iter()
            .any(|x| x["table"] == "accounts"
                && x["reason"].as_str().unwrap().contains("was refused"))
    );
    assert!(
        refused
            .iter()
            .any(|x| x["table"] == "sessions" && x["reason"].as_str().unwrap().contains("orphan"))
    );

    let db = open(&out);
    assert!(db.check_integrity().unwrap().is_clean());
    // Everyone stays signed in: the plain v3 token finds the session.
    let (session, user) = db
        .get_session_and_user("ada-session-token")
        .unwrap()
        .unwrap();
    assert_eq!(user.email.as_deref(), Some("Ada@Example.com"));
    assert_eq!(user.name.as_deref(), Some("Ada Lovelace"));
    assert_eq!(
        user.email_verified.unwrap().to_rfc3339(),
        "2021-03-04T05:06:07+00:00"
    );
    assert_eq!(session.user_id, user.id);
    let acc = db.get_account("github", "1001").unwrap().unwrap();
    assert_eq!(acc.access_token.as_deref(), Some("gho_ada"));
    assert_eq!(acc.refresh_token.as_deref(), Some("ghr_ada"));
    assert!(db.get_account("github", "9999").unwrap().is_none());
    // The v3 email link still works with the raw token and the app's secret.
    let link = db
        .use_verification_request("grace@navy.mil", "raw-link-token-5f1e0c7a2b9d4e8f", SECRET)
        .unwrap();
    assert!(link.is_some());
    // The file holds no plain token.
    let bytes = std::fs::read(&out).unwrap();
    for secret in [&b"ada-session-token"[..], b"gho_ada", b"ghr_ada"] {
        assert!(!bytes.windows(secret.len()).any(|w| w == secret));
    }
}

const PRISMA_DDL: &str = r#"
    CREATE TABLE "User" ("id" TEXT NOT NULL PRIMARY KEY, "name" TEXT, "email" TEXT,
        "emailVerified" TIMESTAMP, "image" TEXT, "role" TEXT);
    CREATE TABLE "Account" ("id" TEXT NOT NULL PRIMARY KEY, "userId" TEXT NOT NULL,
        "type" TEXT NOT NULL, "provider" TEXT NOT NULL, "providerAccountId" TEXT NOT NULL,
        "refresh_token" TEXT, "access_token" TEXT, "expires_at" INTEGER, "token_type" TEXT,
        "scope" TEXT, "id_token" TEXT, "session_state" TEXT, "refresh_token_expires_in" INTEGER);
    CREATE TABLE "Session" ("id" TEXT NOT NULL PRIMARY KEY, "sessionToken" TEXT NOT NULL UNIQUE,
        "userId" TEXT NOT NULL, "expires" TIMESTAMP NOT NULL);
    CREATE TABLE "VerificationToken" ("identifier" TEXT NOT NULL, "token" TEXT NOT NULL UNIQUE,
        "expires" TIMESTAMP NOT NULL);
    CREATE TABLE "Authenticator" ("credentialID" TEXT NOT NULL UNIQUE, "userId" TEXT NOT NULL,
        "providerAccountId" TEXT NOT NULL, "credentialPublicKey" TEXT NOT NULL,
        "counter" INTEGER NOT NULL, "credentialDeviceType" TEXT NOT NULL,
        "credentialBackedUp" BOOLEAN NOT NULL, "transports" TEXT,
        PRIMARY KEY ("userId", "credentialID"));
"#;

/// Rows for the Prisma schema; `ts` formats a time as the database stores it.
fn prisma_rows(ts: &dyn Fn(chrono::DateTime<chrono::Utc>) -> String) -> String {
    let exp = ts(future(20));
    let vexp = ts(future(1));
    let hash = authdb::hash_verification_token("magic", SECRET);
    format!(
        r#"
    INSERT INTO "User" VALUES
        ('clx0ada000001', 'Ada', 'ADA@example.com', {ev}, NULL, 'admin'),
        ('clx0ada000002', 'Ada twin', 'ada@EXAMPLE.com', NULL, NULL, NULL),
        ('3f1c0b9e-8f4e-4f7a-9c55-7d2d1c8f0a11', 'Lin', 'lin@example.org', NULL, 'https://i/lin', 'user');
    INSERT INTO "Account" VALUES
        ('acc1', 'clx0ada000001', 'oidc', 'google', 'g-1', 'rt', 'at', 1893456000, 'Bearer', 'openid email', 'eyJ.id.tok', NULL, 3600),
        ('acc2', '3f1c0b9e-8f4e-4f7a-9c55-7d2d1c8f0a11', 'oauth', 'github', 'gh-2', NULL, 'gho', NULL, 'bearer', NULL, NULL, NULL, NULL),
        ('acc3', 'clx-ghost', 'oauth', 'github', 'gh-3', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
        ('acc4', 'clx0ada000002', 'oauth', 'gitlab', 'gl-4', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
        ('acc5', '3f1c0b9e-8f4e-4f7a-9c55-7d2d1c8f0a11', 'credentials', 'credentials', 'c-5', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
    INSERT INTO "Session" VALUES
        ('s1', '9b1f6c1e-2f2c-4f1b-8f59-0a6f3d6b1b11', 'clx0ada000001', {exp}),
        ('s2', 'c0ffee00-2f2c-4f1b-8f59-0a6f3d6b1b22', '3f1c0b9e-8f4e-4f7a-9c55-7d2d1c8f0a11', {exp});
    INSERT INTO "VerificationToken" VALUES ('lin@example.org', '{hash}', {vexp});
    INSERT INTO "Authenticator" VALUES
        ('cred-lin', '3f1c0b9e-8f4e-4f7a-9c55-7d2d1c8f0a11', 'lin-pa', 'pQECAyYgASFYIA', 3, 'multiDevice', {t}, 'internal,hybrid');
    "#,
        ev = ts(chrono::DateTime::from_timestamp(1_600_000_000, 0).unwrap()),
        t = "true",
    )
}

fn check_prisma(out: &Path, r: &serde_json::Value) {
    assert_eq!(r["schema"], "Auth.js v4/v5 (Prisma / pg adapter)", "{r}");
    assert_eq!(r["moved"]["users"], 2, "{r}");
    assert_eq!(r["moved"]["accounts"], 2, "{r}");
    assert_eq!(r["moved"]["sessions"], 2, "{r}");
    assert_eq!(r["moved"]["authenticators"], 1, "{r}");
    assert_eq!(r["moved"]["verificationTokens"], 1, "{r}");
    let refused = r["refused"].as_array().unwrap();
    let reason = |id: &str| {
        refused
            .iter()
            .find(|x| x["id"] == id)
            .map(|x| x["reason"].as_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    assert!(
        reason("clx0ada000002").contains("duplicate email"),
        "{refused:?}"
    );
    assert!(reason("acc3").contains("orphan"), "{refused:?}");
    assert!(reason("acc4").contains("was refused"), "{refused:?}");
    assert!(reason("acc5").contains("provider_type"), "{refused:?}");

    let db = open(out);
    assert!(db.check_integrity().unwrap().is_clean());
    let (_, ada) = db
        .get_session_and_user("9b1f6c1e-2f2c-4f1b-8f59-0a6f3d6b1b11")
        .unwrap()
        .unwrap();
    assert_eq!(ada.email.as_deref(), Some("ADA@example.com"));
    assert_eq!(ada.extra["role"], "admin");
    assert_eq!(ada.email_verified.unwrap().timestamp(), 1_600_000_000);
    let acc = db.get_account("google", "g-1").unwrap().unwrap();
    assert_eq!(acc.id_token.as_deref(), Some("eyJ.id.tok"));
    assert_eq!(acc.access_token_expires.unwrap().timestamp(), 1_893_456_000);
    assert_eq!(
        acc.extra["refresh_token_expires_in"]
            .to_string()
            .trim_matches('"'),
        "3600"
    );
    let lin = db.get_user_by_email("lin@example.org").unwrap().unwrap();
    assert_eq!(
        lin.id.to_string(),
        "3f1c0b9e-8f4e-4f7a-9c55-7d2d1c8f0a11",
        "UUID ids are kept"
    );
    let a = db.get_authenticator("cred-lin").unwrap().unwrap();
    assert_eq!((a.counter, a.credential_backed_up), (3, true));
    let hash = authdb::hash_verification_token("magic", SECRET);
    assert!(
        db.use_verification_token("lin@example.org", &hash)
            .unwrap()
            .is_some()
    );
}

#[test]
fn migrate_from_authjs_prisma_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("prisma.db");
    let c = rusqlite::Connection::open(&src).unwrap();
    c.execute_batch(PRISMA_DDL).unwrap();
    // Prisma keeps DateTime in SQLite as milliseconds since the epoch.
    c.execute_batch(&prisma_rows(&|t| t.timestamp_millis().to_string()))
        .unwrap();
    drop(c);
    let out = dir.path().join("auth.redb");
    let o = run(&[
        "migrate-from",
        src.to_str().unwrap(),
        out.to_str().unwrap(),
        "--key-env",
        "MIGRATION_KEY",
        "--json",
    ]);
    assert_eq!(
        o.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    check_prisma(&out, &json(&o));
    // Into the same file again: every row is a duplicate now; refused whole, nothing written.
    let before = std::fs::read(&out).unwrap().len();
    let o = run(&[
        "migrate-from",
        src.to_str().unwrap(),
        out.to_str().unwrap(),
        "--key-env",
        "MIGRATION_KEY",
    ]);
    assert_eq!(
        o.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("nothing was written"));
    assert_eq!(open(&out).stats().unwrap().users, 2);
    let _ = before;
}

#[test]
fn migrate_from_a_file_that_is_not_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("notes.txt");
    std::fs::write(&src, "just some text, not SQLite").unwrap();
    let out = dir.path().join("auth.redb");
    let o = run(&["migrate-from", src.to_str().unwrap(), out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(5));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("notes.txt"), "{err}");
    assert!(!out.exists());
    let empty = dir.path().join("empty.sqlite");
    rusqlite::Connection::open(&empty)
        .unwrap()
        .execute_batch("CREATE TABLE t (x)")
        .unwrap();
    let o = run(&[
        "migrate-from",
        empty.to_str().unwrap(),
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(5));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no NextAuth tables"));
    assert!(!out.exists());
}

#[test]
fn migrate_from_postgres_when_available() {
    let Ok(url) = std::env::var("AUTHDB_POSTGRES_URL") else {
        eprintln!("AUTHDB_POSTGRES_URL not set: skipping the PostgreSQL migration test");
        return;
    };
    let schema = format!(
        "authdb_cli_{}_{}",
        std::process::id(),
        chrono::Utc::now().timestamp_micros()
    );
    let mut pg = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    pg.batch_execute(&format!(
        "CREATE SCHEMA {schema}; SET search_path TO {schema};"
    ))
    .unwrap();
    let result = std::panic::catch_unwind(|| {
        let mut pg = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        pg.batch_execute(&format!("SET search_path TO {schema};"))
            .unwrap();
        pg.batch_execute(&PRISMA_DDL.replace("TIMESTAMP", "TIMESTAMP(3)"))
            .unwrap();
        pg.batch_execute(&prisma_rows(&|t| {
            format!("'{}'", t.format("%Y-%m-%d %H:%M:%S%.3f"))
        }))
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("auth.redb");
        let o = run(&[
            "migrate-from",
            &url,
            out.to_str().unwrap(),
            "--schema",
            &schema,
            "--key-env",
            "MIGRATION_KEY",
            "--json",
        ]);
        assert_eq!(
            o.status.code(),
            Some(4),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        check_prisma(&out, &json(&o));
    });
    pg.batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .unwrap();
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
}
