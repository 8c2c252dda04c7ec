//! The wall clock a token source reads: the seam through which tests move
//! time, as golang.org/x/oauth2's `timeNow`.

use std::time::SystemTime;

/// Wall-clock time, as a [`RefreshingTokenSource`](crate::RefreshingTokenSource)
/// reads it to judge expiry. Waits (backoff, cool-downs) use tokio's clock
/// instead, so a test that pauses tokio time and supplies its own `Clock`
/// drives both: it can move the wall clock alone (a suspended laptop, a
/// clock set back) or both together.
pub trait Clock: Send + Sync + 'static {
    /// The current wall-clock time.
    fn now(&self) -> SystemTime;
}

/// The operating system's clock: the default.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[inline]
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}
