//! `api`: an authenticated request to any path of the API server, as
//! `gh api` does, for the calls the other commands do not cover.

use std::io::IsTerminal;
use std::path::Path;

use clap::{Args, ValueEnum};
use medium_oauth::{BearerAuth, DEFAULT_REQUEST_TIMEOUT};
use medium_oauth2_api::{BodyTooLarge, MAX_RESPONSE_BYTES};
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderValue};
use url::Url;

use crate::failure::{Failure, chain, printable};
use crate::input;
use crate::publications::escape_controls;
use crate::session::{Session, SessionArgs};

/// Largest `--data` body sent, in bytes: the most a response may be too.
pub const MAX_DATA_BYTES: u64 = MAX_RESPONSE_BYTES as u64;

#[derive(Args, Debug)]
#[command(after_help = "\
PATH is relative to the API server (Medium's https://api.medium.com/v1, or the \
one stored at login): `/me`, `/users/ID/publications`. URLs, `//host`, `..` \
and `.` segments (also percent-encoded) and backslashes are refused before \
anything is sent, so the token goes to the API server alone; redirects are \
not followed.

The response body is printed on stdout, also for an error status, with the \
token the request carried redacted: JSON laid out as it came (numbers and \
key order kept, control characters escaped), other text as it came, or with \
control characters made spaces when stdout is a terminal. A status other \
than 2xx is exit 5, with the status on stderr.

Examples:
  medium-oauth api GET /me
  medium-oauth api POST /users/ID/posts --data '{\"title\":\"T\",\"contentFormat\":\"markdown\",\"content\":\"# T\"}'
  medium-oauth api POST /users/ID/posts --data @post.json")]
pub struct ApiArgs {
    /// The HTTP method.
    #[arg(value_enum, ignore_case = true)]
    method: Method,
    /// The path on the API server, with any query: `/me`.
    path: String,
    /// A JSON request body, or `@FILE` to read it from FILE (`@-`:
    /// standard input); checked to be JSON before anything is sent.
    #[arg(long, value_name = "JSON|@FILE")]
    data: Option<String>,
    #[command(flatten)]
    session: SessionArgs,
}

/// The methods a REST API takes.
#[derive(Clone, Copy, Debug, ValueEnum)]
#[value(rename_all = "UPPER")]
enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl From<Method> for reqwest::Method {
    fn from(method: Method) -> Self {
        match method {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
            Method::Put => reqwest::Method::PUT,
            Method::Patch => reqwest::Method::PATCH,
            Method::Delete => reqwest::Method::DELETE,
        }
    }
}

/// The URL of `path` on the API server `base`, or a usage error when
/// `path` could lead anywhere else: the request carries the bearer token.
pub fn api_url(base: &Url, path: &str) -> Result<Url, Failure> {
    let refuse = |why: &str| {
        Failure::usage(format!(
            "PATH {:?} {why}; give a path on the API server, such as /me (the token is sent \
             to {} alone)",
            printable(path),
            base.host_str().unwrap_or_default()
        ))
    };
    if path.contains("://") || path.starts_with("//") {
        return Err(refuse("is a URL"));
    }
    if !path.starts_with('/') {
        return Err(refuse("does not start with /"));
    }
    if path.contains('\\') {
        // URL parsers read `\` as `/` in http URLs.
        return Err(refuse("holds a backslash"));
    }
    if path.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(refuse("holds spaces or control characters"));
    }
    let path_only = path.split(['?', '#']).next().unwrap_or_default();
    let dot_segment = path_only.split('/').any(|segment| {
        // URL parsers take `%2e` for `.` in a dot segment.
        let segment = segment.to_ascii_lowercase().replace("%2e", ".");
        segment == "." || segment == ".."
    });
    if dot_segment {
        return Err(refuse("has a `.` or `..` segment"));
    }
    let joined = format!("{}{path}", base.as_str().trim_end_matches('/'));
    let url = Url::parse(&joined).map_err(|e| refuse(&format!("does not make a URL ({e})")))?;
    // Whatever the checks above missed: the URL must be on the API server,
    // under its path.
    let prefix = format!("{}/", base.path().trim_end_matches('/'));
    let same_server = url.scheme() == base.scheme()
        && url.host() == base.host()
        && url.port_or_known_default() == base.port_or_known_default()
        && url.path().starts_with(&prefix)
        && url.username().is_empty()
        && url.password().is_none();
    if !same_server {
        return Err(refuse("leads off the API server"));
    }
    Ok(url)
}

/// The body `--data` gives: the text itself or the file after `@`, checked
/// to be JSON.
fn request_body(data: &str) -> Result<Vec<u8>, Failure> {
    let bytes = match data.strip_prefix('@') {
        Some(file) => input::read_capped(Path::new(file), MAX_DATA_BYTES, "--data")?,
        None if data.len() as u64 > MAX_DATA_BYTES => {
            return Err(Failure::usage(format!(
                "--data is over {MAX_DATA_BYTES} bytes"
            )));
        }
        None => data.as_bytes().to_vec(),
    };
    serde_json::from_slice::<serde::de::IgnoredAny>(&bytes)
        .map_err(|e| Failure::usage(format!("--data is not JSON: {e}")))?;
    Ok(bytes)
}

/// A response body for stdout: JSON pretty-printed with its control
/// characters escaped (safe anywhere); other text with its control
/// characters but newlines and tabs made spaces when `terminal`; else the
/// bytes as they came.
pub fn shown_body(body: &[u8], terminal: bool) -> Vec<u8> {
    if body.is_empty() {
        return Vec::new();
    }
    // Validated first (serde_json's nesting limit bounds the indentation),
    // then laid out as it came: numbers, key order and duplicate keys as the
    // server sent them, which a round trip through `Value` would change.
    if serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok()
        && let Ok(text) = std::str::from_utf8(body)
        && let Some(pretty) = reindent(text)
    {
        return format!("{}\n", escape_controls(&pretty)).into_bytes();
    }
    if !terminal {
        return body.to_vec();
    }
    let text = String::from_utf8_lossy(body);
    let mut shown: String = text
        .split('\n')
        .map(|line| {
            line.split('\t')
                .map(printable)
                .collect::<Vec<_>>()
                .join("\t")
        })
        .collect::<Vec<_>>()
        .join("\n");
    if !shown.ends_with('\n') {
        shown.push('\n');
    }
    shown.into_bytes()
}

/// The most a re-indented body may grow to, in bytes: deep nesting makes
/// every line long, and past this the body is shown as it came.
const MAX_SHOWN_JSON_BYTES: usize = 8 * MAX_RESPONSE_BYTES;

/// Valid JSON `json` laid out two spaces per level, every token kept as
/// written; `None` when the layout would pass [`MAX_SHOWN_JSON_BYTES`].
fn reindent(json: &str) -> Option<String> {
    fn newline(out: &mut String, depth: usize) {
        out.push('\n');
        out.extend(std::iter::repeat_n("  ", depth));
    }
    let mut out = String::with_capacity(json.len() * 2);
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    let mut chars = json.chars().peekable();
    while let Some(c) = chars.next() {
        if out.len() > MAX_SHOWN_JSON_BYTES {
            return None;
        }
        if in_string {
            out.push(c);
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '{' | '[' => {
                while chars.next_if(|c| c.is_ascii_whitespace()).is_some() {}
                let close = if c == '{' { '}' } else { ']' };
                out.push(c);
                if chars.next_if_eq(&close).is_some() {
                    out.push(close);
                } else {
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            // Whitespace between tokens: the layout is made here.
            c if c.is_ascii_whitespace() => {}
            c => out.push(c),
        }
    }
    Some(out)
}

/// `body` with every occurrence of each of `secrets` replaced by
/// `[redacted]`: a server may echo the bearer token it was sent.
fn redact(body: &[u8], secrets: &[&str]) -> Vec<u8> {
    let mut out = body.to_vec();
    for secret in secrets
        .iter()
        .map(|s| s.as_bytes())
        .filter(|s| !s.is_empty())
    {
        let mut redacted = Vec::with_capacity(out.len());
        let mut rest = &out[..];
        while let Some(at) = rest.windows(secret.len()).position(|w| w == secret) {
            redacted.extend_from_slice(&rest[..at]);
            redacted.extend_from_slice(b"[redacted]");
            rest = &rest[at + secret.len()..];
        }
        redacted.extend_from_slice(rest);
        out = redacted;
    }
    out
}

pub async fn run(args: ApiArgs) -> Result<(), Failure> {
    // Everything that can be refused is refused before the credentials are
    // read: nothing is sent for a bad path or body.
    let body = args.data.as_deref().map(request_body).transpose()?;
    let session = Session::open(&args.session).await?;
    let url = api_url(session.client.api_server(), &args.path)?;
    let host = session.host.clone();
    let http = medium_oauth::tls::client_builder()
        .map_err(|e| Failure::other(e.to_string()))?
        // A redirect would take the token (reqwest drops it only across
        // hosts) and the body elsewhere; it is shown instead.
        .redirect(reqwest::redirect::Policy::none())
        .timeout(DEFAULT_REQUEST_TIMEOUT)
        .build()
        .map_err(|e| Failure::other(chain(&e)))?;
    // The same source as the library's calls: a refused token is refreshed
    // once and the request sent again (the body is bytes, so it can be).
    let http = reqwest_middleware::ClientBuilder::new(http)
        .with(BearerAuth::new(session.source.clone()))
        .build();
    let mut request = http
        .request(args.method.into(), url)
        .header(ACCEPT, HeaderValue::from_static("application/json"));
    if let Some(body) = body {
        request = request
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .body(body);
    }
    let network = |e: reqwest::Error| {
        Failure::new(
            Failure::NETWORK,
            format!("could not reach {host}: {}", chain(&e.without_url())),
        )
    };
    let response = match request.send().await {
        Ok(response) => response,
        Err(reqwest_middleware::Error::Reqwest(e)) => return Err(network(e)),
        // The token source's own failure (no refresh possible, the grant
        // revoked), as the other commands report it.
        Err(reqwest_middleware::Error::Middleware(e)) => {
            return Err(match e.downcast::<medium_oauth::Error>() {
                Ok(e) => session.failure(e),
                Err(other) => Failure::other(other.to_string()),
            });
        }
    };
    // The token this request carried, which a server may echo: it must
    // reach neither the terminal nor a pipe.
    let sent = medium_oauth::token_sent_with(&response).map(|t| t.access_token().clone());
    let response = medium_oauth2_api::cap_body(response)
        .await
        .map_err(network)?;
    let status = response.status();
    if response.extensions().get::<BodyTooLarge>().is_some() {
        return Err(Failure::new(
            Failure::MEDIUM,
            format!("{host}: HTTP {status}, and its body exceeds {MAX_RESPONSE_BYTES} bytes"),
        ));
    }
    // Buffered by cap_body: no network wait here.
    let bytes = response.bytes().await.map_err(network)?;
    let secrets: Vec<&str> = sent.iter().map(|t| t.expose_secret()).collect();
    let bytes = redact(&bytes, &secrets);
    crate::write_out_bytes(&shown_body(&bytes, std::io::stdout().is_terminal()));
    if status.is_success() {
        return Ok(());
    }
    let mut message = format!("{host} answered HTTP {status}");
    if status == reqwest::StatusCode::UNAUTHORIZED {
        message.push_str(
            " (the token was refused: it lacks the call's scope or the grant was revoked; \
             `medium-oauth login` again)",
        );
    }
    Err(Failure::new(Failure::MEDIUM, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_echo_of_a_secret_is_redacted() {
        assert_eq!(
            redact(b"Bearer tok and tok, t0k", &["tok", ""]),
            b"Bearer [redacted] and [redacted], t0k".to_vec()
        );
        assert_eq!(redact(b"tok", &[]), b"tok".to_vec());
    }

    #[test]
    fn deep_json_is_shown_as_it_came_past_the_layout_cap() {
        // 100 levels (within serde_json's limit) of a 1 MiB array each: the
        // layout would be hundreds of megabytes.
        let mut body = "[".repeat(100);
        body.push_str(&"1,".repeat(300_000));
        body.push('1');
        body.push_str(&"]".repeat(100));
        assert_eq!(reindent(&body), None);
        assert_eq!(shown_body(body.as_bytes(), false), body.as_bytes().to_vec());
    }

    fn base() -> Url {
        Url::parse("https://api.medium.com/v1").unwrap()
    }

    #[test]
    fn paths_join_the_api_server() {
        assert_eq!(
            api_url(&base(), "/me").unwrap().as_str(),
            "https://api.medium.com/v1/me"
        );
        assert_eq!(
            api_url(&base(), "/users/abc/publications?x=1")
                .unwrap()
                .as_str(),
            "https://api.medium.com/v1/users/abc/publications?x=1"
        );
        let slash = Url::parse("http://127.0.0.1:8080/v1/").unwrap();
        assert_eq!(
            api_url(&slash, "/me").unwrap().as_str(),
            "http://127.0.0.1:8080/v1/me"
        );
        // A dot inside a name is no dot segment.
        assert!(api_url(&base(), "/users/a.b/..c/publications").is_ok());
    }

    #[test]
    fn anything_leaving_the_api_server_is_refused() {
        for path in [
            "https://evil.example/x",
            "http://api.medium.com/v1/me",
            "//evil.example/x",
            "evil.example/x",
            "me",
            "",
            "/../x",
            "/..",
            "/users/../../x",
            "/./me",
            "/%2e%2e/x",
            "/%2E./x",
            "/.%2e/x",
            "/\\evil.example/x",
            "/\\\\evil.example",
            "/me\r\nHost: evil",
            "/me x",
            "/me\t",
            "@evil.example/x",
            ":8080/x",
        ] {
            let refused = api_url(&base(), path);
            assert!(refused.is_err(), "{path:?} gave {refused:?}");
            assert_eq!(refused.unwrap_err().code, Failure::USAGE);
        }
    }

    #[test]
    fn data_must_be_json() {
        assert_eq!(request_body(r#"{"a":1}"#).unwrap(), br#"{"a":1}"#);
        assert_eq!(request_body("not json").unwrap_err().code, Failure::USAGE);
        assert_eq!(request_body("{").unwrap_err().code, Failure::USAGE);
        assert_eq!(
            request_body("@/nonexistent/file.json").unwrap_err().code,
            Failure::OTHER
        );
    }

    #[test]
    fn data_may_be_exactly_its_cap() {
        // A JSON string of MAX_DATA_BYTES bytes with its quotes.
        let at_cap = format!("\"{}\"", "x".repeat(MAX_DATA_BYTES as usize - 2));
        assert_eq!(request_body(&at_cap).unwrap().len(), at_cap.len());
        let over = format!("\"{}\"", "x".repeat(MAX_DATA_BYTES as usize - 1));
        let refused = request_body(&over).unwrap_err();
        assert_eq!(refused.code, Failure::USAGE);
        assert!(refused.message.contains("is over"), "{}", refused.message);
    }

    /// The largest body a response may have, flat, is laid out (its
    /// layout is a few times its size), not shown as it came.
    #[test]
    fn a_flat_body_at_the_response_cap_is_laid_out() {
        let mut body = "[1".to_owned();
        while body.len() < MAX_RESPONSE_BYTES - 3 {
            body.push_str(",1");
        }
        body.push(']');
        let shown = reindent(&body).unwrap();
        assert!(shown.len() > 2 * MAX_RESPONSE_BYTES, "{}", shown.len());
        assert!(shown.starts_with("[\n  1,\n  1,"));
    }

    /// A layout of exactly [`MAX_SHOWN_JSON_BYTES`] is within the cap.
    #[test]
    fn a_layout_may_be_exactly_its_cap() {
        let string = format!("\"{}\"", "x".repeat(MAX_SHOWN_JSON_BYTES - 2));
        // Whitespace after the value adds nothing to the layout.
        let body = format!("{string} ");
        assert_eq!(reindent(&body), Some(string));
    }

    #[test]
    fn whitespace_between_tokens_is_replaced_by_the_layout() {
        let spaced = "{ \"a\" :\t[ 1 , 2 ] ,\r\n \"b\" : { } }";
        assert_eq!(
            String::from_utf8(shown_body(spaced.as_bytes(), false)).unwrap(),
            "{\n  \"a\": [\n    1,\n    2\n  ],\n  \"b\": {}\n}\n"
        );
    }

    /// The last check catches what the others cannot: on an API server
    /// whose URL holds a query, the path would land in the query.
    #[test]
    fn a_path_that_would_leave_the_servers_path_is_refused() {
        let with_query = Url::parse("https://api.medium.com/v1?x=1").unwrap();
        let refused = api_url(&with_query, "/me").unwrap_err();
        assert_eq!(refused.code, Failure::USAGE);
        assert!(
            refused.message.contains("leads off the API server"),
            "{}",
            refused.message
        );
    }

    #[test]
    fn bodies_are_shown_safely() {
        let json = br#"{"data":{"name":"A\u001b[2J\u009b31m"}}"#;
        let shown = String::from_utf8(shown_body(json, false)).unwrap();
        assert!(
            !shown.chars().any(|c| c.is_control() && c != '\n'),
            "{shown:?}"
        );
        let parsed: serde_json::Value = serde_json::from_str(&shown).unwrap();
        assert_eq!(parsed["data"]["name"], "A\x1b[2J\u{9b}31m");
        assert!(shown.ends_with("}\n"));

        let text = b"<html>\x1b[2J\r\nline2\tcol\n";
        assert_eq!(shown_body(text, false), text.to_vec());
        assert_eq!(
            String::from_utf8(shown_body(text, true)).unwrap(),
            "<html> [2J \nline2\tcol\n"
        );
        assert!(shown_body(b"", true).is_empty());
        // Numbers, key order and duplicate keys as the server sent them.
        let exact = br#"{"z":12345678901234567890123,"a":1e2,"a":[ ],"s":",:{[\"]}"}"#;
        assert_eq!(
            String::from_utf8(shown_body(exact, false)).unwrap(),
            "{\n  \"z\": 12345678901234567890123,\n  \"a\": 1e2,\n  \"a\": [],\n  \"s\": \",:{[\\\"]}\"\n}\n"
        );
        // Not UTF-8: replaced on a terminal, kept as it came otherwise.
        assert_eq!(shown_body(b"\xff", false), b"\xff".to_vec());
        assert_eq!(shown_body(b"\xff", true), "\u{fffd}\n".as_bytes().to_vec());
    }
}
