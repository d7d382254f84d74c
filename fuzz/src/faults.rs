//! Fault injection (the `faults` fuzz target, and `tests/fuzz_regressions.rs`, which includes
//! this file by path).
//!
//! [`Disk`] is a redb [`StorageBackend`](redb::StorageBackend) over the power-loss model's
//! [`Volatile`] bytes (`tests/support/power_loss.rs`): what the OS holds now (`live`), what
//! the last successful `sync_data` made durable (`synced`), and the calls in between. After a
//! countdown of mutating calls (`write`, `set_len`, `sync_data`) it starts refusing writes,
//! syncs or both, for good; or the power goes ([`FailMode::PowerCut`]): every call fails from
//! then on, and the images checked are the ones a power cut leaves, some of the unsynced
//! writes kept, others lost or torn at sector granularity.
//!
//! [`run`] applies the model-based operations ([`Op`](crate::model::Op)) with the model's own
//! driver ([`Driver::on_backend`]) to authdb on such a disk and to the reference model,
//! comparing every result as the model-based test does. When an operation fails because of the
//! fault, it is *in doubt*: it may or may not have reached the disk (redb reports an error for
//! a commit whose final sync succeeded but whose file shrink failed, for one). The run then
//! stops and every disk image a crash could leave behind (the bytes of the last successful
//! sync at the moment of the fault, and the synced and live bytes after the handle was
//! dropped; after a power cut, also [`POWER_CUT_IMAGES`] images drawn from the plan's seed)
//! is reopened on a fresh backend with `verify_on_open`; each must open, pass
//! `check_integrity()` and hold exactly the acknowledged operations: the model state before the
//! operation in doubt, after it, or after one of its intermediate commits (`purge_expired` and
//! a failed `create_verification_request` commit twice), compared through the driver's
//! whole-state [`Digest`](crate::model::driver::Digest).

#![allow(dead_code)]

use std::collections::HashSet;
use std::fmt::{self, Write as _};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::model::driver::{Backend, Driver, counts_of};
use crate::model::ops::Case;
use crate::power_loss::Volatile;

// ---- the disk ------------------------------------------------------------------------------

/// Which mutating calls fail once the fault has fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailMode {
    /// `write` and `set_len` fail (a full disk); `sync_data` still works.
    Writes,
    /// `sync_data` fails; writes still reach the OS (a failing device under a page cache).
    Syncs,
    /// Every mutating call fails (the device is gone).
    All,
    /// The power goes: every call fails from then on, and whatever was not synced may be
    /// lost, kept or torn ([`Volatile::crash_image`], seeds `seed..seed + POWER_CUT_IMAGES`).
    PowerCut { seed: u32 },
}

/// How many crash images a power cut draws, besides the all-lost and all-kept ones.
pub const POWER_CUT_IMAGES: u32 = 4;

/// When and how the disk fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// Mutating calls that succeed before the first failure.
    pub after: u32,
    /// What fails from then on.
    pub mode: FailMode,
    /// A tiny page cache (redb may then write pages before a commit).
    pub small_cache: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Call {
    Write,
    Sync,
}

#[derive(Default)]
struct DiskState {
    bytes: Volatile,
    calls: u32,
    plan: Option<(u32, FailMode)>,
    failed: bool,
}

impl DiskState {
    fn check(&mut self, call: Call) -> std::io::Result<()> {
        self.calls = self.calls.saturating_add(1);
        let Some((after, mode)) = self.plan else {
            return Ok(());
        };
        let refused = match mode {
            FailMode::Writes => call == Call::Write,
            FailMode::Syncs => call == Call::Sync,
            FailMode::All | FailMode::PowerCut { .. } => true,
        };
        if self.calls > after && refused {
            self.failed = true;
            return Err(std::io::Error::other("injected fault"));
        }
        Ok(())
    }
}

/// An in-memory disk that can be told to fail (see the module docs). Clones share the disk.
#[derive(Clone, Default)]
pub struct Disk(Arc<Mutex<DiskState>>);

impl fmt::Debug for Disk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0.lock();
        f.debug_struct("Disk")
            .field("bytes", &s.bytes)
            .field("calls", &s.calls)
            .field("failed", &s.failed)
            .finish()
    }
}

impl Disk {
    /// A disk holding `bytes` (live and synced), failing as `plan` says.
    pub fn new(bytes: Vec<u8>, plan: Option<(u32, FailMode)>) -> Self {
        Self(Arc::new(Mutex::new(DiskState {
            bytes: Volatile::new(bytes),
            calls: 0,
            plan,
            failed: false,
        })))
    }

    /// Whether a call has been refused.
    pub fn failed(&self) -> bool {
        self.0.lock().failed
    }

    /// The bytes as of the last successful sync.
    pub fn synced(&self) -> Vec<u8> {
        self.0.lock().bytes.durable().to_vec()
    }

    /// The bytes the OS holds now.
    pub fn live(&self) -> Vec<u8> {
        self.0.lock().bytes.live().to_vec()
    }

    /// What a power cut now could leave, drawn from `seed`.
    pub fn crash_image(&self, seed: u64) -> Vec<u8> {
        self.0.lock().bytes.crash_image(seed)
    }

    /// Mutating calls so far.
    pub fn calls(&self) -> u32 {
        self.0.lock().calls
    }
}

impl redb::StorageBackend for Disk {
    fn len(&self) -> Result<u64, std::io::Error> {
        Ok(self.0.lock().bytes.len())
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), std::io::Error> {
        self.0.lock().bytes.read(offset, out)
    }

    fn set_len(&self, len: u64) -> Result<(), std::io::Error> {
        let mut s = self.0.lock();
        s.check(Call::Write)?;
        s.bytes.set_len(len)
    }

    fn sync_data(&self) -> Result<(), std::io::Error> {
        let mut s = self.0.lock();
        s.check(Call::Sync)?;
        s.bytes.sync();
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), std::io::Error> {
        let mut s = self.0.lock();
        s.check(Call::Write)?;
        s.bytes.write(offset, data)
    }
}

// ---- the run -------------------------------------------------------------------------------

/// How a run ended, for statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Every operation ran; no fault fired.
    Clean,
    /// The fault fired during an operation that still succeeded.
    AckedThroughFault,
    /// An operation failed because of the fault.
    InDoubt,
}

/// The cheapest argon2 parameters: the runs exercise storage, not hashing cost.
fn passwords() -> authdb::PasswordParams {
    authdb::PasswordParams {
        memory_kib: 8,
        iterations: 1,
        parallelism: 1,
    }
}

/// Runs `case` on a disk failing as `plan` says, then checks what a crash leaves behind.
///
/// # Panics
/// When the store and the model disagree, or a disk image holds no candidate state (the
/// check failing is a panic, as in the fuzz targets).
pub fn run(case: &Case, plan: Plan) -> Ending {
    run_counting(case, plan).0
}

/// [`run`], also returning how many mutating storage calls the run made (with a plan that
/// never fires: how many points a fault can hit).
///
/// # Panics
/// As [`run`].
pub fn run_counting(case: &Case, plan: Plan) -> (Ending, u32) {
    let disk = Disk::new(Vec::new(), Some((plan.after, plan.mode)));
    let (on, probe) = (disk.clone(), disk.clone());
    let backend = Backend {
        open: Box::new(move |b| b.open_backend(on.clone())),
        faulted: Box::new(move || probe.failed()),
        // Integrity is checked after every operation here (no skipping).
        changes: None,
        cache_size: plan.small_cache.then_some(16 * 1024),
    };
    let mut d = Driver::on_backend(case.settings, passwords(), backend);
    let mut ending = Ending::Clean;
    let mut crash_image = None;
    let mut fault_op = String::from("the first open");
    // `Some` once the first open (which creates the database) succeeded.
    let created = match d.open() {
        Ok(()) => true,
        Err(e) => {
            assert!(disk.failed(), "the first open failed without a fault: {e}");
            crash_image = Some(disk.synced());
            ending = Ending::InDoubt;
            false
        }
    };
    if created {
        for op in &case.ops {
            let applied = d.try_apply(op);
            if applied.is_err() || disk.failed() {
                fault_op = d.current();
                crash_image = Some(disk.synced());
                ending = if applied.is_err() {
                    Ending::InDoubt
                } else {
                    Ending::AckedThroughFault
                };
                break;
            }
        }
    }
    check_images(&mut d, &disk, crash_image, created, ending, plan, &fault_op);
    (ending, disk.calls())
}

/// Reopens every disk image a crash could leave and checks each against the candidate model
/// states.
fn check_images(
    d: &mut Driver,
    disk: &Disk,
    crash_image: Option<Vec<u8>>,
    created: bool,
    ending: Ending,
    plan: Plan,
    fault_op: &str,
) {
    let candidates = d.candidates(ending == Ending::InDoubt);
    // A graceful close after the fault.
    d.close();
    let mut images: Vec<(String, Vec<u8>)> = Vec::new();
    if let Some(c) = crash_image {
        images.push(("synced at the fault".to_owned(), c));
    }
    images.push(("synced after close".to_owned(), disk.synced()));
    // Until the first sync completes, the file may hold a partly written header that redb
    // does not recognize (the database never existed durably); past it, whatever the OS kept
    // of later writes must be recoverable.
    if !disk.synced().is_empty() {
        images.push(("live after close".to_owned(), disk.live()));
        // The power went at the fault: every call since has failed, so the disk still holds
        // what was pending then; some of it survives.
        if let FailMode::PowerCut { seed } = plan.mode
            && disk.failed()
        {
            for k in 0..POWER_CUT_IMAGES {
                let seed = u64::from(seed) * u64::from(POWER_CUT_IMAGES) + u64::from(k);
                images.push((
                    format!("power cut (image seed {seed})"),
                    disk.crash_image(seed),
                ));
            }
        }
    }
    let mut seen: HashSet<Vec<u8>> = HashSet::new();
    for (label, bytes) in images {
        if !seen.insert(bytes.clone()) {
            continue;
        }
        let db = match d.builder().open_backend(Disk::new(bytes, None)) {
            Ok(db) => db,
            // A crash while redb creates the file can leave it extended but without a header,
            // which redb then refuses ("not a redb database"): the database never existed.
            // Refusing is acceptable; panicking is not.
            Err(_) if !created => continue,
            Err(e) => panic!("reopen the {label} image: {e}\n{plan:?}, {ending:?} at {fault_op}"),
        };
        let r = db.check_integrity().expect("check_integrity");
        assert!(r.is_clean(), "the {label} image: integrity problems:\n{r}");
        let got = d.digest_store(&db, counts_of(&r), false);
        let mut tried = Vec::new();
        let matched = candidates.iter().any(|(name, m)| {
            // A fresh copy for every image: a digest mutates the model as reads mutate the
            // store.
            let want = d.digest_model(&mut m.clone());
            let diff = got.diff(&want);
            let ok = diff.is_none();
            tried.push((name.clone(), diff));
            ok
        });
        if !matched {
            let mut msg = format!(
                "the {label} image matches no candidate state.\n{plan:?}, {ending:?} at {fault_op} \
                 ({} mutating calls)\n",
                disk.calls(),
            );
            for (name, diff) in tried {
                let _ = writeln!(
                    msg,
                    "candidate {name}: differs on {}",
                    diff.unwrap_or_default()
                );
            }
            panic!("{msg}");
        }
    }
}
