//! `login` in a real browser: headless Chromium, driven through chromedriver,
//! opens the printed URL and clicks Approve (or Deny) on the emulator's
//! consent page. `.ci/run` installs Debian's chromium and chromium-driver.

mod common;

use common::*;
use fantoccini::Locator;
use medium_oauth_emulator::Config;
use medium_oauth_test_support::browser::Driver;

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
