//! [`rekey`]: re-sealing every account secret under a new encryption key.

use std::ops::Bound;
use std::path::Path;

use redb::ReadableTable;
use serde::Serialize;

use crate::crypto::{EncryptionKey, account_ad};
use crate::db::AuthDb;
use crate::error::Result;
use crate::model::AccountId;
use crate::schema::IdKey;
use crate::source::Source;
use crate::tables::accounts::AccountTables;

/// How many accounts [`rekey`] re-seals per write transaction.
pub const REKEY_BATCH: usize = 500;

/// What [`rekey`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct RekeyStats {
    /// Accounts examined.
    pub accounts: u64,
    /// Sealed values re-sealed under the new key.
    pub resealed: u64,
    /// Sealed values that were already under the new key (left alone: a resumed run skips
    /// what an interrupted one finished).
    pub already_new: u64,
    /// Accounts with a sealed value that opens under neither key; they were left unchanged.
    pub unreadable: Vec<AccountId>,
    /// Write transactions committed.
    pub batches: u64,
}

/// Re-seals every account secret (OAuth refresh, access and ID tokens, the account's extra
/// fields) of the database at `path` from `old` to `new`.
///
/// Run it with the application stopped (it opens the file itself; a file held by a running
/// application is [`Error::AlreadyOpen`](crate::Error::AlreadyOpen)), then start the
/// application with the new key. The accounts are walked in id order in batches of
/// [`REKEY_BATCH`], one durable write transaction each, so an interruption (a crash, Ctrl-C)
/// loses at most the batch in progress and leaves every value under one key or the other.
/// Running it again finishes the job: each sealed value names the key it was sealed with, and
/// values already under `new` are skipped. Values of authdb 0.1 (no key id) are opened with
/// `old`. A value that opens under neither key is reported in
/// [`RekeyStats::unreadable`] and left as it is.
pub fn rekey(
    path: impl AsRef<Path>,
    old: &EncryptionKey,
    new: &EncryptionKey,
) -> Result<RekeyStats> {
    rekey_with_progress(path, old, new, |_| {})
}

/// [`rekey`], calling `progress` with the number of accounts examined after each batch.
pub fn rekey_with_progress(
    path: impl AsRef<Path>,
    old: &EncryptionKey,
    new: &EncryptionKey,
    mut progress: impl FnMut(u64),
) -> Result<RekeyStats> {
    let db = AuthDb::open(path)?;
    let mut stats = RekeyStats::default();
    let mut cursor: Option<IdKey> = None;
    loop {
        let ids: Vec<IdKey> = {
            let rtx = db.read()?;
            let t = rtx.accounts()?;
            let lower = cursor.map_or(Bound::Unbounded, Bound::Excluded);
            let mut ids = Vec::with_capacity(REKEY_BATCH);
            for e in t.range::<IdKey>((lower, Bound::Unbounded))? {
                ids.push(e?.0.value());
                if ids.len() >= REKEY_BATCH {
                    break;
                }
            }
            ids
        };
        let Some(last) = ids.last().copied() else {
            break;
        };
        let tx = db.begin_write()?;
        {
            let mut accounts = AccountTables::open(&tx.txn)?;
            for id in &ids {
                let Some(mut rec) = accounts.get(id)? else {
                    continue;
                };
                stats.accounts += 1;
                let mut changed = false;
                let mut unreadable = false;
                for (field, value) in [
                    ("refresh_token", &mut rec.refresh_token),
                    ("access_token", &mut rec.access_token),
                    ("id_token", &mut rec.id_token),
                    ("extra", &mut rec.extra),
                ] {
                    let Some(sealed) = value.as_ref() else {
                        continue;
                    };
                    let ad = account_ad(id, field);
                    if new.open(&ad, sealed).is_ok() {
                        stats.already_new += 1;
                    } else if let Ok(plain) = old.open(&ad, sealed) {
                        *value = Some(new.seal(&ad, &plain)?);
                        stats.resealed += 1;
                        changed = true;
                    } else {
                        unreadable = true;
                    }
                }
                if unreadable {
                    stats.unreadable.push(AccountId::from_bytes(*id));
                } else if changed {
                    accounts.put(&rec, false)?;
                }
            }
        }
        tx.commit()?;
        stats.batches += 1;
        cursor = Some(last);
        progress(stats.accounts);
    }
    Ok(stats)
}
