//! Arbitrary bodies against the post and image calls, over loopback: the
//! emulator never answers 5xx, never panics (it would stop answering), and
//! always answers JSON.

use medium_oauth_emulator::{Config, Emulator, demo};
use medium_oauth_test_support::auto_approving;
use medium_oauth2_api::resource::operations as ops;
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestRunner};
use serde_json::Value;

/// Cases per property: each is one loopback request of a millisecond or
/// so, and the properties cover the parsers' branches well within this.
const CASES: u32 = 256;

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".{0,40}".prop_map(Value::from),
        prop_oneof![
            Just("html"),
            Just("markdown"),
            Just("draft"),
            Just("public"),
            Just("unlisted"),
            Just("cc-40-by"),
            Just("https://example.com/x"),
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..10)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
        ]
    })
}

/// The post's field names, often, so the field checks are reached.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "title",
            "contentFormat",
            "content",
            "tags",
            "canonicalUrl",
            "publishStatus",
            "license",
            "notifyFollowers",
        ])
        .prop_map(str::to_owned),
        1 => ".{0,12}",
    ]
}

/// A post body: mostly a valid post with one field replaced, else any JSON
/// or any bytes.
fn post_body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        (key(), json_value()).prop_map(|(k, v)| {
            let mut post = serde_json::json!({
                "title": "t", "contentFormat": "html", "content": "c"
            });
            post[k] = v;
            serde_json::to_vec(&post).unwrap()
        }),
        json_value().prop_map(|v| serde_json::to_vec(&v).unwrap()),
        prop::collection::vec(any::<u8>(), 0..512),
    ]
}

/// Pieces of a multipart body, shuffled into arbitrary orders.
fn multipart_body() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"--b0undary".to_vec()),
        Just(b"--b0undary--".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\r\n\r\n".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"Content-Disposition: form-data; name=\"image\"; filename=\"a.png\"".to_vec()),
        Just(b"Content-Disposition: form-data; name=\"image".to_vec()),
        Just(b"Content-Type: image/png".to_vec()),
        Just(b"Content-Type:".to_vec()),
        Just(b" folded".to_vec()),
        prop::collection::vec(any::<u8>(), 0..64),
    ];
    prop_oneof![
        prop::collection::vec(piece, 0..24).prop_map(|p| p.concat()),
        prop::collection::vec(any::<u8>(), 0..512),
    ]
}

fn multipart_content_type() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => Just("multipart/form-data; boundary=b0undary".to_owned()),
        1 => Just("multipart/form-data; boundary=\"b0undary\"".to_owned()),
        1 => Just("multipart/form-data".to_owned()),
        1 => ".{0,60}",
    ]
}

struct Harness {
    rt: tokio::runtime::Runtime,
    emu: Emulator,
    http: reqwest::Client,
    token: String,
}

impl Harness {
    fn new(config: Config) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let http = medium_oauth2_api::tls::client_builder()
            .unwrap()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let (emu, token) = rt.block_on(async {
            let emu = medium_oauth_test_support::emulator(config).await;
            let token =
                medium_oauth_test_support::raw_access_token(&emu, "publishPost,uploadImage").await;
            (emu, token)
        });
        Self {
            rt,
            emu,
            http,
            token,
        }
    }

    /// Sends the body and checks the answer is not 5xx and is JSON.
    fn check(&self, path: &str, content_type: &str, body: Vec<u8>) -> Result<(), TestCaseError> {
        self.rt.block_on(async {
            let mut req = self
                .http
                .post(format!("{}{path}", self.emu.api_server()))
                .bearer_auth(&self.token)
                .body(body);
            if let Ok(value) = reqwest::header::HeaderValue::from_str(content_type) {
                req = req.header("content-type", value);
            }
            let resp = req
                .send()
                .await
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            let status = resp.status();
            prop_assert!(!status.is_server_error(), "{status}");
            prop_assert_eq!(&resp.headers()["content-type"], "application/json");
            let body: Value = resp
                .json()
                .await
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert!(body.get("data").is_some() || body.get("errors").is_some());
            Ok(())
        })
    }
}

#[test]
fn arbitrary_post_bodies_never_get_a_5xx_and_always_json() {
    let h = Harness::new(auto_approving());
    let paths = [
        ops::create_user_post::path(demo::USER_ID).unwrap(),
        ops::create_publication_post::path(demo::EDITOR_PUBLICATION_ID).unwrap(),
        ops::create_publication_post::path(demo::WRITER_PUBLICATION_ID).unwrap(),
    ];
    let content_type = prop_oneof![
        4 => Just("application/json".to_owned()),
        1 => Just("application/json; charset=utf-8".to_owned()),
        1 => ".{0,40}",
    ];
    let mut runner = TestRunner::new(ProptestConfig::with_cases(CASES));
    runner
        .run(
            &(0..paths.len(), content_type, post_body()),
            |(i, content_type, body)| h.check(&paths[i], &content_type, body),
        )
        .unwrap();
    assert_eq!(h.emu.api_requests(), u64::from(CASES));
    // Valid posts with one field changed are common enough that some pass:
    // the success path is under fire too.
    assert!(!h.emu.posts().is_empty());
}

#[test]
fn arbitrary_upload_bodies_never_get_a_5xx_and_always_json() {
    let h = Harness::new(auto_approving());
    let mut runner = TestRunner::new(ProptestConfig::with_cases(CASES));
    runner
        .run(
            &(multipart_content_type(), multipart_body()),
            |(content_type, body)| h.check(ops::upload_image::PATH, &content_type, body),
        )
        .unwrap();
}
