//! The store's contract, run on SQLite and on PostgreSQL alike: every test gets a fresh database
//! of each backend (see `keyward_store::testing` for when PostgreSQL is skipped).

use chrono::{Duration, Utc};
use keyward_core::activation::{decide_activation, ActivationDecision};
use keyward_core::ids::{new_id, IdKind};
use keyward_core::key::KeyFormat;
use keyward_core::role::Role;
use keyward_core::validation::{ActivationKind, ValidationCode};
use keyward_core::values::{ActivationLimit, FeatureFlags, Metadata};
use keyward_core::{LicenseStatus, Refusal};
use keyward_store::testing::{self, audit, now, on_each_backend};
use keyward_store::*;
use serde_json::json;
use sqlx::Connection;
use std::collections::HashSet;

const PROD: &str = "production";
const STAGING: &str = "staging";
/// Every order a license list can take.
const EVERY_SORT: [LicenseSort; 7] = [
    LicenseSort::Key,
    LicenseSort::Product,
    LicenseSort::Customer,
    LicenseSort::Status,
    LicenseSort::ActivationLimit,
    LicenseSort::ExpiresAt,
    LicenseSort::CreatedAt,
];

async fn catalog(store: &SqlStore, environment: &str) -> (Product, Generator) {
    named_catalog(store, environment, "Acme Studio").await
}

/// A product of this name and a generator of it.
async fn named_catalog(store: &SqlStore, environment: &str, name: &str) -> (Product, Generator) {
    let product = testing::product(environment, name);
    store.create_product(&product, &audit("product.created")).await.unwrap();
    let generator = testing::generator(&product);
    store.create_generator(&generator, &audit("generator.created")).await.unwrap();
    (product, generator)
}

/// Customers in production, created in the order given: `(name, email)` each.
async fn customers(store: &SqlStore, people: &[(&str, &str)]) -> Vec<Customer> {
    let mut customers = Vec::new();
    for (name, email) in people {
        let customer = testing::customer(PROD, name, email);
        store.create_customer(&customer, &audit("customer.created")).await.unwrap();
        customers.push(customer);
    }
    customers
}

async fn one_license(store: &SqlStore, key: &str) -> (Product, Generator, License) {
    let (product, generator) = catalog(store, PROD).await;
    let license = testing::license(&generator, &product, key);
    store.insert_licenses(std::slice::from_ref(&license), &audit("license.created")).await.unwrap();
    (product, generator, license)
}

async fn all_audit_events(store: &SqlStore, environment: &str) -> Vec<AuditEvent> {
    let mut events = Vec::new();
    let mut cursor = None;
    loop {
        let page =
            store.audit_events(environment, &AuditQuery { limit: 500, cursor, ..Default::default() }).await.unwrap();
        events.extend(page.data);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return events,
        }
    }
}

fn list(limit: u32) -> ListQuery {
    ListQuery { q: None, limit, cursor: None }
}

fn license_query() -> LicenseQuery {
    LicenseQuery {
        q: None,
        product: None,
        status: None,
        customer: None,
        sort: LicenseSort::CreatedAt,
        order: Order::Desc,
        limit: 500,
        cursor: None,
        expired_before: Utc::now(),
    }
}

/// The edit an `activate` request makes, decided by keyward-core.
fn activate(fingerprint: &str) -> LicenseEdit {
    let fingerprint = fingerprint.to_owned();
    Box::new(move |license: &License, activations: &[Activation]| {
        let at = now();
        let refs: Vec<_> = activations.iter().map(Activation::as_ref).collect();
        let decision = decide_activation(
            license.status,
            license.activation_limit,
            &refs,
            ActivationKind::Device,
            &fingerprint,
            license.ever_activated,
        )?;
        let mut after = license.clone();
        after.updated_at = at;
        match decision {
            ActivationDecision::AlreadyActivated { index } => Ok(LicenseChange {
                license: after,
                activation: ActivationChange::Touch { id: activations[index].id.clone(), at },
            }),
            ActivationDecision::Activate { status, first } => {
                after.status = status;
                after.ever_activated = true;
                if first {
                    after.first_activated_at = Some(at);
                }
                let activation = Activation {
                    id: new_id(IdKind::Activation),
                    license_id: license.id.clone(),
                    kind: ActivationKind::Device,
                    fingerprint,
                    name: Some("laptop".into()),
                    platform: Some("linux".into()),
                    hostname: None,
                    ip: Some("10.0.0.1".into()),
                    created_at: at,
                    last_seen_at: at,
                };
                Ok(LicenseChange { license: after, activation: ActivationChange::Add(activation) })
            }
        }
    })
}

/// An edit that sets the customer (as `assign` does).
fn assign(customer: &Customer) -> LicenseEdit {
    let customer_id = customer.id.clone();
    Box::new(move |license: &License, _: &[Activation]| {
        let status = keyward_core::activation::status_after_customer_change(license.status, true)?;
        let at = now();
        let mut after = license.clone();
        after.customer_id = Some(customer_id);
        after.status = status;
        after.assigned_at = Some(at);
        after.updated_at = at;
        Ok(LicenseChange { license: after, activation: ActivationChange::None })
    })
}

fn with_activation(change: ActivationChange) -> LicenseEdit {
    Box::new(move |license: &License, _: &[Activation]| {
        Ok(LicenseChange { license: license.clone(), activation: change })
    })
}

#[tokio::test]
async fn environments_and_settings() {
    on_each_backend(|store| async move {
        assert_eq!(store.environments().await.unwrap(), vec![PROD.to_owned(), STAGING.to_owned()]);
        store.ping().await.unwrap();
        assert_eq!(store.settings(PROD).await.unwrap(), Settings::default());

        let changed = Settings { grace_period_days: 7, ..Settings::default() };
        store.put_settings(PROD, &changed, &audit("settings.updated")).await.unwrap();
        assert_eq!(store.settings(PROD).await.unwrap(), changed);
        assert_eq!(store.settings(STAGING).await.unwrap(), Settings::default(), "settings are per environment");
        let again = Settings { validate_rate_per_key: 5, ..changed.clone() };
        store.put_settings(PROD, &again, &audit("settings.updated")).await.unwrap();
        assert_eq!(store.settings(PROD).await.unwrap(), again);

        let events = all_audit_events(&store, PROD).await;
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].target_type, "settings");
        assert_eq!(events[0].before, Some(serde_json::to_value(&changed).unwrap()));
        assert_eq!(events[0].after, Some(serde_json::to_value(&again).unwrap()));
        assert_eq!(events[1].before, Some(serde_json::to_value(Settings::default()).unwrap()));
        assert!(matches!(
            store.put_settings("nowhere", &again, &audit("settings.updated")).await,
            Err(StoreError::NotFound)
        ));
        assert!(all_audit_events(&store, "nowhere").await.is_empty());
    })
    .await;
}

#[tokio::test]
async fn tokens_by_hash() {
    on_each_backend(|store| async move {
        assert_eq!(store.token_count().await.unwrap(), 0);
        let token = ApiToken {
            id: new_id(IdKind::Token),
            name: "ci".into(),
            role: Role::LicenseManager,
            environment: STAGING.into(),
            token_hash: "ab".repeat(32),
            prefix: "kw_ab12".into(),
            created_at: now(),
        };
        store.create_token(&token, &audit("token.created")).await.unwrap();
        assert_eq!(store.token_by_hash(&token.token_hash).await.unwrap(), Some(token.clone()));
        assert_eq!(store.token_by_hash(&"cd".repeat(32)).await.unwrap(), None);
        assert_eq!(store.token_count().await.unwrap(), 1);

        let same_hash = ApiToken { id: new_id(IdKind::Token), ..token.clone() };
        let err = store.create_token(&same_hash, &audit("token.created")).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict { code: "TOKEN_EXISTS", .. }), "{err:?}");
        assert_eq!(store.token_count().await.unwrap(), 1);

        let events = all_audit_events(&store, STAGING).await;
        assert_eq!(events.len(), 1);
        let after = events[0].after.clone().unwrap();
        assert_eq!(after["id"], json!(token.id));
        assert!(after.get("token_hash").is_none(), "the hash is not copied into the audit log");
        assert_eq!((events[0].actor.as_str(), events[0].ip.as_deref()), ("tok_test", Some("127.0.0.1")));
    })
    .await;
}

#[tokio::test]
async fn products_crud_search_and_pages() {
    on_each_backend(|store| async move {
        let mut products = Vec::new();
        for (i, name) in ["Acme Studio", "acme cloud", "Beta 100%", "Gamma_Tool", "Delta"].into_iter().enumerate() {
            let mut product = testing::product(PROD, name);
            product.created_at += Duration::seconds(i as i64);
            store.create_product(&product, &audit("product.created")).await.unwrap();
            products.push(product);
        }
        assert_eq!(store.product(PROD, &products[0].id).await.unwrap(), Some(products[0].clone()));
        assert_eq!(store.product(STAGING, &products[0].id).await.unwrap(), None, "environments are isolated");

        let page = store.products(PROD, &list(2)).await.unwrap();
        assert_eq!(page.total, 5);
        assert_eq!(page.data, vec![products[4].clone(), products[3].clone()], "newest first");
        let next = store.products(PROD, &ListQuery { cursor: page.next_cursor.clone(), ..list(2) }).await.unwrap();
        assert_eq!(next.data, vec![products[2].clone(), products[1].clone()]);
        let last = store.products(PROD, &ListQuery { cursor: next.next_cursor.clone(), ..list(2) }).await.unwrap();
        assert_eq!(last.data, vec![products[0].clone()]);
        assert_eq!(last.next_cursor, None);

        let search = |q: &str| {
            let store = store.clone();
            let q = q.to_owned();
            async move {
                let page = store.products(PROD, &ListQuery { q: Some(q), ..list(50) }).await.unwrap();
                let mut names: Vec<String> = page.data.into_iter().map(|p| p.name).collect();
                names.sort();
                (names, page.total)
            }
        };
        assert_eq!(search("ACME").await, (vec!["Acme Studio".to_owned(), "acme cloud".to_owned()], 2));
        assert_eq!(search("%").await, (vec!["Beta 100%".to_owned()], 1), "% is literal");
        assert_eq!(search("_").await, (vec!["Gamma_Tool".to_owned()], 1), "_ is literal");
        assert_eq!(search("zzz").await, (vec![], 0));

        let err = store.products(PROD, &ListQuery { cursor: Some("garbage!".into()), ..list(2) }).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict { code: "INVALID_CURSOR", .. }), "{err:?}");

        let mut archived = products[0].clone();
        archived.name = "Acme Studio 2".into();
        archived.status = ProductStatus::Archived;
        archived.updated_at = now() + Duration::seconds(10);
        store.update_product(&archived, &audit("product.updated")).await.unwrap();
        assert_eq!(store.product(PROD, &archived.id).await.unwrap(), Some(archived.clone()));
        let elsewhere = Product { environment: STAGING.into(), ..archived.clone() };
        assert!(matches!(store.update_product(&elsewhere, &audit("product.updated")).await, Err(StoreError::NotFound)));

        let events = all_audit_events(&store, PROD).await;
        assert_eq!(events.len(), 6);
        assert_eq!(events[0].action, "product.updated");
        assert_eq!(events[0].target_id, archived.id);
        assert_eq!(events[0].before.as_ref().unwrap()["name"], json!("Acme Studio"));
        assert_eq!(events[0].after.as_ref().unwrap()["status"], json!("archived"));
    })
    .await;
}

#[tokio::test]
async fn generators_keep_their_template() {
    on_each_backend(|store| async move {
        let (product, mut generator) = catalog(&store, PROD).await;
        assert_eq!(store.generator(PROD, &generator.id).await.unwrap(), Some(generator.clone()));

        generator.name = "Pro keys".into();
        generator.format = KeyFormat::Pattern { template: "ACME-{5}-{5}".into() };
        generator.activation_limit = ActivationLimit::UNLIMITED;
        generator.validity = None;
        generator.feature_flags = FeatureFlags::parse(json!({"pro": true, "seats": 5})).unwrap();
        generator.metadata = Metadata::parse(json!({"plan": "gold"})).unwrap();
        generator.updated_at = now();
        store.update_generator(&generator, &audit("generator.updated")).await.unwrap();
        assert_eq!(store.generator(PROD, &generator.id).await.unwrap(), Some(generator.clone()));

        let other = testing::product(STAGING, "Elsewhere");
        let orphan = testing::generator(&Product { id: "prod_missing".into(), ..other });
        let err = store.create_generator(&orphan, &audit("generator.created")).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict { code: "REFERENCE_NOT_FOUND", .. }), "{err:?}");
        let cross = Generator { environment: STAGING.into(), ..testing::generator(&product) };
        assert!(
            store.create_generator(&cross, &audit("generator.created")).await.is_err(),
            "a product of another environment"
        );

        let page = store.generators(PROD, &ListQuery { q: Some("pro K".into()), ..list(10) }).await.unwrap();
        assert_eq!((page.total, page.data.len()), (1, 1));
        assert_eq!(store.generators(STAGING, &list(10)).await.unwrap().total, 0);
        let kinds: Vec<_> = all_audit_events(&store, PROD).await.into_iter().map(|e| e.target_type).collect();
        assert_eq!(kinds, ["generator", "generator", "product"]);
    })
    .await;
}

#[tokio::test]
async fn customers_emails_and_deletion() {
    on_each_backend(|store| async move {
        let ana = testing::customer(PROD, "Ana Lima", "ana@acme.com");
        let bo = testing::customer(PROD, "Bo Berg", "bo@example.org");
        store.create_customer(&ana, &audit("customer.created")).await.unwrap();
        store.create_customer(&bo, &audit("customer.created")).await.unwrap();
        assert_eq!(store.customer(PROD, &ana.id).await.unwrap(), Some(ana.clone()));

        let twin = testing::customer(PROD, "Other Ana", "ana@acme.com");
        let err = store.create_customer(&twin, &audit("customer.created")).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict { code: "EMAIL_TAKEN", .. }), "{err:?}");
        let staging_twin = testing::customer(STAGING, "Ana", "ana@acme.com");
        store.create_customer(&staging_twin, &audit("customer.created")).await.unwrap();

        let taken = Customer { email: "ana@acme.com".into(), ..bo.clone() };
        let err = store.update_customer(&taken, &audit("customer.updated")).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict { code: "EMAIL_TAKEN", .. }), "{err:?}");
        let renamed =
            Customer { name: "Bo B. Berg".into(), email: "bo@berg.io".into(), updated_at: now(), ..bo.clone() };
        store.update_customer(&renamed, &audit("customer.updated")).await.unwrap();
        assert_eq!(store.customer(PROD, &bo.id).await.unwrap(), Some(renamed.clone()));

        let find = |q: &str| {
            let store = store.clone();
            let q = q.to_owned();
            async move {
                let page = store.customers(PROD, &ListQuery { q: Some(q), ..list(50) }).await.unwrap();
                page.data.into_iter().map(|c| c.name).collect::<Vec<_>>()
            }
        };
        assert_eq!(find("ACME.com").await, ["Ana Lima"]);
        assert_eq!(find("berg").await, ["Bo B. Berg"]);
        assert_eq!(find("O").await, ["Bo B. Berg", "Ana Lima"], "newest first");

        // A customer with a license cannot go.
        let (product, generator) = catalog(&store, PROD).await;
        let license = testing::assigned(testing::license(&generator, &product, "KEY-ANA"), &ana);
        store.insert_licenses(&[license], &audit("license.created")).await.unwrap();
        let err = store.delete_customer(PROD, &ana.id, &audit("customer.deleted")).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict { code: "CUSTOMER_HAS_LICENSES", .. }), "{err:?}");
        store.delete_customer(PROD, &bo.id, &audit("customer.deleted")).await.unwrap();
        assert_eq!(store.customer(PROD, &bo.id).await.unwrap(), None);
        assert!(matches!(
            store.delete_customer(PROD, &bo.id, &audit("customer.deleted")).await,
            Err(StoreError::NotFound)
        ));
        let deleted = &all_audit_events(&store, PROD).await[0];
        assert_eq!((deleted.action.as_str(), deleted.after.is_none()), ("customer.deleted", true));
        assert_eq!(deleted.before.as_ref().unwrap()["email"], json!("bo@berg.io"));
    })
    .await;
}

#[tokio::test]
async fn licenses_insert_read_and_isolate() {
    on_each_backend(|store| async move {
        let (product, generator) = catalog(&store, PROD).await;
        let customer = testing::customer(PROD, "Ana Lima", "ana@acme.com");
        store.create_customer(&customer, &audit("customer.created")).await.unwrap();
        let mut license = testing::assigned(testing::license(&generator, &product, "ACME-AAAA-BBBB"), &customer);
        license.expires_at = Some(now() + Duration::days(30));
        license.feature_flags = FeatureFlags::parse(json!({"pro": true})).unwrap();
        license.metadata = Metadata::parse(json!({"order": 17})).unwrap();
        let plain = testing::license(&generator, &product, "ACME-CCCC-DDDD");
        store.insert_licenses(&[license.clone(), plain.clone()], &audit("license.created")).await.unwrap();

        assert_eq!(store.license(PROD, &license.id).await.unwrap(), Some(license.clone()));
        assert_eq!(store.license(PROD, "ACME-AAAA-BBBB").await.unwrap(), Some(license.clone()));
        assert_eq!(store.license(STAGING, &license.id).await.unwrap(), None);
        assert_eq!(store.license(STAGING, "ACME-AAAA-BBBB").await.unwrap(), None);
        assert_eq!(store.license_snapshot(PROD, "ACME-AAAA-BBBB").await.unwrap(), Some((license.clone(), vec![])));
        assert_eq!(store.license_snapshot(PROD, &license.id).await.unwrap(), None, "snapshots are by key");
        assert_eq!(store.license_snapshot(STAGING, "ACME-AAAA-BBBB").await.unwrap(), None);

        // All or nothing: one taken key refuses the whole batch.
        let fresh = testing::license(&generator, &product, "ACME-EEEE-FFFF");
        let taken = testing::license(&generator, &product, "ACME-AAAA-BBBB");
        let err = store.insert_licenses(&[fresh.clone(), taken], &audit("license.created")).await.unwrap_err();
        assert!(matches!(err, StoreError::DuplicateKey), "{err:?}");
        assert_eq!(store.license(PROD, "ACME-EEEE-FFFF").await.unwrap(), None);
        let dup_in_batch = testing::license(&generator, &product, "ACME-EEEE-FFFF");
        let err = store.insert_licenses(&[fresh.clone(), dup_in_batch], &audit("license.created")).await.unwrap_err();
        assert!(matches!(err, StoreError::DuplicateKey), "{err:?}");
        assert_eq!(store.licenses(PROD, &license_query()).await.unwrap().total, 2);

        // A key is unique per environment only.
        let (staging_product, staging_generator) = catalog(&store, STAGING).await;
        let twin = testing::license(&staging_generator, &staging_product, "ACME-AAAA-BBBB");
        store.insert_licenses(std::slice::from_ref(&twin), &audit("license.created")).await.unwrap();
        assert_eq!(store.license(STAGING, "ACME-AAAA-BBBB").await.unwrap(), Some(twin));

        let events = all_audit_events(&store, PROD).await;
        let created: Vec<_> = events.iter().filter(|e| e.action == "license.created").collect();
        assert_eq!(created.len(), 2, "one event per license, none for the refused batches");
        assert!(created.iter().all(|e| e.target_type == "license" && e.before.is_none()));
        let after: License =
            serde_json::from_value(created.iter().find(|e| e.target_id == license.id).unwrap().after.clone().unwrap())
                .unwrap();
        assert_eq!(after, license);

        // A large batch leaves one summary event.
        let batch: Vec<License> =
            (0..250).map(|i| testing::license(&generator, &product, &format!("BULK-{i:05}"))).collect();
        store.insert_licenses(&batch, &audit("license.generated")).await.unwrap();
        assert_eq!(store.licenses(PROD, &license_query()).await.unwrap().total, 252);
        let events = all_audit_events(&store, PROD).await;
        let summary = events.iter().filter(|e| e.action == "license.generated").collect::<Vec<_>>();
        assert_eq!(summary.len(), 1);
        assert_eq!(summary[0].target_type, "license_batch");
        assert_eq!(summary[0].after, Some(json!({"count": 250, "first_id": batch[0].id, "last_id": batch[249].id})));
        assert_eq!(store.license(PROD, "BULK-00249").await.unwrap(), Some(batch[249].clone()));

        let orphan = License { generator_id: "gen_missing".into(), ..testing::license(&generator, &product, "ORPHAN") };
        let err = store.insert_licenses(&[orphan], &audit("license.created")).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict { code: "REFERENCE_NOT_FOUND", .. }), "{err:?}");
        // PostgreSQL checks the product and environment through the generator's row (0009).
        for orphan in [
            License { product_id: "prod_missing".into(), ..testing::license(&generator, &product, "ORPHAN") },
            License { environment: "nowhere".into(), ..testing::license(&generator, &product, "ORPHAN") },
        ] {
            let err = store.insert_licenses(&[orphan], &audit("license.created")).await.unwrap_err();
            assert!(matches!(err, StoreError::Conflict { code: "REFERENCE_NOT_FOUND", .. }), "{err:?}");
        }
        store.insert_licenses(&[], &audit("license.created")).await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn change_license_applies_the_decision() {
    on_each_backend(|store| async move {
        let (_, _, license) = one_license(&store, "CHANGE-ME").await;
        let ana = testing::customer(PROD, "Ana Lima", "ana@acme.com");
        store.create_customer(&ana, &audit("customer.created")).await.unwrap();

        let assigned = store.change_license(PROD, "CHANGE-ME", assign(&ana), &audit("license.assigned")).await.unwrap();
        assert_eq!(assigned.before, license);
        assert_eq!(assigned.after.status, LicenseStatus::Assigned);
        assert_eq!(
            assigned.after.customer,
            Some(CustomerRef { id: ana.id.clone(), name: ana.name.clone(), email: ana.email.clone() })
        );
        assert_eq!(store.license(PROD, &license.id).await.unwrap().as_ref(), Some(&assigned.after));

        let first =
            store.change_license(PROD, &license.id, activate("fp-1"), &audit("license.activated")).await.unwrap();
        let ActivationChange::Add(added) = &first.activation else { panic!("{:?}", first.activation) };
        assert_eq!(first.after.status, LicenseStatus::Active);
        assert_eq!(first.after.activation_count, 1);
        assert!(first.after.ever_activated && first.after.first_activated_at.is_some());
        assert_eq!(first.activations, vec![added.clone()]);

        let again =
            store.change_license(PROD, &license.id, activate("fp-1"), &audit("license.activated")).await.unwrap();
        let ActivationChange::Touch { id, at } = &again.activation else { panic!("{:?}", again.activation) };
        assert_eq!(id, &added.id);
        assert_eq!(again.activations[0].last_seen_at, *at);
        assert_eq!(again.after.activation_count, 1);

        store.change_license(PROD, &license.id, activate("fp-2"), &audit("license.activated")).await.unwrap();
        let (snapshot, activations) = store.license_snapshot(PROD, "CHANGE-ME").await.unwrap().unwrap();
        assert_eq!((snapshot.activation_count, activations.len()), (2, 2));
        assert_eq!(store.activations(PROD, &license.id).await.unwrap(), activations);
        assert_eq!(store.activations(STAGING, &license.id).await.unwrap(), vec![]);
        assert_eq!(store.activation(PROD, &added.id).await.unwrap(), Some(activations[0].clone()));
        assert_eq!(store.activation(STAGING, &added.id).await.unwrap(), None);

        let removed = store
            .change_license(
                PROD,
                &license.id,
                with_activation(ActivationChange::Remove { id: added.id.clone() }),
                &audit("activation.deleted"),
            )
            .await
            .unwrap();
        assert_eq!((removed.after.activation_count, removed.activations.len()), (1, 1));
        assert_eq!(store.activation(PROD, &added.id).await.unwrap(), None);

        // The store writes only the mutable fields: key, product, generator, created_at stay.
        let sneaky: LicenseEdit = Box::new(|license: &License, _: &[Activation]| {
            let mut after = license.clone();
            after.key = "STOLEN".into();
            after.product_id = "prod_other".into();
            after.created_at = license.created_at - Duration::days(9);
            after.activation_count = 99;
            after.status = LicenseStatus::Revoked;
            after.suspension_reason = Some("fraud".into());
            Ok(LicenseChange { license: after, activation: ActivationChange::RemoveAll })
        });
        let revoked = store.change_license(PROD, "CHANGE-ME", sneaky, &audit("license.revoked")).await.unwrap();
        assert_eq!(revoked.after.key, "CHANGE-ME");
        assert_eq!(revoked.after.product_id, license.product_id);
        assert_eq!(revoked.after.created_at, license.created_at);
        assert_eq!((revoked.after.activation_count, revoked.activations.len()), (0, 0), "count follows the rows");
        assert_eq!(revoked.after.status, LicenseStatus::Revoked);
        assert_eq!(revoked.after.suspension_reason.as_deref(), Some("fraud"));

        let events: Vec<_> =
            all_audit_events(&store, PROD).await.into_iter().filter(|e| e.target_type == "license").collect();
        let actions: Vec<_> = events.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(
            actions,
            [
                "license.revoked",
                "activation.deleted",
                "license.activated",
                "license.activated",
                "license.activated",
                "license.assigned",
                "license.created"
            ]
        );
        let last: License = serde_json::from_value(events[0].after.clone().unwrap()).unwrap();
        assert_eq!(last, revoked.after);
        let before: License = serde_json::from_value(events[0].before.clone().unwrap()).unwrap();
        assert_eq!(before, revoked.before);

        let missing = store.change_license(PROD, "NO-SUCH-KEY", activate("x"), &audit("license.activated")).await;
        assert!(matches!(missing, Err(StoreError::NotFound)));
        let elsewhere = store.change_license(STAGING, "CHANGE-ME", activate("x"), &audit("license.activated")).await;
        assert!(matches!(elsewhere, Err(StoreError::NotFound)));
    })
    .await;
}

#[tokio::test]
async fn refusals_and_failures_write_nothing() {
    on_each_backend(|store| async move {
        let (_, _, license) = one_license(&store, "REFUSE-ME").await;
        let events_before = all_audit_events(&store, PROD).await.len();

        // Available licenses cannot activate: core refuses, the store writes nothing.
        let err =
            store.change_license(PROD, "REFUSE-ME", activate("fp"), &audit("license.activated")).await.unwrap_err();
        assert!(matches!(err, StoreError::Refused(Refusal::State(ValidationCode::LicenseNotAssigned))), "{err:?}");
        let err = store
            .change_license(
                PROD,
                "REFUSE-ME",
                Box::new(|_, _| Err(Refusal::Invalid("no".into()))),
                &audit("license.updated"),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Refused(Refusal::Invalid(_))), "{err:?}");

        // A change that fails half-way is rolled back whole: the license row stays as it was.
        let half: LicenseEdit = Box::new(|license: &License, _: &[Activation]| {
            let mut after = license.clone();
            after.status = LicenseStatus::Revoked;
            Ok(LicenseChange { license: after, activation: ActivationChange::Remove { id: "act_nothing".into() } })
        });
        assert!(store.change_license(PROD, "REFUSE-ME", half, &audit("license.revoked")).await.is_err());
        let ghost_customer: LicenseEdit = Box::new(|license: &License, _: &[Activation]| {
            let mut after = license.clone();
            after.customer_id = Some("cus_nobody".into());
            Ok(LicenseChange { license: after, activation: ActivationChange::None })
        });
        let err =
            store.change_license(PROD, "REFUSE-ME", ghost_customer, &audit("license.assigned")).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict { code: "REFERENCE_NOT_FOUND", .. }), "{err:?}");

        assert_eq!(store.license(PROD, "REFUSE-ME").await.unwrap(), Some(license.clone()));
        assert_eq!(all_audit_events(&store, PROD).await.len(), events_before, "no audit event for refused changes");

        let err = store
            .delete_license(PROD, "REFUSE-ME", Box::new(|_| Err(Refusal::WasActivated)), &audit("license.deleted"))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Refused(Refusal::WasActivated)), "{err:?}");
        assert_eq!(store.license(PROD, "REFUSE-ME").await.unwrap(), Some(license));
        assert_eq!(all_audit_events(&store, PROD).await.len(), events_before);
    })
    .await;
}

#[tokio::test]
async fn activation_limit_holds_under_concurrency() {
    on_each_backend(|store| async move {
        let (product, generator) = catalog(&store, PROD).await;
        let customer = testing::customer(PROD, "Ana Lima", "ana@acme.com");
        store.create_customer(&customer, &audit("customer.created")).await.unwrap();
        let license = testing::assigned(testing::license(&generator, &product, "RACE-KEY"), &customer);
        assert_eq!(license.activation_limit.get(), 5);
        store.insert_licenses(std::slice::from_ref(&license), &audit("license.created")).await.unwrap();

        let attempts = 200;
        let tasks: Vec<_> = (0..attempts)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    store
                        .change_license(PROD, "RACE-KEY", activate(&format!("device-{i}")), &audit("license.activated"))
                        .await
                })
            })
            .collect();
        let (mut won, mut refused) = (0, 0);
        for task in tasks {
            match task.await.unwrap() {
                Ok(changed) => {
                    assert!(matches!(changed.activation, ActivationChange::Add(_)));
                    assert!(changed.after.activation_count <= 5);
                    won += 1;
                }
                Err(StoreError::Refused(Refusal::ActivationLimitExceeded)) => refused += 1,
                Err(other) => panic!("an activation failed instead of being refused: {other:?}"),
            }
        }
        assert_eq!((won, refused), (5, attempts - 5));
        let (after, activations) = store.license_snapshot(PROD, "RACE-KEY").await.unwrap().unwrap();
        assert_eq!((after.activation_count, activations.len()), (5, 5));
        assert_eq!(after.status, LicenseStatus::Active);
        let distinct: HashSet<_> = activations.iter().map(|a| a.fingerprint.clone()).collect();
        assert_eq!(distinct.len(), 5);
    })
    .await;
}

#[tokio::test]
async fn concurrent_changes_on_many_licenses_do_not_interfere() {
    on_each_backend(|store| async move {
        let (product, generator) = catalog(&store, PROD).await;
        let customer = testing::customer(PROD, "Ana Lima", "ana@acme.com");
        store.create_customer(&customer, &audit("customer.created")).await.unwrap();
        let licenses: Vec<License> = (0..10)
            .map(|i| testing::assigned(testing::license(&generator, &product, &format!("MANY-{i}")), &customer))
            .collect();
        store.insert_licenses(&licenses, &audit("license.created")).await.unwrap();
        let tasks: Vec<_> = (0..100)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    let key = format!("MANY-{}", i % 10);
                    store.change_license(PROD, &key, activate(&format!("d-{i}")), &audit("license.activated")).await
                })
            })
            .collect();
        let mut won = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(_) => won += 1,
                Err(StoreError::Refused(Refusal::ActivationLimitExceeded)) => {}
                Err(other) => panic!("{other:?}"),
            }
        }
        assert_eq!(won, 50);
        for license in &licenses {
            assert_eq!(store.license(PROD, &license.id).await.unwrap().unwrap().activation_count, 5);
        }
    })
    .await;
}

#[tokio::test]
async fn delete_frees_the_key() {
    on_each_backend(|store| async move {
        let (product, generator) = catalog(&store, PROD).await;
        let customer = testing::customer(PROD, "Ana Lima", "ana@acme.com");
        store.create_customer(&customer, &audit("customer.created")).await.unwrap();
        let license = testing::assigned(testing::license(&generator, &product, "DELETE-ME"), &customer);
        store.insert_licenses(std::slice::from_ref(&license), &audit("license.created")).await.unwrap();
        let activated =
            store.change_license(PROD, "DELETE-ME", activate("fp"), &audit("license.activated")).await.unwrap();
        let validation = ValidationRecord {
            environment: PROD.into(),
            license_id: license.id.clone(),
            at: now(),
            code: ValidationCode::Valid,
            fingerprint: Some("fp".into()),
            ip: None,
        };
        store.record_validations(&[validation]).await.unwrap();

        let deleted = store
            .delete_license(
                PROD,
                "DELETE-ME",
                Box::new(|l| keyward_core::activation::decide_delete(l.ever_activated, true)),
                &audit("license.deleted"),
            )
            .await
            .unwrap();
        assert_eq!(deleted.id, license.id);
        assert_eq!(deleted.activation_count, 1);
        assert_eq!(store.license(PROD, "DELETE-ME").await.unwrap(), None);
        assert_eq!(store.license_snapshot(PROD, "DELETE-ME").await.unwrap(), None);
        let ActivationChange::Add(activation) = &activated.activation else { panic!() };
        assert_eq!(store.activation(PROD, &activation.id).await.unwrap(), None);
        assert_eq!(store.validations(PROD, &license.id, &list(10)).await.unwrap().total, 0);
        let event = &all_audit_events(&store, PROD).await[0];
        assert_eq!((event.action.as_str(), event.target_id.as_str()), ("license.deleted", license.id.as_str()));
        assert!(event.after.is_none() && event.before.is_some());

        // The key is free again, and the customer can go now.
        let reborn = testing::license(&generator, &product, "DELETE-ME");
        store.insert_licenses(std::slice::from_ref(&reborn), &audit("license.created")).await.unwrap();
        assert_eq!(store.license(PROD, "DELETE-ME").await.unwrap(), Some(reborn));
        store.delete_customer(PROD, &customer.id, &audit("customer.deleted")).await.unwrap();
        let missing = store.delete_license(PROD, "NOPE", Box::new(|_| Ok(())), &audit("license.deleted")).await;
        assert!(matches!(missing, Err(StoreError::NotFound)));
    })
    .await;
}

/// An environment with more licenses than a list sorts whole (5,000) takes its total from the
/// backend's count of the environment (on PostgreSQL, kept by triggers), through inserts and
/// deletes, and apart from the other environments.
#[tokio::test]
async fn a_large_environment_counts_its_licenses_through_inserts_and_deletes() {
    on_each_backend(|store| async move {
        let (product, generator) = catalog(&store, PROD).await;
        let licenses: Vec<License> =
            (0..5_002).map(|i| testing::license(&generator, &product, &format!("COUNT-{i:05}"))).collect();
        store.insert_licenses(&licenses, &audit("license.created")).await.unwrap();
        let (staging_product, staging_generator) = catalog(&store, STAGING).await;
        let staging: Vec<License> =
            (0..3).map(|i| testing::license(&staging_generator, &staging_product, &format!("S-{i}"))).collect();
        store.insert_licenses(&staging, &audit("license.created")).await.unwrap();
        let total = |environment| {
            let store = store.clone();
            async move { store.licenses(environment, &license_query()).await.unwrap().total }
        };
        assert_eq!((total(PROD).await, total(STAGING).await), (5_002, 3));
        store.delete_license(PROD, "COUNT-00007", Box::new(|_| Ok(())), &audit("license.deleted")).await.unwrap();
        assert_eq!((total(PROD).await, total(STAGING).await), (5_001, 3));
        let again = testing::license(&generator, &product, "COUNT-AGAIN");
        store.insert_licenses(std::slice::from_ref(&again), &audit("license.created")).await.unwrap();
        assert_eq!(total(PROD).await, 5_002);
        store.fold_license_counts().await.unwrap();
        assert_eq!((total(PROD).await, total(STAGING).await), (5_002, 3), "folded");
        store.delete_license(PROD, "COUNT-00008", Box::new(|_| Ok(())), &audit("license.deleted")).await.unwrap();
        assert_eq!(total(PROD).await, 5_001, "deleted after folding");
    })
    .await;
}

#[tokio::test]
async fn a_search_for_a_few_customers_totals_their_licenses_through_every_change() {
    on_each_backend(|store| async move {
        let (product, generator) = catalog(&store, PROD).await;
        let customers =
            customers(&store, &[("Ana", "ana@big.example"), ("Bo", "bo@big.example"), ("Cy", "cy@other.example")])
                .await;
        let (ana, bo, cy) = (&customers[0], &customers[1], &customers[2]);
        // More than a list sorts whole, so the total is counted (PostgreSQL: read from the kept counts).
        let licenses: Vec<License> = (0..5_030)
            .map(|i| {
                let license = testing::license(&generator, &product, &format!("T-{i:05}"));
                match i {
                    0..5_001 => testing::assigned(license, ana),
                    5_001..5_011 => testing::assigned(license, bo),
                    5_011..5_016 => testing::assigned(license, cy),
                    _ => license,
                }
            })
            .collect();
        store.insert_licenses(&licenses, &audit("license.created")).await.unwrap();
        let total = || {
            let store = store.clone();
            async move {
                let query = LicenseQuery { q: Some("big.example".into()), ..license_query() };
                store.licenses(PROD, &query).await.unwrap().total
            }
        };
        assert_eq!(total().await, 5_011);

        store.delete_license(PROD, "T-00007", Box::new(|_| Ok(())), &audit("license.deleted")).await.unwrap();
        assert_eq!(total().await, 5_010, "deleted");
        store.change_license(PROD, "T-05020", assign(bo), &audit("license.assigned")).await.unwrap();
        assert_eq!(total().await, 5_011, "assigned");
        // A license moves from one customer to another: out of Cy's count, into Ana's.
        store.change_license(PROD, "T-05012", assign(ana), &audit("license.assigned")).await.unwrap();
        assert_eq!(total().await, 5_012, "moved in");
        store.fold_license_counts().await.unwrap();
        assert_eq!(total().await, 5_012, "folded");
        store.change_license(PROD, "T-00009", assign(cy), &audit("license.assigned")).await.unwrap();
        assert_eq!(total().await, 5_011, "moved out");
        let more: Vec<License> =
            (0..3).map(|i| testing::assigned(testing::license(&generator, &product, &format!("U-{i}")), ana)).collect();
        store.insert_licenses(&more, &audit("license.created")).await.unwrap();
        assert_eq!(total().await, 5_014, "inserted");
        // Cy's licenses are counted apart from the others'.
        let query = LicenseQuery { q: Some("other.example".into()), ..license_query() };
        assert_eq!(store.licenses(PROD, &query).await.unwrap().total, 5);
        store.fold_license_counts().await.unwrap();
        assert_eq!(total().await, 5_014, "folded again");
    })
    .await;
}

/// A search or a filter whose licenses sit at the far end of a sort that only the environment's
/// index keeps (one customer's, made before everyone else's, expiring first) pages in order both
/// ways: the walk along that index gives up after a few entries and the part is sorted whole.
#[tokio::test]
async fn licenses_at_the_far_end_of_a_sort_page_in_order() {
    on_each_backend(|store| async move {
        let catalogs = [named_catalog(&store, PROD, "Early").await, named_catalog(&store, PROD, "Late").await];
        let people = customers(&store, &[("Ana", "ana@early.example"), ("Bo", "bo@late.example")]).await;
        let (base, day) = (now(), Duration::days(1));
        // Ana's come first and expire before anyone else's, with many ties; Bo's never expire.
        let (product, generator) = &catalogs[0];
        let ana: Vec<License> = (0..5_300i32)
            .map(|i| {
                let license = testing::license(generator, product, &format!("A-{i:05}"));
                let mut license = testing::assigned(license, &people[0]);
                license.expires_at = (i % 3 != 0).then(|| base + day * (i % 7 + 1));
                license
            })
            .collect();
        store.insert_licenses(&ana, &audit("license.created")).await.unwrap();
        let (product, generator) = &catalogs[1];
        let bo: Vec<License> = (0..6_000)
            .map(|i| testing::assigned(testing::license(generator, product, &format!("B-{i:05}")), &people[1]))
            .collect();
        store.insert_licenses(&bo, &audit("license.created")).await.unwrap();

        let in_order = |sort, order| {
            let mut expected: Vec<&License> = ana.iter().collect();
            list_order(&mut expected, sort, order);
            expected.into_iter().map(|l| l.id.clone()).collect::<Vec<_>>()
        };
        let ids = |(seen, total): (Vec<License>, i64)| {
            assert_eq!(total, 5_300);
            seen.into_iter().map(|l| l.id).collect::<Vec<_>>()
        };
        for order in [Order::Desc, Order::Asc] {
            let (sort, q) = (LicenseSort::ExpiresAt, Some("ana@early".into()));
            let search = LicenseQuery { q, sort, order, ..license_query() };
            let seen = ids(pages_of(&store, &search, 200, 10_000).await);
            assert_eq!(seen, in_order(sort, order), "search, {order:?}");
            let product = LicenseQuery { product: Some(catalogs[0].0.id.clone()), order, ..license_query() };
            let seen = ids(pages_of(&store, &product, 200, 10_000).await);
            assert_eq!(seen, in_order(LicenseSort::CreatedAt, order), "product, {order:?}");
        }
    })
    .await;
}

/// PostgreSQL: a transaction adding licenses to an environment never holds up another one's
/// (each write appends its count changes, migration 0006); folding adds them into the counts.
#[tokio::test]
async fn writers_of_one_environment_never_wait_on_its_counts() {
    let Some(database) = testing::PostgresDatabase::create().await else { return };
    let store = database.open().await;
    let (product, generator) = catalog(&store, PROD).await;
    let ana = customers(&store, &[("Ana", "ana@acme.com")]).await.remove(0);
    let first = testing::assigned(testing::license(&generator, &product, "WAIT-1"), &ana);
    store.insert_licenses(std::slice::from_ref(&first), &audit("license.created")).await.unwrap();
    // Another writer adds a copy of that license under a new id and key, and does not commit yet.
    let mut other = sqlx::PgConnection::connect(&database.url).await.unwrap();
    let mut open = other.begin().await.unwrap();
    for statement in [
        "CREATE TEMP TABLE copy AS SELECT * FROM licenses WHERE id = $1",
        "UPDATE copy SET id = $1 || '2', key = 'WAIT-2'",
        "INSERT INTO licenses SELECT * FROM copy",
    ] {
        sqlx::query(statement).bind(&first.id).execute(&mut *open).await.unwrap();
    }
    let second = testing::assigned(testing::license(&generator, &product, "WAIT-3"), &ana);
    let created = audit("license.created");
    let adding = store.insert_licenses(std::slice::from_ref(&second), &created);
    tokio::time::timeout(std::time::Duration::from_secs(5), adding)
        .await
        .expect("the insert does not wait for the other transaction")
        .unwrap();
    open.commit().await.unwrap();

    let counts = "SELECT (SELECT COUNT(*) FROM license_count_changes), (SELECT COALESCE(SUM(n), 0)::BIGINT \
                  FROM license_counts), (SELECT COUNT(*) FROM customer_license_count_changes), \
                  (SELECT COALESCE(SUM(n), 0)::BIGINT FROM customer_license_counts)";
    // What a node of the version before 0006 reads: the rows alone, late but never an error.
    let before_0006 = "SELECT COALESCE((SELECT n FROM license_counts WHERE environment = 'production'), 0)";
    let changes: (i64, i64, i64, i64) = sqlx::query_as(counts).fetch_one(&mut other).await.unwrap();
    assert_eq!(changes, (3, 0, 3, 0), "a change each write, none folded");
    let (late,): (i64,) = sqlx::query_as(before_0006).fetch_one(&mut other).await.unwrap();
    assert_eq!(late, 0);
    assert_eq!(store.licenses(PROD, &license_query()).await.unwrap().total, 3);
    store.fold_license_counts().await.unwrap();
    let folded: (i64, i64, i64, i64) = sqlx::query_as(counts).fetch_one(&mut other).await.unwrap();
    assert_eq!(folded, (0, 3, 0, 3), "the changes added into the rows");
    let (caught_up,): (i64,) = sqlx::query_as(before_0006).fetch_one(&mut other).await.unwrap();
    assert_eq!(caught_up, 3);
    assert_eq!(store.licenses(PROD, &license_query()).await.unwrap().total, 3);
    store.close().await;
}

/// A varied set of licenses for the list tests: three products, two customers and none,
/// every state, expiries past, future and none, ties in creation time.
async fn varied_licenses(store: &SqlStore) -> Vec<License> {
    let names = ["Alpha Suite", "beta tool", "Gamma"];
    let mut catalogs = Vec::new();
    for name in names {
        catalogs.push(named_catalog(store, PROD, name).await);
    }
    let ana = testing::customer(PROD, "Ana Lima", "ana@acme.com");
    let bo = testing::customer(PROD, "Bo Acme", "bo@example.org");
    store.create_customer(&ana, &audit("customer.created")).await.unwrap();
    store.create_customer(&bo, &audit("customer.created")).await.unwrap();
    let base = now() - Duration::days(1);
    let mut licenses = Vec::new();
    for i in 0..41_i64 {
        let (product, generator) = &catalogs[(i % 3) as usize];
        let key = match i % 4 {
            0 => format!("ACME-{i:03}-X"),
            1 => format!("zeta-{i:03}"),
            2 => format!("Key_{i:03}%"),
            _ => format!("{:08X}-{i}", i * 7919),
        };
        let mut license = testing::license(generator, product, &key);
        license.status = LicenseStatus::ALL[(i % 7) as usize];
        if license.status != LicenseStatus::Available {
            license = testing::assigned(license, if i % 2 == 0 { &ana } else { &bo });
            license.status = LicenseStatus::ALL[(i % 7) as usize];
        }
        license.expires_at = match i % 5 {
            0 => None,
            1 => Some(base - Duration::days(i)),
            2 => Some(base + Duration::days(i)),
            3 => Some(base + Duration::days(1)),
            _ => Some(base - Duration::hours(1)),
        };
        license.activation_limit = ActivationLimit::parse([1, 5, -1, 10][(i % 4) as usize]).unwrap();
        // Creation times repeat in threes, so the tie-breaker is exercised.
        license.created_at = base + Duration::seconds(i / 3);
        license.updated_at = license.created_at;
        licenses.push(license);
    }
    store.insert_licenses(&licenses, &audit("license.created")).await.unwrap();
    licenses
}

/// Sorts licenses as a list sorted by `sort` in `order` shows them (ties by id).
fn list_order<L: std::borrow::Borrow<License>>(licenses: &mut [L], sort: LicenseSort, order: Order) {
    licenses.sort_by(|a, b| {
        let (a, b) = (a.borrow(), b.borrow());
        let by = (sort_value(a, sort), &a.id).cmp(&(sort_value(b, sort), &b.id));
        if order == Order::Asc {
            by
        } else {
            by.reverse()
        }
    });
}

fn sort_value(license: &License, sort: LicenseSort) -> (i64, String) {
    match sort {
        LicenseSort::Key => (0, license.key.clone()),
        LicenseSort::Product => (0, license.product_name.to_ascii_lowercase()),
        LicenseSort::Customer => (0, license.customer.as_ref().map(|c| c.email.clone()).unwrap_or_default()),
        LicenseSort::Status => {
            (LicenseStatus::ALL.iter().position(|s| *s == license.status).unwrap() as i64, String::new())
        }
        LicenseSort::ActivationLimit => {
            (if license.activation_limit.get() < 0 { i64::MAX } else { license.activation_limit.get() }, String::new())
        }
        LicenseSort::ExpiresAt => (license.expires_at.map_or(i64::MAX, |t| t.timestamp_micros()), String::new()),
        LicenseSort::CreatedAt => (license.created_at.timestamp_micros(), String::new()),
    }
}

/// Every license the query lists, in pages of 7, and the total.
async fn page_through(store: &SqlStore, query: &LicenseQuery) -> (Vec<License>, i64) {
    pages_of(store, query, 7, 1_000).await
}

/// Every license the query lists, in pages of `size`, and the total (the same on every page).
async fn pages_of(store: &SqlStore, query: &LicenseQuery, size: u32, at_most: usize) -> (Vec<License>, i64) {
    let mut seen = Vec::new();
    let mut query = LicenseQuery { limit: size, cursor: None, ..query.clone() };
    let mut total = None;
    loop {
        let page = store.licenses(PROD, &query).await.unwrap();
        assert!(page.data.len() <= size as usize);
        assert_eq!(*total.get_or_insert(page.total), page.total, "total is the same on every page");
        seen.extend(page.data);
        match page.next_cursor {
            Some(cursor) => query.cursor = Some(cursor),
            None => return (seen, total.unwrap()),
        }
        assert!(seen.len() <= at_most, "paging does not end");
    }
}

#[tokio::test]
async fn license_lists_sort_and_page_completely() {
    on_each_backend(|store| async move {
        let licenses = varied_licenses(&store).await;
        for sort in EVERY_SORT {
            for order in [Order::Asc, Order::Desc] {
                let (seen, total) = page_through(&store, &LicenseQuery { sort, order, ..license_query() }).await;
                assert_eq!(total, licenses.len() as i64);
                let mut expected = licenses.clone();
                list_order(&mut expected, sort, order);
                let seen_ids: Vec<_> = seen.iter().map(|l| l.id.as_str()).collect();
                let expected_ids: Vec<_> = expected.iter().map(|l| l.id.as_str()).collect();
                assert_eq!(seen_ids, expected_ids, "{sort:?} {order:?}");
                assert_eq!(seen, expected, "{sort:?} {order:?}: records read back whole");
            }
        }
        // A cursor of one sort is refused by another.
        let page =
            store.licenses(PROD, &LicenseQuery { limit: 3, sort: LicenseSort::Key, ..license_query() }).await.unwrap();
        let other =
            LicenseQuery { limit: 3, sort: LicenseSort::ExpiresAt, cursor: page.next_cursor, ..license_query() };
        assert!(matches!(store.licenses(PROD, &other).await, Err(StoreError::Conflict { code: "INVALID_CURSOR", .. })));
    })
    .await;
}

#[tokio::test]
async fn license_search_and_filters() {
    on_each_backend(|store| async move {
        let licenses = varied_licenses(&store).await;
        let matching = |q: &str| {
            let q = q.to_ascii_lowercase();
            licenses
                .iter()
                .filter(|l| {
                    l.key.to_ascii_lowercase().contains(&q)
                        || l.product_name.to_ascii_lowercase().contains(&q)
                        || l.customer.as_ref().is_some_and(|c| {
                            c.email.to_ascii_lowercase().contains(&q) || c.name.to_ascii_lowercase().contains(&q)
                        })
                })
                .map(|l| l.id.clone())
                .collect::<HashSet<_>>()
        };
        for q in [
            "@acme.com",
            "ACME.COM",
            "acme",
            "ZETA-0",
            "beta TOOL",
            "bo acme",
            "%",
            "_0",
            "example.org",
            "nothing-like-it",
        ] {
            let (seen, total) = page_through(&store, &LicenseQuery { q: Some(q.into()), ..license_query() }).await;
            let ids: HashSet<_> = seen.iter().map(|l| l.id.clone()).collect();
            assert_eq!(ids.len(), seen.len());
            assert_eq!(ids, matching(q), "q={q}");
            assert_eq!(total, ids.len() as i64, "q={q}");
        }
        assert!(!matching("@acme.com").is_empty() && !matching("%").is_empty());

        let product = licenses[1].product_id.clone();
        let customer = licenses[2].customer_id.clone().unwrap();
        let query =
            LicenseQuery { product: Some(product.clone()), customer: Some(customer.clone()), ..license_query() };
        let (seen, total) = page_through(&store, &query).await;
        let expected: HashSet<_> = licenses
            .iter()
            .filter(|l| l.product_id == product && l.customer_id.as_deref() == Some(customer.as_str()))
            .map(|l| l.id.clone())
            .collect();
        assert!(!expected.is_empty());
        assert_eq!(seen.iter().map(|l| l.id.clone()).collect::<HashSet<_>>(), expected);
        assert_eq!(total, expected.len() as i64);
        assert_eq!(store.licenses(STAGING, &license_query()).await.unwrap().total, 0);
    })
    .await;
}

/// A key holds a search at its start, further in, or both, in any case: each is found once and
/// counted once (PostgreSQL looks keys up by their start and by the rest of them apart), before
/// and after SQLite's search file has indexed them, and through a delete; a long search's ends
/// alone are not enough.
#[tokio::test]
async fn a_key_is_found_by_its_start_and_by_the_rest_once() {
    on_each_backend(|store| async move {
        let (product, generator) = named_catalog(&store, PROD, "Widget").await;
        let keys = [
            "ABC-XYZ-ABC",
            "ABC-111",
            "XABC-222",
            "X-ABC-333",
            "abc-lower",
            "ZZZ-999",
            "ABC-XYZ-ABC-LONG-TAIL-1",
            "Q-ABC-XYZ-ABC-LONG-TAIL-2",
            "XX-LONG-TAIL-9",
        ];
        let licenses: Vec<License> = keys.iter().map(|key| testing::license(&generator, &product, key)).collect();
        store.insert_licenses(&licenses, &audit("license.created")).await.unwrap();
        let (product, generator) = named_catalog(&store, STAGING, "Widget").await;
        let elsewhere = testing::license(&generator, &product, "ABC-STAGING");
        store.insert_licenses(std::slice::from_ref(&elsewhere), &audit("license.created")).await.unwrap();

        let matching = |q: &str, gone: &[&str]| {
            let lower = q.to_ascii_lowercase();
            let mut found: Vec<String> = keys
                .iter()
                .filter(|key| key.to_ascii_lowercase().contains(&lower) && !gone.contains(key))
                .map(|key| key.to_string())
                .collect();
            found.sort();
            found
        };
        let searches = ["abc", "ABC-", "ABC-XYZ-ABC", "xabc", "b", "AB", "abc-xyz-abc-long-tail", "-long-tail-"];
        for indexed in [false, true] {
            for q in searches {
                assert_eq!(keys_found(&store, q).await, matching(q, &[]), "q={q}, indexed: {indexed}");
            }
            store.catch_up_search_index().await.unwrap();
        }
        assert_eq!(matching("abc", &[]).len(), 7);
        assert_eq!(matching("abc-xyz-abc-long-tail", &[]).len(), 2);

        store.delete_license(PROD, "ABC-XYZ-ABC", Box::new(|_| Ok(())), &audit("license.deleted")).await.unwrap();
        for q in ["abc", "ABC-XYZ"] {
            assert_eq!(keys_found(&store, q).await, matching(q, &["ABC-XYZ-ABC"]), "q={q}, after a delete");
        }
    })
    .await;
}

/// More licenses than a list sorts whole (5,000 a part): the lists walk their sort's index,
/// product by product, unassigned then customer by customer, and across ties at a cursor.
async fn many_licenses(store: &SqlStore) -> Vec<License> {
    // Two products share a name but for case, so they sort as one; one product has no license.
    let mut catalogs = Vec::new();
    for name in ["Acme Studio", "ACME STUDIO", "Beta", "Zeta"] {
        catalogs.push(catalog_named(store, name).await);
    }
    let mut customers = Vec::new();
    for i in 0..40 {
        let domain = if i % 2 == 0 { "example.com" } else { "sample.org" };
        let email = format!("customer.number{i:02}@{domain}");
        let customer = testing::customer(PROD, &format!("Customer {i:02}"), &email);
        store.create_customer(&customer, &audit("customer.created")).await.unwrap();
        customers.push(customer);
    }
    let base = now() - Duration::days(1);
    let licenses: Vec<License> = (0..7_000_i64)
        .map(|i| {
            let (product, generator) = &catalogs[[0, 0, 0, 0, 0, 0, 1, 1, 1, 3][(i % 10) as usize]];
            let mut license = testing::license(generator, product, &format!("K{:05}-{:04x}", (i * 7919) % 7_000, i));
            if i % 4 != 0 {
                license = testing::assigned(license, &customers[((i * 7) % 40) as usize]);
                license.status = LicenseStatus::ALL[1 + (i % 6) as usize];
            }
            license.expires_at = match i % 5 {
                0 => None,
                1 => Some(base - Duration::days(i % 300)),
                _ => Some(base + Duration::hours(i % 900)),
            };
            license.activation_limit = ActivationLimit::parse([1, 5, -1, 10][(i % 4) as usize]).unwrap();
            license.created_at = base + Duration::seconds(i / 3);
            license.updated_at = license.created_at;
            license
        })
        .collect();
    store.insert_licenses(&licenses, &audit("license.created")).await.unwrap();
    licenses
}

async fn catalog_named(store: &SqlStore, name: &str) -> (Product, Generator) {
    let product = testing::product(PROD, name);
    store.create_product(&product, &audit("product.created")).await.unwrap();
    let generator = testing::generator(&product);
    store.create_generator(&generator, &audit("generator.created")).await.unwrap();
    (product, generator)
}

/// The ids of every license the query lists, in pages of 500, and the total.
async fn page_all(store: &SqlStore, query: &LicenseQuery) -> (Vec<String>, i64) {
    let (licenses, total) = pages_of(store, query, 500, 10_000).await;
    (licenses.into_iter().map(|l| l.id).collect(), total)
}

#[tokio::test]
async fn large_license_lists_walk_in_order() {
    on_each_backend(|store| async move {
        let licenses = many_licenses(&store).await;
        let searched = |l: &License, q: &str| {
            l.key.to_ascii_lowercase().contains(q)
                || l.product_name.to_ascii_lowercase().contains(q)
                || l.customer.as_ref().is_some_and(|c| {
                    c.email.to_ascii_lowercase().contains(q) || c.name.to_ascii_lowercase().contains(q)
                })
        };
        // Searches whose parts pass 5,000: a product name (6,300 licenses of two products), a
        // customer name (5,250), and a one-character search that every key holds.
        for q in [None, Some("acme"), Some("customer"), Some("-")] {
            let matching: Vec<&License> = licenses.iter().filter(|l| q.is_none_or(|q| searched(l, q))).collect();
            assert!(matching.len() > 5_000, "{q:?}");
            for sort in EVERY_SORT {
                if q.is_some() && matches!(sort, LicenseSort::Key | LicenseSort::CreatedAt) {
                    continue;
                }
                for order in [Order::Asc, Order::Desc] {
                    let query = LicenseQuery { q: q.map(str::to_owned), sort, order, ..license_query() };
                    let (seen, total) = page_all(&store, &query).await;

                    let mut expected = matching.clone();
                    list_order(&mut expected, sort, order);
                    let expected: Vec<String> = expected.iter().map(|l| l.id.clone()).collect();
                    assert_eq!(total, expected.len() as i64, "{q:?} {sort:?} {order:?}");
                    assert!(seen == expected, "{q:?} {sort:?} {order:?}: the order differs");
                }
            }
        }
        // Long searches are looked up by their ends and confirmed whole: both ends of the last
        // one are in other customers' emails, the whole of it in none.
        for q in ["customer.number07@sample.org", "CUSTOMER.NUMBER07@SAMPLE.ORG", "customer.number08@sample.org"] {
            let lower = q.to_ascii_lowercase();
            let expected: HashSet<String> =
                licenses.iter().filter(|l| searched(l, &lower)).map(|l| l.id.clone()).collect();
            let (seen, total) = page_all(&store, &LicenseQuery { q: Some(q.into()), ..license_query() }).await;
            assert_eq!(seen.into_iter().collect::<HashSet<_>>(), expected, "{q}");
            assert_eq!(total, expected.len() as i64, "{q}");
        }
        assert!(licenses.iter().any(|l| searched(l, "customer.number07@sample.org")));
    })
    .await;
}

/// A search most keys match is counted and walked comparing keys row by row (SQLite reads no
/// trigram ids for it): every sort pages in order, each license once, none of another
/// environment, beside a part of matching customers whose licenses the search part excludes.
#[tokio::test]
async fn a_search_most_keys_match_pages_in_order() {
    on_each_backend(|store| async move {
        let mut catalogs = Vec::new();
        for name in ["Widget Pro", "Gadget"] {
            catalogs.push(catalog_named(&store, name).await);
        }
        let mut customers = Vec::new();
        for i in 0..4 {
            let customer = testing::customer(PROD, &format!("Buyer {i}"), &format!("buyer{i}@wide-1.example"));
            store.create_customer(&customer, &audit("customer.created")).await.unwrap();
            customers.push(customer);
        }
        let base = now() - Duration::days(1);
        let licenses: Vec<License> = (0..7_000_i64)
            .map(|i| {
                let (product, generator) = &catalogs[(i % 2) as usize];
                let series = if i % 12 == 0 { 2 } else { 1 };
                let key = format!("WIDE-{series}{:05}", (i * 7919) % 7_000);
                let mut license = testing::license(generator, product, &key);
                if i % 12 == 6 {
                    license = testing::assigned(license, &customers[(i / 12 % 4) as usize]);
                }
                license.expires_at = (i % 5 != 0).then(|| base + Duration::hours(i % 700));
                license.activation_limit = ActivationLimit::parse([1, 5, -1][(i % 3) as usize]).unwrap();
                license.created_at = base + Duration::seconds(i / 4);
                license.updated_at = license.created_at;
                license
            })
            .collect();
        store.insert_licenses(&licenses, &audit("license.created")).await.unwrap();
        let (product, generator) = catalog(&store, STAGING).await;
        let elsewhere: Vec<License> =
            (0..300).map(|i| testing::license(&generator, &product, &format!("WIDE-9{i:05}"))).collect();
        store.insert_licenses(&elsewhere, &audit("license.created")).await.unwrap();

        // Every key, 11 in 12 keys, and a search too short for a trigram. Each also matches
        // the customers, whose licenses are a part of their own: the keys left are still more
        // than a list sorts whole (5,000).
        // Both orders of every sort for one search, the descending ones for the others.
        for (q, orders) in
            [("wide-", &[Order::Asc, Order::Desc][..]), ("WIDE-1", &[Order::Desc]), ("wi", &[Order::Desc])]
        {
            let lower = q.to_ascii_lowercase();
            let matching: Vec<&License> = licenses
                .iter()
                .filter(|l| {
                    l.key.to_ascii_lowercase().contains(&lower)
                        || l.customer.as_ref().is_some_and(|c| c.email.contains(&lower))
                })
                .collect();
            assert!(matching.len() > 5_000, "{q}");
            for sort in EVERY_SORT {
                for &order in orders {
                    let query = LicenseQuery { q: Some(q.into()), sort, order, ..license_query() };
                    let (seen, total) = pages_of(&store, &query, 2_500, 10_000).await;
                    let mut expected = matching.clone();
                    list_order(&mut expected, sort, order);
                    let expected: Vec<&str> = expected.iter().map(|l| l.id.as_str()).collect();
                    let seen: Vec<&str> = seen.iter().map(|l| l.id.as_str()).collect();
                    assert_eq!(total, expected.len() as i64, "{q} {sort:?} {order:?}");
                    assert!(seen == expected, "{q} {sort:?} {order:?}: the order differs");
                }
            }
        }
    })
    .await;
}

/// SQLite: a search matching more keys than a list sorts whole, but under a tenth of the
/// environment's licenses, is counted from its matched ids alone, without their rows, while
/// licenses wait for the search file, then from the trigram table's count less the matching keys
/// of another environment: exact, and blind to the other environment's keys, both ways.
#[tokio::test]
async fn a_narrow_search_of_many_keys_is_counted_from_its_matches() {
    let (store, dir) = testing::fresh_sqlite().await;
    let (product, generator) = catalog(&store, PROD).await;
    let base = now() - Duration::days(1);
    // One key in 11 holds the search: at its start, further in, or both.
    let license = |i: i64| {
        let key = match i % 33 {
            0 => format!("NARROW-{i:06}"),
            11 => format!("X-NARROW-{i:06}"),
            22 => format!("NARROW-NARROW-{i:06}"),
            _ => format!("OTHER-{i:06}"),
        };
        let mut license = testing::license(&generator, &product, &key);
        license.created_at = base + Duration::seconds(i / 2);
        license.updated_at = license.created_at;
        license
    };
    let mut licenses: Vec<License> = (0..60_000).map(license).collect();
    store.insert_licenses(&licenses, &audit("license.created")).await.unwrap();
    let (staging_product, staging_generator) = catalog(&store, STAGING).await;
    let elsewhere: Vec<License> = (0..200)
        .map(|i| {
            let key = if i % 2 == 0 { format!("NARROW-S{i:05}") } else { format!("S-NARROW-{i:05}") };
            testing::license(&staging_generator, &staging_product, &key)
        })
        .collect();
    store.insert_licenses(&elsewhere, &audit("license.created")).await.unwrap();
    store.catch_up_search_index().await.unwrap();

    // Another process holds the search file's write lock: 330 licenses added and 50 deleted wait.
    let search_file = dir.path().join("keyward.search.db");
    let mut holder = sqlx::SqliteConnection::connect(&format!("sqlite://{}", search_file.display())).await.unwrap();
    sqlx::query("BEGIN IMMEDIATE").execute(&mut holder).await.unwrap();
    let later: Vec<License> = (60_000..63_630).map(license).collect();
    store.insert_licenses(&later, &audit("license.created")).await.unwrap();
    licenses.extend(later);
    let mut deleted = HashSet::new();
    for i in (0..550).step_by(11) {
        store.delete_license(PROD, &licenses[i].id, Box::new(|_| Ok(())), &audit("license.deleted")).await.unwrap();
        deleted.insert(licenses[i].id.clone());
    }
    licenses.retain(|l| !deleted.contains(&l.id));
    let mut expected: Vec<&License> = licenses.iter().filter(|l| l.key.contains("NARROW-")).collect();
    assert_eq!(expected.len(), 5_455 - 50 + 330);

    // First while licenses wait; then with none waiting, when the total is the count of keys
    // starting with the search, plus the trigram table's count less the 100 staging keys holding
    // it further in, less the keys counted by both.
    for waiting in [true, false] {
        if !waiting {
            sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
            store.catch_up_search_index().await.unwrap();
        }
        for sort in [LicenseSort::CreatedAt, LicenseSort::Key] {
            let query = LicenseQuery { q: Some("narrow-".into()), sort, order: Order::Asc, ..license_query() };
            let (seen, total) = pages_of(&store, &query, 2_500, 10_000).await;
            list_order(&mut expected, sort, Order::Asc);
            assert_eq!(total, expected.len() as i64, "{sort:?}, waiting: {waiting}");
            let seen: Vec<&str> = seen.iter().map(|l| l.id.as_str()).collect();
            let expected: Vec<&str> = expected.iter().map(|l| l.id.as_str()).collect();
            assert!(seen == expected, "{sort:?}, waiting: {waiting}: the order differs");
        }
    }
    holder.close().await.unwrap();
    store.close().await;
}

/// More customers match than the store reads as ids (1,000), and more licenses than a list sorts
/// whole (5,000): the customers are matched inside the statements, which walk the sort's index.
#[tokio::test]
async fn a_search_matching_thousands_of_customers_lists_each_license_once() {
    on_each_backend(|store| async move {
        let (product, generator) = catalog(&store, PROD).await;
        let base = now();
        let mut licenses = Vec::new();
        for i in 0..5_050 {
            let customer = testing::customer(PROD, &format!("Reseller {i:04}"), &format!("buyer{i:04}@shop.example"));
            store.create_customer(&customer, &audit("customer.created")).await.unwrap();
            // Every tenth one's key matches too: found through both, listed once.
            let key = if i % 10 == 0 { format!("RESELLER-{i:04}") } else { format!("K-{i:04}") };
            let mut license = testing::assigned(testing::license(&generator, &product, &key), &customer);
            license.expires_at = Some(base + Duration::hours(((i * 7_919) % 5_050) as i64));
            licenses.push(license);
        }
        // Keys that match with no customer, and licenses that do not match at all.
        licenses.extend((0..10).map(|i| testing::license(&generator, &product, &format!("RESELLER-FREE-{i}"))));
        licenses.extend((0..10).map(|i| testing::license(&generator, &product, &format!("OTHER-{i}"))));
        store.insert_licenses(&licenses, &audit("license.created")).await.unwrap();

        let expected: HashSet<String> =
            licenses.iter().filter(|l| !l.key.starts_with("OTHER")).map(|l| l.id.clone()).collect();
        assert_eq!(expected.len(), 5_060);
        for (sort, order) in [(LicenseSort::CreatedAt, Order::Desc), (LicenseSort::ExpiresAt, Order::Asc)] {
            let query = LicenseQuery { q: Some("reseller".into()), sort, order, ..license_query() };
            let (seen, total) = page_all(&store, &query).await;
            assert_eq!(total, 5_060, "{sort:?}");
            assert_eq!(seen.len(), 5_060, "{sort:?}: each license once");
            let mut in_order: Vec<&License> = licenses.iter().filter(|l| expected.contains(&l.id)).collect();
            list_order(&mut in_order, sort, order);
            assert!(seen.iter().eq(in_order.iter().map(|l| &l.id)), "{sort:?} {order:?}: the order differs");
        }
    })
    .await;
}

/// A search matching a few customers with more licenses than a list sorts whole (5,000): newest
/// first, each customer's licenses are walked along that customer's own index and merged, across
/// creation times that the customers share and keys that match with no customer.
#[tokio::test]
async fn a_search_matching_a_few_big_customers_walks_each_newest_first() {
    on_each_backend(|store| async move {
        let (product, generator) = catalog(&store, PROD).await;
        let people = [("Big One", "one@big.example"), ("Big Two", "two@big.example"), ("Small", "s@x.example")];
        let customers = customers(&store, &people).await;
        let base = now() - Duration::days(1);
        let licenses: Vec<License> = (0..7_000_i64)
            .map(|i| {
                // Keys of unassigned licenses match the search too: `K-BIG-…`.
                let key = if i % 50 == 0 { format!("K-BIG-{i:05}") } else { format!("K-{i:05}") };
                let mut license = testing::license(&generator, &product, &key);
                if i % 50 != 0 {
                    // The first customer's licenses were made in one early batch, then both took turns.
                    let customer = if i < 2_000 { 0 } else { [0, 1, 1, 2][(i % 4) as usize] };
                    license = testing::assigned(license, &customers[customer]);
                }
                license.created_at = base + Duration::seconds(i / 3);
                license.updated_at = license.created_at;
                license
            })
            .collect();
        store.insert_licenses(&licenses, &audit("license.created")).await.unwrap();

        let matches = |l: &License| {
            l.key.starts_with("K-BIG") || l.customer.as_ref().is_some_and(|c| c.email.ends_with("big.example"))
        };
        let mut expected: Vec<&License> = licenses.iter().filter(|l| matches(l)).collect();
        assert!(expected.len() > 5_000);
        for order in [Order::Desc, Order::Asc] {
            list_order(&mut expected, LicenseSort::CreatedAt, order);
            for size in [50, 500] {
                let query =
                    LicenseQuery { q: Some("BIG".into()), sort: LicenseSort::CreatedAt, order, ..license_query() };
                let (seen, total) = pages_of(&store, &query, size, 10_000).await;
                assert_eq!(total, expected.len() as i64, "{order:?} by {size}");
                assert!(
                    seen.iter().map(|l| &l.id).eq(expected.iter().map(|l| &l.id)),
                    "{order:?} by {size}: the order differs"
                );
            }
        }
        // One customer's licenses, the same way.
        let one = LicenseQuery { q: Some("one@big".into()), ..license_query() };
        let (seen, total) = pages_of(&store, &one, 500, 10_000).await;
        let theirs = licenses.iter().filter(|l| l.customer.as_ref().is_some_and(|c| c.id == customers[0].id)).count();
        assert_eq!((seen.len(), total), (theirs, theirs as i64));
    })
    .await;
}

#[tokio::test]
async fn status_filters_use_the_effective_status() {
    on_each_backend(|store| async move {
        let licenses = varied_licenses(&store).await;
        let grace = Duration::hours(2);
        let now_ = Utc::now();
        let expired_before = now_ - grace;
        for status in LicenseStatus::ALL {
            let query = LicenseQuery { status: Some(status), expired_before, ..license_query() };
            let (seen, total) = page_through(&store, &query).await;
            let expected: HashSet<_> = licenses
                .iter()
                .filter(|l| keyward_core::status::effective_status(l.status, l.expires_at, grace, now_).0 == status)
                .map(|l| l.id.clone())
                .collect();
            assert_eq!(seen.iter().map(|l| l.id.clone()).collect::<HashSet<_>>(), expected, "{status}");
            assert_eq!(total, expected.len() as i64);
        }
        // Past expiry but inside the grace period is not expired yet.
        let in_grace: Vec<_> = licenses
            .iter()
            .filter(|l| l.status.is_expirable() && l.expires_at.is_some_and(|e| e <= now_ && e > expired_before))
            .collect();
        assert!(!in_grace.is_empty());
        let expired = LicenseQuery { status: Some(LicenseStatus::Expired), expired_before, ..license_query() };
        let (seen, _) = page_through(&store, &expired).await;
        assert!(in_grace.iter().all(|l| !seen.iter().any(|s| s.id == l.id)));
        assert!(seen.iter().any(|l| l.status != LicenseStatus::Expired), "unswept licenses read as expired");
    })
    .await;
}

#[tokio::test]
async fn validations_are_batched_behind() {
    on_each_backend(|store| async move {
        let (product, generator) = catalog(&store, PROD).await;
        let a = testing::license(&generator, &product, "VAL-A");
        let b = testing::license(&generator, &product, "VAL-B");
        store.insert_licenses(&[a.clone(), b.clone()], &audit("license.created")).await.unwrap();
        let events_before = all_audit_events(&store, PROD).await.len();
        let t0 = now();
        let record = |license: &License, seconds: i64, code| ValidationRecord {
            environment: PROD.into(),
            license_id: license.id.clone(),
            at: t0 + Duration::seconds(seconds),
            code,
            fingerprint: Some(format!("fp-{seconds}")),
            ip: Some("192.0.2.7".into()),
        };
        let gone = License { id: "lic_deleted_meanwhile".into(), ..a.clone() };
        let batch = vec![
            record(&a, 3, ValidationCode::Valid),
            record(&b, 1, ValidationCode::NotActivated),
            record(&a, 9, ValidationCode::LicenseNotAssigned),
            record(&gone, 4, ValidationCode::Valid),
            record(&a, 5, ValidationCode::Valid),
        ];
        store.record_validations(&batch).await.unwrap();
        store.record_validations(&[record(&a, 2, ValidationCode::Valid)]).await.unwrap();
        store.record_validations(&[]).await.unwrap();

        let a_now = store.license(PROD, &a.id).await.unwrap().unwrap();
        assert_eq!(a_now.validation_count, 4);
        assert_eq!(a_now.last_validated_at, Some(t0 + Duration::seconds(9)), "the latest, not the last written");
        assert_eq!(a_now.updated_at, a.updated_at, "validations are not edits");
        let b_now = store.license(PROD, &b.id).await.unwrap().unwrap();
        assert_eq!((b_now.validation_count, b_now.last_validated_at), (1, Some(t0 + Duration::seconds(1))));
        assert_eq!(all_audit_events(&store, PROD).await.len(), events_before, "no audit events");

        let first = store.validations(PROD, &a.id, &list(3)).await.unwrap();
        assert_eq!(first.total, 4);
        let at: Vec<_> = first.data.iter().map(|v| (v.at - t0).num_seconds()).collect();
        assert_eq!(at, [9, 5, 3], "newest first");
        assert_eq!(first.data[0], batch[2]);
        let rest = store.validations(PROD, &a.id, &ListQuery { cursor: first.next_cursor, ..list(3) }).await.unwrap();
        assert_eq!(rest.data, vec![record(&a, 2, ValidationCode::Valid)]);
        assert_eq!(rest.next_cursor, None);
        assert_eq!(store.validations(PROD, "lic_deleted_meanwhile", &list(3)).await.unwrap().total, 0);
        assert_eq!(store.validations(STAGING, &a.id, &list(3)).await.unwrap().total, 0);

        // Counts without history rows (the server's queue was full): added, the latest time kept.
        let counted = |license: &License, count, seconds| ValidationCount {
            environment: PROD.into(),
            license_id: license.id.clone(),
            count,
            last_at: t0 + Duration::seconds(seconds),
        };
        let counts = [counted(&a, 1000, 20), counted(&b, 7, 0), counted(&gone, 3, 30), counted(&a, 5, 1)];
        store.count_validations(&counts).await.unwrap();
        store.count_validations(&[]).await.unwrap();
        let a_now = store.license(PROD, &a.id).await.unwrap().unwrap();
        assert_eq!((a_now.validation_count, a_now.last_validated_at), (1009, Some(t0 + Duration::seconds(20))));
        let b_now = store.license(PROD, &b.id).await.unwrap().unwrap();
        assert_eq!((b_now.validation_count, b_now.last_validated_at), (8, Some(t0 + Duration::seconds(1))));
        assert_eq!(store.validations(PROD, &a.id, &list(3)).await.unwrap().total, 4, "no history rows");
    })
    .await;
}

#[tokio::test]
async fn audit_log_filters_and_pages() {
    on_each_backend(|store| async move {
        let (product, _) = catalog(&store, PROD).await;
        for i in 0..6 {
            let renamed = Product { name: format!("Name {i}"), updated_at: now(), ..product.clone() };
            store.update_product(&renamed, &audit("product.updated")).await.unwrap();
        }
        let everything = all_audit_events(&store, PROD).await;
        assert_eq!(everything.len(), 8);
        assert_eq!(everything.last().unwrap().action, "product.created", "oldest last");
        let by_target = AuditQuery { target_id: Some(product.id.clone()), limit: 4, ..Default::default() };
        let page = store.audit_events(PROD, &by_target).await.unwrap();
        assert_eq!((page.total, page.data.len()), (7, 4));
        assert_eq!(page.data[0].after.as_ref().unwrap()["name"], json!("Name 5"));
        let rest =
            store.audit_events(PROD, &AuditQuery { cursor: page.next_cursor, ..by_target.clone() }).await.unwrap();
        assert_eq!(rest.data.len(), 3);
        assert_eq!(rest.data[2].action, "product.created");
        let by_action = AuditQuery { action: Some("generator.created".into()), limit: 10, ..Default::default() };
        assert_eq!(store.audit_events(PROD, &by_action).await.unwrap().total, 1);
        assert_eq!(
            store.audit_events(STAGING, &AuditQuery { limit: 10, ..Default::default() }).await.unwrap().total,
            0
        );
    })
    .await;
}

fn signing_key(kid: &str) -> SigningKeyRecord {
    SigningKeyRecord {
        kid: kid.into(),
        environment: PROD.into(),
        status: "current".into(),
        public_key: format!("pub-{kid}"),
        sealed_private_key: format!("sealed-{kid}"),
        created_at: now(),
    }
}

#[tokio::test]
async fn signing_keys_first_and_rotation() {
    on_each_backend(|store| async move {
        assert!(store.signing_keys(PROD).await.unwrap().is_empty());
        // Many nodes start at once: exactly one first key wins.
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move { store.create_first_signing_key(&signing_key(&format!("k{i}"))).await })
            })
            .collect();
        let mut created = 0;
        for task in tasks {
            created += usize::from(task.await.unwrap().unwrap());
        }
        assert_eq!(created, 1);
        let keys = store.signing_keys(PROD).await.unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].status, "current");
        assert!(!store.create_first_signing_key(&signing_key("late")).await.unwrap());
        assert!(store.signing_keys(STAGING).await.unwrap().is_empty());

        let mut next = signing_key("k-next");
        next.created_at = now() + Duration::seconds(1);
        store.rotate_signing_key(&next, &audit("signing_key.rotated")).await.unwrap();
        let keys = store.signing_keys(PROD).await.unwrap();
        let summary: Vec<_> = keys.iter().map(|k| (k.kid.as_str(), k.status.as_str())).collect();
        assert_eq!(summary, [("k-next", "current"), (keys[1].kid.as_str(), "retired")]);
        assert_eq!(keys[0], next);

        let events = all_audit_events(&store, PROD).await;
        let rotated = events.iter().find(|e| e.action == "signing_key.rotated").unwrap();
        assert_eq!(rotated.target_id, "k-next");
        assert!(rotated.after.as_ref().unwrap().get("sealed_private_key").is_none());
        assert_eq!(rotated.before.as_ref().unwrap()["kid"], json!(keys[1].kid));
        assert!(events.iter().any(|e| e.action == "signing_key.created"));
    })
    .await;
}

#[tokio::test]
async fn opening_refuses_what_it_cannot_use() {
    let err = SqlStore::open("mysql://localhost/keyward").await.unwrap_err();
    assert!(err.to_string().contains("unsupported database URL"), "{err}");
    let err = SqlStore::open("keyward.db").await.unwrap_err();
    assert!(err.to_string().contains("unsupported database URL"), "{err}");

    // Nothing listens on port 1: a clear error, quickly, with no password in it.
    let started = std::time::Instant::now();
    let err = SqlStore::open("postgres://keyward:secret@127.0.0.1:1/keyward").await.unwrap_err();
    assert!(started.elapsed() < std::time::Duration::from_secs(8), "{:?}", started.elapsed());
    let message = err.to_string();
    assert!(message.contains("cannot connect to postgres://…@127.0.0.1:1/keyward"), "{message}");
    assert!(!message.contains("secret"), "{message}");

    // A missing SQLite file and its folder are created; a second open of it is a no-op migration.
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("nested/keyward.db").display());
    let store = SqlStore::open(&url).await.unwrap();
    assert_eq!(store.backend(), Backend::Sqlite);
    let again = SqlStore::open(&url).await.unwrap();
    assert_eq!(again.environments().await.unwrap().len(), 2);
    catalog(&again, PROD).await;
    assert!(dir.path().join("nested/keyward.db-wal").exists(), "SQLite runs in WAL mode");
    assert!(store.license_changes().await.unwrap().is_none(), "SQLite has no other nodes to hear");

    let memory = SqlStore::open("sqlite::memory:").await.unwrap();
    let (product, _) = catalog(&memory, PROD).await;
    assert_eq!(memory.product(PROD, &product.id).await.unwrap(), Some(product));
}

/// The keys a search lists, sorted.
async fn keys_found(store: &SqlStore, q: &str) -> Vec<String> {
    let (seen, total) = page_through(store, &LicenseQuery { q: Some(q.into()), ..license_query() }).await;
    assert_eq!(total, seen.len() as i64, "q={q}");
    let mut keys: Vec<String> = seen.into_iter().map(|l| l.key).collect();
    keys.sort();
    keys
}

/// Licenses waiting for SQLite's key search file to index them.
async fn pending_in(database: &std::path::Path) -> i64 {
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", database.display())).await.unwrap();
    sqlx::query_scalar("SELECT COUNT(*) FROM license_search_pending").fetch_one(&mut conn).await.unwrap()
}

fn strings(keys: &[&str]) -> Vec<String> {
    keys.iter().map(|k| k.to_string()).collect()
}

/// SQLite indexes keys in a file of its own, behind the writes: a search is exact while
/// licenses wait to be indexed (here: another process holds that file), after they are, when
/// the file is deleted, and when a backup is opened beside a search file that is not its own.
#[tokio::test]
async fn key_search_is_exact_whether_or_not_the_search_file_has_caught_up() {
    let (store, dir) = testing::fresh_sqlite().await;
    let database = dir.path().join("keyward.db");
    let search_file = dir.path().join("keyward.search.db");
    let (product, generator) = catalog(&store, PROD).await;
    let insert = |keys: &[&str]| {
        let licenses: Vec<License> = keys.iter().map(|k| testing::license(&generator, &product, k)).collect();
        let store = store.clone();
        async move { store.insert_licenses(&licenses, &audit("license.created")).await.unwrap() }
    };
    let delete = |key: &'static str| {
        let store = store.clone();
        async move {
            store.delete_license(PROD, key, Box::new(|_| Ok(())), &audit("license.deleted")).await.unwrap();
        }
    };
    insert(&["ALPHA-0001", "ALPHA-0002", "BETA-0001"]).await;
    store.catch_up_search_index().await.unwrap();
    assert_eq!(pending_in(&database).await, 0);
    assert_eq!(keys_found(&store, "alpha").await, strings(&["ALPHA-0001", "ALPHA-0002"]));

    // Another process holds the search file's write lock: nothing more is indexed meanwhile.
    let mut holder = sqlx::SqliteConnection::connect(&format!("sqlite://{}", search_file.display())).await.unwrap();
    sqlx::query("BEGIN IMMEDIATE").execute(&mut holder).await.unwrap();
    insert(&["ZEBRA-0001", "ZEBRA-0002"]).await;
    delete("ALPHA-0001").await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(pending_in(&database).await, 3, "the new and the deleted licenses wait");
    let expected = [
        ("zebra", strings(&["ZEBRA-0001", "ZEBRA-0002"])),
        ("ALPHA", strings(&["ALPHA-0002"])),
        ("a-000", strings(&["ALPHA-0002", "BETA-0001", "ZEBRA-0001", "ZEBRA-0002"])),
        ("ze", strings(&["ZEBRA-0001", "ZEBRA-0002"])),
        ("ZEBRA-0001-longer-than-any-key", Vec::new()),
    ];
    for (q, keys) in &expected {
        assert_eq!(&keys_found(&store, q).await, keys, "q={q}, licenses pending");
    }
    sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
    holder.close().await.unwrap();
    store.catch_up_search_index().await.unwrap();
    assert_eq!(pending_in(&database).await, 0);
    for (q, keys) in &expected {
        assert_eq!(&keys_found(&store, q).await, keys, "q={q}, all indexed");
    }

    // A backup opened beside a search file of later changes is indexed anew, not trusted.
    let restored = tempfile::tempdir().unwrap();
    store.backup_sqlite(&restored.path().join("keyward.db")).await.unwrap();
    delete("ZEBRA-0001").await;
    store.catch_up_search_index().await.unwrap();
    assert_eq!(keys_found(&store, "zebra").await, strings(&["ZEBRA-0002"]));
    store.close().await;
    drop(store);
    for file in ["keyward.search.db", "keyward.search.db-wal"] {
        if dir.path().join(file).exists() {
            std::fs::copy(dir.path().join(file), restored.path().join(file)).unwrap();
        }
    }
    let backup = testing::open_sqlite(&restored.path().join("keyward.db")).await;
    assert_eq!(keys_found(&backup, "zebra").await, strings(&["ZEBRA-0001", "ZEBRA-0002"]));
    backup.catch_up_search_index().await.unwrap();
    assert_eq!(keys_found(&backup, "zebra").await, strings(&["ZEBRA-0001", "ZEBRA-0002"]));
    backup.close().await;

    // A deleted search file is built anew from the database.
    for file in ["keyward.search.db", "keyward.search.db-wal", "keyward.search.db-shm"] {
        let _ = std::fs::remove_file(dir.path().join(file));
    }
    let reopened = testing::open_sqlite(&database).await;
    reopened.catch_up_search_index().await.unwrap();
    assert_eq!(keys_found(&reopened, "a-000").await, strings(&["ALPHA-0002", "BETA-0001", "ZEBRA-0002"]));
    assert_eq!(pending_in(&database).await, 0);

    // An in-memory database keeps its search index in memory too, on its one connection.
    let memory = SqlStore::open("sqlite::memory:").await.unwrap();
    let (product, generator) = catalog(&memory, PROD).await;
    let licenses = [testing::license(&generator, &product, "GAMMA-0001")];
    memory.insert_licenses(&licenses, &audit("license.created")).await.unwrap();
    assert_eq!(keys_found(&memory, "amma").await, strings(&["GAMMA-0001"]));
    memory.catch_up_search_index().await.unwrap();
    assert_eq!(keys_found(&memory, "amma").await, strings(&["GAMMA-0001"]));
}

/// A search file of the form before keys were looked up by their start (2c822e9: whole keys in
/// the trigram table, no index of their starts), with the database's own token, is emptied and
/// built anew on open; searches stay exact meanwhile.
#[tokio::test]
async fn a_search_file_of_the_earlier_form_is_built_anew() {
    let (store, dir) = testing::fresh_sqlite().await;
    let database = dir.path().join("keyward.db");
    let search_file = dir.path().join("keyward.search.db");
    let (product, generator) = catalog(&store, PROD).await;
    let licenses: Vec<License> =
        ["ALPHA-0001", "ALPHA-0002", "BETA-0001"].iter().map(|k| testing::license(&generator, &product, k)).collect();
    store.insert_licenses(&licenses, &audit("license.created")).await.unwrap();
    store.catch_up_search_index().await.unwrap();
    store.close().await;
    drop(store);

    let mut file = sqlx::SqliteConnection::connect(&format!("sqlite://{}", search_file.display())).await.unwrap();
    for statement in [
        "DROP TABLE license_key_search",
        "DROP TABLE license_key_rows",
        "CREATE VIRTUAL TABLE license_key_search USING fts5(
            key, license_id UNINDEXED, environment UNINDEXED, tokenize = 'trigram case_sensitive 1', columnsize = 0
        )",
        "CREATE TABLE license_key_rows (license_id TEXT PRIMARY KEY NOT NULL, row INTEGER NOT NULL) WITHOUT ROWID",
    ] {
        sqlx::query(statement).execute(&mut file).await.unwrap();
    }
    for (row, license) in licenses.iter().enumerate() {
        sqlx::query("INSERT INTO license_key_search (rowid, key, license_id, environment) VALUES ($1, $2, $3, $4)")
            .bind(row as i64)
            .bind(license.key.to_lowercase())
            .bind(&license.id)
            .bind(PROD)
            .execute(&mut file)
            .await
            .unwrap();
        sqlx::query("INSERT INTO license_key_rows (license_id, row) VALUES ($1, $2)")
            .bind(&license.id)
            .bind(row as i64)
            .execute(&mut file)
            .await
            .unwrap();
    }
    file.close().await.unwrap();

    let reopened = testing::open_sqlite(&database).await;
    let expected = [
        ("alpha", strings(&["ALPHA-0001", "ALPHA-0002"])),
        ("a-000", strings(&["ALPHA-0001", "ALPHA-0002", "BETA-0001"])),
        ("ETA-0001", strings(&["BETA-0001"])),
    ];
    for (q, keys) in &expected {
        assert_eq!(&keys_found(&reopened, q).await, keys, "q={q}, while the index is rebuilt");
    }
    reopened.catch_up_search_index().await.unwrap();
    assert_eq!(pending_in(&database).await, 0);
    for (q, keys) in &expected {
        assert_eq!(&keys_found(&reopened, q).await, keys, "q={q}, rebuilt");
    }
    reopened.close().await;
    let mut file = sqlx::SqliteConnection::connect(&format!("sqlite://{}", search_file.display())).await.unwrap();
    let starts: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sqlite_master WHERE name = 'license_key_starts'")
        .fetch_one(&mut file)
        .await
        .unwrap();
    assert_eq!(starts, 1, "the index of key starts is back");
    let heads: Vec<String> =
        sqlx::query_scalar("SELECT head FROM license_key_search ORDER BY head").fetch_all(&mut file).await.unwrap();
    assert_eq!(heads, ["a", "a", "b"], "each key's first character apart from the rest");
}

#[tokio::test]
async fn many_nodes_migrate_one_postgres_at_once() {
    let Some(database) = testing::PostgresDatabase::create().await else { return };
    let opening: Vec<_> = (0..4)
        .map(|_| {
            let url = database.url.clone();
            tokio::spawn(async move { SqlStore::open(&url).await })
        })
        .collect();
    let mut stores = Vec::new();
    for task in opening {
        stores.push(task.await.unwrap().expect("every node opens the database"));
    }
    for store in &stores {
        assert_eq!(store.backend(), Backend::Postgres);
        assert_eq!(store.environments().await.unwrap(), vec![PROD.to_owned(), STAGING.to_owned()]);
    }
    for store in stores {
        store.close().await;
    }
}

#[tokio::test]
async fn statistics_are_refreshed_after_a_bulk_load() {
    on_each_backend(|store| async move {
        let (product, generator) = catalog(&store, PROD).await;
        let licenses: Vec<License> =
            (0..100).map(|i| testing::license(&generator, &product, &format!("BULK-{i:03}"))).collect();
        store.insert_licenses(&licenses, &audit("license.created")).await.unwrap();
        store.refresh_statistics().await.unwrap();
    })
    .await;
    // On PostgreSQL it vacuums and analyses: the server's own statistics say so.
    let Some(database) = testing::PostgresDatabase::create().await else { return };
    let store = database.open().await;
    store.refresh_statistics().await.unwrap();
    let mut conn = sqlx::PgConnection::connect(&database.url).await.unwrap();
    let mut refreshed = false;
    for _ in 0..50 {
        let row: (bool,) = sqlx::query_as(
            "SELECT last_vacuum IS NOT NULL AND last_analyze IS NOT NULL FROM pg_stat_user_tables \
             WHERE relname = 'licenses'",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap();
        if row.0 {
            refreshed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(refreshed, "licenses were vacuumed and analysed");
    store.close().await;
}

#[tokio::test]
async fn license_changes_reach_other_nodes() {
    let Some(database) = testing::PostgresDatabase::create().await else { return };
    let writer = database.open().await;
    let other_node = database.open().await;
    let mut changes = other_node.license_changes().await.unwrap().expect("PostgreSQL announces changes");
    let (_, _, license) = one_license(&writer, "HEAR-ME").await;
    let within = std::time::Duration::from_secs(1);
    let heard = tokio::time::timeout(within, changes.recv()).await.expect("the creation is heard within 1 s");
    assert_eq!(heard, Some(CacheInvalidation::License { environment: PROD.into(), key: "HEAR-ME".into() }));

    let refused = writer.change_license(PROD, "HEAR-ME", activate("fp"), &audit("license.activated")).await;
    assert!(refused.is_err());
    let ana = testing::customer(PROD, "Ana", "ana@acme.com");
    writer.create_customer(&ana, &audit("customer.created")).await.unwrap();
    writer.change_license(PROD, &license.id, assign(&ana), &audit("license.assigned")).await.unwrap();
    let heard = tokio::time::timeout(within, changes.recv()).await.expect("the change is heard within 1 s");
    assert_eq!(
        heard,
        Some(CacheInvalidation::License { environment: PROD.into(), key: "HEAR-ME".into() }),
        "refused changes are not announced"
    );

    writer.delete_license(PROD, "HEAR-ME", Box::new(|_| Ok(())), &audit("license.deleted")).await.unwrap();
    let heard = tokio::time::timeout(within, changes.recv()).await.expect("the deletion is heard within 1 s");
    assert_eq!(heard, Some(CacheInvalidation::License { environment: PROD.into(), key: "HEAR-ME".into() }));

    let (product, generator) = catalog(&writer, STAGING).await;
    let batch: Vec<License> = (0..150).map(|i| testing::license(&generator, &product, &format!("NEW-{i}"))).collect();
    writer.insert_licenses(&batch, &audit("license.generated")).await.unwrap();
    let heard = tokio::time::timeout(within, changes.recv()).await.expect("a large batch is heard within 1 s");
    assert_eq!(heard, Some(CacheInvalidation::NewLicenses { environment: STAGING.into() }));
    drop(changes);
    writer.close().await;
    other_node.close().await;
}

/// An installation with a bit of everything in it.
async fn populate(store: &SqlStore) {
    let token = ApiToken {
        id: new_id(IdKind::Token),
        name: "owner".into(),
        role: Role::Owner,
        environment: PROD.into(),
        token_hash: "ef".repeat(32),
        prefix: "kw_ef".into(),
        created_at: now(),
    };
    store.create_token(&token, &audit("token.created")).await.unwrap();
    store
        .put_settings(STAGING, &Settings { grace_period_days: 3, ..Settings::default() }, &audit("settings.updated"))
        .await
        .unwrap();
    assert!(store.create_first_signing_key(&signing_key("k1")).await.unwrap());
    store.rotate_signing_key(&signing_key("k2"), &audit("signing_key.rotated")).await.unwrap();
    let licenses = varied_licenses(store).await;
    let ana = store.customers(PROD, &ListQuery { q: Some("ana@".into()), ..list(1) }).await.unwrap().data.remove(0);
    let (product, mut generator) = catalog(store, STAGING).await;
    generator.metadata = Metadata::parse(json!({"zeta": [1, 2.5, "x"], "alpha": {"b": null, "a": true}})).unwrap();
    store.update_generator(&generator, &audit("generator.updated")).await.unwrap();
    store
        .insert_licenses(&[testing::license(&generator, &product, "STAGING-1")], &audit("license.created"))
        .await
        .unwrap();
    let activatable = licenses.iter().find(|l| l.status == LicenseStatus::Assigned && l.expires_at.is_none()).unwrap();
    store.change_license(PROD, &activatable.id, activate("fp-1"), &audit("license.activated")).await.unwrap();
    store.change_license(PROD, &activatable.id, activate("fp-2"), &audit("license.activated")).await.unwrap();
    let validations: Vec<_> = (0..5)
        .map(|i| ValidationRecord {
            environment: PROD.into(),
            license_id: activatable.id.clone(),
            at: now() + Duration::seconds(i),
            code: ValidationCode::Valid,
            fingerprint: None,
            ip: None,
        })
        .collect();
    store.record_validations(&validations).await.unwrap();
    store.delete_customer(PROD, &ana.id, &audit("customer.deleted")).await.unwrap_err();
}

#[tokio::test]
async fn export_import_between_backends() {
    let (source, _dir) = testing::fresh_sqlite().await;
    populate(&source).await;
    let exported = source.export().await.unwrap();
    exported.verify().unwrap();
    assert_eq!(exported.data.licenses.len(), 42);
    assert_eq!(exported.data.activations.len(), 2);
    assert_eq!(exported.data.validations.len(), 5);
    assert_eq!(exported.data.signing_keys.len(), 2);
    assert!(exported.data.audit_events.len() > 50);

    // Through the file format, including its checks.
    let bytes = exported.to_json().unwrap();
    let read = Dump::from_json(&bytes).unwrap();
    assert_eq!(read, exported);
    let truncated = Dump::from_json(&bytes[..bytes.len() / 2]).unwrap_err();
    assert!(matches!(truncated, StoreError::Import(_)), "{truncated:?}");
    let mut tampered = exported.clone();
    tampered.data.licenses[0].activation_limit = ActivationLimit::parse(7777).unwrap();
    let err = tampered.verify().unwrap_err();
    assert!(err.to_string().contains("checksum"), "{err}");
    let text = String::from_utf8(bytes.clone()).unwrap().replacen("Alpha Suite", "Alpha Suitf", 1);
    assert!(matches!(Dump::from_json(text.as_bytes()), Err(StoreError::Import(_))));

    // Not into an installation that has data.
    let err = source.import(&exported).await.unwrap_err();
    assert_eq!(err.to_string(), "the import is refused: the installation is not empty");
    let (sqlite_copy, _dir2) = testing::fresh_sqlite().await;
    let err = sqlite_copy.import(&tampered).await.unwrap_err();
    assert!(matches!(err, StoreError::Import(_)));
    assert_eq!(sqlite_copy.token_count().await.unwrap(), 0, "a refused import writes nothing");

    let via = match testing::fresh_postgres().await {
        Some((postgres, database)) => {
            postgres.import(&read).await.unwrap();
            let again = postgres.export().await.unwrap();
            assert_eq!(again.data, exported.data, "SQLite → PostgreSQL keeps every record");
            // The imported installation works: the activated license reads back with its devices.
            let id = &exported.data.activations[0].license_id;
            let key = &exported.data.licenses.iter().find(|l| &l.id == id).unwrap().key;
            let (license, activations) = postgres.license_snapshot(PROD, key).await.unwrap().unwrap();
            assert_eq!((license.activation_count, activations.len()), (2, 2));
            postgres.close().await;
            drop(database);
            again
        }
        None => exported.clone(),
    };
    sqlite_copy.import(&via).await.unwrap();
    let back = sqlite_copy.export().await.unwrap();
    assert_eq!(back.data, exported.data, "… → SQLite keeps every record");
    assert_eq!(back.checksum, exported.checksum);

    // A half-written import is impossible: a dump that breaks a reference leaves nothing.
    let (broken_target, _dir3) = testing::fresh_sqlite().await;
    let mut broken = exported.data.clone();
    broken.licenses[5].product_id = "prod_missing".into();
    let err = broken_target.import(&Dump::new(broken).unwrap()).await.unwrap_err();
    assert!(matches!(err, StoreError::Import(_)), "{err:?}");
    let empty = broken_target.export().await.unwrap();
    assert!(empty.data.products.is_empty() && empty.data.tokens.is_empty() && empty.data.audit_events.is_empty());
}

/// Under reads that never stop, SQLite's write-ahead log is still started over: the checkpoint
/// SQLite makes right after a commit always finds readers of before it, so before each batch the
/// history writer checkpoints and waits a moment for the readers to leave the log.
#[tokio::test]
async fn sqlite_history_writes_reuse_the_log_under_endless_reads() {
    let (store, dir) = testing::fresh_sqlite().await;
    let (_, _, license) = one_license(&store, "BUSY").await;
    let url = format!("sqlite://{}", dir.path().join("keyward.db").display());
    let reading = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    // Two readers taking turns, so that one is nearly always in the log.
    let mut readers = Vec::new();
    for _ in 0..2 {
        let (url, reading) = (url.clone(), reading.clone());
        readers.push(tokio::spawn(async move {
            let mut reader = sqlx::SqliteConnection::connect(&url).await.unwrap();
            let mut reads = 0_u64;
            while reading.load(std::sync::atomic::Ordering::Relaxed) {
                sqlx::query("SELECT COUNT(*), MAX(fingerprint) FROM validations").execute(&mut reader).await.unwrap();
                reads += 1;
            }
            reads
        }));
    }
    let at = now();
    let batch: Vec<ValidationRecord> = (0..2_000)
        .map(|i| ValidationRecord {
            environment: PROD.into(),
            license_id: license.id.clone(),
            at: at + Duration::milliseconds(i),
            code: ValidationCode::Valid,
            fingerprint: Some(format!("device-{i:04}-{}", "x".repeat(40))),
            ip: Some("203.0.113.7".into()),
        })
        .collect();
    let wal = dir.path().join("keyward.db-wal");
    let mut largest = 0;
    for _ in 0..100 {
        store.record_validations(&batch).await.unwrap();
        largest = largest.max(std::fs::metadata(&wal).unwrap().len());
    }
    reading.store(false, std::sync::atomic::Ordering::Relaxed);
    for reader in readers {
        assert!(reader.await.unwrap() > 100, "the readers kept reading");
    }
    // Appended to only, the log holds every batch's pages (383 MB when tried); started over, one
    // or a few batches' (10–20 MB).
    assert!(largest < 64 << 20, "the log grew to {largest} bytes");
    let license = store.license(PROD, &license.id).await.unwrap().unwrap();
    assert_eq!(license.validation_count, 200_000);
}

/// SQLite journals validations and folds them into counts and history every few seconds. Until
/// then every read counts them, also after a crash left them there; a fold counts them once,
/// without the rows of a license deleted meanwhile; an export holds them all the same.
#[tokio::test]
async fn sqlite_journaled_validations_are_read_folded_and_survive_a_crash() {
    let (store, dir) = testing::fresh_sqlite().await;
    let (product, generator, a) = one_license(&store, "JOURNAL-A").await;
    let gone = testing::license(&generator, &product, "JOURNAL-GONE");
    store.insert_licenses(std::slice::from_ref(&gone), &audit("license.created")).await.unwrap();
    let t0 = now();
    let record = |license: &License, seconds: i64| ValidationRecord {
        environment: PROD.into(),
        license_id: license.id.clone(),
        at: t0 + Duration::seconds(seconds),
        code: ValidationCode::Valid,
        fingerprint: None,
        ip: None,
    };
    store.record_validations(&[record(&a, 1), record(&gone, 2), record(&a, 3)]).await.unwrap();
    store.record_validations(&[record(&a, 2)]).await.unwrap();
    store.delete_license(PROD, &gone.id, Box::new(|_| Ok(())), &audit("license.deleted")).await.unwrap();

    let database = dir.path().join("keyward.db");
    let mut raw = sqlx::SqliteConnection::connect(&format!("sqlite://{}", database.display())).await.unwrap();
    let journaled = "SELECT COUNT(*) FROM validation_journal";
    assert_eq!(sqlx::query_scalar::<_, i64>(journaled).fetch_one(&mut raw).await.unwrap(), 4, "not folded yet");
    let read = store.license(PROD, &a.id).await.unwrap().unwrap();
    assert_eq!((read.validation_count, read.last_validated_at), (3, Some(t0 + Duration::seconds(3))));
    let first = store.validations(PROD, &a.id, &list(2)).await.unwrap();
    assert_eq!((first.total, first.data.len()), (3, 2));
    let dump = store.export().await.unwrap();
    let exported = dump.data.licenses.iter().find(|l| l.id == a.id).unwrap();
    assert_eq!(exported.validation_count, 3);
    assert_eq!(dump.data.validations, vec![record(&a, 1), record(&a, 3), record(&a, 2)], "none of the deleted license");

    // A crash: the store goes without folding; opened again, it reads what was left.
    store.close().await;
    let reopened = testing::open_sqlite(&database).await;
    let read = reopened.license(PROD, &a.id).await.unwrap().unwrap();
    assert_eq!((read.validation_count, read.last_validated_at), (3, Some(t0 + Duration::seconds(3))));
    reopened.fold_validations().await.unwrap();
    reopened.fold_validations().await.unwrap();
    assert_eq!(sqlx::query_scalar::<_, i64>(journaled).fetch_one(&mut raw).await.unwrap(), 0);
    let folded = reopened.license(PROD, &a.id).await.unwrap().unwrap();
    assert_eq!((folded.validation_count, folded.last_validated_at), (3, Some(t0 + Duration::seconds(3))));
    // The page read before the fold goes on where it stopped.
    let rest = reopened.validations(PROD, &a.id, &ListQuery { cursor: first.next_cursor, ..list(2) }).await.unwrap();
    let seen: Vec<_> = first.data.iter().chain(&rest.data).map(|v| (v.at - t0).num_seconds()).collect();
    assert_eq!((seen, rest.next_cursor), (vec![3, 2, 1], None));
    let kept = "SELECT COUNT(*) FROM validations WHERE license_id = $1";
    assert_eq!(sqlx::query_scalar::<_, i64>(kept).bind(&gone.id).fetch_one(&mut raw).await.unwrap(), 0);

    // Folded while running: counted once, not again from memory.
    reopened.record_validations(&[record(&a, 9)]).await.unwrap();
    assert_eq!(reopened.license(PROD, &a.id).await.unwrap().unwrap().validation_count, 4);
    reopened.fold_validations().await.unwrap();
    let after = reopened.license(PROD, &a.id).await.unwrap().unwrap();
    assert_eq!((after.validation_count, after.last_validated_at), (4, Some(t0 + Duration::seconds(9))));
    assert_eq!(reopened.validations(PROD, &a.id, &list(10)).await.unwrap().total, 4);
    // The fold turned foreign keys off for itself alone: the one writer checks them again.
    let stray = testing::product(PROD, "Never Stored");
    let stray = testing::license(&testing::generator(&stray), &stray, "JOURNAL-STRAY");
    let err = reopened.insert_licenses(&[stray], &audit("license.created")).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { code: "REFERENCE_NOT_FOUND", .. }), "{err:?}");
}

#[tokio::test]
async fn sqlite_backup_is_a_working_copy() {
    let (store, dir) = testing::fresh_sqlite().await;
    let (_, _, license) = one_license(&store, "BACKED-UP").await;
    let path = dir.path().join("backup.db");
    store.backup_sqlite(&path).await.unwrap();
    let err = store.backup_sqlite(&path).await.unwrap_err();
    assert!(err.to_string().contains("exists already"), "{err}");
    let copy = testing::open_sqlite(&path).await;
    assert_eq!(copy.license(PROD, "BACKED-UP").await.unwrap(), Some(license));

    if let Some((postgres, _database)) = testing::fresh_postgres().await {
        let err = postgres.backup_sqlite(&dir.path().join("pg.db")).await.unwrap_err();
        assert!(err.to_string().contains("keyward export"), "{err}");
        postgres.close().await;
    }
}
