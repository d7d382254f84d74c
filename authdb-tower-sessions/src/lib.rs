//! # authdb-tower-sessions
//!
//! A [tower-sessions](https://docs.rs/tower-sessions) session store on an
//! [authdb](https://docs.rs/authdb) file: the sessions live next to the users, accounts and
//! passwords, in the same transactions and the same integrity check.
//!
//! ```no_run
//! use authdb::AuthDb;
//! use authdb_tower_sessions::AuthDbSessionStore;
//!
//! let db = AuthDb::open("auth.redb")?;
//! let store = AuthDbSessionStore::new(db);
//! // tower_sessions::SessionManagerLayer::new(store) ...
//! # Ok::<(), authdb::Error>(())
//! ```
//!
//! What it stores, through authdb's web-session API ([`authdb::web_sessions`]):
//!
//! - the session id only as its SHA-256 (the id is the cookie, a bearer secret);
//! - the session data as JSON (tower-sessions' `Record.data` holds `serde_json::Value`s,
//!   which need a self-describing format);
//! - the expiry, in an index that [`ExpiredDeletion::delete_expired`] walks in batches
//!   instead of scanning the table;
//! - the user the session signs in, when [axum-login](https://docs.rs/axum-login) put one in
//!   the record (under [`AXUM_LOGIN_DATA_KEY`], the key `axum-login.data`, field `user_id`,
//!   holding an authdb [`UserId`]), in a by-user index, so that "list my sessions" and "sign
//!   out everywhere" work: [`AuthDb::web_session_list_for_user`](authdb::AuthDb::web_session_list_for_user),
//!   [`AuthDb::web_session_delete_for_user`](authdb::AuthDb::web_session_delete_for_user).
//!
//! The store follows tower-sessions' contract: `create` never overwrites a record whose id is
//! taken (it draws another id), `load` hides expired records, `save` replaces the record with
//! its id. Every call runs on tokio's blocking pool ([`AsyncAuthDb`]), never on an executor
//! thread. Expiry times are stored to the microsecond.
//!
//! Versions: this crate implements tower-sessions-core 0.14's traits, which tower-sessions
//! 0.14 re-exports and axum-login 0.18 uses.

use async_trait::async_trait;
use authdb::tokio::AsyncAuthDb;
use authdb::{AuthDb, UserId, WebSession, WebSessionId};
use chrono::{DateTime, Utc};
use time::OffsetDateTime;
use tower_sessions_core::session::{Id, Record};
use tower_sessions_core::session_store::{self, ExpiredDeletion, SessionStore};

/// The key under which axum-login (0.18, its default `data_key`) keeps its data in a session:
/// a map whose `user_id` field is the signed-in user's id.
pub const AXUM_LOGIN_DATA_KEY: &str = "axum-login.data";

/// A `tower_sessions::SessionStore` (and `ExpiredDeletion`) on an authdb database.
///
/// Cheap to clone; clones share the database.
#[derive(Clone, Debug)]
pub struct AuthDbSessionStore {
    db: AsyncAuthDb,
    user_key: Option<&'static str>,
    batch: usize,
}

impl AuthDbSessionStore {
    /// A store on `db` (an [`AuthDb`] or an [`AsyncAuthDb`]) that indexes sessions by the
    /// axum-login user found under [`AXUM_LOGIN_DATA_KEY`].
    pub fn new(db: impl Into<AsyncAuthDb>) -> Self {
        Self {
            db: db.into(),
            user_key: Some(AXUM_LOGIN_DATA_KEY),
            batch: 0,
        }
    }

    /// Reads the user from another session key: for axum-login set up with
    /// `AuthManagerLayerBuilder::with_data_key(key)`. The value under it must be a map whose
    /// `user_id` is an authdb user id.
    #[must_use]
    pub fn with_axum_login_data_key(mut self, key: &'static str) -> Self {
        self.user_key = Some(key);
        self
    }

    /// Never fills the by-user index (for apps without axum-login, or whose user ids are
    /// not authdb's).
    #[must_use]
    pub fn without_user_index(mut self) -> Self {
        self.user_key = None;
        self
    }

    /// How many expired sessions `delete_expired` removes per write transaction (default:
    /// [`authdb::web_sessions::WEB_SESSION_PURGE_BATCH`]).
    #[must_use]
    pub fn with_delete_batch(mut self, batch: usize) -> Self {
        self.batch = batch;
        self
    }

    /// The database (for the by-user operations, or anything else).
    pub fn db(&self) -> &AsyncAuthDb {
        &self.db
    }

    /// The authdb user a record signs in, as this store reads it: the `user_id` under the
    /// axum-login data key, when it is an authdb user id (a UUID string); otherwise `None`.
    pub fn user_of(&self, record: &Record) -> Option<UserId> {
        record
            .data
            .get(self.user_key?)?
            .get("user_id")?
            .as_str()?
            .parse()
            .ok()
    }

    fn web_session(&self, record: &Record) -> session_store::Result<WebSession> {
        Ok(WebSession {
            id: web_session_id(&record.id),
            user_id: self.user_of(record),
            expires: to_chrono(record.expiry_date)?,
            data: serde_json::to_vec(&record.data)
                .map_err(|e| session_store::Error::Encode(e.to_string()))?,
        })
    }

    /// Runs a write; a user id that names no authdb user (deleted meanwhile, say) is dropped
    /// and the write made without it, so the session is kept but indexed under nobody.
    async fn write_with_user<T>(
        &self,
        mut session: WebSession,
        op: impl AsyncFn(&AsyncAuthDb, &WebSession) -> authdb::Result<T>,
    ) -> session_store::Result<T> {
        match op(&self.db, &session).await {
            Err(authdb::Error::UserNotFound(_)) if session.user_id.is_some() => {
                session.user_id = None;
                op(&self.db, &session).await.map_err(backend)
            }
            r => r.map_err(backend),
        }
    }
}

impl From<AuthDb> for AuthDbSessionStore {
    fn from(db: AuthDb) -> Self {
        Self::new(db)
    }
}

/// The authdb id of a tower-sessions id: its 16 bytes, little-endian (as in the cookie).
pub fn web_session_id(id: &Id) -> WebSessionId {
    WebSessionId::from_bytes(id.0.to_le_bytes())
}

#[allow(clippy::needless_pass_by_value)] // by value, to fit `map_err(backend)`
fn backend(e: authdb::Error) -> session_store::Error {
    session_store::Error::Backend(e.to_string())
}

fn to_chrono(t: OffsetDateTime) -> session_store::Result<DateTime<Utc>> {
    DateTime::from_timestamp(t.unix_timestamp(), t.nanosecond())
        .ok_or_else(|| session_store::Error::Encode("expiry date out of range".into()))
}

fn to_time(t: DateTime<Utc>) -> session_store::Result<OffsetDateTime> {
    let nanos = i128::from(t.timestamp()) * 1_000_000_000 + i128::from(t.timestamp_subsec_nanos());
    OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .map_err(|e| session_store::Error::Decode(e.to_string()))
}

#[async_trait]
impl SessionStore for AuthDbSessionStore {
    /// Stores a new record; while its id is taken (by a live or an expired record), draws
    /// another (`record.id` is updated).
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        loop {
            let session = self.web_session(record)?;
            let created = self
                .write_with_user(session, async |db, s| db.web_session_create(s).await)
                .await?;
            if created {
                return Ok(());
            }
            record.id = Id::default();
        }
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let session = self.web_session(record)?;
        self.write_with_user(session, async |db, s| db.web_session_save(s).await)
            .await
    }

    async fn load(&self, session_id: &Id) -> session_store::Result<Option<Record>> {
        let Some(s) = self
            .db
            .web_session_load(&web_session_id(session_id))
            .await
            .map_err(backend)?
        else {
            return Ok(None);
        };
        Ok(Some(Record {
            id: *session_id,
            data: serde_json::from_slice(&s.data)
                .map_err(|e| session_store::Error::Decode(e.to_string()))?,
            expiry_date: to_time(s.expires)?,
        }))
    }

    async fn delete(&self, session_id: &Id) -> session_store::Result<()> {
        self.db
            .web_session_delete(&web_session_id(session_id))
            .await
            .map(drop)
            .map_err(backend)
    }
}

#[async_trait]
impl ExpiredDeletion for AuthDbSessionStore {
    /// Deletes every expired record, walking authdb's expiry index in batches.
    async fn delete_expired(&self) -> session_store::Result<()> {
        self.db
            .web_session_delete_expired(self.batch)
            .await
            .map(drop)
            .map_err(backend)
    }
}
