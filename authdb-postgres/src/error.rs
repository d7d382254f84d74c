//! [`PgError`]: what [`Error::Backend`] carries for this crate, and the mapping of database
//! errors onto authdb's error variants.

use std::fmt;

use authdb::{Error, UserId};

/// The name every [`Error::Backend`] of this crate carries in its `backend` field.
pub const BACKEND: &str = "postgres";

/// What went wrong talking to PostgreSQL: the `source` of an [`Error::Backend`] made by this
/// crate (reach it with `source.downcast_ref::<PgError>()`).
///
/// Its message holds the SQLSTATE and the server's one-line message, never the server's
/// `DETAIL` (which can echo row values) nor a bound parameter, so it is safe to log. The
/// underlying error, with its detail, is available from [`postgres_error`](Self::postgres_error)
/// for deliberate debugging.
///
/// Whatever the kind, the operation that returned it was not applied: its transaction was
/// rolled back or never began. The one exception is [`commit_outcome_unknown`](Self::commit_outcome_unknown):
/// the connection was lost while the server was committing, and the operation was applied
/// completely or not at all, which only a later read can tell.
#[derive(Debug)]
pub struct PgError {
    kind: Kind,
    code: Option<String>,
    message: String,
    inner: Option<postgres::Error>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// The server refused a statement (SQLSTATE set).
    Database,
    /// The connection was lost, closed or could not be made.
    Connection,
    /// The connection was lost during `COMMIT`.
    CommitUnknown,
    /// No pooled connection became free in time (or none could be made).
    Pool,
    /// An earlier statement failed inside this `write` transaction, so PostgreSQL aborted it.
    Aborted,
    /// The database is not usable by this crate as it is (encoding, schema).
    Setup,
}

impl PgError {
    /// The SQLSTATE code the server sent (`"57014"` for a statement timeout, `"40001"` for a
    /// serialization failure, ...), if the error came from the server.
    #[must_use]
    pub fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }

    /// True if the connection was lost, closed or could not be established.
    #[must_use]
    pub fn is_connection_error(&self) -> bool {
        matches!(self.kind, Kind::Connection | Kind::CommitUnknown)
    }

    /// True if no pooled connection became available within the checkout timeout.
    #[must_use]
    pub fn is_pool_timeout(&self) -> bool {
        self.kind == Kind::Pool
    }

    /// True if the statement ran longer than the configured statement timeout (SQLSTATE
    /// 57014) and was cancelled by the server.
    #[must_use]
    pub fn is_timeout(&self) -> bool {
        self.code.as_deref() == Some("57014")
    }

    /// True if the connection was lost while committing: the transaction was applied
    /// completely or not at all, and this client cannot tell which.
    #[must_use]
    pub fn commit_outcome_unknown(&self) -> bool {
        self.kind == Kind::CommitUnknown
    }

    /// The error from the `postgres` crate, with the server's full report (its `DETAIL` may
    /// contain row values: do not log it blindly).
    #[must_use]
    pub fn postgres_error(&self) -> Option<&postgres::Error> {
        self.inner.as_ref()
    }

    pub(crate) fn from_postgres(e: postgres::Error) -> Self {
        if let Some(db) = e.as_db_error() {
            let code = db.code().code();
            // FATAL and PANIC end the session: the server closed the connection (an
            // administrator's pg_terminate_backend is 57P01, a shutdown 57P02/57P03).
            let lost = matches!(db.severity(), "FATAL" | "PANIC")
                || code.starts_with("08")
                || code.starts_with("57P");
            return Self {
                kind: if lost || e.is_closed() {
                    Kind::Connection
                } else {
                    Kind::Database
                },
                code: Some(db.code().code().to_owned()),
                message: format!("{}: {}", db.severity(), db.message()),
                inner: Some(e),
            };
        }
        let kind = if e.is_closed() || std::error::Error::source(&e).is_some_and(is_io) {
            Kind::Connection
        } else {
            Kind::Database
        };
        Self {
            kind,
            code: e.code().map(|c| c.code().to_owned()),
            message: e.to_string(),
            inner: Some(e),
        }
    }

    pub(crate) fn pool(e: &r2d2::Error) -> Self {
        Self {
            kind: Kind::Pool,
            code: None,
            message: format!("no pooled connection became available: {e}"),
            inner: None,
        }
    }

    /// This error, met while committing: the outcome is unknown.
    pub(crate) fn into_commit_lost(self) -> Self {
        Self {
            kind: Kind::CommitUnknown,
            message: format!(
                "the connection failed while committing; the transaction was applied \
                 completely or not at all ({})",
                self.message
            ),
            ..self
        }
    }

    pub(crate) fn aborted() -> Self {
        Self {
            kind: Kind::Aborted,
            code: Some("25P02".to_owned()),
            message: "an earlier statement of this transaction failed, so PostgreSQL aborted \
                      it; it was rolled back"
                .to_owned(),
            inner: None,
        }
    }

    pub(crate) fn setup(message: impl Into<String>) -> Self {
        Self {
            kind: Kind::Setup,
            code: None,
            message: message.into(),
            inner: None,
        }
    }
}

fn is_io(e: &(dyn std::error::Error + 'static)) -> bool {
    e.is::<std::io::Error>()
}

impl fmt::Display for PgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.kind, &self.code) {
            (Kind::Connection, _) => write!(f, "connection error: {}", self.message),
            (_, Some(code)) => write!(f, "{} (SQLSTATE {code})", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

/// Deliberately no `source()`: the `postgres` error's `Display` includes the server's
/// `DETAIL`, which can contain row values, and error reporters print whole source chains.
impl std::error::Error for PgError {}

/// A database error as authdb's [`Error::Backend`].
pub(crate) fn pg(e: postgres::Error) -> Error {
    backend(PgError::from_postgres(e))
}

pub(crate) fn backend(e: PgError) -> Error {
    Error::Backend {
        backend: BACKEND,
        source: Box::new(e),
    }
}

/// The name of the constraint a unique (23505) or foreign-key (23503) violation broke.
pub(crate) fn violated(e: &postgres::Error) -> Option<(&str, &str)> {
    let db = e.as_db_error()?;
    let code = db.code().code();
    if code == "23505" || code == "23503" {
        Some((code, db.constraint().unwrap_or("")))
    } else {
        None
    }
}

/// Maps the violations every write may meet onto authdb's variants: a unique constraint to
/// its conflict, a user foreign key to [`Error::UserNotFound`] (the user was deleted by a
/// concurrent transaction); anything else is [`Error::Backend`].
pub(crate) fn mapped(e: postgres::Error, user: Option<&UserId>) -> Error {
    let broken = violated(&e).map(|(code, name)| (code == "23505", name.to_owned()));
    match (broken, user) {
        (Some((true, name)), _) => match name.as_str() {
            "users_email_unique" => Error::EmailTaken,
            "accounts_provider_unique" => Error::AccountLinkedToAnotherUser,
            "sessions_pkey" => Error::SessionTokenTaken,
            "verification_tokens_pkey" => Error::VerificationTokenTaken,
            "authenticators_pkey" => Error::AuthenticatorTaken,
            _ => pg(e),
        },
        (Some((false, _)), Some(user)) => Error::UserNotFound(*user),
        _ => pg(e),
    }
}

/// True for the errors after which a whole single-operation transaction may simply be run
/// again: serialization failures and deadlocks (nothing was applied).
pub(crate) fn is_retryable(e: &Error) -> bool {
    match e {
        Error::Backend { backend, source } if *backend == BACKEND => source
            .downcast_ref::<PgError>()
            .is_some_and(|p| matches!(p.code(), Some("40001" | "40P01"))),
        _ => false,
    }
}
