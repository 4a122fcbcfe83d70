//! uniffi façade over the tokenkeeper core.
