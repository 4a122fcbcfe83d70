//! ZEGO Token04: `"04" + base64(i64be expire | u16be iv_len | iv | u16be ct_len | ct [| u8 mode])`.
//!
//! AES-256 with the 32-byte ServerSecret (its UTF-8 bytes) as key. Current official
//! generators use GCM (12-byte nonce, 16-byte tag appended to `ct`, trailing mode byte 1);
//! legacy ones use CBC with PKCS#7 and a 16-byte IV and no mode byte. The expiry is in
//! plain text, so a client can schedule renewal without the secret.

use std::fmt;

use aes::cipher::{BlockDecryptMut, KeyIvInit, block_padding::Pkcs7};
use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use serde_json::{Value, json};

use super::FormatError;
use super::agora::B64_LENIENT;

const F: &str = "zego-04";

/// Encryption variant of a Token04.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zego04Variant {
    /// AES-256-GCM with the trailing mode byte 1 (current generators).
    Gcm,
    /// AES-256-CBC, PKCS#7, no mode byte (legacy generators).
    Cbc,
}

impl Zego04Variant {
    /// `"gcm"` or `"cbc"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gcm => "gcm",
            Self::Cbc => "cbc",
        }
    }
}

/// A Token04 as far as it can be read without the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Zego04Token {
    /// Expiry, unix seconds (plain text in the token).
    pub expire: i64,
    /// GCM or CBC.
    pub variant: Zego04Variant,
    iv: Vec<u8>,
    ciphertext: Vec<u8>,
}

impl fmt::Debug for Zego04Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Zego04Token")
            .field("expire", &self.expire)
            .field("variant", &self.variant)
            .field("iv_len", &self.iv.len())
            .field("ciphertext_len", &self.ciphertext.len())
            .finish()
    }
}

/// The decrypted Token04 payload, in the generators' JSON field order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zego04Payload {
    /// ZEGO AppID.
    pub app_id: u32,
    /// User id.
    pub user_id: String,
    /// Random nonce chosen by the generator.
    pub nonce: i64,
    /// Creation time, unix seconds.
    pub ctime: i64,
    /// Expiry, unix seconds (equal to the plain-text expiry).
    pub expire: i64,
    /// The payload string (empty for basic tokens, privilege JSON text otherwise).
    pub payload: String,
    /// The exact decrypted JSON text.
    pub plaintext_json: String,
}

impl Zego04Payload {
    /// The decrypted object as JSON (`app_id, user_id, nonce, ctime, expire, payload`).
    pub fn to_json(&self) -> Value {
        json!({
            "app_id": self.app_id,
            "user_id": self.user_id,
            "nonce": self.nonce,
            "ctime": self.ctime,
            "expire": self.expire,
            "payload": self.payload,
        })
    }
}

impl Zego04Token {
    /// `version`, `variant`, `expire` as `inspect --json` prints them.
    pub fn to_json(&self) -> Value {
        json!({"version": "04", "variant": self.variant.as_str(), "expire": self.expire})
    }

    /// Decrypts and checks the payload with the ServerSecret (exactly 32 bytes, used as raw
    /// bytes). The decrypted `expire` must equal the plain-text one.
    ///
    /// GCM authenticates the whole payload. Legacy CBC has no integrity check: a tampered
    /// CBC token can decrypt to altered JSON that still parses (found by the bit-flip
    /// tests), so treat CBC contents as unauthenticated and prefer GCM.
    ///
    /// # Errors
    /// [`FormatError::InvalidKey`] for a secret of the wrong length,
    /// [`FormatError::DecryptFailed`] for the wrong secret or an altered token,
    /// [`FormatError::PayloadMismatch`] when the JSON is malformed or disagrees,
    /// [`FormatError::ZegoAppIdOutOfRange`] when it decrypts (and, for GCM, authenticates)
    /// but carries an app id outside ZEGO's 32-bit range, as the official Python and Node
    /// generators can produce.
    pub fn decrypt(&self, secret: &str) -> Result<Zego04Payload, FormatError> {
        let key: &[u8; 32] = secret.as_bytes().try_into().map_err(|_| FormatError::InvalidKey {
            what: "ZEGO server secret",
            detail: format!(
                "must be exactly 32 bytes, got {} (copy the 32-character ServerSecret of this AppID from the ZEGO console; it is used as raw bytes, not hex-decoded)",
                secret.len()
            ),
        })?;
        let plain = match self.variant {
            Zego04Variant::Gcm => {
                let cipher = Aes256Gcm::new(key.into());
                cipher
                    .decrypt(Nonce::from_slice(&self.iv), self.ciphertext.as_slice())
                    .map_err(|_| FormatError::DecryptFailed { variant: "gcm" })?
            }
            Zego04Variant::Cbc => {
                let dec = cbc::Decryptor::<aes::Aes256>::new(key.into(), self.iv.as_slice().into());
                dec.decrypt_padded_vec_mut::<Pkcs7>(&self.ciphertext)
                    .map_err(|_| FormatError::DecryptFailed { variant: "cbc" })?
            }
        };
        let mismatch = |detail: &str| FormatError::PayloadMismatch {
            format: F,
            detail: detail.to_owned(),
        };
        let text = String::from_utf8(plain)
            .map_err(|_| mismatch("decrypted payload is not UTF-8 text"))?;
        #[derive(serde::Deserialize)]
        struct Plain {
            // Any JSON number: the official Python and Node generators mint app ids past
            // u32, and those must be reported as such, not as an undecryptable token.
            app_id: serde_json::Number,
            user_id: String,
            nonce: i64,
            ctime: i64,
            expire: i64,
            #[serde(default)]
            payload: Option<String>,
        }
        let Plain {
            app_id,
            user_id,
            nonce,
            ctime,
            expire,
            payload,
        } = serde_json::from_str(&text).map_err(|_| {
            mismatch(
                "decrypted payload is not the expected JSON object (app_id, user_id, nonce, ctime, expire, payload)",
            )
        })?;
        let payload = payload.unwrap_or_default();
        if expire != self.expire {
            return Err(mismatch(
                "the encrypted expire differs from the plain-text one (the token was altered)",
            ));
        }
        let app_id = app_id
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| FormatError::ZegoAppIdOutOfRange {
                app_id: app_id.to_string().chars().take(24).collect(),
                variant: self.variant.as_str(),
            })?;
        Ok(Zego04Payload {
            app_id,
            user_id,
            nonce,
            ctime,
            expire,
            payload,
            plaintext_json: text,
        })
    }
}

/// Decodes a Token04 without the secret: expiry and variant.
///
/// # Errors
/// A [`FormatError`] naming the broken part; never panics.
///
/// # Example
/// ```
/// let t = tokenkeeper::formats::zego::decode_04("04AAAAAGVT/xAADGszajl4MHEybTh6dAB5H4BO8lfHV6FdiXZh+JbclObHJkmjjp8QT4LzVDz/UwiPOtYJp3I2KRSKKMSn9z5LqHSreOsNczwj8C9PuuRpLwOb4UZbqMBPVp9hPafEoGuPa1TRANWRsY+THdEKsc9YS/fnfYQD4YqvcDMdLi7lDLgOBt2ol1gC3AE=").unwrap();
/// assert_eq!(t.expire, 1700003600);
/// ```
pub fn decode_04(token: &str) -> Result<Zego04Token, FormatError> {
    let body = token
        .trim()
        .strip_prefix("04")
        .ok_or(FormatError::UnknownFormat {
            hint: "a ZEGO Token04 starts with 04",
        })?;
    let data = B64_LENIENT.decode(body).map_err(|e| FormatError::Base64 {
        format: F,
        detail: e.to_string(),
    })?;
    let trunc = |field| FormatError::Truncated { format: F, field };
    if data.len() < 10 {
        return Err(trunc("expire"));
    }
    let expire = i64::from_be_bytes(data[..8].try_into().expect("8 bytes"));
    let iv_len = usize::from(u16::from_be_bytes([data[8], data[9]]));
    let rest = &data[10..];
    if rest.len() < iv_len {
        return Err(trunc("iv"));
    }
    let (iv, rest) = rest.split_at(iv_len);
    if rest.len() < 2 {
        return Err(trunc("ciphertext length"));
    }
    let ct_len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
    let rest = &rest[2..];
    if rest.len() < ct_len {
        return Err(trunc("ciphertext"));
    }
    let (ct, tail) = rest.split_at(ct_len);
    let invalid = |field, detail: String| FormatError::InvalidField {
        format: F,
        field,
        detail,
    };
    let variant = match tail {
        [] => Zego04Variant::Cbc,
        [1] => Zego04Variant::Gcm,
        [m] => {
            return Err(invalid(
                "mode byte",
                format!("unknown encryption mode {m} (only 1 = AES-GCM exists)"),
            ));
        }
        _ => {
            return Err(invalid(
                "length",
                format!("{} unexpected bytes after the ciphertext", tail.len()),
            ));
        }
    };
    match variant {
        Zego04Variant::Gcm if iv.len() != 12 => {
            return Err(invalid(
                "iv",
                format!("GCM needs a 12-byte nonce, found {}", iv.len()),
            ));
        }
        Zego04Variant::Gcm if ct.len() < 16 => {
            return Err(invalid(
                "ciphertext",
                "shorter than the 16-byte GCM tag".into(),
            ));
        }
        Zego04Variant::Cbc if iv.len() != 16 => {
            return Err(invalid(
                "iv",
                format!("CBC needs a 16-byte IV, found {}", iv.len()),
            ));
        }
        Zego04Variant::Cbc if ct.is_empty() || ct.len() % 16 != 0 => {
            return Err(invalid(
                "ciphertext",
                "CBC ciphertext must be a non-empty multiple of 16 bytes".into(),
            ));
        }
        _ => {}
    }
    Ok(Zego04Token {
        expire,
        variant,
        iv: iv.to_vec(),
        ciphertext: ct.to_vec(),
    })
}

/// Decodes a Token04 and decrypts it with the ServerSecret.
///
/// # Errors
/// As [`decode_04`] and [`Zego04Token::decrypt`].
pub fn decrypt_04(token: &str, secret: &str) -> Result<(Zego04Token, Zego04Payload), FormatError> {
    let t = decode_04(token)?;
    let p = t.decrypt(secret)?;
    Ok((t, p))
}
