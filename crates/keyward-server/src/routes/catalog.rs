//! Products, generators (and bulk generation) and customers.

use super::{double_option, IdPath, PageParams, QueryParams};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Caller, JsonBody};
use crate::issue::{draft_license, insert_generated, LicenseDraft};
use crate::state::AppState;
use crate::views::{CustomerView, GeneratorView, LicenseView, Page, ProductView};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::Utc;
use keyward_core::activation::{Validity, ValidityBasis};
use keyward_core::ids::{new_id, IdKind};
use keyward_core::key::KeyFormat;
use keyward_core::role::Permission;
use keyward_core::values::{parse_name, ActivationLimit, Email, FeatureFlags, Metadata};
use keyward_store::{Customer, Generator, Product, ProductStatus};
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

fn field<T>(name: &str, parsed: Result<T, keyward_core::values::InvalidValue>) -> ApiResult<T> {
    parsed.map_err(|e| ApiError::invalid(name, e))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateProduct {
    pub name: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateProduct {
    pub name: Option<String>,
    pub status: Option<ProductStatus>,
}

#[utoipa::path(get, path = "/products", tag = "products", params(PageParams), security(("token" = [])),
    responses((status = 200, body = Page<ProductView>)))]
pub async fn list_products(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(page): QueryParams<PageParams>,
) -> ApiResult<Json<Page<ProductView>>> {
    caller.require(Permission::Read)?;
    let products = state.store.products(&caller.environment, &page.list_query()?).await?;
    Ok(Json(Page::from_store(products, ProductView::from)))
}

#[utoipa::path(post, path = "/products", tag = "products", request_body = CreateProduct, security(("token" = [])),
    responses((status = 201, body = ProductView), (status = 422, body = keyward_core::api::ErrorBody)))]
pub async fn create_product(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<CreateProduct>,
) -> ApiResult<(StatusCode, Json<ProductView>)> {
    caller.require(Permission::ManageLicensing)?;
    let now = Utc::now();
    let product = Product {
        id: new_id(IdKind::Product),
        environment: caller.environment.clone(),
        name: field("name", parse_name(&body.name))?,
        status: ProductStatus::Active,
        created_at: now,
        updated_at: now,
    };
    state.store.create_product(&product, &caller.audit("product.created")).await?;
    Ok((StatusCode::CREATED, Json(product.into())))
}

pub async fn product_of(state: &AppState, environment: &str, id: &str) -> ApiResult<Product> {
    state.store.product(environment, id).await?.ok_or_else(|| ApiError::not_found("product"))
}

#[utoipa::path(get, path = "/products/{id}", tag = "products", security(("token" = [])),
    responses((status = 200, body = ProductView), (status = 404, body = keyward_core::api::ErrorBody)))]
pub async fn get_product(
    State(state): State<AppState>,
    caller: Caller,
    Path(IdPath { id }): Path<IdPath>,
) -> ApiResult<Json<ProductView>> {
    caller.require(Permission::Read)?;
    Ok(Json(product_of(&state, &caller.environment, &id).await?.into()))
}

#[utoipa::path(patch, path = "/products/{id}", tag = "products", request_body = UpdateProduct, security(("token" = [])),
    responses((status = 200, body = ProductView), (status = 404, body = keyward_core::api::ErrorBody)))]
pub async fn update_product(
    State(state): State<AppState>,
    caller: Caller,
    Path(IdPath { id }): Path<IdPath>,
    JsonBody(body): JsonBody<UpdateProduct>,
) -> ApiResult<Json<ProductView>> {
    caller.require(Permission::ManageLicensing)?;
    let mut product = product_of(&state, &caller.environment, &id).await?;
    if let Some(name) = &body.name {
        product.name = field("name", parse_name(name))?;
    }
    let action = match body.status {
        Some(ProductStatus::Archived) if product.status == ProductStatus::Active => "product.archived",
        _ => "product.updated",
    };
    product.status = body.status.unwrap_or(product.status);
    product.updated_at = Utc::now();
    state.store.update_product(&product, &caller.audit(action)).await?;
    Ok(Json(product.into()))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateGenerator {
    /// The product's id.
    pub product: String,
    pub name: String,
    pub format: KeyFormat,
    pub activation_limit: i64,
    pub validity_days: Option<i64>,
    pub validity_basis: Option<ValidityBasis>,
    #[schema(value_type = Option<Object>)]
    pub feature_flags: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateGenerator {
    pub name: Option<String>,
    pub format: Option<KeyFormat>,
    pub activation_limit: Option<i64>,
    #[serde(default, deserialize_with = "double_option")]
    pub validity_days: Option<Option<i64>>,
    pub validity_basis: Option<ValidityBasis>,
    #[schema(value_type = Option<Object>)]
    pub feature_flags: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
}

fn check_format(format: &KeyFormat) -> ApiResult<()> {
    let check = field("format", format.check())?;
    if let Some(warning) = check.warning {
        tracing::warn!(%warning, "a generator makes short keys");
    }
    Ok(())
}

fn validity(days: Option<i64>, basis: Option<ValidityBasis>) -> ApiResult<Option<Validity>> {
    match (days, basis) {
        (None, None) => Ok(None),
        (None, Some(_)) => Err(ApiError::invalid("validity_days", "is required with validity_basis")),
        (Some(days), basis) => {
            Ok(Some(field("validity_days", Validity::parse(days, basis.unwrap_or(ValidityBasis::Creation)))?))
        }
    }
}

#[utoipa::path(get, path = "/generators", tag = "generators", params(PageParams), security(("token" = [])),
    responses((status = 200, body = Page<GeneratorView>)))]
pub async fn list_generators(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(page): QueryParams<PageParams>,
) -> ApiResult<Json<Page<GeneratorView>>> {
    caller.require(Permission::Read)?;
    let generators = state.store.generators(&caller.environment, &page.list_query()?).await?;
    Ok(Json(Page::from_store(generators, GeneratorView::from)))
}

#[utoipa::path(post, path = "/generators", tag = "generators", request_body = CreateGenerator, security(("token" = [])),
    responses((status = 201, body = GeneratorView), (status = 409, body = keyward_core::api::ErrorBody), (status = 422, body = keyward_core::api::ErrorBody)))]
pub async fn create_generator(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<CreateGenerator>,
) -> ApiResult<(StatusCode, Json<GeneratorView>)> {
    caller.require(Permission::ManageLicensing)?;
    let product = state
        .store
        .product(&caller.environment, &body.product)
        .await?
        .ok_or_else(|| ApiError::unknown_reference("product", "product"))?;
    check_format(&body.format)?;
    let now = Utc::now();
    let generator = Generator {
        id: new_id(IdKind::Generator),
        environment: caller.environment.clone(),
        product_id: product.id,
        name: field("name", parse_name(&body.name))?,
        format: body.format,
        activation_limit: field("activation_limit", ActivationLimit::parse(body.activation_limit))?,
        validity: validity(body.validity_days, body.validity_basis)?.map(Into::into),
        feature_flags: field(
            "feature_flags",
            FeatureFlags::parse(body.feature_flags.unwrap_or_else(|| Value::Object(Default::default()))),
        )?,
        metadata: field(
            "metadata",
            Metadata::parse(body.metadata.unwrap_or_else(|| Value::Object(Default::default()))),
        )?,
        created_at: now,
        updated_at: now,
    };
    state.store.create_generator(&generator, &caller.audit("generator.created")).await?;
    Ok((StatusCode::CREATED, Json(generator.into())))
}

pub async fn generator_of(state: &AppState, environment: &str, id: &str) -> ApiResult<Generator> {
    state.store.generator(environment, id).await?.ok_or_else(|| ApiError::not_found("generator"))
}

#[utoipa::path(get, path = "/generators/{id}", tag = "generators", security(("token" = [])),
    responses((status = 200, body = GeneratorView), (status = 404, body = keyward_core::api::ErrorBody)))]
pub async fn get_generator(
    State(state): State<AppState>,
    caller: Caller,
    Path(IdPath { id }): Path<IdPath>,
) -> ApiResult<Json<GeneratorView>> {
    caller.require(Permission::Read)?;
    Ok(Json(generator_of(&state, &caller.environment, &id).await?.into()))
}

#[utoipa::path(patch, path = "/generators/{id}", tag = "generators", request_body = UpdateGenerator, security(("token" = [])),
    responses((status = 200, body = GeneratorView), (status = 404, body = keyward_core::api::ErrorBody), (status = 422, body = keyward_core::api::ErrorBody)))]
pub async fn update_generator(
    State(state): State<AppState>,
    caller: Caller,
    Path(IdPath { id }): Path<IdPath>,
    JsonBody(body): JsonBody<UpdateGenerator>,
) -> ApiResult<Json<GeneratorView>> {
    caller.require(Permission::ManageLicensing)?;
    let mut generator = generator_of(&state, &caller.environment, &id).await?;
    if let Some(name) = &body.name {
        generator.name = field("name", parse_name(name))?;
    }
    if let Some(format) = body.format {
        check_format(&format)?;
        generator.format = format;
    }
    if let Some(limit) = body.activation_limit {
        generator.activation_limit = field("activation_limit", ActivationLimit::parse(limit))?;
    }
    let current_days = generator.validity.map(|v| v.days);
    let days = body.validity_days.unwrap_or(current_days);
    let basis = body.validity_basis.or(generator.validity.map(|v| v.basis));
    generator.validity = match days {
        None => None,
        Some(_) => validity(days, basis)?.map(Into::into),
    };
    if let Some(flags) = body.feature_flags {
        generator.feature_flags = field("feature_flags", FeatureFlags::parse(flags))?;
    }
    if let Some(metadata) = body.metadata {
        generator.metadata = field("metadata", Metadata::parse(metadata))?;
    }
    generator.updated_at = Utc::now();
    state.store.update_generator(&generator, &caller.audit("generator.updated")).await?;
    Ok(Json(generator.into()))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct Generate {
    /// 1 to 1000.
    pub count: i64,
    /// A customer id: the licenses are created assigned to it.
    pub customer: Option<String>,
}

#[derive(Debug, serde::Serialize, ToSchema)]
pub struct Generated {
    pub data: Vec<LicenseView>,
}

/// The most licenses one request generates.
pub const MAX_GENERATE: i64 = 1000;

#[utoipa::path(post, path = "/generators/{id}/generate", tag = "generators", request_body = Generate, security(("token" = [])),
    responses((status = 201, body = Generated), (status = 404, body = keyward_core::api::ErrorBody), (status = 409, body = keyward_core::api::ErrorBody),
              (status = 422, body = keyward_core::api::ErrorBody)))]
pub async fn generate(
    State(state): State<AppState>,
    caller: Caller,
    Path(IdPath { id }): Path<IdPath>,
    JsonBody(body): JsonBody<Generate>,
) -> ApiResult<(StatusCode, Json<Generated>)> {
    caller.require(Permission::ManageLicensing)?;
    if !(1..=MAX_GENERATE).contains(&body.count) {
        return Err(ApiError::invalid("count", format!("must be between 1 and {MAX_GENERATE}")));
    }
    let generator = generator_of(&state, &caller.environment, &id).await?;
    let draft = LicenseDraft { customer: body.customer, ..LicenseDraft::default() };
    let now = Utc::now();
    let (template, product) = draft_license(state.store.as_ref(), &caller.environment, &generator, &draft, now).await?;
    let licenses = insert_generated(
        state.store.as_ref(),
        &generator,
        &template,
        body.count as usize,
        &caller.audit("license.created"),
    )
    .await?;
    state.licenses.forget_unknown();
    let grace = state.grace(&caller.environment);
    let data = licenses
        .into_iter()
        .map(|mut license| {
            license.product_name = product.name.clone();
            LicenseView::new(license, grace, now)
        })
        .collect();
    Ok((StatusCode::CREATED, Json(Generated { data })))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateCustomer {
    pub name: String,
    pub email: String,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateCustomer {
    pub name: Option<String>,
    pub email: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
}

#[utoipa::path(get, path = "/customers", tag = "customers", params(PageParams), security(("token" = [])),
    responses((status = 200, body = Page<CustomerView>)))]
pub async fn list_customers(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(page): QueryParams<PageParams>,
) -> ApiResult<Json<Page<CustomerView>>> {
    caller.require(Permission::Read)?;
    let customers = state.store.customers(&caller.environment, &page.list_query()?).await?;
    Ok(Json(Page::from_store(customers, CustomerView::from)))
}

#[utoipa::path(post, path = "/customers", tag = "customers", request_body = CreateCustomer, security(("token" = [])),
    responses((status = 201, body = CustomerView), (status = 409, body = keyward_core::api::ErrorBody, description = "EMAIL_TAKEN"),
              (status = 422, body = keyward_core::api::ErrorBody)))]
pub async fn create_customer(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<CreateCustomer>,
) -> ApiResult<(StatusCode, Json<CustomerView>)> {
    caller.require(Permission::ManageLicensing)?;
    let now = Utc::now();
    let customer = Customer {
        id: new_id(IdKind::Customer),
        environment: caller.environment.clone(),
        name: field("name", parse_name(&body.name))?,
        email: field("email", Email::parse(&body.email))?.as_str().to_owned(),
        metadata: field(
            "metadata",
            Metadata::parse(body.metadata.unwrap_or_else(|| Value::Object(Default::default()))),
        )?,
        created_at: now,
        updated_at: now,
    };
    state.store.create_customer(&customer, &caller.audit("customer.created")).await?;
    Ok((StatusCode::CREATED, Json(customer.into())))
}

async fn customer_of(state: &AppState, environment: &str, id: &str) -> ApiResult<Customer> {
    state.store.customer(environment, id).await?.ok_or_else(|| ApiError::not_found("customer"))
}

#[utoipa::path(get, path = "/customers/{id}", tag = "customers", security(("token" = [])),
    responses((status = 200, body = CustomerView), (status = 404, body = keyward_core::api::ErrorBody)))]
pub async fn get_customer(
    State(state): State<AppState>,
    caller: Caller,
    Path(IdPath { id }): Path<IdPath>,
) -> ApiResult<Json<CustomerView>> {
    caller.require(Permission::Read)?;
    Ok(Json(customer_of(&state, &caller.environment, &id).await?.into()))
}

#[utoipa::path(patch, path = "/customers/{id}", tag = "customers", request_body = UpdateCustomer, security(("token" = [])),
    responses((status = 200, body = CustomerView), (status = 404, body = keyward_core::api::ErrorBody), (status = 409, body = keyward_core::api::ErrorBody)))]
pub async fn update_customer(
    State(state): State<AppState>,
    caller: Caller,
    Path(IdPath { id }): Path<IdPath>,
    JsonBody(body): JsonBody<UpdateCustomer>,
) -> ApiResult<Json<CustomerView>> {
    caller.require(Permission::ManageLicensing)?;
    let mut customer = customer_of(&state, &caller.environment, &id).await?;
    if let Some(name) = &body.name {
        customer.name = field("name", parse_name(name))?;
    }
    if let Some(email) = &body.email {
        customer.email = field("email", Email::parse(email))?.as_str().to_owned();
    }
    if let Some(metadata) = body.metadata {
        customer.metadata = field("metadata", Metadata::parse(metadata))?;
    }
    customer.updated_at = Utc::now();
    state.store.update_customer(&customer, &caller.audit("customer.updated")).await?;
    Ok(Json(customer.into()))
}

#[utoipa::path(delete, path = "/customers/{id}", tag = "customers", security(("token" = [])),
    responses((status = 204), (status = 404, body = keyward_core::api::ErrorBody), (status = 409, body = keyward_core::api::ErrorBody, description = "CUSTOMER_HAS_LICENSES")))]
pub async fn delete_customer(
    State(state): State<AppState>,
    caller: Caller,
    Path(IdPath { id }): Path<IdPath>,
) -> ApiResult<StatusCode> {
    caller.require(Permission::ManageLicensing)?;
    state.store.delete_customer(&caller.environment, &id, &caller.audit("customer.deleted")).await.map_err(|err| {
        match err {
            keyward_store::StoreError::NotFound => ApiError::not_found("customer"),
            other => other.into(),
        }
    })?;
    Ok(StatusCode::NO_CONTENT)
}
