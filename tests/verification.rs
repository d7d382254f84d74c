//! Email verification requests: hashing, sending, lookups (CVE-2021-21310), expiry, single use.

mod common;

use std::sync::Arc;

use authdb::prelude::*;
use authdb::{AuthDb, EmailProvider, Error, InputProblem, hash_verification_token};
use chrono::Duration;
use common::{TempDb, assert_clean, failing_provider, mem_db, recording_provider, t0};
use sha2::{Digest, Sha256};

const MICRO: Duration = Duration::microseconds(1);
/// Raw verification tokens of 32 hex characters (the 128-bit entropy floor).
const TOK: &str = "746f6b2d766572696669636174696f6e";
const TOK2: &str = "746f6b2d766572696669636174696f32";
const URL: &str = "https://app.example.com/api/auth/callback/email?token=tok";

fn stored_requests(db: &AuthDb) -> u64 {
    let r = db.check_integrity().unwrap();
    assert!(r.is_clean(), "{r}");
    r.verification_requests
}

fn sha256_hex(s: &str) -> String {
    common::hex(&Sha256::digest(s.as_bytes()))
}

#[test]
fn hash_is_sha256_of_token_plus_secret() {
    // sha256("hello world"): a published test vector.
    assert_eq!(
        hash_verification_token("hello ", "world"),
        "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
    );
    // Plain concatenation, no separator: the split point does not matter.
    assert_eq!(
        hash_verification_token("hello wo", "rld"),
        hash_verification_token("hello ", "world")
    );
    for (tok, sec) in [("abc", "def"), ("ünïcode", "sëcret"), ("a", "")] {
        assert_eq!(
            hash_verification_token(tok, sec),
            sha256_hex(&format!("{tok}{sec}"))
        );
    }
}

#[test]
fn create_stores_hash_and_sends_raw_token() {
    let t = TempDb::new();
    let (provider, sent) = recording_provider();
    let req = {
        let db = t.open();
        let req = db
            .create_verification_request(" Ada@Example.com", URL, TOK, "s3cret", &provider)
            .unwrap();
        assert_eq!(req.id.0.get_version_num(), 7);
        assert_eq!(req.identifier, " Ada@Example.com", "stored as given");
        assert_eq!(req.token, sha256_hex(&format!("{TOK}s3cret")));
        assert_eq!(req.token, hash_verification_token(TOK, "s3cret"));
        assert_eq!(req.expires, t0() + Duration::hours(24), "default max age");
        assert_eq!(req.created_at, t0());
        assert_eq!(req.updated_at, t0());
        let mails = sent.lock().clone();
        assert_eq!(
            mails,
            vec![(
                // The address as normalized (no account has it yet), not as typed.
                "ada@example.com".to_owned(),
                URL.to_owned(),
                TOK.to_owned()
            )]
        );
        assert_eq!(stored_requests(&db), 1);
        req
    };
    let db = t.open();
    assert_eq!(
        db.get_verification_request("ada@example.com", TOK, "s3cret", &provider)
            .unwrap(),
        Some(req)
    );
}

#[test]
fn sender_gets_provider() {
    let (db, _clock) = mem_db();
    let seen = Arc::new(parking_lot::Mutex::new(None));
    let s = seen.clone();
    let provider = EmailProvider::new("magic-link", move |m| {
        *s.lock() = Some((m.provider.id().to_owned(), m.provider.link_max_age()));
        Ok(())
    })
    .max_age(Duration::minutes(10));
    db.create_verification_request("a@example.com", URL, TOK, "s", &provider)
        .unwrap();
    assert_eq!(
        *seen.lock(),
        Some(("magic-link".to_owned(), Duration::minutes(10)))
    );
}

#[test]
fn sender_failure_is_send_failed_and_leaves_no_row() {
    let t = TempDb::new();
    {
        let db = t.open();
        let err = db
            .create_verification_request("a@example.com", URL, TOK, "sec", &failing_provider())
            .unwrap_err();
        match &err {
            Error::SendFailed(source) => assert_eq!(source.to_string(), "smtp is down"),
            other => panic!("expected SendFailed, got {other:?}"),
        }
        assert_eq!(stored_requests(&db), 0);
        let (ok, _) = recording_provider();
        assert_eq!(
            db.get_verification_request("a@example.com", TOK, "sec", &ok)
                .unwrap(),
            None
        );
        // The same token can be used again right away: nothing is left blocking it.
        db.create_verification_request("a@example.com", URL, TOK, "sec", &ok)
            .unwrap();
        assert_eq!(stored_requests(&db), 1);
    }
    let db = t.open();
    assert_eq!(stored_requests(&db), 1);
}

#[test]
fn sender_failure_inside_transaction_leaves_no_row() {
    let (db, _clock) = mem_db();
    let res = db.write(|tx| {
        match tx.create_verification_request("a@example.com", URL, TOK, "s", &failing_provider()) {
            Err(Error::SendFailed(_)) => {}
            other => panic!("expected SendFailed, got {other:?}"),
        }
        // The row was removed inside this transaction, which can still commit other work.
        tx.create_user(&common::profile("a@example.com"))
    });
    res.unwrap();
    assert_eq!(stored_requests(&db), 0);
}

#[test]
fn lookup_needs_identifier_and_hash_cve_2021_21310() {
    let (db, _clock) = mem_db();
    let (p, _sent) = recording_provider();
    db.create_verification_request("victim@example.com", URL, TOK, "sec", &p)
        .unwrap();
    // The right token for another identifier must not sign that identifier in.
    assert_eq!(
        db.get_verification_request("attacker@example.com", TOK, "sec", &p)
            .unwrap(),
        None
    );
    assert_eq!(
        db.use_verification_request("attacker@example.com", TOK, "sec")
            .unwrap(),
        None
    );
    db.delete_verification_request("attacker@example.com", TOK, "sec", &p)
        .unwrap();
    // Empty identifiers never match.
    assert_eq!(
        db.get_verification_request("", TOK, "sec", &p).unwrap(),
        None
    );
    assert_eq!(
        db.get_verification_request("  ", TOK, "sec", &p).unwrap(),
        None
    );
    // Wrong token or secret.
    assert_eq!(
        db.get_verification_request("victim@example.com", TOK2, "sec", &p)
            .unwrap(),
        None
    );
    assert_eq!(
        db.get_verification_request("victim@example.com", TOK, "sec2", &p)
            .unwrap(),
        None
    );
    // None of that consumed or removed it.
    assert_eq!(stored_requests(&db), 1);
    assert!(
        db.get_verification_request("victim@example.com", TOK, "sec", &p)
            .unwrap()
            .is_some()
    );
}

#[test]
fn identifier_is_normalized_on_lookup_delete_and_use() {
    let (db, _clock) = mem_db();
    let (p, _sent) = recording_provider();
    db.create_verification_request("Mixed.Case@Example.COM ", URL, TOK, "s", &p)
        .unwrap();
    let got = db
        .get_verification_request("  mixed.case@example.com", TOK, "s", &p)
        .unwrap()
        .unwrap();
    assert_eq!(got.identifier, "Mixed.Case@Example.COM ");
    db.delete_verification_request("MIXED.CASE@EXAMPLE.COM", TOK, "s", &p)
        .unwrap();
    assert_eq!(stored_requests(&db), 0);

    db.create_verification_request("x@EXAMPLE.com", URL, TOK2, "s", &p)
        .unwrap();
    assert!(
        db.use_verification_request("X@example.COM", TOK2, "s")
            .unwrap()
            .is_some()
    );
    assert_eq!(stored_requests(&db), 0);
}

#[test]
fn blank_identifier_on_create_is_invalid_input() {
    let (db, _clock) = mem_db();
    let (p, sent) = recording_provider();
    let err = db
        .create_verification_request("  ", URL, TOK, "s", &p)
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidInput {
                field: "identifier",
                problem: InputProblem::Empty
            }
        ),
        "{err:?}"
    );
    for (field, url, tok, sec) in [
        ("url", "", TOK, "s"),
        ("token", URL, "", "s"),
        ("secret", URL, TOK, ""),
    ] {
        let err = db
            .create_verification_request("a@example.com", url, tok, sec, &p)
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::InvalidInput { field: f, problem: InputProblem::Empty } if f == field
            ),
            "{field}: {err:?}"
        );
    }
    assert!(sent.lock().is_empty(), "nothing was sent");
    assert_eq!(stored_requests(&db), 0);
}

#[test]
fn expired_request_is_none_and_deleted() {
    let t = TempDb::new();
    let (p, _sent) = recording_provider();
    let req = {
        let db = t.open();
        let req = db
            .create_verification_request("a@example.com", URL, TOK, "sec", &p)
            .unwrap();
        // Valid at exactly expires.
        t.clock.set(req.expires);
        assert_eq!(
            db.get_verification_request("a@example.com", TOK, "sec", &p)
                .unwrap()
                .as_ref(),
            Some(&req)
        );
        t.clock.advance(MICRO);
        assert_eq!(stored_requests(&db), 1);
        assert_eq!(
            db.get_verification_request("a@example.com", TOK, "sec", &p)
                .unwrap(),
            None
        );
        assert_eq!(stored_requests(&db), 0);
        req
    };
    t.clock.set(t0());
    let db = t.open();
    assert_eq!(stored_requests(&db), 0);
    assert_eq!(
        db.get_verification_request(&req.identifier, TOK, "sec", &p)
            .unwrap(),
        None
    );
}

#[test]
fn expired_request_with_wrong_identifier_is_not_deleted() {
    // Only a full match (identifier and hash) may touch a row.
    let (db, clock) = mem_db();
    let (p, _sent) = recording_provider();
    let req = db
        .create_verification_request("a@example.com", URL, TOK, "sec", &p)
        .unwrap();
    clock.set(req.expires + MICRO);
    assert_eq!(
        db.get_verification_request("b@example.com", TOK, "sec", &p)
            .unwrap(),
        None
    );
    assert_eq!(stored_requests(&db), 1);
}

#[test]
fn get_does_not_consume() {
    let t = TempDb::new();
    let (p, _sent) = recording_provider();
    {
        let db = t.open();
        db.create_verification_request("a@example.com", URL, TOK, "sec", &p)
            .unwrap();
        for _ in 0..3 {
            assert!(
                db.get_verification_request("a@example.com", TOK, "sec", &p)
                    .unwrap()
                    .is_some()
            );
        }
    }
    let db = t.open();
    assert!(
        db.get_verification_request("a@example.com", TOK, "sec", &p)
            .unwrap()
            .is_some()
    );
    assert_eq!(stored_requests(&db), 1);
}

#[test]
fn delete_is_idempotent() {
    let t = TempDb::new();
    let (p, _sent) = recording_provider();
    {
        let db = t.open();
        db.create_verification_request("a@example.com", URL, TOK, "sec", &p)
            .unwrap();
        db.create_verification_request("a@example.com", URL, TOK2, "sec", &p)
            .unwrap();
        db.delete_verification_request("a@example.com", TOK, "sec", &p)
            .unwrap();
        db.delete_verification_request("a@example.com", TOK, "sec", &p)
            .unwrap();
        db.delete_verification_request("nobody@example.com", TOK, "y", &p)
            .unwrap();
        assert_eq!(stored_requests(&db), 1);
    }
    let db = t.open();
    assert_eq!(
        db.get_verification_request("a@example.com", TOK, "sec", &p)
            .unwrap(),
        None
    );
    assert!(
        db.get_verification_request("a@example.com", TOK2, "sec", &p)
            .unwrap()
            .is_some()
    );
    assert_eq!(stored_requests(&db), 1);
}

#[test]
fn use_verification_request_is_single_use() {
    let t = TempDb::new();
    let (p, _sent) = recording_provider();
    {
        let db = t.open();
        let req = db
            .create_verification_request("a@example.com", URL, TOK, "sec", &p)
            .unwrap();
        let used = db
            .use_verification_request("a@example.com", TOK, "sec")
            .unwrap();
        assert_eq!(used, Some(req));
        assert_eq!(
            db.use_verification_request("a@example.com", TOK, "sec")
                .unwrap(),
            None
        );
        assert_eq!(
            db.get_verification_request("a@example.com", TOK, "sec", &p)
                .unwrap(),
            None
        );
        assert_eq!(stored_requests(&db), 0);
    }
    let db = t.open();
    assert_eq!(stored_requests(&db), 0);
    assert_eq!(
        db.use_verification_request("a@example.com", TOK, "sec")
            .unwrap(),
        None
    );
}

#[test]
fn use_of_expired_request_is_none_and_deletes_it() {
    let (db, clock) = mem_db();
    let (p, _sent) = recording_provider();
    let req = db
        .create_verification_request("a@example.com", URL, TOK, "sec", &p)
        .unwrap();
    clock.set(req.expires + MICRO);
    assert_eq!(
        db.use_verification_request("a@example.com", TOK, "sec")
            .unwrap(),
        None
    );
    assert_eq!(stored_requests(&db), 0);
}

#[test]
fn same_token_and_secret_while_live_is_conflict() {
    let (db, clock) = mem_db();
    let (p, sent) = recording_provider();
    let first = db
        .create_verification_request("a@example.com", URL, TOK, "sec", &p)
        .unwrap();
    for ident in ["a@example.com", "b@example.com"] {
        let err = db
            .create_verification_request(ident, URL, TOK, "sec", &p)
            .unwrap_err();
        assert!(matches!(err, Error::VerificationTokenTaken), "{err:?}");
        assert!(err.is_conflict());
    }
    assert_eq!(sent.lock().len(), 1, "a refused request sends nothing");
    // The original is intact.
    assert_eq!(
        db.get_verification_request("a@example.com", TOK, "sec", &p)
            .unwrap()
            .as_ref(),
        Some(&first)
    );
    // Same token with another secret is another hash: fine.
    db.create_verification_request("a@example.com", URL, TOK, "sec2", &p)
        .unwrap();
    assert_eq!(stored_requests(&db), 2);

    // Once the first one has expired, its token may be reused; the old row is replaced.
    clock.set(first.expires + MICRO);
    let again = db
        .create_verification_request("c@example.com", URL, TOK, "sec", &p)
        .unwrap();
    assert_ne!(again.id, first.id);
    assert_eq!(again.token, first.token);
    assert_eq!(stored_requests(&db), 2);
    assert_eq!(
        db.get_verification_request("a@example.com", TOK, "sec", &p)
            .unwrap(),
        None
    );
    assert!(
        db.get_verification_request("c@example.com", TOK, "sec", &p)
            .unwrap()
            .is_some()
    );
}

#[test]
fn provider_max_age_is_respected() {
    let (db, clock) = mem_db();
    let (p, _sent) = recording_provider();
    let p = p.max_age(Duration::minutes(15));
    let req = db
        .create_verification_request("a@example.com", URL, TOK, "sec", &p)
        .unwrap();
    assert_eq!(req.expires, t0() + Duration::minutes(15));
    clock.set(t0() + Duration::minutes(15));
    assert!(
        db.get_verification_request("a@example.com", TOK, "sec", &p)
            .unwrap()
            .is_some()
    );
    clock.advance(MICRO);
    assert_eq!(
        db.get_verification_request("a@example.com", TOK, "sec", &p)
            .unwrap(),
        None
    );
}

#[test]
fn non_positive_max_age_is_invalid_input() {
    let (db, _clock) = mem_db();
    for d in [
        Duration::zero(),
        Duration::seconds(-1),
        Duration::microseconds(-1),
    ] {
        let (p, sent) = recording_provider();
        let p = p.max_age(d);
        let err = db
            .create_verification_request("a@example.com", URL, TOK, "sec", &p)
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::InvalidInput {
                    field: "provider.max_age",
                    problem: InputProblem::NotPositive
                }
            ),
            "{d}: {err:?}"
        );
        assert!(sent.lock().is_empty());
    }
    // Far too large is out of range, not a panic.
    let (p, _sent) = recording_provider();
    let err = db
        .create_verification_request("a@example.com", URL, TOK, "sec", &p.max_age(Duration::MAX))
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidInput {
                field: "provider.max_age" | "expires",
                problem: InputProblem::OutOfRange
            }
        ),
        "{err:?}"
    );
    assert_eq!(stored_requests(&db), 0);
}

#[test]
fn transaction_forms_behave_the_same() {
    let (db, _clock) = mem_db();
    let (p, _sent) = recording_provider();
    db.write(|tx| {
        tx.create_verification_request("a@example.com", URL, TOK, "sec", &p)?;
        assert!(
            tx.get_verification_request("A@example.com", TOK, "sec", &p)?
                .is_some()
        );
        assert!(
            tx.get_verification_request("b@example.com", TOK, "sec", &p)?
                .is_none()
        );
        assert!(
            tx.use_verification_request("b@example.com", TOK, "sec")?
                .is_none()
        );
        assert!(
            tx.use_verification_request("a@example.com", TOK, "sec")?
                .is_some()
        );
        assert!(
            tx.use_verification_request("a@example.com", TOK, "sec")?
                .is_none()
        );
        Ok(())
    })
    .unwrap();
    assert_clean(&db);
    assert_eq!(stored_requests(&db), 0);
}
