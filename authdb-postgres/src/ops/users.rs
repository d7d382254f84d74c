//! `UserStore`: users, their unique normalized email, their passwords and security stamps.

use authdb::backend;
use authdb::limits::MAX_PASSWORD_LEN;
use authdb::{Credentials, Error, NewUser, Result, User, UserId, UserPatch, normalize_email};
use uuid::Uuid;

use crate::db::{
    Db, Runner, USER_COLS, col, extra_of, findable, storable_opt, time_of, user_at, user_cols,
};
use crate::error::mapped;

const INSERT: &str = "INSERT INTO users (id, name, email, email_key, image, email_verified, \
     extra, security_stamp, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7::text::json, $8, $9, $9)";
const BY_ID: &str = concat!("SELECT ", user_cols!(), " FROM users u WHERE u.id = $1");
const BY_ID_LOCKED: &str = concat!(
    "SELECT ",
    user_cols!(),
    " FROM users u WHERE u.id = $1 FOR NO KEY UPDATE"
);
const BY_EMAIL: &str = concat!(
    "SELECT ",
    user_cols!(),
    " FROM users u WHERE u.email_key = $1"
);
const EXISTS: &str = "SELECT 1 FROM users WHERE id = $1";
/// Locks the user against deletion until the transaction ends (what a foreign key check
/// takes too), so that a record made for it cannot be orphaned.
const EXISTS_LOCKED: &str = "SELECT 1 FROM users WHERE id = $1 FOR KEY SHARE";
const UPDATE: &str = "UPDATE users SET name = $2, email = $3, email_key = $4, image = $5, \
     email_verified = $6, extra = $7::text::json, security_stamp = $8, updated_at = $9 \
     WHERE id = $1";
const RENEW_STAMP: &str = "UPDATE users SET security_stamp = $2, updated_at = $3 WHERE id = $1";
const DELETE: &str = "DELETE FROM users WHERE id = $1";
const CREDENTIALS_BY_EMAIL: &str = concat!(
    "SELECT ",
    user_cols!(),
    ", c.phc FROM users u JOIN credentials c ON c.user_id = u.id WHERE u.email_key = $1"
);
const DELETE_SESSIONS: &str = "DELETE FROM sessions WHERE user_id = $1";
/// Locks the user's row against concurrent session creation (with a per-user session cap,
/// sessions of one user are created one after the other).
const LOCK_FOR_SESSIONS: &str = "SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE";
const PUT_PASSWORD: &str = "INSERT INTO credentials (user_id, phc, updated_at) \
     VALUES ($1, $2, $3) \
     ON CONFLICT (user_id) DO UPDATE SET phc = EXCLUDED.phc, updated_at = EXCLUDED.updated_at";

/// Fails with [`Error::UserNotFound`] unless the user exists; then keeps it from being deleted
/// until the transaction ends.
pub(crate) fn require_user(db: &mut Db<'_>, id: &UserId) -> Result<()> {
    match db.row(EXISTS_LOCKED, &[&id.0])? {
        Some(_) => Ok(()),
        None => Err(Error::UserNotFound(*id)),
    }
}

/// As [`require_user`], but also serializes the user's session creations (for the per-user
/// session cap).
pub(crate) fn require_user_exclusive(db: &mut Db<'_>, id: &UserId) -> Result<()> {
    match db.row(LOCK_FOR_SESSIONS, &[&id.0])? {
        Some(_) => Ok(()),
        None => Err(Error::UserNotFound(*id)),
    }
}

/// Gives the user a new security stamp (their credentials changed); nothing for a missing
/// user.
pub(crate) fn renew_stamp(db: &mut Db<'_>, id: &UserId) -> Result<()> {
    let stamp = backend::new_security_stamp()?;
    let now = db.now();
    db.exec(RENEW_STAMP, &[&id.0, &stamp.as_slice(), &now])?;
    Ok(())
}

/// The JSON text stored for an `extra` object (`{}` when empty).
fn extra_text(json: Option<Vec<u8>>) -> String {
    json.map_or_else(
        || "{}".to_owned(),
        |j| String::from_utf8_lossy(&j).into_owned(),
    )
}

/// The profile checked as `create_user` checks it, plus this backend's rule (no U+0000 in
/// the free-text fields); returns the JSON text of its `extra`.
fn checked(profile: &NewUser) -> Result<String> {
    let extra = backend::validate_user(profile)?;
    storable_opt("name", profile.name.as_ref())?;
    storable_opt("image", profile.image.as_ref())?;
    Ok(extra_text(extra))
}

/// The normalized email, the unique key.
fn email_key(email: Option<&String>) -> Option<String> {
    email.map(|e| normalize_email(e))
}

pub(crate) fn create_user(r: &impl Runner, profile: &NewUser) -> Result<User> {
    let extra = checked(profile)?;
    let key = email_key(profile.email.as_ref());
    let id = UserId(Uuid::now_v7());
    let stamp = backend::new_security_stamp()?;
    let verified = profile.email_verified.map(backend::micros);
    r.write(|db| {
        let now = db.now();
        db.exec_raw(
            INSERT,
            &[
                &id.0,
                &profile.name,
                &profile.email,
                &key,
                &profile.image,
                &verified,
                &extra,
                &stamp.as_slice(),
                &now,
            ],
        )
        .map_err(|e| mapped(e, None))?;
        Ok(User {
            id,
            name: profile.name.clone(),
            email: profile.email.clone(),
            image: profile.image.clone(),
            email_verified: verified.map(|m| time_of(m, "users")).transpose()?,
            extra: extra_of(Some(&extra), "users")?,
            security_stamp: stamp,
            created_at: time_of(now, "users")?,
            updated_at: time_of(now, "users")?,
        })
    })
}

pub(crate) fn get_user(r: &impl Runner, id: &UserId) -> Result<Option<User>> {
    r.read(|db| {
        db.row(BY_ID, &[&id.0])?
            .map(|row| user_at(&row, 0))
            .transpose()
    })
}

pub(crate) fn get_user_by_email(r: &impl Runner, email: &str) -> Result<Option<User>> {
    if email.trim().is_empty() {
        return Ok(None);
    }
    let key = normalize_email(email);
    if key.is_empty() || !findable(&key) {
        return Ok(None);
    }
    r.read(|db| {
        db.row(BY_EMAIL, &[&key])?
            .map(|row| user_at(&row, 0))
            .transpose()
    })
}

/// The email and password are read in one statement; the slow argon2 verification runs
/// afterwards, on no connection (outside any transaction on [`PgAuthDb`](crate::PgAuthDb)).
pub(crate) fn get_user_by_credentials(r: &impl Runner, c: &Credentials) -> Result<Option<User>> {
    backend::validate_len("password", &c.password, MAX_PASSWORD_LEN)?;
    let key = normalize_email(&c.email);
    let found = if key.is_empty() || !findable(&key) {
        None
    } else {
        r.read(|db| {
            db.row(CREDENTIALS_BY_EMAIL, &[&key])?
                .map(|row| -> Result<(User, String)> {
                    Ok((user_at(&row, 0)?, col(&row, USER_COLS, "credentials")?))
                })
                .transpose()
        })?
    };
    r.cfg().verify_credentials(found, &c.password)
}

/// Writes `profile` over the locked user `old` (shared by `update_user` and `patch_user`).
fn replace(db: &mut Db<'_>, old: &User, profile: &NewUser) -> Result<User> {
    let extra = checked(profile)?;
    let old_key = email_key(old.email.as_ref());
    let new_key = email_key(profile.email.as_ref());
    let stamp = if old_key == new_key {
        old.security_stamp
    } else {
        backend::new_security_stamp()?
    };
    let verified = profile.email_verified.map(backend::micros);
    let now = db.now();
    db.exec_raw(
        UPDATE,
        &[
            &old.id.0,
            &profile.name,
            &profile.email,
            &new_key,
            &profile.image,
            &verified,
            &extra,
            &stamp.as_slice(),
            &now,
        ],
    )
    .map_err(|e| mapped(e, None))?;
    Ok(User {
        id: old.id,
        name: profile.name.clone(),
        email: profile.email.clone(),
        image: profile.image.clone(),
        email_verified: verified.map(|m| time_of(m, "users")).transpose()?,
        extra: extra_of(Some(&extra), "users")?,
        security_stamp: stamp,
        created_at: old.created_at,
        updated_at: time_of(now, "users")?,
    })
}

/// The stored user, locked for an update of its row.
fn locked(db: &mut Db<'_>, id: &UserId) -> Result<User> {
    db.row(BY_ID_LOCKED, &[&id.0])?
        .map(|row| user_at(&row, 0))
        .transpose()?
        .ok_or(Error::UserNotFound(*id))
}

pub(crate) fn update_user(r: &impl Runner, user: &User) -> Result<User> {
    let profile = NewUser {
        name: user.name.clone(),
        email: user.email.clone(),
        image: user.image.clone(),
        email_verified: user.email_verified,
        extra: user.extra.clone(),
    };
    checked(&profile)?;
    r.write(|db| {
        let old = locked(db, &user.id)?;
        replace(db, &old, &profile)
    })
}

pub(crate) fn patch_user(r: &impl Runner, id: &UserId, patch: &UserPatch) -> Result<User> {
    r.write(|db| {
        let old = locked(db, id)?;
        replace(db, &old, &patch.apply_to(&old))
    })
}

/// Accounts, sessions, the password and authenticators go with the user: `ON DELETE CASCADE`.
pub(crate) fn delete_user(r: &impl Runner, id: &UserId) -> Result<()> {
    r.write(|db| db.exec(DELETE, &[&id.0]).map(drop))
}

/// The hash is computed before the write transaction begins (on [`PgAuthDb`](crate::PgAuthDb)
/// no connection is held meanwhile). Unless configured otherwise, the user's sessions are
/// deleted in the same transaction.
pub(crate) fn set_password(r: &impl Runner, user_id: &UserId, password: &str) -> Result<()> {
    backend::validate_required("password", password, MAX_PASSWORD_LEN)?;
    if r.read(|db| db.row(EXISTS, &[&user_id.0]))?.is_none() {
        return Err(Error::UserNotFound(*user_id));
    }
    let phc = r.cfg().hash_password(password)?;
    r.write(|db| {
        require_user(db, user_id)?;
        let now = db.now();
        db.exec_raw(PUT_PASSWORD, &[&user_id.0, &phc, &now])
            .map_err(|e| mapped(e, Some(user_id)))?;
        if db.cfg.password_change_ends_sessions {
            db.exec(DELETE_SESSIONS, &[&user_id.0])?;
        }
        renew_stamp(db, user_id)
    })
}
