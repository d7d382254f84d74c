//! [`AuthenticatorStore`] inside a write transaction.

use crate::codec::AuthenticatorRecord;
use crate::contract::AuthenticatorStore;
use crate::error::{Error, Result};
use crate::limits;
use crate::model::{Authenticator, NewAuthenticator, UserId};
use crate::tables::authenticators::{self, AuthenticatorTables};

use super::WriteTxn;

impl AuthenticatorStore for WriteTxn<'_> {
    fn create_authenticator(&self, a: &NewAuthenticator) -> Result<Authenticator> {
        limits::authenticator(a)?;
        self.require_user(&a.user_id)?;
        let mut t = AuthenticatorTables::open(&self.txn)?;
        if t.exists(&a.credential_id)? {
            return Err(Error::AuthenticatorTaken);
        }
        let now = self.now_micros();
        let rec = AuthenticatorRecord {
            user_id: a.user_id.0,
            provider_account_id: a.provider_account_id.clone(),
            credential_public_key: a.credential_public_key.clone(),
            counter: a.counter,
            credential_device_type: a.credential_device_type.clone(),
            credential_backed_up: a.credential_backed_up,
            transports: a.transports.clone(),
            created_at: now,
            updated_at: now,
        };
        let model = authenticators::to_model(&a.credential_id, &rec)?;
        t.put(&a.credential_id, &rec, true)?;
        Ok(model)
    }

    fn get_authenticator(&self, credential_id: &str) -> Result<Option<Authenticator>> {
        authenticators::get(&self.txn, credential_id)
    }

    fn list_authenticators(&self, user_id: &UserId) -> Result<Vec<Authenticator>> {
        authenticators::list(&self.txn, user_id)
    }

    fn update_authenticator_counter(
        &self,
        credential_id: &str,
        counter: u64,
    ) -> Result<Authenticator> {
        let mut t = AuthenticatorTables::open(&self.txn)?;
        let mut rec = t.get(credential_id)?.ok_or(Error::AuthenticatorNotFound)?;
        if !crate::backend::counter_may_advance(rec.counter, counter) {
            return Err(Error::CounterNotIncreased {
                stored: rec.counter,
                given: counter,
            });
        }
        rec.counter = counter;
        rec.updated_at = self.now_micros();
        let model = authenticators::to_model(credential_id, &rec)?;
        t.put(credential_id, &rec, false)?;
        Ok(model)
    }
}
