//! Command-line values for the API's enums. The names users type are the
//! wire names, printed by the generated types' `Display`, so none is typed
//! twice; the variants are listed here, and a variant a new spec adds stops
//! the build until it is listed.

use clap::builder::PossibleValue;
use medium_oauth::api::{License, PublishStatus};

/// A clap value enum over a generated enum: `$arg($ty)`, whose possible
/// values are the variants' wire names.
macro_rules! wire_enum {
    ($(#[$doc:meta])* $arg:ident($ty:ident): $($variant:ident),+ $(,)?) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct $arg(pub $ty);

        impl clap::ValueEnum for $arg {
            fn value_variants<'a>() -> &'a [Self] {
                &[$($arg($ty::$variant)),+]
            }

            fn to_possible_value(&self) -> Option<PossibleValue> {
                Some(PossibleValue::new(self.0.to_string()))
            }
        }

        impl $arg {
            /// Compiles only while every variant is listed above: a
            /// variant a spec change adds must be offered too.
            #[allow(dead_code)]
            fn listed(value: $ty) {
                match value {
                    $($ty::$variant)|+ => {}
                }
            }
        }
    };
}

wire_enum!(
    /// `--status`: `public`, `draft` or `unlisted`.
    StatusArg(PublishStatus): Public, Draft, Unlisted
);

wire_enum!(
    /// `--license`: one of Medium's nine licenses.
    LicenseArg(License):
        AllRightsReserved,
        Cc40By,
        Cc40BySa,
        Cc40ByNd,
        Cc40ByNc,
        Cc40ByNcNd,
        Cc40ByNcSa,
        Cc40Zero,
        PublicDomain,
);

#[cfg(test)]
mod tests {
    use clap::ValueEnum;

    use super::*;

    /// Each name offered is one the generated type parses back to the
    /// same variant, and the nine licenses are all offered.
    #[test]
    fn offered_names_are_the_wire_names() {
        for status in StatusArg::value_variants() {
            let name = status.to_possible_value().unwrap().get_name().to_owned();
            assert_eq!(name.parse::<PublishStatus>().unwrap(), status.0);
            assert_eq!(StatusArg::from_str(&name, false).unwrap(), *status);
        }
        let names: Vec<String> = LicenseArg::value_variants()
            .iter()
            .map(|l| {
                let name = l.to_possible_value().unwrap().get_name().to_owned();
                assert_eq!(name.parse::<License>().unwrap(), l.0);
                name
            })
            .collect();
        assert_eq!(names.len(), 9);
        assert!(names.contains(&"cc-40-by-nc-sa".to_owned()));
    }
}
