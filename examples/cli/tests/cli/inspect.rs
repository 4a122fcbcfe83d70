//! `tokenkeeper inspect` as scripts call it, against the shared vectors.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

pub(crate) fn vectors(name: &str) -> Vec<Value> {
    let path = format!(
        "{}/../../../shared/vectors/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    serde_json::from_str::<Value>(&text).unwrap()["vectors"]
        .as_array()
        .unwrap()
        .clone()
}

pub(crate) fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tokenkeeper"))
        .args(args)
        .output()
        .expect("run tokenkeeper")
}

pub(crate) fn run_stdin(args: &[&str], input: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tokenkeeper"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tokenkeeper");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

pub(crate) fn stdout_json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "exit {:?}, stderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is one JSON object")
}

pub(crate) fn assert_bad_input(out: &Output, needle: &str) {
    assert_eq!(
        out.status.code(),
        Some(2),
        "stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "one line on stderr: {err}"
    );
    assert!(err.contains(needle), "stderr {err:?} lacks {needle:?}");
}

/// Removes the fields `inspect --json` adds to the vectors' `decoded` object.
fn without_added(mut v: Value) -> Value {
    let o = v.as_object_mut().unwrap();
    for k in ["format", "expires_at", "signature_valid"] {
        o.remove(k);
    }
    v
}

#[test]
fn inspect_json_reproduces_decoded_for_every_agora_vector() {
    for v in vectors("agora_official.json") {
        let out = stdout_json(&run(&["inspect", "--json", v["token"].as_str().unwrap()]));
        let format = if v["format"] == "007" {
            "agora-007"
        } else {
            "agora-006"
        };
        assert_eq!(out["format"], format);
        assert_eq!(out["signature_valid"], Value::Null);
        assert!(out["expires_at"].is_i64());
        assert_eq!(without_added(out), v["decoded"], "vector {}", v["id"]);
    }
}

#[test]
fn inspect_verifies_agora_signatures_with_the_certificate() {
    let v = &vectors("agora_official.json")[0];
    let token = v["token"].as_str().unwrap();
    let cert = v["inputs"]["app_certificate"].as_str().unwrap();
    let out = stdout_json(&run(&[
        "inspect",
        "--json",
        "--app-certificate",
        cert,
        token,
    ]));
    assert_eq!(out["signature_valid"], true);
    assert_eq!(out["expires_at"], 1_111_711);
    let wrong = run(&[
        "inspect",
        "--json",
        "--app-certificate",
        "5CFd2fd1755d40ecb72977518be15d3c",
        token,
    ]);
    assert_eq!(wrong.status.code(), Some(1));
    let out: Value = serde_json::from_slice(&wrong.stdout).unwrap();
    assert_eq!(out["signature_valid"], false);
    assert_bad_input(
        &run(&["inspect", "--app-certificate", "abc", token]),
        "32 hexadecimal",
    );
}

#[test]
fn inspect_json_decrypts_every_zego_vector_with_the_secret() {
    for v in vectors("zego_token04.json") {
        let token = v["expected"]["token"].as_str().unwrap();
        let out = stdout_json(&run(&["inspect", "--json", token]));
        assert_eq!(out["format"], "zego-04");
        assert_eq!(out["version"], "04");
        assert_eq!(out["variant"], v["variant"]);
        assert_eq!(out["expire"], v["expected"]["expire"]);
        assert_eq!(out["expires_at"], v["expected"]["expire"]);
        assert_eq!(out["signature_valid"], Value::Null);
        assert!(out.get("decrypted").is_none());
        let secret = v["inputs"]["secret"].as_str().unwrap();
        let out = stdout_json(&run(&["inspect", "--json", "--secret", secret, token]));
        assert_eq!(out["decrypted"], v["expected"]["decrypted"], "{}", v["id"]);
        assert_eq!(out["signature_valid"], true);
    }
}

#[test]
fn inspect_reads_the_token_from_stdin() {
    let v = &vectors("zego_token04.json")[0];
    let token = v["expected"]["token"].as_str().unwrap();
    let out = stdout_json(&run_stdin(
        &["inspect", "--json", "-"],
        &format!("{token}\n"),
    ));
    assert_eq!(out["expire"], 1_700_003_600);
}

#[test]
fn inspect_json_shows_jwt_header_and_claims_and_verifies_with_the_key() {
    let token = String::from_utf8(
        run(&[
            "mint",
            "jwt",
            "--key",
            "k3y",
            "--claims",
            r#"{"room":"r1","exp":2000000000,"nbf":1000}"#,
        ])
        .stdout,
    )
    .unwrap();
    let token = token.trim();
    let out = stdout_json(&run(&["inspect", "--json", "--key", "k3y", token]));
    assert_eq!(out["format"], "jwt");
    assert_eq!(out["header"]["alg"], "HS256");
    assert_eq!(out["claims"]["room"], "r1");
    assert_eq!(out["expires_at"], 2_000_000_000i64);
    assert_eq!(out["signature_valid"], true);
    let wrong = run(&["inspect", "--json", "--key", "other", token]);
    assert_eq!(wrong.status.code(), Some(1));
    // A pinned algorithm the token does not use is a failed check, explained.
    let pinned = run(&["inspect", "--key", "k3y", "--alg", "hs512", token]);
    assert_eq!(pinned.status.code(), Some(1));
    let text = String::from_utf8(pinned.stdout).unwrap();
    assert!(
        text.contains("INVALID: the JWT is signed with HS256, but HS512 is configured"),
        "{text}"
    );
}

#[test]
fn expect_explains_a_vendor_mismatch_in_plain_words() {
    let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjE3MDAwMDAwMDB9.c2ln";
    assert_bad_input(
        &run(&["inspect", "--expect", "zego", jwt]),
        "this is a JWT; ZEGO expects a Token04, which starts with 04",
    );
    let zego = vectors("zego_token04.json")[0]["expected"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_bad_input(
        &run(&["inspect", "--expect", "agora", &zego]),
        "this is a ZEGO Token04; Agora expects an AccessToken2",
    );
    assert!(
        run(&["inspect", "--expect", "zego", &zego])
            .status
            .success()
    );
}

#[test]
fn human_output_says_how_long_ago_a_token_expired_or_until_it_starts() {
    let v = &vectors("agora_official.json")[0];
    let token = v["token"].as_str().unwrap();
    let out = run(&["inspect", "--now", "1115311", token]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("EXPIRED 1 h 0 min ago"), "{text}");
    let out = run(&["inspect", "--now", "1111611", token]);
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .contains("valid for another 1 min 40 s")
    );
    let jwt = String::from_utf8(
        run(&[
            "mint",
            "jwt",
            "--key",
            "k",
            "--claims",
            r#"{"nbf":1000000,"exp":2000000}"#,
        ])
        .stdout,
    )
    .unwrap();
    let out = run(&["inspect", "--now", "996400", jwt.trim()]);
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .contains("NOT YET VALID: starts in 1 h 0 min")
    );
}

#[test]
fn bad_input_exits_2_with_one_line() {
    assert_bad_input(&run(&["inspect", "hello"]), "unrecognised token format");
    assert_bad_input(&run(&["inspect", "007$$$"]), "not valid base64");
    assert_bad_input(&run(&["inspect", ""]), "empty");
    let zego = vectors("zego_token04.json")[0]["expected"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_bad_input(
        &run(&["inspect", "--secret", "short", &zego]),
        "exactly 32 bytes, got 5",
    );
    assert_bad_input(
        &run(&[
            "inspect",
            "--app-certificate",
            "5CFd2fd1755d40ecb72977518be15d3b",
            &zego,
        ]),
        "--secret",
    );
    let truncated = &zego[..zego.len() - 30];
    assert_bad_input(&run(&["inspect", truncated]), "zego-04");
}
