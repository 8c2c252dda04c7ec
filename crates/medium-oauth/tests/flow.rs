//! The authorization-code flow against the emulator, over loopback.

mod common;

use std::time::{Duration, SystemTime};

use common::*;
use medium_oauth::{Error, Scope, TransportKind, scopes};
use medium_oauth_emulator::{
    Config, Endpoint, Fault, Grant, RefreshEndpoints, SuccessStatus, codes,
};

#[tokio::test]
async fn happy_path() {
    let emu = emulator(auto_approving()).await;
    let client = demo_client(&emu);
    let (url, pending) = client
        .authorize_url(scopes![basicProfile, publishPost])
        .unwrap();
    let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    let names: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "client_id",
            "scope",
            "state",
            "response_type",
            "redirect_uri"
        ]
    );
    assert!(
        url.as_str()
            .starts_with(&format!("{}/authorize?", emu.authorization_server()))
    );

    let callback = approve(&url).await;
    let token = client.complete(&pending, &callback).await.unwrap();
    assert_eq!(token.scopes().known, scopes![basicProfile, publishPost]);
    assert!(token.scopes().require(Scope::PublishPost).is_ok());
    assert!(matches!(
        token.scopes().require(Scope::UploadImage),
        Err(Error::MissingScope(Scope::UploadImage))
    ));
    let expires = token.expires_at().unwrap();
    let sixty_days = Duration::from_secs(60 * 24 * 3600);
    let left = expires.duration_since(SystemTime::now()).unwrap();
    assert!(left > sixty_days - Duration::from_secs(60) && left <= sixty_days);

    // The token works against the API.
    let me = medium_oauth::tls::client_builder()
        .unwrap()
        .build()
        .unwrap()
        .get(format!("{}/me", emu.api_server()))
        .bearer_auth(token.access_token().expose_secret())
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
}

#[tokio::test]
async fn both_success_statuses_are_success() {
    for status in [SuccessStatus::Created, SuccessStatus::Ok] {
        let emu = emulator(Config {
            success_status: status,
            ..auto_approving()
        })
        .await;
        let client = demo_client(&emu);
        let token = login(&client, scopes![basicProfile]).await;
        let refreshed = client
            .refresh(token.refresh_token().unwrap())
            .await
            .unwrap();
        assert_ne!(refreshed.access_token(), token.access_token());
    }
}

#[tokio::test]
async fn denial_is_a_typed_error() {
    let emu = emulator(Config::default()).await;
    let client = demo_client(&emu);
    let (url, pending) = client.authorize_url(scopes![basicProfile]).unwrap();
    let page = medium_oauth::tls::client_builder()
        .unwrap()
        .build()
        .unwrap()
        .get(url.as_str())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let marker = "name=\"consent\" value=\"";
    let start = page.find(marker).unwrap() + marker.len();
    let consent = &page[start..start + 32];
    let browser = medium_oauth::tls::client_builder()
        .unwrap()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let deny = browser
        .post(format!("{}/authorize", emu.authorization_server()))
        .form(&[("consent", consent), ("decision", "deny")])
        .send()
        .await
        .unwrap();
    let callback = deny.headers()["location"].to_str().unwrap();
    let err = client.complete(&pending, callback).await.unwrap_err();
    assert!(
        matches!(err, Error::Denied { ref error, .. } if error == "access_denied"),
        "{err}"
    );
    assert_eq!(emu.total_token_requests(), 0);
}

#[tokio::test]
async fn forged_missing_and_replayed_state() {
    let emu = emulator(auto_approving()).await;
    let client = demo_client(&emu);
    let (url, pending) = client.authorize_url(scopes![basicProfile]).unwrap();
    let callback = approve(&url).await;
    let code = url::Url::parse(&callback)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();

    let forged = format!("{REDIRECT}?code={code}&state=attacker");
    assert!(matches!(
        client.complete(&pending, &forged).await,
        Err(Error::CsrfMismatch)
    ));
    let missing = format!("{REDIRECT}?code={code}");
    assert!(matches!(
        client.complete(&pending, &missing).await,
        Err(Error::CsrfMismatch)
    ));
    // A state from another authorization of the same client is a mismatch too.
    let (_, other) = client.authorize_url(scopes![basicProfile]).unwrap();
    assert!(matches!(
        client.complete(&other, &callback).await,
        Err(Error::CsrfMismatch)
    ));
    assert_eq!(
        emu.total_token_requests(),
        0,
        "no code was sent on a failed check"
    );

    client.complete(&pending, &callback).await.unwrap();
    assert!(matches!(
        client.complete(&pending, &callback).await,
        Err(Error::AlreadyCompleted)
    ));
    assert_eq!(emu.exchanges(), 1);
}

#[tokio::test(start_paused = true)]
async fn pending_authorizations_expire_after_their_ttl_not_at_it() {
    let emu = emulator(auto_approving()).await;
    let client = demo_builder(&emu)
        .pending_ttl(Duration::from_secs(60))
        .build()
        .unwrap();
    let (url, pending) = client.authorize_url(scopes![basicProfile]).unwrap();
    let callback = approve(&url).await;
    tokio::time::advance(Duration::from_secs(60)).await;
    assert!(!pending.is_expired(), "exactly the TTL is still in time");
    tokio::time::advance(Duration::from_millis(1)).await;
    assert!(pending.is_expired());
    assert!(matches!(
        client.complete(&pending, &callback).await,
        Err(Error::AuthorizationExpired)
    ));
}

#[tokio::test(start_paused = true)]
async fn the_default_pending_ttl_is_ten_minutes() {
    let emu = emulator(auto_approving()).await;
    let client = demo_client(&emu);
    let (url, pending) = client.authorize_url(scopes![basicProfile]).unwrap();
    let callback = approve(&url).await;
    tokio::time::advance(Duration::from_secs(10 * 60)).await;
    assert!(!pending.is_expired());
    tokio::time::advance(Duration::from_millis(1)).await;
    assert!(matches!(
        client.complete(&pending, &callback).await,
        Err(Error::AuthorizationExpired)
    ));
}

/// An authorization and the callback the emulator sends for it.
async fn code_callback(
    client: &medium_oauth::OAuthClient,
) -> (medium_oauth::PendingAuthorization, String) {
    let (url, pending) = client.authorize_url(scopes![basicProfile]).unwrap();
    let callback = approve(&url).await;
    (pending, callback)
}

#[tokio::test]
async fn reused_and_expired_codes_are_invalid_grants() {
    let emu = emulator(auto_approving()).await;
    let client = demo_client(&emu);
    let (pending, callback) = code_callback(&client).await;
    let first = client.complete(&pending, &callback).await.unwrap();

    // Another client instance of the same app replays the code (the first
    // pending authorization refuses a second completion by itself).
    let (url, replay_pending) = client.authorize_url(scopes![basicProfile]).unwrap();
    let state = url
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let code = url::Url::parse(&callback)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let replay = format!("{REDIRECT}?code={code}&state={state}");
    let err = client.complete(&replay_pending, &replay).await.unwrap_err();
    assert!(err.requires_reauthorization(), "{err}");
    match &err {
        Error::InvalidGrant { status, errors } => {
            assert_eq!(*status, 401);
            assert_eq!(errors[0].code, codes::CODE_INVALID);
        }
        other => panic!("{other:?}"),
    }
    // Reuse revoked what the code first issued.
    let refresh = client
        .refresh(first.refresh_token().unwrap())
        .await
        .unwrap_err();
    assert!(refresh.requires_reauthorization(), "{refresh}");

    let (pending, callback) = code_callback(&client).await;
    emu.advance_clock(Duration::from_secs(11 * 60));
    let err = client.complete(&pending, &callback).await.unwrap_err();
    assert!(matches!(err, Error::InvalidGrant { .. }), "{err}");
}

/// Regression: a wrong client secret was an invalid grant, whose remedy
/// (authorize again) cannot help.
#[tokio::test]
async fn wrong_secret_or_unknown_client_is_an_invalid_client_not_grant() {
    let emu = emulator(auto_approving()).await;
    for (id, secret, code) in [
        (
            "demo-client",
            "not-the-secret",
            codes::CLIENT_SECRET_INVALID,
        ),
        (
            "no-such-client",
            DEMO_CLIENT_SECRET,
            codes::APPLICATION_NOT_FOUND,
        ),
    ] {
        let client = medium_oauth::OAuthClient::builder(
            medium_oauth::ClientId::new(id),
            medium_oauth::ClientSecret::new(secret),
            REDIRECT,
        )
        .authorization_server(emu.authorization_server())
        .api_server(emu.api_server())
        .build()
        .unwrap();
        let good = client_for_refresh(&emu).await;
        let err = client
            .refresh(good.refresh_token().unwrap())
            .await
            .unwrap_err();
        match &err {
            Error::InvalidClient { status, errors } => {
                assert_eq!(*status, 401);
                assert_eq!(errors[0].code, code);
            }
            other => panic!("{other:?}"),
        }
        assert!(!err.requires_reauthorization(), "{err}");
        assert!(!err.is_transient(), "{err}");
        assert!(!err.to_string().contains(secret), "{err}");
    }
    // At the code exchange too.
    let client = medium_oauth::OAuthClient::builder(
        medium_oauth::ClientId::new("demo-client"),
        medium_oauth::ClientSecret::new("not-the-secret"),
        REDIRECT,
    )
    .authorization_server(emu.authorization_server())
    .api_server(emu.api_server())
    .build()
    .unwrap();
    let (pending, callback) = code_callback(&client).await;
    assert!(matches!(
        client.complete(&pending, &callback).await,
        Err(Error::InvalidClient { .. })
    ));
}

/// A token with a refresh token, from the demo app.
async fn client_for_refresh(emu: &medium_oauth_emulator::Emulator) -> medium_oauth::Token {
    login(&demo_client(emu), scopes![basicProfile]).await
}

#[tokio::test]
async fn refresh_uses_whichever_form_the_server_serves_and_remembers_it() {
    // (endpoints, refreshes at /tokens/refresh, at /tokens, 404s seen)
    for (endpoints, spec, live, not_found) in [
        (RefreshEndpoints::Both, 3, 0, 0),
        (RefreshEndpoints::Spec, 3, 0, 0),
        // One probe of the spec's path, then only the live form.
        (RefreshEndpoints::Live, 0, 3, 1),
    ] {
        let emu = emulator(Config {
            refresh_endpoints: endpoints,
            ..auto_approving()
        })
        .await;
        let client = demo_client(&emu);
        let token = login(&client, scopes![basicProfile]).await;
        let refresh_token = token.refresh_token().unwrap().clone();
        for _ in 0..3 {
            let refreshed = client.refresh(&refresh_token).await.unwrap();
            assert_eq!(
                refreshed.refresh_token(),
                Some(&refresh_token),
                "without rotation the old refresh token is kept"
            );
        }
        let at = |endpoint| emu.token_requests(endpoint, Grant::RefreshToken);
        assert_eq!(at(Endpoint::TokensRefresh), spec, "{endpoints:?}");
        assert_eq!(at(Endpoint::Tokens), live, "{endpoints:?}");
        assert_eq!(emu.not_found_requests(), not_found, "{endpoints:?}");
        assert_eq!(emu.refreshes(), 3, "{endpoints:?}");
    }
}

#[tokio::test]
async fn rotation_returns_the_new_refresh_token() {
    let emu = emulator(Config {
        rotate_refresh_tokens: true,
        ..auto_approving()
    })
    .await;
    let client = demo_client(&emu);
    let token = login(&client, scopes![basicProfile]).await;
    let first = token.refresh_token().unwrap().clone();
    let rotated = client.refresh(&first).await.unwrap();
    let second = rotated.refresh_token().unwrap().clone();
    assert_ne!(first, second);
    assert!(
        client
            .refresh(&first)
            .await
            .unwrap_err()
            .requires_reauthorization()
    );
    client.refresh(&second).await.unwrap();
}

#[tokio::test]
async fn each_injected_fault_gives_the_right_error() {
    let emu = emulator(auto_approving()).await;
    let client = demo_builder(&emu)
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let token = login(&client, scopes![basicProfile]).await;
    let refresh_token = token.refresh_token().unwrap().clone();

    emu.inject_faults([Fault::Status(503)]);
    let err = client.refresh(&refresh_token).await.unwrap_err();
    assert!(
        matches!(err, Error::Api { status: 503, .. }) && err.is_transient(),
        "{err}"
    );

    emu.inject_faults([Fault::Status(500)]);
    assert!(
        client
            .refresh(&refresh_token)
            .await
            .unwrap_err()
            .is_transient()
    );

    emu.inject_faults([Fault::TooManyRequests {
        retry_after: Duration::from_secs(3),
    }]);
    let err = client.refresh(&refresh_token).await.unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_secs(3)), "{err}");
    assert!(err.is_transient());

    emu.inject_faults([Fault::DropConnection]);
    let err = client.refresh(&refresh_token).await.unwrap_err();
    assert!(
        matches!(err, Error::Transport { .. }) && err.is_transient(),
        "{err}"
    );
    // It names the host it could not reach, and keeps the cause.
    assert!(
        err.to_string().starts_with("could not reach 127.0.0.1:"),
        "{err}"
    );
    assert!(std::error::Error::source(&err).is_some());

    emu.inject_faults([Fault::Delay(Duration::from_secs(2))]);
    let err = client.refresh(&refresh_token).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Transport {
                kind: TransportKind::Timeout,
                ..
            }
        ),
        "{err}"
    );

    // An HTML page at 201 (not a documented status) and at 200 (documented).
    emu.inject_faults([Fault::html_page(201)]);
    let err = client.refresh(&refresh_token).await.unwrap_err();
    match &err {
        Error::UnexpectedResponse {
            status,
            content_type,
            body_start,
            ..
        } => {
            assert_eq!(*status, 201);
            assert!(content_type.as_deref().unwrap().starts_with("text/html"));
            assert!(body_start.contains("Bad Gateway"));
        }
        other => panic!("{other:?}"),
    }
    emu.inject_faults([Fault::html_page(502)]);
    let err = client.refresh(&refresh_token).await.unwrap_err();
    assert!(matches!(err, Error::UnexpectedResponse { status: 502, .. }) && err.is_transient());
    emu.inject_faults([Fault::html_page(200)]);
    assert!(matches!(
        client.refresh(&refresh_token).await,
        Err(Error::UnexpectedResponse { status: 200, .. })
    ));

    for fault in [
        Fault::malformed_json(201),
        Fault::malformed_json(200),
        Fault::empty_body(201),
        Fault::empty_body(200),
        Fault::missing_access_token(201),
        Fault::missing_access_token(200),
    ] {
        emu.inject_faults([fault.clone()]);
        let err = client.refresh(&refresh_token).await.unwrap_err();
        assert!(matches!(err, Error::MalformedBody(_)), "{fault:?}: {err}");
    }

    // A 401 is a refused grant whatever its body, even one too large to read.
    emu.inject_faults([Fault::huge_body(401, 10 * 1024 * 1024)]);
    let err = client.refresh(&refresh_token).await.unwrap_err();
    assert!(
        matches!(err, Error::InvalidGrant { status: 401, .. }),
        "{err}"
    );
    for status in [200, 201] {
        emu.inject_faults([Fault::huge_body(status, 10 * 1024 * 1024)]);
        let err = client.refresh(&refresh_token).await.unwrap_err();
        assert!(
            matches!(err, Error::ResponseTooLarge { limit: 1_048_576 }),
            "{status}: {err}"
        );
    }
    // An oversized error page keeps its status, so a 5xx is still transient.
    emu.inject_faults([Fault::huge_body(503, 2 * 1024 * 1024)]);
    let err = client.refresh(&refresh_token).await.unwrap_err();
    assert!(
        matches!(err, Error::UnexpectedResponse { status: 503, .. }) && err.is_transient(),
        "{err}"
    );

    // After every fault the client still works.
    client.refresh(&refresh_token).await.unwrap();
}

#[tokio::test]
async fn token_endpoint_redirects_are_not_followed() {
    let emu = emulator(auto_approving()).await;
    let elsewhere = emulator(auto_approving()).await;
    let client = demo_client(&emu);
    let token = login(&client, scopes![basicProfile]).await;
    emu.inject_faults([Fault::Redirect {
        location: format!("{}/tokens/refresh", elsewhere.api_server()),
    }]);
    let err = client
        .refresh(token.refresh_token().unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::UnexpectedResponse { status: 302, .. }),
        "{err}"
    );
    assert_eq!(elsewhere.total_token_requests(), 0);
}

#[tokio::test]
async fn unknown_scopes_in_a_token_response_are_kept() {
    let emu = emulator(auto_approving()).await;
    let client = demo_client(&emu);
    let token = login(&client, scopes![basicProfile]).await;
    for status in [200, 201] {
        emu.inject_faults([Fault::Respond {
            status,
            content_type: "application/json".into(),
            body: br#"{"token_type":"Bearer","access_token":"abc","scope":["basicProfile","commentOnPosts"],"expires_at":1449441560773}"#.to_vec(),
        }]);
        let refreshed = client
            .refresh(token.refresh_token().unwrap())
            .await
            .unwrap();
        assert_eq!(refreshed.scopes().known, scopes![basicProfile]);
        assert_eq!(refreshed.scopes().unknown, ["commentOnPosts"]);
    }
}

#[tokio::test]
async fn fewer_scopes_than_requested() {
    let emu = emulator(auto_approving()).await;
    let client = demo_client(&emu);
    let token = login(&client, scopes![basicProfile]).await;
    emu.inject_faults([Fault::Respond {
        status: 201,
        content_type: "application/json".into(),
        body: br#"{"access_token":"abc","scope":["basicProfile"]}"#.to_vec(),
    }]);
    let refreshed = client
        .refresh(token.refresh_token().unwrap())
        .await
        .unwrap();
    let requested = scopes![basicProfile, publishPost];
    assert_eq!(
        refreshed.scopes().missing_from(requested),
        scopes![publishPost]
    );
    assert_eq!(refreshed.expires_at(), None);
}

#[tokio::test]
async fn insecure_servers_are_refused() {
    let err = medium_oauth::OAuthClient::builder(
        medium_oauth::ClientId::new("id"),
        medium_oauth::ClientSecret::new("s"),
        REDIRECT,
    )
    .api_server("http://api.medium.com/v1")
    .build()
    .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidConfig {
                field: "api_server",
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn only_a_2xx_body_becomes_a_token() {
    // Defect 5: a 401 whose body parsed as a token was taken as a login, so
    // an attacker-chosen access token was saved.
    let emu = emulator(auto_approving()).await;
    let client = demo_client(&emu);
    let token_body = br#"{"token_type":"Bearer","access_token":"attacker-chosen","refresh_token":"r","scope":["basicProfile"],"expires_at":99999999999999}"#;
    for (status, content_type, body) in [
        (401, "application/json", &token_body[..]),
        (
            401,
            "text/html",
            &b"<html><body>Unauthorized</body></html>"[..],
        ),
        (401, "", &b""[..]),
    ] {
        let fault = Fault::Respond {
            status,
            content_type: content_type.into(),
            body: body.to_vec(),
        };
        let (url, pending) = client.authorize_url(scopes![basicProfile]).unwrap();
        let callback = approve(&url).await;
        emu.inject_faults([fault.clone()]);
        let err = client.complete(&pending, &callback).await.unwrap_err();
        assert!(
            matches!(err, Error::InvalidGrant { status: 401, .. }),
            "{content_type}: {err}"
        );
        emu.inject_faults([fault]);
        let err = client
            .refresh(&medium_oauth::RefreshToken::new("r"))
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::InvalidGrant { status: 401, .. }),
            "{content_type}: {err}"
        );
    }
    // Any other non-2xx status with a token body is an error typed by it.
    for status in [400, 403, 500] {
        emu.inject_faults([Fault::Respond {
            status,
            content_type: "application/json".into(),
            body: token_body.to_vec(),
        }]);
        let err = client
            .refresh(&medium_oauth::RefreshToken::new("r"))
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::UnexpectedResponse { status: s, .. } if s == status),
            "{status}: {err}"
        );
    }
}

#[tokio::test]
async fn one_stray_404_does_not_switch_refresh_forms_for_good() {
    let emu = emulator(Config {
        refresh_endpoints: medium_oauth_emulator::RefreshEndpoints::Spec,
        ..auto_approving()
    })
    .await;
    let client = demo_client(&emu);
    let token = login(&client, scopes![basicProfile]).await;
    let refresh_token = token.refresh_token().unwrap();
    emu.inject_faults([Fault::Status(404)]);
    // The live form is tried, and refused by a spec-only server.
    assert!(client.refresh(refresh_token).await.is_err());
    // The spec's form is tried first again, and works.
    client.refresh(refresh_token).await.unwrap();
    client.refresh(refresh_token).await.unwrap();
    assert_eq!(emu.refreshes(), 2);
}

#[tokio::test]
async fn an_error_body_with_thousands_of_items_makes_a_short_error() {
    let emu = emulator(auto_approving()).await;
    let client = demo_client(&emu);
    let item = r#"{"message":"Something went wrong.","code":503}"#;
    let body = format!(r#"{{"errors":[{}]}}"#, vec![item; 20_000].join(","));
    emu.inject_faults([Fault::Respond {
        status: 503,
        content_type: "application/json".into(),
        body: body.into_bytes(),
    }]);
    let err = client
        .refresh(&medium_oauth::RefreshToken::new("r"))
        .await
        .unwrap_err();
    let Error::Api { errors, .. } = &err else {
        panic!("{err}");
    };
    assert_eq!(errors.len(), 8);
    assert!(
        err.to_string().len() < 2048,
        "{} bytes",
        err.to_string().len()
    );
}

/// HTTPS through the client's own TLS set-up (the crate's crypto provider
/// feature, no process default): against a port that answers in plain HTTP
/// the handshake fails, and that is a typed connect error, not a panic.
#[tokio::test]
async fn https_to_a_plain_http_port_is_a_typed_connect_error() {
    use tokio::io::AsyncWriteExt;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let _ = socket
            .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
            .await;
    });
    let client = medium_oauth::OAuthClient::builder(
        medium_oauth::ClientId::new("demo-client"),
        medium_oauth::ClientSecret::new(DEMO_CLIENT_SECRET),
        REDIRECT,
    )
    .api_server(format!("https://127.0.0.1:{port}/v1"))
    .build()
    .unwrap();
    let err = client
        .refresh(&medium_oauth::RefreshToken::new("r"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Transport {
                kind: TransportKind::Connect,
                ..
            }
        ),
        "{err:?}"
    );
    server.await.unwrap();
}
