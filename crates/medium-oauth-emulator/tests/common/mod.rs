//! What the emulator's test files share: token requests as an SDK sends
//! them, and the check of a Medium error body.

#![allow(dead_code)] // each test file uses its own part

use medium_oauth_emulator::Emulator;
use medium_oauth_test_support::REDIRECT;
use medium_oauth_test_support::http_no_redirect as http;
use medium_oauth2_api::types;
use reqwest::StatusCode;
use serde_json::Value;

/// Posts `form` to the API server's `path`, with the junk bearer header
/// Medium's SDKs send to the token endpoint.
pub async fn post_form(emu: &Emulator, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
    http()
        .post(format!("{}{path}", emu.api_server()))
        .header("authorization", "Bearer junk-the-sdks-send")
        .form(form)
        .send()
        .await
        .unwrap()
}

/// Exchanges `code` for the demo app.
pub async fn exchange(emu: &Emulator, code: &str) -> reqwest::Response {
    post_form(
        emu,
        "/tokens",
        &[
            ("code", code),
            ("client_id", "demo-client"),
            ("client_secret", "demo-secret"),
            ("grant_type", "authorization_code"),
            ("redirect_uri", REDIRECT),
        ],
    )
    .await
}

/// Refreshes `refresh_token` for the demo app at `path` (`/tokens` or
/// `/tokens/refresh`).
pub async fn refresh_at(emu: &Emulator, path: &str, refresh_token: &str) -> reqwest::Response {
    post_form(
        emu,
        path,
        &[
            ("refresh_token", refresh_token),
            ("client_id", "demo-client"),
            ("client_secret", "demo-secret"),
            ("grant_type", "refresh_token"),
        ],
    )
    .await
}

/// Asserts a Medium error: status, JSON content type, one `{message, code}`.
pub async fn assert_api_error(resp: reqwest::Response, status: StatusCode, code: i64) -> String {
    assert_eq!(resp.status(), status);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let raw: Value = resp.json().await.unwrap();
    let parsed: types::Error = serde_json::from_value(raw.clone()).unwrap();
    assert_eq!(serde_json::to_value(&parsed).unwrap(), raw);
    assert_eq!(parsed.errors.len(), 1, "{raw}");
    assert_eq!(parsed.errors[0].code, Some(code), "{raw}");
    parsed.errors[0].message.clone().unwrap()
}
