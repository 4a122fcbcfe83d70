//! Tests of the `tokenkeeper` command as scripts call it.
mod demo;
mod inspect;
mod mint;
