//! Durable `create_session` from 1, 2, 4 and 8 threads at once: total throughput (sessions per
//! second, criterion's `Elements`), authdb beside SQLite (each thread its own connection, WAL,
//! `synchronous=FULL`, busy timeout), on the 10k-session data set.
//!
//! ```text
//! cargo bench --bench concurrency
//! ```
//!
//! One iteration = one `create_session` on each thread; the time is from the moment all threads
//! are released until the last one is done. The sessions made are deleted again, untimed.
#![allow(clippy::cast_possible_wrap, clippy::cast_precision_loss)]

mod common;

use std::sync::Barrier;
use std::time::{Duration, Instant};

use authdb::Durability;
use authdb::prelude::*;
use common::{Dataset, Size};
use criterion::{BenchmarkId, SamplingMode, Throughput};

const THREADS: [usize; 4] = [1, 2, 4, 8];

/// Runs `per_thread(thread, iters)` on `threads` threads released together; returns the wall
/// time until the last finished and what each returned.
fn run_threads<T: Send>(
    threads: usize,
    iters: u64,
    per_thread: impl Fn(usize, u64) -> T + Sync,
) -> (Duration, Vec<T>) {
    let barrier = Barrier::new(threads + 1);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|k| {
                let (barrier, per_thread) = (&barrier, &per_thread);
                s.spawn(move || {
                    barrier.wait();
                    per_thread(k, iters)
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

fn main() {
    if common::run_loader_if_child() {
        return;
    }
    let mut c = common::criterion();
    let ds = Dataset::load(
        Size {
            sessions: 10_000,
            label: "10k",
        },
        "concurrency",
    );
    let db = common::authdb_builder(&ds.clock, Durability::Immediate)
        .open(ds.authdb_path())
        .expect("open authdb");
    let sql = common::open_sqlite(&ds.sqlite_path(), common::Sync::Full);
    let users: Vec<(authdb::UserId, i64)> = ds
        .sample_users(8)
        .into_iter()
        .map(|i| (ds.user_ids[i], i as i64 + 1))
        .collect();
    let user = |thread: usize, j: u64| users[(thread * 7919 + j as usize) % users.len()];

    common::fsync_probe(ds.dir.path(), "concurrency", "start");
    let mut g = c.benchmark_group("concurrent_create_session_durable");
    g.sampling_mode(SamplingMode::Flat);
    g.sample_size(10);
    for threads in THREADS {
        g.throughput(Throughput::Elements(threads as u64));
        let before = db.write_stats();
        g.bench_function(BenchmarkId::new("authdb", threads), |b| {
            b.iter_custom(|iters| {
                let (elapsed, tokens) = run_threads(threads, iters, |k, n| {
                    (0..n)
                        .map(|j| {
                            db.create_session(&user(k, j).0)
                                .expect("create_session")
                                .session_token
                        })
                        .collect::<Vec<_>>()
                });
                db.write(|tx| {
                    tokens
                        .iter()
                        .flatten()
                        .try_for_each(|t| tx.delete_session(t))
                })
                .expect("clean-up");
                elapsed
            });
        });
        // Group commit: how many operations shared each transaction (and fsync).
        let after = db.write_stats();
        let (ops, txns) = (
            after.operations - before.operations,
            after.transactions - before.transactions,
        );
        println!(
            "authdb-bench [{threads} threads] group commit: {ops} writes in {txns} transactions \
             ({:.2} per transaction)",
            ops as f64 / txns.max(1) as f64
        );
        common::save_meta(
            &format!("concurrency-{threads}-groupcommit"),
            &format!("{{\"threads\":{threads},\"operations\":{ops},\"transactions\":{txns}}}"),
        );
        g.bench_function(BenchmarkId::new("sqlite", threads), |b| {
            b.iter_custom(|iters| {
                // Connections are opened before the clock starts.
                let conns: Vec<_> = (0..threads)
                    .map(|_| {
                        parking_lot::Mutex::new(common::open_sqlite(
                            &ds.sqlite_path(),
                            common::Sync::Full,
                        ))
                    })
                    .collect();
                let (elapsed, tokens) = run_threads(threads, iters, |k, n| {
                    let conn = conns[k].lock();
                    (0..n)
                        .map(|j| common::sql_create_session(&conn, user(k, j).1))
                        .collect::<Vec<_>>()
                });
                common::sql_delete_sessions(&sql, &tokens.concat());
                elapsed
            });
        });
    }
    g.finish();
    common::fsync_probe(ds.dir.path(), "concurrency", "end");
    common::report_rss("concurrency", "end");
    c.final_summary();
}
