//! One account's row as the refresh engine's backend: the lease is the
//! lock, the row read under it is what the engine refreshes from, and a
//! commit writes only over that row version while the lease is still this
//! replica's. Every decision (when to refresh, the failure schedule, what a
//! failure means, the dead-grant latch, a token kept when its commit
//! failed) is the engine's, in `medium_oauth::engine`.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use medium_oauth::engine::{Backend, Stored, Transaction};
use medium_oauth::{Token, ms_to_system_time, system_time_to_ms};

use crate::db::{StoredRow, TokenDatabase};
use crate::error::death_reason;
use crate::lease::{self, Leased, REFRESH_DEADLINE, Renewed};
use crate::{AccountId, StoreError};

/// One account's row.
pub(crate) struct AccountRow {
    pub(crate) db: TokenDatabase,
    pub(crate) client_id: Arc<str>,
    pub(crate) account: AccountId,
    /// How long [`Backend::begin`] waits for another replica's lease.
    pub(crate) lock_wait: Duration,
}

impl AccountRow {
    /// What `row` holds, opened: a dead grant's error, or its token with
    /// the time it was written (its arrival, by the writer's clock).
    fn stored(&self, row: Option<&StoredRow>) -> Result<Stored<StoreError>, StoreError> {
        let Some(row) = row else {
            return Ok(Stored::Missing);
        };
        if let Some(reason) = &row.dead_reason {
            return Ok(Stored::Dead(StoreError::ReauthorizationRequired {
                account: self.account.clone(),
                reason: reason.clone(),
            }));
        }
        let token = self.db.open(&self.client_id, &self.account, row)?;
        Ok(Stored::Token {
            token,
            arrived: ms_to_system_time(row.updated_at_ms),
        })
    }
}

impl Backend for AccountRow {
    type Error = StoreError;
    type Transaction = RowTransaction;

    async fn peek(&self) -> Result<Stored<StoreError>, StoreError> {
        let row = self.db.read(&self.client_id, &self.account).await?;
        self.stored(row.as_ref())
    }

    async fn begin<'a>(
        &'a self,
        settled: &'a (dyn Fn(&Stored<StoreError>) -> bool + Send + Sync),
    ) -> Result<RowTransaction, StoreError> {
        let adopt = |row: &StoredRow| self.stored(Some(row)).is_ok_and(|stored| settled(&stored));
        let leased = lease::take(
            &self.db,
            &self.client_id,
            &self.account,
            self.lock_wait,
            adopt,
        )
        .await?;
        let (stored, version, lease) = match leased {
            // Opened before the lease is renewed: a row that does not open
            // drops a plain lease, which gives it back at once.
            Leased::Held(lease, row) => (self.stored(Some(&row))?, row.version, Some(lease)),
            Leased::Adopted(row) => (self.stored(Some(&row))?, row.version, None),
            Leased::Missing => (Stored::Missing, 0, None),
        };
        Ok(RowTransaction {
            db: self.db.clone(),
            client_id: self.client_id.clone(),
            account: self.account.clone(),
            stored,
            version,
            // Renewed from now: a long refresh, or a commit that must be
            // retried, never outlives it.
            lease: lease.map(Renewed::new),
        })
    }

    fn error(&self, e: medium_oauth::Error) -> StoreError {
        StoreError::of_engine(&self.account, e)
    }
}

/// The lease on one account's row, with the row as it stood under it.
/// Dropped, it gives the lease back; abandoned, it lets it run out.
pub(crate) struct RowTransaction {
    db: TokenDatabase,
    client_id: Arc<str>,
    account: AccountId,
    stored: Stored<StoreError>,
    /// The version read: a commit goes over it alone.
    version: i64,
    /// `None`: no lease (no row, or a row adopted while another replica
    /// held it), so nothing is committed.
    lease: Option<Renewed>,
}

impl Transaction for RowTransaction {
    type Error = StoreError;

    fn stored(&self) -> &Stored<StoreError> {
        &self.stored
    }

    /// The refresh and its commit must both end inside the lease, or
    /// another replica could read the old refresh token meanwhile.
    fn refresh_budget(&self) -> Option<Duration> {
        let left = self.lease.as_ref().map_or(Duration::ZERO, Renewed::left);
        Some(REFRESH_DEADLINE.min(left.saturating_sub(self.db.query_deadline())))
    }

    async fn commit(&mut self, token: &Token, now: SystemTime) -> Result<bool, StoreError> {
        let Some(lease) = &self.lease else {
            return Ok(false);
        };
        let written = self
            .db
            .commit_refresh(
                &self.client_id,
                &self.account,
                self.version,
                lease.owner(),
                token,
                system_time_to_ms(now),
            )
            .await?;
        // Either way the lease is done with: the statement gave it back, or
        // it is no longer this replica's (a new login cleared it, or it ran
        // out and was taken).
        if let Some(lease) = self.lease.take() {
            lease.end(written);
        }
        Ok(written)
    }

    async fn bury(
        &mut self,
        reason: &medium_oauth::Error,
        now: SystemTime,
    ) -> Result<(), StoreError> {
        let reason = death_reason(reason);
        tracing::warn!("account {} needs re-authorization: {reason}", self.account);
        let written = self
            .db
            .bury(
                &self.client_id,
                &self.account,
                self.version,
                &reason,
                system_time_to_ms(now),
            )
            .await?;
        if let Some(lease) = self.lease.take() {
            lease.end(written);
        }
        Ok(())
    }

    fn abandon(mut self) {
        // Renewals stop; the lease runs out by itself.
        drop(self.lease.take());
    }
}

impl Drop for RowTransaction {
    fn drop(&mut self) {
        if let Some(lease) = self.lease.take() {
            lease.end(false);
        }
    }
}
