//! The emulator's own binary: one `listening on` line, then it serves.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// Starts the binary and returns it with the base URL from its ready line.
fn spawn_ready(args: &[&str]) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_medium-oauth-emulator"))
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .strip_prefix("listening on ")
        .expect("the ready line")
        .trim_end()
        .to_owned();
    assert!(base.starts_with("http://127.0.0.1:"), "{line}");
    (child, base)
}

#[tokio::test]
async fn prints_one_line_when_ready_then_serves() {
    let (mut child, base) = spawn_ready(&["--success-status", "200", "--auto-approve"]);
    let resp = reqwest::get(format!("{base}/v1/me")).await.unwrap();
    assert_eq!(resp.status(), 401);
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test]
async fn memory_caps_are_flags() {
    let (mut child, base) = spawn_ready(&["--auto-approve", "--max-pending-grants", "1"]);
    let browser = reqwest::Client::builder()
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
