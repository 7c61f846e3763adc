//! Arbitrary text as a `Keyward-Signature` header, parsed and checked against an answer.
#![no_main]

use keyward_core::signature::{parse_header, verify_answer, KeyRing, Signer};
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

/// The key of `docs/examples/vector.json`, so the seed header there parses and names a known kid.
static RING: LazyLock<KeyRing> = LazyLock::new(|| Signer::from_bytes(&[0x4b; 32]).key_ring());

fuzz_target!(|data: &[u8]| {
    let Ok(header) = std::str::from_utf8(data) else { return };
    let _ = parse_header(header);
    let _ = verify_answer(&RING, header, "POST", "/api/v1/validate", 200, "n-1", br#"{"valid":true}"#);
});
