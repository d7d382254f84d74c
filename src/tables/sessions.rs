//! Sessions: one table, three kinds of entry told apart by a one-byte key prefix.
//!
//! - `r` + token hash → the fixed-width record;
//! - `u` + user id + token hash → empty: the by-user index;
//! - `x` + expiry (sortable big-endian) + token hash → empty: the expiry index.
//!
//! Keeping a session's three entries in one B-tree means a commit copies one tree's path
//! instead of three. The expiry entry is filed under `indexed_expires`, a lower bound of the
//! real expiry: extending a session (the common write) touches only its record, and purge,
//! meeting an entry whose session was extended, re-files it under the real expiry.

use redb::{ReadableTable, Table};

use crate::codec::{SessionRecord, from_micros};
use crate::error::{Error, Result};
use crate::integrity::{self, IntegrityProblem, IntegrityReport};
use crate::model::{Session, SessionId, SessionInfo, UserId};
use crate::schema::{
    self, HashKey, IdKey, SESSIONS_BY_EXPIRY_NAME, SESSIONS_BY_USER_NAME, SESSIONS_NAME,
};
use crate::source::Source;
use crate::tables::{Lookup, is_expired};
use crate::token;

use super::prefixed::{
    BY_EXPIRY, BY_USER, RECORD, due_entries, entry_user, expiry_key, filed_expiry, record_key,
    remove_due, tail_hash, user_hashes, user_key,
};

/// The session model for a stored record and the token the caller gave.
pub(crate) fn to_model(rec: &SessionRecord, session_token: &str) -> Result<Session> {
    let info = to_info(rec)?;
    Ok(Session {
        id: info.id,
        user_id: info.user_id,
        expires: info.expires,
        session_token: session_token.to_owned(),
        access_token: token::session_access_token(session_token),
        created_at: info.created_at,
        updated_at: info.updated_at,
    })
}

pub(crate) fn to_info(rec: &SessionRecord) -> Result<SessionInfo> {
    const T: &str = SESSIONS_NAME;
    Ok(SessionInfo {
        id: SessionId(rec.id),
        user_id: UserId(rec.user_id),
        expires: from_micros(T, rec.expires)?,
        created_at: from_micros(T, rec.created_at)?,
        updated_at: from_micros(T, rec.updated_at)?,
    })
}

/// The stored session under the token hash `hash`.
pub(crate) fn record(
    t: &impl ReadableTable<&'static [u8], &'static [u8]>,
    hash: &HashKey,
) -> Result<Option<SessionRecord>> {
    t.get(record_key(hash).as_slice())?
        .map(|g| SessionRecord::decode(hash, g.value()))
        .transpose()
}

/// The session for `session_token` at `now`.
pub(crate) fn find(src: &impl Source, session_token: &str, now: i64) -> Result<Lookup<Session>> {
    Ok(
        match record(&src.sessions()?, &token::session_key(session_token))? {
            None => Lookup::Missing,
            Some(rec) if is_expired(now, rec.expires) => Lookup::Expired,
            Some(rec) => Lookup::Live(to_model(&rec, session_token)?),
        },
    )
}

/// The user's live sessions, oldest first.
pub(crate) fn list(src: &impl Source, user_id: &UserId, now: i64) -> Result<Vec<SessionInfo>> {
    let t = src.sessions()?;
    let mut out = Vec::new();
    for h in user_hashes(&t, &user_id.to_bytes())? {
        if let Some(rec) = record(&t, &h)?
            && !is_expired(now, rec.expires)
        {
            out.push(to_info(&rec)?);
        }
    }
    out.sort_by_key(|s| (s.created_at, s.id));
    Ok(out)
}

/// Calls `f` with every session record (token hash, decoded record or its error), in key
/// order, skipping the index entries (for stats, export and salvage).
pub(crate) fn each_record(
    t: &impl ReadableTable<&'static [u8], &'static [u8]>,
    mut f: impl FnMut(HashKey, Result<SessionRecord>) -> Result<()>,
) -> Result<()> {
    let lo = [RECORD];
    let hi = [RECORD + 1];
    for e in t.range(lo.as_slice()..hi.as_slice())? {
        let (k, v) = e?;
        if let Some(hash) = record_hash(k.value()) {
            f(hash, SessionRecord::decode(&hash, v.value()))?;
        }
    }
    Ok(())
}

/// The token hash of a record entry's key; `None` for an index entry or a malformed key.
pub(crate) fn record_hash(key: &[u8]) -> Option<HashKey> {
    (key.len() == 33 && key.first() == Some(&RECORD))
        .then(|| tail_hash(key))
        .flatten()
}

/// The session table opened for writing.
pub(crate) struct SessionTable<'t> {
    t: Table<'t, &'static [u8], &'static [u8]>,
}

impl<'t> SessionTable<'t> {
    pub(crate) fn open(txn: &'t redb::WriteTransaction) -> Result<Self> {
        Ok(Self {
            t: txn.open_table(schema::SESSIONS)?,
        })
    }

    pub(crate) fn get(&self, hash: &HashKey) -> Result<Option<SessionRecord>> {
        record(&self.t, hash)
    }

    /// Whether a record (even a damaged one) exists under `hash`.
    pub(crate) fn exists(&self, hash: &HashKey) -> Result<bool> {
        Ok(self.t.get(record_key(hash).as_slice())?.is_some())
    }

    /// Stores a new session with its two index entries (`indexed_expires` is set to its
    /// expiry).
    pub(crate) fn insert(&mut self, hash: &HashKey, rec: &SessionRecord) -> Result<()> {
        let rec = SessionRecord {
            indexed_expires: rec.expires,
            ..rec.clone()
        };
        self.t
            .insert(record_key(hash).as_slice(), rec.encode(hash).as_slice())?;
        self.t.insert(
            user_key(rec.user_id.as_bytes(), hash).as_slice(),
            [].as_slice(),
        )?;
        self.t
            .insert(expiry_key(rec.expires, hash).as_slice(), [].as_slice())?;
        Ok(())
    }

    /// Rewrites a stored session with a new expiry and `updated_at`. A later expiry leaves the
    /// expiry entry where it is (a lower bound); an earlier one moves it down.
    pub(crate) fn update(
        &mut self,
        hash: &HashKey,
        old: &SessionRecord,
        expires: i64,
        now: i64,
    ) -> Result<SessionRecord> {
        let mut rec = SessionRecord {
            expires,
            updated_at: now,
            ..old.clone()
        };
        if expires < old.indexed_expires {
            self.t
                .remove(expiry_key(old.indexed_expires, hash).as_slice())?;
            self.t
                .insert(expiry_key(expires, hash).as_slice(), [].as_slice())?;
            rec.indexed_expires = expires;
        }
        self.t
            .insert(record_key(hash).as_slice(), rec.encode(hash).as_slice())?;
        Ok(rec)
    }

    /// Removes the session under `hash` with its index entries; returns it. A damaged record
    /// is removed too (returning `None`, as for a missing one): its index entries cannot be
    /// known, and are cleaned up when met (by purge, `delete_sessions`, `delete_user`).
    pub(crate) fn remove(&mut self, hash: &HashKey) -> Result<Option<SessionRecord>> {
        let Some(Ok(rec)) = self
            .t
            .remove(record_key(hash).as_slice())?
            .map(|g| SessionRecord::decode(hash, g.value()))
        else {
            return Ok(None);
        };
        self.t
            .remove(user_key(rec.user_id.as_bytes(), hash).as_slice())?;
        self.t
            .remove(expiry_key(rec.indexed_expires, hash).as_slice())?;
        Ok(Some(rec))
    }

    /// Removes every session of the user; returns how many records were removed. By-user
    /// entries whose record is gone are removed too.
    pub(crate) fn remove_all_of(&mut self, user: &IdKey) -> Result<u64> {
        let mut n = 0;
        for h in user_hashes(&self.t, user)? {
            if self.remove(&h)?.is_some() {
                n += 1;
            } else {
                self.t.remove(user_key(user, &h).as_slice())?;
            }
        }
        Ok(n)
    }

    /// Removes the user's oldest sessions (by creation) until at most `keep` remain; damaged
    /// records count as oldest and go first.
    pub(crate) fn keep_newest(&mut self, user: &IdKey, keep: usize) -> Result<()> {
        let hashes = user_hashes(&self.t, user)?;
        if hashes.len() <= keep {
            return Ok(());
        }
        // Oldest first: by creation time, then by id (UUID v7, so creation order within one
        // microsecond too).
        let mut aged: Vec<(i64, uuid::Uuid, HashKey)> = Vec::with_capacity(hashes.len());
        for h in hashes {
            let (created, id) = match self.get(&h) {
                Ok(Some(r)) => (r.created_at, r.id),
                Ok(None) | Err(Error::Corrupt { .. }) => (i64::MIN, uuid::Uuid::nil()),
                Err(e) => return Err(e),
            };
            aged.push((created, id, h));
        }
        aged.sort_unstable();
        let excess = aged.len() - keep;
        for (_, _, h) in aged.into_iter().take(excess) {
            if self.remove(&h)?.is_none() {
                self.t.remove(record_key(&h).as_slice())?;
                self.t.remove(user_key(user, &h).as_slice())?;
            }
        }
        Ok(())
    }

    /// Removes the user's session with id `id`; returns whether it existed.
    pub(crate) fn remove_by_id(&mut self, user: &IdKey, id: &SessionId) -> Result<bool> {
        for h in user_hashes(&self.t, user)? {
            // A damaged record among the user's sessions is not the one asked for.
            let found = match self.get(&h) {
                Ok(rec) => rec.is_some_and(|r| r.id == id.0),
                Err(Error::Corrupt { .. }) => false,
                Err(e) => return Err(e),
            };
            if found {
                self.remove(&h)?;
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Walks up to `limit` expiry entries filed before `now`: removes expired sessions,
    /// re-files extended ones under their real expiry, drops entries of missing or damaged
    /// records. Returns (entries walked, sessions removed).
    ///
    /// The due entries are removed in one cursor pass; each record is removed outright (the
    /// removal returns its bytes) and put back only in the rare cases where it must stay — an
    /// extended session, re-filed, or a stale entry of a record filed elsewhere. An expired
    /// session thus costs two descents (its record and its by-user entry).
    pub(crate) fn purge(&mut self, now: i64, limit: usize) -> Result<(usize, u64)> {
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
            match SessionRecord::decode(&hash, &stored) {
                Ok(rec) if rec.indexed_expires == filed => {
                    if is_expired(now, rec.expires) {
                        self.t
                            .remove(user_key(rec.user_id.as_bytes(), &hash).as_slice())?;
                        removed += 1;
                    } else {
                        self.t
                            .insert(expiry_key(rec.expires, &hash).as_slice(), [].as_slice())?;
                        let refiled = SessionRecord {
                            indexed_expires: rec.expires,
                            ..rec
                        };
                        self.t.insert(
                            record_key(&hash).as_slice(),
                            refiled.encode(&hash).as_slice(),
                        )?;
                    }
                }
                // A stale entry: the record is filed under another entry and stays as it was.
                Ok(_) => {
                    self.t
                        .insert(record_key(&hash).as_slice(), stored.as_slice())?;
                }
                // A damaged record cannot be trusted to be live: it stays removed (its by-user
                // entry is cleaned up when met).
                Err(Error::Corrupt { .. }) => removed += 1,
                Err(e) => return Err(e),
            }
        }
        Ok((due.len(), removed))
    }
}

/// Every entry of the session table: records against both index kinds and back. Returns how
/// many session records there are.
pub(crate) fn check(rtx: &redb::ReadTransaction, p: &mut IntegrityReport) -> Result<u64> {
    use crate::token::hex;
    let t = rtx.sessions()?;
    let mut records = 0;
    for e in t.iter()? {
        let (k, v) = e?;
        let key = k.value();
        match key.first().copied() {
            Some(RECORD) => {
                records += 1;
                let Some(hash) = tail_hash(key).filter(|_| key.len() == 33) else {
                    p.push(IntegrityProblem::CorruptRecord {
                        table: SESSIONS_NAME,
                        key: hex(key),
                        detail: "malformed key".into(),
                    });
                    continue;
                };
                let rec = match SessionRecord::decode(&hash, v.value())
                    .and_then(|r| to_info(&r).map(|_| r))
                {
                    Ok(r) => r,
                    Err(e) => {
                        p.push(IntegrityProblem::CorruptRecord {
                            table: SESSIONS_NAME,
                            key: hex(&hash),
                            detail: e.to_string(),
                        });
                        continue;
                    }
                };
                if !integrity::user_exists(rtx, rec.user_id.as_bytes())? {
                    p.push(IntegrityProblem::MissingUser {
                        table: SESSIONS_NAME,
                        key: hex(&hash),
                        user_id: UserId(rec.user_id),
                    });
                }
                if t.get(user_key(rec.user_id.as_bytes(), &hash).as_slice())?
                    .is_none()
                {
                    p.push(IntegrityProblem::MissingIndexEntry {
                        index: SESSIONS_BY_USER_NAME,
                        key: hex(&hash),
                    });
                }
                if rec.indexed_expires > rec.expires
                    || t.get(expiry_key(rec.indexed_expires, &hash).as_slice())?
                        .is_none()
                {
                    p.push(IntegrityProblem::MissingIndexEntry {
                        index: SESSIONS_BY_EXPIRY_NAME,
                        key: hex(&hash),
                    });
                }
            }
            Some(BY_USER) if key.len() == 49 && v.value().is_empty() => {
                let (Some(user), Some(hash)) = (entry_user(key), tail_hash(key)) else {
                    continue;
                };
                let ok = record(&t, &hash)
                    .is_ok_and(|r| r.is_some_and(|r| *r.user_id.as_bytes() == user));
                if !ok {
                    p.push(IntegrityProblem::StaleIndexEntry {
                        index: SESSIONS_BY_USER_NAME,
                        key: format!("{}:{}", integrity::id_str(&user), hex(&hash)),
                    });
                }
            }
            Some(BY_EXPIRY) if key.len() == 41 && v.value().is_empty() => {
                let (Some(filed), Some(hash)) = (filed_expiry(key), tail_hash(key)) else {
                    continue;
                };
                let ok =
                    record(&t, &hash).is_ok_and(|r| r.is_some_and(|r| r.indexed_expires == filed));
                if !ok {
                    p.push(IntegrityProblem::StaleIndexEntry {
                        index: SESSIONS_BY_EXPIRY_NAME,
                        key: format!("{filed}:{}", hex(&hash)),
                    });
                }
            }
            _ => p.push(IntegrityProblem::CorruptRecord {
                table: SESSIONS_NAME,
                key: hex(key),
                detail: "unknown kind of entry".into(),
            }),
        }
    }
    Ok(records)
}
