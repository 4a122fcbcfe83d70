//! The HTTP accept loop: a connection cap, header and idle timeouts, the peer address for
//! throttling, and a graceful stop.
//!
//! `axum::serve` has neither a header read timeout nor a connection cap, so a slow client could
//! hold a connection for minutes and enough of them exhaust the open-file limit (then even
//! `/healthz` stops answering). Here each connection holds a permit; at the cap the loop stops
//! accepting (new clients wait in the listen backlog) and hyper closes any connection that does
//! not deliver its request headers within the header timeout, which frees permits quickly.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// File descriptors kept free for everything that is not a client connection (the listener,
/// the database and its pool, the log, tokio's own).
const RESERVED_FDS: u64 = 64;

/// `configured`, lowered to fit the process's open-file limit.
pub(crate) fn effective_max_connections(configured: usize) -> usize {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
    match limit {
        Some(n) => {
            let fit = usize::try_from(n.saturating_sub(RESERVED_FDS).max(8)).unwrap_or(usize::MAX);
            configured.clamp(1, fit.max(1))
        }
        None => configured.max(1),
    }
}

/// Timeouts and limits of the accept loop.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
}

/// Serves `app` on `listener` until `stop` turns true, then waits up to 10 s for open requests.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    let mut accept_errors: u64 = 0;
    loop {
        let permit = tokio::select! {
            p = Arc::clone(&permits).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            () = stopped(&mut stop) => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: back off briefly; the permit goes back.
                    accept_errors = accept_errors.saturating_add(1);
                    if accept_errors.is_power_of_two() {
                        tracing::warn!(error = %e, count = accept_errors, "cannot accept a connection");
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
            () = stopped(&mut stop) => break,
        };
        let _ = stream.set_nodelay(true);
        let svc = tower::ServiceExt::map_request(
            app.clone(),
            move |mut req: axum::extract::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
                req
            },
        );
        let conn = builder
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(svc))
            .with_upgrades();
        let mut conn_stop = stop.clone();
        tokio::spawn(async move {
            let mut conn = std::pin::pin!(conn);
            let ended = tokio::select! {
                r = conn.as_mut() => r,
                () = stopped(&mut conn_stop) => {
                    // finish the request in flight, then close
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = ended {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    // Every open connection holds a permit: having them all back means all are closed.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(Duration::from_secs(10), permits.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!("open connections did not finish within 10 s of the stop");
    }
}

/// Resolves once `stop` is true (or its sender is gone).
async fn stopped(stop: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await.is_ok();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_cap_fits_the_open_file_limit() {
        let n = effective_max_connections(usize::MAX);
        assert!(n >= 1);
        if let Some(limit) = rustix::process::getrlimit(rustix::process::Resource::Nofile).current {
            assert!(u64::try_from(n).unwrap() <= limit.saturating_sub(RESERVED_FDS).max(8));
        }
        assert_eq!(effective_max_connections(3), 3);
    }
}
