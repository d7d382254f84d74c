//! A storage model of a machine that loses power: a redb [`StorageBackend`] whose writes stay
//! volatile until a sync, and the disk images a power cut can leave.
//!
//! Included by path from the fuzz crate (`fuzz/src/lib.rs`, for the `faults` target and the
//! `ops` target's in-memory disk) and from `tests/power_loss.rs` and
//! `tests/fuzz_regressions.rs` (through `fuzz/src/faults.rs`): written once, safe code only.
//!
//! # The model
//!
//! [`Volatile`] holds two things: the *durable* bytes (what the device holds as of the last
//! completed `sync_data`) and the *pending* calls since then (`write` and `set_len`, in
//! order). Reads see the durable bytes with every pending call applied, as an OS page cache
//! does. A completed sync is a barrier: every call before it is durable, and the pending list
//! starts again empty.
//!
//! At a power cut, each pending call may or may not have reached the device, independently
//! of the others and of their order (a device and an I/O scheduler reorder freely between
//! barriers), and a write may reach it only in part: a device writes whole 512-byte sectors
//! atomically ([`SECTOR`]), but not a whole page, so a torn write keeps any subset of its
//! sectors. [`Volatile::crash_image`] draws one such image from a seed: the durable bytes,
//! then the surviving parts of the pending calls applied in their order (a kept `set_len`
//! resizes; a kept sector of a write past the end extends the file with zeros before it).
//!
//! What redb promises over this (docs/design.md, "1-phase + checksum durable commits"): a
//! commit writes its pages and the header slot it makes primary, then syncs once; after a
//! crash, the primary slot is trusted only if its transaction's checksums verify, else the
//! previous slot is used. So after any power cut the file must reopen holding every
//! transaction whose commit returned under `Durability::Immediate`, each transaction whole
//! or not at all.

#![allow(dead_code)]

use std::fmt;
use std::io;
use std::sync::Arc;

use parking_lot::Mutex;

/// The unit a device writes atomically, in bytes.
pub const SECTOR: u64 = 512;

/// A mutating call not yet made durable by a sync.
#[derive(Clone, PartialEq, Eq)]
enum Pending {
    Write { offset: u64, data: Vec<u8> },
    SetLen(u64),
}

/// What a power cut keeps of one pending call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    Lost,
    Kept,
    /// Each sector kept or not, by a coin drawn per sector.
    Torn,
}

/// How one crash image is drawn from its seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// The device wrote the pending calls in order and stopped: a prefix survives, the call
    /// after it torn.
    InOrder,
    /// Each pending call whole or lost, independently.
    Reordered,
    /// Each pending call whole, lost or torn, independently.
    Torn,
}

impl Style {
    fn of(seed: u64) -> Self {
        match seed % 3 {
            0 => Style::InOrder,
            1 => Style::Reordered,
            _ => Style::Torn,
        }
    }
}

/// A deterministic pseudo-random stream (splitmix64).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// The stream for `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x6A09_E667_F3BC_C909)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number below `n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// A fair coin.
    pub fn coin(&mut self) -> bool {
        self.next_u64() & 1 == 1
    }
}

/// The bytes of a disk under a volatile write cache (see the module docs).
#[derive(Clone, Default)]
pub struct Volatile {
    durable: Vec<u8>,
    live: Vec<u8>,
    pending: Vec<Pending>,
    /// Power never fails: nothing is tracked, and the durable bytes are the live ones.
    steady: bool,
    /// `write` and `set_len` calls so far.
    mutations: u64,
}

impl fmt::Debug for Volatile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Volatile")
            .field("durable", &self.durable.len())
            .field("live", &self.live.len())
            .field("pending", &self.pending.len())
            .field("steady", &self.steady)
            .field("mutations", &self.mutations)
            .finish()
    }
}

fn out_of_range() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, "out of range")
}

fn range(offset: u64, len: usize) -> io::Result<std::ops::Range<usize>> {
    let start = usize::try_from(offset).map_err(|_| out_of_range())?;
    let end = start.checked_add(len).ok_or_else(out_of_range)?;
    Ok(start..end)
}

impl Volatile {
    /// A disk whose durable (and live) bytes are `bytes`.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self {
            live: bytes.clone(),
            durable: bytes,
            pending: Vec::new(),
            steady: false,
            mutations: 0,
        }
    }

    /// An empty disk whose power never fails: every write is durable at once, so nothing is
    /// tracked (the `ops` target's disk: no copies at each sync).
    pub fn steady() -> Self {
        Self {
            steady: true,
            ..Self::default()
        }
    }

    /// The bytes as of the last completed sync.
    pub fn durable(&self) -> &[u8] {
        if self.steady {
            &self.live
        } else {
            &self.durable
        }
    }

    /// The bytes reads see (every call applied).
    pub fn live(&self) -> &[u8] {
        &self.live
    }

    /// Mutating calls since the last sync.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// `write` and `set_len` calls so far: unchanged means the bytes are unchanged.
    pub fn mutations(&self) -> u64 {
        self.mutations
    }

    /// The file's length as reads see it.
    pub fn len(&self) -> u64 {
        self.live.len() as u64
    }

    /// Whether the file is empty as reads see it.
    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    /// Reads `out.len()` bytes at `offset`; past the end is an error.
    pub fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        let r = range(offset, out.len())?;
        out.copy_from_slice(self.live.get(r).ok_or_else(out_of_range)?);
        Ok(())
    }

    /// Writes `data` at `offset`, within the file (as redb's backends require).
    pub fn write(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        let r = range(offset, data.len())?;
        self.live
            .get_mut(r)
            .ok_or_else(out_of_range)?
            .copy_from_slice(data);
        self.mutations += 1;
        if !self.steady {
            self.pending.push(Pending::Write {
                offset,
                data: data.to_vec(),
            });
        }
        Ok(())
    }

    /// Resizes the file (new bytes are zero).
    pub fn set_len(&mut self, len: u64) -> io::Result<()> {
        let n = usize::try_from(len).map_err(|_| out_of_range())?;
        self.live.resize(n, 0);
        self.mutations += 1;
        if !self.steady {
            self.pending.push(Pending::SetLen(len));
        }
        Ok(())
    }

    /// A completed sync: everything so far is durable.
    pub fn sync(&mut self) {
        if !self.steady {
            self.durable.clone_from(&self.live);
            self.pending.clear();
        }
    }

    /// One disk image a power cut now could leave, drawn from `seed` (see the module docs):
    /// the same seed gives the same image.
    pub fn crash_image(&self, seed: u64) -> Vec<u8> {
        let mut rng = Rng::new(seed);
        let style = Style::of(seed);
        let n = self.pending.len();
        // In order: calls before `cut` kept, the one at `cut` torn, the rest lost.
        let cut = usize::try_from(rng.below(n as u64 + 1)).unwrap_or(n);
        let mut img = self.durable().to_vec();
        for (i, call) in self.pending.iter().enumerate() {
            let fate = match style {
                Style::InOrder if i < cut => Fate::Kept,
                Style::InOrder if i == cut => Fate::Torn,
                Style::Reordered if rng.coin() => Fate::Kept,
                Style::InOrder | Style::Reordered => Fate::Lost,
                Style::Torn => match rng.below(3) {
                    0 => Fate::Lost,
                    1 => Fate::Kept,
                    _ => Fate::Torn,
                },
            };
            match call {
                Pending::SetLen(len) => {
                    // A size change is metadata: whole or not at all.
                    if fate == Fate::Kept || (fate == Fate::Torn && rng.coin()) {
                        img.resize(usize::try_from(*len).unwrap_or(img.len()), 0);
                    }
                }
                Pending::Write { offset, data } => {
                    if fate == Fate::Lost {
                        continue;
                    }
                    let mut at = *offset;
                    let end = offset + data.len() as u64;
                    while at < end {
                        // Up to the next sector boundary.
                        let next = ((at / SECTOR) + 1) * SECTOR;
                        let stop = next.min(end);
                        if fate == Fate::Kept || rng.coin() {
                            put(
                                &mut img,
                                at,
                                &data[(at - offset) as usize..(stop - offset) as usize],
                            );
                        }
                        at = stop;
                    }
                }
            }
        }
        img
    }
}

/// Writes `bytes` at `at`, extending `img` with zeros as needed.
fn put(img: &mut Vec<u8>, at: u64, bytes: &[u8]) {
    let start = usize::try_from(at).expect("in-memory offsets fit usize");
    let end = start + bytes.len();
    if img.len() < end {
        img.resize(end, 0);
    }
    img[start..end].copy_from_slice(bytes);
}

/// A redb storage backend over a [`Volatile`] disk that never fails; clones share the disk
/// (so a database can be dropped and opened again on it). The `ops` fuzz target runs on it
/// (no file system calls), and [`PowerDisk::crash_image`] gives what a power cut would leave.
#[derive(Clone, Default)]
pub struct PowerDisk(Arc<Mutex<Volatile>>);

impl fmt::Debug for PowerDisk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.lock().fmt(f)
    }
}

impl PowerDisk {
    /// A disk holding `bytes`, all durable.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Arc::new(Mutex::new(Volatile::new(bytes))))
    }

    /// An empty disk whose power never fails ([`Volatile::steady`]).
    pub fn steady() -> Self {
        Self(Arc::new(Mutex::new(Volatile::steady())))
    }

    /// The bytes as of the last completed sync.
    pub fn durable(&self) -> Vec<u8> {
        self.0.lock().durable().to_vec()
    }

    /// `write` and `set_len` calls so far ([`Volatile::mutations`]).
    pub fn mutations(&self) -> u64 {
        self.0.lock().mutations()
    }

    /// What a power cut now could leave (see [`Volatile::crash_image`]).
    pub fn crash_image(&self, seed: u64) -> Vec<u8> {
        self.0.lock().crash_image(seed)
    }
}

impl redb::StorageBackend for PowerDisk {
    fn len(&self) -> Result<u64, io::Error> {
        Ok(self.0.lock().len())
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), io::Error> {
        self.0.lock().read(offset, out)
    }

    fn set_len(&self, len: u64) -> Result<(), io::Error> {
        self.0.lock().set_len(len)
    }

    fn sync_data(&self) -> Result<(), io::Error> {
        self.0.lock().sync();
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), io::Error> {
        self.0.lock().write(offset, data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disk() -> Volatile {
        let mut v = Volatile::new(vec![1; 2048]);
        v.write(0, &[2; 1024]).unwrap();
        v.sync();
        v.write(512, &[3; 1024]).unwrap();
        v.set_len(4096).unwrap();
        v.write(3072, &[4; 600]).unwrap();
        v
    }

    #[test]
    fn a_sync_is_a_barrier() {
        let v = disk();
        let mut want = vec![2; 1024];
        want.extend([1; 1024]);
        assert_eq!(v.durable(), want.as_slice());
        for seed in 0..200 {
            let img = v.crash_image(seed);
            // Durable bytes never change: bytes 0..512 were synced and are never rewritten.
            assert_eq!(img[..512], [2; 512], "seed {seed}");
            // Every sector of the first three holds one value that was written to it.
            for (i, chunk) in img[..1536].chunks(512).enumerate() {
                let b = chunk[0];
                assert!(
                    chunk.iter().all(|&x| x == b),
                    "seed {seed}: sector {i} torn"
                );
            }
        }
    }

    #[test]
    fn every_outcome_is_reached() {
        let v = disk();
        let mut seen = std::collections::HashSet::new();
        for seed in 0..2000 {
            seen.insert(v.crash_image(seed));
        }
        // Nothing kept, everything kept, and torn mixtures in between.
        assert!(seen.contains(v.durable()));
        assert!(seen.contains(v.live()));
        assert!(seen.len() > 20, "{} images", seen.len());
    }
}
