//! The generated REST API client against `../shared/reference/medium-resource-api.md`:
//! its bodies deserialize into the generated types, and the generated facts
//! (method, path, scope, multipart part) are the reference's.

use serde_json::json;

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
    use operations::*;
    let id = "5303d74c64f66366f00cb9b2a94f3251bf5";
    let cases = [
        (
            list_user_publications::path(id),
            list_user_publications::PATH_TEMPLATE.replace("{userId}", id),
        ),
        (
            list_publication_contributors::path(id),
            list_publication_contributors::PATH_TEMPLATE.replace("{publicationId}", id),
        ),
        (
            create_user_post::path(id),
            create_user_post::PATH_TEMPLATE.replace("{authorId}", id),
        ),
        (
            create_publication_post::path(id),
            create_publication_post::PATH_TEMPLATE.replace("{publicationId}", id),
        ),
    ];
    for (built, expected) in cases {
        assert_eq!(built, expected);
    }
    assert_eq!(
        list_user_publications::path(id),
        "/users/5303d74c64f66366f00cb9b2a94f3251bf5/publications"
    );
}

/// An id is one path segment whatever it holds: no `/` reaches another
/// path, no `?` or `#` starts a query or fragment, no `%` decodes into
/// something else.
#[test]
fn path_builders_percent_encode_ids_as_one_segment() {
    use operations::*;
    let hostile = "a/../b?c=%2F d#e";
    let encoded = "a%2F..%2Fb%3Fc=%252F%20d%23e";
    assert_eq!(
        list_user_publications::path(hostile),
        format!("/users/{encoded}/publications")
    );
    assert_eq!(
        list_publication_contributors::path(hostile),
        format!("/publications/{encoded}/contributors")
    );
    assert_eq!(
        create_user_post::path(hostile),
        format!("/users/{encoded}/posts")
    );
    assert_eq!(
        create_publication_post::path(hostile),
        format!("/publications/{encoded}/posts")
    );
    assert_eq!(list_user_publications::path(""), "/users//publications");
    assert_eq!(
        list_user_publications::path("é"),
        "/users/%C3%A9/publications"
    );
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
