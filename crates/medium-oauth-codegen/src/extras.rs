//! What progenitor does not generate but the hand-written layer and the
//! emulator need from the spec: servers, operation paths (and builders for
//! templated ones), form fields, scopes, multipart parts, and the
//! browser-only authorize redirect's query.

use openapiv3::{
    MediaType, OpenAPI, Operation, Parameter, ParameterData, ParameterSchemaOrContent, ReferenceOr,
    Schema, SchemaKind, StringFormat, Type, VariantOrUnknownOrEmpty,
};
use proc_macro2::TokenStream;
use quote::quote;

use crate::{CodegenError, Flavor};

/// The browser redirect operation: progenitor's method for it would follow
/// the 302 and return Medium's HTML, so the layer builds its URL instead.
const AUTHORIZE_OPERATION: &str = "authorizeUser";
/// The operation whose server is the API server.
const TOKEN_OPERATION: &str = "exchangeAuthorizationCode";
/// The operation extension naming the one OAuth scope a REST call's token
/// needs.
const SCOPE_EXTENSION: &str = "x-medium-scope";
/// The multipart media type whose parts the extras describe.
const MULTIPART: &str = "multipart/form-data";

fn spec_error(pointer: String, reason: impl Into<String>) -> CodegenError {
    CodegenError::Spec {
        pointer,
        reason: reason.into(),
    }
}

/// The Rust identifier `case` makes of each name, in order. `format_ident!`
/// would panic on a name that gives no identifier, so each is parsed first:
/// a name that gives a keyword, a leading digit or nothing usable is refused
/// at its pointer, and so is a second name that gives the same identifier
/// (`imageFile` and `image_file`), which would be a duplicate item.
fn idents<'n>(
    names: impl IntoIterator<Item = (&'n str, String)>,
    case: fn(&str) -> String,
    what: &str,
) -> Result<Vec<syn::Ident>, CodegenError> {
    let mut seen: Vec<(syn::Ident, &str)> = Vec::new();
    for (name, pointer) in names {
        let text = case(name);
        let ident = syn::parse_str::<syn::Ident>(&text).map_err(|_| {
            spec_error(
                pointer.clone(),
                format!(
                    "the {what} `{name}` becomes `{text}` in Rust, which is not an identifier \
                     (a keyword, a leading digit, or no letter at all)"
                ),
            )
        })?;
        if let Some((_, first)) = seen.iter().find(|(other, _)| *other == ident) {
            return Err(spec_error(
                pointer,
                format!("the {what} `{name}` becomes `{text}` in Rust, as `{first}` does"),
            ));
        }
        seen.push((ident, name));
    }
    Ok(seen.into_iter().map(|(ident, _)| ident).collect())
}

fn upper_snake(name: &str) -> String {
    snake(name).to_ascii_uppercase()
}

pub(crate) fn escape(token: &str) -> String {
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
    /// Parameters declared on the path item, shared by its operations.
    item_parameters: &'a [ReferenceOr<Parameter>],
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
                item_parameters: &item.parameters,
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
    // Each parameter's name, pointer, description and fixed value, if any.
    let mut params = Vec::new();
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
        params.push((
            name,
            format!("{pointer}/name"),
            parameter_data,
            fixed_string(schema),
        ));
    }
    let uppers = idents(
        params
            .iter()
            .map(|(name, pointer, ..)| (*name, pointer.clone())),
        upper_snake,
        "query parameter",
    )?;
    let free = params.iter().filter(|(.., fixed)| fixed.is_none());
    let mut field_idents = idents(
        free.map(|(name, pointer, ..)| (*name, pointer.clone())),
        snake,
        "query parameter",
    )?
    .into_iter();

    let mut fields = Vec::new();
    let mut pairs = Vec::new();
    let mut name_consts = Vec::new();
    let mut fixed_consts = Vec::new();
    for ((name, _, parameter_data, fixed), upper) in params.into_iter().zip(uppers) {
        let name_doc = format!(" The `{name}` query parameter.");
        name_consts.push(quote! { #[doc = #name_doc] pub const #upper: &str = #name; });
        if let Some(value) = fixed {
            let doc = format!(" The only value the spec allows for `{name}`.");
            fixed_consts.push(quote! { #[doc = #doc] pub const #upper: &str = #value; });
            pairs.push(quote! { (param::#upper, fixed::#upper) });
        } else {
            let field = field_idents
                .next()
                .expect("one identifier per free parameter");
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

/// The `{name}` placeholders of a path template, in order.
fn placeholders(path: &str) -> Result<Vec<&str>, String> {
    let mut names = Vec::new();
    let mut rest = path;
    while let Some(open) = rest.find(['{', '}']) {
        if rest[open..].starts_with('}') {
            return Err("a `}` without its `{`".into());
        }
        let after = &rest[open + 1..];
        let close = after
            .find(['{', '}'])
            .filter(|&i| after[i..].starts_with('}'))
            .ok_or("a `{` without its `}`")?;
        let name = &after[..close];
        if name.is_empty() {
            return Err("an empty `{}`".into());
        }
        if names.contains(&name) {
            // The builder's arguments are named after the placeholders.
            return Err(format!("`{{{name}}}` appears twice"));
        }
        names.push(name);
        rest = &after[close + 1..];
    }
    Ok(names)
}

/// The inline path parameter called `name`, the operation's before the path
/// item's, as the spec's precedence rules say.
fn path_parameter<'a>(op: &'a Op<'_>, name: &str) -> Option<&'a ParameterData> {
    op.op
        .parameters
        .iter()
        .chain(op.item_parameters)
        .find_map(|param| match param {
            ReferenceOr::Item(Parameter::Path { parameter_data, .. })
                if parameter_data.name == name =>
            {
                Some(parameter_data)
            }
            _ => None,
        })
}

/// `PATH` for a fixed path; for a templated one its template, a `check_ids`
/// function and a `path` function that fills it in, so no caller formats a
/// path by hand.
fn path_items(op: &Op<'_>) -> Result<TokenStream, CodegenError> {
    let path = op.path;
    let pointer = format!("/paths/{}", escape(path));
    let names = placeholders(path)
        .map_err(|reason| spec_error(pointer.clone(), format!("the path template has {reason}")))?;
    if names.is_empty() {
        return Ok(quote! {
            /// Path, relative to [`SERVER`].
            pub const PATH: &str = #path;
        });
    }
    let args = idents(
        names.iter().map(|name| (*name, pointer.clone())),
        snake,
        "path parameter",
    )?;
    let mut format = path.to_owned();
    let mut arg_docs = Vec::new();
    for (name, arg) in names.iter().zip(&args) {
        let data = path_parameter(op, name).ok_or_else(|| {
            spec_error(
                format!("{}/parameters", op.pointer),
                format!("`{{{name}}}` in the path has no inline path parameter of that name"),
            )
        })?;
        arg_docs.push(match data.description.as_deref() {
            Some(text) => format!(" - `{arg}`: {}", text.trim()),
            None => format!(" - `{arg}`: the `{name}` segment."),
        });
        format = format.replacen(&format!("{{{name}}}"), "{}", 1);
    }
    // Only an operation progenitor sees has a `Client` method to warn about.
    let client_method = crate::extras_only_body(op.op).is_none().then(|| {
        quote! {
            #[doc = ""]
            /// Call it before this operation's method on the generated
            /// [`Client`](super::super::Client): that method encodes ids with
            /// progenitor's `encode_path`, which leaves `\`, `.` and `..` as
            /// they are, and reqwest's URL parser reads `\` as `/` and
            /// resolves dot segments, so an unchecked id can send the request
            /// to another path. An id this accepts stays in its segment under
            /// that encoding too.
        }
    });
    Ok(quote! {
        /// Path template, relative to [`SERVER`], with a `{name}` placeholder
        /// for each path parameter: the spec's syntax, which axum 0.8 routes
        /// use too. A request's path comes from [`path`].
        pub const PATH_TEMPLATE: &str = #path;
        /// Refuses an id that could leave its path segment, by the rules of
        /// [`path_id::check`](super::super::path_id::check), naming the
        /// parameter that holds it.
        #client_method
        pub fn check_ids(#(#args: &str),*) -> Result<(), super::super::path_id::InvalidPathId> {
            #(super::super::path_id::check(#names, #args)?;)*
            Ok(())
        }
        /// The path for these parameters, relative to [`SERVER`]. Each id is
        /// first checked by [`check_ids`], as percent-encoding alone cannot
        /// keep `.` and `..` from being read as dot segments, then encoded by
        /// [`path_id::encode`](super::super::path_id::encode), so nothing in
        /// it can end its segment, start a query or decode into another path.
        ///
        #(#[doc = #arg_docs])*
        pub fn path(#(#args: &str),*) -> Result<String, super::super::path_id::InvalidPathId> {
            check_ids(#(#args),*)?;
            Ok(format!(#format, #(super::super::path_id::encode(#args)),*))
        }
    })
}

/// `path_id`, beside `operations` when some path is templated: the id check
/// and the segment encoding every `path` builder uses, and the error of a
/// refused id.
fn path_id_module() -> TokenStream {
    quote! {
        /// What keeps an id in its path segment. Percent-encoding alone does
        /// not: the URL parser reqwest uses (`Url::parse`, WHATWG rules) reads
        /// `\` as `/` in `http(s)` URLs and resolves `.` and `..` segments,
        /// so `..` or `..\x` as an id would move a request to another path,
        /// and an empty id would leave `//`. [`check`](path_id::check) refuses
        /// those ids and [`encode`](path_id::encode) encodes the rest; each operation's `path` builder does
        /// both.
        ///
        /// progenitor's own `Client` methods for these operations encode ids
        /// with `progenitor_client::encode_path`, which leaves `\`, `.` and
        /// `..` alone: they have the same flaw, so the hand-written layer must
        /// run each operation's `check_ids` (or [`check`](path_id::check)) on every id before
        /// calling them.
        pub mod path_id {
            /// How many characters of a refused id an [`InvalidPathId`]
            /// quotes: an id can be arbitrarily long, an error message should
            /// not be.
            pub const MAX_QUOTED_CHARS: usize = 32;

            /// An id refused as a path segment: which parameter, why, and at
            /// most [`MAX_QUOTED_CHARS`] characters of the id.
            #[derive(Debug, Clone, PartialEq, Eq)]
            pub struct InvalidPathId {
                parameter: &'static str,
                reason: &'static str,
                quoted: String,
            }

            impl InvalidPathId {
                /// The path parameter, as the spec names it (`userId`).
                pub fn parameter(&self) -> &'static str {
                    self.parameter
                }

                /// Why the id was refused.
                pub fn reason(&self) -> &'static str {
                    self.reason
                }
            }

            impl ::std::fmt::Display for InvalidPathId {
                fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                    write!(
                        f,
                        "path parameter `{}` {}: {}",
                        self.parameter, self.reason, self.quoted
                    )
                }
            }

            impl ::std::error::Error for InvalidPathId {}

            /// Refuses an id that percent-encoding cannot keep in its
            /// segment: the empty id, `.` and `..` (dot segments), and any id
            /// holding `\`, which the URL parser reads as `/` and which
            /// progenitor's `encode_path` does not encode. Every other id
            /// stays in its segment once encoded by [`encode`], or by
            /// `encode_path`.
            pub fn check(parameter: &'static str, id: &str) -> Result<(), InvalidPathId> {
                let reason = match id {
                    "" => "is empty",
                    "." | ".." => "is a dot segment, which URL parsers resolve",
                    _ if id.contains('\\') => "holds a `\\`, which URL parsers read as `/`",
                    _ => return Ok(()),
                };
                let quoted = match id.char_indices().nth(MAX_QUOTED_CHARS) {
                    None => format!("{id:?}"),
                    Some((end, _)) => format!("{:?}… ({} bytes)", &id[..end], id.len()),
                };
                Err(InvalidPathId {
                    parameter,
                    reason,
                    quoted,
                })
            }

            /// Percent-encodes every byte of `id` but RFC 3986's unreserved
            /// characters (`A`–`Z`, `a`–`z`, `0`–`9`, `-`, `.`, `_`, `~`):
            /// `/`, `\`, `%`, `?`, `#`, spaces, controls and non-ASCII are all
            /// encoded, so a literal `%2e` becomes `%252e`, never a dot. It
            /// does not refuse `.` or `..`: [`check`] does.
            pub fn encode(id: &str) -> String {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                let mut out = String::with_capacity(id.len());
                for &byte in id.as_bytes() {
                    if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
                        out.push(char::from(byte));
                    } else {
                        out.push('%');
                        out.push(char::from(HEX[usize::from(byte >> 4)]));
                        out.push(char::from(HEX[usize::from(byte & 0x0f)]));
                    }
                }
                out
            }
        }
    }
}

/// `SCOPE`, from the operation's `x-medium-scope`: required of every REST
/// operation, absent from the OAuth spec's.
fn scope(op: &Op<'_>, flavor: Flavor) -> Result<TokenStream, CodegenError> {
    let pointer = format!("{}/{SCOPE_EXTENSION}", op.pointer);
    let scope = match op.op.extensions.get(SCOPE_EXTENSION) {
        None if flavor == Flavor::OAuth => return Ok(quote!()),
        None => {
            return Err(spec_error(
                pointer,
                "missing: every REST operation names the one scope its token needs",
            ));
        }
        Some(serde_json::Value::String(scope))
            if !scope.is_empty() && !scope.contains(|c: char| c.is_whitespace() || c == ',') =>
        {
            scope
        }
        Some(_) => {
            return Err(spec_error(
                pointer,
                "must be one scope's wire name, such as `basicProfile`",
            ));
        }
    };
    Ok(quote! {
        /// The OAuth scope the access token must carry for this call, by its
        /// wire name (the operation's `x-medium-scope`). Plain text, so that
        /// this crate needs no scope type of its own.
        pub const SCOPE: &str = #scope;
    })
}

/// One part of a multipart request body.
struct Part<'a> {
    name: &'a str,
    /// JSON pointer of the part's schema.
    pointer: String,
    description: Option<&'a str>,
    content_types: Vec<String>,
}

/// The content type OpenAPI 3.0 gives a multipart part that has no
/// `contentType` in the media type's `encoding`.
fn default_part_type(schema: &Schema) -> Option<&'static str> {
    match &schema.schema_kind {
        SchemaKind::Type(Type::String(s))
            if s.format == VariantOrUnknownOrEmpty::Item(StringFormat::Binary) =>
        {
            Some("application/octet-stream")
        }
        SchemaKind::Type(
            Type::String(_) | Type::Number(_) | Type::Integer(_) | Type::Boolean(_),
        ) => Some("text/plain"),
        SchemaKind::Type(Type::Object(_)) => Some("application/json"),
        SchemaKind::Type(Type::Array(array)) => match &array.items {
            Some(ReferenceOr::Item(items)) => default_part_type(items),
            _ => None,
        },
        _ => None,
    }
}

/// The parts of the operation's `multipart/form-data` body, if it has one,
/// in the spec's order.
fn multipart_parts<'a>(op: &'a Op<'_>) -> Result<Option<Vec<Part<'a>>>, CodegenError> {
    let Some(ReferenceOr::Item(body)) = &op.op.request_body else {
        return Ok(None);
    };
    let Some((media_type, media)) = body.content.iter().find(|(media_type, _)| {
        let essence = media_type.split(';').next().unwrap_or_default().trim();
        essence.eq_ignore_ascii_case(MULTIPART)
    }) else {
        return Ok(None);
    };
    let pointer = format!("{}/requestBody/content/{}", op.pointer, escape(media_type));
    let MediaType {
        schema:
            Some(ReferenceOr::Item(Schema {
                schema_kind: SchemaKind::Type(Type::Object(object)),
                ..
            })),
        encoding,
        ..
    } = media
    else {
        return Err(spec_error(
            format!("{pointer}/schema"),
            "a multipart body must be an inline object schema",
        ));
    };
    if object.properties.is_empty() {
        return Err(spec_error(
            format!("{pointer}/schema/properties"),
            "a multipart body must declare its parts as properties",
        ));
    }
    if let Some(name) = encoding
        .keys()
        .find(|name| !object.properties.contains_key(*name))
    {
        return Err(spec_error(
            format!("{pointer}/encoding/{}", escape(name)),
            "names no part of the schema",
        ));
    }
    let mut parts = Vec::new();
    for (name, schema) in &object.properties {
        let content_types: Vec<String> =
            match encoding.get(name).and_then(|e| e.content_type.as_deref()) {
                Some(list) => list
                    .split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(str::to_owned)
                    .collect(),
                None => match schema {
                    ReferenceOr::Item(schema) => default_part_type(schema)
                        .map(|t| vec![t.to_owned()])
                        .unwrap_or_default(),
                    ReferenceOr::Reference { .. } => Vec::new(),
                },
            };
        if content_types.is_empty() {
            return Err(spec_error(
                format!("{pointer}/encoding/{}/contentType", escape(name)),
                "no content type for this part: list them in its encoding, \
                 or give the part an inline schema that has a default one",
            ));
        }
        let description = match schema {
            ReferenceOr::Item(schema) => schema.schema_data.description.as_deref(),
            ReferenceOr::Reference { .. } => None,
        };
        parts.push(Part {
            name,
            pointer: format!("{pointer}/schema/properties/{}", escape(name)),
            description,
            content_types,
        });
    }
    Ok(Some(parts))
}

/// `CONTENT_TYPE`, the part names and each part's content types for a
/// multipart body, which progenitor cannot describe.
fn multipart(op: &Op<'_>) -> Result<TokenStream, CodegenError> {
    let Some(parts) = multipart_parts(op)? else {
        return Ok(quote!());
    };
    let names = parts.iter().map(|part| part.name);
    let uppers = idents(
        parts.iter().map(|part| (part.name, part.pointer.clone())),
        upper_snake,
        "multipart part",
    )?;
    let mut name_consts = Vec::new();
    let mut type_consts = Vec::new();
    for (part, upper) in parts.iter().zip(uppers) {
        let name = part.name;
        let title = format!(" The `{name}` part.");
        let description = doc_of(part.description);
        name_consts.push(quote! {
            #[doc = #title]
            #[doc = ""]
            #description
            pub const #upper: &str = #name;
        });
        let doc = format!(" Content types the `{name}` part may carry.");
        let types = &part.content_types;
        type_consts.push(quote! { #[doc = #doc] pub const #upper: &[&str] = &[#(#types),*]; });
    }
    Ok(quote! {
        /// Media type of the request body. The request's `Content-Type` adds
        /// the boundary between the parts, which only its writer knows.
        pub const CONTENT_TYPE: &str = #MULTIPART;
        /// Names of the parts of the multipart body, in the spec's order.
        pub const MULTIPART_FIELDS: &[&str] = &[#(#names),*];
        /// Each part's name, as the spec spells it.
        pub mod part {
            #(#name_consts)*
        }
        /// The content types each part may carry: its `contentType` in the
        /// spec's `encoding`, or OpenAPI's default for its schema.
        pub mod part_content_types {
            #(#type_consts)*
        }
    })
}

/// The server every operation shares: the REST API's paths are all
/// relative to one base.
fn one_server<'a>(ops: &[Op<'a>]) -> Result<&'a str, CodegenError> {
    let first = ops
        .first()
        .ok_or_else(|| spec_error("/paths".into(), "the spec has no operation"))?;
    match ops.iter().find(|op| op.server != first.server) {
        Some(other) => Err(spec_error(
            other.pointer.clone(),
            format!(
                "served from {}, while `{}` is served from {}: every REST operation \
                 must share one server",
                other.server, first.id, first.server
            ),
        )),
        None => Ok(first.server),
    }
}

pub(crate) fn generate(api: &OpenAPI, flavor: Flavor) -> Result<TokenStream, CodegenError> {
    let ops = operations(api)?;
    let named_servers = match flavor {
        Flavor::OAuth => {
            let find = |id: &str| {
                ops.iter()
                    .find(|op| op.id == id)
                    .ok_or_else(|| spec_error("/paths".into(), format!("no operation `{id}`")))
            };
            let authorization_server = find(AUTHORIZE_OPERATION)?.server;
            let api_server = find(TOKEN_OPERATION)?.server;
            quote! {
                /// Where the browser is sent to authorize (`authorizeUser`).
                pub const AUTHORIZATION_SERVER: &str = #authorization_server;
                /// Where token requests go (`exchangeAuthorizationCode`).
                pub const API_SERVER: &str = #api_server;
            }
        }
        Flavor::Resource => {
            let api_server = one_server(&ops)?;
            quote! {
                /// Where every call goes: all the spec's operations share
                /// this server.
                pub const API_SERVER: &str = #api_server;
            }
        }
    };

    let server_list = api.servers.iter().map(|s| {
        let url = &s.url;
        let description = s.description.as_deref().unwrap_or_default();
        quote!((#url, #description))
    });
    let server_count = api.servers.len();

    let module_idents = idents(
        ops.iter()
            .map(|op| (op.id, format!("{}/operationId", op.pointer))),
        snake,
        "operationId",
    )?;
    let mut modules = Vec::new();
    let mut templated = false;
    for (op, module) in ops.iter().zip(module_idents) {
        templated |= op.path.contains('{');
        let (server, id) = (op.server, op.id);
        let method = op.method.to_ascii_uppercase();
        let doc = format!(" `{method} {}`: the `{id}` operation.", op.path);
        let summary = doc_of(op.op.summary.as_deref());
        let unsent = crate::extras_only_body(op.op).map(|media_type| {
            let note = format!(
                " progenitor {} cannot send a `{media_type}` body, so the generated \
                 `Client` has no method for this operation; a hand-written request \
                 builds it from these facts.",
                crate::PROGENITOR_VERSION
            );
            // The summary, when there is one, needs a blank line before the note.
            let gap = op.op.summary.is_some().then(|| quote!(#[doc = ""]));
            quote!(#gap #[doc = #note])
        });
        let path = path_items(op)?;
        let fields = form_fields(op)?;
        let form = (!fields.is_empty()).then(|| {
            quote! {
                /// Fields of the form-urlencoded request body, in the spec's order.
                pub const FORM_FIELDS: &[&str] = &[#(#fields),*];
            }
        });
        let query = if flavor == Flavor::OAuth && op.id == AUTHORIZE_OPERATION {
            authorize_query(op)?
        } else {
            quote!()
        };
        let scope = scope(op, flavor)?;
        let multipart = multipart(op)?;
        modules.push(quote! {
            #[doc = #doc]
            #[doc = ""]
            #summary
            #unsent
            pub mod #module {
                /// Operation id in the spec.
                pub const OPERATION_ID: &str = #id;
                /// HTTP method.
                pub const METHOD: &str = #method;
                #path
                /// The server this operation is served from.
                pub const SERVER: &str = #server;
                #form
                #query
                #scope
                #multipart
            }
        });
    }

    let operations_doc = match flavor {
        Flavor::OAuth => quote! {
            /// Facts about each operation of the spec: method, path, server, form
            /// fields, and for the browser redirect its query.
        },
        Flavor::Resource => quote! {
            /// Facts about each operation of the spec: method, path (a builder
            /// for a templated one), server, the scope its token needs, and for
            /// a multipart body its parts.
        },
    };
    let path_id = templated.then(path_id_module);
    Ok(quote! {
        /// The servers the spec declares. progenitor ignores `servers`, so these
        /// are generated separately; no other code spells Medium's URLs.
        pub mod servers {
            #named_servers
            /// Every server of the spec, as `(url, description)`.
            pub const ALL: [(&str, &str); #server_count] = [#(#server_list),*];
        }
        #operations_doc
        pub mod operations {
            #(#modules)*
        }
        #path_id
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_part_without_an_encoding_gets_openapi_s_default_content_type() {
        let part = |yaml: &str| {
            let schema: Schema = serde_yaml::from_str(yaml).unwrap();
            default_part_type(&schema)
        };
        assert_eq!(
            part("{type: string, format: binary}"),
            Some("application/octet-stream")
        );
        assert_eq!(part("{type: string}"), Some("text/plain"));
        assert_eq!(part("{type: string, format: date}"), Some("text/plain"));
        assert_eq!(part("{type: integer}"), Some("text/plain"));
        assert_eq!(part("{type: object}"), Some("application/json"));
        let binaries = "{type: array, items: {type: string, format: binary}}";
        assert_eq!(part(binaries), Some("application/octet-stream"));
        assert_eq!(
            part("{type: array, items: {type: boolean}}"),
            Some("text/plain")
        );
    }

    /// The extras of a small OpenAPI 3.0 document, as formatted Rust.
    fn extras(yaml: &str, flavor: Flavor) -> Result<String, CodegenError> {
        let api: OpenAPI = serde_yaml::from_str(yaml).unwrap();
        let tokens = generate(&api, flavor)?;
        Ok(prettyplease::unparse(&syn::parse2(tokens).unwrap()))
    }

    const TWO_IDS: &str = "openapi: 3.0.3
info: {title: t, version: '1'}
servers: [{url: 'https://example.com/v1'}]
paths:
  /a/{firstId}/b/{secondId}:
    parameters:
      - {name: secondId, in: path, required: true, schema: {type: string}}
    post:
      operationId: upload_pair
      x-medium-scope: publishPost
      parameters:
        - {name: firstId, in: path, required: true, description: The first id., schema: {type: string}}
      requestBody:
        content:
          multipart/form-data:
            schema:
              type: object
              properties:
                file: {type: string, format: binary}
                caption: {type: string}
                sizes: {type: array, items: {type: integer}}
                meta: {type: object}
            encoding:
              caption: {contentType: 'text/plain, text/markdown'}
      responses: {'201': {description: ok}}
";

    #[test]
    fn placeholders_of_path_templates() {
        assert_eq!(placeholders("/me"), Ok(vec![]));
        assert_eq!(placeholders("/a/{x}/b/{yId}.json"), Ok(vec!["x", "yId"]));
        for bad in ["/a/{x", "/a/x}", "/a/{}", "/a/{x{y}}", "/{x}/{x}"] {
            assert!(placeholders(bad).is_err(), "{bad}");
        }
    }

    /// A builder takes one argument per placeholder, in the path's order,
    /// from the operation's parameters or the path item's, checks each under
    /// its spec name and encodes each with `path_id::encode`, never with
    /// progenitor's `encode_path`.
    #[test]
    fn a_templated_path_gets_a_builder_that_checks_and_encodes_every_id() {
        let out = extras(TWO_IDS, Flavor::Resource).unwrap();
        assert!(
            out.contains("pub const PATH_TEMPLATE: &str = \"/a/{firstId}/b/{secondId}\";"),
            "{out}"
        );
        assert!(!out.contains("pub const PATH:"), "{out}");
        let compact: String = out.split_whitespace().collect();
        for expected in [
            "pubfncheck_ids(first_id:&str,second_id:&str,)->Result<(),super::super::path_id::InvalidPathId>{\
             super::super::path_id::check(\"firstId\",first_id)?;\
             super::super::path_id::check(\"secondId\",second_id)?;Ok(())}",
            "pubfnpath(first_id:&str,second_id:&str,)->Result<String,super::super::path_id::InvalidPathId>{\
             check_ids(first_id,second_id)?;\
             Ok(format!(\"/a/{}/b/{}\",super::super::path_id::encode(first_id),\
             super::super::path_id::encode(second_id)),",
            "pubmodpath_id{",
        ] {
            assert!(compact.contains(expected), "{expected}\n{out}");
        }
        assert!(!out.contains("encode_path("), "{out}");
        assert!(out.contains("/// - `first_id`: The first id."), "{out}");
        assert!(
            out.contains("/// - `second_id`: the `secondId` segment."),
            "{out}"
        );
    }

    /// `path_id` comes with templated paths only, and only an operation
    /// progenitor gets a method for is warned about that method.
    #[test]
    fn the_path_id_module_and_the_client_method_warning() {
        let out = extras(TWO_IDS, Flavor::Resource).unwrap();
        assert_eq!(out.matches("pub mod path_id {").count(), 1, "{out}");
        assert!(
            !out.contains("Call it before this operation's method"),
            "a multipart upload has no Client method: {out}"
        );
        let json = TWO_IDS.replace(
            "          multipart/form-data:\n            schema:\n              type: object\n",
            "          application/json:\n            schema:\n              type: object\n",
        );
        let json = json.replace("            encoding:\n              caption: {contentType: 'text/plain, text/markdown'}\n", "");
        let out = extras(&json, Flavor::Resource).unwrap();
        assert!(
            out.contains("Call it before this operation's method"),
            "{out}"
        );

        let fixed = "openapi: 3.0.3
info: {title: t, version: '1'}
servers: [{url: 'https://example.com/v1'}]
paths:
  /me:
    get:
      operationId: me
      x-medium-scope: basicProfile
      responses: {'200': {description: ok}}
";
        let out = extras(fixed, Flavor::Resource).unwrap();
        assert!(!out.contains("path_id"), "{out}");
    }

    #[test]
    fn a_placeholder_without_its_path_parameter_is_refused() {
        let spec = TWO_IDS.replace(
            "    parameters:\n      - {name: secondId, in: path, required: true, schema: {type: string}}\n",
            "",
        );
        let e = extras(&spec, Flavor::Resource).unwrap_err().to_string();
        assert!(
            e.starts_with("at /paths/~1a~1{firstId}~1b~1{secondId}/post/parameters:"),
            "{e}"
        );
        assert!(e.contains("{secondId}"), "{e}");
    }

    /// Parts without an encoding get OpenAPI's default content type.
    #[test]
    fn multipart_parts_and_their_content_types() {
        let out = extras(TWO_IDS, Flavor::Resource).unwrap();
        for fact in [
            "pub const CONTENT_TYPE: &str = \"multipart/form-data\";",
            "pub const MULTIPART_FIELDS: &[&str] = &[\"file\", \"caption\", \"sizes\", \"meta\"];",
            "pub const FILE: &str = \"file\";",
            "pub const FILE: &[&str] = &[\"application/octet-stream\"];",
            "pub const CAPTION: &[&str] = &[\"text/plain\", \"text/markdown\"];",
            "pub const SIZES: &[&str] = &[\"text/plain\"];",
            "pub const META: &[&str] = &[\"application/json\"];",
            "pub const SCOPE: &str = \"publishPost\";",
        ] {
            assert!(out.contains(fact), "{fact}\n{out}");
        }
    }

    #[test]
    fn an_encoding_for_no_part_is_refused() {
        let spec = TWO_IDS.replace(
            "              caption: {contentType",
            "              captoin: {contentType",
        );
        let e = extras(&spec, Flavor::Resource).unwrap_err().to_string();
        assert!(
            e.contains("multipart~1form-data/encoding/captoin: names no part"),
            "{e}"
        );
    }

    #[test]
    fn a_rest_operation_without_a_scope_is_refused() {
        let spec = TWO_IDS.replace("      x-medium-scope: publishPost\n", "");
        let e = extras(&spec, Flavor::Resource).unwrap_err().to_string();
        assert!(
            e.starts_with("at /paths/~1a~1{firstId}~1b~1{secondId}/post/x-medium-scope: missing"),
            "{e}"
        );
    }

    #[test]
    fn resource_operations_must_share_one_server() {
        let spec = format!(
            "{TWO_IDS}  /other:
    get:
      operationId: other
      x-medium-scope: basicProfile
      servers: [{{url: 'https://elsewhere.example.com'}}]
      responses: {{'200': {{description: ok}}}}
"
        );
        let e = extras(&spec, Flavor::Resource).unwrap_err().to_string();
        assert!(
            e.starts_with("at /paths/~1other/get: served from https://elsewhere"),
            "{e}"
        );
    }

    /// Review finding: a name that is no identifier once cased panicked in
    /// `format_ident!`. Each kind of name is now a spec error at its
    /// pointer: parts, path parameters, operation ids, authorize parameters.
    #[test]
    fn names_that_give_no_rust_identifier_are_refused() {
        let cases = [
            (
                TWO_IDS
                    .replace("                caption:", "                2x:")
                    .replace("              caption: {", "              2x: {"),
                "at /paths/~1a~1{firstId}~1b~1{secondId}/post/requestBody/content/\
                 multipart~1form-data/schema/properties/2x: the multipart part `2x` becomes `2X`",
            ),
            (
                TWO_IDS.replace("                meta:", "                é:"),
                "at /paths/~1a~1{firstId}~1b~1{secondId}/post/requestBody/content/\
                 multipart~1form-data/schema/properties/é: the multipart part `é` becomes `_`",
            ),
            (
                TWO_IDS
                    .replace("{firstId}", "{type}")
                    .replace("name: firstId", "name: type"),
                "at /paths/~1a~1{type}~1b~1{secondId}: the path parameter `type` becomes `type`",
            ),
            (
                TWO_IDS.replace("operationId: upload_pair", "operationId: 1st"),
                "at /paths/~1a~1{firstId}~1b~1{secondId}/post/operationId: the operationId `1st` \
                 becomes `1st`",
            ),
            (
                TWO_IDS.replace("operationId: upload_pair", "operationId: self"),
                "at /paths/~1a~1{firstId}~1b~1{secondId}/post/operationId: the operationId `self`",
            ),
        ];
        for (spec, expected) in cases {
            let e = extras(&spec, Flavor::Resource).unwrap_err().to_string();
            assert!(e.starts_with(expected), "{expected}\n{e}");
            assert!(e.contains("which is not an identifier"), "{e}");
        }
    }

    /// Two names that give one identifier would be two items of one name.
    #[test]
    fn names_that_collide_once_cased_are_refused() {
        let cases = [
            (
                TWO_IDS.replace("                meta:", "                Caption:"),
                "at /paths/~1a~1{firstId}~1b~1{secondId}/post/requestBody/content/\
                 multipart~1form-data/schema/properties/Caption: the multipart part `Caption` \
                 becomes `CAPTION` in Rust, as `caption` does",
            ),
            (
                TWO_IDS
                    .replace("{secondId}", "{first_id}")
                    .replace("name: secondId", "name: first_id"),
                "at /paths/~1a~1{firstId}~1b~1{first_id}: the path parameter `first_id` becomes \
                 `first_id` in Rust, as `firstId` does",
            ),
            (
                format!(
                    "{TWO_IDS}  /other:
    get:
      operationId: uploadPair
      x-medium-scope: basicProfile
      responses: {{'200': {{description: ok}}}}
"
                ),
                "at /paths/~1other/get/operationId: the operationId `uploadPair` becomes \
                 `upload_pair` in Rust, as `upload_pair` does",
            ),
        ];
        for (spec, expected) in cases {
            let e = extras(&spec, Flavor::Resource).unwrap_err().to_string();
            assert_eq!(e, expected);
        }
    }

    /// The authorize redirect's parameters become constants and fields.
    #[test]
    fn authorize_parameters_must_give_distinct_identifiers() {
        let spec = |names: [&str; 2]| {
            format!(
                "openapi: 3.0.3
info: {{title: t, version: '1'}}
servers: [{{url: 'https://example.com'}}]
paths:
  /authorize:
    get:
      operationId: authorizeUser
      parameters:
        - {{name: {}, in: query, required: true, schema: {{type: string}}}}
        - {{name: {}, in: query, required: true, schema: {{type: string}}}}
      responses: {{'302': {{description: ok}}}}
  /tokens:
    post:
      operationId: exchangeAuthorizationCode
      responses: {{'201': {{description: ok}}}}
",
                names[0], names[1]
            )
        };
        let out = extras(&spec(["client_id", "state"]), Flavor::OAuth).unwrap();
        assert!(out.contains("pub client_id: &'a str,"), "{out}");
        let e = extras(&spec(["client_id", "clientId"]), Flavor::OAuth)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "at /paths/~1authorize/get/parameters/1/name: the query parameter `clientId` \
             becomes `CLIENT_ID` in Rust, as `client_id` does"
        );
        let e = extras(&spec(["client_id", "type"]), Flavor::OAuth)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(
                "at /paths/~1authorize/get/parameters/1/name: the query parameter `type` \
                 becomes `type` in Rust, which is not an identifier"
            ),
            "{e}"
        );
    }

    #[test]
    fn snake_case_of_operation_ids() {
        assert_eq!(snake("authorizeUser"), "authorize_user");
        assert_eq!(snake("client_id"), "client_id");
        assert_eq!(snake("refreshAccessToken"), "refresh_access_token");
    }
}
