//! End-to-end tests of the axum-login example (examples/axum_login): the app runs in-process on
//! an ephemeral loopback port, in a runtime of its own, on a database file the test opened,
//! and is driven over HTTP by ureq agents that keep cookies like browsers. Every test also
//! checks what the database holds.

#[path = "../examples/axum_login/app.rs"]
mod app;
#[allow(dead_code, clippy::cast_possible_truncation)]
#[path = "../../examples/web/html.rs"]
mod html;
#[path = "../examples/axum_login/mock_provider.rs"]
mod mock_provider;
#[path = "../examples/axum_login/oauth_client.rs"]
mod oauth_client;
#[path = "../examples/axum_login/pages.rs"]
mod pages;
#[allow(dead_code)]
#[path = "../../examples/web/security.rs"]
mod security;

use std::time::Duration;

use authdb::prelude::*;
use authdb::{AuthDb, Durability, EncryptionKey, UserId, UserPatch};
use serde_json::json;
use ureq::ResponseExt;

const SECRET: &str = "test secret for the axum-login example, 32+ bytes";
const ORIGIN_EVIL: &str = "http://evil.example";

// ---------------------------------------------------------------------------------------------
// Harness

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn open(&self) -> AuthDb {
        AuthDb::builder()
            .encryption_key(EncryptionKey::from_secret(SECRET).unwrap())
            .durability(Durability::Immediate)
            .open(self.dir.path().join("app.redb"))
            .unwrap()
    }
}

/// The app on 127.0.0.1:0 in its own tokio runtime; stopping it drops every database handle
/// it held.
struct Server {
    base: String,
    rt: Option<tokio::runtime::Runtime>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Server {
    fn start(db: &AuthDb) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let cfg = app::Config {
            base_url: base.clone(),
            secure_cookies: false,
            secret: SECRET.to_owned(),
        };
        let router = app::router(db, &cfg).unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let done = rt.spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
        });
        Self {
            base,
            rt: Some(rt),
            stop: Some(stop),
            done: Some(done),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let (Some(rt), Some(done)) = (self.rt.take(), self.done.take()) {
            // Idle keep-alive connections of the test's agents would hold a graceful
            // shutdown open: give it a moment, then drop the runtime (which ends them).
            let _ = rt.block_on(async { tokio::time::timeout(Duration::from_secs(2), done).await });
            rt.shutdown_timeout(Duration::from_secs(10));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// One response, read whole.
struct Page {
    status: u16,
    /// The final URL (after redirects).
    url: String,
    location: Option<String>,
    body: String,
}

impl Page {
    /// The path and query of the final URL.
    fn path(&self) -> &str {
        let rest = self.url.split_once("://").map_or(&*self.url, |(_, r)| r);
        rest.find('/').map_or("/", |i| &rest[i..])
    }

    fn signed_in(&self) -> bool {
        self.body.contains(r#"data-signed-in="true""#)
    }

    fn marker(&self, attr: &str) -> Option<&str> {
        let key = format!(r#"{attr}=""#);
        let i = self.body.find(&key)? + key.len();
        Some(&self.body[i..i + self.body[i..].find('"')?])
    }

    fn error(&self) -> Option<&str> {
        self.marker("data-error")
    }

    fn devices(&self) -> usize {
        self.marker("data-devices").unwrap().parse().unwrap()
    }
}

/// A browser: a cookie-keeping ureq agent that sends the app's `Origin` on POSTs.
struct Browser {
    agent: ureq::Agent,
    origin: String,
}

impl Browser {
    fn new(server: &Server) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(10)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        Self {
            agent,
            origin: server.base.clone(),
        }
    }

    fn read(mut resp: ureq::http::Response<ureq::Body>) -> Page {
        Page {
            status: resp.status().as_u16(),
            url: resp.get_uri().to_string(),
            location: resp
                .headers()
                .get("location")
                .map(|v| v.to_str().unwrap().to_owned()),
            body: resp.body_mut().read_to_string().unwrap(),
        }
    }

    fn get(&self, url: &str) -> Page {
        Self::read(self.agent.get(url).call().unwrap())
    }

    /// A GET that does not follow a redirect.
    fn get_once(&self, url: &str) -> Page {
        let resp = self
            .agent
            .get(url)
            .config()
            .max_redirects(0)
            .build()
            .call()
            .unwrap();
        Self::read(resp)
    }

    fn post_from(&self, origin: &str, url: &str, form: &[(&str, &str)]) -> Page {
        let resp = self
            .agent
            .post(url)
            .header("origin", origin)
            .send_form(form.iter().copied())
            .unwrap();
        Self::read(resp)
    }

    fn post(&self, url: &str, form: &[(&str, &str)]) -> Page {
        self.post_from(&self.origin.clone(), url, form)
    }

    fn sign_up(&self, s: &Server, email: &str, password: &str) -> Page {
        self.post(
            &s.url("/signup"),
            &[("name", "Ada"), ("email", email), ("password", password)],
        )
    }

    fn log_in(&self, s: &Server, email: &str, password: &str) -> Page {
        self.post(
            &s.url("/login"),
            &[("email", email), ("password", password)],
        )
    }
}

fn user_id(db: &AuthDb, email: &str) -> UserId {
    db.get_user_by_email(email).unwrap().unwrap().id
}

/// The query parameter `name` of a URL (percent-decoded).
fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    html::form_decode(query)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

// ---------------------------------------------------------------------------------------------
// Passwords

#[test]
fn sign_up_sign_in_wrong_password_and_protected_routes() {
    let env = Env::new();
    let db = env.open();
    let s = Server::start(&db);
    let b = Browser::new(&s);

    // Protected route, signed out: to the sign-in page, remembering where to return.
    let p = b.get(&s.url("/protected"));
    assert_eq!(p.path(), "/login?next=%2Fprotected");
    assert!(!p.signed_in());

    let p = b.sign_up(&s, "ada@example.com", "correct horse battery");
    assert_eq!((p.status, p.path()), (200, "/protected"));
    assert!(p.signed_in());
    assert_eq!(p.marker("data-email"), Some("ada@example.com"));
    assert_eq!(p.devices(), 1);
    let ada = user_id(&db, "ada@example.com");
    // The session record is in the file, indexed under the user.
    assert_eq!(db.web_session_list_for_user(&ada).unwrap().len(), 1);

    // The same email again, from another browser: refused.
    let other = Browser::new(&s);
    let p = other.sign_up(&s, "ADA@example.com", "another password");
    assert_eq!((p.status, p.error()), (409, Some("EmailTaken")));
    assert!(!p.signed_in());

    // Sign out, then the protected route is closed again.
    let p = b.post(&s.url("/logout"), &[]);
    assert!(!p.signed_in());
    assert_eq!(
        b.get(&s.url("/protected")).path(),
        "/login?next=%2Fprotected"
    );
    assert!(db.web_session_list_for_user(&ada).unwrap().is_empty());

    // Wrong password and unknown email: the same refusal.
    let p = b.log_in(&s, "ada@example.com", "wrong horse battery");
    assert_eq!((p.status, p.error()), (401, Some("CredentialsSignin")));
    let p = b.log_in(&s, "nobody@example.com", "correct horse battery");
    assert_eq!((p.status, p.error()), (401, Some("CredentialsSignin")));
    // An over-long password is refused the same way, not an error page.
    let long = "x".repeat(5000);
    let p = b.log_in(&s, "ada@example.com", &long);
    assert_eq!((p.status, p.error()), (401, Some("CredentialsSignin")));

    // The right one, returning to `next`.
    let p = b.post(
        &s.url("/login"),
        &[
            ("email", "ada@example.com"),
            ("password", "correct horse battery"),
            ("next", "/protected"),
        ],
    );
    assert_eq!(p.path(), "/protected");
    assert!(p.signed_in());
    // `next` may not leave the site.
    b.post(&s.url("/logout"), &[]);
    let p = b.post(
        &s.url("/login"),
        &[
            ("email", "ada@example.com"),
            ("password", "correct horse battery"),
            ("next", "//evil.example/"),
        ],
    );
    assert_eq!(p.url, s.url("/"));
    assert!(p.signed_in());
}

#[test]
fn cross_site_posts_are_refused() {
    let env = Env::new();
    let db = env.open();
    let s = Server::start(&db);
    let b = Browser::new(&s);
    b.sign_up(&s, "ada@example.com", "correct horse battery");
    // Login CSRF and a forged "sign out everywhere": refused before any session work.
    let other = Browser::new(&s);
    let p = other.post_from(
        ORIGIN_EVIL,
        &s.url("/login"),
        &[
            ("email", "ada@example.com"),
            ("password", "correct horse battery"),
        ],
    );
    assert_eq!((p.status, p.error()), (403, Some("Origin")));
    let p = b.post_from(ORIGIN_EVIL, &s.url("/signout-everywhere"), &[]);
    assert_eq!(p.status, 403);
    assert!(b.get(&s.url("/protected")).signed_in());
}

#[test]
fn password_change_signs_out_the_other_client() {
    let env = Env::new();
    let db = env.open();
    let s = Server::start(&db);
    let (a, b) = (Browser::new(&s), Browser::new(&s));
    a.sign_up(&s, "ada@example.com", "first password");
    let p = b.log_in(&s, "ada@example.com", "first password");
    assert!(p.signed_in());
    assert_eq!(a.get(&s.url("/protected")).devices(), 2);

    // The current password must be right.
    let p = a.post(
        &s.url("/password"),
        &[
            ("current_password", "nope"),
            ("new_password", "second password"),
        ],
    );
    assert_eq!((p.status, p.error()), (403, Some("CredentialsSignin")));
    assert!(b.get(&s.url("/protected")).signed_in());

    let p = a.post(
        &s.url("/password"),
        &[
            ("current_password", "first password"),
            ("new_password", "second password"),
        ],
    );
    // The client that changed it stays signed in, on a new session; the other is out.
    assert_eq!(p.path(), "/protected");
    assert!(p.signed_in());
    assert_eq!(p.devices(), 1);
    let p = b.get(&s.url("/protected"));
    assert_eq!(p.path(), "/login?next=%2Fprotected");
    assert!(!p.signed_in());

    assert_eq!(
        b.log_in(&s, "ada@example.com", "first password").status,
        401
    );
    assert!(
        b.log_in(&s, "ada@example.com", "second password")
            .signed_in()
    );
}

#[test]
fn sign_out_everywhere_ends_every_session() {
    let env = Env::new();
    let db = env.open();
    let s = Server::start(&db);
    let (a, b) = (Browser::new(&s), Browser::new(&s));
    a.sign_up(&s, "ada@example.com", "correct horse battery");
    b.log_in(&s, "ada@example.com", "correct horse battery");
    let ada = user_id(&db, "ada@example.com");
    assert_eq!(db.web_session_list_for_user(&ada).unwrap().len(), 2);
    let stamp = db.get_user(&ada).unwrap().unwrap().security_stamp;

    let p = a.post(&s.url("/signout-everywhere"), &[]);
    assert_eq!(p.url, s.url("/"));
    assert!(!p.signed_in());
    assert!(!b.get(&s.url("/protected")).signed_in());
    assert!(db.web_session_list_for_user(&ada).unwrap().is_empty());
    assert_ne!(db.get_user(&ada).unwrap().unwrap().security_stamp, stamp);
    // The password still works.
    assert!(
        b.log_in(&s, "ada@example.com", "correct horse battery")
            .signed_in()
    );
}

#[test]
fn restart_on_the_same_file_keeps_the_login() {
    let env = Env::new();
    let db = env.open();
    let mut s = Server::start(&db);
    let b = Browser::new(&s);
    assert!(
        b.sign_up(&s, "ada@example.com", "correct horse battery")
            .signed_in()
    );
    s.shutdown();
    drop(db);

    // A new process would do the same: open the file, serve again (on another port; cookies
    // are not bound to ports).
    let db = env.open();
    let s = Server::start(&db);
    let p = b.get(&s.url("/protected"));
    assert_eq!(p.path(), "/protected");
    assert!(p.signed_in());
    assert_eq!(p.marker("data-email"), Some("ada@example.com"));
}

#[test]
fn permissions_gate_the_admin_route() {
    let env = Env::new();
    let db = env.open();
    let s = Server::start(&db);
    let b = Browser::new(&s);
    assert_eq!(b.get(&s.url("/admin")).path(), "/login?next=%2Fadmin");
    b.sign_up(&s, "ada@example.com", "correct horse battery");
    assert_eq!(b.get(&s.url("/admin")).status, 403);

    let ada = user_id(&db, "ada@example.com");
    let mut extra = authdb::Extra::new();
    extra.insert("permissions".into(), json!(["admin"]));
    db.patch_user(
        &ada,
        &UserPatch {
            extra: Some(extra),
            ..UserPatch::default()
        },
    )
    .unwrap();
    // Applies at the next request, without signing out.
    let p = b.get(&s.url("/admin"));
    assert_eq!(p.status, 200);
    assert_eq!(p.marker("data-admin"), Some("true"));
}

// ---------------------------------------------------------------------------------------------
// OAuth

#[test]
fn oauth_sign_in_round_trip_with_pkce() {
    let env = Env::new();
    let db = env.open();
    let s = Server::start(&db);
    let b = Browser::new(&s);

    // Step by step: the app sends the browser to the provider with state and an S256
    // challenge...
    let p = b.get_once(&s.url("/auth/mock?persona=1002"));
    assert_eq!(p.status, 303);
    let authorize = p.location.unwrap();
    assert!(authorize.starts_with(&s.url("/mock-oauth/authorize?")));
    assert_eq!(
        query_param(&authorize, "code_challenge_method").as_deref(),
        Some("S256")
    );
    let challenge = query_param(&authorize, "code_challenge").unwrap();
    assert_eq!(challenge.len(), 43);
    let state = query_param(&authorize, "state").unwrap();
    // ...the provider comes back with a code and the same state...
    let p = b.get_once(&authorize);
    assert_eq!(p.status, 303);
    let callback = p.location.unwrap();
    assert!(callback.starts_with(&s.url("/auth/mock/callback?")));
    assert_eq!(query_param(&callback, "state"), Some(state));
    // ...and the app exchanges it (with the verifier) and signs in.
    let p = b.get(&callback);
    assert_eq!(p.url, s.url("/"));
    assert!(p.signed_in());

    let grace = db.get_user_by_email("grace@example.com").unwrap().unwrap();
    assert_eq!(grace.name.as_deref(), Some("Grace Hopper"));
    let account = db.get_account("mock", "1002").unwrap().unwrap();
    assert_eq!(account.user_id, grace.id);
    assert_eq!(account.access_token.as_ref().unwrap().len(), 64);
    assert!(account.refresh_token.is_some());
    assert!(account.access_token_expires.is_some());
    assert_eq!(db.web_session_list_for_user(&grace.id).unwrap().len(), 1);

    // Signing in again (another browser) finds the same user and refreshes the tokens.
    let other = Browser::new(&s);
    assert!(other.get(&s.url("/auth/mock?persona=1002")).signed_in());
    let again = db.get_account("mock", "1002").unwrap().unwrap();
    assert_eq!(again.user_id, grace.id);
    assert_ne!(again.access_token, account.access_token);
    assert_eq!(db.list_accounts(&grace.id).unwrap().len(), 1);
    assert_eq!(db.web_session_list_for_user(&grace.id).unwrap().len(), 2);
}

#[test]
fn a_code_without_its_verifier_is_refused() {
    let env = Env::new();
    let db = env.open();
    let s = Server::start(&db);
    let b = Browser::new(&s);
    let authorize = b
        .get_once(&s.url("/auth/mock?persona=1002"))
        .location
        .unwrap();
    let callback = b.get_once(&authorize).location.unwrap();
    let code = query_param(&callback, "code").unwrap();

    // An attacker holding the code (but not the verifier) tries it at the token endpoint,
    // with the client's own credentials even.
    let secret = app::client_secret(&security::Keys::new(SECRET));
    let wrong = "a".repeat(64);
    let p = b.post(
        &s.url("/mock-oauth/token"),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &s.url("/auth/mock/callback")),
            ("client_id", mock_provider::CLIENT_ID),
            ("client_secret", &secret),
            ("code_verifier", &wrong),
        ],
    );
    assert_eq!(p.status, 400);
    assert!(p.body.contains("invalid_grant"), "{}", p.body);
    // The failed attempt spent the code: the real callback cannot use it any more.
    let p = b.get(&callback);
    assert_eq!(p.path(), "/login?error=OAuthCallback");
    assert!(!p.signed_in());
    assert!(db.get_user_by_email("grace@example.com").unwrap().is_none());

    // A callback whose state is not this browser's pending flow is refused before any
    // exchange.
    let authorize = b
        .get_once(&s.url("/auth/mock?persona=1002"))
        .location
        .unwrap();
    let callback = b.get_once(&authorize).location.unwrap();
    let code = query_param(&callback, "code").unwrap();
    let forged = s.url(&format!("/auth/mock/callback?code={code}&state=forged"));
    assert_eq!(
        Browser::new(&s).get(&forged).path(),
        "/login?error=OAuthState"
    );
    assert_eq!(b.get(&forged).path(), "/login?error=OAuthState");
    assert!(db.get_account("mock", "1002").unwrap().is_none());
}

#[test]
fn oauth_account_not_linked_is_refused() {
    let env = Env::new();
    let db = env.open();
    let s = Server::start(&db);
    let a = Browser::new(&s);
    a.sign_up(&s, "ada@example.com", "correct horse battery");
    let ada = user_id(&db, "ada@example.com");

    // The provider vouches for ada@example.com, which already has an account: no automatic
    // linking.
    let b = Browser::new(&s);
    let p = b.get(&s.url("/auth/mock?persona=1001"));
    assert_eq!(p.path(), "/login?error=OAuthAccountNotLinked");
    assert_eq!(p.error(), Some("OAuthAccountNotLinked"));
    assert!(!p.signed_in());
    assert!(db.get_account("mock", "1001").unwrap().is_none());
    assert!(db.list_accounts(&ada).unwrap().is_empty());

    // A profile claiming Ada's address without the provider verifying it neither matches her
    // nor takes the address: a user of its own, without email.
    let p = b.get(&s.url("/auth/mock?persona=1005"));
    assert!(p.signed_in());
    let eve = db.get_user_by_account("mock", "1005").unwrap().unwrap();
    assert_ne!(eve.id, ada);
    assert_eq!(eve.email, None);
    assert_eq!(
        db.get_user_by_email("ada@example.com").unwrap().unwrap().id,
        ada
    );
}
