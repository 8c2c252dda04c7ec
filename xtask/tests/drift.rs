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

/// A copy of the workspace's specs and snapshots, to drift at will.
fn copy_of_the_workspace() -> tempfile::TempDir {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("generated")).unwrap();
    for file in [
        "medium-oauth2-openapi.yml",
        "generated/medium_oauth2_api.rs",
        "medium-resource-api.yml",
        "generated/medium_resource_api.rs",
    ] {
        std::fs::copy(workspace.join(file), tmp.path().join(file)).unwrap();
    }
    tmp
}

/// Replaces `anchor`, which must be in the file, with `replacement`.
fn drift(path: &Path, anchor: &str, replacement: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(
        text.contains(anchor),
        "{} no longer has {anchor:?}",
        path.display()
    );
    std::fs::write(path, text.replace(anchor, replacement)).unwrap();
}

#[test]
fn check_fails_on_a_new_scope_value_and_passes_after_regenerating() {
    let tmp = copy_of_the_workspace();

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

/// Both snapshots are checked in one run, and each drift is shown against
/// its own spec. The resource drift is in the image upload, which progenitor
/// never sees: only the generated extras carry it.
#[test]
fn check_reports_drift_in_both_snapshots_in_one_run() {
    let tmp = copy_of_the_workspace();
    let root = tmp.path();
    drift(
        &root.join("medium-oauth2-openapi.yml"),
        "              - uploadImage\n          description: >-\n            The list of scopes",
        "              - uploadImage\n              - publishComment\n          description: >-\n            The list of scopes",
    );
    drift(
        &root.join("medium-resource-api.yml"),
        "contentType: image/jpeg, image/png, image/gif, image/tiff",
        "contentType: image/jpeg, image/png, image/gif, image/tiff, image/webp",
    );

    let failed = xtask(root, &["--check"]);
    let stdout = String::from_utf8_lossy(&failed.stdout);
    assert_eq!(failed.status.code(), Some(1), "{stdout}");
    for expected in [
        "--- a/generated/medium_oauth2_api.rs",
        "+++ b/generated/medium_oauth2_api.rs (from medium-oauth2-openapi.yml)",
        "+        #[serde(rename = \"publishComment\")]",
        "--- a/generated/medium_resource_api.rs",
        "+++ b/generated/medium_resource_api.rs (from medium-resource-api.yml)",
        "+                \"image/webp\",",
        "generated/medium_resource_api.rs has drifted from medium-resource-api.yml",
        "cargo xtask codegen",
    ] {
        assert!(stdout.contains(expected), "{expected}\n{stdout}");
    }

    let fixed = xtask(root, &[]);
    let stdout = String::from_utf8_lossy(&fixed.stdout);
    assert!(fixed.status.success(), "{stdout}");
    assert!(
        stdout.contains("updated generated/medium_oauth2_api.rs"),
        "{stdout}"
    );
    assert!(
        stdout.contains("updated generated/medium_resource_api.rs"),
        "{stdout}"
    );
    let again = xtask(root, &["--check"]);
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stdout)
    );
}

/// Only the resource spec drifted: the OAuth snapshot is reported up to
/// date and the run still fails.
#[test]
fn a_drift_in_the_resource_snapshot_alone_fails_the_check() {
    let tmp = copy_of_the_workspace();
    let root = tmp.path();
    drift(
        &root.join("medium-resource-api.yml"),
        "x-medium-scope: uploadImage",
        "x-medium-scope: publishPost",
    );
    let before = std::fs::read(root.join("generated/medium_resource_api.rs")).unwrap();
    let failed = xtask(root, &["--check"]);
    let stdout = String::from_utf8_lossy(&failed.stdout);
    assert_eq!(failed.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("generated/medium_oauth2_api.rs is up to date"),
        "{stdout}"
    );
    assert!(
        stdout.contains("+        pub const SCOPE: &str = \"publishPost\";"),
        "{stdout}"
    );
    assert_eq!(
        std::fs::read(root.join("generated/medium_resource_api.rs")).unwrap(),
        before,
        "--check must not write"
    );
}

/// Review finding: a generation error in the first target stopped the run
/// before the second target's drift was reported. Every target is tried:
/// the broken spec's error and the other snapshot's drift both show, and
/// the run exits 2, as for any error.
#[test]
fn an_error_in_one_spec_does_not_hide_the_other_snapshots_drift() {
    let tmp = copy_of_the_workspace();
    let root = tmp.path();
    drift(
        &root.join("medium-oauth2-openapi.yml"),
        "        expires_at:\n          type: integer",
        "        expires_at:\n          type: [integer, string]",
    );
    drift(
        &root.join("medium-resource-api.yml"),
        "x-medium-scope: uploadImage",
        "x-medium-scope: publishPost",
    );
    let resource_before = std::fs::read(root.join("generated/medium_resource_api.rs")).unwrap();

    let failed = xtask(root, &["--check"]);
    let stdout = String::from_utf8_lossy(&failed.stdout);
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert_eq!(failed.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("error: medium-oauth2-openapi.yml: ")
            && stderr.contains("/components/schemas/TokenResponse/properties/expires_at/type"),
        "{stderr}"
    );
    assert!(
        stdout.contains("+        pub const SCOPE: &str = \"publishPost\";"),
        "{stdout}"
    );
    assert!(
        stdout.contains("generated/medium_resource_api.rs has drifted"),
        "{stdout}"
    );
    assert_eq!(
        std::fs::read(root.join("generated/medium_resource_api.rs")).unwrap(),
        resource_before,
        "--check must not write"
    );

    // Without --check the good target is still written.
    let written = xtask(root, &[]);
    let stdout = String::from_utf8_lossy(&written.stdout);
    assert_eq!(written.status.code(), Some(2), "{stdout}");
    assert!(
        stdout.contains("updated generated/medium_resource_api.rs"),
        "{stdout}"
    );
    assert!(
        String::from_utf8_lossy(&written.stderr).contains("error: medium-oauth2-openapi.yml: "),
        "{stdout}"
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
