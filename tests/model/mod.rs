//! Model-based testing of authdb (issue 2): a reference model of docs/behaviour.md, an
//! operation language over deliberately small domains, and a driver that runs both and
//! compares.
//!
//! - `ops.rs`: [`Op`] and [`ops::Case`], plain data: the one operation language of the proptest
//!   run, the fuzz targets and the fault-injection harness (under `cfg(fuzzing)` it derives
//!   `arbitrary::Arbitrary`);
//! - `reference.rs`: the model (needs `chrono`, `sha2`, `serde_json`,
//!   `unicode-normalization` and authdb's public value types);
//! - `driver.rs`: runs a case against a database file, or any redb storage backend, and the
//!   model, [`driver::run`] (needs `tempfile`, `parking_lot`, `uuid`);
//! - `strategy.rs`: proptest strategies (the only part that needs proptest).
//!
//! The fuzz crate (`fuzz/src/model/mod.rs`) mounts `ops.rs`, `reference.rs` and `driver.rs`
//! by path, so the fuzz targets run the very same model.

// Shared by several test binaries, each of which uses only part of it.
#![allow(dead_code)]

pub mod driver;
pub mod ops;
pub mod reference;
pub mod strategy;

pub use driver::{Driver, run};
pub use ops::{Change, Op};
