//! The `CredentialStore` abstraction and the built-in stores.
