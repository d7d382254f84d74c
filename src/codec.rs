//! Record encoding: the only module that knows about bincode.
//!
//! Every stored value is one format-version byte followed by the bincode (2.0, serde, standard
//! configuration) encoding of a private record struct. Timestamps are stored as microseconds
//! since the Unix epoch. Decoding is bounded (no record may claim more than
//! [`MAX_RECORD_BYTES`]) and must consume the whole value, so damaged bytes give an error, never
//! a panic or a huge allocation. To swap the codec, change this file and bump
//! [`FORMAT_VERSION`].

use bincode::config::{self, Configuration, Limit, LittleEndian, Varint};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use uuid::Uuid;

use crate::crypto::{EncryptionKey, account_ad};
use crate::error::{Error, Result};
use crate::model::{
    Account, AccountId, SessionId, SessionInfo, User, UserId, VerificationRequest,
    VerificationRequestId,
};

/// The first byte of every stored record.
pub(crate) const FORMAT_VERSION: u8 = 1;

/// The largest record the decoder accepts. Every field has a documented size limit well below it.
pub(crate) const MAX_RECORD_BYTES: usize = 64 * 1024;

type Cfg = Configuration<LittleEndian, Varint, Limit<MAX_RECORD_BYTES>>;

fn cfg() -> Cfg {
    config::standard().with_limit::<MAX_RECORD_BYTES>()
}

pub(crate) fn encode<T: Serialize>(table: &'static str, value: &T) -> Result<Vec<u8>> {
    let mut out = vec![FORMAT_VERSION];
    bincode::serde::encode_into_std_write(value, &mut out, cfg())
        .map_err(|e| Error::corrupt(table, format!("cannot encode record: {e}")))?;
    Ok(out)
}

pub(crate) fn decode<T: DeserializeOwned>(table: &'static str, bytes: &[u8]) -> Result<T> {
    let Some((&version, body)) = bytes.split_first() else {
        return Err(Error::corrupt(table, "empty record"));
    };
    if version != FORMAT_VERSION {
        return Err(Error::corrupt(
            table,
            format!("unknown record format version {version}"),
        ));
    }
    let (value, used) = bincode::serde::decode_from_slice::<T, _>(body, cfg())
        .map_err(|e| Error::corrupt(table, format!("cannot decode record: {e}")))?;
    if used != body.len() {
        return Err(Error::corrupt(table, "trailing bytes after record"));
    }
    Ok(value)
}

/// A timestamp as stored: microseconds since the Unix epoch. Every `DateTime<Utc>` fits.
pub(crate) fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

pub(crate) fn from_micros(table: &'static str, m: i64) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_micros(m)
        .ok_or_else(|| Error::corrupt(table, "timestamp out of range"))
}

fn opt_from_micros(table: &'static str, m: Option<i64>) -> Result<Option<DateTime<Utc>>> {
    m.map(|m| from_micros(table, m)).transpose()
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub(crate) struct UserRecord {
    pub id: Uuid,
    pub name: Option<String>,
    pub email: Option<String>,
    pub image: Option<String>,
    pub email_verified: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl UserRecord {
    pub(crate) fn to_model(&self) -> Result<User> {
        const T: &str = crate::schema::USERS_NAME;
        Ok(User {
            id: UserId(self.id),
            name: self.name.clone(),
            email: self.email.clone(),
            image: self.image.clone(),
            email_verified: opt_from_micros(T, self.email_verified)?,
            created_at: from_micros(T, self.created_at)?,
            updated_at: from_micros(T, self.updated_at)?,
        })
    }
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub(crate) struct AccountRecord {
    pub id: Uuid,
    pub user_id: Uuid,
    pub provider_type: String,
    pub provider_id: String,
    pub provider_account_id: String,
    /// Sealed with the database's [`EncryptionKey`](crate::EncryptionKey).
    pub refresh_token: Option<Vec<u8>>,
    /// Sealed with the database's [`EncryptionKey`](crate::EncryptionKey).
    pub access_token: Option<Vec<u8>>,
    pub access_token_expires: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl AccountRecord {
    /// Seals an OAuth token of this account for storage.
    pub(crate) fn seal(
        &self,
        key: Option<&EncryptionKey>,
        field: &str,
        token: Option<&String>,
    ) -> Result<Option<Vec<u8>>> {
        token
            .map(|t| {
                key.ok_or(Error::EncryptionKeyRequired)?
                    .seal(&account_ad(self.id.as_bytes(), field), t)
            })
            .transpose()
    }

    fn unseal(
        &self,
        key: Option<&EncryptionKey>,
        field: &str,
        sealed: Option<&Vec<u8>>,
    ) -> Result<Option<String>> {
        sealed
            .map(|s| {
                key.ok_or(Error::EncryptionKeyRequired)?
                    .open(&account_ad(self.id.as_bytes(), field), s)
            })
            .transpose()
    }

    /// Checks everything `to_model` checks except the sealed tokens (which need the key).
    pub(crate) fn check_times(&self) -> Result<()> {
        const T: &str = crate::schema::ACCOUNTS_NAME;
        opt_from_micros(T, self.access_token_expires)?;
        from_micros(T, self.created_at)?;
        from_micros(T, self.updated_at)?;
        Ok(())
    }

    pub(crate) fn to_model(&self, key: Option<&EncryptionKey>) -> Result<Account> {
        const T: &str = crate::schema::ACCOUNTS_NAME;
        Ok(Account {
            id: AccountId(self.id),
            user_id: UserId(self.user_id),
            provider_type: self.provider_type.clone(),
            provider_id: self.provider_id.clone(),
            provider_account_id: self.provider_account_id.clone(),
            refresh_token: self.unseal(key, "refresh_token", self.refresh_token.as_ref())?,
            access_token: self.unseal(key, "access_token", self.access_token.as_ref())?,
            access_token_expires: opt_from_micros(T, self.access_token_expires)?,
            created_at: from_micros(T, self.created_at)?,
            updated_at: from_micros(T, self.updated_at)?,
        })
    }
}

/// A session as stored. The key is the SHA-256 of the session token; no token is stored.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub(crate) struct SessionRecord {
    pub id: Uuid,
    pub user_id: Uuid,
    pub expires: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl SessionRecord {
    pub(crate) fn to_info(&self) -> Result<SessionInfo> {
        const T: &str = crate::schema::SESSIONS_NAME;
        Ok(SessionInfo {
            id: SessionId(self.id),
            user_id: UserId(self.user_id),
            expires: from_micros(T, self.expires)?,
            created_at: from_micros(T, self.created_at)?,
            updated_at: from_micros(T, self.updated_at)?,
        })
    }
}

/// A verification request as stored. The key is the raw SHA-256 of `token + secret`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub(crate) struct VerificationRecord {
    pub id: Uuid,
    pub identifier: String,
    pub expires: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl VerificationRecord {
    pub(crate) fn to_model(&self, hash: &[u8; 32]) -> Result<VerificationRequest> {
        const T: &str = crate::schema::VERIFICATION_NAME;
        Ok(VerificationRequest {
            id: VerificationRequestId(self.id),
            identifier: self.identifier.clone(),
            token: crate::token::hex(hash),
            expires: from_micros(T, self.expires)?,
            created_at: from_micros(T, self.created_at)?,
            updated_at: from_micros(T, self.updated_at)?,
        })
    }
}

/// A password credential: the argon2id PHC string.
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq)]
pub(crate) struct CredentialRecord {
    pub phc: String,
    pub updated_at: i64,
}

impl std::fmt::Debug for CredentialRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialRecord")
            .field("phc", &crate::model::Redacted)
            .field("updated_at", &self.updated_at)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejects_damage() {
        let r = SessionRecord {
            id: Uuid::now_v7(),
            user_id: Uuid::now_v7(),
            expires: 5,
            created_at: 1,
            updated_at: 2,
        };
        let bytes = encode("t", &r).unwrap();
        assert_eq!(bytes[0], FORMAT_VERSION);
        assert_eq!(decode::<SessionRecord>("t", &bytes).unwrap(), r);
        assert!(decode::<SessionRecord>("t", &[]).is_err());
        assert!(decode::<SessionRecord>("t", &[2]).is_err());
        assert!(decode::<SessionRecord>("t", &bytes[..bytes.len() - 1]).is_err());
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode::<SessionRecord>("t", &longer).is_err());
        // A string claiming a gigantic length is refused without allocating it.
        let mut huge = vec![FORMAT_VERSION];
        huge.extend_from_slice(&[16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        huge.extend_from_slice(&[0xfc, 0xff, 0xff, 0xff, 0x7f]);
        assert!(decode::<UserRecord>("t", &huge).is_err());
    }
}

/// Decodes `bytes` as the record type of table number `table % 5` (users, accounts, sessions,
/// verification requests, credentials). For the `decode` fuzz target.
#[cfg(feature = "fuzzing")]
pub(crate) fn decode_any(table: u8, bytes: &[u8]) -> Result<()> {
    use crate::schema as s;
    match table % 5 {
        0 => decode::<UserRecord>(s::USERS_NAME, bytes)?
            .to_model()
            .map(drop),
        1 => decode::<AccountRecord>(s::ACCOUNTS_NAME, bytes)?
            .to_model(Some(&EncryptionKey::from_bytes([7; 32])))
            .map(drop),
        2 => decode::<SessionRecord>(s::SESSIONS_NAME, bytes)?
            .to_info()
            .map(drop),
        3 => decode::<VerificationRecord>(s::VERIFICATION_NAME, bytes)?
            .to_model(&[0; 32])
            .map(drop),
        _ => decode::<CredentialRecord>(s::CREDENTIALS_NAME, bytes).map(drop),
    }
}
