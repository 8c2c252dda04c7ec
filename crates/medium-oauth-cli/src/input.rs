//! Files given on the command line, read with a cap (`-`: standard input),
//! so a wrong path (a log, a disk image) is refused rather than read whole.

use std::io::Read;
use std::path::Path;

use crate::failure::Failure;

/// `path` as messages name it.
pub fn shown(path: &Path) -> String {
    if path.as_os_str() == "-" {
        "standard input".to_owned()
    } else {
        path.display().to_string()
    }
}

/// The bytes of `path` (`-`: standard input), at most `max`. A file that
/// cannot be read is exit 1 (a file problem); one over `max` is a usage
/// error, `what` naming the option or argument.
pub fn read_capped(path: &Path, max: u64, what: &str) -> Result<Vec<u8>, Failure> {
    let shown = shown(path);
    let mut bytes = Vec::new();
    // One byte past the cap tells "exactly the cap" from "more".
    let read = if path.as_os_str() == "-" {
        std::io::stdin()
            .lock()
            .take(max + 1)
            .read_to_end(&mut bytes)
    } else {
        std::fs::File::open(path).and_then(|f| f.take(max + 1).read_to_end(&mut bytes))
    };
    read.map_err(|e| Failure::other(format!("{what}: cannot read {shown}: {e}")))?;
    if bytes.len() as u64 > max {
        return Err(Failure::usage(format!(
            "{what}: {shown} is over {max} bytes, more than this command sends"
        )));
    }
    Ok(bytes)
}

/// `bytes` as text, or a usage error saying where it stops being UTF-8.
pub fn utf8(bytes: Vec<u8>, path: &Path, what: &str) -> Result<String, Failure> {
    String::from_utf8(bytes).map_err(|e| {
        Failure::usage(format!(
            "{what}: {} is not UTF-8 text (invalid byte at offset {})",
            shown(path),
            e.utf8_error().valid_up_to()
        ))
    })
}
