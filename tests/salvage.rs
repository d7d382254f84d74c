//! Salvage: seeded damage to a populated file, then `salvage` into a new file. The result
//! opens with full verification, is integrity-clean, holds most rows, and every record in it
//! is one of the original's, unaltered: nothing invented (compared line by line through
//! `export`, and web sessions one by one through their ids).
//!
//! `AUTHDB_SALVAGE_ROUNDS` (default 100) and `AUTHDB_SALVAGE_SEED` set the damage rounds.

#![allow(clippy::cast_precision_loss)]

mod common;

use std::collections::HashSet;
use std::path::Path;

use authdb::prelude::*;
use authdb::{
    AuthDb, NewAuthenticator, NewUser, SalvageOptions, SalvageProgress, SalvageReport,
    VerificationToken, WebSession, WebSessionId,
};
use chrono::Duration;
use common::{Rng, TempDb, builder, env_u64, oauth_account, profile, test_key};

const PAGE: usize = 4096;

/// The id of the `i`th web session (a cookie value: 16 random-looking bytes).
fn web_session_id(i: u64) -> WebSessionId {
    let x = u128::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835) ^ 0x5a17;
    WebSessionId::from_bytes(x.to_le_bytes())
}

/// Fills the file; returns the web sessions written (which `export` may not show).
fn populate(db: &AuthDb) -> Vec<WebSession> {
    let now = db.now();
    let mut web = Vec::new();
    for i in 0..150 {
        db.write(|tx| {
            let u = tx.create_user(&NewUser {
                name: Some(format!("Salvage User {i}")),
                ..profile(&format!("s{i}@salvage.test"))
            })?;
            tx.link_account(
                &u.id,
                &oauth_account(
                    "github",
                    &format!("{i}"),
                    Some(&format!("r{i}")),
                    Some(&format!("a{i}")),
                ),
            )?;
            tx.create_session(&u.id)?;
            if i % 5 == 0 {
                tx.create_authenticator(&NewAuthenticator {
                    credential_id: format!("cred-{i}"),
                    user_id: u.id,
                    provider_account_id: format!("{i}"),
                    credential_public_key: "pk".repeat(40),
                    counter: 0,
                    credential_device_type: "multiDevice".into(),
                    credential_backed_up: true,
                    transports: None,
                })?;
            }
            tx.create_verification_token(&VerificationToken {
                identifier: format!("s{i}@salvage.test"),
                token: format!("{i:064x}"),
                expires: now + Duration::hours(1),
            })?;
            // A signed-in web session for everyone, an anonymous one for every third.
            let mut mine = vec![WebSession {
                id: web_session_id(i),
                user_id: Some(u.id),
                expires: now + Duration::hours(2),
                data: format!("{{\"cart\":[{i}],\"theme\":\"dark\"}}").into_bytes(),
            }];
            if i % 3 == 0 {
                mine.push(WebSession {
                    id: web_session_id(1000 + i),
                    user_id: None,
                    expires: now + Duration::minutes(30),
                    data: vec![u8::try_from(i).unwrap(); 40],
                });
            }
            for w in &mine {
                assert!(tx.web_session_create(w)?);
            }
            Ok(mine)
        })
        .map(|mine| web.extend(mine))
        .unwrap();
        if i % 15 == 0 {
            let u = db
                .get_user_by_email(&format!("s{i}@salvage.test"))
                .unwrap()
                .unwrap();
            db.set_password(&u.id, "correct horse").unwrap();
        }
    }
    // Setting a password ended that user's web sessions.
    web.retain(|w| db.web_session_load(&w.id).unwrap().is_some());
    assert_eq!(web.len(), 190);
    web
}

/// Compares the salvaged web sessions with the originals: returns how many came back
/// unaltered; panics on an altered one, or on any record the report counts beyond those
/// (which could only be invented).
fn web_sessions_back(copy: &AuthDb, original: &[WebSession], report: &SalvageReport) -> usize {
    let mut back = 0;
    for w in original {
        if let Some(got) = copy.web_session_load(&w.id).unwrap() {
            assert!(got == *w, "an altered web session was kept");
            back += 1;
        }
    }
    let counted = report
        .tables
        .iter()
        .find(|t| t.table == "web_sessions")
        .expect("the report counts web sessions");
    assert_eq!(counted.recovered, back as u64, "{report:?}");
    back
}

fn export_lines(db: &AuthDb) -> Vec<String> {
    let mut out = Vec::new();
    db.export_to(&mut out).unwrap();
    String::from_utf8(out)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("{\"kind\":") && !l.starts_with("{\"kind\":\"end\""))
        .map(str::to_owned)
        .collect()
}

fn open_verified(t: &TempDb, p: &Path) -> AuthDb {
    builder(&t.clock)
        .open(p)
        .expect("the salvaged file must open with verification")
}

#[test]
fn salvage_of_an_undamaged_file_keeps_everything() {
    let t = TempDb::new();
    let db = t.open();
    let web = populate(&db);
    let before = export_lines(&db);
    drop(db);
    let out = t.dir.path().join("out.redb");
    let mut steps = Vec::new();
    let report =
        authdb::salvage_with_progress(t.path(), &out, &SalvageOptions::with_key(test_key()), |p| {
            steps.push(p);
        })
        .unwrap();
    assert!(report.verified_open && report.output_clean, "{report:?}");
    // Progress: entries read (counting up), then every entry examined, ending at the total.
    let Some(SalvageProgress::Reading { entries }) = steps
        .iter()
        .rev()
        .find(|p| matches!(p, SalvageProgress::Reading { .. }))
    else {
        panic!("no reading step: {steps:?}");
    };
    assert!(*entries > 1000, "{steps:?}");
    let Some(SalvageProgress::Writing { done, total }) = steps.last() else {
        panic!("no writing step: {steps:?}");
    };
    assert!(
        done == total && *total > 500 && total < entries,
        "{steps:?}"
    );
    assert_eq!(report.lost(), 0, "{report:?}");
    let copy = open_verified(&t, &out);
    common::assert_clean(&copy);
    assert_eq!(export_lines(&copy), before);
    assert_eq!(web_sessions_back(&copy, &web, &report), web.len());
    assert_eq!(copy.stats().unwrap().users, 150);
    // The damaged file is never modified and the target never overwritten.
    assert!(authdb::salvage(t.path(), &out).is_err());
    let e = authdb::salvage(
        t.dir.path().join("missing.redb"),
        t.dir.path().join("x.redb"),
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("No such file") || e.to_string().contains("not found"),
        "{e}"
    );
}

#[test]
fn seeded_damage_most_rows_come_back_and_nothing_is_invented() {
    let t = TempDb::new();
    let db = t.open();
    let web = populate(&db);
    let original: HashSet<String> = export_lines(&db).into_iter().collect();
    drop(db);
    let bytes = std::fs::read(t.path()).unwrap();
    let used: Vec<usize> = bytes
        .chunks(PAGE)
        .enumerate()
        .filter(|(_, c)| c.iter().any(|b| *b != 0))
        .map(|(i, _)| i * PAGE)
        .collect();
    let rounds = env_u64("AUTHDB_SALVAGE_ROUNDS", 100);
    let seed = env_u64("AUTHDB_SALVAGE_SEED", 0x5a1_7a9e);
    let mut rng = Rng::new(seed);
    let (mut kept, mut invented, mut refused_at_open, mut unverified) =
        (0usize, 0usize, 0u64, 0u64);
    let mut web_kept = 0usize;
    let mut worst = 1.0f64;
    for round in 0..rounds {
        let mut damaged = bytes.clone();
        // 1–4 damaged bytes, in pages that hold data.
        let page = used[rng.index(used.len())];
        for _ in 0..=rng.below(3) {
            let at = page + rng.index(PAGE);
            damaged[at] ^= 1 + rng.below(255) as u8;
        }
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("damaged.redb");
        std::fs::write(&bad, &damaged).unwrap();
        let probe = dir.path().join("probe.redb");
        std::fs::write(&probe, &damaged).unwrap();
        if builder(&t.clock).open(&probe).is_err() {
            refused_at_open += 1;
        }
        let out = dir.path().join("salvaged.redb");
        let report = match authdb::salvage_with(&bad, &out, &SalvageOptions::with_key(test_key())) {
            Ok(r) => r,
            Err(e) => {
                // The header itself is gone: nothing to read. Counted as losing everything.
                println!("round {round}: salvage failed: {e}");
                worst = 0.0;
                continue;
            }
        };
        assert!(
            std::fs::read(&bad).unwrap() == damaged,
            "salvage modified its input"
        );
        assert!(report.output_clean, "round {round}: {report:?}");
        if !report.verified_open {
            unverified += 1;
        }
        let copy = open_verified(&t, &out);
        common::assert_clean(&copy);
        let lines = export_lines(&copy);
        let bad_lines: Vec<&String> = lines.iter().filter(|l| !original.contains(*l)).collect();
        if !bad_lines.is_empty() {
            println!(
                "round {round}: {} altered records, e.g. {}",
                bad_lines.len(),
                bad_lines[0]
            );
        }
        invented += bad_lines.len();
        kept += lines.len() - bad_lines.len();
        web_kept += web_sessions_back(&copy, &web, &report);
        worst = worst.min(lines.len() as f64 / original.len() as f64);
    }
    let rate = kept as f64 / (original.len() as f64 * rounds as f64);
    let web_rate = web_kept as f64 / (web.len() as f64 * rounds as f64);
    println!(
        "{rounds} damaged files ({refused_at_open} refused by a verified open, {unverified} read \
         without verification): {:.1}% of {} records recovered on average, worst round {:.1}%, \
         {:.1}% of {} web sessions; {invented} altered records kept",
        rate * 100.0,
        original.len(),
        worst * 100.0,
        web_rate * 100.0,
        web.len(),
    );
    assert_eq!(invented, 0, "altered records were kept ({kept} unaltered)");
    assert!(rate > 0.8, "recovery rate {rate}");
    assert!(web_rate > 0.8, "web session recovery rate {web_rate}");
}
