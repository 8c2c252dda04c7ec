//! The current token, with its schedule: what every call reads, lock-free.

use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::ArcSwapOption;

use super::policy::{MIN_TOKEN_LIFETIME, Schedule};
use crate::{AccessToken, Token};

/// How the current token stands at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Standing {
    /// Hand it out.
    Fresh,
    /// Still valid for more than [`MIN_TOKEN_LIFETIME`], but its refresh
    /// time (or the time to re-read the store) has come: hand it out, and
    /// refresh if nobody is refreshing.
    Due,
    /// None at all, expired or within [`MIN_TOKEN_LIFETIME`] of it (it could
    /// expire in flight), refused by the API or untrusted: obtain another
    /// before anything is handed out.
    Unusable,
}

/// A token with its schedule, as installed.
pub(crate) struct Current {
    pub(crate) token: Arc<Token>,
    schedule: Schedule,
    /// When it arrived (was issued, or written to a shared store), or the
    /// Unix epoch when that is unknown: a refusal of a token that arrived
    /// within the refusal cool-down causes no refresh.
    pub(crate) arrived: SystemTime,
    /// From this instant on, a call re-reads the store first.
    revalidate_at: Option<SystemTime>,
    /// The API answered 401 to it (see `TokenSource::invalidate`).
    refused: bool,
}

impl Current {
    pub(crate) fn new(
        token: Token,
        schedule: Schedule,
        arrived: SystemTime,
        revalidate_at: Option<SystemTime>,
    ) -> Self {
        Self {
            token: Arc::new(token),
            schedule,
            arrived,
            revalidate_at,
            refused: false,
        }
    }

    /// The same token, to be read from the store again at `revalidate_at`.
    pub(crate) fn revalidated(&self, revalidate_at: Option<SystemTime>) -> Self {
        Self {
            token: self.token.clone(),
            schedule: self.schedule,
            arrived: self.arrived,
            revalidate_at,
            refused: self.refused,
        }
    }

    #[inline]
    fn is_fresh(&self, now: SystemTime) -> bool {
        self.schedule.usable
            && !self.refused
            && self.schedule.refresh_at.is_none_or(|at| now < at)
            && self.revalidate_at.is_none_or(|at| now < at)
    }

    /// Whether its refresh time has come (rather than only the time to
    /// re-read the store).
    pub(crate) fn refresh_due(&self, now: SystemTime) -> bool {
        !self.schedule.usable
            || self.refused
            || self.schedule.refresh_at.is_some_and(|at| now >= at)
    }

    pub(crate) fn standing(&self, now: SystemTime) -> Standing {
        if self.is_fresh(now) {
            Standing::Fresh
        } else if self.schedule.usable
            && !self.refused
            && !self.token.expires_within(MIN_TOKEN_LIFETIME, now)
        {
            Standing::Due
        } else {
            Standing::Unusable
        }
    }
}

/// How `current` (none: no token at all) stands at `now`.
pub(crate) fn standing(current: Option<&Current>, now: SystemTime) -> Standing {
    current.map_or(Standing::Unusable, |c| c.standing(now))
}

/// Holds the current token, if any. Every change is one atomic swap of a
/// whole [`Current`], so a reader sees a token and its schedule together.
pub(crate) struct Slot {
    current: ArcSwapOption<Current>,
}

impl Slot {
    pub(crate) fn new(current: Option<Current>) -> Self {
        Self {
            current: ArcSwapOption::from(current.map(Arc::new)),
        }
    }

    /// The hot path: the token if it is fresh at `now`.
    #[inline]
    pub(crate) fn fresh(&self, now: SystemTime) -> Option<Arc<Token>> {
        let current = self.current.load();
        match &*current {
            Some(current) if current.is_fresh(now) => Some(current.token.clone()),
            _ => None,
        }
    }

    pub(crate) fn load(&self) -> Option<Arc<Current>> {
        self.current.load_full()
    }

    pub(crate) fn install(&self, current: Current) -> Arc<Current> {
        let current = Arc::new(current);
        self.current.store(Some(current.clone()));
        current
    }

    /// Forgets the token: the store no longer holds it (the account was
    /// removed, or its grant died elsewhere).
    pub(crate) fn clear(&self) {
        self.current.store(None);
    }

    /// Marks `token` refused if it is the current token and not refused
    /// yet; whether it did. A token already replaced is left alone, and a
    /// refresh that replaces it meanwhile is never undone.
    pub(crate) fn refuse(&self, token: &AccessToken) -> bool {
        let Some(seen) = self.current.load_full() else {
            return false;
        };
        if seen.refused || seen.token.access_token() != token {
            return false;
        }
        let refused = Arc::new(Current {
            refused: true,
            ..seen.revalidated(seen.revalidate_at)
        });
        let before = self
            .current
            .compare_and_swap(&Some(seen.clone()), Some(refused));
        before.as_ref().is_some_and(|b| Arc::ptr_eq(b, &seen))
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
            SystemTime::UNIX_EPOCH,
            None,
        )
    }

    #[test]
    fn standing_follows_the_schedule_and_the_expiry() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let s = Duration::from_secs;
        let c = current("a", Some(t0 + s(200)), Some(t0 + s(50)));
        assert_eq!(c.standing(t0), Standing::Fresh);
        assert_eq!(c.standing(t0 + s(49)), Standing::Fresh);
        assert_eq!(c.standing(t0 + s(50)), Standing::Due);
        assert_eq!(c.standing(t0 + s(139)), Standing::Due);
        // Within a minute of expiry it could expire in flight.
        assert_eq!(c.standing(t0 + s(140)), Standing::Unusable);
        assert_eq!(c.standing(t0 + s(200)), Standing::Unusable);
        assert!(!c.refresh_due(t0 + s(49)) && c.refresh_due(t0 + s(50)));
        let forever = current("b", None, None);
        assert_eq!(forever.standing(t0 + s(1 << 40)), Standing::Fresh);
        let untrusted = Current::new(
            Token::new(AccessToken::new("c"), None, None, GrantedScopes::default()),
            Schedule {
                refresh_at: None,
                usable: false,
            },
            SystemTime::UNIX_EPOCH,
            None,
        );
        assert_eq!(untrusted.standing(t0), Standing::Unusable);
        assert_eq!(standing(None, t0), Standing::Unusable);
    }

    #[test]
    fn a_token_due_for_a_reread_only_is_due_but_not_for_a_refresh() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let s = Duration::from_secs;
        let c = current("a", Some(t0 + s(100)), Some(t0 + s(50))).revalidated(Some(t0 + s(30)));
        assert_eq!(c.standing(t0 + s(29)), Standing::Fresh);
        assert_eq!(c.standing(t0 + s(30)), Standing::Due);
        assert!(!c.refresh_due(t0 + s(30)));
        assert!(c.refresh_due(t0 + s(50)));
    }

    #[test]
    fn refusing_marks_only_the_current_token_once() {
        let slot = Slot::new(Some(current("a", None, None)));
        let now = SystemTime::now();
        assert!(!slot.refuse(&AccessToken::new("other")));
        assert!(slot.fresh(now).is_some());
        assert!(slot.refuse(&AccessToken::new("a")));
        assert!(!slot.refuse(&AccessToken::new("a")), "once");
        assert!(slot.fresh(now).is_none());
        assert_eq!(standing(slot.load().as_deref(), now), Standing::Unusable);
        slot.install(current("b", None, None));
        assert!(!slot.refuse(&AccessToken::new("a")), "a replaced token");
        assert!(slot.fresh(now).is_some());
        slot.clear();
        assert!(slot.fresh(now).is_none());
        assert!(!slot.refuse(&AccessToken::new("b")), "nothing to refuse");
    }
}
