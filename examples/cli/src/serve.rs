//! `tokenkeeper serve`: the reference backend and room server (crate `tokenkeeper-server`) until
//! Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use tokenkeeper_server::{Server, ServerConfig};

/// Arguments of `tokenkeeper serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Listen address; port 0 picks a free port (printed at start).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub addr: SocketAddr,
    /// SQLite database file, created with its schema on first start. In memory when absent
    /// (state is lost on exit).
    #[arg(long)]
    pub db: Option<PathBuf>,
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
    let config = ServerConfig {
        addr: args.addr,
        db_path: args.db.clone(),
        ..Default::default()
    };
    let server = match Server::start(config).await {
        Ok(server) => server,
        Err(e) => {
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
    println!(
        "  database       {}",
        args.db
            .as_ref()
            .map_or("in memory (lost on exit; use --db FILE)".to_owned(), |p| p
                .display()
                .to_string())
    );
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
        eprintln!("tokenkeeper serve: cannot wait for Ctrl-C ({e}); stopping");
    }
    server.shutdown().await;
    ExitCode::SUCCESS
}
