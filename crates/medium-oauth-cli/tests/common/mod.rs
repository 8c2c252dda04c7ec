//! Running the `medium-oauth` binary against an emulator.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};

pub use medium_oauth_test_support::*;

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

/// What a hostile API server does with `GET /v1/me`.
#[derive(Clone, Debug)]
pub enum MeBehaviour {
    /// Answers 200 with this JSON body.
    Answer(String),
    /// Accepts the request and never answers.
    Silent,
    /// Answers 200 and sends a body without end (a bounded 512 MiB, far
    /// past any cap).
    Endless,
}

/// An API server in front of an emulator: token requests are passed on to
/// it, `GET /v1/me` gets `me`. A raw TCP server, as a hostile one would be;
/// nothing of ours is mocked.
pub struct HostileApi {
    /// Its API base URL, to pass as `--api-url`.
    pub url: String,
    /// Notified when a `/me` request arrives.
    pub me_called: std::sync::Arc<tokio::sync::Notify>,
}

/// Longest request head read by the hostile server.
const MAX_HEAD_BYTES: usize = 64 * 1024;

pub async fn hostile_api(emu: &Emulator, me: MeBehaviour) -> HostileApi {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let upstream = emu.base_url();
    let me_called = std::sync::Arc::new(tokio::sync::Notify::new());
    let notify = me_called.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let upstream = upstream.clone();
            let notify = notify.clone();
            let me = me.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let head_end = loop {
                    let mut chunk = [0u8; 4096];
                    let n = socket.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 || buf.len() > MAX_HEAD_BYTES {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
                let mut lines = head.lines();
                let request_line = lines.next().unwrap_or_default().to_owned();
                let mut parts = request_line.split(' ');
                let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
                let header = |name: &str| {
                    head.lines()
                        .filter_map(|l| l.split_once(':'))
                        .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
                        .map(|(_, v)| v.trim().to_owned())
                };
                if path.starts_with("/v1/me") {
                    notify.notify_one();
                    match me {
                        MeBehaviour::Answer(body) => {
                            let head = format!(
                                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                                 Content-Length: {}\r\nConnection: close\r\n\r\n",
                                body.len()
                            );
                            let _ = socket.write_all(head.as_bytes()).await;
                            let _ = socket.write_all(body.as_bytes()).await;
                        }
                        MeBehaviour::Silent => {
                            std::future::pending::<()>().await;
                        }
                        MeBehaviour::Endless => {
                            let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                                        Transfer-Encoding: chunked\r\n\r\n9\r\n{\"data\":\"\r\n";
                            if socket.write_all(head.as_bytes()).await.is_err() {
                                return;
                            }
                            let chunk = format!("{:x}\r\n{}\r\n", 64 * 1024, "a".repeat(64 * 1024));
                            for _ in 0..(512 * 16) {
                                if socket.write_all(chunk.as_bytes()).await.is_err() {
                                    return;
                                }
                            }
                        }
                    }
                    return;
                }
                let length: usize = header("content-length")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0)
                    .min(MAX_HEAD_BYTES);
                let mut body = buf[head_end..].to_vec();
                while body.len() < length {
                    let mut chunk = [0u8; 4096];
                    let n = socket.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    body.extend_from_slice(&chunk[..n]);
                }
                let mut request = http()
                    .request(method.parse().unwrap(), format!("{upstream}{path}"))
                    .body(body);
                if let Some(ct) = header("content-type") {
                    request = request.header("content-type", ct);
                }
                let Ok(answer) = request.send().await else {
                    return;
                };
                let status = answer.status().as_u16();
                let ct = answer
                    .headers()
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("application/json")
                    .to_owned();
                let body = answer.bytes().await.unwrap_or_default();
                let head = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: {ct}\r\nContent-Length: {}\r\n\
                     Connection: close\r\n\r\n",
                    body.len()
                );
                let _ = socket.write_all(head.as_bytes()).await;
                let _ = socket.write_all(&body).await;
            });
        }
    });
    HostileApi {
        url: format!("http://{addr}/v1"),
        me_called,
    }
}

/// Runs `command` to its end, or kills it and panics when it is still
/// running at `deadline`: a hang fails the test instead of stalling it.
pub fn output_within(mut command: Command, deadline: std::time::Duration) -> Output {
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(deadline) {
        Ok(output) => output.unwrap(),
        Err(_) => {
            #[cfg(unix)]
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGKILL);
            }
            let _ = pid;
            panic!("{command:?} was still running after {deadline:?}");
        }
    }
}

/// Like [`finish`], and also the child's peak resident memory in KiB, read
/// from the kernel as it reaps the child.
#[cfg(target_os = "linux")]
pub fn finish_measured(
    mut child: Child,
    mut stdout: BufReader<ChildStdout>,
) -> (i32, String, String, i64) {
    let mut stderr = child.stderr.take().unwrap();
    let err = std::thread::spawn(move || {
        let mut err = String::new();
        stderr.read_to_string(&mut err).unwrap();
        err
    });
    let mut out = String::new();
    stdout.read_to_string(&mut out).unwrap();
    let err = err.join().unwrap();
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = child.id() as libc::pid_t;
    assert_eq!(unsafe { libc::wait4(pid, &mut status, 0, &mut usage) }, pid);
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    (code, out, err, usage.ru_maxrss)
}

/// Runs `finish` on a blocking thread, so the test's runtime (and the
/// emulator on it) keeps serving meanwhile; with the time it took.
pub async fn finish_async(
    child: Child,
    stdout: BufReader<ChildStdout>,
) -> ((i32, String, String), std::time::Duration) {
    let started = std::time::Instant::now();
    let result = tokio::task::spawn_blocking(move || finish(child, stdout))
        .await
        .unwrap();
    (result, started.elapsed())
}
