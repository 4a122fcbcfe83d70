//! Property tests: what is minted decodes back to its inputs, for every format.
#![cfg(feature = "mint")]

use proptest::prelude::*;
use serde_json::json;
use tokenkeeper::formats::{self, FormatError, TokenDetails, agora, jwt, zego};
use tokenkeeper::mint::MintError;
use tokenkeeper::mint::agora::{
    RtcRole, Rtm2Permission, Service, ServiceKind, build_access_token2, build_rtc_token_with_uid,
    build_token_006, uid_string,
};
use tokenkeeper::mint::zego::{Token04Mode, generate_token04};

const APP_ID: &str = "970CA35de60c44645bbae8a215061b33";
const CERT: &str = "5CFd2fd1755d40ecb72977518be15d3b";
const SECRET: &str = "fa94dd0f974cf2e293728a526b028271";

fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        any::<String>(),
        "[a-z0-9_-]{1,64}",
        "\\PC{0,40}"
    ]
}

fn any_u32() -> impl Strategy<Value = u32> {
    prop_oneof![Just(0u32), Just(1), Just(u32::MAX), any::<u32>()]
}

fn any_kind() -> impl Strategy<Value = ServiceKind> {
    prop_oneof![
        (any_text(), any_text())
            .prop_map(|(channel_name, uid)| ServiceKind::Rtc { channel_name, uid }),
        any_text().prop_map(|user_id| ServiceKind::Rtm { user_id }),
        (any_text(), any_text()).prop_map(|(channel_name, account)| ServiceKind::Streaming {
            channel_name,
            account
        }),
        Just(ServiceKind::Fpa),
        any_text().prop_map(|user_id| ServiceKind::Chat { user_id }),
        (any_text(), any_text()).prop_map(|(channel_name, account)| ServiceKind::Fcdn {
            channel_name,
            account
        }),
        (any_text(), any_text(), any::<i16>()).prop_map(|(room_uuid, user_uuid, role)| {
            ServiceKind::Apaas {
                room_uuid,
                user_uuid,
                role,
            }
        }),
        (
            any_text(),
            proptest::collection::btree_map(
                (0u16..5, 0u16..2),
                proptest::collection::vec(any_text(), 0..3),
                0..4
            )
        )
            .prop_map(|(user_id, m)| ServiceKind::Rtm2 {
                user_id,
                permissions: m
                    .into_iter()
                    .map(|((resource, permission), resources)| Rtm2Permission {
                        resource,
                        permission,
                        resources,
                    })
                    .collect(),
            }),
    ]
}

fn any_service() -> impl Strategy<Value = Service> {
    (
        any_kind(),
        proptest::collection::btree_map(any::<u16>(), any_u32(), 0..5),
    )
        .prop_map(|(kind, p)| {
            let mut s = Service::new(kind);
            for (id, e) in p {
                s.add_privilege(id, e);
            }
            s
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn minted_007_decodes_to_its_services_sorted_by_type(
        services in proptest::collection::vec(any_service(), 1..6),
        issue_ts in any_u32(), expire in any_u32(), salt in any_u32(),
    ) {
        let token = build_access_token2(APP_ID, CERT, issue_ts, expire, salt, &services).unwrap();
        let t = agora::verify_007(&token, CERT).unwrap();
        let mut expected = services.clone();
        expected.sort_by_key(|s| s.kind.service_type());
        prop_assert_eq!(&t.services, &expected);
        prop_assert_eq!((t.issue_ts, t.expire, t.salt), (issue_ts, expire, salt));
        prop_assert_eq!(t.unknown_service_type, None);
        prop_assert_eq!(t.expire_at(), i64::from(issue_ts) + i64::from(expire));
    }

    #[test]
    fn minted_rtc_token_carries_uid_role_and_expiry(
        channel in any_text(), uid in any_u32(), publisher in any::<bool>(),
        token_expire in any_u32(), privilege_expire in any_u32(), issue_ts in any_u32(), salt in any_u32(),
    ) {
        let role = if publisher { RtcRole::Publisher } else { RtcRole::Subscriber };
        let token = build_rtc_token_with_uid(APP_ID, CERT, &channel, uid, role, token_expire, privilege_expire, issue_ts, salt).unwrap();
        let info = formats::describe(&token).unwrap();
        let TokenDetails::Agora007(t) = &info.details else { panic!("not 007") };
        let ids: Vec<u16> = t.services[0].privileges.iter().map(|p| p.0).collect();
        prop_assert_eq!(ids, if publisher { vec![1, 2, 3, 4] } else { vec![1] });
        prop_assert_eq!(&t.services[0].kind, &ServiceKind::Rtc { channel_name: channel.clone(), uid: uid_string(uid) });
        let token_end = i64::from(issue_ts) + i64::from(token_expire);
        let expected = if privilege_expire == 0 { token_end } else { token_end.min(i64::from(issue_ts) + i64::from(privilege_expire)) };
        prop_assert_eq!(info.expires_at, Some(expected));
    }

    #[test]
    fn minted_006_decodes_and_verifies(
        channel in any_text(), uid in any_u32(), salt in any_u32(), ts in any_u32(),
        privileges in proptest::collection::btree_map(any::<u16>(), any_u32(), 0..6),
    ) {
        let p: Vec<(u16, u32)> = privileges.into_iter().collect();
        let uid = uid_string(uid);
        let token = build_token_006(APP_ID, CERT, &channel, &uid, salt, ts, &p).unwrap();
        let t = agora::decode_006(&token).unwrap();
        prop_assert_eq!((t.salt, t.ts), (salt, ts));
        prop_assert_eq!(&t.privileges, &p);
        t.verify(CERT, &channel, &uid).unwrap();
    }

    #[test]
    fn minted_zego_token_decrypts_to_its_inputs(
        app_id in prop_oneof![Just(1u32), Just(u32::MAX), 1u32..],
        user_id in "\\PC{1,16}",
        payload in any_text(),
        effective in prop_oneof![Just(1i64), Just(i64::MAX / 2), 1i64..10_000_000],
        ctime in prop_oneof![Just(0i64), Just(i64::MIN / 2), any::<i32>().prop_map(i64::from)],
        nonce in any::<i32>(), gcm in any::<bool>(), iv in proptest::collection::vec(any::<u8>(), 16),
    ) {
        prop_assume!(user_id.len() <= 64);
        let mode = if gcm { Token04Mode::Gcm } else { Token04Mode::Cbc };
        let iv = &iv[..mode.iv_len()];
        let token = generate_token04(app_id, &user_id, SECRET, effective, &payload, mode, ctime, nonce, iv).unwrap();
        let (t, p) = zego::decrypt_04(&token, SECRET).unwrap();
        prop_assert_eq!(t.expire, ctime + effective);
        prop_assert_eq!(t.variant.as_str(), if gcm { "gcm" } else { "cbc" });
        prop_assert_eq!((p.app_id, p.user_id.as_str(), p.nonce, p.ctime, p.payload.as_str()),
            (app_id, user_id.as_str(), i64::from(nonce), ctime, payload.as_str()));
    }

    #[test]
    fn minted_jwt_decodes_and_verifies_with_its_key_only(
        key in proptest::collection::vec(any::<u8>(), 1..64),
        room in any_text(), user in any_text(), exp in 0i64..4_000_000_000,
    ) {
        let claims = json!({"room": room, "user_id": user, "user_type": 1, "exp": exp});
        let token = tokenkeeper::mint::jwt::sign_hs256(&key, &claims).unwrap();
        let info = formats::describe(&token).unwrap();
        prop_assert_eq!(info.expires_at, Some(exp));
        let t = jwt::verify(&token, &key, jwt::JwtAlgorithm::Hs256, exp - 1, 0).unwrap();
        prop_assert_eq!(t.claims(), &claims);
        let mut other = key.clone();
        other[0] ^= 1;
        let wrong = jwt::verify(&token, &other, jwt::JwtAlgorithm::Hs256, exp - 1, 0);
        prop_assert!(matches!(wrong, Err(FormatError::SignatureMismatch { .. })), "wrong key accepted");
    }
}

#[test]
fn maximal_u16_strings_round_trip_and_one_more_byte_is_refused() {
    let max = "c".repeat(usize::from(u16::MAX));
    let token =
        build_rtc_token_with_uid(APP_ID, CERT, &max, 7, RtcRole::Publisher, 1, 1, 1, 1).unwrap();
    let t = agora::verify_007(&token, CERT).unwrap();
    assert_eq!(
        t.services[0].kind,
        ServiceKind::Rtc {
            channel_name: max.clone(),
            uid: "7".into()
        }
    );
    let over = format!("{max}c");
    assert_eq!(
        build_rtc_token_with_uid(APP_ID, CERT, &over, 7, RtcRole::Publisher, 1, 1, 1, 1)
            .unwrap_err(),
        MintError::TooLong {
            field: "channel_name",
            len: 65536,
            max: 65535
        }
    );
}

#[test]
fn zego_inputs_are_validated_like_the_official_generator() {
    let iv = [0u8; 12];
    let mk = |app_id, user: &str, secret: &str, eff, ctime| {
        generate_token04(
            app_id,
            user,
            secret,
            eff,
            "",
            Token04Mode::Gcm,
            ctime,
            1,
            &iv,
        )
    };
    assert_eq!(mk(0, "u", SECRET, 1, 0).unwrap_err(), MintError::ZegoAppId);
    assert_eq!(mk(1, "", SECRET, 1, 0).unwrap_err(), MintError::EmptyUserId);
    assert_eq!(
        mk(1, &"u".repeat(65), SECRET, 1, 0).unwrap_err(),
        MintError::TooLong {
            field: "user id",
            len: 65,
            max: 64
        }
    );
    assert_eq!(
        mk(1, "u", "abc", 1, 0).unwrap_err(),
        MintError::ZegoSecret { len: 3 }
    );
    assert_eq!(
        mk(1, "u", SECRET, 0, 0).unwrap_err(),
        MintError::EffectiveTime { secs: 0 }
    );
    assert_eq!(
        mk(1, "u", SECRET, 2, i64::MAX - 1).unwrap_err(),
        MintError::EffectiveTime { secs: 2 }
    );
    assert_eq!(
        generate_token04(1, "u", SECRET, 1, "", Token04Mode::Cbc, 0, 1, &iv).unwrap_err(),
        MintError::IvLength {
            variant: "cbc",
            expected: 16,
            len: 12
        }
    );
    let token = mk(1, &"u".repeat(64), SECRET, 1, i64::MAX - 1).unwrap();
    assert_eq!(zego::decode_04(&token).unwrap().expire, i64::MAX);
}

#[test]
fn agora_credentials_must_be_32_hex_characters() {
    let err = build_rtc_token_with_uid(
        "not-an-app-id",
        CERT,
        "c",
        1,
        RtcRole::Publisher,
        1,
        1,
        1,
        1,
    )
    .unwrap_err();
    assert_eq!(
        err,
        MintError::AgoraCredential {
            setting: "app id",
            len: 13,
            non_hex: " including non-hex ones"
        }
    );
    let err = build_rtc_token_with_uid(APP_ID, &CERT[..31], "c", 1, RtcRole::Publisher, 1, 1, 1, 1)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Agora app certificate must be 32 hexadecimal characters, got 31 characters: copy it from the Agora console (project settings)"
    );
    assert_eq!(
        build_access_token2(APP_ID, CERT, 1, 1, 1, &[]).unwrap_err(),
        MintError::NoServices
    );
}

#[test]
fn privilege_payload_matches_the_vector_payload_text() {
    assert_eq!(
        tokenkeeper::mint::zego::privilege_payload("room1", true, false, None),
        r#"{"room_id":"room1","privilege":{"1":1,"2":0},"stream_id_list":null}"#
    );
    assert_eq!(
        tokenkeeper::mint::zego::privilege_payload(
            "demo-room",
            true,
            true,
            Some(&["s123".into(), "s456".into()])
        ),
        r#"{"room_id":"demo-room","privilege":{"1":1,"2":1},"stream_id_list":["s123","s456"]}"#
    );
}

#[test]
fn zego_payload_up_to_the_u16_ciphertext_limit_round_trips_and_beyond_is_refused() {
    let iv = [7u8; 12];
    let big = "p".repeat(60_000);
    let token = generate_token04(
        9,
        "u",
        SECRET,
        60,
        &big,
        Token04Mode::Gcm,
        1_700_000_000,
        1,
        &iv,
    )
    .unwrap();
    let (_, p) = zego::decrypt_04(&token, SECRET).unwrap();
    assert_eq!(p.payload, big);
    let over = "p".repeat(65_535);
    assert!(matches!(
        generate_token04(
            9,
            "u",
            SECRET,
            60,
            &over,
            Token04Mode::Gcm,
            1_700_000_000,
            1,
            &iv
        ),
        Err(MintError::TooLong {
            field: "payload",
            ..
        })
    ));
}
