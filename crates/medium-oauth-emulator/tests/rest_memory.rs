//! What hostile REST clients can make the emulator hold: the memory one
//! post body costs whatever its shape, and the image-read permits that
//! clients without a token must not be able to take.
//!
//! A counting global allocator (this test binary's own) measures what one
//! post request costs.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use medium_oauth_emulator::{Config, Emulator, Limits, MAX_TAGS_SENT, codes, demo};
use medium_oauth_test_support::{auto_approving, emulator, raw_access_token as token};
use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::AsyncWriteExt;

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = CURRENT.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            // Counted as alloc-then-free, as a moving realloc holds both.
            let now = CURRENT.fetch_add(new_size, Ordering::Relaxed) + new_size;
            PEAK.fetch_max(now, Ordering::Relaxed);
            CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn http() -> reqwest::Client {
    medium_oauth2_api::tls::client_builder()
        .unwrap()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Peak bytes allocated, above what was live before, while `body` is
/// posted; and the status answered.
async fn peak_of_post(emu: &Emulator, token: &str, body: Vec<u8>) -> (usize, StatusCode) {
    let url = format!("{}/users/{}/posts", emu.api_server(), demo::USER_ID);
    let request = http()
        .post(url)
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body);
    let before = CURRENT.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let status = request.send().await.unwrap().status();
    (PEAK.load(Ordering::Relaxed) - before, status)
}

/// Most a post may cost in memory, as a multiple of its body: the body
/// itself, the request read from it, and the answer, with room for the
/// allocator's growth steps. Through a `serde_json::Value`, a body of small
/// values cost 20 to 30 times its size.
const MAX_POST_COST_PER_BODY_BYTE: usize = 8;

/// A post `cap` bytes long at most: a valid request with `field` set to a
/// JSON list of `item` repeated.
fn list_post(cap: usize, field: &str, item: &[u8]) -> Vec<u8> {
    let mut body =
        format!(r#"{{"title":"t","contentFormat":"html","content":"c","{field}":["#).into_bytes();
    while body.len() + 2 * item.len() + 2 < cap {
        body.extend_from_slice(item);
        body.push(b',');
    }
    body.extend_from_slice(item);
    body.extend_from_slice(b"]}");
    body
}

/// A body of small values in a field Medium ignores (`[0,0,…]`, `[{},…]`,
/// `["",…]`) is skipped, not stored: a post at the size cap costs no more
/// than a few times its size, as one long string does. Nothing bounds how
/// many posts are parsed at once, so this bounds what 256 connections cost.
#[tokio::test]
async fn a_post_body_does_not_inflate_in_memory() {
    let emu = emulator(auto_approving()).await;
    let token = token(&emu, "basicProfile,publishPost").await;
    let cap = Limits::default().post_body_bytes;

    // A benign post of the same size: one long string.
    let filler = "c".repeat(cap - 200);
    let benign = serde_json::to_vec(&serde_json::json!({
        "title": "t", "contentFormat": "html", "content": filler,
    }))
    .unwrap();
    let (benign_peak, status) = peak_of_post(&emu, &token, benign).await;
    assert_eq!(status, StatusCode::CREATED);
    eprintln!("benign {cap}-byte post: peak {} KiB", benign_peak / 1024);

    // Ignored fields are skipped: 201; a list of tags past MAX_TAGS_SENT is
    // refused before it is read: 400. Neither costs much.
    let cases: [(&str, &[u8], StatusCode); 4] = [
        ("x", b"0", StatusCode::CREATED),
        ("x", b"{}", StatusCode::CREATED),
        ("x", b"\"\"", StatusCode::CREATED),
        ("tags", b"\"\"", StatusCode::BAD_REQUEST),
    ];
    for (field, item, expected) in cases {
        let hostile = list_post(cap, field, item);
        let size = hostile.len();
        assert!(size <= cap);
        let (peak, status) = peak_of_post(&emu, &token, hostile).await;
        let shape = String::from_utf8_lossy(item);
        eprintln!(
            "{field}: [{shape},…] {size} bytes: peak {} KiB ({:.2}x the body)",
            peak / 1024,
            peak as f64 / size as f64
        );
        assert_eq!(status, expected, "{field}: [{shape},…]");
        assert!(
            peak < MAX_POST_COST_PER_BODY_BYTE * size,
            "{field}: [{shape},…]: one {size}-byte post peaked at {peak} bytes ({}x)",
            peak / size
        );
    }
    emu.shutdown().await;
}

/// A list of tags one past MAX_TAGS_SENT is refused naming `tags`, with the
/// post code rather than the 413's; one at it is read, and the first
/// MAX_TAGS are kept.
#[tokio::test]
async fn a_tag_list_past_its_cap_is_refused() {
    let emu = emulator(auto_approving()).await;
    let token = token(&emu, "publishPost").await;
    let url = format!("{}/users/{}/posts", emu.api_server(), demo::USER_ID);
    let post = |tags: usize| {
        serde_json::json!({
            "title": "t", "contentFormat": "html", "content": "c",
            "tags": vec!["a"; tags],
        })
    };
    let resp = http()
        .post(&url)
        .bearer_auth(&token)
        .json(&post(MAX_TAGS_SENT))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["data"]["tags"], serde_json::json!(["a", "a", "a"]));

    let resp = http()
        .post(&url)
        .bearer_auth(&token)
        .json(&post(MAX_TAGS_SENT + 1))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], codes::INVALID_POST);
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("`tags`"), "{message}");
    assert!(
        message.contains(&(MAX_TAGS_SENT + 1).to_string()),
        "{message}"
    );
    assert_eq!(emu.posts().len(), 1);
    emu.shutdown().await;
}

/// The API server's `host:port`, for raw connections.
fn api_addr(emu: &Emulator) -> String {
    emu.api_server()
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_owned()
}

/// A raw connection that sends an upload's headers and the start of its
/// body, then nothing, so the request stays open until its body deadline.
async fn stalled_upload(addr: &str, authorization: Option<&str>) -> tokio::net::TcpStream {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let auth = authorization
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "POST /v1/images HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 100000\r\n\r\n--b\r\n"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s
}

/// Waits until the emulator has counted `n` REST requests in all. Its
/// server runs on this test's runtime, so each counted request has been
/// through its handler up to the handler's first wait: holding a read
/// permit, queued for one, or reading its body without one.
async fn until_counted(emu: &Emulator, n: u64) {
    // Only turns a request the emulator never took into a failure.
    tokio::time::timeout(Duration::from_secs(30), async {
        while emu.api_requests() < n {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the stalled uploads reached the emulator");
}

async fn honest_upload(emu: &Emulator, token: &str) -> reqwest::Response {
    let body = b"--b0\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\nPNG\r\n--b0--\r\n".to_vec();
    http()
        .post(format!("{}/images", emu.api_server()))
        .bearer_auth(token)
        .header("content-type", "multipart/form-data; boundary=b0")
        .body(body)
        .send()
        .await
        .unwrap()
}

fn one_second_bodies() -> Config {
    Config {
        limits: Limits {
            body_read_timeout: Duration::from_secs(1),
            ..Limits::default()
        },
        ..auto_approving()
    }
}

/// The image route checks the token before it takes one of its few read
/// permits, so connections without a token that send headers and then
/// stall (twice as many as there are permits) hold none, and
/// an honest upload is served rather than told to retry.
#[tokio::test]
async fn slow_unauthenticated_uploads_do_not_starve_an_honest_one() {
    let emu = emulator(one_second_bodies()).await;
    let token = token(&emu, "uploadImage").await;
    let addr = api_addr(&emu);

    let before = emu.api_requests();
    let mut slow = Vec::new();
    for auth in [None, Some("Bearer not-a-token"), None, None].repeat(2) {
        slow.push(stalled_upload(&addr, auth).await);
    }
    until_counted(&emu, before + 8).await;

    // Starved, it would wait out its own deadline for a permit and get a
    // 503; the status tells, with no clock in the assertion.
    let resp = honest_upload(&emu, &token).await;
    let status = resp.status();
    let text = resp.text().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "honest upload: {text}");
    drop(slow);
    emu.shutdown().await;
}

/// Authorised uploads that stall do hold the permits, each until its body
/// deadline. With a second wave queued behind the first, one more upload
/// waits its own deadline and is told so: a 503 saying there are too many
/// uploads (not that memory is full), with a Retry-After of the deadline.
#[tokio::test]
async fn stalled_authorised_uploads_answer_another_a_503_to_retry() {
    let emu = emulator(one_second_bodies()).await;
    let token = token(&emu, "uploadImage").await;
    let addr = api_addr(&emu);
    let bearer = format!("Bearer {token}");
    let mut slow = Vec::new();
    // The sleeps stay: permit waits and body deadlines run on the wall
    // clock, and a second wave that began waiting in the tick the first
    // took its permits could time out as they are released, handing them
    // to the honest upload.
    for wave in 0..2 {
        // IMAGE_READS_AT_ONCE, the emulator's own, in each wave.
        for _ in 0..4 {
            slow.push(stalled_upload(&addr, Some(&bearer)).await);
        }
        tokio::time::sleep(Duration::from_millis(if wave == 0 { 100 } else { 50 })).await;
    }

    let resp = honest_upload(&emu, &token).await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(resp.headers()["retry-after"], "1");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], codes::OVERLOADED);
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("Too many uploads"), "{message}");
    drop(slow);

    // Their connections closed, the permits are free again.
    let resp = honest_upload(&emu, &token).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    emu.shutdown().await;
}
