//! API tokens: `kw_` and 32 random bytes, shown once, stored as SHA-256 with a readable prefix.

use crate::error::ApiError;
use base64::Engine;
use chrono::Utc;
use dashmap::DashMap;
use keyward_core::ids::{new_id, IdKind};
use keyward_core::role::Role;
use keyward_store::{ApiToken, Audit, Store};
use rand::RngCore;
use sha2::{Digest, Sha256};

pub const TOKEN_PREFIX: &str = "kw_";

/// A token's secret value, generated fresh.
pub fn generate_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{TOKEN_PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A new token record for `secret` (the secret itself is not kept).
pub fn new_token(name: &str, role: Role, environment: &str, secret: &str) -> ApiToken {
    ApiToken {
        id: new_id(IdKind::Token),
        name: name.to_owned(),
        role,
        environment: environment.to_owned(),
        token_hash: hash_secret(secret),
        prefix: secret.chars().take(10).collect(),
        created_at: Utc::now(),
    }
}

/// Creates and stores a token, returning its record and the secret to show once.
pub async fn create(
    store: &dyn Store,
    name: &str,
    role: Role,
    environment: &str,
    secret: Option<String>,
    audit: &Audit,
) -> Result<(ApiToken, String), keyward_store::StoreError> {
    let secret = secret.unwrap_or_else(generate_secret);
    let token = new_token(name, role, environment, &secret);
    store.create_token(&token, audit).await?;
    Ok((token, secret))
}

/// Tokens already seen, by hash, so an admin request costs no database read after the first.
#[derive(Default)]
pub struct TokenCache {
    by_hash: DashMap<String, ApiToken>,
}

impl TokenCache {
    pub async fn authenticate(&self, store: &dyn Store, secret: &str) -> Result<Option<ApiToken>, ApiError> {
        // Hashing first makes the lookup independent of how much of the secret matches.
        let hash = hash_secret(secret);
        if let Some(token) = self.by_hash.get(&hash) {
            return Ok(Some(token.clone()));
        }
        let token = store.token_by_hash(&hash).await?;
        if let Some(token) = &token {
            self.by_hash.insert(hash, token.clone());
        }
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_long_random_and_hashed() {
        let a = generate_secret();
        assert!(a.starts_with("kw_") && a.len() == 46, "{a}");
        assert_ne!(a, generate_secret());
        assert_eq!(hash_secret(&a).len(), 64);
        assert_ne!(hash_secret(&a), a);
        let token = new_token("ci", Role::Admin, "production", &a);
        assert_eq!(token.prefix, &a[..10]);
    }
}
