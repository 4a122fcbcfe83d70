//! Several instances on one PostgreSQL database (real servers, real PostgreSQL, loopback):
//! bans, stream ends, rate limits and refresh-token families hold across instances.
//! Skipped (loudly) without `TOKENKEEPER_TEST_PG_URL`; CI sets it.

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokenkeeper_server::{RateLimit, Secrets, ServerConfig};

use crate::common::{Ctx, Reply, pg_database, ws_connect, ws_next, ws_send};

const SECRET: &str = "multi-instance-client-secret";

/// Two instances on a fresh database, sharing their secrets as a deployment would.
async fn two(test: &str) -> Option<(Ctx, Ctx)> {
    let db = pg_database(test).await?;
    let config = ServerConfig {
        db,
        secrets: Secrets::generate(),
        rate_limit: None,
        room_warn_before: std::time::Duration::from_millis(500),
        ..ServerConfig::default()
    };
    let a = Ctx::start_with(config.clone()).await;
    let b = Ctx::start_with(config).await;
    Some((a, b))
}

async fn refresh(ctx: &Ctx, rt: &str) -> Reply {
    ctx.send(
        ctx.http
            .post(format!("{}/oauth/token", ctx.base))
            .basic_auth("app", Some(SECRET))
            .form(&[("grant_type", "refresh_token"), ("refresh_token", rt)]),
    )
    .await
}

async fn new_code(ctx: &Ctx) -> String {
    let r = ctx
        .admin_post(
            "/oauth/codes",
            json!({ "client_id": "app", "user_id": "alice" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.body["code"].as_str().unwrap().to_owned()
}

async fn redeem(ctx: &Ctx, code: &str) -> Reply {
    ctx.send(
        ctx.http
            .post(format!("{}/oauth/token", ctx.base))
            .basic_auth("app", Some(SECRET))
            .form(&[("grant_type", "authorization_code"), ("code", code)]),
    )
    .await
}

/// alice, her stream, the OAuth client; returns alice's API key.
async fn setup(a: &Ctx) -> String {
    let key = a.user("alice").await;
    a.stream("live-1", "alice").await;
    let r = a
        .admin_post(
            "/oauth/clients",
            json!({ "client_id": "app", "client_secret": SECRET }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    key
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_refreshes_of_one_token_at_two_instances_give_exactly_one_200() {
    let Some((a, b)) = two("concurrent_refreshes").await else {
        return;
    };
    setup(&a).await;
    for round in 0..10 {
        let login = redeem(&b, &new_code(&a).await).await;
        assert_eq!(login.status, StatusCode::OK, "{:?}", login.body);
        let rt = login.body["refresh_token"].as_str().unwrap().to_owned();
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(8));
        let mut tasks = Vec::new();
        for i in 0..8 {
            let (http, base, rt, barrier) = (
                a.http.clone(),
                if i % 2 == 0 {
                    a.base.clone()
                } else {
                    b.base.clone()
                },
                rt.clone(),
                barrier.clone(),
            );
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                let r = http
                    .post(format!("{base}/oauth/token"))
                    .basic_auth("app", Some(SECRET))
                    .form(&[
                        ("grant_type", "refresh_token"),
                        ("refresh_token", rt.as_str()),
                    ])
                    .send()
                    .await
                    .unwrap();
                (r.status(), r.json::<Value>().await.unwrap())
            }));
        }
        let mut ok = Vec::new();
        for t in tasks {
            let (status, body) = t.await.unwrap();
            match status {
                StatusCode::OK => ok.push(body),
                StatusCode::BAD_REQUEST => assert_eq!(body["error"], "invalid_grant", "{body}"),
                other => panic!("round {round}: unexpected {other}: {body}"),
            }
        }
        assert_eq!(ok.len(), 1, "round {round}: {} successors issued", ok.len());
        // The other presentations were reuse: the family is revoked, the successor with it.
        let successor = ok[0]["refresh_token"].as_str().unwrap();
        let r = refresh(&a, successor).await;
        assert_eq!(r.body["error"], "invalid_grant", "{:?}", r.body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_racing_on_one_code_issue_one_token_family() {
    let Some((a, b)) = two("code_race").await else {
        return;
    };
    setup(&a).await;
    for _ in 0..5 {
        let code = new_code(&a).await;
        let (ra, rb) = tokio::join!(redeem(&a, &code), redeem(&b, &code));
        let oks = [&ra, &rb]
            .iter()
            .filter(|r| r.status == StatusCode::OK)
            .count();
        assert_eq!(oks, 1, "{:?} {:?}", ra.body, rb.body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_ban_through_one_instance_holds_at_the_other_at_once() {
    let Some((a, b)) = two("ban").await else {
        return;
    };
    let key = setup(&a).await;
    let login = redeem(&a, &new_code(&a).await).await;
    let rt = login.body["refresh_token"].as_str().unwrap().to_owned();
    let r = refresh(&b, &rt).await;
    assert_eq!(r.status, StatusCode::OK);
    let rt = r.body["refresh_token"].as_str().unwrap().to_owned();
    // alice is in B's room
    let token = b.token(&key, "jwt", "live-1", "subscriber", 30).await;
    let mut ws = ws_connect(&b.ws_url("live-1")).await;
    ws_send(&mut ws, json!({ "type": "join", "token": token })).await;
    assert_eq!(ws_next(&mut ws, 3.0).await["type"], "joined");

    let r = a.admin_post("/users/alice/ban", json!({})).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = refresh(&b, &rt).await;
    assert_eq!(r.body["error"], "invalid_grant");
    assert!(
        r.body["error_description"]
            .as_str()
            .unwrap()
            .contains("banned")
    );
    let r = b
        .rtc(&key, json!({ "vendor": "jwt", "channel": "live-1" }))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.body["error"], "user_banned");
    // B's room kicked her (LISTEN/NOTIFY)
    let kicked = ws_next(&mut ws, 3.0).await;
    assert_eq!(kicked["type"], "kicked", "{kicked}");
    assert_eq!(kicked["reason"], "banned");
    assert_eq!(b.stats().await["disconnects"]["banned"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stream_ended_through_one_instance_is_over_at_the_other() {
    let Some((a, b)) = two("stream_end").await else {
        return;
    };
    let key = setup(&a).await;
    let token = b.token(&key, "agora", "live-1", "publisher", 30).await;
    let mut ws = ws_connect(&b.ws_url("live-1")).await;
    ws_send(&mut ws, json!({ "type": "join", "token": token })).await;
    assert_eq!(ws_next(&mut ws, 3.0).await["type"], "joined");
    a.admin_post("/streams/live-1/end", json!({})).await;
    let r = b
        .rtc(&key, json!({ "vendor": "agora", "channel": "live-1" }))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.body["error"], "stream_ended");
    let kicked = ws_next(&mut ws, 3.0).await;
    assert_eq!(kicked["reason"], "stream_ended", "{kicked}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_rate_limit_is_shared_by_the_instances() {
    let Some((a, b)) = two("rate_limit").await else {
        return;
    };
    let key = setup(&a).await;
    let limit = json!({ "rate_limit": { "per_sec": 0.01, "burst": 4 } });
    a.faults(limit.clone()).await;
    b.faults(limit).await;
    let mut statuses = Vec::new();
    for i in 0..10 {
        let ctx = if i % 2 == 0 { &a } else { &b };
        statuses.push(
            ctx.rtc(&key, json!({ "vendor": "jwt", "channel": "live-1" }))
                .await
                .status
                .as_u16(),
        );
    }
    assert_eq!(statuses, [200, 200, 200, 200, 429, 429, 429, 429, 429, 429]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_at_two_instances_never_exceed_the_shared_burst() {
    let Some((a, b)) = two("rate_limit_race").await else {
        return;
    };
    let key = setup(&a).await;
    let limit = json!({ "rate_limit": { "per_sec": 0.01, "burst": 10 } });
    a.faults(limit.clone()).await;
    b.faults(limit).await;
    let mut tasks = Vec::new();
    for i in 0..40 {
        let (http, base, key) = (
            a.http.clone(),
            if i % 2 == 0 {
                a.base.clone()
            } else {
                b.base.clone()
            },
            key.clone(),
        );
        tasks.push(tokio::spawn(async move {
            http.post(format!("{base}/api/v1/rtc/token"))
                .bearer_auth(key)
                .json(&json!({ "vendor": "jwt", "channel": "live-1" }))
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    let mut ok = 0;
    for t in tasks {
        if t.await.unwrap() == StatusCode::OK {
            ok += 1;
        }
    }
    assert_eq!(ok, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn admin_changes_and_audit_rows_are_shared_and_survive_a_restart() {
    let Some(db) = pg_database("shared_state").await else {
        return;
    };
    let config = ServerConfig {
        db,
        rate_limit: Some(RateLimit {
            per_sec: 100.0,
            burst: 100,
        }),
        ..ServerConfig::default()
    };
    let a = Ctx::start_with(config.clone()).await;
    let key = setup(&a).await;
    a.token(&key, "zego", "live-1", "publisher", 10).await;
    a.server.shutdown().await;
    // the schema is already there: a second start migrates nothing and sees everything
    let b = Ctx::start_with(config).await;
    b.token(&key, "agora", "live-1", "publisher", 10).await;
    let r = b.admin_post("/users", json!({ "id": "alice" })).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let rows = b.server.admin().audit(10).await.unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].vendor.as_deref(), Some("agora"));
    assert_eq!(rows[1].vendor.as_deref(), Some("zego"));
    let bob = b.user("bob").await;
    assert_ne!(bob, key);
    let r = b.admin_post("/users", json!({ "id": "carol" })).await;
    assert_eq!(r.body["uid"], 1002, "uids continue from the shared table");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_takes_a_postgres_url_and_two_processes_migrate_together() {
    let Some(db) = pg_database("binary").await else {
        return;
    };
    let tokenkeeper_server::Database::Postgres(url) = db else {
        unreachable!()
    };
    let spawn = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_tokenkeeper-server"))
            .args([
                "--addr",
                "127.0.0.1:0",
                "--admin-key",
                "adm_multi_binary_key",
            ])
            .env("TOKENKEEPER_DB", &url)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("binary starts")
    };
    let mut children = [spawn(), spawn()];
    let mut bases = Vec::new();
    for c in &mut children {
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(c.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|_| panic!("banner: {line}"));
        bases.push(v["listening"].as_str().unwrap().to_owned());
    }
    let http = reqwest::Client::new();
    let created = http
        .post(format!("{}/admin/users", bases[0]))
        .bearer_auth("adm_multi_binary_key")
        .json(&json!({ "id": "dana" }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let again = http
        .post(format!("{}/admin/users", bases[1]))
        .bearer_auth("adm_multi_binary_key")
        .json(&json!({ "id": "dana" }))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::CONFLICT);
    for c in &mut children {
        let _ = c.kill();
        let _ = c.wait();
    }
}
