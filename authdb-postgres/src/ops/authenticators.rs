//! `AuthenticatorStore`: WebAuthn authenticators, keyed by credential id.

use authdb::backend;
use authdb::{Authenticator, Error, NewAuthenticator, Result, UserId};

use crate::db::{
    Runner, authenticator_cols, authenticator_of, col, findable, storable, storable_opt, time_of,
};
use crate::error::mapped;
use crate::ops::users::require_user;

const INSERT: &str = "INSERT INTO authenticators (credential_id, user_id, provider_account_id, \
     credential_public_key, counter, credential_device_type, credential_backed_up, transports, \
     created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) \
     ON CONFLICT (credential_id) DO NOTHING";
const BY_ID: &str = concat!(
    "SELECT ",
    authenticator_cols!(),
    " FROM authenticators t WHERE t.credential_id = $1"
);
const BY_ID_LOCKED: &str = concat!(
    "SELECT ",
    authenticator_cols!(),
    " FROM authenticators t WHERE t.credential_id = $1 FOR UPDATE"
);
const BY_USER: &str = concat!(
    "SELECT ",
    authenticator_cols!(),
    " FROM authenticators t WHERE t.user_id = $1"
);
const SET_COUNTER: &str =
    "UPDATE authenticators SET counter = $2, updated_at = $3 WHERE credential_id = $1";

pub(crate) fn create_authenticator(r: &impl Runner, a: &NewAuthenticator) -> Result<Authenticator> {
    backend::validate_authenticator(a)?;
    storable("credential_id", &a.credential_id)?;
    storable("provider_account_id", &a.provider_account_id)?;
    storable("credential_public_key", &a.credential_public_key)?;
    storable("credential_device_type", &a.credential_device_type)?;
    storable_opt("transports", a.transports.as_ref())?;
    // The u64 counter is stored as its bits in a bigint (see the column comment).
    let counter = a.counter.cast_signed();
    r.write(|db| {
        require_user(db, &a.user_id)?;
        let now = db.now();
        let n = db
            .exec_raw(
                INSERT,
                &[
                    &a.credential_id,
                    &a.user_id.0,
                    &a.provider_account_id,
                    &a.credential_public_key,
                    &counter,
                    &a.credential_device_type,
                    &a.credential_backed_up,
                    &a.transports,
                    &now,
                ],
            )
            .map_err(|e| mapped(e, Some(&a.user_id)))?;
        if n == 0 {
            return Err(Error::AuthenticatorTaken);
        }
        Ok(Authenticator {
            credential_id: a.credential_id.clone(),
            user_id: a.user_id,
            provider_account_id: a.provider_account_id.clone(),
            credential_public_key: a.credential_public_key.clone(),
            counter: a.counter,
            credential_device_type: a.credential_device_type.clone(),
            credential_backed_up: a.credential_backed_up,
            transports: a.transports.clone(),
            created_at: time_of(now, "authenticators")?,
            updated_at: time_of(now, "authenticators")?,
        })
    })
}

pub(crate) fn get_authenticator(
    r: &impl Runner,
    credential_id: &str,
) -> Result<Option<Authenticator>> {
    if !findable(credential_id) {
        return Ok(None);
    }
    r.read(|db| {
        db.row(BY_ID, &[&credential_id])?
            .map(|row| authenticator_of(&row))
            .transpose()
    })
}

pub(crate) fn list_authenticators(r: &impl Runner, user_id: &UserId) -> Result<Vec<Authenticator>> {
    let mut out = r.read(|db| {
        db.rows(BY_USER, &[&user_id.0])?
            .iter()
            .map(authenticator_of)
            .collect::<Result<Vec<_>>>()
    })?;
    out.sort_by(|a, b| (a.created_at, &a.credential_id).cmp(&(b.created_at, &b.credential_id)));
    Ok(out)
}

/// The row is locked while the counter rule (`authdb::backend::counter_may_advance`) is
/// decided, so concurrent assertions are decided one after the other.
pub(crate) fn update_authenticator_counter(
    r: &impl Runner,
    credential_id: &str,
    counter: u64,
) -> Result<Authenticator> {
    if !findable(credential_id) {
        return Err(Error::AuthenticatorNotFound);
    }
    r.write(|db| {
        let row = db
            .row(BY_ID_LOCKED, &[&credential_id])?
            .ok_or(Error::AuthenticatorNotFound)?;
        let stored = col::<i64>(&row, 4, "authenticators")?.cast_unsigned();
        if !backend::counter_may_advance(stored, counter) {
            return Err(Error::CounterNotIncreased {
                stored,
                given: counter,
            });
        }
        let mut a = authenticator_of(&row)?;
        let now = db.now();
        db.exec(SET_COUNTER, &[&credential_id, &counter.cast_signed(), &now])?;
        a.counter = counter;
        a.updated_at = time_of(now, "authenticators")?;
        Ok(a)
    })
}
