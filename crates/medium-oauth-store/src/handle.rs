//! One account of the shared store as a [`TokenStore`], so a
//! [`RefreshingTokenSource`](medium_oauth::RefreshingTokenSource) works over
//! it unchanged, with the lease as its cross-replica lock.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use medium_oauth::{BoxFuture, Clock, Error, StoreLock, Token, TokenStore, system_time_to_ms};

use crate::db::TokenDatabase;
use crate::lease::{self, Leased, Renewed};
use crate::{AccountId, StoreError};

/// One account's row, as a [`TokenStore`]: made by
/// [`Accounts::token_store`](crate::Accounts::token_store).
///
/// A dead grant loads as no token, so the source reports "re-authorization
/// required" without asking Medium. A save under the lock commits only
/// over the row the lock found (a new login written meanwhile stands), and
/// gives the lease back in the same statement. When a save fails, the
/// handle keeps the lease, renewed, for its next lock, under which the
/// source saves the token it kept first (the source's own retry schedule
/// paces that): no replica sends the refresh token it may have rotated
/// out, and until then the account waits on every replica. If the lease
/// is lost meanwhile (a new login cleared it, or the database was away for
/// a whole lease), the kept token still goes only over the row it was
/// refreshed from, so a new login or a removal stands. Dropping the handle
/// lets the lease run out. A save with no row at the lock is a new
/// login's. Fleets that refresh many accounts use
/// [`Accounts::token`](crate::Accounts::token).
pub struct AccountTokenStore {
    db: TokenDatabase,
    client_id: Arc<str>,
    account: AccountId,
    clock: Arc<dyn Clock>,
    lock_wait: Duration,
    held: Arc<Mutex<Held>>,
}

/// What this handle's latest lock found, for its save.
#[derive(Default)]
struct Held {
    /// Which lock: a source may drop an older lock after taking a newer
    /// one (its commit gave the older lease back), and that drop must not
    /// clear the newer one's state.
    cycle: u64,
    /// What a save under the lock commits over; `None`: no lease, or no
    /// row.
    target: Option<Target>,
    /// A commit gave the lease back: dropping the lock gives nothing back.
    committed: bool,
    /// A save failed: the version it was to commit over, and the token,
    /// which may hold the only copy of a rotated refresh token.
    failed: Option<(i64, Token)>,
    /// After a failed save, its lease, for the next lock.
    kept: Option<Kept>,
    /// A kept token whose lease was lost meanwhile (a new login cleared it,
    /// or it ran out and was taken), and the version it was refreshed
    /// from: whenever the source saves it, under whatever lock, it goes
    /// only over that row.
    stale: Option<(i64, Token)>,
}

/// A token whose save failed, the version it was refreshed from, and the
/// lease that still guards that row.
struct Kept {
    version: i64,
    token: Token,
    renewed: Renewed,
}

/// A save commits only over this row version, and only while this owner
/// holds the lease.
#[derive(Clone)]
struct Target {
    version: i64,
    owner: String,
}

/// The lease behind a [`StoreLock`]: given back when the source drops the
/// lock, unless its commit did, or kept for the next lock after a failed
/// save.
struct HeldLease {
    renewed: Option<Renewed>,
    held: Arc<Mutex<Held>>,
    cycle: u64,
}

impl Drop for HeldLease {
    fn drop(&mut self) {
        let Some(renewed) = self.renewed.take() else {
            return;
        };
        let mut held = lock(&self.held);
        // Superseded by a newer lock: this lease was given back by this
        // cycle's commit, or the newer one could not have been taken.
        if held.cycle != self.cycle {
            return;
        }
        held.target = None;
        if let Some((version, token)) = held.failed.take() {
            held.kept = Some(Kept {
                version,
                token,
                renewed,
            });
            return;
        }
        let committed = std::mem::take(&mut held.committed);
        drop(held);
        renewed.end(committed);
    }
}

fn lock(held: &Mutex<Held>) -> MutexGuard<'_, Held> {
    held.lock().unwrap_or_else(|e| e.into_inner())
}

impl AccountTokenStore {
    pub(crate) fn new(
        db: TokenDatabase,
        client_id: Arc<str>,
        account: AccountId,
        clock: Arc<dyn Clock>,
        lock_wait: Duration,
    ) -> Self {
        Self {
            db,
            client_id,
            account,
            clock,
            lock_wait,
            held: Arc::default(),
        }
    }

    /// The account.
    pub fn account(&self) -> &AccountId {
        &self.account
    }

    /// A lock cycle over `renewed`, for a save over the row at `version`.
    fn hold(&self, renewed: Renewed, version: i64) -> StoreLock {
        let mut held = lock(&self.held);
        let cycle = held.cycle.wrapping_add(1);
        *held = Held {
            cycle,
            target: Some(Target {
                version,
                owner: renewed.owner().to_owned(),
            }),
            stale: held.stale.take(),
            ..Held::default()
        };
        drop(held);
        StoreLock::new(HeldLease {
            renewed: Some(renewed),
            held: self.held.clone(),
            cycle,
        })
    }

    fn error(&self, e: StoreError) -> Error {
        match e {
            StoreError::LockTimeout { waited, .. } => Error::StoreBusy {
                path: format!("account {}", self.account),
                waited,
            },
            e => Error::Store {
                path: format!("account {}", self.account),
                reason: e.to_string(),
                source: None,
            },
        }
    }
}

impl fmt::Debug for AccountTokenStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccountTokenStore")
            .field("client_id", &self.client_id)
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

impl TokenStore for AccountTokenStore {
    fn load(&self) -> BoxFuture<'_, Result<Option<Token>, Error>> {
        Box::pin(async move {
            let row = self.db.read(&self.client_id, &self.account).await;
            match row.map_err(|e| self.error(e))? {
                Some(row) if row.dead_reason.is_none() => self
                    .db
                    .open(&self.client_id, &self.account, &row)
                    .map(Some)
                    .map_err(|e| self.error(e)),
                _ => Ok(None),
            }
        })
    }

    fn save<'a>(&'a self, token: &'a Token) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            let now_ms = system_time_to_ms(self.clock.now());
            let (cycle, target, stale) = {
                let held = lock(&self.held);
                let stale = held.stale.as_ref();
                let stale = stale.filter(|(_, kept)| kept.access_token() == token.access_token());
                (held.cycle, held.target.clone(), stale.map(|(v, _)| *v))
            };
            // The kept token goes only over the row it was refreshed from;
            // with no lease (no row), over nothing.
            let target = match stale {
                Some(version) => Some(Target {
                    version,
                    owner: target.map(|t| t.owner).unwrap_or_default(),
                }),
                None => target,
            };
            let saved = match &target {
                Some(target) => {
                    let (version, owner) = (target.version, &target.owner);
                    let committed = self
                        .db
                        .commit_refresh(
                            &self.client_id,
                            &self.account,
                            version,
                            owner,
                            token,
                            now_ms,
                        )
                        .await;
                    // Not written: a new login replaced the row meanwhile
                    // (or the lease was lost to another replica); the row
                    // is newer than this refresh, so it stands, and the
                    // source adopts it when this token is due.
                    if let Ok(false) = committed {
                        tracing::warn!(
                            "account {}: the row changed during a refresh; it stands",
                            self.account
                        );
                    }
                    committed
                }
                None => self
                    .db
                    .put(&self.client_id, &self.account, token, now_ms)
                    .await
                    .map(|()| false),
            };
            let mut held = lock(&self.held);
            if stale.is_some() {
                held.stale = None;
            }
            // The outcome belongs to the lock it was saved under, if that
            // is still the latest.
            if let Some(target) = target
                && held.cycle == cycle
            {
                // Written: the statement gave the lease back. Failed: the
                // token may be a rotation only this process knows.
                held.target = None;
                match &saved {
                    Ok(written) => held.committed = *written,
                    Err(_) => held.failed = Some((target.version, token.clone())),
                }
            }
            drop(held);
            saved.map(drop).map_err(|e| self.error(e))
        })
    }

    fn lock(&self) -> BoxFuture<'_, Result<StoreLock, Error>> {
        Box::pin(async move {
            let kept = lock(&self.held).kept.take();
            if let Some(kept) = kept {
                match kept.renewed.renew().await {
                    Ok(true) => return Ok(self.hold(kept.renewed, kept.version)),
                    // A new login cleared it, or it ran out and was taken:
                    // the kept token may still go only over its own row.
                    Ok(false) => lock(&self.held).stale = Some((kept.version, kept.token)),
                    Err(e) => {
                        lock(&self.held).kept = Some(kept);
                        return Err(self.error(e));
                    }
                }
            }
            let taken = lease::take(
                &self.db,
                &self.client_id,
                &self.account,
                self.lock_wait,
                // The source re-reads under the lock itself.
                |_| false,
            )
            .await
            .map_err(|e| self.error(e))?;
            Ok(match taken {
                Leased::Held(lease, row) => self.hold(Renewed::new(lease), row.version),
                // Nothing to refresh: the source finds no token, or saves a
                // new login's (a kept token, aimed at no lease, writes
                // nothing: a removal stands).
                Leased::Missing | Leased::Adopted(_) => {
                    let mut held = lock(&self.held);
                    *held = Held {
                        cycle: held.cycle.wrapping_add(1),
                        stale: held.stale.take(),
                        ..Held::default()
                    };
                    StoreLock::default()
                }
            })
        })
    }
}
