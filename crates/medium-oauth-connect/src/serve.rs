//! The accept loop. `axum::serve` sets no timer, so a connection that
//! never finishes its request would be held forever: each connection here
//! has a deadline for its request head and one for its whole life, and
//! only so many are served at once.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// A browser sends its request head at once; one left half-sent is a
/// slow-loris, not a user.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest a connection lives: past the slowest page, the callback's
/// two calls to Medium (the code exchange and who logged in) and four
/// database calls, each at its own deadline, and 10 s to spare, so a
/// slow Medium never cuts a login off between the exchange and the row
/// that keeps its grant.
const CONNECTION_DEADLINE: Duration = Duration::from_secs(
    2 * medium_oauth::DEFAULT_REQUEST_TIMEOUT.as_secs()
        + 4 * medium_oauth_store::DEFAULT_QUERY_DEADLINE.as_secs()
        + 10,
);

/// Connections served at once; past it new ones wait in the kernel's
/// backlog rather than each taking a task.
const MAX_CONNECTIONS: usize = 256;

/// Pause after an accept error (out of descriptors, say), so the loop
/// retries instead of spinning.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

pub(crate) async fn serve(listener: TcpListener, router: Router) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        // The semaphore is never closed.
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(_) => {
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                continue;
            }
        };
        let service = TowerToHyperService::new(router.clone());
        tokio::spawn(async move {
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(CONNECTION_DEADLINE, connection).await;
            drop(permit);
        });
    }
}
