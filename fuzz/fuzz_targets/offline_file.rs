//! Arbitrary bytes as an offline license file, and as the claims inside a correctly signed one.
#![no_main]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::DateTime;
use ed25519_dalek::Signer as _;
use keyward_core::offline::verify_file;
use keyward_core::signature::{KeyRing, Signer};
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

/// The key of `docs/examples/vector.json`, so the seed file there verifies.
static SIGNER: LazyLock<Signer> = LazyLock::new(|| Signer::from_bytes(&[0x4b; 32]));
static RING: LazyLock<KeyRing> = LazyLock::new(|| SIGNER.key_ring());

fuzz_target!(|data: &[u8]| {
    let now = DateTime::from_timestamp(1_767_229_200, 0).expect("a valid time");
    let _ = verify_file(data, &RING, now, Some("device-1"));
    let _ = verify_file(data, &RING, now, None);

    // Past the signature: whatever the payload decodes to, the claims parser must cope.
    let payload = URL_SAFE_NO_PAD.encode(data);
    let sig = URL_SAFE_NO_PAD.encode(SIGNER.key.sign(payload.as_bytes()).to_bytes());
    let file = format!(r#"{{"payload":"{payload}","sig":"{sig}","alg":"ed25519","kid":"{}"}}"#, SIGNER.kid);
    let _ = verify_file(file.as_bytes(), &RING, now, Some("device-1"));
});
