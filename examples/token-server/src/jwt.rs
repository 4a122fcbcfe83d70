//! HS256 JWT verification for tokens this server issued (OAuth access tokens, `vendor: "jwt"`
//! RTC tokens, room tokens), through `tokenkeeper::formats::jwt::verify`. Expiry is checked
//! against the server clock with no leeway; only HS256 is accepted (never `alg: none`).

use serde_json::{Map, Value};
use tokenkeeper::formats::FormatError;
use tokenkeeper::formats::jwt::{JwtAlgorithm, verify};

/// Why a JWT was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// The signature does not match this key.
    #[error("token signature does not match")]
    WrongKey,
    /// Not a JWT, wrong algorithm, expired or not yet valid (the core's message).
    #[error("{0}")]
    Refused(String),
    /// `exp` is missing.
    #[error("token has no exp claim")]
    NoExpiry,
}

/// Verifies signature (HS256 only) and `exp`/`nbf` at `now_secs`; returns the claims.
pub fn verify_hs256(
    key: &[u8],
    token: &str,
    now_secs: i64,
) -> Result<Map<String, Value>, JwtError> {
    let t = verify(token, key, JwtAlgorithm::Hs256, now_secs, 0).map_err(|e| match e {
        FormatError::SignatureMismatch { .. } => JwtError::WrongKey,
        other => JwtError::Refused(other.to_string()),
    })?;
    if t.time_claim("exp").is_none() {
        return Err(JwtError::NoExpiry);
    }
    match t.into_claims() {
        Value::Object(m) => Ok(m),
        _ => Err(JwtError::Refused("JWT claims are not an object".into())),
    }
}
