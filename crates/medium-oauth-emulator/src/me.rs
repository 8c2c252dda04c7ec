//! `GET /v1/me`: the authenticated API's "who am I", the natural proof that
//! an issued token works. Not part of the OAuth spec: its path, scope and
//! types are the resource spec's (`medium_oauth2_api::resource`).

use std::sync::Arc;

use axum::extract::State as Extract;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use medium_oauth2_api::resource::operations::get_current_user;
use medium_oauth2_api::resource::types as resource;
use serde::{Deserialize, Serialize};

use crate::state::State;
use crate::{demo, rest};

/// The user the emulator signs in: whoever clicks Approve. The wire type is
/// the generated `medium_oauth2_api::resource::types::User` (this converts
/// into it); this one compares with `==` and refuses unknown fields, which
/// suits tests reading `GET /v1/me` back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
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

impl User {
    /// The emulator's one user.
    pub fn demo() -> Self {
        Self {
            id: demo::USER_ID.into(),
            username: demo::USERNAME.into(),
            name: "Demo User".into(),
            url: "https://medium.com/@demo".into(),
            image_url: "https://cdn-images-1.medium.com/fit/c/400/400/demo.png".into(),
        }
    }
}

/// Medium wraps every API result in `data`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope<T> {
    /// The result.
    pub data: T,
}

impl From<User> for resource::User {
    fn from(u: User) -> Self {
        Self {
            id: u.id,
            username: u.username,
            name: u.name,
            url: u.url,
            image_url: u.image_url,
        }
    }
}

pub(crate) async fn me(Extract(state): Extract<Arc<State>>, headers: HeaderMap) -> Response {
    rest::count(&state);
    match rest::authorize(&state, &headers, get_current_user::SCOPE) {
        Err(e) => e.into_response(),
        Ok(()) => rest::data(
            StatusCode::OK,
            &resource::UserEnvelope {
                data: User::demo().into(),
            },
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fixture_user_reads_as_the_generated_one() {
        let generated = resource::User::from(User::demo());
        let json = serde_json::to_value(&generated).unwrap();
        let back: User = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(back, User::demo());
        assert_eq!(serde_json::to_value(User::demo()).unwrap(), json);
    }
}
