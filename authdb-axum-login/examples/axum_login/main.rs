//! authdb with axum-login and tower-sessions: password sign-up and sign-in, OAuth sign-in
//! (authorization code + PKCE, through the `oauth2` crate) against a mock provider the app
//! serves itself, protected routes, a permission-gated route, password change and "sign out
//! everywhere". Users, linked accounts and sessions all live in one authdb file.
//!
//! ```text
//! cargo run -p authdb-axum-login --example axum_login             # http://127.0.0.1:3000
//! cargo run -p authdb-axum-login --example axum_login -- --port 3001
//! ```
//!
//! Files, in the working directory: `authdb-axum-login.redb` (the database) and
//! `authdb-axum-login-secret` (the app secret, made with mode 0600 on first start unless
//! `AUTHDB_AXUM_LOGIN_SECRET` is set). Loopback only: it is not meant to face a network.
//!
//! `examples/web` (in the core crate) is the framework-free reference: its `html.rs` and
//! `security.rs` are shared by `#[path]`.

mod app;
// Shared with examples/web, which uses the rest, under the core crate's lint levels.
#[allow(dead_code, clippy::cast_possible_truncation)]
#[path = "../../../examples/web/html.rs"]
mod html;
mod mock_provider;
mod oauth_client;
mod pages;
#[allow(dead_code)] // shared with examples/web, which uses the rest
#[path = "../../../examples/web/security.rs"]
mod security;

use std::error::Error;
use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

use authdb::{AuthDb, EncryptionKey};
use authdb_tower_sessions::AuthDbSessionStore;
use axum_login::tower_sessions::ExpiredDeletion;

const DB_FILE: &str = "authdb-axum-login.redb";
const SECRET_FILE: &str = "authdb-axum-login-secret";
/// How often expired sessions are deleted.
const PURGE_EVERY: Duration = Duration::from_secs(10 * 60);

/// The app secret: `AUTHDB_AXUM_LOGIN_SECRET`, else the content of `path`, else a new random
/// one written to `path`, readable by its owner only.
fn load_or_create_secret(path: &Path) -> Result<String, Box<dyn Error>> {
    if let Ok(s) = std::env::var("AUTHDB_AXUM_LOGIN_SECRET")
        && !s.is_empty()
    {
        return Ok(s);
    }
    match std::fs::read_to_string(path) {
        Ok(s) if !s.trim().is_empty() => return Ok(s.trim().to_owned()),
        Ok(_) => return Err(format!("{} is empty", path.display()).into()),
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
        Err(_) => {}
    }
    let secret = authdb::backend::random_session_token()?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(secret.as_bytes())?;
    Ok(secret)
}

fn main() -> Result<(), Box<dyn Error>> {
    let mut port: u16 = 3000;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => port = args.next().ok_or("--port needs a value")?.parse()?,
            other => return Err(format!("unknown argument {other:?} (usage: --port N)").into()),
        }
    }
    let secret = load_or_create_secret(Path::new(SECRET_FILE))?;
    // Opening blocks: before the runtime. OAuth tokens are sealed with a key derived from the
    // app secret.
    let db = AuthDb::builder()
        .encryption_key(EncryptionKey::from_secret(&secret)?)
        .open(DB_FILE)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result: Result<(), Box<dyn Error>> = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let cfg = app::Config {
            base_url: base_url.clone(),
            secure_cookies: false,
            secret,
        };
        let router = app::router(&db, &cfg)?;
        tokio::spawn(AuthDbSessionStore::new(db.clone()).continuously_delete_expired(PURGE_EVERY));
        println!("axum_login example on {base_url} (data in {DB_FILE}; Ctrl-C stops)");
        axum::serve(listener, router)
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await?;
        Ok(())
    });
    drop(runtime);
    result
}
