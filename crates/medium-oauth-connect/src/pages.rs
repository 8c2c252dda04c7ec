//! The pages: the account list with its Connect button, the start of a
//! login, and the callback that stores the new grant. Every text that came
//! from elsewhere (Medium, the database, an error) is HTML-escaped.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use html_escape::encode_text as text;
use medium_oauth::scopes;
use medium_oauth_store::{AccountId, AccountState, StoreError};

use crate::App;

/// Accounts shown on the page: a demo's list; a real service pages it.
const LISTED_ACCOUNTS: u32 = 100;

pub(crate) fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(home))
        .route("/connect", post(connect))
        .route("/callback", get(callback))
        .with_state(app)
}

async fn home(State(app): State<Arc<App>>) -> Response {
    page(&app, StatusCode::OK, "").await
}

/// Starts a login that any instance can finish, bound to this browser by
/// a cookie, and sends the browser to Medium's consent page.
async fn connect(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    // A form on another site must not start logins in this one's name.
    if headers
        .get("sec-fetch-site")
        .is_some_and(|site| site.as_bytes() == b"cross-site")
    {
        let said = "Connect from this service's own page.";
        return message(&app, StatusCode::FORBIDDEN, said).await;
    }
    let browser = match random_hex() {
        Ok(browser) => browser,
        Err(e) => return failure(&app, &e).await,
    };
    match app
        .accounts
        .begin_login(scopes![basicProfile, listPublications], &browser)
        .await
    {
        Ok(url) => {
            // Lax: Medium sends the browser back with a top-level GET from
            // its own site. The login's own time to live bounds its life.
            let cookie = format!(
                "{LOGIN_COOKIE}={browser}; Path=/callback; HttpOnly; SameSite=Lax; Max-Age={}",
                medium_oauth::DEFAULT_PENDING_TTL.as_secs()
            );
            (
                StatusCode::SEE_OTHER,
                [
                    (header::LOCATION, url.to_string()),
                    (header::SET_COOKIE, cookie),
                ],
            )
                .into_response()
        }
        Err(e) => failure(&app, &e).await,
    }
}

/// The cookie binding a login to the browser that began it.
const LOGIN_COOKIE: &str = "medium_connect_login";

/// 256 random bits in hex.
fn random_hex() -> Result<String, StoreError> {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).map_err(|e| StoreError::Randomness(e.to_string()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The login cookie's value, if the browser sent one.
fn login_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == LOGIN_COOKIE).then_some(value)
        })
}

/// Medium sent the user back: finish the login (begun here or on another
/// instance), find out who they are, and keep their grant.
async fn callback(State(app): State<Arc<App>>, uri: Uri, headers: HeaderMap) -> Response {
    let query = uri.query().unwrap_or_default();
    // No cookie: a callback that did not begin in this browser; an empty
    // binding is refused as too weak, which says the same.
    let browser = login_cookie(&headers).unwrap_or_default();
    let token = match app.accounts.finish_login(query, browser).await {
        Ok(token) => token,
        Err(e) => return failure(&app, &e).await,
    };
    let user = match app.client.me(token.access_token()).await {
        Ok(user) => user,
        Err(e) => {
            eprintln!("medium-oauth-connect: asking Medium who logged in: {e}");
            let said = "Medium did not say who logged in. Connect again to retry.";
            return message(&app, StatusCode::BAD_GATEWAY, said).await;
        }
    };
    let stored = match AccountId::new(user.id) {
        Ok(account) => app.accounts.connect(&account, &token).await,
        Err(e) => Err(e),
    };
    match stored {
        Ok(()) => {
            let note = format!(
                "<p id=\"connected\">Connected @{} on {}.</p>",
                text(&user.username),
                text(&app.name)
            );
            let mut response = page(&app, StatusCode::OK, &note).await;
            // The login is done: its binding has no further use.
            let spent =
                format!("{LOGIN_COOKIE}=; Path=/callback; HttpOnly; SameSite=Lax; Max-Age=0");
            if let Ok(spent) = header::HeaderValue::from_str(&spent) {
                response.headers_mut().insert(header::SET_COOKIE, spent);
            }
            response
        }
        Err(e) => failure(&app, &e).await,
    }
}

/// A failure as the visitor sees it: what to do next, never the
/// database's own words or text a forged callback carried (a denial's
/// description is the sender's, and could be a phishing line on this
/// origin). The detail goes to the log.
async fn failure(app: &App, e: &StoreError) -> Response {
    let (status, said) = verdict(e);
    eprintln!("medium-oauth-connect: {status}: {e}");
    message(app, status, said).await
}

/// The status and the sentence a visitor sees for `e`.
fn verdict(e: &StoreError) -> (StatusCode, &'static str) {
    match e {
        StoreError::Login(medium_oauth::Error::Denied { .. }) => (
            StatusCode::BAD_REQUEST,
            "The login was not approved on Medium. Connect again to retry.",
        ),
        StoreError::Login(source) if source.is_transient() => (
            StatusCode::BAD_GATEWAY,
            "Medium did not answer the login. Connect again to retry.",
        ),
        StoreError::Login(_) | StoreError::WeakLoginBinding => (
            StatusCode::BAD_REQUEST,
            "This login link is not valid here: it was used already, it expired, or it was \
             not started by this service. Connect again to retry.",
        ),
        e if e.is_transient() => (
            StatusCode::SERVICE_UNAVAILABLE,
            "The service is busy or its database is away. Try again shortly.",
        ),
        _ => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong on this service.",
        ),
    }
}

async fn message(app: &App, status: StatusCode, error: &str) -> Response {
    let note = format!("<p id=\"error\">{}</p>", text(error));
    page(app, status, &note).await
}

/// The page: `note` (already HTML), the Connect button and the accounts.
async fn page(app: &App, status: StatusCode, note: &str) -> Response {
    let rows = match app.accounts.list(None, LISTED_ACCOUNTS).await {
        Ok(accounts) => accounts
            .iter()
            .map(|a| {
                format!(
                    "<tr class=\"account\"><td class=\"id\">{}</td><td class=\"status\">{}</td></tr>",
                    text(a.account.as_str()),
                    state(&a.state)
                )
            })
            .collect::<String>(),
        Err(e) => {
            eprintln!("medium-oauth-connect: listing accounts: {e}");
            "<tr><td colspan=\"2\" id=\"list-error\">The accounts cannot be listed now.</td></tr>"
                .to_owned()
        }
    };
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Connect your Medium \
         account</title></head><body><p id=\"instance\">{name}</p>\
         <h1>Connect your Medium account</h1>{note}\
         <form method=\"post\" action=\"/connect\"><button id=\"connect\" type=\"submit\">\
         Connect</button></form><table id=\"accounts\"><tr><th>Account</th><th>Status</th>\
         </tr>{rows}</table></body></html>",
        name = text(&app.name),
    );
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            // The callback's address holds a one-time code and state: no
            // cache keeps the page, and no Referer carries the address on.
            (header::CACHE_CONTROL, "no-store"),
            (header::REFERRER_POLICY, "no-referrer"),
            // No other site may frame the Connect button to steer a click.
            (header::CONTENT_SECURITY_POLICY, "frame-ancestors 'none'"),
            (header::X_FRAME_OPTIONS, "DENY"),
        ],
        body,
    )
        .into_response()
}

fn state(state: &AccountState) -> String {
    match state {
        AccountState::Valid { .. } => "valid".into(),
        AccountState::Refreshing => "refreshing".into(),
        AccountState::NeedsReauthorization { reason } => {
            format!("needs re-authorization ({})", text(reason))
        }
        // A state this example does not know yet.
        _ => "unknown".into(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use medium_oauth_store::AccountId;

    use super::*;

    #[test]
    fn states_read_as_words_and_a_reason_is_escaped() {
        assert_eq!(state(&AccountState::Valid { expires_at: None }), "valid");
        assert_eq!(state(&AccountState::Refreshing), "refreshing");
        let dead = AccountState::NeedsReauthorization {
            reason: "<b>revoked</b>".into(),
        };
        assert_eq!(
            state(&dead),
            "needs re-authorization (&lt;b&gt;revoked&lt;/b&gt;)"
        );
    }

    #[test]
    fn a_failure_says_what_to_do() {
        let login = |e| StoreError::Login(e);
        let denied = login(medium_oauth::Error::Denied {
            error: "access_denied".into(),
            description: Some("a sender's words".into()),
        });
        let busy = medium_oauth::Error::StoreBusy {
            path: "x".into(),
            waited: Duration::ZERO,
        };
        let account = AccountId::new("a").unwrap();
        let cases = [
            (denied, 400, "not approved"),
            (login(busy), 502, "did not answer"),
            (
                login(medium_oauth::Error::CsrfMismatch),
                400,
                "not valid here",
            ),
            (StoreError::WeakLoginBinding, 400, "not valid here"),
            (
                StoreError::LockTimeout {
                    account: account.clone(),
                    waited: Duration::ZERO,
                },
                503,
                "busy",
            ),
            (StoreError::NotConnected(account), 500, "went wrong"),
        ];
        for (error, status, said) in cases {
            let (got, sentence) = verdict(&error);
            assert_eq!(got.as_u16(), status, "{error:?}");
            assert!(sentence.contains(said), "{error:?}: {sentence}");
        }
    }
}
