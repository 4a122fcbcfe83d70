//! Agora 007: the decoder on raw payloads (after inflate) and on whole token strings.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tokenkeeper::formats::agora;

fuzz_target!(|data: &[u8]| {
    if let Ok(t) = agora::parse_007_payload(data) {
        let _ = t.to_json();
        let _ = t.effective_expires_at();
        let _ = t.verify("5CFd2fd1755d40ecb72977518be15d3b");
    }
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = agora::decode_007(&format!("007{s}"));
    }
});
