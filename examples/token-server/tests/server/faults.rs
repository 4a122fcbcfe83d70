//! Fault injection and the admin guard.

use reqwest::StatusCode;
use serde_json::json;

use crate::common::Ctx;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_error_rate_answers_every_token_request_with_503_or_500() {
    let ctx = Ctx::start().await;
    let key = ctx.user("alice").await;
    ctx.stream("live-1", "alice").await;
    ctx.faults(json!({ "error_rate": 1.0 })).await;
    let (mut s503, mut s500) = (0, 0);
    for _ in 0..30 {
        let r = ctx
            .rtc(&key, json!({ "vendor": "jwt", "channel": "live-1" }))
            .await;
        match r.status {
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(r.headers["retry-after"], "1");
                s503 += 1;
            }
            StatusCode::INTERNAL_SERVER_ERROR => s500 += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert!(
        s503 > 0 && s500 > 0,
        "both kinds injected: {s503} × 503, {s500} × 500"
    );
    let stats = ctx.stats().await;
    assert_eq!(stats["errors_injected"], 30);
    assert_eq!(stats["tokens_issued"], 0);
    // faults cover the OAuth and room-token endpoints too
    let r = ctx
        .send(
            ctx.http
                .post(format!("{}/oauth/token", ctx.base))
                .form(&[("grant_type", "x")]),
        )
        .await;
    assert!(r.status.is_server_error());
    ctx.faults(json!({ "error_rate": 0.0 })).await;
    assert_eq!(
        ctx.rtc(&key, json!({ "vendor": "jwt", "channel": "live-1" }))
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_error_rate_fails_about_that_fraction() {
    let ctx = Ctx::start().await;
    let key = ctx.user("alice").await;
    ctx.stream("live-1", "alice").await;
    ctx.faults(json!({ "error_rate": 0.3 })).await;
    let mut failed = 0;
    for _ in 0..200 {
        if ctx
            .rtc(&key, json!({ "vendor": "jwt", "channel": "live-1" }))
            .await
            .status
            != StatusCode::OK
        {
            failed += 1;
        }
    }
    // binomial(200, 0.3): mean 60, sd ≈ 6.5; 30..=90 is beyond 4.5 sd
    assert!((30..=90).contains(&failed), "{failed} of 200 failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn added_latency_delays_token_responses() {
    let ctx = Ctx::start().await;
    let key = ctx.user("alice").await;
    ctx.stream("live-1", "alice").await;
    ctx.faults(json!({ "latency_ms": 300 })).await;
    let clock = tokenkeeper::clock::SystemClock::new();
    let r = ctx
        .rtc(&key, json!({ "vendor": "jwt", "channel": "live-1" }))
        .await;
    let took = tokenkeeper::clock::Clock::monotonic(&clock).as_millis();
    assert_eq!(r.status, StatusCode::OK);
    assert!(took >= 300, "took {took} ms");
    let faults = ctx.admin(reqwest::Method::GET, "/faults", None).await;
    assert_eq!(faults.body["latency_ms"], 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_endpoints_require_the_admin_key() {
    let ctx = Ctx::start().await;
    let r = ctx
        .send(ctx.http.get(format!("{}/admin/stats", ctx.base)))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = ctx
        .send(
            ctx.http
                .post(format!("{}/admin/users", ctx.base))
                .bearer_auth("adm_guess")
                .json(&json!({})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body["error"], "unauthenticated");
    let r = ctx
        .send(
            ctx.http
                .put(format!("{}/admin/faults", ctx.base))
                .json(&json!({ "error_rate": 1.0 })),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        ctx.admin(reqwest::Method::GET, "/faults", None).await.body["error_rate"],
        0.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_fault_settings_are_refused() {
    let ctx = Ctx::start().await;
    for bad in [
        json!({ "error_rate": 1.5 }),
        json!({ "error_rate": -0.1 }),
        json!({ "token_ttl_secs": 0 }),
        json!({ "rate_limit": { "per_sec": 0.0, "burst": 1 } }),
        json!({ "latency_ms": 600_000 }),
        json!({ "error_rat": 0.5 }),
    ] {
        let r = ctx
            .admin(reqwest::Method::PUT, "/faults", Some(bad.clone()))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad} → {:?}", r.body);
        assert!(r.body["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let r = ctx
        .faults(json!({ "token_ttl_secs": 3, "rate_limit": null }))
        .await;
    assert_eq!(r.body["token_ttl_secs"], 3);
    assert_eq!(r.body["rate_limit"], serde_json::Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_token_ttl_follows_the_admin_setting() {
    let ctx = Ctx::start().await;
    let key = ctx.user("alice").await;
    ctx.stream("live-1", "alice").await;
    ctx.faults(json!({ "token_ttl_secs": 3 })).await;
    let r = ctx
        .rtc(&key, json!({ "vendor": "agora", "channel": "live-1" }))
        .await;
    assert_eq!(r.body["expiresIn"], 3);
}
