//! The fleet figure: replica processes refreshing the same accounts at
//! once, against the emulator with rotation and replay detection on.
//!
//! ```sh
//! cargo run --release -p medium-oauth-store --example replicas -- \
//!     [--replicas 8] [--accounts 1000] [--database-url postgres://…]
//! ```
//!
//! The parent starts the emulator, logs in every account, stores each token
//! as already due, then starts the replicas (this program again, with
//! `--replica`) and lets them all ask for every account's token at once.
//! It then counts the refresh requests Medium saw, the refused ones and the
//! replays, and proves nothing was lost: one more refresh of every account,
//! from what the rows hold, must succeed.

use std::io::{BufRead, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use medium_oauth::{ClientId, ClientSecret, OAuthClient, Token, scopes};
use medium_oauth_emulator::{Config, Emulator, Outcome};
use medium_oauth_store::{AccountId, Accounts, EncryptionKey, Keyring, TokenDatabase};

/// Token calls one replica has in flight at once.
const IN_FLIGHT_PER_REPLICA: usize = 64;

struct Args {
    replica: bool,
    replicas: usize,
    accounts: usize,
    database_url: Option<String>,
    server: Option<String>,
    prefix: String,
}

fn args() -> Args {
    let mut args = Args {
        replica: false,
        replicas: 8,
        accounts: 1000,
        database_url: None,
        server: None,
        prefix: String::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{arg} needs a value"));
        match arg.as_str() {
            "--replica" => args.replica = true,
            "--replicas" => args.replicas = value().parse().expect("--replicas N"),
            "--accounts" => args.accounts = value().parse().expect("--accounts N"),
            "--database-url" => args.database_url = Some(value()),
            "--server" => args.server = Some(value()),
            "--prefix" => args.prefix = value(),
            other => panic!("unknown argument {other}"),
        }
    }
    args
}

fn client(server: &str) -> OAuthClient {
    OAuthClient::builder(
        ClientId::new("demo-client"),
        ClientSecret::new("demo-secret"),
        medium_oauth_test_support::REDIRECT,
    )
    .authorization_server(format!("{server}/m/oauth"))
    .api_server(format!("{server}/v1"))
    .build()
    .expect("a client")
}

/// The key every process seals with, passed down in the environment.
fn keyring() -> Keyring {
    let hex = std::env::var("REPLICAS_KEY").expect("REPLICAS_KEY");
    let mut bytes = [0u8; 32];
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("a hex key");
    }
    Keyring::new(EncryptionKey::new("replicas", bytes).expect("a key"))
}

fn account(prefix: &str, i: usize) -> AccountId {
    AccountId::new(format!("{prefix}-{i:06}")).expect("an account id")
}

#[tokio::main]
async fn main() {
    let args = args();
    if args.replica {
        replica(args).await;
    } else {
        parent(args).await;
    }
}

/// One replica: waits for the go line on stdin, asks for every account's
/// token, prints what it got.
async fn replica(args: Args) {
    let db = TokenDatabase::connect(args.database_url.as_deref().expect("a URL"), keyring())
        .await
        .expect("the database");
    let accounts = Accounts::builder(client(args.server.as_deref().expect("a server")), db).build();
    println!("ready");
    std::io::stdout().flush().ok();
    let mut go = String::new();
    std::io::stdin().lock().read_line(&mut go).ok();
    let started = Instant::now();
    let permits = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT_PER_REPLICA));
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..args.accounts {
        let accounts = accounts.clone();
        let id = account(&args.prefix, i);
        let permit = permits.clone().acquire_owned().await.expect("permits");
        calls.spawn(async move {
            let result = accounts.token(&id).await;
            drop(permit);
            result
        });
    }
    let (mut ok, mut failed) = (0, Vec::new());
    while let Some(done) = calls.join_next().await {
        match done.expect("a call") {
            Ok(_) => ok += 1,
            Err(e) => failed.push(e.to_string()),
        }
    }
    failed.sort();
    failed.dedup();
    println!(
        "ok={ok} failed={} ms={} {failed:?}",
        args.accounts - ok,
        started.elapsed().as_millis()
    );
}

async fn parent(args: Args) {
    let emu = Emulator::start(
        Config {
            auto_approve: true,
            rotate_refresh_tokens: true,
            detect_refresh_replay: true,
            ..Config::default()
        },
        "127.0.0.1:0",
    )
    .await
    .expect("the emulator");
    let server = emu.base_url();
    let dir = tempfile::tempdir().expect("a directory");
    let url = args
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite:{}", dir.path().join("tokens.db").display()));
    let key: Vec<u8> = EncryptionKey::generate("replicas")
        .expect("a key")
        .expose_bytes()
        .to_vec();
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    // SAFETY: set before any other thread of this program reads the
    // environment (the runtime's workers do not).
    unsafe { std::env::set_var("REPLICAS_KEY", &hex) };
    let prefix = format!("run{}", std::process::id());

    let client = client(&server);
    let db = TokenDatabase::connect(&url, keyring())
        .await
        .expect("the database");
    let accounts = Accounts::builder(client.clone(), db.clone()).build();
    let setup = Instant::now();
    for i in 0..args.accounts {
        let token = medium_oauth_test_support::login(&client, scopes![basicProfile]).await;
        // Stored as due now, so every replica must refresh it.
        let due = Token::new(
            token.access_token().clone(),
            token.refresh_token().cloned(),
            Some(SystemTime::now()),
            token.scopes().clone(),
        );
        accounts
            .connect(&account(&prefix, i), &due)
            .await
            .expect("connect");
    }
    eprintln!(
        "{} accounts connected in {:?}",
        args.accounts,
        setup.elapsed()
    );

    let before = emu.refreshes();
    let exe = std::env::current_exe().expect("this program");
    let mut children = Vec::new();
    for _ in 0..args.replicas {
        let mut child = Command::new(&exe)
            .args(["--replica", "--database-url", &url, "--server", &server])
            .args([
                "--prefix",
                &prefix,
                "--accounts",
                &args.accounts.to_string(),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("a replica");
        let mut lines = std::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
        let ready = tokio::task::spawn_blocking(move || {
            let line = lines.next();
            (line, lines)
        })
        .await
        .expect("a line");
        assert_eq!(ready.0.expect("ready").expect("ready"), "ready");
        children.push((child, ready.1));
    }
    let started = Instant::now();
    for (child, _) in &mut children {
        writeln!(child.stdin.as_mut().expect("stdin"), "go").expect("go");
    }
    let mut reports = Vec::new();
    for (mut child, mut lines) in children {
        let report = tokio::task::spawn_blocking(move || lines.next())
            .await
            .expect("a report");
        reports.push(report.expect("a report").expect("a report"));
        child.wait().expect("the replica ends");
    }
    let elapsed = started.elapsed();
    let refreshes = emu.refreshes() - before;
    let refused = emu
        .token_request_log()
        .iter()
        .filter(|r| !matches!(r.outcome, Outcome::Status(200 | 201)))
        .count();
    for (i, report) in reports.iter().enumerate() {
        println!("replica {i}: {report}");
    }
    println!(
        "{} replicas, {} accounts due at once ({}): {refreshes} refresh requests, {refused} refused (invalid_grant or other), {} replays, in {elapsed:?}",
        args.replicas,
        args.accounts,
        if url.starts_with("sqlite") {
            "SQLite"
        } else {
            "PostgreSQL"
        },
        emu.refresh_replays(),
    );

    // Lost tokens: every row must hold the grant's live refresh token, so
    // one more refresh of each, from the rows, must succeed.
    let check = Accounts::builder(client, db)
        .margin(Duration::from_secs(61 * 24 * 60 * 60))
        .build();
    let mut lost = 0;
    for i in 0..args.accounts {
        if check.token(&account(&prefix, i)).await.is_err() {
            lost += 1;
        }
    }
    println!(
        "lost tokens: {lost} (of {} re-refreshed from their rows)",
        args.accounts
    );
    emu.shutdown().await;
}
