//! Shared by the benches: the data set, its bulk loading into authdb, SQLite and raw redb, the
//! SQLite baseline (NextAuth v3's TypeORM schema), the disk flush probe and the small
//! measurement helpers.
//!
//! One data set = `n` sessions over `n / SESSIONS_PER_USER` users, each user with one linked
//! GitHub account. authdb and SQLite hold exactly the same users, accounts and sessions (the
//! session tokens authdb made are inserted into SQLite too). Raw redb (the floor) holds tables
//! shaped like authdb's: a session table with the same entries per session in ONE table, a
//! user table with as many users, and a verification table sized like authdb's in the run.
//!
//! Environment variables (all optional; the defaults are the full run):
//!
//! | variable | default | what |
//! |---|---|---|
//! | `AUTHDB_BENCH_SMALL` | 1 | run the small data set |
//! | `AUTHDB_BENCH_SMALL_SESSIONS` | 100000 | sessions in the small data set |
//! | `AUTHDB_BENCH_LARGE` | 1 | run the large data set |
//! | `AUTHDB_BENCH_LARGE_SESSIONS` | 1000000 | sessions in the large data set |
//! | `AUTHDB_BENCH_CRITERION` | 1 | `ops`: run the criterion groups (0: interleaved part only) |
//! | `AUTHDB_BENCH_ROUNDS` | 300 | `ops`: rounds of each interleaved single-operation measure |
//! | `AUTHDB_BENCH_PURGE_ROUNDS` | 12 | `ops`: rounds of the interleaved purge |
//! | `AUTHDB_BENCH_CONC_ROUNDS` | 6 | `concurrency`: pairs (authdb, SQLite) per thread count |
//! | `AUTHDB_BENCH_CONC_THREADS` | 1,8 | `concurrency`: thread counts |
//! | `AUTHDB_BENCH_CONC_OPS` | 500 | `concurrency`: durable creates per thread per engine per pair |
//! | `AUTHDB_BENCH_PROBE_N` | 100 | fsyncs per flush-latency probe |
// Each bench binary uses a part of this module; byte counts and times become f64 only for
// printing ratios.
#![allow(dead_code, clippy::cast_precision_loss)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use authdb::prelude::*;
use authdb::{AuthDb, Clock, Durability, NewAccount, NewUser, Session, UserId};
use chrono::{DateTime, Utc};
use redb::{ReadableDatabase, TableDefinition};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

/// Sessions per user in every data set.
pub const SESSIONS_PER_USER: usize = 2;
/// Rows per transaction while loading.
const LOAD_BATCH: usize = 10_000;
/// How many users are sampled for the write benches (sessions are created for them).
const USER_SAMPLE: usize = 10_000;
/// Page cache for every engine: authdb's default (64 MiB), the same for raw redb and SQLite.
pub const CACHE_BYTES: usize = 64 * 1024 * 1024;
/// Session max age (NextAuth's default, 30 days).
pub const MAX_AGE: chrono::TimeDelta = chrono::TimeDelta::days(30);
/// Two flush-latency probes agree when the larger median is at most this times the smaller
/// (`benches/report.py` applies the same tolerance).
pub const PROBE_TOLERANCE: f64 = 1.3;

/// A boolean environment variable: unset means `default`; "", "0", "false", "no" mean false.
pub fn env_flag(var: &str, default: bool) -> bool {
    std::env::var(var).map_or(default, |v| {
        !matches!(v.as_str(), "" | "0" | "false" | "no")
    })
}

/// A numeric environment variable, `default` when unset or unparsable.
pub fn env_usize(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.trim().replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// One data-set size.
#[derive(Clone, Debug)]
pub struct Size {
    /// Sessions in the data set.
    pub sessions: usize,
    /// "100k", "1M".
    pub label: String,
}

impl Size {
    pub fn new(sessions: usize) -> Size {
        let label = if sessions >= 1_000_000 && sessions.is_multiple_of(1_000_000) {
            format!("{}M", sessions / 1_000_000)
        } else if sessions >= 1000 && sessions.is_multiple_of(1000) {
            format!("{}k", sessions / 1000)
        } else {
            sessions.to_string()
        };
        Size { sessions, label }
    }
}

/// The sizes to run (see the table at the top of this module). Under `cargo test --benches`
/// (a smoke test, not a benchmark) the defaults are 2,000 sessions and no large data set.
pub fn sizes() -> Vec<Size> {
    let bench = benchmarking();
    let mut out = Vec::new();
    if env_flag("AUTHDB_BENCH_SMALL", true) {
        out.push(Size::new(env_usize(
            "AUTHDB_BENCH_SMALL_SESSIONS",
            if bench { 100_000 } else { 2000 },
        )));
    }
    if env_flag("AUTHDB_BENCH_LARGE", bench) {
        out.push(Size::new(env_usize(
            "AUTHDB_BENCH_LARGE_SESSIONS",
            1_000_000,
        )));
    }
    out
}

/// A criterion configured for this suite: short, so the default run takes a few minutes.
pub fn criterion() -> criterion::Criterion {
    criterion::Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args()
}

/// Whether this process is a real benchmark run (`cargo bench`), not `cargo test --benches`.
pub fn benchmarking() -> bool {
    let args: Vec<String> = std::env::args().collect();
    args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--test")
}

// ---------------------------------------------------------------------------------------------
// Clock, randomness, data

/// The system clock shifted by an adjustable offset: lets the purge bench create sessions that
/// are already expired without touching the others.
#[derive(Debug, Default)]
pub struct OffsetClock {
    offset_micros: AtomicI64,
}

impl OffsetClock {
    /// Shifts the clock by `d` from the real time (zero: the real time).
    pub fn set_offset(&self, d: chrono::TimeDelta) {
        self.offset_micros
            .store(d.num_microseconds().unwrap_or(0), Ordering::SeqCst);
    }
}

impl Clock for OffsetClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + chrono::TimeDelta::microseconds(self.offset_micros.load(Ordering::SeqCst))
    }
}

/// splitmix64: cheap deterministic pseudo-random numbers.
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The `k`-th of a stream of indexes drawn uniformly from `0..n` (one stream per `seed`).
pub fn uniform(seed: u64, k: u64, n: usize) -> usize {
    (mix(k.wrapping_add(seed.wrapping_mul(0xD6E8_FEB8_6659_FD93))) % n as u64) as usize
}

/// A process-wide counter for unique names (sign-up emails, verification tokens, keys).
pub fn next_id() -> u64 {
    static N: AtomicU64 = AtomicU64::new(1);
    N.fetch_add(1, Ordering::Relaxed)
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

/// 32 random bytes from the OS as 64 hex characters (NextAuth's `randomBytes(32).toString("hex")`).
pub fn random_token() -> String {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).expect("OS randomness");
    hex(&b)
}

pub fn email(i: usize) -> String {
    format!("user{i}@example.com")
}

pub fn profile(i: usize) -> NewUser {
    NewUser {
        name: Some(format!("User {i}")),
        email: Some(email(i)),
        image: Some(format!("https://avatars.example.com/u/{i}.png")),
        email_verified: None,
        ..Default::default()
    }
}

pub fn provider_account_id(i: usize) -> String {
    (10_000_000 + i).to_string()
}

/// A GitHub account as NextAuth v3 links it: an access token (40 characters), no refresh token,
/// no expiry.
pub fn account(i: usize, provider_account_id: String) -> NewAccount {
    let a = mix(i as u64);
    let b = mix(a);
    NewAccount {
        provider_type: "oauth".into(),
        provider_id: "github".into(),
        provider_account_id,
        refresh_token: None,
        access_token: Some(format!("gho_{a:016x}{b:016x}{:04x}", b >> 48)),
        access_token_expires: None,
        ..Default::default()
    }
}

/// A sign-up's profile and account, unique per `n`.
pub fn signup(n: u64) -> (NewUser, NewAccount) {
    let p = NewUser {
        name: Some(format!("New User {n}")),
        email: Some(format!("signup{n}@example.com")),
        image: Some(format!("https://avatars.example.com/s/{n}.png")),
        email_verified: None,
        ..Default::default()
    };
    (p, account(n as usize, format!("s{n}")))
}

/// Every session token of a data set, in creation order (session `j` belongs to user
/// `j % n_users`), as one string of 64-character tokens.
pub struct Tokens {
    hex: String,
}

impl Tokens {
    pub fn len(&self) -> usize {
        self.hex.len() / 64
    }
    pub fn is_empty(&self) -> bool {
        self.hex.is_empty()
    }
    pub fn get(&self, i: usize) -> &str {
        &self.hex[i * 64..i * 64 + 64]
    }
    /// The `k`-th token of a stream drawn uniformly from all of them.
    pub fn pick(&self, seed: u64, k: u64) -> &str {
        self.get(uniform(seed, k, self.len()))
    }
}

// ---------------------------------------------------------------------------------------------
// Raw redb: the floor, in tables shaped like authdb's

/// The raw session table: like authdb's `sessions:v2`, ONE table holding, per session, a record
/// entry (`r` + 32-byte hash → 65 bytes, the size of authdb's fixed-width session record), a
/// by-user entry (`u` + 16-byte user id + hash → empty) and an expiry entry (`x` + 8-byte
/// expiry + hash → empty). The floors read and write record entries only.
pub const RAW_SESSIONS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("raw_sessions");
/// The raw user table: one 16-byte id → 120 bytes (about an authdb user record) per user.
pub const RAW_USERS: TableDefinition<[u8; 16], &[u8]> = TableDefinition::new("raw_users");
/// The raw verification table: 32-byte hash → 64 bytes, sized like authdb's verification
/// table in the run (see `ops.rs`).
pub const RAW_VERIFICATION: TableDefinition<[u8; 32], &[u8]> =
    TableDefinition::new("raw_verification");
pub const RAW_RECORD: [u8; 65] = [7u8; 65];
pub const RAW_USER_VALUE: [u8; 120] = [7u8; 120];
pub const RAW_VERIFICATION_VALUE: [u8; 64] = [7u8; 64];

/// The raw hash `i` (32 bytes, spread uniformly, like authdb's token hashes). Hashes of the
/// data set are `0..n`; new ones are taken from the top (`u64::MAX - next_id()`).
pub fn raw_hash(i: u64) -> [u8; 32] {
    let mut k = [0u8; 32];
    let mut x = i;
    for chunk in k.chunks_exact_mut(8) {
        x = mix(x);
        chunk.copy_from_slice(&x.to_le_bytes());
    }
    k
}

/// A hash no entry of the data set has.
pub fn new_raw_hash() -> [u8; 32] {
    raw_hash(u64::MAX - next_id())
}

/// The record key of hash `h`: `r` + hash.
pub fn raw_record_key(h: &[u8; 32]) -> [u8; 33] {
    let mut k = [0u8; 33];
    k[0] = b'r';
    k[1..].copy_from_slice(h);
    k
}

/// User `u`'s raw id: time-ordered like authdb's UUID v7 ids (users loaded in order).
pub fn raw_user_id(u: u64) -> [u8; 16] {
    (u128::from(u) | (0x0190_0000_0000_0000_u128 << 64)).to_be_bytes()
}

fn raw_user_entry(u: u64, h: &[u8; 32]) -> [u8; 49] {
    let mut k = [0u8; 49];
    k[0] = b'u';
    k[1..17].copy_from_slice(&raw_user_id(u));
    k[17..].copy_from_slice(h);
    k
}

fn raw_expiry_entry(t: i64, h: &[u8; 32]) -> [u8; 41] {
    let mut k = [0u8; 41];
    k[0] = b'x';
    k[1..9].copy_from_slice(&(t.cast_unsigned() ^ (1 << 63)).to_be_bytes());
    k[9..].copy_from_slice(h);
    k
}

/// authdb's builder for the benches: the offset clock, update age zero (so every
/// `update_session` extends the session: the write path), the given durability, and an
/// encryption key (the accounts carry OAuth access tokens, which authdb encrypts at rest).
pub fn authdb_builder(clock: &Arc<OffsetClock>, durability: Durability) -> authdb::Builder {
    let c: Arc<dyn Clock> = clock.clone();
    AuthDb::builder()
        .encryption_key(authdb::EncryptionKey::from_bytes([42; 32]))
        .clock(c)
        .session_max_age(MAX_AGE)
        .session_update_age(chrono::TimeDelta::zero())
        .durability(durability)
        .cache_size(CACHE_BYTES)
}

pub fn open_redb(path: &Path) -> redb::Database {
    redb::Database::builder()
        .set_cache_size(CACHE_BYTES)
        .create(path)
        .expect("open raw redb")
}

/// One write transaction on raw redb with the given durability, on one table.
pub fn redb_write<K: redb::Key + 'static, V: redb::Value + 'static>(
    db: &redb::Database,
    durable: bool,
    def: TableDefinition<'_, K, V>,
    f: impl FnOnce(&mut redb::Table<'_, K, V>),
) {
    let mut w = db.begin_write().expect("begin");
    w.set_durability(if durable {
        redb::Durability::Immediate
    } else {
        redb::Durability::None
    })
    .expect("durability");
    {
        let mut t = w.open_table(def).expect("table");
        f(&mut t);
    }
    w.commit().expect("commit");
}

/// Inserts a new session record (one insert in one commit) in the raw session table.
pub fn redb_insert_record(db: &redb::Database, durable: bool, h: &[u8; 32]) {
    redb_write(db, durable, RAW_SESSIONS, |t| {
        t.insert(raw_record_key(h).as_slice(), RAW_RECORD.as_slice())
            .expect("insert");
    });
}

/// Removes session records (one commit).
pub fn redb_remove_records(db: &redb::Database, durable: bool, hs: &[[u8; 32]]) {
    redb_write(db, durable, RAW_SESSIONS, |t| {
        for h in hs {
            t.remove(raw_record_key(h).as_slice()).expect("remove");
        }
    });
}

/// One get of a session record in a fresh read transaction: the floor of `get_session`.
pub fn redb_get_record(db: &redb::Database, h: &[u8; 32]) -> usize {
    let r = db.begin_read().expect("begin_read");
    let t = r.open_table(RAW_SESSIONS).expect("table");
    t.get(raw_record_key(h).as_slice())
        .expect("get")
        .map_or(0, |g| g.value().len())
}

/// One get of a user in a fresh read transaction: the floor of the user lookups.
pub fn redb_get_user(db: &redb::Database, u: u64) -> usize {
    let r = db.begin_read().expect("begin_read");
    let t = r.open_table(RAW_USERS).expect("table");
    t.get(raw_user_id(u))
        .expect("get")
        .map_or(0, |g| g.value().len())
}

/// Makes the raw verification table hold exactly `rows` entries (durably).
pub fn redb_size_verification(db: &redb::Database, rows: u64) {
    redb_write(db, true, RAW_VERIFICATION, |t| {
        t.retain(|_, _| false).expect("clear");
        for i in 0..rows {
            t.insert(
                raw_hash(i ^ 0x5555_0000_0000),
                RAW_VERIFICATION_VALUE.as_slice(),
            )
            .expect("insert");
        }
    });
}

/// How many entries the raw verification table holds.
pub fn redb_verification_rows(db: &redb::Database) -> u64 {
    use redb::ReadableTableMetadata;
    let r = db.begin_read().expect("begin_read");
    r.open_table(RAW_VERIFICATION)
        .map_or(0, |t| t.len().expect("len"))
}

// ---------------------------------------------------------------------------------------------
// SQLite: NextAuth v3's TypeORM schema

/// The schema TypeORM creates for NextAuth v3 on SQLite (snake-case naming strategy, `datetime`
/// columns stored as text): a unique email, a unique `compound_id` (SHA-256 of
/// `provider_id:provider_account_id`) plus TypeORM's three plain account indexes, unique session
/// and access tokens, a unique verification token. No index on `sessions.expires` or
/// `sessions.user_id` (TypeORM has none).
pub const SQLITE_SCHEMA: &str = r"
CREATE TABLE IF NOT EXISTS users (
  id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
  name VARCHAR,
  email VARCHAR UNIQUE,
  email_verified DATETIME,
  image VARCHAR,
  created_at DATETIME NOT NULL DEFAULT (datetime('now')),
  updated_at DATETIME NOT NULL DEFAULT (datetime('now'))
);
CREATE TABLE IF NOT EXISTS accounts (
  id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
  compound_id VARCHAR NOT NULL UNIQUE,
  user_id INTEGER NOT NULL,
  provider_type VARCHAR NOT NULL,
  provider_id VARCHAR NOT NULL,
  provider_account_id VARCHAR NOT NULL,
  refresh_token TEXT,
  access_token TEXT,
  access_token_expires DATETIME,
  created_at DATETIME NOT NULL DEFAULT (datetime('now')),
  updated_at DATETIME NOT NULL DEFAULT (datetime('now'))
);
CREATE INDEX IF NOT EXISTS idx_accounts_user_id ON accounts (user_id);
CREATE INDEX IF NOT EXISTS idx_accounts_provider_id ON accounts (provider_id);
CREATE INDEX IF NOT EXISTS idx_accounts_provider_account_id ON accounts (provider_account_id);
CREATE TABLE IF NOT EXISTS sessions (
  id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
  user_id INTEGER NOT NULL,
  expires DATETIME NOT NULL,
  session_token VARCHAR NOT NULL UNIQUE,
  access_token VARCHAR NOT NULL UNIQUE,
  created_at DATETIME NOT NULL DEFAULT (datetime('now')),
  updated_at DATETIME NOT NULL DEFAULT (datetime('now'))
);
CREATE TABLE IF NOT EXISTS verification_requests (
  id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
  identifier VARCHAR NOT NULL,
  token VARCHAR NOT NULL UNIQUE,
  expires DATETIME NOT NULL,
  created_at DATETIME NOT NULL DEFAULT (datetime('now')),
  updated_at DATETIME NOT NULL DEFAULT (datetime('now'))
);
";

/// `synchronous=FULL` (every commit fsyncs the WAL: durable) or `NORMAL` (no fsync at commit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sync {
    Full,
    Normal,
}

/// A connection as the baseline uses it: WAL, the given `synchronous`, a 64 MiB page cache,
/// prepared-statement cache, busy timeout.
pub fn open_sqlite(path: &Path, sync: Sync) -> Connection {
    let c = Connection::open(path).expect("open sqlite");
    let mode: String = c
        .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
        .expect("WAL");
    assert_eq!(mode.to_lowercase(), "wal");
    c.pragma_update(
        None,
        "synchronous",
        match sync {
            Sync::Full => "FULL",
            Sync::Normal => "NORMAL",
        },
    )
    .expect("synchronous");
    c.pragma_update(None, "cache_size", -((CACHE_BYTES / 1024) as i64))
        .expect("cache_size");
    c.busy_timeout(Duration::from_secs(10)).expect("busy");
    c.set_prepared_statement_cache_capacity(64);
    c
}

/// TypeORM's SQLite `datetime` text form.
pub fn ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S%.3f").to_string()
}

pub fn sql_now() -> String {
    ts(Utc::now())
}

/// A user row.
#[derive(Debug)]
pub struct SqlUser {
    pub id: i64,
    pub name: Option<String>,
    pub email: Option<String>,
    pub email_verified: Option<String>,
    pub image: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

fn user_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SqlUser> {
    Ok(SqlUser {
        id: r.get(0)?,
        name: r.get(1)?,
        email: r.get(2)?,
        email_verified: r.get(3)?,
        image: r.get(4)?,
        created_at: r.get(5)?,
        updated_at: r.get(6)?,
    })
}

/// A session row.
#[derive(Debug)]
pub struct SqlSession {
    pub id: i64,
    pub user_id: i64,
    pub expires: String,
    pub session_token: String,
    pub access_token: String,
    pub created_at: String,
    pub updated_at: String,
}

fn sql_insert_user(c: &Connection, p: &NewUser, now: &str) -> i64 {
    c.prepare_cached(
        "INSERT INTO users (name, email, email_verified, image, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
    )
    .expect("prepare")
    .execute(params![
        p.name,
        p.email,
        p.email_verified.map(ts),
        p.image,
        now
    ])
    .expect("insert user");
    c.last_insert_rowid()
}

fn sql_insert_account(c: &Connection, user_id: i64, a: &NewAccount, now: &str) {
    let compound = sha256_hex(&format!("{}:{}", a.provider_id, a.provider_account_id));
    c.prepare_cached(
        "INSERT INTO accounts (compound_id, user_id, provider_type, provider_id, \
         provider_account_id, refresh_token, access_token, access_token_expires, created_at, \
         updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)",
    )
    .expect("prepare")
    .execute(params![
        compound,
        user_id,
        a.provider_type,
        a.provider_id,
        a.provider_account_id,
        a.refresh_token,
        a.access_token,
        a.access_token_expires.map(ts),
        now
    ])
    .expect("insert account");
}

/// Lowercase hex SHA-256 (TypeORM's `compoundId`).
pub fn sha256_hex(s: &str) -> String {
    use sha2::Digest;
    hex(&sha2::Sha256::digest(s.as_bytes()))
}

fn sql_insert_session(
    c: &Connection,
    user_id: i64,
    expires: &str,
    token: &str,
    access: &str,
    now: &str,
) {
    c.prepare_cached(
        "INSERT INTO sessions (user_id, expires, session_token, access_token, created_at, \
         updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
    )
    .expect("prepare")
    .execute(params![user_id, expires, token, access, now])
    .expect("insert session");
}

/// Sign-up: user + account in one immediate transaction. Returns the user id.
pub fn sql_signup(c: &Connection, p: &NewUser, a: &NewAccount) -> i64 {
    let tx = rusqlite::Transaction::new_unchecked(c, TransactionBehavior::Immediate).expect("tx");
    let now = sql_now();
    let id = sql_insert_user(&tx, p, &now);
    sql_insert_account(&tx, id, a, &now);
    tx.commit().expect("commit");
    id
}

pub fn sql_delete_users(c: &Connection, ids: &[i64]) {
    let tx = rusqlite::Transaction::new_unchecked(c, TransactionBehavior::Immediate).expect("tx");
    for id in ids {
        tx.prepare_cached("DELETE FROM accounts WHERE user_id = ?1")
            .expect("prepare")
            .execute([id])
            .expect("delete accounts");
        tx.prepare_cached("DELETE FROM users WHERE id = ?1")
            .expect("prepare")
            .execute([id])
            .expect("delete user");
    }
    tx.commit().expect("commit");
}

/// `createSession`: two random tokens, one INSERT (its own transaction). Returns the token.
pub fn sql_create_session(c: &Connection, user_id: i64) -> String {
    let token = random_token();
    let access = random_token();
    let now = Utc::now();
    sql_insert_session(c, user_id, &ts(now + MAX_AGE), &token, &access, &ts(now));
    token
}

/// Inserts `n` sessions in one transaction (untimed set-up), expiring at `expires`; session `j`
/// belongs to user `user_id(j)`.
pub fn sql_insert_sessions(
    c: &Connection,
    n: u64,
    expires: DateTime<Utc>,
    user_id: impl Fn(u64) -> i64,
) -> Vec<String> {
    let tx = rusqlite::Transaction::new_unchecked(c, TransactionBehavior::Immediate).expect("tx");
    let now = sql_now();
    let exp = ts(expires);
    let toks = (0..n)
        .map(|j| {
            let t = random_token();
            sql_insert_session(&tx, user_id(j), &exp, &t, &random_token(), &now);
            t
        })
        .collect();
    tx.commit().expect("commit");
    toks
}

pub fn sql_delete_sessions(c: &Connection, tokens: &[String]) {
    let tx = rusqlite::Transaction::new_unchecked(c, TransactionBehavior::Immediate).expect("tx");
    for t in tokens {
        tx.prepare_cached("DELETE FROM sessions WHERE session_token = ?1")
            .expect("prepare")
            .execute([t])
            .expect("delete");
    }
    tx.commit().expect("commit");
}

/// `getSession`: the row by token, `None` if missing or expired.
pub fn sql_get_session(c: &Connection, token: &str) -> Option<SqlSession> {
    let s = c
        .prepare_cached(
            "SELECT id, user_id, expires, session_token, access_token, created_at, updated_at \
             FROM sessions WHERE session_token = ?1",
        )
        .expect("prepare")
        .query_row([token], |r| {
            Ok(SqlSession {
                id: r.get(0)?,
                user_id: r.get(1)?,
                expires: r.get(2)?,
                session_token: r.get(3)?,
                access_token: r.get(4)?,
                created_at: r.get(5)?,
                updated_at: r.get(6)?,
            })
        })
        .optional()
        .expect("select")?;
    (s.expires >= sql_now()).then_some(s)
}

pub fn sql_get_user_by_email(c: &Connection, email: &str) -> Option<SqlUser> {
    c.prepare_cached(
        "SELECT id, name, email, email_verified, image, created_at, updated_at FROM users \
         WHERE email = ?1",
    )
    .expect("prepare")
    .query_row([authdb::normalize_email(email)], user_row)
    .optional()
    .expect("select")
}

/// `getUserByProviderAccountId`: the account by (provider id, provider account id), then its
/// user, in one statement (TypeORM issues two).
pub fn sql_get_user_by_provider(c: &Connection, provider_id: &str, pa_id: &str) -> Option<SqlUser> {
    c.prepare_cached(
        "SELECT u.id, u.name, u.email, u.email_verified, u.image, u.created_at, u.updated_at \
         FROM accounts a JOIN users u ON u.id = a.user_id \
         WHERE a.provider_id = ?1 AND a.provider_account_id = ?2",
    )
    .expect("prepare")
    .query_row([provider_id, pa_id], user_row)
    .optional()
    .expect("select")
}

/// `updateSession` when due: moves the expiry (one UPDATE, its own transaction).
pub fn sql_update_session(c: &Connection, token: &str) -> bool {
    let now = Utc::now();
    c.prepare_cached("UPDATE sessions SET expires = ?1, updated_at = ?2 WHERE session_token = ?3")
        .expect("prepare")
        .execute(params![ts(now + MAX_AGE), ts(now), token])
        .expect("update")
        == 1
}

pub fn sql_delete_session(c: &Connection, token: &str) {
    c.prepare_cached("DELETE FROM sessions WHERE session_token = ?1")
        .expect("prepare")
        .execute([token])
        .expect("delete");
}

/// `createVerificationRequest`: stores the hash of `token + secret`.
pub fn sql_create_verification(c: &Connection, identifier: &str, token: &str, secret: &str) {
    let now = Utc::now();
    c.prepare_cached(
        "INSERT INTO verification_requests (identifier, token, expires, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?4)",
    )
    .expect("prepare")
    .execute(params![
        identifier,
        authdb::hash_verification_token(token, secret),
        ts(now + chrono::TimeDelta::hours(24)),
        ts(now)
    ])
    .expect("insert verification");
}

/// Single use: find by hash and identifier, check expiry, delete, in one transaction.
pub fn sql_use_verification(c: &Connection, identifier: &str, token: &str, secret: &str) -> bool {
    let hash = authdb::hash_verification_token(token, secret);
    let tx = rusqlite::Transaction::new_unchecked(c, TransactionBehavior::Immediate).expect("tx");
    let row: Option<(i64, String, String)> = tx
        .prepare_cached(
            "SELECT id, identifier, expires FROM verification_requests WHERE token = ?1",
        )
        .expect("prepare")
        .query_row([&hash], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()
        .expect("select");
    let ok = match row {
        Some((id, ident, expires))
            if authdb::normalize_email(&ident) == authdb::normalize_email(identifier) =>
        {
            tx.prepare_cached("DELETE FROM verification_requests WHERE id = ?1")
                .expect("prepare")
                .execute([id])
                .expect("delete");
            expires >= sql_now()
        }
        _ => false,
    };
    tx.commit().expect("commit");
    ok
}

/// The indexes the purge baseline adds to a copy of the SQLite file (TypeORM's schema has
/// none on `expires`, so without them the purge is a full scan of both tables).
pub const SQLITE_PURGE_INDEXES: &str = r"
CREATE INDEX IF NOT EXISTS idx_sessions_expires ON sessions (expires);
CREATE INDEX IF NOT EXISTS idx_verification_requests_expires ON verification_requests (expires);
";

/// Deletes expired sessions and verification requests. On the TypeORM schema a scan; the purge
/// benches run it on a copy with [`SQLITE_PURGE_INDEXES`]. Returns the rows removed.
pub fn sql_purge(c: &Connection) -> usize {
    let now = sql_now();
    let tx = rusqlite::Transaction::new_unchecked(c, TransactionBehavior::Immediate).expect("tx");
    let n = tx
        .prepare_cached("DELETE FROM sessions WHERE expires < ?1")
        .expect("prepare")
        .execute([&now])
        .expect("purge sessions")
        + tx.prepare_cached("DELETE FROM verification_requests WHERE expires < ?1")
            .expect("prepare")
            .execute([&now])
            .expect("purge verification");
    tx.commit().expect("commit");
    n
}

pub fn sql_checkpoint(c: &Connection) {
    c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .expect("checkpoint");
}

// ---------------------------------------------------------------------------------------------
// The data set

/// Set in the loader child process (see [`Dataset::load`]): the directory to load into.
const LOAD_DIR: &str = "AUTHDB_BENCH_LOAD_DIR";
const LOAD_SESSIONS: &str = "AUTHDB_BENCH_LOAD_SESSIONS";
const LOAD_BENCH: &str = "AUTHDB_BENCH_LOAD_BENCH";
const LOAD_EXTRAS: &str = "AUTHDB_BENCH_LOAD_EXTRAS";

/// Bytes on disk after loading.
#[derive(Debug, Clone, Copy, Default)]
struct DiskSizes {
    /// Users + accounts only.
    users_phase: u64,
    /// Everything (users, accounts, sessions).
    total: u64,
    /// The same after `redb::Database::compact` (authdb only; 0 when not measured).
    users_phase_compacted: u64,
    total_compacted: u64,
}

/// A loaded data set: the files, the ids and the session tokens.
pub struct Dataset {
    pub size: Size,
    pub dir: tempfile::TempDir,
    pub n_users: usize,
    pub clock: Arc<OffsetClock>,
    /// authdb ids, index `i` = user `i` = SQLite user id `i + 1` = raw user `i`.
    pub user_ids: Vec<UserId>,
    /// Every session token, in creation order: session `j` is user `j % n_users`'s and raw
    /// hash `j`'s counterpart.
    pub tokens: Tokens,
}

fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).map_or(0, |m| m.len())
}

/// `path` compacted with redb (on a scratch copy): what the file would be without free pages.
fn compacted_len(path: &Path) -> u64 {
    let scratch = path.with_extension("compact");
    std::fs::copy(path, &scratch).expect("copy");
    let len = {
        let mut db = redb::Database::builder()
            .set_cache_size(CACHE_BYTES)
            .open(&scratch)
            .expect("open copy");
        while db.compact().expect("compact") {}
        drop(db);
        file_len(&scratch)
    };
    std::fs::remove_file(&scratch).expect("remove scratch");
    len
}

fn authdb_path(dir: &Path) -> PathBuf {
    dir.join("auth.redb")
}
fn authdb_nd_path(dir: &Path) -> PathBuf {
    dir.join("auth-nodurable.redb")
}
fn sqlite_path(dir: &Path) -> PathBuf {
    dir.join("auth.sqlite")
}
fn sqlite_purge_path(dir: &Path) -> PathBuf {
    dir.join("auth-purge.sqlite")
}
fn redb_path(dir: &Path) -> PathBuf {
    dir.join("raw.redb")
}

impl Dataset {
    pub fn authdb_path(&self) -> PathBuf {
        authdb_path(self.dir.path())
    }
    /// A copy of the authdb file, for the non-durable handle (one file opens once). Only with
    /// `extras` (see [`Dataset::load`]).
    pub fn authdb_nd_path(&self) -> PathBuf {
        authdb_nd_path(self.dir.path())
    }
    /// The TypeORM-schema SQLite file.
    pub fn sqlite_path(&self) -> PathBuf {
        sqlite_path(self.dir.path())
    }
    /// A copy of the SQLite file with [`SQLITE_PURGE_INDEXES`] (only with `extras`).
    pub fn sqlite_purge_path(&self) -> PathBuf {
        sqlite_purge_path(self.dir.path())
    }
    pub fn redb_path(&self) -> PathBuf {
        redb_path(self.dir.path())
    }

    /// Loads a data set of `size` into a new temporary directory. With `extras`, also the
    /// non-durable authdb copy, the indexed SQLite copy for purge, and the compacted sizes.
    ///
    /// The loading runs in a child process (this bench binary again, told by environment
    /// variables to load and exit; see [`run_loader_if_child`]), so that the bench process's
    /// memory (its peak RSS) is that of the benches alone, not of the bulk load. The child
    /// prints and saves the bytes on disk and its own peak RSS, and leaves the user ids and the
    /// session tokens in the directory.
    pub fn load(size: &Size, bench: &str, extras: bool) -> Dataset {
        let dir = tempfile::Builder::new()
            .prefix("authdb-bench-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .expect("tempdir");
        let status = std::process::Command::new(std::env::current_exe().expect("current exe"))
            .env(LOAD_DIR, dir.path())
            .env(LOAD_SESSIONS, size.sessions.to_string())
            .env(LOAD_BENCH, bench)
            .env(LOAD_EXTRAS, if extras { "1" } else { "0" })
            .status()
            .expect("run the loader");
        assert!(status.success(), "loading failed: {status}");
        let (user_ids, tokens) = read_ids_and_tokens(dir.path());
        let n = size.sessions;
        assert_eq!(user_ids.len(), n / SESSIONS_PER_USER);
        assert_eq!(tokens.len(), n);
        Dataset {
            size: size.clone(),
            dir,
            n_users: user_ids.len(),
            clock: Arc::new(OffsetClock::default()),
            user_ids,
            tokens,
        }
    }

    /// [`USER_SAMPLE`] user indexes drawn uniformly from all users.
    pub fn sample_users(&self, seed: u64) -> Vec<usize> {
        (0..USER_SAMPLE.min(self.n_users) as u64)
            .map(|k| uniform(seed, k, self.n_users))
            .collect()
    }
}

/// The user ids and session tokens a loader left in `dir`.
pub fn read_ids_and_tokens(dir: &Path) -> (Vec<UserId>, Tokens) {
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).expect(name);
    let user_ids = read("user-ids.txt")
        .lines()
        .map(|l| l.parse().expect("user id"))
        .collect();
    let tokens = Tokens {
        hex: read("tokens.txt"),
    };
    (user_ids, tokens)
}

/// The authdb file of a data set in `dir`.
pub fn authdb_file(dir: &Path) -> PathBuf {
    authdb_path(dir)
}

/// Call first thing in a bench's `main`: in the loader child started by [`Dataset::load`], loads
/// the data set, reports, and returns `true` (the caller then returns).
pub fn run_loader_if_child() -> bool {
    let Ok(dir) = std::env::var(LOAD_DIR) else {
        return false;
    };
    let var = |k: &str| std::env::var(k).expect(k);
    let size = Size::new(var(LOAD_SESSIONS).parse().expect("sessions"));
    let bench = var(LOAD_BENCH);
    load_into(Path::new(&dir), &size, &bench, var(LOAD_EXTRAS) == "1");
    report_rss(&bench, &format!("{}-load", size.label));
    true
}

/// Bulk loading: authdb through `AuthDb::write` batches of [`LOAD_BATCH`] rows, durable (with
/// `Durability::None` redb cannot reuse the pages a batch frees until a durable commit, and
/// the file would grow by most of a copy of the table per batch: bytes on disk would measure
/// the loading, not the layout); SQLite in transactions with `synchronous=OFF` (SQLite reuses
/// freed pages either way); raw redb with durable commits too. Then the files are closed.
fn load_into(dir: &Path, size: &Size, bench: &str, extras: bool) {
    let started = std::time::Instant::now();
    let clock = Arc::new(OffsetClock::default());
    let n = size.sessions;
    let n_users = n / SESSIONS_PER_USER;
    let mut user_ids = Vec::with_capacity(n_users);
    let mut tokens = String::with_capacity(n * 64);
    let (mut adisk, mut sdisk) = (DiskSizes::default(), DiskSizes::default());
    let sql = open_sqlite(&sqlite_path(dir), Sync::Normal);
    sql.pragma_update(None, "synchronous", "OFF")
        .expect("sync off");
    sql.execute_batch(SQLITE_SCHEMA).expect("schema");

    // Phase 1: users and their accounts.
    {
        let db = authdb_builder(&clock, Durability::Immediate)
            .open(authdb_path(dir))
            .expect("open authdb");
        for start in (0..n_users).step_by(LOAD_BATCH) {
            let end = (start + LOAD_BATCH).min(n_users);
            let users = db
                .write(|tx| {
                    (start..end)
                        .map(|i| {
                            let u = tx.create_user(&profile(i))?;
                            tx.link_account(&u.id, &account(i, provider_account_id(i)))?;
                            Ok(u.id)
                        })
                        .collect::<authdb::Result<Vec<_>>>()
                })
                .expect("load users");
            user_ids.extend(users);
            let tx = rusqlite::Transaction::new_unchecked(&sql, TransactionBehavior::Immediate)
                .expect("tx");
            let now = sql_now();
            for i in start..end {
                let id = sql_insert_user(&tx, &profile(i), &now);
                assert_eq!(id, i as i64 + 1);
                sql_insert_account(&tx, id, &account(i, provider_account_id(i)), &now);
            }
            tx.commit().expect("commit");
        }
    }
    sql_checkpoint(&sql);
    adisk.users_phase = file_len(&authdb_path(dir));
    if extras {
        adisk.users_phase_compacted = compacted_len(&authdb_path(dir));
    }
    sdisk.users_phase = file_len(&sqlite_path(dir));

    // Phase 2: sessions, the same tokens in both.
    {
        let db = authdb_builder(&clock, Durability::Immediate)
            .open(authdb_path(dir))
            .expect("reopen authdb");
        for start in (0..n).step_by(LOAD_BATCH) {
            let end = (start + LOAD_BATCH).min(n);
            let sessions: Vec<Session> = db
                .write(|tx| {
                    (start..end)
                        .map(|j| tx.create_session(&user_ids[j % n_users]))
                        .collect()
                })
                .expect("load sessions");
            let tx = rusqlite::Transaction::new_unchecked(&sql, TransactionBehavior::Immediate)
                .expect("tx");
            for (j, s) in (start..end).zip(&sessions) {
                sql_insert_session(
                    &tx,
                    (j % n_users) as i64 + 1,
                    &ts(s.expires),
                    &s.session_token,
                    &s.access_token,
                    &ts(s.created_at),
                );
                assert_eq!(s.session_token.len(), 64);
                tokens.push_str(&s.session_token);
            }
            tx.commit().expect("commit");
        }
    }
    sql_checkpoint(&sql);
    drop(sql);
    adisk.total = file_len(&authdb_path(dir));
    if extras {
        adisk.total_compacted = compacted_len(&authdb_path(dir));
    }
    sdisk.total = file_len(&sqlite_path(dir));

    // Raw redb: the session table (three entries per session, one table) and the users.
    {
        let raw = open_redb(&redb_path(dir));
        let base = (Utc::now() + MAX_AGE).timestamp_micros();
        for start in (0..n).step_by(LOAD_BATCH) {
            let end = (start + LOAD_BATCH).min(n);
            redb_write(&raw, true, RAW_SESSIONS, |t| {
                for j in start..end {
                    let h = raw_hash(j as u64);
                    t.insert(raw_record_key(&h).as_slice(), RAW_RECORD.as_slice())
                        .expect("insert");
                    t.insert(
                        raw_user_entry((j % n_users) as u64, &h).as_slice(),
                        [].as_slice(),
                    )
                    .expect("insert");
                    t.insert(
                        raw_expiry_entry(base + j as i64, &h).as_slice(),
                        [].as_slice(),
                    )
                    .expect("insert");
                }
            });
        }
        for start in (0..n_users).step_by(LOAD_BATCH) {
            let end = (start + LOAD_BATCH).min(n_users);
            redb_write(&raw, true, RAW_USERS, |t| {
                for u in start..end {
                    t.insert(raw_user_id(u as u64), RAW_USER_VALUE.as_slice())
                        .expect("insert");
                }
            });
        }
        redb_write(&raw, true, RAW_VERIFICATION, |_| {});
    }
    let redb_disk = file_len(&redb_path(dir));
    if extras {
        std::fs::copy(authdb_path(dir), authdb_nd_path(dir)).expect("copy authdb");
        std::fs::copy(sqlite_path(dir), sqlite_purge_path(dir)).expect("copy sqlite");
        let c = open_sqlite(&sqlite_purge_path(dir), Sync::Normal);
        c.execute_batch(SQLITE_PURGE_INDEXES)
            .expect("purge indexes");
        sql_checkpoint(&c);
    }

    let mut ids = String::with_capacity(user_ids.len() * 37);
    for id in &user_ids {
        ids.push_str(&id.to_string());
        ids.push('\n');
    }
    std::fs::write(dir.join("user-ids.txt"), ids).expect("write ids");
    std::fs::write(dir.join("tokens.txt"), tokens).expect("write tokens");
    let load_secs = started.elapsed().as_secs_f64();
    report_disk(bench, size, n_users, &adisk, &sdisk, redb_disk, load_secs);
}

/// Prints and saves (`target/tmp/authdb-bench-<bench>-<size>-disk.json`) the bytes on disk.
fn report_disk(
    bench: &str,
    size: &Size,
    n_users: usize,
    a: &DiskSizes,
    s: &DiskSizes,
    redb_disk: u64,
    load_secs: f64,
) {
    let n = size.sessions as f64;
    let u = n_users as f64;
    let per = |users: u64, total: u64| (users as f64 / u, total.saturating_sub(users) as f64 / n);
    let (au, as_) = per(a.users_phase, a.total);
    let (su, ss) = per(s.users_phase, s.total);
    println!(
        "authdb-bench [{}] loaded {} sessions / {n_users} users in {load_secs:.1} s",
        size.label, size.sessions
    );
    println!(
        "authdb-bench [{}] disk: authdb {} B ({au:.0} B/user incl. account, {as_:.0} B/session); \
         sqlite {} B ({su:.0} B/user, {ss:.0} B/session; ratio per session {:.2}); raw redb \
         {redb_disk} B",
        size.label,
        a.total,
        s.total,
        as_ / ss
    );
    let json = format!(
        concat!(
            "{{\"bench\":\"{}\",\"label\":\"{}\",\"sessions\":{},\"users\":{},",
            "\"load_secs\":{:.2},",
            "\"authdb\":{{\"users_phase\":{},\"total\":{},\"users_phase_compacted\":{},",
            "\"total_compacted\":{}}},",
            "\"sqlite\":{{\"users_phase\":{},\"total\":{}}},\"raw_redb\":{}}}"
        ),
        bench,
        size.label,
        size.sessions,
        n_users,
        load_secs,
        a.users_phase,
        a.total,
        a.users_phase_compacted,
        a.total_compacted,
        s.users_phase,
        s.total,
        redb_disk
    );
    save_meta(&format!("{bench}-{}-disk", size.label), &json);
}

// ---------------------------------------------------------------------------------------------
// The disk, the machine, the run

/// One reading of the disk's flush latency, in µs.
#[derive(Clone, Copy, Debug)]
pub struct Probe {
    pub p50: f64,
    pub p90: f64,
}

impl Probe {
    /// Whether two readings agree (medians within [`PROBE_TOLERANCE`]).
    pub fn agrees(&self, other: &Probe) -> bool {
        let (hi, lo) = (self.p50.max(other.p50), self.p50.min(other.p50));
        hi <= lo * PROBE_TOLERANCE
    }

    pub fn json(&self) -> String {
        format!("{{\"p50_us\":{:.1},\"p90_us\":{:.1}}}", self.p50, self.p90)
    }
}

/// Measures the disk's flush latency right now: `sync(1)` first (so that no write-back the
/// benches left pending lands in the probe: on ext4 an `fdatasync` also waits for the journal,
/// which holds other files' changes), 20 untimed flushes (an idle disk flushes slower at
/// first), then `AUTHDB_BENCH_PROBE_N` (100) times: overwrite 4 KiB of a small file in `dir`
/// and `fdatasync` it. On a virtual disk this moves with the host's load, and every durable
/// number moves with it.
pub fn probe(dir: &Path) -> Probe {
    use std::io::{Seek, SeekFrom, Write};
    let n = env_usize("AUTHDB_BENCH_PROBE_N", 100).max(10);
    let _ = std::process::Command::new("sync").status();
    let path = dir.join("fsync-probe");
    let mut f = std::fs::File::create(&path).expect("probe file");
    f.write_all(&vec![0u8; 65536]).expect("write");
    f.sync_all().expect("sync");
    for i in 0..20u8 {
        f.seek(SeekFrom::Start(u64::from(i % 16) * 4096))
            .expect("seek");
        f.write_all(&[i; 4096]).expect("write");
        f.sync_data().expect("fdatasync");
    }
    let mut times: Vec<f64> = (0..n)
        .map(|i| {
            f.seek(SeekFrom::Start((i % 16) as u64 * 4096))
                .expect("seek");
            f.write_all(&[i as u8; 4096]).expect("write");
            let started = std::time::Instant::now();
            f.sync_data().expect("fdatasync");
            started.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    drop(f);
    let _ = std::fs::remove_file(&path);
    times.sort_by(f64::total_cmp);
    Probe {
        p50: times[n / 2],
        p90: times[n * 9 / 10],
    }
}

/// [`probe`], printed and saved, tagged `when`.
pub fn fsync_probe(dir: &Path, bench: &str, when: &str) -> Probe {
    let p = probe(dir);
    println!(
        "authdb-bench [{when}] fdatasync of 4 KiB: median {:.0} µs, p90 {:.0} µs",
        p.p50, p.p90
    );
    save_meta(
        &format!("{bench}-{when}-fsync"),
        &format!(
            "{{\"bench\":\"{bench}\",\"when\":\"{when}\",\"p50_us\":{:.1},\"p90_us\":{:.1}}}",
            p.p50, p.p90
        ),
    );
    p
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The 1-, 5- and 15-minute load averages.
pub fn loadavg() -> [f64; 3] {
    let s = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut it = s.split_whitespace().map(|x| x.parse().unwrap_or(-1.0));
    [
        it.next().unwrap_or(-1.0),
        it.next().unwrap_or(-1.0),
        it.next().unwrap_or(-1.0),
    ]
}

/// Prints and saves the load average, tagged `when`.
pub fn record_load(bench: &str, when: &str) {
    let [a, b, c] = loadavg();
    println!("authdb-bench [{bench} {when}] load average {a:.2} {b:.2} {c:.2}");
    save_meta(
        &format!("{bench}-loadavg-{when}"),
        &format!(
            "{{\"bench\":\"{bench}\",\"when\":\"{when}\",\"load\":[{a},{b},{c}],\"unix\":{:.0}}}",
            unix_now()
        ),
    );
}

/// A SHA-256 over the crate's `src/` (paths and contents) at the start of the run: tells runs
/// of different code apart even when the working tree is not committed.
fn src_fingerprint() -> String {
    use sha2::Digest;
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, out);
                } else {
                    out.push(p);
                }
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&root, &mut files);
    files.sort();
    let mut h = sha2::Sha256::new();
    for f in files {
        h.update(
            f.strip_prefix(&root)
                .unwrap_or(&f)
                .to_string_lossy()
                .as_bytes(),
        );
        h.update(std::fs::read(&f).unwrap_or_default());
    }
    hex(&h.finalize()[..8])
}

fn git(args: &[&str]) -> String {
    std::process::Command::new("git")
        .arg("-C")
        .arg(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// Starts a bench run: removes this bench's notes of earlier runs, records the start time, the
/// commit, whether `src/` differs from it, a fingerprint of `src/`, and the load average.
pub fn start_run(bench: &str) {
    let prefix = format!("authdb-bench-{bench}-");
    if let Ok(rd) = std::fs::read_dir(env!("CARGO_TARGET_TMPDIR")) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(&prefix)
                && Path::new(&name).extension().is_some_and(|x| x == "json")
            {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    let commit = git(&["rev-parse", "--short", "HEAD"]);
    let dirty = !git(&["status", "--porcelain", "--", "src"]).is_empty();
    let fp = src_fingerprint();
    println!(
        "authdb-bench [{bench}] commit {commit}{}, src fingerprint {fp}",
        if dirty {
            " + uncommitted changes in src/"
        } else {
            ""
        }
    );
    save_meta(
        &format!("{bench}-run"),
        &format!(
            "{{\"bench\":\"{bench}\",\"start_unix\":{:.0},\"commit\":\"{commit}\",\
             \"src_dirty\":{dirty},\"src_fingerprint\":\"{fp}\"}}",
            unix_now()
        ),
    );
    record_load(bench, "start");
}

/// Ends a bench run: records the end time and the load average.
pub fn end_run(bench: &str) {
    record_load(bench, "end");
}

// ---------------------------------------------------------------------------------------------
// Memory

/// A line of /proc/self/status in kB (`VmHWM`: peak resident set; `VmRSS`: current).
pub fn proc_status_kb(field: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Prints the current and peak RSS with a note, and saves them.
pub fn report_rss(bench: &str, when: &str) {
    let rss = proc_status_kb("VmRSS").unwrap_or(0);
    let hwm = proc_status_kb("VmHWM").unwrap_or(0);
    println!(
        "authdb-bench [{when}] RSS {:.1} MiB, peak RSS (VmHWM) {:.1} MiB",
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0
    );
    save_meta(
        &format!("{bench}-{when}-rss"),
        &format!(
            "{{\"bench\":\"{bench}\",\"when\":\"{when}\",\"rss_kib\":{rss},\"hwm_kib\":{hwm}}}"
        ),
    );
}

/// Prints and saves a resident-set reading taken by the caller: `before` (kB) and `peak` (kB).
pub fn report_memory(bench: &str, when: &str, before: u64, peak: u64) {
    println!(
        "authdb-bench [{when}] RSS before {:.1} MiB, peak {:.1} MiB (+{:.1} MiB)",
        before as f64 / 1024.0,
        peak as f64 / 1024.0,
        peak.saturating_sub(before) as f64 / 1024.0
    );
    save_meta(
        &format!("{bench}-{when}-rss"),
        &format!(
            "{{\"bench\":\"{bench}\",\"when\":\"{when}\",\"rss_kib\":{before},\"hwm_kib\":{peak}}}"
        ),
    );
}

/// Resets the peak RSS (`VmHWM`) to the current RSS, so the next reading is the peak of what
/// follows (Linux: `echo 5 > /proc/self/clear_refs`).
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

pub fn save_meta(name: &str, json: &str) {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("authdb-bench-{name}.json"));
    let _ = std::fs::write(path, json);
}

// ---------------------------------------------------------------------------------------------
// Small statistics

/// The `q`-quantile (0..=1) of `v` (sorted in place).
#[allow(clippy::cast_sign_loss)] // `i` is in 0..=last
pub fn quantile(v: &mut [f64], q: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    let last = v.len() - 1;
    let i = (last as f64 * q.clamp(0.0, 1.0)).round();
    v[(i as usize).min(last)]
}

/// Numbers as a JSON array with `digits` decimals.
pub fn json_array(v: &[f64], digits: usize) -> String {
    let items: Vec<String> = v.iter().map(|x| format!("{x:.digits$}")).collect();
    format!("[{}]", items.join(","))
}

/// Checks a data set's handles agree on a few sampled rows before anything is measured.
pub fn sanity(ds: &Dataset, db: &AuthDb, sql: &Connection, raw: &redb::Database) {
    for k in 0..100 {
        let j = uniform(99, k, ds.tokens.len());
        let t = ds.tokens.get(j);
        assert!(
            db.get_session(t).expect("get").is_some(),
            "authdb lost a session"
        );
        assert!(sql_get_session(sql, t).is_some(), "sqlite lost a session");
        assert_eq!(
            redb_get_record(raw, &raw_hash(j as u64)),
            RAW_RECORD.len(),
            "raw redb lost a record"
        );
    }
    for i in ds.sample_users(3).into_iter().take(100) {
        let a = db
            .get_user_by_email(&email(i))
            .expect("get")
            .expect("authdb user");
        let s = sql_get_user_by_email(sql, &email(i)).expect("sqlite user");
        assert_eq!(a.email, s.email);
        assert_eq!(redb_get_user(raw, i as u64), RAW_USER_VALUE.len());
    }
}
