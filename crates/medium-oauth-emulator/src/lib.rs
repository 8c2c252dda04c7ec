//! A local HTTP server that behaves like Medium's OAuth2 service.
//!
//! Medium has no sandbox and takes no new integrations, so this is where the
//! flow can actually run: every end-to-end test of the workspace talks to it
//! over loopback, and `medium-oauth emulator` runs it for development.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use medium_oauth_emulator::{Config, Emulator};
//!
//! let emulator = Emulator::start(Config { auto_approve: true, ..Config::default() }, "127.0.0.1:0").await?;
//! println!("authorize at {}", emulator.authorization_server());
//! println!("tokens at {}", emulator.api_server());
//! assert_eq!(emulator.refreshes(), 0);
//! emulator.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! One origin serves both of Medium's hosts on their real paths:
//! `GET /m/oauth/authorize` (and the consent form's POST), `POST /v1/tokens`,
//! `POST /v1/tokens/refresh`, and Medium's REST calls: `GET /v1/me`,
//! `GET /v1/users/{userId}/publications`,
//! `GET /v1/publications/{publicationId}/contributors`,
//! `POST /v1/users/{authorId}/posts`,
//! `POST /v1/publications/{publicationId}/posts` and `POST /v1/images`
//! (multipart). Paths and wire types are the generated raw clients', so the
//! emulator and the clients share one reading of the specs.
//!
//! Whoever approves the consent page names a username there (`demo` unless
//! changed): each username is a Medium user of its own, with an id made from
//! the name alone (SHA-256), so the same name is the same user in every
//! emulator. Auto-approval, and a consent form posted without the field,
//! sign in the demo user, [`demo::user`]. A username is 1 to
//! [`MAX_USERNAME_CHARS`] ASCII letters, digits, `_` or `.`, and
//! case-insensitive; another gets a 400 page saying what is wrong, and a new
//! user past [`Limits::users`] a 403. [`Emulator::users`] lists the users
//! known.
//!
//! The REST calls act for the token's user in the small world of [`demo`],
//! where only the demo user contributes to publications; each needs its
//! operation's scope (a token without it
//! gets 401 `Missing scope: <scope>`); the posts and images they create are
//! kept, the newest up to [`Limits`], for [`Emulator::posts`] and
//! [`Emulator::images`], and [`Emulator::api_requests`] counts the calls. Where the spec and the live service disagree the default is the live
//! service (201, both refresh forms), and [`Config`] switches each to the
//! spec's. Error codes are in [`codes`].

#![deny(missing_docs)]

mod args;
mod authorize;
mod config;
pub mod demo;
mod errors;
mod faults;
mod me;
mod rest;
mod scopes;
mod serve;
mod stall;
mod state;
mod tokens;
mod users;
mod wall;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::net::{TcpListener, ToSocketAddrs};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use args::{Args, run};
pub use config::{
    ClientApp, Config, DEFAULT_BODY_READ_TIMEOUT, DEFAULT_HEADER_READ_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_IMAGE_BYTES, DEFAULT_MAX_POST_BODY_BYTES,
    DEFAULT_MAX_USERS, DEFAULT_SHUTDOWN_GRACE, DEFAULT_TOKEN_LIFETIME, DEFAULT_WRITE_TIMEOUT,
    DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, Limits, MAX_STATE_BYTES, MAX_TOKEN_LIFETIME,
    MULTIPART_OVERHEAD_BYTES, RedirectRule, RefreshEndpoints, SuccessStatus,
};
pub use errors::codes;
pub use faults::Fault;
pub use rest::posts::{MAX_TAG_CHARS, MAX_TAGS, MAX_TAGS_SENT, MAX_TITLE_CHARS, UNTITLED};
pub use state::{CODE_TTL, Endpoint, Grant, Outcome, ReceivedImage, ReceivedPost, TokenRequest};
pub use users::MAX_USERNAME_CHARS;

/// Paths derived from the spec's servers, so the emulator serves exactly the
/// paths the real hosts do.
pub(crate) mod routes {
    use medium_oauth2_api::resource::operations as rest;
    use medium_oauth2_api::{operations, servers};

    fn server_path(server: &str) -> String {
        url::Url::parse(server)
            .map(|u| u.path().trim_end_matches('/').to_owned())
            .unwrap_or_default()
    }

    /// `/m/oauth`
    pub(crate) fn authorization_prefix() -> String {
        server_path(servers::AUTHORIZATION_SERVER)
    }

    /// `/v1`
    pub(crate) fn api_prefix() -> String {
        server_path(servers::API_SERVER)
    }

    pub(crate) fn authorize_path() -> String {
        authorization_prefix() + operations::authorize_user::PATH
    }

    pub(crate) fn tokens_path() -> String {
        api_prefix() + operations::exchange_authorization_code::PATH
    }

    pub(crate) fn tokens_refresh_path() -> String {
        api_prefix() + operations::refresh_access_token::PATH
    }

    /// The REST calls' paths, as axum routes: the generated templates'
    /// `{name}` placeholders are axum 0.8's syntax.
    pub(crate) fn me_path() -> String {
        api_prefix() + rest::get_current_user::PATH
    }

    pub(crate) fn user_publications_path() -> String {
        api_prefix() + rest::list_user_publications::PATH_TEMPLATE
    }

    pub(crate) fn contributors_path() -> String {
        api_prefix() + rest::list_publication_contributors::PATH_TEMPLATE
    }

    pub(crate) fn user_posts_path() -> String {
        api_prefix() + rest::create_user_post::PATH_TEMPLATE
    }

    pub(crate) fn publication_posts_path() -> String {
        api_prefix() + rest::create_publication_post::PATH_TEMPLATE
    }

    pub(crate) fn images_path() -> String {
        api_prefix() + rest::upload_image::PATH
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn both_specs_agree_on_the_api_server() {
            assert_eq!(
                medium_oauth2_api::servers::API_SERVER,
                medium_oauth2_api::resource::servers::API_SERVER
            );
        }
    }
}

fn router(state: Arc<state::State>) -> axum::Router {
    use axum::routing::{get, post};
    let mut router = axum::Router::new()
        .route(
            &routes::authorize_path(),
            get(authorize::authorize).post(authorize::consent),
        )
        .route(&routes::tokens_path(), post(tokens::tokens))
        .route(&routes::me_path(), get(me::me))
        .route(
            &routes::user_publications_path(),
            get(rest::publications::list_user_publications),
        )
        .route(
            &routes::contributors_path(),
            get(rest::publications::list_publication_contributors),
        )
        .route(
            &routes::user_posts_path(),
            post(rest::posts::create_user_post),
        )
        .route(
            &routes::publication_posts_path(),
            post(rest::posts::create_publication_post),
        )
        .route(&routes::images_path(), post(rest::images::upload_image));
    if state.config.refresh_endpoints.serves_spec() {
        router = router.route(&routes::tokens_refresh_path(), post(tokens::tokens_refresh));
    }
    let counted = state.clone();
    router
        .fallback(move || async move {
            counted.counters.not_found.fetch_add(1, Ordering::Relaxed);
            errors::ApiError::not_found()
        })
        .method_not_allowed_fallback(|| async {
            errors::ApiError::new(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                codes::NOT_FOUND,
                "Method not allowed.",
            )
        })
        .with_state(state)
}

/// A running emulator. Dropping it stops the server; [`Emulator::shutdown`]
/// stops it and waits until it has.
pub struct Emulator {
    addr: SocketAddr,
    state: Arc<state::State>,
    connections: serve::Connections,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Emulator {
    /// Binds `listen` (use port 0 for any free port) and serves `config`
    /// until shut down.
    pub async fn start(config: Config, listen: impl ToSocketAddrs) -> std::io::Result<Self> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(state::State::new(config));
        let (stop, stopped) = oneshot::channel();
        let app = router(state.clone());
        let connections = serve::Connections::new(&state.config.limits);
        let task = tokio::spawn(serve::serve(
            listener,
            app,
            state.config.limits,
            connections.clone(),
            stopped,
        ));
        Ok(Self {
            addr,
            state,
            connections,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://HOST:PORT`
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The authorization server's base URL, the emulator's counterpart of
    /// `https://medium.com/m/oauth`.
    pub fn authorization_server(&self) -> String {
        self.base_url() + &routes::authorization_prefix()
    }

    /// The API server's base URL, the emulator's counterpart of
    /// `https://api.medium.com/v1`.
    pub fn api_server(&self) -> String {
        self.base_url() + &routes::api_prefix()
    }

    /// The configuration it serves.
    pub fn config(&self) -> &Config {
        &self.state.config
    }

    /// Milliseconds since the Unix epoch on the emulator's clock.
    pub fn now_ms(&self) -> i64 {
        self.state.clock.now_ms()
    }

    /// Moves the emulator's clock forward: codes and tokens expire by it.
    pub fn advance_clock(&self, by: Duration) {
        self.state.clock.advance(by);
    }

    /// Answers the next token requests with these faults, one each, in order.
    pub fn inject_faults(&self, faults: impl IntoIterator<Item = Fault>) {
        self.state
            .faults
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(faults);
    }

    /// Faults queued and not used yet: once it drops, a token request has
    /// taken one (and, for a [`Fault::Delay`], is waiting it out).
    pub fn queued_faults(&self) -> usize {
        self.state
            .faults
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// Takes back the faults not used yet, e.g. to let a request of the
    /// test's own through before injecting them again.
    pub fn take_faults(&self) -> Vec<Fault> {
        self.state
            .faults
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
            .collect()
    }

    /// The token requests received, oldest first, with when they arrived
    /// and how they were answered (the newest 10,000).
    pub fn token_request_log(&self) -> Vec<TokenRequest> {
        self.state.request_log().iter().copied().collect()
    }

    /// Token requests received at `endpoint` with `grant`, faulted or not.
    pub fn token_requests(&self, endpoint: Endpoint, grant: Grant) -> u64 {
        let requests = self.state.requests();
        requests.get(&(endpoint, grant)).copied().unwrap_or(0)
    }

    /// Token requests received in all.
    pub fn total_token_requests(&self) -> u64 {
        self.state.requests().values().sum()
    }

    /// Successful refreshes, on either endpoint.
    pub fn refreshes(&self) -> u64 {
        self.state.counters.refreshes.load(Ordering::Relaxed)
    }

    /// Requests to paths the emulator does not serve (404), e.g. a client
    /// probing `/v1/tokens/refresh` when only the live form is served.
    pub fn not_found_requests(&self) -> u64 {
        self.state.counters.not_found.load(Ordering::Relaxed)
    }

    /// Successful code exchanges.
    pub fn exchanges(&self) -> u64 {
        self.state.counters.exchanges.load(Ordering::Relaxed)
    }

    /// Access tokens that are unexpired and unrevoked now.
    pub fn live_access_tokens(&self) -> usize {
        let now = self.now_ms();
        self.state
            .tables()
            .access
            .values()
            .filter(|t| t.expires_at_ms > now)
            .count()
    }

    /// Refresh tokens that can be used now.
    pub fn live_refresh_tokens(&self) -> usize {
        self.state.tables().refresh.len()
    }

    /// Authorization codes and consent pages held in memory.
    pub fn pending_grants(&self) -> usize {
        self.state.tables().pending()
    }

    /// Bytes the authorization codes and consent pages hold, roughly, as
    /// [`Limits::pending_grant_bytes`] counts them.
    pub fn pending_grant_bytes(&self) -> usize {
        self.state.tables().pending_bytes()
    }

    /// Requests received on the six REST calls (`GET /v1/me` and the five
    /// others), whatever their outcome: a test can prove a client sent none.
    pub fn api_requests(&self) -> u64 {
        self.state.counters.api_requests.load(Ordering::Relaxed)
    }

    /// The posts created, oldest first: the newest up to [`Limits::posts`]
    /// and [`Limits::post_bytes`], older ones forgotten.
    pub fn posts(&self) -> Vec<ReceivedPost> {
        self.state.created().posts.to_vec()
    }

    /// Bytes the remembered posts hold, roughly, as [`Limits::post_bytes`]
    /// counts them.
    pub fn post_bytes(&self) -> usize {
        self.state.created().posts.bytes()
    }

    /// The users known, by username: the demo user, and everyone who has
    /// approved a consent as someone else (up to [`Limits::users`]).
    pub fn users(&self) -> Vec<medium_oauth2_api::resource::types::User> {
        self.state.users().to_vec()
    }

    /// The images accepted, oldest first: the newest up to
    /// [`Limits::images`], older ones forgotten.
    pub fn images(&self) -> Vec<ReceivedImage> {
        self.state.created().images.to_vec()
    }

    /// While `refuse` is set, the REST calls (`GET /v1/me` and the five
    /// others) answer 401 to every access token, fresh ones included, as
    /// Medium would for an app it has suspended; the token endpoints work as
    /// before.
    pub fn refuse_api_tokens(&self, refuse: bool) {
        self.state
            .refuse_api_tokens
            .store(refuse, Ordering::Relaxed);
    }

    /// Connections being served now; those beyond [`Limits::connections`]
    /// wait in the listen backlog and are not counted.
    pub fn open_connections(&self) -> usize {
        self.connections.open()
    }

    /// Rotated-out refresh tokens presented again (each revoked its grant,
    /// with [`Config::detect_refresh_replay`]; counted only then).
    pub fn refresh_replays(&self) -> u64 {
        self.state.counters.replays.load(Ordering::Relaxed)
    }

    /// Revokes every issued token, as a user removing the app would.
    pub fn revoke_all_tokens(&self) {
        let mut tables = self.state.tables();
        tables.access.clear();
        tables.refresh.clear();
    }

    /// Stops accepting connections, lets requests in flight finish for up to
    /// [`Limits::shutdown_grace`], closes the connections still open, and
    /// waits.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
