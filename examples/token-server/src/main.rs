//! `tokenkeeper-server`: runs the reference backend until Ctrl-C.
//!
//! ```text
//! tokenkeeper-server [--addr 127.0.0.1:8080] [--db state.sqlite|postgres://…] [--token-ttl 60] [--no-rate-limit]
//! ```
//! Secrets default to random values; set them with the `TOKENKEEPER_*` environment variables
//! (see `--help`). The admin key is printed once at start when it was generated.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use tokenkeeper_server::{
    DEFAULT_MAX_CONNECTIONS, Database, RateLimit, Secrets, Server, ServerConfig,
};

/// The tokenkeeper reference backend (RTC, OAuth and room tokens; WebSocket room server).
#[derive(Debug, Parser)]
#[command(name = "tokenkeeper-server", version)]
struct Args {
    /// Listen address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// State: a SQLite file (created on first start), or a PostgreSQL URL
    /// (`postgres://user:password@host/db`) that several instances share. In memory when
    /// absent. Prefer the environment variable for a URL with a password.
    #[arg(long, env = "TOKENKEEPER_DB", hide_env_values = true)]
    db: Option<String>,
    /// Seconds a client has to send a request's headers (also the keep-alive idle limit).
    #[arg(long, default_value_t = tokenkeeper_server::DEFAULT_HEADER_READ_TIMEOUT.as_secs(), value_parser = clap::value_parser!(u64).range(1..=3600))]
    header_timeout: u64,
    /// Open HTTP connections at most (lowered to fit `ulimit -n`).
    #[arg(long, default_value_t = DEFAULT_MAX_CONNECTIONS)]
    max_connections: usize,
    /// Default RTC token lifetime in seconds.
    #[arg(long, default_value_t = 60)]
    token_ttl: u64,
    /// Room server warning lead in seconds.
    #[arg(long, default_value_t = 30)]
    warn_before: u64,
    /// Per-user rate limit of the RTC endpoint, requests per second.
    #[arg(long, default_value_t = 20.0)]
    rate_limit: f64,
    /// Per-user burst of the rate limit.
    #[arg(long, default_value_t = 40)]
    rate_burst: u32,
    /// Turns per-user rate limiting off (load tests with one user).
    #[arg(long)]
    no_rate_limit: bool,
    /// Admin key (Bearer for /admin); random when absent.
    #[arg(long, env = "TOKENKEEPER_ADMIN_KEY", hide_env_values = true)]
    admin_key: Option<String>,
    /// Digital Samba-style developer key; random when absent.
    #[arg(long, env = "TOKENKEEPER_DEVELOPER_KEY", hide_env_values = true)]
    developer_key: Option<String>,
    /// Agora App ID (32 hex).
    #[arg(long, env = "TOKENKEEPER_AGORA_APP_ID")]
    agora_app_id: Option<String>,
    /// Agora App Certificate (32 hex).
    #[arg(
        long,
        env = "TOKENKEEPER_AGORA_APP_CERTIFICATE",
        hide_env_values = true
    )]
    agora_app_certificate: Option<String>,
    /// ZEGO AppID.
    #[arg(long, env = "TOKENKEEPER_ZEGO_APP_ID")]
    zego_app_id: Option<u32>,
    /// ZEGO ServerSecret (32 characters).
    #[arg(long, env = "TOKENKEEPER_ZEGO_SERVER_SECRET", hide_env_values = true)]
    zego_server_secret: Option<String>,
    /// HS256 key of `vendor: "jwt"` tokens.
    #[arg(long, env = "TOKENKEEPER_JWT_KEY", hide_env_values = true)]
    jwt_key: Option<String>,
    /// HS256 key of OAuth access tokens.
    #[arg(long, env = "TOKENKEEPER_OAUTH_KEY", hide_env_values = true)]
    oauth_key: Option<String>,
    /// Tokio worker threads (default: one per core).
    #[arg(long)]
    workers: Option<usize>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    tokenkeeper_server::logging::init("info");
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = args.workers {
        rt.worker_threads(n.max(1));
    }
    let rt = match rt.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the tokio runtime");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(run(args))
}

async fn run(args: Args) -> ExitCode {
    let mut secrets = Secrets::generate();
    let admin_key_generated = args.admin_key.is_none();
    let developer_key_generated = args.developer_key.is_none();
    if let Some(v) = args.admin_key {
        secrets.admin_key = v;
    }
    if let Some(v) = args.developer_key {
        secrets.samba_developer_key = v;
    }
    if let Some(v) = args.agora_app_id {
        secrets.agora_app_id = v;
    }
    if let Some(v) = args.agora_app_certificate {
        secrets.agora_app_certificate = v;
    }
    if let Some(v) = args.zego_app_id {
        secrets.zego_app_id = v;
    }
    if let Some(v) = args.zego_server_secret {
        secrets.zego_server_secret = v;
    }
    if let Some(v) = args.jwt_key {
        secrets.jwt_key = v;
    }
    if let Some(v) = args.oauth_key {
        secrets.oauth_signing_key = v;
    }
    let config = ServerConfig {
        addr: args.addr,
        db: args.db.as_deref().map_or(Database::Memory, Database::parse),
        max_connections: args.max_connections,
        header_read_timeout: Duration::from_secs(args.header_timeout),
        token_ttl: Duration::from_secs(args.token_ttl.max(1)),
        room_warn_before: Duration::from_secs(args.warn_before),
        rate_limit: (!args.no_rate_limit).then_some(RateLimit {
            per_sec: args.rate_limit,
            burst: args.rate_burst,
        }),
        secrets: secrets.clone(),
        ..ServerConfig::default()
    };
    let server = match Server::start(config).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::from(2);
        }
    };
    // The operator needs generated keys to use the server at all: print them once on stdout
    // (not in the log).
    let mut banner = serde_json::json!({ "listening": server.base_url() });
    if admin_key_generated {
        banner["admin_key"] = secrets.admin_key.clone().into();
    }
    if developer_key_generated {
        banner["developer_key"] = secrets.samba_developer_key.clone().into();
    }
    #[allow(clippy::print_stdout)]
    {
        println!("{banner}");
    }
    if let Err(e) = tokio::signal::ctrl_c().await {
        tracing::error!(error = %e, "cannot wait for Ctrl-C; stopping");
    }
    tracing::info!("stopping");
    server.shutdown().await;
    ExitCode::SUCCESS
}
