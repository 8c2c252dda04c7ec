//! The loopback listener the browser comes back to (RFC 8252): one path,
//! one callback that passes the state check, and nothing a stray or hostile
//! connection can hold up.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use medium_oauth::{Error, OAuthClient, PendingAuthorization, Token};
use tokio::net::TcpListener;
use tokio::sync::{Mutex, oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};

/// The path of the redirect URI on the loopback listener.
pub const CALLBACK_PATH: &str = "/callback";

/// How long a connection may take to send a request's headers. A browser
/// sends them at once; a connection opened and left half-sent must not hold
/// the listener (and so the login) open.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// How long the listener waits, once the login is over, for responses
/// still being written (the browser's "Logged in" page) before it drops
/// every connection.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Connections served at once: a browser opens a few; more is a flood, and
/// is turned away rather than given a task each.
const MAX_CONNECTIONS: usize = 32;

/// What a callback's handling shares.
struct Shared {
    client: OAuthClient,
    pending: PendingAuthorization,
    done: Mutex<Option<oneshot::Sender<Result<Token, Error>>>>,
    rejected: AtomicUsize,
}

/// A running listener.
pub struct Listener {
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    pub outcome: oneshot::Receiver<Result<Token, Error>>,
}

/// Binds the listener's port on loopback (0: any free port).
pub async fn bind(port: u16) -> Result<(TcpListener, SocketAddr), String> {
    let listener = TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| format!("cannot listen on 127.0.0.1:{port} for the callback: {e}"))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("cannot listen on 127.0.0.1:{port} for the callback: {e}"))?;
    Ok((listener, addr))
}

impl Listener {
    /// Serves callbacks for `pending` on `listener`; the first that passes
    /// the state check is exchanged through `client` and ends up in
    /// [`outcome`](Self::outcome).
    pub fn start(
        listener: TcpListener,
        client: OAuthClient,
        pending: PendingAuthorization,
    ) -> Self {
        let (done, outcome) = oneshot::channel();
        let shared = Arc::new(Shared {
            client,
            pending,
            done: Mutex::new(Some(done)),
            rejected: AtomicUsize::new(0),
        });
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(accept(listener, shared.clone(), stopped));
        Self {
            shared,
            stop,
            task,
            outcome,
        }
    }

    /// Callbacks refused for want of this login's state.
    pub fn rejected(&self) -> usize {
        self.shared.rejected.load(Ordering::SeqCst)
    }

    /// Stops accepting, lets responses in flight finish for at most
    /// [`SHUTDOWN_GRACE`], then drops every connection.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

async fn accept(listener: TcpListener, shared: Arc<Shared>, mut stopped: watch::Receiver<bool>) {
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let stream = tokio::select! {
            _ = stopped.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // Out of descriptors, or a connection reset before it was
                // accepted: the next one may do.
                Err(_) => continue,
            },
        };
        if connections.len() >= MAX_CONNECTIONS {
            continue;
        }
        let shared = shared.clone();
        let mut stopped = stopped.clone();
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let shared = shared.clone();
                async move { Ok::<_, Infallible>(handle(&shared, request).await) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .keep_alive(false)
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                _ = stopped.changed() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
    }
    drop(listener);
    let drained = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(SHUTDOWN_GRACE, drained).await.is_err() {
        connections.abort_all();
    }
}

async fn handle(shared: &Shared, request: Request<Incoming>) -> Response<Full<Bytes>> {
    if request.method() != Method::GET || request.uri().path() != CALLBACK_PATH {
        return page(
            StatusCode::NOT_FOUND,
            "Not found",
            "medium-oauth listens here for the login's callback only.",
        );
    }
    let query = request.uri().query().unwrap_or_default();
    let verified = match shared.pending.verify(query) {
        Ok(verified) => verified,
        Err(Error::CsrfMismatch | Error::InvalidCallback(_)) => {
            // Not this login's callback (a forgery, a stale tab, a port
            // scan): whatever it says, refuse it and keep waiting for the
            // real one.
            let n = shared.rejected.fetch_add(1, Ordering::SeqCst) + 1;
            if worth_a_line(n) {
                eprintln!(
                    "\nrejected a callback with a wrong or missing state (possible CSRF; {n} so \
                     far); still waiting"
                );
            }
            return page(
                StatusCode::BAD_REQUEST,
                "Not this login",
                "This response does not belong to the login in progress, which is still \
                 waiting. If you refused access, press Ctrl-C in the terminal to stop it.",
            );
        }
        Err(Error::AlreadyCompleted) => {
            return page(
                StatusCode::BAD_REQUEST,
                "Already logged in",
                "You can close this tab.",
            );
        }
        Err(e) => {
            let shown = page(StatusCode::BAD_REQUEST, "Login failed", &e.to_string());
            finish(shared, Err(e)).await;
            return shown;
        }
    };
    let result = shared.client.exchange_code(verified).await;
    let shown = match &result {
        Ok(_) => page(
            StatusCode::OK,
            "Logged in",
            "medium-oauth has your token. You can close this tab.",
        ),
        Err(e) => page(StatusCode::BAD_GATEWAY, "Login failed", &e.to_string()),
    };
    finish(shared, result).await;
    shown
}

/// Whether the `n`th rejected callback gets a line on the terminal: the
/// first few, then each power of ten. A flood of forged callbacks must not
/// scroll the authorize URL (which a user without a browser copies) away.
fn worth_a_line(n: usize) -> bool {
    const FIRST_SHOWN: usize = 3;
    if n <= FIRST_SHOWN {
        return true;
    }
    let mut power: usize = 10;
    while power < n {
        match power.checked_mul(10) {
            Some(next) => power = next,
            None => return false,
        }
    }
    power == n
}

async fn finish(shared: &Shared, result: Result<Token, Error>) {
    if let Some(done) = shared.done.lock().await.take() {
        let _ = done.send(result);
    }
}

/// A page for the browser. Every text is HTML-escaped: it can quote the
/// server or the callback.
pub fn page(status: StatusCode, title: &str, text: &str) -> Response<Full<Bytes>> {
    let title = html_escape::encode_text(title);
    let text = html_escape::encode_text(text);
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title></head>\
         <body><h1 id=\"title\">{title}</h1><p id=\"text\">{text}</p></body></html>"
    );
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    #[test]
    fn rejections_get_a_line_for_the_first_few_then_each_power_of_ten() {
        let shown: Vec<usize> = (1..=20_000).filter(|&n| worth_a_line(n)).collect();
        assert_eq!(shown, [1, 2, 3, 10, 100, 1000, 10_000]);
        assert!(!worth_a_line(usize::MAX));
    }

    /// Regression: `?error=<script>…` reached the page unescaped.
    #[tokio::test]
    async fn page_text_is_html_escaped() {
        let response = page(
            StatusCode::BAD_REQUEST,
            "<b>title</b>",
            "authorization was denied: <script>alert(1)</script> & \"more\"",
        );
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let body = String::from_utf8(body.to_vec()).unwrap();
        assert!(!body.contains("<script>"), "{body}");
        assert!(!body.contains("<b>"), "{body}");
        assert!(
            body.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp;"),
            "{body}"
        );
    }
}
