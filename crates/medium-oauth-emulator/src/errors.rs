//! Error responses in Medium's shape: `{"errors":[{"message","code"}]}`,
//! always `application/json`, never an empty array (the official SDKs read
//! `errors[0]` unchecked).

use std::time::Duration;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use medium_oauth2_api::types;

/// Medium's error codes. Those the live service is known to send come first;
/// Medium documents none for the token endpoint's own failures, so the
/// emulator's choices for those follow, and clients should match on the HTTP
/// status (401 from the token endpoint: the grant or client is bad) rather
/// than on these numbers.
pub mod codes {
    /// `An access token is required.`
    pub const TOKEN_REQUIRED: i64 = 6000;
    /// `Missing scope: X`
    pub const MISSING_SCOPE: i64 = 6002;
    /// `Token was invalid.` (bad or expired access token)
    pub const TOKEN_INVALID: i64 = 6003;
    /// `Application not found` (unknown client id)
    pub const APPLICATION_NOT_FOUND: i64 = 6005;
    /// `Unexpected field (X) specified`
    pub const UNEXPECTED_FIELD: i64 = 6007;
    /// `grant_type was invalid.` (also any body that is not a urlencoded form)
    pub const GRANT_TYPE_INVALID: i64 = 6021;

    /// Emulator's choice: a required form field is missing or empty.
    pub const MISSING_FIELD: i64 = 6022;
    /// Emulator's choice: the authorization code is unknown, expired, used,
    /// or belongs to another client.
    pub const CODE_INVALID: i64 = 6023;
    /// Emulator's choice: `redirect_uri` differs from the authorization
    /// request's.
    pub const REDIRECT_URI_MISMATCH: i64 = 6024;
    /// Emulator's choice: the refresh token is unknown or revoked.
    pub const REFRESH_TOKEN_INVALID: i64 = 6025;
    /// Emulator's choice: the client secret is wrong.
    pub const CLIENT_SECRET_INVALID: i64 = 6026;
    /// Emulator's choice: the path names another user (`/users/{id}/…` with
    /// an id other than the token's user): 403.
    pub const NOT_THE_USER: i64 = 6027;
    /// Emulator's choice: the user does not contribute to the publication,
    /// or is a writer there creating a post that is not a draft: 403.
    pub const PUBLICATION_FORBIDDEN: i64 = 6028;
    /// Emulator's choice: no publication has that id: 404. Medium documents
    /// no answer for it; the spec's 404 is marked as the emulator's.
    pub const PUBLICATION_NOT_FOUND: i64 = 6029;
    /// Emulator's choice: a post body is not a JSON object or a field of it
    /// is missing or invalid; the message names the field: 400.
    pub const INVALID_POST: i64 = 6030;
    /// Emulator's choice: an image upload is not a `multipart/form-data`
    /// body with exactly one `image` part carrying a filename and an image
    /// type; the message says what is wrong: 400.
    pub const INVALID_UPLOAD: i64 = 6031;
    /// Emulator's choice: the image, or the whole upload body, is over the
    /// size cap. A 400 rather than a 413, as the spec lists only 400 for the
    /// upload's refusals.
    pub const IMAGE_TOO_LARGE: i64 = 6032;
    /// Emulator's choice: a post body is over
    /// [`Limits::post_body_bytes`](crate::Limits::post_body_bytes). A 400
    /// rather than a 413 ([`BODY_TOO_LARGE`]), as the spec lists only 400
    /// for a post's refusals.
    pub const POST_TOO_LARGE: i64 = 6033;
    /// Emulator's choice: no such endpoint or method.
    pub const NOT_FOUND: i64 = 6404;
    /// Emulator's choice: the request body did not arrive within the body
    /// read timeout.
    pub const BODY_TOO_SLOW: i64 = 6408;
    /// Emulator's choice: the request body is over the size limit: 413, on
    /// the token endpoints.
    pub const BODY_TOO_LARGE: i64 = 6413;
    /// Emulator's choice: 503, try again later: a memory cap is reached, or
    /// an image upload waited its body deadline for one of the few reads
    /// allowed at once (the message says which).
    pub const OVERLOADED: i64 = 6503;
}

/// One error response.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) code: i64,
    pub(crate) message: String,
    /// Seconds for a `Retry-After` header, on a 503 whose wait has a known
    /// bound.
    pub(crate) retry_after_secs: Option<u64>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: i64, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after_secs: None,
        }
    }

    pub(crate) fn unauthorized(code: i64, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, message)
    }

    pub(crate) fn bad_request(code: i64, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub(crate) fn forbidden(code: i64, message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, message)
    }

    pub(crate) fn grant_type_invalid() -> Self {
        Self::bad_request(codes::GRANT_TYPE_INVALID, "grant_type was invalid.")
    }

    pub(crate) fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, codes::NOT_FOUND, "Not found.")
    }

    pub(crate) fn overloaded() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            codes::OVERLOADED,
            "The emulator is at its memory cap; try again later.",
        )
    }

    /// 503 for an image upload that waited `wait` for one of the few reads
    /// allowed at once. `wait` is the body deadline, the longest any upload
    /// holds a permit, so it is the `Retry-After` (rounded up to whole
    /// seconds, as the header counts).
    pub(crate) fn too_many_uploads(wait: Duration) -> Self {
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        Self {
            retry_after_secs: Some(secs.max(1)),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                codes::OVERLOADED,
                "Too many uploads at once; try again later.",
            )
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = types::Error {
            errors: vec![types::ErrorErrorsItem {
                code: Some(self.code),
                message: Some(self.message),
            }],
        };
        let json = serde_json::to_vec(&body).unwrap_or_default();
        let mut response = (
            self.status,
            [(header::CONTENT_TYPE, "application/json")],
            json,
        )
            .into_response();
        if let Some(secs) = self.retry_after_secs {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
        }
        response
    }
}
