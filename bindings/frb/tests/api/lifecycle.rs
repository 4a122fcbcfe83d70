//! First token, forced renewal and scheduled renewal through `Keeper`/`Session`.

use tokenkeeper_frb::api::config::{Policy, SessionConfig, default_policy};
use tokenkeeper_frb::api::events::{EventKind, SessionState};
use tokenkeeper_frb::api::inspect::{TokenFormat, inspect};
use tokenkeeper_frb::api::keeper::Keeper;
use tokenkeeper_frb::api::source::FetchReason;

use crate::support::{Backend, channel_sink, config, next_event};

fn options(backend: &Backend) -> SessionConfig {
    config(&backend.channel, &backend.owner.id, Some("publisher"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_token_is_fetched_through_the_dart_source_on_first_use() {
    let backend = Backend::start().await;
    let source = backend.source(&backend.owner.api_key, "agora", 600);
    let keeper = Keeper::new(None).unwrap();
    let session = keeper
        .open_session_without_sink(options(&backend), source.callback())
        .unwrap();

    assert_eq!(session.state(), SessionState::Idle);
    assert!(session.current().is_none());
    assert!(
        source.requests.lock().is_empty(),
        "nothing is fetched before the first token()"
    );

    let issued = session.token().await.unwrap();
    assert_eq!(issued.reason, FetchReason::Initial);
    let info = inspect(issued.token.clone()).unwrap();
    assert_eq!(info.format, TokenFormat::Agora007);
    assert_eq!(info.channel.as_deref(), Some("live-1"));
    assert_eq!(
        info.user.as_deref(),
        Some(backend.owner.uid.to_string().as_str())
    );
    // The token lives 600 s, and the session schedules against the token's own expiry (moved
    // into the device clock by the server-time correction: at most the loopback latency).
    assert_eq!(
        (info.expires_at.unwrap() - info.issued_at.unwrap()).num_seconds(),
        600
    );
    let skew = (issued.expires_at - info.expires_at.unwrap()).num_milliseconds();
    assert!(
        skew.abs() < 1_000,
        "session expiry differs from the token's by {skew} ms"
    );

    let requests = source.requests.lock().clone();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].reason, FetchReason::Initial);
    assert_eq!(requests[0].session, session.spec());
    assert_eq!(requests[0].session.channel, "live-1");
    assert_eq!(requests[0].session.user, "alice");
    assert_eq!(requests[0].session.role.as_deref(), Some("publisher"));
    assert_eq!(requests[0].attempt, 1);
    assert_eq!(requests[0].previous_token, None);

    assert_eq!(session.state(), SessionState::Valid);
    assert_eq!(session.current().as_ref(), Some(&issued));
    assert_eq!(
        (
            session.spec().channel.as_str(),
            session.spec().user.as_str()
        ),
        ("live-1", "alice")
    );
    let counters = session.counters();
    assert_eq!(
        (counters.fetches, counters.renewals, counters.failures),
        (1, 0, 0)
    );
    assert_eq!(keeper.session_count(), 1);

    // A second token() call is served from the cache: no second request to the backend.
    let again = session.token().await.unwrap();
    assert_eq!(again, issued);
    assert_eq!(source.requests.lock().len(), 1);
    backend.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forced_renewal_fetches_a_new_token_and_passes_the_old_one() {
    let backend = Backend::start().await;
    let source = backend.source(&backend.owner.api_key, "agora", 600);
    let keeper = Keeper::new(None).unwrap();
    let session = keeper
        .open_session_without_sink(options(&backend), source.callback())
        .unwrap();
    let first = session.token().await.unwrap();

    let renewed = session.renew_token().await.unwrap();
    assert_eq!(renewed.reason, FetchReason::Forced);
    assert_ne!(
        renewed.token, first.token,
        "a renewal hands out a different token"
    );
    let (old, new) = (
        inspect(first.token.clone()).unwrap(),
        inspect(renewed.token.clone()).unwrap(),
    );
    assert!(
        new.expires_at >= old.expires_at,
        "the new token lives at least as long"
    );
    assert_eq!(session.current().as_ref(), Some(&renewed));

    let requests = source.requests.lock().clone();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1].reason, FetchReason::Forced);
    assert_eq!(
        requests[1].previous_token.as_deref(),
        Some(first.token.as_str())
    );
    let counters = session.counters();
    assert_eq!((counters.fetches, counters.renewals), (2, 1));
    backend.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_token_is_renewed_before_it_expires_without_being_asked() {
    let backend = Backend::start().await;
    // 3 s tokens with a 1 s renewal lead: the session renews about 2 s after issue, by itself.
    let source = backend.source(&backend.owner.api_key, "agora", 3);
    let policy = Policy {
        renew_lead: Some(chrono::Duration::seconds(1)),
        ..Default::default()
    };
    let keeper = Keeper::new(Some(policy)).unwrap();
    let session = keeper
        .open_session_without_sink(options(&backend), source.callback())
        .unwrap();
    let (sink, mut events) = channel_sink();
    session.events_into(sink);

    let first = session.token().await.unwrap();
    let issued_first = next_event(&mut events).await;
    assert_eq!(issued_first.kind, EventKind::Issued);
    assert_eq!(issued_first.reason, Some(FetchReason::Initial));

    let will_expire = next_event(&mut events).await;
    assert_eq!(will_expire.kind, EventKind::WillExpire);
    assert_eq!(will_expire.expires_at, Some(first.expires_at));
    let scheduled = next_event(&mut events).await;
    assert_eq!(scheduled.kind, EventKind::Issued);
    assert_eq!(scheduled.reason, Some(FetchReason::Scheduled));
    assert!(
        scheduled.at < first.expires_at,
        "renewed at {} but the first token expired at {}",
        scheduled.at,
        first.expires_at
    );
    let current = session.current().expect("a valid token after the renewal");
    assert_ne!(current.token, first.token);
    assert_eq!(current.reason, FetchReason::Scheduled);
    assert_eq!(Some(current.expires_at), scheduled.expires_at);
    assert_eq!(source.requests.lock()[1].reason, FetchReason::Scheduled);
    assert_eq!(session.counters().renewals, 1);
    session.close();
    backend.server.shutdown().await;
}

/// Names of this process's threads (Linux).
#[cfg(target_os = "linux")]
fn thread_names() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .map(|n| n.trim().to_owned())
        .collect()
}

#[cfg(target_os = "linux")]
#[test]
fn a_keeper_made_from_a_foreign_thread_runs_on_the_bridge_runtime_not_a_new_one() {
    // Dart `sync` calls arrive on a thread with no tokio runtime; left alone, the core would
    // start a runtime of its own there (on a thread named "tokenkeeper").
    let keeper = std::thread::spawn(|| Keeper::new(None).unwrap())
        .join()
        .unwrap();
    let source = |_r: tokenkeeper_frb::api::source::FetchRequest| -> flutter_rust_bridge::DartFnFuture<
        anyhow::Result<tokenkeeper_frb::api::source::FetchOutcome>,
    > { Box::pin(async { anyhow::bail!("unused") }) };
    let session = keeper
        .open_session_without_sink(config("c", "u", None), source)
        .unwrap();
    assert_eq!(session.state(), SessionState::Idle);
    let names = thread_names();
    assert!(
        !names.iter().any(|n| n == "tokenkeeper"),
        "a second runtime was started: {names:?}"
    );
    keeper.shutdown();
}

#[test]
fn default_policy_shows_the_documented_core_defaults() {
    // The values the field docs of `Policy` (and so the Dart docs) promise.
    let d = default_policy();
    let s = chrono::Duration::seconds;
    assert_eq!(d.renew_lead, Some(s(30)));
    assert_eq!(d.renew_jitter, Some(s(3)));
    assert_eq!(d.fetch_timeout, Some(s(10)));
    assert_eq!(d.backoff_initial, Some(s(1)));
    assert_eq!(d.backoff_max, Some(s(30)));
    assert_eq!(d.min_retry_delay, Some(chrono::Duration::milliseconds(20)));
    assert_eq!(d.max_retry_after, Some(s(3600)));
    assert_eq!(d.adaptive_lead, Some(true));
    assert_eq!(d.fresh_rejection_window, Some(s(10)));
    assert_eq!(d.assumed_lifetime, Some(s(3600)));
    assert_eq!(d.token_wait, Some(s(30)));
    assert_eq!(d.refresh_answer_wait, Some(s(60)));
    assert_eq!(d.not_before_leeway, Some(s(60)));
    assert_eq!(d.max_clock_skew, Some(s(24 * 3600)));
}
