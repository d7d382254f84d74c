//! A mock OAuth 2.0 provider ("Mock OAuth") served by the example app itself, so the whole
//! authorization-code flow runs offline: the app redirects the browser to
//! `/mock-oauth/authorize`, the person picks one of a few fixed identities, the provider
//! redirects back to `/callback/mock` with a one-time code, and the app exchanges the code at
//! `/mock-oauth/token` with a real HTTP request (the back channel), authenticated by a client
//! secret and by PKCE (S256): the authorize request carries `code_challenge`, and the token
//! request must bring the `code_verifier` it was made from, so an intercepted code is useless.
//!
//! To keep it small, the token response carries the profile too (as an OpenID Connect ID token
//! would), form-encoded: `access_token`, `refresh_token`, `expires_in`, `sub`, `name`, `email`,
//! `email_verified`. The authorize page lets the tester pick the access token's lifetime
//! (`expires_in`, any `i64`), to try what the app does with absurd values.

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
use crate::security::{pkce_challenge, valid_pkce_verifier};

/// The provider id accounts are linked under.
pub const PROVIDER_ID: &str = "mock";
/// The app's client id at the provider.
pub const CLIENT_ID: &str = "authdb-web";
/// How long an authorization code can be exchanged.
const CODE_LIFETIME: Duration = Duration::from_secs(60);
/// The access token lifetime the authorize page proposes.
pub const DEFAULT_EXPIRES_IN: i64 = 3600;

/// One identity the mock provider can sign in as.
pub struct Persona {
    /// The user's id at the provider (`sub`).
    pub id: &'static str,
    /// Display name.
    pub name: &'static str,
    /// Email, if the provider shares one.
    pub email: Option<&'static str>,
    /// Whether the provider has verified that the person controls that address. Many
    /// providers let anyone type any address into a profile: such an email proves nothing.
    pub email_verified: bool,
}

/// The identities the mock provider knows.
pub const PERSONAS: &[Persona] = &[
    Persona {
        id: "1001",
        name: "Ada Lovelace",
        email: Some("ada@example.com"),
        email_verified: true,
    },
    Persona {
        id: "1002",
        name: "Grace Hopper",
        email: Some("grace@example.com"),
        email_verified: true,
    },
    Persona {
        id: "1003",
        name: "Alan Turing",
        email: None,
        email_verified: false,
    },
    // A name full of markup, to show that pages escape what providers send.
    Persona {
        id: "1004",
        name: "<script>alert('Mallory')</script> & co",
        email: Some("mallory@example.com"),
        email_verified: true,
    },
    // An account whose profile claims Ada's address without the provider having verified it:
    // the pre-hijacking attempt. The app neither stores nor matches such an email.
    Persona {
        id: "1005",
        name: "Eve",
        email: Some("ada@example.com"),
        email_verified: false,
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
    /// Whether the provider says it verified that address.
    pub email_verified: bool,
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
            .field("email_verified", &self.email_verified)
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

struct Grant {
    persona: &'static Persona,
    redirect_uri: String,
    code_challenge: String,
    expires_in: i64,
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

    /// Where the app sends the browser to start a sign-in: `state` comes back unchanged,
    /// `code_challenge` is `base64url(sha256(code_verifier))` (PKCE, S256).
    pub fn authorize_url(&self, state: &str, code_challenge: &str) -> String {
        format!(
            "{}/mock-oauth/authorize?response_type=code&client_id={}&redirect_uri={}&state={}\
             &code_challenge={}&code_challenge_method=S256",
            self.base_url,
            url_encode(CLIENT_ID),
            url_encode(&self.redirect_uri),
            url_encode(state),
            url_encode(code_challenge),
        )
    }

    /// The client side of the back channel: exchanges `code` at the token endpoint, proving
    /// with `code_verifier` that this client started the flow. Blocking (an HTTP request):
    /// call it from `spawn_blocking`.
    pub fn exchange(&self, code: &str, code_verifier: &str) -> Result<Profile, String> {
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
                ("code_verifier", code_verifier),
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
            email_verified: field("email_verified").as_deref() == Some("true"),
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
    #[serde(default)]
    code_challenge: String,
    #[serde(default)]
    code_challenge_method: String,
}

/// A PKCE S256 challenge: 43 base64url characters (a SHA-256 digest).
fn valid_challenge(method: &str, challenge: &str) -> bool {
    method == "S256"
        && challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
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
    // PKCE is required (OAuth 2.1), with S256 only: `plain` would send the verifier itself.
    if !valid_challenge(&q.code_challenge_method, &q.code_challenge) {
        return bad_request("PKCE required: code_challenge with code_challenge_method=S256.");
    }
    let mut choices = String::new();
    for (i, persona) in PERSONAS.iter().enumerate() {
        let _ = writeln!(
            choices,
            r#"<p><label><input type="radio" name="persona" value="{}"{}> {} <small>(id {}, {}{})</small></label></p>"#,
            escape(persona.id),
            if i == 0 { " checked" } else { "" },
            escape(persona.name),
            escape(persona.id),
            escape(persona.email.unwrap_or("no email shared")),
            match (persona.email, persona.email_verified) {
                (Some(_), true) => ", verified",
                (Some(_), false) => ", not verified",
                (None, _) => "",
            },
        );
    }
    let body = format!(
        r#"<p>This page belongs to the mock provider. <strong>{client}</strong> asks to know who you are.
Sign in to the provider as:</p>
<form method="post" action="/mock-oauth/authorize">
{csrf}{client_id}{redirect_uri}{state}{challenge}
{choices}<p><label>Access token lifetime (<code>expires_in</code>, seconds)
<input type="text" name="expires_in" value="{expires_in}" inputmode="numeric"></label></p>
<button type="submit" name="decision" value="allow">Allow</button>
<button type="submit" name="decision" value="deny">Deny</button>
</form>"#,
        client = escape(CLIENT_ID),
        csrf = html::csrf_field(ctx.csrf()),
        client_id = html::hidden("client_id", &q.client_id),
        redirect_uri = html::hidden("redirect_uri", &q.redirect_uri),
        state = html::hidden("state", &q.state),
        challenge = html::hidden("code_challenge", &q.code_challenge),
        expires_in = DEFAULT_EXPIRES_IN,
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
    code_challenge: String,
    #[serde(default)]
    persona: String,
    #[serde(default)]
    expires_in: String,
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
    if !valid_challenge("S256", &f.code_challenge) {
        return Ok(bad_request("PKCE required."));
    }
    let expires_in = if f.expires_in.trim().is_empty() {
        DEFAULT_EXPIRES_IN
    } else {
        match f.expires_in.trim().parse::<i64>() {
            Ok(v) => v,
            Err(_) => return Ok(bad_request("expires_in must be a whole number of seconds.")),
        }
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
                code_challenge: f.code_challenge.clone(),
                expires_in,
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
    #[serde(default)]
    code_verifier: String,
}

fn token_error(status: StatusCode, code: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/x-www-form-urlencoded")],
        format!("error={code}"),
    )
        .into_response()
}

/// The token endpoint: one use per code, only for the client that asked for it and only with
/// the PKCE verifier of its challenge.
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
    // Removed whether or not it is still valid: a code works at most once, and a wrong
    // verifier spends it too (RFC 7636 §4.6: the attempt fails; the code is not retried).
    let grant = p.grants.lock().remove(&f.code);
    let Some(grant) = grant.filter(|g| {
        g.expires > Instant::now()
            && g.redirect_uri == f.redirect_uri
            && valid_pkce_verifier(&f.code_verifier)
            && ct_eq(&pkce_challenge(&f.code_verifier), &g.code_challenge)
    }) else {
        return Ok(token_error(StatusCode::BAD_REQUEST, "invalid_grant"));
    };
    let persona = grant.persona;
    let body = format!(
        "access_token={}&token_type=bearer&expires_in={}&refresh_token={}&sub={}&name={}&email={}\
         &email_verified={}",
        random_token()?,
        grant.expires_in,
        random_token()?,
        url_encode(persona.id),
        url_encode(persona.name),
        url_encode(persona.email.unwrap_or("")),
        persona.email.is_some() && persona.email_verified,
    );
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/x-www-form-urlencoded")],
        body,
    )
        .into_response())
}
