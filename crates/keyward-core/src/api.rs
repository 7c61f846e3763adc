//! The license API's request and answer bodies, shared by the server and the SDK so they cannot drift.

use crate::validation::{ActivationKind, ValidationCode};
use crate::LicenseStatus;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct ValidateRequest {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// A product id the key must belong to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    /// Echoed in the answer and covered by its signature, so an old answer cannot be replayed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct ActivateRequest {
    pub key: String,
    pub fingerprint: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct DeactivateRequest {
    pub key: String,
    pub fingerprint: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct OfflineFileRequest {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ProductRef {
    pub id: String,
    pub name: String,
}

/// A license as the license API shows it to the vendor's app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LicenseSummary {
    pub id: String,
    pub status: LicenseStatus,
    pub product: ProductRef,
    pub customer_email: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub activation_limit: i64,
    pub activation_count: i64,
    #[schema(value_type = Object)]
    pub feature_flags: serde_json::Value,
    pub last_validated_at: Option<DateTime<Utc>>,
    pub validation_count: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ActivationSummary {
    pub id: String,
    pub kind: ActivationKind,
    pub fingerprint: String,
    pub name: Option<String>,
    pub platform: Option<String>,
    pub hostname: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
}

/// `200` for every known key, valid or not; `404` with `LICENSE_NOT_FOUND` for an unknown one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ValidateAnswer {
    pub valid: bool,
    pub code: ValidationCode,
    pub detail: String,
    pub license: Option<LicenseSummary>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activation: Option<ActivationSummary>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_grace: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    pub ts: DateTime<Utc>,
}

/// `201` for a new activation, `200` when the device was already activated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ActivateAnswer {
    pub activation: ActivationSummary,
    pub license: LicenseSummary,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    pub ts: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DeactivateAnswer {
    pub deactivated: bool,
    pub license: LicenseSummary,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    pub ts: DateTime<Utc>,
}

/// Every error, everywhere: `{"error": {"code", "message", "field"?}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}
