//! `faults`: the `ops` sequence on a storage backend that starts failing writes, syncs or
//! both after N mutating calls; every disk image a crash could leave must reopen, pass
//! `check_integrity()` and hold exactly the acknowledged operations (see `src/faults.rs`).

#![no_main]

use authdb_fuzz::input::FaultInput;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: FaultInput| {
    authdb_fuzz::faults::run(&input.case.0, input.plan);
});
