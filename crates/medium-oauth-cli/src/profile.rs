//! The credentials file as this tool keeps it: one typed profile (the app
//! and servers a refresh needs, who logged in, and the token), written
//! whole under the store's lock.

use std::path::PathBuf;

use clap::Args;
use medium_oauth::api::User;
use medium_oauth::{Document, FileTokenStore, Token};
use serde::{Deserialize, Serialize};

use crate::failure::Failure;

/// The store of one profile.
pub type ProfileStore = FileTokenStore<Profile>;

/// What is kept beside the token.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Profile {
    /// The app and servers: what `token` needs to refresh without options.
    #[serde(default)]
    pub client: StoredClient,
    /// Who logged in, when the token has `basicProfile`. Only ever shown:
    /// one of another shape (an earlier version kept `/me`'s `data`
    /// verbatim) is ignored rather than making the whole file unreadable.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_user"
    )]
    pub user: Option<User>,
}

/// The stored user if it has the shape of one, else `None`.
fn lenient_user<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<User>, D::Error> {
    let value = serde_json::Value::deserialize(d)?;
    Ok(serde_json::from_value(value).ok())
}

/// The app and the servers a login was made with.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StoredClient {
    /// The app's client id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The app's client secret, unless the login said `--no-store-secret`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<StoredSecret>,
    /// The authorization server, when not Medium's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorize_url: Option<String>,
    /// The API server, when not Medium's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_url: Option<String>,
    /// The login was to the in-process emulator of `login --emulator`,
    /// which stopped when the login ended.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub in_process_emulator: bool,
}

impl StoredClient {
    /// The API server, as people read it.
    pub fn api_server(&self) -> &str {
        self.api_url
            .as_deref()
            .unwrap_or(medium_oauth2_api::servers::API_SERVER)
    }

    /// Whether a login with `other` is to the same server as this one. Two
    /// in-process emulators are the same (each run has a new port).
    pub fn same_server(&self, other: &StoredClient) -> bool {
        let norm = |url: &str| url.trim_end_matches('/').to_ascii_lowercase();
        (self.in_process_emulator && other.in_process_emulator)
            || norm(self.api_server()) == norm(other.api_server())
    }
}

/// A client secret as stored: in the clear in the file (which is `0600`,
/// as gcloud keeps its credentials), never in `Debug`.
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StoredSecret(String);

impl StoredSecret {
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for StoredSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoredSecret([redacted])")
    }
}

/// A whole profile: the token and what is kept beside it.
pub type ProfileDocument = Document<Profile>;

/// Profile names: letters, digits, `-` and `_`, as a file name can carry
/// anywhere.
const MAX_PROFILE_NAME_CHARS: usize = 64;

/// The default profile's name.
pub const DEFAULT_PROFILE: &str = "default";

/// The profile `login --emulator` uses unless told otherwise, so a login to
/// an emulator never replaces a real one.
pub const EMULATOR_PROFILE: &str = "emulator";

/// Which credentials file: every command has these two options.
#[derive(Args, Debug, Clone)]
pub struct StoreArgs {
    /// A named login, kept in its own file beside the default one
    /// (`NAME-credentials.json`) [default: "default", or "emulator" for
    /// `login --emulator`].
    #[arg(long, value_name = "NAME", conflicts_with = "credentials")]
    profile: Option<String>,
    /// Credentials file [default: the platform config directory's
    /// medium-oauth/credentials.json, or NAME-credentials.json for a
    /// profile].
    #[arg(long, value_name = "PATH")]
    credentials: Option<PathBuf>,
}

impl StoreArgs {
    /// Whether a profile or a file was chosen.
    pub fn chosen(&self) -> bool {
        self.profile.is_some() || self.credentials.is_some()
    }

    /// The credentials file, for the profile named, else `default_profile`.
    pub fn path(&self, default_profile: &str) -> Result<PathBuf, Failure> {
        if let Some(path) = &self.credentials {
            return Ok(path.clone());
        }
        let name = self.profile.as_deref().unwrap_or(default_profile);
        let valid = !name.is_empty()
            && name.chars().count() <= MAX_PROFILE_NAME_CHARS
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !valid {
            return Err(Failure::usage(format!(
                "--profile: {:?} is not a profile name (letters, digits, - and _, at most \
                 {MAX_PROFILE_NAME_CHARS})",
                crate::failure::printable(name)
            )));
        }
        let file = if name == DEFAULT_PROFILE {
            "credentials.json".to_owned()
        } else {
            format!("{name}-credentials.json")
        };
        dirs::config_dir()
            .map(|dir| dir.join("medium-oauth").join(file))
            .ok_or_else(|| {
                Failure::usage("no config directory is known here; pass --credentials PATH")
            })
    }

    /// The store, its file made private first (with a warning, as ssh
    /// gives) if others could read it.
    pub fn open(&self, default_profile: &str) -> Result<ProfileStore, Failure> {
        let store = ProfileStore::at(self.path(default_profile)?);
        if let Some(mode) = store.tighten_permissions()? {
            crate::warn(format!(
                "{} was readable by other users (mode {mode:04o}); made it private (0600). \
                 If others could read it, log in again to replace its tokens.",
                store.path().display()
            ));
        }
        Ok(store)
    }
}

/// Longest field of a user kept or shown, in bytes. Medium's are tens of
/// bytes (a profile or avatar URL, a hundred or two); a server sending more
/// is broken or hostile, and a user kept whole could push the credentials
/// file past what the store reads back.
pub const MAX_USER_FIELD_BYTES: usize = 2048;

/// `user` when every field is of a plausible length; otherwise `None`, with
/// a warning. What is kept is still the server's text: printed only
/// through [`printable`](crate::failure::printable).
pub fn plausible_user(user: User) -> Option<User> {
    let fields = [
        &user.id,
        &user.username,
        &user.name,
        &user.url,
        &user.image_url,
    ];
    if fields.iter().all(|f| f.len() <= MAX_USER_FIELD_BYTES) {
        Some(user)
    } else {
        crate::warn(format!(
            "the server described the user with a field over {MAX_USER_FIELD_BYTES} bytes; \
             not kept or shown"
        ));
        None
    }
}

/// The profile and its token, or "not logged in".
pub fn logged_in(store: &ProfileStore) -> Result<(Profile, Token), Failure> {
    match store.read()? {
        Some(Document {
            token: Some(token),
            extra,
            ..
        }) => Ok((extra, token)),
        _ => Err(Failure::new(
            Failure::REAUTHORIZE,
            format!(
                "not logged in (no credentials at {}); run `medium-oauth login`",
                store.path().display()
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The client secret kept in the profile never shows in `Debug`, nor
    /// does the token, whatever holds them.
    #[test]
    fn debug_of_a_profile_shows_no_secret() {
        let token = Token::new(
            medium_oauth::AccessToken::new("access-s3cret"),
            Some(medium_oauth::RefreshToken::new("refresh-s3cret")),
            None,
            Default::default(),
        );
        let profile = Profile {
            client: StoredClient {
                client_id: Some("app".into()),
                client_secret: Some(StoredSecret::new("client-s3cret")),
                ..StoredClient::default()
            },
            user: None,
        };
        let document = ProfileDocument::new(Some(token), profile.clone());
        for shown in [
            format!("{profile:?}"),
            format!("{document:?}"),
            format!("{document:#?}"),
        ] {
            assert!(!shown.contains("s3cret"), "{shown}");
            assert!(shown.contains("redacted"), "{shown}");
        }
        // It is in the file, which is 0600: that is where it is kept.
        let json = serde_json::to_string(&profile).unwrap();
        assert!(json.contains("client-s3cret"));
    }
}
