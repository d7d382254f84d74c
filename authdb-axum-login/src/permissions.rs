//! axum-login's `AuthzBackend`: permissions kept in a user's extra fields.

use std::collections::HashSet;

use axum_login::AuthzBackend;
use serde_json::Value;

use crate::backend::Backend;
use crate::error::Error;
use crate::user::User;

/// The extra user field holding a user's permissions: a JSON array of strings, for example
/// `{"permissions": ["admin", "billing:read"]}` (set it with `patch_user`).
///
/// axum-login loads the user on every request, so a change applies at the next request;
/// it does not replace the security stamp (sessions stay signed in).
pub const PERMISSIONS_FIELD: &str = "permissions";

/// The permissions in `user`'s [`PERMISSIONS_FIELD`]: none when the field is absent or
/// `null`, [`Error::MalformedPermissions`] when it is anything but an array of strings.
pub fn permissions_of(user: &authdb::User) -> Result<HashSet<String>, Error> {
    match user.extra.get(PERMISSIONS_FIELD) {
        None | Some(Value::Null) => Ok(HashSet::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<_>>()
            .ok_or(Error::MalformedPermissions(user.id)),
        Some(_) => Err(Error::MalformedPermissions(user.id)),
    }
}

/// Permissions are strings from the user's [`PERMISSIONS_FIELD`]; there are no groups
/// (`get_group_permissions` is empty).
impl AuthzBackend for Backend {
    type Permission = String;

    async fn get_user_permissions(&self, user: &User) -> Result<HashSet<String>, Error> {
        permissions_of(user.profile())
    }
}
