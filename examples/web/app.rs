//! The web app: configuration, router, server loop, the request guards and session middleware,
//! and the handlers.
//!
//! authdb is synchronous (a durable commit waits for the disk), so every call to it runs on
//! tokio's blocking pool through [`blocking`]; async executor threads never wait on the file.
//! Flows that write several records (email sign-in, OAuth sign-up) run in one
//! [`AuthDb::write`] transaction, so they commit all or nothing.

use std::fs::OpenOptions;
use std::future::Future;
use std::io::{ErrorKind, Write as _};
use std::net::SocketAddr;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use std::time::Duration as StdDuration;

use authdb::prelude::*;
use authdb::{
    AuthDb, Clock, EmailProvider, Extra, NewAccount, NewUser, Session, SessionId, User, UserId,
    UserPatch,
};
use axum::extract::{ConnectInfo, FromRef, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use chrono::{DateTime, Duration, Utc};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::Deserialize;
use serde_json::Value;
use tower_service::Service as _;

use crate::html::{self, LinkPage, LinkedAccount, url_encode};
use crate::oauth_mock::{self, PROVIDER_ID, Profile, Provider};
use crate::security::{
    Keys, LinkLimiter, OriginCheck, RateLimit, SiteOrigin, check_origin, client_key, cookie_value,
    duplicate_cookie, pkce_challenge, plausible_token,
};

/// The cookie holding the session token.
pub const SESSION_COOKIE: &str = "authdb_session";
/// The cookie holding this browser's random id (before and after sign-in). Forms carry a CSRF
/// token that is an HMAC of this id and of the session token: it cannot be made without the
/// app secret, and a token made for one session or browser does not work for another.
pub const CSRF_COOKIE: &str = "authdb_csrf";
/// The cookie holding the OAuth `state` nonce while the browser is at the provider.
pub const STATE_COOKIE: &str = "authdb_oauth_state";
/// The cookie that binds sign-in links to the browser that asked for them.
pub const LINK_COOKIE: &str = "authdb_link";
/// How long a client may take to send a request's headers (slow-loris protection). The same
/// timeout closes a kept-alive connection that sends nothing.
pub const HEADER_READ_TIMEOUT: StdDuration = StdDuration::from_secs(10);
/// The path of the mock provider's token endpoint: called server to server, with a client
/// secret instead of cookies, so it is exempt from the `Origin` check.
const TOKEN_ENDPOINT: &str = "/mock-oauth/token";

/// The name a cookie gets: `__Host-<name>` when cookies are `Secure` (the browser then refuses
/// the cookie unless it is `Secure`, `Path=/` and without `Domain`, so a sibling subdomain
/// cannot plant it), the plain name otherwise (browsers refuse the prefix without `Secure`).
pub fn cookie_name(name: &str, secure: bool) -> String {
    if secure {
        format!("__Host-{name}")
    } else {
        name.to_owned()
    }
}

/// How the app is set up.
pub struct Config {
    /// The URL the app is reached at, without a trailing slash, e.g. `http://127.0.0.1:3000`.
    /// Sign-in links and the OAuth redirect URI are built from it, the OAuth back channel calls
    /// it, requests must name its host (`Host`), and POSTs must come from its origin.
    pub base_url: String,
    /// The file sign-in links are appended to (the "mail" outbox).
    pub outbox: PathBuf,
    /// Mark cookies `Secure` and give them the `__Host-` prefix (serve over HTTPS, e.g. behind
    /// a TLS-terminating proxy that keeps the `Host` header).
    pub secure_cookies: bool,
    /// The app secret: verification tokens are stored as `sha256(token + secret)`, and the
    /// app's MACs (CSRF tokens, link binding, OAuth state) use a key derived from it. (Open the
    /// `AuthDb` with an encryption key too, e.g. `EncryptionKey::from_secret(secret)`: the
    /// OAuth tokens of linked accounts are stored encrypted.)
    pub secret: String,
    /// Also print each sign-in link on standard output.
    pub echo_links: bool,
    /// The clock for the times the app writes itself (`email_verified`, OAuth token expiry)
    /// and for the rate limits; give it the same clock as the `AuthDb`.
    pub clock: Arc<dyn Clock>,
    /// Limits on sign-in link requests.
    pub limits: Limits,
}

/// Limits on sign-in link requests, kept in memory (per process; they start afresh on a
/// restart).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Per email address (normalized): a mailbox cannot be flooded.
    pub links_per_address: RateLimit,
    /// Per client IP address (IPv6: per /64): one client cannot send to many addresses.
    pub links_per_client: RateLimit,
}

impl Default for Limits {
    /// 5 links at once per address, then one every 3 minutes; 20 at once per client, then one
    /// every 30 seconds.
    fn default() -> Self {
        Self {
            links_per_address: RateLimit {
                burst: 5,
                every: Duration::minutes(3),
            },
            links_per_client: RateLimit {
                burst: 20,
                every: Duration::seconds(30),
            },
        }
    }
}

/// Shared state of the handlers.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct CookieNames {
    session: String,
    csrf: String,
    state: String,
    link: String,
}

struct Inner {
    db: AuthDb,
    cfg: Config,
    email: EmailProvider,
    mock: Arc<Provider>,
    keys: Keys,
    site: SiteOrigin,
    limiter: LinkLimiter,
    names: CookieNames,
}

impl FromRef<AppState> for Arc<Provider> {
    fn from_ref(s: &AppState) -> Self {
        Arc::clone(&s.inner.mock)
    }
}

/// Builds the app around an open database. Fails if the base URL is not `http(s)://host[:port]`.
pub fn router(db: AuthDb, mut cfg: Config) -> Result<Router, String> {
    cfg.base_url
        .truncate(cfg.base_url.trim_end_matches('/').len());
    let site = SiteOrigin::parse(&cfg.base_url)?;
    let mock = Arc::new(Provider::new(&cfg.base_url, &cfg.secret));
    let email = outbox_provider(cfg.outbox.clone(), cfg.echo_links);
    let name = |n| cookie_name(n, cfg.secure_cookies);
    let names = CookieNames {
        session: name(SESSION_COOKIE),
        csrf: name(CSRF_COOKIE),
        state: name(STATE_COOKIE),
        link: name(LINK_COOKIE),
    };
    let state = AppState {
        inner: Arc::new(Inner {
            db,
            keys: Keys::new(&cfg.secret),
            limiter: LinkLimiter::new(cfg.limits.links_per_address, cfg.limits.links_per_client),
            cfg,
            email,
            mock,
            site,
            names,
        }),
    };
    Ok(Router::new()
        .route("/", get(home))
        .route("/signin", get(signin_page))
        .route("/signin/email", post(signin_email))
        .route("/signin/mock", post(signin_mock))
        .route("/verify-request", get(verify_request))
        .route("/callback/email", get(link_page).post(link_confirm))
        .route("/callback/mock", get(callback_mock))
        .route("/account", get(account))
        .route("/account/sessions/{id}/signout", post(signout_session))
        .route("/account/signout-everywhere", post(signout_everywhere))
        .route("/signout", get(signout_page).post(signout))
        .merge(oauth_mock::routes())
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), session_layer))
        // Outermost: runs before the session is looked up, and its headers go on every answer.
        .layer(middleware::from_fn_with_state(state.clone(), guard_layer))
        .with_state(state))
}

/// Serves `app` on `listener` until `shutdown` completes, then waits for open requests.
///
/// A small accept loop over hyper instead of `axum::serve`, for two things the latter does not
/// offer: a header-read timeout (a client that trickles its headers is cut off after
/// `header_read_timeout`, and so is a kept-alive connection idle that long), and the peer
/// address as [`ConnectInfo`] for the per-client limits.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    header_read_timeout: StdDuration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (close_tx, close_rx) = tokio::sync::watch::channel(());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            () = &mut shutdown => break,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // A connection reset before accept, or too many open files: keep serving.
                eprintln!("accept failed: {e}");
                tokio::time::sleep(StdDuration::from_millis(50)).await;
                continue;
            }
        };
        let app = app.clone();
        let mut close_rx = close_rx.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(
                move |mut req: hyper::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
                    let mut app = app.clone();
                    async move { app.call(req).await }
                },
            );
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(header_read_timeout);
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            let mut conn = std::pin::pin!(conn);
            let mut closing = false;
            loop {
                tokio::select! {
                    _ = conn.as_mut() => break,
                    _ = close_rx.changed(), if !closing => {
                        closing = true;
                        conn.as_mut().graceful_shutdown();
                    }
                }
            }
        });
    }
    drop(listener);
    drop(close_rx);
    let _ = close_tx.send(());
    // Every connection task holds a receiver until its connection is done.
    close_tx.closed().await;
    Ok(())
}

/// The email provider whose "sender" appends the link to the outbox file (and prints it).
/// The outbox holds live sign-in links, so it is created readable by the owner only, and an
/// existing outbox readable by others is tightened to 0600 before anything is appended.
fn outbox_provider(outbox: PathBuf, echo: bool) -> EmailProvider {
    EmailProvider::new("email", move |mail| {
        // The identifier and URL hold no tab or newline: the form rejects white space and the
        // URL is built from percent-encoded parts.
        let line = format!(
            "{}\t{}\t{}\n",
            Utc::now().to_rfc3339(),
            mail.identifier,
            mail.url
        );
        let mut opts = OpenOptions::new();
        opts.create(true).append(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(&outbox)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            if f.metadata()?.permissions().mode() & 0o077 != 0 {
                f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
            }
        }
        f.write_all(line.as_bytes())?;
        if echo {
            // This is the "mail delivery" of the example, so it shows the link on purpose.
            println!(
                "[outbox] sign-in link for {}: {}",
                mail.identifier, mail.url
            );
        }
        Ok(())
    })
}

/// The app secret from `path`, or a new random one written there with mode 0600.
///
/// A secret file that the group or others may read is refused, not tightened: whoever could
/// read it may have a copy, so it has to be replaced (delete it to get a new one; pending
/// links and stored OAuth tokens are then lost), not just hidden from now on.
pub fn load_or_create_secret(path: &FsPath) -> Result<String, String> {
    let shown = path.display();
    match std::fs::File::open(path) {
        Ok(f) => {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt as _;
                let mode = f
                    .metadata()
                    .map_err(|e| format!("{shown}: {e}"))?
                    .permissions()
                    .mode();
                if mode & 0o077 != 0 {
                    return Err(format!(
                        "{shown} is readable by other users (mode {:o}); the secret may have \
                         leaked. Replace it: delete the file to have a new one made (pending \
                         sign-in links and stored OAuth tokens are then lost), or chmod 600 it \
                         if you are sure nobody read it",
                        mode & 0o777
                    ));
                }
            }
            let s = std::io::read_to_string(f).map_err(|e| format!("{shown}: {e}"))?;
            let s = s.trim();
            if s.is_empty() {
                return Err(format!("{shown} is empty"));
            }
            return Ok(s.to_owned());
        }
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(format!("{shown}: {e}")),
    }
    let secret = random_token().map_err(|e| format!("{e:?}"))?;
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    opts.open(path)
        .and_then(|mut f| f.write_all(format!("{secret}\n").as_bytes()))
        .map_err(|e| format!("{shown}: {e}"))?;
    println!("created a new app secret in {shown}");
    Ok(secret)
}

// ---------------------------------------------------------------------------------------------
// Errors, blocking calls, small helpers

/// A failed request.
#[derive(Debug)]
pub enum AppError {
    /// The store failed (its messages never hold tokens or passwords).
    Db(authdb::Error),
    /// A state-changing form without the right CSRF token.
    Csrf,
    /// Anything else that should not happen.
    Internal(String),
}

impl From<authdb::Error> for AppError {
    fn from(e: authdb::Error) -> Self {
        Self::Db(e)
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        match self {
            Self::Csrf => refusal(
                StatusCode::FORBIDDEN,
                "Form expired",
                "This form did not come from this site or has expired. Go back, reload the \
                 page and try again.",
            ),
            Self::Db(e) => {
                eprintln!("authdb error: {e}");
                internal_error_page()
            }
            Self::Internal(e) => {
                eprintln!("internal error: {e}");
                internal_error_page()
            }
        }
    }
}

fn refusal(status: StatusCode, title: &str, message: &str) -> Response {
    (status, Html(html::error_page(title, message))).into_response()
}

fn internal_error_page() -> Response {
    refusal(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "The server could not complete the request.",
    )
}

/// Runs `f` on tokio's blocking thread pool: every authdb call goes through here.
async fn blocking<T, F>(state: &AppState, f: F) -> Result<T, AppError>
where
    F: FnOnce(&Inner) -> Result<T, AppError> + Send + 'static,
    T: Send + 'static,
{
    let state = state.clone();
    tokio::task::spawn_blocking(move || f(&state.inner))
        .await
        .map_err(|e| AppError::Internal(format!("blocking task failed: {e}")))?
}

/// 32 random bytes from the OS, as 64 lowercase hex characters.
pub fn random_token() -> Result<String, AppError> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).map_err(|e| AppError::Internal(format!("getrandom: {e}")))?;
    Ok(crate::security::hex(&b))
}

/// Compares two secrets in time independent of where they differ.
pub fn ct_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// A `303 See Other` to `to` (a path or an absolute URL built by the app).
pub fn redirect(to: &str) -> Response {
    let location = HeaderValue::from_str(to).unwrap_or(HeaderValue::from_static("/"));
    (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response()
}

/// How long a cookie lives.
#[derive(Clone, Copy)]
enum Lifetime {
    /// Until this instant (the session cookie: expiry = session expiry).
    Until(DateTime<Utc>),
    /// For this many seconds.
    Seconds(i64),
    /// Until the browser closes.
    Browser,
    /// Delete it now.
    Delete,
}

impl AppState {
    fn cfg(&self) -> &Config {
        &self.inner.cfg
    }

    fn names(&self) -> &CookieNames {
        &self.inner.names
    }

    fn cookie(&self, name: &str, value: &str, life: Lifetime) -> String {
        let life = match life {
            Lifetime::Until(t) => format!("; Expires={}", html::http_date(t)),
            Lifetime::Seconds(s) => format!("; Max-Age={s}"),
            Lifetime::Browser => String::new(),
            Lifetime::Delete => "; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0".to_owned(),
        };
        let secure = if self.cfg().secure_cookies {
            "; Secure"
        } else {
            ""
        };
        format!("{name}={value}; Path=/{life}; HttpOnly; SameSite=Lax{secure}")
    }

    fn session_cookie(&self, s: &Session) -> String {
        self.cookie(
            &self.names().session,
            &s.session_token,
            Lifetime::Until(s.expires),
        )
    }

    fn clear_cookie(&self, name: &str) -> String {
        self.cookie(name, "", Lifetime::Delete)
    }

    /// The CSRF token of a browser id and session token (empty when signed out).
    fn csrf_token(&self, browser: &str, session_token: &str) -> String {
        self.inner.keys.tag("csrf", &[browser, session_token])
    }

    /// The tag a sign-in link carries (`bind=`): it ties the link to the link cookie of the
    /// browser that asked for it, without revealing that cookie.
    fn link_tag(&self, nonce: &str, email: &str, token: &str) -> String {
        self.inner.keys.tag("email-link", &[nonce, email, token])
    }

    /// Whether this browser asked for the link (its link cookie matches the link's tag).
    fn link_bound(&self, ctx: &Ctx, email: &str, token: &str, bind: &str) -> bool {
        ctx.link_nonce
            .as_deref()
            .is_some_and(|n| ct_eq(&self.link_tag(n, email, token), bind))
    }

    /// The OAuth `state` for a flow: `<flow>.<nonce>.<mac>`, the MAC covering the flow, the
    /// nonce (also kept in the state cookie), the browser id and the session that started it.
    fn oauth_state(&self, flow: Flow, nonce: &str, ctx: &Ctx) -> String {
        let mac = self.inner.keys.tag(
            "oauth-state",
            &[flow.as_str(), nonce, &ctx.browser, ctx.session_token()],
        );
        format!("{}.{nonce}.{mac}", flow.as_str())
    }

    /// The PKCE `code_verifier` of a flow, derived from its nonce: nothing to store, and
    /// nobody without the app secret can compute it from the nonce.
    fn pkce_verifier(&self, nonce: &str) -> String {
        self.inner.keys.tag("pkce-verifier", &[nonce])
    }
}

fn add_cookie(resp: &mut Response, cookie: &str) {
    if let Ok(v) = HeaderValue::from_str(cookie) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
}

fn sets_cookie(resp: &Response, name: &str) -> bool {
    resp.headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split_once('=').is_some_and(|(k, _)| k == name))
}

// ---------------------------------------------------------------------------------------------
// The guards: Host, duplicate cookies, Origin; security headers

/// Sets the security headers on every response.
fn security_headers(h: &mut HeaderMap) {
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // `same-origin`: a Referer (with a link's token in it) is sent to this site only, never to
    // another; unlike `no-referrer` it lets the browser send the real `Origin` on this site's
    // own form posts, which the Origin check needs.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
    );
}

/// Runs first on every request: refuses a request for another host (DNS rebinding), one that
/// sends one of the app's cookies twice, and a POST from another origin; then sets the
/// security headers on whatever the answer is.
async fn guard_layer(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let mut resp = match guard(&state, &req) {
        None => next.run(req).await,
        Some(refused) => refused,
    };
    security_headers(resp.headers_mut());
    resp
}

/// The refusal of a request that fails a guard, or `None`.
fn guard(state: &AppState, req: &Request) -> Option<Response> {
    let site = &state.inner.site;
    let headers = req.headers();
    // Host: exactly one Host header naming this site (and an absolute-form target, if any,
    // too). A DNS-rebinding page reaches 127.0.0.1 under its own host name, so it is refused
    // here, before any cookie is looked at.
    let hosts: Vec<&str> = headers
        .get_all(header::HOST)
        .iter()
        .map(|v| v.to_str().unwrap_or(""))
        .collect();
    let target = req
        .uri()
        .authority()
        .map(axum::http::uri::Authority::as_str);
    let host_ok = hosts.len() == 1 && hosts.iter().chain(target.iter()).all(|h| site.host_ok(h));
    if !host_ok {
        return Some(refusal(
            StatusCode::BAD_REQUEST,
            "Unknown host",
            &format!(
                "This server only answers for {}. Open the app there.",
                site.serialized()
            ),
        ));
    }
    let n = state.names();
    if let Some(name) = duplicate_cookie(headers, &[&n.session, &n.csrf, &n.state, &n.link]) {
        return Some(refusal(
            StatusCode::BAD_REQUEST,
            "Conflicting cookies",
            &format!(
                "Your browser sent two cookies named {name}. One of them was probably set by \
                 another site or service on this host. Clear this site's cookies (for the \
                 whole host) and try again."
            ),
        ));
    }
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe && req.uri().path() != TOKEN_ENDPOINT {
        match check_origin(site, headers) {
            OriginCheck::Same => {}
            OriginCheck::Cross | OriginCheck::Missing => {
                return Some(refusal(
                    StatusCode::FORBIDDEN,
                    "Cross-site request refused",
                    "This form was not submitted from this site (its Origin and Referer \
                     headers name another site, or are missing).",
                ));
            }
        }
    }
    None
}

// ---------------------------------------------------------------------------------------------
// The session middleware

/// Who is signed in.
#[derive(Clone)]
pub struct Current {
    /// The browser's session (with its token, from the cookie).
    pub session: Session,
    /// Its user.
    pub user: User,
}

/// What the middleware found out about the request, for the handlers.
#[derive(Clone)]
pub struct Ctx {
    /// The signed-in user and session, if any.
    pub current: Option<Current>,
    csrf: String,
    /// The browser id (from the CSRF cookie, or new in this response).
    browser: String,
    browser_from_cookie: bool,
    /// The link cookie's nonce, if the browser has one.
    link_nonce: Option<String>,
    /// The rate-limit key of the client.
    client: String,
}

impl Ctx {
    fn user(&self) -> Option<&User> {
        self.current.as_ref().map(|c| &c.user)
    }

    fn session_token(&self) -> &str {
        self.current
            .as_ref()
            .map_or("", |c| c.session.session_token.as_str())
    }

    /// The CSRF token to put into forms.
    pub fn csrf(&self) -> &str {
        &self.csrf
    }

    /// A form's CSRF token must be the HMAC of this browser's id cookie and its current
    /// session. A cookie value alone (which other services on the same host can read and
    /// plant) does not make a valid token, nor does a token issued to another browser or
    /// session.
    pub fn check_csrf(&self, submitted: &str) -> Result<(), AppError> {
        if self.browser_from_cookie && ct_eq(submitted, &self.csrf) {
            Ok(())
        } else {
            Err(AppError::Csrf)
        }
    }
}

/// Resolves the session of a token and applies the update-age refresh. Returns who is signed
/// in and whether the session's expiry moved.
fn resolve_session(db: &AuthDb, token: &str) -> authdb::Result<Option<(Current, bool)>> {
    let Some(session) = db.get_session(token)? else {
        return Ok(None);
    };
    let (session, moved) = match db.update_session(&session, false)? {
        Some(updated) => {
            let moved = updated.expires != session.expires;
            (updated, moved)
        }
        None => (session, false),
    };
    let Some(user) = db.get_user(&session.user_id)? else {
        return Ok(None);
    };
    Ok(Some((Current { session, user }, moved)))
}

/// Runs around every request (inside the guards): resolves the session cookie (refreshing the
/// session when its update age has passed, and re-setting the cookie when the expiry moved),
/// provides the browser id and CSRF token.
async fn session_layer(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let names = state.names();
    let token = cookie_value(req.headers(), &names.session).map(str::to_owned);
    let sent_browser = cookie_value(req.headers(), &names.csrf)
        .filter(|v| plausible_token(v))
        .map(str::to_owned);
    let link_nonce = cookie_value(req.headers(), &names.link)
        .filter(|v| plausible_token(v))
        .map(str::to_owned);
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let (current, moved, stale) = match token {
        None => (None, false, false),
        Some(token) => match blocking(&state, move |i| Ok(resolve_session(&i.db, &token)?)).await {
            Ok(Some((current, moved))) => (Some(current), moved, false),
            Ok(None) => (None, false, true),
            Err(e) => return e.into_response(),
        },
    };
    let (browser, browser_from_cookie) = match sent_browser {
        Some(b) => (b, true),
        None => match random_token() {
            Ok(t) => (t, false),
            Err(e) => return e.into_response(),
        },
    };
    let session_token = current
        .as_ref()
        .map_or("", |c| c.session.session_token.as_str());
    let csrf = state.csrf_token(&browser, session_token);
    req.extensions_mut().insert(Ctx {
        current: current.clone(),
        csrf,
        browser: browser.clone(),
        browser_from_cookie,
        link_nonce,
        client: client_key(peer),
    });

    let mut resp = next.run(req).await;

    if !sets_cookie(&resp, &names.session) {
        if let Some(c) = current.as_ref().filter(|_| moved) {
            add_cookie(&mut resp, &state.session_cookie(&c.session));
        } else if stale {
            // Unknown or expired: tell the browser to forget it.
            add_cookie(&mut resp, &state.clear_cookie(&names.session));
        }
    }
    if !browser_from_cookie && !sets_cookie(&resp, &names.csrf) {
        add_cookie(
            &mut resp,
            &state.cookie(&names.csrf, &browser, Lifetime::Browser),
        );
    }
    resp
}

// ---------------------------------------------------------------------------------------------
// Pages

#[derive(Deserialize)]
struct ErrorQuery {
    error: Option<String>,
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf_token: String,
}

async fn home(Extension(ctx): Extension<Ctx>) -> Html<String> {
    Html(html::home(ctx.user()))
}

async fn not_found(Extension(ctx): Extension<Ctx>) -> Response {
    (
        StatusCode::NOT_FOUND,
        Html(html::layout(
            "Not found",
            ctx.user(),
            "<p>There is no such page.</p>",
        )),
    )
        .into_response()
}

async fn signin_page(Extension(ctx): Extension<Ctx>, Query(q): Query<ErrorQuery>) -> Html<String> {
    Html(html::signin(ctx.user(), ctx.csrf(), q.error.as_deref()))
}

async fn verify_request(Extension(ctx): Extension<Ctx>) -> Html<String> {
    Html(html::verify_request(ctx.user()))
}

// ---------------------------------------------------------------------------------------------
// Email sign-in

#[derive(Deserialize)]
struct EmailForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    email: String,
}

/// A cheap shape check; authdb enforces the length limit, the mail (here: the outbox) proves
/// the address.
fn plausible_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.is_empty()
        && !domain.contains('@')
        && email.len() <= authdb::limits::MAX_EMAIL_LEN
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// `429 Too Many Requests` with `Retry-After`.
fn too_many_requests(wait: Duration) -> Response {
    let secs = (wait + Duration::milliseconds(999)).num_seconds().max(1);
    let minutes = (secs + 59) / 60;
    let mut r = refusal(
        StatusCode::TOO_MANY_REQUESTS,
        "Too many sign-in links",
        &format!(
            "Too many sign-in links were asked for this address or from your network. Try \
             again in {minutes} minute{}.",
            if minutes == 1 { "" } else { "s" }
        ),
    );
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    r
}

/// The email form: creates a verification request; the "sender" writes the link to the outbox.
/// The link carries a tag binding it to this browser's link cookie.
async fn signin_email(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Form(f): Form<EmailForm>,
) -> Result<Response, AppError> {
    ctx.check_csrf(&f.csrf_token)?;
    let email = authdb::normalize_email(&f.email);
    if !plausible_email(&email) {
        return Ok(redirect("/signin?error=EmailSignin"));
    }
    if let Err(wait) = state
        .inner
        .limiter
        .allow(&email, &ctx.client, state.cfg().clock.now())
    {
        return Ok(too_many_requests(wait));
    }
    // One nonce per browser, kept while links may be pending, so every link this browser asked
    // for stays bound to it.
    let nonce = match ctx.link_nonce.clone() {
        Some(n) => n,
        None => random_token()?,
    };
    let token = random_token()?;
    let url = format!(
        "{}/callback/email?email={}&token={}&bind={}",
        state.cfg().base_url,
        url_encode(&email),
        token,
        state.link_tag(&nonce, &email, &token)
    );
    let sent = blocking(&state, move |i| {
        Ok(i.db.create_verification_request(&email, &url, &token, &i.cfg.secret, &i.email))
    })
    .await?;
    match sent {
        Ok(_) => {
            let mut r = redirect("/verify-request");
            let life = state.inner.email.link_max_age().num_seconds();
            add_cookie(
                &mut r,
                &state.cookie(&state.names().link, &nonce, Lifetime::Seconds(life)),
            );
            Ok(r)
        }
        Err(e @ (authdb::Error::InvalidInput { .. } | authdb::Error::SendFailed(_))) => {
            eprintln!("email sign-in failed: {e}");
            Ok(redirect("/signin?error=EmailSignin"))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
struct LinkQuery {
    #[serde(default)]
    email: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    bind: String,
}

fn link_shape_ok(email: &str, token: &str, bind: &str) -> bool {
    !email.is_empty()
        && !token.is_empty()
        && token.len() <= authdb::limits::MAX_TOKEN_LEN
        && bind.len() <= 64
}

/// GET on a sign-in link: shows a page with a button and changes nothing. Mail scanners and
/// link previews fetch links; they no longer use them up.
async fn link_page(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<LinkQuery>,
) -> Result<Response, AppError> {
    if !link_shape_ok(&q.email, &q.token, &q.bind) {
        return Ok(redirect("/signin?error=Verification"));
    }
    let email = authdb::normalize_email(&q.email);
    let (e, t) = (email.clone(), q.token.clone());
    let live = blocking(&state, move |i| {
        match i
            .db
            .get_verification_request(&e, &t, &i.cfg.secret, &i.email)
        {
            Ok(found) => Ok(found.is_some()),
            Err(authdb::Error::InvalidInput { .. } | authdb::Error::InvalidValue { .. }) => {
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    })
    .await?;
    if !live {
        return Ok(redirect("/signin?error=Verification"));
    }
    let bound = state.link_bound(&ctx, &email, &q.token, &q.bind);
    let page = LinkPage {
        email: &email,
        token: &q.token,
        bind: &q.bind,
        bound,
    };
    Ok(Html(html::confirm_link(ctx.user(), ctx.csrf(), &page)).into_response())
}

#[derive(Deserialize)]
struct LinkForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    bind: String,
    #[serde(default)]
    other_browser: String,
}

/// The POST of the link page: consumes the link and signs this browser in — at once in the
/// browser that asked for the link; in another browser only with the explicit confirmation
/// of the warning page (`other_browser=yes`).
async fn link_confirm(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Form(f): Form<LinkForm>,
) -> Result<Response, AppError> {
    ctx.check_csrf(&f.csrf_token)?;
    if !link_shape_ok(&f.email, &f.token, &f.bind) {
        return Ok(redirect("/signin?error=Verification"));
    }
    let email = authdb::normalize_email(&f.email);
    let bound = state.link_bound(&ctx, &email, &f.token, &f.bind);
    if !bound && f.other_browser != "yes" {
        let page = LinkPage {
            email: &email,
            token: &f.token,
            bind: &f.bind,
            bound,
        };
        return Ok((
            StatusCode::FORBIDDEN,
            Html(html::confirm_link(ctx.user(), ctx.csrf(), &page)),
        )
            .into_response());
    }
    let previous = ctx.current.map(|c| c.session.session_token);
    let token = f.token;
    let session = blocking(&state, move |i| {
        let now = i.cfg.clock.now();
        match i
            .db
            .write(|tx| email_sign_in(tx, &email, &token, &i.cfg.secret, previous.as_deref(), now))
        {
            Ok(s) => Ok(s),
            Err(authdb::Error::InvalidInput { .. } | authdb::Error::InvalidValue { .. }) => {
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    })
    .await?;
    Ok(match session {
        Some(s) => {
            let mut r = redirect("/");
            add_cookie(&mut r, &state.session_cookie(&s));
            r
        }
        None => redirect("/signin?error=Verification"),
    })
}

/// Whether the provider of `account` verified `email` itself (recorded in the account's
/// `extra` at every sign-in or link).
fn provider_verified(account: &authdb::Account, email: &str) -> bool {
    account.extra.get("email_verified") == Some(&Value::Bool(true))
        && account
            .extra
            .get("email")
            .and_then(Value::as_str)
            .is_some_and(|e| authdb::normalize_email(e) == email)
}

/// The email sign-in, in one transaction: consumes the link, creates the user or marks the
/// address verified, replaces this browser's session with a new one.
///
/// The first time an existing user's address is verified, whoever used the account until now
/// had not proven they own the address (an account pre-hijacked through an unverified provider
/// email, or made by an older version of the app): every session of the user ends and every
/// provider account is unlinked unless its provider verified this very address.
fn email_sign_in(
    tx: &impl Adapter,
    email: &str,
    token: &str,
    secret: &str,
    previous: Option<&str>,
    now: DateTime<Utc>,
) -> authdb::Result<Option<Session>> {
    if tx.use_verification_request(email, token, secret)?.is_none() {
        return Ok(None);
    }
    let verified_now = UserPatch {
        email_verified: Some(Some(now)),
        ..UserPatch::default()
    };
    let user = match tx.get_user_by_email(email)? {
        Some(u) => {
            if u.email_verified.is_none() {
                tx.delete_sessions(&u.id)?;
                for a in tx.list_accounts(&u.id)? {
                    if !provider_verified(&a, email) {
                        tx.unlink_account(&u.id, &a.provider_id, &a.provider_account_id)?;
                    }
                }
            }
            tx.patch_user(&u.id, &verified_now)?
        }
        None => tx.create_user(&NewUser {
            email: Some(email.to_owned()),
            email_verified: Some(now),
            ..NewUser::default()
        })?,
    };
    // One browser, one session: the session this browser had (maybe another user's) ends.
    if let Some(t) = previous {
        tx.delete_session(t)?;
    }
    tx.create_session(&user.id).map(Some)
}

// ---------------------------------------------------------------------------------------------
// OAuth sign-in (against the mock provider)

/// What an OAuth flow was started for. It is part of the signed `state`, so the callback does
/// what the button said, not what the browser's session happens to be by then.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Flow {
    /// Sign in or sign up (from the sign-in page).
    SignIn,
    /// Link the provider account to the signed-in user (from the account page).
    Link,
}

impl Flow {
    fn as_str(self) -> &'static str {
        match self {
            Self::SignIn => "signin",
            Self::Link => "link",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "signin" => Some(Self::SignIn),
            "link" => Some(Self::Link),
            _ => None,
        }
    }
}

#[derive(Deserialize)]
struct OAuthStartForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    flow: String,
}

/// Starts the authorization-code flow with PKCE: sign-in from the sign-in page, linking from
/// the account page.
async fn signin_mock(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Form(f): Form<OAuthStartForm>,
) -> Result<Response, AppError> {
    ctx.check_csrf(&f.csrf_token)?;
    let flow = Flow::parse(&f.flow).unwrap_or(Flow::SignIn);
    if flow == Flow::Link && ctx.current.is_none() {
        return Ok(redirect("/signin"));
    }
    let nonce = random_token()?;
    let oauth_state = state.oauth_state(flow, &nonce, &ctx);
    let challenge = pkce_challenge(&state.pkce_verifier(&nonce));
    let mut r = redirect(&state.inner.mock.authorize_url(&oauth_state, &challenge));
    add_cookie(
        &mut r,
        &state.cookie(&state.names().state, &nonce, Lifetime::Seconds(600)),
    );
    Ok(r)
}

#[derive(Deserialize)]
struct OAuthCallback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

enum OAuthOutcome {
    /// A new session (sign-up or sign-in).
    SignedIn(Session),
    /// The account is now linked to the signed-in user (or already was).
    Linked,
    /// NextAuth's `OAuthAccountNotLinked`.
    NotLinked,
}

/// The access token's expiry from the provider's `expires_in`; `None` (unknown) for a negative
/// value or one past the calendar's end (`i64::MAX` seconds must not panic).
fn token_expiry(now: DateTime<Utc>, expires_in: Option<i64>) -> Option<DateTime<Utc>> {
    let secs = expires_in.filter(|s| *s >= 0)?;
    now.checked_add_signed(Duration::try_seconds(secs)?)
}

/// NextAuth v3's OAuth callback rules, in one transaction (see the README's table), with two
/// changes: an email the provider has not verified is neither stored on a new user nor matched
/// against existing users; and a sign-in replaces this browser's previous session.
fn oauth_sign_in(
    tx: &impl Adapter,
    flow: Flow,
    signed_in: Option<UserId>,
    previous: Option<&str>,
    p: &Profile,
    now: DateTime<Utc>,
) -> authdb::Result<OAuthOutcome> {
    let verified_email = p
        .email
        .as_deref()
        .filter(|_| p.email_verified)
        .map(authdb::normalize_email);
    // What the provider said about the email, kept with the account (sealed like its tokens):
    // the first email verification of the user keeps only accounts whose provider verified it.
    let mut extra = Extra::new();
    extra.insert(
        "email".into(),
        p.email.clone().map_or(Value::Null, Value::String),
    );
    extra.insert(
        "email_verified".into(),
        Value::Bool(verified_email.is_some()),
    );
    let account = NewAccount {
        provider_type: "oauth".into(),
        provider_id: PROVIDER_ID.into(),
        provider_account_id: p.sub.clone(),
        refresh_token: p.refresh_token.clone(),
        access_token: Some(p.access_token.clone()),
        access_token_expires: token_expiry(now, p.expires_in),
        extra,
        ..Default::default()
    };
    let sign_in = |user_id: &UserId| -> authdb::Result<OAuthOutcome> {
        if let Some(t) = previous {
            tx.delete_session(t)?;
        }
        Ok(OAuthOutcome::SignedIn(tx.create_session(user_id)?))
    };
    if let Some(owner) = tx.get_user_by_provider_account_id(PROVIDER_ID, &p.sub)? {
        // Linked to someone: that someone signs in (the re-link refreshes the stored tokens).
        return match (flow, signed_in) {
            (Flow::Link, Some(me)) if me != owner.id => Ok(OAuthOutcome::NotLinked),
            (Flow::Link, _) => {
                tx.link_account(&owner.id, &account)?;
                Ok(OAuthOutcome::Linked)
            }
            (Flow::SignIn, _) => {
                tx.link_account(&owner.id, &account)?;
                sign_in(&owner.id)
            }
        };
    }
    // Not linked yet: link it to the signed-in user, or sign up.
    if let (Flow::Link, Some(me)) = (flow, signed_in) {
        tx.link_account(&me, &account)?;
        return Ok(OAuthOutcome::Linked);
    }
    // No automatic linking by email, even a verified one: the person signs in the way they
    // did before and links the provider from the account page.
    if let Some(email) = &verified_email
        && tx.get_user_by_email(email)?.is_some()
    {
        return Ok(OAuthOutcome::NotLinked);
    }
    let user = tx.create_user(&NewUser {
        name: p.name.clone(),
        email: verified_email,
        image: None,
        email_verified: None,
        ..Default::default()
    })?;
    tx.link_account(&user.id, &account)?;
    sign_in(&user.id)
}

/// Splits and checks an OAuth `state`: its flow and nonce, if the nonce matches the state
/// cookie and the MAC matches this browser and session.
fn verify_oauth_state<'s>(
    state: &AppState,
    ctx: &Ctx,
    headers: &HeaderMap,
    s: &'s str,
) -> Option<(Flow, &'s str)> {
    let mut parts = s.splitn(3, '.');
    let (flow, nonce, _) = (parts.next()?, parts.next()?, parts.next()?);
    let flow = Flow::parse(flow)?;
    let cookie = cookie_value(headers, &state.names().state)?;
    (plausible_token(nonce)
        && ct_eq(cookie, nonce)
        && ct_eq(s, &state.oauth_state(flow, nonce, ctx)))
    .then_some((flow, nonce))
}

/// The provider redirects back here with a code: check `state`, exchange the code (with the
/// PKCE verifier) over the back channel, then sign in, sign up or link in one transaction.
async fn callback_mock(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    headers: HeaderMap,
    Query(q): Query<OAuthCallback>,
) -> Result<Response, AppError> {
    let fail = |back: &str, code: &str| {
        let mut r = redirect(&format!("{back}?error={code}"));
        add_cookie(&mut r, &state.clear_cookie(&state.names().state));
        r
    };
    let verified = q
        .state
        .as_deref()
        .and_then(|s| verify_oauth_state(&state, &ctx, &headers, s));
    let Some((flow, nonce)) = verified else {
        let back = if ctx.current.is_some() {
            "/account"
        } else {
            "/signin"
        };
        return Ok(fail(back, "OAuthState"));
    };
    let back = match flow {
        Flow::SignIn => "/signin",
        Flow::Link => "/account",
    };
    let signed_in = ctx.current.as_ref().map(|c| c.user.id);
    if flow == Flow::Link && signed_in.is_none() {
        return Ok(fail("/signin", "OAuthState"));
    }
    if q.error.is_some() {
        return Ok(fail(back, "AccessDenied"));
    }
    let Some(code) = q.code else {
        return Ok(fail(back, "OAuthCallback"));
    };
    let mock = Arc::clone(&state.inner.mock);
    let verifier = state.pkce_verifier(nonce);
    let profile = match tokio::task::spawn_blocking(move || mock.exchange(&code, &verifier)).await {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => {
            eprintln!("mock OAuth: {e}");
            return Ok(fail(back, "OAuthCallback"));
        }
        Err(e) => return Err(AppError::Internal(format!("token exchange task: {e}"))),
    };
    let previous = ctx
        .current
        .as_ref()
        .map(|c| c.session.session_token.clone());
    let outcome = blocking(&state, move |i| {
        let now = i.cfg.clock.now();
        let previous = previous.as_deref();
        match i
            .db
            .write(|tx| oauth_sign_in(tx, flow, signed_in, previous, &profile, now))
        {
            Ok(o) => Ok(o),
            // Lost a race with another callback for the same account or email.
            Err(authdb::Error::AccountLinkedToAnotherUser | authdb::Error::EmailTaken) => {
                Ok(OAuthOutcome::NotLinked)
            }
            Err(e) => Err(e.into()),
        }
    })
    .await?;
    Ok(match outcome {
        OAuthOutcome::SignedIn(s) => {
            let mut r = redirect("/");
            add_cookie(&mut r, &state.session_cookie(&s));
            add_cookie(&mut r, &state.clear_cookie(&state.names().state));
            r
        }
        OAuthOutcome::Linked => {
            let mut r = redirect("/account");
            add_cookie(&mut r, &state.clear_cookie(&state.names().state));
            r
        }
        OAuthOutcome::NotLinked => fail(back, "OAuthAccountNotLinked"),
    })
}

// ---------------------------------------------------------------------------------------------
// Account and sign-out

async fn account(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<ErrorQuery>,
) -> Result<Response, AppError> {
    let Some(current) = ctx.current.clone() else {
        return Ok(redirect("/signin"));
    };
    let uid = current.user.id;
    let (linked, sessions) = blocking(&state, move |i| {
        let linked =
            i.db.list_accounts(&uid)?
                .into_iter()
                .map(|a| LinkedAccount {
                    label: oauth_mock::persona(&a.provider_account_id)
                        .filter(|_| a.provider_id == PROVIDER_ID)
                        .map_or_else(|| a.provider_account_id.clone(), |p| p.name.to_owned()),
                    provider: a.provider_id,
                    account_id: a.provider_account_id,
                })
                .collect::<Vec<_>>();
        Ok((linked, i.db.list_sessions(&uid)?))
    })
    .await?;
    Ok(Html(html::account(
        &current.user,
        &linked,
        &sessions,
        current.session.id,
        ctx.csrf(),
        q.error.as_deref(),
    ))
    .into_response())
}

/// Signs one session of the signed-in user out (from the account page's list).
async fn signout_session(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Result<Response, AppError> {
    ctx.check_csrf(&f.csrf_token)?;
    let Some(current) = ctx.current else {
        return Ok(redirect("/signin"));
    };
    let Ok(id) = id.parse::<SessionId>() else {
        return Ok(redirect("/account"));
    };
    let uid = current.user.id;
    blocking(&state, move |i| Ok(i.db.delete_session_by_id(&uid, &id)?)).await?;
    if id == current.session.id {
        let mut r = redirect("/");
        add_cookie(&mut r, &state.clear_cookie(&state.names().session));
        Ok(r)
    } else {
        Ok(redirect("/account"))
    }
}

/// Deletes every session of the signed-in user.
async fn signout_everywhere(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Form(f): Form<CsrfForm>,
) -> Result<Response, AppError> {
    ctx.check_csrf(&f.csrf_token)?;
    let Some(current) = ctx.current else {
        return Ok(redirect("/signin"));
    };
    let uid = current.user.id;
    blocking(&state, move |i| Ok(i.db.delete_sessions(&uid)?)).await?;
    let mut r = redirect("/");
    add_cookie(&mut r, &state.clear_cookie(&state.names().session));
    Ok(r)
}

async fn signout_page(Extension(ctx): Extension<Ctx>) -> Response {
    match &ctx.current {
        Some(c) => Html(html::signout(&c.user, ctx.csrf())).into_response(),
        None => redirect("/"),
    }
}

async fn signout(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Form(f): Form<CsrfForm>,
) -> Result<Response, AppError> {
    ctx.check_csrf(&f.csrf_token)?;
    if let Some(current) = ctx.current {
        let token = current.session.session_token;
        blocking(&state, move |i| Ok(i.db.delete_session(&token)?)).await?;
    }
    let mut r = redirect("/");
    add_cookie(&mut r, &state.clear_cookie(&state.names().session));
    Ok(r)
}
