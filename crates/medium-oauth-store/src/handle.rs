//! One account of the shared store as a [`TokenStore`], so a
//! [`RefreshingTokenSource`](medium_oauth::RefreshingTokenSource) works over
//! it unchanged, with the lease as its cross-replica lock.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use medium_oauth::{BoxFuture, Clock, Error, StoreLock, Token, TokenStore, system_time_to_ms};

use crate::db::TokenDatabase;
use crate::lease::{self, Leased};
use crate::{AccountId, StoreError};

/// One account's row, as a [`TokenStore`]: made by
/// [`Accounts::token_store`](crate::Accounts::token_store).
///
/// A dead grant loads as no token, so the source reports "re-authorization
/// required" without asking Medium; a save is a new login's, replacing the
/// row. Fleets that refresh many accounts use [`Accounts::token`](crate::Accounts::token),
/// which also commits only over the row it refreshed.
pub struct AccountTokenStore {
    db: TokenDatabase,
    client_id: Arc<str>,
    account: AccountId,
    clock: Arc<dyn Clock>,
    lock_wait: Duration,
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
        }
    }

    /// The account.
    pub fn account(&self) -> &AccountId {
        &self.account
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
            self.db
                .put(&self.client_id, &self.account, token, now_ms)
                .await
                .map_err(|e| self.error(e))
        })
    }

    fn lock(&self) -> BoxFuture<'_, Result<StoreLock, Error>> {
        Box::pin(async move {
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
                Leased::Held(lease, _) => StoreLock::new(lease),
                // Nothing to refresh: the source finds no token.
                Leased::Missing | Leased::Adopted(_) => StoreLock::default(),
            })
        })
    }
}
