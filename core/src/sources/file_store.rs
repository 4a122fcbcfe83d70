//! [`FileStore`]: a [`CredentialStore`] on the local file system, for desktop apps, servers and
//! command-line tools (mobile apps implement the store over the Keychain / Keystore instead).

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use zeroize::Zeroizing;

use crate::source::Credentials;
use crate::store::{CredentialStore, StoreError, StoreLock};

/// Largest credentials file [`FileStore::load`](CredentialStore::load) reads: 64 KiB.
pub const MAX_CREDENTIALS_BYTES: u64 = 64 * 1024;

/// A [`CredentialStore`] keeping one file per key in a directory.
///
/// - **Atomic and durable saves**: the secret is written to a temporary file in the same
///   directory, flushed to disk (`fsync`), renamed over the old file, and the directory itself
///   is flushed, so after a crash or power loss the key holds either the old or the new
///   credentials, never a torn mix, and a save that returned `Ok` survives.
/// - **Private**: on unix the directory is created `0700` and files `0600` (owner only).
/// - **Key → file name**: letters, digits, `-`, `_` and `.` are kept, every other byte becomes
///   `%XX`, and `.cred` is appended (`oauth:alice` → `oauth%3Aalice.cred`).
/// - `Debug` shows the directory only; secrets are never logged.
///
/// Several processes may share a directory: [`CredentialStore::lock`] takes an exclusive file
/// lock (`<key>.cred.lock`, `flock` on unix) that a keeper holds while one refresh reads, uses
/// and replaces a key's credentials, so two processes never replay each other's consumed
/// refresh token.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use tokenkeeper::source::Credentials;
/// use tokenkeeper::sources::FileStore;
/// use tokenkeeper::store::CredentialStore;
///
/// let dir = tempfile::tempdir().unwrap();
/// let store = FileStore::new(dir.path());
/// store.save("oauth:alice", &Credentials::new("rt-1")).await.unwrap();
/// let again = FileStore::new(dir.path()); // e.g. after a restart
/// assert_eq!(again.load("oauth:alice").await.unwrap().unwrap().expose(), "rt-1");
/// assert!(dir.path().join("oauth%3Aalice.cred").exists());
/// # });
/// ```
#[derive(Clone)]
pub struct FileStore {
    dir: Arc<PathBuf>,
}

impl FileStore {
    /// A store in `dir` (created on the first save).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: Arc::new(dir.into()),
        }
    }

    /// The directory holding the files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file that holds `key`.
    pub fn path_for(&self, key: &str) -> PathBuf {
        self.dir.join(file_name(key))
    }
}

impl fmt::Debug for FileStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileStore").field("dir", &self.dir).finish()
    }
}

fn file_name(key: &str) -> String {
    let mut name = String::with_capacity(key.len() + 5);
    for (i, b) in key.bytes().enumerate() {
        // A leading '.' would hide the file and could clash with the temporary files.
        let keep = b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || (b == b'.' && i > 0);
        if keep {
            name.push(char::from(b));
        } else {
            name.push_str(&format!("%{b:02X}"));
        }
    }
    if name.is_empty() {
        name.push_str("%00");
    }
    name.push_str(".cred");
    name
}

fn io_error(what: &str, path: &Path, e: &std::io::Error) -> StoreError {
    let fix = match e.kind() {
        ErrorKind::PermissionDenied => "; check the directory's owner and permissions",
        ErrorKind::NotFound => "; check that the directory exists or can be created",
        _ => "",
    };
    StoreError::new(format!("{what} {}: {e}{fix}", path.display()))
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

fn create_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

fn open_private(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

/// Flushes a directory entry (the rename) to disk. A no-op where directories cannot be opened.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

fn save_blocking(dir: &Path, key: &str, secret: &[u8]) -> Result<(), StoreError> {
    create_dir(dir).map_err(|e| io_error("cannot create the credentials directory", dir, &e))?;
    let target = dir.join(file_name(key));
    let temp = dir.join(format!(
        ".{}.tmp-{}-{}",
        file_name(key),
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let written = (|| {
        let mut file = open_private(&temp)?;
        file.write_all(secret)?;
        file.sync_all()
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&temp);
        return Err(io_error("cannot write the credentials file", &temp, &e));
    }
    if let Err(e) = fs::rename(&temp, &target) {
        let _ = fs::remove_file(&temp);
        return Err(io_error("cannot replace the credentials file", &target, &e));
    }
    sync_dir(dir).map_err(|e| io_error("cannot flush the credentials directory", dir, &e))
}

fn lock_blocking(dir: &Path, key: &str) -> Result<StoreLock, StoreError> {
    create_dir(dir).map_err(|e| io_error("cannot create the credentials directory", dir, &e))?;
    let path = dir.join(format!("{}.lock", file_name(key)));
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let file = options
        .open(&path)
        .map_err(|e| io_error("cannot open the lock file", &path, &e))?;
    lock_exclusive(&file).map_err(|e| io_error("cannot lock", &path, &e))?;
    Ok(StoreLock::new(file))
}

/// `flock(LOCK_EX)`: blocks until no other open file holds the lock; released when the file
/// closes. Where it is not available the key is not locked across processes.
#[cfg(any(target_os = "linux", target_os = "android", target_vendor = "apple"))]
fn lock_exclusive(file: &File) -> std::io::Result<()> {
    rustix::fs::flock(file, rustix::fs::FlockOperation::LockExclusive).map_err(Into::into)
}

#[cfg(not(any(target_os = "linux", target_os = "android", target_vendor = "apple")))]
fn lock_exclusive(_: &File) -> std::io::Result<()> {
    Ok(())
}

fn load_blocking(path: &Path) -> Result<Option<Credentials>, StoreError> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error("cannot open the credentials file", path, &e)),
    };
    let mut bytes = Zeroizing::new(Vec::new());
    file.take(MAX_CREDENTIALS_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| io_error("cannot read the credentials file", path, &e))?;
    if bytes.len() as u64 > MAX_CREDENTIALS_BYTES {
        return Err(StoreError::new(format!(
            "the credentials file {} is larger than {MAX_CREDENTIALS_BYTES} bytes; it was not \
             written by tokenkeeper: delete it and sign in again",
            path.display()
        )));
    }
    match std::str::from_utf8(&bytes) {
        Ok(text) => Ok(Some(Credentials::new(text))),
        Err(_) => Err(StoreError::new(format!(
            "the credentials file {} is not UTF-8 text; it was not written by tokenkeeper: \
             delete it and sign in again",
            path.display()
        ))),
    }
}

fn delete_blocking(dir: &Path, path: &Path) -> Result<(), StoreError> {
    match fs::remove_file(path) {
        Ok(()) => sync_dir(dir).map_err(|e| io_error("cannot flush the directory", dir, &e)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_error("cannot delete the credentials file", path, &e)),
    }
}

async fn blocking<T: Send + 'static>(
    job: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(job)
        .await
        .map_err(|e| StoreError::new(format!("the file store's I/O task failed: {e}")))?
}

#[async_trait::async_trait]
impl CredentialStore for FileStore {
    async fn load(&self, key: &str) -> Result<Option<Credentials>, StoreError> {
        let path = self.path_for(key);
        blocking(move || load_blocking(&path)).await
    }

    async fn save(&self, key: &str, credentials: &Credentials) -> Result<(), StoreError> {
        let dir = Arc::clone(&self.dir);
        let key = key.to_owned();
        let secret = Zeroizing::new(credentials.expose().as_bytes().to_vec());
        blocking(move || save_blocking(&dir, &key, &secret)).await
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let dir = Arc::clone(&self.dir);
        let path = self.path_for(key);
        blocking(move || delete_blocking(&dir, &path)).await
    }

    async fn lock(&self, key: &str) -> Result<Option<StoreLock>, StoreError> {
        let dir = Arc::clone(&self.dir);
        let key = key.to_owned();
        blocking(move || lock_blocking(&dir, &key).map(Some)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_escape_everything_but_safe_characters() {
        assert_eq!(file_name("oauth:alice"), "oauth%3Aalice.cred");
        assert_eq!(file_name("a/../b"), "a%2F..%2Fb.cred");
        assert_eq!(file_name(".hidden"), "%2Ehidden.cred");
        assert_eq!(file_name(""), "%00.cred");
        assert_eq!(file_name("Kx_1-2.v"), "Kx_1-2.v.cred");
    }

    #[tokio::test]
    async fn save_replaces_atomically_and_leaves_no_temporary_files() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path().join("nested"));
        for i in 0..20 {
            store
                .save("k", &Credentials::new(format!("rt-{i}")))
                .await
                .unwrap();
        }
        assert_eq!(store.load("k").await.unwrap().unwrap().expose(), "rt-19");
        let names: Vec<String> = fs::read_dir(store.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["k.cred".to_owned()]);
        store.delete("k").await.unwrap();
        store.delete("k").await.unwrap();
        assert!(store.load("k").await.unwrap().is_none());
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn files_are_private_to_the_owner() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path().join("creds"));
        store.save("k", &Credentials::new("secret")).await.unwrap();
        let file_mode = fs::metadata(store.path_for("k"))
            .unwrap()
            .permissions()
            .mode();
        let dir_mode = fs::metadata(store.dir()).unwrap().permissions().mode();
        assert_eq!(file_mode & 0o777, 0o600);
        assert_eq!(dir_mode & 0o777, 0o700);
    }

    #[tokio::test]
    async fn the_key_lock_excludes_a_second_holder_until_released() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (FileStore::new(dir.path()), FileStore::new(dir.path()));
        let held = a.lock("k").await.unwrap().expect("a file lock");
        let waiting = tokio::spawn(async move { b.lock("k").await.map(|l| l.is_some()) });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(
            !waiting.is_finished(),
            "the second lock waits for the first"
        );
        drop(held);
        assert!(waiting.await.unwrap().unwrap());
    }

    #[tokio::test]
    async fn a_foreign_file_is_a_clear_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path());
        fs::write(store.path_for("k"), [0xff, 0xfe, 0x00]).unwrap();
        let err = store.load("k").await.unwrap_err();
        assert!(err.message.contains("not UTF-8"), "{err}");
        assert!(format!("{store:?}").starts_with("FileStore { dir: "));
    }
}
