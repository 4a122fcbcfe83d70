//! Integration tests of the reference backend over loopback: a real server, a real HTTP client
//! (reqwest) and a real WebSocket client (tokio-tungstenite).

mod bad_requests;
mod binary;
mod common;
mod faults;
mod fuzz;
mod hardening;
mod logs;
mod multi;
mod oauth;
mod oauth_security;
mod room;
mod rtc;
mod samba;
