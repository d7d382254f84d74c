//! Races with exactly one winner: 8 threads at once (lined up on a barrier) for one email, one
//! verification token, one provider account, one session token, one counter value; through one
//! shared pool and through 8 separate stores (as 8 processes would be). Several rounds each.
//! Needs `AUTHDB_POSTGRES_URL`.

mod common;

use std::sync::{Arc, Barrier};
use std::thread;

use authdb::prelude::*;
use authdb::{
    EmailProvider, Error, NewAccount, NewAuthenticator, NewSession, NewUser, UserId,
    VerificationToken, hash_verification_token,
};
use authdb_postgres::PgAuthDb;
use chrono::Duration;

const POOL: u32 = 8;
const THREADS: usize = POOL as usize;
const ROUNDS: usize = 5;

/// One store with a pool of 8 (so the 8 threads really run at once), on a fresh schema.
fn store(url: &str, schemas: &common::Schemas, tag: &str) -> PgAuthDb {
    common::builder(url, &schemas.fresh(tag), common::clock())
        .pool_size(POOL)
        .min_idle(Some(POOL))
        .connect()
        .expect("connect")
}

/// Runs `f(i)` on 8 threads released together; returns the results in thread order.
fn race<T: Send + 'static>(f: impl Fn(usize) -> T + Send + Sync + 'static) -> Vec<T> {
    let f = Arc::new(f);
    let barrier = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|i| {
            let (f, barrier) = (Arc::clone(&f), Arc::clone(&barrier));
            thread::spawn(move || {
                barrier.wait();
                f(i)
            })
        })
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().expect("a racing thread panicked"))
        .collect()
}

/// Exactly one `Ok`; every other result is the expected conflict.
fn one_winner<T>(results: &[authdb::Result<T>], loser: fn(&Error) -> bool, what: &str) -> usize {
    let winners: Vec<usize> = results
        .iter()
        .enumerate()
        .filter(|(_, r)| r.is_ok())
        .map(|(i, _)| i)
        .collect();
    assert_eq!(winners.len(), 1, "{what}: one winner, got {winners:?}");
    for r in results {
        if let Err(e) = r {
            assert!(loser(e), "{what}: unexpected error {e:?}");
        }
    }
    winners[0]
}

fn users(db: &PgAuthDb, n: usize) -> Vec<UserId> {
    (0..n)
        .map(|_| db.create_user(&NewUser::default()).expect("create_user").id)
        .collect()
}

#[test]
fn one_email_one_winner() {
    let Some(url) = common::url("one_email_one_winner") else {
        return;
    };
    let schemas = common::Schemas::new(&url);
    let db = store(&url, &schemas, "email");
    for round in 0..ROUNDS {
        let d = db.clone();
        let results = race(move |i| {
            // Different spellings of one normalized address.
            let email = if i % 2 == 0 {
                format!("Race{round}@Example.com")
            } else {
                format!(" race{round}@example.COM ")
            };
            d.create_user(&NewUser {
                email: Some(email),
                name: Some(format!("thread {i}")),
                ..NewUser::default()
            })
        });
        let w = one_winner(&results, |e| matches!(e, Error::EmailTaken), "create_user");
        let winner = results[w].as_ref().expect("the winner");
        let found = db
            .get_user_by_email(&format!("race{round}@example.com"))
            .expect("get_user_by_email")
            .expect("the winner is stored");
        assert_eq!(&found, winner);
    }
    let r = db.check_integrity().expect("check_integrity");
    assert!(r.is_clean(), "{r}");
    assert_eq!(r.users, ROUNDS as u64);
}

#[test]
fn one_email_one_winner_across_stores() {
    let Some(url) = common::url("one_email_one_winner_across_stores") else {
        return;
    };
    let schemas = common::Schemas::new(&url);
    let schema = schemas.fresh("xstore");
    // Eight stores on one schema, as eight processes would have: separate pools, and they
    // all connect (and migrate) at the same moment.
    let u = url.clone();
    let s = schema.clone();
    let stores: Vec<PgAuthDb> = race(move |_| {
        common::builder(&u, &s, common::clock())
            .pool_size(1)
            .connect()
            .expect("connect")
    });
    let stores = Arc::new(stores);
    for round in 0..ROUNDS {
        let st = Arc::clone(&stores);
        let results = race(move |i| {
            st[i].write(|tx| {
                let u = tx.create_user(&NewUser {
                    email: Some(format!("x{round}@example.com")),
                    ..NewUser::default()
                })?;
                tx.create_session(&u.id)?;
                Ok(u)
            })
        });
        let w = one_winner(&results, |e| matches!(e, Error::EmailTaken), "write");
        let winner = results[w].as_ref().expect("winner");
        assert_eq!(
            stores[0]
                .list_sessions(&winner.id)
                .expect("list_sessions")
                .len(),
            1
        );
    }
    let r = stores[0].check_integrity().expect("check_integrity");
    assert!(r.is_clean(), "{r}");
    assert_eq!(
        (r.users, r.sessions),
        (ROUNDS as u64, ROUNDS as u64),
        "the losers left nothing"
    );
}

#[test]
fn one_verification_token_one_winner() {
    let Some(url) = common::url("one_verification_token_one_winner") else {
        return;
    };
    let schemas = common::Schemas::new(&url);
    let db = store(&url, &schemas, "verif");
    let provider = EmailProvider::new("email", |_| Ok(()));
    for round in 0..ROUNDS {
        // Auth.js: one hashed token, eight callers.
        let hash = hash_verification_token(&format!("tok{round}"), "secret");
        db.create_verification_token(&VerificationToken {
            identifier: "ada@example.com".to_owned(),
            token: hash.clone(),
            expires: db.now() + Duration::hours(1),
        })
        .expect("create_verification_token");
        let d = db.clone();
        let h = hash.clone();
        let results = race(move |_| d.use_verification_token("Ada@Example.com", &h));
        let got: Vec<_> = results
            .into_iter()
            .map(|r| r.expect("use_verification_token"))
            .collect();
        assert_eq!(got.iter().filter(|r| r.is_some()).count(), 1, "{got:?}");

        // v3: one request, eight callers.
        let token = format!("5f1e0c7a2b9d4e8f6a3c1b0d9e8f7a6b{round:02}");
        db.create_verification_request("ada@example.com", "https://x/cb", &token, "s", &provider)
            .expect("create_verification_request");
        let d = db.clone();
        let results = race(move |_| d.use_verification_request("ada@example.com", &token, "s"));
        let got: Vec<_> = results
            .into_iter()
            .map(|r| r.expect("use_verification_request"))
            .collect();
        assert_eq!(got.iter().filter(|r| r.is_some()).count(), 1, "{got:?}");
    }
    let r = db.check_integrity().expect("check_integrity");
    assert!(r.is_clean(), "{r}");
    assert_eq!(r.verification_requests, 0, "every link was used");
}

#[test]
fn one_new_verification_token_one_winner() {
    let Some(url) = common::url("one_new_verification_token_one_winner") else {
        return;
    };
    let schemas = common::Schemas::new(&url);
    let db = store(&url, &schemas, "newverif");
    for round in 0..ROUNDS {
        let hash = hash_verification_token(&format!("new{round}"), "secret");
        let d = db.clone();
        let results = race(move |i| {
            d.create_verification_token(&VerificationToken {
                identifier: format!("user{i}@example.com"),
                token: hash.clone(),
                expires: d.now() + Duration::hours(1),
            })
        });
        one_winner(
            &results,
            |e| matches!(e, Error::VerificationTokenTaken),
            "create_verification_token",
        );
    }
}

fn github(id: &str) -> NewAccount {
    NewAccount {
        provider_type: "oauth".to_owned(),
        provider_id: "github".to_owned(),
        provider_account_id: id.to_owned(),
        access_token: Some("gho_access".to_owned()),
        ..NewAccount::default()
    }
}

#[test]
fn one_provider_account_one_winner() {
    let Some(url) = common::url("one_provider_account_one_winner") else {
        return;
    };
    let schemas = common::Schemas::new(&url);
    let db = store(&url, &schemas, "acct");
    let ids = Arc::new(users(&db, THREADS));
    for round in 0..ROUNDS {
        let account = format!("gh-{round}");
        let (d, u, a) = (db.clone(), Arc::clone(&ids), account.clone());
        let results = race(move |i| d.link_account(&u[i], &github(&a)));
        let w = one_winner(
            &results,
            |e| matches!(e, Error::AccountLinkedToAnotherUser),
            "link_account",
        );
        let owner = db
            .get_user_by_account("github", &account)
            .expect("get_user_by_account")
            .expect("linked");
        assert_eq!(owner.id, ids[w]);

        // The same account re-linked by its owner from 8 threads: all succeed, one row.
        let (d, owner, a) = (db.clone(), owner.id, account.clone());
        let results = race(move |i| {
            let mut again = github(&a);
            again.access_token = Some(format!("gho_{i}"));
            d.link_account(&owner, &again)
        });
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        let linked: Vec<_> = db
            .list_accounts(&owner)
            .expect("list_accounts")
            .into_iter()
            .filter(|x| x.provider_account_id == account)
            .collect();
        assert_eq!(linked.len(), 1, "one row");
        assert!(
            linked[0]
                .access_token
                .as_deref()
                .is_some_and(|t| t.starts_with("gho_"))
        );
    }
    let r = db.check_integrity().expect("check_integrity");
    assert!(r.is_clean(), "{r}");
    assert_eq!(r.accounts, ROUNDS as u64);
}

#[test]
fn one_session_token_one_winner() {
    let Some(url) = common::url("one_session_token_one_winner") else {
        return;
    };
    let schemas = common::Schemas::new(&url);
    let db = store(&url, &schemas, "sess");
    let ids = Arc::new(users(&db, THREADS));
    for round in 0..ROUNDS {
        let (d, u) = (db.clone(), Arc::clone(&ids));
        let results = race(move |i| {
            d.create_session_with(&NewSession {
                user_id: u[i],
                session_token: format!("shared-token-5f1e0c7a2b9d4e8f6a3c1b0d9e8f7a6b-{round}"),
                expires: d.now() + Duration::days(1),
            })
        });
        let w = one_winner(
            &results,
            |e| matches!(e, Error::SessionTokenTaken),
            "create_session_with",
        );
        let s = db
            .get_session(&format!(
                "shared-token-5f1e0c7a2b9d4e8f6a3c1b0d9e8f7a6b-{round}"
            ))
            .expect("get_session")
            .expect("live");
        assert_eq!(s.user_id, ids[w]);
    }
}

#[test]
fn one_counter_value_one_winner() {
    let Some(url) = common::url("one_counter_value_one_winner") else {
        return;
    };
    let schemas = common::Schemas::new(&url);
    let db = store(&url, &schemas, "ctr");
    let user = users(&db, 1)[0];
    db.create_authenticator(&NewAuthenticator {
        credential_id: "cred".to_owned(),
        user_id: user,
        provider_account_id: "cred".to_owned(),
        credential_public_key: "pk".to_owned(),
        counter: 1,
        credential_device_type: "singleDevice".to_owned(),
        credential_backed_up: false,
        transports: None,
    })
    .expect("create_authenticator");
    for round in 0..ROUNDS as u64 {
        let d = db.clone();
        // A cloned authenticator replaying one assertion: only the first may count.
        let results = race(move |_| d.update_authenticator_counter("cred", 10 + round));
        one_winner(
            &results,
            |e| matches!(e, Error::CounterNotIncreased { .. }),
            "update_authenticator_counter",
        );
    }
    assert_eq!(
        db.get_authenticator("cred")
            .expect("get")
            .expect("stored")
            .counter,
        10 + ROUNDS as u64 - 1
    );
}

/// Sign-out everywhere racing new sign-ins and session extensions: every session created
/// before `delete_sessions` committed is gone or was created after it; nothing is half done.
#[test]
fn concurrent_session_writes_stay_consistent() {
    let Some(url) = common::url("concurrent_session_writes_stay_consistent") else {
        return;
    };
    let schemas = common::Schemas::new(&url);
    let db = store(&url, &schemas, "mix");
    let user = users(&db, 1)[0];
    let d = db.clone();
    let results = race(move |i| -> authdb::Result<()> {
        for _ in 0..10 {
            match i % 4 {
                0 => {
                    d.delete_sessions(&user)?;
                }
                1 => {
                    let s = d.create_session(&user)?;
                    d.update_session(&s, true)?;
                }
                2 => {
                    for s in d.list_sessions(&user)? {
                        d.delete_session_by_id(&user, &s.id)?;
                    }
                }
                _ => {
                    d.purge_expired()?;
                    d.create_session(&user)?;
                }
            }
        }
        Ok(())
    });
    for r in results {
        r.expect("no operation fails");
    }
    let r = db.check_integrity().expect("check_integrity");
    assert!(r.is_clean(), "{r}");
    assert_eq!(
        r.sessions,
        db.list_sessions(&user).expect("list_sessions").len() as u64
    );
}
