//! Newtypes for every identifier and secret of the flow.
//!
//! Secret types keep their value in a [`secrecy::SecretString`], which is
//! zeroized on drop. They print as `AccessToken([redacted])` in `Debug`, have
//! no `Display`, compare in constant time, and give their value only through
//! the explicitly named `expose_secret`, so a secret in a log line is always a
//! visible decision at the call site.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

/// Declares secret newtypes: `Name, "what it is";`.
macro_rules! secret_types {
    ($( $(#[doc = $doc:literal])* $name:ident; )*) => {$(
        $(#[doc = $doc])*
        #[derive(Clone)]
        pub struct $name(SecretString);

        impl $name {
            /// Wraps a secret value.
            pub fn new(value: impl Into<String>) -> Self {
                Self(SecretString::from(value.into()))
            }

            /// The secret value. Named so that every use is deliberate.
            pub fn expose_secret(&self) -> &str {
                self.0.expose_secret()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "([redacted])"))
            }
        }

        impl PartialEq for $name {
            /// Constant time in the length of the shorter value, so comparing
            /// a guess against a secret leaks nothing through timing.
            fn eq(&self, other: &Self) -> bool {
                self.expose_secret()
                    .as_bytes()
                    .ct_eq(other.expose_secret().as_bytes())
                    .into()
            }
        }

        impl Eq for $name {}
    )*};
}

secret_types! {
    /// The app's client secret, from Medium's settings page.
    ClientSecret;
    /// A one-time authorization code from the callback.
    AuthorizationCode;
    /// The CSRF `state` of one authorization request.
    CsrfState;
    /// A bearer token for Medium's API.
    AccessToken;
    /// A long-lived token that obtains new access tokens.
    RefreshToken;
}

/// The app's client id. Not a secret: it appears in every authorize URL.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ClientId(String);

impl ClientId {
    /// Wraps a client id.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClientId({:?})", self.0)
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl CsrfState {
    /// Bytes of OS randomness in a state: 256 bits, twice the 128 that make
    /// guessing hopeless, at no cost.
    const RANDOM_BYTES: usize = 32;

    /// A fresh state from the operating system's CSPRNG, hex-encoded.
    pub(crate) fn random() -> Result<Self, getrandom::Error> {
        use std::fmt::Write as _;
        let mut bytes = [0u8; Self::RANDOM_BYTES];
        getrandom::getrandom(&mut bytes)?;
        let mut hex = String::with_capacity(Self::RANDOM_BYTES * 2);
        for byte in bytes {
            // Writing to a String cannot fail.
            let _ = write!(hex, "{byte:02x}");
        }
        Ok(Self::new(hex))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let token = AccessToken::new("abc123secret");
        assert_eq!(format!("{token:?}"), "AccessToken([redacted])");
        assert_eq!(
            format!("{:#?}", RefreshToken::new("x")),
            "RefreshToken([redacted])"
        );
        assert_eq!(token.expose_secret(), "abc123secret");
        assert_eq!(format!("{:?}", ClientId::new("demo")), "ClientId(\"demo\")");
    }

    /// The client id is not a secret: it is shown and sent as it is.
    #[test]
    fn a_client_id_is_shown_as_it_is() {
        let id = ClientId::new("demo-client");
        assert_eq!(id.as_str(), "demo-client");
        assert_eq!(id.to_string(), "demo-client");
    }

    #[test]
    fn equality_compares_values() {
        assert_eq!(CsrfState::new("a"), CsrfState::new("a"));
        assert_ne!(CsrfState::new("a"), CsrfState::new("ab"));
        assert_ne!(CsrfState::new("ab"), CsrfState::new("ac"));
    }

    #[test]
    fn random_states_are_long_and_distinct() {
        let a = CsrfState::random().unwrap();
        let b = CsrfState::random().unwrap();
        assert_eq!(a.expose_secret().len(), 64);
        assert!(a.expose_secret().bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
