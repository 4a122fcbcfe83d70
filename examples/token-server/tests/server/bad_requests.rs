//! Bad requests get 4xx with a clear JSON message and never take the server down.

use reqwest::StatusCode;
use serde_json::json;

use crate::common::Ctx;

/// Sends the head of a 2 MiB JSON request and its first bytes, then reads what the server says.
async fn oversized_request_head(addr: std::net::SocketAddr, key: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "POST /api/v1/rtc/token HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n\
         {{\"vendor\":\"agora\",\"channel\":\"aaaa",
        2 * 1024 * 1024
    );
    s.write_all(head.as_bytes()).await.expect("head sent");
    let mut reply = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        s.read_to_end(&mut reply),
    );
    // A reset after the answer is fine: what was read before it is the answer.
    let _ = read
        .await
        .expect("the server answers without waiting for the body");
    String::from_utf8_lossy(&reply).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_huge_unknown_and_incomplete_bodies_get_4xx_with_messages() {
    let ctx = Ctx::start().await;
    let key = ctx.user("alice").await;
    ctx.stream("live-1", "alice").await;
    let url = format!("{}/api/v1/rtc/token", ctx.base);
    let raw = |body: Vec<u8>| {
        ctx.http
            .post(&url)
            .bearer_auth(&key)
            .header("content-type", "application/json")
            .body(body)
    };

    let r = ctx.send(raw(b"{\"vendor\": \"agora\", ".to_vec())).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["error"], "malformed_json");

    let r = ctx.send(raw(Vec::new())).await;
    assert_eq!(r.body["error"], "missing_body");

    let r = ctx.send(raw(vec![0xff, 0xfe, 0x00])).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // A 2 MiB body is refused from its `Content-Length`, before it is read. (Sent whole, the
    // client may see the connection close while it is still writing: a broken pipe, not the
    // 413, depending on timing. So only the head and the start of the body go out here.)
    let head = oversized_request_head(ctx.server.local_addr(), &key).await;
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    assert!(head.contains("application/json"), "{head}");

    let r = ctx
        .rtc(&key, json!({ "vendor": "twilio", "channel": "live-1" }))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["error"], "unknown_vendor");
    assert!(r.body["message"].as_str().unwrap().contains("twilio"));

    let r = ctx.rtc(&key, json!({ "vendor": "agora" })).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["error"], "invalid_field");
    assert!(
        r.body["message"].as_str().unwrap().contains("channel"),
        "{:?}",
        r.body
    );

    let r = ctx
        .rtc(&key, json!({ "vendor": 7, "channel": "live-1" }))
        .await;
    assert_eq!(r.body["error"], "invalid_field");

    let r = ctx
        .rtc(
            &key,
            json!({ "vendor": "agora", "channel": "live-1", "role": "admin" }),
        )
        .await;
    assert_eq!(r.body["error"], "unknown_role");

    let r = ctx
        .rtc(
            &key,
            json!({ "vendor": "agora", "channel": "live-1", "ttl_secs": 0 }),
        )
        .await;
    assert_eq!(r.body["error"], "invalid_ttl");

    let r = ctx
        .rtc(
            &key,
            json!({ "vendor": "agora", "channel": "live-1", "uid": "abc" }),
        )
        .await;
    assert_eq!(r.body["error"], "invalid_uid");

    let r = ctx
        .rtc(
            &key,
            json!({ "vendor": "agora", "channel": "x".repeat(65) }),
        )
        .await;
    assert_eq!(r.body["error"], "invalid_channel");

    let r = ctx.rtc(&key, json!([1, 2, 3])).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    let r = ctx
        .send(ctx.http.get(format!("{}/api/v2/whatever", ctx.base)))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.body["error"], "no_such_endpoint");

    let r = ctx.admin_post("/streams", json!({ "channel": "x" })).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = ctx.admin_post("/users/nobody/ban", json!({})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    let r = ctx.send(ctx.http.get(&url)).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.body["error"], "method_not_allowed");

    let r = ctx
        .send(ctx.http.get(format!("{}/ws/rooms/live-1", ctx.base)))
        .await;
    assert!(r.status.is_client_error(), "{}", r.status);
    assert_eq!(r.body["error"], "websocket_required");

    // still serving
    let r = ctx
        .rtc(&key, json!({ "vendor": "agora", "channel": "live-1" }))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        ctx.send(ctx.http.get(format!("{}/healthz", ctx.base)))
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_messages_never_echo_the_credential() {
    let ctx = Ctx::start().await;
    let key = ctx.user("alice").await;
    let r = ctx
        .rtc(&key, json!({ "vendor": "agora", "channel": "live-1" }))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(!r.body.to_string().contains(&key));
    let r = ctx
        .rtc(
            &format!("{key}x"),
            json!({ "vendor": "agora", "channel": "live-1" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(!r.body.to_string().contains(&key));
}
