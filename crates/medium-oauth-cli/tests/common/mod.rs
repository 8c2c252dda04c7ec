//! Running the `medium-oauth` binary against an emulator.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};

use medium_oauth_emulator::{Config, Emulator};

pub async fn emulator(config: Config) -> Emulator {
    Emulator::start(config, "127.0.0.1:0").await.unwrap()
}

pub struct Cli {
    pub credentials: PathBuf,
    pub authorize_url: String,
    pub api_url: String,
    _dir: tempfile::TempDir,
}

impl Cli {
    pub fn new(emu: &Emulator) -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self {
            credentials: dir.path().join("config/medium-oauth/credentials.json"),
            authorize_url: emu.authorization_server(),
            api_url: emu.api_server(),
            _dir: dir,
        }
    }

    /// The command with the emulator's URLs, the demo app and this test's
    /// credentials file.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_medium-oauth"));
        command
            .args(args)
            .arg("--credentials")
            .arg(&self.credentials)
            .env("MEDIUM_CLIENT_ID", "demo-client")
            .env("MEDIUM_CLIENT_SECRET", "demo-secret")
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY");
        command
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Starts `login --no-browser` and returns it with the URL it printed.
    pub fn start_login(&self, extra: &[&str]) -> (Child, BufReader<ChildStdout>, String) {
        let mut args = vec![
            "login",
            "--no-browser",
            "--authorize-url",
            &self.authorize_url,
            "--api-url",
            &self.api_url,
        ];
        args.extend_from_slice(extra);
        let mut child = self
            .command(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut url = String::new();
        stdout.read_line(&mut url).unwrap();
        let url = url.trim().to_owned();
        assert!(url.starts_with("http://127.0.0.1:"), "not a URL: {url:?}");
        (child, stdout, url)
    }
}

/// Waits for a started login and returns (exit code, rest of stdout, stderr).
pub fn finish(mut child: Child, mut stdout: BufReader<ChildStdout>) -> (i32, String, String) {
    let mut out = String::new();
    stdout.read_to_string(&mut out).unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    (status.code().unwrap_or(-1), out, err)
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub fn query_param(url: &str, name: &str) -> String {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

pub fn stored(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}
