//! Edge cases where tokenkeeper must do what the vendors' own builders do (issue 13).
//!
//! The expected tokens below were produced by running the official implementations with
//! their clock and randomness pinned: AgoraIO/Tools `nodejs/src/AccessToken2.js`. Agora
//! builders in other languages deflate differently, so Agora tokens are compared by their
//! inflated payloads.

use std::io::Read;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use tokenkeeper::formats::agora;

const APP_ID: &str = "970CA35de60c44645bbae8a215061b33";
const CERT: &str = "5CFd2fd1755d40ecb72977518be15d3b";

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
