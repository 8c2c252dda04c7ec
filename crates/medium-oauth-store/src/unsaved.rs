//! Refreshed tokens whose commit failed. Medium rotated the refresh token
//! and only this process knows the new one, so the token is kept in memory
//! and the lease is kept renewed, and a task of its own commits it as soon
//! as the database takes it: whether or not any caller asks for the
//! account again, no replica reads the old refresh token meanwhile. While
//! the database takes renewals but refuses the commit, the account is
//! blocked for every replica (they wait, and report `LockTimeout`): that
//! is the price of never replaying the old token.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use medium_oauth::{Clock, Token, system_time_to_ms};

use crate::db::TokenDatabase;
use crate::lease::Renewed;
use crate::{AccountId, StoreError};

/// First pause before the background commit tries again; it doubles per
/// failure up to [`COMMIT_RETRY_CAP`]. The lease is renewed on its own
/// schedule meanwhile, so these pauses may outlast it.
const COMMIT_RETRY_BASE: Duration = Duration::from_secs(1);

/// Longest pause between two background commits: a database back from an
/// outage holds the rotated token within a minute.
const COMMIT_RETRY_CAP: Duration = Duration::from_secs(60);

/// What committing a kept token came to.
pub(crate) enum Committed {
    /// Nothing was kept for the account (or the version asked for).
    Nothing,
    /// Written; the statement gave the lease back.
    Written {
        /// The token, to hand out now.
        token: Token,
        /// When it was written, by this process's clock.
        at_ms: i64,
    },
    /// The row moved on (a new login, or the lease lost to another
    /// replica): it stands, and the kept token was dropped.
    Superseded,
}

/// A token refreshed from the row at `version`, under the lease `owner`
/// holds.
struct Kept {
    version: i64,
    owner: String,
    token: Token,
}

/// The kept tokens of one [`Accounts`](crate::Accounts), by account. Not
/// in the cache: an eviction must not lose them.
#[derive(Clone)]
pub(crate) struct Unsaved {
    db: TokenDatabase,
    client_id: Arc<str>,
    clock: Arc<dyn Clock>,
    kept: Arc<Mutex<HashMap<AccountId, Kept>>>,
}

impl Unsaved {
    pub(crate) fn new(db: TokenDatabase, client_id: Arc<str>, clock: Arc<dyn Clock>) -> Self {
        Self {
            db,
            client_id,
            clock,
            kept: Arc::default(),
        }
    }

    /// Keeps `token`, refreshed from the row at `version` under `lease`,
    /// and commits it in the background, the lease renewed until then. A
    /// replica that cannot reach the database to renew may lose the lease
    /// when it runs out, as every replica would; if another replica has
    /// taken it by then, the commit writes nothing.
    pub(crate) fn keep(&self, account: AccountId, version: i64, token: Token, lease: Renewed) {
        let owner = lease.owner().to_owned();
        self.map().insert(
            account.clone(),
            Kept {
                version,
                owner,
                token,
            },
        );
        let this = self.clone();
        tokio::spawn(async move {
            let mut pause = COMMIT_RETRY_BASE;
            let mut attempts = 0u32;
            loop {
                tokio::time::sleep(pause).await;
                match this.commit(&account, Some(version)).await {
                    Ok(_) => break,
                    Err(e) => {
                        attempts = attempts.saturating_add(1);
                        tracing::error!(
                            "account {account}: a rotated token is still not committed after \
                             {attempts} attempts (the account waits for it on every replica): {e}"
                        );
                    }
                }
                pause = pause.saturating_mul(2).min(COMMIT_RETRY_CAP);
            }
            // The commit gave it back, or a new login's write cleared it.
            lease.consumed();
        });
    }

    /// Commits what is kept for `account` (only if refreshed from `only`,
    /// when given). It stays kept until written or superseded, so a failed
    /// attempt loses nothing.
    pub(crate) async fn commit(
        &self,
        account: &AccountId,
        only: Option<i64>,
    ) -> Result<Committed, StoreError> {
        let kept = self
            .map()
            .get(account)
            .filter(|kept| only.is_none_or(|v| v == kept.version))
            .map(|kept| (kept.version, kept.owner.clone(), kept.token.clone()));
        let Some((version, owner, token)) = kept else {
            return Ok(Committed::Nothing);
        };
        let at_ms = system_time_to_ms(self.clock.now());
        let written = self
            .db
            .commit_refresh(&self.client_id, account, version, &owner, &token, at_ms)
            .await?;
        let mut map = self.map();
        if map.get(account).is_some_and(|kept| kept.version == version) {
            map.remove(account);
        }
        drop(map);
        Ok(if written {
            Committed::Written { token, at_ms }
        } else {
            Committed::Superseded
        })
    }

    fn map(&self) -> MutexGuard<'_, HashMap<AccountId, Kept>> {
        self.kept.lock().unwrap_or_else(|e| e.into_inner())
    }
}
