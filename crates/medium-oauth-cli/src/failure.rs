//! One line on stderr and a distinct exit code per class of failure.

use medium_oauth::Error;

/// A failure: what to say, and the exit code of its class (see `--help`).
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    pub const OTHER: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const DENIED: u8 = 3;
    pub const STATE_MISMATCH: u8 = 4;
    pub const MEDIUM: u8 = 5;
    pub const NETWORK: u8 = 6;
    pub const REAUTHORIZE: u8 = 7;
    pub const INVALID_CLIENT: u8 = 8;
    pub const CANCELLED: u8 = 130;

    pub fn new(code: u8, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(Self::USAGE, message)
    }

    pub fn other(message: impl Into<String>) -> Self {
        Self::new(Self::OTHER, message)
    }

    /// `e` from a request to `host`: an answer the server gave is said to
    /// be that host's (it may be an emulator on 127.0.0.1, not Medium).
    /// Transport errors name their host already.
    pub fn from_server(e: Error, host: &str) -> Self {
        let answered = matches!(
            e,
            Error::InvalidGrant { .. }
                | Error::InvalidClient { .. }
                | Error::Api { .. }
                | Error::UnexpectedResponse { .. }
                | Error::MalformedBody(_)
                | Error::ResponseTooLarge { .. }
                | Error::ExpiredOnArrival { .. }
                | Error::ImplausibleExpiry { .. }
                | Error::TokenRefused { .. }
                | Error::Forbidden { .. }
        );
        let mut failure = Failure::from(e);
        if answered {
            failure.message = format!("{host}: {}", failure.message);
        }
        failure
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        let code = match &e {
            Error::Denied { .. } => Failure::DENIED,
            Error::CsrfMismatch => Failure::STATE_MISMATCH,
            Error::Transport { .. } => Failure::NETWORK,
            Error::InvalidClient { .. } => Failure::INVALID_CLIENT,
            e if e.requires_reauthorization() => Failure::REAUTHORIZE,
            Error::AuthorizationExpired | Error::AlreadyCompleted => Failure::REAUTHORIZE,
            // A refreshed token refused again (BearerAuth retries once), or
            // a scope the login did not ask for: only a new login helps.
            Error::TokenRefused { .. } | Error::MissingScope(_) => Failure::REAUTHORIZE,
            // Refused before any request: what was asked cannot be sent.
            Error::InvalidPost(_) | Error::InvalidId(_) | Error::ImageTooLarge { .. } => {
                Failure::USAGE
            }
            Error::Forbidden { .. } => Failure::MEDIUM,
            Error::Api { .. }
            | Error::UnexpectedResponse { .. }
            | Error::MalformedBody(_)
            | Error::ResponseTooLarge { .. }
            | Error::MissingCode
            | Error::InvalidCallback(_)
            | Error::ExpiredOnArrival { .. }
            | Error::ImplausibleExpiry { .. } => Failure::MEDIUM,
            Error::InvalidConfig { .. } => Failure::USAGE,
            _ => Failure::OTHER,
        };
        let mut message = chain(&e);
        if let Error::MissingScope(scope) = &e {
            let scopes = medium_oauth::ScopeSet::EMPTY
                .with(medium_oauth::Scope::BasicProfile)
                .with(*scope);
            message.push_str(&format!(
                "; log in again asking for it: `medium-oauth login --scopes {scopes}`"
            ));
        } else if code == Failure::REAUTHORIZE {
            message.push_str("; run `medium-oauth login`");
        }
        Failure::new(code, message)
    }
}

/// `e`, then each of its sources, joined with ": ": the library's `Display`
/// leaves the cause to `source()`, and a user needs what the OS or the HTTP
/// stack said. A source whose text its predecessor already ends with (an
/// error that prints its cause itself) is not repeated.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut message = e.to_string();
    let mut previous = message.clone();
    let mut next = e.source();
    while let Some(cause) = next {
        let text = cause.to_string();
        if !text.is_empty() && !previous.ends_with(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        previous = text;
        next = cause.source();
    }
    message
}

/// `text` with every control character (newlines, escapes) and every
/// bidirectional control turned into a space: a message is one line, and
/// text from the network must not move the terminal's cursor, forge another
/// line, or reorder what is shown (a URL that reads as another address).
pub fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if unsafe_on_a_terminal(c) { ' ' } else { c })
        .collect()
}

/// Control characters (C0, DEL, C1), and the Unicode format characters that
/// reorder text on terminals that support bidirectional text: the
/// embeddings and overrides U+202A to U+202E, the isolates U+2066 to U+2069
/// and the marks U+200E, U+200F and U+061C ("Trojan Source").
pub fn unsafe_on_a_terminal(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}'
        )
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// An error with an optional cause, to build chains from.
    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);

    impl std::fmt::Display for Layer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Layer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|l| l as _)
        }
    }

    #[test]
    fn the_chain_lists_every_cause_in_order() {
        let e = Layer(
            "could not reach 127.0.0.1: no connection could be made",
            Some(Box::new(Layer(
                "error sending request",
                Some(Box::new(Layer("Connection refused (os error 111)", None))),
            ))),
        );
        assert_eq!(
            chain(&e),
            "could not reach 127.0.0.1: no connection could be made: \
             error sending request: Connection refused (os error 111)"
        );
    }

    #[test]
    fn a_cause_already_printed_by_its_parent_is_not_repeated() {
        let e = Layer(
            "tcp connect error: Connection refused",
            Some(Box::new(Layer("Connection refused", None))),
        );
        assert_eq!(chain(&e), "tcp connect error: Connection refused");
    }

    #[test]
    fn a_store_error_names_the_os_error() {
        let io = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "Permission denied");
        let e = Error::Store {
            path: "/x/credentials.json".into(),
            reason: "cannot read".into(),
            source: Some(Arc::new(io)),
        };
        let failure = Failure::from(e);
        assert_eq!(failure.code, Failure::OTHER);
        assert_eq!(
            failure.message,
            "token store /x/credentials.json: cannot read: Permission denied"
        );
    }

    #[test]
    fn tokens_the_server_should_not_have_issued_are_its_fault() {
        let at = std::time::SystemTime::UNIX_EPOCH;
        for e in [
            Error::ExpiredOnArrival { expires_at: at },
            Error::ImplausibleExpiry { expires_at: at },
        ] {
            assert_eq!(Failure::from(e).code, Failure::MEDIUM);
        }
        assert_eq!(
            Failure::from(Error::PolledAfterCompletion).code,
            Failure::OTHER
        );
    }

    /// Regression: a wrong client secret said "run `medium-oauth login`",
    /// which cannot help, under the re-authorization code.
    #[test]
    fn an_invalid_client_has_its_own_code_and_no_login_advice() {
        let e = Error::InvalidClient {
            status: 401,
            errors: vec![medium_oauth::MediumError {
                message: "Client secret was invalid.".into(),
                code: 6026,
            }],
        };
        let failure = Failure::from_server(e, "127.0.0.1");
        assert_eq!(failure.code, Failure::INVALID_CLIENT);
        assert!(!failure.message.contains("login"), "{}", failure.message);
        assert!(
            failure.message.starts_with("127.0.0.1: "),
            "{}",
            failure.message
        );
        assert!(!failure.message.contains("Medium"), "{}", failure.message);
    }

    /// The REST API's refusals: a missing scope and a token refused after
    /// a refresh need a login (the scope one naming the login that grants
    /// it), a publication's refusal is the server's answer, and a post or id
    /// refused before sending is a usage error.
    #[test]
    fn rest_errors_have_the_codes_of_their_cures() {
        let scope = Failure::from(Error::MissingScope(medium_oauth::Scope::PublishPost));
        assert_eq!(scope.code, Failure::REAUTHORIZE);
        assert!(
            scope
                .message
                .ends_with("`medium-oauth login --scopes basicProfile,publishPost`"),
            "{}",
            scope.message
        );
        let basic = Failure::from(Error::MissingScope(medium_oauth::Scope::BasicProfile));
        assert!(
            basic.message.ends_with("--scopes basicProfile`"),
            "{}",
            basic.message
        );

        let refused = Failure::from_server(Error::TokenRefused { errors: vec![] }, "h");
        assert_eq!(refused.code, Failure::REAUTHORIZE);
        assert!(refused.message.starts_with("h: "), "{}", refused.message);

        let forbidden = Failure::from_server(
            Error::Forbidden {
                reason: medium_oauth::Refusal::Publication,
                errors: vec![],
            },
            "127.0.0.1",
        );
        assert_eq!(forbidden.code, Failure::MEDIUM);
        assert!(
            forbidden
                .message
                .starts_with("127.0.0.1: the publication refused the post"),
            "{}",
            forbidden.message
        );

        let post = Error::from(medium_oauth::api::InvalidPost::TooManyTags { count: 4 });
        assert_eq!(Failure::from(post).code, Failure::USAGE);
    }

    #[test]
    fn a_busy_store_names_the_file() {
        let e = Error::StoreBusy {
            path: "/x/credentials.json".into(),
            waited: medium_oauth::LOCK_WAIT,
        };
        let failure = Failure::from(e);
        assert!(
            failure.message.contains("/x/credentials.json"),
            "{}",
            failure.message
        );
        assert!(failure.message.contains("locked by another process"));
    }

    #[test]
    fn control_characters_become_spaces() {
        assert_eq!(
            printable("bad\x1b[2J\r\nerror: forged\u{9b}31m\tend"),
            "bad [2J  error: forged 31m end"
        );
        assert_eq!(printable("plain: text (ü)"), "plain: text (ü)");
    }
}
