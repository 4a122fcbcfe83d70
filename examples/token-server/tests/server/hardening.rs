//! Regressions of the hardening items: rate limits on bad requests and bounded audit rows,
//! slow clients and the connection cap, checked time arithmetic, constant-time key
//! comparison, JSON rejections everywhere.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use tokenkeeper_server::{AUDIT_FIELD_MAX, RateLimit, ServerConfig};

use crate::common::Ctx;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_rate_limited_and_audit_rows_stay_bounded() {
    let ctx = Ctx::start_with(ServerConfig {
        rate_limit: Some(RateLimit {
            per_sec: 0.5,
            burst: 5,
        }),
        ..ServerConfig::default()
    })
    .await;
    let key = ctx.user("alice").await;
    let huge = "v".repeat(20_000);
    let mut statuses = Vec::new();
    for i in 0..40 {
        // bodies just under the 64 KiB cap, and some over it
        let filler = if i % 2 == 0 { "" } else { huge.as_str() };
        let r = ctx
            .rtc(
                &key,
                json!({ "vendor": huge, "channel": huge, "role": huge, "x": filler }),
            )
            .await;
        statuses.push(r.status.as_u16());
    }
    assert_eq!(
        &statuses[..5],
        &[400, 413, 400, 413, 400],
        "the burst is spent on bad requests"
    );
    assert!(statuses[5..].iter().all(|s| *s == 429), "{statuses:?}");
    assert_eq!(ctx.stats().await["rate_limited"], 35);

    let rows = ctx.server.admin().audit(1000).await.unwrap();
    // 5 refusals of the bad body, then one row for the first 429 of the streak
    assert_eq!(rows.len(), 6, "{rows:?}");
    assert_eq!(rows[0].outcome, "rate_limited");
    for r in &rows {
        assert!(
            r.status == 400 || r.status == 413 || r.status == 429,
            "{r:?}"
        );
        assert_eq!(r.vendor, None, "an unknown vendor is not audited");
        assert_eq!(r.channel, None);
        for f in [&r.user_id, &r.vendor, &r.channel, &r.role]
            .into_iter()
            .flatten()
        {
            assert!(f.len() <= AUDIT_FIELD_MAX);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_authentications_are_throttled_per_address_even_for_the_right_key() {
    let ctx = Ctx::start().await;
    let key = ctx.user("alice").await;
    ctx.stream("live-1", "alice").await;
    let body = json!({ "vendor": "jwt", "channel": "live-1" });
    for i in 0..10 {
        let r = ctx.rtc(&format!("tku_guess_{i:04}"), body.clone()).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let r = ctx.rtc("tku_guess_more", body.clone()).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.body["error"], "too_many_failed_attempts");
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry), "Retry-After {retry}");
    // a right guess gains nothing while throttled
    assert_eq!(
        ctx.rtc(&key, body.clone()).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    // the admin key is refused as well from this address, and so is the developer key
    let r = ctx.admin(reqwest::Method::GET, "/stats", None).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(ctx.server.admin().stats()["auth_throttled"], 3);
    // throttled requests write no audit rows: 10 failures, nothing more
    assert_eq!(ctx.server.admin().audit(100).await.unwrap().len(), 10);
}

/// Opens `n` connections that send half a request head and then nothing.
fn slow_clients(addr: std::net::SocketAddr, n: usize) -> Vec<TcpStream> {
    (0..n)
        .filter_map(|_| {
            let mut s = TcpStream::connect(addr).ok()?;
            s.write_all(b"POST /api/v1/rtc/token HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                .ok()?;
            Some(s)
        })
        .collect()
}

fn healthz_blocking(addr: std::net::SocketAddr, timeout: Duration) -> std::io::Result<String> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(timeout))?;
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
    let mut reply = String::new();
    s.read_to_string(&mut reply)?;
    Ok(reply)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off_and_health_checks_answer_at_the_connection_cap() {
    let ctx = Ctx::start_with(ServerConfig {
        rate_limit: None,
        max_connections: 16,
        header_read_timeout: Duration::from_secs(1),
        ..ServerConfig::default()
    })
    .await;
    let addr = ctx.server.local_addr();
    let clock = tokenkeeper::clock::SystemClock::new();
    let started = tokenkeeper::clock::Clock::monotonic(&clock);
    let (slow, reply) = tokio::task::spawn_blocking(move || {
        let slow = slow_clients(addr, 48);
        let reply = healthz_blocking(addr, Duration::from_secs(10));
        (slow, reply)
    })
    .await
    .unwrap();
    let took = tokenkeeper::clock::Clock::monotonic(&clock).saturating_sub(started);
    let reply = reply.expect("health check answered");
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    // three rounds of 16 slow clients, each cut after 1 s
    assert!(took < Duration::from_secs(6), "healthz took {took:?}");
    // the first slow client was closed by the server
    let mut first = slow.into_iter().next().unwrap();
    first
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let mut buf = Vec::new();
    let n = first.read_to_end(&mut buf);
    assert!(n.is_ok(), "closed, not left hanging: {n:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_does_not_arrive_gets_408_json() {
    let ctx = Ctx::start_with(ServerConfig {
        rate_limit: None,
        body_read_timeout: Duration::from_secs(1),
        ..ServerConfig::default()
    })
    .await;
    let key = ctx.user("alice").await;
    let addr = ctx.server.local_addr();
    let reply = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        write!(
            s,
            "POST /api/v1/rtc/token HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"vendor\""
        )
        .unwrap();
        let mut buf = [0u8; 4096];
        let n = s.read(&mut buf).unwrap_or(0);
        String::from_utf8_lossy(&buf[..n]).into_owned()
    })
    .await
    .unwrap();
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
    assert!(reply.contains("application/json"), "{reply}");
    assert!(reply.contains("\"body_timeout\""), "{reply}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_checks_answer_under_slow_clients_with_a_low_open_file_limit() {
    // The binary under `ulimit -n 96`: without a cap, 150 slow clients exhaust the descriptors
    // and accept() fails; with it, they wait their turn and are cut after 1 s.
    let bin = env!("CARGO_BIN_EXE_tokenkeeper-server");
    let mut child = std::process::Command::new("sh")
        .args([
            "-c",
            &format!("ulimit -n 96 && exec {bin} --addr 127.0.0.1:0 --header-timeout 1"),
        ])
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("binary starts");
    let mut banner = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut banner,
    )
    .unwrap();
    let base: serde_json::Value = serde_json::from_str(&banner).expect("banner");
    let addr: std::net::SocketAddr = base["listening"]
        .as_str()
        .unwrap()
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    let reply = tokio::task::spawn_blocking(move || {
        let _slow = slow_clients(addr, 150);
        healthz_blocking(addr, Duration::from_secs(15))
    })
    .await
    .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let reply = reply.expect("health check answered");
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extreme_nbf_and_ttl_on_the_room_token_endpoint_are_400_not_a_panic() {
    let ctx = Ctx::start().await;
    let dev = ctx.server.secrets().samba_developer_key.clone();
    let url = format!("{}/api/v1/rooms/room-1/token", ctx.base);
    let now = crate::common::wall_ms() / 1000;
    for (body, code) in [
        (json!({ "nbf": i64::MAX }), "invalid_nbf"),
        (json!({ "nbf": i64::MIN }), "invalid_nbf"),
        (json!({ "nbf": now + 400 * 86_400 }), "invalid_nbf"),
        (json!({ "nbf": now - 3 * 86_400 }), "invalid_nbf"),
        (json!({ "ttl_secs": u64::MAX }), "invalid_ttl"),
        (json!({ "nbf": 1e300 }), "invalid_field"),
        (json!({ "ud": "x".repeat(1000) }), "invalid_field"),
    ] {
        let r = ctx
            .send(ctx.http.post(&url).bearer_auth(&dev).json(&body))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body} → {:?}", r.body);
        assert_eq!(r.body["error"], code, "{body}");
    }
    // a scheduled meeting a week ahead is fine
    let r = ctx
        .send(
            ctx.http
                .post(&url)
                .bearer_auth(&dev)
                .json(&json!({ "nbf": now + 7 * 86_400, "ttl_secs": 60 })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["expiresIn"], 7 * 86_400 + 60);
    // and an extreme admin skew is refused, not wrapped
    let r = ctx
        .admin(
            reqwest::Method::PUT,
            "/faults",
            Some(json!({ "clock_skew_ms": i64::MAX })),
        )
        .await;
    assert_eq!(r.body["error"], "invalid_clock_skew");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_and_developer_keys_differing_in_one_character_are_refused() {
    let ctx = Ctx::start().await;
    let admin = ctx.admin_key();
    let dev = ctx.server.secrets().samba_developer_key.clone();
    let last_changed = |k: &str| {
        let mut k = k.to_owned();
        let c = if k.ends_with('A') { 'B' } else { 'A' };
        k.pop();
        k.push(c);
        k
    };
    for key in [
        last_changed(&admin),
        admin[..admin.len() - 1].to_owned(),
        format!("{admin}A"),
    ] {
        let r = ctx
            .send(
                ctx.http
                    .get(format!("{}/admin/stats", ctx.base))
                    .bearer_auth(&key),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let url = format!("{}/api/v1/rooms/room-1/token", ctx.base);
    let r = ctx
        .send(ctx.http.post(&url).bearer_auth(last_changed(&dev)))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = ctx.send(ctx.http.post(&url).bearer_auth(&dev)).await;
    assert_eq!(r.status, StatusCode::OK);
}

#[test]
fn no_secret_is_compared_with_eq_in_the_server_sources() {
    // Keys and secrets go through `secret::secret_eq`/`hash_matches` (constant time); a plain
    // `==` on one would reintroduce a timing side channel.
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut stack = vec![src];
    let mut offenders = Vec::new();
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let text = std::fs::read_to_string(&p).unwrap();
                for (i, line) in text.lines().enumerate() {
                    let cmp = line.contains("==") || line.contains("!=");
                    if cmp
                        && (line.contains("secrets.")
                            || line.contains("secret_hash")
                            || line.contains("_key "))
                    {
                        offenders.push(format!("{}:{}: {line}", p.display(), i + 1));
                    }
                }
            }
        }
    }
    assert!(offenders.is_empty(), "{offenders:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_and_query_rejections_are_json_errors() {
    let ctx = Ctx::start().await;
    let admin = ctx.admin_key();
    for (method, path, code) in [
        (
            reqwest::Method::GET,
            "/admin/audit?limit=abc",
            "invalid_query",
        ),
        (
            reqwest::Method::GET,
            "/admin/audit?limit=-1",
            "invalid_query",
        ),
        (
            reqwest::Method::POST,
            "/admin/users/%FF%FE/ban",
            "invalid_path",
        ),
        (
            reqwest::Method::POST,
            "/admin/streams/%C0/end",
            "invalid_path",
        ),
        (
            reqwest::Method::POST,
            "/api/v1/rooms/%FF/token",
            "invalid_path",
        ),
        (reqwest::Method::GET, "/ws/rooms/%FF", "invalid_path"),
    ] {
        let resp = ctx
            .http
            .request(method.clone(), format!("{}{path}", ctx.base))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(resp.headers()["content-type"], "application/json", "{path}");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["error"], code, "{path}: {body}");
        assert!(body["message"].as_str().is_some_and(|m| m.len() > 20));
    }
}
