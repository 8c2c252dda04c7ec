//! Medium's REST calls on the emulator, over real loopback HTTP: each call's
//! success, every documented refusal, and the rules Medium documents for
//! posts and uploads.

use std::time::Duration;

use medium_oauth_emulator::{
    Config, DEFAULT_MAX_IMAGE_BYTES, Emulator, Limits, MAX_TITLE_CHARS, MULTIPART_OVERHEAD_BYTES,
    UNTITLED, codes, demo,
};
use medium_oauth_test_support::{auto_approving, emulator};
use medium_oauth2_api::resource::operations as ops;
use medium_oauth2_api::resource::types;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const ALL_SCOPES: &str = "basicProfile,listPublications,publishPost,uploadImage";

use medium_oauth_test_support::http_no_redirect as http;

use medium_oauth_test_support::raw_access_token as token;

async fn start(config: Config) -> (Emulator, String) {
    let emu = emulator(config).await;
    let token = token(&emu, ALL_SCOPES).await;
    (emu, token)
}

fn url(emu: &Emulator, path: &str) -> String {
    format!("{}{path}", emu.api_server())
}

async fn get(emu: &Emulator, path: &str, token: Option<&str>) -> reqwest::Response {
    let mut req = http().get(url(emu, path));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    req.send().await.unwrap()
}

async fn post_json(emu: &Emulator, path: &str, token: &str, body: &Value) -> reqwest::Response {
    post_raw(
        emu,
        path,
        token,
        "application/json; charset=utf-8",
        serde_json::to_vec(body).unwrap(),
    )
    .await
}

async fn post_raw(
    emu: &Emulator,
    path: &str,
    token: &str,
    content_type: &str,
    body: Vec<u8>,
) -> reqwest::Response {
    http()
        .post(url(emu, path))
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

/// Asserts a Medium error: status, JSON content type, one `{message, code}`;
/// returns the message.
async fn assert_api_error(resp: reqwest::Response, status: StatusCode, code: i64) -> String {
    assert_eq!(resp.status(), status);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let raw: Value = resp.json().await.unwrap();
    let parsed: types::Error = serde_json::from_value(raw.clone()).unwrap();
    assert_eq!(parsed.errors.len(), 1, "{raw}");
    assert_eq!(parsed.errors[0].code, Some(code), "{raw}");
    parsed.errors[0].message.clone().unwrap()
}

/// Parses a success with the generated envelope, checking nothing outside
/// the spec's fields was sent.
async fn success<T: serde::de::DeserializeOwned + serde::Serialize>(
    resp: reqwest::Response,
    status: StatusCode,
) -> (T, Value) {
    assert_eq!(resp.status(), status);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let raw: Value = resp.json().await.unwrap();
    let parsed: T = serde_json::from_value(raw.clone()).unwrap();
    assert_eq!(serde_json::to_value(&parsed).unwrap(), raw);
    (parsed, raw)
}

fn user_posts() -> String {
    ops::create_user_post::path(demo::USER_ID).unwrap()
}

fn publication_posts(id: &str) -> String {
    ops::create_publication_post::path(id).unwrap()
}

fn minimal_post() -> Value {
    json!({"title": "Hello", "contentFormat": "markdown", "content": "# Hello\n\nWorld"})
}

async fn create_post(emu: &Emulator, token: &str, body: &Value) -> (types::Post, Value) {
    let resp = post_json(emu, &user_posts(), token, body).await;
    let (envelope, raw): (types::PostEnvelope, Value) = success(resp, StatusCode::CREATED).await;
    (envelope.data, raw["data"].clone())
}

/// A multipart body with one part, lines ending in CRLF.
fn multipart(boundary: &str, headers: &[&str], data: &[u8]) -> Vec<u8> {
    let mut body = format!("--{boundary}\r\n").into_bytes();
    for h in headers {
        body.extend_from_slice(h.as_bytes());
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"\r\n");
    body.extend_from_slice(data);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    body
}

fn image_part(data: &[u8]) -> Vec<u8> {
    multipart(
        "b0undary",
        &[
            "Content-Disposition: form-data; name=\"image\"; filename=\"cat.png\"",
            "Content-Type: image/png",
        ],
        data,
    )
}

const MULTIPART: &str = "multipart/form-data; boundary=b0undary";

/// One call: method, path, the scope it needs, and a body (content type and
/// bytes) that would succeed.
type Call = (Method, String, &'static str, Option<(String, Vec<u8>)>);

/// The six calls.
fn calls() -> Vec<Call> {
    let post = Some((
        "application/json".to_owned(),
        serde_json::to_vec(&minimal_post()).unwrap(),
    ));
    vec![
        (
            Method::GET,
            ops::get_current_user::PATH.into(),
            ops::get_current_user::SCOPE,
            None,
        ),
        (
            Method::GET,
            ops::list_user_publications::path(demo::USER_ID).unwrap(),
            ops::list_user_publications::SCOPE,
            None,
        ),
        (
            Method::GET,
            ops::list_publication_contributors::path(demo::EDITOR_PUBLICATION_ID).unwrap(),
            ops::list_publication_contributors::SCOPE,
            None,
        ),
        (
            Method::POST,
            user_posts(),
            ops::create_user_post::SCOPE,
            post.clone(),
        ),
        (
            Method::POST,
            publication_posts(demo::EDITOR_PUBLICATION_ID),
            ops::create_publication_post::SCOPE,
            post,
        ),
        (
            Method::POST,
            ops::upload_image::PATH.into(),
            ops::upload_image::SCOPE,
            Some((MULTIPART.into(), image_part(b"abc"))),
        ),
    ]
}

async fn call(
    emu: &Emulator,
    (method, path, _, body): &Call,
    token: Option<&str>,
) -> reqwest::Response {
    let mut req = http().request(method.clone(), url(emu, path));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    if let Some((content_type, body)) = body {
        req = req.header("content-type", content_type).body(body.clone());
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn every_call_succeeds_with_its_scope_and_refuses_without_a_valid_token() {
    let (emu, all) = start(auto_approving()).await;
    for c in calls() {
        let (_, path, scope, _) = &c;
        let resp = call(&emu, &c, Some(&all)).await;
        assert!(resp.status().is_success(), "{path}: {}", resp.status());

        let only = token(&emu, scope).await;
        let resp = call(&emu, &c, Some(&only)).await;
        assert!(resp.status().is_success(), "{path} with {scope} alone");

        let others: Vec<&str> = ALL_SCOPES.split(',').filter(|s| s != scope).collect();
        let without = token(&emu, &others.join(",")).await;
        let msg = assert_api_error(
            call(&emu, &c, Some(&without)).await,
            StatusCode::UNAUTHORIZED,
            codes::MISSING_SCOPE,
        )
        .await;
        assert_eq!(msg, format!("Missing scope: {scope}"), "{path}");

        assert_api_error(
            call(&emu, &c, None).await,
            StatusCode::UNAUTHORIZED,
            codes::TOKEN_REQUIRED,
        )
        .await;
        assert_api_error(
            call(&emu, &c, Some("not-a-token")).await,
            StatusCode::UNAUTHORIZED,
            codes::TOKEN_INVALID,
        )
        .await;
    }

    // Expired, and refused wholesale.
    emu.advance_clock(Duration::from_secs(61 * 24 * 60 * 60));
    for c in calls() {
        assert_api_error(
            call(&emu, &c, Some(&all)).await,
            StatusCode::UNAUTHORIZED,
            codes::TOKEN_INVALID,
        )
        .await;
    }
    let fresh = token(&emu, ALL_SCOPES).await;
    emu.refuse_api_tokens(true);
    for c in calls() {
        assert_api_error(
            call(&emu, &c, Some(&fresh)).await,
            StatusCode::UNAUTHORIZED,
            codes::TOKEN_INVALID,
        )
        .await;
    }
    emu.refuse_api_tokens(false);
    assert!(
        call(&emu, &calls()[0], Some(&fresh))
            .await
            .status()
            .is_success()
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn the_request_counter_counts_the_six_calls_whatever_their_outcome() {
    let (emu, token) = start(auto_approving()).await;
    // Getting the token took token requests, which are not counted.
    assert_eq!(emu.api_requests(), 0);
    let _ = get(&emu, "/nothing", Some(&token)).await;
    assert_eq!(emu.api_requests(), 0, "a 404 is not one of the calls");
    let mut expected = 0;
    for c in calls() {
        for t in [Some(token.as_str()), None, Some("bad")] {
            let _ = call(&emu, &c, t).await;
            expected += 1;
            assert_eq!(emu.api_requests(), expected, "{}", c.1);
        }
    }
    let _ = post_raw(&emu, &user_posts(), &token, "text/plain", b"x".to_vec()).await;
    assert_eq!(emu.api_requests(), expected + 1);
    emu.shutdown().await;
}

/// A token works until the instant it expires and not at it, as the
/// library counts expiry (`Token::expires_within` with no margin is true
/// at `expires_at`); on paused time so that the instant is exact.
#[tokio::test(start_paused = true)]
async fn a_token_works_until_its_expiry_not_at_it() {
    let emu = emulator(auto_approving()).await;
    let issued = emu.now_ms();
    let token = token(&emu, ALL_SCOPES).await;
    assert_eq!(
        emu.now_ms(),
        issued,
        "paused time stood still while the token was issued"
    );
    let me = || get(&emu, ops::get_current_user::PATH, Some(&token));

    emu.advance_clock(emu.config().token_lifetime - Duration::from_millis(1));
    assert_eq!(me().await.status(), StatusCode::OK);
    emu.advance_clock(Duration::from_millis(1));
    assert_api_error(me().await, StatusCode::UNAUTHORIZED, codes::TOKEN_INVALID).await;
    emu.shutdown().await;
}

#[tokio::test]
async fn me_answers_the_demo_user_without_an_accept_header() {
    let (emu, token) = start(auto_approving()).await;
    let resp = get(&emu, ops::get_current_user::PATH, Some(&token)).await;
    let (body, _): (types::UserEnvelope, _) = success(resp, StatusCode::OK).await;
    assert_eq!(body.data.id, demo::user().id);
    assert_eq!(body.data.username, demo::USERNAME);
    emu.shutdown().await;
}

#[tokio::test]
async fn publications_are_the_users_two_and_another_users_are_forbidden() {
    let (emu, token) = start(auto_approving()).await;
    let path = ops::list_user_publications::path(demo::USER_ID).unwrap();
    let (body, _): (types::PublicationsEnvelope, _) =
        success(get(&emu, &path, Some(&token)).await, StatusCode::OK).await;
    let ids: Vec<&str> = body.data.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(
        ids,
        [demo::EDITOR_PUBLICATION_ID, demo::WRITER_PUBLICATION_ID]
    );
    assert!(body.data.iter().all(|p| p.url.starts_with("https://")));

    for other in [demo::OTHER_USER_IDS[0], "someone", "%C3%28"] {
        let path = format!("/users/{other}/publications");
        assert_api_error(
            get(&emu, &path, Some(&token)).await,
            StatusCode::FORBIDDEN,
            codes::NOT_THE_USER,
        )
        .await;
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn contributors_of_any_known_publication_and_404_for_an_unknown_one() {
    let (emu, token) = start(auto_approving()).await;
    for (id, demo_role) in [
        (
            demo::EDITOR_PUBLICATION_ID,
            Some(types::ContributorRole::Editor),
        ),
        (
            demo::WRITER_PUBLICATION_ID,
            Some(types::ContributorRole::Writer),
        ),
        (demo::OTHER_PUBLICATION_ID, None),
    ] {
        let path = ops::list_publication_contributors::path(id).unwrap();
        let (body, _): (types::ContributorsEnvelope, _) =
            success(get(&emu, &path, Some(&token)).await, StatusCode::OK).await;
        assert!(body.data.len() >= 2);
        assert!(body.data.iter().all(|c| c.publication_id == id));
        let role = body
            .data
            .iter()
            .find(|c| c.user_id == demo::USER_ID)
            .map(|c| c.role);
        assert_eq!(role, demo_role, "{id}");
    }
    let path = ops::list_publication_contributors::path("nope").unwrap();
    assert_api_error(
        get(&emu, &path, Some(&token)).await,
        StatusCode::NOT_FOUND,
        codes::PUBLICATION_NOT_FOUND,
    )
    .await;
    emu.shutdown().await;
}

#[tokio::test]
async fn a_minimal_post_gets_medium_defaults() {
    let (emu, token) = start(auto_approving()).await;
    emu.advance_clock(Duration::from_secs(3600));
    let now = emu.now_ms();
    let (post, raw) = create_post(&emu, &token, &minimal_post()).await;
    assert_eq!(post.title, "Hello");
    assert_eq!(post.author_id, demo::USER_ID);
    assert_eq!(post.publish_status, types::PublishStatus::Public);
    let published = post.published_at.unwrap();
    assert!(
        (now..now + 60_000).contains(&published),
        "{published} {now}"
    );
    assert_eq!(post.license, types::License::AllRightsReserved);
    assert!(post.license_url.starts_with("https://"));
    assert!(post.tags.is_empty());
    assert!(raw.get("canonicalUrl").is_none() && raw.get("publicationId").is_none());
    assert!(post.id.len() == 12 && post.id.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(
        post.url,
        format!("https://medium.com/@demo/hello-{}", post.id)
    );

    let (second, _) = create_post(&emu, &token, &minimal_post()).await;
    assert_ne!(second.id, post.id);

    let kept = emu.posts();
    assert_eq!(kept.len(), 2);
    let first = &kept[0];
    assert_eq!(first.author_id, demo::USER_ID);
    assert_eq!(first.publication_id, None);
    assert_eq!(first.request.title, "Hello");
    assert_eq!(first.request.content, "# Hello\n\nWorld");
    assert_eq!(first.request.content_format, types::ContentFormat::Markdown);
    assert_eq!(first.request.publish_status, None);
    assert_eq!(first.request.license, None);
    assert_eq!(first.request.notify_followers, None);
    assert_eq!(first.post.id, post.id);
    emu.shutdown().await;
}

#[tokio::test]
async fn a_full_post_is_echoed_and_a_draft_has_no_published_at() {
    let (emu, token) = start(auto_approving()).await;
    let body = json!({
        "title": "Draft",
        "contentFormat": "html",
        "content": "<p>hi</p>",
        "tags": ["one", "two"],
        "canonicalUrl": "https://blog.example/draft",
        "publishStatus": "draft",
        "license": "cc-40-by-sa",
        "notifyFollowers": false,
        "somethingMediumIgnores": {"x": [1, 2]},
    });
    let (post, _) = create_post(&emu, &token, &body).await;
    assert_eq!(post.publish_status, types::PublishStatus::Draft);
    assert_eq!(post.published_at, None);
    assert_eq!(
        post.canonical_url.as_deref(),
        Some("https://blog.example/draft")
    );
    assert_eq!(post.license, types::License::Cc40BySa);
    assert_eq!(
        post.license_url,
        "https://creativecommons.org/licenses/by-sa/4.0/"
    );
    assert_eq!(post.tags, ["one", "two"]);
    let kept = &emu.posts()[0];
    assert_eq!(kept.request.notify_followers, Some(false));
    assert_eq!(
        kept.request.publish_status,
        Some(types::PublishStatus::Draft)
    );
    assert_eq!(kept.request.license, Some(types::License::Cc40BySa));
    assert_eq!(
        kept.request.canonical_url.as_deref(),
        Some("https://blog.example/draft")
    );

    let unlisted =
        json!({"title": "U", "contentFormat": "html", "content": "x", "publishStatus": "unlisted"});
    let (post, _) = create_post(&emu, &token, &unlisted).await;
    assert!(post.published_at.is_some());
    emu.shutdown().await;
}

#[tokio::test]
async fn every_license_has_its_own_url() {
    let (emu, token) = start(auto_approving()).await;
    let mut urls = std::collections::HashSet::new();
    for license in [
        "all-rights-reserved",
        "cc-40-by",
        "cc-40-by-sa",
        "cc-40-by-nd",
        "cc-40-by-nc",
        "cc-40-by-nc-nd",
        "cc-40-by-nc-sa",
        "cc-40-zero",
        "public-domain",
    ] {
        let mut body = minimal_post();
        body["license"] = json!(license);
        let (post, raw) = create_post(&emu, &token, &body).await;
        assert_eq!(raw["license"], license);
        assert!(post.license_url.starts_with("https://"), "{license}");
        assert!(urls.insert(post.license_url), "{license}: a shared URL");
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn tags_keep_the_first_three_less_those_over_25_characters() {
    let (emu, token) = start(auto_approving()).await;
    let long = "x".repeat(26);
    let exact = "é".repeat(25);
    let mut body = minimal_post();
    body["tags"] = json!(["a", long, exact, "d", "e"]);
    let (post, _) = create_post(&emu, &token, &body).await;
    assert_eq!(post.tags, ["a".to_owned(), exact]);
    assert_eq!(emu.posts()[0].request.tags.len(), 5, "kept as received");
    emu.shutdown().await;
}

#[tokio::test]
async fn a_title_over_100_characters_is_made_from_the_content() {
    let (emu, token) = start(auto_approving()).await;
    let exact = "t".repeat(MAX_TITLE_CHARS);
    let mut body = minimal_post();
    body["title"] = json!(exact);
    assert_eq!(create_post(&emu, &token, &body).await.0.title, exact);

    body["title"] = json!("t".repeat(MAX_TITLE_CHARS + 1));
    body["content"] = json!("\n\n## The real title\n\nText.");
    assert_eq!(
        create_post(&emu, &token, &body).await.0.title,
        "The real title"
    );

    body["contentFormat"] = json!("html");
    body["content"] = json!("<h1>Headline <b>here</b></h1><p>Text</p>");
    assert_eq!(create_post(&emu, &token, &body).await.0.title, "Headline");

    body["content"] = json!("<img src=\"a.png\">");
    assert_eq!(create_post(&emu, &token, &body).await.0.title, UNTITLED);
    emu.shutdown().await;
}

#[tokio::test]
async fn invalid_post_bodies_get_a_400_naming_the_field() {
    let (emu, token) = start(auto_approving()).await;
    let with = |field: &str, value: Value| {
        let mut body = minimal_post();
        body[field] = value;
        body
    };
    let without = |field: &str| {
        let mut body = minimal_post();
        body.as_object_mut().unwrap().remove(field);
        body
    };
    let huge = "z".repeat(100_000);
    let cases: Vec<(Value, &str)> = vec![
        (json!([1, 2]), "JSON object"),
        (json!("post"), "JSON object"),
        (without("title"), "title"),
        (with("title", json!("")), "title"),
        (with("title", json!("  \n\t")), "title"),
        (with("title", json!(7)), "title"),
        (with("title", Value::Null), "title"),
        (without("contentFormat"), "contentFormat"),
        (with("contentFormat", json!("rtf")), "contentFormat"),
        (with("contentFormat", json!(huge.clone())), "contentFormat"),
        (without("content"), "content"),
        (with("content", json!("")), "content"),
        (with("content", json!(" ")), "content"),
        (with("content", json!(["a"])), "content"),
        (with("publishStatus", json!("secret")), "publishStatus"),
        (with("license", json!("mine")), "license"),
        (with("tags", json!("a,b")), "tags"),
        (with("tags", json!(["a", 1])), "tags"),
        (
            with("canonicalUrl", json!("ftp://example.com/a")),
            "canonicalUrl",
        ),
        (
            with("canonicalUrl", json!("/relative/path")),
            "canonicalUrl",
        ),
        (with("canonicalUrl", json!("not a url")), "canonicalUrl"),
        (with("canonicalUrl", json!(huge)), "canonicalUrl"),
        (with("canonicalUrl", json!(3)), "canonicalUrl"),
        (with("notifyFollowers", json!("yes")), "notifyFollowers"),
    ];
    for (body, field) in cases {
        for path in [user_posts(), publication_posts(demo::EDITOR_PUBLICATION_ID)] {
            let msg = assert_api_error(
                post_json(&emu, &path, &token, &body).await,
                StatusCode::BAD_REQUEST,
                codes::INVALID_POST,
            )
            .await;
            assert!(msg.contains(field), "{field}: {msg}");
            // Each is JSON, of the wrong shape: the answer names what is
            // wrong with it rather than blaming the syntax.
            assert!(!msg.contains("not valid JSON"), "{field}: {msg}");
            assert!(
                msg.len() < 1000,
                "the message quotes too much: {}",
                msg.len()
            );
        }
    }
    for (content_type, body, says) in [
        (
            "application/json",
            b"{\"title\":".to_vec(),
            "not valid JSON",
        ),
        // A field of the wrong type before the syntax error: the body is
        // still not JSON, whatever its fields.
        (
            "application/json",
            b"{\"title\": 7, \"content\"".to_vec(),
            "not valid JSON",
        ),
        ("application/json", b"\xff\xfe".to_vec(), "not valid JSON"),
        ("application/json", b"".to_vec(), "not valid JSON"),
        ("application/json", b" \r\n[1, 2]".to_vec(), "JSON object"),
        (
            "application/json",
            [serde_json::to_vec(&minimal_post()).unwrap(), b" x".to_vec()].concat(),
            "not valid JSON",
        ),
        (
            "text/plain",
            serde_json::to_vec(&minimal_post()).unwrap(),
            "Content-Type",
        ),
        (
            "application/x-www-form-urlencoded",
            b"title=a".to_vec(),
            "Content-Type",
        ),
    ] {
        let msg = assert_api_error(
            post_raw(&emu, &user_posts(), &token, content_type, body).await,
            StatusCode::BAD_REQUEST,
            codes::INVALID_POST,
        )
        .await;
        assert!(msg.contains(says), "{msg}");
    }
    assert!(emu.posts().is_empty());
    emu.shutdown().await;
}

#[tokio::test]
async fn a_post_body_is_capped_at_its_limit() {
    const LIMIT: usize = 2000;
    let (emu, token) = start(Config {
        limits: Limits {
            post_body_bytes: LIMIT,
            ..Limits::default()
        },
        ..auto_approving()
    })
    .await;
    // A valid post of exactly `len` bytes: its content pads it out.
    let sized = |len: usize| {
        let mut body = minimal_post();
        body["content"] = json!("");
        let base = serde_json::to_vec(&body).unwrap().len();
        body["content"] = json!("c".repeat(len - base));
        let bytes = serde_json::to_vec(&body).unwrap();
        assert_eq!(bytes.len(), len);
        bytes
    };
    let resp = post_raw(
        &emu,
        &user_posts(),
        &token,
        "application/json",
        sized(LIMIT),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let over = sized(LIMIT + 1);
    assert_api_error(
        post_raw(&emu, &user_posts(), &token, "application/json", over).await,
        StatusCode::BAD_REQUEST,
        codes::POST_TOO_LARGE,
    )
    .await;
    emu.shutdown().await;
}

#[tokio::test]
async fn posting_as_another_user_is_forbidden() {
    let (emu, token) = start(auto_approving()).await;
    for other in [demo::OTHER_USER_IDS[1], "me", "x"] {
        let path = ops::create_user_post::path(other).unwrap();
        assert_api_error(
            post_json(&emu, &path, &token, &minimal_post()).await,
            StatusCode::FORBIDDEN,
            codes::NOT_THE_USER,
        )
        .await;
    }
    assert!(emu.posts().is_empty());
    emu.shutdown().await;
}

#[tokio::test]
async fn publication_posts_follow_the_contributors_roles() {
    let (emu, token) = start(auto_approving()).await;
    let status = |s: Option<&str>| {
        let mut body = minimal_post();
        if let Some(s) = s {
            body["publishStatus"] = json!(s);
        }
        body
    };

    // An editor publishes with any status.
    let editor = publication_posts(demo::EDITOR_PUBLICATION_ID);
    for s in [None, Some("public"), Some("unlisted"), Some("draft")] {
        let resp = post_json(&emu, &editor, &token, &status(s)).await;
        let (body, _): (types::PostEnvelope, _) = success(resp, StatusCode::CREATED).await;
        let post = body.data;
        assert_eq!(
            post.publication_id.as_deref(),
            Some(demo::EDITOR_PUBLICATION_ID)
        );
        assert!(
            post.url
                .starts_with("https://medium.com/demo-editorial/hello-"),
            "{}",
            post.url
        );
        assert_eq!(post.published_at.is_none(), s == Some("draft"));
    }

    // A writer only creates drafts; an omitted status means public.
    let writer = publication_posts(demo::WRITER_PUBLICATION_ID);
    let resp = post_json(&emu, &writer, &token, &status(Some("draft"))).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    for s in [None, Some("public"), Some("unlisted")] {
        assert_api_error(
            post_json(&emu, &writer, &token, &status(s)).await,
            StatusCode::FORBIDDEN,
            codes::PUBLICATION_FORBIDDEN,
        )
        .await;
    }

    // Anyone else gets 403, and an unknown publication 404.
    let other = publication_posts(demo::OTHER_PUBLICATION_ID);
    assert_api_error(
        post_json(&emu, &other, &token, &status(Some("draft"))).await,
        StatusCode::FORBIDDEN,
        codes::PUBLICATION_FORBIDDEN,
    )
    .await;
    assert_api_error(
        post_json(&emu, &publication_posts("nope"), &token, &minimal_post()).await,
        StatusCode::NOT_FOUND,
        codes::PUBLICATION_NOT_FOUND,
    )
    .await;

    let kept = emu.posts();
    assert_eq!(kept.len(), 5);
    assert_eq!(
        kept[4].publication_id.as_deref(),
        Some(demo::WRITER_PUBLICATION_ID)
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn posts_are_evicted_oldest_first_at_their_caps() {
    let (emu, token) = start(Config {
        limits: Limits {
            posts: 3,
            ..Limits::default()
        },
        ..auto_approving()
    })
    .await;
    for i in 0..5 {
        let mut body = minimal_post();
        body["title"] = json!(format!("post {i}"));
        create_post(&emu, &token, &body).await;
    }
    let titles: Vec<String> = emu.posts().into_iter().map(|p| p.request.title).collect();
    assert_eq!(titles, ["post 2", "post 3", "post 4"]);
    emu.shutdown().await;

    // By bytes: posts of about 10 KB under a 25,000-byte cap keep two.
    let (emu, token) = start(Config {
        limits: Limits {
            post_bytes: 25_000,
            ..Limits::default()
        },
        ..auto_approving()
    })
    .await;
    for i in 0..4 {
        let mut body = minimal_post();
        body["title"] = json!(format!("post {i}"));
        body["content"] = json!("c".repeat(10_000));
        create_post(&emu, &token, &body).await;
    }
    let titles: Vec<String> = emu.posts().into_iter().map(|p| p.request.title).collect();
    assert_eq!(titles, ["post 2", "post 3"]);
    assert!(emu.post_bytes() <= 25_000);
    emu.shutdown().await;
}

/// A refusal decided from the headers (no token, a bad one, another user's
/// path) is answered once the body is in, so a client sending a large body
/// reads it rather than a reset connection; and nothing is created.
#[tokio::test]
async fn a_refused_call_reads_its_large_body_before_answering() {
    let (emu, token) = start(auto_approving()).await;
    let image = image_part(&vec![0x5a; DEFAULT_MAX_IMAGE_BYTES]);
    let mut post = minimal_post();
    post["content"] = json!("c".repeat(emu.config().limits.post_body_bytes - 1000));
    let post = serde_json::to_vec(&post).unwrap();
    let cases = [
        (
            ops::upload_image::PATH.to_owned(),
            MULTIPART,
            image,
            "bad",
            StatusCode::UNAUTHORIZED,
            codes::TOKEN_INVALID,
        ),
        (
            user_posts(),
            "application/json",
            post.clone(),
            "bad",
            StatusCode::UNAUTHORIZED,
            codes::TOKEN_INVALID,
        ),
        (
            ops::create_user_post::path(demo::OTHER_USER_IDS[1]).unwrap(),
            "application/json",
            post,
            token.as_str(),
            StatusCode::FORBIDDEN,
            codes::NOT_THE_USER,
        ),
    ];
    for (path, content_type, body, token, status, code) in cases {
        let resp = post_raw(&emu, &path, token, content_type, body).await;
        assert_api_error(resp, status, code).await;
    }
    assert!(emu.posts().is_empty());
    assert!(emu.images().is_empty());
    emu.shutdown().await;
}

async fn upload(
    emu: &Emulator,
    token: &str,
    content_type: &str,
    body: Vec<u8>,
) -> reqwest::Response {
    post_raw(emu, ops::upload_image::PATH, token, content_type, body).await
}

#[tokio::test]
async fn an_image_upload_answers_its_md5_and_a_url() {
    let (emu, token) = start(auto_approving()).await;
    // Quoted boundary, as some clients send it.
    let body = multipart(
        "x y;z",
        &[
            "content-disposition: form-data; name=\"image\"; filename=\"a photo.JPG\"",
            "content-type: IMAGE/JPEG",
        ],
        b"abc",
    );
    let resp = upload(
        &emu,
        &token,
        "multipart/form-data; boundary=\"x y;z\"",
        body,
    )
    .await;
    let (envelope, _): (types::ImageEnvelope, _) = success(resp, StatusCode::CREATED).await;
    let md5 = "900150983cd24fb0d6963f7d28e17f72";
    assert_eq!(envelope.data.md5, md5);
    assert!(envelope.data.url.starts_with("https://"));
    assert!(envelope.data.url.contains(md5) && envelope.data.url.ends_with(".jpeg"));

    for (content_type, ext) in ops::upload_image::part_content_types::IMAGE
        .iter()
        .zip(["jpeg", "png", "gif", "tiff"])
    {
        let header = format!("Content-Type: {content_type}");
        let body = multipart(
            "b0undary",
            &[
                "Content-Disposition: form-data; name=\"image\"; filename=\"i\"",
                &header,
            ],
            b"img",
        );
        let resp = upload(&emu, &token, MULTIPART, body).await;
        let (envelope, _): (types::ImageEnvelope, _) = success(resp, StatusCode::CREATED).await;
        assert!(envelope.data.url.ends_with(&format!(".{ext}")));
    }

    let images = emu.images();
    assert_eq!(images.len(), 5);
    assert_eq!(images[0].md5, md5);
    assert_eq!(images[0].filename, "a photo.JPG");
    assert_eq!(images[0].content_type, "IMAGE/JPEG");
    assert_eq!(images[0].size, 3);
    emu.shutdown().await;
}

#[tokio::test]
async fn image_upload_defects_get_a_400_saying_what_is_wrong() {
    let (emu, token) = start(auto_approving()).await;
    let disposition = "Content-Disposition: form-data; name=\"image\"; filename=\"a.png\"";
    let png = "Content-Type: image/png";
    let good = image_part(b"abc");
    // Cut inside the closing boundary.
    let truncated = good[..good.len() - 10].to_vec();
    let second = {
        let mut b = multipart("b0undary", &[disposition, png], b"abc");
        b.truncate(b.len() - "--\r\n".len());
        b.extend_from_slice(b"\r\n");
        b.extend_from_slice(
            &multipart("b0undary", &[disposition, png], b"def")["--b0undary\r\n".len()..],
        );
        b
    };
    let huge_header = format!("X-Pad: {}", "p".repeat(5000));
    // A thousand image parts, one boundary between each.
    let mut many_parts = Vec::new();
    for _ in 0..1000 {
        many_parts.extend_from_slice(
            format!("--b0undary\r\n{disposition}\r\n{png}\r\n\r\nx\r\n").as_bytes(),
        );
    }
    many_parts.extend_from_slice(b"--b0undary--\r\n");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("application/json", b"{}".to_vec(), "multipart/form-data"),
        ("multipart/form-data", good.clone(), "boundary"),
        (
            "multipart/form-data; boundary=other",
            good.clone(),
            "no boundary line",
        ),
        (MULTIPART, truncated, "closing boundary"),
        (MULTIPART, b"--b0undary\r\nContent-Disp".to_vec(), "headers"),
        (MULTIPART, b"".to_vec(), "no boundary line"),
        (MULTIPART, b"--b0undary--\r\n".to_vec(), "no parts"),
        (
            MULTIPART,
            multipart("b0undary", &[], b"abc"),
            "Content-Disposition",
        ),
        (
            MULTIPART,
            multipart("b0undary", &[&huge_header, disposition, png], b"abc"),
            "over",
        ),
        (MULTIPART, second, "more than one part"),
        (MULTIPART, many_parts, "more than one part"),
        (
            MULTIPART,
            multipart(
                "b0undary",
                &[
                    "Content-Disposition: form-data; name=\"file\"; filename=\"a.png\"",
                    png,
                ],
                b"abc",
            ),
            "named `image`",
        ),
        (
            MULTIPART,
            multipart(
                "b0undary",
                &["Content-Disposition: form-data; name=\"image\"", png],
                b"abc",
            ),
            "filename",
        ),
        (
            MULTIPART,
            multipart("b0undary", &[disposition], b"abc"),
            "Content-Type",
        ),
        (
            MULTIPART,
            multipart(
                "b0undary",
                &[disposition, "Content-Type: text/plain"],
                b"abc",
            ),
            "image/jpeg",
        ),
        (
            MULTIPART,
            multipart(
                "b0undary",
                &[disposition, "Content-Type: image/svg+xml"],
                b"abc",
            ),
            "image/svg+xml",
        ),
        (
            MULTIPART,
            multipart("b0undary", &[disposition, png], b""),
            "empty",
        ),
        (
            MULTIPART,
            b"--b0undary\n\rContent-Disposition: form-data; name=image\n\nabc\n--b0undary--"
                .to_vec(),
            "CRLF",
        ),
    ];
    for (content_type, body, says) in cases {
        let msg = assert_api_error(
            upload(&emu, &token, content_type, body).await,
            StatusCode::BAD_REQUEST,
            codes::INVALID_UPLOAD,
        )
        .await;
        assert!(msg.contains(says), "{says}: {msg}");
    }
    // No Content-Type at all.
    let resp = http()
        .post(url(&emu, ops::upload_image::PATH))
        .bearer_auth(&token)
        .body(good)
        .send()
        .await
        .unwrap();
    assert_api_error(resp, StatusCode::BAD_REQUEST, codes::INVALID_UPLOAD).await;
    assert!(emu.images().is_empty());
    emu.shutdown().await;
}

#[tokio::test]
async fn the_image_cap_takes_exactly_the_cap_and_refuses_a_byte_more() {
    let (emu, token) = start(auto_approving()).await;
    assert_eq!(
        emu.config().limits.image_upload_bytes,
        DEFAULT_MAX_IMAGE_BYTES
    );
    let at_cap = vec![0x5a; DEFAULT_MAX_IMAGE_BYTES];
    let resp = upload(&emu, &token, MULTIPART, image_part(&at_cap)).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let over = vec![0x5a; DEFAULT_MAX_IMAGE_BYTES + 1];
    let msg = assert_api_error(
        upload(&emu, &token, MULTIPART, image_part(&over)).await,
        StatusCode::BAD_REQUEST,
        codes::IMAGE_TOO_LARGE,
    )
    .await;
    assert!(msg.contains(&DEFAULT_MAX_IMAGE_BYTES.to_string()), "{msg}");
    assert_eq!(emu.images().len(), 1);
    assert_eq!(emu.images()[0].size, DEFAULT_MAX_IMAGE_BYTES);
    emu.shutdown().await;
}

#[tokio::test]
async fn a_body_past_the_cap_and_its_framing_is_refused_and_other_routes_keep_their_limit() {
    const CAP: usize = 1000;
    let (emu, token) = start(Config {
        limits: Limits {
            image_upload_bytes: CAP,
            ..Limits::default()
        },
        ..auto_approving()
    })
    .await;
    let body = image_part(&vec![1; CAP + MULTIPART_OVERHEAD_BYTES]);
    assert_api_error(
        upload(&emu, &token, MULTIPART, body).await,
        StatusCode::BAD_REQUEST,
        codes::IMAGE_TOO_LARGE,
    )
    .await;
    // A preamble the framing allows for, with an image at the cap.
    let mut body = vec![b'p'; 1000];
    body.extend_from_slice(b"\r\n");
    body.extend_from_slice(&image_part(&vec![1; CAP]));
    let resp = upload(&emu, &token, MULTIPART, body).await;
    assert_eq!(resp.status(), StatusCode::CREATED);

    // The token endpoint keeps its own, smaller, limit.
    let big_form = vec![b'a'; emu.config().limits.request_body_bytes + 1];
    let resp = http()
        .post(url(&emu, "/tokens"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(big_form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    emu.shutdown().await;
}

#[tokio::test]
async fn images_are_evicted_oldest_first_at_their_cap() {
    let (emu, token) = start(Config {
        limits: Limits {
            images: 2,
            ..Limits::default()
        },
        ..auto_approving()
    })
    .await;
    for data in [&b"1"[..], b"2", b"3"] {
        let resp = upload(&emu, &token, MULTIPART, image_part(data)).await;
        assert_eq!(resp.status(), StatusCode::CREATED);
    }
    let sizes: Vec<String> = emu.images().into_iter().map(|i| i.md5).collect();
    assert_eq!(sizes.len(), 2);
    // md5("2") and md5("3").
    assert_eq!(
        sizes,
        [
            "c81e728d9d4c2f636f067f89cc14862c",
            "eccbc87e4b5ce2fe28308fd9f2a7baf3"
        ]
    );
    emu.shutdown().await;
}

/// The generated client, as the library drives it, reads every answer as
/// the spec says: the statuses and envelopes match.
#[tokio::test]
async fn the_generated_client_reads_every_answer() {
    let (emu, token) = start(auto_approving()).await;
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}").parse().unwrap(),
    );
    let http = medium_oauth2_api::tls::client_builder()
        .unwrap()
        .default_headers(headers)
        .build()
        .unwrap();
    let client = medium_oauth2_api::resource::Client::new_with_client(&emu.api_server(), http);
    let me = client.get_current_user().await.unwrap().into_inner();
    assert_eq!(me.data.id, demo::USER_ID);
    let pubs = client
        .list_user_publications(demo::USER_ID)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(pubs.data.len(), 2);
    let contributors = client
        .list_publication_contributors(demo::OTHER_PUBLICATION_ID)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(contributors.data.len(), 2);
    let request: types::CreatePostRequest = serde_json::from_value(minimal_post()).unwrap();
    let post = client
        .create_user_post(demo::USER_ID, &request)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(post.data.author_id, demo::USER_ID);
    let in_publication = client
        .create_publication_post(demo::EDITOR_PUBLICATION_ID, &request)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        in_publication.data.publication_id.as_deref(),
        Some(demo::EDITOR_PUBLICATION_ID)
    );
    // Refusals arrive as the spec's error responses.
    let refused = client
        .create_publication_post(demo::OTHER_PUBLICATION_ID, &request)
        .await
        .unwrap_err();
    assert_eq!(refused.status(), Some(StatusCode::FORBIDDEN));
    let missing = client
        .list_publication_contributors("nope")
        .await
        .unwrap_err();
    assert_eq!(missing.status(), Some(StatusCode::NOT_FOUND));
    assert!(matches!(
        missing,
        medium_oauth2_api::resource::Error::ErrorResponse(_)
    ));
    emu.shutdown().await;
}
