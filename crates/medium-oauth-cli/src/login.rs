//! `medium-oauth login`: the installed-app flow of RFC 8252 — a listener on
//! loopback, the system browser, one callback that passes the state check.

use std::io::{BufRead, IsTerminal, Read, Write};
use std::time::Duration;

use clap::Args;
use medium_oauth::api::User;
use medium_oauth::{OAuthClient, Scope, ScopeSet, Token};
use medium_oauth_emulator::{Config, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, Emulator};
use tokio::time::Instant;
use url::Url;

use crate::callback::{self, CALLBACK_PATH, Listener};
use crate::commands::describe_expiry;
use crate::failure::{Failure, printable};
use crate::profile::{
    DEFAULT_PROFILE, EMULATOR_PROFILE, Profile, ProfileDocument, ProfileStore, StoreArgs,
    StoredClient, StoredSecret,
};
use crate::setup::{self, ClientArgs, Credentials, Source};

/// How often the spinner moves while waiting for the browser.
const SPINNER_TICK: Duration = Duration::from_millis(100);

/// How long the authorization server may take to answer the probe made
/// before the browser opens: long enough for a slow network, short enough
/// that a wrong `--authorize-url` fails at once rather than after the
/// whole `--timeout`.
const PROBE_DEADLINE: Duration = Duration::from_secs(5);

/// Longest `--timeout`: a day is longer than any login takes, and far
/// from the clock arithmetic's limits.
const MAX_TIMEOUT_SECS: u64 = 24 * 60 * 60;

/// Longest answer read to "replace the existing login?".
const MAX_ANSWER_BYTES: u64 = 64;

#[derive(Args, Debug)]
pub struct LoginArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Base URL of the authorization server [default: Medium's].
    #[arg(long, value_name = "URL")]
    authorize_url: Option<String>,
    #[command(flatten)]
    store: StoreArgs,
    /// Scopes to request, comma-separated.
    #[arg(long, default_value = "basicProfile")]
    scopes: String,
    /// Port of the loopback listener for the callback [default: any free port].
    #[arg(long, value_name = "PORT")]
    redirect_port: Option<u16>,
    /// Do not open a browser: print the URL alone on stdout and wait.
    #[arg(long)]
    no_browser: bool,
    /// Seconds the whole login may take: the browser coming back, then
    /// asking the server who logged in (at most a day).
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 300,
        value_parser = clap::value_parser!(u64).range(1..=MAX_TIMEOUT_SECS)
    )]
    timeout: u64,
    /// Start an in-process emulator with its demo app and log in to it
    /// (saved to the "emulator" profile unless --profile or --credentials
    /// says otherwise).
    #[arg(long)]
    emulator: bool,
    /// Do not keep the client secret in the credentials file; `token` then
    /// needs it given again for every refresh.
    #[arg(long)]
    no_store_secret: bool,
    /// Replace a login to another server without asking.
    #[arg(long)]
    force: bool,
}

/// Whether a browser can be opened here at all.
fn has_display() -> bool {
    if cfg!(target_os = "linux") {
        std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some()
    } else {
        true
    }
}

pub async fn run(args: LoginArgs) -> Result<(), Failure> {
    let scopes = requested_scopes(&args.scopes)?;
    let default_profile = if args.emulator && !args.store.chosen() {
        EMULATOR_PROFILE
    } else {
        DEFAULT_PROFILE
    };
    let store = args.store.open(default_profile)?;
    // Fail before the browser opens, not after: an unreadable file would
    // otherwise cost the user a whole login.
    let existing = store.read()?;
    let (id, secret) = app_credentials(&args)?;
    let emulator = start_emulator(&args).await?;
    let servers = StoredClient {
        client_id: Some(id.clone()),
        client_secret: None,
        authorize_url: args
            .authorize_url
            .clone()
            .or_else(|| emulator.as_ref().map(Emulator::authorization_server)),
        api_url: args
            .client
            .api_url
            .clone()
            .or_else(|| emulator.as_ref().map(Emulator::api_server)),
        in_process_emulator: emulator.is_some() && args.client.api_url.is_none(),
    };
    confirm_replacement(&store, existing.as_ref(), &servers, args.force)?;
    if let Some(url) = &args.authorize_url {
        probe(url).await?;
    }

    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    let (listener, local) = callback::bind(args.redirect_port.unwrap_or(0))
        .await
        .map_err(Failure::other)?;
    let client = setup::client_builder(
        &id,
        &secret,
        format!("http://{local}{CALLBACK_PATH}"),
        &servers,
    )
    .pending_ttl(Duration::from_secs(args.timeout))
    .build()?;
    let (url, pending) = client.authorize_url(scopes)?;
    // Listen before the URL is shown: a Ctrl-C right after it must cancel
    // cleanly, not kill the process.
    let cancelled = interrupted()?;
    let listener = Listener::start(listener, client.clone(), pending);
    show(&url, &args, emulator.is_some());
    let host = client
        .api_server()
        .host_str()
        .unwrap_or_default()
        .to_owned();
    let outcome = wait(listener, deadline, args.timeout, &host, cancelled).await;
    // From here on nothing waits for Ctrl-C: it must stop the process again.
    restore_default_interrupt();
    let token = outcome?;

    let user = look_up_user(&client, &token, deadline).await;
    let stored = StoredClient {
        client_secret: (!args.no_store_secret).then_some(secret),
        ..servers
    };
    save(&store, &token, stored, user.clone()).await?;
    report(&store, &token, user.as_ref(), scopes, args.no_store_secret);
    if let Some(emulator) = emulator {
        emulator.shutdown().await;
    }
    Ok(())
}

fn requested_scopes(text: &str) -> Result<ScopeSet, Failure> {
    let scopes: ScopeSet = text
        .parse()
        .map_err(|e: medium_oauth::UnknownScope| Failure::usage(format!("--scopes: {e}")))?;
    if scopes.is_empty() {
        return Err(Failure::usage("--scopes: name at least one scope"));
    }
    Ok(scopes)
}

/// The client id and secret: from the options or the environment, else the
/// in-process emulator's demo app. With `--emulator`, any other app is an
/// error now rather than a consent page that never comes.
fn app_credentials(args: &LoginArgs) -> Result<(String, StoredSecret), Failure> {
    let Credentials { id, secret } = args.client.credentials(None)?;
    if args.emulator && args.authorize_url.is_none() {
        let demo = (
            DEMO_CLIENT_ID.to_owned(),
            StoredSecret::new(DEMO_CLIENT_SECRET),
        );
        let id_ok = id.as_ref().is_none_or(|(id, _)| id == DEMO_CLIENT_ID);
        let secret_ok = secret
            .as_ref()
            .is_none_or(|(s, _)| s.expose_secret() == DEMO_CLIENT_SECRET);
        if id_ok && secret_ok {
            return Ok(demo);
        }
        let source = match (id_ok, &id, &secret) {
            (false, Some((_, source)), _) | (true, _, Some((_, source))) => *source,
            _ => Source::Option,
        };
        let named = if source == Source::Environment {
            "the client credentials in MEDIUM_CLIENT_ID / MEDIUM_CLIENT_SECRET"
        } else {
            "the client id or secret given"
        };
        return Err(Failure::usage(format!(
            "--emulator starts an emulator that knows only its demo app ({DEMO_CLIENT_ID}), \
             not {named}; unset them for --emulator, or run `medium-oauth emulator --client \
             ID:SECRET:REDIRECT_URI` and log in with --authorize-url and --api-url"
        )));
    }
    match (id, secret) {
        (Some((id, _)), Some((secret, _))) => Ok((id, secret)),
        (None, _) => Err(Failure::usage(
            "missing client id: pass --client-id or set MEDIUM_CLIENT_ID (or use --emulator)",
        )),
        (_, None) => Err(Failure::usage(
            "missing client secret: pass --client-secret-file or set MEDIUM_CLIENT_SECRET",
        )),
    }
}

async fn start_emulator(args: &LoginArgs) -> Result<Option<Emulator>, Failure> {
    if !args.emulator {
        return Ok(None);
    }
    // With no browser to show its consent page, it approves by itself and
    // this process plays the browser.
    let auto_approve = args.no_browser || !has_display();
    let config = Config {
        auto_approve,
        ..Config::default()
    };
    let emulator = Emulator::start(config, "127.0.0.1:0")
        .await
        .map_err(|e| Failure::other(format!("cannot start the emulator: {e}")))?;
    eprintln!(
        "Started an emulator at {}{}",
        emulator.base_url(),
        if auto_approve {
            " (auto-approving: no browser)"
        } else {
            ""
        }
    );
    Ok(Some(emulator))
}

/// A login to another server replaces one that may be the user's real
/// Medium login: ask first, or refuse without `--force` when nobody can be
/// asked.
fn confirm_replacement(
    store: &ProfileStore,
    existing: Option<&ProfileDocument>,
    servers: &StoredClient,
    force: bool,
) -> Result<(), Failure> {
    let Some(existing) = existing.filter(|doc| doc.token.is_some()) else {
        return Ok(());
    };
    let old = &existing.extra.client;
    if force || old.same_server(servers) {
        return Ok(());
    }
    let who = existing
        .extra
        .user
        .as_ref()
        .map(|u| format!(" as @{}", printable(&u.username)))
        .unwrap_or_default();
    let what = format!(
        "{} holds a login to {}{who}; this login is to {}",
        store.path().display(),
        printable(old.api_server()),
        printable(servers.api_server()),
    );
    if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        return Err(Failure::usage(format!(
            "{what}. Pass --force to replace it, or --profile NAME to keep both"
        )));
    }
    eprint!("{what}. Replace it? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .take(MAX_ANSWER_BYTES)
        .read_line(&mut answer)
        .map_err(|e| Failure::other(format!("cannot read the answer: {e}")))?;
    if matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
        Ok(())
    } else {
        Err(Failure::other(
            "kept the existing login (use --profile NAME to keep both)",
        ))
    }
}

/// Makes sure the authorization server answers before the browser is sent
/// there: any HTTP answer will do, no answer within [`PROBE_DEADLINE`] is a
/// failure naming the host.
async fn probe(authorize_url: &str) -> Result<(), Failure> {
    let url = Url::parse(authorize_url)
        .map_err(|e| Failure::usage(format!("--authorize-url {authorize_url:?}: {e}")))?;
    let host = url.host_str().unwrap_or_default().to_owned();
    let http = medium_oauth::tls::client_builder()
        .map_err(|e| Failure::other(e.to_string()))?
        .redirect(reqwest::redirect::Policy::none())
        .timeout(PROBE_DEADLINE)
        .build()
        .map_err(|e| Failure::other(e.to_string()))?;
    match http.head(url).send().await {
        Ok(_) => Ok(()),
        Err(e) => Err(Failure::new(
            Failure::NETWORK,
            format!(
                "the authorization server {host} (--authorize-url) cannot be reached: {}",
                crate::failure::chain(&e.without_url())
            ),
        )),
    }
}

/// Shows the URL: opens the browser, or prints it, or follows it ourselves
/// for an auto-approving in-process emulator.
fn show(url: &Url, args: &LoginArgs, emulator: bool) {
    if emulator && (args.no_browser || !has_display()) {
        outln!("{url}");
        let target = url.to_string();
        tokio::spawn(async move {
            // Follows the emulator's redirect to our own callback.
            let http = match medium_oauth::tls::client_builder() {
                Ok(builder) => builder.build(),
                Err(e) => return eprintln!("could not follow the authorize URL: {e}"),
            };
            if let Err(e) = async { http?.get(target).send().await }.await {
                eprintln!("{}", follow_failure(e));
            }
        });
    } else if args.no_browser {
        outln!("{url}");
    } else if has_display() && open::that_detached(url.as_str()).is_ok() {
        eprintln!(
            "Opened the authorization page in your browser. If it did not appear, open:\n{url}"
        );
    } else {
        eprintln!("Open this URL in a browser to log in:");
        outln!("{url}");
    }
}

/// What to say when following the authorize URL fails. The redirect it
/// followed carries the code and state, so the error's URL is dropped.
fn follow_failure(e: reqwest::Error) -> String {
    format!(
        "could not follow the authorize URL: {}",
        crate::failure::chain(&e.without_url())
    )
}

/// Waits for the callback, the deadline or Ctrl-C, with a spinner on a
/// terminal; then stops the listener (within its grace period).
async fn wait(
    mut listener: Listener,
    deadline: Instant,
    timeout_secs: u64,
    host: &str,
    cancelled: impl std::future::Future<Output = ()>,
) -> Result<Token, Failure> {
    let spinner = indicatif::ProgressBar::with_draw_target(
        None,
        if std::io::stderr().is_terminal() {
            indicatif::ProgressDrawTarget::stderr()
        } else {
            indicatif::ProgressDrawTarget::hidden()
        },
    );
    spinner.set_style(indicatif::ProgressStyle::default_spinner());
    spinner.set_message("Waiting for the browser… (Ctrl-C to cancel)");
    spinner.enable_steady_tick(SPINNER_TICK);
    let outcome = tokio::select! {
        result = &mut listener.outcome => result
            .map_err(|_| Failure::other("the callback listener stopped"))
            .and_then(|token| token.map_err(|e| Failure::from_server(e, host))),
        () = tokio::time::sleep_until(deadline) => {
            let rejected = listener.rejected();
            Err(if rejected > 0 {
                Failure::new(Failure::STATE_MISMATCH, format!(
                    "timed out after {timeout_secs}s; {rejected} callback(s) with a wrong or \
                     missing state were rejected (possible CSRF)"
                ))
            } else {
                Failure::new(Failure::NETWORK, format!(
                    "timed out after {timeout_secs}s waiting for the browser to come back"
                ))
            })
        }
        () = cancelled => Err(Failure::new(Failure::CANCELLED, "cancelled")),
    };
    spinner.finish_and_clear();
    listener.shutdown().await;
    outcome
}

/// Completes on Ctrl-C. The handler is installed now, not on first poll.
#[cfg(unix)]
fn interrupted() -> Result<impl std::future::Future<Output = ()>, Failure> {
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .map_err(|e| Failure::other(format!("cannot listen for Ctrl-C: {e}")))?;
    Ok(async move {
        interrupt.recv().await;
    })
}

/// Completes on Ctrl-C.
#[cfg(not(unix))]
fn interrupted() -> Result<impl std::future::Future<Output = ()>, Failure> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}

/// Gives Ctrl-C back its default meaning, stopping the process. tokio's
/// handler stays installed once a signal has been listened for, and with
/// nobody listening any more it would swallow every Ctrl-C.
#[cfg(unix)]
fn restore_default_interrupt() {
    // SAFETY: installs the default disposition, no handler code of ours;
    // tokio's handler only records signals nothing awaits any more.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_DFL);
    }
}

#[cfg(not(unix))]
fn restore_default_interrupt() {}

/// Who logged in, when the token may ask (`basicProfile`), by the login's
/// deadline. Best effort: the login succeeded either way, and the token is
/// saved whatever happens here.
async fn look_up_user(client: &OAuthClient, token: &Token, deadline: Instant) -> Option<User> {
    if !token.scopes().contains(Scope::BasicProfile) {
        return None;
    }
    match tokio::time::timeout_at(deadline, client.me(token.access_token())).await {
        Ok(Ok(user)) => crate::profile::plausible_user(user),
        Ok(Err(e)) => {
            crate::warn(format!(
                "logged in, but could not ask the server who you are: {}",
                crate::failure::chain(&e)
            ));
            None
        }
        Err(_) => {
            crate::warn(
                "logged in, but the server did not say who you are before the login's deadline",
            );
            None
        }
    }
}

/// The whole profile, in one atomic write under the lock.
async fn save(
    store: &ProfileStore,
    token: &Token,
    client: StoredClient,
    user: Option<User>,
) -> Result<(), Failure> {
    let document = ProfileDocument::new(Some(token.clone()), Profile { client, user });
    store
        .update(move |doc| *doc = Some(document))
        .await
        .map_err(Failure::from)
}

fn report(
    store: &ProfileStore,
    token: &Token,
    user: Option<&User>,
    requested: ScopeSet,
    no_store_secret: bool,
) {
    match user {
        Some(user) => outln!(
            "Logged in as {} (@{})",
            printable(&user.name),
            printable(&user.username)
        ),
        None => outln!("Logged in"),
    }
    outln!("Scopes: {}", token.scopes());
    let missing = token.scopes().missing_from(requested);
    if !missing.is_empty() {
        outln!("Not granted: {missing}");
    }
    outln!("Saved to {}", store.path().display());
    if no_store_secret {
        outln!("Client secret: not stored (give it to `token` for refreshes)");
    }
    outln!(
        "Token expires: {}",
        describe_expiry(token.expires_at(), std::time::SystemTime::now())
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: the auto-approve path printed reqwest's error, whose URL
    /// is the callback with its `code=` and `state=`.
    #[tokio::test]
    async fn a_failed_follow_names_neither_code_nor_state() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!(
            "http://127.0.0.1:{closed}/callback?code=c0de-secret-value&state=st4te-secret-value"
        );
        let http = medium_oauth::tls::client_builder()
            .unwrap()
            .build()
            .unwrap();
        let e = http.get(&url).send().await.unwrap_err();
        assert!(
            e.to_string().contains("c0de-secret"),
            "the hazard is real: {e}"
        );
        let said = follow_failure(e);
        assert!(
            !said.contains("c0de-secret") && !said.contains("st4te-secret"),
            "{said}"
        );
        assert!(
            said.contains("could not follow the authorize URL"),
            "{said}"
        );
        #[cfg(target_os = "linux")]
        assert!(said.contains("Connection refused"), "{said}");
    }
}
