//! What can go wrong, typed: callers branch on the variant, and every
//! message names the account concerned and never a secret.

use std::sync::Arc;
use std::time::Duration;

use crate::AccountId;

/// Text read from the database, fit for a message: another writer may
/// have stored anything there, so control characters (which could rewrite
/// a terminal or forge a log line) are dropped and the length is bounded.
pub(crate) fn printable(text: &str, max_chars: usize) -> String {
    text.chars()
        .filter(|c| !c.is_control())
        .take(max_chars)
        .collect()
}

/// A failure of the shared token store or of an account's refresh. Cheap
/// to clone: the refresh engine hands the last failure to every caller that
/// arrives while its schedule says wait.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// No token is stored for the account: it never connected, or was
    /// removed.
    #[error("account {0} is not connected")]
    NotConnected(AccountId),
    /// The account's grant is dead (revoked, or its refresh token refused):
    /// the user must connect again. Every replica reports it from the row,
    /// without asking Medium.
    #[error("account {account} needs re-authorization: {reason}")]
    ReauthorizationRequired {
        /// The account.
        account: AccountId,
        /// Why the grant died, as recorded by the replica that found out.
        reason: String,
    },
    /// Refreshing the account's token failed and may succeed later (the
    /// token endpoint was unreachable, slow or overloaded). Nothing was
    /// written.
    #[error("refreshing account {account}'s token failed: {source}")]
    Refresh {
        /// The account.
        account: AccountId,
        /// The OAuth client's error.
        #[source]
        source: medium_oauth::Error,
    },
    /// The token endpoint did not answer a refresh within
    /// [`REFRESH_DEADLINE`](crate::REFRESH_DEADLINE). Transient; the lease is
    /// given back, and whether Medium rotated the token cannot be known.
    #[error("refreshing account {account}'s token took longer than {after:?}")]
    RefreshTimedOut {
        /// The account.
        account: AccountId,
        /// The deadline.
        after: Duration,
    },
    /// The task refreshing the account ended without an answer: the runtime
    /// is shutting down.
    #[error("no token was obtained: {0}")]
    Interrupted(&'static str),
    /// Another replica has held the account's refresh lease for longer than
    /// this caller may wait. Transient.
    #[error("account {account} is being refreshed elsewhere; waited {waited:?}")]
    LockTimeout {
        /// The account.
        account: AccountId,
        /// How long this caller waited.
        waited: Duration,
    },
    /// The database could not be reached or answered an error. Transient
    /// when the server is restarting or the pool is exhausted.
    #[error("token database: {0}")]
    Database(#[source] Arc<sqlx::Error>),
    /// A database call took longer than its deadline.
    #[error("token database did not answer within {0:?}")]
    DatabaseTimeout(Duration),
    /// The schema could not be brought up to date.
    #[error("token database migrations: {0}")]
    Migrate(#[source] Arc<sqlx::migrate::MigrateError>),
    /// The database URL names an engine this crate does not support.
    #[error("unsupported database URL: use sqlite:PATH or postgres://…")]
    UnsupportedUrl,
    /// The account's row is sealed with a key the keyring lacks.
    #[error("account {account}'s token is sealed with key {key_id}, which the keyring lacks")]
    MissingKey {
        /// The account.
        account: AccountId,
        /// The key id stored with the row.
        key_id: String,
    },
    /// The account's row does not open under its key: the wrong key was
    /// given under that id, or the row was altered. Nothing is overwritten.
    #[error("account {account}'s token does not open under key {key_id}: wrong key or altered row")]
    WrongKey {
        /// The account.
        account: AccountId,
        /// The key id stored with the row.
        key_id: String,
    },
    /// The account's row opened but does not hold a token.
    #[error("account {account}'s row is malformed: {what}")]
    Corrupt {
        /// The account.
        account: AccountId,
        /// What is wrong with it.
        what: &'static str,
    },
    /// A login's callback did not complete it: its `state` matches no
    /// pending login (forged, already used, or from another client), the
    /// login expired, the user denied it, or the code exchange failed. The
    /// pending login is used up either way: start a new one.
    #[error("login failed: {0}")]
    Login(#[source] medium_oauth::Error),
    /// A login's browser binding is shorter than
    /// [`MIN_BINDING_BYTES`](crate::MIN_BINDING_BYTES): it would not keep a
    /// callback from finishing in another browser.
    #[error("a login's browser binding must be a secret of at least 16 bytes")]
    WeakLoginBinding,
    /// A pending login's row does not open (its key left the keyring, or
    /// the row was altered): the user must start again.
    #[error("a pending login {0}")]
    LoginUnreadable(String),
    /// More logins are pending than the store keeps for one client; they
    /// expire within the client's pending time to live.
    #[error("{limit} logins are pending already; try again later")]
    TooManyPendingLogins {
        /// See [`MAX_PENDING_LOGINS`](crate::MAX_PENDING_LOGINS).
        limit: u64,
    },
    /// An account id that is empty, too long or holds control characters.
    #[error("invalid account id: {0}")]
    InvalidAccountId(&'static str),
    /// A key id that is empty, too long or not printable ASCII.
    #[error("invalid key id: 1 to 64 printable ASCII characters")]
    InvalidKeyId,
    /// The operating system's random source failed.
    #[error("no randomness: {0}")]
    Randomness(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Database(Arc::new(e))
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        StoreError::Migrate(Arc::new(e))
    }
}

/// Why a grant died, as recorded in its row for every replica: for the
/// engine's errors that kill one, a sentence; for anything else, the error.
pub(crate) fn death_reason(e: &medium_oauth::Error) -> String {
    match e {
        medium_oauth::Error::InvalidGrant { .. } => "Medium refused the refresh token".into(),
        medium_oauth::Error::NoRefreshToken => "no refresh token was issued".into(),
        e => e.to_string(),
    }
}

impl StoreError {
    /// This error as the library's, for a
    /// [`TokenSource`](medium_oauth::TokenSource): a refresh's own error as
    /// it was, anything else as a store failure naming the account.
    pub fn into_library_error(self) -> medium_oauth::Error {
        match self {
            StoreError::Refresh { source, .. } => source,
            StoreError::NotConnected(_) => medium_oauth::Error::NoToken,
            e => medium_oauth::Error::Store {
                path: "the shared token store".into(),
                reason: e.to_string(),
                source: None,
            },
        }
    }

    /// The refresh engine's error `e`, for `account`.
    pub(crate) fn of_engine(account: &AccountId, e: medium_oauth::Error) -> Self {
        match e {
            medium_oauth::Error::NoToken => StoreError::NotConnected(account.clone()),
            medium_oauth::Error::RefreshTimedOut { after } => StoreError::RefreshTimedOut {
                account: account.clone(),
                after,
            },
            e if e.requires_reauthorization() => StoreError::ReauthorizationRequired {
                account: account.clone(),
                reason: death_reason(&e),
            },
            source => StoreError::Refresh {
                account: account.clone(),
                source,
            },
        }
    }

    /// Whether a later call may succeed without anyone acting: the database
    /// or the token endpoint was unavailable, or another replica was busy.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Refresh { source, .. } => source.is_transient(),
            StoreError::LockTimeout { .. }
            | StoreError::DatabaseTimeout(_)
            | StoreError::RefreshTimedOut { .. } => true,
            StoreError::Database(e) => !matches!(
                **e,
                sqlx::Error::Configuration(_)
                    | sqlx::Error::ColumnNotFound(_)
                    | sqlx::Error::ColumnDecode { .. }
                    | sqlx::Error::Decode(_)
                    | sqlx::Error::TypeNotFound { .. }
            ),
            _ => false,
        }
    }

    /// Whether the user must connect the account again.
    pub fn requires_reauthorization(&self) -> bool {
        matches!(
            self,
            StoreError::ReauthorizationRequired { .. } | StoreError::NotConnected(_)
        )
    }
}

impl medium_oauth::engine::EngineError for StoreError {
    fn is_transient(&self) -> bool {
        StoreError::is_transient(self)
    }

    fn requires_reauthorization(&self) -> bool {
        StoreError::requires_reauthorization(self)
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            StoreError::Refresh { source, .. } => source.retry_after(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account() -> AccountId {
        AccountId::new("a").unwrap()
    }

    #[test]
    fn text_from_the_database_loses_control_characters_and_is_bounded() {
        assert_eq!(printable("ok\x1b[2J\nforged\u{7f}", 100), "ok[2Jforged");
        assert_eq!(printable("abcdef", 3), "abc");
        assert_eq!(printable("é€😀x", 3), "é€😀");
    }

    #[test]
    fn waits_and_outages_are_transient_and_only_dead_grants_need_the_user() {
        let refused = medium_oauth::Error::InvalidGrant {
            status: 400,
            errors: Vec::new(),
        };
        let transient = [
            StoreError::LockTimeout {
                account: account(),
                waited: Duration::ZERO,
            },
            StoreError::DatabaseTimeout(Duration::ZERO),
            StoreError::RefreshTimedOut {
                account: account(),
                after: Duration::ZERO,
            },
            StoreError::from(sqlx::Error::PoolTimedOut),
            StoreError::Refresh {
                account: account(),
                source: medium_oauth::Error::StoreBusy {
                    path: String::new(),
                    waited: Duration::ZERO,
                },
            },
        ];
        for e in &transient {
            assert!(e.is_transient(), "{e:?}");
            assert!(!e.requires_reauthorization(), "{e:?}");
        }
        let lasting = [
            StoreError::from(sqlx::Error::ColumnNotFound("x".into())),
            StoreError::Refresh {
                account: account(),
                source: refused,
            },
            StoreError::WrongKey {
                account: account(),
                key_id: "k".into(),
            },
            StoreError::NotConnected(account()),
        ];
        for e in &lasting {
            assert!(!e.is_transient(), "{e:?}");
        }
        assert!(StoreError::NotConnected(account()).requires_reauthorization());
        let dead = StoreError::ReauthorizationRequired {
            account: account(),
            reason: String::new(),
        };
        assert!(dead.requires_reauthorization() && !dead.is_transient());
    }
}
