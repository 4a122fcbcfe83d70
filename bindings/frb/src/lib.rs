//! flutter_rust_bridge façade over the tokenkeeper core.
