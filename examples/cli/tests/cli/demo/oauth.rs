//! OAuthSource and FileStore against the reference backend's `/oauth/token` (real HTTP, real
//! rotation, real processes killed with SIGKILL).

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use serde_json::{Value, json};
use tokenkeeper::source::{
    Credentials, FetchReason, FetchRequest, SessionSpec, SourceError, TokenSource,
};
use tokenkeeper::sources::{ClientAuth, FileStore, HttpSource, OAuthConfig, OAuthSource};
use tokenkeeper::store::{CredentialStore, MemoryStore};
use tokenkeeper_server::admin::{NewClient, NewCode};

use super::e2e::{Backend, backend};

const SECRET: &str = "cs_0123456789abcdefghijklmnop";

/// Registers a confidential client `rtc-backend` and a public client `mobile-app`.
async fn clients(b: &Backend) {
    b.admin
        .create_oauth_client(NewClient {
            client_id: "rtc-backend".into(),
            client_secret: Some(SECRET.into()),
            public: false,
        })
        .await
        .expect("confidential client");
    b.admin
        .create_oauth_client(NewClient {
            client_id: "mobile-app".into(),
            client_secret: None,
            public: true,
        })
        .await
        .expect("public client");
}

/// PKCE pair of RFC 7636 appendix B (public clients must use PKCE).
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// The authorization-code step a browser would do: returns alice's first refresh token.
async fn sign_in(b: &Backend, client_id: &str, secret: Option<&str>) -> String {
    let code = b
        .admin
        .issue_authorization_code(NewCode {
            client_id: client_id.into(),
            user_id: "alice".into(),
            scope: None,
            code_challenge: secret.is_none().then(|| CHALLENGE.to_owned()),
        })
        .await
        .expect("code");
    let mut form = vec![
        ("grant_type", "authorization_code".to_owned()),
        ("code", code),
    ];
    if secret.is_none() {
        form.push(("code_verifier", VERIFIER.to_owned()));
    }
    let http = reqwest::Client::new();
    let mut request = http.post(format!("{}/oauth/token", b.server.base_url()));
    match secret {
        Some(secret) => request = request.basic_auth(client_id, Some(secret)),
        None => form.push(("client_id", client_id.to_owned())),
    }
    let body = url_form(&form);
    let reply: Value = request
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .expect("token request")
        .json()
        .await
        .expect("token JSON");
    reply["refresh_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no refresh token: {reply}"))
        .to_owned()
}

fn url_form(pairs: &[(&str, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            let v: String = v
                .bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() {
                        char::from(b).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect();
            format!("{k}={v}")
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn token_url(b: &Backend) -> String {
    format!("{}/oauth/token", b.server.base_url())
}

fn jwt_source(b: &Backend, auth: Arc<OAuthSource>) -> HttpSource {
    HttpSource::builder(&format!("{}/api/v1/rtc/token", b.server.base_url()))
        .json_body(json!({"vendor": "jwt", "channel": "{channel}", "role": "{role}"}))
        .auth(auth)
        .build()
        .expect("source builds")
}

fn request(channel: &str) -> FetchRequest {
    FetchRequest {
        reason: FetchReason::Initial,
        session: Arc::new(SessionSpec::new(channel, "alice").with_role("subscriber")),
        attempt: 1,
        credentials: None,
        previous: None,
        timeout: Duration::from_secs(5),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_consecutive_refreshes_rotate_every_time_and_the_last_token_works() {
    let b = backend(60, "live-oauth").await;
    clients(&b).await;
    let first = sign_in(&b, "rtc-backend", Some(SECRET)).await;
    let store = Arc::new(MemoryStore::new());
    let source = OAuthSource::new(OAuthConfig::confidential(
        &token_url(&b),
        "rtc-backend",
        SECRET,
    ))
    .expect("config")
    .with_store(store.clone(), "oauth:alice")
    .with_refresh_token(Credentials::new(first.clone()));
    let mut previous = first.clone();
    for i in 0..1000 {
        let tokens = source
            .refresh()
            .await
            .unwrap_or_else(|e| panic!("refresh {i}: {e}"));
        assert!(tokens.rotated, "refresh {i} did not rotate");
        let next = tokens.refresh_token.expose().to_owned();
        assert_ne!(
            next, previous,
            "refresh {i} returned the same refresh token"
        );
        assert_eq!(
            store.load("oauth:alice").await.unwrap().unwrap().expose(),
            next,
            "refresh {i} not saved"
        );
        assert_eq!(tokens.expires_in, Some(Duration::from_secs(3600)));
        previous = next;
    }
    let stats = b.admin.stats();
    assert_eq!(stats["oauth"]["refreshes"], 1000);
    assert_eq!(stats["oauth"]["invalid_grant"], 0);
    // The newest access token authenticates a real RTC token request (OAuthSource as the
    // HttpSource's auth provider, reusing the cached access token: no extra refresh).
    let rtc = jwt_source(&b, Arc::new(source.clone()));
    let fetched = rtc
        .fetch(request("live-oauth"))
        .await
        .expect("RTC token with the OAuth access token");
    assert_eq!(fetched.token.expose().matches('.').count(), 2, "a JWT");
    assert_eq!(b.admin.stats()["oauth"]["refreshes"], 1000);
    // The first (long consumed) refresh token is refused: the source reports re-auth.
    let stale = OAuthSource::new(OAuthConfig::confidential(
        &token_url(&b),
        "rtc-backend",
        SECRET,
    ))
    .unwrap()
    .with_refresh_token(Credentials::new(first));
    let err = stale.refresh().await.unwrap_err();
    assert!(
        matches!(&err, SourceError::ReauthRequired { message } if message.contains("invalid_grant")),
        "{err:?}"
    );
    b.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_authenticated_and_public_clients_refresh_through_the_token_source_trait() {
    let b = backend(60, "live-oauth2").await;
    clients(&b).await;
    let confidential = sign_in(&b, "rtc-backend", Some(SECRET)).await;
    let public = sign_in(&b, "mobile-app", None).await;
    let post = OAuthSource::new(
        OAuthConfig::confidential(&token_url(&b), "rtc-backend", SECRET)
            .with_client_auth(ClientAuth::Post),
    )
    .unwrap();
    let mobile = OAuthSource::new(OAuthConfig::public(&token_url(&b), "mobile-app")).unwrap();
    for (source, refresh) in [(post, confidential), (mobile, public)] {
        let mut req = request("unused");
        req.credentials = Some(Credentials::new(refresh.clone()));
        let fetched = source
            .fetch(req.clone())
            .await
            .expect("fetch through TokenSource");
        let rotated = fetched.rotated.expect("rotation reported to the engine");
        assert_ne!(rotated.expose(), refresh);
        assert_eq!(fetched.expires_in, Some(Duration::from_secs(3600)));
        assert!(fetched.server_time_ms.is_some(), "Date header read");
        // The engine failed to save and offers the consumed token again: the source knows
        // better and uses the rotated one (no reuse, no family revocation).
        let again = source.fetch(req).await.expect("stale offer is replaced");
        assert!(again.rotated.is_some());
    }
    let stats = b.admin.stats();
    assert_eq!(stats["oauth"]["reuse_detected"], 0);
    assert_eq!(stats["oauth"]["refreshes"], 4);
    b.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_client_credentials_are_a_misconfiguration_naming_the_client_id() {
    let b = backend(60, "live-oauth3").await;
    clients(&b).await;
    let refresh = Credentials::new(sign_in(&b, "rtc-backend", Some(SECRET)).await);
    // A wrong secret for the confidential client.
    let wrong = OAuthSource::new(OAuthConfig::confidential(
        &token_url(&b),
        "rtc-backend",
        "not-the-secret",
    ))
    .unwrap()
    .with_refresh_token(refresh.clone());
    // The public (user-managed) app's id sent with the server-to-server secret.
    let mixed = OAuthSource::new(OAuthConfig::confidential(
        &token_url(&b),
        "mobile-app",
        SECRET,
    ))
    .unwrap()
    .with_refresh_token(refresh.clone());
    for (source, id) in [(wrong, "rtc-backend"), (mixed, "mobile-app")] {
        let err = source.refresh().await.unwrap_err();
        let SourceError::Misconfigured { setting, message } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(setting, "client_id");
        assert!(
            message.contains(&format!("rejected client id `{id}`")),
            "{message}"
        );
        assert!(message.contains("invalid_client"), "{message}");
        assert!(message.contains("server-to-server"), "{message}");
        assert!(
            !message.contains(SECRET) && !message.contains("not-the-secret"),
            "{message}"
        );
        assert!(!message.contains(refresh.expose()), "{message}");
    }
    assert_eq!(b.admin.stats()["oauth"]["invalid_client"], 2);
    b.server.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Crash tests: helper processes (this test binary, re-run with one ignored test selected).

const CHILD_ENV: &str = "TOKENKEEPER_TEST_CRASH_CHILD";

fn spawn_child(test: &str, config: &Value) -> Child {
    Command::new(std::env::current_exe().expect("test binary"))
        .args([
            test,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads",
            "1",
            "-q",
        ])
        .env(CHILD_ENV, config.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("helper process starts")
}

/// Helper process: refresh (rotate + save) → print `saved N` → use the access token for an RTC
/// token → print `used N` → wait for a line on stdin → repeat. Killed by the parent.
#[test]
#[ignore = "helper process of rotated_refresh_tokens_survive_sigkill_between_receipt_and_use"]
fn crash_child_refreshes_until_killed() {
    let Ok(config) = std::env::var(CHILD_ENV) else {
        return;
    };
    let config: Value = serde_json::from_str(&config).expect("child config");
    let text = |k: &str| config[k].as_str().expect("config field").to_owned();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let store = Arc::new(FileStore::new(text("dir")));
        let source = OAuthSource::new(OAuthConfig::confidential(
            &text("token_url"),
            "rtc-backend",
            SECRET,
        ))
        .expect("config")
        .with_store(store, &text("key"));
        let rtc = HttpSource::builder(&text("rtc_url"))
            .json_body(json!({"vendor": "jwt", "channel": "{channel}", "role": "{role}"}))
            .auth(Arc::new(source.clone()))
            .build()
            .expect("rtc source");
        let mut stdin = BufReader::new(std::io::stdin());
        let mut out = std::io::stdout();
        for n in 1.. {
            if let Err(e) = source.refresh().await {
                let _ = writeln!(out, "error refresh {n}: {e}");
                std::process::exit(3);
            }
            let _ = writeln!(out, "saved {n}");
            let _ = out.flush();
            if let Err(e) = rtc.fetch(request("crash-room")).await {
                let _ = writeln!(out, "error use {n}: {e}");
                std::process::exit(3);
            }
            let _ = writeln!(out, "used {n}");
            let _ = out.flush();
            let mut line = String::new();
            let read = tokio::task::block_in_place(|| stdin.read_line(&mut line));
            if matches!(read, Ok(0) | Err(_)) {
                std::process::exit(0);
            }
        }
    });
}

/// The parent: 30 rounds; each starts the helper from the file store and SIGKILLs it at a
/// random point after a rotated refresh token was received and saved and before the next one
/// is sent (right after `saved`, during the access token's use, or while waiting), after a
/// random number of refreshes. No restart ever needs re-authorization, and the server saw no
/// reuse of a consumed refresh token.
///
/// Not covered, by design of strict single-use rotation: a kill while the refresh request is
/// in flight (the server may have rotated before the answer arrives); only a server-side
/// grace period for the previous token can cover that window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_refresh_tokens_survive_sigkill_between_receipt_and_use() {
    let b = backend(60, "crash-room").await;
    clients(&b).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let store = FileStore::new(dir.path());
    let first = sign_in(&b, "rtc-backend", Some(SECRET)).await;
    store
        .save("oauth:alice", &Credentials::new(first))
        .await
        .expect("first token saved");
    let config = json!({
        "token_url": token_url(&b),
        "rtc_url": format!("{}/api/v1/rtc/token", b.server.base_url()),
        "dir": dir.path(),
        "key": "oauth:alice",
    });
    let (saved_total, kills) = tokio::task::spawn_blocking(move || {
        let mut rng = rand::thread_rng();
        let mut saved_total = 0u64;
        let mut kills = Vec::new();
        for round in 0..30 {
            let mut child = spawn_child("demo::oauth::crash_child_refreshes_until_killed", &config);
            let mut stdin = child.stdin.take().expect("stdin");
            let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
            let refreshes_before_kill = rng.gen_range(1..=4);
            let kill_after_used = rng.gen_bool(0.5);
            let point = loop {
                let line = lines.next().and_then(Result::ok).unwrap_or_else(|| {
                    panic!("round {round}: helper ended early (after {saved_total} saves)")
                });
                assert!(!line.starts_with("error"), "round {round}: {line}");
                let (saved, n) = match line.split_once(' ') {
                    Some(("saved", n)) => (true, n.parse::<u32>().expect("count")),
                    Some(("used", n)) => (false, n.parse::<u32>().expect("count")),
                    _ => continue, // libtest's own lines
                };
                if saved {
                    saved_total += 1;
                }
                if n == refreshes_before_kill && saved != kill_after_used {
                    break if saved { "after save" } else { "after use" };
                }
                if !saved {
                    writeln!(stdin, "go").expect("helper reads stdin");
                }
            };
            std::thread::sleep(Duration::from_micros(rng.gen_range(0..3_000)));
            child.kill().expect("SIGKILL");
            let _ = child.wait();
            kills.push((round, refreshes_before_kill, point));
        }
        (saved_total, kills)
    })
    .await
    .expect("parent loop");
    assert_eq!(kills.len(), 30);
    // A restart from the file store refreshes without re-authorization.
    let source = OAuthSource::new(OAuthConfig::confidential(
        &token_url(&b),
        "rtc-backend",
        SECRET,
    ))
    .unwrap()
    .with_store(Arc::new(store), "oauth:alice");
    let last = source
        .refresh()
        .await
        .expect("restart after the last kill needs no sign-in");
    assert!(last.rotated);
    let stats = b.admin.stats();
    assert_eq!(stats["oauth"]["invalid_grant"], 0, "{stats}");
    assert_eq!(stats["oauth"]["reuse_detected"], 0, "{stats}");
    assert_eq!(stats["oauth"]["refreshes"], saved_total + 1, "{stats}");
    b.server.shutdown().await;
}

/// Helper process: saves `v<N>:` + 16 KiB under one key in a loop, printing N after each.
#[test]
#[ignore = "helper process of file_store_saves_are_atomic_under_sigkill"]
fn crash_child_saves_until_killed() {
    let Ok(config) = std::env::var(CHILD_ENV) else {
        return;
    };
    let config: Value = serde_json::from_str(&config).expect("child config");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let store = FileStore::new(config["dir"].as_str().expect("dir"));
        let mut out = std::io::stdout();
        for n in 1u64.. {
            let value = format!("v{n}:{}", "x".repeat(16 * 1024));
            store
                .save("k", &Credentials::new(value))
                .await
                .expect("save");
            let _ = writeln!(out, "{n}");
            let _ = out.flush();
        }
    });
}

/// SIGKILL at random moments during a stream of saves never leaves a torn or lost value:
/// the file holds the last acknowledged save or the one in progress.
#[test]
fn file_store_saves_are_atomic_under_sigkill() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = json!({"dir": dir.path()});
    let mut rng = rand::thread_rng();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    for round in 0..20 {
        let mut child = spawn_child("demo::oauth::crash_child_saves_until_killed", &config);
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let wanted = rng.gen_range(1..=20u64);
        let mut acked = 0;
        for line in lines.by_ref() {
            if let Ok(n) = line.expect("line").parse::<u64>() {
                acked = n;
                if n >= wanted {
                    break;
                }
            }
        }
        std::thread::sleep(Duration::from_micros(rng.gen_range(0..2_000)));
        child.kill().expect("SIGKILL");
        let _ = child.wait();
        // Saves acknowledged after we stopped reading count too.
        for line in lines.map_while(Result::ok) {
            if let Ok(n) = line.parse::<u64>() {
                acked = acked.max(n);
            }
        }
        let stored = runtime
            .block_on(FileStore::new(dir.path()).load("k"))
            .expect("loads")
            .expect("a value");
        let (n, rest) = stored.expose().split_once(':').expect("complete value");
        let n: u64 = n.trim_start_matches('v').parse().expect("a counter");
        assert_eq!(rest.len(), 16 * 1024, "round {round}: torn value");
        assert!(
            n == acked || n == acked + 1,
            "round {round}: stored v{n}, acknowledged {acked}"
        );
    }
}

/// A Keeper session over the OAuth source with the keeper's store on disk: every rotated
/// refresh token reaches the file before the access token that came with it is handed out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keeper_session_renews_oauth_access_tokens_and_persists_each_rotation_first() {
    use tokenkeeper::lifecycle::{EventKind, Keeper, Policy, SessionConfig};
    let server = tokenkeeper_server::Server::start(tokenkeeper_server::ServerConfig {
        oauth_access_ttl: Duration::from_secs(3),
        rate_limit: None,
        ..Default::default()
    })
    .await
    .expect("server");
    let admin = server.admin();
    admin
        .create_user(tokenkeeper_server::admin::NewUser {
            id: Some("alice".into()),
            ..Default::default()
        })
        .await
        .expect("user");
    let b = Backend {
        api_key: String::new(),
        uid: 0,
        admin,
        server,
    };
    clients(&b).await;
    let first = sign_in(&b, "mobile-app", None).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Arc::new(FileStore::new(dir.path()));
    store
        .save("oauth:alice", &Credentials::new(first.clone()))
        .await
        .unwrap();
    let keeper = Keeper::builder()
        .store(store.clone())
        .policy(Policy {
            renew_lead: Duration::from_secs(1),
            ..Policy::default()
        })
        .build()
        .expect("keeper");
    let source = OAuthSource::new(OAuthConfig::public(&token_url(&b), "mobile-app")).unwrap();
    let session = keeper.open_session(
        SessionConfig::new(SessionSpec::new("api", "alice")).with_credentials_key("oauth:alice"),
        Arc::new(source),
    );
    let mut events = session.subscribe();
    let mut seen = Vec::new();
    session.token().await.expect("first access token");
    while seen.len() < 3 {
        let event = tokio::time::timeout(Duration::from_secs(10), events.recv())
            .await
            .expect("renewals keep coming")
            .expect("session open");
        if let EventKind::Issued { .. } = event.kind {
            // The refresh token on disk is the one the next refresh will send: never the
            // consumed one.
            let on_disk = store.load("oauth:alice").await.unwrap().expect("stored");
            assert_ne!(on_disk.expose(), first);
            assert!(
                !seen.contains(&on_disk.expose().to_owned()),
                "rotation not saved"
            );
            seen.push(on_disk.expose().to_owned());
        }
    }
    let stats = b.admin.stats();
    assert_eq!(stats["oauth"]["reuse_detected"], 0, "{stats}");
    assert_eq!(stats["oauth"]["invalid_grant"], 0, "{stats}");
    assert!(session.counters().renewals >= 2);
    keeper.shutdown();
    b.server.shutdown().await;
}
