//! The records the store keeps, in keyward-core's types.

use chrono::{DateTime, Utc};
use keyward_core::activation::Validity;
use keyward_core::key::KeyFormat;
use keyward_core::role::Role;
use keyward_core::validation::{ActivationKind, ActivationRef, ValidationCode};
use keyward_core::values::{ActivationLimit, FeatureFlags, Metadata};
use keyward_core::LicenseStatus;
use serde::{Deserialize, Serialize};

/// Who made a write and from where, and what it was (`license.suspended`); every write carries one.
#[derive(Debug, Clone)]
pub struct Audit {
    pub actor: String,
    pub ip: Option<String>,
    pub action: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    pub grace_period_days: i64,
    pub offline_file_lifetime_secs: i64,
    /// Validations a minute for one key, per node.
    pub validate_rate_per_key: i64,
    /// Requests a minute from one IP for keys that are not found (key enumeration).
    pub not_found_rate_per_ip: i64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            grace_period_days: 0,
            offline_file_lifetime_secs: 86_400,
            validate_rate_per_key: 600,
            not_found_rate_per_ip: 120,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiToken {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub environment: String,
    /// SHA-256 (hex) of the whole token; the token itself is shown once and never stored.
    pub token_hash: String,
    /// The token's first characters, to recognise it in lists.
    pub prefix: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProductStatus {
    Active,
    Archived,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Product {
    pub id: String,
    pub environment: String,
    pub name: String,
    pub status: ProductStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Generator {
    pub id: String,
    pub environment: String,
    pub product_id: String,
    pub name: String,
    pub format: KeyFormat,
    pub activation_limit: ActivationLimit,
    pub validity: Option<ValidityRecord>,
    pub feature_flags: FeatureFlags,
    pub metadata: Metadata,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// `Validity` as stored (core's type has no serde on purpose: it is parsed, not deserialised).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidityRecord {
    pub days: i64,
    pub basis: keyward_core::activation::ValidityBasis,
}

impl From<Validity> for ValidityRecord {
    fn from(v: Validity) -> Self {
        ValidityRecord { days: v.days, basis: v.basis }
    }
}

impl From<ValidityRecord> for Validity {
    fn from(v: ValidityRecord) -> Self {
        Validity { days: v.days, basis: v.basis }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Customer {
    pub id: String,
    pub environment: String,
    pub name: String,
    /// Lower-cased, unique per environment.
    pub email: String,
    pub metadata: Metadata,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A customer as a license shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerRef {
    pub id: String,
    pub name: String,
    pub email: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct License {
    pub id: String,
    pub environment: String,
    pub key: String,
    pub product_id: String,
    pub generator_id: String,
    pub customer_id: Option<String>,
    /// As stored; the status a reader sees is core's `effective_status` of this.
    pub status: LicenseStatus,
    pub activation_limit: ActivationLimit,
    /// Kept equal to the number of activations by the store.
    pub activation_count: i64,
    pub expires_at: Option<DateTime<Utc>>,
    /// Copied from the generator at creation, for expiry from assignment or first activation.
    pub validity: Option<ValidityRecord>,
    pub feature_flags: FeatureFlags,
    pub metadata: Metadata,
    pub suspension_reason: Option<String>,
    pub ever_activated: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub assigned_at: Option<DateTime<Utc>>,
    pub first_activated_at: Option<DateTime<Utc>>,
    pub last_validated_at: Option<DateTime<Utc>>,
    pub validation_count: i64,
    /// Joined on reads; ignored on writes.
    pub product_name: String,
    /// Joined on reads; ignored on writes.
    pub customer: Option<CustomerRef>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Activation {
    pub id: String,
    pub license_id: String,
    pub kind: ActivationKind,
    /// The device fingerprint, or the domain of a site.
    pub fingerprint: String,
    pub name: Option<String>,
    pub platform: Option<String>,
    pub hostname: Option<String>,
    pub ip: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
}

impl Activation {
    pub fn as_ref(&self) -> ActivationRef<'_> {
        ActivationRef { kind: self.kind, fingerprint: &self.fingerprint }
    }
}

/// What a `LicenseEdit` returns: the license row to write, and what happens to activations.
#[derive(Debug, Clone)]
pub struct LicenseChange {
    pub license: License,
    pub activation: ActivationChange,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ActivationChange {
    None,
    Add(Activation),
    /// A repeated activation: only `last_seen_at` moves.
    Touch {
        id: String,
        at: DateTime<Utc>,
    },
    Remove {
        id: String,
    },
    /// Revocation frees every slot at once.
    RemoveAll,
}

/// The outcome of `change_license`.
#[derive(Debug, Clone)]
pub struct LicenseChanged {
    pub before: License,
    pub after: License,
    pub activations: Vec<Activation>,
    /// The change applied to activations, echoed (the server answers 201 for `Add`, 200 for `Touch`).
    pub activation: ActivationChange,
}

/// One validation, recorded behind the answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidationRecord {
    pub environment: String,
    pub license_id: String,
    pub at: DateTime<Utc>,
    pub code: ValidationCode,
    pub fingerprint: Option<String>,
    pub ip: Option<String>,
}

/// Validations of one license counted without their history rows (the history queue was full).
#[derive(Debug, Clone, PartialEq)]
pub struct ValidationCount {
    pub environment: String,
    pub license_id: String,
    pub count: i64,
    pub last_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub id: String,
    pub environment: String,
    pub actor: String,
    pub action: String,
    pub target_type: String,
    pub target_id: String,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
    pub ip: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SigningKeyRecord {
    pub kid: String,
    pub environment: String,
    /// `current` or `retired`.
    pub status: String,
    /// Base64 (standard) of the 32 raw public key bytes.
    pub public_key: String,
    /// The private key sealed with the master key (the server's format; opaque here).
    pub sealed_private_key: String,
    pub created_at: DateTime<Utc>,
}

/// Paging for every list: newest first unless a sort says otherwise.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub q: Option<String>,
    pub limit: u32,
    pub cursor: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LicenseSort {
    Key,
    Product,
    Customer,
    Status,
    ActivationLimit,
    ExpiresAt,
    #[default]
    CreatedAt,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    Asc,
    #[default]
    Desc,
}

#[derive(Debug, Clone)]
pub struct LicenseQuery {
    /// Key substring, customer email or name, email domain, product name; case-insensitive.
    pub q: Option<String>,
    pub product: Option<String>,
    /// Effective status: `expired` includes licenses past `expired_before` not yet swept.
    pub status: Option<keyward_core::LicenseStatus>,
    pub customer: Option<String>,
    pub sort: LicenseSort,
    pub order: Order,
    pub limit: u32,
    pub cursor: Option<String>,
    /// Expiry plus grace before this instant reads as expired (now minus the grace period).
    pub expired_before: DateTime<Utc>,
}

#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub target_id: Option<String>,
    pub action: Option<String>,
    pub limit: u32,
    pub cursor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub next_cursor: Option<String>,
    pub total: i64,
}
