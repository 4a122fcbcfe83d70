//! Tests of the `tokenkeeper` command as scripts call it.
mod inspect;
mod mint;
mod demo;
