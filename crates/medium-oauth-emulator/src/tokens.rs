//! The token endpoints: `POST /v1/tokens` (code exchange, and the live
//! service's refresh form) and `POST /v1/tokens/refresh` (the spec's refresh
//! form). Any `Authorization` header is ignored, as on Medium: the official
//! SDKs send a junk one.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::body::{Body, Bytes};
use axum::extract::State as Extract;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use medium_oauth2_api::operations::{exchange_authorization_code, refresh_access_token};
use medium_oauth2_api::types;

use crate::errors::{ApiError, codes};
use crate::faults::Fault;
use crate::scopes::Scopes;
use crate::state::{Endpoint, Grant, Issued, Outcome, State, ms_after};

const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded";

pub(crate) async fn tokens(state: Extract<Arc<State>>, headers: HeaderMap, body: Body) -> Response {
    handle(state.0, Endpoint::Tokens, headers, body).await
}

pub(crate) async fn tokens_refresh(
    state: Extract<Arc<State>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    handle(state.0, Endpoint::TokensRefresh, headers, body).await
}

async fn handle(state: Arc<State>, endpoint: Endpoint, headers: HeaderMap, body: Body) -> Response {
    let body = read_body(&state, body).await;
    let form = body.as_ref().ok().and_then(|b| parse_form(&headers, b));
    let grant = match form.as_ref().and_then(|f| field(f, "grant_type")) {
        Some("authorization_code") => Grant::AuthorizationCode,
        Some("refresh_token") => Grant::RefreshToken,
        _ => Grant::Other,
    };
    let fault = state.next_fault();
    let expired = fault == Some(Fault::ExpiredToken);
    if let Some(fault) = fault
        && let Some(response) = fault.apply().await
    {
        state.record_request(
            endpoint,
            grant,
            Outcome::Faulted(response.status().as_u16()),
        );
        return response;
    }
    let result = match (body, form) {
        (Err(e), _) => Err(e),
        // Query strings, JSON and multipart bodies are refused the way Medium
        // refuses them: as if grant_type were missing.
        (Ok(_), None) => Err(ApiError::grant_type_invalid()),
        (Ok(bytes), Some(form)) => match (endpoint, grant) {
            (Endpoint::Tokens, Grant::AuthorizationCode) => exchange(&state, &form, &bytes),
            (Endpoint::Tokens, Grant::RefreshToken)
                if state.config.refresh_endpoints.serves_live() =>
            {
                refresh(&state, &form, &bytes)
            }
            (Endpoint::TokensRefresh, Grant::RefreshToken) => refresh(&state, &form, &bytes),
            _ => Err(ApiError::grant_type_invalid()),
        },
    };
    let result = result.map(|issued| {
        if expired {
            expire(&state, issued)
        } else {
            issued
        }
    });
    let response = match result {
        Ok(issued) => success(&state, issued),
        Err(e) => e.into_response(),
    };
    state.record_request(endpoint, grant, Outcome::Status(response.status().as_u16()));
    response
}

/// Reads a request body under the size cap and the body deadline.
pub(crate) async fn read_body(state: &State, body: Body) -> Result<Bytes, ApiError> {
    match read_body_within(state, body, state.config.limits.request_body_bytes).await {
        Ok(bytes) => Ok(bytes),
        Err(BodyError::TooLarge) => Err(ApiError::new(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            codes::BODY_TOO_LARGE,
            "Request body is too large.",
        )),
        Err(BodyError::TooSlow) => Err(body_too_slow()),
    }
}

/// Why a body could not be read.
pub(crate) enum BodyError {
    /// Over the cap, or a connection that broke mid-body: either way nothing
    /// usable arrived, and a broken connection reads no answer.
    TooLarge,
    /// Not all there within the body read timeout.
    TooSlow,
}

/// The answer to a body that took too long.
pub(crate) fn body_too_slow() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::REQUEST_TIMEOUT,
        codes::BODY_TOO_SLOW,
        "Request body took too long to arrive.",
    )
}

/// Reads a request body of at most `limit` bytes within the body deadline.
pub(crate) async fn read_body_within(
    state: &State,
    body: Body,
    limit: usize,
) -> Result<Bytes, BodyError> {
    let read = axum::body::to_bytes(body, limit);
    match crate::wall::timeout(state.config.limits.body_read_timeout, read).await {
        Some(Ok(bytes)) => Ok(bytes),
        Some(Err(_)) => Err(BodyError::TooLarge),
        None => Err(BodyError::TooSlow),
    }
}

/// Reads and drops a request body that will be refused, so a client still
/// sending it reads the refusal rather than a reset connection. Nothing is
/// kept: each chunk is dropped as it arrives. It stops after `limit` bytes
/// (a body that long is refused whatever it holds, and hyper closes the
/// connection over the rest) and at the body deadline, so a refused client
/// costs no more time than an accepted one.
pub(crate) async fn discard_body_within(state: &State, body: Body, limit: usize) {
    use futures_util::StreamExt as _;
    let mut chunks = body.into_data_stream();
    let drain = async {
        let mut seen = 0_usize;
        // A broken connection ends the drain as the end of the body does.
        while let Some(Ok(chunk)) = chunks.next().await {
            seen = seen.saturating_add(chunk.len());
            if seen > limit {
                break;
            }
        }
    };
    // Past the deadline the refusal is answered all the same.
    let _ = crate::wall::timeout(state.config.limits.body_read_timeout, drain).await;
}

/// The [`Fault::ExpiredToken`] answer: what was issued, expired a second ago.
fn expire(state: &State, mut issued: Issued) -> Issued {
    const AGO_MS: i64 = 1000;
    issued.expires_at_ms = state.clock.now_ms().saturating_sub(AGO_MS);
    if let Some(entry) = state.tables().access.get_mut(&issued.access_token) {
        entry.expires_at_ms = issued.expires_at_ms;
    }
    issued
}

type Form = Vec<(String, String)>;

fn parse_form(headers: &HeaderMap, body: &Bytes) -> Option<Form> {
    let content_type = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let essence = content_type.split(';').next()?.trim();
    if !essence.eq_ignore_ascii_case(FORM_CONTENT_TYPE) {
        return None;
    }
    serde_urlencoded::from_bytes(body).ok()
}

fn field<'a>(form: &'a Form, name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Refuses fields the spec does not list, and missing or repeated ones.
fn check_fields(form: &Form, allowed: &[&str]) -> Result<(), ApiError> {
    for (i, (name, _)) in form.iter().enumerate() {
        if !allowed.contains(&name.as_str()) || form[..i].iter().any(|(k, _)| k == name) {
            return Err(ApiError::bad_request(
                codes::UNEXPECTED_FIELD,
                format!("Unexpected field ({name}) specified"),
            ));
        }
    }
    for name in allowed {
        if field(form, name).is_none_or(str::is_empty) {
            return Err(ApiError::bad_request(
                codes::MISSING_FIELD,
                format!("Missing field ({name})."),
            ));
        }
    }
    Ok(())
}

fn authenticate(state: &State, client_id: &str, secret: &str) -> Result<(), ApiError> {
    let app = state.client(client_id).ok_or_else(|| {
        ApiError::unauthorized(codes::APPLICATION_NOT_FOUND, "Application not found")
    })?;
    if app.secret != secret {
        return Err(ApiError::unauthorized(
            codes::CLIENT_SECRET_INVALID,
            "Client secret was invalid.",
        ));
    }
    Ok(())
}

fn room_for_tokens(state: &State, tables: &mut crate::state::Tables) -> Result<(), ApiError> {
    if tables.room_for_tokens(state.config.limits.tokens, state.clock.now_ms()) {
        Ok(())
    } else {
        Err(ApiError::overloaded())
    }
}

fn exchange(state: &State, form: &Form, raw: &Bytes) -> Result<Issued, ApiError> {
    check_fields(form, exchange_authorization_code::FORM_FIELDS)?;
    let body: types::ExchangeAuthorizationCodeBody =
        serde_urlencoded::from_bytes(raw).map_err(|_| ApiError::grant_type_invalid())?;
    authenticate(state, &body.client_id, &body.client_secret)?;
    let invalid_code =
        || ApiError::unauthorized(codes::CODE_INVALID, "Authorization code was invalid.");
    let now = state.clock.now_ms();
    let mut tables = state.tables();
    let entry = tables.code(&body.code).ok_or_else(invalid_code)?;
    if entry.expires_at_ms <= now || entry.client_id != body.client_id {
        return Err(invalid_code());
    }
    if let Some(grant) = entry.grant {
        tables.revoke_grant(grant);
        return Err(invalid_code());
    }
    if entry.redirect_uri != body.redirect_uri {
        return Err(ApiError::unauthorized(
            codes::REDIRECT_URI_MISMATCH,
            "redirect_uri did not match the authorization request.",
        ));
    }
    let (scopes, user) = (entry.scopes, entry.user.clone());
    room_for_tokens(state, &mut tables)?;
    let grant = tables.new_grant();
    tables.mark_exchanged(&body.code, grant);
    let expires = ms_after(now, state.config.token_lifetime);
    let issued = tables.issue(grant, &body.client_id, scopes, expires, true, user);
    state.counters.exchanges.fetch_add(1, Ordering::Relaxed);
    Ok(issued)
}

fn refresh(state: &State, form: &Form, raw: &Bytes) -> Result<Issued, ApiError> {
    check_fields(form, refresh_access_token::FORM_FIELDS)?;
    let body: types::RefreshAccessTokenBody =
        serde_urlencoded::from_bytes(raw).map_err(|_| ApiError::grant_type_invalid())?;
    authenticate(state, &body.client_id, &body.client_secret)?;
    let mut tables = state.tables();
    let invalid =
        || ApiError::unauthorized(codes::REFRESH_TOKEN_INVALID, "Refresh token was invalid.");
    let Some(entry) = tables.refresh.get(&body.refresh_token) else {
        if state.config.detect_refresh_replay
            && let Some(grant) = tables.rotated_grant(&body.refresh_token)
        {
            // Two parties hold this grant's tokens: neither is trusted.
            tables.revoke_grant(grant);
            state.counters.replays.fetch_add(1, Ordering::Relaxed);
        }
        return Err(invalid());
    };
    if entry.client_id != body.client_id {
        return Err(invalid());
    }
    // A refresh keeps the user, rotated or not.
    let (grant, scopes, user): (u64, Scopes, _) = (entry.grant, entry.scopes, entry.user.clone());
    room_for_tokens(state, &mut tables)?;
    let rotate = state.config.rotate_refresh_tokens;
    if rotate {
        tables.refresh.remove(&body.refresh_token);
        if state.config.detect_refresh_replay {
            let limit = state.config.limits.tokens;
            tables.rotated_out(body.refresh_token.clone(), grant, limit);
        }
    }
    let expires = ms_after(state.clock.now_ms(), state.config.token_lifetime);
    let issued = tables.issue(grant, &body.client_id, scopes, expires, rotate, user);
    state.counters.refreshes.fetch_add(1, Ordering::Relaxed);
    Ok(issued)
}

fn success(state: &State, issued: Issued) -> Response {
    let scopes = issued.scopes.iter().collect();
    let body = types::TokenResponse {
        token_type: Some(types::TokenResponseTokenType::Bearer),
        access_token: Some(issued.access_token),
        refresh_token: issued.refresh_token,
        scope: scopes,
        expires_at: Some(issued.expires_at_ms),
    };
    (state.config.success_status.code(), axum::Json(body)).into_response()
}
