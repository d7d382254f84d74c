//! The web app: configuration, router, session middleware and handlers.
//!
//! authdb is synchronous (a durable commit waits for the disk), so every call to it runs on
//! tokio's blocking pool through [`blocking`]; async executor threads never wait on the file.
//! Flows that write several records (email sign-in, OAuth sign-up) run in one
//! [`AuthDb::write`] transaction, so they commit all or nothing.

use std::fs::OpenOptions;
use std::future::Future;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use authdb::prelude::*;
use authdb::{AuthDb, Clock, EmailProvider, NewAccount, NewUser, Session, SessionId, User, UserId};
use axum::extract::{FromRef, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;

use crate::html::{self, LinkedAccount, url_encode};
use crate::oauth_mock::{self, PROVIDER_ID, Profile, Provider};

/// The cookie holding the session token.
pub const SESSION_COOKIE: &str = "authdb_session";
/// The cookie holding the CSRF token (double-submit: every form repeats it).
pub const CSRF_COOKIE: &str = "authdb_csrf";
/// The cookie holding the OAuth `state` while the browser is at the provider.
pub const STATE_COOKIE: &str = "authdb_oauth_state";

/// How the app is set up.
pub struct Config {
    /// The URL the app is reached at, without a trailing slash, e.g. `http://127.0.0.1:3000`.
    /// Sign-in links and the OAuth redirect URI are built from it, and the OAuth back channel
    /// calls it.
    pub base_url: String,
    /// The file sign-in links are appended to (the "mail" outbox).
    pub outbox: PathBuf,
    /// Mark cookies `Secure` (serve over HTTPS, e.g. behind a TLS-terminating proxy).
    pub secure_cookies: bool,
    /// The app secret: verification tokens are stored as `sha256(token + secret)`. (Open the
    /// `AuthDb` with an encryption key too, e.g. `EncryptionKey::from_secret(secret)`: the OAuth
    /// tokens of linked accounts are stored encrypted.)
    pub secret: String,
    /// Also print each sign-in link on standard output.
    pub echo_links: bool,
    /// The clock for the times the app writes itself (`email_verified`, OAuth token expiry);
    /// give it the same clock as the `AuthDb`.
    pub clock: Arc<dyn Clock>,
}

/// Shared state of the handlers.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    db: AuthDb,
    cfg: Config,
    email: EmailProvider,
    mock: Arc<Provider>,
}

impl FromRef<AppState> for Arc<Provider> {
    fn from_ref(s: &AppState) -> Self {
        Arc::clone(&s.inner.mock)
    }
}

/// Builds the app around an open database.
pub fn router(db: AuthDb, mut cfg: Config) -> Router {
    cfg.base_url
        .truncate(cfg.base_url.trim_end_matches('/').len());
    let mock = Arc::new(Provider::new(&cfg.base_url, &cfg.secret));
    let email = outbox_provider(cfg.outbox.clone(), cfg.echo_links);
    let state = AppState {
        inner: Arc::new(Inner {
            db,
            cfg,
            email,
            mock,
        }),
    };
    Router::new()
        .route("/", get(home))
        .route("/signin", get(signin_page))
        .route("/signin/email", post(signin_email))
        .route("/signin/mock", post(signin_mock))
        .route("/verify-request", get(verify_request))
        .route("/callback/email", get(callback_email))
        .route("/callback/mock", get(callback_mock))
        .route("/account", get(account))
        .route("/account/sessions/{id}/signout", post(signout_session))
        .route("/account/signout-everywhere", post(signout_everywhere))
        .route("/signout", get(signout_page).post(signout))
        .merge(oauth_mock::routes())
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), session_layer))
        .with_state(state)
}

/// Serves `app` on `listener` until `shutdown` completes, then waits for open requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// The email provider whose "sender" appends the link to the outbox file (and prints it).
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
        let mut f = OpenOptions::new().create(true).append(true).open(&outbox)?;
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
            Self::Csrf => (
                StatusCode::FORBIDDEN,
                Html(html::error_page(
                    "Form expired",
                    "This form did not come from this site or has expired. Go back, reload \
                     the page and try again.",
                )),
            )
                .into_response(),
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

fn internal_error_page() -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Html(html::error_page(
            "Something went wrong",
            "The server could not complete the request.",
        )),
    )
        .into_response()
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
    Ok(b.iter().fold(String::with_capacity(64), |mut s, b| {
        s.push(char::from_digit(u32::from(b >> 4), 16).unwrap_or('0'));
        s.push(char::from_digit(u32::from(b & 0xf), 16).unwrap_or('0'));
        s
    }))
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

/// The value of the cookie `name` in the request's `Cookie` headers.
fn cookie_value<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
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
        self.cookie(SESSION_COOKIE, &s.session_token, Lifetime::Until(s.expires))
    }

    fn clear_cookie(&self, name: &str) -> String {
        self.cookie(name, "", Lifetime::Delete)
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
    csrf_from_cookie: bool,
}

impl Ctx {
    fn user(&self) -> Option<&User> {
        self.current.as_ref().map(|c| &c.user)
    }

    /// The CSRF token to put into forms.
    pub fn csrf(&self) -> &str {
        &self.csrf
    }

    /// A form's CSRF token must equal the browser's CSRF cookie (which another site can
    /// neither read nor set).
    pub fn check_csrf(&self, submitted: &str) -> Result<(), AppError> {
        if self.csrf_from_cookie && ct_eq(submitted, &self.csrf) {
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

fn plausible_token(v: &str) -> bool {
    v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Runs around every request: resolves the session cookie (refreshing the session when its
/// update age has passed, and re-setting the cookie when the expiry moved), provides the CSRF
/// token, and sets the security headers.
async fn session_layer(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let token = cookie_value(req.headers(), SESSION_COOKIE).map(str::to_owned);
    let sent_csrf = cookie_value(req.headers(), CSRF_COOKIE)
        .filter(|v| plausible_token(v))
        .map(str::to_owned);
    let (current, moved, stale) = match token {
        None => (None, false, false),
        Some(token) => match blocking(&state, move |i| Ok(resolve_session(&i.db, &token)?)).await {
            Ok(Some((current, moved))) => (Some(current), moved, false),
            Ok(None) => (None, false, true),
            Err(e) => return e.into_response(),
        },
    };
    let (csrf, csrf_from_cookie) = match sent_csrf {
        Some(c) => (c, true),
        None => match random_token() {
            Ok(t) => (t, false),
            Err(e) => return e.into_response(),
        },
    };
    req.extensions_mut().insert(Ctx {
        current: current.clone(),
        csrf: csrf.clone(),
        csrf_from_cookie,
    });

    let mut resp = next.run(req).await;

    if !sets_cookie(&resp, SESSION_COOKIE) {
        if let Some(c) = current.as_ref().filter(|_| moved) {
            add_cookie(&mut resp, &state.session_cookie(&c.session));
        } else if stale {
            // Unknown or expired: tell the browser to forget it.
            add_cookie(&mut resp, &state.clear_cookie(SESSION_COOKIE));
        }
    }
    if !csrf_from_cookie && !sets_cookie(&resp, CSRF_COOKIE) {
        add_cookie(
            &mut resp,
            &state.cookie(CSRF_COOKIE, &csrf, Lifetime::Browser),
        );
    }
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; \
             frame-ancestors 'none'",
        ),
    );
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

/// The email form: creates a verification request; the "sender" writes the link to the outbox.
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
    let token = random_token()?;
    let url = format!(
        "{}/callback/email?email={}&token={}",
        state.cfg().base_url,
        url_encode(&email),
        token
    );
    let sent = blocking(&state, move |i| {
        Ok(i.db.create_verification_request(&email, &url, &token, &i.cfg.secret, &i.email))
    })
    .await?;
    match sent {
        Ok(_) => Ok(redirect("/verify-request")),
        Err(e @ (authdb::Error::InvalidInput { .. } | authdb::Error::SendFailed(_))) => {
            eprintln!("email sign-in failed: {e}");
            Ok(redirect("/signin?error=EmailSignin"))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
struct EmailCallback {
    #[serde(default)]
    email: String,
    #[serde(default)]
    token: String,
}

/// The magic link: consumes the request, creates or updates the user, replaces this browser's
/// session with a new one — in one transaction.
async fn callback_email(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<EmailCallback>,
) -> Result<Response, AppError> {
    if q.email.is_empty() || q.token.is_empty() || q.token.len() > authdb::limits::MAX_TOKEN_LEN {
        return Ok(redirect("/signin?error=Verification"));
    }
    let previous = ctx.current.map(|c| c.session.session_token);
    let session = blocking(&state, move |i| {
        let now = i.cfg.clock.now();
        // (`authdb::WriteTxn` is not exported, so this flow stays inside the closure rather
        // than in a function taking the transaction.)
        Ok(i.db.write(|tx| {
            if tx
                .use_verification_request(&q.email, &q.token, &i.cfg.secret)?
                .is_none()
            {
                return Ok(None);
            }
            let user = match tx.get_user_by_email(&q.email)? {
                Some(u) => tx.update_user(&User {
                    email_verified: Some(now),
                    ..u
                })?,
                None => tx.create_user(&NewUser {
                    email: Some(authdb::normalize_email(&q.email)),
                    email_verified: Some(now),
                    ..NewUser::default()
                })?,
            };
            // One browser, one session: the session this browser had (maybe another user's)
            // ends.
            if let Some(t) = &previous {
                tx.delete_session(t)?;
            }
            tx.create_session(&user.id).map(Some)
        })?)
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

// ---------------------------------------------------------------------------------------------
// OAuth sign-in (against the mock provider)

/// Starts the authorization-code flow (sign-in when signed out, linking when signed in).
async fn signin_mock(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Form(f): Form<CsrfForm>,
) -> Result<Response, AppError> {
    ctx.check_csrf(&f.csrf_token)?;
    let oauth_state = random_token()?;
    let mut r = redirect(&state.inner.mock.authorize_url(&oauth_state));
    add_cookie(
        &mut r,
        &state.cookie(STATE_COOKIE, &oauth_state, Lifetime::Seconds(600)),
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

/// NextAuth v3's OAuth callback rules, in one transaction (see examples/web/README.md).
fn oauth_sign_in(
    tx: &impl Adapter,
    signed_in: Option<UserId>,
    p: &Profile,
    now: DateTime<Utc>,
) -> authdb::Result<OAuthOutcome> {
    let account = NewAccount {
        provider_type: "oauth".into(),
        provider_id: PROVIDER_ID.into(),
        provider_account_id: p.sub.clone(),
        refresh_token: p.refresh_token.clone(),
        access_token: Some(p.access_token.clone()),
        access_token_expires: p
            .expires_in
            .and_then(|s| now.checked_add_signed(Duration::seconds(s))),
        ..Default::default()
    };
    if let Some(owner) = tx.get_user_by_provider_account_id(PROVIDER_ID, &p.sub)? {
        // Linked to someone: that someone signs in (the re-link refreshes the stored tokens).
        return match signed_in {
            Some(me) if me != owner.id => Ok(OAuthOutcome::NotLinked),
            Some(_) => {
                tx.link_account(&owner.id, &account)?;
                Ok(OAuthOutcome::Linked)
            }
            None => {
                tx.link_account(&owner.id, &account)?;
                Ok(OAuthOutcome::SignedIn(tx.create_session(&owner.id)?))
            }
        };
    }
    // Not linked yet: link it to the signed-in user, or sign up.
    if let Some(me) = signed_in {
        tx.link_account(&me, &account)?;
        return Ok(OAuthOutcome::Linked);
    }
    // No automatic linking by email: the provider may not have verified it.
    if let Some(email) = &p.email
        && tx.get_user_by_email(email)?.is_some()
    {
        return Ok(OAuthOutcome::NotLinked);
    }
    let user = tx.create_user(&NewUser {
        name: p.name.clone(),
        email: p.email.clone(),
        image: None,
        email_verified: None,
        ..Default::default()
    })?;
    tx.link_account(&user.id, &account)?;
    Ok(OAuthOutcome::SignedIn(tx.create_session(&user.id)?))
}

/// The provider redirects back here with a code: check `state`, exchange the code over the
/// back channel, then sign in, sign up or link in one transaction.
async fn callback_mock(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    headers: HeaderMap,
    Query(q): Query<OAuthCallback>,
) -> Result<Response, AppError> {
    let back = if ctx.current.is_some() {
        "/account"
    } else {
        "/signin"
    };
    let fail = |code: &str| {
        let mut r = redirect(&format!("{back}?error={code}"));
        add_cookie(&mut r, &state.clear_cookie(STATE_COOKIE));
        r
    };
    let expected = cookie_value(&headers, STATE_COOKIE);
    let state_ok = match (expected, q.state.as_deref()) {
        (Some(e), Some(s)) => !e.is_empty() && ct_eq(e, s),
        _ => false,
    };
    if !state_ok {
        return Ok(fail("OAuthState"));
    }
    if q.error.is_some() {
        return Ok(fail("AccessDenied"));
    }
    let Some(code) = q.code else {
        return Ok(fail("OAuthCallback"));
    };
    let mock = Arc::clone(&state.inner.mock);
    let profile = match tokio::task::spawn_blocking(move || mock.exchange(&code)).await {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => {
            eprintln!("mock OAuth: {e}");
            return Ok(fail("OAuthCallback"));
        }
        Err(e) => return Err(AppError::Internal(format!("token exchange task: {e}"))),
    };
    let signed_in = ctx.current.as_ref().map(|c| c.user.id);
    let outcome = blocking(&state, move |i| {
        let now = i.cfg.clock.now();
        match i.db.write(|tx| oauth_sign_in(tx, signed_in, &profile, now)) {
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
            add_cookie(&mut r, &state.clear_cookie(STATE_COOKIE));
            r
        }
        OAuthOutcome::Linked => {
            let mut r = redirect("/account");
            add_cookie(&mut r, &state.clear_cookie(STATE_COOKIE));
            r
        }
        OAuthOutcome::NotLinked => fail("OAuthAccountNotLinked"),
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
        add_cookie(&mut r, &state.clear_cookie(SESSION_COOKIE));
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
    add_cookie(&mut r, &state.clear_cookie(SESSION_COOKIE));
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
    add_cookie(&mut r, &state.clear_cookie(SESSION_COOKIE));
    Ok(r)
}
