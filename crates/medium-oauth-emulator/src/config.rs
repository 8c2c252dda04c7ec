//! What an emulator serves: its apps and the options that switch between the
//! spec's and the live service's behaviour.

use std::time::Duration;

use url::Url;

/// How long access tokens live unless configured otherwise: Medium's 60 days.
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60 * 24 * 60 * 60);

/// The longest `--token-lifetime` accepted: 10 years (of 365 days), far past
/// any test's horizon, and small enough that an expiry in milliseconds since
/// the epoch stays an exact integer in every JSON reader, JavaScript's
/// included. A [`Config`] built in code may say more; expiries then
/// saturate instead of overflowing.
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 60 * 60);

/// The longest `state` the authorize endpoint accepts, in bytes. Real
/// clients send 32 to 64 characters (this workspace's client sends 64); 1 KiB
/// leaves room for clients that pack a return path into it, while 10,000
/// pending consents stay near 10 MB instead of the 650 MB that 64 KiB states
/// came to.
pub const MAX_STATE_BYTES: usize = 1024;

/// The built-in app's client id.
pub const DEMO_CLIENT_ID: &str = "demo-client";
/// The built-in app's client secret.
pub const DEMO_CLIENT_SECRET: &str = "demo-secret";

/// Which refresh form the emulator serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum RefreshEndpoints {
    /// Both `POST /v1/tokens/refresh` and `grant_type=refresh_token` on
    /// `POST /v1/tokens`.
    #[default]
    Both,
    /// Only the spec's `POST /v1/tokens/refresh`.
    Spec,
    /// Only the live service's `grant_type=refresh_token` on `POST /v1/tokens`.
    Live,
}

impl RefreshEndpoints {
    pub(crate) fn serves_spec(self) -> bool {
        matches!(self, Self::Both | Self::Spec)
    }
    pub(crate) fn serves_live(self) -> bool {
        matches!(self, Self::Both | Self::Live)
    }
}

/// The status of a successful token response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SuccessStatus {
    /// `201 Created`, as the live service's documentation shows.
    #[default]
    Created,
    /// `200 OK`, as the spec says.
    Ok,
}

impl SuccessStatus {
    pub(crate) fn code(self) -> axum::http::StatusCode {
        match self {
            Self::Created => axum::http::StatusCode::CREATED,
            Self::Ok => axum::http::StatusCode::OK,
        }
    }
}

/// Which redirect URIs an app accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedirectRule {
    /// Exactly these URIs, as Medium requires for registered apps.
    Exact(Vec<String>),
    /// Any `http://127.0.0.1:<port>/<path>`, `http://localhost:…` or
    /// `http://[::1]:…` URI: the loopback rule of RFC 8252 §7.3 for native
    /// apps, whose port is only known at run time.
    AnyLoopback,
}

impl RedirectRule {
    /// Whether `uri` is acceptable as a redirect target for the app.
    pub fn allows(&self, uri: &str) -> bool {
        match self {
            Self::Exact(uris) => uris.iter().any(|u| u == uri),
            Self::AnyLoopback => Url::parse(uri).is_ok_and(|u| {
                u.scheme() == "http"
                    && u.username().is_empty()
                    && u.password().is_none()
                    && u.fragment().is_none()
                    && matches!(
                        u.host(),
                        Some(url::Host::Domain("localhost"))
                            | Some(url::Host::Ipv4(std::net::Ipv4Addr::LOCALHOST))
                            | Some(url::Host::Ipv6(std::net::Ipv6Addr::LOCALHOST))
                    )
            }),
        }
    }
}

/// An app registered with the emulator.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientApp {
    /// Shown on the consent page.
    pub name: String,
    /// The client id.
    pub id: String,
    /// The client secret.
    pub secret: String,
    /// Where it may send users back to.
    pub redirect: RedirectRule,
    /// Whether Medium approved it for the extended `uploadImage` scope.
    pub extended_scope_approved: bool,
}

/// The secret stays out of debug output: a [`Config`] may be logged.
impl std::fmt::Debug for ClientApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientApp")
            .field("name", &self.name)
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .field("redirect", &self.redirect)
            .field("extended_scope_approved", &self.extended_scope_approved)
            .finish()
    }
}

impl ClientApp {
    /// The built-in demo app: `demo-client` / `demo-secret`, every scope,
    /// any loopback redirect URI.
    pub fn demo() -> Self {
        Self {
            name: "Demo App".into(),
            id: DEMO_CLIENT_ID.into(),
            secret: DEMO_CLIENT_SECRET.into(),
            redirect: RedirectRule::AnyLoopback,
            extended_scope_approved: true,
        }
    }
}

/// The emulator's configuration. `Config::default()` is the live service with
/// the demo app.
#[derive(Debug, Clone)]
pub struct Config {
    /// Approve every valid authorization request without showing the consent
    /// page.
    pub auto_approve: bool,
    /// Lifetime of issued access tokens.
    pub token_lifetime: Duration,
    /// Each refresh issues a new refresh token and invalidates the old one.
    /// Without it a refresh answers with no `refresh_token`, and the client
    /// keeps the one it has.
    pub rotate_refresh_tokens: bool,
    /// With rotation: a refresh token that was rotated out and is presented
    /// again revokes every token of its grant (RFC 9700 §4.14.2), as a
    /// server does that suspects the token was stolen.
    pub detect_refresh_replay: bool,
    /// Which refresh form is served.
    pub refresh_endpoints: RefreshEndpoints,
    /// Status of successful token responses.
    pub success_status: SuccessStatus,
    /// Registered apps. The demo app is included by default.
    pub clients: Vec<ClientApp>,
    /// Bounds on what the emulator keeps in memory.
    pub limits: Limits,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            auto_approve: false,
            token_lifetime: DEFAULT_TOKEN_LIFETIME,
            rotate_refresh_tokens: false,
            detect_refresh_replay: false,
            refresh_endpoints: RefreshEndpoints::Both,
            success_status: SuccessStatus::Created,
            clients: vec![ClientApp::demo()],
            limits: Limits::default(),
        }
    }
}

/// Caps and deadlines that keep a flood of requests, or of idle or stalled
/// connections, from growing the emulator without bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Authorization codes and consent pages awaiting an answer.
    pub pending_grants: usize,
    /// Bytes those codes and consent pages may hold together, roughly: their
    /// text (client id, redirect URI, state, key) and their table slots.
    pub pending_grant_bytes: usize,
    /// Live access and refresh tokens together.
    pub tokens: usize,
    /// Largest accepted request body, in bytes, on every route but the post
    /// and image calls, which have their own below.
    pub request_body_bytes: usize,
    /// Largest accepted post body (`POST …/posts`), in bytes.
    pub post_body_bytes: usize,
    /// Largest accepted image (`POST /images`), in bytes of the image
    /// itself; the route's body may be [`MULTIPART_OVERHEAD_BYTES`] longer,
    /// for the multipart framing. Over it the upload gets a 400 with
    /// [`codes::IMAGE_TOO_LARGE`](crate::codes::IMAGE_TOO_LARGE).
    pub image_upload_bytes: usize,
    /// Posts remembered for [`Emulator::posts`](crate::Emulator::posts); when
    /// full, the oldest is forgotten to make room.
    pub posts: usize,
    /// Bytes those posts may hold together, roughly (their text and their
    /// slots); when full, the oldest are forgotten to make room.
    pub post_bytes: usize,
    /// Uploads remembered for [`Emulator::images`](crate::Emulator::images)
    /// (their metadata; the bytes are not kept); when full, the oldest is
    /// forgotten to make room.
    pub images: usize,
    /// How long a connection may take to send a request's headers, counted
    /// from when it connects or from the end of its previous response. It is
    /// also the keep-alive idle timeout: an idle keep-alive connection is one
    /// waiting for its next request's headers, so it is closed this long
    /// after its last response.
    ///
    /// This and the other connection deadlines count wall time, not tokio's:
    /// a test on paused time can jump hours ahead without its connections
    /// being closed under it.
    pub header_read_timeout: Duration,
    /// How long a request's body may take to arrive once its headers have.
    pub body_read_timeout: Duration,
    /// How long an answer may wait to be sent once the connection backs up
    /// (the client reads nothing, or too little): from the first write the
    /// socket cannot take until all that is queued has been handed over.
    /// Past it the connection is closed, so a client that never reads its
    /// answers cannot hold a connection, and its place, forever.
    pub write_timeout: Duration,
    /// How long a shutdown lets requests in flight finish before closing
    /// their connections anyway.
    pub shutdown_grace: Duration,
    /// Connections served at once; further ones wait in the listen backlog
    /// until one closes. At least one is always served.
    pub connections: usize,
    /// Distinct users the consent page may sign in, the demo user among
    /// them. A username not seen before is refused (403) once this many are
    /// known; those already known still sign in. Users are never forgotten,
    /// since their ids must stay the same while the emulator runs.
    pub users: usize,
}

/// [`Limits::header_read_timeout`] by default: loopback clients send their
/// headers within milliseconds even on a loaded CI machine, and an idle
/// keep-alive client (whose process may wait for its pooled connections to
/// close before exiting) is let go 10 seconds after its last response.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// [`Limits::body_read_timeout`] by default: token forms and the consent
/// form are a few hundred bytes, sent with the headers; only a client
/// trickling its body on purpose takes longer.
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// [`Limits::write_timeout`] by default: the emulator's answers are at most
/// tens of kilobytes, which a loopback client that reads at all takes in
/// milliseconds; only one that stopped reading is still behind after this.
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// [`Limits::shutdown_grace`] by default. The emulator answers in
/// microseconds, so only an injected `Fault::Delay` or a client that stopped
/// mid-request is still there after it, and a Ctrl-C should not wait long
/// for either.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// [`Limits::connections`] by default. An in-process emulator shares its
/// process's file descriptors with the clients under test, two per loopback
/// connection, and Linux's usual soft limit is 1024; 256 leaves most of them
/// to the test while serving more parallel clients than any test here opens
/// (200).
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;

/// [`Limits::image_upload_bytes`] by default: 5 MiB, above the photos and
/// screenshots a post carries and small enough that the few uploads read at
/// once stay a few tens of megabytes.
pub const DEFAULT_MAX_IMAGE_BYTES: usize = 5 * 1024 * 1024;

/// What an upload's body may hold beyond the image: boundary lines, the
/// part's headers (at most 4 KiB), and a preamble or epilogue, which clients
/// rarely send. 64 KiB is far above what any client writes.
pub const MULTIPART_OVERHEAD_BYTES: usize = 64 * 1024;

/// [`Limits::post_body_bytes`] by default: 1 MiB, over the longest articles'
/// HTML, so the emulator never refuses a post Medium would take.
pub const DEFAULT_MAX_POST_BODY_BYTES: usize = 1024 * 1024;

/// [`Limits::users`] by default. A user is kept for the emulator's life (its
/// tokens and [`Emulator::users`](crate::Emulator::users) refer to it), so
/// without a cap a script approving made-up names would grow the emulator
/// for ever. Each takes some 600 bytes, so 10,000 stay near 6 MB, and no
/// test or development session signs in anywhere near that many people.
pub const DEFAULT_MAX_USERS: usize = 10_000;

impl Default for Limits {
    fn default() -> Self {
        Self {
            // Far above any interactive use; a flood hits the cap, gets 503s,
            // and the table drains as codes expire.
            pending_grants: 10_000,
            // A typical grant takes about 300 bytes, so the entry cap binds
            // first in normal use; 16 MiB still admits 10,000 consents with
            // the longest states allowed, and bounds a flood of long redirect
            // URIs (each up to hyper's 64 KiB URI limit) at 16 MiB rather
            // than the ~650 MB 10,000 of them would take.
            pending_grant_bytes: 16 * 1024 * 1024,
            // Enough for load tests of 100k exchanges (two tokens each) with
            // headroom, at roughly 200 bytes per token.
            tokens: 1_000_000,
            // Token forms are a few hundred bytes; 64 KiB is generous.
            request_body_bytes: 64 * 1024,
            post_body_bytes: DEFAULT_MAX_POST_BODY_BYTES,
            image_upload_bytes: DEFAULT_MAX_IMAGE_BYTES,
            // A load run of 100,000 posts keeps its newest 10,000 and stays
            // bounded; a test reads back far fewer.
            posts: 10_000,
            // Ten thousand posts of a few kilobytes fit; a run of 1 MiB
            // posts keeps its newest 64, so memory stays near 64 MiB.
            post_bytes: 64 * 1024 * 1024,
            // Each is under 5 KiB (its part's headers are capped at 4 KiB),
            // so 10,000 stay under 50 MB.
            images: 10_000,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            body_read_timeout: DEFAULT_BODY_READ_TIMEOUT,
            write_timeout: DEFAULT_WRITE_TIMEOUT,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            connections: DEFAULT_MAX_CONNECTIONS,
            users: DEFAULT_MAX_USERS,
        }
    }
}
