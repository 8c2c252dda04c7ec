//! The main path as a program: log in, keep the token fresh in a file, and
//! call the API with it. Medium has no sandbox, so it runs against the local
//! emulator, which approves the consent page by itself.
//!
//! `cargo run -p medium-oauth --example login_and_call`

use std::sync::Arc;

use medium_oauth::api::{NewPost, PublishStatus};
use medium_oauth::{
    BearerAuth, ClientId, ClientSecret, FileTokenStore, OAuthClient, RefreshingTokenSource,
    TokenSource, scopes,
};
use medium_oauth_emulator::{Config, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, Emulator};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let emulator = Emulator::start(
        Config {
            auto_approve: true,
            ..Config::default()
        },
        "127.0.0.1:0",
    )
    .await?;
    let client = OAuthClient::builder(
        ClientId::new(DEMO_CLIENT_ID),
        ClientSecret::new(DEMO_CLIENT_SECRET),
        "http://127.0.0.1:8080/callback",
    )
    .authorization_server(emulator.authorization_server())
    .api_server(emulator.api_server())
    .build()?;

    // 1. The user is sent to the consent page; the browser comes back to
    //    the redirect URI with a code and the state.
    let (url, pending) = client.authorize_url(scopes![basicProfile, publishPost])?;
    // The URL carries the state, a secret until the callback: show where it
    // leads, not all of it.
    println!(
        "Consent page: {}{}",
        url.origin().ascii_serialization(),
        url.path()
    );
    let callback = play_the_browser(&url).await?;
    let token = client.complete(&pending, &callback).await?;
    println!("Logged in; granted scopes: {}", token.scopes());

    // 2. A source over a credentials file: saved atomically, 0600, locked
    //    across processes, refreshed ahead of expiry.
    let dir = tempfile::tempdir()?;
    let store = Arc::new(FileTokenStore::new(dir.path().join("credentials.json")));
    let source = RefreshingTokenSource::builder(client.clone(), store)
        .initial_token(token)
        .build()
        .await?;
    let current = source.token().await?;
    if let Some(left) = current
        .expires_at()
        .and_then(|at| at.duration_since(std::time::SystemTime::now()).ok())
    {
        println!("Token valid for {} more days", left.as_secs() / 86_400);
    }

    // 3. Every request carries the bearer token: raw, through BearerAuth,
    //    or typed and scope-checked, through MediumApi.
    let http =
        reqwest_middleware::ClientBuilder::new(medium_oauth::tls::client_builder()?.build()?)
            .with(BearerAuth::new(source.clone()))
            .build();
    let status = http
        .get(format!("{}/me", client.api_server()))
        .send()
        .await?
        .status();
    println!("GET /me: {status}");
    let api = client.api(source.clone());
    let me = api.me().await?;
    println!("Hello, {} (@{})", me.name, me.username);
    let post = NewPost::markdown("Hello", "# Hello\n\nA draft from the example.")
        .status(PublishStatus::Draft)
        .build()?;
    println!("Draft saved at {}", api.create_post(&post).await?.url);

    // 4. A refresh, as happens a day before the token expires.
    let refreshed = source.force_refresh().await?;
    assert_ne!(refreshed.access_token(), current.access_token());
    println!("Refreshed; {} refresh so far", emulator.refreshes());
    emulator.shutdown().await;
    Ok(())
}

/// What a browser does with the authorize URL when the emulator approves by
/// itself: follow it to the redirect, and report where it led.
async fn play_the_browser(url: &url::Url) -> Result<String, Box<dyn std::error::Error>> {
    let browser = medium_oauth::tls::client_builder()?
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let answer = browser.get(url.as_str()).send().await?;
    let location = answer
        .headers()
        .get(reqwest::header::LOCATION)
        .ok_or("the consent page did not redirect")?;
    Ok(location.to_str()?.to_owned())
}
