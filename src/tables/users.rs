//! Users and the unique email index.

use redb::{ReadableTable, ReadableTableMetadata, Table};

use crate::codec::{self, UserRecord, from_micros, opt_from_micros};
use crate::email::normalize_email;
use crate::error::{Error, Result};
use crate::integrity::{IntegrityProblem, IntegrityReport, id_str};
use crate::model::{Extra, User, UserId};
use crate::schema::{self, IdKey, USERS_BY_EMAIL_NAME, USERS_NAME};
use crate::source::{Source, id_by};

/// The stored record as the public model.
pub(crate) fn to_model(r: &UserRecord) -> Result<User> {
    const T: &str = USERS_NAME;
    Ok(User {
        id: UserId(r.id),
        name: r.name.clone(),
        email: r.email.clone(),
        image: r.image.clone(),
        email_verified: opt_from_micros(T, r.email_verified)?,
        extra: decode_extra(r.extra.as_deref())?,
        security_stamp: r.security_stamp,
        created_at: from_micros(T, r.created_at)?,
        updated_at: from_micros(T, r.updated_at)?,
    })
}

/// An `extra` object from its stored JSON (shared with accounts, whose JSON is sealed).
pub(crate) fn decode_extra(json: Option<&[u8]>) -> Result<Extra> {
    json.map_or(Ok(Extra::new()), |j| {
        serde_json::from_slice(j)
            .map_err(|_| Error::corrupt(USERS_NAME, "extra is not a JSON object"))
    })
}

pub(crate) fn record(
    t: &impl ReadableTable<IdKey, &'static [u8]>,
    id: &IdKey,
) -> Result<Option<UserRecord>> {
    t.get(id)?.map(|g| codec::decode(id, g.value())).transpose()
}

pub(crate) fn get(src: &impl Source, id: &UserId) -> Result<Option<User>> {
    record(&src.users()?, &id.to_bytes())?
        .as_ref()
        .map(to_model)
        .transpose()
}

/// The user whose normalized email is `email`'s, or `None` (also for an empty email).
pub(crate) fn by_email(src: &impl Source, email: &str) -> Result<Option<User>> {
    let norm = normalize_email(email);
    if norm.is_empty() {
        return Ok(None);
    }
    let Some(id) = id_by(&src.users_by_email()?, norm.as_str())? else {
        return Ok(None);
    };
    record(&src.users()?, &id)?
        .as_ref()
        .map(to_model)
        .transpose()
}

/// 16 fresh random bytes for a user's security stamp.
pub(crate) fn new_stamp() -> Result<[u8; 16]> {
    let mut s = [0u8; 16];
    crate::token::random_bytes(&mut s)?;
    Ok(s)
}

/// The user table and its email index, opened together so that a record and its index entry
/// are always written together.
pub(crate) struct UserTables<'t> {
    rec: Table<'t, IdKey, &'static [u8]>,
    by_email: Table<'t, &'static str, IdKey>,
}

impl<'t> UserTables<'t> {
    pub(crate) fn open(txn: &'t redb::WriteTransaction) -> Result<Self> {
        Ok(Self {
            rec: txn.open_table(schema::USERS)?,
            by_email: txn.open_table(schema::USERS_BY_EMAIL)?,
        })
    }

    pub(crate) fn get(&self, id: &IdKey) -> Result<Option<UserRecord>> {
        record(&self.rec, id)
    }

    /// Writes `rec`, replacing `old` (the stored record with the same id, if any), and moves
    /// its email index entry. An email that normalizes to another user's is
    /// [`Error::EmailTaken`], checked before anything is written.
    pub(crate) fn put(&mut self, rec: &UserRecord, old: Option<&UserRecord>) -> Result<()> {
        let key = *rec.id.as_bytes();
        let new_norm = rec.email.as_deref().map(normalize_email);
        let old_norm = old.and_then(|o| o.email.as_deref()).map(normalize_email);
        if new_norm != old_norm
            && let Some(n) = &new_norm
            && id_by(&self.by_email, n.as_str())?.is_some_and(|id| id != key)
        {
            return Err(Error::EmailTaken);
        }
        let bytes = codec::encode(&key, rec)?;
        self.rec.insert(key, bytes.as_slice())?;
        if new_norm != old_norm {
            if let Some(o) = &old_norm
                && id_by(&self.by_email, o.as_str())? == Some(key)
            {
                self.by_email.remove(o.as_str())?;
            }
            if let Some(n) = &new_norm {
                self.by_email.insert(n.as_str(), key)?;
            }
        }
        Ok(())
    }

    /// Removes the user and its email entry; returns the removed record.
    pub(crate) fn remove(&mut self, id: &IdKey) -> Result<Option<UserRecord>> {
        let removed = self
            .rec
            .remove(id)?
            .map(|g| codec::decode::<UserRecord>(id, g.value()))
            .transpose()?;
        if let Some(email) = removed.as_ref().and_then(|r| r.email.as_deref()) {
            let n = normalize_email(email);
            if id_by(&self.by_email, n.as_str())? == Some(*id) {
                self.by_email.remove(n.as_str())?;
            }
        }
        Ok(removed)
    }
}

/// Every user against the email index and back; returns how many users there are.
pub(crate) fn check(rtx: &redb::ReadTransaction, p: &mut IntegrityReport) -> Result<u64> {
    let users = rtx.users()?;
    let by_email = rtx.users_by_email()?;
    for e in users.iter()? {
        let (k, v) = e?;
        let key = k.value();
        match codec::decode::<UserRecord>(&key, v.value()).and_then(|u| to_model(&u).map(|_| u)) {
            Err(e) => p.push(IntegrityProblem::CorruptRecord {
                table: USERS_NAME,
                key: id_str(&key),
                detail: e.to_string(),
            }),
            Ok(u) => {
                if *u.id.as_bytes() != key {
                    p.push(IntegrityProblem::KeyMismatch {
                        table: USERS_NAME,
                        key: id_str(&key),
                    });
                }
                if let Some(email) = &u.email
                    && id_by(&by_email, normalize_email(email).as_str())? != Some(key)
                {
                    p.push(IntegrityProblem::MissingIndexEntry {
                        index: USERS_BY_EMAIL_NAME,
                        key: id_str(&key),
                    });
                }
            }
        }
    }
    for e in by_email.iter()? {
        let (k, v) = e?;
        let ok = record(&users, &v.value()).is_ok_and(|u| {
            u.and_then(|u| u.email)
                .is_some_and(|m| normalize_email(&m) == k.value())
        });
        if !ok {
            p.push(IntegrityProblem::StaleIndexEntry {
                index: USERS_BY_EMAIL_NAME,
                key: k.value().to_owned(),
            });
        }
    }
    Ok(users.len()?)
}
