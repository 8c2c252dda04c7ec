//! The drift check catches a spec change and regeneration clears it.

use std::path::Path;
use std::process::{Command, Output};

fn xtask(root: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("codegen")
        .args(extra)
        .arg("--root")
        .arg(root)
        .output()
        .expect("run xtask")
}

#[test]
fn check_fails_on_a_new_scope_value_and_passes_after_regenerating() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("generated")).unwrap();
    for file in [
        "medium-oauth2-openapi.yml",
        "generated/medium_oauth2_api.rs",
    ] {
        std::fs::copy(workspace.join(file), tmp.path().join(file)).unwrap();
    }

    let clean = xtask(tmp.path(), &["--check"]);
    assert!(
        clean.status.success(),
        "the committed snapshot must be up to date"
    );
    assert!(String::from_utf8_lossy(&clean.stdout).contains("up to date"));

    let spec_path = tmp.path().join("medium-oauth2-openapi.yml");
    let spec = std::fs::read_to_string(&spec_path).unwrap();
    let anchor =
        "              - uploadImage\n          description: >-\n            The list of scopes";
    assert!(
        spec.contains(anchor),
        "the token response's scope enum moved"
    );
    let drifted = spec.replace(
        anchor,
        &anchor.replace(
            "- uploadImage\n",
            "- uploadImage\n              - publishComment\n",
        ),
    );
    std::fs::write(&spec_path, drifted).unwrap();

    let before = std::fs::read(tmp.path().join("generated/medium_oauth2_api.rs")).unwrap();
    let failed = xtask(tmp.path(), &["--check"]);
    let stdout = String::from_utf8_lossy(&failed.stdout);
    assert_eq!(failed.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("+        #[serde(rename = \"publishComment\")]"),
        "{stdout}"
    );
    assert!(stdout.contains("cargo xtask codegen"), "{stdout}");
    assert_eq!(
        std::fs::read(tmp.path().join("generated/medium_oauth2_api.rs")).unwrap(),
        before,
        "--check must not write"
    );

    let fixed = xtask(tmp.path(), &[]);
    assert!(fixed.status.success());
    assert!(String::from_utf8_lossy(&fixed.stdout).contains("updated"));
    let again = xtask(tmp.path(), &["--check"]);
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stdout)
    );
}

#[test]
fn unknown_arguments_are_usage_errors() {
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["codegen", "--frobnicate"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--frobnicate"));
}
