//! The replaying status stream (`watchStatus()`) and how streams tell "closed" from "failed".

use tokenkeeper_frb::api::error::ErrorKind;
use tokenkeeper_frb::api::events::{EventKind, SessionState};
use tokenkeeper_frb::api::keeper::Keeper;

use crate::support::{Backend, channel_sink, channel_target, config, next_event_of, next_item};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_stream_starts_with_the_current_status_and_ends_after_closed() {
    let backend = Backend::start().await;
    let source = backend.source(&backend.owner.api_key, "agora", 600);
    let keeper = Keeper::new(None).unwrap();
    let session = keeper
        .open_session_without_sink(
            config(&backend.channel, &backend.owner.id, Some("publisher")),
            source.callback(),
        )
        .unwrap();

    let (target, mut statuses) = channel_target();
    session.watch_status_into(target);
    let first = next_item(&mut statuses).await;
    assert_eq!(first.state, SessionState::Idle, "replays the status now");
    assert_eq!((first.expires_at, first.error.clone()), (None, None));
    assert_eq!(session.status(), first);

    let issued = session.token().await.unwrap();
    let valid = loop {
        let s = next_item(&mut statuses).await;
        if s.state == SessionState::Valid {
            break s;
        }
        assert_eq!(s.state, SessionState::Fetching, "{s:?}");
    };
    assert_eq!(valid.expires_at, Some(issued.expires_at));
    assert_eq!(session.status(), valid);

    // A second subscriber gets the current value at once, not the history.
    let (late, mut late_rx) = channel_target();
    session.watch_status_into(late);
    assert_eq!(next_item(&mut late_rx).await, valid);

    session.close();
    let last = next_item(&mut statuses).await;
    assert_eq!(last.state, SessionState::Closed);
    assert_eq!(last.error, None, "closed is not failed");
    assert!(
        statuses.recv().await.is_none(),
        "the stream ends after closed"
    );
    assert_eq!(next_item(&mut late_rx).await.state, SessionState::Closed);
    assert!(late_rx.recv().await.is_none());
    backend.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_session_carries_its_error_and_keeps_its_streams_open_until_closed() {
    let backend = Backend::start().await;
    let source = backend.source(&backend.owner.api_key, "agora", 600);
    let keeper = Keeper::new(None).unwrap();
    let session = keeper
        .open_session_without_sink(
            config(&backend.channel, &backend.owner.id, Some("publisher")),
            source.callback(),
        )
        .unwrap();
    session.token().await.unwrap();
    let (events_target, mut events) = channel_sink();
    session.events_into(events_target);
    let (status_target, mut statuses) = channel_target();
    session.watch_status_into(status_target);
    assert_eq!(next_item(&mut statuses).await.state, SessionState::Valid);

    backend
        .server
        .admin()
        .set_banned("alice", true)
        .await
        .unwrap();
    let e = session.renew_token().await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Forbidden);

    let forbidden = next_event_of(&mut events, EventKind::Forbidden).await;
    assert!(
        forbidden
            .message
            .unwrap_or_default()
            .contains("user_banned")
    );
    let failed = loop {
        let s = next_item(&mut statuses).await;
        if s.state == SessionState::Failed {
            break s;
        }
    };
    let error = failed.error.expect("a failed status carries its error");
    assert_eq!(error.kind, ErrorKind::Forbidden);
    assert!(error.message.contains("403"), "{}", error.message);
    assert_eq!(failed.expires_at, None, "the withdrawn token is gone");
    assert_eq!(
        session.status().error.map(|e| e.kind),
        Some(ErrorKind::Forbidden)
    );

    // Failed is not the end: both streams are still open (the session can resume) …
    assert!(
        matches!(
            events.try_recv(),
            Err(tokio::sync::mpsc::error::TryRecvError::Empty)
        ),
        "the event stream stays open after a fatal error"
    );
    assert!(matches!(
        statuses.try_recv(),
        Err(tokio::sync::mpsc::error::TryRecvError::Empty)
    ));
    // … until the session is closed.
    session.close();
    assert_eq!(
        next_event_of(&mut events, EventKind::Closed).await.kind,
        EventKind::Closed
    );
    assert!(events.recv().await.is_none());
    assert_eq!(next_item(&mut statuses).await.state, SessionState::Closed);
    assert!(statuses.recv().await.is_none());
    backend.server.shutdown().await;
}
