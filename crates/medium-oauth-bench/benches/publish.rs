//! Publishing throughput through `MediumApi` against the emulator on
//! loopback, beside its baseline in the same run: the same post sent by a
//! bare reqwest client with the bearer header set by hand (no scope check,
//! no middleware, no typed answer). The difference is what the typed,
//! scope-checked layer costs per post; the rest is HTTP and the emulator.
//!
//! - `publish/one_at_a_time/*`: one post, awaited, then the next.
//! - `publish/16_at_once/*`: 16 posts in flight at once on a two-thread
//!   runtime, the way a service fans out.
//!
//! Criterion reports each as posts per second (`thrpt`). Run with
//! `cargo bench -p medium-oauth-bench --bench publish`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use medium_oauth::api::{MediumApi, NewPost, Post};
use medium_oauth::{RefreshingTokenSource, ScopeSet, TokenSource};
use medium_oauth_test_support::{auto_approving, demo_client, emulator, login};

/// Posts in flight at once in the concurrent rows: enough to keep both
/// cores busy with the emulator and the client on one machine.
const IN_FLIGHT: usize = 16;

/// A post of typical size: a title, three tags and about 2 KB of markdown.
fn post() -> NewPost {
    let paragraph =
        "Medium's API takes markdown or HTML; this paragraph stands in for a post's prose. ";
    NewPost::markdown(
        "Benchmarking a post",
        format!("# Benchmarking a post\n\n{}", paragraph.repeat(24)),
    )
    .tags(["rust", "oauth", "bench"])
    .build()
    .expect("a valid post")
}

struct Setup {
    api: MediumApi<RefreshingTokenSource>,
    raw: reqwest::Client,
    url: String,
    bearer: String,
    body: Vec<u8>,
}

async fn setup() -> (medium_oauth_emulator::Emulator, Setup) {
    let emu = emulator(auto_approving()).await;
    let client = demo_client(&emu);
    let token = login(&client, ScopeSet::all()).await;
    let api = client.api(client.token_source(token));
    let user_id = api.user_id().await.expect("the user id").to_owned();
    let token = api.source().token().await.expect("a token");
    let path = medium_oauth2_api::resource::operations::create_user_post::path(&user_id)
        .expect("a valid id");
    let setup = Setup {
        raw: medium_oauth::tls::client_builder()
            .expect("TLS")
            .build()
            .expect("a client"),
        url: format!("{}{path}", emu.api_server()),
        bearer: format!("Bearer {}", token.access_token().expose_secret()),
        body: serde_json::to_vec(post().request()).expect("JSON"),
        api,
    };
    (emu, setup)
}

async fn raw_post(s: &Setup) -> Post {
    let response = s
        .raw
        .post(&s.url)
        .header("authorization", &s.bearer)
        .header("content-type", "application/json")
        .header("accept", "application/json")
        .body(s.body.clone())
        .send()
        .await
        .expect("an answer");
    assert_eq!(response.status(), 201);
    response
        .json::<medium_oauth2_api::resource::types::PostEnvelope>()
        .await
        .expect("a post")
        .data
}

fn publish(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let (_emu, setup) = runtime.block_on(setup());
    let setup = std::sync::Arc::new(setup);
    let post = std::sync::Arc::new(post());

    let mut group = c.benchmark_group("publish/one_at_a_time");
    group.throughput(Throughput::Elements(1));
    group.bench_function("medium_api", |b| {
        b.to_async(&runtime)
            .iter(|| async { setup.api.create_post(&post).await.expect("created") })
    });
    group.bench_function("raw_reqwest", |b| {
        b.to_async(&runtime).iter(|| raw_post(&setup))
    });
    group.finish();

    let mut group = c.benchmark_group(format!("publish/{IN_FLIGHT}_at_once"));
    group.throughput(Throughput::Elements(IN_FLIGHT as u64));
    group.bench_function("medium_api", |b| {
        b.to_async(&runtime).iter(|| async {
            let mut set = tokio::task::JoinSet::new();
            for _ in 0..IN_FLIGHT {
                let (setup, post) = (setup.clone(), post.clone());
                set.spawn(async move { setup.api.create_post(&post).await.expect("created") });
            }
            set.join_all().await
        })
    });
    group.bench_function("raw_reqwest", |b| {
        b.to_async(&runtime).iter(|| async {
            let mut set = tokio::task::JoinSet::new();
            for _ in 0..IN_FLIGHT {
                let setup = setup.clone();
                set.spawn(async move { raw_post(&setup).await });
            }
            set.join_all().await
        })
    });
    group.finish();
}

criterion_group!(benches, publish);
criterion_main!(benches);
