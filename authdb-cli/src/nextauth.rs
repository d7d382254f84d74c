//! `authdb migrate-from`: reads a NextAuth v3 (TypeORM) or Auth.js v4/v5 (Prisma, pg adapter)
//! database from SQLite or PostgreSQL, turns it into an authdb export (JSON Lines) and
//! imports that in one transaction.
//!
//! - Tables are found by name, case-insensitively: `users`/`User`, `accounts`/`Account`,
//!   `sessions`/`Session`, `verification_requests`/`VerificationToken`/`verification_token`,
//!   `Authenticator`. Columns by their snake_case or camelCase names.
//! - Ids that are UUIDs are kept; others (cuids, integers) get new UUIDs.
//! - Session tokens are hashed (authdb stores only their SHA-256), so signed-in users stay
//!   signed in; verification tokens are already hashed by NextAuth and move as they are; OAuth
//!   tokens are sealed under the key. Extra columns of users become their `extra` fields, extra
//!   columns of accounts (`refresh_token_expires_in`, ...) the accounts' sealed `extra`.
//! - Refused and reported: users whose email equals an earlier user's after normalization
//!   (the oldest is kept), rows authdb's limits refuse, accounts, sessions and authenticators
//!   whose user is missing or refused, duplicate provider accounts, tokens and credential ids.

use std::collections::{HashMap, HashSet};
use std::io::Cursor;
use std::path::PathBuf;

use authdb::backend;
use authdb::{
    AccountId, AuthDb, EncryptionKey, ExportCounts, NewAccount, NewAuthenticator, NewUser, UserId,
};
use chrono::{DateTime, Datelike, NaiveDateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{Value as J, json};
use uuid::Uuid;

use crate::output::{Out, Progress};
use crate::{Fail, Res};

pub(crate) struct Args {
    pub source: String,
    pub file: PathBuf,
    pub dry_run: bool,
    pub key_env: Option<String>,
    pub schema: Option<String>,
}

/// A value read from the source.
#[derive(Debug, Clone)]
enum Val {
    Int(i64),
    Real(f64),
    Text(String),
}

struct Table {
    cols: Vec<String>,
    rows: Vec<Vec<Option<Val>>>,
}

trait Reader {
    fn tables(&mut self) -> Result<Vec<String>, String>;
    fn read(&mut self, table: &str) -> Result<Table, String>;
}

fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

struct Sqlite(rusqlite::Connection);

impl Reader for Sqlite {
    fn tables(&mut self) -> Result<Vec<String>, String> {
        let mut st = self
            .0
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
            .map_err(|e| e.to_string())?;
        let names = st
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(|e| e.to_string())?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        Ok(names)
    }

    fn read(&mut self, table: &str) -> Result<Table, String> {
        let mut st = self
            .0
            .prepare(&format!("SELECT * FROM {}", quote(table)))
            .map_err(|e| e.to_string())?;
        let cols: Vec<String> = st.column_names().map(str::to_owned).collect();
        let n = cols.len();
        let rows = st
            .query_map([], |r| {
                let mut row = Vec::with_capacity(n);
                for i in 0..n {
                    use rusqlite::types::ValueRef;
                    row.push(match r.get_ref(i)? {
                        ValueRef::Null => None,
                        ValueRef::Integer(v) => Some(Val::Int(v)),
                        ValueRef::Real(v) => Some(Val::Real(v)),
                        ValueRef::Text(t) | ValueRef::Blob(t) => {
                            Some(Val::Text(String::from_utf8_lossy(t).into_owned()))
                        }
                    });
                }
                Ok(row)
            })
            .map_err(|e| e.to_string())?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        Ok(Table { cols, rows })
    }
}

struct Postgres {
    client: postgres::Client,
    schema: String,
}

impl Reader for Postgres {
    fn tables(&mut self) -> Result<Vec<String>, String> {
        let rows = self
            .client
            .query(
                "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1",
                &[&self.schema],
            )
            .map_err(|e| e.to_string())?;
        Ok(rows.iter().map(|r| r.get::<_, String>(0)).collect())
    }

    fn read(&mut self, table: &str) -> Result<Table, String> {
        let cols: Vec<String> = self
            .client
            .query(
                "SELECT column_name::text FROM information_schema.columns \
                 WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
                &[&self.schema, &table],
            )
            .map_err(|e| e.to_string())?
            .iter()
            .map(|r| r.get::<_, String>(0))
            .collect();
        if cols.is_empty() {
            return Ok(Table {
                cols,
                rows: Vec::new(),
            });
        }
        let select = cols
            .iter()
            .map(|c| format!("{}::text", quote(c)))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT {select} FROM {}.{}",
            quote(&self.schema),
            quote(table)
        );
        let rows = self.client.query(&sql, &[]).map_err(|e| e.to_string())?;
        let rows = rows
            .iter()
            .map(|r| {
                (0..cols.len())
                    .map(|i| r.get::<_, Option<String>>(i).map(Val::Text))
                    .collect()
            })
            .collect();
        Ok(Table { cols, rows })
    }
}

/// The source URL with any password replaced.
fn redacted(source: &str) -> String {
    if let Some(rest) = source
        .strip_prefix("postgres://")
        .or_else(|| source.strip_prefix("postgresql://"))
        && let Some((cred, host)) = rest.split_once('@')
        && let Some((user, _)) = cred.split_once(':')
    {
        let scheme = source.split("://").next().unwrap_or("postgres");
        return format!("{scheme}://{user}:***@{host}");
    }
    source.to_owned()
}

fn open_source(args: &Args) -> Res<Box<dyn Reader>> {
    let s = &args.source;
    if s.starts_with("postgres://") || s.starts_with("postgresql://") {
        let mut client = postgres::Client::connect(s, postgres::NoTls)
            .map_err(|e| Fail::new(5, format!("{}: cannot connect: {e}", redacted(s))))?;
        let schema = match &args.schema {
            Some(x) => x.clone(),
            None => client
                .query_one("SELECT current_schema()::text", &[])
                .map_err(|e| Fail::new(5, format!("{}: {e}", redacted(s))))?
                .get::<_, String>(0),
        };
        return Ok(Box::new(Postgres { client, schema }));
    }
    let path = std::path::Path::new(s);
    if !path.is_file() {
        return Err(Fail::new(
            5,
            format!("{s}: no such file (and not a postgres:// URL)"),
        ));
    }
    let conn = rusqlite::Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| Fail::new(5, format!("{s}: {e}")))?;
    Ok(Box::new(Sqlite(conn)))
}

// ---------------------------------------------------------------------------------------------
// Values.
// ---------------------------------------------------------------------------------------------

struct Row<'a> {
    cols: &'a [String],
    vals: &'a [Option<Val>],
}

impl Row<'_> {
    fn get(&self, names: &[&str]) -> Option<&Val> {
        for n in names {
            if let Some(i) = self.cols.iter().position(|c| c.eq_ignore_ascii_case(n)) {
                return self.vals.get(i).and_then(Option::as_ref);
            }
        }
        None
    }

    fn text(&self, names: &[&str]) -> Option<String> {
        self.get(names).map(|v| match v {
            Val::Int(i) => i.to_string(),
            Val::Real(f) => f.to_string(),
            Val::Text(s) => s.clone(),
        })
    }

    fn time(&self, names: &[&str]) -> Result<Option<i64>, String> {
        match self.get(names) {
            None => Ok(None),
            Some(v) => parse_time(v)
                .map(Some)
                .ok_or_else(|| format!("`{}` is not a time", names.first().copied().unwrap_or(""))),
        }
    }

    /// The columns not in `known`, as JSON values (the `extra` fields).
    fn rest(&self, known: &[&str]) -> serde_json::Map<String, J> {
        let mut m = serde_json::Map::new();
        for (c, v) in self.cols.iter().zip(self.vals) {
            if known.iter().any(|k| k.eq_ignore_ascii_case(c)) {
                continue;
            }
            let Some(v) = v else { continue };
            m.insert(
                c.clone(),
                match v {
                    Val::Int(i) => json!(i),
                    Val::Real(f) => json!(f),
                    Val::Text(s) => json!(s),
                },
            );
        }
        m
    }
}

/// A time as microseconds: integers are seconds (or milliseconds when large, as Prisma stores
/// them in SQLite), text is RFC 3339 or SQL's `YYYY-MM-DD HH:MM:SS[.f][+TZ]` (UTC if no zone).
fn parse_time(v: &Val) -> Option<i64> {
    let from_int = |n: i64| {
        if n.abs() >= 100_000_000_000 {
            n.checked_mul(1000)
        } else {
            n.checked_mul(1_000_000)
        }
    };
    let m = match v {
        Val::Int(n) => from_int(*n)?,
        Val::Real(f) => (f * 1e6) as i64,
        Val::Text(s) => {
            let s = s.trim();
            if let Ok(n) = s.parse::<i64>() {
                from_int(n)?
            } else if let Ok(t) = DateTime::parse_from_rfc3339(s) {
                t.timestamp_micros()
            } else if let Ok(t) = DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f%#z") {
                t.timestamp_micros()
            } else {
                let naive = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f")
                    .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f"))
                    .ok()?;
                naive.and_utc().timestamp_micros()
            }
        }
    };
    DateTime::<Utc>::from_timestamp_micros(m).map(|_| m)
}

fn parse_bool(v: &Val) -> Option<bool> {
    match v {
        Val::Int(i) => Some(*i != 0),
        Val::Real(f) => Some(*f != 0.0),
        Val::Text(s) => match s.trim().to_ascii_lowercase().as_str() {
            "1" | "t" | "true" => Some(true),
            "0" | "f" | "false" => Some(false),
            _ => None,
        },
    }
}

fn ts(m: i64) -> J {
    match DateTime::<Utc>::from_timestamp_micros(m) {
        Some(t) if (0..=9999).contains(&t.year()) => {
            json!(t.to_rfc3339_opts(SecondsFormat::Micros, true))
        }
        _ => json!(m),
    }
}

fn b64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= c.len() {
                out.push(char::from(A[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn uuid_for(src: &str) -> Uuid {
    Uuid::parse_str(src.trim()).unwrap_or_else(|_| Uuid::now_v7())
}

// ---------------------------------------------------------------------------------------------
// The plan: the export to import, and what was refused.
// ---------------------------------------------------------------------------------------------

#[derive(Serialize)]
struct Refusal {
    table: String,
    id: String,
    reason: String,
}

#[derive(Serialize)]
struct Report {
    source: String,
    schema: String,
    dry_run: bool,
    target: PathBuf,
    moved: ExportCounts,
    refused: Vec<Refusal>,
    notes: Vec<String>,
}

struct Plan {
    lines: Vec<J>,
    refused: Vec<Refusal>,
    notes: Vec<String>,
    schema: String,
}

impl Plan {
    fn refuse(&mut self, table: &str, id: &str, reason: impl Into<String>) {
        self.refused.push(Refusal {
            table: table.to_owned(),
            id: id.to_owned(),
            reason: reason.into(),
        });
    }
}

fn find<'a>(tables: &'a [String], names: &[&str]) -> Option<&'a str> {
    names
        .iter()
        .find_map(|n| tables.iter().find(|t| t.eq_ignore_ascii_case(n)))
        .map(String::as_str)
}

const USER_COLS: &[&str] = &[
    "id",
    "name",
    "email",
    "emailVerified",
    "email_verified",
    "image",
    "createdAt",
    "created_at",
    "updatedAt",
    "updated_at",
];
/// Never copied into `extra`: password hashes of other schemes are not argon2id and a secret.
const SECRET_USER_COLS: &[&str] = &[
    "password",
    "hashedPassword",
    "hashed_password",
    "password_hash",
    "passwordHash",
];
const ACCOUNT_COLS: &[&str] = &[
    "id",
    "compound_id",
    "compoundId",
    "userId",
    "user_id",
    "type",
    "provider_type",
    "provider",
    "provider_id",
    "providerAccountId",
    "provider_account_id",
    "refresh_token",
    "access_token",
    "expires_at",
    "access_token_expires",
    "token_type",
    "scope",
    "id_token",
    "session_state",
    "createdAt",
    "created_at",
    "updatedAt",
    "updated_at",
];

fn build(src: &mut dyn Reader, key: Option<&EncryptionKey>, source_name: &str) -> Res<Plan> {
    let read_err = |e: String| Fail::new(5, format!("{source_name}: {e}"));
    let tables = src.tables().map_err(|e| {
        Fail::new(
            5,
            format!("{source_name} is not a database this tool can read: {e}"),
        )
    })?;
    let Some(users_t) = find(&tables, &["users", "User"]) else {
        return Err(Fail::new(
            5,
            format!(
                "{source_name} has no NextAuth tables (expected `users` of NextAuth v3 or \
                 `User` of Auth.js v4/v5)"
            ),
        ));
    };
    let users_t = users_t.to_owned();
    let accounts_t = find(&tables, &["accounts", "Account"]).map(str::to_owned);
    let sessions_t = find(&tables, &["sessions", "Session"]).map(str::to_owned);
    let verif_t = find(
        &tables,
        &[
            "verification_requests",
            "VerificationToken",
            "verification_token",
            "verification_tokens",
        ],
    )
    .map(str::to_owned);
    let auth_t = find(
        &tables,
        &["Authenticator", "authenticators", "authenticator"],
    )
    .map(str::to_owned);

    let now = backend::micros(Utc::now());
    let mut plan = Plan {
        lines: Vec::new(),
        refused: Vec::new(),
        notes: Vec::new(),
        schema: String::new(),
    };

    // Users, oldest first, so that of two addresses equal after normalization the oldest wins.
    let users = src.read(&users_t).map_err(read_err)?;
    let v3 = users
        .cols
        .iter()
        .any(|c| c == "email_verified" || c == "created_at");
    plan.schema = if v3 {
        "NextAuth v3 (TypeORM)".into()
    } else {
        "Auth.js v4/v5 (Prisma / pg adapter)".into()
    };
    let mut cands = Vec::new();
    for (i, vals) in users.rows.iter().enumerate() {
        let r = Row {
            cols: &users.cols,
            vals,
        };
        let Some(src_id) = r.text(&["id"]) else {
            plan.refuse(&users_t, &format!("row {}", i + 1), "no id");
            continue;
        };
        let created = match r.time(&["createdAt", "created_at"]) {
            Ok(t) => t.unwrap_or(now),
            Err(e) => {
                plan.refuse(&users_t, &src_id, e);
                continue;
            }
        };
        cands.push((created, i, src_id, vals));
    }
    cands.sort_by_key(|c| (c.0, c.1));
    let mut user_map: HashMap<String, Uuid> = HashMap::new();
    let mut refused_users: HashSet<String> = HashSet::new();
    let mut emails: HashMap<String, String> = HashMap::new();
    let mut ids_seen: HashSet<Uuid> = HashSet::new();
    let mut n_users = 0u64;
    let mut extra_cols = HashSet::new();
    for (created, _, src_id, vals) in cands {
        let r = Row {
            cols: &users.cols,
            vals,
        };
        let mut known: Vec<&str> = USER_COLS.to_vec();
        known.extend_from_slice(SECRET_USER_COLS);
        let extra = r.rest(&known);
        extra_cols.extend(extra.keys().cloned());
        let email_verified = match r.time(&["emailVerified", "email_verified"]) {
            Ok(t) => t,
            Err(e) => {
                refused_users.insert(src_id.clone());
                plan.refuse(&users_t, &src_id, e);
                continue;
            }
        };
        let profile = NewUser {
            name: r.text(&["name"]),
            email: r.text(&["email"]).filter(|e| !e.trim().is_empty()),
            image: r.text(&["image"]),
            email_verified: None,
            extra,
        };
        if let Err(e) = backend::validate_user(&profile) {
            refused_users.insert(src_id.clone());
            plan.refuse(&users_t, &src_id, e.to_string());
            continue;
        }
        if let Some(email) = &profile.email {
            let norm = authdb::normalize_email(email);
            if let Some(kept) = emails.get(&norm) {
                refused_users.insert(src_id.clone());
                plan.refuse(
                    &users_t,
                    &src_id,
                    format!(
                        "duplicate email: equal after normalization to the email of user {kept} \
                         (the older one, which was moved)"
                    ),
                );
                continue;
            }
            emails.insert(norm, src_id.clone());
        }
        let mut id = uuid_for(&src_id);
        if !ids_seen.insert(id) {
            id = Uuid::now_v7();
            ids_seen.insert(id);
        }
        let updated = r
            .time(&["updatedAt", "updated_at"])
            .ok()
            .flatten()
            .unwrap_or(created);
        let stamp = backend::new_security_stamp().map_err(|e| Fail::new(1, e.to_string()))?;
        plan.lines.push(json!({
            "kind": "user",
            "id": id,
            "name": profile.name,
            "email": profile.email,
            "emailVerified": email_verified.map(ts),
            "image": profile.image,
            "extra": profile.extra,
            "securityStamp": backend::hex(&stamp),
            "createdAt": ts(created),
            "updatedAt": ts(updated),
        }));
        user_map.insert(src_id, id);
        n_users += 1;
    }
    if !extra_cols.is_empty() {
        let mut c: Vec<_> = extra_cols.into_iter().collect();
        c.sort();
        plan.notes.push(format!(
            "user columns kept as `extra` fields: {}",
            c.join(", ")
        ));
    }
    if users
        .cols
        .iter()
        .any(|c| SECRET_USER_COLS.iter().any(|s| s.eq_ignore_ascii_case(c)))
    {
        plan.notes.push(
            "password columns were not moved (authdb stores argon2id hashes set with set_password)"
                .into(),
        );
    }
    let owner =
        |plan: &mut Plan, table: &str, id: &str, src_user: Option<String>| -> Option<Uuid> {
            let Some(u) = src_user else {
                plan.refuse(table, id, "orphan: no user id");
                return None;
            };
            if let Some(x) = user_map.get(&u) {
                return Some(*x);
            }
            let why = if refused_users.contains(&u) {
                format!("its user {u} was refused")
            } else {
                format!("orphan: user {u} does not exist")
            };
            plan.refuse(table, id, why);
            None
        };

    // Accounts.
    if let Some(t) = &accounts_t {
        let accounts = src.read(t).map_err(read_err)?;
        let mut pairs = HashSet::new();
        let mut acc_extra_cols = HashSet::new();
        for (i, vals) in accounts.rows.iter().enumerate() {
            let r = Row {
                cols: &accounts.cols,
                vals,
            };
            let src_id = r.text(&["id"]).unwrap_or_else(|| format!("row {}", i + 1));
            let Some(uid) = owner(&mut plan, t, &src_id, r.text(&["userId", "user_id"])) else {
                continue;
            };
            let expires = match (r.get(&["expires_at"]), r.time(&["access_token_expires"])) {
                (Some(v), _) => match parse_time(v) {
                    Some(m) => Some(m),
                    None => {
                        plan.refuse(t, &src_id, "`expires_at` is not a time");
                        continue;
                    }
                },
                (None, Ok(m)) => m,
                (None, Err(e)) => {
                    plan.refuse(t, &src_id, e);
                    continue;
                }
            };
            let extra = r.rest(ACCOUNT_COLS);
            acc_extra_cols.extend(extra.keys().cloned());
            let a = NewAccount {
                provider_type: r.text(&["type", "provider_type"]).unwrap_or_default(),
                provider_id: r.text(&["provider", "provider_id"]).unwrap_or_default(),
                provider_account_id: r
                    .text(&["providerAccountId", "provider_account_id"])
                    .unwrap_or_default(),
                refresh_token: r.text(&["refresh_token"]),
                access_token: r.text(&["access_token"]),
                access_token_expires: None,
                token_type: r.text(&["token_type"]),
                scope: r.text(&["scope"]),
                id_token: r.text(&["id_token"]),
                session_state: r.text(&["session_state"]),
                extra,
            };
            if let Err(e) = backend::validate_account(&a) {
                plan.refuse(t, &src_id, e.to_string());
                continue;
            }
            let extra_json = match backend::extra_json("extra", &a.extra) {
                Ok(j) => j,
                Err(e) => {
                    plan.refuse(t, &src_id, e.to_string());
                    continue;
                }
            };
            if !pairs.insert((a.provider_id.clone(), a.provider_account_id.clone())) {
                plan.refuse(
                    t,
                    &src_id,
                    "duplicate provider account (provider, providerAccountId)",
                );
                continue;
            }
            let has_secret = a.refresh_token.is_some()
                || a.access_token.is_some()
                || a.id_token.is_some()
                || extra_json.is_some();
            let key = match (has_secret, key) {
                (false, _) => None,
                (true, Some(k)) => Some(k),
                (true, None) => {
                    return Err(Fail::new(
                        5,
                        format!(
                            "{source_name} holds OAuth tokens (account {src_id}); name the \
                             environment variable with the encryption key that will seal them: \
                             --key-env VAR"
                        ),
                    ));
                }
            };
            let id = uuid_for(&src_id);
            let aid = AccountId(id);
            let seal = |field: &str, v: Option<&str>| -> Res<J> {
                match (v, key) {
                    (Some(v), Some(k)) => backend::seal_account_secret(k, &aid, field, v)
                        .map(|s| json!(b64(&s)))
                        .map_err(|e| Fail::new(1, e.to_string())),
                    _ => Ok(J::Null),
                }
            };
            let extra_text = extra_json.map(|j| String::from_utf8_lossy(&j).into_owned());
            let created = r
                .time(&["createdAt", "created_at"])
                .ok()
                .flatten()
                .unwrap_or(now);
            let updated = r
                .time(&["updatedAt", "updated_at"])
                .ok()
                .flatten()
                .unwrap_or(created);
            let mut line = json!({
                "kind": "account",
                "id": id,
                "userId": uid,
                "type": a.provider_type,
                "provider": a.provider_id,
                "providerAccountId": a.provider_account_id,
                "refresh_token_sealed": seal("refresh_token", a.refresh_token.as_deref())?,
                "access_token_sealed": seal("access_token", a.access_token.as_deref())?,
                "expires_at": expires.map(|m| m.div_euclid(1_000_000)),
                "token_type": a.token_type,
                "scope": a.scope,
                "id_token_sealed": seal("id_token", a.id_token.as_deref())?,
                "session_state": a.session_state,
                "extra_sealed": seal("extra", extra_text.as_deref())?,
                "createdAt": ts(created),
                "updatedAt": ts(updated),
            });
            if let Some(us) = expires
                .map(|m| m.rem_euclid(1_000_000))
                .filter(|us| *us != 0)
            {
                line["expires_at_us"] = json!(us);
            }
            plan.lines.push(line);
        }
        if !acc_extra_cols.is_empty() {
            let mut c: Vec<_> = acc_extra_cols.into_iter().collect();
            c.sort();
            plan.notes.push(format!(
                "account columns kept as sealed `extra` fields: {}",
                c.join(", ")
            ));
        }
    }

    // Sessions: the plain token is hashed here and never stored.
    if let Some(t) = &sessions_t {
        let sessions = src.read(t).map_err(read_err)?;
        let mut hashes = HashSet::new();
        for (i, vals) in sessions.rows.iter().enumerate() {
            let r = Row {
                cols: &sessions.cols,
                vals,
            };
            let src_id = r.text(&["id"]).unwrap_or_else(|| format!("row {}", i + 1));
            let Some(uid) = owner(&mut plan, t, &src_id, r.text(&["userId", "user_id"])) else {
                continue;
            };
            let Some(token) = r
                .text(&["sessionToken", "session_token"])
                .filter(|s| !s.is_empty())
            else {
                plan.refuse(t, &src_id, "no session token");
                continue;
            };
            if let Err(e) = backend::validate_required(
                "session_token",
                &token,
                authdb::limits::MAX_SESSION_TOKEN_LEN,
            ) {
                plan.refuse(t, &src_id, e.to_string());
                continue;
            }
            let expires = match r.time(&["expires"]) {
                Ok(Some(m)) => m,
                Ok(None) => {
                    plan.refuse(t, &src_id, "no expiry");
                    continue;
                }
                Err(e) => {
                    plan.refuse(t, &src_id, e);
                    continue;
                }
            };
            let hash = backend::hex(&backend::session_token_hash(&token));
            if !hashes.insert(hash.clone()) {
                plan.refuse(t, &src_id, "duplicate session token");
                continue;
            }
            let created = r
                .time(&["createdAt", "created_at"])
                .ok()
                .flatten()
                .unwrap_or(now);
            let updated = r
                .time(&["updatedAt", "updated_at"])
                .ok()
                .flatten()
                .unwrap_or(created);
            plan.lines.push(json!({
                "kind": "session",
                "id": uuid_for(&src_id),
                "userId": uid,
                "sessionTokenHash": hash,
                "expires": ts(expires),
                "createdAt": ts(created),
                "updatedAt": ts(updated),
            }));
        }
        if sessions.cols.iter().any(|c| c == "access_token") {
            plan.notes.push(
                "v3 session access tokens are not moved: authdb derives them from the session \
                 token (they change once)"
                    .into(),
            );
        }
    }

    // Passkeys.
    if let Some(t) = &auth_t {
        let auths = src.read(t).map_err(read_err)?;
        let mut cids = HashSet::new();
        for (i, vals) in auths.rows.iter().enumerate() {
            let r = Row {
                cols: &auths.cols,
                vals,
            };
            let cid = r
                .text(&["credentialID", "credential_id"])
                .unwrap_or_default();
            let label = if cid.is_empty() {
                format!("row {}", i + 1)
            } else {
                cid.clone()
            };
            let Some(uid) = owner(&mut plan, t, &label, r.text(&["userId", "user_id"])) else {
                continue;
            };
            let a = NewAuthenticator {
                credential_id: cid.clone(),
                user_id: UserId(uid),
                provider_account_id: r
                    .text(&["providerAccountId", "provider_account_id"])
                    .unwrap_or_default(),
                credential_public_key: r
                    .text(&["credentialPublicKey", "credential_public_key"])
                    .unwrap_or_default(),
                counter: r
                    .get(&["counter"])
                    .and_then(|v| match v {
                        Val::Int(i) => u64::try_from(*i).ok(),
                        Val::Real(f) => Some(*f as u64),
                        Val::Text(s) => s.trim().parse().ok(),
                    })
                    .unwrap_or(0),
                credential_device_type: r
                    .text(&["credentialDeviceType", "credential_device_type"])
                    .unwrap_or_default(),
                credential_backed_up: r
                    .get(&["credentialBackedUp", "credential_backed_up"])
                    .and_then(parse_bool)
                    .unwrap_or(false),
                transports: r.text(&["transports"]),
            };
            if let Err(e) = backend::validate_authenticator(&a) {
                plan.refuse(t, &label, e.to_string());
                continue;
            }
            if !cids.insert(cid.clone()) {
                plan.refuse(t, &label, "duplicate credential id");
                continue;
            }
            plan.lines.push(json!({
                "kind": "authenticator",
                "credentialID": a.credential_id,
                "userId": uid,
                "providerAccountId": a.provider_account_id,
                "credentialPublicKey": a.credential_public_key,
                "counter": a.counter,
                "credentialDeviceType": a.credential_device_type,
                "credentialBackedUp": a.credential_backed_up,
                "transports": a.transports,
                "createdAt": ts(now),
                "updatedAt": ts(now),
            }));
        }
    }

    // Email sign-in links: NextAuth stored hash(token + secret); it moves as it is.
    if let Some(t) = &verif_t {
        let links = src.read(t).map_err(read_err)?;
        let mut keys = HashSet::new();
        for (i, vals) in links.rows.iter().enumerate() {
            let r = Row {
                cols: &links.cols,
                vals,
            };
            let src_id = r.text(&["id"]).unwrap_or_else(|| format!("row {}", i + 1));
            let (Some(identifier), Some(token)) = (r.text(&["identifier"]), r.text(&["token"]))
            else {
                plan.refuse(t, &src_id, "no identifier or token");
                continue;
            };
            if let Err(e) = backend::validate_email("identifier", &identifier).and_then(|_| {
                backend::validate_required("token", &token, authdb::limits::MAX_TOKEN_LEN)
            }) {
                plan.refuse(t, &src_id, e.to_string());
                continue;
            }
            let expires = match r.time(&["expires"]) {
                Ok(Some(m)) => m,
                Ok(None) => {
                    plan.refuse(t, &src_id, "no expiry");
                    continue;
                }
                Err(e) => {
                    plan.refuse(t, &src_id, e);
                    continue;
                }
            };
            let key = backend::hex(&backend::verification_token_key(&token));
            if !keys.insert(key.clone()) {
                plan.refuse(t, &src_id, "duplicate token");
                continue;
            }
            let created = r
                .time(&["createdAt", "created_at"])
                .ok()
                .flatten()
                .unwrap_or(now);
            let updated = r
                .time(&["updatedAt", "updated_at"])
                .ok()
                .flatten()
                .unwrap_or(created);
            plan.lines.push(json!({
                "kind": "verificationToken",
                "id": uuid_for(&src_id),
                "identifier": identifier,
                "token": key,
                "expires": ts(expires),
                "createdAt": ts(created),
                "updatedAt": ts(updated),
            }));
        }
    }
    let _ = n_users;
    Ok(plan)
}

/// The plan as an authdb export: header, records in export order, end line.
fn to_jsonl(plan: &Plan) -> Vec<u8> {
    let order = [
        "user",
        "account",
        "session",
        "authenticator",
        "verificationToken",
    ];
    let mut counts = json!({"users": 0, "passwords": 0, "accounts": 0, "sessions": 0, "authenticators": 0, "verificationTokens": 0});
    let mut out = Vec::new();
    out.extend_from_slice(
        format!(
            "{{\"format\":\"{}\",\"version\":{},\"schemaVersion\":{}}}\n",
            authdb::export::EXPORT_FORMAT,
            authdb::export::EXPORT_VERSION,
            authdb::SCHEMA_VERSION
        )
        .as_bytes(),
    );
    for kind in order {
        let field = match kind {
            "user" => "users",
            "account" => "accounts",
            "session" => "sessions",
            "authenticator" => "authenticators",
            _ => "verificationTokens",
        };
        for l in plan.lines.iter().filter(|l| l["kind"] == kind) {
            out.extend_from_slice(l.to_string().as_bytes());
            out.push(b'\n');
            counts[field] = json!(counts[field].as_u64().unwrap_or(0) + 1);
        }
    }
    out.extend_from_slice(
        json!({"kind": "end", "counts": counts})
            .to_string()
            .as_bytes(),
    );
    out.push(b'\n');
    out
}

pub(crate) fn migrate(args: &Args, out: &Out, progress: bool) -> Res<u8> {
    let key = args
        .key_env
        .as_deref()
        .map(crate::key_from_env)
        .transpose()?;
    let name = redacted(&args.source);
    let reading = Progress::spinner(progress, "migrate-from: reading the source");
    let mut src = open_source(args)?;
    let plan = build(src.as_mut(), key.as_ref(), &name)?;
    drop(src);
    drop(reading);
    let data = to_jsonl(&plan);
    let p = Progress::bar(
        progress,
        if args.dry_run {
            "migrate-from: checking"
        } else {
            "migrate-from: writing"
        },
        plan.lines.len() as u64,
        "records",
    );
    let tick = |n| p.set(n);
    let fail_import = |e: authdb::ImportError| {
        Fail::new(
            5,
            format!(
                "{}: the migrated data was refused ({e}); nothing was written",
                args.file.display()
            ),
        )
    };
    let moved = if args.dry_run {
        let db = AuthDb::builder()
            .in_memory()
            .map_err(|e| Fail::new(1, e.to_string()))?;
        db.import_from_with_progress(Cursor::new(&data), tick)
            .map_err(fail_import)?
    } else if args.file.exists() {
        let db = crate::open_rw(&args.file)?;
        db.import_from_with_progress(Cursor::new(&data), tick)
            .map_err(fail_import)?
    } else {
        authdb::import_into_new_file(&args.file, Cursor::new(&data), tick).map_err(fail_import)?
    };
    drop(p);
    let report = Report {
        source: name,
        schema: plan.schema,
        dry_run: args.dry_run,
        target: args.file.clone(),
        moved,
        refused: plan.refused,
        notes: plan.notes,
    };
    let mut text = format!(
        "{} {} ({}) → {}:\n  moved {} users, {} accounts, {} sessions, {} authenticators, {} sign-in links",
        if report.dry_run {
            "dry run, nothing written:"
        } else {
            "migrated"
        },
        report.source,
        report.schema,
        report.target.display(),
        moved.users,
        moved.accounts,
        moved.sessions,
        moved.authenticators,
        moved.verification_tokens
    );
    if !report.refused.is_empty() {
        text.push_str(&format!("\n  refused {}:", report.refused.len()));
        for r in &report.refused {
            text.push_str(&format!("\n    {} {}: {}", r.table, r.id, r.reason));
        }
    }
    for n in &report.notes {
        text.push_str(&format!("\n  note: {n}"));
    }
    out.report(&report, &text);
    Ok(if report.refused.is_empty() { 0 } else { 4 })
}
