//! Requests the harness makes itself rather than through wrk: readiness, the cold sweep, search.

use anyhow::Context;
use serde::Deserialize;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub fn read_keys(path: &Path) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let keys: Vec<String> = text.lines().map(str::trim).filter(|k| !k.is_empty()).map(str::to_owned).collect();
    anyhow::ensure!(!keys.is_empty(), "{} holds no keys", path.display());
    Ok(keys)
}

/// Polls `url` every 5 ms until it answers 200.
pub async fn wait(url: &str, timeout_ms: u64) -> anyhow::Result<()> {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(2)).build()?;
    let deadline = Instant::now() + Duration::from_millis(timeout_ms);
    loop {
        if let Ok(response) = client.get(url).send().await {
            if response.status() == reqwest::StatusCode::OK {
                return Ok(());
            }
        }
        anyhow::ensure!(Instant::now() < deadline, "{url} did not answer 200 within {timeout_ms} ms");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[derive(Deserialize)]
struct Verdict {
    code: String,
}

/// Validates each key once with `concurrency` requests in flight.
pub async fn sweep(url: &str, keys: &Path, concurrency: usize) -> anyhow::Result<()> {
    let keys = Arc::new(read_keys(keys)?);
    let endpoint = format!("{}/api/v1/validate", url.trim_end_matches('/'));
    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
    let next = Arc::new(AtomicUsize::new(0));
    let refused: Arc<Mutex<BTreeMap<String, u64>>> = Arc::default();
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (keys, endpoint, client, next, refused) =
            (keys.clone(), endpoint.clone(), client.clone(), next.clone(), refused.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(key) = keys.get(i) else { break };
                let outcome =
                    match client.post(&endpoint).json(&json!({"key": key, "nonce": format!("sweep-{i}")})).send().await
                    {
                        Ok(response) => {
                            let status = response.status();
                            match response.bytes().await.ok().and_then(|b| serde_json::from_slice::<Verdict>(&b).ok()) {
                                Some(v) if status == reqwest::StatusCode::OK && v.code == "VALID" => None,
                                Some(v) => Some(format!("{} {}", status.as_u16(), v.code)),
                                None => Some(format!("{} (no answer body)", status.as_u16())),
                            }
                        }
                        Err(err) => Some(format!("request failed: {}", err.without_url())),
                    };
                if let Some(outcome) = outcome {
                    *refused.lock().expect("tally").entry(outcome).or_default() += 1;
                }
            }
        }));
    }
    for worker in workers {
        worker.await?;
    }
    let seconds = started.elapsed().as_secs_f64();
    let refused = refused.lock().expect("tally").clone();
    let summary = json!({
        "keys": keys.len(),
        "seconds": seconds,
        "per_second": keys.len() as f64 / seconds,
        "not_valid": refused,
    });
    println!("{summary}");
    anyhow::ensure!(refused.is_empty(), "some validations were not 200 VALID: {refused:?}");
    Ok(())
}

/// The kinds of admin search an operator makes, each timed `requests` times.
pub async fn search(
    url: &str,
    token: &str,
    keys: &Path,
    domains: &str,
    requests: usize,
    budget_seconds: u64,
) -> anyhow::Result<()> {
    let keys = read_keys(keys)?;
    let domains: Vec<&str> = domains.split(',').filter(|d| !d.is_empty()).collect();
    anyhow::ensure!(!domains.is_empty(), "--domains needs at least one domain");
    let endpoint = format!("{}/api/v1/licenses", url.trim_end_matches('/'));
    let client = reqwest::Client::builder().timeout(Duration::from_secs(60)).build()?;
    type Query = Box<dyn Fn(usize) -> Vec<(&'static str, String)>>;
    let substring = |key: &str| key.chars().skip(6).take(8).collect::<String>();
    let kinds: Vec<(&str, Query)> = vec![
        ("key substring (8 chars)", {
            let keys = keys.clone();
            Box::new(move |i| vec![("q", substring(&keys[i % keys.len()]))])
        }),
        ("whole key", {
            let keys = keys.clone();
            Box::new(move |i| vec![("q", keys[i % keys.len()].clone())])
        }),
        // The first 7 characters of a key: the shared prefix and one more character, as a vendor
        // typing a key in matches about one key in 32 (a pass over their matches for the total).
        ("key prefix (1 key in 32)", {
            let keys = keys.clone();
            Box::new(move |i| vec![("q", keys[i % keys.len()].chars().take(7).collect())])
        }),
        ("customer email domain", {
            let domains: Vec<String> = domains.iter().map(|d| (*d).to_owned()).collect();
            Box::new(move |i| vec![("q", domains[i % domains.len()].clone())])
        }),
        ("sort by expires_at", Box::new(|_| vec![("sort", "expires_at".into()), ("order", "asc".into())])),
        // Each customer's licenses were generated together, none expiring: the first customer's
        // sit at the far end of the environment's expiry order, latest first.
        ("customer email domain, by expiry, latest first", {
            let domains: Vec<String> = domains.iter().map(|d| (*d).to_owned()).collect();
            Box::new(move |i| {
                vec![("q", domains[i % domains.len()].clone()), ("sort", "expires_at".into()), ("order", "desc".into())]
            })
        }),
    ];
    let mut results = Vec::new();
    let mut all = Vec::new();
    for (name, query) in &kinds {
        let deadline = Instant::now() + Duration::from_secs(budget_seconds);
        let mut times = Vec::with_capacity(requests);
        let mut example = String::new();
        for i in 0..requests {
            let mut params = query(i);
            params.push(("limit", "50".into()));
            let started = Instant::now();
            let response = client.get(&endpoint).bearer_auth(token).query(&params).send().await?;
            let status = response.status();
            let body = response.bytes().await?;
            let elapsed = started.elapsed().as_secs_f64() * 1000.0;
            anyhow::ensure!(
                status == reqwest::StatusCode::OK,
                "search {params:?} answered {status}: {}",
                String::from_utf8_lossy(&body)
            );
            if i == 0 {
                let total = serde_json::from_slice::<serde_json::Value>(&body)?["total"].clone();
                let shown: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
                example = format!("{} (total {total})", shown.join("&"));
            }
            times.push(elapsed);
            if Instant::now() > deadline {
                break;
            }
        }
        all.extend_from_slice(&times);
        results.push(json!({
            "kind": name,
            "example": example,
            "requests": times.len(),
            "p50_ms": nearest_rank(&mut times, 0.50),
            "p95_ms": nearest_rank(&mut times, 0.95),
            "max_ms": nearest_rank(&mut times, 1.0),
        }));
    }
    let summary = json!({
        "kinds": results,
        "all": {"requests": all.len(), "p50_ms": nearest_rank(&mut all, 0.50), "p95_ms": nearest_rank(&mut all, 0.95)},
    });
    println!("{summary}");
    Ok(())
}

/// The nearest-rank percentile of a small sample (`p` in 0..=1).
fn nearest_rank(sample: &mut [f64], p: f64) -> f64 {
    if sample.is_empty() {
        return f64::NAN;
    }
    sample.sort_by(f64::total_cmp);
    let rank = ((p * sample.len() as f64).ceil() as usize).clamp(1, sample.len());
    sample[rank - 1]
}

#[cfg(test)]
mod tests {
    use super::nearest_rank;

    #[test]
    fn nearest_rank_percentiles() {
        let mut sample: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        assert_eq!(nearest_rank(&mut sample, 0.5), 50.0);
        assert_eq!(nearest_rank(&mut sample, 0.95), 95.0);
        assert_eq!(nearest_rank(&mut sample, 1.0), 100.0);
        assert_eq!(nearest_rank(&mut [7.0], 0.95), 7.0);
    }
}
