//! The file store: a credentials file's format, its lock, and its atomic
//! reads and writes.

use std::fmt;
use std::io::{Read, Write};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

#[cfg(unix)]
use super::temp::PRIVATE_MODE;
use super::temp::{LEGACY_TEMP_PREFIX, TempFile, is_private, is_temp_random, starts_a_json_object};
use super::{BoxFuture, StoreLock, StoreTransaction, TokenStore};
use crate::{Error, Token, TokenRecord};

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

/// Largest credentials file read, in bytes. A token record is a few hundred
/// bytes and a program's own fields rarely more; anything near this is not a
/// credentials file, and reading it whole would let it fill memory.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// What a credentials file holds: the token, and a program's own typed
/// fields beside it (`()` for none).
#[derive(Clone)]
pub struct Document<E> {
    /// The token, when logged in.
    pub token: Option<Token>,
    /// The program's own fields.
    pub extra: E,
    /// Top-level fields that neither this crate nor `E` knows (a newer
    /// program's), written back as they were so sharing a file with one
    /// loses nothing.
    unknown: serde_json::Map<String, serde_json::Value>,
}

impl<E> Document<E> {
    /// A document holding `token` and `extra`.
    pub fn new(token: Option<Token>, extra: E) -> Self {
        Self {
            token,
            extra,
            unknown: serde_json::Map::new(),
        }
    }
}

impl<E: fmt::Debug> fmt::Debug for Document<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Unknown fields may hold anything, secrets included: names only.
        let unknown: Vec<&String> = self.unknown.keys().collect();
        f.debug_struct("Document")
            .field("token", &self.token)
            .field("extra", &self.extra)
            .field("unknown", &unknown)
            .finish()
    }
}

/// The fields beside `version` and `token`: `E`'s, and the rest kept
/// verbatim.
#[derive(serde::Deserialize)]
#[serde(bound = "E: DeserializeOwned")]
struct Rest<E> {
    #[serde(flatten)]
    extra: E,
    #[serde(flatten)]
    unknown: serde_json::Map<String, serde_json::Value>,
}

/// A JSON file, written atomically and readable only by its owner, holding
/// a token and a program's own fields of type `E` (`()` for none).
///
/// - Created `0600` and kept `0600` on every rewrite; a directory it creates
///   is `0700`. A file found readable by others is made private when read
///   (see [`tighten_permissions`](Self::tighten_permissions)).
/// - Each change writes a temporary file in the same directory, fsyncs it,
///   renames it over the old one and fsyncs the directory, so a crash at any
///   instant leaves the old file or the new one, never a torn one. The
///   temporary files a crash leaves behind (they may hold a refresh token)
///   are removed under the lock: whenever it is taken, and on a read that
///   finds some while nobody holds it.
/// - Writers serialise through an advisory lock on `<file>.lock` (the data
///   file is replaced on every change, so it cannot carry the lock), waited
///   for at most [`LOCK_WAIT`]. The lock file is opened without following
///   symbolic links, must be a regular file, and is never removed (a process
///   waiting on a removed lock file would hold a lock nobody else sees).
///   [`update`](Self::update) and [`remove`](Self::remove) take the lock
///   themselves; [`save_blocking`](Self::save_blocking) expects its caller
///   to hold it (as [`RefreshingTokenSource`](crate::RefreshingTokenSource)
///   does).
/// - A corrupt, unreadable or foreign file is an error naming the path and
///   what is wrong, and is never overwritten by a save: remove it to start
///   over. So is anything but a regular file at the path (a FIFO there
///   never blocks a read), and a file over [`MAX_FILE_BYTES`]; a document
///   that would be larger is not written.
/// - `E` is stored as top-level fields beside `version` and `token` (so it
///   must serialize as a map, and must not deny unknown fields). A save of
///   the token keeps `E` and any fields nobody here knows.
pub struct FileTokenStore<E = ()> {
    path: PathBuf,
    extra: PhantomData<fn() -> E>,
}

impl<E> Clone for FileTokenStore<E> {
    fn clone(&self) -> Self {
        Self::at(self.path.clone())
    }
}

impl FileTokenStore {
    /// A store at `path` holding a token and no fields of a program's own;
    /// nothing is touched until the first load or save.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self::at(path)
    }
}

impl<E> fmt::Debug for FileTokenStore<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileTokenStore")
            .field("path", &self.path)
            .finish()
    }
}

impl<E> FileTokenStore<E> {
    /// A store at `path` whose documents carry a program's own fields `E`
    /// (`FileTokenStore::<MyFields>::at(path)`); nothing is touched until
    /// the first load or save.
    pub fn at(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            extra: PhantomData,
        }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The same file without its type, for work on the file as such that
    /// moves to a blocking thread.
    fn untyped(&self) -> FileTokenStore<()> {
        FileTokenStore::new(self.path.clone())
    }

    fn error(&self, reason: impl fmt::Display) -> Error {
        Error::store(self.path.display().to_string(), reason.to_string())
    }

    fn io_error(&self, what: impl fmt::Display, e: std::io::Error) -> Error {
        Error::store_io(self.path.display().to_string(), what.to_string(), e)
    }

    /// Makes the file private (`0600`) if others may read or write it, as
    /// ssh insists for its keys. Returns the mode it had when it was
    /// changed, so a program can say so; `None` when the file is missing or
    /// already private.
    pub fn tighten_permissions(&self) -> Result<Option<u32>, Error> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let meta = match std::fs::metadata(&self.path) {
                Ok(meta) => meta,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(self.io_error("cannot read", e)),
            };
            let mode = meta.permissions().mode() & 0o7777;
            if !meta.is_file() || mode & 0o077 == 0 {
                return Ok(None);
            }
            std::fs::set_permissions(&self.path, std::fs::Permissions::from_mode(PRIVATE_MODE))
                .map_err(|e| {
                    self.io_error(
                        format_args!(
                            "is readable by others (mode {mode:04o}) and cannot be made private"
                        ),
                        e,
                    )
                })?;
            tracing::warn!(
                path = %self.path.display(),
                "the credentials file was readable by others (mode {mode:04o}); made it 0600"
            );
            Ok(Some(mode))
        }
        #[cfg(not(unix))]
        Ok(None)
    }

    /// Deletes the file, under the lock, whatever it holds (a corrupt file
    /// too), with any temporary files a crash left. The lock file stays.
    /// Returns whether there was a file.
    pub async fn remove(&self) -> Result<bool, Error> {
        let _lock = self.lock().await?;
        let store = self.untyped();
        blocking(move || store.delete()).await
    }

    fn delete(&self) -> Result<bool, Error> {
        match std::fs::remove_file(&self.path) {
            Ok(()) => {
                self.sync_dir(&self.dir())?;
                Ok(true)
            }
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

    fn sync_dir(&self, dir: &Path) -> Result<(), Error> {
        #[cfg(unix)]
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| self.io_error(format_args!("cannot sync {}", dir.display()), e))?;
        let _ = dir;
        Ok(())
    }

    /// The prefix and suffix of this file's temporary files: its own name,
    /// so stores sharing a directory never touch each other's.
    fn temp_affixes(&self) -> (String, &'static str) {
        let name = self.path.file_name().unwrap_or_default().to_string_lossy();
        (format!(".{name}."), ".tmp")
    }

    /// Temporary files a crash between write and rename left behind:
    /// regular files named as [`write`](Self::write) names them (this
    /// file's name, six random letters or digits, `.tmp`), and earlier
    /// versions' (`.credentials-` and six random letters or digits, a name
    /// other programs may use too) only when they are also private, older
    /// than [`LOCK_WAIT`] (their writers did not take the lock to save) and
    /// hold the start of a JSON document, as those versions wrote.
    fn leftovers(&self) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(self.dir()) else {
            return Vec::new();
        };
        let (prefix, suffix) = self.temp_affixes();
        entries
            .filter_map(Result::ok)
            .filter(|entry| {
                let name = entry.file_name();
                let name = name.to_string_lossy();
                // Not followed: a link is never taken for a leftover.
                let Ok(meta) = entry.metadata() else {
                    return false;
                };
                if !meta.file_type().is_file() {
                    return false;
                }
                let ours = name
                    .strip_prefix(prefix.as_str())
                    .and_then(|rest| rest.strip_suffix(suffix))
                    .is_some_and(is_temp_random);
                let legacy = name
                    .strip_prefix(LEGACY_TEMP_PREFIX)
                    .is_some_and(is_temp_random)
                    && is_private(&meta)
                    && meta
                        .modified()
                        .ok()
                        .and_then(|at| at.elapsed().ok())
                        .is_some_and(|age| age > LOCK_WAIT)
                    && starts_a_json_object(&entry.path());
                ours || legacy
            })
            .map(|entry| entry.path())
            .collect()
    }

    /// Removes [`leftovers`](Self::leftovers). Call with the lock held: a
    /// live writer's temporary file exists only while it holds the lock.
    fn remove_leftovers(&self) {
        for path in self.leftovers() {
            match std::fs::remove_file(&path) {
                Ok(()) => tracing::info!(
                    path = %path.display(),
                    "removed a temporary credentials file an interrupted save left"
                ),
                Err(e) => {
                    tracing::warn!(path = %path.display(), "cannot remove a leftover temporary file: {e}")
                }
            }
        }
    }

    /// On a read: removes leftovers if there are any and nobody holds the
    /// lock (then nobody is writing one). Never waits.
    fn remove_leftovers_if_unlocked(&self) {
        if self.leftovers().is_empty() {
            return;
        }
        if let Ok(file) = self.open_lock_file()
            && file.try_lock().is_ok()
        {
            self.remove_leftovers();
        }
    }

    fn open_lock_file(&self) -> Result<std::fs::File, Error> {
        self.create_dir()?;
        let path = self.lock_path();
        let mut options = std::fs::OpenOptions::new();
        options.create(true).truncate(false).write(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(PRIVATE_MODE);
            // A link planted at the lock's name must not make this process
            // create or open its target; a FIFO there must not block the
            // open.
            options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
        }
        let file = options.open(&path).map_err(|e| {
            #[cfg(unix)]
            if e.raw_os_error() == Some(libc::ELOOP) {
                return self.error(format_args!(
                    "its lock file {} is a symbolic link; refusing to follow it (remove the link)",
                    path.display()
                ));
            }
            self.io_error(
                format_args!("cannot open the lock file {}", path.display()),
                e,
            )
        })?;
        let is_file = file
            .metadata()
            .map_err(|e| {
                self.io_error(
                    format_args!("cannot inspect the lock file {}", path.display()),
                    e,
                )
            })?
            .is_file();
        if !is_file {
            return Err(self.error(format_args!(
                "its lock file {} is not a regular file; refusing to use it (remove it)",
                path.display()
            )));
        }
        Ok(file)
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

    /// Takes the file's lock (waiting at most [`LOCK_WAIT`]), as every
    /// writer of the file does, and removes what interrupted saves left.
    pub async fn lock(&self) -> Result<StoreLock, Error> {
        let store = self.untyped();
        // The lock is released when the file is closed, on drop.
        let file = blocking(move || store.open_lock_file()).await?;
        let file = self.acquire(file).await?;
        let store = self.untyped();
        blocking(move || {
            store.remove_leftovers();
            Ok(())
        })
        .await?;
        Ok(StoreLock::new(file))
    }
}

impl<E: Serialize + DeserializeOwned> FileTokenStore<E> {
    /// The whole file, or `None` if it does not exist. Needs no lock: every
    /// change replaces the file whole, so a read sees one change or the
    /// next.
    pub fn read(&self) -> Result<Option<Document<E>>, Error> {
        self.remove_leftovers_if_unlocked();
        self.read_unlocked()
    }

    fn read_unlocked(&self) -> Result<Option<Document<E>>, Error> {
        let mut options = std::fs::OpenOptions::new();
        options.read(true);
        // A FIFO at the path must not block the open until some process
        // writes to it (with the lock held, in `update`); a regular file
        // reads the same either way.
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
        let file = match options.open(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.io_error("cannot read", e)),
        };
        let meta = file
            .metadata()
            .map_err(|e| self.io_error("cannot read", e))?;
        if meta.is_dir() {
            return Err(self.io_error(
                "cannot read",
                std::io::Error::from(std::io::ErrorKind::IsADirectory),
            ));
        }
        if !meta.is_file() {
            return Err(self.error(
                "is not a regular file (a FIFO, a socket or a device); refusing to read it \
                 (remove it to log in again)",
            ));
        }
        self.tighten_permissions()?;
        let mut text = Vec::new();
        file.take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut text)
            .map_err(|e| self.io_error("cannot read", e))?;
        if text.len() as u64 > MAX_FILE_BYTES {
            return Err(self.error(format_args!(
                "is over {MAX_FILE_BYTES} bytes, too large to be a credentials file"
            )));
        }
        self.parse(&text).map(Some)
    }

    fn parse(&self, text: &[u8]) -> Result<Document<E>, Error> {
        let doc: serde_json::Value = serde_json::from_slice(text).map_err(|e| {
            self.error(format!(
                "is corrupt (not JSON: line {} column {}); remove it to log in again",
                e.line(),
                e.column()
            ))
        })?;
        let serde_json::Value::Object(mut fields) = doc else {
            return Err(self.error(
                "is not a medium-oauth credentials file (it is JSON, but not an object); \
                 remove it to log in again",
            ));
        };
        match fields.remove("version") {
            Some(v) if v.as_u64() == Some(FILE_FORMAT_VERSION) => {}
            Some(v) if v.as_u64().is_some() => {
                return Err(self.error(format_args!(
                    "is in format version {v}, which this version cannot read (it reads \
                     {FILE_FORMAT_VERSION}); use the program that wrote it, or remove it to \
                     log in again"
                )));
            }
            _ => {
                return Err(self.error(
                    "is not a medium-oauth credentials file (it has no format version); \
                     remove it to log in again",
                ));
            }
        }
        let token = match fields.remove("token") {
            None | Some(serde_json::Value::Null) => None,
            Some(value) => {
                // serde's message could quote a secret: say which part only.
                let record: TokenRecord = serde_json::from_value(value)
                    .map_err(|_| self.error("is corrupt (the token record has the wrong shape)"))?;
                Some(Token::from_record(record))
            }
        };
        let rest: Rest<E> = serde_json::from_value(serde_json::Value::Object(fields))
            .map_err(|_| self.error("is corrupt (a field beside the token has the wrong shape)"))?;
        Ok(Document {
            token,
            extra: rest.extra,
            unknown: rest.unknown,
        })
    }

    fn render(&self, doc: &Document<E>) -> Result<Vec<u8>, Error> {
        let mut fields = serde_json::Map::new();
        fields.insert("version".into(), FILE_FORMAT_VERSION.into());
        if let Some(token) = &doc.token {
            let record = serde_json::to_value(token.to_record()).map_err(|e| self.error(e))?;
            fields.insert("token".into(), record);
        }
        match serde_json::to_value(&doc.extra).map_err(|e| self.error(e))? {
            serde_json::Value::Object(extra) => {
                for (name, value) in extra {
                    if name == "version" || name == "token" {
                        return Err(self.error(format_args!("`{name}` is reserved")));
                    }
                    fields.insert(name, value);
                }
            }
            serde_json::Value::Null => {}
            _ => return Err(self.error("its extra fields must serialize as a map")),
        }
        for (name, value) in &doc.unknown {
            fields.entry(name.clone()).or_insert_with(|| value.clone());
        }
        serde_json::to_vec_pretty(&fields).map_err(|e| self.error(e))
    }

    /// Replaces the file with `doc` in one atomic write. Call with the lock
    /// held when other processes may write.
    fn write(&self, doc: &Document<E>) -> Result<(), Error> {
        let bytes = self.render(doc)?;
        // Never write what the next read would refuse: the old file stays.
        if bytes.len() as u64 > MAX_FILE_BYTES {
            return Err(self.error(format_args!(
                "not written: the new contents are {} bytes, too large for a credentials \
                 file (at most {MAX_FILE_BYTES})",
                bytes.len()
            )));
        }
        let dir = self.create_dir()?;
        let (prefix, suffix) = self.temp_affixes();
        // A new 0600 file in `dir`, so the rename below stays within one
        // file system and is atomic.
        let (tmp, mut file) = TempFile::create(&dir, &prefix, suffix)
            .map_err(|e| self.io_error("cannot create a temporary file", e))?;
        file.write_all(&bytes)
            .and_then(|()| file.sync_all())
            .map_err(|e| self.io_error("cannot write", e))?;
        drop(file);
        tmp.persist(&self.path)
            .map_err(|e| self.io_error("cannot replace", e))?;
        self.sync_dir(&dir)
    }

    /// Reads the token synchronously.
    pub fn load_blocking(&self) -> Result<Option<Token>, Error> {
        Ok(self.read()?.and_then(|doc| doc.token))
    }
}

impl<E: Serialize + DeserializeOwned + Default> FileTokenStore<E> {
    /// Writes `token`, keeping the file's other fields. Call with the lock
    /// held (see [`lock`](Self::lock)) when other processes may write.
    pub fn save_blocking(&self, token: &Token) -> Result<(), Error> {
        let mut doc = self
            .read_unlocked()?
            .unwrap_or_else(|| Document::new(None, E::default()));
        doc.token = Some(token.clone());
        self.write(&doc)
    }
}

impl<E: Serialize + DeserializeOwned + Send + 'static> FileTokenStore<E> {
    /// Reads the file, lets `change` edit it (`None`: no file), and writes
    /// the result in one atomic write (or removes the file when `change`
    /// leaves `None`), all under the lock, so no other writer's change
    /// falls between the read and the write. Fails without calling `change`
    /// when the file cannot be read.
    pub async fn update<T: Send + 'static>(
        &self,
        change: impl FnOnce(&mut Option<Document<E>>) -> T + Send + 'static,
    ) -> Result<T, Error> {
        let _lock = self.lock().await?;
        let store = self.clone();
        blocking(move || {
            let mut doc = store.read_unlocked()?;
            let result = change(&mut doc);
            match &doc {
                Some(doc) => store.write(doc)?,
                // Removing a file that was never there is no change.
                None => {
                    store.delete()?;
                }
            }
            Ok(result)
        })
        .await
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

impl<E> TokenStore for FileTokenStore<E>
where
    E: Serialize + DeserializeOwned + Default + Send + Sync + 'static,
{
    fn load(&self) -> BoxFuture<'_, Result<Option<Token>, Error>> {
        let store = self.clone();
        Box::pin(blocking(move || store.load_blocking()))
    }

    fn begin(&self) -> BoxFuture<'_, Result<Box<dyn StoreTransaction>, Error>> {
        Box::pin(async move {
            let lock = self.lock().await?;
            let store = self.clone();
            let stored = blocking(move || store.load_blocking()).await?;
            Ok(Box::new(FileTransaction {
                store: self.clone(),
                stored,
                _lock: lock,
            }) as Box<dyn StoreTransaction>)
        })
    }
}

/// A credentials file's transaction: its lock, and the token read under it.
struct FileTransaction<E> {
    store: FileTokenStore<E>,
    stored: Option<Token>,
    _lock: StoreLock,
}

impl<E> StoreTransaction for FileTransaction<E>
where
    E: Serialize + DeserializeOwned + Default + Send + Sync + 'static,
{
    fn stored(&self) -> Option<&Token> {
        self.stored.as_ref()
    }

    fn commit<'a>(&'a mut self, token: &'a Token) -> BoxFuture<'a, Result<(), Error>> {
        let store = self.store.clone();
        let token = token.clone();
        Box::pin(blocking(move || store.save_blocking(&token)))
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

    /// A program's own fields, as the CLI keeps who logged in.
    #[derive(Debug, Default, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Extra {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user: Option<String>,
    }

    #[tokio::test]
    async fn round_trip_with_private_permissions_and_kept_fields() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileTokenStore::<Extra>::at(dir.path().join("new/sub/credentials.json"));
        assert!(store.load_blocking().unwrap().is_none());
        store.save_blocking(&token(1)).unwrap();
        store
            .update(|doc| {
                doc.as_mut().unwrap().extra.user = Some("demo".into());
            })
            .await
            .unwrap();
        store.save_blocking(&token(2)).unwrap();
        let doc = store.read().unwrap().unwrap();
        assert_eq!(
            doc.token.unwrap().access_token().expose_secret(),
            "access-2"
        );
        assert_eq!(doc.extra.user.as_deref(), Some("demo"), "kept across saves");
        // A store that knows nothing of `Extra` keeps its fields too.
        FileTokenStore::new(store.path())
            .save_blocking(&token(3))
            .unwrap();
        let doc = store.read().unwrap().unwrap();
        assert_eq!(doc.extra.user.as_deref(), Some("demo"));
        #[cfg(unix)]
        {
            assert_eq!(mode(store.path()), 0o600);
            assert_eq!(mode(&dir.path().join("new/sub")), 0o700);
        }
        assert!(store.remove().await.unwrap());
        assert!(!store.remove().await.unwrap());
    }

    #[tokio::test]
    async fn fields_nobody_here_knows_are_kept_and_never_debug_printed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials.json");
        std::fs::write(
            &path,
            br#"{"version":1,"newer":{"secret":"sh0rt-secret"},"user":"demo"}"#,
        )
        .unwrap();
        let store = FileTokenStore::<Extra>::at(&path);
        let doc = store.read().unwrap().unwrap();
        let debug = format!("{doc:?}");
        assert!(debug.contains("newer"), "{debug}");
        assert!(!debug.contains("sh0rt"), "{debug}");
        store.update(|_| ()).await.unwrap();
        let written: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(written["newer"]["secret"], "sh0rt-secret");
        assert_eq!(written["user"], "demo");
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
    }

    /// Regression: `{}` gave "has format version None", Rust's Debug
    /// output.
    #[test]
    fn foreign_and_future_files_get_a_message_for_people() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials.json");
        let store = FileTokenStore::new(&path);
        for (text, says) in [
            (
                &b"{}"[..],
                "not a medium-oauth credentials file (it has no format version)",
            ),
            (b"{\"version\": \"1\"}", "it has no format version"),
            (
                b"[1, 2]",
                "not a medium-oauth credentials file (it is JSON, but not an object)",
            ),
            (
                b"{\"version\": 99}",
                "format version 99, which this version cannot read",
            ),
        ] {
            std::fs::write(&path, text).unwrap();
            let err = store.load_blocking().unwrap_err().to_string();
            assert!(err.contains(says), "{err}");
            assert!(!err.contains("None") && !err.contains("Some("), "{err}");
            assert!(err.contains(&path.display().to_string()), "{err}");
        }
    }

    #[test]
    fn an_oversized_file_is_refused_unread() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials.json");
        let file = std::fs::File::create(&path).unwrap();
        file.set_len(MAX_FILE_BYTES * 4).unwrap();
        let err = FileTokenStore::new(&path).load_blocking().unwrap_err();
        assert!(err.to_string().contains("too large"), "{err}");
    }

    #[tokio::test]
    async fn an_unreadable_file_is_an_error_not_an_absent_one() {
        // A directory where the file should be: reading it fails with
        // something other than "not found".
        let dir = tempfile::tempdir().unwrap();
        let store = FileTokenStore::new(dir.path());
        let err = store.load_blocking().unwrap_err();
        assert!(err.to_string().contains("cannot read"), "{err}");
        assert!(std::error::Error::source(&err).is_some());
        let err = store.remove().await.unwrap_err();
        assert!(err.to_string().contains("cannot remove"), "{err}");
        assert!(dir.path().exists());
    }

    #[cfg(unix)]
    #[test]
    fn a_file_readable_by_others_is_made_private_on_read() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let store = FileTokenStore::new(dir.path().join("credentials.json"));
        store.save_blocking(&token(1)).unwrap();
        std::fs::set_permissions(store.path(), std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(store.tighten_permissions().unwrap(), Some(0o644));
        assert_eq!(mode(store.path()), 0o600);
        assert_eq!(
            store.tighten_permissions().unwrap(),
            None,
            "already private"
        );
        std::fs::set_permissions(store.path(), std::fs::Permissions::from_mode(0o660)).unwrap();
        store.load_blocking().unwrap().unwrap();
        assert_eq!(mode(store.path()), 0o600, "a plain read tightens too");
    }

    /// Regression: the lock file was opened through a symbolic link, so a
    /// link planted at its name made a locked operation create the link's
    /// target.
    #[cfg(unix)]
    #[tokio::test]
    async fn a_symbolic_link_or_fifo_at_the_lock_file_is_refused_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileTokenStore::new(dir.path().join("credentials.json"));
        store.save_blocking(&token(1)).unwrap();
        let target = dir.path().join("planted-target");
        std::os::unix::fs::symlink(&target, dir.path().join("credentials.json.lock")).unwrap();
        let err = store.lock().await.unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");
        assert!(err.contains("credentials.json.lock"), "{err}");
        assert!(!target.exists(), "the link's target was created");
        assert!(store.remove().await.is_err());
        assert!(store.path().exists(), "nothing removed without the lock");

        std::fs::remove_file(dir.path().join("credentials.json.lock")).unwrap();
        let fifo = std::ffi::CString::new(
            dir.path()
                .join("credentials.json.lock")
                .as_os_str()
                .as_encoded_bytes(),
        )
        .unwrap();
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        let err = store.lock().await.unwrap_err().to_string();
        assert!(
            err.contains("not a regular file") || err.contains("cannot open the lock file"),
            "{err}"
        );
    }

    /// The lock held elsewhere: `remove` waits for it, then gives up after
    /// [`LOCK_WAIT`] with an error naming the file.
    #[tokio::test(start_paused = true)]
    async fn remove_waits_for_the_lock_and_gives_up_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileTokenStore::new(dir.path().join("credentials.json"));
        store.save_blocking(&token(1)).unwrap();
        let held = store.lock().await.unwrap();
        let started = tokio::time::Instant::now();
        let err = store.remove().await.unwrap_err();
        assert!(matches!(err, Error::StoreBusy { .. }), "{err}");
        assert!(started.elapsed() >= LOCK_WAIT);
        assert!(
            err.to_string()
                .contains(&store.path().display().to_string())
        );
        assert!(store.path().exists(), "kept while another holds the lock");
        drop(held);
        assert!(store.remove().await.unwrap());
    }

    /// Regression: `remove` unlinked the lock file, so a process holding
    /// the lock and one arriving later locked two different files.
    #[tokio::test]
    async fn remove_keeps_the_lock_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileTokenStore::new(dir.path().join("credentials.json"));
        store.save_blocking(&token(1)).unwrap();
        assert!(store.remove().await.unwrap());
        assert!(dir.path().join("credentials.json.lock").exists());
        assert!(!store.path().exists());
    }

    fn names_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// Regression: a crash between write and rename left a temporary file
    /// holding the refresh token for good.
    #[tokio::test]
    async fn leftovers_of_interrupted_saves_are_removed_under_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileTokenStore::new(dir.path().join("credentials.json"));
        store.save_blocking(&token(1)).unwrap();
        let ours = dir.path().join(".credentials.json.a1B2c3.tmp");
        let others = dir.path().join(".other.json.a1B2c3.tmp");
        let unrelated = dir.path().join(".credentials.json.notes");
        let fresh_legacy = dir.path().join(".credentials-Xy12Zq");
        for path in [&ours, &others, &unrelated, &fresh_legacy] {
            std::fs::write(path, b"{\"refresh_token\":\"refresh-0\"}").unwrap();
        }
        // Earlier versions' temporary files were private, as tempfile makes
        // them.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&fresh_legacy, std::fs::Permissions::from_mode(0o600))
                .unwrap();
        }
        // While the lock is held elsewhere, a read leaves them: they may be
        // a live writer's.
        let held = store.lock().await.unwrap();
        std::fs::write(&ours, b"a live writer's").unwrap();
        store.load_blocking().unwrap();
        assert!(ours.exists());
        drop(held);
        // The next read finds the lock free and removes ours alone.
        store.load_blocking().unwrap();
        assert_eq!(
            names_in(dir.path()),
            [
                ".credentials-Xy12Zq",
                ".credentials.json.notes",
                ".other.json.a1B2c3.tmp",
                "credentials.json",
                "credentials.json.lock",
            ],
            "a legacy leftover younger than LOCK_WAIT may be a live writer's"
        );
        // An old legacy one goes when the lock is next taken, as does ours.
        let old = std::time::SystemTime::now() - LOCK_WAIT - Duration::from_secs(1);
        std::fs::File::options()
            .write(true)
            .open(&fresh_legacy)
            .unwrap()
            .set_modified(old)
            .unwrap();
        std::fs::write(&ours, b"{}").unwrap();
        drop(store.lock().await.unwrap());
        assert!(!ours.exists() && !fresh_legacy.exists());
        // And on logout.
        std::fs::write(&ours, b"{}").unwrap();
        assert!(store.remove().await.unwrap());
        assert!(!ours.exists());
        assert!(others.exists() && unrelated.exists());
    }

    #[tokio::test]
    async fn update_writes_the_whole_document_once_or_removes_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileTokenStore::<Extra>::at(dir.path().join("credentials.json"));
        let existed = store
            .update(|doc| {
                let existed = doc.is_some();
                *doc = Some(Document::new(
                    Some(token(1)),
                    Extra {
                        user: Some("demo".into()),
                    },
                ));
                existed
            })
            .await
            .unwrap();
        assert!(!existed);
        let doc = store.read().unwrap().unwrap();
        assert_eq!(doc.extra.user.as_deref(), Some("demo"));
        assert!(store.update(|doc| doc.take().is_some()).await.unwrap());
        assert!(!store.path().exists());
        // A corrupt file is never handed to the change, nor replaced.
        std::fs::write(store.path(), b"{ torn").unwrap();
        assert!(store.update(|_| unreachable!()).await.is_err());
        assert_eq!(std::fs::read(store.path()).unwrap(), b"{ torn");
    }

    /// Runs `f` on a thread and returns its result, or panics if it has not
    /// finished by `deadline`: a hang becomes a failure, not a stuck suite.
    fn within<T: Send + 'static>(deadline: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        rx.recv_timeout(deadline)
            .expect("still blocked at the deadline: the store hung")
    }

    /// Regression: a FIFO at the credentials path blocked every read (and
    /// `update`, with the lock held) until some process opened it for
    /// writing.
    #[cfg(unix)]
    #[tokio::test]
    async fn a_fifo_at_the_credentials_path_is_an_error_not_a_hang() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials.json");
        let fifo = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        let store = FileTokenStore::new(&path);
        let reader = store.clone();
        let err = within(Duration::from_secs(20), move || reader.load_blocking())
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a regular file"), "{err}");
        assert!(err.contains(&path.display().to_string()), "{err}");
        let saver = store.clone();
        let err = within(Duration::from_secs(20), move || {
            saver.save_blocking(&token(1))
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("not a regular file"), "{err}");
        let meta = std::fs::symlink_metadata(&path).unwrap();
        use std::os::unix::fs::FileTypeExt;
        assert!(meta.file_type().is_fifo(), "the FIFO was replaced");
        // update takes the lock, and must give it back.
        let updater = store.clone();
        let runtime = tokio::runtime::Handle::current();
        let result = tokio::task::spawn_blocking(move || {
            within(Duration::from_secs(20), move || {
                runtime.block_on(updater.update(|_| ()))
            })
        })
        .await
        .unwrap();
        assert!(result.is_err());
        drop(store.lock().await.unwrap());
    }

    /// Regression: a document larger than [`MAX_FILE_BYTES`] (a program's
    /// own fields holding whatever a server said) was written, and every
    /// later read refused the file as too large.
    #[tokio::test]
    async fn a_document_too_large_to_read_back_is_not_written() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileTokenStore::<Extra>::at(dir.path().join("credentials.json"));
        store.save_blocking(&token(1)).unwrap();
        let before = std::fs::read(store.path()).unwrap();
        let huge = "x".repeat(MAX_FILE_BYTES as usize);
        let err = store
            .update(move |doc| doc.as_mut().unwrap().extra.user = Some(huge))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("too large"), "{err}");
        assert_eq!(std::fs::read(store.path()).unwrap(), before, "kept whole");
        assert!(store.read().unwrap().is_some(), "still readable");
        // Just under the limit is written and read back.
        let fits = "x".repeat(MAX_FILE_BYTES as usize - 1024);
        store
            .update(move |doc| doc.as_mut().unwrap().extra.user = Some(fits))
            .await
            .unwrap();
        assert!(store.read().unwrap().unwrap().extra.user.is_some());
    }

    /// A credentials file is at most a mebibyte: a program's own fields of
    /// nearly that size are kept and read back, one byte more is refused.
    #[tokio::test]
    async fn a_document_of_nearly_a_mebibyte_is_kept_and_read_back() {
        const MEBIBYTE: usize = 1 << 20;
        let dir = tempfile::tempdir().unwrap();
        let store = FileTokenStore::<Extra>::at(dir.path().join("credentials.json"));
        store.save_blocking(&token(1)).unwrap();
        let fits = "x".repeat(MEBIBYTE - 1024);
        store
            .update(move |doc| doc.as_mut().unwrap().extra.user = Some(fits))
            .await
            .unwrap();
        assert_eq!(
            store.read().unwrap().unwrap().extra.user.map(|u| u.len()),
            Some(MEBIBYTE - 1024)
        );
        // Padded with blanks, as an editor might leave it: exactly a
        // mebibyte is read, one byte more is not.
        let mut padded = std::fs::read(store.path()).unwrap();
        padded.resize(MEBIBYTE, b' ');
        std::fs::write(store.path(), &padded).unwrap();
        assert!(store.read().unwrap().unwrap().extra.user.is_some());
        padded.push(b' ');
        std::fs::write(store.path(), padded).unwrap();
        let err = store.read().unwrap_err().to_string();
        assert!(err.contains("too large"), "{err}");
    }

    /// `version` and `token` are the file's own: a program's fields of
    /// those names are refused, not written over them.
    #[tokio::test]
    async fn a_programs_fields_named_version_or_token_are_refused() {
        type Fields = serde_json::Map<String, serde_json::Value>;
        let dir = tempfile::tempdir().unwrap();
        let store = FileTokenStore::<Fields>::at(dir.path().join("credentials.json"));
        store.save_blocking(&token(1)).unwrap();
        let before = std::fs::read(store.path()).unwrap();
        for name in ["version", "token"] {
            let err = store
                .update(move |doc| {
                    doc.as_mut().unwrap().extra.insert(name.into(), 2.into());
                })
                .await
                .unwrap_err()
                .to_string();
            assert!(err.contains(&format!("`{name}` is reserved")), "{err}");
            assert_eq!(std::fs::read(store.path()).unwrap(), before, "kept whole");
        }
    }

    /// A document of exactly the largest size read back is written; one
    /// byte more is not.
    #[tokio::test]
    async fn a_document_of_exactly_the_largest_readable_size_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileTokenStore::<Extra>::at(dir.path().join("credentials.json"));
        let doc = |user: String| Document::new(Some(token(1)), Extra { user: Some(user) });
        let overhead = store.render(&doc(String::new())).unwrap().len();
        let room = MAX_FILE_BYTES as usize - overhead;
        store
            .update(move |d| *d = Some(doc("x".repeat(room))))
            .await
            .unwrap();
        assert_eq!(
            std::fs::metadata(store.path()).unwrap().len(),
            MAX_FILE_BYTES
        );
        assert!(store.read().unwrap().is_some());
        let err = store
            .update(move |d| *d = Some(doc("x".repeat(room + 1))))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("too large"), "{err}");
    }

    /// Only a missing file reads as "not logged in": a path that cannot be
    /// looked at (here, under a regular file) is an error naming it.
    #[test]
    fn a_path_that_cannot_be_read_is_an_error_not_an_absent_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("file"), b"").unwrap();
        let store = FileTokenStore::new(dir.path().join("file").join("credentials.json"));
        let err = store.read().unwrap_err().to_string();
        assert!(err.contains("credentials.json"), "{err}");
        let missing = FileTokenStore::new(dir.path().join("credentials.json"));
        assert!(missing.read().unwrap().is_none());
    }

    /// An earlier version's leftover is private: an old file of that name
    /// and shape that others may read is not this crate's, and stays.
    #[cfg(unix)]
    #[tokio::test]
    async fn a_legacy_named_file_others_may_read_is_not_taken_for_a_leftover() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let store = FileTokenStore::new(dir.path().join("credentials.json"));
        let shared = dir.path().join(".credentials-Ab12Cd");
        let private = dir.path().join(".credentials-Ef34Gh");
        for (path, mode) in [(&shared, 0o644), (&private, 0o600)] {
            std::fs::write(path, b"{}").unwrap();
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
            age(path, LOCK_WAIT + Duration::from_secs(1));
        }
        drop(store.lock().await.unwrap());
        assert!(shared.exists(), "readable by others: not ours");
        assert!(!private.exists(), "private, old and JSON: a leftover");
    }

    /// A missing file needs no tightening; a path that cannot be looked at
    /// is an error naming it, not taken for a missing file.
    #[cfg(unix)]
    #[test]
    fn tightening_a_missing_file_changes_nothing_and_an_unreadable_path_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = FileTokenStore::new(dir.path().join("credentials.json"));
        assert_eq!(missing.tighten_permissions().unwrap(), None);
        std::fs::write(dir.path().join("file"), b"").unwrap();
        let under_a_file = FileTokenStore::new(dir.path().join("file").join("credentials.json"));
        let err = under_a_file.tighten_permissions().unwrap_err().to_string();
        assert!(err.contains("credentials.json"), "{err}");
    }

    /// A bare file name lives in the working directory: its directory (to
    /// sync, and to look for leftovers in) is `.`, not an empty path.
    #[test]
    fn a_bare_file_name_lives_in_the_working_directory() {
        assert_eq!(
            FileTokenStore::new("credentials.json").dir(),
            Path::new(".")
        );
        assert_eq!(
            FileTokenStore::new("config/credentials.json").dir(),
            Path::new("config")
        );
    }

    fn age(path: &Path, by: Duration) {
        std::fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(std::time::SystemTime::now() - by)
            .unwrap();
    }

    /// Regression: every `.credentials-` name with six more characters in
    /// the store's directory was taken for an earlier version's leftover, so
    /// a store in a shared directory deleted another program's
    /// `.credentials-backup`; and any `.NAME.*.tmp` was taken for ours.
    #[cfg(unix)]
    #[tokio::test]
    async fn only_files_shaped_like_interrupted_saves_are_cleaned_up() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let store = FileTokenStore::new(dir.path().join("credentials.json"));
        store.save_blocking(&token(1)).unwrap();
        let document = std::fs::read(store.path()).unwrap();
        let old = LOCK_WAIT + Duration::from_secs(1);
        let private = |path: &Path, bytes: &[u8]| {
            std::fs::write(path, bytes).unwrap();
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
            age(path, old);
        };
        // Kept: another program's files.
        let backup = dir.path().join(".credentials-backup");
        private(&backup, b"user=me\npassword=hunter2\n");
        let notes = dir.path().join(".credentials.json.notes.tmp");
        private(&notes, b"my notes");
        let named = dir.path().join(".credentials.json.my-old.tmp");
        private(&named, &document);
        // Removed: an earlier version's leftover (a document, whole or cut
        // short), and ours.
        let legacy = dir.path().join(".credentials-a1B2c3");
        private(&legacy, &document);
        let torn = dir.path().join(".credentials-Zz9Yy8");
        private(&torn, &document[..document.len() / 2]);
        let ours = dir.path().join(".credentials.json.Q7w8E9.tmp");
        private(&ours, &document[..10]);
        drop(store.lock().await.unwrap());
        for kept in [&backup, &notes, &named] {
            assert!(kept.exists(), "{} was deleted", kept.display());
        }
        for gone in [&legacy, &torn, &ours] {
            assert!(!gone.exists(), "{} was left", gone.display());
        }
    }
}
