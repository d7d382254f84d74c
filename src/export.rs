//! Export and import in JSON Lines: every record of every table, one per line, with Auth.js's
//! field names where Auth.js has the field and authdb's own names for the rest.
//!
//! ## The format (version 1)
//!
//! The first line is the header, the last the end line with the count of each kind; every
//! line in between is one record, an object whose `kind` names its type. Records come in this
//! order: users, passwords, accounts, sessions, authenticators, verification tokens (so every
//! record comes after the user it refers to). Times are RFC 3339 strings in UTC with
//! microseconds (`"2024-05-01T12:00:00.000000Z"`; a time outside years 0–9999 is written as
//! an integer number of microseconds since the epoch), ids are hyphenated UUIDs, hashes are
//! lowercase hex, sealed values base64 (standard alphabet, padded). Optional fields are
//! written as `null`.
//!
//! ```text
//! {"format":"authdb-export","version":1,"schemaVersion":2}
//! {"kind":"user","id":"…","name":"Ada","email":"ada@example.com","emailVerified":null,"image":null,"extra":{},"securityStamp":"<32 hex>","createdAt":"…","updatedAt":"…"}
//! {"kind":"password","userId":"…","hash":"$argon2id$v=19$…","updatedAt":"…"}
//! {"kind":"account","id":"…","userId":"…","type":"oauth","provider":"github","providerAccountId":"4242","refresh_token_sealed":"<base64>","access_token_sealed":"<base64>","expires_at":1714564800,"token_type":"bearer","scope":null,"id_token_sealed":null,"session_state":null,"extra_sealed":null,"createdAt":"…","updatedAt":"…"}
//! {"kind":"session","id":"…","userId":"…","sessionTokenHash":"<64 hex>","expires":"…","createdAt":"…","updatedAt":"…"}
//! {"kind":"authenticator","credentialID":"…","userId":"…","providerAccountId":"…","credentialPublicKey":"…","counter":0,"credentialDeviceType":"singleDevice","credentialBackedUp":false,"transports":null,"createdAt":"…","updatedAt":"…"}
//! {"kind":"verificationToken","id":"…","identifier":"ada@example.com","token":"<64 hex>","expires":"…","createdAt":"…","updatedAt":"…"}
//! {"kind":"end","counts":{"users":1,"passwords":1,"accounts":1,"sessions":1,"authenticators":1,"verificationTokens":1}}
//! ```
//!
//! - `expires_at` is Auth.js's: whole seconds since the epoch. A stored expiry with a fraction
//!   of a second adds `expires_at_us`, the microseconds past that second.
//! - Secrets stay as the file holds them: session tokens as their SHA-256 (`sessionTokenHash`),
//!   verification tokens as their hash (`token`, the key the link is stored under), passwords
//!   as argon2id PHC strings, OAuth tokens and an account's extra fields sealed under the
//!   encryption key (`*_sealed`; the key itself is never exported, and the import needs none),
//!   the security stamp as hex. **An export is as sensitive as the database**: the tool
//!   creates it with owner-only permissions.
//! - The session's expiry-index position (`indexed_expires`) is an index detail and is not
//!   exported; import files each session under its expiry.
//! - Export → import into an empty file → export gives the same bytes.
//!
//! ## Import
//!
//! One run is one write transaction: every line is checked and written into it as it is
//! read, and the transaction commits only after the end line, with every count matching. A
//! bad line (malformed JSON, an unknown field, a value over its limit, a duplicate id, email,
//! provider account, token hash or credential id, a record whose user is not there) stops the
//! run with an error naming the line, and nothing is written. Ids, times and stamps are kept.
//!
//! Trade-off: all-or-nothing means the whole import is one redb transaction, whose pages stay
//! uncommitted until the end; the file grows by about the import's size while it runs (redb
//! writes dirty pages through its cache), and other writers of the same database wait until
//! it commits. Import into a fresh file ([`import_into_new_file`]) does not block anyone.
//! Lines are limited to [`MAX_IMPORT_LINE_BYTES`]; nothing else is held in memory per line.

use std::fmt;
use std::io::{BufRead, Write};
use std::path::Path;

use chrono::{DateTime, Datelike, SecondsFormat, Utc};
use redb::ReadableTable;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

use crate::codec::{
    self, AccountRecord, AuthenticatorRecord, CredentialRecord, SessionRecord, UserRecord,
    VerificationRecord,
};
use crate::db::AuthDb;
use crate::error::{Error, Result};
use crate::limits;
use crate::model::{Extra, NewAccount, NewAuthenticator, NewUser};
use crate::schema::{self, SCHEMA_VERSION};
use crate::source::Source;
use crate::tables::accounts::AccountTables;
use crate::tables::authenticators::AuthenticatorTables;
use crate::tables::credentials;
use crate::tables::sessions::{self, SessionTable};
use crate::tables::users::{self, UserTables};
use crate::tables::verification::VerificationTables;

/// The `format` of the header line.
pub const EXPORT_FORMAT: &str = "authdb-export";
/// The export format version this build writes and reads.
pub const EXPORT_VERSION: u64 = 1;
/// The longest line import accepts, in bytes (the largest record authdb can store is well
/// below it, even with every character escaped).
pub const MAX_IMPORT_LINE_BYTES: usize = 1024 * 1024;

/// How many records of each kind an export holds (the end line) or an import wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct ExportCounts {
    /// Users.
    pub users: u64,
    /// Passwords.
    pub passwords: u64,
    /// Linked accounts.
    pub accounts: u64,
    /// Sessions (expired ones included).
    pub sessions: u64,
    /// WebAuthn authenticators.
    pub authenticators: u64,
    /// Email sign-in links (expired ones included).
    pub verification_tokens: u64,
}

impl ExportCounts {
    /// Every record counted.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.users
            + self.passwords
            + self.accounts
            + self.sessions
            + self.authenticators
            + self.verification_tokens
    }
}

/// Why an import stopped. Nothing was written.
#[derive(Debug)]
pub struct ImportError {
    line: Option<u64>,
    message: String,
    source: Option<Error>,
}

impl ImportError {
    fn at(line: u64, message: impl Into<String>) -> Self {
        Self {
            line: Some(line),
            message: message.into(),
            source: None,
        }
    }

    /// The 1-based number of the offending line, when one line is to blame.
    #[must_use]
    pub fn line(&self) -> Option<u64> {
        self.line
    }

    /// The storage (or other authdb) error behind it, if any.
    #[must_use]
    pub fn error(&self) -> Option<&Error> {
        self.source.as_ref()
    }
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(n) => write!(f, "line {n}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ImportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_ref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl From<Error> for ImportError {
    fn from(e: Error) -> Self {
        Self {
            line: None,
            message: e.to_string(),
            source: Some(e),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Field encodings.
// ---------------------------------------------------------------------------------------------

/// A stored time (microseconds since the epoch) as RFC 3339 with microseconds, or as an
/// integer when the year is outside 0–9999.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ts(i64);

impl Serialize for Ts {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match DateTime::<Utc>::from_timestamp_micros(self.0) {
            Some(t) if (0..=9999).contains(&t.year()) => {
                s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Micros, true))
            }
            _ => s.serialize_i64(self.0),
        }
    }
}

impl<'de> Deserialize<'de> for Ts {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(i64),
            Str(String),
        }
        let m = match Raw::deserialize(d)? {
            Raw::Int(m) => m,
            Raw::Str(s) => DateTime::parse_from_rfc3339(&s)
                .map_err(|_| serde::de::Error::custom("a time is not RFC 3339"))?
                .with_timezone(&Utc)
                .timestamp_micros(),
        };
        if DateTime::<Utc>::from_timestamp_micros(m).is_none() {
            return Err(serde::de::Error::custom("a time is out of range"));
        }
        Ok(Ts(m))
    }
}

/// `N` bytes as lowercase hex.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Hex<const N: usize>([u8; N]);

impl<const N: usize> Serialize for Hex<N> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&crate::token::hex(&self.0))
    }
}

impl<'de, const N: usize> Deserialize<'de> for Hex<N> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        unhex::<N>(&s).map(Hex).ok_or_else(|| {
            serde::de::Error::custom(format!("expected {} hexadecimal digits", 2 * N))
        })
    }
}

fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let b = s.as_bytes();
    if b.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (o, pair) in out.iter_mut().zip(b.chunks_exact(2)) {
        let [hi, lo] = pair else { return None };
        let hi = char::from(*hi).to_digit(16)?;
        let lo = char::from(*lo).to_digit(16)?;
        *o = u8::try_from(hi * 16 + lo).ok()?;
    }
    Some(out)
}

/// Bytes as standard, padded base64.
#[derive(Debug, Clone, PartialEq, Eq)]
struct B64(Vec<u8>);

const B64_ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn b64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                let idx = ((n >> (18 - 6 * i)) & 63) as usize;
                out.push(char::from(B64_ALPHABET.get(idx).copied().unwrap_or(b'A')));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn b64_decode(s: &str) -> Option<Vec<u8>> {
    fn val(c: u8) -> Option<u32> {
        B64_ALPHABET
            .iter()
            .position(|&a| a == c)
            .and_then(|p| u32::try_from(p).ok())
    }
    let b = s.as_bytes();
    if !b.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(b.len() / 4 * 3);
    let quads = b.len() / 4;
    for (qi, q) in b.chunks_exact(4).enumerate() {
        let pad = q.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && qi + 1 != quads) {
            return None;
        }
        let mut n = 0u32;
        for (i, &c) in q.iter().enumerate() {
            let v = if i >= 4 - pad { 0 } else { val(c)? };
            n = (n << 6) | v;
        }
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(bytes.get(..3 - pad)?);
        // Canonical form only: the bits dropped by padding must be zero.
        let dropped = match pad {
            1 => n & 0xff,
            2 => n & 0xffff,
            _ => 0,
        };
        if dropped != 0 {
            return None;
        }
    }
    Some(out)
}

impl Serialize for B64 {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&b64_encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for B64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        b64_decode(&s)
            .map(B64)
            .ok_or_else(|| serde::de::Error::custom("a sealed value is not valid base64"))
    }
}

// ---------------------------------------------------------------------------------------------
// Lines.
// ---------------------------------------------------------------------------------------------

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Header {
    format: String,
    version: u64,
    schema_version: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "kind")]
enum Line {
    #[serde(rename = "user")]
    User(UserLine),
    #[serde(rename = "password")]
    Password(PasswordLine),
    #[serde(rename = "account")]
    Account(AccountLine),
    #[serde(rename = "session")]
    Session(SessionLine),
    #[serde(rename = "authenticator")]
    Authenticator(AuthenticatorLine),
    #[serde(rename = "verificationToken")]
    Verification(VerificationLine),
    #[serde(rename = "end")]
    End(EndLine),
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct UserLine {
    id: Uuid,
    name: Option<String>,
    email: Option<String>,
    email_verified: Option<Ts>,
    image: Option<String>,
    #[serde(default)]
    extra: Extra,
    security_stamp: Hex<16>,
    created_at: Ts,
    updated_at: Ts,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PasswordLine {
    user_id: Uuid,
    hash: String,
    updated_at: Ts,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountLine {
    id: Uuid,
    #[serde(rename = "userId")]
    user_id: Uuid,
    #[serde(rename = "type")]
    provider_type: String,
    provider: String,
    #[serde(rename = "providerAccountId")]
    provider_account_id: String,
    refresh_token_sealed: Option<B64>,
    access_token_sealed: Option<B64>,
    expires_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at_us: Option<u32>,
    token_type: Option<String>,
    scope: Option<String>,
    id_token_sealed: Option<B64>,
    session_state: Option<String>,
    extra_sealed: Option<B64>,
    #[serde(rename = "createdAt")]
    created_at: Ts,
    #[serde(rename = "updatedAt")]
    updated_at: Ts,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SessionLine {
    id: Uuid,
    user_id: Uuid,
    session_token_hash: Hex<32>,
    expires: Ts,
    created_at: Ts,
    updated_at: Ts,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AuthenticatorLine {
    #[serde(rename = "credentialID")]
    credential_id: String,
    user_id: Uuid,
    provider_account_id: String,
    credential_public_key: String,
    counter: u64,
    credential_device_type: String,
    credential_backed_up: bool,
    transports: Option<String>,
    created_at: Ts,
    updated_at: Ts,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct VerificationLine {
    id: Uuid,
    identifier: String,
    token: Hex<32>,
    expires: Ts,
    created_at: Ts,
    updated_at: Ts,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EndLine {
    counts: ExportCounts,
}

const MICROS: i64 = 1_000_000;

fn split_expires_at(m: Option<i64>) -> (Option<i64>, Option<u32>) {
    match m {
        None => (None, None),
        Some(m) => {
            let us = m.rem_euclid(MICROS);
            (
                Some(m.div_euclid(MICROS)),
                (us != 0).then(|| u32::try_from(us).unwrap_or(0)),
            )
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Export.
// ---------------------------------------------------------------------------------------------

impl AuthDb {
    /// Writes every record to `out` as JSON Lines (see the [module docs](crate::export) for
    /// the format), from one read snapshot: writers are not blocked, and the export holds
    /// exactly the commits that had finished when it began. A record that cannot be decoded
    /// stops the export with [`Error::Corrupt`] (use `salvage` on a damaged file).
    pub fn export_to(&self, out: impl Write) -> Result<ExportCounts> {
        self.export_to_with_progress(out, |_| {})
    }

    /// [`export_to`](Self::export_to), calling `progress` with the number of records written
    /// so far (every few thousand records and at the end).
    pub fn export_to_with_progress(
        &self,
        out: impl Write,
        progress: impl FnMut(u64),
    ) -> Result<ExportCounts> {
        let rtx = self.read()?;
        export_snapshot(&rtx, out, progress)
    }

    /// Imports an export (see the [module docs](crate::export)) into this database in one
    /// write transaction: everything or, on the first bad line, nothing.
    pub fn import_from(
        &self,
        input: impl BufRead,
    ) -> std::result::Result<ExportCounts, ImportError> {
        self.import_from_with_progress(input, |_| {})
    }

    /// [`import_from`](Self::import_from), calling `progress` with the number of records
    /// written so far.
    pub fn import_from_with_progress(
        &self,
        input: impl BufRead,
        progress: impl FnMut(u64),
    ) -> std::result::Result<ExportCounts, ImportError> {
        let tx = self.begin_write()?;
        let counts = import_txn(&tx.txn, input, progress)?;
        tx.commit()?;
        Ok(counts)
    }
}

/// Imports an export into a new database file at `path` (which must not exist). The file is
/// built under a temporary name and appears at `path` only when the whole import succeeded:
/// a failed import leaves nothing behind.
pub fn import_into_new_file(
    path: impl AsRef<Path>,
    input: impl BufRead,
    progress: impl FnMut(u64),
) -> std::result::Result<ExportCounts, ImportError> {
    crate::backup::create_new_file(path.as_ref(), |db| {
        let mut wtx = db.begin_write().map_err(Error::from)?;
        wtx.set_durability(redb::Durability::Immediate)
            .map_err(Error::from)?;
        let counts = import_txn(&wtx, input, progress)?;
        wtx.commit().map_err(Error::from)?;
        Ok(counts)
    })
}

struct Out<W: Write, P: FnMut(u64)> {
    w: std::io::BufWriter<W>,
    n: u64,
    progress: P,
}

impl<W: Write, P: FnMut(u64)> Out<W, P> {
    fn line<T: Serialize>(&mut self, v: &T) -> Result<()> {
        serde_json::to_writer(&mut self.w, v).map_err(std::io::Error::other)?;
        self.w.write_all(b"\n")?;
        self.n += 1;
        if self.n.is_multiple_of(crate::backup::PROGRESS_EVERY) {
            (self.progress)(self.n);
        }
        Ok(())
    }
}

fn key_mismatch(table: &'static str) -> Error {
    Error::corrupt(table, "a record's id differs from its key")
}

fn export_snapshot(
    rtx: &redb::ReadTransaction,
    out: impl Write,
    progress: impl FnMut(u64),
) -> Result<ExportCounts> {
    let mut o = Out {
        w: std::io::BufWriter::new(out),
        n: 0,
        progress,
    };
    let mut c = ExportCounts::default();
    o.line(&Header {
        format: EXPORT_FORMAT.into(),
        version: EXPORT_VERSION,
        schema_version: SCHEMA_VERSION,
    })?;
    for e in rtx.users()?.iter()? {
        let (k, v) = e?;
        let r: UserRecord = codec::decode(&k.value(), v.value())?;
        if *r.id.as_bytes() != k.value() {
            return Err(key_mismatch(schema::USERS_NAME));
        }
        o.line(&Line::User(UserLine {
            id: r.id,
            name: r.name,
            email: r.email,
            email_verified: r.email_verified.map(Ts),
            image: r.image,
            extra: users::decode_extra(r.extra.as_deref())?,
            security_stamp: Hex(r.security_stamp),
            created_at: Ts(r.created_at),
            updated_at: Ts(r.updated_at),
        }))?;
        c.users += 1;
    }
    for e in rtx.credentials()?.iter()? {
        let (k, v) = e?;
        let r: CredentialRecord = codec::decode(&k.value(), v.value())?;
        o.line(&Line::Password(PasswordLine {
            user_id: Uuid::from_bytes(k.value()),
            hash: r.phc,
            updated_at: Ts(r.updated_at),
        }))?;
        c.passwords += 1;
    }
    for e in rtx.accounts()?.iter()? {
        let (k, v) = e?;
        let r: AccountRecord = codec::decode(&k.value(), v.value())?;
        if *r.id.as_bytes() != k.value() {
            return Err(key_mismatch(schema::ACCOUNTS_NAME));
        }
        let (expires_at, expires_at_us) = split_expires_at(r.access_token_expires);
        o.line(&Line::Account(AccountLine {
            id: r.id,
            user_id: r.user_id,
            provider_type: r.provider_type,
            provider: r.provider_id,
            provider_account_id: r.provider_account_id,
            refresh_token_sealed: r.refresh_token.map(B64),
            access_token_sealed: r.access_token.map(B64),
            expires_at,
            expires_at_us,
            token_type: r.token_type,
            scope: r.scope,
            id_token_sealed: r.id_token.map(B64),
            session_state: r.session_state,
            extra_sealed: r.extra.map(B64),
            created_at: Ts(r.created_at),
            updated_at: Ts(r.updated_at),
        }))?;
        c.accounts += 1;
    }
    sessions::each_record(&rtx.sessions()?, |hash, r| {
        let r = r?;
        o.line(&Line::Session(SessionLine {
            id: r.id,
            user_id: r.user_id,
            session_token_hash: Hex(hash),
            expires: Ts(r.expires),
            created_at: Ts(r.created_at),
            updated_at: Ts(r.updated_at),
        }))?;
        c.sessions += 1;
        Ok(())
    })?;
    for e in rtx.authenticators()?.iter()? {
        let (k, v) = e?;
        let r: AuthenticatorRecord = codec::decode(k.value().as_bytes(), v.value())?;
        o.line(&Line::Authenticator(AuthenticatorLine {
            credential_id: k.value().to_owned(),
            user_id: r.user_id,
            provider_account_id: r.provider_account_id,
            credential_public_key: r.credential_public_key,
            counter: r.counter,
            credential_device_type: r.credential_device_type,
            credential_backed_up: r.credential_backed_up,
            transports: r.transports,
            created_at: Ts(r.created_at),
            updated_at: Ts(r.updated_at),
        }))?;
        c.authenticators += 1;
    }
    for e in rtx.verification()?.iter()? {
        let (k, v) = e?;
        let r: VerificationRecord = codec::decode(&k.value(), v.value())?;
        o.line(&Line::Verification(VerificationLine {
            id: r.id,
            identifier: r.identifier,
            token: Hex(k.value()),
            expires: Ts(r.expires),
            created_at: Ts(r.created_at),
            updated_at: Ts(r.updated_at),
        }))?;
        c.verification_tokens += 1;
    }
    o.line(&Line::End(EndLine { counts: c }))?;
    o.w.flush()?;
    let n = o.n;
    (o.progress)(n);
    Ok(c)
}

// ---------------------------------------------------------------------------------------------
// Import.
// ---------------------------------------------------------------------------------------------

/// Reads lines of at most `max` bytes (without the newline), counting them.
struct LineReader<R> {
    r: R,
    n: u64,
    max: usize,
}

impl<R: BufRead> LineReader<R> {
    fn next_line(&mut self) -> std::result::Result<Option<Vec<u8>>, ImportError> {
        let mut buf = Vec::new();
        let line_no = self.n + 1;
        loop {
            let avail = self
                .r
                .fill_buf()
                .map_err(|e| ImportError::from(Error::from(e)))?;
            if avail.is_empty() {
                if buf.is_empty() {
                    return Ok(None);
                }
                break;
            }
            let (take, done) = match avail.iter().position(|&b| b == b'\n') {
                Some(i) => (i, true),
                None => (avail.len(), false),
            };
            if buf.len() + take > self.max {
                return Err(ImportError::at(
                    line_no,
                    format!("the line is longer than the limit of {} bytes", self.max),
                ));
            }
            buf.extend_from_slice(avail.get(..take).unwrap_or_default());
            self.r.consume(if done { take + 1 } else { take });
            if done {
                break;
            }
        }
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
        self.n = line_no;
        Ok(Some(buf))
    }
}

/// A serde_json error with every quoted value cut out (a value may be a hash or a sealed
/// token); field names (in backquotes) and positions are kept.
fn json_problem(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    let mut out = String::with_capacity(msg.len());
    let mut quoted = false;
    for ch in msg.chars() {
        if ch == '"' {
            if !quoted {
                out.push_str("\"…\"");
            }
            quoted = !quoted;
        } else if !quoted {
            out.push(ch);
        }
    }
    // serde_json appends " at line 1 column N": the line is ours to name.
    match out.rfind(" at line 1 column ") {
        Some(i) => format!(
            "{} (column {})",
            out.get(..i).unwrap_or_default(),
            e.column()
        ),
        None => out,
    }
}

fn import_txn(
    txn: &redb::WriteTransaction,
    input: impl BufRead,
    mut progress: impl FnMut(u64),
) -> std::result::Result<ExportCounts, ImportError> {
    let mut lines = LineReader {
        r: input,
        n: 0,
        max: MAX_IMPORT_LINE_BYTES,
    };
    let Some(first) = lines.next_line()? else {
        return Err(ImportError::at(
            1,
            "the input is empty: expected the header of an authdb export",
        ));
    };
    check_header(&first)?;
    let mut im = Importer {
        txn,
        users: UserTables::open(txn)?,
        accounts: AccountTables::open(txn)?,
        sessions: SessionTable::open(txn)?,
        verification: VerificationTables::open(txn)?,
        authenticators: AuthenticatorTables::open(txn)?,
        counts: ExportCounts::default(),
    };
    loop {
        let Some(bytes) = lines.next_line()? else {
            return Err(ImportError::at(
                lines.n + 1,
                "the input ends without its end line: the export is truncated",
            ));
        };
        let n = lines.n;
        let line: Line = serde_json::from_slice(&bytes)
            .map_err(|e| ImportError::at(n, format!("not a valid record: {}", json_problem(&e))))?;
        if let Line::End(end) = line {
            if end.counts != im.counts {
                return Err(ImportError::at(
                    n,
                    format!(
                        "the end line counts {} records but the export holds {}: the export is \
                         incomplete or was edited",
                        end.counts.total(),
                        im.counts.total()
                    ),
                ));
            }
            if let Some(extra) = lines.next_line()? {
                if extra.iter().all(u8::is_ascii_whitespace) && lines.next_line()?.is_none() {
                    break;
                }
                return Err(ImportError::at(lines.n, "a line after the end line"));
            }
            break;
        }
        im.apply(line).map_err(|mut e| {
            e.line = Some(n);
            e
        })?;
        if im
            .counts
            .total()
            .is_multiple_of(crate::backup::PROGRESS_EVERY)
        {
            progress(im.counts.total());
        }
    }
    progress(im.counts.total());
    Ok(im.counts)
}

fn check_header(bytes: &[u8]) -> std::result::Result<(), ImportError> {
    let not_export = || {
        ImportError::at(
            1,
            format!(
                "not an authdb export: the first line must be the header {{\"format\":\"{EXPORT_FORMAT}\",…}}"
            ),
        )
    };
    let v: serde_json::Value = serde_json::from_slice(bytes).map_err(|_| not_export())?;
    if v.get("format").and_then(serde_json::Value::as_str) != Some(EXPORT_FORMAT) {
        return Err(not_export());
    }
    match v.get("version").and_then(serde_json::Value::as_u64) {
        Some(EXPORT_VERSION) => {}
        Some(other) => {
            return Err(ImportError::at(
                1,
                format!(
                    "export format version {other} is not supported (this authdb reads version \
                     {EXPORT_VERSION})"
                ),
            ));
        }
        None => return Err(ImportError::at(1, "the header has no format version")),
    }
    serde_json::from_value::<Header>(v)
        .map_err(|e| ImportError::at(1, format!("bad header: {}", json_problem(&e))))?;
    Ok(())
}

struct Importer<'t> {
    txn: &'t redb::WriteTransaction,
    users: UserTables<'t>,
    accounts: AccountTables<'t>,
    sessions: SessionTable<'t>,
    verification: VerificationTables<'t>,
    authenticators: AuthenticatorTables<'t>,
    counts: ExportCounts,
}

/// An error for the current line (its number is filled in by the caller).
fn bad(message: impl Into<String>) -> ImportError {
    ImportError {
        line: None,
        message: message.into(),
        source: None,
    }
}

/// The largest sealed value of a secret of `max` plaintext bytes.
fn sealed_max(max: usize) -> usize {
    1 + 4 + 24 + max + 16
}

fn check_sealed(field: &str, v: Option<&B64>, max: usize) -> std::result::Result<(), ImportError> {
    if let Some(B64(b)) = v
        && (b.len() < sealed_max(0) || b.len() > sealed_max(max) || b.first() != Some(&2))
    {
        return Err(bad(format!(
            "`{field}` is not a value sealed by authdb 0.2"
        )));
    }
    Ok(())
}

impl Importer<'_> {
    fn require_user(&self, id: &Uuid, what: &str) -> std::result::Result<(), ImportError> {
        if self.users.get(id.as_bytes())?.is_none() {
            return Err(bad(format!(
                "{what} refers to user {id}, which is not in the database or earlier in the \
                 export"
            )));
        }
        Ok(())
    }

    fn apply(&mut self, line: Line) -> std::result::Result<(), ImportError> {
        match line {
            Line::User(u) => self.user(u),
            Line::Password(p) => self.password(p),
            Line::Account(a) => self.account(a),
            Line::Session(s) => self.session(&s),
            Line::Authenticator(a) => self.authenticator(a),
            Line::Verification(v) => self.verification(v),
            Line::End(_) => Ok(()),
        }
    }

    fn user(&mut self, u: UserLine) -> std::result::Result<(), ImportError> {
        let id = u.id;
        let profile = NewUser {
            name: u.name,
            email: u.email,
            image: u.image,
            email_verified: None,
            extra: u.extra,
        };
        let extra = limits::user(&profile).map_err(|e| bad(format!("user {id}: {e}")))?;
        if self.users.get(id.as_bytes())?.is_some() {
            return Err(bad(format!("user {id} already exists")));
        }
        let rec = UserRecord {
            id,
            name: profile.name,
            email: profile.email,
            image: profile.image,
            email_verified: u.email_verified.map(|t| t.0),
            extra,
            security_stamp: u.security_stamp.0,
            created_at: u.created_at.0,
            updated_at: u.updated_at.0,
        };
        match self.users.put(&rec, None) {
            Ok(()) => {}
            Err(Error::EmailTaken) => {
                return Err(bad(format!(
                    "user {id}: the email address is already used by another user (compared \
                     after normalization)"
                )));
            }
            Err(e) => return Err(e.into()),
        }
        self.counts.users += 1;
        Ok(())
    }

    fn password(&mut self, p: PasswordLine) -> std::result::Result<(), ImportError> {
        let uid = p.user_id;
        self.require_user(&uid, "the password")?;
        if p.hash.len() > 1024 || !crate::password::is_valid_phc(&p.hash) {
            return Err(bad(format!(
                "the password of user {uid} is not an argon2id PHC string"
            )));
        }
        if credentials::exists(self.txn, uid.as_bytes())? {
            return Err(bad(format!("user {uid} already has a password")));
        }
        credentials::put_record(
            self.txn,
            uid.as_bytes(),
            &CredentialRecord {
                phc: p.hash,
                updated_at: p.updated_at.0,
            },
        )?;
        self.counts.passwords += 1;
        Ok(())
    }

    fn account(&mut self, a: AccountLine) -> std::result::Result<(), ImportError> {
        let id = a.id;
        let check = NewAccount {
            provider_type: a.provider_type,
            provider_id: a.provider,
            provider_account_id: a.provider_account_id,
            token_type: a.token_type,
            scope: a.scope,
            session_state: a.session_state,
            ..NewAccount::default()
        };
        limits::account(&check).map_err(|e| bad(format!("account {id}: {e}")))?;
        check_sealed(
            "refresh_token_sealed",
            a.refresh_token_sealed.as_ref(),
            limits::MAX_OAUTH_TOKEN_LEN,
        )?;
        check_sealed(
            "access_token_sealed",
            a.access_token_sealed.as_ref(),
            limits::MAX_OAUTH_TOKEN_LEN,
        )?;
        check_sealed(
            "id_token_sealed",
            a.id_token_sealed.as_ref(),
            limits::MAX_ID_TOKEN_LEN,
        )?;
        check_sealed(
            "extra_sealed",
            a.extra_sealed.as_ref(),
            limits::MAX_EXTRA_LEN,
        )?;
        let expires = match (a.expires_at, a.expires_at_us) {
            (None, None) => None,
            (Some(s), us) => {
                let us = i64::from(us.unwrap_or(0));
                let m = s
                    .checked_mul(MICROS)
                    .and_then(|m| m.checked_add(us))
                    .filter(|m| {
                        us < MICROS && DateTime::<Utc>::from_timestamp_micros(*m).is_some()
                    });
                Some(m.ok_or_else(|| bad(format!("account {id}: `expires_at` is out of range")))?)
            }
            (None, Some(_)) => {
                return Err(bad(format!(
                    "account {id}: `expires_at_us` without `expires_at`"
                )));
            }
        };
        self.require_user(&a.user_id, &format!("account {id}"))?;
        if self.accounts.get(id.as_bytes())?.is_some() {
            return Err(bad(format!("account {id} already exists")));
        }
        if self
            .accounts
            .find(&check.provider_id, &check.provider_account_id)?
            .is_some()
        {
            return Err(bad(format!(
                "account {id}: this provider account is already linked (provider `{}`)",
                check.provider_id
            )));
        }
        let rec = AccountRecord {
            id,
            user_id: a.user_id,
            provider_type: check.provider_type,
            provider_id: check.provider_id,
            provider_account_id: check.provider_account_id,
            refresh_token: a.refresh_token_sealed.map(|b| b.0),
            access_token: a.access_token_sealed.map(|b| b.0),
            access_token_expires: expires,
            token_type: check.token_type,
            scope: check.scope,
            id_token: a.id_token_sealed.map(|b| b.0),
            session_state: check.session_state,
            extra: a.extra_sealed.map(|b| b.0),
            created_at: a.created_at.0,
            updated_at: a.updated_at.0,
        };
        self.accounts.put(&rec, true)?;
        self.counts.accounts += 1;
        Ok(())
    }

    fn session(&mut self, s: &SessionLine) -> std::result::Result<(), ImportError> {
        self.require_user(&s.user_id, &format!("session {}", s.id))?;
        let hash = s.session_token_hash.0;
        if self.sessions.exists(&hash)? {
            return Err(bad(format!(
                "session {}: a session with this token hash already exists",
                s.id
            )));
        }
        self.sessions.insert(
            &hash,
            &SessionRecord {
                id: s.id,
                user_id: s.user_id,
                expires: s.expires.0,
                indexed_expires: s.expires.0,
                created_at: s.created_at.0,
                updated_at: s.updated_at.0,
            },
        )?;
        self.counts.sessions += 1;
        Ok(())
    }

    fn authenticator(&mut self, a: AuthenticatorLine) -> std::result::Result<(), ImportError> {
        let check = NewAuthenticator {
            credential_id: a.credential_id,
            user_id: crate::model::UserId(a.user_id),
            provider_account_id: a.provider_account_id,
            credential_public_key: a.credential_public_key,
            counter: a.counter,
            credential_device_type: a.credential_device_type,
            credential_backed_up: a.credential_backed_up,
            transports: a.transports,
        };
        limits::authenticator(&check).map_err(|e| bad(format!("authenticator: {e}")))?;
        self.require_user(&a.user_id, "the authenticator")?;
        if self.authenticators.exists(&check.credential_id)? {
            return Err(bad(
                "an authenticator with this credential id already exists",
            ));
        }
        let rec = AuthenticatorRecord {
            user_id: a.user_id,
            provider_account_id: check.provider_account_id,
            credential_public_key: check.credential_public_key,
            counter: check.counter,
            credential_device_type: check.credential_device_type,
            credential_backed_up: check.credential_backed_up,
            transports: check.transports,
            created_at: a.created_at.0,
            updated_at: a.updated_at.0,
        };
        self.authenticators.put(&check.credential_id, &rec, true)?;
        self.counts.authenticators += 1;
        Ok(())
    }

    fn verification(&mut self, v: VerificationLine) -> std::result::Result<(), ImportError> {
        limits::email("identifier", &v.identifier)
            .map_err(|e| bad(format!("verification token {}: {e}", v.id)))?;
        let key = v.token.0;
        if self.verification.get(&key)?.is_some() {
            return Err(bad(format!(
                "verification token {}: a link with this token hash already exists",
                v.id
            )));
        }
        self.verification.insert(
            &key,
            &VerificationRecord {
                id: v.id,
                identifier: v.identifier,
                expires: v.expires.0,
                created_at: v.created_at.0,
                updated_at: v.updated_at.0,
            },
            i64::MIN,
        )?;
        self.counts.verification_tokens += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_and_is_strict() {
        for len in 0..70u8 {
            let bytes: Vec<u8> = (0..len)
                .map(|i| i.wrapping_mul(37).wrapping_add(11))
                .collect();
            let s = b64_encode(&bytes);
            assert_eq!(b64_decode(&s).unwrap(), bytes, "{s}");
        }
        assert_eq!(b64_encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(b64_encode(b"fo"), "Zm8=");
        assert!(b64_decode("Zm8").is_none());
        assert!(b64_decode("Zm9=").is_none(), "non-canonical padding bits");
        assert!(b64_decode("Z===").is_none());
        assert!(b64_decode("Zm=8").is_none());
        assert!(b64_decode("Zm8=Zm8=").is_none());
    }

    #[test]
    fn times_round_trip() {
        for m in [0, 1, -1, 1_714_564_800_123_456, i64::MAX, i64::MIN + 1] {
            if DateTime::<Utc>::from_timestamp_micros(m).is_none() {
                continue;
            }
            let s = serde_json::to_string(&Ts(m)).unwrap();
            assert_eq!(serde_json::from_str::<Ts>(&s).unwrap(), Ts(m), "{s}");
        }
        assert_eq!(
            serde_json::to_string(&Ts(0)).unwrap(),
            "\"1970-01-01T00:00:00.000000Z\""
        );
        for m in [0, 5, -5, 1_000_000, -1_000_001, 1_714_564_800_000_000] {
            let (s, us) = split_expires_at(Some(m));
            assert_eq!(s.unwrap() * MICROS + i64::from(us.unwrap_or(0)), m);
        }
    }

    #[test]
    fn json_problems_hide_values() {
        let Err(e) = serde_json::from_str::<SessionLine>(r#"{"id":"secret-value"}"#) else {
            panic!("must fail");
        };
        let m = json_problem(&e);
        assert!(!m.contains("secret-value"), "{m}");
    }
}
