//! The fleet figures: replica processes sharing the same accounts, against
//! the emulator with rotation and replay detection on.
//!
//! ```sh
//! cargo run --release -p medium-oauth-store --example replicas -- \
//!     [--mode fleet|kill|restart] [--replicas 8] [--accounts 1000] \
//!     [--database-url postgres://…] [--downtime 5]
//! ```
//!
//! The parent starts the emulator, logs in every account and stores its
//! token, then starts the replicas (this program again, with `--replica`)
//! and, by mode:
//!
//! - `fleet` (the default): every token is stored as already due, and every
//!   replica asks for every account's token at once.
//! - `kill`: one replica asks for the first [`HELD`] accounts while the
//!   emulator's token endpoint stalls (each of its refresh requests is held
//!   unanswered), so it holds their leases; once the emulator holds all its
//!   requests it is SIGKILLed, and the other replicas (started before, and
//!   idle until then) ask for every
//!   account. For each held account: the time from the kill until another
//!   replica had refreshed it, which must be within [`LEASE`] and one poll
//!   interval.
//! - `restart`: tokens are issued for [`RESTART_TOKEN_LIFETIME`], so
//!   accounts keep falling due, and the replicas ask for every account in a
//!   loop while the parent runs `.ci/postgres restart DOWNTIME` (PostgreSQL
//!   only; `MEDIUM_OAUTH_PG_DIR` names the cluster, whose URL
//!   `.ci/postgres start` gives unless `--database-url` does). Errors are
//!   counted by kind with their classification; none may be a dead grant,
//!   and after recovery every account must yield a token.
//!
//! Every mode then counts the refresh requests Medium saw, the refused ones
//! and the replays, and proves nothing was lost: every row's refresh token
//! is loaded and refreshed once more, directly with the client, and each
//! must succeed.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use medium_oauth::{ClientId, ClientSecret, OAuthClient, Token, scopes};
use medium_oauth_emulator::{Config, Emulator, Fault, Outcome};
use medium_oauth_store::{
    AccountId, Accounts, EncryptionKey, Keyring, LEASE, StoreError, TokenDatabase,
};
use sqlx::Row;

/// Token calls one replica has in flight at once.
const IN_FLIGHT_PER_REPLICA: usize = 64;

/// Token requests the emulator's log keeps (the newest): refusals are
/// counted from it, so a run that outgrows it cannot count them.
const EMULATOR_LOG_CAPACITY: usize = 10_000;

/// Accounts whose leases the killed replica holds.
const HELD: usize = 10;

/// How long the emulator holds each of the killed replica's refresh
/// requests: past the whole run, so none is ever answered (and none rotates
/// a refresh token behind the fleet's back).
const STALL: Duration = Duration::from_secs(3600);

/// The longest pause of a replica waiting for a lease between two asks
/// (the lease module's cap): a lease that ran out is taken within it.
const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// Lifetime of the tokens in `restart` mode: each falls due halfway, so
/// every account is refreshed every 10 s, before, during and after the
/// outage (their first due times are spread over those 10 s).
const RESTART_TOKEN_LIFETIME: Duration = Duration::from_secs(20);

/// `restart`: how long the replicas run before the restart, and after the
/// cluster is back before they are told to stop.
const BEFORE_RESTART: Duration = Duration::from_secs(12);
const AFTER_RESTART: Duration = Duration::from_secs(20);

/// `restart`: how long a replica keeps asking for one account after the
/// stop, while transient errors last.
const FINAL_PATIENCE: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Fleet,
    Kill,
    Restart,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Fleet => "fleet",
            Mode::Kill => "kill",
            Mode::Restart => "restart",
        }
    }
}

struct Args {
    mode: Mode,
    replica: bool,
    replicas: usize,
    accounts: usize,
    database_url: Option<String>,
    server: Option<String>,
    prefix: String,
    downtime: u64,
    /// A replica's accounts: `first..first + count`.
    first: usize,
    count: usize,
    /// A replica reports when it got each of the accounts below this.
    timed: usize,
}

fn args() -> Args {
    let mut args = Args {
        mode: Mode::Fleet,
        replica: false,
        replicas: 8,
        accounts: 1000,
        database_url: None,
        server: None,
        prefix: String::new(),
        downtime: 5,
        first: 0,
        count: 0,
        timed: 0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{arg} needs a value"));
        match arg.as_str() {
            "--mode" => {
                args.mode = match value().as_str() {
                    "fleet" => Mode::Fleet,
                    "kill" => Mode::Kill,
                    "restart" => Mode::Restart,
                    other => panic!("--mode fleet|kill|restart, not {other}"),
                }
            }
            "--replica" => args.replica = true,
            "--replicas" => args.replicas = value().parse().expect("--replicas N"),
            "--accounts" => args.accounts = value().parse().expect("--accounts N"),
            "--database-url" => args.database_url = Some(value()),
            "--downtime" => args.downtime = value().parse().expect("--downtime SECONDS"),
            "--server" => args.server = Some(value()),
            "--prefix" => args.prefix = value(),
            "--first" => args.first = value().parse().expect("--first N"),
            "--count" => args.count = value().parse().expect("--count N"),
            "--timed" => args.timed = value().parse().expect("--timed N"),
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

fn unix_ms(at: SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as i64
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

/// The kind of a failed call, as a caller branching on it sees it.
fn kind(e: &StoreError) -> String {
    match e {
        StoreError::Database(e) => match &**e {
            sqlx::Error::Database(db) => format!(
                "Database(Database {})",
                db.code().as_deref().unwrap_or("no code")
            ),
            sqlx::Error::Io(io) => format!("Database(Io {:?})", io.kind()),
            other => {
                let text = format!("{other:?}");
                let name: String = text
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                format!("Database({name})")
            }
        },
        StoreError::Refresh { source, .. } => {
            let text = format!("{source:?}");
            let name: String = text.chars().take_while(|c| c.is_alphanumeric()).collect();
            format!("Refresh({name})")
        }
        other => {
            let text = format!("{other:?}");
            text.chars().take_while(|c| c.is_alphanumeric()).collect()
        }
    }
}

/// One replica: waits for the go line on stdin, asks for its accounts'
/// tokens (in a loop until the stop line, in `restart` mode), prints what
/// it got.
async fn replica(args: Args) {
    // From the environment, not the command line, where anyone on the
    // machine could read a password in it.
    let url = std::env::var("REPLICAS_DATABASE_URL").expect("REPLICAS_DATABASE_URL");
    let db = TokenDatabase::connect(&url, keyring())
        .await
        .expect("the database");
    let accounts = Accounts::builder(client(args.server.as_deref().expect("a server")), db).build();
    println!("ready");
    std::io::stdout().flush().ok();
    let mut go = String::new();
    std::io::stdin().lock().read_line(&mut go).ok();
    if args.mode == Mode::Restart {
        return replica_loop(args, accounts).await;
    }
    let started = Instant::now();
    let permits = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT_PER_REPLICA));
    let mut calls = tokio::task::JoinSet::new();
    for i in args.first..args.first + args.count {
        let accounts = accounts.clone();
        let id = account(&args.prefix, i);
        let permit = permits.clone().acquire_owned().await.expect("permits");
        let timed = i < args.timed;
        calls.spawn(async move {
            let result = accounts.token(&id).await;
            if timed && result.is_ok() {
                println!("got {i} {}", unix_ms(SystemTime::now()));
            }
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
        "done ok={ok} failed={} ms={} {failed:?}",
        args.count - ok,
        started.elapsed().as_millis()
    );
}

/// What a `restart` replica saw.
#[derive(Default)]
struct Tally {
    calls: u64,
    ok: u64,
    /// Failures by kind, with whether the kind is transient and whether it
    /// asks for the user.
    errors: BTreeMap<String, (u64, bool, bool)>,
    slowest: Duration,
}

impl Tally {
    fn add(&mut self, result: &Result<Arc<Token>, StoreError>, took: Duration) {
        self.calls += 1;
        self.slowest = self.slowest.max(took);
        match result {
            Ok(_) => self.ok += 1,
            Err(e) => {
                let entry = self.errors.entry(kind(e)).or_insert((
                    0,
                    e.is_transient(),
                    e.requires_reauthorization(),
                ));
                entry.0 += 1;
            }
        }
    }
}

/// `restart`: every account, pass after pass, until the stop line; then
/// every account once more, asking again while the error is transient.
async fn replica_loop(args: Args, accounts: Accounts) {
    let stop = Arc::new(AtomicBool::new(false));
    std::thread::spawn({
        let stop = stop.clone();
        move || {
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line).ok();
            stop.store(true, Ordering::SeqCst);
        }
    });
    let tally = Arc::new(std::sync::Mutex::new(Tally::default()));
    let permits = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT_PER_REPLICA));
    while !stop.load(Ordering::SeqCst) {
        let mut calls = tokio::task::JoinSet::new();
        for i in args.first..args.first + args.count {
            let (accounts, tally) = (accounts.clone(), tally.clone());
            let id = account(&args.prefix, i);
            let permit = permits.clone().acquire_owned().await.expect("permits");
            calls.spawn(async move {
                let started = Instant::now();
                let result = accounts.token(&id).await;
                let took = started.elapsed();
                tally.lock().expect("the tally").add(&result, took);
                drop(permit);
            });
        }
        calls.join_all().await;
        // Calls served from memory take nanoseconds: a pass per 50 ms is
        // plenty to meet every account as it falls due.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut final_failed = Vec::new();
    for i in args.first..args.first + args.count {
        let id = account(&args.prefix, i);
        let started = Instant::now();
        loop {
            match accounts.token(&id).await {
                Ok(_) => break,
                Err(e) if e.is_transient() && started.elapsed() < FINAL_PATIENCE => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => {
                    final_failed.push(format!("{id}: {e}"));
                    break;
                }
            }
        }
    }
    let tally = tally.lock().expect("the tally");
    for (kind, (count, transient, reauth)) in &tally.errors {
        println!("error {count} transient={transient} reauthorization={reauth} {kind}");
    }
    println!(
        "done calls={} ok={} failed={} slowest_ms={} final_ok={} final_failed={} {final_failed:?}",
        tally.calls,
        tally.ok,
        tally.calls - tally.ok,
        tally.slowest.as_millis(),
        args.count - final_failed.len(),
        final_failed.len(),
    );
}

/// The replica processes and the lines each printed.
struct Replicas {
    children: Vec<Child>,
    lines: Vec<Vec<String>>,
    rx: tokio::sync::mpsc::UnboundedReceiver<(usize, Option<String>)>,
    tx: tokio::sync::mpsc::UnboundedSender<(usize, Option<String>)>,
    ended: Vec<bool>,
}

impl Replicas {
    fn new() -> Self {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        Self {
            children: Vec::new(),
            lines: Vec::new(),
            rx,
            tx,
            ended: Vec::new(),
        }
    }

    /// Starts one, and waits until it is ready.
    async fn start(&mut self, args: &[String]) -> usize {
        let exe = std::env::current_exe().expect("this program");
        let mut child = Command::new(exe)
            .arg("--replica")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("a replica");
        let stdout = child.stdout.take().expect("stdout");
        let n = self.children.len();
        let tx = self.tx.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send((n, Some(line))).is_err() {
                    return;
                }
            }
            tx.send((n, None)).ok();
        });
        self.children.push(child);
        self.lines.push(Vec::new());
        self.ended.push(false);
        self.until(|r| r.lines[n].iter().any(|l| l == "ready"))
            .await;
        n
    }

    /// Receives lines until `done` holds.
    async fn until(&mut self, done: impl Fn(&Self) -> bool) {
        while !done(self) {
            let (n, line) = self.rx.recv().await.expect("replica output");
            match line {
                Some(line) => self.lines[n].push(line),
                None => self.ended[n] = true,
            }
        }
    }

    fn send(&mut self, n: usize, line: &str) {
        let stdin = self.children[n].stdin.as_mut().expect("stdin");
        writeln!(stdin, "{line}").expect("a line to the replica");
        stdin.flush().ok();
    }

    /// Waits for the report of each of `which`, and their exit.
    async fn reports(&mut self, which: &[usize]) {
        self.until(|r| which.iter().all(|&n| r.ended[n])).await;
        for &n in which {
            self.children[n].wait().expect("the replica ends");
        }
    }

    fn done_line(&self, n: usize) -> &str {
        self.lines[n]
            .iter()
            .find(|l| l.starts_with("done "))
            .map(String::as_str)
            .unwrap_or("(no report)")
    }
}

/// Everything the modes share: the emulator, the database, the accounts.
struct World {
    emu: Emulator,
    server: String,
    url: String,
    client: OAuthClient,
    accounts: Accounts,
    prefix: String,
    _dir: tempfile::TempDir,
}

impl World {
    fn replica_args(&self, mode: Mode, first: usize, count: usize, timed: usize) -> Vec<String> {
        [
            "--mode",
            mode.name(),
            "--server",
            &self.server,
            "--prefix",
            &self.prefix,
            "--first",
            &first.to_string(),
            "--count",
            &count.to_string(),
            "--timed",
            &timed.to_string(),
        ]
        .map(str::to_owned)
        .to_vec()
    }

    fn engine(&self) -> &'static str {
        if self.url.starts_with("sqlite") {
            "SQLite"
        } else {
            "PostgreSQL"
        }
    }

    /// Token requests since the setup that were not answered 200 or 201.
    /// `None`: the emulator's log (its newest 10,000) no longer reaches
    /// back to the setup, so they cannot be counted.
    fn refused(&self, setup_requests: usize) -> Option<usize> {
        let log = self.emu.token_request_log();
        if log.len() >= EMULATOR_LOG_CAPACITY {
            return None;
        }
        let refused = log
            .iter()
            .skip(setup_requests)
            .filter(|r| !matches!(r.outcome, Outcome::Status(200 | 201)))
            .count();
        Some(refused)
    }

    /// Accounts whose row no longer holds the grant's live refresh token:
    /// each row is loaded and its refresh token sent once more, directly.
    async fn lost(&self, n: usize) -> usize {
        let mut lost = 0;
        for i in 0..n {
            let id = account(&self.prefix, i);
            let stored = self.accounts.stored_token(&id).await;
            let alive = match stored {
                Ok(Some(token)) => match token.refresh_token() {
                    Some(refresh) => self.client.refresh(refresh).await.is_ok(),
                    None => false,
                },
                _ => false,
            };
            if !alive {
                lost += 1;
            }
        }
        lost
    }
}

async fn setup(args: &Args) -> World {
    let token_lifetime = match args.mode {
        Mode::Restart => RESTART_TOKEN_LIFETIME,
        _ => Config::default().token_lifetime,
    };
    let emu = Emulator::start(
        Config {
            auto_approve: true,
            rotate_refresh_tokens: true,
            detect_refresh_replay: true,
            token_lifetime,
            ..Config::default()
        },
        "127.0.0.1:0",
    )
    .await
    .expect("the emulator");
    let server = emu.base_url();
    let dir = tempfile::tempdir().expect("a directory");
    let url = match (&args.database_url, args.mode) {
        (Some(url), _) => url.clone(),
        (None, Mode::Restart) => pg_script(&["start"]),
        (None, _) => format!("sqlite:{}", dir.path().join("tokens.db").display()),
    };
    let key: Vec<u8> = EncryptionKey::generate("replicas")
        .expect("a key")
        .expose_bytes()
        .to_vec();
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    // SAFETY: set before any other thread of this program reads the
    // environment (the runtime's workers do not).
    unsafe {
        std::env::set_var("REPLICAS_KEY", &hex);
        std::env::set_var("REPLICAS_DATABASE_URL", &url);
    }
    let prefix = format!("run{}", std::process::id());

    let client = client(&server);
    let db = TokenDatabase::connect(&url, keyring())
        .await
        .expect("the database");
    let accounts = Accounts::builder(client.clone(), db).build();
    let started = Instant::now();
    for i in 0..args.accounts {
        let token = medium_oauth_test_support::login(&client, scopes![basicProfile]).await;
        let token = match args.mode {
            // Due at once spread over the next half lifetime, so some
            // account falls due every few milliseconds; each refresh then
            // issues a token for 20 s, due halfway, again and again.
            Mode::Restart => {
                let half = RESTART_TOKEN_LIFETIME / 2;
                let due_in = half / 10 + half.mul_f64(i as f64 / args.accounts as f64);
                Token::new(
                    token.access_token().clone(),
                    token.refresh_token().cloned(),
                    Some(SystemTime::now() + 2 * due_in),
                    token.scopes().clone(),
                )
            }
            // Stored as due now, so every replica must refresh it.
            _ => Token::new(
                token.access_token().clone(),
                token.refresh_token().cloned(),
                Some(SystemTime::now()),
                token.scopes().clone(),
            ),
        };
        accounts
            .connect(&account(&prefix, i), &token)
            .await
            .expect("connect");
    }
    eprintln!(
        "{} accounts connected in {:?}",
        args.accounts,
        started.elapsed()
    );
    World {
        emu,
        server,
        url,
        client,
        accounts,
        prefix,
        _dir: dir,
    }
}

/// Runs `.ci/postgres` with `args`; its last line (the URL).
fn pg_script(args: &[&str]) -> String {
    if std::env::var_os("MEDIUM_OAUTH_PG_DIR").is_none() {
        panic!("--mode restart restarts the cluster in MEDIUM_OAUTH_PG_DIR: set it");
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../.ci/postgres");
    let out = Command::new("bash")
        .arg(script)
        .args(args)
        .output()
        .expect("bash runs .ci/postgres");
    assert!(
        out.status.success(),
        ".ci/postgres {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .expect("a URL")
        .to_owned()
}

async fn parent(args: Args) {
    let world = setup(&args).await;
    let setup_requests = world.emu.token_request_log().len();
    let before = world.emu.refreshes();
    match args.mode {
        Mode::Fleet => fleet(&args, &world).await,
        Mode::Kill => kill(&args, &world).await,
        Mode::Restart => restart(&args, &world).await,
    }
    let refreshes = world.emu.refreshes() - before;
    let refused = world.refused(setup_requests);
    let replays = world.emu.refresh_replays();
    let lost = world.lost(args.accounts).await;
    let refused_text = refused.map_or_else(
        || "refusals uncounted (the emulator's request log is full: use fewer accounts)".into(),
        |n| format!("{n} refused (invalid_grant or other)"),
    );
    println!(
        "{} replicas, {} accounts ({}): {refreshes} refresh requests answered, {refused_text}, {replays} replays, {lost} lost (of {} rows re-refreshed directly)",
        args.replicas,
        args.accounts,
        world.engine(),
        args.accounts,
    );
    let ok = refused == Some(0) && replays == 0 && lost == 0;
    println!("{}: {}", args.mode.name(), if ok { "PASS" } else { "FAIL" });
    world.emu.shutdown().await;
    if !ok {
        std::process::exit(1);
    }
}

/// Every replica asks for every due account at once.
async fn fleet(args: &Args, world: &World) {
    let mut replicas = Replicas::new();
    let all: Vec<usize> = {
        let mut all = Vec::new();
        for _ in 0..args.replicas {
            let spawn = world.replica_args(Mode::Fleet, 0, args.accounts, 0);
            all.push(replicas.start(&spawn).await);
        }
        all
    };
    let started = Instant::now();
    for &n in &all {
        replicas.send(n, "go");
    }
    replicas.reports(&all).await;
    let elapsed = started.elapsed();
    for &n in &all {
        println!("replica {n}: {}", replicas.done_line(n));
    }
    println!(
        "fleet: {} replicas asked for {} accounts due at once, in {elapsed:?}",
        args.replicas, args.accounts
    );
}

/// The lease expiries of the first `HELD` accounts, by the database's
/// clock, read past the crate.
async fn lease_expiries(world: &World) -> Vec<Option<i64>> {
    sqlx::any::install_default_drivers();
    let url = world
        .url
        .replace("sqlite:", "sqlite://")
        .replace("sqlite:////", "sqlite:///");
    let pool = sqlx::AnyPool::connect(&url).await.expect("a raw pool");
    let mut expiries = Vec::new();
    for i in 0..HELD {
        let row = sqlx::query(
            "SELECT lease_until_ms FROM medium_oauth_accounts WHERE client_id = $1 AND account_id = $2",
        )
        .bind("demo-client")
        .bind(account(&world.prefix, i).as_str().to_owned())
        .fetch_one(&pool)
        .await
        .expect("the row");
        expiries.push(row.try_get::<Option<i64>, _>(0).expect("lease_until_ms"));
    }
    pool.close().await;
    expiries
}

/// One replica holds `HELD` leases and is SIGKILLed; the others take over.
async fn kill(args: &Args, world: &World) {
    assert!(args.accounts >= HELD, "--accounts must be at least {HELD}");
    let mut replicas = Replicas::new();
    // The survivors first, ready before the kill so that none is still
    // starting when the clock runs.
    let mut survivors = Vec::new();
    for _ in 0..args.replicas.saturating_sub(1).max(1) {
        let spawn = world.replica_args(Mode::Kill, 0, args.accounts, HELD);
        survivors.push(replicas.start(&spawn).await);
    }
    // The victim's refresh requests reach the emulator and are held there.
    world
        .emu
        .inject_faults(std::iter::repeat_n(Fault::Delay(STALL), HELD));
    let victim = replicas
        .start(&world.replica_args(Mode::Kill, 0, HELD, 0))
        .await;
    replicas.send(victim, "go");
    let waiting = Instant::now();
    while world.emu.queued_faults() > 0 {
        assert!(
            waiting.elapsed() < Duration::from_secs(10),
            "the victim did not send its refreshes"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let expiries = lease_expiries(world).await;
    let now_ms = unix_ms(SystemTime::now());
    let held = expiries
        .iter()
        .filter(|e| e.is_some_and(|e| e > now_ms))
        .count();
    replicas.children[victim].kill().expect("SIGKILL");
    let killed_at = SystemTime::now();
    let killed = Instant::now();
    replicas.children[victim]
        .wait()
        .expect("the victim is reaped");
    let killed_ms = unix_ms(killed_at);
    println!(
        "kill: the victim held {held} of {HELD} leases (its {HELD} refresh requests stalled at the emulator) and was SIGKILLed {:?} after it began",
        killed.duration_since(waiting)
    );
    for &n in &survivors {
        replicas.send(n, "go");
    }
    replicas.reports(&survivors).await;
    let took = killed.elapsed();
    for &n in &survivors {
        println!("replica {n}: {}", replicas.done_line(n));
    }
    // The first replica to get each held account's token got it from the
    // refresh of the replica that took the lease over.
    let mut got = [None::<i64>; HELD];
    for &n in &survivors {
        for line in &replicas.lines[n] {
            let mut parts = line.split(' ');
            if parts.next() != Some("got") {
                continue;
            }
            let i: usize = parts.next().and_then(|s| s.parse().ok()).expect("an index");
            let at: i64 = parts.next().and_then(|s| s.parse().ok()).expect("a time");
            got[i] = Some(got[i].map_or(at, |g: i64| g.min(at)));
        }
    }
    let bound = (LEASE + POLL_INTERVAL).as_millis() as i64;
    let mut within = 0;
    let mut worst = 0;
    println!(
        "account | lease left at the kill | refreshed by another replica, after the kill | after the lease ran out"
    );
    for i in 0..HELD {
        let left = expiries[i].map(|e| e - killed_ms);
        match got[i] {
            Some(at) => {
                let after = at - killed_ms;
                worst = worst.max(after);
                if after <= bound {
                    within += 1;
                }
                println!(
                    "{:>7} | {:>19} ms | {:>41} ms | {} ms",
                    i,
                    left.map_or("-".into(), |l| l.to_string()),
                    after,
                    expiries[i].map_or("-".into(), |e| (at - e).to_string()),
                );
            }
            None => println!("{i:>7} | never refreshed"),
        }
    }
    println!(
        "kill: {within} of {HELD} held accounts refreshed by another replica within the lease ({} s) + one poll interval ({} ms) of the kill; worst {worst} ms; the survivors were done {took:?} after the kill",
        LEASE.as_secs(),
        POLL_INTERVAL.as_millis()
    );
    if within != HELD || held != HELD {
        println!("kill: FAIL");
        std::process::exit(1);
    }
}

/// The replicas ask in a loop while PostgreSQL restarts.
async fn restart(args: &Args, world: &World) {
    assert!(
        world.engine() == "PostgreSQL",
        "--mode restart needs PostgreSQL"
    );
    if Duration::from_secs(args.downtime) + Duration::from_secs(5) >= LEASE {
        eprintln!(
            "warning: a downtime near the lease ({LEASE:?}) lets a lease held over a failed commit run out before its holder can commit"
        );
    }
    let mut replicas = Replicas::new();
    let mut all = Vec::new();
    for _ in 0..args.replicas {
        let spawn = world.replica_args(Mode::Restart, 0, args.accounts, 0);
        all.push(replicas.start(&spawn).await);
    }
    for &n in &all {
        replicas.send(n, "go");
    }
    tokio::time::sleep(BEFORE_RESTART).await;
    let refreshes_before = world.emu.refreshes();
    let down = Instant::now();
    let downtime = args.downtime.to_string();
    let restarted = tokio::task::spawn_blocking(move || pg_script(&["restart", &downtime]))
        .await
        .expect("the restart");
    // The cluster in MEDIUM_OAUTH_PG_DIR must be the one the replicas use,
    // or nothing they use went down.
    assert_eq!(
        restarted, world.url,
        "restarted a cluster the replicas do not use: drop --database-url or point MEDIUM_OAUTH_PG_DIR at its cluster"
    );
    let outage = down.elapsed();
    println!(
        "restart: `.ci/postgres restart {}` took {outage:?} (fast stop, {} s down, start); {} refreshes answered while it ran",
        args.downtime,
        args.downtime,
        world.emu.refreshes() - refreshes_before
    );
    tokio::time::sleep(AFTER_RESTART).await;
    for &n in &all {
        replicas.send(n, "stop");
    }
    replicas.reports(&all).await;
    let mut kinds: BTreeMap<String, (u64, String)> = BTreeMap::new();
    let (mut calls, mut final_failed, mut reauth, mut lasting) = (0u64, 0u64, 0u64, 0u64);
    for &n in &all {
        println!("replica {n}: {}", replicas.done_line(n));
        for line in &replicas.lines[n] {
            let mut parts = line.splitn(5, ' ');
            match parts.next() {
                Some("error") => {
                    let count: u64 = parts.next().and_then(|c| c.parse().ok()).expect("a count");
                    let transient = parts.next().unwrap_or_default().to_owned();
                    let user = parts.next().unwrap_or_default().to_owned();
                    let kind = parts.next().unwrap_or_default().to_owned();
                    if user == "reauthorization=true" || kind.starts_with("Reauthorization") {
                        reauth += count;
                    }
                    if transient != "transient=true" {
                        lasting += count;
                    }
                    let entry = kinds
                        .entry(kind)
                        .or_insert((0, format!("{transient} {user}")));
                    entry.0 += count;
                }
                Some("done") => {
                    for field in line.split(' ') {
                        if let Some(v) = field.strip_prefix("calls=") {
                            calls += v.parse::<u64>().unwrap_or(0);
                        }
                        if let Some(v) = field.strip_prefix("final_failed=") {
                            final_failed += v.parse::<u64>().unwrap_or(0);
                        }
                    }
                }
                _ => {}
            }
        }
    }
    println!("restart: {calls} token() calls across the replicas; failed calls by kind:");
    if kinds.is_empty() {
        println!("  (none)");
    }
    for (kind, (count, class)) in &kinds {
        println!("  {count:>6}  {kind}  ({class})");
    }
    println!(
        "restart: {reauth} dead-grant errors, {lasting} not transient; after recovery, accounts without a token: {final_failed} (of {} asked by each of {} replicas)",
        args.accounts, args.replicas
    );
    if reauth != 0 || final_failed != 0 {
        println!("restart: FAIL");
        std::process::exit(1);
    }
}
