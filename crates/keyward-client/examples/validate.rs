//! What a vendor's app does at start-up: check the key for typos, activate this device, validate
//! it, keep a fresh offline file, and fall back to that file when the server cannot be reached.
//!
//! ```sh
//! KEYWARD_URL=https://licenses.example.com KEYWARD_LICENSE_KEY=ACME-… \
//!   cargo run -p keyward-client --example validate
//! ```
//! Pin the server's public key at build time (a real app should; see `pinned_key_ring`):
//! `KEYWARD_KID=<kid> KEYWARD_PUBLIC_KEY=<base64> cargo build …`.

use keyward_client::api::{ActivateRequest, ValidateRequest};
use keyward_client::{key_hint, key_looks_valid, Client, Error, KeyRing, OfflineVerifier};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let (Ok(url), Ok(key)) = (std::env::var("KEYWARD_URL"), std::env::var("KEYWARD_LICENSE_KEY")) else {
        eprintln!("set KEYWARD_URL and KEYWARD_LICENSE_KEY");
        return ExitCode::from(2);
    };
    // Catches a mistyped key before any request.
    if !key_looks_valid(&key) {
        eprintln!("the license key {} has a typo; please check it", key_hint(&key));
        return ExitCode::from(2);
    }
    let app_dir = PathBuf::from(std::env::var("KEYWARD_APP_DIR").unwrap_or_else(|_| "./keyward-license".into()));
    if let Err(err) = std::fs::create_dir_all(&app_dir) {
        eprintln!("cannot create {}: {err}", app_dir.display());
        return ExitCode::FAILURE;
    }
    let fingerprint = device_fingerprint();
    let mut client = Client::new(url);
    if let Ok(environment) = std::env::var("KEYWARD_ENVIRONMENT") {
        client = client.environment(&environment);
    }
    let pinned = match pinned_key_ring() {
        Ok(pinned) => pinned,
        Err(err) => {
            eprintln!("the pinned public key is not valid: {err}");
            return ExitCode::FAILURE;
        }
    };
    let offline_path = app_dir.join("license.json");

    match check_online(&client, pinned.clone(), &key, &fingerprint, &offline_path).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) if err.is_unreachable() => {
            eprintln!("the license server cannot be reached ({err}); checking the offline license");
            check_offline(pinned, &fingerprint, &offline_path, &app_dir.join("license-state.json"))
        }
        Err(err) => {
            eprintln!("the license could not be checked: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Activates (again: a repeat is harmless), validates, and saves a fresh offline file.
async fn check_online(
    client: &Client,
    pinned: Option<KeyRing>,
    key: &str,
    fingerprint: &str,
    offline_path: &Path,
) -> Result<bool, Error> {
    // A pinned ring cannot be swapped by whoever controls the network; a fetched one is trusted on first use.
    let ring = match pinned {
        Some(ring) => ring,
        None => client.fetch_key_ring().await?,
    };
    let client = client.clone().with_key_ring(ring);

    let activate = ActivateRequest {
        key: key.to_owned(),
        fingerprint: fingerprint.to_owned(),
        hostname: hostname(),
        platform: Some(std::env::consts::OS.to_owned()),
        ..Default::default()
    };
    match client.activate(activate).await {
        Ok(activation) if activation.created => println!("this device is now activated"),
        Ok(_) => println!("this device was already activated"),
        // Refused (suspended, limit reached, …): validate below says why in the vendor's words.
        Err(Error::Api { code, message, .. }) => eprintln!("activation refused: {code}: {message}"),
        Err(err) => return Err(err),
    }

    let request =
        ValidateRequest { key: key.to_owned(), fingerprint: Some(fingerprint.to_owned()), ..Default::default() };
    let answer = client.validate(request).await?;
    if !answer.valid {
        eprintln!("the license {} is not valid here: {} ({})", key_hint(key), answer.code.as_str(), answer.detail);
        return Ok(false);
    }
    println!(
        "the license {} is valid{}",
        key_hint(key),
        if answer.in_grace == Some(true) { " (grace period)" } else { "" }
    );

    // Refresh the offline file for the next time the server cannot be reached.
    match client.offline_file(key, Some(fingerprint)).await {
        Ok(file) => {
            let saved = serde_json::to_vec_pretty(&file).map_err(|err| Error::Decode(err.to_string()))?;
            if let Err(err) = save(offline_path, &saved) {
                eprintln!("cannot save the offline license: {err}");
            }
        }
        Err(err) => eprintln!("no offline license this time: {err}"),
    }
    Ok(true)
}

fn check_offline(pinned: Option<KeyRing>, fingerprint: &str, offline_path: &Path, state_path: &Path) -> ExitCode {
    // A ring fetched earlier and saved beside the file could be replaced by the user: only a pinned one counts.
    let Some(ring) = pinned else {
        eprintln!("offline checks need the public key pinned at build time");
        return ExitCode::FAILURE;
    };
    let file = match std::fs::read(offline_path) {
        Ok(file) => file,
        Err(err) => {
            eprintln!("no offline license at {}: {err}", offline_path.display());
            return ExitCode::FAILURE;
        }
    };
    let verifier = OfflineVerifier::new(ring).with_state_file(state_path);
    match verifier.verify(&file, Some(fingerprint)) {
        Ok(claims) => {
            println!("the offline license {} is valid until {}", claims.license_id, claims.exp);
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("the offline license is not valid: {err}");
            ExitCode::FAILURE
        }
    }
}

/// The server's public key, compiled in from `KEYWARD_KID` and `KEYWARD_PUBLIC_KEY` when they were set.
fn pinned_key_ring() -> Result<Option<KeyRing>, keyward_client::SignatureError> {
    match (option_env!("KEYWARD_KID"), option_env!("KEYWARD_PUBLIC_KEY")) {
        (Some(kid), Some(public_key)) => KeyRing::from_base64(kid, public_key).map(Some),
        _ => Ok(None),
    }
}

/// A stable id for this device that reveals nothing: SHA-256 of the host name and the machine id.
fn device_fingerprint() -> String {
    let mut hash = Sha256::new();
    hash.update(b"my-app-device-v1\n");
    hash.update(hostname().unwrap_or_default());
    hash.update(b"\n");
    for path in ["/etc/machine-id", "/var/lib/dbus/machine-id"] {
        if let Ok(id) = std::fs::read_to_string(path) {
            hash.update(id.trim());
            break;
        }
    }
    hex::encode(hash.finalize())
}

fn hostname() -> Option<String> {
    std::env::var("HOSTNAME")
        .or_else(|_| std::env::var("COMPUTERNAME"))
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
}

/// Writes through a temporary file and a rename, so a crash never leaves half a license file.
fn save(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let temp = path.with_extension("json.tmp");
    std::fs::write(&temp, bytes)?;
    std::fs::rename(&temp, path)
}
