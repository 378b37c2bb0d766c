//! The OpenAPI 3 description of the API, generated from the handlers and types.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::api;
use crate::error::ErrorBody;
use crate::model::{Post, PostInput, PostPage};

#[derive(OpenApi)]
#[openapi(
    info(title = "Blog API", description = "Posts of one blog, served by the function and container variants alike."),
    paths(api::list_posts, api::get_post, api::create_post, api::replace_post, api::delete_post, api::healthz, api::readyz),
    components(schemas(Post, PostInput, PostPage, ErrorBody)),
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
