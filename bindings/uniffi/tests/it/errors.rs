//! Errors thrown by host sources and answered by sessions: what the app is told to do.

use std::sync::Arc;

use futures::executor::block_on;
use tokenkeeper_uniffi::{
    FetchRequest, FetchedToken, Keeper, Policy, SessionState, TokenKeeperError, TokenSource,
    error_for_http_status,
};

use crate::facade::config;

struct Failing(TokenKeeperError);

#[async_trait::async_trait]
impl TokenSource for Failing {
    async fn fetch(&self, _: FetchRequest) -> Result<FetchedToken, TokenKeeperError> {
        Err(self.0.clone())
    }
}

/// `token()` against a source that always throws `thrown`: fatal errors come back at once,
/// retryable ones after the wait limit (200 ms here instead of the default 30 s).
fn first_error(thrown: TokenKeeperError) -> (TokenKeeperError, SessionState) {
    let policy = Policy {
        token_wait: Some(std::time::Duration::from_millis(200)),
        ..Policy::default()
    };
    let keeper = Keeper::new(Some(policy), None).unwrap();
    let session = keeper.open_session(config(), Arc::new(Failing(thrown)), None);
    let err = block_on(session.token()).unwrap_err();
    (err, session.state())
}

#[test]
fn host_reauth_required_stops_the_session_with_reauth_required() {
    let (err, state) = first_error(TokenKeeperError::ReauthRequired {
        reason: "HTTP 401: expired".into(),
    });
    assert_eq!(
        err,
        TokenKeeperError::ReauthRequired {
            reason: "HTTP 401: expired".into()
        }
    );
    assert_eq!(state, SessionState::Failed);
}

#[test]
fn host_forbidden_stops_the_session_with_forbidden() {
    let (err, state) = first_error(TokenKeeperError::Forbidden {
        reason: "banned".into(),
    });
    assert_eq!(
        err,
        TokenKeeperError::Forbidden {
            reason: "banned".into()
        }
    );
    assert_eq!(state, SessionState::Failed);
}

#[test]
fn host_retry_later_is_retried_not_fatal() {
    let (err, state) = first_error(TokenKeeperError::RetryLater {
        reason: "offline".into(),
        retry_after: None,
    });
    match err {
        TokenKeeperError::RetryLater { reason, .. } => {
            assert!(reason.contains("offline"), "{reason}")
        }
        other => panic!("expected RetryLater, got {other:?}"),
    }
    assert_ne!(state, SessionState::Failed);
}

#[test]
fn http_statuses_map_to_actions() {
    assert!(matches!(
        error_for_http_status(401, None, "x".into()),
        TokenKeeperError::ReauthRequired { .. }
    ));
    assert!(matches!(
        error_for_http_status(403, None, "x".into()),
        TokenKeeperError::Forbidden { .. }
    ));
    assert!(matches!(
        error_for_http_status(410, None, "ended".into()),
        TokenKeeperError::Forbidden { .. }
    ));
    assert_eq!(
        error_for_http_status(429, Some(std::time::Duration::from_secs(7)), "slow".into()),
        TokenKeeperError::RetryLater {
            reason: "HTTP 429: slow".into(),
            retry_after: Some(std::time::Duration::from_secs(7))
        }
    );
    assert!(matches!(
        error_for_http_status(400, None, "x".into()),
        TokenKeeperError::Misconfigured { .. }
    ));
}

#[test]
fn garbage_token_is_invalid_token_naming_the_problem() {
    match tokenkeeper_uniffi::inspect("Bearer abc".into()) {
        Err(TokenKeeperError::InvalidToken { reason }) => {
            assert!(reason.contains("Bearer"), "{reason}")
        }
        other => panic!("expected InvalidToken, got {other:?}"),
    }
}
