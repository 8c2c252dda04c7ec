//! Transport deadlines on the wall clock.
//!
//! The emulator's OAuth clock follows tokio's, so a test on paused tokio time
//! can expire codes and tokens by moving it. Its connection deadlines must
//! not: a test that advances paused time by an hour would otherwise have
//! every idle keep-alive connection closed at the instant it sends its next
//! request on one (the client cannot have seen the close yet and fails with
//! an incomplete message), and a client in another process would have its
//! connection timed out whenever the paused runtime idles before its bytes
//! arrive. These deadlines guard real resources against real peers, so they
//! run on a timer of their own: a tokio runtime on one background thread that
//! does nothing but keep time, and is never paused.

use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use hyper::rt::{Sleep, Timer};
use hyper_util::rt::TokioTimer;
use tokio::runtime::Handle;

/// The timekeeping runtime's handle; `None` if it could not be started, and
/// then deadlines fall back to the caller's runtime.
fn timekeeper() -> Option<&'static Handle> {
    static TIMEKEEPER: OnceLock<Option<Handle>> = OnceLock::new();
    TIMEKEEPER
        .get_or_init(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .ok()?;
            let handle = runtime.handle().clone();
            // The thread parks in the time driver and wakes only for
            // deadlines; it lives as long as the process.
            std::thread::Builder::new()
                .name("emulator-wall-clock".into())
                .spawn(move || runtime.block_on(std::future::pending::<()>()))
                .ok()?;
            Some(handle)
        })
        .as_ref()
}

/// Runs `make` with the timekeeping runtime as the current one, so the
/// tokio timers it creates are registered there and count wall time. They
/// may be polled from any runtime.
fn on_wall_clock<T>(make: impl FnOnce() -> T) -> T {
    match timekeeper() {
        Some(handle) => {
            let _entered = handle.enter();
            make()
        }
        None => make(),
    }
}

/// hyper's timer, on the wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct WallTimer;

impl Timer for WallTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Sleep>> {
        on_wall_clock(|| TokioTimer::new().sleep(duration))
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn Sleep>> {
        on_wall_clock(|| TokioTimer::new().sleep_until(deadline))
    }

    fn now(&self) -> Instant {
        on_wall_clock(|| TokioTimer::new().now())
    }

    fn reset(&self, sleep: &mut Pin<Box<dyn Sleep>>, new_deadline: Instant) {
        on_wall_clock(|| TokioTimer::new().reset(sleep, new_deadline));
    }
}

/// Waits `duration` of wall time.
pub(crate) async fn sleep(duration: Duration) {
    deadline(duration).await;
}

/// A timer that fires after `duration` of wall time (at the far future for
/// durations too large to add to now), to be polled from any runtime.
pub(crate) fn deadline(duration: Duration) -> tokio::time::Sleep {
    on_wall_clock(|| tokio::time::sleep(duration))
}

/// `future`'s output, or `None` if `limit` of wall time passes first.
pub(crate) async fn timeout<F: Future>(limit: Duration, future: F) -> Option<F::Output> {
    let deadline = deadline(limit);
    tokio::select! {
        output = future => Some(output),
        () = deadline => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn paused_tokio_time_does_not_move_the_wall_clock() {
        let wall = WallTimer.now();
        tokio::time::advance(Duration::from_secs(3600)).await;
        assert!(WallTimer.now() - wall < Duration::from_secs(60));
        // A wall deadline still passes, in wall time.
        let started = Instant::now();
        assert_eq!(
            timeout(Duration::from_millis(20), std::future::pending::<()>()).await,
            None
        );
        assert!(started.elapsed() >= Duration::from_millis(20));
        assert_eq!(timeout(Duration::from_secs(60), async { 7 }).await, Some(7));
    }
}
