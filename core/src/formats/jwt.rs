//! JWT: header and claims without verification (for scheduling), HMAC verification with the
//! algorithm pinned by the caller (for servers). The time checks (`exp`, `nbf`) take `now`
//! from the caller so they follow the injected clock.
//!
//! Verification decodes the token once and checks the HMAC with RustCrypto's `hmac` (a
//! constant-time comparison) rather than handing the token to a JWT library that would
//! decode it a second time: the JOSE rules that matter for HMAC tokens (pinned algorithm,
//! no `alg: none`, no unknown critical extensions, unpadded base64url) are few and tested
//! in `tests/it/formats_jwt.rs`.

use std::borrow::Cow;
use std::fmt;
use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::{Sha256, Sha384, Sha512};

use super::FormatError;

const F: &str = "jwt";

/// Default leeway for `exp`/`nbf` checks: 60 s (the `jsonwebtoken` crate's default), to absorb
/// small clock differences between issuer and verifier.
pub const DEFAULT_LEEWAY_SECS: u64 = 60;

/// HMAC algorithms a caller can pin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwtAlgorithm {
    /// HMAC-SHA256.
    Hs256,
    /// HMAC-SHA384.
    Hs384,
    /// HMAC-SHA512.
    Hs512,
}

impl JwtAlgorithm {
    /// The JOSE name (`HS256`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hs256 => "HS256",
            Self::Hs384 => "HS384",
            Self::Hs512 => "HS512",
        }
    }
}

/// A JWT read without verification.
///
/// The header and the claims are kept as their JSON text: what verification and scheduling
/// read (`alg`, `crit`, `exp`, `nbf`, `iat`) is read in place, and [`JwtToken::header`] and
/// [`JwtToken::claims`] parse the whole object on first use.
///
/// `Debug` prints header and claims (they are readable by anyone holding the token) but
/// not the signature.
#[derive(Clone)]
pub struct JwtToken {
    header: Part<HeaderFields>,
    claims: Part<TimeClaims>,
    signature_len: usize,
}

/// A JSON object part: its text, the members read in place, and the whole object on demand.
#[derive(Clone)]
struct Part<K> {
    json: Box<str>,
    known: K,
    value: OnceLock<Value>,
}

impl<K> Part<K> {
    fn value(&self) -> &Value {
        // The text was parsed as an object when the token was read.
        self.value
            .get_or_init(|| serde_json::from_str(&self.json).unwrap_or_default())
    }
}

/// The header members verification reads.
#[derive(Clone, Default)]
struct HeaderFields {
    alg: Option<Box<str>>,
    /// Present at all, whatever it holds.
    crit: bool,
}

/// The time claims, as their JSON values (numbers, normally).
#[derive(Clone, Default, serde::Deserialize)]
struct TimeClaims {
    #[serde(default)]
    exp: Option<Value>,
    #[serde(default)]
    nbf: Option<Value>,
    #[serde(default)]
    iat: Option<Value>,
}

impl PartialEq for JwtToken {
    fn eq(&self, other: &Self) -> bool {
        self.header() == other.header()
            && self.claims() == other.claims()
            && self.signature_len == other.signature_len
    }
}

impl fmt::Debug for JwtToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtToken")
            .field("header", self.header())
            .field("claims", self.claims())
            .field("signature", &format_args!("<{} bytes>", self.signature_len))
            .finish()
    }
}

impl JwtToken {
    /// The header object.
    pub fn header(&self) -> &Value {
        self.header.value()
    }

    /// The claims object.
    ///
    /// ```
    /// let t = tokenkeeper::formats::jwt::decode("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZGEifQ.c2ln").unwrap();
    /// assert_eq!(t.claims()["sub"], "ada");
    /// ```
    pub fn claims(&self) -> &Value {
        self.claims.value()
    }

    /// The claims object, taken out of the token.
    pub fn into_claims(self) -> Value {
        let Part { json, value, .. } = self.claims;
        value
            .into_inner()
            .unwrap_or_else(|| serde_json::from_str(&json).unwrap_or_default())
    }

    /// A numeric claim as unix seconds (fractions truncated).
    pub fn time_claim(&self, name: &str) -> Option<i64> {
        let known = &self.claims.known;
        let v = match name {
            "exp" => known.exp.as_ref()?,
            "nbf" => known.nbf.as_ref()?,
            "iat" => known.iat.as_ref()?,
            _ => self.claims().get(name)?,
        };
        v.as_i64().or_else(|| v.as_f64().map(|f| f as i64))
    }

    /// The `alg` header value.
    pub fn alg(&self) -> Option<&str> {
        self.header.known.alg.as_deref()
    }

    /// `header` and `claims` as `inspect --json` prints them.
    pub fn to_json(&self) -> Value {
        json!({"header": self.header(), "claims": self.claims()})
    }

    /// A string claim, or a number claim rendered as text.
    pub fn text_claim(&self, name: &str) -> Option<String> {
        match self.claims().get(name)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }
}

/// Header and claims of real tokens decode in one stack buffer of this size (no
/// allocation); longer parts go to the heap.
const STACK_PART: usize = 1024;

/// Decodes one base64url part (trailing `=` tolerated), into `buf` when it fits, and reads
/// it as a JSON object with `read`.
fn part<K>(
    seg: &str,
    field: &'static str,
    buf: &mut [u8; STACK_PART],
    read: fn(&[u8]) -> Option<Part<K>>,
) -> Result<Part<K>, FormatError> {
    let seg = seg.trim_end_matches('=');
    let b64_error = |e: base64::DecodeError| FormatError::Base64 {
        format: F,
        detail: format!("{field}: {e}"),
    };
    let heap: Vec<u8>;
    // Unpadded base64 of n characters decodes to at most n * 3 / 4 bytes.
    let bytes: &[u8] = if seg.len() / 4 * 3 + 3 <= STACK_PART {
        let n = URL_SAFE_NO_PAD
            .decode_slice(seg, buf)
            .map_err(|e| match e {
                base64::DecodeSliceError::DecodeError(e) => b64_error(e),
                base64::DecodeSliceError::OutputSliceTooSmall => FormatError::Base64 {
                    format: F,
                    detail: format!("{field}: too long"),
                },
            })?;
        &buf[..n]
    } else {
        heap = URL_SAFE_NO_PAD.decode(seg).map_err(b64_error)?;
        &heap
    };
    read(bytes).ok_or(FormatError::InvalidField {
        format: F,
        field,
        detail: "not a JSON object".into(),
    })
}

/// Reads a JSON object's members in place with `fast` (a typed parse that skips the rest);
/// where that fails (a repeated member, a member of an unexpected type) parses the whole
/// object and takes the members from it with `slow`, as a `Value` reader would (the last of
/// a repeated member counts).
fn read_object<K>(
    bytes: &[u8],
    fast: impl FnOnce(&[u8]) -> Option<K>,
    slow: impl FnOnce(&Value) -> K,
) -> Option<Part<K>> {
    let json: Box<str> = std::str::from_utf8(bytes).ok()?.into();
    // A typed parse also accepts a JSON array for a struct: only an object takes the fast path.
    if bytes.trim_ascii_start().first() == Some(&b'{') {
        if let Some(known) = fast(bytes) {
            return Some(Part {
                json,
                known,
                value: OnceLock::new(),
            });
        }
    }
    let value = serde_json::from_slice::<Value>(bytes)
        .ok()
        .filter(Value::is_object)?;
    Some(Part {
        json,
        known: slow(&value),
        value: OnceLock::from(value),
    })
}

fn read_header(bytes: &[u8]) -> Option<Part<HeaderFields>> {
    #[derive(serde::Deserialize)]
    struct Plain<'a> {
        #[serde(borrow, default)]
        alg: Option<Cow<'a, str>>,
        #[serde(default, deserialize_with = "present")]
        crit: bool,
    }
    fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        <serde::de::IgnoredAny as serde::Deserialize>::deserialize(d).map(|_| true)
    }
    read_object(
        bytes,
        |b| {
            let p = serde_json::from_slice::<Plain<'_>>(b).ok()?;
            Some(HeaderFields {
                alg: p.alg.map(Into::into),
                crit: p.crit,
            })
        },
        |v| HeaderFields {
            alg: v.get("alg").and_then(Value::as_str).map(Into::into),
            crit: v.get("crit").is_some(),
        },
    )
}

fn read_claims(bytes: &[u8]) -> Option<Part<TimeClaims>> {
    read_object(
        bytes,
        |b| serde_json::from_slice::<TimeClaims>(b).ok(),
        |v| TimeClaims {
            exp: v.get("exp").cloned(),
            nbf: v.get("nbf").cloned(),
            iat: v.get("iat").cloned(),
        },
    )
}

/// Reads header and claims without verifying anything.
///
/// # Errors
/// [`FormatError`] when the token is not three base64url parts with JSON objects.
///
/// # Example
/// ```
/// let t = tokenkeeper::formats::jwt::decode("eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjE3MDAwMDAwMDB9.c2ln").unwrap();
/// assert_eq!(t.time_claim("exp"), Some(1_700_000_000));
/// ```
pub fn decode(token: &str) -> Result<JwtToken, FormatError> {
    let token = token.trim();
    let mut it = token.split('.');
    let (Some(h), Some(c), Some(s), None) = (it.next(), it.next(), it.next(), it.next()) else {
        return Err(FormatError::UnknownFormat {
            hint: "a JWT has exactly three base64url parts separated by dots",
        });
    };
    let mut buf = [0u8; STACK_PART];
    let header = part(h, "header", &mut buf, read_header)?;
    let claims = part(c, "claims", &mut buf, read_claims)?;
    // The signature is only measured here (verification decodes it): check the alphabet
    // and the length instead of allocating.
    let sig = s.trim_end_matches('=');
    if sig.len() % 4 == 1
        || !sig
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(FormatError::Base64 {
            format: F,
            detail: "signature: not base64url".into(),
        });
    }
    let signature_len = sig.len() * 3 / 4;
    Ok(JwtToken {
        header,
        claims,
        signature_len,
    })
}

/// Verifies only the header algorithm and the signature (no time checks): for tools that
/// report validity and expiry separately.
///
/// The token is decoded once: header and claims are parsed by [`decode`], and the HMAC is
/// computed over the received `header.claims` text and compared in constant time with the
/// decoded signature (RustCrypto `hmac`). A header naming `alg: none`, any algorithm other
/// than `alg`, or a critical extension (`crit`, none of which this verifier implements) is
/// refused before any HMAC is computed. A signed JWT carries no base64 padding (RFC 7515):
/// a token with `=` is refused here, although [`decode`] reads it.
///
/// # Errors
/// [`FormatError::JwtAlgNone`], [`FormatError::JwtAlgorithmMismatch`],
/// [`FormatError::SignatureMismatch`], [`FormatError::InvalidField`] (padding, `crit`), or
/// a decoding error.
pub fn verify_signature(
    token: &str,
    key: &[u8],
    alg: JwtAlgorithm,
) -> Result<JwtToken, FormatError> {
    let token = token.trim();
    let t = decode(token)?;
    check_header(&t, alg)?;
    if token.contains('=') {
        return Err(FormatError::InvalidField {
            format: F,
            field: "token",
            detail: "base64url padding (`=`) is not allowed in a signed JWT (RFC 7515): strip the trailing `=` of each part, or mint it with a JWT library".into(),
        });
    }
    // `decode` accepted exactly three parts, so there is a last dot.
    let (signing_input, signature) = token.rsplit_once('.').unwrap_or((token, ""));
    if !hmac_matches(alg, key, signing_input.as_bytes(), signature) {
        return Err(FormatError::SignatureMismatch {
            format: F,
            key_name: "key",
        });
    }
    Ok(t)
}

/// The pinned algorithm, and no critical extensions.
fn check_header(t: &JwtToken, alg: JwtAlgorithm) -> Result<(), FormatError> {
    match t.alg() {
        Some(a) if a.eq_ignore_ascii_case("none") => return Err(FormatError::JwtAlgNone),
        Some(a) if a == alg.as_str() => {}
        other => {
            return Err(FormatError::JwtAlgorithmMismatch {
                expected: alg.as_str(),
                found: other
                    .map(|a| {
                        a.chars()
                            .filter(|c| c.is_ascii_graphic())
                            .take(16)
                            .collect()
                    })
                    .unwrap_or_else(|| "no algorithm".to_owned()),
            });
        }
    }
    if t.header.known.crit {
        return Err(FormatError::InvalidField {
            format: F,
            field: "header",
            detail: "it lists critical extensions (`crit`) and this verifier implements none: refusing it (RFC 7515 section 4.1.11); mint the token without `crit`".into(),
        });
    }
    Ok(())
}

/// Whether `signature` (base64url, no padding) is the HMAC of `signing_input` under `key`.
/// The comparison is constant-time; a signature of the wrong length or a non-canonical
/// encoding never matches.
fn hmac_matches(alg: JwtAlgorithm, key: &[u8], signing_input: &[u8], signature: &str) -> bool {
    fn check<M: Mac + KeyInit>(key: &[u8], input: &[u8], sig: &[u8]) -> bool {
        match <M as KeyInit>::new_from_slice(key) {
            Ok(mut mac) => {
                mac.update(input);
                mac.verify_slice(sig).is_ok()
            }
            Err(_) => false,
        }
    }
    // The longest HMAC output (SHA-512) is 64 bytes; anything longer cannot match.
    let mut buf = [0u8; 64];
    let Ok(n) = URL_SAFE_NO_PAD.decode_slice(signature, &mut buf) else {
        return false;
    };
    let sig = &buf[..n];
    match alg {
        JwtAlgorithm::Hs256 => check::<Hmac<Sha256>>(key, signing_input, sig),
        JwtAlgorithm::Hs384 => check::<Hmac<Sha384>>(key, signing_input, sig),
        JwtAlgorithm::Hs512 => check::<Hmac<Sha512>>(key, signing_input, sig),
    }
}

/// Verifies an HMAC-signed JWT with `key` and the pinned `alg`, then checks `exp` and
/// `nbf` against `now_unix` with `leeway_secs` (see [`DEFAULT_LEEWAY_SECS`]). Absent
/// `exp`/`nbf` claims are not required.
///
/// # Errors
/// [`FormatError::JwtAlgNone`], [`FormatError::JwtAlgorithmMismatch`],
/// [`FormatError::SignatureMismatch`], [`FormatError::JwtExpired`],
/// [`FormatError::JwtNotYetValid`], or a decoding error.
pub fn verify(
    token: &str,
    key: &[u8],
    alg: JwtAlgorithm,
    now_unix: i64,
    leeway_secs: u64,
) -> Result<JwtToken, FormatError> {
    let t = verify_signature(token, key, alg)?;
    let leeway = i64::try_from(leeway_secs).unwrap_or(i64::MAX);
    if let Some(exp) = t.time_claim("exp") {
        if now_unix >= exp.saturating_add(leeway) {
            return Err(FormatError::JwtExpired {
                by_secs: now_unix.saturating_sub(exp),
                leeway_secs,
            });
        }
    }
    if let Some(nbf) = t.time_claim("nbf") {
        if now_unix < nbf.saturating_sub(leeway) {
            return Err(FormatError::JwtNotYetValid {
                in_secs: nbf.saturating_sub(now_unix),
                leeway_secs,
            });
        }
    }
    Ok(t)
}
