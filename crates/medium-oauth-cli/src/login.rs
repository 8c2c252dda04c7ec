//! `medium-oauth login`: the installed-app flow of RFC 8252 — a listener on
//! loopback, the system browser, one callback that passes the state check.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use clap::Args;
use medium_oauth::{
    ClientId, ClientSecret, Error, FileTokenStore, OAuthClient, PendingAuthorization, Scope,
    ScopeSet, Token,
};
use medium_oauth_emulator::{Config, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, Emulator};
use tokio::sync::{Mutex, oneshot};

use crate::Common;
use crate::commands::describe_expiry;
use crate::failure::Failure;

/// The path of the redirect URI on the loopback listener.
const CALLBACK_PATH: &str = "/callback";

/// How often the spinner moves while waiting for the browser.
const SPINNER_TICK: Duration = Duration::from_millis(100);

#[derive(Args, Debug)]
pub struct LoginArgs {
    #[command(flatten)]
    common: Common,
    /// Scopes to request, comma-separated.
    #[arg(long, default_value = "basicProfile")]
    scopes: String,
    /// Port of the loopback listener for the callback [default: any free port].
    #[arg(long, value_name = "PORT")]
    redirect_port: Option<u16>,
    /// Do not open a browser: print the URL alone on stdout and wait.
    #[arg(long)]
    no_browser: bool,
    /// Seconds to wait for the browser to come back.
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    timeout: u64,
    /// Start an in-process emulator with its demo app and log in to it.
    #[arg(long)]
    emulator: bool,
}

/// Whether a browser can be opened here at all.
fn has_display() -> bool {
    if cfg!(target_os = "linux") {
        std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some()
    } else {
        true
    }
}

struct Callback {
    client: OAuthClient,
    pending: PendingAuthorization,
    done: Mutex<Option<oneshot::Sender<Result<Token, Error>>>>,
    rejected: AtomicUsize,
}

fn page(status: StatusCode, title: &str, text: &str) -> Response {
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title></head>\
         <body><h1 id=\"title\">{title}</h1><p>{text}</p></body></html>"
    );
    (status, Html(body)).into_response()
}

async fn callback(State(state): State<Arc<Callback>>, RawQuery(query): RawQuery) -> Response {
    let query = query.unwrap_or_default();
    let verified = match state.pending.verify(&query) {
        Ok(verified) => verified,
        Err(Error::CsrfMismatch) => {
            // Not this login's callback: refuse it and keep waiting for the
            // real one, which a forged request must not be able to cancel.
            let n = state.rejected.fetch_add(1, Ordering::SeqCst) + 1;
            eprintln!(
                "\nrejected a callback with a wrong state (possible CSRF; {n} so far); still waiting"
            );
            return page(
                StatusCode::BAD_REQUEST,
                "Login failed",
                "This response does not belong to the login in progress.",
            );
        }
        Err(Error::AlreadyCompleted) => {
            return page(
                StatusCode::BAD_REQUEST,
                "Already logged in",
                "You can close this tab.",
            );
        }
        Err(e) => {
            let shown = page(StatusCode::BAD_REQUEST, "Login failed", &e.to_string());
            if let Some(done) = state.done.lock().await.take() {
                let _ = done.send(Err(e));
            }
            return shown;
        }
    };
    let result = state.client.exchange_code(verified).await;
    let shown = match &result {
        Ok(_) => page(
            StatusCode::OK,
            "Logged in",
            "medium-oauth has your token. You can close this tab.",
        ),
        Err(e) => page(StatusCode::BAD_GATEWAY, "Login failed", &e.to_string()),
    };
    if let Some(done) = state.done.lock().await.take() {
        let _ = done.send(result);
    }
    shown
}

pub async fn run(args: LoginArgs) -> Result<(), Failure> {
    let scopes: ScopeSet = args
        .scopes
        .parse()
        .map_err(|e: medium_oauth::UnknownScope| Failure::usage(format!("--scopes: {e}")))?;
    if scopes.is_empty() {
        return Err(Failure::usage("--scopes: name at least one scope"));
    }
    let store = FileTokenStore::new(args.common.credentials_path()?);
    // Fail before the browser opens, not after: an unreadable file would
    // otherwise cost the user a whole login.
    store.read_document()?;

    // With the emulator and no browser to show its consent page, it approves
    // by itself and this process plays the browser.
    let auto_approve = args.emulator && (args.no_browser || !has_display());
    let emulator = if args.emulator {
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
        Some(emulator)
    } else {
        None
    };
    let common = &args.common;
    let (client_id, client_secret) = match (&common.client_id, &common.client_secret, &emulator) {
        (Some(id), Some(secret), _) => (id.clone(), secret.clone()),
        (None, None, Some(_)) => (DEMO_CLIENT_ID.to_owned(), DEMO_CLIENT_SECRET.to_owned()),
        (None, _, _) => {
            return Err(Failure::usage(
                "missing client id: pass --client-id or set MEDIUM_CLIENT_ID",
            ));
        }
        (_, None, _) => {
            return Err(Failure::usage(
                "missing client secret: pass --client-secret or set MEDIUM_CLIENT_SECRET",
            ));
        }
    };
    let authorize_url = common
        .authorize_url
        .clone()
        .or_else(|| emulator.as_ref().map(Emulator::authorization_server));
    let api_url = common
        .api_url
        .clone()
        .or_else(|| emulator.as_ref().map(Emulator::api_server));

    let port = args.redirect_port.unwrap_or(0);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| {
            Failure::other(format!(
                "cannot listen on 127.0.0.1:{port} for the callback: {e}"
            ))
        })?;
    let local = listener
        .local_addr()
        .map_err(|e| Failure::other(e.to_string()))?;
    let redirect_uri = format!("http://{local}{CALLBACK_PATH}");

    let mut builder = OAuthClient::builder(
        ClientId::new(client_id.clone()),
        ClientSecret::new(client_secret),
        redirect_uri,
    );
    if let Some(url) = &authorize_url {
        builder = builder.authorization_server(url.clone());
    }
    if let Some(url) = &api_url {
        builder = builder.api_server(url.clone());
    }
    let client = builder
        .pending_ttl(Duration::from_secs(args.timeout))
        .build()?;
    let (url, pending) = client.authorize_url(scopes)?;
    // Listen before the URL is shown: a Ctrl-C right after it must cancel
    // cleanly, not kill the process.
    let cancelled = interrupted()?;

    let (done_tx, done_rx) = oneshot::channel();
    let state = Arc::new(Callback {
        client: client.clone(),
        pending,
        done: Mutex::new(Some(done_tx)),
        rejected: AtomicUsize::new(0),
    });
    let router = axum::Router::new()
        .route(CALLBACK_PATH, axum::routing::get(callback))
        .with_state(state.clone());
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, router)
            .with_graceful_shutdown(async {
                let _ = stop_rx.await;
            })
            .await;
    });

    if auto_approve {
        println!("{url}");
        let target = url.to_string();
        tokio::spawn(async move {
            // Follows the emulator's redirect to our own callback.
            if let Err(e) = reqwest::get(target).await {
                eprintln!("could not follow the authorize URL: {e}");
            }
        });
    } else if args.no_browser {
        println!("{url}");
    } else if has_display() && open::that_detached(url.as_str()).is_ok() {
        eprintln!(
            "Opened the authorization page in your browser. If it did not appear, open:\n{url}"
        );
    } else {
        eprintln!("Open this URL in a browser to log in:");
        println!("{url}");
    }

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

    let timeout = Duration::from_secs(args.timeout);
    let outcome = tokio::select! {
        result = done_rx => result.map_err(|_| Failure::other("the callback listener stopped"))?.map_err(Failure::from),
        () = tokio::time::sleep(timeout) => {
            let rejected = state.rejected.load(Ordering::SeqCst);
            Err(if rejected > 0 {
                Failure::new(Failure::STATE_MISMATCH, format!(
                    "timed out after {}s; {rejected} callback(s) with a wrong state were rejected (possible CSRF)",
                    args.timeout
                ))
            } else {
                Failure::new(Failure::NETWORK, format!(
                    "timed out after {}s waiting for the browser to come back", args.timeout
                ))
            })
        }
        () = cancelled => Err(Failure::new(Failure::CANCELLED, "cancelled")),
    };
    spinner.finish_and_clear();
    let _ = stop_tx.send(());
    let _ = server.await;
    let token = outcome?;

    let user = if token.scopes().contains(Scope::BasicProfile) {
        who_am_i(client.api_server().as_str(), &token).await
    } else {
        None
    };
    save(
        &store,
        &token,
        &client_id,
        authorize_url,
        api_url,
        user.as_ref(),
    )?;

    match &user {
        Some(user) => println!(
            "Logged in as {} (@{})",
            user["name"].as_str().unwrap_or_default(),
            user["username"].as_str().unwrap_or_default()
        ),
        None => println!("Logged in"),
    }
    println!("Scopes: {}", token.scopes());
    let missing = token.scopes().missing_from(scopes);
    if !missing.is_empty() {
        println!("Not granted: {missing}");
    }
    println!("Saved to {}", store.path().display());
    println!("Token expires: {}", describe_expiry(token.expires_at()));
    if let Some(emulator) = emulator {
        emulator.shutdown().await;
    }
    Ok(())
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

/// `GET /v1/me`: who logged in. Best effort: the login succeeded either way.
async fn who_am_i(api_server: &str, token: &Token) -> Option<serde_json::Value> {
    let url = format!("{}/me", api_server.trim_end_matches('/'));
    let response = reqwest::Client::new()
        .get(url)
        .bearer_auth(token.access_token().expose_secret())
        .send()
        .await
        .ok()?;
    if !response.status().is_success() {
        return None;
    }
    let body: serde_json::Value = response.json().await.ok()?;
    body.get("data").cloned()
}

fn save(
    store: &FileTokenStore,
    token: &Token,
    client_id: &str,
    authorize_url: Option<String>,
    api_url: Option<String>,
    user: Option<&serde_json::Value>,
) -> Result<(), Failure> {
    store.save_blocking(token)?;
    store.set_field(
        "client",
        serde_json::json!({
            "client_id": client_id,
            "authorize_url": authorize_url,
            "api_url": api_url,
        }),
    )?;
    if let Some(user) = user {
        store.set_field("user", user.clone())?;
    }
    Ok(())
}
