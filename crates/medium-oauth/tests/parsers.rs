//! Arbitrary callbacks and token bodies never panic the parsers.

mod common;

use medium_oauth::{ClientId, ClientSecret, OAuthClient, ScopeSet, Token, scopes};
use proptest::prelude::*;

// Building a client loads TLS roots; once is enough for every case.
static CLIENT: std::sync::LazyLock<OAuthClient> = std::sync::LazyLock::new(|| {
    OAuthClient::builder(
        ClientId::new("id"),
        ClientSecret::new("secret"),
        common::REDIRECT,
    )
    .build()
    .unwrap()
});

fn client() -> &'static OAuthClient {
    &CLIENT
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn callbacks(callback in ".{0,200}") {
        let (_, pending) = client().authorize_url(scopes![basicProfile]).unwrap();
        let _ = pending.verify(&callback);
    }

    #[test]
    fn callback_like_queries(
        keys in proptest::collection::vec("(code|state|error|error_description|[a-z]{1,5})", 0..6),
        values in proptest::collection::vec("[^&#]{0,40}", 0..6),
        prefix in "(|\\?|http://127.0.0.1:9/cb\\?|/cb\\?|https://x/\\?)",
    ) {
        let query: Vec<String> = keys.iter().zip(&values).map(|(k, v)| format!("{k}={v}")).collect();
        let (_, pending) = client().authorize_url(scopes![basicProfile]).unwrap();
        let _ = pending.verify(&format!("{prefix}{}", query.join("&")));
    }

    #[test]
    fn token_bodies(body in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = Token::from_response_body(&body);
    }

    #[test]
    fn json_token_bodies(
        access in proptest::option::of(".{0,20}"),
        scope in proptest::collection::vec(".{0,12}", 0..5),
        expires in proptest::option::of(any::<i64>()),
        kind in proptest::option::of("(Bearer|bearer|mac|.{0,5})"),
    ) {
        let body = serde_json::json!({
            "access_token": access, "scope": scope, "expires_at": expires, "token_type": kind,
        });
        let _ = Token::from_response_body(body.to_string().as_bytes());
    }

    #[test]
    fn scope_lists(text in ".{0,100}") {
        let _ = text.parse::<ScopeSet>();
    }
}
