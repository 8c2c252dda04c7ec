//! Shared set-up: an emulator on loopback and a client pointed at it.

#![allow(dead_code)]

use medium_oauth::{ClientId, ClientSecret, OAuthClient, OAuthClientBuilder, ScopeSet, Token};
use medium_oauth_emulator::{Config, Emulator};

pub const REDIRECT: &str = "http://127.0.0.1:9/callback";
pub const SECRET: &str = "demo-secret";

pub async fn emulator(config: Config) -> Emulator {
    Emulator::start(config, "127.0.0.1:0").await.unwrap()
}

pub fn auto() -> Config {
    Config {
        auto_approve: true,
        ..Config::default()
    }
}

pub fn builder(emu: &Emulator) -> OAuthClientBuilder {
    OAuthClient::builder(
        ClientId::new("demo-client"),
        ClientSecret::new(SECRET),
        REDIRECT,
    )
    .authorization_server(emu.authorization_server())
    .api_server(emu.api_server())
}

pub fn client(emu: &Emulator) -> OAuthClient {
    builder(emu).build().unwrap()
}

/// Plays the browser: follows the authorize URL (the emulator auto-approves)
/// and returns the callback URL it is sent to.
pub async fn browse(url: &url::Url) -> String {
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = browser.get(url.as_str()).send().await.unwrap();
    assert_eq!(
        resp.status(),
        302,
        "{}",
        resp.text().await.unwrap_or_default()
    );
    resp.headers()["location"].to_str().unwrap().to_owned()
}

/// The whole flow: authorize, callback, exchange.
pub async fn login(client: &OAuthClient, scopes: ScopeSet) -> Token {
    let (url, pending) = client.authorize_url(scopes).unwrap();
    let callback = browse(&url).await;
    client.complete(&pending, &callback).await.unwrap()
}
