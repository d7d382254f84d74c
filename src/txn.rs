//! `WriteTxn`: every operation inside one redb write transaction.

use chrono::{DateTime, Utc};
use redb::{ReadableTable, Table};

use crate::adapter::Adapter;
use crate::codec::{
    self, AccountRecord, CredentialRecord, SessionRecord, UserRecord, VerificationRecord, micros,
};
use crate::db::Config;
use crate::email::{EmailProvider, VerificationMail, normalize_email};
use crate::error::{Error, InputProblem, Result};
use crate::limits::{self, MAX_PASSWORD_LEN, MAX_TOKEN_LEN, MAX_URL_LEN};
use crate::model::{
    Account, AccountId, Credentials, NewAccount, NewUser, Session, SessionId, SessionInfo, User,
    UserId, VerificationRequest, VerificationRequestId,
};
use crate::read::{self, Lookup};
use crate::schema::{
    ACCOUNTS, ACCOUNTS_BY_PROVIDER, ACCOUNTS_BY_USER, ACCOUNTS_NAME, CREDENTIALS, CREDENTIALS_NAME,
    HashKey, IdKey, SESSIONS, SESSIONS_BY_EXPIRY, SESSIONS_BY_USER, SESSIONS_NAME, USERS,
    USERS_BY_EMAIL, USERS_NAME, VERIFICATION, VERIFICATION_BY_EXPIRY, VERIFICATION_NAME,
};
use crate::token;

/// One write transaction with every authdb operation on it.
///
/// Get one from [`AuthDb::write`](crate::AuthDb::write) (commits when the closure returns `Ok`)
/// or [`AuthDb::begin_write`](crate::AuthDb::begin_write) (commit with [`WriteTxn::commit`]).
/// Dropping it without committing aborts it: nothing it did is kept. Only one write transaction
/// is open at a time per database; others wait for it, so keep it short.
///
/// The 16 adapter operations come from the [`Adapter`] trait (`use authdb::Adapter;`), with the
/// same semantics as on [`AuthDb`](crate::AuthDb); reads see this transaction's own writes.
pub struct WriteTxn<'db> {
    txn: redb::WriteTransaction,
    cfg: &'db Config,
}

impl std::fmt::Debug for WriteTxn<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteTxn").finish_non_exhaustive()
    }
}

/// The three tables of sessions, opened together so that a record and its index entries are
/// always written together.
struct SessionTables<'t> {
    rec: Table<'t, HashKey, &'static [u8]>,
    by_user: redb::MultimapTable<'t, IdKey, HashKey>,
    by_expiry: Table<'t, (i64, HashKey), ()>,
}

impl<'t> SessionTables<'t> {
    fn open(txn: &'t redb::WriteTransaction) -> Result<Self> {
        Ok(Self {
            rec: txn.open_table(SESSIONS)?,
            by_user: txn.open_multimap_table(SESSIONS_BY_USER)?,
            by_expiry: txn.open_table(SESSIONS_BY_EXPIRY)?,
        })
    }

    /// Writes `rec` under `key`; `old` is the record it replaces. Index entries are written
    /// only when they change: an update that keeps the expiry (`update_session` with `force`)
    /// touches one B-tree, not three.
    fn put(
        &mut self,
        key: &HashKey,
        rec: &SessionRecord,
        old: Option<&SessionRecord>,
    ) -> Result<()> {
        self.rec
            .insert(key, codec::encode(SESSIONS_NAME, rec)?.as_slice())?;
        match old {
            // A session never changes user; only its expiry entry can move.
            Some(old) if old.user_id == rec.user_id => {
                if old.expires != rec.expires {
                    self.by_expiry.remove((old.expires, *key))?;
                    self.by_expiry.insert((rec.expires, *key), ())?;
                }
            }
            _ => {
                if let Some(old) = old {
                    self.by_user.remove(old.user_id.as_bytes(), key)?;
                    self.by_expiry.remove((old.expires, *key))?;
                }
                self.by_user.insert(rec.user_id.as_bytes(), key)?;
                self.by_expiry.insert((rec.expires, *key), ())?;
            }
        }
        Ok(())
    }

    /// Removes the session under `key` with its index entries; returns it. A damaged record is
    /// removed too (returning `None`, as for a missing one): its index entries cannot be known,
    /// and are cleaned up when met (by `purge_expired`, `delete_sessions`, `delete_user`).
    fn remove(&mut self, key: &HashKey) -> Result<Option<SessionRecord>> {
        let Some(Ok(rec)) = self
            .rec
            .remove(key)?
            .map(|g| codec::decode::<SessionRecord>(SESSIONS_NAME, g.value()))
        else {
            return Ok(None);
        };
        self.by_user.remove(rec.user_id.as_bytes(), key)?;
        self.by_expiry.remove((rec.expires, *key))?;
        Ok(Some(rec))
    }
}

struct VerificationTables<'t> {
    rec: Table<'t, HashKey, &'static [u8]>,
    by_expiry: Table<'t, (i64, HashKey), ()>,
}

impl<'t> VerificationTables<'t> {
    fn open(txn: &'t redb::WriteTransaction) -> Result<Self> {
        Ok(Self {
            rec: txn.open_table(VERIFICATION)?,
            by_expiry: txn.open_table(VERIFICATION_BY_EXPIRY)?,
        })
    }

    fn put(&mut self, key: &HashKey, rec: &VerificationRecord) -> Result<()> {
        self.rec
            .insert(key, codec::encode(VERIFICATION_NAME, rec)?.as_slice())?;
        self.by_expiry.insert((rec.expires, *key), ())?;
        Ok(())
    }

    /// Removes the request under `key` with its expiry entry; a damaged record is removed too
    /// (returning `None`); its expiry entry is cleaned up by `purge_expired`.
    fn remove(&mut self, key: &HashKey) -> Result<Option<VerificationRecord>> {
        let Some(Ok(rec)) = self
            .rec
            .remove(key)?
            .map(|g| codec::decode::<VerificationRecord>(VERIFICATION_NAME, g.value()))
        else {
            return Ok(None);
        };
        self.by_expiry.remove((rec.expires, *key))?;
        Ok(Some(rec))
    }
}

/// `true` if a record expiring at `expires` is expired at `now` (strictly later).
pub(crate) fn is_expired(now: i64, expires: i64) -> bool {
    now > expires
}

/// `identifier` names the same address as the stored one (both normalized).
pub(crate) fn identifier_matches(stored: &str, given: &str) -> bool {
    let given = normalize_email(given);
    !given.is_empty() && normalize_email(stored) == given
}

pub(crate) fn session_model(rec: &SessionRecord, session_token: &str) -> Result<Session> {
    let info = rec.to_info()?;
    Ok(Session {
        id: info.id,
        user_id: info.user_id,
        expires: info.expires,
        session_token: session_token.to_owned(),
        access_token: token::session_access_token(session_token),
        created_at: info.created_at,
        updated_at: info.updated_at,
    })
}

fn add_micros(field: &'static str, a: i64, b: i64) -> Result<i64> {
    a.checked_add(b)
        .filter(|t| DateTime::<Utc>::from_timestamp_micros(*t).is_some())
        .ok_or(Error::invalid(field, InputProblem::OutOfRange))
}

/// The work `update_session` would do on a stored session, decided without writing.
pub(crate) enum SessionUpdate {
    /// Missing or expired: return `None` (an expired record is deleted).
    Gone { expired: bool },
    /// Not due and not forced: return `None`, write nothing.
    NotDue,
    /// Write with this expiry (moved or unchanged).
    Write { expires: i64 },
}

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
    // due = expires - max_age + update_age: when the session was last created or extended,
    // plus the update age. Saturating: a far-future `expires` simply means "not due".
    let due = rec
        .expires
        .saturating_sub(cfg.max_age_micros)
        .saturating_add(cfg.update_age_micros);
    if now > due {
        Ok(SessionUpdate::Write {
            expires: add_micros("expires", now, cfg.max_age_micros)?,
        })
    } else if force {
        Ok(SessionUpdate::Write {
            expires: rec.expires,
        })
    } else {
        Ok(SessionUpdate::NotDue)
    }
}

impl<'db> WriteTxn<'db> {
    pub(crate) fn begin(db: &redb::Database, cfg: &'db Config) -> Result<Self> {
        let mut txn = db.begin_write()?;
        txn.set_durability(cfg.durability.to_redb())?;
        Ok(Self { txn, cfg })
    }

    /// Commits every change made in this transaction, atomically. With durable commits (the
    /// default) the data is on disk when this returns.
    pub fn commit(self) -> Result<()> {
        self.txn.commit()?;
        Ok(())
    }

    /// Discards every change made in this transaction (the same as dropping it).
    pub fn abort(self) -> Result<()> {
        self.txn.abort()?;
        Ok(())
    }

    fn now_micros(&self) -> i64 {
        self.cfg.now_micros()
    }

    fn require_user(&self, user_id: &UserId) -> Result<UserRecord> {
        let users = self.txn.open_table(USERS)?;
        read::user(&users, &user_id.to_bytes())?.ok_or(Error::UserNotFound(*user_id))
    }

    /// Stores an already computed argon2id PHC string as `user_id`'s password.
    pub(crate) fn store_password_hash(&self, user_id: &UserId, phc: &str) -> Result<()> {
        self.require_user(user_id)?;
        let rec = CredentialRecord {
            phc: phc.to_owned(),
            updated_at: self.now_micros(),
        };
        let mut creds = self.txn.open_table(CREDENTIALS)?;
        creds.insert(
            user_id.to_bytes(),
            codec::encode(CREDENTIALS_NAME, &rec)?.as_slice(),
        )?;
        Ok(())
    }

    /// Sets (or replaces) a user's password, stored as an argon2id hash.
    ///
    /// The password must be 1 to [`MAX_PASSWORD_LEN`] bytes. Hashing takes tens of
    /// milliseconds and runs while this transaction holds the write lock;
    /// [`AuthDb::set_password`](crate::AuthDb::set_password) hashes before taking it.
    pub fn set_password(&self, user_id: &UserId, password: &str) -> Result<()> {
        limits::required("password", password, MAX_PASSWORD_LEN)?;
        self.require_user(user_id)?;
        let phc = self.cfg.password.hash(password)?;
        self.store_password_hash(user_id, &phc)
    }

    /// Inserts a verification request without sending anything. Returns it and its key.
    pub(crate) fn insert_verification_request(
        &self,
        identifier: &str,
        url: &str,
        raw_token: &str,
        secret: &str,
        provider: &EmailProvider,
    ) -> Result<(VerificationRequest, HashKey)> {
        limits::email("identifier", identifier)?;
        limits::required("url", url, MAX_URL_LEN)?;
        limits::required("token", raw_token, MAX_TOKEN_LEN)?;
        limits::required("secret", secret, MAX_TOKEN_LEN)?;
        let max_age = provider
            .link_max_age()
            .num_microseconds()
            .ok_or(Error::invalid("provider.max_age", InputProblem::OutOfRange))?;
        if max_age <= 0 {
            return Err(Error::invalid(
                "provider.max_age",
                InputProblem::NotPositive,
            ));
        }
        let now = self.now_micros();
        let expires = add_micros("expires", now, max_age)?;
        let key = token::verification_key(raw_token, secret);
        let mut vt = VerificationTables::open(&self.txn)?;
        if let Some(existing) = read::verification(&vt.rec, &key)? {
            if !is_expired(now, existing.expires) {
                return Err(Error::VerificationTokenTaken);
            }
            vt.remove(&key)?;
        }
        let rec = VerificationRecord {
            id: VerificationRequestId::generate().0,
            identifier: identifier.to_owned(),
            expires,
            created_at: now,
            updated_at: now,
        };
        vt.put(&key, &rec)?;
        Ok((rec.to_model(&key)?, key))
    }

    /// Removes the verification request under `key` if it is still the one with `id`.
    pub(crate) fn remove_verification_if(
        &self,
        key: &HashKey,
        id: VerificationRequestId,
    ) -> Result<()> {
        let mut vt = VerificationTables::open(&self.txn)?;
        if read::verification(&vt.rec, key)?.is_some_and(|r| r.id == id.0) {
            vt.remove(key)?;
        }
        Ok(())
    }

    /// Finds, checks and deletes a verification request in this transaction: the single-use
    /// form of `get_verification_request` + `delete_verification_request`.
    ///
    /// Returns the request if it matched the identifier (normalized) and hash and had not
    /// expired. A matching request is deleted whether or not it had expired, so a link works
    /// at most once.
    pub fn use_verification_request(
        &self,
        identifier: &str,
        token: &str,
        secret: &str,
    ) -> Result<Option<VerificationRequest>> {
        let key = token::verification_key(token, secret);
        let mut vt = VerificationTables::open(&self.txn)?;
        match read::verification(&vt.rec, &key)? {
            Some(rec) if identifier_matches(&rec.identifier, identifier) => {
                vt.remove(&key)?;
                if is_expired(self.now_micros(), rec.expires) {
                    Ok(None)
                } else {
                    Ok(Some(rec.to_model(&key)?))
                }
            }
            _ => Ok(None),
        }
    }

    /// The store's current time, as [`AuthDb::now`](crate::AuthDb::now).
    pub fn now(&self) -> DateTime<Utc> {
        self.cfg.now()
    }

    /// The session for this token and its user (deleting it if expired), as
    /// [`AuthDb::get_session_and_user`](crate::AuthDb::get_session_and_user).
    pub fn get_session_and_user(&self, session_token: &str) -> Result<Option<(Session, User)>> {
        let Some(session) = self.get_session(session_token)? else {
            return Ok(None);
        };
        Ok(self.get_user(&session.user_id)?.map(|u| (session, u)))
    }

    /// The user's linked accounts, oldest first, with their OAuth tokens decrypted.
    pub fn list_accounts(&self, user_id: &UserId) -> Result<Vec<Account>> {
        read::list_accounts(&self.txn, self.cfg.key.as_ref(), user_id)
    }

    /// The account `(provider_id, provider_account_id)`, with its OAuth tokens decrypted.
    pub fn get_account(
        &self,
        provider_id: &str,
        provider_account_id: &str,
    ) -> Result<Option<Account>> {
        read::get_account(
            &self.txn,
            self.cfg.key.as_ref(),
            provider_id,
            provider_account_id,
        )
    }

    /// The user's live sessions (expired ones are left out), oldest first. Tokens are not
    /// included: the store keeps only their hashes.
    pub fn list_sessions(&self, user_id: &UserId) -> Result<Vec<SessionInfo>> {
        read::list_sessions(&self.txn, user_id, self.now_micros())
    }

    /// Deletes every session of the user ("sign out everywhere"). Returns how many were removed.
    pub fn delete_sessions(&self, user_id: &UserId) -> Result<u64> {
        let mut st = SessionTables::open(&self.txn)?;
        let keys = read::multimap_values(&st.by_user, &user_id.to_bytes())?;
        let mut n = 0;
        for key in keys {
            if st.remove(&key)?.is_some() {
                n += 1;
            } else {
                st.by_user.remove(user_id.to_bytes(), key)?;
            }
        }
        Ok(n)
    }

    /// Deletes one session of the user by its id (sign out one device from a session list).
    /// Returns whether it existed. A session of another user is left alone.
    pub fn delete_session_by_id(&self, user_id: &UserId, session_id: &SessionId) -> Result<bool> {
        let mut st = SessionTables::open(&self.txn)?;
        for key in read::multimap_values(&st.by_user, &user_id.to_bytes())? {
            // A damaged record among the user's sessions is not the one asked for.
            let found = match read::session(&st.rec, &key) {
                Ok(rec) => rec.is_some_and(|r| r.id == session_id.0),
                Err(Error::Corrupt { .. }) => false,
                Err(e) => return Err(e),
            };
            if found {
                st.remove(&key)?;
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Removes up to `limit` expired sessions; returns how many index entries were processed.
    pub(crate) fn purge_sessions(&self, now: i64, limit: usize) -> Result<u64> {
        let mut st = SessionTables::open(&self.txn)?;
        let expired = expired_keys(&st.by_expiry, now, limit)?;
        for (expires, key) in &expired {
            if st.remove(key)?.is_none() {
                st.by_expiry.remove((*expires, *key))?;
            }
        }
        Ok(expired.len() as u64)
    }

    /// Removes up to `limit` expired verification requests.
    pub(crate) fn purge_verification(&self, now: i64, limit: usize) -> Result<u64> {
        let mut vt = VerificationTables::open(&self.txn)?;
        let expired = expired_keys(&vt.by_expiry, now, limit)?;
        for (expires, key) in &expired {
            if vt.remove(key)?.is_none() {
                vt.by_expiry.remove((*expires, *key))?;
            }
        }
        Ok(expired.len() as u64)
    }
}

/// Up to `limit` expiry-index keys with `expires < now`, in expiry order.
pub(crate) fn expired_keys(
    by_expiry: &impl ReadableTable<(i64, HashKey), ()>,
    now: i64,
    limit: usize,
) -> Result<Vec<(i64, HashKey)>> {
    let mut out = Vec::new();
    for entry in by_expiry.range(..(now, [0u8; 32]))? {
        if out.len() >= limit {
            break;
        }
        out.push(entry?.0.value());
    }
    Ok(out)
}

/// A new account record with its OAuth tokens sealed.
fn new_account_record(
    key: Option<&crate::EncryptionKey>,
    user_id: &UserId,
    a: &NewAccount,
    now: i64,
) -> Result<AccountRecord> {
    let mut rec = AccountRecord {
        id: AccountId::generate().0,
        user_id: user_id.0,
        provider_type: a.provider_type.clone(),
        provider_id: a.provider_id.clone(),
        provider_account_id: a.provider_account_id.clone(),
        refresh_token: None,
        access_token: None,
        access_token_expires: a.access_token_expires.map(micros),
        created_at: now,
        updated_at: now,
    };
    rec.refresh_token = rec.seal(key, "refresh_token", a.refresh_token.as_ref())?;
    rec.access_token = rec.seal(key, "access_token", a.access_token.as_ref())?;
    Ok(rec)
}

impl Adapter for WriteTxn<'_> {
    fn create_user(&self, profile: &NewUser) -> Result<User> {
        let norm = limits::user(profile)?;
        let now = self.now_micros();
        let mut by_email = self.txn.open_table(USERS_BY_EMAIL)?;
        if let Some(n) = &norm
            && by_email.get(n.as_str())?.is_some()
        {
            return Err(Error::EmailTaken);
        }
        let rec = UserRecord {
            id: UserId::generate().0,
            name: profile.name.clone(),
            email: profile.email.clone(),
            image: profile.image.clone(),
            email_verified: profile.email_verified.map(micros),
            created_at: now,
            updated_at: now,
        };
        let mut users = self.txn.open_table(USERS)?;
        users.insert(
            rec.id.as_bytes(),
            codec::encode(USERS_NAME, &rec)?.as_slice(),
        )?;
        if let Some(n) = &norm {
            by_email.insert(n.as_str(), rec.id.as_bytes())?;
        }
        rec.to_model()
    }

    fn get_user(&self, id: &UserId) -> Result<Option<User>> {
        read::get_user(&self.txn, id)
    }

    fn get_user_by_email(&self, email: &str) -> Result<Option<User>> {
        read::get_user_by_email(&self.txn, email)
    }

    fn get_user_by_provider_account_id(
        &self,
        provider_id: &str,
        provider_account_id: &str,
    ) -> Result<Option<User>> {
        read::get_user_by_provider_account_id(&self.txn, provider_id, provider_account_id)
    }

    /// Inside a transaction the argon2 verification runs while the write lock is held; prefer
    /// [`AuthDb`](crate::AuthDb)'s, which verifies outside any transaction.
    fn get_user_by_credentials(&self, credentials: &Credentials) -> Result<Option<User>> {
        limits::check_len("password", &credentials.password, MAX_PASSWORD_LEN)?;
        let found = read::credential_for_email(&self.txn, &credentials.email)?;
        self.cfg.verify_credentials(found, &credentials.password)
    }

    fn update_user(&self, user: &User) -> Result<User> {
        let new_norm = limits::user(&NewUser {
            name: user.name.clone(),
            email: user.email.clone(),
            image: user.image.clone(),
            email_verified: user.email_verified,
        })?;
        let key = user.id.to_bytes();
        let mut users = self.txn.open_table(USERS)?;
        let old = read::user(&users, &key)?.ok_or(Error::UserNotFound(user.id))?;
        let old_norm = old.email.as_deref().map(normalize_email);
        if new_norm != old_norm {
            let mut by_email = self.txn.open_table(USERS_BY_EMAIL)?;
            if let Some(n) = &new_norm
                && read::id_by(&by_email, n.as_str())?.is_some_and(|id| id != key)
            {
                return Err(Error::EmailTaken);
            }
            if let Some(o) = &old_norm
                && read::id_by(&by_email, o.as_str())? == Some(key)
            {
                by_email.remove(o.as_str())?;
            }
            if let Some(n) = &new_norm {
                by_email.insert(n.as_str(), key)?;
            }
        }
        let rec = UserRecord {
            id: old.id,
            name: user.name.clone(),
            email: user.email.clone(),
            image: user.image.clone(),
            email_verified: user.email_verified.map(micros),
            created_at: old.created_at,
            updated_at: self.now_micros(),
        };
        users.insert(key, codec::encode(USERS_NAME, &rec)?.as_slice())?;
        rec.to_model()
    }

    fn delete_user(&self, id: &UserId) -> Result<()> {
        let key = id.to_bytes();
        {
            let mut users = self.txn.open_table(USERS)?;
            let removed = users
                .remove(key)?
                .map(|g| codec::decode::<UserRecord>(USERS_NAME, g.value()))
                .transpose()?;
            if let Some(email) = removed.and_then(|r| r.email) {
                let n = normalize_email(&email);
                let mut by_email = self.txn.open_table(USERS_BY_EMAIL)?;
                if read::id_by(&by_email, n.as_str())? == Some(key) {
                    by_email.remove(n.as_str())?;
                }
            }
        }
        {
            let mut accounts = self.txn.open_table(ACCOUNTS)?;
            let mut by_provider = self.txn.open_table(ACCOUNTS_BY_PROVIDER)?;
            let mut by_user = self.txn.open_multimap_table(ACCOUNTS_BY_USER)?;
            for aid in read::multimap_values(&by_user, &key)? {
                let acc = accounts
                    .remove(aid)?
                    .map(|g| codec::decode::<AccountRecord>(ACCOUNTS_NAME, g.value()))
                    .transpose()?;
                if let Some(acc) = acc {
                    let pair = (acc.provider_id.as_str(), acc.provider_account_id.as_str());
                    if read::id_by(&by_provider, pair)? == Some(aid) {
                        by_provider.remove(pair)?;
                    }
                }
            }
            by_user.remove_all(key)?;
        }
        self.delete_sessions(id)?;
        self.txn
            .open_multimap_table(SESSIONS_BY_USER)?
            .remove_all(key)?;
        self.txn.open_table(CREDENTIALS)?.remove(key)?;
        Ok(())
    }

    fn link_account(&self, user_id: &UserId, account: &NewAccount) -> Result<Account> {
        limits::account(account)?;
        let key = self.cfg.key.as_ref();
        if key.is_none() && (account.refresh_token.is_some() || account.access_token.is_some()) {
            return Err(Error::EncryptionKeyRequired);
        }
        self.require_user(user_id)?;
        let now = self.now_micros();
        let pair = (
            account.provider_id.as_str(),
            account.provider_account_id.as_str(),
        );
        let mut accounts = self.txn.open_table(ACCOUNTS)?;
        let mut by_provider = self.txn.open_table(ACCOUNTS_BY_PROVIDER)?;
        if let Some(aid) = read::id_by(&by_provider, pair)? {
            let mut rec = read::account(&accounts, &aid)?.ok_or_else(|| {
                Error::corrupt(ACCOUNTS_NAME, "provider index names a missing account")
            })?;
            if rec.user_id != user_id.0 {
                return Err(Error::AccountLinkedToAnotherUser);
            }
            // A re-link refreshes the OAuth tokens. A provider that does not send a refresh
            // token again (Google, after the first consent) does not erase the stored one.
            rec.provider_type.clone_from(&account.provider_type);
            if account.refresh_token.is_some() {
                rec.refresh_token =
                    rec.seal(key, "refresh_token", account.refresh_token.as_ref())?;
            }
            if account.access_token.is_some() {
                rec.access_token = rec.seal(key, "access_token", account.access_token.as_ref())?;
                rec.access_token_expires = account.access_token_expires.map(micros);
            }
            rec.updated_at = now;
            // Everything that can fail for a reason other than storage happens before writing.
            let model = rec.to_model(key)?;
            accounts.insert(aid, codec::encode(ACCOUNTS_NAME, &rec)?.as_slice())?;
            return Ok(model);
        }
        let rec = new_account_record(key, user_id, account, now)?;
        let model = rec.to_model(key)?;
        let aid = *rec.id.as_bytes();
        accounts.insert(aid, codec::encode(ACCOUNTS_NAME, &rec)?.as_slice())?;
        by_provider.insert(pair, aid)?;
        self.txn
            .open_multimap_table(ACCOUNTS_BY_USER)?
            .insert(user_id.to_bytes(), aid)?;
        Ok(model)
    }

    fn unlink_account(
        &self,
        user_id: &UserId,
        provider_id: &str,
        provider_account_id: &str,
    ) -> Result<()> {
        let pair = (provider_id, provider_account_id);
        let mut by_provider = self.txn.open_table(ACCOUNTS_BY_PROVIDER)?;
        let Some(aid) = read::id_by(&by_provider, pair)? else {
            return Ok(());
        };
        let mut accounts = self.txn.open_table(ACCOUNTS)?;
        match read::account(&accounts, &aid)? {
            Some(rec) if rec.user_id == user_id.0 => {
                accounts.remove(aid)?;
                by_provider.remove(pair)?;
                self.txn
                    .open_multimap_table(ACCOUNTS_BY_USER)?
                    .remove(user_id.to_bytes(), aid)?;
            }
            _ => {}
        }
        Ok(())
    }

    fn create_session(&self, user_id: &UserId) -> Result<Session> {
        self.require_user(user_id)?;
        let now = self.now_micros();
        let expires = add_micros("expires", now, self.cfg.max_age_micros)?;
        let mut st = SessionTables::open(&self.txn)?;
        // A fresh 256-bit token cannot realistically collide, but a collision must never hand
        // one user's session to another (tower-sessions learned this), so check and redraw.
        let (session_token, key) = loop {
            let t = token::random_token()?;
            let k = token::session_key(&t);
            if st.rec.get(&k)?.is_none() {
                break (t, k);
            }
        };
        let rec = SessionRecord {
            id: SessionId::generate().0,
            user_id: user_id.0,
            expires,
            created_at: now,
            updated_at: now,
        };
        st.put(&key, &rec, None)?;
        session_model(&rec, &session_token)
    }

    fn get_session(&self, session_token: &str) -> Result<Option<Session>> {
        match read::find_session(&self.txn, session_token, self.now_micros())? {
            Lookup::Live(s) => Ok(Some(s)),
            Lookup::Missing => Ok(None),
            Lookup::Expired => {
                SessionTables::open(&self.txn)?.remove(&token::session_key(session_token))?;
                Ok(None)
            }
        }
    }

    fn update_session(&self, session: &Session, force: bool) -> Result<Option<Session>> {
        let key = token::session_key(&session.session_token);
        let now = self.now_micros();
        let mut st = SessionTables::open(&self.txn)?;
        let old = read::session(&st.rec, &key)?;
        match plan_session_update(self.cfg, now, old.as_ref(), force)? {
            SessionUpdate::Gone { expired } => {
                if expired {
                    st.remove(&key)?;
                }
                Ok(None)
            }
            SessionUpdate::NotDue => Ok(None),
            SessionUpdate::Write { expires } => {
                let Some(old) = old else { return Ok(None) };
                let rec = SessionRecord {
                    expires,
                    updated_at: now,
                    ..old.clone()
                };
                st.put(&key, &rec, Some(&old))?;
                session_model(&rec, &session.session_token).map(Some)
            }
        }
    }

    fn delete_session(&self, session_token: &str) -> Result<()> {
        SessionTables::open(&self.txn)?.remove(&token::session_key(session_token))?;
        Ok(())
    }

    /// Inside a transaction the request is inserted, then the sender runs before the commit
    /// (while the write lock is held). If it fails the request is removed and the error
    /// returned. If the transaction is later dropped, the mailed link simply does not work.
    fn create_verification_request(
        &self,
        identifier: &str,
        url: &str,
        token: &str,
        secret: &str,
        provider: &EmailProvider,
    ) -> Result<VerificationRequest> {
        let (req, key) =
            self.insert_verification_request(identifier, url, token, secret, provider)?;
        let mail = VerificationMail {
            identifier,
            url,
            token,
            provider,
        };
        if let Err(e) = provider.send(&mail) {
            self.remove_verification_if(&key, req.id)?;
            return Err(Error::SendFailed(e));
        }
        Ok(req)
    }

    fn get_verification_request(
        &self,
        identifier: &str,
        token: &str,
        secret: &str,
        _provider: &EmailProvider,
    ) -> Result<Option<VerificationRequest>> {
        match read::find_verification(&self.txn, identifier, token, secret, self.now_micros())? {
            Lookup::Live(r) => Ok(Some(r)),
            Lookup::Missing => Ok(None),
            Lookup::Expired => {
                VerificationTables::open(&self.txn)?
                    .remove(&token::verification_key(token, secret))?;
                Ok(None)
            }
        }
    }

    fn delete_verification_request(
        &self,
        identifier: &str,
        token: &str,
        secret: &str,
        _provider: &EmailProvider,
    ) -> Result<()> {
        let key = token::verification_key(token, secret);
        let mut vt = VerificationTables::open(&self.txn)?;
        if read::verification(&vt.rec, &key)?
            .is_some_and(|r| identifier_matches(&r.identifier, identifier))
        {
            vt.remove(&key)?;
        }
        Ok(())
    }
}
