//! The validation hot path's memory: a compact snapshot of each license by a keyed hash of its
//! key (unknown keys too), invalidated on every change, so a validation costs no database round
//! trip.

use chrono::{DateTime, Utc};
use dashmap::DashMap;
use keyward_core::api::{LicenseSummary, ProductRef};
use keyward_core::validation::LicenseFacts;
use keyward_core::values::ActivationLimit;
use keyward_core::LicenseStatus;
use keyward_store::{Activation, License, Store, StoreError};
use serde_json::Value;
use siphasher::sip128::SipHasher13;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// What validation needs of one license, and no more: a million of these must fit in a few
/// hundred MB, so the id is kept as bytes and products, flag sets and emails are shared.
pub struct Snapshot {
    id: LicenseId,
    pub status: LicenseStatus,
    pub expires_at: Option<DateTime<Utc>>,
    pub product: Arc<ProductRef>,
    pub customer_email: Option<Arc<str>>,
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
    pub fn id(&self) -> String {
        self.id.text()
    }

    /// Every validation this snapshot knows of: the count it was loaded with and this node's since.
    fn validations(&self) -> i64 {
        self.validation_count + self.validations_since_load.load(Ordering::Relaxed)
    }

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
            id: self.id(),
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

/// A license id in 16 bytes when it has keyward's own shape (`lic_` and 32 lower-case hex
/// digits); any other id (say, an imported one) is kept as written.
#[derive(Clone, PartialEq, Eq, Hash)]
enum LicenseId {
    Own([u8; 16]),
    Other(Box<str>),
}

impl LicenseId {
    const PREFIX: &'static str = "lic_";

    fn new(id: String) -> Self {
        let mut bytes = [0; 16];
        match id.strip_prefix(Self::PREFIX) {
            Some(digits)
                if digits.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
                    && hex::decode_to_slice(digits, &mut bytes).is_ok() =>
            {
                LicenseId::Own(bytes)
            }
            _ => LicenseId::Other(id.into()),
        }
    }

    /// The id as written: one allocation, made twice per validation (its answer, its record).
    fn text(&self) -> String {
        match self {
            LicenseId::Own(bytes) => {
                let mut digits = [0; 32];
                hex::encode_to_slice(bytes, &mut digits).expect("32 digits for 16 bytes");
                let mut id = String::with_capacity(Self::PREFIX.len() + digits.len());
                id.push_str(Self::PREFIX);
                id.push_str(std::str::from_utf8(&digits).expect("hex digits are ASCII"));
                id
            }
            LicenseId::Other(id) => id.to_string(),
        }
    }
}

/// A license key as the cache holds it: 128 bits of SipHash under a secret drawn at start, so a
/// million keys cost no strings, and no one can choose two keys that land on one entry. Two
/// halves, not a `u128`, whose 16-byte alignment padded each map entry from 24 bytes to 32.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct KeyHash([u64; 2]);

struct KeyHasher(SipHasher13);

impl KeyHasher {
    fn new() -> Self {
        KeyHasher(SipHasher13::new_with_key(&rand::random()))
    }

    fn hash(&self, key: &str) -> KeyHash {
        let hash = self.0.hash(key.as_bytes());
        KeyHash([hash.h1, hash.h2])
    }
}

/// Values many licenses hold alike, each held once: up to `MAX_SHARED` of them, then copied.
struct Shared<K, V>(DashMap<K, V>);

impl<K: Eq + Hash, V: Clone> Shared<K, V> {
    fn new() -> Self {
        Shared(DashMap::new())
    }

    fn get_or(&self, key: K, make: impl FnOnce(&K) -> V) -> V {
        if let Some(shared) = self.0.get(&key) {
            return shared.clone();
        }
        let value = make(&key);
        if self.0.len() < MAX_SHARED {
            self.0.insert(key, value.clone());
        }
        value
    }
}

/// How many unknown keys are remembered before the memory of them is dropped.
const MAX_MISSING: usize = 100_000;
/// How many distinct products, flag sets or emails are shared before new ones are simply copied.
const MAX_SHARED: usize = 10_000;
/// How many forgotten snapshots are kept for their counts before all of them are dropped.
const MAX_FORGOTTEN: usize = 100_000;

/// Keys by environment; `None` remembers that no license has the key, so a flood of wrong keys
/// never reaches the database.
type Entries = DashMap<KeyHash, Option<Arc<Snapshot>>>;

pub struct LicenseCache {
    by_environment: HashMap<String, Entries>,
    keys: KeyHasher,
    products: Shared<(String, String), Arc<ProductRef>>,
    flags: Shared<String, Arc<Value>>,
    emails: Shared<String, Arc<str>>,
    missing: AtomicUsize,
    /// Snapshots forgotten by a change, by license, until the license is loaded again: that load
    /// counts at least their validations, some of which may still be queued for writing, so an
    /// answer's count never goes back. Kept even when they counted none yet: a validation that
    /// had the snapshot before the change may count on it after.
    forgotten: DashMap<LicenseId, Arc<Snapshot>>,
    /// Bumped by every invalidation; a load that raced one is not cached.
    epoch: AtomicU64,
}

impl LicenseCache {
    pub fn new(environments: &[String]) -> Self {
        LicenseCache {
            by_environment: environments.iter().map(|env| (env.clone(), DashMap::new())).collect(),
            keys: KeyHasher::new(),
            products: Shared::new(),
            flags: Shared::new(),
            emails: Shared::new(),
            missing: AtomicUsize::new(0),
            forgotten: DashMap::new(),
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
        let hash = self.keys.hash(key);
        if let Some(entry) = entries.get(&hash) {
            return Ok(entry.clone());
        }
        let epoch = self.epoch.load(Ordering::Acquire);
        let Some((license, activations)) = store.license_snapshot(environment, key).await? else {
            if self.missing.fetch_add(1, Ordering::Relaxed) >= MAX_MISSING {
                self.forget_missing();
            }
            self.remember(entries, hash, None, epoch);
            return Ok(None);
        };
        let mut snapshot = self.snapshot(license, activations);
        let before = self.forgotten.get(&snapshot.id).map(|kept| Arc::clone(kept.value()));
        if let Some(before) = &before {
            // Both counts are at most the true one, so the larger never counts a validation twice.
            snapshot.validation_count = snapshot.validation_count.max(before.validations());
        }
        let loaded = Arc::new(snapshot);
        if self.remember(entries, hash, Some(loaded.clone()), epoch) {
            // Carried into the cached snapshot; a later change forgets that one in turn.
            if let Some(before) = before {
                self.forgotten.remove_if(&loaded.id, |_, kept| Arc::ptr_eq(kept, &before));
            }
        } else {
            // Not cached, and so never forgotten by a change: this validation counts on it, and
            // the next load must see that, as it would a forgotten one's.
            self.forget(loaded.clone());
        }
        Ok(Some(loaded))
    }

    /// Caches what was read since `epoch`, unless an invalidation came in between. The epoch is
    /// checked under the shard's lock and `invalidate` bumps it before removing, so a snapshot
    /// read before a change can never be seen by a request that starts after the change.
    fn remember(&self, entries: &Entries, key: KeyHash, loaded: Option<Arc<Snapshot>>, epoch: u64) -> bool {
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
                let key = self.keys.hash(&license.key);
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
        let product = self.products.get_or((license.product_id, license.product_name), |(id, name)| {
            Arc::new(ProductRef { id: id.clone(), name: name.clone() })
        });
        let flags = license.feature_flags.as_map();
        let feature_flags = self
            .flags
            .get_or(serde_json::to_string(flags).unwrap_or_default(), |_| Arc::new(Value::Object(flags.clone())));
        let customer_email = license.customer.map(|c| self.emails.get_or(c.email, |email| email.as_str().into()));
        Snapshot {
            id: LicenseId::new(license.id),
            status: license.status,
            expires_at: license.expires_at,
            product,
            customer_email,
            activation_limit: license.activation_limit,
            activation_count: license.activation_count,
            feature_flags,
            last_validated_at: license.last_validated_at,
            validation_count: license.validation_count,
            activations: activations.into(),
            validations_since_load: AtomicI64::new(0),
        }
    }

    /// Forgets one key's snapshot; the next validation reads it afresh, counting at least the
    /// validations this one did.
    pub fn invalidate(&self, environment: &str, key: &str) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        let Some(entries) = self.by_environment.get(environment) else { return };
        if let Some((_, Some(before))) = entries.remove(&self.keys.hash(key)) {
            self.forget(before);
        }
    }

    /// Keeps a snapshot no longer cached for its counts, until its license is loaded again.
    fn forget(&self, snapshot: Arc<Snapshot>) {
        if self.forgotten.len() >= MAX_FORGOTTEN {
            self.forgotten.clear();
        }
        self.forgotten.insert(snapshot.id.clone(), snapshot);
    }

    /// Forgets every snapshot (a missed cross-node message could have made any of them stale),
    /// and the counts of forgotten ones: answers may count fewer until the queued ones are written.
    pub fn clear(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.by_environment.values().for_each(DashMap::clear);
        self.forgotten.clear();
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
        assert_eq!((snapshot.id(), &*snapshot.product.name), (licenses[7].id.clone(), "Acme"));
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
        assert!(!cache.remember(entries, cache.keys.hash("KEY-1"), None, epoch), "read before the change");
        assert!(cache.is_empty());
        let epoch = cache.epoch.load(Ordering::Acquire);
        assert!(cache.remember(entries, cache.keys.hash("KEY-1"), None, epoch));
        assert_eq!(cache.len(), 1);
    }

    #[tokio::test]
    async fn a_reloaded_snapshot_counts_the_validations_of_the_one_it_replaced() {
        let (store, _dir, license) = testing::sqlite_with_license("KEY-1").await;
        let cache = LicenseCache::new(&["production".to_owned()]);
        let validate =
            |snapshot: &Snapshot, times: i64| snapshot.validations_since_load.fetch_add(times, Ordering::Relaxed);

        // five validations still queued when a change forgets the snapshot, two of them by
        // requests that had the snapshot before the change and count on it after
        let first = cache.get(&store, "production", "KEY-1").await.unwrap().unwrap();
        validate(&first, 3);
        cache.invalidate("production", "KEY-1");
        validate(&first, 2);
        let reloaded = cache.get(&store, "production", "KEY-1").await.unwrap().unwrap();
        assert_eq!(reloaded.validation_count, 5, "not the stored 0");
        assert!(cache.forgotten.is_empty(), "carried into the cached snapshot");
        // forgotten twice before the write (a node's own announcement): still counted
        validate(&reloaded, 1);
        cache.invalidate("production", "KEY-1");
        cache.invalidate("production", "KEY-1");
        assert_eq!(cache.get(&store, "production", "KEY-1").await.unwrap().unwrap().validation_count, 6);
        // once written, with two more from another node, the stored count is the larger
        let records: Vec<_> = (0..8)
            .map(|_| keyward_store::ValidationRecord {
                environment: "production".into(),
                license_id: license.id.clone(),
                at: Utc::now(),
                code: keyward_core::ValidationCode::Valid,
                fingerprint: None,
                ip: None,
            })
            .collect();
        store.record_validations(&records).await.unwrap();
        cache.invalidate("production", "KEY-1");
        assert_eq!(cache.get(&store, "production", "KEY-1").await.unwrap().unwrap().validation_count, 8);
    }

    /// The sizes docs/deployment.md's ~230 bytes a cached license is made of.
    #[test]
    fn a_cached_license_is_a_snapshot_and_an_unpadded_map_entry() {
        assert_eq!(std::mem::size_of::<Snapshot>(), 136);
        assert_eq!(std::mem::size_of::<(KeyHash, Option<Arc<Snapshot>>)>(), 24, "a map entry, unpadded");
    }

    #[tokio::test]
    async fn a_snapshot_not_cached_because_a_change_raced_its_load_still_counts() {
        let (store, _dir, _) = testing::sqlite_with_license("KEY-1").await;
        let mut raced = 0;
        for _ in 0..20 {
            let cache = LicenseCache::new(&["production".to_owned()]);
            // Another license's change lands while this load waits on the database.
            let (loaded, ()) = tokio::join!(cache.get(&store, "production", "KEY-1"), async {
                cache.invalidate("production", "KEY-2")
            });
            let loaded = loaded.unwrap().unwrap();
            raced += usize::from(cache.is_empty());
            loaded.validations_since_load.fetch_add(4, Ordering::Relaxed);
            let next = cache.get(&store, "production", "KEY-1").await.unwrap().unwrap();
            assert_eq!(next.validations(), 4, "cached or not, the next answer counts the four");
        }
        assert!(raced > 0, "the change never landed during a load");
    }

    #[test]
    fn license_ids_come_back_as_they_were_written() {
        let own = keyward_core::ids::new_id(keyward_core::ids::IdKind::License);
        assert!(matches!(LicenseId::new(own.clone()), LicenseId::Own(_)));
        assert_eq!(LicenseId::new(own.clone()).text(), own);
        for other in ["lic_019AD3F0C0FFEE00000000000000000A", "lic_123", "imported-7", "", "lic_"] {
            assert!(matches!(LicenseId::new(other.to_owned()), LicenseId::Other(_)), "{other}");
            assert_eq!(LicenseId::new(other.to_owned()).text(), other);
        }
    }

    #[test]
    fn keys_hash_alike_only_when_they_are_alike() {
        let cache = LicenseCache::new(&[]);
        assert!(cache.keys.hash("ABCD-1234") == cache.keys.hash("ABCD-1234"));
        assert!(cache.keys.hash("ABCD-1234") != cache.keys.hash("abcd-1234"));
        assert!(LicenseCache::new(&[]).keys.hash("ABCD-1234") != cache.keys.hash("ABCD-1234"), "secret per start");
    }
}
