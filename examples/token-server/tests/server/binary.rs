//! The `tokenkeeper-server` binary starts, prints its address and generated keys, and serves.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde_json::{Value, json};

/// Kills the server process even when an assertion fails.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_prints_banner_and_serves_admin_and_token_requests() {
    let mut child = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_tokenkeeper-server"))
            .args(["--addr", "127.0.0.1:0", "--token-ttl", "7"])
            .env_remove("TOKENKEEPER_ADMIN_KEY")
            .env_remove("TOKENKEEPER_DEVELOPER_KEY")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("binary starts"),
    );
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut line)
        .expect("banner line");
    let banner: Value = serde_json::from_str(&line).expect("banner is JSON");
    let base = banner["listening"].as_str().unwrap().to_owned();
    let admin = banner["admin_key"].as_str().unwrap().to_owned();
    assert!(admin.starts_with("adm_") && banner["developer_key"].is_string());

    let http = reqwest::Client::new();
    let user: Value = http
        .post(format!("{base}/admin/users"))
        .bearer_auth(&admin)
        .json(&json!({ "id": "alice" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    http.post(format!("{base}/admin/streams"))
        .bearer_auth(&admin)
        .json(&json!({ "channel": "live-1", "owner": "alice" }))
        .send()
        .await
        .unwrap();
    let token: Value = http
        .post(format!("{base}/api/v1/rtc/token"))
        .bearer_auth(user["api_key"].as_str().unwrap())
        .json(&json!({ "vendor": "agora", "channel": "live-1", "role": "publisher" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    drop(child);
    assert_eq!(token["expiresIn"], 7, "{token}");
    assert!(token["token"].as_str().unwrap().starts_with("007"));
}
