//! The users the consent page signs in: whoever approves names a username,
//! and each username is its own Medium user. Usernames are case-insensitive,
//! as Medium's handles are: `Alice` signs in as `alice`.
//!
//! A user is made from its username alone, so the same name is the same
//! user (same id) in every emulator, across restarts: a test can log in as
//! `alice` twice, or on two emulators, and find one account. The demo user
//! ([`demo::user`]) is the username `demo`, exactly as before.

use std::collections::HashMap;
use std::sync::Arc;

use medium_oauth2_api::resource::types::User;
use sha2::{Digest, Sha256};

use crate::demo;

/// Longest username accepted, in characters: Medium's own limit on handles.
pub const MAX_USERNAME_CHARS: usize = 30;

/// What a user's id is hashed from, before the username: it keeps the ids
/// the emulator's own, apart from any other SHA-256 of a username.
const USER_ID_DOMAIN: &str = "medium-oauth-emulator user\n";

/// Hex digits in a user id: as many as in Medium's, and in the demo user's
/// ([`demo::USER_ID`]).
const USER_ID_HEX_DIGITS: usize = 35;

/// The username a consent form named, lowercased; or why it cannot be one,
/// as a sentence for the error page (which escapes it).
pub(crate) fn username(raw: &str) -> Result<String, String> {
    if raw.is_empty() {
        return Err("The username is empty.".into());
    }
    // Checked before its length, which is then a count of ASCII bytes; and
    // the one character named is shown escaped (`{:?}`), never raw.
    if let Some(c) = raw
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.')))
    {
        return Err(format!(
            "The username may only hold letters, digits, _ and . (not {c:?})."
        ));
    }
    if raw.len() > MAX_USERNAME_CHARS {
        return Err(format!(
            "The username is too long: {} characters, and at most {MAX_USERNAME_CHARS} are accepted.",
            raw.len()
        ));
    }
    Ok(raw.to_ascii_lowercase())
}

/// A user's id: the first [`USER_ID_HEX_DIGITS`] lowercase hex digits of
/// SHA-256 over [`USER_ID_DOMAIN`] and the (lowercase) username. The demo
/// user keeps its own id, [`demo::USER_ID`].
fn user_id(username: &str) -> String {
    if username == demo::USERNAME {
        return demo::USER_ID.into();
    }
    let digest = Sha256::new()
        .chain_update(USER_ID_DOMAIN)
        .chain_update(username)
        .finalize();
    let mut hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    hex.truncate(USER_ID_HEX_DIGITS);
    hex
}

/// The user `username` (already checked and lowercased) signs in as. Its
/// name, URL and picture follow the demo user's: `alice` is "Alice User",
/// `https://medium.com/@alice`, with `alice.png`.
fn user(username: &str) -> User {
    if username == demo::USERNAME {
        return demo::user();
    }
    let mut chars = username.chars();
    let capitalised: String = chars
        .next()
        .map(|first| first.to_ascii_uppercase())
        .into_iter()
        .chain(chars)
        .collect();
    User {
        id: user_id(username),
        username: username.into(),
        name: format!("{capitalised} User"),
        url: format!("https://medium.com/@{username}"),
        image_url: format!("https://cdn-images-1.medium.com/fit/c/400/400/{username}.png"),
    }
}

/// Refusal of a username not seen before, once [`Users::sign_in`]'s cap is
/// reached.
#[derive(Debug)]
pub(crate) struct TooManyUsers;

/// The users known: the demo user from the start, then everyone who
/// approved a consent, by username.
pub(crate) struct Users {
    by_username: HashMap<String, Arc<User>>,
}

impl Default for Users {
    fn default() -> Self {
        let demo = Arc::new(demo::user());
        Self {
            by_username: HashMap::from([(demo.username.clone(), demo)]),
        }
    }
}

impl Users {
    /// The user `username` (checked and lowercased by [`username`]) signs in
    /// as, made and remembered the first time, unless `max_users` are
    /// already known.
    pub(crate) fn sign_in(
        &mut self,
        username: &str,
        max_users: usize,
    ) -> Result<Arc<User>, TooManyUsers> {
        if let Some(user) = self.by_username.get(username) {
            return Ok(user.clone());
        }
        if self.by_username.len() >= max_users {
            return Err(TooManyUsers);
        }
        let user = Arc::new(user(username));
        self.by_username.insert(username.to_owned(), user.clone());
        Ok(user)
    }

    /// The users known, by username.
    pub(crate) fn to_vec(&self) -> Vec<User> {
        let mut users: Vec<User> = self.by_username.values().map(|u| (**u).clone()).collect();
        users.sort_by(|a, b| a.username.cmp(&b.username));
        users
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_one_to_thirty_letters_digits_underscores_and_dots() {
        assert_eq!(username("Alice_B.2").as_deref(), Ok("alice_b.2"));
        let longest = "a".repeat(MAX_USERNAME_CHARS);
        assert_eq!(username(&longest), Ok(longest.clone()));
        assert_eq!(username("x").as_deref(), Ok("x"));

        assert_eq!(username(""), Err("The username is empty.".into()));
        let err = username(&"a".repeat(MAX_USERNAME_CHARS + 1)).unwrap_err();
        assert!(err.contains("too long: 31 characters"), "{err}");
        for (bad, named) in [
            ("<script>", "'<'"),
            ("a b", "' '"),
            ("a-b", "'-'"),
            ("é", "'é'"),
            ("a\0", r"'\0'"),
            ("@demo", "'@'"),
        ] {
            let err = username(bad).unwrap_err();
            assert!(err.contains(&format!("(not {named})")), "{bad}: {err}");
        }
        // Thirty characters, one of them not allowed: the character is
        // named, not the length.
        let err = username(&format!("{}é", "a".repeat(29))).unwrap_err();
        assert!(err.contains("'é'"), "{err}");
    }

    /// Known values, so the formula cannot drift: ids stored by a test, or
    /// by a service under test, keep meaning the same users.
    #[test]
    fn ids_are_a_domain_separated_sha256_of_the_username() {
        // printf 'medium-oauth-emulator user\nalice' | sha256sum | cut -c1-35
        assert_eq!(user_id("alice"), "00f95c5520903ab8cc3984e78c651edcaf1");
        assert_eq!(user_id("bob"), "0a96762e8a009ab333de12588910fe06f8a");
        assert_eq!(user_id(demo::USERNAME), demo::USER_ID);
        assert_eq!(demo::USER_ID.len(), USER_ID_HEX_DIGITS);
    }

    #[test]
    fn a_user_is_made_from_its_username() {
        let alice = user("alice");
        assert_eq!(alice.id, user_id("alice"));
        assert_eq!(alice.username, "alice");
        assert_eq!(alice.name, "Alice User");
        assert_eq!(alice.url, "https://medium.com/@alice");
        assert_eq!(
            alice.image_url,
            "https://cdn-images-1.medium.com/fit/c/400/400/alice.png"
        );
        assert_eq!(user("_x.1").name, "_x.1 User");
        let demo = user(demo::USERNAME);
        let expected = demo::user();
        assert_eq!(
            (demo.id, demo.username, demo.name, demo.url, demo.image_url),
            (
                expected.id,
                expected.username,
                expected.name,
                expected.url,
                expected.image_url
            )
        );
    }

    #[test]
    fn the_cap_refuses_only_new_users() {
        let mut users = Users::default();
        assert_eq!(users.to_vec().len(), 1, "the demo user is known");
        let alice = users.sign_in("alice", 2).unwrap();
        assert!(Arc::ptr_eq(&alice, &users.sign_in("alice", 2).unwrap()));
        assert!(matches!(users.sign_in("bob", 2), Err(TooManyUsers)));
        // Known users still sign in at the cap, and past it.
        assert!(users.sign_in("alice", 1).is_ok());
        assert!(users.sign_in(demo::USERNAME, 0).is_ok());
        let names: Vec<String> = users.to_vec().into_iter().map(|u| u.username).collect();
        assert_eq!(names, ["alice", "demo"]);
        assert!(users.sign_in("bob", 3).is_ok());
        let names: Vec<String> = users.to_vec().into_iter().map(|u| u.username).collect();
        assert_eq!(names, ["alice", "bob", "demo"]);
    }
}
