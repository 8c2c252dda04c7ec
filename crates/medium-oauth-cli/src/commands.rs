//! `token`, `status` and `logout`: everything that works from the stored
//! credentials.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use clap::Args;
use medium_oauth::{
    ClientId, ClientSecret, DEFAULT_REFRESH_MARGIN, FileTokenStore, OAuthClient,
    RefreshingTokenSource, Token, TokenSource,
};

use crate::Common;
use crate::failure::Failure;

/// The redirect URI given to a client that only refreshes: Medium's refresh
/// requests carry none, so it is never sent.
const REFRESH_ONLY_REDIRECT: &str = "http://127.0.0.1/callback";

#[derive(Args, Debug)]
pub struct TokenArgs {
    #[command(flatten)]
    common: Common,
    /// Refresh now, even if the token is still valid.
    #[arg(long)]
    force_refresh: bool,
    /// Print the whole token record as JSON, secrets included.
    #[arg(long)]
    json: bool,
}

/// When the token expires, for people: an RFC 3339 time and how far off.
pub fn describe_expiry(expires_at: Option<SystemTime>) -> String {
    let Some(at) = expires_at else {
        return "never".into();
    };
    let when = humantime::format_rfc3339_seconds(at);
    match at.duration_since(SystemTime::now()) {
        Ok(left) => format!("{when} (in {})", roughly(left)),
        Err(_) => format!("{when} (expired)"),
    }
}

/// A duration to the largest whole unit: "59 days", "3 hours", "12 minutes".
fn roughly(d: Duration) -> String {
    const MINUTE: u64 = 60;
    const HOUR: u64 = 60 * MINUTE;
    const DAY: u64 = 24 * HOUR;
    let secs = d.as_secs();
    let (n, unit) = match secs {
        s if s >= DAY => (s / DAY, "day"),
        s if s >= HOUR => (s / HOUR, "hour"),
        s if s >= MINUTE => (s / MINUTE, "minute"),
        s => (s, "second"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

fn not_logged_in(store: &FileTokenStore) -> Failure {
    Failure::new(
        Failure::REAUTHORIZE,
        format!(
            "not logged in (no credentials at {}); run `medium-oauth login`",
            store.path().display()
        ),
    )
}

/// The credentials file, its whole document, and its token.
fn load(common: &Common) -> Result<(FileTokenStore, serde_json::Value, Token), Failure> {
    let store = FileTokenStore::new(common.credentials_path()?);
    let doc = store
        .read_document()?
        .ok_or_else(|| not_logged_in(&store))?;
    let token = store
        .load_blocking()?
        .ok_or_else(|| not_logged_in(&store))?;
    Ok((store, doc, token))
}

/// A stored string field of the credentials file, e.g. `client.api_url`.
fn stored(doc: &serde_json::Value, section: &str, field: &str) -> Option<String> {
    doc.get(section)?.get(field)?.as_str().map(str::to_owned)
}

pub async fn token(args: TokenArgs) -> Result<(), Failure> {
    let (store, doc, token) = load(&args.common)?;
    let due = token.expires_within(DEFAULT_REFRESH_MARGIN, SystemTime::now());
    let token: Arc<Token> = if args.force_refresh || due {
        let client = refreshing_client(&args.common, &doc)?;
        let source = RefreshingTokenSource::builder(client, Arc::new(store))
            .build()
            .await?;
        if args.force_refresh {
            source.force_refresh().await?
        } else {
            source.token().await?
        }
    } else {
        Arc::new(token)
    };
    if args.json {
        let record = serde_json::to_string_pretty(&token.to_record())
            .map_err(|e| Failure::other(e.to_string()))?;
        println!("{record}");
    } else {
        // Printing the token is this command's purpose (for scripts).
        println!("{}", token.access_token().expose_secret());
    }
    Ok(())
}

fn refreshing_client(common: &Common, doc: &serde_json::Value) -> Result<OAuthClient, Failure> {
    let client_id = common
        .client_id
        .clone()
        .or_else(|| stored(doc, "client", "client_id"))
        .ok_or_else(|| {
            Failure::usage("missing client id: pass --client-id or set MEDIUM_CLIENT_ID")
        })?;
    let secret = common.client_secret.clone().ok_or_else(|| {
        Failure::usage(
            "the token needs a refresh, which needs the client secret: \
             pass --client-secret or set MEDIUM_CLIENT_SECRET",
        )
    })?;
    let mut builder = OAuthClient::builder(
        ClientId::new(client_id),
        ClientSecret::new(secret),
        REFRESH_ONLY_REDIRECT,
    );
    if let Some(url) = common
        .api_url
        .clone()
        .or_else(|| stored(doc, "client", "api_url"))
    {
        builder = builder.api_server(url);
    }
    Ok(builder.build()?)
}

pub fn status(common: &Common) -> Result<(), Failure> {
    let (store, doc, token) = load(common)?;
    let who = match (
        stored(&doc, "user", "name"),
        stored(&doc, "user", "username"),
    ) {
        (Some(name), Some(username)) => format!("{name} (@{username})"),
        _ => "unknown user (the token lacks basicProfile)".into(),
    };
    println!("Logged in as {who}");
    println!("Scopes: {}", token.scopes());
    println!("Expires: {}", describe_expiry(token.expires_at()));
    println!(
        "Refresh token: {}",
        if token.refresh_token().is_some() {
            "stored"
        } else {
            "none"
        }
    );
    if let Some(api) = stored(&doc, "client", "api_url") {
        println!("API server: {api}");
    }
    println!("Credentials: {}", store.path().display());
    Ok(())
}

pub fn logout(common: &Common) -> Result<(), Failure> {
    let store = FileTokenStore::new(common.credentials_path()?);
    if store.remove()? {
        println!("Removed {}", store.path().display());
    } else {
        println!("Not logged in (nothing at {})", store.path().display());
    }
    Ok(())
}
