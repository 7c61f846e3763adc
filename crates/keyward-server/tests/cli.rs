//! The `keyward` binary as a user runs it: `serve` with and without configuration, tokens,
//! logs that never hold a whole key, export / import / backup across backends, bulk generation,
//! and clear failures on bad input.

mod common;
mod process;

use common::Fixture;
use keyward_client::api::{ActivateRequest, ValidateAnswer, ValidateRequest};
use keyward_client::{Client, Method};
use keyward_store::testing::PostgresDatabase;
use keyward_store::Dump;
use process::{keyward, run, text, Node};
use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

const TOKEN: &str = "kw_cli_test_bootstrap_token_0123456789";

/// `keyward serve` on port 0, with its data in `data_dir` and `TOKEN` as the first owner token.
fn serve_command(dir: &Path, data_dir: &Path) -> tokio::process::Command {
    let mut command = keyward(dir);
    command
        .env("KEYWARD_LISTEN", "127.0.0.1:0")
        .env("KEYWARD_DATA_DIR", data_dir)
        .env("KEYWARD_BOOTSTRAP_TOKEN", TOKEN)
        .arg("serve");
    command
}

/// A one-shot `keyward` subcommand on `data_dir`'s installation (or the database `url` names).
fn command(dir: &Path, data_dir: &Path, url: Option<&str>, args: &[&str]) -> tokio::process::Command {
    let mut command = keyward(dir);
    command.env("KEYWARD_DATA_DIR", data_dir).args(args);
    if let Some(url) = url {
        command.env("KEYWARD_DATABASE_URL", url);
    }
    command
}

fn succeeded(output: &Output) -> String {
    assert!(
        output.status.success(),
        "the command failed ({}):\n{}{}",
        output.status,
        text(&output.stdout),
        text(&output.stderr)
    );
    text(&output.stdout)
}

/// Asserts a non-zero exit whose stderr says `message`.
fn failed_saying(output: &Output, message: &str) {
    let stderr = text(&output.stderr);
    assert!(!output.status.success(), "expected a failure, got success:\n{}{stderr}", text(&output.stdout));
    assert!(stderr.contains(message), "expected `{message}` in:\n{stderr}");
}

async fn owner(node: &Node) -> Client {
    let client = Client::new(&node.base_url);
    let ring = client.fetch_key_ring().await.expect("public keys");
    client.with_key_ring(ring).with_token(TOKEN)
}

fn string(value: &Value) -> String {
    value.as_str().unwrap_or_else(|| panic!("expected a string, not {value}")).to_owned()
}

async fn status_of(url: &str) -> u16 {
    reqwest::get(url).await.expect("the node answers").status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_with_no_configuration_makes_its_data_directory_and_prints_the_owner_token_once() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing configured but the port: the default 127.0.0.1:8080 could clash with another test or service.
    let serve = || {
        let mut command = keyward(dir.path());
        command.env("KEYWARD_LISTEN", "127.0.0.1:0").arg("serve");
        command
    };
    let mut node = Node::serve(&mut serve()).await;
    let stdout = node.stdout();
    let lines: Vec<&str> = stdout.lines().collect();
    let said = lines.iter().position(|l| l.starts_with("Created the first owner token for production"));
    let token = lines[said.expect("the owner token is announced") + 1].trim().to_owned();
    assert!(token.starts_with("kw_") && token.len() > 40, "{token}");

    let data = dir.path().join("data");
    assert!(data.join("keyward.db").is_file(), "./data/keyward.db");
    let mode = std::fs::metadata(data.join("master.key")).expect("./data/master.key").permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the master key is readable by its owner only");
    assert_eq!(status_of(&format!("{}/healthz", node.base_url)).await, 200);
    assert_eq!(status_of(&format!("{}/readyz", node.base_url)).await, 200);
    let admin = Client::new(&node.base_url).with_token(&token);
    assert_eq!(admin.request(Method::GET, "/licenses", None).await.unwrap().status, 200);
    let stranger = Client::new(&node.base_url).with_token("kw_not_a_token_of_this_installation");
    assert_eq!(stranger.request(Method::GET, "/licenses", None).await.unwrap().status, 401);

    let asked = Instant::now();
    let status = node.terminate().await;
    assert!(status.success(), "SIGTERM ends keyward with {status}:\n{}", node.output_so_far());
    assert!(asked.elapsed() < Duration::from_secs(5), "stopping took {:?}", asked.elapsed());
    assert_eq!(node.stdout().matches(&token).count(), 1, "the token is printed once");
    assert!(!node.stderr().contains(&token), "the token is not logged");

    let mut again = Node::serve(&mut serve()).await;
    let admin = Client::new(&again.base_url).with_token(&token);
    assert_eq!(admin.request(Method::GET, "/licenses", None).await.unwrap().status, 200);
    assert!(again.terminate().await.success());
    let stdout = again.stdout();
    assert!(!stdout.contains("owner token") && !stdout.contains(&token), "a second start prints no token:\n{stdout}");

    // A service manager may stop it the moment it says it listens: that is a graceful stop too.
    for _ in 0..3 {
        let mut hasty = Node::serve(&mut serve()).await;
        let status = hasty.terminate().await;
        assert!(status.success(), "SIGTERM right after start ends keyward with {status}:\n{}", hasty.output_so_far());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bootstrap_token_and_cli_made_tokens_work_in_their_own_environment() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut node = Node::serve(&mut serve_command(dir.path(), &data)).await;
    assert!(!node.stdout().contains(TOKEN), "a configured token is not printed");
    let admin = Client::new(&node.base_url).with_token(TOKEN);
    assert_eq!(admin.request(Method::GET, "/licenses", None).await.unwrap().status, 200);

    // Beside the running node, on the same SQLite database.
    let args = ["token", "create", "--role", "support", "--environment", "staging", "--name", "helpdesk"];
    let support = succeeded(&run(&mut command(dir.path(), &data, None, &args)).await).trim().to_owned();
    assert!(support.starts_with("kw_") && !support.contains('\n'), "{support}");
    let staging = Client::new(&node.base_url).environment("staging").with_token(&support);
    assert_eq!(staging.request(Method::GET, "/licenses", None).await.unwrap().status, 200);
    let refused = staging.request(Method::POST, "/products", Some(&json!({"name": "x"}))).await.unwrap();
    assert_eq!(refused.status, 403, "support cannot create products");
    let production = Client::new(&node.base_url).with_token(&support);
    let mismatch = production.request(Method::GET, "/licenses", None).await.unwrap();
    assert_eq!((mismatch.status, mismatch.error_code()), (403, Some("ENVIRONMENT_MISMATCH")));

    let wizard = ["token", "create", "--role", "wizard", "--environment", "staging"];
    failed_saying(&run(&mut command(dir.path(), &data, None, &wizard)).await, "unknown role `wizard`");
    let moon = ["token", "create", "--role", "support", "--environment", "moon"];
    failed_saying(&run(&mut command(dir.path(), &data, None, &moon)).await, "no environment is named `moon`");
    assert!(node.terminate().await.success());

    let fresh = dir.path().join("fresh");
    let mut short = serve_command(dir.path(), &fresh);
    short.env("KEYWARD_BOOTSTRAP_TOKEN", "too-short");
    failed_saying(&run(&mut short).await, "KEYWARD_BOOTSTRAP_TOKEN must be at least 16 characters");
}

/// Drives every path a key travels through (the license API, the admin API by key, errors) on a
/// node logging at debug level, then looks for the keys in everything it wrote.
async fn keys_stay_out_of_the_logs(format: &str, database_url: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let mut serve = serve_command(dir.path(), &dir.path().join("data"));
    serve.env("KEYWARD_LOG", "debug").env("KEYWARD_LOG_FORMAT", format);
    if let Some(url) = database_url {
        serve.env("KEYWARD_DATABASE_URL", url);
    }
    let mut node = Node::serve(&mut serve).await;
    let admin = owner(&node).await;
    let app = Client::new(&node.base_url);
    let app = app.clone().with_key_ring(app.fetch_key_ring().await.unwrap());
    let fx = Fixture::new(&admin).await;

    let assigned = fx.license(&admin, true).await;
    let available = fx.license(&admin, false).await;
    let custom = admin
        .create_license(&json!({"product": fx.product, "generator": fx.generator, "customer": fx.customer,
            "key": "VENDOR-OWN-KEY-7f3a9c2e51d4"}))
        .await
        .unwrap();
    // A key no license has, in the generator's format.
    let unknown = "ACME-ZZZZZ-ZZZZZ-ZZZZZ-ZZZZZ".to_owned();
    let keys: Vec<String> =
        [&assigned, &available, &custom].iter().map(|l| string(&l["key"])).chain([unknown]).collect();
    let taken = admin
        .request(
            Method::POST,
            "/licenses",
            Some(&json!({"product": fx.product, "generator": fx.generator, "key": keys[2]})),
        )
        .await
        .unwrap();
    assert_eq!(taken.error_code(), Some("KEY_TAKEN"));

    for key in &keys {
        let activate = |fingerprint: &str| ActivateRequest {
            key: key.clone(),
            fingerprint: fingerprint.into(),
            name: Some("Ana's laptop".into()),
            ..Default::default()
        };
        app.validate(ValidateRequest { key: key.clone(), ..Default::default() }).await.unwrap();
        let _ = app.activate(activate("laptop-1")).await;
        let _ = app.activate(activate("laptop-2")).await;
        let on_device =
            ValidateRequest { key: key.clone(), fingerprint: Some("laptop-1".into()), ..Default::default() };
        app.validate(on_device).await.unwrap();
        let _ = app.offline_file(key, Some("laptop-1")).await;
        let _ = app.deactivate(key, "laptop-2").await;
        let _ = app.deactivate(key, "never-activated").await;
        let body = format!(r#"{{"key": "{key}", "fingerprint": 7}}"#);
        let bad = app.raw(Method::POST, "/validate", "application/json", body).await.unwrap();
        assert_eq!(bad.status, 422);
        let broken = app.raw(Method::POST, "/activate", "application/json", format!(r#"{{"key": "{key}""#)).await;
        assert_eq!(broken.unwrap().status, 400);
        for (method, path, body) in [
            (Method::GET, format!("/licenses/{key}"), None),
            (Method::GET, format!("/licenses?q={key}"), None),
            (Method::GET, format!("/licenses/{key}/activations"), None),
            (Method::GET, format!("/licenses/{key}/offline-file?fingerprint=laptop-1"), None),
            (
                Method::POST,
                format!("/licenses/{key}/actions/suspend"),
                Some(json!({"reason": format!("shared {key}")})),
            ),
            (Method::POST, format!("/licenses/{key}/actions/unsuspend"), Some(json!({}))),
            (Method::PATCH, format!("/licenses/{key}"), Some(json!({"metadata": {"note": key}}))),
            (Method::PATCH, format!("/licenses/{key}"), Some(json!({"activation_limit": key}))),
            (Method::POST, format!("/licenses/{key}/actions/explode"), Some(json!({}))),
        ] {
            let _ = admin.request(method, &path, body.as_ref()).await.unwrap();
        }
    }
    let _ = admin.request(Method::POST, &format!("/licenses/{}/actions/revoke", keys[2]), Some(&json!({}))).await;
    let _ = admin.request(Method::DELETE, &format!("/licenses/{}?force=true", keys[1]), None).await;
    assert!(node.terminate().await.success());

    let logs = node.output_so_far();
    let requests = logs.lines().filter(|l| l.contains("/api/v1/validate")).count();
    assert!(requests > 10, "debug logging names the routes it serves:\n{logs}");
    for key in &keys {
        let line = logs.lines().find(|l| l.contains(key.as_str()));
        assert!(line.is_none(), "a whole key in the log: {}", line.unwrap_or_default());
    }
    assert!(!logs.contains(TOKEN), "the owner token in the log");
    if format == "json" {
        for line in node.stderr().lines() {
            let parsed: Result<Value, _> = serde_json::from_str(line);
            assert!(parsed.is_ok_and(|v| v.is_object()), "not a JSON log line: {line}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_whole_key_in_a_debug_log() {
    keys_stay_out_of_the_logs("text", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_whole_key_in_a_json_debug_log() {
    keys_stay_out_of_the_logs("json", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_whole_key_in_a_json_debug_log_on_postgres() {
    let Some(database) = PostgresDatabase::create().await else { return };
    keys_stay_out_of_the_logs("json", Some(&database.url)).await;
}

/// What must not change when an installation moves: every field an app relies on.
fn same_answer(before: &ValidateAnswer, after: &ValidateAnswer) {
    let (a, b) = (before.license.as_ref().unwrap(), after.license.as_ref().unwrap());
    assert_eq!((before.valid, before.code), (after.valid, after.code));
    assert_eq!(
        (&a.id, a.status, &a.product, &a.customer_email, a.expires_at, a.activation_limit, a.activation_count),
        (&b.id, b.status, &b.product, &b.customer_email, b.expires_at, b.activation_limit, b.activation_count)
    );
    assert_eq!(a.feature_flags, b.feature_flags);
    assert_eq!(before.activation.as_ref().map(|x| &x.id), after.activation.as_ref().map(|x| &x.id));
    assert_eq!(b.validation_count, a.validation_count + 1, "the counts moved along");
}

/// Licenses in several states, in two environments, with activations and settings. Returns how to
/// validate each production license, and an app that trusts the node's signing keys.
async fn populate(node: &Node) -> (Vec<ValidateRequest>, Client) {
    let admin = owner(node).await;
    let fx = Fixture::new(&admin).await;
    let app = Client::new(&node.base_url);
    let app = app.clone().with_key_ring(app.fetch_key_ring().await.unwrap());
    let mut licenses = Vec::new();
    for n in 0..8 {
        let license = fx.license(&admin, n % 4 != 3).await;
        let (id, key) = (string(&license["id"]), string(&license["key"]));
        if n % 4 != 3 {
            let activate =
                ActivateRequest { key: key.clone(), fingerprint: format!("device-{n}"), ..Default::default() };
            app.activate(activate).await.unwrap();
        }
        match n {
            1 => drop(admin.license_action(&id, "suspend", &json!({"reason": "chargeback"})).await.unwrap()),
            2 => drop(admin.license_action(&id, "revoke", &json!({})).await.unwrap()),
            4 => drop(admin.edit_license(&id, &json!({"feature_flags": {"pro": false, "seats": 4}})).await.unwrap()),
            _ => {}
        }
        let fingerprint = (n % 4 != 3).then(|| format!("device-{n}"));
        licenses.push(ValidateRequest { key, fingerprint, ..Default::default() });
    }
    let grace = admin.request(Method::PATCH, "/settings", Some(&json!({"grace_period_days": 3}))).await.unwrap();
    assert_eq!(grace.status, 200);
    let staging = admin.create_token("staging owner", "owner", "staging").await.unwrap();
    let staging = Client::new(&node.base_url).environment("staging").with_token(string(&staging["token"]));
    let staged = Fixture::new(&staging).await.license(&staging, true).await;
    assert_eq!(staged["status"], "assigned");
    (licenses, app)
}

async fn export(dir: &Path, data: &Path, url: Option<&str>, file: &Path) -> Dump {
    let file_arg = file.to_str().unwrap();
    succeeded(&run(&mut command(dir, data, url, &["export", file_arg])).await);
    Dump::from_json(&std::fs::read(file).unwrap()).expect("a verified export")
}

async fn import(dir: &Path, data: &Path, url: Option<&str>, file: &Path) -> Output {
    run(&mut command(dir, data, url, &["import", file.to_str().unwrap()])).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_import_and_backup_move_an_installation_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (a, c) = (root.join("a"), root.join("c"));

    // A: the original installation, on SQLite; every license validated once.
    let mut node = Node::serve(&mut serve_command(root, &a)).await;
    let (licenses, app) = populate(&node).await;
    let mut answers = Vec::new();
    for request in &licenses {
        answers.push(app.validate(request.clone()).await.unwrap());
    }
    let ring = app.key_ring().unwrap().clone();
    assert!(node.terminate().await.success(), "a graceful stop writes the validation counts");

    // A → PostgreSQL (when reachable) → a fresh SQLite C, exported at each step.
    let dump_a = export(root, &a, None, &root.join("a.json")).await;
    let postgres = PostgresDatabase::create().await;
    let middle = match &postgres {
        Some(database) => {
            let b = root.join("b");
            succeeded(&import(root, &b, Some(&database.url), &root.join("a.json")).await);
            let dump_b = export(root, &b, Some(&database.url), &root.join("b.json")).await;
            assert_eq!(dump_b.data, dump_a.data, "SQLite → PostgreSQL changed the data");
            root.join("b.json")
        }
        None => root.join("a.json"),
    };
    succeeded(&import(root, &c, None, &middle).await);
    let dump_c = export(root, &c, None, &root.join("c.json")).await;
    assert_eq!(dump_c.data, dump_a.data, "the round trip changed the data");
    let data = &dump_a.data;
    assert_eq!((data.licenses.len(), data.tokens.len(), data.environments.len()), (9, 2, 2));
    assert!(data.validations.len() >= licenses.len(), "the validations were written before the export");

    // C needs A's master key to unseal the signing keys that came with the data.
    let mut wrong_key = serve_command(root, &c);
    wrong_key.env("KEYWARD_MASTER_KEY_FILE", root.join("another.key"));
    failed_saying(&run(&mut wrong_key).await, "is this the master key that sealed it?");
    let mut serve_c = serve_command(root, &c);
    serve_c.env("KEYWARD_MASTER_KEY_FILE", a.join("master.key"));
    let mut node = Node::serve(&mut serve_c).await;
    // Answers signed with A's keys, checked with the ring fetched from A.
    let moved = Client::new(&node.base_url).with_key_ring(ring.clone());
    for (request, before) in licenses.iter().zip(&answers) {
        same_answer(before, &moved.validate(request.clone()).await.unwrap());
    }
    let listed = owner(&node).await.request(Method::GET, "/licenses", None).await.unwrap();
    assert_eq!(listed.body["total"], 8, "the owner token moved too");
    assert!(node.terminate().await.success());

    // backup: an online snapshot of a running node that a new node can serve as is.
    let mut node = Node::serve(&mut serve_command(root, &a)).await;
    let snapshot = root.join("snapshot.db");
    let backup = ["backup", snapshot.to_str().unwrap()];
    succeeded(&run(&mut command(root, &a, None, &backup)).await);
    failed_saying(&run(&mut command(root, &a, None, &backup)).await, "exists already");
    assert!(node.terminate().await.success());
    let mut restored = serve_command(root, &root.join("restored"));
    restored
        .env("KEYWARD_DATABASE_URL", format!("sqlite://{}", snapshot.display()))
        .env("KEYWARD_MASTER_KEY_FILE", a.join("master.key"));
    let mut node = Node::serve(&mut restored).await;
    let from_backup = Client::new(&node.base_url).with_key_ring(ring);
    for (request, before) in licenses.iter().zip(&answers) {
        same_answer(before, &from_backup.validate(request.clone()).await.unwrap());
    }
    assert!(node.terminate().await.success());

    // Bad input: nothing is written.
    let before = export(root, &a, None, &root.join("before.json")).await;
    failed_saying(&import(root, &a, None, &root.join("a.json")).await, "the installation is not empty");
    let after = export(root, &a, None, &root.join("after.json")).await;
    assert_eq!(before.data, after.data, "a refused import changed nothing");

    let exported = std::fs::read_to_string(root.join("a.json")).unwrap();
    let truncated = root.join("truncated.json");
    std::fs::write(&truncated, &exported[..exported.len() / 2]).unwrap();
    let key = &data.licenses[0].key;
    let last = key.chars().last().unwrap();
    let tampered_key = format!("{}{}", &key[..key.len() - 1], if last == 'A' { 'B' } else { 'A' });
    let tampered = root.join("tampered.json");
    std::fs::write(&tampered, exported.replacen(&format!("\"{key}\""), &format!("\"{tampered_key}\""), 1)).unwrap();
    for (file, message) in [(&truncated, "is not a keyward export"), (&tampered, "the checksum does not match")] {
        let empty = root.join(format!("empty-{}", file.file_stem().unwrap().to_str().unwrap()));
        failed_saying(&import(root, &empty, None, file).await, message);
        let dump = export(root, &empty, None, &root.join("empty.json")).await;
        assert!(dump.data.licenses.is_empty() && dump.data.tokens.is_empty(), "{} wrote records", file.display());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_cannot_be_used_fails_fast_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let unreachable = "postgres://postgres@127.0.0.1:1/x";
    for args in [&["export", "out.json"][..], &["migrate"], &["serve"]] {
        let started = Instant::now();
        let output = run(&mut command(dir.path(), &data, Some(unreachable), args)).await;
        failed_saying(&output, "cannot connect to postgres://");
        assert!(started.elapsed() < Duration::from_secs(15), "{args:?} took {:?}", started.elapsed());
        let output = run(&mut command(dir.path(), &data, Some("mysql://root@127.0.0.1/keyward"), args)).await;
        failed_saying(&output, "unsupported database URL");
    }
    assert!(!dir.path().join("out.json").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generate_makes_25000_licenses_with_progress() {
    generates_with_progress(None).await;
}

/// PostgreSQL: two batches are written at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generate_makes_25000_licenses_with_progress_on_postgres() {
    let Some(database) = PostgresDatabase::create().await else { return };
    generates_with_progress(Some(&database.url)).await;
}

async fn generates_with_progress(database_url: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut serve = serve_command(dir.path(), &data);
    if let Some(url) = database_url {
        serve.env("KEYWARD_DATABASE_URL", url);
    }
    let mut node = Node::serve(&mut serve).await;
    let admin = owner(&node).await;
    let fx = Fixture::new(&admin).await;

    let args = ["generate", "--generator", &fx.generator, "--count", "25000", "--customer", &fx.customer];
    let started = Instant::now();
    let output = run(&mut command(dir.path(), &data, database_url, &args)).await;
    let stdout = succeeded(&output);
    let took = started.elapsed();
    let progress = text(&output.stderr);
    // PostgreSQL: batches of 10,000, two at once, so the last, of 5,000, may end before the second.
    // SQLite: 15,000, then the last 10,000 on their own.
    let done: Vec<u32> =
        progress.lines().filter_map(|line| line.strip_prefix("generated ")?.split('/').next()?.parse().ok()).collect();
    let expected = match database_url {
        Some(_) => done == [10_000, 20_000, 25_000] || done == [10_000, 15_000, 25_000],
        None => done == [15_000, 25_000],
    };
    assert!(expected, "progress:\n{progress}");
    assert!(progress.contains("generated 25000/25000"), "{progress}");
    assert!(stdout.contains("generated 25000 licenses in"), "{stdout}");
    eprintln!("keyward generate --count 25000 took {took:?}");

    let listed = admin.licenses(&[("product", &fx.product), ("status", "assigned"), ("limit", "2")]).await.unwrap();
    assert_eq!(listed["total"], 25000);
    let everything = admin.licenses(&[("limit", "1")]).await.unwrap();
    assert_eq!(everything["total"], 25000, "the environment's kept count");
    // The running node serves licenses another process created, and finds them by key.
    let key = string(&listed["data"][0]["key"]);
    let found = admin.licenses(&[("q", &key[key.len() - 8..])]).await.unwrap();
    assert!(found["data"].as_array().unwrap().iter().any(|l| l["key"] == key.as_str()), "{found}");
    let answer = owner(&node).await.validate(ValidateRequest { key, ..Default::default() }).await.unwrap();
    assert!(answer.valid, "{answer:?}");

    let unknown = ["generate", "--generator", "gen_nope", "--count", "5"];
    failed_saying(&run(&mut command(dir.path(), &data, database_url, &unknown)).await, "no generator gen_nope");
    let none = ["generate", "--generator", &fx.generator, "--count", "0"];
    failed_saying(&run(&mut command(dir.path(), &data, database_url, &none)).await, "--count must be at least 1");
    assert!(node.terminate().await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_refuses_a_missing_file_and_a_key_that_is_not_base64() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let public_key = keyward_core::signature::Signer::generate().public_key_base64();
    let file = dir.path().join("license.json");
    std::fs::write(&file, "{}").unwrap();
    let path = |p: &PathBuf| p.to_str().unwrap().to_owned();

    let missing = ["verify", "no-such-file.json", "--public-key", &public_key];
    failed_saying(&run(&mut command(dir.path(), &data, None, &missing)).await, "cannot read no-such-file.json");
    for bad in ["not base64!", "c2hvcnQ="] {
        let args = ["verify", &path(&file), "--public-key", bad];
        failed_saying(
            &run(&mut command(dir.path(), &data, None, &args)).await,
            "--public-key must be base64 of 32 bytes",
        );
    }
    let no_key = ["verify", &path(&file)];
    failed_saying(&run(&mut command(dir.path(), &data, None, &no_key)).await, "--public-key");
    let garbage = ["verify", &path(&file), "--public-key", &public_key];
    failed_saying(&run(&mut command(dir.path(), &data, None, &garbage)).await, "is not a valid license file");
}
