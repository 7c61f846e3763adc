//! The license life over HTTP: creation, assignment, activation, validation, every state move.

mod common;

use common::{Fixture, TestServer};
use keyward_client::Error;
use keyward_core::api::{ActivateRequest, ValidateRequest};
use keyward_core::{LicenseStatus, ValidationCode};
use reqwest::Method;
use serde_json::json;

fn validate(key: &str) -> ValidateRequest {
    ValidateRequest { key: key.into(), ..Default::default() }
}

fn activate(key: &str, fingerprint: &str) -> ActivateRequest {
    ActivateRequest {
        key: key.into(),
        fingerprint: fingerprint.into(),
        name: Some("Ana's laptop".into()),
        ..Default::default()
    }
}

async fn walkthrough(server: TestServer) {
    let admin = server.admin().await;
    let app = server.client().await;
    let fx = Fixture::new(&admin).await;
    let license = fx.license(&admin, false).await;
    let key = license["key"].as_str().unwrap();
    assert_eq!(license["status"], "available");
    assert!(key.starts_with("ACME-"), "{key}");
    assert!(keyward_client::key_looks_valid(key));

    // available: not assigned, cannot activate
    let answer = app.validate(validate(key)).await.unwrap();
    assert!(!answer.valid);
    assert_eq!(answer.code, ValidationCode::LicenseNotAssigned);
    let err = app.activate(activate(key, "fp-1")).await.unwrap_err();
    assert_eq!((err.status(), err.code()), (Some(403), Some("LICENSE_NOT_ASSIGNED")));

    // assigned: valid in good standing, and activates
    let assigned = admin.license_action(key, "assign", &json!({"customer": fx.customer})).await.unwrap();
    assert_eq!(assigned["status"], "assigned");
    assert_eq!(assigned["customer"]["id"], fx.customer.as_str());
    let answer = app.validate(validate(key)).await.unwrap();
    assert!(answer.valid, "{answer:?}");
    let first = app.activate(activate(key, "fp-1")).await.unwrap();
    assert!(first.created);
    assert_eq!(first.answer.license.status, LicenseStatus::Active);
    let again = app.activate(activate(key, "fp-1")).await.unwrap();
    assert!(!again.created, "repeating an activation is a no-op");
    assert_eq!(again.answer.activation.id, first.answer.activation.id);

    // validate with and without a device
    let ok = app.validate(ValidateRequest { fingerprint: Some("fp-1".into()), ..validate(key) }).await.unwrap();
    assert_eq!(ok.code, ValidationCode::Valid);
    assert_eq!(ok.activation.as_ref().unwrap().fingerprint, "fp-1");
    let license_info = ok.license.unwrap();
    assert_eq!(license_info.activation_count, 1);
    assert_eq!(license_info.feature_flags, json!({"pro": true}));
    assert!(license_info.customer_email.unwrap().starts_with("ana+"));
    let other = app.validate(ValidateRequest { fingerprint: Some("fp-2".into()), ..validate(key) }).await.unwrap();
    assert_eq!(other.code, ValidationCode::NotActivated);
    let wrong_product =
        app.validate(ValidateRequest { product: Some("prod_other".into()), ..validate(key) }).await.unwrap();
    assert_eq!(wrong_product.code, ValidationCode::ProductMismatch);
    let right_product =
        app.validate(ValidateRequest { product: Some(fx.product.clone()), ..validate(key) }).await.unwrap();
    assert!(right_product.valid);

    // unknown key: 404 with the same answer shape
    let missing = app.validate(validate("ACME-NOPE0-NOPE0-NOPE0-NOPE0-NOPE0")).await.unwrap();
    assert_eq!((missing.valid, missing.code), (false, ValidationCode::LicenseNotFound));

    // deactivate frees the slot
    let freed = app.deactivate(key, "fp-1").await.unwrap();
    assert_eq!(freed.license.activation_count, 0);
    let err = app.deactivate(key, "fp-1").await.unwrap_err();
    assert_eq!((err.status(), err.code()), (Some(404), Some("NOT_ACTIVATED")));
}

async fn every_transition(server: TestServer) {
    let admin = server.admin().await;
    let app = server.client().await;
    let fx = Fixture::new(&admin).await;
    let license = fx.license(&admin, true).await;
    let id = license["id"].as_str().unwrap();
    let key = license["key"].as_str().unwrap();
    let act = |action: &'static str, body: serde_json::Value| {
        let admin = admin.clone();
        let id = id.to_owned();
        async move { admin.request(Method::POST, &format!("/licenses/{id}/actions/{action}"), Some(&body)).await.unwrap() }
    };
    // refused from assigned: every move but activation (by a device), expiry (by time) and revoke
    for action in ["suspend", "unsuspend", "inactivate", "reactivate", "assign"] {
        let body = if action == "assign" {
            json!({"customer": fx.customer})
        } else if action == "suspend" || action == "inactivate" {
            json!({"reason": "test"})
        } else {
            json!({})
        };
        let response = act(action, body).await;
        assert_eq!(response.status, 409, "{action} from assigned: {:?}", response.body);
        assert_eq!(response.error_code(), Some("INVALID_TRANSITION"));
        assert!(
            response.body["error"]["message"].as_str().unwrap().contains("from assigned to"),
            "{:?}",
            response.body
        );
    }
    app.activate(activate(key, "device-a")).await.unwrap();
    // active -> suspended (a reason is required) -> active
    let no_reason = act("suspend", json!({})).await;
    assert_eq!((no_reason.status, no_reason.error_code()), (422, Some("INVALID_FIELD")));
    let suspended = act("suspend", json!({"reason": "chargeback"})).await;
    assert_eq!((suspended.status, suspended.body["status"].as_str()), (200, Some("suspended")));
    assert_eq!(suspended.body["suspension_reason"], "chargeback");
    assert_eq!(app.validate(validate(key)).await.unwrap().code, ValidationCode::LicenseSuspended);
    let err = app.activate(activate(key, "device-b")).await.unwrap_err();
    assert_eq!((err.status(), err.code()), (Some(403), Some("LICENSE_SUSPENDED")));
    assert_eq!(act("reactivate", json!({})).await.status, 409);
    assert_eq!(act("unsuspend", json!({})).await.body["status"], "active");
    // active -> inactive -> active
    assert_eq!(act("inactivate", json!({})).await.body["status"], "inactive");
    assert_eq!(app.validate(validate(key)).await.unwrap().code, ValidationCode::LicenseInactive);
    assert_eq!(act("suspend", json!({"reason": "x"})).await.status, 409);
    assert_eq!(act("reactivate", json!({})).await.body["status"], "active");
    // revoke: final, and every device is let go at once
    let revoked = act("revoke", json!({})).await;
    assert_eq!(
        (revoked.body["status"].as_str(), revoked.body["activation_count"].as_i64()),
        (Some("revoked"), Some(0))
    );
    assert_eq!(app.validate(validate(key)).await.unwrap().code, ValidationCode::LicenseRevoked);
    for action in ["revoke", "unsuspend", "reactivate", "inactivate"] {
        let response = act(action, json!({})).await;
        assert_eq!(
            (response.status, response.error_code()),
            (409, Some("INVALID_TRANSITION")),
            "{action} after revoke"
        );
    }
    let err = app.activate(activate(key, "device-a")).await.unwrap_err();
    assert_eq!((err.status(), err.code()), (Some(403), Some("LICENSE_REVOKED")));
    let activations = admin.activations(id).await.unwrap();
    assert_eq!(activations["data"].as_array().unwrap().len(), 0);
    // unknown actions and editing a revoked license
    assert_eq!(act("explode", json!({})).await.status, 404);
    assert_eq!(act("expire", json!({})).await.status, 404);
    let edit =
        admin.request(Method::PATCH, &format!("/licenses/{id}"), Some(&json!({"metadata": {"a": 1}}))).await.unwrap();
    assert_eq!((edit.status, edit.error_code()), (409, Some("LICENSE_REVOKED")));
    // available can be revoked too
    let spare = fx.license(&admin, false).await;
    let response = admin
        .request(Method::POST, &format!("/licenses/{}/actions/revoke", spare["id"].as_str().unwrap()), None)
        .await
        .unwrap();
    assert_eq!(response.body["status"], "revoked");
}

async fn activation_limit_holds_under_concurrency(server: TestServer) {
    let admin = server.admin().await;
    let app = server.client().await;
    let fx = Fixture::new(&admin).await;
    let license = fx.license(&admin, true).await;
    let key = license["key"].as_str().unwrap().to_owned();
    let attempts = 60;
    let mut tasks = Vec::new();
    for n in 0..attempts {
        let app = app.clone();
        let key = key.clone();
        tasks.push(tokio::spawn(async move { app.activate(activate(&key, &format!("device-{n}"))).await }));
    }
    let (mut created, mut refused) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            Ok(activation) if activation.created => created += 1,
            Err(Error::Api { status: 409, code, .. }) if code == "ACTIVATION_LIMIT_EXCEEDED" => refused += 1,
            other => panic!("unexpected answer: {other:?}"),
        }
    }
    assert_eq!((created, refused), (3, attempts - 3));
    let license = admin.license(&key).await.unwrap();
    assert_eq!(license["activation_count"], 3);
    let activations = admin.activations(license["id"].as_str().unwrap()).await.unwrap();
    assert_eq!(activations["data"].as_array().unwrap().len(), 3);
    assert_eq!((&activations["total"], &activations["next_cursor"]), (&json!(3), &json!(null)), "the list shape");
}

async fn domains_activate_on_the_spot(server: TestServer) {
    let admin = server.admin().await;
    let app = server.client().await;
    let fx = Fixture::new(&admin).await;
    let license = fx.license(&admin, true).await;
    let key = license["key"].as_str().unwrap();
    let site = |domain: &str| ValidateRequest { domain: Some(domain.into()), ..validate(key) };
    for (n, domain) in ["a.example.com", "B.example.com", "c.example.com"].into_iter().enumerate() {
        let answer = app.validate(site(domain)).await.unwrap();
        assert_eq!(answer.code, ValidationCode::Valid, "{domain}");
        assert_eq!(answer.activation.unwrap().fingerprint, domain.to_lowercase());
        // each activation forgets the snapshot; the counts still queued are in the answer
        assert_eq!(answer.license.unwrap().validation_count, n as i64 + 1, "{domain}");
    }
    assert_eq!(app.validate(site("a.example.com")).await.unwrap().code, ValidationCode::Valid);
    assert_eq!(app.validate(site("d.example.com")).await.unwrap().code, ValidationCode::DomainLimitReached);
    let bad = app.validate(site("not a domain")).await.unwrap_err();
    assert_eq!((bad.status(), bad.code()), (Some(422), Some("INVALID_FIELD")));
    assert_eq!(admin.license(key).await.unwrap()["status"], "active");
}

async fn expiry_and_grace(server: TestServer) {
    let admin = server.admin().await;
    let app = server.client().await;
    let fx = Fixture::with_generator(&admin, json!({"type": "uuid"}), 2, Some((30, "first_activation"))).await;
    let license = fx.license(&admin, true).await;
    let key = license["key"].as_str().unwrap();
    assert_eq!(license["expires_at"], serde_json::Value::Null, "expiry counts from the first activation");
    app.activate(activate(key, "fp")).await.unwrap();
    let activated = admin.license(key).await.unwrap();
    let expires_at: chrono::DateTime<chrono::Utc> = activated["expires_at"].as_str().unwrap().parse().unwrap();
    let days = (expires_at - chrono::Utc::now()).num_hours();
    assert!((29 * 24..=30 * 24).contains(&days), "{days} hours");

    // a past expiry cannot be set; a near one can, and passes while the test waits
    let past = admin
        .request(Method::PATCH, &format!("/licenses/{key}"), Some(&json!({"expires_at": "2001-01-01T00:00:00Z"})))
        .await
        .unwrap();
    assert_eq!((past.status, past.body["error"]["field"].as_str()), (422, Some("expires_at")));
    let soon = (chrono::Utc::now() + chrono::Duration::milliseconds(1500)).to_rfc3339();
    admin.edit_license(key, &json!({"expires_at": soon})).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1700)).await;
    let answer = app.validate(validate(key)).await.unwrap();
    assert_eq!(answer.code, ValidationCode::LicenseExpired);
    assert_eq!(admin.license(key).await.unwrap()["status"], "expired", "expired at once in every read");
    let listed = admin.licenses(&[("status", "expired")]).await.unwrap();
    assert_eq!(listed["total"], 1);
    let err = app.activate(activate(key, "fp2")).await.unwrap_err();
    assert_eq!(err.code(), Some("LICENSE_EXPIRED"));
    let renew = admin
        .request(Method::PATCH, &format!("/licenses/{key}"), Some(&json!({"expires_at": "2999-01-01T00:00:00Z"})))
        .await
        .unwrap();
    assert_eq!((renew.status, renew.error_code()), (409, Some("LICENSE_EXPIRED")), "an expired license is not renewed");

    // with a grace period the same license still validates, saying so
    let settings = admin.request(Method::PATCH, "/settings", Some(&json!({"grace_period_days": 3}))).await.unwrap();
    assert_eq!(settings.status, 200);
    let answer = app.validate(validate(key)).await.unwrap();
    assert_eq!((answer.code, answer.in_grace), (ValidationCode::Valid, Some(true)));
    let read = admin.license(key).await.unwrap();
    assert_eq!((read["status"].as_str(), read["in_grace"].as_bool()), (Some("active"), Some(true)));
}

async fn delete_rules(server: TestServer) {
    let admin = server.admin().await;
    let app = server.client().await;
    let fx = Fixture::new(&admin).await;
    let never = fx.license(&admin, true).await;
    let response =
        admin.request(Method::DELETE, &format!("/licenses/{}", never["id"].as_str().unwrap()), None).await.unwrap();
    assert_eq!(response.status, 204);
    assert_eq!(
        admin.request(Method::GET, &format!("/licenses/{}", never["id"].as_str().unwrap()), None).await.unwrap().status,
        404
    );

    let used = fx.license(&admin, true).await;
    let key = used["key"].as_str().unwrap();
    app.activate(activate(key, "fp")).await.unwrap();
    app.deactivate(key, "fp").await.unwrap();
    let refused = admin.request(Method::DELETE, &format!("/licenses/{key}"), None).await.unwrap();
    assert_eq!((refused.status, refused.error_code()), (409, Some("LICENSE_WAS_ACTIVATED")));
    let forced = admin.request(Method::DELETE, &format!("/licenses/{key}?force=true"), None).await.unwrap();
    assert_eq!(forced.status, 204);
    assert_eq!(app.validate(validate(key)).await.unwrap().code, ValidationCode::LicenseNotFound);

    // the key is free again
    let again = admin
        .request(
            Method::POST,
            "/licenses",
            Some(&json!({"product": fx.product, "generator": fx.generator, "key": key})),
        )
        .await
        .unwrap();
    assert_eq!(again.status, 201, "{:?}", again.body);
    let taken = admin
        .request(
            Method::POST,
            "/licenses",
            Some(&json!({"product": fx.product, "generator": fx.generator, "key": key})),
        )
        .await
        .unwrap();
    assert_eq!((taken.status, taken.error_code()), (409, Some("KEY_TAKEN")));
}

async fn edits_keep_the_key_product_and_environment(server: TestServer) {
    let admin = server.admin().await;
    let fx = Fixture::new(&admin).await;
    let license = fx.license(&admin, false).await;
    let id = license["id"].as_str().unwrap();
    for (field, value) in
        [("key", json!("NEW-KEY")), ("product", json!("prod_other")), ("environment", json!("staging"))]
    {
        let response =
            admin.request(Method::PATCH, &format!("/licenses/{id}"), Some(&json!({ field: value }))).await.unwrap();
        assert_eq!(
            (response.status, response.error_code(), response.body["error"]["field"].as_str()),
            (422, Some("FIELD_IMMUTABLE"), Some(field))
        );
    }
    // PATCH assigns through the customer field; PUT replaces everything and needs every field
    let edited = admin
        .edit_license(id, &json!({"customer": fx.customer, "activation_limit": 7, "metadata": {"order": "A-1"}}))
        .await
        .unwrap();
    assert_eq!((edited["status"].as_str(), edited["activation_limit"].as_i64()), (Some("assigned"), Some(7)));
    let unassign =
        admin.request(Method::PATCH, &format!("/licenses/{id}"), Some(&json!({"customer": null}))).await.unwrap();
    assert_eq!((unassign.status, unassign.error_code()), (409, Some("INVALID_TRANSITION")));
    let partial =
        admin.request(Method::PUT, &format!("/licenses/{id}"), Some(&json!({"activation_limit": 2}))).await.unwrap();
    assert_eq!(partial.status, 422);
    let mut whole = edited.clone();
    whole["activation_limit"] = json!(-1);
    whole["feature_flags"] = json!({"seats": 5});
    let replaced = admin.request(Method::PUT, &format!("/licenses/{id}"), Some(&whole)).await.unwrap();
    assert_eq!(replaced.status, 200, "{:?}", replaced.body);
    assert_eq!(
        (replaced.body["activation_limit"].as_i64(), &replaced.body["feature_flags"]),
        (Some(-1), &json!({"seats": 5}))
    );
    assert_eq!(replaced.body["key"], license["key"]);
}

async fn bulk_generation(server: TestServer) {
    let admin = server.admin().await;
    let fx = Fixture::new(&admin).await;
    let generated = admin.generate(&fx.generator, 250, Some(&fx.customer)).await.unwrap();
    let data = generated["data"].as_array().unwrap();
    assert_eq!(data.len(), 250);
    let keys: std::collections::HashSet<_> = data.iter().map(|l| l["key"].as_str().unwrap()).collect();
    assert_eq!(keys.len(), 250);
    assert!(data.iter().all(|l| l["status"] == "assigned"));
    let too_many = admin
        .request(Method::POST, &format!("/generators/{}/generate", fx.generator), Some(&json!({"count": 1001})))
        .await
        .unwrap();
    assert_eq!((too_many.status, too_many.body["error"]["field"].as_str()), (422, Some("count")));
    let listed = admin.licenses(&[("customer", &fx.customer), ("limit", "1")]).await.unwrap();
    assert_eq!(listed["total"], 250);
}

async fn validation_history_is_recorded(mut server: TestServer) {
    let admin = server.admin().await;
    let app = server.client().await;
    let fx = Fixture::new(&admin).await;
    let license = fx.license(&admin, true).await;
    let key = license["key"].as_str().unwrap().to_owned();
    for _ in 0..5 {
        app.validate(validate(&key)).await.unwrap();
    }
    // a change forgets the snapshot before its five are written; the one read afresh counts them
    let edit = json!({"metadata": {"seat": 2}});
    let edited = admin.request(Method::PATCH, &format!("/licenses/{key}"), Some(&edit)).await.unwrap();
    assert_eq!(edited.status, 200);
    let answer = app.validate(validate(&key)).await.unwrap();
    assert_eq!(answer.license.unwrap().validation_count, 6, "counted in the answer at once");
    // a graceful stop flushes what was still queued
    server.restart().await;
    let admin = server.admin().await;
    let read = admin.license(&key).await.unwrap();
    assert_eq!(read["validation_count"], 6);
    assert!(read["last_validated_at"].is_string());
    let usage = admin.request(Method::GET, &format!("/licenses/{key}/usage?limit=4"), None).await.unwrap();
    assert_eq!((usage.status, usage.body["total"].as_i64()), (200, Some(6)));
    assert_eq!(usage.body["data"].as_array().unwrap().len(), 4);
    assert_eq!(usage.body["data"][0]["code"], "VALID");
}

async fn rate_limits_per_key_and_for_unknown_keys(server: TestServer) {
    let admin = server.admin().await;
    let app = server.client().await;
    let fx = Fixture::new(&admin).await;
    let key = fx.license(&admin, true).await["key"].as_str().unwrap().to_owned();
    let other = fx.license(&admin, true).await["key"].as_str().unwrap().to_owned();
    admin
        .request(Method::PATCH, "/settings", Some(&json!({"validate_rate_per_key": 3, "not_found_rate_per_ip": 2})))
        .await
        .unwrap();
    for _ in 0..3 {
        assert!(app.validate(validate(&key)).await.unwrap().valid);
    }
    match app.validate(validate(&key)).await {
        Err(Error::RateLimited { retry_after }) => assert!(retry_after.is_some_and(|s| s >= 1)),
        other => panic!("expected a signed 429, got {other:?}"),
    }
    assert!(app.validate(validate(&other)).await.unwrap().valid, "another key has its own budget");
    // two unknown keys are answered; the third blocks the client for everything
    for n in 0..2 {
        assert_eq!(app.validate(validate(&format!("NOPE-{n}"))).await.unwrap().code, ValidationCode::LicenseNotFound);
    }
    assert!(matches!(app.validate(validate("NOPE-2")).await, Err(Error::RateLimited { .. })));
    assert!(
        matches!(app.validate(validate(&other)).await, Err(Error::RateLimited { .. })),
        "an enumerating client is refused"
    );
    // the admin API is not limited
    assert_eq!(admin.request(Method::GET, "/licenses", None).await.unwrap().status, 200);
}

async fn abandoned_requests_never_break_later_writes(server: TestServer) {
    let admin = server.admin().await;
    let fx = Fixture::with_generator(&admin, json!({"type": "uuid"}), -1, None).await;
    let license = fx.license(&admin, true).await;
    let key = license["key"].as_str().unwrap().to_owned();
    // Clients that give up after 1 to 30 ms: many leave while their activation is in a transaction.
    let mut tasks = Vec::new();
    for n in 0..120u64 {
        let url = format!("{}/api/v1/activate", server.base_url);
        let key = key.clone();
        tasks.push(tokio::spawn(async move {
            let impatient =
                reqwest::Client::builder().timeout(std::time::Duration::from_millis(1 + n % 30)).build().unwrap();
            let _ = impatient.post(url).json(&json!({"key": key, "fingerprint": format!("gone-{n}")})).send().await;
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    // Writes of every kind still work, and what was committed is whole.
    let app = server.client().await;
    for n in 0..5 {
        let created = app.activate(activate(&key, &format!("after-{n}"))).await.unwrap();
        assert!(created.created);
    }
    admin.create_product("Still writable").await.unwrap();
    // A request the client left may still be queued behind the license's lock and commit after
    // the first read: the count and the list must agree once it has, and stay agreeing.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let (count, listed) = loop {
        let read = admin.license(&key).await.unwrap();
        let count = read["activation_count"].as_u64().unwrap() as usize;
        let listed = admin.activations(read["id"].as_str().unwrap()).await.unwrap();
        let listed = listed["data"].as_array().unwrap().len();
        let again = admin.license(&key).await.unwrap()["activation_count"].as_u64().unwrap() as usize;
        if (count == listed && again == count) || std::time::Instant::now() > deadline {
            break (count, listed);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(count, listed);
    assert!(count >= 5);
}

on_both_backends!(
    abandoned_requests_never_break_later_writes,
    rate_limits_per_key_and_for_unknown_keys,
    walkthrough,
    every_transition,
    activation_limit_holds_under_concurrency,
    domains_activate_on_the_spot,
    expiry_and_grace,
    delete_rules,
    edits_keep_the_key_product_and_environment,
    bulk_generation,
    validation_history_is_recorded,
);
