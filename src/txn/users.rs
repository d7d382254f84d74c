//! [`UserStore`] inside a write transaction.

use crate::codec::{UserRecord, micros};
use crate::contract::UserStore;
use crate::email::normalize_email;
use crate::error::{Error, Result};
use crate::limits::{self, MAX_PASSWORD_LEN};
use crate::model::{Credentials, NewUser, User, UserId, UserPatch};
use crate::tables::accounts::AccountTables;
use crate::tables::authenticators::AuthenticatorTables;
use crate::tables::credentials;
use crate::tables::sessions::SessionTable;
use crate::tables::users::{self, UserTables};

use super::WriteTxn;

impl WriteTxn<'_> {
    /// Writes `profile` over the stored user `id` (shared by `update_user` and `patch_user`).
    fn replace_user(&self, id: &UserId, profile: &NewUser) -> Result<User> {
        let extra = limits::user(profile)?;
        let mut t = UserTables::open(&self.txn)?;
        let old = t.get(&id.to_bytes())?.ok_or(Error::UserNotFound(*id))?;
        let email_changed = old.email.as_deref().map(normalize_email)
            != profile.email.as_deref().map(normalize_email);
        let rec = UserRecord {
            id: old.id,
            name: profile.name.clone(),
            email: profile.email.clone(),
            image: profile.image.clone(),
            email_verified: profile.email_verified.map(micros),
            extra,
            security_stamp: if email_changed {
                users::new_stamp()?
            } else {
                old.security_stamp
            },
            created_at: old.created_at,
            updated_at: self.now_micros(),
        };
        let model = users::to_model(&rec)?;
        t.put(&rec, Some(&old))?;
        Ok(model)
    }
}

impl UserStore for WriteTxn<'_> {
    fn create_user(&self, profile: &NewUser) -> Result<User> {
        let extra = limits::user(profile)?;
        let now = self.now_micros();
        let rec = UserRecord {
            id: UserId::generate().0,
            name: profile.name.clone(),
            email: profile.email.clone(),
            image: profile.image.clone(),
            email_verified: profile.email_verified.map(micros),
            extra,
            security_stamp: users::new_stamp()?,
            created_at: now,
            updated_at: now,
        };
        let model = users::to_model(&rec)?;
        UserTables::open(&self.txn)?.put(&rec, None)?;
        Ok(model)
    }

    fn get_user(&self, id: &UserId) -> Result<Option<User>> {
        users::get(&self.txn, id)
    }

    fn get_user_by_email(&self, email: &str) -> Result<Option<User>> {
        users::by_email(&self.txn, email)
    }

    /// Inside a transaction the argon2 verification runs while the write lock is held; prefer
    /// [`AuthDb`](crate::AuthDb)'s, which verifies outside any transaction.
    fn get_user_by_credentials(&self, credentials: &Credentials) -> Result<Option<User>> {
        limits::check_len("password", &credentials.password, MAX_PASSWORD_LEN)?;
        let found = credentials::for_email(&self.txn, &credentials.email)?;
        self.cfg.verify_credentials(found, &credentials.password)
    }

    fn update_user(&self, user: &User) -> Result<User> {
        self.replace_user(
            &user.id,
            &NewUser {
                name: user.name.clone(),
                email: user.email.clone(),
                image: user.image.clone(),
                email_verified: user.email_verified,
                extra: user.extra.clone(),
            },
        )
    }

    fn patch_user(&self, id: &UserId, patch: &UserPatch) -> Result<User> {
        let current = self.get_user(id)?.ok_or(Error::UserNotFound(*id))?;
        self.replace_user(id, &patch.apply_to(&current))
    }

    fn delete_user(&self, id: &UserId) -> Result<()> {
        let key = id.to_bytes();
        UserTables::open(&self.txn)?.remove(&key)?;
        AccountTables::open(&self.txn)?.remove_all_of(&key)?;
        SessionTable::open(&self.txn)?.remove_all_of(&key)?;
        credentials::remove(&self.txn, &key)?;
        AuthenticatorTables::open(&self.txn)?.remove_all_of(&key)?;
        crate::tables::web_sessions::WebSessionTable::open(&self.txn)?.remove_all_of(&key)?;
        Ok(())
    }

    /// Hashing takes tens of milliseconds and, here, runs while this transaction holds the
    /// write lock; [`AuthDb`](crate::AuthDb)'s `set_password` hashes before taking it.
    fn set_password(&self, user_id: &UserId, password: &str) -> Result<()> {
        limits::required("password", password, MAX_PASSWORD_LEN)?;
        self.require_user(user_id)?;
        let phc = self.cfg.hash_password(password)?;
        self.store_password_hash(user_id, &phc)
    }
}
