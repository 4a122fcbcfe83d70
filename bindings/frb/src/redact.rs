//! Redaction helpers for hand-written `Debug` and for error texts that come from Dart.

use std::fmt;

/// Shows a token as the core does: a short prefix and the length, never the whole text.
pub(crate) use tokenkeeper::source::Redacted;

/// Shows a long-lived secret (refresh token) as its length only.
pub(crate) struct SecretLen<'a>(pub(crate) &'a str);

impl fmt::Debug for SecretLen<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<secret, len {}>", self.0.len())
    }
}

/// The first line of an exception text, at most 200 characters: Dart exceptions arrive with
/// their stack trace appended, which has no place in an error message.
pub(crate) fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or("").trim();
    let mut out: String = line.chars().take(200).collect();
    if line.chars().count() > 200 {
        out.push('…');
    }
    out
}
