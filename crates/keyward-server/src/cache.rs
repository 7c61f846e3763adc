//! The validation hot path's memory: a compact snapshot of each license by key (unknown keys
//! too), invalidated on every change, so a validation costs no database round trip.

use chrono::{DateTime, Utc};
use dashmap::DashMap;
use keyward_core::api::{LicenseSummary, ProductRef};
use keyward_core::validation::LicenseFacts;
use keyward_core::values::ActivationLimit;
use keyward_core::LicenseStatus;
use keyward_store::{Activation, License, Store, StoreError};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// What validation needs of one license, and no more: a million of these must fit in a few
/// hundred MB, so products and feature flags are shared between licenses.
pub struct Snapshot {
    pub id: Box<str>,
    pub status: LicenseStatus,
    pub expires_at: Option<DateTime<Utc>>,
    pub product: Arc<ProductRef>,
    pub customer_email: Option<Box<str>>,
    pub activation_limit: ActivationLimit,
    pub activation_count: i64,
    pub feature_flags: Arc<Value>,
    pub last_validated_at: Option<DateTime<Utc>>,
    pub validation_count: i64,
    pub activations: Box<[Activation]>,
    /// Validations this node answered since the snapshot was loaded (not yet in `validation_count`).
    pub validations_since_load: AtomicI64,
}

impl Snapshot {
    pub fn facts(&self) -> LicenseFacts<'_> {
        LicenseFacts {
            status: self.status,
            expires_at: self.expires_at,
            product_id: &self.product.id,
            activation_limit: self.activation_limit,
        }
    }

    /// The license as an answer shows it, counting `extra` validations this node made since load.
    pub fn summary(&self, status: LicenseStatus, extra: i64, validated_at: Option<DateTime<Utc>>) -> LicenseSummary {
        LicenseSummary {
            id: self.id.to_string(),
            status,
            product: (*self.product).clone(),
            customer_email: self.customer_email.as_deref().map(str::to_owned),
            expires_at: self.expires_at,
            activation_limit: self.activation_limit.get(),
            activation_count: self.activation_count,
            feature_flags: (*self.feature_flags).clone(),
            last_validated_at: validated_at.max(self.last_validated_at),
            validation_count: self.validation_count + extra,
        }
    }
}

/// How many unknown keys are remembered before the memory of them is dropped.
const MAX_MISSING: usize = 100_000;
/// How many distinct products or flag sets are shared before new ones are simply copied.
const MAX_SHARED: usize = 10_000;

/// Keys by environment; `None` remembers that no license has the key, so a flood of wrong keys
/// never reaches the database.
type Entries = DashMap<Box<str>, Option<Arc<Snapshot>>>;

pub struct LicenseCache {
    by_environment: HashMap<String, Entries>,
    products: DashMap<(String, String), Arc<ProductRef>>,
    flags: DashMap<String, Arc<Value>>,
    missing: AtomicUsize,
    /// Bumped by every invalidation; a load that raced one is not cached.
    epoch: AtomicU64,
}

impl LicenseCache {
    pub fn new(environments: &[String]) -> Self {
        LicenseCache {
            by_environment: environments.iter().map(|env| (env.clone(), DashMap::new())).collect(),
            products: DashMap::new(),
            flags: DashMap::new(),
            missing: AtomicUsize::new(0),
            epoch: AtomicU64::new(0),
        }
    }

    /// The license with this key, from memory when it can be.
    pub async fn get(
        &self,
        store: &dyn Store,
        environment: &str,
        key: &str,
    ) -> Result<Option<Arc<Snapshot>>, StoreError> {
        let Some(entries) = self.by_environment.get(environment) else { return Ok(None) };
        if let Some(entry) = entries.get(key) {
            return Ok(entry.clone());
        }
        let epoch = self.epoch.load(Ordering::Acquire);
        let loaded = store
            .license_snapshot(environment, key)
            .await?
            .map(|(license, activations)| Arc::new(self.snapshot(license, activations)));
        if loaded.is_none() && self.missing.fetch_add(1, Ordering::Relaxed) >= MAX_MISSING {
            self.forget_missing();
        }
        self.remember(entries, key.into(), loaded.clone(), epoch);
        Ok(loaded)
    }

    /// Caches what was read since `epoch`, unless an invalidation came in between. The epoch is
    /// checked under the shard's lock and `invalidate` bumps it before removing, so a snapshot
    /// read before a change can never be seen by a request that starts after the change.
    fn remember(&self, entries: &Entries, key: Box<str>, loaded: Option<Arc<Snapshot>>, epoch: u64) -> bool {
        match entries.entry(key) {
            dashmap::Entry::Occupied(_) => true,
            dashmap::Entry::Vacant(vacant) if self.epoch.load(Ordering::Acquire) == epoch => {
                vacant.insert(loaded);
                true
            }
            dashmap::Entry::Vacant(_) => false,
        }
    }

    /// Loads every license of `environment` in pages, so that validations after start-up never
    /// wait on the database. Entries raced by an invalidation are left to load lazily.
    pub async fn warm(&self, store: &dyn Store, environment: &str) -> Result<usize, StoreError> {
        self.warm_in_pages(store, environment, 5_000).await
    }

    async fn warm_in_pages(&self, store: &dyn Store, environment: &str, page_size: u32) -> Result<usize, StoreError> {
        let Some(entries) = self.by_environment.get(environment) else { return Ok(0) };
        let mut after: Option<String> = None;
        let mut loaded = 0;
        loop {
            let epoch = self.epoch.load(Ordering::Acquire);
            let page = store.license_snapshots(environment, after.as_deref(), page_size).await?;
            let full = page.len() == page_size as usize;
            let Some((last, _)) = page.last() else { return Ok(loaded) };
            after = Some(last.key.clone());
            for (license, activations) in page {
                let key: Box<str> = license.key.as_str().into();
                if self.remember(entries, key, Some(Arc::new(self.snapshot(license, activations))), epoch) {
                    loaded += 1;
                }
            }
            if !full {
                return Ok(loaded);
            }
        }
    }

    fn snapshot(&self, license: License, activations: Vec<Activation>) -> Snapshot {
        let product_key = (license.product_id, license.product_name);
        let product = match self.products.get(&product_key) {
            Some(shared) => shared.clone(),
            None => {
                let product = Arc::new(ProductRef { id: product_key.0.clone(), name: product_key.1.clone() });
                if self.products.len() < MAX_SHARED {
                    self.products.insert(product_key, product.clone());
                }
                product
            }
        };
        let flags_text = serde_json::to_string(license.feature_flags.as_map()).unwrap_or_default();
        let feature_flags = match self.flags.get(&flags_text) {
            Some(shared) => shared.clone(),
            None => {
                let flags = Arc::new(Value::Object(license.feature_flags.as_map().clone()));
                if self.flags.len() < MAX_SHARED {
                    self.flags.insert(flags_text, flags.clone());
                }
                flags
            }
        };
        Snapshot {
            id: license.id.into(),
            status: license.status,
            expires_at: license.expires_at,
            product,
            customer_email: license.customer.map(|c| c.email.into()),
            activation_limit: license.activation_limit,
            activation_count: license.activation_count,
            feature_flags,
            last_validated_at: license.last_validated_at,
            validation_count: license.validation_count,
            activations: activations.into(),
            validations_since_load: AtomicI64::new(0),
        }
    }

    /// Forgets one key's snapshot; the next validation reads it afresh.
    pub fn invalidate(&self, environment: &str, key: &str) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        if let Some(entries) = self.by_environment.get(environment) {
            entries.remove(key);
        }
    }

    /// Forgets every snapshot (a missed cross-node message could have made any of them stale).
    pub fn clear(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.by_environment.values().for_each(DashMap::clear);
        self.missing.store(0, Ordering::Relaxed);
    }

    /// Forgets the keys remembered as unknown, after licenses were created in bulk elsewhere.
    pub fn forget_unknown(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.forget_missing();
    }

    pub fn len(&self) -> usize {
        self.by_environment.values().map(DashMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn forget_missing(&self) {
        for entries in self.by_environment.values() {
            entries.retain(|_, entry| entry.is_some());
        }
        self.missing.store(0, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyward_store::testing;

    #[tokio::test]
    async fn warming_loads_every_license_across_pages_and_invalidation_forgets() {
        let (store, _dir) = testing::fresh_sqlite().await;
        let product = testing::product("production", "Acme");
        let generator = testing::generator(&product);
        store.create_product(&product, &testing::audit("product.created")).await.unwrap();
        store.create_generator(&generator, &testing::audit("generator.created")).await.unwrap();
        let licenses: Vec<_> =
            (0..23).map(|n| testing::license(&generator, &product, &format!("KEY-{n:03}"))).collect();
        store.insert_licenses(&licenses, &testing::audit("license.created")).await.unwrap();
        let cache = LicenseCache::new(&["production".to_owned(), "staging".to_owned()]);

        assert_eq!(cache.warm_in_pages(&store, "production", 5).await.unwrap(), 23);
        assert_eq!(cache.len(), 23);
        assert_eq!(cache.warm(&store, "staging").await.unwrap(), 0);
        let snapshot = cache.get(&store, "production", "KEY-007").await.unwrap().unwrap();
        assert_eq!((&*snapshot.id, &*snapshot.product.name), (licenses[7].id.as_str(), "Acme"));
        cache.invalidate("production", "KEY-007");
        assert_eq!(cache.len(), 22);
        // unknown keys are remembered too, and forgotten after bulk creation elsewhere
        assert!(cache.get(&store, "production", "KEY-999").await.unwrap().is_none());
        assert_eq!(cache.len(), 23);
        cache.forget_unknown();
        assert_eq!(cache.len(), 22);
    }

    #[tokio::test]
    async fn a_load_that_raced_an_invalidation_is_not_kept() {
        let cache = LicenseCache::new(&["production".to_owned()]);
        let entries = cache.by_environment.get("production").unwrap();
        let epoch = cache.epoch.load(Ordering::Acquire);
        cache.invalidate("production", "KEY-1");
        assert!(!cache.remember(entries, "KEY-1".into(), None, epoch), "read before the change");
        assert!(cache.is_empty());
        let epoch = cache.epoch.load(Ordering::Acquire);
        assert!(cache.remember(entries, "KEY-1".into(), None, epoch));
        assert_eq!(cache.len(), 1);
    }
}
