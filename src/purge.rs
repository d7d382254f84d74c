//! Removing expired sessions and verification requests: on demand, or from a background task.

use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;

use crate::db::AuthDb;
use crate::error::Result;
use crate::model::PurgeStats;
use crate::tables::verification_attempts::AttemptTable;

/// How many expired rows `purge_expired` walks per write transaction.
pub const PURGE_BATCH: usize = 1000;

impl AuthDb {
    /// Deletes expired sessions, verification requests and web-session records (and stale
    /// failed-attempt counters, see
    /// [`Builder::allow_short_verification_tokens`](crate::Builder::allow_short_verification_tokens)),
    /// walking the expiry indexes in
    /// batches of [`PURGE_BATCH`] entries per transaction (so writers are never blocked long).
    /// Each batch is a transaction of its own: purge never shares a commit with sign-ins.
    /// Expired rows are found through the expiry indexes, never by scanning the tables.
    #[cfg_attr(
        feature = "tracing",
        tracing::instrument(level = "debug", skip_all, ret, err(level = "debug"))
    )]
    pub fn purge_expired(&self) -> Result<PurgeStats> {
        let now = self.cfg().now_micros();
        let mut stats = PurgeStats::default();
        loop {
            let (walked, removed) = self.run_alone(|tx| tx.purge_sessions(now, PURGE_BATCH))?;
            stats.sessions += removed;
            if walked < PURGE_BATCH {
                break;
            }
        }
        loop {
            let n = self.run_alone(|tx| tx.purge_verification(now, PURGE_BATCH))?;
            stats.verification_requests += n;
            if n < PURGE_BATCH as u64 {
                break;
            }
        }
        // Stale failed-attempt counters (`allow_short_verification_tokens`): not counted in
        // the stats, which report expired rows. The table has no expiry index; it is walked
        // from a cursor, one batch per transaction.
        let mut after = None;
        loop {
            let (walked, _, last) =
                self.run_alone(|tx| AttemptTable::open(&tx.txn)?.purge(now, after, PURGE_BATCH))?;
            after = last;
            if walked < PURGE_BATCH {
                break;
            }
        }
        loop {
            let (walked, removed) = self.run_alone(|tx| tx.purge_web_sessions(now, PURGE_BATCH))?;
            stats.web_sessions += removed;
            if walked < PURGE_BATCH {
                break;
            }
        }
        Ok(stats)
    }

    /// Starts a background thread that calls [`purge_expired`](Self::purge_expired) every
    /// `interval` until the returned handle is stopped or dropped. Errors are counted in the
    /// handle, not printed.
    pub fn spawn_purge_task(&self, interval: std::time::Duration) -> PurgeTask {
        let (stop, rx) = mpsc::channel::<()>();
        let db = self.clone();
        let stats = Arc::new(parking_lot::Mutex::new(PurgeTaskStats::default()));
        let shared = Arc::clone(&stats);
        let thread = std::thread::Builder::new()
            .name("authdb-purge".into())
            .spawn(move || {
                // Any message or a dropped sender ends the loop.
                while let Err(RecvTimeoutError::Timeout) = rx.recv_timeout(interval) {
                    let result = db.purge_expired();
                    let mut s = shared.lock();
                    s.runs += 1;
                    match result {
                        Ok(p) => {
                            s.purged.sessions += p.sessions;
                            s.purged.verification_requests += p.verification_requests;
                            s.purged.web_sessions += p.web_sessions;
                        }
                        Err(_) => s.errors += 1,
                    }
                }
            })
            .ok();
        PurgeTask {
            stop: Some(stop),
            thread,
            stats,
        }
    }
}

/// Counters of a [`PurgeTask`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PurgeTaskStats {
    /// How many purges ran.
    pub runs: u64,
    /// How many purges failed.
    pub errors: u64,
    /// Everything removed so far.
    pub purged: PurgeStats,
}

/// The handle of [`AuthDb::spawn_purge_task`]. Dropping it stops the task.
#[derive(Debug)]
pub struct PurgeTask {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    stats: Arc<parking_lot::Mutex<PurgeTaskStats>>,
}

impl PurgeTask {
    /// What the task has done so far.
    #[must_use]
    pub fn stats(&self) -> PurgeTaskStats {
        *self.stats.lock()
    }

    /// Stops the task and waits for a purge in progress to finish.
    pub fn stop(mut self) -> PurgeTaskStats {
        self.halt();
        self.stats()
    }

    fn halt(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for PurgeTask {
    fn drop(&mut self) {
        self.halt();
    }
}
