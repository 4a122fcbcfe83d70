//! The API the Dart side calls. Everything under this module is read by
//! `flutter_rust_bridge_codegen` and mirrored into `flutter/lib/src/rust/api/`.
//!
//! Every function is a thin delegate to the `tokenkeeper` core that converts types and errors at
//! the boundary; no lifecycle logic lives here. The names are the ones every platform uses
//! (`Keeper`, `Session`, `Policy`, `SessionConfig`, `SessionSpec`, `IssuedToken`,
//! `SessionEvent`, `EventKind`, `SessionStatus`, `Counters`, `TokenKeeperError`, `LogRecord`,
//! `HttpSourceConfig`).

pub mod config;
pub mod error;
pub mod events;
pub mod http;
pub mod inspect;
pub mod keeper;
pub mod logging;
pub mod source;

/// Runs once when the Dart side calls `TokenKeeperLib.init()`: installs flutter_rust_bridge's
/// default panic-backtrace and console-logging helpers.
#[flutter_rust_bridge::frb(init)]
pub fn init_app() {
    flutter_rust_bridge::setup_default_user_utils();
}
