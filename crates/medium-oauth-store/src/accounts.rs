//! Many accounts' tokens for one OAuth client: `accounts.token(&id)` gives a
//! valid token from a bounded map of refresh engines, one per account, each
//! over the account's leased row (see `row.rs`). The engine makes every
//! decision; this file only keeps the map.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use medium_oauth::engine::{Backend, Engine, RefreshPolicy};
use medium_oauth::{AccessToken, Clock, OAuthClient, Token, ms_to_system_time, system_time_to_ms};
use moka::future::Cache;
use moka::notification::RemovalCause;

use crate::db::TokenDatabase;
use crate::lease::{LEASE, LEASE_RENEWAL};
use crate::row::AccountRow;
use crate::{AccountId, StoreError};

/// Accounts whose engines (token, failure schedule) are kept in memory, by
/// default. An engine that holds failures or a token not yet committed
/// outlives its eviction (see [`AccountsBuilder::cache_capacity`]).
pub const DEFAULT_CACHE_CAPACITY: u64 = 10_000;

/// How long a token read from its row is used before the row is read again:
/// a removal, a new login or a dead grant recorded on another replica
/// reaches this one within it. A failed read keeps the token in use.
pub const CACHE_TTL: Duration = Duration::from_secs(30);

/// A token is refreshed once it has less than this left: Medium's tokens
/// last 60 days, and a day ahead leaves room for a token endpoint that is
/// down for hours.
pub const DEFAULT_MARGIN: Duration = medium_oauth::DEFAULT_REFRESH_MARGIN;

/// How long a caller waits for another replica's refresh of the same
/// account, by default: past the longest a lease can legitimately be held
/// without a commit, a holder that renewed it once more (every
/// [`LEASE_RENEWAL`]) and then died, so it runs out [`LEASE`] after that
/// renewal; plus 5 s for the waiter's last poll and a slow statement.
pub const DEFAULT_LOCK_WAIT: Duration =
    Duration::from_secs(LEASE_RENEWAL.as_secs() + LEASE.as_secs() + 5);

/// First pause after a failed refresh of an account, before any caller of
/// this process tries it again; it doubles per failure up to [`RETRY_CAP`].
pub const RETRY_BASE: Duration = Duration::from_secs(1);

/// Longest pause between two refresh attempts of one account.
pub const RETRY_CAP: Duration = Duration::from_secs(60);

/// Where an account stands, as a listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AccountState {
    /// Its grant is usable; the token expires then (`None`: never).
    Valid {
        /// The access token's expiry.
        expires_at: Option<SystemTime>,
    },
    /// A replica holds its lease and is refreshing it now.
    Refreshing,
    /// Its grant is dead: the user must connect again.
    NeedsReauthorization {
        /// Why, as recorded.
        reason: String,
    },
}

/// One account in a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountStatus {
    /// The account.
    pub account: AccountId,
    /// Where it stands.
    pub state: AccountState,
}

/// Builds [`Accounts`].
pub struct AccountsBuilder {
    client: OAuthClient,
    db: TokenDatabase,
    capacity: u64,
    policy: RefreshPolicy,
    lock_wait: Duration,
    clock: Option<Arc<dyn Clock>>,
}

impl AccountsBuilder {
    /// How many accounts' engines are kept in memory (least recently used
    /// are dropped first). Default [`DEFAULT_CACHE_CAPACITY`]. An engine
    /// whose failure schedule is running, or that holds a refreshed token
    /// not yet committed, is kept beyond the capacity until it is quiet:
    /// dropping it would forget the schedule every caller shares.
    pub fn cache_capacity(mut self, accounts: u64) -> Self {
        self.capacity = accounts;
        self
    }

    /// How long before expiry a token is refreshed, but never earlier than
    /// halfway through the life it arrived with, so short-lived tokens are
    /// not refreshed on every call. Default [`DEFAULT_MARGIN`].
    pub fn margin(mut self, margin: Duration) -> Self {
        self.policy.margin = margin;
        self
    }

    /// How long a caller waits for another replica's refresh. Default
    /// [`DEFAULT_LOCK_WAIT`].
    pub fn lock_wait(mut self, wait: Duration) -> Self {
        self.lock_wait = wait;
        self
    }

    /// The wall clock that judges expiry (leases are judged by the
    /// database's clock alone): the test seam.
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// The manager.
    pub fn build(self) -> Accounts {
        let client_id: Arc<str> = self.client.client_id().as_str().into();
        let pinned: Pinned = Arc::default();
        let evicted = pinned.clone();
        Accounts {
            inner: Arc::new(Inner {
                cache: Cache::builder()
                    .max_capacity(self.capacity)
                    .eviction_listener(
                        move |account: Arc<AccountId>, engine: Arc<AccountEngine>, cause| {
                            // Evicted for room while it holds the shared schedule
                            // or an uncommitted token: keep it until it is quiet.
                            if cause == RemovalCause::Size && !engine.is_quiet() {
                                let mut pinned = lock(&evicted);
                                pinned.retain(|_, engine| !engine.is_quiet());
                                pinned.insert((*account).clone(), engine);
                            }
                        },
                    )
                    .build(),
                pinned,
                client: self.client,
                db: self.db,
                client_id,
                policy: self.policy,
                lock_wait: self.lock_wait,
                clock: self.clock,
            }),
        }
    }
}

type AccountEngine = Engine<AccountRow>;

/// Engines evicted while not quiet, until they are asked for again.
type Pinned = Arc<Mutex<HashMap<AccountId, Arc<AccountEngine>>>>;

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Many accounts' tokens for one OAuth client, shared with every replica
/// that uses the same database. Cheap to clone.
#[derive(Clone)]
pub struct Accounts {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Accounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Accounts")
            .field("client_id", &self.inner.client_id)
            .field("db", &self.inner.db)
            .field("cached", &self.inner.cache.entry_count())
            .finish_non_exhaustive()
    }
}

struct Inner {
    client: OAuthClient,
    db: TokenDatabase,
    client_id: Arc<str>,
    cache: Cache<AccountId, Arc<AccountEngine>>,
    pinned: Pinned,
    policy: RefreshPolicy,
    lock_wait: Duration,
    clock: Option<Arc<dyn Clock>>,
}

impl Accounts {
    /// What a login needs: the client, the database and the client's id.
    pub(crate) fn parts(&self) -> (&OAuthClient, &TokenDatabase, &str) {
        (&self.inner.client, &self.inner.db, &self.inner.client_id)
    }

    /// A manager for `client`'s accounts in `db`.
    pub fn builder(client: OAuthClient, db: TokenDatabase) -> AccountsBuilder {
        AccountsBuilder {
            client,
            db,
            capacity: DEFAULT_CACHE_CAPACITY,
            policy: RefreshPolicy {
                margin: DEFAULT_MARGIN,
                // Accounts connect at their own times: nothing to spread.
                jitter: Duration::ZERO,
                retry_base: RETRY_BASE,
                retry_cap: RETRY_CAP,
                // One attempt per call: a service's request should not wait
                // out a schedule of its own.
                max_attempts: 1,
                revalidate: Some(CACHE_TTL),
            },
            lock_wait: DEFAULT_LOCK_WAIT,
            clock: None,
        }
    }

    /// The OAuth client the accounts are refreshed through: to exchange a
    /// login's code, or to ask Medium who a token belongs to.
    pub fn client(&self) -> &OAuthClient {
        &self.inner.client
    }

    /// A valid token for `account`: from memory while it is fresh; else
    /// from the database, refreshed first if it is due. Concurrent callers
    /// share one refresh per account in this process, and replicas one per
    /// account across the fleet.
    ///
    /// The refresh runs on a task of its own: a caller that gives up (a
    /// timeout, a dropped request) does not cut it short, so a rotated
    /// refresh token is never lost between Medium and the database.
    pub async fn token(&self, account: &AccountId) -> Result<Arc<Token>, StoreError> {
        self.engine(account).await.token().await
    }

    /// Obtains a new token for `account` now, under its lease, whatever the
    /// expiry (an audit, or rotating every grant after a leak); or adopts
    /// one another replica committed meanwhile.
    pub async fn refresh_now(&self, account: &AccountId) -> Result<Arc<Token>, StoreError> {
        self.engine(account).await.force_refresh().await
    }

    /// Reports that Medium refused `token` (HTTP 401) for `account`: the
    /// next call obtains another, under the lease, so the fleet sends at
    /// most one refresh per [`REFUSAL_COOLDOWN`](medium_oauth::REFUSAL_COOLDOWN)
    /// (judged by when the row's token was written); a refused refresh
    /// marks the account dead for every replica. A token already replaced
    /// is ignored.
    pub async fn invalidate(&self, account: &AccountId, token: &AccessToken) {
        if let Some(engine) = self.inner.cache.get(account).await {
            engine.invalidate(token);
        }
    }

    /// A [`TokenSource`](medium_oauth::TokenSource) over `account`, for
    /// [`BearerAuth`](medium_oauth::BearerAuth) or
    /// [`MediumApi`](medium_oauth::api::MediumApi): a 401 invalidates the
    /// token as [`Accounts::invalidate`] does.
    pub fn source(&self, account: &AccountId) -> AccountSource {
        AccountSource {
            accounts: self.clone(),
            account: account.clone(),
            last: Arc::default(),
        }
    }

    /// Stores the token of a new login for `account`, replacing whatever
    /// was there: a dead grant is revived, and a refresh under way elsewhere
    /// will not overwrite it.
    pub async fn connect(&self, account: &AccountId, token: &Token) -> Result<(), StoreError> {
        let inner = &self.inner;
        inner
            .db
            .put(
                &inner.client_id,
                account,
                token,
                system_time_to_ms(self.now()),
            )
            .await?;
        // Other replicas read the new row within CACHE_TTL; this one uses
        // it at once.
        self.forget(account).await;
        Ok(())
    }

    /// Removes `account` and its tokens. `false`: it was not there.
    pub async fn remove(&self, account: &AccountId) -> Result<bool, StoreError> {
        let inner = &self.inner;
        let removed = inner.db.delete(&inner.client_id, account).await?;
        self.forget(account).await;
        Ok(removed)
    }

    /// Up to `limit` accounts after `after` (`None`: from the first), in id
    /// order, with where each stands. Page with the last id returned.
    pub async fn list(
        &self,
        after: Option<&AccountId>,
        limit: u32,
    ) -> Result<Vec<AccountStatus>, StoreError> {
        self.inner.list(after, limit, false).await
    }

    /// Like [`Accounts::list`], only the accounts whose grant is dead: the
    /// users to ask to connect again.
    pub async fn needing_reauthorization(
        &self,
        after: Option<&AccountId>,
        limit: u32,
    ) -> Result<Vec<AccountStatus>, StoreError> {
        self.inner.list(after, limit, true).await
    }

    /// The account's token as its row holds it now, read without a lease
    /// and without refreshing: `None` when the account is not connected or
    /// its grant is dead. For audits and tests; callers that act for the
    /// user want [`Accounts::token`].
    pub async fn stored_token(&self, account: &AccountId) -> Result<Option<Token>, StoreError> {
        match self.inner.new_engine(account).backend().peek().await? {
            medium_oauth::engine::Stored::Token { token, .. } => Ok(Some(token)),
            _ => Ok(None),
        }
    }

    /// The account's engine: cached, or kept since its eviction, or new.
    async fn engine(&self, account: &AccountId) -> Arc<AccountEngine> {
        let inner = &self.inner;
        inner
            .cache
            .get_with_by_ref(account, async {
                let kept = lock(&inner.pinned).remove(account);
                kept.unwrap_or_else(|| Arc::new(inner.new_engine(account)))
            })
            .await
    }

    /// Drops this process's engine for `account`, so the next call reads
    /// the row (a token it still keeps to commit finds the row changed).
    async fn forget(&self, account: &AccountId) {
        self.inner.cache.invalidate(account).await;
        lock(&self.inner.pinned).remove(account);
    }

    fn now(&self) -> SystemTime {
        self.inner
            .clock
            .as_ref()
            .map_or_else(SystemTime::now, |c| c.now())
    }
}

/// One account of [`Accounts`] as a [`TokenSource`](medium_oauth::TokenSource).
#[derive(Debug, Clone)]
pub struct AccountSource {
    accounts: Accounts,
    account: AccountId,
    /// The engine the last token came from: a 401 for that token is
    /// reported to it at once, before the request is retried.
    last: Arc<Mutex<Option<Arc<AccountEngine>>>>,
}

impl AccountSource {
    /// The account.
    pub fn account(&self) -> &AccountId {
        &self.account
    }
}

impl medium_oauth::TokenSource for AccountSource {
    fn token(&self) -> medium_oauth::TokenFuture<'_> {
        medium_oauth::TokenFuture::boxed(async move {
            let engine = self.accounts.engine(&self.account).await;
            *lock(&self.last) = Some(engine.clone());
            engine.token().await.map_err(StoreError::into_library_error)
        })
    }

    fn invalidate(&self, token: &AccessToken) {
        if let Some(engine) = lock(&self.last).as_ref() {
            engine.invalidate(token);
        }
    }
}

impl Inner {
    fn new_engine(&self, account: &AccountId) -> AccountEngine {
        let row = AccountRow {
            db: self.db.clone(),
            client_id: self.client_id.clone(),
            account: account.clone(),
            lock_wait: self.lock_wait,
        };
        let engine = Engine::new(row, self.client.clone(), self.policy);
        match &self.clock {
            Some(clock) => engine.with_clock(clock.clone()),
            None => engine,
        }
    }

    /// A page of accounts. Rows another writer named out of bounds are not
    /// ours to list, but they do not end the listing early: the page is
    /// filled from the rows after them.
    async fn list(
        &self,
        after: Option<&AccountId>,
        limit: u32,
        dead_only: bool,
    ) -> Result<Vec<AccountStatus>, StoreError> {
        let mut page = Vec::new();
        let mut cursor = after.map(|a| a.as_str().to_owned());
        while page.len() < limit as usize {
            let wanted = limit - page.len() as u32;
            let rows = self
                .db
                .list(&self.client_id, cursor.as_deref(), wanted, dead_only)
                .await?;
            let exhausted = rows.len() < wanted as usize;
            cursor = rows.last().map(|summary| summary.account.clone());
            page.extend(rows.into_iter().filter_map(|summary| {
                let account = AccountId::new(summary.account).ok()?;
                let row = summary.row;
                let state = if let Some(reason) = row.dead_reason {
                    AccountState::NeedsReauthorization { reason }
                } else if row.leased {
                    AccountState::Refreshing
                } else {
                    AccountState::Valid {
                        expires_at: row.expires_at_ms.and_then(ms_to_system_time),
                    }
                };
                Some(AccountStatus { account, state })
            }));
            if exhausted {
                break;
            }
        }
        Ok(page)
    }
}
