//! The calls an app makes from engine callbacks (`renew_token`, `token_expired`,
//! `token_rejected`) and after a new sign-in (`set_credentials`), in virtual time.

use std::sync::Arc;
use std::time::Duration;

use tokenkeeper::Error;
use tokenkeeper::clock::{Clock, ManualClock};
use tokenkeeper::lifecycle::{EventKind, Keeper, SessionConfig, SessionState};
use tokenkeeper::source::{Credentials, FetchedToken, SessionSpec, SourceError, Token};
use tokenkeeper::store::{CredentialStore, MemoryStore};

use crate::lifecycle_support::{Call, Reply, Rig, Scripted, T0, policy, token};

const MIN: Duration = Duration::from_secs(60);

fn busy() -> Reply {
    Reply::Err(SourceError::from_http_status(503, None, "url", "busy"))
}

/// #9: Agora's pattern `engine.renewToken(await session.renewToken())` survives one 503.
#[tokio::test(start_paused = true)]
async fn renew_token_waits_across_a_failed_attempt_and_returns_the_next_token() {
    let rig = Rig::new(|c| if c.n == 2 { busy() } else { token(c.n, 600) });
    rig.session.token().await.unwrap();
    let renewed = rig.session.renew_token().await.expect("the retry's token");
    assert_eq!(renewed.token.expose(), "tok-3");
    assert!(
        rig.clock.now_unix_ms() - T0 < 2_000,
        "after one short backoff"
    );
}

/// #9: the same for `token_expired()` during a Wi-Fi→LTE switch.
#[tokio::test(start_paused = true)]
async fn token_expired_waits_across_a_network_blip_and_returns_a_fresh_token() {
    let rig = Rig::new(|c| {
        if c.n == 2 {
            Reply::Err(SourceError::network("connection reset"))
        } else {
            token(c.n, 600)
        }
    });
    let first = rig.session.token().await.unwrap();
    let fresh = rig
        .session
        .token_expired(Some(first.token.expose()))
        .await
        .expect("the retry's token");
    assert_eq!(fresh.token.expose(), "tok-3");
}

/// #9: and it never hangs: a permanent outage returns after the wait limit.
#[tokio::test(start_paused = true)]
async fn renew_token_in_an_outage_returns_retry_later_after_the_wait_limit() {
    let rig = Rig::new(|c| if c.n == 1 { token(1, 3600) } else { busy() });
    rig.session.token().await.unwrap();
    let err = rig.session.renew_token().await.unwrap_err();
    assert!(matches!(err, Error::RetryLater { .. }), "{err}");
    assert_eq!(rig.clock.now_unix_ms() - T0, 30_000);
    assert!(
        rig.session.current().is_some(),
        "the old token is still valid"
    );
}

/// #10: two fresh-token rejections an hour of healthy renewals apart are not "in a row".
#[tokio::test(start_paused = true)]
async fn rejections_separated_by_healthy_renewals_never_stop_the_session() {
    let rig = Rig::new(|c| token(c.n, 60));
    let first = rig.session.token().await.unwrap();
    rig.session
        .token_rejected(Some(first.token.expose()))
        .await
        .expect("refetched once");
    rig.run_for(Duration::from_secs(3600)).await;
    assert!(rig.session.counters().renewals > 100);
    let current = rig.session.current().unwrap();
    let fresh = rig
        .session
        .token_rejected(Some(current.token.expose()))
        .await
        .expect("a second, unrelated rejection is refetched too");
    assert_ne!(fresh.token, current.token);
    assert_eq!(rig.session.state(), SessionState::Valid);
}

/// #10: a late callback about the previous token does not throw away the new one.
#[tokio::test(start_paused = true)]
async fn a_report_about_the_previous_token_changes_nothing() {
    let rig = Rig::new(|c| token(c.n, 60));
    let old = rig.session.token().await.unwrap();
    rig.run_for(Duration::from_secs(31)).await;
    let new = rig.session.current().unwrap();
    assert_ne!(new.token, old.token, "renewed at half-life");
    let calls = rig.source.call_count();
    let after_rejected = rig.session.token_rejected(Some(old.token.expose())).await;
    let after_expired = rig.session.token_expired(Some(old.token.expose())).await;
    assert_eq!(after_rejected.unwrap().token, new.token);
    assert_eq!(after_expired.unwrap().token, new.token);
    assert_eq!(rig.source.call_count(), calls, "no fetch");
    assert_eq!(rig.count(|k| matches!(k, EventKind::Rejected { .. })), 0);
    assert_eq!(rig.count(|k| matches!(k, EventKind::Expired { .. })), 0);
}

/// #11: an engine that calls `token_expired()` on every fresh token.
#[tokio::test(start_paused = true)]
async fn an_engine_reporting_every_fresh_token_expired_stops_the_session_instead_of_looping() {
    let rig = Rig::new(|c| token(c.n, 3600));
    rig.session.token().await.unwrap();
    let session = rig.session.clone();
    let engine = tokio::spawn(async move {
        let mut reports = 0;
        loop {
            reports += 1;
            if let Err(e) = session.token_expired(None).await {
                return (reports, e);
            }
        }
    });
    rig.run_for(MIN).await;
    let (reports, error) = engine.await.unwrap();
    assert_eq!(reports, 2);
    assert!(
        matches!(&error, Error::Rejected { message } if message.contains("reported expired")),
        "{error}"
    );
    assert_eq!(rig.source.call_count(), 2, "one refetch, then stop");
    assert_eq!(rig.session.state(), SessionState::Failed);
}

/// A backend that accepts one refresh token at a time and rotates it.
fn refresh_backend(c: &Call) -> Reply {
    match c.credentials.as_deref() {
        Some("rt-new") | Some("rt-new-2") => Reply::Ok(
            FetchedToken::new(Token::new(format!("tok-{}", c.n)))
                .with_expires_in(Duration::from_secs(600))
                .with_rotated(Credentials::new("rt-new-2")),
        ),
        _ => Reply::Err(SourceError::ReauthRequired {
            message: "invalid_grant: revoked".into(),
        }),
    }
}

async fn reauth_rig(
    clock: &ManualClock,
    store: Arc<MemoryStore>,
) -> (Keeper, Arc<Scripted>, tokenkeeper::lifecycle::Session) {
    store
        .save("oauth:1001", &Credentials::new("rt-old"))
        .await
        .unwrap();
    let keeper = Keeper::builder()
        .clock(Arc::new(clock.clone()))
        .policy(policy())
        .store(store)
        .build()
        .unwrap();
    let source = Scripted::new(clock, refresh_backend);
    let session = keeper.open_session(
        SessionConfig::new(SessionSpec::new("live-42", "1001")).with_credentials_key("oauth:1001"),
        source.clone(),
    );
    (keeper, source, session)
}

/// #12: after a new sign-in the app hands over the new refresh token.
#[tokio::test(start_paused = true)]
async fn set_credentials_resumes_a_session_stopped_for_reauthentication() {
    let clock = ManualClock::new(T0);
    let store = Arc::new(MemoryStore::new());
    let (_keeper, source, session) = reauth_rig(&clock, store.clone()).await;
    let err = session.token().await.unwrap_err();
    assert!(matches!(err, Error::ReauthRequired { .. }), "{err}");
    session.set_credentials(Credentials::new("rt-new"));
    clock.sleep(Duration::from_millis(10)).await;
    let t = session.current().expect("resumed by itself");
    assert_eq!(t.token.expose(), "tok-2");
    let sent: Vec<_> = source.calls().into_iter().map(|c| c.credentials).collect();
    assert_eq!(sent, [Some("rt-old".into()), Some("rt-new".into())]);
    assert_eq!(
        store.load("oauth:1001").await.unwrap().unwrap().expose(),
        "rt-new-2"
    );
}

/// Credentials the app sets at sign-in, before it opens any session, reach the first fetch of
/// the session that names their key, with or without a credential store.
#[tokio::test(start_paused = true)]
async fn credentials_set_before_any_session_reach_its_first_fetch() {
    for store in [
        None,
        Some(Arc::new(MemoryStore::new()) as Arc<dyn CredentialStore>),
    ] {
        let clock = ManualClock::new(T0);
        let mut builder = Keeper::builder()
            .clock(Arc::new(clock.clone()))
            .policy(policy());
        if let Some(store) = store {
            builder = builder.store(store);
        }
        let keeper = builder.build().unwrap();
        keeper.set_credentials("oauth:1001", Credentials::new("rt-signed-in"));
        clock.sleep(Duration::from_secs(1)).await; // the sign-in screen closes; the save is done
        let source = Scripted::new(&clock, |c| token(c.n, 600));
        let session = keeper.open_session(
            SessionConfig::new(SessionSpec::new("live-42", "1001"))
                .with_credentials_key("oauth:1001"),
            source.clone(),
        );
        session.token().await.unwrap();
        let sent: Vec<_> = source.calls().into_iter().map(|c| c.credentials).collect();
        assert_eq!(sent, [Some("rt-signed-in".into())]);
    }
}

/// #12: or saves it in its keychain itself and calls `renew_token()`.
#[tokio::test(start_paused = true)]
async fn renew_token_after_a_sign_in_reads_the_credentials_the_host_stored() {
    let clock = ManualClock::new(T0);
    let store = Arc::new(MemoryStore::new());
    let (_keeper, source, session) = reauth_rig(&clock, store.clone()).await;
    session.token().await.unwrap_err();
    store
        .save("oauth:1001", &Credentials::new("rt-new"))
        .await
        .unwrap();
    let t = session
        .renew_token()
        .await
        .expect("the stored credentials work");
    assert_eq!(t.token.expose(), "tok-2");
    assert_eq!(
        source.calls().last().unwrap().credentials.as_deref(),
        Some("rt-new")
    );
}

/// A refresh with the old refresh token is still in flight when the user signs in again: its
/// late `invalid_grant` is about the credentials the host just replaced, so it must not stop
/// the session, and the next attempt uses the new credentials.
#[tokio::test(start_paused = true)]
async fn a_refusal_of_credentials_replaced_during_the_refresh_does_not_stop_the_session() {
    let clock = ManualClock::new(T0);
    let store = Arc::new(MemoryStore::new());
    store
        .save("oauth:1001", &Credentials::new("rt-old"))
        .await
        .unwrap();
    let keeper = Keeper::builder()
        .clock(Arc::new(clock.clone()))
        .policy(policy())
        .store(store)
        .build()
        .unwrap();
    let source = Scripted::new(&clock, |c| match c.credentials.as_deref() {
        // The old family was revoked; the server is slow to say so.
        Some("rt-old") => Reply::After(Duration::from_secs(3), Box::new(refresh_backend(c))),
        _ => refresh_backend(c),
    });
    let session = keeper.open_session(
        SessionConfig::new(SessionSpec::new("live-42", "1001")).with_credentials_key("oauth:1001"),
        source.clone(),
    );
    let waiter = session.clone();
    let first = tokio::spawn(async move { waiter.token().await });
    clock.sleep(Duration::from_secs(1)).await;
    session.set_credentials(Credentials::new("rt-new"));
    let t = first
        .await
        .unwrap()
        .expect("the new credentials are used, not the old refusal");
    assert_eq!(t.token.expose(), "tok-2");
    assert_ne!(session.state(), SessionState::Failed);
    let sent: Vec<_> = source.calls().into_iter().map(|c| c.credentials).collect();
    assert_eq!(sent, [Some("rt-old".into()), Some("rt-new".into())]);
}

/// A refresh with the old refresh token answers with a rotation after the user signed in again
/// (another account, say): the host's credentials win; the late rotation does not replace them.
#[tokio::test(start_paused = true)]
async fn a_rotation_of_credentials_replaced_during_the_refresh_does_not_overwrite_them() {
    let clock = ManualClock::new(T0);
    let store = Arc::new(MemoryStore::new());
    store
        .save("oauth:1001", &Credentials::new("rt-a"))
        .await
        .unwrap();
    let keeper = Keeper::builder()
        .clock(Arc::new(clock.clone()))
        .policy(policy())
        .store(store.clone())
        .build()
        .unwrap();
    let source = Scripted::new(&clock, |c| {
        let (rotated, after) = match c.credentials.as_deref() {
            Some("rt-a") => ("rt-a-2", Duration::from_secs(3)),
            Some("rt-b") => ("rt-b-2", Duration::ZERO),
            Some("rt-b-2") => ("rt-b-3", Duration::ZERO),
            _ => {
                return Reply::Err(SourceError::ReauthRequired {
                    message: "invalid_grant: not this user's".into(),
                });
            }
        };
        Reply::After(
            after,
            Box::new(Reply::Ok(
                FetchedToken::new(Token::new(format!("tok-{}", c.n)))
                    .with_expires_in(Duration::from_secs(600))
                    .with_rotated(Credentials::new(rotated)),
            )),
        )
    });
    let session = keeper.open_session(
        SessionConfig::new(SessionSpec::new("live-42", "1001")).with_credentials_key("oauth:1001"),
        source.clone(),
    );
    let waiter = session.clone();
    let first = tokio::spawn(async move { waiter.token().await });
    clock.sleep(Duration::from_secs(1)).await;
    session.set_credentials(Credentials::new("rt-b"));
    first.await.unwrap().unwrap();
    clock.sleep(Duration::from_secs(1)).await;
    session.renew_token().await.unwrap();
    let sent: Vec<_> = source.calls().into_iter().map(|c| c.credentials).collect();
    assert_eq!(sent.last().unwrap().as_deref(), Some("rt-b"), "{sent:?}");
    assert_eq!(
        store.load("oauth:1001").await.unwrap().unwrap().expose(),
        "rt-b-2"
    );
}
