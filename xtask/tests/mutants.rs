//! `cargo xtask mutants` end to end, with a stand-in for cargo-mutants (an
//! external tool, installed separately) that answers as it does: counts in
//! `mutants.out/outcomes.json`, survivors in `mutants.out/missed.txt`.

use std::path::Path;
use std::process::Output;

/// Found by the unit tests' pass: 5 caught, 1 timeout, 3 unviable, and two
/// survivors; the whole suite then catches the first of them.
const STAND_IN: &str = r#"#!/bin/sh
out=""
prev=""
for arg in "$@"; do
  [ "$prev" = "--output" ] && out="$arg"
  prev="$arg"
done
mkdir -p "$out/mutants.out"
printf '%s\n' "$*" >> "$(dirname "$0")/calls"
case " $* " in
  *" -C=--lib "*)
    echo '{"caught": 5, "missed": 2, "timeout": 1, "unviable": 3}' > "$out/mutants.out/outcomes.json"
    printf 'src/a.rs:1:5: replace * with + in f\nsrc/b.rs:2:9: replace g -> bool with true\n' > "$out/mutants.out/missed.txt"
    ;;
  *)
    echo '{"caught": 1, "missed": 1, "timeout": 0, "unviable": 0}' > "$out/mutants.out/outcomes.json"
    printf 'src/b.rs:2:9: replace g -> bool with true\n' > "$out/mutants.out/missed.txt"
    ;;
esac
"#;

fn run(dir: &Path, extra: &[&str]) -> (Output, Vec<String>) {
    let _ = std::fs::remove_file(dir.join("calls"));
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("mutants")
        .arg("--output")
        .arg(dir.join("out"))
        .args(extra)
        .env("CARGO", dir.join("cargo"))
        .output()
        .expect("run xtask");
    let calls = std::fs::read_to_string(dir.join("calls")).unwrap_or_default();
    (output, calls.lines().map(str::to_owned).collect())
}

fn stand_in() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let cargo = dir.path().join("cargo");
    std::fs::write(&cargo, STAND_IN).unwrap();
    std::fs::set_permissions(&cargo, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

#[test]
fn two_passes_rerun_only_the_survivors_and_sum_their_figures() {
    let dir = stand_in();
    let (output, calls) = run(dir.path(), &[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert!(calls[0].contains("-C=--lib"), "{}", calls[0]);
    assert!(
        calls[1].ends_with(
            r"--re=^(?:src/a\.rs:1:5: replace \* with \+ in f|src/b\.rs:2:9: replace g -> bool with true)$"
        ),
        "{}",
        calls[1]
    );
    // 6 of 8 viable caught, 1 timeout: 87.5%, under the floor of 90.
    assert!(
        stdout.contains(
            "medium-oauth: 6 caught, 1 missed, 1 timeouts, 3 unviable: 87.5% of 8 viable caught"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("  src/b.rs:2:9: replace g -> bool with true"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("src/a.rs:1:5"),
        "caught in the second pass: {stdout}"
    );
    assert_eq!(output.status.code(), Some(1));

    let (output, _) = run(dir.path(), &["--min", "87.5"]);
    assert_eq!(output.status.code(), Some(0), "at the floor passes");
    let (output, _) = run(dir.path(), &["--min", "87.6"]);
    assert_eq!(output.status.code(), Some(1), "just under fails");
}

#[test]
fn a_single_pass_runs_the_whole_suite_once() {
    let dir = stand_in();
    let (output, calls) = run(
        dir.path(),
        &["--single-pass", "-p", "medium-oauth-emulator"],
    );
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert!(
        calls[0].contains("--package medium-oauth-emulator"),
        "{}",
        calls[0]
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("medium-oauth-emulator: 1 caught, 1 missed, 0 timeouts, 0 unviable: 50.0% of 2 viable caught"),
        "{stdout}"
    );
    assert_eq!(output.status.code(), Some(1));
}

#[test]
fn a_pass_that_leaves_no_figures_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (output, _) = {
        use std::os::unix::fs::PermissionsExt;
        let cargo = dir.path().join("cargo");
        std::fs::write(&cargo, "#!/bin/sh\nexit 3\n").unwrap();
        std::fs::set_permissions(&cargo, std::fs::Permissions::from_mode(0o755)).unwrap();
        run(dir.path(), &[])
    };
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("outcomes.json"), "{stderr}");
    assert_eq!(output.status.code(), Some(2));
}
