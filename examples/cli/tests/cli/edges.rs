//! Issue 13 through the built binary: the privilege-expiry default. Vendor tokens are from
//! the official builders with their clock and randomness pinned (see
//! core/tests/it/formats_edges.rs).

use std::process::Output;

use tokenkeeper::formats::agora;

use crate::inspect::run;

const APP_ID: &str = "970CA35de60c44645bbae8a215061b33";
const CERT: &str = "5CFd2fd1755d40ecb72977518be15d3b";

/// Python `build_token_with_uid(APP_ID, CERT, "7d72…", 2882341273, role, 3600)`, clock
/// 1700000000, salt 12345.
const PY_PUBLISHER: &str = "007eJxTYHDQ//PYyc2xIJc//cqrTcJdf47l/VsdxVCZUjFxQw/fNkYFBktzA2dHY9OUVDODZBMTMxPTpKTEVItEI0NTAzPDJGNjho/BqQJ8DAyWBgwMjEDIAsQgwAQmmcEkC5hUYDBPMTcyNjNNTbK0MDaxMDW2NE81TjVOs0wxMTNISklJ5GIwsrAwMjYxNDI3BgCvAyUs";
const PY_SUBSCRIBER: &str = "007eJxTYLDyOb32KmOSsLMiy0fucM0ktjk+80zu37rFfjlceQvHfn4FBktzA2dHY9OUVDODZBMTMxPTpKTEVItEI0NTAzPDJGNjho/BqQJ8DAyWBgwMjFAIAgoM5inmRsZmpqlJlhbGJhamxpbmqcapxmmWKSZmBkkpKYlcDEYWFkbGJoZG5sYAdh8iTw==";
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
