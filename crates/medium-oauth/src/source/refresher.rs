//! Getting a new token: under the store's lock, adopt what another process
//! saved, or refresh and save before anything is handed out. One caller at
//! a time; the [`Run`] it holds records the failures every caller shares.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, MutexGuard};
use tokio::time::Instant;

use super::clock::WallClock;
use super::policy::{Policy, arrival_error, random_fraction};
use super::slot::{Current, Standing};
use crate::store::TokenStore;
use crate::{AccessToken, Error, OAuthClient, Token};

/// How often a source whose grant is dead re-reads its store for a new
/// login: often enough that a login in another process is picked up within
/// a second, rarely enough that a service calling in a loop reads a file
/// once a second rather than once a call.
pub const REAUTHORIZATION_RECHECK: Duration = Duration::from_secs(1);

/// The shared record of attempts, held (locked) by the one caller that
/// refreshes.
#[derive(Default)]
pub(crate) struct Run {
    /// Failures in a row.
    failures: u32,
    /// No attempt before this; calls that need one fail with `last_error`.
    not_before: Option<Instant>,
    last_error: Option<Error>,
    /// The grant was refused: nothing is sent until the store holds another.
    dead: Option<DeadGrant>,
    /// A refreshed token the store refused to save. It holds the newest
    /// refresh token (the old one may be rotated out), so it is saved before
    /// anything else is tried, and handed out only once saved.
    unsaved: Option<Token>,
}

struct DeadGrant {
    error: Error,
    /// The token whose refresh was refused: the store must hold another.
    refused: AccessToken,
    /// When the store was last read for a new login.
    checked: Instant,
}

/// Whether a dead grant's store may be re-read on this call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Recheck {
    /// At most once per [`REAUTHORIZATION_RECHECK`].
    RateLimited,
    /// Now: an explicit `force_refresh`.
    Now,
}

impl Run {
    /// The error to fail with at once while the schedule forbids an
    /// attempt.
    pub(crate) fn waiting(&self, now: Instant) -> Option<Error> {
        match (self.not_before, &self.last_error) {
            (Some(at), Some(e)) if now < at => Some(e.clone()),
            _ => None,
        }
    }

    /// Time left before the next attempt is allowed.
    pub(crate) fn wait_left(&self, now: Instant) -> Duration {
        self.not_before
            .map_or(Duration::ZERO, |at| at.saturating_duration_since(now))
    }

    pub(crate) fn dead_error(&self) -> Option<Error> {
        self.dead.as_ref().map(|d| d.error.clone())
    }

    pub(crate) fn succeeded(&mut self) {
        self.failures = 0;
        self.not_before = None;
        self.last_error = None;
    }

    pub(crate) fn failed(&mut self, error: &Error, policy: &Policy, now: Instant) {
        self.failures = self.failures.saturating_add(1);
        // The builder keeps every delay within a day, so this cannot
        // overflow the clock.
        let delay = policy.retry_delay(self.failures, error.retry_after());
        self.not_before = Some(now + delay);
        self.last_error = Some(error.clone());
    }
}

/// What an attempt obtained.
pub(crate) struct Fetched {
    pub(crate) current: Current,
    /// Issued by the server just now (rather than adopted from the store).
    pub(crate) issued: bool,
}

pub(crate) struct Refresher {
    client: OAuthClient,
    store: Arc<dyn TokenStore>,
    pub(crate) policy: Policy,
    pub(crate) clock: WallClock,
    run: Mutex<Run>,
}

impl Refresher {
    pub(crate) fn new(
        client: OAuthClient,
        store: Arc<dyn TokenStore>,
        policy: Policy,
        clock: WallClock,
    ) -> Self {
        Self {
            client,
            store,
            policy,
            clock,
            run: Mutex::new(Run::default()),
        }
    }

    /// `token` with its schedule drawn now.
    pub(crate) fn assess(&self, token: Token) -> Current {
        let schedule = self
            .policy
            .schedule(&token, self.clock.now(), random_fraction());
        Current::new(token, schedule)
    }

    /// The run, if nobody holds it.
    pub(crate) fn try_run(&self) -> Option<MutexGuard<'_, Run>> {
        self.run.try_lock().ok()
    }

    /// The run, once whoever holds it is done.
    pub(crate) async fn run(&self) -> MutexGuard<'_, Run> {
        self.run.lock().await
    }

    /// For a dead grant: whether the store now holds another token (a new
    /// login), in which case the grant is revived and the next attempt
    /// adopts or refreshes it. Reads the store under its lock, at most once
    /// per [`REAUTHORIZATION_RECHECK`] unless `recheck` says now.
    pub(crate) async fn revive(&self, run: &mut Run, recheck: Recheck) -> Result<bool, Error> {
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
        let _lock = self.store.lock().await?;
        let stored = self.store.load().await?;
        if stored.is_some_and(|s| s.access_token() != &dead.refused) {
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

    /// One attempt, under the store's lock: save a token a failed save left
    /// behind; or adopt a fresh token another process (or a login) saved;
    /// or refresh with the newest refresh token and save the result before
    /// returning it. `seen` is the token the caller could not use.
    pub(crate) async fn fetch(&self, run: &mut Run, seen: &Arc<Token>) -> Result<Fetched, Error> {
        let _lock = self.store.lock().await?;
        if let Some(unsaved) = run.unsaved.take() {
            let fetched = self.save(run, unsaved).await?;
            let now = self.clock.now();
            // Kept since an earlier attempt, it may now have under a minute
            // left: handed out, it would be refused as if issued expiring,
            // though its refresh token is good.
            if fetched.current.standing(now) == Standing::Fresh
                && arrival_error(&fetched.current.token, now).is_none()
            {
                return Ok(fetched);
            }
            // Saved at last, but no longer fresh: refresh with it, the
            // newest refresh token there is.
            return self.refresh(run, fetched.current.token).await;
        }
        let base = match self.store.load().await? {
            None => {
                // Logged out elsewhere: refreshing would write it back.
                return Err(Self::bury(run, Error::NoToken, seen.access_token()));
            }
            Some(stored) if stored.access_token() != seen.access_token() => {
                let current = self.assess(stored);
                if current.standing(self.clock.now()) == Standing::Fresh {
                    tracing::debug!("adopting the token another process saved");
                    return Ok(Fetched {
                        current,
                        issued: false,
                    });
                }
                // Not fresh, but its refresh token is the newest (a rotation
                // elsewhere).
                current.token
            }
            Some(_) => seen.clone(),
        };
        self.refresh(run, base).await
    }

    /// Refreshes with `base`'s refresh token and saves the result.
    async fn refresh(&self, run: &mut Run, base: Arc<Token>) -> Result<Fetched, Error> {
        let Some(refresh_token) = base.refresh_token() else {
            return Err(Self::bury(run, Error::NoRefreshToken, base.access_token()));
        };
        match self.client.refresh(refresh_token).await {
            Ok(token) => self.save(run, token).await,
            Err(e) if e.requires_reauthorization() => Err(Self::bury(run, e, base.access_token())),
            Err(e) => Err(e),
        }
    }

    /// Saves a token the server issued; keeps it for the next attempt if the
    /// store fails, so a rotated refresh token is never lost.
    async fn save(&self, run: &mut Run, token: Token) -> Result<Fetched, Error> {
        if let Err(e) = self.store.save(&token).await {
            tracing::error!("a refreshed token could not be saved; it is kept in memory: {e}");
            run.unsaved = Some(token);
            return Err(e);
        }
        Ok(Fetched {
            current: self.assess(token),
            issued: true,
        })
    }

    /// Records that the grant behind `refused` is dead.
    fn bury(run: &mut Run, error: Error, refused: &AccessToken) -> Error {
        tracing::warn!("re-authorization required: {error}");
        run.dead = Some(DeadGrant {
            error: error.clone(),
            refused: refused.clone(),
            checked: Instant::now(),
        });
        error
    }
}
