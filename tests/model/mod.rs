//! Model-based testing of authdb (issue 2): a reference model of SPEC.md, an operation
//! language over deliberately small domains, and a driver that runs both and compares.
//!
//! - `ops.rs`: [`Op`] and [`ops::Case`], plain data: a fuzz target can build them from raw
//!   bytes with [`ops::decode`], or derive `arbitrary::Arbitrary` on them;
//! - `reference.rs`: the model (needs `chrono`, `sha2` and authdb's public value types);
//! - `driver.rs`: runs a case against a database file and the model, [`driver::run`] (needs
//!   `tempfile`, `parking_lot`, `uuid`);
//! - `strategy.rs`: proptest strategies (the only part that needs proptest).
//!
//! A cargo-fuzz target can mount these files as one module (`#[path = ".../tests/model/mod.rs"]
//! mod model;`, with proptest as a dependency) or mount `ops.rs`, `reference.rs` and
//! `driver.rs` as siblings in a module of its own, and call
//! `model::driver::run(&model::ops::decode(data), params)`.

// Shared by several test binaries, each of which uses only part of it.
#![allow(dead_code)]

pub mod driver;
pub mod ops;
pub mod reference;
pub mod strategy;

pub use driver::{Driver, run};
pub use ops::{Change, Op};
