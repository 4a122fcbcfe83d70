//! `tokenkeeper demo`: the reference backend and room server on loopback (in-process), and N
//! sessions that keep their tokens alive through the SDK.
//!
//! Each session is what an app does: a [`Keeper`] session with an [`HttpSource`] pointed at the
//! backend's RTC token endpoint and a sink into the member's [`Engine`], an RTC engine as
//! Agora's behaves. The member joins the room over WebSocket with its first token; from then on
//! the session hands every new token to the engine (an in-band renewal) and the engine's
//! callbacks ("will expire", "request token") are mere notifications: no demo code forwards a
//! token. The backend injects errors and latency; the room kicks any member whose token
//! expires. The summary counts what matters: disconnects (as the room server counted them),
//! tokens applied (never twice, never out of order), time without a valid token, in the
//! session and in the engine.

mod engine;
mod view;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokenkeeper::formats::Vendor;
use tokenkeeper::lifecycle::{EventKind, Keeper, Policy, Session, SessionConfig};
use tokenkeeper::source::SessionSpec;
use tokenkeeper::sources::{HttpSource, StaticAuth};
use tokenkeeper_server::admin::{NewStream, NewUser};
use tokenkeeper_server::{FaultsUpdate, RateLimit, Server, ServerConfig};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message;

use self::engine::{Engine, EngineStats};
use self::view::{Note, Summary, View};

/// Arguments of `tokenkeeper demo`.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Token format the backend issues.
    #[arg(long, value_name = "agora|zego|jwt", default_value = "agora")]
    pub vendor: Vendor,
    /// Sessions (room members) to keep alive; the first one is the stream's publisher.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=500))]
    pub sessions: u32,
    /// Lifetime of each token the backend issues, in seconds.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(2..=86_400))]
    pub token_ttl: u64,
    /// Renewal lead: the SDK renews this many seconds before expiry.
    #[arg(long, default_value_t = 3)]
    pub lead: u64,
    /// How long to run, in seconds.
    #[arg(long, default_value_t = 40, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub duration: u64,
    /// Fraction (0 to 0.9) of token requests the backend fails with 500/503.
    #[arg(long, default_value_t = 0.2)]
    pub fail_rate: f64,
    /// Latency added to every token request, in milliseconds.
    #[arg(long, default_value_t = 150)]
    pub latency_ms: u64,
    /// One JSON event per line and a final summary object instead of the live view.
    #[arg(long)]
    pub json: bool,
}

/// Runs the demo; exit code 0 when every session stayed connected, 1 when the room server
/// disconnected one for an expired token, 2 for bad arguments or a failure to start.
pub fn run(args: DemoArgs) -> ExitCode {
    if let Err(e) = check(&args) {
        eprintln!("tokenkeeper demo: {e}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("tokenkeeper demo: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(demo(args)) {
        Ok(summary) if summary.disconnects == 0 => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(1),
        Err(e) => {
            eprintln!("tokenkeeper demo: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn check(args: &DemoArgs) -> anyhow::Result<()> {
    if args.lead == 0 || args.lead >= args.token_ttl {
        bail!(
            "--lead {} must be at least 1 and shorter than --token-ttl {}",
            args.lead,
            args.token_ttl
        );
    }
    if !(0.0..=0.9).contains(&args.fail_rate) {
        bail!("--fail-rate {} must be between 0 and 0.9", args.fail_rate);
    }
    if args.latency_ms > 60_000 {
        bail!("--latency-ms {} must be at most 60000", args.latency_ms);
    }
    Ok(())
}

/// The channel every session joins; session 0 owns (publishes) it.
const CHANNEL: &str = "live-demo";

/// What a session task reports to the view.
#[derive(Debug)]
pub(crate) struct Report {
    pub session: usize,
    pub note: Note,
}

async fn demo(args: DemoArgs) -> anyhow::Result<Summary> {
    let server = Server::start(ServerConfig {
        token_ttl: Duration::from_secs(args.token_ttl),
        room_warn_before: Duration::from_secs(args.lead),
        // Generous per-user limit: the demo shows error handling, not throttling.
        rate_limit: Some(RateLimit {
            per_sec: 50.0,
            burst: 100,
        }),
        ..Default::default()
    })
    .await
    .context("cannot start the reference backend")?;
    let admin = server.admin();
    let mut keys = Vec::new();
    for i in 0..args.sessions as usize {
        let id = if i == 0 {
            "host".to_owned()
        } else {
            format!("viewer-{i}")
        };
        let user = admin
            .create_user(NewUser {
                id: Some(id.clone()),
                ..Default::default()
            })
            .await
            .map_err(|e| anyhow::anyhow!("cannot create user {id}: {}", e.message))?;
        keys.push((id, user.uid, user.api_key));
    }
    admin
        .create_stream(NewStream {
            channel: CHANNEL.into(),
            owner: "host".into(),
        })
        .await
        .map_err(|e| anyhow::anyhow!("cannot create the stream: {}", e.message))?;
    admin
        .update_faults(FaultsUpdate {
            error_rate: Some(args.fail_rate),
            latency_ms: Some(args.latency_ms),
            ..Default::default()
        })
        .map_err(|e| anyhow::anyhow!("cannot set the faults: {}", e.message))?;

    let policy = demo_policy(&args);
    let keeper = Keeper::builder()
        .policy(policy)
        .build()
        .context("cannot build the keeper")?;
    let clock = Arc::clone(keeper.clock());
    let base = server.base_url();
    let ws_base = base.replacen("http://", "ws://", 1);
    let endpoint = format!("{base}/api/v1/rtc/token");

    let names: Vec<String> = keys.iter().map(|(id, _, _)| id.clone()).collect();
    let mut view = View::new(&args, &names, &base, Arc::clone(&clock));
    let (report_tx, mut report_rx) = mpsc::unbounded_channel::<Report>();
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = Vec::new();
    let mut sessions = Vec::new();
    let mut engines = Vec::new();
    for (i, (_, uid, api_key)) in keys.into_iter().enumerate() {
        let role = if i == 0 { "publisher" } else { "subscriber" };
        let source = HttpSource::builder(&endpoint)
            .json_body(json!({
                "vendor": args.vendor.as_str(),
                "channel": "{channel}",
                "role": "{role}",
                "ttl_secs": args.token_ttl,
            }))
            .auth(Arc::new(StaticAuth::bearer(&api_key)))
            .build()
            .map_err(|e| anyhow::anyhow!("cannot configure the HTTP source: {e}"))?;
        let spec = SessionSpec::new(CHANNEL, uid.to_string()).with_role(role);
        let engine = Engine::new(Arc::clone(&clock));
        let config = SessionConfig::new(spec).with_sink(engine.clone());
        let session = keeper.open_session(config, Arc::new(source));
        sessions.push(session.clone());
        engines.push(engine.clone());
        let member = Member {
            i,
            session,
            engine,
            room_url: format!("{ws_base}/ws/rooms/{CHANNEL}"),
            lead: Duration::from_secs(args.lead),
            tx: report_tx.clone(),
            stop: stop_rx.clone(),
        };
        tasks.push(tokio::spawn(member.run()));
    }
    drop(report_tx);

    let deadline = tokio::time::sleep(Duration::from_secs(args.duration));
    tokio::pin!(deadline);
    let mut ticker = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            () = &mut deadline => break,
            report = report_rx.recv() => match report {
                Some(report) => view.note(report.session, report.note),
                None => break,
            },
            _ = ticker.tick() => view.tick(&sessions),
        }
    }
    let _ = stop_tx.send(true);
    // Drain what the sessions report while they leave the room.
    let drain = async {
        while let Some(report) = report_rx.recv().await {
            view.note(report.session, report.note);
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), drain).await;
    for task in tasks {
        let _ = task.await;
    }
    let stats = admin.stats();
    let engine_stats: Vec<EngineStats> = engines.iter().map(|e| e.stats()).collect();
    let summary = summarize(&args, &sessions, &engine_stats, &stats);
    for session in &sessions {
        session.close();
    }
    keeper.shutdown();
    server.shutdown().await;
    view.finish(&summary, &stats);
    Ok(summary)
}

/// The policy of the demo: the engine's defaults with the lead asked for. Retries are paced to
/// the tokens' lifetime and the lead grows when fetches fail by themselves (see
/// [`Policy`], "Deadline-aware retry").
fn demo_policy(args: &DemoArgs) -> Policy {
    Policy {
        renew_lead: Duration::from_secs(args.lead),
        ..Policy::default()
    }
}

fn summarize(
    args: &DemoArgs,
    sessions: &[Session],
    engines: &[EngineStats],
    stats: &Value,
) -> Summary {
    let counters: Vec<_> = sessions.iter().map(Session::counters).collect();
    let disconnects_by_reason = stats.get("disconnects").cloned().unwrap_or(Value::Null);
    Summary {
        sessions: sessions.len(),
        vendor: args.vendor.as_str(),
        duration_s: args.duration,
        token_ttl_s: args.token_ttl,
        lead_s: args.lead,
        fail_rate: args.fail_rate,
        latency_ms: args.latency_ms,
        fetches: counters.iter().map(|c| c.fetches).sum(),
        renewals: counters.iter().map(|c| c.renewals).sum(),
        fetch_failures: counters.iter().map(|c| c.failures).sum(),
        emergency_fetches: counters.iter().map(|c| c.emergency_fetches).sum(),
        expired_ms: counters.iter().map(|c| c.expired_ms).sum(),
        applies: engines.iter().map(|e| e.applies).sum(),
        duplicate_applies: engines.iter().map(|e| e.duplicate_applies).sum(),
        engine_expired_ms: engines.iter().map(|e| e.expired_ms).sum(),
        disconnects: disconnects_by_reason
            .get("token_expired")
            .and_then(Value::as_u64)
            .unwrap_or(0),
        disconnects_by_reason,
        room_renewals: stats
            .pointer("/room/renewals")
            .and_then(Value::as_u64)
            .unwrap_or(0),
        errors_injected: stats
            .get("errors_injected")
            .and_then(Value::as_u64)
            .unwrap_or(0),
    }
}

pub(crate) type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// One room member: a session, its engine, and the room connection.
struct Member {
    i: usize,
    session: Session,
    engine: Arc<Engine>,
    room_url: String,
    lead: Duration,
    tx: mpsc::UnboundedSender<Report>,
    stop: watch::Receiver<bool>,
}

impl Member {
    fn send(&self, note: Note) {
        let _ = self.tx.send(Report {
            session: self.i,
            note,
        });
    }

    /// Joins with the first token, then runs the engine's callbacks and shows the session's
    /// events and the room's messages until stopped.
    async fn run(mut self) {
        let mut events = self.session.subscribe();
        // `token()` waits across failed attempts (the failures reach the view as events) until
        // the session has a token, a fatal error, or the policy's wait limit passed.
        let first = tokio::select! {
            first = self.session.token() => first,
            _ = self.stop.changed() => return,
        };
        let first = match first {
            Ok(first) => first,
            Err(e) => {
                return self.send(Note::Fatal {
                    what: "no first token".into(),
                    detail: e.to_string(),
                });
            }
        };
        let (mut writer, mut reader) =
            match tokio_tungstenite::connect_async(self.room_url.as_str()).await {
                Ok((socket, _)) => socket.split(),
                Err(e) => {
                    return self.send(Note::Room {
                        kind: "connect_failed".into(),
                        detail: e.to_string(),
                    });
                }
            };
        let join = json!({"type": "join", "token": first.token.expose()}).to_string();
        if writer.send(Message::text(join)).await.is_err() {
            return self.send(Note::Room {
                kind: "connect_failed".into(),
                detail: "send failed".into(),
            });
        }
        self.engine.joined(writer, &first).await;
        let callbacks = self
            .engine
            .callbacks(&self.session, self.lead, self.stop.clone());
        tokio::pin!(callbacks);
        let mut in_room = true;
        loop {
            tokio::select! {
                () = &mut callbacks => break,
                event = events.recv() => {
                    let Some(event) = event else { break };
                    if let Some(note) = note_of(event.kind) {
                        self.send(note);
                    }
                }
                message = reader.next(), if in_room => match message {
                    Some(Ok(Message::Text(text))) => {
                        let v: Value = serde_json::from_str(text.as_str()).unwrap_or(Value::Null);
                        let kind = v.get("type").and_then(Value::as_str).unwrap_or("?").to_owned();
                        let detail = v
                            .get("reason")
                            .or_else(|| v.get("message"))
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned();
                        self.send(Note::Room { kind, detail });
                    }
                    Some(Ok(Message::Close(frame))) => {
                        in_room = false;
                        let detail = frame.map(|f| f.reason.to_string()).unwrap_or_default();
                        self.send(Note::Room { kind: "closed".into(), detail });
                    }
                    Some(Ok(_)) => {}
                    None | Some(Err(_)) => {
                        in_room = false;
                        self.send(Note::Room { kind: "closed".into(), detail: "connection lost".into() });
                    }
                },
            }
        }
        if in_room {
            self.engine.leave().await;
        }
        self.send(Note::Left);
    }
}

/// What the view shows of a session event.
fn note_of(kind: EventKind) -> Option<Note> {
    Some(match kind {
        EventKind::Issued {
            reason,
            expires_at_ms,
            fetch_latency,
            ..
        } => Note::Issued {
            reason: reason.as_str(),
            expires_at_ms,
            latency: fetch_latency,
        },
        EventKind::Applied { .. } => Note::Applied,
        EventKind::ApplyFailed { attempt, message } => Note::ApplyFailed {
            attempt,
            detail: message,
        },
        EventKind::FetchFailed {
            attempt,
            error,
            next_retry_at_ms,
            ..
        } => Note::FetchFailed {
            attempt,
            detail: error.to_string(),
            next_retry_at_ms,
        },
        EventKind::WillExpire { .. } => Note::Renewing,
        EventKind::Expired { .. } => Note::Expired,
        EventKind::Forbidden { reason } => Note::Fatal {
            what: "forbidden".into(),
            detail: reason,
        },
        EventKind::ReauthRequired { message } => Note::Fatal {
            what: "re-auth required".into(),
            detail: message,
        },
        EventKind::Failed { error } => Note::Fatal {
            what: "failed".into(),
            detail: error.to_string(),
        },
        _ => return None,
    })
}
