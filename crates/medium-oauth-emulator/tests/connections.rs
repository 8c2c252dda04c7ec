//! Connections are not held forever: raw loopback TCP against the emulator.
//!
//! The connection deadlines run on the wall clock, not tokio's (paused time
//! must not close a test's connections under it; see
//! `connections_outlive_jumps_of_paused_time`), so these tests set them to a
//! fraction of a second and wait for the server to act. Nothing sleeps: each
//! test awaits the server's move, and [`NEVER`] only turns a server that
//! holds on into a failure instead of a hang.

use std::future::Future;
use std::time::Duration;

use medium_oauth_emulator::{Config, Emulator, Fault, Limits};
use medium_oauth_test_support::emulator;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Most bytes a test reads from one connection: every answer here is small.
const READ_CAP_BYTES: usize = 64 * 1024;

/// A deadline short enough to wait for in a test, long enough that loopback
/// requests beat it on a loaded machine.
const SHORT: Duration = Duration::from_millis(300);

/// Far past every deadline under test: reaching it means the server held on.
const NEVER: Duration = Duration::from_secs(30);

const FULL_REQUEST: &[u8] = b"GET /v1/me HTTP/1.1\r\nHost: emulator\r\n\r\n";
const HALF_REQUEST: &[u8] = b"GET /v1/me HTTP/1.1\r\nHost: emulator\r\n";

async fn start(limits: Limits) -> Emulator {
    let config = Config {
        limits,
        ..Config::default()
    };
    emulator(config).await
}

fn short_header_timeout() -> Limits {
    Limits {
        header_read_timeout: SHORT,
        ..Limits::default()
    }
}

async fn connect(emu: &Emulator) -> TcpStream {
    TcpStream::connect(emu.local_addr()).await.unwrap()
}

/// `future`'s output, failing the test with `what` if it takes [`NEVER`].
async fn within<F: Future>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(NEVER, future)
        .await
        .unwrap_or_else(|_| panic!("{what}"))
}

/// Reads until the server closes the connection; returns what it sent.
async fn read_until_closed(conn: &mut TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match conn.read(&mut chunk).await {
            Ok(0) => return received,
            Ok(n) => received.extend_from_slice(&chunk[..n]),
            // A reset closes it too.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return received,
            Err(e) => panic!("reading: {e}"),
        }
        assert!(received.len() <= READ_CAP_BYTES);
    }
}

/// Reads one response with a `Content-Length` body, leaving the connection
/// open; returns its head.
async fn read_response(conn: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = conn.read(&mut chunk).await.unwrap();
        assert!(n > 0, "closed before a full response: {buf:?}");
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let head = &text[..end];
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().unwrap())
                })
                .expect("a content-length");
            if buf.len() >= end + 4 + length {
                return head.to_owned();
            }
        }
        assert!(buf.len() <= READ_CAP_BYTES);
    }
}

/// Waits until the emulator serves `n` connections: it has accepted them,
/// rather than left them in the listen backlog.
async fn until_open(emu: &Emulator, n: usize) {
    within("the connection was never accepted", async {
        while emu.open_connections() != n {
            tokio::task::yield_now().await;
        }
    })
    .await;
}

#[tokio::test]
async fn a_half_sent_request_is_closed_after_the_header_read_timeout() {
    let emu = start(short_header_timeout()).await;
    let started = Instant::now();
    let mut conn = connect(&emu).await;
    conn.write_all(HALF_REQUEST).await.unwrap();
    let answer = within(
        "the server held a half-sent request open",
        read_until_closed(&mut conn),
    )
    .await;
    let held = started.elapsed();
    assert!(held >= SHORT, "closed after {held:?}");
    assert!(answer.is_empty(), "{}", String::from_utf8_lossy(&answer));
    assert_eq!(emu.open_connections(), 0);
}

#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed() {
    let emu = start(short_header_timeout()).await;
    let started = Instant::now();
    let mut conn = connect(&emu).await;
    within(
        "the server held a silent connection open",
        read_until_closed(&mut conn),
    )
    .await;
    assert!(started.elapsed() >= SHORT);
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let emu = start(short_header_timeout()).await;
    let mut conn = connect(&emu).await;
    conn.write_all(FULL_REQUEST).await.unwrap();
    let head = within("no response", read_response(&mut conn)).await;
    assert!(head.starts_with("HTTP/1.1 401"), "{head}");
    // Kept alive: a second request on it is served.
    let before_last_request = Instant::now();
    conn.write_all(FULL_REQUEST).await.unwrap();
    let head = within("no response", read_response(&mut conn)).await;
    assert!(head.starts_with("HTTP/1.1 401"), "{head}");
    let rest = within(
        "the server held an idle keep-alive connection open",
        read_until_closed(&mut conn),
    )
    .await;
    assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
    let idle = before_last_request.elapsed();
    assert!(idle >= SHORT, "closed after {idle:?}");
}

/// A test on paused tokio time that jumps an hour ahead keeps its pooled
/// connections: were the deadlines on tokio's clock, the server would close
/// them at the jump, under the test's next request.
#[tokio::test(start_paused = true)]
async fn connections_outlive_jumps_of_paused_time() {
    let emu = start(Limits::default()).await;
    let mut conn = connect(&emu).await;
    conn.write_all(FULL_REQUEST).await.unwrap();
    assert!(read_response(&mut conn).await.starts_with("HTTP/1.1 401"));
    tokio::time::advance(Duration::from_secs(3600)).await;
    conn.write_all(FULL_REQUEST).await.unwrap();
    assert!(read_response(&mut conn).await.starts_with("HTTP/1.1 401"));
}

#[tokio::test]
async fn shutdown_finishes_with_a_half_open_connection() {
    let grace = SHORT;
    let emu = start(Limits {
        shutdown_grace: grace,
        ..Limits::default()
    })
    .await;
    assert!(grace < Limits::default().header_read_timeout);
    let mut conn = connect(&emu).await;
    // A fresh connection with part of a request: hyper's graceful shutdown
    // waits for that request to finish.
    conn.write_all(HALF_REQUEST).await.unwrap();
    until_open(&emu, 1).await;
    // Let the server read what was sent: each yield lets the runtime poll
    // for I/O. (Had it read nothing, hyper would close the connection at
    // once, and the test would pass without exercising the grace.)
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    let started = Instant::now();
    within("shutdown waited for the half-sent request", emu.shutdown()).await;
    within(
        "the half-open connection outlived the shutdown",
        read_until_closed(&mut conn),
    )
    .await;
    // Closed by the shutdown, well before its header-read timeout.
    assert!(started.elapsed() < Limits::default().header_read_timeout);
}

#[tokio::test]
async fn shutdown_lets_a_request_in_flight_finish() {
    let emu = start(Limits::default()).await;
    let delay = Duration::from_millis(100);
    assert!(delay < Limits::default().shutdown_grace);
    emu.inject_faults([Fault::Delay(delay)]);
    let mut conn = connect(&emu).await;
    let body = "grant_type=refresh_token";
    let request = format!(
        "POST /v1/tokens HTTP/1.1\r\nHost: emulator\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let started = Instant::now();
    conn.write_all(request.as_bytes()).await.unwrap();
    within("the request never took its fault", async {
        while emu.queued_faults() != 0 {
            tokio::task::yield_now().await;
        }
    })
    .await;
    let client = tokio::spawn(async move { read_response(&mut conn).await });
    within("shutdown hung", emu.shutdown()).await;
    assert!(started.elapsed() >= delay, "shutdown did not wait");
    let head = within("no response", client).await.unwrap();
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
}

#[tokio::test]
async fn deadlines_set_in_code_may_be_huge() {
    let emu = start(Limits {
        header_read_timeout: Duration::MAX,
        body_read_timeout: Duration::MAX,
        write_timeout: Duration::MAX,
        shutdown_grace: Duration::MAX,
        connections: usize::MAX,
        ..Limits::default()
    })
    .await;
    let mut conn = connect(&emu).await;
    conn.write_all(FULL_REQUEST).await.unwrap();
    let head = within("no response", read_response(&mut conn)).await;
    assert!(head.starts_with("HTTP/1.1 401"), "{head}");
    let body = "grant_type=refresh_token";
    let request = format!(
        "POST /v1/tokens HTTP/1.1\r\nHost: emulator\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    conn.write_all(request.as_bytes()).await.unwrap();
    let head = within("no response", read_response(&mut conn)).await;
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
    // Idle now, so the shutdown closes it at once.
    within("shutdown hung", emu.shutdown()).await;
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_for_one_to_close() {
    let emu = start(Limits {
        connections: 1,
        ..short_header_timeout()
    })
    .await;
    let started = Instant::now();
    let mut first = connect(&emu).await;
    first.write_all(FULL_REQUEST).await.unwrap();
    within("no response", read_response(&mut first)).await;
    let mut second = connect(&emu).await;
    second.write_all(FULL_REQUEST).await.unwrap();
    // The first connection, idle, holds the only place until its idle
    // timeout closes it; only then is the second one served.
    let head = within("the second connection was never served", async {
        read_response(&mut second).await
    })
    .await;
    assert!(head.starts_with("HTTP/1.1 401"), "{head}");
    let waited = started.elapsed();
    assert!(waited >= SHORT, "served after {waited:?}, past the cap");
    assert_eq!(emu.open_connections(), 1);
}

/// A request whose answer is a few kilobytes (an error page): pipelined many
/// times over, the answers outgrow every buffer between the server and a
/// client that reads none of them.
const SMALL_REQUEST_LARGE_ANSWER: &[u8] =
    b"GET /m/oauth/authorize HTTP/1.1\r\nHost: emulator\r\n\r\n";

/// Answers that fill the kernel's buffers on both sides many times over.
const PIPELINED: usize = 20_000;

/// Connects with a small receive buffer and, in the background, pipelines
/// requests whose answers it never reads. Returns the half it never reads
/// from (dropping it would close the connection) and the writer, which may
/// finish (the server buffers the requests) or block (it stopped reading).
async fn never_reading_client(
    emu: &Emulator,
) -> (
    tokio::net::tcp::OwnedReadHalf,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let conn = socket.connect(emu.local_addr()).await.unwrap();
    let (read, mut write) = conn.into_split();
    let writer = tokio::spawn(async move {
        // Blocks once the server stops reading, stuck itself on writing.
        write
            .write_all(&SMALL_REQUEST_LARGE_ANSWER.repeat(PIPELINED))
            .await
    });
    (read, writer)
}

#[tokio::test]
async fn a_client_that_never_reads_its_answers_does_not_hold_its_connection() {
    let emu = start(Limits {
        connections: 1,
        write_timeout: SHORT,
        ..short_header_timeout()
    })
    .await;
    let started = Instant::now();
    let (_unread, writer) = never_reading_client(&emu).await;
    until_open(&emu, 1).await;
    // The only place is taken by a connection whose answers pile up unread;
    // unless the server gives up on writing to it, nobody else is served.
    let mut other = connect(&emu).await;
    other.write_all(FULL_REQUEST).await.unwrap();
    let head = within(
        "a client that reads nothing held the only connection",
        read_response(&mut other),
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 401"), "{head}");
    let waited = started.elapsed();
    assert!(waited >= SHORT, "served after {waited:?}, past the cap");
    writer.abort();
}

#[tokio::test]
async fn shutdown_finishes_with_a_client_that_never_reads_and_no_room_left() {
    let grace = SHORT;
    let emu = start(Limits {
        connections: 1,
        shutdown_grace: grace,
        // Only the shutdown may end the stuck connection.
        write_timeout: Duration::MAX,
        ..Limits::default()
    })
    .await;
    let (mut unread, writer) = never_reading_client(&emu).await;
    until_open(&emu, 1).await;
    // A second client waits in the backlog for the place the first holds.
    let mut waiting = connect(&emu).await;
    waiting.write_all(FULL_REQUEST).await.unwrap();
    let started = Instant::now();
    within(
        "shutdown waited for a client that reads nothing",
        emu.shutdown(),
    )
    .await;
    assert!(started.elapsed() < Limits::default().write_timeout);
    writer.abort();
    // Both are closed: the stuck one by the shutdown, the waiting one unserved.
    within("the stuck connection outlived the shutdown", async {
        // What was sent before the close may still arrive; then the end.
        let mut chunk = [0u8; 64 * 1024];
        while let Ok(1..) = unread.read(&mut chunk).await {}
    })
    .await;
    let answer = within("the waiting connection outlived the shutdown", async {
        read_until_closed(&mut waiting).await
    })
    .await;
    assert!(answer.is_empty(), "{}", String::from_utf8_lossy(&answer));
}

#[tokio::test]
async fn shutdown_does_not_wait_out_a_delay_longer_than_its_grace() {
    let grace = SHORT;
    let emu = start(Limits {
        shutdown_grace: grace,
        ..Limits::default()
    })
    .await;
    // Far past the test's own deadline: only the grace can end it.
    emu.inject_faults([Fault::Delay(2 * NEVER)]);
    let mut conn = connect(&emu).await;
    let body = "grant_type=refresh_token";
    let request = format!(
        "POST /v1/tokens HTTP/1.1\r\nHost: emulator\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    conn.write_all(request.as_bytes()).await.unwrap();
    within("the request never took its fault", async {
        while emu.queued_faults() != 0 {
            tokio::task::yield_now().await;
        }
    })
    .await;
    let started = Instant::now();
    within("shutdown waited out the delay", emu.shutdown()).await;
    assert!(started.elapsed() >= grace, "the request had no grace");
    let answer = within("the delayed request outlived the shutdown", async {
        read_until_closed(&mut conn).await
    })
    .await;
    assert!(answer.is_empty(), "{}", String::from_utf8_lossy(&answer));
}
