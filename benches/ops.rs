//! Per-operation benches: authdb beside SQLite (NextAuth v3's TypeORM schema, WAL, prepared
//! statements) and raw redb (the floor authdb sits on, in tables shaped like authdb's), on the
//! same data.
//!
//! Two parts per data-set size:
//!
//! 1. **criterion groups**, one per operation, engines one after another (skip them with
//!    `AUTHDB_BENCH_CRITERION=0`). Fine for reads and non-durable writes; durable writes measured
//!    this way compare different moments of the disk.
//! 2. **interleaved measures** (what the targets in BENCHMARKS.md are computed from): in every
//!    round each engine does one unit of work, in rotating order, so drift of the machine and
//!    of the disk hits all engines alike; durable measures run in blocks with a disk
//!    flush-latency probe before and after each block. Saved as
//!    `target/tmp/authdb-bench-ops-<size>-interleaved.json` for `benches/report.py`.
//!
//! ```text
//! cargo bench --bench ops                                   # 100k and 1M sessions (~15 min)
//! AUTHDB_BENCH_LARGE=0 cargo bench --bench ops              # 100k only
//! AUTHDB_BENCH_LARGE=0 AUTHDB_BENCH_SMALL_SESSIONS=5000 AUTHDB_BENCH_CRITERION=0 \
//!   AUTHDB_BENCH_ROUNDS=30 AUTHDB_BENCH_PURGE_ROUNDS=3 cargo bench --bench ops   # smoke test
//! ```
//!
//! criterion ids: `<operation>/<engine>_<durability>/<size>`. Durable: authdb
//! `Durability::Immediate`, SQLite `synchronous=FULL`, redb `Durability::Immediate`;
//! non-durable: authdb `Durability::None`, SQLite `synchronous=NORMAL`, redb `Durability::None`
//! (`Durability::None` is weaker than `synchronous=NORMAL`: a plain process crash loses redb's
//! unflushed commits, while SQLite's survive in the WAL). Reads name no durability.
#![allow(clippy::cast_possible_wrap, clippy::cast_precision_loss)]

mod common;

use std::cell::RefCell;
use std::fmt::Write as _;
use std::hint::black_box;
use std::time::{Duration, Instant};

use authdb::prelude::*;
use authdb::{AuthDb, Durability, EmailProvider, Session};
use common::Dataset;
use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use rusqlite::Connection;

/// Iterations between untimed clean-ups, so created rows never pile up in the data set.
const CHUNK: u64 = 1000;
/// Expired sessions purged per iteration (and per round) of the purge benches.
const PURGE_ROWS: u64 = 2500;
/// Lookups per engine per round of the interleaved reads.
const READ_BATCH: usize = 200;
/// Lookup keys precomputed for the user reads (drawn uniformly from all users).
const USER_PICKS: usize = 100_000;
const SECRET: &str = "bench-app-secret-0123456789abcdef";
/// The stream of uniformly drawn sessions the reads use (the same for every engine).
const READ_SEED: u64 = 11;

/// Everything one size's benches use.
struct Env<'a> {
    ds: &'a Dataset,
    /// `Durability::Immediate`.
    db: AuthDb,
    /// `Durability::None`, on a copy of the same file.
    db_nd: AuthDb,
    /// `synchronous=FULL`.
    sql_full: Connection,
    /// `synchronous=NORMAL`, the same file.
    sql_normal: Connection,
    /// The copy with an index on `expires` (purge only): FULL and NORMAL.
    purge_full: Connection,
    purge_normal: Connection,
    raw: redb::Database,
    /// Sampled users: (authdb id, SQLite id).
    users: Vec<(authdb::UserId, i64)>,
    /// Rows in authdb's verification table when the run started (the raw floor's table holds
    /// as many).
    verification_rows: u64,
}

impl<'a> Env<'a> {
    fn open(ds: &'a Dataset) -> Self {
        let db = common::authdb_builder(&ds.clock, Durability::Immediate)
            .open(ds.authdb_path())
            .expect("open authdb");
        let db_nd = common::authdb_builder(&ds.clock, Durability::None)
            .open(ds.authdb_nd_path())
            .expect("open authdb copy");
        let sql_full = common::open_sqlite(&ds.sqlite_path(), common::Sync::Full);
        let sql_normal = common::open_sqlite(&ds.sqlite_path(), common::Sync::Normal);
        let purge_full = common::open_sqlite(&ds.sqlite_purge_path(), common::Sync::Full);
        let purge_normal = common::open_sqlite(&ds.sqlite_purge_path(), common::Sync::Normal);
        let raw = common::open_redb(&ds.redb_path());
        common::sanity(ds, &db, &sql_full, &raw);
        common::sanity(ds, &db_nd, &sql_normal, &raw);
        let stats = db.stats().expect("stats");
        let verification_rows = stats.verification_live + stats.verification_expired;
        common::redb_size_verification(&raw, verification_rows);
        println!(
            "authdb-bench [{}] verification table: authdb {verification_rows} rows, raw redb {} \
             rows; sessions: authdb {} live",
            ds.size.label,
            common::redb_verification_rows(&raw),
            stats.sessions_live
        );
        let users = ds
            .sample_users(4)
            .into_iter()
            .map(|i| (ds.user_ids[i], i as i64 + 1))
            .collect();
        Env {
            ds,
            db,
            db_nd,
            sql_full,
            sql_normal,
            purge_full,
            purge_normal,
            raw,
            users,
            verification_rows,
        }
    }

    fn authdb(&self, durable: bool) -> &AuthDb {
        if durable { &self.db } else { &self.db_nd }
    }

    fn sqlite(&self, durable: bool) -> &Connection {
        if durable {
            &self.sql_full
        } else {
            &self.sql_normal
        }
    }

    fn sqlite_purge(&self, durable: bool) -> &Connection {
        if durable {
            &self.purge_full
        } else {
            &self.purge_normal
        }
    }

    fn user(&self, k: u64) -> (authdb::UserId, i64) {
        self.users[(k % self.users.len() as u64) as usize]
    }

    /// Live sessions drawn uniformly from the data set (the same in both authdb files and in
    /// SQLite), with their index (= raw hash).
    fn sessions(&self, seed: u64, n: usize) -> Vec<(usize, Session)> {
        let tokens = &self.ds.tokens;
        let mut seen = std::collections::HashSet::new();
        (0..)
            .map(|k| common::uniform(seed, k, tokens.len()))
            .filter(|j| seen.insert(*j))
            .take(n.min(tokens.len()))
            .map(|j| {
                let s = self
                    .db
                    .get_session(tokens.get(j))
                    .expect("get")
                    .expect("live");
                (j, s)
            })
            .collect()
    }
}

/// Runs `iters` iterations in chunks of at most [`CHUNK`]: `setup(k)` (untimed) prepares `k`
/// iterations, `run` (timed) does them, `cleanup` (untimed) undoes what they created.
fn chunked<S, R>(
    iters: u64,
    mut setup: impl FnMut(u64) -> S,
    mut run: impl FnMut(S) -> R,
    mut cleanup: impl FnMut(R),
) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let k = left.min(CHUNK);
        left -= k;
        let input = setup(k);
        let started = Instant::now();
        let out = run(input);
        total += started.elapsed();
        cleanup(out);
    }
    total
}

fn label(engine: &str, durable: bool) -> String {
    let d = match (engine, durable) {
        ("authdb" | "redb", true) => "durable",
        ("authdb" | "redb", false) => "nodurable",
        (_, true) => "full",
        (_, false) => "normal",
    };
    format!("{engine}_{d}")
}

/// A new email sign-in link for a sampled user: (identifier, url, token).
fn link(e: &Env<'_>) -> (String, String, String) {
    let n = common::next_id();
    let identifier = common::email(common::uniform(7, n, e.ds.n_users));
    let token = common::random_token();
    let url =
        format!("https://app.example.com/api/auth/callback/email?email={identifier}&token={token}");
    (identifier, url, token)
}

// ---------------------------------------------------------------------------------------------
// Reads (criterion)

/// One read operation: authdb's and SQLite's lookups (each returns whether it found the row)
/// and raw redb's single `get` in a fresh read transaction (the floor), side by side in one
/// criterion group. Iteration `k` of every engine looks up the `k`-th key of the same uniform
/// stream.
fn read_group(
    c: &mut Criterion,
    e: &Env<'_>,
    name: &str,
    authdb: impl Fn(u64) -> bool,
    sqlite: impl Fn(u64) -> bool,
    floor: impl Fn(u64) -> usize,
) {
    let size = &e.ds.size.label;
    let mut g = c.benchmark_group(name);
    let run = |b: &mut criterion::Bencher<'_>, f: &dyn Fn(u64) -> bool| {
        let mut k = 0u64;
        b.iter(|| {
            k += 1;
            // Evaluated in release builds too; debug builds also check it was found.
            let found = black_box(f(k));
            debug_assert!(found);
        });
    };
    g.bench_function(BenchmarkId::new("authdb", size), |b| run(b, &authdb));
    g.bench_function(BenchmarkId::new("sqlite", size), |b| run(b, &sqlite));
    g.bench_function(BenchmarkId::new("redb_get", size), |b| {
        run(b, &|k| floor(k) > 0);
    });
    g.finish();
}

fn bench_reads(c: &mut Criterion, e: &Env<'_>) {
    let tokens = &e.ds.tokens;
    let n = tokens.len();
    read_group(
        c,
        e,
        "get_session",
        |k| {
            e.db.get_session(tokens.pick(READ_SEED, k))
                .expect("get_session")
                .is_some()
        },
        |k| common::sql_get_session(&e.sql_full, tokens.pick(READ_SEED, k)).is_some(),
        |k| {
            common::redb_get_record(
                &e.raw,
                &common::raw_hash(common::uniform(READ_SEED, k, n) as u64),
            )
        },
    );
    let picks: Vec<usize> = (0..USER_PICKS.min(e.ds.n_users) as u64)
        .map(|k| common::uniform(5, k, e.ds.n_users))
        .collect();
    let at = |k: u64| picks[(k % picks.len() as u64) as usize];
    let emails: Vec<String> = picks.iter().map(|i| common::email(*i)).collect();
    let email = |k: u64| &emails[(k % emails.len() as u64) as usize];
    read_group(
        c,
        e,
        "get_user_by_email",
        |k| {
            e.db.get_user_by_email(email(k))
                .expect("get_user_by_email")
                .is_some()
        },
        |k| common::sql_get_user_by_email(&e.sql_full, email(k)).is_some(),
        |k| common::redb_get_user(&e.raw, at(k) as u64),
    );
    let pa_ids: Vec<String> = picks
        .iter()
        .map(|i| common::provider_account_id(*i))
        .collect();
    let pa = |k: u64| &pa_ids[(k % pa_ids.len() as u64) as usize];
    read_group(
        c,
        e,
        "get_user_by_provider_account_id",
        |k| {
            e.db.get_user_by_provider_account_id("github", pa(k))
                .expect("get_user_by_provider_account_id")
                .is_some()
        },
        |k| common::sql_get_user_by_provider(&e.sql_full, "github", pa(k)).is_some(),
        |k| common::redb_get_user(&e.raw, at(k) as u64),
    );
}

// ---------------------------------------------------------------------------------------------
// Writes (criterion)

/// Raw redb's floor for a write: one insert of a new session record per commit, in the
/// session-shaped table (removed again, untimed, with the same durability so that no unflushed
/// work leaks into the timed commits).
fn redb_insert_floor(b: &mut criterion::Bencher<'_>, raw: &redb::Database, durable: bool) {
    b.iter_custom(|iters| {
        chunked(
            iters,
            |k| (0..k).map(|_| common::new_raw_hash()).collect::<Vec<_>>(),
            |hs| {
                for h in &hs {
                    common::redb_insert_record(raw, durable, h);
                }
                hs
            },
            |hs| common::redb_remove_records(raw, durable, &hs),
        )
    });
}

fn bench_signup(c: &mut Criterion, e: &Env<'_>) {
    let size = &e.ds.size.label;
    let mut g = c.benchmark_group("signup_create_user_link_account");
    for durable in [true, false] {
        let db = e.authdb(durable);
        g.bench_function(BenchmarkId::new(label("authdb", durable), size), |b| {
            b.iter_custom(|iters| {
                chunked(
                    iters,
                    |k| {
                        (0..k)
                            .map(|_| common::signup(common::next_id()))
                            .collect::<Vec<_>>()
                    },
                    |input| {
                        input
                            .iter()
                            .map(|(p, a)| {
                                db.write(|tx| {
                                    let u = tx.create_user(p)?;
                                    tx.link_account(&u.id, a)?;
                                    Ok(u.id)
                                })
                                .expect("sign-up")
                            })
                            .collect::<Vec<_>>()
                    },
                    |ids| {
                        db.write(|tx| ids.iter().try_for_each(|id| tx.delete_user(id)))
                            .expect("clean-up");
                    },
                )
            });
        });
        let sql = e.sqlite(durable);
        g.bench_function(BenchmarkId::new(label("sqlite", durable), size), |b| {
            b.iter_custom(|iters| {
                chunked(
                    iters,
                    |k| {
                        (0..k)
                            .map(|_| common::signup(common::next_id()))
                            .collect::<Vec<_>>()
                    },
                    |input| {
                        input
                            .iter()
                            .map(|(p, a)| common::sql_signup(sql, p, a))
                            .collect::<Vec<_>>()
                    },
                    |ids| common::sql_delete_users(sql, &ids),
                )
            });
        });
        // Floor: one insert of a new user (16-byte id, 120 bytes) in the user-sized table.
        g.bench_function(BenchmarkId::new(label("redb", durable), size), |b| {
            b.iter_custom(|iters| {
                chunked(
                    iters,
                    |k| {
                        (0..k)
                            .map(|_| u64::MAX - common::next_id())
                            .collect::<Vec<_>>()
                    },
                    |us| {
                        for u in &us {
                            common::redb_write(&e.raw, durable, common::RAW_USERS, |t| {
                                t.insert(
                                    common::raw_user_id(*u),
                                    common::RAW_USER_VALUE.as_slice(),
                                )
                                .expect("insert");
                            });
                        }
                        us
                    },
                    |us| {
                        common::redb_write(&e.raw, durable, common::RAW_USERS, |t| {
                            for u in &us {
                                t.remove(common::raw_user_id(*u)).expect("remove");
                            }
                        });
                    },
                )
            });
        });
    }
    g.finish();
}

fn bench_create_session(c: &mut Criterion, e: &Env<'_>) {
    let size = &e.ds.size.label;
    let mut g = c.benchmark_group("create_session");
    for durable in [true, false] {
        let db = e.authdb(durable);
        g.bench_function(BenchmarkId::new(label("authdb", durable), size), |b| {
            b.iter_custom(|iters| {
                chunked(
                    iters,
                    |k| {
                        (0..k)
                            .map(|_| e.user(common::next_id()).0)
                            .collect::<Vec<_>>()
                    },
                    |users| {
                        users
                            .iter()
                            .map(|u| db.create_session(u).expect("create_session").session_token)
                            .collect::<Vec<_>>()
                    },
                    |tokens| {
                        db.write(|tx| tokens.iter().try_for_each(|t| tx.delete_session(t)))
                            .expect("clean-up");
                    },
                )
            });
        });
        let sql = e.sqlite(durable);
        g.bench_function(BenchmarkId::new(label("sqlite", durable), size), |b| {
            b.iter_custom(|iters| {
                chunked(
                    iters,
                    |k| {
                        (0..k)
                            .map(|_| e.user(common::next_id()).1)
                            .collect::<Vec<_>>()
                    },
                    |users| {
                        users
                            .iter()
                            .map(|u| common::sql_create_session(sql, *u))
                            .collect::<Vec<_>>()
                    },
                    |tokens| common::sql_delete_sessions(sql, &tokens),
                )
            });
        });
        g.bench_function(BenchmarkId::new(label("redb", durable), size), |b| {
            redb_insert_floor(b, &e.raw, durable);
        });
    }
    g.finish();
}

fn bench_update_session(c: &mut Criterion, e: &Env<'_>) {
    let size = &e.ds.size.label;
    // The same sessions exist in both authdb files and in SQLite.
    let sessions = e.sessions(21, 5000);
    let mut g = c.benchmark_group("update_session");
    for durable in [true, false] {
        let db = e.authdb(durable);
        g.bench_function(BenchmarkId::new(label("authdb", durable), size), |b| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) % sessions.len();
                // Update age is zero: every call is due and moves the expiry (a write).
                let s = db.update_session(&sessions[i].1, false).expect("update");
                debug_assert!(s.is_some());
                black_box(s)
            });
        });
        let sql = e.sqlite(durable);
        g.bench_function(BenchmarkId::new(label("sqlite", durable), size), |b| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) % sessions.len();
                let ok = common::sql_update_session(sql, &sessions[i].1.session_token);
                debug_assert!(ok);
                black_box(ok)
            });
        });
        // Floor: overwrite the same sessions' records, one commit each.
        g.bench_function(BenchmarkId::new(label("redb", durable), size), |b| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) % sessions.len();
                common::redb_insert_record(
                    &e.raw,
                    durable,
                    &common::raw_hash(sessions[i].0 as u64),
                );
            });
        });
    }
    g.finish();
}

fn bench_delete_session(c: &mut Criterion, e: &Env<'_>) {
    let size = &e.ds.size.label;
    let mut g = c.benchmark_group("delete_session");
    for durable in [true, false] {
        let db = e.authdb(durable);
        g.bench_function(BenchmarkId::new(label("authdb", durable), size), |b| {
            b.iter_custom(|iters| {
                chunked(
                    iters,
                    |k| {
                        db.write(|tx| {
                            (0..k)
                                .map(|_| {
                                    tx.create_session(&e.user(common::next_id()).0)
                                        .map(|s| s.session_token)
                                })
                                .collect::<authdb::Result<Vec<_>>>()
                        })
                        .expect("set-up")
                    },
                    |tokens| {
                        for t in &tokens {
                            db.delete_session(t).expect("delete_session");
                        }
                    },
                    |()| {},
                )
            });
        });
        let sql = e.sqlite(durable);
        g.bench_function(BenchmarkId::new(label("sqlite", durable), size), |b| {
            b.iter_custom(|iters| {
                chunked(
                    iters,
                    |k| {
                        common::sql_insert_sessions(
                            sql,
                            k,
                            chrono::Utc::now() + common::MAX_AGE,
                            |j| e.user(j).1,
                        )
                    },
                    |tokens| {
                        for t in &tokens {
                            common::sql_delete_session(sql, t);
                        }
                    },
                    |()| {},
                )
            });
        });
        // Floor: remove one record per commit.
        g.bench_function(BenchmarkId::new(label("redb", durable), size), |b| {
            b.iter_custom(|iters| {
                chunked(
                    iters,
                    |k| {
                        let hs: Vec<_> = (0..k).map(|_| common::new_raw_hash()).collect();
                        common::redb_write(&e.raw, durable, common::RAW_SESSIONS, |t| {
                            for h in &hs {
                                t.insert(
                                    common::raw_record_key(h).as_slice(),
                                    common::RAW_RECORD.as_slice(),
                                )
                                .expect("insert");
                            }
                        });
                        hs
                    },
                    |hs| {
                        for h in &hs {
                            common::redb_remove_records(&e.raw, durable, std::slice::from_ref(h));
                        }
                    },
                    |()| {},
                )
            });
        });
    }
    g.finish();
}

/// One email sign-in: create the request, then use it (two commits).
fn bench_verification(c: &mut Criterion, e: &Env<'_>) {
    let size = &e.ds.size.label;
    let provider = EmailProvider::new("email", |_| Ok(()));
    let links = |k: u64| (0..k).map(|_| link(e)).collect::<Vec<_>>();
    let mut g = c.benchmark_group("verification_create_use");
    for durable in [true, false] {
        let db = e.authdb(durable);
        g.bench_function(BenchmarkId::new(label("authdb", durable), size), |b| {
            b.iter_custom(|iters| {
                chunked(
                    iters,
                    links,
                    |input| {
                        for (identifier, url, token) in &input {
                            db.create_verification_request(
                                identifier, url, token, SECRET, &provider,
                            )
                            .expect("create");
                            let used = db
                                .use_verification_request(identifier, token, SECRET)
                                .expect("use");
                            assert!(used.is_some());
                        }
                    },
                    |()| {},
                )
            });
        });
        let sql = e.sqlite(durable);
        g.bench_function(BenchmarkId::new(label("sqlite", durable), size), |b| {
            b.iter_custom(|iters| {
                chunked(
                    iters,
                    links,
                    |input| {
                        for (identifier, url, token) in &input {
                            black_box(url);
                            common::sql_create_verification(sql, identifier, token, SECRET);
                            assert!(common::sql_use_verification(sql, identifier, token, SECRET));
                        }
                    },
                    |()| {},
                )
            });
        });
        // Floor: two commits, an insert and a remove, in a table as large as authdb's
        // verification table.
        g.bench_function(BenchmarkId::new(label("redb", durable), size), |b| {
            b.iter(|| redb_verification_floor(&e.raw, durable));
        });
    }
    g.finish();
}

/// Raw redb's email sign-in: insert a new key, then remove it, two commits.
fn redb_verification_floor(raw: &redb::Database, durable: bool) {
    let h = common::new_raw_hash();
    common::redb_write(raw, durable, common::RAW_VERIFICATION, |t| {
        t.insert(h, common::RAW_VERIFICATION_VALUE.as_slice())
            .expect("insert");
    });
    common::redb_write(raw, durable, common::RAW_VERIFICATION, |t| {
        t.remove(h).expect("remove");
    });
}

/// authdb: [`PURGE_ROWS`] sessions created "31 days ago" (so expired a day ago) among the
/// live ones (untimed, in the handle's durability), then `purge_expired` (timed).
fn authdb_purge_round(e: &Env<'_>, db: &AuthDb) -> Duration {
    let clock = &e.ds.clock;
    clock.set_offset(-(common::MAX_AGE + chrono::TimeDelta::days(1)));
    db.write(|tx| {
        (0..PURGE_ROWS).try_for_each(|_| tx.create_session(&e.user(common::next_id()).0).map(drop))
    })
    .expect("set-up");
    clock.set_offset(chrono::TimeDelta::zero());
    let started = Instant::now();
    let stats = db.purge_expired().expect("purge");
    let t = started.elapsed();
    assert_eq!(stats.sessions, PURGE_ROWS);
    t
}

/// SQLite (the copy with an index on `expires`): [`PURGE_ROWS`] expired sessions inserted
/// (untimed), then one `DELETE ... WHERE expires < now` transaction (timed).
fn sqlite_purge_round(e: &Env<'_>, sql: &Connection) -> Duration {
    common::sql_insert_sessions(
        sql,
        PURGE_ROWS,
        chrono::Utc::now() - chrono::TimeDelta::days(1),
        |j| e.user(j).1,
    );
    let started = Instant::now();
    let n = common::sql_purge(sql);
    let t = started.elapsed();
    assert_eq!(n as u64, PURGE_ROWS);
    t
}

/// Raw redb: [`PURGE_ROWS`] new random record keys inserted (untimed, same durability), then
/// removed in commits of authdb's purge batch (timed): deleting as many random keys.
fn redb_purge_round(e: &Env<'_>, durable: bool) -> Duration {
    let hs: Vec<_> = (0..PURGE_ROWS).map(|_| common::new_raw_hash()).collect();
    common::redb_write(&e.raw, durable, common::RAW_SESSIONS, |t| {
        for h in &hs {
            t.insert(
                common::raw_record_key(h).as_slice(),
                common::RAW_RECORD.as_slice(),
            )
            .expect("insert");
        }
    });
    let started = Instant::now();
    for batch in hs.chunks(authdb::PURGE_BATCH) {
        common::redb_remove_records(&e.raw, durable, batch);
    }
    started.elapsed()
}

/// `purge_expired` with [`PURGE_ROWS`] expired sessions among the data set's live ones; the
/// throughput is rows, so criterion reports the cost per purged row.
fn bench_purge(c: &mut Criterion, e: &Env<'_>) {
    let size = &e.ds.size.label;
    let mut g = c.benchmark_group("purge_expired");
    g.throughput(Throughput::Elements(PURGE_ROWS));
    g.sampling_mode(SamplingMode::Flat);
    g.sample_size(10);
    for durable in [true, false] {
        let db = e.authdb(durable);
        g.bench_function(BenchmarkId::new(label("authdb", durable), size), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| authdb_purge_round(e, db)).sum());
        });
        let sql = e.sqlite_purge(durable);
        g.bench_function(BenchmarkId::new(label("sqlite", durable), size), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| sqlite_purge_round(e, sql)).sum());
        });
        g.bench_function(BenchmarkId::new(label("redb", durable), size), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| redb_purge_round(e, durable)).sum());
        });
    }
    g.finish();
}

// ---------------------------------------------------------------------------------------------
// Interleaved measures (the targets)

/// One engine of an interleaved measure: does one unit of work (its set-up untimed) and
/// returns the time per unit in µs.
type Unit<'a> = Box<dyn FnMut() -> f64 + 'a>;

struct Measure<'a> {
    op: &'static str,
    /// What one time is per: "lookup", "op" or "row".
    unit: &'static str,
    /// Durable measures run in blocks, with a flush-latency probe before and after each.
    durable: bool,
    rounds: usize,
    blocks: usize,
    /// Untimed rounds first (fills the caches).
    warmup: usize,
    /// The first engine is authdb; ratios are authdb ÷ each other engine.
    engines: Vec<(&'static str, Unit<'a>)>,
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// The median over rounds of `a[r] / b[r]`, for the rounds where `keep[r]`.
fn median_ratio(a: &[f64], b: &[f64], keep: &[bool]) -> Option<f64> {
    let mut r: Vec<f64> = a
        .iter()
        .zip(b)
        .zip(keep)
        .filter(|(_, k)| **k)
        .map(|((x, y), _)| x / y)
        .collect();
    (!r.is_empty()).then(|| common::quantile(&mut r, 0.5))
}

/// Runs a measure: in round `g` the engines go in the order `g, g+1, …` (mod their number).
/// Prints a summary and returns the measure as JSON (every time, and the probes per block).
fn run_measure(e: &Env<'_>, mut m: Measure<'_>) -> String {
    let size = &e.ds.size.label;
    let n = m.engines.len();
    for _ in 0..m.warmup {
        for (_, f) in &mut m.engines {
            f();
        }
    }
    let blocks = if m.durable {
        m.blocks.clamp(1, m.rounds.max(1))
    } else {
        1
    };
    let dir = e.ds.dir.path();
    let mut times: Vec<Vec<f64>> = vec![Vec::with_capacity(m.rounds); n];
    let mut probes = Vec::new();
    if m.durable {
        probes.push(common::probe(dir));
    }
    let mut block_rounds = Vec::new();
    let mut g = 0;
    for b in 0..blocks {
        let rounds = m.rounds / blocks + usize::from(b < m.rounds % blocks);
        for _ in 0..rounds {
            for k in 0..n {
                let engine = (g + k) % n;
                times[engine].push((m.engines[engine].1)());
            }
            g += 1;
        }
        block_rounds.push(rounds);
        if m.durable {
            probes.push(common::probe(dir));
        }
    }
    let mut keep = Vec::new();
    let mut blocks_json = Vec::new();
    let mut agreeing = 0;
    for (b, rounds) in block_rounds.iter().enumerate() {
        let ok = !m.durable || probes[b].agrees(&probes[b + 1]);
        agreeing += usize::from(ok);
        keep.extend(std::iter::repeat_n(ok, *rounds));
        if m.durable {
            blocks_json.push(format!(
                "{{\"rounds\":{rounds},\"before\":{},\"after\":{}}}",
                probes[b].json(),
                probes[b + 1].json()
            ));
        }
    }
    let mut line = format!(
        "authdb-bench [{size}] interleaved {}{} (µs per {}, p50):",
        if m.durable { "durable " } else { "" },
        m.op,
        m.unit
    );
    for (k, (name, _)) in m.engines.iter().enumerate() {
        let mut t = times[k].clone();
        let _ = write!(line, " {name} {:.2};", common::quantile(&mut t, 0.5));
    }
    for k in 1..n {
        let r = median_ratio(&times[0], &times[k], &keep);
        let _ = write!(
            line,
            " authdb÷{} {};",
            m.engines[k].0,
            r.map_or("—".into(), |r| format!("{r:.2}"))
        );
    }
    if m.durable {
        let p: Vec<String> = probes.iter().map(|p| format!("{:.0}", p.p50)).collect();
        let _ = write!(
            line,
            " probes p50 µs [{}], {agreeing}/{blocks} blocks agree",
            p.join(", ")
        );
    }
    println!("{line}");
    let names: Vec<String> = m.engines.iter().map(|(n, _)| format!("\"{n}\"")).collect();
    let times: Vec<String> = times.iter().map(|t| common::json_array(t, 3)).collect();
    format!(
        "{{\"op\":\"{}\",\"unit\":\"{}\",\"durable\":{},\"engines\":[{}],\"times\":[{}],\
         \"blocks\":[{}]}}",
        m.op,
        m.unit,
        m.durable,
        names.join(","),
        times.join(","),
        blocks_json.join(",")
    )
}

/// A read engine: `READ_BATCH` calls of `f` with the next keys of its stream, timed together;
/// returns µs per lookup.
fn read_batch<'a>(mut f: impl FnMut(u64) + 'a) -> Unit<'a> {
    let mut k = 0u64;
    Box::new(move || {
        let started = Instant::now();
        for _ in 0..READ_BATCH {
            k += 1;
            f(k);
        }
        us(started.elapsed()) / READ_BATCH as f64
    })
}

/// Times one call.
fn timed(f: impl FnOnce()) -> f64 {
    let started = Instant::now();
    f();
    us(started.elapsed())
}

/// The interleaved measures of one data set; saved for `benches/report.py`.
fn interleaved(e: &Env<'_>) {
    // Under `cargo test --benches` (a smoke test), a short pass through the same code.
    let full = common::benchmarking();
    let rounds = common::env_usize("AUTHDB_BENCH_ROUNDS", if full { 300 } else { 20 }).max(1);
    let purge_rounds =
        common::env_usize("AUTHDB_BENCH_PURGE_ROUNDS", if full { 12 } else { 2 }).max(1);
    let blocks = 6;
    let warm = 5;
    let size = &e.ds.size.label;
    let tokens = &e.ds.tokens;
    let n = tokens.len();
    let raw = &e.raw;
    let mut out = Vec::new();

    // get_session: batches of READ_BATCH lookups drawn uniformly from all sessions.
    {
        let seed = READ_SEED + 1;
        out.push(run_measure(
            e,
            Measure {
                op: "get_session",
                unit: "lookup",
                durable: false,
                rounds,
                blocks: 1,
                warmup: 150,
                engines: vec![
                    (
                        "authdb",
                        read_batch(|k| {
                            let s = e.db.get_session(tokens.pick(seed, k)).expect("get");
                            debug_assert!(s.is_some());
                            black_box(s);
                        }),
                    ),
                    (
                        "sqlite",
                        read_batch(|k| {
                            let s = common::sql_get_session(&e.sql_full, tokens.pick(seed, k));
                            debug_assert!(s.is_some());
                            black_box(s);
                        }),
                    ),
                    (
                        "redb_get",
                        read_batch(|k| {
                            let h = common::raw_hash(common::uniform(seed, k, n) as u64);
                            let len = common::redb_get_record(raw, &h);
                            debug_assert!(len > 0);
                            black_box(len);
                        }),
                    ),
                ],
            },
        ));
    }

    // create_session: one durable commit each; what was made is removed afterwards.
    {
        let made = RefCell::new((Vec::new(), Vec::new(), Vec::new()));
        out.push(run_measure(
            e,
            Measure {
                op: "create_session",
                unit: "op",
                durable: true,
                rounds,
                blocks,
                warmup: warm,
                engines: vec![
                    (
                        "authdb",
                        Box::new(|| {
                            let u = e.user(common::next_id()).0;
                            let mut s = None;
                            let t = timed(|| s = Some(e.db.create_session(&u).expect("create")));
                            made.borrow_mut().0.push(s.expect("made").session_token);
                            t
                        }),
                    ),
                    (
                        "sqlite_full",
                        Box::new(|| {
                            let u = e.user(common::next_id()).1;
                            let mut s = String::new();
                            let t = timed(|| s = common::sql_create_session(&e.sql_full, u));
                            made.borrow_mut().1.push(s);
                            t
                        }),
                    ),
                    (
                        "redb_insert",
                        Box::new(|| {
                            let h = common::new_raw_hash();
                            let t = timed(|| common::redb_insert_record(raw, true, &h));
                            made.borrow_mut().2.push(h);
                            t
                        }),
                    ),
                ],
            },
        ));
        let (a, s, r) = made.into_inner();
        e.db.write(|tx| a.iter().try_for_each(|t| tx.delete_session(t)))
            .expect("clean-up");
        common::sql_delete_sessions(&e.sql_full, &s);
        common::redb_remove_records(raw, true, &r);
    }

    // update_session (an extension: update age zero), each session once; the floors are the
    // one-insert commit of create_session and an overwrite of the same session's record.
    {
        let sessions = e.sessions(31, rounds + warm + 1);
        let made = RefCell::new(Vec::new());
        let next = |i: &mut usize| {
            *i = (*i + 1) % sessions.len();
            &sessions[*i]
        };
        let (mut ia, mut is, mut io) = (0, 0, 0);
        out.push(run_measure(
            e,
            Measure {
                op: "update_session",
                unit: "op",
                durable: true,
                rounds,
                blocks,
                warmup: warm,
                engines: vec![
                    (
                        "authdb",
                        Box::new(|| {
                            let s = &next(&mut ia).1;
                            timed(|| {
                                assert!(e.db.update_session(s, false).expect("update").is_some());
                            })
                        }),
                    ),
                    (
                        "sqlite_full",
                        Box::new(|| {
                            let t = &next(&mut is).1.session_token;
                            timed(|| assert!(common::sql_update_session(&e.sql_full, t)))
                        }),
                    ),
                    (
                        "redb_insert",
                        Box::new(|| {
                            let h = common::new_raw_hash();
                            let t = timed(|| common::redb_insert_record(raw, true, &h));
                            made.borrow_mut().push(h);
                            t
                        }),
                    ),
                    (
                        "redb_overwrite",
                        Box::new(|| {
                            let h = common::raw_hash(next(&mut io).0 as u64);
                            timed(|| common::redb_insert_record(raw, true, &h))
                        }),
                    ),
                ],
            },
        ));
        common::redb_remove_records(raw, true, &made.into_inner());
    }

    // delete_session: the sessions (records) to delete are made first, untimed.
    {
        let k = rounds + warm;
        let mut doomed_a =
            e.db.write(|tx| {
                (0..k)
                    .map(|_| {
                        tx.create_session(&e.user(common::next_id()).0)
                            .map(|s| s.session_token)
                    })
                    .collect::<authdb::Result<Vec<_>>>()
            })
            .expect("set-up");
        let mut doomed_s = common::sql_insert_sessions(
            &e.sql_full,
            k as u64,
            chrono::Utc::now() + common::MAX_AGE,
            |j| e.user(j).1,
        );
        let mut doomed_r: Vec<_> = (0..k).map(|_| common::new_raw_hash()).collect();
        common::redb_write(raw, true, common::RAW_SESSIONS, |t| {
            for h in &doomed_r {
                t.insert(
                    common::raw_record_key(h).as_slice(),
                    common::RAW_RECORD.as_slice(),
                )
                .expect("insert");
            }
        });
        out.push(run_measure(
            e,
            Measure {
                op: "delete_session",
                unit: "op",
                durable: true,
                rounds,
                blocks,
                warmup: warm,
                engines: vec![
                    (
                        "authdb",
                        Box::new(|| {
                            let t = doomed_a.pop().expect("a session");
                            timed(|| e.db.delete_session(&t).expect("delete"))
                        }),
                    ),
                    (
                        "sqlite_full",
                        Box::new(|| {
                            let t = doomed_s.pop().expect("a session");
                            timed(|| common::sql_delete_session(&e.sql_full, &t))
                        }),
                    ),
                    (
                        "redb_remove",
                        Box::new(|| {
                            let h = doomed_r.pop().expect("a key");
                            timed(|| common::redb_remove_records(raw, true, &[h]))
                        }),
                    ),
                ],
            },
        ));
    }

    // Sign-up: create_user + link_account in one transaction; floor: one new user record.
    {
        let made = RefCell::new((Vec::new(), Vec::new(), Vec::new()));
        out.push(run_measure(
            e,
            Measure {
                op: "signup_create_user_link_account",
                unit: "op",
                durable: true,
                rounds,
                blocks,
                warmup: warm,
                engines: vec![
                    (
                        "authdb",
                        Box::new(|| {
                            let (p, a) = common::signup(common::next_id());
                            let mut id = None;
                            let t = timed(|| {
                                id = Some(
                                    e.db.write(|tx| {
                                        let u = tx.create_user(&p)?;
                                        tx.link_account(&u.id, &a)?;
                                        Ok(u.id)
                                    })
                                    .expect("sign-up"),
                                );
                            });
                            made.borrow_mut().0.extend(id);
                            t
                        }),
                    ),
                    (
                        "sqlite_full",
                        Box::new(|| {
                            let (p, a) = common::signup(common::next_id());
                            let mut id = 0;
                            let t = timed(|| id = common::sql_signup(&e.sql_full, &p, &a));
                            made.borrow_mut().1.push(id);
                            t
                        }),
                    ),
                    (
                        "redb_insert",
                        Box::new(|| {
                            let u = u64::MAX - common::next_id();
                            let t = timed(|| {
                                common::redb_write(raw, true, common::RAW_USERS, |t| {
                                    t.insert(
                                        common::raw_user_id(u),
                                        common::RAW_USER_VALUE.as_slice(),
                                    )
                                    .expect("insert");
                                });
                            });
                            made.borrow_mut().2.push(u);
                            t
                        }),
                    ),
                ],
            },
        ));
        let (a, s, r) = made.into_inner();
        e.db.write(|tx| a.iter().try_for_each(|id| tx.delete_user(id)))
            .expect("clean-up");
        common::sql_delete_users(&e.sql_full, &s);
        common::redb_write(raw, true, common::RAW_USERS, |t| {
            for u in &r {
                t.remove(common::raw_user_id(*u)).expect("remove");
            }
        });
    }

    // Email sign-in: create the request, use it (two commits each).
    {
        let provider = EmailProvider::new("email", |_| Ok(()));
        out.push(run_measure(
            e,
            Measure {
                op: "verification_create_use",
                unit: "op",
                durable: true,
                rounds,
                blocks,
                warmup: warm,
                engines: vec![
                    (
                        "authdb",
                        Box::new(|| {
                            let (i, url, t) = link(e);
                            timed(|| {
                                e.db.create_verification_request(&i, &url, &t, SECRET, &provider)
                                    .expect("create");
                                let used = e.db.use_verification_request(&i, &t, SECRET);
                                assert!(used.expect("use").is_some());
                            })
                        }),
                    ),
                    (
                        "sqlite_full",
                        Box::new(|| {
                            let (i, _url, t) = link(e);
                            timed(|| {
                                common::sql_create_verification(&e.sql_full, &i, &t, SECRET);
                                assert!(common::sql_use_verification(&e.sql_full, &i, &t, SECRET));
                            })
                        }),
                    ),
                    (
                        "redb_insert_remove",
                        Box::new(|| timed(|| redb_verification_floor(raw, true))),
                    ),
                ],
            },
        ));
    }

    // Purge: PURGE_ROWS expired rows among the live ones, µs per purged row.
    {
        let per_row = |d: Duration| us(d) / PURGE_ROWS as f64;
        out.push(run_measure(
            e,
            Measure {
                op: "purge_expired",
                unit: "row",
                durable: true,
                rounds: purge_rounds,
                blocks: 3,
                warmup: 1,
                engines: vec![
                    ("authdb", Box::new(|| per_row(authdb_purge_round(e, &e.db)))),
                    (
                        "sqlite_full_indexed",
                        Box::new(|| per_row(sqlite_purge_round(e, &e.purge_full))),
                    ),
                    (
                        "redb_delete_random",
                        Box::new(|| per_row(redb_purge_round(e, true))),
                    ),
                ],
            },
        ));
    }

    common::save_meta(
        &format!("ops-{size}-interleaved"),
        &format!(
            "{{\"label\":\"{size}\",\"sessions\":{n},\"rounds\":{rounds},\
             \"purge_rounds\":{purge_rounds},\"read_batch\":{READ_BATCH},\
             \"purge_rows\":{PURGE_ROWS},\"verification_rows\":{},\"measures\":[{}]}}",
            e.verification_rows,
            out.join(",")
        ),
    );
}

/// Set in the child process of [`authdb_alone`]: the data set's directory and size label.
const ALONE_DIR: &str = "AUTHDB_BENCH_ALONE_DIR";
const ALONE_LABEL: &str = "AUTHDB_BENCH_ALONE_LABEL";

/// authdb's own memory on this data set, measured in a fresh process (this bench binary again,
/// see [`run_alone_if_child`]), so that nothing else this process allocated counts.
fn authdb_alone(ds: &Dataset) {
    let status = std::process::Command::new(std::env::current_exe().expect("current exe"))
        .env(ALONE_DIR, ds.dir.path())
        .env(ALONE_LABEL, &ds.size.label)
        .status()
        .expect("run the memory child");
    assert!(status.success(), "memory child failed: {status}");
}

/// In the child of [`authdb_alone`]: the process's resident set before opening the data set's
/// authdb file and its peak while one handle serves 20,000 uniformly drawn `get_session`s,
/// 10,000 lookups by email and by provider account, and a batch of 1,000 writes (deleted
/// again). Returns whether this process was that child.
fn run_alone_if_child() -> bool {
    let Ok(dir) = std::env::var(ALONE_DIR) else {
        return false;
    };
    let label = std::env::var(ALONE_LABEL).expect(ALONE_LABEL);
    let dir = std::path::Path::new(&dir);
    let (user_ids, tokens) = common::read_ids_and_tokens(dir);
    let n_users = user_ids.len();
    let clock = std::sync::Arc::new(common::OffsetClock::default());
    let before = common::proc_status_kb("VmRSS").unwrap_or(0);
    common::reset_peak_rss();
    {
        let db = common::authdb_builder(&clock, Durability::Immediate)
            .open(common::authdb_file(dir))
            .expect("open authdb");
        for k in 0..20_000 {
            black_box(db.get_session(tokens.pick(3, k)).expect("get_session"));
        }
        for k in 0..10_000 {
            let i = common::uniform(9, k, n_users);
            black_box(db.get_user_by_email(&common::email(i)).expect("get"));
            let pa = common::provider_account_id(i);
            black_box(
                db.get_user_by_provider_account_id("github", &pa)
                    .expect("get"),
            );
        }
        let made = db
            .write(|tx| {
                (0..1000)
                    .map(|k| {
                        let u = &user_ids[common::uniform(10, k, n_users)];
                        tx.create_session(u).map(|s| s.session_token)
                    })
                    .collect::<authdb::Result<Vec<_>>>()
            })
            .expect("writes");
        db.write(|tx| made.iter().try_for_each(|t| tx.delete_session(t)))
            .expect("clean-up");
    }
    let peak = common::proc_status_kb("VmHWM").unwrap_or(0);
    common::report_memory("ops", &format!("{label}-authdb-alone"), before, peak);
    true
}

fn main() {
    if common::run_loader_if_child() || run_alone_if_child() {
        return;
    }
    common::start_run("ops");
    let mut c = common::criterion();
    let with_criterion = common::env_flag("AUTHDB_BENCH_CRITERION", true);
    for size in common::sizes() {
        let ds = Dataset::load(&size, "ops", true);
        authdb_alone(&ds);
        common::reset_peak_rss();
        {
            let env = Env::open(&ds);
            // The disk's flush latency before each durable criterion group.
            let probe = |group: &str| {
                common::fsync_probe(ds.dir.path(), "ops", &format!("{}-{group}", size.label));
            };
            if with_criterion {
                bench_reads(&mut c, &env);
                probe("signup");
                bench_signup(&mut c, &env);
                probe("create_session");
                bench_create_session(&mut c, &env);
                probe("update_session");
                bench_update_session(&mut c, &env);
                probe("delete_session");
                bench_delete_session(&mut c, &env);
                probe("verification");
                bench_verification(&mut c, &env);
                probe("purge");
                bench_purge(&mut c, &env);
            }
            probe("interleaved");
            interleaved(&env);
            probe("end");
        }
        common::report_rss("ops", &format!("{}-bench", size.label));
    }
    c.final_summary();
    common::end_run("ops");
}
