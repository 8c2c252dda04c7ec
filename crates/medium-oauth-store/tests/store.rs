//! The shared store on both engines, against the emulator over loopback:
//! each test runs once on a SQLite file and once on PostgreSQL.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use medium_oauth::{
    BearerAuth, MIN_TOKEN_LIFETIME, OAuthClient, REFUSAL_COOLDOWN, Token, TokenSource, scopes,
    system_time_to_ms,
};
use medium_oauth_emulator::{Config, Emulator, Fault};
use medium_oauth_store::{
    AccountId, AccountState, Accounts, CACHE_TTL, DEFAULT_MARGIN, DatabaseOptions, Keyring, LEASE,
    LEASE_RENEWAL, MAX_ACCOUNT_ID_BYTES, MAX_PENDING_TTL, StoreError, TokenDatabase,
};
use medium_oauth_test_support as support;
use sqlx::Row;

mod common;
use common::{ManualClock, fail_writes, key, raw_exec, raw_pool};

/// One engine's database for one test.
struct Engine {
    url: String,
    _dir: Option<tempfile::TempDir>,
}

fn engines() -> Vec<Engine> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let sqlite = format!("sqlite:{}", dir.path().join("tokens.db").display());
    vec![
        Engine {
            url: sqlite,
            _dir: Some(dir),
        },
        Engine {
            url: support::postgres_url(),
            _dir: None,
        },
    ]
}

/// Like [`engines`], but the PostgreSQL database is a new one of this
/// test's own: for tests that break the table, which every other test on
/// the shared server uses.
async fn private_engines() -> Vec<Engine> {
    let mut engines = engines();
    let shared = engines[1].url.clone();
    let mut bytes = [0u8; 8];
    getrandom::getrandom(&mut bytes).expect("randomness");
    let name = format!("medium_oauth_test_{}", u64::from_le_bytes(bytes));
    raw_exec(&shared, &format!("CREATE DATABASE {name}")).await;
    let (path, query) = shared
        .split_once('?')
        .map_or((shared.as_str(), None), |(path, query)| (path, Some(query)));
    let (server, _) = path.rsplit_once('/').expect("a database URL");
    engines[1].url = match query {
        Some(query) => format!("{server}/{name}?{query}"),
        None => format!("{server}/{name}"),
    };
    engines
}

/// An account id no other test (or earlier run on the shared server) uses.
fn fresh_account(name: &str) -> AccountId {
    let mut bytes = [0u8; 8];
    getrandom::getrandom(&mut bytes).expect("randomness");
    AccountId::new(format!("{name}-{}", u64::from_le_bytes(bytes))).expect("an account id")
}

struct World {
    emu: Emulator,
    client: OAuthClient,
    clock: ManualClock,
}

async fn world(rotate: bool) -> World {
    let emu = support::emulator(Config {
        rotate_refresh_tokens: rotate,
        detect_refresh_replay: rotate,
        ..support::auto_approving()
    })
    .await;
    let client = support::demo_client(&emu);
    let clock = ManualClock::at(&emu);
    World { emu, client, clock }
}

impl World {
    async fn db(&self, engine: &Engine, ring: Keyring) -> TokenDatabase {
        TokenDatabase::connect(&engine.url, ring)
            .await
            .expect("the database")
    }

    fn accounts(&self, db: TokenDatabase) -> Accounts {
        Accounts::builder(self.client.clone(), db)
            .clock(self.clock.clone())
            .lock_wait(Duration::from_secs(20))
            .build()
    }

    async fn login(&self) -> Token {
        support::login(&self.client, scopes![basicProfile, publishPost]).await
    }

    /// A replica of the service on `engine`, sealing with the tests' key.
    async fn replica(&self, engine: &Engine) -> Accounts {
        self.accounts(self.db(engine, Keyring::new(key("k1", 1))).await)
    }

    /// `accounts`, with `account` connected now, refreshed (Medium rotated
    /// the token) and failed to commit: it keeps the token, with its lease.
    /// Writes work again.
    async fn with_a_kept_token(&self, engine: &Engine, accounts: &Accounts, account: &AccountId) {
        accounts
            .connect(account, &self.login().await)
            .await
            .unwrap();
        self.make_due();
        fail_writes(&engine.url, true).await;
        accounts.token(account).await.unwrap_err();
        fail_writes(&engine.url, false).await;
    }

    /// What a replica started now serves: the token its row holds.
    async fn served_by_a_new_replica(&self, engine: &Engine, account: &AccountId) -> Arc<Token> {
        let replica = self.replica(engine).await;
        replica.token(account).await.expect("the row's token")
    }

    /// A replica that waits for another's lease only briefly: a held
    /// lease shows as `LockTimeout` at once.
    async fn impatient_replica(&self, engine: &Engine) -> Accounts {
        let db = self.db(engine, Keyring::new(key("k1", 1))).await;
        Accounts::builder(self.client.clone(), db)
            .clock(self.clock.clone())
            .lock_wait(Duration::from_millis(300))
            .build()
    }

    /// Past the token's refresh margin.
    fn make_due(&self) {
        let lifetime = self.emu.config().token_lifetime;
        self.clock.advance(&self.emu, lifetime);
    }
}

/// The raw row, as anyone with database access reads it.
async fn raw_row(url: &str, account: &AccountId) -> Vec<(String, Vec<u8>)> {
    let pool = raw_pool(url).await;
    let row = sqlx::query(
        "SELECT client_id, key_id, sealed, dead_reason, lease_owner, CAST(version AS TEXT) AS v \
         FROM medium_oauth_accounts WHERE account_id = $1",
    )
    .bind(account.as_str())
    .fetch_one(&pool)
    .await
    .expect("the row");
    let text = |c: &str| -> Vec<u8> {
        row.try_get::<Option<String>, _>(c)
            .expect("a column")
            .unwrap_or_default()
            .into_bytes()
    };
    vec![
        ("client_id".into(), text("client_id")),
        ("key_id".into(), text("key_id")),
        ("sealed".into(), row.try_get("sealed").expect("sealed")),
        ("dead_reason".into(), text("dead_reason")),
        ("lease_owner".into(), text("lease_owner")),
        ("version".into(), text("v")),
    ]
}

async fn execute(url: &str, sql: &str, account: &AccountId, value: i64) {
    let pool = raw_pool(url).await;
    sqlx::query(sql)
        .bind(value)
        .bind(account.as_str())
        .execute(&pool)
        .await
        .expect("the statement");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connected_account_is_served_from_its_row_then_from_memory() {
    for engine in engines() {
        let w = world(false).await;
        let ring = || Keyring::new(key("k1", 1));
        let first = w.accounts(w.db(&engine, ring()).await);
        let account = fresh_account("served");
        let token = w.login().await;
        first.connect(&account, &token).await.unwrap();
        let requests = w.emu.total_token_requests();
        let got = first.token(&account).await.unwrap();
        assert_eq!(got.access_token(), token.access_token(), "{}", engine.url);
        // Another replica reads the same row.
        let second = w.accounts(w.db(&engine, ring()).await);
        let got = second.token(&account).await.unwrap();
        assert_eq!(got.access_token(), token.access_token());
        assert_eq!(
            got.refresh_token().map(|t| t.expose_secret().to_owned()),
            token.refresh_token().map(|t| t.expose_secret().to_owned())
        );
        assert_eq!(
            w.emu.total_token_requests(),
            requests,
            "no request for a fresh token"
        );
        let other = fresh_account("never");
        let err = second.token(&other).await.unwrap_err();
        assert!(
            matches!(err, StoreError::NotConnected(ref a) if *a == other),
            "{err:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_due_token_is_refreshed_once_across_replicas_and_callers() {
    for engine in engines() {
        let w = world(true).await;
        let account = fresh_account("due");
        let replicas = [
            w.replica(&engine).await,
            w.replica(&engine).await,
            w.replica(&engine).await,
        ];
        let token = w.login().await;
        replicas[0].connect(&account, &token).await.unwrap();
        w.make_due();
        let refreshes = w.emu.refreshes();
        let mut calls = tokio::task::JoinSet::new();
        for replica in &replicas {
            for _ in 0..8 {
                let replica = replica.clone();
                let account = account.clone();
                calls.spawn(async move { replica.token(&account).await });
            }
        }
        let mut seen = Vec::new();
        while let Some(got) = calls.join_next().await {
            let got = got.unwrap().expect("a token");
            seen.push(got.access_token().expose_secret().to_owned());
        }
        assert_eq!(
            w.emu.refreshes() - refreshes,
            1,
            "{}: one refresh in all",
            engine.url
        );
        seen.dedup();
        assert_eq!(seen.len(), 1, "every caller got the same token");
        assert_ne!(seen[0], token.access_token().expose_secret());
        // The rotated token was committed: a new replica reads it.
        let late = w.served_by_a_new_replica(&engine, &account).await;
        assert_eq!(late.access_token().expose_secret(), seen[0]);
        assert_eq!(w.emu.refreshes() - refreshes, 1);
        // Every refresh was answered 200: no replica replayed a token.
        let refused = w
            .emu
            .token_request_log()
            .iter()
            .filter(|r| {
                r.outcome != medium_oauth_emulator::Outcome::Status(200)
                    && r.outcome != medium_oauth_emulator::Outcome::Status(201)
            })
            .count();
        assert_eq!(refused, 0);
        assert_eq!(w.emu.refresh_replays(), 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_grant_is_reported_by_every_replica_without_requests_until_a_new_login() {
    for engine in engines() {
        let w = world(false).await;
        let account = fresh_account("dead");
        let a = w.replica(&engine).await;
        let b = w.replica(&engine).await;
        a.connect(&account, &w.login().await).await.unwrap();
        w.emu.revoke_all_tokens();
        w.make_due();
        let before = w.emu.total_token_requests();
        let err = a.token(&account).await.unwrap_err();
        assert!(err.requires_reauthorization(), "{err:?}");
        assert!(
            matches!(err, StoreError::ReauthorizationRequired { .. }),
            "{err:?}"
        );
        for replica in [&a, &b, &a] {
            let err = replica.token(&account).await.unwrap_err();
            assert!(
                matches!(err, StoreError::ReauthorizationRequired { .. }),
                "{err:?}"
            );
        }
        assert_eq!(
            w.emu.total_token_requests() - before,
            1,
            "one refused refresh, then none"
        );
        let dead = b.needing_reauthorization(None, 1000).await.unwrap();
        assert!(dead.iter().any(|s| s.account == account
            && matches!(s.state, AccountState::NeedsReauthorization { .. })));
        // A new login revives it, on any replica (one that found it dead
        // reads the row for a new login once a REAUTHORIZATION_RECHECK).
        let fresh = w.login().await;
        b.connect(&account, &fresh).await.unwrap();
        let got = until_served(&a, &account).await;
        assert_eq!(got.access_token(), fresh.access_token());
        let dead = b.needing_reauthorization(None, 1000).await.unwrap();
        assert!(!dead.iter().any(|s| s.account == account));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_sealed_at_rest_and_a_wrong_or_missing_key_overwrites_nothing() {
    for engine in engines() {
        let w = world(false).await;
        let account = fresh_account("sealed");
        let right = w.replica(&engine).await;
        let token = w.login().await;
        right.connect(&account, &token).await.unwrap();
        let row = raw_row(&engine.url, &account).await;
        let secrets = [
            token.access_token().expose_secret().to_owned(),
            token.refresh_token().unwrap().expose_secret().to_owned(),
        ];
        for (column, bytes) in &row {
            for secret in &secrets {
                assert!(
                    !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                    "{column} holds a token in plain text"
                );
            }
        }
        w.make_due();
        let wrong = w.accounts(w.db(&engine, Keyring::new(key("k1", 2))).await);
        let err = wrong.token(&account).await.unwrap_err();
        assert!(
            matches!(err, StoreError::WrongKey { ref key_id, .. } if key_id == "k1"),
            "{err:?}"
        );
        let missing = w.accounts(w.db(&engine, Keyring::new(key("k2", 2))).await);
        let err = missing.token(&account).await.unwrap_err();
        assert!(
            matches!(err, StoreError::MissingKey { ref key_id, .. } if key_id == "k1"),
            "{err:?}"
        );
        assert!(!err.is_transient());
        assert_eq!(
            raw_row(&engine.url, &account).await,
            row,
            "nothing overwritten"
        );
        assert_eq!(w.emu.refreshes(), 0, "no refresh without the key");
        // Rotation: the old key reads, the new one writes.
        let rotated = w.accounts(
            w.db(
                &engine,
                Keyring::new(key("k2", 2)).with_old_key(key("k1", 1)),
            )
            .await,
        );
        let got = rotated.token(&account).await.unwrap();
        assert_ne!(got.access_token(), token.access_token());
        let row = raw_row(&engine.url, &account).await;
        assert_eq!(row[1].1, b"k2", "re-encrypted on its write");
        let err = right.token(&account).await.unwrap_err();
        assert!(matches!(err, StoreError::MissingKey { .. }), "{err:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_left_by_a_dead_replica_holds_off_others_until_it_runs_out() {
    for engine in engines() {
        let w = world(true).await;
        let account = fresh_account("lease");
        let accounts = w.impatient_replica(&engine).await;
        accounts.connect(&account, &w.login().await).await.unwrap();
        w.make_due();
        // A replica took the lease and died. Leases run by the database's
        // clock, which is this machine's.
        let real_now = || {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_millis() as i64
        };
        let lease = "UPDATE medium_oauth_accounts SET lease_owner = 'dead', lease_until_ms = $1 \
                     WHERE account_id = $2";
        execute(
            &engine.url,
            lease,
            &account,
            real_now() + LEASE.as_millis() as i64,
        )
        .await;
        let listed = accounts.list(None, 10_000).await.unwrap();
        assert!(
            listed
                .iter()
                .any(|s| s.account == account && s.state == AccountState::Refreshing)
        );
        let err = accounts.token(&account).await.unwrap_err();
        assert!(matches!(err, StoreError::LockTimeout { .. }), "{err:?}");
        assert!(err.is_transient());
        assert_eq!(w.emu.refreshes(), 0);
        // The wall clock of this replica is not the judge: a day ahead, it
        // still waits (once the failure's pause allows it to ask again).
        w.clock.advance(&w.emu, Duration::from_secs(86_400));
        let err = until_waited(&accounts, &account).await;
        assert!(matches!(err, StoreError::LockTimeout { .. }), "{err:?}");
        // Once the lease ran out, the next caller takes it.
        execute(&engine.url, lease, &account, real_now() - 1).await;
        let got = until_served(&accounts, &account).await;
        assert!(!got.expires_within(Duration::from_secs(60), w.clock.now_ms_time()));
        assert_eq!(w.emu.refreshes(), 1);
        let row = raw_row(&engine.url, &account).await;
        assert_eq!(row[4].1, b"", "the lease was given back with the commit");
        // A lease running out implausibly far ahead (a clock set wrong, a
        // bad write) is no lease: it cannot lock an account for a day.
        let other = fresh_account("future");
        accounts.connect(&other, &w.login().await).await.unwrap();
        w.make_due();
        let day_ms = 86_400_000;
        execute(&engine.url, lease, &other, real_now() + day_ms).await;
        accounts
            .token(&other)
            .await
            .expect("a far-future lease is taken");
        assert_eq!(w.emu.refreshes(), 2);
    }
}

trait NowTime {
    fn now_ms_time(&self) -> SystemTime;
}

impl NowTime for ManualClock {
    fn now_ms_time(&self) -> SystemTime {
        medium_oauth::Clock::now(self)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_are_listed_in_pages_and_removed() {
    for engine in engines() {
        let w = world(false).await;
        let accounts = w.replica(&engine).await;
        let prefix = fresh_account("page");
        let ids: Vec<AccountId> = (0..5)
            .map(|i| AccountId::new(format!("{prefix}-{i}")).unwrap())
            .collect();
        let token = w.login().await;
        for id in &ids {
            accounts.connect(id, &token).await.unwrap();
        }
        // Rows written by someone else under ids out of bounds sort among
        // them: not listed, and the page is filled past them, with no
        // more than it was asked for (three of them: the page is filled in
        // three reads, the second of which must ask for only what is
        // missing).
        let blob = if engine.url.starts_with("sqlite:") {
            "X'00'"
        } else {
            "'\\x00'::bytea"
        };
        for n in 1..=3 {
            let id = format!("{prefix}-0{}", "x".repeat(MAX_ACCOUNT_ID_BYTES + n));
            raw_exec(
                &engine.url,
                &format!(
                    "INSERT INTO medium_oauth_accounts (client_id, account_id, key_id, sealed, \
                     version, updated_at_ms) VALUES ('demo-client', '{id}', 'k1', {blob}, 1, 0)"
                ),
            )
            .await;
        }
        let before = AccountId::new(format!("{prefix}-")).unwrap();
        let first = accounts.list(Some(&before), 3).await.unwrap();
        let names: Vec<_> = first.iter().map(|s| s.account.clone()).collect();
        assert_eq!(names, ids[..3]);
        let rest = accounts.list(Some(&names[2]), 2).await.unwrap();
        assert_eq!(
            rest.iter().map(|s| s.account.clone()).collect::<Vec<_>>(),
            ids[3..]
        );
        assert!(rest.iter().all(|s| matches!(
            s.state,
            AccountState::Valid {
                expires_at: Some(_)
            }
        )));
        assert!(accounts.remove(&ids[0]).await.unwrap());
        assert!(!accounts.remove(&ids[0]).await.unwrap());
        let err = accounts.token(&ids[0]).await.unwrap_err();
        assert!(matches!(err, StoreError::NotConnected(_)), "{err:?}");
        assert!(accounts.token(&ids[1]).await.is_ok());
    }
}

/// `refresh_now` forces a refresh under the lease whatever the expiry (an
/// audit, or rotating every grant after a leak), and every replica then
/// serves the new token; an account's `source` serves it too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_now_rotates_a_fresh_token_for_every_replica() {
    for engine in engines() {
        let w = world(true).await;
        let account = fresh_account("now");
        let a = w.replica(&engine).await;
        let b = w.replica(&engine).await;
        let token = w.login().await;
        a.connect(&account, &token).await.unwrap();
        assert_eq!(
            b.token(&account).await.unwrap().access_token(),
            token.access_token()
        );
        let fresh = a.refresh_now(&account).await.unwrap();
        assert_ne!(fresh.access_token(), token.access_token());
        assert_eq!(w.emu.refreshes(), 1);
        // B re-reads the row within CACHE_TTL.
        w.clock.advance(&w.emu, CACHE_TTL);
        assert_eq!(
            b.token(&account).await.unwrap().access_token(),
            fresh.access_token()
        );
        let source = b.source(&account);
        assert_eq!(
            source.token().await.unwrap().access_token(),
            fresh.access_token()
        );
        assert_eq!(w.emu.refreshes(), 1);
        assert_eq!(w.emu.refresh_replays(), 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_debug_output_or_errors() {
    for engine in engines() {
        let w = world(false).await;
        let account = fresh_account("quiet");
        let secret_key = key("k1", 0x5A);
        let ring = Keyring::new(secret_key);
        let db = w.db(&engine, ring).await;
        let accounts = w.accounts(db.clone());
        let token = w.login().await;
        accounts.connect(&account, &token).await.unwrap();
        let got = accounts.token(&account).await.unwrap();
        w.emu.revoke_all_tokens();
        w.make_due();
        let err = accounts.token(&account).await.unwrap_err();
        let printed = format!(
            "{db:?} {accounts:?} {:?} {err} {err:?} {:?}",
            accounts.source(&account),
            accounts.list(None, 10).await.unwrap()
        );
        for secret in [
            got.access_token().expose_secret(),
            got.refresh_token().unwrap().expose_secret(),
            "postgres://",
            "90, 90",
        ] {
            assert!(!printed.contains(secret), "{secret} in {printed}");
        }
    }
}

fn sqlite_only() -> Engine {
    engines().remove(0)
}

/// Medium rotates the refresh token, then the commit fails (the database
/// restarts, the disk fills): the new token is kept, no replica sends the
/// old one meanwhile, and once the database takes writes again it is
/// committed in the background, though nobody asks this replica again.
/// (SQLite alone: a trigger makes the commit fail; the path is the same
/// on both engines.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_commit_keeps_the_rotated_token_and_the_lease() {
    let engine = sqlite_only();
    let w = world(true).await;
    let account = fresh_account("commitfail");
    let a = w.replica(&engine).await;
    let b = w.impatient_replica(&engine).await;
    a.connect(&account, &w.login().await).await.unwrap();
    w.make_due();
    fail_writes(&engine.url, true).await;
    let err = a.token(&account).await.unwrap_err();
    assert!(matches!(err, StoreError::Database(_)), "{err:?}");
    assert!(err.is_transient());
    assert_eq!(w.emu.refreshes(), 1, "Medium rotated the refresh token");
    // Another replica may not read the old refresh token: the lease holds.
    let err = b.token(&account).await.unwrap_err();
    assert!(matches!(err, StoreError::LockTimeout { .. }), "{err:?}");
    fail_writes(&engine.url, false).await;
    // Only the other replica asks: it waits out A's lease until A's
    // background commit lands, then adopts the committed token. The
    // deadline bounds the test, not the store.
    let got = until_served(&b, &account).await;
    assert_eq!(w.emu.refreshes(), 1, "committed, not refreshed again");
    assert_eq!(w.emu.refresh_replays(), 0);
    let row = raw_row(&engine.url, &account).await;
    assert!(
        row[4].1.is_empty(),
        "the commit gave the lease back: {row:?}"
    );
    assert_eq!(
        a.token(&account).await.unwrap().access_token(),
        got.access_token()
    );
}

/// A kept token that expired, or nearly, while the database was away is
/// committed (its row then holds the grant's newest refresh token) but not
/// served: it is refreshed first. (The model test found this.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_token_that_expired_meanwhile_is_refreshed_not_served() {
    for left in [Duration::from_secs(30), Duration::ZERO] {
        kept_token_left_with(left).await;
    }
}

/// A kept token is committed with `left` of its life (by the test's
/// clock: Medium's runs ahead by the real time the test took).
async fn kept_token_left_with(left: Duration) {
    let engine = sqlite_only();
    let w = world(true).await;
    let account = fresh_account("keptexpired");
    let a = w.impatient_replica(&engine).await;
    a.connect(&account, &w.login().await).await.unwrap();
    w.make_due();
    fail_writes(&engine.url, true).await;
    let _ = a.token(&account).await;
    assert_eq!(w.emu.refreshes(), 1);
    let lifetime = w.emu.config().token_lifetime;
    w.clock.advance(&w.emu, lifetime - left);
    fail_writes(&engine.url, false).await;
    let got = until_served(&a, &account).await;
    let now = medium_oauth::Clock::now(&w.clock);
    assert!(
        !got.expires_within(MIN_TOKEN_LIFETIME, now),
        "{left:?} left"
    );
    assert_eq!(w.emu.refreshes(), 2, "the kept token was refreshed");
    assert_eq!(w.emu.refresh_replays(), 0);
}

/// A kept token is committed on the one failure schedule every caller of
/// the replica shares: calls within its pause fail at once with the
/// failure (sending nothing), and once it has passed the kept token is
/// committed and served, with no second refresh.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_token_is_committed_on_the_shared_schedule() {
    let engine = sqlite_only();
    let w = world(true).await;
    let account = fresh_account("commitcall");
    let a = w.impatient_replica(&engine).await;
    w.with_a_kept_token(&engine, &a, &account).await;
    let err = a.token(&account).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Database(_)),
        "the failure, within its pause: {err:?}"
    );
    let got = until_served(&a, &account).await;
    assert_eq!(w.emu.refreshes(), 1, "committed, not refreshed again");
    assert_eq!(w.emu.refresh_replays(), 0);
    let late = w.served_by_a_new_replica(&engine, &account).await;
    assert_eq!(late.access_token(), got.access_token());
}

/// Asks `accounts` (an impatient replica) for `account` until a call
/// waits for the lease again rather than answering at once with the
/// failure its schedule keeps, and returns what that call answered.
async fn until_waited(accounts: &Accounts, account: &AccountId) -> StoreError {
    let give_up = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let started = std::time::Instant::now();
        let err = accounts.token(account).await.unwrap_err();
        // An answer kept from the schedule comes at once; a lease asked
        // for again is polled for at least its first pauses.
        if started.elapsed() >= Duration::from_millis(50) {
            return err;
        }
        assert!(std::time::Instant::now() < give_up, "never waited: {err:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Asks `accounts` for `account` until it answers with a token: a replica
/// waiting out a schedule or a lease answers with transient errors until
/// then, and one that found the grant dead or gone re-reads the row once a
/// `REAUTHORIZATION_RECHECK`. The deadline bounds the test, not the store.
async fn until_served(accounts: &Accounts, account: &AccountId) -> Arc<Token> {
    let give_up = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        match accounts.token(account).await {
            Ok(token) => return token,
            Err(e)
                if (e.is_transient() || e.requires_reauthorization())
                    && std::time::Instant::now() < give_up =>
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("never served: {e:?}"),
        }
    }
}

/// A replica whose wall clock runs ahead (an NTP step, a resumed VM) does
/// not take a lease another replica holds: leases run by the database's
/// clock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_with_a_clock_ahead_does_not_take_a_held_lease() {
    for engine in engines() {
        let w = world(true).await;
        let account = fresh_account("skew");
        let a = w.replica(&engine).await;
        a.connect(&account, &w.login().await).await.unwrap();
        w.make_due();
        let ahead = ManualClock::at_ms(w.clock.now_ms() + LEASE.as_millis() as i64 + 1_000);
        let b = Accounts::builder(
            w.client.clone(),
            w.db(&engine, Keyring::new(key("k1", 1))).await,
        )
        .clock(ahead)
        .lock_wait(Duration::from_secs(20))
        .build();
        // a's refresh is slow: b arrives while a holds the lease.
        w.emu
            .inject_faults([medium_oauth_emulator::Fault::Delay(Duration::from_secs(2))]);
        let a_call = {
            let (a, account) = (a.clone(), account.clone());
            tokio::spawn(async move { a.token(&account).await })
        };
        while !b
            .list(None, 10_000)
            .await
            .unwrap()
            .iter()
            .any(|s| s.account == account && s.state == AccountState::Refreshing)
        {
            tokio::task::yield_now().await;
        }
        let b_got = b.token(&account).await.expect("b adopts a's token");
        let a_got = a_call.await.unwrap().expect("a refreshed");
        assert_eq!(a_got.access_token(), b_got.access_token());
        assert_eq!(w.emu.refreshes(), 1, "{}", engine.url);
        assert_eq!(w.emu.refresh_replays(), 0);
    }
}

/// The application keeps its own sqlx migrations in the same database: the
/// store still starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_applications_own_sqlx_migrations_do_not_stop_the_store() {
    let engine = sqlite_only();
    TokenDatabase::connect(&engine.url, Keyring::new(key("k1", 1)))
        .await
        .expect("first start");
    raw_exec(
        &engine.url,
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (20240101000000, 'app users', 1, X'00', 1)",
    )
    .await;
    TokenDatabase::connect(&engine.url, Keyring::new(key("k1", 1)))
        .await
        .expect("the store starts beside the application's migrations");
}

/// Environment of a replica process started by
/// `several_replica_processes_refresh_each_account_once`.
const REPLICA_ENV: &str = "MEDIUM_OAUTH_STORE_TEST_REPLICA";

/// A replica process: a no-op unless started by the test below, which
/// passes `url server prefix count` in [`REPLICA_ENV`].
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_process() {
    let Ok(spec) = std::env::var(REPLICA_ENV) else {
        return;
    };
    let parts: Vec<&str> = spec.split(' ').collect();
    let [url, server, prefix, count] = parts[..] else {
        panic!("bad replica spec {spec}");
    };
    let client = support::builder_for(&format!("{server}/v1"))
        .authorization_server(format!("{server}/m/oauth"))
        .build()
        .unwrap();
    let db = TokenDatabase::connect(url, Keyring::new(key("k1", 1)))
        .await
        .unwrap();
    let accounts = Accounts::builder(client, db).build();
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..count.parse::<usize>().unwrap() {
        let (accounts, id) = (
            accounts.clone(),
            AccountId::new(format!("{prefix}-{i}")).unwrap(),
        );
        calls.spawn(async move { accounts.token(&id).await.map(drop) });
    }
    let mut ok = 0;
    while let Some(done) = calls.join_next().await {
        done.unwrap().expect("a token");
        ok += 1;
    }
    println!("replica ok={ok}");
}

/// Four processes ask at once for every account's token, all due, with
/// rotation and replay detection on: one refresh per account, no replay,
/// and every row holds the grant's live refresh token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_replica_processes_refresh_each_account_once() {
    const ACCOUNTS: usize = 40;
    for engine in engines() {
        let w = world(true).await;
        let accounts = w.replica(&engine).await;
        let prefix = fresh_account("procs");
        for i in 0..ACCOUNTS {
            let token = w.login().await;
            // Stored as due now: every replica must refresh it.
            let due = Token::new(
                token.access_token().clone(),
                token.refresh_token().cloned(),
                Some(SystemTime::now()),
                token.scopes().clone(),
            );
            let id = AccountId::new(format!("{prefix}-{i}")).unwrap();
            accounts.connect(&id, &due).await.unwrap();
        }
        let spec = format!("{} {} {prefix} {ACCOUNTS}", engine.url, w.emu.base_url());
        let replicas: Vec<_> = (0..4)
            .map(|_| {
                std::process::Command::new(std::env::current_exe().unwrap())
                    .args([
                        "--exact",
                        "replica_process",
                        "--nocapture",
                        "--test-threads=1",
                    ])
                    .env(REPLICA_ENV, &spec)
                    .stdout(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for replica in replicas {
            let out = tokio::task::spawn_blocking(move || replica.wait_with_output())
                .await
                .unwrap()
                .unwrap();
            assert!(out.status.success(), "{}", engine.url);
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                stdout.contains(&format!("replica ok={ACCOUNTS}")),
                "{stdout}"
            );
        }
        assert_eq!(w.emu.refreshes(), ACCOUNTS as u64, "{}", engine.url);
        assert_eq!(w.emu.refresh_replays(), 0);
        // Nothing lost: one more refresh of each, with what its row holds.
        for i in 0..ACCOUNTS {
            let id = AccountId::new(format!("{prefix}-{i}")).unwrap();
            let stored = accounts.stored_token(&id).await.unwrap().expect("a row");
            w.client
                .refresh(stored.refresh_token().expect("a refresh token"))
                .await
                .expect("the row holds the live refresh token");
        }
        assert_eq!(w.emu.refreshes(), 2 * ACCOUNTS as u64);
    }
}

/// The browser binding of the tests' logins: a cookie's value, say.
const BROWSER: &str = "a-browser-cookie-of-32-characters";

/// The `state` parameter of an authorize URL or a callback.
fn state_of(url: &str) -> String {
    medium_oauth::Url::parse(url)
        .expect("a URL")
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .expect("a state")
}

/// A callback with its `state` replaced.
fn with_state(callback: &str, state: &str) -> String {
    let mut url = medium_oauth::Url::parse(callback).expect("a URL");
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "state" {
                state.into()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    url.query_pairs_mut().clear().extend_pairs(pairs);
    url.into()
}

fn login_error(result: Result<Token, StoreError>) -> medium_oauth::Error {
    match result {
        Err(StoreError::Login(e)) => e,
        other => panic!("expected a login error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_begun_on_one_replica_finishes_on_another_exactly_once() {
    let world = world(false).await;
    for engine in engines() {
        let (a, b) = (world.replica(&engine).await, world.replica(&engine).await);
        let url = a
            .begin_login(scopes![basicProfile, publishPost], BROWSER)
            .await
            .unwrap();
        let state = state_of(url.as_str());
        let callback = support::approve(&url).await;
        let code = medium_oauth::Url::parse(&callback)
            .unwrap()
            .query_pairs()
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v.into_owned())
            .unwrap();

        // At rest the state is neither readable nor its row findable by it.
        let pool = raw_pool(&engine.url).await;
        let rows = sqlx::query(
            "SELECT state_digest, key_id, sealed, scopes FROM medium_oauth_logins \
             WHERE client_id = 'demo-client'",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        assert!(!rows.is_empty());
        for row in &rows {
            let sealed: Vec<u8> = row.get("sealed");
            assert!(!sealed.windows(state.len()).any(|w| w == state.as_bytes()));
            for column in ["state_digest", "key_id", "scopes"] {
                assert!(!row.get::<String, _>(column).contains(&state));
            }
        }

        // A forged state finds nothing and leaves the real login pending.
        let forged = with_state(&callback, &"0".repeat(state.len()));
        assert!(matches!(
            login_error(b.finish_login(&forged, BROWSER).await),
            medium_oauth::Error::CsrfMismatch
        ));
        assert!(matches!(
            login_error(b.finish_login(&with_state(&callback, ""), BROWSER).await),
            medium_oauth::Error::CsrfMismatch
        ));

        // The right callback in another browser (login CSRF) matches
        // nothing either, and leaves the login to its own browser.
        assert!(matches!(
            login_error(
                b.finish_login(&callback, "someone-elses-browser-cookie")
                    .await
            ),
            medium_oauth::Error::CsrfMismatch
        ));
        assert!(matches!(
            b.finish_login(&callback, "short").await,
            Err(StoreError::WeakLoginBinding)
        ));

        let token = b.finish_login(&callback, BROWSER).await.expect("the login");
        assert!(token.scopes().contains(medium_oauth::Scope::PublishPost));
        world
            .client
            .me(token.access_token())
            .await
            .expect("a working token");

        // Single use, on every replica.
        for replica in [&a, &b] {
            let err = replica.finish_login(&callback, BROWSER).await;
            let printed = format!("{err:?} {}", err.as_ref().unwrap_err());
            assert!(
                !printed.contains(&state) && !printed.contains(&code),
                "{printed}"
            );
            assert!(matches!(
                login_error(err),
                medium_oauth::Error::CsrfMismatch
            ));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_login_expires_by_the_database_clock_and_a_denial_uses_it_up() {
    let world = world(false).await;
    for engine in engines() {
        let replica = world.replica(&engine).await;

        let url = replica
            .begin_login(scopes![basicProfile], BROWSER)
            .await
            .unwrap();
        let callback = support::approve(&url).await;
        raw_exec(
            &engine.url,
            &format!(
                "UPDATE medium_oauth_logins SET expires_at_ms = 1 WHERE client_id = 'demo-client' \
                 AND state_digest = '{}'",
                login_digest(&state_of(url.as_str()), BROWSER)
            ),
        )
        .await;
        assert!(matches!(
            login_error(replica.finish_login(&callback, BROWSER).await),
            medium_oauth::Error::AuthorizationExpired
        ));
        // Taken out even so: the same callback now matches nothing.
        assert!(matches!(
            login_error(replica.finish_login(&callback, BROWSER).await),
            medium_oauth::Error::CsrfMismatch
        ));

        let url = replica
            .begin_login(scopes![basicProfile], BROWSER)
            .await
            .unwrap();
        let state = state_of(url.as_str());
        let denial = format!("{}?error=access_denied&state={state}", support::REDIRECT);
        assert!(matches!(
            login_error(replica.finish_login(&denial, BROWSER).await),
            medium_oauth::Error::Denied { .. }
        ));
        assert!(matches!(
            login_error(replica.finish_login(&denial, BROWSER).await),
            medium_oauth::Error::CsrfMismatch
        ));
    }
}

/// A client whose pending logins live longer than a day has them kept for
/// a day: the expiry stored is a day ahead by the database's clock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_login_is_kept_a_day_at_most() {
    let w = world(false).await;
    let week = Duration::from_secs(7 * 24 * 60 * 60);
    let client = support::demo_builder(&w.emu)
        .pending_ttl(week)
        .build()
        .unwrap();
    for engine in engines() {
        let db = w.db(&engine, Keyring::new(key("k1", 1))).await;
        let replica = Accounts::builder(client.clone(), db).build();
        let url = replica
            .begin_login(scopes![basicProfile], BROWSER)
            .await
            .unwrap();
        let digest = login_digest(&state_of(url.as_str()), BROWSER);
        let pool = raw_pool(&engine.url).await;
        let expires_at_ms: i64 = sqlx::query(&format!(
            "SELECT expires_at_ms FROM medium_oauth_logins WHERE state_digest = '{digest}'"
        ))
        .fetch_one(&pool)
        .await
        .unwrap()
        .get(0);
        let now_ms = system_time_to_ms(SystemTime::now());
        let ahead = Duration::from_millis((expires_at_ms - now_ms).unsigned_abs());
        // The database's clock and this one read a minute apart at most.
        let (day, slack) = (Duration::from_secs(24 * 60 * 60), Duration::from_secs(60));
        assert!(ahead > day - slack && ahead < day + slack, "{ahead:?}");
        assert_eq!(MAX_PENDING_TTL, day, "the documented cap");
    }
}

/// The key a pending login's row is found by, as the store computes it.
fn login_digest(state: &str, browser: &str) -> String {
    use sha2::Digest;
    let mut hash = sha2::Sha256::new();
    for part in [state, browser] {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part.as_bytes());
    }
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// A flood of unfinished logins stops at the cap instead of filling the
/// database, and expired ones are swept to make room.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_logins_are_capped_and_expired_ones_make_room() {
    let world = world(false).await;
    for engine in engines() {
        // A client of its own: the cap is per client, and other tests share
        // the PostgreSQL server.
        let client_id = format!("cap-{}", fresh_account("c").as_str());
        let client = OAuthClient::builder(
            medium_oauth::ClientId::new(client_id.clone()),
            medium_oauth::ClientSecret::new("a-secret"),
            support::REDIRECT,
        )
        .authorization_server(world.emu.authorization_server())
        // Kept no longer than MAX_PENDING_TTL, whatever the client says.
        .pending_ttl(Duration::MAX)
        .build()
        .unwrap();
        let db = world.db(&engine, Keyring::new(key("k1", 1))).await;
        let accounts = Accounts::builder(client, db).build();
        let blob = if engine.url.starts_with("sqlite:") {
            "X'00'"
        } else {
            "'\\x00'::bytea"
        };
        raw_exec(
            &engine.url,
            &format!(
                "INSERT INTO medium_oauth_logins \
                 (client_id, state_digest, key_id, sealed, scopes, expires_at_ms) \
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {max}) \
                 SELECT '{client_id}', 'flood' || i, 'k1', {blob}, '', 9000000000000000 FROM n",
                max = medium_oauth_store::MAX_PENDING_LOGINS,
            ),
        )
        .await;
        let err = accounts
            .begin_login(scopes![basicProfile], BROWSER)
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::TooManyPendingLogins { limit } if limit == medium_oauth_store::MAX_PENDING_LOGINS),
            "{err:?}"
        );
        raw_exec(
            &engine.url,
            &format!(
                "UPDATE medium_oauth_logins SET expires_at_ms = 1 \
                 WHERE client_id = '{client_id}' AND state_digest = 'flood1'"
            ),
        )
        .await;
        accounts
            .begin_login(scopes![basicProfile], BROWSER)
            .await
            .expect("room made by the expired login");
        let pool = raw_pool(&engine.url).await;
        let expires: i64 = sqlx::query(&format!(
            "SELECT expires_at_ms FROM medium_oauth_logins WHERE client_id = '{client_id}' \
             AND state_digest NOT LIKE 'flood%'"
        ))
        .fetch_one(&pool)
        .await
        .unwrap()
        .get(0);
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        let day_ms = medium_oauth_store::MAX_PENDING_TTL.as_millis() as i64;
        assert!(expires <= now_ms + day_ms + 60_000, "{expires} vs {now_ms}");
        assert!(expires > now_ms + day_ms - 60_000, "{expires} vs {now_ms}");
        raw_exec(
            &engine.url,
            &format!("DELETE FROM medium_oauth_logins WHERE client_id = '{client_id}'"),
        )
        .await;
    }
}

/// A source over an account store whose save fails after Medium rotated
/// A new login written while another replica's refresh of the account is
/// under way stands: that refresh's commit misses the row, and the replica
/// serves the new login instead of what it refreshed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_login_written_during_a_refresh_stands() {
    for engine in engines() {
        let w = world(true).await;
        let account = fresh_account("midlogin");
        let a = w.replica(&engine).await;
        let b = w.replica(&engine).await;
        a.connect(&account, &w.login().await).await.unwrap();
        w.make_due();
        let login = w.login().await;
        // Medium holds A's refresh long enough for B's login to land.
        w.emu.inject_faults([Fault::Delay(Duration::from_secs(2))]);
        let refreshing = tokio::spawn({
            let a = a.clone();
            let account = account.clone();
            async move { a.token(&account).await }
        });
        until_leased(&engine.url, &account).await;
        b.connect(&account, &login).await.unwrap();
        let served = refreshing.await.unwrap().unwrap();
        assert_eq!(served.access_token(), login.access_token());
        let stored = b.stored_token(&account).await.unwrap().unwrap();
        assert_eq!(stored.access_token(), login.access_token());
        assert_eq!(w.emu.refreshes(), 1);
    }
}

/// Waits until a replica holds `account`'s lease.
async fn until_leased(url: &str, account: &AccountId) {
    let give_up = std::time::Instant::now() + Duration::from_secs(30);
    while raw_row(url, account).await[4].1.is_empty() {
        assert!(std::time::Instant::now() < give_up, "never leased");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A kept token never lands on a row that moved on: after a new login on
/// another replica cleared its lease, after the account was removed and
/// connected again (its version numbers starting over), after a removal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_token_never_overwrites_a_new_login() {
    let engine = sqlite_only();
    let w = world(true).await;

    let account = fresh_account("keptlogin");
    let a = w.impatient_replica(&engine).await;
    let b = w.replica(&engine).await;
    w.with_a_kept_token(&engine, &a, &account).await;
    let login = w.login().await;
    b.connect(&account, &login).await.unwrap();
    // A's kept token misses; A adopts the login once its schedule lets it
    // try (or its background commit found the row changed).
    let got = until_served(&a, &account).await;
    assert_eq!(got.access_token(), login.access_token());
    let stored = b.stored_token(&account).await.unwrap().unwrap();
    assert_eq!(stored.access_token(), login.access_token());

    let account = fresh_account("keptreadd");
    let a = w.impatient_replica(&engine).await;
    w.with_a_kept_token(&engine, &a, &account).await;
    assert!(a.remove(&account).await.unwrap());
    let login = w.login().await;
    a.connect(&account, &login).await.unwrap();
    let got = until_served(&a, &account).await;
    assert_eq!(got.access_token(), login.access_token());
    let late = w.served_by_a_new_replica(&engine, &account).await;
    assert_eq!(late.access_token(), login.access_token());

    // Removed on another replica: the removal stands.
    let account = fresh_account("keptremoved");
    let a = w.impatient_replica(&engine).await;
    w.with_a_kept_token(&engine, &a, &account).await;
    assert!(b.remove(&account).await.unwrap());
    let give_up = std::time::Instant::now() + Duration::from_secs(30);
    let err = loop {
        match a.token(&account).await {
            Err(e) if e.is_transient() && std::time::Instant::now() < give_up => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => break other.unwrap_err(),
        }
    };
    assert!(matches!(err, StoreError::NotConnected(_)), "{err:?}");
    assert!(
        b.stored_token(&account).await.unwrap().is_none(),
        "it came back"
    );
}

/// A replica whose kept lease was taken by another (the database was away
/// past the lease) does not go on as if it held it: its kept token misses
/// the row, it waits for the lease like anyone, and sends nothing
/// meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_whose_kept_lease_was_taken_waits_like_anyone() {
    let engine = sqlite_only();
    let w = world(true).await;
    let account = fresh_account("keptlost");
    let a = w.impatient_replica(&engine).await;
    w.with_a_kept_token(&engine, &a, &account).await;
    raw_exec(
        &engine.url,
        &format!(
            "UPDATE medium_oauth_accounts SET lease_owner = 'another replica' \
             WHERE account_id = '{account}'"
        ),
    )
    .await;
    let refreshes = w.emu.refreshes();
    let give_up = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let err = a.token(&account).await.unwrap_err();
        assert!(err.is_transient(), "{err:?}");
        if matches!(err, StoreError::LockTimeout { .. }) {
            break;
        }
        assert!(std::time::Instant::now() < give_up, "{err:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        w.emu.refreshes(),
        refreshes,
        "nothing sent without the lease"
    );
}

/// A refresh that runs out of time under its lease (Medium may yet rotate
/// the token) leaves the lease to run out: no replica may send the old
/// refresh token before then.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_refresh_leaves_its_lease_to_run_out() {
    let engine = sqlite_only();
    let w = world(true).await;
    let account = fresh_account("timedout");
    // A query deadline just short of the lease leaves the refresh half a
    // second of it: Medium, held for three, does not answer in time.
    let options = DatabaseOptions {
        query_deadline: LEASE - Duration::from_millis(500),
        ..DatabaseOptions::default()
    };
    let ring = Keyring::new(key("k1", 1));
    let db = TokenDatabase::connect_with(&engine.url, ring, options)
        .await
        .unwrap();
    let a = w.accounts(db);
    a.connect(&account, &w.login().await).await.unwrap();
    w.make_due();
    w.emu.inject_faults([Fault::Delay(Duration::from_secs(3))]);
    let err = a.token(&account).await.unwrap_err();
    assert!(matches!(err, StoreError::RefreshTimedOut { .. }), "{err:?}");
    let other = w.impatient_replica(&engine).await;
    let err = other.token(&account).await.unwrap_err();
    assert!(
        matches!(err, StoreError::LockTimeout { .. }),
        "the lease was given back: {err:?}"
    );
}

/// A lease whose refresh ended without a commit (Medium answered 503) is
/// given back at once: no replica is held off for the rest of the lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_whose_refresh_failed_is_given_back() {
    for engine in engines() {
        let w = world(false).await;
        let account = fresh_account("dropped");
        let accounts = w.replica(&engine).await;
        accounts.connect(&account, &w.login().await).await.unwrap();
        w.make_due();
        w.emu.inject_faults([Fault::Status(503)]);
        let err = accounts.token(&account).await.unwrap_err();
        assert!(err.is_transient(), "{err:?}");
        // Its wait (20 s) is shorter than the lease: only a lease given
        // back lets it refresh.
        let other = w.replica(&engine).await;
        other
            .token(&account)
            .await
            .expect("the lease was given back");
        assert_eq!(w.emu.refreshes(), 1);
    }
}

/// A token falls due exactly at its due time, the margin before expiry. A
/// refresh that then fails for a moment (Medium answers 503) costs nothing
/// while the token the replica holds has more than `MIN_TOKEN_LIFETIME`
/// left, and is a transient error once it has not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_due_token_is_served_through_a_transient_failure_until_nearly_expired() {
    let engine = sqlite_only();
    let w = world(false).await;
    let account = fresh_account("transient");
    let a = w.replica(&engine).await;
    a.connect(&account, &w.login().await).await.unwrap();
    let first = a.token(&account).await.unwrap();
    let expires_ms = system_time_to_ms(first.expires_at().unwrap());
    let due_ms = expires_ms - DEFAULT_MARGIN.as_millis() as i64;
    let to = |ms: i64| Duration::from_millis((ms - w.clock.now_ms()) as u64);

    w.clock.advance(&w.emu, to(due_ms - 1));
    assert_eq!(
        a.token(&account).await.unwrap().access_token(),
        first.access_token()
    );
    assert_eq!(w.emu.refreshes(), 0, "not yet due");

    w.emu.inject_faults([Fault::Status(503)]);
    w.clock.advance(&w.emu, to(due_ms));
    let served = a.token(&account).await.expect("the token still held");
    assert_eq!(served.access_token(), first.access_token());
    assert_eq!(w.emu.queued_faults(), 0, "due: a refresh was tried");

    // Within a minute of expiry: refused, whether this call waits out the
    // failure's pause or tries again and meets the next fault.
    w.emu.inject_faults([Fault::Status(503)]);
    let near_ms = expires_ms - MIN_TOKEN_LIFETIME.as_millis() as i64 + 1;
    w.clock.advance(&w.emu, to(near_ms));
    let err = a.token(&account).await.unwrap_err();
    assert!(err.is_transient(), "{err:?}");
}

/// Tokens issued for less than twice the margin (an hour, against a day)
/// are refreshed halfway through their life, once, not on every call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_lived_token_is_refreshed_halfway_once_not_on_every_call() {
    let hour = Duration::from_secs(3600);
    let emu = support::emulator(Config {
        token_lifetime: hour,
        rotate_refresh_tokens: true,
        detect_refresh_replay: true,
        ..support::auto_approving()
    })
    .await;
    let clock = ManualClock::at(&emu);
    let w = World {
        client: support::demo_client(&emu),
        emu,
        clock,
    };
    for engine in engines() {
        let account = fresh_account("short");
        let a = w.replica(&engine).await;
        let b = w.replica(&engine).await;
        let refreshes = w.emu.refreshes();
        a.connect(&account, &w.login().await).await.unwrap();
        for replica in [&a, &b, &a, &b] {
            replica.token(&account).await.unwrap();
        }
        assert_eq!(w.emu.refreshes(), refreshes, "fresh for half its life");
        w.clock.advance(&w.emu, hour / 2 + Duration::from_secs(1));
        let first = a.token(&account).await.unwrap();
        for replica in [&a, &b, &b, &a] {
            assert_eq!(
                replica.token(&account).await.unwrap().access_token(),
                first.access_token()
            );
        }
        assert_eq!(w.emu.refreshes(), refreshes + 1);
        assert_eq!(w.emu.refresh_replays(), 0);
    }
}

// Issue 22's findings, each a test of its own, on both engines.

/// Makes every read and write of the accounts table fail, as a database
/// that is away does (`false`: it is back). Renaming the table fails
/// statements the way a missing relation does, on both engines.
async fn database_away(url: &str, away: bool) {
    let sql = if away {
        "ALTER TABLE medium_oauth_accounts RENAME TO medium_oauth_accounts_away"
    } else {
        "ALTER TABLE medium_oauth_accounts_away RENAME TO medium_oauth_accounts"
    };
    raw_exec(url, sql).await;
}

/// Finding 1: an outage of the database longer than `CACHE_TTL` refuses no
/// token that is still good. The token stays in use through the re-reads
/// that fail, and through its due time (the margin exists for outages),
/// until it is within `MIN_TOKEN_LIFETIME` of expiry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_past_the_cache_ttl_still_serves_a_valid_token() {
    for engine in private_engines().await {
        let w = world(false).await;
        let account = fresh_account("outage");
        let a = w.replica(&engine).await;
        a.connect(&account, &w.login().await).await.unwrap();
        let token = a.token(&account).await.unwrap();
        database_away(&engine.url, true).await;
        for _ in 0..3 {
            w.clock.advance(&w.emu, CACHE_TTL + Duration::from_secs(1));
            let got = a.token(&account).await.expect("served through the outage");
            assert_eq!(got.access_token(), token.access_token());
        }
        // Due now: a refresh cannot be committed, so none is sent, and the
        // token held is served.
        let expires_ms = system_time_to_ms(token.expires_at().unwrap());
        let due_ms = expires_ms - DEFAULT_MARGIN.as_millis() as i64;
        w.clock.advance(
            &w.emu,
            Duration::from_millis((due_ms - w.clock.now_ms()) as u64 + 1000),
        );
        let got = a.token(&account).await.expect("served while due");
        assert_eq!(got.access_token(), token.access_token());
        assert_eq!(w.emu.refreshes(), 0);
        database_away(&engine.url, false).await;
    }
}

/// Finding 2: while Medium's token endpoint fails, a token that is due but
/// valid for another day is served, by a replica that never saw it before
/// as by any other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_replica_serves_a_due_token_while_medium_fails() {
    for engine in engines() {
        let w = world(false).await;
        let account = fresh_account("due503");
        let a = w.replica(&engine).await;
        a.connect(&account, &w.login().await).await.unwrap();
        let token = a.token(&account).await.unwrap();
        let expires_ms = system_time_to_ms(token.expires_at().unwrap());
        let due_ms = expires_ms - DEFAULT_MARGIN.as_millis() as i64;
        w.clock.advance(
            &w.emu,
            Duration::from_millis((due_ms - w.clock.now_ms()) as u64 + 60_000),
        );
        w.emu
            .inject_faults(std::iter::repeat_n(Fault::Status(503), 100));
        for _ in 0..3 {
            let fresh = w.replica(&engine).await;
            let got = fresh.token(&account).await.expect("the due token");
            assert_eq!(got.access_token(), token.access_token());
        }
        w.emu.take_faults();
    }
}

/// Finding 3: the failure schedule is the engine's, which re-reading the
/// row does not reset: a caller every 100 ms against a failing endpoint,
/// with the row re-read on every call, sends the requests that "1 s
/// doubling" allows and no more; and a `Retry-After` of 45 s holds off
/// every later call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_failure_schedule_survives_rereads_and_keeps_a_long_retry_after() {
    for engine in engines() {
        let w = world(false).await;
        let account = fresh_account("schedule");
        let a = w.replica(&engine).await;
        a.connect(&account, &w.login().await).await.unwrap();
        let token = a.token(&account).await.unwrap();
        let expires_ms = system_time_to_ms(token.expires_at().unwrap());
        let due_ms = expires_ms - DEFAULT_MARGIN.as_millis() as i64;
        w.clock.advance(
            &w.emu,
            Duration::from_millis((due_ms - w.clock.now_ms()) as u64),
        );
        w.emu
            .inject_faults(std::iter::repeat_n(Fault::Status(503), 1000));
        let before = w.emu.total_token_requests();
        let started = std::time::Instant::now();
        let window = Duration::from_millis(3500);
        while started.elapsed() < window {
            // Past the re-read time on every call.
            w.clock.advance(&w.emu, CACHE_TTL);
            let got = a.token(&account).await.expect("the due token");
            assert_eq!(got.access_token(), token.access_token());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let sent = w.emu.total_token_requests() - before;
        // Attempts at 0 s, 1 s and 3 s (1 s doubling); one more if a call
        // straddled the window's end.
        assert!((3..=4).contains(&sent), "{sent} requests in {window:?}");
        w.emu.take_faults();

        let account = fresh_account("retryafter");
        let b = w.replica(&engine).await;
        b.connect(&account, &w.login().await).await.unwrap();
        w.make_due();
        w.emu.inject_faults([Fault::TooManyRequests {
            retry_after: Duration::from_secs(45),
        }]);
        let before = w.emu.total_token_requests();
        let err = b.token(&account).await.unwrap_err();
        assert!(err.is_transient(), "{err:?}");
        for _ in 0..20 {
            w.clock.advance(&w.emu, CACHE_TTL);
            let err = b.token(&account).await.unwrap_err();
            assert!(err.is_transient(), "{err:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(
            w.emu.total_token_requests() - before,
            1,
            "nothing sent within the Retry-After"
        );
    }
}

/// Finding 4: a token Medium refused is reported, and the fleet refreshes
/// it once per cool-down (judged by when the row's token was written);
/// when the grant was revoked, the refused refresh marks the row dead, and
/// every replica notices: the one told at once, the others within
/// `CACHE_TTL`. An account's `source` reports a 401 by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_is_refreshed_once_across_the_fleet_and_a_revoked_grant_is_noticed() {
    for engine in engines() {
        let w = world(true).await;
        let account = fresh_account("refused");
        let a = w.replica(&engine).await;
        let b = w.replica(&engine).await;
        a.connect(&account, &w.login().await).await.unwrap();
        let first = a.token(&account).await.unwrap();
        assert_eq!(
            b.token(&account).await.unwrap().access_token(),
            first.access_token()
        );
        w.clock.advance(&w.emu, REFUSAL_COOLDOWN);
        a.invalidate(&account, first.access_token()).await;
        b.invalidate(&account, first.access_token()).await;
        let second = a.token(&account).await.unwrap();
        assert_ne!(second.access_token(), first.access_token());
        assert_eq!(
            b.token(&account).await.unwrap().access_token(),
            second.access_token(),
            "B adopts what A committed"
        );
        assert_eq!(w.emu.refreshes(), 1);
        // Refused again within the cool-down of its arrival: no refresh on
        // any replica.
        a.invalidate(&account, second.access_token()).await;
        b.invalidate(&account, second.access_token()).await;
        for replica in [&a, &b] {
            assert_eq!(
                replica.token(&account).await.unwrap().access_token(),
                second.access_token()
            );
        }
        assert_eq!(w.emu.refreshes(), 1);

        // Revoked at Medium: the middleware over A's source meets a 401,
        // reports it, and the refused refresh buries the grant.
        w.clock.advance(&w.emu, REFUSAL_COOLDOWN);
        w.emu.revoke_all_tokens();
        let http = reqwest_middleware::ClientBuilder::new(
            medium_oauth::tls::client_builder()
                .unwrap()
                .build()
                .unwrap(),
        )
        .with(BearerAuth::new(a.source(&account)))
        .build();
        let _ = http.get(format!("{}/me", w.emu.api_server())).send().await;
        let err = a.token(&account).await.unwrap_err();
        assert!(
            matches!(err, StoreError::ReauthorizationRequired { .. }),
            "{err:?}"
        );
        let dead = b.needing_reauthorization(None, 1000).await.unwrap();
        assert!(dead.iter().any(|s| s.account == account));
        // B re-reads the row within CACHE_TTL.
        w.clock.advance(&w.emu, CACHE_TTL);
        let err = b.token(&account).await.unwrap_err();
        assert!(
            matches!(err, StoreError::ReauthorizationRequired { .. }),
            "{err:?}"
        );
        assert_eq!(w.emu.refresh_replays(), 0);
    }
}

/// Finding 5: a caller's default wait outlasts a holder that took the
/// lease, renewed it once more `LEASE_RENEWAL` later, and died: the lease
/// runs out `LEASE_RENEWAL + LEASE` after the caller began waiting, and the
/// caller then refreshes. (Leases run by the database's clock, which the
/// test cannot move: this test waits out a real lease, on both engines at
/// once.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callers_default_wait_outlasts_a_holder_that_died_right_after_renewing() {
    let runs = engines().into_iter().map(|engine| async move {
        let w = world(true).await;
        let account = fresh_account("renewed");
        let db = w.db(&engine, Keyring::new(key("k1", 1))).await;
        let accounts = Accounts::builder(w.client.clone(), db)
            .clock(w.clock.clone())
            .build();
        accounts.connect(&account, &w.login().await).await.unwrap();
        w.make_due();
        let hold = |ms: i64| {
            let url = engine.url.clone();
            let account = account.clone();
            async move {
                execute(
                    &url,
                    "UPDATE medium_oauth_accounts SET lease_owner = 'dead', \
                     lease_until_ms = $1 WHERE account_id = $2",
                    &account,
                    ms,
                )
                .await
            }
        };
        let db_now = || {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_millis() as i64
        };
        hold(db_now() + LEASE.as_millis() as i64).await;
        let waiting = tokio::spawn({
            let accounts = accounts.clone();
            let account = account.clone();
            async move { accounts.token(&account).await }
        });
        // The holder's renewal, on its schedule; then it dies.
        tokio::time::sleep(LEASE_RENEWAL).await;
        hold(db_now() + LEASE.as_millis() as i64).await;
        let got = waiting.await.unwrap().expect("outlasted the renewed lease");
        assert!(!got.expires_within(MIN_TOKEN_LIFETIME, w.clock.now_ms_time()));
        assert_eq!(w.emu.refreshes(), 1);
    });
    let runs: Vec<_> = runs.map(tokio::spawn).collect();
    for run in runs {
        run.await.unwrap();
    }
}
