//! [`SessionStore`] inside a write transaction, and the update rule shared with `AuthDb`.

use chrono::{DateTime, Utc};

use crate::codec::{SessionRecord, micros};
use crate::config::Config;
use crate::contract::{SessionStore, UserStore};
use crate::error::{Error, Result};
use crate::limits;
use crate::model::{NewSession, Session, SessionId, SessionInfo, User, UserId};
use crate::tables::sessions::{self, SessionTable};
use crate::tables::{Lookup, is_expired};
use crate::token;

use super::{WriteTxn, add_micros};

/// The work `update_session` would do on a stored session, decided without writing.
pub(crate) enum SessionUpdate {
    /// Missing or expired: return `None` (an expired record is deleted).
    Gone { expired: bool },
    /// Not due and not forced: return `None`, write nothing.
    NotDue,
    /// Write with this expiry (moved or unchanged).
    Write { expires: i64 },
}

/// v3's update rule: `due = expires − max_age + update_age`; after `due` the expiry moves to
/// `now + max_age`; before it, `force` writes it unchanged.
pub(crate) fn plan_session_update(
    cfg: &Config,
    now: i64,
    rec: Option<&SessionRecord>,
    force: bool,
) -> Result<SessionUpdate> {
    let Some(rec) = rec else {
        return Ok(SessionUpdate::Gone { expired: false });
    };
    if is_expired(now, rec.expires) {
        return Ok(SessionUpdate::Gone { expired: true });
    }
    Ok(
        match update_expiry(
            now,
            rec.expires,
            cfg.max_age_micros,
            cfg.update_age_micros,
            force,
        )? {
            Some(expires) => SessionUpdate::Write {
                expires: cap_expiry(cfg, rec.created_at, expires),
            },
            None => SessionUpdate::NotDue,
        },
    )
}

/// `expires`, or the session's absolute end (creation + the configured absolute lifetime) if
/// that comes first.
pub(crate) fn cap_expiry(cfg: &Config, created_at: i64, expires: i64) -> i64 {
    crate::backend::cap_session_expiry(created_at, expires, cfg.absolute_lifetime_micros)
}

/// The expiry `update_session` writes for a live session, or `None` when it writes nothing.
pub(crate) fn update_expiry(
    now: i64,
    expires: i64,
    max_age: i64,
    update_age: i64,
    force: bool,
) -> Result<Option<i64>> {
    // Saturating: a far-future `expires` simply means "not due".
    let due = expires.saturating_sub(max_age).saturating_add(update_age);
    if now > due {
        add_micros("expires", now, max_age).map(Some)
    } else {
        Ok(force.then_some(expires))
    }
}

impl WriteTxn<'_> {
    /// Stores a new session for an existing user under the token `session_token`. With a
    /// per-user session cap, the user's oldest sessions go to make room.
    fn insert_session(
        &self,
        user_id: &UserId,
        session_token: &str,
        expires: i64,
    ) -> Result<Session> {
        let now = self.now_micros();
        let expires = cap_expiry(self.cfg, now, expires);
        let rec = SessionRecord {
            id: SessionId::generate().0,
            user_id: user_id.0,
            expires,
            indexed_expires: expires,
            created_at: now,
            updated_at: now,
        };
        let model = sessions::to_model(&rec, session_token)?;
        let mut t = SessionTable::open(&self.txn)?;
        if let Some(cap) = self.cfg.max_sessions_per_user {
            t.keep_newest(&user_id.to_bytes(), cap - 1)?;
        }
        t.insert(&token::session_key(session_token), &rec)?;
        Ok(model)
    }
}

impl SessionStore for WriteTxn<'_> {
    fn create_session(&self, user_id: &UserId) -> Result<Session> {
        self.require_user(user_id)?;
        let expires = add_micros("expires", self.now_micros(), self.cfg.max_age_micros)?;
        let t = SessionTable::open(&self.txn)?;
        // A fresh 256-bit token cannot realistically collide, but a collision must never hand
        // one user's session to another (tower-sessions learned this), so check and redraw.
        let session_token = loop {
            let tok = token::random_token()?;
            if !t.exists(&token::session_key(&tok))? {
                break tok;
            }
        };
        drop(t);
        self.insert_session(user_id, &session_token, expires)
    }

    fn create_session_with(&self, s: &NewSession) -> Result<Session> {
        limits::session_token("session_token", &s.session_token)?;
        self.require_user(&s.user_id)?;
        if SessionTable::open(&self.txn)?.exists(&token::session_key(&s.session_token))? {
            return Err(Error::SessionTokenTaken);
        }
        self.insert_session(&s.user_id, &s.session_token, micros(s.expires))
    }

    fn get_session(&self, session_token: &str) -> Result<Option<Session>> {
        match sessions::find(&self.txn, session_token, self.now_micros())? {
            Lookup::Live(s) => Ok(Some(s)),
            Lookup::Missing => Ok(None),
            Lookup::Expired => {
                SessionTable::open(&self.txn)?.remove(&token::session_key(session_token))?;
                Ok(None)
            }
        }
    }

    fn get_session_and_user(&self, session_token: &str) -> Result<Option<(Session, User)>> {
        let Some(session) = self.get_session(session_token)? else {
            return Ok(None);
        };
        Ok(self.get_user(&session.user_id)?.map(|u| (session, u)))
    }

    fn update_session(&self, session: &Session, force: bool) -> Result<Option<Session>> {
        let key = token::session_key(&session.session_token);
        let now = self.now_micros();
        let mut t = SessionTable::open(&self.txn)?;
        let old = t.get(&key)?;
        match plan_session_update(self.cfg, now, old.as_ref(), force)? {
            SessionUpdate::Gone { expired } => {
                if expired {
                    t.remove(&key)?;
                }
                Ok(None)
            }
            SessionUpdate::NotDue => Ok(None),
            SessionUpdate::Write { expires } => {
                let Some(old) = old else { return Ok(None) };
                let rec = t.update(&key, &old, expires, now)?;
                sessions::to_model(&rec, &session.session_token).map(Some)
            }
        }
    }

    fn set_session_expiry(
        &self,
        session_token: &str,
        expires: DateTime<Utc>,
    ) -> Result<Option<Session>> {
        let key = token::session_key(session_token);
        let now = self.now_micros();
        let mut t = SessionTable::open(&self.txn)?;
        match t.get(&key)? {
            Some(old) if !is_expired(now, old.expires) => {
                let expires = cap_expiry(self.cfg, old.created_at, micros(expires));
                let rec = t.update(&key, &old, expires, now)?;
                sessions::to_model(&rec, session_token).map(Some)
            }
            _ => Ok(None),
        }
    }

    fn delete_session(&self, session_token: &str) -> Result<()> {
        SessionTable::open(&self.txn)?.remove(&token::session_key(session_token))?;
        Ok(())
    }

    fn delete_session_returning(&self, session_token: &str) -> Result<Option<Session>> {
        SessionTable::open(&self.txn)?
            .remove(&token::session_key(session_token))?
            .map(|rec| sessions::to_model(&rec, session_token))
            .transpose()
    }

    fn list_sessions(&self, user_id: &UserId) -> Result<Vec<SessionInfo>> {
        sessions::list(&self.txn, user_id, self.now_micros())
    }

    fn delete_sessions(&self, user_id: &UserId) -> Result<u64> {
        let n = SessionTable::open(&self.txn)?.remove_all_of(&user_id.to_bytes())?;
        self.renew_stamp(user_id)?;
        Ok(n)
    }

    fn delete_session_by_id(&self, user_id: &UserId, session_id: &SessionId) -> Result<bool> {
        SessionTable::open(&self.txn)?.remove_by_id(&user_id.to_bytes(), session_id)
    }
}
