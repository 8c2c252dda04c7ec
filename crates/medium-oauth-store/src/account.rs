//! The application's name for a connected Medium account.

use std::fmt;

/// Longest account id, in bytes: ids are primary-key parts and appear in
/// messages.
pub const MAX_ACCOUNT_ID_BYTES: usize = 255;

/// The application's id for one connected account (a user id of its own,
/// or Medium's user id): 1 to [`MAX_ACCOUNT_ID_BYTES`] bytes without
/// control characters. Not a secret: it appears in errors and logs.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId(String);

impl AccountId {
    /// `id`, checked.
    pub fn new(id: impl Into<String>) -> Result<Self, crate::StoreError> {
        let id = id.into();
        if id.is_empty() {
            return Err(crate::StoreError::InvalidAccountId("empty"));
        }
        if id.len() > MAX_ACCOUNT_ID_BYTES {
            return Err(crate::StoreError::InvalidAccountId("longer than 255 bytes"));
        }
        if id.chars().any(char::is_control) {
            return Err(crate::StoreError::InvalidAccountId(
                "holds control characters",
            ));
        }
        Ok(Self(id))
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AccountId({:?})", self.0)
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for AccountId {
    type Err = crate::StoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_non_empty_bounded_and_free_of_control_characters() {
        assert!(AccountId::new("").is_err());
        assert!(AccountId::new("a\u{1b}[2J").is_err());
        assert!(AccountId::new("a\nb").is_err());
        assert!(AccountId::new("é".repeat(128)).is_err());
        assert_eq!(AccountId::new("é".repeat(127)).unwrap().as_str().len(), 254);
        assert_eq!(
            AccountId::new("x".repeat(255)).unwrap().to_string().len(),
            255
        );
        assert_eq!(
            format!("{:?}", AccountId::new("a\"b").unwrap()),
            r#"AccountId("a\"b")"#
        );
    }
}
