//! Durable `create_session` from many threads at once, authdb and SQLite **interleaved**: for
//! each thread count, pairs of (authdb, SQLite) runs — the order alternating from pair to pair —
//! with a disk flush-latency probe before and after each pair. Each run: `threads` threads
//! released together, each doing `AUTHDB_BENCH_CONC_OPS` (500) durable `create_session`s; the
//! time is from the release until the last thread is done. SQLite: TypeORM schema, WAL,
//! `synchronous=FULL`, one connection per thread (opened before the clock starts), busy timeout
//! 10 s. The sessions made are deleted again, untimed, after the pair's second probe.
//!
//! ```text
//! cargo bench --bench concurrency                  # 100k and 1M sessions; 1 and 8 threads
//! AUTHDB_BENCH_LARGE=0 cargo bench --bench concurrency                    # 100k only
//! AUTHDB_BENCH_LARGE=0 AUTHDB_BENCH_SMALL_SESSIONS=5000 AUTHDB_BENCH_CONC_ROUNDS=2 \
//!   AUTHDB_BENCH_CONC_OPS=50 cargo bench --bench concurrency              # smoke test
//! ```
//!
//! Saved as `target/tmp/authdb-bench-concurrency-<size>-<threads>threads-pairs.json` for
//! `benches/report.py`, which takes the ratio only from pairs whose probes agree.
#![allow(clippy::cast_possible_wrap, clippy::cast_precision_loss)]

mod common;

use std::sync::Barrier;
use std::time::{Duration, Instant};

use authdb::prelude::*;
use authdb::{AuthDb, Durability, UserId};
use common::{Dataset, Probe};

/// Runs `per_thread(thread)` on `threads` threads released together; returns the wall time
/// until the last finished and what each returned.
fn run_threads<T: Send>(
    threads: usize,
    per_thread: impl Fn(usize) -> T + Sync,
) -> (Duration, Vec<T>) {
    let barrier = Barrier::new(threads + 1);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|k| {
                let (barrier, per_thread) = (&barrier, &per_thread);
                s.spawn(move || {
                    barrier.wait();
                    per_thread(k)
                })
            })
            .collect();
        barrier.wait();
        let started = Instant::now();
        let out: Vec<T> = handles
            .into_iter()
            .map(|h| h.join().expect("bench thread"))
            .collect();
        (started.elapsed(), out)
    })
}

/// What one run of one engine measured, and what it made (deleted after the pair's second
/// probe, so neither the other engine's run nor the probe pays for the clean-up).
struct Run {
    per_s: f64,
    /// authdb only: writes and the transactions they shared (group commit).
    ops: u64,
    txns: u64,
    tokens: Vec<String>,
}

struct Bench<'a> {
    ds: &'a Dataset,
    db: &'a AuthDb,
    sql: &'a rusqlite::Connection,
    users: &'a [(UserId, i64)],
    per_thread: usize,
}

/// The user thread `thread`'s `j`-th session is for.
fn user(users: &[(UserId, i64)], thread: usize, j: usize) -> (UserId, i64) {
    users[(thread * 7919 + j) % users.len()]
}

impl Bench<'_> {
    fn authdb(&self, threads: usize) -> Run {
        let (db, users, n) = (self.db, self.users, self.per_thread);
        let before = db.write_stats();
        let (elapsed, tokens) = run_threads(threads, |k| {
            (0..n)
                .map(|j| {
                    db.create_session(&user(users, k, j).0)
                        .expect("create_session")
                        .session_token
                })
                .collect::<Vec<_>>()
        });
        let after = db.write_stats();
        Run {
            per_s: (threads * self.per_thread) as f64 / elapsed.as_secs_f64(),
            ops: after.operations - before.operations,
            txns: after.transactions - before.transactions,
            tokens: tokens.concat(),
        }
    }

    /// Deletes what the two runs of a pair made (untimed).
    fn clean_up(&self, a: &Run, s: &Run) {
        self.db
            .write(|tx| a.tokens.iter().try_for_each(|t| tx.delete_session(t)))
            .expect("clean-up");
        common::sql_delete_sessions(self.sql, &s.tokens);
    }

    fn sqlite(&self, threads: usize) -> Run {
        // Connections are opened before the clock starts.
        let conns: Vec<_> = (0..threads)
            .map(|_| {
                parking_lot::Mutex::new(common::open_sqlite(
                    &self.ds.sqlite_path(),
                    common::Sync::Full,
                ))
            })
            .collect();
        let (users, n) = (self.users, self.per_thread);
        let (elapsed, tokens) = run_threads(threads, |k| {
            let conn = conns[k].lock();
            (0..n)
                .map(|j| common::sql_create_session(&conn, user(users, k, j).1))
                .collect::<Vec<_>>()
        });
        drop(conns);
        Run {
            per_s: (threads * self.per_thread) as f64 / elapsed.as_secs_f64(),
            ops: 0,
            txns: 0,
            tokens: tokens.concat(),
        }
    }
}

fn main() {
    if common::run_loader_if_child() {
        return;
    }
    common::start_run("concurrency");
    let full = common::benchmarking();
    let rounds = common::env_usize("AUTHDB_BENCH_CONC_ROUNDS", if full { 6 } else { 2 }).max(1);
    let per_thread = common::env_usize("AUTHDB_BENCH_CONC_OPS", if full { 500 } else { 20 }).max(1);
    let thread_counts: Vec<usize> = std::env::var("AUTHDB_BENCH_CONC_THREADS")
        .unwrap_or_else(|_| "1,8".into())
        .split(',')
        .filter_map(|t| t.trim().parse().ok())
        .filter(|t| *t > 0)
        .collect();
    for size in common::sizes() {
        let ds = Dataset::load(&size, "concurrency", false);
        let db = common::authdb_builder(&ds.clock, Durability::Immediate)
            .open(ds.authdb_path())
            .expect("open authdb");
        let sql = common::open_sqlite(&ds.sqlite_path(), common::Sync::Full);
        let users: Vec<(UserId, i64)> = ds
            .sample_users(8)
            .into_iter()
            .map(|i| (ds.user_ids[i], i as i64 + 1))
            .collect();
        let b = Bench {
            ds: &ds,
            db: &db,
            sql: &sql,
            users: &users,
            per_thread,
        };
        let label = &size.label;
        common::fsync_probe(ds.dir.path(), "concurrency", &format!("{label}-start"));
        for &threads in &thread_counts {
            let mut pairs = Vec::new();
            for r in 0..rounds {
                let before = common::probe(ds.dir.path());
                let authdb_first = r % 2 == 0;
                let (a, s) = if authdb_first {
                    let a = b.authdb(threads);
                    (a, b.sqlite(threads))
                } else {
                    let s = b.sqlite(threads);
                    (b.authdb(threads), s)
                };
                let after = common::probe(ds.dir.path());
                b.clean_up(&a, &s);
                let agree = before.agrees(&after);
                println!(
                    "authdb-bench [{label}] {threads} threads, pair {}/{rounds} ({} first): authdb \
                     {:.0}/s ({:.2} writes per transaction), sqlite {:.0}/s, ratio {:.2}; probe \
                     p50 {:.0} → {:.0} µs ({})",
                    r + 1,
                    if authdb_first { "authdb" } else { "sqlite" },
                    a.per_s,
                    a.ops as f64 / a.txns.max(1) as f64,
                    s.per_s,
                    a.per_s / s.per_s,
                    before.p50,
                    after.p50,
                    if agree { "agree" } else { "DISAGREE" }
                );
                pairs.push(pair_json(authdb_first, &before, &after, &a, &s));
            }
            common::save_meta(
                &format!("concurrency-{label}-{threads}threads-pairs"),
                &format!(
                    "{{\"label\":\"{label}\",\"sessions\":{},\"threads\":{threads},\
                     \"per_thread\":{per_thread},\"pairs\":[{}]}}",
                    size.sessions,
                    pairs.join(",")
                ),
            );
        }
        common::fsync_probe(ds.dir.path(), "concurrency", &format!("{label}-end"));
        common::report_rss("concurrency", &format!("{label}-end"));
    }
    common::end_run("concurrency");
}

fn pair_json(authdb_first: bool, before: &Probe, after: &Probe, a: &Run, s: &Run) -> String {
    format!(
        "{{\"first\":\"{}\",\"before\":{},\"after\":{},\"authdb_per_s\":{:.1},\
         \"sqlite_per_s\":{:.1},\"authdb_ops\":{},\"authdb_txns\":{}}}",
        if authdb_first { "authdb" } else { "sqlite" },
        before.json(),
        after.json(),
        a.per_s,
        s.per_s,
        a.ops,
        a.txns
    )
}
