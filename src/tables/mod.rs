//! One module per kind of record: how it is read, how it and its index entries are written
//! together, and how its integrity is checked. Operations that span several kinds (a user's
//! cascade, a session's user) are composed in `txn/`.

pub(crate) mod accounts;
pub(crate) mod authenticators;
pub(crate) mod credentials;
mod prefixed;
pub(crate) mod sessions;
pub(crate) mod users;
pub(crate) mod verification;
pub(crate) mod verification_attempts;
pub(crate) mod web_sessions;

/// `true` if a record expiring at `expires` is expired at `now` (strictly later).
pub(crate) fn is_expired(now: i64, expires: i64) -> bool {
    now > expires
}

/// What a lookup by token found.
pub(crate) enum Lookup<T> {
    /// Nothing matches.
    Missing,
    /// A match that has expired (the caller deletes it when it may write).
    Expired,
    /// A live match.
    Live(T),
}
