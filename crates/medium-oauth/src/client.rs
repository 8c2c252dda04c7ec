//! The OAuth client: builds authorize URLs and talks to the token endpoint.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use medium_oauth2_api::{operations, servers, types};
use secrecy::zeroize::Zeroize;
use url::Url;

use crate::api::{Envelope, User};
use crate::authorize::{DEFAULT_PENDING_TTL, PendingAuthorization, VerifiedCallback};
use crate::error::MediumError;
use crate::redact::{quote, quote_bytes};
use crate::{
    AccessToken, ClientId, ClientSecret, CsrfState, Error, RefreshToken, RefreshingTokenSource,
    ScopeSet, Token,
};
use reqwest::header::HeaderValue;

/// How long one token request may take, connect to last byte, unless
/// configured otherwise. Generous for a form POST, short enough that a hung
/// proxy surfaces as an error instead of a stuck login.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Error codes with which a token endpoint refuses the app rather than the
/// grant, making [`Error::InvalidClient`]: Medium's documented `6005
/// Application not found` (an unknown or revoked app), and `6026`, the code
/// the emulator chose for a wrong client secret (Medium documents none; see
/// `medium_oauth_emulator::codes`).
pub const INVALID_CLIENT_CODES: [i64; 2] = [6005, 6026];

/// Medium's error code for `Missing scope: X`: the API answers it, with
/// HTTP 401, to a valid token that was not granted the call's scope.
pub const MISSING_SCOPE_CODE: i64 = 6002;

/// Which refresh form the server has been seen to serve.
const REFRESH_FORM_UNKNOWN: u8 = 0;
const REFRESH_FORM_SPEC: u8 = 1;
const REFRESH_FORM_LIVE: u8 = 2;

/// Builds an [`OAuthClient`].
#[derive(Debug)]
pub struct OAuthClientBuilder {
    client_id: ClientId,
    client_secret: ClientSecret,
    redirect_uri: String,
    authorization_server: String,
    api_server: String,
    timeout: Duration,
    pending_ttl: Duration,
}

impl OAuthClientBuilder {
    /// The authorization server's base URL (default: Medium's, from the spec).
    /// Its `/authorize` page is where users are sent.
    pub fn authorization_server(mut self, url: impl Into<String>) -> Self {
        self.authorization_server = url.into();
        self
    }

    /// The API server's base URL (default: Medium's, from the spec), e.g. an
    /// emulator's or a proxy's.
    pub fn api_server(mut self, url: impl Into<String>) -> Self {
        self.api_server = url.into();
        self
    }

    /// Timeout of each token request (default [`DEFAULT_REQUEST_TIMEOUT`]).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long an authorization may wait for its callback (default
    /// [`DEFAULT_PENDING_TTL`]).
    pub fn pending_ttl(mut self, ttl: Duration) -> Self {
        self.pending_ttl = ttl;
        self
    }

    /// Checks the settings and builds the client. Plain `http://` is refused
    /// except for loopback hosts, where nothing crosses a network.
    pub fn build(self) -> Result<OAuthClient, Error> {
        let redirect_uri = checked_url("redirect_uri", &self.redirect_uri)?;
        let authorization_server = checked_url("authorization_server", &self.authorization_server)?;
        let api_server = checked_url("api_server", &self.api_server)?;
        let http = http_client(self.timeout)?;
        Ok(OAuthClient {
            inner: Arc::new(Inner {
                client_id: self.client_id,
                client_secret: self.client_secret,
                redirect_uri,
                authorization_server,
                api_server,
                http,
                pending_ttl: self.pending_ttl,
                refresh_form: AtomicU8::new(REFRESH_FORM_UNKNOWN),
            }),
        })
    }
}

/// The HTTP client of every request this crate sends: its TLS set-up, no
/// redirects and `timeout` from connect to last byte.
pub(crate) fn http_client(timeout: Duration) -> Result<reqwest::Client, Error> {
    let invalid_http = |reason: String| Error::InvalidConfig {
        field: "http client",
        reason,
    };
    crate::tls::client_builder()
        .map_err(|e| invalid_http(e.to_string()))?
        // Following a redirect from the token endpoint would send the client
        // secret and code wherever the response points (SSRF); from the API,
        // a redirect has no business moving a post or an upload elsewhere.
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .build()
        .map_err(|e| invalid_http(e.to_string()))
}

pub(crate) fn checked_url(field: &'static str, text: &str) -> Result<Url, Error> {
    let url = Url::parse(text).map_err(|e| Error::InvalidConfig {
        field,
        reason: format!("{text:?} is not a URL: {e}"),
    })?;
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match url.scheme() {
        "https" => Ok(url),
        "http" if loopback => Ok(url),
        "http" => Err(Error::InvalidConfig {
            field,
            reason: format!("{text:?} uses plain http; only loopback hosts may"),
        }),
        other => Err(Error::InvalidConfig {
            field,
            reason: format!("{text:?} has scheme {other:?}; expected https"),
        }),
    }
}

/// A Medium OAuth client. Cheap to clone: clones share one connection pool.
///
/// See the [crate documentation](crate) for the whole flow.
#[derive(Clone)]
pub struct OAuthClient {
    inner: Arc<Inner>,
}

struct Inner {
    client_id: ClientId,
    client_secret: ClientSecret,
    redirect_uri: Url,
    authorization_server: Url,
    api_server: Url,
    http: reqwest::Client,
    pending_ttl: Duration,
    refresh_form: AtomicU8,
}

impl std::fmt::Debug for OAuthClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = &self.inner;
        f.debug_struct("OAuthClient")
            .field("client_id", &inner.client_id)
            .field("client_secret", &inner.client_secret)
            .field("redirect_uri", &inner.redirect_uri.as_str())
            .field("authorization_server", &inner.authorization_server.as_str())
            .field("api_server", &inner.api_server.as_str())
            .finish_non_exhaustive()
    }
}

impl OAuthClient {
    /// Starts building a client for an app. Servers default to Medium's.
    pub fn builder(
        client_id: ClientId,
        client_secret: ClientSecret,
        redirect_uri: impl Into<String>,
    ) -> OAuthClientBuilder {
        OAuthClientBuilder {
            client_id,
            client_secret,
            redirect_uri: redirect_uri.into(),
            authorization_server: servers::AUTHORIZATION_SERVER.to_owned(),
            api_server: servers::API_SERVER.to_owned(),
            timeout: DEFAULT_REQUEST_TIMEOUT,
            pending_ttl: DEFAULT_PENDING_TTL,
        }
    }

    /// The app's client id.
    pub fn client_id(&self) -> &ClientId {
        &self.inner.client_id
    }

    /// Where Medium sends the user back to.
    pub fn redirect_uri(&self) -> &Url {
        &self.inner.redirect_uri
    }

    /// The API server's base URL.
    pub fn api_server(&self) -> &Url {
        &self.inner.api_server
    }

    /// The URL to send the user to, and the pending authorization that will
    /// check the callback. Each call draws a fresh `state` from the OS CSPRNG;
    /// there is no other way to build an authorize URL.
    pub fn authorize_url(&self, scopes: ScopeSet) -> Result<(Url, PendingAuthorization), Error> {
        let state = CsrfState::random().map_err(|e| Error::Randomness(e.to_string()))?;
        let base = self
            .inner
            .authorization_server
            .as_str()
            .trim_end_matches('/');
        let mut url =
            Url::parse(&format!("{base}{}", operations::authorize_user::PATH)).map_err(|e| {
                Error::InvalidConfig {
                    field: "authorization_server",
                    reason: e.to_string(),
                }
            })?;
        let scope = scopes.to_string();
        let query = operations::authorize_user::Query {
            client_id: self.inner.client_id.as_str(),
            scope: &scope,
            state: state.expose_secret(),
            redirect_uri: self.inner.redirect_uri.as_str(),
        };
        url.query_pairs_mut().extend_pairs(query.pairs());
        let pending = PendingAuthorization {
            state,
            requested: scopes,
            created: Instant::now(),
            ttl: self.inner.pending_ttl,
            completed: AtomicBool::new(false),
        };
        Ok((url, pending))
    }

    /// A source that keeps `token` fresh, in memory, with default settings:
    /// the one line from a login to a [`TokenSource`](crate::TokenSource)
    /// (as golang.org/x/oauth2's `conf.TokenSource(ctx, tok)`). Use
    /// [`RefreshingTokenSource::builder`] to choose a store or settings.
    pub fn token_source(&self, token: Token) -> RefreshingTokenSource {
        RefreshingTokenSource::new(self.clone(), token)
    }

    /// Verifies the callback against `pending` and exchanges its code.
    pub async fn complete(
        &self,
        pending: &PendingAuthorization,
        callback: &str,
    ) -> Result<Token, Error> {
        let verified = pending.verify(callback)?;
        self.exchange_code(verified).await
    }

    /// Exchanges a verified callback's code for a token.
    pub async fn exchange_code(&self, verified: VerifiedCallback) -> Result<Token, Error> {
        let inner = &self.inner;
        let mut body = types::ExchangeAuthorizationCodeBody {
            client_id: inner.client_id.as_str().to_owned(),
            client_secret: inner.client_secret.expose_secret().to_owned(),
            code: verified.code.expose_secret().to_owned(),
            grant_type: types::ExchangeAuthorizationCodeBodyGrantType::AuthorizationCode,
            redirect_uri: inner.redirect_uri.as_str().to_owned(),
        };
        let secrets = [body.client_secret.as_str(), body.code.as_str()];
        let result = match self
            .post_form(operations::exchange_authorization_code::PATH, &body)
            .await
        {
            Ok(response) => classify_response(response, self.host(), &secrets).await,
            Err(e) => Err(e),
        };
        body.client_secret.zeroize();
        body.code.zeroize();
        result
    }

    /// Obtains a new access token. Tries the spec's `POST /tokens/refresh`
    /// first; if the server answers 404 or 405 it uses the live service's
    /// `POST /tokens` with `grant_type=refresh_token`, and remembers which
    /// form works for this client's lifetime. When the response carries no
    /// refresh token, the token keeps `refresh_token`.
    pub async fn refresh(&self, refresh_token: &RefreshToken) -> Result<Token, Error> {
        let inner = &self.inner;
        let mut body = types::RefreshAccessTokenBody {
            client_id: inner.client_id.as_str().to_owned(),
            client_secret: inner.client_secret.expose_secret().to_owned(),
            grant_type: types::RefreshAccessTokenBodyGrantType::RefreshToken,
            refresh_token: refresh_token.expose_secret().to_owned(),
        };
        let result = self.refresh_with(&body).await;
        body.client_secret.zeroize();
        body.refresh_token.zeroize();
        result.map(|token| token.keep_refresh_token(refresh_token))
    }

    async fn refresh_with(&self, body: &types::RefreshAccessTokenBody) -> Result<Token, Error> {
        let inner = &self.inner;
        let secrets = [body.client_secret.as_str(), body.refresh_token.as_str()];
        if inner.refresh_form.load(Ordering::Relaxed) != REFRESH_FORM_LIVE {
            let response = self
                .post_form(operations::refresh_access_token::PATH, body)
                .await?;
            let status = response.status().as_u16();
            if !matches!(status, 404 | 405) {
                let token = classify_response(response, self.host(), &secrets).await;
                if token.is_ok() {
                    inner
                        .refresh_form
                        .store(REFRESH_FORM_SPEC, Ordering::Relaxed);
                }
                return token;
            }
            tracing::debug!(
                status,
                "{} is not served; trying the live refresh form",
                operations::refresh_access_token::PATH
            );
        }
        // The live form is not in the spec: the spec's refresh body, posted
        // to the exchange path. Remembered only once it has worked, so one
        // stray 404 does not switch forms for good.
        let response = self
            .post_form(operations::exchange_authorization_code::PATH, body)
            .await?;
        let token = classify_response(response, self.host(), &secrets).await;
        let form = if token.is_ok() {
            REFRESH_FORM_LIVE
        } else {
            REFRESH_FORM_UNKNOWN
        };
        inner.refresh_form.store(form, Ordering::Relaxed);
        token
    }

    /// `GET /me`: the user `token` belongs to, with this client's timeout and
    /// body cap. The natural proof that a token works: a refused token is
    /// [`Error::Api`] with status 401.
    pub async fn me(&self, token: &AccessToken) -> Result<User, Error> {
        let inner = &self.inner;
        let host = self.host();
        let mut bearer = HeaderValue::from_str(&format!("Bearer {}", token.expose_secret()))
            .map_err(|_| Error::InvalidHeaderValue)?;
        bearer.set_sensitive(true);
        let request = inner
            .http
            .get(self.api_url(medium_oauth2_api::resource::operations::get_current_user::PATH))
            .header(reqwest::header::ACCEPT, "application/json")
            .header(reqwest::header::AUTHORIZATION, bearer)
            .build()
            .map_err(|e| Error::transport(host, e))?;
        let response = medium_oauth2_api::execute_capped(&inner.http, request)
            .await
            .map_err(|e| Error::transport(host, e))?;
        let secrets = [token.expose_secret()];
        classify_api::<User>(response, host, &secrets).await
    }

    /// `path` (one of the specs' operation paths) on the API server.
    fn api_url(&self, path: &str) -> String {
        let base = self.inner.api_server.as_str().trim_end_matches('/');
        format!("{base}{path}")
    }

    /// The HTTP client the token requests go through.
    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    /// The API server's host, for errors.
    fn host(&self) -> &str {
        self.inner.api_server.host_str().unwrap_or_default()
    }

    /// POSTs `body` as a form to the API server's `path`, reading at most
    /// [`medium_oauth2_api::MAX_RESPONSE_BYTES`] of the answer. The request
    /// types and paths are the generated ones; the response is classified
    /// here, by status first, because the generated operations drop the
    /// status of a documented response whose body does not parse (and so
    /// cannot tell a 401 from a 200).
    async fn post_form(
        &self,
        path: &str,
        body: &impl serde::Serialize,
    ) -> Result<reqwest::Response, Error> {
        let inner = &self.inner;
        let host = self.host();
        let request = inner
            .http
            .post(self.api_url(path))
            .header(reqwest::header::ACCEPT, "application/json")
            .form(body)
            .build()
            .map_err(|e| Error::transport(host, e))?;
        medium_oauth2_api::execute_capped(&inner.http, request)
            .await
            .map_err(|e| Error::transport(host, e))
    }
}

/// Error items kept from one body: Medium sends one, and a body of
/// thousands would make an error (and its log line) hundreds of kilobytes.
const MAX_ERROR_ITEMS: usize = 8;

/// Medium's error items from an error body, their messages quoted safely.
fn medium_errors(body: types::Error, secrets: &[&str]) -> Vec<MediumError> {
    body.errors
        .into_iter()
        .take(MAX_ERROR_ITEMS)
        .map(|e| MediumError {
            message: quote(&e.message.unwrap_or_default(), secrets),
            code: e.code.unwrap_or_default(),
        })
        .collect()
}

pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// A token endpoint's response as a token or a typed error. The status
/// decides first: only a 2xx body can become a token, and a 401 is
/// [`Error::InvalidGrant`] whatever its body says.
async fn classify_response(
    response: reqwest::Response,
    host: &str,
    secrets: &[&str],
) -> Result<Token, Error> {
    let status = response.status();
    let retry_after = retry_after(response.headers());
    let too_large = response
        .extensions()
        .get::<medium_oauth2_api::BodyTooLarge>()
        .is_some();
    match status.as_u16() {
        _ if !too_large => {}
        200..=299 => {
            return Err(Error::ResponseTooLarge {
                limit: medium_oauth2_api::MAX_RESPONSE_BYTES,
            });
        }
        // The status still says what happened, and Retry-After when to try
        // again: an oversized error page keeps both.
        401 => {
            return Err(Error::InvalidGrant {
                status: 401,
                errors: Vec::new(),
            });
        }
        status => return Err(oversized(status, retry_after)),
    }
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let is_json = content_type.as_deref().is_some_and(|c| {
        c.split(';')
            .next()
            .is_some_and(|m| m.trim().ends_with("json"))
    });
    // Already in memory (see `post_form`): this cannot wait on the network.
    let body = response
        .bytes()
        .await
        .map_err(|e| Error::transport(host, e))?;
    if status.is_success() {
        return if content_type.is_none() || is_json {
            Token::from_response_body(&body).map(|t| t.forget_echoed_scopes(secrets))
        } else {
            Err(unexpected(
                status.as_u16(),
                content_type,
                &body,
                secrets,
                retry_after,
            ))
        };
    }
    let errors = serde_json::from_slice::<types::Error>(&body)
        .ok()
        .filter(|_| is_json)
        .map(|parsed| medium_errors(parsed, secrets))
        .filter(|errors| !errors.is_empty());
    let refuses_client = errors.as_ref().is_some_and(|errors| {
        errors
            .iter()
            .any(|e| INVALID_CLIENT_CODES.contains(&e.code))
    });
    match (status.as_u16(), errors) {
        (400..=499, Some(errors)) if refuses_client => Err(Error::InvalidClient {
            status: status.as_u16(),
            errors,
        }),
        (401, errors) => Err(Error::InvalidGrant {
            status: 401,
            errors: errors.unwrap_or_default(),
        }),
        (status, Some(errors)) => Err(Error::Api {
            status,
            errors,
            retry_after,
        }),
        (status, None) => Err(unexpected(
            status,
            content_type,
            &body,
            secrets,
            retry_after,
        )),
    }
}

/// An API response's `data` when its status is 2xx; otherwise the error it
/// describes (Medium's error items, or the start of whatever came instead).
pub(crate) async fn classify_api<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
    host: &str,
    secrets: &[&str],
) -> Result<T, Error> {
    let status = response.status().as_u16();
    let retry_after = retry_after(response.headers());
    if response
        .extensions()
        .get::<medium_oauth2_api::BodyTooLarge>()
        .is_some()
    {
        // An oversized error page (a proxy's, say) still has a status that
        // says what happened, and a Retry-After that says when to try again.
        return Err(if (200..300).contains(&status) {
            Error::ResponseTooLarge {
                limit: medium_oauth2_api::MAX_RESPONSE_BYTES,
            }
        } else {
            oversized(status, retry_after)
        });
    }
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    // Already in memory (see `execute_capped`): this cannot wait on the
    // network.
    let body = response
        .bytes()
        .await
        .map_err(|e| Error::transport(host, e))?;
    if (200..300).contains(&status) {
        return serde_json::from_slice::<Envelope<T>>(&body)
            .map(|envelope| envelope.data)
            .map_err(|e| Error::MalformedBody(describe_json_error(&e)));
    }
    match serde_json::from_slice::<types::Error>(&body)
        .ok()
        .map(|parsed| medium_errors(parsed, secrets))
        .filter(|errors| !errors.is_empty())
    {
        Some(errors) => Err(Error::Api {
            status,
            errors,
            retry_after,
        }),
        None => Err(unexpected(
            status,
            content_type,
            &body,
            secrets,
            retry_after,
        )),
    }
}

/// Where a JSON body went wrong, never what it says (it may echo secrets).
pub(crate) fn describe_json_error(e: &serde_json::Error) -> String {
    format!(
        "{} at line {} column {}",
        match e.classify() {
            serde_json::error::Category::Io => "unreadable body",
            serde_json::error::Category::Syntax => "not JSON",
            serde_json::error::Category::Data => "JSON of the wrong shape",
            serde_json::error::Category::Eof => "truncated or empty JSON",
        },
        e.line(),
        e.column()
    )
}

/// A non-2xx answer whose body was over the cap and was not read.
fn oversized(status: u16, retry_after: Option<Duration>) -> Error {
    Error::UnexpectedResponse {
        status,
        content_type: None,
        body_start: format!(
            "[a body over {} bytes, not read]",
            medium_oauth2_api::MAX_RESPONSE_BYTES
        ),
        retry_after,
    }
}

fn unexpected(
    status: u16,
    content_type: Option<String>,
    body: &[u8],
    secrets: &[&str],
    retry_after: Option<Duration>,
) -> Error {
    Error::UnexpectedResponse {
        status,
        content_type: content_type.map(|c| quote(&c, secrets)),
        body_start: quote_bytes(body, secrets),
        retry_after,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_malformed_body_is_described_by_where_it_went_wrong_not_what_it_says() {
        let describe = |body: &[u8]| match Token::from_response_body(body) {
            Err(Error::MalformedBody(message)) => message,
            other => panic!("{other:?}"),
        };
        let html = describe(b"<html>s3cr3t</html>");
        assert_eq!(html, "not JSON at line 1 column 1");
        let cut = describe(br#"{"access_token":"#);
        assert!(
            cut.starts_with("truncated or empty JSON at line 1 column "),
            "{cut}"
        );
        let shape = describe(br#"{"access_token":["s3cr3t"]}"#);
        assert!(
            shape.starts_with("JSON of the wrong shape at line 1 column "),
            "{shape}"
        );
        assert!(!shape.contains("s3cr3t"), "{shape}");
    }

    #[test]
    fn debug_names_the_client_and_its_servers_with_the_secret_redacted() {
        let secret = "a-client-secret-nobody-may-see";
        let client = OAuthClient::builder(
            ClientId::new("demo-app"),
            ClientSecret::new(secret),
            "http://127.0.0.1:9/cb",
        )
        .build()
        .unwrap();
        let shown = format!("{client:?}");
        assert!(
            shown.starts_with("OAuthClient {")
                && shown.contains(r#"client_id: ClientId("demo-app")"#)
                && shown.contains("client_secret: ClientSecret([redacted])")
                && shown.contains("http://127.0.0.1:9/cb")
                && shown.contains(servers::API_SERVER),
            "{shown}"
        );
        assert!(!shown.contains(secret), "{shown}");
    }

    #[test]
    fn plain_http_only_for_loopback() {
        for ok in [
            "https://api.medium.com/v1",
            "http://127.0.0.1:8080/v1",
            "http://localhost/cb",
            "http://[::1]:1/",
        ] {
            assert!(checked_url("x", ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://example.com/v1",
            "ftp://x/",
            "not a url",
            "http://10.0.0.1/",
        ] {
            assert!(
                matches!(checked_url("x", bad), Err(Error::InvalidConfig { .. })),
                "{bad}"
            );
        }
    }
}
