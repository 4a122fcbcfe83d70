//! Token formats: decode (no key needed) and verify (with a key).
//!
//! [`describe`] recognises Agora AccessToken2 (`007`), Agora AccessToken (`006`), ZEGO
//! Token04 (`04`) and JWTs, and returns a [`TokenInfo`] with the expiry a keeper should
//! schedule against. The per-format modules decode in full and verify:
//! [`agora::verify_007`], [`agora::Agora006Token::verify`], [`zego::decrypt_04`],
//! [`jwt::verify`].
//!
//! ```
//! use tokenkeeper::formats::{describe, TokenFormat};
//! let info = describe("007eJxTYBBbsMMnKq7p9Hf/HcIX5kce9b518kCiQgSr5Zrp4X1Tu6UUGCzNDZwdjU1TUs0Mkk1MzExMk5ISUy0SjQxNDcwMk4yN3b8IMEQwMTAwMoAwBIL4CgzmKeZGxmamqUmWFsYmFqbGluapxqnGaZYpJmYGSSkpiVwMRhYWRsYmhkbmxgDCaiTj").unwrap();
//! assert_eq!(info.format, TokenFormat::Agora007);
//! assert_eq!(info.expires_at, Some(1_111_711));
//! assert_eq!(info.user.as_deref(), Some("2882341273"));
//! ```
//!
//! Every decoder is total: any input gives a value or a typed [`FormatError`], never a
//! panic, and memory stays bounded ([`MAX_TOKEN_LEN`], [`MAX_INFLATED_LEN`]).

pub mod agora;
mod error;
pub mod jwt;
pub mod zego;

pub use error::FormatError;

/// Longest accepted token text: 256 KiB. Real tokens are well under 2 KiB; the limit only
/// leaves room for the formats' maximal (u16-length) strings.
pub const MAX_TOKEN_LEN: usize = 256 * 1024;

/// Largest accepted inflated Agora 007 body: 1 MiB (zlib-bomb guard; a token with several
/// maximal 65535-byte strings still fits).
pub const MAX_INFLATED_LEN: usize = 1024 * 1024;

/// A token format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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

impl TokenFormat {
    /// Stable name: `agora-007`, `agora-006`, `zego-04`, `jwt`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Agora007 => "agora-007",
            Self::Agora006 => "agora-006",
            Self::Zego04 => "zego-04",
            Self::Jwt => "jwt",
        }
    }

    /// What the token is, in plain words ("a JWT").
    pub fn describe_plain(self) -> &'static str {
        match self {
            Self::Agora007 => "an Agora AccessToken2 (007)",
            Self::Agora006 => "an Agora AccessToken (006)",
            Self::Zego04 => "a ZEGO Token04",
            Self::Jwt => "a JWT",
        }
    }
}

impl std::fmt::Display for TokenFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Per-format full decode.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum TokenDetails {
    /// AccessToken2.
    Agora007(agora::Agora007Token),
    /// AccessToken.
    Agora006(agora::Agora006Token),
    /// Token04 (without the secret only expiry and variant are readable).
    Zego04(zego::Zego04Token),
    /// JWT header and claims.
    Jwt(jwt::JwtToken),
}

impl TokenDetails {
    /// The decoded fields as `inspect --json` prints them (vector field names).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Self::Agora007(t) => t.to_json(),
            Self::Agora006(t) => t.to_json(),
            Self::Zego04(t) => t.to_json(),
            Self::Jwt(t) => t.to_json(),
        }
    }
}

/// What a token says about itself, read without a key.
///
/// `Debug` prints decoded fields and claims, never signatures or ciphertext.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenInfo {
    /// The format.
    pub format: TokenFormat,
    /// Issue time, unix seconds (007 `issue_ts`, JWT `iat`).
    pub issued_at: Option<i64>,
    /// Start of validity, unix seconds (JWT `nbf`).
    pub not_before: Option<i64>,
    /// The instant a keeper must treat as expiry, unix seconds: for 007 the earliest of
    /// `issue_ts + expire` and every non-zero privilege expiry; for 006 the earliest of `ts`
    /// and every non-zero privilege expiry; for ZEGO the plain-text expire; for JWT `exp`.
    pub expires_at: Option<i64>,
    /// App id (Agora).
    pub app_id: Option<String>,
    /// Channel or room: 007 RTC/streaming/FCDN channel, APaaS room; JWT `room`/`rd`.
    pub channel: Option<String>,
    /// User: 007 RTC uid or RTM/Chat user id, APaaS user; JWT `sub`/`user_id`/`u`.
    pub user: Option<String>,
    /// The full per-format decode.
    pub details: TokenDetails,
}

/// Detects the format from the token's shape, without decoding it.
///
/// # Errors
/// [`FormatError::Empty`], [`FormatError::TooLong`] or [`FormatError::UnknownFormat`]
/// with a hint about what the input looks like.
pub fn detect(token: &str) -> Result<TokenFormat, FormatError> {
    let t = token.trim();
    if t.is_empty() {
        return Err(FormatError::Empty);
    }
    if t.len() > MAX_TOKEN_LEN {
        return Err(FormatError::TooLong {
            len: t.len(),
            max: MAX_TOKEN_LEN,
        });
    }
    if t.starts_with("007") {
        return Ok(TokenFormat::Agora007);
    }
    if t.starts_with("006") {
        return Ok(TokenFormat::Agora006);
    }
    if t.starts_with("04") {
        return Ok(TokenFormat::Zego04);
    }
    if t.bytes().filter(|&b| b == b'.').count() == 2 {
        return Ok(TokenFormat::Jwt);
    }
    let hint = if t.starts_with("00") {
        "it starts like an Agora token but the version is neither 007 nor 006 (older 005 and earlier tokens are not supported)"
    } else if t.starts_with("ey") {
        "it looks like base64 JSON but does not have the three dot-separated parts of a JWT (was it cut?)"
    } else if t.starts_with('{') {
        "it looks like a JSON document: pass the token field inside it, not the whole response"
    } else if t.starts_with("Bearer ") || t.starts_with("bearer ") {
        "drop the \"Bearer \" prefix and pass the token alone"
    } else {
        "the first characters match none of them"
    };
    Err(FormatError::UnknownFormat { hint })
}

/// A vendor whose engine takes a given token family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Vendor {
    /// Agora: AccessToken2 (`007`) or the legacy AccessToken (`006`).
    Agora,
    /// ZEGO: Token04.
    Zego,
    /// A JWT-based service (SFUs, Digital Samba-style rooms).
    Jwt,
}

impl Vendor {
    /// Every vendor, in the order tokenkeeper lists them.
    pub const ALL: [Vendor; 3] = [Vendor::Agora, Vendor::Zego, Vendor::Jwt];

    /// The lowercase name used on the command line and in the backend's API: `agora`, `zego`,
    /// `jwt`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Agora => "agora",
            Self::Zego => "zego",
            Self::Jwt => "jwt",
        }
    }

    /// Parses a vendor name, ignoring case (`"ZEGO"` → [`Vendor::Zego`]).
    ///
    /// ```
    /// use tokenkeeper::formats::Vendor;
    /// assert_eq!(Vendor::parse("Agora"), Some(Vendor::Agora));
    /// assert_eq!(Vendor::parse("zeog"), None);
    /// ```
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(name))
    }

    fn accepts(self, format: TokenFormat) -> bool {
        match self {
            Self::Agora => matches!(format, TokenFormat::Agora007 | TokenFormat::Agora006),
            Self::Zego => format == TokenFormat::Zego04,
            Self::Jwt => format == TokenFormat::Jwt,
        }
    }

    fn expects(self) -> &'static str {
        match self {
            Self::Agora => {
                "Agora expects an AccessToken2, which starts with 007 (or a legacy AccessToken, 006)"
            }
            Self::Zego => "ZEGO expects a Token04, which starts with 04",
            Self::Jwt => "a JWT has three base64url parts separated by dots, starting with ey",
        }
    }
}

impl std::fmt::Display for Vendor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Vendor {
    type Err = String;

    /// Like [`Vendor::parse`], with an error that lists the accepted names.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::parse(name).ok_or_else(|| format!("unknown vendor `{name}`: use agora, zego or jwt"))
    }
}

/// Detects the format and checks that `vendor` takes it, explaining a mismatch in plain
/// words: a JWT sent to ZEGO fails with "this is a JWT; ZEGO expects a Token04, which
/// starts with 04" (ZEGO itself only answers with room error 50119).
///
/// # Errors
/// [`FormatError::WrongFormat`], or the errors of [`detect`].
///
/// ```
/// use tokenkeeper::formats::{expect_vendor, Vendor};
/// let err = expect_vendor("eyJhbGciOiJIUzI1NiJ9.e30.c2ln", Vendor::Zego).unwrap_err();
/// assert_eq!(err.to_string(), "this is a JWT; ZEGO expects a Token04, which starts with 04");
/// ```
pub fn expect_vendor(token: &str, vendor: Vendor) -> Result<TokenFormat, FormatError> {
    let format = detect(token)?;
    if vendor.accepts(format) {
        Ok(format)
    } else {
        Err(FormatError::WrongFormat {
            found: format.describe_plain(),
            expected_hint: vendor.expects(),
        })
    }
}

/// Decodes any supported token without a key and reports its expiry.
///
/// # Errors
/// [`FormatError`] when the format is unknown or the token is malformed.
pub fn describe(token: &str) -> Result<TokenInfo, FormatError> {
    let format = detect(token)?;
    Ok(match format {
        TokenFormat::Agora007 => {
            let t = agora::decode_007(token)?;
            info_007(t)
        }
        TokenFormat::Agora006 => {
            let t = agora::decode_006(token)?;
            TokenInfo {
                format,
                issued_at: None,
                not_before: None,
                expires_at: Some(t.effective_expires_at()),
                app_id: Some(t.app_id.clone()),
                channel: None,
                user: None,
                details: TokenDetails::Agora006(t),
            }
        }
        TokenFormat::Zego04 => {
            let t = zego::decode_04(token)?;
            TokenInfo {
                format,
                issued_at: None,
                not_before: None,
                expires_at: Some(t.expire),
                app_id: None,
                channel: None,
                user: None,
                details: TokenDetails::Zego04(t),
            }
        }
        TokenFormat::Jwt => {
            let t = jwt::decode(token)?;
            let first = |names: &[&str]| names.iter().find_map(|n| t.text_claim(n));
            TokenInfo {
                format,
                issued_at: t.time_claim("iat"),
                not_before: t.time_claim("nbf"),
                expires_at: t.time_claim("exp"),
                app_id: None,
                channel: first(&["room", "rd", "channel"]),
                user: first(&["sub", "user_id", "u", "uid"]),
                details: TokenDetails::Jwt(t),
            }
        }
    })
}

fn info_007(t: agora::Agora007Token) -> TokenInfo {
    use agora::ServiceKind as K;
    let mut channel = None;
    let mut user = None;
    for s in &t.services {
        let (c, u) = match &s.kind {
            K::Rtc { channel_name, uid } => (Some(channel_name), Some(uid)),
            K::Streaming {
                channel_name,
                account,
            }
            | K::Fcdn {
                channel_name,
                account,
            } => (Some(channel_name), Some(account)),
            K::Rtm { user_id } | K::Chat { user_id } | K::Rtm2 { user_id, .. } => {
                (None, Some(user_id))
            }
            K::Apaas {
                room_uuid,
                user_uuid,
                ..
            } => (Some(room_uuid), Some(user_uuid)),
            _ => (None, None),
        };
        if channel.is_none() {
            channel = c.filter(|c| !c.is_empty()).cloned();
        }
        if user.is_none() {
            user = u.filter(|u| !u.is_empty()).cloned();
        }
    }
    TokenInfo {
        format: TokenFormat::Agora007,
        issued_at: Some(i64::from(t.issue_ts)),
        not_before: None,
        expires_at: Some(t.effective_expires_at()),
        app_id: Some(t.app_id.clone()),
        channel,
        user,
        details: TokenDetails::Agora007(t),
    }
}
