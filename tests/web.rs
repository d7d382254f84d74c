//! End-to-end tests of the web example (examples/web): the app runs in-process on an ephemeral
//! loopback port, on a database file the test opened (with a manual clock), and is driven by a
//! real HTTP client (ureq) that keeps cookies like a browser: it loads pages, submits their
//! forms with the hidden fields they carry, follows redirects and clicks the links that the app
//! wrote to its outbox. Every test also checks what the database holds.
//!
//! The attacks of issue 9 are played here too: another service on the same host (another
//! port) planting cookies, a sign-in link opened by another browser or fetched by a mail
//! scanner, an account pre-hijacked through an unverified provider email, floods of link
//! requests, a foreign `Host`, slow headers, a stolen authorization code without its PKCE
//! verifier, a forged or replayed OAuth `state`, an absurd `expires_in`.

#[path = "../examples/web/app.rs"]
mod app;
#[path = "../examples/web/html.rs"]
mod html;
#[path = "../examples/web/oauth_mock.rs"]
mod oauth_mock;
#[path = "../examples/web/security.rs"]
mod security;

use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use authdb::prelude::*;
use authdb::{
    AuthDb, Clock, Durability, EmailProvider, ManualClock, NewAccount, NewUser, PurgeTask, UserId,
};
use chrono::{DateTime, Duration, Utc};
use ureq::ResponseExt;

const SECRET: &str = "test secret for the web example, 32+ bytes";

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
            .encryption_key(authdb::EncryptionKey::from_secret(SECRET).unwrap())
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
    header_read_timeout: StdDuration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            secure_cookies: false,
            purge_every: StdDuration::from_secs(3600),
            header_read_timeout: app::HEADER_READ_TIMEOUT,
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
            // The shipped limits.
            limits: app::Limits::default(),
        };
        let router = app::router(db.clone(), cfg).unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let done = rt.spawn(app::serve(
            listener,
            router,
            opts.header_read_timeout,
            async {
                let _ = stopped.await;
            },
        ));
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

    /// `127.0.0.1:<port>`.
    fn addr(&self) -> &str {
        self.base.trim_start_matches("http://")
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

    /// A form POST as a browser sends it from a page of the same site: with `Origin`.
    fn post(&self, url: &str, fields: &[(String, String)]) -> Page {
        self.post_from(url, fields, Some(&origin_of(url)), None, true)
    }

    fn post_once(&self, url: &str, fields: &[(String, String)]) -> Page {
        self.post_from(url, fields, Some(&origin_of(url)), None, false)
    }

    /// A form POST with the given `Origin` and `Referer` (or none).
    fn post_from(
        &self,
        url: &str,
        fields: &[(String, String)],
        origin: Option<&str>,
        referer: Option<&str>,
        follow: bool,
    ) -> Page {
        let mut req = self.agent.post(url);
        if let Some(o) = origin {
            req = req.header("Origin", o);
        }
        if let Some(r) = referer {
            req = req.header("Referer", r);
        }
        let req = if follow {
            req
        } else {
            req.config().max_redirects(0).build()
        };
        Self::read(
            req.send_form(fields.iter().map(|(k, v)| (k.as_str(), v.as_str())))
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

    /// Asks for a sign-in link for `email` from the sign-in page; returns it.
    fn request_link(&self, srv: &Server, env: &Env, email: &str) -> String {
        let form = self.get(&srv.url("/signin"));
        let sent = self.submit(srv, &form, "/signin/email", &[("email", email)]);
        assert_eq!(sent.path(), "/verify-request", "{}", sent.body);
        env.last_link(&authdb::normalize_email(email))
    }

    /// Opens a sign-in link and presses the button of the page it shows (the page of a link
    /// this browser asked for: no warning).
    fn use_link(&self, srv: &Server, link: &str) -> Page {
        let page = self.get(link);
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(
            page.body.contains(r#"data-bound="true""#),
            "the link page warns: {}",
            page.body
        );
        self.submit(srv, &page, "/callback/email", &[])
    }

    /// Email sign-in, the way a person does it: form, outbox, link, button. Returns the link.
    fn email_sign_in(&self, srv: &Server, env: &Env, email: &str) -> String {
        let link = self.request_link(srv, env, email);
        let home = self.use_link(srv, &link);
        assert_eq!(home.path(), "/", "{}", home.body);
        assert!(home.signed_in(), "{}", home.body);
        link
    }

    /// Starts the OAuth flow with the button on `from` ("/signin" or "/account"): returns the
    /// provider's authorize page.
    fn oauth_start(&self, srv: &Server, from: &str) -> Page {
        let start = self.get(&srv.url(from));
        let authorize = self.submit(srv, &start, "/signin/mock", &[]);
        assert!(
            authorize.path().starts_with("/mock-oauth/authorize?"),
            "{}",
            authorize.url
        );
        assert!(self.cookie(app::STATE_COOKIE).is_some());
        authorize
    }

    /// The OAuth flow against the mock provider, started from the button on `from` ("/signin"
    /// or "/account"), signing in to the provider as `persona` with `decision` and `extra`
    /// fields of the provider's form.
    fn oauth_with(
        &self,
        srv: &Server,
        from: &str,
        persona: &str,
        decision: &str,
        extra: &[(&str, &str)],
    ) -> Page {
        let authorize = self.oauth_start(srv, from);
        let mut fields = vec![("persona", persona), ("decision", decision)];
        fields.extend_from_slice(extra);
        let done = self.submit(srv, &authorize, "/mock-oauth/authorize", &fields);
        // The state cookie lives only for the round trip.
        assert_eq!(self.cookie(app::STATE_COOKIE), None);
        done
    }

    fn oauth_decide(&self, srv: &Server, from: &str, persona: &str, decision: &str) -> Page {
        self.oauth_with(srv, from, persona, decision, &[])
    }

    /// The OAuth flow up to the provider's answer, which is not followed: returns the callback
    /// URL (with code and state).
    fn oauth_until_callback(&self, srv: &Server, from: &str, persona: &str) -> String {
        let authorize = self.oauth_start(srv, from);
        let mut fields = authorize.hidden_fields("/mock-oauth/authorize");
        fields.push(("persona".into(), persona.into()));
        fields.push(("decision".into(), "allow".into()));
        let approved = self.post_once(&srv.url("/mock-oauth/authorize"), &fields);
        assert_eq!(approved.status, 303, "{}", approved.body);
        let callback = approved.location.unwrap();
        assert!(
            callback.starts_with(&srv.url("/callback/mock?code=")),
            "{callback}"
        );
        callback
    }

    /// The CSRF token of the form posting to `action` on `path`.
    fn csrf_token(&self, srv: &Server, path: &str, action: &str) -> String {
        self.get(&srv.url(path))
            .hidden_fields(action)
            .into_iter()
            .find(|(k, _)| k == "csrf_token")
            .unwrap()
            .1
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

/// `scheme://host:port` of a URL.
fn origin_of(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    format!("{scheme}://{authority}")
}

/// A request written by hand on a fresh connection (to send what a browser would not: another
/// `Host`, no `Host`, slow headers). Returns the whole answer (the request should say
/// `Connection: close`).
fn raw_http(addr: &str, request: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(StdDuration::from_secs(20)))
        .unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

fn raw_status(answer: &str) -> u16 {
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {answer:?}"))
}

/// Another service on the same host, on another port, that answers one request with these
/// `Set-Cookie` headers; `browser` visits it. Cookies are not isolated by port, so the
/// browser then sends them to the app as well.
fn plant_cookies(browser: &Browser, set_cookies: &[String]) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let mut response = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n".to_owned();
    for c in set_cookies {
        write!(response, "Set-Cookie: {c}\r\n").unwrap();
    }
    response.push_str("\r\n");
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = Vec::new();
        let mut byte = [0u8; 1];
        while !buf.ends_with(b"\r\n\r\n") && s.read(&mut byte).unwrap() == 1 {
            buf.push(byte[0]);
        }
        s.write_all(response.as_bytes()).unwrap();
    });
    assert_eq!(browser.get(&url).status, 200);
    server.join().unwrap();
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
    // The link is bound to this browser: its tag, and a link cookie set with the request.
    assert_eq!(query_param(&link, "bind").len(), 64);
    let link_cookie = b.cookie(app::LINK_COOKIE).unwrap();
    assert_eq!(link_cookie.len(), 64);
    // Stored (as a hash) and not consumed by reading.
    let req = db
        .get_verification_request("ada@example.com", &token, SECRET, &email_provider())
        .unwrap()
        .expect("the request is stored");
    assert_eq!(req.token, authdb::hash_verification_token(&token, SECRET));
    assert_eq!(db.get_user_by_email("ada@example.com").unwrap(), None);

    // Opening it shows a page with a button; nothing is used up or signed in yet.
    let page = b.get_once(&link);
    assert_eq!(page.status, 200);
    assert!(!page.signed_in());
    assert_eq!(page.set_cookie(app::SESSION_COOKIE), None);
    assert!(page.body.contains(r#"data-bound="true""#), "{}", page.body);
    assert!(
        db.get_verification_request("ada@example.com", &token, SECRET, &email_provider())
            .unwrap()
            .is_some()
    );
    // Pressing it signs in: a 303 home that sets the session cookie.
    let click = b.post_once(
        &srv.url("/callback/email"),
        &page.hidden_fields("/callback/email"),
    );
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
    assert!(b.use_link(&srv, &link).signed_in());
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
    let csrf = b.csrf_token(&srv, "/signin", "/signin/email");
    let browser_id = b
        .cookie(app::CSRF_COOKIE)
        .expect("the sign-in page sets the CSRF cookie");
    assert_eq!(browser_id.len(), 64);
    let mut fields = email("ada@example.com");
    fields.push(("csrf_token".into(), "0".repeat(64)));
    assert_eq!(b.post_once(&srv.url("/signin/email"), &fields).status, 403);
    // The cookie's value itself (the old double-submit token, which another service on this
    // host can read): refused. The token is an HMAC of it.
    assert_ne!(csrf, browser_id);
    let mut fields = email("ada@example.com");
    fields.push(("csrf_token".into(), browser_id.clone()));
    assert_eq!(b.post_once(&srv.url("/signin/email"), &fields).status, 403);
    // Another browser's token with this browser's cookie: refused.
    let other = Browser::new();
    let mut fields = email("ada@example.com");
    fields.push((
        "csrf_token".into(),
        other.csrf_token(&srv, "/signin", "/signin/email"),
    ));
    assert_eq!(b.post_once(&srv.url("/signin/email"), &fields).status, 403);
    assert!(env.outbox_lines().is_empty());
    // The right one: accepted.
    let mut fields = email("ada@example.com");
    fields.push(("csrf_token".into(), csrf.clone()));
    let ok = b.post_once(&srv.url("/signin/email"), &fields);
    assert_eq!(ok.status, 303);
    assert_eq!(env.outbox_lines().len(), 1);

    // Signed in, the sign-out forms need it too.
    assert!(
        b.use_link(&srv, &env.last_link("ada@example.com"))
            .signed_in()
    );
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
    // The token of this browser's signed-out pages is not valid for its session.
    let r = b.post_once(
        &srv.url("/account/signout-everywhere"),
        &[("csrf_token".to_owned(), csrf)],
    );
    assert_eq!(r.status, 403);
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
    let browser_id = {
        b.get(&srv.url("/signin"));
        b.cookie(app::CSRF_COOKIE).unwrap()
    };
    let callback = b.oauth_until_callback(&srv, "/signin", "1001");
    let nonce = b.cookie(app::STATE_COOKIE).unwrap();
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
    // Replaying the callback (same code, same state) in a browser that has the state nonce
    // and even the browser id of the first one (whoever can read the cookies on this host):
    // the state checks out, but the code is spent.
    let replay = Browser::new();
    replay.set_cookie(&srv, app::STATE_COOKIE, &nonce);
    replay.set_cookie(&srv, app::CSRF_COOKIE, &browser_id);
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
    let t = Browser::new();
    let pending = t.request_link(&srv, &env, "alan@example.com");

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

    // The old server's link points at the old port; its path and query work on the new one,
    // still bound to the browser that asked for it.
    let path = &pending[pending.find("/callback/").unwrap()..];
    assert!(t.use_link(&srv, &srv.url(path)).signed_in());
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
    // Secure cookies get the `__Host-` prefix: the browser keeps them only if they are
    // `Secure`, `Path=/` and without `Domain`. (Browsers, and ureq's cookie jar, treat
    // http://127.0.0.1 as a secure context, so the flow works here without TLS.)
    let host = |name: &str| format!("__Host-{name}");
    let b = Browser::new();
    let page = b.get_once(&secure.url("/signin"));
    assert_eq!(page.set_cookie(app::CSRF_COOKIE), None);
    let csrf = page.set_cookie(&host(app::CSRF_COOKIE)).unwrap();
    assert!(cookie_flag(csrf, "Secure"), "{csrf}");
    assert!(cookie_flag(csrf, "HttpOnly"), "{csrf}");
    assert!(!cookie_flag(csrf, "Domain"), "{csrf}");
    assert_eq!(cookie_attr(csrf, "Path"), Some("/"));
    assert_eq!(cookie_attr(csrf, "SameSite"), Some("Lax"));
    // The link cookie and the session cookie too.
    let form = b.get(&secure.url("/signin"));
    let mut fields = form.hidden_fields("/signin/email");
    fields.push(("email".into(), "ada@example.com".into()));
    let sent = b.post_once(&secure.url("/signin/email"), &fields);
    let link_cookie = sent.set_cookie(&host(app::LINK_COOKIE)).unwrap();
    assert!(cookie_flag(link_cookie, "Secure"), "{link_cookie}");
    assert_eq!(cookie_attr(link_cookie, "Max-Age"), Some("86400"));
    let link = env.last_link("ada@example.com");
    let confirm = b.get(&link);
    assert!(
        confirm.body.contains(r#"data-bound="true""#),
        "{}",
        confirm.body
    );
    let click = b.post_once(
        &secure.url("/callback/email"),
        &confirm.hidden_fields("/callback/email"),
    );
    assert_eq!(click.status, 303);
    let session = click.set_cookie(&host(app::SESSION_COOKIE)).unwrap();
    assert!(cookie_flag(session, "Secure"), "{session}");
    assert!(cookie_flag(session, "HttpOnly"), "{session}");
    assert!(b.get(&secure.url("/")).signed_in());
    // The OAuth state cookie too.
    let start = b.get(&secure.url("/signin"));
    let mut fields = start.hidden_fields("/signin/mock");
    fields.retain(|(k, _)| k != "email");
    let to_provider = b.post_once(&secure.url("/signin/mock"), &fields);
    let state = to_provider.set_cookie(&host(app::STATE_COOKIE)).unwrap();
    assert!(cookie_flag(state, "Secure"), "{state}");
    // Pages are not cached, cannot be framed, and keep their URLs to this site.
    assert_eq!(click.header("cache-control"), Some("no-store"));
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    assert_eq!(page.header("referrer-policy"), Some("same-origin"));
}

// ---------------------------------------------------------------------------------------------
// Sign-in links: a confirm page, and the browser that asked

#[test]
fn opening_a_link_uses_nothing_up_until_its_button_is_pressed() {
    let env = Env::new();
    let db = env.open();
    let srv = Server::start(&env, &db);
    let b = Browser::new();
    let link = b.request_link(&srv, &env, "ada@example.com");
    let token = query_param(&link, "token");

    // A mail scanner (no cookies) fetches the link, twice, and follows nothing else.
    for _ in 0..2 {
        let scanner = Browser::new();
        let page = scanner.get(&link);
        assert_eq!(page.status, 200);
        assert!(!page.signed_in());
        assert_eq!(scanner.whoami(&srv), None);
    }
    assert!(
        db.get_verification_request("ada@example.com", &token, SECRET, &email_provider())
            .unwrap()
            .is_some(),
        "fetching the link must not use it"
    );
    assert_eq!(db.get_user_by_email("ada@example.com").unwrap(), None);

    // The person then opens it and presses the button: signed in, link used.
    let home = b.use_link(&srv, &link);
    assert!(home.signed_in());
    assert!(
        db.get_verification_request("ada@example.com", &token, SECRET, &email_provider())
            .unwrap()
            .is_none()
    );
    // The button's form without its CSRF token, or from another site, does nothing.
    let again = b.request_link(&srv, &env, "ada@example.com");
    let page = b.get(&again);
    let mut fields = page.hidden_fields("/callback/email");
    let forged: Vec<_> = fields
        .iter()
        .filter(|(k, _)| k != "csrf_token")
        .cloned()
        .collect();
    assert_eq!(
        b.post_once(&srv.url("/callback/email"), &forged).status,
        403
    );
    let cross = b.post_from(
        &srv.url("/callback/email"),
        &fields,
        Some("http://127.0.0.1:1"),
        None,
        false,
    );
    assert_eq!(cross.status, 403);
    fields.retain(|(k, _)| k != "other_browser");
    assert_eq!(
        b.post_once(&srv.url("/callback/email"), &fields).status,
        303
    );
}

#[test]
fn a_link_opened_in_another_browser_warns_and_needs_an_explicit_confirmation() {
    let env = Env::new();
    let db = env.open();
    let srv = Server::start(&env, &db);
    // Mallory asks for a link to her own address and gets Ada to open it (login CSRF: Ada
    // would then work, or link her provider account, inside Mallory's account).
    let mallory = Browser::new();
    let link = mallory.request_link(&srv, &env, "mallory@example.com");
    let token = query_param(&link, "token");
    let ada = Browser::new();
    ada.email_sign_in(&srv, &env, "ada@example.com");
    let ada_user = db.get_user_by_email("ada@example.com").unwrap().unwrap();

    let page = ada.get(&link);
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains(r#"data-warning="other-browser""#),
        "{}",
        page.body
    );
    assert!(page.body.contains("requested from another browser"));
    assert!(page.body.contains("mallory@example.com"));
    assert!(page.body.contains("Continuing signs this browser out"));
    // The form of a bound link, posted from this browser (without the explicit
    // confirmation): refused, and the link is not used.
    let mut fields = page.hidden_fields("/callback/email");
    assert!(fields.contains(&("other_browser".into(), "yes".into())));
    fields.retain(|(k, _)| k != "other_browser");
    let refused = ada.post_once(&srv.url("/callback/email"), &fields);
    assert_eq!(refused.status, 403);
    assert!(refused.body.contains(r#"data-warning="other-browser""#));
    assert_eq!(ada.whoami(&srv), Some(ada_user.id));
    assert!(
        db.get_verification_request("mallory@example.com", &token, SECRET, &email_provider())
            .unwrap()
            .is_some()
    );
    assert_eq!(db.get_user_by_email("mallory@example.com").unwrap(), None);
    // A link stripped of its tag is not bound to anyone either.
    let bind = query_param(&link, "bind");
    let stripped = link.replace(&format!("&bind={bind}"), "");
    assert!(
        mallory
            .get(&stripped)
            .body
            .contains(r#"data-warning="other-browser""#)
    );
    // A tag copied into another browser's request does not help: it is tied to the link
    // cookie of the browser that asked.
    let planted = Browser::new();
    planted.set_cookie(&srv, app::LINK_COOKIE, &"0".repeat(64));
    assert!(
        planted
            .get(&link)
            .body
            .contains(r#"data-warning="other-browser""#)
    );

    // The documented choice: a person who did ask for the link on another device confirms
    // explicitly, and is signed in.
    let phone = Browser::new();
    let page = phone.get(&link);
    let home = phone.submit(&srv, &page, "/callback/email", &[]);
    assert!(home.signed_in());
    let m = db
        .get_user_by_email("mallory@example.com")
        .unwrap()
        .unwrap();
    assert_eq!(phone.whoami(&srv), Some(m.id));
    // The browser that asked has no warning (for its next link).
    let next = mallory.request_link(&srv, &env, "mallory@example.com");
    assert!(mallory.use_link(&srv, &next).signed_in());
    assert_eq!(mallory.whoami(&srv), Some(m.id));
    assert_eq!(ada.whoami(&srv), Some(ada_user.id));
    assert_clean(&db);
}

// ---------------------------------------------------------------------------------------------
// Cookies planted from another port, CSRF tokens, Origin

#[test]
fn a_csrf_cookie_planted_from_another_port_is_refused() {
    let env = Env::new();
    let db = env.open();
    let srv = Server::start(&env, &db);
    // The attacker gets a cookie and a matching form token from the app, as anyone can.
    let attacker = Browser::new();
    let attacker_token = attacker.csrf_token(&srv, "/signin", "/signin/email");
    let attacker_id = attacker.cookie(app::CSRF_COOKIE).unwrap();
    // The victim has been on the app, then visits the attacker's service on another port of
    // the same host, which sets a second `authdb_csrf` with a more specific path.
    let victim = Browser::new();
    let own_form = victim.get(&srv.url("/signin"));
    plant_cookies(
        &victim,
        &[format!("{}={attacker_id}; Path=/signin", app::CSRF_COOKIE)],
    );
    // The forged form (assume it got past the Origin check): the browser sends both cookies;
    // refused, nothing sent.
    for token in [&attacker_token, &attacker_id] {
        let forged = victim.post_once(
            &srv.url("/signin/email"),
            &[
                ("email".into(), "mallory@example.com".into()),
                ("csrf_token".into(), token.clone()),
            ],
        );
        assert_eq!(forged.status, 400, "{}", forged.body);
        assert!(forged.body.contains("two cookies named authdb_csrf"));
    }
    // The victim's own form too: which cookie is the real one cannot be told.
    let mut fields = own_form.hidden_fields("/signin/email");
    fields.push(("email".into(), "ada@example.com".into()));
    assert_eq!(
        victim.post_once(&srv.url("/signin/email"), &fields).status,
        400
    );
    let page = victim.get(&srv.url("/signin"));
    assert_eq!(page.status, 400);
    assert!(page.body.contains("Clear this site"));
    assert!(env.outbox_lines().is_empty());
    // The same for a duplicated session cookie.
    let b = Browser::new();
    b.email_sign_in(&srv, &env, "ada@example.com");
    plant_cookies(
        &b,
        &[format!(
            "{}={}; Path=/account",
            app::SESSION_COOKIE,
            "f".repeat(64)
        )],
    );
    assert_eq!(b.get(&srv.url("/account")).status, 400);
    assert!(
        b.get(&srv.url("/")).signed_in(),
        "other paths are unaffected"
    );
}

#[test]
fn a_csrf_token_made_for_another_browser_or_session_is_refused() {
    let env = Env::new();
    let db = env.open();
    let srv = Server::start(&env, &db);
    let victim = Browser::new();
    victim.email_sign_in(&srv, &env, "ada@example.com");
    let ada = db.get_user_by_email("ada@example.com").unwrap().unwrap();
    // The attacker holds valid pairs of its own: signed out, and signed in as Mallory.
    let attacker = Browser::new();
    let signed_out_token = attacker.csrf_token(&srv, "/signin", "/signin/email");
    attacker.email_sign_in(&srv, &env, "mallory@example.com");
    let signed_in_token = attacker.csrf_token(&srv, "/account", "/account/signout-everywhere");
    let attacker_id = attacker.cookie(app::CSRF_COOKIE).unwrap();
    // From another port it overwrites the victim's browser-id cookie with its own (same name,
    // same path: no duplicate), so cookie and token form a pair it knows...
    plant_cookies(
        &victim,
        &[format!("{}={attacker_id}; Path=/", app::CSRF_COOKIE)],
    );
    assert_eq!(victim.cookie(app::CSRF_COOKIE), Some(attacker_id.clone()));
    // ...but the token is bound to the session too: each is refused on the victim's session.
    for token in [&signed_out_token, &signed_in_token, &attacker_id] {
        for (path, extra) in [
            ("/account/signout-everywhere", None),
            ("/signin/mock", Some(("flow", "link"))),
        ] {
            let mut fields = vec![("csrf_token".to_owned(), token.clone())];
            if let Some((k, v)) = extra {
                fields.push((k.to_owned(), v.to_owned()));
            }
            let r = victim.post_once(&srv.url(path), &fields);
            assert_eq!(r.status, 403, "{path}");
        }
    }
    assert_eq!(victim.whoami(&srv), Some(ada.id));
    assert_eq!(db.list_sessions(&ada.id).unwrap().len(), 1);
    // The victim's own pages carry the token for its session, which works.
    let mine = victim.csrf_token(&srv, "/account", "/account/signout-everywhere");
    assert_ne!(mine, signed_in_token);
    let out = victim.post_once(
        &srv.url("/account/signout-everywhere"),
        &[("csrf_token".into(), mine)],
    );
    assert_eq!(out.status, 303);
    assert_eq!(victim.whoami(&srv), None);
}

#[test]
fn a_post_from_another_origin_is_refused() {
    let env = Env::new();
    let db = env.open();
    let srv = Server::start(&env, &db);
    let b = Browser::new();
    let form = b.get(&srv.url("/signin"));
    let mut fields = form.hidden_fields("/signin/email");
    fields.push(("email".into(), "ada@example.com".into()));
    let url = srv.url("/signin/email");
    let other_port = "http://127.0.0.1:1";
    // Another port of the same host is another origin (though the same site for cookies).
    for (origin, referer) in [
        (Some(other_port), None),
        (Some("http://localhost:1"), None),
        (Some("null"), None),
        (None, Some(format!("{other_port}/page"))),
        (Some(other_port), Some(srv.url("/signin"))),
        (None, None),
    ] {
        let r = b.post_from(&url, &fields, origin, referer.as_deref(), false);
        assert_eq!(r.status, 403, "{origin:?} {referer:?}");
        assert!(r.body.contains("not submitted from this site"));
    }
    assert!(env.outbox_lines().is_empty());
    // `Referer` of this site stands in for a missing `Origin` (older browsers).
    let r = b.post_from(&url, &fields, None, Some(&srv.url("/signin")), false);
    assert_eq!(r.status, 303);
    let r = b.post_from(&url, &fields, Some(&srv.base), None, false);
    assert_eq!(r.status, 303);
    assert_eq!(env.outbox_lines().len(), 2);
    // The token endpoint is called server to server, without Origin: not refused as such.
    let r = Browser::new().post_from(
        &srv.url("/mock-oauth/token"),
        &[("grant_type".into(), "authorization_code".into())],
        None,
        None,
        false,
    );
    assert_eq!(r.status, 401);
}

// ---------------------------------------------------------------------------------------------
// Account pre-hijacking

#[test]
fn an_unverified_provider_email_cannot_pre_hijack_an_account() {
    let env = Env::new();
    let db = env.open();
    let srv = Server::start(&env, &db);
    // Eve signs up through the provider with a profile claiming Ada's address, unverified.
    let eve = Browser::new();
    assert!(eve.oauth(&srv, "/signin", "1005").signed_in());
    let eve_user = db
        .get_user_by_provider_account_id("mock", "1005")
        .unwrap()
        .unwrap();
    assert_eq!(eve_user.email, None, "an unverified email is not stored");
    assert_eq!(db.get_user_by_email("ada@example.com").unwrap(), None);
    let accounts = db.list_accounts(&eve_user.id).unwrap();
    assert_eq!(
        accounts[0].extra.get("email_verified"),
        Some(&serde_json::Value::Bool(false))
    );
    // Ada later signs in by email: her own new user, with nothing of Eve's.
    let ada = Browser::new();
    ada.email_sign_in(&srv, &env, "ada@example.com");
    let ada_user = db.get_user_by_email("ada@example.com").unwrap().unwrap();
    assert_ne!(ada_user.id, eve_user.id);
    assert_eq!(ada.whoami(&srv), Some(ada_user.id));
    assert!(db.list_accounts(&ada_user.id).unwrap().is_empty());
    assert_eq!(db.list_sessions(&ada_user.id).unwrap().len(), 1);
    // Eve's session and provider account lead to Eve's user only.
    assert_eq!(eve.whoami(&srv), Some(eve_user.id));
    let again = Browser::new();
    assert!(again.oauth(&srv, "/signin", "1005").signed_in());
    assert_eq!(again.whoami(&srv), Some(eve_user.id));
    // With Ada's user in place, an unverified claim to her address is not matched either (no
    // OAuthAccountNotLinked that would tell the address has an account): a separate user.
    db.unlink_account(&eve_user.id, "mock", "1005").unwrap();
    let third = Browser::new();
    let home = third.oauth(&srv, "/signin", "1005");
    assert!(home.signed_in(), "{}", home.body);
    let third_user = third.whoami(&srv).unwrap();
    assert_ne!(third_user, ada_user.id);
    assert_eq!(
        db.get_user_by_email("ada@example.com").unwrap().unwrap().id,
        ada_user.id
    );
    assert_clean(&db);
}

#[test]
fn the_first_email_verification_ends_other_sessions_and_unverified_links() {
    let env = Env::new();
    let db = env.open();
    let srv = Server::start(&env, &db);
    // A user as the previous version of this example stored an OAuth sign-up: Eve's provider
    // profile claimed Ada's address, unverified, and it was stored (no record of whether the
    // provider verified it).
    let legacy = db
        .create_user(&NewUser {
            name: Some("Eve".into()),
            email: Some("ada@example.com".into()),
            ..NewUser::default()
        })
        .unwrap();
    db.link_account(
        &legacy.id,
        &NewAccount {
            provider_type: "oauth".into(),
            provider_id: "mock".into(),
            provider_account_id: "1005".into(),
            access_token: Some("old".into()),
            ..NewAccount::default()
        },
    )
    .unwrap();
    // Eve signs in with it and links another provider account to the user.
    let eve = Browser::new();
    assert!(eve.oauth(&srv, "/signin", "1005").signed_in());
    assert_eq!(eve.whoami(&srv), Some(legacy.id));
    assert_eq!(eve.oauth(&srv, "/account", "1003").path(), "/account");
    assert_eq!(db.list_accounts(&legacy.id).unwrap().len(), 2);
    // Ada signs in by email: the address is hers, so is the user; Eve's session and links go,
    // in the same transaction.
    let ada = Browser::new();
    ada.email_sign_in(&srv, &env, "ada@example.com");
    assert_eq!(ada.whoami(&srv), Some(legacy.id));
    assert_eq!(eve.whoami(&srv), None);
    assert!(db.list_accounts(&legacy.id).unwrap().is_empty());
    assert_eq!(db.list_sessions(&legacy.id).unwrap().len(), 1);
    assert_eq!(
        db.get_user(&legacy.id).unwrap().unwrap().email_verified,
        Some(env.clock.now())
    );
    assert_eq!(
        db.get_user_by_provider_account_id("mock", "1005").unwrap(),
        None
    );
    // Eve's provider account now signs up a user of its own.
    assert!(eve.oauth(&srv, "/signin", "1005").signed_in());
    assert_ne!(eve.whoami(&srv), Some(legacy.id));

    // A user whose provider verified the address keeps that provider account; others go.
    let g1 = Browser::new();
    assert!(g1.oauth(&srv, "/signin", "1002").signed_in());
    let grace = db.get_user_by_email("grace@example.com").unwrap().unwrap();
    assert_eq!(grace.email_verified, None);
    assert_eq!(g1.oauth(&srv, "/account", "1003").path(), "/account");
    let g2 = Browser::new();
    g2.email_sign_in(&srv, &env, "grace@example.com");
    assert_eq!(g2.whoami(&srv), Some(grace.id));
    assert_eq!(g1.whoami(&srv), None);
    let kept: Vec<_> = db
        .list_accounts(&grace.id)
        .unwrap()
        .into_iter()
        .map(|a| a.provider_account_id)
        .collect();
    assert_eq!(kept, ["1002"]);
    // Once verified, later email sign-ins leave the other sessions alone.
    assert!(g1.oauth(&srv, "/signin", "1002").signed_in());
    let g3 = Browser::new();
    g3.email_sign_in(&srv, &env, "grace@example.com");
    assert_eq!(g1.whoami(&srv), Some(grace.id));
    assert_eq!(g2.whoami(&srv), Some(grace.id));
    assert_eq!(db.list_sessions(&grace.id).unwrap().len(), 3);
    assert_clean(&db);
}

// ---------------------------------------------------------------------------------------------
// Abuse controls

#[test]
fn link_requests_are_limited_per_address_and_per_client() {
    let env = Env::new();
    let db = env.open();
    let srv = Server::start(&env, &db);
    let b = Browser::new();
    let form = b.get(&srv.url("/signin")).hidden_fields("/signin/email");
    let ask = |email: &str| {
        let mut fields = form.clone();
        fields.push(("email".into(), email.into()));
        b.post_once(&srv.url("/signin/email"), &fields)
    };
    // Per address: 5 at once...
    for _ in 0..5 {
        assert_eq!(ask("flood@example.com").status, 303);
    }
    // ...then refused, under any spelling of the address, with the wait in Retry-After.
    for spelling in ["flood@example.com", " FLOOD@Example.com"] {
        let r = ask(spelling);
        assert_eq!(r.status, 429, "{}", r.body);
        assert_eq!(r.header("retry-after"), Some("180"));
        assert!(r.body.contains("Too many sign-in links"));
    }
    assert_eq!(env.outbox_lines().len(), 5);
    // Per client: 20 at once over all addresses (the refused requests were not charged).
    for i in 0..15 {
        assert_eq!(ask(&format!("user{i}@example.com")).status, 303);
    }
    let r = ask("one-more@example.com");
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), Some("30"));
    assert_eq!(env.outbox_lines().len(), 20);
    // Buckets refill with time: one request per 30 s for the client.
    env.clock.advance(Duration::seconds(30));
    assert_eq!(ask("one-more@example.com").status, 303);
    assert_eq!(ask("yet-another@example.com").status, 429);
    // And one per 3 minutes for the address.
    env.clock.advance(Duration::minutes(3));
    assert_eq!(ask("flood@example.com").status, 303);
    assert_eq!(ask("flood@example.com").status, 429);
    assert_eq!(env.outbox_lines().len(), 22);
}

#[test]
fn a_request_for_another_host_is_refused() {
    let env = Env::new();
    let db = env.open();
    let srv = Server::start(&env, &db);
    let get = |host: Option<&str>, target: &str, version: &str| {
        let host = host.map(|h| format!("Host: {h}\r\n")).unwrap_or_default();
        raw_http(
            srv.addr(),
            &format!("GET {target} HTTP/{version}\r\n{host}Connection: close\r\n\r\n"),
        )
    };
    // This site's host, with its port or (as .ci/run sends it) without.
    let ok = get(Some(srv.addr()), "/signin", "1.1");
    assert_eq!(raw_status(&ok), 200, "{ok}");
    assert!(ok.to_lowercase().contains("sign in"));
    let ci = get(Some("127.0.0.1"), "/signin", "1.0");
    assert_eq!(raw_status(&ci), 200, "{ci}");
    // A DNS-rebinding page reaches 127.0.0.1 under its own name: refused, before any cookie
    // is looked at. So are another port, another name of this machine, no Host at all, and
    // an absolute-form target naming another host.
    let port = srv.addr().rsplit_once(':').unwrap().1;
    for (host, target, version) in [
        (Some(format!("rebind.example:{port}")), "/signin", "1.1"),
        (Some("rebind.example".to_owned()), "/signin", "1.1"),
        (Some(format!("localhost:{port}")), "/signin", "1.1"),
        (Some("127.0.0.1:1".to_owned()), "/signin", "1.1"),
        (Some(format!("127.0.0.1:{port}@rebind.example")), "/", "1.1"),
        (None, "/signin", "1.0"),
        (
            Some(srv.addr().to_owned()),
            "http://rebind.example/signin",
            "1.1",
        ),
    ] {
        let answer = get(host.as_deref(), target, version);
        assert_eq!(raw_status(&answer), 400, "{host:?} {target}: {answer}");
        assert!(
            answer.contains(&format!("only answers for {}", srv.base)),
            "{answer}"
        );
        let lower = answer.to_lowercase();
        assert!(
            lower.contains("x-content-type-options: nosniff"),
            "{answer}"
        );
        assert!(!lower.contains("set-cookie"), "{answer}");
    }
    // Two Host headers: refused.
    let two = raw_http(
        srv.addr(),
        &format!(
            "GET / HTTP/1.1\r\nHost: {0}\r\nHost: rebind.example\r\nConnection: close\r\n\r\n",
            srv.addr()
        ),
    );
    assert_eq!(raw_status(&two), 400, "{two}");

    // The security headers of a normal page.
    let page = Browser::new().get(&srv.url("/signin"));
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(
        page.header("cross-origin-opener-policy"),
        Some("same-origin")
    );
    let csp = page.header("content-security-policy").unwrap();
    for directive in [
        "default-src 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ] {
        assert!(csp.contains(directive), "{csp}");
    }
    assert_eq!(page.header("referrer-policy"), Some("same-origin"));
}

#[test]
fn a_client_that_trickles_its_headers_is_cut_off() {
    let env = Env::new();
    let db = env.open();
    let srv = Server::start_with(
        &env,
        &db,
        &Options {
            header_read_timeout: StdDuration::from_secs(1),
            ..Options::default()
        },
    );
    let mut s = TcpStream::connect(srv.addr()).unwrap();
    s.set_read_timeout(Some(StdDuration::from_secs(15)))
        .unwrap();
    let started = Instant::now();
    write!(s, "GET /signin HTTP/1.1\r\nHost: {}\r\n", srv.addr()).unwrap();
    // ...and never the blank line that ends the headers.
    let mut buf = [0u8; 512];
    match s.read(&mut buf) {
        Ok(0) => {}
        Ok(n) => {
            let answer = String::from_utf8_lossy(&buf[..n]);
            assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        }
        Err(e) => assert!(
            matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted
            ),
            "the connection stayed open: {e}"
        ),
    }
    let waited = started.elapsed();
    assert!(
        waited >= StdDuration::from_millis(900) && waited < StdDuration::from_secs(10),
        "{waited:?}"
    );
    // Complete requests are served as usual.
    assert_eq!(Browser::new().get(&srv.url("/signin")).status, 200);
}

// ---------------------------------------------------------------------------------------------
// The mock provider: PKCE, state, expires_in

#[test]
fn pkce_is_required_and_a_code_without_its_verifier_is_refused() {
    let env = Env::new();
    let db = env.open();
    let srv = Server::start(&env, &db);
    let b = Browser::new();
    // The authorize request must carry an S256 challenge.
    let authorize = b.oauth_start(&srv, "/signin");
    let url = authorize.url.clone();
    assert_eq!(query_param(&url, "code_challenge_method"), "S256");
    let challenge = query_param(&url, "code_challenge");
    assert_eq!(challenge.len(), 43);
    let without = url.replace(&format!("&code_challenge={challenge}"), "");
    assert_eq!(b.get(&without).status, 400);
    let plain = url.replace("code_challenge_method=S256", "code_challenge_method=plain");
    assert_eq!(b.get(&plain).status, 400);

    // A code intercepted on its way back (the redirect is not followed) is useless without the
    // verifier, even with the client secret; the failed attempt spends it.
    let provider = oauth_mock::Provider::new(&srv.base, SECRET);
    let callback = b.oauth_until_callback(&srv, "/signin", "1001");
    let code = query_param(&callback, "code");
    let stolen = provider.exchange(&code, &"a".repeat(64));
    assert!(
        stolen.as_ref().is_err_and(|e| e.contains("invalid_grant")),
        "{stolen:?}"
    );
    let late = b.get(&callback);
    assert_eq!(late.path(), "/signin?error=OAuthCallback");
    assert_eq!(b.whoami(&srv), None);
    assert_eq!(
        db.get_user_by_provider_account_id("mock", "1001").unwrap(),
        None
    );
    // No verifier, or a malformed one: refused too.
    for verifier in ["", "short", &"*".repeat(64)] {
        let callback = b.oauth_until_callback(&srv, "/signin", "1001");
        let code = query_param(&callback, "code");
        let r = provider.exchange(&code, verifier);
        assert!(r.is_err_and(|e| e.contains("invalid_grant")), "{verifier}");
    }
    // The app's own exchange (with the verifier derived for its state) works.
    assert!(b.oauth(&srv, "/signin", "1001").signed_in());
}

#[test]
fn the_oauth_state_is_bound_to_its_flow_and_to_the_browser() {
    let env = Env::new();
    let db = env.open();
    let srv = Server::start(&env, &db);

    // A sign-in flow never becomes a link: signed out at the start, signed in (by email, in
    // another tab) by the time the provider answers.
    let b = Browser::new();
    let callback = b.oauth_until_callback(&srv, "/signin", "1001");
    assert!(query_param(&callback, "state").starts_with("signin."));
    b.email_sign_in(&srv, &env, "ada@example.com");
    let ada = db.get_user_by_email("ada@example.com").unwrap().unwrap();
    let r = b.get(&callback);
    assert_eq!(r.path(), "/account?error=OAuthState", "{}", r.body);
    assert!(db.list_accounts(&ada.id).unwrap().is_empty());

    // A link flow never becomes a sign-up: started signed in, signed out meanwhile.
    let callback = b.oauth_until_callback(&srv, "/account", "1002");
    assert!(query_param(&callback, "state").starts_with("link."));
    let out = b.get(&srv.url("/signout"));
    b.submit(&srv, &out, "/signout", &[]);
    let r = b.get(&callback);
    assert_eq!(r.path(), "/signin?error=OAuthState", "{}", r.body);
    assert_eq!(
        db.get_user_by_provider_account_id("mock", "1002").unwrap(),
        None
    );
    assert_eq!(b.whoami(&srv), None);

    // The flow inside the state cannot be changed: it is under the MAC.
    let a = Browser::new();
    a.email_sign_in(&srv, &env, "ada@example.com");
    let callback = a.oauth_until_callback(&srv, "/account", "1002");
    let state = query_param(&callback, "state");
    let swapped = state.replacen("link.", "signin.", 1);
    let r = a.get(&callback.replace(&state, &swapped));
    assert_eq!(r.path(), "/account?error=OAuthState");

    // Another browser: the attacker stops its own link flow at the provider's answer and gets
    // the victim to open the callback, with the state nonce planted from another port. The
    // state is bound to the attacker's browser and session: refused, nothing linked.
    let attacker = Browser::new();
    attacker.email_sign_in(&srv, &env, "mallory@example.com");
    let callback = attacker.oauth_until_callback(&srv, "/account", "1004");
    let nonce = attacker.cookie(app::STATE_COOKIE).unwrap();
    let victim = Browser::new();
    victim.email_sign_in(&srv, &env, "grace@example.com");
    let grace = db.get_user_by_email("grace@example.com").unwrap().unwrap();
    plant_cookies(
        &victim,
        &[format!(
            "{}={nonce}; Path=/; Max-Age=600",
            app::STATE_COOKIE
        )],
    );
    let r = victim.get(&callback);
    assert_eq!(r.path(), "/account?error=OAuthState");
    assert!(db.list_accounts(&grace.id).unwrap().is_empty());
    assert_eq!(
        db.get_user_by_provider_account_id("mock", "1004").unwrap(),
        None
    );
    // In the attacker's own browser the same callback works (the code was not spent).
    assert_eq!(attacker.get(&callback).path(), "/account");
    assert!(
        db.get_user_by_provider_account_id("mock", "1004")
            .unwrap()
            .is_some()
    );
}

#[test]
fn an_expires_in_past_the_calendar_is_stored_as_unknown() {
    let env = Env::new();
    let db = env.open();
    let srv = Server::start(&env, &db);
    for (persona, expires_in, expected) in [
        ("1001", i64::MAX.to_string(), None),
        ("1002", (i64::MAX / 1000).to_string(), None),
        ("1003", i64::MIN.to_string(), None),
        ("1004", "-5".to_owned(), None),
        ("1005", "86400".to_owned(), Some(Duration::days(1))),
    ] {
        let b = Browser::new();
        let home = b.oauth_with(
            &srv,
            "/signin",
            persona,
            "allow",
            &[("expires_in", &expires_in)],
        );
        assert!(home.signed_in(), "{expires_in}: {}", home.body);
        let user = db
            .get_user_by_provider_account_id("mock", persona)
            .unwrap()
            .unwrap();
        let account = &db.list_accounts(&user.id).unwrap()[0];
        assert_eq!(
            account.access_token_expires,
            expected.map(|d| env.clock.now() + d),
            "{expires_in}"
        );
    }
    // Not a number at all: the provider refuses it.
    let b = Browser::new();
    let authorize = b.oauth_start(&srv, "/signin");
    let r = b.submit(
        &srv,
        &authorize,
        "/mock-oauth/authorize",
        &[
            ("persona", "1001"),
            ("decision", "allow"),
            ("expires_in", "99999999999999999999"),
        ],
    );
    assert_eq!(r.status, 400);
    assert_clean(&db);
}

// ---------------------------------------------------------------------------------------------
// Files

#[cfg(unix)]
#[test]
fn the_outbox_and_the_secret_file_are_private() {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let env = Env::new();
    let db = env.open();
    let srv = Server::start(&env, &db);
    // The outbox holds live links: created 0600...
    Browser::new().request_link(&srv, &env, "ada@example.com");
    assert_eq!(mode(&env.outbox()), 0o600);
    // ...and an existing one readable by others is tightened before a link is added.
    std::fs::set_permissions(env.outbox(), std::fs::Permissions::from_mode(0o644)).unwrap();
    Browser::new().request_link(&srv, &env, "grace@example.com");
    assert_eq!(mode(&env.outbox()), 0o600);
    assert_eq!(env.outbox_lines().len(), 2);

    // The secret file: made 0600 with 32 random bytes (hex)...
    let path = env.dir.path().join("secret");
    let secret = app::load_or_create_secret(&path).unwrap();
    assert_eq!(secret.len(), 64);
    assert_eq!(mode(&path), 0o600);
    assert_eq!(app::load_or_create_secret(&path).unwrap(), secret);
    // ...and refused once the group or others could read it.
    for loose in [0o640, 0o604, 0o644] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(loose)).unwrap();
        let e = app::load_or_create_secret(&path).unwrap_err();
        assert!(e.contains("readable by other users"), "{e}");
        assert!(!e.contains(&secret), "the error shows the secret: {e}");
    }
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(app::load_or_create_secret(&path).unwrap(), secret);
}

/// The files the example makes in the working directory are ignored by git (when the tests run
/// from a git checkout with git installed).
#[test]
fn the_example_s_files_are_git_ignored() {
    let root = env!("CARGO_MANIFEST_DIR");
    for file in [
        "authdb-web-secret",
        "authdb-web-outbox.txt",
        "authdb-web.redb",
    ] {
        let status = std::process::Command::new("git")
            .args(["check-ignore", "-q", "--no-index", file])
            .current_dir(root)
            .status();
        match status.map(|s| s.code()) {
            Ok(Some(0)) => {}
            Ok(Some(1)) => panic!("{file} is not in .gitignore"),
            // No git, or not a checkout: nothing to check.
            _ => return,
        }
    }
}

#[test]
fn pkce_s256_matches_rfc_7636() {
    // RFC 7636, appendix B.
    assert_eq!(
        security::pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    );
    assert_eq!(security::base64url(b""), "");
    assert_eq!(security::base64url(b"f"), "Zg");
    assert_eq!(security::base64url(b"fo"), "Zm8");
    assert_eq!(security::base64url(b"foo"), "Zm9v");
    assert_eq!(security::base64url(&[0xfb, 0xff]), "-_8");
}
