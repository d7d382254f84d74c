//! The redb handle under an [`AuthDb`](crate::AuthDb): read-write, or read-only (a process
//! that follows another process's commits in a shared mode).

use redb::ReadableDatabase;

use crate::error::{Error, Result};

/// How processes share one database file.
///
/// Every process that opens the file at the same time must use the same mode. The shared modes
/// use byte-range file locks (Linux, the Apple platforms and Windows).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ShareMode {
    /// One process opens the file; a second open (in any process) is
    /// [`Error::AlreadyOpen`]. The default, and the fastest.
    #[default]
    Exclusive,
    /// One writer process plus any number of read-only processes
    /// ([`Builder::open_read_only`](crate::Builder::open_read_only)) that see each of its
    /// commits.
    SingleWriter,
    /// Any number of processes open the file read-write; write transactions take turns across
    /// processes (one at a time), reads never wait.
    MultiWriter,
}

impl ShareMode {
    pub(crate) fn to_redb(self) -> redb::ConcurrencyMode {
        match self {
            Self::Exclusive => redb::ConcurrencyMode::ExclusiveWriter,
            Self::SingleWriter => redb::ConcurrencyMode::SingleWriter,
            Self::MultiWriter => redb::ConcurrencyMode::MultiWriter,
        }
    }
}

/// A read-write or a read-only redb database.
pub(crate) enum Handle {
    ReadWrite(redb::Database),
    ReadOnly(redb::ReadOnlyDatabase),
}

impl Handle {
    pub(crate) fn begin_read(&self) -> Result<redb::ReadTransaction> {
        Ok(match self {
            Self::ReadWrite(db) => db.begin_read()?,
            Self::ReadOnly(db) => db.begin_read()?,
        })
    }

    /// The read-write database, or [`Error::ReadOnly`].
    pub(crate) fn writable(&self) -> Result<&redb::Database> {
        match self {
            Self::ReadWrite(db) => Ok(db),
            Self::ReadOnly(_) => Err(Error::ReadOnly),
        }
    }

    pub(crate) fn is_read_only(&self) -> bool {
        matches!(self, Self::ReadOnly(_))
    }
}
