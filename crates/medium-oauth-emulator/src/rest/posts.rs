//! `POST /v1/users/{authorId}/posts` and
//! `POST /v1/publications/{publicationId}/posts`.
//!
//! The token, its scope and the path are checked from the headers first; a
//! refused post's body is read and dropped, never buffered. An accepted
//! one's body is read straight from its bytes into the generated
//! `CreatePostRequest`, so serde names the field a body got wrong and
//! nothing but the request is built: unknown fields, which Medium ignores,
//! are skipped without being stored, and a `tags` list longer than
//! [`MAX_TAGS_SENT`] is refused before it is read. Either way a post costs
//! about its own size in memory, whatever its shape. The checks serde
//! cannot make (empty text, the canonical URL) follow. The answer applies
//! Medium's documented rules, each a choice where the documentation leaves
//! room:
//!
//! - tags: the first [`MAX_TAGS`] are considered, and of those a tag longer
//!   than [`MAX_TAG_CHARS`] characters (Unicode scalar values) is dropped;
//!   the rest are kept, in order;
//! - a title longer than [`MAX_TITLE_CHARS`] characters is ignored and one
//!   is made from the content: its first line with text, once HTML tags are
//!   stripped (html) or leading `#`s are (markdown), trimmed and cut to
//!   [`MAX_TITLE_CHARS`] characters; [`UNTITLED`] if there is none;
//! - `publishStatus` defaults to `public`, `license` to
//!   `all-rights-reserved`; `publishedAt` (the emulator clock's
//!   milliseconds) is given for public and unlisted posts, never drafts;
//!   `canonicalUrl` only when the request gave one; `licenseUrl` always;
//! - the post's URL is `https://medium.com/@<username>/<slug>-<id>` on the
//!   profile, `<publication url>/<slug>-<id>` in a publication, with a slug
//!   made from the title.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State as Extract};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use medium_oauth2_api::resource::operations::{create_publication_post, create_user_post};
use medium_oauth2_api::resource::types::{
    ContentFormat, ContributorRole, CreatePostRequest, License, Post, PostEnvelope, Publication,
    PublishStatus, User,
};
use serde::de::{Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde_json::error::Category;

use super::{authorize, count, data, not_the_user, path_id, publication_not_found, quote};
use crate::demo;
use crate::errors::{ApiError, codes};
use crate::state::{ReceivedPost, State};
use crate::tokens::{BodyError, body_too_slow, discard_body_within, read_body_within};

/// Tags considered, from the start of the list: Medium documents that only
/// the first three are used.
pub const MAX_TAGS: usize = 3;
/// Most tags a post may send; a longer list is refused (400) before it is
/// read. Medium uses only the first [`MAX_TAGS`], so no client sends
/// anywhere near this many; but each tag read costs a `String` (24 bytes)
/// however short it is on the wire (`"",` is 3), so a 1 MiB list of empty
/// tags would take over 8 MiB. A hundred cost at most 2.4 KiB beyond their
/// text.
pub const MAX_TAGS_SENT: usize = 100;
/// Longest tag kept, in characters: Medium documents that longer ones are
/// ignored.
pub const MAX_TAG_CHARS: usize = 25;
/// Longest title kept, in characters: Medium documents that a longer one is
/// ignored and a title is made from the content.
pub const MAX_TITLE_CHARS: usize = 100;
/// The title made for content with no text in it (only tags, say).
pub const UNTITLED: &str = "Untitled";
/// Longest slug in a post's URL, in characters: long enough to recognise
/// the title, as Medium's own slugs are.
const MAX_SLUG_CHARS: usize = 60;
/// Longest message of a 400 for a post body: serde's message quotes the
/// value it refused, which a hostile body can make a megabyte long.
const MAX_MESSAGE_CHARS: usize = 300;

/// Wire names of the fields checked beyond what serde checks; a unit test
/// holds them to the generated type's.
mod field {
    pub(super) const TITLE: &str = "title";
    pub(super) const CONTENT: &str = "content";
    pub(super) const CANONICAL_URL: &str = "canonicalUrl";
    pub(super) const TAGS: &str = "tags";
}

/// The media type a post body must have; parameters (`charset`) may follow.
const JSON_CONTENT_TYPE: &str = "application/json";

pub(crate) async fn create_user_post(
    Extract(state): Extract<Arc<State>>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    count(&state);
    let result = async {
        let checked = authorize(&state, &headers, create_user_post::SCOPE).and_then(|user| {
            if path_id(path) == user.id {
                Ok(user)
            } else {
                Err(not_the_user())
            }
        });
        let user = match checked {
            Ok(user) => user,
            Err(refusal) => return Err(refuse(&state, body, refusal).await),
        };
        let body = read(&state, body).await?;
        let request = parse(&headers, &body)?;
        Ok(create(&state, &user, None, request))
    }
    .await;
    respond(result)
}

pub(crate) async fn create_publication_post(
    Extract(state): Extract<Arc<State>>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    count(&state);
    let result = async {
        let checked =
            authorize(&state, &headers, create_publication_post::SCOPE).and_then(|user| {
                let id = path_id(path);
                let publication =
                    demo::publication(&id).ok_or_else(|| publication_not_found(&id))?;
                let role = demo::role(&id, &user.id).ok_or_else(|| {
                    ApiError::forbidden(
                        codes::PUBLICATION_FORBIDDEN,
                        "You are not a contributor to this publication.",
                    )
                })?;
                Ok((user, publication, role))
            });
        let (user, publication, role) = match checked {
            Ok(checked) => checked,
            Err(refusal) => return Err(refuse(&state, body, refusal).await),
        };
        let body = read(&state, body).await?;
        let request = parse(&headers, &body)?;
        let status = request.publish_status.unwrap_or_default();
        if role == ContributorRole::Writer && status != PublishStatus::Draft {
            return Err(ApiError::forbidden(
                codes::PUBLICATION_FORBIDDEN,
                format!("A writer may only create drafts in this publication, not {status} posts."),
            ));
        }
        Ok(create(&state, &user, Some(&publication), request))
    }
    .await;
    respond(result)
}

fn respond(result: Result<Post, ApiError>) -> Response {
    match result {
        Ok(post) => data(StatusCode::CREATED, &PostEnvelope { data: post }),
        Err(e) => e.into_response(),
    }
}

/// `refusal`, once the body it came with is read and dropped, so a client
/// still sending it is not cut off.
async fn refuse(state: &State, body: Body, refusal: ApiError) -> ApiError {
    discard_body_within(state, body, state.config.limits.post_body_bytes).await;
    refusal
}

/// Reads the whole body before it is checked, so a client still sending it
/// is not cut off by an early refusal.
async fn read(state: &State, body: Body) -> Result<axum::body::Bytes, ApiError> {
    let limit = state.config.limits.post_body_bytes;
    read_body_within(state, body, limit)
        .await
        .map_err(|e| match e {
            // A 400, not a 413: the spec lists 400 for a post Medium refuses.
            BodyError::TooLarge => ApiError::bad_request(
                codes::POST_TOO_LARGE,
                format!("Request body is over {limit} bytes."),
            ),
            BodyError::TooSlow => body_too_slow(),
        })
}

fn invalid(message: impl Into<String>) -> ApiError {
    let message = message.into();
    let message = match message.char_indices().nth(MAX_MESSAGE_CHARS) {
        None => message,
        Some((end, _)) => format!("{}…", &message[..end]),
    };
    ApiError::bad_request(codes::INVALID_POST, message)
}

fn not_json(e: &serde_json::Error) -> ApiError {
    invalid(format!("Body is not valid JSON: {e}"))
}

/// What [`parse`] reads of a post before the request itself: how many tags
/// it sends. Every other field is skipped unread.
#[derive(serde::Deserialize)]
struct TagsProbe {
    /// The generated type's `tags` ([`field::TAGS`]; a unit test holds them
    /// together).
    tags: Option<TagCount>,
}

/// The length of a JSON list, counted without storing an element.
struct TagCount(usize);

impl<'de> serde::Deserialize<'de> for TagCount {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_seq(TagCounter)
    }
}

struct TagCounter;

impl<'de> Visitor<'de> for TagCounter {
    type Value = TagCount;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a list of tags")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<TagCount, A::Error> {
        let mut sent = 0_usize;
        while seq.next_element::<IgnoredAny>()?.is_some() {
            sent = sent.saturating_add(1);
        }
        Ok(TagCount(sent))
    }
}

/// The request, or a 400 naming what is wrong with it.
pub(crate) fn parse(headers: &HeaderMap, body: &[u8]) -> Result<CreatePostRequest, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    if !essence.eq_ignore_ascii_case(JSON_CONTENT_TYPE) {
        return Err(invalid(format!(
            "Content-Type must be {JSON_CONTENT_TYPE}, not {:?}.",
            quote(content_type)
        )));
    }
    // Never through a serde_json::Value: one holds every ignored value too,
    // at up to 30 times its size on the wire (`0,` becomes a 32-byte Value).
    // serde_json's recursion limit bounds a deeply nested body on every read
    // below.
    let first = body
        .iter()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
    if first != Some(&b'{') {
        // serde's derive would read a JSON array into the struct field by
        // field, so only an object goes on. IgnoredAny tells JSON that is not
        // an object from what is not JSON at all, storing nothing.
        return Err(match serde_json::from_slice::<IgnoredAny>(body) {
            Ok(_) => invalid("Body must be a JSON object."),
            Err(e) => not_json(&e),
        });
    }
    match serde_json::from_slice::<TagsProbe>(body) {
        Ok(TagsProbe {
            tags: Some(TagCount(sent)),
        }) if sent > MAX_TAGS_SENT => {
            return Err(invalid(format!(
                "Invalid field `{}`: {sent} tags sent; at most {MAX_TAGS_SENT} may be (Medium uses the first {MAX_TAGS}).",
                field::TAGS
            )));
        }
        Err(e) if e.classify() != Category::Data => return Err(not_json(&e)),
        // A `tags` that is not a list, or a duplicate one: the typed read
        // below names what is wrong with it.
        Ok(_) | Err(_) => {}
    }
    let mut reader = serde_json::Deserializer::from_slice(body);
    let request: CreatePostRequest =
        serde_path_to_error::deserialize(&mut reader).map_err(|e| {
            if e.inner().classify() != Category::Data {
                return not_json(e.inner());
            }
            let path = e.path().to_string();
            if path == "." {
                // A missing field: serde's message names it.
                invalid(format!("Invalid post: {}.", e.inner()))
            } else {
                invalid(format!("Invalid field `{path}`: {}.", e.inner()))
            }
        })?;
    // Anything after the object but whitespace.
    reader.end().map_err(|e| not_json(&e))?;
    for (name, text) in [
        (field::TITLE, &request.title),
        (field::CONTENT, &request.content),
    ] {
        if text.trim().is_empty() {
            return Err(invalid(format!("Invalid field `{name}`: it is empty.")));
        }
    }
    if let Some(url) = &request.canonical_url
        && !is_absolute_http_url(url)
    {
        return Err(invalid(format!(
            "Invalid field `{}`: {:?} is not an absolute http(s) URL.",
            field::CANONICAL_URL,
            quote(url)
        )));
    }
    Ok(request)
}

fn is_absolute_http_url(text: &str) -> bool {
    url::Url::parse(text)
        .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
}

/// The tags kept: see the module's documentation.
pub(crate) fn kept_tags(tags: &[String]) -> Vec<String> {
    tags.iter()
        .take(MAX_TAGS)
        .filter(|t| t.chars().count() <= MAX_TAG_CHARS)
        .cloned()
        .collect()
}

/// The title answered: the request's, or one made from the content when
/// the request's is too long (see the module's documentation).
pub(crate) fn title(request: &CreatePostRequest) -> String {
    if request.title.chars().count() <= MAX_TITLE_CHARS {
        return request.title.clone();
    }
    let text = match request.content_format {
        ContentFormat::Html => strip_tags(&request.content),
        ContentFormat::Markdown => request.content.clone(),
    };
    let line = text
        .lines()
        .map(|line| match request.content_format {
            ContentFormat::Markdown => line.trim_start().trim_start_matches('#').trim(),
            ContentFormat::Html => line.trim(),
        })
        .find(|line| !line.is_empty())
        .unwrap_or(UNTITLED);
    line.chars().take(MAX_TITLE_CHARS).collect()
}

/// HTML with each tag replaced by a line break, so block elements end
/// lines; an unclosed `<` hides the rest.
fn strip_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match (in_tag, c) {
            (false, '<') => {
                in_tag = true;
                out.push('\n');
            }
            (false, c) => out.push(c),
            (true, '>') => in_tag = false,
            (true, _) => {}
        }
    }
    out
}

/// A URL slug from a title: lowercase ASCII letters and digits, runs of
/// anything else as one `-`, at most [`MAX_SLUG_CHARS`]; `post` when
/// nothing is left.
fn slug(title: &str) -> String {
    let mut out = String::new();
    for c in title.chars() {
        if out.len() >= MAX_SLUG_CHARS {
            break;
        }
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out.trim_end_matches('-');
    if out.is_empty() {
        "post".into()
    } else {
        out.into()
    }
}

/// The page of each license: Creative Commons' deeds, and Medium's terms
/// for all rights reserved.
pub(crate) fn license_url(license: License) -> &'static str {
    match license {
        License::AllRightsReserved => {
            "https://policy.medium.com/medium-terms-of-service-9db0094a1e0f"
        }
        License::Cc40By => "https://creativecommons.org/licenses/by/4.0/",
        License::Cc40BySa => "https://creativecommons.org/licenses/by-sa/4.0/",
        License::Cc40ByNd => "https://creativecommons.org/licenses/by-nd/4.0/",
        License::Cc40ByNc => "https://creativecommons.org/licenses/by-nc/4.0/",
        License::Cc40ByNcNd => "https://creativecommons.org/licenses/by-nc-nd/4.0/",
        License::Cc40ByNcSa => "https://creativecommons.org/licenses/by-nc-sa/4.0/",
        License::Cc40Zero => "https://creativecommons.org/publicdomain/zero/1.0/",
        License::PublicDomain => "https://creativecommons.org/publicdomain/mark/1.0/",
    }
}

/// Creates `user`'s post, remembers it, and returns the answer.
fn create(
    state: &State,
    user: &User,
    publication: Option<&Publication>,
    request: CreatePostRequest,
) -> Post {
    let status = request.publish_status.unwrap_or_default();
    let license = request.license.unwrap_or_default();
    let title = title(&request);
    let slug = slug(&title);
    let now = state.clock.now_ms();
    let limits = &state.config.limits;
    let mut created = state.created();
    created.last_post = created.last_post.wrapping_add(1);
    let id = format!("{:012x}", created.last_post);
    let url = match publication {
        Some(p) => format!("{}/{slug}-{id}", p.url),
        None => format!("https://medium.com/@{}/{slug}-{id}", user.username),
    };
    let post = Post {
        id,
        title,
        author_id: user.id.clone(),
        tags: kept_tags(&request.tags),
        url,
        canonical_url: request.canonical_url.clone(),
        publish_status: status,
        published_at: (status != PublishStatus::Draft).then_some(now),
        license,
        license_url: license_url(license).into(),
        publication_id: publication.map(|p| p.id.clone()),
    };
    let record = ReceivedPost {
        author_id: user.id.clone(),
        publication_id: post.publication_id.clone(),
        request,
        post: post.clone(),
    };
    let footprint = record.footprint();
    created
        .posts
        .push(record, footprint, limits.posts, limits.post_bytes);
    post
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(title: &str, format: ContentFormat, content: &str) -> CreatePostRequest {
        CreatePostRequest {
            title: title.into(),
            content_format: format,
            content: content.into(),
            canonical_url: Some("https://example.com/a".into()),
            license: Some(License::Cc40By),
            notify_followers: Some(true),
            publish_status: Some(PublishStatus::Draft),
            tags: vec!["t".into()],
        }
    }

    #[test]
    fn the_checked_field_names_are_the_generated_types() {
        let value = serde_json::to_value(request("t", ContentFormat::Html, "c")).unwrap();
        let object = value.as_object().unwrap();
        assert_eq!(object["title"], "t");
        for name in [field::TITLE, field::CONTENT, field::CANONICAL_URL] {
            assert!(object.contains_key(name), "{name}");
        }
        assert_eq!(object[field::CANONICAL_URL], "https://example.com/a");
        assert_eq!(object[field::TAGS], serde_json::json!(["t"]));
    }

    #[test]
    fn the_tag_probe_counts_the_generated_types_tags() {
        let mut sent = request("t", ContentFormat::Html, "c");
        sent.tags = vec!["a".into(), "b".into(), String::new()];
        let bytes = serde_json::to_vec(&sent).unwrap();
        let probe: TagsProbe = serde_json::from_slice(&bytes).unwrap();
        assert!(matches!(probe.tags, Some(TagCount(3))));
        let none: TagsProbe = serde_json::from_slice(br#"{"x":[1,2]}"#).unwrap();
        assert!(none.tags.is_none());
        // A `tags` that is not a list is a data error, which `parse` leaves
        // to the typed read to name.
        let Err(e) = serde_json::from_slice::<TagsProbe>(br#"{"tags":"a,b"}"#) else {
            panic!("a string is not a list of tags");
        };
        assert_eq!(e.classify(), Category::Data);
        assert!(e.to_string().contains("expected a list of tags"), "{e}");
    }

    #[test]
    fn long_titles_are_made_from_the_content() {
        let long = "x".repeat(MAX_TITLE_CHARS + 1);
        let exact = "y".repeat(MAX_TITLE_CHARS);
        assert_eq!(title(&request(&exact, ContentFormat::Html, "c")), exact);
        let md = "\n  \n## Hello *world*  \nrest";
        assert_eq!(
            title(&request(&long, ContentFormat::Markdown, md)),
            "Hello *world*"
        );
        let html = "<h1 class=\"t\">Big <em>news</em></h1><p>body</p>";
        assert_eq!(title(&request(&long, ContentFormat::Html, html)), "Big");
        assert_eq!(
            title(&request(&long, ContentFormat::Html, "<br><img src=x>")),
            UNTITLED
        );
        let wordy = "w".repeat(300);
        assert_eq!(
            title(&request(&long, ContentFormat::Markdown, &wordy))
                .chars()
                .count(),
            MAX_TITLE_CHARS
        );
    }

    #[test]
    fn slugs_are_lowercase_ascii_words() {
        assert_eq!(slug("Hello, World! 2"), "hello-world-2");
        assert_eq!(slug("¿¿??"), "post");
        assert!(slug(&"ab ".repeat(100)).len() <= MAX_SLUG_CHARS);
    }
}
