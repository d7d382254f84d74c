//! Salvage: seeded damage to a populated file, then `salvage` into a new file. The result
//! opens with full verification, is integrity-clean, holds most rows, and every record in it
//! is one of the original's (compared line by line through `export`).
//!
//! `AUTHDB_SALVAGE_ROUNDS` (default 40) and `AUTHDB_SALVAGE_SEED` set the damage rounds.

#![allow(clippy::cast_precision_loss)]

mod common;

use std::collections::HashSet;
use std::path::Path;

use authdb::prelude::*;
use authdb::{AuthDb, NewAuthenticator, NewUser, SalvageOptions, VerificationToken};
use chrono::Duration;
use common::{Rng, TempDb, builder, env_u64, oauth_account, profile, test_key};

const PAGE: usize = 4096;

fn populate(db: &AuthDb) {
    let now = db.now();
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
            Ok(())
        })
        .unwrap();
        if i % 15 == 0 {
            let u = db
                .get_user_by_email(&format!("s{i}@salvage.test"))
                .unwrap()
                .unwrap();
            db.set_password(&u.id, "correct horse").unwrap();
        }
    }
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
    populate(&db);
    let before = export_lines(&db);
    drop(db);
    let out = t.dir.path().join("out.redb");
    let report =
        authdb::salvage_with(t.path(), &out, &SalvageOptions::with_key(test_key())).unwrap();
    assert!(report.verified_open && report.output_clean, "{report:?}");
    assert_eq!(report.lost(), 0, "{report:?}");
    let copy = open_verified(&t, &out);
    common::assert_clean(&copy);
    assert_eq!(export_lines(&copy), before);
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
    populate(&db);
    let original: HashSet<String> = export_lines(&db).into_iter().collect();
    drop(db);
    let bytes = std::fs::read(t.path()).unwrap();
    let used: Vec<usize> = bytes
        .chunks(PAGE)
        .enumerate()
        .filter(|(_, c)| c.iter().any(|b| *b != 0))
        .map(|(i, _)| i * PAGE)
        .collect();
    let rounds = env_u64("AUTHDB_SALVAGE_ROUNDS", 40);
    let seed = env_u64("AUTHDB_SALVAGE_SEED", 0x5a1_7a9e);
    let mut rng = Rng::new(seed);
    let (mut kept, mut invented, mut refused_at_open, mut unverified) =
        (0usize, 0usize, 0u64, 0u64);
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
        worst = worst.min(lines.len() as f64 / original.len() as f64);
    }
    let rate = kept as f64 / (original.len() as f64 * rounds as f64);
    println!(
        "{rounds} damaged files ({refused_at_open} refused by a verified open, {unverified} read \
         without verification): {:.1}% of {} records recovered on average, worst round {:.1}%, \
         {invented} altered records kept",
        rate * 100.0,
        original.len(),
        worst * 100.0
    );
    assert!(rate > 0.8, "recovery rate {rate}");
    assert!(
        invented * 1000 <= kept,
        "{invented} altered records kept out of {kept}"
    );
}
