//! Authorize users with Medium's OAuth2 API and act on their behalf.
//!
//! The whole path: log in, keep the token fresh, and let every request carry
//! it. (Medium has no sandbox, so this example runs against the local
//! emulator; drop the hidden lines and the two server settings for Medium.)
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let emulator = medium_oauth_emulator::Emulator::start(
//! #     medium_oauth_emulator::Config { auto_approve: true, ..Default::default() },
//! #     "127.0.0.1:0",
//! # ).await?;
//! use medium_oauth::{BearerAuth, ClientId, ClientSecret, OAuthClient, Scope, TokenSource, scopes};
//! use medium_oauth::api::NewPost;
//!
//! let client = OAuthClient::builder(
//!     ClientId::new("demo-client"),
//!     ClientSecret::new("demo-secret"),
//!     "http://127.0.0.1:8080/callback",
//! )
//! # .authorization_server(emulator.authorization_server())
//! # .api_server(emulator.api_server())
//! .build()?;
//!
//! // 1. Send the user to Medium. The pending authorization holds a fresh
//! //    random `state`; keep it until the callback arrives.
//! let (url, pending) = client.authorize_url(scopes![basicProfile, publishPost])?;
//! println!("open {url}");
//!
//! // 2. Medium sends the browser back to the redirect URI with
//! //    `?code=…&state=…`. Hand that URL (or its query) over: the state is
//! //    checked before the code is exchanged.
//! # let browser = medium_oauth::tls::client_builder()?.redirect(reqwest::redirect::Policy::none()).build()?;
//! # let answer = browser.get(url).send().await?;
//! # let callback = answer.headers()["location"].to_str()?.to_owned();
//! let token = client.complete(&pending, &callback).await?;
//!
//! // 3. The user may grant less than was asked: check before relying on it.
//! token.scopes().require(Scope::PublishPost)?;
//!
//! // 4. A source keeps the token fresh: refreshed ahead of expiry, once
//! //    however many tasks ask. (To keep it across runs, build one over a
//! //    `FileTokenStore` with `RefreshingTokenSource::builder`.)
//! let source = client.token_source(token);
//! assert!(source.token().await?.scopes().contains(Scope::BasicProfile));
//!
//! // 5. Every request through this client carries a fresh bearer token; a
//! //    401 invalidates it and the request is retried once.
//! //    (`tls::client_builder` gives reqwest the TLS set-up of this crate:
//! //    see "TLS" below.)
//! let http = reqwest_middleware::ClientBuilder::new(medium_oauth::tls::client_builder()?.build()?)
//!     .with(BearerAuth::new(source.clone()))
//!     .build();
//! let me = http.get(format!("{}/me", client.api_server())).send().await?;
//! assert_eq!(me.status(), 200);
//!
//! // 6. Or act through Medium's REST API, typed: each call checks the scope
//! //    it needs before sending anything, and refusals come back typed.
//! let api = client.api(source);
//! let post = NewPost::markdown("Hello", "# Hello\n\nWritten from Rust.")
//!     .tags(["rust"])
//!     .build()?;
//! let created = api.create_post(&post).await?;
//! println!("published at {}", created.url);
//! # Ok(())
//! # }
//! ```
//!
//! `examples/login_and_call.rs` runs the same path as a program:
//! `cargo run -p medium-oauth --example login_and_call`.
//!
//! # What the crate guarantees
//!
//! - **No way to skip the CSRF check.** An authorize URL comes only with a
//!   [`PendingAuthorization`] holding a 256-bit random `state`; a code can be
//!   exchanged only as a [`VerifiedCallback`], which only
//!   [`PendingAuthorization::verify`] makes, after comparing the state in
//!   constant time.
//! - **Secrets never leak.** [`ClientSecret`], [`AuthorizationCode`],
//!   [`CsrfState`], [`AccessToken`] and [`RefreshToken`] print as
//!   `[redacted]`, have no `Display`, are zeroized on drop, and give their
//!   value only through `expose_secret`. Errors quote response bodies only
//!   after redacting them.
//! - **Works with the spec and the live service.** Any 2xx with a token body
//!   is success (Medium answers 201, the spec says 200); `expires_at` is read
//!   as milliseconds; refresh tries the spec's `/tokens/refresh` and falls
//!   back to the live `grant_type=refresh_token` on `/tokens`.
//! - **Safe HTTP.** The token endpoint's redirects are never followed,
//!   requests time out ([`DEFAULT_REQUEST_TIMEOUT`]), response bodies are
//!   capped at 1 MiB. Only a 2xx body can become a token; a 401 is
//!   [`Error::InvalidGrant`] whatever its body.
//! - **Tokens that stay valid.** A [`RefreshingTokenSource`] never hands out
//!   an expired token while a refresh could be attempted; it judges the
//!   token on every call against a [`Clock`], not by a timer. Failed
//!   refreshes follow one schedule shared by every caller, a token the API
//!   refuses causes at most one refresh per [`REFUSAL_COOLDOWN`], and a
//!   source whose grant is dead picks up a new login saved to its store.
//!
//! # TLS
//!
//! HTTPS goes through rustls, with certificates checked against the
//! platform's roots (`rustls-platform-verifier`, as reqwest's own rustls
//! set-up does). The crypto provider is chosen by a feature: `ring` (the
//! default) or `aws-lc-rs`, which adds post-quantum hybrid key exchange and
//! a FIPS build at the price of a much longer first build; with
//! `default-features = false, features = ["aws-lc-rs"]` ring is not compiled
//! at all. A provider the program installed as the process default
//! (`rustls::crypto::CryptoProvider::install_default`) is used instead; the
//! crate never installs one itself.
//!
//! reqwest is compiled without a provider of its own (its
//! `rustls-no-provider` feature), so a `reqwest::Client` built elsewhere in
//! the program panics on `build()` unless a process default is installed or
//! the program turns on reqwest's `rustls` feature. Start such clients from
//! [`tls::client_builder`], as the example above does.
//!
//! rustls picks a process default from its own features only when exactly
//! one provider is compiled in. With the default `ring` here, and another
//! crate turning on rustls's `aws-lc-rs` (the default of rustls,
//! tokio-rustls and hyper-rustls), code that relies on that pick (such as
//! `rustls::ClientConfig::builder()`) panics: install a process default at
//! start-up, or build this crate with `aws-lc-rs` alone.

#![deny(missing_docs)]

pub mod api;
pub mod engine;
pub use medium_oauth2_api::tls;
/// The URL type of [`OAuthClient::authorize_url`] and the servers' addresses.
pub use url::Url;
mod authorize;
mod client;
mod error;
mod middleware;
mod redact;
mod scope;
mod secret;
mod source;
mod store;
mod token;

pub use authorize::{DEFAULT_PENDING_TTL, PendingAuthorization, VerifiedCallback};
pub use client::{
    DEFAULT_REQUEST_TIMEOUT, INVALID_CLIENT_CODES, MISSING_SCOPE_CODE, OAuthClient,
    OAuthClientBuilder,
};
pub use engine::{
    COARSE_TICK_BOUND, Clock, DEFAULT_MAX_ATTEMPTS, DEFAULT_REFRESH_JITTER, DEFAULT_REFRESH_MARGIN,
    DEFAULT_RETRY_BASE, DEFAULT_RETRY_CAP, LONGEST_RETRY_WAIT, MAX_PLAUSIBLE_LIFETIME,
    MIN_TOKEN_LIFETIME, REAUTHORIZATION_RECHECK, REFUSAL_COOLDOWN, RETRY_AFTER_CAP, SystemClock,
};
pub use error::{Error, MediumError, Refusal, TransportKind};
pub use middleware::{BearerAuth, token_sent_with};
pub use scope::{Scope, ScopeSet, UnknownScope};
pub use secret::{AccessToken, AuthorizationCode, ClientId, ClientSecret, CsrfState, RefreshToken};
pub use source::{
    INTEGRATION_TOKEN_SCOPES, RefreshingTokenSource, RefreshingTokenSourceBuilder,
    StaticTokenSource, TokenFuture, TokenSource,
};
pub use store::{
    BoxFuture, Document, FileTokenStore, LOCK_WAIT, MAX_FILE_BYTES, MemoryTokenStore, StoreLock,
    StoreTransaction, TokenStore,
};
pub use token::{
    GrantedScopes, MAX_UNKNOWN_SCOPES, Token, TokenRecord, ms_to_system_time, system_time_to_ms,
};
