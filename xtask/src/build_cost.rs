//! `cargo xtask build-cost`: what depending on medium-oauth adds to a user's
//! clean build, measured beside oauth2-rs in one run.
//!
//! Two scratch binary crates are written to a temporary directory: one
//! depending on `medium-oauth` (by path, this workspace's) and tokio, one on
//! `oauth2 = "5"` with its `reqwest` and `rustls-tls` features and tokio, as a
//! user of either would start. Both do the same thing: build an authorize
//! URL and exchange a code. Their dependencies are fetched first (`cargo
//! fetch`, not timed); then each is built once, `cargo build --offline
//! --timings` in the dev profile, into its own fresh target directory. The
//! report gives both wall times, both unit counts (from cargo's timings
//! page), their ratio, and each build's slowest units.
//!
//! The machine's load average is printed before and after: on a shared
//! machine a busy neighbour slows whichever build it overlaps, so compare
//! runs taken at a low load.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

/// The budget the issue set: a clean build on medium-oauth at most this
/// many times the same application's on oauth2-rs.
pub const BUDGET_RATIO: f64 = 1.5;

/// Slowest units listed per build unless `--top` says otherwise.
const DEFAULT_TOP: usize = 10;

/// One scratch application.
struct App {
    /// Package and directory name.
    name: &'static str,
    /// What it is measured as, in the report.
    label: &'static str,
    /// `[dependencies]` lines; `{medium_oauth}` is replaced by the path.
    dependencies: &'static str,
    main_rs: &'static str,
}

const TOKIO: &str = r#"tokio = { version = "1", features = ["macros", "rt-multi-thread"] }"#;

const MEDIUM_APP: App = App {
    name: "app-medium-oauth",
    label: "medium-oauth",
    dependencies: r#"medium-oauth = { path = "{medium_oauth}" }"#,
    main_rs: r#"use medium_oauth::{ClientId, ClientSecret, OAuthClient, scopes};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let client = OAuthClient::builder(
        ClientId::new("client-id"),
        ClientSecret::new("client-secret"),
        "http://127.0.0.1:8080/callback",
    )
    .build()?;
    let (url, pending) = client.authorize_url(scopes![basicProfile])?;
    println!("open {url}");
    let callback = "http://127.0.0.1:8080/callback?code=code&state=state";
    let token = client.complete(&pending, callback).await?;
    println!("granted: {}", token.scopes());
    Ok(())
}
"#,
};

const OAUTH2_APP: App = App {
    name: "app-oauth2",
    label: "oauth2-rs 5",
    dependencies: r#"oauth2 = { version = "5", features = ["reqwest", "rustls-tls"] }"#,
    main_rs: r#"use oauth2::basic::BasicClient;
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, RedirectUrl, Scope,
    TokenResponse, TokenUrl,
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let client = BasicClient::new(ClientId::new("client-id".into()))
        .set_client_secret(ClientSecret::new("client-secret".into()))
        .set_auth_uri(AuthUrl::new("https://medium.com/m/oauth/authorize".into())?)
        .set_token_uri(TokenUrl::new("https://api.medium.com/v1/tokens".into())?)
        .set_redirect_uri(RedirectUrl::new("http://127.0.0.1:8080/callback".into())?);
    let (url, _state) = client
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("basicProfile".into()))
        .url();
    println!("open {url}");
    let http = oauth2::reqwest::ClientBuilder::new()
        .redirect(oauth2::reqwest::redirect::Policy::none())
        .build()?;
    let token = client
        .exchange_code(AuthorizationCode::new("code".into()))
        .request_async(&http)
        .await?;
    println!("granted: {:?}", token.scopes());
    Ok(())
}
"#,
};

/// One unit of a build, as cargo's timings page lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct Unit {
    /// Package, version and target, e.g. `ring v0.17.14 build-script (run)`.
    pub label: String,
    /// Seconds from the unit's start to its end.
    pub seconds: f64,
}

/// Reads the units out of cargo's `--timings` HTML report, where they sit as
/// a JSON array after `const UNIT_DATA = `.
pub fn parse_timings(html: &str) -> Result<Vec<Unit>, String> {
    const MARKER: &str = "const UNIT_DATA = ";
    let start = html
        .find(MARKER)
        .ok_or("the timings page has no UNIT_DATA (has cargo's format changed?)")?
        + MARKER.len();
    let data: serde_json::Value = serde_json::Deserializer::from_str(&html[start..])
        .into_iter()
        .next()
        .ok_or("UNIT_DATA is empty")?
        .map_err(|e| format!("UNIT_DATA is not JSON: {e}"))?;
    let entries = data.as_array().ok_or("UNIT_DATA is not an array")?;
    entries
        .iter()
        .map(|entry| {
            let text = |key: &str| entry.get(key).and_then(serde_json::Value::as_str);
            let name = text("name").ok_or("a unit has no name")?;
            let version = text("version").unwrap_or_default();
            let target = text("target").unwrap_or_default().trim();
            let seconds = entry
                .get("duration")
                .and_then(serde_json::Value::as_f64)
                .ok_or_else(|| format!("unit {name} has no duration"))?;
            let mut label = format!("{name} v{version}");
            if !target.is_empty() {
                label.push(' ');
                label.push_str(target);
            }
            Ok(Unit { label, seconds })
        })
        .collect()
}

/// The `n` slowest units, slowest first (ties by label, for a stable order).
pub fn slowest(units: &[Unit], n: usize) -> Vec<Unit> {
    let mut sorted = units.to_vec();
    sorted.sort_by(|a, b| {
        b.seconds
            .total_cmp(&a.seconds)
            .then_with(|| a.label.cmp(&b.label))
    });
    sorted.truncate(n);
    sorted
}

/// The 1, 5 and 15 minute load averages from `/proc/loadavg`'s text.
pub fn parse_loadavg(text: &str) -> Option<[f64; 3]> {
    let mut fields = text.split_whitespace().map(str::parse::<f64>);
    Some([
        fields.next()?.ok()?,
        fields.next()?.ok()?,
        fields.next()?.ok()?,
    ])
}

fn loadavg() -> String {
    match std::fs::read_to_string("/proc/loadavg")
        .ok()
        .as_deref()
        .and_then(parse_loadavg)
    {
        Some([one, five, fifteen]) => format!("{one:.2} {five:.2} {fifteen:.2}"),
        None => "unknown".to_owned(),
    }
}

/// What one clean build took.
#[derive(Debug, Clone, PartialEq)]
pub struct Build {
    pub label: String,
    pub wall: Duration,
    pub units: Vec<Unit>,
}

/// The report's summary lines: each build, then the ratio against the
/// budget.
pub fn summary(medium: &Build, oauth2: &Build) -> String {
    let ratio = medium.wall.as_secs_f64() / oauth2.wall.as_secs_f64();
    let verdict = if ratio <= BUDGET_RATIO {
        "within"
    } else {
        "over"
    };
    let line = |b: &Build| {
        format!(
            "{:<14} {:>7.1} s  {:>4} units\n",
            b.label,
            b.wall.as_secs_f64(),
            b.units.len()
        )
    };
    format!(
        "{}{}ratio: {ratio:.2}x ({verdict} the {BUDGET_RATIO}x budget)",
        line(medium),
        line(oauth2)
    )
}

pub fn run(args: Vec<String>) -> Result<ExitCode, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut medium_oauth = root.join("crates").join("medium-oauth");
    let mut keep: Option<PathBuf> = None;
    let mut top = DEFAULT_TOP;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--medium-oauth" => medium_oauth = PathBuf::from(args.next().ok_or(crate::USAGE)?),
            "--dir" => keep = Some(PathBuf::from(args.next().ok_or(crate::USAGE)?)),
            "--top" => {
                let text = args.next().ok_or(crate::USAGE)?;
                top = text
                    .parse()
                    .map_err(|_| format!("--top {text}: expected a number of units"))?;
            }
            "-h" | "--help" => {
                println!("{}", crate::USAGE);
                return Ok(ExitCode::SUCCESS);
            }
            other => return Err(format!("unknown argument `{other}`\n{}", crate::USAGE)),
        }
    }
    let medium_oauth = std::fs::canonicalize(&medium_oauth)
        .map_err(|e| format!("cannot find {}: {e}", medium_oauth.display()))?;
    let dir = match &keep {
        Some(dir) => dir.clone(),
        None => {
            std::env::temp_dir().join(format!("medium-oauth-build-cost-{}", std::process::id()))
        }
    };
    let result = measure(&dir, &medium_oauth, top);
    if keep.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        println!(
            "scratch applications and their targets kept in {}",
            dir.display()
        );
    }
    result
}

fn measure(dir: &Path, medium_oauth: &Path, top: usize) -> Result<ExitCode, String> {
    let path = medium_oauth
        .to_str()
        .ok_or("the medium-oauth path is not UTF-8")?;
    let apps = [MEDIUM_APP, OAUTH2_APP];
    for app in &apps {
        let app_dir = dir.join(app.name);
        write_app(&app_dir, app, path)?;
        println!("fetching the dependencies of {} (not timed)", app.name);
        cargo(&app_dir, &["fetch", "--quiet"], None)?;
    }
    println!("load average before: {}", loadavg());
    let mut builds = Vec::new();
    for app in &apps {
        let app_dir = dir.join(app.name);
        let target = app_dir.join("target");
        if target.exists() {
            std::fs::remove_dir_all(&target)
                .map_err(|e| format!("cannot empty {}: {e}", target.display()))?;
        }
        println!("building {} (clean, debug)", app.name);
        let log = app_dir.join("build.log");
        let started = Instant::now();
        cargo(
            &app_dir,
            &["build", "--offline", "--timings", "--target-dir", "target"],
            Some(&log),
        )?;
        let wall = started.elapsed();
        let page = target.join("cargo-timings").join("cargo-timing.html");
        let html = std::fs::read_to_string(&page)
            .map_err(|e| format!("cannot read {}: {e}", page.display()))?;
        builds.push(Build {
            label: app.label.to_owned(),
            wall,
            units: parse_timings(&html)?,
        });
    }
    println!("load average after: {}", loadavg());
    for build in &builds {
        println!("\n{} slowest units of the {} build:", top, build.label);
        for unit in slowest(&build.units, top) {
            println!("  {:>6.1} s  {}", unit.seconds, unit.label);
        }
    }
    println!("\n{}", summary(&builds[0], &builds[1]));
    Ok(ExitCode::SUCCESS)
}

fn write_app(dir: &Path, app: &App, medium_oauth: &str) -> Result<(), String> {
    let src = dir.join("src");
    std::fs::create_dir_all(&src).map_err(|e| format!("cannot create {}: {e}", src.display()))?;
    // Its own [workspace], so no enclosing workspace claims it.
    let manifest = format!(
        "[package]\nname = \"{}\"\nversion = \"0.1.0\"\nedition = \"2024\"\npublish = false\n\n\
         [workspace]\n\n[dependencies]\n{}\n{TOKIO}\n",
        app.name,
        app.dependencies
            .replace("{medium_oauth}", &medium_oauth.replace('\\', "/")),
    );
    for (path, text) in [
        (dir.join("Cargo.toml"), manifest.as_str()),
        (src.join("main.rs"), app.main_rs),
    ] {
        std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(())
}

/// Runs cargo in `dir`; with `log`, its output goes there and its tail is
/// shown only on failure.
fn cargo(dir: &Path, args: &[&str], log: Option<&Path>) -> Result<(), String> {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command
        .current_dir(dir)
        .args(args)
        // A compiler cache would make the clean builds not clean.
        .env_remove("RUSTC_WRAPPER")
        .env_remove("CARGO_BUILD_RUSTC_WRAPPER")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET_DIR");
    if let Some(log) = log {
        let file = std::fs::File::create(log)
            .map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let copy = file
            .try_clone()
            .map_err(|e| format!("cannot open {}: {e}", log.display()))?;
        command.stdout(Stdio::from(copy)).stderr(Stdio::from(file));
    }
    let status = command
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if status.success() {
        return Ok(());
    }
    let tail = log
        .and_then(|log| std::fs::read_to_string(log).ok())
        .map(|text| {
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(30)..].join("\n")
        })
        .unwrap_or_default();
    Err(format!(
        "cargo {} in {} exited with {status}\n{tail}",
        args.join(" "),
        dir.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape of cargo's timings page around the data, cut down.
    const PAGE: &str = r#"<script>
DURATION = 86;
const UNIT_DATA = [
  {
    "i": 105,
    "name": "ring",
    "version": "0.17.14",
    "mode": "run-custom-build",
    "target": " build-script (run)",
    "features": [],
    "start": 0.33,
    "duration": 6.22,
    "unblocked_units": [],
    "unblocked_rmeta_units": [],
    "sections": null
  },
  {
    "i": 7,
    "name": "tokio",
    "version": "1.54.1",
    "mode": "todo",
    "target": "",
    "features": ["rt", "net"],
    "start": 1.0,
    "duration": 17.9,
    "unblocked_units": [],
    "unblocked_rmeta_units": [],
    "sections": [["frontend", {"start": 1.0, "end": 2.0}]]
  },
  {"name": "app", "version": "0.1.0", "target": " \"app\"", "duration": 1.9}
];
const CONCURRENCY_DATA = [
  {"t": 0.0, "active": 1}
];
</script>"#;

    #[test]
    fn units_are_read_from_the_timings_page() {
        let units = parse_timings(PAGE).unwrap();
        assert_eq!(
            units,
            vec![
                Unit {
                    label: "ring v0.17.14 build-script (run)".into(),
                    seconds: 6.22
                },
                Unit {
                    label: "tokio v1.54.1".into(),
                    seconds: 17.9
                },
                Unit {
                    label: "app v0.1.0 \"app\"".into(),
                    seconds: 1.9
                },
            ]
        );
        let top = slowest(&units, 2);
        assert_eq!(top[0].label, "tokio v1.54.1");
        assert_eq!(top[1].label, "ring v0.17.14 build-script (run)");
        assert_eq!(slowest(&units, 10).len(), 3);
    }

    #[test]
    fn a_page_without_unit_data_is_an_error_not_an_empty_build() {
        let e = parse_timings("<html>no data</html>").unwrap_err();
        assert!(e.contains("UNIT_DATA"), "{e}");
        assert!(parse_timings("const UNIT_DATA = [{\"name\": ").is_err());
        let e = parse_timings(r#"const UNIT_DATA = [{"name": "x", "version": "1"}];"#).unwrap_err();
        assert!(e.contains("duration"), "{e}");
        let e = parse_timings(r#"const UNIT_DATA = {"name": "x"};"#).unwrap_err();
        assert!(e.contains("array"), "{e}");
    }

    #[test]
    fn load_average_is_the_first_three_fields() {
        assert_eq!(
            parse_loadavg("1.95 2.25 2.75 3/101 3563\n"),
            Some([1.95, 2.25, 2.75])
        );
        assert_eq!(parse_loadavg("1.95 2.25"), None);
        assert_eq!(parse_loadavg("a b c"), None);
    }

    #[test]
    fn summary_gives_times_units_and_the_ratio_against_the_budget() {
        let build = |label: &str, secs: u64, units: usize| Build {
            label: label.into(),
            wall: Duration::from_secs(secs),
            units: vec![
                Unit {
                    label: "x".into(),
                    seconds: 1.0
                };
                units
            ],
        };
        let within = summary(
            &build("medium-oauth", 45, 150),
            &build("oauth2-rs 5", 34, 147),
        );
        assert_eq!(
            within,
            "medium-oauth      45.0 s   150 units\n\
             oauth2-rs 5       34.0 s   147 units\n\
             ratio: 1.32x (within the 1.5x budget)"
        );
        let over = summary(
            &build("medium-oauth", 70, 207),
            &build("oauth2-rs 5", 34, 147),
        );
        assert!(
            over.ends_with("ratio: 2.06x (over the 1.5x budget)"),
            "{over}"
        );
    }

    #[test]
    fn the_medium_app_depends_on_the_given_path() {
        let dir = tempfile::tempdir().unwrap();
        write_app(dir.path(), &MEDIUM_APP, "/somewhere/crates/medium-oauth").unwrap();
        let manifest = std::fs::read_to_string(dir.path().join("Cargo.toml")).unwrap();
        assert!(
            manifest.contains(r#"medium-oauth = { path = "/somewhere/crates/medium-oauth" }"#),
            "{manifest}"
        );
        assert!(manifest.contains("[workspace]"), "{manifest}");
        assert!(manifest.contains(TOKIO), "{manifest}");
        assert!(dir.path().join("src/main.rs").exists());
    }
}
