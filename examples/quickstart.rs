//! A walk through authdb on a local file: OAuth sign-up, sign-in, session refresh, email
//! sign-in, password sign-in and sign-out.
//!
//! Run it with `cargo run --example quickstart`. It opens `./authdb-quickstart.redb`; run it
//! twice and the second run finds the user it created the first time.

use std::sync::Arc;

use authdb::prelude::*;
use authdb::{AuthDb, Credentials, EmailProvider, EncryptionKey, ManualClock, NewAccount, NewUser};
use chrono::{Duration, Utc};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = "./authdb-quickstart.redb";
    // A manual clock lets this demo "wait" two days in an instant. A real app uses the default
    // system clock (just `AuthDb::open(path)`).
    let clock = Arc::new(ManualClock::new(Utc::now()));
    // OAuth tokens are stored encrypted. A real app loads its key from the environment or a
    // secrets manager; this demo uses a fixed one unless AUTHDB_SECRET is set.
    let secret = std::env::var("AUTHDB_SECRET")
        .unwrap_or_else(|_| "demo secret of 32+ bytes - never use it in production".into());
    let db = AuthDb::builder()
        .clock(clock.clone())
        .encryption_key(EncryptionKey::from_secret(&secret)?)
        .open(path)?;
    println!("opened {path}");

    // 1. OAuth sign-in: the provider says "github user 4242". Known? Otherwise sign up, with
    //    user + linked account + session in one transaction.
    let github = NewAccount {
        provider_type: "oauth".into(),
        provider_id: "github".into(),
        provider_account_id: "4242".into(),
        refresh_token: Some("gho_refresh_example".into()),
        access_token: Some("gho_access_example".into()),
        access_token_expires: Some(Utc::now() + Duration::hours(8)),
        ..Default::default()
    };
    let session = if let Some(user) = db.get_user_by_provider_account_id("github", "4242")? {
        println!(
            "welcome back, {} (user {})",
            user.name.as_deref().unwrap_or("?"),
            user.id
        );
        db.create_session(&user.id)?
    } else {
        let session = db.write(|tx| {
            let user = tx.create_user(&NewUser {
                name: Some("Ada Lovelace".into()),
                email: Some("Ada@Example.com".into()),
                image: None,
                email_verified: None,
                ..Default::default()
            })?;
            tx.link_account(&user.id, &github)?;
            tx.create_session(&user.id)
        })?;
        println!("signed up user {} with github:4242", session.user_id);
        session
    };
    println!(
        "session {} expires {} (the cookie gets the token; the file keeps only its SHA-256)",
        session.id, session.expires
    );

    // 2. Each request resolves the session from the cookie.
    let current = db
        .get_session(&session.session_token)?
        .ok_or("session vanished")?;
    let user = db.get_user(&current.user_id)?.ok_or("user vanished")?;
    println!("request from {}", user.email.as_deref().unwrap_or("?"));
    for account in db.list_accounts(&user.id)? {
        println!(
            "  linked: {}:{} (OAuth tokens stored encrypted)",
            account.provider_id, account.provider_account_id
        );
    }

    // 3. Refresh: within the update age (24 h) nothing is written; after it, expiry moves.
    assert!(db.update_session(&current, false)?.is_none());
    clock.advance(Duration::days(2));
    let refreshed = db
        .update_session(&current, false)?
        .ok_or("session not refreshed")?;
    println!(
        "two days later the session was extended: {} -> {}",
        current.expires, refreshed.expires
    );

    // 4. Email sign-in: store the request, "send" the link, consume it once.
    let secret = "app-secret-from-config";
    // NextAuth makes 32 random bytes as hex; authdb refuses raw tokens under 128 bits.
    let token = "3f1c0e7a9b2d4c6e8f0a1b3c5d7e9f21";
    let provider = EmailProvider::new("email", |mail| {
        println!("  (mail to {}: {})", mail.identifier, mail.url);
        Ok(())
    });
    let url = format!("http://localhost:3000/api/auth/callback/email?token={token}");
    db.create_verification_request("ada@example.com", &url, token, secret, &provider)?;
    let signed_in = db.write(|tx| {
        let Some(req) = tx.use_verification_request("ADA@example.com", token, secret)? else {
            return Ok(None);
        };
        let user = tx
            .get_user_by_email(&req.identifier)?
            .ok_or(authdb::Error::UserNotFound(current.user_id))?;
        let user = tx.update_user(&authdb::User {
            email_verified: Some(Utc::now()),
            ..user
        })?;
        tx.create_session(&user.id).map(Some)
    })?;
    println!(
        "email link used: {}; used again: {}",
        signed_in.is_some(),
        db.use_verification_request("ada@example.com", token, secret)?
            .is_some()
    );

    // 5. Passwords: argon2id hashes, constant-ish time for unknown emails.
    db.set_password(&user.id, "correct horse battery staple")?;
    let ok = db.get_user_by_credentials(&Credentials {
        email: "ada@example.com".into(),
        password: "correct horse battery staple".into(),
    })?;
    let bad = db.get_user_by_credentials(&Credentials {
        email: "ada@example.com".into(),
        password: "wrong".into(),
    })?;
    println!(
        "password sign-in: right password {}, wrong password {}",
        ok.is_some(),
        bad.is_some()
    );

    // 6. Sign out here, then everywhere.
    db.delete_session(&session.session_token)?;
    println!(
        "signed out; {} other session(s) remain",
        db.list_sessions(&user.id)?.len()
    );
    println!(
        "signed out everywhere: {} removed",
        db.delete_sessions(&user.id)?
    );

    // 7. Housekeeping and a health check.
    let purged = db.purge_expired()?;
    println!(
        "purged {} expired sessions, {} expired requests",
        purged.sessions, purged.verification_requests
    );
    print!("integrity: {}", db.check_integrity()?);
    Ok(())
}
