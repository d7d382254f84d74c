//! [`salvage`]: recovering what can still be read from a damaged database into a new file.
//!
//! With the default `verify_on_open(true)` one damaged page anywhere makes the whole file
//! refuse to open. `salvage` opens a working copy of the damaged file **without** that check,
//! walks every table, keeps each record that decodes and passes its checks, writes those
//! records into a new file, rebuilds every index from them, and reports per table what was
//! found, kept and lost — like `sqlite3 .recover`.
//!
//! How it reads a damaged file:
//! - The damaged file itself is never modified: a working copy is made next to the new file
//!   (and removed at the end). The copy is first opened *with* redb's verification, which
//!   repairs what redb can repair (a damaged newest commit falls back to the previous one);
//!   only if that fails is it opened without verification.
//! - Without verification redb may return errors, or **panic**, on a damaged page. Each table
//!   walk runs under `catch_unwind` (this is the only place authdb catches panics): a walk that
//!   fails or panics keeps what it read so far, then walks the table again from the other end,
//!   so the entries on both sides of a damaged page come back. redb prints its panic messages
//!   to standard error while this happens.
//! - redb does not check page checksums on ordinary reads, so damage inside a record's bytes is
//!   caught by authdb's own checks. First of them, every stored value carries a checksum over
//!   its key and its bytes (CRC-32C, see `codec.rs`): a record is kept only if it verifies, so
//!   no damaged byte of a record or of its key — a name, a time, a token hash — is ever kept.
//!   Each record must then decode completely, pass the checks `check_integrity` applies
//!   (timestamps in range, a valid argon2id string, the id equal to its key, sizes within the
//!   limits), refer to a user that was recovered, and agree with its index entries in the
//!   damaged file whenever that index could be read completely (the user's email index entry,
//!   an account's provider and by-user entries, a link's expiry entry, an authenticator's
//!   by-user entry). Given the encryption key, accounts must also open under it (each sealed
//!   value is authenticated).
//! - Records that fail are dropped and counted; index entries are never copied, only rebuilt
//!   (sessions' and web sessions' by-user and expiry entries included).
//! - tower-sessions records (`web_sessions`) are salvaged like sessions: a record naming a
//!   user is kept only if that user was recovered.

use std::collections::{BTreeMap, HashSet};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use redb::{
    MultimapTableDefinition, ReadableDatabase, ReadableMultimapTable, ReadableTable,
    ReadableTableMetadata, TableDefinition,
};
use serde::Serialize;

use crate::codec::{
    self, AccountRecord, AuthenticatorRecord, CredentialRecord, SessionRecord, UserRecord,
    VerificationRecord, WebSessionRecord, from_micros, opt_from_micros,
};
use crate::crypto::EncryptionKey;
use crate::email::normalize_email;
use crate::error::{Error, Result};
use crate::limits;
use crate::model::web_session::MAX_WEB_SESSION_DATA_LEN;
use crate::model::{NewAccount, NewAuthenticator, NewUser};
use crate::schema::{self, ExpiryKey, HashKey, IdKey};
use crate::tables::accounts::AccountTables;
use crate::tables::authenticators::{self, AuthenticatorTables};
use crate::tables::sessions::{self, SessionTable};
use crate::tables::users::{self, UserTables};
use crate::tables::verification::{self, VerificationTables};
use crate::tables::web_sessions::{self, WebSessionTable};
use crate::tables::{accounts, credentials};

/// Settings of [`salvage_with`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct SalvageOptions {
    /// The encryption key: with it, an account is kept only if every sealed value opens
    /// (which proves those bytes undamaged). Without it, sealed values are kept as they are.
    pub key: Option<EncryptionKey>,
}

impl SalvageOptions {
    /// Options with the encryption key set.
    #[must_use]
    pub fn with_key(key: EncryptionKey) -> Self {
        Self { key: Some(key) }
    }
}

/// What [`salvage`] found in one table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct TableSalvage {
    /// The table.
    pub table: &'static str,
    /// How many records the damaged file says the table holds, when it could say.
    pub expected: Option<u64>,
    /// Records read (decodable or not).
    pub read: u64,
    /// Records written to the new file.
    pub recovered: u64,
    /// Records read but dropped: undecodable, failing a check, disagreeing with an index, or
    /// belonging to a user that was not recovered.
    pub rejected: u64,
    /// Whether the whole table could be walked (otherwise some records were unreachable).
    pub complete: bool,
}

impl TableSalvage {
    fn new(table: &'static str) -> Self {
        Self {
            table,
            expected: None,
            read: 0,
            recovered: 0,
            rejected: 0,
            complete: true,
        }
    }

    /// Records lost: the expected count less the recovered ones (at least the rejected ones).
    #[must_use]
    pub fn lost(&self) -> u64 {
        self.expected
            .map_or(0, |e| e.saturating_sub(self.recovered))
            .max(self.rejected)
    }
}

/// The result of [`salvage`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct SalvageReport {
    /// Whether redb could open the damaged file with its own verification (possibly by
    /// rolling back to the previous commit); then every page that was read had a valid
    /// checksum.
    pub verified_open: bool,
    /// One entry per record table: users, credentials, accounts, sessions, verification
    /// requests, authenticators, web sessions.
    pub tables: Vec<TableSalvage>,
    /// Whether `check_integrity` on the new file found nothing (it always should).
    pub output_clean: bool,
}

impl SalvageReport {
    /// Records recovered, over all tables.
    #[must_use]
    pub fn recovered(&self) -> u64 {
        self.tables.iter().map(|t| t.recovered).sum()
    }

    /// Records lost, over all tables.
    #[must_use]
    pub fn lost(&self) -> u64 {
        self.tables.iter().map(TableSalvage::lost).sum()
    }
}

/// How far [`salvage_with_progress`] has got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SalvageProgress {
    /// Reading the damaged file: entries read so far (records and index entries, over all
    /// tables; how many there are is not known until the end, the file being damaged).
    Reading {
        /// Entries read so far.
        entries: u64,
    },
    /// Checking and writing the records read: `done` of `total` entries examined.
    Writing {
        /// Entries examined so far.
        done: u64,
        /// Entries to examine.
        total: u64,
    },
}

/// Reports progress to a caller's callback, every [`Ticker::EVERY`] steps and at the end of
/// each phase.
struct Ticker<'a> {
    f: &'a mut dyn FnMut(SalvageProgress),
    read: u64,
    done: u64,
    total: u64,
}

impl Ticker<'_> {
    const EVERY: u64 = 256;

    fn read_one(&mut self) {
        self.read += 1;
        if self.read.is_multiple_of(Self::EVERY) {
            (self.f)(SalvageProgress::Reading { entries: self.read });
        }
    }

    fn write_one(&mut self) {
        self.done += 1;
        if self.done.is_multiple_of(Self::EVERY) || self.done == self.total {
            (self.f)(SalvageProgress::Writing {
                done: self.done,
                total: self.total,
            });
        }
    }
}

/// Recovers every record of the damaged database at `damaged` that still decodes and passes
/// its checks into a new database at `new` (which must not exist), rebuilding every index.
/// See the [module docs](self) for how, and what it cannot notice. `damaged` is not modified.
pub fn salvage(damaged: impl AsRef<Path>, new: impl AsRef<Path>) -> Result<SalvageReport> {
    salvage_with(damaged, new, &SalvageOptions::default())
}

/// [`salvage`] with options (the encryption key).
pub fn salvage_with(
    damaged: impl AsRef<Path>,
    new: impl AsRef<Path>,
    opts: &SalvageOptions,
) -> Result<SalvageReport> {
    salvage_with_progress(damaged, new, opts, |_| {})
}

/// [`salvage_with`], calling `progress` as it reads the damaged file and as it writes the
/// new one (for a progress bar).
pub fn salvage_with_progress(
    damaged: impl AsRef<Path>,
    new: impl AsRef<Path>,
    opts: &SalvageOptions,
    mut progress: impl FnMut(SalvageProgress),
) -> Result<SalvageReport> {
    let (damaged, new) = (damaged.as_ref(), new.as_ref());
    if new.exists() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!(
                "{} already exists (authdb never overwrites it)",
                new.display()
            ),
        )
        .into());
    }
    let work = WorkCopy::new(damaged, new)?;
    let (db, verified_open) = work.open()?;
    let mut tick = Ticker {
        f: &mut progress,
        read: 0,
        done: 0,
        total: 0,
    };
    let found = read_all(&db, &mut tick);
    (tick.f)(SalvageProgress::Reading { entries: tick.read });
    tick.total = found.records();
    drop(db);
    drop(work);
    let mut report = SalvageReport {
        verified_open,
        tables: Vec::new(),
        output_clean: false,
    };
    crate::backup::create_new_file(new, |out| {
        let mut wtx = out.begin_write()?;
        wtx.set_durability(redb::Durability::Immediate)?;
        report.tables = write_all(&wtx, &found, opts.key.as_ref(), &mut tick)?;
        wtx.commit()?;
        report.output_clean = crate::integrity::check(&out.begin_read()?)?.is_clean();
        Ok::<_, Error>(())
    })?;
    Ok(report)
}

/// A copy of the damaged file to open (opening may repair, and the original must stay as it
/// is); removed when dropped.
struct WorkCopy {
    path: PathBuf,
    src: PathBuf,
}

impl WorkCopy {
    fn new(damaged: &Path, new: &Path) -> Result<Self> {
        let dir = match new.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let mut nonce = [0u8; 8];
        crate::token::random_bytes(&mut nonce)?;
        let path = dir.join(format!(".authdb-salvage-{}", crate::token::hex(&nonce)));
        let w = Self {
            path,
            src: damaged.to_path_buf(),
        };
        w.refresh()?;
        Ok(w)
    }

    fn refresh(&self) -> Result<()> {
        std::fs::copy(&self.src, &self.path)?;
        Ok(())
    }

    /// The working copy opened with verification if redb can, else without, else read-only.
    fn open(&self) -> Result<(Src, bool)> {
        let open = |verify: bool| {
            catch_unwind(AssertUnwindSafe(|| {
                let mut b = redb::Builder::new();
                b.set_cache_size(64 * 1024 * 1024)
                    .set_check_integrity_on_open(verify);
                b.open(&self.path)
            }))
        };
        if let Ok(Ok(db)) = open(true) {
            return Ok((Src::ReadWrite(db), true));
        }
        self.refresh()?;
        let second = match open(false) {
            Ok(Ok(db)) => return Ok((Src::ReadWrite(db), false)),
            Ok(Err(e)) => crate::file::map_open_error(e),
            Err(_) => std::io::Error::other(
                "the file is too damaged to open (redb panicked reading its header)",
            )
            .into(),
        };
        self.refresh()?;
        let ro = catch_unwind(AssertUnwindSafe(|| {
            redb::Builder::new().open_read_only(&self.path)
        }));
        match ro {
            Ok(Ok(db)) => Ok((Src::ReadOnly(db), false)),
            _ => Err(second),
        }
    }
}

impl Drop for WorkCopy {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The damaged database, opened one way or the other.
enum Src {
    ReadWrite(redb::Database),
    ReadOnly(redb::ReadOnlyDatabase),
}

impl Src {
    fn begin_read(&self) -> Result<redb::ReadTransaction> {
        Ok(match self {
            Self::ReadWrite(db) => db.begin_read()?,
            Self::ReadOnly(db) => db.begin_read()?,
        })
    }
}

/// The raw entries read from one table.
#[derive(Default)]
struct Walked {
    entries: Vec<(Vec<u8>, Vec<u8>)>,
    complete: bool,
    len: Option<u64>,
}

/// Every entry of a table, walked forward and, if that stops early, backward.
fn walk<K: redb::Key + 'static, V: redb::Value + 'static>(
    db: &Src,
    def: TableDefinition<K, V>,
    tick: &mut Ticker<'_>,
) -> Walked {
    let mut seen: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    let mut len = None;
    let mut pass = |backward: bool, seen: &mut BTreeMap<Vec<u8>, Vec<u8>>| -> bool {
        catch_unwind(AssertUnwindSafe(|| -> Result<()> {
            let rtx = db.begin_read()?;
            let t = match rtx.open_table(def) {
                Ok(t) => t,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(()),
                Err(e) => return Err(e.into()),
            };
            if len.is_none() {
                len = t.len().ok();
            }
            let iter = t.iter()?;
            let mut step = |e: std::result::Result<_, redb::StorageError>| -> Result<bool> {
                let (k, v): (redb::AccessGuard<K>, redb::AccessGuard<V>) = e?;
                let key = K::as_bytes(&k.value()).as_ref().to_vec();
                if seen.contains_key(&key) {
                    return Ok(false);
                }
                seen.insert(key, V::as_bytes(&v.value()).as_ref().to_vec());
                tick.read_one();
                Ok(true)
            };
            if backward {
                for e in iter.rev() {
                    if !step(e)? {
                        break;
                    }
                }
            } else {
                for e in iter {
                    step(e)?;
                }
            }
            Ok(())
        }))
        .is_ok_and(|r| r.is_ok())
    };
    let complete = pass(false, &mut seen) || {
        pass(true, &mut seen);
        false
    };
    Walked {
        entries: seen.into_iter().collect(),
        complete,
        len,
    }
}

/// Every (key, value) pair of a multimap table, as [`walk`] does for a table.
fn walk_multimap<K: redb::Key + 'static, V: redb::Key + 'static>(
    db: &Src,
    def: MultimapTableDefinition<K, V>,
    tick: &mut Ticker<'_>,
) -> Walked {
    let mut out = Vec::new();
    let complete = catch_unwind(AssertUnwindSafe(|| -> Result<()> {
        let rtx = db.begin_read()?;
        let t = match rtx.open_multimap_table(def) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        for e in t.iter()? {
            let (k, vals) = e?;
            let key = K::as_bytes(&k.value()).as_ref().to_vec();
            for v in vals {
                out.push((key.clone(), V::as_bytes(&v?.value()).as_ref().to_vec()));
                tick.read_one();
            }
        }
        Ok(())
    }))
    .is_ok_and(|r| r.is_ok());
    Walked {
        entries: out,
        complete,
        len: None,
    }
}

struct Found {
    users: Walked,
    users_by_email: Walked,
    accounts: Walked,
    accounts_by_provider: Walked,
    accounts_by_user: Walked,
    sessions: Walked,
    verification: Walked,
    verification_by_expiry: Walked,
    credentials: Walked,
    authenticators: Walked,
    authenticators_by_user: Walked,
    web_sessions: Walked,
}

fn read_all(db: &Src, tick: &mut Ticker<'_>) -> Found {
    Found {
        users: walk(db, schema::USERS, tick),
        users_by_email: walk(db, schema::USERS_BY_EMAIL, tick),
        accounts: walk(db, schema::ACCOUNTS, tick),
        accounts_by_provider: walk(db, schema::ACCOUNTS_BY_PROVIDER, tick),
        accounts_by_user: walk_multimap(db, schema::ACCOUNTS_BY_USER, tick),
        sessions: walk(db, schema::SESSIONS, tick),
        verification: walk(db, schema::VERIFICATION, tick),
        verification_by_expiry: walk(db, schema::VERIFICATION_BY_EXPIRY, tick),
        credentials: walk(db, schema::CREDENTIALS, tick),
        authenticators: walk(db, schema::AUTHENTICATORS, tick),
        authenticators_by_user: walk_multimap(db, schema::AUTHENTICATORS_BY_USER, tick),
        web_sessions: walk(db, schema::WEB_SESSIONS, tick),
    }
}

impl Found {
    /// The entries of the record tables, which [`write_all`] examines one by one.
    fn records(&self) -> u64 {
        [
            &self.users,
            &self.credentials,
            &self.accounts,
            &self.sessions,
            &self.verification,
            &self.authenticators,
            &self.web_sessions,
        ]
        .iter()
        .map(|w| w.entries.len() as u64)
        .sum()
    }
}

fn id_key(b: &[u8]) -> Option<IdKey> {
    b.try_into().ok()
}

/// An index read completely, as a set of its raw (key, value) pairs; `None` when it could not
/// be read completely (then nothing is checked against it).
fn index_set(w: &Walked) -> Option<HashSet<(&[u8], &[u8])>> {
    w.complete.then(|| {
        w.entries
            .iter()
            .map(|(k, v)| (k.as_slice(), v.as_slice()))
            .collect()
    })
}

fn raw<T: redb::Value + 'static>(v: &T::SelfType<'_>) -> Vec<u8> {
    T::as_bytes(v).as_ref().to_vec()
}

fn write_all(
    wtx: &redb::WriteTransaction,
    f: &Found,
    enc: Option<&EncryptionKey>,
    tick: &mut Ticker<'_>,
) -> Result<Vec<TableSalvage>> {
    let mut out = Vec::new();

    // Users.
    let mut t = TableSalvage::new(schema::USERS_NAME);
    t.expected = f.users.len;
    t.complete = f.users.complete;
    let by_email = index_set(&f.users_by_email);
    let mut user_tables = UserTables::open(wtx)?;
    let mut recovered_users: HashSet<IdKey> = HashSet::new();
    for (k, v) in &f.users.entries {
        tick.write_one();
        t.read += 1;
        let ok = id_key(k).and_then(|key| {
            let rec: UserRecord = codec::decode(&key, v).ok()?;
            let u = users::to_model(&rec).ok()?;
            limits::user(&NewUser {
                name: u.name,
                email: u.email,
                image: u.image,
                email_verified: u.email_verified,
                extra: u.extra,
            })
            .ok()?;
            if *rec.id.as_bytes() != key {
                return None;
            }
            if let (Some(idx), Some(email)) = (&by_email, &rec.email) {
                let n = normalize_email(email);
                if !idx.contains(&(n.as_bytes(), key.as_slice())) {
                    return None;
                }
            }
            user_tables.put(&rec, None).ok()?;
            Some(key)
        });
        match ok {
            Some(key) => {
                recovered_users.insert(key);
                t.recovered += 1;
            }
            None => t.rejected += 1,
        }
    }
    drop(user_tables);
    out.push(t);
    let has_user = |u: &uuid::Uuid| recovered_users.contains(u.as_bytes());

    // Passwords.
    let mut t = TableSalvage::new(schema::CREDENTIALS_NAME);
    t.expected = f.credentials.len;
    t.complete = f.credentials.complete;
    for (k, v) in &f.credentials.entries {
        tick.write_one();
        t.read += 1;
        let rec = id_key(k)
            .filter(|k| recovered_users.contains(k))
            .and_then(|k| {
                codec::decode::<CredentialRecord>(&k, v)
                    .ok()
                    .filter(|c| crate::password::is_valid_phc(&c.phc))
                    .map(|c| (k, c))
            });
        match rec {
            Some((k, c)) => {
                credentials::put_record(wtx, &k, &c)?;
                t.recovered += 1;
            }
            None => t.rejected += 1,
        }
    }
    out.push(t);

    // Accounts.
    let mut t = TableSalvage::new(schema::ACCOUNTS_NAME);
    t.expected = f.accounts.len;
    t.complete = f.accounts.complete;
    let by_provider = index_set(&f.accounts_by_provider);
    let by_user = index_set(&f.accounts_by_user);
    let mut acc = AccountTables::open(wtx)?;
    for (k, v) in &f.accounts.entries {
        tick.write_one();
        t.read += 1;
        let ok = id_key(k).and_then(|key| {
            let rec: AccountRecord = codec::decode(&key, v).ok()?;
            limits::account(&NewAccount {
                provider_type: rec.provider_type.clone(),
                provider_id: rec.provider_id.clone(),
                provider_account_id: rec.provider_account_id.clone(),
                token_type: rec.token_type.clone(),
                scope: rec.scope.clone(),
                session_state: rec.session_state.clone(),
                ..NewAccount::default()
            })
            .ok()?;
            opt_from_micros(schema::ACCOUNTS_NAME, rec.access_token_expires).ok()?;
            from_micros(schema::ACCOUNTS_NAME, rec.created_at).ok()?;
            from_micros(schema::ACCOUNTS_NAME, rec.updated_at).ok()?;
            if *rec.id.as_bytes() != key || !has_user(&rec.user_id) {
                return None;
            }
            if let Some(enc) = enc {
                accounts::to_model(&rec, Some(enc)).ok()?;
            }
            if let Some(idx) = &by_provider {
                let pair = raw::<(&str, &str)>(&(
                    rec.provider_id.as_str(),
                    rec.provider_account_id.as_str(),
                ));
                if !idx.contains(&(pair.as_slice(), key.as_slice())) {
                    return None;
                }
            }
            if let Some(idx) = &by_user
                && !idx.contains(&(rec.user_id.as_bytes().as_slice(), key.as_slice()))
            {
                return None;
            }
            if acc
                .find(&rec.provider_id, &rec.provider_account_id)
                .ok()?
                .is_some()
            {
                return None;
            }
            acc.put(&rec, true).ok()
        });
        match ok {
            Some(()) => t.recovered += 1,
            None => t.rejected += 1,
        }
    }
    drop(acc);
    out.push(t);

    // Sessions: the record entries of the session table (the index entries are rebuilt).
    let mut t = TableSalvage::new(schema::SESSIONS_NAME);
    t.expected = f.sessions.len.map(|n| n.div_ceil(3));
    t.complete = f.sessions.complete;
    let mut st = SessionTable::open(wtx)?;
    for (k, v) in &f.sessions.entries {
        tick.write_one();
        let Some(hash) = sessions::record_hash(k) else {
            continue;
        };
        t.read += 1;
        let ok = SessionRecord::decode(&hash, v).ok().and_then(|rec| {
            sessions::to_info(&rec).ok()?;
            if rec.indexed_expires > rec.expires || !has_user(&rec.user_id) {
                return None;
            }
            st.insert(&hash, &rec).ok()
        });
        match ok {
            Some(()) => t.recovered += 1,
            None => t.rejected += 1,
        }
    }
    drop(st);
    t.expected = t.expected.map(|e| e.max(t.read));
    out.push(t);

    // Verification requests.
    let mut t = TableSalvage::new(schema::VERIFICATION_NAME);
    t.expected = f.verification.len;
    t.complete = f.verification.complete;
    let by_expiry = index_set(&f.verification_by_expiry);
    let mut vt = VerificationTables::open(wtx)?;
    for (k, v) in &f.verification.entries {
        tick.write_one();
        t.read += 1;
        let ok = <HashKey>::try_from(k.as_slice()).ok().and_then(|hash| {
            let rec: VerificationRecord = codec::decode(&hash, v).ok()?;
            verification::to_model(&rec, &hash).ok()?;
            limits::email("identifier", &rec.identifier).ok()?;
            if let Some(idx) = &by_expiry {
                let e = raw::<ExpiryKey>(&(rec.expires, hash));
                if !idx.contains(&(e.as_slice(), [].as_slice())) {
                    return None;
                }
            }
            vt.insert(&hash, &rec, i64::MIN).ok()
        });
        match ok {
            Some(()) => t.recovered += 1,
            None => t.rejected += 1,
        }
    }
    drop(vt);
    out.push(t);

    // Authenticators.
    let mut t = TableSalvage::new(schema::AUTHENTICATORS_NAME);
    t.expected = f.authenticators.len;
    t.complete = f.authenticators.complete;
    let by_user = index_set(&f.authenticators_by_user);
    let mut at = AuthenticatorTables::open(wtx)?;
    let mut ids: HashSet<&[u8]> = HashSet::new();
    for (k, v) in &f.authenticators.entries {
        tick.write_one();
        t.read += 1;
        let ok = std::str::from_utf8(k).ok().and_then(|cid| {
            let rec: AuthenticatorRecord = codec::decode(k, v).ok()?;
            let a = authenticators::to_model(cid, &rec).ok()?;
            limits::authenticator(&NewAuthenticator {
                credential_id: a.credential_id,
                user_id: a.user_id,
                provider_account_id: a.provider_account_id,
                credential_public_key: a.credential_public_key,
                counter: a.counter,
                credential_device_type: a.credential_device_type,
                credential_backed_up: a.credential_backed_up,
                transports: a.transports,
            })
            .ok()?;
            if !has_user(&rec.user_id) || !ids.insert(k.as_slice()) {
                return None;
            }
            if let Some(idx) = &by_user
                && !idx.contains(&(rec.user_id.as_bytes().as_slice(), cid.as_bytes()))
            {
                return None;
            }
            at.put(cid, &rec, true).ok()
        });
        match ok {
            Some(()) => t.recovered += 1,
            None => t.rejected += 1,
        }
    }
    drop(at);
    out.push(t);

    out.push(web_sessions_of(wtx, &f.web_sessions, &has_user, tick)?);
    Ok(out)
}

/// Web sessions: the record entries of the web session table (the index entries are
/// rebuilt). A record naming a user is kept only if that user was recovered.
fn web_sessions_of(
    wtx: &redb::WriteTransaction,
    walked: &Walked,
    has_user: &dyn Fn(&uuid::Uuid) -> bool,
    tick: &mut Ticker<'_>,
) -> Result<TableSalvage> {
    let mut t = TableSalvage::new(schema::WEB_SESSIONS_NAME);
    t.complete = walked.complete;
    let mut wt = WebSessionTable::open(wtx)?;
    // The table shares the session table's key layout (`tables/prefixed.rs`).
    for (k, v) in &walked.entries {
        tick.write_one();
        let Some(hash) = sessions::record_hash(k) else {
            continue;
        };
        t.read += 1;
        let ok = codec::decode::<WebSessionRecord>(&hash, v)
            .ok()
            .and_then(|rec| {
                web_sessions::to_info(&rec, &hash).ok()?;
                let user_ok = rec.user_id.as_ref().is_none_or(has_user);
                (rec.data.len() <= MAX_WEB_SESSION_DATA_LEN && user_ok).then_some(rec)
            })
            .and_then(|rec| wt.put(&hash, &rec).ok());
        match ok {
            Some(_) => t.recovered += 1,
            None => t.rejected += 1,
        }
    }
    // Each record has an expiry entry and at most one by-user entry, so the table holds at
    // least a third as many records as entries.
    t.expected = if walked.complete {
        Some(t.read)
    } else {
        walked.len.map(|n| n.div_ceil(3).max(t.read))
    };
    Ok(t)
}
