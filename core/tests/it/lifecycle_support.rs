//! Test harness for the lifecycle scenarios: a scripted in-process token source on the
//! keeper's virtual clock, an event recorder, and small helpers.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokenkeeper::clock::{Clock, ManualClock};
use tokenkeeper::lifecycle::{Event, EventKind, Keeper, Policy, Session, SessionConfig};
use tokenkeeper::source::{
    FetchReason, FetchRequest, FetchedToken, SessionSpec, SourceError, Token, TokenSource,
};

/// Virtual start of every scenario: 2023-11-14T22:13:20Z.
pub(crate) const T0: i64 = 1_700_000_000_000;

/// What the scripted source does for one call.
pub(crate) enum Reply {
    Ok(FetchedToken),
    Err(SourceError),
    /// Never answers (the engine's fetch timeout must fire).
    Hang,
    /// Answers after a delay of virtual time.
    After(Duration, Box<Reply>),
}

/// One call as the source saw it.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    /// 1-based call number.
    pub(crate) n: u64,
    /// Device wall clock when the call started.
    pub(crate) at_ms: i64,
    pub(crate) reason: FetchReason,
    #[allow(dead_code)] // recorded for debugging failed scenarios
    pub(crate) attempt: u32,
    pub(crate) credentials: Option<String>,
}

type Script = Box<dyn Fn(&Call) -> Reply + Send + Sync>;

/// A token source that follows a script and records every call.
pub(crate) struct Scripted {
    clock: ManualClock,
    script: Script,
    calls: Mutex<Vec<Call>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    /// Fetch futures dropped before answering (cancelled by timeout or close).
    pub(crate) cancelled: AtomicUsize,
}

impl fmt::Debug for Scripted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scripted")
            .field("calls", &self.calls.lock().len())
            .finish()
    }
}

struct InFlight<'a>(&'a Scripted, bool);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
        if !self.1 {
            self.0.cancelled.fetch_add(1, Ordering::SeqCst);
        }
    }
}

impl Scripted {
    pub(crate) fn new(
        clock: &ManualClock,
        script: impl Fn(&Call) -> Reply + Send + Sync + 'static,
    ) -> Arc<Self> {
        Arc::new(Self {
            clock: clock.clone(),
            script: Box::new(script),
            calls: Mutex::new(Vec::new()),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            cancelled: AtomicUsize::new(0),
        })
    }

    pub(crate) fn calls(&self) -> Vec<Call> {
        self.calls.lock().clone()
    }

    pub(crate) fn call_count(&self) -> usize {
        self.calls.lock().len()
    }

    pub(crate) fn max_in_flight(&self) -> usize {
        self.max_in_flight.load(Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl TokenSource for Scripted {
    async fn fetch(&self, request: FetchRequest) -> Result<FetchedToken, SourceError> {
        let call = {
            let mut calls = self.calls.lock();
            let call = Call {
                n: calls.len() as u64 + 1,
                at_ms: self.clock.now_unix_ms(),
                reason: request.reason,
                attempt: request.attempt,
                credentials: request.credentials.as_ref().map(|c| c.expose().to_owned()),
            };
            calls.push(call.clone());
            call
        };
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        let mut guard = InFlight(self, false);
        let mut reply = (self.script)(&call);
        loop {
            match reply {
                Reply::Ok(t) => {
                    guard.1 = true;
                    return Ok(t);
                }
                Reply::Err(e) => {
                    guard.1 = true;
                    return Err(e);
                }
                Reply::Hang => futures::future::pending::<()>().await,
                Reply::After(d, next) => {
                    self.clock.sleep(d).await;
                    reply = *next;
                }
            }
        }
    }
}

/// A token valid for `secs`, numbered so each is distinct.
pub(crate) fn token(n: u64, secs: u64) -> Reply {
    Reply::Ok(
        FetchedToken::new(Token::new(format!("tok-{n}")))
            .with_expires_in(Duration::from_secs(secs)),
    )
}

/// A deterministic policy (fixed jitter seed), otherwise the defaults.
pub(crate) fn policy() -> Policy {
    Policy {
        jitter_seed: Some(42),
        ..Policy::default()
    }
}

pub(crate) struct Rig {
    pub(crate) clock: ManualClock,
    pub(crate) keeper: Keeper,
    pub(crate) source: Arc<Scripted>,
    pub(crate) session: Session,
    pub(crate) events: Arc<Mutex<Vec<Event>>>,
}

impl Rig {
    /// A keeper on a virtual clock at [`T0`] with one session fed by `script`.
    /// Must run inside `#[tokio::test(start_paused = true)]`.
    pub(crate) fn new(script: impl Fn(&Call) -> Reply + Send + Sync + 'static) -> Self {
        Self::with(ManualClock::new(T0), policy(), script)
    }

    pub(crate) fn with(
        clock: ManualClock,
        policy: Policy,
        script: impl Fn(&Call) -> Reply + Send + Sync + 'static,
    ) -> Self {
        let keeper = Keeper::builder()
            .clock(Arc::new(clock.clone()))
            .policy(policy)
            .build()
            .expect("keeper on the test runtime");
        let source = Scripted::new(&clock, script);
        let session = keeper.open_session(
            SessionConfig::new(SessionSpec::new("live-42", "1001")),
            source.clone(),
        );
        let events = record(&session);
        Self {
            clock,
            keeper,
            source,
            session,
            events,
        }
    }

    /// Lets `d` of virtual time pass (everything due runs, in order).
    pub(crate) async fn run_for(&self, d: Duration) {
        self.clock.sleep(d).await;
    }

    /// Every event so far (listeners run on the keeper's event thread: wait for it first).
    pub(crate) fn events(&self) -> Vec<Event> {
        assert!(self.keeper.flush_listeners(Duration::from_secs(5)));
        self.events.lock().clone()
    }

    pub(crate) fn count(&self, pred: impl Fn(&EventKind) -> bool) -> usize {
        self.events().iter().filter(|e| pred(&e.kind)).count()
    }
}

pub(crate) fn record(session: &Session) -> Arc<Mutex<Vec<Event>>> {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    session.add_listener(Arc::new(move |e: &Event| sink.lock().push(e.clone())));
    events
}

/// (received at, expires at) of every issued token, in order.
pub(crate) fn issued(events: &[Event]) -> Vec<(i64, i64)> {
    events
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::Issued { expires_at_ms, .. } => Some((e.at_ms, expires_at_ms)),
            _ => None,
        })
        .collect()
}

/// Total time (ms) in `[from, to)` not covered by any issued token's validity.
pub(crate) fn uncovered_ms(events: &[Event], from: i64, to: i64) -> i64 {
    let mut gap = 0;
    let mut covered_until = from;
    for (at, exp) in issued(events) {
        if at > covered_until {
            gap += at.min(to) - covered_until;
        }
        covered_until = covered_until.max(exp);
        if covered_until >= to {
            break;
        }
    }
    if covered_until < to {
        gap += to - covered_until;
    }
    gap
}

/// A small deterministic generator for scripted randomness (SplitMix64).
#[derive(Debug)]
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// An HS256 JWT with the given claims (signed with a test key; the keeper only decodes it).
pub(crate) fn jwt(claims: serde_json::Value) -> String {
    use base64::Engine as _;
    use hmac::Mac as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let head = b64.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let body = b64.encode(claims.to_string());
    let signing_input = format!("{head}.{body}");
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"test-key-not-secret").expect("key");
    mac.update(signing_input.as_bytes());
    format!(
        "{signing_input}.{}",
        b64.encode(mac.finalize().into_bytes())
    )
}
