//! RTC token endpoint: minted tokens, access checks, status codes, shapes, audit.

use reqwest::StatusCode;
use serde_json::json;
use tokenkeeper::formats::agora::{ServiceKind, verify_007};
use tokenkeeper::formats::jwt::{JwtAlgorithm, verify};
use tokenkeeper::formats::zego::decrypt_04;

use crate::common::{Ctx, wall_ms};

fn parse_iso(s: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(s)
        .expect("ISO-8601")
        .timestamp_millis()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owner_gets_agora_publisher_token_that_verifies_with_the_certificate() {
    let ctx = Ctx::start().await;
    let key = ctx.user("alice").await;
    ctx.stream("live-1", "alice").await;
    let r = ctx
        .rtc(
            &key,
            json!({ "vendor": "agora", "channel": "live-1", "role": "publisher", "ttl_secs": 120 }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let token = r.body["token"].as_str().unwrap();
    let t =
        verify_007(token, &ctx.server.secrets().agora_app_certificate).expect("signature verifies");
    assert_eq!(t.app_id, ctx.server.secrets().agora_app_id);
    assert_eq!(t.expire, 120);
    assert_eq!(r.body["uid"], 1000);
    match &t.services[0].kind {
        ServiceKind::Rtc { channel_name, uid } => {
            assert_eq!(channel_name, "live-1");
            assert_eq!(uid, "1000");
        }
        other => panic!("expected an RTC service, got {other:?}"),
    }
    // join + 3 publish privileges for a publisher
    assert_eq!(t.services[0].privileges.len(), 4);
    assert_eq!(r.body["expiresIn"], 120);
    let expires_at = parse_iso(r.body["expiresAt"].as_str().unwrap());
    assert_eq!(expires_at, (i64::from(t.issue_ts) + 120) * 1000);
    let server_time = parse_iso(r.body["serverTime"].as_str().unwrap());
    assert!(
        (server_time - wall_ms()).abs() < 5_000,
        "serverTime {server_time} is near now"
    );
    assert_eq!(r.body["appId"], ctx.server.secrets().agora_app_id.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agora_account_token_when_user_id_is_sent() {
    let ctx = Ctx::start().await;
    let key = ctx.user("alice").await;
    ctx.stream("live-1", "alice").await;
    let r = ctx
        .rtc(&key, json!({ "vendor": "agora", "channel": "live-1", "user_id": "alice", "role": "subscriber" }))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let t = verify_007(
        r.body["token"].as_str().unwrap(),
        &ctx.server.secrets().agora_app_certificate,
    )
    .unwrap();
    match &t.services[0].kind {
        ServiceKind::Rtc { uid, .. } => assert_eq!(uid, "alice"),
        other => panic!("expected an RTC service, got {other:?}"),
    }
    // subscriber: join privilege only; default lifetime 60 s
    assert_eq!(t.services[0].privileges.len(), 1);
    assert_eq!(t.expire, 60);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zego_token_decrypts_with_the_server_secret_and_carries_room_privileges() {
    let ctx = Ctx::start().await;
    let key = ctx.user("bob").await;
    ctx.user("alice").await;
    ctx.stream("live-1", "alice").await;
    let r = ctx
        .rtc(
            &key,
            json!({ "vendor": "zego", "channel": "live-1", "role": "subscriber", "ttl_secs": 30 }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let (t, p) = decrypt_04(
        r.body["token"].as_str().unwrap(),
        &ctx.server.secrets().zego_server_secret,
    )
    .unwrap();
    assert_eq!(p.app_id, ctx.server.secrets().zego_app_id);
    assert_eq!(p.user_id, "bob");
    assert_eq!(t.expire - p.ctime, 30);
    assert_eq!(
        p.payload,
        r#"{"room_id":"live-1","privilege":{"1":1,"2":0},"stream_id_list":null}"#
    );
    assert_eq!(r.body["expiresIn"], 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_token_verifies_with_the_jwt_key_and_names_user_and_channel() {
    let ctx = Ctx::start().await;
    let key = ctx.user("alice").await;
    ctx.stream("live-1", "alice").await;
    let token = ctx.token(&key, "jwt", "live-1", "publisher", 5).await;
    let t = verify(
        &token,
        ctx.server.secrets().jwt_key.as_bytes(),
        JwtAlgorithm::Hs256,
        wall_ms() / 1000,
        2,
    )
    .expect("verifies");
    assert_eq!(t.claims()["sub"], "alice");
    assert_eq!(t.claims()["channel"], "live-1");
    assert_eq!(t.claims()["role"], "publisher");
    assert_eq!(
        t.time_claim("exp").unwrap() - t.time_claim("iat").unwrap(),
        5
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_checks_give_401_403_404_with_named_causes() {
    let ctx = Ctx::start().await;
    let alice = ctx.user("alice").await;
    let bob = ctx.user("bob").await;
    ctx.stream("live-1", "alice").await;
    let body = json!({ "vendor": "agora", "channel": "live-1", "role": "subscriber" });

    let r = ctx
        .send(
            ctx.http
                .post(format!("{}/api/v1/rtc/token", ctx.base))
                .json(&body),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body["error"], "unauthenticated");
    assert!(r.headers.get("www-authenticate").is_some());

    let r = ctx.rtc("tku_not_a_real_key", body.clone()).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    // a non-owner may watch but not publish
    let r = ctx.rtc(&bob, body.clone()).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = ctx
        .rtc(
            &bob,
            json!({ "vendor": "agora", "channel": "live-1", "role": "publisher" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.body["error"], "not_owner");

    // a uid that is not yours
    let r = ctx
        .rtc(
            &bob,
            json!({ "vendor": "agora", "channel": "live-1", "uid": 1000 }),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.body["error"], "uid_mismatch");

    let r = ctx
        .rtc(&bob, json!({ "vendor": "agora", "channel": "nope" }))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.body["error"], "stream_not_found");

    // banned: 403 on every call, even for a stream that is live
    let r = ctx.admin_post("/users/bob/ban", json!({})).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = ctx.rtc(&bob, body.clone()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.body["error"], "user_banned");
    let r = ctx
        .rtc_at("/api/v1/rtc/token/refresh", &bob, body.clone())
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    ctx.admin_post("/users/bob/unban", json!({})).await;
    assert_eq!(ctx.rtc(&bob, body.clone()).await.status, StatusCode::OK);

    // ended stream: 404 saying so, for the owner too
    let r = ctx.admin_post("/streams/live-1/end", json!({})).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = ctx
        .rtc_at(
            "/api/v1/rtc/token/refresh",
            &alice,
            json!({ "vendor": "jwt", "channel": "live-1", "role": "publisher" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.body["error"], "stream_ended");
    assert!(
        r.body["message"].as_str().unwrap().contains("has ended"),
        "{:?}",
        r.body
    );

    let stats = ctx.stats().await;
    assert_eq!(stats["denied"], 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_endpoint_rechecks_access_and_counts_refreshes() {
    let ctx = Ctx::start().await;
    let key = ctx.user("alice").await;
    ctx.stream("live-1", "alice").await;
    let body = json!({ "vendor": "jwt", "channel": "live-1", "role": "publisher" });
    assert_eq!(ctx.rtc(&key, body.clone()).await.status, StatusCode::OK);
    for _ in 0..3 {
        assert_eq!(
            ctx.rtc_at("/api/v1/rtc/token/refresh", &key, body.clone())
                .await
                .status,
            StatusCode::OK
        );
    }
    let stats = ctx.stats().await;
    assert_eq!(stats["tokens_issued"], 4);
    assert_eq!(stats["refreshes"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_answers_429_with_retry_after() {
    let ctx = Ctx::start().await;
    ctx.faults(json!({ "rate_limit": { "per_sec": 0.5, "burst": 3 } }))
        .await;
    let key = ctx.user("alice").await;
    ctx.stream("live-1", "alice").await;
    let body = json!({ "vendor": "jwt", "channel": "live-1" });
    for _ in 0..3 {
        assert_eq!(ctx.rtc(&key, body.clone()).await.status, StatusCode::OK);
    }
    let r = ctx.rtc(&key, body.clone()).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.body["error"], "rate_limited");
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry), "Retry-After {retry}");
    // another user has their own bucket
    let bob = ctx.user("bob").await;
    assert_eq!(ctx.rtc(&bob, body).await.status, StatusCode::OK);
    assert_eq!(ctx.stats().await["rate_limited"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_shape_has_success_and_data_token_expires_at_only() {
    let ctx = Ctx::start().await;
    let key = ctx.user("alice").await;
    ctx.stream("live-1", "alice").await;
    let r = ctx
        .rtc_at(
            "/api/v1/rtc/token?shape=seed",
            &key,
            json!({ "vendor": "zego", "channel": "live-1", "ttl_secs": 10 }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["success"], true);
    let data = r.body["data"].as_object().unwrap();
    assert_eq!(data.len(), 2);
    assert!(data["token"].as_str().unwrap().starts_with("04"));
    let exp = data["expiresAt"].as_str().unwrap();
    assert!(exp.ends_with('Z') && exp.starts_with("20"), "{exp}");
    assert!((parse_iso(exp) - wall_ms() - 10_000).abs() < 2_000);
    let r = ctx
        .rtc_at(
            "/api/v1/rtc/token?shape=xml",
            &key,
            json!({ "vendor": "zego", "channel": "live-1" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["error"], "unknown_shape");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clock_skew_shifts_issued_timestamps_and_server_time() {
    let ctx = Ctx::start().await;
    let key = ctx.user("alice").await;
    ctx.stream("live-1", "alice").await;
    ctx.faults(json!({ "clock_skew_ms": -3_600_000 })).await;
    let r = ctx
        .rtc(
            &key,
            json!({ "vendor": "jwt", "channel": "live-1", "ttl_secs": 60 }),
        )
        .await;
    let skewed = parse_iso(r.body["serverTime"].as_str().unwrap());
    assert!(
        (wall_ms() - 3_600_000 - skewed).abs() < 5_000,
        "serverTime is an hour behind"
    );
    let t = tokenkeeper::formats::jwt::decode(r.body["token"].as_str().unwrap()).unwrap();
    assert!((t.time_claim("iat").unwrap() * 1000 - skewed).abs() < 1_500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_logs_every_issue_and_denial_without_the_token() {
    let ctx = Ctx::start().await;
    let alice = ctx.user("alice").await;
    let bob = ctx.user("bob").await;
    ctx.stream("live-1", "alice").await;
    let mut tokens = Vec::new();
    for vendor in ["agora", "zego", "jwt"] {
        tokens.push(ctx.token(&alice, vendor, "live-1", "publisher", 30).await);
    }
    let r = ctx
        .rtc(
            &bob,
            json!({ "vendor": "agora", "channel": "live-1", "role": "publisher" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let audit = ctx
        .admin(reqwest::Method::GET, "/audit?limit=10", None)
        .await;
    assert_eq!(audit.status, StatusCode::OK);
    let rows = audit.body.as_array().unwrap();
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[0]["user_id"], "bob");
    assert_eq!(rows[0]["status"], 403);
    assert_eq!(rows[0]["outcome"], "not_owner");
    assert_eq!(rows[1]["vendor"], "jwt");
    assert_eq!(rows[1]["outcome"], "issued");
    assert_eq!(rows[3]["vendor"], "agora");
    assert_eq!(rows[3]["channel"], "live-1");
    assert_eq!(rows[3]["role"], "publisher");
    let text = audit.body.to_string();
    for t in &tokens {
        assert!(!text.contains(t.as_str()));
    }
    assert!(!text.contains(&alice));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_persists_in_sqlite_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.sqlite");
    let config = tokenkeeper_server::ServerConfig {
        db: tokenkeeper_server::Database::Sqlite(db.clone()),
        rate_limit: None,
        ..Default::default()
    };
    let ctx = Ctx::start_with(config.clone()).await;
    let key = ctx.user("alice").await;
    ctx.user("bob").await;
    ctx.stream("live-1", "alice").await;
    ctx.stream("live-2", "alice").await;
    ctx.admin_post("/streams/live-2/end", json!({})).await;
    ctx.admin_post("/users/bob/ban", json!({})).await;
    ctx.token(&key, "jwt", "live-1", "publisher", 10).await;
    ctx.server.shutdown().await;

    let ctx = Ctx::start_with(config).await;
    assert_eq!(
        ctx.rtc(
            &key,
            json!({ "vendor": "jwt", "channel": "live-1", "role": "publisher" })
        )
        .await
        .status,
        StatusCode::OK
    );
    assert_eq!(
        ctx.rtc(&key, json!({ "vendor": "jwt", "channel": "live-2" }))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        ctx.admin_post("/users", json!({ "id": "bob" }))
            .await
            .status,
        StatusCode::CONFLICT
    );
    let audit = ctx.admin(reqwest::Method::GET, "/audit", None).await;
    assert_eq!(audit.body.as_array().unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth_access_token_is_accepted_as_user_credential() {
    let ctx = Ctx::start().await;
    ctx.user("alice").await;
    ctx.stream("live-1", "alice").await;
    let (access, _) = crate::oauth::login(&ctx, "alice").await;
    let r = ctx
        .rtc(
            &access,
            json!({ "vendor": "agora", "channel": "live-1", "role": "publisher" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["userId"], "alice");
    // a JWT signed with another key is refused
    let forged = tokenkeeper::mint::jwt::sign_hs256(
        b"another key",
        &json!({ "sub": "alice", "exp": 4_000_000_000i64 }),
    )
    .unwrap();
    let r = ctx
        .rtc(&forged, json!({ "vendor": "agora", "channel": "live-1" }))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}
