//! A bounded fuzz run of the HTTP and WebSocket surfaces: a fixed seed, 3,000 generated HTTP
//! requests and 300 WebSocket sessions against a real server over loopback. Every answer must
//! be below 500 and no server task may panic.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use tokenkeeper_server::{RateLimit, ServerConfig};
use tokio_tungstenite::tungstenite::Message;

use crate::common::Ctx;

const SEED: u64 = 0x746b_6675_7a7a;
const HTTP_REQUESTS: usize = 3_000;
const WS_SESSIONS: usize = 300;

/// Panics on tokio worker threads (where the server's tasks run), counted by a panic hook.
static WORKER_PANICS: AtomicU64 = AtomicU64::new(0);

fn count_worker_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if std::thread::current()
                .name()
                .is_some_and(|n| n.starts_with("tokio-runtime-worker"))
            {
                WORKER_PANICS.fetch_add(1, Ordering::SeqCst);
            }
            previous(info);
        }));
    });
}

fn pick<'a, T: ?Sized>(rng: &mut StdRng, items: &[&'a T]) -> &'a T {
    items[rng.gen_range(0..items.len())]
}

fn segment(rng: &mut StdRng) -> String {
    match rng.gen_range(0..10) {
        0 => "live-1".into(),
        1 => "alice".into(),
        2 => "%FF%FE".into(),
        3 => "%00".into(),
        4 => "a".repeat(rng.gen_range(60..300)),
        5 => "%C3%A9%F0%9F%8E%89".into(),
        6 => "..%2F..".into(),
        7 => "".into(),
        8 => rng.gen_range(0..u64::MAX).to_string(),
        _ => (0..rng.gen_range(1..12))
            .map(|_| char::from(rng.gen_range(b'a'..=b'z')))
            .collect(),
    }
}

fn number(rng: &mut StdRng) -> Value {
    match rng.gen_range(0..9) {
        0 => json!(i64::MAX),
        1 => json!(i64::MIN),
        2 => json!(u64::MAX),
        3 => json!(-1),
        4 => json!(0),
        5 => json!(1e308),
        6 => json!(60),
        7 => json!("123"),
        _ => json!(rng.gen_range(-1_000_000i64..10_000_000_000)),
    }
}

fn any_value(rng: &mut StdRng) -> Value {
    match rng.gen_range(0..8) {
        0 => Value::Null,
        1 => json!(rng.r#gen::<bool>()),
        2 => number(rng),
        3 => json!(segment(rng)),
        4 => json!([segment(rng), number(rng)]),
        5 => json!({ "x": segment(rng) }),
        6 => json!(pick(
            rng,
            &["agora", "zego", "jwt", "publisher", "subscriber", "rtc"]
        )),
        _ => json!("x".repeat(rng.gen_range(0..5_000))),
    }
}

const FIELDS: &[&str] = &[
    "vendor",
    "channel",
    "role",
    "uid",
    "user_id",
    "userId",
    "ttl_secs",
    "nbf",
    "ud",
    "u",
    "id",
    "api_key",
    "owner",
    "client_id",
    "client_secret",
    "public",
    "redirect_uris",
    "scope",
    "code_challenge",
    "code_challenge_method",
    "redirect_uri",
    "limit",
    "name",
];

fn json_body(rng: &mut StdRng) -> Vec<u8> {
    match rng.gen_range(0..10) {
        0 => "[".repeat(rng.gen_range(1..20_000)).into_bytes(),
        1 => (0..rng.gen_range(0..3_000))
            .map(|_| rng.r#gen::<u8>())
            .collect(),
        2 => b"{\"vendor\":\"agora\",\"vendor\":\"zego\",\"channel\":\"live-1\"}".to_vec(),
        3 => format!(
            "{{\"vendor\":\"agora\",\"channel\":\"live-1\",\"ttl_secs\":{}}}",
            "9".repeat(rng.gen_range(1..400))
        )
        .into_bytes(),
        _ => {
            let mut obj = serde_json::Map::new();
            if rng.gen_bool(0.8) {
                obj.insert(
                    "vendor".into(),
                    json!(pick(rng, &["agora", "zego", "jwt", "twilio"])),
                );
                obj.insert("channel".into(), json!("live-1"));
            }
            for _ in 0..rng.gen_range(0..6) {
                let f = pick(rng, FIELDS);
                let v = if ["uid", "ttl_secs", "nbf", "limit"].contains(&f) && rng.gen_bool(0.7) {
                    number(rng)
                } else {
                    any_value(rng)
                };
                obj.insert(f.to_owned(), v);
            }
            serde_json::to_vec(&Value::Object(obj)).unwrap()
        }
    }
}

fn form_body(rng: &mut StdRng, code: &str, rt: &str) -> Vec<u8> {
    let mut parts = Vec::new();
    let grant = pick(
        rng,
        &[
            "authorization_code",
            "refresh_token",
            "password",
            "",
            "refresh_token",
        ],
    );
    parts.push(format!("grant_type={grant}"));
    for _ in 0..rng.gen_range(0..5) {
        let (k, v) = match rng.gen_range(0..8) {
            0 => ("code", code.to_owned()),
            1 => ("refresh_token", rt.to_owned()),
            2 => ("code_verifier", "v".repeat(rng.gen_range(0..200))),
            3 => (
                "scope",
                pick(rng, &["rtc", "rtc admin", "%22", "", "chat"]).to_owned(),
            ),
            4 => ("redirect_uri", segment(rng)),
            5 => (
                "client_id",
                pick(rng, &["app", "mobile", "nobody", "%FF"]).to_owned(),
            ),
            6 => ("client_secret", segment(rng)),
            _ => ("refresh_token", segment(rng)),
        };
        parts.push(format!("{k}={v}"));
    }
    parts.join("&").into_bytes()
}

struct Creds {
    user: String,
    admin: String,
    dev: String,
    access: String,
    code: String,
    refresh: String,
}

fn request(
    rng: &mut StdRng,
    http: &reqwest::Client,
    base: &str,
    c: &Creds,
) -> (reqwest::RequestBuilder, String) {
    let seg = segment(rng);
    let path = match rng.gen_range(0..18) {
        0 => "/healthz".to_owned(),
        1..=3 => "/api/v1/rtc/token".to_owned(),
        4 => "/api/v1/rtc/token/refresh".to_owned(),
        5 => format!("/api/v1/rooms/{seg}/token"),
        6..=8 => "/oauth/token".to_owned(),
        9 => format!("/ws/rooms/{seg}"),
        10 => "/admin/users".to_owned(),
        11 => format!("/admin/users/{seg}/{}", pick(rng, &["ban", "unban"])),
        12 => format!("/admin/streams/{seg}/end"),
        13 => pick(
            rng,
            &[
                "/admin/oauth/clients",
                "/admin/oauth/codes",
                "/admin/oauth/revoke",
                "/admin/streams",
            ],
        )
        .to_owned(),
        14 => format!(
            "/admin/audit?limit={}",
            pick(rng, &["1", "abc", "-5", "99999999999", ""])
        ),
        15 => "/admin/stats".to_owned(),
        16 => format!("/api/v1/rtc/token?shape={seg}"),
        _ => format!("/{seg}"),
    };
    let natural = if path.starts_with("/healthz")
        || path.starts_with("/ws/")
        || path.starts_with("/admin/audit")
        || path.starts_with("/admin/stats")
    {
        "GET"
    } else {
        "POST"
    };
    let method = if rng.gen_bool(0.85) {
        natural
    } else {
        pick(rng, &["GET", "POST", "PUT", "DELETE", "PATCH"])
    };
    let mut req = http.request(method.parse().unwrap(), format!("{base}{path}"));
    req = match rng.gen_range(0..9) {
        0 => req,
        1 | 2 => req.bearer_auth(&c.user),
        3 => req.bearer_auth(&c.admin),
        4 => req.bearer_auth(&c.dev),
        5 => req.bearer_auth(&c.access),
        6 => req.basic_auth(pick(rng, &["app", "mobile", "x:y", ""]), Some(segment(rng))),
        7 => req.header("authorization", segment(rng)),
        _ => req.bearer_auth(format!(
            "{}.{}.{}",
            segment(rng),
            segment(rng),
            segment(rng)
        )),
    };
    let body = if path == "/oauth/token" && rng.gen_bool(0.8) {
        req = req.header("content-type", "application/x-www-form-urlencoded");
        form_body(rng, &c.code, &c.refresh)
    } else {
        req = req.header(
            "content-type",
            pick(
                rng,
                &[
                    "application/json",
                    "text/plain",
                    "application/x-www-form-urlencoded",
                ],
            ),
        );
        json_body(rng)
    };
    (req.body(body), format!("{method} {path}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::print_stderr)] // prints the mix of answers for whoever reads the test output
async fn fuzzed_http_and_websocket_traffic_gets_no_5xx_and_no_panic() {
    count_worker_panics();
    let ctx = Ctx::start_with(ServerConfig {
        rate_limit: Some(RateLimit {
            per_sec: 1_000.0,
            burst: 1_000,
        }),
        auth_failure_limit: RateLimit {
            per_sec: 1_000.0,
            burst: 100_000,
        },
        room_join_timeout: Duration::from_millis(300),
        ..ServerConfig::default()
    })
    .await;
    let user = ctx.user("alice").await;
    ctx.stream("live-1", "alice").await;
    let (access, refresh) = crate::oauth::login(&ctx, "alice").await;
    let code = ctx
        .admin_post(
            "/oauth/codes",
            json!({ "client_id": "tk-app", "user_id": "alice" }),
        )
        .await
        .body["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let creds = Creds {
        user: user.clone(),
        admin: ctx.admin_key(),
        dev: ctx.server.secrets().samba_developer_key.clone(),
        access,
        code,
        refresh,
    };
    let tokens = {
        let mut t = Vec::new();
        for v in ["agora", "zego", "jwt"] {
            t.push(ctx.token(&user, v, "live-1", "subscriber", 60).await);
        }
        t
    };
    let mut rng = StdRng::seed_from_u64(SEED);
    let requests: Vec<_> = (0..HTTP_REQUESTS)
        .map(|_| request(&mut rng, &ctx.http, &ctx.base, &creds))
        .collect();
    let results: Vec<(String, Result<u16, String>)> = futures::stream::iter(requests)
        .map(|(req, what)| async move {
            (
                what,
                req.send()
                    .await
                    .map(|r| r.status().as_u16())
                    .map_err(|e| e.to_string()),
            )
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let mut by_status = std::collections::BTreeMap::<u16, usize>::new();
    let mut failures = Vec::new();
    for (what, r) in &results {
        match r {
            Ok(s) if *s < 500 => *by_status.entry(*s).or_default() += 1,
            Ok(s) => failures.push(format!("{s} for {what}")),
            Err(e) => failures.push(format!("transport error for {what}: {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures: {:#?}",
        failures.len(),
        &failures[..failures.len().min(20)]
    );
    eprintln!("fuzz: {HTTP_REQUESTS} HTTP requests, answers by status: {by_status:?}");
    assert!(
        by_status.get(&200).copied().unwrap_or(0) > 50,
        "too few successes to mean much: {by_status:?}"
    );

    // WebSocket sessions: real tokens, mutated tokens, junk, binary frames
    let ws_base = ctx.ws_url("");
    let mut sessions = Vec::new();
    for _ in 0..WS_SESSIONS {
        let room = if rng.gen_bool(0.7) {
            "live-1".to_owned()
        } else {
            segment(&mut rng).replace('%', "")
        };
        let msgs: Vec<Message> = (0..rng.gen_range(0..5))
            .map(|_| {
                let mut tok = tokens[rng.gen_range(0..3)].clone();
                match rng.gen_range(0..5) {
                    0 => {}
                    1 => {
                        let i = rng.gen_range(0..tok.len());
                        tok.replace_range(i..=i, "A");
                    }
                    2 => tok.truncate(rng.gen_range(0..tok.len())),
                    3 => tok = segment(&mut rng),
                    _ => tok = "0".repeat(rng.gen_range(0..60_000)),
                }
                match rng.gen_range(0..7) {
                    0 | 1 => Message::text(json!({ "type": "join", "token": tok }).to_string()),
                    2 => Message::text(json!({ "type": "renew", "token": tok }).to_string()),
                    3 => Message::text(json!({ "type": pick(&mut rng, &["ping", "leave", "join", "x"]), "token": any_value(&mut rng) }).to_string()),
                    4 => Message::binary((0..rng.gen_range(0..500)).map(|_| rng.r#gen::<u8>()).collect::<Vec<u8>>()),
                    5 => Message::text(String::from_utf8_lossy(&json_body(&mut rng)).into_owned()),
                    _ => Message::Ping(vec![1, 2, 3].into()),
                }
            })
            .collect();
        sessions.push((format!("{ws_base}{room}"), msgs));
    }
    let ws_errors: Vec<String> = futures::stream::iter(sessions)
        .map(|(url, msgs)| async move {
            let (mut ws, _) = match tokio_tungstenite::connect_async(url.as_str()).await {
                Ok(x) => x,
                // an invalid room name is refused with a JSON 400 before the upgrade
                Err(tokio_tungstenite::tungstenite::Error::Http(resp))
                    if resp.status().as_u16() < 500 =>
                {
                    return None;
                }
                Err(e) => return Some(format!("connect {url}: {e}")),
            };
            for m in msgs {
                if ws.send(m).await.is_err() {
                    break;
                }
            }
            // read until the server closes or goes quiet
            let _ = tokio::time::timeout(Duration::from_millis(700), async {
                while let Some(Ok(_)) = ws.next().await {}
            })
            .await;
            None
        })
        .buffer_unordered(16)
        .filter_map(|e| async move { e })
        .collect()
        .await;
    assert!(ws_errors.is_empty(), "{ws_errors:#?}");

    // still healthy, nothing failed inside
    let r = ctx
        .send(ctx.http.get(format!("{}/healthz", ctx.base)))
        .await;
    assert_eq!(r.status, reqwest::StatusCode::OK);
    assert_eq!(ctx.server.admin().stats()["store_errors"], 0);
    assert_eq!(
        WORKER_PANICS.load(Ordering::SeqCst),
        0,
        "a server task panicked"
    );
}
