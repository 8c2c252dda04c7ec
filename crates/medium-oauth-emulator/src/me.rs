//! `GET /v1/me`: the authenticated API's "who am I", the natural proof that
//! an issued token works. Not part of the OAuth spec; its shape follows
//! Medium's published API documentation.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::State as Extract;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use medium_oauth2_api::types::TokenResponseScopeItem as Scope;
use serde::{Deserialize, Serialize};

use crate::errors::{ApiError, codes};
use crate::state::State;

/// The user the emulator signs in: whoever clicks Approve.
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
            id: "5303d74c64f66366f00cb9b2a94f3251bf5".into(),
            username: "demo".into(),
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

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

pub(crate) async fn me(Extract(state): Extract<Arc<State>>, headers: HeaderMap) -> Response {
    let Some(token) = bearer(&headers) else {
        return ApiError::unauthorized(codes::TOKEN_REQUIRED, "An access token is required.")
            .into_response();
    };
    let now = state.clock.now_ms();
    let refuse_all = state.refuse_api_tokens.load(Ordering::Relaxed);
    let scopes = state
        .tables()
        .access
        .get(token)
        .filter(|t| t.expires_at_ms > now && !refuse_all)
        .map(|t| t.scopes);
    match scopes {
        None => ApiError::unauthorized(codes::TOKEN_INVALID, "Token was invalid.").into_response(),
        Some(scopes) if !scopes.contains(Scope::BasicProfile) => ApiError::new(
            StatusCode::FORBIDDEN,
            codes::MISSING_SCOPE,
            "Missing scope: basicProfile",
        )
        .into_response(),
        Some(_) => axum::Json(Envelope { data: User::demo() }).into_response(),
    }
}
