//! What the workspace's tests share, so each is written once: an emulator
//! on loopback, the demo client pointed at it, and a browser that follows
//! the authorize URL to the callback (against an auto-approving emulator).
//!
//! ```no_run
//! # async fn example() {
//! use medium_oauth::scopes;
//! use medium_oauth_test_support::{auto_approving, demo_client, emulator, login};
//!
//! let emu = emulator(auto_approving()).await;
//! let client = demo_client(&emu);
//! let token = login(&client, scopes![basicProfile]).await;
//! # }
//! ```

#[cfg(feature = "browser")]
pub mod browser;
use medium_oauth::{ClientId, ClientSecret, OAuthClient, OAuthClientBuilder, ScopeSet, Token};
pub use medium_oauth_emulator::{Config, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, Emulator};

/// The demo client's redirect URI in tests that play the browser: they read
/// the redirect and never follow it, so nothing needs to listen there
/// (port 9 is discard).
pub const REDIRECT: &str = "http://127.0.0.1:9/callback";

/// An emulator serving `config` on a free loopback port.
pub async fn emulator(config: Config) -> Emulator {
    Emulator::start(config, "127.0.0.1:0")
        .await
        .expect("an emulator on a free loopback port")
}

/// The default configuration, approving every valid request without a
/// consent page.
pub fn auto_approving() -> Config {
    Config {
        auto_approve: true,
        ..Config::default()
    }
}

/// A builder for the demo app's credentials against any API server (a
/// hostile one in a test), redirecting to [`REDIRECT`].
pub fn builder_for(api: &str) -> OAuthClientBuilder {
    OAuthClient::builder(
        ClientId::new(DEMO_CLIENT_ID),
        ClientSecret::new(DEMO_CLIENT_SECRET),
        REDIRECT,
    )
    .api_server(api)
}

/// A builder for the emulator's demo app, redirecting to [`REDIRECT`].
pub fn demo_builder(emu: &Emulator) -> OAuthClientBuilder {
    OAuthClient::builder(
        ClientId::new(DEMO_CLIENT_ID),
        ClientSecret::new(DEMO_CLIENT_SECRET),
        REDIRECT,
    )
    .authorization_server(emu.authorization_server())
    .api_server(emu.api_server())
}

/// The emulator's demo app as a client.
pub fn demo_client(emu: &Emulator) -> OAuthClient {
    demo_builder(emu).build().expect("the demo client")
}

/// Plays the browser: opens the authorize `url` (the emulator approves by
/// itself) and returns the callback URL it redirects to, unfollowed.
pub async fn approve(url: &url::Url) -> String {
    let browser = http_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a browser");
    let resp = browser
        .get(url.as_str())
        .send()
        .await
        .expect("the authorize page");
    let status = resp.status();
    let location = resp.headers().get("location").cloned();
    match location {
        Some(location) if status == 302 => {
            location.to_str().expect("an ASCII callback URL").to_owned()
        }
        _ => panic!(
            "expected a redirect to the callback, got {status}: {}",
            resp.text().await.unwrap_or_default()
        ),
    }
}

/// Plays the browser to the end: opens `url` and follows every redirect,
/// as a browser does, and returns the last page (for the authorize URL of
/// an auto-approving emulator, the callback page of whoever listens at the
/// redirect URI).
pub async fn browse(url: &str) -> reqwest::Response {
    get(url).await.expect("the page and its redirects")
}

/// A `reqwest::ClientBuilder` with the workspace's TLS set-up: reqwest is
/// built without a crypto provider of its own, so `reqwest::Client::new()`
/// and `reqwest::get` would panic.
pub fn http_builder() -> reqwest::ClientBuilder {
    medium_oauth::tls::client_builder().expect("the TLS set-up")
}

/// An access token for `scopes` (comma-separated wire names) from an
/// auto-approving `emu`, through the flow by hand: the authorize redirect,
/// then the code exchanged with a plain form POST, so the emulator's own
/// tests do not lean on the library's client.
pub async fn raw_access_token(emu: &Emulator, scopes: &str) -> String {
    let http = http_no_redirect();
    let mut url = url::Url::parse(&format!("{}/authorize", emu.authorization_server()))
        .expect("the authorize URL");
    url.query_pairs_mut().extend_pairs([
        ("client_id", DEMO_CLIENT_ID),
        ("scope", scopes),
        ("state", "st"),
        ("response_type", "code"),
        ("redirect_uri", REDIRECT),
    ]);
    let resp = http.get(url).send().await.expect("the authorize page");
    let location = resp.headers()["location"].to_str().expect("a Location");
    let location = url::Url::parse(location).expect("a callback URL");
    let code = location
        .query_pairs()
        .find(|(k, _)| k == "code")
        .expect("a code")
        .1
        .into_owned();
    let resp = http
        .post(format!("{}/tokens", emu.api_server()))
        .form(&[
            ("code", code.as_str()),
            ("client_id", DEMO_CLIENT_ID),
            ("client_secret", DEMO_CLIENT_SECRET),
            ("grant_type", "authorization_code"),
            ("redirect_uri", REDIRECT),
        ])
        .send()
        .await
        .expect("the token endpoint");
    let body: serde_json::Value = resp.json().await.expect("a token body");
    body["access_token"]
        .as_str()
        .expect("an access token")
        .to_owned()
}

/// A GET through [`http`], which follows redirects, as `reqwest::get` does.
pub async fn get(url: impl reqwest::IntoUrl) -> reqwest::Result<reqwest::Response> {
    http().get(url).send().await
}

/// An HTTP client for tests, built by [`http_builder`].
pub fn http() -> reqwest::Client {
    http_builder().build().expect("an HTTP client")
}

thread_local! {
    // Building a client loads TLS roots (tens of milliseconds); one per test
    // thread keeps its pooled connections on that test's runtime.
    static NO_REDIRECT: reqwest::Client = http_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("an HTTP client");
}

/// A client that shows redirects instead of following them (the emulator's
/// authorize answers), one per test thread.
pub fn http_no_redirect() -> reqwest::Client {
    NO_REDIRECT.with(Clone::clone)
}

/// The whole flow against an auto-approving emulator: authorize, callback,
/// exchange.
pub async fn login(client: &OAuthClient, scopes: ScopeSet) -> Token {
    let (url, pending) = client.authorize_url(scopes).expect("an authorize URL");
    let callback = approve(&url).await;
    client
        .complete(&pending, &callback)
        .await
        .expect("a token for the approved authorization")
}

/// `child`'s standard output, a line at a time, read on a thread of its own
/// so a test can wait for a line with a deadline
/// (`recv_timeout`) instead of hanging on a process that went quiet.
pub fn stdout_lines(child: &mut std::process::Child) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let stdout = child.stdout.take().expect("stdout piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The PostgreSQL server the tests share: `DATABASE_URL` when it is set
/// (`.ci/test` sets it), else the throwaway cluster `.ci/postgres` starts
/// (or finds running) under `target/postgres`. Tests keep apart by their
/// own account ids, not by databases.
pub fn postgres_url() -> String {
    static URL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    URL.get_or_init(|| {
        if let Ok(url) = std::env::var("DATABASE_URL") {
            return url;
        }
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../.ci/postgres");
        let out = std::process::Command::new("bash")
            .arg(script)
            .arg("start")
            .output()
            .expect("bash runs .ci/postgres");
        assert!(
            out.status.success(),
            "PostgreSQL did not start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .expect("a URL")
            .trim()
            .to_owned()
    })
    .clone()
}
