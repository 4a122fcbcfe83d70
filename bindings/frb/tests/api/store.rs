//! The Dart credential store: refresh tokens rotate through the app's secure storage.

use std::collections::HashMap;
use std::sync::Arc;

use flutter_rust_bridge::DartFnFuture;
use parking_lot::Mutex;
use serde_json::Value;
use tokenkeeper_frb::api::config::SessionConfig;
use tokenkeeper_frb::api::error::ErrorKind;
use tokenkeeper_frb::api::events::{EventKind, SessionState};
use tokenkeeper_frb::api::inspect::{TokenFormat, inspect};
use tokenkeeper_frb::api::keeper::Keeper;
use tokenkeeper_frb::api::source::{FetchFailureKind, FetchOutcome, FetchRequest, FetchedToken};
use tokenkeeper_server::admin::{NewClient, NewCode, RevokeFilter};

use crate::support::{
    Backend, channel_sink, channel_target, config, failure, next_event, next_item,
};

/// An OAuth refresh-token source, as an app would write it with its HTTP client.
fn oauth_source(
    token_url: String,
    requests: Arc<Mutex<Vec<FetchRequest>>>,
) -> impl Fn(FetchRequest) -> DartFnFuture<anyhow::Result<FetchOutcome>> + Send + Sync + 'static {
    let client = reqwest::Client::new();
    move |request: FetchRequest| {
        let (client, url, requests) = (client.clone(), token_url.clone(), requests.clone());
        Box::pin(async move {
            requests.lock().push(request.clone());
            let Some(refresh) = request.credentials else {
                return Ok(failure(
                    FetchFailureKind::ReauthRequired,
                    None,
                    None,
                    "no refresh token".into(),
                ));
            };
            let response = client
                .post(&url)
                .form(&[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &refresh),
                    ("client_id", "qa-app"),
                ])
                .send()
                .await?;
            let status = response.status().as_u16();
            let json: Value = response.json().await?;
            if status != 200 {
                let kind = match json["error"].as_str() {
                    Some("invalid_grant") => FetchFailureKind::ReauthRequired,
                    _ => FetchFailureKind::HttpStatus,
                };
                return Ok(failure(
                    kind,
                    Some(status),
                    None,
                    format!("oauth {}", json["error"]),
                ));
            }
            Ok(FetchOutcome {
                token: Some(FetchedToken {
                    token: json["access_token"].as_str().unwrap_or_default().to_owned(),
                    expires_at: None,
                    expires_in: json["expires_in"].as_i64().map(chrono::Duration::seconds),
                    issued_at: None,
                    server_time: None,
                    rotated_credentials: json["refresh_token"].as_str().map(str::to_owned),
                }),
                failure: None,
            })
        })
    }
}

type Saved = Arc<Mutex<HashMap<String, String>>>;

fn keeper_with_store(saved: &Saved, log: &Arc<Mutex<Vec<String>>>) -> Keeper {
    let (s1, s2, s3) = (saved.clone(), saved.clone(), saved.clone());
    let (l1, l2) = (log.clone(), log.clone());
    Keeper::with_credential_store(
        None,
        move |key: String| -> DartFnFuture<anyhow::Result<Option<String>>> {
            let v = s1.lock().get(&key).cloned();
            l1.lock().push(format!("load {key}"));
            Box::pin(async move { Ok(v) })
        },
        move |key: String, value: String| -> DartFnFuture<anyhow::Result<()>> {
            l2.lock().push(format!("save {key}"));
            s2.lock().insert(key, value);
            Box::pin(async { Ok(()) })
        },
        move |key: String| -> DartFnFuture<anyhow::Result<()>> {
            s3.lock().remove(&key);
            Box::pin(async { Ok(()) })
        },
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_refresh_tokens_are_saved_and_a_new_sign_in_resumes_the_session() {
    let backend = Backend::start().await;
    let admin = backend.server.admin();
    admin
        .create_oauth_client(NewClient {
            client_id: "qa-app".into(),
            client_secret: None,
            public: true,
        })
        .await
        .unwrap();
    let token_url = format!("{}/oauth/token", backend.server.base_url());
    let rt0 = sign_in(&backend).await;

    let saved: Saved = Arc::new(Mutex::new(HashMap::from([(
        "oauth:alice".to_owned(),
        rt0.clone(),
    )])));
    let log = Arc::new(Mutex::new(Vec::new()));
    let keeper = keeper_with_store(&saved, &log);
    let requests = Arc::new(Mutex::new(Vec::new()));
    let options = SessionConfig {
        credentials_key: Some("oauth:alice".into()),
        ..config("api", "alice", None)
    };
    let session = keeper
        .open_session_without_sink(options, oauth_source(token_url, requests.clone()))
        .unwrap();

    let first = session.token().await.unwrap();
    assert_eq!(
        inspect(first.token.clone()).unwrap().format,
        TokenFormat::Jwt
    );
    let rt1 = saved.lock()["oauth:alice"].clone();
    assert_ne!(
        rt1, rt0,
        "the rotated refresh token replaced the signed-in one in the store"
    );
    assert_eq!(
        requests.lock()[0].credentials.as_deref(),
        Some(rt0.as_str())
    );

    let second = session.renew_token().await.unwrap();
    assert_ne!(second.token, first.token);
    let rt2 = saved.lock()["oauth:alice"].clone();
    assert_ne!(rt2, rt1);
    assert_eq!(
        requests.lock()[1].credentials.as_deref(),
        Some(rt1.as_str())
    );
    // The store is read before each refresh (another process, or the app after a sign-in, may
    // have put newer credentials there) and written after each rotation.
    assert_eq!(
        *log.lock(),
        [
            "load oauth:alice",
            "save oauth:alice",
            "load oauth:alice",
            "save oauth:alice"
        ]
    );

    // Revoked refresh tokens: the backend answers invalid_grant → the user must sign in again.
    admin
        .revoke_refresh_tokens(RevokeFilter {
            user_id: Some("alice".into()),
            client_id: None,
        })
        .await
        .unwrap();
    let e = session.renew_token().await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::ReauthRequired);
    assert!(
        !e.message.contains(&rt2),
        "no refresh token in error messages"
    );
    assert_eq!(session.state(), SessionState::Failed);

    // The user signs in again; the app hands the new refresh token to the keeper: saved to the
    // store and used by the next fetch, and the stopped session resumes by itself.
    let rt3 = sign_in(&backend).await;
    keeper.set_credentials("oauth:alice".into(), rt3.clone());
    let (target, mut statuses) = channel_target();
    session.watch_status_into(target);
    loop {
        let s = next_item(&mut statuses).await;
        if s.state == SessionState::Valid {
            break;
        }
    }
    let resumed = session.current().expect("a token after the new sign-in");
    assert_ne!(resumed.token, second.token);
    assert_eq!(
        requests.lock().last().unwrap().credentials.as_deref(),
        Some(rt3.as_str()),
        "the next fetch used the new refresh token"
    );
    assert_ne!(
        saved.lock()["oauth:alice"],
        rt2,
        "the store holds the new sign-in's (rotated) refresh token"
    );
    backend.server.shutdown().await;
}

/// Signs `alice` in to the backend's OAuth client `qa-app` (authorization code with PKCE) and
/// returns her refresh token.
async fn sign_in(backend: &Backend) -> String {
    let code = backend
        .server
        .admin()
        .issue_authorization_code(NewCode {
            client_id: "qa-app".into(),
            user_id: "alice".into(),
            scope: None,
            // RFC 7636 appendix B: public clients must use PKCE (RFC 9700 §2.1.1)
            code_challenge: Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into()),
        })
        .await
        .unwrap();
    let signed_in: Value = reqwest::Client::new()
        .post(format!("{}/oauth/token", backend.server.base_url()))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            (
                "code_verifier",
                "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
            ),
            ("client_id", "qa-app"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    signed_in["refresh_token"]
        .as_str()
        .expect("sign-in returns a refresh token")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_cannot_save_withholds_no_token_and_says_why() {
    let backend = Backend::start().await;
    let keeper = Keeper::with_credential_store(
        None,
        |_key: String| -> DartFnFuture<anyhow::Result<Option<String>>> {
            Box::pin(async { Ok(Some("rt-old".to_owned())) })
        },
        |_key: String, _value: String| -> DartFnFuture<anyhow::Result<()>> {
            Box::pin(async {
                Err(anyhow::anyhow!(
                    "PlatformException(keychain locked)\n#0 stack frame line"
                ))
            })
        },
        |_key: String| -> DartFnFuture<anyhow::Result<()>> { Box::pin(async { Ok(()) }) },
    )
    .unwrap();
    let source = move |_r: FetchRequest| -> DartFnFuture<anyhow::Result<FetchOutcome>> {
        Box::pin(async move {
            Ok(FetchOutcome {
                token: Some(FetchedToken {
                    token: "opaque-access-token".into(),
                    expires_at: None,
                    expires_in: Some(chrono::Duration::seconds(600)),
                    issued_at: None,
                    server_time: None,
                    rotated_credentials: Some("rt-new-secret".into()),
                }),
                failure: None,
            })
        })
    };
    let options = SessionConfig {
        credentials_key: Some("oauth:alice".into()),
        ..config("api", "alice", None)
    };
    let session = keeper.open_session_without_sink(options, source).unwrap();
    let (sink, mut events) = channel_sink();
    session.events_into(sink);
    // The server already rotated: withholding its token would protect nothing.
    let issued = session.token().await.expect("handed out");
    assert_eq!(issued.token, "opaque-access-token");
    let failed = loop {
        let e = next_event(&mut events).await;
        if e.kind == EventKind::StoreFailed {
            break e;
        }
    };
    let message = failed.message.unwrap_or_default();
    assert!(message.contains("keychain locked"), "{message}");
    assert!(
        !message.contains("stack frame"),
        "only the first line of a Dart exception: {message}"
    );
    assert!(!message.contains("rt-new-secret"));
    assert_eq!(session.counters().store_failures, 1);
    backend.server.shutdown().await;
}
