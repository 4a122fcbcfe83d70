//! Lifecycle load bench (real clock): many live sessions with 60 s tokens and an in-process source.
//!
//! Measures memory per session (counting global allocator), CPU to keep them renewed, renewal
//! lateness against schedule, and the cost of `Session::current()`.
//!
//! ```text
//! cargo bench -p tokenkeeper --no-default-features --bench lifecycle            # 100,000 sessions, ~85 s
//! TK_SESSIONS=10000 TK_SECS=40 cargo bench -p tokenkeeper --bench lifecycle       # quicker
//! ```
#![allow(clippy::print_stdout)] // a bench binary reports on stdout

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokenkeeper::clock::{Clock, SystemClock};
use tokenkeeper::lifecycle::{Event, EventKind, Keeper, Policy, Session, SessionConfig};
use tokenkeeper::source::{
    FetchReason, FetchRequest, FetchedToken, SessionSpec, SourceError, Token, TokenSource,
};

#[global_allocator]
static GLOBAL: support::Counting = support::Counting;

/// Token text length (a typical Agora 007 RTC token is ~140–180 characters).
const TOKEN_LEN: usize = 160;

#[derive(Debug)]
struct InProcess {
    clock: SystemClock,
    /// Scheduled renewal instant per session index, from `Issued` events.
    due: Arc<Vec<AtomicI64>>,
    lateness_us: Mutex<Vec<i64>>,
    fetches: AtomicU64,
}

#[async_trait::async_trait]
impl TokenSource for InProcess {
    async fn fetch(&self, r: FetchRequest) -> Result<FetchedToken, SourceError> {
        let n = self.fetches.fetch_add(1, Ordering::Relaxed);
        if r.reason == FetchReason::Scheduled {
            let idx: usize = r.session.channel.parse().unwrap_or(0);
            let due = self.due[idx].load(Ordering::Relaxed);
            // Lateness in µs against the scheduled unix-ms instant.
            let now_us = self.clock.now_unix_ms() * 1000;
            self.lateness_us.lock().push(now_us - due * 1000);
        }
        let mut text = format!("007{n:x}");
        text.extend(std::iter::repeat_n('A', TOKEN_LEN - text.len()));
        Ok(FetchedToken::new(Token::new(text)).with_expires_in(Duration::from_secs(60)))
    }
}

fn cpu_seconds() -> Option<f64> {
    // utime + stime from /proc/self/stat (Linux), in clock ticks (100 Hz on Linux).
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing: run a tiny smoke.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let sessions = if smoke {
        200
    } else {
        env_usize("TK_SESSIONS", 100_000)
    };
    let run_secs = if smoke {
        1
    } else {
        env_usize("TK_SECS", 75) as u64
    };
    let open_over = Duration::from_secs(if smoke { 0 } else { 20 });

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let clock = SystemClock::new();
    let due: Arc<Vec<AtomicI64>> = Arc::new((0..sessions).map(|_| AtomicI64::new(0)).collect());
    let source = Arc::new(InProcess {
        clock: clock.clone(),
        due: due.clone(),
        lateness_us: Mutex::new(Vec::with_capacity(sessions * 3)),
        fetches: AtomicU64::new(0),
    });
    let keeper = Keeper::builder()
        .runtime(rt.handle().clone())
        .clock(Arc::new(clock.clone()))
        .policy(Policy::default())
        .build()
        .expect("keeper");
    let due_l = due.clone();
    keeper.add_listener(Arc::new(move |e: &Event| {
        if let EventKind::Issued { renew_at_ms, .. } = e.kind {
            let idx: usize = e.session.channel.parse().unwrap_or(0);
            due_l[idx].store(renew_at_ms, Ordering::Relaxed);
        }
    }));

    // Memory: live bytes before and after opening every session and fetching its first token.
    let before = support::live_bytes();
    let mut handles: Vec<Session> = Vec::with_capacity(sessions);
    let handles_bytes = sessions * std::mem::size_of::<Session>();
    let batches = 100.min(sessions);
    let per_batch = sessions.div_ceil(batches);
    let pause = open_over / batches as u32;
    for b in 0..batches {
        for i in b * per_batch..((b + 1) * per_batch).min(sessions) {
            let cfg = SessionConfig::new(SessionSpec::new(i.to_string(), "u")).with_prefetch(true);
            handles.push(keeper.open_session(cfg, source.clone()));
        }
        std::thread::sleep(pause);
    }
    // Wait until every session holds a token.
    while handles.iter().any(|s| s.current().is_none()) {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(200));
    let after = support::live_bytes();
    let total = after.saturating_sub(before).saturating_sub(handles_bytes);
    let token_bytes = sessions * (TOKEN_LEN + 16); // Arc<str>: 16-byte header + text
    let per_session = total as f64 / sessions as f64;
    let beyond = (total.saturating_sub(token_bytes)) as f64 / sessions as f64;

    // CPU and lateness over the steady window.
    let cpu0 = cpu_seconds();
    let mono0 = clock.monotonic();
    let fetch0 = source.fetches.load(Ordering::Relaxed);
    source.lateness_us.lock().clear();
    std::thread::sleep(Duration::from_secs(run_secs));
    let elapsed = (clock.monotonic() - mono0).as_secs_f64();
    let cpu = cpu_seconds().zip(cpu0).map(|(a, b)| a - b);
    let renewals = source.fetches.load(Ordering::Relaxed) - fetch0;
    let mut late = source.lateness_us.lock().clone();
    late.sort_unstable();
    let expired: u64 = handles.iter().map(|s| s.counters().expired_ms).sum();
    let failures: u64 = handles.iter().map(|s| s.counters().failures).sum();

    // current() on a valid session.
    let s = &handles[0];
    let iters = if smoke { 10_000 } else { 10_000_000 };
    let t0 = clock.monotonic();
    let mut hits = 0u64;
    for _ in 0..iters {
        if std::hint::black_box(s.current()).is_some() {
            hits += 1;
        }
    }
    let per_call_ns = (clock.monotonic() - t0).as_nanos() as f64 / iters as f64;
    let t0 = clock.monotonic();
    let mut acc = 0i64;
    for _ in 0..iters {
        acc = acc.wrapping_add(std::hint::black_box(clock.now_unix_ms()));
    }
    std::hint::black_box(acc);
    let clock_ns = (clock.monotonic() - t0).as_nanos() as f64 / iters as f64;
    let t0 = clock.monotonic();
    let mut boot = Duration::ZERO;
    for _ in 0..iters {
        boot = boot.max(std::hint::black_box(clock.boot_time()));
    }
    std::hint::black_box(boot);
    let boot_ns = (clock.monotonic() - t0).as_nanos() as f64 / iters as f64;

    println!(
        "lifecycle bench: {sessions} sessions, 60 s tokens, in-process source, 2 worker threads"
    );
    println!(
        "  memory: {per_session:.0} B/session total, {beyond:.0} B/session beyond the token ({} B token text + 16 B Arc header)",
        TOKEN_LEN
    );
    println!(
        "  steady window {elapsed:.1} s: {renewals} renewals ({:.0}/s), CPU {} ({}), failures {failures}, expired_ms {expired}",
        renewals as f64 / elapsed,
        cpu.map_or("n/a".to_owned(), |c| format!(
            "{c:.2} s = {:.1}% of one core",
            100.0 * c / elapsed
        )),
        cpu.map_or("n/a".to_owned(), |c| format!(
            "{:.1} µs CPU per renewal",
            1e6 * c / renewals.max(1) as f64
        )),
    );
    println!(
        "  renewal lateness vs schedule (µs; ms-resolution wall clock): n={} p50={} p90={} p99={} max={}",
        late.len(),
        percentile(&late, 0.5),
        percentile(&late, 0.9),
        percentile(&late, 0.99),
        late.last().copied().unwrap_or(0)
    );
    println!(
        "  current(): {per_call_ns:.1} ns/call ({hits} hits); its elapsed-clock read \
         (CLOCK_BOOTTIME) {boot_ns:.1} ns (SystemTime read: {clock_ns:.1} ns)"
    );
    drop(handles);
    drop(keeper);
    rt.shutdown_timeout(Duration::from_secs(5));
}
