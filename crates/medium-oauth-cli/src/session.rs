//! The stored login as a source of fresh tokens: what `token` refreshes
//! with, and what `post`, `publications` and `api` call the REST API
//! through.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use clap::Args;
use medium_oauth::api::MediumApi;
use medium_oauth::{
    OAuthClient, RefreshingTokenSource, RefreshingTokenSourceBuilder, Scope, ScopeSet,
    StaticTokenSource, Token, TokenSource,
};

use crate::failure::Failure;
use crate::profile::{DEFAULT_PROFILE, Profile, ProfileStore, StoreArgs, StoredClient, logged_in};
use crate::setup::{self, ClientArgs, Credentials};

/// The redirect URI given to a client that only refreshes or calls the
/// API: no request of theirs carries one.
pub const UNUSED_REDIRECT: &str = "http://127.0.0.1/callback";

/// Which login to act as: the options every REST command shares with
/// `token` (the app, for refreshes; the credentials file).
#[derive(Args, Debug)]
pub struct SessionArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(flatten)]
    pub store: StoreArgs,
}

/// The host of `url`, to name the server in messages.
pub fn host_of(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| url.to_owned())
}

/// The client `token` refreshes with: the app's id and secret from the
/// options, the environment or the login, on the stored API server (or
/// `--api-url`).
pub fn refreshing_client(args: &ClientArgs, stored: &StoredClient) -> Result<OAuthClient, Failure> {
    client_with(args.credentials(Some(stored))?, args, stored)
}

/// [`refreshing_client`] with the credentials already looked up (looking
/// them up again would repeat its warnings).
fn client_with(
    credentials: Credentials,
    args: &ClientArgs,
    stored: &StoredClient,
) -> Result<OAuthClient, Failure> {
    let Credentials { id, secret } = credentials;
    let (Some((id, _)), Some((secret, _))) = (id, secret) else {
        return Err(Failure::usage(
            "the token needs a refresh, which needs the client id and secret, and none are \
             stored (the login said --no-store-secret): pass --client-secret-file or set \
             MEDIUM_CLIENT_SECRET",
        ));
    };
    Ok(
        setup::client_builder(&id, &secret, UNUSED_REDIRECT.into(), &servers(args, stored))
            .build()?,
    )
}

/// The servers to talk to: `--api-url` over the stored one. The
/// authorization server is never needed after login.
fn servers(args: &ClientArgs, stored: &StoredClient) -> StoredClient {
    StoredClient {
        api_url: args.api_url.clone().or_else(|| stored.api_url.clone()),
        ..StoredClient::default()
    }
}

/// A source over the stored token that refreshes through `client` and
/// saves what it gets to `store`, under the store's lock, as `token` does.
pub fn refreshing_source(client: OAuthClient, store: ProfileStore) -> RefreshingTokenSourceBuilder {
    RefreshingTokenSource::builder(client, Arc::new(store))
}

/// The stored login, ready to call the REST API: every request goes
/// through `BearerAuth` over one token source, so a token due for refresh
/// is refreshed (and saved) first, and a token the API refuses is
/// refreshed once and the request retried, as the library does.
pub struct Session {
    /// The client: the API server, the HTTP client and its timeout.
    pub client: OAuthClient,
    /// Where every request's token comes from.
    pub source: Arc<dyn TokenSource>,
    /// The token as loaded, for its scopes.
    pub token: Token,
    /// The API server's host, to name it in messages.
    pub host: String,
}

impl Session {
    /// Opens the stored login. With the app's secret at hand (stored,
    /// given or in the environment) the token refreshes as `token`'s does;
    /// without it (a `--no-store-secret` login) the stored token is used as
    /// it is while it is valid, and an expired one is the same usage error
    /// `token` gives.
    pub async fn open(args: &SessionArgs) -> Result<Self, Failure> {
        let store = args.store.open(DEFAULT_PROFILE)?;
        let (profile, token) = logged_in(&store)?;
        let credentials = args.client.credentials(Some(&profile.client))?;
        let expired = token.expires_within(Duration::ZERO, SystemTime::now());
        let (client, source): (OAuthClient, Arc<dyn TokenSource>) =
            if credentials.secret.is_some() || expired {
                let client = client_with(credentials, &args.client, &profile.client)?;
                let source = refreshing_source(client.clone(), store).build().await?;
                (client, Arc::new(source))
            } else {
                (
                    unrefreshing_client(&args.client, &profile)?,
                    Arc::new(StaticTokenSource::new(token.clone())),
                )
            };
        let host = host_of(client.api_server().as_str());
        Ok(Self {
            client,
            source,
            token,
            host,
        })
    }

    /// The REST API over this session's token source.
    pub fn api(&self) -> MediumApi<Arc<dyn TokenSource>> {
        self.client.api(self.source.clone())
    }

    /// Fails, before any request, unless the token was granted every scope
    /// in `needed`, naming the `login` that grants them (the scopes held
    /// and the missing ones): the server would refuse the call with a 401
    /// that no refresh can cure.
    pub fn require(&self, needed: &[Scope], command: &str) -> Result<(), Failure> {
        let needed: ScopeSet = needed.iter().copied().collect();
        let missing = self.token.scopes().missing_from(needed);
        if missing.is_empty() {
            return Ok(());
        }
        let all = self.token.scopes().known | needed;
        Err(Failure::new(
            Failure::REAUTHORIZE,
            format!(
                "`{command}` needs the {missing} scope{s}, which this login was not granted; \
                 log in again with `medium-oauth login --scopes {all}`",
                s = if missing.iter().count() == 1 { "" } else { "s" },
            ),
        ))
    }

    /// `e` from a request to the API server, as a failure naming it.
    pub fn failure(&self, e: medium_oauth::Error) -> Failure {
        Failure::from_server(e, &self.host)
    }
}

/// A client for the API calls alone, when no secret is at hand: it never
/// refreshes (its source is static), so the secret it carries is unused,
/// as `status`'s check does.
fn unrefreshing_client(args: &ClientArgs, profile: &Profile) -> Result<OAuthClient, Failure> {
    Ok(setup::client_builder(
        profile.client.client_id.as_deref().unwrap_or_default(),
        &crate::profile::StoredSecret::new(""),
        UNUSED_REDIRECT.into(),
        &servers(args, &profile.client),
    )
    .build()?)
}
