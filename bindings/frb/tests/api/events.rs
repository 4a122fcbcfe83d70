//! Events as the Dart `Stream` receives them (through the `StreamTarget` seam of `events()`).

use tokenkeeper_frb::api::error::ErrorKind;
use tokenkeeper_frb::api::events::{EventKind, SessionState};
use tokenkeeper_frb::api::keeper::Keeper;
use tokenkeeper_frb::api::source::FetchReason;

use crate::support::{Backend, channel_sink, config, next_event};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_events_carry_reason_expiry_and_renewal_time_in_order() {
    let backend = Backend::start().await;
    let source = backend.source(&backend.owner.api_key, "agora", 600);
    let keeper = Keeper::new(None).unwrap();
    let session = keeper
        .open_session_without_sink(
            config("live-1", "alice", Some("publisher")),
            source.callback(),
        )
        .unwrap();
    let (sink, mut events) = channel_sink();
    session.events_into(sink);

    let first = session.token().await.unwrap();
    let e = next_event(&mut events).await;
    assert_eq!(e.kind, EventKind::Issued);
    assert_eq!(e.session_id, session.id());
    assert_eq!(e.session, session.spec());
    assert_eq!(
        (e.session.channel.as_str(), e.session.user.as_str()),
        ("live-1", "alice")
    );
    assert_eq!(e.reason, Some(FetchReason::Initial));
    assert_eq!(e.expires_at, Some(first.expires_at));
    let renew_at = e.renew_at.expect("issued events say when renewal starts");
    let lead = first.expires_at - renew_at;
    // Default lead 30 s, up to 3 s of jitter earlier (adaptive lead may add a little more).
    assert!(
        lead.num_milliseconds() >= 30_000 && lead.num_milliseconds() <= 60_000,
        "lead {lead}"
    );
    assert!(e.fetch_latency.is_some());
    assert_eq!((e.error, e.message), (None, None));

    let renewed = session.renew_token().await.unwrap();
    let e = next_event(&mut events).await;
    assert_eq!(e.kind, EventKind::Issued);
    assert_eq!(e.reason, Some(FetchReason::Forced));
    assert_eq!(e.expires_at, Some(renewed.expires_at));

    session.close();
    let e = next_event(&mut events).await;
    assert_eq!(e.kind, EventKind::Closed);
    assert!(
        events.recv().await.is_none(),
        "the stream ends after the session closed"
    );
    backend.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ban_reaches_the_keeper_stream_as_forbidden_with_the_backend_reason() {
    let backend = Backend::start().await;
    let source = backend.source(&backend.owner.api_key, "agora", 600);
    let keeper = Keeper::new(None).unwrap();
    let (sink, mut events) = channel_sink();
    keeper.events_into(sink);
    let session = keeper
        .open_session_without_sink(config("live-1", "alice", None), source.callback())
        .unwrap();
    let first = session.token().await.unwrap();
    assert_eq!(next_event(&mut events).await.kind, EventKind::Issued);

    backend
        .server
        .admin()
        .set_banned("alice", true)
        .await
        .unwrap();
    let error = session.renew_token().await.unwrap_err();
    assert_eq!(error.kind, ErrorKind::Forbidden);

    // Access is gone: the held token is withdrawn at once (reported as expired now, long before
    // its own expiry), then the session stops.
    let e = next_event(&mut events).await;
    assert_eq!(e.kind, EventKind::Expired);
    assert!(e.expires_at.unwrap() < first.expires_at);
    let e = next_event(&mut events).await;
    assert_eq!(e.kind, EventKind::Forbidden);
    assert_eq!(e.session_id, session.id());
    let message = e
        .message
        .expect("forbidden events carry the backend's reason");
    assert!(
        message.contains("403") && message.contains("user_banned"),
        "{message}"
    );
    assert_eq!(session.current(), None);
    assert_eq!(session.state(), SessionState::Failed);
    keeper.shutdown();
    backend.server.shutdown().await;
}
