//! Regression tests from the fuzz targets in `fuzz/` (see fuzz/README.md), and the
//! fault-injection harness run on fixed scenarios.
//!
//! `fuzz/src/faults.rs` is included by path: the same failing storage backend and the same
//! "every crash image holds exactly the acknowledged operations" check as the `faults` target,
//! over the reference model and driver of `tests/model/`. A crash found by `cargo fuzz` becomes
//! a test here: `cargo fuzz fmt <target> <artifact>` prints the case as Rust.

// tests/model/ops.rs derives `arbitrary::Arbitrary` under `cfg(fuzzing)`, which only the fuzz
// crate sets (fuzz/build.rs); here that cfg name is unknown to cargo's check-cfg.

mod common;
// Shared with the model-based test; the fault harness drives it.
#[allow(unused_imports)]
mod model;

#[path = "../fuzz/src/faults.rs"]
mod faults;
// The disk under the fault harness (`faults.rs` keeps its bytes in the power-loss model).
#[path = "support/power_loss.rs"]
mod power_loss;

use authdb::AuthDb;
use authdb::prelude::*;
use faults::{Disk, Ending, FailMode, Plan};
use model::ops::Case;
use model::{Change, Op};

/// Runs `case` with the fault after every possible number of mutating storage calls, in every
/// mode, until a run ends without the fault firing. Returns how many runs ended in doubt.
fn sweep(case: &Case) -> usize {
    let mut in_doubt = 0;
    for mode in [
        FailMode::Writes,
        FailMode::Syncs,
        FailMode::All,
        FailMode::PowerCut { seed: 3 },
    ] {
        for small_cache in [false, true] {
            for after in 0.. {
                let ending = faults::run(
                    case,
                    Plan {
                        after,
                        mode,
                        small_cache,
                    },
                );
                match ending {
                    Ending::Clean => break,
                    Ending::InDoubt => in_doubt += 1,
                    Ending::AckedThroughFault => {}
                }
            }
        }
    }
    in_doubt
}

fn create_user(email: u8) -> Op {
    Op::CreateUser {
        email: Some(email),
        name: None,
        image: None,
        verified: None,
        extra: 0,
    }
}

fn set_email(user: u8, email: u8) -> Op {
    Op::UpdateUser {
        user,
        email: Change::Set(email),
        name: Change::Keep,
        image: Change::Keep,
        verified: Change::Keep,
        extra: Change::Keep,
    }
}

/// A committed multi-operation transaction (an email swap through a third address) and a
/// dropped one: a crash at any point leaves all of a transaction or none of it.
#[test]
fn crash_anywhere_around_transactions() {
    let case = Case {
        settings: 0,
        ops: vec![
            create_user(0),
            create_user(2),
            Op::CreateSession { user: 0 },
            Op::Txn {
                ops: vec![set_email(0, 4), set_email(1, 1), set_email(0, 3)],
                commit: true,
            },
            Op::Txn {
                ops: vec![Op::DeleteUser { user: 0 }, create_user(0)],
                commit: false,
            },
            Op::Reopen,
            Op::DeleteUser { user: 1 },
        ],
    };
    assert!(sweep(&case) > 0, "the fault never hit an operation");
}

/// `purge_expired` commits sessions and verification requests separately, and a failed email
/// send removes the request in a second commit: a crash between the two commits leaves the
/// first one only.
#[test]
fn crash_between_the_commits_of_one_operation() {
    let case = Case {
        settings: 0,
        ops: vec![
            create_user(0),
            Op::CreateSession { user: 0 },
            Op::CreateVerification {
                identifier: 0,
                token: 0,
                secret: 0,
                send_ok: true,
                max_age: 1,
            },
            Op::Advance { step: 5 },
            Op::Purge,
            Op::CreateVerification {
                identifier: 2,
                token: 2,
                secret: 1,
                send_ok: false,
                max_age: 0,
            },
            Op::GetUserByEmail { email: 1 },
        ],
    };
    assert!(sweep(&case) > 0, "the fault never hit an operation");
}

/// The Auth.js operations under faults: a caller-chosen session (whose access token the
/// harness must derive when its creation is in doubt), an expiry written exactly, a
/// verification token meeting a v3 link, an authenticator counter, a patch that replaces the
/// security stamp, and the cascade of `delete_user` to authenticators.
#[test]
fn crash_anywhere_in_authjs_flows() {
    let case = Case {
        settings: 0,
        ops: vec![
            create_user(0),
            Op::CreateSessionWith {
                user: 0,
                token: 2,
                expires: 5,
            },
            Op::SetSessionExpiry {
                session: 0,
                expires: 4,
            },
            Op::CreateVerificationToken {
                identifier: 0,
                hash: 1,
                expires: 4,
            },
            Op::CreateAuthenticator {
                user: 0,
                credential: 0,
                account: 0,
                key: 0,
                counter: 1,
                device: 0,
                backed_up: true,
                transports: None,
            },
            Op::Txn {
                ops: vec![
                    Op::UpdateAuthenticatorCounter {
                        credential: 0,
                        counter: 3,
                    },
                    Op::PatchUser {
                        user: 0,
                        email: Change::Set(2),
                        name: Change::Keep,
                        image: Change::Keep,
                        verified: Change::Keep,
                        extra: Some(1),
                    },
                ],
                commit: true,
            },
            Op::UseVerification {
                identifier: 1,
                token: 1,
                secret: 1,
            },
            Op::DeleteSessionReturning { session: 0 },
            Op::DeleteUser { user: 0 },
        ],
    };
    assert!(sweep(&case) > 0, "the fault never hit an operation");
}

/// Found by the `faults` target (a harness bug, fixed): a transaction that moves the clock is
/// in doubt when its commit fails; the clock moved either way, so a verification request that
/// expired meanwhile must be gone from every candidate state too. Minimized from
/// `Plan { after: 151, mode: Syncs, small_cache: true }` and eight operations.
#[test]
fn clock_moves_inside_a_transaction_in_doubt() {
    let case = Case {
        settings: 0,
        ops: vec![
            Op::Reopen,
            Op::CreateUser {
                email: None,
                name: None,
                image: None,
                verified: None,
                extra: 0,
            },
            Op::SetPassword {
                user: 81,
                password: 0,
            },
            Op::CreateVerification {
                identifier: 2,
                token: 0,
                secret: 0,
                send_ok: true,
                max_age: 0,
            },
            Op::Txn {
                ops: vec![Op::Advance { step: 220 }, create_user(64)],
                commit: true,
            },
        ],
    };
    // The original: the fault hits that transaction's commit.
    faults::run(
        &case,
        Plan {
            after: 151,
            mode: FailMode::Syncs,
            small_cache: true,
        },
    );
    assert!(sweep(&case) > 0, "the fault never hit an operation");
}

/// Found by the fault sweep: redb makes a new database by extending the file, syncing a header
/// and writing its magic number last, so a crash or an I/O error (a full disk on the first
/// start) during a first open *in place* left a file that every later open refused ("not a redb
/// database"). `AuthDb::open` now builds a new database under a temporary name in the same
/// directory and links it into place only when complete: what an interrupted first open leaves
/// is a stray temporary file, never a broken database at the path.
#[test]
fn interrupted_first_open_leaves_no_broken_file_at_the_path() {
    // The fourth mutating call fails: redb has extended the file and synced a header without
    // its magic number. That image is what an interrupted first open can leave behind.
    let disk = Disk::new(Vec::new(), Some((3, FailMode::Syncs)));
    assert!(AuthDb::builder().open_backend(disk.clone()).is_err());
    let image = disk.synced();
    assert!(!image.is_empty(), "something reached the disk");

    // Where the new open puts it: a temporary name beside the database. The next start works.
    let t = common::TempDb::new();
    let stray = t.dir.path().join(".auth.redb.authdb-init-0011223344556677");
    std::fs::write(&stray, &image).unwrap();
    let db = t.open();
    common::assert_clean(&db);
    db.create_user(&common::profile("a@x.io")).unwrap();
    drop(db);
    assert!(t.open().get_user_by_email("a@x.io").unwrap().is_some());
    // A successful first open leaves nothing but the database (and the stray we planted).
    let mut names: Vec<_> = std::fs::read_dir(t.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [".auth.redb.authdb-init-0011223344556677", "auth.redb"]
    );

    // Such an image *at* the path (left by an older authdb or another program) is refused with
    // a storage error and left untouched: authdb never overwrites a file it cannot identify.
    let t2 = common::TempDb::new();
    std::fs::write(t2.path(), &image).unwrap();
    let err = common::builder(&t2.clock).open(t2.path()).unwrap_err();
    assert!(matches!(err, authdb::Error::Storage(_)), "{err:?}");
    assert_eq!(std::fs::read(t2.path()).unwrap(), image);
}
