//! How secrets are kept out of `Debug` output and serde output.
//!
//! The rule, for every model type: a field that `Debug` shows as `<redacted>` (a token, a
//! password, a security stamp) is also skipped by `Serialize`, and reads back as empty (or
//! `None`) through `Deserialize`. Values cross process boundaries through serde (logs, JSON
//! APIs, caches); secrets must be handed over explicitly, field by field.

use std::fmt;

/// Redacts a secret in hand-written `Debug` output.
pub(crate) struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// `Some(<redacted>)` for a present secret, `None` for an absent one.
pub(crate) fn redact_opt<T>(v: &Option<T>) -> Option<Redacted> {
    v.as_ref().map(|_| Redacted)
}

/// `{key: <redacted>, ...}`: the keys of a sealed JSON object, never its values.
pub(crate) fn redact_map(m: &serde_json::Map<String, serde_json::Value>) -> RedactedMap<'_> {
    RedactedMap(m)
}

pub(crate) struct RedactedMap<'a>(&'a serde_json::Map<String, serde_json::Value>);

impl fmt::Debug for RedactedMap<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.keys().map(|k| (k, Redacted)))
            .finish()
    }
}
