//! The tokenkeeper reference backend: the server the SDK's tests, the demo and QA run against.
//!
//! It stands in for an app's backend on loopback, with its state in SQLite:
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

pub mod admin;
mod clock;
mod config;
mod db;
mod error;
mod jwt;
mod mint;
mod oauth;
pub mod room;
mod rtc;
mod samba;
mod state;
mod verify;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use parking_lot::RwLock;

pub use admin::AdminHandle;
pub use clock::ServerClock;
pub use config::{
    DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_TOKEN_TTL, DEFAULT_OAUTH_ACCESS_TTL,
    DEFAULT_OAUTH_CODE_TTL, DEFAULT_OAUTH_REFRESH_TTL, DEFAULT_RATE_LIMIT,
    DEFAULT_ROOM_JOIN_TIMEOUT, DEFAULT_ROOM_WARN_BEFORE, DEFAULT_TOKEN_TTL, RateLimit, Secrets,
    ServerConfig,
};
pub use db::{AuditEntry, AuditRow};
pub use error::ApiError;
pub use mint::Vendor;
pub use state::{Faults, FaultsUpdate};

use state::{AppState, Directory, Shared};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The database could not be opened or its schema created.
    #[error("cannot open the database: {0}; check --db (path and permissions)")]
    Db(#[from] db::DbError),
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
    /// Opens the database (creating its schema), loads users and streams into memory, binds
    /// `config.addr` and serves until [`RunningServer::shutdown`].
    pub async fn start(config: ServerConfig) -> Result<RunningServer, StartError> {
        let db = db::Db::open(config.db_path.as_deref())?;
        let mut dir = Directory::default();
        for u in db.load_users()? {
            dir.keys.insert(u.key_hash.clone(), u.id.clone());
            dir.uids.insert(u.uid, u.id.clone());
            dir.users.insert(
                u.id.clone(),
                state::User {
                    id: u.id,
                    uid: u.uid,
                    banned: u.banned,
                },
            );
        }
        for s in db.load_streams()? {
            dir.streams.insert(
                s.channel,
                state::Stream {
                    owner: s.owner,
                    live: s.live,
                },
            );
        }
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
        let (audit_tx, audit_thread) = db::spawn_audit_writer(db.clone());
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
        let st: Shared = Arc::new(AppState {
            clock: ServerClock::new(config.clock.clone()),
            db,
            dir: RwLock::new(dir),
            faults: RwLock::new(faults),
            counters: Default::default(),
            limiter: Default::default(),
            rooms: Default::default(),
            audit_tx: RwLock::new(Some(audit_tx)),
            shutdown: shutdown_rx,
            config,
        });
        let app = router(st.clone());
        let mut rx = st.shutdown.clone();
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = rx.wait_for(|stop| *stop).await;
            });
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "server stopped with an error");
            }
        });
        tracing::info!(addr = %local_addr, "tokenkeeper-server listening");
        Ok(RunningServer {
            st,
            local_addr,
            shutdown_tx,
            task,
            audit_thread: Some(audit_thread),
        })
    }
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
        .with_state(st)
}

/// A started server. Dropping it without [`RunningServer::shutdown`] leaves the server running
/// until the runtime stops.
pub struct RunningServer {
    st: Shared,
    local_addr: SocketAddr,
    shutdown_tx: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    audit_thread: Option<std::thread::JoinHandle<()>>,
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
        if let Some(t) = self.audit_thread.take() {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }
}
