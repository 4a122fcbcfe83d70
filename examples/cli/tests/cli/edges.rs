//! Issue 13 through the built binary: the privilege-expiry default, data that starts with
//! `-`, and ZEGO app ids past 32 bits. Vendor tokens are from the official builders with
//! their clock and randomness pinned (see core/tests/it/formats_edges.rs).

use std::process::Output;

use tokenkeeper::formats::{agora, zego};

use crate::inspect::{assert_bad_input, run, stdout_json};

const APP_ID: &str = "970CA35de60c44645bbae8a215061b33";
const CERT: &str = "5CFd2fd1755d40ecb72977518be15d3b";
const ZEGO_SECRET: &str = "fa94dd0f974cf2e293728a526b028271";

/// Python `build_token_with_uid(APP_ID, CERT, "7d72…", 2882341273, role, 3600)`, clock
/// 1700000000, salt 12345.
const PY_PUBLISHER: &str = "007eJxTYHDQ//PYyc2xIJc//cqrTcJdf47l/VsdxVCZUjFxQw/fNkYFBktzA2dHY9OUVDODZBMTMxPTpKTEVItEI0NTAzPDJGNjho/BqQJ8DAyWBgwMjEDIAsQgwAQmmcEkC5hUYDBPMTcyNjNNTbK0MDaxMDW2NE81TjVOs0wxMTNISklJ5GIwsrAwMjYxNDI3BgCvAyUs";
const PY_SUBSCRIBER: &str = "007eJxTYLDyOb32KmOSsLMiy0fucM0ktjk+80zu37rFfjlceQvHfn4FBktzA2dHY9OUVDODZBMTMxPTpKTEVItEI0NTAzPDJGNjho/BqQJ8DAyWBgwMjFAIAgoM5inmRsZmpqlJlhbGJhamxpbmqcapxmmWKSZmBkkpKYlcDEYWFkbGJoZG5sYAdh8iTw==";
/// zego_server_assistant `token04.py` (GCM) for app id 2^32 = 4294967296.
const PY_ZEGO_APP_ID_2_POW_32: &str = "04AAAAAGVT/xAADHE0ZjV6cjM3ZTNwMwB8MqLvHurdoatbh6E+gsVfMWssCEkwoHqNlwJAJsCgcHFyRz5V1Mps51zUP2LOrBCYFrFtUOsxkmrpI7krDJIgomSCZsaQLj81tPWH5hDsU1effgmuOnlg4xXhyS5oSxqEruuAKp/h+MK8yXBuFFUw94R/Ux7N+ndz4SRheAE=";

fn token_of(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}, stderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .trim()
        .to_owned()
}

fn mint_rtc(extra: &[&str]) -> String {
    let mut args = vec![
        "mint",
        "agora",
        "rtc",
        "--app-id",
        APP_ID,
        "--app-certificate",
        CERT,
        "--token-expire",
        "3600",
        "--issue-ts",
        "1700000000",
        "--salt",
        "12345",
    ];
    args.extend_from_slice(extra);
    token_of(&run(&args))
}

#[test]
fn mint_agora_rtc_without_privilege_expire_equals_the_python_builder_default() {
    for (role, vendor) in [("publisher", PY_PUBLISHER), ("subscriber", PY_SUBSCRIBER)] {
        let ours = mint_rtc(&[
            "--channel",
            "7d72365eb983485397e3e3f9d460bdda",
            "--uid",
            "2882341273",
            "--role",
            role,
        ]);
        // Equal tokens carry the same signature and signed bytes: the payloads are identical.
        assert_eq!(
            agora::verify_007(&ours, CERT).unwrap(),
            agora::verify_007(vendor, CERT).unwrap(),
            "{role}"
        );
    }
}

#[test]
fn mint_agora_rtc_takes_channel_and_account_starting_with_a_dash() {
    for (channel, account) in [("-live", "-alice"), ("--live", "--alice"), ("-", "-1")] {
        let spaced = mint_rtc(&[
            "--channel",
            channel,
            "--account",
            account,
            "--role",
            "publisher",
        ]);
        let joined = mint_rtc(&[
            &format!("--channel={channel}"),
            &format!("--account={account}"),
            "--role=publisher",
        ]);
        assert_eq!(spaced, joined);
        let t = agora::verify_007(&spaced, CERT).unwrap();
        assert_eq!(
            t.services[0].kind,
            agora::ServiceKind::Rtc {
                channel_name: channel.into(),
                uid: account.into()
            }
        );
    }
}

#[test]
fn mint_zego_takes_user_id_payload_and_iv_starting_with_a_dash() {
    let token = token_of(&run(&[
        "mint",
        "zego",
        "--app-id",
        "1234567890",
        "--user-id",
        "-user",
        "--secret",
        ZEGO_SECRET,
        "--effective-time",
        "3600",
        "--payload",
        "--not-a-flag",
        "--iv",
        "-k3j9x0q2m8z",
        "--ctime",
        "1700000000",
        "--nonce",
        "-5",
    ]));
    let (_, p) = zego::decrypt_04(&token, ZEGO_SECRET).unwrap();
    assert_eq!(p.user_id, "-user");
    assert_eq!(p.payload, "--not-a-flag");
    assert_eq!(p.nonce, -5);
}

#[test]
fn mint_and_inspect_jwt_take_a_key_starting_with_a_dash() {
    let token = token_of(&run(&[
        "mint",
        "jwt",
        "--key",
        "-k-",
        "--claims",
        r#"{"sub":"-a","exp":2000000000}"#,
    ]));
    let out = stdout_json(&run(&["inspect", "--json", "--key", "-k-", &token]));
    assert_eq!(out["signature_valid"], true);
    assert_eq!(out["claims"]["sub"], "-a");
}

#[test]
fn inspect_verifies_a_006_token_for_a_channel_and_uid_starting_with_a_dash() {
    let spec = serde_json::json!({
        "app_id": APP_ID, "app_certificate": CERT, "channel_name": "-live",
        "uid_packed": "-42", "salt": 1, "ts": 1_700_086_400, "privileges": {"1": 0}
    });
    let spec_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(spec_file.path(), spec.to_string()).unwrap();
    let token = token_of(&run(&[
        "mint",
        "agora",
        "raw",
        "--spec",
        spec_file.path().to_str().unwrap(),
    ]));
    let out = stdout_json(&run(&[
        "inspect",
        "--json",
        "--app-certificate",
        CERT,
        "--channel",
        "-live",
        "--uid",
        "-42",
        &token,
    ]));
    assert_eq!(out["signature_valid"], true);
}

#[test]
fn inspect_zego_app_id_past_u32_says_out_of_range_not_invalid_signature() {
    let out = run(&[
        "inspect",
        "--json",
        "--secret",
        ZEGO_SECRET,
        PY_ZEGO_APP_ID_2_POW_32,
    ]);
    assert_eq!(out.status.code(), Some(1), "unusable token: exit 1");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["signature_valid"], true);
    assert_eq!(v["format"], "zego-04");
    assert_eq!(v["expires_at"], 1_700_003_600);
    let problem = v["problem"].as_str().unwrap();
    assert!(
        problem.contains("app id 4294967296 is out of range"),
        "{problem}"
    );
    assert!(!problem.contains(ZEGO_SECRET));

    let human = run(&["inspect", "--secret", ZEGO_SECRET, PY_ZEGO_APP_ID_2_POW_32]);
    assert_eq!(human.status.code(), Some(1));
    let text = String::from_utf8(human.stdout).unwrap();
    assert!(text.contains("signature    valid"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("problem") && l.contains("out of range")),
        "{text}"
    );
    assert!(!text.contains("INVALID"), "{text}");
}

fn mint_zego(app_id: &str) -> Output {
    run(&[
        "mint",
        "zego",
        "--app-id",
        app_id,
        "--user-id",
        "u",
        "--secret",
        ZEGO_SECRET,
        "--effective-time",
        "60",
    ])
}

#[test]
fn mint_zego_refuses_an_app_id_past_u32_in_words() {
    assert_bad_input(
        &mint_zego("4294967296"),
        "--app-id 4294967296 is out of range: ZEGO AppIDs are 32-bit (1 to 4294967295)",
    );
    let largest = token_of(&mint_zego("4294967295"));
    assert_eq!(
        zego::decrypt_04(&largest, ZEGO_SECRET).unwrap().1.app_id,
        4_294_967_295
    );
}
