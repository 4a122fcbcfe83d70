//! `tokenkeeper mint` reproduces the official vectors.

use std::process::Output;

use crate::inspect::{assert_bad_input, run, run_stdin, stdout_json, vectors};

fn token_of(out: &Output) -> String {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = String::from_utf8(out.stdout.clone()).unwrap();
    assert_eq!(s.lines().count(), 1, "the token alone: {s:?}");
    s.trim().to_owned()
}

#[test]
fn mint_zego_reproduces_every_vector_byte_for_byte() {
    for v in vectors("zego_token04.json") {
        let i = &v["inputs"];
        let args: Vec<String> = vec![
            "mint".into(),
            "zego".into(),
            "--app-id".into(),
            i["app_id"].to_string(),
            "--user-id".into(),
            i["user_id"].as_str().unwrap().into(),
            "--secret".into(),
            i["secret"].as_str().unwrap().into(),
            "--effective-time".into(),
            i["effective_time_in_seconds"].to_string(),
            "--payload".into(),
            i["payload"].as_str().unwrap().into(),
            "--mode".into(),
            v["variant"].as_str().unwrap().into(),
            "--ctime".into(),
            i["ctime"].to_string(),
            format!("--nonce={}", i["nonce"]),
            "--iv-hex".into(),
            i["iv_hex"].as_str().unwrap().into(),
        ];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_eq!(
            token_of(&run(&args)),
            v["expected"]["token"].as_str().unwrap(),
            "{}",
            v["id"]
        );
    }
}

#[test]
fn mint_zego_with_text_iv_matches_the_vector() {
    let v = &vectors("zego_token04.json")[0];
    let i = &v["inputs"];
    let out = run(&[
        "mint",
        "zego",
        "--app-id",
        "1234567890",
        "--user-id",
        "user1",
        "--secret",
        i["secret"].as_str().unwrap(),
        "--effective-time",
        "3600",
        "--ctime",
        "1700000000",
        "--nonce",
        "52853",
        "--iv",
        "k3j9x0q2m8zt",
    ]);
    assert_eq!(token_of(&out), v["expected"]["token"].as_str().unwrap());
}

#[test]
fn mint_zego_without_fixed_inputs_decrypts_to_its_inputs() {
    let secret = "fa94dd0f974cf2e293728a526b028271";
    let token = token_of(&run(&[
        "mint",
        "zego",
        "--app-id",
        "7",
        "--user-id",
        "bob",
        "--secret",
        secret,
        "--effective-time",
        "60",
        "--payload",
        "p",
    ]));
    let out = stdout_json(&run(&["inspect", "--json", "--secret", secret, &token]));
    assert_eq!(out["variant"], "gcm");
    assert_eq!(out["decrypted"]["user_id"], "bob");
    assert_eq!(out["decrypted"]["payload"], "p");
    assert_eq!(
        out["expire"].as_i64().unwrap() - out["decrypted"]["ctime"].as_i64().unwrap(),
        60
    );
}

#[test]
fn mint_agora_raw_rebuilds_every_build_vector() {
    let dir = tempfile::tempdir().unwrap();
    for v in vectors("agora_official.json")
        .iter()
        .filter(|v| v["kind"] == "build")
    {
        let path = dir.path().join("spec.json");
        std::fs::write(&path, v["inputs"].to_string()).unwrap();
        let token = token_of(&run(&[
            "mint",
            "agora",
            "raw",
            "--spec",
            path.to_str().unwrap(),
        ]));
        let cert = v["inputs"]["app_certificate"].as_str().unwrap();
        let mut args = vec!["inspect", "--json", "--app-certificate", cert];
        let (channel, uid);
        if v["format"] == "006" {
            // 006 strings are deterministic: compare exactly.
            assert_eq!(token, v["token"].as_str().unwrap(), "{}", v["id"]);
            channel = v["inputs"]["channel_name"].as_str().unwrap().to_owned();
            uid = v["inputs"]["uid_packed"].as_str().unwrap().to_owned();
            args.extend(["--channel", &channel, "--uid", &uid]);
        }
        args.push(&token);
        let mut out = stdout_json(&run(&args));
        assert_eq!(out["signature_valid"], true, "{}", v["id"]);
        let o = out.as_object_mut().unwrap();
        for k in ["format", "expires_at", "signature_valid"] {
            o.remove(k);
        }
        assert_eq!(out, v["decoded"], "{}", v["id"]);
    }
}

#[test]
fn mint_agora_raw_reads_the_spec_from_stdin() {
    let v = &vectors("agora_official.json")[0];
    let token = token_of(&run_stdin(
        &["mint", "agora", "raw", "--spec", "-"],
        &v["inputs"].to_string(),
    ));
    let out = stdout_json(&run(&["inspect", "--json", &token]));
    assert_eq!(out["services"], v["decoded"]["services"]);
}

#[test]
fn mint_agora_rtc_publisher_gets_publish_privileges_and_uid_0_packs_empty() {
    let token = token_of(&run(&[
        "mint",
        "agora",
        "rtc",
        "--app-id",
        "970CA35de60c44645bbae8a215061b33",
        "--app-certificate",
        "5CFd2fd1755d40ecb72977518be15d3b",
        "--channel",
        "room-1",
        "--uid",
        "0",
        "--role",
        "publisher",
        "--token-expire",
        "600",
        "--privilege-expire",
        "300",
        "--issue-ts",
        "1700000000",
        "--salt",
        "42",
    ]));
    let out = stdout_json(&run(&[
        "inspect",
        "--json",
        "--app-certificate",
        "5CFd2fd1755d40ecb72977518be15d3b",
        &token,
    ]));
    assert_eq!(out["signature_valid"], true);
    assert_eq!(out["salt"], 42);
    assert_eq!(out["expire_at"], 1_700_000_600);
    assert_eq!(out["expires_at"], 1_700_000_300);
    let svc = &out["services"][0];
    assert_eq!(svc["uid"], "");
    assert_eq!(svc["channel_name"], "room-1");
    let ids: Vec<i64> = svc["privileges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![1, 2, 3, 4]);

    let sub = token_of(&run(&[
        "mint",
        "agora",
        "rtc",
        "--app-id",
        "970CA35de60c44645bbae8a215061b33",
        "--app-certificate",
        "5CFd2fd1755d40ecb72977518be15d3b",
        "--channel",
        "room-1",
        "--account",
        "alice",
        "--role",
        "subscriber",
        "--token-expire",
        "600",
    ]));
    let out = stdout_json(&run(&["inspect", "--json", &sub]));
    assert_eq!(out["services"][0]["uid"], "alice");
    assert_eq!(
        out["services"][0]["privileges"].as_array().unwrap().len(),
        1
    );
    // No --privilege-expire: 0, as the official builders' default.
    assert_eq!(out["services"][0]["privileges"][0]["expire"], 0);
}

#[test]
fn mint_bad_input_exits_2_naming_the_setting() {
    assert_bad_input(
        &run(&[
            "mint",
            "zego",
            "--app-id",
            "1",
            "--user-id",
            "u",
            "--secret",
            "abc",
            "--effective-time",
            "60",
        ]),
        "ZEGO server secret must be exactly 32 bytes, got 3",
    );
    assert_bad_input(
        &run(&[
            "mint",
            "zego",
            "--app-id",
            "1",
            "--user-id",
            "u",
            "--secret",
            "fa94dd0f974cf2e293728a526b028271",
            "--effective-time",
            "0",
        ]),
        "effective time must be more than 0",
    );
    assert_bad_input(
        &run(&[
            "mint",
            "agora",
            "rtc",
            "--app-id",
            "short",
            "--app-certificate",
            "5CFd2fd1755d40ecb72977518be15d3b",
            "--channel",
            "c",
            "--uid",
            "1",
            "--role",
            "publisher",
            "--token-expire",
            "60",
        ]),
        "Agora app id must be 32 hexadecimal characters",
    );
    assert_bad_input(
        &run(&["mint", "jwt", "--key", "k", "--claims", "[1]"]),
        "JSON object",
    );
    assert_bad_input(
        &run(&["mint", "jwt", "--key", "k", "--claims", "{"]),
        "not valid JSON",
    );
    assert_bad_input(
        &run(&["mint", "agora", "raw", "--spec", "/nonexistent/spec.json"]),
        "could not read --spec",
    );
    let out = run_stdin(&["mint", "agora", "raw", "--spec", "-"], r#"{"app_id": 1}"#);
    assert_bad_input(&out, "`app_id` must be a string");
}
