//! The backend, a token source that talks to it over HTTP, and an event sink over a channel.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use flutter_rust_bridge::DartFnFuture;
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokenkeeper_frb::StreamTarget;
use tokenkeeper_frb::api::config::{SessionConfig, SessionSpec};
use tokenkeeper_frb::api::events::SessionEvent;
use tokenkeeper_frb::api::source::{
    FetchFailure, FetchFailureKind, FetchOutcome, FetchRequest, FetchedToken,
};
use tokenkeeper_server::admin::{CreatedUser, NewStream, NewUser};
use tokenkeeper_server::{RunningServer, Server, ServerConfig};

/// The reference backend with one user who owns one live stream.
pub struct Backend {
    pub server: RunningServer,
    pub owner: CreatedUser,
    pub channel: String,
}

impl Backend {
    /// Starts the server (no rate limit) and creates `alice` owning the live stream `live-1`.
    pub async fn start() -> Backend {
        let config = ServerConfig {
            rate_limit: None,
            ..Default::default()
        };
        let server = Server::start(config)
            .await
            .expect("server starts on 127.0.0.1:0");
        let admin = server.admin();
        let owner = admin
            .create_user(NewUser {
                id: Some("alice".into()),
                ..Default::default()
            })
            .await
            .expect("create user");
        admin
            .create_stream(NewStream {
                channel: "live-1".into(),
                owner: "alice".into(),
            })
            .await
            .expect("create stream");
        Backend {
            server,
            owner,
            channel: "live-1".into(),
        }
    }

    /// A token source for `api_key` asking for `vendor` tokens of `ttl_secs`.
    pub fn source(&self, api_key: &str, vendor: &str, ttl_secs: u64) -> HttpSource {
        HttpSource {
            url: format!("{}/api/v1/rtc/token", self.server.base_url()),
            api_key: api_key.to_owned(),
            vendor: vendor.to_owned(),
            ttl_secs,
            requests: Arc::new(Mutex::new(Vec::new())),
            successes: Arc::new(Mutex::new(Vec::new())),
            client: reqwest::Client::new(),
        }
    }
}

/// A successful fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Success {
    /// The token it replaced (the request's `previousToken`).
    pub replaced: Option<String>,
    /// The token the backend issued.
    pub token: String,
}

/// What a Flutter app's token source does: POST to the backend, map the answer.
#[derive(Clone)]
pub struct HttpSource {
    url: String,
    api_key: String,
    vendor: String,
    ttl_secs: u64,
    /// Every request the session made, in order.
    pub requests: Arc<Mutex<Vec<FetchRequest>>>,
    /// Every successful fetch, in order.
    pub successes: Arc<Mutex<Vec<Success>>>,
    client: reqwest::Client,
}

impl HttpSource {
    /// The `fetch` callback, as the generated glue would pass the Dart function.
    pub fn callback(
        &self,
    ) -> impl Fn(FetchRequest) -> DartFnFuture<anyhow::Result<FetchOutcome>> + Send + Sync + 'static
    {
        let this = self.clone();
        move |request: FetchRequest| {
            let this = this.clone();
            Box::pin(async move { Ok(this.fetch(request).await) })
        }
    }

    async fn fetch(&self, request: FetchRequest) -> FetchOutcome {
        self.requests.lock().push(request.clone());
        let body = json!({
            "vendor": self.vendor,
            "channel": request.session.channel,
            "role": request.session.role,
            "ttl_secs": self.ttl_secs,
        });
        let sent = self
            .client
            .post(&self.url)
            .bearer_auth(&self.api_key)
            .timeout(request.timeout.to_std().unwrap_or(Duration::from_secs(10)))
            .json(&body)
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => return failure(FetchFailureKind::Network, None, None, e.to_string()),
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<i64>().ok())
            .map(chrono::Duration::seconds);
        let json: Value = response.json().await.unwrap_or(Value::Null);
        if status != 200 {
            let code = json["code"]
                .as_str()
                .or(json["error"].as_str())
                .unwrap_or("?");
            return failure(
                FetchFailureKind::HttpStatus,
                Some(status),
                retry_after,
                code.to_owned(),
            );
        }
        let token = json["token"].as_str().unwrap_or_default().to_owned();
        self.successes.lock().push(Success {
            replaced: request.previous_token.clone(),
            token: token.clone(),
        });
        FetchOutcome {
            token: Some(FetchedToken {
                token,
                expires_at: iso(&json["expiresAt"]),
                expires_in: None,
                issued_at: iso(&json["issuedAt"]),
                server_time: iso(&json["serverTime"]),
                rotated_credentials: None,
            }),
            failure: None,
        }
    }
}

pub fn failure(
    kind: FetchFailureKind,
    http_status: Option<u16>,
    retry_after: Option<chrono::Duration>,
    message: String,
) -> FetchOutcome {
    FetchOutcome {
        token: None,
        failure: Some(FetchFailure {
            kind,
            message,
            http_status,
            retry_after,
            setting: Some("role".into()),
        }),
    }
}

pub fn iso(v: &Value) -> Option<DateTime<Utc>> {
    v.as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|d| d.with_timezone(&Utc))
}

/// A [`StreamTarget`] over a channel: what the Dart `Stream` would receive.
pub struct ChannelTarget<T>(pub tokio::sync::mpsc::UnboundedSender<T>);

impl<T: Send + 'static> StreamTarget<T> for ChannelTarget<T> {
    fn deliver(&self, item: T) -> bool {
        self.0.send(item).is_ok()
    }
}

/// A stream target and the receiving end of what it is given.
pub fn channel_target<T: Send + 'static>()
-> (ChannelTarget<T>, tokio::sync::mpsc::UnboundedReceiver<T>) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    (ChannelTarget(tx), rx)
}

/// A stream target for session events.
pub fn channel_sink() -> (
    ChannelTarget<SessionEvent>,
    tokio::sync::mpsc::UnboundedReceiver<SessionEvent>,
) {
    channel_target()
}

/// The next item, failing the test after 20 s.
pub async fn next_item<T>(rx: &mut tokio::sync::mpsc::UnboundedReceiver<T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), rx.recv())
        .await
        .expect("an item within 20 s")
        .expect("the stream is still open")
}

/// The next event, failing the test after 20 s.
pub async fn next_event(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<SessionEvent>,
) -> SessionEvent {
    next_item(rx).await
}

/// The next event of `kind`, skipping others, failing the test after 20 s.
pub async fn next_event_of(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<SessionEvent>,
    kind: tokenkeeper_frb::api::events::EventKind,
) -> SessionEvent {
    loop {
        let e = next_event(rx).await;
        if e.kind == kind {
            return e;
        }
    }
}

/// A session config for `channel`/`user`/`role` with every other setting at its default.
pub fn config(channel: &str, user: &str, role: Option<&str>) -> SessionConfig {
    SessionConfig {
        spec: SessionSpec {
            channel: channel.into(),
            user: user.into(),
            role: role.map(Into::into),
            ..Default::default()
        },
        ..Default::default()
    }
}
