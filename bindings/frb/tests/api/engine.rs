//! The sink, against fake engines that behave as Agora's does, in real time against the
//! reference backend with 25 % failures and latency.
//!
//! The engine holds the token it joined with or was last given (`renewToken`, the sink), calls
//! `onTokenWillExpire(token)` a lead before that token's own expiry (read from the token, as
//! Agora does) and `onTokenExpired()` ("request token") at expiry, and counts every moment it
//! holds an expired token: the stream it carries would fail. Agora warns 30 s before tokens that
//! live hours, when the session (default lead 30 s, up to 3 s of jitter earlier) is about to
//! renew too. The test compresses time: 8 s tokens, the engine warns 3.5 s ahead and the
//! session's lead is 3 s, so in most cycles the engine's callback starts the renewal and the
//! session's schedule finds it under way, and in the others (after failures the session renews
//! earlier) the schedule goes first and the callback names a token being replaced: both orders
//! of the race, each of which must still make exactly one successful fetch.
//!
//! The sink is the closure the generated glue would build from a Dart function: a Rust closure
//! returning a `DartFnFuture`, exactly as the token sources of the other tests.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use flutter_rust_bridge::DartFnFuture;
use parking_lot::Mutex;
use tokenkeeper::clock::{Clock, SystemClock};
use tokenkeeper_frb::api::config::Policy;
use tokenkeeper_frb::api::events::{Counters, EventKind, IssuedToken, SessionEvent, SessionState};
use tokenkeeper_frb::api::inspect::inspect;
use tokenkeeper_frb::api::keeper::{Keeper, Session};
use tokenkeeper_server::FaultsUpdate;

use crate::support::{Backend, Success, channel_sink, config, next_event_of};

/// Token lifetime asked of the backend.
const TOKEN_TTL_SECS: u64 = 8;
/// How long before expiry the engine says "will expire" (Agora: 30 s).
const WARN_BEFORE: Duration = Duration::from_millis(3_500);
/// The session's renewal lead (default: 30 s).
const RENEW_LEAD: Duration = Duration::from_secs(3);
/// How long each engine runs.
const RUN: Duration = Duration::from_secs(30);
/// How often the engine looks at its clock.
const TICK: Duration = Duration::from_millis(20);
/// How late the stale-reporting engine reports the token it held before.
const STALE_DELAY: Duration = Duration::from_millis(300);

/// How a fake engine deviates from a well-behaved one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Behaviour {
    /// Takes every token.
    Agora,
    /// Throws on the first `renewToken` (engine not ready), as a Dart sink would.
    RefusesFirstApply,
    /// After each renewal, reports the token it held before as expired and as about to expire,
    /// 300 ms late.
    ReportsStaleLate,
}

/// The token the engine holds.
#[derive(Debug, Clone)]
struct Held {
    token: String,
    /// The token's own expiry (unix ms), as the engine reads it.
    expires_ms: i64,
    warned: bool,
    requested: bool,
}

/// What the engine saw and did.
#[derive(Debug, Default)]
struct EngineLog {
    held: Option<Held>,
    /// Every token the engine held, in order: the join token, then each applied one.
    applied: Vec<String>,
    /// Tokens handed to the engine more than once.
    duplicates: u32,
    /// Time the engine held an expired token (ms).
    expired_ms: u64,
    /// `renewToken` calls the engine refused.
    refused: u32,
    /// `onTokenWillExpire` calls.
    warnings: u32,
    /// `onTokenExpired` calls at expiry ("request token").
    requests: u32,
    /// Stale reports sent (each one names a token the engine no longer holds).
    late_reports: u32,
    /// Stale reports due: when (unix ms) and about which token.
    due: Vec<(i64, String)>,
}

struct Engine {
    behaviour: Behaviour,
    clock: SystemClock,
    log: Mutex<EngineLog>,
}

fn expiry_ms(token: &str) -> i64 {
    inspect(token.to_owned())
        .expect("the backend issues decodable tokens")
        .expires_at
        .expect("Agora tokens state their expiry")
        .timestamp_millis()
}

impl Engine {
    fn new(behaviour: Behaviour) -> Arc<Self> {
        Arc::new(Self {
            behaviour,
            clock: SystemClock::new(),
            log: Mutex::new(EngineLog::default()),
        })
    }

    /// `joinChannel(token)`.
    fn join(&self, token: &IssuedToken) {
        let mut log = self.log.lock();
        log.applied.push(token.token.clone());
        log.held = Some(Held {
            token: token.token.clone(),
            expires_ms: expiry_ms(&token.token),
            warned: false,
            requested: false,
        });
    }

    /// `renewToken(token)`: what the sink calls.
    fn renew_token(&self, token: IssuedToken) -> anyhow::Result<()> {
        let mut log = self.log.lock();
        if self.behaviour == Behaviour::RefusesFirstApply && log.refused == 0 {
            log.refused += 1;
            // What a Dart exception looks like when it reaches Rust: its text (here naming the
            // token, as a careless engine wrapper might) and the stack trace the glue appends.
            anyhow::bail!(
                "AgoraRtcException(-7, not initialized) in renewToken({})\n\n#0 RtcEngineImpl.renewToken",
                token.token
            );
        }
        if log.applied.contains(&token.token) {
            log.duplicates += 1;
        }
        log.applied.push(token.token.clone());
        let previous = log.held.replace(Held {
            expires_ms: expiry_ms(&token.token),
            token: token.token,
            warned: false,
            requested: false,
        });
        if self.behaviour == Behaviour::ReportsStaleLate {
            if let Some(previous) = previous {
                let at = self.clock.now_unix_ms() + millis(STALE_DELAY);
                log.due.push((at, previous.token));
            }
        }
        Ok(())
    }

    /// The sink, as the glue would build it from a Dart `(t) => engine.renewToken(t.token)`.
    fn sink(
        self: &Arc<Self>,
    ) -> impl Fn(IssuedToken) -> DartFnFuture<anyhow::Result<()>> + Send + Sync + 'static {
        let engine = Arc::clone(self);
        move |token: IssuedToken| {
            let engine = Arc::clone(&engine);
            Box::pin(async move { engine.renew_token(token) })
        }
    }

    /// Runs the engine's callbacks against `session` for `d`.
    async fn run(&self, session: &Session, d: Duration) {
        let end = self.clock.now_unix_ms() + millis(d);
        while self.clock.now_unix_ms() < end {
            tokio::time::sleep(TICK).await;
            let now = self.clock.now_unix_ms();
            let mut will_expire = None;
            let mut expired = false;
            let stale: Vec<String>;
            {
                let mut log = self.log.lock();
                let (due, later): (Vec<_>, Vec<_>) =
                    log.due.drain(..).partition(|(at, _)| *at <= now);
                log.due = later;
                stale = due.into_iter().map(|(_, t)| t).collect();
                log.late_reports += u32::try_from(stale.len()).unwrap();
                let mut held = log.held.take();
                if let Some(h) = held.as_mut() {
                    if now >= h.expires_ms {
                        log.expired_ms += u64::try_from(millis(TICK)).unwrap();
                        if !h.requested {
                            h.requested = true;
                            log.requests += 1;
                            expired = true;
                        }
                    } else if now >= h.expires_ms - millis(WARN_BEFORE) && !h.warned {
                        h.warned = true;
                        log.warnings += 1;
                        will_expire = Some(h.token.clone());
                    }
                }
                log.held = held;
            }
            // The engine's callbacks, outside its lock (the session may call the sink at once).
            if let Some(token) = will_expire {
                session.on_token_will_expire(Some(token));
            }
            if expired {
                session.on_token_expired(None); // Agora's onRequestToken names no token
            }
            for token in stale {
                session.on_token_expired(Some(token.clone()));
                session.on_token_will_expire(Some(token));
            }
        }
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap()
}

/// What one engine and its session did.
struct Report {
    behaviour: Behaviour,
    log: EngineLog,
    /// Successful fetches, in order.
    successes: Vec<Success>,
    counters: Counters,
    state: SessionState,
    events: Vec<SessionEvent>,
}

/// Joins `engine` with the session's first token, runs it for [`RUN`], then waits until no
/// fetch is in flight and the engine holds the session's newest token (a renewal may be under
/// way when the run ends).
async fn run_engine(backend: &Backend, keeper: &Keeper, behaviour: Behaviour) -> Report {
    let source = backend.source(&backend.owner.api_key, "agora", TOKEN_TTL_SECS);
    let engine = Engine::new(behaviour);
    let session = keeper
        .open_session(
            config(&backend.channel, &backend.owner.id, Some("publisher")),
            source.callback(),
            engine.sink(),
        )
        .unwrap();
    let (target, mut rx) = channel_sink();
    session.events_into(target);
    engine.join(&session.token().await.expect("a first token to join with"));
    engine.run(&session, RUN).await;
    for _ in 0..250 {
        let settled = {
            let log = engine.log.lock();
            let held = log.held.as_ref().map(|h| h.token.clone());
            let successes = source.successes.lock();
            let newest = successes.last().map(|s| s.token.clone());
            let c = session.counters();
            let in_flight = c.fetches - c.failures - u64::try_from(successes.len()).unwrap();
            in_flight == 0
                && held.is_some()
                && held == newest
                && session.current().map(|t| t.token) == held
        };
        if settled {
            break;
        }
        tokio::time::sleep(TICK).await;
    }
    let successes = source.successes.lock().clone();
    let counters = session.counters();
    let state = session.state();
    session.close();
    let mut events = Vec::new();
    while let Some(e) = rx.recv().await {
        events.push(e);
    }
    let log = std::mem::take(&mut *engine.log.lock());
    Report {
        behaviour,
        log,
        successes,
        counters,
        state,
        events,
    }
}

/// What holds for every engine: one path from backend to engine.
fn assert_one_path(r: &Report) {
    let name = format!("{:?}", r.behaviour);
    let issued: Vec<&String> = r.successes.iter().map(|s| &s.token).collect();
    let applied: Vec<&String> = r.log.applied.iter().collect();
    assert!(
        issued.len() >= 5,
        "{name}: only {} tokens in {RUN:?}: {:?}",
        issued.len(),
        r.counters
    );
    assert_eq!(
        applied, issued,
        "{name}: every token the backend issued reached the engine exactly once, in order"
    );
    assert_eq!(r.log.duplicates, 0, "{name}: no token handed over twice");
    assert_eq!(
        r.log.expired_ms, 0,
        "{name}: the engine never held an expired token"
    );
    assert_eq!(
        r.log.requests, 0,
        "{name}: the engine never had to ask for a token"
    );
    // Exactly one successful fetch per renewal cycle: each token was replaced by one fetch, made
    // while it was the current one (the engine's "will expire" and the schedule never both
    // fetched).
    assert_eq!(
        r.successes[0].replaced, None,
        "{name}: the first fetch replaced nothing"
    );
    for pair in r.successes.windows(2) {
        assert_eq!(
            pair[1].replaced.as_ref(),
            Some(&pair[0].token),
            "{name}: each fetch replaced the token before it"
        );
    }
    let distinct: HashSet<&String> = issued.iter().copied().collect();
    assert_eq!(distinct.len(), issued.len(), "{name}: distinct tokens");
    let n = u64::try_from(issued.len()).unwrap();
    assert_eq!(
        r.counters.fetches - r.counters.failures,
        n,
        "{name}: {:?}",
        r.counters
    );
    assert_eq!(
        (r.counters.renewals, r.counters.applies),
        (n - 1, n - 1),
        "{name}: every renewal applied once: {:?}",
        r.counters
    );
    let applied_events = r
        .events
        .iter()
        .filter(|e| e.kind == EventKind::Applied)
        .count();
    assert_eq!(
        u64::try_from(applied_events).unwrap(),
        n - 1,
        "{name}: one applied event per renewal"
    );
    assert_eq!(r.counters.rejections, 0, "{name}: nothing was rejected");
    // Valid, or renewing when the run ended between a failed attempt and its retry.
    assert!(
        matches!(r.state, SessionState::Valid | SessionState::Renewing),
        "{name}: the session never stopped or lost its token: {:?}",
        r.state
    );
    assert_eq!(
        r.counters.time_without_token,
        chrono::Duration::zero(),
        "{name}: the session always held a valid token"
    );
    assert_eq!(
        r.events.last().map(|e| e.kind),
        Some(EventKind::Closed),
        "{name}: the event stream ends after closed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agora_like_engines_get_each_token_once_in_order_never_expired_with_one_fetch_per_cycle() {
    let backend = Backend::start().await;
    backend
        .server
        .admin()
        .update_faults(FaultsUpdate {
            error_rate: Some(0.25),
            latency_ms: Some(150),
            ..Default::default()
        })
        .unwrap();
    let keeper = Keeper::new(Some(Policy {
        renew_lead: chrono::Duration::from_std(RENEW_LEAD).ok(),
        ..Default::default()
    }))
    .unwrap();
    // The three engines run at the same time, against the same flaky backend.
    let (agora, refusing, stale) = tokio::join!(
        run_engine(&backend, &keeper, Behaviour::Agora),
        run_engine(&backend, &keeper, Behaviour::RefusesFirstApply),
        run_engine(&backend, &keeper, Behaviour::ReportsStaleLate),
    );
    for r in [&agora, &refusing, &stale] {
        assert_one_path(r);
    }
    let failures: u64 = [&agora, &refusing, &stale]
        .iter()
        .map(|r| r.counters.failures)
        .sum();
    assert!(
        failures >= 1,
        "the backend's injected failures were met and retried"
    );

    // An engine that was not ready got the same token again: no new fetch (checked above), one
    // failed apply, reported without the token or the Dart stack trace.
    assert_eq!(
        (refusing.log.refused, refusing.counters.apply_failures),
        (1, 1)
    );
    let failed = refusing
        .events
        .iter()
        .find(|e| e.kind == EventKind::ApplyFailed)
        .expect("an applyFailed event");
    let message = failed.message.clone().unwrap_or_default();
    assert_eq!(failed.attempt, Some(1));
    assert!(
        message.starts_with("the Dart token sink threw: AgoraRtcException(-7, not initialized)"),
        "{message}"
    );
    assert!(!message.contains("#0"), "first line only: {message}");
    assert!(
        refusing
            .log
            .applied
            .iter()
            .all(|t| !message.contains(t.as_str())),
        "no token in the message: {message}"
    );

    // Late reports about the token the engine held before changed nothing (checked above: no
    // extra fetch, no rejection, the session valid).
    // (The report about the last renewal may fall after the end of the run.)
    assert!(
        u64::from(stale.log.late_reports) + 1 >= stale.counters.applies
            && stale.log.late_reports >= 3,
        "the engine reported a stale token after each renewal: {} reports, {} applies",
        stale.log.late_reports,
        stale.counters.applies
    );
    backend.server.shutdown().await;
}

/// Without a sink the notifications still drive renewals: "will expire" twice for the same
/// token fetches once, and the app forwards the token it gets from the `issued` event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_sink_a_repeated_will_expire_notification_renews_once() {
    let backend = Backend::start().await;
    // 24 s tokens: a warning in the first quarter of a token's life (6 s) is ignored (it comes
    // from a warning window longer than the token), so warn after it; the schedule renews at
    // half-life (12 s), after this test's checks.
    let source = backend.source(&backend.owner.api_key, "agora", 24);
    let keeper = Keeper::new(None).unwrap();
    let session = keeper
        .open_session_without_sink(
            config(&backend.channel, &backend.owner.id, Some("publisher")),
            source.callback(),
        )
        .unwrap();
    let first = session.token().await.unwrap();
    let (target, mut rx) = channel_sink();
    session.events_into(target);
    tokio::time::sleep(Duration::from_millis(6_500)).await;
    session.on_token_will_expire(Some(first.token.clone()));
    session.on_token_will_expire(Some(first.token.clone()));
    let issued = next_event_of(&mut rx, EventKind::Issued).await;
    assert_eq!(
        issued.reason,
        Some(tokenkeeper_frb::api::source::FetchReason::Forced)
    );
    let renewed = session.current().expect("the renewed token");
    assert_ne!(renewed.token, first.token);
    // A late third notification about the replaced token changes nothing.
    session.on_token_will_expire(Some(first.token.clone()));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(source.requests.lock().len(), 2, "one fetch for the renewal");
    assert_eq!(session.counters().applies, 0, "no sink, nothing applied");
    backend.server.shutdown().await;
}
