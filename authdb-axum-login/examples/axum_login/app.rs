//! The app: routes, the session and auth layers, and the handlers.
//!
//! | route | what |
//! |---|---|
//! | `GET /` | home |
//! | `GET, POST /signup` | password sign-up (signs in) |
//! | `GET, POST /login` | password sign-in; `?next=` returns there |
//! | `POST /logout` | sign out this browser |
//! | `GET /auth/mock` | start OAuth with PKCE (`?persona=` passes a `login_hint`) |
//! | `GET /auth/mock/callback` | the provider's redirect: state check, code exchange, sign-in |
//! | `GET /protected` | the account page (signed in only) |
//! | `POST /password` | change password: every other session ends, this one stays |
//! | `POST /signout-everywhere` | every session of the user ends, this one too |
//! | `GET /admin` | needs the `admin` permission (403 without) |
//! | `/mock-oauth/*` | the mock provider ([`crate::mock_provider`]) |
//!
//! Every POST must come from this site's pages: its `Origin` (or `Referer`) is checked
//! against the base URL (`security::check_origin`, shared with `examples/web`), which with
//! `SameSite=Lax` session cookies stops cross-site request forgery, login CSRF included.

use std::sync::Arc;

use authdb::{AuthDb, NewAccount, NewUser};
use authdb_axum_login::{
    AuthSession, Backend, Credentials, Error, OAuthCredentials, OAuthProfile, User,
};
use authdb_tower_sessions::AuthDbSessionStore;
use axum::Form;
use axum::Router;
use axum::extract::{FromRef, Query, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum_login::tower_sessions::cookie::SameSite;
use axum_login::tower_sessions::cookie::time::Duration;
use axum_login::tower_sessions::{Expiry, SessionManagerLayer};
use axum_login::{AuthManagerLayerBuilder, login_required, permission_required};
use oauth2::{
    AuthorizationCode, CsrfToken, PkceCodeChallenge, PkceCodeVerifier, Scope, TokenResponse,
};
use serde::Deserialize;

use crate::mock_provider::{self, PROVIDER_ID, Provider};
use crate::oauth_client::{self, Http};
use crate::pages;
use crate::security::{Keys, OriginCheck, SiteOrigin, check_origin};

/// The session key of a pending OAuth flow: its `state` nonce.
const OAUTH_STATE_KEY: &str = "oauth.state";
/// The session cookie's name.
pub const SESSION_COOKIE: &str = "authdb_session";
/// Sessions end after a week without a request.
const SESSION_IDLE: Duration = Duration::days(7);

/// How the app is served.
pub struct Config {
    /// The URL the browser reaches the app at (`http://127.0.0.1:3000`): the OAuth redirect
    /// URI and the origin POSTs must come from are built from it.
    pub base_url: String,
    /// `Secure` session cookies (serve over HTTPS then).
    pub secure_cookies: bool,
    /// The app secret: the PKCE verifiers are MACs under a key derived from it, and the mock
    /// provider's client secret too. (The database's encryption key is derived from it by
    /// `main`.)
    pub secret: String,
}

#[derive(Clone)]
struct AppState {
    backend: Backend,
    oauth: Arc<oauth_client::Client>,
    http: Http,
    userinfo_url: String,
    keys: Keys,
    site: SiteOrigin,
    provider: Arc<Provider>,
}

impl FromRef<AppState> for Arc<Provider> {
    fn from_ref(s: &AppState) -> Self {
        Arc::clone(&s.provider)
    }
}

/// The mock provider's client secret for this app secret (the test drives the token
/// endpoint with it too).
pub fn client_secret(keys: &Keys) -> String {
    keys.tag("mock-oauth-client-secret", &[])
}

/// The whole app on `db`: its pages, the session and auth layers, and the mock provider.
pub fn router(db: &AuthDb, cfg: &Config) -> Result<Router, String> {
    let keys = Keys::new(&cfg.secret);
    let redirect_uri = format!("{}/auth/mock/callback", cfg.base_url);
    let secret = client_secret(&keys);
    let state = AppState {
        backend: Backend::new(db.clone()),
        oauth: Arc::new(oauth_client::client(&cfg.base_url, &redirect_uri, &secret)?),
        http: Http::new(),
        userinfo_url: format!("{}/mock-oauth/userinfo", cfg.base_url),
        keys,
        site: SiteOrigin::parse(&cfg.base_url)?,
        provider: Arc::new(Provider::new(&redirect_uri, &secret)),
    };
    // The sessions live in the same file as the users (authdb-tower-sessions). `Lax`: the
    // provider's redirect back is a top-level navigation from another site.
    let sessions = SessionManagerLayer::new(AuthDbSessionStore::new(db.clone()))
        .with_name(SESSION_COOKIE)
        .with_secure(cfg.secure_cookies)
        .with_same_site(SameSite::Lax)
        .with_expiry(Expiry::OnInactivity(SESSION_IDLE));
    let auth = AuthManagerLayerBuilder::new(state.backend.clone(), sessions).build();

    let signed_in = Router::new()
        .route("/protected", get(account))
        .route("/password", post(change_password))
        .route("/signout-everywhere", post(sign_out_everywhere))
        .route_layer(login_required!(Backend, login_url = "/login"));
    let admin = Router::new()
        .route("/admin", get(admin))
        .route_layer(permission_required!(Backend, "admin"))
        .route_layer(login_required!(Backend, login_url = "/login"));
    let app = Router::new()
        .route("/", get(home))
        .route("/signup", get(signup_page).post(signup))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/auth/mock", get(oauth_start))
        .route("/auth/mock/callback", get(oauth_callback))
        .merge(signed_in)
        .merge(admin)
        .layer(auth)
        .layer(middleware::from_fn_with_state(state.clone(), origin_guard));
    Ok(app.merge(mock_provider::routes()).with_state(state))
}

/// Refuses a state-changing request whose `Origin` (or `Referer`) is not this site.
async fn origin_guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let safe = matches!(*req.method(), Method::GET | Method::HEAD);
    if !safe && check_origin(&state.site, req.headers()) != OriginCheck::Same {
        return refusal(StatusCode::FORBIDDEN, "Refused", None, "Origin");
    }
    next.run(req).await
}

// ---------------------------------------------------------------------------------------------
// Responses

/// A failure the visitor cannot fix: logged (no secrets: authdb's and tower-sessions'
/// messages carry none), shown as a plain 500.
struct AppError(String);

impl<E: std::fmt::Display> From<E> for AppError {
    fn from(e: E) -> Self {
        Self(e.to_string())
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        eprintln!("axum_login example: internal error: {}", self.0);
        refusal(StatusCode::INTERNAL_SERVER_ERROR, "Error", None, "Internal")
    }
}

fn refusal(status: StatusCode, title: &str, user: Option<&User>, code: &str) -> Response {
    (status, Html(pages::page(title, user, Some(code), ""))).into_response()
}

/// A redirect to a path of this site only: `next` values not starting with one `/` (an
/// absolute or protocol-relative URL: an open redirect) become `/`.
fn local_redirect(next: Option<&str>) -> Redirect {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.starts_with("/\\") => {
            Redirect::to(n)
        }
        _ => Redirect::to("/"),
    }
}

/// Signs `user` in on this browser, under a new session id (no fixation, even when another
/// user was signed in).
async fn sign_in(auth: &mut AuthSession, user: &User) -> Result<(), AppError> {
    auth.session.cycle_id().await?;
    auth.login(user).await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Pages and password flows

async fn home(auth: AuthSession) -> Html<String> {
    let body = match &auth.user {
        Some(_) => r#"<p><a href="/protected">Your account</a></p>"#.to_owned(),
        None => {
            r#"<p><a href="/login">Sign in</a> or <a href="/signup">sign up</a>.</p>"#.to_owned()
        }
    };
    Html(pages::page(
        "authdb + axum-login",
        auth.user.as_ref(),
        None,
        &body,
    ))
}

#[derive(Deserialize)]
struct LoginQuery {
    next: Option<String>,
    error: Option<String>,
}

async fn login_page(auth: AuthSession, Query(q): Query<LoginQuery>) -> Html<String> {
    Html(pages::page(
        "Sign in",
        auth.user.as_ref(),
        q.error.as_deref(),
        &pages::login(q.next.as_deref()),
    ))
}

async fn signup_page(auth: AuthSession) -> Html<String> {
    Html(pages::page(
        "Sign up",
        auth.user.as_ref(),
        None,
        &pages::signup(),
    ))
}

#[derive(Deserialize)]
struct SignupForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

async fn signup(mut auth: AuthSession, Form(f): Form<SignupForm>) -> Result<Response, AppError> {
    let profile = NewUser {
        name: Some(f.name.trim().to_owned()).filter(|n| !n.is_empty()),
        email: Some(f.email),
        ..NewUser::default()
    };
    let user = match auth.backend.sign_up(profile, f.password).await {
        Ok(u) => u,
        Err(Error::Store(authdb::Error::EmailTaken)) => {
            return Ok(refusal(StatusCode::CONFLICT, "Sign up", None, "EmailTaken"));
        }
        Err(Error::Store(
            authdb::Error::InvalidInput { .. } | authdb::Error::InvalidValue { .. },
        )) => {
            return Ok(refusal(
                StatusCode::BAD_REQUEST,
                "Sign up",
                None,
                "InvalidInput",
            ));
        }
        Err(e) => return Err(e.into()),
    };
    sign_in(&mut auth, &user).await?;
    Ok(Redirect::to("/protected").into_response())
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    next: Option<String>,
}

async fn login(mut auth: AuthSession, Form(f): Form<LoginForm>) -> Result<Response, AppError> {
    let creds = Credentials::password(f.email, f.password);
    let Some(user) = auth.authenticate(creds).await? else {
        return Ok(refusal(
            StatusCode::UNAUTHORIZED,
            "Sign in",
            None,
            "CredentialsSignin",
        ));
    };
    sign_in(&mut auth, &user).await?;
    Ok(local_redirect(f.next.as_deref()).into_response())
}

async fn logout(mut auth: AuthSession) -> Result<Redirect, AppError> {
    auth.logout().await?;
    Ok(Redirect::to("/"))
}

/// The signed-in user (the routes calling this are behind `login_required!`).
fn current(auth: &AuthSession) -> Result<&User, AppError> {
    auth.user
        .as_ref()
        .ok_or_else(|| AppError("a signed-in route without a user".into()))
}

async fn account(auth: AuthSession) -> Result<Html<String>, AppError> {
    let user = current(&auth)?;
    let devices = auth
        .backend
        .db()
        .web_session_list_for_user(&user.id())
        .await?;
    Ok(Html(pages::page(
        "Your account",
        Some(user),
        None,
        &pages::account(user, devices.len()),
    )))
}

#[derive(Deserialize)]
struct PasswordForm {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
}

/// Changes the password after checking the current one. The new security stamp ends every
/// other session; this browser signs in again under a new session id.
async fn change_password(
    mut auth: AuthSession,
    Form(f): Form<PasswordForm>,
) -> Result<Response, AppError> {
    let user = current(&auth)?.clone();
    let email = user.profile().email.clone().unwrap_or_default();
    let proven = auth
        .authenticate(Credentials::password(email, f.current_password))
        .await?
        .is_some_and(|u| u.id() == user.id());
    if !proven {
        return Ok(refusal(
            StatusCode::FORBIDDEN,
            "Your account",
            Some(&user),
            "CredentialsSignin",
        ));
    }
    let updated = match auth
        .backend
        .change_password(&user.id(), &f.new_password)
        .await
    {
        Ok(u) => u,
        Err(Error::Store(authdb::Error::InvalidInput { .. })) => {
            return Ok(refusal(
                StatusCode::BAD_REQUEST,
                "Your account",
                Some(&user),
                "InvalidInput",
            ));
        }
        Err(e) => return Err(e.into()),
    };
    sign_in(&mut auth, &updated).await?;
    Ok(Redirect::to("/protected").into_response())
}

/// Ends every session of the user, this one included.
async fn sign_out_everywhere(mut auth: AuthSession) -> Result<Redirect, AppError> {
    let uid = current(&auth)?.id();
    auth.backend.sign_out_everywhere(&uid).await?;
    auth.logout().await?;
    Ok(Redirect::to("/"))
}

async fn admin(auth: AuthSession) -> Html<String> {
    Html(pages::page(
        "Admin",
        auth.user.as_ref(),
        None,
        r#"<p data-admin="true">Only users with the <code>admin</code> permission see this.</p>"#,
    ))
}

// ---------------------------------------------------------------------------------------------
// OAuth

#[derive(Deserialize)]
struct StartQuery {
    persona: Option<String>,
}

/// The PKCE verifier of a flow: a MAC of its `state` nonce, so nothing secret is kept in the
/// session (64 hex characters: a valid verifier).
fn pkce_verifier(keys: &Keys, nonce: &str) -> PkceCodeVerifier {
    PkceCodeVerifier::new(keys.tag("pkce-verifier", &[nonce]))
}

/// Starts the authorization-code flow: a random `state` kept in this browser's session, the
/// S256 challenge of the verifier derived from it, and a redirect to the provider.
async fn oauth_start(
    State(state): State<AppState>,
    auth: AuthSession,
    Query(q): Query<StartQuery>,
) -> Result<Redirect, AppError> {
    let nonce = authdb::backend::random_session_token()?;
    let challenge =
        PkceCodeChallenge::from_code_verifier_sha256(&pkce_verifier(&state.keys, &nonce));
    let mut request = state
        .oauth
        .authorize_url(|| CsrfToken::new(nonce.clone()))
        .add_scope(Scope::new("openid".into()))
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .set_pkce_challenge(challenge);
    if let Some(p) = &q.persona {
        request = request.add_extra_param("login_hint", p.clone());
    }
    let (url, _) = request.url();
    auth.session.insert(OAUTH_STATE_KEY, &nonce).await?;
    Ok(Redirect::to(url.as_str()))
}

#[derive(Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

fn oauth_failure(code: &str) -> Response {
    Redirect::to(&format!("/login?error={code}")).into_response()
}

/// The provider's redirect back: the `state` must be this browser's pending flow (used up
/// here either way); the code is exchanged with the PKCE verifier over the back channel; the
/// profile is read from the userinfo endpoint; the backend signs in, signs up, or refuses
/// with `OAuthAccountNotLinked`, in one transaction.
async fn oauth_callback(
    State(state): State<AppState>,
    mut auth: AuthSession,
    Query(q): Query<CallbackQuery>,
) -> Result<Response, AppError> {
    let pending: Option<String> = auth.session.remove(OAUTH_STATE_KEY).await?;
    let Some(nonce) = pending.filter(|n| q.state.as_deref() == Some(n.as_str())) else {
        return Ok(oauth_failure("OAuthState"));
    };
    if q.error.is_some() {
        return Ok(oauth_failure("AccessDenied"));
    }
    let Some(code) = q.code else {
        return Ok(oauth_failure("OAuthCallback"));
    };
    let http = state.http.clone();
    let send = move |r| {
        let http = http.clone();
        async move { http.send(r).await }
    };
    let token = match state
        .oauth
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(pkce_verifier(&state.keys, &nonce))
        .request_async(&send)
        .await
    {
        Ok(t) => t,
        Err(e) => {
            // oauth2's error messages carry the provider's error code, never the secrets.
            eprintln!("axum_login example: code exchange failed: {e}");
            return Ok(oauth_failure("OAuthCallback"));
        }
    };
    let access_token = token.access_token().secret().clone();
    let info = match state
        .http
        .userinfo(&state.userinfo_url, &access_token)
        .await
    {
        Ok(i) => i,
        Err(e) => {
            eprintln!("axum_login example: userinfo failed: {e}");
            return Ok(oauth_failure("OAuthCallback"));
        }
    };
    let now = auth.backend.db().now();
    let creds = OAuthCredentials {
        account: NewAccount {
            provider_type: "oauth".into(),
            provider_id: PROVIDER_ID.into(),
            provider_account_id: info.sub,
            access_token: Some(access_token),
            refresh_token: token.refresh_token().map(|t| t.secret().clone()),
            access_token_expires: token
                .expires_in()
                .and_then(|d| chrono::TimeDelta::from_std(d).ok())
                .and_then(|d| now.checked_add_signed(d)),
            token_type: Some("bearer".into()),
            scope: token
                .scopes()
                .map(|s| s.iter().map(|x| x.as_str()).collect::<Vec<_>>().join(" ")),
            ..NewAccount::default()
        },
        profile: OAuthProfile {
            name: info.name,
            email: info.email,
            email_verified: info.email_verified,
            image: None,
        },
    };
    match auth.authenticate(Credentials::OAuth(creds)).await {
        Ok(Some(user)) => {
            sign_in(&mut auth, &user).await?;
            Ok(Redirect::to("/").into_response())
        }
        Ok(None) => Ok(oauth_failure("OAuthCallback")),
        Err(axum_login::Error::Backend(Error::OAuthAccountNotLinked)) => {
            Ok(oauth_failure("OAuthAccountNotLinked"))
        }
        Err(e) => Err(e.into()),
    }
}
