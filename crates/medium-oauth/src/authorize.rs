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

/// An authorization the user has been sent to approve. Made only by
/// [`OAuthClient::authorize_url`](crate::OAuthClient::authorize_url), with a
/// fresh random `state`; completes at most once, and not after its time to
/// live.
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

    /// Checks a callback: the full redirect URL, or just its query (with or
    /// without the `?`). In order: an `error` parameter is a denial; then the
    /// `state` must be present and equal (compared in constant time); then a
    /// `code` must be present. A failed check leaves the authorization
    /// pending, so a forged callback cannot cancel the real one; success
    /// completes it, and a second success is refused.
    pub fn verify(&self, callback: &str) -> Result<VerifiedCallback, Error> {
        if self.completed.load(Ordering::Acquire) {
            return Err(Error::AlreadyCompleted);
        }
        if self.is_expired() {
            return Err(Error::AuthorizationExpired);
        }
        let params = callback_params(callback)?;
        let get = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        if let Some(error) = get("error") {
            // The callback's text is the server's (or a forger's): quoted
            // safely, with the flow's own secrets redacted.
            let secrets = [
                self.state.expose_secret(),
                get("state").unwrap_or_default(),
                get("code").unwrap_or_default(),
            ];
            return Err(Error::Denied {
                error: quote(error, &secrets),
                description: get("error_description").map(|d| quote(d, &secrets)),
            });
        }
        let state_matches = get("state").is_some_and(|s| CsrfState::new(s) == self.state);
        if !state_matches {
            return Err(Error::CsrfMismatch);
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
        Ok(url) if url.has_host() => url.query().unwrap_or_default().to_owned(),
        Ok(_) | Err(url::ParseError::RelativeUrlWithoutBase) => {
            // A query alone, or a path with its query ("/callback?code=…").
            match callback.split_once('?') {
                Some((_, query)) => query.to_owned(),
                None if callback.contains('=') => callback.to_owned(),
                None => return Err(Error::InvalidCallback("no query string".into())),
            }
        }
        Err(e) => return Err(Error::InvalidCallback(e.to_string())),
    };
    let query = query.split('#').next().unwrap_or_default();
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
            pending("s").verify("not a callback"),
            Err(Error::InvalidCallback(_))
        ));
    }

    #[test]
    fn checks_in_order_error_state_code() {
        const STATE: &str = "a-state-as-long-as-a-real-one";
        let p = pending(STATE);
        assert!(matches!(
            p.verify("?error=access_denied&state=wrong"),
            Err(Error::Denied { ref error, .. }) if error == "access_denied"
        ));
        assert!(matches!(
            p.verify("?code=c&state=wrong"),
            Err(Error::CsrfMismatch)
        ));
        assert!(matches!(p.verify("?code=c"), Err(Error::CsrfMismatch)));
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
