//! Many Medium users on one emulator, over real loopback HTTP: the consent
//! page's username field signs in a user of that name, the same user on
//! every emulator; its tokens, refreshed or not, act for it on every REST
//! call; bad usernames and the user cap are refused with a page that says
//! why.

use medium_oauth_emulator::{
    Config, DEFAULT_MAX_USERS, Emulator, Limits, MAX_USERNAME_CHARS, codes, demo,
};
use medium_oauth_test_support::http_no_redirect as http;
use medium_oauth_test_support::{REDIRECT, auto_approving, emulator, raw_access_token};
use medium_oauth2_api::resource::operations as ops;
use medium_oauth2_api::resource::types::{self, User};
use reqwest::StatusCode;
use serde_json::{Value, json};

mod common;
use common::{assert_api_error, exchange, refresh_at};

const ALL_SCOPES: &str = "basicProfile,listPublications,publishPost,uploadImage";

/// The consent page for the demo app, as a browser gets it.
async fn consent_page(emu: &Emulator) -> String {
    let mut url =
        reqwest::Url::parse(&format!("{}/authorize", emu.authorization_server())).unwrap();
    url.query_pairs_mut().extend_pairs([
        ("client_id", "demo-client"),
        ("scope", ALL_SCOPES),
        ("state", "st"),
        ("response_type", "code"),
        ("redirect_uri", REDIRECT),
    ]);
    let resp = http().get(url).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    resp.text().await.unwrap()
}

fn consent_id(page: &str) -> String {
    let marker = "name=\"consent\" value=\"";
    let start = page.find(marker).unwrap() + marker.len();
    page[start..start + page[start..].find('"').unwrap()].to_owned()
}

/// Posts the consent form of `page` with `decision`, and `username` in the
/// username field (or without the field, for `None`).
async fn answer(
    emu: &Emulator,
    page: &str,
    decision: &str,
    username: Option<&str>,
) -> reqwest::Response {
    let consent = consent_id(page);
    let mut form = vec![("consent", consent.as_str()), ("decision", decision)];
    if let Some(username) = username {
        form.push(("username", username));
    }
    http()
        .post(format!("{}/authorize", emu.authorization_server()))
        .form(&form)
        .send()
        .await
        .unwrap()
}

/// The code in a redirect to the app.
fn code_of(resp: &reqwest::Response) -> String {
    assert_eq!(resp.status(), StatusCode::FOUND);
    let location = resp.headers()["location"].to_str().unwrap();
    reqwest::Url::parse(location)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("a code")
}

/// A token response that succeeded, as JSON.
async fn token_json(resp: reqwest::Response) -> Value {
    assert!(resp.status().is_success(), "{}", resp.status());
    resp.json().await.unwrap()
}

/// Logs in through the consent page as `username`: the token response.
async fn login_as(emu: &Emulator, username: &str) -> Value {
    let page = consent_page(emu).await;
    let approved = answer(emu, &page, "approve", Some(username)).await;
    token_json(exchange(emu, &code_of(&approved)).await).await
}

/// An access token of `username`'s, from the consent page.
async fn token_of(emu: &Emulator, username: &str) -> String {
    access_token(&login_as(emu, username).await)
}

fn access_token(tokens: &Value) -> String {
    tokens["access_token"].as_str().unwrap().to_owned()
}

async fn get(emu: &Emulator, path: &str, token: &str) -> reqwest::Response {
    http()
        .get(format!("{}{path}", emu.api_server()))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

async fn me(emu: &Emulator, token: &str) -> User {
    let resp = get(emu, "/me", token).await;
    assert_eq!(resp.status(), StatusCode::OK);
    resp.json::<types::UserEnvelope>().await.unwrap().data
}

async fn post_json(emu: &Emulator, path: &str, token: &str, body: &Value) -> reqwest::Response {
    http()
        .post(format!("{}{path}", emu.api_server()))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// The text of the page's `<p id="reason">`, as sent (escaped).
fn reason(page: &str) -> &str {
    let start = page.find("<p id=\"reason\">").expect("a reason") + "<p id=\"reason\">".len();
    &page[start..start + page[start..].find("</p>").unwrap()]
}

/// The user as a comparable tuple: the generated type has no `PartialEq`.
fn fields(user: &User) -> [&str; 5] {
    [
        &user.id,
        &user.username,
        &user.name,
        &user.url,
        &user.image_url,
    ]
}

fn usernames(emu: &Emulator) -> Vec<String> {
    emu.users().into_iter().map(|u| u.username).collect()
}

#[tokio::test]
async fn the_consent_form_has_a_labelled_username_field_starting_as_demo() {
    let emu = emulator(Config::default()).await;
    let page = consent_page(&emu).await;
    let form = &page[page.find("<form").unwrap()..page.find("</form>").unwrap()];
    assert!(
        form.contains(r#"<input id="username" name="username" value="demo">"#),
        "{form}"
    );
    assert!(form.contains(r#"<label for="username">"#), "{form}");
    assert!(
        form.contains(&format!("1 to {MAX_USERNAME_CHARS} letters")),
        "{form}"
    );
    // Left as it is, it signs in the demo user, as before.
    let token = token_of(&emu, "demo").await;
    assert_eq!(fields(&me(&emu, &token).await), fields(&demo::user()));
}

#[tokio::test]
async fn two_usernames_are_two_users_the_same_on_every_emulator() {
    let first = emulator(Config::default()).await;
    let second = emulator(Config::default()).await;
    let alice = me(&first, &token_of(&first, "alice").await).await;
    let bob = me(&first, &token_of(&first, "bob").await).await;
    assert_ne!(alice.id, bob.id);
    for user in [&alice, &bob] {
        assert_eq!(user.id.len(), demo::USER_ID.len(), "{user:?}");
        assert!(
            user.id
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
            "{user:?}"
        );
        assert_ne!(user.id, demo::USER_ID);
    }
    // Another emulator (as after a restart) knows them by the same ids, and
    // so does a second login on the first; the name is case-insensitive.
    let again = me(&second, &token_of(&second, "Alice").await).await;
    assert_eq!(fields(&again), fields(&alice));
    let bob_again = me(&first, &token_of(&first, "bob").await).await;
    assert_eq!(fields(&bob_again), fields(&bob));
    assert_eq!(usernames(&first), ["alice", "bob", "demo"]);
    assert_eq!(usernames(&second), ["alice", "demo"]);
    let listed = first.users();
    assert_eq!(fields(&listed[0]), fields(&alice));
    assert_eq!(fields(&listed[2]), fields(&demo::user()));
}

#[tokio::test]
async fn me_after_logging_in_as_alice_is_alice() {
    let emu = emulator(Config::default()).await;
    let user = me(&emu, &token_of(&emu, "alice").await).await;
    assert_eq!(user.username, "alice");
    assert_eq!(user.name, "Alice User");
    assert_eq!(user.url, "https://medium.com/@alice");
    assert_eq!(
        user.image_url,
        "https://cdn-images-1.medium.com/fit/c/400/400/alice.png"
    );
    // The longest username, of every allowed kind of character.
    let longest = format!("{}_.9", "Z".repeat(MAX_USERNAME_CHARS - 3));
    let user = me(&emu, &token_of(&emu, &longest).await).await;
    assert_eq!(user.username, longest.to_ascii_lowercase());
}

/// Refreshes on both forms, with and without rotation, keep the user.
#[tokio::test]
async fn a_refresh_keeps_the_user() {
    for rotate in [false, true] {
        let emu = emulator(Config {
            rotate_refresh_tokens: rotate,
            ..Config::default()
        })
        .await;
        let tokens = login_as(&emu, "alice").await;
        let alice = me(&emu, &access_token(&tokens)).await;
        let mut refresh_token = tokens["refresh_token"].as_str().unwrap().to_owned();
        for path in ["/tokens/refresh", "/tokens", "/tokens/refresh"] {
            let refreshed = token_json(refresh_at(&emu, path, &refresh_token).await).await;
            assert_eq!(
                fields(&me(&emu, &access_token(&refreshed)).await),
                fields(&alice),
                "rotate {rotate}, {path}"
            );
            if let Some(rotated) = refreshed["refresh_token"].as_str() {
                assert!(rotate);
                refresh_token = rotated.to_owned();
            }
        }
    }
}

#[tokio::test]
async fn bad_usernames_get_a_400_page_saying_why_escaped() {
    let emu = emulator(Config::default()).await;
    let too_long = "a".repeat(MAX_USERNAME_CHARS + 1);
    let page = consent_page(&emu).await;
    for (bad, says) in [
        ("", "The username is empty."),
        (
            too_long.as_str(),
            "The username is too long: 31 characters, and at most 30 are accepted.",
        ),
        (
            "<script>alert(1)</script>",
            "The username may only hold letters, digits, _ and . (not '&lt;').",
        ),
        ("a&b", "(not '&amp;')"),
        ("al ice", "(not ' ')"),
    ] {
        let resp = answer(&emu, &page, "approve", Some(bad)).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{bad:?}");
        let text = resp.text().await.unwrap();
        assert!(reason(&text).contains(says), "{bad:?}: {text}");
        assert!(!text.contains("<script"), "{text}");
    }
    assert_eq!(usernames(&emu), ["demo"]);
    // The consent was not used up: corrected, the same page approves.
    let approved = answer(&emu, &page, "approve", Some("alice")).await;
    let token = access_token(&token_json(exchange(&emu, &code_of(&approved)).await).await);
    assert_eq!(me(&emu, &token).await.username, "alice");
}

/// A denial names nobody: whatever the field holds, the app is told no.
#[tokio::test]
async fn a_denial_ignores_the_username() {
    let emu = emulator(Config::default()).await;
    let page = consent_page(&emu).await;
    let denied = answer(&emu, &page, "deny", Some("<not a name>")).await;
    assert_eq!(denied.status(), StatusCode::FOUND);
    let location = denied.headers()["location"].to_str().unwrap();
    assert!(location.contains("error=access_denied"), "{location}");
    assert_eq!(usernames(&emu), ["demo"]);
}

#[tokio::test]
async fn a_new_user_past_the_cap_gets_a_403_page() {
    assert_eq!(Limits::default().users, DEFAULT_MAX_USERS);
    assert_eq!(DEFAULT_MAX_USERS, 10_000);
    let emu = emulator(Config {
        limits: Limits {
            users: 2,
            ..Limits::default()
        },
        ..Config::default()
    })
    .await;
    // The demo user is one of the two.
    token_of(&emu, "alice").await;
    let page = consent_page(&emu).await;
    let refused = answer(&emu, &page, "approve", Some("bob")).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let text = refused.text().await.unwrap();
    assert!(
        reason(&text).contains("already knows 2 users, its cap"),
        "{text}"
    );
    assert_eq!(usernames(&emu), ["alice", "demo"]);
    // The consent was not used up: the same page approves as a known user.
    let approved = answer(&emu, &page, "approve", Some("alice")).await;
    let token = access_token(&token_json(exchange(&emu, &code_of(&approved)).await).await);
    assert_eq!(me(&emu, &token).await.username, "alice");
    // Known users still sign in.
    for known in ["alice", "ALICE", "demo"] {
        let token = token_of(&emu, known).await;
        assert_eq!(me(&emu, &token).await.username, known.to_ascii_lowercase());
    }
}

#[tokio::test]
async fn auto_approval_signs_in_the_demo_user() {
    let emu = emulator(auto_approving()).await;
    let token = raw_access_token(&emu, ALL_SCOPES).await;
    assert_eq!(fields(&me(&emu, &token).await), fields(&demo::user()));
    assert_eq!(usernames(&emu), ["demo"]);
}

#[tokio::test]
async fn a_form_without_a_username_approves_as_the_demo_user() {
    let emu = emulator(Config::default()).await;
    let page = consent_page(&emu).await;
    let approved = answer(&emu, &page, "approve", None).await;
    let token = access_token(&token_json(exchange(&emu, &code_of(&approved)).await).await);
    assert_eq!(fields(&me(&emu, &token).await), fields(&demo::user()));
}

/// Publications, posts and images act for the token's user: another user's
/// id in the path is refused as any wrong user id is (403, not the user),
/// and a user outside the fixture's publications has none to post in.
#[tokio::test]
async fn the_rest_calls_act_as_the_tokens_user() {
    let emu = emulator(Config::default()).await;
    let alice_token = token_of(&emu, "alice").await;
    let demo_token = token_of(&emu, "demo").await;
    let alice = me(&emu, &alice_token).await;

    // Publications: alice's own (none), not the demo user's.
    let path = ops::list_user_publications::path(&alice.id).unwrap();
    let resp = get(&emu, &path, &alice_token).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let listed: types::PublicationsEnvelope = resp.json().await.unwrap();
    assert!(listed.data.is_empty());
    let demos = ops::list_user_publications::path(demo::USER_ID).unwrap();
    let resp = get(&emu, &demos, &alice_token).await;
    assert_api_error(resp, StatusCode::FORBIDDEN, codes::NOT_THE_USER).await;
    let resp = get(&emu, &path, &demo_token).await;
    assert_api_error(resp, StatusCode::FORBIDDEN, codes::NOT_THE_USER).await;
    let resp = get(&emu, &demos, &demo_token).await;
    let listed: types::PublicationsEnvelope = resp.json().await.unwrap();
    assert_eq!(listed.data.len(), 2);

    // Posts: under alice's own id, and only there.
    let body = json!({"title": "Hello", "contentFormat": "markdown", "content": "# Hello"});
    let own = ops::create_user_post::path(&alice.id).unwrap();
    let resp = post_json(&emu, &own, &alice_token, &body).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let post = resp.json::<types::PostEnvelope>().await.unwrap().data;
    assert_eq!(post.author_id, alice.id);
    assert_eq!(
        post.url,
        format!("https://medium.com/@alice/hello-{}", post.id)
    );
    let demos = ops::create_user_post::path(demo::USER_ID).unwrap();
    let resp = post_json(&emu, &demos, &alice_token, &body).await;
    assert_api_error(resp, StatusCode::FORBIDDEN, codes::NOT_THE_USER).await;
    let resp = post_json(&emu, &own, &demo_token, &body).await;
    assert_api_error(resp, StatusCode::FORBIDDEN, codes::NOT_THE_USER).await;
    // The demo user's publications are not alice's to post in.
    for publication in [demo::EDITOR_PUBLICATION_ID, demo::WRITER_PUBLICATION_ID] {
        let path = ops::create_publication_post::path(publication).unwrap();
        let draft = json!({"title": "Hi", "contentFormat": "html", "content": "<p>Hi</p>",
            "publishStatus": "draft"});
        let resp = post_json(&emu, &path, &alice_token, &draft).await;
        assert_api_error(resp, StatusCode::FORBIDDEN, codes::PUBLICATION_FORBIDDEN).await;
        let resp = post_json(&emu, &path, &demo_token, &draft).await;
        assert_eq!(resp.status(), StatusCode::CREATED);
    }
    let posts = emu.posts();
    assert_eq!(posts.len(), 3);
    assert_eq!(posts[0].author_id, alice.id);
    assert_eq!(posts[0].post.author_id, alice.id);
    assert!(posts[1..].iter().all(|p| p.author_id == demo::USER_ID));

    // Images: alice's token uploads.
    let boundary = "b0undary";
    let mut upload = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.png\"\r\n\
         Content-Type: image/png\r\n\r\n"
    )
    .into_bytes();
    upload.extend_from_slice(b"\x89PNG\r\n\x1a\nfake");
    upload.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let resp = http()
        .post(format!("{}/images", emu.api_server()))
        .bearer_auth(&alice_token)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(upload)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(emu.images().len(), 1);
}
