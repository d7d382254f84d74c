//! [`AccountStore`] inside a write transaction.

use crate::contract::AccountStore;
use crate::error::{Error, Result};
use crate::limits;
use crate::model::{Account, NewAccount, User, UserId};
use crate::tables::accounts::{self, AccountTables};

use super::WriteTxn;

impl AccountStore for WriteTxn<'_> {
    fn link_account(&self, user_id: &UserId, account: &NewAccount) -> Result<Account> {
        limits::account(account)?;
        let key = self.cfg.key.as_ref();
        if key.is_none() && accounts::has_secrets(account) {
            return Err(Error::EncryptionKeyRequired);
        }
        self.require_user(user_id)?;
        let now = self.now_micros();
        let mut t = AccountTables::open(&self.txn)?;
        let (rec, is_new) = match t.find(&account.provider_id, &account.provider_account_id)? {
            Some(mut rec) => {
                if rec.user_id != user_id.0 {
                    return Err(Error::AccountLinkedToAnotherUser);
                }
                accounts::relink(key, &mut rec, account, now)?;
                (rec, false)
            }
            None => (accounts::new_record(key, user_id, account, now)?, true),
        };
        // Everything that can fail for a reason other than storage happens before writing.
        let model = accounts::to_model(&rec, key)?;
        t.put(&rec, is_new)?;
        Ok(model)
    }

    fn unlink_account(
        &self,
        user_id: &UserId,
        provider_id: &str,
        provider_account_id: &str,
    ) -> Result<()> {
        let mut t = AccountTables::open(&self.txn)?;
        if let Some(rec) = t.find(provider_id, provider_account_id)?
            && rec.user_id == user_id.0
        {
            t.remove(rec.id.as_bytes())?;
        }
        Ok(())
    }

    fn unlink_account_by_provider(
        &self,
        provider_id: &str,
        provider_account_id: &str,
    ) -> Result<Option<Account>> {
        let mut t = AccountTables::open(&self.txn)?;
        let Some(rec) = t.find(provider_id, provider_account_id)? else {
            return Ok(None);
        };
        let model = accounts::to_model(&rec, self.cfg.key.as_ref())?;
        t.remove(rec.id.as_bytes())?;
        Ok(Some(model))
    }

    fn get_account(&self, provider_id: &str, provider_account_id: &str) -> Result<Option<Account>> {
        accounts::get(
            &self.txn,
            self.cfg.key.as_ref(),
            provider_id,
            provider_account_id,
        )
    }

    fn get_user_by_provider_account_id(
        &self,
        provider_id: &str,
        provider_account_id: &str,
    ) -> Result<Option<User>> {
        accounts::user_by_account(&self.txn, provider_id, provider_account_id)
    }

    fn list_accounts(&self, user_id: &UserId) -> Result<Vec<Account>> {
        accounts::list(&self.txn, self.cfg.key.as_ref(), user_id)
    }
}
