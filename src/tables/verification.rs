//! Email sign-in links (v3 requests and Auth.js tokens share this table), their expiry index
//! and their by-identifier index (which lets a failed-attempt limit delete every link of an
//! address at once).

use redb::{MultimapTable, ReadableMultimapTable, ReadableTable, ReadableTableMetadata, Table};
use sha2::{Digest, Sha256};

use crate::codec::{self, VerificationRecord, from_micros};
use crate::email::normalize_email;
use crate::error::Result;
use crate::integrity::{IntegrityProblem, IntegrityReport};
use crate::model::{VerificationRequest, VerificationRequestId, VerificationToken};
use crate::schema::{
    self, ExpiryKey, HashKey, VERIFICATION_BY_EXPIRY_NAME, VERIFICATION_BY_IDENTIFIER_NAME,
    VERIFICATION_NAME,
};
use crate::source::Source;
use crate::tables::{Lookup, is_expired};
use crate::token::hex;

/// The key an identifier is indexed and counted under: a domain-separated SHA-256 of its
/// normalized form (`normalized` must already be [`normalize_email`]'s output), so that no
/// table keyed by it holds an address in plain form.
pub(crate) fn identifier_key(normalized: &str) -> HashKey {
    let mut h = Sha256::new();
    h.update(b"authdb/v2/verification-identifier\0");
    h.update(normalized.as_bytes());
    h.finalize().into()
}

/// [`identifier_key`] of an identifier as stored or given (normalized here); `None` when it
/// normalizes to nothing (such an identifier matches no link).
pub(crate) fn identifier_key_of(identifier: &str) -> Option<HashKey> {
    let n = normalize_email(identifier);
    (!n.is_empty()).then(|| identifier_key(&n))
}

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
    t.get(key)?
        .map(|g| codec::decode(key, g.value()))
        .transpose()
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

/// The link table and its two indexes, opened together.
pub(crate) struct VerificationTables<'t> {
    rec: Table<'t, HashKey, &'static [u8]>,
    by_expiry: Table<'t, ExpiryKey, ()>,
    by_identifier: MultimapTable<'t, HashKey, HashKey>,
}

impl<'t> VerificationTables<'t> {
    pub(crate) fn open(txn: &'t redb::WriteTransaction) -> Result<Self> {
        Ok(Self {
            rec: txn.open_table(schema::VERIFICATION)?,
            by_expiry: txn.open_table(schema::VERIFICATION_BY_EXPIRY)?,
            by_identifier: txn.open_multimap_table(schema::VERIFICATION_BY_IDENTIFIER)?,
        })
    }

    /// Adds the by-identifier entry of the link `rec` stored under `key`.
    fn index_identifier(&mut self, key: &HashKey, rec: &VerificationRecord) -> Result<()> {
        if let Some(ik) = identifier_key_of(&rec.identifier) {
            self.by_identifier.insert(ik, key)?;
        }
        Ok(())
    }

    /// Whether any link (live or expired) was made for the identifier with this key.
    pub(crate) fn any_of(&self, ident: &HashKey) -> Result<bool> {
        Ok(self.by_identifier.get(ident)?.next().transpose()?.is_some())
    }

    /// Deletes every link made for the identifier with this key (a failed-attempt limit was
    /// reached); returns how many were deleted.
    pub(crate) fn remove_all_of(&mut self, ident: &HashKey) -> Result<u64> {
        let mut keys = Vec::new();
        for k in self.by_identifier.get(ident)? {
            keys.push(k?.value());
        }
        let mut n = 0;
        for key in &keys {
            if self.remove(key)?.is_some() {
                n += 1;
            }
        }
        // Entries of damaged records (which `remove` cannot decode) go too.
        self.by_identifier.remove_all(ident)?;
        Ok(n)
    }

    /// Builds the by-identifier index from the records (a file migrated from version 1 has
    /// links but no such index).
    pub(crate) fn rebuild_identifier_index(&mut self) -> Result<()> {
        let mut links = Vec::new();
        for e in self.rec.iter()? {
            let (k, v) = e?;
            // A record that does not decode gets no entry (check_integrity reports it).
            if let Ok(rec) = codec::decode::<VerificationRecord>(&k.value(), v.value()) {
                links.push((k.value(), rec));
            }
        }
        for (key, rec) in &links {
            self.index_identifier(key, rec)?;
        }
        Ok(())
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
        self.rec.insert(key, codec::encode(key, rec)?.as_slice())?;
        self.by_expiry.insert((rec.expires, *key), ())?;
        self.index_identifier(key, rec)
    }

    /// Removes the link under `key` with its index entries; a damaged record is removed too
    /// (returning `None`); its expiry entry is cleaned up by purge.
    pub(crate) fn remove(&mut self, key: &HashKey) -> Result<Option<VerificationRecord>> {
        let Some(Ok(rec)) = self
            .rec
            .remove(key)?
            .map(|g| codec::decode::<VerificationRecord>(key, g.value()))
        else {
            return Ok(None);
        };
        self.by_expiry.remove((rec.expires, *key))?;
        if let Some(ik) = identifier_key_of(&rec.identifier) {
            self.by_identifier.remove(ik, key)?;
        }
        Ok(Some(rec))
    }

    /// Single use: the link under `key` made for `identifier` is removed, live or expired;
    /// says which it was.
    pub(crate) fn take(
        &mut self,
        key: &HashKey,
        identifier: &str,
        now: i64,
    ) -> Result<Lookup<VerificationRecord>> {
        match self.get(key)? {
            Some(rec) if identifier_matches(&rec.identifier, identifier) => {
                self.remove(key)?;
                Ok(if is_expired(now, rec.expires) {
                    Lookup::Expired
                } else {
                    Lookup::Live(rec)
                })
            }
            _ => Ok(Lookup::Missing),
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

/// Every link against the expiry and by-identifier indexes and back; returns how many links
/// there are.
pub(crate) fn check(rtx: &redb::ReadTransaction, p: &mut IntegrityReport) -> Result<u64> {
    let verif = rtx.verification()?;
    let by_exp = rtx.verification_by_expiry()?;
    let by_ident = rtx.open_multimap_table(schema::VERIFICATION_BY_IDENTIFIER)?;
    for e in verif.iter()? {
        let (k, v) = e?;
        let key: HashKey = k.value();
        match codec::decode::<VerificationRecord>(&key, v.value())
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
                let indexed = match identifier_key_of(&vr.identifier) {
                    Some(ik) => has_entry(&by_ident, &ik, &key)?,
                    None => true,
                };
                if !indexed {
                    p.push(IntegrityProblem::MissingIndexEntry {
                        index: VERIFICATION_BY_IDENTIFIER_NAME,
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
    for e in by_ident.iter()? {
        let (ik, values) = e?;
        let ik: HashKey = ik.value();
        for v in values {
            let vk: HashKey = v?.value();
            let ok = record(&verif, &vk)
                .is_ok_and(|r| r.is_some_and(|r| identifier_key_of(&r.identifier) == Some(ik)));
            if !ok {
                p.push(IntegrityProblem::StaleIndexEntry {
                    index: VERIFICATION_BY_IDENTIFIER_NAME,
                    key: format!("{}:{}", hex(&ik), hex(&vk)),
                });
            }
        }
    }
    Ok(verif.len()?)
}

fn has_entry(
    t: &impl ReadableMultimapTable<HashKey, HashKey>,
    ident: &HashKey,
    key: &HashKey,
) -> Result<bool> {
    for v in t.get(ident)? {
        if v?.value() == *key {
            return Ok(true);
        }
    }
    Ok(false)
}
