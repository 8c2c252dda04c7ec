//! Medium's REST API on the user's behalf: the user, their publications and
//! a publication's contributors, creating posts and uploading images.
//!
//! [`MediumApi`] sends each call through [`BearerAuth`]
//! over any [`TokenSource`], so every request carries a fresh token. Paths,
//! scopes and wire types are the ones generated from
//! `medium-resource-api.yml` (see `medium_oauth2_api::resource`); this module
//! adds what the spec cannot say:
//!
//! - **Scopes guard calls.** Each call needs the one scope its operation
//!   declares in the spec (`x-medium-scope`). A token without it fails with
//!   [`Error::MissingScope`] before any request is sent.
//! - **Refusals are typed.** A 401 is [`Error::TokenRefused`]; a 403 is
//!   [`Error::Forbidden`], saying whether the id was not the user's own or
//!   the publication would not take the post.
//! - **Posts are checked before they go.** [`NewPost`] refuses what Medium
//!   would silently drop or replace: over [`MAX_TAGS`] tags, a tag over
//!   [`MAX_TAG_CHARS`] characters, a title over [`MAX_TITLE_CHARS`].
//!
//! ```no_run
//! # async fn demo(client: medium_oauth::OAuthClient, token: medium_oauth::Token) -> Result<(), Box<dyn std::error::Error>> {
//! use medium_oauth::api::{NewPost, PublishStatus};
//!
//! let api = client.api(client.token_source(token));
//! let post = NewPost::markdown("Hello", "# Hello\n\nFirst post.")
//!     .tags(["rust", "oauth"])
//!     .status(PublishStatus::Draft)
//!     .build()?;
//! let created = api.create_post(&post).await?;
//! println!("{}", created.url);
//! # Ok(()) }
//! ```

mod image;
mod post;

use std::sync::Arc;
use std::time::Duration;

use medium_oauth2_api::resource::operations;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderValue};
use serde::de::DeserializeOwned;
use tokio::sync::OnceCell;
use url::Url;

pub use image::{ImageType, MAX_IMAGE_BYTES, UnsupportedImageType};
pub use medium_oauth2_api::resource::types::{
    ContentFormat, Contributor, ContributorRole, CreatePostRequest, Image, License, Post,
    Publication, PublishStatus, User,
};
pub use post::{
    InvalidPost, LICENSES, MAX_POST_BODY_BYTES, MAX_TAG_CHARS, MAX_TAGS, MAX_TITLE_CHARS, NewPost,
    PostBuilder,
};

use crate::client::classify_api;
use crate::error::Refusal;
use crate::middleware::SentToken;
use crate::{BearerAuth, Error, OAuthClient, Scope, TokenSource};

/// Medium wraps every API result in `data`.
#[derive(serde::Deserialize)]
pub(crate) struct Envelope<T> {
    pub(crate) data: T,
}

/// The REST API, called as the user whose tokens `S` gives. Cheap to clone:
/// clones share the HTTP client, the token source and the user id once
/// looked up. Build one with [`OAuthClient::api`], or with
/// [`MediumApi::builder`] for a token that comes from elsewhere (such as a
/// self-issued integration token).
pub struct MediumApi<S> {
    inner: Arc<Inner<S>>,
}

struct Inner<S> {
    source: Arc<S>,
    http: reqwest_middleware::ClientWithMiddleware,
    api_server: Url,
    /// The token's user id, from `me`, for the calls that take it.
    user_id: OnceCell<String>,
}

impl<S> Clone for MediumApi<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<S> std::fmt::Debug for MediumApi<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediumApi")
            .field("api_server", &self.inner.api_server.as_str())
            .finish_non_exhaustive()
    }
}

/// Builds a [`MediumApi`] that does not come from an [`OAuthClient`].
#[derive(Debug)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct MediumApiBuilder<S> {
    source: S,
    api_server: String,
    timeout: Duration,
}

impl<S: TokenSource + 'static> MediumApiBuilder<S> {
    /// The API server's base URL (default: Medium's, from the spec).
    pub fn api_server(mut self, url: impl Into<String>) -> Self {
        self.api_server = url.into();
        self
    }

    /// Timeout of each request, connect to last byte (default
    /// [`DEFAULT_REQUEST_TIMEOUT`](crate::DEFAULT_REQUEST_TIMEOUT)).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Checks the server URL (plain `http://` only on loopback) and builds
    /// the API.
    pub fn build(self) -> Result<MediumApi<S>, Error> {
        let api_server = crate::client::checked_url("api_server", &self.api_server)?;
        let http = crate::client::http_client(self.timeout)?;
        Ok(MediumApi::over(http, api_server, self.source))
    }
}

impl OAuthClient {
    /// Medium's REST API as the user whose tokens `source` gives, on this
    /// client's API server, with its timeout and TLS set-up.
    pub fn api<S: TokenSource + 'static>(&self, source: S) -> MediumApi<S> {
        MediumApi::over(self.http().clone(), self.api_server().clone(), source)
    }
}

impl<S: TokenSource + 'static> MediumApi<S> {
    /// A builder for the API over `source`, on Medium's API server.
    pub fn builder(source: S) -> MediumApiBuilder<S> {
        MediumApiBuilder {
            source,
            api_server: medium_oauth2_api::resource::servers::API_SERVER.to_owned(),
            timeout: crate::DEFAULT_REQUEST_TIMEOUT,
        }
    }

    fn over(http: reqwest::Client, api_server: Url, source: S) -> Self {
        let source = Arc::new(source);
        let http = reqwest_middleware::ClientBuilder::new(http)
            .with(BearerAuth::new(source.clone()))
            .build();
        Self {
            inner: Arc::new(Inner {
                source,
                http,
                api_server,
                user_id: OnceCell::new(),
            }),
        }
    }

    /// The token source the calls draw from.
    pub fn source(&self) -> &S {
        &self.inner.source
    }

    /// `GET /me`: the user the token belongs to. Needs `basicProfile`.
    pub async fn me(&self) -> Result<User, Error> {
        use operations::get_current_user as op;
        let user: User = self
            .call(op::SCOPE, self.get(op::PATH), Refusal::NotYou)
            .await?;
        // The first answer is kept for the life of this MediumApi (see
        // `user_id`).
        let _ = self.inner.user_id.set(user.id.clone());
        Ok(user)
    }

    /// The token's user id: from the first [`me`](Self::me), asked for once
    /// and kept for the life of this `MediumApi`. A source whose store can
    /// take another user's login (a new login saved by another process)
    /// needs a new `MediumApi` after it does.
    pub async fn user_id(&self) -> Result<&str, Error> {
        if let Some(id) = self.inner.user_id.get() {
            return Ok(id);
        }
        let user = self.me().await?;
        Ok(self.inner.user_id.get_or_init(|| async { user.id }).await)
    }

    /// `GET /users/{userId}/publications`: the publications `user_id` owns,
    /// edits or writes for (Medium lists only the token's own user's).
    /// Needs `listPublications`.
    pub async fn publications(&self, user_id: &str) -> Result<Vec<Publication>, Error> {
        use operations::list_user_publications as op;
        let path = op::path(user_id).map_err(Error::from)?;
        self.call(op::SCOPE, self.get(&path), Refusal::NotYou).await
    }

    /// `GET /publications/{publicationId}/contributors`: a publication's
    /// editors and writers. Needs `listPublications`.
    pub async fn contributors(&self, publication_id: &str) -> Result<Vec<Contributor>, Error> {
        use operations::list_publication_contributors as op;
        let path = op::path(publication_id).map_err(Error::from)?;
        self.call(op::SCOPE, self.get(&path), Refusal::NotYou).await
    }

    /// `POST /users/{authorId}/posts`: creates `post` on the token's user's
    /// profile. Needs `publishPost`; the author's id comes from
    /// [`user_id`](Self::user_id), so the first call also needs
    /// `basicProfile`.
    pub async fn create_post(&self, post: &NewPost) -> Result<Post, Error> {
        use operations::create_user_post as op;
        self.require(op::SCOPE).await?;
        let path = op::path(self.user_id().await?).map_err(Error::from)?;
        self.call(op::SCOPE, self.post_json(&path, post)?, Refusal::NotYou)
            .await
    }

    /// `POST /publications/{publicationId}/posts`: creates `post` in a
    /// publication. An editor may use any status; a writer only
    /// [`PublishStatus::Draft`]; anyone else is refused
    /// ([`Error::Forbidden`] with [`Refusal::Publication`]). Needs
    /// `publishPost`.
    pub async fn create_post_in(
        &self,
        publication_id: &str,
        post: &NewPost,
    ) -> Result<Post, Error> {
        use operations::create_publication_post as op;
        let path = op::path(publication_id).map_err(Error::from)?;
        self.call(
            op::SCOPE,
            self.post_json(&path, post)?,
            Refusal::Publication,
        )
        .await
    }

    /// `POST /images`: uploads one image of at most [`MAX_IMAGE_BYTES`], for
    /// use in a post's content. Needs `uploadImage`, an extended scope Medium
    /// grants only to apps it has approved.
    pub async fn upload_image(&self, bytes: &[u8], image_type: ImageType) -> Result<Image, Error> {
        use operations::upload_image as op;
        let (content_type, body) = image::multipart_body(bytes, image_type)?;
        let request = self
            .inner
            .http
            .post(self.url(op::PATH))
            .header(CONTENT_TYPE, content_type)
            .body(body);
        self.call(op::SCOPE, request, Refusal::NotYou).await
    }

    /// Fails with [`Error::MissingScope`] unless the current token was
    /// granted `wire` (an operation's generated `SCOPE`).
    async fn require(&self, wire: &'static str) -> Result<Arc<crate::Token>, Error> {
        let scope = scope_named(wire)?;
        let token = self.inner.source.token().await?;
        token.scopes().require(scope)?;
        Ok(token)
    }

    fn url(&self, path: &str) -> String {
        let base = self.inner.api_server.as_str().trim_end_matches('/');
        format!("{base}{path}")
    }

    fn get(&self, path: &str) -> reqwest_middleware::RequestBuilder {
        self.inner.http.get(self.url(path))
    }

    fn post_json(
        &self,
        path: &str,
        post: &NewPost,
    ) -> Result<reqwest_middleware::RequestBuilder, Error> {
        let body = serde_json::to_vec(&post.request).map_err(|e| Error::InvalidConfig {
            field: "post",
            reason: e.to_string(),
        })?;
        Ok(self
            .inner
            .http
            .post(self.url(path))
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .body(body))
    }

    /// Checks the scope, sends `request` (the bearer token is added by
    /// [`BearerAuth`]) and reads the answer's `data`, capped.
    async fn call<T: DeserializeOwned>(
        &self,
        scope: &'static str,
        request: reqwest_middleware::RequestBuilder,
        refusal: Refusal,
    ) -> Result<T, Error> {
        let token = self.require(scope).await?;
        let host = self.inner.api_server.host_str().unwrap_or_default();
        let response = request
            .header(ACCEPT, HeaderValue::from_static("application/json"))
            .send()
            .await
            .map_err(|e| from_middleware(e, host))?;
        // A server may echo the token in its error text: the one checked
        // here, and the one BearerAuth sent, which differs after a refresh.
        let sent = response.extensions().get::<SentToken>().cloned();
        let response = medium_oauth2_api::cap_body(response)
            .await
            .map_err(|e| Error::transport(host, e))?;
        let mut secrets = vec![token.access_token().expose_secret()];
        if let Some(SentToken(sent)) = &sent {
            secrets.push(sent.access_token().expose_secret());
        }
        match classify_api::<T>(response, host, &secrets).await {
            Err(Error::Api {
                status: 401,
                errors,
                ..
            }) => Err(Error::TokenRefused { errors }),
            Err(Error::Api {
                status: 403,
                errors,
                ..
            }) => Err(Error::Forbidden {
                reason: refusal,
                errors,
            }),
            Err(Error::UnexpectedResponse { status: 401, .. }) => {
                Err(Error::TokenRefused { errors: Vec::new() })
            }
            Err(Error::UnexpectedResponse { status: 403, .. }) => Err(Error::Forbidden {
                reason: refusal,
                errors: Vec::new(),
            }),
            other => other,
        }
    }
}

/// The scope a generated `SCOPE` constant names. Every operation's scope is
/// one this crate knows (a test holds the spec to it); an unknown one is a
/// configuration error, not a panic.
fn scope_named(wire: &'static str) -> Result<Scope, Error> {
    wire.parse().map_err(|_| Error::InvalidConfig {
        field: "x-medium-scope",
        reason: format!("the spec names a scope this version does not know: {wire:?}"),
    })
}

/// reqwest-middleware's error as this crate's: the token source's own error
/// comes back as it was, a transport failure loses its URL.
fn from_middleware(error: reqwest_middleware::Error, host: &str) -> Error {
    match error {
        reqwest_middleware::Error::Reqwest(e) => Error::transport(host, e),
        reqwest_middleware::Error::Middleware(e) => match e.downcast::<Error>() {
            Ok(e) => e,
            Err(other) => Error::InvalidConfig {
                field: "middleware",
                reason: other.to_string(),
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_needs_a_scope_this_crate_knows() {
        use operations::*;
        for (wire, scope) in [
            (get_current_user::SCOPE, Scope::BasicProfile),
            (list_user_publications::SCOPE, Scope::ListPublications),
            (
                list_publication_contributors::SCOPE,
                Scope::ListPublications,
            ),
            (create_user_post::SCOPE, Scope::PublishPost),
            (create_publication_post::SCOPE, Scope::PublishPost),
            (upload_image::SCOPE, Scope::UploadImage),
        ] {
            assert_eq!(scope_named(wire).unwrap(), scope);
        }
        assert!(matches!(
            scope_named("notAScope"),
            Err(Error::InvalidConfig {
                field: "x-medium-scope",
                ..
            })
        ));
    }
}
