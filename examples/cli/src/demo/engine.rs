//! Each demo member's "engine": an RTC engine as Agora's behaves, in front of the room server.
//!
//! - It joins with the member's first token and afterwards only takes tokens through the
//!   session's sink (`renew` over the room's WebSocket): no demo code forwards a token.
//! - It calls the session's "will expire" notification `lead` before the token it holds
//!   expires, and "request token" (`on_token_expired`) once it expires, as Agora's
//!   `onTokenPrivilegeWillExpire` and `onRequestToken` do.
//! - It counts what the summary reports: tokens applied, a token applied twice or an older one
//!   after a newer one (`duplicate_applies`), and the time it held an expired token.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::SinkExt;
use futures::stream::SplitSink;
use parking_lot::Mutex;
use serde_json::json;
use tokenkeeper::clock::Clock;
use tokenkeeper::lifecycle::{IssuedToken, Session, SinkError, TokenSink};
use tokio_tungstenite::tungstenite::Message;

use super::Socket;

/// What the engine counted.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct EngineStats {
    pub(crate) applies: u64,
    pub(crate) duplicate_applies: u64,
    pub(crate) expired_ms: u64,
}

#[derive(Default)]
struct Held {
    /// The token in the engine and when it expires (device wall clock, unix ms).
    token: Option<(IssuedToken, i64)>,
    /// Every token the engine was given (digests of their text).
    seen: HashSet<u64>,
    stats: EngineStats,
}

/// One member's engine.
pub(crate) struct Engine {
    clock: Arc<dyn Clock>,
    writer: tokio::sync::Mutex<Option<SplitSink<Socket, Message>>>,
    held: Mutex<Held>,
}

fn digest(token: &IssuedToken) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    token.token.expose().hash(&mut h);
    h.finish()
}

impl Engine {
    pub(crate) fn new(clock: Arc<dyn Clock>) -> Arc<Self> {
        Arc::new(Self {
            clock,
            writer: tokio::sync::Mutex::new(None),
            held: Mutex::new(Held::default()),
        })
    }

    /// `joinChannel(token)`: the room connection is up and holds `token`.
    pub(crate) async fn joined(&self, writer: SplitSink<Socket, Message>, token: &IssuedToken) {
        *self.writer.lock().await = Some(writer);
        self.hold(token);
    }

    /// Takes `token` into the engine, counting a repeat or an older token.
    fn hold(&self, token: &IssuedToken) {
        let mut held = self.held.lock();
        let older = held
            .token
            .as_ref()
            .is_some_and(|(t, _)| token.received_at_ms < t.received_at_ms);
        if !held.seen.insert(digest(token)) || older {
            held.stats.duplicate_applies += 1;
        }
        held.token = Some((token.clone(), token.expires_at_ms));
    }

    /// Leaves the room (closes the connection) if joined.
    pub(crate) async fn leave(&self) {
        if let Some(mut writer) = self.writer.lock().await.take() {
            let _ = writer
                .send(Message::text(json!({"type": "leave"}).to_string()))
                .await;
            let _ = writer.close().await;
        }
    }

    pub(crate) fn stats(&self) -> EngineStats {
        self.held.lock().stats
    }

    /// The engine's own clock: "will expire" `lead` before the held token's expiry, "request
    /// token" at expiry, and the time spent holding an expired token. Runs until `stop`.
    pub(crate) async fn callbacks(
        &self,
        session: &Session,
        lead: Duration,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        const TICK_MS: u64 = 50;
        let lead = i64::try_from(lead.as_millis()).unwrap_or(i64::MAX);
        let (mut warned, mut requested) = (None::<u64>, None::<u64>);
        loop {
            tokio::select! {
                () = self.clock.sleep(Duration::from_millis(TICK_MS)) => {}
                _ = stop.changed() => return,
            }
            let now = self.clock.now_unix_ms();
            let (token, expires) = {
                let mut held = self.held.lock();
                let Some((token, expires)) = held.token.clone() else {
                    continue;
                };
                if now >= expires {
                    held.stats.expired_ms += TICK_MS;
                }
                (token, expires)
            };
            let id = digest(&token);
            if now >= expires && requested != Some(id) {
                requested = Some(id);
                session.on_token_expired(None); // Agora's onRequestToken names no token
            } else if now >= expires - lead && now < expires && warned != Some(id) {
                warned = Some(id);
                session.on_token_will_expire(Some(token.token.expose()));
            }
        }
    }
}

#[async_trait::async_trait]
impl TokenSink for Engine {
    /// `engine.renewToken(token)`: an in-band renewal over the room connection.
    async fn apply(&self, token: &IssuedToken) -> Result<(), SinkError> {
        let mut guard = self.writer.lock().await;
        let Some(writer) = guard.as_mut() else {
            return Err(SinkError::new("not in the room yet"));
        };
        let renew = json!({"type": "renew", "token": token.token.expose()}).to_string();
        writer
            .send(Message::text(renew))
            .await
            .map_err(|e| SinkError::new(format!("room connection: {e}")))?;
        drop(guard);
        self.hold(token);
        self.held.lock().stats.applies += 1;
        Ok(())
    }
}
