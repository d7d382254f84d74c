//! The operations of the store traits, written once against [`Runner`](crate::db::Runner) and
//! shared by [`PgAuthDb`](crate::PgAuthDb) and [`PgTx`](crate::PgTx). Each validates with
//! `authdb::backend` exactly as the redb store does, then runs its statements.

pub(crate) mod accounts;
pub(crate) mod authenticators;
pub(crate) mod sessions;
pub(crate) mod users;
pub(crate) mod verification;

/// Implements the five store traits for a [`Runner`](crate::db::Runner) by calling the
/// shared operations.
macro_rules! impl_stores {
    ($ty:ty) => {
        impl authdb::UserStore for $ty {
            fn create_user(&self, profile: &authdb::NewUser) -> authdb::Result<authdb::User> {
                $crate::ops::users::create_user(self, profile)
            }
            fn get_user(&self, id: &authdb::UserId) -> authdb::Result<Option<authdb::User>> {
                $crate::ops::users::get_user(self, id)
            }
            fn get_user_by_email(&self, email: &str) -> authdb::Result<Option<authdb::User>> {
                $crate::ops::users::get_user_by_email(self, email)
            }
            fn get_user_by_credentials(
                &self,
                credentials: &authdb::Credentials,
            ) -> authdb::Result<Option<authdb::User>> {
                $crate::ops::users::get_user_by_credentials(self, credentials)
            }
            fn update_user(&self, user: &authdb::User) -> authdb::Result<authdb::User> {
                $crate::ops::users::update_user(self, user)
            }
            fn patch_user(
                &self,
                id: &authdb::UserId,
                patch: &authdb::UserPatch,
            ) -> authdb::Result<authdb::User> {
                $crate::ops::users::patch_user(self, id, patch)
            }
            fn delete_user(&self, id: &authdb::UserId) -> authdb::Result<()> {
                $crate::ops::users::delete_user(self, id)
            }
            fn set_password(&self, user_id: &authdb::UserId, password: &str) -> authdb::Result<()> {
                $crate::ops::users::set_password(self, user_id, password)
            }
        }

        impl authdb::AccountStore for $ty {
            fn link_account(
                &self,
                user_id: &authdb::UserId,
                account: &authdb::NewAccount,
            ) -> authdb::Result<authdb::Account> {
                $crate::ops::accounts::link_account(self, user_id, account)
            }
            fn unlink_account(
                &self,
                user_id: &authdb::UserId,
                provider_id: &str,
                provider_account_id: &str,
            ) -> authdb::Result<()> {
                $crate::ops::accounts::unlink_account(
                    self,
                    user_id,
                    provider_id,
                    provider_account_id,
                )
            }
            fn unlink_account_by_provider(
                &self,
                provider_id: &str,
                provider_account_id: &str,
            ) -> authdb::Result<Option<authdb::Account>> {
                $crate::ops::accounts::unlink_account_by_provider(
                    self,
                    provider_id,
                    provider_account_id,
                )
            }
            fn get_account(
                &self,
                provider_id: &str,
                provider_account_id: &str,
            ) -> authdb::Result<Option<authdb::Account>> {
                $crate::ops::accounts::get_account(self, provider_id, provider_account_id)
            }
            fn get_user_by_provider_account_id(
                &self,
                provider_id: &str,
                provider_account_id: &str,
            ) -> authdb::Result<Option<authdb::User>> {
                $crate::ops::accounts::get_user_by_provider_account_id(
                    self,
                    provider_id,
                    provider_account_id,
                )
            }
            fn list_accounts(
                &self,
                user_id: &authdb::UserId,
            ) -> authdb::Result<Vec<authdb::Account>> {
                $crate::ops::accounts::list_accounts(self, user_id)
            }
        }

        impl authdb::SessionStore for $ty {
            fn create_session(&self, user_id: &authdb::UserId) -> authdb::Result<authdb::Session> {
                $crate::ops::sessions::create_session(self, user_id)
            }
            fn create_session_with(
                &self,
                session: &authdb::NewSession,
            ) -> authdb::Result<authdb::Session> {
                $crate::ops::sessions::create_session_with(self, session)
            }
            fn get_session(&self, session_token: &str) -> authdb::Result<Option<authdb::Session>> {
                $crate::ops::sessions::get_session(self, session_token)
            }
            fn get_session_and_user(
                &self,
                session_token: &str,
            ) -> authdb::Result<Option<(authdb::Session, authdb::User)>> {
                $crate::ops::sessions::get_session_and_user(self, session_token)
            }
            fn update_session(
                &self,
                session: &authdb::Session,
                force: bool,
            ) -> authdb::Result<Option<authdb::Session>> {
                $crate::ops::sessions::update_session(self, session, force)
            }
            fn set_session_expiry(
                &self,
                session_token: &str,
                expires: chrono::DateTime<chrono::Utc>,
            ) -> authdb::Result<Option<authdb::Session>> {
                $crate::ops::sessions::set_session_expiry(self, session_token, expires)
            }
            fn delete_session(&self, session_token: &str) -> authdb::Result<()> {
                $crate::ops::sessions::delete_session(self, session_token)
            }
            fn delete_session_returning(
                &self,
                session_token: &str,
            ) -> authdb::Result<Option<authdb::Session>> {
                $crate::ops::sessions::delete_session_returning(self, session_token)
            }
            fn list_sessions(
                &self,
                user_id: &authdb::UserId,
            ) -> authdb::Result<Vec<authdb::SessionInfo>> {
                $crate::ops::sessions::list_sessions(self, user_id)
            }
            fn delete_sessions(&self, user_id: &authdb::UserId) -> authdb::Result<u64> {
                $crate::ops::sessions::delete_sessions(self, user_id)
            }
            fn delete_session_by_id(
                &self,
                user_id: &authdb::UserId,
                session_id: &authdb::SessionId,
            ) -> authdb::Result<bool> {
                $crate::ops::sessions::delete_session_by_id(self, user_id, session_id)
            }
        }

        impl authdb::VerificationStore for $ty {
            fn create_verification_request(
                &self,
                identifier: &str,
                url: &str,
                token: &str,
                secret: &str,
                provider: &authdb::EmailProvider,
            ) -> authdb::Result<authdb::VerificationRequest> {
                $crate::ops::verification::create_verification_request(
                    self, identifier, url, token, secret, provider,
                )
            }
            fn get_verification_request(
                &self,
                identifier: &str,
                token: &str,
                secret: &str,
                _provider: &authdb::EmailProvider,
            ) -> authdb::Result<Option<authdb::VerificationRequest>> {
                $crate::ops::verification::get_verification_request(self, identifier, token, secret)
            }
            fn delete_verification_request(
                &self,
                identifier: &str,
                token: &str,
                secret: &str,
                _provider: &authdb::EmailProvider,
            ) -> authdb::Result<()> {
                $crate::ops::verification::delete_verification_request(
                    self, identifier, token, secret,
                )
            }
            fn use_verification_request(
                &self,
                identifier: &str,
                token: &str,
                secret: &str,
            ) -> authdb::Result<Option<authdb::VerificationRequest>> {
                $crate::ops::verification::use_verification_request(self, identifier, token, secret)
            }
            fn create_verification_token(
                &self,
                token: &authdb::VerificationToken,
            ) -> authdb::Result<authdb::VerificationToken> {
                $crate::ops::verification::create_verification_token(self, token)
            }
            fn use_verification_token(
                &self,
                identifier: &str,
                token_hash: &str,
            ) -> authdb::Result<Option<authdb::VerificationToken>> {
                $crate::ops::verification::use_verification_token(self, identifier, token_hash)
            }
        }

        impl authdb::AuthenticatorStore for $ty {
            fn create_authenticator(
                &self,
                authenticator: &authdb::NewAuthenticator,
            ) -> authdb::Result<authdb::Authenticator> {
                $crate::ops::authenticators::create_authenticator(self, authenticator)
            }
            fn get_authenticator(
                &self,
                credential_id: &str,
            ) -> authdb::Result<Option<authdb::Authenticator>> {
                $crate::ops::authenticators::get_authenticator(self, credential_id)
            }
            fn list_authenticators(
                &self,
                user_id: &authdb::UserId,
            ) -> authdb::Result<Vec<authdb::Authenticator>> {
                $crate::ops::authenticators::list_authenticators(self, user_id)
            }
            fn update_authenticator_counter(
                &self,
                credential_id: &str,
                counter: u64,
            ) -> authdb::Result<authdb::Authenticator> {
                $crate::ops::authenticators::update_authenticator_counter(
                    self,
                    credential_id,
                    counter,
                )
            }
        }
    };
}
pub(crate) use impl_stores;
