//! TLS for the HTTP clients: rustls, with a crypto provider chosen at build
//! time rather than reqwest's.
//!
//! reqwest 0.13's `rustls` feature compiles aws-lc-rs, whose C build is the
//! largest single cost of a clean build of a program on this crate. This
//! crate instead turns on reqwest's `rustls-no-provider` and hands every
//! client it builds a finished rustls configuration:
//!
//! - the crypto provider is the process default when the program has
//!   installed one ([`CryptoProvider::install_default`]), and otherwise the
//!   one this crate was built with: *ring* by default, aws-lc-rs with the
//!   `aws-lc-rs` feature (which wins when both are on). Nothing here
//!   installs a process default.
//! - certificates are checked by `rustls-platform-verifier` against the
//!   platform's roots, as reqwest's own rustls set-up does;
//! - TLS 1.2 and 1.3, HTTP/1.1 offered by ALPN (reqwest is built without
//!   HTTP/2 here, and where a program turns it on, these clients still
//!   offer only HTTP/1.1);
//! - reqwest's own TLS settings on the builder are ignored: see
//!   [`client_builder`].
//!
//! Any other `reqwest::Client` in the same program has no provider unless one
//! is installed or reqwest's `rustls` feature is on: building it panics. Start
//! such clients from [`client_builder`] instead.
//!
//! rustls chooses a process default by itself only when exactly one provider
//! is compiled in: where another crate turns on rustls's `aws-lc-rs` beside
//! this crate's `ring`, code relying on that choice (such as
//! `rustls::ClientConfig::builder()`) panics. Install a process default at
//! start-up, or use the `aws-lc-rs` feature alone.
//!
//! [`CryptoProvider::install_default`]: rustls::crypto::CryptoProvider::install_default

use std::sync::Arc;

use rustls::crypto::CryptoProvider;

/// The crypto provider this crate was built with, when it was built with
/// one: `"aws-lc-rs"`, `"ring"`, or `None` with neither feature (then only a
/// process default can serve).
pub const BUILT_IN_PROVIDER: Option<&str> = if cfg!(feature = "aws-lc-rs") {
    Some("aws-lc-rs")
} else if cfg!(feature = "ring") {
    Some("ring")
} else {
    None
};

/// Why no TLS configuration could be made: no crypto provider (built
/// without one and none installed), or the platform's certificate roots
/// could not be loaded.
#[derive(Debug, Clone)]
pub struct TlsError(String);

impl std::fmt::Display for TlsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot set up TLS: {}", self.0)
    }
}

impl std::error::Error for TlsError {}

/// The provider the clients use: the process default if one is installed,
/// else the built-in one.
pub fn crypto_provider() -> Result<Arc<CryptoProvider>, TlsError> {
    if let Some(installed) = CryptoProvider::get_default() {
        return Ok(Arc::clone(installed));
    }
    built_in_provider().ok_or_else(|| {
        TlsError(
            "no rustls crypto provider: enable the `ring` or `aws-lc-rs` feature, or install \
             a process default with CryptoProvider::install_default"
                .to_owned(),
        )
    })
}

fn built_in_provider() -> Option<Arc<CryptoProvider>> {
    #[cfg(feature = "aws-lc-rs")]
    return Some(Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
    #[cfg(all(feature = "ring", not(feature = "aws-lc-rs")))]
    return Some(Arc::new(rustls::crypto::ring::default_provider()));
    #[cfg(not(any(feature = "ring", feature = "aws-lc-rs")))]
    None
}

/// A client configuration as reqwest's `rustls` feature would make it, with
/// [`crypto_provider`]'s provider.
pub fn client_config() -> Result<rustls::ClientConfig, TlsError> {
    let provider = crypto_provider()?;
    let verifier = rustls_platform_verifier::Verifier::new(Arc::clone(&provider))
        .map_err(|e| TlsError(format!("cannot load the platform's certificate roots: {e}")))?;
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(rustls::ALL_VERSIONS)
        .map_err(|e| TlsError(e.to_string()))?
        .dangerous()
        // Not dangerous: the platform verifier checks the chain and the name.
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// A `reqwest::ClientBuilder` with [`client_config`] as its TLS; configure
/// the rest (timeouts, redirects, proxies) as usual. Every client this
/// workspace's crates build starts here.
///
/// The TLS set-up is finished: reqwest ignores its own TLS settings on this
/// builder (`add_root_certificate`, `tls_certs_only`, `identity`,
/// `min_tls_version`, `danger_accept_invalid_certs` and the like), so they
/// can neither turn verification off nor add a root. For a root of your own
/// on Linux and the BSDs, `SSL_CERT_FILE` or `SSL_CERT_DIR` is read with the
/// platform's; otherwise start from [`client_config`] and hand reqwest your
/// changed copy with `reqwest::Client::builder().tls_backend_preconfigured`.
/// HTTP/2 is never negotiated over TLS here (ALPN offers only HTTP/1.1),
/// even where the program turns on reqwest's `http2` feature.
///
/// ```
/// let http = medium_oauth2_api::tls::client_builder()?
///     .redirect(reqwest::redirect::Policy::none())
///     .build()?;
/// let api = medium_oauth2_api::Client::new_with_client(medium_oauth2_api::servers::API_SERVER, http);
/// # let _ = api;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
// The one place a reqwest client starts without this module's TLS set-up
// (clippy.toml forbids it everywhere else).
#[allow(clippy::disallowed_methods)]
pub fn client_builder() -> Result<reqwest::ClientBuilder, TlsError> {
    Ok(reqwest::Client::builder().tls_backend_preconfigured(client_config()?))
}

#[cfg(test)]
// Built without a provider, only the first test runs.
#[cfg_attr(
    not(any(feature = "ring", feature = "aws-lc-rs")),
    allow(dead_code, unused_imports)
)]
mod tests {
    use super::*;

    #[test]
    fn a_tls_error_says_what_could_not_be_set_up_and_why() {
        let e = TlsError("no rustls crypto provider".to_owned());
        assert_eq!(
            e.to_string(),
            "cannot set up TLS: no rustls crypto provider"
        );
    }

    use std::io::{Read, Write};
    use std::net::TcpListener;

    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    /// A self-signed certificate for 127.0.0.1 and its key, made for this
    /// test only (`openssl req -x509 -newkey ec ... -days 36500`, not a CA, for
    /// server authentication): no platform trusts its issuer.
    const SELF_SIGNED_CERT: &str = r"-----BEGIN CERTIFICATE-----
MIIBsTCCAVegAwIBAgIUeySPTll6fHKRSFSmaSpncRZJ0yUwCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJMTI3LjAuMC4xMCAXDTI2MTEyOTA2MjUwN1oYDzIxMjYxMTA1
MDYyNTA3WjAUMRIwEAYDVQQDDAkxMjcuMC4wLjEwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAASBh78KLbYdHtOV1EU+A/oUpmxdn+tTaZ7g7DjIXRgQOv0CAooKtJAQ
H07/8qLnkfktnCylsZuLyQdq8QhA5st3o4GEMIGBMB0GA1UdDgQWBBRiSGVvyyiv
n73cGC2YEfwcilvxZTAfBgNVHSMEGDAWgBRiSGVvyyivn73cGC2YEfwcilvxZTAP
BgNVHREECDAGhwR/AAABMAwGA1UdEwEB/wQCMAAwCwYDVR0PBAQDAgeAMBMGA1Ud
JQQMMAoGCCsGAQUFBwMBMAoGCCqGSM49BAMCA0gAMEUCIQCdZxAK6wagtJz4lJ7l
kwsjxdpGhprqgP8M+TqA5jRg7QIgVm38H2WRo/kR8i8TUQ9Ta5XVNTcexJATyWaG
BhEtR+M=
-----END CERTIFICATE-----";
    const SELF_SIGNED_KEY: &str = r"-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgNfXqWIM7sLz3LnEI
9AGYWo/dobswA8xQdTyL++Ago4ShRANCAASBh78KLbYdHtOV1EU+A/oUpmxdn+tT
aZ7g7DjIXRgQOv0CAooKtJAQH07/8qLnkfktnCylsZuLyQdq8QhA5st3
-----END PRIVATE KEY-----";

    /// Built without a provider and with none installed, making a client
    /// is an error the caller can report, not reqwest's panic.
    #[test]
    #[cfg(not(any(feature = "ring", feature = "aws-lc-rs")))]
    fn without_a_provider_a_client_is_an_error_not_a_panic() {
        assert_eq!(BUILT_IN_PROVIDER, None);
        let e = client_builder().unwrap_err();
        assert!(e.to_string().contains("no rustls crypto provider"), "{e}");
    }

    #[test]
    #[cfg(any(feature = "ring", feature = "aws-lc-rs"))]
    fn the_built_in_provider_is_the_features_choice() {
        let expected = if cfg!(feature = "aws-lc-rs") {
            "aws-lc-rs"
        } else {
            "ring"
        };
        assert_eq!(BUILT_IN_PROVIDER, Some(expected));
        let provider = built_in_provider().unwrap();
        // aws-lc-rs offers the post-quantum hybrid group; ring does not.
        let groups: Vec<_> = provider.kx_groups.iter().map(|g| g.name()).collect();
        assert_eq!(
            groups.contains(&rustls::NamedGroup::X25519MLKEM768),
            cfg!(feature = "aws-lc-rs"),
            "{groups:?}"
        );
        assert_eq!(client_config().unwrap().alpn_protocols, [b"http/1.1"]);
    }

    /// Serves one connection on loopback: in plain text when `tls` is
    /// `None`, else as a TLS server with that configuration.
    fn serve_once(tls: Option<rustls::ServerConfig>) -> (u16, std::thread::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut socket, _) = listener.accept().unwrap();
            let Some(config) = tls else {
                let _ = socket.write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n");
                return String::new();
            };
            let mut conn = rustls::ServerConnection::new(Arc::new(config)).unwrap();
            let mut stream = rustls::Stream::new(&mut conn, &mut socket);
            // The handshake runs inside the first read.
            let mut buf = [0; 1];
            match stream.read_exact(&mut buf) {
                Ok(()) => "handshake completed".to_owned(),
                Err(e) => e.to_string(),
            }
        });
        (port, server)
    }

    async fn https_get(port: u16) -> reqwest::Error {
        https_get_with(client_builder().unwrap(), port).await
    }

    async fn https_get_with(builder: reqwest::ClientBuilder, port: u16) -> reqwest::Error {
        let http = builder.build().unwrap();
        http.get(format!("https://127.0.0.1:{port}/tokens"))
            .send()
            .await
            .unwrap_err()
    }

    /// A TLS server presenting [`SELF_SIGNED_CERT`].
    fn self_signed_server() -> rustls::ServerConfig {
        rustls::ServerConfig::builder_with_provider(built_in_provider().unwrap())
            .with_protocol_versions(rustls::ALL_VERSIONS)
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from_pem_slice(SELF_SIGNED_CERT.as_bytes()).unwrap()],
                PrivateKeyDer::from_pem_slice(SELF_SIGNED_KEY.as_bytes()).unwrap(),
            )
            .unwrap()
    }

    /// HTTPS to a port that answers in plain HTTP: the client builds, the
    /// handshake is attempted with the provider, and the failure is a
    /// connect error, not a panic.
    #[tokio::test]
    #[cfg(any(feature = "ring", feature = "aws-lc-rs"))]
    async fn an_https_attempt_on_a_plain_port_is_a_connect_error() {
        let (port, server) = serve_once(None);
        let e = https_get(port).await;
        assert!(e.is_connect(), "{e:?}");
        server.join().unwrap();
    }

    /// Certificates are verified: a server with a certificate no platform
    /// trusts is refused during the handshake.
    #[tokio::test]
    #[cfg(any(feature = "ring", feature = "aws-lc-rs"))]
    async fn an_untrusted_certificate_is_refused() {
        let (port, server) = serve_once(Some(self_signed_server()));
        let e = https_get(port).await;
        assert!(e.is_connect(), "{e:?}");
        let chain = format!("{e:?}");
        assert!(
            chain.contains("InvalidCertificate(UnknownIssuer)"),
            "{chain}"
        );
        let seen = server.join().unwrap();
        assert!(seen.contains("received fatal alert"), "{seen}");
    }

    /// reqwest's own TLS switches do not reach a configuration handed over
    /// ready-made: on a builder from [`client_builder`],
    /// `danger_accept_invalid_certs` (like `add_root_certificate` or
    /// `min_tls_version`) changes nothing, and verification stays on.
    #[tokio::test]
    #[cfg(any(feature = "ring", feature = "aws-lc-rs"))]
    async fn reqwests_tls_switches_do_not_turn_verification_off() {
        let (port, server) = serve_once(Some(self_signed_server()));
        let builder = client_builder().unwrap().danger_accept_invalid_certs(true);
        let e = https_get_with(builder, port).await;
        let chain = format!("{e:?}");
        assert!(
            chain.contains("InvalidCertificate(UnknownIssuer)"),
            "{chain}"
        );
        server.join().unwrap();
    }
}
