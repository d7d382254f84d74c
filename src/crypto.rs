//! At-rest encryption of OAuth tokens (XChaCha20-Poly1305).
//!
//! A sealed value is `2 || key id (4 bytes) || nonce (24 bytes) || ciphertext+tag`. The key id
//! names the key it was sealed with (so keys can be rotated and a wrong key is reported as
//! such); id 0 means "unknown" (values sealed by schema version 1, which had no key ids). The
//! associated data binds the value to its account and field, so a sealed token cannot be moved
//! to another account or field unnoticed.

use std::fmt;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

const NONCE_LEN: usize = 24;
const SEALED_FORMAT: u8 = 2;
const HEADER_LEN: usize = 1 + 4;
/// The key id of values sealed before key ids existed.
const UNKNOWN_KEY_ID: [u8; 4] = [0; 4];

/// The 256-bit key that encrypts OAuth access and refresh tokens in the file.
///
/// Keep it outside the database file (an environment variable, a secrets manager). Without the
/// same key, stored OAuth tokens cannot be read back: [`Error::Corrupt`] is returned.
///
/// ```
/// use authdb::EncryptionKey;
/// let key = EncryptionKey::from_secret("a long random secret from the environment")?;
/// let same = EncryptionKey::from_secret("a long random secret from the environment")?;
/// assert_eq!(key, same);
/// assert_eq!(format!("{key:?}"), "EncryptionKey(<redacted>)");
/// assert!(EncryptionKey::from_secret("hunter2").is_err());
/// # Ok::<(), authdb::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct EncryptionKey([u8; 32]);

impl EncryptionKey {
    /// A key from 32 bytes (e.g. decoded from an environment variable).
    #[must_use]
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// A key derived from an application secret (such as `AUTH_SECRET` / `NEXTAUTH_SECRET`)
    /// with HKDF-SHA256 under a fixed, authdb-specific label.
    ///
    /// The secret must be at least [`MIN_SECRET_LEN`](crate::limits::MIN_SECRET_LEN) bytes
    /// (e.g. `openssl rand -base64 32`), else [`Error::InvalidInput`]: HKDF does not slow down
    /// guessing, so a short or human-chosen secret would let a stolen file be attacked offline.
    pub fn from_secret(secret: &str) -> Result<Self> {
        crate::limits::secret("secret", secret)?;
        let hk = hkdf::Hkdf::<Sha256>::new(Some(b"authdb/v2/encryption-key"), secret.as_bytes());
        let mut key = [0u8; 32];
        hk.expand(b"oauth-token-sealing", &mut key)
            .map_err(|_| Error::InvalidConfig("HKDF output length"))?;
        Ok(Self(key))
    }

    /// The key authdb 0.1 derived from a secret (one SHA-256, any length accepted). Only to
    /// read files written by 0.1 with `from_secret`: open with this key, then move the tokens
    /// to a [`from_secret`](Self::from_secret) key with `authdb rekey`.
    #[must_use]
    #[deprecated(
        note = "weak derivation kept for files sealed by authdb 0.1; rekey to from_secret"
    )]
    pub fn from_secret_v1(secret: &str) -> Self {
        let mut h = Sha256::new();
        h.update(b"authdb/v1/oauth-token-key\0");
        h.update(secret.as_bytes());
        Self(h.finalize().into())
    }

    /// A fresh random key from the operating system.
    pub fn generate() -> Result<Self> {
        let mut b = [0u8; 32];
        crate::token::random_bytes(&mut b)?;
        Ok(Self(b))
    }

    /// The id stored with every value this key seals: 4 bytes of a domain-separated hash of
    /// the key (never 0, which marks values of unknown key).
    fn key_id(&self) -> [u8; 4] {
        let mut h = Sha256::new();
        h.update(b"authdb/v2/key-id\0");
        h.update(self.0);
        let d: [u8; 32] = h.finalize().into();
        let [a, b, c, e, ..] = d;
        let id = [a, b, c, e];
        if id == UNKNOWN_KEY_ID {
            [0, 0, 0, 1]
        } else {
            id
        }
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new((&self.0).into())
    }

    /// Encrypts `plaintext` bound to `ad`.
    pub(crate) fn seal(&self, ad: &[u8], plaintext: &str) -> Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        crate::token::random_bytes(&mut nonce)?;
        let ct = self
            .cipher()
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: ad,
                },
            )
            .map_err(|_| Error::corrupt(crate::schema::ACCOUNTS_NAME, "cannot encrypt token"))?;
        let mut out = Vec::with_capacity(HEADER_LEN + NONCE_LEN + ct.len());
        out.push(SEALED_FORMAT);
        out.extend_from_slice(&self.key_id());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Decrypts a value made by [`seal`](Self::seal) with the same key and `ad`.
    pub(crate) fn open(&self, ad: &[u8], sealed: &[u8]) -> Result<String> {
        let fail = || {
            Error::corrupt(
                crate::schema::ACCOUNTS_NAME,
                "cannot decrypt an OAuth token (wrong encryption key, or a damaged record)",
            )
        };
        let (header, body) = sealed.split_at_checked(HEADER_LEN).ok_or_else(fail)?;
        let (format, key_id) = header.split_first().ok_or_else(fail)?;
        if *format != SEALED_FORMAT {
            return Err(fail());
        }
        if key_id != UNKNOWN_KEY_ID && key_id != self.key_id() {
            return Err(Error::corrupt(
                crate::schema::ACCOUNTS_NAME,
                "a secret was sealed with a different encryption key than the one configured",
            ));
        }
        let (nonce, ct) = body.split_at_checked(NONCE_LEN).ok_or_else(fail)?;
        let pt = self
            .cipher()
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad: ad })
            .map_err(|_| fail())?;
        String::from_utf8(pt).map_err(|_| fail())
    }
}

impl fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EncryptionKey(<redacted>)")
    }
}

/// A value sealed by schema version 1 (`nonce || ciphertext`) in today's format, with the
/// unknown key id (the migration does not need the key).
pub(crate) fn upgrade_v1_sealed(v1: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + v1.len());
    out.push(SEALED_FORMAT);
    out.extend_from_slice(&UNKNOWN_KEY_ID);
    out.extend_from_slice(v1);
    out
}

/// The associated data of one sealed field of one account.
pub(crate) fn account_ad(account_id: &[u8; 16], field: &str) -> Vec<u8> {
    let mut ad = Vec::with_capacity(16 + field.len() + 16);
    ad.extend_from_slice(b"authdb/v1/");
    ad.extend_from_slice(account_id);
    ad.extend_from_slice(field.as_bytes());
    ad
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_binding() {
        let k = EncryptionKey::generate().unwrap();
        let ad = account_ad(&[1; 16], "access_token");
        let sealed = k.seal(&ad, "gho_secret").unwrap();
        assert!(!sealed.windows(10).any(|w| w == b"gho_secret"));
        assert_eq!(k.open(&ad, &sealed).unwrap(), "gho_secret");
        assert!(
            k.open(&account_ad(&[2; 16], "access_token"), &sealed)
                .is_err()
        );
        assert!(
            k.open(&account_ad(&[1; 16], "refresh_token"), &sealed)
                .is_err()
        );
        assert!(
            EncryptionKey::generate()
                .unwrap()
                .open(&ad, &sealed)
                .is_err()
        );
        assert!(k.open(&ad, &sealed[..10]).is_err());
        // Fresh nonce every time.
        assert_ne!(sealed, k.seal(&ad, "gho_secret").unwrap());
        // A value of schema version 1 (no header) opens once upgraded.
        let v1 = sealed[HEADER_LEN..].to_vec();
        assert_eq!(k.open(&ad, &upgrade_v1_sealed(&v1)).unwrap(), "gho_secret");
        assert!(k.open(&ad, &v1).is_err());
    }
}
