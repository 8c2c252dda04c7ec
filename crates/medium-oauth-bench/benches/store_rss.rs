//! The shared store's memory: what one cached account costs, and the
//! resident set of a process with 100,000 accounts in the store and a
//! cache of 10,000, on a SQLite file and on PostgreSQL.
//!
//! Each engine runs in a process of its own (this program again), so that
//! each resident set (`VmRSS` in `/proc/self/status`) is its own. A
//! counting global allocator gives the live heap: the bytes per cached
//! account are the live heap after 10,000 accounts were read into the cache
//! (asked once each, every one a miss and a row read), less the live heap
//! before, divided by 10,000. Tokens are the size of Medium's (64-character
//! access and refresh tokens, two scopes).
//!
//! Run with `cargo bench -p medium-oauth-bench --bench store_rss`
//! (`ACCOUNTS=N`, `CACHE=N` to change the counts). PostgreSQL is
//! `DATABASE_URL`, or the cluster `.ci/postgres start` starts. Linux only:
//! it reads `/proc`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use medium_oauth::{AccessToken, GrantedScopes, RefreshToken, Token};
use medium_oauth_store::{AccountId, Accounts, EncryptionKey, Keyring, TokenDatabase};

mod common;
use common::client;

/// Live heap bytes: what was allocated and not yet freed.
static LIVE: AtomicIsize = AtomicIsize::new(0);

struct Counting;

// SAFETY: every call is passed to the system allocator unchanged; only the
// sizes are counted.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_add(
                new_size as isize - layout.size() as isize,
                Ordering::Relaxed,
            );
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Set in a child: the engine it measures.
const ENGINE_ENV: &str = "MEDIUM_OAUTH_BENCH_STORE_ENGINE";

/// Accounts in the store, and in the cache, unless `ACCOUNTS` and `CACHE`
/// say otherwise: the figures issue 12 asks for.
const DEFAULT_ACCOUNTS: usize = 100_000;
const DEFAULT_CACHE: usize = 10_000;

/// Calls in flight at once while filling the store and the cache.
const IN_FLIGHT: usize = 16;

fn count(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

fn rss_kib() -> i64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

fn mib(kib: i64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn main() {
    if let Ok(engine) = std::env::var(ENGINE_ENV) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        return runtime.block_on(measure(&engine));
    }
    let accounts = count("ACCOUNTS", DEFAULT_ACCOUNTS);
    let cache = count("CACHE", DEFAULT_CACHE);
    let mut rows = Vec::new();
    for engine in ["SQLite", "PostgreSQL"] {
        let out = Command::new(std::env::current_exe().expect("this program"))
            .env(ENGINE_ENV, engine)
            .output()
            .expect("a child");
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "the {engine} run failed");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let row = stdout
            .lines()
            .find_map(|l| l.strip_prefix("row\t"))
            .expect("a row")
            .to_owned();
        rows.push((engine, row));
    }
    println!();
    println!("{accounts} accounts in the store, a cache of {cache}:");
    println!(
        "engine     | bytes per cached account | RSS at start | RSS, {accounts} stored | RSS, {cache} cached | RSS, all {accounts} asked once"
    );
    for (engine, row) in rows {
        let cells: Vec<&str> = row.split('\t').collect();
        println!(
            "{engine:<10} | {:>24} | {:>12} | {:>13} | {:>13} | {:>13}",
            cells[0], cells[1], cells[2], cells[3], cells[4]
        );
    }
}

/// Asks `accounts` for the token of every account `id(i)` in `range`.
async fn ask(accounts: &Accounts, id: &impl Fn(usize) -> AccountId, range: std::ops::Range<usize>) {
    each(range, |i| {
        let (accounts, id) = (accounts.clone(), id(i));
        async move {
            accounts.token(&id).await.expect("a token");
        }
    })
    .await;
}

/// Calls `call(i)` for every `i` in `range`, `IN_FLIGHT` at once.
async fn each<F, Fut>(range: std::ops::Range<usize>, call: F)
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let permits = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    let mut calls = tokio::task::JoinSet::new();
    for i in range {
        let permit = permits.clone().acquire_owned().await.expect("permits");
        let fut = call(i);
        calls.spawn(async move {
            fut.await;
            drop(permit);
        });
        while calls.try_join_next().is_some() {}
    }
    calls.join_all().await;
}

async fn measure(engine: &str) {
    let accounts_n = count("ACCOUNTS", DEFAULT_ACCOUNTS);
    let cache_n = count("CACHE", DEFAULT_CACHE);
    let rss_start = rss_kib();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = match engine {
        "SQLite" => format!("sqlite:{}", dir.path().join("tokens.db").display()),
        _ => medium_oauth_test_support::postgres_url(),
    };
    let key = EncryptionKey::new("bench", [7; 32]).expect("a key");
    let db = TokenDatabase::connect(&url, Keyring::new(key))
        .await
        .expect("the database");
    let accounts = Accounts::builder(client(), db)
        .cache_capacity(cache_n as u64)
        .build();
    let prefix = format!("rss{}", std::process::id());
    let id = move |i: usize| AccountId::new(format!("{prefix}-{i:06}")).expect("an account id");
    let expires = SystemTime::now() + Duration::from_secs(60 * 24 * 3600);

    let started = Instant::now();
    each(0..accounts_n, |i| {
        let (accounts, id) = (accounts.clone(), id(i));
        async move {
            let token = Token::new(
                AccessToken::new(format!("{i:064x}")),
                Some(RefreshToken::new(format!("{:064x}", i + accounts_n))),
                Some(expires),
                GrantedScopes::from_names(["basicProfile", "publishPost"]),
            );
            accounts.connect(&id, &token).await.expect("connect");
        }
    })
    .await;
    eprintln!(
        "{engine}: {accounts_n} accounts stored in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let rss_stored = rss_kib();

    // One account first, outside the count: the pool's connections, the
    // runtime's and the cache's first allocations are made by then.
    let warm = id(accounts_n - 1);
    accounts.token(&warm).await.expect("a token");
    accounts.token(&warm).await.expect("a token");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let heap_before = live();
    ask(&accounts, &id, 0..cache_n).await;
    // Let the cache's housekeeping catch up (it runs on reads and writes),
    // then read them all again: hits, which settle it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    ask(&accounts, &id, 0..cache_n).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let heap_after = live();
    let rss_cached = rss_kib();
    let per_account = (heap_after - heap_before) as f64 / cache_n as f64;
    eprintln!(
        "{engine}: live heap {heap_before} -> {heap_after} bytes over {cache_n} accounts cached; {accounts:?}"
    );

    ask(&accounts, &id, 0..accounts_n).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_all = rss_kib();
    eprintln!("{engine}: after all {accounts_n} asked once: {accounts:?}");

    // The rows of a shared PostgreSQL outlive the run otherwise.
    each(0..accounts_n, |i| {
        let (accounts, id) = (accounts.clone(), id(i));
        async move {
            accounts.remove(&id).await.expect("removed");
        }
    })
    .await;
    println!(
        "row\t{per_account:.0} B\t{}\t{}\t{}\t{}",
        mib(rss_start),
        mib(rss_stored),
        mib(rss_cached),
        mib(rss_all)
    );
}
