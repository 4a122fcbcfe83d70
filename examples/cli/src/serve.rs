//! `tokenkeeper serve`: the reference backend and room server (crate `tokenkeeper-server`) until
//! Ctrl-C.

use std::net::SocketAddr;
use std::process::ExitCode;

use tokenkeeper_server::{Database, Server, ServerConfig};

/// Arguments of `tokenkeeper serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Listen address; port 0 picks a free port (printed at start).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub addr: SocketAddr,
    /// Where the state lives: a SQLite file (created with its schema on first start), or a
    /// PostgreSQL URL `postgres://user:password@host/db` that several instances share. In memory
    /// when absent (state is lost on exit). Prefer the environment variable for a URL with a
    /// password.
    #[arg(long, env = "TOKENKEEPER_DB", hide_env_values = true)]
    pub db: Option<String>,
}

/// Starts the server, prints where it listens and how to administer it, and serves until Ctrl-C.
pub fn run(args: ServeArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("tokenkeeper serve: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(serve(args))
}

async fn serve(args: ServeArgs) -> ExitCode {
    // The server log goes to stderr (RUST_LOG, default info); the WebSocket and HTTP libraries
    // never log below INFO there, so no token reaches it.
    tokenkeeper_server::logging::init("info");
    let db = args.db.as_deref().map_or(Database::Memory, Database::parse);
    let config = ServerConfig {
        addr: args.addr,
        db: db.clone(),
        ..Default::default()
    };
    let server = match Server::start(config).await {
        Ok(server) => server,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("tokenkeeper serve: {e}");
            return ExitCode::from(2);
        }
    };
    let base = server.base_url();
    // The admin key is generated per start and needed to use the server at all: it goes to
    // stdout once (never to a log).
    println!("tokenkeeper reference backend listening on {base}");
    println!("  admin key      {}", server.secrets().admin_key);
    println!("  developer key  {}", server.secrets().samba_developer_key);
    match &db {
        Database::Memory => println!("  database       in memory (lost on exit; use --db FILE)"),
        other => println!("  database       {other}"),
    }
    println!("try:");
    println!(
        "  curl -s -H 'authorization: Bearer <admin key>' -H 'content-type: application/json' \
         -d '{{\"id\":\"alice\"}}' {base}/admin/users"
    );
    println!(
        "  curl -s -H 'authorization: Bearer <admin key>' -H 'content-type: application/json' \
         -d '{{\"channel\":\"live-1\",\"owner\":\"alice\"}}' {base}/admin/streams"
    );
    println!(
        "  curl -s -H 'authorization: Bearer <alice api_key>' -H 'content-type: application/json' \
         -d '{{\"vendor\":\"agora\",\"channel\":\"live-1\",\"role\":\"publisher\"}}' \
         {base}/api/v1/rtc/token"
    );
    println!("  curl -s -H 'authorization: Bearer <admin key>' {base}/admin/stats");
    println!("Ctrl-C stops the server.");
    if let Err(e) = tokio::signal::ctrl_c().await {
        tracing::error!(error = %e, "cannot wait for Ctrl-C; stopping");
    }
    tracing::info!("stopping");
    server.shutdown().await;
    ExitCode::SUCCESS
}
