//! The built-in HTTP source (`openHttpSession`) against the reference backend.

use std::collections::HashMap;

use tokenkeeper_frb::api::error::ErrorKind;
use tokenkeeper_frb::api::http::HttpSourceConfig;
use tokenkeeper_frb::api::inspect::{TokenFormat, inspect};
use tokenkeeper_frb::api::keeper::Keeper;
use tokenkeeper_frb::api::source::FetchReason;

use crate::support::{Backend, config};

fn http(backend: &Backend, bearer: &str) -> HttpSourceConfig {
    HttpSourceConfig {
        // The backend's "seed" response shape: {"success":true,"data":{"token":…,"expiresAt":…}}.
        endpoint: format!("{}/api/v1/rtc/token?shape=seed", backend.server.base_url()),
        method: "POST".into(),
        bearer: Some(bearer.to_owned()),
        headers: HashMap::new(),
        json_body: Some(
            r#"{"vendor":"agora","channel":"{channel}","role":"{role}","ttl_secs":600}"#.into(),
        ),
        response_prefix: Some("/data".into()),
        token_pointer: None,
        expires_at_pointer: None,
        expires_in_pointer: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_built_in_http_source_fetches_and_renews_from_the_backend() {
    let backend = Backend::start().await;
    let keeper = Keeper::new(None).unwrap();
    let session = keeper
        .open_http_session_without_sink(
            config(&backend.channel, &backend.owner.id, Some("publisher")),
            http(&backend, &backend.owner.api_key),
        )
        .unwrap();
    let first = session.token().await.unwrap();
    let info = inspect(first.token.clone()).unwrap();
    assert_eq!(info.format, TokenFormat::Agora007);
    assert_eq!(
        info.channel.as_deref(),
        Some("live-1"),
        "{{channel}} was filled in"
    );
    assert_eq!(
        (info.expires_at.unwrap() - info.issued_at.unwrap()).num_seconds(),
        600
    );
    let skew = (first.expires_at - info.expires_at.unwrap()).num_milliseconds();
    assert!(
        skew.abs() < 1_000,
        "expiry read from /data/expiresAt and the token: {skew} ms"
    );
    let renewed = session.renew_token().await.unwrap();
    assert_ne!(renewed.token, first.token);
    assert_eq!(renewed.reason, FetchReason::Forced);
    assert_eq!(session.counters().fetches, 2);
    backend.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_source_settings_and_refusals_map_to_their_error_kinds() {
    let backend = Backend::start().await;
    let keeper = Keeper::new(None).unwrap();
    let spec = || config(&backend.channel, &backend.owner.id, Some("publisher"));

    let e = keeper
        .open_http_session_without_sink(
            spec(),
            HttpSourceConfig {
                json_body: Some("{not json".into()),
                ..http(&backend, "k")
            },
        )
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Misconfigured);
    assert_eq!(e.setting.as_deref(), Some("jsonBody"));
    assert!(e.message.contains("`jsonBody`"), "{}", e.message);

    let e = keeper
        .open_http_session_without_sink(
            spec(),
            HttpSourceConfig {
                method: "GE T".into(),
                ..http(&backend, "k")
            },
        )
        .unwrap_err();
    assert_eq!(e.setting.as_deref(), Some("method"));

    // 401 for an unknown API key: sign in again; the bearer never shows in the message.
    let session = keeper
        .open_http_session_without_sink(spec(), http(&backend, "tku_not-a-real-key"))
        .unwrap();
    let e = session.token().await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::ReauthRequired);
    assert!(!e.message.contains("tku_not-a-real-key"), "{}", e.message);
    backend.server.shutdown().await;
}
