//! The one refresh engine: every decision about a token, written once.
//!
//! An [`Engine`] keeps one grant's token valid: it decides when the token
//! is due, refreshes it once however many callers ask, spaces failed
//! attempts on one schedule that every caller shares (honouring
//! `Retry-After`), serves a still-valid token through failures, refreshes
//! at most once per [`REFUSAL_COOLDOWN`] when the API refuses a token,
//! latches a dead grant until a new login appears, and keeps a refreshed
//! token whose save failed (it may hold the only copy of a rotated refresh
//! token) until it is saved.
//!
//! It is generic over where the token lives, through a [`Backend`]: a
//! [`RefreshingTokenSource`](crate::RefreshingTokenSource) is an engine over
//! a [`TokenStore`](crate::TokenStore) (a file, or memory), and the shared
//! store's `Accounts` (crate `medium-oauth-store`) is a bounded map of
//! engines, one per account, over a leased database row.
//!
//! # The seam: a transaction
//!
//! A backend hands out a [`Transaction`] that holds the backend's lock (a
//! file lock, a lease on a row) from [`Backend::begin`] until it is
//! committed or dropped, as sqlx's `Transaction` owns its connection: the
//! token read under the lock, the commit over exactly what was read, the
//! dead mark, and the release are one value's, so nothing has to be threaded
//! between separate `lock`, `load` and `save` calls. A transaction whose
//! commit failed is kept, lock and all, with the token it could not save,
//! and committed again on the engine's failure schedule (in the background,
//! so nobody needs to ask): while it is kept, no other process reads the
//! refresh token it may have rotated out.
//!
//! Errors are the backend's own type ([`EngineError`]), so a shared store
//! reports its typed errors (which account, which database failure) through
//! the engine unchanged; the engine's own errors reach it through
//! [`Backend::error`].

use std::fmt;
use std::future::Future;
use std::time::{Duration, SystemTime};

use crate::Token;

mod clock;
mod core;
pub(crate) mod policy;
mod slot;

pub use clock::{COARSE_TICK_BOUND, Clock, SystemClock};
pub use core::{Engine, REAUTHORIZATION_RECHECK};
pub use policy::{
    DEFAULT_MAX_ATTEMPTS, DEFAULT_REFRESH_JITTER, DEFAULT_REFRESH_MARGIN, DEFAULT_RETRY_BASE,
    DEFAULT_RETRY_CAP, LONGEST_RETRY_WAIT, MAX_PLAUSIBLE_LIFETIME, MIN_TOKEN_LIFETIME,
    REFUSAL_COOLDOWN, RETRY_AFTER_CAP, RefreshPolicy, doubling,
};

/// What the engine needs to know of a backend's errors.
pub trait EngineError: Clone + fmt::Display + fmt::Debug + Send + Sync + 'static {
    /// Whether a later attempt may succeed (an outage, a timeout, a 5xx):
    /// a caller may sleep for the next scheduled attempt, and a still-valid
    /// token is served meanwhile.
    fn is_transient(&self) -> bool;
    /// Whether the grant is dead or gone: nothing is sent until the store
    /// holds another token.
    fn requires_reauthorization(&self) -> bool;
    /// The server's `Retry-After`, when it sent one: the next attempt waits
    /// at least that long (up to [`RETRY_AFTER_CAP`]).
    fn retry_after(&self) -> Option<Duration>;
}

impl EngineError for crate::Error {
    fn is_transient(&self) -> bool {
        crate::Error::is_transient(self)
    }

    fn requires_reauthorization(&self) -> bool {
        crate::Error::requires_reauthorization(self)
    }

    fn retry_after(&self) -> Option<Duration> {
        crate::Error::retry_after(self)
    }
}

/// What a backend holds for the grant.
#[derive(Debug, Clone)]
pub enum Stored<E> {
    /// A token.
    Token {
        /// The token.
        token: Token,
        /// When it arrived (was written), if the backend records it: a
        /// shared store's write time makes the refusal cool-down and the
        /// halfway rule for short-lived tokens the same on every replica.
        arrived: Option<SystemTime>,
    },
    /// No token: never logged in, logged out, or removed.
    Missing,
    /// A grant recorded as dead (by this process or another), with the
    /// error to report.
    Dead(E),
}

/// Where one grant's token lives. See the [module docs](self).
pub trait Backend: Send + Sync + 'static {
    /// The backend's errors.
    type Error: EngineError;
    /// A lock on the grant, with what was read under it.
    type Transaction: Transaction<Error = Self::Error>;

    /// What the backend holds now, read without its lock: to adopt what
    /// another process wrote, to notice a new login or a removal.
    fn peek(&self) -> impl Future<Output = Result<Stored<Self::Error>, Self::Error>> + Send;

    /// Takes the lock, waiting (with a deadline of the backend's) while
    /// another process holds it, and reads the grant under it. `settled`
    /// tells whether a state seen while waiting makes the lock needless (the
    /// holder wrote a token the engine would adopt): a backend that polls
    /// may then return a transaction without the lock, holding that state,
    /// which the engine adopts and never commits over.
    fn begin<'a>(
        &'a self,
        settled: &'a (dyn Fn(&Stored<Self::Error>) -> bool + Send + Sync),
    ) -> impl Future<Output = Result<Self::Transaction, Self::Error>> + Send + 'a;

    /// The engine's own failures (no refresh token, a refresh refused, a
    /// refresh past its deadline) as the backend's error.
    fn error(&self, e: crate::Error) -> Self::Error;
}

/// The backend's lock on one grant, from [`Backend::begin`] until committed
/// or dropped; dropping it releases the lock.
pub trait Transaction: Send + Sync + 'static {
    /// The backend's errors.
    type Error;

    /// The grant as read under the lock.
    fn stored(&self) -> &Stored<Self::Error>;

    /// How long a refresh request may take under this lock: a lease that
    /// runs out lets another process read the refresh token the request may
    /// rotate. `None` (the default): no bound of the lock's own.
    fn refresh_budget(&self) -> Option<Duration> {
        None
    }

    /// Writes `token` (refreshed from what was read, at `now`) over exactly
    /// what was read, ending the lock. `Ok(false)`: the backend moved on
    /// meanwhile (a new login, a removal, the lock lost to another process)
    /// and nothing was written; what is there stands. An error leaves the
    /// transaction as it was, to be committed again.
    fn commit(
        &mut self,
        token: &Token,
        now: SystemTime,
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send;

    /// Records that the grant read is dead (`reason` says why, from the
    /// engine's error), for every process that shares the backend. The
    /// default records nothing: the engine's own latch serves one process.
    fn bury(
        &mut self,
        reason: &crate::Error,
        now: SystemTime,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send {
        let _ = (reason, now);
        async { Ok(()) }
    }

    /// A refresh under this lock ended without an answer (its deadline
    /// passed): whether the server rotated the refresh token cannot be
    /// known, so nobody may read the old one before the lock runs out by
    /// itself. The default releases it, for locks that cannot run out.
    fn abandon(self)
    where
        Self: Sized,
    {
    }
}
