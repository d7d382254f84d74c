//! Lookups shared by read transactions and write transactions.
//!
//! Every function takes tables through redb's `ReadableTable` traits, so the same code serves
//! `AuthDb`'s snapshot reads and the reads inside a [`WriteTxn`](crate::WriteTxn).

use redb::{ReadableMultimapTable, ReadableTable};

use crate::codec::{
    self, AccountRecord, CredentialRecord, SessionRecord, UserRecord, VerificationRecord,
};
use crate::crypto::EncryptionKey;
use crate::email::normalize_email;
use crate::error::Result;
use crate::model::{Account, Session, SessionInfo, User, UserId, VerificationRequest};
use crate::schema::{
    self, ACCOUNTS_NAME, CREDENTIALS_NAME, HashKey, IdKey, SESSIONS_NAME, USERS_NAME,
    VERIFICATION_NAME,
};
use crate::token;
use crate::txn::{identifier_matches, is_expired, session_model};

pub(crate) fn user(
    t: &impl ReadableTable<IdKey, &'static [u8]>,
    id: &IdKey,
) -> Result<Option<UserRecord>> {
    t.get(id)?
        .map(|g| codec::decode(USERS_NAME, g.value()))
        .transpose()
}

pub(crate) fn account(
    t: &impl ReadableTable<IdKey, &'static [u8]>,
    id: &IdKey,
) -> Result<Option<AccountRecord>> {
    t.get(id)?
        .map(|g| codec::decode(ACCOUNTS_NAME, g.value()))
        .transpose()
}

pub(crate) fn session(
    t: &impl ReadableTable<HashKey, &'static [u8]>,
    key: &HashKey,
) -> Result<Option<SessionRecord>> {
    t.get(key)?
        .map(|g| codec::decode(SESSIONS_NAME, g.value()))
        .transpose()
}

pub(crate) fn verification(
    t: &impl ReadableTable<HashKey, &'static [u8]>,
    key: &HashKey,
) -> Result<Option<VerificationRecord>> {
    t.get(key)?
        .map(|g| codec::decode(VERIFICATION_NAME, g.value()))
        .transpose()
}

pub(crate) fn credential(
    t: &impl ReadableTable<IdKey, &'static [u8]>,
    id: &IdKey,
) -> Result<Option<CredentialRecord>> {
    t.get(id)?
        .map(|g| codec::decode(CREDENTIALS_NAME, g.value()))
        .transpose()
}

pub(crate) fn id_by<K: redb::Key + 'static>(
    t: &impl ReadableTable<K, IdKey>,
    key: K::SelfType<'_>,
) -> Result<Option<IdKey>> {
    Ok(t.get(key)?.map(|g| g.value()))
}

/// All values of one multimap key, collected (the caller usually goes on to write).
pub(crate) fn multimap_values<const N: usize>(
    t: &impl ReadableMultimapTable<IdKey, [u8; N]>,
    key: &IdKey,
) -> Result<Vec<[u8; N]>> {
    let mut out = Vec::new();
    for v in t.get(key)? {
        out.push(v?.value());
    }
    Ok(out)
}

/// Something tables can be opened from for reading: a redb read or write transaction.
pub(crate) trait Source {
    fn users(&self) -> Result<impl ReadableTable<IdKey, &'static [u8]> + '_>;
    fn users_by_email(&self) -> Result<impl ReadableTable<&'static str, IdKey> + '_>;
    fn accounts(&self) -> Result<impl ReadableTable<IdKey, &'static [u8]> + '_>;
    fn accounts_by_provider(
        &self,
    ) -> Result<impl ReadableTable<(&'static str, &'static str), IdKey> + '_>;
    fn accounts_by_user(&self) -> Result<impl ReadableMultimapTable<IdKey, IdKey> + '_>;
    fn sessions(&self) -> Result<impl ReadableTable<HashKey, &'static [u8]> + '_>;
    fn sessions_by_user(&self) -> Result<impl ReadableMultimapTable<IdKey, HashKey> + '_>;
    fn verification(&self) -> Result<impl ReadableTable<HashKey, &'static [u8]> + '_>;
    fn credentials(&self) -> Result<impl ReadableTable<IdKey, &'static [u8]> + '_>;
}

macro_rules! source_impl {
    ($t:ty) => {
        impl Source for $t {
            fn users(&self) -> Result<impl ReadableTable<IdKey, &'static [u8]> + '_> {
                Ok(self.open_table(schema::USERS)?)
            }
            fn users_by_email(&self) -> Result<impl ReadableTable<&'static str, IdKey> + '_> {
                Ok(self.open_table(schema::USERS_BY_EMAIL)?)
            }
            fn accounts(&self) -> Result<impl ReadableTable<IdKey, &'static [u8]> + '_> {
                Ok(self.open_table(schema::ACCOUNTS)?)
            }
            fn accounts_by_provider(
                &self,
            ) -> Result<impl ReadableTable<(&'static str, &'static str), IdKey> + '_> {
                Ok(self.open_table(schema::ACCOUNTS_BY_PROVIDER)?)
            }
            fn accounts_by_user(&self) -> Result<impl ReadableMultimapTable<IdKey, IdKey> + '_> {
                Ok(self.open_multimap_table(schema::ACCOUNTS_BY_USER)?)
            }
            fn sessions(&self) -> Result<impl ReadableTable<HashKey, &'static [u8]> + '_> {
                Ok(self.open_table(schema::SESSIONS)?)
            }
            fn sessions_by_user(&self) -> Result<impl ReadableMultimapTable<IdKey, HashKey> + '_> {
                Ok(self.open_multimap_table(schema::SESSIONS_BY_USER)?)
            }
            fn verification(&self) -> Result<impl ReadableTable<HashKey, &'static [u8]> + '_> {
                Ok(self.open_table(schema::VERIFICATION)?)
            }
            fn credentials(&self) -> Result<impl ReadableTable<IdKey, &'static [u8]> + '_> {
                Ok(self.open_table(schema::CREDENTIALS)?)
            }
        }
    };
}

source_impl!(redb::ReadTransaction);
source_impl!(redb::WriteTransaction);

pub(crate) fn get_user(src: &impl Source, id: &UserId) -> Result<Option<User>> {
    user(&src.users()?, &id.to_bytes())?
        .map(|r| r.to_model())
        .transpose()
}

pub(crate) fn get_user_by_email(src: &impl Source, email: &str) -> Result<Option<User>> {
    let norm = normalize_email(email);
    if norm.is_empty() {
        return Ok(None);
    }
    let Some(id) = id_by(&src.users_by_email()?, norm.as_str())? else {
        return Ok(None);
    };
    user(&src.users()?, &id)?.map(|r| r.to_model()).transpose()
}

pub(crate) fn get_user_by_provider_account_id(
    src: &impl Source,
    provider_id: &str,
    provider_account_id: &str,
) -> Result<Option<User>> {
    let Some(aid) = id_by(
        &src.accounts_by_provider()?,
        (provider_id, provider_account_id),
    )?
    else {
        return Ok(None);
    };
    let Some(acc) = account(&src.accounts()?, &aid)? else {
        return Ok(None);
    };
    user(&src.users()?, acc.user_id.as_bytes())?
        .map(|r| r.to_model())
        .transpose()
}

/// The user with this email and their stored password hash, if both exist.
pub(crate) fn credential_for_email(
    src: &impl Source,
    email: &str,
) -> Result<Option<(User, String)>> {
    let Some(user) = get_user_by_email(src, email)? else {
        return Ok(None);
    };
    let Some(cred) = credential(&src.credentials()?, &user.id.to_bytes())? else {
        return Ok(None);
    };
    Ok(Some((user, cred.phc)))
}

/// The user's live sessions (expired ones left out), oldest first.
pub(crate) fn list_sessions(
    src: &impl Source,
    user_id: &UserId,
    now: i64,
) -> Result<Vec<SessionInfo>> {
    let sessions = src.sessions()?;
    let mut out = Vec::new();
    for key in multimap_values(&src.sessions_by_user()?, &user_id.to_bytes())? {
        if let Some(rec) = session(&sessions, &key)?
            && !is_expired(now, rec.expires)
        {
            out.push(rec.to_info()?);
        }
    }
    out.sort_by_key(|s| (s.created_at, s.id));
    Ok(out)
}

/// The user's linked accounts, oldest first, tokens decrypted with `key`.
pub(crate) fn list_accounts(
    src: &impl Source,
    key: Option<&EncryptionKey>,
    user_id: &UserId,
) -> Result<Vec<Account>> {
    let accounts = src.accounts()?;
    let mut out = Vec::new();
    for aid in multimap_values(&src.accounts_by_user()?, &user_id.to_bytes())? {
        if let Some(rec) = account(&accounts, &aid)? {
            out.push(rec.to_model(key)?);
        }
    }
    out.sort_by_key(|a| (a.created_at, a.id));
    Ok(out)
}

/// The account `(provider_id, provider_account_id)`, tokens decrypted with `key`.
pub(crate) fn get_account(
    src: &impl Source,
    key: Option<&EncryptionKey>,
    provider_id: &str,
    provider_account_id: &str,
) -> Result<Option<Account>> {
    let Some(aid) = id_by(
        &src.accounts_by_provider()?,
        (provider_id, provider_account_id),
    )?
    else {
        return Ok(None);
    };
    account(&src.accounts()?, &aid)?
        .map(|r| r.to_model(key))
        .transpose()
}

/// What a lookup by token found.
pub(crate) enum Lookup<T> {
    /// Nothing matches.
    Missing,
    /// A match that has expired (the caller deletes it when it may write).
    Expired,
    /// A live match.
    Live(T),
}

/// The session for `session_token` at `now`.
pub(crate) fn find_session(
    src: &impl Source,
    session_token: &str,
    now: i64,
) -> Result<Lookup<Session>> {
    Ok(
        match session(&src.sessions()?, &token::session_key(session_token))? {
            None => Lookup::Missing,
            Some(rec) if is_expired(now, rec.expires) => Lookup::Expired,
            Some(rec) => Lookup::Live(session_model(&rec, session_token)?),
        },
    )
}

/// The verification request matching identifier (normalized) and `hash(token + secret)`.
pub(crate) fn find_verification(
    src: &impl Source,
    identifier: &str,
    token: &str,
    secret: &str,
    now: i64,
) -> Result<Lookup<VerificationRequest>> {
    let key = token::verification_key(token, secret);
    Ok(match verification(&src.verification()?, &key)? {
        Some(rec) if identifier_matches(&rec.identifier, identifier) => {
            if is_expired(now, rec.expires) {
                Lookup::Expired
            } else {
                Lookup::Live(rec.to_model(&key)?)
            }
        }
        _ => Lookup::Missing,
    })
}
