//! An example service whose main job is "Connect your Medium account":
//! each user's grant goes into the shared store, and any number of
//! instances of this program, sharing one database, serve the same
//! accounts. A login may start on one instance and its callback land on
//! another: the pending login waits in the database too.
//!
//! ```sh
//! # One instance, SQLite, and a local Medium emulator started in-process:
//! cargo run -p medium-oauth-connect
//! # A fleet: every instance names the same PostgreSQL, key and Medium.
//! cargo run -p medium-oauth-connect -- --database-url postgres://… \
//!     --key-file /run/secrets/tokens.key --medium https://medium.example
//! ```
//!
//! Open the printed address and press Connect: the emulator's consent page
//! asks which Medium user to sign in as; back on the service, the account
//! is listed with its status (valid, refreshing, or needs
//! re-authorization).

mod pages;
mod serve;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use medium_oauth::{ClientId, ClientSecret, OAuthClient};
use medium_oauth_store::{Accounts, EncryptionKey, KEY_BYTES, Keyring, TokenDatabase};

/// Bytes of a key file at most: 64 hex digits and a newline, with room
/// for a Windows line end. A longer file is not a key.
const MAX_KEY_FILE_BYTES: u64 = 128;

/// The id rows are sealed under: one key for the life of the example.
const KEY_ID: &str = "connect-1";

/// "Connect your Medium account": an example service over the shared store.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Where to listen (port 0: any free port; the address is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// The address users reach this service at, as Medium sends them back
    /// to it (behind a load balancer, the balancer's). Default: the
    /// listening address.
    #[arg(long)]
    public_url: Option<String>,
    /// `sqlite:PATH` (one machine) or `postgres://…` (a fleet).
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite:connect.db")]
    database_url: String,
    /// A file holding the key tokens are sealed with, as 64 hex digits;
    /// created with a random key when missing. Every instance needs the
    /// same key.
    #[arg(long, default_value = "connect.key")]
    key_file: PathBuf,
    /// The Medium (or emulator) base URL: its authorization server is
    /// `BASE/m/oauth`, its API `BASE/v1`. Default: an emulator started in
    /// this process.
    #[arg(long)]
    medium: Option<String>,
    /// The app's client id.
    #[arg(long, env = "MEDIUM_CLIENT_ID", default_value = "demo-client")]
    client_id: String,
    /// The app's client secret.
    #[arg(
        long,
        env = "MEDIUM_CLIENT_SECRET",
        default_value = "demo-secret",
        hide_default_value = true,
        hide_env_values = true
    )]
    client_secret: String,
    /// A name shown on every page, to tell instances apart.
    #[arg(long, default_value = "connect")]
    name: String,
}

/// What every request shares.
pub(crate) struct App {
    pub(crate) accounts: Accounts,
    pub(crate) client: OAuthClient,
    pub(crate) name: String,
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("medium-oauth-connect: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let public_url = args
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"));
    let callback = format!("{}/callback", public_url.trim_end_matches('/'));

    // Kept alive for the life of the service when started here.
    let mut _emulator = None;
    let medium = match &args.medium {
        Some(medium) => medium.trim_end_matches('/').to_owned(),
        None => {
            let emulator = medium_oauth_emulator::Emulator::start(
                medium_oauth_emulator::Config::default(),
                "127.0.0.1:0",
            )
            .await
            .map_err(|e| format!("cannot start the emulator: {e}"))?;
            let base = emulator.base_url();
            _emulator = Some(emulator);
            base
        }
    };
    let client = OAuthClient::builder(
        ClientId::new(args.client_id),
        ClientSecret::new(args.client_secret),
        callback.as_str(),
    )
    .authorization_server(format!("{medium}/m/oauth"))
    .api_server(format!("{medium}/v1"))
    .build()
    .map_err(|e| e.to_string())?;

    let keys = Keyring::new(key_from_file(&args.key_file)?);
    let db = TokenDatabase::connect(&args.database_url, keys)
        .await
        .map_err(|e| format!("the token database: {e}"))?;
    let accounts = Accounts::builder(client.clone(), db).build();
    let app = Arc::new(App {
        accounts,
        client,
        name: args.name,
    });
    // The first line a supervisor (or a test) reads.
    println!("listening on http://{addr}");
    serve::serve(listener, pages::router(app)).await;
    Ok(())
}

/// The key in `path`, or a new random one written there (readable by this
/// user alone) when the file is missing. An existing file that is not a
/// key is an error naming it, and is left as it is. Instances starting
/// together agree on one key: the file appears whole or not at all.
fn key_from_file(path: &std::path::Path) -> Result<EncryptionKey, String> {
    use std::io::Read;
    let shown = path.display();
    let bad = |what: &str| format!("key file {shown}: {what}");
    match std::fs::metadata(path) {
        // A FIFO would block the start, a directory is no key.
        Ok(meta) if !meta.is_file() => return Err(bad("not a regular file")),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(key) = create_key_file(path).map_err(|e| bad(&e))? {
                return Ok(key);
            }
        }
        Err(e) => return Err(bad(&e.to_string())),
    }
    let file = std::fs::File::open(path).map_err(|e| bad(&e.to_string()))?;
    let mut text = String::new();
    file.take(MAX_KEY_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| bad(&e.to_string()))?;
    if text.len() as u64 > MAX_KEY_FILE_BYTES {
        return Err(bad("longer than a key file"));
    }
    parse_key(text.trim()).ok_or_else(|| bad(&format!("not {} hex digits", 2 * KEY_BYTES)))
}

/// Writes a new key beside `path` and links it into place, which fails if
/// another instance linked its own first (`None`: read theirs).
fn create_key_file(path: &std::path::Path) -> Result<Option<EncryptionKey>, String> {
    use std::io::Write;
    let key = EncryptionKey::generate(KEY_ID).map_err(|e| e.to_string())?;
    let hex: String = key
        .expose_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut suffix = [0u8; 8];
    getrandom::getrandom(&mut suffix).map_err(|e| e.to_string())?;
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(format!(".{}.tmp", u64::from_le_bytes(suffix)));
    let temporary = std::path::PathBuf::from(temporary);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options.open(&temporary).and_then(|mut file| {
        file.write_all(format!("{hex}\n").as_bytes())?;
        file.sync_all()
    });
    let linked = written.and_then(|()| std::fs::hard_link(&temporary, path));
    let _ = std::fs::remove_file(&temporary);
    match linked {
        Ok(()) => Ok(Some(key)),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

fn parse_key(hex: &str) -> Option<EncryptionKey> {
    if hex.len() != 2 * KEY_BYTES || !hex.is_ascii() {
        return None;
    }
    let mut bytes = [0u8; KEY_BYTES];
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    EncryptionKey::new(KEY_ID, bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_file_is_made_once_then_read_and_a_bad_one_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let made = key_from_file(&path).unwrap();
        let read = key_from_file(&path).unwrap();
        assert_eq!(made.expose_bytes(), read.expose_bytes());

        let bad = dir.path().join("bad");
        for text in ["zz", &"g".repeat(64), &"a".repeat(200), "é"] {
            std::fs::write(&bad, text).unwrap();
            let err = key_from_file(&bad).unwrap_err();
            assert!(err.contains("bad"), "{err}");
            assert_eq!(std::fs::read_to_string(&bad).unwrap(), text);
        }
        // A key padded past the cap, whatever follows, is not a key file.
        let key = "0a".repeat(32);
        let cap = MAX_KEY_FILE_BYTES as usize;
        for padding in [cap - key.len() + 1, cap] {
            let padded = format!("{key}{}z", " ".repeat(padding));
            std::fs::write(&bad, &padded).unwrap();
            let err = key_from_file(&bad).unwrap_err();
            assert!(err.contains("longer than a key file"), "{err}");
        }
        std::fs::write(&bad, format!("{key}{}", " ".repeat(cap - key.len()))).unwrap();
        assert!(key_from_file(&bad).is_ok());
        assert!(parse_key(&"0a".repeat(32)).is_some());
        let err = key_from_file(dir.path()).unwrap_err();
        assert!(err.contains("not a regular file"), "{err}");
    }

    #[test]
    fn instances_starting_together_agree_on_one_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let keys: Vec<[u8; KEY_BYTES]> = std::thread::scope(|scope| {
            let starts: Vec<_> = (0..8)
                .map(|_| scope.spawn(|| *key_from_file(&path).unwrap().expose_bytes()))
                .collect();
            starts.into_iter().map(|s| s.join().unwrap()).collect()
        });
        assert!(keys.iter().all(|k| k == &keys[0]));
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "no temporary file is left behind");
    }
}
