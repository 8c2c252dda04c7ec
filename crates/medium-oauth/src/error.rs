//! The one error type of the crate.

use std::time::Duration;

use crate::Scope;

/// One `{message, code}` item of a Medium error body.
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
    /// The grant was rejected: the code is bad, used or expired, the refresh
    /// token is revoked, or the client credentials are wrong (HTTP 401 from the
    /// token endpoint). Retrying will not help; the user must authorize again.
    #[error("Medium rejected the grant (HTTP {status}): {}; re-authorization required", list(.errors))]
    InvalidGrant {
        /// HTTP status.
        status: u16,
        /// Medium's error items.
        errors: Vec<MediumError>,
    },
    /// Medium answered with an error body.
    #[error("Medium API error (HTTP {status}): {}", list(.errors))]
    Api {
        /// HTTP status.
        status: u16,
        /// Medium's error items.
        errors: Vec<MediumError>,
        /// `Retry-After`, when the server sent one.
        retry_after: Option<Duration>,
    },
    /// The request got no answer.
    #[error("could not reach Medium ({kind:?}): {message}")]
    Transport {
        /// What kind of failure.
        kind: TransportKind,
        /// What the HTTP stack said.
        message: String,
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
    /// A success status whose body is not a usable token.
    #[error("malformed token response: {0}")]
    MalformedBody(String),
    /// The response body is larger than the client reads.
    #[error("response body exceeds {limit} bytes")]
    ResponseTooLarge {
        /// The cap, in bytes.
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
    },
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
            Error::Transport { .. } => true,
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

    pub(crate) fn transport(e: &reqwest::Error) -> Self {
        let kind = if e.is_timeout() {
            TransportKind::Timeout
        } else if e.is_connect() {
            TransportKind::Connect
        } else {
            TransportKind::Other
        };
        Error::Transport {
            kind,
            message: describe(e),
        }
    }
}

/// The error and its causes, with the URL left out: ours carry no secrets,
/// but a proxy's might.
fn describe(e: &reqwest::Error) -> String {
    let mut message = e.to_string();
    if let Some(url) = e.url() {
        message = message.replace(url.as_str(), "<url>");
    }
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}
