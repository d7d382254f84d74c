//! Group commit: single-operation writes from many threads share one transaction and one fsync.
//!
//! Each call of a write operation on [`AuthDb`](crate::AuthDb) becomes a job holding its own
//! arguments and the channel to its caller. The first caller to find no leader becomes the
//! leader: it takes the jobs queued at that moment (at most [`MAX_BATCH`]), runs them in order
//! in one write transaction, commits once, and hands each job's result to its own caller. Jobs
//! arriving meanwhile queue up; when the leader is done it hands leadership to the oldest of
//! them, which runs the next batch. A caller alone pays nothing extra: it leads a batch of one.
//!
//! Isolation: every operation checks everything that can fail for a reason other than storage
//! (conflicts, missing users, invalid input) *before* it writes, so a job that returns such an
//! error has written nothing and its neighbours commit normally (`tests/refusals.rs` checks
//! this for every refusal). A job that fails with a storage or corruption error, or panics,
//! may have written part of its work: the transaction is dropped, that job gets its own error
//! (or its panic, re-raised in the caller's thread — never in the leader's), and the rest of the
//! batch runs again in one new transaction. A failed commit is retried once, as a whole batch,
//! before every job in it is given the error. So one bad job costs one extra transaction, not
//! one per job.
//!
//! Durability is unchanged: a caller returns only after the commit containing its write did.

use std::any::Any;
use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::mpsc;

use parking_lot::Mutex;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::handle::Handle;
use crate::txn::WriteTxn;

/// The most jobs one transaction takes; later arrivals wait for the next batch.
pub(crate) const MAX_BATCH: usize = 64;

/// What a queued job's caller is told.
enum Msg<T> {
    /// The job's result.
    Done(Result<T>),
    /// The job panicked; the caller re-raises it.
    Panicked(Box<dyn Any + Send>),
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
    /// Storage or corruption error, or a panic: its result is final, and the transaction
    /// must not be committed.
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
    panic: Option<Box<dyn Any + Send>>,
    reply: mpsc::SyncSender<Msg<T>>,
}

impl<T, F> Job for TypedJob<T, F>
where
    T: Send,
    F: FnMut(&WriteTxn<'_>) -> Result<T> + Send,
{
    fn run(&mut self, tx: &WriteTxn<'_>) -> Outcome {
        let op = &mut self.op;
        match catch_unwind(AssertUnwindSafe(|| op(tx))) {
            Ok(r) => {
                let outcome = match &r {
                    Ok(_) => Outcome::Ok,
                    Err(Error::Storage(_) | Error::Corrupt { .. }) => Outcome::Fatal,
                    Err(_) => Outcome::Refused,
                };
                self.result = Some(r);
                outcome
            }
            Err(payload) => {
                self.panic = Some(payload);
                Outcome::Fatal
            }
        }
    }

    fn fail(&mut self, e: Error) {
        self.result = Some(Err(e));
    }

    fn deliver(self: Box<Self>) {
        // The caller is blocked on the other end; it cannot be gone.
        if let Some(p) = self.panic {
            let _ = self.reply.send(Msg::Panicked(p));
        } else if let Some(r) = self.result {
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
    /// Single-operation writes submitted (each `AuthDb` write call is one, and so is each
    /// batch of a purge).
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
    /// and returns its result once that transaction has committed. A panic inside `op` is
    /// re-raised here, in the caller's thread.
    ///
    /// `op` may run more than once (if its batch is abandoned because of another job), each
    /// time in a fresh transaction that is never committed with an earlier run's writes.
    pub(crate) fn submit<T, F>(&self, db: &Handle, cfg: &Config, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnMut(&WriteTxn<'_>) -> Result<T> + Send + 'static,
    {
        let (reply, rx) = mpsc::sync_channel(2);
        let job = Box::new(TypedJob {
            op,
            result: None,
            panic: None,
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
                Ok(Msg::Panicked(p)) => resume_unwind(p),
                Ok(Msg::Lead) => {}
                Err(_) => return Err(lost()),
            }
        }
        {
            let _handoff = Handoff(self);
            let batch: Vec<Box<dyn Job>> = {
                let mut q = self.queue.lock();
                let n = q.jobs.len().min(MAX_BATCH);
                q.jobs.drain(..n).collect()
            };
            let n = batch.len() as u64;
            let transactions = run_batch(db, cfg, batch);
            let stats = &mut self.queue.lock().stats;
            stats.operations += n;
            stats.transactions += transactions;
        }
        match rx.recv() {
            Ok(Msg::Done(r)) => r,
            Ok(Msg::Panicked(p)) => resume_unwind(p),
            Ok(Msg::Lead) | Err(_) => Err(lost()),
        }
    }

    pub(crate) fn stats(&self) -> WriteStats {
        self.queue.lock().stats
    }

    /// Counts a write that ran in a transaction of its own, outside any batch (purge).
    pub(crate) fn count_alone(&self) {
        let stats = &mut self.queue.lock().stats;
        stats.operations += 1;
        stats.transactions += 1;
    }
}

fn lost() -> Error {
    Error::Storage(Box::new(redb::Error::Io(std::io::Error::other(
        "group commit: the write was abandoned",
    ))))
}

/// Runs a batch, delivering every job's result; returns how many transactions it took.
fn run_batch(db: &Handle, cfg: &Config, mut batch: Vec<Box<dyn Job>>) -> u64 {
    let mut transactions = 0;
    let mut commit_retried = false;
    while !batch.is_empty() {
        transactions += 1;
        let tx = match WriteTxn::begin(db, cfg) {
            Ok(tx) => tx,
            Err(e) => {
                // No transaction at all (read-only handle, storage failure): nothing ran.
                fail_all(batch, e);
                return transactions;
            }
        };
        let mut fatal = None;
        let mut wrote = false;
        for (i, job) in batch.iter_mut().enumerate() {
            match job.run(&tx) {
                Outcome::Ok => wrote = true,
                Outcome::Refused => {}
                Outcome::Fatal => {
                    fatal = Some(i);
                    break;
                }
            }
        }
        if let Some(i) = fatal {
            // Drop the transaction (abort); the failed job keeps its own result and the
            // others, whose results came from the abandoned transaction, run again.
            drop(tx);
            let failed = batch.remove(i);
            failed.deliver();
            for job in &mut batch {
                job.reset();
            }
            continue;
        }
        if !wrote {
            // Every job was refused before writing: nothing to commit, no fsync.
            drop(tx);
            for job in batch {
                job.deliver();
            }
            return transactions;
        }
        match tx.commit() {
            Ok(()) => {
                for job in batch {
                    job.deliver();
                }
                return transactions;
            }
            Err(_) if !commit_retried => {
                // Once more, as a whole: a transient failure costs one transaction, not N.
                commit_retried = true;
                for job in &mut batch {
                    job.reset();
                }
            }
            Err(e) => {
                fail_all(batch, e);
                return transactions;
            }
        }
    }
    transactions
}

/// The same failure, for the other jobs of a batch (errors are not `Clone`).
fn again(first: &Error) -> Error {
    match first {
        Error::ReadOnly => Error::ReadOnly,
        other => Error::Storage(Box::new(redb::Error::Io(std::io::Error::other(format!(
            "the shared transaction failed: {other}"
        ))))),
    }
}

/// Gives every job of `batch` the error `e` (the first gets `e` itself).
fn fail_all(batch: Vec<Box<dyn Job>>, e: Error) {
    let copy = again(&e);
    let mut first = Some(e);
    for mut job in batch {
        job.fail(first.take().unwrap_or_else(|| again(&copy)));
        job.deliver();
    }
}
