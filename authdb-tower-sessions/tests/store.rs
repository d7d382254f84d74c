//! What tower-sessions expects of a session store, in our own words, against a real authdb
//! file that is closed and reopened: create/save/load/delete, expiry, id collisions on
//! create, concurrent saves, deletion of expired records; then the by-user index that
//! axum-login's user id fills, and the same store driven through tower-sessions' `Session`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use authdb::{AuthDb, Clock, Durability, ManualClock, NewUser, UserId};
use authdb_tower_sessions::{AXUM_LOGIN_DATA_KEY, AuthDbSessionStore, web_session_id};
use chrono::Utc;
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};
use tower_sessions_core::session::{Id, Record};
use tower_sessions_core::{ExpiredDeletion, Session, SessionStore};

/// A database file in a temporary directory, with a manual clock starting now (so the
/// expiry dates tower-sessions computes from the real time line up with it).
struct Fixture {
    dir: tempfile::TempDir,
    clock: Arc<ManualClock>,
}

impl Fixture {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            clock: Arc::new(ManualClock::new(Utc::now())),
        }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("auth.redb")
    }

    /// Opens (or reopens) the file, with durable commits.
    fn db(&self) -> AuthDb {
        AuthDb::builder()
            .clock(self.clock.clone())
            .durability(Durability::Immediate)
            .open(self.path())
            .unwrap()
    }

    fn store(&self) -> AuthDbSessionStore {
        AuthDbSessionStore::new(self.db())
    }

    /// Moves the store's clock (and so its idea of "expired").
    fn advance(&self, d: Duration) {
        self.clock.advance(chrono::Duration::microseconds(
            i64::try_from(d.whole_microseconds()).unwrap(),
        ));
    }

    /// The store's clock, as tower-sessions' time type.
    fn now(&self) -> OffsetDateTime {
        let now = self.clock.now();
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(now.timestamp_micros()) * 1000)
            .unwrap()
    }
}

fn data(pairs: &[(&str, Value)]) -> HashMap<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

fn record(expiry: OffsetDateTime, pairs: &[(&str, Value)]) -> Record {
    Record {
        id: Id::default(),
        data: data(pairs),
        expiry_date: expiry,
    }
}

/// The expiry date as the store gives it back: truncated to the microsecond.
fn micros(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(t.nanosecond() / 1000 * 1000).unwrap()
}

fn axum_login(user: &UserId) -> Value {
    json!({ "user_id": user.to_string(), "auth_hash": [1, 2, 3, 4] })
}

fn integrity(store: &AuthDbSessionStore) -> authdb::IntegrityReport {
    let r = store.db().inner().check_integrity().unwrap();
    assert!(r.is_clean(), "{r}");
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_save_load_delete_survive_a_reopen() {
    let fx = Fixture::new();
    let store = fx.store();
    let mut rec = record(
        fx.now() + Duration::hours(1) + Duration::nanoseconds(123_456_789),
        &[
            ("counter", json!(1)),
            ("nested", json!({"a": [1, 2.5, "x", null, true]})),
            ("big", json!(u64::MAX)),
        ],
    );
    store.create(&mut rec).await.unwrap();
    let loaded = store.load(&rec.id).await.unwrap().unwrap();
    assert_eq!(loaded.id, rec.id);
    assert_eq!(loaded.data, rec.data);
    assert_eq!(loaded.expiry_date, micros(rec.expiry_date));

    rec.data.insert("counter".into(), json!(2));
    rec.expiry_date += Duration::minutes(30);
    store.save(&rec).await.unwrap();
    // Save of an id the store has never seen creates it (tower-sessions saves after `load`
    // found nothing, and after `cycle_id`).
    let other = record(fx.now() + Duration::hours(1), &[("k", json!("v"))]);
    store.save(&other).await.unwrap();
    let gone = record(fx.now() + Duration::hours(1), &[]);
    store.save(&gone).await.unwrap();
    store.delete(&gone.id).await.unwrap();
    store.delete(&gone.id).await.unwrap(); // deleting twice is fine
    assert_eq!(integrity(&store).web_sessions, 2);
    drop(store);

    let store = fx.store();
    let loaded = store.load(&rec.id).await.unwrap().unwrap();
    assert_eq!(loaded.data["counter"], json!(2));
    assert_eq!(loaded.expiry_date, micros(rec.expiry_date));
    assert_eq!(
        store.load(&other.id).await.unwrap().unwrap().data,
        other.data
    );
    assert!(store.load(&gone.id).await.unwrap().is_none());
    assert!(store.load(&Id::default()).await.unwrap().is_none());
    integrity(&store);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_hides_expired_records_and_delete_expired_removes_them() {
    let fx = Fixture::new();
    let store = fx.store().with_delete_batch(7);
    let mut short = Vec::new();
    for i in 0..40 {
        let mut r = record(fx.now() + Duration::minutes(5), &[("i", json!(i))]);
        store.create(&mut r).await.unwrap();
        short.push(r);
    }
    let mut long = record(fx.now() + Duration::days(1), &[("keep", json!(true))]);
    store.create(&mut long).await.unwrap();
    // An expiry already past: saved, but never loaded.
    let past = record(fx.now() - Duration::seconds(1), &[]);
    store.save(&past).await.unwrap();
    assert!(store.load(&past.id).await.unwrap().is_none());

    fx.advance(Duration::minutes(5));
    assert!(
        store.load(&short[0].id).await.unwrap().is_some(),
        "valid at its expiry"
    );
    fx.advance(Duration::seconds(1));
    for r in &short {
        assert!(store.load(&r.id).await.unwrap().is_none());
    }
    assert_eq!(
        integrity(&store).web_sessions,
        42,
        "hidden, not yet deleted"
    );
    store.delete_expired().await.unwrap();
    assert_eq!(integrity(&store).web_sessions, 1);
    assert!(store.load(&long.id).await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_never_overwrites_a_taken_id() {
    let fx = Fixture::new();
    let store = fx.store();
    let mut first = record(fx.now() + Duration::hours(1), &[("who", json!("first"))]);
    store.create(&mut first).await.unwrap();

    // A second record arrives with the same id (a colliding draw).
    let mut second = record(fx.now() + Duration::hours(1), &[("who", json!("second"))]);
    second.id = first.id;
    store.create(&mut second).await.unwrap();
    assert_ne!(second.id, first.id, "create drew a new id");
    assert_eq!(
        store.load(&first.id).await.unwrap().unwrap().data["who"],
        json!("first")
    );
    assert_eq!(
        store.load(&second.id).await.unwrap().unwrap().data["who"],
        json!("second")
    );

    // An expired record still holds its id.
    fx.advance(Duration::hours(2));
    let mut third = record(fx.now() + Duration::hours(1), &[("who", json!("third"))]);
    third.id = first.id;
    store.create(&mut third).await.unwrap();
    assert_ne!(third.id, first.id);
    integrity(&store);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_saves_and_creates_stay_consistent() {
    let fx = Fixture::new();
    let store = fx.store();
    let mut shared = record(fx.now() + Duration::hours(1), &[("n", json!(-1))]);
    store.create(&mut shared).await.unwrap();

    let mut tasks = Vec::new();
    for n in 0..32 {
        let store = store.clone();
        let mut r = shared.clone();
        tasks.push(tokio::spawn(async move {
            // Half save the one shared record, half create records of their own.
            if n % 2 == 0 {
                r.data.insert("n".into(), json!(n));
                r.expiry_date += Duration::seconds(n);
                store.save(&r).await.unwrap();
                None
            } else {
                let mut own = record(r.expiry_date, &[("own", json!(n))]);
                store.create(&mut own).await.unwrap();
                Some(own.id)
            }
        }));
    }
    let mut created = Vec::new();
    for t in tasks {
        if let Some(id) = t.await.unwrap() {
            created.push(id);
        }
    }
    // The last save won, whole: its data and its expiry together.
    let last = store.load(&shared.id).await.unwrap().unwrap();
    let n = last.data["n"].as_i64().unwrap();
    assert!(n >= 0 && n % 2 == 0);
    assert_eq!(
        last.expiry_date,
        micros(shared.expiry_date + Duration::seconds(n))
    );
    created.sort_by_key(|id| id.0);
    created.dedup();
    assert_eq!(created.len(), 16);
    for id in &created {
        assert!(store.load(id).await.unwrap().is_some());
    }
    assert_eq!(integrity(&store).web_sessions, 17);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_login_users_fill_the_by_user_index() {
    let fx = Fixture::new();
    let store = fx.store();
    let db = store.db().clone();
    let ada = db
        .create_user(&NewUser {
            email: Some("ada@example.com".into()),
            ..NewUser::default()
        })
        .await
        .unwrap()
        .id;

    // Anonymous, then signed in on two devices.
    let mut phone = record(fx.now() + Duration::hours(1), &[("cart", json!(3))]);
    store.create(&mut phone).await.unwrap();
    assert!(db.web_session_list_for_user(&ada).await.unwrap().is_empty());
    phone
        .data
        .insert(AXUM_LOGIN_DATA_KEY.into(), axum_login(&ada));
    store.save(&phone).await.unwrap();
    let mut laptop = record(
        fx.now() + Duration::hours(1),
        &[(AXUM_LOGIN_DATA_KEY, axum_login(&ada))],
    );
    store.create(&mut laptop).await.unwrap();
    assert_eq!(store.user_of(&laptop), Some(ada));
    let devices = db.web_session_list_for_user(&ada).await.unwrap();
    assert_eq!(devices.len(), 2);
    assert!(
        devices
            .iter()
            .any(|d| d.handle == authdb::WebSessionHandle::of(&web_session_id(&phone.id)))
    );

    // Sign out on the phone (axum-login removes its key): off the index, session kept.
    phone.data.remove(AXUM_LOGIN_DATA_KEY);
    store.save(&phone).await.unwrap();
    assert_eq!(db.web_session_list_for_user(&ada).await.unwrap().len(), 1);
    assert!(store.load(&phone.id).await.unwrap().is_some());

    // Sign out everywhere.
    phone
        .data
        .insert(AXUM_LOGIN_DATA_KEY.into(), axum_login(&ada));
    store.save(&phone).await.unwrap();
    assert_eq!(db.web_session_delete_for_user(&ada).await.unwrap(), 2);
    assert!(store.load(&phone.id).await.unwrap().is_none());
    assert!(store.load(&laptop.id).await.unwrap().is_none());
    integrity(&store);

    // Ids that are not authdb users are not indexed, and the session is still stored:
    // another app's integer ids, a deleted user.
    let mut foreign = record(
        fx.now() + Duration::hours(1),
        &[(AXUM_LOGIN_DATA_KEY, json!({ "user_id": 42 }))],
    );
    store.create(&mut foreign).await.unwrap();
    assert_eq!(store.user_of(&foreign), None);
    let ghost = UserId::from_bytes([9; 16]);
    let mut orphan = record(
        fx.now() + Duration::hours(1),
        &[(AXUM_LOGIN_DATA_KEY, axum_login(&ghost))],
    );
    store.create(&mut orphan).await.unwrap();
    store.save(&orphan).await.unwrap();
    assert!(store.load(&orphan.id).await.unwrap().is_some());
    assert!(
        db.web_session_list_for_user(&ghost)
            .await
            .unwrap()
            .is_empty()
    );

    // Deleting the user deletes their sessions.
    store.save(&laptop).await.unwrap();
    db.delete_user(&ada).await.unwrap();
    assert!(store.load(&laptop.id).await.unwrap().is_none());
    integrity(&store);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_user_key_can_be_changed_or_ignored() {
    let fx = Fixture::new();
    let db = fx.db();
    let ada = db
        .write(|tx| {
            use authdb::prelude::*;
            tx.create_user(&NewUser::default())
        })
        .unwrap()
        .id;
    let custom = AuthDbSessionStore::new(db.clone()).with_axum_login_data_key("auth");
    let r = record(fx.now() + Duration::hours(1), &[("auth", axum_login(&ada))]);
    assert_eq!(custom.user_of(&r), Some(ada));
    let plain = AuthDbSessionStore::new(db).without_user_index();
    let r = record(
        fx.now() + Duration::hours(1),
        &[(AXUM_LOGIN_DATA_KEY, axum_login(&ada))],
    );
    assert_eq!(plain.user_of(&r), None);
    plain.save(&r).await.unwrap();
    assert!(
        plain
            .db()
            .web_session_list_for_user(&ada)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tower_sessions_session_runs_on_the_store() {
    let fx = Fixture::new();
    let store = Arc::new(fx.store());

    // A new visitor: no id until the first save, which creates the record.
    let session = Session::new(None, store.clone(), None);
    session.insert("visits", 1).await.unwrap();
    session.save().await.unwrap();
    let id = session.id().expect("created");

    // The next request, with the cookie.
    let session = Session::new(Some(id), store.clone(), None);
    assert_eq!(session.get::<u32>("visits").await.unwrap(), Some(1));
    session.insert("visits", 2).await.unwrap();
    // Sign-in rotates the id (as axum-login does): the old record is deleted, a new one made.
    session.cycle_id().await.unwrap();
    session.save().await.unwrap();
    let rotated = session.id().unwrap();
    assert_ne!(rotated, id);
    assert!(store.load(&id).await.unwrap().is_none());
    let session = Session::new(Some(rotated), store.clone(), None);
    assert_eq!(session.get::<u32>("visits").await.unwrap(), Some(2));

    // Sign-out flushes it.
    session.flush().await.unwrap();
    assert!(store.load(&rotated).await.unwrap().is_none());
    assert_eq!(integrity(&store).web_sessions, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deletion_task_runs_on_the_store() {
    let fx = Fixture::new();
    let store = fx.store();
    for _ in 0..5 {
        let mut r = record(fx.now() + Duration::minutes(1), &[]);
        store.create(&mut r).await.unwrap();
    }
    fx.advance(Duration::minutes(2));
    let task = tokio::spawn(
        store
            .clone()
            .continuously_delete_expired(tokio::time::Duration::from_millis(10)),
    );
    for _ in 0..200 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        if integrity(&store).web_sessions == 0 {
            break;
        }
    }
    task.abort();
    assert_eq!(integrity(&store).web_sessions, 0);
}
