//! authdb on its redb file against authdb on PostgreSQL (over loopback), operation by
//! operation, in ONE run: the engines take turns in rounds (redb, PostgreSQL, redb,
//! PostgreSQL, …; the first engine alternates between rounds), so a change of the machine's
//! load or of the disk's speed hits both alike. A disk flush-latency probe (the core benches'
//! `probe`) runs before and after; a run whose probes disagree is not comparable with
//! another.
//!
//! Every write is durable on both: redb commits with `Durability::Immediate` (fsync), and
//! PostgreSQL with its default `synchronous_commit = on` (WAL flush). PostgreSQL's data
//! directory may sit on another disk than the redb file (the probe measures the redb file's);
//! say so when quoting numbers.
//!
//! After seeding, both engines' caches are warmed by one untimed read of every seeded session
//! and email. Measured per engine (median over rounds of the mean time per operation in a batch):
//! `create_user`, `get_user_by_email`, `create_session` (durable), `get_session_and_user`,
//! `update_session` (every call extends: update age zero), `use_verification_token` (the
//! links are made untimed before the batch), `link_account`, and 8 threads creating sessions
//! durably at once (time per operation of the whole batch, and operations per second).
//!
//! Needs `AUTHDB_POSTGRES_URL` (skips otherwise); uses a fresh schema, dropped at the end.
//!
//! | variable | default (`cargo bench`) | smoke (`cargo test --benches`) | what |
//! |---|---|---|---|
//! | `AUTHDB_PGBENCH_USERS` | 10000 | 50 | users in each store (each with an account and two sessions) |
//! | `AUTHDB_PGBENCH_ROUNDS` | 30 | 2 | rounds (each: every operation on both engines) |
//! | `AUTHDB_PGBENCH_BATCH` | 50 | 4 | operations per batch (one sample) |
//! | `AUTHDB_PGBENCH_THREADS` | 8 | 8 | threads of the concurrent create_session |
//! | `AUTHDB_BENCH_PROBE_N` | 100 | 100 | fsyncs per flush-latency probe |

// `cast_possible_wrap`: the core's helpers are linted here by this crate's (pedantic) rules.
#![allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap
)]

// The core's bench helpers (flush probe, environment, quantiles), included rather than
// copied.
#[path = "../../benches/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::Instant;

use authdb::prelude::*;
use authdb::{
    AuthDb, Clock, Durability, EncryptionKey, NewUser, Session, UserId, VerificationToken,
};
use authdb_postgres::PgAuthDb;
use chrono::TimeDelta;

const OPS: [&str; 7] = [
    "create_user",
    "get_user_by_email",
    "create_session (durable)",
    "get_session_and_user",
    "update_session",
    "use_verification_token",
    "link_account",
];

/// One engine's store and the data it was seeded with.
struct Engine<S> {
    name: &'static str,
    store: S,
    users: Vec<UserId>,
    emails: Vec<String>,
    sessions: Vec<Session>,
    /// Samples (µs per operation) per entry of [`OPS`], then the concurrent create.
    samples: Vec<Vec<f64>>,
}

fn seed<S: Adapter>(name: &'static str, store: S, n: usize) -> Engine<S> {
    let mut e = Engine {
        name,
        store,
        users: Vec::with_capacity(n),
        emails: Vec::with_capacity(n),
        sessions: Vec::with_capacity(2 * n),
        samples: vec![Vec::new(); OPS.len() + 1],
    };
    for i in 0..n {
        let u = e.store.create_user(&common::profile(i)).expect("seed user");
        e.store
            .link_account(&u.id, &common::account(i, common::provider_account_id(i)))
            .expect("seed account");
        for _ in 0..2 {
            e.sessions
                .push(e.store.create_session(&u.id).expect("seed session"));
        }
        e.users.push(u.id);
        e.emails.push(common::email(i));
    }
    e
}

/// Reads every seeded session (with its user) and every seeded email once, untimed.
fn warm<S: Adapter>(e: &Engine<S>) {
    for session in &e.sessions {
        assert!(
            e.store
                .get_session_and_user(&session.session_token)
                .expect("warm get")
                .is_some()
        );
    }
    for email in &e.emails {
        assert!(
            e.store
                .get_user_by_email(email)
                .expect("warm get")
                .is_some()
        );
    }
}

/// The mean time per call of `f` over `batch` calls, in µs.
fn timed(batch: usize, mut f: impl FnMut(usize)) -> f64 {
    let started = Instant::now();
    for k in 0..batch {
        f(k);
    }
    started.elapsed().as_secs_f64() * 1e6 / batch as f64
}

/// One round of every operation on `e`; `round` picks the records used.
fn round<S: Adapter + Maintenance + Clone + Send + Sync + 'static>(
    e: &mut Engine<S>,
    no: u64,
    batch: usize,
    threads: usize,
) {
    let s = &e.store;
    let pick = |k: usize, n: usize, salt: u64| common::uniform(no * 31 + salt, k as u64, n);
    let mut sample = Vec::with_capacity(OPS.len() + 1);
    sample.push(timed(batch, |_| {
        let n = common::next_id();
        s.create_user(&NewUser {
            email: Some(format!("bench{n}@example.com")),
            ..NewUser::default()
        })
        .expect("create_user");
    }));
    sample.push(timed(batch, |k| {
        let email = &e.emails[pick(k, e.emails.len(), 1)];
        assert!(s.get_user_by_email(email).expect("get").is_some());
    }));
    sample.push(timed(batch, |k| {
        s.create_session(&e.users[pick(k, e.users.len(), 2)])
            .expect("create_session");
    }));
    sample.push(timed(batch, |k| {
        let t = &e.sessions[pick(k, e.sessions.len(), 3)].session_token;
        assert!(s.get_session_and_user(t).expect("get").is_some());
    }));
    sample.push(timed(batch, |k| {
        let session = &e.sessions[pick(k, e.sessions.len(), 4)];
        s.update_session(session, false).expect("update_session");
    }));
    let links: Vec<(String, String)> = (0..batch)
        .map(|_| {
            let identifier = format!("link{}@example.com", common::next_id());
            let token = authdb::hash_verification_token(&common::random_token(), "secret");
            s.create_verification_token(&VerificationToken {
                identifier: identifier.clone(),
                token: token.clone(),
                expires: s.now() + TimeDelta::hours(1),
            })
            .expect("create link");
            (identifier, token)
        })
        .collect();
    sample.push(timed(batch, |k| {
        let (identifier, token) = &links[k];
        assert!(
            s.use_verification_token(identifier, token)
                .expect("use")
                .is_some()
        );
    }));
    sample.push(timed(batch, |k| {
        let n = common::next_id();
        s.link_account(
            &e.users[pick(k, e.users.len(), 5)],
            &common::account(n as usize, format!("bench-{n}")),
        )
        .expect("link_account");
    }));
    // Several threads creating sessions at once, durably.
    let started = Instant::now();
    std::thread::scope(|scope| {
        for t in 0..threads {
            let store = s.clone();
            let users = &e.users;
            scope.spawn(move || {
                for k in 0..batch {
                    let u = &users[common::uniform(no * 97 + t as u64, k as u64, users.len())];
                    store.create_session(u).expect("create_session");
                }
            });
        }
    });
    sample.push(started.elapsed().as_secs_f64() * 1e6 / (threads * batch) as f64);
    for (all, x) in e.samples.iter_mut().zip(sample) {
        all.push(x);
    }
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    common::quantile(&mut v, 0.5)
}

fn main() {
    let Some(url) = std::env::var("AUTHDB_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        println!("redb_vs_pg: skipped (set AUTHDB_POSTGRES_URL=postgres://... to run it)");
        return;
    };
    let full = common::benchmarking();
    let users = common::env_usize("AUTHDB_PGBENCH_USERS", if full { 10_000 } else { 50 }).max(1);
    let rounds = common::env_usize("AUTHDB_PGBENCH_ROUNDS", if full { 30 } else { 2 }).max(1);
    let batch = common::env_usize("AUTHDB_PGBENCH_BATCH", if full { 50 } else { 4 }).max(1);
    let threads = common::env_usize("AUTHDB_PGBENCH_THREADS", 8).max(1);

    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir");
    let before = common::probe(dir.path());

    let clock: Arc<common::OffsetClock> = Arc::default();
    let key = EncryptionKey::from_bytes([42; 32]);
    let redb = common::authdb_builder(&clock, Durability::Immediate)
        .open(dir.path().join("bench.redb"))
        .expect("open redb");
    let schema = format!(
        "authdb_bench_{}",
        &uuid::Uuid::now_v7().simple().to_string()[20..]
    );
    let dyn_clock: Arc<dyn Clock> = clock.clone();
    let pg = PgAuthDb::builder()
        .url(&url)
        .schema(&schema)
        .clock(dyn_clock)
        .encryption_key(key)
        .session_max_age(common::MAX_AGE)
        .session_update_age(TimeDelta::zero())
        .pool_size(u32::try_from(threads + 2).unwrap_or(16))
        .connect()
        .expect("connect to AUTHDB_POSTGRES_URL");

    let started = Instant::now();
    let mut r: Engine<AuthDb> = seed("redb", redb, users);
    let mut p: Engine<PgAuthDb> = seed("PostgreSQL", pg, users);
    println!(
        "redb_vs_pg: seeded {users} users (an account and two sessions each) per engine in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // Warm both engines' caches (redb's user-space page cache, PostgreSQL's shared buffers):
    // one untimed read of every seeded session with its user and of every email, so that the
    // timed reads compare lookups, not first reads from the file (each a system call for redb).
    warm(&r);
    warm(&p);
    for k in 0..rounds as u64 {
        if k % 2 == 0 {
            round(&mut r, k, batch, threads);
            round(&mut p, k, batch, threads);
        } else {
            round(&mut p, k, batch, threads);
            round(&mut r, k, batch, threads);
        }
    }
    let after = common::probe(dir.path());

    println!();
    println!(
        "authdb on redb vs on PostgreSQL: {users} users, {rounds} rounds of {batch} operations, \
         engines interleaved; every write durable"
    );
    println!(
        "flush probe (fdatasync 4 KiB, redb's disk): before median {:.0} µs (p90 {:.0}), after \
         {:.0} µs (p90 {:.0}){}",
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
    println!();
    println!(
        "| operation | {} median µs | {} median µs | {} / {} |",
        r.name, p.name, p.name, r.name
    );
    println!("|---|---:|---:|---:|");
    let names = OPS.iter().map(|s| (*s).to_owned()).chain([format!(
        "create_session ×{threads} threads (durable, per op)"
    )]);
    for (i, name) in names.enumerate() {
        let (on_redb, on_pg) = (median(&r.samples[i]), median(&p.samples[i]));
        println!(
            "| {name} | {on_redb:.1} | {on_pg:.1} | {:.2} |",
            on_pg / on_redb
        );
    }
    let last = OPS.len();
    println!(
        "\n{threads}-thread create_session throughput: {} {:.0} ops/s, {} {:.0} ops/s",
        r.name,
        1e6 / median(&r.samples[last]),
        p.name,
        1e6 / median(&p.samples[last])
    );

    drop(p);
    match postgres::Client::connect(&url, postgres::NoTls) {
        Ok(mut client) => {
            if let Err(e) =
                client.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
            {
                eprintln!("could not drop schema {schema}: {e}");
            }
        }
        Err(e) => eprintln!("could not connect to drop schema {schema}: {e}"),
    }
}
