//! The key layout of tables that keep a record and its index entries in one B-tree, told apart
//! by a one-byte prefix (sessions and web sessions):
//!
//! - `r` + hash → the record;
//! - `u` + user id + hash → empty: the by-user index;
//! - `x` + expiry (sortable big-endian) + hash → empty: the expiry index.

use redb::{ReadableTable, Table};

use crate::error::Result;
use crate::schema::{HashKey, IdKey};

pub(crate) const RECORD: u8 = b'r';
pub(crate) const BY_USER: u8 = b'u';
pub(crate) const BY_EXPIRY: u8 = b'x';

/// The concatenation of `parts`, which the caller sizes to exactly `N` bytes.
fn join<const N: usize>(parts: &[&[u8]]) -> [u8; N] {
    let mut out = [0u8; N];
    for (dst, src) in out.iter_mut().zip(parts.iter().flat_map(|p| p.iter())) {
        *dst = *src;
    }
    out
}

pub(crate) fn record_key(hash: &HashKey) -> [u8; 33] {
    join(&[&[RECORD], hash])
}

pub(crate) fn user_key(user: &IdKey, hash: &HashKey) -> [u8; 49] {
    join(&[&[BY_USER], user, hash])
}

pub(crate) fn expiry_key(expires: i64, hash: &HashKey) -> [u8; 41] {
    join(&[&[BY_EXPIRY], &sortable(expires), hash])
}

/// An i64 as 8 bytes that sort like the numbers.
fn sortable(t: i64) -> [u8; 8] {
    (t.cast_unsigned() ^ (1 << 63)).to_be_bytes()
}

fn unsortable(b: [u8; 8]) -> i64 {
    (u64::from_be_bytes(b) ^ (1 << 63)).cast_signed()
}

/// The last `N` bytes of a key of known layout.
pub(crate) fn tail<const N: usize>(key: &[u8]) -> Option<[u8; N]> {
    key.len()
        .checked_sub(N)
        .and_then(|at| key.get(at..))
        .and_then(|t| t.try_into().ok())
}

/// The hash at the end of any of the three kinds of key.
pub(crate) fn tail_hash(key: &[u8]) -> Option<HashKey> {
    tail::<32>(key)
}

/// The user id of a `u` entry.
pub(crate) fn entry_user(key: &[u8]) -> Option<IdKey> {
    key.get(1..17).and_then(|u| u.try_into().ok())
}

/// The expiry an `x` entry is filed under.
pub(crate) fn filed_expiry(key: &[u8]) -> Option<i64> {
    key.get(1..9)
        .and_then(|b| b.try_into().ok())
        .map(unsortable)
}

/// The hashes of the user's records, from the `u` entries (in key order).
pub(crate) fn user_hashes(
    t: &impl ReadableTable<&'static [u8], &'static [u8]>,
    user: &IdKey,
) -> Result<Vec<HashKey>> {
    let lo = user_key(user, &[0; 32]);
    let hi = user_key(user, &[0xff; 32]);
    let mut out = Vec::new();
    for e in t.range(lo.as_slice()..=hi.as_slice())? {
        if let Some(h) = tail_hash(e?.0.value()) {
            out.push(h);
        }
    }
    Ok(out)
}

/// The keys of up to `limit` `x` entries filed before `now`, in expiry order.
pub(crate) fn due_entries(
    t: &impl ReadableTable<&'static [u8], &'static [u8]>,
    now: i64,
    limit: usize,
) -> Result<Vec<Vec<u8>>> {
    let lo = [BY_EXPIRY];
    let hi = expiry_key(now, &[0; 32]);
    let mut due = Vec::new();
    for e in t.range(lo.as_slice()..hi.as_slice())? {
        if due.len() >= limit {
            break;
        }
        due.push(e?.0.value().to_vec());
    }
    Ok(due)
}

/// Removes the `x` entries from the first one through `last` — the entries [`due_entries`]
/// returned, `last` being its final key — in one pass of a cursor over that range, instead of
/// one B-tree descent per entry.
pub(crate) fn remove_due(
    t: &mut Table<'_, &'static [u8], &'static [u8]>,
    last: &[u8],
) -> Result<()> {
    let lo = [BY_EXPIRY];
    t.retain_in(lo.as_slice()..=last, |_, _| false)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sortable_keeps_order() {
        let xs = [i64::MIN, -5, -1, 0, 1, 7, i64::MAX];
        for w in xs.windows(2) {
            assert!(sortable(w[0]) < sortable(w[1]));
        }
        for x in xs {
            assert_eq!(unsortable(sortable(x)), x);
            assert_eq!(filed_expiry(&expiry_key(x, &[3; 32])), Some(x));
        }
        assert_eq!(tail_hash(&user_key(&[1; 16], &[2; 32])), Some([2; 32]));
        assert_eq!(entry_user(&user_key(&[1; 16], &[2; 32])), Some([1; 16]));
    }
}
