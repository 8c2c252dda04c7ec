//! Where tokens live between runs: the [`TokenStore`] trait, a memory store
//! and an atomic, locked JSON file store.
//!
//! This file is the contract alone; each store, and the private temporary
//! files the file store writes through, has a file of its own, so a change
//! to one way of keeping tokens never has to be read past the others.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use crate::{Error, Token};

mod file;
mod memory;
mod temp;

pub use file::{Document, FileTokenStore, LOCK_WAIT, MAX_FILE_BYTES};
pub use memory::MemoryTokenStore;

/// A boxed, sendable future: what [`TokenStore`]'s methods return, so the
/// trait can be used as `Arc<dyn TokenStore>`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Holds a store's cross-process lock until dropped.
#[derive(Default)]
pub struct StoreLock(Option<Box<dyn Send + Sync>>);

impl StoreLock {
    /// A lock held by `guard`, released when it is dropped.
    pub fn new(guard: impl Send + Sync + 'static) -> Self {
        Self(Some(Box::new(guard)))
    }
}

impl fmt::Debug for StoreLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "StoreLock(held)"
        } else {
            "StoreLock(none)"
        })
    }
}

/// Persists one token, for a [`RefreshingTokenSource`](crate::RefreshingTokenSource).
/// Implementations must be safe to call from several tasks at once.
///
/// Changes go through a [`StoreTransaction`]: [`begin`](Self::begin) takes
/// the store's lock (if other processes share it) and reads the token under
/// it, and the transaction commits over what it read, releasing the lock
/// when dropped. (The [engine](crate::engine)'s `Backend` is the same seam
/// with typed errors, arrival times and dead marks, for stores shared by
/// many replicas.)
pub trait TokenStore: Send + Sync {
    /// The stored token, or `None` if there is none, read without the lock.
    fn load(&self) -> BoxFuture<'_, Result<Option<Token>, Error>>;

    /// Takes the store's lock, excluding other processes that share the
    /// store until the transaction is dropped (stores used by one process
    /// need not lock), and reads the token under it.
    fn begin(&self) -> BoxFuture<'_, Result<Box<dyn StoreTransaction>, Error>>;
}

/// A [`TokenStore`]'s lock, with the token read under it.
pub trait StoreTransaction: Send + Sync {
    /// The token as it was under the lock.
    fn stored(&self) -> Option<&Token>;

    /// Replaces the stored token. A failure leaves the transaction (and its
    /// lock) as it was, so the commit can be tried again.
    fn commit<'a>(&'a mut self, token: &'a Token) -> BoxFuture<'a, Result<(), Error>>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AccessToken, GrantedScopes, RefreshToken};

    fn token(n: u32) -> Token {
        Token::new(
            AccessToken::new(format!("access-{n}")),
            Some(RefreshToken::new(format!("refresh-{n}"))),
            None,
            GrantedScopes::default(),
        )
    }

    // Here, where every store is in view: what each one's Debug shows is
    // checked side by side, with the lock's.
    #[test]
    fn debug_names_each_store_and_its_lock_and_redacts_the_token() {
        let store = MemoryTokenStore::with_token(token(7));
        let shown = format!("{store:?}");
        assert!(
            shown.starts_with("MemoryTokenStore {")
                && shown.contains("AccessToken([redacted])")
                && shown.contains("RefreshToken([redacted])"),
            "{shown}"
        );
        assert!(
            !shown.contains("access-7") && !shown.contains("refresh-7"),
            "{shown}"
        );
        // The path is what someone debugging a file store needs to see.
        let file = FileTokenStore::new("/somewhere/credentials.json");
        assert_eq!(
            format!("{file:?}"),
            r#"FileTokenStore { path: "/somewhere/credentials.json" }"#
        );
        assert_eq!(format!("{:?}", StoreLock::default()), "StoreLock(none)");
        assert_eq!(format!("{:?}", StoreLock::new(())), "StoreLock(held)");
    }
}
