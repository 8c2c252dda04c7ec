//! The memory store: tokens kept in this process alone.

use std::fmt;
use std::sync::{Arc, Mutex};

use super::{BoxFuture, StoreTransaction, TokenStore};
use crate::{Error, Token};

/// A store in memory: for tests, and for programs that keep tokens elsewhere
/// and seed them with [`MemoryTokenStore::with_token`].
#[derive(Default)]
pub struct MemoryTokenStore {
    token: Arc<Mutex<Option<Token>>>,
}

impl MemoryTokenStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// A store holding `token`.
    pub fn with_token(token: Token) -> Self {
        Self {
            token: Arc::new(Mutex::new(Some(token))),
        }
    }

    /// Replaces the stored token at once, as a login in another part of
    /// the program would.
    pub fn save(&self, token: &Token) {
        *self.slot() = Some(token.clone());
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Option<Token>> {
        lock_ignoring_poison(&self.token)
    }
}

fn lock_ignoring_poison<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl fmt::Debug for MemoryTokenStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryTokenStore")
            .field("token", &*self.slot())
            .finish()
    }
}

impl TokenStore for MemoryTokenStore {
    fn load(&self) -> BoxFuture<'_, Result<Option<Token>, Error>> {
        let token = self.slot().clone();
        Box::pin(async move { Ok(token) })
    }

    fn begin(&self) -> BoxFuture<'_, Result<Box<dyn StoreTransaction>, Error>> {
        let begun = MemoryTransaction {
            stored: self.slot().clone(),
            token: self.token.clone(),
        };
        Box::pin(async move { Ok(Box::new(begun) as Box<dyn StoreTransaction>) })
    }
}

/// A memory store's transaction: one process, so no lock.
struct MemoryTransaction {
    stored: Option<Token>,
    token: Arc<Mutex<Option<Token>>>,
}

impl StoreTransaction for MemoryTransaction {
    fn stored(&self) -> Option<&Token> {
        self.stored.as_ref()
    }

    fn commit<'a>(&'a mut self, token: &'a Token) -> BoxFuture<'a, Result<(), Error>> {
        *lock_ignoring_poison(&self.token) = Some(token.clone());
        Box::pin(async { Ok(()) })
    }
}
