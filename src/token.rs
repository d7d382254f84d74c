//! Random tokens and the hashes stored in their place.

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Lowercase hex of `bytes` (on the `get_session` path: no formatting machinery).
pub(crate) fn hex(bytes: &[u8]) -> String {
    fn nibble(n: u8) -> char {
        char::from(if n < 10 { b'0' + n } else { b'a' + (n - 10) })
    }
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(nibble(b >> 4));
        s.push(nibble(b & 0x0f));
    }
    s
}

/// Fills `buf` from the operating system's CSPRNG.
pub(crate) fn random_bytes(buf: &mut [u8]) -> Result<()> {
    getrandom::fill(buf).map_err(|e| Error::Randomness(e.to_string()))
}

/// 32 random bytes as 64 lowercase hex characters (NextAuth's session token format).
pub(crate) fn random_token() -> Result<String> {
    let mut b = [0u8; 32];
    random_bytes(&mut b)?;
    Ok(hex(&b))
}

/// The key a session is stored under: SHA-256 of the token's UTF-8 bytes.
pub(crate) fn session_key(session_token: &str) -> [u8; 32] {
    Sha256::digest(session_token.as_bytes()).into()
}

/// The session's access token, derived from the session token so that it is never stored.
/// Domain-separated from [`session_key`], so one cannot be computed from the other.
pub(crate) fn session_access_token(session_token: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"authdb/v1/session-access-token\0");
    h.update(session_token.as_bytes());
    hex(&h.finalize())
}

/// NextAuth v3's verification token hash: SHA-256 of the UTF-8 string `token + secret`.
pub(crate) fn verification_key(token: &str, secret: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(token.as_bytes());
    h.update(secret.as_bytes());
    h.finalize().into()
}

/// The key an Auth.js verification token (already hashed by the caller) is stored under: the
/// 32 bytes themselves when it is 64 hex characters (so it meets a v3 request with the same
/// hash), else a domain-separated SHA-256 of the string.
pub(crate) fn verification_token_key(token_hash: &str) -> [u8; 32] {
    if let Some(k) = unhex32(token_hash) {
        return k;
    }
    let mut h = Sha256::new();
    h.update(b"authdb/v2/opaque-verification-token\0");
    h.update(token_hash.as_bytes());
    h.finalize().into()
}

/// 64 hex characters (either case) as 32 bytes.
pub(crate) fn unhex32(s: &str) -> Option<[u8; 32]> {
    fn val(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let b = s.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (o, pair) in out.iter_mut().zip(b.chunks_exact(2)) {
        let [hi, lo] = pair else { return None };
        *o = (val(*hi)? << 4) | val(*lo)?;
    }
    Some(out)
}

/// The lowercase hex form NextAuth stores for a verification token.
///
/// `hash_verification_token(token, secret)` equals the `token` field of the
/// [`VerificationRequest`](crate::VerificationRequest) created from them, and equals what a
/// NextAuth v3 deployment stores for the same token and secret.
#[must_use]
pub fn hash_verification_token(token: &str, secret: &str) -> String {
    hex(&verification_key(token, secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_nextauth_hash() {
        // sha256("abc") — token "ab" + secret "c".
        assert_eq!(
            hash_verification_token("ab", "c"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn authjs_hashes_share_keys_with_v3_requests() {
        let h = hash_verification_token("tok", "sec");
        assert_eq!(verification_token_key(&h), verification_key("tok", "sec"));
        assert_eq!(
            verification_token_key(&h.to_uppercase()),
            verification_key("tok", "sec")
        );
        assert_ne!(
            verification_token_key("not-hex"),
            verification_key("not-hex", "")
        );
        assert_ne!(
            verification_token_key(&h[1..]),
            verification_key("tok", "sec")
        );
    }

    #[test]
    fn hex_encodes_every_byte() {
        let all: Vec<u8> = (0..=255).collect();
        let expected: String = all.iter().fold(String::new(), |mut s, b| {
            use std::fmt::Write;
            let _ = write!(s, "{b:02x}");
            s
        });
        assert_eq!(hex(&all), expected);
    }

    #[test]
    fn tokens_are_64_lowercase_hex() {
        let t = random_token().unwrap();
        assert_eq!(t.len(), 64);
        assert!(
            t.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
        assert_ne!(t, random_token().unwrap());
        assert_ne!(session_access_token(&t), hex(&session_key(&t)));
    }
}
