//! Web sessions (see [`crate::web_sessions`]) inside a write transaction.

use crate::codec::{WebSessionRecord, micros};
use crate::error::{Error, InputProblem, Result};
use crate::model::UserId;
use crate::model::web_session::{
    MAX_WEB_SESSION_DATA_LEN, WebSession, WebSessionHandle, WebSessionId, WebSessionInfo,
};
use crate::tables::web_sessions::{self, WebSessionTable};

use super::WriteTxn;

impl WriteTxn<'_> {
    /// Checks a web session before anything is written (data size, user) and makes its
    /// record, created at `created_at` (now when `None`).
    fn web_session_record(
        &self,
        s: &WebSession,
        created_at: Option<i64>,
    ) -> Result<WebSessionRecord> {
        if s.data.len() > MAX_WEB_SESSION_DATA_LEN {
            return Err(Error::invalid(
                "data",
                InputProblem::TooLong {
                    len: s.data.len(),
                    max: MAX_WEB_SESSION_DATA_LEN,
                },
            ));
        }
        if let Some(u) = &s.user_id {
            self.require_user(u)?;
        }
        let now = self.now_micros();
        Ok(WebSessionRecord {
            user_id: s.user_id.map(|u| u.0),
            expires: micros(s.expires),
            created_at: created_at.unwrap_or(now),
            updated_at: now,
            data: s.data.clone(),
        })
    }

    /// As [`AuthDb::web_session_create`](crate::AuthDb::web_session_create).
    pub fn web_session_create(&self, session: &WebSession) -> Result<bool> {
        let rec = self.web_session_record(session, None)?;
        let hash = web_sessions::id_hash(&session.id);
        let mut t = WebSessionTable::open(&self.txn)?;
        if t.exists(&hash)? {
            return Ok(false);
        }
        t.put(&hash, &rec)?;
        Ok(true)
    }

    /// As [`AuthDb::web_session_save`](crate::AuthDb::web_session_save).
    pub fn web_session_save(&self, session: &WebSession) -> Result<()> {
        let hash = web_sessions::id_hash(&session.id);
        let created_at = match WebSessionTable::open(&self.txn)?.get(&hash) {
            Ok(old) => old.map(|r| r.created_at),
            // A damaged record is replaced as if new.
            Err(Error::Corrupt { .. }) => None,
            Err(e) => return Err(e),
        };
        let rec = self.web_session_record(session, created_at)?;
        WebSessionTable::open(&self.txn)?.put(&hash, &rec)?;
        Ok(())
    }

    /// As [`AuthDb::web_session_load`](crate::AuthDb::web_session_load); sees this
    /// transaction's own writes.
    pub fn web_session_load(&self, id: &WebSessionId) -> Result<Option<WebSession>> {
        web_sessions::load(&WebSessionTable::open(&self.txn)?.t, id, self.now_micros())
    }

    /// As [`AuthDb::web_session_delete`](crate::AuthDb::web_session_delete).
    pub fn web_session_delete(&self, id: &WebSessionId) -> Result<bool> {
        WebSessionTable::open(&self.txn)?.remove(&web_sessions::id_hash(id))
    }

    /// As [`AuthDb::web_session_list_for_user`](crate::AuthDb::web_session_list_for_user);
    /// sees this transaction's own writes.
    pub fn web_session_list_for_user(&self, user_id: &UserId) -> Result<Vec<WebSessionInfo>> {
        web_sessions::list(
            &WebSessionTable::open(&self.txn)?.t,
            user_id,
            self.now_micros(),
        )
    }

    /// As [`AuthDb::web_session_delete_for_user`](crate::AuthDb::web_session_delete_for_user).
    pub fn web_session_delete_for_user(&self, user_id: &UserId) -> Result<u64> {
        WebSessionTable::open(&self.txn)?.remove_all_of(&user_id.to_bytes())
    }

    /// As [`AuthDb::web_session_delete_by_handle`](crate::AuthDb::web_session_delete_by_handle).
    pub fn web_session_delete_by_handle(
        &self,
        user_id: &UserId,
        handle: &WebSessionHandle,
    ) -> Result<bool> {
        WebSessionTable::open(&self.txn)?.remove_of(&user_id.to_bytes(), &handle.0)
    }

    /// Deletes up to `limit` expired web sessions (one batch of
    /// [`AuthDb::web_session_delete_expired`](crate::AuthDb::web_session_delete_expired));
    /// returns how many.
    pub fn web_session_delete_expired(&self, limit: usize) -> Result<u64> {
        self.purge_web_sessions(self.now_micros(), limit)
            .map(|(_, n)| n)
    }

    /// Walks up to `limit` expiry entries filed before `now`; returns (entries walked, web
    /// sessions removed).
    pub(crate) fn purge_web_sessions(&self, now: i64, limit: usize) -> Result<(usize, u64)> {
        WebSessionTable::open(&self.txn)?.purge(now, limit)
    }
}
