//! The tokenkeeper reference backend: the server the SDK's tests, the demo and QA run against.
//!
//! It stands in for an app's backend on loopback, with its state in SQLite (one instance) or
//! PostgreSQL (several instances behind a load balancer, see [`Database`]):
//!
//! - `POST /api/v1/rtc/token` and `/api/v1/rtc/token/refresh`: Agora 007, ZEGO Token04 and JWT
//!   tokens with access checks on every call (user exists and is not banned, the stream is live,
//!   only its owner publishes), per-user rate limiting and an audit log without tokens.
//! - `POST /oauth/token`: RFC 6749 `authorization_code` and `refresh_token` grants with client
//!   authentication and single-use, rotating refresh tokens.
//! - `POST /api/v1/rooms/{room}/token`: Digital Samba-style room tokens behind a developer key.
//! - `GET /ws/rooms/{room}`: a WebSocket room that admits a valid token, warns before expiry,
//!   accepts an in-band renew and disconnects members whose token expired (see [`room`]).
//! - `/admin/...`: users, streams, bans, fault injection (error rate, latency, clock skew), stats.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use tokenkeeper_server::{Server, ServerConfig, admin::{NewStream, NewUser}};
//!
//! let server = Server::start(ServerConfig::default()).await?;
//! let admin = server.admin();
//! let alice = admin.create_user(NewUser { id: Some("alice".into()), ..Default::default() }).await?;
//! admin.create_stream(NewStream { channel: "live-1".into(), owner: "alice".into() }).await?;
//! // POST http://{addr}/api/v1/rtc/token with `Authorization: Bearer {alice.api_key}` and
//! // {"vendor":"agora","channel":"live-1","role":"publisher"}.
//! println!("listening on {}", server.local_addr());
//! server.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! The endpoints, their bodies and status codes are listed in `examples/token-server/README.md`.

// Integer arithmetic that could overflow on client input must be checked or saturating.
#![warn(clippy::arithmetic_side_effects)]

pub mod admin;
mod clock;
mod config;
mod error;
mod jwt;
mod limiter;
pub mod logging;
mod mint;
mod oauth;
pub mod room;
mod rtc;
mod samba;
mod secret;
mod serve;
mod state;
mod store;
mod verify;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use parking_lot::RwLock;

pub use admin::AdminHandle;
pub use clock::ServerClock;
pub use config::{
    DEFAULT_AUTH_FAILURE_LIMIT, DEFAULT_BODY_READ_TIMEOUT, DEFAULT_HEADER_READ_TIMEOUT,
    DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_TOKEN_TTL,
    DEFAULT_OAUTH_ACCESS_TTL, DEFAULT_OAUTH_CODE_TTL, DEFAULT_OAUTH_REFRESH_TTL,
    DEFAULT_RATE_LIMIT, DEFAULT_ROOM_JOIN_TIMEOUT, DEFAULT_ROOM_WARN_BEFORE, DEFAULT_TOKEN_TTL,
    RateLimit, Secrets, ServerConfig,
};
pub use error::ApiError;
pub use mint::Vendor;
pub use state::{Faults, FaultsUpdate};
pub use store::{AUDIT_FIELD_MAX, AuditEntry, AuditRow, Database, StoreError};

use state::{AppState, Shared};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The database could not be opened, reached or migrated.
    #[error(
        "cannot open the database: {0}; check --db (path and permissions, or the PostgreSQL URL)"
    )]
    Db(#[from] StoreError),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}; pick another --addr or port 0")]
    Bind {
        /// The address that was asked for.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Starts servers.
#[derive(Debug)]
pub struct Server;

impl Server {
    /// Opens the database (creating or migrating its schema), binds `config.addr` and serves
    /// until [`RunningServer::shutdown`].
    pub async fn start(config: ServerConfig) -> Result<RunningServer, StartError> {
        let store = store::open(&config.db).await?;
        let listener = tokio::net::TcpListener::bind(config.addr)
            .await
            .map_err(|source| StartError::Bind {
                addr: config.addr,
                source,
            })?;
        let local_addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: config.addr,
            source,
        })?;
        let (audit_tx, audit_task) = state::spawn_audit_writer(Arc::clone(&store));
        let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
        let faults = Faults {
            error_rate: 0.0,
            latency_ms: 0,
            clock_skew_ms: 0,
            token_ttl_secs: config.token_ttl.as_secs().max(1),
            room_warn_before_ms: u64::try_from(config.room_warn_before.as_millis())
                .unwrap_or(u64::MAX),
            rate_limit: config.rate_limit,
        };
        let limits = serve::Limits {
            max_connections: serve::effective_max_connections(config.max_connections),
            header_read_timeout: config.header_read_timeout,
        };
        let st: Shared = Arc::new(AppState {
            clock: ServerClock::new(config.clock.clone()),
            store: Arc::clone(&store),
            faults: RwLock::new(faults),
            counters: Default::default(),
            rooms: Default::default(),
            audit_tx: RwLock::new(Some(audit_tx)),
            shutdown: shutdown_rx,
            instance_id: config::random_string(12),
            recent_failures: Default::default(),
            config,
        });
        start_kick_listener(&st).await?;
        spawn_maintenance(&st);
        let app = router(st.clone());
        let task = tokio::spawn(serve::serve(listener, app, limits, st.shutdown.clone()));
        tracing::info!(
            addr = %local_addr,
            db = %st.config.db,
            max_connections = limits.max_connections,
            "tokenkeeper-server listening"
        );
        Ok(RunningServer {
            st,
            local_addr,
            shutdown_tx,
            task,
            audit_task: Some(audit_task),
        })
    }
}

/// Applies room kicks published by the other instances (PostgreSQL only).
async fn start_kick_listener(st: &Shared) -> Result<(), StartError> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<store::KickNotice>();
    st.store.listen_kicks(tx).await?;
    let weak = Arc::downgrade(st);
    tokio::spawn(async move {
        while let Some(n) = rx.recv().await {
            let Some(st) = weak.upgrade() else { return };
            if n.origin == st.instance_id {
                continue;
            }
            let kicked = match n.what.as_str() {
                "user" => st.rooms.kick_user(&n.id),
                "room" => st.rooms.kick_room(&n.id),
                _ => 0,
            };
            tracing::debug!(what = %n.what, kicked, "applied a kick from another instance");
        }
    });
    Ok(())
}

/// Drops stale rate-limit buckets and expired codes once a minute.
fn spawn_maintenance(st: &Shared) {
    let weak = Arc::downgrade(st);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        tick.tick().await;
        loop {
            tick.tick().await;
            let Some(st) = weak.upgrade() else { return };
            if *st.shutdown.borrow() {
                return;
            }
            if let Err(e) = st.store.maintain(st.clock.real_now_ms()).await {
                tracing::warn!(error = %e, "maintenance failed");
            }
        }
    });
}

/// Logs every request at DEBUG (method, path without the query, status, time) and every
/// server error at WARN. Headers, query strings and bodies are never logged: they carry
/// credentials.
async fn access_log(
    axum::extract::State(st): axum::extract::State<Shared>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let method = req.method().clone();
    let path: String = req.uri().path().chars().take(128).collect();
    let started = st.config.clock.monotonic();
    let resp = next.run(req).await;
    let status = resp.status().as_u16();
    let ms = st
        .config
        .clock
        .monotonic()
        .saturating_sub(started)
        .as_millis();
    if status >= 500 {
        tracing::warn!(%method, %path, status, ms, "request failed");
    } else {
        tracing::debug!(%method, %path, status, ms, "request");
    }
    resp
}

fn router(st: Shared) -> Router {
    let admin = Router::new()
        .route("/users", post(admin::post_user))
        .route("/users/{id}/ban", post(admin::ban_user))
        .route("/users/{id}/unban", post(admin::unban_user))
        .route("/streams", post(admin::post_stream))
        .route("/streams/{channel}/end", post(admin::end_stream_route))
        .route("/faults", get(admin::get_faults).put(admin::put_faults))
        .route("/stats", get(admin::get_stats))
        .route("/oauth/clients", post(admin::post_client))
        .route("/oauth/codes", post(admin::post_code))
        .route("/oauth/revoke", post(admin::post_revoke))
        .route("/audit", get(admin::get_audit))
        .route_layer(axum::middleware::from_fn_with_state(
            st.clone(),
            admin::require_admin,
        ));
    let max_body = st.config.max_body_bytes;
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/api/v1/rtc/token", post(rtc::issue))
        .route("/api/v1/rtc/token/refresh", post(rtc::refresh))
        .route("/api/v1/rooms/{room}/token", post(samba::room_token))
        .route("/oauth/token", post(oauth::token))
        .route("/ws/rooms/{room}", get(room::ws))
        .nest("/admin", admin)
        .fallback(error::not_found_route)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn_with_state(st.clone(), access_log))
        .with_state(st)
}

/// A started server. Dropping it without [`RunningServer::shutdown`] leaves the server running
/// until the runtime stops.
pub struct RunningServer {
    st: Shared,
    local_addr: SocketAddr,
    shutdown_tx: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    audit_task: Option<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for RunningServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningServer")
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

impl RunningServer {
    /// The bound address (with the real port when the config asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `http://{local_addr}`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.local_addr)
    }

    /// In-process admin operations.
    pub fn admin(&self) -> AdminHandle {
        AdminHandle {
            st: self.st.clone(),
        }
    }

    /// The secrets in use (to verify issued tokens, or to call the admin/developer endpoints).
    pub fn secrets(&self) -> &Secrets {
        &self.st.config.secrets
    }

    /// The server clock (real time + injected skew).
    pub fn clock(&self) -> &ServerClock {
        &self.st.clock
    }

    /// Stops accepting requests, closes room connections (`server_shutdown`), waits for
    /// in-flight requests and writes the queued audit rows.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown_tx.send(true);
        let _ = (&mut self.task).await;
        self.st.flush_audit().await;
        self.st.audit_tx.write().take();
        if let Some(t) = self.audit_task.take() {
            let _ = t.await;
        }
        tracing::info!(addr = %self.local_addr, "tokenkeeper-server stopped");
    }
}
