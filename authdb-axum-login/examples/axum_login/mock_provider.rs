//! A mock OAuth 2.0 provider served by the example itself on loopback, so the
//! authorization-code flow with PKCE runs offline, through real HTTP requests:
//!
//! - `GET /mock-oauth/authorize`: checks the client, its exact redirect URI and the PKCE
//!   challenge (S256 only), then signs in as the identity named by `login_hint` and redirects
//!   back with a one-time code and the unchanged `state`; without a hint it shows the
//!   identities to choose from (links adding the hint). A real provider would ask for a
//!   password and consent here.
//! - `POST /mock-oauth/token` (the back channel): one use per code, only for the client that
//!   asked for it (client secret in the body), with the same redirect URI, and only with the
//!   `code_verifier` whose S256 challenge the authorize request carried. Answers JSON as
//!   RFC 6749 §5 says: an access token, a refresh token, `expires_in`.
//! - `GET /mock-oauth/userinfo`: the profile for a bearer access token (`sub`, `name`,
//!   `email`, `email_verified`), as OpenID Connect's userinfo endpoint.
//!
//! Self-contained apart from `crate::security` (PKCE) and `crate::html` (escaping), the
//! modules `examples/web` has too.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{FromRef, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use parking_lot::Mutex;
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::html::{escape, url_encode};
use crate::security::{pkce_challenge, valid_pkce_verifier};

/// The provider id accounts are linked under.
pub const PROVIDER_ID: &str = "mock";
/// The app's client id at the provider.
pub const CLIENT_ID: &str = "authdb-axum-login-example";
/// How long an authorization code can be exchanged.
const CODE_LIFETIME: Duration = Duration::from_secs(60);
/// How long an access token is valid.
const TOKEN_LIFETIME: Duration = Duration::from_secs(3600);
/// Most codes and access tokens kept at once; past that the oldest are dropped.
const MAX_GRANTS: usize = 10_000;

/// One identity the provider can sign in as.
#[derive(Debug)]
pub struct Persona {
    /// The person's id at the provider (`sub`).
    pub id: &'static str,
    /// Display name.
    pub name: &'static str,
    /// Email, if the provider shares one.
    pub email: Option<&'static str>,
    /// Whether the provider verified that the person controls that address.
    pub email_verified: bool,
}

/// The identities the provider knows.
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
    // A profile claiming Ada's address without the provider having verified it.
    Persona {
        id: "1005",
        name: "Eve",
        email: Some("ada@example.com"),
        email_verified: false,
    },
];

fn persona(id: &str) -> Option<&'static Persona> {
    PERSONAS.iter().find(|p| p.id == id)
}

struct Grant {
    persona: &'static Persona,
    redirect_uri: String,
    code_challenge: String,
    expires: Instant,
}

/// The provider's registered client and what it has issued.
pub struct Provider {
    redirect_uri: String,
    client_secret_hash: [u8; 32],
    codes: Mutex<HashMap<String, Grant>>,
    access_tokens: Mutex<HashMap<String, (&'static Persona, Instant)>>,
}

impl Provider {
    /// A provider with one registered client: [`CLIENT_ID`], `client_secret`, and the one
    /// redirect URI it accepts.
    pub fn new(redirect_uri: &str, client_secret: &str) -> Self {
        Self {
            redirect_uri: redirect_uri.to_owned(),
            client_secret_hash: Sha256::digest(client_secret.as_bytes()).into(),
            codes: Mutex::new(HashMap::new()),
            access_tokens: Mutex::new(HashMap::new()),
        }
    }

    fn client_ok(&self, client_id: &str, redirect_uri: &str) -> bool {
        client_id == CLIENT_ID && redirect_uri == self.redirect_uri
    }

    /// Compares digests, so the comparison's time says nothing about the secret.
    fn secret_ok(&self, client_secret: &str) -> bool {
        <[u8; 32]>::from(Sha256::digest(client_secret.as_bytes())) == self.client_secret_hash
    }
}

/// A random 64-hex-character value (codes and tokens).
fn random_value() -> Result<String, StatusCode> {
    authdb::backend::random_session_token().map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)
}

/// Drops expired entries, then the oldest ones while over [`MAX_GRANTS`].
fn prune<V>(map: &mut HashMap<String, V>, expires: impl Fn(&V) -> Instant) {
    let now = Instant::now();
    map.retain(|_, v| expires(v) > now);
    while map.len() >= MAX_GRANTS {
        let Some(oldest) = map
            .iter()
            .min_by_key(|(_, v)| expires(v))
            .map(|(k, _)| k.clone())
        else {
            break;
        };
        map.remove(&oldest);
    }
}

/// The provider's routes.
pub fn routes<S>() -> Router<S>
where
    Arc<Provider>: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/mock-oauth/authorize", get(authorize))
        .route("/mock-oauth/token", post(token))
        .route("/mock-oauth/userinfo", get(userinfo))
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
    #[serde(default)]
    login_hint: String,
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
        Html(format!(
            "<!doctype html><title>Mock OAuth</title><p>Mock OAuth: {}</p>",
            escape(message)
        )),
    )
        .into_response()
}

async fn authorize(
    State(p): State<Arc<Provider>>,
    Query(q): Query<AuthorizeQuery>,
) -> Result<Response, StatusCode> {
    if q.response_type != "code" || !p.client_ok(&q.client_id, &q.redirect_uri) {
        return Ok(bad_request("unknown client or redirect URI"));
    }
    // PKCE is required (OAuth 2.1), S256 only: `plain` would send the verifier itself.
    if !valid_challenge(&q.code_challenge_method, &q.code_challenge) {
        return Ok(bad_request(
            "PKCE required: code_challenge with code_challenge_method=S256",
        ));
    }
    let Some(who) = persona(&q.login_hint) else {
        let query = format!(
            "response_type=code&client_id={}&redirect_uri={}&state={}&code_challenge={}\
             &code_challenge_method=S256",
            url_encode(&q.client_id),
            url_encode(&q.redirect_uri),
            url_encode(&q.state),
            url_encode(&q.code_challenge),
        );
        let choices = PERSONAS.iter().fold(String::new(), |mut out, c| {
            let _ = write!(
                out,
                r#"<li><a href="/mock-oauth/authorize?{}&amp;login_hint={}">{}</a> ({})</li>"#,
                escape(&query),
                url_encode(c.id),
                escape(c.name),
                escape(c.email.unwrap_or("no email")),
            );
            out
        });
        return Ok(Html(format!(
            "<!doctype html><title>Mock OAuth</title><h1>Mock OAuth</h1>\
             <p>Sign in to the provider as:</p><ul>{choices}</ul>"
        ))
        .into_response());
    };
    let code = random_value()?;
    {
        let mut codes = p.codes.lock();
        prune(&mut codes, |g| g.expires);
        codes.insert(
            code.clone(),
            Grant {
                persona: who,
                redirect_uri: q.redirect_uri.clone(),
                code_challenge: q.code_challenge,
                expires: Instant::now() + CODE_LIFETIME,
            },
        );
    }
    let back = format!(
        "{}?code={}&state={}",
        q.redirect_uri,
        url_encode(&code),
        url_encode(&q.state)
    );
    Ok(Redirect::to(&back).into_response())
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
    (status, Json(json!({ "error": code }))).into_response()
}

async fn token(
    State(p): State<Arc<Provider>>,
    Form(f): Form<TokenForm>,
) -> Result<Response, StatusCode> {
    if f.client_id != CLIENT_ID || !p.secret_ok(&f.client_secret) {
        return Ok(token_error(StatusCode::UNAUTHORIZED, "invalid_client"));
    }
    if f.grant_type != "authorization_code" {
        return Ok(token_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
        ));
    }
    // Removed whatever happens next: a code works at most once, and a wrong verifier spends
    // it too (RFC 7636 §4.6: the attempt fails and the code is not retried).
    let grant = p.codes.lock().remove(&f.code);
    let Some(grant) = grant.filter(|g| {
        g.expires > Instant::now()
            && g.redirect_uri == f.redirect_uri
            && valid_pkce_verifier(&f.code_verifier)
            && pkce_challenge(&f.code_verifier) == g.code_challenge
    }) else {
        return Ok(token_error(StatusCode::BAD_REQUEST, "invalid_grant"));
    };
    let access_token = random_value()?;
    {
        let mut tokens = p.access_tokens.lock();
        prune(&mut tokens, |(_, expires)| *expires);
        tokens.insert(
            access_token.clone(),
            (grant.persona, Instant::now() + TOKEN_LIFETIME),
        );
    }
    Ok(Json(json!({
        "access_token": access_token,
        "token_type": "bearer",
        "expires_in": TOKEN_LIFETIME.as_secs(),
        "refresh_token": random_value()?,
        "scope": "openid profile email",
    }))
    .into_response())
}

async fn userinfo(State(p): State<Arc<Provider>>, headers: HeaderMap) -> Response {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let found = bearer.and_then(|t| {
        let tokens = p.access_tokens.lock();
        tokens
            .get(t)
            .filter(|(_, expires)| *expires > Instant::now())
            .map(|(who, _)| *who)
    });
    match found {
        Some(who) => Json(json!({
            "sub": who.id,
            "name": who.name,
            "email": who.email,
            "email_verified": who.email.is_some() && who.email_verified,
        }))
        .into_response(),
        None => token_error(StatusCode::UNAUTHORIZED, "invalid_token"),
    }
}
