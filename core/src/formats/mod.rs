//! Token formats: decode (no key needed) and verify (with a key).
