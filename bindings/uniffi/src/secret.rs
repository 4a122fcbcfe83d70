//! [`Secret`]: the one type every token, credential and auth value crosses the FFI in, so no
//! generated `toString()` / `str()` / `description` can print one.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use tokenkeeper::source as core;

/// A secret text: an access token, a refresh token or other credentials, an auth header value.
///
/// Opaque on purpose: its `toString()` (Kotlin), `str()`/`repr()` (Python) and
/// `description`/`debugDescription` (Swift) show only the length, e.g. `Secret(len=187)`, so
/// records holding one (`IssuedToken`, `FetchedToken`, `FetchRequest`, `HttpSourceConfig`) are
/// safe to log and print. Read the text with `expose()` only where it is used. Two secrets are
/// equal when their texts are. Zeroed when released (on the Rust side).
///
/// # Example (Kotlin)
/// ```kotlin
/// val issued = session.token()
/// engine.renewToken(issued.token.expose())   // the text, for the RTC engine only
/// Log.i(TAG, "got $issued")                  // IssuedToken(token=Secret(len=187), …)
/// return FetchedToken(Secret(json.getString("token")))
/// ```
#[derive(Clone, PartialEq, Eq, uniffi::Object)]
#[uniffi::export(Debug, Display, Eq, Hash)]
pub struct Secret(core::Credentials);

#[uniffi::export]
impl Secret {
    /// Wraps a secret text (a token from your backend, a refresh token, an API key…).
    #[uniffi::constructor]
    pub fn new(value: String) -> Arc<Self> {
        Arc::new(Self(core::Credentials::new(value)))
    }

    /// The secret text: pass this to the engine (or your HTTP request); never log it.
    pub fn expose(&self) -> String {
        self.0.expose().to_owned()
    }

    /// Length of the text in bytes (UTF-8).
    pub fn len(&self) -> u64 {
        self.0.expose().len() as u64
    }

    /// Whether the text is empty.
    pub fn is_empty(&self) -> bool {
        self.0.expose().is_empty()
    }
}

impl Secret {
    /// The text, borrowed (Rust side of the façade only).
    pub(crate) fn as_str(&self) -> &str {
        self.0.expose()
    }

    pub(crate) fn wrap(value: &str) -> Arc<Self> {
        Arc::new(Self(core::Credentials::new(value)))
    }

    pub(crate) fn to_token(&self) -> core::Token {
        core::Token::new(self.as_str())
    }

    pub(crate) fn to_credentials(&self) -> core::Credentials {
        self.0.clone()
    }
}

/// Only the length: `Secret(len=187)`.
impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(len={})", self.as_str().len())
    }
}

/// As [`Display`](fmt::Display): only the length.
impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Hash for Secret {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}
