//! ZEGO Token04: binary bodies (base64-encoded here) and decryption attempts.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tokenkeeper::formats::zego;

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn b64(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len() * 4 / 3 + 4);
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..=c.len() {
            out.push(B64[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let token = format!("04{}", b64(data));
    if let Ok(t) = zego::decode_04(&token) {
        let _ = t.to_json();
        let _ = t.decrypt("fa94dd0f974cf2e293728a526b028271");
    }
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = zego::decode_04(s);
    }
});
