//! ZEGO Token04: binary bodies (base64-encoded here) and decryption attempts, and arbitrary
//! plaintexts sealed with the secret (AES-256-GCM) so that the checks after decryption (JSON,
//! app id range, expire agreement) see fuzzer-chosen input too.
#![no_main]

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use libfuzzer_sys::fuzz_target;
use tokenkeeper::formats::zego;

const SECRET: &str = "fa94dd0f974cf2e293728a526b028271";

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

/// A GCM Token04 whose plain-text expiry is `expire` and whose sealed payload is `plain`.
fn sealed(expire: i64, plain: &[u8]) -> Option<String> {
    let nonce = b"k3j9x0q2m8zt";
    let ct = Aes256Gcm::new(SECRET.as_bytes().into())
        .encrypt(Nonce::from_slice(nonce), plain)
        .ok()?;
    let mut bin = expire.to_be_bytes().to_vec();
    bin.extend_from_slice(&12u16.to_be_bytes());
    bin.extend_from_slice(nonce);
    bin.extend_from_slice(&u16::try_from(ct.len()).ok()?.to_be_bytes());
    bin.extend_from_slice(&ct);
    bin.push(1);
    Some(format!("04{}", b64(&bin)))
}

fuzz_target!(|data: &[u8]| {
    let token = format!("04{}", b64(data));
    if let Ok(t) = zego::decode_04(&token) {
        let _ = t.to_json();
        let _ = t.decrypt(SECRET);
    }
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = zego::decode_04(s);
    }
    if let Some((head, plain)) = data.split_first_chunk::<8>() {
        let expire = i64::from_be_bytes(*head);
        if let Some(token) = sealed(expire, plain) {
            match zego::decrypt_04(&token, SECRET) {
                Ok((t, p)) => {
                    assert_eq!(p.expire, expire);
                    assert_eq!(t.expire, expire);
                    assert_eq!(p.plaintext_json.as_bytes(), plain);
                    let _ = p.to_json();
                }
                Err(e) => {
                    let _ = e.to_string();
                }
            }
        }
    }
});
