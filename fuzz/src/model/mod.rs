//! `../tests/model/` (the model-based test's reference model, operation language and driver)
//! without its proptest strategies, included by path so that the fuzz targets and the
//! proptest run the very same model. Under this crate's `cfg(fuzzing)` (see `build.rs`) the
//! operation types derive `arbitrary::Arbitrary` and `serde::Serialize`.

#![allow(dead_code, clippy::all, clippy::pedantic)]

#[path = "../../../tests/model/driver.rs"]
pub mod driver;
#[path = "../../../tests/model/ops.rs"]
pub mod ops;
#[path = "../../../tests/model/reference.rs"]
pub mod reference;

pub use driver::{Driver, run};
pub use ops::{Case, Change, Op};
