//! OpenAPI 3.1 → 3.0 conversion, in memory.
//!
//! progenitor (through openapiv3) reads only OpenAPI 3.0, while the bundled
//! spec is 3.1. The two differ mostly inside Schema Objects, where 3.1 adopted
//! JSON Schema 2020-12. This module rewrites the 3.1 forms that have an exact
//! 3.0 equivalent and refuses, with the JSON pointer of the construct, the ones
//! that do not: silently dropping a constraint would make the generated client
//! accept or send data the spec forbids.

use serde_json::{Map, Value};

/// The OpenAPI version written into the converted document.
const TARGET_VERSION: &str = "3.0.3";

/// JSON Schema 2020-12 keywords with no OpenAPI 3.0 equivalent.
const UNCONVERTIBLE_SCHEMA_KEYWORDS: &[&str] = &[
    "prefixItems",
    "if",
    "then",
    "else",
    "dependentSchemas",
    "dependentRequired",
    "unevaluatedItems",
    "unevaluatedProperties",
    "patternProperties",
    "propertyNames",
    "contains",
    "minContains",
    "maxContains",
    "$defs",
    "$anchor",
    "$dynamicRef",
    "$dynamicAnchor",
    "contentEncoding",
    "contentMediaType",
    "contentSchema",
];

/// A construct of the 3.1 document that has no 3.0 form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot convert OpenAPI 3.1 construct `{construct}` at {pointer}: {reason}")]
pub struct ConvertError {
    /// JSON pointer (RFC 6901) of the offending value in the spec.
    pub pointer: String,
    /// The keyword or construct that could not be converted.
    pub construct: String,
    /// Why it has no 3.0 form.
    pub reason: String,
}

fn err(pointer: &str, construct: &str, reason: impl Into<String>) -> ConvertError {
    ConvertError {
        pointer: if pointer.is_empty() {
            "/".to_owned()
        } else {
            pointer.to_owned()
        },
        construct: construct.to_owned(),
        reason: reason.into(),
    }
}

/// Appends one reference token to a JSON pointer, escaping `~` and `/`.
fn child(pointer: &str, token: &str) -> String {
    format!("{pointer}/{}", token.replace('~', "~0").replace('/', "~1"))
}

/// Converts an OpenAPI 3.1 document into 3.0 in place. A 3.0 document is left
/// untouched.
pub fn downgrade(doc: &mut Value) -> Result<(), ConvertError> {
    let root = doc
        .as_object_mut()
        .ok_or_else(|| err("", "document", "the spec is not a mapping"))?;
    let version = root
        .get("openapi")
        .and_then(Value::as_str)
        .ok_or_else(|| err("/openapi", "openapi", "missing or not a string"))?;
    if version.starts_with("3.0.") {
        return Ok(());
    }
    if !version.starts_with("3.1.") {
        return Err(err(
            "/openapi",
            "openapi",
            format!("version {version} is neither 3.0 nor 3.1"),
        ));
    }
    root.insert("openapi".into(), TARGET_VERSION.into());
    // Both are 3.1 additions that 3.0 readers reject; neither affects a client.
    root.remove("jsonSchemaDialect");
    root.remove("webhooks");
    // 3.1 made `paths` optional; 3.0 requires it.
    root.entry("paths")
        .or_insert_with(|| Value::Object(Map::new()));

    if let Some(paths) = root.get_mut("paths").and_then(Value::as_object_mut) {
        for (path, item) in paths.iter_mut() {
            path_item(item, &child("/paths", path))?;
        }
    }
    if let Some(components) = root.get_mut("components").and_then(Value::as_object_mut) {
        components_object(components)?;
    }
    Ok(())
}

fn components_object(components: &mut Map<String, Value>) -> Result<(), ConvertError> {
    if components
        .get("pathItems")
        .and_then(Value::as_object)
        .is_some_and(|m| !m.is_empty())
    {
        return Err(err(
            "/components/pathItems",
            "pathItems",
            "reusable path items are 3.1-only",
        ));
    }
    components.remove("pathItems");
    type Visit = fn(&mut Value, &str) -> Result<(), ConvertError>;
    let sections: [(&str, Visit); 5] = [
        ("schemas", schema),
        ("parameters", parameter),
        ("requestBodies", body_or_response),
        ("responses", body_or_response),
        ("headers", parameter),
    ];
    for (section, visit) in sections {
        if let Some(map) = components.get_mut(section).and_then(Value::as_object_mut) {
            let base = child("/components", section);
            for (name, value) in map.iter_mut() {
                visit(value, &child(&base, name))?;
            }
        }
    }
    Ok(())
}

const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn path_item(item: &mut Value, ptr: &str) -> Result<(), ConvertError> {
    let Some(item) = item.as_object_mut() else {
        return Ok(());
    };
    if let Some(params) = item.get_mut("parameters").and_then(Value::as_array_mut) {
        for (i, p) in params.iter_mut().enumerate() {
            parameter(p, &child(&child(ptr, "parameters"), &i.to_string()))?;
        }
    }
    for method in METHODS {
        if let Some(op) = item.get_mut(*method) {
            operation(op, &child(ptr, method))?;
        }
    }
    Ok(())
}

fn operation(op: &mut Value, ptr: &str) -> Result<(), ConvertError> {
    let Some(op) = op.as_object_mut() else {
        return Ok(());
    };
    if let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) {
        for (i, p) in params.iter_mut().enumerate() {
            parameter(p, &child(&child(ptr, "parameters"), &i.to_string()))?;
        }
    }
    if let Some(body) = op.get_mut("requestBody") {
        body_or_response(body, &child(ptr, "requestBody"))?;
    }
    if let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) {
        let base = child(ptr, "responses");
        for (status, response) in responses.iter_mut() {
            body_or_response(response, &child(&base, status))?;
        }
    }
    if let Some(callbacks) = op.get_mut("callbacks").and_then(Value::as_object_mut) {
        let base = child(ptr, "callbacks");
        for (name, callback) in callbacks.iter_mut() {
            let cb_ptr = child(&base, name);
            if let Some(expressions) = callback.as_object_mut() {
                for (expr, item) in expressions.iter_mut() {
                    path_item(item, &child(&cb_ptr, expr))?;
                }
            }
        }
    }
    Ok(())
}

/// A Parameter or Header Object: a `schema`, or a `content` map.
fn parameter(param: &mut Value, ptr: &str) -> Result<(), ConvertError> {
    let Some(param) = param.as_object_mut() else {
        return Ok(());
    };
    if let Some(s) = param.get_mut("schema") {
        schema(s, &child(ptr, "schema"))?;
    }
    content(param, ptr)
}

/// A Request Body or Response Object: `content`, and for responses `headers`.
fn body_or_response(value: &mut Value, ptr: &str) -> Result<(), ConvertError> {
    let Some(obj) = value.as_object_mut() else {
        return Ok(());
    };
    content(obj, ptr)?;
    if let Some(headers) = obj.get_mut("headers").and_then(Value::as_object_mut) {
        let base = child(ptr, "headers");
        for (name, header) in headers.iter_mut() {
            parameter(header, &child(&base, name))?;
        }
    }
    Ok(())
}

fn content(obj: &mut Map<String, Value>, ptr: &str) -> Result<(), ConvertError> {
    if let Some(content) = obj.get_mut("content").and_then(Value::as_object_mut) {
        let base = child(ptr, "content");
        for (media_type, media) in content.iter_mut() {
            if let Some(s) = media.get_mut("schema") {
                schema(s, &child(&child(&base, media_type), "schema"))?;
            }
        }
    }
    Ok(())
}

/// Converts one Schema Object and, recursively, the schemas inside it.
pub fn schema(value: &mut Value, ptr: &str) -> Result<(), ConvertError> {
    // 3.1 allows boolean schemas; 3.0 spells them as objects.
    if let Value::Bool(accept) = *value {
        *value = if accept {
            Value::Object(Map::new())
        } else {
            serde_json::json!({ "not": {} })
        };
        return Ok(());
    }
    let Some(obj) = value.as_object_mut() else {
        return Err(err(
            ptr,
            "schema",
            "a schema must be a mapping or a boolean",
        ));
    };
    if obj.contains_key("$ref") {
        // 3.0 ignores a reference's siblings, so there is nothing to convert.
        return Ok(());
    }
    for keyword in UNCONVERTIBLE_SCHEMA_KEYWORDS {
        if obj.contains_key(*keyword) {
            return Err(err(
                &child(ptr, keyword),
                keyword,
                "JSON Schema 2020-12 keyword with no OpenAPI 3.0 equivalent",
            ));
        }
    }
    obj.remove("$schema");
    convert_type(obj, ptr)?;
    convert_const(obj, ptr)?;
    convert_examples(obj, ptr)?;
    convert_exclusive_bound(obj, "exclusiveMinimum", "minimum", ptr, |excl, incl| {
        excl >= incl
    })?;
    convert_exclusive_bound(obj, "exclusiveMaximum", "maximum", ptr, |excl, incl| {
        excl <= incl
    })?;
    convert_null_branches(obj, ptr)?;
    subschemas(obj, ptr)
}

/// `type: [T, "null"]` → `type: T, nullable: true`.
fn convert_type(obj: &mut Map<String, Value>, ptr: &str) -> Result<(), ConvertError> {
    let type_ptr = child(ptr, "type");
    match obj.get("type") {
        Some(Value::String(t)) if t == "null" => Err(err(
            &type_ptr,
            "type: null",
            "3.0 has no null type; use `type: [T, \"null\"]`",
        )),
        Some(Value::Array(types)) => {
            let mut nullable = false;
            let mut others = Vec::new();
            for t in types {
                match t.as_str() {
                    Some("null") => nullable = true,
                    Some(other) => others.push(other.to_owned()),
                    None => return Err(err(&type_ptr, "type", "type names must be strings")),
                }
            }
            let [single] = others.as_slice() else {
                return Err(err(
                    &type_ptr,
                    "type",
                    format!(
                        "3.0 allows exactly one type besides null, found {}",
                        others.len()
                    ),
                ));
            };
            obj.insert("type".into(), single.clone().into());
            if nullable {
                obj.insert("nullable".into(), true.into());
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// `const: v` → `enum: [v]`.
fn convert_const(obj: &mut Map<String, Value>, ptr: &str) -> Result<(), ConvertError> {
    let Some(value) = obj.remove("const") else {
        return Ok(());
    };
    if obj.contains_key("enum") {
        return Err(err(
            &child(ptr, "const"),
            "const",
            "`const` beside `enum` has no single 3.0 form",
        ));
    }
    if value.is_null() {
        obj.insert("nullable".into(), true.into());
    }
    obj.insert("enum".into(), Value::Array(vec![value]));
    Ok(())
}

/// `examples: [a, …]` → `example: a` (3.0 schemas hold one example).
fn convert_examples(obj: &mut Map<String, Value>, ptr: &str) -> Result<(), ConvertError> {
    let Some(examples) = obj.remove("examples") else {
        return Ok(());
    };
    let Value::Array(mut examples) = examples else {
        return Err(err(
            &child(ptr, "examples"),
            "examples",
            "schema `examples` must be an array",
        ));
    };
    if !obj.contains_key("example") && !examples.is_empty() {
        obj.insert("example".into(), examples.swap_remove(0));
    }
    Ok(())
}

/// Numeric `exclusiveMinimum: n` → `minimum: n, exclusiveMinimum: true`
/// (and likewise for the maximum). When an inclusive bound is also present,
/// the tighter of the two wins, which is what 3.1 means by giving both.
fn convert_exclusive_bound(
    obj: &mut Map<String, Value>,
    exclusive: &str,
    inclusive: &str,
    ptr: &str,
    exclusive_is_tighter: fn(f64, f64) -> bool,
) -> Result<(), ConvertError> {
    let bound = match obj.get(exclusive) {
        None | Some(Value::Bool(_)) => return Ok(()),
        Some(Value::Number(n)) => n.clone(),
        Some(_) => {
            return Err(err(&child(ptr, exclusive), exclusive, "must be a number"));
        }
    };
    let as_f64 = |n: &serde_json::Number| n.as_f64().unwrap_or(f64::NAN);
    let tighter = match obj.get(inclusive).and_then(Value::as_number) {
        Some(current) => exclusive_is_tighter(as_f64(&bound), as_f64(current)),
        None => true,
    };
    if tighter {
        obj.insert(inclusive.into(), Value::Number(bound));
        obj.insert(exclusive.into(), true.into());
    } else {
        obj.remove(exclusive);
    }
    Ok(())
}

/// `anyOf`/`oneOf` with a `{type: "null"}` branch → the other branches plus
/// `nullable: true`.
fn convert_null_branches(obj: &mut Map<String, Value>, ptr: &str) -> Result<(), ConvertError> {
    for combinator in ["anyOf", "oneOf"] {
        let Some(Value::Array(branches)) = obj.get_mut(combinator) else {
            continue;
        };
        let is_null = |b: &Value| b.get("type").and_then(Value::as_str) == Some("null");
        let before = branches.len();
        branches.retain(|b| !is_null(b));
        if branches.len() != before {
            if branches.is_empty() {
                return Err(err(
                    &child(ptr, combinator),
                    combinator,
                    "a combinator of only null has no 3.0 form",
                ));
            }
            obj.insert("nullable".into(), true.into());
        }
    }
    Ok(())
}

fn subschemas(obj: &mut Map<String, Value>, ptr: &str) -> Result<(), ConvertError> {
    if let Some(props) = obj.get_mut("properties").and_then(Value::as_object_mut) {
        let base = child(ptr, "properties");
        for (name, s) in props.iter_mut() {
            schema(s, &child(&base, name))?;
        }
    }
    for single in ["items", "not"] {
        if let Some(s) = obj.get_mut(single) {
            if s.is_array() {
                return Err(err(
                    &child(ptr, single),
                    single,
                    "an array here is a tuple form with no 3.0 equivalent",
                ));
            }
            schema(s, &child(ptr, single))?;
        }
    }
    if let Some(s) = obj
        .get_mut("additionalProperties")
        .filter(|s| s.is_object())
    {
        schema(s, &child(ptr, "additionalProperties"))?;
    }
    for combinator in ["allOf", "anyOf", "oneOf"] {
        if let Some(branches) = obj.get_mut(combinator).and_then(Value::as_array_mut) {
            let base = child(ptr, combinator);
            for (i, s) in branches.iter_mut().enumerate() {
                schema(s, &child(&base, &i.to_string()))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn convert_schema(mut s: Value) -> Result<Value, ConvertError> {
        schema(&mut s, "/components/schemas/T")?;
        Ok(s)
    }

    #[test]
    fn nullable_type_array_becomes_nullable() {
        let s = convert_schema(json!({"type": ["string", "null"]})).unwrap();
        assert_eq!(s, json!({"type": "string", "nullable": true}));
        let s = convert_schema(json!({"type": ["integer"]})).unwrap();
        assert_eq!(s, json!({"type": "integer"}));
    }

    #[test]
    fn several_non_null_types_are_refused_with_pointer() {
        let e = convert_schema(json!({"type": ["string", "integer"]})).unwrap_err();
        assert_eq!(e.pointer, "/components/schemas/T/type");
        assert_eq!(e.construct, "type");
    }

    #[test]
    fn bare_null_type_is_refused() {
        let e = convert_schema(json!({"type": "null"})).unwrap_err();
        assert_eq!(e.pointer, "/components/schemas/T/type");
    }

    #[test]
    fn const_becomes_single_value_enum() {
        let s = convert_schema(json!({"type": "string", "const": "Bearer"})).unwrap();
        assert_eq!(s, json!({"type": "string", "enum": ["Bearer"]}));
        let e = convert_schema(json!({"const": 1, "enum": [1, 2]})).unwrap_err();
        assert_eq!(e.construct, "const");
    }

    #[test]
    fn examples_becomes_example() {
        let s = convert_schema(json!({"type": "string", "examples": ["a", "b"]})).unwrap();
        assert_eq!(s, json!({"type": "string", "example": "a"}));
        let e = convert_schema(json!({"examples": {"a": 1}})).unwrap_err();
        assert_eq!(e.pointer, "/components/schemas/T/examples");
        // A 3.0 `example` already there is the author's choice and stays;
        // an empty list gives none.
        let s = convert_schema(json!({"example": "kept", "examples": ["a"]})).unwrap();
        assert_eq!(s, json!({"example": "kept"}));
        let s = convert_schema(json!({"type": "string", "examples": []})).unwrap();
        assert_eq!(s, json!({"type": "string"}));
    }

    #[test]
    fn numeric_exclusive_bounds_become_boolean_form() {
        let s = convert_schema(json!({"type": "integer", "exclusiveMinimum": 0})).unwrap();
        assert_eq!(
            s,
            json!({"type": "integer", "minimum": 0, "exclusiveMinimum": true})
        );
        let s = convert_schema(json!({"exclusiveMaximum": 10, "maximum": 5})).unwrap();
        assert_eq!(s, json!({"maximum": 5}), "the tighter inclusive bound wins");
        let s = convert_schema(json!({"exclusiveMaximum": 5, "maximum": 10})).unwrap();
        assert_eq!(s, json!({"maximum": 5, "exclusiveMaximum": true}));
        // The same for minimums, mirrored; at equal bounds the exclusive
        // one is the tighter.
        let s = convert_schema(json!({"exclusiveMinimum": 0, "minimum": 5})).unwrap();
        assert_eq!(s, json!({"minimum": 5}), "the tighter inclusive bound wins");
        let s = convert_schema(json!({"exclusiveMinimum": 5, "minimum": 0})).unwrap();
        assert_eq!(s, json!({"minimum": 5, "exclusiveMinimum": true}));
        for (exclusive, inclusive) in [
            ("exclusiveMinimum", "minimum"),
            ("exclusiveMaximum", "maximum"),
        ] {
            let s = convert_schema(json!({exclusive: 5, inclusive: 5})).unwrap();
            assert_eq!(s, json!({inclusive: 5, exclusive: true}), "{exclusive}");
        }
    }

    #[test]
    fn schema_dialect_marker_is_dropped() {
        let s = convert_schema(
            json!({"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object"}),
        )
        .unwrap();
        assert_eq!(s, json!({"type": "object"}));
    }

    #[test]
    fn null_branch_of_any_of_becomes_nullable() {
        let s = convert_schema(json!({"anyOf": [{"type": "string"}, {"type": "null"}]})).unwrap();
        assert_eq!(s, json!({"anyOf": [{"type": "string"}], "nullable": true}));
    }

    #[test]
    fn boolean_schemas_become_objects() {
        assert_eq!(convert_schema(json!(true)).unwrap(), json!({}));
        assert_eq!(convert_schema(json!(false)).unwrap(), json!({"not": {}}));
    }

    #[test]
    fn nested_schemas_are_converted_and_pointers_escaped() {
        let s = convert_schema(json!({
            "type": "object",
            "properties": {"a/b": {"type": "array", "items": {"type": ["string", "null"]}}}
        }))
        .unwrap();
        assert_eq!(
            s["properties"]["a/b"]["items"],
            json!({"type": "string", "nullable": true})
        );
        let e = convert_schema(json!({
            "properties": {"a/b": {"items": {"prefixItems": []}}}
        }))
        .unwrap_err();
        assert_eq!(
            e.pointer,
            "/components/schemas/T/properties/a~1b/items/prefixItems"
        );
        assert_eq!(e.construct, "prefixItems");
    }

    #[test]
    fn document_level_rules() {
        let mut doc = json!({
            "openapi": "3.1.0",
            "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
            "webhooks": {"x": {}},
            "info": {"title": "t", "version": "1"},
            "paths": {"/x/{id}": {"get": {
                "parameters": [{"name": "id", "in": "path", "schema": {"const": 3}}],
                "responses": {"200": {"description": "ok",
                    "content": {"application/json": {"schema": {"type": ["string", "null"]}}}}}
            }}}
        });
        downgrade(&mut doc).unwrap();
        assert_eq!(doc["openapi"], "3.0.3");
        assert!(doc.get("jsonSchemaDialect").is_none());
        assert!(doc.get("webhooks").is_none());
        let op = &doc["paths"]["/x/{id}"]["get"];
        assert_eq!(op["parameters"][0]["schema"], json!({"enum": [3]}));
        assert_eq!(
            op["responses"]["200"]["content"]["application/json"]["schema"],
            json!({"type": "string", "nullable": true})
        );
    }

    #[test]
    fn errors_in_operations_name_the_operation_pointer() {
        let mut doc = json!({
            "openapi": "3.1.0",
            "paths": {"/tokens": {"post": {"requestBody": {"content": {
                "application/x-www-form-urlencoded": {"schema": {"properties": {"x": {"if": {}}}}}
            }}}}}
        });
        let e = downgrade(&mut doc).unwrap_err();
        assert_eq!(
            e.pointer,
            "/paths/~1tokens/post/requestBody/content/application~1x-www-form-urlencoded/schema/properties/x/if"
        );
        assert!(e.to_string().contains("`if`"), "{e}");
    }

    #[test]
    fn versions_other_than_3_0_and_3_1_are_refused() {
        let mut doc = json!({"openapi": "2.0"});
        assert_eq!(downgrade(&mut doc).unwrap_err().pointer, "/openapi");
        let mut doc = json!({"openapi": "3.0.3", "paths": {}});
        let before = doc.clone();
        downgrade(&mut doc).unwrap();
        assert_eq!(doc, before, "3.0 documents pass through unchanged");
    }

    #[test]
    fn reusable_path_items_are_refused() {
        let mut doc = json!({"openapi": "3.1.0", "components": {"pathItems": {"p": {}}}});
        assert_eq!(
            downgrade(&mut doc).unwrap_err().pointer,
            "/components/pathItems"
        );
    }
}
