//! Record encoding: the only module that knows how records are laid out in bytes.
//!
//! Most records are one format byte followed by the bincode (2.0, serde, standard
//! configuration) encoding of a private record struct; each record type has its own format
//! number, bumped when its fields change (the migration in `migrate.rs` reads the old ones
//! through [`v1`]). Sessions, the hottest record, have a fixed-width layout of their own
//! ([`SessionRecord::encode`]). Timestamps are microseconds since the Unix epoch.
//!
//! Every stored value of schema version 2 ends with a 4-byte checksum (CRC-32C, little-endian)
//! over the record's key and its bytes (see [`checksum_of`]). redb checks its page checksums
//! only when a file is opened with verification or checked, not on ordinary reads, so without
//! this a damaged byte inside a field that nothing else repeats (a name, a time) would be read
//! back as a different value. The key is covered too, so a record whose key bytes were damaged
//! (filing it under another token hash, credential id or user id) is caught as well; a
//! mismatch is [`Error::Corrupt`] naming the table, never the content. Version-1 records had
//! no checksum: [`v1::decode`] reads them without one.
//!
//! Decoding checks the checksum first, is bounded (no record may claim more than
//! [`MAX_RECORD_BYTES`]) and must consume the whole value, so damaged bytes give an error,
//! never a panic, a huge allocation or a wrong value.

mod checksum;

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

/// The length of the checksum at the end of every stored value.
pub(crate) const CHECKSUM_LEN: usize = 4;

/// The checksum stored after a record's bytes: CRC-32C over the key's length (4 bytes,
/// little-endian), the key and the record's bytes (format byte included).
pub(crate) fn checksum_of(key: &[u8], body: &[u8]) -> [u8; CHECKSUM_LEN] {
    let key_len = u32::try_from(key.len()).unwrap_or(u32::MAX);
    checksum::Crc32c::new()
        .update(&key_len.to_le_bytes())
        .update(key)
        .update(body)
        .finish()
        .to_le_bytes()
}

/// The record's bytes of a stored value, once its checksum (for `key`) verifies.
pub(crate) fn verified_body<'a>(
    table: &'static str,
    key: &[u8],
    stored: &'a [u8],
) -> Result<&'a [u8]> {
    let Some((body, sum)) = stored.split_last_chunk::<CHECKSUM_LEN>() else {
        return Err(Error::corrupt(table, "record too short for its checksum"));
    };
    if *sum != checksum_of(key, body) {
        return Err(Error::corrupt(
            table,
            "checksum mismatch: the record's bytes (or its key) are damaged",
        ));
    }
    Ok(body)
}

/// Encodes `value`, to be stored under `key` (the table's key bytes), with its checksum.
pub(crate) fn encode<R: Record>(key: &[u8], value: &R) -> Result<Vec<u8>> {
    let mut out = vec![R::FORMAT];
    bincode::serde::encode_into_std_write(value, &mut out, cfg())
        .map_err(|e| Error::corrupt(R::TABLE, format!("cannot encode record: {e}")))?;
    let sum = checksum_of(key, &out);
    out.extend_from_slice(&sum);
    Ok(out)
}

/// Decodes the value stored under `key` (the table's key bytes), checksum first.
pub(crate) fn decode<R: Record>(key: &[u8], stored: &[u8]) -> Result<R> {
    decode_body(verified_body(R::TABLE, key, stored)?)
}

/// Decodes a record's bytes (format byte and bincode), without a checksum.
fn decode_body<R: Record>(bytes: &[u8]) -> Result<R> {
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

/// Format byte + two UUIDs + four timestamps + checksum.
pub(crate) const SESSION_RECORD_LEN: usize = 1 + 16 + 16 + 4 * 8 + CHECKSUM_LEN;
const SESSION_FORMAT: u8 = 1;

impl SessionRecord {
    /// The stored value of this session under the token hash `hash`.
    pub(crate) fn encode(&self, hash: &[u8; 32]) -> [u8; SESSION_RECORD_LEN] {
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
        let sum = out
            .split_last_chunk::<CHECKSUM_LEN>()
            .map(|(body, _)| checksum_of(hash, body))
            .unwrap_or_default();
        if let Some(tail) = out.last_chunk_mut::<CHECKSUM_LEN>() {
            *tail = sum;
        }
        out
    }

    /// The session stored under the token hash `hash`, checksum first.
    pub(crate) fn decode(hash: &[u8; 32], bytes: &[u8]) -> Result<Self> {
        const T: &str = schema::SESSIONS_NAME;
        if bytes.len() != SESSION_RECORD_LEN {
            return Err(Error::corrupt(T, "session record has the wrong length"));
        }
        let body = verified_body(T, hash, bytes)?;
        let (format, rest) = body
            .split_first()
            .ok_or_else(|| Error::corrupt(T, "empty"))?;
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

    /// Decodes a version-1 value: format byte and bincode, no checksum. Records of tables
    /// the migration does not otherwise change (verification requests, passwords) are read
    /// this way and written back with their checksum.
    pub(crate) fn decode<R: Record>(bytes: &[u8]) -> Result<R> {
        super::decode_body(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> VerificationRecord {
        VerificationRecord {
            id: Uuid::now_v7(),
            identifier: "a@x.io".into(),
            expires: 5,
            created_at: 1,
            updated_at: 2,
        }
    }

    #[test]
    fn round_trip_and_rejects_damage() {
        let key = [3u8; 32];
        let r = sample();
        let bytes = encode(&key, &r).unwrap();
        assert_eq!(bytes[0], VerificationRecord::FORMAT);
        assert_eq!(decode::<VerificationRecord>(&key, &bytes).unwrap(), r);
        assert!(decode::<VerificationRecord>(&key, &[]).is_err());
        assert!(decode::<VerificationRecord>(&key, &[9]).is_err());
        assert!(decode::<VerificationRecord>(&key, &bytes[..bytes.len() - 1]).is_err());
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode::<VerificationRecord>(&key, &longer).is_err());
        // A string claiming a gigantic length is refused without allocating it, even with a
        // valid checksum.
        let mut huge = vec![UserRecord::FORMAT];
        huge.extend_from_slice(&[16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        huge.extend_from_slice(&[0xfc, 0xff, 0xff, 0xff, 0x7f]);
        let sum = checksum_of(&[1; 16], &huge);
        huge.extend_from_slice(&sum);
        assert!(decode::<UserRecord>(&[1; 16], &huge).is_err());
    }

    /// Every single damaged byte of a record, or of its key, is a checksum error naming the
    /// table and nothing of the content.
    #[test]
    fn any_damaged_byte_is_caught() {
        let key = [3u8; 32];
        let bytes = encode(&key, &sample()).unwrap();
        for i in 0..bytes.len() {
            for flip in [0x01, 0x80, 0xff] {
                let mut bad = bytes.clone();
                bad[i] ^= flip;
                let Err(Error::Corrupt { table, detail }) =
                    decode::<VerificationRecord>(&key, &bad)
                else {
                    panic!("byte {i} ^ {flip:#x} not caught");
                };
                assert_eq!(table, schema::VERIFICATION_NAME);
                assert!(detail.contains("checksum"), "{detail}");
                assert!(!detail.contains("a@x.io"));
            }
        }
        for i in 0..key.len() {
            let mut other = key;
            other[i] ^= 0x10;
            assert!(
                decode::<VerificationRecord>(&other, &bytes).is_err(),
                "key byte {i}"
            );
        }
        // The key length is covered: the same bytes under a shorter key do not verify.
        assert!(decode::<VerificationRecord>(&key[..31], &bytes).is_err());
    }

    #[test]
    fn version_1_values_have_no_checksum() {
        let r = sample();
        let stored = encode(&[0; 32], &r).unwrap();
        let v1_bytes = &stored[..stored.len() - CHECKSUM_LEN];
        assert_eq!(v1::decode::<VerificationRecord>(v1_bytes).unwrap(), r);
        assert!(decode::<VerificationRecord>(&[0; 32], v1_bytes).is_err());
    }

    #[test]
    fn session_records_are_fixed_width_and_checked() {
        let hash = [7u8; 32];
        let r = SessionRecord {
            id: Uuid::now_v7(),
            user_id: Uuid::now_v7(),
            expires: -5,
            indexed_expires: -7,
            created_at: i64::MIN,
            updated_at: i64::MAX,
        };
        let bytes = r.encode(&hash);
        assert_eq!(SessionRecord::decode(&hash, &bytes).unwrap(), r);
        assert!(SessionRecord::decode(&hash, &bytes[1..]).is_err());
        let mut bad = bytes;
        bad[0] = 9;
        assert!(SessionRecord::decode(&hash, &bad).is_err());
        for i in 0..bytes.len() {
            let mut bad = bytes;
            bad[i] ^= 0x04;
            assert!(SessionRecord::decode(&hash, &bad).is_err(), "byte {i}");
        }
        let mut other = hash;
        other[31] ^= 1;
        assert!(SessionRecord::decode(&other, &bytes).is_err());
    }
}
