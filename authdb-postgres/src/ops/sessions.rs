//! `SessionStore`: database sessions, stored under the SHA-256 of their token.

use authdb::backend;
use authdb::{Error, NewSession, Result, Session, SessionId, SessionInfo, User, UserId};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::db::{
    Db, Runner, SESSION_COLS, add_micros, col, session_cols, session_info, session_of, time_of,
    user_at, user_cols,
};
use crate::error::mapped;
use crate::ops::users::{renew_stamp, require_user, require_user_exclusive};

const INSERT: &str = "INSERT INTO sessions (token_hash, id, user_id, expires, created_at, \
     updated_at) VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (token_hash) DO NOTHING";
const BY_HASH: &str = concat!(
    "SELECT ",
    session_cols!(),
    " FROM sessions s WHERE s.token_hash = $1"
);
const BY_HASH_LOCKED: &str = concat!(
    "SELECT ",
    session_cols!(),
    " FROM sessions s WHERE s.token_hash = $1 FOR UPDATE"
);
const WITH_USER: &str = concat!(
    "SELECT ",
    session_cols!(),
    ", ",
    user_cols!(),
    " FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = $1"
);
/// Deletes the session only if it is (still) expired at `$2`.
const DELETE_EXPIRED: &str = "DELETE FROM sessions WHERE token_hash = $1 AND expires < $2";
const SET_EXPIRES: &str = concat!(
    "UPDATE sessions s SET expires = $2, updated_at = $3 WHERE s.token_hash = $1 RETURNING ",
    session_cols!()
);
/// Never revives: only a session still live at `$3` (now) is written.
const SET_EXPIRES_IF_LIVE: &str = concat!(
    "UPDATE sessions s SET expires = $2, updated_at = $3 \
     WHERE s.token_hash = $1 AND s.expires >= $3 RETURNING ",
    session_cols!()
);
const DELETE: &str = "DELETE FROM sessions WHERE token_hash = $1";
const DELETE_RETURNING: &str = concat!(
    "DELETE FROM sessions s WHERE s.token_hash = $1 RETURNING ",
    session_cols!()
);
const LIVE_OF_USER: &str = concat!(
    "SELECT ",
    session_cols!(),
    " FROM sessions s WHERE s.user_id = $1 AND s.expires >= $2"
);
const DELETE_ALL_OF_USER: &str = "DELETE FROM sessions WHERE user_id = $1";
/// Keeps the user's `$2` newest sessions (by creation, then token hash), deletes the rest.
const KEEP_NEWEST: &str = "DELETE FROM sessions WHERE token_hash IN (\
     SELECT token_hash FROM sessions WHERE user_id = $1 \
     ORDER BY created_at DESC, token_hash DESC OFFSET $2)";
const DELETE_BY_ID: &str = "DELETE FROM sessions WHERE user_id = $1 AND id = $2";

/// `true` if a record expiring at `expires` is expired at `now` (strictly later).
fn is_expired(now: i64, expires: i64) -> bool {
    now > expires
}

/// Checks the user exists and locks it: against deletion, and with a per-user session cap
/// against concurrent session creation.
fn lock_user(db: &mut Db<'_>, user_id: &UserId) -> Result<()> {
    if db.cfg.max_sessions_per_user.is_some() {
        require_user_exclusive(db, user_id)
    } else {
        require_user(db, user_id)
    }
}

/// Stores a new session under `token` (`None` if the token is taken). With an absolute
/// lifetime the expiry is capped; with a per-user session cap the user's oldest sessions go
/// to make room (undone with the rest if the token turns out to be taken).
fn insert(db: &mut Db<'_>, user_id: &UserId, token: &str, expires: i64) -> Result<Option<Session>> {
    let now = db.now();
    let expires = db.cfg.cap_expiry(now, expires);
    if let Some(cap) = db.cfg.max_sessions_per_user {
        db.exec(KEEP_NEWEST, &[&user_id.0, &i64::from(cap - 1)])?;
    }
    let hash = backend::session_token_hash(token);
    let id = SessionId(Uuid::now_v7());
    let n = db
        .exec_raw(
            INSERT,
            &[&hash.as_slice(), &id.0, &user_id.0, &expires, &now],
        )
        .map_err(|e| mapped(e, Some(user_id)))?;
    if n == 0 {
        return Ok(None);
    }
    Ok(Some(Session {
        id,
        user_id: *user_id,
        expires: time_of(expires, "sessions")?,
        session_token: token.to_owned(),
        access_token: backend::session_access_token(token),
        created_at: time_of(now, "sessions")?,
        updated_at: time_of(now, "sessions")?,
    }))
}

pub(crate) fn create_session(r: &impl Runner, user_id: &UserId) -> Result<Session> {
    r.write(|db| {
        lock_user(db, user_id)?;
        let expires = add_micros("expires", db.now(), db.cfg.max_age)?;
        // A fresh 256-bit token cannot realistically collide, but a collision must never hand
        // one user's session to another: a taken one is drawn again.
        loop {
            let token = backend::random_session_token()?;
            if let Some(s) = insert(db, user_id, &token, expires)? {
                return Ok(s);
            }
        }
    })
}

pub(crate) fn create_session_with(r: &impl Runner, s: &NewSession) -> Result<Session> {
    backend::validate_session_token("session_token", &s.session_token)?;
    let expires = backend::micros(s.expires);
    r.write(|db| {
        lock_user(db, &s.user_id)?;
        insert(db, &s.user_id, &s.session_token, expires)?.ok_or(Error::SessionTokenTaken)
    })
}

/// Deletes the session under `hash` if it is expired at `now` (a read met it expired).
fn remove_expired(r: &impl Runner, hash: &[u8; 32], now: i64) -> Result<()> {
    r.write(|db| db.exec(DELETE_EXPIRED, &[&hash.as_slice(), &now]).map(drop))
}

pub(crate) fn get_session(r: &impl Runner, session_token: &str) -> Result<Option<Session>> {
    let hash = backend::session_token_hash(session_token);
    let now = r.cfg().now_micros();
    let found = r.read(|db| {
        db.row(BY_HASH, &[&hash.as_slice()])?
            .map(|row| session_of(&row, session_token))
            .transpose()
    })?;
    match found {
        Some(s) if is_expired(now, backend::micros(s.expires)) => {
            remove_expired(r, &hash, now)?;
            Ok(None)
        }
        found => Ok(found),
    }
}

/// Session and user come from one statement (one snapshot).
pub(crate) fn get_session_and_user(
    r: &impl Runner,
    session_token: &str,
) -> Result<Option<(Session, User)>> {
    let hash = backend::session_token_hash(session_token);
    let now = r.cfg().now_micros();
    let found = r.read(|db| {
        db.row(WITH_USER, &[&hash.as_slice()])?
            .map(|row| {
                Ok((
                    session_of(&row, session_token)?,
                    user_at(&row, SESSION_COLS)?,
                ))
            })
            .transpose()
    })?;
    match found {
        Some((s, _)) if is_expired(now, backend::micros(s.expires)) => {
            remove_expired(r, &hash, now)?;
            Ok(None)
        }
        found => Ok(found),
    }
}

/// What `update_session` does with the stored session.
enum Plan {
    Nothing,
    DeleteExpired,
    Write(i64),
}

/// The decision for a stored `(expires, created_at)`, or none stored.
fn plan(r: &impl Runner, now: i64, stored: Option<(i64, i64)>, force: bool) -> Result<Plan> {
    let Some((expires, created_at)) = stored else {
        return Ok(Plan::Nothing);
    };
    if is_expired(now, expires) {
        return Ok(Plan::DeleteExpired);
    }
    let cfg = r.cfg();
    Ok(
        match backend::session_update_expiry(now, expires, cfg.max_age, cfg.update_age, force)? {
            Some(e) => Plan::Write(cfg.cap_expiry(created_at, e)),
            None => Plan::Nothing,
        },
    )
}

/// The stored `(expires, created_at)` of the session under `hash`.
fn stored(db: &mut Db<'_>, sql: &'static str, hash: &[u8; 32]) -> Result<Option<(i64, i64)>> {
    db.row(sql, &[&hash.as_slice()])?
        .map(|row| {
            Ok((
                col::<i64>(&row, 2, "sessions")?,
                col::<i64>(&row, 3, "sessions")?,
            ))
        })
        .transpose()
}

/// Decided first on a plain read: the common "not due yet" case takes no lock and writes
/// nothing. Otherwise decided again on the locked row.
pub(crate) fn update_session(
    r: &impl Runner,
    session: &Session,
    force: bool,
) -> Result<Option<Session>> {
    let token = session.session_token.as_str();
    let hash = backend::session_token_hash(token);
    let now = r.cfg().now_micros();
    let first = r.read(|db| stored(db, BY_HASH, &hash))?;
    if let Plan::Nothing = plan(r, now, first, force)? {
        return Ok(None);
    }
    r.write(|db| {
        let now = db.now();
        let locked = stored(db, BY_HASH_LOCKED, &hash)?;
        match plan(r, now, locked, force)? {
            Plan::Nothing => Ok(None),
            Plan::DeleteExpired => {
                db.exec(DELETE_EXPIRED, &[&hash.as_slice(), &now])?;
                Ok(None)
            }
            Plan::Write(expires) => db
                .row(SET_EXPIRES, &[&hash.as_slice(), &expires, &now])?
                .map(|row| session_of(&row, token))
                .transpose(),
        }
    })
}

/// One conditional `UPDATE` (never reviving: only a session live at now is written); with an
/// absolute lifetime the row is locked and the expiry capped by its creation time.
pub(crate) fn set_session_expiry(
    r: &impl Runner,
    session_token: &str,
    expires: DateTime<Utc>,
) -> Result<Option<Session>> {
    let hash = backend::session_token_hash(session_token);
    let expires = backend::micros(expires);
    r.write(|db| {
        let now = db.now();
        if db.cfg.absolute_lifetime.is_none() {
            return db
                .row(SET_EXPIRES_IF_LIVE, &[&hash.as_slice(), &expires, &now])?
                .map(|row| session_of(&row, session_token))
                .transpose();
        }
        match stored(db, BY_HASH_LOCKED, &hash)? {
            Some((old, created_at)) if !is_expired(now, old) => {
                let capped = db.cfg.cap_expiry(created_at, expires);
                db.row(SET_EXPIRES, &[&hash.as_slice(), &capped, &now])?
                    .map(|row| session_of(&row, session_token))
                    .transpose()
            }
            _ => Ok(None),
        }
    })
}

pub(crate) fn delete_session(r: &impl Runner, session_token: &str) -> Result<()> {
    let hash = backend::session_token_hash(session_token);
    r.write(|db| db.exec(DELETE, &[&hash.as_slice()]).map(drop))
}

pub(crate) fn delete_session_returning(
    r: &impl Runner,
    session_token: &str,
) -> Result<Option<Session>> {
    let hash = backend::session_token_hash(session_token);
    r.write(|db| {
        db.row(DELETE_RETURNING, &[&hash.as_slice()])?
            .map(|row| session_of(&row, session_token))
            .transpose()
    })
}

pub(crate) fn list_sessions(r: &impl Runner, user_id: &UserId) -> Result<Vec<SessionInfo>> {
    let now = r.cfg().now_micros();
    let mut out = r.read(|db| {
        db.rows(LIVE_OF_USER, &[&user_id.0, &now])?
            .iter()
            .map(session_info)
            .collect::<Result<Vec<_>>>()
    })?;
    out.sort_by_key(|s| (s.created_at, s.id));
    Ok(out)
}

pub(crate) fn delete_sessions(r: &impl Runner, user_id: &UserId) -> Result<u64> {
    r.write(|db| {
        let n = db.exec(DELETE_ALL_OF_USER, &[&user_id.0])?;
        renew_stamp(db, user_id)?;
        Ok(n)
    })
}

pub(crate) fn delete_session_by_id(
    r: &impl Runner,
    user_id: &UserId,
    session_id: &SessionId,
) -> Result<bool> {
    r.write(|db| Ok(db.exec(DELETE_BY_ID, &[&user_id.0, &session_id.0])? > 0))
}
