//! The accept loop. `axum::serve` sets no timer, so hyper's header-read
//! timeout never runs and a connection that never finishes its request, or
//! an idle keep-alive one, is held forever; and its graceful shutdown waits
//! for every such connection. This loop serves each connection with hyper's
//! HTTP/1 builder and a wall-clock timer (see [`crate::wall`]), puts a
//! deadline on its writes (see [`crate::stall`]), caps how many are served at
//! once, and bounds the shutdown.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};
use tokio::task::JoinSet;

use crate::config::Limits;
use crate::stall::WriteDeadline;
use crate::wall::{self, WallTimer};

/// The longest header-read timeout applied. hyper adds it to an `Instant`,
/// which overflows (and panics) for the largest `Duration`s a `Limits` built
/// in code may hold; a day is as good as none for the emulator.
const LONGEST_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);

/// Pause after an accept error that is not one connection's own (running out
/// of file descriptors, say), so the loop retries instead of spinning.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Whether an accept error concerns only the connection being accepted, so
/// the next accept may well succeed at once.
fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    )
}

/// The connections a server may hold at once, and those it holds now.
#[derive(Debug, Clone)]
pub(crate) struct Connections {
    permits: Arc<Semaphore>,
    open: Arc<AtomicUsize>,
}

impl Connections {
    pub(crate) fn new(limits: &Limits) -> Self {
        let permits = limits.connections.clamp(1, Semaphore::MAX_PERMITS);
        Self {
            permits: Arc::new(Semaphore::new(permits)),
            open: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Connections being served now.
    pub(crate) fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Waits for room for one more connection.
    async fn room(&self) -> Option<OwnedSemaphorePermit> {
        // The semaphore is never closed, so a permit always comes.
        self.permits.clone().acquire_owned().await.ok()
    }

    /// Counts an accepted connection as open while `permit` is held.
    fn hold(&self, permit: Option<OwnedSemaphorePermit>) -> Held {
        self.open.fetch_add(1, Ordering::Relaxed);
        Held {
            _permit: permit,
            open: self.open.clone(),
        }
    }
}

/// One connection's place, given back when dropped, also when a shutdown
/// aborts the connection.
struct Held {
    _permit: Option<OwnedSemaphorePermit>,
    open: Arc<AtomicUsize>,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Serves `app` on `listener`, one connection per permit, until `stop` fires
/// or its sender is dropped; then shuts down within the limits' grace.
pub(crate) async fn serve(
    listener: TcpListener,
    app: axum::Router,
    limits: Limits,
    connections: Connections,
    stop: oneshot::Receiver<()>,
) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(WallTimer)
        .header_read_timeout(limits.header_read_timeout.min(LONGEST_HEADER_READ_TIMEOUT));
    let graceful = GracefulShutdown::new();
    let mut tasks = JoinSet::new();
    tokio::pin!(stop);
    loop {
        // Finished connections' results are not needed; reaping them keeps
        // the set as small as the number of open connections.
        while tasks.try_join_next().is_some() {}
        let permit = tokio::select! {
            permit = connections.room() => permit,
            _ = &mut stop => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    tracing::warn!("emulator cannot accept connections: {e}");
                    wall::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            },
            _ = &mut stop => break,
        };
        let held = connections.hold(permit);
        let io = TokioIo::new(WriteDeadline::new(stream, limits.write_timeout));
        let conn = http.serve_connection(io, TowerToHyperService::new(app.clone()));
        let conn = graceful.watch(conn);
        tasks.spawn(async move {
            // A connection's errors (a client gone mid-request, a header-read
            // or write timeout) concern that client alone and leave nothing to act on;
            // hyper's messages for them carry no request data.
            if let Err(e) = conn.await {
                tracing::debug!("emulator connection ended: {e}");
            }
            drop(held);
        });
    }
    drop(listener);
    if wall::timeout(limits.shutdown_grace, graceful.shutdown())
        .await
        .is_none()
    {
        tracing::debug!("emulator shutdown grace ran out; closing the remaining connections");
    }
    tasks.shutdown().await;
}
