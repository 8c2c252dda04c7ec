//! The one error type of the crate.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::Scope;

/// One `{message, code}` item of a Medium error body. The message is the
/// server's text, redacted and cut as quoted bodies are (see
/// [`Error::UnexpectedResponse`]) before it is stored here.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MediumError {
    /// Human-readable text, e.g. `Token was invalid.`
    #[serde(default)]
    pub message: String,
    /// Medium's numeric code, e.g. `6003`.
    #[serde(default)]
    pub code: i64,
}

impl std::fmt::Display for MediumError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

fn list(errors: &[MediumError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// How a request failed to get any answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransportKind {
    /// No connection could be made.
    Connect,
    /// The request or the response took longer than the configured timeout.
    Timeout,
    /// The connection broke, or anything else below HTTP.
    Other,
}

/// Everything that can go wrong. No variant holds a secret: codes, states,
/// tokens and the client secret never reach an error, and quoted response
/// bodies are redacted.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The user, or Medium, refused the authorization (`error=` on the
    /// callback).
    #[error("authorization was denied: {error}{}", .description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Denied {
        /// The callback's `error`, e.g. `access_denied`.
        error: String,
        /// The callback's `error_description`, when given.
        description: Option<String>,
    },
    /// The callback's `state` is missing or is not the one this authorization
    /// sent: a forged or mixed-up callback.
    #[error("the callback's state does not match the authorization request (possible CSRF)")]
    CsrfMismatch,
    /// The callback carries no `code`.
    #[error("the callback has no authorization code")]
    MissingCode,
    /// The callback is not a URL or query string.
    #[error("the callback is not a URL or query string: {0}")]
    InvalidCallback(String),
    /// The pending authorization is older than its time to live.
    #[error("the authorization request expired; start a new one")]
    AuthorizationExpired,
    /// The pending authorization was already completed once.
    #[error("the authorization request was already completed")]
    AlreadyCompleted,
    /// The grant was rejected: the code is bad, used or expired, or the
    /// refresh token is revoked (HTTP 401 from the token endpoint). Retrying
    /// will not help; the user must authorize again.
    #[error("the server rejected the grant (HTTP {status}): {}; re-authorization required", list(.errors))]
    InvalidGrant {
        /// HTTP status.
        status: u16,
        /// Medium's error items.
        errors: Vec<MediumError>,
    },
    /// The token endpoint refused the app itself: an unknown or revoked
    /// client id, or a wrong client secret (see
    /// [`INVALID_CLIENT_CODES`](crate::INVALID_CLIENT_CODES)). Authorizing
    /// again cannot help; the client credentials must be fixed.
    #[error("the server refused the client credentials (HTTP {status}): {}; check the client id and secret", list(.errors))]
    InvalidClient {
        /// HTTP status.
        status: u16,
        /// Medium's error items.
        errors: Vec<MediumError>,
    },
    /// The server answered with an error body.
    #[error("API error (HTTP {status}): {}", list(.errors))]
    Api {
        /// HTTP status.
        status: u16,
        /// Medium's error items.
        errors: Vec<MediumError>,
        /// `Retry-After`, when the server sent one.
        retry_after: Option<Duration>,
    },
    /// The request got no answer. The HTTP stack's error, with its URL
    /// removed, is the [`source`](std::error::Error::source).
    #[error("could not reach {host}: {}", .kind.describe())]
    Transport {
        /// What kind of failure.
        kind: TransportKind,
        /// The host the request was for.
        host: String,
        /// What the HTTP stack said.
        #[source]
        source: Arc<reqwest::Error>,
    },
    /// An answer that is not Medium's: wrong status or content type, e.g. a
    /// proxy's HTML page.
    #[error("unexpected response (HTTP {status}, content type {}): {body_start:?}", .content_type.as_deref().unwrap_or("none"))]
    UnexpectedResponse {
        /// HTTP status.
        status: u16,
        /// `Content-Type`, when sent.
        content_type: Option<String>,
        /// The first bytes of the body, with anything token-like redacted.
        body_start: String,
        /// `Retry-After`, when the server sent one.
        retry_after: Option<Duration>,
    },
    /// A success status whose body is not what the call expects: a usable
    /// token from the token endpoint, the `data` of its type from the API.
    #[error("malformed response body: {0}")]
    MalformedBody(String),
    /// The token endpoint issued a token that had already expired by this
    /// machine's clock, or would within
    /// [`MIN_TOKEN_LIFETIME`](crate::MIN_TOKEN_LIFETIME): the clock is ahead,
    /// or the server misbehaves. The token was saved (its refresh token may
    /// be the only valid one) but is not handed out.
    #[error("the server issued a token that had expired, or would within a minute ({}); check this machine's clock", describe_expiry(*.expires_at))]
    ExpiredOnArrival {
        /// The token's `expires_at`.
        expires_at: SystemTime,
    },
    /// The token endpoint issued a token whose expiry is implausibly far
    /// away (more than [`MAX_PLAUSIBLE_LIFETIME`](crate::MAX_PLAUSIBLE_LIFETIME)),
    /// as when a server sends microseconds where Medium sends milliseconds.
    /// Trusting it would mean never refreshing, so it is not handed out.
    #[error("the server issued a token with an implausible expiry ({}); refusing to trust it", describe_expiry(*.expires_at))]
    ImplausibleExpiry {
        /// The token's `expires_at`.
        expires_at: SystemTime,
    },
    /// The access token cannot be sent in an `Authorization` header (it has
    /// characters a header may not carry).
    #[error("the access token is not a valid HTTP header value")]
    InvalidHeaderValue,
    /// Another process held the store's lock for longer than
    /// [`LOCK_WAIT`](crate::LOCK_WAIT). Transient: it may be done later.
    #[error("token store {path} is locked by another process (waited {}s)", .waited.as_secs())]
    StoreBusy {
        /// The file (or store) concerned.
        path: String,
        /// How long this process waited.
        waited: Duration,
    },
    /// A refresh under a lock that runs out (a shared store's lease) got no
    /// answer within the time the lock had left. Transient; whether the
    /// server rotated the refresh token cannot be known, so the lock is left
    /// to run out before anyone may read the old one.
    #[error("the token endpoint did not answer a refresh within {}ms", .after.as_millis())]
    RefreshTimedOut {
        /// The deadline.
        after: Duration,
    },
    /// The tokio runtime shut down while a refresh was under way.
    #[error("the tokio runtime is shutting down; no token was obtained")]
    RuntimeShutdown,
    /// A [`TokenFuture`](crate::TokenFuture) was polled again after it had
    /// returned its token.
    #[error("a TokenFuture was polled after it completed")]
    PolledAfterCompletion,
    /// The response body is larger than the client reads.
    #[error("response body exceeds {limit} bytes")]
    ResponseTooLarge {
        /// The cap, in bytes.
        limit: usize,
    },
    /// The REST API refused the access token (HTTP 401), after
    /// [`BearerAuth`](crate::BearerAuth) had refreshed it and tried once
    /// more: it is invalid or revoked, or lacks the call's scope on the
    /// server's side.
    #[error("the API refused the access token (HTTP 401){}", errors_suffix(.errors))]
    TokenRefused {
        /// Medium's error items.
        errors: Vec<MediumError>,
    },
    /// The REST API refused the call (HTTP 403).
    #[error("{reason} (HTTP 403){}", errors_suffix(.errors))]
    Forbidden {
        /// What the call was refused for.
        reason: Refusal,
        /// Medium's error items.
        errors: Vec<MediumError>,
    },
    /// An id cannot be a path segment (empty, `.`, `..`, or holding `\`);
    /// nothing was sent.
    #[error("{0}")]
    InvalidId(medium_oauth2_api::resource::path_id::InvalidPathId),
    /// A post breaks one of Medium's rules; nothing was sent.
    #[error("invalid post: {0}")]
    InvalidPost(#[from] crate::api::InvalidPost),
    /// An image is larger than the client sends; nothing was sent.
    #[error("the image has {bytes} bytes; at most {limit} are sent")]
    ImageTooLarge {
        /// Its size.
        bytes: usize,
        /// The cap, [`MAX_IMAGE_BYTES`](crate::api::MAX_IMAGE_BYTES).
        limit: usize,
    },
    /// The token lacks a scope the caller needs.
    #[error("the token was not granted the `{0}` scope")]
    MissingScope(Scope),
    /// A client setting is unusable.
    #[error("invalid {field}: {reason}")]
    InvalidConfig {
        /// Which setting.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// The store holds no token: the user must log in first.
    #[error("no token is stored; authorize first")]
    NoToken,
    /// The token has no refresh token, so it cannot be renewed.
    #[error("the token has no refresh token; authorize again")]
    NoRefreshToken,
    /// The operating system's random number generator failed.
    #[error("no randomness available for the CSRF state: {0}")]
    Randomness(String),
    /// Reading or writing stored credentials failed.
    #[error("token store {path}: {reason}")]
    Store {
        /// The file (or store) concerned.
        path: String,
        /// What went wrong.
        reason: String,
        /// The operating system's error, when there was one.
        #[source]
        source: Option<Arc<std::io::Error>>,
    },
}

/// What a 403 from the REST API refused, as the call tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// The user id in the path is not the token's user (listing another
    /// user's publications, posting as another author), or Medium does not
    /// let this user publish.
    NotYou,
    /// The publication does not take this post from this user: they do not
    /// contribute to it, or they are a writer and the post is not a draft.
    Publication,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Refusal::NotYou => {
                "Medium refused the call: the user id is not the authenticated user's, or the user may not publish"
            }
            Refusal::Publication => {
                "the publication refused the post: the user is not a contributor, or is a writer and the post is not a draft"
            }
        })
    }
}

impl From<medium_oauth2_api::resource::path_id::InvalidPathId> for Error {
    fn from(e: medium_oauth2_api::resource::path_id::InvalidPathId) -> Self {
        Error::InvalidId(e)
    }
}

fn errors_suffix(errors: &[MediumError]) -> String {
    if errors.is_empty() {
        String::new()
    } else {
        format!(": {}", list(errors))
    }
}

impl TransportKind {
    fn describe(self) -> &'static str {
        match self {
            TransportKind::Connect => "no connection could be made",
            TransportKind::Timeout => "timed out",
            TransportKind::Other => "the connection failed",
        }
    }
}

/// `expires_at` as milliseconds since the Unix epoch, Medium's unit.
fn describe_expiry(at: SystemTime) -> String {
    format!("expires_at {} ms", crate::token::system_time_to_ms(at))
}

impl Error {
    /// Whether the user must authorize again: retrying cannot help.
    pub fn requires_reauthorization(&self) -> bool {
        matches!(
            self,
            Error::InvalidGrant { .. } | Error::NoToken | Error::NoRefreshToken
        )
    }

    /// Whether a later retry may succeed: transport failures, 5xx and 429.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Transport { .. } | Error::StoreBusy { .. } | Error::RefreshTimedOut { .. } => {
                true
            }
            Error::Api { status, .. } | Error::UnexpectedResponse { status, .. } => {
                *status == 429 || *status >= 500
            }
            _ => false,
        }
    }

    /// The server's `Retry-After`, when it sent one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Api { retry_after, .. } | Error::UnexpectedResponse { retry_after, .. } => {
                *retry_after
            }
            _ => None,
        }
    }

    /// A transport failure of a request to `host`. The URL is dropped from
    /// the error: ours carry no secrets, but a proxy's might.
    pub(crate) fn transport(host: &str, e: reqwest::Error) -> Self {
        let kind = if e.is_timeout() {
            TransportKind::Timeout
        } else if e.is_connect() {
            TransportKind::Connect
        } else {
            TransportKind::Other
        };
        Error::Transport {
            kind,
            host: host.to_owned(),
            source: Arc::new(e.without_url()),
        }
    }

    /// A store failure with no operating-system error behind it.
    pub(crate) fn store(path: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Store {
            path: path.into(),
            reason: reason.into(),
            source: None,
        }
    }

    /// A store failure caused by the operating system's `source`.
    pub(crate) fn store_io(
        path: impl Into<String>,
        reason: impl Into<String>,
        source: std::io::Error,
    ) -> Self {
        Error::Store {
            path: path.into(),
            reason: reason.into(),
            source: Some(Arc::new(source)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every item Medium sent is shown, message and code, so a user can
    /// look the code up.
    #[test]
    fn api_errors_list_each_message_with_its_code() {
        let errors = vec![
            MediumError {
                message: "Token was invalid.".into(),
                code: 6003,
            },
            MediumError {
                message: "Refresh token was invalid.".into(),
                code: 6006,
            },
        ];
        let grant = Error::InvalidGrant {
            status: 401,
            errors: errors.clone(),
        };
        assert_eq!(
            grant.to_string(),
            "the server rejected the grant (HTTP 401): Token was invalid. (6003); \
             Refresh token was invalid. (6006); re-authorization required"
        );
        let api = Error::Api {
            status: 400,
            errors: errors[..1].to_vec(),
            retry_after: None,
        };
        assert_eq!(
            api.to_string(),
            "API error (HTTP 400): Token was invalid. (6003)"
        );
    }

    /// An expiry is shown in Medium's unit, so it can be compared with
    /// what the server sent.
    #[test]
    fn expiries_are_shown_in_milliseconds_since_the_epoch() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        let err = Error::ExpiredOnArrival { expires_at: at }.to_string();
        assert!(err.contains("(expires_at 1700000000123 ms)"), "{err}");
        let err = Error::ImplausibleExpiry { expires_at: at }.to_string();
        assert!(err.contains("(expires_at 1700000000123 ms)"), "{err}");
    }

    /// A transport failure says which host and which kind of failure: no
    /// connection, no answer in time, or a connection that broke.
    #[tokio::test]
    async fn a_transport_failure_names_the_host_and_what_happened() {
        use tokio::io::AsyncReadExt;
        let client = crate::tls::client_builder()
            .unwrap()
            .timeout(Duration::from_millis(200))
            .build()
            .unwrap();
        let failure = |e: reqwest::Error| Error::transport("api.example", e).to_string();

        // Nobody listening.
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", closed.local_addr().unwrap());
        drop(closed);
        let e = client.get(&url).send().await.unwrap_err();
        assert_eq!(
            failure(e),
            "could not reach api.example: no connection could be made"
        );

        // Accepted, read, never answered.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", silent.local_addr().unwrap());
        let held = tokio::spawn(async move {
            let (mut socket, _) = silent.accept().await.unwrap();
            let mut sink = Vec::new();
            let _ = socket.read_to_end(&mut sink).await;
        });
        let e = client.get(&url).send().await.unwrap_err();
        assert_eq!(failure(e), "could not reach api.example: timed out");
        held.abort();

        // Accepted and closed at once.
        let rude = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", rude.local_addr().unwrap());
        tokio::spawn(async move {
            let (socket, _) = rude.accept().await.unwrap();
            drop(socket);
        });
        let e = client.get(&url).send().await.unwrap_err();
        assert_eq!(
            failure(e),
            "could not reach api.example: the connection failed"
        );
    }
}
