//! Private temporary files: their names, their creation readable by their
//! owner alone, and how a leftover of an interrupted save is recognised.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::MAX_FILE_BYTES;

/// Temporary files of earlier versions, all named `.credentials-` and six
/// random characters whatever the file's name.
pub(super) const LEGACY_TEMP_PREFIX: &str = ".credentials-";

/// Random characters in a temporary file's name: six letters or digits, the
/// shape earlier versions' files (made by the tempfile crate) have too.
const TEMP_RANDOM_LEN: usize = 6;

/// The random part of a temporary file's name: six ASCII letters or digits.
pub(super) fn is_temp_random(text: &str) -> bool {
    text.len() == TEMP_RANDOM_LEN && text.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Readable and writable by its owner alone: credentials, their lock and
/// the temporary files a save writes.
#[cfg(unix)]
pub(super) const PRIVATE_MODE: u32 = 0o600;

/// Readable and writable by its owner alone, as this version's temporary
/// files are and earlier versions' (made by tempfile) were.
pub(super) fn is_private(meta: &std::fs::Metadata) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.permissions().mode() & 0o077 == 0
    }
    // Without Unix permission bits a file has no such mode to check.
    #[cfg(not(unix))]
    {
        let _ = meta;
        true
    }
}

/// Whether the file, at most [`MAX_FILE_BYTES`], starts with `{`: every
/// document this crate ever wrote does, whole or cut short by a crash.
pub(super) fn starts_a_json_object(path: &Path) -> bool {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    // Checked as a regular file already; swapped since for a link or a
    // FIFO, it is neither followed nor waited on.
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(
        &mut options,
        libc::O_NOFOLLOW | libc::O_NONBLOCK,
    );
    let Ok(file) = options.open(path) else {
        return false;
    };
    if file
        .metadata()
        .map_or(true, |m| !m.is_file() || m.len() > MAX_FILE_BYTES)
    {
        return false;
    }
    let mut start = Vec::new();
    // A leftover is private and small; 64 bytes show its first one.
    if file.take(64).read_to_end(&mut start).is_err() {
        return false;
    }
    start.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}

/// A temporary file being written beside the credentials file: removed when
/// dropped, unless [`persist`](Self::persist) renamed it over the file.
///
/// Written here rather than taken from the tempfile crate, which would add
/// rustix to every user's build for these few lines.
pub(super) struct TempFile {
    path: PathBuf,
    persisted: bool,
}

impl TempFile {
    /// Names tried before giving up. Each is one of 62^6 (about 2^35): a
    /// clash on every try means someone is planting files, not bad luck.
    const ATTEMPTS: usize = 8;

    /// Creates `dir/{prefix}{six random letters or digits}{suffix}`, always
    /// a new file (never an existing file or a link's target), readable and
    /// writable by its owner only.
    pub(super) fn create(
        dir: &Path,
        prefix: &str,
        suffix: &str,
    ) -> std::io::Result<(Self, std::fs::File)> {
        Self::create_named(dir, prefix, suffix, random_part)
    }

    /// [`create`](Self::create), with the random parts of the names tried
    /// drawn from `random`.
    fn create_named(
        dir: &Path,
        prefix: &str,
        suffix: &str,
        mut random: impl FnMut() -> std::io::Result<String>,
    ) -> std::io::Result<(Self, std::fs::File)> {
        for _ in 0..Self::ATTEMPTS {
            let path = dir.join(format!("{prefix}{}{suffix}", random()?));
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, PRIVATE_MODE);
            match options.open(&path) {
                Ok(file) => {
                    let tmp = Self {
                        path,
                        persisted: false,
                    };
                    return Ok((tmp, file));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        }
        Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!(
                "{} random names were all taken already (is something planting files there?)",
                Self::ATTEMPTS
            ),
        ))
    }

    /// Renames the file to `path`, replacing what is there.
    pub(super) fn persist(mut self, path: &Path) -> std::io::Result<()> {
        std::fs::rename(&self.path, path)?;
        self.persisted = true;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.persisted {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The random part of a temporary file's name: six letters or digits from
/// getrandom, each of the 62 equally likely.
fn random_part() -> std::io::Result<String> {
    let mut part = String::with_capacity(TEMP_RANDOM_LEN);
    while part.len() < TEMP_RANDOM_LEN {
        let mut bytes = [0u8; TEMP_RANDOM_LEN];
        getrandom::getrandom(&mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
        let wanted = TEMP_RANDOM_LEN - part.len();
        part.extend(bytes.into_iter().filter_map(alphanumeric).take(wanted));
    }
    Ok(part)
}

/// The letter or digit a random byte stands for, or `None` for the eight
/// highest bytes: `byte % 62` would map those onto `A` to `H` a fifth time
/// and make these eight likelier than the other letters and digits.
fn alphanumeric(byte: u8) -> Option<char> {
    const ALPHABET: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let byte = usize::from(byte);
    // 248 = 4 * 62: each character four times.
    (byte < 4 * ALPHABET.len()).then(|| char::from(ALPHABET[byte % ALPHABET.len()]))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_temporary_file_is_new_private_shaped_and_gone_unless_persisted() {
        let dir = tempfile::tempdir().unwrap();
        let (tmp, file) = TempFile::create(dir.path(), ".c.json.", ".tmp").unwrap();
        let path = tmp.path.clone();
        let name = path.file_name().unwrap().to_str().unwrap();
        assert!(
            name.starts_with(".c.json.") && name.ends_with(".tmp"),
            "{name}"
        );
        // The shape the next open recognises as an interrupted save.
        assert!(
            is_temp_random(&name[".c.json.".len()..name.len() - ".tmp".len()]),
            "{name}"
        );
        #[cfg(unix)]
        assert_eq!(mode(&path), 0o600);
        let (other, _) = TempFile::create(dir.path(), ".c.json.", ".tmp").unwrap();
        assert_ne!(other.path, path, "each file gets its own name");
        drop(file);
        drop(tmp);
        assert!(!path.exists(), "dropped unpersisted: removed");

        // A rename that fails (onto a directory) leaves no temporary file.
        let occupied = dir.path().join("occupied");
        std::fs::create_dir(&occupied).unwrap();
        std::fs::write(occupied.join("inside"), b"x").unwrap();
        let (tmp, _) = TempFile::create(dir.path(), ".c.json.", ".tmp").unwrap();
        let path = tmp.path.clone();
        assert!(tmp.persist(&occupied).is_err());
        assert!(!path.exists());

        let (tmp, _) = TempFile::create(dir.path(), ".c.json.", ".tmp").unwrap();
        let target = dir.path().join("c.json");
        tmp.persist(&target).unwrap();
        assert!(target.exists(), "persisted: renamed over the target");
        drop(other);
        let mut left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, ["c.json", "occupied"]);
    }

    /// Every letter and digit stands for exactly four byte values, so each
    /// of the 62 is equally likely in a name; `byte % 62` alone gave `A` to
    /// `H` five values and the rest four.
    #[test]
    fn the_random_part_of_a_name_is_uniform_over_letters_and_digits() {
        let mut counts = std::collections::BTreeMap::new();
        for byte in 0..=u8::MAX {
            if let Some(c) = alphanumeric(byte) {
                assert!(c.is_ascii_alphanumeric(), "{c:?}");
                *counts.entry(c).or_insert(0) += 1;
            }
        }
        assert_eq!(counts.len(), 62);
        assert!(counts.values().all(|&n| n == 4), "{counts:?}");
        // One byte in 32 is drawn again, so some of these parts take a
        // second draw; every part still has exactly six characters.
        for _ in 0..200 {
            let part = random_part().unwrap();
            assert!(is_temp_random(&part), "{part}");
        }
    }

    /// Only a name clash is worth another name: any other failure (here, a
    /// directory that does not exist) is reported as it is, at once.
    #[test]
    fn a_failure_other_than_a_clash_is_reported_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let mut tries = 0;
        let e = TempFile::create_named(&dir.path().join("absent"), ".c.json.", ".tmp", || {
            tries += 1;
            random_part()
        })
        .map(|_| ())
        .unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::NotFound, "{e}");
        assert_eq!(tries, 1);
    }

    /// Whatever is planted at a name tried (a link to a file elsewhere, a
    /// file), it is neither opened nor changed: the next name is taken.
    #[test]
    #[cfg(unix)]
    fn a_planted_link_or_file_at_a_temporary_name_is_skipped_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        let victim = elsewhere.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        std::os::unix::fs::symlink(&victim, dir.path().join(".c.json.AAAAAA.tmp")).unwrap();
        std::os::unix::fs::symlink(
            elsewhere.path().join("absent"),
            dir.path().join(".c.json.BBBBBB.tmp"),
        )
        .unwrap();
        std::fs::write(dir.path().join(".c.json.CCCCCC.tmp"), b"planted").unwrap();
        let mut names = ["AAAAAA", "BBBBBB", "CCCCCC", "DDDDDD"].into_iter();
        let (tmp, mut file) = TempFile::create_named(dir.path(), ".c.json.", ".tmp", || {
            Ok(names.next().unwrap().to_owned())
        })
        .unwrap();
        assert_eq!(tmp.path, dir.path().join(".c.json.DDDDDD.tmp"));
        file.write_all(b"{}").unwrap();
        drop(file);
        drop(tmp);
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert!(!elsewhere.path().join("absent").exists());
        assert_eq!(
            std::fs::read(dir.path().join(".c.json.CCCCCC.tmp")).unwrap(),
            b"planted"
        );
        assert!(!dir.path().join(".c.json.DDDDDD.tmp").exists());
    }

    /// When every name tried is taken, the error says so (and is
    /// `AlreadyExists`), after [`TempFile::ATTEMPTS`] tries, and what was
    /// there stays.
    #[test]
    fn when_every_temporary_name_is_taken_the_error_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let taken = dir.path().join(".c.json.AAAAAA.tmp");
        std::fs::write(&taken, b"planted").unwrap();
        let mut tries = 0;
        let e = TempFile::create_named(dir.path(), ".c.json.", ".tmp", || {
            tries += 1;
            Ok("AAAAAA".to_owned())
        })
        .map(|_| ())
        .unwrap_err();
        assert_eq!(tries, TempFile::ATTEMPTS);
        assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists);
        assert!(e.to_string().contains("all taken"), "{e}");
        assert_eq!(std::fs::read(&taken).unwrap(), b"planted");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    /// An earlier version's leftover is recognised by its start alone, read
    /// from a regular file of at most a mebibyte that is not a link: a
    /// larger file, a link to a document or a FIFO (never waited on) is
    /// somebody else's.
    #[cfg(unix)]
    #[test]
    fn only_a_small_regular_file_starting_a_json_object_looks_like_a_leftover() {
        const MEBIBYTE: u64 = 1 << 20;
        let dir = tempfile::tempdir().unwrap();
        let sized = |name: &str, len: u64| {
            let path = dir.path().join(name);
            std::fs::write(&path, b"  {\"refresh_token\":").unwrap();
            std::fs::File::options()
                .write(true)
                .open(&path)
                .unwrap()
                .set_len(len)
                .unwrap();
            path
        };
        assert!(starts_a_json_object(&sized("small", 64)));
        assert!(starts_a_json_object(&sized("limit", MEBIBYTE)));
        assert!(!starts_a_json_object(&sized("over", MEBIBYTE + 1)));
        std::fs::write(dir.path().join("text"), b"refresh-1").unwrap();
        assert!(!starts_a_json_object(&dir.path().join("text")));
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(dir.path().join("small"), &link).unwrap();
        assert!(!starts_a_json_object(&link), "a link is not followed");
        let fifo_path = dir.path().join("fifo");
        let fifo = std::ffi::CString::new(fifo_path.as_os_str().as_encoded_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        assert!(!starts_a_json_object(&fifo_path), "a FIFO is not waited on");
        assert!(!starts_a_json_object(&dir.path().join("missing")));
    }
}
