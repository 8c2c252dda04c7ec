//! `GET /v1/users/{userId}/publications` and
//! `GET /v1/publications/{publicationId}/contributors`, over the fixture in
//! [`crate::demo`].

use std::sync::Arc;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State as Extract};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use medium_oauth2_api::resource::operations::{
    list_publication_contributors, list_user_publications,
};
use medium_oauth2_api::resource::types::{ContributorsEnvelope, PublicationsEnvelope};

use super::{authorize, count, data, not_the_user, path_id, publication_not_found};
use crate::demo;
use crate::state::State;

pub(crate) async fn list_user_publications(
    Extract(state): Extract<Arc<State>>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Response {
    count(&state);
    let user = match authorize(&state, &headers, list_user_publications::SCOPE) {
        Ok(user) => user,
        Err(e) => return e.into_response(),
    };
    if path_id(path) != user.id {
        return not_the_user().into_response();
    }
    // Only the demo user contributes to the fixture's publications: anyone
    // else has none.
    data(
        StatusCode::OK,
        &PublicationsEnvelope {
            data: demo::publications_of(&user.id),
        },
    )
}

pub(crate) async fn list_publication_contributors(
    Extract(state): Extract<Arc<State>>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Response {
    count(&state);
    if let Err(e) = authorize(&state, &headers, list_publication_contributors::SCOPE) {
        return e.into_response();
    }
    let id = path_id(path);
    // Any known publication's contributors may be listed, the demo user's
    // or not, as on Medium.
    match demo::contributors(&id) {
        Some(contributors) => data(StatusCode::OK, &ContributorsEnvelope { data: contributors }),
        None => publication_not_found(&id).into_response(),
    }
}
