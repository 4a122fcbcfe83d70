//! `inspect(token)`: what a token says about itself, read without a key.

use std::time::SystemTime;

use tokenkeeper::formats;

use crate::error::TokenKeeperError;

/// A supported token format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum TokenFormat {
    /// Agora AccessToken2, prefix `007`.
    Agora007,
    /// Agora AccessToken, prefix `006`.
    Agora006,
    /// ZEGO Token04, prefix `04`.
    Zego04,
    /// JSON Web Token.
    Jwt,
}

impl From<formats::TokenFormat> for TokenFormat {
    fn from(f: formats::TokenFormat) -> Self {
        match f {
            formats::TokenFormat::Agora007 => Self::Agora007,
            formats::TokenFormat::Agora006 => Self::Agora006,
            formats::TokenFormat::Zego04 => Self::Zego04,
            formats::TokenFormat::Jwt => Self::Jwt,
        }
    }
}

/// What a token says about itself. Holds no signature, ciphertext or secret.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct TokenInfo {
    /// The format.
    pub format: TokenFormat,
    /// Issue time (Agora 007 `issue_ts`, JWT `iat`).
    pub issued_at: Option<SystemTime>,
    /// Start of validity (JWT `nbf`).
    pub not_before: Option<SystemTime>,
    /// The instant tokenkeeper treats as expiry: the earliest of the token's own expiry and its
    /// privilege expiries.
    pub expires_at: Option<SystemTime>,
    /// Agora app id.
    pub app_id: Option<String>,
    /// Channel or room the token is for.
    pub channel: Option<String>,
    /// User id or account the token is for.
    pub user: Option<String>,
    /// The full decode as JSON, with the field names of `tokenkeeper inspect --json`.
    pub details_json: String,
}

/// Decodes an Agora 007/006, ZEGO 04 or JWT token without a key and reports its expiry.
///
/// # Errors
/// [`TokenKeeperError::InvalidToken`] naming what is wrong (unknown format, truncated…).
///
/// # Example (Kotlin)
/// ```kotlin
/// val info = inspect(token)
/// println("${info.format} expires at ${info.expiresAt}")
/// ```
fn seconds(unix_s: i64) -> SystemTime {
    crate::time::instant(unix_s.saturating_mul(1000))
}

#[uniffi::export]
pub fn inspect(token: String) -> Result<TokenInfo, TokenKeeperError> {
    let info = formats::describe(&token)?;
    Ok(TokenInfo {
        format: info.format.into(),
        issued_at: info.issued_at.map(seconds),
        not_before: info.not_before.map(seconds),
        expires_at: info.expires_at.map(seconds),
        app_id: info.app_id,
        channel: info.channel,
        user: info.user,
        details_json: info.details.to_json().to_string(),
    })
}
