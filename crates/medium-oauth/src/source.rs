//! "Give me a valid access token": the [`TokenSource`] trait, a static
//! source, and the refreshing source that keeps a token fresh.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwapOption;
use tokio::sync::{Mutex, Notify};

use crate::replicas::Replicas;
use crate::store::TokenStore;
use crate::{AccessToken, Error, OAuthClient, Token};

/// What [`TokenSource::token`] returns: ready at once on the hot path (no
/// allocation), boxed only when the source has to wait, refresh or fail.
pub struct TokenFuture<'a>(FutureState<'a>);

/// Two words at most: the ready state is built and polled in the caller's
/// registers. A ready error would make every `TokenFuture` as large as
/// [`Error`], and moving that through memory cost more than the rest of the
/// hot path together, so errors take the boxed state.
enum FutureState<'a> {
    Ready(Option<Arc<Token>>),
    Boxed(Pin<Box<dyn Future<Output = Result<Arc<Token>, Error>> + Send + 'a>>),
}

impl<'a> TokenFuture<'a> {
    /// A future already resolved to `result`. Allocates only for an error.
    #[inline]
    pub fn ready(result: Result<Arc<Token>, Error>) -> Self {
        match result {
            Ok(token) => Self(FutureState::Ready(Some(token))),
            Err(e) => Self::boxed(std::future::ready(Err(e))),
        }
    }

    /// A future that runs `future`.
    pub fn boxed(future: impl Future<Output = Result<Arc<Token>, Error>> + Send + 'a) -> Self {
        Self(FutureState::Boxed(Box::pin(future)))
    }
}

impl Future for TokenFuture<'_> {
    type Output = Result<Arc<Token>, Error>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.get_mut().0 {
            FutureState::Ready(token) => Poll::Ready(token.take().ok_or_else(polled_again)),
            FutureState::Boxed(future) => future.as_mut().poll(cx),
        }
    }
}

#[cold]
fn polled_again() -> Error {
    Error::InvalidConfig {
        field: "TokenFuture",
        reason: "polled after completion".into(),
    }
}

/// A source of valid access tokens. Usable as `Arc<dyn TokenSource>`.
pub trait TokenSource: Send + Sync {
    /// A valid access token, with its expiry and granted scopes.
    fn token(&self) -> TokenFuture<'_>;

    /// Tells the source that `token` was refused (HTTP 401), so the next call
    /// obtains a new one. Invalidating a token the source has already
    /// replaced does nothing. The default does nothing.
    fn invalidate(&self, token: &AccessToken) {
        let _ = token;
    }
}

impl<S: TokenSource + ?Sized> TokenSource for Arc<S> {
    fn token(&self) -> TokenFuture<'_> {
        (**self).token()
    }

    fn invalidate(&self, token: &AccessToken) {
        (**self).invalidate(token);
    }
}

/// A token that never changes, such as a self-issued integration token from
/// Medium's settings page (they do not expire).
pub struct StaticTokenSource {
    token: Arc<Token>,
    /// Per-core copies, so threads calling at once do not share one count.
    replicas: Replicas,
}

impl StaticTokenSource {
    /// A source that always returns `token`.
    pub fn new(token: Token) -> Self {
        let token = Arc::new(token);
        let replicas = Replicas::new();
        replicas.store(&token);
        Self { token, replicas }
    }

    /// A source for a bare integration token, with no expiry.
    pub fn integration_token(token: AccessToken) -> Self {
        Self::new(Token::new(token, None, None, Default::default()))
    }
}

impl fmt::Debug for StaticTokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("StaticTokenSource")
            .field(&self.token)
            .finish()
    }
}

impl TokenSource for StaticTokenSource {
    #[inline]
    fn token(&self) -> TokenFuture<'_> {
        let token = self.replicas.load();
        TokenFuture::ready(Ok(token.unwrap_or_else(|| self.token.clone())))
    }
}

/// How long before expiry a token is refreshed, by default. Medium's access
/// tokens live 60 days: refreshing one a day early wastes under 2% of its
/// life and leaves a whole day of retries to ride out a Medium outage, a
/// network problem or a laptop asleep over the refresh time before any call
/// fails.
pub const DEFAULT_REFRESH_MARGIN: Duration = Duration::from_secs(24 * 60 * 60);

/// The most by which a refresh is moved earlier at random, by default, so a
/// fleet that logged in together does not refresh at one instant.
pub const DEFAULT_REFRESH_JITTER: Duration = Duration::from_secs(60 * 60);

/// How often the background timer re-reads the wall clock while it waits. A
/// suspended machine's monotonic clock stands still, and the wall clock can
/// jump; this bounds how late the refresh can notice either.
const CLOCK_CHECK_INTERVAL: Duration = Duration::from_secs(30);

/// First delay between refresh attempts after a transient failure.
pub const DEFAULT_RETRY_BASE: Duration = Duration::from_millis(200);

/// Longest delay between attempts while a caller waits for a token.
pub const DEFAULT_RETRY_CAP: Duration = Duration::from_secs(10);

/// Longest delay between background attempts while the current token is
/// still valid: with a day of margin, five minutes keeps the load negligible
/// and still tries hundreds of times before expiry.
const PROACTIVE_RETRY_CAP: Duration = Duration::from_secs(5 * 60);

/// Attempts of one blocking refresh before the error reaches the caller.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 4;

/// Longest `Retry-After` honoured; a longer one is cut to this, so a
/// misconfigured server cannot stall callers for hours.
const RETRY_AFTER_CAP: Duration = Duration::from_secs(60);

type Hook = Arc<dyn Fn(&Token) + Send + Sync>;

/// A source's configuration, as the builder collects it.
struct Settings {
    client: OAuthClient,
    store: Arc<dyn TokenStore>,
    margin: Duration,
    jitter: Duration,
    max_attempts: u32,
    retry_base: Duration,
    retry_cap: Duration,
    on_change: Option<Hook>,
}

/// Builds a [`RefreshingTokenSource`].
pub struct RefreshingTokenSourceBuilder {
    settings: Settings,
}

impl fmt::Debug for RefreshingTokenSourceBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshingTokenSourceBuilder")
            .field("client", &self.settings.client)
            .field("margin", &self.settings.margin)
            .field("jitter", &self.settings.jitter)
            .field("max_attempts", &self.settings.max_attempts)
            .finish_non_exhaustive()
    }
}

impl RefreshingTokenSourceBuilder {
    /// Refresh this long before expiry (default [`DEFAULT_REFRESH_MARGIN`]).
    /// For a token issued with less than twice the margin left, half its
    /// remaining life is used instead, so short-lived tokens are not
    /// refreshed on every call.
    pub fn margin(mut self, margin: Duration) -> Self {
        self.settings.margin = margin;
        self
    }

    /// Refresh up to this much earlier still, at random (default
    /// [`DEFAULT_REFRESH_JITTER`]; zero for none).
    pub fn jitter(mut self, jitter: Duration) -> Self {
        self.settings.jitter = jitter;
        self
    }

    /// Attempts of a refresh a caller waits for (default
    /// [`DEFAULT_MAX_ATTEMPTS`]).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.settings.max_attempts = attempts.max(1);
        self
    }

    /// Delays between attempts: `base`, doubling, at most `cap` (defaults
    /// [`DEFAULT_RETRY_BASE`], [`DEFAULT_RETRY_CAP`]).
    pub fn backoff(mut self, base: Duration, cap: Duration) -> Self {
        self.settings.retry_base = base;
        self.settings.retry_cap = cap;
        self
    }

    /// Calls `hook` with every new token (refreshed, or adopted from the
    /// store after another process refreshed), after it has been saved.
    pub fn on_change(mut self, hook: impl Fn(&Token) + Send + Sync + 'static) -> Self {
        self.settings.on_change = Some(Arc::new(hook));
        self
    }

    /// Loads the token from the store and starts the source. Must be called
    /// within a tokio runtime (a background task watches the expiry).
    pub async fn build(self) -> Result<RefreshingTokenSource, Error> {
        let token = self.settings.store.load().await?.ok_or(Error::NoToken)?;
        let shared = Arc::new(Shared {
            current: ArcSwapOption::empty(),
            replicas: Replicas::new(),
            due: AtomicBool::new(false),
            changed: Arc::new(Notify::new()),
            epoch: AtomicU64::new(0),
            refresh: Mutex::new(RefreshState::default()),
            settings: self.settings,
        });
        shared.install(token, SystemTime::now());
        tokio::spawn(watch_expiry(
            Arc::downgrade(&shared),
            shared.changed.clone(),
        ));
        Ok(RefreshingTokenSource { shared })
    }
}

/// A token, with when to refresh it.
struct Cached {
    token: Arc<Token>,
    refresh_at: Option<SystemTime>,
    /// The API refused it (see [`TokenSource::invalidate`]).
    refused: bool,
}

#[derive(Default)]
struct RefreshState {
    /// Consecutive failed attempts.
    failures: u32,
    /// No background attempt before this.
    next_attempt: Option<Instant>,
    /// The last failure, handed to callers that waited for that attempt.
    last_error: Option<Error>,
    /// Set when the grant is dead: no further request is sent.
    fatal: Option<Error>,
}

struct Shared {
    /// The current token, with when to refresh it.
    current: ArcSwapOption<Cached>,
    /// Copies of the current token: what the hot path reads, lock-free.
    replicas: Replicas,
    /// Set by the timer when the refresh time has come, or by `invalidate`.
    due: AtomicBool,
    /// Wakes the timer when the token changes, or the source is dropped.
    changed: Arc<Notify>,
    /// Counts finished refresh attempts, so a caller that waited for one can
    /// take its outcome instead of sending another request.
    epoch: AtomicU64,
    /// Held by the one task that refreshes.
    refresh: Mutex<RefreshState>,
    settings: Settings,
}

/// Keeps one token fresh: refreshes ahead of expiry, once however many tasks
/// ask, persists rotated refresh tokens before handing out the new access
/// token, and keeps serving a valid token while a refresh fails.
///
/// Cheap to clone; clones share the token.
#[derive(Clone)]
pub struct RefreshingTokenSource {
    shared: Arc<Shared>,
}

impl fmt::Debug for RefreshingTokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let current = self.shared.current.load();
        f.debug_struct("RefreshingTokenSource")
            .field("token", &current.as_ref().map(|c| &c.token))
            .field("refresh_at", &current.as_ref().and_then(|c| c.refresh_at))
            .field("due", &self.shared.due.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// A random duration in `[0, max]`, from the OS; zero if none is available.
fn random_up_to(max: Duration) -> Duration {
    if max.is_zero() {
        return Duration::ZERO;
    }
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        return Duration::ZERO;
    }
    let fraction = u64::from_le_bytes(bytes) as f64 / u64::MAX as f64;
    max.mul_f64(fraction)
}

/// `base * 2^failures`, at most `cap`.
fn backoff(base: Duration, cap: Duration, failures: u32) -> Duration {
    base.saturating_mul(1u32 << failures.min(16)).min(cap)
}

impl Shared {
    /// When to refresh a token received at `now`.
    fn refresh_at(&self, token: &Token, now: SystemTime) -> Option<SystemTime> {
        let expires = token.expires_at()?;
        let life = expires.duration_since(now).unwrap_or(Duration::ZERO);
        let early = (self.settings.margin + random_up_to(self.settings.jitter)).min(life / 2);
        Some(expires - early)
    }

    /// Makes `token` current and wakes the timer.
    fn install(&self, token: Token, now: SystemTime) -> Arc<Token> {
        let refresh_at = self.refresh_at(&token, now);
        self.install_with(token, refresh_at)
    }

    /// Makes `token` current with a refresh time already drawn (its jitter is
    /// random, so drawing it twice would check one time and arm another).
    fn install_with(&self, token: Token, refresh_at: Option<SystemTime>) -> Arc<Token> {
        let token = Arc::new(token);
        // Replicas first: once `due` is cleared below, the hot path must
        // find the new token on every thread.
        self.replicas.store(&token);
        self.current.store(Some(Arc::new(Cached {
            token: token.clone(),
            refresh_at,
            refused: false,
        })));
        self.due.store(false, Ordering::Release);
        self.changed.notify_one();
        token
    }

    fn is_due(cached: &Cached, now: SystemTime) -> bool {
        cached.refresh_at.is_some_and(|at| now >= at)
    }

    fn is_expired(cached: &Cached, now: SystemTime) -> bool {
        cached.token.expires_within(Duration::ZERO, now)
    }

    /// One refresh: under the store's lock, reload; adopt a token another
    /// process refreshed, or send one refresh request and save the result.
    async fn refresh_once(&self, forced: Option<&AccessToken>) -> Result<Arc<Token>, Error> {
        let _lock = self.settings.store.lock().await?;
        let now = SystemTime::now();
        let current = self.current.load_full();
        let mut base = current.as_ref().map(|c| c.token.clone());
        if let Some(stored) = self.settings.store.load().await? {
            let newer = base
                .as_ref()
                .is_none_or(|b| b.access_token() != stored.access_token());
            let refresh_at = self.refresh_at(&stored, now);
            let fresh = refresh_at.is_none_or(|at| now < at)
                && forced.is_none_or(|f| f != stored.access_token());
            if newer && fresh {
                tracing::debug!("adopting the token another process refreshed");
                let token = self.install_with(stored, refresh_at);
                self.notify(&token);
                return Ok(token);
            }
            if newer {
                // Its refresh token is the newest (a rotation elsewhere).
                base = Some(Arc::new(stored));
            }
        }
        let base = base.ok_or(Error::NoToken)?;
        let refresh_token = base.refresh_token().ok_or(Error::NoRefreshToken)?;
        let token = self.settings.client.refresh(refresh_token).await?;
        // Persist first: a rotated refresh token that is handed out but not
        // saved is lost if the process dies now.
        let now = SystemTime::now();
        if let Err(e) = self.settings.store.save(&token).await {
            // Keep it in memory so this process does not lose a rotated
            // refresh token, and report the failure.
            tracing::error!("the refreshed token could not be saved: {e}");
            self.install(token, now);
            return Err(e);
        }
        let token = self.install(token, now);
        self.notify(&token);
        Ok(token)
    }

    fn notify(&self, token: &Token) {
        if let Some(hook) = &self.settings.on_change {
            hook(token);
        }
    }

    /// The slow path: the token is due, expired, refused or missing.
    async fn slow_token(&self) -> Result<Arc<Token>, Error> {
        let now = SystemTime::now();
        let current = self.current.load_full();
        match &current {
            Some(cached) if !cached.refused && !Self::is_expired(cached, now) => {
                if Self::is_due(cached, now) {
                    Ok(self.proactive(cached).await)
                } else {
                    self.clear_stale_due();
                    Ok(cached.token.clone())
                }
            }
            _ => {
                self.blocking_refresh(current.map(|c| c.token.clone()))
                    .await
            }
        }
    }

    /// Clears a `due` flag set for a token since replaced (the timer or an
    /// `invalidate` racing a refresh), so calls take the hot path again.
    fn clear_stale_due(&self) {
        // A swap reads the flag, so it synchronizes with whoever set it: the
        // reload below then sees the token they judged.
        if !self.due.swap(false, Ordering::AcqRel) {
            return;
        }
        let now = SystemTime::now();
        let still_due = self
            .current
            .load()
            .as_ref()
            .is_none_or(|c| c.refused || Self::is_due(c, now) || Self::is_expired(c, now));
        if still_due {
            self.due.store(true, Ordering::Release);
        }
    }

    /// The token is still valid but due: one background-style attempt if
    /// none is running and the backoff allows, and the valid token either way.
    async fn proactive(&self, cached: &Cached) -> Arc<Token> {
        let Ok(mut state) = self.refresh.try_lock() else {
            return cached.token.clone();
        };
        if state.fatal.is_some() || state.next_attempt.is_some_and(|t| Instant::now() < t) {
            return cached.token.clone();
        }
        let result = self.refresh_once(None).await;
        self.finish(&mut state, &result, true);
        match result {
            Ok(token) => token,
            Err(e) => {
                tracing::warn!("proactive refresh failed; the current token stays in use: {e}");
                cached.token.clone()
            }
        }
    }

    /// No usable token: refresh and wait, retrying transient failures.
    /// `seen` is the unusable token the caller saw.
    async fn blocking_refresh(&self, seen: Option<Arc<Token>>) -> Result<Arc<Token>, Error> {
        let epoch = self.epoch.load(Ordering::Acquire);
        let mut state = self.refresh.lock().await;
        // Another task may have refreshed while this one waited: then its
        // token is the answer, and no request is sent.
        if let Some(cached) = self.current.load_full()
            && seen.as_ref().is_none_or(|s| !Arc::ptr_eq(s, &cached.token))
            && !cached.refused
            && !Self::is_expired(&cached, SystemTime::now())
        {
            return Ok(cached.token.clone());
        }
        // Or its attempt failed: share that failure rather than repeat it.
        if self.epoch.load(Ordering::Acquire) != epoch
            && let Some(e) = &state.last_error
        {
            return Err(e.clone());
        }
        if let Some(fatal) = &state.fatal {
            return Err(fatal.clone());
        }
        let forced = seen.as_ref().map(|t| t.access_token().clone());
        let mut attempt = 0;
        loop {
            attempt += 1;
            let e = match self.refresh_once(forced.as_ref()).await {
                Err(e) if e.is_transient() && attempt < self.settings.max_attempts => e,
                result => {
                    self.finish(&mut state, &result, false);
                    return result;
                }
            };
            let delay = e
                .retry_after()
                .map(|d| d.min(RETRY_AFTER_CAP))
                .unwrap_or_else(|| {
                    backoff(
                        self.settings.retry_base,
                        self.settings.retry_cap,
                        attempt - 1,
                    )
                });
            tracing::debug!("refresh attempt {attempt} failed, retrying in {delay:?}: {e}");
            tokio::time::sleep(delay).await;
        }
    }

    /// Records an attempt's outcome for the callers that waited on it.
    fn finish(
        &self,
        state: &mut RefreshState,
        result: &Result<Arc<Token>, Error>,
        proactive: bool,
    ) {
        match result {
            Ok(_) => *state = RefreshState::default(),
            Err(e) => {
                if e.requires_reauthorization() {
                    state.fatal = Some(e.clone());
                }
                let cap = if proactive {
                    PROACTIVE_RETRY_CAP
                } else {
                    self.settings.retry_cap
                };
                // A server's Retry-After wins, within the longer of the two
                // caps, so it cannot park the source for hours.
                let delay = e
                    .retry_after()
                    .map(|d| d.min(RETRY_AFTER_CAP.max(cap)))
                    .unwrap_or_else(|| backoff(self.settings.retry_base, cap, state.failures));
                state.failures = state.failures.saturating_add(1);
                state.next_attempt = Some(Instant::now() + delay);
                state.last_error = Some(e.clone());
            }
        }
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // Wake the timer so it sees the source is gone and ends.
        self.changed.notify_one();
    }
}

/// Sets `due` when the current token's refresh time comes. Holds only a weak
/// reference, so dropping the source ends it.
async fn watch_expiry(shared: Weak<Shared>, changed: Arc<Notify>) {
    loop {
        let wait = {
            let Some(shared) = shared.upgrade() else {
                return;
            };
            match shared.current.load().as_ref().and_then(|c| c.refresh_at) {
                None => CLOCK_CHECK_INTERVAL,
                Some(at) => match at.duration_since(SystemTime::now()) {
                    Ok(left) if !left.is_zero() => left.min(CLOCK_CHECK_INTERVAL),
                    _ => {
                        shared.due.store(true, Ordering::Release);
                        CLOCK_CHECK_INTERVAL
                    }
                },
            }
        };
        tokio::select! {
            () = changed.notified() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
}

impl RefreshingTokenSource {
    /// A source for the token in `store`, refreshed through `client`.
    pub fn builder(
        client: OAuthClient,
        store: Arc<dyn TokenStore>,
    ) -> RefreshingTokenSourceBuilder {
        RefreshingTokenSourceBuilder {
            settings: Settings {
                client,
                store,
                margin: DEFAULT_REFRESH_MARGIN,
                jitter: DEFAULT_REFRESH_JITTER,
                max_attempts: DEFAULT_MAX_ATTEMPTS,
                retry_base: DEFAULT_RETRY_BASE,
                retry_cap: DEFAULT_RETRY_CAP,
                on_change: None,
            },
        }
    }

    /// Refreshes now, whatever the expiry, and returns the new token.
    pub async fn force_refresh(&self) -> Result<Arc<Token>, Error> {
        let current = self.shared.current.load_full().map(|c| c.token.clone());
        if let Some(token) = &current {
            self.invalidate(token.access_token());
        }
        self.shared.blocking_refresh(current).await
    }

    /// Out of line: the slow path's future is a few kilobytes, and building
    /// it inside `token` would give the hot path that stack frame too.
    #[inline(never)]
    fn slow_token(&self) -> TokenFuture<'_> {
        TokenFuture::boxed(self.shared.slow_token())
    }
}

impl TokenSource for RefreshingTokenSource {
    #[inline]
    fn token(&self) -> TokenFuture<'_> {
        if !self.shared.due.load(Ordering::Acquire)
            && let Some(token) = self.shared.replicas.load()
        {
            return TokenFuture::ready(Ok(token));
        }
        self.slow_token()
    }

    fn invalidate(&self, token: &AccessToken) {
        let seen = self.shared.current.load();
        if let Some(cached) = &*seen
            && cached.token.access_token() == token
        {
            // Mark the exact token refused: the next call refreshes. Only if
            // it is still current: a refresh that replaced it meanwhile must
            // not be undone.
            let refused = Arc::new(Cached {
                token: cached.token.clone(),
                refresh_at: cached.refresh_at,
                refused: true,
            });
            let before = self.shared.current.compare_and_swap(&seen, Some(refused));
            if before.as_ref().is_some_and(|b| Arc::ptr_eq(b, cached)) {
                self.shared.due.store(true, Ordering::Release);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ClientId, ClientSecret, GrantedScopes, MemoryTokenStore, RefreshToken};

    #[test]
    fn a_token_future_is_two_words() {
        // The hot path returns it by value; larger, it went through memory
        // and cost more than the rest of the call (see `FutureState`).
        assert!(size_of::<TokenFuture<'_>>() <= 2 * size_of::<usize>());
    }

    async fn source() -> RefreshingTokenSource {
        let client = OAuthClient::builder(
            ClientId::new("unit"),
            ClientSecret::new("unit"),
            "http://127.0.0.1:9/cb",
        )
        .build()
        .unwrap();
        let token = Token::new(
            AccessToken::new("a-valid-token"),
            Some(RefreshToken::new("a-refresh-token")),
            Some(SystemTime::now() + Duration::from_secs(60 * 24 * 3600)),
            GrantedScopes::default(),
        );
        RefreshingTokenSource::builder(client, Arc::new(MemoryTokenStore::with_token(token)))
            .build()
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_due_flag_left_from_a_replaced_token_is_cleared_by_the_next_call() {
        let source = source().await;
        // As when the timer or an invalidate races a refresh: the flag is
        // set, but the current token is neither due nor refused.
        source.shared.due.store(true, Ordering::Release);
        let token = source.token().await.unwrap();
        assert_eq!(token.access_token().expose_secret(), "a-valid-token");
        assert!(!source.shared.due.load(Ordering::Acquire));
    }

    #[tokio::test]
    async fn a_refused_token_keeps_the_due_flag() {
        let source = source().await;
        source.invalidate(&AccessToken::new("a-valid-token"));
        assert!(source.shared.due.load(Ordering::Acquire));
        source.shared.clear_stale_due();
        assert!(source.shared.due.load(Ordering::Acquire));
    }

    #[tokio::test]
    async fn invalidating_another_token_changes_nothing() {
        let source = source().await;
        source.invalidate(&AccessToken::new("some-older-token"));
        assert!(!source.shared.due.load(Ordering::Acquire));
        assert!(!source.shared.current.load().as_ref().unwrap().refused);
    }
}
