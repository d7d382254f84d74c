//! Measures how many `ops` (or `faults`) inputs per second the harness runs, on a fixed set
//! of inputs (the committed seeds, then pseudo-random byte strings from a fixed stream), so
//! that two builds can be compared on exactly the same work. From `fuzz/`:
//!
//! ```sh
//! cargo run --release --example speed -- ops 2000
//! cargo run --release --example speed -- faults 2000
//! ```
//!
//! libFuzzer's own `exec/s` (fuzz/campaign.sh) depends on what the mutator explores; this
//! does not.

use std::time::Instant;

use arbitrary::{Arbitrary, Unstructured};
use authdb_fuzz::input::{FaultInput, FuzzCase};

/// Input number `i` of the fixed stream: lengths cycle through 0..1024 bytes.
fn input(i: u64) -> Vec<u8> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ i.wrapping_mul(0xD134_2543_DE82_EF95);
    let len = usize::try_from((i * 37) % 1024).expect("small");
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[3]
        })
        .collect()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let target = args.next().unwrap_or_else(|| "ops".to_owned());
    let n: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(1000);
    let seed_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("seeds")
        .join(&target);
    let mut inputs: Vec<Vec<u8>> = std::fs::read_dir(&seed_dir)
        .map(|d| {
            let mut files: Vec<_> = d.filter_map(Result::ok).map(|e| e.path()).collect();
            files.sort();
            files
                .into_iter()
                .filter_map(|p| std::fs::read(p).ok())
                .collect()
        })
        .unwrap_or_default();
    inputs.extend((0..n).map(input));
    let started = Instant::now();
    let mut ops = 0usize;
    for bytes in &inputs {
        let mut u = Unstructured::new(bytes);
        match target.as_str() {
            "faults" => {
                if let Ok(f) = FaultInput::arbitrary(&mut u) {
                    authdb_fuzz::faults::run(&f.case.0, f.plan);
                    ops += f.case.0.ops.len();
                }
            }
            _ => {
                if let Ok(c) = FuzzCase::arbitrary(&mut u) {
                    ops += c.0.ops.len();
                    authdb_fuzz::run_ops(&c.0);
                }
            }
        }
    }
    let secs = started.elapsed().as_secs_f64();
    #[allow(clippy::cast_precision_loss)]
    let count = inputs.len() as f64;
    println!(
        "{target}: {} inputs ({ops} top-level operations) in {secs:.2} s: {:.1} inputs/s",
        inputs.len(),
        count / secs
    );
}
