//! Scopes as the emulator checks them, using the spec's generated enum: a
//! scope added to the spec stops this file compiling (the match in
//! [`describe`]) until the emulator says what it means and lists it in
//! [`ALL`].

use medium_oauth2_api::types::TokenResponseScopeItem as Scope;

/// Every scope the spec names, in the spec's order.
pub(crate) const ALL: [Scope; 4] = [
    Scope::BasicProfile,
    Scope::ListPublications,
    Scope::PublishPost,
    Scope::UploadImage,
];

/// The extended scope, which needs Medium's prior approval of the app.
pub(crate) fn is_extended(scope: Scope) -> bool {
    scope == Scope::UploadImage
}

/// Words for the consent page.
pub(crate) fn describe(scope: Scope) -> &'static str {
    match scope {
        Scope::BasicProfile => "See your name, username, profile URL and picture",
        Scope::ListPublications => "List the publications you belong to",
        Scope::PublishPost => "Publish posts under your name",
        Scope::UploadImage => "Upload images under your name",
    }
}

/// A set of scopes, as a bit mask over [`ALL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Scopes(u8);

impl Scopes {
    fn bit(scope: Scope) -> u8 {
        let index = ALL.iter().position(|s| *s == scope).unwrap_or(0);
        1 << index
    }

    pub(crate) fn contains(self, scope: Scope) -> bool {
        self.0 & Self::bit(scope) != 0
    }

    pub(crate) fn iter(self) -> impl Iterator<Item = Scope> {
        ALL.into_iter().filter(move |s| self.contains(*s))
    }

    pub(crate) fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Parses Medium's comma-separated form; the error names the first
    /// unknown scope.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let mut set = 0;
        for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let scope: Scope = name.parse().map_err(|_| name.to_owned())?;
            set |= Self::bit(scope);
        }
        Ok(Self(set))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_covers_every_generated_variant() {
        for scope in ALL {
            let parsed: Scope = scope.to_string().parse().unwrap();
            assert_eq!(parsed, scope);
        }
        // The generated enum's FromStr rejects what ALL does not list.
        assert!(Scopes::parse("basicProfile,nope").is_err());
    }

    #[test]
    fn parses_comma_separated() {
        let s = Scopes::parse("basicProfile,publishPost").unwrap();
        assert!(s.contains(Scope::BasicProfile) && s.contains(Scope::PublishPost));
        assert!(!s.contains(Scope::UploadImage));
        assert_eq!(Scopes::parse("x").unwrap_err(), "x");
        assert!(Scopes::parse("").unwrap().is_empty());
    }
}
