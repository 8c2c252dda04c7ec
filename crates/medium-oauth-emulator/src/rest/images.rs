//! `POST /v1/images`: a `multipart/form-data` body with exactly one part,
//! named `image` (the generated `part::IMAGE`), with a filename and one of
//! the generated `part_content_types::IMAGE`. The answer is 201
//! `{"data":{"url","md5"}}`: the hex MD5 of the image's bytes, and a URL on
//! a CDN-like host made of the MD5 and an extension from the content type.
//!
//! An image over [`Limits::image_upload_bytes`](crate::Limits) is refused
//! with a 400 ([`codes::IMAGE_TOO_LARGE`]), as is a body longer than that
//! plus [`MULTIPART_OVERHEAD_BYTES`](crate::MULTIPART_OVERHEAD_BYTES): the
//! spec lists 400 as the upload's refusal.
//!
//! The token and its scope are checked from the headers first. A refused
//! upload's body is read and dropped (see [`discard_body_within`]), never
//! buffered, and takes no read permit; so only authorised uploads compete
//! for the [`IMAGE_READS_AT_ONCE`](crate::state::IMAGE_READS_AT_ONCE)
//! permits to buffer a body, and clients without a token cannot starve
//! them.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State as Extract;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use md5::{Digest, Md5};
use medium_oauth2_api::resource::operations::upload_image;
use medium_oauth2_api::resource::types::{Image, ImageEnvelope};

use super::{authorize, count, data, multipart, quote};
use crate::config::MULTIPART_OVERHEAD_BYTES;
use crate::errors::{ApiError, codes};
use crate::state::{ReceivedImage, State};
use crate::tokens::{BodyError, body_too_slow, discard_body_within, read_body_within};

/// Where uploaded images are said to live: a CDN-like host, as Medium's.
const IMAGE_HOST_URL: &str = "https://cdn-images-1.medium.com";

pub(crate) async fn upload_image(
    Extract(state): Extract<Arc<State>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    count(&state);
    let result = async {
        if let Err(refusal) = authorize(&state, &headers, upload_image::SCOPE) {
            discard_body_within(&state, body, body_limit(&state)).await;
            return Err(refusal);
        }
        let body = read(&state, body).await?;
        accept(&state, &headers, &body)
    }
    .await;
    match result {
        Ok(image) => data(StatusCode::CREATED, &ImageEnvelope { data: image }),
        Err(e) => e.into_response(),
    }
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::bad_request(codes::INVALID_UPLOAD, message)
}

/// Longest upload body read: the image cap plus its framing.
fn body_limit(state: &State) -> usize {
    state
        .config
        .limits
        .image_upload_bytes
        .saturating_add(MULTIPART_OVERHEAD_BYTES)
}

/// Reads an authorised upload's whole body, holding one of the few permits
/// to buffer one, before the body is checked, so a client still sending it
/// is not cut off by an early refusal.
///
/// A slow authorised client holds its permit until its body deadline; only
/// a token holder can do that, and the deadline bounds it.
async fn read(state: &State, body: Body) -> Result<axum::body::Bytes, ApiError> {
    let limits = &state.config.limits;
    let wait = crate::wall::timeout(limits.body_read_timeout, state.image_reads.acquire()).await;
    // The semaphore is never closed; a wait past the body deadline means
    // every permit is taken by uploads that each take that long.
    let Some(Ok(_permit)) = wait else {
        return Err(ApiError::too_many_uploads(limits.body_read_timeout));
    };
    let limit = body_limit(state);
    read_body_within(state, body, limit)
        .await
        .map_err(|e| match e {
            BodyError::TooLarge => ApiError::bad_request(
                codes::IMAGE_TOO_LARGE,
                format!(
                    "The upload is over {limit} bytes; images may be {} bytes.",
                    limits.image_upload_bytes
                ),
            ),
            BodyError::TooSlow => body_too_slow(),
        })
}

/// Checks the upload and remembers it.
fn accept(state: &State, headers: &HeaderMap, body: &[u8]) -> Result<Image, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .ok_or_else(|| invalid("The body must be multipart/form-data; it has no Content-Type."))?;
    let boundary = multipart::boundary(&content_type).map_err(invalid)?;
    let part = multipart::single_part(body, &boundary).map_err(invalid)?;
    if part.name != upload_image::part::IMAGE {
        return Err(invalid(format!(
            "The part must be named `{}`, not {:?}.",
            upload_image::part::IMAGE,
            quote(&part.name)
        )));
    }
    let filename = part
        .filename
        .filter(|f| !f.trim().is_empty())
        .ok_or_else(|| invalid("The image part has no filename."))?;
    let part_type = part
        .content_type
        .ok_or_else(|| invalid("The image part has no Content-Type."))?;
    let essence = part_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let Some(known) = upload_image::part_content_types::IMAGE
        .iter()
        .find(|t| **t == essence)
    else {
        return Err(invalid(format!(
            "The image's Content-Type must be one of {}, not {:?}.",
            upload_image::part_content_types::IMAGE.join(", "),
            quote(&part_type)
        )));
    };
    let cap = state.config.limits.image_upload_bytes;
    if part.data.len() > cap {
        return Err(ApiError::bad_request(
            codes::IMAGE_TOO_LARGE,
            format!(
                "The image is {} bytes; images may be {cap} bytes.",
                part.data.len()
            ),
        ));
    }
    if part.data.is_empty() {
        return Err(invalid("The image is empty."));
    }
    let md5: String = Md5::digest(part.data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    // The subtype is the usual extension of each of the four: jpeg, png,
    // gif, tiff.
    let extension = known.rsplit('/').next().unwrap_or("img");
    let url = format!("{IMAGE_HOST_URL}/{md5}.{extension}");
    let record = ReceivedImage {
        md5: md5.clone(),
        content_type: part_type,
        filename,
        size: part.data.len(),
        url: url.clone(),
    };
    let footprint = record.footprint();
    let limits = &state.config.limits;
    state
        .created()
        .images
        .push(record, footprint, limits.images, usize::MAX);
    Ok(Image { url, md5 })
}
