//! authdb in an async web app (axum + tokio): email magic links, OAuth against a built-in mock
//! provider, account linking, session lists, sign out everywhere.
//!
//! ```text
//! cargo run --example web                # http://127.0.0.1:3000
//! cargo run --example web -- --port 3001
//! ```
//!
//! Files, in the working directory: `authdb-web.redb` (the database), `authdb-web-outbox.txt`
//! (the sign-in links: the "mail", mode 0600), `authdb-web-secret` (the app secret, made with
//! mode 0600 on first start unless `AUTHDB_WEB_SECRET` is set; refused if others can read it).
//! See `examples/web/README.md`.

mod app;
mod html;
mod oauth_mock;
mod security;

use std::error::Error;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use authdb::{AuthDb, EncryptionKey, SystemClock};

const DB_FILE: &str = "authdb-web.redb";
const OUTBOX_FILE: &str = "authdb-web-outbox.txt";
const SECRET_FILE: &str = "authdb-web-secret";
/// How often expired sessions and sign-in links are purged.
const PURGE_EVERY: Duration = Duration::from_secs(10 * 60);

struct Options {
    port: u16,
    secure_cookies: bool,
    base_url: Option<String>,
}

fn options() -> Result<Options, Box<dyn Error>> {
    let mut port = match std::env::var("PORT") {
        Ok(p) => p.parse()?,
        Err(_) => 3000,
    };
    let mut secure_cookies = std::env::var("AUTHDB_WEB_SECURE_COOKIES").is_ok_and(|v| v == "1");
    let mut base_url = std::env::var("AUTHDB_WEB_BASE_URL").ok();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => port = args.next().ok_or("--port needs a value")?.parse()?,
            "--secure-cookies" => secure_cookies = true,
            "--base-url" => base_url = Some(args.next().ok_or("--base-url needs a value")?),
            "-h" | "--help" => {
                println!(
                    "usage: web [--port N] [--secure-cookies] [--base-url URL]\n\
                     env: PORT, AUTHDB_WEB_SECURE_COOKIES=1, AUTHDB_WEB_BASE_URL, AUTHDB_WEB_SECRET"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?} (try --help)").into()),
        }
    }
    Ok(Options {
        port,
        secure_cookies,
        base_url,
    })
}

/// The app secret: `AUTHDB_WEB_SECRET`, else the content of `path`, else a new random one
/// written to `path` (readable by the owner only). See [`app::load_or_create_secret`].
fn load_secret(path: &Path) -> Result<String, Box<dyn Error>> {
    if let Ok(s) = std::env::var("AUTHDB_WEB_SECRET")
        && !s.is_empty()
    {
        return Ok(s);
    }
    Ok(app::load_or_create_secret(path)?)
}

fn main() -> Result<(), Box<dyn Error>> {
    let opts = options()?;
    let secret = load_secret(Path::new(SECRET_FILE))?;
    // Opening is blocking: do it before the async runtime exists.
    // The OAuth tokens of linked accounts are encrypted in the file with a key derived from
    // the app secret.
    let db = AuthDb::builder()
        .encryption_key(EncryptionKey::from_secret(&secret)?)
        .open(DB_FILE)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let purge = db.spawn_purge_task(PURGE_EVERY);
    let result = runtime.block_on(async {
        // Loopback only: this example is not meant to face a network.
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", opts.port)).await?;
        let addr = listener.local_addr()?;
        let base_url = opts.base_url.unwrap_or_else(|| format!("http://{addr}"));
        let cfg = app::Config {
            base_url: base_url.clone(),
            outbox: OUTBOX_FILE.into(),
            secure_cookies: opts.secure_cookies,
            secret,
            echo_links: true,
            clock: Arc::new(SystemClock),
            limits: app::Limits::default(),
        };
        let router = app::router(db, cfg).map_err(std::io::Error::other)?;
        println!("authdb web example listening on {base_url} (data in {DB_FILE}; Ctrl-C stops)");
        app::serve(listener, router, app::HEADER_READ_TIMEOUT, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
    });
    // Dropping the runtime ends any request still holding the database; then the purge thread
    // stops and the file is closed.
    drop(runtime);
    let stats = purge.stop();
    println!(
        "stopped; purged {} expired sessions and {} expired sign-in links while running",
        stats.purged.sessions, stats.purged.verification_requests
    );
    result.map_err(Into::into)
}
