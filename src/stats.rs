//! [`AuthDb::stats`]: how many rows each table holds and how the file's space is used.

use redb::{ReadableTable, ReadableTableMetadata};
use serde::Serialize;

use crate::db::AuthDb;
use crate::error::Result;
use crate::schema;
use crate::source::Source;
use crate::tables::{is_expired, sessions};

/// What a database holds, counted on one read snapshot by [`AuthDb::stats`].
///
/// Expired sessions and sign-in links are still in the file until a purge (or a read that
/// meets them) removes them; they are counted apart from the live ones.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Stats {
    /// The schema version recorded in the file.
    pub schema_version: Option<u64>,
    /// Users.
    pub users: u64,
    /// Linked provider accounts.
    pub accounts: u64,
    /// Sessions that are not expired.
    pub sessions_live: u64,
    /// Sessions that are expired but not yet purged.
    pub sessions_expired: u64,
    /// Session records that cannot be decoded (`check_integrity` names them).
    pub sessions_damaged: u64,
    /// Email sign-in links (verification requests / tokens) that are not expired.
    pub verification_live: u64,
    /// Email sign-in links that are expired but not yet purged.
    pub verification_expired: u64,
    /// Passwords.
    pub credentials: u64,
    /// WebAuthn authenticators.
    pub authenticators: u64,
    /// How the file's space is used, when the handle can tell (not for read-only handles).
    pub storage: Option<StorageStats>,
    /// The size of the file in bytes. `AuthDb` does not know its path, so
    /// [`AuthDb::stats`] leaves this `None`; the `authdb` tool fills it in.
    pub file_bytes: Option<u64>,
}

/// redb's account of the file's pages (`redb::DatabaseStats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct StorageStats {
    /// Pages in use, in bytes (the file may be larger: it grows in regions).
    pub allocated_bytes: u64,
    /// Bytes of keys and values stored (without B-tree overhead).
    pub stored_bytes: u64,
    /// Bytes of B-tree branch keys and other metadata.
    pub metadata_bytes: u64,
    /// Bytes lost to fragmentation and free pages inside the file: what
    /// [`AuthDb::compact`] can give back.
    pub fragmented_bytes: u64,
    /// The page size.
    pub page_size: u64,
    /// The deepest B-tree, in levels.
    pub tree_height: u32,
}

impl AuthDb {
    /// Counts the rows of every table (live and expired sessions and sign-in links apart) on
    /// one read snapshot, and reads redb's storage figures.
    ///
    /// Cost: one pass over the session records and over the expired part of the sign-in link
    /// index; the other tables keep their length. The storage figures need a write
    /// transaction (opened and aborted at once): the call waits for a write in progress.
    pub fn stats(&self) -> Result<Stats> {
        let now = self.cfg().now_micros();
        let rtx = self.read()?;
        let mut s = Stats {
            schema_version: rtx
                .open_table(schema::META)?
                .get(schema::SCHEMA_VERSION_KEY)?
                .map(|g| g.value()),
            users: rtx.users()?.len()?,
            accounts: rtx.accounts()?.len()?,
            credentials: rtx.credentials()?.len()?,
            authenticators: rtx.authenticators()?.len()?,
            ..Stats::default()
        };
        sessions::each_record(&rtx.sessions()?, |_, rec| {
            match rec {
                Ok(r) if is_expired(now, r.expires) => s.sessions_expired += 1,
                Ok(_) => s.sessions_live += 1,
                Err(_) => s.sessions_damaged += 1,
            }
            Ok(())
        })?;
        // The expiry index of sign-in links is exact: entries filed before now are expired.
        let mut expired = 0u64;
        for e in rtx.verification_by_expiry()?.range(..(now, [0u8; 32]))? {
            e?;
            expired += 1;
        }
        let links = rtx.verification()?.len()?;
        s.verification_expired = expired.min(links);
        s.verification_live = links - s.verification_expired;
        drop(rtx);
        s.storage = self.storage_stats();
        Ok(s)
    }

    /// redb's figures, or `None` when no write transaction can be opened (read-only handle).
    fn storage_stats(&self) -> Option<StorageStats> {
        let tx = self.begin_write().ok()?;
        let d = tx.txn.stats().ok()?;
        let page = d.page_size() as u64;
        let out = StorageStats {
            allocated_bytes: d.allocated_pages() * page,
            stored_bytes: d.stored_bytes(),
            metadata_bytes: d.metadata_bytes(),
            fragmented_bytes: d.fragmented_bytes(),
            page_size: page,
            tree_height: d.tree_height(),
        };
        let _ = tx.abort();
        Some(out)
    }
}
