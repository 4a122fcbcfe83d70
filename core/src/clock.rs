//! Injected time. The only module allowed to read the system clock.
//!
//! Everything in tokenkeeper that needs "now" or "wait" goes through a [`Clock`]: the lifecycle
//! engine never calls `SystemTime::now`, `Instant::now` or `tokio::time::sleep` itself. That gives
//! two things:
//!
//! - **Sleep awareness.** Token deadlines are wall-clock instants (unix milliseconds). Monotonic
//!   timers stop while a phone sleeps, so [`SystemClock::sleep_until_unix_ms`] wakes at least every
//!   [`SystemClock::DEFAULT_WALL_RECHECK`] to compare against the wall clock, and the lifecycle
//!   engine re-checks on every `token()` call and on `Keeper::resumed()`.
//! - **Virtual time in tests.** [`ManualClock`] runs on tokio's *paused* clock
//!   (`#[tokio::test(start_paused = true)]`): when every task is idle, tokio jumps straight to the
//!   next timer, so a simulated 7-day stream takes seconds of real time and is deterministic.
//!   [`ManualClock::jump`] moves the wall clock without moving monotonic time, which is exactly
//!   what a device sleep (or a user changing the clock) looks like.
//!
//! ```
//! use std::sync::Arc;
//! use tokenkeeper::clock::{Clock, SystemClock};
//!
//! let clock: Arc<dyn Clock> = Arc::new(SystemClock::new());
//! assert!(clock.now_unix_ms() > 1_600_000_000_000);
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// A boxed, `Send` future returned by the sleeping methods of [`Clock`].
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// The source of time and of sleeping for everything in tokenkeeper.
///
/// Object-safe: hold it as `Arc<dyn Clock>`. Implementations must be cheap to read
/// ([`Clock::now_unix_ms`] sits on the `Session::current()` fast path).
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// Wall-clock time as milliseconds since the unix epoch (may jump: device sleep, NTP,
    /// a user changing the clock).
    fn now_unix_ms(&self) -> i64;

    /// A cheap wall-clock reading for expiry checks on hot paths (`Session::current()`): never
    /// *behind* [`Clock::now_unix_ms`], at most [`COARSE_MAX_LAG_MS`] ahead, so a check using it
    /// may call a token expired a few ms early but never late. Defaults to
    /// [`Clock::now_unix_ms`].
    fn now_unix_ms_fast(&self) -> i64 {
        self.now_unix_ms()
    }

    /// Monotonic time since an arbitrary origin; used for latency measurements only.
    fn monotonic(&self) -> Duration;

    /// Sleeps for `duration` of monotonic time.
    fn sleep(&self, duration: Duration) -> Sleep;

    /// Sleeps until the wall clock reads at least `deadline_unix_ms`.
    ///
    /// Implementations may wake late when the device was suspended (monotonic timers stop);
    /// callers that care re-check on resume. Returns at once if the deadline already passed.
    fn sleep_until_unix_ms(&self, deadline_unix_ms: i64) -> Sleep;
}

/// How far the Linux coarse clock may lag the precise one, in milliseconds (it advances once per
/// scheduler tick, 1–10 ms); [`SystemClock`]'s [`Clock::now_unix_ms_fast`] adds it so the
/// reading is never behind.
pub const COARSE_MAX_LAG_MS: i64 = 20;

/// The real clock: `SystemTime` for the wall clock, tokio timers for sleeping.
///
/// This is the only place in the crate that reads the system clock.
#[derive(Debug, Clone)]
pub struct SystemClock {
    origin: std::time::Instant,
    wall_recheck: Duration,
}

impl SystemClock {
    /// Longest single monotonic sleep inside [`SystemClock::sleep_until_unix_ms`] before the wall
    /// clock is read again: 15 s. A device that slept through a deadline notices within this
    /// interval even without a `resumed()` signal.
    pub const DEFAULT_WALL_RECHECK: Duration = Duration::from_secs(15);

    /// A system clock with the default wall re-check interval.
    #[allow(clippy::disallowed_methods)] // the one place allowed to read the system clock
    pub fn new() -> Self {
        Self {
            origin: std::time::Instant::now(),
            wall_recheck: Self::DEFAULT_WALL_RECHECK,
        }
    }

    /// Sets the wall re-check interval (minimum 10 ms).
    pub fn with_wall_recheck(mut self, interval: Duration) -> Self {
        self.wall_recheck = interval.max(Duration::from_millis(10));
        self
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

#[allow(clippy::disallowed_methods)] // the one place allowed to read the system clock
fn system_unix_ms() -> i64 {
    match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

/// `CLOCK_REALTIME_COARSE`: a few nanoseconds instead of tens (vDSO, no TSC read).
#[cfg(any(target_os = "linux", target_os = "android"))]
#[inline]
fn coarse_unix_ms() -> i64 {
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::RealtimeCoarse);
    ts.tv_sec
        .saturating_mul(1000)
        .saturating_add(ts.tv_nsec / 1_000_000)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
#[inline]
fn coarse_unix_ms() -> i64 {
    system_unix_ms()
}

impl Clock for SystemClock {
    #[inline]
    fn now_unix_ms(&self) -> i64 {
        system_unix_ms()
    }

    #[inline]
    fn now_unix_ms_fast(&self) -> i64 {
        coarse_unix_ms().saturating_add(COARSE_MAX_LAG_MS)
    }

    fn monotonic(&self) -> Duration {
        self.origin.elapsed()
    }

    fn sleep(&self, duration: Duration) -> Sleep {
        Box::pin(tokio::time::sleep(duration))
    }

    fn sleep_until_unix_ms(&self, deadline_unix_ms: i64) -> Sleep {
        let recheck = self.wall_recheck;
        Box::pin(async move {
            loop {
                let remaining = deadline_unix_ms.saturating_sub(system_unix_ms());
                if remaining <= 0 {
                    return;
                }
                let step = Duration::from_millis(remaining.unsigned_abs()).min(recheck);
                tokio::time::sleep(step).await;
            }
        })
    }
}

/// A virtual clock for tests, driven by tokio's paused time.
///
/// Run tests with `#[tokio::test(start_paused = true)]` (tokio feature `test-util`): tokio then
/// advances time by itself whenever all tasks are idle, so sleeps of hours finish instantly and in
/// order. To let virtual time pass, sleep on the clock (`clock.sleep(d).await`) or call
/// `tokio::time::advance`. Wall time is `start + monotonic elapsed + offset`;
/// [`ManualClock::jump`] changes only the offset.
///
/// Sleeping models a phone: [`Clock::sleep_until_unix_ms`] converts the wall deadline to a
/// monotonic delay when called, so a [`ManualClock::jump`] (device sleep) does **not** wake
/// sleepers early — the code under test must notice through its own re-checks (`resumed()`,
/// `token()`), as it must on a real device.
///
/// ```no_run
/// use std::time::Duration;
/// use tokenkeeper::clock::{Clock, ManualClock};
///
/// #[tokio::test(start_paused = true)]
/// async fn a_day_passes_instantly() {
///     let clock = ManualClock::new(1_700_000_000_000);
///     clock.sleep(Duration::from_secs(86_400)).await; // returns at once in paused time
///     assert_eq!(clock.now_unix_ms(), 1_700_086_400_000);
///     clock.jump(Duration::from_secs(7_200)); // two hours of device sleep
///     assert_eq!(clock.now_unix_ms(), 1_700_093_600_000);
/// }
/// ```
#[derive(Clone)]
pub struct ManualClock {
    inner: Arc<ManualInner>,
}

struct ManualInner {
    start_unix_ms: i64,
    origin: tokio::time::Instant,
    offset_ms: AtomicI64,
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualClock")
            .field("now_unix_ms", &self.now_unix_ms())
            .finish()
    }
}

impl ManualClock {
    /// A clock whose wall time starts at `start_unix_ms`.
    #[allow(clippy::disallowed_methods)] // virtual time: tokio's (paused) clock is the source
    pub fn new(start_unix_ms: i64) -> Self {
        Self {
            inner: Arc::new(ManualInner {
                start_unix_ms,
                origin: tokio::time::Instant::now(),
                offset_ms: AtomicI64::new(0),
            }),
        }
    }

    /// Moves the wall clock forward by `duration` without moving monotonic time: a device sleep.
    /// No sleeper wakes because of it.
    pub fn jump(&self, duration: Duration) {
        let ms = i64::try_from(duration.as_millis()).unwrap_or(i64::MAX);
        self.inner.offset_ms.fetch_add(ms, Ordering::SeqCst);
    }

    /// Moves the wall clock by a signed number of milliseconds (negative: backwards), without
    /// moving monotonic time. Use it to model a device clock that is off by an hour.
    pub fn shift_wall_ms(&self, delta_ms: i64) {
        self.inner.offset_ms.fetch_add(delta_ms, Ordering::SeqCst);
    }

    #[allow(clippy::disallowed_methods)] // virtual time: tokio's (paused) clock is the source
    fn elapsed(&self) -> Duration {
        tokio::time::Instant::now().saturating_duration_since(self.inner.origin)
    }
}

impl Clock for ManualClock {
    fn now_unix_ms(&self) -> i64 {
        let elapsed = i64::try_from(self.elapsed().as_millis()).unwrap_or(i64::MAX);
        self.inner
            .start_unix_ms
            .saturating_add(elapsed)
            .saturating_add(self.inner.offset_ms.load(Ordering::SeqCst))
    }

    fn monotonic(&self) -> Duration {
        self.elapsed()
    }

    fn sleep(&self, duration: Duration) -> Sleep {
        Box::pin(tokio::time::sleep(duration))
    }

    fn sleep_until_unix_ms(&self, deadline_unix_ms: i64) -> Sleep {
        let remaining = deadline_unix_ms.saturating_sub(self.now_unix_ms()).max(0);
        Box::pin(tokio::time::sleep(Duration::from_millis(
            remaining.unsigned_abs(),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn manual_clock_advances_with_paused_time_and_jumps_wall_only() {
        let clock = ManualClock::new(1_000_000);
        clock.sleep(Duration::from_secs(3600)).await;
        assert_eq!(clock.now_unix_ms(), 1_000_000 + 3_600_000);
        assert_eq!(clock.monotonic(), Duration::from_secs(3600));
        clock.jump(Duration::from_secs(10));
        assert_eq!(clock.now_unix_ms(), 1_000_000 + 3_610_000);
        assert_eq!(clock.monotonic(), Duration::from_secs(3600));
        clock.shift_wall_ms(-20_000);
        assert_eq!(clock.now_unix_ms(), 1_000_000 + 3_590_000);
    }

    #[tokio::test(start_paused = true)]
    async fn manual_wall_sleep_is_not_woken_by_a_jump() {
        let clock = ManualClock::new(0);
        let sleeper = clock.sleep_until_unix_ms(60_000);
        clock.jump(Duration::from_secs(120));
        // The device "slept" past the deadline but monotonic time did not move: the sleeper
        // still waits its full 60 s of monotonic time, like a tokio timer on a phone.
        let started = clock.monotonic();
        sleeper.await;
        assert_eq!(clock.monotonic() - started, Duration::from_secs(60));
    }

    #[test]
    fn system_clock_fast_reading_is_never_behind_the_precise_one() {
        let clock = SystemClock::new();
        for _ in 0..1_000 {
            let precise = clock.now_unix_ms();
            let fast = clock.now_unix_ms_fast();
            assert!(fast >= precise, "fast {fast} behind precise {precise}");
            assert!(
                fast - precise <= COARSE_MAX_LAG_MS + 1,
                "fast {fast} too far ahead of {precise}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn system_clock_wall_sleep_returns_at_once_for_past_deadline() {
        let clock = SystemClock::new();
        let before = clock.now_unix_ms();
        clock.sleep_until_unix_ms(before - 1).await;
        assert!(clock.now_unix_ms() - before < 1_000);
    }
}
