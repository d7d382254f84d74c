//! The database file: creating it atomically, opening it with owner-only permissions.

use std::path::Path;

use crate::error::{Error, Result};
use crate::schema;
use crate::token;

/// Refuses a symbolic link at `path` unless `follow` (an attacker who can write the directory
/// must not redirect the database to a file of their choosing).
pub(crate) fn check_not_symlink(path: &Path, follow: bool) -> Result<()> {
    if !follow && std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(Error::InvalidConfig(
            "the database path is a symbolic link; open the real path, or allow it with Builder::follow_symlinks",
        ));
    }
    Ok(())
}

/// Opens the redb database at `path`, creating a complete empty authdb file first if there is
/// none (or an empty one). An existing file readable or writable by others is made owner-only
/// (0600) first: it holds password hashes and sealed tokens.
pub(crate) fn open(
    path: &Path,
    redb: &redb::Builder,
    follow_symlinks: bool,
) -> Result<redb::Database> {
    check_not_symlink(path, follow_symlinks)?;
    let needs_init = match std::fs::metadata(path) {
        Ok(m) => m.len() == 0,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
        Err(e) => return Err(e.into()),
    };
    if needs_init {
        init_file(path, redb)?;
    }
    let mut opts = owner_only();
    #[cfg(unix)]
    if !follow_symlinks {
        use std::os::unix::fs::OpenOptionsExt;
        opts.custom_flags(libc::O_NOFOLLOW);
    }
    let file = opts.open(path)?;
    tighten_permissions(&file)?;
    let backend = redb::backends::FileBackend::new(file).map_err(map_open_error)?;
    redb.create_with_backend(backend).map_err(map_open_error)
}

/// Makes the file owner-only when group or others may read or write it.
fn tighten_permissions(file: &std::fs::File) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = file.metadata()?.permissions().mode();
        if mode & 0o077 != 0 {
            file.set_permissions(std::fs::Permissions::from_mode(mode & 0o700))?;
        }
    }
    #[cfg(not(unix))]
    let _ = file;
    Ok(())
}

/// Read-write, create if missing, owner-only permissions on Unix.
fn owner_only() -> std::fs::OpenOptions {
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts
}

/// Creates a complete, empty authdb database at `path` without ever leaving a half-made file
/// there: it is built and synced under a temporary name in the same directory, then linked
/// into place. (redb writes its magic number last, so a crash or a full disk during a
/// first open in place left a file that could never be opened again.)
fn init_file(path: &Path, redb: &redb::Builder) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or(Error::InvalidConfig("the database path has no file name"))?;
    let mut nonce = [0u8; 8];
    token::random_bytes(&mut nonce)?;
    let tmp = dir.join(format!(
        ".{}.authdb-init-{}",
        name.to_string_lossy(),
        token::hex(&nonce)
    ));
    let made = (|| {
        let file = owner_only().create_new(true).open(&tmp)?;
        let backend = redb::backends::FileBackend::new(file).map_err(map_open_error)?;
        let db = redb.create_with_backend(backend).map_err(map_open_error)?;
        create_schema(&db)
    })();
    let result = made.and_then(|()| publish(&tmp, path, &dir));
    let _ = std::fs::remove_file(&tmp);
    result
}

/// Puts the finished file at `path` unless another opener got there first with a real one.
fn publish(tmp: &Path, path: &Path, dir: &Path) -> Result<()> {
    match std::fs::hard_link(tmp, path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            if std::fs::metadata(path)?.len() == 0 {
                std::fs::rename(tmp, path)?;
            }
        }
        // A file system without hard links: rename, which cannot fail half-way either.
        Err(_) if !path.exists() => std::fs::rename(tmp, path)?,
        Err(e) => return Err(e.into()),
    }
    #[cfg(unix)]
    std::fs::File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Creates every table and records the schema version, in one durable commit.
pub(crate) fn create_schema(db: &redb::Database) -> Result<()> {
    let mut wtx = db.begin_write()?;
    wtx.set_durability(redb::Durability::Immediate)?;
    schema::create_tables(&wtx)?;
    wtx.commit()?;
    Ok(())
}

pub(crate) fn map_open_error(e: redb::DatabaseError) -> Error {
    match e {
        redb::DatabaseError::DatabaseAlreadyOpen => Error::AlreadyOpen,
        other => other.into(),
    }
}
