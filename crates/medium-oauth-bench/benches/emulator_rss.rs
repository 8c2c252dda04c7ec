//! The emulator's memory under a long publishing run: 100,000 posts through
//! `MediumApi`, with the emulator in a process of its own so that its
//! resident set size (`VmRSS` in `/proc/PID/status`) is its own and not the
//! client's. The emulator keeps the newest posts up to its caps
//! (`Limits::posts`, `Limits::post_bytes`) and evicts the oldest, so its
//! memory should level off rather than grow with the run.
//!
//! Prints the RSS before and after, and the posts per second of the whole
//! run. Run with `cargo bench -p medium-oauth-bench --bench emulator_rss`
//! (`POSTS=N` to change the count). Linux only: it reads `/proc`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Instant;

use medium_oauth::api::NewPost;
use medium_oauth::{ClientId, ClientSecret, OAuthClient, ScopeSet};
use medium_oauth_emulator::{Config, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, Emulator};

/// Posts in the run unless `POSTS` says otherwise: the figure issue 13 asks
/// for.
const DEFAULT_POSTS: usize = 100_000;

/// Posts in flight at once: enough to keep both cores busy.
const IN_FLIGHT: usize = 32;

/// Set in the child: serve an emulator instead of running the load.
const SERVE_ENV: &str = "MEDIUM_OAUTH_BENCH_SERVE_EMULATOR";

fn main() {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    if std::env::var_os(SERVE_ENV).is_some() {
        runtime.block_on(serve());
    } else {
        runtime.block_on(load());
    }
}

/// The child: an auto-approving emulator, its base URL on stdout, until the
/// parent closes stdin.
async fn serve() {
    let config = Config {
        auto_approve: true,
        ..Config::default()
    };
    let emu = Emulator::start(config, "127.0.0.1:0")
        .await
        .expect("an emulator");
    println!("{}", emu.base_url());
    tokio::task::spawn_blocking(|| std::io::stdin().lines().count())
        .await
        .expect("stdin");
    emu.shutdown().await;
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

async fn load() {
    let posts: usize = std::env::var("POSTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(DEFAULT_POSTS);
    let mut child = Command::new(std::env::current_exe().expect("this program"))
        .env(SERVE_ENV, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the emulator process");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("the emulator's URL");
    let base = line.trim().to_owned();

    let client = OAuthClient::builder(
        ClientId::new(DEMO_CLIENT_ID),
        ClientSecret::new(DEMO_CLIENT_SECRET),
        "http://127.0.0.1:9/callback",
    )
    .authorization_server(format!("{base}/m/oauth"))
    .api_server(format!("{base}/v1"))
    .build()
    .expect("a client");
    let token = medium_oauth_test_support::login(&client, ScopeSet::all()).await;
    let api = client.api(client.token_source(token));
    api.user_id().await.expect("the user id");
    let before = rss_kib(child.id());

    let started = Instant::now();
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..IN_FLIGHT {
        let (api, next) = (api.clone(), next.clone());
        workers.spawn(async move {
            loop {
                let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if n >= posts {
                    return;
                }
                let post = NewPost::markdown(
                    format!("Post {n}"),
                    format!(
                        "# Post {n}\n\n{}",
                        "Some prose for the load run. ".repeat(60)
                    ),
                )
                .tags(["load", "bench"])
                .build()
                .expect("a valid post");
                api.create_post(&post).await.expect("created");
            }
        });
    }
    workers.join_all().await;
    let elapsed = started.elapsed();
    let after = rss_kib(child.id());
    drop(child.stdin.take());
    let _ = child.wait();
    println!(
        "emulator RSS: {:.1} MiB before, {:.1} MiB after {posts} posts of ~1.9 KB",
        before as f64 / 1024.0,
        after as f64 / 1024.0
    );
    println!(
        "throughput: {:.0} posts/s ({posts} posts in {:.1} s, {IN_FLIGHT} in flight)",
        posts as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64()
    );
}
