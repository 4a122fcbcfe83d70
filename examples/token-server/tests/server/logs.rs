//! The server binary at `RUST_LOG=trace`: its whole output (stdout and stderr, the WebSocket
//! and HTTP libraries' logs included) holds none of the tokens and secrets it handled.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use base64::Engine;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{ws_connect, ws_next, ws_send};

const ADMIN: &str = "adm_LOGTEST_admin_0123456789abcdef";
const DEVELOPER: &str = "dsk_LOGTEST_developer_0123456789abcdef";
const JWT_KEY: &str = "LOGTEST_jwt_key_0123456789abcdefghijklmnop";
const OAUTH_KEY: &str = "LOGTEST_oauth_key_0123456789abcdefghijklmn";
const ZEGO_SECRET: &str = "5ec0e7f3a9b14c2d8e6f0a1b2c3d4e5f";
const AGORA_CERT: &str = "c3e9f1a2b4d6e8f0a1b3c5d7e9f1a2b4";
const ALICE_KEY: &str = "tku_LOGTEST_alice_0123456789abcdef";
const CLIENT_SECRET: &str = "cs_LOGTEST_client_secret_0123456789";
const VERIFIER: &str = "LOGTEST-verifier-0123456789abcdefghijklmnopqrstuvwxyz";

/// A running binary whose stdout and stderr are collected in full.
struct Proc {
    child: std::process::Child,
    out: Arc<Mutex<Vec<u8>>>,
    readers: Vec<std::thread::JoinHandle<()>>,
    base: String,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn collect(
    mut r: impl Read + Send + 'static,
    out: Arc<Mutex<Vec<u8>>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = r.read(&mut buf) {
            if n == 0 {
                break;
            }
            out.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    })
}

fn start_at_trace() -> Proc {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tokenkeeper-server"))
        .args([
            "--addr",
            "127.0.0.1:0",
            "--token-ttl",
            "30",
            "--warn-before",
            "1",
        ])
        .env("RUST_LOG", "trace")
        .env("TOKENKEEPER_ADMIN_KEY", ADMIN)
        .env("TOKENKEEPER_DEVELOPER_KEY", DEVELOPER)
        .env("TOKENKEEPER_JWT_KEY", JWT_KEY)
        .env("TOKENKEEPER_OAUTH_KEY", OAUTH_KEY)
        .env("TOKENKEEPER_ZEGO_SERVER_SECRET", ZEGO_SECRET)
        .env("TOKENKEEPER_AGORA_APP_CERTIFICATE", AGORA_CERT)
        .env_remove("TOKENKEEPER_DB")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary starts");
    let out = Arc::new(Mutex::new(Vec::new()));
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut banner = String::new();
    stdout.read_line(&mut banner).expect("banner");
    out.lock().unwrap().extend_from_slice(banner.as_bytes());
    let base = serde_json::from_str::<Value>(&banner).expect("banner JSON")["listening"]
        .as_str()
        .unwrap()
        .to_owned();
    let readers = vec![
        collect(stdout, out.clone()),
        collect(child.stderr.take().unwrap(), out.clone()),
    ];
    Proc {
        child,
        out,
        readers,
        base,
    }
}

async fn post(
    http: &reqwest::Client,
    url: String,
    bearer: &str,
    body: Value,
) -> (StatusCode, Value) {
    let r = http
        .post(url)
        .bearer_auth(bearer)
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_log_holds_no_token_or_secret_the_server_handled() {
    let mut p = start_at_trace();
    let base = p.base.clone();
    let http = reqwest::Client::new();
    let mut secrets: Vec<String> = [
        ADMIN,
        DEVELOPER,
        JWT_KEY,
        OAUTH_KEY,
        ZEGO_SECRET,
        AGORA_CERT,
        ALICE_KEY,
        CLIENT_SECRET,
        VERIFIER,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();

    // users, stream, and a rejected near-miss admin key
    let (s, _) = post(
        &http,
        format!("{base}/admin/users"),
        ADMIN,
        json!({"id": "alice", "api_key": ALICE_KEY}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let (_, bob) = post(
        &http,
        format!("{base}/admin/users"),
        ADMIN,
        json!({"id": "bob"}),
    )
    .await;
    secrets.push(bob["api_key"].as_str().unwrap().to_owned());
    post(
        &http,
        format!("{base}/admin/streams"),
        ADMIN,
        json!({"channel": "live-1", "owner": "alice"}),
    )
    .await;
    let near_miss = format!("{}X", &ADMIN[..ADMIN.len() - 1]);
    let (s, _) = post(&http, format!("{base}/admin/users"), &near_miss, json!({})).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    secrets.push(near_miss);

    // RTC tokens of every vendor, issue and refresh
    let mut rtc = Vec::new();
    for (path, vendor) in [
        ("token", "agora"),
        ("token", "zego"),
        ("token/refresh", "jwt"),
        ("token/refresh", "agora"),
    ] {
        let (s, v) = post(
            &http,
            format!("{base}/api/v1/rtc/{path}"),
            ALICE_KEY,
            json!({"vendor": vendor, "channel": "live-1", "role": "publisher"}),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        rtc.push(v["token"].as_str().unwrap().to_owned());
    }
    // a Digital Samba-style room token
    let (s, v) = post(
        &http,
        format!("{base}/api/v1/rooms/live-1/token"),
        DEVELOPER,
        json!({"ud": "alice"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let room_jwt = v["token"].as_str().unwrap().to_owned();

    // OAuth: confidential and public (PKCE) clients, code exchange, rotation, reuse
    post(
        &http,
        format!("{base}/admin/oauth/clients"),
        ADMIN,
        json!({"client_id": "app", "client_secret": CLIENT_SECRET}),
    )
    .await;
    post(
        &http,
        format!("{base}/admin/oauth/clients"),
        ADMIN,
        json!({"client_id": "mobile", "public": true}),
    )
    .await;
    let (_, c1) = post(
        &http,
        format!("{base}/admin/oauth/codes"),
        ADMIN,
        json!({"client_id": "app", "user_id": "alice"}),
    )
    .await;
    let code1 = c1["code"].as_str().unwrap().to_owned();
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(<sha2::Sha256 as sha2::Digest>::digest(VERIFIER.as_bytes()));
    let (_, c2) = post(
        &http,
        format!("{base}/admin/oauth/codes"),
        ADMIN,
        json!({"client_id": "mobile", "user_id": "alice", "code_challenge": challenge}),
    )
    .await;
    let code2 = c2["code"].as_str().unwrap().to_owned();
    let token_url = format!("{base}/oauth/token");
    let t1: Value = http
        .post(&token_url)
        .basic_auth("app", Some(CLIENT_SECRET))
        .form(&[("grant_type", "authorization_code"), ("code", &code1)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let t2: Value = http
        .post(&token_url)
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code2),
            ("client_id", "mobile"),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rt1 = t1["refresh_token"]
        .as_str()
        .expect("refresh token")
        .to_owned();
    let t3: Value = http
        .post(&token_url)
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &rt1),
            ("client_id", "app"),
            ("client_secret", CLIENT_SECRET),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let reuse = http
        .post(&token_url)
        .basic_auth("app", Some(CLIENT_SECRET))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", &rt1)])
        .send()
        .await
        .unwrap();
    assert_eq!(reuse.status(), StatusCode::BAD_REQUEST);
    let wrong = http
        .post(&token_url)
        .basic_auth("app", Some("cs_LOGTEST_wrong_secret_0123456789"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", "rt_LOGTEST_unknown_0123456789"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    secrets.extend([
        "cs_LOGTEST_wrong_secret_0123456789".into(),
        "rt_LOGTEST_unknown_0123456789".into(),
    ]);
    let access = t2["access_token"]
        .as_str()
        .expect("access token")
        .to_owned();
    let (s, v) = post(
        &http,
        format!("{base}/api/v1/rtc/token"),
        &access,
        json!({"vendor": "jwt", "channel": "live-1"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    rtc.push(v["token"].as_str().unwrap().to_owned());
    for t in [&t1, &t2, &t3] {
        secrets.push(t["access_token"].as_str().unwrap().to_owned());
        secrets.push(t["refresh_token"].as_str().unwrap().to_owned());
    }
    secrets.extend([code1, code2, challenge]);

    // the room server: join and renew with every kind of token, and a refused OAuth token
    let ws_url = format!("{}/ws/rooms/live-1", base.replacen("http://", "ws://", 1));
    let mut ws = ws_connect(&ws_url).await;
    ws_send(&mut ws, json!({"type": "join", "token": rtc[0]})).await;
    assert_eq!(ws_next(&mut ws, 5.0).await["type"], "joined");
    for t in &rtc[1..] {
        ws_send(&mut ws, json!({"type": "renew", "token": t})).await;
        assert_eq!(ws_next(&mut ws, 5.0).await["type"], "renewed");
    }
    ws_send(&mut ws, json!({"type": "renew", "token": access})).await;
    assert_eq!(ws_next(&mut ws, 5.0).await["type"], "error");
    ws_send(&mut ws, json!({"type": "leave"})).await;
    let mut ws2 = ws_connect(&ws_url).await;
    ws_send(&mut ws2, json!({"type": "join", "token": room_jwt})).await;
    assert_eq!(ws_next(&mut ws2, 5.0).await["type"], "joined");
    secrets.extend(rtc);
    secrets.push(room_jwt);

    // stop with SIGINT (a clean shutdown logs too), then read everything it wrote
    let pid = rustix::process::Pid::from_raw(i32::try_from(p.child.id()).unwrap()).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::INT).expect("SIGINT");
    drop(ws2);
    let _ = p.child.wait();
    for r in p.readers.drain(..) {
        r.join().unwrap();
    }
    let out = String::from_utf8_lossy(&p.out.lock().unwrap()).into_owned();

    // The log was really at TRACE/DEBUG level: request lines are there.
    assert!(
        out.contains("/api/v1/rtc/token"),
        "no request log lines:\n{out}"
    );
    assert!(out.contains("tokenkeeper-server stopped"), "{out}");
    for s in &secrets {
        assert!(
            !out.contains(s.as_str()),
            "a secret of {} chars is in the output",
            s.len()
        );
        // a fragment from the middle catches a partial print
        let mid = s.len() / 2;
        let frag = &s[mid.saturating_sub(8)..(mid + 8).min(s.len())];
        assert!(
            frag.len() < 16 || !out.contains(frag),
            "a 16-char fragment of a secret of {} chars is in the output",
            s.len()
        );
    }
    // The WebSocket library logged nothing below INFO.
    for line in out.lines() {
        assert!(
            !(line.contains("tungstenite") && (line.contains("TRACE") || line.contains("DEBUG"))),
            "{line}"
        );
    }
}
