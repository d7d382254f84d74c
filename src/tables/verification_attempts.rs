//! Failed verification attempts per identifier, for stores that accept short verification
//! tokens (`Builder::allow_short_verification_tokens`): the key is the identifier's hash
//! ([`identifier_key`](super::verification::identifier_key)), never the address; the value is
//! `(failures, window start µs)`. The counting rule itself is
//! `limits::next_failed_attempt`, shared with every backend.

use redb::{ReadableTable, ReadableTableMetadata, Table};

use crate::error::Result;
use crate::integrity::{IntegrityProblem, IntegrityReport};
use crate::limits::{attempt_counter_is_stale, next_failed_attempt};
use crate::schema::{self, HashKey, VERIFICATION_ATTEMPTS_NAME};
use crate::tables::verification::VerificationTables;
use crate::token::hex;

/// The attempts table inside a write transaction.
pub(crate) struct AttemptTable<'t> {
    t: Table<'t, HashKey, (u32, i64)>,
}

impl<'t> AttemptTable<'t> {
    pub(crate) fn open(txn: &'t redb::WriteTransaction) -> Result<Self> {
        Ok(Self {
            t: txn.open_table(schema::VERIFICATION_ATTEMPTS)?,
        })
    }

    /// Counts one failed attempt for the identifier `ident` at `now`, with a limit of `max`.
    /// Only an identifier with an outstanding link is counted (with no link there is nothing
    /// to guess, and junk identifiers then cannot fill the table). When the limit is reached
    /// every link of the identifier is deleted and its counter with them; returns whether
    /// that happened.
    pub(crate) fn fail(
        &mut self,
        links: &mut VerificationTables<'_>,
        ident: &HashKey,
        now: i64,
        max: u32,
    ) -> Result<bool> {
        if !links.any_of(ident)? {
            return Ok(false);
        }
        let stored = self.t.get(ident)?.map(|g| g.value());
        if let Some(counter) = next_failed_attempt(stored, now, max) {
            self.t.insert(ident, counter)?;
            Ok(false)
        } else {
            links.remove_all_of(ident)?;
            self.t.remove(ident)?;
            Ok(true)
        }
    }

    /// Forgets the identifier's failures (a link of it was used successfully).
    pub(crate) fn reset(&mut self, ident: &HashKey) -> Result<()> {
        self.t.remove(ident)?;
        Ok(())
    }

    /// Removes stale counters among at most `limit` rows after `after` (from the start when
    /// `None`); returns (rows walked, rows removed, the last key walked). The table has no
    /// expiry index: it holds one small row per address with recent failures, and purge walks
    /// it in batches from a cursor so that one transaction stays short.
    pub(crate) fn purge(
        &mut self,
        now: i64,
        after: Option<HashKey>,
        limit: usize,
    ) -> Result<(usize, u64, Option<HashKey>)> {
        let mut walked = 0;
        let mut last = None;
        let mut stale = Vec::new();
        let range = match &after {
            Some(k) => self
                .t
                .range::<HashKey>((std::ops::Bound::Excluded(*k), std::ops::Bound::Unbounded))?,
            None => self.t.range::<HashKey>(..)?,
        };
        for e in range {
            if walked >= limit {
                break;
            }
            let (k, v) = e?;
            walked += 1;
            let key = k.value();
            last = Some(key);
            if attempt_counter_is_stale(v.value().1, now) {
                stale.push(key);
            }
        }
        for key in &stale {
            self.t.remove(key)?;
        }
        Ok((walked, stale.len() as u64, last))
    }
}

/// Every counter is well-formed: at least one failure, a window start that is a storable
/// time. Returns how many counters there are.
pub(crate) fn check(rtx: &redb::ReadTransaction, p: &mut IntegrityReport) -> Result<u64> {
    let t = rtx.open_table(schema::VERIFICATION_ATTEMPTS)?;
    for e in t.iter()? {
        let (k, v) = e?;
        let (failures, start) = v.value();
        let detail = if failures == 0 {
            Some("a counter of zero failures")
        } else if chrono::DateTime::from_timestamp_micros(start).is_none() {
            Some("a window start out of range")
        } else {
            None
        };
        if let Some(detail) = detail {
            p.push(IntegrityProblem::CorruptRecord {
                table: VERIFICATION_ATTEMPTS_NAME,
                key: hex(&k.value()),
                detail: detail.to_owned(),
            });
        }
    }
    Ok(t.len()?)
}
