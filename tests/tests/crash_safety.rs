//! A writer killed with SIGKILL at random moments never leaves a torn file.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use medium_oauth::FileTokenStore;
use rand::Rng;

/// Kills per run: enough random instants to land inside every phase of a save
/// (write, fsync, rename, directory fsync) many times over.
const KILLS: usize = 60;

#[cfg(unix)]
#[test]
fn sigkill_during_saves_leaves_the_old_or_the_new_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("credentials.json");
    let mut rng = rand::rng();
    let mut last_seen = 0u64;
    for round in 0..KILLS {
        let mut child = Command::new(env!("CARGO_BIN_EXE_e2e-store-writer"))
            .arg(&path)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "started");
        std::thread::sleep(Duration::from_micros(rng.random_range(0..20_000)));
        // SIGKILL: no destructor, no flush, no chance to tidy up.
        assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGKILL) }, 0);
        child.wait().unwrap();

        let token = FileTokenStore::new(&path)
            .load_blocking()
            .unwrap_or_else(|e| panic!("round {round}: the file is torn: {e}"))
            .expect("a token");
        let access = token.access_token().expose_secret();
        let n: u64 = access
            .strip_prefix("access-")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("round {round}: unexpected token"));
        assert_eq!(
            token.refresh_token().map(|t| t.expose_secret().to_owned()),
            Some(format!("refresh-{n}")),
            "round {round}: fields from two different saves"
        );
        let expires_ms = token
            .expires_at()
            .unwrap()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis();
        assert_eq!(expires_ms, u128::from(n), "round {round}");
        assert!(n >= 1);
        last_seen = last_seen.max(n);
        // The temporary file a kill between write and rename leaves holds
        // a refresh token: the read above, finding the lock free, removed
        // it.
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with(".credentials.json."))
            .collect();
        assert!(leftovers.is_empty(), "round {round}: {leftovers:?}");
    }
    assert!(last_seen > 1, "the writer made progress between kills");
}
