//! No secret of a flow ever shows in `Debug`, `Display`, an error or a log.

mod common;

use std::time::Duration;

use common::*;
use medium_oauth::{ClientId, ClientSecret, Error, OAuthClient, Scope, scopes};
use medium_oauth_emulator::{ClientApp, Config, Fault, RedirectRule};

const CLIENT_SECRET: &str = "client-secret-7f3a9c2e1b";

fn param(url: &str, name: &str) -> String {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .unwrap()
}

#[tokio::test(flavor = "current_thread")]
async fn no_secret_in_debug_display_errors_or_logs() {
    let logs = CapturedLogs::start(tracing::Level::TRACE);

    let emu = emulator(Config {
        auto_approve: true,
        rotate_refresh_tokens: true,
        refresh_endpoints: medium_oauth_emulator::RefreshEndpoints::Live,
        clients: vec![ClientApp {
            name: "Secretive".into(),
            id: "secretive".into(),
            secret: CLIENT_SECRET.into(),
            redirect: RedirectRule::AnyLoopback,
            extended_scope_approved: false,
        }],
        ..Config::default()
    })
    .await;
    let builder = OAuthClient::builder(
        ClientId::new("secretive"),
        ClientSecret::new(CLIENT_SECRET),
        REDIRECT,
    )
    .authorization_server(emu.authorization_server())
    .api_server(emu.api_server())
    .timeout(Duration::from_millis(300));
    let mut shown: Vec<String> = vec![format!("{builder:?}")];
    let client = builder.build().unwrap();

    let (url, pending) = client.authorize_url(scopes![basicProfile]).unwrap();
    let state = param(url.as_str(), "state");
    let callback = approve(&url).await;
    let code = param(&callback, "code");
    let (_, other_pending) = client.authorize_url(scopes![basicProfile]).unwrap();
    shown.push(format!("{pending:?} {other_pending:?}"));

    // Every callback error, with the real state and code in play.
    let callback_errors = [
        pending.verify(&format!("?error=access_denied&state={state}")),
        pending.verify(&format!("?code={code}&state=x{state}")),
        pending.verify(&format!("?state={state}")),
        // Without a query it is a mismatch; only a broken URL is invalid.
        pending.verify("http://[::1/callback"),
        other_pending.verify(&callback),
    ];
    let mut errors: Vec<Error> = callback_errors
        .into_iter()
        .map(|r| r.unwrap_err())
        .collect();
    let verified = pending.verify(&callback).unwrap();
    shown.push(format!("{verified:?}"));
    errors.push(pending.verify(&callback).unwrap_err());

    let token = client.exchange_code(verified).await.unwrap();
    let access = token.access_token().expose_secret().to_owned();
    let first_refresh = token.refresh_token().unwrap().expose_secret().to_owned();
    let rotated = client
        .refresh(token.refresh_token().unwrap())
        .await
        .unwrap();
    let rotated_access = rotated.access_token().expose_secret().to_owned();
    let rotated_refresh = rotated.refresh_token().unwrap().expose_secret().to_owned();
    shown.push(format!(
        "{client:?} {token:?} {rotated:?} {:?}",
        token.scopes()
    ));
    shown.push(format!("{:#?}", rotated));

    // Every error of the token endpoint. Servers that echo the request are
    // the dangerous case: their bodies are quoted only after redaction.
    let refresh_token = rotated.refresh_token().unwrap();
    errors.push(
        client
            .refresh(token.refresh_token().unwrap())
            .await
            .unwrap_err(),
    ); // revoked
    let echo = format!(
        "<html>you sent refresh_token={rotated_refresh}&client_secret={CLIENT_SECRET} \
         and earlier {first_refresh} {access} {code} {state}</html>"
    );
    for fault in [
        Fault::Status(503),
        Fault::DropConnection,
        Fault::Delay(Duration::from_secs(1)),
        Fault::Respond {
            status: 400,
            content_type: "text/html".into(),
            body: echo.clone().into_bytes(),
        },
        Fault::Respond {
            status: 201,
            content_type: "application/json".into(),
            body: format!("{{\"access_token\":[\"{rotated_refresh}\"],\"x\":\"{CLIENT_SECRET}\"}}")
                .into_bytes(),
        },
        Fault::Respond {
            status: 201,
            content_type: "text/plain".into(),
            body: echo.into_bytes(),
        },
        Fault::huge_body(201, 2 * 1024 * 1024),
    ] {
        emu.inject_faults([fault]);
        errors.push(client.refresh(refresh_token).await.unwrap_err());
    }
    errors.push(rotated.scopes().require(Scope::UploadImage).unwrap_err());
    errors.push(
        OAuthClient::builder(
            ClientId::new("x"),
            ClientSecret::new(CLIENT_SECRET),
            format!("http://example.com/cb?{CLIENT_SECRET}"),
        )
        .build()
        .unwrap_err(),
    );
    // The plain-http check quotes the URL it refuses; a secret in a URL is
    // the caller's own, so check the others only.
    let config_error = errors.pop().unwrap();
    assert!(matches!(config_error, Error::InvalidConfig { .. }));

    let kinds: std::collections::BTreeSet<String> = errors
        .iter()
        .map(|e| {
            format!("{e:?}")
                .split([' ', '(', '{'])
                .next()
                .unwrap()
                .to_owned()
        })
        .collect();
    for kind in [
        "Denied",
        "CsrfMismatch",
        "MissingCode",
        "InvalidCallback",
        "AlreadyCompleted",
        "InvalidGrant",
        "Api",
        "Transport",
        "UnexpectedResponse",
        "MalformedBody",
        "ResponseTooLarge",
        "MissingScope",
    ] {
        assert!(kinds.contains(kind), "no {kind} error exercised: {kinds:?}");
    }
    for e in &errors {
        shown.push(format!("{e} / {e:?}"));
    }

    let logged = logs.text();
    assert!(
        logged.contains("live refresh form"),
        "the fallback is logged, so the log capture works: {logged}"
    );
    shown.push(logged);

    let secrets = [
        ("client secret", CLIENT_SECRET),
        ("state", state.as_str()),
        ("code", code.as_str()),
        ("access token", access.as_str()),
        ("refresh token", first_refresh.as_str()),
        ("rotated access token", rotated_access.as_str()),
        ("rotated refresh token", rotated_refresh.as_str()),
    ];
    for text in &shown {
        for (name, secret) in secrets {
            assert!(!text.contains(secret), "the {name} leaked into: {text}");
        }
    }
}

/// A Medium-shaped error body whose message echoes `echo`.
fn echoing_error(status: u16, echo: &str) -> Fault {
    let body = serde_json::json!({
        "errors": [{ "message": format!("Bad request: {echo}"), "code": 6000 }]
    });
    Fault::Respond {
        status,
        content_type: "application/json".into(),
        body: body.to_string().into_bytes(),
    }
}

#[tokio::test(flavor = "current_thread")]
async fn server_text_echoing_the_request_leaks_no_secret() {
    // Defect 4: a token endpoint that echoed the request in its error
    // message put the client secret, the code and the refresh token into
    // Display (and so into the CLI's output and the login page).
    let logs = CapturedLogs::start(tracing::Level::TRACE);

    let emu = emulator(Config {
        auto_approve: true,
        clients: vec![ClientApp {
            name: "Short".into(),
            id: "short".into(),
            // Shorter than the redaction of long runs: only the exact
            // replacement of the request's own secrets can catch it.
            secret: "sh0rt".into(),
            redirect: RedirectRule::AnyLoopback,
            extended_scope_approved: false,
        }],
        ..Config::default()
    })
    .await;
    let client = OAuthClient::builder(ClientId::new("short"), ClientSecret::new("sh0rt"), REDIRECT)
        .authorization_server(emu.authorization_server())
        .api_server(emu.api_server())
        .build()
        .unwrap();
    let mut errors = Vec::new();
    let mut secrets = vec!["sh0rt".to_owned()];

    for status in [400, 401, 500] {
        let (url, pending) = client.authorize_url(scopes![basicProfile]).unwrap();
        let callback = approve(&url).await;
        let (code, state) = (param(&callback, "code"), param(&callback, "state"));
        let echo = format!("client_secret=sh0rt&code={code}&state={state}");
        emu.inject_faults([echoing_error(status, &echo)]);
        errors.push(client.complete(&pending, &callback).await.unwrap_err());
        secrets.extend([code, state]);
    }
    let (url, pending) = client.authorize_url(scopes![basicProfile]).unwrap();
    let callback = approve(&url).await;
    let (code, state) = (param(&callback, "code"), param(&callback, "state"));
    // The authorization server never sees the client secret, so a denial
    // can only echo the callback's own code and state.
    let echo = format!("code={code}&state={state}");
    secrets.extend([code, state.clone()]);
    // A denial whose description echoes the callback.
    errors.push(
        pending
            .verify(&format!(
                "?error=access_denied&error_description={}&state={state}",
                url::form_urlencoded::byte_serialize(echo.as_bytes()).collect::<String>()
            ))
            .unwrap_err(),
    );
    let token = client.complete(&pending, &callback).await.unwrap();
    let refresh = token.refresh_token().unwrap().expose_secret().to_owned();
    let _ = url;
    let echo = format!("client_secret=sh0rt&refresh_token={refresh}");
    for status in [400, 401, 503] {
        emu.inject_faults([echoing_error(status, &echo)]);
        errors.push(
            client
                .refresh(token.refresh_token().unwrap())
                .await
                .unwrap_err(),
        );
    }
    emu.inject_faults([Fault::Respond {
        status: 502,
        content_type: "text/plain".into(),
        body: format!("upstream said: {echo}").into_bytes(),
    }]);
    errors.push(
        client
            .refresh(token.refresh_token().unwrap())
            .await
            .unwrap_err(),
    );

    let mut shown = Vec::new();
    for e in &errors {
        tracing::warn!("failed: {e}");
        shown.push(format!("{e} / {e:?}"));
    }
    shown.push(logs.text());
    // The server's words are kept, only the secrets are gone.
    assert!(shown[0].contains("Bad request"), "{}", shown[0]);
    assert!(shown[0].contains("[redacted]"), "{}", shown[0]);
    assert!(
        matches!(errors[1], Error::InvalidGrant { .. }),
        "{}",
        errors[1]
    );
    secrets.push(refresh);
    for text in &shown {
        for secret in &secrets {
            assert!(
                !text.contains(secret.as_str()),
                "{secret:?} leaked into: {text}"
            );
        }
    }
}

#[test]
fn debug_of_every_secret_type_names_the_type_and_says_redacted() {
    use medium_oauth::{AccessToken, AuthorizationCode, CsrfState, RefreshToken};
    assert_eq!(
        format!("{:?}", ClientSecret::new("x1")),
        "ClientSecret([redacted])"
    );
    assert_eq!(
        format!("{:?}", AuthorizationCode::new("x2")),
        "AuthorizationCode([redacted])"
    );
    assert_eq!(
        format!("{:?}", CsrfState::new("x3")),
        "CsrfState([redacted])"
    );
    assert_eq!(
        format!("{:?}", AccessToken::new("x4")),
        "AccessToken([redacted])"
    );
    assert_eq!(
        format!("{:?}", RefreshToken::new("x5")),
        "RefreshToken([redacted])"
    );
}
