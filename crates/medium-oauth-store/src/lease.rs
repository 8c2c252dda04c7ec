//! The cross-replica lock: a lease on the account's row, with owner and
//! expiry, taken by one atomic statement and given back by the commit. A
//! replica that dies mid-refresh holds it at most [`LEASE`].

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use medium_oauth::engine::doubling;

use crate::db::{StoredRow, TokenDatabase};
use crate::{AccountId, StoreError};

/// How long a lease lasts: a replica that dies while refreshing blocks the
/// account's refresh for at most this long.
pub const LEASE: Duration = Duration::from_secs(30);

/// The longest a refresh request may take under a lease: well inside
/// [`LEASE`], so the holder commits the rotated token before anyone else
/// may take the lease and read the old one.
pub const REFRESH_DEADLINE: Duration = Duration::from_secs(15);

/// First wait before asking again for a lease another replica holds: a
/// refresh against Medium takes some tens of milliseconds.
const POLL_FIRST: Duration = Duration::from_millis(20);

/// Longest wait between two asks: a waiter notices a released lease within
/// half a second, and a fleet of waiters asks each database row at most
/// twice a second each.
pub(crate) const POLL_CAP: Duration = Duration::from_millis(500);

/// How often a holder renews its lease while it refreshes, or while it
/// keeps a refreshed token its commit failed to write: a third of
/// [`LEASE`], so a renewal that fails has most of the lease left to be
/// tried again. A holder that dies right after a renewal blocks the account
/// for up to `LEASE_RENEWAL` + [`LEASE`] from when it took the lease, which
/// [`DEFAULT_LOCK_WAIT`](crate::DEFAULT_LOCK_WAIT) outlasts.
pub const LEASE_RENEWAL: Duration = Duration::from_secs(LEASE.as_secs() / 3);

/// How soon a renewal that failed (the database away) is tried again: many
/// tries fit in what is left of the lease.
pub(crate) const RENEW_RETRY: Duration = Duration::from_secs(1);

/// The wait before the next renewal, after one that succeeded or failed.
fn next_renewal(succeeded: bool) -> Duration {
    if succeeded {
        LEASE_RENEWAL
    } else {
        RENEW_RETRY
    }
}

/// A lease held on one account's row; given back when dropped unless it was
/// consumed by a commit.
pub(crate) struct Lease {
    db: TokenDatabase,
    client_id: Arc<str>,
    account: AccountId,
    owner: String,
    /// Sent before the statement that took it: the lease runs out no
    /// earlier than [`LEASE`] after this.
    sent: Instant,
    released: bool,
}

impl Lease {
    /// The lease was given back by the statement that wrote the row.
    pub(crate) fn consumed(mut self) {
        self.released = true;
    }

    /// Leaves the lease to run out rather than giving it back: after a
    /// refresh whose outcome is unknown, or whose token is not yet
    /// committed, no replica may read the old refresh token before then.
    pub(crate) fn keep_until_it_runs_out(self) {
        self.consumed();
    }

    /// Keeps the lease from running out while its holder waits on work it
    /// does not pace (the engine's
    /// refresh, whose HTTP timeout may match the lease): renewed every
    /// [`LEASE_RENEWAL`] until the task is aborted, or the lease is found
    /// given back or taken over. A holder that dies stops renewing, so its
    /// lease still runs out within [`LEASE`].
    pub(crate) fn keep_renewed(&self) -> tokio::task::JoinHandle<()> {
        let db = self.db.clone();
        let client_id = self.client_id.clone();
        let account = self.account.clone();
        let owner = self.owner.clone();
        tokio::spawn(async move {
            let mut pause = LEASE_RENEWAL;
            loop {
                tokio::time::sleep(pause).await;
                let renewed = match db.renew_lease(&client_id, &account, &owner).await {
                    Ok(true) => true,
                    Ok(false) => return,
                    // The database is away: try again soon; if it stays
                    // away past the lease, so does every replica.
                    Err(e) => {
                        tracing::warn!("lease on account {account} not renewed: {e}");
                        false
                    }
                };
                pause = next_renewal(renewed);
            }
        })
    }

    /// Time surely left on the lease, as first taken.
    pub(crate) fn left(&self) -> Duration {
        LEASE.saturating_sub(self.sent.elapsed())
    }

    /// Whom the lease names: a commit writes only while it still does.
    pub(crate) fn owner(&self) -> &str {
        &self.owner
    }
}

/// A lease renewed from the moment it is taken until its holder is done:
/// a refresh or a commit that runs long, or a commit that must be retried,
/// never outlives it. Dropped, it stops renewing and lets the lease run
/// out, as after a refresh whose outcome is unknown.
pub(crate) struct Renewed {
    lease: Option<Lease>,
    renewal: tokio::task::JoinHandle<()>,
}

impl Renewed {
    pub(crate) fn new(lease: Lease) -> Self {
        Self {
            renewal: lease.keep_renewed(),
            lease: Some(lease),
        }
    }

    fn stop(&mut self) -> Option<Lease> {
        self.renewal.abort();
        self.lease.take()
    }

    /// Stops renewing; gives the lease back unless a commit already did.
    pub(crate) fn end(mut self, committed: bool) {
        match self.stop() {
            Some(lease) if committed => lease.consumed(),
            // Dropping a lease gives it back.
            lease => drop(lease),
        }
    }

    /// Time surely left on the lease, as first taken (renewals only add).
    pub(crate) fn left(&self) -> Duration {
        self.lease.as_ref().map_or(Duration::ZERO, Lease::left)
    }

    /// Whom the lease names.
    pub(crate) fn owner(&self) -> &str {
        self.lease.as_ref().map_or("", Lease::owner)
    }
}

impl Drop for Renewed {
    fn drop(&mut self) {
        if let Some(lease) = self.stop() {
            lease.keep_until_it_runs_out();
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        // Drop cannot wait: the release runs on its own. Without a runtime
        // (a process exiting) the lease simply runs out.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let db = self.db.clone();
            let client_id = self.client_id.clone();
            let account = self.account.clone();
            let owner = std::mem::take(&mut self.owner);
            runtime.spawn(async move {
                if let Err(e) = db.release_lease(&client_id, &account, &owner).await {
                    tracing::warn!("lease on account {account} not given back (it runs out): {e}");
                }
            });
        }
    }
}

/// What waiting for a lease came to.
pub(crate) enum Leased {
    /// The lease, and the row as it stands under it.
    Held(Lease, StoredRow),
    /// Another replica holds it, and `adopt` accepted the row it last wrote:
    /// no need to wait.
    Adopted(StoredRow),
    /// The account has no row.
    Missing,
}

/// Takes `account`'s lease, asking again on a doubling schedule while
/// another replica holds it, until `wait` has passed. While waiting, a row
/// that `adopt` accepts (refreshed by the holder) ends the wait.
pub(crate) async fn take(
    db: &TokenDatabase,
    client_id: &Arc<str>,
    account: &AccountId,
    wait: Duration,
    adopt: impl Fn(&StoredRow) -> bool,
) -> Result<Leased, StoreError> {
    let started = Instant::now();
    let mut asked: u32 = 0;
    loop {
        asked = asked.saturating_add(1);
        let owner = random_owner()?;
        let sent = Instant::now();
        if let Some(row) = db.take_lease(client_id, account, &owner).await? {
            let lease = Lease {
                db: db.clone(),
                client_id: client_id.clone(),
                account: account.clone(),
                owner,
                sent,
                released: false,
            };
            return Ok(Leased::Held(lease, row));
        }
        let Some(row) = db.read(client_id, account).await? else {
            return Ok(Leased::Missing);
        };
        if adopt(&row) {
            return Ok(Leased::Adopted(row));
        }
        let waited = started.elapsed();
        let pause = jittered(doubling(POLL_FIRST, POLL_CAP, asked))?;
        if waited + pause > wait {
            return Err(StoreError::LockTimeout {
                account: account.clone(),
                waited,
            });
        }
        tokio::time::sleep(pause).await;
    }
}

/// Between half and all of `pause`: waiters that started together drift
/// apart.
fn jittered(pause: Duration) -> Result<Duration, StoreError> {
    let mut byte = [0u8; 1];
    getrandom::getrandom(&mut byte).map_err(|e| StoreError::Randomness(e.to_string()))?;
    Ok(pause / 2 + pause * u32::from(byte[0]) / 512)
}

/// A fresh owner name for one lease: 128 random bits, so two holders never
/// share one, and a late release never gives back another's lease.
fn random_owner() -> Result<String, StoreError> {
    let mut bytes = [0u8; 16];
    getrandom::getrandom(&mut bytes).map_err(|e| StoreError::Randomness(e.to_string()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_between_half_and_all_of_the_delay() {
        for _ in 0..1000 {
            let pause = jittered(POLL_CAP).unwrap();
            assert!((POLL_CAP / 2..POLL_CAP).contains(&pause), "{pause:?}");
        }
    }

    #[test]
    fn a_failed_renewal_is_retried_well_inside_the_lease() {
        assert_eq!(next_renewal(true), LEASE_RENEWAL);
        assert_eq!(next_renewal(false), RENEW_RETRY);
        assert!(RENEW_RETRY * 10 < LEASE_RENEWAL * 3 && LEASE_RENEWAL * 3 <= LEASE);
    }

    #[test]
    fn owners_differ() {
        assert_ne!(random_owner().unwrap(), random_owner().unwrap());
        assert_eq!(random_owner().unwrap().len(), 32);
    }
}
