//! The command-line tool end to end, over loopback, with `--no-browser`.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use medium_oauth_emulator::{Config, Endpoint, Grant, RefreshEndpoints};

fn auto(refresh_endpoints: RefreshEndpoints) -> Config {
    Config {
        rotate_refresh_tokens: true,
        refresh_endpoints,
        ..auto_approving()
    }
}

async fn login_then_manage(endpoints: RefreshEndpoints) {
    let emu = emulator(auto(endpoints)).await;
    let cli = Cli::new(&emu);
    let (child, stdout, url) = cli.start_login(&["--scopes", "basicProfile,publishPost"]);
    // Play the browser: the emulator approves and redirects to the CLI.
    let page = browse(&url).await;
    assert_eq!(page.status(), 200);
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("You can close this tab")
    );
    let (code, out, err) = finish(child, stdout);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("Logged in as Demo User (@demo)"), "{out}");
    assert!(out.contains("Scopes: basicProfile,publishPost"), "{out}");
    assert!(
        out.contains(&format!("Saved to {}", cli.credentials.display())),
        "{out}"
    );
    assert!(out.contains("Token expires: "), "{out}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&cli.credentials)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let saved = stored(&cli.credentials);
    let access = saved["token"]["access_token"].as_str().unwrap().to_owned();
    let refresh = saved["token"]["refresh_token"].as_str().unwrap().to_owned();

    let token = cli.run(&["token"]);
    assert!(token.status.success());
    assert_eq!(
        text(&token.stdout),
        format!("{access}\n"),
        "the token alone"
    );
    assert_eq!(emu.refreshes(), 0);

    let forced = cli.run(&["token", "--force-refresh"]);
    assert!(forced.status.success(), "{}", text(&forced.stderr));
    let new_access = text(&forced.stdout).trim().to_owned();
    assert_ne!(new_access, access);
    assert_eq!(emu.refreshes(), 1);
    let endpoint = match endpoints {
        RefreshEndpoints::Live => Endpoint::Tokens,
        _ => Endpoint::TokensRefresh,
    };
    assert_eq!(emu.token_requests(endpoint, Grant::RefreshToken), 1);
    let saved = stored(&cli.credentials);
    assert_eq!(saved["token"]["access_token"], new_access.as_str());
    assert_ne!(
        saved["token"]["refresh_token"],
        refresh.as_str(),
        "rotation persisted"
    );
    assert_eq!(
        saved["user"]["username"], "demo",
        "other fields kept across saves"
    );

    let json = cli.run(&["token", "--json"]);
    let record: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(record["access_token"], new_access.as_str());

    let status = cli.run(&["status"]);
    assert!(status.status.success());
    let shown = text(&status.stdout);
    assert!(shown.contains("Logged in as Demo User (@demo)"), "{shown}");
    assert!(shown.contains("Scopes: basicProfile,publishPost"));
    assert!(shown.contains(&cli.credentials.display().to_string()));
    for secret in [&new_access, &access, &refresh] {
        assert!(!shown.contains(secret.as_str()), "status printed a secret");
    }
    let secret = saved["token"]["refresh_token"].as_str().unwrap();
    assert!(!shown.contains(secret));

    let logout = cli.run(&["logout"]);
    assert!(logout.status.success());
    assert!(!cli.credentials.exists());
    let after = cli.run(&["status"]);
    assert_eq!(after.status.code(), Some(7));
    assert!(text(&after.stderr).contains("not logged in"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_token_status_logout() {
    login_then_manage(RefreshEndpoints::Both).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn against_a_live_refresh_form_only_emulator() {
    login_then_manage(RefreshEndpoints::Live).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn against_a_spec_refresh_form_only_emulator() {
    login_then_manage(RefreshEndpoints::Spec).await;
}

/// Logs `cli` in against `emu` (auto-approving) and returns the stored
/// document.
async fn log_in(cli: &Cli) -> serde_json::Value {
    let (child, stdout, url) = cli.start_login(&[]);
    assert_eq!(browse(&url).await.status(), 200);
    let (code, out, err) = finish(child, stdout);
    assert_eq!(code, 0, "{out}\n{err}");
    stored(&cli.credentials)
}

/// Rewrites the stored token's expiry to `ago` before now by the wall clock
/// (the one the CLI judges by), keeping every other field and the store's
/// pretty-printed JSON. Returns the stored access token.
fn expire_stored_token(cli: &Cli, ago: Duration) -> String {
    let mut doc = stored(&cli.credentials);
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    assert!(doc["token"]["expires_at_ms"].is_i64(), "{doc}");
    doc["token"]["expires_at_ms"] = (now_ms - ago.as_millis() as i64).into();
    // Written in place, so the file keeps its 0600 mode.
    std::fs::write(&cli.credentials, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    doc["token"]["access_token"].as_str().unwrap().to_owned()
}

/// Regression: `token` over a file whose token had expired a minute ago
/// printed the expired token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_refreshes_a_credentials_file_whose_token_expired_a_minute_ago() {
    let emu = emulator(auto(RefreshEndpoints::Both)).await;
    let cli = Cli::new(&emu);
    log_in(&cli).await;
    let expired = expire_stored_token(&cli, Duration::from_secs(60));
    assert_eq!(emu.refreshes(), 0);

    // `Cli::command` passes the client id and secret a refresh needs.
    let out = cli.run(&["token"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let printed = text(&out.stdout).trim_end().to_owned();
    assert!(!printed.is_empty());
    assert_ne!(printed, expired, "printed the expired token");
    assert_eq!(emu.refreshes(), 1);

    let saved = stored(&cli.credentials);
    assert_eq!(saved["token"]["access_token"], printed.as_str());
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    assert!(saved["token"]["expires_at_ms"].as_i64().unwrap() > now_ms);
    assert_eq!(saved["user"]["username"], "demo", "other fields kept");

    // The new token is used as is: no second refresh.
    let again = cli.run(&["token"]);
    assert_eq!(text(&again.stdout).trim_end(), printed);
    assert_eq!(emu.refreshes(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_network_failure_names_its_cause() {
    let emu = emulator(auto(RefreshEndpoints::Both)).await;
    let cli = Cli::new(&emu);
    log_in(&cli).await;
    expire_stored_token(&cli, Duration::from_secs(60));
    let before = std::fs::read(&cli.credentials).unwrap();
    // A loopback port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let api = format!("http://127.0.0.1:{closed}");

    let out = cli.run(&["token", "--api-url", &api]);
    assert_eq!(out.status.code(), Some(6), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty(), "no expired token printed");
    let err = text(&out.stderr);
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    let ours = "error: could not reach 127.0.0.1: no connection could be made";
    let cause = err
        .trim_end()
        .strip_prefix(ours)
        .unwrap_or_else(|| panic!("{err}"));
    // What the HTTP stack and the OS said follows.
    assert!(
        cause.starts_with(": ") && cause.len() > 2,
        "no cause: {err}"
    );
    #[cfg(target_os = "linux")]
    assert!(cause.contains("Connection refused"), "{err}");
    assert_eq!(emu.refreshes(), 0);
    assert_eq!(
        std::fs::read(&cli.credentials).unwrap(),
        before,
        "file kept"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_state_is_rejected_and_the_real_callback_still_works() {
    let emu = emulator(auto(RefreshEndpoints::Both)).await;
    let cli = Cli::new(&emu);
    let (child, stdout, url) = cli.start_login(&[]);
    let redirect_uri = query_param(&url, "redirect_uri");
    let forged = get(format!("{redirect_uri}?code=stolen&state=forged"))
        .await
        .unwrap();
    assert_eq!(forged.status(), 400);
    assert!(
        !cli.credentials.exists(),
        "nothing is saved for a forged callback"
    );
    let real = browse(&url).await;
    assert_eq!(real.status(), 200);
    let (code, out, err) = finish(child, stdout);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        err.contains("rejected a callback with a wrong or missing state"),
        "{err}"
    );
    assert!(cli.credentials.exists());
    assert_eq!(emu.exchanges(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_wrong_states_until_the_timeout_is_a_state_mismatch() {
    let emu = emulator(auto(RefreshEndpoints::Both)).await;
    let cli = Cli::new(&emu);
    let (child, stdout, url) = cli.start_login(&["--timeout", "2"]);
    let redirect_uri = query_param(&url, "redirect_uri");
    get(format!("{redirect_uri}?code=x&state=y")).await.unwrap();
    let (code, _, err) = finish(child, stdout);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("wrong or missing state"), "{err}");
    assert!(!cli.credentials.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_denied_is_its_own_exit_code() {
    let emu = emulator(auto(RefreshEndpoints::Both)).await;
    let cli = Cli::new(&emu);
    let (child, stdout, url) = cli.start_login(&[]);
    let redirect_uri = query_param(&url, "redirect_uri");
    let state = query_param(&url, "state");
    let denied = get(format!("{redirect_uri}?error=access_denied&state={state}"))
        .await
        .unwrap();
    assert_eq!(denied.status(), 400);
    let (code, _, err) = finish(child, stdout);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("access_denied"), "{err}");
    assert!(!cli.credentials.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timing_out_is_a_network_failure() {
    let emu = emulator(auto(RefreshEndpoints::Both)).await;
    let cli = Cli::new(&emu);
    let (child, stdout, _) = cli.start_login(&["--timeout", "1"]);
    let (code, _, err) = finish(child, stdout);
    assert_eq!(code, 6, "{err}");
    assert!(err.contains("timed out after 1s"), "{err}");
}

// Multi-threaded: the emulator must answer the probe while this thread
// waits for the command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_in_use_is_a_clear_error() {
    let emu = emulator(auto(RefreshEndpoints::Both)).await;
    let cli = Cli::new(&emu);
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = cli.run(&[
        "login",
        "--no-browser",
        "--redirect-port",
        &port,
        "--api-url",
        &cli.api_url,
        "--authorize-url",
        &cli.authorize_url,
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "one line: {err}");
}

#[tokio::test]
async fn unreadable_credentials_are_reported_and_kept() {
    let emu = emulator(auto(RefreshEndpoints::Both)).await;
    let cli = Cli::new(&emu);
    std::fs::create_dir_all(cli.credentials.parent().unwrap()).unwrap();
    std::fs::write(&cli.credentials, b"{ torn").unwrap();
    for args in [
        &["status"][..],
        &["token"][..],
        &[
            "login",
            "--no-browser",
            "--api-url",
            &cli.api_url,
            "--authorize-url",
            &cli.authorize_url,
        ][..],
    ] {
        let out = cli.run(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = text(&out.stderr);
        assert!(
            err.contains(&cli.credentials.display().to_string()),
            "{err}"
        );
        assert!(err.contains("corrupt"), "{err}");
        assert!(out.stdout.is_empty(), "{args:?} must not print a URL");
    }
    assert_eq!(std::fs::read(&cli.credentials).unwrap(), b"{ torn");
}

#[tokio::test]
async fn missing_client_credentials_are_a_usage_error() {
    let emu = emulator(auto(RefreshEndpoints::Both)).await;
    let cli = Cli::new(&emu);
    let out = cli
        .command(&["login", "--no-browser", "--api-url", &cli.api_url])
        .env_remove("MEDIUM_CLIENT_ID")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("missing client id"),
        "{}",
        text(&out.stderr)
    );
    let out = cli
        .command(&["login", "--no-browser"])
        .env_remove("MEDIUM_CLIENT_SECRET")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("missing client secret"));
    let out = cli.run(&["login", "--scopes", "readMinds"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("readMinds"));
}

#[test]
fn login_with_the_in_process_emulator() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_medium-oauth"))
        .args(["login", "--emulator", "--no-browser", "--credentials"])
        .arg(dir.path().join("credentials.json"))
        .env_remove("MEDIUM_CLIENT_ID")
        .env_remove("MEDIUM_CLIENT_SECRET")
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("auto-approving"));
    assert!(
        stdout.contains("Logged in as Demo User (@demo)"),
        "{stdout}"
    );
}

#[test]
fn the_emulator_command_serves_until_killed() {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_medium-oauth"))
        .args([
            "emulator",
            "--listen",
            "127.0.0.1:0",
            "--refresh-endpoints",
            "live",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("listening on http://127.0.0.1:"), "{line}");
    let base = line.trim().trim_start_matches("listening on ");
    assert_eq!(status_of(&format!("{base}/v1/me")), 401);
    child.kill().unwrap();
    child.wait().unwrap();
}

/// The status of a GET from a plain thread (this test has no runtime).
fn status_of(url: &str) -> u16 {
    let url = url.to_owned();
    std::thread::spawn(move || {
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(async { get(url).await.unwrap().status().as_u16() })
    })
    .join()
    .unwrap()
}

#[test]
fn help_documents_the_exit_codes() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_medium-oauth"))
        .arg("--help")
        .output()
        .unwrap();
    let help = text(&out.stdout);
    for line in [
        "3    the user denied",
        "4    the callback's state",
        "7    re-authorization",
    ] {
        assert!(help.contains(line), "{help}");
    }
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_while_waiting_exits_cleanly() {
    let emu = emulator(auto(RefreshEndpoints::Both)).await;
    let cli = Cli::new(&emu);
    let (child, stdout, _) = cli.start_login(&[]);
    // SIGINT is what Ctrl-C sends.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let (code, _, err) = finish(child, stdout);
    assert_eq!(code, 130, "{err}");
    assert_eq!(
        err.trim_end().lines().last(),
        Some("error: cancelled"),
        "{err}"
    );
    assert!(!cli.credentials.exists());
}
