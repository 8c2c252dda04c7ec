//! Faults a test can queue for the next token requests, to see how a client
//! copes with an unhealthy service.

use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// One injected fault. Each queued fault answers exactly one token request,
/// on either token endpoint, before the request is looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// An error status with Medium's JSON error body.
    Status(u16),
    /// `429 Too Many Requests` with a `Retry-After` in whole seconds.
    TooManyRequests {
        /// Value of `Retry-After`.
        retry_after: Duration,
    },
    /// Wait, then handle the request normally.
    Delay(Duration),
    /// Handle the request normally, but issue a token that expired a second
    /// ago, as a server with a bad clock would.
    ExpiredToken,
    /// Drop the connection without a complete response.
    DropConnection,
    /// `302 Found` to `location`: a client that follows it would send its
    /// secrets there.
    Redirect {
        /// Value of `Location`.
        location: String,
    },
    /// Any response: status, content type and raw body (an HTML proxy page,
    /// malformed JSON, an empty or a huge body).
    Respond {
        /// HTTP status.
        status: u16,
        /// `Content-Type`; none when empty.
        content_type: String,
        /// Raw body bytes.
        body: Vec<u8>,
    },
}

impl Fault {
    /// A `200`-class HTML page, as a captive portal or proxy would send.
    pub fn html_page(status: u16) -> Self {
        Self::Respond {
            status,
            content_type: "text/html; charset=utf-8".into(),
            body: b"<!doctype html><html><body><h1>Bad Gateway</h1></body></html>".to_vec(),
        }
    }

    /// JSON that does not parse.
    pub fn malformed_json(status: u16) -> Self {
        Self::Respond {
            status,
            content_type: "application/json".into(),
            body: br#"{"token_type":"Bearer","access_tok"#.to_vec(),
        }
    }

    /// An empty body.
    pub fn empty_body(status: u16) -> Self {
        Self::Respond {
            status,
            content_type: String::new(),
            body: Vec::new(),
        }
    }

    /// A well-formed JSON object without `access_token`.
    pub fn missing_access_token(status: u16) -> Self {
        Self::Respond {
            status,
            content_type: "application/json".into(),
            body: br#"{"token_type":"Bearer","scope":["basicProfile"],"expires_at":1}"#.to_vec(),
        }
    }

    /// A JSON body of `len` bytes.
    pub fn huge_body(status: u16, len: usize) -> Self {
        let mut body = b"{\"pad\":\"".to_vec();
        body.resize(len.saturating_sub(2), b'a');
        body.extend_from_slice(b"\"}");
        Self::Respond {
            status,
            content_type: "application/json".into(),
            body,
        }
    }

    /// The response this fault sends, or `None` for a delay (the request then
    /// goes on normally).
    pub(crate) async fn apply(self) -> Option<Response> {
        match self {
            Fault::Status(code) => {
                let status =
                    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                Some(
                    crate::errors::ApiError::new(
                        status,
                        i64::from(code),
                        format!("Injected fault: HTTP {code}."),
                    )
                    .into_response(),
                )
            }
            Fault::TooManyRequests { retry_after } => {
                let mut response = crate::errors::ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    429,
                    "Too many requests.",
                )
                .into_response();
                response.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(retry_after.as_secs()),
                );
                Some(response)
            }
            Fault::Delay(delay) => {
                tokio::time::sleep(delay).await;
                None
            }
            Fault::ExpiredToken => None,
            Fault::DropConnection => {
                // A body stream that fails makes hyper abort the connection;
                // the client sees a transport error, never a response.
                let stream = futures_util::stream::once(async {
                    Err::<bytes::Bytes, _>(std::io::Error::other("injected connection drop"))
                });
                Some(
                    Response::builder()
                        .status(StatusCode::OK)
                        .header(header::CONTENT_TYPE, "application/json")
                        .body(Body::from_stream(stream))
                        .unwrap_or_default(),
                )
            }
            Fault::Redirect { location } => {
                Some((StatusCode::FOUND, [(header::LOCATION, location)]).into_response())
            }
            Fault::Respond {
                status,
                content_type,
                body,
            } => {
                let mut builder = Response::builder()
                    .status(StatusCode::from_u16(status).unwrap_or(StatusCode::OK));
                if !content_type.is_empty() {
                    builder = builder.header(header::CONTENT_TYPE, content_type);
                }
                Some(builder.body(Body::from(body)).unwrap_or_default())
            }
        }
    }
}
