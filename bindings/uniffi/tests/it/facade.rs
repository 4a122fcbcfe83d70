//! Keeper/Session delegates, the shared runtime and configuration conversions.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use futures::executor::block_on;
use tokenkeeper_uniffi::{
    FetchReason, FetchRequest, FetchedToken, HttpSourceConfig, IssuedToken, Keeper, Policy, Secret,
    SessionConfig, SessionSpec, SessionState, TokenFormat, TokenKeeperError, TokenSource,
    default_policy, inspect,
};

/// A JWT with `exp` 9999999999 and `sub` "1" (signature not checked by inspect).
pub(crate) const JWT: &str =
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIiwiZXhwIjo5OTk5OTk5OTk5fQ.c2lnbmF0dXJlLXNpZ25hdHVyZQ";

/// A host source written in Rust against the foreign trait, counting its calls.
#[derive(Default)]
pub(crate) struct Counting {
    pub(crate) calls: AtomicU32,
}

#[async_trait::async_trait]
impl TokenSource for Counting {
    async fn fetch(&self, request: FetchRequest) -> Result<FetchedToken, TokenKeeperError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        assert_eq!(request.session.channel, "room-1");
        Ok(FetchedToken {
            token: Secret::new(JWT.into()),
            expires_at: None,
            expires_in: Some(std::time::Duration::from_millis(600_000)),
            issued_at: None,
            server_time: None,
            rotated_credentials: None,
        })
    }
}

pub(crate) fn config() -> SessionConfig {
    SessionConfig {
        spec: SessionSpec {
            channel: "room-1".into(),
            user: "u1".into(),
            role: None,
            params: Default::default(),
        },
        credentials_key: None,
        policy: None,
        prefetch: false,
    }
}

#[test]
fn token_completes_when_polled_from_a_thread_without_a_runtime() {
    let keeper = Keeper::new(None, None).unwrap();
    let source = Arc::new(Counting::default());
    let session = keeper.open_session(config(), source.clone(), None);
    let issued = block_on(session.token()).unwrap();
    assert_eq!(issued.token.expose(), JWT);
    assert_eq!(issued.reason, FetchReason::Initial);
    assert_eq!(
        issued
            .expires_at
            .duration_since(issued.received_at)
            .unwrap(),
        std::time::Duration::from_secs(600)
    );
    assert_eq!(session.current(), Some(issued));
    assert_eq!(session.state(), SessionState::Valid);
    assert_eq!(source.calls.load(Ordering::SeqCst), 1);
}

#[test]
fn fifty_concurrent_callers_share_one_fetch() {
    let keeper = Keeper::new(None, None).unwrap();
    let source = Arc::new(Counting::default());
    let session = keeper.open_session(config(), source.clone(), None);
    let threads: Vec<_> = (0..50)
        .map(|_| {
            let s = session.clone();
            std::thread::spawn(move || block_on(s.token()).map(|t| t.token.expose()))
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap().unwrap(), JWT);
    }
    assert_eq!(source.calls.load(Ordering::SeqCst), 1);
}

#[test]
fn closed_session_answers_closed_and_keeper_counts_none() {
    let keeper = Keeper::new(None, None).unwrap();
    let session = keeper.open_session(config(), Arc::new(Counting::default()), None);
    block_on(session.token()).unwrap();
    assert_eq!(keeper.session_count(), 1);
    session.close();
    assert!(matches!(
        block_on(session.token()),
        Err(TokenKeeperError::Closed { .. })
    ));
    assert_eq!(session.current(), None);
    assert_eq!(keeper.session_count(), 0);
}

#[test]
fn policy_defaults_are_the_core_defaults_and_round_trip() {
    let core = tokenkeeper::lifecycle::Policy::default();
    let config = default_policy();
    assert_eq!(config.renew_lead, Some(std::time::Duration::from_secs(30)));
    assert_eq!(
        tokenkeeper::lifecycle::Policy::from(Policy::default()),
        core
    );
    let back = tokenkeeper::lifecycle::Policy::from(config);
    assert_eq!(back, core);
    assert_eq!(back.renew_lead, core.renew_lead);
    assert_eq!(back.min_retry_delay, core.min_retry_delay);
    assert_eq!(back.assumed_lifetime, core.assumed_lifetime);
}

#[test]
fn inspect_reports_format_expiry_and_user() {
    let info = inspect(JWT.into()).unwrap();
    assert_eq!(info.format, TokenFormat::Jwt);
    assert_eq!(
        info.expires_at,
        Some(std::time::UNIX_EPOCH + std::time::Duration::from_secs(9_999_999_999))
    );
    assert_eq!(info.user.as_deref(), Some("1"));
    let details: serde_json::Value = serde_json::from_str(&info.details_json).unwrap();
    assert_eq!(details["claims"]["sub"], "1");
}

#[test]
fn secret_display_and_debug_show_only_the_length() {
    let secret = Secret::new(JWT.into());
    assert_eq!(secret.to_string(), format!("Secret(len={})", JWT.len()));
    assert_eq!(format!("{secret:?}"), format!("Secret(len={})", JWT.len()));
    assert_eq!(format!("{secret:#?}"), format!("Secret(len={})", JWT.len()));
    assert_eq!(secret.expose(), JWT);
    assert_eq!(secret.len(), JWT.len() as u64);
    assert!(!secret.is_empty() && Secret::new(String::new()).is_empty());
    assert_eq!(secret, Secret::new(JWT.into()), "equal when the texts are");
    assert_ne!(secret, Secret::new("other".into()));
}

#[test]
fn debug_output_of_records_hides_tokens_and_credentials() {
    let issued = IssuedToken {
        token: Secret::new(JWT.into()),
        expires_at: std::time::UNIX_EPOCH + std::time::Duration::from_millis(1),
        received_at: std::time::UNIX_EPOCH,
        reason: FetchReason::Forced,
    };
    let fetched = FetchedToken {
        token: Secret::new(JWT.into()),
        expires_at: None,
        expires_in: None,
        issued_at: None,
        server_time: None,
        rotated_credentials: Some(Secret::new("refresh-SECRET".into())),
    };
    let request = FetchRequest {
        reason: FetchReason::Scheduled,
        session: config().spec,
        attempt: 1,
        credentials: Some(Secret::new("refresh-SECRET".into())),
        previous_token: Some(Secret::new(JWT.into())),
        timeout: std::time::Duration::from_secs(10),
    };
    let http = HttpSourceConfig {
        endpoint: "https://api.example.com/token".into(),
        method: "POST".into(),
        bearer: Some(Secret::new("bearer-SECRET".into())),
        headers: [("X-Api-Key".to_owned(), Secret::new("key-SECRET".into()))].into(),
        json_body: None,
        response_prefix: None,
        token_pointer: None,
        expires_at_pointer: None,
        expires_in_pointer: None,
    };
    let all = format!("{issued:?} {fetched:?} {request:?} {http:?} {issued:#?}");
    assert!(!all.contains("c2lnbmF0dXJl"), "{all}");
    assert!(!all.contains("SECRET"), "{all}");
    assert!(all.contains("X-Api-Key"), "{all}");
    assert!(
        all.contains(&format!("token: Secret(len={})", JWT.len())),
        "{all}"
    );
}

#[cfg(feature = "http")]
#[test]
fn http_config_errors_name_the_setting() {
    let keeper = Keeper::new(None, None).unwrap();
    let base = HttpSourceConfig {
        endpoint: "http://127.0.0.1:9/token".into(),
        method: "POST".into(),
        bearer: None,
        headers: Default::default(),
        json_body: None,
        response_prefix: None,
        token_pointer: None,
        expires_at_pointer: None,
        expires_in_pointer: None,
    };
    let bad_body = HttpSourceConfig {
        json_body: Some("{nope".into()),
        ..base.clone()
    };
    match keeper.open_http_session(config(), bad_body, None) {
        Err(TokenKeeperError::Misconfigured { reason }) => {
            assert!(reason.contains("json_body"), "{reason}")
        }
        other => panic!("expected Misconfigured, got {other:?}"),
    }
    let bad_pointer = HttpSourceConfig {
        token_pointer: Some("token".into()),
        ..base
    };
    assert!(matches!(
        keeper.open_http_session(config(), bad_pointer, None),
        Err(TokenKeeperError::Misconfigured { .. })
    ));
}

#[cfg(not(feature = "http"))]
#[test]
fn http_session_without_the_feature_is_misconfigured() {
    let keeper = Keeper::new(None, None).unwrap();
    let http = HttpSourceConfig {
        endpoint: "http://127.0.0.1:9/token".into(),
        method: "POST".into(),
        bearer: None,
        headers: Default::default(),
        json_body: None,
        response_prefix: None,
        token_pointer: None,
        expires_at_pointer: None,
        expires_in_pointer: None,
    };
    assert!(matches!(
        keeper.open_http_session(config(), http, None),
        Err(TokenKeeperError::Misconfigured { .. })
    ));
}
