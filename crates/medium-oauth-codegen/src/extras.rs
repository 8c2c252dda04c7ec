//! What progenitor does not generate but the hand-written layer and the
//! emulator need from the spec: servers, operation paths and form fields, and
//! the browser-only authorize redirect's query.

use openapiv3::{
    OpenAPI, Operation, Parameter, ParameterSchemaOrContent, ReferenceOr, Schema, SchemaKind, Type,
};
use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use crate::CodegenError;

/// The browser redirect operation: progenitor's method for it would follow
/// the 302 and return Medium's HTML, so the layer builds its URL instead.
const AUTHORIZE_OPERATION: &str = "authorizeUser";
/// The operation whose server is the API server.
const TOKEN_OPERATION: &str = "exchangeAuthorizationCode";

fn spec_error(pointer: String, reason: impl Into<String>) -> CodegenError {
    CodegenError::Spec {
        pointer,
        reason: reason.into(),
    }
}

fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

fn snake(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else if c.is_ascii_alphanumeric() {
            out.push(c);
        } else {
            out.push('_');
        }
    }
    out
}

fn doc_of(text: Option<&str>) -> TokenStream {
    match text {
        Some(text) => {
            let text = format!(" {}", text.trim());
            quote!(#[doc = #text])
        }
        None => quote!(),
    }
}

struct Op<'a> {
    id: &'a str,
    path: &'a str,
    method: &'a str,
    pointer: String,
    server: &'a str,
    op: &'a Operation,
}

fn operations(api: &OpenAPI) -> Result<Vec<Op<'_>>, CodegenError> {
    let mut ops = Vec::new();
    for (path, item) in api.paths.paths.iter() {
        let ReferenceOr::Item(item) = item else {
            return Err(spec_error(
                format!("/paths/{}", escape(path)),
                "path item references are not supported",
            ));
        };
        for (method, op) in item.iter() {
            let pointer = format!("/paths/{}/{method}", escape(path));
            let id = op
                .operation_id
                .as_deref()
                .ok_or_else(|| spec_error(pointer.clone(), "operation has no operationId"))?;
            // The effective server, by the spec's precedence rules.
            let server = op
                .servers
                .first()
                .or(item.servers.first())
                .or(api.servers.first())
                .map(|s| s.url.as_str())
                .ok_or_else(|| spec_error(pointer.clone(), "no server applies"))?;
            ops.push(Op {
                id,
                path,
                method,
                pointer,
                server,
                op,
            });
        }
    }
    Ok(ops)
}

/// The single value of a one-value string enum, if the schema is one.
fn fixed_string(schema: &Schema) -> Option<&str> {
    match &schema.schema_kind {
        SchemaKind::Type(Type::String(s)) => match s.enumeration.as_slice() {
            [Some(only)] => Some(only),
            _ => None,
        },
        _ => None,
    }
}

fn is_string(schema: &Schema) -> bool {
    matches!(schema.schema_kind, SchemaKind::Type(Type::String(_)))
}

fn form_fields(op: &Op<'_>) -> Result<Vec<String>, CodegenError> {
    let Some(body) = &op.op.request_body else {
        return Ok(Vec::new());
    };
    let ReferenceOr::Item(body) = body else {
        return Err(spec_error(
            format!("{}/requestBody", op.pointer),
            "request body references are not supported",
        ));
    };
    let Some(media) = body.content.get("application/x-www-form-urlencoded") else {
        return Ok(Vec::new());
    };
    match &media.schema {
        Some(ReferenceOr::Item(Schema {
            schema_kind: SchemaKind::Type(Type::Object(obj)),
            ..
        })) => Ok(obj.properties.keys().cloned().collect()),
        _ => Err(spec_error(
            format!(
                "{}/requestBody/content/application~1x-www-form-urlencoded/schema",
                op.pointer
            ),
            "a form body must be an inline object schema",
        )),
    }
}

/// The authorize operation's query: a struct of the free parameters, constants
/// for the fixed ones (one-value enums) and every parameter's name.
fn authorize_query(op: &Op<'_>) -> Result<TokenStream, CodegenError> {
    let mut fields = Vec::new();
    let mut pairs = Vec::new();
    let mut name_consts = Vec::new();
    let mut fixed_consts = Vec::new();
    for (i, param) in op.op.parameters.iter().enumerate() {
        let pointer = format!("{}/parameters/{i}", op.pointer);
        let ReferenceOr::Item(Parameter::Query { parameter_data, .. }) = param else {
            return Err(spec_error(
                pointer,
                "the authorize redirect supports inline query parameters only",
            ));
        };
        let name = parameter_data.name.as_str();
        let schema = match &parameter_data.format {
            ParameterSchemaOrContent::Schema(ReferenceOr::Item(schema)) if is_string(schema) => {
                schema
            }
            _ => {
                return Err(spec_error(
                    format!("{pointer}/schema"),
                    "the authorize redirect supports inline string schemas only",
                ));
            }
        };
        if !parameter_data.required {
            return Err(spec_error(
                format!("{pointer}/required"),
                "the authorize redirect supports required parameters only",
            ));
        }
        let upper = format_ident!("{}", snake(name).to_ascii_uppercase());
        let name_doc = format!(" The `{name}` query parameter.");
        name_consts.push(quote! { #[doc = #name_doc] pub const #upper: &str = #name; });
        if let Some(value) = fixed_string(schema) {
            let doc = format!(" The only value the spec allows for `{name}`.");
            fixed_consts.push(quote! { #[doc = #doc] pub const #upper: &str = #value; });
            pairs.push(quote! { (param::#upper, fixed::#upper) });
        } else {
            let field = format_ident!("{}", snake(name));
            let doc = doc_of(parameter_data.description.as_deref());
            fields.push(quote! { #doc pub #field: &'a str, });
            pairs.push(quote! { (param::#upper, self.#field) });
        }
    }
    let count = pairs.len();
    Ok(quote! {
        /// Names of the query parameters, as the spec spells them.
        pub mod param {
            #(#name_consts)*
        }
        /// Parameters whose value the spec fixes.
        pub mod fixed {
            #(#fixed_consts)*
        }
        /// The query of the browser redirect. Deliberately neither `Debug` nor
        /// `Display`: it carries the CSRF `state`.
        #[derive(Clone, Copy)]
        pub struct Query<'a> {
            #(#fields)*
        }
        impl<'a> Query<'a> {
            /// Every parameter as a `(name, value)` pair, in the spec's order,
            /// with the fixed ones filled in.
            pub fn pairs(&self) -> [(&'static str, &'a str); #count] {
                [#(#pairs),*]
            }
        }
    })
}

pub(crate) fn generate(api: &OpenAPI) -> Result<TokenStream, CodegenError> {
    let ops = operations(api)?;
    let find = |id: &str| {
        ops.iter()
            .find(|op| op.id == id)
            .ok_or_else(|| spec_error("/paths".into(), format!("no operation `{id}`")))
    };
    let authorization_server = find(AUTHORIZE_OPERATION)?.server;
    let api_server = find(TOKEN_OPERATION)?.server;

    let server_list = api.servers.iter().map(|s| {
        let url = &s.url;
        let description = s.description.as_deref().unwrap_or_default();
        quote!((#url, #description))
    });
    let server_count = api.servers.len();

    let mut modules = Vec::new();
    for op in &ops {
        let module = format_ident!("{}", snake(op.id));
        let (path, server, id) = (op.path, op.server, op.id);
        let method = op.method.to_ascii_uppercase();
        let doc = format!(" `{method} {path}`: the `{id}` operation.");
        let summary = doc_of(op.op.summary.as_deref());
        let fields = form_fields(op)?;
        let form = (!fields.is_empty()).then(|| {
            quote! {
                /// Fields of the form-urlencoded request body, in the spec's order.
                pub const FORM_FIELDS: &[&str] = &[#(#fields),*];
            }
        });
        let query = if op.id == AUTHORIZE_OPERATION {
            authorize_query(op)?
        } else {
            quote!()
        };
        modules.push(quote! {
            #[doc = #doc]
            #[doc = ""]
            #summary
            pub mod #module {
                /// Operation id in the spec.
                pub const OPERATION_ID: &str = #id;
                /// HTTP method.
                pub const METHOD: &str = #method;
                /// Path, relative to [`SERVER`].
                pub const PATH: &str = #path;
                /// The server this operation is served from.
                pub const SERVER: &str = #server;
                #form
                #query
            }
        });
    }

    Ok(quote! {
        /// The servers the spec declares. progenitor ignores `servers`, so these
        /// are generated separately; no other code spells Medium's URLs.
        pub mod servers {
            /// Where the browser is sent to authorize (`authorizeUser`).
            pub const AUTHORIZATION_SERVER: &str = #authorization_server;
            /// Where token requests go (`exchangeAuthorizationCode`).
            pub const API_SERVER: &str = #api_server;
            /// Every server of the spec, as `(url, description)`.
            pub const ALL: [(&str, &str); #server_count] = [#(#server_list),*];
        }
        /// Facts about each operation of the spec: method, path, server, form
        /// fields, and for the browser redirect its query.
        pub mod operations {
            #(#modules)*
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case_of_operation_ids() {
        assert_eq!(snake("authorizeUser"), "authorize_user");
        assert_eq!(snake("client_id"), "client_id");
        assert_eq!(snake("refreshAccessToken"), "refresh_access_token");
    }
}
