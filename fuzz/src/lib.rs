//! Shared code of authdb's fuzz targets (see README.md).
//!
//! - [`model`]: the reference model, operation language and driver of the model-based test,
//!   included from `../tests/model/` (not copied: the fuzz targets and the proptest run the
//!   same model);
//! - [`input`]: the `Arbitrary` operation sequence the `ops` and `faults` targets decode;
//! - [`faults`]: the failing storage backend and the fault-injection run (also included by
//!   `../tests/fuzz_regressions.rs`).

pub mod model;

pub mod faults;
pub mod input;
pub mod seeds;

/// Cheap argon2 parameters: the targets exercise logic, not hashing cost.
pub fn fast_passwords() -> authdb::PasswordParams {
    authdb::PasswordParams {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    }
}

#[cfg(test)]
mod tests {
    use crate::faults::{self, Ending, FailMode, Plan};
    use crate::seeds;

    #[test]
    fn ops_seeds_agree_with_the_model() {
        for case in seeds::ops_seeds() {
            crate::model::run(&case.to_case(), crate::fast_passwords());
        }
    }

    /// Every seed with the fault at every point of its run, in every mode.
    #[test]
    fn fault_sweep_over_the_seeds() {
        let mut endings = std::collections::BTreeMap::new();
        for case in seeds::ops_seeds() {
            let case = case.to_case();
            for mode in [FailMode::Writes, FailMode::Syncs, FailMode::All] {
                for small_cache in [false, true] {
                    let mut after = 0;
                    loop {
                        let plan = Plan {
                            after,
                            mode,
                            small_cache,
                        };
                        let e = faults::run(&case, plan);
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
