//! The table, on either engine: one SQL text per operation (SQLite and
//! PostgreSQL share every statement; only the migrations differ), each call
//! under a deadline, tokens sealed before they are bound.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Once};
use std::time::Duration;

use medium_oauth::{CsrfState, Token, TokenRecord};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};

use crate::error::printable;
use crate::{AccountId, Keyring, StoreError};

/// The longest any one database call may take, connection wait included:
/// past it the caller gets [`StoreError::DatabaseTimeout`] (transient).
pub const DEFAULT_QUERY_DEADLINE: Duration = Duration::from_secs(10);

/// Connections per process: a replica's refreshes hold one only for the
/// length of a statement, never across a request to Medium.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 16;

/// Longest reason stored for a dead grant, in characters.
const MAX_REASON_CHARS: usize = 200;

/// A lease running out further ahead than this is taken as free: a clock
/// set wrong or a bad write must not lock an account for longer than a
/// lease, in milliseconds.
const LEASE_MS: i64 = crate::LEASE.as_millis() as i64;

impl Engine {
    /// The database's own clock, in milliseconds since the Unix epoch:
    /// leases are judged by it alone, so replicas whose clocks disagree
    /// still agree on who holds a lease.
    fn now_ms(self) -> &'static str {
        match self {
            Engine::Sqlite => "CAST(unixepoch('subsec') * 1000 AS INTEGER)",
            Engine::Postgres => "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
        }
    }

    /// Columns of a row as every read returns them, with whether a lease is
    /// held now.
    fn row_columns(self) -> String {
        let now = self.now_ms();
        format!(
            "key_id, sealed, expires_at_ms, dead_reason, version, updated_at_ms, \
             CAST(CASE WHEN lease_owner IS NOT NULL AND lease_until_ms > {now} \
             AND lease_until_ms <= {now} + {LEASE_MS} THEN 1 ELSE 0 END AS BIGINT) AS leased"
        )
    }
}

/// Where a store's rows live: SQLite for one machine, PostgreSQL for a
/// fleet. Cheap to clone; clones share the connection pool.
#[derive(Clone)]
pub struct TokenDatabase {
    inner: Arc<Inner>,
}

struct Inner {
    pool: AnyPool,
    engine: Engine,
    keyring: Keyring,
    deadline: Duration,
}

/// The database engine behind a [`TokenDatabase`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// A SQLite file: one machine, any number of processes on it.
    Sqlite,
    /// A PostgreSQL server: any number of machines.
    Postgres,
}

impl fmt::Debug for TokenDatabase {
    // The URL may carry a password: it is not kept.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenDatabase")
            .field("engine", &self.inner.engine)
            .field("keyring", &self.inner.keyring)
            .finish_non_exhaustive()
    }
}

/// Options for [`TokenDatabase::connect_with`].
#[derive(Debug, Clone)]
pub struct DatabaseOptions {
    /// See [`DEFAULT_MAX_CONNECTIONS`].
    pub max_connections: u32,
    /// See [`DEFAULT_QUERY_DEADLINE`].
    pub query_deadline: Duration,
}

impl Default for DatabaseOptions {
    fn default() -> Self {
        Self {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            query_deadline: DEFAULT_QUERY_DEADLINE,
        }
    }
}

/// The version a write leaves: every write bumps it, wrapping to 1 at 2^62
/// so a row (or one written out of bounds by someone else) never
/// overflows. Qualified, as an upsert's update also sees `excluded`.
macro_rules! next_version {
    () => {
        "CASE WHEN medium_oauth_accounts.version >= 4611686018427387904 \
         THEN 1 ELSE medium_oauth_accounts.version + 1 END"
    };
}

/// A row as stored, before its token is opened.
pub(crate) struct StoredRow {
    key_id: String,
    sealed: Vec<u8>,
    pub(crate) expires_at_ms: Option<i64>,
    pub(crate) dead_reason: Option<String>,
    pub(crate) version: i64,
    /// When the row was last written, by the writer's clock: when its
    /// token arrived.
    pub(crate) updated_at_ms: i64,
    /// A replica holds the lease now, by the database's clock.
    pub(crate) leased: bool,
}

/// A pending login as [`TokenDatabase::take_login`] took it out.
pub(crate) struct TakenLogin {
    pub(crate) state: CsrfState,
    pub(crate) scopes: String,
    pub(crate) left_ms: i64,
}

/// One account in a listing.
pub(crate) struct Summary {
    pub(crate) account: String,
    pub(crate) row: StoredRow,
}

impl TokenDatabase {
    /// Connects to `url` (`sqlite:tokens.db`, `sqlite::memory:` is refused
    /// as it is not shared; `postgres://user:pass@host/db`), creating a
    /// SQLite file if missing, and brings the schema up to date.
    pub async fn connect(url: &str, keyring: Keyring) -> Result<Self, StoreError> {
        Self::connect_with(url, keyring, DatabaseOptions::default()).await
    }

    /// [`TokenDatabase::connect`] with options.
    pub async fn connect_with(
        url: &str,
        keyring: Keyring,
        options: DatabaseOptions,
    ) -> Result<Self, StoreError> {
        static DRIVERS: Once = Once::new();
        DRIVERS.call_once(sqlx::any::install_default_drivers);
        let (engine, url) = engine_url(url)?;
        let deadline = options.query_deadline;
        let pool = AnyPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(deadline)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    let deadline_ms = deadline.as_millis();
                    let settings = match engine {
                        // WAL: readers never wait for the writer. The busy
                        // timeout is the wait for another process's write.
                        Engine::Sqlite => vec![
                            "PRAGMA journal_mode = WAL".to_owned(),
                            format!("PRAGMA busy_timeout = {deadline_ms}"),
                        ],
                        // A statement the client gave up on, or a forgotten
                        // transaction, cannot hold a row lock past the
                        // deadline.
                        Engine::Postgres => vec![
                            format!("SET statement_timeout = {deadline_ms}"),
                            format!("SET idle_in_transaction_session_timeout = {deadline_ms}"),
                        ],
                    };
                    for setting in &settings {
                        sqlx::query(setting).execute(&mut *conn).await?;
                    }
                    Ok(())
                })
            })
            .connect_lazy(&url)
            .map_err(StoreError::from)?;
        let db = Self {
            inner: Arc::new(Inner {
                pool,
                engine,
                keyring,
                deadline,
            }),
        };
        db.migrate().await?;
        Ok(db)
    }

    /// The deadline of each database call.
    pub(crate) fn query_deadline(&self) -> Duration {
        self.inner.deadline
    }

    /// The engine behind the store.
    pub fn engine(&self) -> Engine {
        self.inner.engine
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let mut migrator = match self.inner.engine {
            Engine::Sqlite => sqlx::migrate!("migrations/sqlite"),
            Engine::Postgres => sqlx::migrate!("migrations/postgres"),
        };
        // The application's own sqlx migrations may share the table of
        // applied versions; ours are dated and named for this crate, so the
        // two sets do not collide, and theirs are not ours to judge. (The
        // application's migrator needs the same setting, or a database of
        // its own.)
        migrator.set_ignore_missing(true);
        // Migrations lock the database themselves (an advisory lock on
        // PostgreSQL), so replicas starting together apply each once.
        self.timed(async {
            migrator
                .run(&self.inner.pool)
                .await
                .map_err(StoreError::from)
        })
        .await
    }

    /// `fut` under the query deadline.
    async fn timed<T>(
        &self,
        fut: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        tokio::time::timeout(self.inner.deadline, fut)
            .await
            .unwrap_or(Err(StoreError::DatabaseTimeout(self.inner.deadline)))
    }

    pub(crate) async fn read(
        &self,
        client_id: &str,
        account: &AccountId,
    ) -> Result<Option<StoredRow>, StoreError> {
        let columns = self.inner.engine.row_columns();
        let sql = format!(
            "SELECT {columns} FROM medium_oauth_accounts WHERE client_id = $1 AND account_id = $2"
        );
        self.fetch_row(&sql, |q| q.bind(client_id).bind(account.as_str()))
            .await
    }

    /// Takes the account's lease for `owner`, for [`LEASE`](crate::LEASE)
    /// by the database's clock, if nobody holds it (or its holder's ran
    /// out, or runs out implausibly far ahead), and returns the row as it
    /// is under the lease. `None`: no row, or another holder.
    pub(crate) async fn take_lease(
        &self,
        client_id: &str,
        account: &AccountId,
        owner: &str,
    ) -> Result<Option<StoredRow>, StoreError> {
        // One statement: atomic on both engines (on SQLite it takes the
        // write lock at once, as BEGIN IMMEDIATE would).
        let now = self.inner.engine.now_ms();
        let columns = self.inner.engine.row_columns();
        let sql = format!(
            "UPDATE medium_oauth_accounts SET lease_owner = $1, lease_until_ms = {now} + {LEASE_MS} \
             WHERE client_id = $2 AND account_id = $3 \
             AND (lease_owner IS NULL OR lease_until_ms IS NULL OR lease_until_ms <= {now} \
             OR lease_until_ms > {now} + {LEASE_MS}) \
             RETURNING {columns}"
        );
        self.fetch_row(&sql, |q| {
            q.bind(owner).bind(client_id).bind(account.as_str())
        })
        .await
    }

    /// Extends `owner`'s lease to [`LEASE`](crate::LEASE) from now, by the
    /// database's clock. `false`: `owner` no longer holds it.
    pub(crate) async fn renew_lease(
        &self,
        client_id: &str,
        account: &AccountId,
        owner: &str,
    ) -> Result<bool, StoreError> {
        let now = self.inner.engine.now_ms();
        let sql = format!(
            "UPDATE medium_oauth_accounts SET lease_until_ms = {now} + {LEASE_MS} \
             WHERE client_id = $1 AND account_id = $2 AND lease_owner = $3"
        );
        self.execute(&sql, |q| {
            q.bind(client_id).bind(account.as_str()).bind(owner)
        })
        .await
        .map(|n| n == 1)
    }

    /// Gives the lease back, if `owner` still holds it.
    pub(crate) async fn release_lease(
        &self,
        client_id: &str,
        account: &AccountId,
        owner: &str,
    ) -> Result<(), StoreError> {
        self.execute(
            "UPDATE medium_oauth_accounts SET lease_owner = NULL, lease_until_ms = NULL \
             WHERE client_id = $1 AND account_id = $2 AND lease_owner = $3",
            |q| q.bind(client_id).bind(account.as_str()).bind(owner),
        )
        .await
        .map(drop)
    }

    /// Writes a refreshed token over the row read as `version`, while
    /// `owner` still holds its lease, giving the lease back. `false`:
    /// someone else wrote the row since (a new login, or a replica that
    /// took an expired lease), or removed it and connected it again (its
    /// version numbers start over; its lease is not `owner`'s), and
    /// nothing was written.
    pub(crate) async fn commit_refresh(
        &self,
        client_id: &str,
        account: &AccountId,
        version: i64,
        owner: &str,
        token: &Token,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let (key_id, sealed, expires_at_ms) = self.seal(client_id, account, token)?;
        let written = self
            .execute(
                concat!(
                    "UPDATE medium_oauth_accounts SET key_id = $1, sealed = $2, \
                     expires_at_ms = $3, dead_reason = NULL, version = ",
                    next_version!(),
                    ", lease_owner = NULL, lease_until_ms = NULL, updated_at_ms = $4 \
                     WHERE client_id = $5 AND account_id = $6 AND version = $7 \
                     AND lease_owner = $8"
                ),
                |q| {
                    q.bind(key_id)
                        .bind(sealed)
                        .bind(expires_at_ms)
                        .bind(now_ms)
                        .bind(client_id)
                        .bind(account.as_str())
                        .bind(version)
                        .bind(owner)
                },
            )
            .await?;
        Ok(written == 1)
    }

    /// Marks the grant read as `version` dead. `false`: the row changed
    /// since (a new login), and it was left alone.
    pub(crate) async fn bury(
        &self,
        client_id: &str,
        account: &AccountId,
        version: i64,
        reason: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let reason = printable(reason, MAX_REASON_CHARS);
        let written = self
            .execute(
                concat!(
                    "UPDATE medium_oauth_accounts SET dead_reason = $1, version = ",
                    next_version!(),
                    ", lease_owner = NULL, lease_until_ms = NULL, updated_at_ms = $2 \
                     WHERE client_id = $3 AND account_id = $4 AND version = $5"
                ),
                |q| {
                    q.bind(reason)
                        .bind(now_ms)
                        .bind(client_id)
                        .bind(account.as_str())
                        .bind(version)
                },
            )
            .await?;
        Ok(written == 1)
    }

    /// Stores `token` as the account's, whatever was there: a new login,
    /// which also revives a dead grant and ends any refresh in progress
    /// (its commit will find the row changed).
    pub(crate) async fn put(
        &self,
        client_id: &str,
        account: &AccountId,
        token: &Token,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let (key_id, sealed, expires_at_ms) = self.seal(client_id, account, token)?;
        self.execute(
            concat!(
                "INSERT INTO medium_oauth_accounts (client_id, account_id, key_id, sealed, \
                 expires_at_ms, dead_reason, version, lease_owner, lease_until_ms, \
                 updated_at_ms) VALUES ($1, $2, $3, $4, $5, NULL, 1, NULL, NULL, $6) \
                 ON CONFLICT (client_id, account_id) DO UPDATE SET key_id = excluded.key_id, \
                 sealed = excluded.sealed, expires_at_ms = excluded.expires_at_ms, \
                 dead_reason = NULL, version = ",
                next_version!(),
                ", lease_owner = NULL, lease_until_ms = NULL, \
                 updated_at_ms = excluded.updated_at_ms"
            ),
            |q| {
                q.bind(client_id)
                    .bind(account.as_str())
                    .bind(key_id)
                    .bind(sealed)
                    .bind(expires_at_ms)
                    .bind(now_ms)
            },
        )
        .await
        .map(drop)
    }

    /// Deletes the account's row. `false`: there was none.
    pub(crate) async fn delete(
        &self,
        client_id: &str,
        account: &AccountId,
    ) -> Result<bool, StoreError> {
        self.execute(
            "DELETE FROM medium_oauth_accounts WHERE client_id = $1 AND account_id = $2",
            |q| q.bind(client_id).bind(account.as_str()),
        )
        .await
        .map(|n| n == 1)
    }

    /// Up to `limit` accounts after `after`, in id order; with `dead_only`,
    /// only those whose grant is dead.
    pub(crate) async fn list(
        &self,
        client_id: &str,
        after: Option<&str>,
        limit: u32,
        dead_only: bool,
    ) -> Result<Vec<Summary>, StoreError> {
        let dead = if dead_only {
            " AND dead_reason IS NOT NULL"
        } else {
            ""
        };
        let columns = self.inner.engine.row_columns();
        let sql = format!(
            "SELECT account_id, {columns} FROM medium_oauth_accounts \
             WHERE client_id = $1 AND account_id > $2{dead} ORDER BY account_id LIMIT $3"
        );
        self.timed(async {
            let rows = sqlx::query(&sql)
                .bind(client_id)
                .bind(after.unwrap_or_default())
                .bind(i64::from(limit))
                .fetch_all(&self.inner.pool)
                .await
                .map_err(StoreError::from)?;
            rows.iter()
                .map(|r| {
                    Ok(Summary {
                        account: r.try_get("account_id").map_err(StoreError::from)?,
                        row: stored_row(r)?,
                    })
                })
                .collect()
        })
        .await
    }

    /// Keeps a pending login, its `state` sealed, until `ttl_ms` from now by
    /// the database's clock, unless `limit` logins of the client are
    /// pending already (expired ones are deleted first). `false`: the limit
    /// was reached and nothing was kept.
    pub(crate) async fn insert_login(
        &self,
        client_id: &str,
        digest: &str,
        state: &str,
        scopes: &str,
        ttl_ms: i64,
        limit: u64,
    ) -> Result<bool, StoreError> {
        let now = self.inner.engine.now_ms();
        self.execute(
            &format!(
                "DELETE FROM medium_oauth_logins WHERE client_id = $1 AND expires_at_ms <= {now}"
            ),
            |q| q.bind(client_id),
        )
        .await?;
        let (key_id, sealed) =
            self.inner
                .keyring
                .seal_login(client_id, digest, state.as_bytes())?;
        // One statement, so the count and the insert see the same table.
        let sql = format!(
            "INSERT INTO medium_oauth_logins \
             (client_id, state_digest, key_id, sealed, scopes, expires_at_ms) \
             SELECT $1, $2, $3, $4, $5, {now} + $6 \
             WHERE (SELECT COUNT(*) FROM medium_oauth_logins WHERE client_id = $7) < $8"
        );
        let written = self
            .execute(&sql, |q| {
                q.bind(client_id)
                    .bind(digest)
                    .bind(key_id)
                    .bind(sealed)
                    .bind(scopes)
                    .bind(ttl_ms)
                    .bind(client_id)
                    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            })
            .await?;
        Ok(written == 1)
    }

    /// Takes the pending login found by `digest` out of the table, in the
    /// statement that reads it, so it completes on one replica only: its
    /// state, scopes, and milliseconds left by the database's clock.
    pub(crate) async fn take_login(
        &self,
        client_id: &str,
        digest: &str,
    ) -> Result<Option<TakenLogin>, StoreError> {
        let now = self.inner.engine.now_ms();
        let sql = format!(
            "DELETE FROM medium_oauth_logins WHERE client_id = $1 AND state_digest = $2 \
             RETURNING key_id, sealed, scopes, expires_at_ms - {now} AS left_ms"
        );
        let query = sqlx::query(&sql).bind(client_id).bind(digest);
        self.timed(async {
            let Some(row) = query
                .fetch_optional(&self.inner.pool)
                .await
                .map_err(StoreError::from)?
            else {
                return Ok(None);
            };
            let get = StoreError::from;
            let key_id: String = row.try_get("key_id").map_err(get)?;
            let sealed: Vec<u8> = row.try_get("sealed").map_err(get)?;
            let state = self
                .inner
                .keyring
                .open_login(client_id, digest, &key_id, &sealed)?;
            let state = String::from_utf8(state).map_err(|_| {
                StoreError::LoginUnreadable("holds a state that is not text".into())
            })?;
            Ok(Some(TakenLogin {
                state: CsrfState::new(state),
                scopes: row.try_get("scopes").map_err(get)?,
                left_ms: row.try_get("left_ms").map_err(get)?,
            }))
        })
        .await
    }

    /// Opens a row's token.
    pub(crate) fn open(
        &self,
        client_id: &str,
        account: &AccountId,
        row: &StoredRow,
    ) -> Result<Token, StoreError> {
        let plain = self
            .inner
            .keyring
            .open(client_id, account, &row.key_id, &row.sealed)?;
        let record: TokenRecord =
            serde_json::from_slice(&plain).map_err(|_| StoreError::Corrupt {
                account: account.clone(),
                what: "the sealed token is not a token record",
            })?;
        Ok(Token::from_record(record))
    }

    fn seal(
        &self,
        client_id: &str,
        account: &AccountId,
        token: &Token,
    ) -> Result<(String, Vec<u8>, Option<i64>), StoreError> {
        let record = token.to_record();
        let expires_at_ms = record.expires_at_ms;
        // A record serialises to JSON without fail: strings, a number, a list.
        let plain = serde_json::to_vec(&record).map_err(|_| StoreError::Corrupt {
            account: account.clone(),
            what: "the token does not serialise",
        })?;
        let (key_id, sealed) = self.inner.keyring.seal(client_id, account, &plain)?;
        Ok((key_id, sealed, expires_at_ms))
    }

    /// At most one row, under the deadline.
    async fn fetch_row<'q>(
        &self,
        sql: &'q str,
        bind: impl FnOnce(
            sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
        ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    ) -> Result<Option<StoredRow>, StoreError> {
        let query = bind(sqlx::query(sql));
        self.timed(async {
            let row = query
                .fetch_optional(&self.inner.pool)
                .await
                .map_err(StoreError::from)?;
            row.as_ref().map(stored_row).transpose()
        })
        .await
    }

    async fn execute<'q>(
        &self,
        sql: &'q str,
        bind: impl FnOnce(
            sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
        ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    ) -> Result<u64, StoreError> {
        let query = bind(sqlx::query(sql));
        self.timed(async {
            query
                .execute(&self.inner.pool)
                .await
                .map(|done| done.rows_affected())
                .map_err(StoreError::from)
        })
        .await
    }
}

fn stored_row(row: &AnyRow) -> Result<StoredRow, StoreError> {
    let get = StoreError::from;
    let dead_reason: Option<String> = row.try_get("dead_reason").map_err(get)?;
    Ok(StoredRow {
        key_id: row.try_get("key_id").map_err(get)?,
        sealed: row.try_get("sealed").map_err(get)?,
        expires_at_ms: row.try_get("expires_at_ms").map_err(get)?,
        // Another writer may have stored anything: it reaches messages.
        dead_reason: dead_reason.map(|r| printable(&r, MAX_REASON_CHARS)),
        version: row.try_get("version").map_err(get)?,
        updated_at_ms: row.try_get("updated_at_ms").map_err(get)?,
        leased: row.try_get::<i64, _>("leased").map_err(get)? == 1,
    })
}

/// The engine a URL names, and the URL as the driver wants it.
fn engine_url(url: &str) -> Result<(Engine, String), StoreError> {
    if let Some(rest) = url.strip_prefix("sqlite:") {
        let path = rest.trim_start_matches("//");
        // An in-memory database is private to one connection: the pool's
        // connections would each see an empty table.
        if path.is_empty() || path.starts_with(":memory:") || path.contains("mode=memory") {
            return Err(StoreError::UnsupportedUrl);
        }
        let sep = if path.contains('?') { '&' } else { '?' };
        let url = if path.contains("mode=") {
            format!("sqlite://{path}")
        } else {
            format!("sqlite://{path}{sep}mode=rwc")
        };
        return Ok((Engine::Sqlite, url));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok((Engine::Postgres, url.to_owned()));
    }
    Err(StoreError::UnsupportedUrl)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A holder renews only its own lease, from whatever it had left.
    #[tokio::test]
    async fn a_lease_is_renewed_by_its_owner_alone() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("t.db").display());
        let key = crate::EncryptionKey::new("k", [1; 32]).unwrap();
        let db = TokenDatabase::connect(&url, Keyring::new(key))
            .await
            .unwrap();
        let account = AccountId::new("a").unwrap();
        let token = Token::new(
            medium_oauth::AccessToken::new("x"),
            None,
            None,
            Default::default(),
        );
        db.put("c", &account, &token, 0).await.unwrap();
        assert!(db.take_lease("c", &account, "me").await.unwrap().is_some());
        // As if it were about to run out.
        db.execute("UPDATE medium_oauth_accounts SET lease_until_ms = 1", |q| q)
            .await
            .unwrap();
        assert!(!db.read("c", &account).await.unwrap().unwrap().leased);
        assert!(!db.renew_lease("c", &account, "other").await.unwrap());
        assert!(db.renew_lease("c", &account, "me").await.unwrap());
        assert!(db.read("c", &account).await.unwrap().unwrap().leased);
        assert!(
            db.take_lease("c", &account, "other")
                .await
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn urls_name_their_engine_and_sqlite_files_are_created() {
        assert_eq!(
            engine_url("sqlite:tokens.db").unwrap(),
            (Engine::Sqlite, "sqlite://tokens.db?mode=rwc".into())
        );
        assert_eq!(
            engine_url("sqlite:///tmp/t.db?mode=rw").unwrap(),
            (Engine::Sqlite, "sqlite:///tmp/t.db?mode=rw".into())
        );
        assert_eq!(
            engine_url("postgresql://u@h/d").unwrap().0,
            Engine::Postgres
        );
        for bad in ["sqlite::memory:", "sqlite:", "mysql://h/d", "tokens.db"] {
            assert!(
                matches!(engine_url(bad), Err(StoreError::UnsupportedUrl)),
                "{bad}"
            );
        }
    }
}
