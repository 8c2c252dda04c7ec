//! Many users' Medium tokens, shared by many replicas: SQLite for one
//! machine, PostgreSQL for a fleet.
//!
//! TODO: crate docs with the main path.

mod account;
mod accounts;
mod cipher;
mod db;
mod error;
mod handle;
mod lease;

pub use account::{AccountId, MAX_ACCOUNT_ID_BYTES};
pub use accounts::{
    AccountState, AccountStatus, Accounts, AccountsBuilder, DEFAULT_CACHE_CAPACITY,
    DEFAULT_LOCK_WAIT, DEFAULT_MARGIN, RETRY_BASE, RETRY_CAP,
};
pub use cipher::{EncryptionKey, KEY_BYTES, Keyring, MAX_KEY_ID_BYTES};
pub use db::{
    DEFAULT_MAX_CONNECTIONS, DEFAULT_QUERY_DEADLINE, DatabaseOptions, Engine, TokenDatabase,
};
pub use error::StoreError;
pub use handle::AccountTokenStore;
pub use lease::{LEASE, REFRESH_DEADLINE};
