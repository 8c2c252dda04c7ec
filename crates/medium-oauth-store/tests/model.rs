//! One account across three replicas, driven by proptest against a model:
//! the clock jumps (up to past the tokens' expiry), new logins replace the
//! grant, the account is removed, writes fail and come back, Medium revokes
//! the grant. Rotation and replay detection are on. After every step each
//! answer must be one the model allows, a token served must work at
//! Medium, and no refresh token has been replayed; at the end, nothing is
//! lost. (SQLite: a trigger makes writes fail; the paths are the same on
//! PostgreSQL, whose suite is tests/store.rs. Leases run by the database's
//! clock, which no step moves: a lease running out and taken over is
//! tests/store.rs's, and the `kill` figure's.)

use std::time::Duration;

use medium_oauth::{Clock, MIN_TOKEN_LIFETIME, OAuthClient, scopes};
use medium_oauth_emulator::{Config, Emulator};
use medium_oauth_store::{AccountId, Accounts, Keyring, StoreError, TokenDatabase};
use medium_oauth_test_support as support;
use proptest::prelude::*;

mod common;
use common::{ManualClock, fail_writes, key};

const REPLICAS: usize = 3;

/// Longest jump of the clock, in hours: past the emulator's 60-day tokens.
const MAX_JUMP_HOURS: u64 = 70 * 24;

#[derive(Debug, Clone)]
enum Op {
    /// The clock (ours and Medium's) moves on.
    Advance(Duration),
    /// A replica asks for the account's token.
    Token(usize),
    /// The user connects again: a new grant replaces the row.
    Login,
    /// The service removes the account.
    Remove,
    /// Writes to the token column start (`true`) or stop failing.
    Writes(bool),
    /// Medium revokes every token, as a user removing the app would.
    Revoke,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..=MAX_JUMP_HOURS).prop_map(|h| Op::Advance(Duration::from_secs(h * 3600))),
        6 => (0..REPLICAS).prop_map(Op::Token),
        1 => Just(Op::Login),
        1 => Just(Op::Remove),
        2 => any::<bool>().prop_map(Op::Writes),
        1 => Just(Op::Revoke),
    ]
}

/// What the test knows of the account.
#[derive(Debug, Default)]
struct Model {
    /// A row exists: a login since the last removal.
    connected: bool,
    /// Medium revoked the grant since the last login.
    revoked: bool,
    /// Medium revoked tokens in this run: a replica may still serve one
    /// from memory.
    ever_revoked: bool,
    /// Writes fail now.
    failing: bool,
    /// Replicas that may keep a token they refreshed and could not commit
    /// (and its lease) until they can: any replica asked while writes
    /// failed, as the test cannot see whether that call refreshed.
    may_keep: [bool; REPLICAS],
    /// Replicas that may hold a token in memory: they may serve it after
    /// another replica removed the account.
    served: [bool; REPLICAS],
    /// Replicas whose last answer was a transient failure: the refresh
    /// engine answers with it, sending nothing, until its schedule allows
    /// the next attempt (on tokio's clock, which the test does not drive).
    pausing: [bool; REPLICAS],
    /// Replicas whose last answer was that the grant is dead or gone: the
    /// engine re-reads the row for a new login at most once per
    /// `REAUTHORIZATION_RECHECK` (tokio's clock again).
    latched: [bool; REPLICAS],
}

struct World {
    emu: Emulator,
    client: OAuthClient,
    clock: ManualClock,
    url: String,
    _dir: tempfile::TempDir,
    replicas: Vec<Accounts>,
    account: AccountId,
}

impl World {
    async fn new() -> Self {
        let emu = support::emulator(Config {
            rotate_refresh_tokens: true,
            detect_refresh_replay: true,
            ..support::auto_approving()
        })
        .await;
        let client = support::demo_client(&emu);
        let clock = ManualClock::at(&emu);
        let dir = tempfile::tempdir().expect("a temporary directory");
        let url = format!("sqlite:{}", dir.path().join("tokens.db").display());
        let mut replicas = Vec::new();
        for _ in 0..REPLICAS {
            let db = TokenDatabase::connect(&url, Keyring::new(key("k1", 1)))
                .await
                .expect("the database");
            // Sequential steps never wait on each other, but on a lease a
            // replica keeps: short waits keep the run short, long enough
            // for a lease given back on a task of its own on a busy
            // machine.
            let accounts = Accounts::builder(client.clone(), db)
                .clock(clock.clone())
                .lock_wait(Duration::from_secs(1))
                .build();
            replicas.push(accounts);
        }
        let account = AccountId::new("model").expect("an account id");
        World {
            emu,
            client,
            clock,
            url,
            _dir: dir,
            replicas,
            account,
        }
    }

    async fn login(&self) -> medium_oauth::Token {
        support::login(&self.client, scopes![basicProfile]).await
    }

    /// One step, checked against the model.
    async fn step(&self, model: &mut Model, op: &Op) {
        match *op {
            Op::Advance(by) => self.clock.advance(&self.emu, by),
            Op::Writes(fail) => {
                if fail != model.failing {
                    fail_writes(&self.url, fail).await;
                    model.failing = fail;
                }
            }
            Op::Revoke => {
                self.emu.revoke_all_tokens();
                model.revoked = true;
                model.ever_revoked = true;
            }
            Op::Remove => {
                // A delete is not a write the fault touches.
                let removed = self.replicas[0].remove(&self.account).await.unwrap();
                assert_eq!(removed, model.connected);
                model.connected = false;
                // The row is gone: a kept token's commit finds nothing.
                model.may_keep = [false; REPLICAS];
                model.served[0] = false;
            }
            Op::Login => {
                let token = self.login().await;
                match self.replicas[0].connect(&self.account, &token).await {
                    Ok(()) => {
                        // Writing over a row fails while writes fail; a
                        // new row is an insert, which the fault spares.
                        assert!(!(model.failing && model.connected), "wrote while failing");
                        model.connected = true;
                        model.revoked = false;
                        // The login cleared any lease; a kept token's
                        // commit misses the new row.
                        model.may_keep = [false; REPLICAS];
                        model.served[0] = false;
                    }
                    Err(e) => {
                        assert!(model.failing && model.connected, "{e:?}");
                        assert!(e.is_transient(), "{e:?}");
                    }
                }
            }
            Op::Token(r) => self.token(model, r).await,
        }
        assert_eq!(
            self.emu.refresh_replays(),
            0,
            "a refresh token was replayed"
        );
    }

    async fn token(&self, model: &mut Model, r: usize) {
        let blocked = (0..REPLICAS).any(|k| k != r && model.may_keep[k]);
        // With writes working, a live grant that no other replica may hold
        // is always served, by a replica that is not waiting out a failure
        // or a dead grant's recheck.
        let must_serve = !model.failing
            && model.connected
            && !model.revoked
            && !blocked
            && !model.pausing[r]
            && !model.latched[r];
        let got = self.replicas[r].token(&self.account).await;
        if must_serve {
            assert!(got.is_ok(), "a live grant was not served: {got:?}");
        }
        if model.failing {
            model.may_keep[r] = true;
        }
        let pausing = model.pausing[r];
        let latched = model.latched[r];
        model.pausing[r] = matches!(&got, Err(e) if e.is_transient());
        model.latched[r] = matches!(&got, Err(e) if e.requires_reauthorization());
        match got {
            Ok(token) => {
                let now = self.clock.now();
                assert!(
                    !token.expires_within(Duration::ZERO, now),
                    "an expired token was served"
                );
                assert!(
                    model.connected || (r != 0 && model.served[r]),
                    "a token for a removed account, not from memory"
                );
                // Medium's clock runs ahead of the test's by the real time
                // the run took: a token in its last minute may be over there.
                if !model.ever_revoked && !token.expires_within(MIN_TOKEN_LIFETIME, now) {
                    let me = self.client.me(token.access_token()).await;
                    assert!(me.is_ok(), "a served token does not work: {me:?}");
                }
                model.served[r] = true;
                if !model.failing {
                    // This call committed whatever this replica kept.
                    model.may_keep[r] = false;
                }
            }
            Err(StoreError::NotConnected(_)) => {
                assert!(
                    !model.connected || latched,
                    "a connected account was not found"
                );
            }
            Err(StoreError::ReauthorizationRequired { .. }) => {
                assert!(model.revoked || latched, "a live grant was buried");
            }
            Err(StoreError::LockTimeout { .. }) => {
                assert!(blocked || model.failing || pausing, "waited on no one");
            }
            Err(StoreError::Database(_)) => {
                assert!(
                    model.failing || pausing,
                    "a database error with writes working"
                );
            }
            Err(e) => panic!("not an answer the model allows: {e:?}"),
        }
    }

    /// Asks replica `r` until it serves: pauses and rechecks run on real
    /// time. The deadline bounds the test, not the store.
    async fn served(&self, r: usize) {
        let give_up = std::time::Instant::now() + Duration::from_secs(90);
        loop {
            match self.replicas[r].token(&self.account).await {
                Ok(_) => return,
                Err(e) if std::time::Instant::now() < give_up => {
                    assert!(
                        e.is_transient() || e.requires_reauthorization(),
                        "replica {r}: {e:?}"
                    );
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("replica {r} was never served: {e:?}"),
            }
        }
    }

    /// At the end, with writes working: the replica keeping a token
    /// commits it, every replica is served, and the row's refresh token
    /// still works at Medium: nothing was lost.
    async fn nothing_lost(&self, model: &mut Model) {
        self.step(model, &Op::Writes(false)).await;
        if !model.connected || model.revoked {
            return;
        }
        // Each replica that may keep a token commits it first thing when
        // asked (one may wait on another's lease meanwhile); then every
        // replica is served.
        for r in (0..REPLICAS).filter(|&r| model.may_keep[r]) {
            self.served(r).await;
        }
        for r in 0..REPLICAS {
            self.served(r).await;
        }
        let row = self.replicas[0]
            .stored_token(&self.account)
            .await
            .unwrap()
            .expect("the row's token");
        let refresh = row.refresh_token().expect("a refresh token");
        self.client
            .refresh(refresh)
            .await
            .expect("the row holds the grant's newest refresh token");
        assert_eq!(self.emu.refresh_replays(), 0);
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        max_shrink_iters: 64,
        ..ProptestConfig::default()
    })]

    #[test]
    fn replicas_agree_with_the_model(ops in prop::collection::vec(op(), 1..24)) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async {
            let world = World::new().await;
            let mut model = Model::default();
            // Every run starts connected, so the interesting paths come
            // early.
            world.step(&mut model, &Op::Login).await;
            for op in &ops {
                world.step(&mut model, op).await;
            }
            world.nothing_lost(&mut model).await;
        });
    }
}
