//! Keeper, sessions, renewal policy, backoff.
