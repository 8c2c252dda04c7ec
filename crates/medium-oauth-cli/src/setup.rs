//! What `login` and `token` share: where the client id and secret come
//! from, and the client built from them.

use std::io::Read;
use std::path::PathBuf;

use clap::Args;
use medium_oauth::{ClientId, ClientSecret, OAuthClient, OAuthClientBuilder};

use crate::failure::Failure;
use crate::profile::{StoredClient, StoredSecret};

/// The environment variable that may hold the client id.
pub const CLIENT_ID_VAR: &str = "MEDIUM_CLIENT_ID";
/// The environment variable that may hold the client secret.
pub const CLIENT_SECRET_VAR: &str = "MEDIUM_CLIENT_SECRET";

/// Largest client secret file read, in bytes: secrets are tens of bytes,
/// and a wrong path (a log, a disk image) must not be read whole.
const MAX_SECRET_FILE_BYTES: u64 = 4096;

/// The app's credentials and the API server.
#[derive(Args, Clone)]
pub struct ClientArgs {
    /// The app's client id [env: MEDIUM_CLIENT_ID] [default: the one stored
    /// at login].
    #[arg(long, value_name = "ID")]
    client_id: Option<String>,
    /// The app's client secret [env: MEDIUM_CLIENT_SECRET] [default: the one
    /// stored at login]. Other users can read it in the process list: prefer
    /// --client-secret-file or the environment.
    #[arg(long, value_name = "SECRET", conflicts_with = "client_secret_file")]
    client_secret: Option<String>,
    /// Read the client secret from PATH (`-`: standard input).
    #[arg(long, value_name = "PATH")]
    client_secret_file: Option<PathBuf>,
    /// Base URL of the API server [default: Medium's, or the one stored at
    /// login].
    #[arg(long, value_name = "URL")]
    pub api_url: Option<String>,
}

/// Without the secret given as an option, which `Debug` would print.
impl std::fmt::Debug for ClientArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientArgs")
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "[redacted]"),
            )
            .field("client_secret_file", &self.client_secret_file)
            .field("api_url", &self.api_url)
            .finish()
    }
}

/// Where a credential came from, to name it in messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Option,
    File,
    Environment,
    Stored,
}

/// The client id and secret to use, and where each came from.
#[derive(Debug)]
pub struct Credentials {
    pub id: Option<(String, Source)>,
    pub secret: Option<(StoredSecret, Source)>,
}

/// An environment variable: `None` when unset; an error naming it when set
/// but empty or not UTF-8, which would otherwise be a puzzling failure much
/// later.
fn env_var(name: &str) -> Result<Option<String>, Failure> {
    match std::env::var(name) {
        Ok(value) if value.trim().is_empty() => Err(Failure::usage(format!(
            "{name} is set but empty; unset it or give it a value"
        ))),
        Ok(value) => Ok(Some(value)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => {
            Err(Failure::usage(format!("{name} is not valid UTF-8")))
        }
    }
}

fn read_secret_file(path: &PathBuf) -> Result<String, Failure> {
    let shown = if path.as_os_str() == "-" {
        "standard input".to_owned()
    } else {
        path.display().to_string()
    };
    let mut text = String::new();
    let read = if path.as_os_str() == "-" {
        std::io::stdin()
            .take(MAX_SECRET_FILE_BYTES + 1)
            .read_to_string(&mut text)
    } else {
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_SECRET_FILE_BYTES + 1).read_to_string(&mut text))
    };
    read.map_err(|e| Failure::usage(format!("--client-secret-file: cannot read {shown}: {e}")))?;
    if text.len() as u64 > MAX_SECRET_FILE_BYTES {
        return Err(Failure::usage(format!(
            "--client-secret-file: {shown} is over {MAX_SECRET_FILE_BYTES} bytes; \
             it should hold the client secret alone"
        )));
    }
    let secret = text.trim();
    if secret.is_empty() {
        return Err(Failure::usage(format!(
            "--client-secret-file: {shown} is empty"
        )));
    }
    Ok(secret.to_owned())
}

impl ClientArgs {
    /// The credentials from the options, the environment and then
    /// `stored`, first found first. Warns when the secret was given on the
    /// command line.
    pub fn credentials(&self, stored: Option<&StoredClient>) -> Result<Credentials, Failure> {
        let id = match (&self.client_id, env_var(CLIENT_ID_VAR)?) {
            (Some(id), _) => Some((id.clone(), Source::Option)),
            (None, Some(id)) => Some((id, Source::Environment)),
            (None, None) => stored
                .and_then(|s| s.client_id.clone())
                .map(|id| (id, Source::Stored)),
        };
        if let Some((id, source)) = &id
            && id.trim().is_empty()
        {
            return Err(Failure::usage(format!(
                "the client id {} is empty",
                describe(*source)
            )));
        }
        let env_secret = env_var(CLIENT_SECRET_VAR)?;
        let secret = if let Some(secret) = &self.client_secret {
            crate::warn(
                "--client-secret is visible to other users of this machine in the process \
                 list; prefer --client-secret-file or MEDIUM_CLIENT_SECRET",
            );
            if secret.trim().is_empty() {
                return Err(Failure::usage("--client-secret is empty"));
            }
            Some((StoredSecret::new(secret.clone()), Source::Option))
        } else if let Some(path) = &self.client_secret_file {
            Some((StoredSecret::new(read_secret_file(path)?), Source::File))
        } else if let Some(secret) = env_secret {
            Some((StoredSecret::new(secret), Source::Environment))
        } else {
            stored
                .and_then(|s| s.client_secret.clone())
                .map(|secret| (secret, Source::Stored))
        };
        Ok(Credentials { id, secret })
    }
}

/// Where a credential came from, for a message.
pub fn describe(source: Source) -> &'static str {
    match source {
        Source::Option => "given as an option",
        Source::File => "read from --client-secret-file",
        Source::Environment => "from the environment",
        Source::Stored => "stored at login",
    }
}

/// A client for the app, with the servers set where given.
pub fn client_builder(
    id: &str,
    secret: &StoredSecret,
    redirect_uri: String,
    servers: &StoredClient,
) -> OAuthClientBuilder {
    let mut builder = OAuthClient::builder(
        ClientId::new(id),
        ClientSecret::new(secret.expose_secret()),
        redirect_uri,
    );
    if let Some(url) = &servers.authorize_url {
        builder = builder.authorization_server(url.clone());
    }
    if let Some(url) = &servers.api_url {
        builder = builder.api_server(url.clone());
    }
    builder
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser, Debug)]
    struct Wrapper {
        #[command(flatten)]
        client: ClientArgs,
    }

    /// Regression: the options derived `Debug`, which printed
    /// `--client-secret` in the clear for whoever logs or prints them.
    #[test]
    fn debug_of_the_options_hides_the_client_secret() {
        let args =
            Wrapper::parse_from(["x", "--client-id", "app", "--client-secret", "s3cret-v4lue"]);
        let shown = format!("{args:?} {args:#?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("app"), "{shown}");
        assert!(shown.contains("redacted"), "{shown}");
    }
}
