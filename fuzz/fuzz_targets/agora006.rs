//! Agora 006 token strings.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tokenkeeper::formats::agora;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(t) = agora::decode_006(&format!("006970CA35de60c44645bbae8a215061b33{s}")) {
            let _ = t.to_json();
            let _ = t.verify("5CFd2fd1755d40ecb72977518be15d3b", "c", "");
        }
        let _ = agora::decode_006(s);
    }
});
