//! `tokenkeeper demo` and `tokenkeeper serve` as scripts call them, and the SDK's HTTP and OAuth
//! sources end to end against the reference backend (modules below).

mod e2e;
mod oauth;
mod two_instances;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};

use serde_json::Value;

fn tokenkeeper() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tokenkeeper"))
}

/// The acceptance run: 20 sessions, 4 s tokens, 2 s lead, 20 % failed token requests.
#[test]
fn demo_json_keeps_twenty_sessions_connected_through_a_flaky_backend() {
    let out = tokenkeeper()
        .args([
            "demo",
            "--json",
            "--sessions",
            "20",
            "--token-ttl",
            "4",
            "--lead",
            "2",
        ])
        .args(["--duration", "20", "--fail-rate", "0.25"])
        .output()
        .expect("tokenkeeper runs");
    let stdout = String::from_utf8(out.stdout).expect("UTF-8 output");
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert_eq!(
        lines.first().map(|l| l["type"].clone()),
        Some("start".into())
    );
    let last = lines.last().expect("a summary line");
    let summary = &last["summary"];
    assert_eq!(summary["sessions"], 20, "{summary}");
    assert_eq!(summary["disconnects"], 0, "{summary}");
    assert_eq!(summary["expired_ms"], 0, "{summary}");
    assert!(summary["renewals"].as_u64().unwrap() >= 20 * 5, "{summary}");
    assert!(summary["fetch_failures"].as_u64().unwrap() > 0, "{summary}");
    assert_eq!(
        summary["disconnects_by_reason"]["token_expired"], 0,
        "{summary}"
    );
    // One path from backend to engine: every renewal reaches the engine exactly once, in
    // order, never expired, and the engine's callbacks never cause a second fetch.
    let n = |k: &str| {
        summary[k]
            .as_u64()
            .unwrap_or_else(|| panic!("no {k}: {summary}"))
    };
    // (A renewal in the run's last instant may not have reached its engine yet.)
    assert!(n("applies") <= n("renewals"), "{summary}");
    assert!(n("renewals") - n("applies") <= n("sessions"), "{summary}");
    assert_eq!(n("duplicate_applies"), 0, "{summary}");
    assert_eq!(n("engine_expired_ms"), 0, "{summary}");
    // Each session's first fetch, one successful fetch per renewal, the failures; at most one
    // renewal per session was still in flight when the run ended.
    let accounted = n("sessions") + n("renewals") + n("fetch_failures");
    assert!(
        (accounted..=accounted + n("sessions")).contains(&n("fetches")),
        "one successful fetch per renewal: {summary}"
    );
    assert!(lines.iter().any(|l| l["type"] == "applied"));
    assert!(lines.iter().any(|l| l["type"] == "fetch_failed"));
    assert!(
        lines
            .iter()
            .any(|l| l["type"] == "room" && l["event"] == "renewed")
    );
    assert!(out.status.success(), "exit {:?}", out.status);
    // No token in the output: every Agora token starts with 007eJ.
    assert!(!stdout.contains("007eJ"), "a token was printed");
}

#[test]
fn demo_refuses_a_lead_not_shorter_than_the_token() {
    let out = tokenkeeper()
        .args(["demo", "--token-ttl", "4", "--lead", "4", "--duration", "1"])
        .output()
        .expect("tokenkeeper runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--lead 4 must be at least 1 and shorter than --token-ttl 4"),
        "{stderr}"
    );
}

#[test]
fn demo_without_a_terminal_prints_a_legend_and_plain_lines() {
    let out = tokenkeeper()
        .args([
            "demo",
            "--sessions",
            "2",
            "--token-ttl",
            "3",
            "--lead",
            "1",
            "--duration",
            "3",
        ])
        .args(["--fail-rate", "0", "--latency-ms", "0"])
        .output()
        .expect("tokenkeeper runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with("tokenkeeper demo: 2 sessions keep agora tokens alive"),
        "{stdout}"
    );
    assert!(
        stdout.contains("host       token issued (initial)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("disconnects for an expired token: 0"),
        "{stdout}"
    );
    assert!(
        !stdout.contains('\u{1b}'),
        "escape codes in plain output: {stdout}"
    );
    assert!(out.status.success());
}

#[test]
fn serve_prints_its_address_and_answers_health_checks() {
    let mut child = tokenkeeper()
        .args(["serve", "--addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("tokenkeeper serve starts");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut first = String::new();
    stdout.read_line(&mut first).expect("a first line");
    let addr = first
        .trim()
        .rsplit("http://")
        .next()
        .expect("an address")
        .to_owned();
    let mut stream = std::net::TcpStream::connect(&addr).expect("server listens");
    write!(
        stream,
        "GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).expect("reply");
    child.kill().expect("stopped");
    let _ = child.wait();
    assert!(
        first.starts_with("tokenkeeper reference backend listening on http://127.0.0.1:"),
        "{first}"
    );
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.ends_with("ok"), "{reply}");
}

#[test]
fn serve_writes_its_log_to_stderr_with_start_and_request_lines() {
    let mut child = tokenkeeper()
        .args(["serve", "--addr", "127.0.0.1:0"])
        .env("RUST_LOG", "debug")
        .env_remove("TOKENKEEPER_DB")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tokenkeeper serve starts");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut first = String::new();
    stdout.read_line(&mut first).expect("a first line");
    let addr = first.trim().rsplit("http://").next().unwrap().to_owned();
    let mut stream = std::net::TcpStream::connect(&addr).expect("server listens");
    write!(
        stream,
        "GET /healthz?probe=1 HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).expect("reply");
    std::thread::sleep(std::time::Duration::from_millis(200));
    child.kill().expect("stopped");
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    let _ = child.wait();
    assert!(log.contains("tokenkeeper-server listening"), "{log}");
    assert!(log.contains(&addr), "{log}");
    assert!(
        log.contains("path=/healthz") && log.contains("status=200"),
        "{log}"
    );
    assert!(
        !log.contains("probe=1"),
        "query strings are not logged: {log}"
    );
}

#[test]
fn serve_with_an_unreachable_postgres_url_names_the_cause_and_exits_2() {
    let out = tokenkeeper()
        .args(["serve", "--addr", "127.0.0.1:0"])
        .env(
            "TOKENKEEPER_DB",
            "postgres://tk:hunter2-not-logged@127.0.0.1:1/tk",
        )
        .env("RUST_LOG", "info")
        .output()
        .expect("tokenkeeper runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot open the database"), "{stderr}");
    assert!(
        stderr.contains("postgres://tk:***@127.0.0.1:1/tk"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2-not-logged"), "{stderr}");
}
