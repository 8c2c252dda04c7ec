//! One process of a fleet sharing a credentials file: prints `ready`, waits
//! for a line on stdin (so the parent can release several at once), asks a
//! refreshing token source for a token, and prints it.
//!
//! Usage: e2e-token-child API_SERVER CREDENTIALS_FILE

use std::io::BufRead;
use std::sync::Arc;
use std::time::Duration;

use medium_oauth::{
    ClientId, ClientSecret, FileTokenStore, OAuthClient, RefreshingTokenSource, TokenSource,
};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let [_, api_server, path] = args.as_slice() else {
        eprintln!("usage: e2e-token-child API_SERVER CREDENTIALS_FILE");
        return std::process::ExitCode::from(2);
    };
    let client = OAuthClient::builder(
        ClientId::new("demo-client"),
        ClientSecret::new("demo-secret"),
        "http://127.0.0.1:9/callback",
    )
    .api_server(api_server)
    .build()
    .expect("client");
    let source = RefreshingTokenSource::builder(client, Arc::new(FileTokenStore::new(path)))
        .jitter(Duration::ZERO)
        .build()
        .await;
    // Tell the parent this process is ready, then wait to be released.
    println!("ready");
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    let result = match source {
        Ok(source) => source.token().await,
        Err(e) => Err(e),
    };
    match result {
        Ok(token) => {
            // The test compares tokens across processes; printing one is the
            // point of this helper.
            println!("{}", token.access_token().expose_secret());
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            println!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
