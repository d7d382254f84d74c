//! Passwords: one argon2id PHC string per user, keyed by user id.

use redb::{ReadableTable, ReadableTableMetadata};

use crate::codec::{self, CredentialRecord};
use crate::error::Result;
use crate::integrity::{self, IntegrityProblem, IntegrityReport, id_str};
use crate::model::{User, UserId};
use crate::password;
use crate::schema::{self, CREDENTIALS_NAME, IdKey};
use crate::source::Source;
use crate::tables::users;

pub(crate) fn record(
    t: &impl ReadableTable<IdKey, &'static [u8]>,
    id: &IdKey,
) -> Result<Option<CredentialRecord>> {
    t.get(id)?.map(|g| codec::decode(id, g.value())).transpose()
}

/// The user with this email and their stored password hash, if both exist.
pub(crate) fn for_email(src: &impl Source, email: &str) -> Result<Option<(User, String)>> {
    let Some(user) = users::by_email(src, email)? else {
        return Ok(None);
    };
    let Some(cred) = record(&src.credentials()?, &user.id.to_bytes())? else {
        return Ok(None);
    };
    Ok(Some((user, cred.phc)))
}

/// Stores `phc` as the user's password.
pub(crate) fn put(txn: &redb::WriteTransaction, user: &UserId, phc: &str, now: i64) -> Result<()> {
    let rec = CredentialRecord {
        phc: phc.to_owned(),
        updated_at: now,
    };
    txn.open_table(schema::CREDENTIALS)?.insert(
        user.to_bytes(),
        codec::encode(&user.to_bytes(), &rec)?.as_slice(),
    )?;
    Ok(())
}

/// Stores a credential record as it is (import and salvage, which keep `updated_at`).
pub(crate) fn put_record(
    txn: &redb::WriteTransaction,
    user: &IdKey,
    rec: &CredentialRecord,
) -> Result<()> {
    txn.open_table(schema::CREDENTIALS)?
        .insert(user, codec::encode(user, rec)?.as_slice())?;
    Ok(())
}

/// Whether the user `user` has a stored credential (even a damaged one).
pub(crate) fn exists(txn: &redb::WriteTransaction, user: &IdKey) -> Result<bool> {
    Ok(txn.open_table(schema::CREDENTIALS)?.get(user)?.is_some())
}

/// Removes the user's password (the cascade of `delete_user`).
pub(crate) fn remove(txn: &redb::WriteTransaction, user: &IdKey) -> Result<()> {
    txn.open_table(schema::CREDENTIALS)?.remove(user)?;
    Ok(())
}

/// Every password: a valid argon2id PHC string of an existing user. Returns how many.
pub(crate) fn check(rtx: &redb::ReadTransaction, p: &mut IntegrityReport) -> Result<u64> {
    let creds = rtx.credentials()?;
    for e in creds.iter()? {
        let (k, v) = e?;
        let key = k.value();
        match codec::decode::<CredentialRecord>(&key, v.value()) {
            Ok(c) if password::is_valid_phc(&c.phc) => {}
            Ok(_) => p.push(IntegrityProblem::CorruptRecord {
                table: CREDENTIALS_NAME,
                key: id_str(&key),
                detail: "not an argon2id PHC string".into(),
            }),
            Err(e) => p.push(IntegrityProblem::CorruptRecord {
                table: CREDENTIALS_NAME,
                key: id_str(&key),
                detail: e.to_string(),
            }),
        }
        if !integrity::user_exists(rtx, &key)? {
            p.push(IntegrityProblem::MissingUser {
                table: CREDENTIALS_NAME,
                key: id_str(&key),
                user_id: UserId::from_bytes(key),
            });
        }
    }
    Ok(creds.len()?)
}
