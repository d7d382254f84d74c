//! How stored values are spelled in an export line: times as RFC 3339 (or integers outside
//! years 0–9999), fixed-size hashes as lowercase hex, byte strings as standard padded base64.
//! Decoding is strict: one spelling per value, so export → import → export keeps the bytes.

use chrono::{DateTime, Datelike, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A stored time (microseconds since the epoch) as RFC 3339 with microseconds, or as an
/// integer when the year is outside 0–9999.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Ts(pub(super) i64);

impl Serialize for Ts {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match DateTime::<Utc>::from_timestamp_micros(self.0) {
            Some(t) if (0..=9999).contains(&t.year()) => {
                s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Micros, true))
            }
            _ => s.serialize_i64(self.0),
        }
    }
}

impl<'de> Deserialize<'de> for Ts {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(i64),
            Str(String),
        }
        let m = match Raw::deserialize(d)? {
            Raw::Int(m) => m,
            Raw::Str(s) => DateTime::parse_from_rfc3339(&s)
                .map_err(|_| serde::de::Error::custom("a time is not RFC 3339"))?
                .with_timezone(&Utc)
                .timestamp_micros(),
        };
        if DateTime::<Utc>::from_timestamp_micros(m).is_none() {
            return Err(serde::de::Error::custom("a time is out of range"));
        }
        Ok(Ts(m))
    }
}

/// `N` bytes as lowercase hex.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Hex<const N: usize>(pub(super) [u8; N]);

impl<const N: usize> Serialize for Hex<N> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&crate::token::hex(&self.0))
    }
}

impl<'de, const N: usize> Deserialize<'de> for Hex<N> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        unhex::<N>(&s).map(Hex).ok_or_else(|| {
            serde::de::Error::custom(format!("expected {} hexadecimal digits", 2 * N))
        })
    }
}

/// Exactly `2 * N` hex digits (either case) as bytes.
fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let b = s.as_bytes();
    if b.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (o, pair) in out.iter_mut().zip(b.chunks_exact(2)) {
        let [hi, lo] = pair else { return None };
        let hi = char::from(*hi).to_digit(16)?;
        let lo = char::from(*lo).to_digit(16)?;
        *o = u8::try_from(hi * 16 + lo).ok()?;
    }
    Some(out)
}

/// Bytes as standard, padded base64.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct B64(pub(super) Vec<u8>);

const B64_ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn b64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                let idx = ((n >> (18 - 6 * i)) & 63) as usize;
                out.push(char::from(B64_ALPHABET.get(idx).copied().unwrap_or(b'A')));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn b64_decode(s: &str) -> Option<Vec<u8>> {
    fn val(c: u8) -> Option<u32> {
        B64_ALPHABET
            .iter()
            .position(|&a| a == c)
            .and_then(|p| u32::try_from(p).ok())
    }
    let b = s.as_bytes();
    if !b.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(b.len() / 4 * 3);
    let quads = b.len() / 4;
    for (qi, q) in b.chunks_exact(4).enumerate() {
        let pad = q.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && qi + 1 != quads) {
            return None;
        }
        let mut n = 0u32;
        for (i, &c) in q.iter().enumerate() {
            let v = if i >= 4 - pad { 0 } else { val(c)? };
            n = (n << 6) | v;
        }
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(bytes.get(..3 - pad)?);
        // Canonical form only: the bits dropped by padding must be zero.
        let dropped = match pad {
            1 => n & 0xff,
            2 => n & 0xffff,
            _ => 0,
        };
        if dropped != 0 {
            return None;
        }
    }
    Some(out)
}

impl Serialize for B64 {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&b64_encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for B64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        b64_decode(&s)
            .map(B64)
            .ok_or_else(|| serde::de::Error::custom("a byte string is not valid base64"))
    }
}

/// Microseconds in a second.
pub(super) const MICROS: i64 = 1_000_000;

/// A time in microseconds as Auth.js's whole seconds plus, when there is a fraction, the
/// microseconds past that second.
pub(super) fn split_seconds(m: Option<i64>) -> (Option<i64>, Option<u32>) {
    match m {
        None => (None, None),
        Some(m) => {
            let us = m.rem_euclid(MICROS);
            (
                Some(m.div_euclid(MICROS)),
                (us != 0).then(|| u32::try_from(us).unwrap_or(0)),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_and_is_strict() {
        for len in 0..70u8 {
            let bytes: Vec<u8> = (0..len)
                .map(|i| i.wrapping_mul(37).wrapping_add(11))
                .collect();
            let s = b64_encode(&bytes);
            assert_eq!(b64_decode(&s).unwrap(), bytes, "{s}");
        }
        assert_eq!(b64_encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(b64_encode(b"fo"), "Zm8=");
        assert!(b64_decode("Zm8").is_none());
        assert!(b64_decode("Zm9=").is_none(), "non-canonical padding bits");
        assert!(b64_decode("Z===").is_none());
        assert!(b64_decode("Zm=8").is_none());
        assert!(b64_decode("Zm8=Zm8=").is_none());
    }

    #[test]
    fn times_round_trip() {
        for m in [0, 1, -1, 1_714_564_800_123_456, i64::MAX, i64::MIN + 1] {
            if DateTime::<Utc>::from_timestamp_micros(m).is_none() {
                continue;
            }
            let s = serde_json::to_string(&Ts(m)).unwrap();
            assert_eq!(serde_json::from_str::<Ts>(&s).unwrap(), Ts(m), "{s}");
        }
        assert_eq!(
            serde_json::to_string(&Ts(0)).unwrap(),
            "\"1970-01-01T00:00:00.000000Z\""
        );
        for m in [0, 5, -5, 1_000_000, -1_000_001, 1_714_564_800_000_000] {
            let (s, us) = split_seconds(Some(m));
            assert_eq!(s.unwrap() * MICROS + i64::from(us.unwrap_or(0)), m);
        }
    }

    #[test]
    fn hex_is_exact_length() {
        assert_eq!(unhex::<2>("0aFf"), Some([0x0a, 0xff]));
        assert!(unhex::<2>("0af").is_none());
        assert!(unhex::<2>("0afff").is_none());
        assert!(unhex::<2>("0g00").is_none());
    }
}
