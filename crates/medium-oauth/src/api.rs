//! The authenticated REST API beyond OAuth, kept to what the tools need
//! today: who the token belongs to. A later version generates these calls
//! from an OpenAPI document; until then each call is one function on
//! [`OAuthClient`](crate::OAuthClient) and its path is named here.

use serde::{Deserialize, Serialize};

/// `GET /me`, relative to the API server: the authenticated user. Needs the
/// `basicProfile` scope.
pub const ME_PATH: &str = "/me";

/// A Medium user, as `GET /me` describes them. Every field is the server's
/// text: strip control characters before printing it and escape it before
/// putting it in a page.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct User {
    /// Medium user id.
    pub id: String,
    /// Handle, without the `@`.
    pub username: String,
    /// Display name.
    pub name: String,
    /// Profile URL.
    pub url: String,
    /// Avatar URL.
    pub image_url: String,
}

/// Medium wraps every API result in `data`.
#[derive(Deserialize)]
pub(crate) struct Envelope<T> {
    pub(crate) data: T,
}
