//! tokenkeeper keeps short-lived real-time access tokens alive.
//!
//! (Crate guide: written once the modules below settle; see `../shared/DESIGN.md`.)

pub mod clock;
pub mod formats;
pub mod lifecycle;
#[cfg(feature = "mint")]
pub mod mint;
pub mod source;
#[cfg(feature = "http")]
pub mod sources;
pub mod store;
