//! `cargo xtask mutants`: mutation testing with a floor.
//!
//! Runs `cargo mutants` (install it with `cargo install --locked
//! cargo-mutants`) on the named packages, reads the counts it writes to
//! `mutants.out/outcomes.json`, prints them, and fails below the floor.
//! Exclusions of equivalent mutants live in `.cargo/mutants.toml`, each with
//! its reason.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// The share of viable mutants the tests must catch: below it, a wrong
/// line has more than one chance in ten of passing every test.
const DEFAULT_FLOOR_PERCENT: f64 = 90.0;

/// Cases of each property test per mutant. The model test's default of
/// 1,000 takes minutes, and cargo-mutants runs the whole suite once per
/// mutant; a mutant that breaks an invariant shows within a few dozen.
const PROPTEST_CASES_PER_MUTANT: &str = "64";

/// What one run of cargo-mutants found, from its `outcomes.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    pub caught: u64,
    pub missed: u64,
    pub timeout: u64,
    pub unviable: u64,
}

impl Counts {
    /// Reads the summary cargo-mutants writes at the end of a run.
    pub fn parse(outcomes_json: &str) -> Result<Self, String> {
        let doc: serde_json::Value = serde_json::from_str(outcomes_json)
            .map_err(|e| format!("outcomes.json is not JSON: {e}"))?;
        let count = |name: &str| {
            doc.get(name)
                .and_then(serde_json::Value::as_u64)
                .ok_or_else(|| format!("outcomes.json has no count `{name}`"))
        };
        Ok(Self {
            caught: count("caught")?,
            missed: count("missed")?,
            timeout: count("timeout")?,
            unviable: count("unviable")?,
        })
    }

    /// Mutants that built, so that the tests could judge them.
    pub fn viable(&self) -> u64 {
        self.caught + self.missed + self.timeout
    }

    /// The caught share of viable mutants, in percent. A timeout counts as
    /// caught: the suite did not pass, so CI would have failed. An empty
    /// run scores 100: nothing escaped.
    pub fn score(&self) -> f64 {
        match self.viable() {
            0 => 100.0,
            viable => (self.caught + self.timeout) as f64 * 100.0 / viable as f64,
        }
    }
}

pub fn run(args: Vec<String>) -> Result<ExitCode, String> {
    let mut packages = Vec::new();
    let mut floor = DEFAULT_FLOOR_PERCENT;
    let mut passthrough = Vec::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--package" | "-p" => packages.push(args.next().ok_or(crate::USAGE)?),
            "--min" => {
                let text = args.next().ok_or(crate::USAGE)?;
                floor = text
                    .parse()
                    .ok()
                    .filter(|f: &f64| (0.0..=100.0).contains(f))
                    .ok_or_else(|| format!("--min {text}: expected a percentage, 0 to 100"))?;
            }
            "--" => passthrough.extend(args.by_ref()),
            other => return Err(format!("unknown argument `{other}`\n{}", crate::USAGE)),
        }
    }
    if packages.is_empty() {
        packages.push("medium-oauth".to_owned());
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    // Beside the build output, so a run never leaves files in the tree.
    let output = root.join("target").join("xtask-mutants");
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command
        .current_dir(&root)
        .arg("mutants")
        .arg("--output")
        .arg(&output)
        .env("PROPTEST_CASES", PROPTEST_CASES_PER_MUTANT);
    for package in &packages {
        command.arg("--package").arg(package);
    }
    command.args(&passthrough);
    println!("running: {command:?}");
    let status = command.status().map_err(|e| {
        format!(
            "cannot run cargo mutants (install it with `cargo install --locked cargo-mutants`): {e}"
        )
    })?;
    let outcomes = outcomes_path(&output);
    let text = std::fs::read_to_string(&outcomes).map_err(|e| {
        format!(
            "cargo mutants exited with {status} and left no {}: {e}",
            outcomes.display()
        )
    })?;
    let counts = Counts::parse(&text)?;
    println!("{}", report(&packages, &counts));
    if counts.score() < floor {
        println!(
            "below the floor of {floor}%: see {} for the survivors",
            output.join("mutants.out").join("missed.txt").display()
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn outcomes_path(output: &Path) -> PathBuf {
    output.join("mutants.out").join("outcomes.json")
}

/// One line of figures, as the closing notes quote them.
pub fn report(packages: &[String], c: &Counts) -> String {
    format!(
        "{}: {} caught, {} missed, {} timeouts, {} unviable: {:.1}% of {} viable caught",
        packages.join(", "),
        c.caught,
        c.missed,
        c.timeout,
        c.unviable,
        c.score(),
        c.viable()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_come_from_the_summary_and_score_viable_mutants_only() {
        let counts = Counts::parse(
            r#"{"total_mutants": 64, "missed": 11, "caught": 45, "timeout": 2,
                "unviable": 6, "success": 0, "outcomes": []}"#,
        )
        .unwrap();
        assert_eq!(
            counts,
            Counts {
                caught: 45,
                missed: 11,
                timeout: 2,
                unviable: 6
            }
        );
        assert_eq!(counts.viable(), 58);
        assert!((counts.score() - 47.0 * 100.0 / 58.0).abs() < 1e-9);
        assert_eq!(
            report(&["medium-oauth".into()], &counts),
            "medium-oauth: 45 caught, 11 missed, 2 timeouts, 6 unviable: 81.0% of 58 viable caught"
        );
    }

    #[test]
    fn a_run_with_nothing_viable_scores_full_and_a_broken_summary_is_an_error() {
        let none = Counts::parse(r#"{"caught":0,"missed":0,"timeout":0,"unviable":3}"#).unwrap();
        assert_eq!(none.score(), 100.0);
        let err = Counts::parse(r#"{"caught":1}"#).unwrap_err();
        assert!(err.contains("missed"), "{err}");
        assert!(Counts::parse("not json").is_err());
    }

    #[test]
    fn the_floor_is_checked_against_the_score() {
        let just_under = Counts {
            caught: 89,
            missed: 11,
            ..Counts::default()
        };
        assert!(just_under.score() < DEFAULT_FLOOR_PERCENT);
        let at = Counts {
            caught: 90,
            missed: 10,
            ..Counts::default()
        };
        assert!(at.score() >= DEFAULT_FLOOR_PERCENT);
    }
}
