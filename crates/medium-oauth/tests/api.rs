//! `OAuthClient::me` against the emulator, and against hostile servers: a
//! raw TCP server that never answers, and one that sends an endless body.

mod common;

use std::time::Duration;

use common::*;
use medium_oauth::{AccessToken, DEFAULT_REQUEST_TIMEOUT, Error, TransportKind, scopes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn me_names_the_user_and_a_refused_token_is_a_401() {
    let emu = emulator(auto_approving()).await;
    let client = demo_client(&emu);
    let token = login(&client, scopes![basicProfile]).await;
    let user = client.me(token.access_token()).await.unwrap();
    assert_eq!(user.username, "demo");
    assert_eq!(user.name, "Demo User");
    assert!(user.image_url.starts_with("https://"), "{user:?}");

    let err = client
        .me(&AccessToken::new("not-a-token"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Api { status: 401, errors, .. } if errors[0].code == 6003),
        "{err:?}"
    );
    assert!(!err.to_string().contains("not-a-token"), "{err}");
}

/// A server on loopback that accepts connections, reads the request, and
/// then does what `answer` says with the socket.
async fn hostile<F, Fut>(answer: F) -> String
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut head = [0u8; 4096];
            let _ = socket.read(&mut head).await;
            tokio::spawn(answer(socket));
        }
    });
    format!("http://{addr}/v1")
}

/// Regression: the CLI's `/me` had no timeout and hung a login for good.
#[tokio::test(start_paused = true)]
async fn a_me_that_never_answers_times_out() {
    let api = hostile(|socket| async move {
        // Hold the connection open, silent, far past any timeout.
        tokio::time::sleep(Duration::from_secs(24 * 3600)).await;
        drop(socket);
    })
    .await;
    let client = builder_for(&api).build().unwrap();
    let started = tokio::time::Instant::now();
    let err = client.me(&AccessToken::new("t")).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Transport {
                kind: TransportKind::Timeout,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(started.elapsed() <= DEFAULT_REQUEST_TIMEOUT + Duration::from_secs(1));
}

/// Regression: an endless `/me` body grew the CLI's memory without bound.
#[tokio::test]
async fn an_endless_me_body_stops_at_the_cap() {
    let api = hostile(|mut socket| async move {
        let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                    Transfer-Encoding: chunked\r\n\r\n";
        if socket.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        let chunk = format!("{:x}\r\n{}\r\n", 64 * 1024, "a".repeat(64 * 1024));
        // Bounded: 64 MiB at most, far past the 1 MiB cap, then give up.
        for _ in 0..1024 {
            if socket.write_all(chunk.as_bytes()).await.is_err() {
                return;
            }
        }
    })
    .await;
    let client = builder_for(&api).build().unwrap();
    let err = client.me(&AccessToken::new("t")).await.unwrap_err();
    assert!(
        matches!(err, Error::ResponseTooLarge { limit } if limit == 1024 * 1024),
        "{err:?}"
    );
}
