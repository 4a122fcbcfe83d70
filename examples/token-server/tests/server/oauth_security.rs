//! OAuth behaviour RFC 6749, RFC 7636 and the RFC 9700 security BCP ask for: code reuse
//! revokes, PKCE both ways, redirect_uri binding, scope, throttled client authentication.

use base64::Engine;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{Ctx, Reply};

const SECRET: &str = "s3cret-for-oauth-security";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

fn challenge() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(<sha2::Sha256 as sha2::Digest>::digest(VERIFIER.as_bytes()))
}

async fn setup(ctx: &Ctx) {
    ctx.user("alice").await;
    ctx.stream("live-1", "alice").await;
    let r = ctx
        .admin_post(
            "/oauth/clients",
            json!({ "client_id": "app", "client_secret": SECRET, "redirect_uris": ["https://app.example/cb"] }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    ctx.admin_post(
        "/oauth/clients",
        json!({ "client_id": "other", "client_secret": "other-secret" }),
    )
    .await;
    ctx.admin_post(
        "/oauth/clients",
        json!({ "client_id": "mobile", "public": true }),
    )
    .await;
}

async fn code(ctx: &Ctx, body: Value) -> String {
    let r = ctx.admin_post("/oauth/codes", body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.body["code"].as_str().unwrap().to_owned()
}

async fn token(ctx: &Ctx, client: (&str, &str), form: &[(&str, &str)]) -> Reply {
    ctx.send(
        ctx.http
            .post(format!("{}/oauth/token", ctx.base))
            .basic_auth(client.0, Some(client.1))
            .form(form),
    )
    .await
}

async fn public_token(ctx: &Ctx, form: &[(&str, &str)]) -> Reply {
    let mut f = form.to_vec();
    f.push(("client_id", "mobile"));
    ctx.send(ctx.http.post(format!("{}/oauth/token", ctx.base)).form(&f))
        .await
}

fn err(r: &Reply) -> &str {
    r.body["error"].as_str().unwrap_or("")
}

const APP: (&str, &str) = ("app", SECRET);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_code_revokes_the_refresh_and_access_tokens_issued_from_it() {
    let ctx = Ctx::start().await;
    setup(&ctx).await;
    let c = code(&ctx, json!({ "client_id": "app", "user_id": "alice" })).await;
    let first = token(
        &ctx,
        APP,
        &[("grant_type", "authorization_code"), ("code", &c)],
    )
    .await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    let access = first.body["access_token"].as_str().unwrap();
    let rt = first.body["refresh_token"].as_str().unwrap();
    let rtc = json!({ "vendor": "jwt", "channel": "live-1" });
    assert_eq!(ctx.rtc(access, rtc.clone()).await.status, StatusCode::OK);

    let again = token(
        &ctx,
        APP,
        &[("grant_type", "authorization_code"), ("code", &c)],
    )
    .await;
    assert_eq!(err(&again), "invalid_grant");
    assert!(
        again.body["error_description"]
            .as_str()
            .unwrap()
            .contains("revoked")
    );
    let r = token(
        &ctx,
        APP,
        &[("grant_type", "refresh_token"), ("refresh_token", rt)],
    )
    .await;
    assert_eq!(err(&r), "invalid_grant");
    assert!(
        r.body["error_description"]
            .as_str()
            .unwrap()
            .contains("authorization code reused"),
        "{:?}",
        r.body
    );
    let r = ctx.rtc(access, rtc).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{:?}", r.body);
    assert!(r.body["message"].as_str().unwrap().contains("revoked"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verifier_for_a_code_without_challenge_is_refused_and_the_code_survives() {
    let ctx = Ctx::start().await;
    setup(&ctx).await;
    let c = code(&ctx, json!({ "client_id": "app", "user_id": "alice" })).await;
    let r = token(
        &ctx,
        APP,
        &[
            ("grant_type", "authorization_code"),
            ("code", &c),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(err(&r), "invalid_grant");
    assert!(
        r.body["error_description"]
            .as_str()
            .unwrap()
            .contains("without code_challenge")
    );
    let r = token(
        &ctx,
        APP,
        &[("grant_type", "authorization_code"), ("code", &c)],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_clients_must_use_pkce_and_verifier_syntax_is_checked() {
    let ctx = Ctx::start().await;
    setup(&ctx).await;
    let r = ctx
        .admin_post(
            "/oauth/codes",
            json!({ "client_id": "mobile", "user_id": "alice" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body["message"].as_str().unwrap().contains("PKCE"));
    let r = ctx
        .admin_post(
            "/oauth/codes",
            json!({ "client_id": "mobile", "user_id": "alice", "code_challenge": challenge(), "code_challenge_method": "plain" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let c = code(
        &ctx,
        json!({ "client_id": "mobile", "user_id": "alice", "code_challenge": challenge() }),
    )
    .await;
    for (bad, want) in [
        (None, "invalid_grant"),
        (Some("short"), "invalid_request"),
        (
            Some("has spaces in it but is long enough to pass the length check"),
            "invalid_request",
        ),
        (
            Some("wrong-but-well-formed-verifier-0123456789abcdefgh"),
            "invalid_grant",
        ),
    ] {
        let mut f = vec![("grant_type", "authorization_code"), ("code", c.as_str())];
        if let Some(v) = bad {
            f.push(("code_verifier", v));
        }
        let r = public_token(&ctx, &f).await;
        assert_eq!(err(&r), want, "{bad:?}: {:?}", r.body);
    }
    let r = public_token(
        &ctx,
        &[
            ("grant_type", "authorization_code"),
            ("code", &c),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "the failed attempts left the code usable: {:?}",
        r.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_clients_attempt_does_not_burn_the_code_for_its_owner() {
    let ctx = Ctx::start().await;
    setup(&ctx).await;
    let c = code(&ctx, json!({ "client_id": "app", "user_id": "alice" })).await;
    let r = token(
        &ctx,
        ("other", "other-secret"),
        &[("grant_type", "authorization_code"), ("code", &c)],
    )
    .await;
    assert_eq!(err(&r), "invalid_grant");
    let r = token(
        &ctx,
        APP,
        &[("grant_type", "authorization_code"), ("code", &c)],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_uri_is_bound_to_the_code_and_must_be_registered() {
    let ctx = Ctx::start().await;
    setup(&ctx).await;
    let r = ctx
        .admin_post(
            "/oauth/codes",
            json!({ "client_id": "app", "user_id": "alice", "redirect_uri": "https://evil.example/cb" }),
        )
        .await;
    assert_eq!(r.body["error"], "invalid_redirect_uri");
    let c = code(
        &ctx,
        json!({ "client_id": "app", "user_id": "alice", "redirect_uri": "https://app.example/cb" }),
    )
    .await;
    for uri in [
        None,
        Some("https://app.example/cb/"),
        Some("https://evil.example/cb"),
    ] {
        let mut f = vec![("grant_type", "authorization_code"), ("code", c.as_str())];
        if let Some(u) = uri {
            f.push(("redirect_uri", u));
        }
        let r = token(&ctx, APP, &f).await;
        assert_eq!(err(&r), "invalid_grant", "{uri:?}");
    }
    let r = token(
        &ctx,
        APP,
        &[
            ("grant_type", "authorization_code"),
            ("code", &c),
            ("redirect_uri", "https://app.example/cb"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    // a code issued without redirect_uri refuses one at the token endpoint
    let c = code(&ctx, json!({ "client_id": "app", "user_id": "alice" })).await;
    let r = token(
        &ctx,
        APP,
        &[
            ("grant_type", "authorization_code"),
            ("code", &c),
            ("redirect_uri", "https://app.example/cb"),
        ],
    )
    .await;
    assert_eq!(err(&r), "invalid_grant");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_scope_may_narrow_but_not_widen_and_rtc_needs_the_rtc_scope() {
    let ctx = Ctx::start().await;
    setup(&ctx).await;
    let c = code(
        &ctx,
        json!({ "client_id": "app", "user_id": "alice", "scope": "rtc chat" }),
    )
    .await;
    let r = token(
        &ctx,
        APP,
        &[("grant_type", "authorization_code"), ("code", &c)],
    )
    .await;
    let rt = r.body["refresh_token"].as_str().unwrap().to_owned();
    let wide = token(
        &ctx,
        APP,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &rt),
            ("scope", "rtc admin"),
        ],
    )
    .await;
    assert_eq!(wide.status, StatusCode::BAD_REQUEST);
    assert_eq!(err(&wide), "invalid_scope");
    // the refused attempt did not use the token up; narrowing works
    let narrow = token(
        &ctx,
        APP,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &rt),
            ("scope", "chat"),
        ],
    )
    .await;
    assert_eq!(narrow.status, StatusCode::OK, "{:?}", narrow.body);
    assert_eq!(narrow.body["scope"], "chat");
    let chat_only = narrow.body["access_token"].as_str().unwrap();
    let r = ctx
        .rtc(chat_only, json!({ "vendor": "jwt", "channel": "live-1" }))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.body["error"], "insufficient_scope");
    assert!(
        r.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("insufficient_scope")
    );
    // the successor keeps the family's full scope
    let rt2 = narrow.body["refresh_token"].as_str().unwrap();
    let r = token(
        &ctx,
        APP,
        &[("grant_type", "refresh_token"), ("refresh_token", rt2)],
    )
    .await;
    assert_eq!(r.body["scope"], "rtc chat");
    let r = ctx
        .rtc(
            r.body["access_token"].as_str().unwrap(),
            json!({ "vendor": "jwt", "channel": "live-1" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_client_authentication_is_throttled_even_for_the_right_secret() {
    let ctx = Ctx::start().await;
    setup(&ctx).await;
    let form = [("grant_type", "refresh_token"), ("refresh_token", "rt_x")];
    for i in 0..10 {
        let r = token(&ctx, ("app", &format!("guess-{i}")), &form).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "attempt {i}");
        assert_eq!(err(&r), "invalid_client");
    }
    let r = token(&ctx, ("app", "guess-10"), &form).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers.get("retry-after").is_some());
    let r = token(&ctx, APP, &form).await;
    assert_eq!(
        r.status,
        StatusCode::TOO_MANY_REQUESTS,
        "the right secret is throttled too"
    );
    assert_eq!(r.body["error"], "temporarily_unavailable");
}
