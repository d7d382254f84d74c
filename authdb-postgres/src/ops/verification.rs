//! `VerificationStore`: email sign-in links (v3 requests and Auth.js tokens in one table),
//! keyed by their 32-byte hash, matched together with the normalized identifier, single use
//! through `DELETE … RETURNING`. Raw tokens meet authdb's entropy floor unless short codes are
//! allowed; then failed lookups are counted per identifier (`verification_attempts`), with the
//! counting rule of `authdb::backend`.

use authdb::backend;
use authdb::limits::{MAX_TOKEN_LEN, MAX_URL_LEN};
use authdb::{
    EmailProvider, Error, InputProblem, Result, VerificationMail, VerificationRequest,
    VerificationRequestId, VerificationToken, normalize_email,
};
use postgres::Row;
use uuid::Uuid;

use crate::db::{Db, Runner, add_micros, col, findable, time, time_of};

/// Stores a link, replacing an expired one with the same hash (atomically: the row lock taken
/// by `ON CONFLICT` makes concurrent creators of one hash see each other). Changes no row when a
/// live link has the hash.
const PUT_UNLESS_LIVE: &str = "INSERT INTO verification_tokens AS v (token_hash, id, identifier, \
     identifier_key, expires, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6) \
     ON CONFLICT (token_hash) DO UPDATE SET id = EXCLUDED.id, identifier = EXCLUDED.identifier, \
     identifier_key = EXCLUDED.identifier_key, expires = EXCLUDED.expires, \
     created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at \
     WHERE v.expires < $6";
const FIND: &str = "SELECT id, identifier, expires, created_at, updated_at \
     FROM verification_tokens WHERE token_hash = $1 AND identifier_key = $2";
const DELETE_IF_EXPIRED: &str = "DELETE FROM verification_tokens \
     WHERE token_hash = $1 AND identifier_key = $2 AND expires < $3";
const TAKE: &str = "DELETE FROM verification_tokens WHERE token_hash = $1 AND identifier_key = $2 \
     RETURNING id, identifier, expires, created_at, updated_at";
/// The stored email of the account an address is the key of.
const ACCOUNT_EMAIL: &str = "SELECT email FROM users WHERE email_key = $1";
const DELETE_IF_ID: &str = "DELETE FROM verification_tokens WHERE token_hash = $1 AND id = $2";
/// Locks every link of an identifier (so concurrent failed attempts for it are counted one
/// after the other); returns a row when it has any.
const LOCK_LINKS_OF: &str =
    "SELECT 1 FROM verification_tokens WHERE identifier_key = $1 FOR UPDATE";
const ATTEMPTS: &str =
    "SELECT failures, window_start FROM verification_attempts WHERE identifier_hash = $1";
const PUT_ATTEMPTS: &str = "INSERT INTO verification_attempts (identifier_hash, failures, \
     window_start) VALUES ($1, $2, $3) ON CONFLICT (identifier_hash) DO UPDATE \
     SET failures = EXCLUDED.failures, window_start = EXCLUDED.window_start";
const CLEAR_ATTEMPTS: &str = "DELETE FROM verification_attempts WHERE identifier_hash = $1";
const BURN_LINKS_OF: &str = "DELETE FROM verification_tokens WHERE identifier_key = $1";

const T: &str = "verification_tokens";

/// The request of a row (`id, identifier, expires, created_at, updated_at`) under `key`.
fn request_of(row: &Row, key: &[u8; 32]) -> Result<VerificationRequest> {
    Ok(VerificationRequest {
        id: VerificationRequestId(col(row, 0, T)?),
        identifier: col(row, 1, T)?,
        token: backend::hex(key),
        expires: time(row, 2, T)?,
        created_at: time(row, 3, T)?,
        updated_at: time(row, 4, T)?,
    })
}

/// What a lookup of a link found, for the attempt count.
enum Found {
    Missing,
    Expired,
    Live,
}

/// Books a lookup's outcome when short tokens are allowed (else nothing is counted), inside
/// the lookup's transaction: a miss for an identifier with links counts a failure (the limit
/// deletes every link of it), a live match forgets the failures.
fn book_attempt(db: &mut Db<'_>, ident: &str, found: &Found) -> Result<()> {
    let Some(max) = db.cfg.max_failed_verifications else {
        return Ok(());
    };
    let hash = backend::verification_identifier_key(ident);
    let hash = hash.as_slice();
    match found {
        Found::Missing => {
            if db.rows(LOCK_LINKS_OF, &[&ident])?.is_empty() {
                return Ok(());
            }
            let stored = db
                .row(ATTEMPTS, &[&hash])?
                .map(|row| -> Result<(u32, i64)> {
                    let failures: i32 = col(&row, 0, ATTEMPTS_T)?;
                    let start: i64 = col(&row, 1, ATTEMPTS_T)?;
                    Ok((failures.unsigned_abs(), start))
                })
                .transpose()?;
            if let Some((failures, start)) = backend::next_failed_attempt(stored, db.now(), max) {
                let failures = i32::try_from(failures).unwrap_or(i32::MAX);
                db.exec(PUT_ATTEMPTS, &[&hash, &failures, &start])?;
            } else {
                db.exec(BURN_LINKS_OF, &[&ident])?;
                db.exec(CLEAR_ATTEMPTS, &[&hash])?;
            }
        }
        Found::Live => {
            db.exec(CLEAR_ATTEMPTS, &[&hash])?;
        }
        Found::Expired => {}
    }
    Ok(())
}

const ATTEMPTS_T: &str = "verification_attempts";

/// Whether a lookup by this raw token may find anything (authdb's rule).
fn token_findable(r: &impl Runner, token: &str) -> bool {
    backend::verification_token_findable(token, r.cfg().short_tokens_allowed())
}

/// The normalized identifier to match, or `None` when it can match nothing.
fn match_key(identifier: &str) -> Option<String> {
    let k = normalize_email(identifier);
    (!k.is_empty() && findable(&k)).then_some(k)
}

/// Stores a link; [`Error::VerificationTokenTaken`] when a live one has the hash.
fn put(
    db: &mut Db<'_>,
    key: &[u8; 32],
    id: Uuid,
    identifier: &str,
    identifier_key: &str,
    expires: i64,
    now: i64,
) -> Result<()> {
    let n = db.exec(
        PUT_UNLESS_LIVE,
        &[
            &key.as_slice(),
            &id,
            &identifier,
            &identifier_key,
            &expires,
            &now,
        ],
    )?;
    if n == 0 {
        return Err(Error::VerificationTokenTaken);
    }
    Ok(())
}

/// Inserts a v3 verification request without sending anything. Returns it, its key and the
/// address to mail the link to: the email of the account the identifier names (as that
/// account stores it), or, for an address no account has yet, the normalized identifier —
/// never a look-alike as typed (`\u{212A}evin@x.io` is mailed to `kevin@x.io`).
fn insert_request(
    r: &impl Runner,
    identifier: &str,
    url: &str,
    token: &str,
    secret: &str,
    provider: &EmailProvider,
) -> Result<(VerificationRequest, [u8; 32], String)> {
    let identifier_key = backend::validate_email("identifier", identifier)?;
    backend::validate_required("url", url, MAX_URL_LEN)?;
    backend::validate_verification_token("token", token, r.cfg().short_tokens_allowed())?;
    backend::validate_required("secret", secret, MAX_TOKEN_LEN)?;
    let max_age = provider
        .link_max_age()
        .num_microseconds()
        .ok_or(Error::InvalidInput {
            field: "provider.max_age",
            problem: InputProblem::OutOfRange,
        })?;
    if max_age <= 0 {
        return Err(Error::InvalidInput {
            field: "provider.max_age",
            problem: InputProblem::NotPositive,
        });
    }
    let key = backend::verification_request_key(token, secret);
    let id = VerificationRequestId(Uuid::now_v7());
    r.write(|db| {
        let now = db.now();
        let expires = add_micros("expires", now, max_age)?;
        put(db, &key, id.0, identifier, &identifier_key, expires, now)?;
        let recipient = db
            .row(ACCOUNT_EMAIL, &[&identifier_key])?
            .map(|row| col::<Option<String>>(&row, 0, "users"))
            .transpose()?
            .flatten()
            .unwrap_or_else(|| identifier_key.clone());
        let req = VerificationRequest {
            id,
            identifier: identifier.to_owned(),
            token: backend::hex(&key),
            expires: time_of(expires, T)?,
            created_at: time_of(now, T)?,
            updated_at: time_of(now, T)?,
        };
        Ok((req, key, recipient))
    })
}

/// Committed first on [`PgAuthDb`](crate::PgAuthDb) (so the link works the moment it
/// arrives), then sent with no connection held; inside a [`PgTx`](crate::PgTx) the sender runs
/// before the transaction commits. On a sender failure the request is removed again.
pub(crate) fn create_verification_request(
    r: &impl Runner,
    identifier: &str,
    url: &str,
    token: &str,
    secret: &str,
    provider: &EmailProvider,
) -> Result<VerificationRequest> {
    let (req, key, recipient) = insert_request(r, identifier, url, token, secret, provider)?;
    let mail = VerificationMail {
        identifier: &recipient,
        url,
        token,
        provider,
    };
    if let Err(e) = provider.send(&mail) {
        r.write(|db| {
            db.exec(DELETE_IF_ID, &[&key.as_slice(), &req.id.0])
                .map(drop)
        })?;
        return Err(Error::SendFailed(e));
    }
    Ok(req)
}

pub(crate) fn get_verification_request(
    r: &impl Runner,
    identifier: &str,
    token: &str,
    secret: &str,
) -> Result<Option<VerificationRequest>> {
    let Some(ident) = match_key(identifier) else {
        return Ok(None);
    };
    if !token_findable(r, token) {
        return Ok(None);
    }
    let key = backend::verification_request_key(token, secret);
    if r.cfg().short_tokens_allowed() {
        // Every lookup books its outcome, in the lookup's transaction.
        return r.write(|db| {
            let now = db.now();
            let found = db
                .row(FIND, &[&key.as_slice(), &ident])?
                .map(|row| request_of(&row, &key))
                .transpose()?;
            let outcome = match &found {
                None => Found::Missing,
                Some(req) if now > backend::micros(req.expires) => Found::Expired,
                Some(_) => Found::Live,
            };
            book_attempt(db, &ident, &outcome)?;
            if let Found::Expired = outcome {
                db.exec(DELETE_IF_EXPIRED, &[&key.as_slice(), &ident, &now])?;
                return Ok(None);
            }
            Ok(found)
        });
    }
    let now = r.cfg().now_micros();
    let found = r.read(|db| {
        db.row(FIND, &[&key.as_slice(), &ident])?
            .map(|row| request_of(&row, &key))
            .transpose()
    })?;
    match found {
        Some(req) if now > backend::micros(req.expires) => {
            r.write(|db| {
                db.exec(DELETE_IF_EXPIRED, &[&key.as_slice(), &ident, &now])
                    .map(drop)
            })?;
            Ok(None)
        }
        found => Ok(found),
    }
}

/// Single use: the matching row is deleted by one statement, which returns it; of concurrent
/// callers only the one whose `DELETE` removed the row gets it. With `count`, the outcome is
/// booked as an attempt in the same transaction.
fn take(r: &impl Runner, key: &[u8; 32], ident: &str, count: bool) -> Result<Option<(Row, bool)>> {
    r.write(|db| {
        let now = db.now();
        let Some(row) = db.row(TAKE, &[&key.as_slice(), &ident])? else {
            if count {
                book_attempt(db, ident, &Found::Missing)?;
            }
            return Ok(None);
        };
        let expires: i64 = col(&row, 2, T)?;
        let expired = now > expires;
        if count {
            book_attempt(
                db,
                ident,
                if expired {
                    &Found::Expired
                } else {
                    &Found::Live
                },
            )?;
        }
        Ok(Some((row, expired)))
    })
}

pub(crate) fn delete_verification_request(
    r: &impl Runner,
    identifier: &str,
    token: &str,
    secret: &str,
) -> Result<()> {
    let Some(ident) = match_key(identifier) else {
        return Ok(());
    };
    if !token_findable(r, token) {
        return Ok(());
    }
    let key = backend::verification_request_key(token, secret);
    take(r, &key, &ident, false).map(drop)
}

pub(crate) fn use_verification_request(
    r: &impl Runner,
    identifier: &str,
    token: &str,
    secret: &str,
) -> Result<Option<VerificationRequest>> {
    let Some(ident) = match_key(identifier) else {
        return Ok(None);
    };
    if !token_findable(r, token) {
        return Ok(None);
    }
    let key = backend::verification_request_key(token, secret);
    match take(r, &key, &ident, true)? {
        Some((row, false)) => request_of(&row, &key).map(Some),
        _ => Ok(None),
    }
}

pub(crate) fn create_verification_token(
    r: &impl Runner,
    t: &VerificationToken,
) -> Result<VerificationToken> {
    let identifier_key = backend::validate_email("identifier", &t.identifier)?;
    backend::validate_verification_token("token", &t.token, r.cfg().short_tokens_allowed())?;
    let key = backend::verification_token_key(&t.token);
    let expires = backend::micros(t.expires);
    let id = Uuid::now_v7();
    r.write(|db| {
        let now = db.now();
        put(db, &key, id, &t.identifier, &identifier_key, expires, now)?;
        Ok(VerificationToken {
            identifier: t.identifier.clone(),
            token: t.token.clone(),
            expires: time_of(expires, T)?,
        })
    })
}

pub(crate) fn use_verification_token(
    r: &impl Runner,
    identifier: &str,
    token_hash: &str,
) -> Result<Option<VerificationToken>> {
    let Some(ident) = match_key(identifier) else {
        return Ok(None);
    };
    if !token_findable(r, token_hash) {
        return Ok(None);
    }
    let key = backend::verification_token_key(token_hash);
    match take(r, &key, &ident, true)? {
        Some((row, false)) => Ok(Some(VerificationToken {
            identifier: col(&row, 1, T)?,
            token: token_hash.to_owned(),
            expires: time(&row, 2, T)?,
        })),
        _ => Ok(None),
    }
}
