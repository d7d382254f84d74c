//! Id newtypes over UUIDs.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The error returned when parsing an id from a string fails.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid id (expected a UUID)")]
pub struct ParseIdError;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        ///
        /// A UUID v7 made by the store (time-ordered, so new records sit together in the
        /// B-tree). Displays and parses as the hyphenated UUID string.
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            pub(crate) fn generate() -> Self {
                Self(Uuid::now_v7())
            }

            /// The id as 16 big-endian bytes (its key in the tables).
            #[must_use]
            pub fn to_bytes(&self) -> [u8; 16] {
                *self.0.as_bytes()
            }

            /// The id from its 16 bytes.
            #[must_use]
            pub fn from_bytes(b: [u8; 16]) -> Self {
                Self(Uuid::from_bytes(b))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0.hyphenated())
            }
        }

        impl FromStr for $name {
            type Err = ParseIdError;
            fn from_str(s: &str) -> Result<Self, ParseIdError> {
                Uuid::parse_str(s).map(Self).map_err(|_| ParseIdError)
            }
        }

        impl From<Uuid> for $name {
            fn from(u: Uuid) -> Self {
                Self(u)
            }
        }
    };
}

id_type!(
    /// The id of a [`User`](crate::User).
    UserId
);
id_type!(
    /// The id of an [`Account`](crate::Account).
    AccountId
);
id_type!(
    /// The id of a [`Session`](crate::Session).
    SessionId
);
id_type!(
    /// The id of a [`VerificationRequest`](crate::VerificationRequest).
    VerificationRequestId
);
