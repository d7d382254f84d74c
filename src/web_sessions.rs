//! Web sessions: the records of a cookie-session layer such as
//! [tower-sessions](https://docs.rs/tower-sessions), stored in the same file as the rest of
//! the authentication data (the `authdb-tower-sessions` crate is the `SessionStore` on top).
//!
//! A web session is an opaque blob of session data under a random 16-byte id (the cookie
//! value), with an expiry and, optionally, the [`UserId`] it signs in. authdb keeps three
//! things in step for it, in one transaction per operation:
//!
//! - the record, stored under the SHA-256 of the id: the id itself, a bearer secret, is never
//!   written to the file (as for database session tokens);
//! - an expiry index, so [`AuthDb::web_session_delete_expired`] finds expired records without
//!   scanning the table;
//! - a by-user index for records naming a user, so an application can list a user's devices
//!   ([`AuthDb::web_session_list_for_user`]) and sign them out, one
//!   ([`AuthDb::web_session_delete_by_handle`]) or all
//!   ([`AuthDb::web_session_delete_for_user`]).
//!
//! Rules (the same on [`AuthDb`] and on a [`WriteTxn`](crate::WriteTxn)):
//! - a record naming a user needs that user to exist
//!   ([`Error::UserNotFound`](crate::Error::UserNotFound) otherwise), and `delete_user` removes
//!   the user's web sessions with them;
//! - `data` is at most [`MAX_WEB_SESSION_DATA_LEN`] bytes
//!   ([`Error::InvalidInput`](crate::Error::InvalidInput) otherwise); authdb never looks
//!   inside it. Encode it in a self-describing format (the adapter uses JSON);
//! - expiry follows the store's clock as everywhere else: a record is expired when now is
//!   strictly later than `expires`, and [`load`](AuthDb::web_session_load) and the lists leave
//!   expired records out (without deleting them: that is the job of `delete_expired`);
//! - times are stored in microseconds: `expires` comes back truncated to the microsecond.
//!
//! ```
//! use authdb::{AuthDb, WebSession, WebSessionId};
//!
//! let db = AuthDb::builder().in_memory()?;
//! let session = WebSession {
//!     id: WebSessionId::from_bytes([7; 16]),
//!     user_id: None,
//!     expires: db.now() + chrono::Duration::hours(1),
//!     data: br#"{"cart":3}"#.to_vec(),
//! };
//! assert!(db.web_session_create(&session)?);
//! assert!(!db.web_session_create(&session)?); // the id is taken: draw another
//! assert_eq!(db.web_session_load(&session.id)?.unwrap().data, session.data);
//! # Ok::<(), authdb::Error>(())
//! ```

use crate::db::AuthDb;
use crate::error::Result;
use crate::model::UserId;
use crate::tables::web_sessions::{self, open_read};

pub use crate::model::web_session::{
    MAX_WEB_SESSION_DATA_LEN, WEB_SESSION_PURGE_BATCH, WebSession, WebSessionHandle, WebSessionId,
    WebSessionInfo,
};

impl AuthDb {
    /// Stores a new web session, unless a record with the same id exists (live or expired):
    /// then it returns `false` and writes nothing, and the caller draws a new id
    /// (tower-sessions' `create` contract: a collision must never merge two sessions).
    #[cfg_attr(
        feature = "tracing",
        tracing::instrument(level = "debug", skip_all, ret, err(level = "debug"))
    )]
    pub fn web_session_create(&self, session: &WebSession) -> Result<bool> {
        let s = session.clone();
        self.submit(move |tx| tx.web_session_create(&s))
    }

    /// Stores the web session, creating it or replacing the record with its id (data, expiry
    /// and user; the by-user and expiry entries move with it). `created_at` is kept.
    #[cfg_attr(
        feature = "tracing",
        tracing::instrument(level = "debug", skip_all, err(level = "debug"))
    )]
    pub fn web_session_save(&self, session: &WebSession) -> Result<()> {
        let s = session.clone();
        self.submit(move |tx| tx.web_session_save(&s))
    }

    /// The live web session with this id, or `None` (unknown or expired; an expired record is
    /// left for [`web_session_delete_expired`](Self::web_session_delete_expired)). Reads a
    /// snapshot: never waits for writers.
    #[cfg_attr(
        feature = "tracing",
        tracing::instrument(level = "debug", skip_all, err(level = "debug"))
    )]
    pub fn web_session_load(&self, id: &WebSessionId) -> Result<Option<WebSession>> {
        let rtx = self.read()?;
        web_sessions::load(&open_read(&rtx)?, id, self.cfg().now_micros())
    }

    /// Deletes the web session with this id; returns whether there was one.
    #[cfg_attr(
        feature = "tracing",
        tracing::instrument(level = "debug", skip_all, ret, err(level = "debug"))
    )]
    pub fn web_session_delete(&self, id: &WebSessionId) -> Result<bool> {
        let id = *id;
        self.submit(move |tx| tx.web_session_delete(&id))
    }

    /// Deletes every web session expired at the start of the call, walking the expiry index
    /// in write transactions of at most `batch` records each (0 means
    /// [`WEB_SESSION_PURGE_BATCH`]), so other writers wait at most one batch. Returns how many
    /// were deleted. The cost grows with the number of expired records, never with the size
    /// of the table.
    #[cfg_attr(
        feature = "tracing",
        tracing::instrument(level = "debug", skip_all, fields(batch), ret, err(level = "debug"))
    )]
    pub fn web_session_delete_expired(&self, batch: usize) -> Result<u64> {
        let batch = if batch == 0 {
            WEB_SESSION_PURGE_BATCH
        } else {
            batch
        };
        #[cfg(feature = "tracing")]
        tracing::Span::current().record("batch", batch);
        let now = self.cfg().now_micros();
        let mut removed = 0;
        loop {
            // A transaction of its own: housekeeping never shares a commit with sign-ins.
            let (walked, n) = self.run_alone(|tx| tx.purge_web_sessions(now, batch))?;
            removed += n;
            if walked < batch {
                return Ok(removed);
            }
        }
    }

    /// The user's live web sessions, oldest first, without ids or data. Reads a snapshot.
    #[cfg_attr(
        feature = "tracing",
        tracing::instrument(level = "debug", skip_all, fields(user_id = %user_id), err(level = "debug"))
    )]
    pub fn web_session_list_for_user(&self, user_id: &UserId) -> Result<Vec<WebSessionInfo>> {
        let rtx = self.read()?;
        web_sessions::list(&open_read(&rtx)?, user_id, self.cfg().now_micros())
    }

    /// Deletes every web session of the user ("sign out everywhere" for a tower-sessions
    /// app); returns how many. It does not touch database sessions or the security stamp:
    /// combine it with [`delete_sessions`](crate::SessionStore::delete_sessions) in one
    /// [`write`](AuthDb::write) for both.
    #[cfg_attr(
        feature = "tracing",
        tracing::instrument(level = "debug", skip_all, fields(user_id = %user_id), ret, err(level = "debug"))
    )]
    pub fn web_session_delete_for_user(&self, user_id: &UserId) -> Result<u64> {
        let uid = *user_id;
        self.submit(move |tx| tx.web_session_delete_for_user(&uid))
    }

    /// Deletes the user's web session with this handle ("sign out that device"); returns
    /// whether it existed. A web session of another user is left alone.
    #[cfg_attr(
        feature = "tracing",
        tracing::instrument(level = "debug", skip_all, fields(user_id = %user_id), ret, err(level = "debug"))
    )]
    pub fn web_session_delete_by_handle(
        &self,
        user_id: &UserId,
        handle: &WebSessionHandle,
    ) -> Result<bool> {
        let (uid, h) = (*user_id, *handle);
        self.submit(move |tx| tx.web_session_delete_by_handle(&uid, &h))
    }
}
