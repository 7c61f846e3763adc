//! The HTTP surface: every route registered with its OpenAPI description, so they cannot drift.

pub mod admin;
pub mod catalog;
pub mod license_api;
pub mod licenses;

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

#[derive(OpenApi)]
#[openapi(
    info(title = "keyward", description = "Self-hosted license key management: the license API (authenticated by the key) and the admin API (Bearer token)."),
    servers((url = "/api/v1", description = "production"), (url = "/env/{environment}/api/v1", description = "any environment",
        variables(("environment" = (default = "staging", description = "the environment's name"))))),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The API routes (mounted at `/api/v1`) and their OpenAPI document.
pub fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(license_api::validate))
        .routes(routes!(license_api::activate))
        .routes(routes!(license_api::deactivate))
        .routes(routes!(license_api::offline_file))
        .routes(routes!(license_api::public_keys))
        .routes(routes!(catalog::list_products, catalog::create_product))
        .routes(routes!(catalog::get_product, catalog::update_product))
        .routes(routes!(catalog::list_generators, catalog::create_generator))
        .routes(routes!(catalog::get_generator, catalog::update_generator))
        .routes(routes!(catalog::generate))
        .routes(routes!(catalog::list_customers, catalog::create_customer))
        .routes(routes!(catalog::get_customer, catalog::update_customer, catalog::delete_customer))
        .routes(routes!(licenses::list_licenses, licenses::create_license))
        .routes(routes!(
            licenses::get_license,
            licenses::patch_license,
            licenses::put_license,
            licenses::delete_license
        ))
        .routes(routes!(licenses::license_action))
        .routes(routes!(licenses::license_activations))
        .routes(routes!(licenses::license_usage))
        .routes(routes!(licenses::license_offline_file))
        .routes(routes!(licenses::delete_activation))
        .routes(routes!(admin::create_token))
        .routes(routes!(admin::list_audit_events))
        .routes(routes!(admin::get_settings, admin::update_settings))
        .routes(routes!(admin::rotate_signing_key))
        .split_for_parts()
}

/// The whole application, before `/env/{name}` routing is put in front of it.
pub fn router(state: AppState) -> Router {
    let (api, doc) = api();
    let doc = std::sync::Arc::new(doc);
    Router::new()
        .nest("/api/v1", api.route("/openapi.json", get(move || async move { Json((*doc).clone()) })))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", "no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED", "this route does not take that method")
        })
        .layer(axum::middleware::from_fn(run_to_completion))
        .with_state(state)
}

/// Runs each request in a task of its own, so a client that disconnects cannot cancel a write
/// halfway: sqlx's `begin` is not cancel-safe, and a cancelled one can leave a pooled connection
/// (SQLite's only writer) inside a transaction nobody ends (sqlx issues 2054, 3932, 4385).
async fn run_to_completion(req: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    match tokio::spawn(next.run(req)).await {
        Ok(response) => response,
        Err(err) => {
            tracing::error!(error = %err, "a request handler panicked");
            ApiError::internal().into_response()
        }
    }
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    match state.store.ping().await {
        Ok(()) => (StatusCode::OK, "ready").into_response(),
        Err(err) => {
            tracing::warn!(error = %err, "not ready: the database does not answer");
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "NOT_READY", "the database does not answer").into_response()
        }
    }
}

/// Query parameters; a malformed query is `422 INVALID_QUERY` in the one error shape.
pub struct QueryParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| QueryParams(q.0))
            .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "INVALID_QUERY", e.body_text()))
    }
}

/// `limit` and `cursor`, on every list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct PageParams {
    /// 1 to 500; 50 by default.
    pub limit: Option<u32>,
    pub cursor: Option<String>,
    /// Case-insensitive search.
    pub q: Option<String>,
}

impl PageParams {
    pub fn list_query(&self) -> Result<keyward_store::ListQuery, ApiError> {
        Ok(keyward_store::ListQuery { q: self.q.clone(), limit: limit(self.limit)?, cursor: self.cursor.clone() })
    }
}

pub fn limit(limit: Option<u32>) -> Result<u32, ApiError> {
    match limit.unwrap_or(50) {
        n @ 1..=500 => Ok(n),
        _ => Err(ApiError::invalid("limit", "must be between 1 and 500")),
    }
}

/// `{id}` in a path.
#[derive(Debug, Deserialize)]
pub struct IdPath {
    pub id: String,
}

/// Lets a PATCH tell `"field": null` (clear it) from a missing field (leave it).
pub fn double_option<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}
