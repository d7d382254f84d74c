//! `decode`: arbitrary bytes given to every decoder of stored or user-supplied data. Each must
//! return a value or an error: never panic, never allocate without bound (run with
//! `-malloc_limit_mb`, see README.md).
//!
//! The first byte picks the decoder:
//! - 0..=5: the record decoders of `users`, `accounts`, `sessions`, `verification_requests`,
//!   `credentials`, `authenticators` (`authdb::fuzzing::decode_record`);
//! - 6: the id parsers (`UserId`, `AccountId`, `SessionId`, `VerificationRequestId` from
//!   strings, as they arrive in URLs and forms): a parsed id must print and parse back to
//!   itself;
//! - 7: `normalize_email`, the key of the email index: it must be idempotent, or a stored key
//!   would not be found again;
//! - 8: a whole database file, opened with `verify_on_open` (the default): a damaged file
//!   must be refused or, if it opens, checked, never trusted into a panic.

#![no_main]

use std::str::FromStr;

use authdb::{AccountId, SessionId, UserId, VerificationRequestId};
use authdb_fuzz::faults::Disk;
use libfuzzer_sys::fuzz_target;

fn round_trip<T>(s: &str)
where
    T: FromStr + std::fmt::Display + PartialEq + std::fmt::Debug,
{
    if let Ok(id) = T::from_str(s) {
        let printed = id.to_string();
        let back = T::from_str(&printed).ok();
        assert_eq!(back.as_ref(), Some(&id), "{printed:?} does not parse back");
    }
}

fn open_file(bytes: &[u8]) {
    let Ok(db) = authdb::AuthDb::builder()
        .cache_size(1 << 20)
        .open_backend(Disk::new(bytes.to_vec(), None))
    else {
        return;
    };
    // Whatever opened must be checkable without a panic (problems are fine: reported).
    let _ = db.check_integrity();
    let _ = db.purge_expired();
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    match which % 9 {
        table @ 0..=5 => {
            let _ = authdb::fuzzing::decode_record(table, body);
        }
        6 => {
            let s = String::from_utf8_lossy(body);
            round_trip::<UserId>(&s);
            round_trip::<AccountId>(&s);
            round_trip::<SessionId>(&s);
            round_trip::<VerificationRequestId>(&s);
        }
        7 => {
            let s = String::from_utf8_lossy(body);
            let key = authdb::normalize_email(&s);
            assert_eq!(
                authdb::normalize_email(&key),
                key,
                "normalize_email is not idempotent"
            );
        }
        _ => open_file(body),
    }
});
