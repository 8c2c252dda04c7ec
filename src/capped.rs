//! Response bodies read with a cap, for every request the raw client sends.
//!
//! progenitor's generated operations read a whole body into memory before
//! parsing it, so a misbehaving server (or a proxy's error page) could make the
//! client buffer without limit. The client's `exec` hook reads at most
//! [`MAX_RESPONSE_BYTES`] and its `post` hook turns anything larger into an
//! error before the generated code sees it.

use progenitor_client::{ClientHooks, ClientInfo, Error, OperationInfo};

use crate::Client;

/// The largest response body read, in bytes. A token response is a few hundred
/// bytes and an error body smaller still; 1 MiB leaves room for any proxy page
/// worth quoting while bounding memory per request.
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// Marker in a response's extensions: its body exceeded
/// [`MAX_RESPONSE_BYTES`] and was discarded unread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyTooLarge;

/// Sends `request` and buffers the response body up to
/// [`MAX_RESPONSE_BYTES`] (see [`cap_body`]).
pub async fn execute_capped(
    client: &reqwest::Client,
    request: reqwest::Request,
) -> reqwest::Result<reqwest::Response> {
    cap_body(client.execute(request).await?).await
}

/// Buffers `response`'s body up to [`MAX_RESPONSE_BYTES`], for responses
/// that arrive some other way than [`execute_capped`] (e.g. through
/// reqwest-middleware). A larger body is dropped, the response then carries
/// [`BodyTooLarge`] in its extensions and an empty body; status and headers
/// are kept either way.
pub async fn cap_body(mut response: reqwest::Response) -> reqwest::Result<reqwest::Response> {
    let mut body = Vec::new();
    let mut too_large = response
        .content_length()
        .is_some_and(|len| len > MAX_RESPONSE_BYTES as u64);
    while !too_large {
        let Some(chunk) = response.chunk().await? else {
            break;
        };
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            too_large = true;
        } else {
            body.extend_from_slice(&chunk);
        }
    }
    if too_large {
        body = Vec::new();
    }
    let mut rebuilt = http::Response::new(body);
    *rebuilt.status_mut() = response.status();
    *rebuilt.version_mut() = response.version();
    *rebuilt.headers_mut() = std::mem::take(response.headers_mut());
    if too_large {
        rebuilt.extensions_mut().insert(BodyTooLarge);
    }
    Ok(reqwest::Response::from(rebuilt))
}

impl ClientHooks<()> for Client {
    async fn exec(
        &self,
        request: reqwest::Request,
        _info: &OperationInfo,
    ) -> reqwest::Result<reqwest::Response> {
        execute_capped(self.client(), request).await
    }

    async fn post<E>(
        &self,
        result: &reqwest::Result<reqwest::Response>,
        info: &OperationInfo,
    ) -> Result<(), Error<E>> {
        match result {
            Ok(response) if response.extensions().get::<BodyTooLarge>().is_some() => {
                Err(Error::Custom(format!(
                    "{}: response body exceeds {MAX_RESPONSE_BYTES} bytes",
                    info.operation_id
                )))
            }
            _ => Ok(()),
        }
    }
}
