//! When to refresh and how long to wait after a failure: pure functions of
//! a token, the time and the count of failures, so they can be read and
//! tested alone.

use std::time::{Duration, SystemTime};

use crate::{Error, Token};

/// How long before expiry a token is refreshed, by default. Medium's access
/// tokens live 60 days: refreshing one a day early wastes under 2% of its
/// life and leaves a whole day of retries to ride out a Medium outage, a
/// network problem or a laptop asleep over the refresh time before any call
/// fails.
pub const DEFAULT_REFRESH_MARGIN: Duration = Duration::from_secs(24 * 60 * 60);

/// The most by which a refresh is moved earlier at random, by default, so a
/// fleet that logged in together does not refresh at one instant.
pub const DEFAULT_REFRESH_JITTER: Duration = Duration::from_secs(60 * 60);

/// First wait after a failed refresh; it doubles with each failure in a row.
pub const DEFAULT_RETRY_BASE: Duration = Duration::from_millis(200);

/// Longest wait between refresh attempts, and the longest a caller sleeps
/// between two attempts of its own before it gets the error instead.
pub const DEFAULT_RETRY_CAP: Duration = Duration::from_secs(10);

/// Longest `Retry-After` honoured; a longer one is cut to this, so a
/// misconfigured server cannot stall every caller for hours.
pub const RETRY_AFTER_CAP: Duration = Duration::from_secs(60);

/// Expiries further away than this are not trusted: Medium's tokens live 60
/// days, and ten years is beyond any OAuth server's. A server that sends
/// microseconds where Medium sends milliseconds lands millennia away, and
/// believing it would mean never refreshing.
pub const MAX_PLAUSIBLE_LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 60 * 60);

/// A token issued with less life than this is not handed out: each would be
/// due again within seconds, one refresh per call. No OAuth server issues
/// tokens this short on purpose; a clock that runs ahead of the server's
/// makes them look so.
pub const MIN_TOKEN_LIFETIME: Duration = Duration::from_secs(60);

/// The longest wait between refresh attempts that can be configured: a
/// day, the default refresh margin. Waiting longer would let a token expire
/// between two attempts of a refresh begun ahead of time.
pub const LONGEST_RETRY_WAIT: Duration = Duration::from_secs(24 * 60 * 60);

/// Attempts one caller makes before the error reaches it, by default.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 4;

/// After a token the API refused (HTTP 401) has been replaced, a refusal of
/// a token that arrived less than this ago causes no refresh: it reaches the
/// caller. A fresh token refused again means the API refuses this grant's
/// tokens (a revoked app, a missing scope, a server fault), which another
/// refresh cannot cure; it would only cost a request (and perhaps a
/// rotation) per call. A minute bounds that to one refresh a minute while
/// recovering within a minute once the cause is fixed. Judged by when the
/// token arrived, which a shared store records, so the bound holds across
/// every process and replica that shares it.
pub const REFUSAL_COOLDOWN: Duration = Duration::from_secs(60);

/// When an engine refreshes, how it retries, and how often it re-reads its
/// store: the settings of one [`Engine`](crate::engine::Engine), with the
/// defaults of a [`RefreshingTokenSource`](crate::RefreshingTokenSource).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefreshPolicy {
    /// How long before expiry a token is refreshed (default
    /// [`DEFAULT_REFRESH_MARGIN`]). A token that arrived with less than
    /// twice that is refreshed halfway through the life it arrived with
    /// instead, so short-lived tokens are not refreshed on every call.
    pub margin: Duration,
    /// Up to this much earlier still, at random, drawn once per token
    /// (default [`DEFAULT_REFRESH_JITTER`]), so a fleet that logged in
    /// together does not refresh at one instant.
    pub jitter: Duration,
    /// First wait after a failure; it doubles with each failure in a row
    /// (default [`DEFAULT_RETRY_BASE`]; at most [`LONGEST_RETRY_WAIT`]).
    pub retry_base: Duration,
    /// Longest wait between attempts, and the longest a caller sleeps for a
    /// scheduled attempt before it gets the error instead (default
    /// [`DEFAULT_RETRY_CAP`]; at most [`LONGEST_RETRY_WAIT`]).
    pub retry_cap: Duration,
    /// Attempts one caller makes, or waits for, before the error reaches it
    /// (default [`DEFAULT_MAX_ATTEMPTS`]; at least 1).
    pub max_attempts: u32,
    /// Re-read the store this long after a token was last read or
    /// installed, even while it is fresh, so a removal or a new login
    /// written by another process reaches this one; `None` (the default):
    /// only when the token falls due.
    pub revalidate: Option<Duration>,
}

impl Default for RefreshPolicy {
    fn default() -> Self {
        Self {
            margin: DEFAULT_REFRESH_MARGIN,
            jitter: DEFAULT_REFRESH_JITTER,
            retry_base: DEFAULT_RETRY_BASE,
            retry_cap: DEFAULT_RETRY_CAP,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            revalidate: None,
        }
    }
}

/// When a token is to be refreshed, and whether it may be handed out at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Schedule {
    /// From this instant on, calls refresh first; `None` for a token that
    /// never expires.
    pub(crate) refresh_at: Option<SystemTime>,
    /// False for a token whose expiry is not to be trusted.
    pub(crate) usable: bool,
}

impl RefreshPolicy {
    /// The same policy with its waits and attempts kept within bounds: no
    /// wait over [`LONGEST_RETRY_WAIT`] (the clock arithmetic of a schedule
    /// then cannot overflow), at least one attempt.
    pub(crate) fn bounded(mut self) -> Self {
        self.retry_base = self.retry_base.min(LONGEST_RETRY_WAIT);
        self.retry_cap = self.retry_cap.min(LONGEST_RETRY_WAIT);
        self.max_attempts = self.max_attempts.max(1);
        self.revalidate = self.revalidate.map(|d| d.min(LONGEST_RETRY_WAIT));
        self
    }

    /// The schedule of `token`, judged at `now`, which arrived at `since`
    /// (`now` when unknown). `jitter_fraction` (0 to 1) is drawn by the
    /// caller, once per token, so the time checked and the time kept are
    /// one.
    pub(crate) fn schedule(
        &self,
        token: &Token,
        now: SystemTime,
        since: SystemTime,
        jitter_fraction: f64,
    ) -> Schedule {
        match token.expires_at() {
            None => Schedule {
                refresh_at: None,
                usable: true,
            },
            Some(expires) if implausible(expires, now) => Schedule {
                refresh_at: Some(now),
                usable: false,
            },
            Some(expires) => Schedule {
                // A writer whose clock runs ahead says it arrived later
                // than now; it arrived by now at the latest.
                refresh_at: Some(self.refresh_at(expires, since.min(now), jitter_fraction)),
                usable: true,
            },
        }
    }

    /// `margin` plus a share of `jitter` before expiry, but no earlier than
    /// halfway through the life it had at `since`, so a short-lived token is
    /// not refreshed on every call; and never later than
    /// [`MIN_TOKEN_LIFETIME`] before expiry, so no token is handed out fresh
    /// to expire in flight (a token kept through a long outage, or adopted
    /// from a store, can arrive with seconds left).
    fn refresh_at(
        &self,
        expires: SystemTime,
        since: SystemTime,
        jitter_fraction: f64,
    ) -> SystemTime {
        let life = expires.duration_since(since).unwrap_or(Duration::ZERO);
        // `mul_f64` panics past `Duration::MAX`; a fraction never adds more
        // than the whole jitter.
        let jitter = Duration::try_from_secs_f64(
            self.jitter.as_secs_f64() * jitter_fraction.clamp(0.0, 1.0),
        )
        .map_or(self.jitter, |j| j.min(self.jitter));
        let early = self
            .margin
            .saturating_add(jitter)
            .min(life / 2)
            .max(MIN_TOKEN_LIFETIME);
        expires.checked_sub(early).unwrap_or(expires)
    }

    /// The wait after the `failures`-th failure in a row (1 for the first):
    /// the base, doubling, at most the cap; or the server's `Retry-After`
    /// (at most [`RETRY_AFTER_CAP`]) when that is longer. The one formula
    /// every caller's attempts follow.
    pub(crate) fn retry_delay(&self, failures: u32, retry_after: Option<Duration>) -> Duration {
        let backoff = doubling(self.retry_base, self.retry_cap, failures);
        retry_after.map_or(backoff, |asked| backoff.max(asked.min(RETRY_AFTER_CAP)))
    }
}

/// The `n`-th wait (1 for the first; 0 counts as 1) of a schedule that
/// starts at `first` and doubles up to `cap`: the one backoff formula of
/// the workspace, for refresh retries and for polls of a lock another
/// process holds alike.
pub fn doubling(first: Duration, cap: Duration, n: u32) -> Duration {
    let doublings = n.saturating_sub(1).min(u32::BITS - 1);
    first.saturating_mul(1 << doublings).min(cap)
}

fn implausible(expires: SystemTime, now: SystemTime) -> bool {
    expires
        .duration_since(now)
        .is_ok_and(|left| left > MAX_PLAUSIBLE_LIFETIME)
}

/// Why a token just issued by the server cannot be handed out at `now`, if
/// it cannot.
pub(crate) fn arrival_error(token: &Token, now: SystemTime) -> Option<Error> {
    let expires_at = token.expires_at()?;
    let life = expires_at.duration_since(now).unwrap_or(Duration::ZERO);
    if life < MIN_TOKEN_LIFETIME {
        Some(Error::ExpiredOnArrival { expires_at })
    } else if implausible(expires_at, now) {
        Some(Error::ImplausibleExpiry { expires_at })
    } else {
        None
    }
}

/// A fraction from 0 to 1 drawn from the OS's generator (no jitter if it
/// fails: the refresh is then merely not spread).
pub(crate) fn random_fraction() -> f64 {
    let mut bytes = [0u8; 8];
    if getrandom::getrandom(&mut bytes).is_err() {
        return 0.0;
    }
    u64::from_le_bytes(bytes) as f64 / u64::MAX as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AccessToken, GrantedScopes};

    const DAY: Duration = Duration::from_secs(24 * 3600);

    fn expiring(at: Option<SystemTime>) -> Token {
        Token::new(AccessToken::new("a"), None, at, GrantedScopes::default())
    }

    fn policy() -> RefreshPolicy {
        RefreshPolicy {
            margin: DAY,
            jitter: Duration::from_secs(3600),
            retry_base: Duration::from_millis(200),
            retry_cap: Duration::from_secs(10),
            ..RefreshPolicy::default()
        }
    }

    #[test]
    fn a_long_lived_token_is_refreshed_margin_plus_jitter_early() {
        let now = SystemTime::UNIX_EPOCH + 1000 * DAY;
        let expires = now + 60 * DAY;
        let token = expiring(Some(expires));
        let at = |fraction| policy().schedule(&token, now, now, fraction).refresh_at;
        assert_eq!(at(0.0), Some(expires - DAY));
        assert_eq!(at(1.0), Some(expires - DAY - Duration::from_secs(3600)));
        assert_eq!(at(0.5), Some(expires - DAY - Duration::from_secs(1800)));
        assert_eq!(at(7.0), at(1.0), "the fraction is clamped");
        assert!(policy().schedule(&token, now, now, 0.3).usable);
    }

    #[test]
    fn a_short_lived_token_is_refreshed_halfway_through_its_life() {
        let now = SystemTime::UNIX_EPOCH + 1000 * DAY;
        let s = Duration::from_secs;
        let token = expiring(Some(now + s(1000)));
        let schedule = policy().schedule(&token, now, now, 1.0);
        assert_eq!(schedule.refresh_at, Some(now + s(500)));
        // Halfway through the life it arrived with, not the life left when
        // judged: judged again later (another replica, a re-read), it falls
        // due at the same time.
        let later = policy().schedule(&token, now + s(400), now, 1.0);
        assert_eq!(later.refresh_at, Some(now + s(500)));
        // An arrival said to be in the future is taken as now.
        let ahead = policy().schedule(&token, now, now + s(400), 1.0);
        assert_eq!(ahead.refresh_at, Some(now + s(500)));
    }

    #[test]
    fn no_token_is_fresh_within_a_minute_of_its_expiry() {
        let now = SystemTime::UNIX_EPOCH + 1000 * DAY;
        let s = Duration::from_secs;
        // Halfway would be 50 s before expiry: too close.
        let token = expiring(Some(now + s(100)));
        let schedule = policy().schedule(&token, now, now, 1.0);
        assert_eq!(schedule.refresh_at, Some(now + s(100) - MIN_TOKEN_LIFETIME));
        // With no margin at all, a minute before expiry still.
        let none = RefreshPolicy {
            margin: Duration::ZERO,
            jitter: Duration::ZERO,
            ..policy()
        };
        let long = expiring(Some(now + DAY));
        assert_eq!(
            none.schedule(&long, now, now, 1.0).refresh_at,
            Some(now + DAY - MIN_TOKEN_LIFETIME)
        );
    }

    #[test]
    fn an_expired_token_is_due_a_minute_before_its_expiry() {
        let now = SystemTime::UNIX_EPOCH + 1000 * DAY;
        let expires = now - Duration::from_secs(60);
        let schedule = policy().schedule(&expiring(Some(expires)), now, now, 1.0);
        assert_eq!(schedule.refresh_at, Some(expires - MIN_TOKEN_LIFETIME));
        assert!(schedule.usable);
    }

    #[test]
    fn tokens_without_expiry_are_never_due_and_implausible_ones_never_usable() {
        let now = SystemTime::UNIX_EPOCH + 1000 * DAY;
        let never = policy().schedule(&expiring(None), now, now, 0.5);
        assert_eq!(never.refresh_at, None);
        assert!(never.usable);
        let edge = policy().schedule(&expiring(Some(now + MAX_PLAUSIBLE_LIFETIME)), now, now, 0.0);
        assert!(edge.usable, "exactly the maximum is still plausible");
        let beyond = now + MAX_PLAUSIBLE_LIFETIME + Duration::from_millis(1);
        let far = policy().schedule(&expiring(Some(beyond)), now, now, 0.0);
        assert!(!far.usable);
        assert_eq!(far.refresh_at, Some(now));
    }

    #[test]
    fn delays_double_from_the_base_up_to_the_cap() {
        let ms = |n| Duration::from_millis(n);
        let delays: Vec<_> = (1..=8).map(|n| policy().retry_delay(n, None)).collect();
        assert_eq!(
            delays,
            [
                ms(200),
                ms(400),
                ms(800),
                ms(1600),
                ms(3200),
                ms(6400),
                ms(10_000),
                ms(10_000)
            ]
        );
        assert_eq!(policy().retry_delay(0, None), ms(200));
        assert_eq!(policy().retry_delay(u32::MAX, None), ms(10_000));
    }

    #[test]
    fn doubling_starts_at_its_first_wait_and_stops_at_its_cap() {
        let ms = Duration::from_millis;
        let waits: Vec<_> = (0..=7).map(|n| doubling(ms(20), ms(500), n)).collect();
        assert_eq!(
            waits,
            [
                ms(20),
                ms(20),
                ms(40),
                ms(80),
                ms(160),
                ms(320),
                ms(500),
                ms(500)
            ]
        );
        assert_eq!(doubling(ms(20), ms(500), u32::MAX), ms(500));
        assert_eq!(doubling(Duration::MAX, Duration::MAX, 3), Duration::MAX);
    }

    #[test]
    fn retry_after_wins_when_longer_up_to_its_cap() {
        let secs = Duration::from_secs;
        assert_eq!(policy().retry_delay(1, Some(secs(3))), secs(3));
        assert_eq!(policy().retry_delay(7, Some(secs(3))), secs(10));
        assert_eq!(policy().retry_delay(1, Some(secs(3600))), RETRY_AFTER_CAP);
        assert_eq!(
            policy().retry_delay(1, Some(Duration::ZERO)),
            Duration::from_millis(200)
        );
    }

    #[test]
    fn arrivals_expired_or_implausible_are_errors() {
        let now = SystemTime::UNIX_EPOCH + 1000 * DAY;
        assert!(arrival_error(&expiring(None), now).is_none());
        assert!(arrival_error(&expiring(Some(now + DAY)), now).is_none());
        assert!(matches!(
            arrival_error(&expiring(Some(now)), now),
            Some(Error::ExpiredOnArrival { .. })
        ));
        let short = now + MIN_TOKEN_LIFETIME - Duration::from_millis(1);
        assert!(matches!(
            arrival_error(&expiring(Some(short)), now),
            Some(Error::ExpiredOnArrival { .. })
        ));
        assert!(arrival_error(&expiring(Some(now + MIN_TOKEN_LIFETIME)), now).is_none());
        assert!(matches!(
            arrival_error(&expiring(Some(now + 2 * MAX_PLAUSIBLE_LIFETIME)), now),
            Some(Error::ImplausibleExpiry { .. })
        ));
    }

    #[test]
    fn huge_settings_do_not_overflow() {
        let huge = RefreshPolicy {
            margin: Duration::MAX,
            jitter: Duration::MAX,
            retry_base: Duration::MAX,
            retry_cap: Duration::MAX,
            ..RefreshPolicy::default()
        };
        let now = SystemTime::UNIX_EPOCH + 1000 * DAY;
        let token = expiring(Some(now + DAY));
        assert_eq!(
            huge.schedule(&token, now, now, 1.0).refresh_at,
            Some(now + DAY / 2)
        );
        assert_eq!(huge.retry_delay(40, None), Duration::MAX);
    }

    #[test]
    fn random_fractions_are_spread_fractions() {
        let draws: Vec<f64> = (0..100).map(|_| random_fraction()).collect();
        assert!(draws.iter().all(|f| (0.0..=1.0).contains(f)));
        // A fixed draw would put a whole fleet's refreshes at one instant.
        // (All 100 on one side of a half: a chance of 2^-99.)
        assert!(draws.iter().any(|f| *f < 0.5) && draws.iter().any(|f| *f > 0.5));
    }

    #[test]
    fn by_default_a_day_early_with_up_to_an_hour_of_jitter_and_ten_years_trusted() {
        let policy = RefreshPolicy::default();
        let now = SystemTime::UNIX_EPOCH + 1000 * DAY;
        let expires = now + 60 * DAY;
        let token = expiring(Some(expires));
        let at = |fraction| policy.schedule(&token, now, now, fraction).refresh_at;
        assert_eq!(at(0.0), Some(expires - DAY));
        assert_eq!(at(1.0), Some(expires - DAY - Duration::from_secs(3600)));
        let years = |n: u64| Duration::from_secs(n * 365 * 24 * 3600);
        assert!(
            policy
                .schedule(&expiring(Some(now + years(10))), now, now, 0.0)
                .usable
        );
        assert!(
            !policy
                .schedule(&expiring(Some(now + years(11))), now, now, 0.0)
                .usable
        );
    }
}
