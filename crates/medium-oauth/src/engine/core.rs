//! [`Engine`]: the slot, the policy and one grant's shared record of
//! attempts, over a [`Backend`].
//!
//! A call reads the slot. A fresh token is returned at once. A token whose
//! refresh time (or re-read time) has come is still returned, after one
//! caller (whoever finds the record free) has tried to refresh (or re-read)
//! it. An unusable token (none, expired, refused, untrusted) is never
//! returned: callers queue for the record and take the outcome of its
//! attempts. Failed attempts set one schedule for everybody: until it
//! allows the next attempt, callers that arrive fail at once with the last
//! error, while callers already queued behind the failed attempt may wait
//! for the next one when it is near.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::Mutex;
use tokio::time::Instant;

use super::clock::{Clock, WallClock};
use super::policy::{RefreshPolicy, arrival_error, random_fraction};
use super::slot::{Current, Slot, Standing, standing};
use super::{Backend, EngineError, REFUSAL_COOLDOWN, Stored, Transaction};
use crate::{AccessToken, Error, OAuthClient, Token};

/// How often an engine whose grant is dead re-reads its backend for a new
/// login, and how soon a re-read that failed is tried again: often enough
/// that a login in another process is picked up within a second, rarely
/// enough that a service calling in a loop reads its store once a second
/// rather than once a call.
pub const REAUTHORIZATION_RECHECK: Duration = Duration::from_secs(1);

type Hook = Arc<dyn Fn(&Token) + Send + Sync>;

/// Keeps one grant's token valid over a [`Backend`]. See the
/// [module docs](super).
///
/// Its methods that may wait take `self: &Arc<Self>`: their work runs on a
/// task of its own, so a caller that gives up (a timeout, a dropped
/// future) cannot cut a refresh short between the server's answer and the
/// commit, which would lose a rotated refresh token.
pub struct Engine<B: Backend> {
    backend: B,
    client: OAuthClient,
    policy: RefreshPolicy,
    clock: WallClock,
    slot: Slot,
    run: Mutex<Run<B>>,
    on_change: Option<Hook>,
}

/// The shared record of attempts, held (locked) by the one caller that
/// refreshes.
struct Run<B: Backend> {
    /// Failures in a row.
    failures: u32,
    /// No attempt before this; calls that need one fail with `last_error`.
    not_before: Option<Instant>,
    last_error: Option<B::Error>,
    /// The grant is dead or gone: nothing is sent until the backend holds
    /// another token.
    dead: Option<DeadGrant<B::Error>>,
    /// A refreshed token whose commit failed, with its transaction (and so
    /// its lock): it holds the newest refresh token, so it is committed
    /// before anything else is tried.
    unsaved: Option<Kept<B::Transaction>>,
    /// A task commits `unsaved` on the schedule.
    committing: bool,
}

struct DeadGrant<E> {
    error: E,
    /// The token that died: the backend must hold another.
    refused: Option<AccessToken>,
    /// When the backend was last read for a new login.
    checked: Instant,
}

struct Kept<T> {
    token: Token,
    transaction: T,
}

/// Whether a dead grant's backend may be re-read on this call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Recheck {
    /// At most once per [`REAUTHORIZATION_RECHECK`].
    RateLimited,
    /// Now: a forced refresh.
    Now,
}

/// What an attempt obtained.
struct Fetched {
    current: Current,
    /// Issued by the server just now (rather than adopted from the store).
    issued: bool,
}

impl<B: Backend> Run<B> {
    fn new() -> Self {
        Self {
            failures: 0,
            not_before: None,
            last_error: None,
            dead: None,
            unsaved: None,
            committing: false,
        }
    }

    /// The error to fail with at once while the schedule forbids an
    /// attempt.
    fn waiting(&self, now: Instant) -> Option<B::Error> {
        match (self.not_before, &self.last_error) {
            (Some(at), Some(e)) if now < at => Some(e.clone()),
            _ => None,
        }
    }

    /// Time left before the next attempt is allowed.
    fn wait_left(&self, now: Instant) -> Duration {
        self.not_before
            .map_or(Duration::ZERO, |at| at.saturating_duration_since(now))
    }

    fn succeeded(&mut self) {
        self.failures = 0;
        self.not_before = None;
        self.last_error = None;
    }

    fn failed(&mut self, error: &B::Error, policy: &RefreshPolicy, now: Instant) {
        self.failures = self.failures.saturating_add(1);
        // The policy keeps every delay within a day, so this cannot
        // overflow the clock.
        let delay = policy.retry_delay(self.failures, error.retry_after());
        self.not_before = Some(now + delay);
        self.last_error = Some(error.clone());
    }
}

impl<B: Backend> fmt::Debug for Engine<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let current = self.slot.load();
        let now = self.clock.now();
        f.debug_struct("Engine")
            .field("token", &current.as_ref().map(|c| &c.token))
            .field("standing", &standing(current.as_deref(), now))
            .finish_non_exhaustive()
    }
}

impl<B: Backend> Engine<B> {
    /// An engine over `backend`, refreshing through `client`, holding no
    /// token yet: the first call reads the backend.
    pub fn new(backend: B, client: OAuthClient, policy: RefreshPolicy) -> Self {
        Self {
            backend,
            client,
            policy: policy.bounded(),
            clock: WallClock::System,
            slot: Slot::new(None),
            run: Mutex::new(Run::new()),
            on_change: None,
        }
    }

    /// Reads wall-clock time from `clock` (default
    /// [`SystemClock`](super::SystemClock)): the seam for tests that move
    /// time. Waits (backoff) use tokio's clock, so a test that pauses tokio
    /// time and supplies its own clock drives both.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = WallClock::Custom(clock);
        self
    }

    /// Calls `hook` with every new token installed (refreshed, or adopted
    /// from the backend), after it has been committed.
    pub fn with_on_change(mut self, hook: impl Fn(&Token) + Send + Sync + 'static) -> Self {
        self.on_change = Some(Arc::new(hook));
        self
    }

    /// Starts from `token` (which arrived at `arrived`, if known) instead
    /// of reading the backend on the first call.
    pub fn with_token(self, token: Token, arrived: Option<SystemTime>) -> Self {
        let current = self.assess(token, arrived);
        self.slot.install(current);
        self
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The policy, as bounded.
    pub fn policy(&self) -> &RefreshPolicy {
        &self.policy
    }

    /// The wall-clock time, as the engine reads it.
    pub fn now(&self) -> SystemTime {
        self.clock.now()
    }

    /// The hot path: the current token if it is fresh now. Lock-free; no
    /// allocation.
    #[inline]
    pub fn fresh(&self) -> Option<Arc<Token>> {
        self.slot.fresh(self.clock.now())
    }

    /// The current token, whatever its standing (for display).
    pub fn current(&self) -> Option<Arc<Token>> {
        self.slot.load().map(|c| c.token.clone())
    }

    /// Whether the engine holds nothing that a fresh engine over the same
    /// backend would not rebuild: no failures on its schedule, no token
    /// waiting to be committed, and nobody at work. A map of engines may
    /// drop a quiet one; one that is not quiet holds the schedule every
    /// caller shares.
    pub fn is_quiet(&self) -> bool {
        self.run
            .try_lock()
            .is_ok_and(|run| run.failures == 0 && run.unsaved.is_none())
    }

    /// A valid token: the current one while fresh; else one obtained (or
    /// the current one while it is valid but due and no new one can be
    /// had). See the [module docs](super).
    pub async fn token(self: &Arc<Self>) -> Result<Arc<Token>, B::Error> {
        if let Some(token) = self.fresh() {
            return Ok(token);
        }
        let engine = self.clone();
        self.detached(async move { engine.slow_token().await })
            .await
    }

    /// Obtains a new token now, whatever the expiry, and returns it; or
    /// adopts one another process committed meanwhile. Follows the shared
    /// schedule like any call, but re-reads the backend at once when the
    /// grant is dead.
    pub async fn force_refresh(self: &Arc<Self>) -> Result<Arc<Token>, B::Error> {
        let engine = self.clone();
        self.detached(async move {
            let seen = match engine.slot.load() {
                Some(seen) => Some(seen),
                // Nothing read yet: what the backend holds is what is to be
                // replaced, not a token to adopt.
                None => engine.read_backend().await?,
            };
            engine.refresh_and_wait(seen, Recheck::Now).await
        })
        .await
    }

    /// For an engine that holds nothing yet: what the backend holds,
    /// installed due or not, so that a token valid but due is served
    /// through a failed refresh like any other. Read once however many
    /// callers arrive together; a failed read is left to the attempt that
    /// follows, which records it on the schedule.
    async fn first_read(&self) -> Option<Arc<Current>> {
        let run = self.run.lock().await;
        let current = self.slot.load();
        if current.is_some() || run.dead.is_some() || run.waiting(Instant::now()).is_some() {
            return current;
        }
        self.read_backend().await.ok().flatten()
    }

    /// Installs what the backend holds, due or not.
    async fn read_backend(&self) -> Result<Option<Arc<Current>>, B::Error> {
        Ok(match self.backend.peek().await? {
            Stored::Token { token, arrived } => {
                Some(self.slot.install(self.assess(token, arrived)))
            }
            _ => None,
        })
    }

    /// Tells the engine that the API refused `token` (HTTP 401), so the
    /// next call obtains another. Does nothing for a token already
    /// replaced, or one that arrived within [`REFUSAL_COOLDOWN`]: refreshing
    /// a token that new again cannot cure the refusal.
    pub fn invalidate(&self, token: &AccessToken) {
        let Some(current) = self.slot.load() else {
            return;
        };
        if current.token.access_token() != token {
            return;
        }
        let age = self
            .clock
            .now()
            .duration_since(current.arrived)
            .unwrap_or_default();
        if age < REFUSAL_COOLDOWN {
            tracing::debug!("the API refused a token that arrived {age:?} ago; not refreshing");
            return;
        }
        if self.slot.refuse(token) {
            tracing::debug!("the API refused the access token; the next call obtains another");
        }
    }

    /// Runs `work` on a task of its own and waits for it; a runtime
    /// shutting down meanwhile is an error, a panic is the caller's.
    async fn detached(
        &self,
        work: impl Future<Output = Result<Arc<Token>, B::Error>> + Send + 'static,
    ) -> Result<Arc<Token>, B::Error> {
        crate::source::detached(work)
            .await
            .unwrap_or_else(|e| Err(self.backend.error(e)))
    }

    /// `token` with its schedule drawn now.
    fn assess(&self, token: Token, arrived: Option<SystemTime>) -> Current {
        let now = self.clock.now();
        let schedule = self
            .policy
            .schedule(&token, now, arrived.unwrap_or(now), random_fraction());
        let revalidate_at = self.policy.revalidate.and_then(|d| now.checked_add(d));
        Current::new(
            token,
            schedule,
            arrived.unwrap_or(SystemTime::UNIX_EPOCH),
            revalidate_at,
        )
    }

    async fn slow_token(self: &Arc<Self>) -> Result<Arc<Token>, B::Error> {
        let mut seen = self.slot.load();
        if seen.is_none() {
            seen = self.first_read().await;
        }
        match standing(seen.as_deref(), self.now()) {
            Standing::Fresh => match usable(seen.as_ref(), self.now()) {
                Some(token) => Ok(token),
                // Expired in between: obtain another.
                None => self.refresh_and_wait(seen, Recheck::RateLimited).await,
            },
            Standing::Due => self.refresh_early().await,
            Standing::Unusable => self.refresh_and_wait(seen, Recheck::RateLimited).await,
        }
    }

    /// The token is valid but due: one caller refreshes (or re-reads), if
    /// the schedule allows; everybody keeps the valid token until a new one
    /// is in, but only while it is still valid once the attempt is over.
    async fn refresh_early(self: &Arc<Self>) -> Result<Arc<Token>, B::Error> {
        if let Ok(mut run) = self.run.try_lock() {
            match self.attempt_early(&mut run).await {
                Some(Ok(token)) => return Ok(token),
                Some(Err(e)) => tracing::warn!(
                    "refreshing ahead of expiry failed; the valid token stays in use: {e}"
                ),
                None => {}
            }
        }
        let current = self.slot.load();
        match usable(current.as_ref(), self.now()) {
            Some(token) => Ok(token),
            // Time passed while the backend or the server was slow, or the
            // backend no longer holds the grant.
            None => self.refresh_and_wait(current, Recheck::RateLimited).await,
        }
    }

    /// The early attempt, if a dead grant, the schedule or a token fresh by
    /// now does not make it needless.
    async fn attempt_early(
        self: &Arc<Self>,
        run: &mut Run<B>,
    ) -> Option<Result<Arc<Token>, B::Error>> {
        // A dead grant's valid token is kept, unless a new login is there.
        // (With no dead grant, `revive` answers true at once.)
        if !matches!(self.revive(run, Recheck::RateLimited).await, Ok(true)) {
            return None;
        }
        if run.waiting(Instant::now()).is_some() {
            return None;
        }
        // Read again: the token may have been refused while the backend was
        // read, or be fresh again after the clock was set back.
        let current = self.slot.load()?;
        let now = self.now();
        match current.standing(now) {
            Standing::Fresh => Some(Ok(current.token.clone())),
            Standing::Due if !current.refresh_due(now) => {
                self.revalidate(run, &current).await;
                None
            }
            _ => Some(self.attempt(run, Some(current)).await),
        }
    }

    /// Re-reads the backend for a token that is fresh but was read long
    /// ago: another process may have replaced it, removed it or found its
    /// grant dead. A failed read keeps the token in use (an outage of the
    /// backend costs nothing until the token falls due) and is tried again
    /// after [`REAUTHORIZATION_RECHECK`].
    async fn revalidate(&self, run: &mut Run<B>, current: &Arc<Current>) {
        match self.backend.peek().await {
            Ok(Stored::Token { token, arrived }) => {
                let same = token.access_token() == current.token.access_token();
                let next = self.assess(token, arrived);
                let next = self.slot.install(next);
                if !same {
                    tracing::debug!("adopting the token another process wrote");
                    self.changed(&next.token);
                }
            }
            Ok(Stored::Missing) => {
                let e = self.backend.error(Error::NoToken);
                self.bury(run, e, Some(current.token.access_token()));
                self.slot.clear();
            }
            Ok(Stored::Dead(e)) => {
                self.bury(run, e, Some(current.token.access_token()));
                self.slot.clear();
            }
            Err(e) => {
                tracing::warn!("re-reading the token store failed; the token stays in use: {e}");
                let again = self.now().checked_add(REAUTHORIZATION_RECHECK);
                self.slot.install(current.revalidated(again));
            }
        }
    }

    /// No usable token: wait for the record, then take the token another
    /// caller got, or fail at once while the schedule says wait, or make up
    /// to `max_attempts` attempts. Between attempts the record is let go.
    /// A caller that had to queue behind an attempt in flight (it arrived
    /// while the token was being obtained) waits for the next scheduled
    /// attempt when the schedule fails that one, if the wait is within the
    /// retry cap and its attempts; a caller that arrives while the schedule
    /// already says wait (a long outage) fails at once, so callers do not
    /// pile up.
    async fn refresh_and_wait(
        self: &Arc<Self>,
        seen: Option<Arc<Current>>,
        recheck: Recheck,
    ) -> Result<Arc<Token>, B::Error> {
        let mut attempts = 0;
        let mut queued = false;
        loop {
            let mut run = match self.run.try_lock() {
                Ok(run) => run,
                Err(_) => {
                    queued = true;
                    self.run.lock().await
                }
            };
            let current = self.slot.load();
            let replaced = match (&current, &seen) {
                (Some(c), Some(s)) => !Arc::ptr_eq(c, s),
                (Some(_), None) => true,
                (None, _) => false,
            };
            if replaced && let Some(token) = usable(current.as_ref(), self.now()) {
                return Ok(token);
            }
            if let Some(dead) = run.dead.as_ref().map(|d| d.error.clone())
                && !self.revive(&mut run, recheck).await?
            {
                return Err(dead);
            }
            let now = Instant::now();
            if let Some(e) = run.waiting(now) {
                let wait = run.wait_left(now);
                if !(queued
                    && e.is_transient()
                    && attempts < self.policy.max_attempts
                    && wait <= self.policy.retry_cap)
                {
                    return Err(e);
                }
                attempts += 1;
                drop(run);
                tracing::debug!("waiting {wait:?} for the next scheduled attempt: {e}");
                tokio::time::sleep(wait).await;
                continue;
            }
            attempts += 1;
            let e = match self.attempt(&mut run, current).await {
                Ok(token) => return Ok(token),
                Err(e) => e,
            };
            let wait = run.wait_left(Instant::now());
            drop(run);
            if attempts >= self.policy.max_attempts
                || !e.is_transient()
                || wait > self.policy.retry_cap
            {
                return Err(e);
            }
            tracing::debug!("refresh attempt {attempts} failed, retrying in {wait:?}: {e}");
            tokio::time::sleep(wait).await;
        }
    }

    /// One attempt; installs what it obtains and records the outcome in the
    /// shared schedule. A token the server issued unusable (expired, or
    /// with an implausible expiry) was committed, for its refresh token,
    /// but is not installed: the token in use stays until a usable one
    /// comes.
    async fn attempt(
        self: &Arc<Self>,
        run: &mut Run<B>,
        seen: Option<Arc<Current>>,
    ) -> Result<Arc<Token>, B::Error> {
        let e = match self.fetch(run, seen.as_deref()).await {
            Ok(fetched) => match fetched
                .issued
                .then(|| arrival_error(&fetched.current.token, self.now()))
                .flatten()
            {
                Some(e) => self.backend.error(e),
                None => {
                    let current = self.slot.install(fetched.current);
                    self.changed(&current.token);
                    if fetched.issued {
                        // Only an answer from the token endpoint ends its
                        // failures: a token adopted from the backend says
                        // nothing of the endpoint.
                        run.succeeded();
                    }
                    return Ok(current.token.clone());
                }
            },
            Err(e) => e,
        };
        run.failed(&e, &self.policy, Instant::now());
        Err(e)
    }

    fn changed(&self, token: &Token) {
        if let Some(hook) = &self.on_change {
            hook(token);
        }
    }

    /// The backend's token, if it is one to adopt rather than refresh:
    /// another than `seen`, and fresh.
    fn adoptable(&self, stored: &Stored<B::Error>, seen: Option<&AccessToken>) -> Option<Current> {
        match stored {
            Stored::Token { token, arrived } if Some(token.access_token()) != seen => {
                let current = self.assess(token.clone(), *arrived);
                (current.standing(self.now()) == Standing::Fresh).then_some(current)
            }
            _ => None,
        }
    }

    /// One attempt: commit a token a failed commit left behind; or adopt a
    /// fresh token another process (or a login) wrote; or, under the
    /// backend's lock, refresh with the newest refresh token and commit the
    /// result before returning it. `seen` is the token the caller could not
    /// use.
    async fn fetch(
        self: &Arc<Self>,
        run: &mut Run<B>,
        seen: Option<&Current>,
    ) -> Result<Fetched, B::Error> {
        if let Some(fetched) = self.commit_kept(run).await? {
            return Ok(fetched);
        }
        let seen_token = seen.map(|c| c.token.access_token());
        // Without the lock first: another process may have refreshed, and a
        // token nobody needs to refresh needs no lock.
        let stored = self.backend.peek().await?;
        if let Some(current) = self.adoptable(&stored, seen_token) {
            return Ok(Fetched {
                current,
                issued: false,
            });
        }
        self.token_of(run, &stored, seen_token)?;
        let settled = |stored: &Stored<B::Error>| self.adoptable(stored, seen_token).is_some();
        let transaction = self.backend.begin(&settled).await?;
        if let Some(current) = self.adoptable(transaction.stored(), seen_token) {
            tracing::debug!("adopting the token another process committed");
            return Ok(Fetched {
                current,
                issued: false,
            });
        }
        // Not fresh, or the one seen; either way its refresh token is the
        // newest there is (a rotation elsewhere).
        let (base, _) = self.token_of(run, transaction.stored(), seen_token)?;
        let base = base.clone();
        self.refresh(run, transaction, base).await
    }

    /// The token the backend holds, and when it arrived; or the grant's
    /// death, recorded, when it holds none.
    fn token_of<'s>(
        &self,
        run: &mut Run<B>,
        stored: &'s Stored<B::Error>,
        seen: Option<&AccessToken>,
    ) -> Result<(&'s Token, Option<SystemTime>), B::Error> {
        match stored {
            Stored::Token { token, arrived } => Ok((token, *arrived)),
            // Logged out elsewhere: refreshing would write it back.
            Stored::Missing => Err(self.bury(run, self.backend.error(Error::NoToken), seen)),
            Stored::Dead(e) => Err(self.bury(run, e.clone(), seen)),
        }
    }

    /// Refreshes with `base`'s refresh token under `transaction` and
    /// commits the result.
    async fn refresh(
        self: &Arc<Self>,
        run: &mut Run<B>,
        transaction: B::Transaction,
        base: Token,
    ) -> Result<Fetched, B::Error> {
        let Some(refresh_token) = base.refresh_token() else {
            return Err(self
                .bury_for_all(run, transaction, Error::NoRefreshToken, &base)
                .await);
        };
        let answer = match transaction.refresh_budget() {
            None => self.client.refresh(refresh_token).await,
            Some(budget) => {
                match tokio::time::timeout(budget, self.client.refresh(refresh_token)).await {
                    Ok(answer) => answer,
                    Err(_) => {
                        // The server may have rotated the token: nobody may
                        // send the old one before the lock runs out.
                        transaction.abandon();
                        return Err(self.backend.error(Error::RefreshTimedOut { after: budget }));
                    }
                }
            }
        };
        match answer {
            Ok(token) => self.save(run, transaction, token).await,
            Err(e) if e.requires_reauthorization() => {
                Err(self.bury_for_all(run, transaction, e, &base).await)
            }
            // Refused before anything was issued: the refresh token stands,
            // and the lock is released for the next attempt.
            Err(e) => Err(self.backend.error(e)),
        }
    }

    /// Records the grant dead in the backend (for every process) and here.
    async fn bury_for_all(
        &self,
        run: &mut Run<B>,
        mut transaction: B::Transaction,
        reason: Error,
        base: &Token,
    ) -> B::Error {
        if let Err(e) = transaction.bury(&reason, self.now()).await {
            tracing::warn!("the dead grant could not be recorded for other processes: {e}");
        }
        let e = self.backend.error(reason);
        self.bury(run, e, Some(base.access_token()))
    }

    /// Commits a token the server issued; keeps it, with its transaction,
    /// if the commit fails, so a rotated refresh token is never lost.
    async fn save(
        self: &Arc<Self>,
        run: &mut Run<B>,
        mut transaction: B::Transaction,
        token: Token,
    ) -> Result<Fetched, B::Error> {
        let now = self.now();
        match transaction.commit(&token, now).await {
            // In use from now, after a commit that may have been slow: the
            // refusal cool-down runs from here.
            Ok(true) => Ok(Fetched {
                current: self.assess(token, Some(self.now())),
                issued: true,
            }),
            Ok(false) => {
                drop(transaction);
                self.superseded(run).await
            }
            Err(e) => {
                tracing::error!("a refreshed token could not be saved; it is kept in memory: {e}");
                self.keep(run, token, transaction);
                Err(e)
            }
        }
    }

    /// A commit found the backend moved on (a new login): what is there
    /// stands, and is adopted if it can be.
    async fn superseded(&self, run: &mut Run<B>) -> Result<Fetched, B::Error> {
        tracing::warn!("the token store changed during a refresh; what it holds stands");
        let stored = self.backend.peek().await?;
        let (token, arrived) = self.token_of(run, &stored, None)?;
        Ok(Fetched {
            current: self.assess(token.clone(), arrived),
            issued: false,
        })
    }

    /// Keeps a token whose commit failed, with its transaction, and starts
    /// the task that commits it on the shared schedule, so it is committed
    /// even if nobody asks again.
    fn keep(self: &Arc<Self>, run: &mut Run<B>, token: Token, transaction: B::Transaction) {
        run.unsaved = Some(Kept { token, transaction });
        if run.committing {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        run.committing = true;
        // Holds the engine: a map that drops it meanwhile must not lose
        // the token.
        let engine = self.clone();
        runtime.spawn(async move { engine.commit_in_background().await });
    }

    async fn commit_in_background(self: Arc<Self>) {
        loop {
            let wait = {
                let mut run = self.run.lock().await;
                if run.unsaved.is_none() {
                    run.committing = false;
                    return;
                }
                // Never a tight loop, whatever the schedule says.
                run.wait_left(Instant::now()).max(self.policy.retry_base)
            };
            tokio::time::sleep(wait).await;
            let mut run = self.run.lock().await;
            match self.commit_kept(&mut run).await {
                Ok(Some(fetched)) => {
                    let current = self.slot.install(fetched.current);
                    self.changed(&current.token);
                    run.succeeded();
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::error!("a refreshed token is still not saved: {e}");
                    run.failed(&e, &self.policy, Instant::now());
                }
            }
        }
    }

    /// Commits the token a failed commit left behind, before anything else:
    /// it holds the grant's newest refresh token. `Some` when it was
    /// committed and may be handed out; `None` when there was none, the
    /// backend moved on (it stands), or it was committed but is no longer
    /// fresh (the backend now holds it, to be refreshed).
    async fn commit_kept(&self, run: &mut Run<B>) -> Result<Option<Fetched>, B::Error> {
        let Some(mut kept) = run.unsaved.take() else {
            return Ok(None);
        };
        let now = self.now();
        match kept.transaction.commit(&kept.token, now).await {
            Ok(true) => {
                let now = self.now();
                let current = self.assess(kept.token, Some(now));
                // Kept since an earlier attempt, it may now have under a
                // minute left: handed out, it would be refused as if issued
                // expiring, though its refresh token is good.
                let fresh = current.standing(now) == Standing::Fresh
                    && arrival_error(&current.token, now).is_none();
                Ok(fresh.then_some(Fetched {
                    current,
                    issued: true,
                }))
            }
            Ok(false) => {
                tracing::warn!("a kept token was superseded by what the store holds; dropped");
                Ok(None)
            }
            Err(e) => {
                run.unsaved = Some(kept);
                Err(e)
            }
        }
    }

    /// Records that the grant behind `refused` is dead.
    fn bury(&self, run: &mut Run<B>, error: B::Error, refused: Option<&AccessToken>) -> B::Error {
        tracing::warn!("re-authorization required: {error}");
        run.dead = Some(DeadGrant {
            error: error.clone(),
            refused: refused.cloned(),
            checked: Instant::now(),
        });
        error
    }

    /// For a dead grant: whether the backend now holds another token (a
    /// new login), in which case the grant is revived and the next attempt
    /// adopts or refreshes it. Reads the backend at most once per
    /// [`REAUTHORIZATION_RECHECK`] unless `recheck` says now.
    async fn revive(&self, run: &mut Run<B>, recheck: Recheck) -> Result<bool, B::Error> {
        let now = Instant::now();
        let Some(dead) = &mut run.dead else {
            return Ok(true);
        };
        if recheck == Recheck::RateLimited
            && now.saturating_duration_since(dead.checked) < REAUTHORIZATION_RECHECK
        {
            return Ok(false);
        }
        dead.checked = now;
        let refused = dead.refused.clone();
        if let Stored::Token { token, .. } = self.backend.peek().await?
            && Some(token.access_token()) != refused.as_ref()
        {
            tracing::info!("a new login was saved to the store; using it");
            run.dead = None;
            // The dead grant's last error no longer stands; the count of
            // failures does, as it is the endpoint's, not the grant's.
            run.not_before = None;
            run.last_error = None;
            return Ok(true);
        }
        Ok(false)
    }
}

/// The token of `current` if it may be handed out at `now` (fresh, or due
/// but valid).
fn usable(current: Option<&Arc<Current>>, now: SystemTime) -> Option<Arc<Token>> {
    current
        .filter(|c| c.standing(now) != Standing::Unusable)
        .map(|c| c.token.clone())
}
