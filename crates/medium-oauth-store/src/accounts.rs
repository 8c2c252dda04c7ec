//! Many accounts' tokens for one OAuth client: `accounts.token(&id)` gives a
//! valid token from a bounded cache, or reads the row, or refreshes it once
//! across every replica. Nothing runs per account between calls, except a
//! commit retried after the database refused one (see `unsaved.rs`).

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use medium_oauth::{
    Clock, MIN_TOKEN_LIFETIME, OAuthClient, SystemClock, Token, ms_to_system_time,
    system_time_to_ms,
};
use moka::future::Cache;
use tokio::sync::Mutex as AsyncMutex;
use tokio::time::Instant;

use crate::db::{StoredRow, TokenDatabase};
use crate::lease::{self, LEASE, Leased, REFRESH_DEADLINE, Renewed};
use crate::unsaved::{Committed, Unsaved};
use crate::{AccountId, StoreError};

/// Accounts whose tokens are kept in memory, by default.
pub const DEFAULT_CACHE_CAPACITY: u64 = 10_000;

/// How long an account stays in memory before its row is read again: a
/// removal or a new login on another replica reaches this one within it.
pub const CACHE_TTL: Duration = Duration::from_secs(30);

/// A token is refreshed once it has less than this left: Medium's tokens
/// last 60 days, and a day ahead leaves room for a token endpoint that is
/// down for hours.
pub const DEFAULT_MARGIN: Duration = medium_oauth::DEFAULT_REFRESH_MARGIN;

/// How long a caller waits for another replica's refresh of the same
/// account: past a whole lease, so a caller outlasts a replica that died
/// holding it.
pub const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(LEASE.as_secs() + 5);

/// First pause after a failed refresh, before any caller of this process
/// tries that account again; it doubles per failure up to
/// [`RETRY_CAP`].
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
    margin: Duration,
    lock_wait: Duration,
    clock: Arc<dyn Clock>,
}

impl AccountsBuilder {
    /// How many accounts' tokens are kept in memory (least recently used
    /// are dropped first). Default [`DEFAULT_CACHE_CAPACITY`].
    pub fn cache_capacity(mut self, accounts: u64) -> Self {
        self.capacity = accounts;
        self
    }

    /// How long before expiry a token is refreshed, but never earlier than
    /// halfway through the life it arrived with (as the library's sources
    /// do), so short-lived tokens are not refreshed on every call. Default
    /// [`DEFAULT_MARGIN`].
    pub fn margin(mut self, margin: Duration) -> Self {
        self.margin = margin;
        self
    }

    /// How long a caller waits for another replica's refresh. Default
    /// [`DEFAULT_LOCK_WAIT`].
    pub fn lock_wait(mut self, wait: Duration) -> Self {
        self.lock_wait = wait;
        self
    }

    /// The wall clock that judges expiry and leases: the test seam.
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The manager.
    pub fn build(self) -> Accounts {
        let client_id: Arc<str> = self.client.client_id().as_str().into();
        Accounts {
            inner: Arc::new(Inner {
                unsaved: Unsaved::new(self.db.clone(), client_id.clone(), self.clock.clone()),
                client: self.client,
                db: self.db,
                client_id,
                cache: Cache::builder()
                    .max_capacity(self.capacity)
                    .time_to_live(CACHE_TTL)
                    .build(),
                margin: self.margin,
                lock_wait: self.lock_wait,
                clock: self.clock,
            }),
        }
    }
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
    cache: Cache<AccountId, Arc<Slot>>,
    margin: Duration,
    lock_wait: Duration,
    clock: Arc<dyn Clock>,
    /// Refreshed tokens whose commit failed, committed in the background.
    unsaved: Unsaved,
}

/// One account in memory: its token, and the one refresh of this process.
#[derive(Default)]
struct Slot {
    token: Mutex<Option<Fresh>>,
    refresh: Arc<AsyncMutex<Schedule>>,
}

impl Slot {
    fn current(&self) -> Option<Fresh> {
        self.token.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set(&self, token: Option<Fresh>) {
        *self.token.lock().unwrap_or_else(|e| e.into_inner()) = token;
    }
}

/// A token and when it falls due for a refresh.
#[derive(Clone)]
struct Fresh {
    token: Arc<Token>,
    /// `None`: it never expires.
    due: Option<SystemTime>,
}

/// Failed refreshes of one account in this process: every caller waits out
/// the same pause, so an unreachable token endpoint sees one attempt per
/// pause, not one per call.
#[derive(Default)]
struct Schedule {
    failures: u32,
    not_before: Option<Instant>,
    last_failure: Option<Failure>,
}

/// A failed refresh, to answer with while its pause lasts.
#[derive(Clone)]
enum Failure {
    Refused(medium_oauth::Error),
    TimedOut,
}

impl Failure {
    fn of(error: &StoreError) -> Option<Self> {
        match error {
            StoreError::Refresh { source, .. } => Some(Failure::Refused(source.clone())),
            StoreError::RefreshTimedOut { .. } => Some(Failure::TimedOut),
            _ => None,
        }
    }

    fn error(&self, account: &AccountId) -> StoreError {
        match self {
            Failure::Refused(source) => StoreError::Refresh {
                account: account.clone(),
                source: source.clone(),
            },
            Failure::TimedOut => StoreError::RefreshTimedOut {
                account: account.clone(),
                after: REFRESH_DEADLINE,
            },
        }
    }
}

impl Schedule {
    fn failed(&mut self, failure: Failure) {
        self.failures = self.failures.saturating_add(1);
        let doubling = RETRY_BASE.saturating_mul(1 << self.failures.min(16).saturating_sub(1));
        let asked = match &failure {
            Failure::Refused(e) => e.retry_after().unwrap_or_default(),
            Failure::TimedOut => Duration::ZERO,
        };
        let pause = doubling.min(RETRY_CAP).max(asked);
        self.not_before = Some(Instant::now() + pause.min(RETRY_CAP));
        self.last_failure = Some(failure);
    }

    fn succeeded(&mut self) {
        *self = Schedule::default();
    }
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
            margin: DEFAULT_MARGIN,
            lock_wait: DEFAULT_LOCK_WAIT,
            clock: Arc::new(SystemClock),
        }
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
        let inner = &self.inner;
        let slot = inner
            .cache
            .get_with_by_ref(account, async { Arc::new(Slot::default()) })
            .await;
        if let Some(fresh) = slot.current().filter(|f| inner.usable(f)) {
            return Ok(fresh.token);
        }
        let task = tokio::spawn({
            let inner = inner.clone();
            let account = account.clone();
            async move { inner.obtain(&slot, &account).await }
        });
        task.await.unwrap_or_else(|e| {
            Err(StoreError::Interrupted(if e.is_panic() {
                "the refresh task panicked"
            } else {
                "the runtime is shutting down"
            }))
        })
    }

    /// Stores the token of a new login for `account`, replacing whatever
    /// was there: a dead grant is revived, and a refresh under way elsewhere
    /// will not overwrite it.
    pub async fn connect(&self, account: &AccountId, token: &Token) -> Result<(), StoreError> {
        let inner = &self.inner;
        let now_ms = system_time_to_ms(inner.clock.now());
        inner
            .db
            .put(&inner.client_id, account, token, now_ms)
            .await?;
        // Other replicas read the new row once their cached token is due;
        // this one uses it at once.
        inner.cache.invalidate(account).await;
        Ok(())
    }

    /// Removes `account` and its tokens. `false`: it was not there.
    pub async fn remove(&self, account: &AccountId) -> Result<bool, StoreError> {
        let inner = &self.inner;
        let removed = inner.db.delete(&inner.client_id, account).await?;
        inner.cache.invalidate(account).await;
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

    /// The store of one account, for a [`RefreshingTokenSource`](medium_oauth::RefreshingTokenSource)
    /// over it.
    pub fn token_store(&self, account: &AccountId) -> crate::AccountTokenStore {
        let inner = &self.inner;
        crate::AccountTokenStore::new(
            inner.db.clone(),
            inner.client_id.clone(),
            account.clone(),
            inner.clock.clone(),
            inner.lock_wait,
        )
    }
}

impl Inner {
    /// Whether `fresh` may be handed out now, without a refresh.
    fn usable(&self, fresh: &Fresh) -> bool {
        fresh.due.is_none_or(|due| self.clock.now() < due)
    }

    /// `token`, which arrived (was written to its row) at `arrived_ms`, with
    /// its due time: the margin before expiry, but no earlier than halfway
    /// through the life it arrived with, so a token issued for less than
    /// twice the margin is not refreshed on every call; and never later
    /// than [`MIN_TOKEN_LIFETIME`] before expiry, so no token is handed out
    /// to expire in flight (a kept token committed late arrives with
    /// little life left).
    fn fresh(&self, token: Token, arrived_ms: i64) -> Fresh {
        let due = token.expires_at().map(|expires| {
            // A writer whose clock runs ahead says it arrived later than
            // now; it arrived by now at the latest.
            let arrived = ms_to_system_time(arrived_ms)
                .unwrap_or(expires)
                .min(self.clock.now());
            let life = expires.duration_since(arrived).unwrap_or_default();
            let early = self.margin.min(life / 2).max(MIN_TOKEN_LIFETIME);
            expires.checked_sub(early).unwrap_or(expires)
        });
        Fresh {
            token: Arc::new(token),
            due,
        }
    }

    /// Under this process's refresh of the account: what another caller
    /// just obtained, or what the row holds, or a refresh.
    async fn obtain(&self, slot: &Slot, account: &AccountId) -> Result<Arc<Token>, StoreError> {
        let wait = tokio::time::timeout(self.lock_wait, slot.refresh.clone().lock_owned());
        let Ok(mut schedule) = wait.await else {
            return Err(StoreError::LockTimeout {
                account: account.clone(),
                waited: self.lock_wait,
            });
        };
        if let Some(fresh) = slot.current().filter(|f| self.usable(f)) {
            return Ok(fresh.token);
        }
        if let (Some(at), Some(failure)) = (schedule.not_before, &schedule.last_failure)
            && Instant::now() < at
        {
            return self.or_still_valid(slot, failure.error(account));
        }
        let result = match self.commit_unsaved(account).await {
            Ok(Some(token)) if self.usable(&token) => Ok(token),
            // None kept; or the kept token fell due (or expired) while the
            // database was away, and its row now holds it to refresh.
            Ok(_) => self.read_or_refresh(account).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(fresh) => {
                schedule.succeeded();
                slot.set(Some(fresh.clone()));
                Ok(fresh.token)
            }
            Err(e) => {
                if let Some(failure) = Failure::of(&e) {
                    schedule.failed(failure);
                }
                if e.is_transient() {
                    return self.or_still_valid(slot, e);
                }
                slot.set(None);
                Err(e)
            }
        }
    }

    /// After a transient failure, the token this process holds if it is
    /// still good for [`MIN_TOKEN_LIFETIME`]: the margin exists so that an
    /// outage of Medium or of the database costs nothing until it runs out.
    fn or_still_valid(&self, slot: &Slot, error: StoreError) -> Result<Arc<Token>, StoreError> {
        match slot.current() {
            Some(fresh)
                if !fresh
                    .token
                    .expires_within(MIN_TOKEN_LIFETIME, self.clock.now()) =>
            {
                tracing::debug!("serving a token not yet expired after: {error}");
                Ok(fresh.token)
            }
            _ => Err(error),
        }
    }

    /// Commits a refreshed token an earlier commit failed to write, before
    /// anything else: it holds the grant's newest refresh token, and a
    /// caller need not wait for the background commit. `None`: there was
    /// none, or the row has moved on (a new login) and it was dropped.
    async fn commit_unsaved(&self, account: &AccountId) -> Result<Option<Fresh>, StoreError> {
        Ok(match self.unsaved.commit(account, None).await? {
            Committed::Written { token, at_ms } => Some(self.fresh(token, at_ms)),
            Committed::Nothing | Committed::Superseded => None,
        })
    }

    /// The row's token if usable; else a refresh under the account's lease.
    async fn read_or_refresh(&self, account: &AccountId) -> Result<Fresh, StoreError> {
        let Some(row) = self.db.read(&self.client_id, account).await? else {
            return Err(StoreError::NotConnected(account.clone()));
        };
        if let Some(token) = self.adoptable(account, &row)? {
            return Ok(token);
        }
        let adopt = |row: &StoredRow| matches!(self.adoptable(account, row), Ok(Some(_)));
        let leased = lease::take(&self.db, &self.client_id, account, self.lock_wait, adopt).await?;
        let (lease, row) = match leased {
            Leased::Missing => return Err(StoreError::NotConnected(account.clone())),
            Leased::Adopted(row) => {
                return self
                    .adoptable(account, &row)?
                    .ok_or_else(|| StoreError::NotConnected(account.clone()));
            }
            // Renewed from now: a long refresh or a failed commit never
            // outlives it.
            Leased::Held(lease, row) => (Renewed::new(lease), row),
        };
        // Read again under the lease: another replica may have refreshed
        // between the first read and the lease.
        if let Some(token) = self.adoptable(account, &row)? {
            lease.give_back().await;
            return Ok(token);
        }
        let token = self.db.open(&self.client_id, account, &row)?;
        let Some(refresh_token) = token.refresh_token() else {
            return self
                .bury(lease, account, &row, "no refresh token was issued")
                .await;
        };
        // The refresh and its commit must both end inside the lease, or
        // another replica could read the old refresh token meanwhile.
        let budget = REFRESH_DEADLINE.min(lease.left().saturating_sub(self.db.query_deadline()));
        if budget.is_zero() {
            return Err(StoreError::LockTimeout {
                account: account.clone(),
                waited: self.lock_wait,
            });
        }
        let refreshed = tokio::time::timeout(budget, self.client.refresh(refresh_token)).await;
        match refreshed {
            Err(_) => {
                // Medium may have rotated the token: nobody may send the
                // old one before the lease runs out (dropped, it does).
                drop(lease);
                Err(StoreError::RefreshTimedOut {
                    account: account.clone(),
                    after: budget,
                })
            }
            Ok(Err(e)) if e.requires_reauthorization() => {
                self.bury(lease, account, &row, "Medium refused the refresh token")
                    .await
            }
            Ok(Err(e)) => {
                // Refused before anything was issued: the old refresh
                // token stands, and another replica may try it.
                lease.give_back().await;
                Err(StoreError::Refresh {
                    account: account.clone(),
                    source: e,
                })
            }
            Ok(Ok(new)) => self.commit(lease, account, &row, new).await,
        }
    }

    /// The row's token, if the grant is alive and the token usable now.
    fn adoptable(&self, account: &AccountId, row: &StoredRow) -> Result<Option<Fresh>, StoreError> {
        if let Some(reason) = &row.dead_reason {
            return Err(StoreError::ReauthorizationRequired {
                account: account.clone(),
                reason: reason.clone(),
            });
        }
        let token = self.db.open(&self.client_id, account, row)?;
        let fresh = self.fresh(token, row.updated_at_ms);
        Ok(self.usable(&fresh).then_some(fresh))
    }

    /// Commits a refreshed token over the row it was refreshed from, before
    /// anyone uses it.
    async fn commit(
        &self,
        lease: Renewed,
        account: &AccountId,
        row: &StoredRow,
        new: Token,
    ) -> Result<Fresh, StoreError> {
        let now_ms = system_time_to_ms(self.clock.now());
        let written = match self
            .db
            .commit_refresh(
                &self.client_id,
                account,
                row.version,
                lease.owner(),
                &new,
                now_ms,
            )
            .await
        {
            Ok(written) => written,
            Err(e) => {
                // Medium rotated the refresh token and only this process
                // knows the new one: keep it, and the lease, until it is
                // committed, so that no replica sends the old one.
                tracing::error!(
                    "account {account}: the refreshed token is kept in memory until committed: {e}"
                );
                self.unsaved.keep(account.clone(), row.version, new, lease);
                return Err(e);
            }
        };
        if written {
            lease.consumed();
            return Ok(self.fresh(new, now_ms));
        }
        // A new login replaced the row while this refresh was under way (or
        // the lease was lost to another replica): the row is newer than
        // what was refreshed, so it stands.
        drop(lease);
        match self.db.read(&self.client_id, account).await? {
            Some(row) => self
                .adoptable(account, &row)?
                .ok_or_else(|| StoreError::NotConnected(account.clone())),
            None => Err(StoreError::NotConnected(account.clone())),
        }
    }

    /// Records that the account's grant is dead, for every replica.
    async fn bury(
        &self,
        lease: Renewed,
        account: &AccountId,
        row: &StoredRow,
        reason: &str,
    ) -> Result<Fresh, StoreError> {
        tracing::warn!("account {account} needs re-authorization: {reason}");
        let now_ms = system_time_to_ms(self.clock.now());
        if self
            .db
            .bury(&self.client_id, account, row.version, reason, now_ms)
            .await?
        {
            lease.consumed();
        }
        Err(StoreError::ReauthorizationRequired {
            account: account.clone(),
            reason: reason.to_owned(),
        })
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
