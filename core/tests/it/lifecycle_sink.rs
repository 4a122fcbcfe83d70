//! The sink, against a fake engine that behaves as Agora's does, in virtual time: it holds the
//! applied token, says "will expire" 30 s before that token's expiry and "request token" at
//! expiry, and counts the time it holds an expired token.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokenkeeper::clock::{Clock, ManualClock};
use tokenkeeper::lifecycle::{
    EventKind, IssuedToken, Keeper, Session, SessionConfig, SessionState, SinkError, TokenSink,
};
use tokenkeeper::source::{SessionSpec, SourceError};

use crate::lifecycle_support::{Reply, Rng, Scripted, T0, policy, record, token};

/// What the fake engine saw.
#[derive(Debug, Default)]
pub(crate) struct EngineLog {
    /// Every token applied, in order (the join token first).
    pub(crate) applied: Vec<String>,
    /// A token applied twice, or an older one after a newer one.
    pub(crate) duplicates: u32,
    /// Time the engine held an expired token (ms).
    pub(crate) expired_ms: i64,
    /// Apply calls the engine refused.
    pub(crate) refused: u32,
}

/// An Agora-like engine: `renewToken` replaces the held token; callbacks fire on its schedule.
pub(crate) struct FakeEngine {
    clock: ManualClock,
    held: Mutex<Option<IssuedToken>>,
    pub(crate) log: Mutex<EngineLog>,
    /// Refuse this many apply calls first ("engine not ready").
    refuse_first: Mutex<u32>,
}

impl FakeEngine {
    pub(crate) fn new(clock: &ManualClock, refuse_first: u32) -> Arc<Self> {
        Arc::new(Self {
            clock: clock.clone(),
            held: Mutex::new(None),
            log: Mutex::new(EngineLog::default()),
            refuse_first: Mutex::new(refuse_first),
        })
    }

    /// `joinChannel(token)`.
    pub(crate) fn join(&self, token: IssuedToken) {
        self.log
            .lock()
            .applied
            .push(token.token.expose().to_owned());
        *self.held.lock() = Some(token);
    }

    /// Runs the engine's callbacks against `session` for `d` of virtual time.
    pub(crate) async fn run(self: &Arc<Self>, session: &Session, d: Duration) {
        let end = self.clock.now_unix_ms() + i64::try_from(d.as_millis()).unwrap();
        let mut warned_for: Option<String> = None;
        let mut requested_for: Option<String> = None;
        while self.clock.now_unix_ms() < end {
            self.clock.sleep(Duration::from_millis(50)).await;
            let Some(held) = self.held.lock().clone() else {
                continue;
            };
            let now = self.clock.now_unix_ms();
            let text = held.token.expose().to_owned();
            if now >= held.expires_at_ms {
                self.log.lock().expired_ms += 50;
                if requested_for.as_deref() != Some(&text) {
                    requested_for = Some(text.clone());
                    session.on_token_expired(None); // Agora's onRequestToken names no token
                }
            } else if now >= held.expires_at_ms - 30_000 && warned_for.as_deref() != Some(&text) {
                warned_for = Some(text.clone());
                session.on_token_will_expire(Some(&text));
            }
        }
    }
}

#[async_trait::async_trait]
impl TokenSink for FakeEngine {
    async fn apply(&self, token: &IssuedToken) -> Result<(), SinkError> {
        {
            let mut refuse = self.refuse_first.lock();
            if *refuse > 0 {
                *refuse -= 1;
                self.log.lock().refused += 1;
                return Err(SinkError::new("ERR_NOT_READY (-7)"));
            }
        }
        let text = token.token.expose().to_owned();
        let mut log = self.log.lock();
        let newer = log
            .applied
            .last()
            .is_none_or(|last| serial(last) < serial(&text));
        if !newer {
            log.duplicates += 1;
        }
        log.applied.push(text);
        drop(log);
        *self.held.lock() = Some(token.clone());
        Ok(())
    }
}

/// `tok-<n>` → n.
/// A keeper on `clock` with this file's policy.
fn manual_keeper(clock: &ManualClock) -> Keeper {
    Keeper::builder()
        .clock(Arc::new(clock.clone()))
        .policy(policy())
        .build()
        .unwrap()
}

fn serial(token: &str) -> u64 {
    token.trim_start_matches("tok-").parse().unwrap_or(0)
}

fn flaky_backend(seed: u64, lifetime: u64) -> impl Fn(&crate::lifecycle_support::Call) -> Reply {
    let rng = Mutex::new(Rng(seed));
    move |c| {
        let (x, latency) = {
            let mut r = rng.lock();
            (r.unit(), 100 + (r.unit() * 200.0) as u64)
        };
        let reply = if x < 0.25 {
            Reply::Err(SourceError::from_http_status(
                503,
                None,
                "url",
                "overloaded",
            ))
        } else {
            token(c.n, lifetime)
        };
        Reply::After(Duration::from_millis(latency), Box::new(reply))
    }
}

async fn engine_session(
    lifetime: u64,
    refuse_first: u32,
) -> (ManualClock, Keeper, Arc<Scripted>, Arc<FakeEngine>, Session) {
    let clock = ManualClock::new(T0);
    let keeper = manual_keeper(&clock);
    let source = Scripted::new(&clock, flaky_backend(7, lifetime));
    let engine = FakeEngine::new(&clock, refuse_first);
    let session = keeper.open_session(
        SessionConfig::new(SessionSpec::new("live-42", "1001")).with_sink(engine.clone()),
        source.clone(),
    );
    (clock, keeper, source, engine, session)
}

/// Six simulated hours of 10-minute tokens against a backend failing 25 % of fetches.
#[tokio::test(start_paused = true)]
async fn every_token_reaches_the_engine_once_in_order_and_never_expired() {
    let (_clock, keeper, source, engine, session) = engine_session(600, 0).await;
    let events = record(&session);
    engine.join(session.token().await.unwrap());
    engine.run(&session, Duration::from_secs(6 * 3600)).await;
    let log = engine.log.lock();
    let c = session.counters();
    assert!(c.renewals >= 35, "{c:?}");
    assert_eq!(log.duplicates, 0);
    assert_eq!(log.expired_ms, 0, "the engine never held an expired token");
    assert_eq!(c.applies, c.renewals, "every renewal applied once");
    // One successful fetch per renewal cycle: the engine's "will expire" never adds one.
    let ok_fetches = c.fetches - c.failures;
    assert_eq!(ok_fetches, c.renewals + 1, "{c:?}");
    assert!(source.call_count() as u64 == c.fetches);
    assert!(keeper.flush_listeners(Duration::from_secs(5)));
    let applied = events
        .lock()
        .iter()
        .filter(|e| matches!(e.kind, EventKind::Applied { .. }))
        .count() as u64;
    assert_eq!(applied, c.applies);
}

/// The engine is not ready for the first two renewals it is given.
#[tokio::test(start_paused = true)]
async fn an_engine_that_refuses_an_apply_gets_it_again_without_a_new_fetch() {
    let (_clock, _keeper, _source, engine, session) = engine_session(600, 2).await;
    engine.join(session.token().await.unwrap());
    engine.run(&session, Duration::from_secs(2 * 3600)).await;
    let log = engine.log.lock();
    let c = session.counters();
    assert_eq!(log.refused, 2);
    assert_eq!((log.duplicates, log.expired_ms), (0, 0));
    assert_eq!(c.apply_failures, 2);
    assert_eq!(
        c.fetches - c.failures,
        c.renewals + 1,
        "no extra fetch: {c:?}"
    );
    assert_eq!(session.state(), SessionState::Valid);
}

/// The engine reports the previous token late, after the renewal reached it.
#[tokio::test(start_paused = true)]
async fn a_late_report_about_the_previous_token_changes_nothing() {
    let (clock, _keeper, source, engine, session) = engine_session(600, 0).await;
    let first = session.token().await.unwrap();
    engine.join(first.clone());
    engine.run(&session, Duration::from_secs(590)).await;
    assert_eq!(session.counters().applies, 1, "renewed and applied");
    let calls = source.call_count();
    session.on_token_expired(Some(first.token.expose()));
    session.on_token_rejected(Some(first.token.expose()));
    session.on_token_will_expire(Some(first.token.expose()));
    clock.sleep(Duration::from_secs(5)).await;
    assert_eq!(source.call_count(), calls, "no fetch for stale reports");
    assert_eq!(session.counters().rejections, 0);
    assert_eq!(engine.log.lock().duplicates, 0);
}

/// An engine that refuses every fresh token is a rejection, not an endless retry.
#[tokio::test(start_paused = true)]
async fn an_engine_refusing_every_token_is_reported_as_rejected() {
    let (_clock, _keeper, source, engine, session) = engine_session(600, u32::MAX).await;
    engine.join(session.token().await.unwrap());
    let _ = session.renew_token().await;
    engine.run(&session, Duration::from_secs(120)).await;
    let c = session.counters();
    assert!(c.rejections >= 1, "{c:?}");
    assert!(source.call_count() <= 8, "{} fetches", source.call_count());
    assert_eq!(
        session.state(),
        SessionState::Failed,
        "the loop breaker stopped it"
    );
}

/// Tokens shorter than the engine's warning window (20 s tokens, Agora's 30 s warning): the
/// engine warns about every token as soon as it holds it. The session renews on its own
/// schedule instead of in a loop.
#[tokio::test(start_paused = true)]
async fn an_engine_warning_about_every_new_token_does_not_renew_in_a_loop() {
    let (_clock, _keeper, _source, engine, session) = engine_session(20, 0).await;
    engine.join(session.token().await.unwrap());
    engine.run(&session, Duration::from_secs(600)).await;
    let c = session.counters();
    let log = engine.log.lock();
    // Half-life renewals of 20 s tokens: about one per 10 s.
    assert!((50..=70).contains(&c.renewals), "{c:?}");
    assert_eq!(c.fetches - c.failures, c.renewals + 1, "{c:?}");
    assert_eq!((log.duplicates, log.expired_ms), (0, 0));
}

/// An engine reached the way a foreign binding reaches it: the call runs on a thread of its own
/// (uniffi's blocking pool, the Dart isolate), so it goes on when the session stops waiting for
/// it. Each call takes the next of `delays` (then none).
struct ForeignEngine {
    clock: ManualClock,
    delays: Mutex<std::collections::VecDeque<Duration>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    /// Every token the engine took, in the order it took them (the join token first).
    took: Mutex<Vec<String>>,
}

impl ForeignEngine {
    /// An engine whose first calls take `delays`, one each; later ones answer at once.
    fn new<const N: usize>(clock: &ManualClock, delays: [Duration; N]) -> Arc<Self> {
        Arc::new(Self {
            clock: clock.clone(),
            delays: Mutex::new(delays.into()),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            took: Mutex::new(Vec::new()),
        })
    }
}

struct ForeignSink(Arc<ForeignEngine>);

#[async_trait::async_trait]
impl TokenSink for ForeignSink {
    async fn apply(&self, token: &IssuedToken) -> Result<(), SinkError> {
        let engine = self.0.clone();
        let text = token.token.expose().to_owned();
        let delay = engine.delays.lock().pop_front().unwrap_or_default();
        let call = tokio::spawn(async move {
            let n = engine.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            engine.max_in_flight.fetch_max(n, Ordering::SeqCst);
            engine.clock.sleep(delay).await;
            engine.took.lock().push(text);
            engine.in_flight.fetch_sub(1, Ordering::SeqCst);
        });
        call.await.map_err(|_| SinkError::new("cancelled"))
    }
}

/// A host call that outlives the session's patience (15 s against a 10 s fetch timeout) is
/// still running when the session would try again: the engine must never see two calls at once,
/// nor take an older token after a newer one.
#[tokio::test(start_paused = true)]
async fn a_sink_call_that_outlives_its_timeout_is_never_overlapped() {
    let clock = ManualClock::new(T0);
    let keeper = manual_keeper(&clock);
    let source = Scripted::new(&clock, |c| token(c.n, 600));
    let engine = ForeignEngine::new(&clock, [Duration::from_secs(15)]);
    let session = keeper.open_session(
        SessionConfig::new(SessionSpec::new("live-42", "1001"))
            .with_sink(Arc::new(ForeignSink(engine.clone()))),
        source.clone(),
    );
    let first = session.token().await.unwrap();
    engine.took.lock().push(first.token.expose().to_owned());
    clock.sleep(Duration::from_secs(60)).await;
    session.renew_token().await.unwrap(); // tok-2: its first apply hangs for 15 s
    clock.sleep(Duration::from_secs(12)).await;
    session.renew_token().await.unwrap(); // tok-3, while that call still runs
    clock.sleep(Duration::from_secs(30)).await;
    assert_eq!(
        engine.max_in_flight.load(Ordering::SeqCst),
        1,
        "one call at a time"
    );
    let took = engine.took.lock().clone();
    assert!(
        took.windows(2).all(|w| serial(&w[0]) < serial(&w[1])),
        "in order, each once: {took:?}"
    );
    assert_eq!(took.last().map(String::as_str), Some("tok-3"), "{took:?}");
}

/// An engine that is not ready for about two seconds (a WebSocket reconnecting, an engine
/// rejoining) refuses six applies in a row. That is not a token problem: the session must not
/// drop good tokens in a loop and stop with `Rejected`.
#[tokio::test(start_paused = true)]
async fn an_engine_not_ready_for_two_seconds_does_not_stop_the_session() {
    let (_clock, _keeper, _source, engine, session) = engine_session(600, 6).await;
    engine.join(session.token().await.unwrap());
    engine.run(&session, Duration::from_secs(3600)).await;
    let c = session.counters();
    let log = engine.log.lock();
    assert_eq!(log.refused, 6);
    assert_eq!(session.state(), SessionState::Valid, "{c:?}");
    assert_eq!((log.duplicates, log.expired_ms), (0, 0));
    assert!(c.renewals >= 5, "{c:?}");
}

/// Refusals that end within a few seconds cost no fetch: the same token is applied again.
#[tokio::test(start_paused = true)]
async fn brief_refusals_cost_no_fetch() {
    let (_clock, _keeper, _source, engine, session) = engine_session(600, 4).await;
    engine.join(session.token().await.unwrap());
    engine.run(&session, Duration::from_secs(3600)).await;
    let c = session.counters();
    assert_eq!(engine.log.lock().refused, 4);
    assert_eq!(c.rejections, 0, "{c:?}");
    assert_eq!(
        c.fetches - c.failures,
        c.renewals + 1,
        "no extra fetch: {c:?}"
    );
}

/// Host engines quote what they were given ("renewToken(007eJx…) failed"): the token must not
/// reach the `ApplyFailed` event (nor the log line made of the same text).
#[tokio::test(start_paused = true)]
async fn a_sink_error_quoting_the_token_does_not_leak_it() {
    let clock = ManualClock::new(T0);
    let keeper = manual_keeper(&clock);
    let source = Scripted::new(&clock, |c| token(c.n, 600));
    let sink = Arc::new(|t: &IssuedToken| -> Result<(), SinkError> {
        Err(SinkError::new(format!(
            "renewToken({}) failed: -7",
            t.token.expose()
        )))
    });
    let session = keeper.open_session(
        SessionConfig::new(SessionSpec::new("live-42", "1001")).with_sink(sink),
        source,
    );
    let events = record(&session);
    session.token().await.unwrap();
    let renewed = session.renew_token().await.unwrap();
    clock.sleep(Duration::from_secs(1)).await;
    assert!(keeper.flush_listeners(Duration::from_secs(5)));
    let messages: Vec<String> = events
        .lock()
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::ApplyFailed { message, .. } => Some(message.clone()),
            _ => None,
        })
        .collect();
    assert!(!messages.is_empty());
    for m in &messages {
        assert!(!m.contains(renewed.token.expose()), "{m}");
        assert!(m.contains("failed: -7"), "{m}");
    }
}

/// The app calls `token()` again after joining (for a REST call, a second screen) while the
/// engine is refusing the renewal: the engine still gets it, and never holds an expired token.
#[tokio::test(start_paused = true)]
async fn token_called_again_does_not_mark_a_pending_apply_as_done() {
    let (clock, _keeper, _source, engine, session) = engine_session(600, 1).await;
    engine.join(session.token().await.unwrap());
    let renewed = session.renew_token().await.unwrap();
    clock.sleep(Duration::from_millis(50)).await; // the first apply was refused
    assert_eq!(engine.log.lock().refused, 1);
    let again = session.token().await.unwrap(); // not a join
    assert_eq!(again.token, renewed.token);
    engine.run(&session, Duration::from_secs(1200)).await;
    let log = engine.log.lock();
    assert!(
        log.applied.contains(&renewed.token.expose().to_owned()),
        "{:?}",
        log.applied
    );
    assert_eq!((log.duplicates, log.expired_ms), (0, 0));
}

/// Engine callbacks in a storm (an engine repeating "request token"), before joining and after
/// close: one fetch per storm, no loop breaker, nothing after close.
#[tokio::test(start_paused = true)]
async fn engine_callback_storms_before_join_and_after_close_are_harmless() {
    let (clock, _keeper, source, engine, session) = engine_session(600, 0).await;
    let first = session.token().await.unwrap();
    engine.join(first.clone());
    clock.sleep(Duration::from_secs(120)).await;
    let calls = source.call_count();
    for _ in 0..100 {
        session.on_token_expired(None);
    }
    clock.sleep(Duration::from_secs(30)).await;
    let c = session.counters();
    assert!(source.call_count() - calls <= 4, "{c:?}"); // one refetch (and its retries)
    assert_eq!(session.state(), SessionState::Valid, "{c:?}");
    assert_eq!(c.applies, 1, "the refetched token applied once: {c:?}");
    for _ in 0..100 {
        session.on_token_will_expire(Some(first.token.expose()));
        session.on_token_rejected(Some(first.token.expose()));
    }
    clock.sleep(Duration::from_secs(30)).await;
    assert_eq!(session.counters().applies, 1);
    session.close();
    let calls = source.call_count();
    session.on_token_expired(None);
    session.on_token_will_expire(None);
    session.on_token_rejected(Some("tok-999"));
    clock.sleep(Duration::from_secs(30)).await;
    assert_eq!(source.call_count(), calls, "nothing after close");
    assert_eq!(engine.log.lock().duplicates, 0);
}

/// A sink that never answers: renewals go on, the session closes, and nothing waits on it.
#[tokio::test(start_paused = true)]
async fn a_sink_that_never_answers_does_not_stop_renewals_or_close() {
    let clock = ManualClock::new(T0);
    let keeper = manual_keeper(&clock);
    let source = Scripted::new(&clock, |c| token(c.n, 120));
    let engine = ForeignEngine::new(&clock, [Duration::from_secs(1_000_000)]);
    let session = keeper.open_session(
        SessionConfig::new(SessionSpec::new("live-42", "1001"))
            .with_sink(Arc::new(ForeignSink(engine.clone()))),
        source,
    );
    let events = record(&session);
    session.token().await.unwrap();
    clock.sleep(Duration::from_secs(600)).await;
    let c = session.counters();
    assert!(c.renewals >= 5, "{c:?}");
    assert!(session.current().is_some());
    assert_eq!(engine.max_in_flight.load(Ordering::SeqCst), 1);
    session.close();
    clock.sleep(Duration::from_secs(1)).await;
    assert!(keeper.flush_listeners(Duration::from_secs(5)));
    assert!(
        events
            .lock()
            .iter()
            .any(|e| matches!(e.kind, EventKind::ApplyFailed { .. }))
    );
}

/// A sink that panics on every call is a refusing engine, not a crash.
#[tokio::test(start_paused = true)]
async fn a_sink_that_panics_is_a_refusal() {
    let clock = ManualClock::new(T0);
    let keeper = manual_keeper(&clock);
    let source = Scripted::new(&clock, |c| token(c.n, 600));
    let sink = Arc::new(|_: &IssuedToken| -> Result<(), SinkError> { panic!("engine bug") });
    let session = keeper.open_session(
        SessionConfig::new(SessionSpec::new("live-42", "1001")).with_sink(sink),
        source,
    );
    session.token().await.unwrap();
    let _ = session.renew_token().await;
    clock.sleep(Duration::from_secs(120)).await;
    let c = session.counters();
    assert!(c.apply_failures >= 3, "{c:?}");
    assert_eq!(c.applies, 0);
}

/// The app joins with a token it got without `token()` (`current()` after a prefetch): the
/// engine's first callback tells the session the engine is in, and the sink takes over from
/// there (before, the sink was never called and the engine's token expired).
#[tokio::test(start_paused = true)]
async fn an_app_that_joined_without_token_still_gets_renewals_through_the_sink() {
    let clock = ManualClock::new(T0);
    let keeper = manual_keeper(&clock);
    let source = Scripted::new(&clock, flaky_backend(3, 600));
    let engine = FakeEngine::new(&clock, 0);
    let session = keeper.open_session(
        SessionConfig::new(SessionSpec::new("live-42", "1001"))
            .with_prefetch(true)
            .with_sink(engine.clone()),
        source,
    );
    let first = loop {
        if let Some(t) = session.current() {
            break t;
        }
        clock.sleep(Duration::from_millis(100)).await;
    };
    engine.join(first);
    engine.run(&session, Duration::from_secs(3600)).await;
    let c = session.counters();
    let log = engine.log.lock();
    assert!(c.applies >= 5, "{c:?}");
    assert_eq!(
        (log.duplicates, log.expired_ms),
        (0, 0),
        "{:?}",
        log.applied
    );
}
