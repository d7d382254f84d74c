-- authdb-postgres schema version 2: failed verification attempts.
--
-- Written only by stores built with `allow_short_verification_tokens` (apps that mail short
-- one-time codes): one row per identifier with recent failed attempts, keyed by
-- authdb::backend::verification_identifier_key (a SHA-256 of the normalized identifier, never
-- the address). When the count reaches the limit, every link of the identifier is deleted
-- with the row. Rows older than authdb's attempt window (24 hours) no longer count and are
-- removed by purge_expired.

CREATE TABLE verification_attempts (
    identifier_hash  bytea PRIMARY KEY,
    failures         integer NOT NULL,
    window_start     bigint NOT NULL,
    CONSTRAINT verification_attempts_identifier_hash_len CHECK (octet_length(identifier_hash) = 32),
    CONSTRAINT verification_attempts_failures_positive CHECK (failures > 0)
);
CREATE INDEX verification_attempts_window_idx ON verification_attempts (window_start);

-- Counting locks, and the limit deletes, every link of one identifier.
CREATE INDEX verification_tokens_identifier_key_idx ON verification_tokens (identifier_key);

COMMENT ON TABLE verification_attempts IS
    'failed verification attempts per identifier (short codes only); identifier_hash is a SHA-256 of the normalized identifier';
