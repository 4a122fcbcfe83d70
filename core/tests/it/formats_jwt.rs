//! JWT verification from one decode: what it accepts and refuses. The signed tokens below
//! were made with Python's `hmac` and `base64` (an implementation independent of ours), key
//! `-shared key-`, claims `{"sub":"alice","room":"r1","nbf":1700000000,"exp":1700003600}`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tokenkeeper::formats::FormatError;
use tokenkeeper::formats::jwt::{self, JwtAlgorithm};

const KEY: &[u8] = b"-shared key-";
const HS256: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsInJvb20iOiJyMSIsIm5iZiI6MTcwMDAwMDAwMCwiZXhwIjoxNzAwMDAzNjAwfQ.prBw6MPAsiPai8DRSIrdfkOjHVubTFxmTFvxGIXB9II";
const HS384: &str = "eyJhbGciOiJIUzM4NCIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsInJvb20iOiJyMSIsIm5iZiI6MTcwMDAwMDAwMCwiZXhwIjoxNzAwMDAzNjAwfQ.kZHnWquDkKQ4oqoMJfJj1Wnr0kF5ZJAZ-__fYUvuSHYa_Z7eE14BT5tkzxdS22zh";
const HS512: &str = "eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsInJvb20iOiJyMSIsIm5iZiI6MTcwMDAwMDAwMCwiZXhwIjoxNzAwMDAzNjAwfQ.-VkA_f4K6_5CLEMF6NRMXSWQNywu7_G-GmqWWAnF8_9C4pPASVZYWVn-NzXqT2xkKI99esE5xV9lJfhmS75Yog";
const NOW: i64 = 1_700_000_100;

fn mismatch() -> FormatError {
    FormatError::SignatureMismatch {
        format: "jwt",
        key_name: "key",
    }
}

/// A token signed with `KEY` (HS256) over the given header and claims JSON.
fn hs256(header: &str, claims: &str) -> String {
    use hmac::{Hmac, Mac};
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(KEY).unwrap();
    mac.update(input.as_bytes());
    format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

/// The token with its signature part replaced.
fn with_signature(token: &str, sig: &str) -> String {
    let (input, _) = token.rsplit_once('.').unwrap();
    format!("{input}.{sig}")
}

#[test]
fn jwt_verify_accepts_each_hmac_algorithm_from_an_independent_signer() {
    for (token, alg) in [
        (HS256, JwtAlgorithm::Hs256),
        (HS384, JwtAlgorithm::Hs384),
        (HS512, JwtAlgorithm::Hs512),
    ] {
        let t = jwt::verify(token, KEY, alg, NOW, jwt::DEFAULT_LEEWAY_SECS).unwrap();
        assert_eq!(t.claims()["sub"], "alice");
        assert_eq!(t.alg(), Some(alg.as_str()));
    }
}

#[test]
fn jwt_verify_returns_what_decode_reads() {
    let verified = jwt::verify(HS256, KEY, JwtAlgorithm::Hs256, NOW, 0).unwrap();
    assert_eq!(verified, jwt::decode(HS256).unwrap());
    let padded_by_whitespace = format!("  {HS256}\n");
    assert_eq!(
        jwt::verify(&padded_by_whitespace, KEY, JwtAlgorithm::Hs256, NOW, 0).unwrap(),
        verified
    );
}

#[test]
fn jwt_verify_refuses_the_wrong_key() {
    assert_eq!(
        jwt::verify(HS256, b"-shared key", JwtAlgorithm::Hs256, NOW, 0).unwrap_err(),
        mismatch()
    );
    assert_eq!(
        jwt::verify(HS256, b"", JwtAlgorithm::Hs256, NOW, 0).unwrap_err(),
        mismatch()
    );
}

#[test]
fn jwt_verify_refuses_altered_claims() {
    let (h, rest) = HS256.split_once('.').unwrap();
    let (_, sig) = rest.split_once('.').unwrap();
    let claims = URL_SAFE_NO_PAD.encode(r#"{"sub":"mallory","room":"r1","exp":1700003600}"#);
    let forged = format!("{h}.{claims}.{sig}");
    assert_eq!(
        jwt::verify(&forged, KEY, JwtAlgorithm::Hs256, NOW, 0).unwrap_err(),
        mismatch()
    );
}

#[test]
fn jwt_verify_refuses_signatures_of_the_wrong_length_or_encoding() {
    let sig = HS256.rsplit_once('.').unwrap().1;
    let hs512_sig = HS512.rsplit_once('.').unwrap().1;
    // Truncated by one byte, extended by one byte, a longer algorithm's signature, empty,
    // longer than any HMAC, and the same bytes with a non-canonical last character (the
    // unused low bits set).
    let mut raw = URL_SAFE_NO_PAD.decode(sig).unwrap();
    raw.pop();
    let short = URL_SAFE_NO_PAD.encode(&raw);
    raw.extend([0x82, 0x00]);
    let long = URL_SAFE_NO_PAD.encode(&raw);
    let huge = URL_SAFE_NO_PAD.encode([7u8; 200]);
    let last = sig.chars().last().unwrap();
    assert_eq!(
        last, 'I',
        "a 32-byte signature ends in a character with 2 unused bits"
    );
    let non_canonical = format!("{}J", &sig[..sig.len() - 1]);
    for bad in [
        short,
        long,
        hs512_sig.to_owned(),
        String::new(),
        huge,
        non_canonical,
    ] {
        assert_eq!(
            jwt::verify(
                &with_signature(HS256, &bad),
                KEY,
                JwtAlgorithm::Hs256,
                NOW,
                0
            )
            .unwrap_err(),
            mismatch(),
            "signature {bad:?}"
        );
    }
}

#[test]
fn jwt_verify_refuses_alg_none_in_any_case_and_other_algorithms() {
    let claims = URL_SAFE_NO_PAD.encode(r#"{"sub":"a"}"#);
    for none in ["none", "None", "NONE"] {
        let header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"{none}"}}"#));
        let unsigned = format!("{header}.{claims}.");
        assert_eq!(
            jwt::verify(&unsigned, KEY, JwtAlgorithm::Hs256, NOW, 0).unwrap_err(),
            FormatError::JwtAlgNone
        );
    }
    // Algorithm confusion: an HS512 token where HS256 is pinned, an RS256 header, a
    // lower-case name, and no `alg` at all.
    assert_eq!(
        jwt::verify(HS512, KEY, JwtAlgorithm::Hs256, NOW, 0).unwrap_err(),
        FormatError::JwtAlgorithmMismatch {
            expected: "HS256",
            found: "HS512".into()
        }
    );
    for (header, found) in [
        (r#"{"alg":"RS256"}"#, "RS256"),
        (r#"{"alg":"hs256"}"#, "hs256"),
        (r#"{"typ":"JWT"}"#, "no algorithm"),
    ] {
        let token = format!("{}.{claims}.c2ln", URL_SAFE_NO_PAD.encode(header));
        assert_eq!(
            jwt::verify(&token, KEY, JwtAlgorithm::Hs256, NOW, 0).unwrap_err(),
            FormatError::JwtAlgorithmMismatch {
                expected: "HS256",
                found: found.into()
            },
            "{header}"
        );
    }
}

#[test]
fn jwt_headers_and_claims_out_of_the_ordinary_read_as_a_json_object_would() {
    // Escaped characters, a repeated member (the last counts), `crit: null` (present).
    let escaped = hs256(r#"{"alg":"HS\u0032\u0035\u0036"}"#, r#"{"sub":"a"}"#);
    let t = jwt::verify(&escaped, KEY, JwtAlgorithm::Hs256, NOW, 0).unwrap();
    assert_eq!(t.alg(), Some("HS256"));
    assert_eq!(t.header(), &serde_json::json!({"alg": "HS256"}));
    let repeated = hs256(
        r#"{"alg":"none","alg":"HS256"}"#,
        r#"{"exp":1,"exp":1800000000}"#,
    );
    let t = jwt::verify(&repeated, KEY, JwtAlgorithm::Hs256, NOW, 0).unwrap();
    assert_eq!(t.header(), &serde_json::json!({"alg": "HS256"}));
    assert_eq!(t.time_claim("exp"), Some(1_800_000_000));
    let crit_null = hs256(r#"{"alg":"HS256","crit":null}"#, r#"{"sub":"a"}"#);
    assert!(jwt::verify(&crit_null, KEY, JwtAlgorithm::Hs256, NOW, 0).is_err());
    // Fractional and non-numeric times; a claim read only through `claims()`.
    let odd = hs256(
        r#"{"alg":"HS256"}"#,
        r#"{"exp":1800000000.9,"nbf":"soon","iat":null,"room":{"id":7}}"#,
    );
    let t = jwt::verify(&odd, KEY, JwtAlgorithm::Hs256, NOW, 0).unwrap();
    assert_eq!(t.time_claim("exp"), Some(1_800_000_000));
    assert_eq!((t.time_claim("nbf"), t.time_claim("iat")), (None, None));
    assert_eq!(t.claims()["room"]["id"], 7);
    assert_eq!(t.clone().into_claims()["nbf"], "soon");
    // A number for `alg` is no algorithm; an array is neither a header nor claims.
    let number = hs256(r#"{"alg":256}"#, r#"{"sub":"a"}"#);
    assert_eq!(
        jwt::verify(&number, KEY, JwtAlgorithm::Hs256, NOW, 0).unwrap_err(),
        FormatError::JwtAlgorithmMismatch {
            expected: "HS256",
            found: "no algorithm".into()
        }
    );
    for (header, claims, field) in [
        (r#"["HS256", null]"#, r#"{"sub":"a"}"#, "header"),
        (r#"{"alg":"HS256"}"#, r#"[1800000000, 0, 0]"#, "claims"),
    ] {
        let err = jwt::decode(&hs256(header, claims)).unwrap_err();
        assert!(
            matches!(&err, FormatError::InvalidField { field: f, .. } if *f == field),
            "{err:?}"
        );
    }
}

#[test]
fn jwt_verify_refuses_critical_extensions() {
    let token = hs256(
        r#"{"alg":"HS256","crit":["b64"],"b64":false}"#,
        r#"{"sub":"a"}"#,
    );
    let err = jwt::verify(&token, KEY, JwtAlgorithm::Hs256, NOW, 0).unwrap_err();
    assert!(
        matches!(
            err,
            FormatError::InvalidField {
                field: "header",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("`crit`"), "{err}");
}

#[test]
fn jwt_verify_refuses_base64_padding_that_decode_tolerates() {
    // Claims `{}` encode to `e30`; padded to a multiple of four, `e30=`.
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256"}"#);
    let padded = format!("{header}.e30=.c2ln");
    assert!(jwt::decode(&padded).is_ok());
    let err = jwt::verify(&padded, KEY, JwtAlgorithm::Hs256, NOW, 0).unwrap_err();
    assert!(
        matches!(err, FormatError::InvalidField { field: "token", .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("padding"), "{err}");
}

#[test]
fn jwt_verify_checks_exp_and_nbf_with_the_default_leeway() {
    let v = |now| {
        jwt::verify(
            HS256,
            KEY,
            JwtAlgorithm::Hs256,
            now,
            jwt::DEFAULT_LEEWAY_SECS,
        )
    };
    assert_eq!(jwt::DEFAULT_LEEWAY_SECS, 60);
    // exp 1700003600: valid until exp + 60 s (exclusive).
    assert!(v(1_700_003_659).is_ok());
    assert_eq!(
        v(1_700_003_660).unwrap_err(),
        FormatError::JwtExpired {
            by_secs: 60,
            leeway_secs: 60
        }
    );
    // nbf 1700000000: valid from nbf - 60 s.
    assert!(v(1_699_999_940).is_ok());
    assert_eq!(
        v(1_699_999_939).unwrap_err(),
        FormatError::JwtNotYetValid {
            in_secs: 61,
            leeway_secs: 60
        }
    );
}

#[test]
fn jwt_verify_checks_the_signature_before_the_clock() {
    // An expired token with the wrong key says "wrong key", not "expired".
    assert_eq!(
        jwt::verify(HS256, b"other", JwtAlgorithm::Hs256, 1_800_000_000, 0).unwrap_err(),
        mismatch()
    );
}

#[test]
fn jwt_verify_reads_claims_of_any_length() {
    // Around 1 000 characters a base64 part outgrows the decoder's stack buffer.
    for len in [0, 755, 756, 757, 758, 759, 760, 4000] {
        let long = "x".repeat(len);
        let token = hs256(r#"{"alg":"HS256"}"#, &format!(r#"{{"sub":"{long}"}}"#));
        let t = jwt::verify(&token, KEY, JwtAlgorithm::Hs256, NOW, 0).unwrap();
        assert_eq!(t.claims()["sub"].as_str().unwrap().len(), len);
    }
}
