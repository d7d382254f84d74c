//! Email sign-in links (v3 requests and Auth.js tokens share this table) and their expiry
//! index.

use redb::{ReadableTable, ReadableTableMetadata, Table};

use crate::codec::{self, VerificationRecord, from_micros};
use crate::email::normalize_email;
use crate::error::Result;
use crate::integrity::{IntegrityProblem, IntegrityReport};
use crate::model::{VerificationRequest, VerificationRequestId, VerificationToken};
use crate::schema::{self, ExpiryKey, HashKey, VERIFICATION_BY_EXPIRY_NAME, VERIFICATION_NAME};
use crate::source::Source;
use crate::tables::{Lookup, is_expired};
use crate::token::hex;

pub(crate) fn to_model(rec: &VerificationRecord, hash: &HashKey) -> Result<VerificationRequest> {
    const T: &str = VERIFICATION_NAME;
    Ok(VerificationRequest {
        id: VerificationRequestId(rec.id),
        identifier: rec.identifier.clone(),
        token: hex(hash),
        expires: from_micros(T, rec.expires)?,
        created_at: from_micros(T, rec.created_at)?,
        updated_at: from_micros(T, rec.updated_at)?,
    })
}

/// The Auth.js view of a stored link, with the token string the caller gave.
pub(crate) fn to_token(rec: &VerificationRecord, token: &str) -> Result<VerificationToken> {
    Ok(VerificationToken {
        identifier: rec.identifier.clone(),
        token: token.to_owned(),
        expires: from_micros(VERIFICATION_NAME, rec.expires)?,
    })
}

/// `identifier` names the same address as the stored one (both normalized).
pub(crate) fn identifier_matches(stored: &str, given: &str) -> bool {
    let given = normalize_email(given);
    !given.is_empty() && normalize_email(stored) == given
}

pub(crate) fn record(
    t: &impl ReadableTable<HashKey, &'static [u8]>,
    key: &HashKey,
) -> Result<Option<VerificationRecord>> {
    t.get(key)?.map(|g| codec::decode(g.value())).transpose()
}

/// The link stored under `key` if it was made for `identifier`, live or expired.
pub(crate) fn find(
    src: &impl Source,
    key: &HashKey,
    identifier: &str,
    now: i64,
) -> Result<Lookup<VerificationRecord>> {
    Ok(match record(&src.verification()?, key)? {
        Some(rec) if identifier_matches(&rec.identifier, identifier) => {
            if is_expired(now, rec.expires) {
                Lookup::Expired
            } else {
                Lookup::Live(rec)
            }
        }
        _ => Lookup::Missing,
    })
}

/// The link table and its expiry index, opened together.
pub(crate) struct VerificationTables<'t> {
    rec: Table<'t, HashKey, &'static [u8]>,
    by_expiry: Table<'t, ExpiryKey, ()>,
}

impl<'t> VerificationTables<'t> {
    pub(crate) fn open(txn: &'t redb::WriteTransaction) -> Result<Self> {
        Ok(Self {
            rec: txn.open_table(schema::VERIFICATION)?,
            by_expiry: txn.open_table(schema::VERIFICATION_BY_EXPIRY)?,
        })
    }

    pub(crate) fn get(&self, key: &HashKey) -> Result<Option<VerificationRecord>> {
        record(&self.rec, key)
    }

    /// Stores a new link under `key`. A live link already there is
    /// [`Error::VerificationTokenTaken`](crate::Error::VerificationTokenTaken); an expired one
    /// is replaced.
    pub(crate) fn insert(
        &mut self,
        key: &HashKey,
        rec: &VerificationRecord,
        now: i64,
    ) -> Result<()> {
        if let Some(existing) = self.get(key)? {
            if !is_expired(now, existing.expires) {
                return Err(crate::Error::VerificationTokenTaken);
            }
            self.remove(key)?;
        }
        self.rec.insert(key, codec::encode(rec)?.as_slice())?;
        self.by_expiry.insert((rec.expires, *key), ())?;
        Ok(())
    }

    /// Removes the link under `key` with its expiry entry; a damaged record is removed too
    /// (returning `None`); its expiry entry is cleaned up by purge.
    pub(crate) fn remove(&mut self, key: &HashKey) -> Result<Option<VerificationRecord>> {
        let Some(Ok(rec)) = self
            .rec
            .remove(key)?
            .map(|g| codec::decode::<VerificationRecord>(g.value()))
        else {
            return Ok(None);
        };
        self.by_expiry.remove((rec.expires, *key))?;
        Ok(Some(rec))
    }

    /// Single use: the link under `key` made for `identifier` is removed; returned if it was
    /// still live.
    pub(crate) fn take(
        &mut self,
        key: &HashKey,
        identifier: &str,
        now: i64,
    ) -> Result<Option<VerificationRecord>> {
        match self.get(key)? {
            Some(rec) if identifier_matches(&rec.identifier, identifier) => {
                self.remove(key)?;
                Ok((!is_expired(now, rec.expires)).then_some(rec))
            }
            _ => Ok(None),
        }
    }

    /// Removes up to `limit` expired links; returns how many expiry entries were walked.
    pub(crate) fn purge(&mut self, now: i64, limit: usize) -> Result<u64> {
        let mut expired = Vec::new();
        for entry in self.by_expiry.range(..(now, [0u8; 32]))? {
            if expired.len() >= limit {
                break;
            }
            expired.push(entry?.0.value());
        }
        for (expires, key) in &expired {
            if self.remove(key)?.is_none() {
                self.by_expiry.remove((*expires, *key))?;
            }
        }
        Ok(expired.len() as u64)
    }
}

/// Every link against the expiry index and back; returns how many links there are.
pub(crate) fn check(rtx: &redb::ReadTransaction, p: &mut IntegrityReport) -> Result<u64> {
    let verif = rtx.verification()?;
    let by_exp = rtx.verification_by_expiry()?;
    for e in verif.iter()? {
        let (k, v) = e?;
        let key: HashKey = k.value();
        match codec::decode::<VerificationRecord>(v.value())
            .and_then(|r| to_model(&r, &key).map(|_| r))
        {
            Err(e) => p.push(IntegrityProblem::CorruptRecord {
                table: VERIFICATION_NAME,
                key: hex(&key),
                detail: e.to_string(),
            }),
            Ok(vr) => {
                if by_exp.get((vr.expires, key))?.is_none() {
                    p.push(IntegrityProblem::MissingIndexEntry {
                        index: VERIFICATION_BY_EXPIRY_NAME,
                        key: hex(&key),
                    });
                }
            }
        }
    }
    for e in by_exp.iter()? {
        let (k, _) = e?;
        let (exp, vk) = k.value();
        let ok = record(&verif, &vk).is_ok_and(|r| r.is_some_and(|r| r.expires == exp));
        if !ok {
            p.push(IntegrityProblem::StaleIndexEntry {
                index: VERIFICATION_BY_EXPIRY_NAME,
                key: format!("{exp}:{}", hex(&vk)),
            });
        }
    }
    Ok(verif.len()?)
}
