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

/// What a Dart exception says, fit for an error message, an event and a log line: the first
/// line only, at most 200 characters (the glue appends the Dart stack trace to the exception
/// text), with anything that looks like a token shown as a prefix and a length
/// (`tokenkeeper::logging::redact`, the same scrubbing as the log stream).
pub(crate) fn host_text(error: &anyhow::Error) -> String {
    let text = error.to_string();
    let line = text.lines().next().unwrap_or("").trim();
    let mut out: String = line.chars().take(200).collect();
    if line.chars().count() > 200 {
        out.push('…');
    }
    tokenkeeper::logging::redact(&out)
}
