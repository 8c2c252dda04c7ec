//! `publications`: the user's publications and their role in each.

use std::sync::Arc;

use clap::Args;
use medium_oauth::api::{ContributorRole, MediumApi, Publication};
use medium_oauth::{Scope, TokenSource};
use serde::Serialize;

use crate::failure::{Failure, printable};
use crate::session::{Session, SessionArgs};

/// Contributor lists asked for at once: enough to list a few dozen
/// publications quickly, few enough not to look like a flood to Medium.
const CONCURRENT_LOOKUPS: usize = 4;

/// What is shown for a publication the user does not contribute to:
/// Medium also lists the ones the user only follows.
pub const NO_ROLE: &str = "-";

#[derive(Args, Debug)]
#[command(after_help = "\
ROLE is the user's role from the publication's contributors: editor (may \
publish any status in it) or writer (drafts only). Medium also lists \
publications the user only follows; their ROLE is `-` (null in --json), and \
posting in them is refused.")]
pub struct PublicationsArgs {
    /// Print a JSON array of the publications, each with its `role`.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    session: SessionArgs,
}

/// A publication and the user's role in it.
#[derive(Debug, Serialize)]
pub struct Listed {
    #[serde(flatten)]
    pub publication: Publication,
    /// `None`: the user is not among its contributors.
    pub role: Option<ContributorRole>,
}

pub async fn run(args: PublicationsArgs) -> Result<(), Failure> {
    let session = Session::open(&args.session).await?;
    session.require(
        &[Scope::BasicProfile, Scope::ListPublications],
        "publications",
    )?;
    let api = session.api();
    let fail = |e| session.failure(e);
    let user_id = api.user_id().await.map_err(fail)?.to_owned();
    let publications = api.publications(&user_id).await.map_err(fail)?;
    let listed = with_roles(&session, &user_id, publications).await?;
    if args.json {
        outln!("{}", json(&listed)?);
    } else if listed.is_empty() {
        outln!("No publications.");
    } else {
        crate::write_out(format_args!("{}", table(&listed)));
    }
    Ok(())
}

/// Each publication with `user_id`'s role, looked up in its contributors,
/// [`CONCURRENT_LOOKUPS`] at a time, in the order Medium listed them.
async fn with_roles(
    session: &Session,
    user_id: &str,
    publications: Vec<Publication>,
) -> Result<Vec<Listed>, Failure> {
    let api: MediumApi<Arc<dyn TokenSource>> = session.api();
    let limit = Arc::new(tokio::sync::Semaphore::new(CONCURRENT_LOOKUPS));
    let mut lookups = tokio::task::JoinSet::new();
    for (index, publication) in publications.iter().enumerate() {
        let (api, limit, id) = (api.clone(), limit.clone(), publication.id.clone());
        let user_id = user_id.to_owned();
        lookups.spawn(async move {
            // The semaphore is never closed; a closed one would only mean
            // no limit.
            let _permit = limit.acquire_owned().await.ok();
            let contributors = api.contributors(&id).await?;
            let role = contributors
                .into_iter()
                .find(|c| c.user_id == user_id)
                .map(|c| c.role);
            Ok::<_, medium_oauth::Error>((index, role))
        });
    }
    let mut roles = vec![None; publications.len()];
    while let Some(done) = lookups.join_next().await {
        match done {
            Ok(Ok((index, role))) => roles[index] = role,
            // The first failure ends the command; the other lookups are
            // aborted when the set is dropped.
            Ok(Err(e)) => return Err(session.failure(e)),
            Err(joined) => {
                return Err(Failure::other(format!(
                    "looking up a publication's contributors failed: {joined}"
                )));
            }
        }
    }
    Ok(publications
        .into_iter()
        .zip(roles)
        .map(|(publication, role)| Listed { publication, role })
        .collect())
}

/// `listed` as pretty JSON, with every control character escaped (see
/// [`escape_controls`]).
fn json(listed: &[Listed]) -> Result<String, Failure> {
    let text = serde_json::to_string_pretty(listed).map_err(|e| Failure::other(e.to_string()))?;
    Ok(escape_controls(&text))
}

/// JSON text with every control character but the layout's newlines, and
/// every bidirectional control, as a `\uXXXX` escape (see
/// [`unsafe_on_a_terminal`](crate::failure::unsafe_on_a_terminal)).
/// serde_json escapes only those below U+0020; DEL, the C1 controls
/// (U+0080 to U+009F, which some terminals obey as escape sequences) and
/// the bidi controls would otherwise reach the terminal raw. Outside
/// strings the only control character the layout has is the newline, so the
/// result is the same JSON value.
pub fn escape_controls(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if crate::failure::unsafe_on_a_terminal(c) && c != '\n' {
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

/// The role as shown: the wire name, or [`NO_ROLE`].
fn role_name(role: Option<ContributorRole>) -> String {
    role.map_or_else(|| NO_ROLE.to_owned(), |r| r.to_string())
}

/// `listed` as an aligned table (ID, ROLE, NAME, URL), every field of the
/// server's passed through [`printable`]: a name cannot move the cursor,
/// clear the screen or forge a line.
pub fn table(listed: &[Listed]) -> String {
    let header = ["ID", "ROLE", "NAME", "URL"].map(str::to_owned);
    let rows: Vec<[String; 4]> = listed
        .iter()
        .map(|l| {
            [
                printable(&l.publication.id),
                role_name(l.role),
                printable(&l.publication.name),
                printable(&l.publication.url),
            ]
        })
        .collect();
    let mut widths = [0usize; 4];
    for row in std::iter::once(&header).chain(&rows) {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (cell, width) in row.iter().zip(widths) {
            line.push_str(cell);
            line.push_str(&" ".repeat(width - cell.chars().count() + 2));
        }
        // The padding after the last column, or after empty cells ending
        // the row.
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(id: &str, name: &str, role: Option<ContributorRole>) -> Listed {
        Listed {
            publication: Publication {
                id: id.into(),
                name: name.into(),
                description: "d\x1b[2J".into(),
                url: format!("https://medium.com/{id}"),
                image_url: String::new(),
            },
            role,
        }
    }

    #[test]
    fn the_table_aligns_columns_and_shows_no_role_as_a_dash() {
        let shown = table(&[
            listed("a1", "Demo Editorial", Some(ContributorRole::Editor)),
            listed("b22", "Followed", None),
        ]);
        assert_eq!(
            shown,
            "ID   ROLE    NAME            URL\n\
             a1   editor  Demo Editorial  https://medium.com/a1\n\
             b22  -       Followed        https://medium.com/b22\n"
        );
    }

    /// Hostile server text: escape sequences, a forged line, C1 controls
    /// and DEL reach neither the table nor the JSON raw.
    #[test]
    fn control_characters_from_the_server_never_reach_the_terminal() {
        let hostile = "Evil\x1b[2J\r\nerror: forged\u{9b}31m\u{7f}";
        let rows = [listed("x\x07", hostile, Some(ContributorRole::Writer))];
        let shown = table(&rows);
        assert!(
            !shown.chars().any(|c| c.is_control() && c != '\n'),
            "{shown:?}"
        );
        assert_eq!(shown.lines().count(), 2, "{shown:?}");
        assert!(shown.contains("Evil [2J  error: forged 31m "), "{shown:?}");

        let text = json(&rows).unwrap();
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "{text:?}"
        );
        let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed[0]["name"], hostile);
        assert_eq!(parsed[0]["role"], "writer");
        assert_eq!(parsed[0]["description"], "d\x1b[2J");
    }

    #[test]
    fn json_gives_null_for_no_role_and_keeps_the_wire_field_names() {
        let text = json(&[listed("a", "A", None)]).unwrap();
        let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert!(parsed[0]["role"].is_null());
        assert_eq!(parsed[0]["imageUrl"], "");
        assert_eq!(parsed[0]["id"], "a");
    }
}
