//! Room server over WebSocket: join, warn, renew, expiry disconnect, kicks, rejections.
//! These run in real time with 2–3 s tokens (a few seconds per test).

use std::time::Duration;

use serde_json::json;
use tokenkeeper_server::ServerConfig;

use crate::common::{Ctx, ws_connect, ws_next, ws_send};

/// A server whose room warns 1 s before expiry and rejects silent clients after 500 ms.
async fn room_ctx() -> Ctx {
    Ctx::start_with(ServerConfig {
        rate_limit: None,
        room_warn_before: Duration::from_millis(1_000),
        room_join_timeout: Duration::from_millis(500),
        ..ServerConfig::default()
    })
    .await
}

async fn setup(ctx: &Ctx) -> (String, String) {
    let alice = ctx.user("alice").await;
    let bob = ctx.user("bob").await;
    ctx.stream("live-1", "alice").await;
    (alice, bob)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_warn_renew_then_expiry_disconnect_is_counted() {
    let ctx = room_ctx().await;
    let (alice, _) = setup(&ctx).await;
    let mut ws = ws_connect(&ctx.ws_url("live-1")).await;
    ws_send(&mut ws, json!({ "type": "join", "token": ctx.token(&alice, "jwt", "live-1", "publisher", 2).await })).await;
    let joined = ws_next(&mut ws, 2.0).await;
    assert_eq!(joined["type"], "joined", "{joined}");
    assert_eq!(joined["user_id"], "alice");
    let first_expiry = joined["expires_at"].as_i64().unwrap();

    let warn = ws_next(&mut ws, 3.0).await;
    assert_eq!(warn["type"], "will_expire", "{warn}");
    let in_ms = warn["in_ms"].as_i64().unwrap();
    assert!(
        (1..=1_000).contains(&in_ms),
        "warned {in_ms} ms before expiry"
    );

    // in-band renew with a fresh 3 s token
    ws_send(&mut ws, json!({ "type": "renew", "token": ctx.token(&alice, "jwt", "live-1", "publisher", 3).await })).await;
    let renewed = ws_next(&mut ws, 2.0).await;
    assert_eq!(renewed["type"], "renewed", "{renewed}");
    assert!(renewed["expires_at"].as_i64().unwrap() > first_expiry);

    // no more renewals: warned again, then disconnected with the reason
    assert_eq!(ws_next(&mut ws, 4.0).await["type"], "will_expire");
    let kicked = ws_next(&mut ws, 3.0).await;
    assert_eq!(kicked["type"], "kicked");
    assert_eq!(kicked["reason"], "token_expired");
    let close = ws_next(&mut ws, 1.0).await;
    assert_eq!(close["code"], 4001);
    assert_eq!(close["reason"], "token_expired");

    let stats = ctx.stats().await;
    assert_eq!(stats["disconnects"]["token_expired"], 1);
    assert_eq!(stats["room"]["renewals"], 1);
    assert_eq!(stats["room"]["warnings"], 2);
    assert_eq!(stats["room"]["members"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_renewing_before_expiry_is_never_disconnected() {
    let ctx = room_ctx().await;
    let (alice, _) = setup(&ctx).await;
    let mut ws = ws_connect(&ctx.ws_url("live-1")).await;
    ws_send(&mut ws, json!({ "type": "join", "token": ctx.token(&alice, "agora", "live-1", "publisher", 2).await })).await;
    assert_eq!(ws_next(&mut ws, 2.0).await["type"], "joined");
    for vendor in ["zego", "agora", "jwt"] {
        let warn = ws_next(&mut ws, 3.0).await;
        assert_eq!(warn["type"], "will_expire", "{warn}");
        ws_send(&mut ws, json!({ "type": "renew", "token": ctx.token(&alice, vendor, "live-1", "publisher", 2).await })).await;
        let renewed = ws_next(&mut ws, 2.0).await;
        assert_eq!(renewed["type"], "renewed", "{vendor}: {renewed}");
    }
    ws_send(&mut ws, json!({ "type": "leave" })).await;
    assert_eq!(ws_next(&mut ws, 2.0).await["code"], 1000);
    let stats = ctx.stats().await;
    assert_eq!(stats["disconnects"]["token_expired"], 0);
    assert_eq!(stats["room"]["renewals"], 3);
    assert_eq!(stats["room"]["left"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ban_kicks_the_member_with_its_reason_and_blocks_rejoin() {
    let ctx = room_ctx().await;
    let (alice, bob) = setup(&ctx).await;
    let mut a = ws_connect(&ctx.ws_url("live-1")).await;
    ws_send(&mut a, json!({ "type": "join", "token": ctx.token(&alice, "jwt", "live-1", "publisher", 30).await })).await;
    assert_eq!(ws_next(&mut a, 2.0).await["type"], "joined");
    let mut b = ws_connect(&ctx.ws_url("live-1")).await;
    let bob_token = ctx.token(&bob, "zego", "live-1", "subscriber", 30).await;
    ws_send(&mut b, json!({ "type": "join", "token": bob_token })).await;
    assert_eq!(ws_next(&mut b, 2.0).await["type"], "joined");

    let r = ctx.admin_post("/users/bob/ban", json!({})).await;
    assert_eq!(r.body["kicked"], 1);
    let kicked = ws_next(&mut b, 2.0).await;
    assert_eq!(kicked["reason"], "banned");
    assert_eq!(ws_next(&mut b, 1.0).await["code"], 4003);

    // a still-valid token does not get a banned user back in
    let mut b2 = ws_connect(&ctx.ws_url("live-1")).await;
    ws_send(&mut b2, json!({ "type": "join", "token": bob_token })).await;
    assert_eq!(ws_next(&mut b2, 2.0).await["reason"], "banned");

    // alice is untouched
    ws_send(&mut a, json!({ "type": "ping" })).await;
    assert_eq!(ws_next(&mut a, 2.0).await["type"], "pong");
    assert_eq!(ctx.stats().await["disconnects"]["banned"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ending_the_stream_kicks_every_member_with_stream_ended() {
    let ctx = room_ctx().await;
    let (alice, bob) = setup(&ctx).await;
    let mut members = Vec::new();
    for (key, role) in [(&alice, "publisher"), (&bob, "subscriber")] {
        let mut ws = ws_connect(&ctx.ws_url("live-1")).await;
        ws_send(
            &mut ws,
            json!({ "type": "join", "token": ctx.token(key, "jwt", "live-1", role, 30).await }),
        )
        .await;
        assert_eq!(ws_next(&mut ws, 2.0).await["type"], "joined");
        members.push(ws);
    }
    let r = ctx.admin_post("/streams/live-1/end", json!({})).await;
    assert_eq!(r.body["kicked"], 2);
    for ws in &mut members {
        assert_eq!(ws_next(ws, 2.0).await["reason"], "stream_ended");
        assert_eq!(ws_next(ws, 1.0).await["code"], 4004);
    }
    let stats = ctx.stats().await;
    assert_eq!(stats["disconnects"]["stream_ended"], 2);
    assert_eq!(stats["disconnects"]["token_expired"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_expired_and_foreign_room_tokens_are_rejected_at_join() {
    let ctx = room_ctx().await;
    let (alice, _) = setup(&ctx).await;
    ctx.stream("live-2", "alice").await;
    let other_room = ctx.token(&alice, "agora", "live-2", "publisher", 30).await;
    let forged = tokenkeeper::mint::jwt::sign_hs256(
        b"not the server key",
        &json!({ "sub": "alice", "channel": "live-1", "exp": 4_000_000_000i64 }),
    )
    .unwrap();
    for (token, needle) in [
        (other_room, "live-2"),
        (forged, "signature"),
        ("garbage".to_owned(), "unrecognised"),
    ] {
        let mut ws = ws_connect(&ctx.ws_url("live-1")).await;
        ws_send(&mut ws, json!({ "type": "join", "token": token })).await;
        let err = ws_next(&mut ws, 2.0).await;
        assert_eq!(err["code"], "join_rejected");
        assert!(err["message"].as_str().unwrap().contains(needle), "{err}");
        assert_eq!(ws_next(&mut ws, 2.0).await["reason"], "join_rejected");
        assert_eq!(ws_next(&mut ws, 1.0).await["code"], 4401);
    }
    // a token that is valid now but expired on the server's clock (server runs 10 s fast)
    let short = ctx.token(&alice, "jwt", "live-1", "publisher", 5).await;
    ctx.faults(json!({ "clock_skew_ms": 10_000 })).await;
    let mut ws = ws_connect(&ctx.ws_url("live-1")).await;
    ws_send(&mut ws, json!({ "type": "join", "token": short })).await;
    let err = ws_next(&mut ws, 2.0).await;
    assert!(
        err["message"].as_str().unwrap().contains("expired"),
        "{err}"
    );
    // the kick is counted before `kicked` is sent
    assert_eq!(ws_next(&mut ws, 2.0).await["reason"], "join_rejected");
    assert_eq!(ctx.stats().await["disconnects"]["join_rejected"], 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renew_with_someone_elses_token_is_refused_and_the_member_stays() {
    let ctx = room_ctx().await;
    let (alice, bob) = setup(&ctx).await;
    let mut ws = ws_connect(&ctx.ws_url("live-1")).await;
    ws_send(&mut ws, json!({ "type": "join", "token": ctx.token(&alice, "jwt", "live-1", "publisher", 30).await })).await;
    assert_eq!(ws_next(&mut ws, 2.0).await["type"], "joined");
    ws_send(&mut ws, json!({ "type": "renew", "token": ctx.token(&bob, "jwt", "live-1", "subscriber", 60).await })).await;
    let err = ws_next(&mut ws, 2.0).await;
    assert_eq!(err["code"], "renew_rejected");
    ws_send(&mut ws, json!({ "type": "hello" })).await;
    assert_eq!(ws_next(&mut ws, 2.0).await["code"], "bad_message");
    ws_send(&mut ws, json!({ "type": "ping" })).await;
    assert_eq!(ws_next(&mut ws, 2.0).await["type"], "pong");
    assert_eq!(ctx.stats().await["room"]["renew_rejected"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_client_is_dropped_after_the_join_timeout() {
    let ctx = room_ctx().await;
    let mut ws = ws_connect(&ctx.ws_url("live-1")).await;
    assert_eq!(ws_next(&mut ws, 2.0).await["reason"], "join_timeout");
    assert_eq!(ws_next(&mut ws, 1.0).await["code"], 4008);
    assert_eq!(ctx.stats().await["disconnects"]["join_timeout"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samba_room_token_joins_its_room() {
    let ctx = room_ctx().await;
    let key = ctx.server.secrets().samba_developer_key.clone();
    let r = ctx
        .send(
            ctx.http
                .post(format!("{}/api/v1/rooms/standup/token", ctx.base))
                .bearer_auth(&key)
                .json(&json!({ "ud": "ext-1" })),
        )
        .await;
    let mut ws = ws_connect(&ctx.ws_url("standup")).await;
    ws_send(&mut ws, json!({ "type": "join", "token": r.body["token"] })).await;
    let joined = ws_next(&mut ws, 2.0).await;
    assert_eq!(joined["type"], "joined", "{joined}");
    assert_eq!(joined["user_id"], "ext-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_members_with_server_shutdown() {
    let ctx = room_ctx().await;
    let (alice, _) = setup(&ctx).await;
    let mut ws = ws_connect(&ctx.ws_url("live-1")).await;
    ws_send(&mut ws, json!({ "type": "join", "token": ctx.token(&alice, "jwt", "live-1", "publisher", 30).await })).await;
    assert_eq!(ws_next(&mut ws, 2.0).await["type"], "joined");
    let stop = tokio::spawn(async move { ctx.server.shutdown().await });
    assert_eq!(ws_next(&mut ws, 3.0).await["reason"], "server_shutdown");
    assert_eq!(ws_next(&mut ws, 1.0).await["code"], 1001);
    tokio::time::timeout(Duration::from_secs(5), stop)
        .await
        .expect("shutdown completes")
        .unwrap();
}
