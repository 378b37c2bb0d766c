//! The HTTP API: routes, extractors that answer bad input with JSON errors, and the middleware stack.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, FromRequest, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use sha2::Digest as _;
use subtle::ConstantTimeEq;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa::IntoParams;

use crate::beacons::{Beacon, Beacons, Refusal};
use crate::config::Config;
use crate::error::{ApiError, ErrorBody, code_for_status, error_response};
use crate::model::{self, DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT, Post, PostInput, PostPage};
use crate::store::{Cursor, Edit, Store};

/// Everything a handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub config: Arc<Config>,
    /// Readers' beacons, when the configuration turns them on.
    pub beacons: Option<Arc<Beacons>>,
}

impl AppState {
    /// A state without beacons.
    #[must_use]
    pub fn new(store: Arc<dyn Store>, config: Arc<Config>) -> Self {
        Self { store, config, beacons: None }
    }
}

/// A JSON body whose rejections (wrong content type, malformed, too large, wrong shape) become
/// [`ApiError`]s instead of axum's plain-text answers.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct JsonBody<T>(pub T);

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Page size, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<usize>,
    /// The `next` cursor of the previous page: 48 URL-safe base64 characters, opaque. A cursor of
    /// that shape that this service did not make is refused with 400 `invalid_cursor`.
    #[param(pattern = "^[A-Za-z0-9_-]{48}$")]
    next: Option<String>,
}

type ApiResult<T> = Result<T, ApiError>;

/// `If-Match` as a parameter of the document: the `ETag` of the version the client last read.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)] // documents the header; the handler reads it from the HeaderMap
pub struct IfMatch {
    /// Act only if the post is still the version with this `ETag` (from a GET, POST or PUT), else
    /// 412 `precondition_failed`; `*` only needs the post to exist. Without it, the last write wins.
    #[param(rename = "If-Match")]
    if_match: Option<String>,
}

/// The post as the client last saw it, when the request is conditional (`If-Match`): 412 when the
/// post is already another version, 404 when it is gone.
async fn precondition(state: &AppState, id: &str, headers: &HeaderMap) -> ApiResult<Option<Post>> {
    let Some(wanted) = headers.get(header::IF_MATCH) else { return Ok(None) };
    let wanted = wanted
        .to_str()
        .map_err(|_| ApiError::BadRequest("invalid_header", "If-Match must be visible ASCII".to_owned()))?;
    let current = state.store.get(id).await?.ok_or(ApiError::NotFound)?;
    if !model::if_match(wanted, &model::etag(&current)) {
        return Err(ApiError::PreconditionFailed);
    }
    // `*` asks only that the post exists; a tag pins the version read just now.
    Ok((wanted.trim() != "*").then_some(current))
}

/// A post with its `ETag` header.
fn tagged(status: StatusCode, post: Post) -> ApiResult<Response> {
    let etag = HeaderValue::from_str(&model::etag(&post)).map_err(|e| ApiError::Store(e.to_string()))?;
    Ok((status, [(header::ETAG, etag)], Json(post)).into_response())
}

fn checked_id(id: &str) -> ApiResult<&str> {
    // An id that is not a UUID cannot name a post: answer 404 without asking the store.
    if model::is_valid_id(id) { Ok(id) } else { Err(ApiError::NotFound) }
}

/// List posts, newest first.
#[utoipa::path(get, path = "/blogs", params(ListParams), responses(
    (status = 200, body = PostPage), (status = 400, body = ErrorBody), (status = 408, body = ErrorBody),
    (status = 503, body = ErrorBody)))]
pub(crate) async fn list_posts(
    State(state): State<AppState>,
    query: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<PostPage>> {
    let Query(params) = query?;
    let limit = params.limit.unwrap_or(DEFAULT_PAGE_LIMIT);
    if !(1..=MAX_PAGE_LIMIT).contains(&limit) {
        return Err(ApiError::BadRequest("invalid_query", format!("limit must be between 1 and {MAX_PAGE_LIMIT}")));
    }
    let cursor = params.next.as_deref().map(Cursor::decode).transpose()?;
    Ok(Json(state.store.list(limit, cursor.as_ref()).await?))
}

/// One post, with its `ETag` (for conditional writes).
#[utoipa::path(get, path = "/blogs/{id}", params(("id" = String, Path, format = "uuid", description = "The post's id, a UUID")), responses(
    (status = 200, body = Post, headers(("ETag" = String))), (status = 404, body = ErrorBody),
    (status = 408, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub(crate) async fn get_post(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let view = state.store.get_view(checked_id(&id)?).await?.ok_or(ApiError::NotFound)?;
    let json = HeaderValue::from_static("application/json");
    Ok(([(header::CONTENT_TYPE, json), (header::ETAG, view.etag)], view.json).into_response())
}

/// Create a post; the server makes its id and timestamps.
#[utoipa::path(post, path = "/blogs", request_body = PostInput, security(("bearer" = [])), responses(
    (status = 201, body = Post, headers(("Location" = String), ("ETag" = String))),
    (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 408, body = ErrorBody),
    (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody),
    (status = 503, body = ErrorBody)))]
pub(crate) async fn create_post(
    State(state): State<AppState>,
    JsonBody(input): JsonBody<PostInput>,
) -> ApiResult<Response> {
    input.validate()?;
    let post = model::new_post(input);
    state.store.create(&post).await?;
    let location = HeaderValue::from_str(&format!("/blogs/{}", post.id)).map_err(|e| ApiError::Store(e.to_string()))?;
    let mut response = tagged(StatusCode::CREATED, post)?;
    response.headers_mut().insert(header::LOCATION, location);
    Ok(response)
}

/// Replace the title, author and body of an existing post (never creates one); with `If-Match`,
/// only if nobody changed it since the client read it.
#[utoipa::path(put, path = "/blogs/{id}", params(("id" = String, Path, format = "uuid", description = "The post's id, a UUID"), IfMatch), request_body = PostInput,
    security(("bearer" = [])), responses(
    (status = 200, body = Post, headers(("ETag" = String))), (status = 400, body = ErrorBody),
    (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 408, body = ErrorBody),
    (status = 412, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
    (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub(crate) async fn replace_post(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    JsonBody(input): JsonBody<PostInput>,
) -> ApiResult<Response> {
    let id = checked_id(&id)?;
    input.validate()?;
    let seen = precondition(&state, id, &headers).await?;
    let now = model::now_rfc3339();
    let edit = Edit { title: &input.title, author: &input.author, body: &input.body, updated_at: &now };
    tagged(StatusCode::OK, state.store.replace(id, &edit, seen.as_ref()).await?)
}

/// Delete a post; with `If-Match`, only if nobody changed it since the client read it.
#[utoipa::path(delete, path = "/blogs/{id}", params(("id" = String, Path, format = "uuid", description = "The post's id, a UUID"), IfMatch), security(("bearer" = [])),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
    (status = 404, body = ErrorBody), (status = 408, body = ErrorBody), (status = 412, body = ErrorBody),
    (status = 503, body = ErrorBody)))]
pub(crate) async fn delete_post(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    let id = checked_id(&id)?;
    let seen = precondition(&state, id, &headers).await?;
    state.store.delete(id, seen.as_ref()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The largest beacon body: seven regions and two variants fit in well under a kilobyte.
const BEACON_BYTES: usize = 4096;

/// A reader's page reports the round trips it measured to each candidate region (and to each
/// variant). Open to every reader, no token; added up without any detail of the reader, and
/// limited per process (429 beyond it).
#[utoipa::path(post, path = "/beacon", request_body = Beacon, responses(
    (status = 204, description = "Taken"), (status = 400, body = ErrorBody),
    (status = 404, body = ErrorBody, description = "This blog collects no readers' beacons"),
    (status = 408, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
    (status = 422, body = ErrorBody),
    (status = 429, body = ErrorBody, headers(("Retry-After" = String)))))]
pub(crate) async fn beacon(State(state): State<AppState>, JsonBody(beacon): JsonBody<Beacon>) -> ApiResult<Response> {
    let Some(beacons) = state.beacons.as_ref() else {
        return Err(ApiError::Rejected(StatusCode::NOT_FOUND, "this blog collects no readers' beacons".to_owned()));
    };
    let now = std::time::Instant::now();
    match beacons.take(&beacon, now) {
        Ok(()) => {}
        Err(Refusal::TooMany) => {
            let mut response =
                ApiError::Rejected(StatusCode::TOO_MANY_REQUESTS, "too many beacons; try later".to_owned())
                    .into_response();
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return Ok(response);
        }
        Err(Refusal::Invalid(message)) => return Err(ApiError::Rejected(StatusCode::UNPROCESSABLE_ENTITY, message)),
    }
    beacons.flush(now, false).await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The process is alive.
#[utoipa::path(get, path = "/healthz", responses((status = 200)))]
pub(crate) async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

/// The store answers.
#[utoipa::path(get, path = "/readyz", responses((status = 200), (status = 503, body = ErrorBody)))]
pub(crate) async fn readyz(State(state): State<AppState>) -> ApiResult<Json<serde_json::Value>> {
    state.store.ping().await?;
    Ok(Json(serde_json::json!({"status": "ready"})))
}

/// The document as this process serves: writes require the bearer token only when one is set.
async fn openapi_json(State(state): State<AppState>) -> Json<utoipa::openapi::OpenApi> {
    Json(crate::openapi::document(state.config.write_token.is_some()))
}

async fn index(State(state): State<AppState>) -> ApiResult<impl IntoResponse> {
    let recent = state.store.list(DEFAULT_PAGE_LIMIT, None).await?;
    let policy = HeaderValue::from_static(crate::page::content_security_policy());
    Ok(([(header::CONTENT_SECURITY_POLICY, policy)], Html(crate::page::render(&state.config, &recent.items))))
}

/// The headers browsers expect on every response: no MIME sniffing, no framing, no referrer.
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

/// The response header naming the variant that answered: a reader comparing the two sees it.
pub const VARIANT_HEADER: &str = "x-blog-variant";

/// `functions` inside Lambda, `containers` as a server.
fn variant_of(config: &Config) -> HeaderValue {
    HeaderValue::from_static(if config.in_lambda { "functions" } else { "containers" })
}

async fn not_found() -> ApiError {
    ApiError::Rejected(StatusCode::NOT_FOUND, "no such route".to_owned())
}

/// With a `WRITE_TOKEN` configured, writes need `Authorization: Bearer <token>`; reads stay open.
async fn require_write_token(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let is_write = matches!(*request.method(), Method::POST | Method::PUT | Method::DELETE | Method::PATCH);
    if let (true, Some(expected)) = (is_write, state.config.write_token.as_deref()) {
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        // Digests of both, compared in constant time: neither the content nor the length of the
        // token shows in how long a refusal takes.
        let digest = |token: &str| sha2::Sha256::digest(token.as_bytes());
        if !bool::from(digest(given).as_slice().ct_eq(digest(expected).as_slice())) {
            return ApiError::Unauthorized.into_response();
        }
    }
    next.run(request).await
}

/// Middleware that answers in plain text (timeouts, 405s, limits) get the same JSON error shape
/// as the handlers, so a client parses every error one way.
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json =
        response.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if (status.is_client_error() || status.is_server_error()) && !is_json {
        let reason = status.canonical_reason().unwrap_or("error").to_lowercase();
        let mut json = error_response(status, code_for_status(status), reason);
        if let Some(allow) = response.headers().get(header::ALLOW) {
            json.headers_mut().insert(header::ALLOW, allow.clone());
        }
        return json;
    }
    response
}

fn cors(config: &Config) -> CorsLayer {
    let layer = CorsLayer::new()
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
        .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION, header::IF_MATCH])
        .expose_headers([header::LOCATION, header::ETAG, header::HeaderName::from_static(VARIANT_HEADER)])
        .max_age(Duration::from_secs(600));
    if config.cors_any_origin {
        return layer.allow_origin(AllowOrigin::any());
    }
    let origins: Vec<HeaderValue> = config.cors_origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect();
    layer.allow_origin(AllowOrigin::list(origins))
}

/// The whole service: the same router runs in the container and inside Lambda.
pub fn app(state: AppState) -> Router {
    let config = Arc::clone(&state.config);
    let variant = variant_of(&config);
    let blogs = Router::new()
        .route("/blogs", get(list_posts).post(create_post))
        .route("/blogs/{id}", get(get_post).put(replace_post).delete(delete_post))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_write_token));
    Router::new()
        .merge(blogs)
        .route("/", get(index))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/openapi.json", get(openapi_json))
        .route("/beacon", axum::routing::post(beacon).layer(DefaultBodyLimit::max(BEACON_BYTES)))
        .fallback(not_found)
        .with_state(state)
        .layer(DefaultBodyLimit::max(config.max_request_bytes))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, config.request_timeout))
        .layer(middleware::map_response(json_errors))
        .layer(middleware::map_response(security_headers))
        .layer(middleware::map_response(move |mut response: Response| {
            let variant = variant.clone();
            async move {
                response.headers_mut().insert(VARIANT_HEADER, variant);
                response
            }
        }))
        .layer(cors(&config))
        .layer(TraceLayer::new_for_http())
}
