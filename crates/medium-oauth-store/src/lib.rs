//! Many users' Medium tokens, shared by many replicas: SQLite for one
//! machine, PostgreSQL for a fleet.
//!
//! A service that lets its users "Connect your Medium account" keeps each
//! user's grant in one table row, keyed by (client id, account id), with the
//! tokens sealed under a key the application supplies. Any replica asks
//! [`Accounts::token`] for a valid token: it comes from a bounded in-memory
//! cache, or from the row, or from one refresh that every replica shares.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let emulator = medium_oauth_emulator::Emulator::start(
//! #     medium_oauth_emulator::Config { auto_approve: true, ..Default::default() },
//! #     "127.0.0.1:0",
//! # ).await?;
//! # let dir = tempfile::tempdir()?;
//! # let database_url = format!("sqlite:{}", dir.path().join("tokens.db").display());
//! use medium_oauth::{ClientId, ClientSecret, OAuthClient, scopes};
//! use medium_oauth_store::{AccountId, Accounts, EncryptionKey, Keyring, TokenDatabase};
//!
//! let client = OAuthClient::builder(
//!     ClientId::new("demo-client"),
//!     ClientSecret::new("demo-secret"),
//!     "http://127.0.0.1:8080/callback",
//! )
//! # .authorization_server(emulator.authorization_server())
//! # .api_server(emulator.api_server())
//! .build()?;
//!
//! // 1. The database (`sqlite:tokens.db`, or `postgres://…` for a fleet),
//! //    and the key tokens are sealed with: 32 bytes from your secret
//! //    manager, under an id stored with each row.
//! # let key_bytes = [7u8; 32];
//! let keys = Keyring::new(EncryptionKey::new("2026-12", key_bytes)?);
//! let db = TokenDatabase::connect(&database_url, keys).await?;
//! let accounts = Accounts::builder(client.clone(), db).cache_capacity(10_000).build();
//!
//! // 2. When a user connects their Medium account, store the login's token.
//! let (url, pending) = client.authorize_url(scopes![basicProfile, publishPost])?;
//! # let browser = medium_oauth::tls::client_builder()?.redirect(reqwest::redirect::Policy::none()).build()?;
//! # let callback = browser.get(url).send().await?.headers()["location"].to_str()?.to_owned();
//! let token = client.complete(&pending, &callback).await?;
//! let alice = AccountId::new("alice")?;
//! accounts.connect(&alice, &token).await?;
//!
//! // 3. On any replica, whenever the service acts for her: a valid token,
//! //    refreshed once across the fleet when due, or a typed error
//! //    (`requires_reauthorization()`: ask her to connect again).
//! let token = accounts.token(&alice).await?;
//! let me = client.me(token.access_token()).await?;
//! # let _ = me;
//!
//! // 4. Who must connect again, and removing an account.
//! assert!(accounts.needing_reauthorization(None, 100).await?.is_empty());
//! accounts.remove(&alice).await?;
//! # Ok(())
//! # }
//! ```
//!
//! # How replicas share a refresh
//!
//! A due token is refreshed under a lease on its row: one statement sets
//! the lease's owner and expiry if nobody holds it (or its holder's lease
//! ran out), and returns the row as it stands. Leases are judged by the
//! database's clock, so replicas whose clocks disagree still agree on who
//! holds one. The holder refreshes with
//! that row's refresh token and commits the new tokens only over the row
//! version it read, giving the lease back in the same statement; the new
//! access token is handed out only after that commit. A replica that finds
//! the lease held waits, asking again on a doubling schedule, and adopts
//! the holder's token as soon as it is committed, sending no request. A
//! replica that dies holding a lease blocks that account for at most
//! [`LEASE`] (30 s); refresh requests are cut off at [`REFRESH_DEADLINE`],
//! well inside it, so a rotated refresh token is committed before anyone
//! else may read the old one.
//!
//! The refresh itself runs on a task of its own, so a caller that gives up
//! cannot cut it short between Medium's answer and the commit. If the
//! commit fails (the database is restarting), the new token is kept in
//! memory and its lease renewed until a background task (or the next
//! call) commits it, so no replica sends the old refresh token meanwhile
//! (the account waits on every replica until then). Only a replica that
//! stops before that commit, or loses the database until its lease runs
//! out and another replica takes it, loses the token.
//!
//! # Dead grants
//!
//! A refresh token Medium refuses marks the row dead: every replica then
//! answers [`StoreError::ReauthorizationRequired`] from the row, without a
//! request. [`Accounts::connect`] with a new login revives it.
//!
//! # At rest
//!
//! Access and refresh tokens (with expiry and scopes) are sealed with
//! XChaCha20-Poly1305, bound to their client, account and key id, so a row
//! copied onto another account does not open. Each write seals with the
//! keyring's current key; keep old keys in the ring
//! ([`Keyring::with_old_key`]) until no row names them. A missing or wrong
//! key is an error naming the account and key id, and nothing is written.
//!
//! # SQLite or PostgreSQL
//!
//! SQLite (`sqlite:PATH`) needs nothing installed and serves every process
//! on one machine that can open the file (WAL mode: readers never wait).
//! Pick PostgreSQL (`postgres://…`) when replicas run on several machines,
//! or the file would sit on a network file system, where SQLite's locks
//! cannot be trusted.

mod account;
mod accounts;
mod cipher;
mod db;
mod error;
mod lease;
mod logins;
mod row;

pub use account::{AccountId, MAX_ACCOUNT_ID_BYTES};
pub use accounts::{
    AccountSource, AccountState, AccountStatus, Accounts, AccountsBuilder, CACHE_TTL,
    DEFAULT_CACHE_CAPACITY, DEFAULT_LOCK_WAIT, DEFAULT_MARGIN, RETRY_BASE, RETRY_CAP,
};
pub use cipher::{EncryptionKey, KEY_BYTES, Keyring, MAX_KEY_ID_BYTES};
pub use db::{
    DEFAULT_MAX_CONNECTIONS, DEFAULT_QUERY_DEADLINE, DatabaseOptions, Engine, TokenDatabase,
};
pub use error::StoreError;
pub use lease::{LEASE, LEASE_RENEWAL, REFRESH_DEADLINE};
pub use logins::{MAX_PENDING_LOGINS, MAX_PENDING_TTL, MIN_BINDING_BYTES};
