//! HTTP middleware that authorizes requests from any [`TokenSource`], like
//! golang.org/x/oauth2's `Transport`.

use http::Extensions;
use reqwest::header::{AUTHORIZATION, HeaderValue};
use reqwest_middleware::{Middleware, Next};

use crate::{AccessToken, TokenSource};

/// Sets `Authorization: Bearer …` on every request. On a 401 it invalidates
/// that token and, when the request body can be cloned, retries once with a
/// fresh one (a streamed body cannot be sent twice; the next request gets the
/// fresh token).
///
/// ```no_run
/// # async fn demo(source: medium_oauth::RefreshingTokenSource) -> Result<(), Box<dyn std::error::Error>> {
/// let http = reqwest_middleware::ClientBuilder::new(medium_oauth::tls::client_builder()?.build()?)
///     .with(medium_oauth::BearerAuth::new(source))
///     .build();
/// let me = http.get("https://api.medium.com/v1/me").send().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct BearerAuth<S> {
    source: S,
}

impl<S: TokenSource> BearerAuth<S> {
    /// Middleware drawing tokens from `source`.
    pub fn new(source: S) -> Self {
        Self { source }
    }
}

/// In a response's extensions: the token its request carried, so that a
/// caller can keep it out of an error built from the body (a server may echo
/// it, and after a refresh it is not the token the caller last saw).
#[derive(Clone)]
pub(crate) struct SentToken(pub(crate) std::sync::Arc<crate::Token>);

/// The token [`BearerAuth`] sent with the request `response` answers (after
/// a refresh, not the one the caller last saw), so that a program showing
/// the body can redact it: a server may echo it. `None` for a response that
/// did not pass through `BearerAuth`.
pub fn token_sent_with(response: &reqwest::Response) -> Option<&crate::Token> {
    response
        .extensions()
        .get::<SentToken>()
        .map(|sent| &*sent.0)
}

fn bearer(token: &AccessToken) -> reqwest_middleware::Result<HeaderValue> {
    let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose_secret()))
        .map_err(|_| reqwest_middleware::Error::middleware(crate::Error::InvalidHeaderValue))?;
    // Keeps the value out of HTTP/2 header compression tables and Debug.
    value.set_sensitive(true);
    Ok(value)
}

#[async_trait::async_trait]
impl<S: TokenSource + 'static> Middleware for BearerAuth<S> {
    async fn handle(
        &self,
        mut request: reqwest::Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        let token = self
            .source
            .token()
            .await
            .map_err(reqwest_middleware::Error::middleware)?;
        request
            .headers_mut()
            .insert(AUTHORIZATION, bearer(token.access_token())?);
        let retry = request.try_clone();
        let mut response = next.clone().run(request, extensions).await?;
        response.extensions_mut().insert(SentToken(token.clone()));
        if response.status() != reqwest::StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        // Invalidate even when this request cannot be retried, so the next
        // one does not repeat the refused token.
        self.source.invalidate(token.access_token());
        let Some(mut retry) = retry else {
            return Ok(response);
        };
        tracing::debug!("the API refused the access token; refreshing and retrying once");
        let fresh = self
            .source
            .token()
            .await
            .map_err(reqwest_middleware::Error::middleware)?;
        if fresh.access_token() == token.access_token() {
            return Ok(response);
        }
        retry
            .headers_mut()
            .insert(AUTHORIZATION, bearer(fresh.access_token())?);
        let mut response = next.run(retry, extensions).await?;
        response.extensions_mut().insert(SentToken(fresh));
        Ok(response)
    }
}
