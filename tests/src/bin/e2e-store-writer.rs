//! Saves token after token to one file as fast as it can, until killed.
//! Token `n` has access token `access-n`, refresh token `refresh-n` and
//! `expires_at` n ms, so a reader can tell a whole record from a torn one.
//!
//! Usage: e2e-store-writer CREDENTIALS_FILE

use std::time::{Duration, UNIX_EPOCH};

use medium_oauth::{AccessToken, FileTokenStore, GrantedScopes, RefreshToken, Token};

fn main() {
    let path = std::env::args()
        .nth(1)
        .expect("usage: e2e-store-writer FILE");
    let store = FileTokenStore::new(path);
    for n in 1u64.. {
        let token = Token::new(
            AccessToken::new(format!("access-{n}")),
            Some(RefreshToken::new(format!("refresh-{n}"))),
            Some(UNIX_EPOCH + Duration::from_millis(n)),
            GrantedScopes::default(),
        );
        if let Err(e) = store.save_blocking(&token) {
            eprintln!("save {n} failed: {e}");
            std::process::exit(1);
        }
        if n == 1 {
            println!("started");
        }
    }
}
