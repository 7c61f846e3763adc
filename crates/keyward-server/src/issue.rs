//! Issuing licenses: a draft from a generator and the vendor's overrides, then fresh keys,
//! inserted in one batch (shared by the API and `keyward generate`).

use crate::error::{ApiError, ApiResult};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use keyward_core::activation::{check_new_expiry, Validity, ValidityBasis};
use keyward_core::ids::{new_id, IdKind};
use keyward_core::values::{ActivationLimit, FeatureFlags, Metadata};
use keyward_core::LicenseStatus;
use keyward_store::{Audit, Generator, License, Product, ProductStatus, Store, StoreError};
use serde_json::Value;
use std::collections::HashSet;

fn field<T>(name: &str, parsed: Result<T, keyward_core::values::InvalidValue>) -> ApiResult<T> {
    parsed.map_err(|e| ApiError::invalid(name, e))
}

/// What a new license may set beyond its generator's defaults.
#[derive(Debug, Default)]
pub struct LicenseDraft {
    pub customer: Option<String>,
    pub activation_limit: Option<i64>,
    pub expires_at: Option<DateTime<Utc>>,
    pub feature_flags: Option<Value>,
    pub metadata: Option<Value>,
}

/// A license ready to insert but for its id and key, from a generator and the draft's overrides.
pub async fn draft_license(
    store: &dyn Store,
    environment: &str,
    generator: &Generator,
    draft: &LicenseDraft,
    now: DateTime<Utc>,
) -> ApiResult<(License, Product)> {
    let product =
        store.product(environment, &generator.product_id).await?.ok_or_else(|| ApiError::not_found("product"))?;
    if product.status == ProductStatus::Archived {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "PRODUCT_ARCHIVED",
            "licenses of an archived product cannot be created",
        ));
    }
    let customer = match &draft.customer {
        Some(id) => Some(
            store
                .customer(environment, id)
                .await?
                .ok_or_else(|| ApiError::unknown_reference("customer", "customer"))?,
        ),
        None => None,
    };
    let validity: Option<Validity> = generator.validity.map(Into::into);
    let expires_at = match draft.expires_at {
        Some(at) => Some(field("expires_at", check_new_expiry(at, now))?),
        None => validity.and_then(|v| {
            let creation = v.expiry_on(ValidityBasis::Creation, now, None);
            if customer.is_some() {
                v.expiry_on(ValidityBasis::Assignment, now, creation)
            } else {
                creation
            }
        }),
    };
    let license = License {
        id: String::new(),
        environment: environment.to_owned(),
        key: String::new(),
        product_id: product.id.clone(),
        generator_id: generator.id.clone(),
        customer_id: customer.as_ref().map(|c| c.id.clone()),
        status: if customer.is_some() { LicenseStatus::Assigned } else { LicenseStatus::Available },
        activation_limit: match draft.activation_limit {
            Some(n) => field("activation_limit", ActivationLimit::parse(n))?,
            None => generator.activation_limit,
        },
        activation_count: 0,
        expires_at,
        validity: generator.validity,
        feature_flags: match &draft.feature_flags {
            Some(flags) => field("feature_flags", FeatureFlags::parse(flags.clone()))?,
            None => generator.feature_flags.clone(),
        },
        metadata: match &draft.metadata {
            Some(metadata) => field("metadata", Metadata::parse(metadata.clone()))?,
            None => generator.metadata.clone(),
        },
        suspension_reason: None,
        ever_activated: false,
        created_at: now,
        updated_at: now,
        assigned_at: customer.as_ref().map(|_| now),
        first_activated_at: None,
        last_validated_at: None,
        validation_count: 0,
        product_name: product.name.clone(),
        customer: customer.map(|c| keyward_store::CustomerRef { id: c.id, name: c.name, email: c.email }),
    };
    Ok((license, product))
}

/// Inserts `count` licenses like `template` with fresh keys, drawing again on a key collision.
pub async fn insert_generated(
    store: &dyn Store,
    generator: &Generator,
    template: &License,
    count: usize,
    audit: &Audit,
) -> ApiResult<Vec<License>> {
    for _ in 0..5 {
        let keys = fresh_keys(generator, count);
        let licenses: Vec<License> =
            keys.into_iter().map(|key| License { id: new_id(IdKind::License), key, ..template.clone() }).collect();
        match store.insert_licenses(&licenses, audit).await {
            Ok(()) => return Ok(licenses),
            Err(StoreError::DuplicateKey) => continue,
            Err(err) => return Err(err.into()),
        }
    }
    Err(ApiError::new(
        StatusCode::CONFLICT,
        "KEY_SPACE_EXHAUSTED",
        "the generator's keys keep colliding; widen its format",
    ))
}

/// `count` distinct keys (the thread's CSPRNG is not `Send`, so it stays out of async code).
fn fresh_keys(generator: &Generator, count: usize) -> HashSet<String> {
    let mut rng = rand::thread_rng();
    let mut keys = HashSet::with_capacity(count);
    while keys.len() < count {
        keys.insert(generator.format.generate(&mut rng));
    }
    keys
}
