//! WebAuthn authenticators, keyed by credential id, with a by-user index.

use redb::{MultimapTable, ReadableMultimapTable, ReadableTable, ReadableTableMetadata, Table};

use crate::codec::{self, AuthenticatorRecord, from_micros};
use crate::error::Result;
use crate::integrity::{self, IntegrityProblem, IntegrityReport, id_str};
use crate::model::{Authenticator, UserId};
use crate::schema::{self, AUTHENTICATORS_BY_USER_NAME, AUTHENTICATORS_NAME, IdKey};
use crate::source::{Source, multimap_strings};

pub(crate) fn to_model(credential_id: &str, r: &AuthenticatorRecord) -> Result<Authenticator> {
    const T: &str = AUTHENTICATORS_NAME;
    Ok(Authenticator {
        credential_id: credential_id.to_owned(),
        user_id: UserId(r.user_id),
        provider_account_id: r.provider_account_id.clone(),
        credential_public_key: r.credential_public_key.clone(),
        counter: r.counter,
        credential_device_type: r.credential_device_type.clone(),
        credential_backed_up: r.credential_backed_up,
        transports: r.transports.clone(),
        created_at: from_micros(T, r.created_at)?,
        updated_at: from_micros(T, r.updated_at)?,
    })
}

pub(crate) fn record(
    t: &impl ReadableTable<&'static str, &'static [u8]>,
    credential_id: &str,
) -> Result<Option<AuthenticatorRecord>> {
    t.get(credential_id)?
        .map(|g| codec::decode(credential_id.as_bytes(), g.value()))
        .transpose()
}

pub(crate) fn get(src: &impl Source, credential_id: &str) -> Result<Option<Authenticator>> {
    record(&src.authenticators()?, credential_id)?
        .map(|r| to_model(credential_id, &r))
        .transpose()
}

/// The user's authenticators, oldest first.
pub(crate) fn list(src: &impl Source, user_id: &UserId) -> Result<Vec<Authenticator>> {
    let t = src.authenticators()?;
    let mut out = Vec::new();
    for cid in multimap_strings(&src.authenticators_by_user()?, &user_id.to_bytes())? {
        if let Some(r) = record(&t, &cid)? {
            out.push(to_model(&cid, &r)?);
        }
    }
    out.sort_by(|a, b| (a.created_at, &a.credential_id).cmp(&(b.created_at, &b.credential_id)));
    Ok(out)
}

/// The authenticator table and its by-user index, opened together.
pub(crate) struct AuthenticatorTables<'t> {
    rec: Table<'t, &'static str, &'static [u8]>,
    by_user: MultimapTable<'t, IdKey, &'static str>,
}

impl<'t> AuthenticatorTables<'t> {
    pub(crate) fn open(txn: &'t redb::WriteTransaction) -> Result<Self> {
        Ok(Self {
            rec: txn.open_table(schema::AUTHENTICATORS)?,
            by_user: txn.open_multimap_table(schema::AUTHENTICATORS_BY_USER)?,
        })
    }

    pub(crate) fn get(&self, credential_id: &str) -> Result<Option<AuthenticatorRecord>> {
        record(&self.rec, credential_id)
    }

    /// Whether a record (even a damaged one) exists under `credential_id`.
    pub(crate) fn exists(&self, credential_id: &str) -> Result<bool> {
        Ok(self.rec.get(credential_id)?.is_some())
    }

    /// Writes the record; a new one gets its by-user entry (a record never changes user).
    pub(crate) fn put(
        &mut self,
        credential_id: &str,
        r: &AuthenticatorRecord,
        is_new: bool,
    ) -> Result<()> {
        self.rec.insert(
            credential_id,
            codec::encode(credential_id.as_bytes(), r)?.as_slice(),
        )?;
        if is_new {
            self.by_user.insert(r.user_id.as_bytes(), credential_id)?;
        }
        Ok(())
    }

    /// Removes every authenticator of the user (the cascade of `delete_user`).
    pub(crate) fn remove_all_of(&mut self, user: &IdKey) -> Result<()> {
        for cid in multimap_strings(&self.by_user, user)? {
            self.rec.remove(cid.as_str())?;
        }
        self.by_user.remove_all(user)?;
        Ok(())
    }
}

/// Every authenticator against the by-user index and back; returns how many there are.
pub(crate) fn check(rtx: &redb::ReadTransaction, p: &mut IntegrityReport) -> Result<u64> {
    let t = rtx.authenticators()?;
    let by_user = rtx.authenticators_by_user()?;
    for e in t.iter()? {
        let (k, v) = e?;
        let cid = k.value();
        let r = match codec::decode::<AuthenticatorRecord>(cid.as_bytes(), v.value())
            .and_then(|r| to_model(cid, &r).map(|_| r))
        {
            Ok(r) => r,
            Err(e) => {
                p.push(IntegrityProblem::CorruptRecord {
                    table: AUTHENTICATORS_NAME,
                    key: cid.to_owned(),
                    detail: e.to_string(),
                });
                continue;
            }
        };
        if !integrity::user_exists(rtx, r.user_id.as_bytes())? {
            p.push(IntegrityProblem::MissingUser {
                table: AUTHENTICATORS_NAME,
                key: cid.to_owned(),
                user_id: UserId(r.user_id),
            });
        }
        if !multimap_strings(&by_user, r.user_id.as_bytes())?
            .iter()
            .any(|c| c == cid)
        {
            p.push(IntegrityProblem::MissingIndexEntry {
                index: AUTHENTICATORS_BY_USER_NAME,
                key: cid.to_owned(),
            });
        }
    }
    for e in by_user.iter()? {
        let (uk, vals) = e?;
        let uid = uk.value();
        for v in vals {
            let v = v?;
            let cid = v.value();
            let ok = record(&t, cid).is_ok_and(|r| r.is_some_and(|r| *r.user_id.as_bytes() == uid));
            if !ok {
                p.push(IntegrityProblem::StaleIndexEntry {
                    index: AUTHENTICATORS_BY_USER_NAME,
                    key: format!("{}:{cid}", id_str(&uid)),
                });
            }
        }
    }
    Ok(t.len()?)
}
