//! [`Source`]: the tables of a read transaction or a write transaction, opened for reading, so
//! that every lookup is written once and serves both `AuthDb`'s snapshot reads and the reads
//! inside a [`WriteTxn`](crate::WriteTxn).

use redb::{ReadableMultimapTable, ReadableTable};

use crate::error::Result;
use crate::schema::{self, ExpiryKey, HashKey, IdKey};

/// Something tables can be opened from for reading: a redb read or write transaction.
pub(crate) trait Source {
    fn users(&self) -> Result<impl ReadableTable<IdKey, &'static [u8]> + '_>;
    fn users_by_email(&self) -> Result<impl ReadableTable<&'static str, IdKey> + '_>;
    fn accounts(&self) -> Result<impl ReadableTable<IdKey, &'static [u8]> + '_>;
    fn accounts_by_provider(
        &self,
    ) -> Result<impl ReadableTable<(&'static str, &'static str), IdKey> + '_>;
    fn accounts_by_user(&self) -> Result<impl ReadableMultimapTable<IdKey, IdKey> + '_>;
    fn sessions(&self) -> Result<impl ReadableTable<&'static [u8], &'static [u8]> + '_>;
    fn verification(&self) -> Result<impl ReadableTable<HashKey, &'static [u8]> + '_>;
    fn verification_by_expiry(&self) -> Result<impl ReadableTable<ExpiryKey, ()> + '_>;
    fn credentials(&self) -> Result<impl ReadableTable<IdKey, &'static [u8]> + '_>;
    fn authenticators(&self) -> Result<impl ReadableTable<&'static str, &'static [u8]> + '_>;
    fn authenticators_by_user(
        &self,
    ) -> Result<impl ReadableMultimapTable<IdKey, &'static str> + '_>;
}

macro_rules! source_impl {
    ($t:ty) => {
        impl Source for $t {
            fn users(&self) -> Result<impl ReadableTable<IdKey, &'static [u8]> + '_> {
                Ok(self.open_table(schema::USERS)?)
            }
            fn users_by_email(&self) -> Result<impl ReadableTable<&'static str, IdKey> + '_> {
                Ok(self.open_table(schema::USERS_BY_EMAIL)?)
            }
            fn accounts(&self) -> Result<impl ReadableTable<IdKey, &'static [u8]> + '_> {
                Ok(self.open_table(schema::ACCOUNTS)?)
            }
            fn accounts_by_provider(
                &self,
            ) -> Result<impl ReadableTable<(&'static str, &'static str), IdKey> + '_> {
                Ok(self.open_table(schema::ACCOUNTS_BY_PROVIDER)?)
            }
            fn accounts_by_user(&self) -> Result<impl ReadableMultimapTable<IdKey, IdKey> + '_> {
                Ok(self.open_multimap_table(schema::ACCOUNTS_BY_USER)?)
            }
            fn sessions(&self) -> Result<impl ReadableTable<&'static [u8], &'static [u8]> + '_> {
                Ok(self.open_table(schema::SESSIONS)?)
            }
            fn verification(&self) -> Result<impl ReadableTable<HashKey, &'static [u8]> + '_> {
                Ok(self.open_table(schema::VERIFICATION)?)
            }
            fn verification_by_expiry(&self) -> Result<impl ReadableTable<ExpiryKey, ()> + '_> {
                Ok(self.open_table(schema::VERIFICATION_BY_EXPIRY)?)
            }
            fn credentials(&self) -> Result<impl ReadableTable<IdKey, &'static [u8]> + '_> {
                Ok(self.open_table(schema::CREDENTIALS)?)
            }
            fn authenticators(
                &self,
            ) -> Result<impl ReadableTable<&'static str, &'static [u8]> + '_> {
                Ok(self.open_table(schema::AUTHENTICATORS)?)
            }
            fn authenticators_by_user(
                &self,
            ) -> Result<impl ReadableMultimapTable<IdKey, &'static str> + '_> {
                Ok(self.open_multimap_table(schema::AUTHENTICATORS_BY_USER)?)
            }
        }
    };
}

source_impl!(redb::ReadTransaction);
source_impl!(redb::WriteTransaction);

/// All values of one multimap key, collected (the caller usually goes on to write).
pub(crate) fn multimap_values<const N: usize>(
    t: &impl ReadableMultimapTable<IdKey, [u8; N]>,
    key: &IdKey,
) -> Result<Vec<[u8; N]>> {
    let mut out = Vec::new();
    for v in t.get(key)? {
        out.push(v?.value());
    }
    Ok(out)
}

/// All string values of one multimap key, collected.
pub(crate) fn multimap_strings(
    t: &impl ReadableMultimapTable<IdKey, &'static str>,
    key: &IdKey,
) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for v in t.get(key)? {
        out.push(v?.value().to_owned());
    }
    Ok(out)
}

/// The id stored under `key` in a one-to-one index.
pub(crate) fn id_by<K: redb::Key + 'static>(
    t: &impl ReadableTable<K, IdKey>,
    key: K::SelfType<'_>,
) -> Result<Option<IdKey>> {
    Ok(t.get(key)?.map(|g| g.value()))
}
