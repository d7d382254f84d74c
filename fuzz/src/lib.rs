//! Shared code of authdb's fuzz targets (see README.md).
//!
//! - [`model`]: the reference model, operation language and driver of the model-based test,
//!   included from `../tests/model/` (not copied: the fuzz targets and the proptest run the
//!   same model, and the fuzz input is the model's own `Op`, deriving `Arbitrary` here);
//! - [`input`]: the case and fault-plan inputs of the `ops` and `faults` targets, and their
//!   inverse (seed bytes) and Rust rendering;
//! - [`faults`]: the failing storage backend and the fault-injection run (also included by
//!   `../tests/fuzz_regressions.rs`);
//! - [`power_loss`]: the power-loss storage model, included from
//!   `../tests/support/power_loss.rs` (also used by `../tests/power_loss.rs`);
//! - [`seeds`]: hand-written seed inputs.

pub mod model;

pub mod faults;
pub mod input;
#[path = "../../tests/support/power_loss.rs"]
pub mod power_loss;
pub mod seeds;

/// The cheapest argon2 parameters argon2 accepts (8 KiB, one pass, one lane): the targets
/// exercise logic, not hashing cost, and a whole-state comparison verifies 40 passwords.
pub fn fast_passwords() -> authdb::PasswordParams {
    authdb::PasswordParams {
        memory_kib: 8,
        iterations: 1,
        parallelism: 1,
    }
}

/// What the `ops` target runs: `case` against the model on an in-memory disk that never
/// fails (`power_loss::PowerDisk`: no file system calls, and reopening finds the same bytes).
pub fn run_ops(case: &model::Case) -> model::driver::Stats {
    let disk = power_loss::PowerDisk::steady();
    let counted = disk.clone();
    let backend = model::driver::Backend {
        open: Box::new(move |b| b.open_backend(disk.clone())),
        faulted: Box::new(|| false),
        changes: Some(Box::new(move || counted.mutations())),
        cache_size: None,
    };
    model::driver::run_on(case, fast_passwords(), backend)
}

#[cfg(test)]
mod tests {
    use arbitrary::{Arbitrary, Unstructured};

    use crate::faults::{self, Ending, FailMode, Plan};
    use crate::input::FuzzCase;
    use crate::seeds;

    #[test]
    fn ops_seeds_agree_with_the_model() {
        for case in seeds::ops_seeds() {
            crate::run_ops(&case.0);
        }
    }

    /// What the `ops` target does with arbitrary bytes (here from a fixed pseudo-random
    /// stream): every byte string is a runnable case on which the store and the model agree.
    #[test]
    fn arbitrary_bytes_run_cleanly() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut ops = 0;
        for len in (0..40).map(|i| i * 29) {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    // xorshift64
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x.to_le_bytes()[3]
                })
                .collect();
            let case = FuzzCase::arbitrary(&mut Unstructured::new(&bytes)).expect("any bytes");
            ops += crate::run_ops(&case.0).ops;
        }
        assert!(ops > 0);
    }

    /// Every seed with the fault at every point of its run, in every mode.
    #[test]
    fn fault_sweep_over_the_seeds() {
        let mut endings = std::collections::BTreeMap::new();
        for case in seeds::ops_seeds() {
            let modes = [
                FailMode::Writes,
                FailMode::Syncs,
                FailMode::All,
                FailMode::PowerCut { seed: 7 },
            ];
            for mode in modes {
                for small_cache in [false, true] {
                    let mut after = 0;
                    loop {
                        let plan = Plan {
                            after,
                            mode,
                            small_cache,
                        };
                        let e = faults::run(&case.0, plan);
                        *endings.entry(format!("{e:?}")).or_insert(0u32) += 1;
                        if e == Ending::Clean {
                            break;
                        }
                        after += 1;
                    }
                }
            }
        }
        eprintln!("{endings:?}");
        assert!(endings.contains_key("InDoubt"));
    }
}
