//! Project automation: `cargo xtask codegen [--check]`,
//! `cargo xtask mutants` and `cargo xtask build-cost`.
//!
//! `codegen` rewrites the committed snapshots in `generated/`, one per spec
//! (`generated/medium_oauth2_api.rs` from the bundled OAuth spec,
//! `generated/medium_resource_api.rs` from the REST API spec);
//! `codegen --check` changes nothing and fails with a unified diff for every
//! snapshot that has drifted. Both call the same generator as the root
//! package's `build.rs`, so the snapshots are exactly what the crate compiles.
//!
//! `mutants` runs cargo-mutants over the library and fails when its tests
//! catch fewer than 90% of the viable mutants (see [`mutants`]).
//!
//! `build-cost` times a clean build of a scratch application on medium-oauth
//! beside the same application on oauth2-rs (see [`build_cost`]).

mod build_cost;
mod mutants;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use medium_oauth_codegen::{TARGETS, Target};

/// Diff lines shown on drift before the rest is only counted: enough to see
/// what changed, short enough that a CI log stays readable.
const MAX_DIFF_LINES: usize = 200;

pub(crate) const USAGE: &str = "usage: cargo xtask codegen [--check] [--root DIR]
       cargo xtask mutants [--package P]... [--min PERCENT] [--single-pass]
                           [--output DIR] [-- CARGO_MUTANTS_ARGS]
       cargo xtask build-cost [--top N] [--dir DIR] [--medium-oauth PATH]

  codegen          rewrite generated/ from medium-oauth2-openapi.yml and
                   medium-resource-api.yml
  codegen --check  change nothing; exit 1 with a diff for each snapshot in
                   generated/ that has drifted
  --root DIR       the workspace to work on (default: this workspace)
  mutants          run cargo-mutants (default: --package medium-oauth) and
                   exit 1 when under PERCENT (default 90) of viable mutants
                   are caught; every mutant meets the unit tests first and
                   only their survivors the whole suite, unless
                   --single-pass; results in DIR (default
                   target/xtask-mutants)
  build-cost       clean debug builds of a scratch app on medium-oauth and one
                   on oauth2-rs 5, each in a fresh target directory: wall
                   times, unit counts, their ratio and the N (default 10)
                   slowest units of each; --dir keeps the apps there,
                   --medium-oauth measures another checkout's crate";

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

fn run(args: Vec<String>) -> Result<ExitCode, String> {
    let mut args = args.into_iter();
    match args.next().as_deref() {
        Some("codegen") => {}
        Some("mutants") => return mutants::run(args.collect()),
        Some("build-cost") => return build_cost::run(args.collect()),
        Some("-h" | "--help") => {
            println!("{USAGE}");
            return Ok(ExitCode::SUCCESS);
        }
        _ => return Err(USAGE.into()),
    }
    let mut check = false;
    let mut root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--check" => check = true,
            "--root" => root = PathBuf::from(args.next().ok_or(USAGE)?),
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(ExitCode::SUCCESS);
            }
            other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
        }
    }
    codegen(&root, check)
}

fn codegen(root: &Path, check: bool) -> Result<ExitCode, String> {
    // Every target is tried before the verdict, so one run shows all drift
    // and every target that cannot be generated: an error in one spec does
    // not hide the state of the others.
    let mut drifted = Vec::new();
    let mut errors = Vec::new();
    for target in TARGETS {
        match codegen_target(root, target, check) {
            Ok(true) => {}
            Ok(false) => drifted.push(target.snapshot_file),
            Err(message) => errors.push(message),
        }
    }
    if check && !drifted.is_empty() {
        println!(
            "\nto fix {}, run:\n    cargo xtask codegen",
            drifted.join(" and ")
        );
    }
    if !errors.is_empty() {
        // Exit 2, as for any other error, after every message.
        for message in &errors {
            eprintln!("error: {message}");
        }
        return Ok(ExitCode::from(2));
    }
    if check && !drifted.is_empty() {
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// Generates one target; writes its snapshot unless `check`. Returns whether
/// the snapshot was already up to date.
fn codegen_target(root: &Path, target: Target, check: bool) -> Result<bool, String> {
    let Target {
        spec_file,
        snapshot_file,
        ..
    } = target;
    let spec_path = root.join(spec_file);
    let spec = std::fs::read_to_string(&spec_path)
        .map_err(|e| format!("cannot read {}: {e}", spec_path.display()))?;
    let fresh = target.generate(&spec).map_err(|e| e.to_string())?;
    let snapshot_path = root.join(snapshot_file);
    let current = match std::fs::read_to_string(&snapshot_path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(format!("cannot read {}: {e}", snapshot_path.display())),
    };
    if current == fresh {
        println!("{snapshot_file} is up to date with {spec_file}");
        return Ok(true);
    }
    let diff = similar::TextDiff::from_lines(&current, &fresh);
    if check {
        print_capped_diff(target, &diff);
        println!("\n{snapshot_file} has drifted from {spec_file}");
        return Ok(false);
    }
    if let Some(dir) = snapshot_path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    std::fs::write(&snapshot_path, &fresh)
        .map_err(|e| format!("cannot write {}: {e}", snapshot_path.display()))?;
    let (mut added, mut removed) = (0, 0);
    for change in diff.iter_all_changes() {
        match change.tag() {
            similar::ChangeTag::Insert => added += 1,
            similar::ChangeTag::Delete => removed += 1,
            similar::ChangeTag::Equal => {}
        }
    }
    println!("updated {snapshot_file}: {added} lines added, {removed} removed");
    Ok(false)
}

fn print_capped_diff<'a>(target: Target, diff: &'a similar::TextDiff<'a, 'a, 'a, str>) {
    let text = diff
        .unified_diff()
        .context_radius(3)
        .header(
            &format!("a/{}", target.snapshot_file),
            &format!("b/{} (from {})", target.snapshot_file, target.spec_file),
        )
        .to_string();
    let total = text.lines().count();
    for line in text.lines().take(MAX_DIFF_LINES) {
        println!("{line}");
    }
    if total > MAX_DIFF_LINES {
        println!("... and {} more diff lines", total - MAX_DIFF_LINES);
    }
}
