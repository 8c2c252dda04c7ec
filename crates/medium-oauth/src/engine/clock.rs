//! The wall clock a token source reads: the seam through which tests move
//! time, as golang.org/x/oauth2's `timeNow`.

use std::sync::Arc;
#[cfg(target_os = "linux")]
use std::time::UNIX_EPOCH;
use std::time::{Duration, SystemTime};

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
///
/// On Linux it reads the coarse real-time clock (`CLOCK_REALTIME_COARSE`,
/// the time at the kernel's last tick), which costs a fraction of the
/// precise clock and is read on every `token()` call. It lags by at most a
/// tick; [`COARSE_TICK_BOUND`] is added, so it is never behind and a token
/// is never judged valid past its expiry. Elsewhere it is
/// [`SystemTime::now`].
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[inline]
    fn now(&self) -> SystemTime {
        system_now()
    }
}

/// The longest kernel tick: 10 ms at the lowest timer frequency Linux
/// builds with (100 Hz). Expiries are judged with margins of minutes, so
/// reading this much ahead costs nothing.
pub const COARSE_TICK_BOUND: Duration = Duration::from_millis(10);

#[cfg(target_os = "linux")]
#[inline]
fn system_now() -> SystemTime {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the whole call, and
    // CLOCK_REALTIME_COARSE exists on every Linux since 2.6.32.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut ts) };
    let coarse = match (rc, u64::try_from(ts.tv_sec), u32::try_from(ts.tv_nsec)) {
        // `secs` fits an i64, so neither `Duration` step can overflow.
        (0, Ok(secs), Ok(nanos)) => {
            UNIX_EPOCH.checked_add(Duration::new(secs, nanos) + COARSE_TICK_BOUND)
        }
        // Before 1970, or an error: the precise clock says what it says.
        _ => None,
    };
    coarse.unwrap_or_else(SystemTime::now)
}

#[cfg(not(target_os = "linux"))]
#[inline]
fn system_now() -> SystemTime {
    SystemTime::now()
}

/// A source's clock: the system's, called directly on the hot path, or one
/// a test supplied.
#[derive(Clone)]
pub(crate) enum WallClock {
    System,
    Custom(Arc<dyn Clock>),
}

impl WallClock {
    #[inline]
    pub(crate) fn now(&self) -> SystemTime {
        match self {
            WallClock::System => system_now(),
            WallClock::Custom(clock) => clock.now(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_system_clock_is_never_behind_and_at_most_a_tick_ahead() {
        for _ in 0..1000 {
            let before = SystemTime::now();
            let ours = SystemClock.now();
            let after = SystemTime::now();
            assert!(ours >= before, "behind the precise clock");
            assert!(
                ours <= after + COARSE_TICK_BOUND,
                "more than a tick ahead: {:?}",
                ours.duration_since(after)
            );
        }
    }
}
