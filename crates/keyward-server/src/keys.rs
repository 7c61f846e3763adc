//! Signing keys per environment: created on first start, sealed at rest with the master key,
//! rotated on request; the current key signs, retired keys still verify.

use anyhow::Context;
use chrono::Utc;
use keyward_core::seal;
use keyward_core::signature::Signer;
use keyward_store::{Audit, SigningKeyRecord, Store};
use serde::Serialize;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};

/// A public key as `GET /public-keys` lists it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PublicKey {
    pub kid: String,
    pub alg: &'static str,
    /// Base64 (standard) of the 32 raw bytes.
    pub public_key: String,
    /// `current` or `retired`.
    pub status: String,
    pub created_at: chrono::DateTime<Utc>,
}

struct EnvironmentKeys {
    current: Arc<Signer>,
    public: Vec<PublicKey>,
}

pub struct SigningKeys {
    master: [u8; 32],
    by_environment: RwLock<HashMap<String, Arc<EnvironmentKeys>>>,
}

/// Reads the master key, creating it (owner-only permissions) when the file does not exist.
pub fn load_or_create_master_key(path: &Path) -> anyhow::Result<[u8; 32]> {
    match read_master_key(path) {
        Err(err) if err.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::NotFound) => {
            let mut key = [0u8; 32];
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut key);
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
            }
            if publish_owner_only(path, hex::encode(key).as_bytes())
                .with_context(|| format!("cannot write the master key to {}", path.display()))?
            {
                tracing::info!(path = %path.display(), "created a new master key; back it up with the database");
                Ok(key)
            } else {
                // Another process created it first: everyone uses that one.
                read_master_key(path)
            }
        }
        other => other,
    }
}

fn read_master_key(path: &Path) -> anyhow::Result<[u8; 32]> {
    let text = std::fs::read_to_string(path).map_err(anyhow::Error::from)?;
    let bytes = hex::decode(text.trim())
        .with_context(|| format!("the master key file {} must hold 64 hex characters", path.display()))?;
    bytes.try_into().map_err(|_| anyhow::anyhow!("the master key file must hold exactly 32 bytes (64 hex characters)"))
}

/// Writes a complete file beside `path`, then links it into place only if `path` does not exist
/// yet, so no reader ever sees half a key and two creators cannot overwrite each other.
/// Returns false when another process created `path` first.
fn publish_owner_only(path: &Path, contents: &[u8]) -> std::io::Result<bool> {
    let temporary = path.with_extension(format!("{:016x}.tmp", rand::random::<u64>()));
    write_owner_only(&temporary, contents)?;
    let linked = std::fs::hard_link(&temporary, path);
    std::fs::remove_file(&temporary)?;
    match linked {
        Ok(()) => Ok(true),
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(err) => Err(err),
    }
}

#[cfg(unix)]
fn write_owner_only(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

#[cfg(not(unix))]
fn write_owner_only(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, contents)
}

fn record_for(signer: &Signer, environment: &str, master: &[u8; 32]) -> SigningKeyRecord {
    SigningKeyRecord {
        kid: signer.kid.clone(),
        environment: environment.to_owned(),
        status: "current".into(),
        public_key: signer.public_key_base64(),
        sealed_private_key: seal::seal(master, signer.key.as_bytes()),
        created_at: Utc::now(),
    }
}

impl SigningKeys {
    pub fn new(master: [u8; 32]) -> Self {
        SigningKeys { master, by_environment: RwLock::default() }
    }

    /// Loads every environment's keys, creating a first key where there is none.
    pub async fn load(&self, store: &dyn Store, environments: &[String]) -> anyhow::Result<()> {
        for environment in environments {
            let fresh = Signer::generate();
            // Several nodes may start at once: only one first key wins, the others load it.
            store.create_first_signing_key(&record_for(&fresh, environment, &self.master)).await?;
            self.reload(store, environment).await?;
        }
        Ok(())
    }

    pub async fn reload(&self, store: &dyn Store, environment: &str) -> anyhow::Result<()> {
        let records = store.signing_keys(environment).await?;
        let current = records
            .iter()
            .find(|r| r.status == "current")
            .with_context(|| format!("the {environment} environment has no current signing key"))?;
        let secret = seal::unseal(&self.master, &current.sealed_private_key).map_err(|e| {
            anyhow::anyhow!("cannot unseal the {environment} signing key ({e}); is this the master key that sealed it?")
        })?;
        let secret: [u8; 32] =
            secret.try_into().map_err(|_| anyhow::anyhow!("a sealed signing key has the wrong length"))?;
        let signer = Signer::from_bytes(&secret);
        anyhow::ensure!(signer.kid == current.kid, "the {environment} signing key does not match its kid");
        let public = records
            .iter()
            .map(|r| PublicKey {
                kid: r.kid.clone(),
                alg: "ed25519",
                public_key: r.public_key.clone(),
                status: r.status.clone(),
                created_at: r.created_at,
            })
            .collect();
        let keys = Arc::new(EnvironmentKeys { current: Arc::new(signer), public });
        self.by_environment.write().unwrap_or_else(|e| e.into_inner()).insert(environment.to_owned(), keys);
        Ok(())
    }

    fn keys(&self, environment: &str) -> Option<Arc<EnvironmentKeys>> {
        self.by_environment.read().unwrap_or_else(|e| e.into_inner()).get(environment).cloned()
    }

    /// The key that signs this environment's answers and files now.
    pub fn current(&self, environment: &str) -> Option<Arc<Signer>> {
        self.keys(environment).map(|keys| keys.current.clone())
    }

    pub fn public_keys(&self, environment: &str) -> Vec<PublicKey> {
        self.keys(environment).map(|keys| keys.public.clone()).unwrap_or_default()
    }

    /// Retires the current key and makes a new one current.
    pub async fn rotate(&self, store: &dyn Store, environment: &str, audit: &Audit) -> anyhow::Result<PublicKey> {
        let fresh = Signer::generate();
        store.rotate_signing_key(&record_for(&fresh, environment, &self.master), audit).await?;
        self.reload(store, environment).await?;
        self.public_keys(environment)
            .into_iter()
            .find(|k| k.kid == fresh.kid)
            .context("the rotated key is not listed after rotation")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_creators_agree_on_one_master_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data").join("master.key");
        let keys: Vec<[u8; 32]> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8).map(|_| scope.spawn(|| load_or_create_master_key(&path).unwrap())).collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(keys.windows(2).all(|pair| pair[0] == pair[1]), "every process uses the same key");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        assert_eq!(std::fs::read_dir(path.parent().unwrap()).unwrap().count(), 1, "no temporary file is left");
        std::fs::write(&path, "not hex").unwrap();
        assert!(load_or_create_master_key(&path).is_err());
    }
}
