//! JWT: header and claims without verification (for scheduling), HMAC verification with the
//! algorithm pinned by the caller (for servers). Signature checks use `jsonwebtoken`; the
//! time checks (`exp`, `nbf`) take `now` from the caller so they follow the injected clock.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::FormatError;

const F: &str = "jwt";

/// Default leeway for `exp`/`nbf` checks: 60 s (the `jsonwebtoken` default), to absorb
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

    fn to_jsonwebtoken(self) -> jsonwebtoken::Algorithm {
        match self {
            Self::Hs256 => jsonwebtoken::Algorithm::HS256,
            Self::Hs384 => jsonwebtoken::Algorithm::HS384,
            Self::Hs512 => jsonwebtoken::Algorithm::HS512,
        }
    }
}

/// A JWT read without verification.
///
/// `Debug` prints header and claims (they are readable by anyone holding the token) but
/// not the signature.
#[derive(Clone, PartialEq)]
pub struct JwtToken {
    /// The header object.
    pub header: Value,
    /// The claims object.
    pub claims: Value,
    signature_len: usize,
}

impl fmt::Debug for JwtToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtToken")
            .field("header", &self.header)
            .field("claims", &self.claims)
            .field("signature", &format_args!("<{} bytes>", self.signature_len))
            .finish()
    }
}

impl JwtToken {
    /// A numeric claim as unix seconds (fractions truncated).
    pub fn time_claim(&self, name: &str) -> Option<i64> {
        let v = self.claims.get(name)?;
        v.as_i64().or_else(|| v.as_f64().map(|f| f as i64))
    }

    /// The `alg` header value.
    pub fn alg(&self) -> Option<&str> {
        self.header.get("alg").and_then(Value::as_str)
    }

    /// `header` and `claims` as `inspect --json` prints them.
    pub fn to_json(&self) -> Value {
        json!({"header": self.header, "claims": self.claims})
    }

    /// A string claim, or a number claim rendered as text.
    pub fn text_claim(&self, name: &str) -> Option<String> {
        match self.claims.get(name)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }
}

fn part(seg: &str, field: &'static str) -> Result<Value, FormatError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(seg.trim_end_matches('='))
        .map_err(|e| FormatError::Base64 {
            format: F,
            detail: format!("{field}: {e}"),
        })?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|_| FormatError::InvalidField {
        format: F,
        field,
        detail: "not a JSON object".into(),
    })?;
    if !v.is_object() {
        return Err(FormatError::InvalidField {
            format: F,
            field,
            detail: "not a JSON object".into(),
        });
    }
    Ok(v)
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
    let header = part(h, "header")?;
    let claims = part(c, "claims")?;
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
/// # Errors
/// [`FormatError::JwtAlgNone`], [`FormatError::JwtAlgorithmMismatch`],
/// [`FormatError::SignatureMismatch`], or a decoding error.
pub fn verify_signature(
    token: &str,
    key: &[u8],
    alg: JwtAlgorithm,
) -> Result<JwtToken, FormatError> {
    let t = decode(token)?;
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
    let mut validation = jsonwebtoken::Validation::new(alg.to_jsonwebtoken());
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    jsonwebtoken::decode::<Value>(
        token.trim(),
        &jsonwebtoken::DecodingKey::from_secret(key),
        &validation,
    )
    .map_err(|e| match e.kind() {
        jsonwebtoken::errors::ErrorKind::InvalidSignature => FormatError::SignatureMismatch {
            format: F,
            key_name: "key",
        },
        _ => FormatError::InvalidField {
            format: F,
            field: "token",
            detail: "rejected by the JWT verifier (malformed header, claims or signature)".into(),
        },
    })?;
    Ok(t)
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
