//! The OpenAPI 3 description of the API, generated from the handlers and types.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::api;
use crate::beacons::{Beacon, RegionTime, VariantName, VariantTime};
use crate::error::ErrorBody;
use crate::model::{Post, PostInput, PostPage};

#[derive(OpenApi)]
#[openapi(
    info(title = "Blog API", description = "Posts of one blog, served by the function and container variants alike."),
    paths(api::list_posts, api::get_post, api::create_post, api::replace_post, api::delete_post, api::healthz, api::readyz, api::beacon),
    components(schemas(Post, PostInput, PostPage, ErrorBody, Beacon, RegionTime, VariantTime, VariantName)),
    modifiers(&BearerAuth),
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document for a process that does (`true`) or does not require the write token: without
/// one, no operation names the bearer scheme or answers 401, since none can.
#[must_use]
pub fn document(token_required: bool) -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    if token_required {
        return doc;
    }
    if let Some(components) = doc.components.as_mut() {
        components.security_schemes.clear();
    }
    for item in doc.paths.paths.values_mut() {
        let operations = [&mut item.get, &mut item.post, &mut item.put, &mut item.delete];
        for operation in operations.into_iter().flatten() {
            operation.security = None;
            operation.responses.responses.remove("401");
        }
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_shapes_the_document_and_the_blank_rule_is_the_models() {
        let open = serde_json::to_value(document(false)).expect("json");
        let guarded = serde_json::to_value(document(true)).expect("json");
        assert!(open["paths"]["/blogs"]["post"].get("security").is_none());
        assert!(open["paths"]["/blogs"]["post"]["responses"].get("401").is_none());
        assert_eq!(guarded["paths"]["/blogs"]["post"]["security"][0]["bearer"], serde_json::json!([]));
        assert!(guarded["paths"]["/blogs/{id}"]["delete"]["responses"].get("401").is_some());
        for field in ["title", "author", "body"] {
            let pattern = &guarded["components"]["schemas"]["PostInput"]["properties"][field]["pattern"];
            assert_eq!(pattern, crate::model::NOT_BLANK, "{field}");
        }
    }
}
