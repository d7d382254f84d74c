//! Sets `cfg(fuzzing)` for every build of this crate, not only under `cargo fuzz` (which sets
//! it through RUSTFLAGS): the model's operation types (`../tests/model/ops.rs`) derive
//! `arbitrary::Arbitrary` and `serde::Serialize` under it, and `cargo test` and `cargo check`
//! here need them too. authdb's own test crates never set it.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(fuzzing)");
    println!("cargo::rustc-cfg=fuzzing");
}
