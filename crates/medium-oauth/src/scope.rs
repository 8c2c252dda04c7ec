//! Medium's scopes, declared once.
//!
//! [`declare_scopes!`] turns one line per scope into the [`Scope`] enum, its
//! wire name, whether it is extended, `Display`/`FromStr`/serde, and
//! [`Scope::ALL`]. A test keeps the declaration equal to the spec's scope
//! enum, so a scope added to the spec fails CI until it is declared here.

use std::fmt;
use std::str::FromStr;

/// Declares the scopes: `Variant = "wireName" [extended]; …`.
macro_rules! declare_scopes {
    ($( $(#[doc = $doc:literal])* $variant:ident = $wire:literal $($extended:ident)?; )*) => {
        /// A permission an app asks the user for.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum Scope {
            $( $(#[doc = $doc])* $variant, )*
        }

        impl Scope {
            /// Every scope, in declaration order.
            pub const ALL: &'static [Scope] = &[$(Scope::$variant),*];

            /// The name Medium uses on the wire.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Scope::$variant => $wire,)*
                }
            }

            /// Whether Medium must approve the app before it may ask for this
            /// scope.
            pub const fn is_extended(self) -> bool {
                match self {
                    $(Scope::$variant => declare_scopes!(@extended $($extended)?),)*
                }
            }

            /// The scope with this wire name, usable in `const` context (the
            /// [`scopes!`](crate::scopes) macro relies on it).
            pub const fn from_wire_name(name: &str) -> Option<Scope> {
                $(
                    if const_str_eq(name, $wire) {
                        return Some(Scope::$variant);
                    }
                )*
                None
            }
        }
    };
    (@extended extended) => { true };
    (@extended) => { false };
}

declare_scopes! {
    /// `basicProfile`: the user's id, username, name, URL and picture.
    BasicProfile = "basicProfile";
    /// `listPublications`: the publications the user belongs to.
    ListPublications = "listPublications";
    /// `publishPost`: publish posts as the user.
    PublishPost = "publishPost";
    /// `uploadImage`: upload images as the user. Extended: Medium must approve
    /// the app for it first.
    UploadImage = "uploadImage" extended;
}

const fn const_str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

impl Scope {
    const fn bit(self) -> u32 {
        1 << self as u32
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A scope name this version does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown Medium scope `{0}`")]
pub struct UnknownScope(pub String);

impl FromStr for Scope {
    type Err = UnknownScope;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::from_wire_name(s).ok_or_else(|| UnknownScope(s.to_owned()))
    }
}

impl serde::Serialize for Scope {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Scope {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// A set of scopes: small, `Copy`, and printed and parsed in Medium's
/// comma-separated form.
///
/// ```
/// use medium_oauth::{Scope, ScopeSet, scopes};
///
/// let wanted = scopes![basicProfile, publishPost];
/// assert_eq!(wanted.to_string(), "basicProfile,publishPost");
/// assert_eq!("publishPost,basicProfile".parse::<ScopeSet>().unwrap(), wanted);
/// assert!(wanted.contains(Scope::PublishPost));
/// assert_eq!(wanted - scopes![publishPost], scopes![basicProfile]);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ScopeSet(u32);

impl ScopeSet {
    /// No scopes.
    pub const EMPTY: ScopeSet = ScopeSet(0);

    /// Every scope.
    pub const fn all() -> ScopeSet {
        let mut set = 0;
        let mut i = 0;
        while i < Scope::ALL.len() {
            set |= Scope::ALL[i].bit();
            i += 1;
        }
        ScopeSet(set)
    }

    /// This set plus `scope`.
    #[must_use]
    pub const fn with(self, scope: Scope) -> ScopeSet {
        ScopeSet(self.0 | scope.bit())
    }

    /// The set of the wire names, evaluated at compile time by
    /// [`scopes!`](crate::scopes); an unknown name panics, which in a
    /// `const` is a compile error.
    #[doc(hidden)]
    pub const fn from_wire_names(names: &[&str]) -> ScopeSet {
        let mut set = ScopeSet::EMPTY;
        let mut i = 0;
        while i < names.len() {
            match Scope::from_wire_name(names[i]) {
                Some(scope) => set = set.with(scope),
                None => panic!("unknown Medium scope in scopes![]"),
            }
            i += 1;
        }
        set
    }

    /// Whether `scope` is in the set.
    pub const fn contains(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    /// Adds `scope`.
    pub fn insert(&mut self, scope: Scope) {
        self.0 |= scope.bit();
    }

    /// Removes `scope`.
    pub fn remove(&mut self, scope: Scope) {
        self.0 &= !scope.bit();
    }

    /// Scopes in either set.
    #[must_use]
    pub const fn union(self, other: ScopeSet) -> ScopeSet {
        ScopeSet(self.0 | other.0)
    }

    /// Scopes in both sets.
    #[must_use]
    pub const fn intersection(self, other: ScopeSet) -> ScopeSet {
        ScopeSet(self.0 & other.0)
    }

    /// Scopes in this set but not in `other`.
    #[must_use]
    pub const fn difference(self, other: ScopeSet) -> ScopeSet {
        ScopeSet(self.0 & !other.0)
    }

    /// Whether every scope of this set is in `other`.
    pub const fn is_subset(self, other: ScopeSet) -> bool {
        self.0 & !other.0 == 0
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Number of scopes in the set.
    pub const fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// The scopes, in declaration order.
    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL
            .iter()
            .copied()
            .filter(move |s| self.contains(*s))
    }
}

impl From<Scope> for ScopeSet {
    fn from(scope: Scope) -> Self {
        ScopeSet::EMPTY.with(scope)
    }
}

impl FromIterator<Scope> for ScopeSet {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        iter.into_iter().fold(ScopeSet::EMPTY, ScopeSet::with)
    }
}

impl std::ops::BitOr for ScopeSet {
    type Output = ScopeSet;
    fn bitor(self, rhs: ScopeSet) -> ScopeSet {
        self.union(rhs)
    }
}

impl std::ops::BitAnd for ScopeSet {
    type Output = ScopeSet;
    fn bitand(self, rhs: ScopeSet) -> ScopeSet {
        self.intersection(rhs)
    }
}

impl std::ops::Sub for ScopeSet {
    type Output = ScopeSet;
    fn sub(self, rhs: ScopeSet) -> ScopeSet {
        self.difference(rhs)
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, scope) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(scope.as_str())?;
        }
        Ok(())
    }
}

impl fmt::Debug for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(self.iter().map(Scope::as_str))
            .finish()
    }
}

impl FromStr for ScopeSet {
    type Err = UnknownScope;

    /// Parses Medium's comma-separated form; blanks around names are allowed
    /// and empty items ignored.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .map(str::parse::<Scope>)
            .collect()
    }
}

impl serde::Serialize for ScopeSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de> serde::Deserialize<'de> for ScopeSet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Vec::<Scope>::deserialize(d)?.into_iter().collect())
    }
}

/// Builds a [`ScopeSet`] from Medium's scope names, checked at compile time:
/// an unknown name does not compile.
///
/// ```
/// use medium_oauth::{Scope, scopes};
///
/// let set = scopes![basicProfile, publishPost];
/// assert!(set.contains(Scope::BasicProfile));
/// assert_eq!(scopes![].len(), 0);
/// ```
///
/// ```compile_fail
/// let set = medium_oauth::scopes![basicProfile, readMinds];
/// ```
#[macro_export]
macro_rules! scopes {
    ($($name:ident),* $(,)?) => {{
        const SET: $crate::ScopeSet = $crate::ScopeSet::from_wire_names(&[$(stringify!($name)),*]);
        SET
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_round_trip() {
        for scope in Scope::ALL {
            assert_eq!(scope.as_str().parse::<Scope>().unwrap(), *scope);
            assert_eq!(scope.to_string(), scope.as_str());
            let json = serde_json::to_string(scope).unwrap();
            assert_eq!(serde_json::from_str::<Scope>(&json).unwrap(), *scope);
        }
        assert_eq!(
            "readMinds".parse::<Scope>().unwrap_err().to_string(),
            "unknown Medium scope `readMinds`"
        );
    }

    #[test]
    fn only_upload_image_is_extended() {
        let extended: Vec<_> = Scope::ALL.iter().filter(|s| s.is_extended()).collect();
        assert_eq!(extended, [&Scope::UploadImage]);
    }

    #[test]
    fn set_operations() {
        let a = scopes![basicProfile, publishPost];
        let b = scopes![publishPost, uploadImage];
        assert_eq!(a | b, scopes![basicProfile, publishPost, uploadImage]);
        assert_eq!(a & b, scopes![publishPost]);
        assert_eq!(a - b, scopes![basicProfile]);
        assert!(scopes![publishPost].is_subset(a));
        assert!(!b.is_subset(a));
        assert_eq!(ScopeSet::all().len(), Scope::ALL.len());
        let mut c = ScopeSet::EMPTY;
        c.insert(Scope::ListPublications);
        assert_eq!(c, scopes![listPublications]);
        c.remove(Scope::ListPublications);
        assert!(c.is_empty());
    }

    #[test]
    fn comma_separated_form() {
        let set: ScopeSet = " publishPost , basicProfile,,".parse().unwrap();
        assert_eq!(set.to_string(), "basicProfile,publishPost");
        assert_eq!(format!("{set:?}"), r#"{"basicProfile", "publishPost"}"#);
        assert_eq!(
            "basicProfile,nope".parse::<ScopeSet>().unwrap_err(),
            UnknownScope("nope".into())
        );
        assert_eq!("".parse::<ScopeSet>().unwrap(), ScopeSet::EMPTY);
    }

    /// One step of the model test: what a program does to a set.
    #[derive(Clone, Debug)]
    enum Step {
        Insert(Scope),
        Remove(Scope),
        With(Scope),
        Union(Vec<Scope>),
        Intersection(Vec<Scope>),
        Difference(Vec<Scope>),
    }

    fn any_scope() -> impl proptest::strategy::Strategy<Value = Scope> {
        proptest::sample::select(Scope::ALL)
    }

    fn any_step() -> impl proptest::strategy::Strategy<Value = Step> {
        use proptest::prelude::*;
        let scopes = || proptest::collection::vec(any_scope(), 0..6);
        prop_oneof![
            any_scope().prop_map(Step::Insert),
            any_scope().prop_map(Step::Remove),
            any_scope().prop_map(Step::With),
            scopes().prop_map(Step::Union),
            scopes().prop_map(Step::Intersection),
            scopes().prop_map(Step::Difference),
        ]
    }

    proptest::proptest! {
        /// A `ScopeSet` behaves as a set of scopes ordered as `Scope::ALL`
        /// lists them: every query, form and operator agrees with a
        /// `BTreeSet` driven through the same steps.
        #[test]
        fn a_scope_set_behaves_as_a_set_of_scopes(steps in proptest::collection::vec(any_step(), 0..12)) {
            use std::collections::BTreeSet;
            let mut set = ScopeSet::EMPTY;
            let mut model = BTreeSet::new();
            for step in steps {
                let before = set;
                match step {
                    Step::Insert(scope) => {
                        set.insert(scope);
                        model.insert(scope);
                    }
                    Step::Remove(scope) => {
                        set.remove(scope);
                        model.remove(&scope);
                    }
                    Step::With(scope) => {
                        set = set.with(scope);
                        model.insert(scope);
                    }
                    Step::Union(other) => {
                        let other_set: ScopeSet = other.iter().copied().collect();
                        proptest::prop_assert_eq!(before | other_set, before.union(other_set));
                        set = set | other_set;
                        model.extend(other);
                    }
                    Step::Intersection(other) => {
                        let other_set: ScopeSet = other.iter().copied().collect();
                        proptest::prop_assert_eq!(before & other_set, before.intersection(other_set));
                        set = set & other_set;
                        model.retain(|s| other.contains(s));
                    }
                    Step::Difference(other) => {
                        let other_set: ScopeSet = other.iter().copied().collect();
                        proptest::prop_assert_eq!(before - other_set, before.difference(other_set));
                        set = set - other_set;
                        model.retain(|s| !other.contains(s));
                    }
                }
                let listed: Vec<Scope> = set.iter().collect();
                proptest::prop_assert_eq!(&listed, &model.iter().copied().collect::<Vec<_>>());
                proptest::prop_assert_eq!(set.len(), model.len());
                proptest::prop_assert_eq!(set.is_empty(), model.is_empty());
                for scope in Scope::ALL {
                    proptest::prop_assert_eq!(set.contains(*scope), model.contains(scope));
                    proptest::prop_assert_eq!(ScopeSet::from(*scope).is_subset(set), model.contains(scope));
                }
                proptest::prop_assert!(set.is_subset(ScopeSet::all()));
                proptest::prop_assert!(ScopeSet::EMPTY.is_subset(set));
                proptest::prop_assert_eq!(set.is_subset(before), model.iter().all(|s| before.contains(*s)));
                let names: Vec<&str> = model.iter().map(|s| s.as_str()).collect();
                proptest::prop_assert_eq!(set.to_string(), names.join(","));
                proptest::prop_assert_eq!(set.to_string().parse::<ScopeSet>().unwrap(), set);
                proptest::prop_assert_eq!(format!("{set:?}"), format!("{names:?}").replace('[', "{").replace(']', "}"));
                let json = serde_json::to_string(&set).unwrap();
                proptest::prop_assert_eq!(serde_json::from_str::<ScopeSet>(&json).unwrap(), set);
            }
        }
    }

    #[test]
    fn serde_as_a_list() {
        let set = scopes![basicProfile, uploadImage];
        let json = serde_json::to_string(&set).unwrap();
        assert_eq!(json, r#"["basicProfile","uploadImage"]"#);
        assert_eq!(serde_json::from_str::<ScopeSet>(&json).unwrap(), set);
    }
}
