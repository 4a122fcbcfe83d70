//! Churn bench (real clock): sessions opened, given their first token, closed and dropped, over
//! and over, with and without a listener that holds its own session (the documented pattern
//! that used to leak). Reports live heap (counting allocator) and RSS growth; both should stay
//! flat.
//!
//! ```text
//! cargo bench -p tokenkeeper --no-default-features --bench churn           # 100,000 cycles each
//! TK_CYCLES=10000 cargo bench -p tokenkeeper --bench churn                   # quicker
//! ```
#![allow(clippy::print_stdout)] // a bench binary reports on stdout

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokenkeeper::clock::{Clock, SystemClock};
use tokenkeeper::lifecycle::{Event, EventListener, Keeper, Session, SessionConfig};
use tokenkeeper::source::{
    FetchRequest, FetchedToken, SessionSpec, SourceError, Token, TokenSource,
};

#[global_allocator]
static GLOBAL: support::Counting = support::Counting;

#[derive(Debug, Default)]
struct Instant(AtomicU64);

#[async_trait::async_trait]
impl TokenSource for Instant {
    async fn fetch(&self, _: FetchRequest) -> Result<FetchedToken, SourceError> {
        let n = self.0.fetch_add(1, Ordering::Relaxed);
        Ok(FetchedToken::new(Token::new(format!("tok-{n:0>150}")))
            .with_expires_in(Duration::from_secs(3600)))
    }
}

/// A listener that holds its own session, as apps write them to call `current()` from it.
struct HoldsItsSession(Mutex<Option<Session>>);

impl EventListener for HoldsItsSession {
    fn on_event(&self, _: &Event) {
        let _ = self.0.lock().as_ref().map(Session::current);
    }
}

/// Resident set size in bytes (Linux `/proc/self/statm`), if readable.
fn rss() -> Option<usize> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: usize = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

async fn cycles(keeper: &Keeper, source: &Arc<Instant>, n: usize, listener: bool) {
    for i in 0..n {
        let spec = SessionSpec::new(format!("live-{i}"), "1001");
        let session = keeper.open_session(SessionConfig::new(spec), source.clone());
        if listener {
            session.add_listener(Arc::new(HoldsItsSession(Mutex::new(Some(session.clone())))));
        }
        session.token().await.expect("a token");
        session.close();
        drop(session);
    }
}

fn main() {
    let n: usize = std::env::var("TK_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let source = Arc::new(Instant::default());
    let clock = SystemClock::new();
    println!("churn bench: open → first token → close → drop, {n} cycles per case");
    for listener in [false, true] {
        let keeper = rt
            .block_on(async { Keeper::builder().build() })
            .expect("keeper");
        // Warm up: allocator pools, the event thread, the registry's sweep size.
        rt.block_on(cycles(&keeper, &source, 2_000, listener));
        assert!(keeper.flush_listeners(Duration::from_secs(10)));
        std::thread::sleep(Duration::from_millis(200));
        let (heap0, rss0) = (support::live_bytes(), rss());
        let started = clock.monotonic();
        rt.block_on(cycles(&keeper, &source, n, listener));
        let took = clock.monotonic() - started;
        assert!(keeper.flush_listeners(Duration::from_secs(10)));
        std::thread::sleep(Duration::from_millis(500));
        let (heap1, rss1) = (support::live_bytes(), rss());
        let heap = heap1 as i64 - heap0 as i64;
        let rss = match (rss0, rss1) {
            (Some(a), Some(b)) => format!("{:+.1} MiB", (b as f64 - a as f64) / 1_048_576.0),
            _ => "n/a".to_owned(),
        };
        println!(
            "  {}: live heap {heap:+} B ({:+.2} B/cycle), RSS {rss}, {:.1} µs/cycle, sessions left open {}",
            if listener {
                "with a listener holding its session"
            } else {
                "without a listener"
            },
            heap as f64 / n as f64,
            took.as_secs_f64() * 1e6 / n as f64,
            keeper.session_count(),
        );
    }
}
