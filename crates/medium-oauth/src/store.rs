//! Where tokens live between runs: the [`TokenStore`] trait, a memory store
//! and an atomic, locked JSON file store.

use std::fmt;
use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;

use crate::{Error, Token, TokenRecord};

/// A boxed, sendable future: what [`TokenStore`]'s methods return, so the
/// trait can be used as `Arc<dyn TokenStore>`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Holds a store's cross-process lock until dropped.
#[derive(Default)]
pub struct StoreLock(Option<Box<dyn Send + Sync>>);

impl StoreLock {
    /// A lock held by `guard`, released when it is dropped.
    pub fn new(guard: impl Send + Sync + 'static) -> Self {
        Self(Some(Box::new(guard)))
    }
}

impl fmt::Debug for StoreLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "StoreLock(held)"
        } else {
            "StoreLock(none)"
        })
    }
}

/// Persists one token. Implementations must be safe to call from several
/// tasks at once.
pub trait TokenStore: Send + Sync {
    /// The stored token, or `None` if there is none.
    fn load(&self) -> BoxFuture<'_, Result<Option<Token>, Error>>;

    /// Replaces the stored token.
    fn save<'a>(&'a self, token: &'a Token) -> BoxFuture<'a, Result<(), Error>>;

    /// Takes a lock that excludes other processes sharing the store, held
    /// around "reload, refresh if still due, save". Stores used by one process
    /// need not lock: the default holds nothing.
    fn lock(&self) -> BoxFuture<'_, Result<StoreLock, Error>> {
        Box::pin(async { Ok(StoreLock::default()) })
    }
}

/// A store in memory: for tests, and for programs that keep tokens elsewhere
/// and seed them with [`MemoryTokenStore::with_token`].
#[derive(Default)]
pub struct MemoryTokenStore {
    token: Mutex<Option<Token>>,
}

impl MemoryTokenStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// A store holding `token`.
    pub fn with_token(token: Token) -> Self {
        Self {
            token: Mutex::new(Some(token)),
        }
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Option<Token>> {
        self.token.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl fmt::Debug for MemoryTokenStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryTokenStore")
            .field("token", &*self.slot())
            .finish()
    }
}

impl TokenStore for MemoryTokenStore {
    fn load(&self) -> BoxFuture<'_, Result<Option<Token>, Error>> {
        let token = self.slot().clone();
        Box::pin(async move { Ok(token) })
    }

    fn save<'a>(&'a self, token: &'a Token) -> BoxFuture<'a, Result<(), Error>> {
        *self.slot() = Some(token.clone());
        Box::pin(async { Ok(()) })
    }
}

/// Longest wait for the lock another process holds on a credentials file.
/// A holder refreshes (one request, at most 30 s by default) and saves;
/// twice that is generous, and a holder past it is hung or stopped.
pub const LOCK_WAIT: Duration = Duration::from_secs(60);

/// First pause between tries for a held lock, doubling up to
/// [`LOCK_POLL_CAP`]: short, since a refresh elsewhere is usually over in
/// milliseconds.
const LOCK_POLL_FIRST: Duration = Duration::from_millis(5);

/// Longest pause between tries: a lock freed is noticed within this.
const LOCK_POLL_CAP: Duration = Duration::from_millis(250);

/// Version of the credentials file format.
const FILE_FORMAT_VERSION: u64 = 1;

/// A JSON file, written atomically and readable only by its owner.
///
/// - Created `0600` and kept `0600` on every rewrite; a directory it creates
///   is `0700`.
/// - Each save writes a temporary file in the same directory, fsyncs it,
///   renames it over the old one and fsyncs the directory, so a crash at any
///   instant leaves the old file or the new one, never a torn one.
/// - Processes sharing the file serialise refreshes through an advisory lock
///   on `<file>.lock` (the data file itself is replaced on every save, so it
///   cannot carry the lock).
/// - A corrupt or unreadable file is an error naming the path, and is never
///   overwritten by [`TokenStore::save`]: remove it to start over.
/// - Fields other than `token` are kept across saves, so a program may store
///   its own data (the CLI keeps who logged in) beside the token.
#[derive(Debug, Clone)]
pub struct FileTokenStore {
    path: PathBuf,
}

impl FileTokenStore {
    /// A store at `path`; nothing is touched until the first load or save.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn error(&self, reason: impl fmt::Display) -> Error {
        Error::store(self.path.display().to_string(), reason.to_string())
    }

    fn io_error(&self, what: impl fmt::Display, e: std::io::Error) -> Error {
        Error::store_io(self.path.display().to_string(), what.to_string(), e)
    }

    /// The whole file as JSON, or `None` if it does not exist.
    pub fn read_document(&self) -> Result<Option<serde_json::Value>, Error> {
        let text = match std::fs::read(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.io_error("cannot read", e)),
        };
        let doc: serde_json::Value = serde_json::from_slice(&text).map_err(|e| {
            self.error(format!(
                "is corrupt (not JSON: line {} column {}); remove it to log in again",
                e.line(),
                e.column()
            ))
        })?;
        match doc.get("version").and_then(serde_json::Value::as_u64) {
            Some(FILE_FORMAT_VERSION) => Ok(Some(doc)),
            other => Err(self.error(format!(
                "has format version {other:?}; this version reads {FILE_FORMAT_VERSION}"
            ))),
        }
    }

    fn token_of(&self, doc: &serde_json::Value) -> Result<Option<Token>, Error> {
        match doc.get("token") {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(value) => {
                let record: TokenRecord = serde_json::from_value(value.clone())
                    .map_err(|_| self.error("is corrupt (the token record has the wrong shape)"))?;
                Ok(Some(Token::from_record(record)))
            }
        }
    }

    /// Reads the token synchronously.
    pub fn load_blocking(&self) -> Result<Option<Token>, Error> {
        match self.read_document()? {
            Some(doc) => self.token_of(&doc),
            None => Ok(None),
        }
    }

    /// Writes `token`, keeping the file's other fields.
    pub fn save_blocking(&self, token: &Token) -> Result<(), Error> {
        let mut doc = self
            .read_document()?
            .unwrap_or_else(|| serde_json::json!({ "version": FILE_FORMAT_VERSION }));
        let record = serde_json::to_value(token.to_record()).map_err(|e| self.error(e))?;
        doc["token"] = record;
        self.write_document(&doc)
    }

    /// Sets a top-level field other than `token` and `version`, e.g. a
    /// program's note of who logged in.
    pub fn set_field(&self, name: &str, value: serde_json::Value) -> Result<(), Error> {
        if name == "token" || name == "version" {
            return Err(self.error(format!("`{name}` is reserved")));
        }
        let mut doc = self
            .read_document()?
            .unwrap_or_else(|| serde_json::json!({ "version": FILE_FORMAT_VERSION }));
        doc[name] = value;
        self.write_document(&doc)
    }

    /// Deletes the file (and its lock file). Missing files are fine.
    pub fn remove(&self) -> Result<bool, Error> {
        let _ = std::fs::remove_file(self.lock_path());
        match std::fs::remove_file(&self.path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(self.io_error("cannot remove", e)),
        }
    }

    fn lock_path(&self) -> PathBuf {
        let mut name = self.path.file_name().unwrap_or_default().to_os_string();
        name.push(".lock");
        self.path.with_file_name(name)
    }

    fn dir(&self) -> PathBuf {
        match self.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }

    fn create_dir(&self) -> Result<PathBuf, Error> {
        let dir = self.dir();
        if !dir.exists() {
            let mut builder = std::fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
            builder
                .create(&dir)
                .map_err(|e| self.io_error(format_args!("cannot create {}", dir.display()), e))?;
        }
        Ok(dir)
    }

    fn write_document(&self, doc: &serde_json::Value) -> Result<(), Error> {
        let dir = self.create_dir()?;
        let bytes = serde_json::to_vec_pretty(doc).map_err(|e| self.error(e))?;
        // tempfile creates the file 0600 with a unique name in `dir`, so the
        // rename below stays within one file system and is atomic.
        let mut tmp = tempfile::Builder::new()
            .prefix(".credentials-")
            .tempfile_in(&dir)
            .map_err(|e| self.io_error("cannot create a temporary file", e))?;
        tmp.write_all(&bytes)
            .and_then(|()| tmp.as_file().sync_all())
            .map_err(|e| self.io_error("cannot write", e))?;
        tmp.persist(&self.path)
            .map_err(|e| self.io_error("cannot replace", e.error))?;
        #[cfg(unix)]
        std::fs::File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| self.io_error(format_args!("cannot sync {}", dir.display()), e))?;
        Ok(())
    }

    fn open_lock_file(&self) -> Result<std::fs::File, Error> {
        self.create_dir()?;
        let mut options = std::fs::OpenOptions::new();
        options.create(true).truncate(false).write(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        options
            .open(self.lock_path())
            .map_err(|e| self.io_error("cannot open the lock file", e))
    }

    /// Takes the lock on `file`, trying again on a doubling pause while
    /// another process holds it, until [`LOCK_WAIT`]. Polling from async
    /// code rather than blocking a thread in the kernel: a caller that gives
    /// up leaves nothing behind, and a hung holder cannot exhaust the
    /// runtime's blocking threads.
    async fn acquire(&self, file: std::fs::File) -> Result<std::fs::File, Error> {
        let deadline = tokio::time::Instant::now() + LOCK_WAIT;
        let mut pause = LOCK_POLL_FIRST;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(file),
                Err(std::fs::TryLockError::WouldBlock) => {}
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(self.io_error("cannot lock", e));
                }
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Err(Error::StoreBusy {
                    path: self.path.display().to_string(),
                    waited: LOCK_WAIT,
                });
            }
            tokio::time::sleep(pause.min(deadline - now)).await;
            pause = (pause * 2).min(LOCK_POLL_CAP);
        }
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(Error::store(
            String::new(),
            format!("the blocking file task failed: {e}"),
        ))
    })
}

impl TokenStore for FileTokenStore {
    fn load(&self) -> BoxFuture<'_, Result<Option<Token>, Error>> {
        let store = self.clone();
        Box::pin(blocking(move || store.load_blocking()))
    }

    fn save<'a>(&'a self, token: &'a Token) -> BoxFuture<'a, Result<(), Error>> {
        let store = self.clone();
        let token = token.clone();
        Box::pin(blocking(move || store.save_blocking(&token)))
    }

    fn lock(&self) -> BoxFuture<'_, Result<StoreLock, Error>> {
        let store = self.clone();
        Box::pin(async move {
            // The lock is released when the file is closed, on drop.
            let file = blocking(move || store.open_lock_file()).await?;
            let file = self.acquire(file).await?;
            Ok(StoreLock::new(file))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AccessToken, GrantedScopes, RefreshToken};

    fn token(n: u32) -> Token {
        Token::new(
            AccessToken::new(format!("access-{n}")),
            Some(RefreshToken::new(format!("refresh-{n}"))),
            None,
            GrantedScopes::default(),
        )
    }

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn round_trip_with_private_permissions_and_kept_fields() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileTokenStore::new(dir.path().join("new/sub/credentials.json"));
        assert!(store.load_blocking().unwrap().is_none());
        store.save_blocking(&token(1)).unwrap();
        store
            .set_field("user", serde_json::json!({"username": "demo"}))
            .unwrap();
        store.save_blocking(&token(2)).unwrap();
        let loaded = store.load_blocking().unwrap().unwrap();
        assert_eq!(loaded.access_token().expose_secret(), "access-2");
        let doc = store.read_document().unwrap().unwrap();
        assert_eq!(doc["user"]["username"], "demo");
        #[cfg(unix)]
        {
            assert_eq!(mode(store.path()), 0o600);
            assert_eq!(mode(&dir.path().join("new/sub")), 0o700);
        }
        assert!(store.remove().unwrap());
        assert!(!store.remove().unwrap());
    }

    #[test]
    fn corrupt_files_are_errors_naming_the_path_and_are_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials.json");
        std::fs::write(&path, b"{ not json").unwrap();
        let store = FileTokenStore::new(&path);
        let err = store.load_blocking().unwrap_err();
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
        assert!(err.to_string().contains("corrupt"), "{err}");
        assert!(store.save_blocking(&token(1)).is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"{ not json");

        std::fs::write(&path, br#"{"version": 1, "token": {"access_token": 5}}"#).unwrap();
        assert!(
            store
                .load_blocking()
                .unwrap_err()
                .to_string()
                .contains("corrupt")
        );
        std::fs::write(&path, br#"{"version": 99}"#).unwrap();
        assert!(
            store
                .load_blocking()
                .unwrap_err()
                .to_string()
                .contains("version")
        );
    }

    #[test]
    fn an_unreadable_file_is_an_error_not_an_absent_one() {
        // A directory where the file should be: reading it fails with
        // something other than "not found".
        let dir = tempfile::tempdir().unwrap();
        let store = FileTokenStore::new(dir.path());
        let err = store.load_blocking().unwrap_err();
        assert!(err.to_string().contains("cannot read"), "{err}");
        assert!(std::error::Error::source(&err).is_some());
        let err = store.remove().unwrap_err();
        assert!(err.to_string().contains("cannot remove"), "{err}");
        assert!(dir.path().exists());
    }

    #[test]
    fn memory_store_debug_hides_the_token() {
        let store = MemoryTokenStore::with_token(token(7));
        assert!(!format!("{store:?}").contains("access-7"));
    }
}
