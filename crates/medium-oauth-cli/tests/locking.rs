//! Every writer of the credentials file waits for its lock: a process that
//! holds it (a refresh in flight) sees nothing change under it. Linux: a
//! child waiting for the lock is seen through `/proc/PID/fd`.
#![cfg(target_os = "linux")]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::*;
use medium_oauth::{FileTokenStore, TokenStore};

/// Longest wait for a child to reach the lock: it gets there at once, so
/// only a hang takes this long.
const REACH_DEADLINE: Duration = Duration::from_secs(30);

fn lock_path(credentials: &Path) -> PathBuf {
    let mut name = credentials.file_name().unwrap().to_os_string();
    name.push(".lock");
    credentials.with_file_name(name)
}

/// Waits until `child` has the lock file open, that is, is waiting for the
/// lock this test holds (the file is opened only to take the lock).
async fn until_waiting_for_lock(child: &Child, lock: &Path) {
    let fds = PathBuf::from(format!("/proc/{}/fd", child.id()));
    let started = Instant::now();
    loop {
        let open = std::fs::read_dir(&fds)
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|target| target == lock));
        if open {
            return;
        }
        assert!(
            started.elapsed() < REACH_DEADLINE,
            "the child never opened the lock file"
        );
        tokio::task::yield_now().await;
    }
}

async fn logged_in(cli: &Cli) {
    let (child, stdout, url) = cli.start_login(&[]);
    assert_eq!(browse(&url).await.status(), 200);
    let ((code, out, err), _) = finish_async(child, stdout).await;
    assert_eq!(code, 0, "{out}\n{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_writes_only_once_it_holds_the_lock() {
    let emu = emulator(auto_approving()).await;
    let cli = Cli::new(&emu);
    logged_in(&cli).await;
    let before = std::fs::read(&cli.credentials).unwrap();
    let store = FileTokenStore::new(&cli.credentials);
    let lock = store.lock().await.unwrap();

    let (child, stdout, url) = cli.start_login(&[]);
    assert_eq!(browse(&url).await.status(), 200);
    until_waiting_for_lock(&child, &lock_path(&cli.credentials)).await;
    assert_eq!(
        std::fs::read(&cli.credentials).unwrap(),
        before,
        "written while another process held the lock"
    );
    drop(lock);
    let ((code, out, err), _) = finish_async(child, stdout).await;
    assert_eq!(code, 0, "{out}\n{err}");
    let after = store.load().await.unwrap().unwrap();
    let old: serde_json::Value = serde_json::from_slice(&before).unwrap();
    assert_ne!(
        after.access_token().expose_secret(),
        old["token"]["access_token"].as_str().unwrap(),
        "the new login's token is saved once the lock is free"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_removes_only_once_it_holds_the_lock_and_keeps_the_lock_file() {
    let emu = emulator(auto_approving()).await;
    let cli = Cli::new(&emu);
    logged_in(&cli).await;
    let store = FileTokenStore::new(&cli.credentials);
    let lock = store.lock().await.unwrap();

    let child = cli
        .command(&["logout"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lock_file = lock_path(&cli.credentials);
    until_waiting_for_lock(&child, &lock_file).await;
    assert!(
        cli.credentials.exists(),
        "removed while another process held the lock"
    );
    drop(lock);
    let output = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert!(!cli.credentials.exists());
    assert!(lock_file.exists(), "the lock file is never removed");
}
