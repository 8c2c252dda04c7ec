//! A strict reader of the one `multipart/form-data` body the emulator takes:
//! a single file part (RFC 7578, on RFC 2046's framing).
//!
//! It works on a body already read under its cap, so it allocates nothing
//! in proportion to the body: it slices it. Every defect is an error saying
//! what is wrong, never a panic: no boundary, a truncated body, a part
//! without headers, headers over [`MAX_PART_HEADER_BYTES`], a second part.
//! Lines must end in CRLF, as Medium documents.

use memchr::memmem;

/// Most bytes a part's header section may take: a `Content-Disposition`
/// with a 255-character UTF-8 filename and a `Content-Type` take about 1.1
/// KiB; 4 KiB leaves room and keeps what a remembered upload holds small.
pub(crate) const MAX_PART_HEADER_BYTES: usize = 4 * 1024;

/// Longest boundary RFC 2046 §5.1.1 allows.
const MAX_BOUNDARY_CHARS: usize = 70;

const CRLF: &[u8] = b"\r\n";

/// The last header's CRLF and the empty line after it.
const HEADERS_END: &[u8] = b"\r\n\r\n";

/// The file part of an upload.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct FilePart<'a> {
    /// Its `name` parameter.
    pub(crate) name: String,
    /// Its `filename` parameter, or `None` when absent.
    pub(crate) filename: Option<String>,
    /// Its `Content-Type`, or `None` when absent.
    pub(crate) content_type: Option<String>,
    /// Its bytes.
    pub(crate) data: &'a [u8],
}

/// The boundary of a `multipart/form-data` `Content-Type`.
pub(crate) fn boundary(content_type: &str) -> Result<String, String> {
    let (essence, params) = content_type.split_once(';').unwrap_or((content_type, ""));
    if !essence.trim().eq_ignore_ascii_case("multipart/form-data") {
        return Err(format!(
            "Content-Type must be multipart/form-data, not {:?}.",
            super::quote(content_type)
        ));
    }
    let boundary = parameters(params)?
        .into_iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("boundary"))
        .map(|(_, v)| v)
        .ok_or("Content-Type has no boundary.")?;
    let chars = boundary.chars().count();
    if chars == 0 || chars > MAX_BOUNDARY_CHARS || !boundary.is_ascii() {
        return Err(format!(
            "The boundary must be 1 to {MAX_BOUNDARY_CHARS} ASCII characters."
        ));
    }
    Ok(boundary)
}

/// `; key=value; key="quoted value"` parameters, in order. Quoted values
/// may hold `;` and backslash-escaped characters.
pub(crate) fn parameters(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        rest = rest.strip_prefix(';').unwrap_or(rest).trim_start();
        if rest.is_empty() {
            break;
        }
        let (key, after) = rest
            .split_once('=')
            .ok_or_else(|| format!("A parameter has no value: {:?}.", super::quote(rest)))?;
        let key = key.trim().to_owned();
        let after = after.trim_start();
        let value;
        if let Some(quoted) = after.strip_prefix('"') {
            let mut v = String::new();
            let mut chars = quoted.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => match chars.next() {
                        Some((_, escaped)) => v.push(escaped),
                        None => break,
                    },
                    '"' => {
                        end = Some(i + 1);
                        break;
                    }
                    c => v.push(c),
                }
            }
            let end = end.ok_or_else(|| format!("Parameter {key:?} has an unclosed quote."))?;
            value = v;
            rest = quoted[end..].trim_start();
            if !rest.is_empty() && !rest.starts_with(';') {
                return Err(format!("Parameter {key:?} has text after its quote."));
            }
        } else {
            let end = after.find(';').unwrap_or(after.len());
            value = after[..end].trim().to_owned();
            rest = &after[end..];
        }
        out.push((key, value));
    }
    Ok(out)
}

/// The single part of `body`, whose parts are delimited by `boundary`.
pub(crate) fn single_part<'a>(body: &'a [u8], boundary: &str) -> Result<FilePart<'a>, String> {
    let delimiter = format!("--{boundary}");
    let delimiter = delimiter.as_bytes();
    // The first delimiter opens a line: at the very start, or after a CRLF
    // ending the preamble.
    let start = if body.starts_with(delimiter) {
        0
    } else {
        let line_delimiter = [CRLF, delimiter].concat();
        memmem::find(body, &line_delimiter)
            .map(|at| at + CRLF.len())
            .ok_or("The body has no boundary line: it is not the multipart body its Content-Type announces.")?
    };
    let after = &body[start + delimiter.len()..];
    if after.starts_with(b"--") {
        return Err("The body has no parts: send one part named `image`.".into());
    }
    let part_start = line_end(after).ok_or("The boundary line does not end in CRLF.")?;
    let part = &after[part_start..];

    let (headers, content) = if let Some(content) = part.strip_prefix(CRLF) {
        (&b""[..], content)
    } else {
        // The headers at their cap, and the blank line that ends them.
        let window = &part[..part.len().min(MAX_PART_HEADER_BYTES + HEADERS_END.len())];
        match memmem::find(window, HEADERS_END) {
            Some(end) => (&part[..end], &part[end + HEADERS_END.len()..]),
            None if window.len() < part.len() => {
                return Err(format!(
                    "The part's headers are over {MAX_PART_HEADER_BYTES} bytes."
                ));
            }
            None => return Err("The body ends inside the part's headers.".into()),
        }
    };
    let (disposition, content_type) = part_headers(headers)?;

    let closing = [CRLF, delimiter].concat();
    let end = memmem::find(content, &closing)
        .ok_or("The body ends inside the part: its closing boundary is missing.")?;
    let data = &content[..end];
    let after = &content[end + closing.len()..];
    if !after.starts_with(b"--") {
        return Err("The body has more than one part: send only the part named `image`.".into());
    }

    let disposition = disposition.ok_or("The part has no Content-Disposition header.")?;
    let (kind, params) = disposition.split_once(';').unwrap_or((&disposition, ""));
    if !kind.trim().eq_ignore_ascii_case("form-data") {
        return Err(format!(
            "The part's Content-Disposition must be form-data, not {:?}.",
            super::quote(kind.trim())
        ));
    }
    let params = parameters(params)?;
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let name = param("name").ok_or("The part's Content-Disposition has no name.")?;
    Ok(FilePart {
        name,
        filename: param("filename"),
        content_type,
        data,
    })
}

/// Where the line after a boundary starts: past optional transport padding
/// (spaces and tabs, RFC 2046) and a CRLF.
fn line_end(after_boundary: &[u8]) -> Option<usize> {
    let padding = after_boundary
        .iter()
        .take_while(|b| matches!(b, b' ' | b'\t'))
        .count();
    after_boundary[padding..]
        .starts_with(CRLF)
        .then_some(padding + CRLF.len())
}

/// The part's `Content-Disposition` and `Content-Type`, each at most once.
fn part_headers(headers: &[u8]) -> Result<(Option<String>, Option<String>), String> {
    let text = std::str::from_utf8(headers).map_err(|_| "The part's headers are not UTF-8.")?;
    let mut disposition = None;
    let mut content_type = None;
    for line in text.split("\r\n").filter(|l| !l.is_empty()) {
        if line.starts_with([' ', '\t']) {
            return Err("The part's headers are folded over lines.".into());
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("A part header has no colon: {:?}.", super::quote(line)))?;
        let slot = if name.trim().eq_ignore_ascii_case("content-disposition") {
            &mut disposition
        } else if name.trim().eq_ignore_ascii_case("content-type") {
            &mut content_type
        } else {
            // Other headers (Content-Transfer-Encoding, which RFC 7578
            // deprecates and no client sends) are ignored.
            continue;
        };
        if slot.replace(value.trim().to_owned()).is_some() {
            return Err(format!("The part has two {} headers.", name.trim()));
        }
    }
    Ok((disposition, content_type))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries_quoted_or_not() {
        assert_eq!(
            boundary("multipart/form-data; boundary=abc").unwrap(),
            "abc"
        );
        assert_eq!(
            boundary("Multipart/Form-Data;boundary=\"a b;c\"").unwrap(),
            "a b;c"
        );
        assert!(boundary("multipart/form-data").is_err());
        assert!(boundary("multipart/mixed; boundary=x").is_err());
        assert!(boundary("multipart/form-data; boundary=\"\"").is_err());
        assert!(boundary(&format!("multipart/form-data; boundary={}", "b".repeat(71))).is_err());
        assert!(boundary("multipart/form-data; boundary=\"open").is_err());
    }

    #[test]
    fn a_boundary_of_rfc_2046s_longest_is_taken() {
        let longest = "b".repeat(MAX_BOUNDARY_CHARS);
        assert_eq!(
            boundary(&format!("multipart/form-data; boundary={longest}")).unwrap(),
            longest
        );
    }

    /// What the header cap is sized for: a 255-character UTF-8 filename
    /// (up to 4 bytes each) with its Content-Type. The cap itself holds at
    /// its byte: headers of exactly MAX_PART_HEADER_BYTES are read, one byte
    /// more is refused.
    #[test]
    fn part_headers_are_capped_at_their_byte_and_hold_the_longest_filename() {
        let part = |headers: &str| body(&format!("--XX\n{headers}\n\nPNG\n--XX--\n"));
        let long_name = "😀".repeat(255);
        let b = part(&format!(
            "Content-Disposition: form-data; name=\"image\"; filename=\"{long_name}.png\"\nContent-Type: image/png"
        ));
        assert_eq!(
            single_part(&b, "XX").unwrap().filename.unwrap(),
            format!("{long_name}.png")
        );

        let fixed = "Content-Disposition: form-data; name=\"image\"\nX-Pad: ";
        // Counted up to the blank line, the CRLF between the two headers
        // included (`body` makes each newline a CRLF).
        let pad = MAX_PART_HEADER_BYTES - (fixed.len() + 1);
        let at_cap = part(&format!("{fixed}{}", "p".repeat(pad)));
        let over = part(&format!("{fixed}{}", "p".repeat(pad + 1)));
        assert!(single_part(&at_cap, "XX").is_ok());
        assert!(single_part(&over, "XX").is_err());
    }

    fn body(parts: &str) -> Vec<u8> {
        parts.replace('\n', "\r\n").into_bytes()
    }

    #[test]
    fn reads_one_part() {
        let b = body(
            "preamble\n--XX\nContent-Disposition: form-data; name=\"image\"; filename=\"a.png\"\nContent-Type: image/png\n\nPNG\n--XX--\n",
        );
        let part = single_part(&b, "XX").unwrap();
        assert_eq!(part.name, "image");
        assert_eq!(part.filename.as_deref(), Some("a.png"));
        assert_eq!(part.content_type.as_deref(), Some("image/png"));
        assert_eq!(part.data, b"PNG");
    }

    #[test]
    fn defects_are_errors() {
        for (b, says) in [
            ("", "no boundary line"),
            ("--XX--\n", "no parts"),
            ("--XXjunk\n", "CRLF"),
            ("--XX\n\ndata\n--XX--", "no Content-Disposition"),
            (
                "--XX\nContent-Disposition: form-data",
                "inside the part's headers",
            ),
            (
                "--XX\nContent-Disposition: form-data; name=image\n\nabc",
                "closing boundary",
            ),
            (
                "--XX\nContent-Disposition: form-data; name=a\n\n1\n--XX\nContent-Disposition: form-data; name=b\n\n2\n--XX--",
                "more than one part",
            ),
            (" folded\n--XX\nA: b\n c\n\nx\n--XX--", "folded"),
            (
                "--XX\nContent-Disposition: attachment; name=a\n\nx\n--XX--",
                "form-data",
            ),
            ("--XX\nContent-Type: a\nContent-Type: b\n\nx\n--XX--", "two"),
        ] {
            let err = single_part(&body(b), "XX").unwrap_err();
            assert!(err.contains(says), "{b:?}: {err}");
        }
        let huge = format!(
            "--XX\nX: {}\n\nx\n--XX--",
            "h".repeat(MAX_PART_HEADER_BYTES)
        );
        assert!(
            single_part(&body(&huge), "XX")
                .unwrap_err()
                .contains("over")
        );
    }
}
