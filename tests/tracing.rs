//! Feature `tracing`: every operation of a sign-in flow opens a span, and nothing a span or
//! event records contains a token, an email address, a password or a secret. A small
//! subscriber of our own captures every span name, field and event as text, which is then
//! searched for each secret.
#![cfg(feature = "tracing")]

mod common;

use std::fmt::{Debug, Write as _};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use authdb::prelude::*;
use authdb::{Credentials, NewUser, WebSession, WebSessionId, hash_verification_token};
use common::{mem_db, recording_provider};
use parking_lot::Mutex;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// Writes every recorded field as ` name=value` (values through `Debug`).
struct Text<'a>(&'a mut String);

impl Visit for Text<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        let _ = write!(self.0, " {}={value:?}", field.name());
    }
}

/// A subscriber that keeps one line of text per span, field update and event.
#[derive(Clone, Default)]
struct Capture {
    lines: Arc<Mutex<Vec<String>>>,
    next_id: Arc<AtomicU64>,
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let meta = span.metadata();
        let mut line = format!("span {}::{} [", meta.target(), meta.name());
        for f in meta.fields() {
            let _ = write!(line, " {}", f.name());
        }
        line.push_str(" ]");
        span.record(&mut Text(&mut line));
        self.lines.lock().push(line);
        Id::from_u64(self.next_id.fetch_add(1, Ordering::Relaxed) + 1)
    }

    fn record(&self, _: &Id, values: &Record<'_>) {
        let mut line = "record".to_owned();
        values.record(&mut Text(&mut line));
        self.lines.lock().push(line);
    }

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut line = format!(
            "event {} {}",
            event.metadata().level(),
            event.metadata().target()
        );
        event.record(&mut Text(&mut line));
        self.lines.lock().push(line);
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

const EMAIL: &str = "Ada.Lovelace@Example.com";
const PASSWORD: &str = "hunter2-correct-horse";
const LINK_TOKEN: &str = "link-token-5f1c9a-0123456789abcdef";
const SECRET: &str = "app-secret-77e0";
const URL: &str = "https://app.example/cb?token=link-token-5f1c9a-0123456789abcdef";

#[test]
fn a_sign_in_flow_records_spans_without_secrets() {
    let capture = Capture::default();
    tracing::subscriber::set_global_default(capture.clone()).unwrap();

    let (db, _clock) = mem_db();
    let user = db
        .create_user(&NewUser {
            email: Some(EMAIL.into()),
            name: Some("Ada".into()),
            ..NewUser::default()
        })
        .unwrap();
    db.set_password(&user.id, PASSWORD).unwrap();
    let creds = Credentials {
        email: EMAIL.into(),
        password: PASSWORD.into(),
    };
    assert_eq!(
        db.get_user_by_credentials(&creds).unwrap().unwrap().id,
        user.id
    );
    let wrong = Credentials {
        email: EMAIL.into(),
        password: format!("{PASSWORD}-wrong"),
    };
    assert!(db.get_user_by_credentials(&wrong).unwrap().is_none());
    let session = db.create_session(&user.id).unwrap();
    assert!(db.get_session(&session.session_token).unwrap().is_some());
    let (provider, sent) = recording_provider();
    db.create_verification_request(EMAIL, URL, LINK_TOKEN, SECRET, &provider)
        .unwrap();
    assert_eq!(sent.lock().len(), 1);
    assert!(
        db.use_verification_request(EMAIL, LINK_TOKEN, SECRET)
            .unwrap()
            .is_some()
    );
    // A failing call: its error is recorded, and names no email.
    assert!(
        db.create_user(&NewUser {
            email: Some(EMAIL.to_lowercase()),
            ..NewUser::default()
        })
        .is_err()
    );
    // A web session carrying secret data.
    let ws = WebSession {
        id: WebSessionId::from_bytes([0x5c; 16]),
        user_id: Some(user.id),
        expires: db.now() + chrono::Duration::hours(1),
        data: br#"{"axum-login.data":{"auth_hash":"stamp-derived-secret"}}"#.to_vec(),
    };
    db.web_session_create(&ws).unwrap();
    db.web_session_load(&ws.id).unwrap().unwrap();
    db.delete_sessions(&user.id).unwrap();

    let lines = capture.lines.lock().clone();
    let text = lines.join("\n");
    eprintln!("{text}");

    // Every operation of the flow opened a span, named after it.
    for op in [
        "create_user",
        "set_password",
        "get_user_by_credentials",
        "create_session",
        "get_session",
        "create_verification_request",
        "use_verification_request",
        "web_session_create",
        "web_session_load",
        "delete_sessions",
    ] {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("span ") && l.contains(&format!("::{op} "))),
            "no span for {op}:\n{text}"
        );
    }
    // Ids, counts and outcomes are there.
    assert!(text.contains(&format!("user_id={}", user.id)), "{text}");
    assert!(
        text.contains("return=1"),
        "the count of delete_sessions:\n{text}"
    );
    assert!(text.contains("error="), "the failed create_user:\n{text}");

    // No secret, in any form the flow handled.
    let access_token = session.access_token.clone();
    let secrets: Vec<(&str, String)> = vec![
        ("email as given", EMAIL.to_owned()),
        ("email normalized", authdb::normalize_email(EMAIL)),
        ("email local part", "lovelace".to_owned()),
        ("password", PASSWORD.to_owned()),
        ("session token", session.session_token.clone()),
        ("session access token", access_token),
        ("link token", LINK_TOKEN.to_owned()),
        ("link url", URL.to_owned()),
        ("app secret", SECRET.to_owned()),
        (
            "verification hash",
            hash_verification_token(LINK_TOKEN, SECRET),
        ),
        ("web session data", "stamp-derived-secret".to_owned()),
        ("web session id", "92, 92".to_owned()),
        ("web session id hex", "5c5c5c5c".to_owned()),
    ];
    let lower = text.to_lowercase();
    for (what, secret) in secrets {
        assert!(
            !lower.contains(&secret.to_lowercase()),
            "the {what} was recorded:\n{text}"
        );
    }
}
