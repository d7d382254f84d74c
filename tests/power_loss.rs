//! Power loss (issue 9): the machine loses power at a random moment; writes that were not yet
//! synced are lost, kept or torn at sector granularity (`tests/support/power_loss.rs`), and
//! the disk image left behind must reopen (with `verify_on_open`), pass `check_integrity()`
//! and hold every operation acknowledged under `Durability::Immediate`, each operation whole
//! or not at all (the operation in progress at the cut: before it, after it, or after one of
//! its intermediate commits).
//!
//! The run is the `faults` fuzz target's (`fuzz/src/faults.rs`, included by path) in its
//! power-cut mode: the model-based test's driver compares every result with the reference
//! model up to the cut, then each image is compared with the candidate model states.
//!
//! `AUTHDB_POWER_SEEDS` (default 60) sets how many seeded random cases run, and
//! `AUTHDB_POWER_SEED` the first seed (default 0): a failure names its seed, and
//! `AUTHDB_POWER_SEED=<seed> AUTHDB_POWER_SEEDS=1` reruns it alone.

mod common;
#[allow(unused_imports)]
mod model;

#[path = "../fuzz/src/faults.rs"]
mod faults;
#[path = "support/power_loss.rs"]
mod power_loss;

use std::collections::BTreeMap;
use std::time::Instant;

use faults::{Ending, FailMode, Plan};
use model::ops::Case;
use model::{Change, Op};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The model-based test's random case for `seed` (at most `max_ops` operations).
fn case_for(seed: u64, max_ops: usize) -> Case {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &key),
    );
    model::strategy::case(max_ops)
        .new_tree(&mut runner)
        .expect("a case")
        .current()
}

/// Seeded random cases, each cut at a random mutating storage call of its run; every image
/// the cut can leave that the seed draws is checked.
#[test]
fn power_cut_at_random_moments() {
    let seeds = env_number("AUTHDB_POWER_SEEDS", 60);
    let first = env_number("AUTHDB_POWER_SEED", 0);
    let started = Instant::now();
    let mut endings: BTreeMap<String, u32> = BTreeMap::new();
    for seed in first..first + seeds {
        let case = case_for(seed, 30);
        let mut rng = power_loss::Rng::new(seed);
        let small_cache = rng.coin();
        let never = Plan {
            after: u32::MAX,
            mode: FailMode::All,
            small_cache,
        };
        let (clean, calls) = faults::run_counting(&case, never);
        assert_eq!(clean, Ending::Clean, "seed {seed}: a run without a fault");
        let plan = Plan {
            after: u32::try_from(rng.below(u64::from(calls))).expect("fits"),
            mode: FailMode::PowerCut {
                seed: u32::try_from(seed % (1 << 16)).expect("fits"),
            },
            small_cache,
        };
        eprintln!("power loss: seed {seed}: {plan:?} of {calls} calls");
        let ending = faults::run(&case, plan);
        *endings.entry(format!("{ending:?}")).or_default() += 1;
    }
    eprintln!(
        "power loss: {seeds} seeds in {:.1?}: {endings:?}",
        started.elapsed()
    );
    // The cut falls inside an operation's storage calls, so it must put operations in doubt.
    assert!(
        seeds < 10 || endings.get("InDoubt").copied().unwrap_or(0) > 0,
        "no cut hit an operation: {endings:?}"
    );
}

fn create_user(email: u8) -> Op {
    Op::CreateUser {
        email: Some(email),
        name: None,
        image: None,
        verified: None,
        extra: 0,
    }
}

/// A sign-up and sign-in flow with a web session (tower-sessions record), a transaction and a
/// purge: the power goes at every mutating call in turn, each time with two image seeds.
#[test]
fn power_cut_anywhere_in_a_sign_in_flow() {
    let case = Case {
        settings: 0,
        ops: vec![
            create_user(0),
            Op::SetPassword {
                user: 0,
                password: 0,
            },
            Op::WebSessionCreate {
                id: 1,
                user: Some(0),
                expires: 4,
                data: 1,
            },
            Op::Txn {
                ops: vec![
                    Op::LinkAccount {
                        user: 0,
                        provider: 0,
                        account: 0,
                        provider_type: 0,
                        refresh: Some(0),
                        access: Some(0),
                        expires: None,
                        token_type: None,
                        scope: None,
                        id_token: None,
                        session_state: None,
                        extra: 0,
                    },
                    Op::CreateSession { user: 0 },
                    Op::UpdateUser {
                        user: 0,
                        email: Change::Set(2),
                        name: Change::Keep,
                        image: Change::Keep,
                        verified: Change::Keep,
                        extra: Change::Keep,
                    },
                ],
                commit: true,
            },
            Op::CreateVerification {
                identifier: 2,
                token: 0,
                secret: 0,
                send_ok: false,
                max_age: 0,
            },
            Op::WebSessionSave {
                id: 1,
                user: Some(0),
                expires: 0,
                data: 2,
            },
            Op::Advance { step: 5 },
            Op::Purge,
            Op::WebSessionDeleteExpired { batch: 1 },
        ],
    };
    let mut endings: BTreeMap<String, u32> = BTreeMap::new();
    for small_cache in [false, true] {
        for after in 0.. {
            let mut clean = false;
            for seed in [after, after + 1000] {
                let plan = Plan {
                    after,
                    mode: FailMode::PowerCut { seed },
                    small_cache,
                };
                let ending = faults::run(&case, plan);
                *endings.entry(format!("{ending:?}")).or_default() += 1;
                clean = ending == Ending::Clean;
            }
            if clean {
                break;
            }
        }
    }
    eprintln!("power loss, sign-in flow: {endings:?}");
    assert!(
        endings.get("InDoubt").copied().unwrap_or(0) > 10,
        "{endings:?}"
    );
}
