//! `post`: publish a markdown file as a Medium post.

use std::path::PathBuf;

use clap::Args;
use medium_oauth::Scope;
use medium_oauth::api::NewPost;

use crate::failure::{Failure, printable};
use crate::input;
use crate::session::{Session, SessionArgs};
use crate::wire::{LicenseArg, StatusArg};

/// Largest markdown file sent, in bytes. A long article is tens of
/// kilobytes; the JSON request carrying it (escaped, with the title and
/// tags) must stay within the 1 MiB a request body may be, as it is for the
/// emulator.
pub const MAX_POST_FILE_BYTES: u64 = 512 * 1024;

/// The byte-order mark some editors write first: not part of the text, and
/// it would hide a heading on the first line.
const BOM: char = '\u{feff}';

#[derive(Args, Debug)]
#[command(after_help = "\
The title is the text of the file's first level-1 ATX heading (`# Title`, \
outside code blocks; `## …` and setext headings do not count), unless --title \
is given. The heading stays in the content: Medium shows the title field only \
in listings, never above the post, so a post without it in its content would \
have no visible title. A file without such a heading needs --title.

Prints the new post's URL alone on stdout.")]
pub struct PostArgs {
    /// The markdown file to publish (`-`: standard input), UTF-8, at most
    /// 512 KiB.
    #[arg(value_name = "FILE.md")]
    file: PathBuf,
    /// The title [default: the file's first `# heading`].
    #[arg(long)]
    title: Option<String>,
    /// Tags, comma-separated or repeated (at most 3, each at most 25
    /// characters: Medium drops the others, so they are refused here).
    #[arg(long, value_name = "TAG,…", value_delimiter = ',')]
    tags: Vec<String>,
    /// Publish status [default: Medium's, public]. A writer of a
    /// publication may only post drafts in it.
    #[arg(long, value_enum, value_name = "STATUS")]
    status: Option<StatusArg>,
    /// Post in this publication (its id, from `medium-oauth publications`)
    /// instead of on the user's profile.
    #[arg(long, value_name = "ID")]
    publication: Option<String>,
    /// Where the content was first published, if elsewhere.
    #[arg(long, value_name = "URL")]
    canonical_url: Option<String>,
    /// License [default: Medium's, all-rights-reserved].
    #[arg(long, value_enum, value_name = "LICENSE")]
    license: Option<LicenseArg>,
    /// Have Medium notify the user's followers.
    #[arg(long)]
    notify_followers: bool,
    #[command(flatten)]
    session: SessionArgs,
}

/// The text of the first level-1 ATX heading of `markdown` outside fenced
/// code blocks, its closing `#`s removed, as CommonMark reads one: up to
/// three spaces of indentation, `#`, then a space, a tab or the end of the
/// line. Empty headings are skipped. Inline markup is kept as written.
pub fn markdown_title(markdown: &str) -> Option<&str> {
    // The open fence: its character and length, which a closing fence
    // must match.
    let mut fence: Option<(char, usize)> = None;
    // CommonMark ends a line at CRLF, LF or a lone CR; `str::lines` knows
    // only the first two, and would read a CR-only file as one line.
    for line in markdown.split(['\n', '\r']) {
        let text = line.trim_start_matches(' ');
        if line.len() - text.len() > 3 {
            // Indented code, or a continuation: never a heading or a fence.
            continue;
        }
        if let Some((ch, len, rest)) = fence_marker(text) {
            match fence {
                None => {
                    fence = Some((ch, len));
                    continue;
                }
                Some((open, open_len))
                    if open == ch && len >= open_len && rest.trim().is_empty() =>
                {
                    fence = None;
                    continue;
                }
                Some(_) => {}
            }
        }
        if fence.is_some() {
            continue;
        }
        let Some(rest) = text.strip_prefix('#') else {
            continue;
        };
        if !(rest.is_empty() || rest.starts_with([' ', '\t'])) {
            // `##…` is a lower level; `#tag` is not a heading at all.
            continue;
        }
        let title = without_closing_sequence(rest.trim_matches([' ', '\t']));
        if !title.is_empty() {
            return Some(title);
        }
    }
    None
}

/// A code fence's character, its length and what follows it, if `text`
/// opens or closes one (three or more backticks or tildes).
fn fence_marker(text: &str) -> Option<(char, usize, &str)> {
    let ch = text.chars().next().filter(|c| *c == '`' || *c == '~')?;
    let len = text.len() - text.trim_start_matches(ch).len();
    let rest = &text[len..];
    // A backtick fence's info string cannot hold a backtick (that line is
    // inline code).
    (len >= 3 && !(ch == '`' && rest.contains('`'))).then_some((ch, len, rest))
}

/// A heading's text without its optional closing sequence: `#`s at the
/// end preceded by a space (`# C#` keeps its `#`).
fn without_closing_sequence(text: &str) -> &str {
    let stripped = text.trim_end_matches('#');
    if stripped.is_empty() {
        ""
    } else if stripped.ends_with([' ', '\t']) {
        stripped.trim_end_matches([' ', '\t'])
    } else {
        text
    }
}

/// The post `args` describe, read and checked; nothing is sent.
fn new_post(args: &PostArgs) -> Result<NewPost, Failure> {
    let bytes = input::read_capped(&args.file, MAX_POST_FILE_BYTES, "FILE")?;
    let text = input::utf8(bytes, &args.file, "FILE")?;
    let content = text.strip_prefix(BOM).unwrap_or(&text);
    let title = match &args.title {
        Some(title) => title.as_str(),
        None => markdown_title(content).ok_or_else(|| {
            Failure::usage(format!(
                "{} has no `# Title` heading to take the title from; give --title",
                input::shown(&args.file)
            ))
        })?,
    };
    let mut builder = NewPost::markdown(title, content).tags(args.tags.iter().cloned());
    if let Some(status) = args.status {
        builder = builder.status(status.0);
    }
    if let Some(license) = args.license {
        builder = builder.license(license.0);
    }
    if let Some(url) = &args.canonical_url {
        builder = builder.canonical_url(url.clone());
    }
    if args.notify_followers {
        builder = builder.notify_followers(true);
    }
    builder
        .build()
        .map_err(|e| Failure::from(medium_oauth::Error::from(e)))
}

pub async fn run(args: PostArgs) -> Result<(), Failure> {
    // The file and the post are checked before the credentials are read:
    // a usage error costs nothing and sends nothing.
    let post = new_post(&args)?;
    let session = Session::open(&args.session).await?;
    let created = match &args.publication {
        Some(publication) => {
            session.require(&[Scope::PublishPost], "post --publication")?;
            session.api().create_post_in(publication, &post).await
        }
        None => {
            // The author's id comes from `/me`.
            session.require(&[Scope::BasicProfile, Scope::PublishPost], "post")?;
            session.api().create_post(&post).await
        }
    }
    .map_err(|e| session.failure(e))?;
    outln!("{}", printable(&created.url));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_level_one_heading_is_the_title() {
        assert_eq!(markdown_title("# Hello\n\nBody"), Some("Hello"));
        assert_eq!(
            markdown_title("Intro\n\n## Part\n#  Spaced  #\n"),
            Some("Spaced")
        );
        assert_eq!(
            markdown_title("   # Indented three"),
            Some("Indented three")
        );
        assert_eq!(markdown_title("# C#"), Some("C#"));
        assert_eq!(markdown_title("# Closed ###"), Some("Closed"));
        assert_eq!(markdown_title("#\t*Tabbed* title"), Some("*Tabbed* title"));
        assert_eq!(markdown_title("#\n# ##\n# Real"), Some("Real"));
        assert_eq!(markdown_title("# First\n# Second"), Some("First"));
        assert_eq!(markdown_title("line\r\n# Crlf\r\n"), Some("Crlf"));
    }

    #[test]
    fn what_is_not_a_level_one_heading_is_not_a_title() {
        assert_eq!(markdown_title(""), None);
        assert_eq!(markdown_title("## Section\n### Sub"), None);
        assert_eq!(markdown_title("#hashtag"), None);
        assert_eq!(markdown_title("    # indented code"), None);
        assert_eq!(markdown_title("Setext\n======"), None);
        assert_eq!(markdown_title("text # not at the start"), None);
    }

    #[test]
    fn lines_may_end_in_a_lone_cr() {
        assert_eq!(
            markdown_title("# Title\rBody line one.\rBody line two.\r"),
            Some("Title")
        );
        assert_eq!(markdown_title("intro\r\n# Title\r\nBody"), Some("Title"));
    }

    #[test]
    fn headings_in_fenced_code_are_skipped() {
        let md = "```sh\n# a shell comment\n```\n# Title";
        assert_eq!(markdown_title(md), Some("Title"));
        let md = "~~~~\n# in\n~~~\n# still in\n~~~~\n# Out";
        assert_eq!(markdown_title(md), Some("Out"));
        // An unclosed fence runs to the end.
        assert_eq!(markdown_title("```\n# never"), None);
        // Inline code is no fence.
        assert_eq!(markdown_title("```a` b```\n# Title"), Some("Title"));
    }

    /// Whatever the text, the title is found or not, never a panic (the
    /// slicing is on char boundaries).
    #[test]
    fn odd_text_does_not_panic() {
        for md in [
            "#",
            "# ",
            "#\u{feff}",
            "é# x",
            "  ```é",
            "~~~\u{0}",
            "#\u{a0}x",
        ] {
            let _ = markdown_title(md);
        }
    }
}
