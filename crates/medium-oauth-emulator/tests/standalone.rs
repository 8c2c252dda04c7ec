//! The emulator's own binary: a `listening on` line first, how to use it
//! after, then it serves.

use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use medium_oauth_test_support::stdout_lines;

/// How long the binary may take to print its ready message: it binds and
/// prints at once, so only a stuck binary takes this long.
const READY_DEADLINE: Duration = Duration::from_secs(30);

/// Starts the binary and returns it with a channel of its stdout lines.
fn spawn_lines(args: &[&str]) -> (Child, mpsc::Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_medium-oauth-emulator"))
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = stdout_lines(&mut child);
    (child, lines)
}

/// Starts the binary and returns it with the base URL from its ready line.
fn spawn_ready(args: &[&str]) -> (Child, String) {
    let (child, lines) = spawn_lines(args);
    let line = lines.recv_timeout(READY_DEADLINE).expect("the ready line");
    let base = line
        .strip_prefix("listening on ")
        .expect("the ready line")
        .to_owned();
    assert!(base.starts_with("http://127.0.0.1:"), "{line}");
    (child, base)
}

#[tokio::test]
async fn prints_the_ready_line_first_then_serves() {
    let (mut child, base) = spawn_ready(&["--success-status", "200", "--auto-approve"]);
    let resp = medium_oauth2_api::tls::client_builder()
        .unwrap()
        .build()
        .unwrap()
        .get(format!("{base}/v1/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test]
async fn memory_caps_are_flags() {
    let (mut child, base) = spawn_ready(&["--auto-approve", "--max-pending-grants", "1"]);
    let browser = medium_oauth2_api::tls::client_builder()
        .unwrap()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let authorize = format!(
        "{base}/m/oauth/authorize?client_id=demo-client&scope=basicProfile&state=s\
         &response_type=code&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb"
    );
    assert_eq!(browser.get(&authorize).send().await.unwrap().status(), 302);
    assert_eq!(browser.get(&authorize).send().await.unwrap().status(), 503);
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test]
async fn prints_the_demo_credentials_and_a_login_command_that_works() {
    let (mut child, lines) = spawn_lines(&["--auto-approve"]);
    let next = || lines.recv_timeout(READY_DEADLINE).expect("another line");
    let first = next();
    let base = first
        .strip_prefix("listening on ")
        .expect("the ready line first");
    assert!(base.starts_with("http://127.0.0.1:"), "{first}");
    let credentials = next();
    assert!(
        credentials.contains("demo-client") && credentials.contains("demo-secret"),
        "{credentials}"
    );
    let command = loop {
        let line = next();
        if let Some(command) = line
            .trim()
            .strip_prefix("MEDIUM_CLIENT_SECRET=demo-secret medium-oauth login ")
        {
            break command.to_owned();
        }
    };
    let words: Vec<&str> = command.split(' ').collect();
    let authorize_url = format!("{base}/m/oauth");
    let api_url = format!("{base}/v1");
    assert_eq!(
        words,
        [
            "--profile",
            "local",
            "--client-id",
            "demo-client",
            "--authorize-url",
            &authorize_url,
            "--api-url",
            &api_url,
        ],
        "{command}"
    );

    // What the command would do, with its values: authorize (the binary
    // approves by itself here) and exchange the code.
    let value = |flag: &str| words[words.iter().position(|w| *w == flag).unwrap() + 1];
    let browser = medium_oauth2_api::tls::client_builder()
        .unwrap()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let redirect = "http://127.0.0.1:9/callback";
    let mut authorize =
        reqwest::Url::parse(&format!("{}/authorize", value("--authorize-url"))).unwrap();
    authorize.query_pairs_mut().extend_pairs([
        ("client_id", value("--client-id")),
        ("scope", "basicProfile"),
        ("state", "st"),
        ("response_type", "code"),
        ("redirect_uri", redirect),
    ]);
    let resp = browser.get(authorize).send().await.unwrap();
    assert_eq!(resp.status(), 302);
    let location = reqwest::Url::parse(resp.headers()["location"].to_str().unwrap()).unwrap();
    let code = location
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let exchanged = browser
        .post(format!("{}/tokens", value("--api-url")))
        .form(&[
            ("code", code.as_str()),
            ("client_id", value("--client-id")),
            ("client_secret", "demo-secret"),
            ("grant_type", "authorization_code"),
            ("redirect_uri", redirect),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(exchanged.status(), 201);
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn secrets_of_registered_apps_are_not_printed() {
    let (mut child, lines) =
        spawn_lines(&["--client", "mine:not-for-printing:https://app.example/cb"]);
    let mut printed = Vec::new();
    while let Ok(line) = lines.recv_timeout(READY_DEADLINE) {
        let done = line.contains("medium-oauth login ");
        printed.push(line);
        if done {
            break;
        }
    }
    let printed = printed.join("\n");
    assert!(printed.contains("medium-oauth login "), "{printed}");
    assert!(!printed.contains("not-for-printing"), "{printed}");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn token_lifetimes_outside_one_second_to_ten_years_are_refused() {
    for lifetime in ["0", "315360001", "9223372036854775", "99999999999999999999"] {
        let out = Command::new(env!("CARGO_BIN_EXE_medium-oauth-emulator"))
            .args(["--listen", "127.0.0.1:0", "--token-lifetime", lifetime])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{lifetime}");
        assert!(out.stdout.is_empty(), "{lifetime}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--token-lifetime"), "{lifetime}: {err}");
        assert!(
            err.contains("from 1 to 315360000 (10 years)"),
            "{lifetime}: {err}"
        );
    }
}

#[test]
fn bad_options_are_refused() {
    for args in [
        &["--success-status", "204"][..],
        &["--client", "only-an-id"][..],
        &["--refresh-endpoints", "sometimes"][..],
        &["--max-pending-grants", "many"][..],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_medium-oauth-emulator"))
            .args(args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}
