//! The validation hot path's memory: license snapshots by key (unknown keys too), invalidated on
//! every change, so a validation costs no database round trip.

use dashmap::DashMap;
use keyward_store::{Activation, License, Store, StoreError};
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// A license as validation sees it, with the validations this node counted since it was loaded.
pub struct Snapshot {
    pub license: License,
    pub activations: Vec<Activation>,
    pub validations_since_load: AtomicI64,
}

/// How many unknown keys are remembered before the oldest memory of them is dropped.
const MAX_MISSING: usize = 100_000;

#[derive(Default)]
pub struct LicenseCache {
    /// `None` remembers that no license has this key, so a flood of wrong keys never reaches the database.
    entries: DashMap<(String, String), Option<Arc<Snapshot>>>,
    missing: AtomicUsize,
    /// Bumped by every invalidation; a load that raced one is not cached.
    epoch: AtomicU64,
}

impl LicenseCache {
    /// The license with this key, from memory when it can be.
    pub async fn get(
        &self,
        store: &dyn Store,
        environment: &str,
        key: &str,
    ) -> Result<Option<Arc<Snapshot>>, StoreError> {
        // The map is keyed by owned strings; a borrowed lookup would need a custom key type.
        let map_key = (environment.to_owned(), key.to_owned());
        if let Some(entry) = self.entries.get(&map_key) {
            return Ok(entry.clone());
        }
        let epoch = self.epoch.load(Ordering::Acquire);
        let loaded = store.license_snapshot(environment, key).await?.map(|(license, activations)| {
            Arc::new(Snapshot {
                license,
                activations,
                validations_since_load: AtomicI64::new(0),
            })
        });
        if self.epoch.load(Ordering::Acquire) == epoch {
            if loaded.is_none() && self.missing.fetch_add(1, Ordering::Relaxed) >= MAX_MISSING {
                self.forget_missing();
            }
            self.entries.insert(map_key, loaded.clone());
        }
        Ok(loaded)
    }

    /// Forgets one key's snapshot; the next validation reads it afresh.
    pub fn invalidate(&self, environment: &str, key: &str) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.entries.remove(&(environment.to_owned(), key.to_owned()));
    }

    /// Forgets every snapshot (a missed cross-node message could have made any of them stale).
    pub fn clear(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.entries.clear();
        self.missing.store(0, Ordering::Relaxed);
    }

    /// Forgets the keys remembered as unknown, after licenses were created in bulk elsewhere.
    pub fn forget_unknown(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.forget_missing();
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn forget_missing(&self) {
        self.entries.retain(|_, entry| entry.is_some());
        self.missing.store(0, Ordering::Relaxed);
    }
}
