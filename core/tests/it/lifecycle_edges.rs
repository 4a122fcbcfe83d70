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
    let err = rig.session.token().await.unwrap_err();
    assert!(
        matches!(&err, Error::RetryLater { message, .. } if message.contains("already-expired")),
        "{err}"
    );
    rig.run_for(10 * MIN).await;
    let calls = rig.source.call_count();
    // Backoff 1 s doubling to 30 s with equal jitter (0.5–1 s, 1–2 s, … then 15–30 s):
    // ~31 attempts in 10 minutes, never hundreds, never zero.
    assert!((26..=36).contains(&calls), "calls in 10 min: {calls}");
    assert_eq!(failed_attempts(&rig), calls);
    assert!(rig.session.current().is_none());
    assert_eq!(rig.session.state(), SessionState::Fetching);
}

#[tokio::test(start_paused = true)]
async fn source_returning_a_token_shorter_than_the_lead_is_refused() {
    let rig = Rig::new(|c| token(c.n, 10));
    let err = rig.session.token().await.unwrap_err();
    assert!(
        matches!(&err, Error::RetryLater { message, .. } if message.contains("renew_lead")),
        "{err}"
    );
    rig.run_for(5 * MIN).await;
    assert!(
        (15..=22).contains(&rig.source.call_count()),
        "{}",
        rig.source.call_count()
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
    // ~12 paced attempts before the token expires, then backoff to the 30 s cap.
    assert!((30..=45).contains(&calls), "calls in 10 min: {calls}");
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
    let second = rig.session.token_rejected().await.expect("one refetch");
    assert_eq!(second.token.expose(), "tok-2");
    assert_eq!(rig.source.calls()[1].reason, FetchReason::Rejected);
    let err = rig.session.token_rejected().await.unwrap_err();
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
            rig.session.token_rejected().await.unwrap().token.expose(),
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
    assert!(matches!(&err, Error::Revoked { reason } if reason.contains("stream ended")));
    assert!(rig.session.current().is_none());
    rig.run_for(60 * MIN).await;
    assert_eq!(rig.source.call_count(), 2);
    assert_eq!(rig.count(|k| matches!(k, EventKind::Revoked { .. })), 1);
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_honoured_even_when_the_network_comes_back() {
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
    let err = rig.session.token().await.unwrap_err();
    assert_eq!(
        err,
        Error::RetryLater {
            retry_after: Some(Duration::from_secs(120)),
            message: "HTTP 429: slow down".into()
        }
    );
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
    rig.run_for(Duration::from_secs(60)).await;
    assert_eq!(
        rig.source.call_count(),
        1,
        "network_available must not cut below Retry-After"
    );
    let early = rig.session.renew_token().await.unwrap_err();
    assert!(
        matches!(early, Error::RetryLater { retry_after: Some(d), .. } if d == Duration::from_secs(60))
    );
    rig.run_for(Duration::from_secs(61)).await;
    let calls = rig.source.calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[1].at_ms - calls[0].at_ms, 120_000);
    assert!(rig.session.current().is_some());
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
    let _ = rig.session.token().await;
    rig.run_for(Duration::from_secs(20)).await; // attempts 1..=5 with growing backoff
    assert_eq!(rig.source.call_count(), 5);
    rig.keeper.network_available();
    rig.run_for(Duration::from_millis(1)).await;
    assert_eq!(rig.source.call_count(), 6);
    assert!(rig.session.current().is_some());
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
    let err = rig.session.token().await.unwrap_err();
    assert!(matches!(&err, Error::RetryLater { message, .. } if message.contains("fetch_timeout")));
    assert_eq!(rig.clock.now_unix_ms() - T0, 10_000);
    assert_eq!(rig.source.cancelled.load(Ordering::SeqCst), 1);
    rig.run_for(Duration::from_secs(2)).await;
    assert_eq!(rig.session.token().await.unwrap().token.expose(), "tok-2");
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
async fn failed_credential_save_is_an_error_and_the_token_is_not_handed_out() {
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
    let err = session.token().await.unwrap_err();
    assert!(
        matches!(&err, Error::StoreFailed { message } if message.contains("keychain locked")),
        "{err}"
    );
    assert!(!err.to_string().contains("rt-2"));
    assert!(session.current().is_none());
    clock.sleep(Duration::from_secs(1)).await; // first retry after 0.5–1 s
    // The retry carries the rotated credentials kept in memory, not the stale stored ones.
    let calls = source.calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[1].credentials.as_deref(), Some("rt-2"));
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
    assert_eq!(
        *seen.lock(),
        [
            Some("tok-1".to_owned()),
            Some("tok-2".to_owned()),
            Some("tok-3".to_owned())
        ]
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
            tokio::spawn(async move { s.token_rejected().await })
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
async fn a_credential_store_that_never_answers_is_a_failed_save_after_the_timeout() {
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
    let err = session.token().await.unwrap_err();
    assert!(
        matches!(&err, Error::StoreFailed { message } if message.contains("fetch_timeout")),
        "{err}"
    );
    assert_eq!(clock.now_unix_ms() - T0, 10_000);
    assert!(session.current().is_none());
}
