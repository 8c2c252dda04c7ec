//! The browser side: `GET /m/oauth/authorize` and the consent form's POST.
//!
//! The consent form names the user who approves (see [`crate::users`]); it
//! starts as the demo user, and a form without the field approves as it too,
//! as does auto-approval.
//!
//! Like Medium, a request that cannot be trusted to name a real app and a
//! registered redirect URI gets an HTML error page and is never redirected
//! (RFC 6749 §4.1.2.1: redirecting to an unverified URI makes the server an
//! open redirector).

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Query, State as Extract};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use html_escape::{encode_double_quoted_attribute as attr, encode_text as text};
use medium_oauth2_api::operations::authorize_user::{fixed, param};
use medium_oauth2_api::resource::types::User;

use crate::config::MAX_STATE_BYTES;
use crate::scopes::{self, Scopes};
use crate::state::{CODE_TTL, CodeEntry, PendingConsent, State, ms_after, random_hex};
use crate::tokens::read_body;
use crate::users::{self, MAX_USERNAME_CHARS};
use crate::{demo, routes};

/// Name of the consent form's hidden field that identifies the request.
const CONSENT_FIELD: &str = "consent";
/// Name of the consent form's button field.
const DECISION_FIELD: &str = "decision";
/// Name of the consent form's field naming who approves.
const USERNAME_FIELD: &str = "username";

/// Inline, so the pages load nothing from anywhere: the emulator runs
/// offline and its CSP allows no other source.
const STYLE: &str = "\
:root{color-scheme:light}\
body{margin:0;background:#f2f2ee;color:#242424;\
font:16px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif}\
main{max-width:30rem;margin:0 auto;padding:1.5rem 1rem}\
.notice{margin:0;padding:.75rem 1rem;border:1px solid #d9b64a;border-radius:8px;\
background:#fff6d6;font-size:.9rem}\
.card{margin-top:1rem;padding:1.5rem;border-radius:12px;background:#fff;\
box-shadow:0 1px 4px rgba(0,0,0,.15)}\
h1{margin:0 0 .75rem;font-size:1.4rem;line-height:1.3;overflow-wrap:anywhere}\
ul{margin:0;padding-left:1.25rem}li{margin:.4rem 0}\
.fine{color:#6b6b6b;font-size:.85rem;overflow-wrap:anywhere}\
.actions{display:flex;gap:.75rem;margin-top:1.5rem}\
button{flex:1;padding:.75rem 1rem;border:1px solid #242424;border-radius:999px;\
font:inherit;cursor:pointer;background:#fff;color:#242424}\
button#approve{border-color:#1a8917;background:#1a8917;color:#fff}\
label{display:block;margin-top:1rem;font-size:.9rem}\
input{box-sizing:border-box;width:100%;margin-top:.25rem;padding:.5rem .75rem;\
border:1px solid #6b6b6b;border-radius:6px;font:inherit}\
button:focus-visible,input:focus-visible{outline:3px solid #6aa7ff;outline-offset:2px}";

/// Sent with every page: no script, style only inline, no framing (a
/// consent page in someone else's frame invites clickjacking). No
/// `form-action`: browsers apply it to the redirect after the form's POST,
/// which goes to the app's own redirect URI.
const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'";

/// A complete page. `title` is escaped here; `main` must already be.
fn page(status: StatusCode, title: &str, main: &str) -> Response {
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} \u{b7} Medium emulator</title><style>{STYLE}</style></head>\
         <body><main><p class=\"notice\" id=\"emulator-notice\" role=\"note\">\
         <strong>Local emulator, not Medium.</strong> This page is served by the \
         medium-oauth emulator on this computer; nothing done here reaches Medium.</p>\
         <div class=\"card\">{main}</div></main></body></html>",
        title = text(title),
    );
    (
        status,
        [
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            // The consent page holds a one-time consent id.
            (header::CACHE_CONTROL, "no-store"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        Html(body),
    )
        .into_response()
}

fn error_page(reason: &str) -> Response {
    let main = format!(
        "<h1>We didn't understand your request</h1><p id=\"reason\">{}</p>",
        text(reason)
    );
    page(StatusCode::BAD_REQUEST, "Error", &main)
}

/// 403 for a username not seen before once [`crate::Limits::users`] are
/// known.
fn too_many_users_page(max_users: usize) -> Response {
    let reason = format!(
        "This emulator already knows {max_users} users, its cap, and signs in no new one: \
         sign in as a user it knows, or restart it with a higher --max-users."
    );
    let main = format!(
        "<h1>Too many users</h1><p id=\"reason\">{}</p>",
        text(&reason)
    );
    page(StatusCode::FORBIDDEN, "Too many users", &main)
}

fn overloaded_page() -> Response {
    page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Try again later",
        "<h1>Try again later</h1><p id=\"reason\">The emulator is at its memory cap.</p>",
    )
}

/// Validates the five parameters in the order that keeps redirects safe: the
/// app and its redirect URI first, so later errors may not redirect either.
fn validate(state: &State, query: &HashMap<String, String>) -> Result<PendingConsent, String> {
    let get = |name: &str| {
        query
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    };
    let client_id = get(param::CLIENT_ID).ok_or("client_id is missing.")?;
    let app = state.client(client_id).ok_or("Unknown client_id.")?;
    let redirect_uri = get(param::REDIRECT_URI).ok_or("redirect_uri is missing.")?;
    if !app.redirect.allows(redirect_uri) {
        return Err("redirect_uri is not registered for this application.".into());
    }
    if get(param::RESPONSE_TYPE) != Some(fixed::RESPONSE_TYPE) {
        return Err("response_type must be code.".into());
    }
    let state_param = get(param::STATE).ok_or("state is missing.")?;
    if state_param.len() > MAX_STATE_BYTES {
        return Err(format!(
            "state is too long: {} bytes, and at most {MAX_STATE_BYTES} are accepted.",
            state_param.len()
        ));
    }
    let scopes = Scopes::parse(get(param::SCOPE).ok_or("scope is missing.")?)
        .map_err(|_| "scope names an unknown scope.")?;
    if scopes.is_empty() {
        return Err("scope is empty.".into());
    }
    if scopes.iter().any(scopes::is_extended) && !app.extended_scope_approved {
        return Err("This application is not approved for uploadImage.".into());
    }
    Ok(PendingConsent {
        client_id: client_id.to_owned(),
        redirect_uri: redirect_uri.to_owned(),
        scopes,
        state: state_param.to_owned(),
        expires_at_ms: ms_after(state.clock.now_ms(), CODE_TTL),
    })
}

pub(crate) async fn authorize(
    Extract(state): Extract<Arc<State>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let consent = match validate(&state, &query) {
        Ok(consent) => consent,
        Err(reason) => return error_page(&reason),
    };
    if state.config.auto_approve {
        return match sign_in(&state, demo::USERNAME) {
            Some(user) => decide(&state, consent, Some(user)),
            None => too_many_users_page(state.config.limits.users),
        };
    }
    let app_name = state
        .client(&consent.client_id)
        .map(|a| a.name.clone())
        .unwrap_or_default();
    let scope_items: String = consent
        .scopes
        .iter()
        .map(|s| format!("<li>{}</li>", text(scopes::describe(s))))
        .collect();
    let redirect_uri = consent.redirect_uri.clone();
    let id = random_hex();
    let held = state.tables().insert_consent(
        &state.config.limits,
        state.clock.now_ms(),
        id.clone(),
        consent,
    );
    if held.is_err() {
        return overloaded_page();
    }
    let main = format!(
        "<h1><span id=\"app-name\">{name}</span> would like to</h1>\
         <ul id=\"scopes\">{scope_items}</ul>\
         <p class=\"fine\">Approving signs you in as the user named below (any username \
         is a user of its own; {demo} is the demo user) and sends you \
         back to <span id=\"redirect-uri\">{redirect}</span>.</p>\
         <form method=\"post\" action=\"{action}\">\
         <input type=\"hidden\" name=\"{CONSENT_FIELD}\" value=\"{id}\">\
         <label for=\"{USERNAME_FIELD}\">Username (1 to {MAX_USERNAME_CHARS} letters, digits, \
         _ or .)</label>\
         <input id=\"{USERNAME_FIELD}\" name=\"{USERNAME_FIELD}\" value=\"{demo}\">\
         <div class=\"actions\">\
         <button id=\"approve\" type=\"submit\" name=\"{DECISION_FIELD}\" value=\"approve\">Approve</button>\
         <button id=\"deny\" type=\"submit\" name=\"{DECISION_FIELD}\" value=\"deny\">Deny</button>\
         </div></form>",
        name = text(&app_name),
        demo = demo::USERNAME,
        redirect = text(&redirect_uri),
        action = attr(&routes::authorize_path()),
    );
    page(StatusCode::OK, &format!("Authorize {app_name}"), &main)
}

pub(crate) async fn consent(Extract(state): Extract<Arc<State>>, body: Body) -> Response {
    let form: Option<HashMap<String, String>> = match read_body(&state, body).await {
        Ok(bytes) => serde_urlencoded::from_bytes(&bytes).ok(),
        Err(_) => None,
    };
    let Some(form) = form else {
        return error_page("The consent form could not be read.");
    };
    // The username is checked, and its user signed in, before the consent
    // is taken, so a page sent back with a bad one (or a new user past the
    // cap) can be answered again once it is corrected. A denial names
    // nobody.
    let username = match form.get(DECISION_FIELD).map(String::as_str) {
        Some("approve") => match form.get(USERNAME_FIELD) {
            // A form posted without the field (a script written before it
            // existed) approves as the demo user, as before.
            None => Some(demo::USERNAME.to_owned()),
            Some(raw) => match users::username(raw) {
                Ok(username) => Some(username),
                Err(reason) => return error_page(&reason),
            },
        },
        Some("deny") => None,
        _ => return error_page("The consent form has no decision."),
    };
    let user = match username.map(|name| sign_in(&state, &name)) {
        Some(Some(user)) => Some(user),
        Some(None) => return too_many_users_page(state.config.limits.users),
        None => None,
    };
    let now = state.clock.now_ms();
    let pending = form
        .get(CONSENT_FIELD)
        .and_then(|id| state.tables().take_consent(id))
        .filter(|c| c.expires_at_ms > now);
    match pending {
        Some(consent) => decide(&state, consent, user),
        None => error_page("This authorization request has expired or was already answered."),
    }
}

/// Signs in the user `username` (checked and lowercased). `None`: a new
/// user past the cap.
fn sign_in(state: &State, username: &str) -> Option<Arc<User>> {
    let max_users = state.config.limits.users;
    state.users().sign_in(username, max_users).ok()
}

/// Redirects back to the app with a fresh code for `user`, or with
/// `access_denied` when there is none.
fn decide(state: &State, consent: PendingConsent, user: Option<Arc<User>>) -> Response {
    let Ok(mut target) = url::Url::parse(&consent.redirect_uri) else {
        return error_page("redirect_uri is not a URL.");
    };
    if let Some(user) = user {
        let code = random_hex();
        let now = state.clock.now_ms();
        let entry = CodeEntry {
            client_id: consent.client_id,
            redirect_uri: consent.redirect_uri,
            scopes: consent.scopes,
            expires_at_ms: ms_after(now, CODE_TTL),
            grant: None,
            user,
        };
        let held = state
            .tables()
            .insert_code(&state.config.limits, now, code.clone(), entry);
        if held.is_err() {
            return overloaded_page();
        }
        target
            .query_pairs_mut()
            .append_pair("code", &code)
            .append_pair(param::STATE, &consent.state);
    } else {
        target
            .query_pairs_mut()
            .append_pair("error", "access_denied")
            .append_pair(param::STATE, &consent.state);
    }
    (
        StatusCode::FOUND,
        [(header::LOCATION, target.as_str().to_owned())],
    )
        .into_response()
}
