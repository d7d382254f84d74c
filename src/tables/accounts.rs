//! Provider accounts, their unique (provider, provider account id) index and their by-user
//! index. Secrets are sealed here, on the way in, and unsealed on the way out.

use redb::{MultimapTable, ReadableMultimapTable, ReadableTable, ReadableTableMetadata, Table};

use crate::codec::{self, AccountRecord, from_micros, micros, opt_from_micros};
use crate::crypto::{EncryptionKey, account_ad};
use crate::error::{Error, Result};
use crate::integrity::{self, IntegrityProblem, IntegrityReport, id_str};
use crate::model::{Account, AccountId, NewAccount, User, UserId};
use crate::schema::{self, ACCOUNTS_BY_PROVIDER_NAME, ACCOUNTS_BY_USER_NAME, ACCOUNTS_NAME, IdKey};
use crate::source::{Source, id_by, multimap_values};
use crate::tables::users;

/// Seals one secret field of the account `id`.
fn seal(key: Option<&EncryptionKey>, id: &uuid::Uuid, field: &str, v: &str) -> Result<Vec<u8>> {
    key.ok_or(Error::EncryptionKeyRequired)?
        .seal(&account_ad(id.as_bytes(), field), v)
}

fn seal_opt(
    key: Option<&EncryptionKey>,
    id: &uuid::Uuid,
    field: &str,
    v: Option<&String>,
) -> Result<Option<Vec<u8>>> {
    v.map(|v| seal(key, id, field, v)).transpose()
}

fn unseal(
    key: Option<&EncryptionKey>,
    id: &uuid::Uuid,
    field: &str,
    sealed: Option<&Vec<u8>>,
) -> Result<Option<String>> {
    sealed
        .map(|s| {
            key.ok_or(Error::EncryptionKeyRequired)?
                .open(&account_ad(id.as_bytes(), field), s)
        })
        .transpose()
}

/// Whether storing `a` needs an encryption key (it carries a secret).
pub(crate) fn has_secrets(a: &NewAccount) -> bool {
    a.refresh_token.is_some()
        || a.access_token.is_some()
        || a.id_token.is_some()
        || !a.extra.is_empty()
}

/// A new record for `a`, secrets sealed.
pub(crate) fn new_record(
    key: Option<&EncryptionKey>,
    user_id: &UserId,
    a: &NewAccount,
    now: i64,
) -> Result<AccountRecord> {
    let id = AccountId::generate().0;
    let extra = crate::limits::extra("extra", &a.extra)?;
    Ok(AccountRecord {
        id,
        user_id: user_id.0,
        provider_type: a.provider_type.clone(),
        provider_id: a.provider_id.clone(),
        provider_account_id: a.provider_account_id.clone(),
        refresh_token: seal_opt(key, &id, "refresh_token", a.refresh_token.as_ref())?,
        access_token: seal_opt(key, &id, "access_token", a.access_token.as_ref())?,
        access_token_expires: a.access_token_expires.map(micros),
        token_type: a.token_type.clone(),
        scope: a.scope.clone(),
        id_token: seal_opt(key, &id, "id_token", a.id_token.as_ref())?,
        session_state: a.session_state.clone(),
        extra: extra
            .map(|j| seal(key, &id, "extra", &String::from_utf8_lossy(&j)))
            .transpose()?,
        created_at: now,
        updated_at: now,
    })
}

/// Refreshes a stored record from a re-link: fields given replace the stored ones; a token
/// given as `None` keeps the stored one (providers such as Google send the refresh token only
/// on first consent).
pub(crate) fn relink(
    key: Option<&EncryptionKey>,
    rec: &mut AccountRecord,
    a: &NewAccount,
    now: i64,
) -> Result<()> {
    let id = rec.id;
    rec.provider_type.clone_from(&a.provider_type);
    if let Some(t) = &a.refresh_token {
        rec.refresh_token = Some(seal(key, &id, "refresh_token", t)?);
    }
    if let Some(t) = &a.access_token {
        rec.access_token = Some(seal(key, &id, "access_token", t)?);
        rec.access_token_expires = a.access_token_expires.map(micros);
    }
    if let Some(t) = &a.id_token {
        rec.id_token = Some(seal(key, &id, "id_token", t)?);
    }
    if a.token_type.is_some() {
        rec.token_type.clone_from(&a.token_type);
    }
    if a.scope.is_some() {
        rec.scope.clone_from(&a.scope);
    }
    if a.session_state.is_some() {
        rec.session_state.clone_from(&a.session_state);
    }
    if let Some(j) = crate::limits::extra("extra", &a.extra)? {
        rec.extra = Some(seal(key, &id, "extra", &String::from_utf8_lossy(&j))?);
    }
    rec.updated_at = now;
    Ok(())
}

/// The stored record as the public model, secrets unsealed with `key`.
pub(crate) fn to_model(r: &AccountRecord, key: Option<&EncryptionKey>) -> Result<Account> {
    const T: &str = ACCOUNTS_NAME;
    let extra = unseal(key, &r.id, "extra", r.extra.as_ref())?;
    Ok(Account {
        id: AccountId(r.id),
        user_id: UserId(r.user_id),
        provider_type: r.provider_type.clone(),
        provider_id: r.provider_id.clone(),
        provider_account_id: r.provider_account_id.clone(),
        refresh_token: unseal(key, &r.id, "refresh_token", r.refresh_token.as_ref())?,
        access_token: unseal(key, &r.id, "access_token", r.access_token.as_ref())?,
        access_token_expires: opt_from_micros(T, r.access_token_expires)?,
        token_type: r.token_type.clone(),
        scope: r.scope.clone(),
        id_token: unseal(key, &r.id, "id_token", r.id_token.as_ref())?,
        session_state: r.session_state.clone(),
        extra: users::decode_extra(extra.as_deref().map(str::as_bytes))?,
        created_at: from_micros(T, r.created_at)?,
        updated_at: from_micros(T, r.updated_at)?,
    })
}

/// Checks everything `to_model` checks except the sealed fields (which need the key).
fn check_times(r: &AccountRecord) -> Result<()> {
    const T: &str = ACCOUNTS_NAME;
    opt_from_micros(T, r.access_token_expires)?;
    from_micros(T, r.created_at)?;
    from_micros(T, r.updated_at)?;
    Ok(())
}

pub(crate) fn record(
    t: &impl ReadableTable<IdKey, &'static [u8]>,
    id: &IdKey,
) -> Result<Option<AccountRecord>> {
    t.get(id)?.map(|g| codec::decode(id, g.value())).transpose()
}

/// The account `(provider_id, provider_account_id)` as stored.
pub(crate) fn by_provider(
    src: &impl Source,
    provider_id: &str,
    provider_account_id: &str,
) -> Result<Option<AccountRecord>> {
    let Some(aid) = id_by(
        &src.accounts_by_provider()?,
        (provider_id, provider_account_id),
    )?
    else {
        return Ok(None);
    };
    record(&src.accounts()?, &aid)
}

pub(crate) fn get(
    src: &impl Source,
    key: Option<&EncryptionKey>,
    provider_id: &str,
    provider_account_id: &str,
) -> Result<Option<Account>> {
    by_provider(src, provider_id, provider_account_id)?
        .map(|r| to_model(&r, key))
        .transpose()
}

pub(crate) fn user_by_account(
    src: &impl Source,
    provider_id: &str,
    provider_account_id: &str,
) -> Result<Option<User>> {
    let Some(acc) = by_provider(src, provider_id, provider_account_id)? else {
        return Ok(None);
    };
    users::get(src, &UserId(acc.user_id))
}

/// The user's accounts, oldest first, secrets unsealed.
pub(crate) fn list(
    src: &impl Source,
    key: Option<&EncryptionKey>,
    user_id: &UserId,
) -> Result<Vec<Account>> {
    let accounts = src.accounts()?;
    let mut out = Vec::new();
    for aid in multimap_values(&src.accounts_by_user()?, &user_id.to_bytes())? {
        if let Some(rec) = record(&accounts, &aid)? {
            out.push(to_model(&rec, key)?);
        }
    }
    out.sort_by_key(|a| (a.created_at, a.id));
    Ok(out)
}

/// The account table and its two indexes, opened together.
pub(crate) struct AccountTables<'t> {
    rec: Table<'t, IdKey, &'static [u8]>,
    by_provider: Table<'t, (&'static str, &'static str), IdKey>,
    by_user: MultimapTable<'t, IdKey, IdKey>,
}

impl<'t> AccountTables<'t> {
    pub(crate) fn open(txn: &'t redb::WriteTransaction) -> Result<Self> {
        Ok(Self {
            rec: txn.open_table(schema::ACCOUNTS)?,
            by_provider: txn.open_table(schema::ACCOUNTS_BY_PROVIDER)?,
            by_user: txn.open_multimap_table(schema::ACCOUNTS_BY_USER)?,
        })
    }

    /// The stored account with id `aid` (for import, which keeps ids).
    pub(crate) fn get(&self, aid: &IdKey) -> Result<Option<AccountRecord>> {
        record(&self.rec, aid)
    }

    /// The stored account `(provider_id, provider_account_id)`. An index entry naming a
    /// missing record is [`Error::Corrupt`].
    pub(crate) fn find(
        &self,
        provider_id: &str,
        provider_account_id: &str,
    ) -> Result<Option<AccountRecord>> {
        let Some(aid) = id_by(&self.by_provider, (provider_id, provider_account_id))? else {
            return Ok(None);
        };
        record(&self.rec, &aid)?
            .ok_or_else(|| Error::corrupt(ACCOUNTS_NAME, "provider index names a missing account"))
            .map(Some)
    }

    /// Writes a new record with its index entries, or a changed one over itself (a record
    /// never changes user or provider pair).
    pub(crate) fn put(&mut self, rec: &AccountRecord, is_new: bool) -> Result<()> {
        let aid = *rec.id.as_bytes();
        self.rec.insert(aid, codec::encode(&aid, rec)?.as_slice())?;
        if is_new {
            self.by_provider.insert(
                (rec.provider_id.as_str(), rec.provider_account_id.as_str()),
                aid,
            )?;
            self.by_user.insert(rec.user_id.as_bytes(), aid)?;
        }
        Ok(())
    }

    /// Removes the account `aid` with its index entries; returns it.
    pub(crate) fn remove(&mut self, aid: &IdKey) -> Result<Option<AccountRecord>> {
        let Some(rec) = self
            .rec
            .remove(aid)?
            .map(|g| codec::decode::<AccountRecord>(aid, g.value()))
            .transpose()?
        else {
            return Ok(None);
        };
        let pair = (rec.provider_id.as_str(), rec.provider_account_id.as_str());
        if id_by(&self.by_provider, pair)? == Some(*aid) {
            self.by_provider.remove(pair)?;
        }
        self.by_user.remove(rec.user_id.as_bytes(), aid)?;
        Ok(Some(rec))
    }

    /// Removes every account of the user (the cascade of `delete_user`).
    pub(crate) fn remove_all_of(&mut self, user: &IdKey) -> Result<()> {
        for aid in multimap_values(&self.by_user, user)? {
            self.remove(&aid)?;
        }
        self.by_user.remove_all(user)?;
        Ok(())
    }
}

/// Every account against both indexes and back; returns how many accounts there are.
pub(crate) fn check(rtx: &redb::ReadTransaction, p: &mut IntegrityReport) -> Result<u64> {
    let accounts = rtx.accounts()?;
    let by_provider = rtx.accounts_by_provider()?;
    let by_user = rtx.accounts_by_user()?;
    for e in accounts.iter()? {
        let (k, v) = e?;
        let key = k.value();
        let a = match codec::decode::<AccountRecord>(&key, v.value())
            .and_then(|a| check_times(&a).map(|()| a))
        {
            Err(e) => {
                p.push(IntegrityProblem::CorruptRecord {
                    table: ACCOUNTS_NAME,
                    key: id_str(&key),
                    detail: e.to_string(),
                });
                continue;
            }
            Ok(a) => a,
        };
        if *a.id.as_bytes() != key {
            p.push(IntegrityProblem::KeyMismatch {
                table: ACCOUNTS_NAME,
                key: id_str(&key),
            });
        }
        if !integrity::user_exists(rtx, a.user_id.as_bytes())? {
            p.push(IntegrityProblem::MissingUser {
                table: ACCOUNTS_NAME,
                key: id_str(&key),
                user_id: UserId(a.user_id),
            });
        }
        let pair = (a.provider_id.as_str(), a.provider_account_id.as_str());
        if id_by(&by_provider, pair)? != Some(key) {
            p.push(IntegrityProblem::MissingIndexEntry {
                index: ACCOUNTS_BY_PROVIDER_NAME,
                key: id_str(&key),
            });
        }
        if !multimap_values(&by_user, a.user_id.as_bytes())?.contains(&key) {
            p.push(IntegrityProblem::MissingIndexEntry {
                index: ACCOUNTS_BY_USER_NAME,
                key: id_str(&key),
            });
        }
    }
    for e in by_provider.iter()? {
        let (k, v) = e?;
        let (pid, paid) = k.value();
        let ok = record(&accounts, &v.value()).is_ok_and(|a| {
            a.is_some_and(|a| a.provider_id == pid && a.provider_account_id == paid)
        });
        if !ok {
            p.push(IntegrityProblem::StaleIndexEntry {
                index: ACCOUNTS_BY_PROVIDER_NAME,
                key: format!("{pid}:{paid}"),
            });
        }
    }
    for e in by_user.iter()? {
        let (uk, vals) = e?;
        let uid = uk.value();
        for v in vals {
            let aid = v?.value();
            let ok = record(&accounts, &aid)
                .is_ok_and(|a| a.is_some_and(|a| *a.user_id.as_bytes() == uid));
            if !ok {
                p.push(IntegrityProblem::StaleIndexEntry {
                    index: ACCOUNTS_BY_USER_NAME,
                    key: format!("{}:{}", id_str(&uid), id_str(&aid)),
                });
            }
        }
    }
    Ok(accounts.len()?)
}
