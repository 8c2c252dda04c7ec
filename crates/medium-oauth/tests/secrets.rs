//! No secret of a flow ever shows in `Debug`, `Display`, an error or a log.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use medium_oauth::{ClientId, ClientSecret, Error, OAuthClient, Scope, scopes};
use medium_oauth_emulator::{ClientApp, Config, Fault, RedirectRule};

const CLIENT_SECRET: &str = "client-secret-7f3a9c2e1b";

/// Captures every log line of the test.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

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
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

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
    let callback = browse(&url).await;
    let code = param(&callback, "code");
    let (_, other_pending) = client.authorize_url(scopes![basicProfile]).unwrap();
    shown.push(format!("{pending:?} {other_pending:?}"));

    // Every callback error, with the real state and code in play.
    let callback_errors = [
        pending.verify(&format!("?error=access_denied&state={state}")),
        pending.verify(&format!("?code={code}&state=x{state}")),
        pending.verify(&format!("?state={state}")),
        pending.verify("no callback here"),
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

    let logged = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
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
