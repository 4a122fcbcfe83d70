//! Room kicks across instances: `NOTIFY` on a ban or stream end, one `LISTEN` connection per
//! instance that reconnects when it is lost.

use std::time::Duration;

use futures::StreamExt;
use tokio_postgres::NoTls;

use super::pg;
use crate::store::{KickNotice, StoreResult};

/// The `LISTEN`/`NOTIFY` channel of room kicks.
pub(super) const KICK_CHANNEL: &str = "tokenkeeper_kicks";

/// Connects and `LISTEN`s (so a started server is already listening), then forwards every
/// notice to `tx` from a task that reconnects after a lost connection, until `tx` closes.
pub(super) async fn listen(
    config: tokio_postgres::Config,
    tx: tokio::sync::mpsc::UnboundedSender<KickNotice>,
) -> StoreResult<()> {
    // The first connection is made here, so a server that started is already listening.
    let first = listen_once(&config).await?;
    tokio::spawn(async move {
        let mut session = Some(first);
        loop {
            if let Some((client, mut messages)) = session.take() {
                while let Some(msg) = messages.next().await {
                    match msg {
                        Ok(tokio_postgres::AsyncMessage::Notification(n)) => {
                            if let Ok(notice) = serde_json::from_str(n.payload()) {
                                if tx.send(notice).is_err() {
                                    return;
                                }
                            }
                        }
                        Ok(_) => {}
                        Err(e) => {
                            tracing::warn!(error = %pg("listen")(e), "kick listener lost its connection; reconnecting");
                            break;
                        }
                    }
                }
                drop(client);
            }
            if tx.is_closed() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
            match listen_once(&config).await {
                Ok(s) => session = Some(s),
                Err(e) => {
                    tracing::warn!(error = %e, "kick listener cannot reconnect; retrying")
                }
            }
        }
    });
    Ok(())
}

type Messages = futures::stream::BoxStream<
    'static,
    Result<tokio_postgres::AsyncMessage, tokio_postgres::Error>,
>;

/// Opens a dedicated connection and `LISTEN`s on the kick channel.
async fn listen_once(
    config: &tokio_postgres::Config,
) -> StoreResult<(tokio_postgres::Client, Messages)> {
    let (client, mut connection) = config.connect(NoTls).await.map_err(pg("listen"))?;
    let messages: Messages =
        futures::stream::poll_fn(move |cx| connection.poll_message(cx)).boxed();
    // The connection must be polled for LISTEN to complete: drive it from a forwarding task.
    let (fwd_tx, fwd_rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = messages;
        while let Some(m) = messages.next().await {
            if fwd_tx.send(m).is_err() {
                return;
            }
        }
    });
    client
        .batch_execute(&format!("LISTEN {KICK_CHANNEL}"))
        .await
        .map_err(pg("listen"))?;
    let rx = tokio_stream_from(fwd_rx);
    Ok((client, rx))
}

fn tokio_stream_from<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::UnboundedReceiver<T>,
) -> futures::stream::BoxStream<'static, T> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx)).boxed()
}
