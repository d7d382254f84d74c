//! [`VerificationStore`] inside a write transaction.

use uuid::Uuid;

use crate::codec::{VerificationRecord, micros};
use crate::contract::VerificationStore;
use crate::email::{EmailProvider, VerificationMail};
use crate::error::{Error, InputProblem, Result};
use crate::limits::{self, MAX_TOKEN_LEN, MAX_URL_LEN};
use crate::model::{VerificationRequest, VerificationRequestId, VerificationToken};
use crate::schema::HashKey;
use crate::tables::Lookup;
use crate::tables::verification::{self, VerificationTables, identifier_key_of};
use crate::tables::verification_attempts::AttemptTable;
use crate::token;

use super::{WriteTxn, add_micros};

impl WriteTxn<'_> {
    /// Inserts a v3 verification request without sending anything. Returns it, its key and
    /// the address to mail the link to: the email of the account the identifier names (as that
    /// account stores it), or, for an address no account has yet, the normalized identifier —
    /// never a look-alike as typed (`\u{212A}evin@x.io` is mailed to `kevin@x.io`).
    pub(crate) fn insert_verification_request(
        &self,
        identifier: &str,
        url: &str,
        raw_token: &str,
        secret: &str,
        provider: &EmailProvider,
    ) -> Result<(VerificationRequest, HashKey, String)> {
        let normalized = limits::email("identifier", identifier)?;
        limits::required("url", url, MAX_URL_LEN)?;
        limits::verification_token("token", raw_token, self.cfg.short_tokens_allowed())?;
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
        let rec = VerificationRecord {
            id: VerificationRequestId::generate().0,
            identifier: identifier.to_owned(),
            expires: add_micros("expires", now, max_age)?,
            created_at: now,
            updated_at: now,
        };
        let key = token::verification_key(raw_token, secret);
        let model = verification::to_model(&rec, &key)?;
        let recipient = crate::tables::users::by_email(&self.txn, &normalized)?
            .and_then(|u| u.email)
            .unwrap_or(normalized);
        VerificationTables::open(&self.txn)?.insert(&key, &rec, now)?;
        Ok((model, key, recipient))
    }

    /// Removes the verification request under `key` if it is still the one with `id`.
    pub(crate) fn remove_verification_if(
        &self,
        key: &HashKey,
        id: VerificationRequestId,
    ) -> Result<()> {
        let mut vt = VerificationTables::open(&self.txn)?;
        if vt.get(key)?.is_some_and(|r| r.id == id.0) {
            vt.remove(key)?;
        }
        Ok(())
    }

    /// Deletes the link under `key` when it is expired (a read met it expired).
    fn remove_verification(&self, key: &HashKey) -> Result<()> {
        VerificationTables::open(&self.txn)?.remove(key)?;
        Ok(())
    }

    /// Whether a lookup by this raw token may find anything (see
    /// `limits::verification_token_findable`).
    fn findable(&self, token: &str) -> bool {
        limits::verification_token_findable(token, self.cfg.short_tokens_allowed())
    }

    /// Books the outcome of a lookup of `identifier`'s link, when short tokens are allowed (else
    /// nothing is counted): a miss counts a failure (the limit deletes every link of the
    /// identifier), a live match forgets the failures, an expired match changes nothing.
    fn book_attempt<T>(&self, identifier: &str, found: &Lookup<T>) -> Result<()> {
        let Some(max) = self.cfg.max_failed_verifications else {
            return Ok(());
        };
        let Some(ident) = identifier_key_of(identifier) else {
            return Ok(());
        };
        match found {
            Lookup::Missing => {
                let mut links = VerificationTables::open(&self.txn)?;
                AttemptTable::open(&self.txn)?.fail(&mut links, &ident, self.now_micros(), max)?;
            }
            Lookup::Live(_) => AttemptTable::open(&self.txn)?.reset(&ident)?,
            Lookup::Expired => {}
        }
        Ok(())
    }

    /// Single use of the link under `key` made for `identifier`, with the attempt booked.
    fn take_verification(
        &self,
        key: &HashKey,
        identifier: &str,
    ) -> Result<Option<crate::codec::VerificationRecord>> {
        let found =
            VerificationTables::open(&self.txn)?.take(key, identifier, self.now_micros())?;
        self.book_attempt(identifier, &found)?;
        Ok(match found {
            Lookup::Live(r) => Some(r),
            Lookup::Missing | Lookup::Expired => None,
        })
    }
}

impl VerificationStore for WriteTxn<'_> {
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
        let (req, key, recipient) =
            self.insert_verification_request(identifier, url, token, secret, provider)?;
        let mail = VerificationMail {
            identifier: &recipient,
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
        if !self.findable(token) {
            return Ok(None);
        }
        let key = token::verification_key(token, secret);
        let found = verification::find(&self.txn, &key, identifier, self.now_micros())?;
        self.book_attempt(identifier, &found)?;
        match found {
            Lookup::Live(r) => verification::to_model(&r, &key).map(Some),
            Lookup::Missing => Ok(None),
            Lookup::Expired => {
                self.remove_verification(&key)?;
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
        if !self.findable(token) {
            return Ok(());
        }
        let key = token::verification_key(token, secret);
        VerificationTables::open(&self.txn)?.take(&key, identifier, self.now_micros())?;
        Ok(())
    }

    fn use_verification_request(
        &self,
        identifier: &str,
        token: &str,
        secret: &str,
    ) -> Result<Option<VerificationRequest>> {
        if !self.findable(token) {
            return Ok(None);
        }
        let key = token::verification_key(token, secret);
        self.take_verification(&key, identifier)?
            .map(|r| verification::to_model(&r, &key))
            .transpose()
    }

    fn create_verification_token(&self, t: &VerificationToken) -> Result<VerificationToken> {
        limits::email("identifier", &t.identifier)?;
        limits::verification_token("token", &t.token, self.cfg.short_tokens_allowed())?;
        let now = self.now_micros();
        let rec = VerificationRecord {
            id: Uuid::now_v7(),
            identifier: t.identifier.clone(),
            expires: micros(t.expires),
            created_at: now,
            updated_at: now,
        };
        let model = verification::to_token(&rec, &t.token)?;
        VerificationTables::open(&self.txn)?.insert(
            &token::verification_token_key(&t.token),
            &rec,
            now,
        )?;
        Ok(model)
    }

    fn use_verification_token(
        &self,
        identifier: &str,
        token_hash: &str,
    ) -> Result<Option<VerificationToken>> {
        if !self.findable(token_hash) {
            return Ok(None);
        }
        let key = token::verification_token_key(token_hash);
        self.take_verification(&key, identifier)?
            .map(|r| verification::to_token(&r, token_hash))
            .transpose()
    }
}
