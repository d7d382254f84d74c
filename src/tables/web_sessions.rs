//! Web sessions (tower-sessions' records): one table, three kinds of entry told apart by a
//! one-byte key prefix, as for database sessions (`sessions.rs`).
//!
//! - `r` + id hash → the record (`codec::WebSessionRecord`);
//! - `u` + user id + id hash → empty: the by-user index, only for records naming a user;
//! - `x` + expiry (sortable big-endian) + id hash → empty: the expiry index.
//!
//! The id hash is the SHA-256 of the record's 16-byte id; the id itself (the cookie value) is
//! never stored. Unlike database sessions, whose hot write only extends the expiry, every save
//! of a web session rewrites the whole record, so the expiry entry is kept exact: it moves
//! with the record in the same transaction.

use redb::{ReadableTable, Table};

use crate::codec::{self, WebSessionRecord, from_micros};
use crate::error::{Error, Result};
use crate::integrity::{self, IntegrityProblem, IntegrityReport};
use crate::model::UserId;
use crate::model::web_session::{WebSession, WebSessionHandle, WebSessionId, WebSessionInfo};
use crate::schema::{
    self, HashKey, IdKey, WEB_SESSIONS_BY_EXPIRY_NAME, WEB_SESSIONS_BY_USER_NAME, WEB_SESSIONS_NAME,
};
use crate::tables::is_expired;
use crate::token::hex;

use super::prefixed::{
    BY_EXPIRY, BY_USER, RECORD, due_entries, entry_user, expiry_key, filed_expiry, record_key,
    remove_due, tail_hash, user_hashes, user_key,
};

/// The key a web session is stored under: SHA-256 of its 16-byte id.
pub(crate) fn id_hash(id: &WebSessionId) -> HashKey {
    id.hash()
}

/// The web session model for a stored record and the id the caller gave.
pub(crate) fn to_model(rec: &WebSessionRecord, id: &WebSessionId) -> Result<WebSession> {
    Ok(WebSession {
        id: *id,
        user_id: rec.user_id.map(UserId),
        expires: from_micros(WEB_SESSIONS_NAME, rec.expires)?,
        data: rec.data.clone(),
    })
}

pub(crate) fn to_info(rec: &WebSessionRecord, hash: &HashKey) -> Result<WebSessionInfo> {
    const T: &str = WEB_SESSIONS_NAME;
    Ok(WebSessionInfo {
        handle: WebSessionHandle(*hash),
        user_id: rec.user_id.map(UserId),
        expires: from_micros(T, rec.expires)?,
        created_at: from_micros(T, rec.created_at)?,
        updated_at: from_micros(T, rec.updated_at)?,
        data_len: rec.data.len(),
    })
}

/// The stored web session under the id hash `hash`.
pub(crate) fn record(
    t: &impl ReadableTable<&'static [u8], &'static [u8]>,
    hash: &HashKey,
) -> Result<Option<WebSessionRecord>> {
    t.get(record_key(hash).as_slice())?
        .map(|g| codec::decode(hash, g.value()))
        .transpose()
}

/// The live web session with this id, or `None` (missing or expired).
pub(crate) fn load(
    t: &impl ReadableTable<&'static [u8], &'static [u8]>,
    id: &WebSessionId,
    now: i64,
) -> Result<Option<WebSession>> {
    match record(t, &id_hash(id))? {
        Some(rec) if !is_expired(now, rec.expires) => to_model(&rec, id).map(Some),
        _ => Ok(None),
    }
}

/// The user's live web sessions, oldest first.
pub(crate) fn list(
    t: &impl ReadableTable<&'static [u8], &'static [u8]>,
    user_id: &UserId,
    now: i64,
) -> Result<Vec<WebSessionInfo>> {
    let user = user_id.to_bytes();
    let mut out = Vec::new();
    for h in user_hashes(t, &user)? {
        if let Some(rec) = record(t, &h)?
            && rec.user_id == Some(user_id.0)
            && !is_expired(now, rec.expires)
        {
            out.push(to_info(&rec, &h)?);
        }
    }
    out.sort_by_key(|s| (s.created_at, s.handle));
    Ok(out)
}

/// Opens the web session table of a read transaction.
pub(crate) fn open_read(
    rtx: &redb::ReadTransaction,
) -> Result<redb::ReadOnlyTable<&'static [u8], &'static [u8]>> {
    Ok(rtx.open_table(schema::WEB_SESSIONS)?)
}

/// The web session table opened for writing.
pub(crate) struct WebSessionTable<'t> {
    pub(crate) t: Table<'t, &'static [u8], &'static [u8]>,
}

impl<'t> WebSessionTable<'t> {
    pub(crate) fn open(txn: &'t redb::WriteTransaction) -> Result<Self> {
        Ok(Self {
            t: txn.open_table(schema::WEB_SESSIONS)?,
        })
    }

    /// Whether a record (even a damaged one) exists under `hash`.
    pub(crate) fn exists(&self, hash: &HashKey) -> Result<bool> {
        Ok(self.t.get(record_key(hash).as_slice())?.is_some())
    }

    /// Stores `rec` under `hash` with its index entries, replacing the record stored there and
    /// its entries. Returns the record replaced (`None` if there was none, or a damaged one,
    /// whose entries cannot be known: they are dropped when met, by purge or by the by-user
    /// operations).
    pub(crate) fn put(
        &mut self,
        hash: &HashKey,
        rec: &WebSessionRecord,
    ) -> Result<Option<WebSessionRecord>> {
        let old = self
            .t
            .insert(
                record_key(hash).as_slice(),
                codec::encode(hash, rec)?.as_slice(),
            )?
            .and_then(|g| codec::decode::<WebSessionRecord>(hash, g.value()).ok());
        if let Some(old) = &old {
            if let Some(u) = old.user_id {
                self.t.remove(user_key(u.as_bytes(), hash).as_slice())?;
            }
            self.t.remove(expiry_key(old.expires, hash).as_slice())?;
        }
        if let Some(u) = rec.user_id {
            self.t
                .insert(user_key(u.as_bytes(), hash).as_slice(), [].as_slice())?;
        }
        self.t
            .insert(expiry_key(rec.expires, hash).as_slice(), [].as_slice())?;
        Ok(old)
    }

    /// The stored record under `hash`; a damaged one is an error.
    pub(crate) fn get(&self, hash: &HashKey) -> Result<Option<WebSessionRecord>> {
        record(&self.t, hash)
    }

    /// Removes the record under `hash` with its index entries; returns whether there was one
    /// (a damaged record is removed too, and counts).
    pub(crate) fn remove(&mut self, hash: &HashKey) -> Result<bool> {
        let Some(old) = self.t.remove(record_key(hash).as_slice())? else {
            return Ok(false);
        };
        if let Ok(rec) = codec::decode::<WebSessionRecord>(hash, old.value()) {
            drop(old);
            if let Some(u) = rec.user_id {
                self.t.remove(user_key(u.as_bytes(), hash).as_slice())?;
            }
            self.t.remove(expiry_key(rec.expires, hash).as_slice())?;
        }
        Ok(true)
    }

    /// Removes every web session of the user; returns how many records were removed. By-user
    /// entries whose record is gone (or names another user) are removed too.
    pub(crate) fn remove_all_of(&mut self, user: &IdKey) -> Result<u64> {
        let mut n = 0;
        for h in user_hashes(&self.t, user)? {
            let owned = match self.get(&h) {
                Ok(rec) => rec.is_some_and(|r| r.user_id.is_some_and(|u| u.as_bytes() == user)),
                // A damaged record listed under the user goes with them.
                Err(Error::Corrupt { .. }) => true,
                Err(e) => return Err(e),
            };
            if owned && self.remove(&h)? {
                n += 1;
            }
            self.t.remove(user_key(user, &h).as_slice())?;
        }
        Ok(n)
    }

    /// Removes the user's web session whose handle is `hash`; returns whether it existed. A
    /// web session of another user (or of none) is left alone.
    pub(crate) fn remove_of(&mut self, user: &IdKey, hash: &HashKey) -> Result<bool> {
        let owned = match self.get(hash) {
            Ok(rec) => rec.is_some_and(|r| r.user_id.is_some_and(|u| u.as_bytes() == user)),
            Err(Error::Corrupt { .. }) => false,
            Err(e) => return Err(e),
        };
        if owned {
            self.remove(hash)?;
        }
        Ok(owned)
    }

    /// Walks up to `limit` expiry entries filed before `now` (oldest first): removes their
    /// (expired) records, drops entries whose record is missing, damaged or filed elsewhere.
    /// Every entry walked is removed, so repeated calls make progress. Returns (entries
    /// walked, records removed). Cost: the entries walked, never the table.
    pub(crate) fn purge(&mut self, now: i64, limit: usize) -> Result<(usize, u64)> {
        // Everything filed strictly before `now`: expired by definition (`now > expires`).
        // The entries go in one cursor pass; each record is removed outright and put back
        // only when the entry was stale (the record is filed under another expiry).
        let due = due_entries(&self.t, now, limit)?;
        let Some(last) = due.last() else {
            return Ok((0, 0));
        };
        remove_due(&mut self.t, last)?;
        let mut removed = 0;
        for key in &due {
            let (Some(hash), Some(filed)) = (tail_hash(key), filed_expiry(key)) else {
                continue;
            };
            let Some(stored) = self
                .t
                .remove(record_key(&hash).as_slice())?
                .map(|g| g.value().to_vec())
            else {
                continue;
            };
            match codec::decode::<WebSessionRecord>(&hash, &stored) {
                Ok(rec) if rec.expires == filed => {
                    if let Some(user) = rec.user_id {
                        self.t.remove(user_key(user.as_bytes(), &hash).as_slice())?;
                    }
                    removed += 1;
                }
                Ok(_) => {
                    self.t
                        .insert(record_key(&hash).as_slice(), stored.as_slice())?;
                }
                // A damaged record cannot be trusted to be live: it stays removed.
                Err(Error::Corrupt { .. }) => removed += 1,
                Err(e) => return Err(e),
            }
        }
        Ok((due.len(), removed))
    }
}

/// Every entry of the web session table: records against both index kinds and back. Returns
/// how many web session records there are.
pub(crate) fn check(rtx: &redb::ReadTransaction, p: &mut IntegrityReport) -> Result<u64> {
    let t = open_read(rtx)?;
    let mut records = 0;
    for e in t.iter()? {
        let (k, v) = e?;
        let key = k.value();
        match key.first().copied() {
            Some(RECORD) => {
                records += 1;
                let Some(hash) = tail_hash(key).filter(|_| key.len() == 33) else {
                    p.push(IntegrityProblem::CorruptRecord {
                        table: WEB_SESSIONS_NAME,
                        key: hex(key),
                        detail: "malformed key".into(),
                    });
                    continue;
                };
                let rec = match codec::decode::<WebSessionRecord>(&hash, v.value())
                    .and_then(|r| to_info(&r, &hash).map(|_| r))
                {
                    Ok(r) => r,
                    Err(e) => {
                        p.push(IntegrityProblem::CorruptRecord {
                            table: WEB_SESSIONS_NAME,
                            key: hex(&hash),
                            detail: e.to_string(),
                        });
                        continue;
                    }
                };
                if let Some(user) = rec.user_id {
                    if !integrity::user_exists(rtx, user.as_bytes())? {
                        p.push(IntegrityProblem::MissingUser {
                            table: WEB_SESSIONS_NAME,
                            key: hex(&hash),
                            user_id: UserId(user),
                        });
                    }
                    if t.get(user_key(user.as_bytes(), &hash).as_slice())?
                        .is_none()
                    {
                        p.push(IntegrityProblem::MissingIndexEntry {
                            index: WEB_SESSIONS_BY_USER_NAME,
                            key: hex(&hash),
                        });
                    }
                }
                if t.get(expiry_key(rec.expires, &hash).as_slice())?.is_none() {
                    p.push(IntegrityProblem::MissingIndexEntry {
                        index: WEB_SESSIONS_BY_EXPIRY_NAME,
                        key: hex(&hash),
                    });
                }
            }
            Some(BY_USER) if key.len() == 49 && v.value().is_empty() => {
                let (Some(user), Some(hash)) = (entry_user(key), tail_hash(key)) else {
                    continue;
                };
                let ok = record(&t, &hash).is_ok_and(|r| {
                    r.is_some_and(|r| r.user_id.is_some_and(|u| *u.as_bytes() == user))
                });
                if !ok {
                    p.push(IntegrityProblem::StaleIndexEntry {
                        index: WEB_SESSIONS_BY_USER_NAME,
                        key: format!("{}:{}", integrity::id_str(&user), hex(&hash)),
                    });
                }
            }
            Some(BY_EXPIRY) if key.len() == 41 && v.value().is_empty() => {
                let (Some(filed), Some(hash)) = (filed_expiry(key), tail_hash(key)) else {
                    continue;
                };
                let ok = record(&t, &hash).is_ok_and(|r| r.is_some_and(|r| r.expires == filed));
                if !ok {
                    p.push(IntegrityProblem::StaleIndexEntry {
                        index: WEB_SESSIONS_BY_EXPIRY_NAME,
                        key: format!("{filed}:{}", hex(&hash)),
                    });
                }
            }
            _ => p.push(IntegrityProblem::CorruptRecord {
                table: WEB_SESSIONS_NAME,
                key: hex(key),
                detail: "unknown kind of entry".into(),
            }),
        }
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_keys_sort_by_time() {
        let h = [7; 32];
        let xs = [i64::MIN, -1, 0, 1, i64::MAX];
        for w in xs.windows(2) {
            assert!(expiry_key(w[0], &h) < expiry_key(w[1], &h));
        }
        for x in xs {
            assert_eq!(filed_expiry(&expiry_key(x, &h)), Some(x));
            assert_eq!(tail_hash(&expiry_key(x, &h)), Some(h));
        }
    }
}
