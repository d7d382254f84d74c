//! The error type of every fallible authdb call.

use std::fmt;

use crate::model::UserId;

/// `Result` with authdb's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong with one input value.
///
/// Carried by [`Error::InvalidInput`]. It never contains the value itself, which may be a
/// password, a token or an email address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum InputProblem {
    /// The value is empty (or only white space, for emails and identifiers).
    Empty,
    /// The value is longer than authdb accepts.
    TooLong {
        /// The length that was given, in bytes.
        len: usize,
        /// The largest accepted length, in bytes.
        max: usize,
    },
    /// The value is shorter than authdb accepts (secrets and tokens that must resist guessing).
    TooShort {
        /// The length that was given, in bytes.
        len: usize,
        /// The shortest accepted length, in bytes.
        min: usize,
    },
    /// A token carries less estimated entropy than authdb accepts (a raw verification token
    /// or a caller-chosen session token that could be guessed; see
    /// [`limits::token_entropy_bits`](crate::limits::token_entropy_bits)).
    TooLittleEntropy {
        /// The estimated entropy of the value given, in bits.
        bits: u32,
        /// The fewest bits accepted.
        min: u32,
    },
    /// A time or duration lies outside the range authdb can store or compute with.
    OutOfRange,
    /// A duration that must be positive is zero or negative.
    NotPositive,
}

impl fmt::Display for InputProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("is empty"),
            Self::TooLong { len, max } => write!(f, "is {len} bytes long, over the limit of {max}"),
            Self::TooShort { len, min } => {
                write!(f, "is {len} bytes long, under the minimum of {min}")
            }
            Self::TooLittleEntropy { bits, min } => write!(
                f,
                "carries about {bits} bits of entropy, under the minimum of {min} bits"
            ),
            Self::OutOfRange => f.write_str("is out of the supported range"),
            Self::NotPositive => f.write_str("must be positive"),
        }
    }
}

/// Every error authdb returns.
///
/// *Not found* and *expired* are never errors on reads: those calls return `Ok(None)`.
/// A call that returns an error has written nothing — with one invisible exception: an
/// *expired* verification request that a new request with the same token replaced stays
/// deleted if the new request's sender then fails (expired rows read as absent anyway).
///
/// No variant's message contains a token, password, password hash or secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Another user already has this email address (compared after
    /// [`normalize_email`](crate::normalize_email)).
    #[error("the email address is already used by another user")]
    EmailTaken,
    /// This provider account (provider id + provider account id) is linked to a different user.
    /// NextAuth reports this to the browser as `OAuthAccountNotLinked`.
    #[error("this provider account is already linked to another user")]
    AccountLinkedToAnotherUser,
    /// A live verification request already has this token hash (the same token and secret).
    #[error("a verification request with this token already exists")]
    VerificationTokenTaken,
    /// A session with this token already exists (`create_session_with`).
    #[error("a session with this token already exists")]
    SessionTokenTaken,
    /// An authenticator with this credential id is already registered.
    #[error("an authenticator with this credential id is already registered")]
    AuthenticatorTaken,
    /// No authenticator has this credential id.
    #[error("no authenticator has this credential id")]
    AuthenticatorNotFound,
    /// The new signature counter is not greater than the stored one while one of them is
    /// non-zero: WebAuthn's sign of a cloned authenticator. Nothing was written.
    #[error(
        "the authenticator's signature counter did not increase (stored {stored}, given {given})"
    )]
    CounterNotIncreased {
        /// The stored counter.
        stored: u64,
        /// The counter that was given.
        given: u64,
    },
    /// The operation refers to a user that does not exist.
    #[error("user {0} does not exist")]
    UserNotFound(UserId),
    /// An input value is empty, too long or out of range. Nothing was written.
    #[error("invalid input: `{field}` {problem}")]
    InvalidInput {
        /// The name of the offending argument or field.
        field: &'static str,
        /// What is wrong with it.
        problem: InputProblem,
    },
    /// An input value is not one of the accepted values (for example an account's
    /// `provider_type`), or is not well-formed (a JSON field that is not an object, a control
    /// character in an email address). Nothing was written.
    #[error("invalid input: `{field}` {reason}")]
    InvalidValue {
        /// The name of the offending argument or field.
        field: &'static str,
        /// What is accepted.
        reason: &'static str,
    },
    /// A builder setting is invalid.
    #[error("invalid configuration: {0}")]
    InvalidConfig(&'static str),
    /// OAuth tokens are stored only encrypted, and no key was configured: set one with
    /// [`Builder::encryption_key`](crate::Builder::encryption_key).
    #[error("storing or reading OAuth tokens requires an encryption key (Builder::encryption_key)")]
    EncryptionKeyRequired,
    /// The email provider's sender failed; the verification request was removed again.
    #[error("the email provider failed to send the verification request")]
    SendFailed(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
    /// [`AuthDb::compact`](crate::AuthDb::compact) needs the only handle to the database, and
    /// other clones (or a purge task) are alive.
    #[error("the database has other live handles; compaction needs the only one")]
    Busy,
    /// The database was opened read-only
    /// ([`Builder::open_read_only`](crate::Builder::open_read_only)); writes are refused and
    /// nothing was written.
    #[error("the database was opened read-only; writes are refused")]
    ReadOnly,
    /// The database file is held open by another `AuthDb` (in this or another process).
    #[error("the database file is already open elsewhere")]
    AlreadyOpen,
    /// Opening a file of an older schema version needs a migration that cannot be done
    /// automatically; the file was left unchanged. `detail` says what to fix (it names record
    /// ids, never emails or tokens).
    #[error("cannot migrate the database from schema version {from}: {detail}")]
    MigrationFailed {
        /// The schema version found in the file.
        from: u64,
        /// What stands in the way.
        detail: String,
    },
    /// The file was written by a newer authdb with a schema this version does not know.
    #[error("the database schema version {found} is newer than the supported version {supported}")]
    UnsupportedSchemaVersion {
        /// The version stored in the file.
        found: u64,
        /// The newest version this build understands.
        supported: u64,
    },
    /// A stored record or key could not be decoded: the file is damaged or was written by
    /// something else.
    #[error("corrupt data in table `{table}`: {detail}")]
    Corrupt {
        /// The table holding the bad record.
        table: &'static str,
        /// What was wrong (never the record's bytes).
        detail: String,
    },
    /// Hashing or verifying a password failed for a reason other than a wrong password.
    #[error("password hashing failed: {0}")]
    PasswordHash(String),
    /// The operating system's random number generator failed.
    #[error("the system random number generator failed: {0}")]
    Randomness(String),
    /// Another backend's database (such as PostgreSQL) failed or could not be reached. The
    /// operation was not applied (its transaction was rolled back or never committed).
    #[error("{backend} error: {source}")]
    Backend {
        /// Which backend.
        backend: &'static str,
        /// What it reported (never containing a token or password: backends send those
        /// only as bound parameters, which database errors do not echo).
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// The storage engine (redb) or the file system failed.
    #[error("storage error: {0}")]
    Storage(#[source] Box<redb::Error>),
}

impl Error {
    /// True for the conflict errors: [`Error::EmailTaken`], [`Error::AccountLinkedToAnotherUser`],
    /// [`Error::VerificationTokenTaken`], [`Error::SessionTokenTaken`] and
    /// [`Error::AuthenticatorTaken`].
    #[must_use]
    pub fn is_conflict(&self) -> bool {
        matches!(
            self,
            Self::EmailTaken
                | Self::AccountLinkedToAnotherUser
                | Self::VerificationTokenTaken
                | Self::SessionTokenTaken
                | Self::AuthenticatorTaken
        )
    }

    pub(crate) fn invalid(field: &'static str, problem: InputProblem) -> Self {
        Self::InvalidInput { field, problem }
    }

    pub(crate) fn corrupt(table: &'static str, detail: impl Into<String>) -> Self {
        Self::Corrupt {
            table,
            detail: detail.into(),
        }
    }
}

macro_rules! from_redb {
    ($($t:ty),* $(,)?) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Self {
                Error::Storage(Box::new(redb::Error::from(e)))
            }
        }
    )*};
}

from_redb!(
    redb::StorageError,
    redb::TableError,
    redb::TransactionError,
    redb::CommitError,
    redb::SetDurabilityError,
    redb::DatabaseError,
    redb::CompactionError,
    std::io::Error,
);

impl From<redb::Error> for Error {
    fn from(e: redb::Error) -> Self {
        Error::Storage(Box::new(e))
    }
}
