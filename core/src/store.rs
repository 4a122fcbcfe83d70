//! The [`CredentialStore`] abstraction and the built-in in-memory store.
//!
//! A store keeps long-lived credentials (e.g. an OAuth refresh token) under a key. On mobile the
//! host implements it over the Keychain / Android Keystore; [`MemoryStore`] is for tests and
//! processes that need no persistence; `FileStore` (feature `http`) keeps them on disk for desktop
//! apps and servers.
//!
//! The lifecycle engine keeps one credential state per key for all sessions that name it,
//! re-reads the store before each fetch that uses the credentials (so two processes, or a host
//! that saved new credentials after a sign-in, never replay a consumed refresh token), and tries
//! to save rotated credentials **before** it hands out the token that came with them. A save
//! that fails is retried in the background while the credentials stay in memory: the server
//! already rotated, so withholding the token would protect nothing.

use std::collections::HashMap;
use std::fmt;

use parking_lot::Mutex;

use crate::source::Credentials;

/// The built-in on-disk store (atomic, fsynced, owner-only files).
#[cfg(feature = "http")]
pub use crate::sources::FileStore;

/// Why a store operation failed. The message names the cause and never contains the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("credential store failed: {message}")]
pub struct StoreError {
    /// What went wrong and what to check (no secrets).
    pub message: String,
}

impl StoreError {
    /// A store error with `message`.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

/// Held while a fetch uses the credentials of one key; dropping it releases the store's
/// cross-process lock ([`CredentialStore::lock`]).
pub struct StoreLock(#[allow(dead_code)] Box<dyn Send + Sync>);

impl StoreLock {
    /// Wraps whatever releases the lock when dropped (a locked file, a guard).
    pub fn new(guard: impl Send + Sync + 'static) -> Self {
        Self(Box::new(guard))
    }
}

impl fmt::Debug for StoreLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StoreLock")
    }
}

/// Persistent storage for [`Credentials`], keyed by a non-secret name.
///
/// Calls may block or fail: the engine bounds each one by the policy's fetch timeout, orders
/// saves per key, and retries a failed save in the background.
#[async_trait::async_trait]
pub trait CredentialStore: Send + Sync + fmt::Debug {
    /// Loads the credentials under `key`; `Ok(None)` when nothing is stored.
    async fn load(&self, key: &str) -> Result<Option<Credentials>, StoreError>;
    /// Saves (replaces) the credentials under `key`. An `Err` means they were **not** saved.
    async fn save(&self, key: &str, credentials: &Credentials) -> Result<(), StoreError>;
    /// Deletes the credentials under `key` (no error when absent).
    async fn delete(&self, key: &str) -> Result<(), StoreError>;
    /// Takes an exclusive lock on `key` across processes, held while one refresh reads, uses
    /// and replaces the credentials; `Ok(None)` (the default) when the store cannot lock, as
    /// with an in-process store. `FileStore` (feature `http`) locks a file beside
    /// the key's file, so two processes sharing a directory refresh one at a time.
    async fn lock(&self, key: &str) -> Result<Option<StoreLock>, StoreError> {
        let _ = key;
        Ok(None)
    }
}

/// An in-memory [`CredentialStore`]: nothing survives the process.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use tokenkeeper::source::Credentials;
/// use tokenkeeper::store::{CredentialStore, MemoryStore};
///
/// let store = MemoryStore::new();
/// store.save("oauth:alice", &Credentials::new("rt-1")).await.unwrap();
/// assert_eq!(store.load("oauth:alice").await.unwrap().unwrap().expose(), "rt-1");
/// store.delete("oauth:alice").await.unwrap();
/// assert!(store.load("oauth:alice").await.unwrap().is_none());
/// # });
/// ```
#[derive(Default)]
pub struct MemoryStore {
    entries: Mutex<HashMap<String, Credentials>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of stored entries.
    pub fn len(&self) -> usize {
        self.entries.lock().len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.lock().is_empty()
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let entries = self.entries.lock();
        let mut keys: Vec<&String> = entries.keys().collect();
        keys.sort();
        f.debug_struct("MemoryStore").field("keys", &keys).finish()
    }
}

#[async_trait::async_trait]
impl CredentialStore for MemoryStore {
    async fn load(&self, key: &str) -> Result<Option<Credentials>, StoreError> {
        Ok(self.entries.lock().get(key).cloned())
    }

    async fn save(&self, key: &str, credentials: &Credentials) -> Result<(), StoreError> {
        self.entries
            .lock()
            .insert(key.to_owned(), credentials.clone());
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.entries.lock().remove(key);
        Ok(())
    }
}
