//! Lifecycle edge cases in virtual time: misbehaving sources, rejection loop breaker, fatal
//! errors, Retry-After, credential rotation, timeouts, closing, not-yet-valid tokens.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokenkeeper::Error;
use tokenkeeper::clock::{Clock, ManualClock};
use tokenkeeper::lifecycle::{EventKind, Keeper, SessionConfig, SessionState};
use tokenkeeper::source::{
    Credentials, FetchReason, FetchedToken, SessionSpec, SourceError, Token,
};
use tokenkeeper::store::{CredentialStore, MemoryStore, StoreError};

use crate::lifecycle_support::{Reply, Rig, Scripted, T0, jwt, policy, token};

const MIN: Duration = Duration::from_secs(60);

fn failed_attempts(rig: &Rig) -> usize {
    rig.count(|k| matches!(k, EventKind::FetchFailed { .. }))
}

#[tokio::test(start_paused = true)]
async fn source_returning_expired_tokens_is_an_error_with_backoff_not_a_loop() {
    let rig = Rig::new(|c| {
        Reply::Ok(
            FetchedToken::new(Token::new(format!("tok-{}", c.n)))
                .with_expires_at_ms(c.at_ms - 5_000)
                .with_server_time_ms(c.at_ms),
        )
    });
    // token() waits across the failed attempts up to the 30 s wait limit, then returns the last.
    let err = rig.session.token().await.unwrap_err();
    assert!(
        matches!(&err, Error::RetryLater { message, .. } if message.contains("already-expired")),
        "{err}"
    );
    assert_eq!(rig.clock.now_unix_ms() - T0, 30_000);
    rig.run_for(10 * MIN - Duration::from_secs(30)).await;
    let calls = rig.source.call_count();
    // Backoff 1 s doubling to 30 s with equal jitter (0.5–1 s, 1–2 s, … then 15–30 s):
    // ~31 attempts in 10 minutes, never hundreds, never zero.
    assert!((26..=36).contains(&calls), "calls in 10 min: {calls}");
    assert_eq!(failed_attempts(&rig), calls);
    assert!(rig.session.current().is_none());
    assert_eq!(rig.session.state(), SessionState::Fetching);
}

/// A fresh token shorter than the lead (10 s, lead 30 s) is used and renews at half-life.
#[tokio::test(start_paused = true)]
async fn a_fresh_token_shorter_than_the_lead_renews_at_half_life() {
    let rig = Rig::new(|c| token(c.n, 10));
    rig.session.token().await.unwrap();
    rig.run_for(MIN).await;
    let c = rig.session.counters();
    // One renewal about every 5 s.
    assert!((11..=13).contains(&c.renewals), "{c:?}");
    assert_eq!(c.failures, 0, "{c:?}");
    assert_eq!(c.expired_ms, 0);
}

/// A backend whose every token was issued long ago with little life left (a broken cache):
/// each is past its own renewal point. The session takes one when it holds none, refuses the
/// others while it holds one (saying why), and never renews in a loop.
#[tokio::test(start_paused = true)]
async fn source_returning_tokens_past_their_renewal_point_never_loops() {
    let rig = Rig::new(|c| {
        let now = c.at_ms;
        Reply::Ok(
            FetchedToken::new(Token::new(format!("tok-{}", c.n)))
                .with_issued_at_ms(now - 3_590_000)
                .with_expires_at_ms(now + 10_000),
        )
    });
    rig.session
        .token()
        .await
        .expect("taken: the session held none");
    assert_eq!(rig.clock.now_unix_ms(), T0);
    rig.run_for(5 * MIN).await;
    let calls = rig.source.call_count();
    // One taken as each expires (every 10 s), the refused ones in between at the backoff's
    // pace (not packed into the held token's last seconds), and never a gap without a token.
    assert!((30..=180).contains(&calls), "calls in 5 min: {calls}");
    let at: Vec<i64> = rig.source.calls().iter().map(|c| c.at_ms).collect();
    for window in 0..30 {
        let start = T0 + window * 10_000;
        let n = at
            .iter()
            .filter(|t| (start..start + 10_000).contains(*t))
            .count();
        assert!(n <= 6, "{n} calls from {start}: {at:?}");
    }
    assert_eq!(rig.session.counters().expired_ms, 0);
    assert!(rig.keeper.flush_listeners(Duration::from_secs(5)));
    let refused = rig
        .events
        .lock()
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::FetchFailed { error, .. } => Some(error.to_string()),
            _ => None,
        })
        .collect::<Vec<_>>();
    assert!(!refused.is_empty());
    assert!(
        refused.iter().all(|m| m.contains("past its renewal point")),
        "{refused:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn source_returning_the_same_token_again_is_an_error_not_a_busy_loop() {
    let rig = Rig::new(|_| {
        Reply::Ok(FetchedToken::new(Token::new("same")).with_expires_in(Duration::from_secs(60)))
    });
    assert_eq!(rig.session.token().await.unwrap().token.expose(), "same");
    rig.run_for(10 * MIN).await;
    let calls = rig.source.call_count();
    // Asking faster will not change the source's mind: backoff to the 30 s cap, before the
    // token expires as after, with one attempt at its last useful start (expiry − latency −
    // expiry_margin) and one at its expiry.
    assert!((20..=45).contains(&calls), "calls in 10 min: {calls}");
    let at: Vec<i64> = rig.source.calls().iter().map(|c| c.at_ms).collect();
    assert!(
        at.windows(2)
            .all(|w| w[1] - w[0] >= 250 || w[1] == T0 + 60_000),
        "{at:?}"
    );
    let before_expiry = at.iter().filter(|t| **t < T0 + 60_000).count();
    assert!((4..=10).contains(&before_expiry), "{before_expiry}");
    assert!(at.contains(&(T0 + 59_900)), "{at:?}");
    assert!(at.contains(&(T0 + 60_000)), "{at:?}");
    let c = rig.session.counters();
    assert_eq!(c.renewals, 0);
    assert_eq!(c.failures as usize, calls - 1);
    assert_eq!(rig.count(|k| matches!(k, EventKind::Expired { .. })), 1);
    let err = rig.session.token().await.unwrap_err();
    assert!(
        matches!(&err, Error::RetryLater { message, .. } if message.contains("same token")),
        "{err}"
    );
}

#[tokio::test(start_paused = true)]
async fn fresh_token_rejected_at_once_is_refetched_once_then_reported() {
    let rig = Rig::new(|c| token(c.n, 600));
    rig.session.token().await.unwrap();
    let second = rig.session.token_rejected(None).await.expect("one refetch");
    assert_eq!(second.token.expose(), "tok-2");
    assert_eq!(rig.source.calls()[1].reason, FetchReason::Rejected);
    let err = rig.session.token_rejected(None).await.unwrap_err();
    assert!(matches!(err, Error::Rejected { .. }), "{err}");
    rig.run_for(60 * MIN).await;
    assert_eq!(
        rig.source.call_count(),
        2,
        "no fetch after the loop breaker"
    );
    assert_eq!(
        rig.count(|k| matches!(
            k,
            EventKind::Failed {
                error: Error::Rejected { .. }
            }
        )),
        1
    );
    assert_eq!(rig.session.state(), SessionState::Failed);
    assert!(rig.session.current().is_none());
    // The host can try again explicitly.
    assert_eq!(
        rig.session.renew_token().await.unwrap().token.expose(),
        "tok-3"
    );
}

#[tokio::test(start_paused = true)]
async fn old_token_rejected_is_refetched_without_tripping_the_breaker() {
    let rig = Rig::new(|c| token(c.n, 600));
    rig.session.token().await.unwrap();
    for n in 2..=4 {
        rig.run_for(MIN).await; // tokens are a minute old: not "rejected at once"
        assert_eq!(
            rig.session
                .token_rejected(None)
                .await
                .unwrap()
                .token
                .expose(),
            format!("tok-{n}")
        );
    }
    assert_eq!(rig.session.counters().rejections, 3);
    assert_eq!(rig.session.state(), SessionState::Valid);
}

#[tokio::test(start_paused = true)]
async fn fatal_error_emits_one_event_and_stops_fetching() {
    let rig = Rig::new(|c| {
        if c.n == 1 {
            token(1, 60)
        } else {
            Reply::Err(SourceError::ReauthRequired {
                message: "invalid_grant".into(),
            })
        }
    });
    rig.session.token().await.unwrap();
    rig.run_for(60 * MIN).await;
    assert_eq!(rig.source.call_count(), 2);
    assert_eq!(
        rig.count(|k| matches!(k, EventKind::ReauthRequired { .. })),
        1
    );
    assert_eq!(rig.session.state(), SessionState::Failed);
    let err = rig.session.token().await.unwrap_err();
    assert!(matches!(&err, Error::ReauthRequired { message } if message == "invalid_grant"));
    assert_eq!(rig.source.call_count(), 2);
}

#[tokio::test(start_paused = true)]
async fn revoked_drops_the_current_token_at_once() {
    let rig = Rig::new(|c| {
        if c.n == 1 {
            token(1, 600)
        } else {
            Reply::Err(SourceError::from_http_status(404, None, "", "stream ended"))
        }
    });
    rig.session.token().await.unwrap();
    let err = rig.session.renew_token().await.unwrap_err();
    assert!(matches!(&err, Error::Forbidden { reason } if reason.contains("stream ended")));
    assert!(rig.session.current().is_none());
    rig.run_for(60 * MIN).await;
    assert_eq!(rig.source.call_count(), 2);
    assert_eq!(rig.count(|k| matches!(k, EventKind::Forbidden { .. })), 1);
}

/// With no valid token to protect (a first fetch, an expired token), a server's `Retry-After` is
/// honoured in full, whatever cuts a backoff short.
#[tokio::test(start_paused = true)]
async fn retry_after_is_honoured_when_there_is_no_valid_token_even_when_the_network_comes_back() {
    let rig = Rig::new(|c| {
        if c.n == 1 {
            Reply::Err(SourceError::from_http_status(
                429,
                Some(Duration::from_secs(120)),
                "token_url",
                "slow down",
            ))
        } else {
            token(c.n, 600)
        }
    });
    // token() waits its 30 s limit, then reports the 90 s still to wait.
    let err = rig.session.token().await.unwrap_err();
    assert_eq!(
        err,
        Error::RetryLater {
            retry_after: Some(Duration::from_secs(90)),
            message: "HTTP 429: slow down".into()
        }
    );
    assert_eq!(rig.clock.now_unix_ms(), T0 + 30_000);
    let failed: Vec<_> = rig
        .events()
        .into_iter()
        .filter_map(|e| match e.kind {
            EventKind::FetchFailed {
                attempt,
                next_retry_at_ms,
                ..
            } => Some((attempt, next_retry_at_ms)),
            _ => None,
        })
        .collect();
    assert_eq!(failed, [(1, T0 + 120_000)]);
    rig.keeper.network_available();
    rig.run_for(Duration::from_secs(30)).await;
    assert_eq!(
        rig.source.call_count(),
        1,
        "network_available must not cut below Retry-After"
    );
    let early = rig.session.renew_token().await.unwrap_err();
    assert!(
        matches!(early, Error::RetryLater { retry_after: Some(d), .. } if d == Duration::from_secs(60))
    );
    // At +100 s a token() call waits for the retry at +120 s and returns its token.
    rig.run_for(Duration::from_secs(40)).await;
    let t = rig.session.token().await.unwrap();
    assert_eq!(t.token.expose(), "tok-2");
    let calls = rig.source.calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[1].at_ms - calls[0].at_ms, 120_000);
    assert_eq!(rig.clock.now_unix_ms(), T0 + 120_000);
}

/// A 503 with `Retry-After: 1` while the current token has less than a second left: the engine
/// retries before expiry instead of sleeping past it. After expiry, a `Retry-After` is obeyed.
#[tokio::test(start_paused = true)]
async fn a_503_retry_after_shortly_before_expiry_does_not_push_the_retry_past_expiry() {
    let unavailable = || {
        Reply::After(
            Duration::from_millis(100),
            Box::new(Reply::Err(SourceError::from_http_status(
                503,
                Some(Duration::from_secs(1)),
                "token_url",
                "unavailable",
            ))),
        )
    };
    let rig = Rig::with(
        ManualClock::new(T0),
        tokenkeeper::lifecycle::Policy {
            renew_lead: Duration::from_secs(1),
            ..policy()
        },
        move |c| match c.n {
            1 => token(1, 4),
            // The renewal's first two attempts get a 503 with Retry-After: 1.
            2 | 3 => unavailable(),
            n => Reply::After(Duration::from_millis(100), Box::new(token(n, 4))),
        },
    );
    rig.session.token().await.unwrap();
    rig.run_for(Duration::from_secs(5)).await;
    let calls = rig.source.calls();
    let expiry = T0 + 4_000;
    // Renewal starts 1-1.1 s before expiry (lead 1 s, jitter up to 100 ms); each retry comes
    // well before the 1 s Retry-After would have put it (past expiry for the second one).
    assert!(
        (expiry - 1_100..=expiry - 1_000).contains(&calls[1].at_ms),
        "renewal at {}",
        calls[1].at_ms - T0
    );
    let failed: Vec<i64> = rig
        .events()
        .into_iter()
        .filter_map(|e| match e.kind {
            EventKind::FetchFailed {
                next_retry_at_ms, ..
            } => Some(next_retry_at_ms),
            _ => None,
        })
        .collect();
    assert_eq!(failed.len(), 2);
    // Every retry is due before the last useful start (expiry - latency - 100 ms margin).
    assert!(
        failed.iter().all(|at| *at <= expiry - 200),
        "retries due at {:?} ms before expiry",
        failed.iter().map(|at| expiry - at).collect::<Vec<_>>()
    );
    assert!(calls[3].at_ms + 100 < expiry, "success landed after expiry");
    assert_eq!(rig.count(|k| matches!(k, EventKind::Expired { .. })), 0);
    assert_eq!(rig.session.counters().expired_ms, 0);

    // Without a valid token the same answer is obeyed: 1 s between attempts.
    let rig = Rig::new(move |c| {
        if c.n == 1 {
            unavailable()
        } else {
            token(c.n, 60)
        }
    });
    let t = rig.session.token().await.unwrap();
    assert_eq!(t.token.expose(), "tok-2");
    let calls = rig.source.calls();
    assert_eq!(calls[1].at_ms - calls[0].at_ms, 1_100);
}

/// A 429's `Retry-After` is honoured while the token is valid when it fits before expiry; when
/// it does not, the retry moves to the last useful start before expiry.
#[tokio::test(start_paused = true)]
async fn a_429_retry_after_is_honoured_when_it_fits_and_capped_before_expiry_otherwise() {
    for wait_s in [5, 50] {
        let rig = Rig::new(move |c| match c.n {
            1 => token(1, 60),
            2 => Reply::Err(SourceError::from_http_status(
                429,
                Some(Duration::from_secs(wait_s)),
                "token_url",
                "slow down",
            )),
            n => token(n, 60),
        });
        rig.session.token().await.unwrap();
        rig.run_for(Duration::from_secs(70)).await;
        let calls = rig.source.calls();
        let renewal = calls[1].at_ms;
        assert!((T0 + 27_000..=T0 + 30_000).contains(&renewal));
        // 5 s fits; 50 s does not: the retry moves to the last useful start, expiry - 100 ms
        // (expected latency 0 + `expiry_margin`).
        let want = if wait_s == 5 {
            renewal + 5_000
        } else {
            T0 + 60_000 - 100
        };
        assert_eq!(calls[2].at_ms, want, "Retry-After {wait_s} s");
        assert_eq!(rig.count(|k| matches!(k, EventKind::Expired { .. })), 0);
    }
}

#[tokio::test(start_paused = true)]
async fn network_available_cuts_a_pending_backoff_short() {
    let rig = Rig::new(|c| {
        if c.n <= 5 {
            Reply::Err(SourceError::network("offline"))
        } else {
            token(c.n, 600)
        }
    });
    let s = rig.session.clone();
    let waiter = tokio::spawn(async move { s.token().await });
    rig.run_for(Duration::from_secs(20)).await; // attempts 1..=5 with growing backoff
    assert_eq!(rig.source.call_count(), 5);
    assert!(
        !waiter.is_finished(),
        "token() waits across failed attempts"
    );
    rig.keeper.network_available();
    rig.run_for(Duration::from_millis(1)).await;
    assert_eq!(rig.source.call_count(), 6);
    assert_eq!(waiter.await.unwrap().unwrap().token.expose(), "tok-6");
    assert_eq!(rig.clock.now_unix_ms(), T0 + 20_001);
}

#[tokio::test(start_paused = true)]
async fn hanging_fetch_is_abandoned_after_the_fetch_timeout() {
    let rig = Rig::new(|c| {
        if c.n == 1 {
            Reply::Hang
        } else {
            token(c.n, 600)
        }
    });
    // token() waits through the timeout and the retry and returns the second fetch's token.
    let t = rig.session.token().await.unwrap();
    assert_eq!(t.token.expose(), "tok-2");
    assert_eq!(rig.source.cancelled.load(Ordering::SeqCst), 1);
    let calls = rig.source.calls();
    assert_eq!(
        calls[1].at_ms - T0 - 10_000,
        rig.clock.now_unix_ms() - T0 - 10_000
    );
    assert!(
        (10_500..=11_000).contains(&(calls[1].at_ms - T0)),
        "retry at +{} ms (10 s timeout, then 0.5-1 s backoff)",
        calls[1].at_ms - T0
    );
    let failed = rig.events().into_iter().find_map(|e| match e.kind {
        EventKind::FetchFailed { error, .. } => Some(error),
        _ => None,
    });
    assert!(
        matches!(&failed, Some(Error::RetryLater { message, .. }) if message.contains("fetch_timeout")),
        "{failed:?}"
    );
}

#[derive(Debug, Default)]
struct FailingStore;

#[async_trait::async_trait]
impl CredentialStore for FailingStore {
    async fn load(&self, _key: &str) -> Result<Option<Credentials>, StoreError> {
        Ok(Some(Credentials::new("rt-1")))
    }
    async fn save(&self, _key: &str, _c: &Credentials) -> Result<(), StoreError> {
        Err(StoreError::new("keychain locked"))
    }
    async fn delete(&self, _key: &str) -> Result<(), StoreError> {
        Ok(())
    }
}

fn rotating(c: &crate::lifecycle_support::Call) -> Reply {
    Reply::Ok(
        FetchedToken::new(Token::new(format!("tok-{}", c.n)))
            .with_expires_in(Duration::from_secs(600))
            .with_rotated(Credentials::new(format!("rt-{}", c.n + 1))),
    )
}

#[tokio::test(start_paused = true)]
async fn rotated_credentials_are_saved_before_the_token_is_handed_out() {
    let clock = ManualClock::new(T0);
    let store = Arc::new(MemoryStore::new());
    store
        .save("oauth:1001", &Credentials::new("rt-1"))
        .await
        .unwrap();
    let keeper = Keeper::builder()
        .clock(Arc::new(clock.clone()))
        .policy(policy())
        .store(store.clone())
        .build()
        .unwrap();
    let source = Scripted::new(&clock, rotating);
    let session = keeper.open_session(
        SessionConfig::new(SessionSpec::new("live-42", "1001")).with_credentials_key("oauth:1001"),
        source.clone(),
    );
    let t = session.token().await.unwrap();
    assert_eq!(t.token.expose(), "tok-1");
    assert_eq!(
        store.load("oauth:1001").await.unwrap().unwrap().expose(),
        "rt-2"
    );
    session.renew_token().await.unwrap();
    assert_eq!(
        store.load("oauth:1001").await.unwrap().unwrap().expose(),
        "rt-3"
    );
    let creds: Vec<_> = source.calls().into_iter().map(|c| c.credentials).collect();
    assert_eq!(creds, [Some("rt-1".to_owned()), Some("rt-2".to_owned())]);
}

#[tokio::test(start_paused = true)]
async fn a_failing_store_withholds_no_token_and_keeps_the_rotation_in_memory() {
    let clock = ManualClock::new(T0);
    let keeper = Keeper::builder()
        .clock(Arc::new(clock.clone()))
        .policy(policy())
        .store(Arc::new(FailingStore))
        .build()
        .unwrap();
    let source = Scripted::new(&clock, rotating);
    let session = keeper.open_session(
        SessionConfig::new(SessionSpec::new("live-42", "1001")).with_credentials_key("oauth:1001"),
        source.clone(),
    );
    let events = crate::lifecycle_support::record(&session);
    // The server already rotated: withholding its token would protect nothing.
    let t = session
        .token()
        .await
        .expect("handed out despite the failed save");
    assert_eq!(t.token.expose(), "tok-1");
    assert_eq!(
        clock.now_unix_ms(),
        T0,
        "a store that answers fast costs no time"
    );
    let renewed = session.renew_token().await.unwrap();
    assert_eq!(renewed.token.expose(), "tok-2");
    // The next fetch carries the rotated credentials kept in memory, not the stale stored ones.
    let creds: Vec<_> = source.calls().into_iter().map(|c| c.credentials).collect();
    assert_eq!(creds, [Some("rt-1".to_owned()), Some("rt-2".to_owned())]);
    assert!(session.counters().store_failures >= 2);
    assert!(keeper.flush_listeners(Duration::from_secs(5)));
    let reported: Vec<String> = events
        .lock()
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::StoreFailed { message } => Some(message.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(reported.len(), 2, "{reported:?}");
    assert!(reported[0].contains("keychain locked") && !reported[0].contains("rt-2"));
}

#[tokio::test(start_paused = true)]
async fn close_cancels_an_in_flight_fetch_and_wakes_waiters() {
    let rig = Rig::new(|_| Reply::Hang);
    let s = rig.session.clone();
    let waiter = tokio::spawn(async move { s.token().await });
    rig.run_for(Duration::from_secs(1)).await;
    rig.session.close();
    assert_eq!(waiter.await.unwrap().unwrap_err(), Error::Closed);
    rig.run_for(Duration::from_millis(1)).await;
    assert_eq!(rig.source.cancelled.load(Ordering::SeqCst), 1);
    rig.run_for(60 * MIN).await;
    assert_eq!(rig.source.call_count(), 1);
    assert_eq!(rig.session.state(), SessionState::Closed);
    assert_eq!(rig.session.token().await.unwrap_err(), Error::Closed);
    assert_eq!(rig.count(|k| matches!(k, EventKind::Closed)), 1);
}

#[tokio::test(start_paused = true)]
async fn dropping_the_keeper_stops_every_session() {
    let clock = ManualClock::new(T0);
    let keeper = Keeper::builder()
        .clock(Arc::new(clock.clone()))
        .policy(policy())
        .build()
        .unwrap();
    let source = Scripted::new(&clock, |c| token(c.n, 60));
    let sessions: Vec<_> = (0..3)
        .map(|i| {
            keeper.open_session(
                SessionConfig::new(SessionSpec::new(format!("ch-{i}"), "u")).with_prefetch(true),
                source.clone(),
            )
        })
        .collect();
    clock.sleep(Duration::from_secs(1)).await;
    assert_eq!(source.call_count(), 3);
    assert_eq!(keeper.session_count(), 3);
    drop(keeper);
    clock.sleep(10 * MIN).await;
    assert_eq!(source.call_count(), 3);
    assert!(
        sessions
            .iter()
            .all(|s| s.state() == SessionState::Closed && s.current().is_none())
    );
    // The driver tasks are gone: once the handles go, nothing holds the source any more.
    drop(sessions);
    assert_eq!(Arc::strong_count(&source), 1);
}

#[tokio::test(start_paused = true)]
async fn dropping_the_last_session_handle_stops_its_task() {
    let clock = ManualClock::new(T0);
    let keeper = Keeper::builder()
        .clock(Arc::new(clock.clone()))
        .policy(policy())
        .build()
        .unwrap();
    let source = Scripted::new(&clock, |c| token(c.n, 60));
    let session = keeper.open_session(
        SessionConfig::new(SessionSpec::new("a", "b")),
        source.clone(),
    );
    session.token().await.unwrap();
    drop(session);
    clock.sleep(10 * MIN).await;
    assert_eq!(source.call_count(), 1);
    assert_eq!(Arc::strong_count(&source), 1);
    assert_eq!(keeper.session_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn not_yet_valid_token_is_held_until_its_start_without_refetching() {
    let rig = Rig::new(|c| {
        let now_s = c.at_ms / 1000;
        let claims = serde_json::json!({"iat": now_s, "nbf": now_s + 3_600, "exp": now_s + 7_200, "jti": c.n});
        Reply::Ok(FetchedToken::new(Token::new(jwt(claims))))
    });
    let err = rig.session.token().await.unwrap_err();
    assert_eq!(
        err,
        Error::NotYetValid {
            starts_at_ms: T0 + 3_600_000
        }
    );
    assert_eq!(rig.session.state(), SessionState::NotYetValid);
    assert_eq!(
        rig.session.token().await.unwrap_err(),
        err,
        "no refetch while held"
    );
    rig.run_for(59 * MIN).await;
    assert!(rig.session.current().is_none());
    assert_eq!(rig.source.call_count(), 1);
    rig.run_for(MIN + Duration::from_millis(1)).await;
    let t = rig.session.current().expect("valid from nbf");
    assert_eq!(t.expires_at_ms, T0 + 7_200_000);
    assert_eq!(rig.source.call_count(), 1);
    assert_eq!(rig.count(|k| matches!(k, EventKind::NotYetValid { starts_at_ms } if *starts_at_ms == T0 + 3_600_000)), 1);
    assert_eq!(rig.count(|k| matches!(k, EventKind::BecameValid { .. })), 1);
}

#[tokio::test(start_paused = true)]
async fn debug_and_error_text_never_contain_the_token() {
    let rig = Rig::new(|_| {
        Reply::Ok(
            FetchedToken::new(Token::new("SECRETTOKENVALUE"))
                .with_expires_in(Duration::from_secs(600)),
        )
    });
    let t = rig.session.token().await.unwrap();
    let text = format!(
        "{t:?} {:?} {:?} {:?}",
        rig.session,
        rig.events(),
        rig.keeper
    );
    assert!(!text.contains("SECRETTOKENVALUE"), "{text}");
    assert!(text.contains("len 16"));
}

#[tokio::test(start_paused = true)]
async fn sessions_opened_after_shutdown_are_closed_and_never_fetch() {
    let clock = ManualClock::new(T0);
    let keeper = Keeper::builder()
        .clock(Arc::new(clock.clone()))
        .policy(policy())
        .build()
        .unwrap();
    let source = Scripted::new(&clock, |c| token(c.n, 60));
    keeper.shutdown();
    let late = keeper.open_session(
        SessionConfig::new(SessionSpec::new("a", "b")).with_prefetch(true),
        source.clone(),
    );
    assert_eq!(late.token().await.unwrap_err(), Error::Closed);
    clock.sleep(MIN).await;
    assert_eq!(source.call_count(), 0);
    assert_eq!(late.state(), SessionState::Closed);
}

#[tokio::test(start_paused = true)]
async fn listener_may_read_the_session_it_listens_to() {
    let rig = Rig::new(|c| token(c.n, 60));
    let seen = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let (s, sink) = (rig.session.clone(), seen.clone());
    rig.session
        .add_listener(Arc::new(move |e: &tokenkeeper::lifecycle::Event| {
            if matches!(e.kind, EventKind::Issued { .. }) {
                sink.lock()
                    .push(s.current().map(|t| t.token.expose().to_owned()));
            }
        }));
    rig.session.token().await.unwrap();
    rig.run_for(MIN).await;
    assert!(rig.keeper.flush_listeners(Duration::from_secs(5)));
    // Listeners run on the keeper's event thread: each one saw a valid token (the newest at
    // the time it ran) and none deadlocked.
    let seen = seen.lock();
    assert_eq!(seen.len(), 3);
    assert!(
        seen.iter()
            .all(|t| t.as_deref().is_some_and(|t| t.starts_with("tok-")))
    );
}

#[tokio::test(start_paused = true)]
async fn repeated_rejection_reports_for_the_same_token_share_one_refetch() {
    let rig = Rig::new(|c| Reply::After(Duration::from_millis(200), Box::new(token(c.n, 600))));
    rig.session.token().await.unwrap();
    rig.run_for(MIN).await;
    // The engine fires its callback three times for the same (old) token.
    let reports: Vec<_> = (0..3)
        .map(|_| {
            let s = rig.session.clone();
            tokio::spawn(async move { s.token_rejected(None).await })
        })
        .collect();
    for r in reports {
        assert_eq!(r.await.unwrap().unwrap().token.expose(), "tok-2");
    }
    assert_eq!(rig.source.call_count(), 2);
    assert_eq!(rig.session.counters().rejections, 1);
    assert_eq!(rig.session.state(), SessionState::Valid);
}

#[derive(Debug, Default)]
struct StuckStore;

#[async_trait::async_trait]
impl CredentialStore for StuckStore {
    async fn load(&self, _key: &str) -> Result<Option<Credentials>, StoreError> {
        Ok(None)
    }
    async fn save(&self, _key: &str, _c: &Credentials) -> Result<(), StoreError> {
        futures::future::pending().await
    }
    async fn delete(&self, _key: &str) -> Result<(), StoreError> {
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn a_credential_store_that_never_answers_costs_no_token_and_is_reported() {
    let clock = ManualClock::new(T0);
    let keeper = Keeper::builder()
        .clock(Arc::new(clock.clone()))
        .policy(policy())
        .store(Arc::new(StuckStore))
        .build()
        .unwrap();
    let source = Scripted::new(&clock, rotating);
    let session = keeper.open_session(
        SessionConfig::new(SessionSpec::new("live-42", "1001")).with_credentials_key("oauth:1001"),
        source.clone(),
    );
    // No valid token is at stake: the token is handed out after 250 ms, the save goes on.
    let t = session.token().await.expect("handed out at once");
    assert_eq!((t.token.expose(), clock.now_unix_ms()), ("tok-1", T0 + 250));
    // With a valid token in hand, the renewal waits: for the key, held by the first save up to
    // the fetch timeout (no one reads the store before a rotation is in it), then for its own
    // save, up to the fetch timeout again.
    let renewed = session.renew_token().await.unwrap();
    assert_eq!(renewed.token.expose(), "tok-2");
    assert_eq!(clock.now_unix_ms() - T0, 20_000);
    // The silent store is reported once per unsaved rotation.
    clock.sleep(Duration::from_secs(10)).await;
    assert_eq!(session.counters().store_failures, 2);
}

/// `token()` on a cold session waits across retryable failures: the first two fetches fail, the
/// third's token is returned, with no retry loop in the caller.
#[tokio::test(start_paused = true)]
async fn token_waits_across_two_failed_first_fetches_and_returns_the_third() {
    let rig = Rig::new(|c| match c.n {
        1 => Reply::Err(SourceError::network("connection refused")),
        2 => Reply::Err(SourceError::from_http_status(
            503,
            None,
            "token_url",
            "unavailable",
        )),
        n => token(n, 600),
    });
    let t = rig.session.token().await.expect("the third fetch's token");
    assert_eq!(t.token.expose(), "tok-3");
    assert_eq!(rig.source.call_count(), 3);
    assert_eq!(failed_attempts(&rig), 2);
    // Backoff 0.5-1 s, then 1-2 s.
    let waited = rig.clock.now_unix_ms() - T0;
    assert!((1_500..=3_000).contains(&waited), "waited {waited} ms");
    assert_eq!(rig.session.state(), SessionState::Valid);
}

/// A fatal answer ends the wait at once.
#[tokio::test(start_paused = true)]
async fn token_returns_a_fatal_error_at_once() {
    let rig = Rig::new(|c| match c.n {
        1 => Reply::Err(SourceError::network("connection refused")),
        _ => Reply::Err(SourceError::from_http_status(403, None, "", "user_banned")),
    });
    let err = rig.session.token().await.unwrap_err();
    assert!(
        matches!(&err, Error::Forbidden { reason } if reason.contains("user_banned")),
        "{err}"
    );
    assert_eq!(rig.source.call_count(), 2);
    let waited = rig.clock.now_unix_ms() - T0;
    assert!(
        (500..=1_000).contains(&waited),
        "returned {waited} ms after the call"
    );
    // A fatal answer on the first attempt returns without any wait.
    let rig = Rig::new(|_| {
        Reply::Err(SourceError::ReauthRequired {
            message: "invalid_grant".into(),
        })
    });
    let err = rig.session.token().await.unwrap_err();
    assert!(matches!(err, Error::ReauthRequired { .. }), "{err}");
    assert_eq!(rig.clock.now_unix_ms(), T0);
}

/// A permanent outage: `token()` returns `RetryLater` carrying the last failure once the
/// policy's wait limit (`token_wait`, default 30 s) has passed, and the session keeps retrying.
#[tokio::test(start_paused = true)]
async fn token_returns_retry_later_after_the_wait_limit_in_a_permanent_outage() {
    let rig = Rig::new(|_| Reply::Err(SourceError::network("connection refused")));
    let err = rig.session.token().await.unwrap_err();
    assert!(
        matches!(&err, Error::RetryLater { message, retry_after: Some(_) } if message == "connection refused"),
        "{err}"
    );
    assert_eq!(
        rig.clock.now_unix_ms() - T0,
        tokenkeeper::lifecycle::Policy::DEFAULT_TOKEN_WAIT.as_millis() as i64
    );
    let during_wait = rig.source.call_count();
    assert!(
        (5..=8).contains(&during_wait),
        "attempts in 30 s: {during_wait}"
    );
    rig.run_for(MIN).await;
    assert!(rig.source.call_count() > during_wait, "still retrying");

    // A shorter limit, set in the policy.
    let rig = Rig::with(
        ManualClock::new(T0),
        tokenkeeper::lifecycle::Policy {
            token_wait: Duration::from_secs(2),
            ..policy()
        },
        |_| Reply::Err(SourceError::network("connection refused")),
    );
    let err = rig.session.token().await.unwrap_err();
    assert!(matches!(err, Error::RetryLater { .. }), "{err}");
    assert_eq!(rig.clock.now_unix_ms() - T0, 2_000);

    // No wait limit: the outcome of the next completed attempt, as before waiting existed.
    let rig = Rig::with(
        ManualClock::new(T0),
        tokenkeeper::lifecycle::Policy {
            token_wait: Duration::ZERO,
            ..policy()
        },
        |_| {
            Reply::After(
                Duration::from_millis(300),
                Box::new(Reply::Err(SourceError::network("connection refused"))),
            )
        },
    );
    let err = rig.session.token().await.unwrap_err();
    assert!(matches!(err, Error::RetryLater { .. }), "{err}");
    assert_eq!(rig.clock.now_unix_ms() - T0, 300);
    assert_eq!(rig.source.call_count(), 1);
}

/// A caching backend serves a 60 s token with 20 s left to a session that holds no token at
/// all (the first `token()`, or after expiry). Refusing it (it is past its 30 s renewal point)
/// leaves the app with nothing for 20 s, although a token valid for 20 s was offered: with
/// nothing valid in hand, a short-lived token beats none (renew it from its first twentieth).
#[tokio::test(start_paused = true)]
async fn a_stale_cached_token_is_used_when_the_session_holds_no_token() {
    let rig = Rig::new(|c| {
        let cached_until = T0 + 20_000;
        let (n, expires) = if c.at_ms < cached_until {
            (1, cached_until)
        } else {
            (c.n, c.at_ms + 60_000)
        };
        Reply::Ok(
            FetchedToken::new(Token::new(format!("tok-{n}")))
                .with_issued_at_ms(expires - 60_000)
                .with_expires_at_ms(expires),
        )
    });
    let t = rig.session.token().await.expect("the cached token");
    assert_eq!(t.token.expose(), "tok-1");
    assert_eq!(
        rig.clock.now_unix_ms(),
        T0,
        "at once, not after the cache expires"
    );
}

/// A backend that hands out its cached token until shortly before it expires (1 s, its own
/// refresh threshold) and a fresh one after: the refused repeats back off, but the attempt that
/// gets the fresh token must start early enough to land before the held one expires.
#[tokio::test(start_paused = true)]
async fn a_cached_token_replaced_just_before_expiry_arrives_in_time() {
    let latency = Duration::from_millis(300);
    let rig = Rig::new(move |c| {
        let reply = if c.n == 1 || c.at_ms < T0 + 59_000 {
            Reply::Ok(FetchedToken::new(Token::new("cached")).with_expires_at_ms(T0 + 60_000))
        } else {
            Reply::Ok(
                FetchedToken::new(Token::new(format!("tok-{}", c.n)))
                    .with_expires_at_ms(c.at_ms + 60_000),
            )
        };
        Reply::After(latency, Box::new(reply))
    });
    assert_eq!(rig.session.token().await.unwrap().token.expose(), "cached");
    rig.run_for(2 * MIN).await;
    let at: Vec<i64> = rig.source.calls().iter().map(|c| c.at_ms - T0).collect();
    assert_eq!(rig.session.counters().expired_ms, 0, "calls at {at:?}");
    assert_eq!(rig.count(|k| matches!(k, EventKind::Expired { .. })), 0);
    // Still not packed: a handful of refused attempts before the fresh one.
    assert!(at.iter().filter(|t| **t < 60_000).count() <= 12, "{at:?}");
}

/// A backend whose every token is a stale cached one (past its renewal point), answering in
/// 300 ms: the one that outlives the held token is taken in time to replace it (by the held
/// one's last useful start), not only once the held one has expired (a gap of the latency
/// every cycle).
#[tokio::test(start_paused = true)]
async fn stale_cached_tokens_from_a_slow_source_leave_no_gap() {
    let latency = Duration::from_millis(300);
    let rig = Rig::new(move |c| {
        let now = c.at_ms;
        let reply = Reply::Ok(
            FetchedToken::new(Token::new(format!("tok-{}", c.n)))
                .with_issued_at_ms(now - 3_590_000)
                .with_expires_at_ms(now + 10_000),
        );
        Reply::After(latency, Box::new(reply))
    });
    rig.session
        .token()
        .await
        .expect("taken: the session held none");
    rig.run_for(5 * MIN).await;
    let at: Vec<i64> = rig.source.calls().iter().map(|c| c.at_ms - T0).collect();
    assert_eq!(rig.session.counters().expired_ms, 0, "calls at {at:?}");
    assert_eq!(rig.count(|k| matches!(k, EventKind::Expired { .. })), 0);
    for window in 0..30 {
        let start = window * 10_000;
        let n = at
            .iter()
            .filter(|t| (start..start + 10_000).contains(*t))
            .count();
        assert!(n <= 6, "{n} calls from {start}: {at:?}");
    }
}

/// A source refusing with a `Retry-After` past the held token's expiry: the session asks again
/// by the expiry anyway (a refused token), so what it tells the host agrees: `renew_token()`
/// neither refuses for the whole `Retry-After` nor says the next attempt is further off than it is.
#[tokio::test(start_paused = true)]
async fn a_refusal_with_a_long_retry_after_reports_the_real_next_attempt() {
    let rig = Rig::new(|c| {
        if c.n == 1 {
            token(1, 60)
        } else {
            Reply::Err(SourceError::RetryLater {
                kind: tokenkeeper::source::RetryKind::BadToken,
                retry_after: Some(Duration::from_secs(120)),
                message: "cached".into(),
            })
        }
    });
    rig.session.token().await.unwrap();
    rig.run_for(Duration::from_secs(31)).await;
    assert_eq!(rig.source.call_count(), 2, "renewal attempted and refused");
    let (session, clock) = (rig.session.clone(), rig.clock.clone());
    let renew = tokio::spawn(async move {
        let r = session.renew_token().await;
        (clock.now_unix_ms(), r)
    });
    rig.run_for(Duration::from_secs(40)).await;
    let at: Vec<i64> = rig.source.calls().iter().map(|c| c.at_ms - T0).collect();
    let (now, r) = renew.await.unwrap();
    let now = now - T0;
    if let Err(Error::RetryLater {
        retry_after: Some(d),
        ..
    }) = &r
    {
        let next = at.iter().find(|t| **t >= now).copied().unwrap_or(i64::MAX);
        assert!(
            now + d.as_millis() as i64 <= next,
            "told at {now} to wait {d:?}, asked again at {next}: {at:?}"
        );
    }
    assert!(
        at.iter().any(|t| (58_000..=60_000).contains(t)),
        "asked by the expiry: {at:?} {r:?}"
    );
}
