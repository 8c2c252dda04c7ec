//! Medium's authenticated REST calls beyond `GET /v1/me`: publications,
//! contributors, posts and image uploads, on the paths and with the types of
//! the generated resource API (`medium_oauth2_api::resource`).
//!
//! Every call is counted ([`crate::Emulator::api_requests`]) before anything
//! else, then checked in Medium's order: the token (401), its scope (401,
//! `Missing scope: <scope>`, the operation's generated `SCOPE`), the path's
//! ids (403 or 404), the body (400), and the rules that depend on both (403).

pub(crate) mod images;
pub(crate) mod multipart;
pub(crate) mod posts;
pub(crate) mod publications;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::Path;
use axum::extract::rejection::PathRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use medium_oauth2_api::resource::types::User;
use medium_oauth2_api::types::TokenResponseScopeItem as Scope;
use serde::Serialize;

use crate::errors::{ApiError, codes};
use crate::state::State;

/// Characters of a client's text an error message quotes at most: enough to
/// recognise a value, and a hostile megabyte-long one still gives a short
/// message.
pub(crate) const MAX_QUOTED_CHARS: usize = 64;

/// `text`, cut to [`MAX_QUOTED_CHARS`] characters with an ellipsis when
/// longer.
pub(crate) fn quote(text: &str) -> String {
    match text.char_indices().nth(MAX_QUOTED_CHARS) {
        None => text.to_owned(),
        Some((end, _)) => format!("{}…", &text[..end]),
    }
}

/// Counts a request on one of the REST calls, whatever its outcome.
pub(crate) fn count(state: &State) {
    state.counters.api_requests.fetch_add(1, Ordering::Relaxed);
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Checks the bearer token and that it carries `scope`, the operation's
/// generated `SCOPE` (its wire name); gives the token's user, whom the call
/// acts for.
pub(crate) fn authorize(
    state: &State,
    headers: &HeaderMap,
    scope: &str,
) -> Result<Arc<User>, ApiError> {
    let Some(token) = bearer(headers) else {
        return Err(ApiError::unauthorized(
            codes::TOKEN_REQUIRED,
            "An access token is required.",
        ));
    };
    let now = state.clock.now_ms();
    let refuse_all = state.refuse_api_tokens.load(Ordering::Relaxed);
    let granted = state
        .tables()
        .access
        .get(token)
        .filter(|t| t.expires_at_ms > now && !refuse_all)
        .map(|t| (t.scopes, t.user.clone()));
    let Some((scopes, user)) = granted else {
        return Err(ApiError::unauthorized(
            codes::TOKEN_INVALID,
            "Token was invalid.",
        ));
    };
    // A SCOPE the generated enum does not know is one no token can carry;
    // the unit tests check every operation's parses.
    let needed: Option<Scope> = scope.parse().ok();
    if needed.is_some_and(|s| scopes.contains(s)) {
        Ok(user)
    } else {
        // 401, as Medium documents it, not 403: the token cannot do this.
        Err(ApiError::unauthorized(
            codes::MISSING_SCOPE,
            format!("Missing scope: {scope}"),
        ))
    }
}

/// A path parameter, or the empty id when it could not be read (percent
/// escapes that are not UTF-8): no user or publication has that id.
pub(crate) fn path_id(path: Result<Path<String>, PathRejection>) -> String {
    path.map(|Path(id)| id).unwrap_or_default()
}

/// `{"data": value}` with `status`, as `application/json`.
pub(crate) fn data<T: Serialize>(status: StatusCode, envelope: &T) -> Response {
    // Cannot fail: the generated envelopes hold only strings, numbers,
    // booleans and lists of them.
    let json = serde_json::to_vec(envelope).unwrap_or_default();
    (status, [(header::CONTENT_TYPE, "application/json")], json).into_response()
}

/// 403 for a `/users/{id}/…` path naming someone other than the token's
/// user.
pub(crate) fn not_the_user() -> ApiError {
    ApiError::forbidden(
        codes::NOT_THE_USER,
        "The user id in the path is not the token's user.",
    )
}

/// 404 for an unknown publication id.
pub(crate) fn publication_not_found(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        codes::PUBLICATION_NOT_FOUND,
        format!("Publication not found: {:?}", quote(id)),
    )
}

#[cfg(test)]
mod tests {
    use medium_oauth2_api::resource::operations as ops;

    use super::*;

    #[test]
    fn every_operations_scope_is_one_the_emulator_knows() {
        for scope in [
            ops::get_current_user::SCOPE,
            ops::list_user_publications::SCOPE,
            ops::list_publication_contributors::SCOPE,
            ops::create_user_post::SCOPE,
            ops::create_publication_post::SCOPE,
            ops::upload_image::SCOPE,
        ] {
            assert!(scope.parse::<Scope>().is_ok(), "{scope}");
        }
    }

    #[test]
    fn quotes_are_cut_at_a_character_boundary() {
        assert_eq!(quote("short"), "short");
        let long = "é".repeat(MAX_QUOTED_CHARS + 5);
        let q = quote(&long);
        assert_eq!(q.chars().count(), MAX_QUOTED_CHARS + 1);
        assert!(q.ends_with('…'));
    }
}
