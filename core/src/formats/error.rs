//! Typed decode and verification errors. Messages name the cause and the fix and never
//! contain token bytes, keys or secrets.

/// Why a token could not be decoded or verified.
///
/// Every message names what is wrong and what to do about it. No variant carries token
/// bytes, certificates or secrets, so errors are safe to log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// The input was empty (or only whitespace).
    #[error(
        "the token is empty: pass the token string itself (check that the variable holding it is set)"
    )]
    Empty,
    /// The input is longer than any supported token.
    #[error(
        "the token is {len} bytes long, over the {max}-byte limit: this is not an access token (check that you passed the token, not a file or response body)"
    )]
    TooLong {
        /// Length of the input in bytes.
        len: usize,
        /// The limit ([`MAX_TOKEN_LEN`](crate::formats::MAX_TOKEN_LEN)).
        max: usize,
    },
    /// The input does not start like any supported format.
    #[error(
        "unrecognised token format: expected Agora \"007\"/\"006\", ZEGO \"04\" or a JWT (three base64url parts separated by dots); {hint}"
    )]
    UnknownFormat {
        /// A plain-words hint about what the input looks like.
        hint: &'static str,
    },
    /// The token is of a different format than the caller asked for.
    #[error("this is {found}; {expected_hint}")]
    WrongFormat {
        /// What the token is, in plain words ("a JWT").
        found: &'static str,
        /// What was expected, in plain words.
        expected_hint: &'static str,
    },
    /// The base64 body is not valid base64.
    #[error(
        "{format} token body is not valid base64 ({detail}): the token was truncated or altered in transit (copy it again, URL-decode it if it came from a query string)"
    )]
    Base64 {
        /// Format name, e.g. `agora-007`.
        format: &'static str,
        /// What the decoder reported (no token bytes).
        detail: String,
    },
    /// The zlib stream inside an Agora 007 token is invalid.
    #[error(
        "agora-007 token body is not a valid zlib stream ({detail}): the token was truncated or altered (copy it again)"
    )]
    Zlib {
        /// What the inflater reported.
        detail: String,
    },
    /// The decompressed body is larger than any real token (zlib bomb guard).
    #[error(
        "agora-007 token inflates past {limit} bytes: this is not a real token (real ones inflate to well under 1 KiB)"
    )]
    InflatedTooLarge {
        /// The cap ([`MAX_INFLATED_LEN`](crate::formats::MAX_INFLATED_LEN)).
        limit: usize,
    },
    /// A field runs past the end of the token.
    #[error("{format} token is truncated: it ends inside `{field}` (copy the whole token again)")]
    Truncated {
        /// Format name.
        format: &'static str,
        /// The field being read.
        field: &'static str,
    },
    /// A field's length or value is impossible.
    #[error("{format} token has an invalid `{field}`: {detail}")]
    InvalidField {
        /// Format name.
        format: &'static str,
        /// The field.
        field: &'static str,
        /// What is wrong with it (no token bytes).
        detail: String,
    },
    /// A key argument (certificate, secret, JWT key) is malformed.
    #[error("invalid {what}: {detail}")]
    InvalidKey {
        /// Which key ("app certificate", "ZEGO server secret", ...).
        what: &'static str,
        /// What is wrong and how to fix it (never the key itself).
        detail: String,
    },
    /// The signature does not match.
    #[error(
        "{format} signature does not match: the token was signed with a different {key_name} or was altered (check that the {key_name} belongs to this app)"
    )]
    SignatureMismatch {
        /// Format name.
        format: &'static str,
        /// What key was used ("app certificate", "key").
        key_name: &'static str,
    },
    /// ZEGO decryption failed (wrong secret or altered token).
    #[error(
        "zego-04 token could not be decrypted ({variant}): the ServerSecret is not the one that minted it, or the token was altered (use the 32-character ServerSecret of this AppID from the ZEGO console)"
    )]
    DecryptFailed {
        /// `gcm` or `cbc`.
        variant: &'static str,
    },
    /// The decrypted or decoded payload is inconsistent.
    #[error("{format} payload is inconsistent: {detail}")]
    PayloadMismatch {
        /// Format name.
        format: &'static str,
        /// What disagrees.
        detail: String,
    },
    /// A ZEGO Token04 decrypts with the secret (and, for GCM, authenticates), but its app
    /// id does not fit ZEGO's 32-bit AppIDs, so no ZEGO service accepts it.
    #[error(
        "zego-04 token decrypts with this ServerSecret{}, but its app id {app_id} is out of range: ZEGO AppIDs are 32-bit numbers (at most 4294967295), so ZEGO services refuse this token (mint it again with the numeric AppID from the ZEGO console)",
        if *.variant == "gcm" { " and its GCM tag authenticates it" } else { "" }
    )]
    ZegoAppIdOutOfRange {
        /// The app id as the token spells it (a JSON number, at most 24 characters).
        app_id: String,
        /// `gcm` or `cbc`.
        variant: &'static str,
    },
    /// JWT header names `alg: none` (unsigned token).
    #[error(
        "the JWT is unsigned (`alg: none`): refusing it (mint the token with the configured HMAC algorithm)"
    )]
    JwtAlgNone,
    /// JWT header names a different algorithm than the one the caller pinned.
    #[error(
        "the JWT is signed with {found}, but {expected} is configured: refusing it (mint with {expected}, or configure the algorithm your issuer uses)"
    )]
    JwtAlgorithmMismatch {
        /// The pinned algorithm.
        expected: &'static str,
        /// The algorithm in the header (sanitised, at most 16 chars).
        found: String,
    },
    /// The JWT `exp` lies in the past (beyond the leeway).
    #[error("the JWT expired {by_secs} s ago (exp, leeway {leeway_secs} s): fetch a fresh token")]
    JwtExpired {
        /// Seconds past `exp`.
        by_secs: i64,
        /// The leeway applied.
        leeway_secs: u64,
    },
    /// The JWT `nbf` lies in the future (beyond the leeway).
    #[error(
        "the JWT is not valid for another {in_secs} s (nbf, leeway {leeway_secs} s): wait until its start or check the device clock"
    )]
    JwtNotYetValid {
        /// Seconds until `nbf`.
        in_secs: i64,
        /// The leeway applied.
        leeway_secs: u64,
    },
}
