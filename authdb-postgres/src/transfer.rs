//! Export and import in authdb's JSON Lines format ([`authdb::export`]), so a database moves
//! between the redb file and PostgreSQL in either direction: the same lines, the same checks
//! (done by authdb's reader), the same errors with line numbers.
//!
//! - Export reads every table in one `REPEATABLE READ READ ONLY` transaction (one snapshot;
//!   writers are not blocked), each table in the order of its key's bytes (`COLLATE "C"` for
//!   credential ids), so the same data exports as the same bytes as from a redb file.
//! - Import runs in one SQL transaction: every record is inserted as it is read, and the
//!   transaction commits only after the end line with every count matching; the first bad
//!   line rolls everything back. Ids, times, security stamps, password hashes, token hashes
//!   and sealed tokens are kept as they are (sealed values open with the same encryption key
//!   as before the move; the import itself needs no key). Conflicts are found by the schema's
//!   constraints and reported as the redb import reports them.
//! - Web sessions: this backend has no web-session store, so its exports hold none, and an
//!   import of an export that has some refuses at the first one, naming its line — unless
//!   [`ImportOptions::skip_web_sessions`] is set, which leaves them out and counts them in
//!   [`ImportReport::skipped_web_sessions`] (their users are then signed out of the
//!   cookie-session layer, which must move to a store of its own).

use std::io::{BufRead, Write};

use authdb::backend;
use authdb::export::{
    ExportCounts, ExportRecord, Exporter, ImportError, ImportSink, Refusal, StoredAccount,
    StoredAuthenticator, StoredPassword, StoredSession, StoredUser, StoredVerificationToken,
    read_export,
};
use authdb::{Error, Result, SessionId, UserId, VerificationRequestId, normalize_email};
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::ToSql;
use postgres::{IsolationLevel, Row, Transaction};

use crate::db::{
    AccountRow, Db, authenticator_cols, authenticator_of, col, storable, storable_opt, user_at,
    user_cols,
};
use crate::error::{pg, violated};
use crate::pool::Conn;
use crate::store::{PgAuthDb, commit};

/// How an import treats what this backend cannot store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ImportOptions {
    /// Leave web sessions out (counted in [`ImportReport::skipped_web_sessions`]) instead of
    /// refusing the export. Off by default: nothing is dropped without being asked for.
    pub skip_web_sessions: bool,
}

impl ImportOptions {
    /// Sets [`skip_web_sessions`](Self::skip_web_sessions).
    #[must_use]
    pub fn skip_web_sessions(mut self, skip: bool) -> Self {
        self.skip_web_sessions = skip;
        self
    }
}

/// What an import did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ImportReport {
    /// The records the export holds (its end line), by kind.
    pub read: ExportCounts,
    /// The web sessions left out (with [`ImportOptions::skip_web_sessions`]); every other
    /// record read was written.
    pub skipped_web_sessions: u64,
}

impl PgAuthDb {
    /// Writes every record to `out` in authdb's export format (see [`authdb::export`]), from
    /// one `REPEATABLE READ` snapshot. Holds no web sessions (this backend stores none). A
    /// value authdb could not have written (a stamp or token hash of the wrong size, a user's
    /// `extra` that is not a JSON object) stops the export with [`Error::Corrupt`].
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
        let mut conn = self.conn()?;
        let Conn { client, .. } = &mut *conn;
        let mut tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .map_err(pg)?;
        let mut ex = Exporter::with_progress(out, progress)?;
        export_tables(&mut tx, &mut ex)?;
        let counts = ex.finish()?;
        // Read only: nothing to keep, and a failed COMMIT would change nothing.
        let _ = tx.rollback();
        Ok(counts)
    }

    /// Imports an export in one SQL transaction: everything or, on the first bad line,
    /// nothing. An export holding web sessions is refused at the first one (see
    /// [`import_from_with`](Self::import_from_with) to leave them out). Returns the records
    /// written, by kind.
    pub fn import_from(
        &self,
        input: impl BufRead,
    ) -> std::result::Result<ExportCounts, ImportError> {
        self.import_from_with(input, ImportOptions::default(), |_| {})
            .map(|r| r.read)
    }

    /// [`import_from`](Self::import_from) with `options`, calling `progress` with the number
    /// of records read so far.
    pub fn import_from_with(
        &self,
        input: impl BufRead,
        options: ImportOptions,
        progress: impl FnMut(u64),
    ) -> std::result::Result<ImportReport, ImportError> {
        let mut conn = self.conn()?;
        let Conn { client, stmts } = &mut *conn;
        let mut tx = client.transaction().map_err(pg)?;
        let result = {
            let mut sink = PgSink {
                db: Db::new(&mut tx, stmts, &self.inner.cfg),
                options,
                skipped_web_sessions: 0,
            };
            read_export(input, &mut sink, progress).map(|read| ImportReport {
                read,
                skipped_web_sessions: sink.skipped_web_sessions,
            })
        };
        match result {
            Ok(report) => {
                commit(tx)?;
                Ok(report)
            }
            Err(e) => {
                let _ = tx.rollback();
                Err(e)
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Export.

const USERS: &str = concat!("SELECT ", user_cols!(), " FROM users u ORDER BY u.id");
const PASSWORDS: &str = "SELECT user_id, phc, updated_at FROM credentials ORDER BY user_id";
const ACCOUNTS: &str = concat!(
    "SELECT ",
    crate::db::account_cols!(),
    " FROM accounts a ORDER BY a.id"
);
const SESSIONS: &str = "SELECT token_hash, id, user_id, expires, created_at, updated_at \
     FROM sessions ORDER BY token_hash";
const AUTHENTICATORS: &str = concat!(
    "SELECT ",
    authenticator_cols!(),
    " FROM authenticators t ORDER BY t.credential_id COLLATE \"C\""
);
const VERIFICATION: &str = "SELECT token_hash, id, identifier, expires, created_at, updated_at \
     FROM verification_tokens ORDER BY token_hash";

/// Calls `f` with every row of `sql`, as the server sends them (not all held at once).
fn each_row(
    tx: &mut Transaction<'_>,
    sql: &str,
    mut f: impl FnMut(&Row) -> Result<()>,
) -> Result<()> {
    let mut rows = tx
        .query_raw(sql, Vec::<&(dyn ToSql + Sync)>::new())
        .map_err(pg)?;
    while let Some(row) = rows.next().map_err(pg)? {
        f(&row)?;
    }
    Ok(())
}

/// A 32-byte hash column.
fn hash_col(row: &Row, i: usize, table: &'static str) -> Result<[u8; 32]> {
    let v: Vec<u8> = col(row, i, table)?;
    v.try_into().map_err(|_| Error::Corrupt {
        table,
        detail: "a token hash is not 32 bytes".to_owned(),
    })
}

fn export_tables<W: Write, P: FnMut(u64)>(
    tx: &mut Transaction<'_>,
    ex: &mut Exporter<W, P>,
) -> Result<()> {
    let micros = backend::micros;
    each_row(tx, USERS, |row| {
        let u = user_at(row, 0)?;
        ex.write(ExportRecord::User(StoredUser {
            id: u.id,
            name: u.name,
            email: u.email,
            email_verified: u.email_verified.map(micros),
            image: u.image,
            extra: u.extra,
            security_stamp: u.security_stamp,
            created_at: micros(u.created_at),
            updated_at: micros(u.updated_at),
        }))
    })?;
    each_row(tx, PASSWORDS, |row| {
        const T: &str = "credentials";
        ex.write(ExportRecord::Password(StoredPassword {
            user_id: UserId(col(row, 0, T)?),
            phc: col(row, 1, T)?,
            updated_at: col(row, 2, T)?,
        }))
    })?;
    each_row(tx, ACCOUNTS, |row| {
        let a = AccountRow::read(row)?;
        ex.write(ExportRecord::Account(StoredAccount {
            id: a.id,
            user_id: a.user_id,
            provider_type: a.provider_type,
            provider_id: a.provider_id,
            provider_account_id: a.provider_account_id,
            refresh_token: a.refresh_token,
            access_token: a.access_token,
            access_token_expires: a.access_token_expires,
            token_type: a.token_type,
            scope: a.scope,
            id_token: a.id_token,
            session_state: a.session_state,
            extra: a.extra,
            created_at: a.created_at,
            updated_at: a.updated_at,
        }))
    })?;
    each_row(tx, SESSIONS, |row| {
        const T: &str = "sessions";
        ex.write(ExportRecord::Session(StoredSession {
            token_hash: hash_col(row, 0, T)?,
            id: SessionId(col(row, 1, T)?),
            user_id: UserId(col(row, 2, T)?),
            expires: col(row, 3, T)?,
            created_at: col(row, 4, T)?,
            updated_at: col(row, 5, T)?,
        }))
    })?;
    each_row(tx, AUTHENTICATORS, |row| {
        let a = authenticator_of(row)?;
        ex.write(ExportRecord::Authenticator(StoredAuthenticator {
            credential_id: a.credential_id,
            user_id: a.user_id,
            provider_account_id: a.provider_account_id,
            credential_public_key: a.credential_public_key,
            counter: a.counter,
            credential_device_type: a.credential_device_type,
            credential_backed_up: a.credential_backed_up,
            transports: a.transports,
            created_at: micros(a.created_at),
            updated_at: micros(a.updated_at),
        }))
    })?;
    each_row(tx, VERIFICATION, |row| {
        const T: &str = "verification_tokens";
        ex.write(ExportRecord::VerificationToken(StoredVerificationToken {
            token_hash: hash_col(row, 0, T)?,
            id: VerificationRequestId(col(row, 1, T)?),
            identifier: col(row, 2, T)?,
            expires: col(row, 3, T)?,
            created_at: col(row, 4, T)?,
            updated_at: col(row, 5, T)?,
        }))
    })?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Import.

const INSERT_USER: &str = "INSERT INTO users (id, name, email, email_key, image, \
     email_verified, extra, security_stamp, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7::text::json, $8, $9, $10)";
const INSERT_PASSWORD: &str =
    "INSERT INTO credentials (user_id, phc, updated_at) VALUES ($1, $2, $3)";
const INSERT_ACCOUNT: &str = "INSERT INTO accounts (id, user_id, provider_type, provider_id, \
     provider_account_id, refresh_token, access_token, access_token_expires, token_type, \
     scope, id_token, session_state, extra, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)";
const INSERT_SESSION: &str = "INSERT INTO sessions (token_hash, id, user_id, expires, \
     created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6)";
const INSERT_AUTHENTICATOR: &str = "INSERT INTO authenticators (credential_id, user_id, \
     provider_account_id, credential_public_key, counter, credential_device_type, \
     credential_backed_up, transports, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
const INSERT_VERIFICATION: &str = "INSERT INTO verification_tokens (token_hash, id, \
     identifier, identifier_key, expires, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7)";

/// Inserts each record in the import's transaction.
struct PgSink<'a> {
    db: Db<'a>,
    options: ImportOptions,
    skipped_web_sessions: u64,
}

/// The refusal a constraint violation stands for: a primary key is the record's own key; a
/// foreign key is its user.
fn refusal_of(e: &postgres::Error) -> Option<Refusal> {
    match violated(e)? {
        ("23503", _) => Some(Refusal::UserMissing),
        (_, "users_email_unique") => Some(Refusal::EmailTaken),
        (_, "accounts_provider_unique") => Some(Refusal::ProviderAccountTaken),
        (_, name) if name.ends_with("_pkey") => Some(Refusal::Exists),
        _ => None,
    }
}

impl PgSink<'_> {
    /// Runs one insert for `record`; a violated constraint is the refusal it stands for.
    fn insert(
        &mut self,
        record: &ExportRecord,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> std::result::Result<(), ImportError> {
        match self.db.exec_raw(sql, params) {
            Ok(_) => Ok(()),
            Err(e) => Err(match refusal_of(&e) {
                Some(why) => record.refused(why),
                None => pg(e).into(),
            }),
        }
    }
}

impl ImportSink for PgSink<'_> {
    fn put(&mut self, record: ExportRecord) -> std::result::Result<(), ImportError> {
        match &record {
            ExportRecord::User(u) => {
                storable_opt("name", u.name.as_ref())?;
                storable_opt("image", u.image.as_ref())?;
                let extra = backend::extra_json("extra", &u.extra)?.map_or_else(
                    || "{}".to_owned(),
                    |j| String::from_utf8_lossy(&j).into_owned(),
                );
                let key = u.email.as_deref().map(normalize_email);
                self.insert(
                    &record,
                    INSERT_USER,
                    &[
                        &u.id.0,
                        &u.name,
                        &u.email,
                        &key,
                        &u.image,
                        &u.email_verified,
                        &extra,
                        &u.security_stamp.as_slice(),
                        &u.created_at,
                        &u.updated_at,
                    ],
                )
            }
            ExportRecord::Password(p) => self.insert(
                &record,
                INSERT_PASSWORD,
                &[&p.user_id.0, &p.phc, &p.updated_at],
            ),
            ExportRecord::Account(a) => {
                storable("provider_id", &a.provider_id)?;
                storable("provider_account_id", &a.provider_account_id)?;
                storable_opt("token_type", a.token_type.as_ref())?;
                storable_opt("scope", a.scope.as_ref())?;
                storable_opt("session_state", a.session_state.as_ref())?;
                self.insert(
                    &record,
                    INSERT_ACCOUNT,
                    &[
                        &a.id.0,
                        &a.user_id.0,
                        &a.provider_type,
                        &a.provider_id,
                        &a.provider_account_id,
                        &a.refresh_token,
                        &a.access_token,
                        &a.access_token_expires,
                        &a.token_type,
                        &a.scope,
                        &a.id_token,
                        &a.session_state,
                        &a.extra,
                        &a.created_at,
                        &a.updated_at,
                    ],
                )
            }
            ExportRecord::Session(s) => self.insert(
                &record,
                INSERT_SESSION,
                &[
                    &s.token_hash.as_slice(),
                    &s.id.0,
                    &s.user_id.0,
                    &s.expires,
                    &s.created_at,
                    &s.updated_at,
                ],
            ),
            ExportRecord::Authenticator(a) => {
                storable("credential_id", &a.credential_id)?;
                storable("provider_account_id", &a.provider_account_id)?;
                storable("credential_public_key", &a.credential_public_key)?;
                storable("credential_device_type", &a.credential_device_type)?;
                storable_opt("transports", a.transports.as_ref())?;
                // The u64 counter's bits (see the column comment).
                let counter = a.counter.cast_signed();
                self.insert(
                    &record,
                    INSERT_AUTHENTICATOR,
                    &[
                        &a.credential_id,
                        &a.user_id.0,
                        &a.provider_account_id,
                        &a.credential_public_key,
                        &counter,
                        &a.credential_device_type,
                        &a.credential_backed_up,
                        &a.transports,
                        &a.created_at,
                        &a.updated_at,
                    ],
                )
            }
            ExportRecord::VerificationToken(v) => {
                let key = backend::validate_email("identifier", &v.identifier)?;
                self.insert(
                    &record,
                    INSERT_VERIFICATION,
                    &[
                        &v.token_hash.as_slice(),
                        &v.id.0,
                        &v.identifier,
                        &key,
                        &v.expires,
                        &v.created_at,
                        &v.updated_at,
                    ],
                )
            }
            ExportRecord::WebSession(_) if self.options.skip_web_sessions => {
                self.skipped_web_sessions += 1;
                Ok(())
            }
            ExportRecord::WebSession(_) => Err(ImportError::refused(
                "a web session: authdb-postgres has no web-session store (import with \
                 `ImportOptions::skip_web_sessions` to leave web sessions out)",
            )),
            // A kind this build does not know: refuse rather than drop it.
            _ => Err(ImportError::refused(
                "a record of a kind authdb-postgres cannot store",
            )),
        }
    }
}
