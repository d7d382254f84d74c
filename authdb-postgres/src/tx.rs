//! [`PgTx`]: every operation inside one open SQL transaction.

use std::cell::RefCell;
use std::fmt;

use authdb::Result;
use postgres::Transaction;

use crate::config::Config;
use crate::db::{Db, Runner};
use crate::error::{PgError, backend, pg};
use crate::ops::impl_stores;
use crate::pool::Stmts;

/// The name of the savepoint around each writing operation.
const SAVEPOINT: &str = "authdb_op";

/// The transaction handed to [`PgAuthDb::write`](authdb::Transactional::write)'s closure: it
/// implements every store trait, each call inside the one SQL transaction (reads see the
/// transaction's own writes).
///
/// Each writing call runs inside a savepoint, released when it succeeds and rolled back when
/// it returns an error, so a refused operation (a conflict, a missing user, invalid input)
/// leaves the transaction usable. A database error aborts the whole transaction (PostgreSQL's
/// rule): later calls then fail at once and [`write`](authdb::Transactional::write) rolls back.
pub struct PgTx<'a> {
    pub(crate) state: RefCell<TxState<'a>>,
    pub(crate) cfg: &'a Config,
}

pub(crate) struct TxState<'a> {
    pub(crate) tx: Transaction<'a>,
    pub(crate) stmts: &'a mut Stmts,
    /// A database error happened outside a savepoint: PostgreSQL aborted the transaction.
    pub(crate) poisoned: bool,
}

impl fmt::Debug for PgTx<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgTx").finish_non_exhaustive()
    }
}

impl PgTx<'_> {
    /// The store's current time, as [`Maintenance::now`](authdb::Maintenance::now).
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.cfg.now()
    }
}

/// Whether `e` came from the database (and so aborted the transaction).
fn from_database(e: &authdb::Error) -> bool {
    matches!(e, authdb::Error::Backend { .. })
}

impl Runner for PgTx<'_> {
    fn cfg(&self) -> &Config {
        self.cfg
    }

    fn read<T>(&self, f: impl FnOnce(&mut Db<'_>) -> Result<T>) -> Result<T> {
        let mut state = self.state.borrow_mut();
        let TxState {
            tx,
            stmts,
            poisoned,
        } = &mut *state;
        if *poisoned {
            return Err(backend(PgError::aborted()));
        }
        let result = f(&mut Db::new(tx, stmts, self.cfg));
        if result.as_ref().is_err_and(from_database) {
            *poisoned = true;
        }
        result
    }

    fn write<T>(&self, mut f: impl FnMut(&mut Db<'_>) -> Result<T>) -> Result<T> {
        let mut state = self.state.borrow_mut();
        let TxState {
            tx,
            stmts,
            poisoned,
        } = &mut *state;
        if *poisoned {
            return Err(backend(PgError::aborted()));
        }
        let mut sp = match tx.savepoint(SAVEPOINT) {
            Ok(sp) => sp,
            Err(e) => {
                *poisoned = true;
                return Err(pg(e));
            }
        };
        let result = f(&mut Db::new(&mut sp, stmts, self.cfg));
        match result {
            Ok(v) => match sp.commit() {
                Ok(()) => Ok(v),
                Err(e) => {
                    *poisoned = true;
                    Err(pg(e))
                }
            },
            Err(e) => {
                // Back to the savepoint (which also clears PostgreSQL's aborted state after a
                // failed statement), then drop it.
                let undone = sp
                    .rollback()
                    .and_then(|()| tx.batch_execute(&format!("RELEASE SAVEPOINT {SAVEPOINT}")));
                if undone.is_err() {
                    *poisoned = true;
                }
                Err(e)
            }
        }
    }
}

impl_stores!(PgTx<'_>);
