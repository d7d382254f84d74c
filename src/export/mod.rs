//! Export and import in JSON Lines: every record of every table, one per line, with Auth.js's
//! field names where Auth.js has the field and authdb's own names for the rest. The format
//! belongs to no backend: the redb file ([`AuthDb::export_to`](crate::AuthDb::export_to),
//! [`AuthDb::import_from`](crate::AuthDb::import_from)) and `authdb-postgres` write and read
//! the same lines, so an export moves a database from one backend to the other.
//!
//! ## The format (version 1)
//!
//! The first line is the header, the last the end line with the count of each kind; every
//! line in between is one record, an object whose `kind` names its type. Records come in this
//! order: users, passwords, accounts, sessions, authenticators, verification tokens, web
//! sessions (so every record comes after the user it refers to), and within a kind in the
//! order of their key's bytes (user id; user id; account id; session token hash; credential
//! id; token hash; web session id hash), so the same data exports as the same bytes from any
//! backend. Times are RFC 3339 strings in UTC with microseconds
//! (`"2024-05-01T12:00:00.000000Z"`; a time outside years 0–9999 is written as an integer
//! number of microseconds since the epoch), ids are hyphenated UUIDs, hashes are lowercase
//! hex, sealed values and web session data base64 (standard alphabet, padded). Optional
//! fields are written as `null`. The header's `schemaVersion` is authdb's record schema
//! ([`SCHEMA_VERSION`](crate::SCHEMA_VERSION)), whichever backend wrote the export.
//!
//! ```text
//! {"format":"authdb-export","version":1,"schemaVersion":2}
//! {"kind":"user","id":"…","name":"Ada","email":"ada@example.com","emailVerified":null,"image":null,"extra":{},"securityStamp":"<32 hex>","createdAt":"…","updatedAt":"…"}
//! {"kind":"password","userId":"…","hash":"$argon2id$v=19$…","updatedAt":"…"}
//! {"kind":"account","id":"…","userId":"…","type":"oauth","provider":"github","providerAccountId":"4242","refresh_token_sealed":"<base64>","access_token_sealed":"<base64>","expires_at":1714564800,"token_type":"bearer","scope":null,"id_token_sealed":null,"session_state":null,"extra_sealed":null,"createdAt":"…","updatedAt":"…"}
//! {"kind":"session","id":"…","userId":"…","sessionTokenHash":"<64 hex>","expires":"…","createdAt":"…","updatedAt":"…"}
//! {"kind":"authenticator","credentialID":"…","userId":"…","providerAccountId":"…","credentialPublicKey":"…","counter":0,"credentialDeviceType":"singleDevice","credentialBackedUp":false,"transports":null,"createdAt":"…","updatedAt":"…"}
//! {"kind":"verificationToken","id":"…","identifier":"ada@example.com","token":"<64 hex>","expires":"…","createdAt":"…","updatedAt":"…"}
//! {"kind":"webSession","idHash":"<64 hex>","userId":"…","expires":"…","data":"<base64>","createdAt":"…","updatedAt":"…"}
//! {"kind":"end","counts":{"users":1,"passwords":1,"accounts":1,"sessions":1,"authenticators":1,"verificationTokens":1,"webSessions":1}}
//! ```
//!
//! - `expires_at` is Auth.js's: whole seconds since the epoch. A stored expiry with a fraction
//!   of a second adds `expires_at_us`, the microseconds past that second.
//! - Secrets stay as the store holds them: session tokens as their SHA-256
//!   (`sessionTokenHash`), verification tokens as their hash (`token`, the key the link is
//!   stored under), passwords as argon2id PHC strings, OAuth tokens and an account's extra
//!   fields sealed under the encryption key (`*_sealed`; the key itself is never exported,
//!   and the import needs none: the sealed values open with the same key after the move),
//!   the security stamp as hex, a web session under the SHA-256 of its id (`idHash`) with its
//!   data as stored. **An export is as sensitive as the database**: the tool creates it with
//!   owner-only permissions.
//! - Web sessions (the records of a cookie-session layer, see [`crate::web_sessions`]) are
//!   exported by the redb file. A backend without a web-session store exports none and
//!   decides what its import does with them (`authdb-postgres` refuses them, or skips them
//!   when asked). An end line without `webSessions` (an export written before web sessions
//!   were exported) counts none.
//! - Failed sign-in-code attempt counters (stores that allow short verification tokens) are
//!   rate-limit state, not data: they are not exported, and an import starts with none.
//! - The session's expiry-index position (`indexed_expires`) is an index detail of the redb
//!   file and is not exported; import files each session under its expiry.
//! - Export → import into an empty store → export gives the same bytes, whichever backends.
//!
//! ## Import
//!
//! One run is one write transaction: every line is checked and written into it as it is
//! read, and the transaction commits only after the end line, with every count matching. A
//! bad line (malformed JSON, an unknown field, a value over its limit, a duplicate id, email,
//! provider account, token hash or credential id, a record whose user is not there) stops the
//! run with an error naming the line, and nothing is written. Ids, times and stamps are kept.
//!
//! Trade-off (redb): all-or-nothing means the whole import is one redb transaction, whose
//! pages stay uncommitted until the end; the file grows by about the import's size while it
//! runs (redb writes dirty pages through its cache), and other writers of the same database
//! wait until it commits. Import into a fresh file ([`import_into_new_file`]) does not block
//! anyone. Lines are limited to [`MAX_IMPORT_LINE_BYTES`]; nothing else is held in memory per
//! line.
//!
//! ## For other backends
//!
//! The format and its checks live here once. A backend exports by listing its records as
//! [`ExportRecord`]s into an [`Exporter`], in export order; it imports by implementing
//! [`ImportSink`] (store one checked record, report conflicts with
//! [`ExportRecord::refused`]) and calling [`read_export`] inside one transaction, committing
//! only when it returns `Ok`.

mod counts;
mod encoding;
mod error;
mod lines;
mod reader;
mod record;
mod redb;
mod writer;

pub use self::redb::import_into_new_file;
pub use counts::ExportCounts;
pub use error::{ImportError, Refusal};
pub use lines::{EXPORT_FORMAT, EXPORT_VERSION};
pub use reader::{ImportSink, MAX_IMPORT_LINE_BYTES, read_export};
pub use record::{
    ExportRecord, StoredAccount, StoredAuthenticator, StoredPassword, StoredSession, StoredUser,
    StoredVerificationToken, StoredWebSession,
};
pub use writer::Exporter;
