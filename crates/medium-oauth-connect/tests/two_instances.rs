//! The example service end to end, in headless Chromium: two instances of
//! it share one PostgreSQL; the login starts on one, Medium's consent page
//! (the emulator's) sends the browser back to the other, which finishes it.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, Locator};
use medium_oauth_emulator::{ClientApp, Config};
use medium_oauth_test_support::{self as support, browser::Driver};

/// How long an instance may take to print its address: a first connection
/// to PostgreSQL and its migrations.
const START_DEADLINE: Duration = Duration::from_secs(60);

/// An instance of the service, killed on drop.
struct Instance {
    child: Child,
    url: String,
}

impl Instance {
    fn start(args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_medium-oauth-connect"))
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the service starts");
        let lines = support::stdout_lines(&mut child);
        let line = lines.recv_timeout(START_DEADLINE);
        let mut instance = Self {
            child,
            url: String::new(),
        };
        let line = line.expect("the service prints its address");
        instance.url = line
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        instance
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How long a page may take to appear after a click: a redirect chain
/// through two services on a loaded machine.
const PAGE_DEADLINE: Duration = Duration::from_secs(30);

/// The element `css` names, once the page that holds it has loaded: a
/// click starts a navigation that may not be over when it returns.
async fn element(browser: &Client, css: &str) -> fantoccini::elements::Element {
    browser
        .wait()
        .at_most(PAGE_DEADLINE)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css} on the page: {e}"))
}

async fn text(browser: &Client, css: &str) -> String {
    element(browser, css).await.text().await.unwrap()
}

/// Presses Connect on `instance`'s page and approves as `username` on the
/// consent page; returns the page the browser lands on, as text.
async fn connect_as(browser: &Client, instance: &Instance, username: &str) {
    browser.goto(&instance.url).await.unwrap();
    element(browser, "#connect").await.click().await.unwrap();
    let field = element(browser, "#username").await;
    field.clear().await.unwrap();
    field.send_keys(username).await.unwrap();
    element(browser, "#approve").await.click().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_started_on_one_instance_completes_on_the_other() {
    // An app of this test's own: the accounts it lists are only this test's,
    // though the PostgreSQL server is shared with other tests.
    let mut suffix = [0u8; 8];
    getrandom::getrandom(&mut suffix).unwrap();
    let client_id = format!("connect-{}", u64::from_le_bytes(suffix));
    let emu = support::emulator(Config {
        clients: vec![
            ClientApp::demo(),
            ClientApp {
                id: client_id.clone(),
                secret: "connect-secret".into(),
                ..ClientApp::demo()
            },
        ],
        ..Config::default()
    })
    .await;
    let database_url = support::postgres_url();
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("tokens.key");
    let key_file = key_file.to_str().unwrap();
    let medium = emu.base_url();
    let common = [
        "--database-url",
        &database_url,
        "--key-file",
        key_file,
        "--medium",
        &medium,
        "--client-id",
        &client_id,
        "--client-secret",
        "connect-secret",
    ];
    // Medium sends every user back to instance b, as to a load balancer
    // that happened to pick it.
    let b = Instance::start(&[&common[..], &["--name", "instance b"]].concat());
    let a = Instance::start(
        &[
            &common[..],
            &["--name", "instance a", "--public-url", &b.url],
        ]
        .concat(),
    );

    // Pages are neither cached nor named in a Referer (a callback's
    // address holds its code), and a Connect posted from another site is
    // refused.
    let http = medium_oauth::tls::client_builder()
        .unwrap()
        .build()
        .unwrap();
    let home = http.get(&a.url).send().await.unwrap();
    assert_eq!(home.headers()["cache-control"], "no-store");
    assert_eq!(home.headers()["referrer-policy"], "no-referrer");
    assert_eq!(
        home.headers()["content-security-policy"],
        "frame-ancestors 'none'"
    );
    assert_eq!(home.headers()["x-frame-options"], "DENY");
    let forged = http
        .post(format!("{}/connect", a.url))
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status().as_u16(), 403);
    assert!(forged.headers().get("set-cookie").is_none());

    let driver = Driver::start().await;
    let profile = tempfile::tempdir().unwrap();
    let browser = driver.browser(profile.path()).await;

    browser.goto(&a.url).await.unwrap();
    assert_eq!(text(&browser, "#instance").await, "instance a");
    assert_eq!(text(&browser, "#accounts").await.lines().count(), 1);

    connect_as(&browser, &a, "alice_connect").await;
    let connected = text(&browser, "#connected").await;
    assert_eq!(connected, "Connected @alice_connect on instance b.");
    // The callback landed on b, which finished the login a began.
    assert!(
        browser
            .current_url()
            .await
            .unwrap()
            .as_str()
            .starts_with(&b.url)
    );
    assert_eq!(text(&browser, "#instance").await, "instance b");
    let callback = browser.current_url().await.unwrap().to_string();

    // A second user, from a again.
    connect_as(&browser, &a, "bob_connect").await;
    assert!(text(&browser, "#connected").await.contains("@bob_connect"));

    // Both instances list both accounts, from the shared database.
    for instance in [&a, &b] {
        browser.goto(&instance.url).await.unwrap();
        let rows = browser
            .find_all(Locator::Css("#accounts tr.account"))
            .await
            .unwrap();
        assert_eq!(rows.len(), 2, "on {}", instance.url);
        for row in rows {
            let status = row
                .find(Locator::Css(".status"))
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            assert_eq!(status, "valid");
        }
    }

    // The callback is single use on every instance: replayed on a (where
    // the login began) it is refused, and nothing is added.
    let replayed = callback.replacen(&b.url, &a.url, 1);
    browser.goto(&replayed).await.unwrap();
    let error = text(&browser, "#error").await;
    assert!(error.contains("not valid here"), "{error}");
    let code = medium_oauth::Url::parse(&callback)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    assert!(!browser.source().await.unwrap().contains(&code));
    assert_eq!(
        browser
            .find_all(Locator::Css("#accounts tr.account"))
            .await
            .unwrap()
            .len(),
        2
    );
    browser.close().await.unwrap();
}
