//! Group commit: single-operation writes from many threads share one transaction and one fsync.
//!
//! Each call of a write operation on [`AuthDb`](crate::AuthDb) becomes a job holding its own
//! arguments and the channel to its caller. The first caller to find no leader becomes the
//! leader: it takes every job queued at that moment, runs them in order in one write
//! transaction, commits once, and hands each job's result to its own caller. Jobs arriving
//! meanwhile queue up; when the leader is done it hands leadership to the oldest of them, which
//! runs the next batch. A caller alone pays nothing extra: it leads a batch of one immediately.
//!
//! Isolation: every operation checks everything that can fail for a reason other than storage
//! (conflicts, missing users, invalid input) *before* it writes, so a job that returns such an
//! error has written nothing and its neighbours commit normally. A storage or corruption error,
//! or a failed commit, abandons the batch, and every job in it is then run again in a
//! transaction of its own, so each caller gets its own result.
//!
//! Durability is unchanged: a caller returns only after the commit containing its write did.

use std::collections::VecDeque;
use std::sync::mpsc;

use parking_lot::Mutex;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::handle::Handle;
use crate::txn::WriteTxn;

/// What a queued job's caller is told.
enum Msg<T> {
    /// The job's result.
    Done(Result<T>),
    /// Become the leader and run the next batch.
    Lead,
}

/// How a job's run went.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// It succeeded; its writes are in the transaction.
    Ok,
    /// It failed before writing anything (conflict, invalid input, missing user...).
    Refused,
    /// Storage or corruption error: the transaction must not be committed.
    Fatal,
}

trait Job: Send {
    /// Runs the operation in `tx` and keeps its result.
    fn run(&mut self, tx: &WriteTxn<'_>) -> Outcome;
    /// Replaces the kept result with an error (a failed begin or commit).
    fn fail(&mut self, e: Error);
    /// Sends the kept result to the caller.
    fn deliver(self: Box<Self>);
    /// Drops the kept result (the batch is abandoned; the job will run again).
    fn reset(&mut self);
    /// Tells the caller to lead the next batch.
    fn lead(&self);
}

struct TypedJob<T, F> {
    op: F,
    result: Option<Result<T>>,
    reply: mpsc::SyncSender<Msg<T>>,
}

impl<T, F> Job for TypedJob<T, F>
where
    T: Send,
    F: FnMut(&WriteTxn<'_>) -> Result<T> + Send,
{
    fn run(&mut self, tx: &WriteTxn<'_>) -> Outcome {
        let r = (self.op)(tx);
        let outcome = match &r {
            Ok(_) => Outcome::Ok,
            Err(Error::Storage(_) | Error::Corrupt { .. }) => Outcome::Fatal,
            Err(_) => Outcome::Refused,
        };
        self.result = Some(r);
        outcome
    }

    fn fail(&mut self, e: Error) {
        self.result = Some(Err(e));
    }

    fn deliver(self: Box<Self>) {
        if let Some(r) = self.result {
            // The caller is blocked on the other end; it cannot be gone.
            let _ = self.reply.send(Msg::Done(r));
        }
    }

    fn reset(&mut self) {
        self.result = None;
    }

    fn lead(&self) {
        let _ = self.reply.send(Msg::Lead);
    }
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Box<dyn Job>>,
    leader: bool,
    stats: WriteStats,
}

/// Counters of the group-commit writer, from [`AuthDb::write_stats`](crate::AuthDb::write_stats).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteStats {
    /// Single-operation writes submitted (each `AuthDb` write call is one).
    pub operations: u64,
    /// Write transactions committed (or attempted) for them. `operations / transactions` is
    /// the average batch size: above 1 when concurrent writers shared fsyncs.
    pub transactions: u64,
}

/// The group-commit queue of one database.
#[derive(Default)]
pub(crate) struct GroupCommit {
    queue: Mutex<Queue>,
}

/// Passes leadership on (or gives it up) when a leader finishes, even by unwinding.
struct Handoff<'a>(&'a GroupCommit);

impl Drop for Handoff<'_> {
    fn drop(&mut self) {
        let mut q = self.0.queue.lock();
        if let Some(next) = q.jobs.front() {
            next.lead();
        } else {
            q.leader = false;
        }
    }
}

impl GroupCommit {
    /// Runs `op` in a write transaction shared with whatever other operations are waiting,
    /// and returns its result once that transaction has committed.
    ///
    /// `op` may run more than once (if its batch is abandoned), each time in a fresh
    /// transaction that is never committed with an earlier run's writes.
    pub(crate) fn submit<T, F>(&self, db: &Handle, cfg: &Config, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnMut(&WriteTxn<'_>) -> Result<T> + Send + 'static,
    {
        let (reply, rx) = mpsc::sync_channel(2);
        let job = Box::new(TypedJob {
            op,
            result: None,
            reply,
        });
        let lead = {
            let mut q = self.queue.lock();
            q.jobs.push_back(job);
            !std::mem::replace(&mut q.leader, true)
        };
        if !lead {
            match rx.recv() {
                Ok(Msg::Done(r)) => return r,
                Ok(Msg::Lead) => {}
                Err(_) => return Err(lost()),
            }
        }
        {
            let _handoff = Handoff(self);
            let batch: Vec<Box<dyn Job>> = self.queue.lock().jobs.drain(..).collect();
            let n = batch.len() as u64;
            let transactions = run_batch(db, cfg, batch);
            let stats = &mut self.queue.lock().stats;
            stats.operations += n;
            stats.transactions += transactions;
        }
        match rx.recv() {
            Ok(Msg::Done(r)) => r,
            Ok(Msg::Lead) | Err(_) => Err(lost()),
        }
    }

    pub(crate) fn stats(&self) -> WriteStats {
        self.queue.lock().stats
    }
}

fn lost() -> Error {
    Error::Storage(Box::new(redb::Error::Io(std::io::Error::other(
        "group commit: the write was abandoned",
    ))))
}

/// Runs a batch; returns how many transactions it took.
fn run_batch(db: &Handle, cfg: &Config, mut batch: Vec<Box<dyn Job>>) -> u64 {
    let mut transactions = 0;
    if batch.len() > 1 {
        transactions += 1;
        if let Ok(tx) = WriteTxn::begin(db, cfg) {
            let usable = batch.iter_mut().all(|job| job.run(&tx) != Outcome::Fatal);
            if usable && tx.commit().is_ok() {
                for job in batch {
                    job.deliver();
                }
                return transactions;
            }
        }
        for job in &mut batch {
            job.reset();
        }
    }
    // One job, or an abandoned batch: every job in a transaction of its own. A refused job's
    // transaction is dropped (aborted) rather than committed.
    for mut job in batch {
        transactions += 1;
        match WriteTxn::begin(db, cfg) {
            Ok(tx) => {
                if job.run(&tx) == Outcome::Ok
                    && let Err(e) = tx.commit()
                {
                    job.fail(e);
                }
            }
            Err(e) => job.fail(e),
        }
        job.deliver();
    }
    transactions
}
