//! Hostile input: every decoder returns a typed error (never panics) on truncated,
//! bit-flipped, random and crafted tokens, with bounded memory.

use std::io::Write;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use proptest::prelude::*;
use sha2::Sha256;
use tokenkeeper::formats::{self, FormatError, MAX_INFLATED_LEN, agora, jwt, zego};

use crate::formats_vectors::{agora_vectors, zego_vectors};

fn all_vector_tokens() -> Vec<String> {
    let mut v: Vec<String> = agora_vectors()
        .iter()
        .map(|v| v["token"].as_str().unwrap().to_owned())
        .collect();
    v.extend(
        zego_vectors()
            .iter()
            .map(|v| v["expected"]["token"].as_str().unwrap().to_owned()),
    );
    v
}

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn inflate(data: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::ZlibDecoder::new(data)
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn token_007_from_payload(payload: &[u8]) -> String {
    format!("007{}", STANDARD.encode(zlib(payload)))
}

#[test]
fn every_truncation_of_every_vector_gives_a_value_or_a_typed_error() {
    for token in all_vector_tokens() {
        for end in 0..token.len() {
            // Any outcome but a panic is acceptable for a prefix; most are errors.
            let _ = formats::describe(&token[..end]);
        }
        // Cutting into the body of a 007 always fails (the zlib stream is incomplete).
        if token.starts_with("007") {
            let cut = &token[..token.len() - 8];
            assert!(matches!(
                agora::decode_007(cut),
                Err(FormatError::Zlib { .. } | FormatError::Base64 { .. })
            ));
        }
    }
}

#[test]
fn bit_flips_never_verify_and_never_panic() {
    let cert = "5CFd2fd1755d40ecb72977518be15d3b";
    for v in agora_vectors()
        .iter()
        .filter(|v| v["format"] == "007")
        .take(8)
    {
        let token = v["token"].as_str().unwrap();
        let raw = STANDARD.decode(&token[3..]).unwrap();
        for i in 0..raw.len() {
            for bit in [0x01u8, 0x80] {
                let mut m = raw.clone();
                m[i] ^= bit;
                let flipped = format!("007{}", STANDARD.encode(&m));
                if agora::verify_007(&flipped, cert).is_ok() {
                    // Only possible when the flip hit deflate padding bits that inflaters
                    // ignore: the signed payload must be unchanged.
                    assert_eq!(
                        inflate(&m),
                        inflate(&raw),
                        "flip at {i} verified a changed payload"
                    );
                }
            }
        }
    }
    for v in zego_vectors() {
        let token = v["expected"]["token"].as_str().unwrap();
        let secret = v["inputs"]["secret"].as_str().unwrap();
        let raw = STANDARD.decode(&token[2..]).unwrap();
        for i in 0..raw.len() {
            let mut m = raw.clone();
            m[i] ^= 0x04;
            let flipped = format!("04{}", STANDARD.encode(&m));
            let result = zego::decrypt_04(&flipped, secret);
            if v["variant"] == "gcm" {
                assert!(result.is_err(), "{}: flip at {i} decrypted", v["id"]);
            } else if let Ok((_, p)) = result {
                // Legacy CBC has no integrity check: a flip in the IV or a block can yield
                // altered JSON that still parses. It must never pass as the original.
                assert_ne!(
                    p.plaintext_json,
                    v["expected"]["plaintext_json"].as_str().unwrap()
                );
            }
        }
    }
}

#[test]
fn wrong_prefixes_are_explained() {
    let err = formats::describe("005006ABC").unwrap_err();
    assert!(err.to_string().contains("neither 007 nor 006"), "{err}");
    assert_eq!(formats::describe("   ").unwrap_err(), FormatError::Empty);
    let err = formats::describe("Bearer abc").unwrap_err();
    assert!(err.to_string().contains("Bearer"), "{err}");
    let err = formats::describe("{\"token\":\"x\"}").unwrap_err();
    assert!(err.to_string().contains("JSON document"), "{err}");
    assert!(matches!(
        formats::describe(&"a".repeat(formats::MAX_TOKEN_LEN + 1)),
        Err(FormatError::TooLong { .. })
    ));
}

#[test]
fn bad_base64_is_a_typed_error() {
    assert!(matches!(
        agora::decode_007("007$$$$"),
        Err(FormatError::Base64 {
            format: "agora-007",
            ..
        })
    ));
    assert!(matches!(
        zego::decode_04("04@@@@"),
        Err(FormatError::Base64 {
            format: "zego-04",
            ..
        })
    ));
    let app = "970CA35de60c44645bbae8a215061b33";
    assert!(matches!(
        agora::decode_006(&format!("006{app}%%%")),
        Err(FormatError::Base64 { .. })
    ));
    assert!(matches!(
        jwt::decode("e30.@@.x"),
        Err(FormatError::Base64 { format: "jwt", .. })
    ));
}

#[test]
fn length_fields_past_the_end_are_truncation_errors() {
    // signature length 0xFFFF with 2 bytes behind it
    let t = token_007_from_payload(&[0xff, 0xff, 1, 2]);
    assert_eq!(
        agora::decode_007(&t).unwrap_err(),
        FormatError::Truncated {
            format: "agora-007",
            field: "signature"
        }
    );
    // a service count of 65535 with no service bytes
    let mut p = vec![0, 0];
    p.extend([2, 0, b'a', b'b']);
    p.extend([0u8; 12]);
    p.extend([0xff, 0xff]);
    assert_eq!(
        agora::decode_007(&token_007_from_payload(&p)).unwrap_err(),
        FormatError::Truncated {
            format: "agora-007",
            field: "service type"
        }
    );
    // a privilege count that cannot fit in what remains
    let mut q = p[..p.len() - 2].to_vec();
    q.extend([1, 0, 1, 0, 0xff, 0xff]);
    assert_eq!(
        agora::decode_007(&token_007_from_payload(&q)).unwrap_err(),
        FormatError::Truncated {
            format: "agora-007",
            field: "privileges"
        }
    );
    // ZEGO iv length past the end
    let mut z = 1_700_000_000i64.to_be_bytes().to_vec();
    z.extend([0xff, 0xff, 1, 2, 3]);
    assert_eq!(
        zego::decode_04(&format!("04{}", STANDARD.encode(&z))).unwrap_err(),
        FormatError::Truncated {
            format: "zego-04",
            field: "iv"
        }
    );
    // ZEGO ciphertext length past the end
    let mut z = 1_700_000_000i64.to_be_bytes().to_vec();
    z.extend([0, 12]);
    z.extend([0u8; 12]);
    z.extend([0x10, 0x00, 1]);
    assert_eq!(
        zego::decode_04(&format!("04{}", STANDARD.encode(&z))).unwrap_err(),
        FormatError::Truncated {
            format: "zego-04",
            field: "ciphertext"
        }
    );
}

#[test]
fn zlib_bombs_are_capped() {
    let bomb = vec![0u8; 50 * 1024 * 1024];
    let token = token_007_from_payload(&bomb);
    assert!(
        token.len() < 100_000,
        "bomb token is small: {}",
        token.len()
    );
    assert_eq!(
        agora::decode_007(&token).unwrap_err(),
        FormatError::InflatedTooLarge {
            limit: MAX_INFLATED_LEN
        }
    );
}

#[test]
fn unknown_service_type_ends_decoding_gracefully_and_still_verifies() {
    let cert = "5CFd2fd1755d40ecb72977518be15d3b";
    let (issue_ts, salt) = (1_111_111u32, 1u32);
    let mut info = Vec::new();
    let app = b"970CA35de60c44645bbae8a215061b33";
    info.extend((app.len() as u16).to_le_bytes());
    info.extend(app);
    info.extend(issue_ts.to_le_bytes());
    info.extend(600u32.to_le_bytes());
    info.extend(salt.to_le_bytes());
    info.extend(3u16.to_le_bytes());
    // FPA (type 4): one privilege, no body
    info.extend([4, 0, 1, 0, 1, 0, 0x58, 0x02, 0, 0]);
    // an unknown type 42 with some body, then another FPA that official parsers never reach
    info.extend([42, 0, 9, 9, 9, 9]);
    info.extend([4, 0, 1, 0, 1, 0, 0x58, 0x02, 0, 0]);
    let mut mac = Hmac::<Sha256>::new_from_slice(&issue_ts.to_le_bytes()).unwrap();
    mac.update(cert.as_bytes());
    let k1 = mac.finalize().into_bytes();
    let mut mac = Hmac::<Sha256>::new_from_slice(&salt.to_le_bytes()).unwrap();
    mac.update(&k1);
    let key = mac.finalize().into_bytes();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(&info);
    let sig = mac.finalize().into_bytes();
    let mut payload = vec![32, 0];
    payload.extend(sig);
    payload.extend(&info);
    let token = token_007_from_payload(&payload);

    let t = agora::verify_007(&token, cert).unwrap();
    assert_eq!(t.unknown_service_type, Some(42));
    assert_eq!(t.services.len(), 1);
    assert_eq!(t.services[0].kind, agora::ServiceKind::Fpa);
    assert_eq!(t.to_json()["unknown_service_type"], 42);
}

fn jwt_with(header: &str, claims: &str, key: &[u8]) -> String {
    let h = URL_SAFE_NO_PAD.encode(header);
    let c = URL_SAFE_NO_PAD.encode(claims);
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(format!("{h}.{c}").as_bytes());
    format!(
        "{h}.{c}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

#[test]
fn jwt_alg_none_and_algorithm_mismatch_are_refused() {
    use jwt::JwtAlgorithm::{Hs256, Hs512};
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
        URL_SAFE_NO_PAD.encode(r#"{"sub":"a"}"#)
    );
    assert_eq!(
        jwt::verify(&none, b"k", Hs256, 0, 0).unwrap_err(),
        FormatError::JwtAlgNone
    );
    let hs256 = jwt_with(r#"{"alg":"HS256","typ":"JWT"}"#, r#"{"sub":"a"}"#, b"k");
    assert_eq!(
        jwt::verify(&hs256, b"k", Hs512, 0, 0).unwrap_err(),
        FormatError::JwtAlgorithmMismatch {
            expected: "HS512",
            found: "HS256".into()
        }
    );
    assert_eq!(
        jwt::verify(&hs256, b"k", Hs256, 0, 0).unwrap().claims()["sub"],
        "a"
    );
    let rs = jwt_with(r#"{"alg":"RS256"}"#, r#"{"sub":"a"}"#, b"k");
    assert!(matches!(
        jwt::verify(&rs, b"k", Hs256, 0, 0),
        Err(FormatError::JwtAlgorithmMismatch { .. })
    ));
}

#[test]
fn jwt_exp_and_nbf_are_checked_with_the_stated_leeway() {
    use jwt::JwtAlgorithm::Hs256;
    let t = jwt_with(r#"{"alg":"HS256"}"#, r#"{"nbf":1000,"exp":2000}"#, b"k");
    assert!(jwt::verify(&t, b"k", Hs256, 1500, 0).is_ok());
    assert_eq!(
        jwt::verify(&t, b"k", Hs256, 2100, 60).unwrap_err(),
        FormatError::JwtExpired {
            by_secs: 100,
            leeway_secs: 60
        }
    );
    assert!(jwt::verify(&t, b"k", Hs256, 2059, 60).is_ok());
    assert_eq!(
        jwt::verify(&t, b"k", Hs256, 900, 60).unwrap_err(),
        FormatError::JwtNotYetValid {
            in_secs: 100,
            leeway_secs: 60
        }
    );
    assert!(jwt::verify(&t, b"k", Hs256, 941, 60).is_ok());
}

#[test]
fn errors_never_contain_token_bytes() {
    for token in all_vector_tokens() {
        let body = &token[token.len() - 20..];
        let mut broken = token.clone();
        broken.truncate(token.len() - 1);
        broken.push('!');
        if let Err(e) = formats::describe(&broken) {
            assert!(!e.to_string().contains(body), "{e}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_text_never_panics(s in "\\PC{0,300}") {
        let _ = formats::describe(&s);
    }

    #[test]
    fn random_bodies_behind_every_prefix_never_panic(
        prefix in prop_oneof![Just("007"), Just("006"), Just("04"), Just("")],
        body in proptest::collection::vec(any::<u8>(), 0..300),
        compress in any::<bool>(),
    ) {
        let data = if compress { zlib(&body) } else { body };
        let token = format!("{prefix}{}", STANDARD.encode(&data));
        let _ = formats::describe(&token);
        let _ = zego::decrypt_04(&token, "fa94dd0f974cf2e293728a526b028271");
        let _ = agora::verify_007(&token, "5CFd2fd1755d40ecb72977518be15d3b");
        let jwtish = format!("{0}.{0}.{0}", URL_SAFE_NO_PAD.encode(&data));
        let _ = jwt::verify(&jwtish, b"k", jwt::JwtAlgorithm::Hs256, 0, 60);
    }
}
