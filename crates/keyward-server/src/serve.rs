//! Starting and stopping a keyward node: open the store, bootstrap, serve, drain on shutdown.

use crate::cache::LicenseCache;
use crate::config::Config;
use crate::extract::route_environment;
use crate::keys::{load_or_create_master_key, SigningKeys};
use crate::recorder::Recorder;
use crate::state::AppState;
use crate::{routes, tokens};
use anyhow::Context;
use axum::extract::{MatchedPath, Request};
use keyward_core::role::Role;
use keyward_store::{Audit, CacheInvalidation, LicenseChanges, SqlStore, Store, StoreError};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tower_http::trace::TraceLayer;

/// A node that is serving.
pub struct Running {
    pub addr: SocketAddr,
    /// The owner token created on an empty installation (to print once), if this start made one.
    pub bootstrap_token: Option<String>,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// Stops accepting, finishes in-flight requests, flushes validation counts.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        self.task.await.context("the server task failed")?
    }

    /// Serves until the process receives SIGINT or SIGTERM, then stops gracefully. The handlers
    /// are installed by this call, so a signal that comes before the future is awaited still counts.
    pub fn until_signal(self) -> impl std::future::Future<Output = anyhow::Result<()>> {
        let signal = shutdown_signal();
        async move {
            signal.await;
            tracing::info!("shutting down: finishing requests and flushing validation counts");
            self.stop().await
        }
    }
}

/// Waits for SIGINT or SIGTERM; both handlers are installed before this returns.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut interrupt = signal(SignalKind::interrupt()).expect("installing a SIGINT handler");
        let mut terminate = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
        async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Opens the configured database (creating the data directory for SQLite) and migrates it.
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<SqlStore>> {
    let url = config.database_url();
    if url.starts_with("sqlite:") {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("cannot create the data directory {}", config.data_dir.display()))?;
    }
    let store = SqlStore::open(&url).await.context("cannot open the database")?;
    Ok(Arc::new(store))
}

/// Starts a node on `config.listen` (port 0 picks a free port).
pub async fn start(config: &Config) -> anyhow::Result<Running> {
    let store = open_store(config).await?;
    let environments = store.environments().await?;
    let mut settings = HashMap::new();
    for environment in &environments {
        settings.insert(environment.clone(), store.settings(environment).await?);
    }
    let keys = SigningKeys::new(load_or_create_master_key(&config.master_key_file())?);
    keys.load(store.as_ref(), &environments).await?;
    let bootstrap_token = bootstrap(store.as_ref(), config).await?;
    let changes = store.license_changes().await?;

    let store: Arc<dyn Store> = store;
    let (recorder, recorder_task) = Recorder::start(store.clone());
    let last_fold = store.clone();
    let state = AppState {
        store,
        licenses: Arc::new(LicenseCache::new(&environments)),
        environments: Arc::new(environments),
        settings: Arc::new(RwLock::new(settings)),
        tokens: Default::default(),
        keys: Arc::new(keys),
        limits: Default::default(),
        trusted_proxies: Arc::new(config.trusted_proxies.clone()),
        recorder,
    };
    // Spans name the route template, never the raw path: `/licenses/{id}` may carry a key.
    let trace = TraceLayer::new_for_http().make_span_with(|req: &Request| {
        let route = req.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str());
        tracing::info_span!("request", method = %req.method(), route)
    });
    let background = vec![
        tokio::spawn(follow_other_nodes(state.clone(), changes)),
        tokio::spawn(refresh(state.clone())),
        tokio::spawn(warm(state.clone())),
    ];
    let app = routes::router(state).layer(trace);
    let app = tower::ServiceExt::map_request(app, route_environment);

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let (shutdown, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(listener, axum::ServiceExt::<Request>::into_make_service_with_connect_info::<SocketAddr>(app))
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
            .context("the HTTP server failed")?;
        for task in background {
            task.abort();
            let _ = task.await;
        }
        // Every handle on the recorder is gone with the router: its writer flushes and ends.
        recorder_task.await.context("the validation recorder failed")?;
        last_fold.fold_validations().await.context("cannot fold the validations journaled")?;
        Ok(())
    });
    tracing::info!(%addr, "keyward is serving");
    Ok(Running { addr, bootstrap_token, shutdown: Some(shutdown), task })
}

/// Forgets cached licenses that other nodes changed (PostgreSQL only; SQLite has one writer).
async fn follow_other_nodes(state: AppState, changes: Option<LicenseChanges>) {
    let Some(mut changes) = changes else { return };
    while let Some(change) = changes.recv().await {
        match change {
            CacheInvalidation::License { environment, key } => state.licenses.invalidate(&environment, &key),
            CacheInvalidation::NewLicenses { .. } => state.licenses.forget_unknown(),
            CacheInvalidation::Everything => state.licenses.clear(),
        }
    }
}

/// Loads every license into memory after start (the node serves meanwhile, reading misses).
async fn warm(state: AppState) {
    let started = std::time::Instant::now();
    for environment in state.environments.iter() {
        match state.licenses.warm(state.store.as_ref(), environment).await {
            Ok(count) => tracing::info!(
                environment,
                count,
                seconds = started.elapsed().as_secs_f64(),
                "licenses loaded into memory"
            ),
            Err(err) => {
                tracing::warn!(error = %err, environment, "could not load licenses into memory; they load on first use")
            }
        }
    }
}

/// How often a node rereads settings and signing keys that another node may have changed, and
/// folds PostgreSQL's license counts.
const REFRESH_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

async fn refresh(state: AppState) {
    let mut tick = tokio::time::interval(REFRESH_EVERY);
    tick.tick().await;
    loop {
        tick.tick().await;
        state.limits.forget_quiet();
        if let Err(err) = state.store.fold_license_counts().await {
            tracing::warn!(error = %err, "could not fold license counts");
        }
        for environment in state.environments.iter() {
            match state.store.settings(environment).await {
                Ok(settings) => state.set_settings(environment, settings),
                Err(err) => tracing::warn!(error = %err, "could not reread settings"),
            }
            if let Err(err) = state.keys.reload(state.store.as_ref(), environment).await {
                tracing::warn!(error = %err, "could not reread signing keys");
            }
        }
    }
}

/// On an installation without tokens, creates the first owner token for production.
async fn bootstrap(store: &dyn Store, config: &Config) -> anyhow::Result<Option<String>> {
    if store.token_count().await? > 0 {
        return Ok(None);
    }
    if let Some(secret) = &config.bootstrap_token {
        anyhow::ensure!(secret.len() >= 16, "KEYWARD_BOOTSTRAP_TOKEN must be at least 16 characters");
    }
    let audit = Audit { actor: "keyward serve (bootstrap)".into(), ip: None, action: "token.created".into() };
    let created =
        tokens::create(store, "bootstrap owner", Role::Owner, "production", config.bootstrap_token.clone(), &audit)
            .await;
    match created {
        Ok((_, secret)) => Ok(Some(secret)),
        // Nodes starting at once with one KEYWARD_BOOTSTRAP_TOKEN: another node made this very token.
        Err(StoreError::Conflict { code: "TOKEN_EXISTS", .. }) if config.bootstrap_token.is_some() => Ok(None),
        Err(err) => Err(err.into()),
    }
}
