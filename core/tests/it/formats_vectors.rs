//! Every shared vector (official Agora and ZEGO implementations) decodes, verifies and —
//! with `mint` — rebuilds exactly.

use std::io::Read;

use serde_json::Value;
use tokenkeeper::formats::{self, FormatError, TokenFormat, agora, zego};

fn load(name: &str) -> Vec<Value> {
    let path = format!("{}/../../shared/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    let v: Value = serde_json::from_str(&text).expect("vector file is JSON");
    v["vectors"].as_array().expect("vectors list").clone()
}

pub(crate) fn agora_vectors() -> Vec<Value> {
    load("agora_official.json")
}

pub(crate) fn zego_vectors() -> Vec<Value> {
    load("zego_token04.json")
}

fn inflate_token_body(token: &str) -> Vec<u8> {
    use base64::Engine as _;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(&token[3..])
        .expect("base64");
    let mut out = Vec::new();
    flate2::read::ZlibDecoder::new(raw.as_slice())
        .read_to_end(&mut out)
        .expect("zlib");
    out
}

const WRONG_CERT: &str = "5CFd2fd1755d40ecb72977518be15d3c";

#[test]
fn every_agora_vector_decodes_to_its_decoded_fields() {
    let vectors = agora_vectors();
    assert_eq!(vectors.len(), 37);
    for v in &vectors {
        let token = v["token"].as_str().unwrap();
        let got = match v["format"].as_str().unwrap() {
            "007" => agora::decode_007(token).unwrap().to_json(),
            "006" => agora::decode_006(token).unwrap().to_json(),
            other => panic!("unexpected format {other}"),
        };
        assert_eq!(got, v["decoded"], "vector {}", v["id"]);
    }
}

#[test]
fn every_agora_007_token_inflates_to_payload_hex() {
    for v in agora_vectors().iter().filter(|v| v["format"] == "007") {
        let body = inflate_token_body(v["token"].as_str().unwrap());
        assert_eq!(
            hex::encode(body),
            v["payload_hex"].as_str().unwrap(),
            "vector {}",
            v["id"]
        );
    }
}

#[test]
fn agora_signatures_verify_with_the_right_certificate_only() {
    for v in agora_vectors() {
        let token = v["token"].as_str().unwrap();
        let cert = v["inputs"]["app_certificate"].as_str().unwrap();
        if v["format"] == "007" {
            let t = agora::verify_007(token, cert).unwrap_or_else(|e| panic!("{}: {e}", v["id"]));
            assert_eq!(t.app_id, v["decoded"]["app_id"].as_str().unwrap());
            assert_eq!(
                agora::verify_007(token, WRONG_CERT).unwrap_err(),
                FormatError::SignatureMismatch {
                    format: "agora-007",
                    key_name: "app certificate"
                },
                "vector {}",
                v["id"]
            );
        } else {
            let t = agora::decode_006(token).unwrap();
            let channel = v["inputs"]["channel_name"].as_str().unwrap();
            let uid = v["inputs"]["uid_packed"].as_str().unwrap();
            t.verify(cert, channel, uid).unwrap();
            assert!(matches!(
                t.verify(WRONG_CERT, channel, uid),
                Err(FormatError::SignatureMismatch { .. })
            ));
            assert!(matches!(
                t.verify(cert, "other-channel", uid),
                Err(FormatError::PayloadMismatch { .. })
            ));
        }
    }
}

#[test]
fn describe_reports_agora_expiry_app_and_user() {
    let v = agora_vectors()
        .into_iter()
        .find(|v| v["id"] == "py_rtc_uid")
        .unwrap();
    let info = formats::describe(v["token"].as_str().unwrap()).unwrap();
    assert_eq!(info.format, TokenFormat::Agora007);
    assert_eq!(info.issued_at, Some(1_111_111));
    assert_eq!(info.expires_at, Some(1_111_711));
    assert_eq!(
        info.app_id.as_deref(),
        Some("970CA35de60c44645bbae8a215061b33")
    );
    assert_eq!(
        info.channel.as_deref(),
        Some("7d72365eb983485397e3e3f9d460bdda")
    );
    assert_eq!(info.user.as_deref(), Some("2882341273"));

    let v006 = agora_vectors()
        .into_iter()
        .find(|v| v["id"] == "py006_uid")
        .unwrap();
    let info = formats::describe(v006["token"].as_str().unwrap()).unwrap();
    assert_eq!(info.format, TokenFormat::Agora006);
    assert_eq!(info.expires_at, Some(1_111_111));
}

#[test]
fn every_zego_vector_reads_expiry_without_secret_and_decrypts_with_it() {
    let vectors = zego_vectors();
    assert_eq!(vectors.len(), 8);
    for v in &vectors {
        let token = v["expected"]["token"].as_str().unwrap();
        let t = zego::decode_04(token).unwrap();
        assert_eq!(t.expire, v["expected"]["expire"].as_i64().unwrap());
        assert_eq!(t.variant.as_str(), v["variant"].as_str().unwrap());
        let info = formats::describe(token).unwrap();
        assert_eq!(info.format, TokenFormat::Zego04);
        assert_eq!(info.expires_at, Some(t.expire));

        let p = t.decrypt(v["inputs"]["secret"].as_str().unwrap()).unwrap();
        assert_eq!(
            p.plaintext_json,
            v["expected"]["plaintext_json"].as_str().unwrap(),
            "{}",
            v["id"]
        );
        assert_eq!(p.to_json(), v["expected"]["decrypted"], "{}", v["id"]);
        assert_eq!(
            t.decrypt("00000000000000000000000000000000").unwrap_err(),
            FormatError::DecryptFailed {
                variant: t.variant.as_str()
            }
            .clone(),
        );
    }
}

#[test]
fn zego_secret_of_wrong_length_is_named_not_echoed() {
    let v = &zego_vectors()[0];
    let t = zego::decode_04(v["expected"]["token"].as_str().unwrap()).unwrap();
    let err = t.decrypt("short-secret-value").unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("exactly 32 bytes, got 18"), "{msg}");
    assert!(!msg.contains("short-secret-value"));
}

#[cfg(feature = "mint")]
mod mint {
    use super::*;
    use tokenkeeper::mint::agora::{RtcRole, build_from_spec, build_rtc_token_with_uid};
    use tokenkeeper::mint::zego::{Token04Mode, generate_token04};

    #[test]
    fn every_agora_build_vector_rebuilds_to_the_same_payload() {
        for v in agora_vectors().iter().filter(|v| v["kind"] == "build") {
            let token =
                build_from_spec(&v["inputs"]).unwrap_or_else(|e| panic!("{}: {e}", v["id"]));
            if v["format"] == "007" {
                assert_eq!(
                    hex::encode(inflate_token_body(&token)),
                    v["payload_hex"].as_str().unwrap(),
                    "vector {}",
                    v["id"]
                );
            } else {
                // 006 has no compression: the string itself is deterministic.
                assert_eq!(token, v["token"].as_str().unwrap(), "vector {}", v["id"]);
            }
        }
    }

    #[test]
    fn rtc_builder_matches_the_official_python_vector() {
        let v = agora_vectors()
            .into_iter()
            .find(|v| v["id"] == "py_rtc_uid")
            .unwrap();
        // The python vector holds only join_channel: subscriber role.
        let token = build_rtc_token_with_uid(
            "970CA35de60c44645bbae8a215061b33",
            "5CFd2fd1755d40ecb72977518be15d3b",
            "7d72365eb983485397e3e3f9d460bdda",
            2882341273,
            RtcRole::Subscriber,
            600,
            600,
            1111111,
            1,
        )
        .unwrap();
        assert_eq!(
            hex::encode(inflate_token_body(&token)),
            v["payload_hex"].as_str().unwrap()
        );
    }

    #[test]
    fn every_zego_vector_mints_to_the_identical_token() {
        for v in zego_vectors() {
            let i = &v["inputs"];
            let iv = hex::decode(i["iv_hex"].as_str().unwrap()).unwrap();
            let mode = if v["variant"] == "gcm" {
                Token04Mode::Gcm
            } else {
                Token04Mode::Cbc
            };
            let token = generate_token04(
                u32::try_from(i["app_id"].as_u64().unwrap()).unwrap(),
                i["user_id"].as_str().unwrap(),
                i["secret"].as_str().unwrap(),
                i["effective_time_in_seconds"].as_i64().unwrap(),
                i["payload"].as_str().unwrap(),
                mode,
                i["ctime"].as_i64().unwrap(),
                i32::try_from(i["nonce"].as_i64().unwrap()).unwrap(),
                &iv,
            )
            .unwrap();
            assert_eq!(
                token,
                v["expected"]["token"].as_str().unwrap(),
                "vector {}",
                v["id"]
            );
        }
    }
}
