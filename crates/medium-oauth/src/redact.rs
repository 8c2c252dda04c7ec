//! Text from the network, made safe to show: every string a server sends
//! (quoted bodies, error messages, callback descriptions) passes through
//! [`quote`] before it reaches an [`Error`](crate::Error), so `Display`,
//! `Debug` and logs never carry a secret a server echoed back.

/// Bytes of server text kept in an error: enough to recognise a proxy page or
/// read a message, little enough for one log line.
pub(crate) const QUOTE_BYTES: usize = 200;

/// Runs of this many token-like characters are redacted: Medium's tokens are
/// 33+ hex digits, and no English word is this long.
const REDACT_RUN_CHARS: usize = 20;

const REDACTED: &str = "[redacted]";

/// The start of `text`, safe to show: the request's `secrets` and any long
/// token-like run are replaced before it is cut, so no part of one survives;
/// control characters become spaces, so it cannot move a terminal's cursor
/// or forge a log line.
pub(crate) fn quote(text: &str, secrets: &[&str]) -> String {
    let mut text = text.to_owned();
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        text = text.replace(secret, REDACTED);
    }
    let mut out = String::with_capacity(text.len().min(QUOTE_BYTES * 2));
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.chars().count() >= REDACT_RUN_CHARS {
            out.push_str(REDACTED);
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || "-_.~+/=%".contains(c) {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(if c.is_control() { ' ' } else { c });
        }
    }
    flush(&mut run, &mut out);
    let mut end = QUOTE_BYTES.min(out.len());
    while !out.is_char_boundary(end) {
        end -= 1;
    }
    out.truncate(end);
    out
}

/// [`quote`] for a body of bytes, decoded leniently.
pub(crate) fn quote_bytes(body: &[u8], secrets: &[&str]) -> String {
    quote(&String::from_utf8_lossy(body), secrets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_and_long_runs_are_redacted_before_cutting() {
        let secret = "s3cr3t";
        let token = "0123456789abcdef0123456789abcdef";
        let body = format!("<html>echo {secret} and {token} here</html>");
        let out = quote(&body, &[secret]);
        assert_eq!(out, "<html>echo [redacted] and [redacted] here</html>");
        let long = "word ".repeat(QUOTE_BYTES / 5 - 1) + token;
        let out = quote(&long, &[]);
        assert!(!out.contains("0123"), "{out}");
        assert_eq!(out.len(), QUOTE_BYTES);
    }

    #[test]
    fn a_run_one_short_of_the_limit_is_kept() {
        let kept = "a".repeat(REDACT_RUN_CHARS - 1);
        assert_eq!(quote(&kept, &[]), kept);
        assert_eq!(quote(&"a".repeat(REDACT_RUN_CHARS), &[]), REDACTED);
    }

    #[test]
    fn percent_encoded_secrets_are_one_run() {
        // A form echoed back is percent-encoded: the run must not break at `%`.
        let out = quote("token: abc%2Fdefghij%2Bklmnop", &[]);
        assert_eq!(out, "token: [redacted]");
    }

    #[test]
    fn control_characters_become_spaces() {
        assert_eq!(quote("a\u{1b}[2Jb\nc\u{7}", &[]), "a [2Jb c ");
    }

    #[test]
    fn cuts_on_a_character_boundary() {
        // Three-byte characters after one byte: the cut at QUOTE_BYTES falls
        // inside one, which goes whole. ("€ " was four bytes, so every cut
        // fell on a boundary and the backing off went untested.)
        assert_eq!((QUOTE_BYTES - 1) % 3, 1, "the cut is inside a character");
        let text = format!("x{}", "€".repeat(QUOTE_BYTES));
        let kept = (QUOTE_BYTES - 1) / 3;
        assert_eq!(quote(&text, &[]), format!("x{}", "€".repeat(kept)));
    }

    #[test]
    fn bytes_are_decoded_leniently_then_quoted() {
        assert_eq!(quote_bytes(b"bad \xff byte", &[]), "bad \u{fffd} byte");
    }
}
