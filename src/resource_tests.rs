//! The generated REST API client against `../shared/reference/medium-resource-api.md`:
//! its bodies deserialize into the generated types, and the generated facts
//! (method, path, scope, multipart part) are the reference's.

use serde_json::json;

use crate::resource::path_id::{self, InvalidPathId};
use crate::resource::{operations, types};

/// progenitor's own `new` would panic here: reqwest has no provider.
#[cfg(any(feature = "ring", feature = "aws-lc-rs"))]
#[test]
fn the_generated_resource_client_new_does_not_panic() {
    use crate::resource::ClientInfo;
    let client = crate::resource::Client::new(crate::resource::servers::API_SERVER);
    assert_eq!(client.baseurl(), "https://api.medium.com/v1");
}

#[test]
fn every_operation_has_the_references_method_path_and_scope() {
    use operations::*;
    let fixed = [
        (
            get_current_user::METHOD,
            get_current_user::PATH,
            get_current_user::SCOPE,
        ),
        (
            upload_image::METHOD,
            upload_image::PATH,
            upload_image::SCOPE,
        ),
    ];
    assert_eq!(
        fixed,
        [
            ("GET", "/me", "basicProfile"),
            ("POST", "/images", "uploadImage")
        ]
    );
    let templated = [
        (
            list_user_publications::METHOD,
            list_user_publications::PATH_TEMPLATE,
            list_user_publications::SCOPE,
        ),
        (
            list_publication_contributors::METHOD,
            list_publication_contributors::PATH_TEMPLATE,
            list_publication_contributors::SCOPE,
        ),
        (
            create_user_post::METHOD,
            create_user_post::PATH_TEMPLATE,
            create_user_post::SCOPE,
        ),
        (
            create_publication_post::METHOD,
            create_publication_post::PATH_TEMPLATE,
            create_publication_post::SCOPE,
        ),
    ];
    assert_eq!(
        templated,
        [
            ("GET", "/users/{userId}/publications", "listPublications"),
            (
                "GET",
                "/publications/{publicationId}/contributors",
                "listPublications"
            ),
            ("POST", "/users/{authorId}/posts", "publishPost"),
            ("POST", "/publications/{publicationId}/posts", "publishPost"),
        ]
    );
}

/// Each builder fills in its own template: a plain id gives the template
/// with the id in place.
#[test]
fn path_builders_fill_in_their_templates() {
    let id = "5303d74c64f66366f00cb9b2a94f3251bf5";
    for (path, template, parameter) in BUILDERS {
        assert_eq!(
            path(id).unwrap(),
            template.replace(&format!("{{{parameter}}}"), id)
        );
    }
    assert_eq!(
        operations::list_user_publications::path(id).unwrap(),
        "/users/5303d74c64f66366f00cb9b2a94f3251bf5/publications"
    );
}

type Builder = fn(&str) -> Result<String, InvalidPathId>;

/// Every templated operation: its path builder, its template and the spec
/// name of its one path parameter.
const BUILDERS: [(Builder, &str, &str); 4] = [
    (
        operations::list_user_publications::path,
        operations::list_user_publications::PATH_TEMPLATE,
        "userId",
    ),
    (
        operations::list_publication_contributors::path,
        operations::list_publication_contributors::PATH_TEMPLATE,
        "publicationId",
    ),
    (
        operations::create_user_post::path,
        operations::create_user_post::PATH_TEMPLATE,
        "authorId",
    ),
    (
        operations::create_publication_post::path,
        operations::create_publication_post::PATH_TEMPLATE,
        "publicationId",
    ),
];

/// Ids that try to leave their segment: dot segments, plain and encoded,
/// `\` (read as `/` by the URL parser), separators, query and fragment
/// starters, percent signs, spaces, controls (tab and newlines are dropped
/// by the URL parser), and non-ASCII.
const HOSTILE_IDS: &[&str] = &[
    "",
    ".",
    "..",
    "...",
    "..\\x",
    "..\\publications\\PUB",
    "..\\..\\..\\x",
    "x\\..",
    "a\\b",
    "\\",
    "%2e%2e",
    "%2E",
    "%2e",
    ".%2e",
    "%2e.",
    "%2F",
    "%",
    "%%41",
    "a/b",
    "/",
    "../x",
    "a/../b?c=%2F d#e",
    "?x",
    "#x",
    "x?",
    ";x",
    ":x",
    "@x",
    "[::1]",
    "~user",
    " ",
    " .. ",
    "a b",
    "\0",
    "\t..",
    ".\n.",
    "\r",
    "\u{7f}",
    "\u{1b}[0m",
    "é",
    "日本",
    "\u{202e}",
    "\u{feff}..",
    "．．",
];

/// The URL reqwest requests for `path`: `IntoUrl for String` is
/// `Url::parse`, with the WHATWG rules that read `\` as `/` and resolve dot
/// segments.
fn sent(path: &str) -> reqwest::Url {
    reqwest::Url::parse(&format!("{}{path}", crate::resource::servers::API_SERVER)).unwrap()
}

fn segments(url: &reqwest::Url) -> Vec<String> {
    url.path_segments().unwrap().map(str::to_owned).collect()
}

/// The segments the server's path and `template` give, with the
/// placeholder's index among them.
fn template_segments(template: &str, parameter: &str) -> (Vec<String>, usize) {
    let mut all = segments(&reqwest::Url::parse(crate::resource::servers::API_SERVER).unwrap());
    all.extend(
        template
            .trim_start_matches('/')
            .split('/')
            .map(str::to_owned),
    );
    let at = all
        .iter()
        .position(|s| *s == format!("{{{parameter}}}"))
        .unwrap();
    (all, at)
}

fn percent_decode(segment: &str) -> Vec<u8> {
    let bytes = segment.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

/// Whether an id must be refused: percent-encoding cannot keep it in its
/// segment.
fn refused(id: &str) -> bool {
    matches!(id, "" | "." | "..") || id.contains('\\')
}

/// Review finding: `encode_path` left `\` and dot segments alone, so once
/// reqwest parsed the URL an id left its segment. Now every builder either
/// refuses the id, naming its parameter, or gives a URL with exactly the
/// template's segments, the id alone in its own, encoded by `path_id::encode`
/// and decoding back to the id, with no query and no fragment.
#[test]
fn hostile_ids_stay_in_their_segment_or_are_refused() {
    for (path, template, parameter) in BUILDERS {
        let (mut expected, at) = template_segments(template, parameter);
        for &id in HOSTILE_IDS {
            let built = path(id);
            if refused(id) {
                let e = built.unwrap_err();
                assert_eq!(e.parameter(), parameter, "{id:?}");
                continue;
            }
            let built = built.unwrap_or_else(|e| panic!("{id:?} refused: {e}"));
            let url = sent(&built);
            expected[at] = path_id::encode(id);
            assert_eq!(segments(&url), expected, "{id:?} in {template}");
            assert_eq!(percent_decode(&expected[at]), id.as_bytes(), "{id:?}");
            assert_eq!(url.query(), None, "{id:?}");
            assert_eq!(url.fragment(), None, "{id:?}");
            assert_eq!(url.host_str(), Some("api.medium.com"), "{id:?}");
        }
    }
}

/// The review's own cases, which reached another path or left `/v1`.
#[test]
fn the_reviews_escaping_ids_are_refused() {
    use operations::*;
    for (built, parameter) in [
        (create_user_post::path("..\\publications\\PUB"), "authorId"),
        (list_user_publications::path("..\\..\\..\\x"), "userId"),
        (create_publication_post::path(".."), "publicationId"),
        (list_user_publications::path("."), "userId"),
        (list_user_publications::path(""), "userId"),
    ] {
        assert_eq!(built.unwrap_err().parameter(), parameter);
    }
}

/// progenitor's `Client` methods build their URLs with
/// `progenitor_client::encode_path`, which leaves `\` and dots alone: an
/// unchecked id does leave its segment. An id `check_ids` accepts stays in
/// its segment under that encoding too, which is what the hand-written layer
/// relies on when it checks ids before calling those methods.
#[test]
fn ids_check_ids_accepts_stay_in_their_segment_under_progenitors_encoding() {
    use operations::create_user_post;
    let progenitors = |id: &str| format!("/users/{}/posts", progenitor_client::encode_path(id));
    assert_eq!(
        sent(&progenitors("..\\publications\\PUB")).path(),
        "/v1/publications/PUB/posts",
        "encode_path still leaves `\\` and `..`: the check stays needed"
    );
    let (mut expected, at) = template_segments(create_user_post::PATH_TEMPLATE, "authorId");
    for &id in HOSTILE_IDS {
        if create_user_post::check_ids(id).is_err() {
            assert!(refused(id), "{id:?}");
            continue;
        }
        assert!(!refused(id), "{id:?}");
        let url = sent(&progenitors(id));
        let got = segments(&url);
        assert_eq!(got.len(), expected.len(), "{id:?}: {url}");
        assert_eq!(percent_decode(&got[at]), id.as_bytes(), "{id:?}: {url}");
        expected[at].clone_from(&got[at]);
        assert_eq!(got, expected, "{id:?}: {url}");
        assert_eq!(url.query(), None, "{id:?}");
        assert_eq!(url.fragment(), None, "{id:?}");
    }
}

/// A refusal names the parameter and why, and quotes at most 32 characters
/// of the id, however long it is.
#[test]
fn a_refused_id_names_its_parameter_and_quotes_little_of_it() {
    use operations::*;
    let e = create_user_post::path("..").unwrap_err();
    assert_eq!(e.parameter(), "authorId");
    assert_eq!(
        e.to_string(),
        "path parameter `authorId` is a dot segment, which URL parsers resolve: \"..\""
    );
    assert_eq!(
        list_user_publications::path("").unwrap_err().to_string(),
        "path parameter `userId` is empty: \"\""
    );
    let huge = format!("{}\\", "x".repeat(1_000_000));
    let e = list_publication_contributors::check_ids(&huge).unwrap_err();
    assert_eq!(e.reason(), "holds a `\\`, which URL parsers read as `/`");
    assert_eq!(
        e.to_string(),
        format!(
            "path parameter `publicationId` holds a `\\`, which URL parsers read as `/`: \
             \"{}\"… (1000001 bytes)",
            "x".repeat(path_id::MAX_QUOTED_CHARS)
        )
    );
    let short = format!("{}\\", "x".repeat(path_id::MAX_QUOTED_CHARS - 1));
    assert!(
        path_id::check("p", &short)
            .unwrap_err()
            .to_string()
            .ends_with(&format!("{short:?}")),
        "an id of exactly the cap is quoted whole"
    );
    let e: Box<dyn std::error::Error> = Box::new(e);
    assert!(e.source().is_none());
}

/// Everything but RFC 3986's unreserved characters is encoded, byte by
/// byte, in upper-case hex.
#[test]
fn encode_leaves_only_unreserved_characters() {
    for byte in 0..=0x7f_u8 {
        let c = char::from(byte);
        let unreserved = c.is_ascii_alphanumeric() || "-._~".contains(c);
        let expected = if unreserved {
            c.to_string()
        } else {
            format!("%{byte:02X}")
        };
        assert_eq!(path_id::encode(&c.to_string()), expected, "{byte:#x}");
    }
    assert_eq!(path_id::encode("%2e"), "%252e");
    assert_eq!(path_id::encode("é/\\"), "%C3%A9%2F%5C");
    assert_eq!(path_id::encode("Ab9-._~"), "Ab9-._~");
}

#[test]
fn the_upload_names_its_part_and_the_four_image_types() {
    use operations::upload_image;
    assert_eq!(upload_image::CONTENT_TYPE, "multipart/form-data");
    assert_eq!(upload_image::MULTIPART_FIELDS, [upload_image::part::IMAGE]);
    assert_eq!(upload_image::part::IMAGE, "image");
    assert_eq!(
        upload_image::part_content_types::IMAGE,
        ["image/jpeg", "image/png", "image/gif", "image/tiff"]
    );
}

// The bodies below have the reference's fields for each object; their values
// follow the examples of Medium's API documentation.

#[test]
fn the_user_envelope_deserializes() {
    let body = json!({"data": {
        "id": "5303d74c64f66366f00cb9b2a94f3251bf5",
        "username": "majelbstoat",
        "name": "Jamie Talbot",
        "url": "https://medium.com/@majelbstoat",
        "imageUrl": "https://images.medium.com/0*fkfQiTzT7TlUGGyI.png"
    }});
    let user = serde_json::from_value::<types::UserEnvelope>(body)
        .unwrap()
        .data;
    assert_eq!(user.id, "5303d74c64f66366f00cb9b2a94f3251bf5");
    assert_eq!(user.username, "majelbstoat");
    assert_eq!(user.name, "Jamie Talbot");
    assert_eq!(user.url, "https://medium.com/@majelbstoat");
    assert_eq!(
        user.image_url,
        "https://images.medium.com/0*fkfQiTzT7TlUGGyI.png"
    );
}

#[test]
fn the_publications_envelope_deserializes_and_may_be_empty() {
    let body = json!({"data": [
        {
            "id": "b969ac62a46b",
            "name": "About Medium",
            "description": "What is this thing and how does it work?",
            "url": "https://medium.com/about",
            "imageUrl": "https://cdn-images-1.medium.com/fit/c/200/200/0*ae1jbP_od0W6EulE.jpeg"
        },
        {
            "id": "b45573563f5a",
            "name": "Developers",
            "description": "Medium’s Developer resources",
            "url": "https://medium.com/developers",
            "imageUrl": "https://cdn-images-1.medium.com/fit/c/200/200/1*ccokMT4VXmDDO1EoQQHkzg@2x.png"
        }
    ]});
    let publications = serde_json::from_value::<types::PublicationsEnvelope>(body)
        .unwrap()
        .data;
    assert_eq!(publications.len(), 2);
    assert_eq!(publications[0].id, "b969ac62a46b");
    assert_eq!(
        publications[0].description,
        "What is this thing and how does it work?"
    );
    assert_eq!(publications[1].name, "Developers");
    assert_eq!(publications[1].url, "https://medium.com/developers");
    assert!(
        publications[1]
            .image_url
            .ends_with("1*ccokMT4VXmDDO1EoQQHkzg@2x.png")
    );

    let none = serde_json::from_value::<types::PublicationsEnvelope>(json!({"data": []}));
    assert!(none.unwrap().data.is_empty());
}

#[test]
fn the_contributors_envelope_deserializes_both_roles() {
    let body = json!({"data": [
        {
            "publicationId": "b45573563f5a",
            "userId": "13a06af8f81849c64dafbce822cbafbfab7ed7cecf82135bca946807ea351290d",
            "role": "editor"
        },
        {
            "publicationId": "b45573563f5a",
            "userId": "8dfb9bd7b5c9e0fcf1c0f7a3d6a3a5e2f3f6a1c3d8e2f9a0b1c4d5e6f7a8b9c0d",
            "role": "writer"
        }
    ]});
    let contributors = serde_json::from_value::<types::ContributorsEnvelope>(body)
        .unwrap()
        .data;
    assert_eq!(contributors.len(), 2);
    assert_eq!(contributors[0].publication_id, "b45573563f5a");
    assert!(contributors[0].user_id.starts_with("13a06af8"));
    assert_eq!(contributors[0].role, types::ContributorRole::Editor);
    assert_eq!(contributors[1].role, types::ContributorRole::Writer);

    let unknown = json!({"data": [{"publicationId": "p", "userId": "u", "role": "owner"}]});
    assert!(serde_json::from_value::<types::ContributorsEnvelope>(unknown).is_err());
}

#[test]
fn the_post_envelope_deserializes_a_public_post() {
    let body = json!({"data": {
        "id": "e6f36a",
        "title": "Liverpool FC",
        "authorId": "5303d74c64f66366f00cb9b2a94f3251bf5",
        "tags": ["football", "sport", "Liverpool"],
        "url": "https://medium.com/@majelbstoat/liverpool-fc-e6f36a",
        "canonicalUrl": "http://jamietalbot.com/posts/liverpool-fc",
        "publishStatus": "public",
        "publishedAt": 1442286338435_i64,
        "license": "all-rights-reserved",
        "licenseUrl": "https://medium.com/policy/9db0094a1e0f"
    }});
    let post = serde_json::from_value::<types::PostEnvelope>(body)
        .unwrap()
        .data;
    assert_eq!(post.id, "e6f36a");
    assert_eq!(post.title, "Liverpool FC");
    assert_eq!(post.author_id, "5303d74c64f66366f00cb9b2a94f3251bf5");
    assert_eq!(post.tags, ["football", "sport", "Liverpool"]);
    assert_eq!(
        post.url,
        "https://medium.com/@majelbstoat/liverpool-fc-e6f36a"
    );
    assert_eq!(
        post.canonical_url.as_deref(),
        Some("http://jamietalbot.com/posts/liverpool-fc")
    );
    assert_eq!(post.publish_status, types::PublishStatus::Public);
    assert_eq!(post.published_at, Some(1442286338435));
    assert_eq!(post.license, types::License::AllRightsReserved);
    assert_eq!(post.license_url, "https://medium.com/policy/9db0094a1e0f");
    assert_eq!(post.publication_id, None);
}

/// A draft has no `publishedAt`, a post without a canonical URL no
/// `canonicalUrl`, and a post created in a publication a `publicationId`.
#[test]
fn the_post_envelope_deserializes_a_draft_in_a_publication() {
    let body = json!({"data": {
        "id": "55050649c95",
        "title": "Hard things in software development",
        "authorId": "5303d74c64f66366f00cb9b2a94f3251bf5",
        "tags": ["development", "design"],
        "url": "https://medium.com/programming-is-life/hard-things-in-software-development-55050649c95",
        "publishStatus": "draft",
        "license": "cc-40-by-nc-sa",
        "licenseUrl": "http://creativecommons.org/licenses/by-nc-sa/4.0/",
        "publicationId": "b45573563f5a"
    }});
    let post = serde_json::from_value::<types::PostEnvelope>(body)
        .unwrap()
        .data;
    assert_eq!(post.publish_status, types::PublishStatus::Draft);
    assert_eq!(post.published_at, None);
    assert_eq!(post.canonical_url, None);
    assert_eq!(post.license, types::License::Cc40ByNcSa);
    assert_eq!(post.publication_id.as_deref(), Some("b45573563f5a"));
}

#[test]
fn the_image_envelope_deserializes() {
    let body = json!({"data": {
        "url": "https://images.medium.com/0*fkfQiTzT7TlUGGyI.png",
        "md5": "fkfQiTzT7TlUGGyI"
    }});
    let image = serde_json::from_value::<types::ImageEnvelope>(body)
        .unwrap()
        .data;
    assert_eq!(
        image.url,
        "https://images.medium.com/0*fkfQiTzT7TlUGGyI.png"
    );
    assert_eq!(image.md5, "fkfQiTzT7TlUGGyI");
}

#[test]
fn the_error_body_deserializes() {
    let body = json!({"errors": [{"message": "Token was invalid.", "code": 6003}]});
    let error = serde_json::from_value::<types::Error>(body).unwrap();
    assert_eq!(error.errors.len(), 1);
    assert_eq!(
        error.errors[0].message.as_deref(),
        Some("Token was invalid.")
    );
    assert_eq!(error.errors[0].code, Some(6003));
}

/// The nine licenses and three statuses of the reference, by their wire
/// names, and Medium's defaults as the types' defaults.
#[test]
fn licenses_and_statuses_have_the_references_wire_names() {
    let licenses = [
        "all-rights-reserved",
        "cc-40-by",
        "cc-40-by-sa",
        "cc-40-by-nd",
        "cc-40-by-nc",
        "cc-40-by-nc-nd",
        "cc-40-by-nc-sa",
        "cc-40-zero",
        "public-domain",
    ];
    for name in licenses {
        let license: types::License = serde_json::from_value(json!(name)).unwrap();
        assert_eq!(serde_json::to_value(license).unwrap(), json!(name));
        assert_eq!(license.to_string(), name);
    }
    for name in ["public", "draft", "unlisted"] {
        let status: types::PublishStatus = serde_json::from_value(json!(name)).unwrap();
        assert_eq!(status.to_string(), name);
    }
    assert_eq!(types::License::default(), types::License::AllRightsReserved);
    assert_eq!(
        types::PublishStatus::default(),
        types::PublishStatus::Public
    );
}

/// Unset optional fields are left out, not sent as null or as Medium's
/// default: the server applies its own.
#[test]
fn a_post_request_sends_only_the_fields_it_was_given() {
    let request = types::CreatePostRequest {
        title: "Liverpool FC".into(),
        content_format: types::ContentFormat::Html,
        content: "<h1>Liverpool FC</h1><p>You’ll never walk alone.</p>".into(),
        tags: Vec::new(),
        canonical_url: None,
        publish_status: None,
        license: None,
        notify_followers: None,
    };
    assert_eq!(
        serde_json::to_value(&request).unwrap(),
        json!({
            "title": "Liverpool FC",
            "contentFormat": "html",
            "content": "<h1>Liverpool FC</h1><p>You’ll never walk alone.</p>"
        })
    );
    let full = types::CreatePostRequest {
        tags: vec!["football".into()],
        canonical_url: Some("http://jamietalbot.com/posts/liverpool-fc".into()),
        publish_status: Some(types::PublishStatus::Draft),
        license: Some(types::License::PublicDomain),
        notify_followers: Some(false),
        content_format: types::ContentFormat::Markdown,
        ..request
    };
    assert_eq!(
        serde_json::to_value(&full).unwrap(),
        json!({
            "title": "Liverpool FC",
            "contentFormat": "markdown",
            "content": "<h1>Liverpool FC</h1><p>You’ll never walk alone.</p>",
            "tags": ["football"],
            "canonicalUrl": "http://jamietalbot.com/posts/liverpool-fc",
            "publishStatus": "draft",
            "license": "public-domain",
            "notifyFollowers": false
        })
    );
}
