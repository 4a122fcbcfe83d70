//! Injected time. The only module allowed to read the system clock.
