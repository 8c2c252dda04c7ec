//! Posts as Medium takes them: a builder that refuses, before any request,
//! what Medium would silently ignore or change.

use medium_oauth2_api::resource::types::{
    ContentFormat, CreatePostRequest, License, PublishStatus,
};

/// Medium uses only a post's first this many tags and ignores the rest.
pub const MAX_TAGS: usize = 3;

/// Medium ignores a tag longer than this, in characters (Unicode scalar
/// values).
pub const MAX_TAG_CHARS: usize = 25;

/// Medium ignores a title longer than this, in characters, and makes one up
/// from the content instead.
pub const MAX_TITLE_CHARS: usize = 100;

/// Every license Medium takes, in the spec's order.
pub const LICENSES: [License; 9] = [
    License::AllRightsReserved,
    License::Cc40By,
    License::Cc40BySa,
    License::Cc40ByNd,
    License::Cc40ByNc,
    License::Cc40ByNcNd,
    License::Cc40ByNcSa,
    License::Cc40Zero,
    License::PublicDomain,
];

/// The largest request body a post is sent with, in bytes of JSON (after
/// escaping: a `"` takes two bytes, a control character six). Medium
/// documents no limit; 1 MiB is some 150,000 words of prose, and the
/// emulator takes exactly this much (a test holds the two together).
pub const MAX_POST_BODY_BYTES: usize = 1024 * 1024;

/// Why a post was refused before it was sent. Medium would not refuse most of
/// these: it drops extra or long tags and replaces a long title, so a post
/// would go out different from the one written. The builder refuses instead,
/// so what is sent is what appears.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidPost {
    /// The title is empty or only whitespace.
    #[error("the post's title is empty")]
    EmptyTitle,
    /// The title is longer than [`MAX_TITLE_CHARS`]: Medium would ignore it.
    #[error(
        "the post's title has {chars} characters; Medium ignores titles over {MAX_TITLE_CHARS}"
    )]
    TitleTooLong {
        /// Its length, in characters.
        chars: usize,
    },
    /// The content is empty or only whitespace.
    #[error("the post's content is empty")]
    EmptyContent,
    /// More than [`MAX_TAGS`] tags: Medium would use only the first ones.
    #[error("the post has {count} tags; Medium uses only the first {MAX_TAGS}")]
    TooManyTags {
        /// How many were given.
        count: usize,
    },
    /// A tag is empty or only whitespace.
    #[error("tag {index} is empty")]
    EmptyTag {
        /// Its position, from 0.
        index: usize,
    },
    /// A tag is longer than [`MAX_TAG_CHARS`]: Medium would ignore it.
    #[error("tag {index} has {chars} characters; Medium ignores tags over {MAX_TAG_CHARS}")]
    TagTooLong {
        /// Its position, from 0.
        index: usize,
        /// Its length, in characters.
        chars: usize,
    },
    /// The post's JSON is larger than [`MAX_POST_BODY_BYTES`].
    #[error("the post is {bytes} bytes of JSON; at most {MAX_POST_BODY_BYTES} are sent")]
    TooLarge {
        /// Its size, as sent.
        bytes: usize,
    },
    /// The canonical URL is not an absolute `http` or `https` URL.
    #[error("the canonical URL is not an absolute http(s) URL: {reason}")]
    InvalidCanonicalUrl {
        /// What is wrong with it.
        reason: String,
    },
}

/// A post that passed [`PostBuilder::build`]: every field is one Medium
/// keeps as it is.
#[derive(Debug, Clone)]
pub struct NewPost {
    pub(crate) request: CreatePostRequest,
}

impl NewPost {
    /// A post written in markdown.
    pub fn markdown(title: impl Into<String>, content: impl Into<String>) -> PostBuilder {
        Self::builder(title, ContentFormat::Markdown, content)
    }

    /// A post written in HTML.
    pub fn html(title: impl Into<String>, content: impl Into<String>) -> PostBuilder {
        Self::builder(title, ContentFormat::Html, content)
    }

    /// A post with its content in `format`.
    pub fn builder(
        title: impl Into<String>,
        format: ContentFormat,
        content: impl Into<String>,
    ) -> PostBuilder {
        PostBuilder {
            request: CreatePostRequest {
                title: title.into(),
                content_format: format,
                content: content.into(),
                tags: Vec::new(),
                canonical_url: None,
                publish_status: None,
                license: None,
                notify_followers: None,
            },
        }
    }

    /// The request body as it will be sent.
    pub fn request(&self) -> &CreatePostRequest {
        &self.request
    }
}

/// Builds a [`NewPost`]; [`build`](Self::build) checks it against Medium's
/// rules. Unset options are left out of the request, so Medium's defaults
/// apply: `public`, `all-rights-reserved`, no canonical URL.
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct PostBuilder {
    request: CreatePostRequest,
}

impl PostBuilder {
    /// Adds tags, after any given before. At most [`MAX_TAGS`] in all, each
    /// at most [`MAX_TAG_CHARS`] characters.
    pub fn tags<I, T>(mut self, tags: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        self.request.tags.extend(tags.into_iter().map(Into::into));
        self
    }

    /// The original home of this content, when it was published elsewhere
    /// first.
    pub fn canonical_url(mut self, url: impl Into<String>) -> Self {
        self.request.canonical_url = Some(url.into());
        self
    }

    /// `public` (Medium's default), `draft` or `unlisted`.
    pub fn status(mut self, status: PublishStatus) -> Self {
        self.request.publish_status = Some(status);
        self
    }

    /// The post's license (Medium's default: `all-rights-reserved`).
    pub fn license(mut self, license: License) -> Self {
        self.request.license = Some(license);
        self
    }

    /// Whether Medium notifies the author's followers.
    pub fn notify_followers(mut self, notify: bool) -> Self {
        self.request.notify_followers = Some(notify);
        self
    }

    /// The post, or the first rule it breaks.
    pub fn build(self) -> Result<NewPost, InvalidPost> {
        let request = self.request;
        if request.title.trim().is_empty() {
            return Err(InvalidPost::EmptyTitle);
        }
        let chars = request.title.chars().count();
        if chars > MAX_TITLE_CHARS {
            return Err(InvalidPost::TitleTooLong { chars });
        }
        if request.content.trim().is_empty() {
            return Err(InvalidPost::EmptyContent);
        }
        if request.tags.len() > MAX_TAGS {
            return Err(InvalidPost::TooManyTags {
                count: request.tags.len(),
            });
        }
        for (index, tag) in request.tags.iter().enumerate() {
            if tag.trim().is_empty() {
                return Err(InvalidPost::EmptyTag { index });
            }
            let chars = tag.chars().count();
            if chars > MAX_TAG_CHARS {
                return Err(InvalidPost::TagTooLong { index, chars });
            }
        }
        if let Some(url) = &request.canonical_url {
            check_canonical_url(url)?;
        }
        // Measured as sent, so escaping counts; serialising plain strings,
        // enums and a bool cannot fail.
        let bytes = serde_json::to_vec(&request).map_or(usize::MAX, |json| json.len());
        if bytes > MAX_POST_BODY_BYTES {
            return Err(InvalidPost::TooLarge { bytes });
        }
        Ok(NewPost { request })
    }
}

fn check_canonical_url(text: &str) -> Result<(), InvalidPost> {
    let invalid = |reason: String| InvalidPost::InvalidCanonicalUrl { reason };
    let url = url::Url::parse(text).map_err(|e| invalid(e.to_string()))?;
    // The parser refuses an http(s) URL without a host, so the scheme is
    // all that is left to check.
    match url.scheme() {
        "http" | "https" => Ok(()),
        scheme => Err(invalid(format!("its scheme is {scheme:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post() -> PostBuilder {
        NewPost::markdown("Title", "# Title\n\nBody")
    }

    #[test]
    fn every_rule_holds_at_its_boundary() {
        let chars = |n: usize| "é".repeat(n);
        assert!(
            NewPost::html(chars(MAX_TITLE_CHARS), "<p>x</p>")
                .build()
                .is_ok()
        );
        assert_eq!(
            NewPost::html(chars(MAX_TITLE_CHARS + 1), "<p>x</p>")
                .build()
                .unwrap_err(),
            InvalidPost::TitleTooLong {
                chars: MAX_TITLE_CHARS + 1
            }
        );
        assert!(post().tags(["a", "b", "c"]).build().is_ok());
        assert_eq!(
            post()
                .tags(["a", "b"])
                .tags(["c", "d"])
                .build()
                .unwrap_err(),
            InvalidPost::TooManyTags { count: 4 }
        );
        assert!(post().tags([chars(MAX_TAG_CHARS)]).build().is_ok());
        assert_eq!(
            post()
                .tags(["ok".into(), chars(MAX_TAG_CHARS + 1)])
                .build()
                .unwrap_err(),
            InvalidPost::TagTooLong {
                index: 1,
                chars: MAX_TAG_CHARS + 1
            }
        );
        assert_eq!(
            post().tags(["ok", " \t"]).build().unwrap_err(),
            InvalidPost::EmptyTag { index: 1 }
        );
        assert_eq!(
            NewPost::markdown(" \n", "x").build().unwrap_err(),
            InvalidPost::EmptyTitle
        );
        assert_eq!(
            NewPost::markdown("t", " \n").build().unwrap_err(),
            InvalidPost::EmptyContent
        );
    }

    #[test]
    fn a_post_is_measured_as_sent_and_refused_a_byte_past_the_cap() {
        let overhead = serde_json::to_vec(&NewPost::html("t", "").request)
            .unwrap()
            .len();
        let fits = MAX_POST_BODY_BYTES - overhead;
        assert!(NewPost::html("t", "x".repeat(fits)).build().is_ok());
        assert_eq!(
            NewPost::html("t", "x".repeat(fits + 1))
                .build()
                .unwrap_err(),
            InvalidPost::TooLarge {
                bytes: MAX_POST_BODY_BYTES + 1
            }
        );
        // A quote is one character and two bytes of JSON.
        let quotes = "\"".repeat(fits / 2 + 1);
        assert!(matches!(
            NewPost::html("t", quotes).build(),
            Err(InvalidPost::TooLarge { .. })
        ));
    }

    #[test]
    fn the_licenses_are_nine_distinct_wire_names() {
        let names: std::collections::BTreeSet<String> =
            LICENSES.iter().map(ToString::to_string).collect();
        assert_eq!(names.len(), 9);
        for license in LICENSES {
            assert_eq!(license.to_string().parse::<License>().unwrap(), license);
        }
    }

    #[test]
    fn a_canonical_url_is_an_absolute_web_url() {
        for good in ["https://example.com/a", "http://127.0.0.1:8080/x?y#z"] {
            assert!(post().canonical_url(good).build().is_ok(), "{good}");
        }
        for bad in [
            "example.com/a",
            "ftp://example.com/",
            "javascript:alert(1)",
            "",
            "https://",
        ] {
            let err = post().canonical_url(bad).build().unwrap_err();
            assert!(
                matches!(err, InvalidPost::InvalidCanonicalUrl { .. }),
                "{bad}: {err:?}"
            );
        }
        let err = post().canonical_url("mailto:a@b.c").build().unwrap_err();
        assert!(err.to_string().contains("\"mailto\""), "{err}");
    }

    #[test]
    fn unset_options_are_left_out_so_mediums_defaults_apply() {
        let body = serde_json::to_value(post().build().unwrap().request()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"title": "Title", "contentFormat": "markdown", "content": "# Title\n\nBody"})
        );
        let full = post()
            .tags(["rust"])
            .canonical_url("https://example.com/")
            .status(PublishStatus::Unlisted)
            .license(License::Cc40By)
            .notify_followers(true)
            .build()
            .unwrap();
        let body = serde_json::to_value(full.request()).unwrap();
        assert_eq!(body["tags"], serde_json::json!(["rust"]));
        assert_eq!(body["canonicalUrl"], "https://example.com/");
        assert_eq!(body["publishStatus"], "unlisted");
        assert_eq!(body["license"], "cc-40-by");
        assert_eq!(body["notifyFollowers"], true);
        assert_eq!(
            NewPost::html("t", "c")
                .build()
                .unwrap()
                .request()
                .content_format,
            ContentFormat::Html
        );
    }
}
