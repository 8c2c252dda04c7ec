//! The CLI under hostile input: forged callbacks, hostile servers, half-open
//! connections, planted links, leftovers and out-of-range expiries.

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use common::*;

/// Regression: a bare `curl http://127.0.0.1:PORT/callback` (or any
/// `error=` without the login's state) ended a login in progress, and its
/// text went raw into the page and the terminal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bare_or_forged_error_callback_does_not_end_the_login() {
    let emu = emulator(auto_approving()).await;
    let cli = Cli::new(&emu);
    let (child, stdout, url) = cli.start_login(&["--timeout", "60"]);
    let redirect_uri = query_param(&url, "redirect_uri");
    for forged in [
        redirect_uri.clone(),
        format!(
            "{redirect_uri}?error=%3Cscript%3Ealert(1)%3C/script%3E&error_description=%1B%5B2J%1B%5D0;pwned%07"
        ),
        format!("{redirect_uri}?error=access_denied&state=forged"),
    ] {
        let page = get(&forged).await.unwrap();
        assert_eq!(page.status(), 400, "{forged}");
        let text = page.text().await.unwrap();
        assert!(!text.contains("<script>"), "{text}");
        assert!(text.contains("still"), "{text}");
    }
    assert!(!cli.credentials.exists());
    let real = browse(&url).await;
    assert_eq!(real.status(), 200, "the login was still waiting");
    let ((code, out, err), _) = finish_async(child, stdout).await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(err.contains("3 so far"), "{err}");
    assert!(!err.contains('\u{1b}') && !err.contains('\u{7}'), "{err:?}");
    assert!(cli.credentials.exists());
}

/// Regression: a `/me` that never answered hung the login past its
/// `--timeout`, and the token was never saved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_me_that_never_answers_ends_the_login_at_its_deadline_with_the_token_saved() {
    let emu = emulator(auto_approving()).await;
    let mut cli = Cli::new(&emu);
    cli.api_url = hostile_api(&emu, MeBehaviour::Silent).await.url;
    let (child, stdout, url) = cli.start_login(&["--timeout", "4"]);
    assert_eq!(browse(&url).await.status(), 200);
    let ((code, out, err), took) = finish_async(child, stdout).await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(err.contains("before the login's deadline"), "{err}");
    assert!(out.contains("Logged in\n"), "{out}");
    // The library's own request timeout is 30 s: the login's deadline came
    // first.
    assert!(took < Duration::from_secs(25), "took {took:?}");
    let saved = stored(&cli.credentials);
    assert!(saved["token"]["access_token"].is_string(), "{saved}");
    assert!(saved.get("user").is_none(), "{saved}");
}

/// Regression: an endless `/me` body grew the CLI to 4 GB.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_me_body_neither_hangs_the_login_nor_grows_its_memory() {
    /// Far above the CLI's own footprint (tens of MiB), far below the
    /// 512 MiB the server sends.
    const MAX_RSS_KIB: i64 = 200 * 1024;
    let emu = emulator(auto_approving()).await;
    let mut cli = Cli::new(&emu);
    cli.api_url = hostile_api(&emu, MeBehaviour::Endless).await.url;
    let (child, stdout, url) = cli.start_login(&["--timeout", "60"]);
    assert_eq!(browse(&url).await.status(), 200);
    let (code, out, err, rss) = tokio::task::spawn_blocking(move || finish_measured(child, stdout))
        .await
        .unwrap();
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(err.contains("exceeds 1048576 bytes"), "{err}");
    assert!(rss < MAX_RSS_KIB, "peak memory {rss} KiB");
    assert!(stored(&cli.credentials)["token"]["access_token"].is_string());
}

/// Regression: once the wait was over, Ctrl-C was swallowed by the signal
/// handler nobody listened to any more.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_after_the_wait_stops_the_process() {
    let emu = emulator(auto_approving()).await;
    let mut cli = Cli::new(&emu);
    let api = hostile_api(&emu, MeBehaviour::Silent).await;
    cli.api_url = api.url.clone();
    let (child, stdout, url) = cli.start_login(&["--timeout", "120"]);
    let notified = api.me_called.notified();
    assert_eq!(browse(&url).await.status(), 200);
    // The login has stopped waiting and asks who logged in.
    notified.await;
    let pid = child.id() as i32;
    let started = std::time::Instant::now();
    let waiter = tokio::task::spawn_blocking(move || {
        let mut child = child;
        drop(stdout);
        child.wait().unwrap()
    });
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let status = tokio::time::timeout(Duration::from_secs(60), waiter)
        .await
        .expect("Ctrl-C was ignored")
        .unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGINT), "{status:?}");
    assert!(started.elapsed() < Duration::from_secs(60));
}

/// The callback's port, from the URL a login printed.
fn callback_addr(url: &str) -> String {
    let redirect = query_param(url, "redirect_uri");
    let parsed = url::Url::parse(&redirect).unwrap();
    format!("127.0.0.1:{}", parsed.port().unwrap())
}

/// Regression: a connection left half-sent froze the login for about two
/// minutes after a successful exchange.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_open_connection_does_not_hold_the_login() {
    let emu = emulator(auto_approving()).await;
    let cli = Cli::new(&emu);
    let (child, stdout, url) = cli.start_login(&["--timeout", "120"]);
    let mut half = std::net::TcpStream::connect(callback_addr(&url)).unwrap();
    half.write_all(b"GET /callback HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .unwrap();
    assert_eq!(browse(&url).await.status(), 200);
    let ((code, out, err), took) = finish_async(child, stdout).await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(took < Duration::from_secs(20), "took {took:?}");
    drop(half);
}

/// A connection that never finishes its headers is cut off after
/// `HEADER_READ_TIMEOUT` (5 s), while the login goes on waiting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_sent_request_is_cut_off_by_the_header_read_timeout() {
    let emu = emulator(auto_approving()).await;
    let cli = Cli::new(&emu);
    let (child, stdout, url) = cli.start_login(&["--timeout", "120"]);
    let addr = callback_addr(&url);
    let closed = tokio::task::spawn_blocking(move || {
        let mut half = std::net::TcpStream::connect(addr).unwrap();
        half.write_all(b"GET /callback HTTP/1.1\r\n").unwrap();
        half.set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut rest = Vec::new();
        // EOF (with or without a 408 first) within the deadline.
        half.read_to_end(&mut rest).is_ok()
    })
    .await
    .unwrap();
    assert!(closed, "the listener kept a half-sent request open");
    assert_eq!(browse(&url).await.status(), 200);
    let ((code, out, err), _) = finish_async(child, stdout).await;
    assert_eq!(code, 0, "{out}\n{err}");
}

/// Logs in through `cli` (auto-approving emulator) and returns the stored
/// document.
async fn log_in(cli: &Cli) -> serde_json::Value {
    let (child, stdout, url) = cli.start_login(&[]);
    assert_eq!(browse(&url).await.status(), 200);
    let ((code, out, err), _) = finish_async(child, stdout).await;
    assert_eq!(code, 0, "{out}\n{err}");
    stored(&cli.credentials)
}

fn set_expiry_ms(cli: &Cli, ms: i64) {
    let mut doc = stored(&cli.credentials);
    doc["token"]["expires_at_ms"] = ms.into();
    std::fs::write(&cli.credentials, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
}

/// Regression: `status` panicked (exit 101) on every run once an expiry
/// before 1970 or after 9999 was stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_token_survive_expiries_before_1970_and_after_9999() {
    let emu = emulator(auto_approving()).await;
    let cli = Cli::new(&emu);
    log_in(&cli).await;
    for (ms, says) in [
        (-86_400_000_i64, "before 1970"),
        (i64::MAX, "after the year 9999"),
        (253_402_300_800_000, "after the year 9999"),
    ] {
        set_expiry_ms(&cli, ms);
        let out = cli.run(&["status", "--offline"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert!(text(&out.stdout).contains(says), "{}", text(&out.stdout));
        let json = cli.run(&["status", "--offline", "--json"]);
        assert_eq!(json.status.code(), Some(0), "{}", text(&json.stderr));
        let out = cli.run(&["token"]);
        assert_ne!(out.status.code(), Some(101), "{}", text(&out.stderr));
    }
}

/// Regression: a link planted at the lock file's name made `token` create
/// the link's target.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_refuses_a_planted_lock_link_and_creates_nothing() {
    let emu = emulator(auto_approving()).await;
    let cli = Cli::new(&emu);
    log_in(&cli).await;
    set_expiry_ms(&cli, 1000);
    let dir = cli.credentials.parent().unwrap();
    let target = dir.join("planted-target");
    // The login made the lock file; an attacker swaps it for a link.
    std::fs::remove_file(dir.join("credentials.json.lock")).unwrap();
    std::os::unix::fs::symlink(&target, dir.join("credentials.json.lock")).unwrap();
    let out = cli.run(&["token"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("symbolic link"), "{err}");
    assert!(err.contains("credentials.json.lock"), "{err}");
    assert!(!target.exists());
    assert!(out.stdout.is_empty());
}

/// Regression: `logout` deleted without the lock and unlinked the lock
/// file, and a crash's temporary file (holding the refresh token) stayed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_keeps_the_lock_file_and_removes_leftovers() {
    let emu = emulator(auto_approving()).await;
    let cli = Cli::new(&emu);
    let saved = log_in(&cli).await;
    let dir = cli.credentials.parent().unwrap();
    let leftover = dir.join(".credentials.json.Ab12Cd.tmp");
    std::fs::write(&leftover, serde_json::to_vec(&saved).unwrap()).unwrap();
    let out = cli.run(&["logout"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!cli.credentials.exists());
    assert!(
        !leftover.exists(),
        "the refresh token survived in a leftover"
    );
    assert!(dir.join("credentials.json.lock").exists());
}

/// Regression: `--client-secret` is readable in /proc/PID/cmdline by other
/// users; a file (or standard input) keeps it out of the process list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_secret_from_a_file_or_stdin_and_a_warning_for_the_argument() {
    let emu = emulator(auto_approving()).await;
    let cli = Cli::new(&emu);
    log_in(&cli).await;
    set_expiry_ms(&cli, 1000);
    let secret_file = cli.credentials.with_file_name("secret");
    std::fs::write(&secret_file, "demo-secret\n").unwrap();
    let path = secret_file.display().to_string();
    let out = cli
        .command(&["token", "--client-secret-file", &path])
        .env_remove("MEDIUM_CLIENT_SECRET")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        !text(&out.stderr).contains("warning"),
        "{}",
        text(&out.stderr)
    );

    set_expiry_ms(&cli, 1000);
    let mut child = cli
        .command(&["token", "--client-secret-file", "-"])
        .env_remove("MEDIUM_CLIENT_SECRET")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"demo-secret")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));

    set_expiry_ms(&cli, 1000);
    let out = cli.run(&["token", "--client-secret", "demo-secret"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("warning: --client-secret is visible"), "{err}");
    assert!(!err.contains("demo-secret"), "{err}");

    std::fs::write(&secret_file, "").unwrap();
    let out = cli
        .command(&["token", "--force-refresh", "--client-secret-file", &path])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("is empty"),
        "{}",
        text(&out.stderr)
    );
}

/// Longest any command below may take: each should end in well under a
/// second, and a hang must fail the test rather than stall the suite.
const PROMPTLY: Duration = Duration::from_secs(30);

/// Regression: a FIFO at the credentials path made every command block in
/// `open` until something wrote to it; `login` too, before it said anything.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_at_the_credentials_path_is_refused_at_once() {
    let emu = emulator(auto_approving()).await;
    let cli = Cli::new(&emu);
    std::fs::create_dir_all(cli.credentials.parent().unwrap()).unwrap();
    let fifo = std::ffi::CString::new(cli.credentials.as_os_str().as_encoded_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    for args in [
        &["status", "--offline"][..],
        &["token"],
        &[
            "login",
            "--no-browser",
            "--authorize-url",
            &cli.authorize_url,
            "--api-url",
            &cli.api_url,
        ],
    ] {
        let out = output_within(cli.command(args), PROMPTLY);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains("not a regular file"), "{args:?}: {err}");
        assert!(
            err.contains(&cli.credentials.display().to_string()),
            "{err}"
        );
        assert!(out.stdout.is_empty(), "{args:?}: {}", text(&out.stdout));
    }
    use std::os::unix::fs::FileTypeExt;
    assert!(
        std::fs::symlink_metadata(&cli.credentials)
            .unwrap()
            .file_type()
            .is_fifo(),
        "the FIFO was replaced"
    );
}

/// `{"data": USER}` for a hostile `/me`.
fn me_body(mut user: serde_json::Value) -> String {
    // The generated `User` needs all five fields: a body missing one is
    // refused as malformed before its text is looked at, and the test
    // would pass for that reason instead of its own.
    for field in ["id", "username", "name", "url", "imageUrl"] {
        if let Some(user) = user.as_object_mut() {
            user.entry(field).or_insert_with(|| "".into());
        }
    }
    serde_json::json!({ "data": user }).to_string()
}

/// Regression: a `/me` body within the 1 MiB cap described a user as large
/// as the cap; the login saved it, and the credentials file, now over the
/// store's 1 MiB limit, was refused by every later command (`login`
/// included) as too large.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_user_from_me_does_not_make_the_credentials_file_unreadable() {
    let emu = emulator(auto_approving()).await;
    let mut cli = Cli::new(&emu);
    let skeleton = me_body(serde_json::json!({"id": "1", "username": "demo", "name": ""}));
    let name = "n".repeat(medium_oauth2_api::MAX_RESPONSE_BYTES - skeleton.len());
    let body = me_body(serde_json::json!({"id": "1", "username": "demo", "name": name}));
    assert_eq!(
        body.len(),
        medium_oauth2_api::MAX_RESPONSE_BYTES,
        "at the cap"
    );
    cli.api_url = hostile_api(&emu, MeBehaviour::Answer(body)).await.url;
    let (child, stdout, url) = cli.start_login(&["--timeout", "60"]);
    assert_eq!(browse(&url).await.status(), 200);
    let ((code, out, err), _) = finish_async(child, stdout).await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.len() < 4096,
        "the name went to the terminal: {} bytes",
        out.len()
    );
    assert!(err.contains("a field over"), "{err}");
    let size = std::fs::metadata(&cli.credentials).unwrap().len();
    assert!(size < 64 * 1024, "{size} bytes stored");
    let status = cli.run(&["status", "--offline"]);
    assert_eq!(status.status.code(), Some(0), "{}", text(&status.stderr));
    let token = cli.run(&["token"]);
    assert_eq!(token.status.code(), Some(0), "{}", text(&token.stderr));
}

/// A `/me` naming the user with escape sequences and markup: the terminal
/// gets neither escape codes nor bells, at login or in `status`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_user_name_reaches_the_terminal_without_control_characters() {
    let emu = emulator(auto_approving()).await;
    let mut cli = Cli::new(&emu);
    let body = me_body(serde_json::json!({
        "id": "1",
        "username": "de\u{9b}31mmo\r\nerror: forged",
        "name": "Evil\u{1b}[2J\u{1b}]0;pwned\u{7} <script>x</script>",
    }));
    cli.api_url = hostile_api(&emu, MeBehaviour::Answer(body)).await.url;
    let (child, stdout, url) = cli.start_login(&["--timeout", "60"]);
    assert_eq!(browse(&url).await.status(), 200);
    let ((code, out, err), _) = finish_async(child, stdout).await;
    assert_eq!(code, 0, "{out}\n{err}");
    let status = cli.run(&["status"]);
    let shown = format!("{out}{err}{}{}", text(&status.stdout), text(&status.stderr));
    assert!(shown.contains("Evil"), "{shown}");
    for bad in ['\u{1b}', '\u{7}', '\u{9b}', '\r'] {
        assert!(!shown.contains(bad), "{bad:?} in {shown:?}");
    }
    assert!(!shown.contains("\nerror: forged"), "{shown}");
}

/// Regression: `--timeout` beyond what a clock can add panicked (exit 101,
/// "overflow when adding duration to instant").
#[test]
fn an_out_of_range_timeout_is_a_usage_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let credentials = dir.path().join("credentials.json");
    for timeout in ["18446744073709551615", "0"] {
        let out = output_within(
            {
                let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_medium-oauth"));
                command
                    .args(["login", "--emulator", "--no-browser", "--timeout", timeout])
                    .arg("--credentials")
                    .arg(&credentials)
                    .env_remove("MEDIUM_CLIENT_ID")
                    .env_remove("MEDIUM_CLIENT_SECRET");
                command
            },
            PROMPTLY,
        );
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "--timeout {timeout}: {err}");
        assert!(err.contains("--timeout"), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    assert!(!credentials.exists());
}

/// Regression: every rejected callback printed a line, so a page (or a
/// local process) sending thousands scrolled the authorize URL, which a
/// user without a browser must copy, out of the terminal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_forged_callbacks_prints_a_few_lines_not_one_each() {
    let emu = emulator(auto_approving()).await;
    let cli = Cli::new(&emu);
    let (child, stdout, url) = cli.start_login(&["--timeout", "60"]);
    let redirect_uri = query_param(&url, "redirect_uri");
    let http = http();
    for i in 0..150 {
        let forged = format!("{redirect_uri}?code=x&state=forged-{i}");
        assert_eq!(http.get(&forged).send().await.unwrap().status(), 400);
    }
    assert_eq!(browse(&url).await.status(), 200);
    let ((code, out, err), _) = finish_async(child, stdout).await;
    assert_eq!(code, 0, "{out}\n{err}");
    let lines = err.matches("rejected").count();
    assert!(lines <= 6, "{lines} lines for 150 rejections:\n{err}");
    assert!(err.contains("100 so far"), "{err}");
}

/// Regression: standard output closed by its reader (`| head -1`, a
/// script that stopped reading) made every command panic (exit 101, a
/// backtrace on stderr). It now ends as other Unix tools do, by SIGPIPE,
/// with nothing on stderr.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_standard_output_ends_the_command_as_sigpipe_not_a_panic() {
    use std::os::unix::process::ExitStatusExt;
    let emu = emulator(auto_approving()).await;
    let cli = Cli::new(&emu);
    log_in(&cli).await;
    for args in [
        &["status", "--offline"][..],
        &["token"],
        &["token", "--json"],
        &["completions", "bash"],
        &["logout"],
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let mut command = if args[0] == "completions" {
            let mut bare = std::process::Command::new(env!("CARGO_BIN_EXE_medium-oauth"));
            bare.args(args);
            bare
        } else {
            cli.command(args)
        };
        let out = command
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap();
        let err = text(&out.stderr);
        assert_eq!(out.status.signal(), Some(libc::SIGPIPE), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
    assert!(!cli.credentials.exists(), "logout did its work first");
}

/// Regression: the `user` kept beside the token is whatever `/me` said (the
/// previous version kept its `data` verbatim), and one field of another
/// type (`"imageUrl": null`) made the whole file "corrupt": no `token`, no
/// `status`, and `login` refused to start until the file was removed. Who
/// logged in is only shown; a `user` of another shape is ignored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_user_of_another_shape_does_not_lock_the_user_out() {
    let emu = emulator(auto_approving()).await;
    let cli = Cli::new(&emu);
    let saved = log_in(&cli).await;
    for user in [
        serde_json::json!({"id": "1", "username": "demo", "name": "Demo", "imageUrl": null}),
        serde_json::json!("demo"),
        serde_json::json!(["demo"]),
    ] {
        // As the previous version wrote it: nulls for servers not given,
        // and `/me`'s `data` verbatim.
        let previous = serde_json::json!({
            "version": 1,
            "token": saved["token"],
            "client": {
                "client_id": "demo-client",
                "authorize_url": null,
                "api_url": cli.api_url,
            },
            "user": user,
        });
        std::fs::write(&cli.credentials, previous.to_string()).unwrap();
        let status = cli.run(&["status", "--offline"]);
        assert_eq!(
            status.status.code(),
            Some(0),
            "{user}: {}",
            text(&status.stderr)
        );
        let token = cli.run(&["token"]);
        assert_eq!(
            text(&token.stdout).trim(),
            saved["token"]["access_token"].as_str().unwrap(),
            "{user}: {}",
            text(&token.stderr)
        );
    }
    // The rest of the file is still checked.
    let mut wrong = stored(&cli.credentials);
    wrong["client"] = serde_json::json!("demo-client");
    std::fs::write(&cli.credentials, wrong.to_string()).unwrap();
    let status = cli.run(&["status", "--offline"]);
    assert_eq!(status.status.code(), Some(1), "{}", text(&status.stderr));
    assert!(text(&status.stderr).contains("wrong shape"));
}

/// Sends `request` on a fresh connection to `addr` and returns the status
/// line of the answer ("" when the listener closed without one).
async fn raw_request(addr: &str, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    // The listener may answer (and close) before reading everything.
    let _ = socket.write_all(request).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(PROMPTLY, socket.read_to_end(&mut answer))
        .await
        .expect("the listener neither answered nor closed");
    let answer = String::from_utf8_lossy(&answer);
    answer.lines().next().unwrap_or_default().to_owned()
}

/// Callbacks no browser sends: a megabyte of query, invalid UTF-8 and NUL
/// in the state, the state twice, raw bytes in the request line. Each is
/// refused; none ends, stalls or crashes the login.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_callbacks_are_refused_and_the_login_goes_on() {
    let emu = emulator(auto_approving()).await;
    let cli = Cli::new(&emu);
    let (child, stdout, url) = cli.start_login(&["--timeout", "60"]);
    let addr = callback_addr(&url);
    let state = query_param(&url, "state");
    let huge = format!(
        "GET /callback?error=x&pad={} HTTP/1.1\r\nHost: a\r\n\r\n",
        "a".repeat(1024 * 1024)
    );
    for (request, says) in [
        (huge.into_bytes(), "HTTP/1.1 4"),
        (
            b"GET /callback?state=%FF%FE%00&code=x HTTP/1.1\r\nHost: a\r\n\r\n".to_vec(),
            "HTTP/1.1 400",
        ),
        (
            format!("GET /callback?state=forged&state={state}&code=x HTTP/1.1\r\nHost: a\r\n\r\n")
                .into_bytes(),
            "HTTP/1.1 400",
        ),
        (
            b"GET /callback?state=\xff\x1b[2J HTTP/1.1\r\nHost: a\r\n\r\n".to_vec(),
            "HTTP/1.1 400",
        ),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03".to_vec(), ""),
    ] {
        let status = raw_request(&addr, &request).await;
        assert!(
            status.starts_with(says),
            "{:?}: {status:?}",
            String::from_utf8_lossy(&request[..request.len().min(60)])
        );
    }
    assert_eq!(browse(&url).await.status(), 200);
    let ((code, out, err), _) = finish_async(child, stdout).await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(!err.contains('\u{1b}'), "{err:?}");
}
