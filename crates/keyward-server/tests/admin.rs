//! The admin API around licenses: environments, roles, lists, audit, bad input, the API document.

mod common;

use common::{Fixture, TestServer};
use keyward_client::Client;
use keyward_core::api::ValidateRequest;
use keyward_core::ValidationCode;
use reqwest::Method;
use serde_json::{json, Value};

async fn environments_are_isolated(server: TestServer) {
    let admin = server.admin().await;
    let staging_token =
        admin.create_token("staging owner", "owner", "staging").await.unwrap()["token"].as_str().unwrap().to_owned();
    let staging = server.client_in("staging").await.with_token(&staging_token);
    // a production token at staging's URL, and the other way round
    let response = server
        .client_in("staging")
        .await
        .with_token(common::OWNER_TOKEN)
        .request(Method::GET, "/licenses", None)
        .await
        .unwrap();
    assert_eq!((response.status, response.error_code()), (403, Some("ENVIRONMENT_MISMATCH")));
    let response =
        server.client().await.with_token(&staging_token).request(Method::GET, "/products", None).await.unwrap();
    assert_eq!((response.status, response.error_code()), (403, Some("ENVIRONMENT_MISMATCH")));

    let fx = Fixture::new(&staging).await;
    let license = fx.license(&staging, true).await;
    let key = license["key"].as_str().unwrap();
    assert_eq!(license["environment"], "staging");
    let in_staging = server
        .client_in("staging")
        .await
        .validate(ValidateRequest { key: key.into(), ..Default::default() })
        .await
        .unwrap();
    assert!(in_staging.valid);
    let in_production =
        server.client().await.validate(ValidateRequest { key: key.into(), ..Default::default() }).await.unwrap();
    assert_eq!(in_production.code, ValidationCode::LicenseNotFound);
    assert_eq!(admin.request(Method::GET, &format!("/licenses/{key}"), None).await.unwrap().status, 404);
    assert_eq!(admin.request(Method::GET, &format!("/products/{}", fx.product), None).await.unwrap().status, 404);
    // an environment that does not exist
    let nowhere = Client::new(&server.base_url).environment("nowhere").with_token(common::OWNER_TOKEN);
    let response = nowhere.request(Method::GET, "/licenses", None).await.unwrap();
    assert_eq!((response.status, response.error_code()), (404, Some("ENVIRONMENT_NOT_FOUND")));
}

async fn roles_are_enforced(server: TestServer) {
    let admin = server.admin().await;
    let fx = Fixture::new(&admin).await;
    let license = fx.license(&admin, false).await;
    let id = license["id"].as_str().unwrap().to_owned();
    let token_for = |role: &'static str| {
        let admin = admin.clone();
        async move { admin.create_token(role, role, "production").await.unwrap()["token"].as_str().unwrap().to_owned() }
    };
    let client_for = |token: String| Client::new(&server.base_url).with_token(token);
    let create_product = json!({"name": "Another"});

    let read_only = client_for(token_for("read_only").await);
    assert_eq!(read_only.request(Method::GET, "/licenses", None).await.unwrap().status, 200);
    assert_eq!(read_only.request(Method::GET, "/audit-events", None).await.unwrap().status, 200);
    let denied = read_only.request(Method::POST, "/products", Some(&create_product)).await.unwrap();
    assert_eq!((denied.status, denied.error_code()), (403, Some("FORBIDDEN")));

    let support = client_for(token_for("support").await);
    assert_eq!(support.request(Method::POST, "/products", Some(&create_product)).await.unwrap().status, 403);
    let suspend = support.request(Method::POST, &format!("/licenses/{id}/actions/revoke"), None).await.unwrap();
    assert_eq!(suspend.status, 403);
    let assign = support
        .request(Method::POST, &format!("/licenses/{id}/actions/assign"), Some(&json!({"customer": fx.customer})))
        .await
        .unwrap();
    assert_eq!(assign.status, 200, "support may assign: {:?}", assign.body);

    let manager = client_for(token_for("license_manager").await);
    assert_eq!(manager.request(Method::POST, "/products", Some(&create_product)).await.unwrap().status, 201);
    assert_eq!(
        manager.request(Method::PATCH, "/settings", Some(&json!({"grace_period_days": 1}))).await.unwrap().status,
        403
    );
    let token = manager.request(Method::POST, "/tokens", Some(&json!({"name": "x", "role": "owner"}))).await.unwrap();
    assert_eq!(token.status, 403, "only an owner makes tokens");

    let admin_role = client_for(token_for("admin").await);
    assert_eq!(
        admin_role.request(Method::PATCH, "/settings", Some(&json!({"grace_period_days": 0}))).await.unwrap().status,
        200
    );
    assert_eq!(
        admin_role.request(Method::POST, "/tokens", Some(&json!({"name": "x", "role": "owner"}))).await.unwrap().status,
        403
    );
    assert_eq!(admin_role.request(Method::POST, "/signing-keys/rotate", None).await.unwrap().status, 403);

    // no token, a malformed header, a wrong token
    let anonymous = Client::new(&server.base_url);
    assert_eq!(anonymous.request(Method::GET, "/licenses", None).await.unwrap().status, 401);
    assert_eq!(client_for("kw_not_a_token".into()).request(Method::GET, "/licenses", None).await.unwrap().status, 401);
}

async fn lists_search_filter_sort_and_page(server: TestServer) {
    let admin = server.admin().await;
    let fx = Fixture::new(&admin).await;
    let other =
        admin.create_customer("Bruno Costa", "bruno@globex.io").await.unwrap()["id"].as_str().unwrap().to_owned();
    let mut keys = Vec::new();
    for n in 0..12 {
        let mut body = json!({"product": fx.product, "generator": fx.generator, "activation_limit": n + 1});
        if n % 3 == 0 {
            body["customer"] = json!(other);
        }
        keys.push(admin.create_license(&body).await.unwrap()["key"].as_str().unwrap().to_owned());
    }
    async fn total(admin: &Client, query: Vec<(&str, &str)>) -> i64 {
        admin.licenses(&query).await.unwrap()["total"].as_i64().unwrap()
    }
    assert_eq!(total(&admin, vec![]).await, 12);
    assert_eq!(total(&admin, vec![("q", "globex.io")]).await, 4, "email domain");
    assert_eq!(total(&admin, vec![("q", "BRUNO")]).await, 4, "customer name, any case");
    assert_eq!(total(&admin, vec![("q", &keys[5][5..14])]).await, 1, "key substring");
    assert_eq!(total(&admin, vec![("q", "acme studio")]).await, 12, "product name");
    assert_eq!(total(&admin, vec![("status", "assigned")]).await, 4);
    assert_eq!(total(&admin, vec![("status", "available")]).await, 8);
    assert_eq!(total(&admin, vec![("customer", &other)]).await, 4);
    assert_eq!(total(&admin, vec![("product", &fx.product)]).await, 12);
    assert_eq!(total(&admin, vec![("q", "no-such-thing")]).await, 0);

    let sorted = admin.licenses(&[("sort", "activation_limit"), ("order", "asc"), ("limit", "3")]).await.unwrap();
    let limits: Vec<i64> =
        sorted["data"].as_array().unwrap().iter().map(|l| l["activation_limit"].as_i64().unwrap()).collect();
    assert_eq!(limits, vec![1, 2, 3]);

    // paging through with a cursor yields every license once, for several sorts
    for sort in ["key", "customer", "expires_at", "created_at", "status"] {
        for order in ["asc", "desc"] {
            let mut seen = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let mut query = vec![("sort", sort), ("order", order), ("limit", "5")];
                if let Some(c) = &cursor {
                    query.push(("cursor", c));
                }
                let page = admin.licenses(&query).await.unwrap();
                seen.extend(page["data"].as_array().unwrap().iter().map(|l| l["key"].as_str().unwrap().to_owned()));
                match page["next_cursor"].as_str() {
                    Some(next) => cursor = Some(next.to_owned()),
                    None => break,
                }
            }
            let mut unique = seen.clone();
            unique.sort();
            unique.dedup();
            assert_eq!((seen.len(), unique.len()), (12, 12), "sort {sort} {order}");
        }
    }
    for (name, value) in [
        ("sort", "colour"),
        ("order", "up"),
        ("limit", "0"),
        ("limit", "501"),
        ("status", "sleeping"),
        ("limit", "x"),
        ("cursor", "not-a-cursor"),
    ] {
        let response = admin.request(Method::GET, &format!("/licenses?{name}={value}"), None).await.unwrap();
        assert_eq!(response.status, 422, "{name}={value}: {:?}", response.body);
    }
}

async fn every_write_is_audited(server: TestServer) {
    let admin = server.admin().await;
    let app = server.client().await;
    let fx = Fixture::new(&admin).await;
    let license = fx.license(&admin, true).await;
    let id = license["id"].as_str().unwrap();
    let key = license["key"].as_str().unwrap();
    app.activate(keyward_core::api::ActivateRequest {
        key: key.into(),
        fingerprint: "fp".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    admin.license_action(id, "suspend", &json!({"reason": "fraud check"})).await.unwrap();
    let events = admin.request(Method::GET, &format!("/audit-events?target={id}"), None).await.unwrap();
    let actions: Vec<&str> =
        events.body["data"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, vec!["license.suspended", "license.activated", "license.created"], "newest first");
    let suspended = &events.body["data"][0];
    assert_eq!(
        (suspended["before"]["status"].as_str(), suspended["after"]["status"].as_str()),
        (Some("active"), Some("suspended"))
    );
    assert!(suspended["actor"].as_str().unwrap().starts_with("token:"));
    assert_eq!(suspended["ip"], "127.0.0.1");
    assert!(!events.raw.windows(key.len()).any(|w| w == key.as_bytes()), "the audit log never shows a whole key");
    let all = admin.request(Method::GET, "/audit-events?limit=500", None).await.unwrap();
    let kinds: std::collections::HashSet<&str> =
        all.body["data"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    for kind in ["product.created", "generator.created", "customer.created", "license.created"] {
        assert!(kinds.contains(kind), "{kind} in {kinds:?}");
    }
}

async fn bad_input_is_a_clear_4xx(server: TestServer) {
    let admin = server.admin().await;
    let fx = Fixture::new(&admin).await;
    let license = fx.license(&admin, false).await;
    let id = license["id"].as_str().unwrap();
    let send = |method: Method, path: String, bytes: Vec<u8>| {
        let admin = admin.clone();
        async move { admin.raw(method, &path, "application/json", bytes).await.unwrap() }
    };
    // method, path, body, expected status, code and field
    type Case<'a> = (Method, String, Vec<u8>, u16, &'a str, Option<&'a str>);
    let cases: Vec<Case> = vec![
        (Method::POST, "/products".into(), b"{\"name\": ".to_vec(), 400, "MALFORMED_JSON", None),
        (Method::POST, "/products".into(), vec![0xff, 0xfe, 0x7b], 400, "MALFORMED_JSON", None),
        (Method::POST, "/products".into(), b"{\"name\": \"\xff\xfe\"}".to_vec(), 400, "MALFORMED_JSON", None),
        (Method::POST, "/products".into(), b"".to_vec(), 400, "MALFORMED_JSON", None),
        (Method::POST, "/products".into(), b"[1,2]".to_vec(), 422, "INVALID_BODY", None),
        (Method::POST, "/products".into(), b"{\"name\": 5}".to_vec(), 422, "INVALID_FIELD", Some("name")),
        (Method::POST, "/products".into(), b"{\"name\": \"  \"}".to_vec(), 422, "INVALID_FIELD", Some("name")),
        (
            Method::POST,
            "/customers".into(),
            br#"{"name": "A", "email": "nope"}"#.to_vec(),
            422,
            "INVALID_FIELD",
            Some("email"),
        ),
        (
            Method::POST,
            "/generators".into(),
            json!({"product": fx.product, "name": "g", "format": {"type": "uuid"}, "activation_limit": 0})
                .to_string()
                .into_bytes(),
            422,
            "INVALID_FIELD",
            Some("activation_limit"),
        ),
        (
            Method::POST,
            "/generators".into(),
            json!({"product": fx.product, "name": "g", "format": {"type": "morse"}, "activation_limit": 1})
                .to_string()
                .into_bytes(),
            422,
            "INVALID_FIELD",
            Some("format.type"),
        ),
        (
            Method::POST,
            "/generators".into(),
            json!({"product": "prod_nope", "name": "g", "format": {"type": "uuid"}, "activation_limit": 1})
                .to_string()
                .into_bytes(),
            422,
            "UNKNOWN_REFERENCE",
            Some("product"),
        ),
        (
            Method::POST,
            "/licenses".into(),
            json!({"product": fx.product, "generator": fx.generator, "activation_limit": 10001})
                .to_string()
                .into_bytes(),
            422,
            "INVALID_FIELD",
            Some("activation_limit"),
        ),
        (
            Method::POST,
            "/licenses".into(),
            json!({"product": fx.product, "generator": fx.generator, "activation_limit": -2}).to_string().into_bytes(),
            422,
            "INVALID_FIELD",
            Some("activation_limit"),
        ),
        (
            Method::POST,
            "/licenses".into(),
            json!({"product": fx.product, "generator": fx.generator, "expires_at": "2000-01-01T00:00:00Z"})
                .to_string()
                .into_bytes(),
            422,
            "INVALID_FIELD",
            Some("expires_at"),
        ),
        (
            Method::POST,
            "/licenses".into(),
            json!({"product": fx.product, "generator": fx.generator, "expires_at": "tomorrow"})
                .to_string()
                .into_bytes(),
            422,
            "INVALID_FIELD",
            Some("expires_at"),
        ),
        (
            Method::POST,
            "/licenses".into(),
            json!({"product": fx.product, "generator": fx.generator, "customer": "cus_nope"}).to_string().into_bytes(),
            422,
            "UNKNOWN_REFERENCE",
            Some("customer"),
        ),
        (
            Method::POST,
            "/licenses".into(),
            json!({"product": fx.product, "generator": "gen_nope"}).to_string().into_bytes(),
            422,
            "UNKNOWN_REFERENCE",
            Some("generator"),
        ),
        (
            Method::POST,
            "/licenses".into(),
            json!({"product": fx.product, "generator": fx.generator, "metadata": {"blob": "x".repeat(11 * 1024)}})
                .to_string()
                .into_bytes(),
            422,
            "INVALID_FIELD",
            Some("metadata"),
        ),
        (
            Method::POST,
            "/licenses".into(),
            json!({"product": fx.product, "generator": fx.generator, "metadata": [1]}).to_string().into_bytes(),
            422,
            "INVALID_FIELD",
            Some("metadata"),
        ),
        (Method::POST, "/licenses".into(), vec![b' '; 300 * 1024], 413, "PAYLOAD_TOO_LARGE", None),
        (
            Method::PATCH,
            format!("/licenses/{id}"),
            json!({"activation_limit": "many"}).to_string().into_bytes(),
            422,
            "INVALID_FIELD",
            Some("activation_limit"),
        ),
        (
            Method::POST,
            format!("/licenses/{id}/actions/assign"),
            json!({"customer": "cus_nope"}).to_string().into_bytes(),
            422,
            "UNKNOWN_REFERENCE",
            Some("customer"),
        ),
        (Method::POST, format!("/licenses/{id}/actions/suspend"), b"{]".to_vec(), 400, "MALFORMED_JSON", None),
        (Method::GET, "/licenses/lic_nope".into(), vec![], 404, "NOT_FOUND", None),
        (Method::DELETE, "/products/x".into(), vec![], 405, "METHOD_NOT_ALLOWED", None),
        (Method::GET, "/nope".into(), vec![], 404, "NOT_FOUND", None),
    ];
    for (method, path, bytes, status, code, field) in cases {
        let response = send(method.clone(), path.clone(), bytes).await;
        assert_eq!(
            (response.status, response.error_code(), response.body["error"]["field"].as_str()),
            (status, Some(code), field),
            "{method} {path}: {:?}",
            response.body
        );
        assert!(response.body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    // nothing half-written: the license is as it was
    let after = admin.license(id).await.unwrap();
    assert_eq!(
        (after["status"].as_str(), after["activation_limit"].as_i64()),
        (Some("available"), license["activation_limit"].as_i64())
    );

    // the license API refuses bad bodies with signed answers too
    let app = server.client().await;
    for body in [b"{".to_vec(), b"{\"key\": 1}".to_vec(), b"{\"key\": \"\"}".to_vec(), vec![0xc3, 0x28]] {
        let response = app.raw(Method::POST, "/validate", "application/json", body.clone()).await.unwrap();
        assert!(matches!(response.status, 400 | 422), "{body:?}: {}", response.status);
        assert!(response.header("keyward-signature").is_some());
    }
    let long_key = app.validate(ValidateRequest { key: "K".repeat(5000), ..Default::default() }).await.unwrap();
    assert_eq!(long_key.code, ValidationCode::LicenseNotFound);
}

async fn archived_products_take_no_new_licenses(server: TestServer) {
    let admin = server.admin().await;
    let fx = Fixture::new(&admin).await;
    let archived = admin
        .request(Method::PATCH, &format!("/products/{}", fx.product), Some(&json!({"status": "archived"})))
        .await
        .unwrap();
    assert_eq!(archived.body["status"], "archived");
    let refused = admin
        .request(Method::POST, "/licenses", Some(&json!({"product": fx.product, "generator": fx.generator})))
        .await
        .unwrap();
    assert_eq!((refused.status, refused.error_code()), (409, Some("PRODUCT_ARCHIVED")));
    // customers: unique email, and not deleted while they hold licenses
    let taken = admin
        .request(Method::POST, "/customers", Some(&json!({"name": "Dup", "email": "DUP@example.com"})))
        .await
        .unwrap();
    assert_eq!(taken.status, 201);
    let again = admin
        .request(Method::POST, "/customers", Some(&json!({"name": "Dup", "email": "dup@example.com"})))
        .await
        .unwrap();
    assert_eq!((again.status, again.error_code()), (409, Some("EMAIL_TAKEN")));
}

async fn openapi_covers_every_route(server: TestServer) {
    let doc: Value =
        reqwest::get(format!("{}/api/v1/openapi.json", server.base_url)).await.unwrap().json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/validate", "post"),
        ("/activate", "post"),
        ("/deactivate", "post"),
        ("/offline-file", "post"),
        ("/public-keys", "get"),
        ("/products", "get"),
        ("/products", "post"),
        ("/products/{id}", "patch"),
        ("/generators", "post"),
        ("/generators/{id}/generate", "post"),
        ("/customers/{id}", "delete"),
        ("/licenses", "get"),
        ("/licenses/{id}", "put"),
        ("/licenses/{id}/actions/{action}", "post"),
        ("/licenses/{id}/activations", "get"),
        ("/licenses/{id}/usage", "get"),
        ("/licenses/{id}/offline-file", "get"),
        ("/activations/{id}", "delete"),
        ("/tokens", "post"),
        ("/audit-events", "get"),
        ("/settings", "patch"),
        ("/signing-keys/rotate", "post"),
    ] {
        assert!(paths.get(path).and_then(|p| p.get(method)).is_some(), "{method} {path} is missing from the document");
    }
    let health = reqwest::get(format!("{}/healthz", server.base_url)).await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = reqwest::get(format!("{}/readyz", server.base_url)).await.unwrap();
    assert_eq!(ready.status(), 200);
}

on_both_backends!(
    environments_are_isolated,
    roles_are_enforced,
    lists_search_filter_sort_and_page,
    every_write_is_audited,
    bad_input_is_a_clear_4xx,
    archived_products_take_no_new_licenses,
    openapi_covers_every_route,
);
