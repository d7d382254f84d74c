//! `AccountStore`: provider accounts, unique by (provider id, provider account id), their
//! secrets sealed with `authdb::backend::seal_account_secret`.

use authdb::backend;
use authdb::{Account, AccountId, EncryptionKey, Error, NewAccount, Result, User, UserId};
use uuid::Uuid;

use crate::db::{
    AccountRow, Runner, account_cols, findable, storable, storable_opt, user_at, user_cols,
};
use crate::error::{PgError, backend as backend_error, mapped};
use crate::ops::users::require_user;

const BY_PROVIDER: &str = concat!(
    "SELECT ",
    account_cols!(),
    " FROM accounts a WHERE a.provider_id = $1 AND a.provider_account_id = $2"
);
const BY_PROVIDER_LOCKED: &str = concat!(
    "SELECT ",
    account_cols!(),
    " FROM accounts a WHERE a.provider_id = $1 AND a.provider_account_id = $2 FOR UPDATE"
);
const BY_USER: &str = concat!(
    "SELECT ",
    account_cols!(),
    " FROM accounts a WHERE a.user_id = $1"
);
const USER_BY_ACCOUNT: &str = concat!(
    "SELECT ",
    user_cols!(),
    " FROM accounts a JOIN users u ON u.id = a.user_id \
     WHERE a.provider_id = $1 AND a.provider_account_id = $2"
);
const INSERT: &str = "INSERT INTO accounts (id, user_id, provider_type, provider_id, \
     provider_account_id, refresh_token, access_token, access_token_expires, token_type, scope, \
     id_token, session_state, extra, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
     ON CONFLICT (provider_id, provider_account_id) DO NOTHING";
const UPDATE: &str = "UPDATE accounts SET provider_type = $2, refresh_token = $3, \
     access_token = $4, access_token_expires = $5, token_type = $6, scope = $7, id_token = $8, \
     session_state = $9, extra = $10, updated_at = $11 WHERE id = $1";
const DELETE_OWNED: &str = "DELETE FROM accounts \
     WHERE provider_id = $1 AND provider_account_id = $2 AND user_id = $3";
const DELETE_RETURNING: &str = concat!(
    "DELETE FROM accounts a WHERE a.provider_id = $1 AND a.provider_account_id = $2 RETURNING ",
    account_cols!()
);

/// How often `link_account` looks again when a concurrent transaction inserted or deleted the
/// same provider account between its read and its insert.
const LINK_ATTEMPTS: usize = 16;

/// Whether storing `a` needs an encryption key.
fn has_secrets(a: &NewAccount) -> bool {
    a.refresh_token.is_some()
        || a.access_token.is_some()
        || a.id_token.is_some()
        || !a.extra.is_empty()
}

fn seal(key: Option<&EncryptionKey>, id: &AccountId, field: &str, v: &str) -> Result<Vec<u8>> {
    backend::seal_account_secret(key.ok_or(Error::EncryptionKeyRequired)?, id, field, v)
}

fn seal_opt(
    key: Option<&EncryptionKey>,
    id: &AccountId,
    field: &str,
    v: Option<&String>,
) -> Result<Option<Vec<u8>>> {
    v.map(|v| seal(key, id, field, v)).transpose()
}

/// The sealed `extra` object, or `None` when it is empty.
fn seal_extra(
    key: Option<&EncryptionKey>,
    id: &AccountId,
    a: &NewAccount,
) -> Result<Option<Vec<u8>>> {
    backend::extra_json("extra", &a.extra)?
        .map(|j| seal(key, id, "extra", &String::from_utf8_lossy(&j)))
        .transpose()
}

/// A new account row for `a`, secrets sealed.
fn new_row(
    key: Option<&EncryptionKey>,
    user_id: &UserId,
    a: &NewAccount,
    now: i64,
) -> Result<AccountRow> {
    let id = AccountId(Uuid::now_v7());
    Ok(AccountRow {
        id,
        user_id: *user_id,
        provider_type: a.provider_type.clone(),
        provider_id: a.provider_id.clone(),
        provider_account_id: a.provider_account_id.clone(),
        refresh_token: seal_opt(key, &id, "refresh_token", a.refresh_token.as_ref())?,
        access_token: seal_opt(key, &id, "access_token", a.access_token.as_ref())?,
        access_token_expires: a.access_token_expires.map(backend::micros),
        token_type: a.token_type.clone(),
        scope: a.scope.clone(),
        id_token: seal_opt(key, &id, "id_token", a.id_token.as_ref())?,
        session_state: a.session_state.clone(),
        extra: seal_extra(key, &id, a)?,
        created_at: now,
        updated_at: now,
    })
}

/// A re-link refreshes the stored row: fields given replace the stored ones, a token given as
/// `None` keeps the stored one (providers such as Google send the refresh token only on first
/// consent), a new access token brings its expiry along, a non-empty `extra` replaces the
/// stored object. (authdb's `tables::accounts::relink`, on this backend's row.)
fn relink(
    key: Option<&EncryptionKey>,
    row: &mut AccountRow,
    a: &NewAccount,
    now: i64,
) -> Result<()> {
    let id = row.id;
    row.provider_type.clone_from(&a.provider_type);
    if let Some(t) = &a.refresh_token {
        row.refresh_token = Some(seal(key, &id, "refresh_token", t)?);
    }
    if let Some(t) = &a.access_token {
        row.access_token = Some(seal(key, &id, "access_token", t)?);
        row.access_token_expires = a.access_token_expires.map(backend::micros);
    }
    if let Some(t) = &a.id_token {
        row.id_token = Some(seal(key, &id, "id_token", t)?);
    }
    if a.token_type.is_some() {
        row.token_type.clone_from(&a.token_type);
    }
    if a.scope.is_some() {
        row.scope.clone_from(&a.scope);
    }
    if a.session_state.is_some() {
        row.session_state.clone_from(&a.session_state);
    }
    if let Some(sealed) = seal_extra(key, &id, a)? {
        row.extra = Some(sealed);
    }
    row.updated_at = now;
    Ok(())
}

/// Whether a provider account could be stored at all (else no lookup is needed).
fn findable_pair(provider_id: &str, provider_account_id: &str) -> bool {
    findable(provider_id) && findable(provider_account_id)
}

pub(crate) fn link_account(r: &impl Runner, user_id: &UserId, a: &NewAccount) -> Result<Account> {
    backend::validate_account(a)?;
    storable("provider_id", &a.provider_id)?;
    storable("provider_account_id", &a.provider_account_id)?;
    storable_opt("token_type", a.token_type.as_ref())?;
    storable_opt("scope", a.scope.as_ref())?;
    storable_opt("session_state", a.session_state.as_ref())?;
    if r.cfg().key.is_none() && has_secrets(a) {
        return Err(Error::EncryptionKeyRequired);
    }
    r.write(|db| {
        let key = db.key();
        require_user(db, user_id)?;
        for _ in 0..LINK_ATTEMPTS {
            let now = db.now();
            if let Some(found) = db.row(
                BY_PROVIDER_LOCKED,
                &[&a.provider_id, &a.provider_account_id],
            )? {
                let mut row = AccountRow::read(&found)?;
                if row.user_id != *user_id {
                    return Err(Error::AccountLinkedToAnotherUser);
                }
                relink(key, &mut row, a, now)?;
                // Everything that can fail for a reason other than the database happens
                // before writing.
                let model = row.to_model(key)?;
                db.exec(
                    UPDATE,
                    &[
                        &row.id.0,
                        &row.provider_type,
                        &row.refresh_token,
                        &row.access_token,
                        &row.access_token_expires,
                        &row.token_type,
                        &row.scope,
                        &row.id_token,
                        &row.session_state,
                        &row.extra,
                        &row.updated_at,
                    ],
                )?;
                return Ok(model);
            }
            let row = new_row(key, user_id, a, now)?;
            let model = row.to_model(key)?;
            let inserted = db
                .exec_raw(
                    INSERT,
                    &[
                        &row.id.0,
                        &row.user_id.0,
                        &row.provider_type,
                        &row.provider_id,
                        &row.provider_account_id,
                        &row.refresh_token,
                        &row.access_token,
                        &row.access_token_expires,
                        &row.token_type,
                        &row.scope,
                        &row.id_token,
                        &row.session_state,
                        &row.extra,
                        &row.created_at,
                        &row.updated_at,
                    ],
                )
                .map_err(|e| mapped(e, Some(user_id)))?;
            if inserted == 1 {
                return Ok(model);
            }
            // A concurrent transaction linked it first (and has committed): look again.
        }
        Err(backend_error(PgError::setup(
            "link_account: the provider account kept changing under concurrent transactions",
        )))
    })
}

pub(crate) fn unlink_account(
    r: &impl Runner,
    user_id: &UserId,
    provider_id: &str,
    provider_account_id: &str,
) -> Result<()> {
    if !findable_pair(provider_id, provider_account_id) {
        return Ok(());
    }
    r.write(|db| {
        db.exec(
            DELETE_OWNED,
            &[&provider_id, &provider_account_id, &user_id.0],
        )
        .map(drop)
    })
}

/// The row is deleted and opened in one transaction: if its secrets do not open (no key, a
/// different key) the error is returned and the row stays.
pub(crate) fn unlink_account_by_provider(
    r: &impl Runner,
    provider_id: &str,
    provider_account_id: &str,
) -> Result<Option<Account>> {
    if !findable_pair(provider_id, provider_account_id) {
        return Ok(None);
    }
    r.write(|db| {
        let key = db.key();
        db.row(DELETE_RETURNING, &[&provider_id, &provider_account_id])?
            .map(|row| AccountRow::read(&row)?.to_model(key))
            .transpose()
    })
}

pub(crate) fn get_account(
    r: &impl Runner,
    provider_id: &str,
    provider_account_id: &str,
) -> Result<Option<Account>> {
    if !findable_pair(provider_id, provider_account_id) {
        return Ok(None);
    }
    r.read(|db| {
        let key = db.key();
        db.row(BY_PROVIDER, &[&provider_id, &provider_account_id])?
            .map(|row| AccountRow::read(&row)?.to_model(key))
            .transpose()
    })
}

pub(crate) fn get_user_by_provider_account_id(
    r: &impl Runner,
    provider_id: &str,
    provider_account_id: &str,
) -> Result<Option<User>> {
    if !findable_pair(provider_id, provider_account_id) {
        return Ok(None);
    }
    r.read(|db| {
        db.row(USER_BY_ACCOUNT, &[&provider_id, &provider_account_id])?
            .map(|row| user_at(&row, 0))
            .transpose()
    })
}

pub(crate) fn list_accounts(r: &impl Runner, user_id: &UserId) -> Result<Vec<Account>> {
    let mut out = r.read(|db| {
        let key = db.key();
        db.rows(BY_USER, &[&user_id.0])?
            .iter()
            .map(|row| AccountRow::read(row)?.to_model(key))
            .collect::<Result<Vec<_>>>()
    })?;
    out.sort_by_key(|a| (a.created_at, a.id));
    Ok(out)
}
