//! HS256 JWTs with arbitrary claims (SFU `user_id`/`room`/`user_type`, Digital Samba
//! `td`/`rd`/`ud`/`u`/`role`/`nbf`/`exp`, ...).

use super::MintError;

/// Signs `claims` (a JSON object, embedded as given) with HS256; header
/// `{"typ":"JWT","alg":"HS256"}`.
///
/// # Errors
/// [`MintError::EmptyJwtKey`], [`MintError::JwtClaims`] when `claims` is not an object.
///
/// # Example
/// ```
/// let t = tokenkeeper::mint::jwt::sign_hs256(b"k", &serde_json::json!({"room": "r1", "exp": 2000000000})).unwrap();
/// let d = tokenkeeper::formats::jwt::decode(&t).unwrap();
/// assert_eq!(d.claims()["room"], "r1");
/// ```
pub fn sign_hs256(key: &[u8], claims: &serde_json::Value) -> Result<String, MintError> {
    if key.is_empty() {
        return Err(MintError::EmptyJwtKey);
    }
    if !claims.is_object() {
        return Err(MintError::JwtClaims);
    }
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(key),
    )
    .map_err(|e| MintError::JwtSign {
        detail: e.to_string(),
    })
}
