-- authdb-postgres schema version 1.
--
-- Applied by `PgAuthDb` at connect, inside one transaction holding an advisory lock, with
-- `search_path` set to the configured schema (so the names below are unqualified). Do not
-- edit a shipped migration: add the next one.
--
-- Conventions:
-- * Every time is a bigint of microseconds since the Unix epoch, UTC (authdb's resolution;
--   the store's clock writes them, never the server's now()). In SQL:
--   to_timestamp(expires / 1e6).
-- * Secrets are never stored in plain form: session tokens and verification tokens as their
--   32-byte SHA-256 (token_hash), passwords as argon2id PHC strings, OAuth tokens, ID tokens
--   and provider-specific account fields sealed (XChaCha20-Poly1305, bound to the account id
--   and the field).
-- * Emails and verification identifiers are matched through a key column holding
--   authdb::normalize_email of the value (NFKC, lowercase, trim), computed by the client.

CREATE TABLE users (
    id              uuid PRIMARY KEY,
    name            text,
    email           text,
    email_key       text,
    image           text,
    email_verified  bigint,
    extra           json NOT NULL DEFAULT '{}',
    security_stamp  bytea NOT NULL,
    created_at      bigint NOT NULL,
    updated_at      bigint NOT NULL,
    CONSTRAINT users_email_unique UNIQUE (email_key),
    CONSTRAINT users_email_key_present CHECK ((email IS NULL) = (email_key IS NULL)),
    CONSTRAINT users_extra_object CHECK (json_typeof(extra) = 'object'),
    CONSTRAINT users_security_stamp_len CHECK (octet_length(security_stamp) = 16)
);

CREATE TABLE accounts (
    id                    uuid PRIMARY KEY,
    user_id               uuid NOT NULL,
    provider_type         text NOT NULL,
    provider_id           text NOT NULL,
    provider_account_id   text NOT NULL,
    refresh_token         bytea,
    access_token          bytea,
    access_token_expires  bigint,
    token_type            text,
    scope                 text,
    id_token              bytea,
    session_state         text,
    extra                 bytea,
    created_at            bigint NOT NULL,
    updated_at            bigint NOT NULL,
    CONSTRAINT accounts_user_fk FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT accounts_provider_unique UNIQUE (provider_id, provider_account_id),
    CONSTRAINT accounts_provider_type_known
        CHECK (provider_type IN ('oauth', 'oidc', 'email', 'webauthn'))
);
CREATE INDEX accounts_user_idx ON accounts (user_id);

CREATE TABLE sessions (
    token_hash  bytea PRIMARY KEY,
    id          uuid NOT NULL,
    user_id     uuid NOT NULL,
    expires     bigint NOT NULL,
    created_at  bigint NOT NULL,
    updated_at  bigint NOT NULL,
    CONSTRAINT sessions_user_fk FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT sessions_token_hash_len CHECK (octet_length(token_hash) = 32)
);
CREATE INDEX sessions_user_idx ON sessions (user_id);
CREATE INDEX sessions_expires_idx ON sessions (expires);

CREATE TABLE verification_tokens (
    token_hash      bytea PRIMARY KEY,
    id              uuid NOT NULL,
    identifier      text NOT NULL,
    identifier_key  text NOT NULL,
    expires         bigint NOT NULL,
    created_at      bigint NOT NULL,
    updated_at      bigint NOT NULL,
    CONSTRAINT verification_tokens_token_hash_len CHECK (octet_length(token_hash) = 32),
    CONSTRAINT verification_tokens_identifier_key_present CHECK (identifier_key <> '')
);
CREATE INDEX verification_tokens_expires_idx ON verification_tokens (expires);

CREATE TABLE credentials (
    user_id     uuid PRIMARY KEY,
    phc         text NOT NULL,
    updated_at  bigint NOT NULL,
    CONSTRAINT credentials_user_fk FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT credentials_argon2id CHECK (phc LIKE '$argon2id$%')
);

CREATE TABLE authenticators (
    credential_id           text PRIMARY KEY,
    user_id                 uuid NOT NULL,
    provider_account_id     text NOT NULL,
    credential_public_key   text NOT NULL,
    counter                 bigint NOT NULL,
    credential_device_type  text NOT NULL,
    credential_backed_up    boolean NOT NULL,
    transports              text,
    created_at              bigint NOT NULL,
    updated_at              bigint NOT NULL,
    CONSTRAINT authenticators_user_fk FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
);
CREATE INDEX authenticators_user_idx ON authenticators (user_id);

COMMENT ON TABLE users IS 'authdb users; email_key is authdb::normalize_email(email), unique';
COMMENT ON COLUMN users.security_stamp IS
    '16 random bytes, replaced by set_password, delete_sessions and any change of normalized email';
COMMENT ON TABLE accounts IS
    'provider accounts; refresh_token, access_token, id_token and extra are sealed (XChaCha20-Poly1305)';
COMMENT ON TABLE sessions IS 'database sessions; token_hash is the SHA-256 of the session token (never stored)';
COMMENT ON TABLE verification_tokens IS
    'email sign-in links (NextAuth v3 requests and Auth.js tokens); single use, matched by token_hash and identifier_key';
COMMENT ON TABLE credentials IS 'passwords as argon2id PHC strings';
COMMENT ON TABLE authenticators IS
    'WebAuthn authenticators; counter holds the u64 signature counter''s bits (above 2^63-1 it reads negative in SQL)';
