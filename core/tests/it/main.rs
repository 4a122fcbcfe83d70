//! The crate's one integration-test binary; one module per topic.
mod formats_edges;
mod formats_hostile;
mod formats_jwt;
mod formats_props;
mod formats_vectors;
mod lifecycle;
mod lifecycle_edges;
mod lifecycle_support;
mod no_secrets_in_logs;
