//! `medium-oauth emulator` prints a login command; run as printed, in a
//! fresh home, it logs in to that emulator and `token` then serves calls.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use medium_oauth_test_support::{browse, http, stdout_lines};

/// Longest wait for a line from a process that should print at once: a
/// hang fails the test instead of stalling the suite.
const LINE_DEADLINE: Duration = Duration::from_secs(30);

/// The CLI in `home` alone (its config directory), with no display.
fn cli(home: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_medium-oauth"));
    command
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env_remove("MEDIUM_CLIENT_ID")
        .env_remove("MEDIUM_CLIENT_SECRET")
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY");
    command
}

/// Kills the child when the test ends, pass or fail.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_printed_login_command_logs_in_and_token_then_serves_calls() {
    let home = tempfile::tempdir().unwrap();
    let mut emulator = cli(home.path())
        .args(["emulator", "--auto-approve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let printed = stdout_lines(&mut emulator);
    let _emulator = Reaped(emulator);
    let base = printed
        .recv_timeout(LINE_DEADLINE)
        .unwrap()
        .strip_prefix("listening on ")
        .expect("the ready line first")
        .to_owned();
    let (env, login) = loop {
        let line = printed
            .recv_timeout(LINE_DEADLINE)
            .expect("a login command");
        if let Some((env, rest)) = line.trim().split_once(" medium-oauth login ") {
            break (env.to_owned(), rest.to_owned());
        }
    };
    let (name, value) = env.split_once('=').expect("NAME=VALUE before the command");

    let mut login = cli(home.path())
        .arg("login")
        .args(login.split(' '))
        .arg("--no-browser")
        .env(name, value)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = stdout_lines(&mut login);
    let url = out.recv_timeout(LINE_DEADLINE).expect("the authorize URL");
    // Play the browser: the emulator approves and redirects to the login's
    // callback.
    let page = browse(&url).await;
    assert!(page.status().is_success(), "{}", page.status());
    let status = login.wait().unwrap();
    assert!(status.success(), "login exited with {status}");
    assert!(
        home.path()
            .join(".config/medium-oauth/local-credentials.json")
            .exists(),
        "saved to the profile the command names"
    );

    let token = cli(home.path())
        .args(["token", "--profile", "local"])
        .output()
        .unwrap();
    assert!(token.status.success(), "{token:?}");
    let token = String::from_utf8(token.stdout).unwrap();
    let me = http()
        .get(format!("{base}/v1/me"))
        .bearer_auth(token.trim())
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
}
