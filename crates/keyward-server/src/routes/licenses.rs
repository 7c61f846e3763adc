//! Licenses in the admin API: create, read, list, edit, the state actions, delete, activations,
//! validation history and the offline file preview.

use super::{double_option, limit, IdPath, PageParams, QueryParams};
use crate::error::{ApiError, ApiResult};
use crate::extract::{read_body, Caller, JsonBody};
use crate::issue::{draft_license, insert_generated, LicenseDraft};
use crate::state::AppState;
use crate::views::{ActivationView, LicenseView, Page, ValidationView};
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use keyward_core::activation::{
    check_editable, check_limit_change, check_new_expiry, decide_delete, status_after_customer_change, Validity,
    ValidityBasis,
};
use keyward_core::ids::{new_id, IdKind};
use keyward_core::offline::OfflineFile;
use keyward_core::role::Permission;
use keyward_core::status::{effective_status, transition};
use keyward_core::validation::{decide, LicenseFacts, ValidationRequest, Verdict};
use keyward_core::values::{ActivationLimit, FeatureFlags, Fingerprint, Metadata};
use keyward_core::{Action, LicenseStatus, ValidationCode};
use keyward_store::{
    Activation, ActivationChange, License, LicenseChange, LicenseChanged, LicenseEdit, LicenseQuery, LicenseSort,
    Order, StoreError,
};
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

fn field<T>(name: &str, parsed: Result<T, keyward_core::values::InvalidValue>) -> ApiResult<T> {
    parsed.map_err(|e| ApiError::invalid(name, e))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateLicense {
    /// The product's id.
    pub product: String,
    /// The generator's id; it must make keys for the product.
    pub generator: String,
    /// A customer id: the license is created assigned.
    pub customer: Option<String>,
    /// A key of the vendor's own (an import); otherwise the generator makes one.
    pub key: Option<String>,
    pub activation_limit: Option<i64>,
    pub expires_at: Option<DateTime<Utc>>,
    #[schema(value_type = Option<Object>)]
    pub feature_flags: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
}

fn parse_custom_key(key: &str) -> ApiResult<String> {
    let ok = (4..=200).contains(&key.len()) && key.chars().all(|c| c.is_ascii_graphic());
    if ok {
        Ok(key.to_owned())
    } else {
        Err(ApiError::invalid("key", "must be 4 to 200 printable ASCII characters without spaces"))
    }
}

#[utoipa::path(post, path = "/licenses", tag = "licenses", request_body = CreateLicense, security(("token" = [])),
    responses((status = 201, body = LicenseView), (status = 409, body = keyward_core::api::ErrorBody), (status = 422, body = keyward_core::api::ErrorBody)))]
pub async fn create_license(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<CreateLicense>,
) -> ApiResult<(StatusCode, Json<LicenseView>)> {
    caller.require(Permission::ManageLicensing)?;
    let environment = &caller.environment;
    if state.store.product(environment, &body.product).await?.is_none() {
        return Err(ApiError::unknown_reference("product", "product"));
    }
    let generator = state
        .store
        .generator(environment, &body.generator)
        .await?
        .ok_or_else(|| ApiError::unknown_reference("generator", "generator"))?;
    if generator.product_id != body.product {
        return Err(ApiError::invalid("generator", "makes keys for another product"));
    }
    let draft = LicenseDraft {
        customer: body.customer,
        activation_limit: body.activation_limit,
        expires_at: body.expires_at,
        feature_flags: body.feature_flags,
        metadata: body.metadata,
    };
    let now = Utc::now();
    let (template, _) = draft_license(state.store.as_ref(), environment, &generator, &draft, now).await?;
    let audit = caller.audit("license.created");
    let license = match body.key {
        Some(key) => {
            let license = License { id: new_id(IdKind::License), key: parse_custom_key(&key)?, ..template };
            state.store.insert_licenses(std::slice::from_ref(&license), &audit).await?;
            license
        }
        None => insert_generated(state.store.as_ref(), &generator, &template, 1, &audit).await?.remove(0),
    };
    state.licenses.invalidate(environment, &license.key);
    Ok((StatusCode::CREATED, Json(LicenseView::new(license, state.grace(environment), now))))
}

pub async fn license_of(state: &AppState, environment: &str, id_or_key: &str) -> ApiResult<License> {
    state.store.license(environment, id_or_key).await?.ok_or_else(|| ApiError::not_found("license"))
}

fn view(state: &AppState, license: License) -> LicenseView {
    let grace = state.grace(&license.environment);
    LicenseView::new(license, grace, Utc::now())
}

#[utoipa::path(get, path = "/licenses/{id}", tag = "licenses", security(("token" = [])),
    params(("id" = String, Path, description = "the license's id or its key")),
    responses((status = 200, body = LicenseView), (status = 404, body = keyward_core::api::ErrorBody)))]
pub async fn get_license(
    State(state): State<AppState>,
    caller: Caller,
    Path(IdPath { id }): Path<IdPath>,
) -> ApiResult<Json<LicenseView>> {
    caller.require(Permission::Read)?;
    Ok(Json(view(&state, license_of(&state, &caller.environment, &id).await?)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct LicenseListParams {
    /// Key substring, customer email or name, email domain, product name.
    pub q: Option<String>,
    /// A product id.
    pub product: Option<String>,
    pub status: Option<LicenseStatus>,
    /// A customer id.
    pub customer: Option<String>,
    /// key, product, customer, status, activation_limit, expires_at, created_at (default).
    pub sort: Option<String>,
    /// asc or desc (default).
    pub order: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

fn parse_sort(sort: Option<&str>) -> ApiResult<LicenseSort> {
    Ok(match sort.unwrap_or("created_at") {
        "key" => LicenseSort::Key,
        "product" => LicenseSort::Product,
        "customer" => LicenseSort::Customer,
        "status" => LicenseSort::Status,
        "activation_limit" => LicenseSort::ActivationLimit,
        "expires_at" => LicenseSort::ExpiresAt,
        "created_at" => LicenseSort::CreatedAt,
        _ => {
            return Err(ApiError::invalid(
                "sort",
                "must be one of key, product, customer, status, activation_limit, expires_at, created_at",
            ))
        }
    })
}

fn parse_order(order: Option<&str>) -> ApiResult<Order> {
    match order.unwrap_or("desc") {
        "asc" => Ok(Order::Asc),
        "desc" => Ok(Order::Desc),
        _ => Err(ApiError::invalid("order", "must be asc or desc")),
    }
}

#[utoipa::path(get, path = "/licenses", tag = "licenses", params(LicenseListParams), security(("token" = [])),
    responses((status = 200, body = Page<LicenseView>), (status = 422, body = keyward_core::api::ErrorBody)))]
pub async fn list_licenses(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(params): QueryParams<LicenseListParams>,
) -> ApiResult<Json<Page<LicenseView>>> {
    caller.require(Permission::Read)?;
    let now = Utc::now();
    let grace = state.grace(&caller.environment);
    let query = LicenseQuery {
        q: params.q.filter(|q| !q.trim().is_empty()),
        product: params.product,
        status: params.status,
        customer: params.customer,
        sort: parse_sort(params.sort.as_deref())?,
        order: parse_order(params.order.as_deref())?,
        limit: limit(params.limit)?,
        cursor: params.cursor,
        expired_before: now - grace,
    };
    let page = state.store.licenses(&caller.environment, &query).await?;
    Ok(Json(Page::from_store(page, |license| LicenseView::new(license, grace, now))))
}

/// `null`, an id, or an object with an `id` (as a license reads back): the id, if any.
fn reference_id(value: &Value, name: &str) -> ApiResult<Option<String>> {
    match value {
        Value::Null => Ok(None),
        Value::String(id) => Ok(Some(id.clone())),
        Value::Object(map) => match map.get("id") {
            Some(Value::String(id)) => Ok(Some(id.clone())),
            _ => Err(ApiError::invalid(name, "must be an id, an object with an id, or null")),
        },
        _ => Err(ApiError::invalid(name, "must be an id, an object with an id, or null")),
    }
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct EditLicense {
    /// A customer id (or `{id}`), or null; a license is never unassigned once assigned.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub customer: Option<Option<Value>>,
    pub activation_limit: Option<i64>,
    /// RFC 3339, in the future; null for a lifetime license.
    #[serde(default, deserialize_with = "double_option")]
    pub expires_at: Option<Option<DateTime<Utc>>>,
    #[schema(value_type = Option<Object>)]
    pub feature_flags: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
    /// Immutable: allowed only unchanged.
    #[schema(value_type = Option<String>)]
    pub key: Option<Value>,
    /// Immutable: allowed only unchanged.
    #[schema(value_type = Option<String>)]
    pub product: Option<Value>,
    /// Immutable: allowed only unchanged.
    #[schema(value_type = Option<String>)]
    pub environment: Option<Value>,
    /// Immutable: allowed only unchanged.
    #[schema(value_type = Option<String>)]
    pub generator: Option<Value>,
}

/// An edit with every value checked; what remains depends on the locked license.
struct CheckedEdit {
    customer: Option<Option<keyward_store::CustomerRef>>,
    activation_limit: Option<ActivationLimit>,
    expires_at: Option<Option<DateTime<Utc>>>,
    feature_flags: Option<FeatureFlags>,
    metadata: Option<Metadata>,
}

async fn check_edit(
    state: &AppState,
    current: &License,
    body: EditLicense,
    replace: bool,
    now: DateTime<Utc>,
) -> ApiResult<CheckedEdit> {
    let immutable = |name: &str, given: &Option<Value>, actual: &str| -> ApiResult<()> {
        match given {
            Some(value) if reference_id(value, name).ok().flatten().as_deref() != Some(actual) => Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "FIELD_IMMUTABLE",
                format!("{name} cannot change after a license is created"),
            )
            .with_field(name)),
            _ => Ok(()),
        }
    };
    immutable("key", &body.key, &current.key)?;
    immutable("product", &body.product, &current.product_id)?;
    immutable("environment", &body.environment, &current.environment)?;
    immutable("generator", &body.generator, &current.generator_id)?;
    if replace {
        let missing = [
            ("customer", body.customer.is_none()),
            ("activation_limit", body.activation_limit.is_none()),
            ("expires_at", body.expires_at.is_none()),
            ("feature_flags", body.feature_flags.is_none()),
            ("metadata", body.metadata.is_none()),
        ];
        if let Some((name, _)) = missing.iter().find(|(_, missing)| *missing) {
            return Err(ApiError::invalid(*name, "is required when replacing a license with PUT"));
        }
    }
    let customer = match &body.customer {
        None => None,
        Some(None) => Some(None),
        Some(Some(value)) => match reference_id(value, "customer")? {
            None => Some(None),
            Some(id) => {
                let c = state
                    .store
                    .customer(&current.environment, &id)
                    .await?
                    .ok_or_else(|| ApiError::unknown_reference("customer", "customer"))?;
                Some(Some(keyward_store::CustomerRef { id: c.id, name: c.name, email: c.email }))
            }
        },
    };
    Ok(CheckedEdit {
        customer,
        activation_limit: body
            .activation_limit
            .map(|n| field("activation_limit", ActivationLimit::parse(n)))
            .transpose()?,
        expires_at: match body.expires_at {
            Some(Some(at)) => Some(Some(field("expires_at", check_new_expiry(at, now))?)),
            other => other,
        },
        feature_flags: body.feature_flags.map(|v| field("feature_flags", FeatureFlags::parse(v))).transpose()?,
        metadata: body.metadata.map(|v| field("metadata", Metadata::parse(v))).transpose()?,
    })
}

/// Runs `edit` on the locked license, forgets its cached snapshot, and answers with its new view.
async fn change(
    state: &AppState,
    caller: &Caller,
    id: &str,
    action: &str,
    edit: LicenseEdit,
) -> ApiResult<LicenseChanged> {
    let changed = state.store.change_license(&caller.environment, id, edit, &caller.audit(action)).await.map_err(
        |err| match err {
            StoreError::NotFound => ApiError::not_found("license"),
            other => other.into(),
        },
    )?;
    state.licenses.invalidate(&caller.environment, &changed.after.key);
    Ok(changed)
}

async fn edit_license(
    state: AppState,
    caller: Caller,
    id: String,
    bytes: bytes::Bytes,
    replace: bool,
) -> ApiResult<Json<LicenseView>> {
    caller.require(Permission::ManageLicensing)?;
    let body: EditLicense = JsonBody::parse(&bytes)?;
    let current = license_of(&state, &caller.environment, &id).await?;
    let now = Utc::now();
    let edit = check_edit(&state, &current, body, replace, now).await?;
    let grace = state.grace(&caller.environment);
    let action = if matches!(edit.customer, Some(Some(_))) && current.customer_id.is_none() {
        "license.assigned"
    } else {
        "license.updated"
    };
    let changed = change(
        &state,
        &caller,
        &current.id,
        action,
        Box::new(move |license, _| {
            let (status, _) = effective_status(license.status, license.expires_at, grace, now);
            check_editable(status)?;
            let mut after = license.clone();
            if let Some(customer) = edit.customer {
                after.status = status_after_customer_change(status, customer.is_some())?;
                if after.customer_id.is_none() && customer.is_some() {
                    after.assigned_at = Some(now);
                    if let Some(validity) = license.validity {
                        after.expires_at =
                            Validity::from(validity).expiry_on(ValidityBasis::Assignment, now, after.expires_at);
                    }
                }
                after.customer_id = customer.as_ref().map(|c| c.id.clone());
                after.customer = customer;
            }
            if let Some(limit) = edit.activation_limit {
                after.activation_limit = check_limit_change(limit, license.activation_count)?;
            }
            if let Some(expires_at) = edit.expires_at {
                after.expires_at = expires_at;
            }
            if let Some(flags) = edit.feature_flags {
                after.feature_flags = flags;
            }
            if let Some(metadata) = edit.metadata {
                after.metadata = metadata;
            }
            after.updated_at = now;
            Ok(LicenseChange { license: after, activation: ActivationChange::None })
        }),
    )
    .await?;
    Ok(Json(view(&state, changed.after)))
}

#[utoipa::path(patch, path = "/licenses/{id}", tag = "licenses", request_body = EditLicense, security(("token" = [])),
    responses((status = 200, body = LicenseView), (status = 404, body = keyward_core::api::ErrorBody), (status = 409, body = keyward_core::api::ErrorBody),
              (status = 422, body = keyward_core::api::ErrorBody)))]
pub async fn patch_license(
    State(state): State<AppState>,
    caller: Caller,
    Path(IdPath { id }): Path<IdPath>,
    req: Request,
) -> ApiResult<Json<LicenseView>> {
    let bytes = read_body(req).await?;
    edit_license(state, caller, id, bytes, false).await
}

#[utoipa::path(put, path = "/licenses/{id}", tag = "licenses", request_body = EditLicense, security(("token" = [])),
    responses((status = 200, body = LicenseView), (status = 404, body = keyward_core::api::ErrorBody), (status = 409, body = keyward_core::api::ErrorBody),
              (status = 422, body = keyward_core::api::ErrorBody)))]
pub async fn put_license(
    State(state): State<AppState>,
    caller: Caller,
    Path(IdPath { id }): Path<IdPath>,
    req: Request,
) -> ApiResult<Json<LicenseView>> {
    let bytes = read_body(req).await?;
    edit_license(state, caller, id, bytes, true).await
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct DeleteParams {
    /// Delete even a license that was activated (its history goes with it).
    pub force: Option<bool>,
}

#[utoipa::path(delete, path = "/licenses/{id}", tag = "licenses", params(DeleteParams), security(("token" = [])),
    responses((status = 204), (status = 404, body = keyward_core::api::ErrorBody), (status = 409, body = keyward_core::api::ErrorBody, description = "LICENSE_WAS_ACTIVATED")))]
pub async fn delete_license(
    State(state): State<AppState>,
    caller: Caller,
    Path(IdPath { id }): Path<IdPath>,
    QueryParams(params): QueryParams<DeleteParams>,
) -> ApiResult<StatusCode> {
    caller.require(Permission::ManageLicensing)?;
    let force = params.force.unwrap_or(false);
    let check = Box::new(move |license: &License| decide_delete(license.ever_activated, force));
    let deleted =
        state.store.delete_license(&caller.environment, &id, check, &caller.audit("license.deleted")).await.map_err(
            |err| match err {
                StoreError::NotFound => ApiError::not_found("license"),
                other => other.into(),
            },
        )?;
    state.licenses.invalidate(&caller.environment, &deleted.key);
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionBody {
    /// `assign`: the customer's id.
    pub customer: Option<String>,
    /// Required by `suspend`; optional for `inactivate`.
    pub reason: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ActionPath {
    pub id: String,
    pub action: String,
}

#[utoipa::path(post, path = "/licenses/{id}/actions/{action}", tag = "licenses", request_body = ActionBody, security(("token" = [])),
    params(("id" = String, Path, description = "the license's id or key"),
           ("action" = String, Path, description = "assign, suspend, unsuspend, inactivate, reactivate or revoke")),
    responses((status = 200, body = LicenseView), (status = 404, body = keyward_core::api::ErrorBody),
              (status = 409, body = keyward_core::api::ErrorBody, description = "INVALID_TRANSITION"), (status = 422, body = keyward_core::api::ErrorBody)))]
pub async fn license_action(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<ActionPath>,
    req: Request,
) -> ApiResult<Json<LicenseView>> {
    let action = match path.action.parse::<Action>() {
        Ok(action) if !matches!(action, Action::Activate | Action::Expire) => action,
        _ => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "UNKNOWN_ACTION",
                format!("no action is named `{}`", path.action),
            ))
        }
    };
    caller.require(if action == Action::Assign { Permission::AssignLicense } else { Permission::ManageLicensing })?;
    let bytes = read_body(req).await?;
    let body: ActionBody =
        if bytes.iter().all(u8::is_ascii_whitespace) { ActionBody::default() } else { JsonBody::parse(&bytes)? };
    let reason = match (&body.reason, action) {
        (None, Action::Suspend) => return Err(ApiError::invalid("reason", "is required to suspend a license")),
        (Some(reason), _) if reason.trim().is_empty() || reason.chars().count() > 500 => {
            return Err(ApiError::invalid("reason", "must be 1 to 500 characters"))
        }
        (reason, _) => reason.clone(),
    };
    let customer = match (action, &body.customer) {
        (Action::Assign, None) => return Err(ApiError::invalid("customer", "is required to assign a license")),
        (Action::Assign, Some(id)) => {
            let c = state
                .store
                .customer(&caller.environment, id)
                .await?
                .ok_or_else(|| ApiError::unknown_reference("customer", "customer"))?;
            Some(keyward_store::CustomerRef { id: c.id, name: c.name, email: c.email })
        }
        _ => None,
    };
    let now = Utc::now();
    let grace = state.grace(&caller.environment);
    let audit_action = format!("license.{}", past_tense(action));
    let changed = change(
        &state,
        &caller,
        &path.id,
        &audit_action,
        Box::new(move |license, _| {
            let (status, _) = effective_status(license.status, license.expires_at, grace, now);
            let mut after = license.clone();
            after.status = transition(status, action)?;
            after.updated_at = now;
            let mut activation = ActivationChange::None;
            match action {
                Action::Assign => {
                    after.customer_id = customer.as_ref().map(|c| c.id.clone());
                    after.customer = customer;
                    after.assigned_at = Some(now);
                    if let Some(validity) = license.validity {
                        after.expires_at =
                            Validity::from(validity).expiry_on(ValidityBasis::Assignment, now, after.expires_at);
                    }
                }
                Action::Suspend | Action::Inactivate => after.suspension_reason = reason,
                Action::Unsuspend | Action::Reactivate => after.suspension_reason = None,
                Action::Revoke => activation = ActivationChange::RemoveAll,
                Action::Activate | Action::Expire => {}
            }
            Ok(LicenseChange { license: after, activation })
        }),
    )
    .await?;
    Ok(Json(view(&state, changed.after)))
}

fn past_tense(action: Action) -> &'static str {
    match action {
        Action::Assign => "assigned",
        Action::Activate => "activated",
        Action::Suspend => "suspended",
        Action::Unsuspend => "unsuspended",
        Action::Inactivate => "inactivated",
        Action::Reactivate => "reactivated",
        Action::Expire => "expired",
        Action::Revoke => "revoked",
    }
}

#[utoipa::path(get, path = "/licenses/{id}/activations", tag = "licenses", security(("token" = [])),
    responses((status = 200, body = Page<ActivationView>, description = "every activation, in one page"), (status = 404, body = keyward_core::api::ErrorBody)))]
pub async fn license_activations(
    State(state): State<AppState>,
    caller: Caller,
    Path(IdPath { id }): Path<IdPath>,
) -> ApiResult<Json<Page<ActivationView>>> {
    caller.require(Permission::Read)?;
    let license = license_of(&state, &caller.environment, &id).await?;
    let activations = state.store.activations(&caller.environment, &license.id).await?;
    // At most the activation limit of a license: the list shape, whole, with no further page.
    let total = activations.len() as i64;
    Ok(Json(Page { data: activations.into_iter().map(ActivationView::from).collect(), next_cursor: None, total }))
}

#[utoipa::path(get, path = "/licenses/{id}/usage", tag = "licenses", params(PageParams), security(("token" = [])),
    responses((status = 200, body = Page<ValidationView>, description = "validation history, newest first"), (status = 404, body = keyward_core::api::ErrorBody)))]
pub async fn license_usage(
    State(state): State<AppState>,
    caller: Caller,
    Path(IdPath { id }): Path<IdPath>,
    QueryParams(page): QueryParams<PageParams>,
) -> ApiResult<Json<Page<ValidationView>>> {
    caller.require(Permission::Read)?;
    let license = license_of(&state, &caller.environment, &id).await?;
    let validations = state.store.validations(&caller.environment, &license.id, &page.list_query()?).await?;
    Ok(Json(Page::from_store(validations, ValidationView::from)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct OfflineFileParams {
    /// Bind the file to this activated device.
    pub fingerprint: Option<String>,
}

#[utoipa::path(get, path = "/licenses/{id}/offline-file", tag = "licenses", params(OfflineFileParams), security(("token" = [])),
    responses((status = 200, body = OfflineFile), (status = 404, body = keyward_core::api::ErrorBody), (status = 409, body = keyward_core::api::ErrorBody)))]
pub async fn license_offline_file(
    State(state): State<AppState>,
    caller: Caller,
    Path(IdPath { id }): Path<IdPath>,
    QueryParams(params): QueryParams<OfflineFileParams>,
) -> ApiResult<Json<OfflineFile>> {
    caller.require(Permission::PreviewLicense)?;
    let fingerprint = params.fingerprint.as_deref().map(|f| field("fingerprint", Fingerprint::parse(f))).transpose()?;
    let license = license_of(&state, &caller.environment, &id).await?;
    let activations = state.store.activations(&caller.environment, &license.id).await?;
    let now = Utc::now();
    let facts = LicenseFacts {
        status: license.status,
        expires_at: license.expires_at,
        product_id: &license.product_id,
        activation_limit: license.activation_limit,
    };
    let refs: Vec<_> = activations.iter().map(Activation::as_ref).collect();
    let asked = ValidationRequest { fingerprint: fingerprint.as_ref().map(Fingerprint::as_str), ..Default::default() };
    let verdict = decide(&facts, &refs, &asked, state.grace(&caller.environment), now);
    let Verdict::Answer { code: ValidationCode::Valid, status, .. } = verdict else {
        let code = verdict.code();
        return Err(ApiError::new(StatusCode::CONFLICT, code.as_str(), code.detail()));
    };
    let summary = crate::views::license_summary(&license, status, 0, None);
    let fingerprint = fingerprint.as_ref().map(Fingerprint::as_str);
    let file = crate::routes::license_api::offline_file_of(
        &state,
        &caller.environment,
        &summary,
        &license.key,
        fingerprint,
        now,
    )?;
    Ok(Json(file))
}

#[utoipa::path(delete, path = "/activations/{id}", tag = "licenses", security(("token" = [])),
    responses((status = 204), (status = 404, body = keyward_core::api::ErrorBody)))]
pub async fn delete_activation(
    State(state): State<AppState>,
    caller: Caller,
    Path(IdPath { id }): Path<IdPath>,
) -> ApiResult<StatusCode> {
    caller.require(Permission::DeactivateDevice)?;
    let activation =
        state.store.activation(&caller.environment, &id).await?.ok_or_else(|| ApiError::not_found("activation"))?;
    let now = Utc::now();
    let activation_id = activation.id.clone();
    change(
        &state,
        &caller,
        &activation.license_id,
        "activation.deleted",
        Box::new(move |license, activations| {
            if !activations.iter().any(|a| a.id == activation_id) {
                return Err(keyward_core::Refusal::NotActivated);
            }
            let mut after = license.clone();
            after.updated_at = now;
            Ok(LicenseChange { license: after, activation: ActivationChange::Remove { id: activation_id } })
        }),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
