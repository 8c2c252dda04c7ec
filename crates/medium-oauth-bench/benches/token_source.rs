//! The cost of "give me a token", beside its baselines in the same run.
//!
//! - `cached/*`: `token()` on a valid cached token, called directly and
//!   through `Arc<dyn TokenSource>`, beside the static source, a bare
//!   `ArcSwap::load_full` (the lock-free read the hot path is built on), a
//!   bare `Arc` clone (the reference-count bump any call returning an
//!   `Arc<Token>` pays), and yup-oauth2 12's cached path; on one thread and
//!   on two threads at once. Each is polled by a minimal inlined executor,
//!   and the sources and yup-oauth2 once more as an application calls them:
//!   `.await` in a loop inside a tokio task.
//!   Goal, on one thread and on two threads at once, direct and through
//!   `Arc<dyn TokenSource>`: at least 6x faster than yup-oauth2 12's cached
//!   path, and within 3x of a bare `ArcSwap::load_full`.
//! - `refresh/*`: 1,000 waiters receiving one refreshed token from the
//!   emulator, against a single refresh round trip.
//!
//! Run with `cargo bench -p medium-oauth-bench`.

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::{Arc, Barrier};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant, SystemTime};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use medium_oauth::{
    AccessToken, ClientId, ClientSecret, GrantedScopes, OAuthClient, RefreshToken,
    RefreshingTokenSource, StaticTokenSource, Token, TokenSource, scopes,
};
use medium_oauth_emulator::{Config, Emulator};

/// The thread counts the goal is set for: one caller alone, and two callers
/// at once sharing the token (this machine has two cores).
const THREAD_COUNTS: [usize; 2] = [1, 2];

/// Lifetime of the cached tokens: far past any bench run, so every measured
/// call takes the cached path and none refreshes.
const CACHED_TOKEN_LIFETIME: Duration = Duration::from_secs(60 * 24 * 3600);

/// The same access token for every contender, so none copies a longer one.
const ACCESS_TOKEN: &str = "0123456789abcdef0123456789abcdef";

/// Callers that ask at the same instant when the token has expired: the
/// burst the refresh must serve with one round trip.
const WAITERS: usize = 1000;

/// How long before the run the refresh rows' token expired: any time in the
/// past makes every waiter need the refresh.
const EXPIRED_AGO: Duration = Duration::from_secs(1);

/// Samples per refresh row: each makes real round trips to the emulator, so
/// fewer than Criterion's default 100 keep the run to minutes; 20 still
/// gives a stable median.
const REFRESH_SAMPLES: usize = 20;

/// Polls a future to completion on the calling thread, spinning if it is
/// pending: the same minimal executor for every contender, so only their own
/// work is measured. Inlined, as an `.await` in the caller's own future
/// would be: otherwise every contender pays for moving its future into this
/// function, a cost of the harness rather than of the source.
#[inline(always)]
fn run<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        std::hint::spin_loop();
    }
}

fn far_future_token() -> Token {
    Token::new(
        AccessToken::new(ACCESS_TOKEN),
        Some(RefreshToken::new("fedcba9876543210fedcba9876543210")),
        Some(SystemTime::now() + CACHED_TOKEN_LIFETIME),
        GrantedScopes::default(),
    )
}

/// Runs `body` on `threads` threads at once, each handed a barrier to wait
/// on once its set-up is done and before it starts its clock; the slowest
/// thread's time.
fn on_threads(threads: usize, body: impl Fn(&Barrier) -> Duration + Sync) -> Duration {
    let start = Barrier::new(threads);
    let elapsed: Vec<Duration> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads).map(|_| s.spawn(|| body(&start))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    elapsed.into_iter().max().unwrap_or_default()
}

/// Runs `call` `iters` times on each of `threads` threads at once; the time
/// per call on one thread.
fn contended(threads: usize, iters: u64, call: impl Fn() + Sync) -> Duration {
    on_threads(threads, |start| {
        start.wait();
        let t = Instant::now();
        for _ in 0..iters {
            call();
        }
        t.elapsed()
    })
}

/// Awaits `call()` `iters` times in a loop inside one async block, on a
/// current-thread tokio runtime per thread, on `threads` threads at once; the
/// time per call on one thread.
fn awaited<T, E: std::fmt::Debug, F: Future<Output = Result<T, E>>>(
    threads: usize,
    iters: u64,
    call: impl Fn() -> F + Sync,
) -> Duration {
    on_threads(threads, |start| {
        let local = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        start.wait();
        local.block_on(async {
            let t = Instant::now();
            for _ in 0..iters {
                black_box(call().await.unwrap());
            }
            t.elapsed()
        })
    })
}

fn cached(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = OAuthClient::builder(
        ClientId::new("bench"),
        ClientSecret::new("bench"),
        "http://127.0.0.1:9/cb",
    )
    .build()
    .unwrap();
    // The concrete type, so the direct rows can inline `token()`.
    let source: RefreshingTokenSource = client.token_source(far_future_token());
    // As the middleware holds it: the call cannot be inlined.
    let shared: Arc<dyn TokenSource> = Arc::new(source.clone());
    let fixed = StaticTokenSource::new(far_future_token());
    let plain = Arc::new(far_future_token());
    let swap = arc_swap::ArcSwap::from_pointee(far_future_token());
    let yup = rt
        .block_on(yup_oauth2::AccessTokenAuthenticator::builder(ACCESS_TOKEN.to_owned()).build())
        .unwrap();
    let yup_scopes = ["basicProfile"];
    // The first call stores the token in yup-oauth2's cache; every measured
    // call then finds it there.
    rt.block_on(yup.token(&yup_scopes)).unwrap();

    let mut group = c.benchmark_group("cached");
    for threads in THREAD_COUNTS {
        group.bench_function(BenchmarkId::new("medium-oauth token()", threads), |b| {
            b.iter_custom(|iters| {
                contended(threads, iters, || {
                    black_box(run(source.token()).unwrap());
                })
            })
        });
        group.bench_function(
            BenchmarkId::new("medium-oauth token() via Arc<dyn TokenSource>", threads),
            |b| {
                b.iter_custom(|iters| {
                    contended(threads, iters, || {
                        black_box(run(shared.token()).unwrap());
                    })
                })
            },
        );
        group.bench_function(
            BenchmarkId::new("StaticTokenSource token()", threads),
            |b| {
                b.iter_custom(|iters| {
                    contended(threads, iters, || {
                        black_box(run(fixed.token()).unwrap());
                    })
                })
            },
        );
        group.bench_function(BenchmarkId::new("Arc clone", threads), |b| {
            b.iter_custom(|iters| {
                contended(threads, iters, || {
                    black_box(plain.clone());
                })
            })
        });
        group.bench_function(BenchmarkId::new("ArcSwap load_full", threads), |b| {
            b.iter_custom(|iters| {
                contended(threads, iters, || {
                    black_box(swap.load_full());
                })
            })
        });
        group.bench_function(BenchmarkId::new("yup-oauth2 12 token()", threads), |b| {
            b.iter_custom(|iters| {
                contended(threads, iters, || {
                    black_box(run(yup.token(&yup_scopes)).unwrap());
                })
            })
        });
    }
    // The way an application calls it: `.await` in an async fn on a tokio
    // runtime, with no harness between the caller and the future.
    for threads in THREAD_COUNTS {
        group.bench_function(
            BenchmarkId::new("medium-oauth token().await in a tokio task", threads),
            |b| b.iter_custom(|iters| awaited(threads, iters, || source.token())),
        );
        group.bench_function(
            BenchmarkId::new(
                "medium-oauth token().await via Arc<dyn TokenSource> in a tokio task",
                threads,
            ),
            |b| b.iter_custom(|iters| awaited(threads, iters, || shared.token())),
        );
        group.bench_function(
            BenchmarkId::new("yup-oauth2 12 token().await in a tokio task", threads),
            |b| b.iter_custom(|iters| awaited(threads, iters, || yup.token(&yup_scopes))),
        );
    }
    group.finish();
}

/// [`WAITERS`] tasks ask at expiry; how long until all have the new token,
/// beside one refresh's round trip to the same emulator: the closer, the
/// better the waiters share the one refresh.
fn refresh(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let emu = rt
        .block_on(Emulator::start(
            Config {
                auto_approve: true,
                ..Config::default()
            },
            "127.0.0.1:0",
        ))
        .unwrap();
    let client = OAuthClient::builder(
        ClientId::new("demo-client"),
        ClientSecret::new("demo-secret"),
        "http://127.0.0.1:9/callback",
    )
    .authorization_server(emu.authorization_server())
    .api_server(emu.api_server())
    .build()
    .unwrap();
    let token = rt.block_on(async {
        let (url, pending) = client.authorize_url(scopes![basicProfile]).unwrap();
        let browser = medium_oauth::tls::client_builder()
            .unwrap()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let answer = browser.get(url.as_str()).send().await.unwrap();
        let callback = answer.headers()["location"].to_str().unwrap().to_owned();
        client.complete(&pending, &callback).await.unwrap()
    });
    let refresh_token = token.refresh_token().unwrap().clone();

    let mut group = c.benchmark_group("refresh");
    group.sample_size(REFRESH_SAMPLES);
    group.bench_function("one refresh round trip", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(client.refresh(&refresh_token).await.unwrap()) })
    });
    group.bench_function(format!("{WAITERS} waiters get the refreshed token"), |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let client = client.clone();
            let token = token.clone();
            async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let expired = Token::new(
                        token.access_token().clone(),
                        token.refresh_token().cloned(),
                        Some(SystemTime::now() - EXPIRED_AGO),
                        GrantedScopes::default(),
                    );
                    let source: Arc<dyn TokenSource> = Arc::new(client.token_source(expired));
                    let start = Instant::now();
                    let waiters: Vec<_> = (0..WAITERS)
                        .map(|_| {
                            let source = source.clone();
                            tokio::spawn(async move { source.token().await.unwrap() })
                        })
                        .collect();
                    for waiter in waiters {
                        black_box(waiter.await.unwrap());
                    }
                    total += start.elapsed();
                }
                total
            }
        })
    });
    group.finish();
}

criterion_group!(benches, cached, refresh);
criterion_main!(benches);
