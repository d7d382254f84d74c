//! `check_integrity`: every index against every table. Each table module checks its own
//! records and indexes; this module runs them all on one snapshot.

mod report;

use redb::ReadableTable;

pub(crate) use report::id_str;
pub use report::{IntegrityProblem, IntegrityReport};

use crate::error::Result;
use crate::schema;
use crate::tables::{
    accounts, authenticators, credentials, sessions, users, verification, verification_attempts,
    web_sessions,
};

/// Checks the whole database as seen by `rtx`.
pub(crate) fn check(rtx: &redb::ReadTransaction) -> Result<IntegrityReport> {
    let mut r = IntegrityReport::default();
    let meta = rtx.open_table(schema::META)?;
    let found = meta.get(schema::SCHEMA_VERSION_KEY)?.map(|g| g.value());
    if found != Some(schema::SCHEMA_VERSION) {
        r.push(IntegrityProblem::SchemaVersion { found });
    }
    r.users = users::check(rtx, &mut r)?;
    r.accounts = accounts::check(rtx, &mut r)?;
    r.sessions = sessions::check(rtx, &mut r)?;
    r.verification_requests = verification::check(rtx, &mut r)?;
    verification_attempts::check(rtx, &mut r)?;
    r.credentials = credentials::check(rtx, &mut r)?;
    r.authenticators = authenticators::check(rtx, &mut r)?;
    r.web_sessions = web_sessions::check(rtx, &mut r)?;
    Ok(r)
}

/// Whether the user `id` exists (for the "refers to a missing user" checks).
pub(crate) fn user_exists(src: &impl crate::source::Source, id: &[u8; 16]) -> Result<bool> {
    Ok(src.users()?.get(id)?.is_some())
}
