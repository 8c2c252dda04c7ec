//! Scopes: the declaration matches the spec, and `scopes!` rejects unknown
//! names at compile time.

use medium_oauth::Scope;

#[test]
fn declared_scopes_equal_the_spec_enum() {
    let spec = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../medium-oauth2-openapi.yml"
    ))
    .unwrap();
    let doc: serde_yaml::Value = serde_yaml::from_str(&spec).unwrap();
    let spec_scopes: Vec<String> =
        doc["components"]["schemas"]["TokenResponse"]["properties"]["scope"]["items"]["enum"]
            .as_sequence()
            .expect("the spec's scope enum")
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
    let declared: Vec<String> = Scope::ALL.iter().map(|s| s.as_str().to_owned()).collect();
    assert_eq!(
        declared, spec_scopes,
        "declare the spec's scopes in src/scope.rs"
    );
    // And the generated client agrees with both.
    for name in &spec_scopes {
        let generated: medium_oauth2_api::types::TokenResponseScopeItem = name.parse().unwrap();
        assert_eq!(generated.to_string(), *name);
    }
}

#[test]
fn unknown_scope_names_do_not_compile() {
    trybuild::TestCases::new().compile_fail("tests/compile_fail/*.rs");
}
