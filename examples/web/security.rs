//! The request-level defences of the example, kept apart from the handlers so each is small
//! enough to read on its own:
//!
//! - [`Keys`]: HMAC-SHA256 tags under a key derived from the app secret (CSRF tokens, the
//!   browser binding of sign-in links, OAuth `state`, the PKCE verifier).
//! - [`SiteOrigin`]: the configured base URL, against which the `Host` header (DNS rebinding)
//!   and the `Origin` / `Referer` of every POST are checked.
//! - [`LinkLimiter`]: token buckets limiting sign-in link requests per address and per client.
//! - Cookie parsing that notices a cookie name sent twice (a cookie planted by another service
//!   on the same host).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use axum::http::{HeaderMap, header};
use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use parking_lot::Mutex;
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

// ---------------------------------------------------------------------------------------------
// MACs

/// The key for the app's own MACs, derived from the app secret (so the secret itself is never
/// used as an HMAC key next to its other uses: verification-token hashing and the database
/// encryption key).
#[derive(Clone)]
pub struct Keys {
    key: [u8; 32],
}

impl Keys {
    /// Derives the MAC key from the app secret.
    pub fn new(app_secret: &str) -> Self {
        let mut mac = HmacSha256::new_from_slice(app_secret.as_bytes())
            .expect("HMAC accepts keys of any length");
        mac.update(b"authdb-web/request-macs/v1");
        Self {
            key: mac.finalize().into_bytes().into(),
        }
    }

    /// `hex(HMAC-SHA256(key, label, parts...))`: 64 hex characters. The label separates the
    /// uses; every part is length-prefixed, so no two lists of parts give the same input.
    pub fn tag(&self, label: &str, parts: &[&str]) -> String {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("32-byte key");
        for p in std::iter::once(label).chain(parts.iter().copied()) {
            mac.update(&(p.len() as u64).to_be_bytes());
            mac.update(p.as_bytes());
        }
        hex(&mac.finalize().into_bytes())
    }
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

/// Base64url without padding (RFC 4648 §5), as PKCE's `code_challenge` wants it.
pub fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

/// PKCE S256: `base64url(sha256(verifier))`.
pub fn pkce_challenge(verifier: &str) -> String {
    base64url(&Sha256::digest(verifier.as_bytes()))
}

/// A PKCE `code_verifier` as RFC 7636 §4.1 allows: 43 to 128 unreserved characters.
pub fn valid_pkce_verifier(v: &str) -> bool {
    (43..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// 64 hexadecimal characters: the shape of every random value and MAC the app issues.
pub fn plausible_token(v: &str) -> bool {
    v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit())
}

// ---------------------------------------------------------------------------------------------
// The site's origin: Host, Origin and Referer checks

/// The scheme, host and port of the configured base URL.
#[derive(Clone, Debug)]
pub struct SiteOrigin {
    scheme: String,
    host: String,
    port: u16,
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

/// Splits `host[:port]` (the host may be a bracketed IPv6 literal); lowercases the host.
fn split_authority(authority: &str) -> Option<(String, Option<u16>)> {
    if authority.is_empty() || authority.contains(['@', '/', '?', '#', ' ']) {
        return None;
    }
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        (format!("[{inside}]"), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), Some(p)),
            None => (authority.to_owned(), None),
        }
    };
    if host.is_empty() || host.contains(':') && !host.starts_with('[') {
        return None;
    }
    let port = match port {
        None => None,
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => Some(p.parse().ok()?),
        Some(_) => return None,
    };
    Some((host.to_ascii_lowercase(), port))
}

/// Splits `scheme://authority[/...]` into a scheme, host and port (explicit or default).
fn split_url(url: &str) -> Option<(String, String, u16)> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let (host, port) = split_authority(authority)?;
    let port = port.or_else(|| default_port(&scheme))?;
    Some((scheme, host, port))
}

impl SiteOrigin {
    /// Parses the base URL (`http` or `https`, a host, an optional port).
    pub fn parse(base_url: &str) -> Result<Self, String> {
        let (scheme, host, port) = split_url(base_url)
            .filter(|(s, _, _)| s == "http" || s == "https")
            .ok_or_else(|| format!("the base URL {base_url:?} is not http(s)://host[:port]"))?;
        Ok(Self { scheme, host, port })
    }

    /// The serialized origin, as browsers send it in `Origin`: `scheme://host[:port]`, the
    /// port left out when it is the scheme's default.
    pub fn serialized(&self) -> String {
        if default_port(&self.scheme) == Some(self.port) {
            format!("{}://{}", self.scheme, self.host)
        } else {
            format!("{}://{}:{}", self.scheme, self.host, self.port)
        }
    }

    /// Whether a request's `Host` (or the authority of an absolute-form request target) names
    /// this site: the same host, and the same port if one is given. A missing port is
    /// accepted: a browser omits it only for the scheme's default port, which would not reach
    /// this server, and DNS rebinding always shows the attacker's host name, never ours.
    pub fn host_ok(&self, authority: &str) -> bool {
        split_authority(authority)
            .is_some_and(|(host, port)| host == self.host && port.is_none_or(|p| p == self.port))
    }

    /// Whether an `Origin` or `Referer` value is on this site (same scheme, host and port).
    pub fn url_ok(&self, url: &str) -> bool {
        split_url(url).is_some_and(|(s, h, p)| s == self.scheme && h == self.host && p == self.port)
    }
}

/// Why a POST's origin was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum OriginCheck {
    /// `Origin` (or, without it, `Referer`) names this site.
    Same,
    /// It names another origin (`null` included).
    Cross,
    /// The request carries neither header.
    Missing,
}

/// Checks a state-changing request's `Origin`, falling back to `Referer` when `Origin` is absent
/// (older browsers). Browsers send `Origin` on every POST; with this app's
/// `Referrer-Policy: same-origin` it is the real origin (under `no-referrer` it would be
/// `null`).
pub fn check_origin(site: &SiteOrigin, headers: &HeaderMap) -> OriginCheck {
    let get = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let verdict = |ok| {
        if ok {
            OriginCheck::Same
        } else {
            OriginCheck::Cross
        }
    };
    if headers.get_all(header::ORIGIN).iter().count() > 1 {
        return OriginCheck::Cross;
    }
    match (get(header::ORIGIN), get(header::REFERER)) {
        (Some(origin), _) => verdict(site.url_ok(origin)),
        (None, Some(referer)) => verdict(site.url_ok(referer)),
        (None, None) if headers.contains_key(header::ORIGIN) => OriginCheck::Cross,
        (None, None) => OriginCheck::Missing,
    }
}

// ---------------------------------------------------------------------------------------------
// Cookies

/// The `name=value` pairs of the request's `Cookie` headers, in order.
pub fn cookie_pairs(headers: &HeaderMap) -> impl Iterator<Item = (&str, &str)> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .map(|(k, v)| (k.trim(), v.trim()))
}

/// The first of `names` that the request sends more than once. A browser sends two cookies of
/// one name when a second one was set with another `Path` or `Domain` — for example by another
/// service on the same host (cookies are not isolated by port). Which one comes first is up to
/// the browser, so such a request is refused rather than guessed at.
pub fn duplicate_cookie<'n>(headers: &HeaderMap, names: &[&'n str]) -> Option<&'n str> {
    names
        .iter()
        .copied()
        .find(|name| cookie_pairs(headers).filter(|(k, _)| k == name).count() > 1)
}

/// The value of the cookie `name` (the request has been checked for duplicates).
pub fn cookie_value<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    cookie_pairs(headers)
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

// ---------------------------------------------------------------------------------------------
// Rate limits

/// A token bucket: up to `burst` requests at once, then one per `every`.
#[derive(Clone, Copy, Debug)]
pub struct RateLimit {
    /// How many requests may come at once.
    pub burst: u16,
    /// How often the bucket gains one request back.
    pub every: Duration,
}

/// How many keys one limiter tracks at most. Keys whose bucket is full again are dropped when
/// the table is full; if it is still full, new keys are refused (fail closed) until some
/// buckets refill.
pub const MAX_TRACKED_KEYS: usize = 100_000;

/// Sign-in link requests, limited per address and per client, both in one lock so a request
/// is charged to both buckets or to neither. The buckets use the GCRA form of a token bucket:
/// each key stores the time its bucket is full again (its "theoretical arrival time").
pub struct LinkLimiter {
    per_address: RateLimit,
    per_client: RateLimit,
    /// Per address, per client: the time each bucket is full again.
    tables: Mutex<(Table, Table)>,
}

type Table = HashMap<String, DateTime<Utc>>;

/// The new "full again" time of the bucket, or how long to wait.
fn gcra(
    table: &mut Table,
    rule: RateLimit,
    key: &str,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, Duration> {
    if !table.contains_key(key) && table.len() >= MAX_TRACKED_KEYS {
        table.retain(|_, full_at| *full_at > now);
        if table.len() >= MAX_TRACKED_KEYS {
            return Err(rule.every);
        }
    }
    let full_at = table.get(key).copied().unwrap_or(now).max(now);
    let next = full_at + rule.every;
    let window = rule.every * i32::from(rule.burst);
    if next - now > window {
        Err(next - now - window)
    } else {
        Ok(next)
    }
}

impl LinkLimiter {
    /// A limiter with these rules.
    pub fn new(per_address: RateLimit, per_client: RateLimit) -> Self {
        Self {
            per_address,
            per_client,
            tables: Mutex::new((HashMap::new(), HashMap::new())),
        }
    }

    /// Charges one request for `address` from `client`, or says how long to wait.
    pub fn allow(&self, address: &str, client: &str, now: DateTime<Utc>) -> Result<(), Duration> {
        let mut guard = self.tables.lock();
        let (addresses, clients) = &mut *guard;
        let a = gcra(addresses, self.per_address, address, now);
        let c = gcra(clients, self.per_client, client, now);
        match (a, c) {
            (Ok(a), Ok(c)) => {
                addresses.insert(address.to_owned(), a);
                clients.insert(client.to_owned(), c);
                Ok(())
            }
            (Err(wa), Err(wc)) => Err(wa.max(wc)),
            (Err(w), Ok(_)) | (Ok(_), Err(w)) => Err(w),
        }
    }
}

/// The rate-limit key of a client: its IP address, an IPv6 client by its /64 (one host usually
/// has a whole /64). The peer address is the TCP peer: behind a reverse proxy every request
/// would come from the proxy, and a forwarded-for header must only be trusted from that proxy
/// (not done here: the example serves loopback directly).
pub fn client_key(peer: Option<SocketAddr>) -> String {
    match peer.map(|p| p.ip()) {
        Some(IpAddr::V4(ip)) => ip.to_string(),
        Some(IpAddr::V6(ip)) => ip.to_ipv4_mapped().map_or_else(
            || {
                let s = ip.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            },
            |v4| v4.to_string(),
        ),
        None => "unknown".to_owned(),
    }
}
