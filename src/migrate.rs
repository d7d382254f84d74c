//! Moving a file of an older schema version to this one, in place, in one write transaction:
//! a crash or an error leaves the file exactly as it was.
//!
//! Version 1 → 2:
//! - users gain an empty `extra` and a fresh random security stamp;
//! - accounts gain the OIDC fields (empty); their sealed tokens get the header that names the
//!   sealing key (as "unknown": the migration never needs the key);
//! - the email index is rebuilt under the NFKC normalization; two users whose addresses now
//!   normalize alike stop the migration ([`Error::MigrationFailed`], naming both ids);
//! - the three session tables become one (see `tables/sessions.rs`);
//! - the authenticator tables are created, and the verification links get their
//!   by-identifier index (`idx:verification_by_identifier`) and an empty attempts table;
//! - every record gains its checksum (see `codec.rs`): the tables above are rewritten anyway;
//!   verification requests and passwords, unchanged otherwise, are rewritten for it.

use redb::ReadableTable;

use crate::codec::{
    self, AccountRecord, CredentialRecord, SessionRecord, UserRecord, VerificationRecord, v1,
};
use crate::crypto::upgrade_v1_sealed;
use crate::email::normalize_email;
use crate::error::{Error, Result};
use crate::integrity::id_str;
use crate::schema::{self, IdKey};

/// Migrates `db`, found at schema version `from`, to the current version.
pub(crate) fn migrate(db: &redb::Database, from: u64) -> Result<()> {
    if from != 1 {
        return Err(Error::corrupt(
            schema::META_NAME,
            format!("unknown schema version {from}"),
        ));
    }
    let mut wtx = db.begin_write()?;
    wtx.set_durability(redb::Durability::Immediate)?;
    users_v1(&wtx)?;
    accounts_v1(&wtx)?;
    sessions_v1(&wtx)?;
    checksummed_v1(&wtx)?;
    // After the rewrite above: the index is built from the checksummed records.
    crate::tables::verification::VerificationTables::open(&wtx)?.rebuild_identifier_index()?;
    schema::create_tables(&wtx)?;
    wtx.commit()?;
    Ok(())
}

fn failed(detail: String) -> Error {
    Error::MigrationFailed { from: 1, detail }
}

/// A version-1 record that does not decode stops the migration (nothing is lost: the file
/// stays at version 1).
fn undecodable(table: &str, key: &str, e: &Error) -> Error {
    failed(format!("{table}[{key}] cannot be read: {e}"))
}

fn users_v1(wtx: &redb::WriteTransaction) -> Result<()> {
    let mut users = wtx.open_table(schema::USERS)?;
    let mut upgraded: Vec<(IdKey, UserRecord)> = Vec::new();
    for e in users.iter()? {
        let (k, v) = e?;
        let key = k.value();
        let old: v1::UserRecord =
            v1::decode(v.value()).map_err(|e| undecodable("users", &id_str(&key), &e))?;
        upgraded.push((
            key,
            UserRecord {
                id: old.id,
                name: old.name,
                email: old.email,
                image: old.image,
                email_verified: old.email_verified,
                extra: None,
                security_stamp: crate::tables::users::new_stamp()?,
                created_at: old.created_at,
                updated_at: old.updated_at,
            },
        ));
    }
    wtx.delete_table(schema::USERS_BY_EMAIL)?;
    let mut by_email = wtx.open_table(schema::USERS_BY_EMAIL)?;
    for (key, rec) in &upgraded {
        users.insert(key, codec::encode(key, rec)?.as_slice())?;
        if let Some(email) = &rec.email {
            let n = normalize_email(email);
            if let Some(other) = by_email.insert(n.as_str(), key)? {
                return Err(failed(format!(
                    "users {} and {} have email addresses that are equal under Unicode NFKC \
                     normalization; change one of them with authdb 0.1 first",
                    id_str(&other.value()),
                    id_str(key)
                )));
            }
        }
    }
    Ok(())
}

fn accounts_v1(wtx: &redb::WriteTransaction) -> Result<()> {
    let mut accounts = wtx.open_table(schema::ACCOUNTS)?;
    let mut upgraded: Vec<(IdKey, AccountRecord)> = Vec::new();
    for e in accounts.iter()? {
        let (k, v) = e?;
        let key = k.value();
        let old: v1::AccountRecord =
            v1::decode(v.value()).map_err(|e| undecodable("accounts", &id_str(&key), &e))?;
        upgraded.push((
            key,
            AccountRecord {
                id: old.id,
                user_id: old.user_id,
                provider_type: old.provider_type,
                provider_id: old.provider_id,
                provider_account_id: old.provider_account_id,
                refresh_token: old.refresh_token.as_deref().map(upgrade_v1_sealed),
                access_token: old.access_token.as_deref().map(upgrade_v1_sealed),
                access_token_expires: old.access_token_expires,
                token_type: None,
                scope: None,
                id_token: None,
                session_state: None,
                extra: None,
                created_at: old.created_at,
                updated_at: old.updated_at,
            },
        ));
    }
    for (key, rec) in &upgraded {
        accounts.insert(key, codec::encode(key, rec)?.as_slice())?;
    }
    Ok(())
}

fn sessions_v1(wtx: &redb::WriteTransaction) -> Result<()> {
    let mut old: Vec<([u8; 32], SessionRecord)> = Vec::new();
    {
        let t = wtx.open_table(schema::v1::SESSIONS)?;
        for e in t.iter()? {
            let (k, v) = e?;
            let key = k.value();
            let r: v1::SessionRecord = v1::decode(v.value())
                .map_err(|e| undecodable("sessions", &crate::token::hex(&key), &e))?;
            old.push((
                key,
                SessionRecord {
                    id: r.id,
                    user_id: r.user_id,
                    expires: r.expires,
                    indexed_expires: r.expires,
                    created_at: r.created_at,
                    updated_at: r.updated_at,
                },
            ));
        }
    }
    // The old indexes are dropped, not copied: the new entries are made from the records.
    wtx.delete_table(schema::v1::SESSIONS)?;
    wtx.delete_multimap_table(schema::v1::SESSIONS_BY_USER)?;
    wtx.delete_table(schema::v1::SESSIONS_BY_EXPIRY)?;
    let mut t = crate::tables::sessions::SessionTable::open(wtx)?;
    for (hash, rec) in &old {
        t.insert(hash, rec)?;
    }
    Ok(())
}

/// Verification requests and passwords kept their version-1 layout; they are rewritten with
/// the checksum every version-2 record carries.
fn checksummed_v1(wtx: &redb::WriteTransaction) -> Result<()> {
    let mut t = wtx.open_table(schema::VERIFICATION)?;
    let mut old: Vec<(schema::HashKey, VerificationRecord)> = Vec::new();
    for e in t.iter()? {
        let (k, v) = e?;
        let key = k.value();
        let rec = v1::decode(v.value())
            .map_err(|e| undecodable(schema::VERIFICATION_NAME, &crate::token::hex(&key), &e))?;
        old.push((key, rec));
    }
    for (key, rec) in &old {
        t.insert(key, codec::encode(key, rec)?.as_slice())?;
    }
    drop(t);
    let mut t = wtx.open_table(schema::CREDENTIALS)?;
    let mut old: Vec<(IdKey, CredentialRecord)> = Vec::new();
    for e in t.iter()? {
        let (k, v) = e?;
        let key = k.value();
        let rec = v1::decode(v.value())
            .map_err(|e| undecodable(schema::CREDENTIALS_NAME, &id_str(&key), &e))?;
        old.push((key, rec));
    }
    for (key, rec) in &old {
        t.insert(key, codec::encode(key, rec)?.as_slice())?;
    }
    Ok(())
}
