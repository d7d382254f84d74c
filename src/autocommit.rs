//! The store traits on [`AuthDb`]: every read on a snapshot, every write its own transaction
//! through group commit. The behaviour itself lives once, in `tables/` and `txn/`; this file
//! only decides where each call runs (and moves the arguments into the write job).
//!
//! With the `tracing` feature every operation is a span (level debug, `skip_all`): it records
//! user and session ids, counts and the error of a failed call, never a token, an email
//! address, a password or a returned record.

use chrono::{DateTime, Utc};

use crate::contract::{
    AccountStore, AuthenticatorStore, Maintenance, SessionStore, Transactional, UserStore,
    VerificationStore,
};
use crate::db::AuthDb;
use crate::email::{EmailProvider, VerificationMail};
use crate::error::{Error, Result};
use crate::integrity::IntegrityReport;
use crate::limits::{self, MAX_PASSWORD_LEN};
use crate::model::{
    Account, Authenticator, Credentials, NewAccount, NewAuthenticator, NewSession, NewUser,
    PurgeStats, Session, SessionId, SessionInfo, User, UserId, UserPatch, VerificationRequest,
    VerificationToken,
};
use crate::tables::{Lookup, accounts, authenticators, credentials, sessions, users, verification};
use crate::token;
use crate::txn::{SessionUpdate, WriteTxn, plan_session_update};

impl UserStore for AuthDb {
    #[cfg_attr(
        feature = "tracing",
        tracing::instrument(level = "debug", skip_all, err(level = "debug"))
    )]
    fn create_user(&self, profile: &NewUser) -> Result<User> {
        let p = profile.clone();
        self.submit(move |tx| tx.create_user(&p))
    }

    #[cfg_attr(feature = "tracing", tracing::instrument(level = "debug", skip_all, fields(user_id = %id), err(level = "debug")))]
    fn get_user(&self, id: &UserId) -> Result<Option<User>> {
        users::get(&*self.read()?, id)
    }

    #[cfg_attr(
        feature = "tracing",
        tracing::instrument(level = "debug", skip_all, err(level = "debug"))
    )]
    fn get_user_by_email(&self, email: &str) -> Result<Option<User>> {
        if email.trim().is_empty() {
            return Ok(None);
        }
        users::by_email(&*self.read()?, email)
    }

    #[cfg_attr(
        feature = "tracing",
        tracing::instrument(level = "debug", skip_all, err(level = "debug"))
    )]
    fn get_user_by_credentials(&self, c: &Credentials) -> Result<Option<User>> {
        limits::check_len("password", &c.password, MAX_PASSWORD_LEN)?;
        // Read in a snapshot, verify (slow) outside any transaction.
        let found = credentials::for_email(&*self.read()?, &c.email)?;
        self.cfg().verify_credentials(found, &c.password)
    }

    #[cfg_attr(feature = "tracing", tracing::instrument(level = "debug", skip_all, fields(user_id = %user.id), err(level = "debug")))]
    fn update_user(&self, user: &User) -> Result<User> {
        let u = user.clone();
        self.submit(move |tx| tx.update_user(&u))
    }

    #[cfg_attr(feature = "tracing", tracing::instrument(level = "debug", skip_all, fields(user_id = %id), err(level = "debug")))]
    fn patch_user(&self, id: &UserId, patch: &UserPatch) -> Result<User> {
        let (id, p) = (*id, patch.clone());
        self.submit(move |tx| tx.patch_user(&id, &p))
    }

    #[cfg_attr(feature = "tracing", tracing::instrument(level = "debug", skip_all, fields(user_id = %id), err(level = "debug")))]
    fn delete_user(&self, id: &UserId) -> Result<()> {
        let id = *id;
        self.submit(move |tx| tx.delete_user(&id))
    }

    /// The hash is computed before the write transaction begins, so other writers do not wait
    /// for argon2.
    #[cfg_attr(feature = "tracing", tracing::instrument(level = "debug", skip_all, fields(user_id = %user_id), err(level = "debug")))]
    fn set_password(&self, user_id: &UserId, password: &str) -> Result<()> {
        limits::required("password", password, MAX_PASSWORD_LEN)?;
        if self.get_user(user_id)?.is_none() {
            return Err(Error::UserNotFound(*user_id));
        }
        let phc = self.cfg().hash_password(password)?;
        let uid = *user_id;
        self.submit(move |tx| tx.store_password_hash(&uid, &phc))
    }
}

impl AccountStore for AuthDb {
    #[cfg_attr(feature = "tracing", tracing::instrument(level = "debug", skip_all, fields(user_id = %user_id), err(level = "debug")))]
    fn link_account(&self, user_id: &UserId, account: &NewAccount) -> Result<Account> {
        let (uid, a) = (*user_id, account.clone());
        self.submit(move |tx| tx.link_account(&uid, &a))
    }

    #[cfg_attr(feature = "tracing", tracing::instrument(level = "debug", skip_all, fields(user_id = %user_id), err(level = "debug")))]
    fn unlink_account(
        &self,
        user_id: &UserId,
        provider_id: &str,
        provider_account_id: &str,
    ) -> Result<()> {
        let (uid, p, pa) = (
            *user_id,
            provider_id.to_owned(),
            provider_account_id.to_owned(),
        );
        self.submit(move |tx| tx.unlink_account(&uid, &p, &pa))
    }

    #[cfg_attr(
        feature = "tracing",
        tracing::instrument(level = "debug", skip_all, err(level = "debug"))
    )]
    fn unlink_account_by_provider(
        &self,
        provider_id: &str,
        provider_account_id: &str,
    ) -> Result<Option<Account>> {
        let (p, pa) = (provider_id.to_owned(), provider_account_id.to_owned());
        self.submit(move |tx| tx.unlink_account_by_provider(&p, &pa))
    }

    #[cfg_attr(
        feature = "tracing",
        tracing::instrument(level = "debug", skip_all, err(level = "debug"))
    )]
    fn get_account(&self, provider_id: &str, provider_account_id: &str) -> Result<Option<Account>> {
        accounts::get(
            &*self.read()?,
            self.cfg().key.as_ref(),
            provider_id,
            provider_account_id,
        )
    }

    #[cfg_attr(
        feature = "tracing",
        tracing::instrument(level = "debug", skip_all, err(level = "debug"))
    )]
    fn get_user_by_provider_account_id(
        &self,
        provider_id: &str,
        provider_account_id: &str,
    ) -> Result<Option<User>> {
        accounts::user_by_account(&*self.read()?, provider_id, provider_account_id)
    }

    #[cfg_attr(feature = "tracing", tracing::instrument(level = "debug", skip_all, fields(user_id = %user_id), err(level = "debug")))]
    fn list_accounts(&self, user_id: &UserId) -> Result<Vec<Account>> {
        accounts::list(&*self.read()?, self.cfg().key.as_ref(), user_id)
    }
}

impl AuthDb {
    /// Reads the session on a snapshot; only an expired one needs the write lock (to delete
    /// it, after checking again inside the write transaction).
    fn live_session(&self, session_token: &str) -> Result<Lookup<Session>> {
        let found = sessions::find(&*self.read()?, session_token, self.cfg().now_micros())?;
        if let Lookup::Expired = found
            && !self.is_read_only()
        {
            let t = session_token.to_owned();
            self.submit(move |tx| tx.get_session(&t))?;
        }
        Ok(found)
    }
}

impl SessionStore for AuthDb {
    #[cfg_attr(feature = "tracing", tracing::instrument(level = "debug", skip_all, fields(user_id = %user_id), err(level = "debug")))]
    fn create_session(&self, user_id: &UserId) -> Result<Session> {
        let uid = *user_id;
        self.submit(move |tx| tx.create_session(&uid))
    }

    #[cfg_attr(feature = "tracing", tracing::instrument(level = "debug", skip_all, fields(user_id = %s.user_id), err(level = "debug")))]
    fn create_session_with(&self, s: &NewSession) -> Result<Session> {
        let s = s.clone();
        self.submit(move |tx| tx.create_session_with(&s))
    }

    #[cfg_attr(
        feature = "tracing",
        tracing::instrument(level = "debug", skip_all, err(level = "debug"))
    )]
    fn get_session(&self, session_token: &str) -> Result<Option<Session>> {
        match self.live_session(session_token)? {
            Lookup::Live(s) => Ok(Some(s)),
            Lookup::Missing | Lookup::Expired => Ok(None),
        }
    }

    /// Session and user are read from one snapshot.
    #[cfg_attr(
        feature = "tracing",
        tracing::instrument(level = "debug", skip_all, err(level = "debug"))
    )]
    fn get_session_and_user(&self, session_token: &str) -> Result<Option<(Session, User)>> {
        let rtx = self.read()?;
        match sessions::find(&*rtx, session_token, self.cfg().now_micros())? {
            Lookup::Live(s) => Ok(users::get(&*rtx, &s.user_id)?.map(|u| (s, u))),
            Lookup::Missing => Ok(None),
            Lookup::Expired => {
                drop(rtx);
                self.live_session(session_token).map(|_| None)
            }
        }
    }

    #[cfg_attr(
        feature = "tracing",
        tracing::instrument(level = "debug", skip_all, err(level = "debug"))
    )]
    fn update_session(&self, session: &Session, force: bool) -> Result<Option<Session>> {
        // Decide on a snapshot first: the common "not due yet" case takes no write lock.
        let key = token::session_key(&session.session_token);
        let rec = sessions::record(&crate::source::Source::sessions(&*self.read()?)?, &key)?;
        match plan_session_update(self.cfg(), self.cfg().now_micros(), rec.as_ref(), force)? {
            SessionUpdate::Gone { expired: false } | SessionUpdate::NotDue => Ok(None),
            SessionUpdate::Gone { expired: true } if self.is_read_only() => Ok(None),
            _ => {
                let s = session.clone();
                self.submit(move |tx| tx.update_session(&s, force))
            }
        }
    }

    #[cfg_attr(
        feature = "tracing",
        tracing::instrument(level = "debug", skip_all, err(level = "debug"))
    )]
    fn set_session_expiry(
        &self,
        session_token: &str,
        expires: DateTime<Utc>,
    ) -> Result<Option<Session>> {
        let t = session_token.to_owned();
        self.submit(move |tx| tx.set_session_expiry(&t, expires))
    }

    #[cfg_attr(
        feature = "tracing",
        tracing::instrument(level = "debug", skip_all, err(level = "debug"))
    )]
    fn delete_session(&self, session_token: &str) -> Result<()> {
        let t = session_token.to_owned();
        self.submit(move |tx| tx.delete_session(&t))
    }

    #[cfg_attr(
        feature = "tracing",
        tracing::instrument(level = "debug", skip_all, err(level = "debug"))
    )]
    fn delete_session_returning(&self, session_token: &str) -> Result<Option<Session>> {
        let t = session_token.to_owned();
        self.submit(move |tx| tx.delete_session_returning(&t))
    }

    #[cfg_attr(feature = "tracing", tracing::instrument(level = "debug", skip_all, fields(user_id = %user_id), err(level = "debug")))]
    fn list_sessions(&self, user_id: &UserId) -> Result<Vec<SessionInfo>> {
        sessions::list(&*self.read()?, user_id, self.cfg().now_micros())
    }

    #[cfg_attr(feature = "tracing", tracing::instrument(level = "debug", skip_all, fields(user_id = %user_id), ret, err(level = "debug")))]
    fn delete_sessions(&self, user_id: &UserId) -> Result<u64> {
        let uid = *user_id;
        self.submit(move |tx| tx.delete_sessions(&uid))
    }

    #[cfg_attr(feature = "tracing", tracing::instrument(level = "debug", skip_all, fields(user_id = %user_id, session_id = %session_id), ret, err(level = "debug")))]
    fn delete_session_by_id(&self, user_id: &UserId, session_id: &SessionId) -> Result<bool> {
        let (uid, sid) = (*user_id, *session_id);
        self.submit(move |tx| tx.delete_session_by_id(&uid, &sid))
    }
}

impl VerificationStore for AuthDb {
    /// Commits first so the link works the moment it arrives; then sends outside any
    /// transaction; on failure removes the request again.
    #[cfg_attr(
        feature = "tracing",
        tracing::instrument(level = "debug", skip_all, err(level = "debug"))
    )]
    fn create_verification_request(
        &self,
        identifier: &str,
        url: &str,
        token: &str,
        secret: &str,
        provider: &EmailProvider,
    ) -> Result<VerificationRequest> {
        let (i, u, t, s, p) = (
            identifier.to_owned(),
            url.to_owned(),
            token.to_owned(),
            secret.to_owned(),
            provider.clone(),
        );
        let (req, key, recipient) =
            self.submit(move |tx| tx.insert_verification_request(&i, &u, &t, &s, &p))?;
        let mail = VerificationMail {
            identifier: &recipient,
            url,
            token,
            provider,
        };
        if let Err(e) = provider.send(&mail) {
            let id = req.id;
            self.submit(move |tx| tx.remove_verification_if(&key, id))?;
            return Err(Error::SendFailed(e));
        }
        Ok(req)
    }

    #[cfg_attr(
        feature = "tracing",
        tracing::instrument(level = "debug", skip_all, err(level = "debug"))
    )]
    fn get_verification_request(
        &self,
        identifier: &str,
        token: &str,
        secret: &str,
        provider: &EmailProvider,
    ) -> Result<Option<VerificationRequest>> {
        let write_path = || {
            let (i, t, s, p) = (
                identifier.to_owned(),
                token.to_owned(),
                secret.to_owned(),
                provider.clone(),
            );
            self.submit(move |tx| tx.get_verification_request(&i, &t, &s, &p))
        };
        let short_allowed = self.cfg().short_tokens_allowed();
        if !crate::limits::verification_token_findable(token, short_allowed) {
            return Ok(None);
        }
        // With a failed-attempt limit every lookup books its outcome, in a write transaction.
        if short_allowed && !self.is_read_only() {
            return write_path();
        }
        let key = token::verification_key(token, secret);
        match verification::find(&*self.read()?, &key, identifier, self.cfg().now_micros())? {
            Lookup::Live(r) => verification::to_model(&r, &key).map(Some),
            Lookup::Missing => Ok(None),
            Lookup::Expired if self.is_read_only() => Ok(None),
            Lookup::Expired => {
                write_path()?;
                Ok(None)
            }
        }
    }

    #[cfg_attr(
        feature = "tracing",
        tracing::instrument(level = "debug", skip_all, err(level = "debug"))
    )]
    fn delete_verification_request(
        &self,
        identifier: &str,
        token: &str,
        secret: &str,
        provider: &EmailProvider,
    ) -> Result<()> {
        let (i, t, s, p) = (
            identifier.to_owned(),
            token.to_owned(),
            secret.to_owned(),
            provider.clone(),
        );
        self.submit(move |tx| tx.delete_verification_request(&i, &t, &s, &p))
    }

    #[cfg_attr(
        feature = "tracing",
        tracing::instrument(level = "debug", skip_all, err(level = "debug"))
    )]
    fn use_verification_request(
        &self,
        identifier: &str,
        token: &str,
        secret: &str,
    ) -> Result<Option<VerificationRequest>> {
        let (i, t, s) = (identifier.to_owned(), token.to_owned(), secret.to_owned());
        self.submit(move |tx| tx.use_verification_request(&i, &t, &s))
    }

    #[cfg_attr(
        feature = "tracing",
        tracing::instrument(level = "debug", skip_all, err(level = "debug"))
    )]
    fn create_verification_token(&self, t: &VerificationToken) -> Result<VerificationToken> {
        let t = t.clone();
        self.submit(move |tx| tx.create_verification_token(&t))
    }

    #[cfg_attr(
        feature = "tracing",
        tracing::instrument(level = "debug", skip_all, err(level = "debug"))
    )]
    fn use_verification_token(
        &self,
        identifier: &str,
        token_hash: &str,
    ) -> Result<Option<VerificationToken>> {
        let (i, h) = (identifier.to_owned(), token_hash.to_owned());
        self.submit(move |tx| tx.use_verification_token(&i, &h))
    }
}

impl AuthenticatorStore for AuthDb {
    #[cfg_attr(feature = "tracing", tracing::instrument(level = "debug", skip_all, fields(user_id = %a.user_id), err(level = "debug")))]
    fn create_authenticator(&self, a: &NewAuthenticator) -> Result<Authenticator> {
        let a = a.clone();
        self.submit(move |tx| tx.create_authenticator(&a))
    }

    #[cfg_attr(
        feature = "tracing",
        tracing::instrument(level = "debug", skip_all, err(level = "debug"))
    )]
    fn get_authenticator(&self, credential_id: &str) -> Result<Option<Authenticator>> {
        authenticators::get(&*self.read()?, credential_id)
    }

    #[cfg_attr(feature = "tracing", tracing::instrument(level = "debug", skip_all, fields(user_id = %user_id), err(level = "debug")))]
    fn list_authenticators(&self, user_id: &UserId) -> Result<Vec<Authenticator>> {
        authenticators::list(&*self.read()?, user_id)
    }

    #[cfg_attr(feature = "tracing", tracing::instrument(level = "debug", skip_all, fields(counter = counter), err(level = "debug")))]
    fn update_authenticator_counter(
        &self,
        credential_id: &str,
        counter: u64,
    ) -> Result<Authenticator> {
        let c = credential_id.to_owned();
        self.submit(move |tx| tx.update_authenticator_counter(&c, counter))
    }
}

impl Transactional for AuthDb {
    type Tx<'a> = WriteTxn<'a>;

    fn write<T>(&self, f: impl FnOnce(&mut WriteTxn<'_>) -> Result<T>) -> Result<T> {
        AuthDb::write(self, f)
    }
}

impl Maintenance for AuthDb {
    fn now(&self) -> DateTime<Utc> {
        AuthDb::now(self)
    }

    fn purge_expired(&self) -> Result<PurgeStats> {
        AuthDb::purge_expired(self)
    }

    fn check_integrity(&self) -> Result<IntegrityReport> {
        AuthDb::check_integrity(self)
    }
}
