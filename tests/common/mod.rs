//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use authdb::{AuthDb, Builder, Durability, EmailProvider, ManualClock, PasswordParams};
use chrono::{DateTime, TimeZone, Utc};

/// A fixed starting time for manual clocks.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 1, 12, 0, 0).unwrap()
}

/// Cheap argon2 parameters: the tests exercise logic, not hashing cost.
pub fn fast_passwords() -> PasswordParams {
    PasswordParams {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    }
}

/// The key the tests encrypt OAuth tokens with.
pub fn test_key() -> authdb::EncryptionKey {
    authdb::EncryptionKey::from_bytes([42; 32])
}

/// A builder with a manual clock at `t0()`, fast password hashing and non-durable commits.
pub fn builder(clock: &Arc<ManualClock>) -> Builder {
    AuthDb::builder()
        .clock(clock.clone())
        .password_params(fast_passwords())
        .encryption_key(test_key())
        .durability(Durability::None)
}

/// A temporary directory and a database file path inside it.
pub struct TempDb {
    pub dir: tempfile::TempDir,
    pub clock: Arc<ManualClock>,
}

impl TempDb {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            clock: Arc::new(ManualClock::new(t0())),
        }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().join("auth.redb")
    }

    /// Opens (or reopens) the database file. Durable commits, so a reopen sees everything.
    pub fn open(&self) -> AuthDb {
        builder(&self.clock)
            .durability(Durability::Immediate)
            .open(self.path())
            .unwrap()
    }
}

/// What a recording provider's sender was given: (identifier, url, raw token) per mail.
pub type Sent = Arc<parking_lot::Mutex<Vec<(String, String, String)>>>;

/// An email provider whose sender records what it was given.
pub fn recording_provider() -> (EmailProvider, Sent) {
    let sent = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let s = sent.clone();
    let p = EmailProvider::new("email", move |m| {
        s.lock().push((
            m.identifier.to_owned(),
            m.url.to_owned(),
            m.token.to_owned(),
        ));
        Ok(())
    });
    (p, sent)
}

/// Asserts the database passes its integrity check.
pub fn assert_clean(db: &AuthDb) {
    let r = db.check_integrity().unwrap();
    assert!(r.is_clean(), "integrity problems:\n{r}");
}

pub fn file_bytes(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap()
}

/// A manual clock at `t0()` and an in-memory database using it.
pub fn mem_db() -> (AuthDb, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(t0()));
    let db = builder(&clock).in_memory().unwrap();
    (db, clock)
}

/// A profile with only an email.
pub fn profile(email: &str) -> authdb::NewUser {
    authdb::NewUser {
        email: Some(email.to_owned()),
        ..authdb::NewUser::default()
    }
}

/// An OAuth account of `provider` with id `account_id` and the given tokens.
pub fn oauth_account(
    provider: &str,
    account_id: &str,
    refresh_token: Option<&str>,
    access_token: Option<&str>,
) -> authdb::NewAccount {
    authdb::NewAccount {
        provider_type: "oauth".to_owned(),
        provider_id: provider.to_owned(),
        provider_account_id: account_id.to_owned(),
        refresh_token: refresh_token.map(str::to_owned),
        access_token: access_token.map(str::to_owned),
        access_token_expires: None,
        ..Default::default()
    }
}

/// True if `needle` occurs anywhere in `haystack`.
pub fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// An email provider whose sender always fails.
pub fn failing_provider() -> EmailProvider {
    EmailProvider::new("email", |_| Err("smtp is down".into()))
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// A small seeded PRNG (xorshift64*) for randomized tests: reproducible from its seed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        // Any seed works; zero is the one fixed point of xorshift, so it is remapped.
        Self((seed ^ 0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// An index into a collection of `len > 0` items.
    pub fn index(&mut self, len: usize) -> usize {
        (self.next_u64() % len as u64) as usize
    }

    /// True with probability `num / den`.
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }

    pub fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            *b = self.next_u64() as u8;
        }
    }
}

/// An unsigned number from the environment variable `name`, or `default` when it is unset.
/// Panics on a value that is not a number, so a typo in a long-run setting is not ignored.
pub fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
        Err(_) => default,
    }
}
