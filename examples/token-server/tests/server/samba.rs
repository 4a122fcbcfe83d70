//! Digital Samba-style room tokens behind a developer key.

use reqwest::StatusCode;
use serde_json::json;
use tokenkeeper::formats::jwt::{JwtAlgorithm, verify};

use crate::common::{Ctx, wall_ms};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn developer_key_gets_hs256_room_token_with_samba_claims() {
    let ctx = Ctx::start().await;
    let key = ctx.server.secrets().samba_developer_key.clone();
    let r = ctx
        .send(
            ctx.http
                .post(format!("{}/api/v1/rooms/standup/token", ctx.base))
                .bearer_auth(&key)
                .json(&json!({ "ud": "ext-42", "u": "Ada", "role": "moderator", "ttl_secs": 90 })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["expiresIn"], 90);
    let t = verify(
        r.body["token"].as_str().unwrap(),
        key.as_bytes(),
        JwtAlgorithm::Hs256,
        wall_ms() / 1000,
        2,
    )
    .expect("signed with the developer key");
    assert_eq!(
        t.claims()["td"],
        ctx.server.secrets().samba_team_id.as_str()
    );
    assert_eq!(t.claims()["rd"], "standup");
    assert_eq!(t.claims()["ud"], "ext-42");
    assert_eq!(t.claims()["u"], "Ada");
    assert_eq!(t.claims()["role"], "moderator");
    assert_eq!(
        t.time_claim("exp").unwrap() - t.time_claim("nbf").unwrap(),
        90
    );
    assert_eq!(t.header()["alg"], "HS256");
    assert_eq!(ctx.stats().await["room_tokens_issued"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_room_token_starts_at_nbf() {
    let ctx = Ctx::start().await;
    let key = ctx.server.secrets().samba_developer_key.clone();
    let nbf = wall_ms() / 1000 + 3600;
    let r = ctx
        .send(
            ctx.http
                .post(format!("{}/api/v1/rooms/later/token", ctx.base))
                .bearer_auth(&key)
                .json(&json!({ "nbf": nbf, "ttl_secs": 60 })),
        )
        .await;
    let t = tokenkeeper::formats::jwt::decode(r.body["token"].as_str().unwrap()).unwrap();
    assert_eq!(t.time_claim("nbf"), Some(nbf));
    assert_eq!(t.time_claim("exp"), Some(nbf + 60));
    assert_eq!(t.claims()["role"], "attendee");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_token_needs_the_developer_key() {
    let ctx = Ctx::start().await;
    let url = format!("{}/api/v1/rooms/standup/token", ctx.base);
    let r = ctx.send(ctx.http.post(&url)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = ctx.send(ctx.http.post(&url).bearer_auth("dsk_wrong")).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body["error"], "unauthenticated");
    // the admin key is not a developer key
    let r = ctx
        .send(ctx.http.post(&url).bearer_auth(ctx.admin_key()))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let key = ctx.server.secrets().samba_developer_key.clone();
    let r = ctx
        .send(
            ctx.http
                .post(format!("{}/api/v1/rooms/a%20b/token", ctx.base))
                .bearer_auth(&key),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["error"], "invalid_room");
    let r = ctx
        .send(
            ctx.http
                .post(&url)
                .bearer_auth(&key)
                .json(&json!({ "admin": true })),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}
