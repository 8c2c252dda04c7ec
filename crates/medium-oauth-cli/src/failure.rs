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
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        let code = match &e {
            Error::Denied { .. } => Failure::DENIED,
            Error::CsrfMismatch => Failure::STATE_MISMATCH,
            Error::Transport { .. } => Failure::NETWORK,
            e if e.requires_reauthorization() => Failure::REAUTHORIZE,
            Error::AuthorizationExpired | Error::AlreadyCompleted => Failure::REAUTHORIZE,
            Error::Api { .. }
            | Error::UnexpectedResponse { .. }
            | Error::MalformedBody(_)
            | Error::ResponseTooLarge { .. }
            | Error::MissingCode
            | Error::InvalidCallback(_) => Failure::MEDIUM,
            Error::InvalidConfig { .. } => Failure::USAGE,
            _ => Failure::OTHER,
        };
        let mut message = e.to_string();
        if code == Failure::REAUTHORIZE {
            message.push_str("; run `medium-oauth login`");
        }
        Failure::new(code, message)
    }
}
