//! End-to-end tests of the web example (examples/web): the app runs in-process on an ephemeral
//! loopback port, on a database file the test opened (with a manual clock), and is driven by a
//! real HTTP client (ureq) that keeps cookies like a browser: it loads pages, submits their
//! forms with the hidden fields they carry, follows redirects and clicks the links that the app
//! wrote to its outbox. Every test also checks what the database holds.

#[path = "../examples/web/app.rs"]
mod app;
#[path = "../examples/web/html.rs"]
mod html;
#[path = "../examples/web/oauth_mock.rs"]
mod oauth_mock;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use authdb::prelude::*;
use authdb::{AuthDb, Clock, Durability, EmailProvider, ManualClock, PurgeTask, UserId};
use chrono::{DateTime, Duration, Utc};
use ureq::ResponseExt;

const SECRET: &str = "test secret for the web example";

// ---------------------------------------------------------------------------------------------
// Harness

/// A temporary directory with the database file and the outbox, and the manual clock.
struct Env {
    dir: tempfile::TempDir,
    clock: Arc<ManualClock>,
}

impl Env {
    fn new() -> Self {
        // Start at the real time (whole seconds), so that cookie expiries computed from this
        // clock are in the client's future, and expiry arithmetic is exact.
        let now = DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap();
        Self {
            dir: tempfile::tempdir().unwrap(),
            clock: Arc::new(ManualClock::new(now)),
        }
    }

    fn open(&self) -> AuthDb {
        AuthDb::builder()
            .clock(self.clock.clone())
            .encryption_key(authdb::EncryptionKey::from_secret(SECRET))
            .durability(Durability::Immediate)
            .open(self.dir.path().join("web.redb"))
            .unwrap()
    }

    fn outbox(&self) -> PathBuf {
        self.dir.path().join("outbox.txt")
    }

    fn outbox_lines(&self) -> Vec<(String, String)> {
        match std::fs::read_to_string(self.outbox()) {
            Ok(s) => s
                .lines()
                .map(|l| {
                    let f: Vec<&str> = l.split('\t').collect();
                    assert_eq!(f.len(), 3, "outbox line: {l}");
                    (f[1].to_owned(), f[2].to_owned())
                })
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => panic!("{e}"),
        }
    }

    /// The last sign-in link sent to `email`.
    fn last_link(&self, email: &str) -> String {
        self.outbox_lines()
            .into_iter()
            .rev()
            .find(|(to, _)| to == email)
            .map_or_else(
                || panic!("no link for {email} in the outbox"),
                |(_, url)| url,
            )
    }
}

/// The app on 127.0.0.1:0, in its own tokio runtime.
struct Server {
    base: String,
    rt: Option<tokio::runtime::Runtime>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    purge: Option<PurgeTask>,
}

struct Options {
    secure_cookies: bool,
    purge_every: StdDuration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            secure_cookies: false,
            purge_every: StdDuration::from_secs(3600),
        }
    }
}

impl Server {
    fn start(env: &Env, db: &AuthDb) -> Self {
        Self::start_with(env, db, &Options::default())
    }

    fn start_with(env: &Env, db: &AuthDb, opts: &Options) -> Self {
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
            outbox: env.outbox(),
            secure_cookies: opts.secure_cookies,
            secret: SECRET.to_owned(),
            echo_links: false,
            clock: env.clock.clone(),
        };
        let router = app::router(db.clone(), cfg);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let done = rt.spawn(app::serve(listener, router, async {
            let _ = stopped.await;
        }));
        Self {
            base,
            rt: Some(rt),
            stop: Some(stop),
            done: Some(done),
            purge: Some(db.spawn_purge_task(opts.purge_every)),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn purge_stats(&self) -> authdb::PurgeTaskStats {
        self.purge.as_ref().unwrap().stats()
    }

    /// Graceful shutdown; afterwards the server holds no database handle.
    fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let (Some(rt), Some(done)) = (self.rt.take(), self.done.take()) {
            let served = rt
                .block_on(async { tokio::time::timeout(StdDuration::from_secs(20), done).await })
                .expect("the server did not shut down within 20 s");
            drop(rt);
            if !std::thread::panicking() {
                served.unwrap().unwrap();
            }
        }
        if let Some(p) = self.purge.take() {
            p.stop();
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
    /// The URL of the final response (after redirects).
    url: String,
    location: Option<String>,
    set_cookies: Vec<String>,
    headers: Vec<(String, String)>,
    body: String,
}

impl Page {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The path (and query) of the final URL.
    fn path(&self) -> &str {
        let rest = self.url.split_once("://").map_or(&*self.url, |(_, r)| r);
        rest.find('/').map_or("/", |i| &rest[i..])
    }

    /// The `Set-Cookie` header for `name`, if this response set it.
    fn set_cookie(&self, name: &str) -> Option<&str> {
        self.set_cookies
            .iter()
            .find(|c| c.split_once('=').is_some_and(|(k, _)| k == name))
            .map(String::as_str)
    }

    /// The hidden fields of the form posting to `action`.
    fn hidden_fields(&self, action: &str) -> Vec<(String, String)> {
        let marker = format!(r#"action="{}""#, html::escape(action));
        let start = self.body.find(&marker).unwrap_or_else(|| {
            panic!(
                "no form posting to {action} on {}:\n{}",
                self.url, self.body
            )
        });
        let form = &self.body[start..];
        let form = &form[..form.find("</form>").unwrap()];
        let mut out = Vec::new();
        let mut rest = form;
        let input = r#"<input type="hidden" name=""#;
        while let Some(i) = rest.find(input) {
            rest = &rest[i + input.len()..];
            let (name, after) = rest.split_once(r#"" value=""#).unwrap();
            let value = &after[..after.find('"').unwrap()];
            out.push((unescape(name), unescape(value)));
        }
        out
    }

    fn signed_in(&self) -> bool {
        self.body.contains(r#"data-signed-in="true""#)
    }

    fn error_code(&self) -> Option<String> {
        let i = self.body.find(r#"data-error=""#)? + r#"data-error=""#.len();
        Some(self.body[i..i + self.body[i..].find('"')?].to_owned())
    }
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// The value of an attribute in a `Set-Cookie` header.
fn cookie_attr<'a>(set_cookie: &'a str, attr: &str) -> Option<&'a str> {
    set_cookie.split(';').skip(1).map(str::trim).find_map(|a| {
        let (k, v) = a.split_once('=').unwrap_or((a, ""));
        k.eq_ignore_ascii_case(attr).then_some(v)
    })
}

fn cookie_flag(set_cookie: &str, attr: &str) -> bool {
    cookie_attr(set_cookie, attr).is_some()
}

/// A browser: a ureq agent with a cookie jar.
struct Browser {
    agent: ureq::Agent,
}

impl Browser {
    fn new() -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(10)
            .timeout_global(Some(StdDuration::from_secs(30)))
            .build()
            .into();
        Self { agent }
    }

    fn read(mut resp: ureq::http::Response<ureq::Body>) -> Page {
        let header_strings = |name: &str| -> Vec<String> {
            resp.headers()
                .get_all(name)
                .iter()
                .map(|v| v.to_str().unwrap().to_owned())
                .collect()
        };
        let set_cookies = header_strings("set-cookie");
        let location = header_strings("location").into_iter().next();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap().to_owned()))
            .collect();
        Page {
            status: resp.status().as_u16(),
            url: resp.get_uri().to_string(),
            location,
            set_cookies,
            headers,
            body: resp.body_mut().read_to_string().unwrap(),
        }
    }

    fn get(&self, url: &str) -> Page {
        Self::read(self.agent.get(url).call().unwrap())
    }

    /// A GET that does not follow a redirect (to see its `Location` and `Set-Cookie`).
    fn get_once(&self, url: &str) -> Page {
        Self::read(
            self.agent
                .get(url)
                .config()
                .max_redirects(0)
                .build()
                .call()
                .unwrap(),
        )
    }

    fn post(&self, url: &str, fields: &[(String, String)]) -> Page {
        Self::read(
            self.agent
                .post(url)
                .send_form(fields.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .unwrap(),
        )
    }

    fn post_once(&self, url: &str, fields: &[(String, String)]) -> Page {
        Self::read(
            self.agent
                .post(url)
                .config()
                .max_redirects(0)
                .build()
                .send_form(fields.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .unwrap(),
        )
    }

    /// Submits the form of `page` that posts to `action`: its hidden fields plus `extra`.
    fn submit(&self, srv: &Server, page: &Page, action: &str, extra: &[(&str, &str)]) -> Page {
        let mut fields = page.hidden_fields(action);
        fields.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        self.post(&srv.url(action), &fields)
    }

    fn cookie(&self, name: &str) -> Option<String> {
        let jar = self.agent.cookie_jar_lock();
        jar.iter()
            .find(|c| c.name() == name)
            .map(|c| c.value().to_owned())
    }

    fn session_token(&self) -> String {
        self.cookie(app::SESSION_COOKIE)
            .expect("the browser has a session cookie")
    }

    fn set_cookie(&self, srv: &Server, name: &str, value: &str) {
        let uri: ureq::http::Uri = srv.base.parse().unwrap();
        let cookie = ureq::Cookie::parse(format!("{name}={value}; Path=/"), &uri).unwrap();
        self.agent.cookie_jar_lock().insert(cookie, &uri).unwrap();
    }

    /// Who the app says is signed in (from the account page), or `None`.
    fn whoami(&self, srv: &Server) -> Option<UserId> {
        let page = self.get(&srv.url("/account"));
        assert_eq!(page.status, 200, "{}", page.body);
        if page.path() == "/signin" {
            return None;
        }
        let marker = "<th>User id</th><td>";
        let i = page.body.find(marker).unwrap() + marker.len();
        let end = i + page.body[i..].find('<').unwrap();
        Some(page.body[i..end].parse().unwrap())
    }

    /// Email sign-in, the way a person does it: form, outbox, link. Returns the link.
    fn email_sign_in(&self, srv: &Server, env: &Env, email: &str) -> String {
        let form = self.get(&srv.url("/signin"));
        let sent = self.submit(srv, &form, "/signin/email", &[("email", email)]);
        assert_eq!(sent.path(), "/verify-request", "{}", sent.body);
        let link = env.last_link(&authdb::normalize_email(email));
        let home = self.get(&link);
        assert_eq!(home.path(), "/", "{}", home.body);
        assert!(home.signed_in(), "{}", home.body);
        link
    }

    /// The OAuth flow against the mock provider, started from the button on `from` ("/signin"
    /// or "/account"), signing in to the provider as `persona` with `decision`.
    fn oauth_decide(&self, srv: &Server, from: &str, persona: &str, decision: &str) -> Page {
        let start = self.get(&srv.url(from));
        let authorize = self.submit(srv, &start, "/signin/mock", &[]);
        assert!(
            authorize.path().starts_with("/mock-oauth/authorize?"),
            "{}",
            authorize.url
        );
        assert!(self.cookie(app::STATE_COOKIE).is_some());
        let done = self.submit(
            srv,
            &authorize,
            "/mock-oauth/authorize",
            &[("persona", persona), ("decision", decision)],
        );
        // The state cookie lives only for the round trip.
        assert_eq!(self.cookie(app::STATE_COOKIE), None);
        done
    }

    fn oauth(&self, srv: &Server, from: &str, persona: &str) -> Page {
        self.oauth_decide(srv, from, persona, "allow")
    }
}

fn assert_clean(db: &AuthDb) {
    let r = db.check_integrity().unwrap();
    assert!(r.is_clean(), "integrity problems:\n{r}");
}

/// The query parameter `name` of `url`.
fn query_param(url: &str, name: &str) -> String {
    let query = url.split_once('?').unwrap().1;
    html::form_decode(query)
        .into_iter()
        .find(|(k, _)| k == name)
        .unwrap()
        .1
}

fn email_provider() -> EmailProvider {
    EmailProvider::new("email", |_| Ok(()))
}

// ---------------------------------------------------------------------------------------------
// Email sign-in

#[test]
fn email_sign_in_through_the_outbox_link_works_once() {
    let env = Env::new();
    let db = env.open();
    let srv = Server::start(&env, &db);
    let b = Browser::new();

    let form = b.get(&srv.url("/signin"));
    assert_eq!(form.status, 200);
    let sent = b.submit(
        &srv,
        &form,
        "/signin/email",
        &[("email", "  Ada@Example.COM ")],
    );
    assert_eq!(sent.path(), "/verify-request");
    assert!(!sent.signed_in());

    // The "mail": one line in the outbox, for the normalized address, linking to this app.
    let lines = env.outbox_lines();
    assert_eq!(lines.len(), 1);
    let link = env.last_link("ada@example.com");
    assert!(link.starts_with(&srv.url("/callback/email?")), "{link}");
    let token = query_param(&link, "token");
    assert_eq!(query_param(&link, "email"), "ada@example.com");
    assert_eq!(token.len(), 64);
    // Stored (as a hash) and not consumed by reading.
    let req = db
        .get_verification_request("ada@example.com", &token, SECRET, &email_provider())
        .unwrap()
        .expect("the request is stored");
    assert_eq!(req.token, authdb::hash_verification_token(&token, SECRET));
    assert_eq!(db.get_user_by_email("ada@example.com").unwrap(), None);

    // Clicking it signs in: a 303 home that sets the session cookie.
    let click = b.get_once(&link);
    assert_eq!(click.status, 303);
    assert_eq!(click.location.as_deref(), Some("/"));
    let cookie = click
        .set_cookie(app::SESSION_COOKIE)
        .expect("session cookie");
    assert!(cookie_flag(cookie, "HttpOnly"), "{cookie}");
    assert_eq!(cookie_attr(cookie, "SameSite"), Some("Lax"), "{cookie}");
    assert_eq!(cookie_attr(cookie, "Path"), Some("/"), "{cookie}");
    assert!(!cookie_flag(cookie, "Secure"), "{cookie}");
    let session = db
        .get_session(&b.session_token())
        .unwrap()
        .expect("the cookie's session is stored");
    assert_eq!(
        cookie_attr(cookie, "Expires"),
        Some(html::http_date(session.expires).as_str())
    );
    assert_eq!(session.expires, env.clock.now() + Duration::days(30));

    // The user was created with a verified email, in the same transaction as the session.
    let user = db.get_user_by_email("ada@example.com").unwrap().unwrap();
    assert_eq!(user.email.as_deref(), Some("ada@example.com"));
    assert_eq!(user.email_verified, Some(env.clock.now()));
    assert_eq!(session.user_id, user.id);
    assert_eq!(b.whoami(&srv), Some(user.id));
    assert!(b.get(&srv.url("/")).signed_in());
    assert_eq!(db.list_sessions(&user.id).unwrap().len(), 1);
    // The request is gone.
    assert_eq!(
        db.get_verification_request("ada@example.com", &token, SECRET, &email_provider())
            .unwrap(),
        None
    );

    // The same link a second time is refused, in this browser and in another one.
    let again = b.get(&link);
    assert_eq!(again.path(), "/signin?error=Verification");
    assert_eq!(again.error_code().as_deref(), Some("Verification"));
    let other = Browser::new();
    let again = other.get(&link);
    assert_eq!(again.path(), "/signin?error=Verification");
    assert_eq!(other.whoami(&srv), None);
    assert_eq!(db.list_sessions(&user.id).unwrap().len(), 1);
    // The browser that used it is still signed in with the same session.
    assert_eq!(b.session_token(), session.session_token);

    // A new link for a known address: same user, and this browser's old session is replaced.
    env.clock.advance(Duration::minutes(5));
    b.email_sign_in(&srv, &env, "ada@example.com");
    assert_ne!(b.session_token(), session.session_token);
    assert_eq!(db.get_session(&session.session_token).unwrap(), None);
    let sessions = db.list_sessions(&user.id).unwrap();
    assert_eq!(sessions.len(), 1);
    let again = db.get_user_by_email("ada@example.com").unwrap().unwrap();
    assert_eq!(again.id, user.id);
    assert_eq!(again.email_verified, Some(env.clock.now()));
    assert_clean(&db);
}

#[test]
fn a_link_for_another_address_does_not_sign_in() {
    let env = Env::new();
    let db = env.open();
    let srv = Server::start(&env, &db);
    let b = Browser::new();
    let form = b.get(&srv.url("/signin"));
    b.submit(
        &srv,
        &form,
        "/signin/email",
        &[("email", "ada@example.com")],
    );
    let link = env.last_link("ada@example.com");
    // The token of Ada's link with another address (CVE-2021-21310) is refused...
    let forged = link.replace("ada%40example.com", "eve%40example.com");
    assert_ne!(forged, link);
    assert_eq!(b.get(&forged).path(), "/signin?error=Verification");
    assert_eq!(db.get_user_by_email("eve@example.com").unwrap(), None);
    // ... and so is a malformed address on the form, which sends nothing.
    let form = b.get(&srv.url("/signin"));
    let bad = b.submit(&srv, &form, "/signin/email", &[("email", "not an address")]);
    assert_eq!(bad.path(), "/signin?error=EmailSignin");
    assert_eq!(bad.error_code().as_deref(), Some("EmailSignin"));
    assert_eq!(env.outbox_lines().len(), 1);
    // Ada's link itself still works (the forged attempt did not consume it).
    assert!(b.get(&link).signed_in());
}

// ---------------------------------------------------------------------------------------------
// CSRF

#[test]
fn state_changing_forms_need_the_csrf_token() {
    let env = Env::new();
    let db = env.open();
    let srv = Server::start(&env, &db);

    // No CSRF cookie and no token (a cross-site form post): refused, nothing sent.
    let b = Browser::new();
    let email = |v: &str| vec![("email".to_owned(), v.to_owned())];
    let refused = b.post_once(&srv.url("/signin/email"), &email("ada@example.com"));
    assert_eq!(refused.status, 403);
    assert!(env.outbox_lines().is_empty());
    // The CSRF cookie, but a wrong token: refused.
    b.get(&srv.url("/signin"));
    let csrf = b
        .cookie(app::CSRF_COOKIE)
        .expect("the sign-in page sets the CSRF cookie");
    assert_eq!(csrf.len(), 64);
    let mut fields = email("ada@example.com");
    fields.push(("csrf_token".into(), "0".repeat(64)));
    assert_eq!(b.post_once(&srv.url("/signin/email"), &fields).status, 403);
    // Another browser's token with this browser's cookie: refused.
    let other = Browser::new();
    other.get(&srv.url("/signin"));
    let mut fields = email("ada@example.com");
    fields.push(("csrf_token".into(), other.cookie(app::CSRF_COOKIE).unwrap()));
    assert_eq!(b.post_once(&srv.url("/signin/email"), &fields).status, 403);
    assert!(env.outbox_lines().is_empty());
    // The right one: accepted.
    let mut fields = email("ada@example.com");
    fields.push(("csrf_token".into(), csrf.clone()));
    let ok = b.post_once(&srv.url("/signin/email"), &fields);
    assert_eq!(ok.status, 303);
    assert_eq!(env.outbox_lines().len(), 1);

    // Signed in, the sign-out forms need it too.
    assert!(b.get(&env.last_link("ada@example.com")).signed_in());
    let user = db.get_user_by_email("ada@example.com").unwrap().unwrap();
    let forged = vec![("csrf_token".to_owned(), "0".repeat(64))];
    for path in [
        "/signout".to_owned(),
        "/account/signout-everywhere".to_owned(),
        format!(
            "/account/sessions/{}/signout",
            db.list_sessions(&user.id).unwrap()[0].id
        ),
        "/signin/mock".to_owned(),
    ] {
        let r = b.post_once(&srv.url(&path), &forged);
        assert_eq!(r.status, 403, "{path}");
        assert_eq!(r.set_cookie(app::SESSION_COOKIE), None, "{path}");
        let r = b.post_once(&srv.url(&path), &[]);
        assert_eq!(r.status, 403, "{path}");
    }
    assert_eq!(db.list_sessions(&user.id).unwrap().len(), 1);
    assert_eq!(b.whoami(&srv), Some(user.id));
}

// ---------------------------------------------------------------------------------------------
// OAuth

#[test]
fn oauth_sign_up_creates_user_account_and_session() {
    let env = Env::new();
    let db = env.open();
    let srv = Server::start(&env, &db);

    let b = Browser::new();
    let home = b.oauth(&srv, "/signin", "1002");
    assert_eq!(home.path(), "/");
    assert!(home.signed_in(), "{}", home.body);
    let grace = db.get_user_by_email("grace@example.com").unwrap().unwrap();
    assert_eq!(grace.name.as_deref(), Some("Grace Hopper"));
    assert_eq!(
        grace.email_verified, None,
        "an OAuth email is not a verified one"
    );
    assert_eq!(
        db.get_user_by_provider_account_id("mock", "1002").unwrap(),
        Some(grace.clone())
    );
    let sessions = db.list_sessions(&grace.id).unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(
        db.get_session(&b.session_token()).unwrap().unwrap().id,
        sessions[0].id
    );
    assert_eq!(b.whoami(&srv), Some(grace.id));
    // The account, with the provider's tokens (stored encrypted).
    let accounts = db.list_accounts(&grace.id).unwrap();
    assert_eq!(accounts.len(), 1);
    let first = accounts[0].clone();
    assert_eq!(
        (
            first.provider_type.as_str(),
            first.provider_id.as_str(),
            first.provider_account_id.as_str()
        ),
        ("oauth", "mock", "1002")
    );
    assert_eq!(first.access_token.as_ref().map(String::len), Some(64));
    assert_eq!(first.refresh_token.as_ref().map(String::len), Some(64));
    assert_eq!(
        first.access_token_expires,
        Some(env.clock.now() + Duration::hours(1))
    );
    let account = b.get(&srv.url("/account"));
    assert!(
        account.body.contains(r#"data-account="1002""#),
        "{}",
        account.body
    );

    // Signing in again with the same provider account (another browser): same user, a second
    // session, no second user.
    let b2 = Browser::new();
    assert!(b2.oauth(&srv, "/signin", "1002").signed_in());
    assert_eq!(b2.whoami(&srv), Some(grace.id));
    assert_eq!(db.list_sessions(&grace.id).unwrap().len(), 2);
    // The sign-in refreshed the stored tokens of the one account.
    let accounts = db.list_accounts(&grace.id).unwrap();
    assert_eq!(accounts.len(), 1);
    assert_eq!(accounts[0].id, first.id);
    assert!(accounts[0].access_token.is_some());
    assert_ne!(accounts[0].access_token, first.access_token);
    assert_eq!(
        db.get_user_by_email("grace@example.com")
            .unwrap()
            .unwrap()
            .id,
        grace.id
    );

    // A provider account without email.
    let b3 = Browser::new();
    assert!(b3.oauth(&srv, "/signin", "1003").signed_in());
    let alan = db
        .get_user_by_provider_account_id("mock", "1003")
        .unwrap()
        .unwrap();
    assert_eq!(alan.email, None);
    assert_eq!(alan.name.as_deref(), Some("Alan Turing"));
    assert_eq!(b3.whoami(&srv), Some(alan.id));

    // A name full of markup is shown escaped, never as markup.
    let b4 = Browser::new();
    let home = b4.oauth(&srv, "/signin", "1004");
    assert!(home.signed_in());
    assert!(!home.body.contains("<script>"), "{}", home.body);
    assert!(
        home.body
            .contains("&lt;script&gt;alert(&#39;Mallory&#39;)&lt;/script&gt; &amp; co")
    );
    let account = b4.get(&srv.url("/account"));
    assert!(!account.body.contains("<script>"));

    // Denying at the provider signs nobody in.
    let b5 = Browser::new();
    let denied = b5.oauth_decide(&srv, "/signin", "1001", "deny");
    assert_eq!(denied.path(), "/signin?error=AccessDenied");
    assert_eq!(b5.whoami(&srv), None);
    assert_eq!(
        db.get_user_by_provider_account_id("mock", "1001").unwrap(),
        None
    );

    // A callback that this browser did not start (no or wrong state) is refused, before any
    // code exchange.
    let forged = b5.get(&srv.url("/callback/mock?code=abc&state=def"));
    assert_eq!(forged.path(), "/signin?error=OAuthState");
    assert_eq!(b5.whoami(&srv), None);
    assert_clean(&db);
}

#[test]
fn an_authorization_code_works_once() {
    let env = Env::new();
    let db = env.open();
    let srv = Server::start(&env, &db);
    let b = Browser::new();
    let start = b.get(&srv.url("/signin"));
    let authorize = b.submit(&srv, &start, "/signin/mock", &[]);
    let mut fields = authorize.hidden_fields("/mock-oauth/authorize");
    fields.push(("persona".into(), "1001".into()));
    fields.push(("decision".into(), "allow".into()));
    let approved = b.post_once(&srv.url("/mock-oauth/authorize"), &fields);
    assert_eq!(approved.status, 303);
    let callback = approved.location.unwrap();
    assert!(
        callback.starts_with(&srv.url("/callback/mock?code=")),
        "{callback}"
    );
    // The token endpoint refuses a wrong client secret.
    let code = query_param(&callback, "code");
    let stolen = Browser::new().post_once(
        &srv.url("/mock-oauth/token"),
        &[
            ("grant_type".into(), "authorization_code".into()),
            ("code".into(), code),
            ("redirect_uri".into(), srv.url("/callback/mock")),
            ("client_id".into(), oauth_mock::CLIENT_ID.into()),
            ("client_secret".into(), "guess".into()),
        ],
    );
    assert_eq!(stolen.status, 401);
    // The app's exchange works.
    assert!(b.get(&callback).signed_in());
    let ada = db
        .get_user_by_provider_account_id("mock", "1001")
        .unwrap()
        .unwrap();
    assert_eq!(b.whoami(&srv), Some(ada.id));
    // Replaying the callback (same code, same state) in a browser that has the state cookie
    // again: the code is spent.
    let replay = Browser::new();
    replay.set_cookie(&srv, app::STATE_COOKIE, &query_param(&callback, "state"));
    let again = replay.get(&callback);
    assert_eq!(again.path(), "/signin?error=OAuthCallback");
    assert_eq!(replay.whoami(&srv), None);
    assert_eq!(db.list_sessions(&ada.id).unwrap().len(), 1);
}

#[test]
fn linking_an_account_and_the_refused_links() {
    let env = Env::new();
    let db = env.open();
    let srv = Server::start(&env, &db);

    let a = Browser::new();
    a.email_sign_in(&srv, &env, "ada@example.com");
    let ada = db.get_user_by_email("ada@example.com").unwrap().unwrap();
    let ada_token = a.session_token();
    let g = Browser::new();
    g.oauth(&srv, "/signin", "1002");
    let grace = db.get_user_by_email("grace@example.com").unwrap().unwrap();

    // Ada links provider account 1001 from her account page: no new session, no new user.
    let linked = a.oauth(&srv, "/account", "1001");
    assert_eq!(linked.path(), "/account", "{}", linked.body);
    assert_eq!(linked.error_code(), None);
    assert!(
        linked.body.contains(r#"data-account="1001""#),
        "{}",
        linked.body
    );
    assert_eq!(
        db.get_user_by_provider_account_id("mock", "1001")
            .unwrap()
            .map(|u| u.id),
        Some(ada.id)
    );
    assert_eq!(a.session_token(), ada_token);
    assert_eq!(db.list_sessions(&ada.id).unwrap().len(), 1);
    // Linking it again (it is hers already) is fine and changes nothing.
    let relinked = a.oauth(&srv, "/account", "1001");
    assert_eq!(relinked.path(), "/account");
    assert_eq!(relinked.error_code(), None);

    let accounts = db.list_accounts(&ada.id).unwrap();
    assert_eq!(accounts.len(), 1);
    assert_eq!(accounts[0].provider_account_id, "1001");

    // Grace's provider account cannot be linked to Ada: OAuthAccountNotLinked.
    let refused = a.oauth(&srv, "/account", "1002");
    assert_eq!(refused.path(), "/account?error=OAuthAccountNotLinked");
    assert_eq!(
        refused.error_code().as_deref(),
        Some("OAuthAccountNotLinked")
    );
    assert!(!refused.body.contains(r#"data-account="1002""#));
    assert_eq!(
        db.get_user_by_provider_account_id("mock", "1002")
            .unwrap()
            .map(|u| u.id),
        Some(grace.id)
    );
    assert_eq!(a.whoami(&srv), Some(ada.id), "Ada stays signed in as Ada");
    assert_eq!(db.list_accounts(&ada.id).unwrap().len(), 1);
    assert_eq!(db.list_accounts(&grace.id).unwrap().len(), 1);

    // Signed out, the linked provider account signs in as Ada.
    let x = Browser::new();
    assert!(x.oauth(&srv, "/signin", "1001").signed_in());
    assert_eq!(x.whoami(&srv), Some(ada.id));
    assert_eq!(db.list_sessions(&ada.id).unwrap().len(), 2);

    // A provider account whose email belongs to a user who has not linked it: refused, and no
    // user or account is created (no automatic linking by email).
    let m = Browser::new();
    m.email_sign_in(&srv, &env, "mallory@example.com");
    let mallory = db
        .get_user_by_email("mallory@example.com")
        .unwrap()
        .unwrap();
    let y = Browser::new();
    let refused = y.oauth(&srv, "/signin", "1004");
    assert_eq!(refused.path(), "/signin?error=OAuthAccountNotLinked");
    assert_eq!(
        refused.error_code().as_deref(),
        Some("OAuthAccountNotLinked")
    );
    assert_eq!(y.whoami(&srv), None);
    assert_eq!(
        db.get_user_by_provider_account_id("mock", "1004").unwrap(),
        None
    );
    assert_eq!(
        db.get_user_by_email("mallory@example.com")
            .unwrap()
            .map(|u| u.id),
        Some(mallory.id)
    );
    // Signed in by email, Mallory can link it herself.
    let linked = m.oauth(&srv, "/account", "1004");
    assert_eq!(linked.path(), "/account");
    assert_eq!(
        db.get_user_by_provider_account_id("mock", "1004")
            .unwrap()
            .map(|u| u.id),
        Some(mallory.id)
    );
    assert_clean(&db);
}

// ---------------------------------------------------------------------------------------------
// Sign-out

#[test]
fn sign_out_ends_the_session() {
    let env = Env::new();
    let db = env.open();
    let srv = Server::start(&env, &db);
    let b = Browser::new();
    b.email_sign_in(&srv, &env, "ada@example.com");
    let ada = db.get_user_by_email("ada@example.com").unwrap().unwrap();
    let token = b.session_token();

    let confirm = b.get(&srv.url("/signout"));
    assert_eq!(confirm.status, 200);
    let mut fields = confirm.hidden_fields("/signout");
    assert_eq!(fields.len(), 1);
    let out = b.post_once(&srv.url("/signout"), &fields);
    assert_eq!(out.status, 303);
    let cleared = out.set_cookie(app::SESSION_COOKIE).unwrap();
    assert_eq!(cookie_attr(cleared, "Max-Age"), Some("0"), "{cleared}");
    assert_eq!(b.cookie(app::SESSION_COOKIE), None);
    assert_eq!(db.get_session(&token).unwrap(), None);
    assert!(db.list_sessions(&ada.id).unwrap().is_empty());
    assert!(!b.get(&srv.url("/")).signed_in());
    assert_eq!(b.whoami(&srv), None);
    // Signing out again is harmless.
    fields = b.get(&srv.url("/signin")).hidden_fields("/signin/email");
    assert_eq!(b.post_once(&srv.url("/signout"), &fields).status, 303);

    // The old token, replayed by a browser that kept it: not signed in, and told to forget it.
    let thief = Browser::new();
    thief.set_cookie(&srv, app::SESSION_COOKIE, &token);
    let page = thief.get_once(&srv.url("/"));
    assert!(!page.signed_in());
    let cleared = page.set_cookie(app::SESSION_COOKIE).unwrap();
    assert_eq!(cookie_attr(cleared, "Max-Age"), Some("0"));
    assert_eq!(thief.cookie(app::SESSION_COOKIE), None);
    // The user is still there.
    assert_eq!(db.get_user(&ada.id).unwrap().unwrap().id, ada.id);
}

#[test]
fn sign_out_one_session_and_everywhere_across_two_browsers() {
    let env = Env::new();
    let db = env.open();
    let srv = Server::start(&env, &db);
    let a = Browser::new();
    let b = Browser::new();
    a.email_sign_in(&srv, &env, "ada@example.com");
    b.email_sign_in(&srv, &env, "ADA@example.com");
    let ada = db.get_user_by_email("ada@example.com").unwrap().unwrap();
    assert_eq!(a.whoami(&srv), Some(ada.id));
    assert_eq!(b.whoami(&srv), Some(ada.id));
    let other = Browser::new();
    other.oauth(&srv, "/signin", "1002");
    let grace = db.get_user_by_email("grace@example.com").unwrap().unwrap();

    // The account page lists both of Ada's sessions.
    let page = a.get(&srv.url("/account"));
    let listed = page.body.matches("<tr data-session=").count();
    assert_eq!(listed, 2, "{}", page.body);
    let b_session = db.get_session(&b.session_token()).unwrap().unwrap();
    assert!(
        page.body
            .contains(&format!(r#"data-session="{}""#, b_session.id))
    );

    // From browser A, sign out browser B's session.
    let action = format!("/account/sessions/{}/signout", b_session.id);
    let after = a.submit(&srv, &page, &action, &[]);
    assert_eq!(after.path(), "/account");
    assert_eq!(after.body.matches("<tr data-session=").count(), 1);
    assert_eq!(b.whoami(&srv), None);
    assert_eq!(a.whoami(&srv), Some(ada.id));
    assert_eq!(db.list_sessions(&ada.id).unwrap().len(), 1);

    // Another user's session id on Ada's form does nothing.
    let grace_session = db.list_sessions(&grace.id).unwrap()[0].id;
    let page = a.get(&srv.url("/account"));
    let fields = page.hidden_fields("/account/signout-everywhere");
    let r = a.post(
        &srv.url(&format!("/account/sessions/{grace_session}/signout")),
        &fields,
    );
    assert_eq!(r.path(), "/account");
    assert_eq!(other.whoami(&srv), Some(grace.id));

    // B signs in again; then A signs out everywhere: both browsers are signed out.
    b.email_sign_in(&srv, &env, "ada@example.com");
    assert_eq!(db.list_sessions(&ada.id).unwrap().len(), 2);
    let page = a.get(&srv.url("/account"));
    let home = a.submit(&srv, &page, "/account/signout-everywhere", &[]);
    assert_eq!(home.path(), "/");
    assert!(!home.signed_in());
    assert_eq!(a.whoami(&srv), None);
    assert_eq!(b.whoami(&srv), None);
    assert!(db.list_sessions(&ada.id).unwrap().is_empty());
    // Only Ada's sessions.
    assert_eq!(other.whoami(&srv), Some(grace.id));
    assert_eq!(db.list_sessions(&grace.id).unwrap().len(), 1);
    assert_clean(&db);
}

// ---------------------------------------------------------------------------------------------
// Session refresh, expiry, purge

#[test]
fn the_session_is_refreshed_after_the_update_age() {
    let env = Env::new();
    let db = env.open();
    let srv = Server::start(&env, &db);
    let b = Browser::new();
    b.email_sign_in(&srv, &env, "ada@example.com");
    let token = b.session_token();
    let first = db.get_session(&token).unwrap().unwrap();
    assert_eq!(first.expires, env.clock.now() + Duration::days(30));

    // Before the update age (24 h): no write, no new cookie.
    env.clock.advance(Duration::hours(23));
    let page = b.get_once(&srv.url("/"));
    assert!(page.signed_in());
    assert_eq!(page.set_cookie(app::SESSION_COOKIE), None);
    assert_eq!(
        db.get_session(&token).unwrap().unwrap().expires,
        first.expires
    );

    // After it: the expiry moves to now + 30 days and the cookie is set again, same token.
    env.clock.advance(Duration::hours(2));
    let page = b.get_once(&srv.url("/"));
    assert!(page.signed_in());
    let cookie = page.set_cookie(app::SESSION_COOKIE).expect("re-set cookie");
    let refreshed = db.get_session(&token).unwrap().unwrap();
    assert_eq!(refreshed.expires, env.clock.now() + Duration::days(30));
    assert!(refreshed.expires > first.expires);
    assert_eq!(
        cookie,
        format!(
            "{}={token}; Path=/; Expires={}; HttpOnly; SameSite=Lax",
            app::SESSION_COOKIE,
            html::http_date(refreshed.expires)
        )
    );
    assert_eq!(b.session_token(), token);
    // Right after, it is not due again.
    let page = b.get_once(&srv.url("/account"));
    assert_eq!(page.status, 200);
    assert_eq!(page.set_cookie(app::SESSION_COOKIE), None);

    // A session left alone past its expiry is over: signed out, cookie cleared, row deleted.
    env.clock.advance(Duration::days(30) + Duration::seconds(1));
    let page = b.get_once(&srv.url("/"));
    assert!(!page.signed_in());
    let cleared = page.set_cookie(app::SESSION_COOKIE).unwrap();
    assert_eq!(cookie_attr(cleared, "Max-Age"), Some("0"));
    assert_eq!(db.get_session(&token).unwrap(), None);
    let ada = db.get_user_by_email("ada@example.com").unwrap().unwrap();
    assert!(db.list_sessions(&ada.id).unwrap().is_empty());
    assert_clean(&db);
}

#[test]
fn expired_sessions_and_links_are_purged_in_the_background() {
    let env = Env::new();
    let db = env.open();
    let srv = Server::start_with(
        &env,
        &db,
        &Options {
            purge_every: StdDuration::from_millis(20),
            ..Options::default()
        },
    );
    let b = Browser::new();
    b.email_sign_in(&srv, &env, "ada@example.com");
    let token = b.session_token();
    // A link nobody clicks.
    let form = b.get(&srv.url("/signin"));
    b.submit(
        &srv,
        &form,
        "/signin/email",
        &[("email", "grace@example.com")],
    );
    let unclicked = query_param(&env.last_link("grace@example.com"), "token");

    env.clock.advance(Duration::days(31));
    let deadline = Instant::now() + StdDuration::from_secs(20);
    loop {
        let s = srv.purge_stats();
        if s.purged.sessions >= 1 && s.purged.verification_requests >= 1 {
            break;
        }
        assert!(Instant::now() < deadline, "not purged in time: {s:?}");
        std::thread::sleep(StdDuration::from_millis(20));
    }
    // Gone from the file already: an explicit purge finds nothing left.
    assert_eq!(db.purge_expired().unwrap(), authdb::PurgeStats::default());
    assert_eq!(db.get_session(&token).unwrap(), None);
    assert_eq!(
        db.get_verification_request("grace@example.com", &unclicked, SECRET, &email_provider())
            .unwrap(),
        None
    );
    assert!(!b.get(&srv.url("/")).signed_in());
    assert_clean(&db);
}

// ---------------------------------------------------------------------------------------------
// Restart, cookie flags

#[test]
fn a_restart_on_the_same_file_keeps_everyone_signed_in() {
    let env = Env::new();
    let db = env.open();
    let srv = Server::start(&env, &db);
    let a = Browser::new();
    let g = Browser::new();
    a.email_sign_in(&srv, &env, "ada@example.com");
    g.oauth(&srv, "/signin", "1002");
    let ada = a.whoami(&srv).unwrap();
    let grace = g.whoami(&srv).unwrap();
    let (ta, tg) = (a.session_token(), g.session_token());
    // A link sent before the restart works after it.
    let form = a.get(&srv.url("/signin"));
    a.submit(
        &srv,
        &form,
        "/signin/email",
        &[("email", "alan@example.com")],
    );
    let pending = env.last_link("alan@example.com");

    srv.stop();
    drop(db);
    // The file is closed: a fresh open succeeds (it would be `AlreadyOpen` otherwise).
    let db = env.open();
    assert_clean(&db);
    let srv = Server::start(&env, &db);
    // Cookies are per host, not per port: the browsers still have them.
    assert_eq!(a.whoami(&srv), Some(ada));
    assert_eq!(g.whoami(&srv), Some(grace));
    assert_eq!((a.session_token(), g.session_token()), (ta, tg));
    assert!(
        g.get(&srv.url("/account"))
            .body
            .contains(r#"data-account="1002""#)
    );
    assert_eq!(db.list_sessions(&ada).unwrap().len(), 1);
    assert_eq!(db.list_sessions(&grace).unwrap().len(), 1);

    // The old server's link points at the old port; its path and query work on the new one.
    let path = &pending[pending.find("/callback/").unwrap()..];
    let t = Browser::new();
    assert!(t.get(&srv.url(path)).signed_in());
    assert!(db.get_user_by_email("alan@example.com").unwrap().is_some());
    assert_clean(&db);
}

#[test]
fn cookies_are_secure_when_configured() {
    let env = Env::new();
    let db = env.open();
    let plain = Server::start(&env, &db);
    let page = Browser::new().get_once(&plain.url("/signin"));
    let csrf = page.set_cookie(app::CSRF_COOKIE).unwrap();
    assert!(!cookie_flag(csrf, "Secure"), "{csrf}");
    plain.stop();

    let secure = Server::start_with(
        &env,
        &db,
        &Options {
            secure_cookies: true,
            ..Options::default()
        },
    );
    let b = Browser::new();
    let page = b.get_once(&secure.url("/signin"));
    let csrf = page.set_cookie(app::CSRF_COOKIE).unwrap();
    assert!(cookie_flag(csrf, "Secure"), "{csrf}");
    assert!(cookie_flag(csrf, "HttpOnly"), "{csrf}");
    assert_eq!(cookie_attr(csrf, "SameSite"), Some("Lax"));
    // The session cookie too (set here by the link of a sign-in request).
    let token = app::random_token().unwrap();
    let url = secure.url(&format!(
        "/callback/email?email=ada%40example.com&token={token}"
    ));
    db.create_verification_request("ada@example.com", &url, &token, SECRET, &email_provider())
        .unwrap();
    let click = b.get_once(&url);
    let session = click.set_cookie(app::SESSION_COOKIE).unwrap();
    assert!(cookie_flag(session, "Secure"), "{session}");
    assert!(cookie_flag(session, "HttpOnly"), "{session}");
    // Pages are not cached and cannot be framed.
    assert_eq!(click.header("cache-control"), Some("no-store"));
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    assert_eq!(page.header("referrer-policy"), Some("no-referrer"));
}
