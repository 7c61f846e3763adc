//! Tokens, the audit log, settings and signing keys.

use super::{limit, QueryParams};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Caller, JsonBody};
use crate::keys::PublicKey;
use crate::state::AppState;
use crate::views::{AuditEventView, Page};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use keyward_core::role::{Permission, Role};
use keyward_core::values::parse_name;
use keyward_store::{AuditQuery, Settings};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateToken {
    pub name: String,
    pub role: Role,
    /// The environment the token is bound to; the caller's by default.
    pub environment: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenCreated {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub environment: String,
    /// Shown once; keyward keeps only its hash.
    pub token: String,
    pub prefix: String,
    pub created_at: DateTime<Utc>,
}

#[utoipa::path(post, path = "/tokens", tag = "tokens", request_body = CreateToken, security(("token" = [])),
    responses((status = 201, body = TokenCreated), (status = 403, body = keyward_core::api::ErrorBody), (status = 422, body = keyward_core::api::ErrorBody)))]
pub async fn create_token(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<CreateToken>,
) -> ApiResult<(StatusCode, Json<TokenCreated>)> {
    caller.require(Permission::ManageTokens)?;
    let name = parse_name(&body.name).map_err(|e| ApiError::invalid("name", e))?;
    let environment = body.environment.unwrap_or_else(|| caller.environment.clone());
    if !state.has_environment(&environment) {
        return Err(ApiError::invalid("environment", format!("`{environment}` is not an environment")));
    }
    let (token, secret) = crate::tokens::create(
        state.store.as_ref(),
        &name,
        body.role,
        &environment,
        None,
        &caller.audit("token.created"),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(TokenCreated {
            id: token.id,
            name: token.name,
            role: token.role,
            environment: token.environment,
            token: secret,
            prefix: token.prefix,
            created_at: token.created_at,
        }),
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct AuditParams {
    /// Events about this record only.
    pub target: Option<String>,
    /// Events of this kind only (`license.revoked`).
    pub action: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

#[utoipa::path(get, path = "/audit-events", tag = "audit", params(AuditParams), security(("token" = [])),
    responses((status = 200, body = Page<AuditEventView>, description = "newest first")))]
pub async fn list_audit_events(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(params): QueryParams<AuditParams>,
) -> ApiResult<Json<Page<AuditEventView>>> {
    caller.require(Permission::Read)?;
    let query = AuditQuery {
        target_id: params.target,
        action: params.action,
        limit: limit(params.limit)?,
        cursor: params.cursor,
    };
    let events = state.store.audit_events(&caller.environment, &query).await?;
    Ok(Json(Page::from_store(events, AuditEventView::from)))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SettingsView {
    /// Days a license keeps validating after its expiry, with `in_grace: true`.
    pub grace_period_days: i64,
    /// Seconds an offline file stays valid.
    pub offline_file_lifetime_secs: i64,
    pub validate_rate_per_key: i64,
    pub not_found_rate_per_ip: i64,
}

impl From<Settings> for SettingsView {
    fn from(s: Settings) -> Self {
        SettingsView {
            grace_period_days: s.grace_period_days,
            offline_file_lifetime_secs: s.offline_file_lifetime_secs,
            validate_rate_per_key: s.validate_rate_per_key,
            not_found_rate_per_ip: s.not_found_rate_per_ip,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSettings {
    pub grace_period_days: Option<i64>,
    pub offline_file_lifetime_secs: Option<i64>,
    pub validate_rate_per_key: Option<i64>,
    pub not_found_rate_per_ip: Option<i64>,
}

#[utoipa::path(get, path = "/settings", tag = "settings", security(("token" = [])), responses((status = 200, body = SettingsView)))]
pub async fn get_settings(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<SettingsView>> {
    caller.require(Permission::Read)?;
    Ok(Json(state.store.settings(&caller.environment).await?.into()))
}

fn in_range(name: &str, value: Option<i64>, range: std::ops::RangeInclusive<i64>, current: i64) -> ApiResult<i64> {
    match value {
        None => Ok(current),
        Some(v) if range.contains(&v) => Ok(v),
        Some(_) => Err(ApiError::invalid(name, format!("must be between {} and {}", range.start(), range.end()))),
    }
}

#[utoipa::path(patch, path = "/settings", tag = "settings", request_body = UpdateSettings, security(("token" = [])),
    responses((status = 200, body = SettingsView), (status = 422, body = keyward_core::api::ErrorBody)))]
pub async fn update_settings(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<UpdateSettings>,
) -> ApiResult<Json<SettingsView>> {
    caller.require(Permission::ManageEnvironment)?;
    let current = state.store.settings(&caller.environment).await?;
    let settings = Settings {
        grace_period_days: in_range("grace_period_days", body.grace_period_days, 0..=365, current.grace_period_days)?,
        offline_file_lifetime_secs: in_range(
            "offline_file_lifetime_secs",
            body.offline_file_lifetime_secs,
            60..=31_536_000,
            current.offline_file_lifetime_secs,
        )?,
        validate_rate_per_key: in_range(
            "validate_rate_per_key",
            body.validate_rate_per_key,
            1..=1_000_000,
            current.validate_rate_per_key,
        )?,
        not_found_rate_per_ip: in_range(
            "not_found_rate_per_ip",
            body.not_found_rate_per_ip,
            1..=1_000_000,
            current.not_found_rate_per_ip,
        )?,
    };
    state.store.put_settings(&caller.environment, &settings, &caller.audit("settings.updated")).await?;
    state.set_settings(&caller.environment, settings.clone());
    Ok(Json(settings.into()))
}

#[utoipa::path(post, path = "/signing-keys/rotate", tag = "signing keys", security(("token" = [])),
    responses((status = 201, body = PublicKey, description = "the new current key"), (status = 403, body = keyward_core::api::ErrorBody)))]
pub async fn rotate_signing_key(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<(StatusCode, Json<PublicKey>)> {
    caller.require(Permission::ManageTokens)?;
    let key = state
        .keys
        .rotate(state.store.as_ref(), &caller.environment, &caller.audit("signing_key.rotated"))
        .await
        .map_err(|err| {
            tracing::error!(error = %err, "signing key rotation failed");
            ApiError::internal()
        })?;
    Ok((StatusCode::CREATED, Json(key)))
}
