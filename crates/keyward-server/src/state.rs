//! What every request handler shares.

use crate::cache::LicenseCache;
use crate::keys::SigningKeys;
use crate::limits::RateLimits;
use crate::recorder::Recorder;
use crate::tokens::TokenCache;
use keyward_store::{Settings, Store};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub environments: Arc<Vec<String>>,
    pub settings: Arc<RwLock<HashMap<String, Settings>>>,
    pub tokens: Arc<TokenCache>,
    pub keys: Arc<SigningKeys>,
    pub licenses: Arc<LicenseCache>,
    pub limits: Arc<RateLimits>,
    pub trusted_proxies: Arc<Vec<std::net::IpAddr>>,
    pub recorder: Recorder,
}

impl AppState {
    pub fn has_environment(&self, name: &str) -> bool {
        self.environments.iter().any(|env| env == name)
    }

    pub fn settings(&self, environment: &str) -> Settings {
        self.settings.read().unwrap_or_else(|e| e.into_inner()).get(environment).cloned().unwrap_or_default()
    }

    pub fn set_settings(&self, environment: &str, settings: Settings) {
        self.settings.write().unwrap_or_else(|e| e.into_inner()).insert(environment.to_owned(), settings);
    }

    pub fn grace(&self, environment: &str) -> chrono::Duration {
        chrono::Duration::days(self.settings(environment).grace_period_days)
    }
}
