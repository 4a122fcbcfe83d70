//! Typed errors: what the backend (or the app) said, as the `ErrorKind` Dart switches on.

use flutter_rust_bridge::DartFnFuture;
use tokenkeeper_frb::api::config::{Policy, SessionConfig};
use tokenkeeper_frb::api::error::ErrorKind;
use tokenkeeper_frb::api::events::SessionState;
use tokenkeeper_frb::api::inspect::inspect;
use tokenkeeper_frb::api::keeper::Keeper;
use tokenkeeper_frb::api::source::{FetchOutcome, FetchRequest};
use tokenkeeper_server::FaultsUpdate;
use tokenkeeper_server::admin::{NewStream, NewUser};

use crate::support::{Backend, config};

fn options(channel: &str, user: &str, role: &str) -> SessionConfig {
    config(channel, user, Some(role))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_refusals_map_to_what_the_app_should_do() {
    let backend = Backend::start().await;
    let admin = backend.server.admin();
    let bob = admin
        .create_user(NewUser {
            id: Some("bob".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    admin
        .create_stream(NewStream {
            channel: "live-2".into(),
            owner: "bob".into(),
        })
        .await
        .unwrap();
    let keeper = Keeper::new(None).unwrap();

    // 401: unknown API key → sign in again.
    let source = backend.source("tku_not-a-key", "agora", 600);
    let session = keeper
        .open_session_without_sink(options("live-1", "alice", "publisher"), source.callback())
        .unwrap();
    let e = session.token().await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::ReauthRequired);
    assert!(e.message.contains("401"), "{}", e.message);
    assert_eq!(session.state(), SessionState::Failed);

    // 403: bob may not publish alice's stream → forbidden (stop, tell the user).
    let source = backend.source(&bob.api_key, "agora", 600);
    let session = keeper
        .open_session_without_sink(options("live-1", "bob", "publisher"), source.callback())
        .unwrap();
    let e = session.token().await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Forbidden);
    assert!(e.message.contains("not_owner"), "{}", e.message);

    // 404: the stream ended → forbidden too (access revoked).
    admin.end_stream("live-2").await.unwrap();
    let session = keeper
        .open_session_without_sink(options("live-2", "bob", "publisher"), source.callback())
        .unwrap();
    let e = session.token().await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Forbidden);
    assert!(e.message.contains("stream_ended"), "{}", e.message);

    // 400: a role the backend does not know → misconfigured, naming the setting.
    let source = backend.source(&backend.owner.api_key, "agora", 600);
    let session = keeper
        .open_session_without_sink(options("live-1", "alice", "emperor"), source.callback())
        .unwrap();
    let e = session.token().await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Misconfigured);
    assert_eq!(e.setting.as_deref(), Some("role"));
    assert_eq!(session.state(), SessionState::Failed);
    assert_eq!(
        source.requests.lock().len(),
        1,
        "fatal errors are not retried"
    );
    backend.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_are_retry_later_and_the_session_recovers_when_the_network_is_back() {
    let backend = Backend::start().await;
    let admin = backend.server.admin();
    admin
        .update_faults(FaultsUpdate {
            error_rate: Some(1.0),
            ..Default::default()
        })
        .unwrap();
    let source = backend.source(&backend.owner.api_key, "agora", 600);
    // token() waits across failed attempts up to `tokenWait`: 2 s here instead of 30 s.
    let keeper = Keeper::new(Some(Policy {
        token_wait: Some(chrono::Duration::seconds(2)),
        ..Default::default()
    }))
    .unwrap();
    let session = keeper
        .open_session_without_sink(options("live-1", "alice", "publisher"), source.callback())
        .unwrap();

    let e = session.token().await.unwrap_err();
    assert!(source.requests.lock().len() >= 2, "retried while waiting");
    assert_eq!(e.kind, ErrorKind::RetryLater);
    assert!(e.message.contains("HTTP 50"), "{}", e.message);
    assert_eq!(session.state(), SessionState::Fetching);
    assert!(session.counters().failures >= 1);

    admin
        .update_faults(FaultsUpdate {
            error_rate: Some(0.0),
            ..Default::default()
        })
        .unwrap();
    // Connectivity is back: the pending retry runs now instead of waiting out its backoff, and
    // token() waits for its token.
    keeper.network_available();
    let issued = session
        .token()
        .await
        .expect("a token once the backend recovers");
    assert!(issued.token.starts_with("007"));
    assert!(source.requests.lock().len() >= 2);
    assert!(source.requests.lock().last().unwrap().attempt >= 2);
    backend.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_sessions_and_bad_configuration_fail_with_their_own_kinds() {
    let backend = Backend::start().await;
    let source = backend.source(&backend.owner.api_key, "agora", 600);

    let e = Keeper::new(Some(Policy {
        renew_lead: Some(chrono::Duration::seconds(-5)),
        ..Default::default()
    }))
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Misconfigured);
    assert_eq!(e.setting.as_deref(), Some("renewLead"));

    let keeper = Keeper::new(None).unwrap();
    let e = keeper
        .open_session_without_sink(options("", "alice", "publisher"), source.callback())
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Misconfigured);
    assert_eq!(e.setting.as_deref(), Some("channel"));

    let session = keeper
        .open_session_without_sink(options("live-1", "alice", "publisher"), source.callback())
        .unwrap();
    session.close();
    assert_eq!(session.state(), SessionState::Closed);
    let e = session.token().await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Closed);
    assert!(source.requests.lock().is_empty());

    let e = inspect("007not-base64!!".into()).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidToken);
    assert!(
        !e.message.contains("not-base64"),
        "no token text in messages: {}",
        e.message
    );
    let e = inspect(String::new()).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidToken);
    assert!(e.message.contains("empty"), "{}", e.message);
    backend.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_outcome_or_an_escaped_dart_exception_is_reported_not_panicked() {
    let keeper = Keeper::new(None).unwrap();

    // Neither a token nor a failure: a contract violation of the fetch function → misconfigured.
    let neither = |_r: FetchRequest| -> DartFnFuture<anyhow::Result<FetchOutcome>> {
        Box::pin(async {
            Ok(FetchOutcome {
                token: None,
                failure: None,
            })
        })
    };
    let session = keeper
        .open_session_without_sink(options("live-1", "alice", "publisher"), neither)
        .unwrap();
    let e = session.token().await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Misconfigured);
    assert_eq!(e.setting.as_deref(), Some("FetchOutcome"));

    // An exception escaping the Dart function (the glue hands it over as an error carrying the
    // exception text and its stack trace): retried as a network failure, first line only.
    let throws = |_r: FetchRequest| -> DartFnFuture<anyhow::Result<FetchOutcome>> {
        Box::pin(async {
            Err(anyhow::anyhow!(
                "SocketException: Connection refused\n\n#0 _NativeSocket.connect"
            ))
        })
    };
    let quick = SessionConfig {
        policy: Some(Policy {
            token_wait: Some(chrono::Duration::milliseconds(200)),
            ..Default::default()
        }),
        ..options("live-1", "alice", "publisher")
    };
    let session = keeper.open_session_without_sink(quick, throws).unwrap();
    let e = session.token().await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::RetryLater);
    assert!(
        e.message
            .contains("the Dart token source threw: SocketException: Connection refused"),
        "{}",
        e.message
    );
    assert!(!e.message.contains("_NativeSocket"), "{}", e.message);
    assert_eq!(session.state(), SessionState::Fetching);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fresh_tokens_rejected_twice_stop_the_session_instead_of_looping() {
    let backend = Backend::start().await;
    let source = backend.source(&backend.owner.api_key, "agora", 600);
    let keeper = Keeper::new(None).unwrap();
    let session = keeper
        .open_session_without_sink(options("live-1", "alice", "publisher"), source.callback())
        .unwrap();
    let first = session.token().await.unwrap();

    // The engine refuses the token it just got: dropped and refetched once.
    let second = session.token_rejected(None).await.unwrap();
    assert_ne!(second.token, first.token);
    assert_eq!(
        second.reason,
        tokenkeeper_frb::api::source::FetchReason::Rejected
    );
    // Refused again at once: something is misconfigured on one side; stop, say so.
    let e = session.token_rejected(None).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Rejected);
    assert_eq!(session.state(), SessionState::Failed);
    assert_eq!(session.counters().rejections, 2);
    assert_eq!(source.requests.lock().len(), 2, "no third fetch");

    // renewToken() clears the fatal state (e.g. after the configuration was fixed).
    let third = session.renew_token().await.unwrap();
    assert_eq!(session.state(), SessionState::Valid);
    assert_ne!(third.token, second.token);
    backend.server.shutdown().await;
}
