//! [`RefreshingTokenSource`]: the [engine](crate::engine) over a
//! [`TokenStore`] (a file, or memory).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::{TokenFuture, TokenSource};
use crate::engine::{
    Backend, Clock, Engine, LONGEST_RETRY_WAIT, RefreshPolicy, Stored, Transaction,
};
use crate::store::{MemoryTokenStore, StoreTransaction, TokenStore};
use crate::{AccessToken, Error, OAuthClient, Token};

type Hook = Arc<dyn Fn(&Token) + Send + Sync>;

/// Builds a [`RefreshingTokenSource`].
pub struct RefreshingTokenSourceBuilder {
    client: OAuthClient,
    store: Arc<dyn TokenStore>,
    policy: RefreshPolicy,
    clock: Option<Arc<dyn Clock>>,
    on_change: Option<Hook>,
    initial: Option<Token>,
}

impl fmt::Debug for RefreshingTokenSourceBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshingTokenSourceBuilder")
            .field("client", &self.client)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl RefreshingTokenSourceBuilder {
    /// Refresh this long before expiry (default
    /// [`DEFAULT_REFRESH_MARGIN`](crate::engine::DEFAULT_REFRESH_MARGIN)). A
    /// token with less than twice that left is refreshed halfway through
    /// what it has left instead, so short-lived tokens are not refreshed on
    /// every call.
    pub fn margin(mut self, margin: Duration) -> Self {
        self.policy.margin = margin;
        self
    }

    /// Refresh up to this much earlier still, at random, drawn once per
    /// token (default
    /// [`DEFAULT_REFRESH_JITTER`](crate::engine::DEFAULT_REFRESH_JITTER);
    /// zero for none).
    pub fn jitter(mut self, jitter: Duration) -> Self {
        self.policy.jitter = jitter;
        self
    }

    /// Attempts one caller makes (or waits for) before it gets the error
    /// (default [`DEFAULT_MAX_ATTEMPTS`](crate::engine::DEFAULT_MAX_ATTEMPTS)).
    /// Callers that arrive meanwhile wait for those attempts instead of
    /// making their own.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.policy.max_attempts = attempts.max(1);
        self
    }

    /// The schedule after failures: wait `base`, doubling with each failure
    /// in a row, at most `cap` (defaults
    /// [`DEFAULT_RETRY_BASE`](crate::engine::DEFAULT_RETRY_BASE),
    /// [`DEFAULT_RETRY_CAP`](crate::engine::DEFAULT_RETRY_CAP)); both at most
    /// [`LONGEST_RETRY_WAIT`]. A caller sleeps for a scheduled attempt only
    /// while the wait is at most `cap`.
    pub fn backoff(mut self, base: Duration, cap: Duration) -> Self {
        self.policy.retry_base = base.min(LONGEST_RETRY_WAIT);
        self.policy.retry_cap = cap.min(LONGEST_RETRY_WAIT);
        self
    }

    /// All the timing settings at once.
    pub fn policy(mut self, policy: RefreshPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Reads wall-clock time from `clock` (default
    /// [`SystemClock`](crate::engine::SystemClock)): the seam for tests that
    /// move time.
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// Calls `hook` with every new token (refreshed, or adopted from the
    /// store after another process refreshed), after it has been saved.
    pub fn on_change(mut self, hook: impl Fn(&Token) + Send + Sync + 'static) -> Self {
        self.on_change = Some(Arc::new(hook));
        self
    }

    /// Starts from `token` (say, the one [`OAuthClient::complete`] just
    /// returned), saving it to the store, instead of loading the store.
    pub fn initial_token(mut self, token: Token) -> Self {
        self.initial = Some(token);
        self
    }

    /// Starts the source: saves the initial token, or loads the stored one
    /// ([`Error::NoToken`] when there is none). Starts no task: the token is
    /// judged on every call.
    pub async fn build(mut self) -> Result<RefreshingTokenSource, Error> {
        let token = match self.initial.take() {
            Some(token) => {
                let mut transaction = self.store.begin().await?;
                transaction.commit(&token).await?;
                token
            }
            None => self.store.load().await?.ok_or(Error::NoToken)?,
        };
        Ok(self.start(token))
    }

    fn start(self, token: Token) -> RefreshingTokenSource {
        let mut engine = Engine::new(StoreBackend(self.store), self.client, self.policy);
        if let Some(clock) = self.clock {
            engine = engine.with_clock(clock);
        }
        if let Some(hook) = self.on_change {
            engine = engine.with_on_change(move |token| hook(token));
        }
        RefreshingTokenSource {
            engine: Arc::new(engine.with_token(token, None)),
        }
    }
}

/// Keeps one token fresh: refreshes ahead of expiry, once however many tasks
/// ask, persists rotated refresh tokens before handing out the new access
/// token, keeps serving a valid token while a refresh fails, and never
/// hands out an expired one. The [engine](crate::engine) over a
/// [`TokenStore`].
///
/// Cheap to clone; clones share the token.
#[derive(Clone)]
pub struct RefreshingTokenSource {
    engine: Arc<Engine<StoreBackend>>,
}

impl fmt::Debug for RefreshingTokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RefreshingTokenSource")
            .field(&self.engine)
            .finish()
    }
}

impl RefreshingTokenSource {
    /// A source for the token in `store`, refreshed through `client`.
    pub fn builder(
        client: OAuthClient,
        store: Arc<dyn TokenStore>,
    ) -> RefreshingTokenSourceBuilder {
        RefreshingTokenSourceBuilder {
            client,
            store,
            policy: RefreshPolicy::default(),
            clock: None,
            on_change: None,
            initial: None,
        }
    }

    /// A source for `token` with default settings, kept in memory: the
    /// one-line way from a login to fresh tokens. For tokens that must
    /// outlive the process, use [`builder`](Self::builder) with a
    /// [`FileTokenStore`](crate::FileTokenStore).
    pub fn new(client: OAuthClient, token: Token) -> Self {
        let store = Arc::new(MemoryTokenStore::with_token(token.clone()));
        Self::builder(client, store).start(token)
    }

    /// Obtains a new token now, whatever the expiry, and returns it; or
    /// adopts one another process saved meanwhile. Follows the shared
    /// schedule like any call, but re-reads the store at once when the
    /// grant is dead.
    pub async fn force_refresh(&self) -> Result<Arc<Token>, Error> {
        self.engine.force_refresh().await
    }

    /// Out of line: the slow path's future is large, and building it inside
    /// `token` would give the hot path its stack frame too.
    #[cold]
    #[inline(never)]
    fn slow_token(&self) -> TokenFuture<'_> {
        TokenFuture::boxed(self.engine.token())
    }
}

impl TokenSource for RefreshingTokenSource {
    #[inline]
    fn token(&self) -> TokenFuture<'_> {
        match self.engine.fresh() {
            Some(token) => TokenFuture::ready(Ok(token)),
            None => self.slow_token(),
        }
    }

    fn invalidate(&self, token: &AccessToken) {
        self.engine.invalidate(token);
    }
}

/// A [`TokenStore`] as the engine's backend: no arrival times, no dead
/// marks of its own (the engine's latch serves the one process).
struct StoreBackend(Arc<dyn TokenStore>);

/// A store's transaction, with what it read.
struct StoreBegun {
    transaction: Box<dyn StoreTransaction>,
    stored: Stored<Error>,
}

fn stored(token: Option<Token>) -> Stored<Error> {
    match token {
        Some(token) => Stored::Token {
            token,
            arrived: None,
        },
        None => Stored::Missing,
    }
}

impl Backend for StoreBackend {
    type Error = Error;
    type Transaction = StoreBegun;

    async fn peek(&self) -> Result<Stored<Error>, Error> {
        self.0.load().await.map(stored)
    }

    async fn begin<'a>(
        &'a self,
        _settled: &'a (dyn Fn(&Stored<Error>) -> bool + Send + Sync),
    ) -> Result<StoreBegun, Error> {
        let transaction = self.0.begin().await?;
        let stored = stored(transaction.stored().cloned());
        Ok(StoreBegun {
            transaction,
            stored,
        })
    }

    fn error(&self, e: Error) -> Error {
        e
    }
}

impl Transaction for StoreBegun {
    type Error = Error;

    fn stored(&self) -> &Stored<Error> {
        &self.stored
    }

    async fn commit(&mut self, token: &Token, _now: std::time::SystemTime) -> Result<bool, Error> {
        self.transaction.commit(token).await.map(|()| true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ClientId, ClientSecret, GrantedScopes, RefreshToken};

    #[tokio::test]
    async fn debug_names_the_source_and_its_builder_with_tokens_redacted() {
        let client = OAuthClient::builder(
            ClientId::new("demo-app"),
            ClientSecret::new("a-client-secret-nobody-may-see"),
            "http://127.0.0.1:9/cb",
        )
        .build()
        .unwrap();
        let token = Token::new(
            AccessToken::new("an-access-token-nobody-may-see"),
            Some(RefreshToken::new("a-refresh-token-nobody-may-see")),
            None,
            GrantedScopes::default(),
        );
        let store = Arc::new(MemoryTokenStore::with_token(token.clone()));
        let builder = RefreshingTokenSource::builder(client.clone(), store).max_attempts(3);
        let source = RefreshingTokenSource::new(client, token);
        let builder_shown = format!("{builder:?}");
        let source_shown = format!("{source:?}");
        assert!(
            builder_shown.starts_with("RefreshingTokenSourceBuilder {")
                && builder_shown.contains("client: OAuthClient {")
                && builder_shown.contains("ClientSecret([redacted])")
                && builder_shown.contains("max_attempts: 3"),
            "{builder_shown}"
        );
        assert!(
            source_shown.starts_with("RefreshingTokenSource(Engine {")
                && source_shown.contains("AccessToken([redacted])")
                && source_shown.contains("RefreshToken([redacted])")
                && source_shown.contains("standing: Fresh"),
            "{source_shown}"
        );
        for shown in [builder_shown, source_shown] {
            assert!(!shown.contains("nobody-may-see"), "{shown}");
        }
    }
}
