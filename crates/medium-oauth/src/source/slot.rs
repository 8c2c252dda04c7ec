//! The current token, with its schedule: what every call reads, lock-free.

use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::ArcSwap;

use super::policy::Schedule;
use crate::{AccessToken, Token};

/// How the current token stands at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Standing {
    /// Hand it out.
    Fresh,
    /// Still valid, but its refresh time has come: hand it out, and refresh
    /// if nobody is refreshing.
    Due,
    /// Expired, refused by the API or untrusted: refresh before anything is
    /// handed out.
    Unusable,
}

/// A token with its schedule, as installed.
pub(crate) struct Current {
    pub(crate) token: Arc<Token>,
    schedule: Schedule,
    /// The API answered 401 to it (see `TokenSource::invalidate`).
    refused: bool,
}

impl Current {
    pub(crate) fn new(token: Token, schedule: Schedule) -> Self {
        Self {
            token: Arc::new(token),
            schedule,
            refused: false,
        }
    }

    /// Whether the API refused it.
    pub(crate) fn is_refused(&self) -> bool {
        self.refused
    }

    #[inline]
    fn is_fresh(&self, now: SystemTime) -> bool {
        self.schedule.usable && !self.refused && self.schedule.refresh_at.is_none_or(|at| now < at)
    }

    pub(crate) fn standing(&self, now: SystemTime) -> Standing {
        if self.is_fresh(now) {
            Standing::Fresh
        } else if self.schedule.usable
            && !self.refused
            && !self.token.expires_within(std::time::Duration::ZERO, now)
        {
            Standing::Due
        } else {
            Standing::Unusable
        }
    }
}

/// Holds the current token. Every change is one atomic swap of a whole
/// [`Current`], so a reader sees a token and its schedule together.
pub(crate) struct Slot {
    current: ArcSwap<Current>,
}

impl Slot {
    pub(crate) fn new(current: Current) -> Self {
        Self {
            current: ArcSwap::from_pointee(current),
        }
    }

    /// The hot path: the token if it is fresh at `now`.
    #[inline]
    pub(crate) fn fresh(&self, now: SystemTime) -> Option<Arc<Token>> {
        let current = self.current.load();
        current.is_fresh(now).then(|| current.token.clone())
    }

    pub(crate) fn load(&self) -> Arc<Current> {
        self.current.load_full()
    }

    pub(crate) fn install(&self, current: Current) -> Arc<Current> {
        let current = Arc::new(current);
        self.current.store(current.clone());
        current
    }

    /// Marks `token` refused if it is the current token and not refused
    /// yet; whether it did. A token already replaced is left alone, and a
    /// refresh that replaces it meanwhile is never undone.
    pub(crate) fn refuse(&self, token: &AccessToken) -> bool {
        let seen = self.current.load_full();
        if seen.refused || seen.token.access_token() != token {
            return false;
        }
        let refused = Arc::new(Current {
            token: seen.token.clone(),
            schedule: seen.schedule,
            refused: true,
        });
        let before = self.current.compare_and_swap(&seen, refused);
        Arc::ptr_eq(&before, &seen)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::GrantedScopes;

    fn current(name: &str, expires: Option<SystemTime>, refresh_at: Option<SystemTime>) -> Current {
        Current::new(
            Token::new(
                AccessToken::new(name),
                None,
                expires,
                GrantedScopes::default(),
            ),
            Schedule {
                refresh_at,
                usable: true,
            },
        )
    }

    #[test]
    fn standing_follows_the_schedule_and_the_expiry() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let s = Duration::from_secs;
        let c = current("a", Some(t0 + s(100)), Some(t0 + s(50)));
        assert_eq!(c.standing(t0), Standing::Fresh);
        assert_eq!(c.standing(t0 + s(49)), Standing::Fresh);
        assert_eq!(c.standing(t0 + s(50)), Standing::Due);
        assert_eq!(c.standing(t0 + s(99)), Standing::Due);
        assert_eq!(c.standing(t0 + s(100)), Standing::Unusable);
        let forever = current("b", None, None);
        assert_eq!(forever.standing(t0 + s(1 << 40)), Standing::Fresh);
        let untrusted = Current::new(
            Token::new(AccessToken::new("c"), None, None, GrantedScopes::default()),
            Schedule {
                refresh_at: None,
                usable: false,
            },
        );
        assert_eq!(untrusted.standing(t0), Standing::Unusable);
    }

    #[test]
    fn refusing_marks_only_the_current_token_once() {
        let slot = Slot::new(current("a", None, None));
        let now = SystemTime::now();
        assert!(!slot.refuse(&AccessToken::new("other")));
        assert!(slot.fresh(now).is_some());
        assert!(slot.refuse(&AccessToken::new("a")));
        assert!(!slot.refuse(&AccessToken::new("a")), "once");
        assert!(slot.fresh(now).is_none());
        assert_eq!(slot.load().standing(now), Standing::Unusable);
        slot.install(current("b", None, None));
        assert!(!slot.refuse(&AccessToken::new("a")), "a replaced token");
        assert!(slot.fresh(now).is_some());
    }
}
