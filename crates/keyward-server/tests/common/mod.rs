//! The real server on a random port, on a fresh SQLite or PostgreSQL database, driven by the SDK.
#![allow(dead_code)]

use keyward_client::Client;
use keyward_server::{Config, Running};
use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub const OWNER_TOKEN: &str = "kw_test_owner_token_for_integration";

pub struct TestServer {
    pub base_url: String,
    pub config: Config,
    running: Option<Running>,
    _data: tempfile::TempDir,
    _database: Option<keyward_store::testing::PostgresDatabase>,
}

impl TestServer {
    /// `None` when PostgreSQL is asked for but unreachable and not required (the helper says so).
    pub async fn start(backend: Backend) -> Option<TestServer> {
        let data = tempfile::tempdir().expect("a temp dir");
        let database = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(keyward_store::testing::PostgresDatabase::create().await?),
        };
        let config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: data.path().join("data"),
            database_url: database.as_ref().map(|db| db.url.clone()),
            bootstrap_token: Some(OWNER_TOKEN.into()),
            ..Config::default()
        };
        let running = keyward_server::start(&config).await.expect("the server starts");
        let base_url = format!("http://{}", running.addr);
        Some(TestServer { base_url, config, running: Some(running), _data: data, _database: database })
    }

    /// Stops the node gracefully (validation counts are flushed).
    pub async fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            running.stop().await.expect("a clean stop");
        }
    }

    /// Starts the node again on the same database, on a new port.
    pub async fn restart(&mut self) {
        self.stop().await;
        let running = keyward_server::start(&self.config).await.expect("the server restarts");
        self.base_url = format!("http://{}", running.addr);
        self.running = Some(running);
    }

    /// The owner of production, as the SDK sees it (signatures checked against the served keys).
    pub async fn admin(&self) -> Client {
        self.client().await.with_token(OWNER_TOKEN)
    }

    /// An app with nothing but the server's public keys.
    pub async fn client(&self) -> Client {
        let client = Client::new(&self.base_url);
        let ring = client.fetch_key_ring().await.expect("public keys");
        client.with_key_ring(ring)
    }

    pub async fn client_in(&self, environment: &str) -> Client {
        let client = Client::new(&self.base_url).environment(environment);
        let ring = client.fetch_key_ring().await.expect("public keys");
        client.with_key_ring(ring)
    }
}

/// A product, a chunked generator for it, and a customer.
pub struct Fixture {
    pub product: String,
    pub generator: String,
    pub customer: String,
}

impl Fixture {
    pub async fn new(admin: &Client) -> Fixture {
        Self::with_generator(
            admin,
            json!({"type": "chunked", "prefix": "ACME", "groups": 4, "group_length": 5}),
            3,
            None,
        )
        .await
    }

    pub async fn with_generator(admin: &Client, format: Value, limit: i64, validity: Option<(i64, &str)>) -> Fixture {
        let product = admin.create_product("Acme Studio").await.expect("product")["id"].as_str().unwrap().to_owned();
        let mut generator = json!({"product": product, "name": "Standard", "format": format, "activation_limit": limit,
            "feature_flags": {"pro": true}});
        if let Some((days, basis)) = validity {
            generator["validity_days"] = json!(days);
            generator["validity_basis"] = json!(basis);
        }
        let generator = admin.create_generator(&generator).await.expect("generator")["id"].as_str().unwrap().to_owned();
        let email = format!("ana+{}@example.com", &generator[4..12]);
        let customer =
            admin.create_customer("Ana Lima", &email).await.expect("customer")["id"].as_str().unwrap().to_owned();
        Fixture { product, generator, customer }
    }

    /// A new license, assigned to the fixture's customer when `assigned`.
    pub async fn license(&self, admin: &Client, assigned: bool) -> Value {
        let mut body = json!({"product": self.product, "generator": self.generator});
        if assigned {
            body["customer"] = json!(self.customer);
        }
        admin.create_license(&body).await.expect("license")
    }
}

/// Declares each listed `async fn(TestServer)` as a test on SQLite and one on PostgreSQL.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let server = $crate::common::TestServer::start($crate::common::Backend::Sqlite).await.unwrap();
                    super::$name(server).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    if let Some(server) = $crate::common::TestServer::start($crate::common::Backend::Postgres).await {
                        super::$name(server).await;
                    }
                }
            )*
        }
    };
}
