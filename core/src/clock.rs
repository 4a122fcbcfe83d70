//! Injected time. The only module allowed to read the system clock.
//!
//! Everything in tokenkeeper that needs "now" or "wait" goes through a [`Clock`]: the lifecycle
//! engine never calls `SystemTime::now`, `Instant::now` or `tokio::time::sleep` itself.
//!
//! # Three clocks, three jobs
//!
//! | clock | what it is | used for |
//! |---|---|---|
//! | [`Clock::now_unix_ms`] (wall) | what the device believes the time is; jumps when NTP or the user sets it | evidence only: compared with server time, shown in events |
//! | [`Clock::monotonic`] (awake) | never jumps; **stops while the device sleeps** | durations of work: fetch latency, renewal time |
//! | [`Clock::boot_time`] (elapsed) | never jumps; **counts the time the device slept** | deadlines: expiry, renewal, retries |
//!
//! A token's life is measured on the elapsed clock: once the session knows how long a token has
//! left, neither a wall clock set back an hour nor a device sleep can make it serve an expired
//! token. The elapsed clock is `CLOCK_BOOTTIME` on Linux and Android and `CLOCK_MONOTONIC` on
//! Apple platforms (both count sleep); elsewhere it is synthesised from the awake clock plus
//! forward wall-clock jumps, re-anchored at every reading (a backward jump is never counted).
//!
//! Timers (tokio's) run on the awake clock, so a sleeper may wake late after a device sleep.
//! [`Clock::discontinuities`] reports the moments that matter: the device woke or the wall clock
//! was set. On Linux and Android that is one `timerfd` with `TFD_TIMER_CANCEL_ON_SET`, which the
//! kernel fires on resume and on every clock step: no periodic wakeups at all. Elsewhere the
//! clocks are compared every [`SystemClock::DEFAULT_DISCONTINUITY_POLL`]; platform glue calling
//! `Keeper::resumed()` covers the rest. The keeper listens once for all its sessions.
//!
//! # Virtual time in tests
//!
//! [`ManualClock`] runs on tokio's *paused* clock (`#[tokio::test(start_paused = true)]`): when
//! every task is idle, tokio jumps straight to the next timer, so a simulated 7-day stream takes
//! seconds of real time and is deterministic. [`ManualClock::jump`] is a device sleep;
//! [`ManualClock::shift_wall_ms`] is NTP or a user setting the clock.
//!
//! ```
//! use std::sync::Arc;
//! use tokenkeeper::clock::{Clock, SystemClock};
//!
//! let clock: Arc<dyn Clock> = Arc::new(SystemClock::new());
//! assert!(clock.now_unix_ms() > 1_600_000_000_000);
//! assert!(clock.boot_time() >= clock.monotonic() || cfg!(not(target_os = "linux")));
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use futures::Stream;

/// A boxed, `Send` future returned by the sleeping methods of [`Clock`].
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// A stream that yields each time the device woke from sleep or the wall clock was set
/// ([`Clock::discontinuities`]). It may also yield spuriously; it never ends while its clock lives.
pub type Discontinuities = Pin<Box<dyn Stream<Item = ()> + Send + 'static>>;

/// The source of time and of sleeping for everything in tokenkeeper.
///
/// Object-safe: hold it as `Arc<dyn Clock>`. Reads must be cheap: [`Clock::boot_time`] sits on
/// the `Session::current()` fast path.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// Wall-clock time as milliseconds since the unix epoch. May jump either way (device sleep,
    /// NTP, a user changing the clock): evidence, never a deadline.
    fn now_unix_ms(&self) -> i64;

    /// Awake time since an arbitrary origin: never jumps, stops while the device sleeps. For
    /// durations of work (fetch latency).
    fn monotonic(&self) -> Duration;

    /// Elapsed time since an arbitrary origin: never jumps, and counts the time the device
    /// slept. Every lifecycle deadline is an instant on this clock.
    fn boot_time(&self) -> Duration;

    /// Sleeps for `duration` of awake time.
    fn sleep(&self, duration: Duration) -> Sleep;

    /// Sleeps until [`Clock::boot_time`] reaches `deadline`. Returns at once if it passed.
    ///
    /// May wake late when the device slept in between (timers count awake time); callers
    /// re-check when [`Clock::discontinuities`] yields.
    fn sleep_until_boot(&self, deadline: Duration) -> Sleep {
        self.sleep(deadline.saturating_sub(self.boot_time()))
    }

    /// Yields whenever the device woke from sleep or the wall clock was set. Default: never.
    fn discontinuities(&self) -> Discontinuities {
        Box::pin(futures::stream::pending())
    }
}

/// Milliseconds of a duration, saturating at `i64::MAX`.
pub(crate) fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The elapsed clock in milliseconds ([`Clock::boot_time`]).
pub(crate) fn boot_ms(clock: &dyn Clock) -> i64 {
    millis(clock.boot_time())
}

/// The real clock: `SystemTime` for the wall clock, `Instant` for the awake clock, the
/// platform's boot clock for deadlines, tokio timers for sleeping.
///
/// This is the only place in the crate that reads the system clock.
#[derive(Debug, Clone)]
pub struct SystemClock {
    origin: std::time::Instant,
    poll: Duration,
    #[cfg(not(any(target_os = "linux", target_os = "android", target_vendor = "apple")))]
    synthetic: Arc<parking_lot::Mutex<SyntheticBoot>>,
}

impl SystemClock {
    /// How often clocks are compared to notice a device sleep or a clock change on platforms
    /// without a kernel notification (everywhere but Linux and Android): 5 min on Apple
    /// platforms, where the platform glue calls `resumed()`, 60 s elsewhere.
    pub const DEFAULT_DISCONTINUITY_POLL: Duration = if cfg!(target_vendor = "apple") {
        Duration::from_secs(300)
    } else {
        Duration::from_secs(60)
    };

    /// A system clock with the default discontinuity poll interval.
    #[allow(clippy::disallowed_methods)] // the one place allowed to read the system clock
    pub fn new() -> Self {
        Self {
            origin: std::time::Instant::now(),
            poll: Self::DEFAULT_DISCONTINUITY_POLL,
            #[cfg(not(any(target_os = "linux", target_os = "android", target_vendor = "apple")))]
            synthetic: Arc::new(parking_lot::Mutex::new(SyntheticBoot::new(
                system_unix_ms(),
                Duration::ZERO,
            ))),
        }
    }

    /// Sets the discontinuity poll interval where polling is used (minimum 10 ms).
    pub fn with_discontinuity_poll(mut self, interval: Duration) -> Self {
        self.poll = interval.max(Duration::from_millis(10));
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
        Ok(d) => millis(d),
        Err(e) => -millis(e.duration()),
    }
}

/// The kernel's clock that counts suspend: `CLOCK_BOOTTIME` (Linux, Android) or
/// `CLOCK_MONOTONIC` (Apple, where it keeps counting while asleep).
#[cfg(any(target_os = "linux", target_os = "android", target_vendor = "apple"))]
#[inline]
fn kernel_boot_time() -> Duration {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let id = rustix::time::ClockId::Boottime;
    #[cfg(target_vendor = "apple")]
    let id = rustix::time::ClockId::Monotonic;
    let ts = rustix::time::clock_gettime(id);
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

/// An elapsed clock built from the awake clock plus forward wall-clock jumps (a sleep moves the
/// wall clock, not the awake clock). Backward jumps are ignored: sleep never causes one.
#[derive(Debug)]
#[cfg_attr(
    any(target_os = "linux", target_os = "android", target_vendor = "apple"),
    allow(dead_code)
)]
struct SyntheticBoot {
    wall_ms: i64,
    awake: Duration,
    boot: Duration,
}

#[cfg_attr(
    any(target_os = "linux", target_os = "android", target_vendor = "apple"),
    allow(dead_code)
)]
impl SyntheticBoot {
    fn new(wall_ms: i64, awake: Duration) -> Self {
        Self {
            wall_ms,
            awake,
            boot: awake,
        }
    }

    /// Advances by the awake time since the last reading, or by the wall time if that moved
    /// further (the device slept).
    fn read(&mut self, wall_ms: i64, awake: Duration) -> Duration {
        let awake_step = awake.saturating_sub(self.awake);
        let wall_step = Duration::from_millis(wall_ms.saturating_sub(self.wall_ms).max(0) as u64);
        self.boot += awake_step.max(wall_step);
        self.wall_ms = wall_ms;
        self.awake = awake;
        self.boot
    }
}

impl Clock for SystemClock {
    #[inline]
    fn now_unix_ms(&self) -> i64 {
        system_unix_ms()
    }

    fn monotonic(&self) -> Duration {
        self.origin.elapsed()
    }

    #[inline]
    fn boot_time(&self) -> Duration {
        #[cfg(any(target_os = "linux", target_os = "android", target_vendor = "apple"))]
        {
            kernel_boot_time()
        }
        #[cfg(not(any(target_os = "linux", target_os = "android", target_vendor = "apple")))]
        {
            self.synthetic
                .lock()
                .read(system_unix_ms(), self.origin.elapsed())
        }
    }

    fn sleep(&self, duration: Duration) -> Sleep {
        Box::pin(tokio::time::sleep(duration))
    }

    fn discontinuities(&self) -> Discontinuities {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if let Some(stream) = clock_set_notifications() {
            return stream;
        }
        let clock = self.clone();
        poll_discontinuities(self.poll, move || {
            (clock.now_unix_ms(), clock.monotonic(), clock.boot_time())
        })
    }
}

/// Compares the three clocks every `every`: yields when the wall clock moved differently from
/// the elapsed clock (it was set) or the elapsed clock moved further than the awake one (sleep).
fn poll_discontinuities(
    every: Duration,
    read: impl Fn() -> (i64, Duration, Duration) + Send + 'static,
) -> Discontinuities {
    const TOLERANCE_MS: i64 = 1_000;
    let start = read();
    Box::pin(futures::stream::unfold(
        (start, read),
        move |(last, read)| async move {
            loop {
                tokio::time::sleep(every).await;
                let now = read();
                let wall = now.0 - last.0;
                let awake = millis(now.1.saturating_sub(last.1));
                let boot = millis(now.2.saturating_sub(last.2));
                if (wall - boot).abs() > TOLERANCE_MS || boot - awake > TOLERANCE_MS {
                    return Some(((), (now, read)));
                }
            }
        },
    ))
}

/// A `timerfd` armed far in the future with `TFD_TIMER_CANCEL_ON_SET`: the kernel cancels it
/// (the read fails with `ECANCELED`) when the wall clock is set and when the system resumes from
/// suspend. `None` where the kernel refuses it (then the clocks are polled).
#[cfg(any(target_os = "linux", target_os = "android"))]
fn clock_set_notifications() -> Option<Discontinuities> {
    use rustix::time::{
        Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags, Timespec, timerfd_create,
        timerfd_settime,
    };
    use tokio::io::unix::AsyncFd;

    fn arm(fd: &impl rustix::fd::AsFd) -> rustix::io::Result<()> {
        let never = Itimerspec {
            it_interval: Timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            // Year 2038 and beyond fits: tv_sec is 64-bit. It never fires in practice.
            it_value: Timespec {
                tv_sec: i64::from(i32::MAX) * 4,
                tv_nsec: 0,
            },
        };
        timerfd_settime(
            fd,
            TimerfdTimerFlags::ABSTIME | TimerfdTimerFlags::CANCEL_ON_SET,
            &never,
        )
        .map(|_| ())
    }

    let fd = timerfd_create(
        TimerfdClockId::Realtime,
        TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
    )
    .ok()?;
    arm(&fd).ok()?;
    // `new` is deprecated for wrapping a borrowed descriptor that someone else may close; this
    // one is an `OwnedFd` the stream owns alone, which is the sound use (`register` is `unsafe`).
    #[allow(deprecated)]
    let fd = AsyncFd::new(fd).ok()?;
    Some(Box::pin(futures::stream::unfold(fd, |fd| async move {
        loop {
            let mut guard = match fd.readable().await {
                Ok(guard) => guard,
                Err(e) => {
                    tracing::warn!(error = %e, "clock-change notifications stopped");
                    return None;
                }
            };
            let mut buf = [0u8; 8];
            match rustix::io::read(fd.get_ref(), &mut buf) {
                Err(rustix::io::Errno::CANCELED) => {
                    if let Err(e) = arm(fd.get_ref()) {
                        tracing::warn!(error = %e, "cannot re-arm the clock-change timer");
                        return None;
                    }
                    return Some(((), fd));
                }
                Err(rustix::io::Errno::AGAIN) => guard.clear_ready(),
                // The far-future timer fired or another error: re-arm and carry on.
                _ => {
                    let _ = arm(fd.get_ref());
                    return Some(((), fd));
                }
            }
        }
    })))
}

/// A virtual clock for tests, driven by tokio's paused time.
///
/// Run tests with `#[tokio::test(start_paused = true)]` (tokio feature `test-util`): tokio then
/// advances time by itself whenever all tasks are idle, so sleeps of hours finish instantly and in
/// order. To let virtual time pass, sleep on the clock (`clock.sleep(d).await`) or call
/// `tokio::time::advance`.
///
/// - awake time = tokio's elapsed (paused) time;
/// - elapsed time = awake time + every [`ManualClock::jump`] (device sleep);
/// - wall time = start + elapsed time + every [`ManualClock::shift_wall_ms`] (clock set).
///
/// Like a phone, timers count awake time: a [`ManualClock::jump`] does **not** wake sleepers
/// early. Both kinds of change are reported on [`Clock::discontinuities`], as the kernel reports
/// them on Linux, so code under test notices them the way it does on a device.
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
///     clock.shift_wall_ms(-3_600_000); // NTP sets the clock back an hour
///     assert_eq!(clock.now_unix_ms(), 1_700_090_000_000);
///     assert_eq!(clock.boot_time(), Duration::from_secs(86_400 + 7_200));
/// }
/// ```
#[derive(Clone)]
pub struct ManualClock {
    inner: Arc<ManualInner>,
}

struct ManualInner {
    start_unix_ms: i64,
    origin: tokio::time::Instant,
    slept_ms: AtomicI64,
    shift_ms: AtomicI64,
    changes: tokio::sync::watch::Sender<u64>,
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualClock")
            .field("now_unix_ms", &self.now_unix_ms())
            .field("boot_time", &self.boot_time())
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
                slept_ms: AtomicI64::new(0),
                shift_ms: AtomicI64::new(0),
                changes: tokio::sync::watch::Sender::new(0),
            }),
        }
    }

    /// A device sleep of `duration`: the wall and elapsed clocks move forward, the awake clock
    /// does not, no timer fires early, and [`Clock::discontinuities`] yields.
    pub fn jump(&self, duration: Duration) {
        self.inner
            .slept_ms
            .fetch_add(millis(duration), Ordering::SeqCst);
        self.inner.changes.send_modify(|n| *n += 1);
    }

    /// Sets the wall clock by a signed number of milliseconds (negative: backwards), as NTP or
    /// a user does; the awake and elapsed clocks do not move and [`Clock::discontinuities`]
    /// yields. Before anything runs, it models a device clock that is simply off.
    pub fn shift_wall_ms(&self, delta_ms: i64) {
        self.inner.shift_ms.fetch_add(delta_ms, Ordering::SeqCst);
        self.inner.changes.send_modify(|n| *n += 1);
    }

    #[allow(clippy::disallowed_methods)] // virtual time: tokio's (paused) clock is the source
    fn awake(&self) -> Duration {
        tokio::time::Instant::now().saturating_duration_since(self.inner.origin)
    }
}

impl Clock for ManualClock {
    fn now_unix_ms(&self) -> i64 {
        self.inner
            .start_unix_ms
            .saturating_add(millis(self.boot_time()))
            .saturating_add(self.inner.shift_ms.load(Ordering::SeqCst))
    }

    fn monotonic(&self) -> Duration {
        self.awake()
    }

    fn boot_time(&self) -> Duration {
        let slept = self.inner.slept_ms.load(Ordering::SeqCst).max(0) as u64;
        self.awake() + Duration::from_millis(slept)
    }

    fn sleep(&self, duration: Duration) -> Sleep {
        Box::pin(tokio::time::sleep(duration))
    }

    fn discontinuities(&self) -> Discontinuities {
        let mut rx = self.inner.changes.subscribe();
        rx.mark_unchanged();
        Box::pin(futures::stream::unfold(rx, |mut rx| async move {
            rx.changed().await.ok()?;
            Some(((), rx))
        }))
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn manual_clock_advances_with_paused_time_and_models_sleep_and_clock_sets() {
        let clock = ManualClock::new(1_000_000);
        clock.sleep(Duration::from_secs(3600)).await;
        assert_eq!(clock.now_unix_ms(), 1_000_000 + 3_600_000);
        assert_eq!(clock.monotonic(), Duration::from_secs(3600));
        clock.jump(Duration::from_secs(10));
        assert_eq!(clock.now_unix_ms(), 1_000_000 + 3_610_000);
        assert_eq!(clock.monotonic(), Duration::from_secs(3600));
        assert_eq!(clock.boot_time(), Duration::from_secs(3610));
        clock.shift_wall_ms(-20_000);
        assert_eq!(clock.now_unix_ms(), 1_000_000 + 3_590_000);
        assert_eq!(clock.boot_time(), Duration::from_secs(3610));
    }

    #[tokio::test(start_paused = true)]
    async fn manual_sleep_is_not_woken_by_a_jump_but_the_jump_is_reported() {
        let clock = ManualClock::new(0);
        let mut changes = clock.discontinuities();
        let sleeper = clock.sleep_until_boot(Duration::from_secs(60));
        clock.jump(Duration::from_secs(120));
        changes.next().await.expect("the sleep is reported");
        // The device "slept" past the deadline but awake time did not move: the sleeper still
        // waits its full 60 s of awake time, like a tokio timer on a phone.
        let started = clock.monotonic();
        sleeper.await;
        assert_eq!(clock.monotonic() - started, Duration::from_secs(60));
    }

    #[test]
    fn synthetic_boot_counts_forward_wall_jumps_and_ignores_backward_ones() {
        let s = Duration::from_secs;
        let mut boot = SyntheticBoot::new(0, s(0));
        assert_eq!(boot.read(10_000, s(10)), s(10));
        // Slept an hour: the wall clock moved, the awake clock did not.
        assert_eq!(boot.read(3_610_000, s(10)), s(3610));
        // Clock set back an hour: only the awake time counts.
        assert_eq!(boot.read(10_000, s(15)), s(3615));
        assert_eq!(boot.read(15_000, s(20)), s(3620));
    }

    #[test]
    fn system_clock_elapsed_never_runs_behind_awake_time() {
        let clock = SystemClock::new();
        let (a0, b0) = (clock.monotonic(), clock.boot_time());
        std::thread::sleep(Duration::from_millis(20));
        let (a1, b1) = (clock.monotonic(), clock.boot_time());
        assert!(
            b1 - b0 + Duration::from_millis(2) >= a1 - a0,
            "{b0:?} {b1:?} {a0:?} {a1:?}"
        );
    }

    #[tokio::test]
    async fn system_clock_discontinuity_stream_stays_quiet_while_nothing_happens() {
        let clock = SystemClock::new();
        let mut changes = clock.discontinuities();
        let quiet = tokio::time::timeout(Duration::from_millis(50), changes.next()).await;
        assert!(quiet.is_err(), "no clock change or sleep in 50 ms");
    }

    #[tokio::test(start_paused = true)]
    async fn polling_notices_a_wall_clock_step() {
        let clock = ManualClock::new(0);
        let c = clock.clone();
        let mut changes = poll_discontinuities(Duration::from_secs(1), move || {
            (c.now_unix_ms(), c.monotonic(), c.boot_time())
        });
        clock.shift_wall_ms(-3_600_000);
        changes.next().await.expect("noticed at the next poll");
        assert_eq!(clock.monotonic(), Duration::from_secs(1));
    }
}
