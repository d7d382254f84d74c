//! The redb file's export and import: its tables read into [`ExportRecord`]s from one read
//! snapshot, and an [`ImportSink`] writing them into one write transaction.

use std::io::{BufRead, Write};
use std::path::Path;

use redb::ReadableTable;
use uuid::Uuid;

use crate::codec::{
    AccountRecord, AuthenticatorRecord, CredentialRecord, SessionRecord, UserRecord,
    VerificationRecord, WebSessionRecord,
};
use crate::db::AuthDb;
use crate::error::{Error, Result};
use crate::limits;
use crate::model::{AccountId, SessionId, UserId, VerificationRequestId};
use crate::schema;
use crate::source::Source;
use crate::tables::accounts::{self, AccountTables};
use crate::tables::authenticators::{self, AuthenticatorTables};
use crate::tables::credentials;
use crate::tables::sessions::{self, SessionTable};
use crate::tables::users::{self, UserTables};
use crate::tables::verification::{self, VerificationTables};
use crate::tables::web_sessions::{self, WebSessionTable};

use super::counts::ExportCounts;
use super::error::{ImportError, Refusal};
use super::reader::{ImportSink, read_export};
use super::record::{
    ExportRecord, StoredAccount, StoredAuthenticator, StoredPassword, StoredSession, StoredUser,
    StoredVerificationToken, StoredWebSession,
};
use super::writer::Exporter;

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
        let mut ex = Exporter::with_progress(out, progress)?;
        export_snapshot(&rtx, &mut ex)?;
        ex.finish()
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

// ---------------------------------------------------------------------------------------------
// Export.
// ---------------------------------------------------------------------------------------------

/// The record a table module read back under a key the iteration just listed (in the same
/// snapshot, so it is there). Records are decoded by their table modules, which own the
/// layout (and its checks): the export never decodes bytes itself.
fn listed<R>(table: &'static str, r: Option<R>) -> Result<R> {
    r.ok_or_else(|| Error::corrupt(table, "a listed record could not be read back"))
}

fn key_mismatch(table: &'static str) -> Error {
    Error::corrupt(table, "a record's id differs from its key")
}

/// Every record of the snapshot, in export order (each table in key order).
fn export_snapshot<W: Write, P: FnMut(u64)>(
    rtx: &redb::ReadTransaction,
    ex: &mut Exporter<W, P>,
) -> Result<()> {
    let t = rtx.users()?;
    for e in t.iter()? {
        let key = e?.0.value();
        let r = listed(schema::USERS_NAME, users::record(&t, &key)?)?;
        if *r.id.as_bytes() != key {
            return Err(key_mismatch(schema::USERS_NAME));
        }
        ex.write(ExportRecord::User(StoredUser {
            id: UserId(r.id),
            name: r.name,
            email: r.email,
            email_verified: r.email_verified,
            image: r.image,
            extra: users::decode_extra(r.extra.as_deref())?,
            security_stamp: r.security_stamp,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }))?;
    }
    let t = rtx.credentials()?;
    for e in t.iter()? {
        let key = e?.0.value();
        let r = listed(schema::CREDENTIALS_NAME, credentials::record(&t, &key)?)?;
        ex.write(ExportRecord::Password(StoredPassword {
            user_id: UserId(Uuid::from_bytes(key)),
            phc: r.phc,
            updated_at: r.updated_at,
        }))?;
    }
    let t = rtx.accounts()?;
    for e in t.iter()? {
        let key = e?.0.value();
        let r = listed(schema::ACCOUNTS_NAME, accounts::record(&t, &key)?)?;
        if *r.id.as_bytes() != key {
            return Err(key_mismatch(schema::ACCOUNTS_NAME));
        }
        ex.write(ExportRecord::Account(StoredAccount {
            id: AccountId(r.id),
            user_id: UserId(r.user_id),
            provider_type: r.provider_type,
            provider_id: r.provider_id,
            provider_account_id: r.provider_account_id,
            refresh_token: r.refresh_token,
            access_token: r.access_token,
            access_token_expires: r.access_token_expires,
            token_type: r.token_type,
            scope: r.scope,
            id_token: r.id_token,
            session_state: r.session_state,
            extra: r.extra,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }))?;
    }
    sessions::each_record(&rtx.sessions()?, |hash, r| {
        let r = r?;
        ex.write(ExportRecord::Session(StoredSession {
            token_hash: hash,
            id: SessionId(r.id),
            user_id: UserId(r.user_id),
            expires: r.expires,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }))
    })?;
    let t = rtx.authenticators()?;
    for e in t.iter()? {
        let credential_id = e?.0.value().to_owned();
        let r = listed(
            schema::AUTHENTICATORS_NAME,
            authenticators::record(&t, &credential_id)?,
        )?;
        ex.write(ExportRecord::Authenticator(StoredAuthenticator {
            credential_id,
            user_id: UserId(r.user_id),
            provider_account_id: r.provider_account_id,
            credential_public_key: r.credential_public_key,
            counter: r.counter,
            credential_device_type: r.credential_device_type,
            credential_backed_up: r.credential_backed_up,
            transports: r.transports,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }))?;
    }
    let t = rtx.verification()?;
    for e in t.iter()? {
        let key = e?.0.value();
        let r = listed(schema::VERIFICATION_NAME, verification::record(&t, &key)?)?;
        ex.write(ExportRecord::VerificationToken(StoredVerificationToken {
            token_hash: key,
            id: VerificationRequestId(r.id),
            identifier: r.identifier,
            expires: r.expires,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }))?;
    }
    // The web session table shares the session table's key layout (record entries and
    // index entries told apart by a prefix); record entries sort first, in hash order.
    let t = web_sessions::open_read(rtx)?;
    for e in t.iter()? {
        let Some(hash) = sessions::record_hash(e?.0.value()) else {
            continue;
        };
        let r = listed(schema::WEB_SESSIONS_NAME, web_sessions::record(&t, &hash)?)?;
        ex.write(ExportRecord::WebSession(StoredWebSession {
            id_hash: hash,
            user_id: r.user_id.map(UserId),
            expires: r.expires,
            created_at: r.created_at,
            updated_at: r.updated_at,
            data: r.data,
        }))?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Import.
// ---------------------------------------------------------------------------------------------

fn import_txn(
    txn: &redb::WriteTransaction,
    input: impl BufRead,
    progress: impl FnMut(u64),
) -> std::result::Result<ExportCounts, ImportError> {
    let mut sink = RedbSink {
        txn,
        users: UserTables::open(txn)?,
        accounts: AccountTables::open(txn)?,
        sessions: SessionTable::open(txn)?,
        verification: VerificationTables::open(txn)?,
        authenticators: AuthenticatorTables::open(txn)?,
        web_sessions: WebSessionTable::open(txn)?,
    };
    read_export(input, &mut sink, progress)
}

/// Writes each record into the tables of one write transaction, with its index entries.
struct RedbSink<'t> {
    txn: &'t redb::WriteTransaction,
    users: UserTables<'t>,
    accounts: AccountTables<'t>,
    sessions: SessionTable<'t>,
    verification: VerificationTables<'t>,
    authenticators: AuthenticatorTables<'t>,
    web_sessions: WebSessionTable<'t>,
}

impl ImportSink for RedbSink<'_> {
    /// Conflicts are checked in the order PostgreSQL's constraints meet them (the record's
    /// own key, then its other unique keys, then its user), so both backends refuse a record
    /// with the same message.
    fn put(&mut self, record: ExportRecord) -> std::result::Result<(), ImportError> {
        let refused = |why| Err(record.refused(why));
        let user_there =
            |s: &Self, u: &UserId| -> Result<bool> { Ok(s.users.get(&u.to_bytes())?.is_some()) };
        match &record {
            ExportRecord::User(u) => {
                if self.users.get(&u.id.to_bytes())?.is_some() {
                    return refused(Refusal::Exists);
                }
                let rec = UserRecord {
                    id: u.id.0,
                    name: u.name.clone(),
                    email: u.email.clone(),
                    image: u.image.clone(),
                    email_verified: u.email_verified,
                    extra: limits::extra("extra", &u.extra)?,
                    security_stamp: u.security_stamp,
                    created_at: u.created_at,
                    updated_at: u.updated_at,
                };
                match self.users.put(&rec, None) {
                    Ok(()) => {}
                    Err(Error::EmailTaken) => return refused(Refusal::EmailTaken),
                    Err(e) => return Err(e.into()),
                }
            }
            ExportRecord::Password(p) => {
                let key = p.user_id.to_bytes();
                if credentials::exists(self.txn, &key)? {
                    return refused(Refusal::Exists);
                }
                if !user_there(self, &p.user_id)? {
                    return refused(Refusal::UserMissing);
                }
                credentials::put_record(
                    self.txn,
                    &key,
                    &CredentialRecord {
                        phc: p.phc.clone(),
                        updated_at: p.updated_at,
                    },
                )?;
            }
            ExportRecord::Account(a) => {
                if self.accounts.get(&a.id.to_bytes())?.is_some() {
                    return refused(Refusal::Exists);
                }
                if self
                    .accounts
                    .find(&a.provider_id, &a.provider_account_id)?
                    .is_some()
                {
                    return refused(Refusal::ProviderAccountTaken);
                }
                if !user_there(self, &a.user_id)? {
                    return refused(Refusal::UserMissing);
                }
                let rec = AccountRecord {
                    id: a.id.0,
                    user_id: a.user_id.0,
                    provider_type: a.provider_type.clone(),
                    provider_id: a.provider_id.clone(),
                    provider_account_id: a.provider_account_id.clone(),
                    refresh_token: a.refresh_token.clone(),
                    access_token: a.access_token.clone(),
                    access_token_expires: a.access_token_expires,
                    token_type: a.token_type.clone(),
                    scope: a.scope.clone(),
                    id_token: a.id_token.clone(),
                    session_state: a.session_state.clone(),
                    extra: a.extra.clone(),
                    created_at: a.created_at,
                    updated_at: a.updated_at,
                };
                self.accounts.put(&rec, true)?;
            }
            ExportRecord::Session(s) => {
                if self.sessions.exists(&s.token_hash)? {
                    return refused(Refusal::Exists);
                }
                if !user_there(self, &s.user_id)? {
                    return refused(Refusal::UserMissing);
                }
                self.sessions.insert(
                    &s.token_hash,
                    &SessionRecord {
                        id: s.id.0,
                        user_id: s.user_id.0,
                        expires: s.expires,
                        indexed_expires: s.expires,
                        created_at: s.created_at,
                        updated_at: s.updated_at,
                    },
                )?;
            }
            ExportRecord::Authenticator(a) => {
                if self.authenticators.exists(&a.credential_id)? {
                    return refused(Refusal::Exists);
                }
                if !user_there(self, &a.user_id)? {
                    return refused(Refusal::UserMissing);
                }
                let rec = AuthenticatorRecord {
                    user_id: a.user_id.0,
                    provider_account_id: a.provider_account_id.clone(),
                    credential_public_key: a.credential_public_key.clone(),
                    counter: a.counter,
                    credential_device_type: a.credential_device_type.clone(),
                    credential_backed_up: a.credential_backed_up,
                    transports: a.transports.clone(),
                    created_at: a.created_at,
                    updated_at: a.updated_at,
                };
                self.authenticators.put(&a.credential_id, &rec, true)?;
            }
            ExportRecord::VerificationToken(v) => {
                if self.verification.get(&v.token_hash)?.is_some() {
                    return refused(Refusal::Exists);
                }
                self.verification.insert(
                    &v.token_hash,
                    &VerificationRecord {
                        id: v.id.0,
                        identifier: v.identifier.clone(),
                        expires: v.expires,
                        created_at: v.created_at,
                        updated_at: v.updated_at,
                    },
                    i64::MIN,
                )?;
            }
            ExportRecord::WebSession(w) => {
                if self.web_sessions.exists(&w.id_hash)? {
                    return refused(Refusal::Exists);
                }
                if let Some(u) = &w.user_id
                    && !user_there(self, u)?
                {
                    return refused(Refusal::UserMissing);
                }
                self.web_sessions.put(
                    &w.id_hash,
                    &WebSessionRecord {
                        user_id: w.user_id.map(|u| u.0),
                        expires: w.expires,
                        created_at: w.created_at,
                        updated_at: w.updated_at,
                        data: w.data.clone(),
                    },
                )?;
            }
        }
        Ok(())
    }
}
