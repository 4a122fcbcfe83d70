//! The crate's one integration-test binary; one module per topic.
mod formats_edges;
mod formats_hostile;
mod formats_jwt;
mod formats_props;
mod formats_vectors;
#[cfg(feature = "http")]
mod http_support;
mod lifecycle;
mod lifecycle_clocks;
mod lifecycle_credentials;
mod lifecycle_edges;
mod lifecycle_host;
mod lifecycle_reports;
mod lifecycle_sink;
mod lifecycle_soak;
mod lifecycle_support;
