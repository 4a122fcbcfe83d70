//! Edge cases where tokenkeeper must do what the vendors' own builders do (issue 13).
//!
//! The expected tokens below were produced by running the official implementations with
//! their clock and randomness pinned: AgoraIO/Tools `nodejs/src/AccessToken2.js` and
//! `python3/src/RtcTokenBuilder2.py`, and zego_server_assistant's `token04.py` (the GCM
//! generator and the legacy CBC one). Agora builders in other languages deflate
//! differently, so Agora tokens are compared by their inflated payloads.

use std::io::Read;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use tokenkeeper::formats::{FormatError, agora, zego};

const APP_ID: &str = "970CA35de60c44645bbae8a215061b33";
const CERT: &str = "5CFd2fd1755d40ecb72977518be15d3b";
const CHANNEL: &str = "7d72365eb983485397e3e3f9d460bdda";
const ZEGO_SECRET: &str = "fa94dd0f974cf2e293728a526b028271";

fn inflated(token: &str) -> String {
    let raw = STANDARD.decode(&token[3..]).expect("base64");
    let mut out = Vec::new();
    flate2::read::ZlibDecoder::new(raw.as_slice())
        .read_to_end(&mut out)
        .expect("zlib");
    hex::encode(out)
}

/// Node `Rtm2Permissions.add(2, 0, ['group-a'])`, `add(0, 1, ['msg-w'])`,
/// `add(2, 0, ['group-b', 'group-c'])`, `add(2, 1, ['group-w'])` for user `test_user`,
/// login 600 s, issue_ts 1111111, salt 1.
const NODE_RTM2_DUPLICATE: &str = "007eJxTYHjBOnNJ4pbAKpPnBy9N9X9m2cG8UoF1muHLaVrTNSNCGHQUGCzNDZwdjU1TUs0Mkk1MzExMk5ISUy0SjQxNDcwMk4yN3b8IMEQwMTAwMoAwBwMjAyOYz8lQklpcEl9anFrEBJYCQVaG3OJ03XImBpAQEwM7Q3pRfmmBbhKMkQxSBOOUAwD6kSbq";

#[cfg(feature = "mint")]
fn rtm2(resource: u16, permission: u16, names: &[&str]) -> agora::Rtm2Permission {
    agora::Rtm2Permission {
        resource,
        permission,
        resources: names.iter().map(|&n| n.to_owned()).collect(),
    }
}

#[cfg(feature = "mint")]
#[test]
fn rtm2_duplicate_permission_keeps_the_last_entry_like_the_node_builder() {
    let permissions = [
        rtm2(2, 0, &["group-a"]),
        rtm2(0, 1, &["msg-w"]),
        rtm2(2, 0, &["group-b", "group-c"]),
        rtm2(2, 1, &["group-w"]),
    ];
    let ours = tokenkeeper::mint::agora::build_rtm_token_with_permissions(
        APP_ID,
        CERT,
        "test_user",
        &permissions,
        600,
        1_111_111,
        1,
    )
    .unwrap();
    assert_eq!(inflated(&ours), inflated(NODE_RTM2_DUPLICATE));

    let decoded = agora::verify_007(&ours, CERT).unwrap();
    let agora::ServiceKind::Rtm2 { permissions, .. } = &decoded.services[0].kind else {
        panic!("not an RTM2 service: {:?}", decoded.services[0].kind);
    };
    assert_eq!(
        permissions,
        &[
            rtm2(0, 1, &["msg-w"]),
            rtm2(2, 0, &["group-b", "group-c"]),
            rtm2(2, 1, &["group-w"]),
        ]
    );
}

#[cfg(feature = "mint")]
#[test]
fn rtm2_duplicate_permission_in_a_spec_keeps_the_last_entry() {
    let spec = serde_json::json!({
        "app_id": APP_ID, "app_certificate": CERT, "issue_ts": 1_111_111, "salt": 1,
        "expire": 600,
        "services_in_insertion_order": [{
            "type": 8, "user_id": "test_user", "privileges": {"1": 600},
            "permissions": [[2, 0, ["group-a"]], [0, 1, ["msg-w"]],
                            [2, 0, ["group-b", "group-c"]], [2, 1, ["group-w"]]]
        }]
    });
    let ours = tokenkeeper::mint::agora::build_from_spec(&spec).unwrap();
    assert_eq!(inflated(&ours), inflated(NODE_RTM2_DUPLICATE));
}

/// Python `RtcTokenBuilder.build_token_with_uid(APP_ID, CERT, CHANNEL, 2882341273, role,
/// 3600)` (privilege_expire left at its default 0), clock 1700000000, salt 12345.
const PY_RTC_PUBLISHER_DEFAULT_PRIVILEGE: &str = "007eJxTYHDQ//PYyc2xIJc//cqrTcJdf47l/VsdxVCZUjFxQw/fNkYFBktzA2dHY9OUVDODZBMTMxPTpKTEVItEI0NTAzPDJGNjho/BqQJ8DAyWBgwMjEDIAsQgwAQmmcEkC5hUYDBPMTcyNjNNTbK0MDaxMDW2NE81TjVOs0wxMTNISklJ5GIwsrAwMjYxNDI3BgCvAyUs";
const PY_RTC_SUBSCRIBER_DEFAULT_PRIVILEGE: &str = "007eJxTYLDyOb32KmOSsLMiy0fucM0ktjk+80zu37rFfjlceQvHfn4FBktzA2dHY9OUVDODZBMTMxPTpKTEVItEI0NTAzPDJGNjho/BqQJ8DAyWBgwMjFAIAgoM5inmRsZmpqlJlhbGJhamxpbmqcapxmmWKSZmBkkpKYlcDEYWFkbGJoZG5sYAdh8iTw==";

#[test]
fn python_builder_default_packs_privilege_expiry_zero() {
    for token in [
        PY_RTC_PUBLISHER_DEFAULT_PRIVILEGE,
        PY_RTC_SUBSCRIBER_DEFAULT_PRIVILEGE,
    ] {
        let t = agora::verify_007(token, CERT).unwrap();
        assert_eq!(t.expire, 3600);
        assert!(t.services[0].privileges.iter().all(|&(_, e)| e == 0));
        // No privilege-level expiry: the token's own expiry is the one a keeper uses.
        assert_eq!(t.effective_expires_at(), 1_700_003_600);
    }
}

#[cfg(feature = "mint")]
#[test]
fn rtc_builder_with_privilege_expire_zero_matches_the_python_default() {
    use tokenkeeper::mint::agora::{RtcRole, build_rtc_token_with_uid};
    for (role, vendor) in [
        (RtcRole::Publisher, PY_RTC_PUBLISHER_DEFAULT_PRIVILEGE),
        (RtcRole::Subscriber, PY_RTC_SUBSCRIBER_DEFAULT_PRIVILEGE),
    ] {
        let ours = build_rtc_token_with_uid(
            APP_ID,
            CERT,
            CHANNEL,
            2_882_341_273,
            role,
            3600,
            0,
            1_700_000_000,
            12345,
        )
        .unwrap();
        assert_eq!(inflated(&ours), inflated(vendor), "{role:?}");
    }
}

/// zego_server_assistant `token04.py` (GCM) for app id 4294967296 = 2^32, user `user1`,
/// 3600 s, clock 1700000000.25, nonce 58202939, IV `q4f5zr37e3p3`.
const PY_GCM_APP_ID_2_POW_32: &str = "04AAAAAGVT/xAADHE0ZjV6cjM3ZTNwMwB8MqLvHurdoatbh6E+gsVfMWssCEkwoHqNlwJAJsCgcHFyRz5V1Mps51zUP2LOrBCYFrFtUOsxkmrpI7krDJIgomSCZsaQLj81tPWH5hDsU1effgmuOnlg4xXhyS5oSxqEruuAKp/h+MK8yXBuFFUw94R/Ux7N+ndz4SRheAE=";
/// The legacy CBC `token04.py` for the same app id (IV `f60d19e3163809fa`).
const PY_CBC_APP_ID_2_POW_32: &str = "04AAAAAGVT/xAAEGY2MGQxOWUzMTYzODA5ZmEAcOurYGOKOmmSymIQuApxtC/X1FtFhzA84/3FEB8+GxwdLSqu8+fpZwyWlYymUj39zOJP/E/aO0P21LLPUHg1qXNFAQzbHOm0Z1k78fe10D0gzYCeu6/dU/FYOoXThB+zhaAqY4JmOHBLXQusj9oWqG8=";
/// `token04.py` (GCM) for the largest 32-bit app id, 4294967295: nonce 43464098, IV
/// `9p34y6n3wd25`, otherwise as above.
const PY_GCM_APP_ID_U32_MAX: &str = "04AAAAAGVT/xAADDlwMzR5Nm4zd2QyNQB8kpf92Iu4B7foIQDoYKWn0jJySvmO0qZzQYsaEAHZm5zzNpXzOhN1fUjfQz51kUGhxZ6+uIYKwk1kDbCfHKzrRcqbfDkTq4hFSFqVlgSxn7H1brlhVjFSL+dYoTGGf+VXy9tmar/QdCw4LBjTZf8NpEVI+N6iJi/cvZ4tpQE=";

#[test]
fn zego_app_id_past_u32_is_reported_as_out_of_range_not_as_a_bad_secret() {
    for (token, variant) in [
        (PY_GCM_APP_ID_2_POW_32, "gcm"),
        (PY_CBC_APP_ID_2_POW_32, "cbc"),
    ] {
        let err = zego::decrypt_04(token, ZEGO_SECRET).unwrap_err();
        assert_eq!(
            err,
            FormatError::ZegoAppIdOutOfRange {
                app_id: "4294967296".into(),
                variant,
            }
        );
        let msg = err.to_string();
        assert!(msg.contains("app id 4294967296 is out of range"), "{msg}");
        assert!(msg.contains("at most 4294967295"), "{msg}");
        assert!(!msg.contains(ZEGO_SECRET), "{msg}");
    }
    let gcm = zego::decrypt_04(PY_GCM_APP_ID_2_POW_32, ZEGO_SECRET).unwrap_err();
    assert!(gcm.to_string().contains("GCM tag authenticates it"));
}

#[test]
fn zego_app_id_out_of_range_still_needs_the_right_secret() {
    assert_eq!(
        zego::decrypt_04(PY_GCM_APP_ID_2_POW_32, "00000000000000000000000000000000").unwrap_err(),
        FormatError::DecryptFailed { variant: "gcm" }
    );
}

#[test]
fn zego_largest_u32_app_id_decrypts() {
    let (_, p) = zego::decrypt_04(PY_GCM_APP_ID_U32_MAX, ZEGO_SECRET).unwrap();
    assert_eq!(p.app_id, 4_294_967_295);
    assert_eq!(p.nonce, 43_464_098);
    assert_eq!(p.expire, 1_700_003_600);
}

#[cfg(feature = "mint")]
#[test]
fn zego_mint_reproduces_the_largest_u32_app_id_token() {
    use tokenkeeper::mint::zego::{Token04Mode, generate_token04};
    let ours = generate_token04(
        4_294_967_295,
        "user1",
        ZEGO_SECRET,
        3600,
        "",
        Token04Mode::Gcm,
        1_700_000_000,
        43_464_098,
        b"9p34y6n3wd25",
    )
    .unwrap();
    assert_eq!(ours, PY_GCM_APP_ID_U32_MAX);
}
