//! "Give me a valid access token": the [`TokenSource`] trait, a static
//! source, and the refreshing source that keeps a token fresh.
//!
//! The refreshing source is three parts, each in its own file:
//! - [`policy`]: when to refresh and how long to wait after a failure (pure);
//! - [`slot`]: the current token, read lock-free by every call;
//! - [`refresher`]: under the store's lock, adopt or refresh, then persist.
//!
//! [`refreshing`] puts them together.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::{AccessToken, Error, Token};

mod clock;
mod policy;
mod refresher;
mod refreshing;
mod slot;

pub use clock::{COARSE_TICK_BOUND, Clock, SystemClock};
pub use policy::{
    DEFAULT_REFRESH_JITTER, DEFAULT_REFRESH_MARGIN, DEFAULT_RETRY_BASE, DEFAULT_RETRY_CAP,
    MAX_PLAUSIBLE_LIFETIME, MIN_TOKEN_LIFETIME, RETRY_AFTER_CAP,
};
pub use refresher::REAUTHORIZATION_RECHECK;
pub use refreshing::{
    DEFAULT_MAX_ATTEMPTS, LONGEST_RETRY_WAIT, REFUSAL_COOLDOWN, RefreshingTokenSource,
    RefreshingTokenSourceBuilder,
};

/// What [`TokenSource::token`] returns: ready at once on the hot path (no
/// allocation), boxed only when the source has to wait, refresh or fail.
pub struct TokenFuture<'a>(FutureState<'a>);

/// Two words: the ready state is returned in registers. A ready error would
/// make every `TokenFuture` as large as [`Error`], so errors take the boxed
/// state.
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
            FutureState::Ready(token) => {
                Poll::Ready(token.take().ok_or(Error::PolledAfterCompletion))
            }
            FutureState::Boxed(future) => future.as_mut().poll(cx),
        }
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
    #[inline]
    fn token(&self) -> TokenFuture<'_> {
        (**self).token()
    }

    fn invalidate(&self, token: &AccessToken) {
        (**self).invalidate(token);
    }
}

/// The scopes [`StaticTokenSource::integration_token`] assumes: every scope
/// but the extended `uploadImage`, which Medium grants only to apps it has
/// approved.
pub const INTEGRATION_TOKEN_SCOPES: crate::ScopeSet =
    crate::scopes![basicProfile, listPublications, publishPost];

/// A token that never changes, such as a self-issued integration token from
/// Medium's settings page (they do not expire).
pub struct StaticTokenSource {
    token: Arc<Token>,
}

impl StaticTokenSource {
    /// A source that always returns `token`.
    pub fn new(token: Token) -> Self {
        Self {
            token: Arc::new(token),
        }
    }

    /// A source for a self-issued integration token from Medium's settings
    /// page: no expiry, and the scopes every user can grant
    /// ([`INTEGRATION_TOKEN_SCOPES`]), so that
    /// [`MediumApi`](crate::api::MediumApi)'s scope checks let its calls
    /// through; the server still has the last word. For other scopes, build
    /// the [`Token`] yourself and use [`new`](Self::new).
    pub fn integration_token(token: AccessToken) -> Self {
        let scopes = crate::GrantedScopes {
            known: INTEGRATION_TOKEN_SCOPES,
            unknown: Vec::new(),
        };
        Self::new(Token::new(token, None, None, scopes))
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
        TokenFuture::ready(Ok(self.token.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_names_a_static_source_and_redacts_its_token() {
        let source = StaticTokenSource::integration_token(AccessToken::new("integration-7f3a"));
        let shown = format!("{source:?}");
        assert!(
            shown.starts_with("StaticTokenSource(Token {")
                && shown.contains("AccessToken([redacted])"),
            "{shown}"
        );
        assert!(!shown.contains("integration-7f3a"), "{shown}");
    }

    #[test]
    fn a_token_future_is_two_words() {
        // The hot path returns it by value: keep it in registers.
        assert!(size_of::<TokenFuture<'_>>() <= 2 * size_of::<usize>());
    }

    #[test]
    fn a_ready_future_polled_again_is_a_typed_error() {
        let token = Arc::new(Token::new(
            AccessToken::new("a"),
            None,
            None,
            Default::default(),
        ));
        let mut future = TokenFuture::ready(Ok(token));
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut future = Pin::new(&mut future);
        assert!(matches!(future.as_mut().poll(&mut cx), Poll::Ready(Ok(_))));
        assert!(matches!(
            future.as_mut().poll(&mut cx),
            Poll::Ready(Err(Error::PolledAfterCompletion))
        ));
    }
}
