//! The emulator's made-up world: its demo user and the publications around
//! them. The consent page signs in the demo user unless told another
//! username; any other user contributes to none of these publications.
//!
//! The demo user is an editor of [`EDITOR_PUBLICATION_ID`] and a writer of
//! [`WRITER_PUBLICATION_ID`]; [`OTHER_PUBLICATION_ID`] is run by
//! [`OTHER_USER_IDS`] alone, so every rule about who may publish where can be
//! exercised: an editor publishes anything, a writer only drafts, anyone else
//! nothing.

use medium_oauth2_api::resource::types::{Contributor, ContributorRole, Publication, User};

/// The demo user's id, as `GET /v1/me` answers it.
pub const USER_ID: &str = "5303d74c64f66366f00cb9b2a94f3251bf5";
/// The demo user's handle, without the `@`.
pub const USERNAME: &str = "demo";

/// The user the emulator signs in by default (the consent page's username
/// left as `demo`, or auto-approval), as `GET /v1/me` answers.
pub fn user() -> User {
    User {
        id: USER_ID.into(),
        username: USERNAME.into(),
        name: "Demo User".into(),
        url: format!("https://medium.com/@{USERNAME}"),
        image_url: "https://cdn-images-1.medium.com/fit/c/400/400/demo.png".into(),
    }
}

/// A publication the demo user is an `editor` of: posts in it may have any
/// `publishStatus`.
pub const EDITOR_PUBLICATION_ID: &str = "b969ac62a46b";
/// A publication the demo user is a `writer` for: posts in it must be
/// `draft`s.
pub const WRITER_PUBLICATION_ID: &str = "29d0a5e6b8c4";
/// A publication the demo user does not contribute to: its contributors can
/// be listed, but posting in it is refused (403).
pub const OTHER_PUBLICATION_ID: &str = "e3ef7f020bd4";
/// Other made-up users, who appear only as contributors.
pub const OTHER_USER_IDS: [&str; 2] = [
    "1f86bb0c2d0c4a5e9a2b7d41c3e5f6a7b8c",
    "7a2c9e4b1d3f5a6c8e0b2d4f6a8c0e2b4d6",
];

/// One publication of the fixture.
struct Fixture {
    id: &'static str,
    name: &'static str,
    description: &'static str,
    /// Its path on medium.com, which is also its handle.
    slug: &'static str,
    contributors: &'static [(&'static str, ContributorRole)],
}

const FIXTURES: [Fixture; 3] = [
    Fixture {
        id: EDITOR_PUBLICATION_ID,
        name: "Demo Editorial",
        description: "Where the demo user edits.",
        slug: "demo-editorial",
        contributors: &[
            (USER_ID, ContributorRole::Editor),
            (OTHER_USER_IDS[0], ContributorRole::Writer),
        ],
    },
    Fixture {
        id: WRITER_PUBLICATION_ID,
        name: "Demo Writers",
        description: "Where the demo user writes drafts for an editor.",
        slug: "demo-writers",
        contributors: &[
            (OTHER_USER_IDS[1], ContributorRole::Editor),
            (USER_ID, ContributorRole::Writer),
        ],
    },
    Fixture {
        id: OTHER_PUBLICATION_ID,
        name: "Someone Else's Journal",
        description: "A publication the demo user has no part in.",
        slug: "someone-elses-journal",
        contributors: &[
            (OTHER_USER_IDS[0], ContributorRole::Editor),
            (OTHER_USER_IDS[1], ContributorRole::Writer),
        ],
    },
];

fn fixture(id: &str) -> Option<&'static Fixture> {
    FIXTURES.iter().find(|f| f.id == id)
}

impl Fixture {
    fn publication(&self) -> Publication {
        Publication {
            id: self.id.into(),
            name: self.name.into(),
            description: self.description.into(),
            url: format!("https://medium.com/{}", self.slug),
            image_url: format!(
                "https://cdn-images-1.medium.com/fit/c/200/200/{}.png",
                self.slug
            ),
        }
    }
}

/// The publication with this id, if the fixture has it.
pub fn publication(id: &str) -> Option<Publication> {
    fixture(id).map(Fixture::publication)
}

/// The publications `user_id` contributes to, in the fixture's order (for
/// the demo user: the editor's, then the writer's).
pub fn publications_of(user_id: &str) -> Vec<Publication> {
    FIXTURES
        .iter()
        .filter(|f| f.contributors.iter().any(|(u, _)| *u == user_id))
        .map(Fixture::publication)
        .collect()
}

/// A publication's contributors, or `None` for an unknown publication.
pub fn contributors(publication_id: &str) -> Option<Vec<Contributor>> {
    fixture(publication_id).map(|f| {
        f.contributors
            .iter()
            .map(|(user, role)| Contributor {
                publication_id: f.id.into(),
                user_id: (*user).into(),
                role: *role,
            })
            .collect()
    })
}

/// `user_id`'s role in the publication, if they contribute to it.
pub fn role(publication_id: &str, user_id: &str) -> Option<ContributorRole> {
    fixture(publication_id)?
        .contributors
        .iter()
        .find(|(u, _)| *u == user_id)
        .map(|(_, role)| *role)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_user_edits_one_writes_for_another_and_is_absent_from_the_third() {
        assert_eq!(
            role(EDITOR_PUBLICATION_ID, USER_ID),
            Some(ContributorRole::Editor)
        );
        assert_eq!(
            role(WRITER_PUBLICATION_ID, USER_ID),
            Some(ContributorRole::Writer)
        );
        assert_eq!(role(OTHER_PUBLICATION_ID, USER_ID), None);
        let ids: Vec<String> = publications_of(USER_ID).into_iter().map(|p| p.id).collect();
        assert_eq!(ids, [EDITOR_PUBLICATION_ID, WRITER_PUBLICATION_ID]);
        assert!(contributors(OTHER_PUBLICATION_ID).is_some_and(|c| c.len() == 2));
        assert!(contributors("nope").is_none());
    }
}
