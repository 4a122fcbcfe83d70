//! JWT: decode and HS256 verification on arbitrary text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tokenkeeper::formats::jwt;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(t) = jwt::decode(s) {
            let _ = t.time_claim("exp");
            let _ = t.to_json();
        }
        let _ = jwt::verify(s, b"key", jwt::JwtAlgorithm::Hs256, 1_700_000_000, 60);
    }
});
