//! Read snapshots, reused until the next commit.
//!
//! Beginning a redb read transaction costs about as much as the lookup it serves. In the
//! exclusive mode every commit to the file goes through this process, so a snapshot stays
//! current until this process commits again: reads share one (`Arc`) until a commit bumps the
//! generation. In the shared modes another process may commit at any time, so every read
//! begins its own transaction.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use crate::error::Result;
use crate::handle::Handle;

/// Counts this process's commits to one database.
#[derive(Default)]
pub(crate) struct Generation(AtomicU64);

impl Generation {
    /// Called after every commit, before the committing caller returns.
    pub(crate) fn bump(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }

    fn current(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// The shared snapshot and the generation it was taken at.
#[derive(Default)]
pub(crate) struct SnapshotCache {
    cached: Mutex<Option<(u64, Arc<redb::ReadTransaction>)>>,
}

impl SnapshotCache {
    /// Drops the shared snapshot (compaction needs no live read transaction).
    pub(crate) fn clear(&self) {
        *self.cached.lock() = None;
    }

    /// A snapshot at least as new as every commit that finished before this call.
    ///
    /// The generation is read *before* the transaction begins, so a stored pair never claims
    /// a generation newer than its snapshot.
    pub(crate) fn read(
        &self,
        db: &Handle,
        generation: &Generation,
        reuse: bool,
    ) -> Result<Arc<redb::ReadTransaction>> {
        if !reuse {
            return Ok(Arc::new(db.begin_read()?));
        }
        let now = generation.current();
        if let Some((g, snap)) = &*self.cached.lock()
            && *g == now
        {
            return Ok(Arc::clone(snap));
        }
        let snap = Arc::new(db.begin_read()?);
        let mut cached = self.cached.lock();
        if cached.as_ref().is_none_or(|(g, _)| *g <= now) {
            *cached = Some((now, Arc::clone(&snap)));
        }
        Ok(snap)
    }
}
