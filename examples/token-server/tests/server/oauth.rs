//! OAuth 2.0 token endpoint: grants, client authentication, rotation, reuse detection.

use base64::Engine;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokenkeeper::formats::jwt::{JwtAlgorithm, verify};

use crate::common::{Ctx, Reply, wall_ms};

const CLIENT: &str = "tk-app";
const SECRET: &str = "s3cret-for-tests";

async fn client(ctx: &Ctx) {
    let r = ctx
        .admin_post(
            "/oauth/clients",
            json!({ "client_id": CLIENT, "client_secret": SECRET }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
}

async fn code(ctx: &Ctx, client_id: &str, user: &str) -> String {
    let r = ctx
        .admin_post(
            "/oauth/codes",
            json!({ "client_id": client_id, "user_id": user }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.body["code"].as_str().unwrap().to_owned()
}

/// `POST /oauth/token` with HTTP Basic client authentication.
async fn token_basic(ctx: &Ctx, id: &str, secret: &str, form: &[(&str, &str)]) -> Reply {
    ctx.send(
        ctx.http
            .post(format!("{}/oauth/token", ctx.base))
            .basic_auth(id, Some(secret))
            .form(form),
    )
    .await
}

async fn refresh(ctx: &Ctx, rt: &str) -> Reply {
    token_basic(
        ctx,
        CLIENT,
        SECRET,
        &[("grant_type", "refresh_token"), ("refresh_token", rt)],
    )
    .await
}

/// Registers the test client and logs `user` in; returns (access, refresh).
pub async fn login(ctx: &Ctx, user: &str) -> (String, String) {
    client(ctx).await;
    let c = code(ctx, CLIENT, user).await;
    let r = token_basic(
        ctx,
        CLIENT,
        SECRET,
        &[("grant_type", "authorization_code"), ("code", &c)],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    (
        r.body["access_token"].as_str().unwrap().to_owned(),
        r.body["refresh_token"].as_str().unwrap().to_owned(),
    )
}

fn error_of(r: &Reply) -> &str {
    r.body["error"].as_str().unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_code_grant_returns_hs256_access_token_with_exp_and_refresh_token() {
    let ctx = Ctx::start().await;
    ctx.user("alice").await;
    client(&ctx).await;
    let c = code(&ctx, CLIENT, "alice").await;
    let r = token_basic(
        &ctx,
        CLIENT,
        SECRET,
        &[("grant_type", "authorization_code"), ("code", &c)],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.headers["cache-control"], "no-store");
    assert_eq!(r.body["token_type"], "Bearer");
    assert_eq!(r.body["expires_in"], 3600);
    let at = verify(
        r.body["access_token"].as_str().unwrap(),
        ctx.server.secrets().oauth_signing_key.as_bytes(),
        JwtAlgorithm::Hs256,
        wall_ms() / 1000,
        0,
    )
    .expect("access token verifies");
    assert_eq!(at.claims()["sub"], "alice");
    assert_eq!(at.claims()["client_id"], CLIENT);
    assert_eq!(
        at.time_claim("exp").unwrap() - at.time_claim("iat").unwrap(),
        3600
    );
    assert!(r.body["refresh_token"].as_str().unwrap().len() > 40);
    // the code is single-use
    let again = token_basic(
        &ctx,
        CLIENT,
        SECRET,
        &[("grant_type", "authorization_code"), ("code", &c)],
    )
    .await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert_eq!(error_of(&again), "invalid_grant");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_rotates_and_reuse_revokes_the_whole_family() {
    let ctx = Ctx::start().await;
    ctx.user("alice").await;
    let (_, rt0) = login(&ctx, "alice").await;
    let r1 = refresh(&ctx, &rt0).await;
    assert_eq!(r1.status, StatusCode::OK, "{:?}", r1.body);
    let rt1 = r1.body["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(rt1, rt0);
    // reuse of rt0 (e.g. stolen, or a client that lost the rotated token): invalid_grant …
    let reuse = refresh(&ctx, &rt0).await;
    assert_eq!(reuse.status, StatusCode::BAD_REQUEST);
    assert_eq!(error_of(&reuse), "invalid_grant");
    assert!(
        reuse.body["error_description"]
            .as_str()
            .unwrap()
            .contains("already used")
    );
    // … and the legitimate successor is revoked with it
    let r2 = refresh(&ctx, &rt1).await;
    assert_eq!(error_of(&r2), "invalid_grant");
    assert!(
        r2.body["error_description"]
            .as_str()
            .unwrap()
            .contains("revoked"),
        "{:?}",
        r2.body
    );
    let stats = ctx.stats().await;
    assert_eq!(stats["oauth"]["reuse_detected"], 1);
    assert_eq!(stats["oauth"]["invalid_grant"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_hundred_consecutive_rotations_each_give_a_fresh_single_use_token() {
    let ctx = Ctx::start().await;
    ctx.user("alice").await;
    let (_, mut rt) = login(&ctx, "alice").await;
    let mut seen = std::collections::HashSet::new();
    for _ in 0..100 {
        let r = refresh(&ctx, &rt).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        rt = r.body["refresh_token"].as_str().unwrap().to_owned();
        assert!(seen.insert(rt.clone()));
    }
    assert_eq!(ctx.stats().await["oauth"]["refreshes"], 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_or_missing_client_credentials_are_invalid_client_401() {
    let ctx = Ctx::start().await;
    ctx.user("alice").await;
    let (_, rt) = login(&ctx, "alice").await;
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", rt.as_str()),
    ];

    let r = token_basic(&ctx, CLIENT, "wrong-secret", &form).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_of(&r), "invalid_client");
    assert!(r.headers.get("www-authenticate").is_some());
    let d = r.body["error_description"].as_str().unwrap();
    assert!(d.contains(CLIENT) && !d.contains("wrong-secret"), "{d}");

    let r = token_basic(&ctx, "other-app", SECRET, &form).await;
    assert_eq!(error_of(&r), "invalid_client");

    // confidential client without its secret
    let mut f = form.to_vec();
    f.push(("client_id", CLIENT));
    let r = ctx
        .send(ctx.http.post(format!("{}/oauth/token", ctx.base)).form(&f))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_of(&r), "invalid_client");

    // a failed client authentication does not consume the refresh token
    let ok = refresh(&ctx, &rt).await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(ctx.stats().await["oauth"]["invalid_client"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_secret_post_and_public_clients_authenticate() {
    let ctx = Ctx::start().await;
    ctx.user("alice").await;
    client(&ctx).await;
    let c = code(&ctx, CLIENT, "alice").await;
    let r = ctx
        .send(ctx.http.post(format!("{}/oauth/token", ctx.base)).form(&[
            ("grant_type", "authorization_code"),
            ("code", &c),
            ("client_id", CLIENT),
            ("client_secret", SECRET),
        ]))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);

    let r = ctx
        .admin_post(
            "/oauth/clients",
            json!({ "client_id": "mobile", "public": true }),
        )
        .await;
    assert_eq!(r.body["client_secret"], Value::Null);
    // public client with PKCE (S256)
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(<sha2::Sha256 as sha2::Digest>::digest(verifier.as_bytes()));
    let r = ctx
        .admin_post(
            "/oauth/codes",
            json!({ "client_id": "mobile", "user_id": "alice", "code_challenge": challenge }),
        )
        .await;
    let c = r.body["code"].as_str().unwrap().to_owned();
    let form = |v: &'static str| {
        vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", c.clone()),
            ("client_id", "mobile".to_owned()),
            ("code_verifier", v.to_owned()),
        ]
    };
    let bad = ctx
        .send(
            ctx.http
                .post(format!("{}/oauth/token", ctx.base))
                .form(&form("wrong-verifier")),
        )
        .await;
    assert_eq!(
        error_of(&bad),
        "invalid_request",
        "verifier syntax (RFC 7636 §4.1)"
    );
    let bad = ctx
        .send(
            ctx.http
                .post(format!("{}/oauth/token", ctx.base))
                .form(&form("wrong-verifier-but-well-formed-0123456789abcdefghij")),
        )
        .await;
    assert_eq!(error_of(&bad), "invalid_grant");
    // failed attempts leave the code for its owner
    let r = ctx
        .send(ctx.http.post(format!("{}/oauth/token", ctx.base)).form(&[
            ("grant_type", "authorization_code"),
            ("code", &c),
            ("client_id", "mobile"),
            ("code_verifier", verifier),
        ]))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let rt = r.body["refresh_token"].as_str().unwrap();
    let r = ctx
        .send(ctx.http.post(format!("{}/oauth/token", ctx.base)).form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt),
            ("client_id", "mobile"),
        ]))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_revoked_foreign_and_unknown_refresh_tokens_are_invalid_grant() {
    let ctx = Ctx::start().await;
    ctx.user("alice").await;
    let (_, rt) = login(&ctx, "alice").await;

    // refresh token of another client
    ctx.admin_post(
        "/oauth/clients",
        json!({ "client_id": "other", "client_secret": "other-secret" }),
    )
    .await;
    let r = token_basic(
        &ctx,
        "other",
        "other-secret",
        &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
    )
    .await;
    assert_eq!(error_of(&r), "invalid_grant");

    let r = refresh(&ctx, "rt_unknown").await;
    assert_eq!(error_of(&r), "invalid_grant");

    // expired: the server clock moves 31 days ahead (refresh tokens live 30 days)
    ctx.faults(json!({ "clock_skew_ms": 31i64 * 24 * 3600 * 1000 }))
        .await;
    let r = refresh(&ctx, &rt).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.body["error_description"]
            .as_str()
            .unwrap()
            .contains("expired"),
        "{:?}",
        r.body
    );
    ctx.faults(json!({ "clock_skew_ms": 0 })).await;

    // revoked by an admin
    let r = ctx
        .admin_post("/oauth/revoke", json!({ "user_id": "alice" }))
        .await;
    assert_eq!(r.body["revoked"], 1);
    let r = refresh(&ctx, &rt).await;
    assert_eq!(error_of(&r), "invalid_grant");
    assert!(
        r.body["error_description"]
            .as_str()
            .unwrap()
            .contains("revoked")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn banned_user_cannot_refresh() {
    let ctx = Ctx::start().await;
    ctx.user("alice").await;
    let (_, rt) = login(&ctx, "alice").await;
    ctx.admin_post("/users/alice/ban", json!({})).await;
    let r = refresh(&ctx, &rt).await;
    assert_eq!(error_of(&r), "invalid_grant");
    assert!(
        r.body["error_description"]
            .as_str()
            .unwrap()
            .contains("banned")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_tokens_are_stored_hashed_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = tokenkeeper_server::ServerConfig {
        db: tokenkeeper_server::Database::Sqlite(dir.path().join("oauth.sqlite")),
        ..Default::default()
    };
    let ctx = Ctx::start_with(config.clone()).await;
    ctx.user("alice").await;
    let (_, rt0) = login(&ctx, "alice").await;
    let rt1 = refresh(&ctx, &rt0).await.body["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    ctx.server.shutdown().await;

    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        bytes.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    let haystack = String::from_utf8_lossy(&bytes);
    for t in [&rt0, &rt1] {
        assert!(
            !haystack.contains(t.as_str()),
            "plain refresh token found in the database files"
        );
        let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(t.as_bytes()));
        assert!(
            haystack.contains(&hash),
            "sha256 of the refresh token is stored"
        );
    }
    assert!(!haystack.contains(SECRET), "client secret is stored hashed");

    let ctx = Ctx::start_with(config).await;
    let r = refresh(&ctx, &rt1).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_token_requests_are_invalid_request_or_unsupported_grant() {
    let ctx = Ctx::start().await;
    client(&ctx).await;
    let r = ctx
        .send(
            ctx.http
                .post(format!("{}/oauth/token", ctx.base))
                .basic_auth(CLIENT, Some(SECRET))
                .json(&json!({"grant_type": "refresh_token"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(error_of(&r), "invalid_request");
    let r = token_basic(&ctx, CLIENT, SECRET, &[("grant_type", "password")]).await;
    assert_eq!(error_of(&r), "unsupported_grant_type");
    let r = token_basic(&ctx, CLIENT, SECRET, &[("grant_type", "refresh_token")]).await;
    assert_eq!(error_of(&r), "invalid_request");
    let r = ctx
        .send(
            ctx.http
                .post(format!("{}/oauth/token", ctx.base))
                .basic_auth(CLIENT, Some(SECRET))
                .form(&[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", "x"),
                    ("client_secret", SECRET),
                ]),
        )
        .await;
    assert_eq!(
        error_of(&r),
        "invalid_request",
        "two client authentication methods"
    );
}
