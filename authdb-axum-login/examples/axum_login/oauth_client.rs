//! The app's side of OAuth, through the `oauth2` crate: the client configuration for the mock
//! provider, and the HTTP client its back-channel requests go through — `oauth2` without its
//! reqwest feature, so a few lines over `ureq` (already a dependency), run on tokio's blocking
//! pool.

use std::fmt;
use std::time::Duration;

use oauth2::basic::BasicClient;
use oauth2::{
    AuthType, AuthUrl, ClientId, ClientSecret, EndpointNotSet, EndpointSet, HttpRequest,
    HttpResponse, RedirectUrl, TokenUrl,
};
use serde::Deserialize;

use crate::mock_provider::CLIENT_ID;

/// `oauth2`'s basic client with an authorization and a token endpoint set.
pub type Client =
    BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

/// The client for the mock provider served under `base_url`, returning to `redirect_uri`.
/// The client secret goes in the token request's body (`client_secret_post`).
pub fn client(base_url: &str, redirect_uri: &str, client_secret: &str) -> Result<Client, String> {
    let url = |path: &str| format!("{base_url}{path}");
    Ok(BasicClient::new(ClientId::new(CLIENT_ID.to_owned()))
        .set_client_secret(ClientSecret::new(client_secret.to_owned()))
        .set_auth_type(AuthType::RequestBody)
        .set_auth_uri(AuthUrl::new(url("/mock-oauth/authorize")).map_err(|e| e.to_string())?)
        .set_token_uri(TokenUrl::new(url("/mock-oauth/token")).map_err(|e| e.to_string())?)
        .set_redirect_uri(RedirectUrl::new(redirect_uri.to_owned()).map_err(|e| e.to_string())?))
}

/// A failed back-channel request. Its message never carries a token or code.
#[derive(Debug)]
pub struct HttpError(String);

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HttpError {}

/// The back-channel HTTP client: no redirects followed (RFC 6749 §5.2 answers errors
/// directly), statuses returned rather than raised, a 10-second limit per request.
#[derive(Clone)]
pub struct Http {
    agent: ureq::Agent,
}

impl Http {
    /// A client.
    pub fn new() -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .into();
        Self { agent }
    }

    /// Sends one request (what `oauth2`'s `request_async` calls), on the blocking pool.
    pub async fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let agent = self.agent.clone();
        tokio::task::spawn_blocking(move || {
            let resp = agent
                .run(request)
                .map_err(|e| HttpError(format!("request failed: {e}")))?;
            let (parts, mut body) = resp.into_parts();
            let body = body
                .read_to_vec()
                .map_err(|e| HttpError(format!("response unreadable: {e}")))?;
            Ok(HttpResponse::from_parts(parts, body))
        })
        .await
        .map_err(|e| HttpError(format!("request task: {e}")))?
    }

    /// The provider's userinfo for an access token.
    pub async fn userinfo(&self, url: &str, access_token: &str) -> Result<UserInfo, HttpError> {
        let request = axum::http::Request::builder()
            .method("GET")
            .uri(url)
            .header("authorization", format!("Bearer {access_token}"))
            .header("accept", "application/json")
            .body(Vec::new())
            .map_err(|e| HttpError(format!("userinfo request: {e}")))?;
        let resp = self.send(request).await?;
        if !resp.status().is_success() {
            return Err(HttpError(format!("userinfo answered {}", resp.status())));
        }
        serde_json::from_slice(resp.body())
            .map_err(|e| HttpError(format!("userinfo unreadable: {e}")))
    }
}

/// An OpenID Connect userinfo answer (the fields the app uses).
#[derive(Deserialize)]
pub struct UserInfo {
    /// The person's id at the provider.
    pub sub: String,
    /// Display name.
    pub name: Option<String>,
    /// Email address.
    pub email: Option<String>,
    /// Whether the provider verified the address.
    #[serde(default)]
    pub email_verified: bool,
}
