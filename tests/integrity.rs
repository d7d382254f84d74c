//! check_integrity: clean on good files; each kind of damage, made with raw redb on the closed
//! file, is reported with the right variant; corrupt records never make the API panic.

mod common;

use std::path::Path;

use authdb::prelude::*;
use authdb::{AuthDb, Credentials, Error, IntegrityProblem, NewUser, UserId};
use chrono::Duration;
use common::{TempDb, assert_clean, hex, oauth_account, profile, recording_provider};
use redb::{MultimapTableDefinition, ReadableDatabase, ReadableTable, TableDefinition};
use sha2::{Digest, Sha256};

// The layout of src/schema.rs, written out independently.
type IdKey = [u8; 16];
type HashKey = [u8; 32];
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const USERS: TableDefinition<IdKey, &[u8]> = TableDefinition::new("users");
const USERS_BY_EMAIL: TableDefinition<&str, IdKey> = TableDefinition::new("idx:users_by_email");
const ACCOUNTS: TableDefinition<IdKey, &[u8]> = TableDefinition::new("accounts");
const ACCOUNTS_BY_PROVIDER: TableDefinition<(&str, &str), IdKey> =
    TableDefinition::new("idx:accounts_by_provider");
const ACCOUNTS_BY_USER: MultimapTableDefinition<IdKey, IdKey> =
    MultimapTableDefinition::new("idx:accounts_by_user");
/// One table for sessions: `r`+hash → record, `u`+user+hash → (), `x`+expiry+hash → ().
const SESSIONS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("sessions:v2");

fn session_record_key(hash: &HashKey) -> Vec<u8> {
    [&b"r"[..], hash].concat()
}

fn session_user_key(user: &IdKey, hash: &HashKey) -> Vec<u8> {
    [&b"u"[..], user, hash].concat()
}

/// Expiry as a sign-flipped big-endian i64, so that keys sort like times.
fn session_expiry_key(expires: i64, hash: &HashKey) -> Vec<u8> {
    let sortable = (expires.cast_unsigned() ^ (1 << 63)).to_be_bytes();
    [&b"x"[..], &sortable, hash].concat()
}
const VERIFICATION: TableDefinition<HashKey, &[u8]> = TableDefinition::new("verification_requests");
const VERIFICATION_BY_EXPIRY: TableDefinition<(i64, HashKey), ()> =
    TableDefinition::new("idx:verification_by_expiry");
const CREDENTIALS: TableDefinition<IdKey, &[u8]> = TableDefinition::new("credentials");

/// The raw token of the one sign-in link `populate` makes (over the 128-bit entropy floor).
const VTOKEN: &str = "0123456789abcdef0123456789abcdef";

fn sha256(s: &str) -> HashKey {
    Sha256::digest(s.as_bytes()).into()
}

/// CRC-32C (Castagnoli), bit by bit.
fn crc32c(parts: &[&[u8]]) -> u32 {
    let mut c = !0u32;
    for &b in parts.iter().copied().flatten() {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 == 1 {
                (c >> 1) ^ 0x82F6_3B78
            } else {
                c >> 1
            };
        }
    }
    !c
}

/// Every stored value ends with a 4-byte checksum: CRC-32C over the key's length (u32,
/// little-endian), the key and the value's other bytes (see src/codec.rs). Returns `stored`
/// with its checksum made right for `key`, as a bug rather than damage would write it.
fn reseal(key: &[u8], stored: &[u8]) -> Vec<u8> {
    let body = &stored[..stored.len() - 4];
    let len = u32::try_from(key.len()).unwrap().to_le_bytes();
    let mut out = body.to_vec();
    out.extend_from_slice(&crc32c(&[&len, key, body]).to_le_bytes());
    out
}

/// Opens the closed file with plain redb and runs `f` in one committed write transaction.
fn damage(path: &Path, f: impl FnOnce(&redb::WriteTransaction)) {
    let db = redb::Database::open(path).unwrap();
    let tx = db.begin_write().unwrap();
    f(&tx);
    tx.commit().unwrap();
}

/// Reads one raw value with plain redb.
fn raw_value(path: &Path, def: TableDefinition<IdKey, &[u8]>, key: IdKey) -> Vec<u8> {
    let db = redb::Database::open(path).unwrap();
    let rtx = db.begin_read().unwrap();
    let t = rtx.open_table(def).unwrap();
    t.get(key).unwrap().unwrap().value().to_vec()
}

fn problems(db: &AuthDb) -> Vec<IntegrityProblem> {
    db.check_integrity().unwrap().problems().to_vec()
}

fn is_corrupt(e: &Error, table: &str) -> bool {
    matches!(e, Error::Corrupt { table: t, .. } if *t == table)
}

/// A file with a bit of everything in it.
fn populate(db: &AuthDb) -> (UserId, authdb::Session) {
    let u = db.create_user(&profile("ada@example.com")).unwrap();
    let other = db.create_user(&NewUser::default()).unwrap();
    db.link_account(&u.id, &oauth_account("github", "1", Some("r"), Some("a")))
        .unwrap();
    db.link_account(&other.id, &oauth_account("google", "2", None, None))
        .unwrap();
    // The password first: setting one ends the user's sessions.
    db.set_password(&u.id, "pw").unwrap();
    let s = db.create_session(&u.id).unwrap();
    db.create_session(&other.id).unwrap();
    let (p, _sent) = recording_provider();
    db.create_verification_request("ada@example.com", "https://x/cb", VTOKEN, "sec", &p)
        .unwrap();
    (u.id, s)
}

#[test]
fn fresh_and_populated_files_are_clean_with_counts() {
    let t = TempDb::new();
    {
        let db = t.open();
        let r = db.check_integrity().unwrap();
        assert!(r.is_clean(), "{r}");
        assert_eq!(
            (
                r.users,
                r.accounts,
                r.sessions,
                r.verification_requests,
                r.credentials
            ),
            (0, 0, 0, 0, 0)
        );
        populate(&db);
        let r = db.check_integrity().unwrap();
        assert!(r.is_clean(), "{r}");
        assert!(r.problems().is_empty());
        assert_eq!(
            (
                r.users,
                r.accounts,
                r.sessions,
                r.verification_requests,
                r.credentials
            ),
            (2, 2, 2, 1, 1)
        );
        assert!(r.to_string().contains("clean"), "{r}");
    }
    let db = t.open();
    let r = db.check_integrity().unwrap();
    assert!(r.is_clean(), "{r}");
    assert_eq!(
        (
            r.users,
            r.accounts,
            r.sessions,
            r.verification_requests,
            r.credentials
        ),
        (2, 2, 2, 1, 1)
    );
    // Expired rows still count and are not problems.
    t.clock.advance(Duration::days(60));
    let r = db.check_integrity().unwrap();
    assert!(r.is_clean(), "{r}");
    assert_eq!((r.sessions, r.verification_requests), (2, 1));
}

#[test]
fn stale_email_index_entry() {
    let t = TempDb::new();
    let uid = populate(&t.open()).0;
    damage(&t.path(), |tx| {
        let mut idx = tx.open_table(USERS_BY_EMAIL).unwrap();
        idx.insert("ghost@example.com", uid.to_bytes()).unwrap();
    });
    let db = t.open();
    assert_eq!(
        problems(&db),
        vec![IntegrityProblem::StaleIndexEntry {
            index: "idx:users_by_email",
            key: "ghost@example.com".into()
        }]
    );
    let r = db.check_integrity().unwrap();
    assert!(!r.is_clean());
    assert!(r.to_string().contains("1 problems"), "{r}");
}

#[test]
fn stale_email_index_entry_pointing_to_missing_user() {
    let t = TempDb::new();
    populate(&t.open());
    damage(&t.path(), |tx| {
        let mut idx = tx.open_table(USERS_BY_EMAIL).unwrap();
        idx.insert("nobody@example.com", [9u8; 16]).unwrap();
    });
    let db = t.open();
    assert_eq!(
        problems(&db),
        vec![IntegrityProblem::StaleIndexEntry {
            index: "idx:users_by_email",
            key: "nobody@example.com".into()
        }]
    );
    // The API treats the dangling entry as "no such user", not as an error.
    assert_eq!(db.get_user_by_email("nobody@example.com").unwrap(), None);
}

#[test]
fn missing_email_index_entry() {
    let t = TempDb::new();
    let uid = populate(&t.open()).0;
    damage(&t.path(), |tx| {
        let mut idx = tx.open_table(USERS_BY_EMAIL).unwrap();
        assert!(idx.remove("ada@example.com").unwrap().is_some());
    });
    let db = t.open();
    assert_eq!(
        problems(&db),
        vec![IntegrityProblem::MissingIndexEntry {
            index: "idx:users_by_email",
            key: uid.to_string()
        }]
    );
}

#[test]
fn account_whose_user_is_missing() {
    let t = TempDb::new();
    let (uid, aid) = {
        let db = t.open();
        let u = db.create_user(&NewUser::default()).unwrap();
        let a = db
            .link_account(&u.id, &oauth_account("github", "9", None, None))
            .unwrap();
        (u.id, a.id)
    };
    damage(&t.path(), |tx| {
        let mut users = tx.open_table(USERS).unwrap();
        assert!(users.remove(uid.to_bytes()).unwrap().is_some());
    });
    let db = t.open();
    assert_eq!(
        problems(&db),
        vec![IntegrityProblem::MissingUser {
            table: "accounts",
            key: aid.to_string(),
            user_id: uid
        }]
    );
    // The API copes: the provider lookup finds no user.
    assert_eq!(
        db.get_user_by_provider_account_id("github", "9").unwrap(),
        None
    );
}

#[test]
fn session_and_credential_whose_user_is_missing() {
    let t = TempDb::new();
    let (uid, s) = {
        let db = t.open();
        let u = db.create_user(&NewUser::default()).unwrap();
        db.set_password(&u.id, "pw").unwrap();
        let s = db.create_session(&u.id).unwrap();
        (u.id, s)
    };
    damage(&t.path(), |tx| {
        tx.open_table(USERS)
            .unwrap()
            .remove(uid.to_bytes())
            .unwrap();
    });
    let db = t.open();
    let ps = problems(&db);
    assert_eq!(ps.len(), 2, "{ps:?}");
    assert!(ps.contains(&IntegrityProblem::MissingUser {
        table: "sessions:v2",
        key: hex(&sha256(&s.session_token)),
        user_id: uid
    }));
    assert!(ps.contains(&IntegrityProblem::MissingUser {
        table: "credentials",
        key: uid.to_string(),
        user_id: uid
    }));
}

#[test]
fn session_missing_its_expiry_entry() {
    let t = TempDb::new();
    let s = populate(&t.open()).1;
    let key = sha256(&s.session_token);
    damage(&t.path(), |tx| {
        let mut t = tx.open_table(SESSIONS).unwrap();
        let removed = t
            .remove(session_expiry_key(s.expires.timestamp_micros(), &key).as_slice())
            .unwrap();
        assert!(
            removed.is_some(),
            "expiry key layout is x + sortable(micros) + sha256(token)"
        );
    });
    let db = t.open();
    assert_eq!(
        problems(&db),
        vec![IntegrityProblem::MissingIndexEntry {
            index: "sessions:v2/by-expiry",
            key: hex(&key)
        }]
    );
}

#[test]
fn session_missing_its_user_index_entry() {
    let t = TempDb::new();
    let (uid, s) = populate(&t.open());
    let key = sha256(&s.session_token);
    damage(&t.path(), |tx| {
        let mut t = tx.open_table(SESSIONS).unwrap();
        assert!(
            t.remove(session_user_key(&uid.to_bytes(), &key).as_slice())
                .unwrap()
                .is_some()
        );
    });
    let db = t.open();
    assert_eq!(
        problems(&db),
        vec![IntegrityProblem::MissingIndexEntry {
            index: "sessions:v2/by-user",
            key: hex(&key)
        }]
    );
}

#[test]
fn stale_session_expiry_entry_is_reported_and_purged() {
    let t = TempDb::new();
    populate(&t.open());
    let ghost = [7u8; 32];
    damage(&t.path(), |tx| {
        let mut t = tx.open_table(SESSIONS).unwrap();
        t.insert(session_expiry_key(123, &ghost).as_slice(), &[][..])
            .unwrap();
    });
    let db = t.open();
    assert_eq!(
        problems(&db),
        vec![IntegrityProblem::StaleIndexEntry {
            index: "sessions:v2/by-expiry",
            key: format!("123:{}", hex(&ghost))
        }]
    );
    // Purging walks the expiry index and drops the dangling entry.
    db.purge_expired().unwrap();
    assert_clean(&db);
}

#[test]
fn stale_expiry_entry_with_wrong_time_for_a_live_session() {
    let t = TempDb::new();
    let s = populate(&t.open()).1;
    let key = sha256(&s.session_token);
    let wrong = s.expires.timestamp_micros() + 1;
    damage(&t.path(), |tx| {
        let mut t = tx.open_table(SESSIONS).unwrap();
        t.insert(session_expiry_key(wrong, &key).as_slice(), &[][..])
            .unwrap();
    });
    let db = t.open();
    assert_eq!(
        problems(&db),
        vec![IntegrityProblem::StaleIndexEntry {
            index: "sessions:v2/by-expiry",
            key: format!("{wrong}:{}", hex(&key))
        }]
    );
}

#[test]
fn verification_index_damage() {
    let t = TempDb::new();
    populate(&t.open());
    let key = sha256(&format!("{VTOKEN}sec"));
    let ghost = [3u8; 32];
    damage(&t.path(), |tx| {
        let mut idx = tx.open_table(VERIFICATION_BY_EXPIRY).unwrap();
        let entries: Vec<_> = idx.iter().unwrap().map(|e| e.unwrap().0.value()).collect();
        assert_eq!(entries.len(), 1);
        assert_eq!(
            entries[0].1, key,
            "verification key is sha256(token + secret)"
        );
        idx.remove(entries[0]).unwrap();
        idx.insert((5_i64, ghost), ()).unwrap();
    });
    let db = t.open();
    let ps = problems(&db);
    assert_eq!(ps.len(), 2, "{ps:?}");
    assert!(ps.contains(&IntegrityProblem::MissingIndexEntry {
        index: "idx:verification_by_expiry",
        key: hex(&key)
    }));
    assert!(ps.contains(&IntegrityProblem::StaleIndexEntry {
        index: "idx:verification_by_expiry",
        key: format!("5:{}", hex(&ghost))
    }));
}

#[test]
fn account_index_damage() {
    let t = TempDb::new();
    let (uid, aid) = {
        let db = t.open();
        let u = db.create_user(&NewUser::default()).unwrap();
        let a = db
            .link_account(&u.id, &oauth_account("github", "1", None, None))
            .unwrap();
        (u.id, a.id)
    };
    damage(&t.path(), |tx| {
        let mut by_provider = tx.open_table(ACCOUNTS_BY_PROVIDER).unwrap();
        assert!(by_provider.remove(("github", "1")).unwrap().is_some());
        by_provider.insert(("gitlab", "x"), aid.to_bytes()).unwrap();
        let mut by_user = tx.open_multimap_table(ACCOUNTS_BY_USER).unwrap();
        by_user.insert(uid.to_bytes(), [1u8; 16]).unwrap();
    });
    let db = t.open();
    let ps = problems(&db);
    assert_eq!(ps.len(), 3, "{ps:?}");
    assert!(ps.contains(&IntegrityProblem::MissingIndexEntry {
        index: "idx:accounts_by_provider",
        key: aid.to_string()
    }));
    assert!(ps.contains(&IntegrityProblem::StaleIndexEntry {
        index: "idx:accounts_by_provider",
        key: "gitlab:x".into()
    }));
    assert!(ps.contains(&IntegrityProblem::StaleIndexEntry {
        index: "idx:accounts_by_user",
        key: format!("{uid}:{}", UserId::from_bytes([1u8; 16]))
    }));
}

#[test]
fn record_stored_under_another_key_is_key_mismatch() {
    let t = TempDb::new();
    let uid = t.open().create_user(&NewUser::default()).unwrap().id;
    let bytes = raw_value(&t.path(), USERS, uid.to_bytes());
    let other = [0x42u8; 16];
    // Copied as it is, the record fails its checksum, which covers the key.
    damage(&t.path(), |tx| {
        tx.open_table(USERS)
            .unwrap()
            .insert(other, bytes.as_slice())
            .unwrap();
    });
    let ps = problems(&t.open());
    assert!(
        matches!(ps.as_slice(), [IntegrityProblem::CorruptRecord { table: "users", key, detail }]
            if *key == UserId::from_bytes(other).to_string() && detail.contains("checksum")),
        "{ps:?}"
    );
    // With a checksum made for the other key, the id inside still differs from the key.
    damage(&t.path(), |tx| {
        tx.open_table(USERS)
            .unwrap()
            .insert(other, reseal(&other, &bytes).as_slice())
            .unwrap();
    });
    let db = t.open();
    assert_eq!(
        problems(&db),
        vec![IntegrityProblem::KeyMismatch {
            table: "users",
            key: UserId::from_bytes(other).to_string()
        }]
    );
}

/// One damaged byte anywhere in a stored value, even in a field nothing else repeats (an
/// address, a time), is a checksum failure: an error naming the table on read, a problem in
/// `check_integrity`, never a different value.
#[test]
fn a_damaged_byte_in_a_record_fails_its_checksum() {
    let t = TempDb::new();
    let (uid, s) = populate(&t.open());
    let skey = sha256(&s.session_token);
    let user = raw_value(&t.path(), USERS, uid.to_bytes());
    let name_at = user
        .windows(4)
        .position(|w| w == b"ada@")
        .expect("the user record holds its email");
    for (i, at) in [name_at, user.len() - 6, user.len() - 1]
        .into_iter()
        .enumerate()
    {
        let mut bad = user.clone();
        bad[at] ^= 1 << i;
        damage(&t.path(), |tx| {
            tx.open_table(USERS)
                .unwrap()
                .insert(uid.to_bytes(), bad.as_slice())
                .unwrap();
        });
        let db = t.open();
        let err = db.get_user(&uid).unwrap_err();
        assert!(is_corrupt(&err, "users"), "{err:?}");
        assert!(err.to_string().contains("checksum"), "{err}");
        assert!(!err.to_string().contains("ada@"), "{err}");
        let ps = problems(&db);
        assert!(
            ps.iter().any(
                |p| matches!(p, IntegrityProblem::CorruptRecord { table: "users", key, detail }
                if *key == uid.to_string() && detail.contains("checksum"))
            ),
            "{ps:?}"
        );
    }
    // A session's creation time: a fixed-width field that no index repeats.
    let session = {
        let db = redb::Database::open(t.path()).unwrap();
        let rtx = db.begin_read().unwrap();
        let t = rtx.open_table(SESSIONS).unwrap();
        let v = t
            .get(session_record_key(&skey).as_slice())
            .unwrap()
            .unwrap();
        v.value().to_vec()
    };
    assert_eq!(
        session.len(),
        69,
        "format byte, two ids, four times, checksum"
    );
    let mut bad = session.clone();
    bad[1 + 16 + 16 + 16] ^= 0x01;
    damage(&t.path(), |tx| {
        tx.open_table(SESSIONS)
            .unwrap()
            .insert(session_record_key(&skey).as_slice(), bad.as_slice())
            .unwrap();
    });
    let db = t.open();
    let err = db.get_session(&s.session_token).unwrap_err();
    assert!(is_corrupt(&err, "sessions:v2"), "{err:?}");
    assert!(
        corrupt_problem(&problems(&db), "sessions:v2", &hex(&skey)),
        "the damaged session is reported"
    );
}

fn corrupt_problem(ps: &[IntegrityProblem], table: &str, key: &str) -> bool {
    ps.iter().any(|p| {
        matches!(p, IntegrityProblem::CorruptRecord { table: t, key: k, detail }
            if *t == table && k == key && !detail.is_empty())
    })
}

#[test]
fn garbage_user_record_is_corrupt_and_the_api_returns_errors() {
    let t = TempDb::new();
    let (uid, s) = populate(&t.open());
    damage(&t.path(), |tx| {
        tx.open_table(USERS)
            .unwrap()
            .insert(uid.to_bytes(), &b"\x01garbage\xff\xff\xff"[..])
            .unwrap();
    });
    let db = t.open();
    let ps = problems(&db);
    assert!(corrupt_problem(&ps, "users", &uid.to_string()), "{ps:?}");
    // The email index entry no longer matches a decodable record either.
    assert!(ps.contains(&IntegrityProblem::StaleIndexEntry {
        index: "idx:users_by_email",
        key: "ada@example.com".into()
    }));
    let before = db.check_integrity().unwrap();

    // Reads: a typed error, never a panic.
    assert!(is_corrupt(&db.get_user(&uid).unwrap_err(), "users"));
    assert!(is_corrupt(
        &db.get_user_by_email("ada@example.com").unwrap_err(),
        "users"
    ));
    assert!(is_corrupt(
        &db.get_user_by_provider_account_id("github", "1")
            .unwrap_err(),
        "users"
    ));
    let creds = Credentials {
        email: "ada@example.com".into(),
        password: "pw".into(),
    };
    assert!(is_corrupt(
        &db.get_user_by_credentials(&creds).unwrap_err(),
        "users"
    ));
    // The session record itself is fine.
    assert_eq!(
        db.get_session(&s.session_token).unwrap().unwrap().user_id,
        uid
    );

    // Writes that must read the record fail and write nothing.
    assert!(is_corrupt(&db.create_session(&uid).unwrap_err(), "users"));
    assert!(is_corrupt(
        &db.link_account(&uid, &oauth_account("x", "y", None, None))
            .unwrap_err(),
        "users"
    ));
    assert!(is_corrupt(
        &db.set_password(&uid, "pw2").unwrap_err(),
        "users"
    ));
    assert!(is_corrupt(&db.delete_user(&uid).unwrap_err(), "users"));
    let user = authdb::User {
        id: uid,
        name: None,
        email: None,
        image: None,
        email_verified: None,
        extra: authdb::Extra::new(),
        security_stamp: [0; 16],
        created_at: common::t0(),
        updated_at: common::t0(),
    };
    assert!(is_corrupt(&db.update_user(&user).unwrap_err(), "users"));
    assert!(matches!(
        db.create_user(&profile("ada@example.com")),
        Err(Error::EmailTaken)
    ));
    assert_eq!(
        db.check_integrity().unwrap(),
        before,
        "failed writes wrote nothing"
    );
    // Error messages never echo raw bytes.
    let msg = db.get_user(&uid).unwrap_err().to_string();
    assert!(msg.contains("users"), "{msg}");
    assert!(!msg.contains("garbage"), "{msg}");
}

#[test]
fn garbage_in_every_other_table_is_corrupt_not_a_panic() {
    let t = TempDb::new();
    let (uid, s) = populate(&t.open());
    let skey = sha256(&s.session_token);
    let vkey = sha256(&format!("{VTOKEN}sec"));
    let aid = {
        let db = t.open();
        db.link_account(&uid, &oauth_account("github", "1", None, None))
            .unwrap()
            .id
    };
    damage(&t.path(), |tx| {
        tx.open_table(SESSIONS)
            .unwrap()
            .insert(session_record_key(&skey).as_slice(), &[][..])
            .unwrap();
        tx.open_table(VERIFICATION)
            .unwrap()
            .insert(vkey, &[2u8, 0, 0][..])
            .unwrap();
        tx.open_table(ACCOUNTS)
            .unwrap()
            .insert(aid.to_bytes(), &[0xffu8; 40][..])
            .unwrap();
        tx.open_table(CREDENTIALS)
            .unwrap()
            .insert(uid.to_bytes(), &b"\x01"[..])
            .unwrap();
    });
    let db = t.open();
    let ps = problems(&db);
    assert!(corrupt_problem(&ps, "sessions:v2", &hex(&skey)), "{ps:?}");
    assert!(
        corrupt_problem(&ps, "verification_requests", &hex(&vkey)),
        "{ps:?}"
    );
    assert!(corrupt_problem(&ps, "accounts", &aid.to_string()), "{ps:?}");
    assert!(
        corrupt_problem(&ps, "credentials", &uid.to_string()),
        "{ps:?}"
    );

    let (p, _sent) = recording_provider();
    assert!(is_corrupt(
        &db.get_session(&s.session_token).unwrap_err(),
        "sessions:v2"
    ));
    assert!(is_corrupt(
        &db.update_session(&s, true).unwrap_err(),
        "sessions:v2"
    ));
    assert!(is_corrupt(
        &db.list_sessions(&uid).unwrap_err(),
        "sessions:v2"
    ));
    // Deleting is the remedy: a damaged session can be removed through the API. Its index
    // entries (which only the record could name) are left for purge and delete_sessions, and
    // the integrity check shows them as stale rather than the record as corrupt.
    db.delete_session(&s.session_token).unwrap();
    assert!(db.get_session(&s.session_token).unwrap().is_none());
    assert!(db.list_sessions(&uid).unwrap().is_empty());
    let ps = problems(&db);
    assert!(!corrupt_problem(&ps, "sessions:v2", &hex(&skey)), "{ps:?}");
    assert_eq!(db.delete_sessions(&uid).unwrap(), 0);
    assert!(is_corrupt(
        &db.get_verification_request("ada@example.com", VTOKEN, "sec", &p)
            .unwrap_err(),
        "verification_requests"
    ));
    assert!(is_corrupt(
        &db.use_verification_request("ada@example.com", VTOKEN, "sec")
            .unwrap_err(),
        "verification_requests"
    ));
    assert!(is_corrupt(
        &db.get_user_by_provider_account_id("github", "1")
            .unwrap_err(),
        "accounts"
    ));
    let creds = Credentials {
        email: "ada@example.com".into(),
        password: "pw".into(),
    };
    assert!(is_corrupt(
        &db.get_user_by_credentials(&creds).unwrap_err(),
        "credentials"
    ));
    // Other users' data is still served.
    assert!(db.get_user(&uid).unwrap().is_some());
}

fn damage_phc(t: &TempDb, uid: UserId, replacement: &[u8; 10]) {
    let mut bytes = raw_value(&t.path(), CREDENTIALS, uid.to_bytes());
    let pos = bytes
        .windows(10)
        .position(|w| w == b"$argon2id$")
        .expect("the credential holds a PHC string");
    bytes[pos..pos + 10].copy_from_slice(replacement);
    // A checksum made for the new bytes: the PHC check itself must catch this.
    let bytes = reseal(&uid.to_bytes(), &bytes);
    damage(&t.path(), |tx| {
        tx.open_table(CREDENTIALS)
            .unwrap()
            .insert(uid.to_bytes(), bytes.as_slice())
            .unwrap();
    });
}

fn user_with_password(t: &TempDb) -> UserId {
    let db = t.open();
    let u = db.create_user(&profile("a@example.com")).unwrap();
    db.set_password(&u.id, "pw").unwrap();
    u.id
}

fn a_pw() -> Credentials {
    Credentials {
        email: "a@example.com".into(),
        password: "pw".into(),
    }
}

#[test]
fn malformed_password_hash_is_corrupt() {
    let t = TempDb::new();
    let uid = user_with_password(&t);
    // Same length, so the record still decodes; the PHC string no longer parses.
    damage_phc(&t, uid, b"not a phc!");
    let db = t.open();
    let ps = problems(&db);
    assert!(
        corrupt_problem(&ps, "credentials", &uid.to_string()),
        "{ps:?}"
    );
    assert_eq!(ps.len(), 1, "{ps:?}");
    let err = db.get_user_by_credentials(&a_pw()).unwrap_err();
    assert!(is_corrupt(&err, "credentials"), "{err:?}");
}

#[test]
fn non_argon2id_password_hash_is_reported_and_never_verifies() {
    let t = TempDb::new();
    let uid = user_with_password(&t);
    // A well-formed PHC string of an unknown algorithm.
    damage_phc(&t, uid, b"$argon2xd$");
    let db = t.open();
    let ps = problems(&db);
    assert!(
        corrupt_problem(&ps, "credentials", &uid.to_string()),
        "{ps:?}"
    );
    assert_eq!(ps.len(), 1, "{ps:?}");
    // Fails closed and says why: a damaged hash is an error, not a silent "wrong password".
    let res = db.get_user_by_credentials(&a_pw());
    assert!(
        matches!(&res, Err(authdb::Error::Corrupt { table, .. }) if *table == "credentials"),
        "{res:?}"
    );
}

/// A user record (stored under `key`) whose last two fields, `created_at` and `updated_at`
/// (zigzag varints of 9 bytes each for today's times), are replaced, with a checksum made
/// right for the new bytes (so that the timestamp check itself is what catches it).
fn user_record_with_timestamps(key: &IdKey, stored: &[u8], created: i64, updated: i64) -> Vec<u8> {
    fn varint_i64(v: i64) -> Vec<u8> {
        let z = ((v << 1) ^ (v >> 63)).cast_unsigned();
        let mut out = vec![253];
        out.extend_from_slice(&z.to_le_bytes());
        out
    }
    let original = &stored[..stored.len() - 4];
    assert_eq!(original[0], 2, "user record format 2");
    let t0 = common::t0().timestamp_micros();
    let (prefix, times) = original.split_at(original.len() - 18);
    assert_eq!(
        times,
        [varint_i64(t0), varint_i64(t0)].concat(),
        "record layout as assumed"
    );
    let mut out = prefix.to_vec();
    out.extend(varint_i64(created));
    out.extend(varint_i64(updated));
    out.extend_from_slice(&[0; 4]);
    reseal(key, &out)
}

#[test]
fn out_of_range_timestamp_is_corrupt_on_read() {
    let t = TempDb::new();
    let uid = t.open().create_user(&NewUser::default()).unwrap().id;
    let original = raw_value(&t.path(), USERS, uid.to_bytes());
    let bad = user_record_with_timestamps(&uid.to_bytes(), &original, i64::MAX, i64::MAX);
    damage(&t.path(), |tx| {
        tx.open_table(USERS)
            .unwrap()
            .insert(uid.to_bytes(), bad.as_slice())
            .unwrap();
    });
    let db = t.open();
    let err = db.get_user(&uid).unwrap_err();
    assert!(is_corrupt(&err, "users"), "{err:?}");
}

#[test]
fn out_of_range_timestamp_is_reported_by_check_integrity() {
    let t = TempDb::new();
    let uid = t.open().create_user(&NewUser::default()).unwrap().id;
    let original = raw_value(&t.path(), USERS, uid.to_bytes());
    let bad = user_record_with_timestamps(&uid.to_bytes(), &original, i64::MAX, i64::MAX);
    damage(&t.path(), |tx| {
        tx.open_table(USERS)
            .unwrap()
            .insert(uid.to_bytes(), bad.as_slice())
            .unwrap();
    });
    let db = t.open();
    assert!(db.get_user(&uid).is_err());
    let ps = problems(&db);
    assert!(corrupt_problem(&ps, "users", &uid.to_string()), "{ps:?}");
}

#[test]
fn newer_or_unknown_schema_version_refuses_to_open() {
    let t = TempDb::new();
    populate(&t.open());
    damage(&t.path(), |tx| {
        tx.open_table(META)
            .unwrap()
            .insert("schema_version", authdb::SCHEMA_VERSION + 1)
            .unwrap();
    });
    let err = common::builder(&t.clock).open(t.path()).unwrap_err();
    assert!(
        matches!(err, Error::UnsupportedSchemaVersion { found, supported }
            if found == authdb::SCHEMA_VERSION + 1 && supported == authdb::SCHEMA_VERSION),
        "{err:?}"
    );
    damage(&t.path(), |tx| {
        tx.open_table(META)
            .unwrap()
            .insert("schema_version", 0)
            .unwrap();
    });
    let err = common::builder(&t.clock).open(t.path()).unwrap_err();
    assert!(is_corrupt(&err, "meta"), "{err:?}");
    // Put it back: the data is all still there.
    damage(&t.path(), |tx| {
        tx.open_table(META)
            .unwrap()
            .insert("schema_version", authdb::SCHEMA_VERSION)
            .unwrap();
    });
    let db = t.open();
    assert_clean(&db);
    assert_eq!(db.check_integrity().unwrap().users, 2);
}

#[test]
fn a_file_that_is_not_a_database_is_a_storage_error() {
    let t = TempDb::new();
    std::fs::write(
        t.path(),
        b"this is not a redb file, just some text that is long enough",
    )
    .unwrap();
    let err = common::builder(&t.clock).open(t.path()).unwrap_err();
    assert!(matches!(err, Error::Storage(_)), "{err:?}");
}

#[test]
fn purge_survives_a_corrupt_expired_session() {
    let t = TempDb::new();
    let (bad, good) = {
        let db = t.open();
        let u = db.create_user(&NewUser::default()).unwrap();
        let bad = db.create_session(&u.id).unwrap();
        let good = db.create_session(&u.id).unwrap();
        (bad, good)
    };
    damage(&t.path(), |tx| {
        tx.open_table(SESSIONS)
            .unwrap()
            .insert(
                session_record_key(&sha256(&bad.session_token)).as_slice(),
                &b"\x01garbage"[..],
            )
            .unwrap();
    });
    let db = t.open();
    t.clock.set(good.expires + Duration::microseconds(1));
    // The damaged row is reported by check_integrity; housekeeping of the healthy expired
    // row must still happen.
    let res = db.purge_expired();
    assert!(res.is_ok(), "{res:?}");
    // The healthy expired row is gone (the damaged one may stay, for check_integrity).
    assert!(db.check_integrity().unwrap().sessions <= 1);
}
