//! Tests of the uniffi façade from Rust: the same objects the generated bindings call, driven
//! the way foreign executors drive them (polled from threads with no tokio runtime).

mod errors;
mod events;
mod facade;
mod logs;
