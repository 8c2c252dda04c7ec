//! What the store benches share: a client that never reaches a server.

#![allow(dead_code)] // each bench uses its own part

use medium_oauth::{ClientId, ClientSecret, OAuthClient};

/// The client id the rows are stored under.
pub const CLIENT_ID: &str = "bench-client";

/// A client whose servers are never asked: no token falls due.
pub fn client() -> OAuthClient {
    OAuthClient::builder(
        ClientId::new(CLIENT_ID),
        ClientSecret::new("bench-secret"),
        "http://127.0.0.1:9/callback",
    )
    .authorization_server("http://127.0.0.1:9/m/oauth")
    .api_server("http://127.0.0.1:9/v1")
    .build()
    .expect("a client")
}
