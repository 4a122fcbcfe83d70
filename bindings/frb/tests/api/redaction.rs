//! Secrets crossing the bridge never show in Rust `Debug` output (logs, panics).

use std::collections::HashMap;

use chrono::{TimeZone, Utc};
use tokenkeeper_frb::api::config::SessionSpec;
use tokenkeeper_frb::api::events::IssuedToken;
use tokenkeeper_frb::api::http::HttpSourceConfig;
use tokenkeeper_frb::api::source::{FetchOutcome, FetchReason, FetchRequest, FetchedToken};

#[test]
fn debug_output_shows_a_prefix_and_length_of_tokens_and_only_the_length_of_credentials() {
    let at = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
    let issued = IssuedToken {
        token: "007eJxSECRETSECRET".into(),
        expires_at: at,
        received_at: at,
        reason: FetchReason::Forced,
    };
    let request = FetchRequest {
        reason: FetchReason::Scheduled,
        session: SessionSpec {
            channel: "live-1".into(),
            user: "alice".into(),
            role: None,
            params: HashMap::new(),
        },
        attempt: 2,
        credentials: Some("rt-SECRETSECRET".into()),
        previous_token: Some("007eJxSECRETSECRET".into()),
        timeout: chrono::Duration::seconds(10),
    };
    let outcome = FetchOutcome {
        token: Some(FetchedToken {
            token: "eyJhbGciOiSECRETSECRET".into(),
            expires_at: None,
            expires_in: None,
            issued_at: None,
            server_time: None,
            rotated_credentials: Some("rt-NEWSECRETSECRET".into()),
        }),
        failure: None,
    };
    let shown = format!("{issued:?} {request:?} {outcome:?}");
    assert!(!shown.contains("SECRET"), "{shown}");
    assert!(shown.contains("(len 18)"), "{shown}");
    assert!(shown.contains("<secret, len 15>"), "{shown}");
    assert!(shown.contains("<secret, len 18>"), "{shown}");
    assert!(
        shown.contains("live-1") && shown.contains("attempt: 2"),
        "{shown}"
    );
}

#[test]
fn http_source_config_debug_shows_neither_the_bearer_nor_header_values() {
    let config = HttpSourceConfig {
        endpoint: "https://api.example.com/rtc/token".into(),
        method: "POST".into(),
        bearer: Some("usr-SECRETSECRET".into()),
        headers: HashMap::from([("X-Api-Key".to_owned(), "key-SECRET".to_owned())]),
        json_body: None,
        response_prefix: Some("/data".into()),
        token_pointer: None,
        expires_at_pointer: None,
        expires_in_pointer: None,
    };
    let shown = format!("{config:?}");
    assert!(!shown.contains("SECRET"), "{shown}");
    assert!(shown.contains("<secret, len 16>"), "{shown}");
    assert!(shown.contains("\"X-Api-Key\": <secret, len 10>"), "{shown}");
    assert!(
        shown.contains("https://api.example.com/rtc/token"),
        "{shown}"
    );
}
