//! Password hashing with argon2id (PHC strings).

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::error::{Error, Result};

/// argon2id cost parameters for new password hashes.
///
/// Existing hashes keep the parameters they were made with (they are part of the PHC string),
/// so changing these affects only passwords set afterwards.
///
/// ## Defaults
/// OWASP's recommendation for argon2id: 19 MiB of memory, 2 iterations, 1 lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordParams {
    /// Memory cost in KiB.
    pub memory_kib: u32,
    /// Number of passes.
    pub iterations: u32,
    /// Degree of parallelism (lanes).
    pub parallelism: u32,
}

impl Default for PasswordParams {
    fn default() -> Self {
        Self {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
        }
    }
}

impl PasswordParams {
    fn hasher(&self) -> Result<Argon2<'static>> {
        let params = Params::new(self.memory_kib, self.iterations, self.parallelism, None)
            .map_err(|_| Error::InvalidConfig("argon2 parameters out of range"))?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }

    /// Checks that argon2 accepts these parameters ([`Error::InvalidConfig`] if not).
    pub fn validate(&self) -> Result<()> {
        self.hasher().map(|_| ())
    }

    /// Hashes `password` with a fresh random salt; returns the PHC string.
    pub fn hash(&self, password: &str) -> Result<String> {
        let mut salt = [0u8; 16];
        crate::token::random_bytes(&mut salt)?;
        let salt = SaltString::encode_b64(&salt).map_err(|e| Error::PasswordHash(e.to_string()))?;
        let phc = self
            .hasher()?
            .hash_password(password.as_bytes(), &salt)
            .map_err(|e| Error::PasswordHash(e.to_string()))?;
        Ok(phc.to_string())
    }
}

/// Verifies `password` against a PHC string. A malformed PHC string is a corrupt record.
pub(crate) fn verify(phc: &str, password: &str) -> Result<bool> {
    let parsed = PasswordHash::new(phc)
        .ok()
        .filter(|h| h.algorithm.as_str() == "argon2id")
        .ok_or_else(|| {
            Error::corrupt(
                crate::schema::CREDENTIALS_NAME,
                "malformed password hash (not an argon2id PHC string)",
            )
        })?;
    Ok(Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok())
}

/// True if `phc` parses as an argon2id PHC string.
pub(crate) fn is_valid_phc(phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| h.algorithm.as_str() == "argon2id")
}

/// Hashes and verifies passwords the way every backend must: at most a set number of argon2
/// computations at once (each holds the configured memory, so a burst of sign-in attempts
/// cannot exhaust memory), and a decoy verification when an email has no password (so the
/// time taken does not tell which emails exist). The decoy hash is made when the checker is,
/// with the configured cost.
pub struct PasswordChecker {
    params: PasswordParams,
    decoy: String,
    free: parking_lot::Mutex<usize>,
    freed: parking_lot::Condvar,
}

impl std::fmt::Debug for PasswordChecker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordChecker")
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

impl PasswordChecker {
    /// A checker hashing with `params`, running at most `max_concurrent` (at least 1)
    /// computations at once.
    pub fn new(params: PasswordParams, max_concurrent: usize) -> Result<Self> {
        params.validate()?;
        let decoy = params.hash("authdb: dummy password for absent users")?;
        Ok(Self {
            params,
            decoy,
            free: parking_lot::Mutex::new(max_concurrent.max(1)),
            freed: parking_lot::Condvar::new(),
        })
    }

    /// Hashes a new password (a PHC string), waiting for a free slot.
    pub fn hash(&self, password: &str) -> Result<String> {
        self.run(|| self.params.hash(password))
    }

    /// `found`'s user if `password` matches its stored PHC string; with nothing found, runs a
    /// verification of the same cost against the decoy and gives `None`. Waits for a slot.
    pub fn verify<U>(&self, found: Option<(U, String)>, password: &str) -> Result<Option<U>> {
        self.run(|| {
            if let Some((user, phc)) = found {
                Ok(verify(&phc, password)?.then_some(user))
            } else {
                verify(&self.decoy, password)?;
                Ok(None)
            }
        })
    }

    fn run<T>(&self, f: impl FnOnce() -> T) -> T {
        {
            let mut free = self.free.lock();
            while *free == 0 {
                self.freed.wait(&mut free);
            }
            *free -= 1;
        }
        let _release = SlotRelease(self);
        f()
    }
}

/// Gives a hashing slot back, even when the hashing panics.
struct SlotRelease<'a>(&'a PasswordChecker);

impl Drop for SlotRelease<'_> {
    fn drop(&mut self) {
        *self.0.free.lock() += 1;
        self.0.freed.notify_one();
    }
}
