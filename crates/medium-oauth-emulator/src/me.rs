//! `GET /v1/me`: the authenticated API's "who am I", the natural proof that
//! an issued token works. Not part of the OAuth spec: its path, scope and
//! types are the resource spec's (`medium_oauth2_api::resource`).

use std::sync::Arc;

use axum::extract::State as Extract;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use medium_oauth2_api::resource::operations::get_current_user;
use medium_oauth2_api::resource::types as resource;

use crate::rest;
use crate::state::State;

pub(crate) async fn me(Extract(state): Extract<Arc<State>>, headers: HeaderMap) -> Response {
    rest::count(&state);
    match rest::authorize(&state, &headers, get_current_user::SCOPE) {
        Err(e) => e.into_response(),
        Ok(user) => rest::data(
            StatusCode::OK,
            &resource::UserEnvelope {
                data: (*user).clone(),
            },
        ),
    }
}
