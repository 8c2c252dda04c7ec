//! `cargo xtask mutants`: mutation testing with a floor.
//!
//! Runs `cargo mutants` (install it with `cargo install --locked
//! cargo-mutants`) on the named packages, reads the counts it writes to
//! `mutants.out/outcomes.json`, prints them, and fails below the floor.
//! Exclusions of equivalent mutants live in `.cargo/mutants.toml`, each with
//! its reason.
//!
//! By default it runs in two passes: every mutant against the unit tests
//! alone (`-C=--lib`: one small test binary to rebuild per mutant), then
//! only the survivors against the whole suite. A mutant the unit tests
//! catch, the whole suite catches too, so the sum is the whole suite's
//! figure, in a fraction of the time. `--single-pass` runs the whole suite
//! on every mutant.

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

impl std::ops::Add for Counts {
    type Output = Counts;

    fn add(self, other: Counts) -> Counts {
        Counts {
            caught: self.caught + other.caught,
            missed: self.missed + other.missed,
            timeout: self.timeout + other.timeout,
            unviable: self.unviable + other.unviable,
        }
    }
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
    let mut single_pass = false;
    let mut output = None;
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
            "--single-pass" => single_pass = true,
            "--output" => output = Some(PathBuf::from(args.next().ok_or(crate::USAGE)?)),
            "--" => passthrough.extend(args.by_ref()),
            other => return Err(format!("unknown argument `{other}`\n{}", crate::USAGE)),
        }
    }
    if packages.is_empty() {
        packages.push("medium-oauth".to_owned());
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    // Beside the build output, so a run never leaves files in the tree.
    let output = output.unwrap_or_else(|| root.join("target").join("xtask-mutants"));
    let run_once = |output: &Path, extra: &[String]| {
        let mut args = passthrough.clone();
        args.extend_from_slice(extra);
        cargo_mutants(&root, output, &packages, &args)
    };
    let (counts, survivors) = if single_pass {
        run_once(&output, &[])?
    } else {
        let (unit, survivors) = run_once(&output.join("unit"), &["-C=--lib".to_owned()])?;
        if survivors.is_empty() {
            (unit, survivors)
        } else {
            let only = format!("--re={}", exactly_one_of(&survivors));
            let (whole, survivors) = run_once(&output.join("whole"), &[only])?;
            (second_pass_of(unit, whole), survivors)
        }
    };
    println!("{}", report(&packages, &counts));
    if counts.score() < floor {
        println!("below the floor of {floor}%; the survivors:");
        for name in &survivors {
            println!("  {name}");
        }
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// The whole suite's figures from the two passes: the first pass's
/// survivors were all run again, so the second pass alone says what became
/// of them.
pub fn second_pass_of(unit: Counts, whole: Counts) -> Counts {
    Counts { missed: 0, ..unit } + whole
}

/// Runs cargo-mutants once into `output`: its counts and the names of the
/// mutants that survived.
fn cargo_mutants(
    root: &Path,
    output: &Path,
    packages: &[String],
    args: &[String],
) -> Result<(Counts, Vec<String>), String> {
    // cargo-mutants creates its output directory but not the parents.
    std::fs::create_dir_all(output)
        .map_err(|e| format!("cannot create {}: {e}", output.display()))?;
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command
        .current_dir(root)
        .arg("mutants")
        .arg("--output")
        .arg(output)
        .env("PROPTEST_CASES", PROPTEST_CASES_PER_MUTANT);
    for package in packages {
        command.arg("--package").arg(package);
    }
    command.args(args);
    println!("running: {command:?}");
    let status = command.status().map_err(|e| {
        format!(
            "cannot run cargo mutants (install it with `cargo install --locked cargo-mutants`): {e}"
        )
    })?;
    let outcomes = outcomes_path(output);
    let text = std::fs::read_to_string(&outcomes).map_err(|e| {
        format!(
            "cargo mutants exited with {status} and left no {}: {e}",
            outcomes.display()
        )
    })?;
    let missed = output.join("mutants.out").join("missed.txt");
    let survivors = std::fs::read_to_string(&missed)
        .map_err(|e| format!("cannot read {}: {e}", missed.display()))?;
    let survivors = survivors
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(str::to_owned)
        .collect();
    Ok((Counts::parse(&text)?, survivors))
}

/// A regex matching exactly these mutant names (as `--list` shows them,
/// with file, line and column) and nothing else.
pub fn exactly_one_of(names: &[String]) -> String {
    let escaped: Vec<String> = names.iter().map(|name| escape(name)).collect();
    format!("^(?:{})$", escaped.join("|"))
}

/// `text` as a regex matching itself: its metacharacters escaped.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
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
    fn the_survivors_regex_matches_each_name_exactly_and_nothing_else() {
        let names = vec![
            "crates/a/src/b.rs:12:5: replace f -> Option<(u8, &'static str)> with None".to_owned(),
            "crates/a/src/b.rs:3:9: replace * with + in <impl X for Y>::z".to_owned(),
            r"crates/a/src/b.rs:7:1: replace | with ^ in g [\d]{2}$".to_owned(),
        ];
        let re = regex::Regex::new(&exactly_one_of(&names)).unwrap();
        for name in &names {
            assert!(re.is_match(name), "{name}");
            // The same name at another line, or with more around it, is
            // another mutant.
            assert!(!re.is_match(&name.replacen(':', ":1", 1)), "{name}");
            assert!(!re.is_match(&format!("{name} ")), "{name}");
            assert!(!re.is_match(&format!("x{name}")), "{name}");
        }
        assert!(!re.is_match("crates/a/src/b.rs:3:9: replace * with - in <impl X for Y>::z"));
    }

    #[test]
    fn the_two_passes_add_up_without_counting_a_survivor_twice() {
        let unit = Counts {
            caught: 50,
            missed: 10,
            timeout: 1,
            unviable: 7,
        };
        let whole = Counts {
            caught: 7,
            missed: 1,
            timeout: 2,
            unviable: 1,
        };
        assert_eq!(
            second_pass_of(unit, whole),
            Counts {
                caught: 57,
                missed: 1,
                timeout: 3,
                unviable: 8
            }
        );
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
