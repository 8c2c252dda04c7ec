//! Several OS processes sharing one credentials file refresh once.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use medium_oauth::{FileTokenStore, Token, TokenStore, scopes};
use medium_oauth_emulator::{Config, Endpoint, Grant};
use medium_oauth_test_support::{auto_approving, demo_client, emulator, login};

const PROCESSES: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_sharing_a_file_refresh_once_at_expiry() {
    let emu = emulator(Config {
        rotate_refresh_tokens: true,
        ..auto_approving()
    })
    .await;
    let client = demo_client(&emu);
    let token = login(&client, scopes![basicProfile]).await;
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
    store.save_blocking(&expired).unwrap();

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
