//! Per-operation benches: authdb beside SQLite (NextAuth v3's TypeORM schema, WAL, prepared
//! statements) and raw redb (the floor authdb sits on), on the same data, in one criterion group
//! per operation.
//!
//! ```text
//! cargo bench --bench ops                          # 10k sessions
//! AUTHDB_BENCH_LARGE=1 cargo bench --bench ops     # 10k and 1M sessions
//! AUTHDB_BENCH_LARGE=1 AUTHDB_BENCH_SMALL=0 cargo bench --bench ops   # 1M only
//! ```
//!
//! Ids: `<operation>/<engine>_<durability>/<size>`. Durable: authdb `Durability::Immediate`,
//! SQLite `synchronous=FULL`, redb `Durability::Immediate`; non-durable: authdb
//! `Durability::None`, SQLite `synchronous=NORMAL`, redb `Durability::None`. Reads name no
//! durability. See BENCHMARKS.md for the results.
#![allow(clippy::cast_possible_wrap, clippy::cast_precision_loss)]

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use authdb::prelude::*;
use authdb::{AuthDb, Durability, EmailProvider, Session};
use common::{Dataset, RAW_VALUE};
use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use rusqlite::Connection;

/// Iterations between untimed clean-ups, so created rows never pile up in the data set.
const CHUNK: u64 = 1000;
/// Expired sessions purged per iteration of the purge bench.
const PURGE_ROWS: u64 = 2500;
const SECRET: &str = "bench-app-secret-0123456789abcdef";

/// Everything one size's benches use, opened with the durability under test.
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
    raw: redb::Database,
    /// Sampled users: (authdb id, SQLite id).
    users: Vec<(authdb::UserId, i64)>,
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
        let raw = common::open_redb(&ds.redb_path());
        common::sanity(ds, &db, &sql_full, &raw);
        common::sanity(ds, &db_nd, &sql_normal, &raw);
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
            raw,
            users,
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

    fn user(&self, k: u64) -> (authdb::UserId, i64) {
        self.users[(k % self.users.len() as u64) as usize]
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

// ---------------------------------------------------------------------------------------------
// Reads

/// Runs `f` on the next of `items` (cycled) per iteration.
fn cycle<T>(b: &mut criterion::Bencher<'_>, items: &[T], mut f: impl FnMut(&T)) {
    let mut i = 0;
    b.iter(|| {
        i = (i + 1) % items.len();
        f(&items[i]);
    });
}

/// One read operation: authdb's and SQLite's lookups (each returns whether it found the row)
/// side by side in one criterion group, next to raw redb's single `get` (the floor).
fn read_group<T, A, S>(
    c: &mut Criterion,
    e: &Env<'_>,
    name: &str,
    items: &[T],
    authdb: A,
    sqlite: S,
) where
    A: Fn(&T) -> bool,
    S: Fn(&T) -> bool,
{
    let size = e.ds.size.label;
    let keys = &e.ds.raw_keys;
    let mut g = c.benchmark_group(name);
    g.bench_function(BenchmarkId::new("authdb", size), |b| {
        cycle(b, items, |x| {
            // Evaluated in release builds too; debug builds also check it was found.
            let found = black_box(authdb(x));
            debug_assert!(found);
        });
    });
    g.bench_function(BenchmarkId::new("sqlite", size), |b| {
        cycle(b, items, |x| {
            // Evaluated in release builds too; debug builds also check it was found.
            let found = black_box(sqlite(x));
            debug_assert!(found);
        });
    });
    g.bench_function(BenchmarkId::new("redb_get", size), |b| {
        cycle(b, keys, |k| {
            black_box(common::redb_get(&e.raw, k));
        });
    });
    g.finish();
}

fn bench_reads(c: &mut Criterion, e: &Env<'_>) {
    read_group(
        c,
        e,
        "get_session",
        &e.ds.tokens,
        |t| e.db.get_session(t).expect("get_session").is_some(),
        |t| common::sql_get_session(&e.sql_full, t).is_some(),
    );
    let emails: Vec<String> =
        e.ds.sample_users(5)
            .into_iter()
            .map(common::email)
            .collect();
    read_group(
        c,
        e,
        "get_user_by_email",
        &emails,
        |m| {
            e.db.get_user_by_email(m)
                .expect("get_user_by_email")
                .is_some()
        },
        |m| common::sql_get_user_by_email(&e.sql_full, m).is_some(),
    );
    let pa_ids: Vec<String> =
        e.ds.sample_users(6)
            .into_iter()
            .map(common::provider_account_id)
            .collect();
    read_group(
        c,
        e,
        "get_user_by_provider_account_id",
        &pa_ids,
        |p| {
            e.db.get_user_by_provider_account_id("github", p)
                .expect("get_user_by_provider_account_id")
                .is_some()
        },
        |p| common::sql_get_user_by_provider(&e.sql_full, "github", p).is_some(),
    );
}

// ---------------------------------------------------------------------------------------------
// Writes

/// Raw redb's floor for a write: one insert of a new 32-byte key per commit (removed again,
/// untimed).
fn redb_insert_floor(b: &mut criterion::Bencher<'_>, raw: &redb::Database, durable: bool) {
    b.iter_custom(|iters| {
        chunked(
            iters,
            |k| {
                (0..k)
                    .map(|_| common::raw_key(u64::MAX - common::next_id()))
                    .collect::<Vec<_>>()
            },
            |keys| {
                for k in &keys {
                    common::redb_write(raw, durable, |t| {
                        t.insert(k, RAW_VALUE.as_slice()).expect("insert");
                    });
                }
                keys
            },
            |keys| {
                common::redb_write(raw, false, |t| {
                    for k in &keys {
                        t.remove(k).expect("remove");
                    }
                });
            },
        )
    });
}

fn bench_signup(c: &mut Criterion, e: &Env<'_>) {
    let size = e.ds.size.label;
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
        g.bench_function(BenchmarkId::new(label("redb", durable), size), |b| {
            redb_insert_floor(b, &e.raw, durable);
        });
    }
    g.finish();
}

fn bench_create_session(c: &mut Criterion, e: &Env<'_>) {
    let size = e.ds.size.label;
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
    let size = e.ds.size.label;
    // The same sessions exist in both authdb files and in SQLite.
    let sessions: Vec<Session> =
        e.ds.tokens
            .iter()
            .take(2000)
            .map(|t| e.db.get_session(t).expect("get").expect("live"))
            .collect();
    let mut g = c.benchmark_group("update_session");
    for durable in [true, false] {
        let db = e.authdb(durable);
        g.bench_function(BenchmarkId::new(label("authdb", durable), size), |b| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) % sessions.len();
                // Update age is zero: every call is due and moves the expiry (a write).
                let s = db.update_session(&sessions[i], false).expect("update");
                debug_assert!(s.is_some());
                black_box(s)
            });
        });
        let sql = e.sqlite(durable);
        g.bench_function(BenchmarkId::new(label("sqlite", durable), size), |b| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) % sessions.len();
                let ok = common::sql_update_session(sql, &sessions[i].session_token);
                debug_assert!(ok);
                black_box(ok)
            });
        });
        // Floor: overwrite an existing key, one commit each.
        g.bench_function(BenchmarkId::new(label("redb", durable), size), |b| {
            let keys = &e.ds.raw_keys;
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) % keys.len();
                common::redb_write(&e.raw, durable, |t| {
                    t.insert(&keys[i], RAW_VALUE.as_slice()).expect("insert");
                });
            });
        });
    }
    g.finish();
}

fn bench_delete_session(c: &mut Criterion, e: &Env<'_>) {
    let size = e.ds.size.label;
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
        // Floor: remove one key per commit.
        g.bench_function(BenchmarkId::new(label("redb", durable), size), |b| {
            b.iter_custom(|iters| {
                chunked(
                    iters,
                    |k| {
                        let keys: Vec<_> = (0..k)
                            .map(|_| common::raw_key(u64::MAX - common::next_id()))
                            .collect();
                        common::redb_write(&e.raw, false, |t| {
                            for key in &keys {
                                t.insert(key, RAW_VALUE.as_slice()).expect("insert");
                            }
                        });
                        keys
                    },
                    |keys| {
                        for key in &keys {
                            common::redb_write(&e.raw, durable, |t| {
                                t.remove(key).expect("remove");
                            });
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
    let size = e.ds.size.label;
    let provider = EmailProvider::new("email", |_| Ok(()));
    let emails: Vec<String> =
        e.ds.sample_users(7)
            .into_iter()
            .map(common::email)
            .collect();
    let links = |k: u64| {
        (0..k)
            .map(|_| {
                let n = common::next_id();
                let identifier = &emails[(n % emails.len() as u64) as usize];
                let token = common::random_token();
                let url = format!(
                    "https://app.example.com/api/auth/callback/email?email={identifier}&token={token}"
                );
                (identifier.clone(), url, token)
            })
            .collect::<Vec<_>>()
    };
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
        // Floor: two commits, an insert and a remove.
        g.bench_function(BenchmarkId::new(label("redb", durable), size), |b| {
            b.iter(|| {
                let key = common::raw_key(u64::MAX - common::next_id());
                common::redb_write(&e.raw, durable, |t| {
                    t.insert(&key, RAW_VALUE.as_slice()).expect("insert");
                });
                common::redb_write(&e.raw, durable, |t| {
                    t.remove(&key).expect("remove");
                });
            });
        });
    }
    g.finish();
}

/// `purge_expired` with [`PURGE_ROWS`] expired sessions among the data set's live ones; the
/// throughput is rows, so criterion reports the cost per purged row.
fn bench_purge(c: &mut Criterion, e: &Env<'_>) {
    let size = e.ds.size.label;
    let mut g = c.benchmark_group("purge_expired");
    g.throughput(Throughput::Elements(PURGE_ROWS));
    g.sampling_mode(SamplingMode::Flat);
    g.sample_size(10);
    let clock = &e.ds.clock;
    for durable in [true, false] {
        let db = e.authdb(durable);
        g.bench_function(BenchmarkId::new(label("authdb", durable), size), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    // Sessions created "31 days ago" expired a day ago.
                    clock.set_offset(-(common::MAX_AGE + chrono::TimeDelta::days(1)));
                    db.write(|tx| {
                        (0..PURGE_ROWS).try_for_each(|_| {
                            tx.create_session(&e.user(common::next_id()).0).map(drop)
                        })
                    })
                    .expect("set-up");
                    clock.set_offset(chrono::TimeDelta::zero());
                    let started = Instant::now();
                    let stats = db.purge_expired().expect("purge");
                    total += started.elapsed();
                    assert_eq!(stats.sessions, PURGE_ROWS);
                }
                total
            });
        });
        let sql = e.sqlite(durable);
        g.bench_function(BenchmarkId::new(label("sqlite", durable), size), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    common::sql_insert_sessions(
                        sql,
                        PURGE_ROWS,
                        chrono::Utc::now() - chrono::TimeDelta::days(1),
                        |j| e.user(j).1,
                    );
                    let started = Instant::now();
                    let n = common::sql_purge(sql);
                    total += started.elapsed();
                    assert_eq!(n as u64, PURGE_ROWS);
                }
                total
            });
        });
        // Floor: remove as many known keys, in commits of authdb's batch size.
        g.bench_function(BenchmarkId::new(label("redb", durable), size), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let keys: Vec<_> = (0..PURGE_ROWS)
                        .map(|_| common::raw_key(u64::MAX - common::next_id()))
                        .collect();
                    common::redb_write(&e.raw, false, |t| {
                        for key in &keys {
                            t.insert(key, RAW_VALUE.as_slice()).expect("insert");
                        }
                    });
                    let started = Instant::now();
                    for batch in keys.chunks(authdb::PURGE_BATCH) {
                        common::redb_write(&e.raw, durable, |t| {
                            for key in batch {
                                t.remove(key).expect("remove");
                            }
                        });
                    }
                    total += started.elapsed();
                }
                total
            });
        });
    }
    g.finish();
}

/// Rounds of [`interleaved_durable`].
const ROUNDS: usize = 300;

/// One timed durable operation of one engine (set-up inside is untimed).
type Timed<'a> = Box<dyn FnMut() -> Duration + 'a>;

/// Durable writes measured interleaved: in every round each engine does one operation, in a
/// rotating order, so that drift in the disk's flush latency (large on this virtual disk)
/// hits the three engines alike. Prints and saves the median and 90th percentile of the
/// single-operation latencies. This complements criterion's numbers, which measure one engine
/// after another and so compare different moments of the disk.
fn interleaved_durable(e: &Env<'_>) {
    let size = e.ds.size.label;
    let provider = EmailProvider::new("email", |_| Ok(()));
    let timed = |f: &mut dyn FnMut()| {
        let started = Instant::now();
        f();
        started.elapsed()
    };
    let new_key = || common::raw_key(u64::MAX - common::next_id());
    let redb_insert = || -> Timed<'_> {
        Box::new(move || {
            let k = new_key();
            timed(&mut || {
                common::redb_write(&e.raw, true, |t| {
                    t.insert(&k, RAW_VALUE.as_slice()).expect("insert");
                });
            })
        })
    };
    let sessions: Vec<Session> =
        e.ds.tokens
            .iter()
            .take(ROUNDS)
            .map(|t| e.db.get_session(t).expect("get").expect("live"))
            .collect();
    let doomed_authdb = std::cell::RefCell::new(
        e.db.write(|tx| {
            (0..ROUNDS)
                .map(|j| {
                    tx.create_session(&e.user(j as u64).0)
                        .map(|s| s.session_token)
                })
                .collect::<authdb::Result<Vec<_>>>()
        })
        .expect("set-up"),
    );
    let doomed_sqlite = std::cell::RefCell::new(common::sql_insert_sessions(
        &e.sql_full,
        ROUNDS as u64,
        chrono::Utc::now() + common::MAX_AGE,
        |j| e.user(j).1,
    ));
    let doomed_redb: std::cell::RefCell<Vec<[u8; 32]>> =
        std::cell::RefCell::new((0..ROUNDS).map(|_| new_key()).collect());
    common::redb_write(&e.raw, true, |t| {
        for k in doomed_redb.borrow().iter() {
            t.insert(k, RAW_VALUE.as_slice()).expect("insert");
        }
    });
    let link = || {
        let n = common::next_id();
        let identifier = common::email((n % e.ds.n_users as u64) as usize);
        let token = common::random_token();
        let url = format!(
            "https://app.example.com/api/auth/callback/email?email={identifier}&token={token}"
        );
        (identifier, url, token)
    };
    let mut upd = (0usize, 0usize, 0usize);
    let ops: Vec<(&str, [Timed<'_>; 3])> = vec![
        (
            "signup_create_user_link_account",
            [
                Box::new(|| {
                    let (p, a) = common::signup(common::next_id());
                    timed(&mut || {
                        e.db.write(|tx| {
                            let u = tx.create_user(&p)?;
                            tx.link_account(&u.id, &a).map(drop)
                        })
                        .expect("sign-up");
                    })
                }),
                Box::new(|| {
                    let (p, a) = common::signup(common::next_id());
                    timed(&mut || {
                        common::sql_signup(&e.sql_full, &p, &a);
                    })
                }),
                redb_insert(),
            ],
        ),
        (
            "create_session",
            [
                Box::new(|| {
                    let u = e.user(common::next_id()).0;
                    timed(&mut || {
                        e.db.create_session(&u).expect("create_session");
                    })
                }),
                Box::new(|| {
                    let u = e.user(common::next_id()).1;
                    timed(&mut || {
                        common::sql_create_session(&e.sql_full, u);
                    })
                }),
                redb_insert(),
            ],
        ),
        (
            "update_session",
            [
                Box::new(|| {
                    upd.0 = (upd.0 + 1) % sessions.len();
                    let s = &sessions[upd.0];
                    timed(&mut || {
                        assert!(e.db.update_session(s, false).expect("update").is_some());
                    })
                }),
                Box::new(|| {
                    upd.1 = (upd.1 + 1) % sessions.len();
                    let t = &sessions[upd.1].session_token;
                    timed(&mut || {
                        assert!(common::sql_update_session(&e.sql_full, t));
                    })
                }),
                Box::new(|| {
                    upd.2 = (upd.2 + 1) % e.ds.raw_keys.len();
                    let k = e.ds.raw_keys[upd.2];
                    timed(&mut || {
                        common::redb_write(&e.raw, true, |t| {
                            t.insert(&k, RAW_VALUE.as_slice()).expect("insert");
                        });
                    })
                }),
            ],
        ),
        (
            "delete_session",
            [
                Box::new(|| {
                    let t = doomed_authdb.borrow_mut().pop().expect("a session");
                    timed(&mut || e.db.delete_session(&t).expect("delete"))
                }),
                Box::new(|| {
                    let t = doomed_sqlite.borrow_mut().pop().expect("a session");
                    timed(&mut || common::sql_delete_session(&e.sql_full, &t))
                }),
                Box::new(|| {
                    let k = doomed_redb.borrow_mut().pop().expect("a key");
                    timed(&mut || {
                        common::redb_write(&e.raw, true, |t| {
                            t.remove(&k).expect("remove");
                        });
                    })
                }),
            ],
        ),
        (
            "verification_create_use",
            [
                Box::new(|| {
                    let (i, url, t) = link();
                    timed(&mut || {
                        e.db.create_verification_request(&i, &url, &t, SECRET, &provider)
                            .expect("create");
                        assert!(
                            e.db.use_verification_request(&i, &t, SECRET)
                                .expect("use")
                                .is_some()
                        );
                    })
                }),
                Box::new(|| {
                    let (i, _url, t) = link();
                    timed(&mut || {
                        common::sql_create_verification(&e.sql_full, &i, &t, SECRET);
                        assert!(common::sql_use_verification(&e.sql_full, &i, &t, SECRET));
                    })
                }),
                Box::new(|| {
                    let k = new_key();
                    timed(&mut || {
                        common::redb_write(&e.raw, true, |t| {
                            t.insert(&k, RAW_VALUE.as_slice()).expect("insert");
                        });
                        common::redb_write(&e.raw, true, |t| {
                            t.remove(&k).expect("remove");
                        });
                    })
                }),
            ],
        ),
    ];
    let mut json = Vec::new();
    for (op, mut fs) in ops {
        let mut times: [Vec<f64>; 3] = Default::default();
        for round in 0..ROUNDS {
            for k in 0..3 {
                let engine = (round + k) % 3;
                times[engine].push(fs[engine]().as_secs_f64() * 1e6);
            }
        }
        // Within a round the three operations ran a few milliseconds apart, on the same disk
        // "weather": the median of the per-round ratios is the robust comparison.
        let ratio = |a: &[f64], b: &[f64]| {
            let mut r: Vec<f64> = a.iter().zip(b).map(|(x, y)| x / y).collect();
            r.sort_by(f64::total_cmp);
            r[r.len() / 2]
        };
        let vs_sqlite = ratio(&times[0], &times[1]);
        let vs_redb = ratio(&times[0], &times[2]);
        let pct = |t: &mut Vec<f64>| {
            t.sort_by(f64::total_cmp);
            [t[t.len() / 10], t[t.len() / 2], t[t.len() * 9 / 10]]
        };
        let [a, q, r] = [pct(&mut times[0]), pct(&mut times[1]), pct(&mut times[2])];
        println!(
            "authdb-bench [{size}] interleaved durable {op}: p10/p50/p90 µs authdb {:.0}/{:.0}/{:.0}, \
             sqlite {:.0}/{:.0}/{:.0}, redb {:.0}/{:.0}/{:.0}; median per-round ratio authdb÷sqlite \
             {vs_sqlite:.2}, authdb÷redb {vs_redb:.2}",
            a[0], a[1], a[2], q[0], q[1], q[2], r[0], r[1], r[2]
        );
        let p = |x: [f64; 3]| format!("[{:.1},{:.1},{:.1}]", x[0], x[1], x[2]);
        json.push(format!(
            "{{\"op\":\"{op}\",\"authdb_us\":{},\"sqlite_us\":{},\"redb_us\":{},\
             \"ratio_sqlite\":{vs_sqlite:.3},\"ratio_redb\":{vs_redb:.3}}}",
            p(a),
            p(q),
            p(r)
        ));
    }
    common::save_meta(
        &format!("ops-{size}-interleaved"),
        &format!(
            "{{\"label\":\"{size}\",\"rounds\":{ROUNDS},\"results\":[{}]}}",
            json.join(",")
        ),
    );
}

/// authdb's own memory on this data set: the bench process's resident set before opening it and
/// its peak while one handle serves the sampled reads (cache warm) and a batch of writes.
fn authdb_alone(ds: &Dataset) {
    let before = common::proc_status_kb("VmRSS").unwrap_or(0);
    common::reset_peak_rss();
    {
        let db = common::authdb_builder(&ds.clock, Durability::Immediate)
            .open(ds.authdb_path())
            .expect("open authdb");
        for t in &ds.tokens {
            black_box(db.get_session(t).expect("get_session"));
        }
        for i in ds.sample_users(9) {
            black_box(db.get_user_by_email(&common::email(i)).expect("get"));
            let pa = common::provider_account_id(i);
            black_box(
                db.get_user_by_provider_account_id("github", &pa)
                    .expect("get"),
            );
        }
        let users: Vec<_> = ds.sample_users(10).into_iter().take(1000).collect();
        let tokens = db
            .write(|tx| {
                users
                    .iter()
                    .map(|i| tx.create_session(&ds.user_ids[*i]).map(|s| s.session_token))
                    .collect::<authdb::Result<Vec<_>>>()
            })
            .expect("writes");
        db.write(|tx| tokens.iter().try_for_each(|t| tx.delete_session(t)))
            .expect("clean-up");
    }
    let peak = common::proc_status_kb("VmHWM").unwrap_or(0);
    common::report_memory(
        "ops",
        &format!("{}-authdb-alone", ds.size.label),
        before,
        peak,
    );
}

fn main() {
    if common::run_loader_if_child() {
        return;
    }
    let mut c = common::criterion();
    for size in common::sizes() {
        let ds = Dataset::load(size, "ops");
        authdb_alone(&ds);
        common::reset_peak_rss();
        {
            let env = Env::open(&ds);
            // The disk's flush latency before each durable group: it drifts with the host.
            let probe = |group: &str| {
                common::fsync_probe(ds.dir.path(), "ops", &format!("{}-{group}", size.label));
            };
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
            // Only when benchmarking (`cargo bench`), not in `cargo test --benches`.
            let args: Vec<String> = std::env::args().collect();
            if args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--test") {
                probe("interleaved");
                interleaved_durable(&env);
            }
            probe("end");
        }
        common::report_rss("ops", &format!("{}-bench", size.label));
    }
    c.final_summary();
}
