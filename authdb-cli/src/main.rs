//! `authdb`: look inside an authdb file, back it up, move it, repair it, rotate its key and
//! migrate a NextAuth / Auth.js database into it. See `authdb --help` and the README's
//! "Operating authdb" section.

mod nextauth;
mod output;

use std::io::{BufReader, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use authdb::{AuthDb, EncryptionKey, ShareMode};
use clap::{Parser, Subcommand};

use output::{Out, Progress, human_bytes, progress_shown};

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  error (I/O, storage, a file that is not an authdb database, ...)
  2  usage error (unknown command or option)
  3  the database file is held by another process (an application that opened it exclusively)
  4  done, but the report lists problems: `check` found integrity problems, `salvage` lost
     records, `rekey` left values it could not open, `migrate-from` refused rows
  5  the input was refused and nothing was written: `import` met a bad line, `migrate-from`
     could not read its source";

const ABOUT: &str = "\
The authdb command-line tool: look inside an authdb database file, back it up, move it,
repair it, rotate its encryption key, and migrate a NextAuth / Auth.js database into it.

Commands that only read (stats, check, backup, export) work beside a running application that
opened the file with ShareMode::SingleWriter or MultiWriter; every other command needs the
application stopped (a file held exclusively gives exit code 3).

Backup schedule: run `authdb backup auth.redb /backups/auth-$(date +%F).redb` daily and
before upgrades (one consistent snapshot, checked; the app keeps serving).
Moving to another machine: copy a backup, or `authdb export` there and `authdb import` here
(ids, hashes and sealed tokens are kept: users stay signed in; bring the same key).
Rotating the encryption key: stop the app, `authdb rekey FILE --old-key-env OLD --new-key-env
NEW` (resumable), start the app with the new key.
Migrating from NextAuth: `authdb migrate-from SOURCE FILE --key-env KEY --dry-run`, then
without --dry-run (SOURCE: a SQLite file or a postgres:// URL).

Keys are read from environment variables, never from the command line: a variable holds
`hex:<64 hex digits>` or `base64:<44 characters>` (the 32 bytes of EncryptionKey::from_bytes),
or an application secret of at least 32 bytes (EncryptionKey::from_secret).";

#[derive(Parser)]
#[command(name = "authdb", version, about = ABOUT, after_help = EXIT_CODES)]
struct Cli {
    /// Print a JSON report on standard output instead of text (for scripts).
    #[arg(long, global = true)]
    json: bool,
    /// Draw no progress bars on standard error (they are drawn only on a terminal, and never
    /// with --json).
    #[arg(long, short, global = true)]
    quiet: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Rows per table, file size, space in use and free, schema version.
    ///
    /// Live and expired sessions and sign-in links are counted apart.
    Stats {
        /// The database file.
        file: PathBuf,
    },
    /// Checks that every index agrees with every table (`AuthDb::check_integrity`).
    ///
    /// Exit code 4 when problems are found.
    Check {
        /// The database file.
        file: PathBuf,
    },
    /// Deletes expired sessions and sign-in links (in batches; writers wait at most one batch).
    Purge {
        /// The database file.
        file: PathBuf,
    },
    /// Gives free pages back to the file system (run after a large purge).
    ///
    /// Needs the application stopped.
    Compact {
        /// The database file.
        file: PathBuf,
    },
    /// Writes a consistent copy of FILE to OUT from one read snapshot (never a byte copy of the
    /// file); OUT must not exist.
    ///
    /// The copy is checked with check_integrity.
    Backup {
        /// The database file.
        file: PathBuf,
        /// The new file to write.
        out: PathBuf,
    },
    /// Recovers every record of a damaged file that still decodes and passes its checks into OUT,
    /// rebuilding every index, and reports what was lost (exit code 4 when anything was).
    ///
    /// DAMAGED is never modified.
    Salvage {
        /// The damaged database file.
        damaged: PathBuf,
        /// The new file to write (must not exist).
        out: PathBuf,
        /// An environment variable holding the encryption key: accounts are then kept only if
        /// their sealed tokens open under it (proving them undamaged).
        #[arg(long, value_name = "VAR")]
        key_env: Option<String>,
    },
    /// Writes every record as JSON Lines (a versioned header, one record per line, Auth.js field
    /// names; secrets stay hashed or sealed as stored).
    ///
    /// The file is as sensitive as the database: it is created with owner-only permissions.
    Export {
        /// The database file.
        file: PathBuf,
        /// Write to this file (must not exist) instead of standard output.
        #[arg(short, long, value_name = "OUT.jsonl")]
        output: Option<PathBuf>,
    },
    /// Imports an export into FILE (created if missing) in one transaction.
    ///
    /// everything, or nothing and the number of the bad line (exit code 5). Keeps ids; refuses
    /// duplicates.
    Import {
        /// The database file (created if missing; a failed import then leaves no file).
        file: PathBuf,
        /// The export to read (`-` for standard input).
        input: PathBuf,
    },
    /// Re-seals every OAuth token and account secret under a new encryption key, in batches of 500
    /// accounts; safe to interrupt and run again.
    ///
    /// Stop the application first, then start it with the new key.
    Rekey {
        /// The database file.
        file: PathBuf,
        /// The environment variable holding the current key.
        #[arg(long, value_name = "VAR")]
        old_key_env: String,
        /// The environment variable holding the new key.
        #[arg(long, value_name = "VAR")]
        new_key_env: String,
    },
    /// Moves a NextAuth or Auth.js database (SQLite or PostgreSQL) into FILE.
    ///
    /// Reads the NextAuth v3 TypeORM schema (users, accounts, sessions, verification_requests)
    /// or the Auth.js v4/v5 Prisma / pg adapter schema (User, Account, Session,
    /// VerificationToken, Authenticator). Session tokens are hashed on the way in (everyone
    /// stays signed in), verification tokens move as they are, OAuth tokens are sealed under
    /// the key. Duplicate emails (after normalization) and orphan rows are refused and
    /// reported (exit code 4).
    MigrateFrom {
        /// A SQLite file path, or a `postgres://` URL.
        source: String,
        /// The authdb file to write (created if missing; nothing is written on failure).
        file: PathBuf,
        /// Read and check everything, report what would move, write nothing.
        #[arg(long)]
        dry_run: bool,
        /// The environment variable holding the encryption key that seals OAuth tokens
        /// (needed when the source holds any).
        #[arg(long, value_name = "VAR")]
        key_env: Option<String>,
        /// PostgreSQL: the schema holding the NextAuth tables (default: the first schema of
        /// the search path).
        #[arg(long, value_name = "NAME")]
        schema: Option<String>,
    },
}

/// A failure with its exit code; the message is printed as `authdb: <message>`.
struct Fail {
    code: u8,
    message: String,
}

impl Fail {
    fn new(code: u8, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

type Res<T> = Result<T, Fail>;

/// An authdb error about `file`, with its exit code.
fn db_error(file: &Path, e: &authdb::Error) -> Fail {
    let f = file.display();
    match e {
        authdb::Error::AlreadyOpen => Fail::new(
            3,
            format!(
                "{f} is held by another process (an application opened it with \
                 ShareMode::Exclusive, the default). Stop the application, or have it open the \
                 file with ShareMode::SingleWriter so that stats, check, backup and export can \
                 read beside it"
            ),
        ),
        authdb::Error::Storage(_) if is_not_a_database(&e.to_string()) => Fail::new(
            1,
            format!("{f} is not an authdb database (not a redb file, or damaged: {e})"),
        ),
        _ => Fail::new(1, format!("{f}: {e}")),
    }
}

fn is_not_a_database(s: &str) -> bool {
    s.contains("Not a redb database")
        || s.contains("InvalidData")
        || s.contains("invalid data")
        || s.contains("corrupt")
        || s.contains("Corrupt")
}

fn require_file(file: &Path) -> Res<()> {
    match std::fs::metadata(file) {
        Ok(m) if m.is_file() && m.len() == 0 => Err(Fail::new(
            1,
            format!("{} is empty, not an authdb database", file.display()),
        )),
        Ok(m) if m.is_file() => Ok(()),
        Ok(_) => Err(Fail::new(1, format!("{} is not a file", file.display()))),
        Err(_) => Err(Fail::new(1, format!("{}: no such file", file.display()))),
    }
}

/// Opens an existing file for writing (exclusive).
fn open_rw(file: &Path) -> Res<AuthDb> {
    require_file(file)?;
    AuthDb::builder().open(file).map_err(|e| db_error(file, &e))
}

/// Opens an existing file for reading: exclusively if it is free, else beside an application
/// that opened it in a shared mode.
fn open_for_reading(file: &Path) -> Res<AuthDb> {
    require_file(file)?;
    match AuthDb::builder().open(file) {
        Err(authdb::Error::AlreadyOpen) => {
            for mode in [ShareMode::SingleWriter, ShareMode::MultiWriter] {
                if let Ok(db) = AuthDb::builder().share_mode(mode).open_read_only(file) {
                    return Ok(db);
                }
            }
            Err(db_error(file, &authdb::Error::AlreadyOpen))
        }
        other => other.map_err(|e| db_error(file, &e)),
    }
}

/// The key in environment variable `var` (see the tool's help for the accepted forms).
pub(crate) fn key_from_env(var: &str) -> Res<EncryptionKey> {
    let v = std::env::var(var)
        .map_err(|_| Fail::new(1, format!("the environment variable {var} is not set")))?;
    let bytes = if let Some(h) = v.strip_prefix("hex:") {
        Some(unhex(h.trim()).ok_or_else(|| {
            Fail::new(
                1,
                format!("{var}: `hex:` must be followed by 64 hexadecimal digits"),
            )
        })?)
    } else if let Some(b) = v.strip_prefix("base64:") {
        Some(unbase64(b.trim()).ok_or_else(|| {
            Fail::new(
                1,
                format!("{var}: `base64:` must be followed by 32 bytes in base64"),
            )
        })?)
    } else {
        None
    };
    match bytes {
        Some(b) => Ok(EncryptionKey::from_bytes(b)),
        None => EncryptionKey::from_secret(&v).map_err(|e| Fail::new(1, format!("{var}: {e}"))),
    }
}

fn unhex(s: &str) -> Option<[u8; 32]> {
    let b = s.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (o, p) in out.iter_mut().zip(b.chunks_exact(2)) {
        let s = std::str::from_utf8(p).ok()?;
        *o = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

fn unbase64(s: &str) -> Option<[u8; 32]> {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::new();
    for c in s.bytes().filter(|c| *c != b'=') {
        let v = A.iter().position(|a| *a == c)? as u32;
        bits = (bits << 6) | v;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    out.try_into().ok()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let out = Out::new(cli.json);
    let progress = progress_shown(cli.json, cli.quiet);
    match run(cli.cmd, &out, progress) {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            if out.json {
                out.json_value(&serde_json::json!({"error": f.message, "exit_code": f.code}));
            }
            eprintln!("authdb: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

fn run(cmd: Cmd, out: &Out, progress: bool) -> Res<u8> {
    match cmd {
        Cmd::Stats { file } => stats(&file, out),
        Cmd::Check { file } => check(&file, out),
        Cmd::Purge { file } => {
            let db = open_rw(&file)?;
            let p = db.purge_expired().map_err(|e| db_error(&file, &e))?;
            out.report(
                &serde_json::json!({"sessions": p.sessions, "verification_tokens": p.verification_requests}),
                &format!(
                    "removed {} expired sessions and {} expired sign-in links",
                    p.sessions, p.verification_requests
                ),
            );
            Ok(0)
        }
        Cmd::Compact { file } => {
            let before = std::fs::metadata(&file).map_or(0, |m| m.len());
            let mut db = open_rw(&file)?;
            let did = db.compact().map_err(|e| db_error(&file, &e))?;
            drop(db);
            let after = std::fs::metadata(&file).map_or(0, |m| m.len());
            out.report(
                &serde_json::json!({"compacted": did, "bytes_before": before, "bytes_after": after}),
                &format!(
                    "{}: {} → {}",
                    file.display(),
                    human_bytes(before),
                    human_bytes(after)
                ),
            );
            Ok(0)
        }
        Cmd::Backup { file, out: target } => backup(&file, &target, out, progress),
        Cmd::Salvage {
            damaged,
            out: target,
            key_env,
        } => salvage(&damaged, &target, key_env.as_deref(), out, progress),
        Cmd::Export { file, output } => export(&file, output.as_deref(), out, progress),
        Cmd::Import { file, input } => import(&file, &input, out, progress),
        Cmd::Rekey {
            file,
            old_key_env,
            new_key_env,
        } => rekey(&file, &old_key_env, &new_key_env, out, progress),
        Cmd::MigrateFrom {
            source,
            file,
            dry_run,
            key_env,
            schema,
        } => nextauth::migrate(
            &nextauth::Args {
                source,
                file,
                dry_run,
                key_env,
                schema,
            },
            out,
            progress,
        ),
    }
}

fn stats(file: &Path, out: &Out) -> Res<u8> {
    let db = open_for_reading(file)?;
    let mut s = db.stats().map_err(|e| db_error(file, &e))?;
    s.file_bytes = std::fs::metadata(file).ok().map(|m| m.len());
    let mut text = format!(
        "file            {} ({})\n\
         schema version  {}\n\
         users           {}\n\
         accounts        {}\n\
         sessions        {} live, {} expired{}\n\
         sign-in links   {} live, {} expired\n\
         passwords       {}\n\
         authenticators  {}",
        file.display(),
        human_bytes(s.file_bytes.unwrap_or(0)),
        s.schema_version.map_or("none".into(), |v| v.to_string()),
        s.users,
        s.accounts,
        s.sessions_live,
        s.sessions_expired,
        if s.sessions_damaged > 0 {
            format!(", {} damaged (run `authdb check`)", s.sessions_damaged)
        } else {
            String::new()
        },
        s.verification_live,
        s.verification_expired,
        s.credentials,
        s.authenticators,
    );
    if let Some(st) = &s.storage {
        text.push_str(&format!(
            "\nspace           {} in pages, {} of records, {} of metadata, {} free or \
             fragmented (`authdb compact` returns free space)",
            human_bytes(st.allocated_bytes),
            human_bytes(st.stored_bytes),
            human_bytes(st.metadata_bytes),
            human_bytes(st.fragmented_bytes)
        ));
    }
    out.report(&s, &text);
    Ok(0)
}

fn check(file: &Path, out: &Out) -> Res<u8> {
    let db = open_for_reading(file)?;
    let r = db.check_integrity().map_err(|e| db_error(file, &e))?;
    let problems: Vec<String> = r.problems().iter().map(ToString::to_string).collect();
    out.report(
        &serde_json::json!({
            "clean": r.is_clean(),
            "users": r.users, "accounts": r.accounts, "sessions": r.sessions,
            "verification_tokens": r.verification_requests, "passwords": r.credentials,
            "authenticators": r.authenticators, "problems": problems,
        }),
        r.to_string().trim_end(),
    );
    Ok(if r.is_clean() { 0 } else { 4 })
}

fn backup(file: &Path, target: &Path, out: &Out, progress: bool) -> Res<u8> {
    let db = open_for_reading(file)?;
    let p = Progress::counter(progress, "backup", "entries copied");
    let stats = db
        .backup_to_with_progress(target, |n| p.set(n))
        .map_err(|e| Fail::new(1, format!("backup to {}: {e}", target.display())))?;
    drop(p);
    drop(db);
    let copy = AuthDb::builder()
        .open(target)
        .map_err(|e| db_error(target, &e))?;
    let r = copy.check_integrity().map_err(|e| db_error(target, &e))?;
    out.report(
        &serde_json::json!({
            "file": target, "entries": stats.entries, "tables": stats.tables,
            "bytes": stats.file_bytes, "clean": r.is_clean(),
        }),
        &format!(
            "{} → {}: {} entries in {} tables, {}; check_integrity: {}",
            file.display(),
            target.display(),
            stats.entries,
            stats.tables,
            human_bytes(stats.file_bytes),
            if r.is_clean() {
                "clean"
            } else {
                "PROBLEMS (see `authdb check`)"
            }
        ),
    );
    Ok(if r.is_clean() { 0 } else { 4 })
}

fn salvage(
    damaged: &Path,
    target: &Path,
    key_env: Option<&str>,
    out: &Out,
    progress: bool,
) -> Res<u8> {
    require_file(damaged)?;
    let mut opts = authdb::SalvageOptions::default();
    if let Some(var) = key_env {
        opts.key = Some(key_from_env(var)?);
    }
    // Reading the damaged file: a count (its size is not to be trusted); then checking and
    // writing what was read: a bar.
    let mut p = Progress::counter(progress, "salvage: reading", "entries");
    let mut writing = false;
    let r = authdb::salvage_with_progress(damaged, target, &opts, |step| match step {
        authdb::SalvageProgress::Reading { entries } => p.set(entries),
        authdb::SalvageProgress::Writing { done, total } => {
            if !writing {
                writing = true;
                p = std::mem::replace(&mut p, Progress::hidden()).into_bar(
                    progress,
                    "salvage: checking and writing",
                    total,
                    "entries",
                );
            }
            p.set(done);
        }
        _ => {}
    });
    drop(p);
    let r = r.map_err(|e| Fail::new(1, format!("salvage of {}: {e}", damaged.display())))?;
    let mut text = format!(
        "{} → {} ({}; result {})\n{:<24} {:>9} {:>9} {:>9} {:>9}",
        damaged.display(),
        target.display(),
        if r.verified_open {
            "redb could verify the file"
        } else {
            "read without page verification"
        },
        if r.output_clean {
            "integrity-clean"
        } else {
            "NOT clean"
        },
        "table",
        "expected",
        "recovered",
        "rejected",
        "lost"
    );
    for t in &r.tables {
        text.push_str(&format!(
            "\n{:<24} {:>9} {:>9} {:>9} {:>9}{}",
            t.table,
            t.expected.map_or("?".into(), |e| e.to_string()),
            t.recovered,
            t.rejected,
            t.lost(),
            if t.complete {
                ""
            } else {
                "  (not fully readable)"
            }
        ));
    }
    text.push_str(&format!(
        "\n{} records recovered, {} lost",
        r.recovered(),
        r.lost()
    ));
    out.report(&r, &text);
    Ok(if r.lost() > 0 || !r.output_clean {
        4
    } else {
        0
    })
}

/// A new file for sensitive output: owner-only, never overwriting.
fn create_private(path: &Path) -> Res<std::fs::File> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path)
        .map_err(|e| Fail::new(1, format!("{}: {e}", path.display())))
}

fn export(file: &Path, target: Option<&Path>, out: &Out, progress: bool) -> Res<u8> {
    let db = open_for_reading(file)?;
    let p = match db.stats() {
        Ok(s) if progress => Progress::bar(
            progress,
            "export",
            s.users
                + s.credentials
                + s.accounts
                + s.sessions_live
                + s.sessions_expired
                + s.authenticators
                + s.verification_live
                + s.verification_expired,
            "records",
        ),
        _ => Progress::counter(progress, "export", "records"),
    };
    let counts = match target {
        Some(t) => {
            let f = create_private(t)?;
            let r = db.export_to_with_progress(f, |n| p.set(n)).and_then(|c| {
                std::fs::File::open(t)?.sync_all()?;
                Ok(c)
            });
            match r {
                Ok(c) => c,
                Err(e) => {
                    let _ = std::fs::remove_file(t);
                    return Err(db_error(file, &e));
                }
            }
        }
        None => {
            let stdout = std::io::stdout();
            db.export_to_with_progress(stdout.lock(), |n| p.set(n))
                .map_err(|e| db_error(file, &e))?
        }
    };
    drop(p);
    let text = format!(
        "exported {} users, {} passwords, {} accounts, {} sessions, {} authenticators, {} sign-in links",
        counts.users,
        counts.passwords,
        counts.accounts,
        counts.sessions,
        counts.authenticators,
        counts.verification_tokens
    );
    if target.is_some() {
        out.report(&counts, &text);
    } else if !out.json {
        // Standard output holds the export itself.
        eprintln!("{text}");
    }
    Ok(0)
}

fn import(file: &Path, input: &Path, out: &Out, progress: bool) -> Res<u8> {
    let name = input.display().to_string();
    // A file moves a bar by the bytes read; standard input, a count of records.
    let (reader, p, by_records): (Box<dyn std::io::BufRead>, _, _) = if name == "-" {
        let p = Progress::counter(progress, "import", "records");
        (Box::new(BufReader::new(std::io::stdin())), p, true)
    } else {
        let f = std::fs::File::open(input).map_err(|e| Fail::new(1, format!("{name}: {e}")))?;
        let len = f.metadata().map_or(0, |m| m.len());
        let p = Progress::bytes(progress, "import", len);
        let r = BufReader::with_capacity(1 << 20, p.wrap_read(f));
        (Box::new(r), p, false)
    };
    let tick = |n| {
        if by_records {
            p.set(n);
        }
    };
    let r = if file.exists() {
        let db = open_rw(file)?;
        db.import_from_with_progress(reader, tick)
    } else {
        authdb::import_into_new_file(file, reader, tick)
    };
    drop(p);
    let counts = r.map_err(|e| match (e.line(), e.error()) {
        (None, Some(err)) => db_error(file, err),
        _ => Fail::new(
            5,
            format!("{name}: {e}; nothing was written to {}", file.display()),
        ),
    })?;
    out.report(
        &counts,
        &format!(
            "imported {} users, {} passwords, {} accounts, {} sessions, {} authenticators, {} sign-in links into {}",
            counts.users,
            counts.passwords,
            counts.accounts,
            counts.sessions,
            counts.authenticators,
            counts.verification_tokens,
            file.display()
        ),
    );
    Ok(0)
}

fn rekey(file: &Path, old_var: &str, new_var: &str, out: &Out, progress: bool) -> Res<u8> {
    require_file(file)?;
    let old = key_from_env(old_var)?;
    let new = key_from_env(new_var)?;
    let p = Progress::counter(progress, "rekey", "accounts examined");
    let s = authdb::rekey_with_progress(file, &old, &new, |n| p.set(n));
    drop(p);
    let s = s.map_err(|e| db_error(file, &e))?;
    let mut text = format!(
        "{} accounts: {} values re-sealed under the new key, {} already under it, in {} batches",
        s.accounts, s.resealed, s.already_new, s.batches
    );
    if !s.unreadable.is_empty() {
        text.push_str(&format!(
            "\n{} accounts have a value that opens under neither key (left unchanged): {}",
            s.unreadable.len(),
            s.unreadable
                .iter()
                .take(20)
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    out.report(&s, &text);
    Ok(if s.unreadable.is_empty() { 0 } else { 4 })
}

/// Flushes standard output, ignoring a closed pipe.
pub(crate) fn flush_stdout() {
    let _ = std::io::stdout().flush();
}

/// Whether standard error is a terminal (progress bars are drawn only there).
pub(crate) fn stderr_is_tty() -> bool {
    std::io::stderr().is_terminal()
}
