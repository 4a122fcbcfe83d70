//! `inspect`: what a token says about itself, decoded without any key.

use chrono::{DateTime, Utc};
use flutter_rust_bridge::frb;
use tokenkeeper::formats;

use crate::api::error::TokenKeeperError;

/// A token format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenFormat {
    /// Agora AccessToken2, prefix `007`.
    Agora007,
    /// Agora AccessToken, prefix `006`.
    Agora006,
    /// ZEGO Token04, prefix `04`.
    Zego04,
    /// JSON Web Token (HS256 room tokens, OAuth access tokens).
    Jwt,
}

/// What a token says about itself, read without a key (nothing here is verified).
///
/// Holds no secret: the signature and ciphertext are never copied out of the token.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenInfo {
    /// The format.
    pub format: TokenFormat,
    /// Stable format name: `agora-007`, `agora-006`, `zego-04` or `jwt`.
    pub format_name: String,
    /// Issue time (Agora 007 `issue_ts`, JWT `iat`), when the token states it.
    pub issued_at: Option<DateTime<Utc>>,
    /// Start of validity (JWT `nbf`), when the token states it.
    pub not_before: Option<DateTime<Utc>>,
    /// The instant a keeper treats as expiry: for Agora the earliest of the token expiry and
    /// every privilege expiry, for ZEGO the plain-text expire, for a JWT `exp`.
    pub expires_at: Option<DateTime<Utc>>,
    /// Agora App ID.
    pub app_id: Option<String>,
    /// Channel or room the token is for, when the format names one.
    pub channel: Option<String>,
    /// User (Agora uid or account, ZEGO user id, JWT `sub`/`u`), when the format names one.
    pub user: Option<String>,
    /// The full per-format decode as JSON, with the field names of `tokenkeeper inspect --json`.
    pub details_json: String,
}

/// Decodes an Agora 007/006, ZEGO 04 or JWT token without a key and reports its expiry.
///
/// Runs synchronously (it is pure decoding, microseconds). Use it in QA screens and logs of
/// *your own* debugging tools; never log the token itself.
///
/// ```dart
/// final info = inspect(token: token);
/// print('${info.formatName} expires at ${info.expiresAt}');
/// ```
///
/// # Errors
/// `TokenKeeperError` with kind `invalidToken` naming what is wrong (empty, unknown format,
/// truncated, not base64…). The message never contains the token.
#[frb(sync)]
pub fn inspect(token: String) -> Result<TokenInfo, TokenKeeperError> {
    let info = formats::describe(&token)?;
    Ok(TokenInfo {
        format: info.format.into(),
        format_name: info.format.as_str().to_owned(),
        issued_at: info.issued_at.and_then(unix_secs),
        not_before: info.not_before.and_then(unix_secs),
        expires_at: info.expires_at.and_then(unix_secs),
        app_id: info.app_id,
        channel: info.channel,
        user: info.user,
        details_json: info.details.to_json().to_string(),
    })
}

impl From<formats::TokenFormat> for TokenFormat {
    fn from(format: formats::TokenFormat) -> Self {
        match format {
            formats::TokenFormat::Agora007 => Self::Agora007,
            formats::TokenFormat::Agora006 => Self::Agora006,
            formats::TokenFormat::Zego04 => Self::Zego04,
            formats::TokenFormat::Jwt => Self::Jwt,
        }
    }
}

fn unix_secs(secs: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(secs, 0)
}
