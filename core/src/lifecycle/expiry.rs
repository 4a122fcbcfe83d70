//! What the token itself says about its lifetime, via [`crate::formats::describe`].

/// Times decoded from a token, server clock, unix milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Decoded {
    pub(crate) expires_at_ms: Option<i64>,
    pub(crate) not_before_ms: Option<i64>,
    pub(crate) issued_at_ms: Option<i64>,
}

/// Decodes the token's own times; `None` when the format is unknown or undecodable (the
/// source's answer then decides alone).
pub(crate) fn decode(token: &str) -> Option<Decoded> {
    let info = crate::formats::describe(token).ok()?;
    let ms = |s: i64| s.saturating_mul(1000);
    Some(Decoded {
        expires_at_ms: info.expires_at.map(ms),
        not_before_ms: info.not_before.map(ms),
        issued_at_ms: info.issued_at.map(ms),
    })
}
