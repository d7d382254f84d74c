//! Record encoding: the only module that knows how records are laid out in bytes.
//!
//! Most records are one format byte followed by the bincode (2.0, serde, standard
//! configuration) encoding of a private record struct; each record type has its own format
//! number, bumped when its fields change (the migration in `migrate.rs` reads the old ones
//! through [`v1`]). Sessions, the hottest record, have a fixed-width layout of their own
//! ([`SessionRecord::encode`]). Timestamps are microseconds since the Unix epoch. Decoding is
//! bounded (no record may claim more than [`MAX_RECORD_BYTES`]) and must consume the whole
//! value, so damaged bytes give an error, never a panic or a huge allocation.

use bincode::config::{self, Configuration, Limit, LittleEndian, Varint};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::schema;

/// The largest record the decoder accepts. Every field has a documented size limit below it.
pub(crate) const MAX_RECORD_BYTES: usize = 96 * 1024;

type Cfg = Configuration<LittleEndian, Varint, Limit<MAX_RECORD_BYTES>>;

fn cfg() -> Cfg {
    config::standard().with_limit::<MAX_RECORD_BYTES>()
}

/// A record stored as a format byte plus bincode.
pub(crate) trait Record: Serialize + DeserializeOwned {
    /// The table it lives in (for error messages).
    const TABLE: &'static str;
    /// Its format number, the first byte of every stored value.
    const FORMAT: u8;
}

pub(crate) fn encode<R: Record>(value: &R) -> Result<Vec<u8>> {
    let mut out = vec![R::FORMAT];
    bincode::serde::encode_into_std_write(value, &mut out, cfg())
        .map_err(|e| Error::corrupt(R::TABLE, format!("cannot encode record: {e}")))?;
    Ok(out)
}

pub(crate) fn decode<R: Record>(bytes: &[u8]) -> Result<R> {
    let Some((&version, body)) = bytes.split_first() else {
        return Err(Error::corrupt(R::TABLE, "empty record"));
    };
    if version != R::FORMAT {
        return Err(Error::corrupt(
            R::TABLE,
            format!("unknown record format version {version}"),
        ));
    }
    let (value, used) = bincode::serde::decode_from_slice::<R, _>(body, cfg())
        .map_err(|e| Error::corrupt(R::TABLE, format!("cannot decode record: {e}")))?;
    if used != body.len() {
        return Err(Error::corrupt(R::TABLE, "trailing bytes after record"));
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

pub(crate) fn opt_from_micros(
    table: &'static str,
    m: Option<i64>,
) -> Result<Option<DateTime<Utc>>> {
    m.map(|m| from_micros(table, m)).transpose()
}

/// A user as stored (format 2).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub(crate) struct UserRecord {
    pub id: Uuid,
    pub name: Option<String>,
    pub email: Option<String>,
    pub image: Option<String>,
    pub email_verified: Option<i64>,
    /// Compact JSON of the `extra` object; `None` when empty.
    pub extra: Option<Vec<u8>>,
    pub security_stamp: [u8; 16],
    pub created_at: i64,
    pub updated_at: i64,
}

impl Record for UserRecord {
    const TABLE: &'static str = schema::USERS_NAME;
    const FORMAT: u8 = 2;
}

/// An account as stored (format 2). Every `Vec<u8>` secret is sealed (see `crypto.rs`).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub(crate) struct AccountRecord {
    pub id: Uuid,
    pub user_id: Uuid,
    pub provider_type: String,
    pub provider_id: String,
    pub provider_account_id: String,
    pub refresh_token: Option<Vec<u8>>,
    pub access_token: Option<Vec<u8>>,
    pub access_token_expires: Option<i64>,
    pub token_type: Option<String>,
    pub scope: Option<String>,
    pub id_token: Option<Vec<u8>>,
    pub session_state: Option<String>,
    /// The sealed compact JSON of the `extra` object; `None` when empty.
    pub extra: Option<Vec<u8>>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Record for AccountRecord {
    const TABLE: &'static str = schema::ACCOUNTS_NAME;
    const FORMAT: u8 = 2;
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

impl Record for VerificationRecord {
    const TABLE: &'static str = schema::VERIFICATION_NAME;
    const FORMAT: u8 = 1;
}

/// A password credential: the argon2id PHC string.
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq)]
pub(crate) struct CredentialRecord {
    pub phc: String,
    pub updated_at: i64,
}

impl Record for CredentialRecord {
    const TABLE: &'static str = schema::CREDENTIALS_NAME;
    const FORMAT: u8 = 1;
}

impl std::fmt::Debug for CredentialRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialRecord")
            .field("phc", &crate::model::Redacted)
            .field("updated_at", &self.updated_at)
            .finish()
    }
}

/// A WebAuthn authenticator as stored; the key is the credential id.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub(crate) struct AuthenticatorRecord {
    pub user_id: Uuid,
    pub provider_account_id: String,
    pub credential_public_key: String,
    pub counter: u64,
    pub credential_device_type: String,
    pub credential_backed_up: bool,
    pub transports: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Record for AuthenticatorRecord {
    const TABLE: &'static str = schema::AUTHENTICATORS_NAME;
    const FORMAT: u8 = 1;
}

/// A tower-sessions record as stored (format 1); the key holds the SHA-256 of its 16-byte id,
/// never the id. `data` is the adapter's own encoding of the session data, opaque here.
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq)]
pub(crate) struct WebSessionRecord {
    pub user_id: Option<Uuid>,
    pub expires: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub data: Vec<u8>,
}

impl Record for WebSessionRecord {
    const TABLE: &'static str = schema::WEB_SESSIONS_NAME;
    const FORMAT: u8 = 1;
}

impl std::fmt::Debug for WebSessionRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSessionRecord")
            .field("user_id", &self.user_id)
            .field("expires", &self.expires)
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .field("data_len", &self.data.len())
            .finish()
    }
}

/// A session as stored: fixed width, no bincode (the hottest read decodes it). The key holds
/// the SHA-256 of the session token; no token is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SessionRecord {
    pub id: Uuid,
    pub user_id: Uuid,
    pub expires: i64,
    /// The expiry under which the session's expiry-index entry is filed: never later than
    /// `expires` (extending a session leaves the entry where it is; purge re-files it).
    pub indexed_expires: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Format byte + two UUIDs + four timestamps.
pub(crate) const SESSION_RECORD_LEN: usize = 1 + 16 + 16 + 4 * 8;
const SESSION_FORMAT: u8 = 1;

impl SessionRecord {
    pub(crate) fn encode(&self) -> [u8; SESSION_RECORD_LEN] {
        let mut out = [0u8; SESSION_RECORD_LEN];
        let mut w = Writer(&mut out, 0);
        w.put(&[SESSION_FORMAT]);
        w.put(self.id.as_bytes());
        w.put(self.user_id.as_bytes());
        for t in [
            self.expires,
            self.indexed_expires,
            self.created_at,
            self.updated_at,
        ] {
            w.put(&t.to_le_bytes());
        }
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self> {
        const T: &str = schema::SESSIONS_NAME;
        let b: &[u8; SESSION_RECORD_LEN] = bytes
            .try_into()
            .map_err(|_| Error::corrupt(T, "session record has the wrong length"))?;
        let (format, rest) = b.split_first().ok_or_else(|| Error::corrupt(T, "empty"))?;
        if *format != SESSION_FORMAT {
            return Err(Error::corrupt(
                T,
                format!("unknown record format version {format}"),
            ));
        }
        let mut r = Reader(rest);
        Ok(Self {
            id: Uuid::from_bytes(r.take()),
            user_id: Uuid::from_bytes(r.take()),
            expires: i64::from_le_bytes(r.take()),
            indexed_expires: i64::from_le_bytes(r.take()),
            created_at: i64::from_le_bytes(r.take()),
            updated_at: i64::from_le_bytes(r.take()),
        })
    }
}

struct Writer<'a>(&'a mut [u8], usize);

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) {
        if let Some(dst) = self.0.get_mut(self.1..self.1 + bytes.len()) {
            dst.copy_from_slice(bytes);
        }
        self.1 += bytes.len();
    }
}

/// Reads fixed-size pieces from a slice whose length the caller has checked.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        if let Some((head, tail)) = self.0.split_at_checked(N) {
            out.copy_from_slice(head);
            self.0 = tail;
        }
        out
    }
}

/// The record formats of schema version 1, read only by the migration.
pub(crate) mod v1 {
    use serde::{Deserialize, Serialize};
    use uuid::Uuid;

    use super::Record;
    use crate::error::Result;

    #[derive(Serialize, Deserialize, Debug, Clone)]
    pub(crate) struct UserRecord {
        pub id: Uuid,
        pub name: Option<String>,
        pub email: Option<String>,
        pub image: Option<String>,
        pub email_verified: Option<i64>,
        pub created_at: i64,
        pub updated_at: i64,
    }

    impl Record for UserRecord {
        const TABLE: &'static str = "users";
        const FORMAT: u8 = 1;
    }

    #[derive(Serialize, Deserialize, Debug, Clone)]
    pub(crate) struct AccountRecord {
        pub id: Uuid,
        pub user_id: Uuid,
        pub provider_type: String,
        pub provider_id: String,
        pub provider_account_id: String,
        pub refresh_token: Option<Vec<u8>>,
        pub access_token: Option<Vec<u8>>,
        pub access_token_expires: Option<i64>,
        pub created_at: i64,
        pub updated_at: i64,
    }

    impl Record for AccountRecord {
        const TABLE: &'static str = "accounts";
        const FORMAT: u8 = 1;
    }

    #[derive(Serialize, Deserialize, Debug, Clone)]
    pub(crate) struct SessionRecord {
        pub id: Uuid,
        pub user_id: Uuid,
        pub expires: i64,
        pub created_at: i64,
        pub updated_at: i64,
    }

    impl Record for SessionRecord {
        const TABLE: &'static str = "sessions";
        const FORMAT: u8 = 1;
    }

    pub(crate) fn decode<R: Record>(bytes: &[u8]) -> Result<R> {
        super::decode(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejects_damage() {
        let r = VerificationRecord {
            id: Uuid::now_v7(),
            identifier: "a@x.io".into(),
            expires: 5,
            created_at: 1,
            updated_at: 2,
        };
        let bytes = encode(&r).unwrap();
        assert_eq!(bytes[0], VerificationRecord::FORMAT);
        assert_eq!(decode::<VerificationRecord>(&bytes).unwrap(), r);
        assert!(decode::<VerificationRecord>(&[]).is_err());
        assert!(decode::<VerificationRecord>(&[9]).is_err());
        assert!(decode::<VerificationRecord>(&bytes[..bytes.len() - 1]).is_err());
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode::<VerificationRecord>(&longer).is_err());
        // A string claiming a gigantic length is refused without allocating it.
        let mut huge = vec![UserRecord::FORMAT];
        huge.extend_from_slice(&[16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        huge.extend_from_slice(&[0xfc, 0xff, 0xff, 0xff, 0x7f]);
        assert!(decode::<UserRecord>(&huge).is_err());
    }

    #[test]
    fn session_records_are_fixed_width_and_checked() {
        let r = SessionRecord {
            id: Uuid::now_v7(),
            user_id: Uuid::now_v7(),
            expires: -5,
            indexed_expires: -7,
            created_at: i64::MIN,
            updated_at: i64::MAX,
        };
        let bytes = r.encode();
        assert_eq!(SessionRecord::decode(&bytes).unwrap(), r);
        assert!(SessionRecord::decode(&bytes[1..]).is_err());
        let mut bad = bytes;
        bad[0] = 9;
        assert!(SessionRecord::decode(&bad).is_err());
    }
}
