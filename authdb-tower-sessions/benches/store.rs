//! The tower-sessions store on authdb against tower-sessions' SQLite store
//! (tower-sessions-sqlx-store), through the same `SessionStore` trait, both durable:
//!
//! - authdb: `Durability::Immediate` — every commit is flushed (fsync) before it returns;
//!   concurrent commits share a flush (group commit), which a single task never sees.
//! - SQLite: WAL journal with `synchronous=FULL` — every commit appends to the WAL and
//!   fsyncs it before it returns (with `NORMAL`, the WAL is synced only at checkpoints and a
//!   power loss may drop the last commits). One pool of 4 connections, the store's default
//!   table.
//!
//! Operations, timed one at a time from one task on a 2-worker tokio runtime:
//! - `create`: a new session (tower-sessions calls it on a session's first save);
//! - `save`: an existing session rewritten (every later save);
//! - `load`: a live session read by id (every request with a cookie).
//!
//! Records look like axum-login's: `{"axum-login.data": {"user_id": <UUID>, "auth_hash":
//! [32 bytes]}}`, for users that exist in the authdb file (so authdb fills its by-user index,
//! as in an axum-login app). Both stores are first loaded with the same number of sessions.
//! Then rounds alternate: authdb, SQLite, authdb, SQLite…, each running `create`, `save`
//! and `load` `OPS` times; the table gives the medians (and 90th percentiles) over every
//! round. A disk flush-latency probe (`benches/common`) runs before and after: when the two
//! disagree, the disk changed speed during the run and the durable numbers are suspect.
//!
//! | variable | default (`cargo bench`) | smoke (`cargo test --benches`) |
//! |---|---|---|
//! | `AUTHDB_BENCH_STORE_PRELOAD` | 100000 | 200 |
//! | `AUTHDB_BENCH_STORE_ROUNDS` | 10 | 2 |
//! | `AUTHDB_BENCH_STORE_OPS` | 200 | 10 |

// Its own lint allowances are inside it; the root crate's pedantic exceptions apply too.
#[allow(clippy::pedantic)]
#[path = "../../benches/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::Instant;

use authdb::{AuthDb, Durability, NewUser, UserId};
use authdb_tower_sessions::AuthDbSessionStore;
use serde_json::json;
use time::OffsetDateTime;
use tower_sessions_core::SessionStore;
use tower_sessions_core::session::{Id, Record};
use tower_sessions_sqlx_store::SqliteStore;
use tower_sessions_sqlx_store::sqlx::query_scalar;
use tower_sessions_sqlx_store::sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};

/// Users the sessions belong to.
const USERS: usize = 1000;
/// Tasks creating sessions at once while loading (authdb shares their flushes).
const LOAD_TASKS: usize = 64;

const OPS: [&str; 3] = ["create", "save", "load"];
const ENGINES: [&str; 2] = ["authdb", "SQLite (sqlx)"];

/// A store under test and the ids it holds.
struct Subject {
    store: Arc<dyn SessionStore>,
    ids: Vec<Id>,
}

fn record(user: UserId, n: u64) -> Record {
    let mut data = std::collections::HashMap::new();
    let hash: Vec<u8> = (0..32u8)
        .map(|i| i.wrapping_mul(7).wrapping_add(n.to_le_bytes()[0]))
        .collect();
    data.insert(
        "axum-login.data".to_owned(),
        json!({ "user_id": user.to_string(), "auth_hash": hash }),
    );
    Record {
        id: Id::default(),
        data,
        expiry_date: OffsetDateTime::now_utc() + time::Duration::days(7),
    }
}

/// Creates `n` sessions for `users` through `store`, from [`LOAD_TASKS`] tasks; returns
/// their ids.
async fn load(store: Arc<dyn SessionStore>, users: &Arc<Vec<UserId>>, n: usize) -> Vec<Id> {
    let mut tasks = Vec::new();
    for t in 0..LOAD_TASKS {
        let (store, users) = (Arc::clone(&store), Arc::clone(users));
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in (t..n).step_by(LOAD_TASKS) {
                let mut r = record(users[i % users.len()], i as u64);
                store.create(&mut r).await.expect("create");
                ids.push(r.id);
            }
            ids
        }));
    }
    let mut ids = Vec::with_capacity(n);
    for t in tasks {
        ids.extend(t.await.expect("load task"));
    }
    ids
}

fn sqlite_options(path: &std::path::Path, sync: SqliteSynchronous) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(sync)
}

/// One round of one engine: `ops` of each operation, each timed (µs) into `out[op]`.
async fn round(s: &Subject, users: &[UserId], seed: u64, ops: usize, out: &mut [Vec<f64>; 3]) {
    for k in 0..ops as u64 {
        let mut r = record(users[common::uniform(seed, k, users.len())], k);
        let started = Instant::now();
        s.store.create(&mut r).await.expect("create");
        out[0].push(started.elapsed().as_secs_f64() * 1e6);
    }
    for k in 0..ops as u64 {
        let mut r = record(users[common::uniform(seed ^ 1, k, users.len())], k + 1);
        r.id = s.ids[common::uniform(seed ^ 2, k, s.ids.len())];
        let started = Instant::now();
        s.store.save(&r).await.expect("save");
        out[1].push(started.elapsed().as_secs_f64() * 1e6);
    }
    for k in 0..ops as u64 {
        let id = s.ids[common::uniform(seed ^ 3, k, s.ids.len())];
        let started = Instant::now();
        let found = s.store.load(&id).await.expect("load");
        out[2].push(started.elapsed().as_secs_f64() * 1e6);
        assert!(found.is_some(), "a loaded session is missing");
    }
}

fn main() {
    let bench = common::benchmarking();
    let preload = common::env_usize(
        "AUTHDB_BENCH_STORE_PRELOAD",
        if bench { 100_000 } else { 200 },
    );
    let rounds = common::env_usize("AUTHDB_BENCH_STORE_ROUNDS", if bench { 10 } else { 2 });
    let ops = common::env_usize("AUTHDB_BENCH_STORE_OPS", if bench { 200 } else { 10 }).max(1);
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");

    let before = common::probe(dir.path());

    // authdb: the users, then the sessions through the store.
    let db = AuthDb::builder()
        .durability(Durability::Immediate)
        .open(dir.path().join("sessions.redb"))
        .expect("open authdb");
    let users: Vec<UserId> = db
        .write(|tx| {
            use authdb::prelude::*;
            (0..USERS)
                .map(|i| {
                    tx.create_user(&NewUser {
                        email: Some(format!("user{i}@example.com")),
                        ..NewUser::default()
                    })
                    .map(|u| u.id)
                })
                .collect()
        })
        .expect("users");
    let users = Arc::new(users);
    let sqlite_path = dir.path().join("sessions.sqlite");
    let (subjects, load_secs) = rt.block_on(async {
        let authdb_store: Arc<dyn SessionStore> = Arc::new(AuthDbSessionStore::new(db));
        let started = Instant::now();
        let authdb_ids = load(Arc::clone(&authdb_store), &users, preload).await;
        let authdb_secs = started.elapsed().as_secs_f64();

        // SQLite: loaded without flushes (synchronous=OFF), then reopened durable.
        let loading = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(sqlite_options(&sqlite_path, SqliteSynchronous::Off))
            .await
            .expect("open sqlite");
        let sqlite_loading: Arc<dyn SessionStore> = {
            let s = SqliteStore::new(loading.clone());
            s.migrate().await.expect("migrate");
            Arc::new(s)
        };
        let started = Instant::now();
        let sqlite_ids = load(sqlite_loading, &users, preload).await;
        let sqlite_secs = started.elapsed().as_secs_f64();
        loading.close().await;
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(sqlite_options(&sqlite_path, SqliteSynchronous::Full))
            .await
            .expect("open sqlite");
        // The durable settings are in force on the pool's connections.
        let (journal, sync): (String, i64) = (
            query_scalar("PRAGMA journal_mode")
                .fetch_one(&pool)
                .await
                .expect("pragma"),
            query_scalar("PRAGMA synchronous")
                .fetch_one(&pool)
                .await
                .expect("pragma"),
        );
        assert_eq!(
            (journal.as_str(), sync),
            ("wal", 2),
            "SQLite is not WAL + FULL"
        );
        let sqlite_store: Arc<dyn SessionStore> = Arc::new(SqliteStore::new(pool));
        (
            [
                Subject {
                    store: authdb_store,
                    ids: authdb_ids,
                },
                Subject {
                    store: sqlite_store,
                    ids: sqlite_ids,
                },
            ],
            [authdb_secs, sqlite_secs],
        )
    });
    println!(
        "store bench: {preload} sessions of {USERS} users loaded (authdb durable, \
         {LOAD_TASKS} tasks: {:.1} s; SQLite unsynced: {:.1} s); {rounds} rounds × {ops} ops",
        load_secs[0], load_secs[1]
    );

    // samples[engine][op]
    let mut samples: [[Vec<f64>; 3]; 2] = Default::default();
    for r in 0..rounds {
        for (e, s) in subjects.iter().enumerate() {
            rt.block_on(round(s, &users, r as u64, ops, &mut samples[e]));
        }
    }
    drop(subjects);
    drop(rt);
    let after = common::probe(dir.path());

    println!();
    println!(
        "| operation | {} median µs (p90) | {} median µs (p90) | SQLite / authdb |",
        ENGINES[0], ENGINES[1]
    );
    println!("|---|---:|---:|---:|");
    for (o, op) in OPS.iter().enumerate() {
        let [a, s] = [0, 1].map(|e| {
            let v = &mut samples[e][o];
            (common::quantile(v, 0.5), common::quantile(v, 0.9))
        });
        println!(
            "| `{op}` | {:.0} ({:.0}) | {:.0} ({:.0}) | {:.2} |",
            a.0,
            a.1,
            s.0,
            s.1,
            s.0 / a.0
        );
    }
    println!();
    println!(
        "Disk flush probe (fdatasync of 4 KiB): before median {:.0} µs (p90 {:.0}), after {:.0} µs \
         (p90 {:.0}){}",
        before.p50,
        before.p90,
        after.p50,
        after.p90,
        if before.agrees(&after) {
            ""
        } else {
            " — the probes disagree: the disk changed speed during the run"
        }
    );
}
