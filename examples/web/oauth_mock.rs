//! A mock OAuth 2.0 provider ("Mock OAuth") served by the example app itself, so the whole
//! authorization-code flow runs offline: the app redirects the browser to
//! `/mock-oauth/authorize`, the person picks one of a few fixed identities, the provider
//! redirects back to `/callback/mock` with a one-time code, and the app exchanges the code at
//! `/mock-oauth/token` with a real HTTP request (the back channel), authenticated by a client
//! secret.
//!
//! To keep it small, the token response carries the profile too (as an OpenID Connect ID token
//! would), form-encoded: `access_token`, `refresh_token`, `expires_in`, `sub`, `name`, `email`.

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{FromRef, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use parking_lot::Mutex;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::app::{AppError, Ctx, ct_eq, random_token, redirect};
use crate::html::{self, escape, url_encode};

/// The provider id accounts are linked under.
pub const PROVIDER_ID: &str = "mock";
/// The app's client id at the provider.
pub const CLIENT_ID: &str = "authdb-web";
/// How long an authorization code can be exchanged.
const CODE_LIFETIME: Duration = Duration::from_secs(60);

/// One identity the mock provider can sign in as.
pub struct Persona {
    /// The user's id at the provider (`sub`).
    pub id: &'static str,
    /// Display name.
    pub name: &'static str,
    /// Email, if the provider shares one.
    pub email: Option<&'static str>,
}

/// The identities the mock provider knows.
pub const PERSONAS: &[Persona] = &[
    Persona {
        id: "1001",
        name: "Ada Lovelace",
        email: Some("ada@example.com"),
    },
    Persona {
        id: "1002",
        name: "Grace Hopper",
        email: Some("grace@example.com"),
    },
    Persona {
        id: "1003",
        name: "Alan Turing",
        email: None,
    },
    // A name full of markup, to show that pages escape what providers send.
    Persona {
        id: "1004",
        name: "<script>alert('Mallory')</script> & co",
        email: Some("mallory@example.com"),
    },
];

/// The persona with this provider account id.
pub fn persona(id: &str) -> Option<&'static Persona> {
    PERSONAS.iter().find(|p| p.id == id)
}

/// What the app learns from a successful code exchange.
pub struct Profile {
    /// The user's id at the provider.
    pub sub: String,
    /// Display name.
    pub name: Option<String>,
    /// Email address, if shared.
    pub email: Option<String>,
    /// OAuth access token (a secret).
    pub access_token: String,
    /// OAuth refresh token (a secret).
    pub refresh_token: Option<String>,
    /// Seconds until the access token expires.
    pub expires_in: Option<i64>,
}

impl fmt::Debug for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Profile")
            .field("sub", &self.sub)
            .field("name", &self.name)
            .field("email", &self.email)
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

struct Grant {
    persona: &'static Persona,
    redirect_uri: String,
    expires: Instant,
}

/// The provider's state (issued codes) and the app's client settings for it.
pub struct Provider {
    base_url: String,
    redirect_uri: String,
    client_secret: String,
    grants: Mutex<HashMap<String, Grant>>,
    agent: ureq::Agent,
}

impl Provider {
    /// The provider served under `base_url`; the client secret is derived from the app secret.
    pub fn new(base_url: &str, app_secret: &str) -> Self {
        let mut h = Sha256::new();
        h.update(b"authdb-web/mock-oauth-client-secret\0");
        h.update(app_secret.as_bytes());
        let client_secret = h.finalize().iter().fold(String::new(), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        });
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .into();
        Self {
            base_url: base_url.to_owned(),
            redirect_uri: format!("{base_url}/callback/mock"),
            client_secret,
            grants: Mutex::new(HashMap::new()),
            agent,
        }
    }

    /// Where the app sends the browser to start a sign-in.
    pub fn authorize_url(&self, state: &str) -> String {
        format!(
            "{}/mock-oauth/authorize?response_type=code&client_id={}&redirect_uri={}&state={}",
            self.base_url,
            url_encode(CLIENT_ID),
            url_encode(&self.redirect_uri),
            url_encode(state)
        )
    }

    /// The client side of the back channel: exchanges `code` at the token endpoint. Blocking
    /// (an HTTP request): call it from `spawn_blocking`.
    pub fn exchange(&self, code: &str) -> Result<Profile, String> {
        let url = format!("{}/mock-oauth/token", self.base_url);
        let mut resp = self
            .agent
            .post(&url)
            .send_form([
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", self.redirect_uri.as_str()),
                ("client_id", CLIENT_ID),
                ("client_secret", self.client_secret.as_str()),
            ])
            .map_err(|e| format!("token request failed: {e}"))?;
        let status = resp.status();
        let body = resp
            .body_mut()
            .read_to_string()
            .map_err(|e| format!("token response unreadable: {e}"))?;
        let fields: HashMap<String, String> = html::form_decode(&body).into_iter().collect();
        if status != StatusCode::OK.as_u16() {
            return Err(format!(
                "token endpoint answered {status}: {}",
                fields.get("error").map_or("no error code", String::as_str)
            ));
        }
        let field = |k: &str| fields.get(k).filter(|v| !v.is_empty()).cloned();
        Ok(Profile {
            sub: field("sub").ok_or("token response without sub")?,
            name: field("name"),
            email: field("email"),
            access_token: field("access_token").ok_or("token response without access_token")?,
            refresh_token: field("refresh_token"),
            expires_in: field("expires_in").and_then(|v| v.parse().ok()),
        })
    }

    fn client_ok(&self, client_id: &str, redirect_uri: &str) -> bool {
        client_id == CLIENT_ID && redirect_uri == self.redirect_uri
    }
}

/// The provider's routes: the authorize page (GET shows it, POST approves or denies) and the
/// token endpoint.
pub fn routes<S>() -> Router<S>
where
    Arc<Provider>: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route(
            "/mock-oauth/authorize",
            get(authorize_page).post(authorize_submit),
        )
        .route("/mock-oauth/token", post(token))
}

#[derive(Deserialize)]
struct AuthorizeQuery {
    #[serde(default)]
    response_type: String,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    redirect_uri: String,
    #[serde(default)]
    state: String,
}

fn bad_request(message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Html(html::error_page("Mock OAuth: bad request", message)),
    )
        .into_response()
}

async fn authorize_page(
    State(p): State<Arc<Provider>>,
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<AuthorizeQuery>,
) -> Response {
    if q.response_type != "code" || !p.client_ok(&q.client_id, &q.redirect_uri) {
        return bad_request("Unknown client or redirect URI.");
    }
    let mut choices = String::new();
    for (i, persona) in PERSONAS.iter().enumerate() {
        let _ = writeln!(
            choices,
            r#"<p><label><input type="radio" name="persona" value="{}"{}> {} <small>(id {}, {})</small></label></p>"#,
            escape(persona.id),
            if i == 0 { " checked" } else { "" },
            escape(persona.name),
            escape(persona.id),
            escape(persona.email.unwrap_or("no email shared")),
        );
    }
    let body = format!(
        r#"<p>This page belongs to the mock provider. <strong>{client}</strong> asks to know who you are.
Sign in to the provider as:</p>
<form method="post" action="/mock-oauth/authorize">
{csrf}{client_id}{redirect_uri}{state}
{choices}<button type="submit" name="decision" value="allow">Allow</button>
<button type="submit" name="decision" value="deny">Deny</button>
</form>"#,
        client = escape(CLIENT_ID),
        csrf = html::csrf_field(ctx.csrf()),
        client_id = html::hidden("client_id", &q.client_id),
        redirect_uri = html::hidden("redirect_uri", &q.redirect_uri),
        state = html::hidden("state", &q.state),
    );
    Html(html::layout("Mock OAuth: sign in", None, &body)).into_response()
}

#[derive(Deserialize)]
struct AuthorizeForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    redirect_uri: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    persona: String,
    #[serde(default)]
    decision: String,
}

async fn authorize_submit(
    State(p): State<Arc<Provider>>,
    Extension(ctx): Extension<Ctx>,
    Form(f): Form<AuthorizeForm>,
) -> Result<Response, AppError> {
    ctx.check_csrf(&f.csrf_token)?;
    if !p.client_ok(&f.client_id, &f.redirect_uri) {
        return Ok(bad_request("Unknown client or redirect URI."));
    }
    if f.decision != "allow" {
        return Ok(redirect(&format!(
            "{}?error=access_denied&state={}",
            f.redirect_uri,
            url_encode(&f.state)
        )));
    }
    let Some(persona) = persona(&f.persona) else {
        return Ok(bad_request("Unknown identity."));
    };
    let code = random_token()?;
    {
        let mut grants = p.grants.lock();
        let now = Instant::now();
        grants.retain(|_, g| g.expires > now);
        grants.insert(
            code.clone(),
            Grant {
                persona,
                redirect_uri: f.redirect_uri.clone(),
                expires: now + CODE_LIFETIME,
            },
        );
    }
    Ok(redirect(&format!(
        "{}?code={}&state={}",
        f.redirect_uri,
        url_encode(&code),
        url_encode(&f.state)
    )))
}

#[derive(Deserialize)]
struct TokenForm {
    #[serde(default)]
    grant_type: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    redirect_uri: String,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    client_secret: String,
}

fn token_error(status: StatusCode, code: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/x-www-form-urlencoded")],
        format!("error={code}"),
    )
        .into_response()
}

/// The token endpoint: one use per code, only for the client that asked for it.
async fn token(
    State(p): State<Arc<Provider>>,
    Form(f): Form<TokenForm>,
) -> Result<Response, AppError> {
    if f.client_id != CLIENT_ID || !ct_eq(&f.client_secret, &p.client_secret) {
        return Ok(token_error(StatusCode::UNAUTHORIZED, "invalid_client"));
    }
    if f.grant_type != "authorization_code" {
        return Ok(token_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
        ));
    }
    // Removed whether or not it is still valid: a code works at most once.
    let grant = p.grants.lock().remove(&f.code);
    let Some(grant) =
        grant.filter(|g| g.expires > Instant::now() && g.redirect_uri == f.redirect_uri)
    else {
        return Ok(token_error(StatusCode::BAD_REQUEST, "invalid_grant"));
    };
    let persona = grant.persona;
    let body = format!(
        "access_token={}&token_type=bearer&expires_in=3600&refresh_token={}&sub={}&name={}&email={}",
        random_token()?,
        random_token()?,
        url_encode(persona.id),
        url_encode(persona.name),
        url_encode(persona.email.unwrap_or("")),
    );
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/x-www-form-urlencoded")],
        body,
    )
        .into_response())
}
