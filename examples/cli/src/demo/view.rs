//! What `tokenkeeper demo` shows: a live view (indicatif bars) on a terminal, plain lines when
//! the output is not a terminal, or JSON lines with `--json`.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use serde_json::{Value, json};
use tokenkeeper::clock::Clock;
use tokenkeeper::lifecycle::{Session, SessionState};

use super::DemoArgs;

/// Something a session did.
#[derive(Debug)]
pub(crate) enum Note {
    /// A token was accepted.
    Issued {
        reason: &'static str,
        expires_at_ms: i64,
        latency: Duration,
    },
    /// A fetch failed; the SDK retries at `next_retry_at_ms`.
    FetchFailed {
        attempt: u32,
        detail: String,
        next_retry_at_ms: i64,
    },
    /// The session handed a new token to the member's engine.
    Applied,
    /// The engine did not take a token; the session retries.
    ApplyFailed { attempt: u32, detail: String },
    /// Scheduled renewal started.
    Renewing,
    /// No valid token (should not happen in a healthy run).
    Expired,
    /// The session stopped for good (revoked, re-auth, misconfigured).
    Fatal { what: String, detail: String },
    /// A room message (`joined`, `renewed`, `will_expire`, `kicked`, `closed`, `error`…).
    Room { kind: String, detail: String },
    /// The member left the room at the end of the run.
    Left,
}

/// The final numbers (the `summary` object of `--json`).
#[derive(Debug, Serialize)]
pub(crate) struct Summary {
    pub sessions: usize,
    pub vendor: &'static str,
    pub duration_s: u64,
    pub token_ttl_s: u64,
    pub lead_s: u64,
    pub fail_rate: f64,
    pub latency_ms: u64,
    pub fetches: u64,
    pub renewals: u64,
    pub fetch_failures: u64,
    pub emergency_fetches: u64,
    /// Total time any session held no valid token after its first one.
    pub expired_ms: u64,
    /// Tokens the sessions handed to their engines (after each member's join token).
    pub applies: u64,
    /// A token handed to the same engine twice, or an older one after a newer one.
    pub duplicate_applies: u64,
    /// Total time any engine held an expired token.
    pub engine_expired_ms: u64,
    /// Members the room server kicked because their token expired.
    pub disconnects: u64,
    /// Every room disconnect by reason, as the room server counted them.
    pub disconnects_by_reason: Value,
    /// In-band renewals the room server accepted.
    pub room_renewals: u64,
    /// Token requests the backend failed on purpose.
    pub errors_injected: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Json,
    Live,
    Plain,
}

#[derive(Debug)]
struct Row {
    name: String,
    expires_at_ms: i64,
    lifetime_ms: i64,
    renewals: u64,
    failures: u64,
    room: String,
    fatal: Option<String>,
}

/// The demo's output.
pub(crate) struct View {
    mode: Mode,
    clock: Arc<dyn Clock>,
    started_ms: i64,
    rows: Vec<Row>,
    multi: Option<MultiProgress>,
    header: Option<ProgressBar>,
    bars: Vec<ProgressBar>,
    duration_s: u64,
    last_status_ms: i64,
}

impl std::fmt::Debug for View {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("View")
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

/// `HTTP 503`-style short form of an error message for the live view.
fn short(detail: &str) -> String {
    if let Some(at) = detail.find("HTTP ") {
        let code: String = detail[at..].chars().take(8).collect();
        let said = detail
            .split('"')
            .nth(1)
            .map(|s| s.split(':').next().unwrap_or(s).to_owned())
            .unwrap_or_default();
        return if said.is_empty() {
            code
        } else {
            format!("{code} {said}")
        };
    }
    let mut s: String = detail.chars().take(70).collect();
    if detail.chars().count() > 70 {
        s.push('…');
    }
    s
}

impl View {
    pub(crate) fn new(
        args: &DemoArgs,
        names: &[String],
        base: &str,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let mode = if args.json {
            Mode::Json
        } else if std::io::stdout().is_terminal() {
            Mode::Live
        } else {
            Mode::Plain
        };
        let started_ms = clock.now_unix_ms();
        let rows = names
            .iter()
            .map(|name| Row {
                name: name.clone(),
                expires_at_ms: 0,
                lifetime_ms: 1,
                renewals: 0,
                failures: 0,
                room: "connecting".into(),
                fatal: None,
            })
            .collect();
        let mut view = Self {
            mode,
            clock,
            started_ms,
            rows,
            multi: None,
            header: None,
            bars: Vec::new(),
            duration_s: args.duration,
            last_status_ms: started_ms,
        };
        match mode {
            Mode::Json => view.json(json!({
                "type": "start",
                "backend": base,
                "vendor": args.vendor.as_str(),
                "sessions": names.len(),
                "token_ttl_s": args.token_ttl,
                "lead_s": args.lead,
                "duration_s": args.duration,
                "fail_rate": args.fail_rate,
                "latency_ms": args.latency_ms,
            })),
            Mode::Live | Mode::Plain => {
                println!(
                    "tokenkeeper demo: {} sessions keep {} tokens alive in one live room",
                    names.len(),
                    args.vendor.as_str()
                );
                println!(
                    "  backend  {base} (reference server, in-process) issues {} s tokens;",
                    args.token_ttl
                );
                println!(
                    "           {:.0}% of token requests fail on purpose (500/503), each takes +{} ms",
                    args.fail_rate * 100.0,
                    args.latency_ms
                );
                println!(
                    "  room     members join over WebSocket; the room kicks anyone whose token expires"
                );
                println!(
                    "  SDK      renews each token ~{} s before expiry, retries failures with backoff that",
                    args.lead
                );
                println!(
                    "           fits the time left, and hands each fresh token to the room (in-band renew)"
                );
                println!(
                    "  columns  time left on the current token (bar) · state · renewals · failed fetches · room"
                );
                println!(
                    "  goal     0 disconnects and 0 ms without a valid token after {} s",
                    args.duration
                );
                println!();
            }
        }
        if mode == Mode::Live {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stdout_with_hz(10));
            let header = multi.add(ProgressBar::new(args.duration * 1000));
            header.set_style(
                ProgressStyle::with_template("{prefix:>9} {bar:16.cyan/blue} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            header.set_prefix("elapsed");
            let style = ProgressStyle::with_template("{prefix:>9} {bar:16.green/red} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("█▓░");
            for row in &view.rows {
                let bar = multi.add(ProgressBar::new(1000));
                bar.set_style(style.clone());
                bar.set_prefix(row.name.clone());
                bar.set_message("fetching the first token…");
                view.bars.push(bar);
            }
            view.header = Some(header);
            view.multi = Some(multi);
        }
        view
    }

    fn elapsed_s(&self) -> f64 {
        (self.clock.now_unix_ms() - self.started_ms) as f64 / 1000.0
    }

    fn json(&self, mut value: Value) {
        value["t_ms"] = json!(self.clock.now_unix_ms() - self.started_ms);
        println!("{value}");
    }

    /// A line above the live bars, or a plain line.
    fn line(&self, text: String) {
        let text = format!("{:>6.1}s  {text}", self.elapsed_s());
        match &self.multi {
            Some(multi) => {
                let _ = multi.println(text);
            }
            None => println!("{text}"),
        }
    }

    pub(crate) fn note(&mut self, session: usize, note: Note) {
        let now = self.clock.now_unix_ms();
        let Some(row) = self.rows.get_mut(session) else {
            return;
        };
        let name = row.name.clone();
        match note {
            Note::Issued {
                reason,
                expires_at_ms,
                latency,
            } => {
                if reason != "initial" {
                    row.renewals += 1;
                }
                row.expires_at_ms = expires_at_ms;
                row.lifetime_ms = (expires_at_ms - now).max(1);
                let left = row.lifetime_ms;
                match self.mode {
                    Mode::Json => self.json(json!({
                        "type": "issued", "session": name, "reason": reason,
                        "expires_in_ms": left, "latency_ms": latency.as_millis(),
                    })),
                    Mode::Plain => self.line(format!(
                        "{name:<10} token issued ({reason}), valid {:.1} s, fetched in {} ms",
                        left as f64 / 1000.0,
                        latency.as_millis()
                    )),
                    Mode::Live => {}
                }
            }
            Note::FetchFailed {
                attempt,
                detail,
                next_retry_at_ms,
            } => {
                row.failures += 1;
                let retry_in = (next_retry_at_ms - now).max(0);
                match self.mode {
                    Mode::Json => self.json(json!({
                        "type": "fetch_failed", "session": name, "attempt": attempt,
                        "retry_in_ms": retry_in, "error": detail,
                    })),
                    _ => self.line(format!(
                        "{name:<10} fetch failed ({}), attempt {attempt}; SDK retries in {:.1} s",
                        short(&detail),
                        retry_in as f64 / 1000.0
                    )),
                }
            }
            Note::Renewing => {
                if self.mode == Mode::Json {
                    self.json(json!({"type": "renewing", "session": name}));
                }
            }
            Note::Applied => match self.mode {
                Mode::Json => self.json(json!({"type": "applied", "session": name})),
                Mode::Plain => self.line(format!("{name:<10} engine took the new token")),
                Mode::Live => {}
            },
            Note::ApplyFailed { attempt, detail } => match self.mode {
                Mode::Json => self.json(json!({
                    "type": "apply_failed", "session": name, "attempt": attempt, "detail": detail,
                })),
                _ => self.line(format!(
                    "{name:<10} engine did not take the token (attempt {attempt}: {detail}); retrying"
                )),
            },
            Note::Expired => match self.mode {
                Mode::Json => self.json(json!({"type": "expired", "session": name})),
                _ => self.line(format!("{name:<10} token EXPIRED before a new one arrived")),
            },
            Note::Fatal { what, detail } => {
                row.fatal = Some(what.clone());
                match self.mode {
                    Mode::Json => self.json(json!({
                        "type": "stopped", "session": name, "what": what, "detail": detail,
                    })),
                    _ => self.line(format!("{name:<10} stopped: {what}: {}", short(&detail))),
                }
            }
            Note::Room { kind, detail } => {
                row.room = match kind.as_str() {
                    "joined" | "renewed" => "in room".into(),
                    "will_expire" => "warned".into(),
                    "kicked" => format!("KICKED: {detail}"),
                    "closed" if row.room.starts_with("KICKED") => row.room.clone(),
                    "closed" => "disconnected".into(),
                    _ => row.room.clone(),
                };
                let quiet = matches!(kind.as_str(), "renewed" | "pong");
                match self.mode {
                    Mode::Json => self.json(json!({
                        "type": "room", "session": name, "event": kind, "detail": detail,
                    })),
                    Mode::Plain if !quiet => {
                        self.line(format!("{name:<10} room: {kind} {detail}"));
                    }
                    Mode::Live if kind == "kicked" || kind == "joined" => {
                        self.line(format!("{name:<10} room: {kind} {detail}"));
                    }
                    _ => {}
                }
            }
            Note::Left => {
                row.room = "left".into();
                if self.mode == Mode::Json {
                    self.json(json!({"type": "left", "session": name}));
                }
            }
        }
    }

    /// Redraws the live bars (and prints a status line every 5 s in plain mode).
    pub(crate) fn tick(&mut self, sessions: &[Session]) {
        let now = self.clock.now_unix_ms();
        match self.mode {
            Mode::Live => {
                if let Some(header) = &self.header {
                    let elapsed = u64::try_from(now - self.started_ms).unwrap_or(0);
                    header.set_position(elapsed.min(self.duration_s * 1000));
                    let renewals: u64 = self.rows.iter().map(|r| r.renewals).sum();
                    let failures: u64 = self.rows.iter().map(|r| r.failures).sum();
                    header.set_message(format!(
                        "{:.0}/{} s  renewals {renewals}  failed fetches {failures} (retried)",
                        elapsed as f64 / 1000.0,
                        self.duration_s
                    ));
                }
                for ((row, bar), session) in self.rows.iter().zip(&self.bars).zip(sessions) {
                    let left = (row.expires_at_ms - now).max(0);
                    let state = match (&row.fatal, session.state()) {
                        (Some(what), _) => what.clone(),
                        (None, state) => state_name(state).to_owned(),
                    };
                    bar.set_length(u64::try_from(row.lifetime_ms).unwrap_or(1).max(1));
                    bar.set_position(u64::try_from(left).unwrap_or(0));
                    bar.set_message(format!(
                        "{:>4.1}s left {state:<8} renewed {:>3} failed {:>2} {}",
                        left as f64 / 1000.0,
                        row.renewals,
                        row.failures,
                        row.room
                    ));
                }
            }
            Mode::Plain if now - self.last_status_ms >= 5_000 => {
                self.last_status_ms = now;
                let valid = sessions
                    .iter()
                    .filter(|s| matches!(s.state(), SessionState::Valid | SessionState::Renewing))
                    .count();
                let renewals: u64 = self.rows.iter().map(|r| r.renewals).sum();
                let failures: u64 = self.rows.iter().map(|r| r.failures).sum();
                self.line(format!(
                    "status: {valid}/{} sessions hold a valid token; renewals {renewals}, failed fetches {failures}",
                    sessions.len()
                ));
            }
            _ => {}
        }
    }

    pub(crate) fn finish(self, summary: &Summary, stats: &Value) {
        if let Some(header) = &self.header {
            header.finish();
        }
        for bar in &self.bars {
            bar.finish();
        }
        if let Some(multi) = &self.multi {
            let _ = multi.clear();
        }
        match self.mode {
            Mode::Json => {
                let summary = serde_json::to_value(summary).unwrap_or(Value::Null);
                self.json(json!({"type": "summary", "summary": summary, "server": stats}));
            }
            Mode::Live | Mode::Plain => {
                println!();
                println!(
                    "summary after {} s: {} sessions, {} renewals, {} failed fetches (retried), {} tokens \
                     renewed in-band in the room",
                    summary.duration_s,
                    summary.sessions,
                    summary.renewals,
                    summary.fetch_failures,
                    summary.room_renewals
                );
                println!(
                    "  disconnects for an expired token: {}   time without a valid token: {} ms",
                    summary.disconnects, summary.expired_ms
                );
                println!(
                    "  tokens handed to the engines: {} ({} twice or out of order), time an engine held an \
                     expired token: {} ms",
                    summary.applies, summary.duplicate_applies, summary.engine_expired_ms
                );
                if summary.disconnects == 0
                    && summary.expired_ms == 0
                    && summary.errors_injected == 0
                {
                    println!("  every session stayed connected");
                } else if summary.disconnects == 0 && summary.expired_ms == 0 {
                    println!(
                        "  every session stayed connected although {} token requests failed",
                        summary.errors_injected
                    );
                } else {
                    println!("  some sessions lost their token: see the lines above");
                }
            }
        }
    }
}

fn state_name(state: SessionState) -> &'static str {
    match state {
        SessionState::Idle => "idle",
        SessionState::Fetching => "fetching",
        SessionState::Valid => "valid",
        SessionState::Renewing => "renewing",
        SessionState::NotYetValid => "not yet",
        SessionState::Expired => "EXPIRED",
        SessionState::Failed => "failed",
        SessionState::Closed => "closed",
    }
}
