//! Several OS processes sharing one credentials file refresh once.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use medium_oauth::{
    ClientId, ClientSecret, FileTokenStore, OAuthClient, Token, TokenStore, scopes,
};
use medium_oauth_emulator::{Config, Emulator, Endpoint, Grant};

const PROCESSES: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_sharing_a_file_refresh_once_at_expiry() {
    let emu = Emulator::start(
        Config {
            auto_approve: true,
            rotate_refresh_tokens: true,
            ..Config::default()
        },
        "127.0.0.1:0",
    )
    .await
    .unwrap();
    let client = OAuthClient::builder(
        ClientId::new("demo-client"),
        ClientSecret::new("demo-secret"),
        "http://127.0.0.1:9/callback",
    )
    .authorization_server(emu.authorization_server())
    .api_server(emu.api_server())
    .build()
    .unwrap();
    let (url, pending) = client.authorize_url(scopes![basicProfile]).unwrap();
    let browser = medium_oauth::tls::client_builder()
        .unwrap()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let callback = browser.get(url.as_str()).send().await.unwrap().headers()["location"]
        .to_str()
        .unwrap()
        .to_owned();
    let token = client.complete(&pending, &callback).await.unwrap();
    // Stored as already expired: every process must refresh before use.
    let expired = Token::new(
        token.access_token().clone(),
        token.refresh_token().cloned(),
        Some(SystemTime::now() - Duration::from_secs(1)),
        token.scopes().clone(),
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("credentials.json");
    let store = Arc::new(FileTokenStore::new(&path));
    store.save(&expired).await.unwrap();

    let children: Vec<_> = (0..PROCESSES)
        .map(|_| {
            Command::new(env!("CARGO_BIN_EXE_e2e-token-child"))
                .arg(emu.api_server())
                .arg(&path)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    // Each child says when its source is built; then all are released
    // together, and each prints its token.
    let outputs: Vec<_> = tokio::task::spawn_blocking(move || {
        let mut started: Vec<_> = children
            .into_iter()
            .map(|mut child| {
                let mut stdout = BufReader::new(child.stdout.take().unwrap());
                let mut ready = String::new();
                stdout.read_line(&mut ready).unwrap();
                assert_eq!(ready.trim(), "ready");
                (child, stdout)
            })
            .collect();
        for (child, _) in &mut started {
            child.stdin.take().unwrap().write_all(b"go\n").unwrap();
        }
        started
            .into_iter()
            .map(|(mut child, mut stdout)| {
                let mut printed = String::new();
                stdout.read_to_string(&mut printed).unwrap();
                (child.wait().unwrap(), printed)
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    let printed: Vec<String> = outputs.iter().map(|(_, o)| o.trim().to_owned()).collect();
    for ((status, _), text) in outputs.iter().zip(&printed) {
        assert!(status.success(), "a process failed: {text}");
    }
    assert!(printed.iter().all(|t| t == &printed[0]), "{printed:?}");
    assert_ne!(printed[0], token.access_token().expose_secret());
    let refreshes = emu.token_requests(Endpoint::Tokens, Grant::RefreshToken)
        + emu.token_requests(Endpoint::TokensRefresh, Grant::RefreshToken);
    assert_eq!(
        refreshes, 1,
        "exactly one refresh request for {PROCESSES} processes"
    );
    let saved = store.load().await.unwrap().unwrap();
    assert_eq!(saved.access_token().expose_secret(), printed[0]);
}
