//! The raw Medium OAuth2 client, generated at build time by progenitor from the
//! bundled `medium-oauth2-openapi.yml`, and in [`resource`] the raw client of
//! Medium's REST API, generated from `medium-resource-api.yml`.
//!
//! Most programs want the `medium-oauth` crate instead, which adds typed
//! scopes, secret types, the CSRF-checked authorization-code flow and
//! refreshing token sources on top of this one. The generated code is
//! committed, for reading, in `generated/medium_oauth2_api.rs` and
//! `generated/medium_resource_api.rs`.
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
//! The generated [`Client::new`] builds its HTTP client from
//! [`tls::client_builder`] (the code generator rewrites progenitor's body):
//! this crate compiles reqwest without a crypto provider of its own, and
//! the builder carries the one its features chose. To configure the HTTP
//! client, start from [`tls::client_builder`] too and pass the result to
//! [`Client::new_with_client`].

#[allow(missing_docs, clippy::all, rustdoc::bare_urls)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/medium_oauth2_api.rs"));
}
pub use generated::*;

/// The raw client of Medium's REST API (the user, publications, posts and
/// image uploads), generated from `medium-resource-api.yml` the way the OAuth
/// client is generated from the bundled spec.
///
/// [`resource::operations`] holds each call's method, path (for templated
/// paths a builder that refuses the ids that could leave their segment,
/// such as `..` or one holding `\`, and percent-encodes the rest; see
/// [`resource::path_id`]) and scope, by its wire name, and for the image
/// upload the multipart part and its content types.
/// progenitor cannot send multipart bodies, so [`resource::Client`] has no
/// `upload_image` method; the upload's response type,
/// [`resource::types::ImageEnvelope`], is generated all the same.
///
/// ```
/// use medium_oauth2_api::resource::{operations, servers};
///
/// assert_eq!(servers::API_SERVER, "https://api.medium.com/v1");
/// assert_eq!(operations::get_current_user::PATH, "/me");
/// assert_eq!(operations::list_user_publications::SCOPE, "listPublications");
/// assert_eq!(
///     operations::list_user_publications::path("a/b").unwrap(),
///     "/users/a%2Fb/publications"
/// );
/// assert!(operations::list_user_publications::path("..").is_err());
/// assert_eq!(operations::upload_image::part::IMAGE, "image");
/// ```
#[allow(missing_docs, clippy::all, rustdoc::bare_urls)]
pub mod resource {
    include!(concat!(env!("OUT_DIR"), "/medium_resource_api.rs"));
}

mod capped;
pub use capped::{BodyTooLarge, MAX_RESPONSE_BYTES, cap_body, execute_capped};
pub mod tls;

#[cfg(test)]
mod tests {
    /// progenitor's own `new` would panic here: reqwest has no provider.
    #[cfg(any(feature = "ring", feature = "aws-lc-rs"))]
    #[test]
    fn the_generated_client_new_does_not_panic() {
        use super::ClientInfo;
        let client = super::Client::new(super::servers::API_SERVER);
        assert_eq!(client.baseurl(), super::servers::API_SERVER);
    }

    #[test]
    fn compiled_code_is_the_committed_snapshot() {
        let pairs = [
            (
                include_str!(concat!(env!("OUT_DIR"), "/medium_oauth2_api.rs")),
                include_str!("../generated/medium_oauth2_api.rs"),
                "medium_oauth2_api.rs",
            ),
            (
                include_str!(concat!(env!("OUT_DIR"), "/medium_resource_api.rs")),
                include_str!("../generated/medium_resource_api.rs"),
                "medium_resource_api.rs",
            ),
        ];
        for (built, committed, name) in pairs {
            assert!(
                built == committed,
                "generated/{name} differs from what build.rs produced; run `cargo xtask codegen`"
            );
        }
    }
}

#[cfg(test)]
mod resource_tests;
