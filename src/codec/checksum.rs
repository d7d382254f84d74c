//! CRC-32C (Castagnoli), the checksum every stored record carries (see the parent module).
//!
//! Table-driven, eight bytes a step ("slicing by 8"); the tables are computed at compile
//! time. CRC-32C catches every error burst of up to 32 bits — so every damaged byte, and any
//! run of damaged bytes up to four long — and other damage with probability 1 − 2⁻³².

/// The reflected Castagnoli polynomial.
const POLY: u32 = 0x82F6_3B78;

/// `TABLES[0]` is the classic byte-at-a-time table; `TABLES[k][b]` is the CRC of byte `b`
/// followed by `k` zero bytes.
static TABLES: [[u32; 256]; 8] = tables();

// Evaluated at compile time only (for `TABLES`): an index out of bounds would be a build
// error, never a panic at run time.
#[allow(clippy::indexing_slicing)]
const fn tables() -> [[u32; 256]; 8] {
    let mut t = [[0u32; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut bit = 0;
        while bit < 8 {
            c = if c & 1 == 1 { (c >> 1) ^ POLY } else { c >> 1 };
            bit += 1;
        }
        t[0][i] = c;
        i += 1;
    }
    let mut i = 0;
    while i < 256 {
        let mut k = 1;
        while k < 8 {
            let prev = t[k - 1][i];
            t[k][i] = (prev >> 8) ^ t[0][(prev & 0xff) as usize];
            k += 1;
        }
        i += 1;
    }
    t
}

/// The entry of `table` for byte `b` (every byte has one: the `get` never fails, and the
/// compiler knows it).
fn at(table: &[u32; 256], b: u8) -> u32 {
    table.get(usize::from(b)).copied().unwrap_or_default()
}

/// A running CRC-32C.
#[derive(Clone, Copy)]
pub(crate) struct Crc32c(u32);

impl Crc32c {
    pub(crate) fn new() -> Self {
        Self(!0)
    }

    /// Feeds `bytes`.
    pub(crate) fn update(&mut self, bytes: &[u8]) -> &mut Self {
        let [t0, t1, t2, t3, t4, t5, t6, t7] = &TABLES;
        let mut c = self.0;
        let (eights, rest) = bytes.as_chunks::<8>();
        for &[b0, b1, b2, b3, b4, b5, b6, b7] in eights {
            let [l0, l1, l2, l3] = (u32::from_le_bytes([b0, b1, b2, b3]) ^ c).to_le_bytes();
            c = at(t7, l0)
                ^ at(t6, l1)
                ^ at(t5, l2)
                ^ at(t4, l3)
                ^ at(t3, b4)
                ^ at(t2, b5)
                ^ at(t1, b6)
                ^ at(t0, b7);
        }
        for &b in rest {
            c = at(t0, (c as u8) ^ b) ^ (c >> 8);
        }
        self.0 = c;
        self
    }

    /// The checksum of everything fed.
    pub(crate) fn finish(self) -> u32 {
        !self.0
    }
}

#[cfg(test)]
mod tests {
    use super::Crc32c;

    fn crc(bytes: &[u8]) -> u32 {
        Crc32c::new().update(bytes).finish()
    }

    /// The plain bit-at-a-time definition, to check the sliced tables against.
    fn reference(bytes: &[u8]) -> u32 {
        let mut c = !0u32;
        for &b in bytes {
            c ^= u32::from(b);
            for _ in 0..8 {
                c = if c & 1 == 1 {
                    (c >> 1) ^ 0x82F6_3B78
                } else {
                    c >> 1
                };
            }
        }
        !c
    }

    #[test]
    fn known_values() {
        // The check value of CRC-32C (RFC 3720, iSCSI) and its test vectors.
        assert_eq!(crc(b"123456789"), 0xE306_9283);
        assert_eq!(crc(&[0u8; 32]), 0x8A91_36AA);
        assert_eq!(crc(&[0xffu8; 32]), 0x62A8_AB43);
        let ascending: Vec<u8> = (0..32).collect();
        assert_eq!(crc(&ascending), 0x46DD_794E);
        assert_eq!(crc(b""), 0);
    }

    #[test]
    fn sliced_equals_bytewise_and_streaming() {
        let data: Vec<u8> = (0..300u32).map(|i| (i * 131 + 7) as u8).collect();
        for len in 0..data.len() {
            let whole = crc(&data[..len]);
            assert_eq!(whole, reference(&data[..len]), "length {len}");
            let split = len / 3;
            let streamed = Crc32c::new()
                .update(&data[..split])
                .update(&data[split..len])
                .finish();
            assert_eq!(streamed, whole, "length {len}");
        }
    }

    #[test]
    fn every_single_byte_change_is_seen() {
        let data: Vec<u8> = (0..69u8).collect();
        let good = crc(&data);
        for i in 0..data.len() {
            for flip in 1..=255u8 {
                let mut bad = data.clone();
                bad[i] ^= flip;
                assert_ne!(crc(&bad), good, "byte {i} xor {flip}");
            }
        }
    }
}
