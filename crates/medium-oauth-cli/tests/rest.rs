//! `post`, `publications` and `api` end to end: the binary against an
//! emulator over loopback, logged in as its demo user (an editor of one
//! publication, a writer for another).

mod common;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use medium_oauth::api::{License, PublishStatus};
use medium_oauth_emulator::demo::{
    EDITOR_PUBLICATION_ID, OTHER_PUBLICATION_ID, USER_ID, WRITER_PUBLICATION_ID,
};

/// Longest a command may take: each is a few loopback requests.
const DEADLINE: Duration = Duration::from_secs(60);

/// Every scope the three commands need.
const ALL_SCOPES: &str = "basicProfile,listPublications,publishPost";

/// An emulator and a CLI logged in to it with `scopes`.
async fn logged_in(scopes: &str) -> (Emulator, Cli) {
    let emu = emulator(auto_approving()).await;
    let cli = Cli::new(&emu);
    let (child, stdout, url) = cli.start_login(&["--scopes", scopes]);
    assert_eq!(browse(&url).await.status(), 200);
    let (code, out, err) = finish(child, stdout);
    assert_eq!(code, 0, "{out}\n{err}");
    (emu, cli)
}

/// Runs the CLI with `args`, killed if still running at [`DEADLINE`].
fn run(cli: &Cli, args: &[&str]) -> Output {
    output_within(cli.command(args), DEADLINE)
}

/// Runs the CLI with `input` on its standard input.
fn run_with_stdin(cli: &Cli, args: &[&str], input: &[u8]) -> Output {
    let mut command: Command = cli.command(args);
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    rx.recv_timeout(DEADLINE)
        .unwrap_or_else(|_| {
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGKILL);
            }
            panic!("still running after {DEADLINE:?}")
        })
        .unwrap()
}

/// A file in a fresh directory, kept alive with it.
fn file(name: &str, contents: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, contents).unwrap();
    (dir, path)
}

fn assert_exit(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_markdown_file_becomes_a_post_titled_by_its_heading() {
    let (emu, cli) = logged_in(ALL_SCOPES).await;
    let markdown = "Intro line\n\n```sh\n# not the title\n```\n\n# Hello from the CLI\n\nBody.\n";
    let (_dir, path) = file("post.md", markdown.as_bytes());
    let out = run(
        &cli,
        &[
            "post",
            path.to_str().unwrap(),
            "--tags",
            "rust,cli",
            "--tags",
            "oauth",
            "--status",
            "draft",
            "--license",
            "cc-40-by-nc-sa",
            "--canonical-url",
            "https://example.com/original",
            "--notify-followers",
        ],
    );
    assert_exit(&out, 0);
    let posts = emu.posts();
    assert_eq!(posts.len(), 1);
    let post = &posts[0];
    assert_eq!(
        text(&out.stdout),
        format!("{}\n", post.post.url),
        "the URL alone"
    );
    let sent = &post.request;
    assert_eq!(sent.title, "Hello from the CLI");
    assert_eq!(sent.content, markdown, "the heading stays in the content");
    assert_eq!(sent.tags, ["rust", "cli", "oauth"]);
    assert_eq!(sent.publish_status, Some(PublishStatus::Draft));
    assert_eq!(sent.license, Some(License::Cc40ByNcSa));
    assert_eq!(
        sent.canonical_url.as_deref(),
        Some("https://example.com/original")
    );
    assert_eq!(sent.notify_followers, Some(true));
    assert_eq!(post.publication_id, None);
    assert_eq!(post.author_id, USER_ID);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_from_stdin_with_a_title_goes_into_an_edited_publication() {
    let (emu, cli) = logged_in(ALL_SCOPES).await;
    let markdown = "No heading here, only text.\n";
    let out = run_with_stdin(
        &cli,
        &[
            "post",
            "-",
            "--title",
            "Given Title",
            "--publication",
            EDITOR_PUBLICATION_ID,
            "--status",
            "public",
        ],
        markdown.as_bytes(),
    );
    assert_exit(&out, 0);
    let posts = emu.posts();
    assert_eq!(posts.len(), 1);
    let post = &posts[0];
    assert_eq!(text(&out.stdout), format!("{}\n", post.post.url));
    assert_eq!(post.request.title, "Given Title");
    assert_eq!(post.request.content, markdown);
    assert_eq!(post.request.publish_status, Some(PublishStatus::Public));
    assert_eq!(post.request.license, None, "Medium's default applies");
    assert!(post.request.tags.is_empty());
    assert_eq!(post.publication_id.as_deref(), Some(EDITOR_PUBLICATION_ID));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_publish_post_nothing_is_sent() {
    let (emu, cli) = logged_in("basicProfile,listPublications").await;
    let (_dir, path) = file("post.md", b"# Title\n\nBody\n");
    let before = emu.api_requests();
    for extra in [&[][..], &["--publication", EDITOR_PUBLICATION_ID][..]] {
        let mut args = vec!["post", path.to_str().unwrap()];
        args.extend_from_slice(extra);
        let out = run(&cli, &args);
        assert_exit(&out, 7);
        let err = text(&out.stderr);
        assert!(err.contains("publishPost"), "{err}");
        assert!(
            err.contains("medium-oauth login --scopes basicProfile,listPublications,publishPost"),
            "{err}"
        );
        assert!(text(&out.stdout).is_empty());
    }
    assert_eq!(emu.api_requests(), before, "no REST request was sent");
    assert!(emu.posts().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_cannot_publish_in_the_publication() {
    let (emu, cli) = logged_in(ALL_SCOPES).await;
    let (_dir, path) = file("post.md", b"# Title\n\nBody\n");
    let out = run(
        &cli,
        &[
            "post",
            path.to_str().unwrap(),
            "--publication",
            WRITER_PUBLICATION_ID,
            "--status",
            "public",
        ],
    );
    assert_exit(&out, 5);
    let err = text(&out.stderr);
    assert!(err.contains("the publication refused the post"), "{err}");
    assert!(err.contains("HTTP 403"), "{err}");
    assert!(text(&out.stdout).is_empty());
    assert!(emu.posts().is_empty());

    // A draft is what a writer may post.
    let draft = run(
        &cli,
        &[
            "post",
            path.to_str().unwrap(),
            "--publication",
            WRITER_PUBLICATION_ID,
            "--status",
            "draft",
        ],
    );
    assert_exit(&draft, 0);
    assert_eq!(emu.posts().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posts_refused_before_sending_are_usage_errors() {
    let (emu, cli) = logged_in(ALL_SCOPES).await;
    let before = emu.api_requests();
    let (_dir, heading) = file("post.md", b"# Title\n\nBody\n");
    let heading = heading.to_str().unwrap();
    let (_d2, bare) = file("bare.md", b"## Only a section\n\nBody\n");
    let (_d3, latin1) = file("latin1.md", b"# Caf\xe9\n");
    let long_title = "x".repeat(101);
    for (args, says) in [
        (vec!["post", heading, "--tags", "a,b,c,d"], "4 tags"),
        (vec!["post", heading, "--tags", "a,,b"], "tag 1 is empty"),
        (
            vec!["post", heading, "--title", &long_title],
            "101 characters",
        ),
        (
            vec!["post", heading, "--canonical-url", "ftp://x/y"],
            "canonical URL",
        ),
        (vec!["post", bare.to_str().unwrap()], "give --title"),
        (vec!["post", latin1.to_str().unwrap()], "not UTF-8"),
        (vec!["post", heading, "--status", "secret"], "invalid value"),
        (vec!["post", heading, "--license", "mit"], "cc-40-by"),
    ] {
        let out = run(&cli, &args);
        assert_exit(&out, 2);
        let err = text(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
    }
    let missing = run(&cli, &["post", "/nonexistent/post.md"]);
    assert_exit(&missing, 1);
    assert!(text(&missing.stderr).contains("cannot read /nonexistent/post.md"));
    assert_eq!(emu.api_requests(), before, "nothing was sent");
}

/// FILE may be 512 KiB, the most the help promises, from a file or from
/// standard input, and is sent whole; a byte more is refused before
/// anything is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_may_be_512_kib_and_not_a_byte_more() {
    let (emu, cli) = logged_in(ALL_SCOPES).await;
    let mut markdown = b"# At the cap\n\n".to_vec();
    markdown.resize(512 * 1024, b'x');
    let (_dir, path) = file("cap.md", &markdown);
    let args = ["post", path.to_str().unwrap(), "--status", "draft"];
    assert_exit(&run(&cli, &args), 0);
    let args = ["post", "-", "--status", "draft"];
    assert_exit(&run_with_stdin(&cli, &args, &markdown), 0);
    let posts = emu.posts();
    assert_eq!(posts.len(), 2);
    for post in posts {
        assert_eq!(post.request.content.len(), markdown.len(), "sent whole");
    }

    markdown.push(b'x');
    let before = emu.api_requests();
    let (_dir, path) = file("over.md", &markdown);
    for out in [
        run(&cli, &["post", path.to_str().unwrap()]),
        run_with_stdin(&cli, &["post", "-"], &markdown),
    ] {
        assert_exit(&out, 2);
        let err = text(&out.stderr);
        assert!(err.contains("is over 524288 bytes"), "{err}");
    }
    assert_eq!(emu.api_requests(), before, "nothing was sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publications_are_listed_with_the_users_role() {
    let (_emu, cli) = logged_in(ALL_SCOPES).await;
    let out = run(&cli, &["publications"]);
    assert_exit(&out, 0);
    let table = text(&out.stdout);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    let words = |line: &str| {
        line.split_whitespace()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(words(lines[0]), ["ID", "ROLE", "NAME", "URL"]);
    assert_eq!(words(lines[1])[..2], [EDITOR_PUBLICATION_ID, "editor"]);
    assert_eq!(words(lines[2])[..2], [WRITER_PUBLICATION_ID, "writer"]);
    assert!(lines[1].contains("Demo Editorial"), "{table}");
    assert!(!table.contains(OTHER_PUBLICATION_ID));

    let json = run(&cli, &["publications", "--json"]);
    assert_exit(&json, 0);
    let listed: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let roles: Vec<(&str, &str)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p["role"].as_str().unwrap()))
        .collect();
    assert_eq!(
        roles,
        [
            (EDITOR_PUBLICATION_ID, "editor"),
            (WRITER_PUBLICATION_ID, "writer")
        ]
    );
    assert_eq!(listed[0]["name"], "Demo Editorial");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publications_without_list_publications_sends_nothing() {
    let (emu, cli) = logged_in("basicProfile").await;
    let before = emu.api_requests();
    let out = run(&cli, &["publications"]);
    assert_exit(&out, 7);
    assert!(text(&out.stderr).contains("listPublications"));
    assert_eq!(emu.api_requests(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_calls_go_to_the_api_server_with_the_token() {
    let (emu, cli) = logged_in(ALL_SCOPES).await;
    let me = run(&cli, &["api", "GET", "/me"]);
    assert_exit(&me, 0);
    let user: serde_json::Value = serde_json::from_slice(&me.stdout).unwrap();
    assert_eq!(user["data"]["username"], "demo");
    assert_eq!(user["data"]["id"], USER_ID);
    assert!(text(&me.stdout).contains("\n  "), "pretty-printed");

    let path = format!("/users/{USER_ID}/posts");
    let body = r##"{"title":"Raw","contentFormat":"markdown","content":"# Raw\n\nBody","publishStatus":"draft"}"##;
    let created = run(&cli, &["api", "post", &path, "--data", body]);
    assert_exit(&created, 0);
    let answer: serde_json::Value = serde_json::from_slice(&created.stdout).unwrap();
    let posts = emu.posts();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].request.title, "Raw");
    assert_eq!(answer["data"]["url"], posts[0].post.url.as_str());

    // The same from a file.
    let (_dir, json) = file("post.json", body.as_bytes());
    let data = format!("@{}", json.display());
    assert_exit(&run(&cli, &["api", "POST", &path, "--data", &data]), 0);
    assert_eq!(emu.posts().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_refuses_to_send_the_token_elsewhere() {
    let (emu, cli) = logged_in(ALL_SCOPES).await;
    let before = emu.api_requests();
    let not_found = emu.not_found_requests();
    for path in [
        "https://evil.example/x",
        "//evil.example/x",
        "/../x",
        "/%2e%2e/x",
        "/\\evil.example/x",
        "me",
    ] {
        let out = run(&cli, &["api", "GET", path]);
        assert_exit(&out, 2);
        assert!(text(&out.stderr).contains("the token is sent to 127.0.0.1 alone"));
        assert!(text(&out.stdout).is_empty());
    }
    let out = run(&cli, &["api", "POST", "/me", "--data", "{not json"]);
    assert_exit(&out, 2);
    assert!(text(&out.stderr).contains("--data is not JSON"));
    assert_eq!(emu.api_requests(), before, "nothing was sent");
    assert_eq!(emu.not_found_requests(), not_found);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_status_prints_the_body_and_exits_5() {
    let (emu, cli) = logged_in(ALL_SCOPES).await;
    // Another user's publications: 403.
    let path = format!(
        "/users/{}/publications",
        "1f86bb0c2d0c4a5e9a2b7d41c3e5f6a7b8c"
    );
    let out = run(&cli, &["api", "GET", &path]);
    assert_exit(&out, 5);
    let body: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(body["errors"][0]["message"].is_string(), "{body}");
    let err = text(&out.stderr);
    assert!(err.contains("HTTP 403"), "{err}");
    assert!(!err.contains("the token was refused"), "{err}");

    // A post without its required fields: 400.
    let path = format!("/users/{USER_ID}/posts");
    let out = run(&cli, &["api", "POST", &path, "--data", "{}"]);
    assert_exit(&out, 5);
    assert!(text(&out.stderr).contains("HTTP 400"));
    assert!(emu.posts().is_empty());

    // Every token refused: 401, after the one refresh, says why.
    emu.refuse_api_tokens(true);
    let out = run(&cli, &["api", "GET", "/me"]);
    assert_exit(&out, 5);
    let err = text(&out.stderr);
    assert!(err.contains("HTTP 401"), "{err}");
    assert!(err.contains("the token was refused"), "{err}");
}

/// The three commands refresh as `token` does: an expired stored token is
/// refreshed (and saved) before the call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_is_refreshed_before_the_call() {
    let (emu, cli) = logged_in(ALL_SCOPES).await;
    let mut doc = stored(&cli.credentials);
    let old = doc["token"]["access_token"].as_str().unwrap().to_owned();
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    doc["token"]["expires_at_ms"] = (now_ms - 60_000).into();
    std::fs::write(&cli.credentials, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();

    let out = run(&cli, &["api", "GET", "/me"]);
    assert_exit(&out, 0);
    assert_eq!(emu.refreshes(), 1);
    let saved = stored(&cli.credentials);
    assert_ne!(saved["token"]["access_token"], old.as_str(), "saved");

    assert_exit(&run(&cli, &["publications"]), 0);
    assert_eq!(emu.refreshes(), 1, "the saved token is used as it is");
}

/// A token the API refuses is refreshed once and the call sent again, as
/// the library's BearerAuth does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_is_refreshed_once_and_the_call_retried() {
    let (emu, cli) = logged_in(ALL_SCOPES).await;
    // Forget the stored token's access token: the API refuses it, the
    // refresh token still works.
    let mut doc = stored(&cli.credentials);
    doc["token"]["access_token"] = "not-a-token-the-emulator-issued".into();
    std::fs::write(&cli.credentials, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();

    let out = run(&cli, &["api", "GET", "/me"]);
    assert_exit(&out, 0);
    assert_eq!(emu.refreshes(), 1);
    let (_dir, path) = file("post.md", b"# After a refusal\n\nBody\n");
    let doc = stored(&cli.credentials);
    assert_ne!(
        doc["token"]["access_token"],
        "not-a-token-the-emulator-issued"
    );
    assert_exit(&run(&cli, &["post", path.to_str().unwrap()]), 0);
    assert_eq!(emu.posts().len(), 1);
}

/// A hostile API server: answers `/me`, the user's publications and each
/// publication's contributors with fixed JSON whose publication name holds
/// escape sequences, a forged line and C1 controls. A raw TCP server, as a
/// hostile one would be; returns its API base URL.
async fn hostile_publications_server() -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let name = "Evil\u{1b}[2J\u{1b}]0;pwned\u{7}\r\nerror: forged\u{9b}31m\u{7f}";
    let me = serde_json::json!({"data": {"id": "u1", "username": "u", "name": "U",
        "url": "https://medium.com/@u", "imageUrl": ""}});
    let publications = serde_json::json!({"data": [{"id": "p1", "name": name,
        "description": "\u{1b}[31m", "url": "https://medium.com/p1\u{1b}[1A", "imageUrl": ""}]});
    let contributors = serde_json::json!({"data": [
        {"publicationId": "p1", "userId": "u1", "role": "editor"}]});
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let (me, publications, contributors) =
                (me.clone(), publications.clone(), contributors.clone());
            tokio::spawn(async move {
                let mut head = Vec::new();
                while !head.ends_with(b"\r\n\r\n") && head.len() < 64 * 1024 {
                    let mut byte = [0u8; 1];
                    match tokio::time::timeout(DEADLINE, socket.read(&mut byte)).await {
                        Ok(Ok(1)) => head.push(byte[0]),
                        _ => return,
                    }
                }
                let head = String::from_utf8_lossy(&head);
                let path = head.split(' ').nth(1).unwrap_or_default();
                let body = match path {
                    "/v1/me" => me,
                    "/v1/users/u1/publications" => publications,
                    "/v1/publications/p1/contributors" => contributors,
                    _ => serde_json::json!({"errors": [{"message": "no", "code": 0}]}),
                }
                .to_string();
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
            });
        }
    });
    format!("http://{addr}/v1")
}

/// Hostile server text never reaches the terminal raw: the table makes
/// control characters spaces, the JSON escapes them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_publication_name_is_printed_harmless() {
    let (_emu, cli) = logged_in(ALL_SCOPES).await;
    let hostile = hostile_publications_server().await;
    let out = run(&cli, &["publications", "--api-url", &hostile]);
    assert_exit(&out, 0);
    let table = text(&out.stdout);
    assert!(
        !table.chars().any(|c| c.is_control() && c != '\n'),
        "{table:?}"
    );
    assert_eq!(table.lines().count(), 2, "no forged line: {table:?}");
    assert!(table.contains("editor"), "{table:?}");
    assert!(
        table.contains("Evil [2J ]0;pwned   error: forged 31m "),
        "{table:?}"
    );

    let out = run(&cli, &["publications", "--json", "--api-url", &hostile]);
    assert_exit(&out, 0);
    let json = text(&out.stdout);
    assert!(
        !json.chars().any(|c| c.is_control() && c != '\n'),
        "{json:?}"
    );
    let listed: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(listed[0]["name"].as_str().unwrap().contains('\u{9b}'));

    let out = run(
        &cli,
        &[
            "api",
            "GET",
            "/users/u1/publications",
            "--api-url",
            &hostile,
        ],
    );
    assert_exit(&out, 0);
    let body = text(&out.stdout);
    assert!(
        !body.chars().any(|c| c.is_control() && c != '\n'),
        "{body:?}"
    );
}

/// A `--no-store-secret` login: while its token is valid the commands use
/// it as it is; once expired they need the secret, as `token` does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_stored_secret_a_valid_token_is_used_as_it_is() {
    let emu = emulator(auto_approving()).await;
    let cli = Cli::new(&emu);
    let (child, stdout, url) = cli.start_login(&["--scopes", ALL_SCOPES, "--no-store-secret"]);
    assert_eq!(browse(&url).await.status(), 200);
    let (code, out, err) = finish(child, stdout);
    assert_eq!(code, 0, "{out}\n{err}");
    let no_secret = |args: &[&str]| {
        let mut command = cli.command(args);
        command.env_remove("MEDIUM_CLIENT_SECRET");
        output_within(command, DEADLINE)
    };
    let out = no_secret(&["publications", "--json"]);
    assert_exit(&out, 0);
    assert_eq!(emu.refreshes(), 0);

    let mut doc = stored(&cli.credentials);
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    doc["token"]["expires_at_ms"] = (now_ms - 60_000).into();
    std::fs::write(&cli.credentials, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    let before = emu.api_requests();
    let out = no_secret(&["api", "GET", "/me"]);
    assert_exit(&out, 2);
    assert!(text(&out.stderr).contains("--client-secret-file"));
    assert_eq!(emu.api_requests(), before);
}

/// Regression: Medium answers `/me` for a token without basicProfile with
/// 401 and its missing-scope code (the emulator did with 403 before), and
/// `status` took that for a refused token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_takes_a_token_without_basic_profile_for_a_valid_one() {
    let (emu, cli) = logged_in("publishPost").await;
    let before = emu.api_requests();
    let out = run(&cli, &["status"]);
    assert_exit(&out, 0);
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        shown.contains("Token check: the server at 127.0.0.1 accepts the token"),
        "{shown}"
    );
    assert_eq!(emu.api_requests(), before + 1, "the token was checked");
    assert_eq!(
        medium_oauth::MISSING_SCOPE_CODE,
        medium_oauth_emulator::codes::MISSING_SCOPE
    );
}

/// A raw HTTP/1.1 server: each request's head (and its Content-Length
/// body) goes to `answer`, which gives the status line's code and reason
/// and a JSON body. Returns its API base URL (`/v1`).
async fn raw_server<F>(answer: F) -> String
where
    F: Fn(&str) -> (u16, String) + Send + Sync + 'static,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let answer = Arc::new(answer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let answer = answer.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                while !head.ends_with(b"\r\n\r\n") && head.len() < 64 * 1024 {
                    let mut byte = [0u8; 1];
                    match tokio::time::timeout(DEADLINE, socket.read(&mut byte)).await {
                        Ok(Ok(1)) => head.push(byte[0]),
                        _ => return,
                    }
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let length: usize = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse().ok())?
                    })
                    .unwrap_or(0);
                let mut body = vec![0u8; length];
                let _ = socket.read_exact(&mut body).await;
                let (status, body) = answer(&head);
                let reply = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(reply.as_bytes()).await;
            });
        }
    });
    format!("http://{addr}/v1")
}

fn header<'a>(head: &'a str, name: &str) -> &'a str {
    head.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
        .unwrap_or_default()
}

/// Regression: a server echoing the Authorization header in its body (a
/// debug page, a proxy's diagnostic) had `api` print the bearer token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_does_not_print_a_token_the_server_echoes() {
    let (_emu, cli) = logged_in(ALL_SCOPES).await;
    let token = stored(&cli.credentials)["token"]["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let echo = raw_server(|head| {
        let auth = header(head, "authorization").to_owned();
        (
            400,
            serde_json::json!({"errors": [{"message": format!("bad request; you sent {auth}"),
                "code": 0}]})
            .to_string(),
        )
    })
    .await;
    let out = run(&cli, &["api", "GET", "/me", "--api-url", &echo]);
    assert_eq!(out.status.code(), Some(5));
    let shown = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(
        !shown.contains(&token),
        "the access token is on the terminal: {shown}"
    );
}

/// Regression: `api` printed JSON through serde_json's `Value`, which
/// rounds an integer beyond 64 bits and writes `1e2` as `100.0`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_prints_the_servers_numbers_as_they_are() {
    let (_emu, cli) = logged_in(ALL_SCOPES).await;
    let server = raw_server(|_| {
        (
            200,
            r#"{"data":{"id":12345678901234567890123,"n":1e2}}"#.to_owned(),
        )
    })
    .await;
    let out = run(&cli, &["api", "GET", "/me", "--api-url", &server]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(
        shown.contains("12345678901234567890123"),
        "the id was changed: {shown}"
    );
}

/// Regression: bidirectional overrides and isolates (U+202A..U+202E,
/// U+2066..U+2069) in a publication's name reached the terminal and could
/// reorder what the table shows (Trojan Source, CVE-2021-42574).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bidi_controls_in_server_text_do_not_reach_the_terminal() {
    let (_emu, cli) = logged_in(ALL_SCOPES).await;
    let server = raw_server(|head| {
        let path = head.split(' ').nth(1).unwrap_or_default().to_owned();
        let body = match path.as_str() {
            "/v1/me" => serde_json::json!({"data": {"id": "u1", "username": "u",
                "name": "U", "url": "https://medium.com/@u", "imageUrl": ""}}),
            "/v1/users/u1/publications" => serde_json::json!({"data": [{"id": "p1",
                "name": "Evil\u{202e}moc.live//:sptth\u{202c}", "description": "",
                "url": "https://medium.com/p1\u{2066}", "imageUrl": ""}]}),
            "/v1/publications/p1/contributors" => serde_json::json!({"data": [
                {"publicationId": "p1", "userId": "u1", "role": "editor"}]}),
            _ => serde_json::json!({"errors": [{"message": "no", "code": 0}]}),
        };
        (200, body.to_string())
    })
    .await;
    let out = run(&cli, &["publications", "--api-url", &server]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    assert!(
        !table
            .chars()
            .any(|c| matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')),
        "bidi controls on the terminal: {table:?}"
    );
}

/// Regression: a file with bare-CR line endings (CommonMark counts a lone
/// CR as a line ending) got the rest of the file as its title.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bare_cr_file_is_titled_by_its_heading_line() {
    let (emu, cli) = logged_in(ALL_SCOPES).await;
    let (_dir, path) = file("cr.md", b"# Title\rBody line one.\rBody line two.\r");
    let out = run(&cli, &["post", path.to_str().unwrap(), "--status", "draft"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let posts = emu.posts();
    assert_eq!(posts[0].request.title, "Title", "the title took the body");
}

/// A refresh that fails during `post` (the token endpoint answers 500, or
/// 200 without a refresh token) keeps the stored refresh token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_refresh_during_post_keeps_the_refresh_token() {
    let (_emu, cli) = logged_in(ALL_SCOPES).await;
    let mut doc = stored(&cli.credentials);
    let refresh = doc["token"]["refresh_token"].clone();
    assert!(refresh.is_string(), "{doc}");
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    doc["token"]["expires_at_ms"] = (now_ms - 60_000).into();
    std::fs::write(&cli.credentials, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    let (_dir, path) = file("post.md", b"# T\n\nBody\n");

    let failing = raw_server(|_| (500, r#"{"errors":[{"message":"down","code":0}]}"#.into())).await;
    let out = run(
        &cli,
        &["post", path.to_str().unwrap(), "--api-url", &failing],
    );
    assert_ne!(out.status.code(), Some(0));
    assert_eq!(stored(&cli.credentials)["token"]["refresh_token"], refresh);

    let partial = raw_server(|head| {
        if head.contains("/tokens") {
            (
                200,
                r#"{"token_type":"Bearer","access_token":"new","scope":["basicProfile","publishPost","listPublications"],"expires_at":9999999999999}"#
                    .into(),
            )
        } else {
            (500, r#"{"errors":[{"message":"down","code":0}]}"#.into())
        }
    })
    .await;
    let out = run(
        &cli,
        &["post", path.to_str().unwrap(), "--api-url", &partial],
    );
    assert_ne!(out.status.code(), Some(0));
    assert_eq!(stored(&cli.credentials)["token"]["refresh_token"], refresh);
}
