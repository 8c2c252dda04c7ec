//! Shared set-up: an emulator on loopback and a client pointed at it.

#![allow(dead_code)]

use medium_oauth::{ClientId, ClientSecret, OAuthClient, OAuthClientBuilder, ScopeSet, Token};
use medium_oauth_emulator::{Config, Emulator};

pub const REDIRECT: &str = "http://127.0.0.1:9/callback";
pub const SECRET: &str = "demo-secret";

pub async fn emulator(config: Config) -> Emulator {
    Emulator::start(config, "127.0.0.1:0").await.unwrap()
}

pub fn auto() -> Config {
    Config {
        auto_approve: true,
        ..Config::default()
    }
}

pub fn builder(emu: &Emulator) -> OAuthClientBuilder {
    OAuthClient::builder(
        ClientId::new("demo-client"),
        ClientSecret::new(SECRET),
        REDIRECT,
    )
    .authorization_server(emu.authorization_server())
    .api_server(emu.api_server())
}

pub fn client(emu: &Emulator) -> OAuthClient {
    builder(emu).build().unwrap()
}

/// Plays the browser: follows the authorize URL (the emulator auto-approves)
/// and returns the callback URL it is sent to.
pub async fn browse(url: &url::Url) -> String {
    let browser = medium_oauth::tls::client_builder()
        .unwrap()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = browser.get(url.as_str()).send().await.unwrap();
    assert_eq!(
        resp.status(),
        302,
        "{}",
        resp.text().await.unwrap_or_default()
    );
    resp.headers()["location"].to_str().unwrap().to_owned()
}

/// The whole flow: authorize, callback, exchange.
pub async fn login(client: &OAuthClient, scopes: ScopeSet) -> Token {
    let (url, pending) = client.authorize_url(scopes).unwrap();
    let callback = browse(&url).await;
    client.complete(&pending, &callback).await.unwrap()
}

/// Wall time for a token source under test. It starts at the emulator's
/// time and moves with tokio's clock, as the emulator's does, so a test on
/// paused tokio time moves both with `tokio::time::advance`; and it can jump
/// on its own, as a suspended laptop's or a reset clock does.
#[derive(Clone)]
pub struct TestClock(std::sync::Arc<ClockState>);

pub struct ClockState {
    start_ms: i64,
    origin: tokio::time::Instant,
    skew_ms: std::sync::atomic::AtomicI64,
}

impl TestClock {
    /// A clock that reads what `emu`'s clock reads now.
    pub fn matching(emu: &Emulator) -> Self {
        Self(std::sync::Arc::new(ClockState {
            start_ms: emu.now_ms(),
            origin: tokio::time::Instant::now(),
            skew_ms: std::sync::atomic::AtomicI64::new(0),
        }))
    }

    /// Moves this clock alone by `ms` (negative: back).
    pub fn jump_ms(&self, ms: i64) {
        self.0
            .skew_ms
            .fetch_add(ms, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn now_ms(&self) -> i64 {
        let elapsed = self.0.origin.elapsed().as_millis() as i64;
        self.0.start_ms + elapsed + self.0.skew_ms.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl medium_oauth::Clock for TestClock {
    fn now(&self) -> std::time::SystemTime {
        let ms = self.now_ms();
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64)
    }
}

/// Moves tokio's paused clock, and with it the emulator's and every
/// `TestClock`'s.
pub async fn advance(by: std::time::Duration) {
    tokio::time::advance(by).await;
}

/// A suspended machine: wall clocks (ours and the server's) move on,
/// tokio's monotonic clock does not.
pub fn suspend(emu: &Emulator, clock: &TestClock, by: std::time::Duration) {
    clock.jump_ms(by.as_millis() as i64);
    emu.advance_clock(by);
}

/// Every log line written while it is held, down to a level.
pub struct CapturedLogs {
    lines: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    _guard: tracing::subscriber::DefaultGuard,
}

impl CapturedLogs {
    /// Starts capturing on this thread (and so on a current-thread runtime).
    pub fn start(level: tracing::Level) -> Self {
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let writer = LogWriter(lines.clone());
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(level)
            .with_writer(move || writer.clone())
            .finish();
        let guard = tracing::subscriber::set_default(subscriber);
        Self {
            lines,
            _guard: guard,
        }
    }

    /// What was logged so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.lines.lock().unwrap()).into_owned()
    }
}

#[derive(Clone)]
struct LogWriter(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A current-thread runtime on paused time, for tests that build their own.
pub fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap()
}
