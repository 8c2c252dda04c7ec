//! "Give me a valid access token": the [`TokenSource`] trait, a static
//! source, and the refreshing source: the [engine](crate::engine) over a
//! [`TokenStore`](crate::TokenStore).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::{AccessToken, Error, Token};

mod refreshing;

pub use refreshing::{RefreshingTokenSource, RefreshingTokenSourceBuilder};

/// Runs `work` in a task of its own and waits for it. A caller that gives
/// up (a timeout, a dropped future) then cannot cut a refresh between the
/// server's answer and the save, which would lose a rotated refresh token.
/// A panic in `work` is the caller's; a runtime shutting down meanwhile is
/// [`Error::RuntimeShutdown`].
pub(crate) async fn detached<T: Send + 'static>(
    work: impl Future<Output = T> + Send + 'static,
) -> Result<T, Error> {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        // Polled outside tokio: nothing to hand the work to, so do it here.
        return Ok(work.await);
    };
    match runtime.spawn(work).await {
        Ok(result) => Ok(result),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(Error::RuntimeShutdown),
    }
}

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

    /// A refresh that panics passes its panic on to the caller, as if run
    /// in the caller's own task.
    #[tokio::test]
    async fn a_panic_in_detached_work_reaches_the_caller() {
        let call = tokio::spawn(detached(async {
            if true {
                panic!("the store panicked");
            }
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
        let mut call = Box::pin(detached(std::future::pending::<()>()));
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        {
            let _inside = runtime.enter();
            assert!(call.as_mut().poll(&mut cx).is_pending(), "handed to a task");
        }
        drop(runtime);
        match call.as_mut().poll(&mut cx) {
            Poll::Ready(Err(Error::RuntimeShutdown)) => {}
            other => panic!("{other:?}"),
        }
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
