//! What each share mode costs: a durable `create_session` and a `get_session` on a file opened
//! `Exclusive` (the default), `SingleWriter` and `MultiWriter`, in ONE run. The three files
//! hold the same number of users and sessions; the modes take turns round by round (the order
//! rotates), and a disk flush-latency probe runs before and after.
//!
//! Why they differ: in the exclusive mode every commit to the file goes through this process,
//! so reads share a snapshot until the next commit and a durable commit syncs once; in the
//! shared modes another process may commit at any moment, so every read begins its own read
//! transaction, and redb commits in two phases (the pages, then the header naming them, each
//! synced) so that another process never follows a header to unwritten pages.
//!
//! ```text
//! cargo bench --bench share_modes
//! AUTHDB_SHARE_USERS=200 AUTHDB_SHARE_ROUNDS=3 cargo bench --bench share_modes   # smoke
//! ```
//!
//! | variable | default (`cargo bench`; `cargo test --benches`: tiny) | what |
//! |---|---|---|
//! | `AUTHDB_SHARE_USERS` | 20000 | users per file (two sessions each) |
//! | `AUTHDB_SHARE_ROUNDS` | 30 | rounds (each: both operations on every mode) |
//! | `AUTHDB_SHARE_WRITES` | 50 | durable creates per mode per round |
//! | `AUTHDB_SHARE_READS` | 2000 | lookups per mode per round |

#![allow(clippy::cast_possible_wrap, clippy::cast_precision_loss)]

mod common;

use std::sync::Arc;
use std::time::Instant;

use authdb::prelude::*;
use authdb::{AuthDb, Durability, ShareMode, UserId};

const MODES: [(&str, ShareMode); 3] = [
    ("Exclusive", ShareMode::Exclusive),
    ("SingleWriter", ShareMode::SingleWriter),
    ("MultiWriter", ShareMode::MultiWriter),
];

struct Store {
    db: AuthDb,
    users: Vec<UserId>,
    tokens: Vec<String>,
    create_us: Vec<f64>,
    get_us: Vec<f64>,
}

fn seed(dir: &std::path::Path, name: &str, mode: ShareMode, users: usize) -> Store {
    let clock: Arc<common::OffsetClock> = Arc::default();
    let path = dir.join(format!("{name}.redb"));
    let mut ids = Vec::with_capacity(users);
    let mut tokens = Vec::with_capacity(users * 2);
    {
        // Loaded in batches under the exclusive mode, then reopened in the mode measured.
        let db = common::authdb_builder(&clock, Durability::Immediate)
            .open(&path)
            .expect("open for loading");
        for chunk in (0..users).collect::<Vec<_>>().chunks(1000) {
            db.write(|tx| {
                for &i in chunk {
                    let u = tx.create_user(&common::profile(i))?;
                    for _ in 0..2 {
                        tokens.push(tx.create_session(&u.id)?.session_token);
                    }
                    ids.push(u.id);
                }
                Ok(())
            })
            .expect("load");
        }
    }
    let db = common::authdb_builder(&clock, Durability::Immediate)
        .share_mode(mode)
        .open(&path)
        .expect("open in the mode measured");
    // Warm the caches: one read of every session.
    for t in &tokens {
        assert!(db.get_session(t).expect("warm").is_some());
    }
    Store {
        db,
        users: ids,
        tokens,
        create_us: Vec::new(),
        get_us: Vec::new(),
    }
}

fn round(s: &mut Store, no: u64, writes: usize, reads: usize) {
    let started = Instant::now();
    for k in 0..writes {
        let u = &s.users[common::uniform(no * 7 + 1, k as u64, s.users.len())];
        s.db.create_session(u).expect("create_session");
    }
    s.create_us
        .push(started.elapsed().as_secs_f64() * 1e6 / writes as f64);
    let started = Instant::now();
    for k in 0..reads {
        let t = &s.tokens[common::uniform(no * 7 + 2, k as u64, s.tokens.len())];
        assert!(s.db.get_session(t).expect("get_session").is_some());
    }
    s.get_us
        .push(started.elapsed().as_secs_f64() * 1e6 / reads as f64);
}

fn main() {
    // `cargo test --benches` runs each bench once: tiny sizes there.
    let full = common::benchmarking();
    let users = common::env_usize("AUTHDB_SHARE_USERS", if full { 20_000 } else { 200 }).max(1);
    let rounds = common::env_usize("AUTHDB_SHARE_ROUNDS", if full { 30 } else { 2 }).max(1);
    let writes = common::env_usize("AUTHDB_SHARE_WRITES", if full { 50 } else { 5 }).max(1);
    let reads = common::env_usize("AUTHDB_SHARE_READS", if full { 2000 } else { 50 }).max(1);
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir");

    let mut stores: Vec<Store> = MODES
        .iter()
        .map(|(name, mode)| seed(dir.path(), name, *mode, users))
        .collect();
    let before = common::probe(dir.path());
    for r in 0..rounds {
        for i in 0..stores.len() {
            let at = (i + r) % stores.len();
            round(&mut stores[at], r as u64, writes, reads);
        }
    }
    let after = common::probe(dir.path());

    println!(
        "share modes: {users} users (two sessions each) per file, {rounds} rounds of {writes} \
         durable create_session and {reads} get_session per mode, modes interleaved"
    );
    println!(
        "flush probe (fdatasync 4 KiB): before median {:.0} µs (p90 {:.0}), after {:.0} µs \
         (p90 {:.0}): {}",
        before.p50,
        before.p90,
        after.p50,
        after.p90,
        if before.agrees(&after) {
            "agree"
        } else {
            "DISAGREE (durable rows not to be trusted)"
        }
    );
    println!();
    println!(
        "| mode | create_session durable, µs p50 | ÷ Exclusive | get_session, µs p50 | ÷ Exclusive |"
    );
    println!("|---|---:|---:|---:|---:|");
    let (base_c, base_g) = (stores[0].create_us.clone(), stores[0].get_us.clone());
    for ((name, _), s) in MODES.iter().zip(stores.iter_mut()) {
        // Ratios: the median over rounds of each round's ratio to the exclusive mode.
        let mut rc: Vec<f64> = s
            .create_us
            .iter()
            .zip(&base_c)
            .map(|(a, b)| a / b)
            .collect();
        let mut rg: Vec<f64> = s.get_us.iter().zip(&base_g).map(|(a, b)| a / b).collect();
        let c = common::quantile(&mut s.create_us, 0.5);
        let g = common::quantile(&mut s.get_us, 0.5);
        println!(
            "| {name} | {c:.1} | {:.2}× | {g:.2} | {:.2}× |",
            common::quantile(&mut rc, 0.5),
            common::quantile(&mut rg, 0.5)
        );
    }
}
