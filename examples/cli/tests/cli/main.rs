//! Tests of the `tokenkeeper` command as scripts call it.
mod demo;
mod edges;
mod inspect;
mod mint;
