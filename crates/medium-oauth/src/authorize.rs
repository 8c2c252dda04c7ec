//! The browser half of the flow: the pending authorization that holds the
//! CSRF `state`, and the checks a callback must pass.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

// tokio's clock, so a test on paused time can expire an authorization.
use tokio::time::Instant;

use crate::redact::quote;
use crate::{AuthorizationCode, CsrfState, Error, ScopeSet};

/// How long a pending authorization may wait for its callback unless the
/// client says otherwise: Medium's codes are short-lived, and 10 minutes is
/// the most RFC 6749 §4.1.2 recommends for a code, so a slower user would get
/// a dead code anyway.
pub const DEFAULT_PENDING_TTL: Duration = Duration::from_secs(10 * 60);

/// An authorization the user has been sent to approve. Made by
/// [`OAuthClient::authorize_url`](crate::OAuthClient::authorize_url), with a
/// fresh random `state` (or resumed from a store shared by processes, see
/// [`PendingAuthorization::resume`]); completes at most once, and not after
/// its time to live.
pub struct PendingAuthorization {
    pub(crate) state: CsrfState,
    pub(crate) requested: ScopeSet,
    pub(crate) created: Instant,
    pub(crate) ttl: Duration,
    pub(crate) completed: AtomicBool,
}

impl std::fmt::Debug for PendingAuthorization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingAuthorization")
            .field("state", &self.state)
            .field("requested", &self.requested)
            .field("age", &self.created.elapsed())
            .field("ttl", &self.ttl)
            .field("completed", &self.completed.load(Ordering::Relaxed))
            .finish()
    }
}

/// A callback that passed every check: it can only be made by
/// [`PendingAuthorization::verify`], and only it can be exchanged for a
/// token, so the CSRF check cannot be skipped.
pub struct VerifiedCallback {
    pub(crate) code: AuthorizationCode,
    pub(crate) requested: ScopeSet,
}

impl std::fmt::Debug for VerifiedCallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifiedCallback")
            .field("code", &self.code)
            .field("requested", &self.requested)
            .finish()
    }
}

impl VerifiedCallback {
    /// The scopes the authorization asked for (the token says which were
    /// granted).
    pub fn requested(&self) -> ScopeSet {
        self.requested
    }
}

impl PendingAuthorization {
    /// The scopes requested.
    pub fn requested(&self) -> ScopeSet {
        self.requested
    }

    /// Whether the time to live has passed.
    pub fn is_expired(&self) -> bool {
        self.created.elapsed() > self.ttl
    }

    /// How long the authorization may still wait for its callback (zero
    /// once expired).
    pub fn expires_in(&self) -> Duration {
        self.ttl.saturating_sub(self.created.elapsed())
    }

    /// The CSRF `state`, for keeping the authorization in a store shared by
    /// several processes, so its callback may land on any of them. It is a
    /// secret: keep it sealed, and compare it only through
    /// [`PendingAuthorization::verify`].
    pub fn state(&self) -> &CsrfState {
        &self.state
    }

    /// An authorization kept by another process (see
    /// [`PendingAuthorization::state`]), pending again here for
    /// `expires_in`. It checks a callback exactly as the original would;
    /// keeping it single use across processes is the shared store's part:
    /// take it out of the store in one atomic step before verifying. The
    /// state must be the one the store kept, never one read from the
    /// callback: the callback would then be checked against itself.
    pub fn resume(state: CsrfState, requested: ScopeSet, expires_in: Duration) -> Self {
        Self {
            state,
            requested,
            created: Instant::now(),
            ttl: expires_in,
            completed: AtomicBool::new(false),
        }
    }

    /// The `state` a callback carries, to find its authorization in a
    /// shared store. [`Error::CsrfMismatch`] when it carries none (or an
    /// empty one), [`Error::InvalidCallback`] when it does not parse; the
    /// match itself is [`PendingAuthorization::verify`]'s.
    pub fn callback_state(callback: &str) -> Result<CsrfState, Error> {
        callback_params(callback)?
            .into_iter()
            .find(|(k, _)| k == "state")
            .filter(|(_, v)| !v.is_empty())
            .map(|(_, v)| CsrfState::new(v))
            .ok_or(Error::CsrfMismatch)
    }

    /// Checks a callback: the full redirect URL, or just its query (with or
    /// without the `?`). In order: the `state` must be present and equal
    /// (compared in constant time), whatever else the callback carries, so a
    /// forged callback (one without this authorization's state, even one
    /// saying `error=access_denied` or nothing at all) is only ever
    /// [`Error::CsrfMismatch`] and cannot end the flow; then the
    /// authorization must be neither completed nor expired; then an `error`
    /// parameter is a denial; then a `code` must be present. A failed check
    /// leaves the authorization pending; success completes it, and a second
    /// success is refused.
    pub fn verify(&self, callback: &str) -> Result<VerifiedCallback, Error> {
        let params = callback_params(callback)?;
        let get = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let state_matches = get("state").is_some_and(|s| CsrfState::new(s) == self.state);
        if !state_matches {
            return Err(Error::CsrfMismatch);
        }
        if self.completed.load(Ordering::Acquire) {
            return Err(Error::AlreadyCompleted);
        }
        if self.is_expired() {
            return Err(Error::AuthorizationExpired);
        }
        if let Some(error) = get("error") {
            // The callback's text is the server's: quoted safely, with the
            // flow's own secrets redacted.
            let secrets = [self.state.expose_secret(), get("code").unwrap_or_default()];
            return Err(Error::Denied {
                error: quote(error, &secrets),
                description: get("error_description").map(|d| quote(d, &secrets)),
            });
        }
        let code = get("code")
            .filter(|c| !c.is_empty())
            .ok_or(Error::MissingCode)?;
        if self.completed.swap(true, Ordering::AcqRel) {
            return Err(Error::AlreadyCompleted);
        }
        Ok(VerifiedCallback {
            code: AuthorizationCode::new(code),
            requested: self.requested,
        })
    }
}

fn callback_params(callback: &str) -> Result<Vec<(String, String)>, Error> {
    let callback = callback.trim();
    let query = match url::Url::parse(callback) {
        // Only the query: a fragment, or a path that looks like a query, is
        // not what the server sent back.
        Ok(url) => url.query().unwrap_or_default().to_owned(),
        Err(url::ParseError::RelativeUrlWithoutBase) => {
            // A query alone, or a path with its query ("/callback?code=…").
            let callback = callback.split('#').next().unwrap_or_default();
            match callback.split_once('?') {
                Some((_, query)) => query.to_owned(),
                // No query at all: no parameters, so no state either.
                None => callback.to_owned(),
            }
        }
        Err(e) => return Err(Error::InvalidCallback(e.to_string())),
    };
    Ok(url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(state: &str) -> PendingAuthorization {
        PendingAuthorization {
            state: CsrfState::new(state),
            requested: ScopeSet::EMPTY,
            created: Instant::now(),
            ttl: DEFAULT_PENDING_TTL,
            completed: AtomicBool::new(false),
        }
    }

    #[test]
    fn accepts_urls_queries_and_paths() {
        for cb in [
            "http://127.0.0.1:1/cb?code=c&state=s",
            "?code=c&state=s",
            "code=c&state=s",
            "/cb?state=s&code=c#frag",
        ] {
            let v = pending("s").verify(cb).unwrap();
            assert_eq!(v.code.expose_secret(), "c", "{cb}");
        }
        assert!(matches!(
            pending("s").verify("http://[::1/cb?state=s&code=c"),
            Err(Error::InvalidCallback(_))
        ));
    }

    const STATE: &str = "a-state-as-long-as-a-real-one";

    #[test]
    fn a_resumed_authorization_checks_as_the_original_and_callbacks_name_their_state() {
        let original = pending(STATE);
        let resumed = PendingAuthorization::resume(
            original.state().clone(),
            ScopeSet::all(),
            Duration::from_secs(60),
        );
        assert_eq!(resumed.requested(), ScopeSet::all());
        assert!(resumed.expires_in() > Duration::from_secs(59));
        assert!(resumed.expires_in() <= Duration::from_secs(60));
        assert!(matches!(
            resumed.verify("?code=c&state=other"),
            Err(Error::CsrfMismatch)
        ));
        let code = resumed.verify(&format!("?code=c&state={STATE}")).unwrap();
        assert_eq!(code.requested(), ScopeSet::all());
        assert!(matches!(
            resumed.verify(&format!("?code=c&state={STATE}")),
            Err(Error::AlreadyCompleted)
        ));
        let dead =
            PendingAuthorization::resume(CsrfState::new(STATE), ScopeSet::EMPTY, Duration::ZERO);
        assert_eq!(dead.expires_in(), Duration::ZERO);

        let state =
            PendingAuthorization::callback_state(&format!("http://h/cb?code=c&state={STATE}"));
        assert_eq!(state.unwrap(), CsrfState::new(STATE));
        for none in ["?code=c", "?code=c&state=", ""] {
            assert!(
                matches!(
                    PendingAuthorization::callback_state(none),
                    Err(Error::CsrfMismatch)
                ),
                "{none}"
            );
        }
        assert!(matches!(
            PendingAuthorization::callback_state("http://[::1/cb?state=s"),
            Err(Error::InvalidCallback(_))
        ));
    }

    #[test]
    fn checks_in_order_state_error_code() {
        let p = pending(STATE);
        assert!(matches!(
            p.verify("?code=c&state=wrong"),
            Err(Error::CsrfMismatch)
        ));
        assert!(matches!(p.verify("?code=c"), Err(Error::CsrfMismatch)));
        assert!(matches!(
            p.verify(&format!("?error=access_denied&state={STATE}")),
            Err(Error::Denied { ref error, .. }) if error == "access_denied"
        ));
        assert!(matches!(
            p.verify(&format!("?state={STATE}")),
            Err(Error::MissingCode)
        ));
        assert!(matches!(
            p.verify(&format!("?state={STATE}&code=")),
            Err(Error::MissingCode)
        ));
        // None of the failures used the authorization up.
        assert!(p.verify(&format!("?state={STATE}&code=c")).is_ok());
        assert!(matches!(
            p.verify(&format!("?state={STATE}&code=c")),
            Err(Error::AlreadyCompleted)
        ));
    }

    /// Regression: an `error=` (or no parameter at all) was acted on before
    /// the state was checked, so anyone who could reach the callback could
    /// end a login in progress.
    #[test]
    fn a_callback_without_the_state_is_a_mismatch_whatever_it_carries() {
        let p = pending(STATE);
        for forged in [
            "",
            "/callback",
            "http://127.0.0.1:1/callback",
            "?error=access_denied",
            "?error=access_denied&state=wrong",
            "?error=%3Cscript%3E&error_description=%1B%5B2J",
            "not a callback",
        ] {
            assert!(
                matches!(p.verify(forged), Err(Error::CsrfMismatch)),
                "{forged:?}"
            );
        }
        // After completion and after expiry too: a forger learns nothing.
        assert!(p.verify(&format!("?state={STATE}&code=c")).is_ok());
        assert!(matches!(
            p.verify("?error=access_denied"),
            Err(Error::CsrfMismatch)
        ));
        let mut old = pending(STATE);
        old.ttl = Duration::ZERO;
        old.created -= Duration::from_millis(1);
        assert!(matches!(old.verify("?code=c"), Err(Error::CsrfMismatch)));
        // The real, still pending, authorization was not used up.
        let q = pending(STATE);
        let _ = q.verify("?error=access_denied");
        assert!(q.verify(&format!("?state={STATE}&code=c")).is_ok());
    }

    #[test]
    fn debug_names_the_authorization_and_its_callback_with_secrets_redacted() {
        let p = pending(STATE);
        let shown = format!("{p:?}");
        assert!(
            shown.starts_with("PendingAuthorization {")
                && shown.contains("state: CsrfState([redacted])")
                && shown.contains("completed: false"),
            "{shown}"
        );
        assert!(!shown.contains(STATE), "{shown}");
        let code = "a-code-as-long-as-a-real-one";
        let verified = p.verify(&format!("?state={STATE}&code={code}")).unwrap();
        let shown = format!("{verified:?}");
        assert!(
            shown.starts_with("VerifiedCallback {")
                && shown.contains("code: AuthorizationCode([redacted])"),
            "{shown}"
        );
        assert!(!shown.contains(code), "{shown}");
        assert!(format!("{p:?}").contains("completed: true"));
    }

    #[test]
    fn only_the_query_of_a_callback_url_carries_its_parameters() {
        for elsewhere in [
            "http://127.0.0.1:1/cb&state=s&code=c",
            "http://127.0.0.1:1/cb#?state=s&code=c",
            "localhost:1/cb#?state=s&code=c",
            "/cb#?state=s&code=c",
        ] {
            assert!(
                matches!(pending("s").verify(elsewhere), Err(Error::CsrfMismatch)),
                "{elsewhere:?}"
            );
        }
    }

    #[test]
    fn a_callback_url_pasted_with_a_line_break_inside_still_verifies() {
        // Terminals copy a wrapped URL with the break in it.
        for pasted in [
            "http://127.0.0.1:1/cb?state=s&co\nde=c",
            "localhost:1/cb?state=s&co\r\nde=c",
        ] {
            let v = pending("s").verify(pasted).unwrap();
            assert_eq!(v.code.expose_secret(), "c", "{pasted:?}");
        }
    }

    #[test]
    fn a_verified_callback_carries_the_scopes_the_authorization_asked_for() {
        let mut p = pending("s");
        p.requested = crate::scopes![basicProfile, publishPost];
        assert_eq!(p.requested(), crate::scopes![basicProfile, publishPost]);
        let v = p.verify("?state=s&code=c").unwrap();
        assert_eq!(v.requested(), crate::scopes![basicProfile, publishPost]);
    }

    #[test]
    fn expires() {
        let mut p = pending("s");
        p.ttl = Duration::ZERO;
        p.created -= Duration::from_millis(1);
        assert!(matches!(
            p.verify("?state=s&code=c"),
            Err(Error::AuthorizationExpired)
        ));
    }
}
