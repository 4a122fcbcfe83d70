//! The log-capture tests, in a test binary of their own. `tracing` caches each callsite's
//! interest for the whole process, so these install their one global subscriber before any
//! other code of the process logs; sharing a process with the other tests made them lose events
//! (see `it/no_secrets_in_logs.rs`).
#[cfg(feature = "http")]
#[path = "it/http_support.rs"]
mod http_support;
#[allow(dead_code)] // shared with the `it` binary, which uses all of it
#[path = "it/lifecycle_support.rs"]
mod lifecycle_support;
#[path = "it/no_secrets_in_logs.rs"]
mod no_secrets_in_logs;
