//! No token, refresh token or key in log lines, `Debug` output or error text.
//!
//! Runs in the `logs` test binary. One global TRACE subscriber, installed before anything else
//! in the process logs, writes each event into the capture of the thread that emitted it, if
//! that thread has one. Each scenario captures its
//! own thread and runs on a current-thread runtime, so the events of the session tasks (and of
//! reqwest's connection tasks) land in its capture and no other test is affected. (A
//! thread-scoped subscriber per test lost events: with one scoped subscriber alive, `tracing`
//! caches a callsite's interest from whichever thread reaches it first, here often a thread
//! with no subscriber.) Every secret carries a marker; the captured log, the `Debug` of
//! every public type that holds a secret and the text of every error must never contain one.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokenkeeper::clock::{Clock, ManualClock};
use tokenkeeper::lifecycle::{EventKind, Keeper, SessionConfig};
use tokenkeeper::source::{
    Credentials, FetchReason, FetchRequest, FetchedToken, SessionSpec, SourceError, Token,
};
use tokenkeeper::store::{CredentialStore, MemoryStore};
use tracing_subscriber::Layer as _;
use tracing_subscriber::fmt::format::FmtSpan;

#[cfg(feature = "http")]
use crate::http_support::serve;
use crate::lifecycle_support::{Reply, Scripted, T0, policy, record};

/// In every access token (after a non-secret prefix: `Token`'s `Debug` shows 6 characters).
const TOKEN_MARK: &str = "TOKMARK7f3a9c";
/// In every refresh token / credential.
const CRED_MARK: &str = "CREDMARK51c0e";
/// In auth header values, fixed header values and client secrets.
const KEY_MARK: &str = "KEYMARKd84b27";
const MARKERS: [&str; 3] = [TOKEN_MARK, CRED_MARK, KEY_MARK];

/// Everything the fmt layer writes on one thread, as one text.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

thread_local! {
    static CAPTURING: std::cell::RefCell<Option<Capture>> = const { std::cell::RefCell::new(None) };
}

/// Writes into the current thread's capture (nothing when it has none).
struct ThreadWriter;

impl io::Write for ThreadWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        CAPTURING.with(|c| {
            if let Some(capture) = c.borrow().as_ref() {
                capture.0.lock().extend_from_slice(buf);
            }
        });
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Stops capturing this thread when dropped.
struct Capturing;

impl Drop for Capturing {
    fn drop(&mut self) {
        CAPTURING.with(|c| c.borrow_mut().take());
    }
}

impl Capture {
    /// Captures every event and span (with its fields) on this thread at TRACE level.
    fn install(&self) -> Capturing {
        use tracing_subscriber::layer::SubscriberExt as _;
        static GLOBAL: std::sync::Once = std::sync::Once::new();
        GLOBAL.call_once(|| {
            let layer = tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_span_events(FmtSpan::NEW | FmtSpan::CLOSE)
                .with_writer(|| ThreadWriter)
                .with_filter(tracing_subscriber::filter::filter_fn(|_| {
                    CAPTURING.with(|c| c.borrow().is_some())
                }));
            let subscriber = tracing_subscriber::registry().with(layer);
            tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
            // Callsites other tests reached before (with no subscriber) cached "never": ask again.
            tracing::callsite::rebuild_interest_cache();
        });
        CAPTURING.with(|c| *c.borrow_mut() = Some(self.clone()));
        Capturing
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock()).into_owned()
    }
}

/// Fails with the offending lines if `text` contains any marker.
fn assert_no_secrets(what: &str, text: &str) {
    for marker in MARKERS {
        let leaks: Vec<&str> = text.lines().filter(|l| l.contains(marker)).collect();
        assert!(
            leaks.is_empty(),
            "{what} shows a secret ({marker}):\n{}",
            leaks.join("\n")
        );
    }
}

fn debug_all(items: &[&dyn std::fmt::Debug]) -> String {
    items
        .iter()
        .map(|i| format!("{i:?}\n{i:#?}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn access_token(n: u64) -> Token {
    Token::new(format!("access-{n}-{TOKEN_MARK}"))
}

fn refresh_token(n: u64) -> Credentials {
    Credentials::new(format!("rt-{n}-{CRED_MARK}"))
}

/// The scripted backend of the session scenario: 60 s tokens, each with a rotated refresh
/// token; the 4th call fails with an error the source builds from the response body.
fn rotating_backend(c: &crate::lifecycle_support::Call) -> Reply {
    if c.n == 4 {
        let body = r#"{"error":"overloaded","message":"token service busy","request_id":"r-77"}"#;
        let doc: serde_json::Value = serde_json::from_str(body).expect("body");
        let said = format!("{}: {}", doc["error"], doc["message"]);
        return Reply::Err(SourceError::from_http_status(503, None, "token_url", said));
    }
    Reply::Ok(
        FetchedToken::new(access_token(c.n))
            .with_expires_in(Duration::from_secs(60))
            .with_rotated(refresh_token(c.n + 1)),
    )
}

#[tokio::test(start_paused = true)]
async fn session_lifecycle_logs_no_token_or_refresh_token() {
    let capture = Capture::default();
    let _guard = capture.install();

    let clock = ManualClock::new(T0);
    let store = Arc::new(MemoryStore::new());
    store.save("oauth:1001", &refresh_token(1)).await.unwrap();
    let keeper = Keeper::builder()
        .clock(Arc::new(clock.clone()))
        .policy(policy())
        .store(store.clone())
        .build()
        .unwrap();
    let source = Scripted::new(&clock, rotating_backend);
    let config = SessionConfig::new(SessionSpec::new("live-42", "1001").with_role("publisher"))
        .with_credentials_key("oauth:1001");
    let session = keeper.open_session(config.clone(), source.clone());
    let events = record(&session);

    let first = session.token().await.unwrap();
    assert_eq!(first.token, access_token(1));
    // Scheduled renewals, one of them failing (4th call) and retried.
    clock.sleep(Duration::from_secs(150)).await;
    let renewed = session.current().expect("renewed token");
    // A server refuses the token: emergency refetch.
    let after_rejection = session.token_rejected(None).await.unwrap();
    assert_ne!(after_rejection.token, renewed.token);
    // Past the fresh window, so the expiry report is not a second fresh-token report in a row.
    clock.sleep(Duration::from_secs(11)).await;
    let after_expiry = session
        .token_expired(Some(after_rejection.token.expose()))
        .await
        .unwrap();
    session.close();
    clock.sleep(Duration::from_secs(1)).await;

    // The secrets really went through the session: rotated and stored, sent back to the source.
    let calls = source.calls();
    assert!(calls.len() >= 7, "calls: {}", calls.len());
    assert!(calls[0].credentials.as_deref().unwrap().contains(CRED_MARK));
    assert_eq!(
        store.load("oauth:1001").await.unwrap(),
        Some(refresh_token(calls.len() as u64 + 1))
    );
    let reasons: Vec<FetchReason> = calls.iter().map(|c| c.reason).collect();
    assert!(reasons.contains(&FetchReason::Scheduled), "{reasons:?}");
    assert!(reasons.contains(&FetchReason::Rejected), "{reasons:?}");
    assert!(reasons.contains(&FetchReason::Emergency), "{reasons:?}");
    assert!(keeper.flush_listeners(Duration::from_secs(5)));
    let events = events.lock().clone();
    let failures: Vec<&EventKind> = events
        .iter()
        .map(|e| &e.kind)
        .filter(|k| matches!(k, EventKind::FetchFailed { .. }))
        .collect();
    assert_eq!(failures.len(), 1, "{failures:?}");

    let log = capture.text();
    for expected in [
        "session opened",
        "fetch cycle started",
        "fetching token",
        "credentials saved",
        "token issued",
        "token fetch failed; retrying",
        "overloaded",
        "engine reported the token bad",
        "Rejected",
        "Expired",
        "session closed",
        "token_session",
        "token_fetch",
    ] {
        assert!(log.contains(expected), "no `{expected}` in the log:\n{log}");
    }
    assert_no_secrets("the session log", &log);

    let request = FetchRequest {
        reason: FetchReason::Scheduled,
        session: Arc::new(config.spec.clone()),
        attempt: 2,
        credentials: Some(refresh_token(9)),
        previous: Some(access_token(8)),
        timeout: Duration::from_secs(10),
    };
    let fetched = FetchedToken::new(access_token(9)).with_rotated(refresh_token(10));
    let shown = debug_all(&[
        &first,
        &renewed,
        &after_rejection,
        &after_expiry,
        &access_token(1),
        &refresh_token(1),
        &request,
        &fetched,
        &events,
        &session,
        &keeper,
        &config,
        &store,
        &*source,
    ]);
    assert!(shown.contains("Token(len 22)"), "{shown}");
    assert_no_secrets("Debug of the session's values", &shown);
}

#[tokio::test(start_paused = true)]
async fn host_source_error_echoing_the_previous_token_is_not_logged() {
    let capture = Capture::default();
    let _guard = capture.install();

    let clock = ManualClock::new(T0);
    let keeper = Keeper::builder()
        .clock(Arc::new(clock.clone()))
        .policy(policy())
        .build()
        .unwrap();
    let source = Scripted::new(&clock, |c| {
        if c.n == 1 {
            return Reply::Ok(
                FetchedToken::new(access_token(1)).with_expires_in(Duration::from_secs(600)),
            );
        }
        // The backend's body, quoted as the crate guide shows.
        let body = format!(
            r#"{{"error":"token {} is revoked"}}"#,
            access_token(1).expose()
        );
        Reply::Err(SourceError::from_http_status(500, None, "token_url", body))
    });
    let session = keeper.open_session(
        SessionConfig::new(SessionSpec::new("live-42", "1001")),
        source.clone(),
    );
    session.token().await.unwrap();
    let error = session.renew_token().await.unwrap_err();
    session.close();

    let log = capture.text();
    assert!(log.contains("token fetch failed; retrying"), "{log}");
    assert_no_secrets("the log of a session whose source echoes the token", &log);
    assert_no_secrets("the error text", &error.to_string());
}

#[cfg(feature = "http")]
#[tokio::test]
async fn http_source_error_echoing_the_token_and_keys_is_logged_redacted() {
    use tokenkeeper::sources::{HttpSource, StaticAuth};

    let capture = Capture::default();
    let _guard = capture.install();

    let token_1 = format!("rtc-1-{TOKEN_MARK}");
    let token_2 = format!("rtc-2-{TOKEN_MARK}");
    let bearer = format!("sess-{KEY_MARK}");
    let api_key = format!("key-{KEY_MARK}");
    let forced = Arc::new(Mutex::new(0));
    let (port, seen) = {
        let (token_1, token_2) = (token_1.clone(), token_2.clone());
        let (bearer, api_key) = (bearer.clone(), api_key.clone());
        serve(move |request| {
            let reason = request
                .split("\r\n\r\n")
                .nth(1)
                .and_then(|b| serde_json::from_str::<serde_json::Value>(b).ok())
                .and_then(|b| b["reason"].as_str().map(str::to_owned))
                .unwrap_or_default();
            let ok = |t: &str| (200, serde_json::json!({"token": t, "expiresIn": 3600}));
            let (status, body) = match reason.as_str() {
                "initial" => ok(&token_1),
                "rejected" => ok(&token_2),
                "forced" => {
                    let mut n = forced.lock();
                    *n += 1;
                    if *n == 1 {
                        // A backend that echoes what it got, token and auth header included.
                        (
                            500,
                            serde_json::json!({
                                "error": "server_error",
                                "message": format!(
                                    "could not renew {token_2} for Bearer {bearer} \
                                     (previous: {token_2})"
                                ),
                            }),
                        )
                    } else {
                        (
                            403,
                            serde_json::json!({
                                "code": "forbidden",
                                "detail": format!("api key {api_key} may not renew {token_2}"),
                            }),
                        )
                    }
                }
                _ => (503, serde_json::json!({"error": "unexpected"})),
            };
            (status, body.to_string())
        })
        .await
    };

    let clock = ManualClock::new(T0);
    let source = HttpSource::builder(&format!("http://127.0.0.1:{port}/rtc/token"))
        .json_body(serde_json::json!({
            "channel": "{channel}", "uid": "{user:int}", "reason": "{reason}",
        }))
        .header("x-api-key", &api_key)
        .auth(Arc::new(StaticAuth::bearer(&bearer)))
        .date_header(false)
        .clock(Arc::new(clock.clone()))
        .client(reqwest::Client::builder().no_proxy().build().unwrap())
        .build()
        .unwrap();
    let keeper = Keeper::builder()
        .clock(Arc::new(clock.clone()))
        .policy(policy())
        .build()
        .unwrap();
    let session = keeper.open_session(
        SessionConfig::new(SessionSpec::new("live-42", "1001")),
        Arc::new(source.clone()),
    );

    let events = record(&session);
    let first = session.token().await.unwrap();
    assert_eq!(first.token.expose(), token_1);
    let second = session.token_rejected(None).await.unwrap();
    assert_eq!(second.token.expose(), token_2);
    // The backend echoes the current token and the auth header in a 500, then answers a 403
    // whose body echoes the fixed API key header and the token: renew_token() waits across the
    // first and returns the second.
    let forbidden = session.renew_token().await.unwrap_err();
    assert!(
        matches!(&forbidden, tokenkeeper::Error::Forbidden { reason } if reason.contains("forbidden")),
        "{forbidden}"
    );
    assert!(keeper.flush_listeners(Duration::from_secs(5)));
    let server_error = events
        .lock()
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::FetchFailed { error, .. } => Some(error.clone()),
            _ => None,
        })
        .expect("the 500 was reported");
    assert!(
        matches!(&server_error, tokenkeeper::Error::RetryLater { message, .. }
            if message.contains("server_error") && message.contains("/rtc/token")),
        "{server_error}"
    );
    session.close();

    // The secrets really were on the wire.
    let requests = seen.lock().clone();
    assert_eq!(requests.len(), 4, "{requests:#?}");
    let wire = requests.join("\n").to_ascii_lowercase();
    assert!(wire.contains(&format!("authorization: bearer {bearer}").to_ascii_lowercase()));
    assert!(wire.contains(&format!("x-api-key: {api_key}").to_ascii_lowercase()));

    let log = capture.text();
    for expected in [
        "token endpoint answered",
        "token issued",
        "token fetch failed; retrying",
        "server_error",
        "token session failed; retries stopped",
        "forbidden",
        "[redacted]",
    ] {
        assert!(log.contains(expected), "no `{expected}` in the log:\n{log}");
    }
    assert_no_secrets("the HTTP session log", &log);

    let builder = HttpSource::builder(&format!("http://127.0.0.1:{port}/t?key={KEY_MARK}"))
        .header("x-api-key", &api_key)
        .auth(Arc::new(StaticAuth::bearer(&bearer)));
    let shown = debug_all(&[
        &first,
        &second,
        &server_error,
        &forbidden,
        &source,
        &builder,
        &StaticAuth::bearer(&bearer),
    ]);
    assert!(shown.contains("HttpSource"), "{shown}");
    assert_no_secrets("Debug of the HTTP values", &shown);
    let texts = [&server_error, &forbidden]
        .map(ToString::to_string)
        .join("\n");
    assert_no_secrets("the HTTP error text", &texts);
}

#[cfg(feature = "http")]
#[tokio::test]
async fn oauth_refresh_with_rotation_and_an_echoing_invalid_grant_is_logged_redacted() {
    use tokenkeeper::sources::{FileStore, OAuthConfig, OAuthSource, OAuthTokens};

    let capture = Capture::default();
    let _guard = capture.install();

    let client_secret = format!("client-secret-{KEY_MARK}");
    let calls = Arc::new(Mutex::new(0));
    let (port, seen) = {
        let client_secret = client_secret.clone();
        serve(move |request| {
            let mut n = calls.lock();
            *n += 1;
            let sent = request
                .split("refresh_token=")
                .nth(1)
                .map(|rest| rest.split('&').next().unwrap_or_default().to_owned())
                .unwrap_or_default();
            if *n == 1 {
                let body = serde_json::json!({
                    "access_token": access_token(5).expose(),
                    "token_type": "bearer",
                    "expires_in": 3600,
                    "refresh_token": refresh_token(3).expose(),
                });
                (200, body.to_string())
            } else {
                // A server that echoes the refresh token and client secret it was sent.
                let body = serde_json::json!({
                    "error": "invalid_grant",
                    "error_description": format!(
                        "refresh token {sent} revoked for client app/{client_secret}"
                    ),
                });
                (400, body.to_string())
            }
        })
        .await
    };

    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path());
    store.save("oauth:alice", &refresh_token(2)).await.unwrap();
    let config = OAuthConfig::confidential(
        &format!("http://127.0.0.1:{port}/oauth/token"),
        "app",
        &client_secret,
    )
    .with_scopes(["rtc"]);
    let clock = ManualClock::new(T0);
    let source = OAuthSource::new(config.clone())
        .unwrap()
        .with_store(Arc::new(store.clone()), "oauth:alice")
        .with_clock(Arc::new(clock.clone()));
    let keeper = Keeper::builder()
        .clock(Arc::new(clock.clone()))
        .policy(policy())
        .store(Arc::new(store.clone()))
        .build()
        .unwrap();
    let session = keeper.open_session(
        SessionConfig::new(SessionSpec::new("live-42", "alice"))
            .with_credentials_key("oauth:alice"),
        Arc::new(source.clone()),
    );

    let first = session.token().await.unwrap();
    assert_eq!(first.token, access_token(5));
    assert_eq!(
        store.load("oauth:alice").await.unwrap(),
        Some(refresh_token(3))
    );
    let reauth = session.renew_token().await.unwrap_err();
    assert!(
        matches!(&reauth, tokenkeeper::Error::ReauthRequired { message }
            if message.contains("invalid_grant") && message.contains("[redacted]")),
        "{reauth}"
    );
    session.close();

    // The secrets really were on the wire: the refresh tokens in the form, the secret in Basic.
    let requests = seen.lock().clone();
    assert_eq!(requests.len(), 2, "{requests:#?}");
    assert!(requests[0].contains(&format!("refresh_token={}", refresh_token(2).expose())));
    assert!(requests[1].contains(&format!("refresh_token={}", refresh_token(3).expose())));

    let log = capture.text();
    for expected in [
        "OAuth refresh succeeded",
        "credentials saved",
        "token issued",
        "token session failed; retries stopped",
        "invalid_grant",
    ] {
        assert!(log.contains(expected), "no `{expected}` in the log:\n{log}");
    }
    assert_no_secrets("the OAuth session log", &log);

    // A file tokenkeeper did not write: the error names the file, not its content.
    std::fs::write(store.path_for("broken"), [0xff, 0xfe, b'x']).unwrap();
    let broken = store.load("broken").await.unwrap_err();
    let tokens = OAuthTokens {
        access_token: access_token(3),
        expires_in: Some(Duration::from_secs(3600)),
        refresh_token: refresh_token(4),
        rotated: true,
        unsaved: false,
        server_time_ms: Some(T0),
    };
    let shown = debug_all(&[
        &first, &reauth, &store, &broken, &config, &source, &tokens, &session,
    ]);
    assert!(shown.contains("<redacted, len 27>"), "{shown}");
    assert_no_secrets("Debug of the OAuth and store values", &shown);
    let texts = format!("{reauth}\n{broken}");
    assert!(texts.contains("not UTF-8"), "{texts}");
    assert_no_secrets("the OAuth and store error text", &texts);
}
