//! [`RefreshingTokenSource`]: the slot, the policy and the refresher put
//! together.
//!
//! A call reads the slot. A fresh token is returned at once. A token whose
//! refresh time has come is still returned, after one caller (whoever finds
//! the refresher free) has tried to refresh it. An unusable token (expired,
//! refused, untrusted) is never returned: callers queue for the refresher
//! and take the outcome of its attempts. Failed attempts set one schedule
//! for everybody: until it allows the next attempt, callers that need one
//! fail at once with the last error.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use super::clock::{Clock, WallClock};
use super::policy::{Policy, arrival_error};
use super::refresher::{Recheck, Refresher, Run};
use super::slot::{Current, Slot, Standing};
use super::{TokenFuture, TokenSource};
use crate::store::{MemoryTokenStore, TokenStore};
use crate::{AccessToken, Error, OAuthClient, Token};

/// Attempts one caller makes before the error reaches it, by default.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 4;

/// After a 401 has caused one refresh, further 401s within this time cause
/// none: they reach the caller. A fresh token refused again means the API
/// refuses this grant's tokens (a revoked app, a missing scope, a server
/// fault), which another refresh cannot cure; it would only cost a request
/// (and perhaps a rotation) per call. A minute bounds that to one refresh a
/// minute while recovering within a minute once the cause is fixed.
pub const REFUSAL_COOLDOWN: Duration = Duration::from_secs(60);

/// The longest wait between refresh attempts that can be configured: a
/// day, the default refresh margin. Waiting longer would let a token expire
/// between two attempts of a refresh begun ahead of time.
pub const LONGEST_RETRY_WAIT: Duration = Duration::from_secs(24 * 60 * 60);

type Hook = Arc<dyn Fn(&Token) + Send + Sync>;

/// Builds a [`RefreshingTokenSource`].
pub struct RefreshingTokenSourceBuilder {
    client: OAuthClient,
    store: Arc<dyn TokenStore>,
    policy: Policy,
    max_attempts: u32,
    clock: WallClock,
    on_change: Option<Hook>,
    initial: Option<Token>,
}

impl fmt::Debug for RefreshingTokenSourceBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshingTokenSourceBuilder")
            .field("client", &self.client)
            .field("policy", &self.policy)
            .field("max_attempts", &self.max_attempts)
            .finish_non_exhaustive()
    }
}

impl RefreshingTokenSourceBuilder {
    /// Refresh this long before expiry (default
    /// [`DEFAULT_REFRESH_MARGIN`](crate::DEFAULT_REFRESH_MARGIN)). A token
    /// with less than twice that left is refreshed halfway through what it
    /// has left instead, so short-lived tokens are not refreshed on every
    /// call.
    pub fn margin(mut self, margin: Duration) -> Self {
        self.policy.margin = margin;
        self
    }

    /// Refresh up to this much earlier still, at random, drawn once per
    /// token (default [`DEFAULT_REFRESH_JITTER`](crate::DEFAULT_REFRESH_JITTER);
    /// zero for none).
    pub fn jitter(mut self, jitter: Duration) -> Self {
        self.policy.jitter = jitter;
        self
    }

    /// Attempts one caller makes before it gets the error (default
    /// [`DEFAULT_MAX_ATTEMPTS`]). Callers that arrive meanwhile wait for
    /// those attempts instead of making their own.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// The schedule after failures: wait `base`, doubling with each failure
    /// in a row, at most `cap` (defaults
    /// [`DEFAULT_RETRY_BASE`](crate::DEFAULT_RETRY_BASE),
    /// [`DEFAULT_RETRY_CAP`](crate::DEFAULT_RETRY_CAP)); both at most
    /// [`LONGEST_RETRY_WAIT`]. A caller sleeps between its attempts only
    /// while the wait is at most `cap`.
    pub fn backoff(mut self, base: Duration, cap: Duration) -> Self {
        self.policy.retry_base = base.min(LONGEST_RETRY_WAIT);
        self.policy.retry_cap = cap.min(LONGEST_RETRY_WAIT);
        self
    }

    /// Reads wall-clock time from `clock` (default [`SystemClock`](crate::SystemClock)): the
    /// seam for tests that move time.
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = WallClock::Custom(Arc::new(clock));
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
                let _lock = self.store.lock().await?;
                self.store.save(&token).await?;
                token
            }
            None => self.store.load().await?.ok_or(Error::NoToken)?,
        };
        Ok(self.start(token))
    }

    fn start(self, token: Token) -> RefreshingTokenSource {
        let refresher = Refresher::new(self.client, self.store, self.policy, self.clock);
        let current = refresher.assess(token);
        RefreshingTokenSource {
            inner: Arc::new(Inner {
                slot: Slot::new(current),
                refresher,
                max_attempts: self.max_attempts,
                on_change: self.on_change,
                refusals: Cooldown::new(REFUSAL_COOLDOWN),
            }),
        }
    }
}

/// Keeps one token fresh: refreshes ahead of expiry, once however many tasks
/// ask, persists rotated refresh tokens before handing out the new access
/// token, keeps serving a valid token while a refresh fails, and never
/// hands out an expired one.
///
/// Cheap to clone; clones share the token.
#[derive(Clone)]
pub struct RefreshingTokenSource {
    inner: Arc<Inner>,
}

struct Inner {
    slot: Slot,
    refresher: Refresher,
    max_attempts: u32,
    on_change: Option<Hook>,
    refusals: Cooldown,
}

impl fmt::Debug for RefreshingTokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let current = self.inner.slot.load();
        let now = self.inner.refresher.clock.now();
        f.debug_struct("RefreshingTokenSource")
            .field("token", &current.token)
            .field("standing", &current.standing(now))
            .finish_non_exhaustive()
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
            policy: Policy::default(),
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            clock: WallClock::System,
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
        let inner = self.inner.clone();
        detached(async move {
            let seen = inner.slot.load();
            inner.refresh_and_wait(&seen, Recheck::Now).await
        })
        .await
    }

    /// Out of line: the slow path's future is large, and building it inside
    /// `token` would give the hot path its stack frame too.
    #[cold]
    #[inline(never)]
    fn slow_token(&self) -> TokenFuture<'_> {
        let inner = self.inner.clone();
        TokenFuture::boxed(detached(async move { inner.slow_token().await }))
    }
}

impl TokenSource for RefreshingTokenSource {
    #[inline]
    fn token(&self) -> TokenFuture<'_> {
        let now = self.inner.refresher.clock.now();
        match self.inner.slot.fresh(now) {
            Some(token) => TokenFuture::ready(Ok(token)),
            None => self.slow_token(),
        }
    }

    fn invalidate(&self, token: &AccessToken) {
        let inner = &self.inner;
        let now = Instant::now();
        if inner.refusals.active(now) {
            tracing::debug!("the API refused a token again soon after a refresh; not refreshing");
            return;
        }
        if inner.slot.refuse(token) {
            tracing::debug!("the API refused the access token; the next call refreshes");
            inner.refusals.start(now);
        }
    }
}

impl Inner {
    fn now(&self) -> std::time::SystemTime {
        self.refresher.clock.now()
    }

    async fn slow_token(&self) -> Result<Arc<Token>, Error> {
        let seen = self.slot.load();
        match seen.standing(self.now()) {
            Standing::Fresh => Ok(seen.token.clone()),
            Standing::Due => self.refresh_early(seen).await,
            Standing::Unusable => self.refresh_and_wait(&seen, Recheck::RateLimited).await,
        }
    }

    /// The token is valid but due: one caller refreshes, if the schedule
    /// allows; everybody keeps the valid token until a new one is in, but
    /// only while it is still valid once the attempt is over.
    async fn refresh_early(&self, seen: Arc<Current>) -> Result<Arc<Token>, Error> {
        if let Some(mut run) = self.refresher.try_run() {
            match self.attempt_early(&mut run).await {
                Some(Ok(token)) => return Ok(token),
                Some(Err(e)) => tracing::warn!(
                    "refreshing ahead of expiry failed; the valid token stays in use: {e}"
                ),
                None => {}
            }
        }
        if seen.standing(self.now()) == Standing::Due {
            Ok(seen.token.clone())
        } else {
            // Time passed while the store or the server was slow.
            self.refresh_and_wait(&seen, Recheck::RateLimited).await
        }
    }

    /// The early attempt, if a dead grant, the schedule or a token fresh by
    /// now does not make it needless.
    async fn attempt_early(&self, run: &mut Run) -> Option<Result<Arc<Token>, Error>> {
        // A dead grant's valid token is kept, unless a new login is there.
        // (With no dead grant, `revive` answers true at once.)
        if !matches!(
            self.refresher.revive(run, Recheck::RateLimited).await,
            Ok(true)
        ) {
            return None;
        }
        if run.waiting(Instant::now()).is_some() {
            return None;
        }
        // Read again: the token may have been refused while the store was
        // read, or be fresh again after the clock was set back.
        let current = self.slot.load();
        if current.standing(self.now()) == Standing::Fresh {
            return Some(Ok(current.token.clone()));
        }
        Some(self.attempt(run, &current).await)
    }

    /// No usable token: wait for the refresher, then take the token another
    /// caller got, or fail at once while the schedule says wait, or make up
    /// to `max_attempts` attempts. Between attempts the refresher is let go,
    /// so callers arriving meanwhile fail at once instead of queueing.
    async fn refresh_and_wait(
        &self,
        seen: &Arc<Current>,
        recheck: Recheck,
    ) -> Result<Arc<Token>, Error> {
        let mut attempts = 0;
        loop {
            let mut run = self.refresher.run().await;
            let current = self.slot.load();
            if !Arc::ptr_eq(&current, seen) && current.standing(self.now()) != Standing::Unusable {
                return Ok(current.token.clone());
            }
            if let Some(dead) = run.dead_error()
                && !self.refresher.revive(&mut run, recheck).await?
            {
                return Err(dead);
            }
            if let Some(e) = run.waiting(Instant::now()) {
                return Err(e);
            }
            attempts += 1;
            let e = match self.attempt(&mut run, &current).await {
                Ok(token) => return Ok(token),
                Err(e) => e,
            };
            let wait = run.wait_left(Instant::now());
            drop(run);
            let policy = &self.refresher.policy;
            if attempts >= self.max_attempts || !e.is_transient() || wait > policy.retry_cap {
                return Err(e);
            }
            tracing::debug!("refresh attempt {attempts} failed, retrying in {wait:?}: {e}");
            tokio::time::sleep(wait).await;
        }
    }

    /// One attempt; installs what it obtains and records the outcome in the
    /// shared schedule. A token the server issued unusable (expired, or with
    /// an implausible expiry) was saved, for its refresh token, but is not
    /// installed: the token in use stays until a usable one comes.
    async fn attempt(&self, run: &mut Run, seen: &Current) -> Result<Arc<Token>, Error> {
        let result = match self.refresher.fetch(run, &seen.token).await {
            Ok(fetched) => match fetched
                .issued
                .then(|| arrival_error(&fetched.current.token, self.now()))
                .flatten()
            {
                Some(e) => Err(e),
                None => {
                    let current = self.slot.install(fetched.current);
                    if seen.is_refused() {
                        // The cool-down runs from the refresh a refusal
                        // caused, so the new token gets all of it.
                        self.refusals.start(Instant::now());
                    }
                    if let Some(hook) = &self.on_change {
                        hook(&current.token);
                    }
                    if fetched.issued {
                        // Only an answer from the token endpoint ends its
                        // failures: a token adopted from the store says
                        // nothing of the endpoint.
                        run.succeeded();
                    }
                    return Ok(current.token.clone());
                }
            },
            Err(e) => Err(e),
        };
        if let Err(e) = &result {
            run.failed(e, &self.refresher.policy, Instant::now());
        }
        result
    }
}

/// Runs `work` in a task of its own and waits for it. A caller that gives
/// up (a timeout, a dropped future) then cannot cut a refresh between the
/// server's answer and the save, which would lose a rotated refresh token.
async fn detached(
    work: impl std::future::Future<Output = Result<Arc<Token>, Error>> + Send + 'static,
) -> Result<Arc<Token>, Error> {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        // Polled outside tokio: nothing to hand the work to, so do it here.
        return work.await;
    };
    match runtime.spawn(work).await {
        Ok(result) => result,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(Error::RuntimeShutdown),
    }
}

/// A time window started by an event, read without a lock: milliseconds
/// since the source started, on tokio's clock.
struct Cooldown {
    length: Duration,
    origin: Instant,
    /// When the window started, in ms since `origin`; `NEVER` before any.
    started_ms: AtomicU64,
}

impl Cooldown {
    const NEVER: u64 = u64::MAX;

    fn new(length: Duration) -> Self {
        Self {
            length,
            origin: Instant::now(),
            started_ms: AtomicU64::new(Self::NEVER),
        }
    }

    fn ms(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.origin).as_millis())
            .unwrap_or(u64::MAX - 1)
    }

    fn active(&self, now: Instant) -> bool {
        let started = self.started_ms.load(Ordering::Acquire);
        started != Self::NEVER
            && self.ms(now).saturating_sub(started) < self.length.as_millis() as u64
    }

    fn start(&self, now: Instant) {
        self.started_ms.store(self.ms(now), Ordering::Release);
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
            source_shown.starts_with("RefreshingTokenSource {")
                && source_shown.contains("AccessToken([redacted])")
                && source_shown.contains("RefreshToken([redacted])")
                && source_shown.contains("standing: Fresh"),
            "{source_shown}"
        );
        for shown in [builder_shown, source_shown] {
            assert!(!shown.contains("nobody-may-see"), "{shown}");
        }
    }

    #[test]
    fn a_cooldown_is_inactive_until_started_and_ends_after_its_length() {
        let origin = Instant::now();
        let cooldown = Cooldown::new(Duration::from_secs(60));
        assert!(!cooldown.active(origin));
        cooldown.start(origin + Duration::from_secs(5));
        assert!(cooldown.active(origin + Duration::from_secs(5)));
        assert!(cooldown.active(origin + Duration::from_millis(64_999)));
        assert!(!cooldown.active(origin + Duration::from_secs(65)));
        // Started at an instant too far off to count in u64 milliseconds (a
        // clock gone wild): still a start, not taken for "never started".
        let far = origin + Duration::from_secs(100_000_000_000_000_000);
        cooldown.start(far);
        assert!(cooldown.active(far));
    }

    /// A refresh that panics passes its panic on to the caller, as if run
    /// in the caller's own task.
    #[tokio::test]
    async fn a_panic_in_detached_work_reaches_the_caller() {
        let call = tokio::spawn(detached(async {
            if true {
                panic!("the store panicked");
            }
            Err(Error::NoToken)
        }));
        assert!(call.await.unwrap_err().is_panic());
    }

    /// A refresh cut short by its runtime shutting down is an error for the
    /// caller, not a panic.
    #[test]
    fn work_cut_short_by_a_shutting_down_runtime_is_an_error() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let mut call = Box::pin(detached(std::future::pending()));
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        {
            let _inside = runtime.enter();
            assert!(call.as_mut().poll(&mut cx).is_pending(), "handed to a task");
        }
        drop(runtime);
        match call.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(Err(Error::RuntimeShutdown)) => {}
            other => panic!("{other:?}"),
        }
    }
}
