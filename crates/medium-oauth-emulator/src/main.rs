//! `medium-oauth-emulator`: runs the emulator on its own. The `medium-oauth`
//! command-line tool offers the same as `medium-oauth emulator`.

use clap::Parser;

/// A local HTTP server that behaves like Medium's OAuth2 service.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(flatten)]
    args: medium_oauth_emulator::Args,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match medium_oauth_emulator::run(cli.args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            std::process::ExitCode::FAILURE
        }
    }
}
