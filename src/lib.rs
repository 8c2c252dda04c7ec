//! The raw Medium OAuth2 client, generated at build time by progenitor from the
//! bundled `medium-oauth2-openapi.yml`.
//!
//! Most programs want the `medium-oauth` crate instead, which adds typed
//! scopes, secret types, the CSRF-checked authorization-code flow and
//! refreshing token sources on top of this one. The generated code is
//! committed, for reading, in `generated/medium_oauth2_api.rs`.
//!
//! ```
//! use medium_oauth2_api::{operations, servers};
//!
//! assert_eq!(servers::API_SERVER, "https://api.medium.com/v1");
//! assert_eq!(operations::refresh_access_token::PATH, "/tokens/refresh");
//! let query = operations::authorize_user::Query {
//!     client_id: "id",
//!     scope: "basicProfile",
//!     state: "s",
//!     redirect_uri: "http://127.0.0.1:8080/cb",
//! };
//! assert!(query.pairs().contains(&("response_type", "code")));
//! ```
//!
//! Build the generated [`Client`] with [`Client::new_with_client`] over
//! [`tls::client_builder`]. This crate compiles reqwest without a crypto
//! provider of its own, so [`Client::new`], which builds reqwest's default
//! TLS set-up, panics unless the program installed a process default or
//! turned on reqwest's `rustls` feature (see [`tls`]).

#[allow(missing_docs, clippy::all, rustdoc::bare_urls)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/medium_oauth2_api.rs"));
}
pub use generated::*;

mod capped;
pub use capped::{BodyTooLarge, MAX_RESPONSE_BYTES, execute_capped};
pub mod tls;

#[cfg(test)]
mod tests {
    #[test]
    fn compiled_code_is_the_committed_snapshot() {
        let built = include_str!(concat!(env!("OUT_DIR"), "/medium_oauth2_api.rs"));
        let committed = include_str!("../generated/medium_oauth2_api.rs");
        assert!(
            built == committed,
            "generated/ differs from what build.rs produced; run `cargo xtask codegen`"
        );
    }
}
