//! What a first-time user meets: emulator logins kept apart, refreshes
//! that need no options, causes named at once, and the features `gh auth`
//! users expect.

mod common;

use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use medium_oauth_emulator::Config;

fn auto() -> Config {
    Config {
        auto_approve: true,
        ..Config::default()
    }
}

async fn log_in(cli: &Cli, extra: &[&str]) -> serde_json::Value {
    let (child, stdout, url) = cli.start_login(extra);
    assert_eq!(get(&url).await.unwrap().status(), 200);
    let ((code, out, err), _) = finish_async(child, stdout).await;
    assert_eq!(code, 0, "{out}\n{err}");
    stored(&cli.credentials)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn set_expiry_ms(cli: &Cli, ms: i64) {
    let mut doc = stored(&cli.credentials);
    doc["token"]["expires_at_ms"] = ms.into();
    std::fs::write(&cli.credentials, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
}

/// The binary with its config directory in `home`, and no client
/// credentials in the environment.
fn bare(home: &std::path::Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_medium-oauth"));
    command
        .args(args)
        .env("XDG_CONFIG_HOME", home)
        .env("HOME", home)
        .env_remove("MEDIUM_CLIENT_ID")
        .env_remove("MEDIUM_CLIENT_SECRET")
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY");
    command
}

/// Regression: `login --emulator` replaced the default credentials file
/// (maybe a real Medium login), and `status` then said "Logged in" against
/// an emulator that had exited.
#[test]
fn emulator_logins_are_kept_apart_and_status_says_the_server_is_gone() {
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("medium-oauth");
    std::fs::create_dir_all(&config).unwrap();
    let real = br#"{"version":1,"token":{"access_token":"real-medium-token"},"client":{"client_id":"mine"}}"#;
    std::fs::write(config.join("credentials.json"), real).unwrap();

    let out = bare(home.path(), &["login", "--emulator", "--no-browser"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("emulator-credentials.json"));
    assert_eq!(
        std::fs::read(config.join("credentials.json")).unwrap(),
        real,
        "the real login was replaced"
    );
    // A second emulator login replaces the first without asking: each has
    // its own port, but both are the in-process emulator.
    let again = bare(home.path(), &["login", "--emulator", "--no-browser"])
        .output()
        .unwrap();
    assert!(again.status.success(), "{}", text(&again.stderr));

    let out = bare(home.path(), &["status", "--profile", "emulator"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(6), "{}", text(&out.stdout));
    let shown = text(&out.stdout);
    assert!(
        shown.contains("Token check: the server cannot be reached"),
        "{shown}"
    );
    assert!(shown.contains("stops when the login ends"), "{shown}");
    let offline = bare(
        home.path(),
        &["status", "--profile", "emulator", "--offline"],
    )
    .output()
    .unwrap();
    assert_eq!(offline.status.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_to_another_server_needs_force_when_nobody_can_be_asked() {
    let first = emulator(auto()).await;
    let cli = Cli::new(&first);
    log_in(&cli, &[]).await;
    let before = std::fs::read(&cli.credentials).unwrap();
    let second = emulator(auto()).await;
    let mut other = Cli::new(&second);
    other.credentials = cli.credentials.clone();
    let out = other.run(&[
        "login",
        "--no-browser",
        "--authorize-url",
        &other.authorize_url,
        "--api-url",
        &other.api_url,
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("--force"), "{err}");
    assert!(
        err.contains(&first.base_url().replace("http://", "")),
        "{err}"
    );
    assert!(out.stdout.is_empty(), "no URL before the refusal");
    assert_eq!(std::fs::read(&cli.credentials).unwrap(), before);
    let saved = log_in(&other, &["--force"]).await;
    assert_eq!(saved["client"]["api_url"], other.api_url.as_str());
}

/// Regression: `token` needed the client secret for every refresh, and
/// refused (exit 2) while the token was still valid but due.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_refreshes_with_what_login_stored_and_else_prints_a_valid_token() {
    let emu = emulator(auto()).await;
    let cli = Cli::new(&emu);
    let saved = log_in(&cli, &[]).await;
    assert_eq!(saved["client"]["client_secret"], "demo-secret");
    let hour_left = now_ms() + 3_600_000;
    set_expiry_ms(&cli, hour_left);
    let out = cli
        .command(&["token"])
        .env_remove("MEDIUM_CLIENT_ID")
        .env_remove("MEDIUM_CLIENT_SECRET")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(emu.refreshes(), 1, "refreshed with the stored secret");

    // Opted out: due but valid, the token is printed with a warning.
    let saved = log_in(&cli, &["--no-store-secret"]).await;
    assert!(saved["client"].get("client_secret").is_none(), "{saved}");
    set_expiry_ms(&cli, hour_left);
    let out = cli
        .command(&["token"])
        .env_remove("MEDIUM_CLIENT_SECRET")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).trim(),
        saved["token"]["access_token"].as_str().unwrap()
    );
    let err = text(&out.stderr);
    assert!(err.starts_with("warning: "), "{err}");
    assert!(err.contains("printing the current token"), "{err}");
    // Expired, it cannot be printed: the refresh needs the secret.
    set_expiry_ms(&cli, now_ms() - 1000);
    let out = cli
        .command(&["token"])
        .env_remove("MEDIUM_CLIENT_SECRET")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty());
}

/// Regression: a wrong client secret gave exit 7 and "run `medium-oauth
/// login`", and errors said "Medium" of a server on 127.0.0.1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_client_secret_is_its_own_failure_naming_the_host() {
    let emu = emulator(auto()).await;
    let cli = Cli::new(&emu);
    log_in(&cli, &[]).await;
    set_expiry_ms(&cli, now_ms() - 1000);
    let out = cli
        .command(&["token"])
        .env("MEDIUM_CLIENT_SECRET", "not-the-secret")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(8), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("127.0.0.1: the server refused the client credentials"),
        "{err}"
    );
    assert!(!err.contains("login") && !err.contains("Medium"), "{err}");
    assert!(!err.contains("not-the-secret"), "{err}");
    // A revoked grant names the host too.
    emu.revoke_all_tokens();
    let out = cli.run(&["token", "--force-refresh"]);
    assert_eq!(out.status.code(), Some(7), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("127.0.0.1: the server rejected the grant"),
        "{err}"
    );
    assert!(!err.contains("Medium"), "{err}");
    let help = Command::new(env!("CARGO_BIN_EXE_medium-oauth"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(text(&help.stdout).contains("8    the server refused the client id or secret"));
}

/// Regression: these waited out the whole 300 s timeout though the cause
/// was known at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn known_causes_fail_at_once_naming_them() {
    let emu = emulator(auto()).await;
    let cli = Cli::new(&emu);
    let started = std::time::Instant::now();
    for var in ["MEDIUM_CLIENT_ID", "MEDIUM_CLIENT_SECRET"] {
        let out = cli
            .command(&["login", "--no-browser", "--api-url", &cli.api_url])
            .env(var, "")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{var}");
        assert!(text(&out.stderr).contains(&format!("{var} is set but empty")));
        assert!(out.stdout.is_empty());
    }
    let out = cli
        .command(&["login", "--emulator", "--no-browser"])
        .env("MEDIUM_CLIENT_ID", "my-real-app")
        .env("MEDIUM_CLIENT_SECRET", "my-real-secret")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("MEDIUM_CLIENT_ID") && err.contains("demo app"),
        "{err}"
    );
    assert!(!err.contains("my-real-secret"), "{err}");

    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = cli.run(&[
        "login",
        "--no-browser",
        "--authorize-url",
        &format!("http://127.0.0.1:{closed}/m/oauth"),
        "--api-url",
        &cli.api_url,
    ]);
    assert_eq!(out.status.code(), Some(6), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("authorization server 127.0.0.1 (--authorize-url) cannot be reached"),
        "{err}"
    );
    assert!(out.stdout.is_empty(), "no URL for an unreachable server");
    assert!(started.elapsed() < Duration::from_secs(60));
}

/// Regression: a credentials file of `{}` gave "format version None".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_credentials_file_gets_a_message_for_people() {
    let emu = emulator(auto()).await;
    let cli = Cli::new(&emu);
    std::fs::create_dir_all(cli.credentials.parent().unwrap()).unwrap();
    std::fs::write(&cli.credentials, b"{}").unwrap();
    let out = cli.run(&["status"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("is not a medium-oauth credentials file"),
        "{err}"
    );
    assert!(!err.contains("None"), "{err}");
    assert_eq!(std::fs::read(&cli.credentials).unwrap(), b"{}");
}

/// Regression: a 0644 credentials file was read without a word.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credentials_file_readable_by_others_is_tightened_with_a_warning() {
    use std::os::unix::fs::PermissionsExt;
    let emu = emulator(auto()).await;
    let cli = Cli::new(&emu);
    log_in(&cli, &[]).await;
    std::fs::set_permissions(&cli.credentials, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = cli.run(&["status", "--offline"]);
    assert!(out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("warning: ") && err.contains("mode 0644"),
        "{err}"
    );
    let mode = std::fs::metadata(&cli.credentials)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let again = cli.run(&["status", "--offline"]);
    assert!(again.stderr.is_empty(), "{}", text(&again.stderr));
}

/// Regression: `status --help` and `logout --help` listed options that did
/// nothing there.
#[test]
fn each_subcommand_lists_only_its_own_options() {
    let help = |command: &str| {
        text(
            &Command::new(env!("CARGO_BIN_EXE_medium-oauth"))
                .args([command, "--help"])
                .output()
                .unwrap()
                .stdout,
        )
    };
    let (status, logout, token, login) =
        (help("status"), help("logout"), help("token"), help("login"));
    for foreign in [
        "--client-id",
        "--client-secret",
        "--authorize-url",
        "--api-url",
        "--scopes",
    ] {
        assert!(
            !status.contains(foreign),
            "status lists {foreign}:\n{status}"
        );
        assert!(
            !logout.contains(foreign),
            "logout lists {foreign}:\n{logout}"
        );
    }
    for own in ["--json", "--offline", "--profile", "--credentials"] {
        assert!(status.contains(own), "{status}");
    }
    assert!(
        !token.contains("--authorize-url") && !token.contains("--scopes"),
        "{token}"
    );
    for own in [
        "--client-secret-file",
        "--no-store-secret",
        "--force",
        "--emulator",
    ] {
        assert!(login.contains(own), "{login}");
    }
}

/// `status --json` checks the token with the server, as `gh auth status`
/// does; `--offline` skips the check, and a refused token is exit 7.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_checks_the_token_with_the_server_and_offline_skips_it() {
    let emu = emulator(auto()).await;
    let cli = Cli::new(&emu);
    let saved = log_in(&cli, &[]).await;
    let out = cli.run(&["status", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["check"]["result"], "valid");
    assert_eq!(status["user"]["username"], "demo");
    assert_eq!(status["client_secret_stored"], true);
    let printed = text(&out.stdout);
    for secret in [
        saved["token"]["access_token"].as_str().unwrap(),
        saved["token"]["refresh_token"].as_str().unwrap(),
        "demo-secret",
    ] {
        assert!(!printed.contains(secret), "status printed a secret");
    }

    emu.revoke_all_tokens();
    let out = cli.run(&["status"]);
    assert_eq!(out.status.code(), Some(7), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("refused the token"),
        "{}",
        text(&out.stdout)
    );
    let out = cli.run(&["status", "--offline", "--json"]);
    assert!(out.status.success());
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["check"]["result"], "skipped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_json_includes_the_refresh_token_only_when_asked() {
    let emu = emulator(auto()).await;
    let cli = Cli::new(&emu);
    let saved = log_in(&cli, &[]).await;
    let refresh = saved["token"]["refresh_token"].as_str().unwrap();
    let out = cli.run(&["token", "--json"]);
    assert!(out.status.success());
    let record: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(record["access_token"], saved["token"]["access_token"]);
    assert!(record.get("refresh_token").is_none(), "{record}");
    assert!(!text(&out.stdout).contains(refresh));
    let out = cli.run(&["token", "--json", "--include-refresh-token"]);
    let record: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(record["refresh_token"], refresh);
    let out = cli.run(&["token", "--include-refresh-token"]);
    assert_eq!(out.status.code(), Some(2), "the flag needs --json");
}

#[test]
fn completions_for_bash_zsh_and_fish() {
    for shell in ["bash", "zsh", "fish"] {
        let out = Command::new(env!("CARGO_BIN_EXE_medium-oauth"))
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success(), "{shell}");
        let script = text(&out.stdout);
        assert!(script.contains("medium-oauth"), "{shell}");
        assert!(script.contains("--client-secret-file"), "{shell}: {script}");
    }
}
