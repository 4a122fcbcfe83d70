//! Server-side token builders (feature `mint`, off by default; never in mobile builds).
//!
//! - [`agora`]: AccessToken2 (`007`) with the official builder semantics, and `006`.
//! - [`zego`]: Token04, GCM by default, CBC on request.
//! - [`jwt`]: HS256 JWTs with arbitrary claims.
//!
//! Official builders read the clock and draw a random salt/nonce. Here every builder has
//! an explicit-input form (issue time, salt, nonce, IV) for reproducible tokens, and a
//! `*_now` convenience form that takes the current unix time as an argument and draws the
//! randomness from the OS CSPRNG.
//!
//! Inputs are validated as the vendors do; a [`MintError`] names the setting and the fix.

pub mod agora;
mod deflate;
pub mod jwt;
pub mod zego;

/// Why a token could not be minted. Messages name the setting and the fix and never echo
/// secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MintError {
    /// Agora app id or app certificate is not 32 hexadecimal characters.
    #[error(
        "Agora {setting} must be 32 hexadecimal characters, got {len} characters{non_hex}: copy it from the Agora console (project settings)"
    )]
    AgoraCredential {
        /// `app id` or `app certificate`.
        setting: &'static str,
        /// Length of what was given, in characters.
        len: usize,
        /// Extra note when non-hex characters were present.
        non_hex: &'static str,
    },
    /// A string is longer than the format can carry.
    #[error(
        "{field} is {len} bytes, over the format's limit of {max} bytes: shorten it (the token would otherwise be corrupt)"
    )]
    TooLong {
        /// Which input.
        field: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A 007 token needs at least one service.
    #[error("an AccessToken2 needs at least one service: add an RTC, RTM, Chat, ... service")]
    NoServices,
    /// ZEGO AppID is 0.
    #[error("ZEGO app id must not be 0: use the numeric AppID from the ZEGO console")]
    ZegoAppId,
    /// ZEGO ServerSecret is not exactly 32 bytes.
    #[error(
        "ZEGO server secret must be exactly 32 bytes, got {len}: use the 32-character ServerSecret of this AppID from the ZEGO console (it is used as raw bytes, not hex-decoded)"
    )]
    ZegoSecret {
        /// Length given, in bytes.
        len: usize,
    },
    /// ZEGO user id is empty.
    #[error("ZEGO user id must not be empty: pass the id the client logs in with")]
    EmptyUserId,
    /// ZEGO effective time is not positive, or the expiry overflows.
    #[error(
        "effective time must be more than 0 seconds (and ctime + effective time must fit in i64), got {secs}: pass the token lifetime in seconds, e.g. 3600"
    )]
    EffectiveTime {
        /// What was given.
        secs: i64,
    },
    /// IV/nonce length does not fit the variant.
    #[error(
        "the {variant} IV must be {expected} bytes, got {len}: pass {expected} bytes (or omit it to draw a random one)"
    )]
    IvLength {
        /// `gcm` or `cbc`.
        variant: &'static str,
        /// Required length.
        expected: usize,
        /// Given length.
        len: usize,
    },
    /// JWT key is empty.
    #[error(
        "the JWT signing key is empty: pass the shared secret configured on the verifying server"
    )]
    EmptyJwtKey,
    /// JWT claims are not a JSON object.
    #[error("JWT claims must be a JSON object, e.g. {{\"sub\":\"alice\",\"exp\":1700000000}}")]
    JwtClaims,
    /// The JWT library refused to sign.
    #[error("the JWT could not be signed: {detail}")]
    JwtSign {
        /// The library's message (no key material).
        detail: String,
    },
    /// A build spec (JSON) is malformed.
    #[error("invalid token spec: {detail}")]
    Spec {
        /// What is wrong, naming the field.
        detail: String,
    },
    /// Encryption failed (should not happen with validated inputs).
    #[error("encryption failed: {detail}")]
    Crypto {
        /// What failed.
        detail: String,
    },
}

pub(crate) fn check_agora_hex32(value: &str, setting: &'static str) -> Result<(), MintError> {
    let hex = value.bytes().all(|b| b.is_ascii_hexdigit());
    if value.len() == 32 && hex {
        Ok(())
    } else {
        Err(MintError::AgoraCredential {
            setting,
            len: value.chars().count(),
            non_hex: if hex { "" } else { " including non-hex ones" },
        })
    }
}
