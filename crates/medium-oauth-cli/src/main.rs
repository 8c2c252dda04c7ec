//! `medium-oauth`: get and keep Medium tokens without writing code.

/// `println!` for this tool: standard output closed by its reader ends the
/// process as SIGPIPE would, instead of panicking (see [`write_out`]).
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::write_out(format_args!("{}\n", format_args!($($arg)*)))
    };
}

mod callback;
mod commands;
mod failure;
mod input;
mod login;
mod post;
mod profile;
mod publications;
mod raw;
mod session;
mod setup;
mod wire;

use clap::{CommandFactory, Parser, Subcommand};

use crate::failure::Failure;

const EXIT_CODES: &str = "\
Exit codes:
  0    success
  1    other failure (files, the local listener)
  2    usage: bad or missing options, missing client credentials
  3    the user denied the authorization
  4    the callback's state did not match (possible CSRF)
  5    the server answered with an error or an unexpected response (for `api`:
       any status but 2xx; for `post`: a publication refusing the post)
  6    network: the server could not be reached, or the browser never came back
  7    re-authorization required: no credentials, the grant was revoked, or
       the login lacks a scope the command needs (nothing is sent)
  8    the server refused the client id or secret: fix them, logging in again cannot help
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
    /// Show who is logged in, the scopes and the expiry (never secrets), and
    /// check the token with the server.
    Status(commands::StatusArgs),
    /// Remove the stored credentials.
    Logout(commands::LogoutArgs),
    /// Publish a markdown file as a post (title from its `# heading`) and
    /// print the post's URL.
    Post(post::PostArgs),
    /// List the user's publications and their role in each (editor,
    /// writer).
    Publications(publications::PublicationsArgs),
    /// Send an authenticated request to a path of the API server and print
    /// the response, e.g. `medium-oauth api GET /me`.
    Api(raw::ApiArgs),
    /// Run the local Medium emulator until Ctrl-C.
    Emulator(medium_oauth_emulator::Args),
    /// Print a shell completion script, e.g.
    /// `medium-oauth completions bash > ~/.local/share/bash-completion/completions/medium-oauth`.
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Login(args) => login::run(args).await,
        Command::Token(args) => commands::token(args).await,
        Command::Status(args) => commands::status(args).await,
        Command::Logout(args) => commands::logout(args).await,
        Command::Post(args) => post::run(args).await,
        Command::Publications(args) => publications::run(args).await,
        Command::Api(args) => raw::run(args).await,
        Command::Emulator(args) => medium_oauth_emulator::run(args)
            .await
            .map_err(Failure::other),
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "medium-oauth", &mut script);
            write_out(format_args!("{}", String::from_utf8_lossy(&script)));
            Ok(())
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {}", failure::printable(&failure.message));
            std::process::ExitCode::from(failure.code)
        }
    }
}

/// Writes to standard output and flushes. When the reader has gone away
/// (`| head -1`), the process ends as Unix tools end, by SIGPIPE (Rust
/// ignores the signal, and `println!` would panic); any other failure to
/// write is exit 1 with a message.
pub fn write_out(text: std::fmt::Arguments<'_>) {
    use std::io::Write;
    write_stdout(|out| out.write_fmt(text));
}

/// [`write_out`] for bytes that may not be text (a response body as it
/// came).
pub fn write_out_bytes(bytes: &[u8]) {
    use std::io::Write;
    write_stdout(|out| out.write_all(bytes));
}

fn write_stdout(write: impl FnOnce(&mut std::io::StdoutLock<'static>) -> std::io::Result<()>) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let Err(e) = write(&mut stdout).and_then(|()| stdout.flush()) else {
        return;
    };
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        #[cfg(unix)]
        // SAFETY: restores the default disposition, then raises the signal
        // in this thread; no handler code of ours runs.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
            libc::raise(libc::SIGPIPE);
        }
    }
    eprintln!("error: cannot write to standard output: {e}");
    std::process::exit(i32::from(Failure::OTHER));
}

/// A warning on stderr, one line, whatever text it carries.
pub fn warn(message: impl AsRef<str>) {
    eprintln!("warning: {}", failure::printable(message.as_ref()));
}
