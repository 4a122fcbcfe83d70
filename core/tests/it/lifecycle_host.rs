//! Host code that panics, blocks or holds its own session; stalled connections; overflowing
//! numbers; callers on other executors; and the OAuth source's answers (`Retry-After` dates,
//! huge bodies, a refresh token of another client).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokenkeeper::Error;
use tokenkeeper::clock::{Clock, ManualClock};
use tokenkeeper::lifecycle::{Event, EventListener, Keeper, Policy, SessionConfig};
use tokenkeeper::source::{
    FetchRequest, FetchedToken, SessionSpec, SourceError, Token, TokenSource,
};

use crate::lifecycle_support::{Reply, Rig, T0, policy, token, uncovered_ms};

const MIN: Duration = Duration::from_secs(60);

/// #17: a listener that panics on every event.
#[tokio::test(start_paused = true)]
async fn a_panicking_listener_never_stops_renewals() {
    let rig = Rig::new(|c| token(c.n, 60));
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    rig.session.add_listener(Arc::new(move |_: &Event| {
        seen.fetch_add(1, Ordering::SeqCst);
        panic!("listener bug");
    }));
    rig.session.token().await.unwrap();
    rig.run_for(Duration::from_secs(3600)).await;
    let c = rig.session.counters();
    assert!(c.renewals > 100, "{c:?}");
    assert_eq!((c.driver_restarts, c.expired_ms), (0, 0));
    assert!(rig.keeper.flush_listeners(Duration::from_secs(5)));
    assert!(calls.load(Ordering::SeqCst) > 200, "it kept being called");
}

/// #17: a listener that blocks forever (a deadlocked UI callback).
#[tokio::test(start_paused = true)]
async fn a_blocked_listener_never_delays_renewals() {
    let rig = Rig::new(|c| token(c.n, 60));
    let (release, blocked) = std::sync::mpsc::channel::<()>();
    let blocked = Mutex::new(blocked);
    rig.session.add_listener(Arc::new(move |_: &Event| {
        let _ = blocked.lock().recv();
    }));
    rig.session.token().await.unwrap();
    rig.run_for(Duration::from_secs(600)).await;
    let c = rig.session.counters();
    assert!(c.renewals >= 19, "{c:?}");
    assert_eq!(c.expired_ms, 0);
    assert!(!rig.keeper.flush_listeners(Duration::from_millis(50)));
    drop(release);
}

/// A source that panics on its `n`th call.
#[derive(Debug)]
struct PanicsOnce {
    calls: AtomicUsize,
    panic_on: usize,
}

#[async_trait::async_trait]
impl TokenSource for PanicsOnce {
    async fn fetch(&self, _: FetchRequest) -> Result<FetchedToken, SourceError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        assert!(n != self.panic_on, "source bug on call {n}");
        Ok(FetchedToken::new(Token::new(format!("tok-{n}")))
            .with_expires_in(Duration::from_secs(600)))
    }
}

/// #17: a token source that panics fails one attempt; the session goes on.
#[tokio::test(start_paused = true)]
async fn a_panicking_source_fails_one_attempt_and_renew_token_still_returns() {
    let keeper = Keeper::builder()
        .clock(Arc::new(ManualClock::new(T0)))
        .policy(policy())
        .build()
        .unwrap();
    let source = Arc::new(PanicsOnce {
        calls: AtomicUsize::new(0),
        panic_on: 2,
    });
    let session = keeper.open_session(SessionConfig::new(SessionSpec::new("a", "1")), source);
    session.token().await.unwrap();
    let renewed = session
        .renew_token()
        .await
        .expect("the retry after the panic");
    assert_eq!(renewed.token.expose(), "tok-3");
    let c = session.counters();
    assert_eq!((c.failures, c.driver_restarts), (1, 0));
}

/// Counts its own drops; holds a session like a listener capturing `session` does.
struct Holder {
    session: Mutex<Option<tokenkeeper::lifecycle::Session>>,
    dropped: Arc<AtomicBool>,
}

impl Drop for Holder {
    fn drop(&mut self) {
        self.dropped.store(true, Ordering::SeqCst);
    }
}

impl EventListener for Holder {
    fn on_event(&self, _: &Event) {
        let _ = self.session.lock().as_ref().map(|s| s.current());
    }
}

/// #18: `close()` lets go of a listener that holds its own session.
#[tokio::test(start_paused = true)]
async fn close_releases_a_listener_that_holds_its_session() {
    let rig = Rig::new(|c| token(c.n, 60));
    let dropped = Arc::new(AtomicBool::new(false));
    let holder = Arc::new(Holder {
        session: Mutex::new(Some(rig.session.clone())),
        dropped: dropped.clone(),
    });
    rig.session.add_listener(holder);
    rig.session.token().await.unwrap();
    rig.session.close();
    assert!(rig.keeper.flush_listeners(Duration::from_secs(5)));
    assert!(
        dropped.load(Ordering::SeqCst),
        "the listener (and its session) were freed"
    );
}

/// #19: 3 s tokens and a stalled connection on a renewal.
#[tokio::test(start_paused = true)]
async fn a_stalled_renewal_gets_a_stand_in_before_the_token_expires() {
    let rig = Rig::with(
        ManualClock::new(T0),
        Policy {
            renew_lead: Duration::from_secs(1),
            ..policy()
        },
        |c| {
            if c.n == 2 {
                Reply::Hang
            } else {
                Reply::After(Duration::from_millis(100), Box::new(token(c.n, 3)))
            }
        },
    );
    rig.session.token().await.unwrap();
    let start = rig.clock.now_unix_ms();
    rig.run_for(Duration::from_secs(30)).await;
    let end = rig.clock.now_unix_ms();
    assert_eq!(uncovered_ms(&rig.events(), start, end), 0);
    assert_eq!(rig.session.counters().expired_ms, 0);
    assert_eq!(rig.source.max_in_flight(), 2, "the stall and its stand-in");
}

/// #20: `Retry-After: 18446744073709551615` and `max_retry_after = Duration::MAX`.
#[tokio::test(start_paused = true)]
async fn an_absurd_retry_after_saturates_instead_of_overflowing() {
    let rig = Rig::with(
        ManualClock::new(T0),
        Policy {
            max_retry_after: Duration::MAX,
            ..policy()
        },
        |_| {
            Reply::Err(SourceError::from_http_status(
                429,
                Some(Duration::from_secs(u64::MAX)),
                "url",
                "slow down",
            ))
        },
    );
    let err = rig.session.token().await.unwrap_err();
    assert!(matches!(err, Error::RetryLater { .. }), "{err}");
    rig.run_for(10 * MIN).await;
    assert_eq!(rig.source.call_count(), 1, "no immediate retry loop");
    let renew = rig.session.renew_token().await.unwrap_err();
    assert!(matches!(renew, Error::RetryLater { .. }), "{renew}");
}

#[derive(Debug)]
struct Instant;

#[async_trait::async_trait]
impl TokenSource for Instant {
    async fn fetch(&self, r: FetchRequest) -> Result<FetchedToken, SourceError> {
        Ok(FetchedToken::new(Token::new(format!("tok-{}", r.attempt)))
            .with_expires_in(Duration::from_secs(600)))
    }
}

/// #20: awaited from another executor, outside any tokio runtime.
#[test]
fn token_can_be_awaited_outside_a_tokio_runtime() {
    let keeper = Keeper::builder()
        .build()
        .expect("the keeper owns a runtime");
    let session = keeper.open_session(
        SessionConfig::new(SessionSpec::new("a", "1")),
        Arc::new(Instant),
    );
    let t = futures::executor::block_on(session.token()).expect("no reactor panic");
    assert_eq!(t.token.expose(), "tok-1");
    let renewed = futures::executor::block_on(session.renew_token()).unwrap();
    assert_ne!(renewed.token, t.token);
}

#[cfg(feature = "http")]
mod oauth {
    use tokenkeeper::source::Credentials;
    use tokenkeeper::sources::{OAuthConfig, OAuthSource};

    use super::*;
    use crate::http_support::serve_with_headers;

    fn source(port: u16, clock: &ManualClock) -> OAuthSource {
        OAuthSource::new(OAuthConfig::confidential(
            &format!("http://127.0.0.1:{port}/oauth/token"),
            "zoom-user-app",
            "s3cret-not-logged",
        ))
        .unwrap()
        .with_clock(Arc::new(clock.clone()))
        .with_refresh_token(Credentials::new("rt-belongs-to-another-app"))
    }

    /// #21: `Retry-After` given as an HTTP date.
    #[tokio::test]
    async fn a_retry_after_http_date_is_honoured() {
        let (port, _) = serve_with_headers(|_| {
            (
                503,
                vec![
                    ("date".into(), "Sun, 06 Nov 1994 08:49:37 GMT".into()),
                    ("retry-after".into(), "Sun, 06 Nov 1994 08:51:37 GMT".into()),
                ],
                r#"{"error":"temporarily_unavailable"}"#.into(),
            )
        })
        .await;
        let err = source(port, &ManualClock::new(T0))
            .refresh()
            .await
            .unwrap_err();
        assert_eq!(err.retry_after(), Some(Duration::from_secs(120)), "{err}");
    }

    /// #21: a body of 2 MiB is refused without being buffered.
    #[tokio::test]
    async fn an_endless_answer_is_refused_at_the_body_limit() {
        let (port, _) = serve_with_headers(|_| (200, vec![], "x".repeat(2 << 20))).await;
        let err = source(port, &ManualClock::new(T0))
            .refresh()
            .await
            .unwrap_err();
        assert!(
            matches!(&err, SourceError::Misconfigured { message, .. } if message.contains("larger than 1048576 bytes")),
            "{err}"
        );
    }

    /// #22: the refresh token was issued to another OAuth app (the Zoom seed's bug).
    #[tokio::test]
    async fn a_refresh_token_of_another_client_names_the_mix_up_and_keeps_the_servers_reason() {
        let (port, _) = serve_with_headers(|_| {
            (
                400,
                vec![],
                r#"{"error":"invalid_grant","reason":"Invalid Token! (rt-belongs-to-another-app issued to another client)"}"#.into(),
            )
        })
        .await;
        let err = source(port, &ManualClock::new(T0))
            .refresh()
            .await
            .unwrap_err();
        let SourceError::ReauthRequired { message } = &err else {
            panic!("{err:?}");
        };
        assert!(message.contains("`zoom-user-app`"), "{message}");
        assert!(message.contains("issued to another OAuth app"), "{message}");
        assert!(
            message.contains("Invalid Token!"),
            "the server's reason: {message}"
        );
        assert!(
            !message.contains("rt-belongs-to-another-app"),
            "redacted: {message}"
        );
        assert!(!message.contains("s3cret"), "{message}");
    }
}

/// Android reports a network change several times in a row: one stand-in, started at once.
#[tokio::test(start_paused = true)]
async fn a_network_change_reported_twice_starts_one_stand_in_at_once() {
    let rig = Rig::new(|c| {
        if c.n == 1 {
            Reply::Hang
        } else {
            token(c.n, 600)
        }
    });
    let s = rig.session.clone();
    let waiter = tokio::spawn(async move { s.token().await });
    rig.run_for(Duration::from_secs(2)).await; // the first fetch is stuck on the old network
    rig.keeper.network_available();
    rig.keeper.network_available();
    let t = waiter.await.unwrap().expect("the stand-in's token");
    assert_eq!(t.token.expose(), "tok-2");
    assert_eq!(rig.source.call_count(), 2, "one stand-in, not two");
    assert_eq!(
        rig.clock.now_unix_ms() - T0,
        2_000,
        "started at once, not after a backoff"
    );
}

/// The network changes just as the first fetch starts (it may have gone out on the old one):
/// a stand-in starts at once. A real second change later gives up on a fetch stuck since the
/// first change.
#[tokio::test(start_paused = true)]
async fn network_changes_give_up_on_fetches_started_before_them() {
    let rig = Rig::new(|c| {
        if c.n <= 2 {
            Reply::Hang
        } else {
            token(c.n, 600)
        }
    });
    let s = rig.session.clone();
    let waiter = tokio::spawn(async move { s.token().await });
    tokio::task::yield_now().await; // the first fetch starts
    rig.run_for(Duration::from_millis(1)).await;
    assert_eq!(rig.source.call_count(), 1);
    rig.keeper.network_available(); // Wi-Fi → LTE
    rig.run_for(Duration::from_millis(1)).await;
    assert_eq!(rig.source.call_count(), 2, "a stand-in at once");
    rig.run_for(Duration::from_secs(3)).await; // the stand-in is stuck too
    rig.keeper.network_available(); // LTE → Wi-Fi
    let t = waiter.await.unwrap().expect("the third fetch's token");
    assert_eq!(t.token.expose(), "tok-3");
    assert!(
        rig.clock.now_unix_ms() - T0 < 3_100,
        "no fetch timeout waited"
    );
}

/// A closed session's status holds no token.
#[tokio::test(start_paused = true)]
async fn a_closed_session_reports_closed_with_no_token() {
    let rig = Rig::new(|c| token(c.n, 600));
    rig.session.token().await.unwrap();
    let mut status = rig.session.watch_status();
    assert!(status.borrow_and_update().expires_at_ms.is_some());
    rig.session.close();
    let last = status.borrow_and_update().clone();
    assert_eq!(last.state, tokenkeeper::lifecycle::SessionState::Closed);
    assert_eq!(last.expires_at_ms, None);
}

/// Android reports one network change as a burst of callbacks a few milliseconds apart
/// (`onAvailable`, `onCapabilitiesChanged`, `onLinkPropertiesChanged`, …): one stand-in for
/// the whole burst, however many callbacks it has.
#[tokio::test(start_paused = true)]
async fn a_burst_of_network_change_reports_starts_one_stand_in() {
    let rig = Rig::new(|c| {
        if c.n == 1 {
            Reply::Hang
        } else {
            Reply::After(Duration::from_millis(200), Box::new(token(c.n, 600)))
        }
    });
    let s = rig.session.clone();
    let waiter = tokio::spawn(async move { s.token().await });
    rig.run_for(Duration::from_secs(2)).await; // the first fetch is stuck on the old network
    for _ in 0..4 {
        rig.keeper.network_available();
        rig.run_for(Duration::from_millis(10)).await;
    }
    let t = waiter.await.unwrap().expect("the stand-in's token");
    assert_eq!(t.token.expose(), "tok-2");
    assert_eq!(rig.source.call_count(), 2, "one stand-in for the burst");
}

/// "Never renew early" written as `renew_lead = Duration::MAX` (or every knob at its maximum):
/// the arithmetic saturates, a token is handed out, and the session renews at half-life.
#[tokio::test(start_paused = true)]
async fn maximal_policy_durations_saturate_instead_of_panicking() {
    let rig = Rig::with(
        ManualClock::new(T0),
        Policy {
            renew_lead: Duration::MAX,
            renew_jitter: Duration::MAX,
            fetch_timeout: Duration::MAX,
            refresh_answer_wait: Duration::MAX,
            backoff_initial: Duration::MAX,
            backoff_max: Duration::MAX,
            expiry_margin: Duration::MAX,
            fresh_rejection_window: Duration::MAX,
            ..policy()
        },
        |c| token(c.n, 600),
    );
    let t = tokio::time::timeout(Duration::from_secs(60), rig.session.token())
        .await
        .expect("no hang")
        .expect("a token");
    assert_eq!(t.token.expose(), "tok-1");
    rig.run_for(10 * MIN).await;
    assert!(rig.source.call_count() >= 2, "renewed before expiry");
    assert_eq!(rig.session.counters().driver_restarts, 0);
}
