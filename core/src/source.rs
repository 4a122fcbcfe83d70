//! The `TokenSource` abstraction.
