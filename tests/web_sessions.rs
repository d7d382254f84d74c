//! Web sessions (tower-sessions' records) in the core: create/save/load/delete against a file,
//! reopened; id collisions; expiry hidden on load and removed in batches through the expiry
//! index; the by-user index under every change of user; the cascade of `delete_user`;
//! `check_integrity` on clean files and on each kind of damage, made with raw redb.

mod common;

use std::path::Path;

use authdb::prelude::*;
use authdb::web_sessions::MAX_WEB_SESSION_DATA_LEN;
use authdb::{AuthDb, Error, IntegrityProblem, UserId, WebSession, WebSessionHandle, WebSessionId};
use chrono::Duration;
use common::{TempDb, assert_clean, mem_db, profile};
use redb::TableDefinition;
use sha2::{Digest, Sha256};

// The layout of the `web_sessions` table (src/tables/web_sessions.rs), written out again.
const WEB_SESSIONS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("web_sessions");

fn hash(id: &WebSessionId) -> [u8; 32] {
    Sha256::digest(id.to_bytes()).into()
}

fn record_key(id: &WebSessionId) -> Vec<u8> {
    [&b"r"[..], &hash(id)].concat()
}

fn user_key(user: &UserId, id: &WebSessionId) -> Vec<u8> {
    [&b"u"[..], &user.to_bytes(), &hash(id)].concat()
}

fn expiry_key(expires: i64, id: &WebSessionId) -> Vec<u8> {
    let sortable = (expires.cast_unsigned() ^ (1 << 63)).to_be_bytes();
    [&b"x"[..], &sortable, &hash(id)].concat()
}

fn damage(path: &Path, f: impl FnOnce(&mut redb::Table<&[u8], &[u8]>)) {
    let db = redb::Database::open(path).unwrap();
    let tx = db.begin_write().unwrap();
    {
        let mut t = tx.open_table(WEB_SESSIONS).unwrap();
        f(&mut t);
    }
    tx.commit().unwrap();
}

fn id(n: u8) -> WebSessionId {
    let mut b = [n; 16];
    b[0] = 0xa5;
    WebSessionId::from_bytes(b)
}

fn session(db: &AuthDb, n: u8, user: Option<UserId>, data: &str) -> WebSession {
    WebSession {
        id: id(n),
        user_id: user,
        expires: db.now() + Duration::hours(1),
        data: data.as_bytes().to_vec(),
    }
}

#[test]
fn round_trip_on_a_file_survives_reopen() {
    let tmp = TempDb::new();
    let db = tmp.open();
    let user = db.create_user(&profile("ada@example.com")).unwrap().id;
    let a = session(&db, 1, None, r#"{"cart":1}"#);
    let b = session(&db, 2, Some(user), r#"{"axum-login.data":{}}"#);
    assert!(db.web_session_create(&a).unwrap());
    assert!(db.web_session_create(&b).unwrap());
    assert_eq!(db.web_session_load(&a.id).unwrap().as_ref(), Some(&a));
    assert_eq!(db.web_session_load(&b.id).unwrap().as_ref(), Some(&b));
    assert_eq!(db.web_session_load(&id(9)).unwrap(), None);

    // Save replaces data, expiry and user; created_at stays.
    let created = db.web_session_list_for_user(&user).unwrap()[0].created_at;
    tmp.clock.advance(Duration::minutes(5));
    let b2 = WebSession {
        data: br#"{"n":2}"#.to_vec(),
        expires: db.now() + Duration::hours(2),
        ..b.clone()
    };
    db.web_session_save(&b2).unwrap();
    let listed = db.web_session_list_for_user(&user).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].created_at, created);
    assert_eq!(listed[0].updated_at, db.now());
    assert_eq!(listed[0].expires, b2.expires);
    assert_eq!(listed[0].handle, WebSessionHandle::of(&b.id));
    assert_eq!(listed[0].data_len, b2.data.len());
    // Save of an unknown id creates it.
    let c = session(&db, 3, None, "{}");
    db.web_session_save(&c).unwrap();
    assert!(db.web_session_delete(&a.id).unwrap());
    assert!(!db.web_session_delete(&a.id).unwrap());
    assert_clean(&db);
    assert_eq!(db.check_integrity().unwrap().web_sessions, 2);
    drop(db);

    let db = tmp.open();
    assert_eq!(db.web_session_load(&a.id).unwrap(), None);
    assert_eq!(db.web_session_load(&b.id).unwrap(), Some(b2));
    assert_eq!(db.web_session_load(&c.id).unwrap(), Some(c.clone()));
    assert_clean(&db);

    // The file holds the id's hash, never the id.
    drop(db);
    let bytes = std::fs::read(tmp.path()).unwrap();
    assert!(!common::contains_bytes(&bytes, &c.id.to_bytes()));
}

#[test]
fn create_reports_a_collision_and_keeps_the_first_record() {
    let (db, clock) = mem_db();
    let first = session(&db, 1, None, "first");
    assert!(db.web_session_create(&first).unwrap());
    let second = session(&db, 1, None, "second");
    assert!(!db.web_session_create(&second).unwrap());
    assert_eq!(
        db.web_session_load(&first.id).unwrap().unwrap().data,
        b"first"
    );
    // An expired record still holds its id: its cookie may still be out there.
    clock.advance(Duration::hours(2));
    assert_eq!(db.web_session_load(&first.id).unwrap(), None);
    assert!(
        !db.web_session_create(&session(&db, 1, None, "third"))
            .unwrap()
    );
    assert_eq!(db.web_session_delete_expired(0).unwrap(), 1);
    assert!(
        db.web_session_create(&session(&db, 1, None, "fourth"))
            .unwrap()
    );
    assert_clean(&db);
}

#[test]
fn load_hides_expired_records_and_the_boundary_is_inclusive() {
    let (db, clock) = mem_db();
    let s = session(&db, 1, None, "x");
    db.web_session_create(&s).unwrap();
    clock.set(s.expires);
    assert!(
        db.web_session_load(&s.id).unwrap().is_some(),
        "valid up to `expires`"
    );
    clock.advance(Duration::microseconds(1));
    assert_eq!(db.web_session_load(&s.id).unwrap(), None);
    // Hidden, not deleted: the record is still counted until delete_expired.
    assert_eq!(db.check_integrity().unwrap().web_sessions, 1);
    assert_eq!(db.web_session_delete_expired(0).unwrap(), 1);
    assert_eq!(db.check_integrity().unwrap().web_sessions, 0);
    // A record saved with an expiry already past reads as expired at once.
    let past = WebSession {
        expires: db.now() - Duration::seconds(1),
        ..session(&db, 2, None, "y")
    };
    db.web_session_save(&past).unwrap();
    assert_eq!(db.web_session_load(&past.id).unwrap(), None);
    assert_clean(&db);
}

#[test]
fn delete_expired_walks_the_expiry_index_in_batches() {
    let (db, clock) = mem_db();
    let user = db.create_user(&profile("ada@example.com")).unwrap().id;
    // 2,500 records expiring within the hour, 300 living a day; ids from a counter.
    let mk = |n: u32, hours: i64, user: Option<UserId>| {
        let mut b = [0u8; 16];
        b[..4].copy_from_slice(&n.to_le_bytes());
        WebSession {
            id: WebSessionId::from_bytes(b),
            user_id: user,
            expires: db.now() + Duration::hours(hours),
            data: vec![b'x'; 40],
        }
    };
    db.write(|tx| {
        for n in 0..2500 {
            assert!(tx.web_session_create(&mk(n, 1, (n % 2 == 0).then_some(user)))?);
        }
        for n in 2500..2800 {
            assert!(tx.web_session_create(&mk(n, 24, Some(user)))?);
        }
        Ok(())
    })
    .unwrap();
    clock.advance(Duration::hours(2));

    let before = db.write_stats();
    assert_eq!(db.web_session_delete_expired(1000).unwrap(), 2500);
    let after = db.write_stats();
    // Three full batches of 1,000 walked entries would be 3; 2,500 need 3 (1000+1000+500).
    assert_eq!(after.transactions - before.transactions, 3);
    assert_eq!(db.check_integrity().unwrap().web_sessions, 300);
    assert_eq!(db.web_session_list_for_user(&user).unwrap().len(), 300);

    // Nothing expired: one transaction that walks nothing, whatever the table holds.
    let before = db.write_stats();
    assert_eq!(db.web_session_delete_expired(1000).unwrap(), 0);
    assert_eq!(db.write_stats().transactions - before.transactions, 1);
    assert_clean(&db);

    // Inside a transaction: one batch of at most `limit`.
    clock.advance(Duration::days(2));
    let n = db.write(|tx| tx.web_session_delete_expired(120)).unwrap();
    assert_eq!(n, 120);
    assert_eq!(db.web_session_delete_expired(7).unwrap(), 180);
    assert_clean(&db);
}

#[test]
fn the_by_user_index_follows_every_save() {
    let (db, _clock) = mem_db();
    let ada = db.create_user(&profile("ada@example.com")).unwrap().id;
    let bob = db.create_user(&profile("bob@example.com")).unwrap().id;
    let s = session(&db, 1, None, "anonymous");
    db.web_session_create(&s).unwrap();
    assert!(db.web_session_list_for_user(&ada).unwrap().is_empty());

    // Sign-in: the record now names Ada.
    db.web_session_save(&WebSession {
        user_id: Some(ada),
        ..s.clone()
    })
    .unwrap();
    assert_eq!(db.web_session_list_for_user(&ada).unwrap().len(), 1);
    // Switch user: moves to Bob.
    db.web_session_save(&WebSession {
        user_id: Some(bob),
        ..s.clone()
    })
    .unwrap();
    assert!(db.web_session_list_for_user(&ada).unwrap().is_empty());
    assert_eq!(db.web_session_list_for_user(&bob).unwrap().len(), 1);
    // Sign-out: indexed under nobody.
    db.web_session_save(&s).unwrap();
    assert!(db.web_session_list_for_user(&bob).unwrap().is_empty());
    assert_clean(&db);

    // Several devices, oldest first; expired ones are left out of the list.
    for n in 2..6 {
        db.web_session_create(&session(&db, n, Some(ada), "d"))
            .unwrap();
    }
    let short = WebSession {
        expires: db.now(),
        ..session(&db, 6, Some(ada), "short")
    };
    db.web_session_create(&short).unwrap();
    let list = db.web_session_list_for_user(&ada).unwrap();
    assert_eq!(list.len(), 5);
    assert!(list.windows(2).all(|w| w[0].created_at <= w[1].created_at));
    assert!(list.iter().all(|i| i.user_id == Some(ada)));
}

#[test]
fn sign_out_one_device_or_everywhere() {
    let (db, _clock) = mem_db();
    let ada = db.create_user(&profile("ada@example.com")).unwrap().id;
    let bob = db.create_user(&profile("bob@example.com")).unwrap().id;
    for n in 1..=3 {
        db.web_session_create(&session(&db, n, Some(ada), "a"))
            .unwrap();
    }
    db.web_session_create(&session(&db, 9, Some(bob), "b"))
        .unwrap();

    // One device, by the handle a "your devices" page shows.
    let handle = db.web_session_list_for_user(&ada).unwrap()[0].handle;
    let text = handle.to_string();
    assert_eq!(text.len(), 64);
    assert_eq!(text.parse::<WebSessionHandle>().unwrap(), handle);
    assert!("xyz".parse::<WebSessionHandle>().is_err());
    assert!(
        !db.web_session_delete_by_handle(&bob, &handle).unwrap(),
        "not Bob's"
    );
    assert!(db.web_session_delete_by_handle(&ada, &handle).unwrap());
    assert!(!db.web_session_delete_by_handle(&ada, &handle).unwrap());
    assert_eq!(db.web_session_list_for_user(&ada).unwrap().len(), 2);

    // Everywhere, together with the database sessions and the security stamp, atomically.
    db.create_session(&ada).unwrap();
    let stamp = db.get_user(&ada).unwrap().unwrap().security_stamp;
    let (web, database) = db
        .write(|tx| {
            let web = tx.web_session_delete_for_user(&ada)?;
            Ok((web, tx.delete_sessions(&ada)?))
        })
        .unwrap();
    assert_eq!((web, database), (2, 1));
    assert_ne!(db.get_user(&ada).unwrap().unwrap().security_stamp, stamp);
    assert!(db.web_session_list_for_user(&ada).unwrap().is_empty());
    assert_eq!(db.web_session_list_for_user(&bob).unwrap().len(), 1);
    assert_eq!(db.web_session_delete_for_user(&ada).unwrap(), 0);
    assert_clean(&db);
}

#[test]
fn records_name_existing_users_and_delete_user_removes_them() {
    let (db, _clock) = mem_db();
    let ada = db.create_user(&profile("ada@example.com")).unwrap().id;
    let ghost = UserId::from_bytes([3; 16]);
    let err = db
        .web_session_create(&session(&db, 1, Some(ghost), "x"))
        .unwrap_err();
    assert!(matches!(err, Error::UserNotFound(u) if u == ghost));
    let err = db
        .web_session_save(&session(&db, 1, Some(ghost), "x"))
        .unwrap_err();
    assert!(matches!(err, Error::UserNotFound(_)));
    assert_eq!(db.check_integrity().unwrap().web_sessions, 0);

    db.web_session_create(&session(&db, 1, Some(ada), "x"))
        .unwrap();
    db.web_session_create(&session(&db, 2, None, "anonymous"))
        .unwrap();
    db.delete_user(&ada).unwrap();
    assert_eq!(db.web_session_load(&id(1)).unwrap(), None);
    assert!(db.web_session_load(&id(2)).unwrap().is_some());
    assert_clean(&db);
}

#[test]
fn data_is_bounded_and_opaque() {
    let (db, _clock) = mem_db();
    let mut s = session(&db, 1, None, "");
    s.data = (0..=255u8).cycle().take(MAX_WEB_SESSION_DATA_LEN).collect();
    assert!(db.web_session_create(&s).unwrap());
    assert_eq!(db.web_session_load(&s.id).unwrap().unwrap().data, s.data);
    s.data.push(0);
    let err = db.web_session_save(&s).unwrap_err();
    assert!(
        matches!(err, Error::InvalidInput { field: "data", .. }),
        "{err}"
    );
    assert_eq!(
        db.web_session_load(&s.id).unwrap().unwrap().data.len(),
        MAX_WEB_SESSION_DATA_LEN
    );
}

#[test]
fn debug_hides_the_id_and_the_data() {
    let (db, _clock) = mem_db();
    let s = session(&db, 0x42, None, "secret-cart-contents");
    let shown = format!("{s:?} {:?}", s.id);
    assert!(!shown.contains("secret-cart"), "{shown}");
    assert!(!shown.contains("66, 66"), "{shown}");
    assert!(!shown.contains("4242"), "{shown}");
}

#[test]
fn reads_inside_a_transaction_see_its_own_writes() {
    let (db, _clock) = mem_db();
    let ada = db.create_user(&profile("ada@example.com")).unwrap().id;
    let r: authdb::Result<()> = db.write(|tx| {
        let s = session(&db, 1, Some(ada), "x");
        assert!(tx.web_session_create(&s)?);
        assert_eq!(tx.web_session_load(&s.id)?.unwrap(), s);
        assert_eq!(tx.web_session_list_for_user(&ada)?.len(), 1);
        Err(Error::Busy) // abort
    });
    assert!(r.is_err());
    assert_eq!(db.web_session_load(&id(1)).unwrap(), None);
    assert_clean(&db);
}

#[test]
fn integrity_reports_each_kind_of_damage() {
    let tmp = TempDb::new();
    let ada;
    let expires;
    {
        let db = tmp.open();
        ada = db.create_user(&profile("ada@example.com")).unwrap().id;
        for n in 1..=4 {
            db.web_session_create(&session(&db, n, Some(ada), "x"))
                .unwrap();
        }
        expires = (db.now() + Duration::hours(1)).timestamp_micros();
        assert_clean(&db);
    }
    damage(&tmp.path(), |t| {
        // 1: by-user entry gone. 2: expiry entry gone. 3: record bytes damaged.
        t.remove(user_key(&ada, &id(1)).as_slice()).unwrap();
        t.remove(expiry_key(expires, &id(2)).as_slice()).unwrap();
        t.insert(record_key(&id(3)).as_slice(), [1u8, 2, 3].as_slice())
            .unwrap();
        // Stale entries for a record that does not exist.
        t.insert(user_key(&ada, &id(7)).as_slice(), [].as_slice())
            .unwrap();
        t.insert(expiry_key(expires, &id(7)).as_slice(), [].as_slice())
            .unwrap();
        t.insert(b"?what".as_slice(), [].as_slice()).unwrap();
    });
    let db = tmp.open();
    let report = db.check_integrity().unwrap();
    let p = report.problems();
    let has = |f: &dyn Fn(&IntegrityProblem) -> bool| p.iter().any(f);
    assert!(
        has(&|p| matches!(
            p,
            IntegrityProblem::MissingIndexEntry {
                index: "web_sessions/by-user",
                ..
            }
        )),
        "{report}"
    );
    assert!(
        has(&|p| matches!(
            p,
            IntegrityProblem::MissingIndexEntry {
                index: "web_sessions/by-expiry",
                ..
            }
        )),
        "{report}"
    );
    assert!(
        has(&|p| matches!(
            p,
            IntegrityProblem::CorruptRecord {
                table: "web_sessions",
                ..
            }
        )),
        "{report}"
    );
    assert!(
        has(&|p| matches!(
            p,
            IntegrityProblem::StaleIndexEntry {
                index: "web_sessions/by-user",
                ..
            }
        )),
        "{report}"
    );
    assert!(
        has(&|p| matches!(
            p,
            IntegrityProblem::StaleIndexEntry {
                index: "web_sessions/by-expiry",
                ..
            }
        )),
        "{report}"
    );
    // Record 3 is damaged: its own entries point at a record that does not decode.
    assert_eq!(report.web_sessions, 4);
    // No key in the report is an id: only hashes.
    let text = report.to_string();
    assert!(!text.contains(&common::hex(&id(3).to_bytes())), "{text}");

    // The damaged record reads as an error, never a panic; delete and purge clean up.
    assert!(matches!(
        db.web_session_load(&id(3)),
        Err(Error::Corrupt { .. })
    ));
    assert!(db.web_session_delete(&id(3)).unwrap());
    drop(db);
    damage(&tmp.path(), |t| {
        t.remove(b"?what".as_slice()).unwrap();
    });
    let db = tmp.open();
    db.web_session_delete_for_user(&ada).unwrap();
    tmp.clock.advance(Duration::hours(2));
    db.web_session_delete_expired(0).unwrap();
    assert_clean(&db);
    assert_eq!(db.check_integrity().unwrap().web_sessions, 0);
}

#[test]
fn a_deleted_user_in_raw_damage_is_reported() {
    let tmp = TempDb::new();
    let ada;
    {
        let db = tmp.open();
        ada = db.create_user(&profile("ada@example.com")).unwrap().id;
        db.web_session_create(&session(&db, 1, Some(ada), "x"))
            .unwrap();
    }
    {
        let db = redb::Database::open(tmp.path()).unwrap();
        let tx = db.begin_write().unwrap();
        tx.open_table(TableDefinition::<[u8; 16], &[u8]>::new("users"))
            .unwrap()
            .remove(ada.to_bytes())
            .unwrap();
        tx.commit().unwrap();
    }
    let db = tmp.open();
    let report = db.check_integrity().unwrap();
    assert!(
        report.problems().iter().any(|p| matches!(
            p,
            IntegrityProblem::MissingUser { table: "web_sessions", user_id, .. } if *user_id == ada
        )),
        "{report}"
    );
}
