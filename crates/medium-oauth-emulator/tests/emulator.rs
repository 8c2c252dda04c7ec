//! Every rule of the emulator, over real loopback HTTP.

use std::time::Duration;

use futures_util::future::join_all;
use medium_oauth_emulator::{
    CODE_TTL, ClientApp, Config, Emulator, Endpoint, Fault, Grant, Limits, MAX_STATE_BYTES,
    RedirectRule, RefreshEndpoints, SuccessStatus, codes,
};
use medium_oauth_test_support::{REDIRECT, auto_approving, emulator};
use medium_oauth2_api::types;
use reqwest::StatusCode;
use serde_json::Value;

use medium_oauth_test_support::http_no_redirect as http;

mod common;
use common::{assert_api_error, exchange, post_form, refresh_at};

fn registered_app() -> ClientApp {
    ClientApp {
        name: "Registered".into(),
        id: "reg".into(),
        secret: "reg-secret".into(),
        redirect: RedirectRule::Exact(vec!["https://app.example/cb".into()]),
        extended_scope_approved: false,
    }
}

fn authorize_url(emu: &Emulator, params: &[(&str, &str)]) -> String {
    let mut url =
        reqwest::Url::parse(&format!("{}/authorize", emu.authorization_server())).unwrap();
    url.query_pairs_mut().extend_pairs(params);
    url.to_string()
}

fn good_params<'a>(scope: &'a str, state: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("client_id", "demo-client"),
        ("scope", scope),
        ("state", state),
        ("response_type", "code"),
        ("redirect_uri", REDIRECT),
    ]
}

fn query_of(location: &str) -> Vec<(String, String)> {
    reqwest::Url::parse(location)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

fn param(pairs: &[(String, String)], name: &str) -> Option<String> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

/// Authorizes with auto-approve on and returns the code.
async fn code(emu: &Emulator, scope: &str) -> String {
    let resp = http()
        .get(authorize_url(emu, &good_params(scope, "st")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FOUND);
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    let q = query_of(&location);
    assert_eq!(param(&q, "state").as_deref(), Some("st"));
    param(&q, "code").expect("code in redirect")
}

/// Parses a token response with the generated type and checks nothing was
/// dropped on the way: the body holds exactly the spec's fields.
async fn token_body(resp: reqwest::Response) -> types::TokenResponse {
    assert!(resp.status().is_success(), "status {}", resp.status());
    assert_eq!(resp.headers()["content-type"], "application/json");
    let raw: Value = resp.json().await.unwrap();
    let parsed: types::TokenResponse = serde_json::from_value(raw.clone()).unwrap();
    assert_eq!(
        serde_json::to_value(&parsed).unwrap(),
        raw,
        "fields outside the spec"
    );
    let access = parsed.access_token.as_deref().unwrap();
    assert!(access.len() >= 32 && access.bytes().all(|b| b.is_ascii_hexdigit()));
    parsed
}

async fn me(emu: &Emulator, token: Option<&str>) -> reqwest::Response {
    let mut req = http().get(format!("{}/me", emu.api_server()));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn serves_both_hosts_on_their_real_paths() {
    let emu = emulator(Config::default()).await;
    assert_eq!(
        emu.authorization_server(),
        format!("{}/m/oauth", emu.base_url())
    );
    assert_eq!(emu.api_server(), format!("{}/v1", emu.base_url()));
    let resp = http()
        .get(format!("{}/v1/nothing", emu.base_url()))
        .send()
        .await
        .unwrap();
    assert_api_error(resp, StatusCode::NOT_FOUND, codes::NOT_FOUND).await;
    emu.shutdown().await;
}

#[tokio::test]
async fn authorize_rejects_bad_requests_with_an_html_page_and_no_redirect() {
    let emu = emulator(Config {
        clients: vec![ClientApp::demo(), registered_app()],
        ..Config::default()
    })
    .await;
    let good = good_params("basicProfile", "st");
    let mut cases: Vec<(&str, Vec<(&str, &str)>)> = Vec::new();
    for missing in [
        "client_id",
        "scope",
        "state",
        "response_type",
        "redirect_uri",
    ] {
        cases.push((
            missing,
            good.iter()
                .copied()
                .filter(|(k, _)| *k != missing)
                .collect(),
        ));
    }
    let replace = |name: &'static str, value: &'static str| -> Vec<(&str, &str)> {
        good.iter()
            .map(|&(k, v)| if k == name { (k, value) } else { (k, v) })
            .collect()
    };
    cases.push(("unknown client", replace("client_id", "nobody")));
    cases.push(("custom scheme", replace("redirect_uri", "myapp://cb")));
    cases.push((
        "non-loopback",
        replace("redirect_uri", "http://evil.example/cb"),
    ));
    cases.push((
        "https loopback",
        replace("redirect_uri", "https://127.0.0.1/cb"),
    ));
    cases.push(("response_type", replace("response_type", "token")));
    cases.push(("empty state", replace("state", "")));
    cases.push(("unknown scope", replace("scope", "basicProfile,readMinds")));
    cases.push((
        "unregistered redirect",
        vec![
            ("client_id", "reg"),
            ("scope", "basicProfile"),
            ("state", "s"),
            ("response_type", "code"),
            ("redirect_uri", "https://app.example/other"),
        ],
    ));
    cases.push((
        "unapproved extended scope",
        vec![
            ("client_id", "reg"),
            ("scope", "basicProfile,uploadImage"),
            ("state", "s"),
            ("response_type", "code"),
            ("redirect_uri", "https://app.example/cb"),
        ],
    ));
    for (name, params) in cases {
        let resp = http()
            .get(authorize_url(&emu, &params))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{name}");
        assert!(
            resp.headers().get("location").is_none(),
            "{name} redirected"
        );
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        let page = resp.text().await.unwrap();
        assert!(page.contains("We didn't understand your request"), "{name}");
    }
    // The registered app's exact URI is fine.
    let ok = http()
        .get(authorize_url(
            &emu,
            &[
                ("client_id", "reg"),
                ("scope", "basicProfile"),
                ("state", "s"),
                ("response_type", "code"),
                ("redirect_uri", "https://app.example/cb"),
            ],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
}

fn consent_id(page: &str) -> String {
    let marker = "name=\"consent\" value=\"";
    let start = page.find(marker).unwrap() + marker.len();
    page[start..start + page[start..].find('"').unwrap()].to_owned()
}

/// Answers the consent on `page` as its buttons do.
async fn decide(emu: &Emulator, page: &str, decision: &str) -> reqwest::Response {
    http()
        .post(format!("{}/authorize", emu.authorization_server()))
        .form(&[
            ("consent", consent_id(page).as_str()),
            ("decision", decision),
        ])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn consent_page_approve_and_deny() {
    let emu = emulator(Config::default()).await;
    let page_for = |state: &'static str| {
        let url = authorize_url(&emu, &good_params("basicProfile,publishPost", state));
        async move { http().get(url).send().await.unwrap().text().await.unwrap() }
    };
    let page = page_for("s1").await;
    assert!(page.contains("Demo App"));
    assert!(page.contains("See your name, username, profile URL and picture"));
    assert!(page.contains("Publish posts under your name"));
    assert!(!page.contains("Upload images"));
    assert!(page.contains("id=\"approve\"") && page.contains("id=\"deny\""));

    let approve = decide(&emu, &page, "approve").await;
    assert_eq!(approve.status(), StatusCode::FOUND);
    let q = query_of(approve.headers()["location"].to_str().unwrap());
    assert!(
        approve.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with(REDIRECT)
    );
    assert_eq!(param(&q, "state").as_deref(), Some("s1"));
    let code = param(&q, "code").unwrap();
    let token = token_body(exchange(&emu, &code).await).await;
    assert_eq!(
        token.scope,
        vec![
            types::TokenResponseScopeItem::BasicProfile,
            types::TokenResponseScopeItem::PublishPost
        ]
    );

    // The same consent cannot be answered twice.
    let again = decide(&emu, &page, "approve").await;
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);

    let page = page_for("s2").await;
    let deny = decide(&emu, &page, "deny").await;
    assert_eq!(deny.status(), StatusCode::FOUND);
    let q = query_of(deny.headers()["location"].to_str().unwrap());
    assert_eq!(param(&q, "error").as_deref(), Some("access_denied"));
    assert_eq!(param(&q, "state").as_deref(), Some("s2"));
    assert_eq!(param(&q, "code"), None);
}

/// A consent page can be answered until the code lifetime has passed since
/// it was shown, and not at that instant (as codes expire), on paused time
/// so that the instant is exact.
#[tokio::test(start_paused = true)]
async fn a_consent_page_can_be_answered_until_it_expires_not_at_it() {
    let emu = emulator(Config::default()).await;
    let page_for = |state: &'static str| {
        let url = authorize_url(&emu, &good_params("basicProfile", state));
        async move { http().get(url).send().await.unwrap().text().await.unwrap() }
    };
    let shown = emu.now_ms();
    let late = page_for("late").await;
    let in_time = page_for("in-time").await;
    assert_eq!(
        emu.now_ms(),
        shown,
        "paused time stood still while the pages were shown"
    );

    emu.advance_clock(CODE_TTL - Duration::from_millis(1));
    assert_eq!(
        decide(&emu, &in_time, "approve").await.status(),
        StatusCode::FOUND
    );
    emu.advance_clock(Duration::from_millis(1));
    let refused = decide(&emu, &late, "approve").await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert!(refused.text().await.unwrap().contains("expired"));
}

#[tokio::test]
async fn exchange_succeeds_with_201_by_default_and_200_by_option() {
    let emu = emulator(auto_approving()).await;
    let c = code(&emu, "basicProfile").await;
    let before = emu.now_ms();
    let resp = exchange(&emu, &c).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let token = token_body(resp).await;
    assert_eq!(
        token.token_type,
        Some(types::TokenResponseTokenType::Bearer)
    );
    assert!(token.refresh_token.is_some());
    let expires = token.expires_at.unwrap();
    let sixty_days_ms = 60 * 24 * 3600 * 1000;
    assert!((before + sixty_days_ms..=emu.now_ms() + sixty_days_ms).contains(&expires));

    let emu = emulator(Config {
        success_status: SuccessStatus::Ok,
        ..auto_approving()
    })
    .await;
    let c = code(&emu, "basicProfile").await;
    assert_eq!(exchange(&emu, &c).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn codes_are_single_use_and_reuse_revokes_the_first_tokens() {
    let emu = emulator(auto_approving()).await;
    let c = code(&emu, "basicProfile").await;
    let token = token_body(exchange(&emu, &c).await).await;
    let access = token.access_token.unwrap();
    assert_eq!(me(&emu, Some(&access)).await.status(), StatusCode::OK);

    let reused = exchange(&emu, &c).await;
    assert_api_error(reused, StatusCode::UNAUTHORIZED, codes::CODE_INVALID).await;
    assert_api_error(
        me(&emu, Some(&access)).await,
        StatusCode::UNAUTHORIZED,
        codes::TOKEN_INVALID,
    )
    .await;
    let refresh = refresh_at(&emu, "/tokens", &token.refresh_token.unwrap()).await;
    assert_api_error(
        refresh,
        StatusCode::UNAUTHORIZED,
        codes::REFRESH_TOKEN_INVALID,
    )
    .await;
}

#[tokio::test]
async fn codes_expire_after_ten_minutes() {
    let emu = emulator(auto_approving()).await;
    let c = code(&emu, "basicProfile").await;
    emu.advance_clock(Duration::from_secs(10 * 60 + 1));
    assert_api_error(
        exchange(&emu, &c).await,
        StatusCode::UNAUTHORIZED,
        codes::CODE_INVALID,
    )
    .await;
}

#[tokio::test]
async fn token_endpoint_rejects_bad_requests() {
    let emu = emulator(Config {
        clients: vec![ClientApp::demo(), registered_app()],
        ..auto_approving()
    })
    .await;
    let c = code(&emu, "basicProfile").await;
    let base = [
        ("code", c.as_str()),
        ("client_id", "demo-client"),
        ("client_secret", "demo-secret"),
        ("grant_type", "authorization_code"),
        ("redirect_uri", REDIRECT),
    ];
    let with = |name: &str, value: &'static str| -> Vec<(&str, &str)> {
        base.iter()
            .map(|&(k, v)| if k == name { (k, value) } else { (k, v) })
            .collect()
    };
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, StatusCode, i64);
    let cases: Vec<Case> = vec![
        (
            "wrong secret",
            with("client_secret", "nope"),
            StatusCode::UNAUTHORIZED,
            codes::CLIENT_SECRET_INVALID,
        ),
        (
            "unknown client",
            with("client_id", "nobody"),
            StatusCode::UNAUTHORIZED,
            codes::APPLICATION_NOT_FOUND,
        ),
        (
            "other client",
            {
                let mut f = with("client_id", "reg");
                f.retain(|(k, _)| *k != "client_secret");
                f.push(("client_secret", "reg-secret"));
                f
            },
            StatusCode::UNAUTHORIZED,
            codes::CODE_INVALID,
        ),
        (
            "bad code",
            with("code", "0000"),
            StatusCode::UNAUTHORIZED,
            codes::CODE_INVALID,
        ),
        (
            "redirect mismatch",
            with("redirect_uri", "http://127.0.0.1:9/other"),
            StatusCode::UNAUTHORIZED,
            codes::REDIRECT_URI_MISMATCH,
        ),
        (
            "wrong grant",
            with("grant_type", "password"),
            StatusCode::BAD_REQUEST,
            codes::GRANT_TYPE_INVALID,
        ),
        (
            "no grant",
            base.iter()
                .copied()
                .filter(|(k, _)| *k != "grant_type")
                .collect(),
            StatusCode::BAD_REQUEST,
            codes::GRANT_TYPE_INVALID,
        ),
        (
            "missing code",
            base.iter().copied().filter(|(k, _)| *k != "code").collect(),
            StatusCode::BAD_REQUEST,
            codes::MISSING_FIELD,
        ),
        (
            "extra field",
            {
                let mut f = base.to_vec();
                f.push(("scope", "basicProfile"));
                f
            },
            StatusCode::BAD_REQUEST,
            codes::UNEXPECTED_FIELD,
        ),
    ];
    for (name, form, status, code) in cases {
        let resp = post_form(&emu, "/tokens", &form).await;
        let message = assert_api_error(resp, status, code).await;
        if name == "extra field" {
            assert_eq!(message, "Unexpected field (scope) specified");
        }
    }
    // Not a urlencoded body: query string, JSON, multipart.
    let query = http()
        .post(format!("{}/tokens", emu.api_server()))
        .query(&base)
        .send()
        .await
        .unwrap();
    assert_api_error(query, StatusCode::BAD_REQUEST, codes::GRANT_TYPE_INVALID).await;
    let json = http()
        .post(format!("{}/tokens", emu.api_server()))
        .json(&serde_json::json!({"grant_type": "authorization_code"}))
        .send()
        .await
        .unwrap();
    assert_api_error(json, StatusCode::BAD_REQUEST, codes::GRANT_TYPE_INVALID).await;
    let huge = "a".repeat(65 * 1024);
    let resp = post_form(&emu, "/tokens", &[("code", huge.as_str())]).await;
    assert_api_error(resp, StatusCode::PAYLOAD_TOO_LARGE, codes::BODY_TOO_LARGE).await;

    // None of the bad requests used up the code.
    assert!(exchange(&emu, &c).await.status().is_success());
}

#[tokio::test]
async fn refresh_forms_follow_the_configured_endpoints() {
    for (endpoints, spec_ok, live_ok) in [
        (RefreshEndpoints::Both, true, true),
        (RefreshEndpoints::Spec, true, false),
        (RefreshEndpoints::Live, false, true),
    ] {
        let emu = emulator(Config {
            refresh_endpoints: endpoints,
            ..auto_approving()
        })
        .await;
        let c = code(&emu, "basicProfile").await;
        let refresh_token = token_body(exchange(&emu, &c).await)
            .await
            .refresh_token
            .unwrap();

        let spec = refresh_at(&emu, "/tokens/refresh", &refresh_token).await;
        if spec_ok {
            let t = token_body(spec).await;
            assert_eq!(
                t.refresh_token, None,
                "without rotation no refresh token comes back"
            );
        } else {
            assert_api_error(spec, StatusCode::NOT_FOUND, codes::NOT_FOUND).await;
        }
        let live = refresh_at(&emu, "/tokens", &refresh_token).await;
        if live_ok {
            token_body(live).await;
        } else {
            assert_api_error(live, StatusCode::BAD_REQUEST, codes::GRANT_TYPE_INVALID).await;
        }
        assert_eq!(emu.refreshes(), u64::from(spec_ok) + u64::from(live_ok));
        assert_eq!(
            emu.token_requests(Endpoint::TokensRefresh, Grant::RefreshToken),
            u64::from(spec_ok)
        );
        assert_eq!(emu.token_requests(Endpoint::Tokens, Grant::RefreshToken), 1);
        assert_eq!(
            emu.token_requests(Endpoint::Tokens, Grant::AuthorizationCode),
            1
        );
    }
}

#[tokio::test]
async fn refresh_rejects_unknown_tokens_and_extra_fields() {
    let emu = emulator(auto_approving()).await;
    let resp = refresh_at(&emu, "/tokens/refresh", "feed").await;
    assert_api_error(resp, StatusCode::UNAUTHORIZED, codes::REFRESH_TOKEN_INVALID).await;
    let resp = post_form(
        &emu,
        "/tokens",
        &[
            ("refresh_token", "feed"),
            ("client_id", "demo-client"),
            ("client_secret", "demo-secret"),
            ("grant_type", "refresh_token"),
            ("scope", "basicProfile"),
        ],
    )
    .await;
    let message = assert_api_error(resp, StatusCode::BAD_REQUEST, codes::UNEXPECTED_FIELD).await;
    assert_eq!(message, "Unexpected field (scope) specified");
}

#[tokio::test]
async fn rotation_issues_a_new_refresh_token_and_retires_the_old() {
    let emu = emulator(Config {
        rotate_refresh_tokens: true,
        ..auto_approving()
    })
    .await;
    let c = code(&emu, "basicProfile").await;
    let first = token_body(exchange(&emu, &c).await)
        .await
        .refresh_token
        .unwrap();
    let second = token_body(refresh_at(&emu, "/tokens", &first).await)
        .await
        .refresh_token
        .expect("rotation returns a refresh token");
    assert_ne!(first, second);
    let old = refresh_at(&emu, "/tokens/refresh", &first).await;
    assert_api_error(old, StatusCode::UNAUTHORIZED, codes::REFRESH_TOKEN_INVALID).await;
    token_body(refresh_at(&emu, "/tokens/refresh", &second).await).await;
    assert_eq!(emu.live_refresh_tokens(), 1);
}

#[tokio::test]
async fn a_replayed_refresh_token_revokes_its_grant_when_detection_is_on() {
    for detect in [false, true] {
        let emu = emulator(Config {
            rotate_refresh_tokens: true,
            detect_refresh_replay: detect,
            ..auto_approving()
        })
        .await;
        let first = token_body(exchange(&emu, &code(&emu, "basicProfile").await).await)
            .await
            .refresh_token
            .unwrap();
        // Another grant, which a replay of the first must leave alone.
        let bystander = token_body(exchange(&emu, &code(&emu, "basicProfile").await).await)
            .await
            .refresh_token
            .unwrap();
        let second = token_body(refresh_at(&emu, "/tokens", &first).await)
            .await
            .refresh_token
            .unwrap();
        let replay = refresh_at(&emu, "/tokens", &first).await;
        assert_api_error(
            replay,
            StatusCode::UNAUTHORIZED,
            codes::REFRESH_TOKEN_INVALID,
        )
        .await;
        assert_eq!(emu.refresh_replays(), u64::from(detect));
        let current = refresh_at(&emu, "/tokens", &second).await;
        if detect {
            // The whole grant went: its newest refresh token too.
            assert_api_error(
                current,
                StatusCode::UNAUTHORIZED,
                codes::REFRESH_TOKEN_INVALID,
            )
            .await;
        } else {
            token_body(current).await;
        }
        token_body(refresh_at(&emu, "/tokens", &bystander).await).await;
    }
}

#[tokio::test]
async fn me_checks_token_and_scope() {
    let emu = emulator(Config {
        token_lifetime: Duration::from_secs(60),
        ..auto_approving()
    })
    .await;
    assert_api_error(
        me(&emu, None).await,
        StatusCode::UNAUTHORIZED,
        codes::TOKEN_REQUIRED,
    )
    .await;
    assert_api_error(
        me(&emu, Some("bad")).await,
        StatusCode::UNAUTHORIZED,
        codes::TOKEN_INVALID,
    )
    .await;

    let c = code(&emu, "publishPost").await;
    let no_profile = token_body(exchange(&emu, &c).await)
        .await
        .access_token
        .unwrap();
    // 401, as Medium documents a missing scope, not 403.
    let msg = assert_api_error(
        me(&emu, Some(&no_profile)).await,
        StatusCode::UNAUTHORIZED,
        codes::MISSING_SCOPE,
    )
    .await;
    assert_eq!(msg, "Missing scope: basicProfile");

    let c = code(&emu, "basicProfile").await;
    let token = token_body(exchange(&emu, &c).await)
        .await
        .access_token
        .unwrap();
    let resp = me(&emu, Some(&token)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: medium_oauth2_api::resource::types::UserEnvelope = resp.json().await.unwrap();
    assert_eq!(body.data.username, "demo");

    emu.advance_clock(Duration::from_secs(61));
    assert_api_error(
        me(&emu, Some(&token)).await,
        StatusCode::UNAUTHORIZED,
        codes::TOKEN_INVALID,
    )
    .await;
}

#[tokio::test]
async fn injected_faults_answer_the_next_requests_in_order() {
    let emu = emulator(auto_approving()).await;
    let c = code(&emu, "basicProfile").await;
    emu.inject_faults([
        Fault::Status(503),
        Fault::Status(500),
        Fault::TooManyRequests {
            retry_after: Duration::from_secs(7),
        },
        Fault::DropConnection,
        Fault::html_page(200),
        Fault::malformed_json(201),
        Fault::empty_body(201),
        Fault::missing_access_token(201),
        Fault::huge_body(201, 2 * 1024 * 1024),
        Fault::Delay(Duration::from_millis(300)),
    ]);
    assert_api_error(
        exchange(&emu, &c).await,
        StatusCode::SERVICE_UNAVAILABLE,
        503,
    )
    .await;
    assert_api_error(
        exchange(&emu, &c).await,
        StatusCode::INTERNAL_SERVER_ERROR,
        500,
    )
    .await;
    let limited = exchange(&emu, &c).await;
    assert_eq!(limited.headers()["retry-after"], "7");
    assert_api_error(limited, StatusCode::TOO_MANY_REQUESTS, 429).await;
    let dropped = http()
        .post(format!("{}/tokens", emu.api_server()))
        .form(&[("grant_type", "authorization_code")])
        .send()
        .await;
    assert!(
        dropped.is_err(),
        "the connection must break before a full response"
    );
    let html = exchange(&emu, &c).await;
    assert!(
        html.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let malformed = exchange(&emu, &c).await.bytes().await.unwrap();
    assert!(serde_json::from_slice::<Value>(&malformed).is_err());
    assert!(exchange(&emu, &c).await.bytes().await.unwrap().is_empty());
    let partial: Value = exchange(&emu, &c).await.json().await.unwrap();
    assert!(partial.get("access_token").is_none());
    assert_eq!(
        exchange(&emu, &c).await.bytes().await.unwrap().len(),
        2 * 1024 * 1024
    );
    let started = std::time::Instant::now();
    let delayed = exchange(&emu, &c).await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    token_body(delayed).await;
    assert_eq!(
        emu.token_requests(Endpoint::Tokens, Grant::AuthorizationCode),
        10
    );
    assert_eq!(emu.exchanges(), 1);
}

#[tokio::test]
async fn memory_stays_bounded_under_a_flood() {
    let emu = emulator(Config {
        limits: Limits {
            pending_grants: 5,
            tokens: 4,
            ..Limits::default()
        },
        ..auto_approving()
    })
    .await;
    let mut codes_issued = Vec::new();
    for _ in 0..5 {
        codes_issued.push(code(&emu, "basicProfile").await);
    }
    let flood = http()
        .get(authorize_url(&emu, &good_params("basicProfile", "s")))
        .send()
        .await
        .unwrap();
    assert_eq!(flood.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(emu.pending_grants(), 5);

    token_body(exchange(&emu, &codes_issued[0]).await).await;
    token_body(exchange(&emu, &codes_issued[1]).await).await;
    let full = exchange(&emu, &codes_issued[2]).await;
    assert_api_error(full, StatusCode::SERVICE_UNAVAILABLE, codes::OVERLOADED).await;

    // Once codes expire they are swept and room returns.
    emu.advance_clock(Duration::from_secs(11 * 60));
    code(&emu, "basicProfile").await;
    assert_eq!(emu.pending_grants(), 1);
}

#[tokio::test]
async fn parallel_exchanges() {
    let emu = emulator(auto_approving()).await;
    let mut codes_issued = Vec::new();
    for _ in 0..200 {
        codes_issued.push(code(&emu, "basicProfile").await);
    }
    let distinct = join_all(codes_issued.iter().map(|c| exchange(&emu, c))).await;
    assert!(distinct.iter().all(|r| r.status() == StatusCode::CREATED));
    assert_eq!(emu.exchanges(), 200);
    assert_eq!(emu.live_access_tokens(), 200);

    let shared = code(&emu, "basicProfile").await;
    let same = join_all((0..50).map(|_| exchange(&emu, &shared))).await;
    let wins = same.iter().filter(|r| r.status().is_success()).count();
    assert_eq!(wins, 1, "exactly one exchange of a code may succeed");
    assert!(
        same.iter()
            .all(|r| r.status().is_success() || r.status() == StatusCode::UNAUTHORIZED)
    );
}

async fn consent_page(
    emu: &Emulator,
    params: &[(&str, &str)],
) -> (reqwest::header::HeaderMap, String) {
    let resp = http().get(authorize_url(emu, params)).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let headers = resp.headers().clone();
    (headers, resp.text().await.unwrap())
}

#[tokio::test]
async fn an_over_long_state_is_refused_and_nothing_is_held() {
    let emu = emulator(Config::default()).await;
    let too_long = "s".repeat(MAX_STATE_BYTES + 1);
    let resp = http()
        .get(authorize_url(&emu, &good_params("basicProfile", &too_long)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(resp.headers().get("location").is_none());
    let page = resp.text().await.unwrap();
    assert!(
        page.contains(&format!("at most {MAX_STATE_BYTES} are accepted")),
        "{page}"
    );
    assert!(!page.contains(&too_long), "the page echoes the state");
    assert_eq!(emu.pending_grants(), 0);

    let longest = "s".repeat(MAX_STATE_BYTES);
    consent_page(&emu, &good_params("basicProfile", &longest)).await;
    assert_eq!(emu.pending_grants(), 1);
}

#[tokio::test]
async fn pending_grants_are_capped_in_bytes() {
    const CAP_BYTES: usize = 16 * 1024;
    let emu = emulator(Config {
        limits: Limits {
            pending_grant_bytes: CAP_BYTES,
            ..Limits::default()
        },
        ..Config::default()
    })
    .await;
    let long_state = "s".repeat(MAX_STATE_BYTES);
    let mut pages = Vec::new();
    let refused = loop {
        let resp = http()
            .get(authorize_url(
                &emu,
                &good_params("basicProfile", &long_state),
            ))
            .send()
            .await
            .unwrap();
        if resp.status() != StatusCode::OK {
            break resp;
        }
        pages.push(resp.text().await.unwrap());
        assert!(pages.len() <= CAP_BYTES / MAX_STATE_BYTES, "no byte cap");
    };
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    // Far fewer than the entry cap, and each held at least its state.
    assert!(
        pages.len() >= CAP_BYTES / (2 * MAX_STATE_BYTES),
        "{}",
        pages.len()
    );
    assert_eq!(emu.pending_grants(), pages.len());
    let held = emu.pending_grant_bytes();
    assert!(held <= CAP_BYTES, "{held}");
    assert!(held >= pages.len() * MAX_STATE_BYTES, "{held}");

    // Answering a consent gives its bytes back.
    for page in &pages {
        let deny = decide(&emu, page, "deny").await;
        assert_eq!(deny.status(), StatusCode::FOUND);
    }
    assert_eq!(emu.pending_grants(), 0);
    assert_eq!(emu.pending_grant_bytes(), 0);

    // And so does expiry: filled up again, then expired, there is room.
    for _ in 0..pages.len() {
        consent_page(&emu, &good_params("basicProfile", &long_state)).await;
    }
    let full = http()
        .get(authorize_url(
            &emu,
            &good_params("basicProfile", &long_state),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(full.status(), StatusCode::SERVICE_UNAVAILABLE);
    emu.advance_clock(Duration::from_secs(11 * 60));
    let last = consent_page(&emu, &good_params("basicProfile", &long_state))
        .await
        .1;
    assert_eq!(emu.pending_grants(), 1, "the expired ones were swept");
    let consent_bytes = emu.pending_grant_bytes();
    assert!(
        (MAX_STATE_BYTES..2 * MAX_STATE_BYTES).contains(&consent_bytes),
        "{consent_bytes}"
    );

    // An approved consent becomes a code, counted until it expires.
    let approve = decide(&emu, &last, "approve").await;
    assert_eq!(approve.status(), StatusCode::FOUND);
    assert_eq!(emu.pending_grants(), 1);
    // It keeps no state, which went back with the redirect.
    let code_bytes = emu.pending_grant_bytes();
    assert!(code_bytes < MAX_STATE_BYTES, "{code_bytes}");
}

#[tokio::test]
async fn a_huge_token_lifetime_does_not_panic_the_server() {
    // 9223372036854775 s is the `--token-lifetime` that used to overflow;
    // `Duration::MAX` is the most a Config can say.
    for lifetime in [Duration::from_secs(9_223_372_036_854_775), Duration::MAX] {
        let emu = emulator(Config {
            token_lifetime: lifetime,
            ..auto_approving()
        })
        .await;
        let c = code(&emu, "basicProfile").await;
        let token = token_body(exchange(&emu, &c).await).await;
        assert_eq!(token.expires_at, Some(i64::MAX), "saturates at the far end");
        let access = token.access_token.unwrap();
        assert_eq!(me(&emu, Some(&access)).await.status(), StatusCode::OK);
        let refreshed =
            token_body(refresh_at(&emu, "/tokens", &token.refresh_token.unwrap()).await).await;
        assert_eq!(refreshed.expires_at, Some(i64::MAX));
    }
}

#[tokio::test]
async fn a_clock_advanced_to_the_end_of_time_does_not_panic_the_server() {
    let emu = emulator(auto_approving()).await;
    emu.advance_clock(Duration::MAX);
    let resp = http()
        .get(authorize_url(&emu, &good_params("basicProfile", "st")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FOUND);
    let q = query_of(resp.headers()["location"].to_str().unwrap());
    let c = param(&q, "code").unwrap();
    // Nothing outlives the end of time, but the server answers.
    assert_api_error(
        exchange(&emu, &c).await,
        StatusCode::UNAUTHORIZED,
        codes::CODE_INVALID,
    )
    .await;
}

#[tokio::test]
async fn consent_page_says_it_is_the_emulator_and_fits_a_phone() {
    let emu = emulator(Config::default()).await;
    let (headers, page) = consent_page(&emu, &good_params("basicProfile,publishPost", "st")).await;
    assert!(page.contains("Local emulator, not Medium"), "{page}");
    assert!(
        page.contains(r#"<meta name="viewport" content="width=device-width, initial-scale=1">"#)
    );
    assert!(page.contains("<style>"));
    for external in ["<link", "<script", "src=", "url(", "@import"] {
        assert!(!page.contains(external), "loads {external}: {page}");
    }
    assert!(page.contains(r#"<span id="app-name">Demo App</span> would like to"#));
    let scopes_start = page.find(r#"<ul id="scopes">"#).unwrap();
    let scopes = &page[scopes_start..scopes_start + page[scopes_start..].find("</ul>").unwrap()];
    assert_eq!(scopes.matches("<li>").count(), 2, "{scopes}");
    assert!(scopes.contains("See your name, username, profile URL and picture"));
    assert!(scopes.contains("Publish posts under your name"));
    assert!(page.contains(
        r#"<button id="approve" type="submit" name="decision" value="approve">Approve</button>"#
    ));
    assert!(
        page.contains(
            r#"<button id="deny" type="submit" name="decision" value="deny">Deny</button>"#
        )
    );
    assert!(page.contains(&format!(r#"<span id="redirect-uri">{REDIRECT}</span>"#)));
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"));
    assert_eq!(headers["cache-control"], "no-store");
}

#[tokio::test]
async fn consent_page_escapes_what_it_shows() {
    let evil_app = ClientApp {
        name: "<script>alert(1)</script> & Co".into(),
        id: "evil".into(),
        secret: "evil-secret".into(),
        redirect: RedirectRule::AnyLoopback,
        extended_scope_approved: false,
    };
    let emu = emulator(Config {
        clients: vec![evil_app],
        ..Config::default()
    })
    .await;
    let redirect = r#"http://127.0.0.1:9/cb?x="><script>alert(2)</script>"#;
    let (_, page) = consent_page(
        &emu,
        &[
            ("client_id", "evil"),
            ("scope", "basicProfile"),
            ("state", "<script>alert(3)</script>"),
            ("response_type", "code"),
            ("redirect_uri", redirect),
        ],
    )
    .await;
    assert!(!page.contains("<script"), "{page}");
    assert!(
        page.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co"),
        "{page}"
    );
    assert!(
        page.contains("<title>Authorize &lt;script&gt;alert(1)"),
        "{page}"
    );
    assert!(page.contains(r#"?x="&gt;&lt;script&gt;alert(2)"#), "{page}");
}

#[tokio::test]
async fn pages_never_show_the_state_or_a_secret() {
    let emu = emulator(Config {
        clients: vec![ClientApp::demo(), registered_app()],
        ..Config::default()
    })
    .await;
    let state = "state-0123456789abcdef-must-stay-private";
    let (_, page) = consent_page(
        &emu,
        &[
            ("client_id", "reg"),
            ("scope", "basicProfile"),
            ("state", state),
            ("response_type", "code"),
            ("redirect_uri", "https://app.example/cb"),
        ],
    )
    .await;
    let error = http()
        .get(authorize_url(
            &emu,
            &[
                ("client_id", "reg"),
                ("scope", "readMinds"),
                ("state", state),
                ("response_type", "code"),
                ("redirect_uri", "https://app.example/cb"),
            ],
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for shown in [page, error, format!("{:?}", emu.config())] {
        assert!(!shown.contains(state), "{shown}");
        assert!(!shown.contains("reg-secret"), "{shown}");
        assert!(!shown.contains("demo-secret"), "{shown}");
    }
}
