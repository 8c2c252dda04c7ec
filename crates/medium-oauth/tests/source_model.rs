//! A model-based property test of `RefreshingTokenSource`: random sequences
//! of clock moves, server faults, concurrent callers, invalidations and
//! changes to the store by others, run against the emulator on paused tokio
//! time, with the source's invariants checked after every step. A failing
//! sequence shrinks to a minimal one.
//!
//! `PROPTEST_CASES` overrides the number of cases (1,000 by default).

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use medium_oauth::{
    AccessToken, BoxFuture, ClientId, ClientSecret, DEFAULT_RETRY_BASE, DEFAULT_RETRY_CAP, Error,
    MemoryTokenStore, OAuthClient, REAUTHORIZATION_RECHECK, RETRY_AFTER_CAP, RefreshingTokenSource,
    StoreTransaction, Token, TokenSource, TokenStore, scopes,
};
use medium_oauth_emulator::{ClientApp, Config, Emulator, Fault, Grant, Outcome, RedirectRule};
use proptest::prelude::*;
use tokio::time::Instant;

/// Tokens live an hour in the model, so clock moves of minutes to hours
/// reach every standing: fresh, due, expired.
const LIFETIME: Duration = Duration::from_secs(3600);
const MARGIN: Duration = Duration::from_secs(600);
const CLIENT_SECRET: &str = "model-client-secret-4d1f";

#[derive(Debug, Clone)]
enum Op {
    /// Tokio's clock and both wall clocks move on together.
    Advance(Duration),
    /// The machine sleeps: both wall clocks move, tokio's does not.
    Suspend(Duration),
    /// Our wall clock is set back; the server's is not.
    SetBack(Duration),
    /// Our wall clock runs ahead of the server's.
    JumpAhead(Duration),
    /// The next token request meets this fault.
    Fault(FaultKind),
    /// The store refuses the next save.
    FailNextSave,
    /// This many concurrent `token()` calls.
    Calls(usize),
    InvalidateCurrent,
    InvalidateStale,
    ForceRefresh,
    /// Another process refreshes with the stored refresh token and saves.
    OtherProcessRefresh,
    /// The user logs in again; the new token is saved to the store.
    NewLogin,
}

#[derive(Debug, Clone)]
enum FaultKind {
    Unavailable,
    TooManyRequests(Duration),
    DropConnection,
    Unauthorized,
    ExpiredToken,
}

impl FaultKind {
    fn fault(&self) -> Fault {
        match self {
            FaultKind::Unavailable => Fault::Status(503),
            FaultKind::TooManyRequests(retry_after) => Fault::TooManyRequests {
                retry_after: *retry_after,
            },
            FaultKind::DropConnection => Fault::DropConnection,
            FaultKind::Unauthorized => Fault::Status(401),
            FaultKind::ExpiredToken => Fault::ExpiredToken,
        }
    }
}

fn duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        (0u64..2_000).prop_map(Duration::from_millis),
        (1u64..120).prop_map(Duration::from_secs),
        (300u64..7_200).prop_map(Duration::from_secs),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let fault = prop_oneof![
        Just(FaultKind::Unavailable),
        (0u64..200).prop_map(|s| FaultKind::TooManyRequests(Duration::from_secs(s))),
        Just(FaultKind::DropConnection),
        Just(FaultKind::Unauthorized),
        Just(FaultKind::ExpiredToken),
    ];
    prop_oneof![
        4 => duration().prop_map(Op::Advance),
        1 => duration().prop_map(Op::Suspend),
        1 => duration().prop_map(Op::SetBack),
        1 => duration().prop_map(Op::JumpAhead),
        3 => fault.prop_map(Op::Fault),
        1 => Just(Op::FailNextSave),
        5 => (1usize..8).prop_map(Op::Calls),
        1 => Just(Op::InvalidateCurrent),
        1 => Just(Op::InvalidateStale),
        1 => Just(Op::ForceRefresh),
        1 => Just(Op::OtherProcessRefresh),
        1 => Just(Op::NewLogin),
    ]
}

/// A memory store that remembers every token saved to it, and can be told
/// to refuse a save, as a full disk would.
#[derive(Default)]
struct Recording {
    inner: MemoryTokenStore,
    log: Arc<SaveLog>,
}

#[derive(Default)]
struct SaveLog {
    saved: Mutex<Vec<(String, Option<String>)>>,
    fail_next_save: AtomicBool,
}

fn entry(token: &Token) -> (String, Option<String>) {
    (
        token.access_token().expose_secret().to_owned(),
        token.refresh_token().map(|r| r.expose_secret().to_owned()),
    )
}

impl Recording {
    fn was_saved(&self, token: &Token) -> bool {
        self.log.saved.lock().unwrap().contains(&entry(token))
    }
}

impl TokenStore for Recording {
    fn load(&self) -> BoxFuture<'_, Result<Option<Token>, Error>> {
        self.inner.load()
    }

    fn begin(&self) -> BoxFuture<'_, Result<Box<dyn StoreTransaction>, Error>> {
        Box::pin(async move {
            let inner = self.inner.begin().await?;
            Ok(Box::new(RecordingTransaction {
                inner,
                log: self.log.clone(),
            }) as Box<dyn StoreTransaction>)
        })
    }
}

struct RecordingTransaction {
    inner: Box<dyn StoreTransaction>,
    log: Arc<SaveLog>,
}

impl StoreTransaction for RecordingTransaction {
    fn stored(&self) -> Option<&Token> {
        self.inner.stored()
    }

    fn commit<'a>(&'a mut self, token: &'a Token) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            if self.log.fail_next_save.swap(false, Ordering::SeqCst) {
                return Err(Error::Store {
                    path: "model".into(),
                    reason: "injected: no space left".into(),
                    source: None,
                });
            }
            self.inner.commit(token).await?;
            self.log.saved.lock().unwrap().push(entry(token));
            Ok(())
        })
    }
}

/// What the test knows, to judge the source by.
struct World {
    emu: Emulator,
    clock: TestClock,
    skew_ms: i64,
    client: OAuthClient,
    store: Arc<Recording>,
    source: RefreshingTokenSource,
    /// Indexes in the emulator's request log of the test's own requests.
    own_requests: Vec<usize>,
    /// The last `token()` call failed for want of re-authorization, so the
    /// current token is unusable and the source must look for a new login.
    dead: bool,
    /// A token saved to the store by a login or another process, and when.
    saved_by_others: Option<(Token, Instant)>,
    /// Everything shown: errors, `Debug` output.
    shown: Vec<String>,
    /// Every secret that must never be shown.
    secrets: Vec<String>,
}

impl World {
    async fn new() -> Self {
        let emu = emulator(Config {
            auto_approve: true,
            token_lifetime: LIFETIME,
            rotate_refresh_tokens: true,
            clients: vec![ClientApp {
                name: "Model".into(),
                id: "model".into(),
                secret: CLIENT_SECRET.into(),
                redirect: RedirectRule::AnyLoopback,
                extended_scope_approved: false,
            }],
            ..Config::default()
        })
        .await;
        let clock = TestClock::matching(&emu);
        let client = OAuthClient::builder(
            ClientId::new("model"),
            ClientSecret::new(CLIENT_SECRET),
            REDIRECT,
        )
        .authorization_server(emu.authorization_server())
        .api_server(emu.api_server())
        .build()
        .unwrap();
        let token = login(&client, scopes![basicProfile]).await;
        let store = Arc::new(Recording::default());
        let source = RefreshingTokenSource::builder(client.clone(), store.clone())
            .margin(MARGIN)
            .jitter(Duration::ZERO)
            .clock(clock.clone())
            .initial_token(token.clone())
            .build()
            .await
            .unwrap();
        let mut world = Self {
            emu,
            clock,
            skew_ms: 0,
            client,
            store,
            source,
            own_requests: Vec::new(),
            dead: false,
            saved_by_others: None,
            shown: Vec::new(),
            secrets: vec![CLIENT_SECRET.to_owned()],
        };
        world.learn(&token);
        world.own_requests = (0..world.emu.token_request_log().len()).collect();
        world
    }

    fn learn(&mut self, token: &Token) {
        self.secrets
            .push(token.access_token().expose_secret().to_owned());
        if let Some(refresh) = token.refresh_token() {
            self.secrets.push(refresh.expose_secret().to_owned());
        }
    }

    /// Runs a request of the test's own with no fault in its way, and
    /// remembers it is not the source's.
    async fn own<T>(&mut self, request: impl std::future::Future<Output = T>) -> T {
        let faults = self.emu.take_faults();
        let before = self.emu.token_request_log().len();
        let out = request.await;
        let after = self.emu.token_request_log().len();
        self.own_requests.extend(before..after);
        self.emu.inject_faults(faults);
        out
    }

    fn judge_token(&mut self, token: &Token) {
        let now = medium_oauth::Clock::now(&self.clock);
        assert!(
            token.expires_at().is_none_or(|at| at > now),
            "an expired token was returned"
        );
        assert!(
            self.store.was_saved(token),
            "a token was returned before it was saved"
        );
        self.learn(token);
    }

    fn judge_error(&mut self, e: &Error) {
        self.shown.push(format!("{e} / {e:?}"));
        let mut source = std::error::Error::source(e);
        while let Some(cause) = source {
            self.shown.push(cause.to_string());
            source = cause.source();
        }
    }

    async fn step(&mut self, op: &Op) {
        let requests_before = self.emu.token_request_log().len();
        self.apply(op).await;
        let sent = (requests_before..self.emu.token_request_log().len())
            .any(|i| !self.own_requests.contains(&i));
        if sent {
            // The source read the store before sending: what others saved
            // was seen, and the grant that failed may be theirs.
            self.saved_by_others = None;
        }
        self.check_schedule();
    }

    async fn apply(&mut self, op: &Op) {
        match op {
            Op::Advance(by) => advance(*by).await,
            Op::Suspend(by) => suspend(&self.emu, &self.clock, *by),
            Op::SetBack(by) => {
                // The old token may look valid again, and be handed out.
                self.dead = false;
                self.jump(-(by.as_millis() as i64));
            }
            Op::JumpAhead(by) => self.jump(by.as_millis() as i64),
            Op::Fault(kind) => self.emu.inject_faults([kind.fault()]),
            Op::FailNextSave => self.store.log.fail_next_save.store(true, Ordering::SeqCst),
            Op::Calls(n) => self.calls(*n).await,
            Op::InvalidateCurrent => {
                let current = self.store.inner.load().await.unwrap().unwrap();
                self.source.invalidate(current.access_token());
            }
            Op::InvalidateStale => self.source.invalidate(&AccessToken::new("stale-token")),
            Op::ForceRefresh => {
                // A refused force leaves a fresh token in use: no sign the
                // source must read the store on the next call.
                let dead = self.dead;
                let result = self.source.force_refresh().await;
                self.observe(result);
                self.dead &= dead;
            }
            Op::OtherProcessRefresh => {
                let Some(stored) = self.store.inner.load().await.unwrap() else {
                    return;
                };
                let client = self.client.clone();
                let refreshed = self
                    .own(async { client.refresh(stored.refresh_token().unwrap()).await })
                    .await;
                if let Ok(token) = refreshed {
                    self.store.inner.save(&token);
                    self.record_save(&token);
                }
            }
            Op::NewLogin => {
                let client = self.client.clone();
                let token = self
                    .own(async { login(&client, scopes![basicProfile]).await })
                    .await;
                self.store.inner.save(&token);
                self.record_save(&token);
            }
        }
    }

    fn jump(&mut self, ms: i64) {
        self.clock.jump_ms(ms);
        self.skew_ms += ms;
    }

    fn record_save(&mut self, token: &Token) {
        self.store.log.saved.lock().unwrap().push(entry(token));
        self.learn(token);
        self.saved_by_others = Some((token.clone(), Instant::now()));
    }

    async fn calls(&mut self, n: usize) {
        // A new login must be adopted by the first calls once the store may
        // be re-read, while its token is still valid.
        let now = medium_oauth::Clock::now(&self.clock);
        let must_adopt = match &self.saved_by_others {
            Some((token, saved))
                if self.dead
                    && saved.elapsed() >= REAUTHORIZATION_RECHECK
                    && token.expires_at().is_some_and(|at| at > now) =>
            {
                Some(token.clone())
            }
            _ => None,
        };
        let tasks: Vec<_> = (0..n)
            .map(|_| {
                let source = self.source.clone();
                tokio::spawn(async move { source.token().await })
            })
            .collect();
        for task in tasks {
            let result = task.await.unwrap();
            if let Some(expected) = &must_adopt {
                let got = result.as_ref().expect("a new login was not adopted");
                assert_eq!(got.access_token(), expected.access_token());
            }
            self.observe(result);
        }
    }

    fn observe(&mut self, result: Result<Arc<Token>, Error>) {
        match result {
            Ok(token) => {
                self.judge_token(&token);
                self.dead = false;
                // Whatever others saved has been seen (adopted, or replaced
                // by a newer token): it is no longer a new login.
                self.saved_by_others = None;
            }
            Err(e) => {
                self.dead = e.requires_reauthorization();
                self.judge_error(&e);
            }
        }
    }

    /// Consecutive transient failures of the source's refresh requests are
    /// spaced at least as the shared schedule says, whatever the callers.
    fn check_schedule(&self) {
        let log = self.emu.token_request_log();
        let mut streak = 0u32;
        let mut last: Option<Instant> = None;
        for (i, request) in log.iter().enumerate() {
            if self.own_requests.contains(&i) || request.grant != Grant::RefreshToken {
                continue;
            }
            if let Some(last) = last
                && streak > 0
            {
                let gap = request.at - last;
                let floor = DEFAULT_RETRY_BASE
                    .saturating_mul(1 << (streak - 1).min(20))
                    .min(DEFAULT_RETRY_CAP);
                assert!(
                    gap >= floor,
                    "request {i}: {gap:?} after failure {streak} of a streak; the schedule says {floor:?}"
                );
            }
            let transient = matches!(request.outcome, Outcome::Faulted(status) if status != 401);
            if transient {
                streak += 1;
                last = Some(request.at);
            } else {
                streak = 0;
                last = None;
            }
        }
    }

    /// Once the faults are gone and the schedule's longest wait has passed,
    /// a call succeeds; or, for a dead grant, succeeds after a new login.
    async fn recover(&mut self) {
        self.emu.take_faults();
        self.store.log.fail_next_save.store(false, Ordering::SeqCst);
        self.jump(-self.skew_ms);
        advance(RETRY_AFTER_CAP + DEFAULT_RETRY_CAP).await;
        match self.source.token().await {
            Ok(token) => self.judge_token(&token),
            Err(e) if e.requires_reauthorization() => {
                self.judge_error(&e);
                self.step(&Op::NewLogin).await;
                advance(REAUTHORIZATION_RECHECK).await;
                let token = self.source.token().await.expect("a new login is adopted");
                self.judge_token(&token);
            }
            Err(e) => panic!("the source did not recover after the schedule's wait: {e}"),
        }
        self.check_schedule();
    }

    fn check_secrets(&self, logs: &str) {
        let debug = format!("{:?}", self.source);
        for text in self
            .shown
            .iter()
            .map(String::as_str)
            .chain([logs, debug.as_str()])
        {
            for secret in &self.secrets {
                assert!(
                    !text.contains(secret.as_str()),
                    "a secret leaked into: {text}"
                );
            }
        }
    }
}

fn run_case(ops: &[Op]) {
    // DEBUG: every line the source writes; TRACE would add the HTTP stack's
    // and slow each case several times over.
    let logs = CapturedLogs::start(tracing::Level::DEBUG);
    paused_runtime().block_on(async {
        let mut world = World::new().await;
        for op in ops {
            world.step(op).await;
        }
        world.recover().await;
        world.check_secrets(&logs.text());
    });
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1000)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_source_keeps_its_invariants_under_any_sequence(ops in prop::collection::vec(op(), 1..30)) {
        run_case(&ops);
    }
}

#[test]
fn the_model_notices_an_expired_token() {
    // The model's own check: a token it judges after its expiry fails.
    paused_runtime().block_on(async {
        let mut world = World::new().await;
        let token = world.store.inner.load().await.unwrap().unwrap();
        world.jump((LIFETIME + Duration::from_secs(1)).as_millis() as i64);
        let judged = std::panic::AssertUnwindSafe(|| world.judge_token(&token));
        assert!(std::panic::catch_unwind(judged).is_err());
    });
}
