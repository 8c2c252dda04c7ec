//! The cost of `accounts.token(&id)` in the shared store, beside its
//! baselines in the same run, on a SQLite file and on PostgreSQL.
//!
//! - `store-cached/*`: an account whose token the cache holds, valid for
//!   60 days, beside a bare `moka::future::Cache::get` of an `Arc<Token>`
//!   (the cache the store is built on, same key type and capacity).
//! - `store-uncached/*`: an account the cache does not hold. The manager is
//!   built with a cache capacity of 0, which moka takes as "keep nothing",
//!   so every call takes the miss path: a slot made, the task that reads or
//!   refreshes spawned, one row read (one round trip), the token opened
//!   (XChaCha20-Poly1305 and JSON). Only the insertion into the cache, which
//!   a real miss also pays, is left out. Beside it, on the same database:
//!   a bare `SELECT 1` and a bare fetch of the same row's columns, through
//!   sqlx's `Any` driver as the store uses it.
//!
//! PostgreSQL is `DATABASE_URL`, or the cluster `.ci/postgres start` starts
//! (under `MEDIUM_OAUTH_PG_DIR`, by default `target/postgres`); SQLite is a
//! file in a temporary directory.
//!
//! Run with `cargo bench -p medium-oauth-bench --bench store`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use criterion::{Criterion, criterion_group, criterion_main};
use medium_oauth::{AccessToken, GrantedScopes, RefreshToken, Token};
use medium_oauth_store::{
    AccountId, Accounts, CACHE_TTL, DEFAULT_CACHE_CAPACITY, EncryptionKey, Keyring, TokenDatabase,
};

mod common;
use common::{CLIENT_ID, client};
use sqlx::Row;

/// Far past any bench run: no call refreshes.
const TOKEN_LIFETIME: Duration = Duration::from_secs(60 * 24 * 3600);

struct Engine {
    name: &'static str,
    url: String,
    _dir: Option<tempfile::TempDir>,
}

fn engines() -> Vec<Engine> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let sqlite = format!("sqlite:{}", dir.path().join("tokens.db").display());
    vec![
        Engine {
            name: "SQLite",
            url: sqlite,
            _dir: Some(dir),
        },
        Engine {
            name: "PostgreSQL",
            url: medium_oauth_test_support::postgres_url(),
            _dir: None,
        },
    ]
}

/// A token the size of Medium's: 64-character tokens, two scopes.
fn token() -> Token {
    Token::new(
        AccessToken::new("0123456789abcdef".repeat(4)),
        Some(RefreshToken::new("fedcba9876543210".repeat(4))),
        Some(SystemTime::now() + TOKEN_LIFETIME),
        GrantedScopes::from_names(["basicProfile", "publishPost"]),
    )
}

/// The same database through sqlx's `Any` driver, bypassing the store.
async fn raw_pool(url: &str) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    let url = match url.strip_prefix("sqlite:") {
        Some(path) => format!("sqlite://{path}"),
        None => url.to_owned(),
    };
    sqlx::AnyPool::connect(&url).await.expect("a raw pool")
}

fn store(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let id = AccountId::new(format!("bench-{}", std::process::id())).expect("an account id");
    let engines = engines();
    let setups: Vec<_> = engines
        .iter()
        .map(|engine| {
            rt.block_on(async {
                let key = EncryptionKey::new("bench", [7; 32]).expect("a key");
                let db = TokenDatabase::connect(&engine.url, Keyring::new(key))
                    .await
                    .expect("the database");
                let cached = Accounts::builder(client(), db.clone()).build();
                cached.connect(&id, &token()).await.expect("connect");
                cached.token(&id).await.expect("a token");
                let uncached = Accounts::builder(client(), db).cache_capacity(0).build();
                uncached.token(&id).await.expect("a token");
                let pool = raw_pool(&engine.url).await;
                (engine.name, cached, uncached, pool)
            })
        })
        .collect();

    let mut group = c.benchmark_group("store-cached");
    let moka: moka::future::Cache<AccountId, Arc<Token>> = moka::future::Cache::builder()
        .max_capacity(DEFAULT_CACHE_CAPACITY)
        .time_to_live(CACHE_TTL)
        .build();
    rt.block_on(moka.insert(id.clone(), Arc::new(token())));
    group.bench_function("moka get (baseline)", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(moka.get(black_box(&id)).await.expect("cached")) })
    });
    for (name, cached, _, _) in &setups {
        group.bench_function(format!("token() {name}"), |b| {
            b.to_async(&rt)
                .iter(|| async { black_box(cached.token(black_box(&id)).await.expect("a token")) })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("store-uncached");
    let row_sql = "SELECT key_id, sealed, expires_at_ms, dead_reason, version, updated_at_ms \
                   FROM medium_oauth_accounts WHERE client_id = $1 AND account_id = $2";
    for (name, _, uncached, pool) in &setups {
        group.bench_function(format!("SELECT 1 {name} (baseline)"), |b| {
            b.to_async(&rt).iter(|| async {
                black_box(
                    sqlx::query("SELECT 1")
                        .fetch_one(pool)
                        .await
                        .expect("a row"),
                )
            })
        });
        group.bench_function(format!("row fetch {name} (baseline)"), |b| {
            b.to_async(&rt).iter(|| async {
                let row = sqlx::query(row_sql)
                    .bind(CLIENT_ID)
                    .bind(id.as_str())
                    .fetch_one(pool)
                    .await
                    .expect("the row");
                black_box((
                    row.try_get::<String, _>(0).expect("key_id"),
                    row.try_get::<Vec<u8>, _>(1).expect("sealed"),
                    row.try_get::<Option<i64>, _>(2).expect("expires_at_ms"),
                    row.try_get::<Option<String>, _>(3).expect("dead_reason"),
                    row.try_get::<i64, _>(4).expect("version"),
                    row.try_get::<i64, _>(5).expect("updated_at_ms"),
                ))
            })
        });
        group.bench_function(format!("token() {name}"), |b| {
            b.to_async(&rt).iter(|| async {
                black_box(uncached.token(black_box(&id)).await.expect("a token"))
            })
        });
    }
    group.finish();

    rt.block_on(async {
        for (_, cached, _, pool) in &setups {
            cached.remove(&id).await.expect("removed");
            pool.close().await;
        }
    });
}

criterion_group!(benches, store);
criterion_main!(benches);
