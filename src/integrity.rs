//! `check_integrity`: every index against every table.

use std::fmt;

use redb::{ReadableMultimapTable, ReadableTable, ReadableTableMetadata};

use crate::codec::{
    self, AccountRecord, CredentialRecord, SessionRecord, UserRecord, VerificationRecord,
};
use crate::email::normalize_email;
use crate::error::Result;
use crate::model::UserId;
use crate::password;
use crate::schema::{self, HashKey, IdKey};
use crate::token::hex;

/// One disagreement found by [`AuthDb::check_integrity`](crate::AuthDb::check_integrity).
///
/// Keys are shown as ids (UUIDs), hex hashes or normalized emails — never a token or password.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IntegrityProblem {
    /// A stored record cannot be decoded.
    CorruptRecord {
        /// The table.
        table: &'static str,
        /// The record's key.
        key: String,
        /// Why it cannot be decoded.
        detail: String,
    },
    /// A record's own id differs from the key it is stored under.
    KeyMismatch {
        /// The table.
        table: &'static str,
        /// The key it is stored under.
        key: String,
    },
    /// A record lacks an index entry it should have.
    MissingIndexEntry {
        /// The index.
        index: &'static str,
        /// The record's key.
        key: String,
    },
    /// An index entry points to no record, or to a record that does not match the entry.
    StaleIndexEntry {
        /// The index.
        index: &'static str,
        /// The index entry's key.
        key: String,
    },
    /// A record refers to a user that does not exist.
    MissingUser {
        /// The table of the referring record.
        table: &'static str,
        /// The referring record's key.
        key: String,
        /// The missing user.
        user_id: UserId,
    },
    /// The schema version in the `meta` table is missing or not this build's.
    SchemaVersion {
        /// What is stored.
        found: Option<u64>,
    },
}

impl fmt::Display for IntegrityProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::CorruptRecord { table, key, detail } => {
                write!(f, "{table}[{key}]: corrupt record: {detail}")
            }
            Self::KeyMismatch { table, key } => {
                write!(f, "{table}[{key}]: record id differs from its key")
            }
            Self::MissingIndexEntry { index, key } => {
                write!(f, "{index}: no entry for record {key}")
            }
            Self::StaleIndexEntry { index, key } => {
                write!(f, "{index}[{key}]: entry does not match any record")
            }
            Self::MissingUser {
                table,
                key,
                user_id,
            } => write!(f, "{table}[{key}]: refers to missing user {user_id}"),
            Self::SchemaVersion { found } => write!(
                f,
                "meta: schema version is {found:?}, expected {}",
                schema::SCHEMA_VERSION
            ),
        }
    }
}

/// The result of [`AuthDb::check_integrity`](crate::AuthDb::check_integrity).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IntegrityReport {
    problems: Vec<IntegrityProblem>,
    /// Users checked.
    pub users: u64,
    /// Accounts checked.
    pub accounts: u64,
    /// Sessions checked (expired ones included).
    pub sessions: u64,
    /// Verification requests checked (expired ones included).
    pub verification_requests: u64,
    /// Passwords checked.
    pub credentials: u64,
}

impl IntegrityReport {
    /// True when no problem was found.
    #[must_use]
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }

    /// Every problem found.
    #[must_use]
    pub fn problems(&self) -> &[IntegrityProblem] {
        &self.problems
    }
}

impl fmt::Display for IntegrityReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} users, {} accounts, {} sessions, {} verification requests, {} passwords: {}",
            self.users,
            self.accounts,
            self.sessions,
            self.verification_requests,
            self.credentials,
            if self.is_clean() {
                "clean".to_owned()
            } else {
                format!("{} problems", self.problems.len())
            }
        )?;
        for p in &self.problems {
            writeln!(f, "  {p}")?;
        }
        Ok(())
    }
}

fn id_str(k: &IdKey) -> String {
    UserId::from_bytes(*k).to_string()
}

fn multimap_contains<const N: usize>(
    t: &impl ReadableMultimapTable<IdKey, [u8; N]>,
    key: &IdKey,
    value: &[u8; N],
) -> Result<bool> {
    for v in t.get(key)? {
        if &v?.value() == value {
            return Ok(true);
        }
    }
    Ok(false)
}

pub(crate) fn check(rtx: &redb::ReadTransaction) -> Result<IntegrityReport> {
    let mut r = IntegrityReport::default();
    let p = &mut r.problems;

    let meta = rtx.open_table(schema::META)?;
    let found = meta.get(schema::SCHEMA_VERSION_KEY)?.map(|g| g.value());
    if found != Some(schema::SCHEMA_VERSION) {
        p.push(IntegrityProblem::SchemaVersion { found });
    }

    let users = rtx.open_table(schema::USERS)?;
    let by_email = rtx.open_table(schema::USERS_BY_EMAIL)?;
    let accounts = rtx.open_table(schema::ACCOUNTS)?;
    let by_provider = rtx.open_table(schema::ACCOUNTS_BY_PROVIDER)?;
    let acc_by_user = rtx.open_multimap_table(schema::ACCOUNTS_BY_USER)?;
    let sessions = rtx.open_table(schema::SESSIONS)?;
    let ses_by_user = rtx.open_multimap_table(schema::SESSIONS_BY_USER)?;
    let ses_by_exp = rtx.open_table(schema::SESSIONS_BY_EXPIRY)?;
    let verif = rtx.open_table(schema::VERIFICATION)?;
    let ver_by_exp = rtx.open_table(schema::VERIFICATION_BY_EXPIRY)?;
    let creds = rtx.open_table(schema::CREDENTIALS)?;

    let user_exists = |id: &IdKey| -> Result<bool> { Ok(users.get(id)?.is_some()) };

    // Users and the email index.
    r.users = users.len()?;
    for e in users.iter()? {
        let (k, v) = e?;
        let key = k.value();
        match codec::decode::<UserRecord>(schema::USERS_NAME, v.value())
            .and_then(|u| u.to_model().map(|_| u))
        {
            Err(e) => p.push(IntegrityProblem::CorruptRecord {
                table: schema::USERS_NAME,
                key: id_str(&key),
                detail: e.to_string(),
            }),
            Ok(u) => {
                if *u.id.as_bytes() != key {
                    p.push(IntegrityProblem::KeyMismatch {
                        table: schema::USERS_NAME,
                        key: id_str(&key),
                    });
                }
                if let Some(email) = &u.email {
                    let n = normalize_email(email);
                    if by_email.get(n.as_str())?.map(|g| g.value()) != Some(key) {
                        p.push(IntegrityProblem::MissingIndexEntry {
                            index: schema::USERS_BY_EMAIL_NAME,
                            key: id_str(&key),
                        });
                    }
                }
            }
        }
    }
    for e in by_email.iter()? {
        let (k, v) = e?;
        let ok = match users.get(v.value())? {
            Some(g) => codec::decode::<UserRecord>(schema::USERS_NAME, g.value()).is_ok_and(|u| {
                u.email.as_deref().map(normalize_email).as_deref() == Some(k.value())
            }),
            None => false,
        };
        if !ok {
            p.push(IntegrityProblem::StaleIndexEntry {
                index: schema::USERS_BY_EMAIL_NAME,
                key: k.value().to_owned(),
            });
        }
    }

    // Accounts and their two indexes.
    r.accounts = accounts.len()?;
    for e in accounts.iter()? {
        let (k, v) = e?;
        let key = k.value();
        match codec::decode::<AccountRecord>(schema::ACCOUNTS_NAME, v.value())
            .and_then(|a| a.check_times().map(|()| a))
        {
            Err(e) => p.push(IntegrityProblem::CorruptRecord {
                table: schema::ACCOUNTS_NAME,
                key: id_str(&key),
                detail: e.to_string(),
            }),
            Ok(a) => {
                if *a.id.as_bytes() != key {
                    p.push(IntegrityProblem::KeyMismatch {
                        table: schema::ACCOUNTS_NAME,
                        key: id_str(&key),
                    });
                }
                if !user_exists(a.user_id.as_bytes())? {
                    p.push(IntegrityProblem::MissingUser {
                        table: schema::ACCOUNTS_NAME,
                        key: id_str(&key),
                        user_id: UserId(a.user_id),
                    });
                }
                let pair = (a.provider_id.as_str(), a.provider_account_id.as_str());
                if by_provider.get(pair)?.map(|g| g.value()) != Some(key) {
                    p.push(IntegrityProblem::MissingIndexEntry {
                        index: schema::ACCOUNTS_BY_PROVIDER_NAME,
                        key: id_str(&key),
                    });
                }
                if !multimap_contains(&acc_by_user, a.user_id.as_bytes(), &key)? {
                    p.push(IntegrityProblem::MissingIndexEntry {
                        index: schema::ACCOUNTS_BY_USER_NAME,
                        key: id_str(&key),
                    });
                }
            }
        }
    }
    for e in by_provider.iter()? {
        let (k, v) = e?;
        let (pid, paid) = k.value();
        let ok = match accounts.get(v.value())? {
            Some(g) => codec::decode::<AccountRecord>(schema::ACCOUNTS_NAME, g.value())
                .is_ok_and(|a| a.provider_id == pid && a.provider_account_id == paid),
            None => false,
        };
        if !ok {
            p.push(IntegrityProblem::StaleIndexEntry {
                index: schema::ACCOUNTS_BY_PROVIDER_NAME,
                key: format!("{pid}:{paid}"),
            });
        }
    }
    for e in acc_by_user.iter()? {
        let (uk, vals) = e?;
        let uid = uk.value();
        for v in vals {
            let aid = v?.value();
            let ok = match accounts.get(aid)? {
                Some(g) => codec::decode::<AccountRecord>(schema::ACCOUNTS_NAME, g.value())
                    .is_ok_and(|a| *a.user_id.as_bytes() == uid),
                None => false,
            };
            if !ok {
                p.push(IntegrityProblem::StaleIndexEntry {
                    index: schema::ACCOUNTS_BY_USER_NAME,
                    key: format!("{}:{}", id_str(&uid), id_str(&aid)),
                });
            }
        }
    }

    // Sessions and their two indexes.
    r.sessions = sessions.len()?;
    for e in sessions.iter()? {
        let (k, v) = e?;
        let key: HashKey = k.value();
        match codec::decode::<SessionRecord>(schema::SESSIONS_NAME, v.value())
            .and_then(|s| s.to_info().map(|_| s))
        {
            Err(e) => p.push(IntegrityProblem::CorruptRecord {
                table: schema::SESSIONS_NAME,
                key: hex(&key),
                detail: e.to_string(),
            }),
            Ok(s) => {
                if !user_exists(s.user_id.as_bytes())? {
                    p.push(IntegrityProblem::MissingUser {
                        table: schema::SESSIONS_NAME,
                        key: hex(&key),
                        user_id: UserId(s.user_id),
                    });
                }
                if !multimap_contains(&ses_by_user, s.user_id.as_bytes(), &key)? {
                    p.push(IntegrityProblem::MissingIndexEntry {
                        index: schema::SESSIONS_BY_USER_NAME,
                        key: hex(&key),
                    });
                }
                if ses_by_exp.get((s.expires, key))?.is_none() {
                    p.push(IntegrityProblem::MissingIndexEntry {
                        index: schema::SESSIONS_BY_EXPIRY_NAME,
                        key: hex(&key),
                    });
                }
            }
        }
    }
    for e in ses_by_user.iter()? {
        let (uk, vals) = e?;
        let uid = uk.value();
        for v in vals {
            let sk = v?.value();
            let ok = match sessions.get(sk)? {
                Some(g) => codec::decode::<SessionRecord>(schema::SESSIONS_NAME, g.value())
                    .is_ok_and(|s| *s.user_id.as_bytes() == uid),
                None => false,
            };
            if !ok {
                p.push(IntegrityProblem::StaleIndexEntry {
                    index: schema::SESSIONS_BY_USER_NAME,
                    key: format!("{}:{}", id_str(&uid), hex(&sk)),
                });
            }
        }
    }
    for e in ses_by_exp.iter()? {
        let (k, _) = e?;
        let (exp, sk) = k.value();
        let ok = match sessions.get(sk)? {
            Some(g) => codec::decode::<SessionRecord>(schema::SESSIONS_NAME, g.value())
                .is_ok_and(|s| s.expires == exp),
            None => false,
        };
        if !ok {
            p.push(IntegrityProblem::StaleIndexEntry {
                index: schema::SESSIONS_BY_EXPIRY_NAME,
                key: format!("{exp}:{}", hex(&sk)),
            });
        }
    }

    // Verification requests and their expiry index.
    r.verification_requests = verif.len()?;
    for e in verif.iter()? {
        let (k, v) = e?;
        let key: HashKey = k.value();
        match codec::decode::<VerificationRecord>(schema::VERIFICATION_NAME, v.value())
            .and_then(|r| r.to_model(&key).map(|_| r))
        {
            Err(e) => p.push(IntegrityProblem::CorruptRecord {
                table: schema::VERIFICATION_NAME,
                key: hex(&key),
                detail: e.to_string(),
            }),
            Ok(vr) => {
                if ver_by_exp.get((vr.expires, key))?.is_none() {
                    p.push(IntegrityProblem::MissingIndexEntry {
                        index: schema::VERIFICATION_BY_EXPIRY_NAME,
                        key: hex(&key),
                    });
                }
            }
        }
    }
    for e in ver_by_exp.iter()? {
        let (k, _) = e?;
        let (exp, vk) = k.value();
        let ok = match verif.get(vk)? {
            Some(g) => codec::decode::<VerificationRecord>(schema::VERIFICATION_NAME, g.value())
                .is_ok_and(|v| v.expires == exp),
            None => false,
        };
        if !ok {
            p.push(IntegrityProblem::StaleIndexEntry {
                index: schema::VERIFICATION_BY_EXPIRY_NAME,
                key: format!("{exp}:{}", hex(&vk)),
            });
        }
    }

    // Passwords.
    r.credentials = creds.len()?;
    for e in creds.iter()? {
        let (k, v) = e?;
        let key = k.value();
        match codec::decode::<CredentialRecord>(schema::CREDENTIALS_NAME, v.value()) {
            Ok(c) if password::is_valid_phc(&c.phc) => {}
            Ok(_) => p.push(IntegrityProblem::CorruptRecord {
                table: schema::CREDENTIALS_NAME,
                key: id_str(&key),
                detail: "not an argon2id PHC string".into(),
            }),
            Err(e) => p.push(IntegrityProblem::CorruptRecord {
                table: schema::CREDENTIALS_NAME,
                key: id_str(&key),
                detail: e.to_string(),
            }),
        }
        if !user_exists(&key)? {
            p.push(IntegrityProblem::MissingUser {
                table: schema::CREDENTIALS_NAME,
                key: id_str(&key),
                user_id: UserId::from_bytes(key),
            });
        }
    }
    Ok(r)
}
