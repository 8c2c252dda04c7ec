//! TokenSource against the emulator, with short token lifetimes.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use medium_oauth::{
    BearerAuth, Error, FileTokenStore, MemoryTokenStore, RefreshingTokenSource, StaticTokenSource,
    Token, TokenSource, TokenStore, scopes,
};
use medium_oauth_emulator::{Config, Emulator, Endpoint, Fault, Grant};

fn short_lived(secs: u64) -> Config {
    Config {
        token_lifetime: Duration::from_secs(secs),
        rotate_refresh_tokens: true,
        ..auto()
    }
}

fn refresh_requests(emu: &Emulator) -> u64 {
    emu.token_requests(Endpoint::Tokens, Grant::RefreshToken)
        + emu.token_requests(Endpoint::TokensRefresh, Grant::RefreshToken)
}

async fn source_for(
    emu: &Emulator,
    margin: Duration,
) -> (RefreshingTokenSource, Arc<MemoryTokenStore>, Token) {
    let client = client(emu);
    let token = login(&client, scopes![basicProfile]).await;
    let store = Arc::new(MemoryTokenStore::with_token(token.clone()));
    let source = RefreshingTokenSource::builder(client, store.clone())
        .margin(margin)
        .jitter(Duration::ZERO)
        .backoff(Duration::from_millis(20), Duration::from_millis(100))
        .build()
        .await
        .unwrap();
    (source, store, token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_until_due_then_refreshed_ahead_of_expiry_and_persisted() {
    let emu = emulator(short_lived(4)).await;
    let client = client(&emu);
    let token = login(&client, scopes![basicProfile]).await;
    let store = Arc::new(MemoryTokenStore::with_token(token.clone()));
    let changes = Arc::new(AtomicUsize::new(0));
    let counted = changes.clone();
    let source = RefreshingTokenSource::builder(client, store.clone())
        .margin(Duration::from_secs(2))
        .jitter(Duration::ZERO)
        .on_change(move |_| {
            counted.fetch_add(1, Ordering::SeqCst);
        })
        .build()
        .await
        .unwrap();

    let first = source.token().await.unwrap();
    for _ in 0..100 {
        let again = source.token().await.unwrap();
        assert!(
            Arc::ptr_eq(&first, &again),
            "the hot path hands out the cached token"
        );
    }
    assert_eq!(refresh_requests(&emu), 0);

    // Inside the margin, still valid: refreshed proactively.
    tokio::time::sleep(Duration::from_millis(2300)).await;
    let refreshed = source.token().await.unwrap();
    assert_ne!(refreshed.access_token(), first.access_token());
    assert_eq!(emu.refreshes(), 1);
    assert_eq!(changes.load(Ordering::SeqCst), 1);
    let stored = store.load().await.unwrap().unwrap();
    assert_eq!(stored.access_token(), refreshed.access_token());
    assert_eq!(stored.refresh_token(), refreshed.refresh_token());
    assert_ne!(stored.refresh_token(), token.refresh_token(), "rotation");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_callers_at_expiry_cause_one_refresh() {
    let emu = emulator(short_lived(2)).await;
    let (source, _, token) = source_for(&emu, Duration::ZERO).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let source: Arc<dyn TokenSource> = Arc::new(source);
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let source = source.clone();
            tokio::spawn(async move { source.token().await })
        })
        .collect();
    let mut tokens = Vec::new();
    for task in tasks {
        tokens.push(task.await.unwrap().unwrap());
    }
    assert!(
        tokens
            .iter()
            .all(|t| t.access_token() == tokens[0].access_token())
    );
    assert_ne!(tokens[0].access_token(), token.access_token());
    assert_eq!(refresh_requests(&emu), 1);
    assert_eq!(emu.refreshes(), 1);
}

#[tokio::test]
async fn transient_failures_are_retried_with_backoff() {
    let emu = emulator(short_lived(1)).await;
    let (source, _, token) = source_for(&emu, Duration::ZERO).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    emu.inject_faults([
        Fault::Status(503),
        Fault::TooManyRequests {
            retry_after: Duration::from_secs(1),
        },
        Fault::DropConnection,
    ]);
    let started = std::time::Instant::now();
    let fresh = source.token().await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After was honoured"
    );
    assert_ne!(fresh.access_token(), token.access_token());
    assert_eq!(refresh_requests(&emu), 4);
    assert_eq!(emu.refreshes(), 1);
}

#[tokio::test]
async fn giving_up_after_max_attempts_does_not_break_the_source() {
    let emu = emulator(short_lived(1)).await;
    let (source, _, _) = source_for(&emu, Duration::ZERO).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    emu.inject_faults(std::iter::repeat_n(Fault::Status(503), 4));
    let err = source.token().await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert_eq!(refresh_requests(&emu), 4);
    // The next call tries again, and the service is back.
    source.token().await.unwrap();
    assert_eq!(emu.refreshes(), 1);
}

#[tokio::test]
async fn a_revoked_refresh_token_stops_after_one_request() {
    let emu = emulator(short_lived(1)).await;
    let (source, _, _) = source_for(&emu, Duration::ZERO).await;
    emu.revoke_all_tokens();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for _ in 0..5 {
        let err = source.token().await.unwrap_err();
        assert!(err.requires_reauthorization(), "{err}");
        assert!(matches!(err, Error::InvalidGrant { status: 401, .. }));
    }
    assert_eq!(refresh_requests(&emu), 1);
}

#[tokio::test]
async fn a_failed_proactive_refresh_keeps_serving_the_valid_token() {
    let emu = emulator(short_lived(6)).await;
    let (source, _, token) = source_for(&emu, Duration::from_secs(3)).await;
    tokio::time::sleep(Duration::from_millis(3200)).await;
    emu.inject_faults([Fault::Status(503)]);
    let served = source.token().await.unwrap();
    assert_eq!(
        served.access_token(),
        token.access_token(),
        "never a failure for a valid token"
    );
    assert_eq!(refresh_requests(&emu), 1);
    // Within the backoff no request is sent; after it, the retry succeeds.
    let served = source.token().await.unwrap();
    assert_eq!(served.access_token(), token.access_token());
    assert_eq!(refresh_requests(&emu), 1);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let fresh = source.token().await.unwrap();
    assert_ne!(fresh.access_token(), token.access_token());
    assert_eq!(emu.refreshes(), 1);
}

#[tokio::test]
async fn invalidate_forces_one_refresh_and_ignores_replaced_tokens() {
    let emu = emulator(short_lived(3600)).await;
    let (source, _, token) = source_for(&emu, Duration::from_secs(60)).await;
    source.invalidate(&medium_oauth::AccessToken::new("some other token"));
    assert_eq!(
        source.token().await.unwrap().access_token(),
        token.access_token()
    );
    source.invalidate(token.access_token());
    let fresh = source.token().await.unwrap();
    assert_ne!(fresh.access_token(), token.access_token());
    source.invalidate(token.access_token());
    assert_eq!(
        source.token().await.unwrap().access_token(),
        fresh.access_token()
    );
    assert_eq!(refresh_requests(&emu), 1);
    let forced = source.force_refresh().await.unwrap();
    assert_ne!(forced.access_token(), fresh.access_token());
    assert_eq!(refresh_requests(&emu), 2);
}

#[test]
fn threads_on_the_hot_path_see_refreshes_in_order_and_the_newest_at_once() {
    const READERS: usize = 4;
    const REFRESHES: usize = 5;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let emu = rt.block_on(emulator(short_lived(3600)));
    let (source, _, token) = rt.block_on(source_for(&emu, Duration::from_secs(60)));
    let source = Arc::new(source);
    let mut issued = vec![token.access_token().expose_secret().to_owned()];
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Readers on the runtime's worker threads record each change they see.
    let readers: Vec<_> = (0..READERS)
        .map(|_| {
            let (source, done) = (source.clone(), done.clone());
            rt.spawn(async move {
                let mut changes: Vec<String> = Vec::new();
                while !done.load(Ordering::Acquire) {
                    let token = source.token().await.unwrap();
                    let value = token.access_token().expose_secret();
                    if changes.last().is_none_or(|last| last != value) {
                        changes.push(value.to_owned());
                    }
                    tokio::task::yield_now().await;
                }
                changes
            })
        })
        .collect();
    for _ in 0..REFRESHES {
        std::thread::sleep(Duration::from_millis(20));
        let fresh = rt.block_on(source.force_refresh()).unwrap();
        let newest = fresh.access_token().expose_secret().to_owned();
        // Once force_refresh returns, every thread gets the new token: no
        // thread's memo may still serve its copy of the old one.
        let checks: Vec<_> = (0..2 * READERS)
            .map(|_| {
                let source = source.clone();
                rt.spawn(async move { source.token().await.unwrap() })
            })
            .collect();
        for check in checks {
            let token = rt.block_on(check).unwrap();
            assert_eq!(token.access_token().expose_secret(), newest);
        }
        issued.push(newest);
    }
    done.store(true, Ordering::Release);
    let seen: Vec<Vec<String>> = readers
        .into_iter()
        .map(|r| rt.block_on(r).unwrap())
        .collect();
    assert_eq!(refresh_requests(&emu), REFRESHES as u64);
    for changes in seen {
        // What a reader saw is a subsequence of what was issued, in order:
        // never an older token after a newer one, never one not issued.
        let mut next = 0;
        for value in &changes {
            let at = issued[next..]
                .iter()
                .position(|i| i == value)
                .expect("a token out of order, or never issued");
            next += at + 1;
        }
        assert_eq!(
            changes.last(),
            issued.last(),
            "a reader ended on an old token"
        );
    }
}

#[tokio::test]
async fn rotation_survives_a_restart_of_the_source() {
    let emu = emulator(short_lived(3600)).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("medium/credentials.json");
    let client = client(&emu);
    let token = login(&client, scopes![basicProfile]).await;
    let store = Arc::new(FileTokenStore::new(&path));
    store.save(&token).await.unwrap();

    let first = RefreshingTokenSource::builder(client.clone(), store.clone())
        .build()
        .await
        .unwrap();
    let rotated = first.force_refresh().await.unwrap();
    drop(first);
    assert_ne!(rotated.refresh_token(), token.refresh_token());

    let reopened = Arc::new(FileTokenStore::new(&path));
    let second = RefreshingTokenSource::builder(client, reopened)
        .build()
        .await
        .unwrap();
    assert_eq!(
        second.token().await.unwrap().access_token(),
        rotated.access_token()
    );
    second.force_refresh().await.unwrap();
    assert_eq!(
        emu.refreshes(),
        2,
        "the persisted rotated refresh token worked"
    );
}

#[tokio::test]
async fn an_empty_store_needs_a_login() {
    let emu = emulator(auto()).await;
    let err = RefreshingTokenSource::builder(client(&emu), Arc::new(MemoryTokenStore::new()))
        .build()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NoToken) && err.requires_reauthorization());
}

#[tokio::test]
async fn static_source_serves_its_token() {
    let source: Arc<dyn TokenSource> = Arc::new(StaticTokenSource::integration_token(
        medium_oauth::AccessToken::new("integration"),
    ));
    let token = source.token().await.unwrap();
    assert_eq!(token.access_token().expose_secret(), "integration");
    assert_eq!(token.expires_at(), None);
    assert!(!format!("{:?}", source.token().await.unwrap()).contains("integration"));
}

#[tokio::test]
async fn middleware_sets_the_bearer_and_retries_once_after_a_401() {
    let emu = emulator(short_lived(3600)).await;
    let (source, _, _) = source_for(&emu, Duration::from_secs(60)).await;
    let http = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(BearerAuth::new(source.clone()))
        .build();
    let me = format!("{}/me", emu.api_server());
    let ok = http.get(&me).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(refresh_requests(&emu), 0);

    // The server now considers the token expired; the client does not know.
    emu.advance_clock(Duration::from_secs(3601));
    let retried = http.get(&me).send().await.unwrap();
    assert_eq!(retried.status(), 200, "refreshed and retried");
    assert_eq!(emu.refreshes(), 1);
    let again = http.get(&me).send().await.unwrap();
    assert_eq!(again.status(), 200);
    assert_eq!(emu.refreshes(), 1);

    // A request whose body cannot be cloned is not retried.
    emu.advance_clock(Duration::from_secs(3601));
    let stream = futures_stream();
    let once = http
        .get(&me)
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(once.status(), 401);
    assert_eq!(emu.refreshes(), 1);
    assert_eq!(http.get(&me).send().await.unwrap().status(), 200);
    assert_eq!(
        emu.refreshes(),
        2,
        "invalidated, so the next request refreshed"
    );
}

fn futures_stream()
-> impl futures_core::Stream<Item = Result<Vec<u8>, std::io::Error>> + Send + 'static {
    struct Once(Option<Vec<u8>>);
    impl futures_core::Stream for Once {
        type Item = Result<Vec<u8>, std::io::Error>;
        fn poll_next(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Self::Item>> {
            std::task::Poll::Ready(self.0.take().map(Ok))
        }
    }
    Once(Some(b"x".to_vec()))
}
