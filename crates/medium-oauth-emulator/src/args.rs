//! The emulator's command-line options, shared by its own binary and
//! `medium-oauth emulator`.

use std::io::Write;
use std::time::Duration;

use crate::config::{
    ClientApp, Config, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, MAX_TOKEN_LIFETIME, RedirectRule,
    RefreshEndpoints, SuccessStatus,
};

/// Options of a standalone emulator.
#[derive(Clone, clap::Args)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Approve every valid authorization request without a consent page.
    #[arg(long)]
    pub auto_approve: bool,
    /// Access token lifetime in seconds, from 1 to 315360000 (10 years)
    /// [default: 60 days].
    #[arg(long, value_name = "SECS", value_parser = parse_token_lifetime)]
    pub token_lifetime: Option<u64>,
    /// Each refresh issues a new refresh token and invalidates the old one.
    #[arg(long)]
    pub rotate_refresh_tokens: bool,
    /// With --rotate-refresh-tokens: a rotated-out refresh token presented
    /// again revokes its whole grant (RFC 9700 §4.14.2).
    #[arg(long, requires = "rotate_refresh_tokens")]
    pub detect_refresh_replay: bool,
    /// Which refresh form to serve.
    #[arg(long, value_enum, default_value_t = RefreshEndpoints::Both)]
    pub refresh_endpoints: RefreshEndpoints,
    /// Status of successful token responses: 201 (live service) or 200 (spec).
    #[arg(long, default_value_t = 201, value_parser = parse_success_status)]
    pub success_status: u16,
    /// Register an app with an exact redirect URI; repeat the id to add URIs.
    #[arg(long = "client", value_name = "ID:SECRET:REDIRECT_URI", value_parser = parse_client)]
    pub clients: Vec<(String, String, String)>,
    /// Approve an app registered with --client for the extended uploadImage scope.
    #[arg(long = "approve-extended-scope", value_name = "ID")]
    pub extended_scope: Vec<String>,
    /// Most codes and consent pages held at once (used codes count until they
    /// expire, so reuse can still be detected) [default: 10000].
    #[arg(long, value_name = "N")]
    pub max_pending_grants: Option<usize>,
    /// Most live access and refresh tokens held at once [default: 1000000].
    #[arg(long, value_name = "N")]
    pub max_tokens: Option<usize>,
    /// Most posts remembered; the oldest are forgotten past it [default: 10000].
    #[arg(long, value_name = "N")]
    pub max_posts: Option<usize>,
    /// Most image uploads remembered; the oldest are forgotten past it
    /// [default: 10000].
    #[arg(long, value_name = "N")]
    pub max_images: Option<usize>,
    /// Largest image accepted by POST /v1/images, in bytes [default: 5242880].
    #[arg(long, value_name = "BYTES")]
    pub max_image_bytes: Option<usize>,
    /// Most distinct users the consent page signs in, the demo user among
    /// them; a new username past it is refused [default: 10000].
    #[arg(long, value_name = "N")]
    pub max_users: Option<usize>,
}

/// Secrets in `--client` stay out of debug output: an `Args` may be logged.
impl std::fmt::Debug for Args {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let clients: Vec<String> = self
            .clients
            .iter()
            .map(|(id, _, uri)| format!("{id}:<redacted>:{uri}"))
            .collect();
        f.debug_struct("Args")
            .field("listen", &self.listen)
            .field("auto_approve", &self.auto_approve)
            .field("token_lifetime", &self.token_lifetime)
            .field("rotate_refresh_tokens", &self.rotate_refresh_tokens)
            .field("refresh_endpoints", &self.refresh_endpoints)
            .field("success_status", &self.success_status)
            .field("clients", &clients)
            .field("extended_scope", &self.extended_scope)
            .field("max_pending_grants", &self.max_pending_grants)
            .field("max_tokens", &self.max_tokens)
            .field("max_posts", &self.max_posts)
            .field("max_images", &self.max_images)
            .field("max_image_bytes", &self.max_image_bytes)
            .field("max_users", &self.max_users)
            .finish()
    }
}

/// Checks a token lifetime in seconds against 1 s ..= [`MAX_TOKEN_LIFETIME`].
fn check_token_lifetime(secs: u64) -> Result<u64, String> {
    let max = MAX_TOKEN_LIFETIME.as_secs();
    if (1..=max).contains(&secs) {
        Ok(secs)
    } else {
        Err(format!("expected whole seconds from 1 to {max} (10 years)"))
    }
}

fn parse_token_lifetime(text: &str) -> Result<u64, String> {
    // Not a number, or past u64: 0 stands in, so the message is the range's.
    check_token_lifetime(text.parse().unwrap_or(0))
}

fn parse_success_status(text: &str) -> Result<u16, String> {
    match text {
        "201" => Ok(201),
        "200" => Ok(200),
        _ => Err("expected 201 (live service) or 200 (spec)".into()),
    }
}

fn parse_client(text: &str) -> Result<(String, String, String), String> {
    let mut parts = text.splitn(3, ':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(id), Some(secret), Some(uri)) if !id.is_empty() && !secret.is_empty() => {
            url::Url::parse(uri).map_err(|e| format!("redirect URI `{uri}`: {e}"))?;
            Ok((id.to_owned(), secret.to_owned(), uri.to_owned()))
        }
        _ => Err("expected ID:SECRET:REDIRECT_URI".into()),
    }
}

impl Args {
    /// The configuration these options describe.
    pub fn config(&self) -> Result<Config, String> {
        let mut config = Config {
            auto_approve: self.auto_approve,
            rotate_refresh_tokens: self.rotate_refresh_tokens,
            detect_refresh_replay: self.detect_refresh_replay,
            refresh_endpoints: self.refresh_endpoints,
            success_status: if self.success_status == 200 {
                SuccessStatus::Ok
            } else {
                SuccessStatus::Created
            },
            ..Config::default()
        };
        if let Some(secs) = self.token_lifetime {
            // Parsing checked it; an `Args` built in code is checked here.
            let secs = check_token_lifetime(secs).map_err(|e| format!("--token-lifetime: {e}"))?;
            config.token_lifetime = Duration::from_secs(secs);
        }
        if let Some(n) = self.max_pending_grants {
            config.limits.pending_grants = n;
        }
        if let Some(n) = self.max_tokens {
            config.limits.tokens = n;
        }
        if let Some(n) = self.max_posts {
            config.limits.posts = n;
        }
        if let Some(n) = self.max_images {
            config.limits.images = n;
        }
        if let Some(n) = self.max_image_bytes {
            config.limits.image_upload_bytes = n;
        }
        if let Some(n) = self.max_users {
            config.limits.users = n;
        }
        for (id, secret, uri) in &self.clients {
            match config.clients.iter_mut().find(|c| &c.id == id) {
                Some(app) => match &mut app.redirect {
                    RedirectRule::Exact(uris) if &app.secret == secret => uris.push(uri.clone()),
                    _ => {
                        return Err(format!(
                            "--client {id} is given twice with different secrets"
                        ));
                    }
                },
                None => config.clients.push(ClientApp {
                    name: id.clone(),
                    id: id.clone(),
                    secret: secret.clone(),
                    redirect: RedirectRule::Exact(vec![uri.clone()]),
                    extended_scope_approved: false,
                }),
            }
        }
        for id in &self.extended_scope {
            let app = config
                .clients
                .iter_mut()
                .find(|c| &c.id == id)
                .ok_or_else(|| format!("--approve-extended-scope {id}: no such --client"))?;
            app.extended_scope_approved = true;
        }
        Ok(config)
    }
}

/// What a standalone emulator prints when it is ready. The first line,
/// `listening on http://HOST:PORT`, is what scripts and tests wait for and
/// stays first and unchanged; the rest tells a person how to use it. The
/// demo app's secret is public test data; secrets of apps given with
/// `--client` are not printed.
pub(crate) fn ready_message(emulator: &crate::Emulator) -> String {
    // Its own profile, so the login never replaces a real Medium one; the
    // secret through the environment, which other users cannot read in the
    // process list (and the CLI warns of as an argument).
    let login = [
        "medium-oauth",
        "login",
        "--profile",
        LOGIN_PROFILE,
        "--client-id",
        DEMO_CLIENT_ID,
        "--authorize-url",
        &emulator.authorization_server(),
        "--api-url",
        &emulator.api_server(),
    ]
    .map(shell_word)
    .join(" ");
    format!(
        "listening on {base}\n\
         demo app: client id {id}, client secret {secret} (public test data)\n\
         log in to it with:\n  MEDIUM_CLIENT_SECRET={secret} {login}\n\
         then print a token with:\n  medium-oauth token --profile {LOGIN_PROFILE}\n",
        base = emulator.base_url(),
        id = DEMO_CLIENT_ID,
        secret = shell_word(DEMO_CLIENT_SECRET),
    )
}

/// The CLI profile the printed login command saves to.
const LOGIN_PROFILE: &str = "local";

/// `word` as one POSIX shell word: as is when it holds nothing a shell
/// treats specially, else single-quoted (an IPv6 address's brackets are
/// glob characters).
fn shell_word(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Runs an emulator until Ctrl-C. When it is ready it prints, first,
/// exactly the line `listening on http://HOST:PORT`, then the demo app's
/// credentials and a `medium-oauth login` command that works against it.
pub async fn run(args: Args) -> Result<(), String> {
    let config = args.config()?;
    let emulator = crate::Emulator::start(config, args.listen.as_str())
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    // One write, so a reader that takes the first line and closes the pipe
    // cannot make a later line fail; and a failed write (nobody reading) is
    // no reason to stop serving.
    let mut stdout = std::io::stdout().lock();
    let printed = stdout
        .write_all(ready_message(&emulator).as_bytes())
        .and_then(|()| stdout.flush());
    drop(stdout);
    if let Err(e) = printed {
        tracing::debug!("cannot print the ready message: {e}");
    }
    tokio::signal::ctrl_c()
        .await
        .map_err(|e| format!("cannot wait for Ctrl-C: {e}"))?;
    emulator.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        Cli::try_parse_from(std::iter::once("emulator").chain(args.iter().copied())).map(|c| c.args)
    }

    #[test]
    fn token_lifetime_is_checked_against_one_second_to_ten_years() {
        for bad in [
            "0",
            "315360001",
            "9223372036854775",
            "18446744073709551615",
            "-1",
            "1.5",
            "a day",
        ] {
            let flag = format!("--token-lifetime={bad}");
            let err = parse(&[&flag]).expect_err(bad).to_string();
            assert!(err.contains("--token-lifetime"), "{bad}: {err}");
            assert!(
                err.contains("from 1 to 315360000 (10 years)"),
                "{bad}: {err}"
            );
        }
        for good in ["1", "3600", "315360000"] {
            let args = parse(&["--token-lifetime", good]).unwrap();
            let config = args.config().unwrap();
            assert_eq!(config.token_lifetime.as_secs().to_string(), good);
        }
    }

    #[test]
    fn token_lifetime_set_in_code_is_checked_too() {
        let mut args = parse(&[]).unwrap();
        args.token_lifetime = Some(u64::MAX);
        let err = args.config().unwrap_err();
        assert!(
            err.contains("--token-lifetime") && err.contains("10 years"),
            "{err}"
        );
        args.token_lifetime = Some(0);
        assert!(args.config().is_err());
    }

    #[test]
    fn rest_caps_are_set_from_their_flags() {
        let args = parse(&[
            "--max-posts",
            "7",
            "--max-images",
            "8",
            "--max-image-bytes",
            "9",
            "--max-users",
            "10",
        ])
        .unwrap();
        let limits = args.config().unwrap().limits;
        assert_eq!(
            (
                limits.posts,
                limits.images,
                limits.image_upload_bytes,
                limits.users
            ),
            (7, 8, 9, 10)
        );
        let defaults = parse(&[]).unwrap().config().unwrap().limits;
        assert_eq!(defaults, crate::Limits::default());
        assert_eq!(defaults.image_upload_bytes, 5_242_880);
    }

    #[test]
    fn debug_output_hides_client_secrets() {
        let args = parse(&["--client", "app:s3cret-value:https://app.example/cb"]).unwrap();
        let shown = format!("{args:?}");
        assert!(!shown.contains("s3cret-value"), "{shown}");
        assert!(
            shown.contains("app:<redacted>:https://app.example/cb"),
            "{shown}"
        );
    }

    #[test]
    fn shell_words_are_quoted_only_when_needed() {
        assert_eq!(
            shell_word("http://127.0.0.1:8080/m/oauth"),
            "http://127.0.0.1:8080/m/oauth"
        );
        assert_eq!(shell_word("http://[::1]:8080/v1"), "'http://[::1]:8080/v1'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
        assert_eq!(shell_word(""), "''");
    }
}
