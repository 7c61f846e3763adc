//! The catalog the benchmark's licenses belong to, created through the admin API.

use anyhow::Context;
use serde_json::{json, Value};

/// Creates a product, a generator and `customers` customers (`customer-i@domain-i.example`).
pub async fn seed(url: &str, token: &str, customers: usize) -> anyhow::Result<()> {
    anyhow::ensure!(customers > 0, "--customers must be at least 1");
    let client = reqwest::Client::new();
    let api = format!("{}/api/v1", url.trim_end_matches('/'));
    let create = |what: &'static str, body: Value| {
        let request = client.post(format!("{api}/{what}")).bearer_auth(token).json(&body);
        async move {
            let response = request.send().await.with_context(|| format!("POST /{what}"))?;
            let status = response.status();
            let text = response.text().await?;
            anyhow::ensure!(status.is_success(), "POST /{what} answered {status}: {text}");
            let created: Value = serde_json::from_str(&text)?;
            created["id"].as_str().map(str::to_owned).with_context(|| format!("POST /{what} gave no id: {text}"))
        }
    };
    let product = create("products", json!({"name": "Bench Studio"})).await?;
    let generator = create(
        "generators",
        json!({
            "product": product,
            "name": "Bench",
            "format": {"type": "chunked", "prefix": "BENCH", "groups": 5, "group_length": 5},
            // High enough that the activate rounds never exhaust a license, even at small N.
            "activation_limit": 10_000,
            "validity_days": 365,
            "validity_basis": "creation",
            "feature_flags": {"pro": true},
        }),
    )
    .await?;
    let mut ids = Vec::with_capacity(customers);
    for i in 1..=customers {
        let body = json!({"name": format!("Customer {i}"), "email": format!("customer-{i}@domain-{i}.example")});
        ids.push(create("customers", body).await?);
    }
    println!("PRODUCT={product}");
    println!("GENERATOR={generator}");
    println!("CUSTOMERS={}", ids.join(","));
    Ok(())
}
