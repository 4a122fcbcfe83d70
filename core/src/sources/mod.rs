//! Built-in token sources: HTTP and OAuth refresh token (feature `http`).
