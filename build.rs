//! Generates the raw clients from the specs into `OUT_DIR`: the OAuth client
//! from the bundled spec, the REST API client from `medium-resource-api.yml`.
//!
//! `cargo xtask codegen` writes the same bytes to `generated/`, through the
//! same `medium_oauth_codegen::Target::generate`, so the snapshots always show
//! exactly what this crate compiles.

use std::path::PathBuf;

fn main() {
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo"));
    println!("cargo::rerun-if-changed=build.rs");

    let mut failed = false;
    for target in medium_oauth_codegen::TARGETS {
        let spec_path = root.join(target.spec_file);
        println!("cargo::rerun-if-changed={}", spec_path.display());
        let result = std::fs::read_to_string(&spec_path)
            .map_err(|e| format!("cannot read {}: {e}", spec_path.display()))
            .and_then(|spec| target.generate(&spec).map_err(|e| e.to_string()))
            .and_then(|code| {
                std::fs::write(out.join(target.out_file()), code)
                    .map_err(|e| format!("cannot write the client of {}: {e}", target.spec_file))
            });
        if let Err(message) = result {
            // A message, not a panic: the user needs the construct and where
            // it is, and a backtrace of the build script tells them neither.
            // Every spec is tried first, so one build shows every error.
            println!("cargo::error={message}");
            failed = true;
        }
    }
    if failed {
        std::process::exit(1);
    }
}
