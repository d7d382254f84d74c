//! [`AuthDb::backup_to`]: a consistent copy of a live database, and the helper every operation
//! that writes a new file (backup, import into a new file, salvage) uses to create it without
//! ever leaving a half-written file at the target path.

use std::path::{Path, PathBuf};

use redb::{
    MultimapTableDefinition, MultimapTableHandle, ReadableMultimapTable, ReadableTable,
    TableDefinition, TableHandle,
};
use serde::Serialize;

use crate::db::AuthDb;
use crate::error::{Error, Result};
use crate::schema;

/// What [`AuthDb::backup_to`] copied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct BackupStats {
    /// Tables copied.
    pub tables: u64,
    /// Entries copied (records and index entries).
    pub entries: u64,
    /// The size of the new file in bytes.
    pub file_bytes: u64,
}

impl AuthDb {
    /// Writes a consistent copy of the database to a new file at `path`, while the
    /// application keeps reading and writing.
    ///
    /// The copy is made from **one read snapshot**: it holds exactly the commits that had
    /// finished when the call began, none of the later ones, and it never waits for or
    /// blocks writers (redb keeps the snapshot's pages alive until the copy is done). It is
    /// not a byte copy of the file: every table is read entry by entry and written into a
    /// fresh redb file, which is built under a temporary name in the target's directory,
    /// committed durably and only then linked into place. A crash or an error leaves no file
    /// at `path`.
    ///
    /// `path` must not exist ([`Error::Storage`] with an `AlreadyExists` I/O error): a backup
    /// never overwrites anything. The copy opens with [`AuthDb::open`] and passes
    /// [`check_integrity`](AuthDb::check_integrity) whenever the original does.
    pub fn backup_to(&self, path: impl AsRef<Path>) -> Result<BackupStats> {
        self.backup_to_with_progress(path, |_| {})
    }

    /// [`backup_to`](Self::backup_to), calling `progress` with the number of entries copied so
    /// far (every few thousand entries and at the end).
    pub fn backup_to_with_progress(
        &self,
        path: impl AsRef<Path>,
        mut progress: impl FnMut(u64),
    ) -> Result<BackupStats> {
        let path = path.as_ref();
        let rtx = self.read()?;
        let mut stats = create_new_file(path, |db| {
            let mut wtx = db.begin_write()?;
            wtx.set_durability(redb::Durability::Immediate)?;
            let stats = copy_all(&rtx, &wtx, &mut progress)?;
            wtx.commit()?;
            Ok::<_, Error>(stats)
        })?;
        stats.file_bytes = std::fs::metadata(path)?.len();
        progress(stats.entries);
        Ok(stats)
    }
}

/// How often progress is reported, in entries.
pub(crate) const PROGRESS_EVERY: u64 = 4096;

/// Copies every table of `rtx` into `wtx`. A table this build does not know stops the copy:
/// a backup never leaves data behind silently.
fn copy_all(
    rtx: &redb::ReadTransaction,
    wtx: &redb::WriteTransaction,
    progress: &mut impl FnMut(u64),
) -> Result<BackupStats> {
    let mut c = Copier {
        rtx,
        wtx,
        stats: BackupStats::default(),
        progress,
        known: Vec::new(),
    };
    c.table(schema::META)?;
    c.table(schema::USERS)?;
    c.table(schema::USERS_BY_EMAIL)?;
    c.table(schema::ACCOUNTS)?;
    c.table(schema::ACCOUNTS_BY_PROVIDER)?;
    c.multimap(schema::ACCOUNTS_BY_USER)?;
    c.table(schema::SESSIONS)?;
    c.table(schema::VERIFICATION)?;
    c.table(schema::VERIFICATION_BY_EXPIRY)?;
    c.multimap(schema::VERIFICATION_BY_IDENTIFIER)?;
    c.table(schema::VERIFICATION_ATTEMPTS)?;
    c.table(schema::CREDENTIALS)?;
    c.table(schema::AUTHENTICATORS)?;
    c.multimap(schema::AUTHENTICATORS_BY_USER)?;
    c.table(schema::WEB_SESSIONS)?;
    let known = std::mem::take(&mut c.known);
    let names = rtx
        .list_tables()?
        .map(|t| t.name().to_owned())
        .chain(rtx.list_multimap_tables()?.map(|t| t.name().to_owned()));
    for name in names {
        if !known.contains(&name) {
            return Err(std::io::Error::other(format!(
                "the database has a table `{name}` that this version of authdb does not know; \
                 back it up with the authdb version that wrote it"
            ))
            .into());
        }
    }
    Ok(c.stats)
}

struct Copier<'a, P> {
    rtx: &'a redb::ReadTransaction,
    wtx: &'a redb::WriteTransaction,
    stats: BackupStats,
    progress: &'a mut P,
    known: Vec<String>,
}

impl<P: FnMut(u64)> Copier<'_, P> {
    fn tick(&mut self) {
        self.stats.entries += 1;
        if self.stats.entries.is_multiple_of(PROGRESS_EVERY) {
            (self.progress)(self.stats.entries);
        }
    }

    fn table<K: redb::Key + 'static, V: redb::Value + 'static>(
        &mut self,
        def: TableDefinition<K, V>,
    ) -> Result<()> {
        self.known.push(def.name().to_owned());
        let src = match self.rtx.open_table(def) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let mut dst = self.wtx.open_table(def)?;
        for e in src.iter()? {
            let (k, v) = e?;
            dst.insert(k.value(), v.value())?;
            self.tick();
        }
        self.stats.tables += 1;
        Ok(())
    }

    fn multimap<K: redb::Key + 'static, V: redb::Key + 'static>(
        &mut self,
        def: MultimapTableDefinition<K, V>,
    ) -> Result<()> {
        self.known.push(def.name().to_owned());
        let src = match self.rtx.open_multimap_table(def) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let mut dst = self.wtx.open_multimap_table(def)?;
        for e in src.iter()? {
            let (k, vals) = e?;
            for v in vals {
                dst.insert(k.value(), v?.value())?;
                self.tick();
            }
        }
        self.stats.tables += 1;
        Ok(())
    }
}

/// Creates a new authdb file at `path` (which must not exist): a fresh database with every
/// table is made under a temporary name in the same directory (owner-only permissions on
/// Unix), `fill` writes into it (and commits durably), and only when it succeeds is the file
/// linked to `path`. On any error the temporary file is removed and `path` never appears.
pub(crate) fn create_new_file<T, E: From<Error>>(
    path: &Path,
    fill: impl FnOnce(&redb::Database) -> std::result::Result<T, E>,
) -> std::result::Result<T, E> {
    if path.exists() {
        return Err(Error::from(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!(
                "{} already exists (authdb never overwrites it)",
                path.display()
            ),
        ))
        .into());
    }
    let tmp = temp_path(path).map_err(E::from)?;
    let result = (|| {
        let db = create_db(&tmp).map_err(E::from)?;
        let out = fill(&db)?;
        drop(db);
        publish(&tmp, path).map_err(E::from)?;
        Ok(out)
    })();
    let _ = std::fs::remove_file(&tmp);
    result
}

fn temp_path(path: &Path) -> Result<PathBuf> {
    let name = path
        .file_name()
        .ok_or(Error::InvalidConfig("the target path has no file name"))?;
    let mut nonce = [0u8; 8];
    crate::token::random_bytes(&mut nonce)?;
    Ok(dir_of(path).join(format!(
        ".{}.authdb-new-{}",
        name.to_string_lossy(),
        crate::token::hex(&nonce)
    )))
}

fn dir_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// A fresh redb file with every authdb table, committed durably.
fn create_db(tmp: &Path) -> Result<redb::Database> {
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true).write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let file = opts.open(tmp)?;
    let backend = redb::backends::FileBackend::new(file).map_err(Error::from)?;
    let mut b = redb::Builder::new();
    b.set_cache_size(64 * 1024 * 1024);
    let db = b.create_with_backend(backend)?;
    let mut wtx = db.begin_write()?;
    wtx.set_durability(redb::Durability::Immediate)?;
    schema::create_tables(&wtx)?;
    wtx.commit()?;
    Ok(db)
}

/// Links the finished file at `path` (never replacing a file that appeared meanwhile).
fn publish(tmp: &Path, path: &Path) -> Result<()> {
    match std::fs::hard_link(tmp, path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Err(e.into()),
        // A file system without hard links.
        Err(_) if !path.exists() => std::fs::rename(tmp, path)?,
        Err(e) => return Err(e.into()),
    }
    #[cfg(unix)]
    std::fs::File::open(dir_of(path))?.sync_all()?;
    Ok(())
}
