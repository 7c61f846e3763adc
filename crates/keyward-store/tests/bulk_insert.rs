//! How fast `insert_licenses` writes a large batch, on each backend. A measurement, not part of
//! the normal run: `cargo test -p keyward-store --release --test bulk_insert -- --ignored --nocapture`
//! (`KEYWARD_BULK_COUNT` sets the batch size, 100,000 by default).

use keyward_store::testing::{self, audit};
use keyward_store::{License, LicenseQuery, LicenseSort, Order, SqlStore, Store};
use std::time::Instant;

async fn measure(store: &SqlStore, backend: &str, count: usize) {
    let product = testing::product("production", "Bulk");
    store.create_product(&product, &audit("product.created")).await.unwrap();
    let generator = testing::generator(&product);
    store.create_generator(&generator, &audit("generator.created")).await.unwrap();
    let licenses: Vec<License> = (0..count)
        .map(|i| testing::license(&generator, &product, &format!("BULK-{i:09}-{}", uuid::Uuid::new_v4())))
        .collect();

    let started = Instant::now();
    store.insert_licenses(&licenses, &audit("license.generated")).await.unwrap();
    let elapsed = started.elapsed();
    eprintln!(
        "{backend}: inserted {count} licenses in {:.2} s ({:.0} licenses/s)",
        elapsed.as_secs_f64(),
        count as f64 / elapsed.as_secs_f64()
    );

    let query = LicenseQuery {
        q: None,
        product: None,
        status: None,
        customer: None,
        sort: LicenseSort::Key,
        order: Order::Asc,
        limit: 50,
        cursor: None,
        expired_before: chrono::Utc::now(),
    };
    let started = Instant::now();
    let page = store.licenses("production", &query).await.unwrap();
    eprintln!("{backend}: first page by key of {} in {:.1} ms", page.total, started.elapsed().as_secs_f64() * 1000.0);
    assert_eq!(page.total, count as i64);
    let found = store.license_snapshot("production", &licenses[count / 2].key).await.unwrap();
    assert_eq!(found.map(|(l, _)| l.id), Some(licenses[count / 2].id.clone()));
    let started = Instant::now();
    let lookups = 2_000;
    for i in 0..lookups {
        let key = &licenses[(i * 7919) % count].key;
        assert!(store.license_snapshot("production", key).await.unwrap().is_some());
    }
    let each = started.elapsed().as_secs_f64() * 1e6 / lookups as f64;
    eprintln!("{backend}: a snapshot by key (what a validation cache miss costs) in {each:.0} µs");
}

#[tokio::test]
#[ignore = "a measurement; run it on purpose"]
async fn bulk_insert_speed() {
    let count = std::env::var("KEYWARD_BULK_COUNT").ok().and_then(|n| n.parse().ok()).unwrap_or(100_000);
    let (store, _dir) = testing::fresh_sqlite().await;
    measure(&store, "sqlite", count).await;
    if let Some((store, _database)) = testing::fresh_postgres().await {
        measure(&store, "postgres", count).await;
        store.close().await;
    }
}
