//! `medium-oauth token` run by many processes at once over one credentials
//! file (issue 22): a token that is due or expired is refreshed by one of
//! them, and the others take the token it saved. The library's
//! multi-process test runs a child program of its own, so only a test of
//! the binary sees what the CLI does around the library.

mod common;

use std::sync::{Arc, Barrier};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use medium_oauth_emulator::{Config, Endpoint, Grant};

/// Processes started together: enough that, refreshing a token merely due
/// as if forced, the issue saw three refreshes.
const PROCESSES: usize = 8;

/// Longest a process may take. A refresh over loopback takes milliseconds
/// and the processes wait for each other's lock in turn, so only a hang (a
/// lock never released) comes near this.
const DEADLINE: Duration = Duration::from_secs(60);

/// Rotation with replay detection: a refresh token used twice would revoke
/// the grant, so a second refresh cannot go unnoticed as a harmless one.
fn rotating() -> Config {
    Config {
        rotate_refresh_tokens: true,
        detect_refresh_replay: true,
        ..auto_approving()
    }
}

async fn log_in(cli: &Cli) {
    let (child, stdout, url) = cli.start_login(&[]);
    assert_eq!(browse(&url).await.status(), 200);
    let ((code, out, err), _) = finish_async(child, stdout).await;
    assert_eq!(code, 0, "{out}\n{err}");
}

fn ms_since_epoch(at: SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

/// Rewrites the stored token's expiry to `at` and returns the stored
/// access token. Written in place, so the file keeps its 0600 mode.
fn set_expiry(cli: &Cli, at: SystemTime) -> String {
    let mut doc = stored(&cli.credentials);
    assert!(doc["token"]["expires_at_ms"].is_i64(), "{doc}");
    doc["token"]["expires_at_ms"] = ms_since_epoch(at).into();
    std::fs::write(&cli.credentials, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    doc["token"]["access_token"].as_str().unwrap().to_owned()
}

/// Refresh requests the emulator received on either endpoint, whatever it
/// answered: a refused one counts too.
fn refresh_requests(emu: &Emulator) -> u64 {
    emu.token_requests(Endpoint::Tokens, Grant::RefreshToken)
        + emu.token_requests(Endpoint::TokensRefresh, Grant::RefreshToken)
}

/// Starts [`PROCESSES`] `token` processes at once and returns what each
/// printed, once all have exited 0.
async fn tokens_printed_together(cli: &Cli) -> Vec<String> {
    // Every thread spawns its process only once all are ready, so the
    // processes start as close together as the machine allows.
    let ready = Arc::new(Barrier::new(PROCESSES));
    let runs: Vec<_> = (0..PROCESSES)
        .map(|_| {
            let command = cli.command(&["token"]);
            let ready = ready.clone();
            // Blocking threads: the emulator keeps serving on the runtime.
            tokio::task::spawn_blocking(move || {
                ready.wait();
                output_within(command, DEADLINE)
            })
        })
        .collect();
    let mut printed = Vec::new();
    for run in runs {
        let out = run.await.unwrap();
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{err}");
        assert!(err.is_empty(), "no warning: {err}");
        printed.push(text(&out.stdout).trim_end().to_owned());
    }
    printed
}

/// Runs the processes over a login whose token expires at `expiry`, and
/// checks that one refresh was made and its token printed by all.
async fn one_refresh_for_all(expiry: impl FnOnce() -> SystemTime) {
    let emu = emulator(rotating()).await;
    let cli = Cli::new(&emu);
    log_in(&cli).await;
    let old = set_expiry(&cli, expiry());
    assert_eq!(refresh_requests(&emu), 0);

    let printed = tokens_printed_together(&cli).await;

    let requests = refresh_requests(&emu);
    assert_eq!(requests, 1, "refresh requests; tokens printed: {printed:?}");
    assert_eq!(emu.refreshes(), 1, "the one request succeeded");
    let saved = stored(&cli.credentials);
    let new = saved["token"]["access_token"].as_str().unwrap();
    assert_ne!(new, old, "the token was refreshed");
    assert!(
        printed.iter().all(|token| token == new),
        "printed {printed:?}, saved {new}"
    );
}

/// Regression (issue 22): 8 processes over an expired token sent 3 refresh
/// requests and printed 3 different tokens, since a process whose source
/// loaded the token another had just saved refreshed it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_processes_started_together_refresh_an_expired_token_once() {
    one_refresh_for_all(|| SystemTime::now() - Duration::from_secs(60)).await;
}

/// The same for a token still valid but within the day before expiry in
/// which `token` refreshes: due is not forced either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_processes_started_together_refresh_a_due_token_once() {
    one_refresh_for_all(|| SystemTime::now() + Duration::from_secs(12 * 60 * 60)).await;
}
