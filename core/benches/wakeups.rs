//! Wakeups bench (virtual time): how often sessions wake the process, as timer firings per
//! session-hour and per renewal, for 1 h, 10 min and 60 s tokens over a simulated day.
//!
//! A phone that streams for hours pays for every wakeup in battery. A session sleeps until its
//! next deadline (renewal, expiry, retry) and wakes for requests and keeper signals only; device
//! sleep and clock changes come from the kernel (`timerfd` on Linux and Android), not from
//! polling. The clock here counts every timer that ran to its end.
//!
//! ```text
//! cargo bench -p tokenkeeper --no-default-features --bench wakeups
//! ```
#![allow(clippy::print_stdout)] // a bench binary reports on stdout

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokenkeeper::clock::{Clock, Discontinuities, ManualClock, Sleep};
use tokenkeeper::lifecycle::{Keeper, Policy, Session, SessionConfig};
use tokenkeeper::source::{
    FetchRequest, FetchedToken, SessionSpec, SourceError, Token, TokenSource,
};

/// A virtual clock that counts the timers that fired.
#[derive(Debug, Clone)]
struct Counted {
    inner: ManualClock,
    fired: Arc<AtomicU64>,
}

impl Counted {
    fn count(&self, sleep: Sleep) -> Sleep {
        let fired = self.fired.clone();
        Box::pin(async move {
            sleep.await;
            fired.fetch_add(1, Ordering::Relaxed);
        })
    }
}

impl Clock for Counted {
    fn now_unix_ms(&self) -> i64 {
        self.inner.now_unix_ms()
    }
    fn monotonic(&self) -> Duration {
        self.inner.monotonic()
    }
    fn boot_time(&self) -> Duration {
        self.inner.boot_time()
    }
    fn sleep(&self, duration: Duration) -> Sleep {
        self.count(self.inner.sleep(duration))
    }
    fn sleep_until_boot(&self, deadline: Duration) -> Sleep {
        self.count(self.inner.sleep_until_boot(deadline))
    }
    fn discontinuities(&self) -> Discontinuities {
        self.inner.discontinuities()
    }
}

#[derive(Debug)]
struct Backend {
    lifetime: Duration,
    fetches: AtomicU64,
}

#[async_trait::async_trait]
impl TokenSource for Backend {
    async fn fetch(&self, _: FetchRequest) -> Result<FetchedToken, SourceError> {
        let n = self.fetches.fetch_add(1, Ordering::Relaxed);
        Ok(FetchedToken::new(Token::new(format!("tok-{n}"))).with_expires_in(self.lifetime))
    }
}

const SESSIONS: usize = 100;
const HOURS: u64 = 24;

fn main() {
    println!("wakeups bench: {SESSIONS} sessions, {HOURS} simulated hours, healthy backend");
    for lifetime_s in [3600u64, 600, 60] {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("runtime");
        rt.block_on(async {
            let clock = Counted {
                inner: ManualClock::new(1_700_000_000_000),
                fired: Arc::default(),
            };
            let keeper = Keeper::builder()
                .clock(Arc::new(clock.clone()))
                .policy(Policy {
                    jitter_seed: Some(1),
                    ..Policy::default()
                })
                .build()
                .expect("keeper");
            let backend = Arc::new(Backend {
                lifetime: Duration::from_secs(lifetime_s),
                fetches: AtomicU64::new(0),
            });
            let sessions: Vec<Session> = (0..SESSIONS)
                .map(|i| {
                    let spec = SessionSpec::new(format!("live-{i}"), "1001");
                    keeper.open_session(SessionConfig::new(spec).with_prefetch(true), backend.clone())
                })
                .collect();
            clock.inner.sleep(Duration::from_secs(1)).await;
            let fired0 = clock.fired.load(Ordering::Relaxed);
            let renewals0: u64 = sessions.iter().map(|s| s.counters().renewals).sum();
            clock.inner.sleep(Duration::from_secs(HOURS * 3600)).await;
            let fired = clock.fired.load(Ordering::Relaxed) - fired0;
            let renewals = sessions.iter().map(|s| s.counters().renewals).sum::<u64>() - renewals0;
            let session_hours = (SESSIONS as u64 * HOURS) as f64;
            println!(
                "  {lifetime_s:>4} s tokens: {:.1} wakeups per session-hour, {:.2} per renewal ({} renewals)",
                fired as f64 / session_hours,
                fired as f64 / renewals.max(1) as f64,
                renewals
            );
        });
    }
}
