//! Several keyward nodes on one PostgreSQL database: activation limits, cache invalidation,
//! migrations and signing keys hold across nodes, and a killed node loses nothing it acknowledged.
//! Each PostgreSQL test makes a database of its own and is skipped (saying so) when PostgreSQL is
//! unreachable, unless KEYWARD_REQUIRE_POSTGRES=1. The SIGKILL test runs on SQLite too.

mod common;
mod process;

use common::{Fixture, OWNER_TOKEN};
use keyward_client::api::{ActivateRequest, ValidateAnswer, ValidateRequest};
use keyward_client::{Client, Error, KeyRing, Method};
use keyward_core::ValidationCode;
use keyward_server::{Config, Running};
use keyward_store::testing::PostgresDatabase;
use keyward_store::{Store, ValidationRecord};
use process::{keyward, Node};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A node may open 21 connections to PostgreSQL (a pool of 20 and a listener). The tests that
/// fill their pools take turns, so this file stays well inside a default `max_connections` of 100
/// on a server other tests share.
static POSTGRES_HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// One fresh PostgreSQL database and the master key file every node of it shares.
struct Cluster {
    database: PostgresDatabase,
    dir: tempfile::TempDir,
    master_key: PathBuf,
    started: AtomicUsize,
}

impl Cluster {
    /// `None` when PostgreSQL is unreachable and not required.
    async fn new() -> Option<Cluster> {
        let database = PostgresDatabase::create().await?;
        let dir = tempfile::tempdir().expect("a temp dir");
        // As an operator would: one master key, made once and copied to every node.
        let master_key = dir.path().join("master.key");
        let mut secret = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut secret);
        std::fs::write(&master_key, hex::encode(secret)).expect("writing the master key");
        Some(Cluster { database, dir, master_key, started: AtomicUsize::new(0) })
    }

    /// A node's configuration: its own data directory, the shared database and master key.
    fn config(&self) -> Config {
        let n = self.started.fetch_add(1, Ordering::Relaxed);
        Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: self.dir.path().join(format!("node-{n}")),
            database_url: Some(self.database.url.clone()),
            master_key_file: Some(self.master_key.clone()),
            bootstrap_token: Some(OWNER_TOKEN.into()),
            ..Config::default()
        }
    }

    async fn start(&self) -> InProcessNode {
        InProcessNode::from(keyward_server::start(&self.config()).await.expect("the node starts")).await
    }
}

/// A node in this process: its own pool, caches and change listener, like a node on another host.
struct InProcessNode {
    running: Running,
    admin: Client,
    app: Client,
}

impl InProcessNode {
    async fn from(running: Running) -> InProcessNode {
        let base = format!("http://{}", running.addr);
        let app = Client::new(&base);
        let ring = app.fetch_key_ring().await.expect("public keys");
        let app = app.with_key_ring(ring);
        InProcessNode { admin: app.clone().with_token(OWNER_TOKEN), app, running }
    }

    fn base_url(&self) -> String {
        format!("http://{}", self.running.addr)
    }

    async fn stop(self) {
        self.running.stop().await.expect("a clean stop");
    }
}

fn validate(key: &str) -> ValidateRequest {
    ValidateRequest { key: key.into(), ..Default::default() }
}

fn activate(key: &str, fingerprint: &str) -> ActivateRequest {
    ActivateRequest { key: key.into(), fingerprint: fingerprint.into(), ..Default::default() }
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_else(|| panic!("expected a string, not {value}")).to_owned()
}

/// An assigned license with this activation limit.
async fn assigned_license(admin: &Client, fx: &Fixture, limit: i64) -> (String, String) {
    let body =
        json!({"product": fx.product, "generator": fx.generator, "customer": fx.customer, "activation_limit": limit});
    let license = admin.create_license(&body).await.expect("a license");
    (text(&license["id"]), text(&license["key"]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_activation_storm_over_two_nodes_creates_exactly_the_limit() {
    let _turn = POSTGRES_HEAVY.lock().await;
    let Some(cluster) = Cluster::new().await else { return };
    let nodes = [cluster.start().await, cluster.start().await];
    let fx = Fixture::new(&nodes[0].admin).await;
    let (id, key) = assigned_license(&nodes[0].admin, &fx, 5).await;
    // Every node holds the license in its cache before the storm, so a stale snapshot would show.
    for node in &nodes {
        assert!(node.app.validate(validate(&key)).await.unwrap().valid);
    }

    let attempts = 240;
    let start = Arc::new(tokio::sync::Barrier::new(attempts));
    let began = Instant::now();
    let tasks: Vec<_> = (0..attempts)
        .map(|n| {
            let app = nodes[n % nodes.len()].app.clone();
            let (key, start) = (key.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                let fingerprint = format!("device-{n}");
                (fingerprint.clone(), app.activate(activate(&key, &fingerprint)).await)
            })
        })
        .collect();
    let mut created = BTreeSet::new();
    let mut refused = 0;
    for task in tasks {
        match task.await.unwrap() {
            (fingerprint, Ok(activation)) if activation.created => {
                created.insert(fingerprint);
            }
            (_, Err(Error::Api { status: 409, code, .. })) if code == "ACTIVATION_LIMIT_EXCEEDED" => refused += 1,
            (fingerprint, other) => panic!("{fingerprint}: unexpected answer {other:?}"),
        }
    }
    let took = began.elapsed();
    eprintln!("activation storm: {attempts} activations over {} nodes in {took:?}", nodes.len());
    assert_eq!((created.len(), refused), (5, attempts - 5));

    for (n, node) in nodes.iter().enumerate() {
        let license = node.admin.license(&id).await.unwrap();
        assert_eq!(license["activation_count"], 5, "node {n}");
        let activations = node.admin.activations(&id).await.unwrap();
        let listed: BTreeSet<String> =
            activations["data"].as_array().unwrap().iter().map(|a| text(&a["fingerprint"])).collect();
        assert_eq!(listed, created, "node {n} lists the activations that were answered 201");
        // Each node's cache hears of the others' activations (the last notice may still be on its way).
        let (delay, _) = time_until(node, &key, Instant::now(), |answer| {
            answer.license.as_ref().is_some_and(|l| l.activation_count == 5)
        })
        .await;
        assert!(delay < Duration::from_secs(1), "node {n} validated from a stale snapshot for {delay:?}");
        let again = node.app.activate(activate(&key, "one-more")).await.unwrap_err();
        assert_eq!((again.status(), again.code()), (Some(409), Some("ACTIVATION_LIMIT_EXCEEDED")), "node {n}");
    }
    for node in nodes {
        node.stop().await;
    }
}

/// Polls `node` until its validation of `key` satisfies `changed`; the time from `since`.
async fn time_until(
    node: &InProcessNode,
    key: &str,
    since: Instant,
    changed: impl Fn(&ValidateAnswer) -> bool,
) -> (Duration, ValidateAnswer) {
    let deadline = since + Duration::from_secs(10);
    loop {
        let answer = node.app.validate(validate(key)).await.unwrap();
        if changed(&answer) {
            return (since.elapsed(), answer);
        }
        assert!(Instant::now() < deadline, "the change never reached the other node: {answer:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_change_on_one_node_reaches_another_nodes_cache_within_a_second() {
    let Some(cluster) = Cluster::new().await else { return };
    let (a, b) = (cluster.start().await, cluster.start().await);
    let fx = Fixture::new(&a.admin).await;
    // A store of our own on the same database, to write behind both nodes' backs.
    let store = cluster.database.open().await;

    let mut delays = Vec::new();
    for change in ["revoke", "suspend", "feature_flags", "feature_flags", "feature_flags", "revoke", "suspend"] {
        let (id, key) = assigned_license(&a.admin, &fx, 3).await;
        a.app.activate(activate(&key, "laptop")).await.unwrap();
        let before = b.app.validate(validate(&key)).await.unwrap();
        assert!(before.valid, "{before:?}");

        // Counts written to the database without a change notice do not reach B: B answers from its
        // cache, so only the notice can make it see the change. (The activation's own notice may
        // still be on its way and empty the cache once; then the proof is tried again.)
        let record = ValidationRecord {
            environment: "production".into(),
            license_id: id.clone(),
            at: chrono::Utc::now(),
            code: ValidationCode::Valid,
            fingerprint: None,
            ip: None,
        };
        let mut written = 0;
        let mut served_from_cache = false;
        for _ in 0..5 {
            let seen = b.app.validate(validate(&key)).await.unwrap().license.unwrap().validation_count;
            store.record_validations(&vec![record.clone(); 1000]).await.unwrap();
            written += 1000;
            let cached = b.app.validate(validate(&key)).await.unwrap().license.unwrap().validation_count;
            if cached < seen + 1000 {
                served_from_cache = true;
                break;
            }
        }
        assert!(served_from_cache, "B read the license from the database on every validation");

        let flags = json!({"pro": false, "seats": 10});
        let acknowledged = match change {
            "revoke" => a.admin.license_action(&id, "revoke", &json!({})).await,
            "suspend" => a.admin.license_action(&id, "suspend", &json!({"reason": "chargeback"})).await,
            _ => a.admin.edit_license(&id, &json!({"feature_flags": flags})).await,
        };
        acknowledged.expect("A makes the change");
        let since = Instant::now();
        let (delay, answer) = time_until(&b, &key, since, |answer| match change {
            "revoke" => answer.code == ValidationCode::LicenseRevoked,
            "suspend" => answer.code == ValidationCode::LicenseSuspended,
            _ => answer.license.as_ref().is_some_and(|l| l.feature_flags == flags),
        })
        .await;
        assert!(answer.license.unwrap().validation_count >= written, "B reloaded the license from the database");
        assert!(delay < Duration::from_secs(1), "{change} took {delay:?} to reach the other node");
        delays.push((change, delay));
    }
    eprintln!("cross-node invalidation delays after the change was acknowledged: {delays:?}");
    a.stop().await;
    b.stop().await;
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_nodes_starting_at_once_on_a_fresh_database_all_serve() {
    let _turn = POSTGRES_HEAVY.lock().await;
    let Some(cluster) = Cluster::new().await else { return };
    let configs: Vec<Config> = (0..4).map(|_| cluster.config()).collect();
    let starting: Vec<_> =
        configs.into_iter().map(|config| tokio::spawn(async move { keyward_server::start(&config).await })).collect();
    let mut nodes = Vec::new();
    for (n, started) in starting.into_iter().enumerate() {
        let running = started.await.unwrap().unwrap_or_else(|e| panic!("node {n} did not start: {e:#}"));
        nodes.push(InProcessNode::from(running).await);
    }

    let http = reqwest::Client::new();
    let mut public_keys = BTreeSet::new();
    for node in &nodes {
        let ready = http.get(format!("{}/readyz", node.base_url())).send().await.unwrap();
        assert_eq!(ready.status(), 200);
        let keys = node.app.request(Method::GET, "/public-keys", None).await.unwrap();
        public_keys.insert(keys.body.to_string());
    }
    assert_eq!(public_keys.len(), 1, "every node signs with the one first key: {public_keys:?}");
    let admin = &nodes[0].admin;
    for (action, made) in [("token.created", 1), ("signing_key.created", 1)] {
        let events = admin.request(Method::GET, &format!("/audit-events?action={action}"), None).await.unwrap();
        assert_eq!(events.body["total"], made, "{action}: {}", events.body);
    }

    // One installation: a license made on one node is seen, activated and validated on the others.
    let fx = Fixture::new(&nodes[1].admin).await;
    let (_, key) = assigned_license(&nodes[2].admin, &fx, 3).await;
    nodes[3].app.activate(activate(&key, "laptop")).await.unwrap();
    for node in &nodes {
        let answer = node.app.validate(ValidateRequest { fingerprint: Some("laptop".into()), ..validate(&key) }).await;
        assert_eq!(answer.unwrap().code, ValidationCode::Valid);
    }
    for node in nodes {
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rotated_signing_key_and_new_settings_reach_the_other_nodes() {
    let Some(cluster) = Cluster::new().await else { return };
    let (a, b) = (cluster.start().await, cluster.start().await);
    let fx = Fixture::new(&a.admin).await;
    let (_, key) = assigned_license(&a.admin, &fx, 3).await;
    let old_file = b.app.offline_file(&key, None).await.unwrap();
    let old_kid = old_file.kid.clone();

    let rotated = a.admin.request(Method::POST, "/signing-keys/rotate", None).await.unwrap();
    assert_eq!(rotated.status, 201, "{:?}", rotated.body);
    let lifetime = json!({"offline_file_lifetime_secs": 3600});
    assert_eq!(a.admin.request(Method::PATCH, "/settings", Some(&lifetime)).await.unwrap().status, 200);
    let since = Instant::now();
    let new_kid = text(&rotated.body["kid"]);
    assert_ne!(new_kid, old_kid);
    let new_key = KeyRing::from_base64(&new_kid, &text(&rotated.body["public_key"])).unwrap();

    // Node B rereads signing keys and settings every 5 s.
    let deadline = since + Duration::from_secs(6);
    let (mut key_seen, mut settings_seen) = (None, None);
    while key_seen.is_none() || settings_seen.is_none() {
        assert!(
            Instant::now() < deadline,
            "after {:?}: key seen {key_seen:?}, settings seen {settings_seen:?}",
            since.elapsed()
        );
        let listed = b.app.request(Method::GET, "/public-keys", None).await.unwrap().body;
        let current: Vec<&Value> =
            listed["keys"].as_array().unwrap().iter().filter(|k| k["status"] == "current").collect();
        if key_seen.is_none() && current.len() == 1 && current[0]["kid"] == new_kid.as_str() {
            key_seen = Some(since.elapsed());
        }
        let file = b.app.clone().require_signatures(false).offline_file(&key, None).await.unwrap();
        let claims: Value = serde_json::from_slice(&base64_url(&file.payload)).unwrap();
        if settings_seen.is_none() && claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap() == 3600 {
            settings_seen = Some(since.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("signing key reached node B after {key_seen:?}, settings after {settings_seen:?}");

    // B's answers and files now verify with the new key alone; the old key is listed as retired.
    let listed = b.app.request(Method::GET, "/public-keys", None).await.unwrap().body;
    let retired = listed["keys"].as_array().unwrap().iter().find(|k| k["kid"] == old_kid.as_str()).unwrap();
    assert_eq!(retired["status"], "retired");
    let trusting_new_key = Client::new(b.base_url()).with_key_ring(new_key.clone());
    let answer = trusting_new_key.validate(validate(&key)).await.expect("B's answer verifies with the new key");
    assert_eq!(answer.code, ValidationCode::Valid);
    let file = trusting_new_key.offline_file(&key, None).await.unwrap();
    assert_eq!(file.kid, new_kid);
    let bytes = serde_json::to_vec(&file).unwrap();
    keyward_core::offline::verify_file(&bytes, &new_key, chrono::Utc::now(), None).expect("the file verifies");
    a.stop().await;
    b.stop().await;
}

fn base64_url(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text).expect("base64url")
}

/// What a killed node had acknowledged before it died.
#[derive(Default)]
struct Acknowledged {
    licenses: Vec<String>,
    /// (license key, fingerprint)
    activations: Vec<(String, String)>,
    revoked: Vec<String>,
}

/// Runs `keyward serve` as a child process, writes to it from many tasks at once, SIGKILLs it
/// mid-stream, starts a new node on the same database and looks for every acknowledged write.
async fn sigkill_loses_nothing_acknowledged(dir: &Path, database_url: Option<&str>) {
    let data_dir = dir.join("data");
    let mut command = keyward(dir);
    command
        .env("KEYWARD_LISTEN", "127.0.0.1:0")
        .env("KEYWARD_DATA_DIR", &data_dir)
        .env("KEYWARD_BOOTSTRAP_TOKEN", OWNER_TOKEN)
        .arg("serve");
    if let Some(url) = database_url {
        command.env("KEYWARD_DATABASE_URL", url);
    }
    let mut node = Node::serve(&mut command).await;
    let app = Client::new(&node.base_url);
    let app = app.clone().with_key_ring(app.fetch_key_ring().await.unwrap());
    let admin = app.clone().with_token(OWNER_TOKEN);
    let fx = Fixture::new(&admin).await;
    let mut targets = Vec::new();
    for _ in 0..6 {
        targets.push(assigned_license(&admin, &fx, 1000).await.1);
    }

    let acknowledged = Arc::new(Mutex::new(Acknowledged::default()));
    let count = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicBool::new(false));
    let cut_off = Arc::new(AtomicUsize::new(0));
    let writers: Vec<_> = (0..12)
        .map(|w| {
            let (admin, app, fx) = (admin.clone(), app.clone(), fx_clone(&fx));
            let (acknowledged, count, failed) = (acknowledged.clone(), count.clone(), failed.clone());
            let cut_off = cut_off.clone();
            let target = targets[w % targets.len()].clone();
            tokio::spawn(async move {
                for i in 0..10_000 {
                    let done = match i % 3 {
                        0 => {
                            let body =
                                json!({"product": fx.product, "generator": fx.generator, "customer": fx.customer});
                            admin.create_license(&body).await.map(|l| {
                                acknowledged.lock().unwrap().licenses.push(text(&l["key"]));
                            })
                        }
                        1 => {
                            let fingerprint = format!("writer-{w}-{i}");
                            app.activate(activate(&target, &fingerprint)).await.map(|a| {
                                assert!(a.created);
                                acknowledged.lock().unwrap().activations.push((target.clone(), fingerprint));
                            })
                        }
                        _ => {
                            match admin.create_license(&json!({"product": fx.product, "generator": fx.generator})).await
                            {
                                Ok(license) => {
                                    acknowledged.lock().unwrap().licenses.push(text(&license["key"]));
                                    admin.license_action(&text(&license["id"]), "revoke", &json!({})).await.map(|_| {
                                        acknowledged.lock().unwrap().revoked.push(text(&license["key"]));
                                    })
                                }
                                Err(e) => Err(e),
                            }
                        }
                    };
                    match done {
                        Ok(()) => count.fetch_add(1, Ordering::Relaxed),
                        // The node is gone: everything after this is unacknowledged.
                        Err(err) => {
                            // A request the node had received when it died, not one it refused to connect.
                            if matches!(&err, Error::Http(http) if !http.is_connect()) {
                                cut_off.fetch_add(1, Ordering::Relaxed);
                            }
                            failed.store(true, Ordering::Relaxed);
                            return;
                        }
                    };
                }
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    while count.load(Ordering::Relaxed) < 150 {
        assert!(Instant::now() < deadline, "only {} writes in 120 s", count.load(Ordering::Relaxed));
        assert!(!failed.load(Ordering::Relaxed), "a write failed before the kill:\n{}", node.output_so_far());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    node.kill().await;
    let at_kill = count.load(Ordering::Relaxed);
    for writer in writers {
        writer.await.unwrap();
    }
    let acknowledged = std::mem::take(&mut *acknowledged.lock().unwrap());
    eprintln!(
        "killed after {at_kill} acknowledged writes: {} licenses, {} activations, {} revokes acknowledged, \
         {} requests cut off in flight",
        acknowledged.licenses.len(),
        acknowledged.activations.len(),
        acknowledged.revoked.len(),
        cut_off.load(Ordering::Relaxed)
    );
    assert!(cut_off.load(Ordering::Relaxed) > 0, "the node was killed between writes, not in the middle of them");

    let config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir,
        database_url: database_url.map(str::to_owned),
        ..Config::default()
    };
    let restarted = InProcessNode::from(keyward_server::start(&config).await.expect("a new node starts")).await;
    let admin = &restarted.admin;
    for key in &acknowledged.licenses {
        let found = admin.request(Method::GET, &format!("/licenses/{key}"), None).await.unwrap();
        assert_eq!(found.status, 200, "an acknowledged license is gone: {:?}", found.body);
    }
    for key in &acknowledged.revoked {
        assert_eq!(admin.license(key).await.unwrap()["status"], "revoked");
    }
    for target in &targets {
        let license = admin.license(target).await.unwrap();
        let activations = admin.activations(&text(&license["id"])).await.unwrap();
        let listed: BTreeSet<String> =
            activations["data"].as_array().unwrap().iter().map(|a| text(&a["fingerprint"])).collect();
        // In-flight activations may or may not have landed, but the count always agrees with the rows.
        assert_eq!(license["activation_count"].as_u64().unwrap() as usize, listed.len());
        for (_, fingerprint) in acknowledged.activations.iter().filter(|(key, _)| key == target) {
            assert!(listed.contains(fingerprint), "the acknowledged activation {fingerprint} is gone");
        }
    }
    let total = admin.licenses(&[("limit", "1")]).await.unwrap()["total"].as_u64().unwrap() as usize;
    assert!(total >= acknowledged.licenses.len() + targets.len());
    restarted.stop().await;
}

fn fx_clone(fx: &Fixture) -> Fixture {
    Fixture { product: fx.product.clone(), generator: fx.generator.clone(), customer: fx.customer.clone() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_on_postgres_loses_no_acknowledged_write() {
    let _turn = POSTGRES_HEAVY.lock().await;
    let Some(database) = PostgresDatabase::create().await else { return };
    let dir = tempfile::tempdir().unwrap();
    sigkill_loses_nothing_acknowledged(dir.path(), Some(&database.url)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_on_sqlite_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    sigkill_loses_nothing_acknowledged(dir.path(), None).await;
}
