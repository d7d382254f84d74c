//! Where an operation runs: [`Runner`] (a pooled connection per call, or an open `write`
//! transaction), [`Db`] (a connection or transaction with its statement cache), and the
//! decoding of rows into authdb's models.

use authdb::{
    Account, AccountId, Authenticator, EncryptionKey, Error, Extra, Result, Session, SessionId,
    SessionInfo, User, UserId,
};
use chrono::{DateTime, Utc};
use postgres::types::{FromSql, ToSql};
use postgres::{Client, Row, Statement, Transaction};

use crate::config::Config;
use crate::error::pg;
use crate::pool::Stmts;

/// Statement parameters.
pub(crate) type Params<'p> = &'p [&'p (dyn ToSql + Sync)];

/// What [`Db`] needs from a connection or a transaction (object safe, unlike
/// `postgres::GenericClient`).
pub(crate) trait Exec {
    fn prepare(&mut self, sql: &str) -> Result<Statement, postgres::Error>;
    fn query(&mut self, st: &Statement, params: Params<'_>) -> Result<Vec<Row>, postgres::Error>;
    fn execute(&mut self, st: &Statement, params: Params<'_>) -> Result<u64, postgres::Error>;
}

impl Exec for Client {
    fn prepare(&mut self, sql: &str) -> Result<Statement, postgres::Error> {
        Client::prepare(self, sql)
    }
    fn query(&mut self, st: &Statement, params: Params<'_>) -> Result<Vec<Row>, postgres::Error> {
        Client::query(self, st, params)
    }
    fn execute(&mut self, st: &Statement, params: Params<'_>) -> Result<u64, postgres::Error> {
        Client::execute(self, st, params)
    }
}

impl Exec for Transaction<'_> {
    fn prepare(&mut self, sql: &str) -> Result<Statement, postgres::Error> {
        Transaction::prepare(self, sql)
    }
    fn query(&mut self, st: &Statement, params: Params<'_>) -> Result<Vec<Row>, postgres::Error> {
        Transaction::query(self, st, params)
    }
    fn execute(&mut self, st: &Statement, params: Params<'_>) -> Result<u64, postgres::Error> {
        Transaction::execute(self, st, params)
    }
}

/// A connection or transaction, its prepared statements and the store's settings: what every
/// operation body works on.
pub(crate) struct Db<'a> {
    c: &'a mut dyn Exec,
    stmts: &'a mut Stmts,
    pub(crate) cfg: &'a Config,
}

impl<'a> Db<'a> {
    pub(crate) fn new(c: &'a mut dyn Exec, stmts: &'a mut Stmts, cfg: &'a Config) -> Self {
        Self { c, stmts, cfg }
    }

    /// The store's clock, in microseconds.
    pub(crate) fn now(&self) -> i64 {
        self.cfg.now_micros()
    }

    pub(crate) fn key(&self) -> Option<&'a EncryptionKey> {
        self.cfg.key.as_ref()
    }

    fn stmt(&mut self, sql: &'static str) -> Result<Statement, postgres::Error> {
        if let Some(st) = self.stmts.get(sql) {
            return Ok(st);
        }
        let st = self.c.prepare(sql)?;
        self.stmts.put(sql, st.clone());
        Ok(st)
    }

    /// Every row `sql` returns; the database error as it is.
    pub(crate) fn rows_raw(
        &mut self,
        sql: &'static str,
        params: Params<'_>,
    ) -> Result<Vec<Row>, postgres::Error> {
        let st = self.stmt(sql)?;
        self.c.query(&st, params)
    }

    /// How many rows `sql` changed; the database error as it is.
    pub(crate) fn exec_raw(
        &mut self,
        sql: &'static str,
        params: Params<'_>,
    ) -> Result<u64, postgres::Error> {
        let st = self.stmt(sql)?;
        self.c.execute(&st, params)
    }

    /// Every row `sql` returns.
    pub(crate) fn rows(&mut self, sql: &'static str, params: Params<'_>) -> Result<Vec<Row>> {
        self.rows_raw(sql, params).map_err(pg)
    }

    /// The first row `sql` returns, if any.
    pub(crate) fn row(&mut self, sql: &'static str, params: Params<'_>) -> Result<Option<Row>> {
        Ok(self.rows(sql, params)?.into_iter().next())
    }

    /// How many rows `sql` changed.
    pub(crate) fn exec(&mut self, sql: &'static str, params: Params<'_>) -> Result<u64> {
        self.exec_raw(sql, params).map_err(pg)
    }
}

/// Where the store traits' operations run. [`PgAuthDb`](crate::PgAuthDb): each call on a
/// pooled connection, each write its own transaction. [`PgTx`](crate::PgTx): every call in the
/// one open transaction, each write inside a savepoint.
pub(crate) trait Runner {
    fn cfg(&self) -> &Config;

    /// Runs reads: one statement each, or several that need no common snapshot.
    fn read<T>(&self, f: impl FnOnce(&mut Db<'_>) -> Result<T>) -> Result<T>;

    /// Runs a write atomically: when `f` returns `Err`, nothing it did is kept. On a pooled
    /// connection `f` may run again after a serialization failure or deadlock (it has no
    /// effect outside the database).
    fn write<T>(&self, f: impl FnMut(&mut Db<'_>) -> Result<T>) -> Result<T>;
}

// ---------------------------------------------------------------------------------------------
// Rows → models.

/// Column `i` of `row`; a value of the wrong type is [`Error::Corrupt`] in `table`.
pub(crate) fn col<'r, T: FromSql<'r>>(row: &'r Row, i: usize, table: &'static str) -> Result<T> {
    row.try_get(i).map_err(|e| Error::Corrupt {
        table,
        detail: format!("column {i}: {e}"),
    })
}

/// A stored time (microseconds) as a `DateTime`.
pub(crate) fn time_of(m: i64, table: &'static str) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_micros(m).ok_or_else(|| Error::Corrupt {
        table,
        detail: "timestamp out of range".to_owned(),
    })
}

pub(crate) fn time(row: &Row, i: usize, table: &'static str) -> Result<DateTime<Utc>> {
    time_of(col(row, i, table)?, table)
}

pub(crate) fn opt_time(row: &Row, i: usize, table: &'static str) -> Result<Option<DateTime<Utc>>> {
    col::<Option<i64>>(row, i, table)?
        .map(|m| time_of(m, table))
        .transpose()
}

/// An `extra` object from its JSON text.
pub(crate) fn extra_of(json: Option<&str>, table: &'static str) -> Result<Extra> {
    match json {
        None => Ok(Extra::new()),
        Some(j) => serde_json::from_str(j).map_err(|_| Error::Corrupt {
            table,
            detail: "extra is not a JSON object".to_owned(),
        }),
    }
}

/// The user columns, in the order [`user_at`] reads them.
macro_rules! user_cols {
    () => {
        "u.id, u.name, u.email, u.image, u.email_verified, u.extra::text, u.security_stamp, \
         u.created_at, u.updated_at"
    };
}
pub(crate) use user_cols;

/// How many columns [`user_cols`] selects.
pub(crate) const USER_COLS: usize = 9;

/// The user whose columns ([`user_cols`]) start at `at`.
pub(crate) fn user_at(row: &Row, at: usize) -> Result<User> {
    const T: &str = "users";
    let stamp: Vec<u8> = col(row, at + 6, T)?;
    Ok(User {
        id: UserId(col(row, at, T)?),
        name: col(row, at + 1, T)?,
        email: col(row, at + 2, T)?,
        image: col(row, at + 3, T)?,
        email_verified: opt_time(row, at + 4, T)?,
        extra: extra_of(col::<Option<&str>>(row, at + 5, T)?, T)?,
        security_stamp: stamp.try_into().map_err(|_| Error::Corrupt {
            table: T,
            detail: "security stamp is not 16 bytes".to_owned(),
        })?,
        created_at: time(row, at + 7, T)?,
        updated_at: time(row, at + 8, T)?,
    })
}

/// The account columns, in the order [`account_of`] reads them.
macro_rules! account_cols {
    () => {
        "a.id, a.user_id, a.provider_type, a.provider_id, a.provider_account_id, \
         a.refresh_token, a.access_token, a.access_token_expires, a.token_type, a.scope, \
         a.id_token, a.session_state, a.extra, a.created_at, a.updated_at"
    };
}
pub(crate) use account_cols;

/// An account row as stored: secrets still sealed.
pub(crate) struct AccountRow {
    pub(crate) id: AccountId,
    pub(crate) user_id: UserId,
    pub(crate) provider_type: String,
    pub(crate) provider_id: String,
    pub(crate) provider_account_id: String,
    pub(crate) refresh_token: Option<Vec<u8>>,
    pub(crate) access_token: Option<Vec<u8>>,
    pub(crate) access_token_expires: Option<i64>,
    pub(crate) token_type: Option<String>,
    pub(crate) scope: Option<String>,
    pub(crate) id_token: Option<Vec<u8>>,
    pub(crate) session_state: Option<String>,
    pub(crate) extra: Option<Vec<u8>>,
    pub(crate) created_at: i64,
    pub(crate) updated_at: i64,
}

impl AccountRow {
    pub(crate) fn read(row: &Row) -> Result<Self> {
        const T: &str = "accounts";
        Ok(Self {
            id: AccountId(col(row, 0, T)?),
            user_id: UserId(col(row, 1, T)?),
            provider_type: col(row, 2, T)?,
            provider_id: col(row, 3, T)?,
            provider_account_id: col(row, 4, T)?,
            refresh_token: col(row, 5, T)?,
            access_token: col(row, 6, T)?,
            access_token_expires: col(row, 7, T)?,
            token_type: col(row, 8, T)?,
            scope: col(row, 9, T)?,
            id_token: col(row, 10, T)?,
            session_state: col(row, 11, T)?,
            extra: col(row, 12, T)?,
            created_at: col(row, 13, T)?,
            updated_at: col(row, 14, T)?,
        })
    }

    /// The account with its secrets opened with `key` (a sealed value and no key is
    /// [`Error::EncryptionKeyRequired`], one that does not open is [`Error::Corrupt`]).
    pub(crate) fn to_model(&self, key: Option<&EncryptionKey>) -> Result<Account> {
        const T: &str = "accounts";
        let open = |field: &str, sealed: &Option<Vec<u8>>| -> Result<Option<String>> {
            sealed
                .as_deref()
                .map(|s| {
                    let key = key.ok_or(Error::EncryptionKeyRequired)?;
                    authdb::backend::open_account_secret(key, &self.id, field, s)
                })
                .transpose()
        };
        let extra = open("extra", &self.extra)?;
        Ok(Account {
            id: self.id,
            user_id: self.user_id,
            provider_type: self.provider_type.clone(),
            provider_id: self.provider_id.clone(),
            provider_account_id: self.provider_account_id.clone(),
            refresh_token: open("refresh_token", &self.refresh_token)?,
            access_token: open("access_token", &self.access_token)?,
            access_token_expires: self
                .access_token_expires
                .map(|m| time_of(m, T))
                .transpose()?,
            token_type: self.token_type.clone(),
            scope: self.scope.clone(),
            id_token: open("id_token", &self.id_token)?,
            session_state: self.session_state.clone(),
            extra: extra_of(extra.as_deref(), T)?,
            created_at: time_of(self.created_at, T)?,
            updated_at: time_of(self.updated_at, T)?,
        })
    }
}

/// The session columns, in the order [`session_info`] reads them.
macro_rules! session_cols {
    () => {
        "s.id, s.user_id, s.expires, s.created_at, s.updated_at"
    };
}
pub(crate) use session_cols;

/// How many columns [`session_cols`] selects.
pub(crate) const SESSION_COLS: usize = 5;

pub(crate) fn session_info(row: &Row) -> Result<SessionInfo> {
    const T: &str = "sessions";
    Ok(SessionInfo {
        id: SessionId(col(row, 0, T)?),
        user_id: UserId(col(row, 1, T)?),
        expires: time(row, 2, T)?,
        created_at: time(row, 3, T)?,
        updated_at: time(row, 4, T)?,
    })
}

/// The session of a row ([`session_cols`]) and the token the caller gave.
pub(crate) fn session_of(row: &Row, session_token: &str) -> Result<Session> {
    let info = session_info(row)?;
    Ok(Session {
        id: info.id,
        user_id: info.user_id,
        expires: info.expires,
        session_token: session_token.to_owned(),
        access_token: authdb::backend::session_access_token(session_token),
        created_at: info.created_at,
        updated_at: info.updated_at,
    })
}

/// The authenticator columns, in the order [`authenticator_of`] reads them.
macro_rules! authenticator_cols {
    () => {
        "t.credential_id, t.user_id, t.provider_account_id, t.credential_public_key, \
         t.counter, t.credential_device_type, t.credential_backed_up, t.transports, \
         t.created_at, t.updated_at"
    };
}
pub(crate) use authenticator_cols;

pub(crate) fn authenticator_of(row: &Row) -> Result<Authenticator> {
    const T: &str = "authenticators";
    Ok(Authenticator {
        credential_id: col(row, 0, T)?,
        user_id: UserId(col(row, 1, T)?),
        provider_account_id: col(row, 2, T)?,
        credential_public_key: col(row, 3, T)?,
        // The u64 counter's bits (see the column comment).
        counter: col::<i64>(row, 4, T)?.cast_unsigned(),
        credential_device_type: col(row, 5, T)?,
        credential_backed_up: col(row, 6, T)?,
        transports: col(row, 7, T)?,
        created_at: time(row, 8, T)?,
        updated_at: time(row, 9, T)?,
    })
}

// ---------------------------------------------------------------------------------------------
// Input rules of this backend.

/// PostgreSQL's `text` cannot hold U+0000, which authdb's limits allow in a few free-text
/// fields (names, provider ids, scopes, WebAuthn fields): such a value is refused with
/// [`Error::InvalidValue`] before anything is written. (Emails and identifiers already refuse
/// every control character.)
pub(crate) fn storable(field: &'static str, value: &str) -> Result<()> {
    if value.contains('\0') {
        return Err(Error::InvalidValue {
            field,
            reason: "contains a NUL character, which PostgreSQL text cannot store",
        });
    }
    Ok(())
}

pub(crate) fn storable_opt(field: &'static str, value: Option<&String>) -> Result<()> {
    value.map_or(Ok(()), |v| storable(field, v))
}

/// Whether a lookup key can match anything stored (a string with U+0000 cannot, and cannot
/// be sent as a parameter either).
pub(crate) fn findable(value: &str) -> bool {
    !value.contains('\0')
}

pub(crate) use authdb::backend::add_micros;
