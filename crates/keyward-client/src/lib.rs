//! keyward's client SDK: the license API with signed, replay-proof answers, offline license files
//! with a clock-rollback guard, and the admin API for a vendor's back office.
//!
//! ```no_run
//! # async fn run() -> Result<(), keyward_client::Error> {
//! use keyward_client::{api::ValidateRequest, Client};
//!
//! let client = Client::new("https://licenses.example.com");
//! let ring = client.fetch_key_ring().await?; // better: pinned at build time, see the README
//! let client = client.with_key_ring(ring);
//! let request = ValidateRequest { key: "ACME-…".into(), fingerprint: Some("device-1".into()), ..Default::default() };
//! let answer = client.validate(request).await?;
//! println!("valid: {}", answer.valid);
//! # Ok(()) }
//! ```

mod admin;
mod client;
mod error;
mod license;
mod offline;

pub use admin::ApiResponse;
pub use client::{new_nonce, Client};
pub use error::{Error, Result};
pub use license::Activation;
pub use offline::{OfflineVerifier, ROLLBACK_TOLERANCE_SECS};

pub use keyward_core::api;
pub use keyward_core::key::key_looks_valid;
pub use keyward_core::offline::{OfflineClaims, OfflineError, OfflineFile};
pub use keyward_core::signature::{KeyRing, SignatureError};
pub use reqwest::Method;

/// The part of a license key that may be shown in logs and messages: its first 8 characters.
pub fn key_hint(key: &str) -> String {
    let shown: String = key.chars().take(8).collect();
    if shown.len() < key.len() {
        format!("{shown}…")
    } else {
        shown
    }
}

#[cfg(test)]
mod tests {
    use super::key_hint;

    #[test]
    fn a_key_hint_shows_at_most_eight_characters() {
        assert_eq!(key_hint("ACME-7QX2M-ABCDE-FGHJK"), "ACME-7QX…");
        assert_eq!(key_hint("SHORT"), "SHORT");
        assert_eq!(key_hint("ÄÖÜ-ÄÖÜ-ÄÖÜ"), "ÄÖÜ-ÄÖÜ-…");
    }
}
