//! Generates the raw client from the bundled spec into `OUT_DIR`.
//!
//! `cargo xtask codegen` writes the same bytes to `generated/`, through the
//! same `medium_oauth_codegen::generate`, so the snapshot always shows exactly
//! what this crate compiles.

use std::path::PathBuf;

fn main() {
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let spec_path = root.join(medium_oauth_codegen::SPEC_FILE);
    println!("cargo::rerun-if-changed={}", spec_path.display());
    println!("cargo::rerun-if-changed=build.rs");

    let result = std::fs::read_to_string(&spec_path)
        .map_err(|e| format!("cannot read {}: {e}", spec_path.display()))
        .and_then(|spec| medium_oauth_codegen::generate(&spec).map_err(|e| e.to_string()));
    let code = match result {
        Ok(code) => code,
        Err(message) => {
            // A message, not a panic: the user needs the construct and where
            // it is, and a backtrace of the build script tells them neither.
            println!("cargo::error={message}");
            std::process::exit(1);
        }
    };
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo"));
    if let Err(e) = std::fs::write(out.join("medium_oauth2_api.rs"), code) {
        println!("cargo::error=cannot write the generated client: {e}");
        std::process::exit(1);
    }
}
