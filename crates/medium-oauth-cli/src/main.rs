//! `medium-oauth`: get and keep Medium tokens without writing code.

mod commands;
mod failure;
mod login;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::failure::Failure;

const EXIT_CODES: &str = "\
Exit codes:
  0    success
  1    other failure (files, the local listener)
  2    usage: bad or missing options, missing client credentials
  3    the user denied the authorization
  4    the callback's state did not match (possible CSRF)
  5    Medium answered with an error or an unexpected response
  6    network: Medium could not be reached, or the browser never came back
  7    re-authorization required: no credentials, or the grant was revoked
  130  cancelled with Ctrl-C";

/// Log in to Medium through the browser, print fresh tokens for scripts, run
/// the local emulator.
#[derive(Parser)]
#[command(name = "medium-oauth", version, after_help = EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Authorize in the browser and save the credentials.
    Login(login::LoginArgs),
    /// Print a valid access token alone on stdout, refreshing it when due.
    Token(commands::TokenArgs),
    /// Show who is logged in, the scopes and the expiry (never secrets).
    Status(Common),
    /// Remove the stored credentials.
    Logout(Common),
    /// Run the local Medium emulator until Ctrl-C.
    Emulator(medium_oauth_emulator::Args),
}

/// Options every command that talks to Medium shares.
#[derive(Args, Clone, Debug)]
pub struct Common {
    /// The app's client id.
    #[arg(long, env = "MEDIUM_CLIENT_ID")]
    client_id: Option<String>,
    /// The app's client secret.
    #[arg(long, env = "MEDIUM_CLIENT_SECRET", hide_env_values = true)]
    client_secret: Option<String>,
    /// Base URL of the authorization server [default: Medium's].
    #[arg(long, value_name = "URL")]
    authorize_url: Option<String>,
    /// Base URL of the API server [default: Medium's].
    #[arg(long, value_name = "URL")]
    api_url: Option<String>,
    /// Credentials file [default: the platform config directory's
    /// medium-oauth/credentials.json].
    #[arg(long, value_name = "PATH")]
    credentials: Option<PathBuf>,
}

impl Common {
    fn credentials_path(&self) -> Result<PathBuf, Failure> {
        if let Some(path) = &self.credentials {
            return Ok(path.clone());
        }
        dirs::config_dir()
            .map(|dir| dir.join("medium-oauth").join("credentials.json"))
            .ok_or_else(|| {
                Failure::usage("no config directory is known here; pass --credentials PATH")
            })
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Login(args) => login::run(args).await,
        Command::Token(args) => commands::token(args).await,
        Command::Status(common) => commands::status(&common),
        Command::Logout(common) => commands::logout(&common),
        Command::Emulator(args) => medium_oauth_emulator::run(args)
            .await
            .map_err(Failure::other),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {}", failure::printable(&failure.message));
            std::process::ExitCode::from(failure.code)
        }
    }
}
