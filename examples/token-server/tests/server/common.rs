//! Shared helpers: start a server, call it, read JSON.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokenkeeper_server::{RunningServer, Server, ServerConfig};
use tokio_tungstenite::tungstenite::Message;

pub struct Ctx {
    pub server: RunningServer,
    pub http: reqwest::Client,
    pub base: String,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Ctx {
    /// A server with rate limiting off (tests that need it turn it on).
    pub async fn start() -> Self {
        Self::start_with(ServerConfig {
            rate_limit: None,
            ..ServerConfig::default()
        })
        .await
    }

    pub async fn start_with(config: ServerConfig) -> Self {
        let server = Server::start(config).await.expect("server starts");
        let base = server.base_url();
        Self {
            server,
            http: reqwest::Client::new(),
            base,
        }
    }

    pub fn admin_key(&self) -> String {
        self.server.secrets().admin_key.clone()
    }

    pub async fn send(&self, req: reqwest::RequestBuilder) -> Reply {
        let resp = req.send().await.expect("request sent");
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("body read");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn admin(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Reply {
        let mut req = self
            .http
            .request(method, format!("{}/admin{path}", self.base))
            .bearer_auth(self.admin_key());
        if let Some(b) = body {
            req = req.json(&b);
        }
        self.send(req).await
    }

    pub async fn admin_post(&self, path: &str, body: Value) -> Reply {
        self.admin(reqwest::Method::POST, path, Some(body)).await
    }

    /// Creates a user; returns its API key.
    pub async fn user(&self, id: &str) -> String {
        let r = self.admin_post("/users", json!({ "id": id })).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        r.body["api_key"].as_str().expect("api_key").to_owned()
    }

    pub async fn stream(&self, channel: &str, owner: &str) {
        let r = self
            .admin_post("/streams", json!({ "channel": channel, "owner": owner }))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    }

    pub async fn faults(&self, update: Value) -> Reply {
        let r = self
            .admin(reqwest::Method::PUT, "/faults", Some(update))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        r
    }

    pub async fn stats(&self) -> Value {
        self.admin(reqwest::Method::GET, "/stats", None).await.body
    }

    /// `POST /api/v1/rtc/token{suffix}` with a bearer key.
    pub async fn rtc(&self, key: &str, body: Value) -> Reply {
        self.rtc_at("/api/v1/rtc/token", key, body).await
    }

    pub async fn rtc_at(&self, path: &str, key: &str, body: Value) -> Reply {
        self.send(
            self.http
                .post(format!("{}{path}", self.base))
                .bearer_auth(key)
                .json(&body),
        )
        .await
    }

    /// A token for `channel`, asserting success.
    pub async fn token(
        &self,
        key: &str,
        vendor: &str,
        channel: &str,
        role: &str,
        ttl: u64,
    ) -> String {
        let r = self
            .rtc(
                key,
                json!({ "vendor": vendor, "channel": channel, "role": role, "ttl_secs": ttl }),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        r.body["token"].as_str().expect("token").to_owned()
    }

    pub fn ws_url(&self, room: &str) -> String {
        format!("ws://{}/ws/rooms/{room}", self.server.local_addr())
    }
}

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub async fn ws_connect(url: &str) -> Ws {
    let (ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("websocket connects");
    ws
}

pub async fn ws_send(ws: &mut Ws, v: Value) {
    ws.send(Message::text(v.to_string()))
        .await
        .expect("ws send");
}

/// The next JSON message, or `{"type":"__close","code":N,"reason":"…"}` for a close frame.
/// Fails the test after `secs` seconds.
pub async fn ws_next(ws: &mut Ws, secs: f64) -> Value {
    let fut = async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) => {
                    return serde_json::from_str::<Value>(&t).expect("json message");
                }
                Some(Ok(Message::Close(f))) => {
                    return match f {
                        Some(f) => {
                            json!({ "type": "__close", "code": u16::from(f.code), "reason": f.reason.to_string() })
                        }
                        None => json!({ "type": "__close", "code": null }),
                    };
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => return json!({ "type": "__error", "message": e.to_string() }),
                None => return json!({ "type": "__end" }),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs_f64(secs), fut)
        .await
        .unwrap_or_else(|_| panic!("no websocket message within {secs} s"))
}

/// Wall-clock milliseconds through the core's clock (the system clock is not read directly).
pub fn wall_ms() -> i64 {
    use tokenkeeper::clock::Clock;
    tokenkeeper::clock::SystemClock::new().now_unix_ms()
}

/// A fresh PostgreSQL database for one test, made from `TOKENKEEPER_TEST_PG_URL` (which
/// `scripts/setup-postgres.sh` prints). Without the variable the test is skipped with a loud
/// message, except under CI (`CI` set), where that is a failure: CI must run these.
pub async fn pg_database(test: &str) -> Option<tokenkeeper_server::Database> {
    let Ok(url) = std::env::var("TOKENKEEPER_TEST_PG_URL") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "TOKENKEEPER_TEST_PG_URL is not set under CI: scripts/test.sh must run scripts/setup-postgres.sh"
        );
        // Straight to stderr, past the test harness's capture: a skip must be seen.
        let _ = std::io::Write::write_fmt(
            &mut std::io::stderr(),
            format_args!(
                "\n*** SKIPPED {test}: PostgreSQL test without TOKENKEEPER_TEST_PG_URL; \
             run `export TOKENKEEPER_TEST_PG_URL=$(scripts/setup-postgres.sh)` ***\n"
            ),
        );
        return None;
    };
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("the test PostgreSQL server answers");
    tokio::spawn(conn);
    let name = format!(
        "tk_{}",
        tokenkeeper::clock::Clock::now_unix_ms(&tokenkeeper::clock::SystemClock::new())
            .to_string()
            .chars()
            .rev()
            .take(9)
            .collect::<String>()
            + &format!("{:08x}", rand::random::<u32>())
    );
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("CREATE DATABASE");
    let (base, _) = url.rsplit_once('/').expect("URL with a database");
    Some(tokenkeeper_server::Database::Postgres(format!(
        "{base}/{name}"
    )))
}
