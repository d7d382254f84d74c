//! `ops`: a random operation sequence (the model's own `Op`, derived `Arbitrary`) applied to
//! authdb and to the reference model (`tests/model/`), results compared and
//! `check_integrity()` clean after every step, the whole state compared at the end before and
//! after reopening the database (on an in-memory disk: `authdb_fuzz::run_ops`).

#![no_main]

use authdb_fuzz::input::FuzzCase;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|case: FuzzCase| {
    authdb_fuzz::run_ops(&case.0);
});
