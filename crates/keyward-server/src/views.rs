//! How records read back over the API.

use chrono::{DateTime, Duration, Utc};
use keyward_core::api::{ActivationSummary, LicenseSummary, ProductRef};
use keyward_core::key::KeyFormat;
use keyward_core::status::effective_status;
use keyward_core::validation::ActivationKind;
use keyward_core::LicenseStatus;
use keyward_store::{Activation, AuditEvent, Customer, Generator, License, Product, ProductStatus, ValidationRecord};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T: ToSchema> {
    pub data: Vec<T>,
    pub next_cursor: Option<String>,
    pub total: i64,
}

impl<T: ToSchema> Page<T> {
    pub fn from_store<R>(page: keyward_store::Page<R>, view: impl FnMut(R) -> T) -> Self {
        Page { data: page.data.into_iter().map(view).collect(), next_cursor: page.next_cursor, total: page.total }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProductView {
    pub id: String,
    pub name: String,
    pub status: ProductStatus,
    pub environment: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Product> for ProductView {
    fn from(p: Product) -> Self {
        ProductView {
            id: p.id,
            name: p.name,
            status: p.status,
            environment: p.environment,
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GeneratorView {
    pub id: String,
    pub product: String,
    pub name: String,
    pub format: KeyFormat,
    /// True when the SDK's `key_looks_valid` can check this generator's keys with no request.
    pub typo_check: bool,
    pub activation_limit: i64,
    pub validity_days: Option<i64>,
    pub validity_basis: Option<keyward_core::activation::ValidityBasis>,
    #[schema(value_type = Object)]
    pub feature_flags: Value,
    #[schema(value_type = Object)]
    pub metadata: Value,
    pub environment: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Generator> for GeneratorView {
    fn from(g: Generator) -> Self {
        GeneratorView {
            id: g.id,
            product: g.product_id,
            name: g.name,
            typo_check: g.format.works_with_typo_check(),
            format: g.format,
            activation_limit: g.activation_limit.get(),
            validity_days: g.validity.map(|v| v.days),
            validity_basis: g.validity.map(|v| v.basis),
            feature_flags: Value::Object(g.feature_flags.as_map().clone()),
            metadata: Value::Object(g.metadata.as_map().clone()),
            environment: g.environment,
            created_at: g.created_at,
            updated_at: g.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerView {
    pub id: String,
    pub name: String,
    pub email: String,
    #[schema(value_type = Object)]
    pub metadata: Value,
    pub environment: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Customer> for CustomerView {
    fn from(c: Customer) -> Self {
        CustomerView {
            id: c.id,
            name: c.name,
            email: c.email,
            metadata: c.metadata.into_value(),
            environment: c.environment,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerRefView {
    pub id: String,
    pub name: String,
    pub email: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LicenseView {
    pub id: String,
    pub key: String,
    pub status: LicenseStatus,
    pub product: ProductRef,
    pub customer: Option<CustomerRefView>,
    pub generator: String,
    pub activation_limit: i64,
    pub activation_count: i64,
    pub expires_at: Option<DateTime<Utc>>,
    pub in_grace: bool,
    #[schema(value_type = Object)]
    pub feature_flags: Value,
    #[schema(value_type = Object)]
    pub metadata: Value,
    pub suspension_reason: Option<String>,
    pub environment: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_validated_at: Option<DateTime<Utc>>,
    pub validation_count: i64,
}

impl LicenseView {
    /// The license as it reads at `now`: past expiry plus `grace` it is expired, whatever is stored.
    pub fn new(l: License, grace: Duration, now: DateTime<Utc>) -> Self {
        let (status, in_grace) = effective_status(l.status, l.expires_at, grace, now);
        LicenseView {
            id: l.id,
            key: l.key,
            status,
            product: ProductRef { id: l.product_id, name: l.product_name },
            customer: l.customer.map(|c| CustomerRefView { id: c.id, name: c.name, email: c.email }),
            generator: l.generator_id,
            activation_limit: l.activation_limit.get(),
            activation_count: l.activation_count,
            expires_at: l.expires_at,
            in_grace,
            feature_flags: Value::Object(l.feature_flags.as_map().clone()),
            metadata: l.metadata.into_value(),
            suspension_reason: l.suspension_reason,
            environment: l.environment,
            created_at: l.created_at,
            updated_at: l.updated_at,
            last_validated_at: l.last_validated_at,
            validation_count: l.validation_count,
        }
    }
}

/// The license as the license API shows it to the vendor's app.
pub fn license_summary(
    l: &License,
    status: LicenseStatus,
    extra_validations: i64,
    last_validated: Option<DateTime<Utc>>,
) -> LicenseSummary {
    LicenseSummary {
        id: l.id.clone(),
        status,
        product: ProductRef { id: l.product_id.clone(), name: l.product_name.clone() },
        customer_email: l.customer.as_ref().map(|c| c.email.clone()),
        expires_at: l.expires_at,
        activation_limit: l.activation_limit.get(),
        activation_count: l.activation_count,
        feature_flags: Value::Object(l.feature_flags.as_map().clone()),
        last_validated_at: last_validated.max(l.last_validated_at),
        validation_count: l.validation_count + extra_validations,
    }
}

pub fn activation_summary(a: &Activation) -> ActivationSummary {
    ActivationSummary {
        id: a.id.clone(),
        kind: a.kind,
        fingerprint: a.fingerprint.clone(),
        name: a.name.clone(),
        platform: a.platform.clone(),
        hostname: a.hostname.clone(),
        created_at: a.created_at,
        last_seen_at: a.last_seen_at,
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ActivationView {
    pub id: String,
    pub license: String,
    pub kind: ActivationKind,
    pub fingerprint: String,
    pub name: Option<String>,
    pub platform: Option<String>,
    pub hostname: Option<String>,
    pub ip: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
}

impl From<Activation> for ActivationView {
    fn from(a: Activation) -> Self {
        ActivationView {
            id: a.id,
            license: a.license_id,
            kind: a.kind,
            fingerprint: a.fingerprint,
            name: a.name,
            platform: a.platform,
            hostname: a.hostname,
            ip: a.ip,
            created_at: a.created_at,
            last_seen_at: a.last_seen_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ValidationView {
    pub at: DateTime<Utc>,
    pub code: keyward_core::ValidationCode,
    pub fingerprint: Option<String>,
    pub ip: Option<String>,
}

impl From<ValidationRecord> for ValidationView {
    fn from(v: ValidationRecord) -> Self {
        ValidationView { at: v.at, code: v.code, fingerprint: v.fingerprint, ip: v.ip }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEventView {
    pub id: String,
    pub actor: String,
    pub action: String,
    pub target_type: String,
    pub target_id: String,
    #[schema(value_type = Option<Object>)]
    pub before: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub after: Option<Value>,
    pub ip: Option<String>,
    pub environment: String,
    pub created_at: DateTime<Utc>,
}

impl From<AuditEvent> for AuditEventView {
    fn from(e: AuditEvent) -> Self {
        AuditEventView {
            id: e.id,
            actor: e.actor,
            action: e.action,
            target_type: e.target_type,
            target_id: e.target_id,
            before: e.before.map(redact_keys),
            after: e.after.map(redact_keys),
            ip: e.ip,
            environment: e.environment,
            created_at: e.created_at,
        }
    }
}

/// Audit snapshots of licenses carry the key; the log shows only its first characters.
fn redact_keys(mut value: Value) -> Value {
    if let Some(key) = value.get_mut("key") {
        if let Some(text) = key.as_str() {
            *key = Value::String(keyward_core::values::redact_key(text));
        }
    }
    value
}
