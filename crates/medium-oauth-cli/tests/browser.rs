//! `login` in a real browser: headless Chromium, driven through chromedriver,
//! opens the printed URL and clicks Approve (or Deny) on the emulator's
//! consent page. `.ci/run` installs Debian's chromium and chromium-driver.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use fantoccini::{Client, ClientBuilder, Locator};
use medium_oauth_emulator::Config;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "chromedriver";

/// chromedriver on a free port, killed on drop.
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {CHROMEDRIVER} ({e}); install chromium and chromium-driver, as .ci/run does")
            });
        // Owned before the wait, so a panic below still kills and reaps it.
        let driver = Self { child, port };
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return driver;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("chromedriver did not start listening on port {port}");
    }

    async fn browser(&self, profile: &std::path::Path) -> Client {
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": CHROMIUM,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    // This machine's network is closed: no background
                    // connections, updates or sync.
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--disable-quic",
                    "--no-first-run",
                    format!("--user-data-dir={}", profile.display()),
                ],
            }),
        );
        // chromedriver listens on loopback in plain HTTP: no TLS connector,
        // so no second rustls provider (and no aws-lc-rs) in the tests.
        let http = hyper_util::client::legacy::connect::HttpConnector::new();
        ClientBuilder::new(http)
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("a Chromium session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Logs in with the browser clicking `button`; returns the CLI's exit code,
/// its stdout and stderr, and the page the browser ended on.
async fn login_clicking(button: &str) -> (i32, String, String, String, Cli) {
    let emu = emulator(Config::default()).await;
    let cli = Cli::new(&emu);
    let driver = Driver::start().await;
    let profile = tempfile::tempdir().unwrap();
    let browser = driver.browser(profile.path()).await;

    let (child, stdout, url) =
        cli.start_login(&["--scopes", "basicProfile,publishPost", "--timeout", "60"]);
    browser.goto(&url).await.unwrap();
    let scopes = browser
        .find(Locator::Css("#scopes"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(scopes.contains("Publish posts under your name"), "{scopes}");
    browser
        .find(Locator::Css(button))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let (code, out, err) = tokio::task::spawn_blocking(move || finish(child, stdout))
        .await
        .unwrap();
    let title = browser
        .find(Locator::Css("#title"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    browser.close().await.unwrap();
    emu.shutdown().await;
    (code, out, err, title, cli)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approving_in_chromium_completes_the_login() {
    let (code, out, err, title, cli) = login_clicking("#approve").await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("Logged in as Demo User (@demo)"), "{out}");
    assert_eq!(title, "Logged in");
    assert!(cli.credentials.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denying_in_chromium_fails_the_login() {
    let (code, out, err, title, cli) = login_clicking("#deny").await;
    assert_eq!(code, 3, "{out}\n{err}");
    assert!(err.contains("access_denied"), "{err}");
    assert_eq!(title, "Login failed");
    assert!(!cli.credentials.exists());
}
