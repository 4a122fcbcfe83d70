//! The crate's one integration-test binary; one module per topic.
