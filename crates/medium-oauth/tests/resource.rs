//! `MediumApi` against the emulator over loopback: each call's success and
//! the refusals Medium documents, the scope checks that send nothing, and
//! posts the builder accepts being taken as they are.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::*;
use medium_oauth::api::{
    ContributorRole, ImageType, InvalidPost, License, MAX_POST_BODY_BYTES, MAX_TAG_CHARS,
    MAX_TITLE_CHARS, MediumApi, NewPost, PublishStatus,
};
use medium_oauth::{
    AccessToken, Error, GrantedScopes, Refusal, Scope, ScopeSet, StaticTokenSource, Token,
    TokenFuture, TokenSource, scopes,
};
use medium_oauth_emulator::{Emulator, demo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn api_with(
    emu: &Emulator,
    scopes: ScopeSet,
) -> MediumApi<medium_oauth::RefreshingTokenSource> {
    let client = demo_client(emu);
    let token = login(&client, scopes).await;
    client.api(client.token_source(token))
}

fn every_scope() -> ScopeSet {
    ScopeSet::all()
}

#[tokio::test]
async fn each_call_reads_or_creates_as_medium_documents() {
    let emu = emulator(auto_approving()).await;
    let api = api_with(&emu, every_scope()).await;

    let me = api.me().await.unwrap();
    assert_eq!(
        (me.id.as_str(), me.username.as_str()),
        (demo::USER_ID, demo::USERNAME)
    );
    assert_eq!(api.user_id().await.unwrap(), demo::USER_ID);

    let publications = api.publications(&me.id).await.unwrap();
    let ids: Vec<&str> = publications.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(
        ids,
        [demo::EDITOR_PUBLICATION_ID, demo::WRITER_PUBLICATION_ID]
    );
    for (publication, role) in [
        (demo::EDITOR_PUBLICATION_ID, ContributorRole::Editor),
        (demo::WRITER_PUBLICATION_ID, ContributorRole::Writer),
    ] {
        let contributors = api.contributors(publication).await.unwrap();
        let mine = contributors.iter().find(|c| c.user_id == me.id).unwrap();
        assert_eq!(
            (mine.publication_id.as_str(), mine.role),
            (publication, role)
        );
    }

    let post = NewPost::markdown("Hello", "# Hello\n\nFirst post.")
        .tags(["rust", "oauth"])
        .canonical_url("https://example.com/hello")
        .license(License::Cc40BySa)
        .build()
        .unwrap();
    let created = api.create_post(&post).await.unwrap();
    assert_eq!(created.author_id, me.id);
    assert_eq!(created.title, "Hello");
    assert_eq!(created.tags, ["rust", "oauth"]);
    assert_eq!(created.publish_status, PublishStatus::Public);
    assert_eq!(created.license, License::Cc40BySa);
    assert_eq!(
        created.canonical_url.as_deref(),
        Some("https://example.com/hello")
    );
    assert!(created.published_at.is_some());
    assert_eq!(created.publication_id, None);

    let draft = NewPost::html("Draft", "<p>later</p>")
        .status(PublishStatus::Draft)
        .build()
        .unwrap();
    for publication in [demo::EDITOR_PUBLICATION_ID, demo::WRITER_PUBLICATION_ID] {
        let created = api.create_post_in(publication, &draft).await.unwrap();
        assert_eq!(created.publication_id.as_deref(), Some(publication));
        assert_eq!(created.published_at, None, "a draft is not published");
        assert_eq!(created.license, License::AllRightsReserved);
        assert_eq!(created.canonical_url, None);
    }
    let public = NewPost::markdown("Out", "now").build().unwrap();
    let created = api
        .create_post_in(demo::EDITOR_PUBLICATION_ID, &public)
        .await
        .unwrap();
    assert_eq!(created.publish_status, PublishStatus::Public);

    let received = emu.posts();
    assert_eq!(received.len(), 4);
    assert_eq!(received[0].request.content, "# Hello\n\nFirst post.");
    assert!(
        received[0]
            .post
            .url
            .starts_with("https://medium.com/@demo/"),
        "{:?}",
        received[0].post
    );

    let png = b"\x89PNG\r\n\x1a\n and then some bytes, CRLF \r\n-- included";
    let image = api.upload_image(png, ImageType::Png).await.unwrap();
    let stored = emu.images();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].size, png.len());
    assert_eq!(stored[0].content_type, "image/png");
    assert_eq!(
        (image.md5.as_str(), image.url.as_str()),
        (stored[0].md5.as_str(), stored[0].url.as_str())
    );
}

#[tokio::test]
async fn a_call_without_its_scope_fails_before_any_request() {
    let emu = emulator(auto_approving()).await;
    let api = api_with(&emu, scopes![basicProfile]).await;
    let before = emu.api_requests();
    let post = NewPost::markdown("t", "c").build().unwrap();
    let missing = [
        (
            api.publications(demo::USER_ID).await.unwrap_err(),
            Scope::ListPublications,
        ),
        (
            api.contributors(demo::EDITOR_PUBLICATION_ID)
                .await
                .unwrap_err(),
            Scope::ListPublications,
        ),
        (
            api.create_post(&post).await.unwrap_err(),
            Scope::PublishPost,
        ),
        (
            api.create_post_in(demo::EDITOR_PUBLICATION_ID, &post)
                .await
                .unwrap_err(),
            Scope::PublishPost,
        ),
        (
            api.upload_image(b"GIF89a", ImageType::Gif)
                .await
                .unwrap_err(),
            Scope::UploadImage,
        ),
    ];
    for (err, scope) in missing {
        assert!(
            matches!(err, Error::MissingScope(s) if s == scope),
            "{err:?}"
        );
        assert!(err.to_string().contains(scope.as_str()), "{err}");
    }
    assert_eq!(emu.api_requests(), before, "nothing was sent");

    let api = api_with(&emu, scopes![publishPost]).await;
    let before = emu.api_requests();
    let err = api.me().await.unwrap_err();
    assert!(
        matches!(err, Error::MissingScope(Scope::BasicProfile)),
        "{err:?}"
    );
    // The author's id comes from `me`, which this token may not call.
    let err = api.create_post(&post).await.unwrap_err();
    assert!(
        matches!(err, Error::MissingScope(Scope::BasicProfile)),
        "{err:?}"
    );
    assert_eq!(emu.api_requests(), before);
}

#[tokio::test]
async fn an_id_that_could_leave_its_segment_is_refused_before_any_request() {
    let emu = emulator(auto_approving()).await;
    let api = api_with(&emu, every_scope()).await;
    let before = emu.api_requests();
    let post = NewPost::markdown("t", "c").build().unwrap();
    for id in ["", ".", "..", "a\\..\\b"] {
        let err = api.publications(id).await.unwrap_err();
        assert!(matches!(err, Error::InvalidId(_)), "{id:?}: {err:?}");
        let err = api.contributors(id).await.unwrap_err();
        assert!(matches!(err, Error::InvalidId(_)), "{id:?}: {err:?}");
        let err = api.create_post_in(id, &post).await.unwrap_err();
        assert!(matches!(err, Error::InvalidId(_)), "{id:?}: {err:?}");
    }
    assert_eq!(emu.api_requests(), before);
    // Anything else is encoded into its segment: not found, not elsewhere.
    let err = api.contributors("../../me").await.unwrap_err();
    assert!(matches!(err, Error::Api { status: 404, .. }), "{err:?}");
}

#[tokio::test]
async fn refusals_say_what_was_refused() {
    let emu = emulator(auto_approving()).await;
    let api = api_with(&emu, every_scope()).await;
    let err = api.publications(demo::OTHER_USER_IDS[0]).await.unwrap_err();
    assert!(
        err.to_string()
            .starts_with("Medium refused the call: the user id is not the authenticated user's"),
        "{err}"
    );
    assert!(
        matches!(&err, Error::Forbidden { reason: Refusal::NotYou, errors } if !errors.is_empty()),
        "{err:?}"
    );
    let public = NewPost::markdown("t", "c").build().unwrap();
    for publication in [demo::WRITER_PUBLICATION_ID, demo::OTHER_PUBLICATION_ID] {
        let err = api.create_post_in(publication, &public).await.unwrap_err();
        assert!(
            matches!(
                &err,
                Error::Forbidden {
                    reason: Refusal::Publication,
                    ..
                }
            ),
            "{publication}: {err:?}"
        );
        assert!(err.to_string().contains("HTTP 403"), "{err}");
        assert!(
            err.to_string()
                .starts_with("the publication refused the post"),
            "{err}"
        );
    }
    let err = api.contributors("0000unknown").await.unwrap_err();
    assert!(matches!(err, Error::Api { status: 404, .. }), "{err:?}");
    assert!(emu.posts().is_empty());

    // A token the API refuses even once refreshed: typed, and not a
    // re-authorization (the grant itself still works).
    emu.refuse_api_tokens(true);
    let err = api.me().await.unwrap_err();
    assert!(matches!(err, Error::TokenRefused { .. }), "{err:?}");
    assert!(!err.requires_reauthorization());
    emu.refuse_api_tokens(false);
}

/// A revoked grant: the refresh BearerAuth tries on the 401 fails, and the
/// error says the user must authorize again.
#[tokio::test]
async fn a_revoked_grant_asks_for_a_new_authorization() {
    let emu = emulator(auto_approving()).await;
    let api = api_with(&emu, every_scope()).await;
    api.me().await.unwrap();
    emu.revoke_all_tokens();
    let err = api.me().await.unwrap_err();
    assert!(err.requires_reauthorization(), "{err:?}");
}

/// The upload's body is plain bytes, so after a 401 BearerAuth refreshes
/// and sends it again; the image arrives once, whole.
#[tokio::test]
async fn an_upload_refused_for_an_expired_token_is_sent_again_after_a_refresh() {
    let emu = emulator(auto_approving()).await;
    let api = api_with(&emu, every_scope()).await;
    api.me().await.unwrap();
    // Past the access token's life by the emulator's clock only: the source
    // still thinks it fresh, and learns otherwise from the 401.
    emu.advance_clock(medium_oauth_emulator::DEFAULT_TOKEN_LIFETIME + Duration::from_secs(1));
    let refreshes = emu.refreshes();
    // The client sends what the emulator (standing for Medium) takes: no
    // more, and no less.
    assert_eq!(
        medium_oauth::api::MAX_IMAGE_BYTES,
        medium_oauth_emulator::DEFAULT_MAX_IMAGE_BYTES
    );
    let gif = vec![7u8; 70_000];
    api.upload_image(&gif, ImageType::Gif).await.unwrap();
    assert_eq!(emu.refreshes(), refreshes + 1);
    let images = emu.images();
    assert_eq!((images.len(), images[0].size), (1, gif.len()));
}

#[tokio::test]
async fn a_self_issued_token_is_let_through_and_its_refusal_is_typed() {
    let emu = emulator(auto_approving()).await;
    let api = MediumApi::builder(StaticTokenSource::integration_token(AccessToken::new(
        "integration-token-not-issued",
    )))
    .api_server(emu.api_server())
    .build()
    .unwrap();
    let err = api.me().await.unwrap_err();
    assert!(matches!(err, Error::TokenRefused { .. }), "{err:?}");
    assert_eq!(emu.api_requests(), 1);

    let err = MediumApi::builder(StaticTokenSource::integration_token(AccessToken::new("t")))
        .api_server("http://example.com/v1")
        .build()
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidConfig {
                field: "api_server",
                ..
            }
        ),
        "{err:?}"
    );
}

/// A server that echoes the bearer token in its refusal: the error shows
/// neither the token nor a piece of it.
#[tokio::test]
async fn a_refusal_echoing_the_token_does_not_repeat_it() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = vec![0u8; 8192];
                let n = socket.read(&mut head).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&head[..n]).to_string();
                let token = head
                    .lines()
                    .find_map(|l| l.strip_prefix("authorization: Bearer "))
                    .unwrap_or("none")
                    .trim()
                    .to_owned();
                let body = format!(
                    r#"{{"errors":[{{"message":"Token was invalid: {token} ({t})","code":6003}}]}}"#,
                    t = &token[..6]
                );
                let answer = format!(
                    "HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
            });
        }
    });
    let secret = "s3cr3t-bearer-token";
    let token = Token::new(
        AccessToken::new(secret),
        None,
        None,
        GrantedScopes::from_names(["basicProfile"]),
    );
    let api = MediumApi::builder(StaticTokenSource::new(token))
        .api_server(format!("http://{addr}/v1"))
        .build()
        .unwrap();
    let err = api.me().await.unwrap_err();
    assert!(matches!(err, Error::TokenRefused { .. }), "{err:?}");
    for shown in [err.to_string(), format!("{err:?}"), format!("{api:?}")] {
        assert!(!shown.contains(secret), "{shown}");
        assert!(
            shown.contains("6003") || shown.starts_with("MediumApi"),
            "{shown}"
        );
    }
}

/// A one-shot-per-connection HTTP server answering every request with
/// `answer(request head)`.
async fn server(answer: impl Fn(&str) -> Vec<u8> + Send + Sync + 'static) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let answer = Arc::new(answer);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let answer = answer.clone();
            tokio::spawn(async move {
                let mut head = vec![0u8; 16384];
                let n = socket.read(&mut head).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&head[..n]).to_string();
                let _ = socket.write_all(&answer(&head)).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    format!("http://{addr}/v1")
}

fn response(status: &str, extra_headers: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{extra_headers}connection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

fn static_api(url: &str) -> MediumApi<StaticTokenSource> {
    let token = Token::new(
        AccessToken::new("0123456789abcdef0123456789abcdef"),
        None,
        None,
        GrantedScopes::from_names(["basicProfile", "listPublications", "publishPost"]),
    );
    MediumApi::builder(StaticTokenSource::new(token))
        .api_server(url)
        .build()
        .unwrap()
}

/// Regression: an error page over the body cap (a proxy's, say) lost its
/// status: a 401 was not `TokenRefused`, a 403 not `Forbidden`, and a 503
/// lost its Retry-After and stopped being transient.
#[tokio::test]
async fn an_oversized_error_body_keeps_its_status_typing() {
    let big = vec![b' '; medium_oauth2_api_cap() + 10];
    let url401 = {
        let big = big.clone();
        server(move |_| response("401 Unauthorized", "", &big)).await
    };
    let err = static_api(&url401).me().await.unwrap_err();
    assert!(
        matches!(err, Error::TokenRefused { .. }),
        "a 401 with an oversized body: {err:?}"
    );

    let url403 = {
        let big = big.clone();
        server(move |_| response("403 Forbidden", "", &big)).await
    };
    let err = static_api(&url403)
        .publications("someone")
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Forbidden { .. }),
        "a 403 with an oversized body: {err:?}"
    );

    // The token endpoint keeps its own reading: an oversized 401 is a dead
    // grant, whatever the body was.
    let client = builder_for(&url401).build().unwrap();
    let err = client
        .refresh(&medium_oauth::RefreshToken::new("r"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidGrant { status: 401, .. }),
        "{err:?}"
    );

    let url503 =
        server(move |_| response("503 Service Unavailable", "retry-after: 7\r\n", &big)).await;
    let err = static_api(&url503).me().await.unwrap_err();
    assert!(
        err.is_transient() && err.retry_after() == Some(std::time::Duration::from_secs(7)),
        "a 503 with an oversized body must stay transient with its Retry-After: {err:?}"
    );
}

fn medium_oauth2_api_cap() -> usize {
    medium_oauth2_api::MAX_RESPONSE_BYTES
}

/// A source whose first token is refused and whose second (after
/// `invalidate`) is a short one, as RFC 6750 allows (any b64token length).
struct Rotating {
    invalidated: AtomicBool,
}

const FIRST: &str = "0123456789abcdef0123456789abcdef";
/// 16 characters: under quote's 20-character "token-like run" heuristic.
const FRESH: &str = "fresh-secret-tok";

impl TokenSource for Rotating {
    fn token(&self) -> TokenFuture<'_> {
        let access = if self.invalidated.load(Ordering::SeqCst) {
            FRESH
        } else {
            FIRST
        };
        TokenFuture::ready(Ok(Arc::new(Token::new(
            AccessToken::new(access),
            None,
            None,
            GrantedScopes::from_names(["basicProfile"]),
        ))))
    }

    fn invalidate(&self, _token: &AccessToken) {
        self.invalidated.store(true, Ordering::SeqCst);
    }
}

/// Regression: only the token read before the request was redacted; after
/// BearerAuth's refresh and retry, a server echoing the token it was sent
/// put that one in the error (unless long enough to look like a token).
#[tokio::test]
async fn a_refreshed_token_echoed_by_the_server_is_redacted() {
    let url = server(|head| {
        let token = head
            .lines()
            .find_map(|l| l.strip_prefix("authorization: Bearer "))
            .unwrap_or("none")
            .trim()
            .to_owned();
        let body =
            format!(r#"{{"errors":[{{"message":"Token was invalid: {token}","code":6003}}]}}"#);
        response("401 Unauthorized", "", body.as_bytes())
    })
    .await;
    let api = MediumApi::builder(Rotating {
        invalidated: AtomicBool::new(false),
    })
    .api_server(url)
    .build()
    .unwrap();
    let err = api.me().await.unwrap_err();
    assert!(matches!(err, Error::TokenRefused { .. }), "{err:?}");
    for shown in [err.to_string(), format!("{err:?}")] {
        assert!(!shown.contains(FRESH), "the sent token leaks: {shown}");
    }
}

/// The builder's size cap is the emulator's: a post of exactly
/// `MAX_POST_BODY_BYTES` is taken, and one byte more never leaves the
/// client.
#[tokio::test]
async fn a_post_at_the_size_cap_is_taken_and_one_past_it_is_refused_locally() {
    // The client sends what the emulator (standing for Medium) takes: no
    // more, and no less.
    assert_eq!(
        MAX_POST_BODY_BYTES,
        medium_oauth_emulator::DEFAULT_MAX_POST_BODY_BYTES
    );
    let emu = emulator(auto_approving()).await;
    let api = api_with(&emu, every_scope()).await;
    let overhead = serde_json::to_vec(NewPost::html("Quotes", "x").build().unwrap().request())
        .unwrap()
        .len()
        - 1;
    // Quotes double when escaped: the largest that fits, and one more.
    let fits = (MAX_POST_BODY_BYTES - overhead) / 2;
    let post = NewPost::html("Quotes", "\"".repeat(fits)).build().unwrap();
    api.create_post(&post).await.unwrap();
    let before = emu.api_requests();
    let err = NewPost::html("Quotes", "\"".repeat(fits + 1))
        .build()
        .unwrap_err();
    assert!(matches!(err, InvalidPost::TooLarge { .. }), "{err:?}");
    assert_eq!(emu.api_requests(), before);
}

mod builder_accepted_is_medium_accepted {
    use super::*;
    use proptest::prelude::*;

    fn text(max: usize) -> impl Strategy<Value = String> {
        // Any characters, controls and astral ones included, with at least
        // one that is not whitespace.
        (
            proptest::collection::vec(any::<char>(), 0..max),
            any::<char>(),
        )
            .prop_filter("not blank", |(_, c)| !c.is_whitespace())
            .prop_map(move |(mut chars, c)| {
                chars.truncate(max - 1);
                chars.push(c);
                chars.into_iter().collect()
            })
    }

    fn status() -> impl Strategy<Value = Option<PublishStatus>> {
        proptest::option::of(prop_oneof![
            Just(PublishStatus::Public),
            Just(PublishStatus::Draft),
            Just(PublishStatus::Unlisted)
        ])
    }

    fn license() -> impl Strategy<Value = Option<License>> {
        proptest::option::of(proptest::sample::select(
            medium_oauth::api::LICENSES.to_vec(),
        ))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// Whatever the builder accepts, the emulator takes, and keeps as
        /// sent: the title, every tag, the status, the license and the
        /// canonical URL.
        #[test]
        fn any_post_the_builder_accepts(
            title in text(MAX_TITLE_CHARS),
            content in text(400),
            html in any::<bool>(),
            tags in proptest::collection::vec(text(MAX_TAG_CHARS), 0..=3),
            status in status(),
            license in license(),
            canonical in proptest::option::of("[a-z]{1,10}"),
            in_publication in any::<bool>(),
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                let emu = emulator(auto_approving()).await;
                let api = api_with(&emu, every_scope()).await;
                let mut builder = if html { NewPost::html(&title, &content) } else { NewPost::markdown(&title, &content) }
                    .tags(tags.clone());
                if let Some(status) = status { builder = builder.status(status); }
                if let Some(license) = license { builder = builder.license(license); }
                let canonical = canonical.map(|path| format!("https://example.com/{path}"));
                if let Some(url) = &canonical { builder = builder.canonical_url(url); }
                let post = match builder.build() {
                    Ok(post) => post,
                    // Only blank tags are refused here: the strategies keep
                    // to the other rules.
                    Err(e) => {
                        prop_assert!(tags.iter().any(|t| t.trim().is_empty()) || title.trim().is_empty() || content.trim().is_empty(), "{e}");
                        return Ok(());
                    }
                };
                let created = if in_publication {
                    api.create_post_in(demo::EDITOR_PUBLICATION_ID, &post).await
                } else {
                    api.create_post(&post).await
                };
                let created = match created {
                    Ok(created) => created,
                    Err(e) => return Err(TestCaseError::fail(format!("refused: {e}"))),
                };
                prop_assert_eq!(&created.title, &title);
                prop_assert_eq!(&created.tags, &tags);
                prop_assert_eq!(created.publish_status, status.unwrap_or(PublishStatus::Public));
                prop_assert_eq!(created.license, license.unwrap_or(License::AllRightsReserved));
                prop_assert_eq!(&created.canonical_url, &canonical);
                prop_assert_eq!(created.published_at.is_some(), created.publish_status != PublishStatus::Draft);
                let received = emu.posts();
                prop_assert_eq!(&received[0].request.content, &content);
                Ok(())
            })?;
        }
    }
}
