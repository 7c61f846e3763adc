//! A stable-Rust stand-in for the libFuzzer targets of `fuzz/` (which need nightly): valid inputs
//! mutated at random for a while, fed to every parser of untrusted input. None may panic, and
//! none may accept a forgery: whatever still verifies must say what the original said.
//!
//! `KEYWARD_FUZZ_SECONDS` sets the time per target (default 1), `KEYWARD_FUZZ_SEED` replays a run.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, TimeZone, Utc};
use ed25519_dalek::Signer as _;
use keyward_core::key::{key_looks_valid, normalize_crockford, KeyFormat};
use keyward_core::offline::{verify_file, OfflineClaims, OfflineFile};
use keyward_core::seal::{seal, unseal};
use keyward_core::signature::{parse_header, verify_answer, Signer};
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

/// Bytes that matter to the parsers, spliced into inputs.
const TOKENS: &[&[u8]] = &[
    b"\"payload\"",
    b"\"sig\"",
    b"\"alg\"",
    b"\"kid\"",
    b"ed25519",
    b"kid=",
    b"alg=",
    b"sig=",
    b", ",
    b"==",
    b"\\u0000",
    b"\"",
    b"{",
    b"}",
    b"[",
    b"]",
    b":",
    b",",
    b"-",
    b".",
    b"v1.",
    b"\xff",
    b"\xc3\xa9",
    b" ",
    b"\t",
    b"0",
    b"null",
];

fn budget() -> Duration {
    let seconds = std::env::var("KEYWARD_FUZZ_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(1.0);
    Duration::from_secs_f64(seconds)
}

fn seed() -> u64 {
    std::env::var("KEYWARD_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| rand::thread_rng().gen())
}

fn mutate(rng: &mut StdRng, input: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..rng.gen_range(1..=4) {
        let at = rng.gen_range(0..=out.len());
        match rng.gen_range(0..8) {
            0 if at < out.len() => out[at] ^= 1 << rng.gen_range(0..8),
            1 if at < out.len() => out[at] = rng.gen(),
            2 => out.insert(at, rng.gen()),
            3 => {
                let end = rng.gen_range(at..=out.len().min(at + 8));
                out.drain(at..end);
            }
            4 => {
                let end = rng.gen_range(at..=out.len().min(at + 16));
                let copy = out[at..end].to_vec();
                out.splice(at..at, copy);
            }
            5 => {
                let token = TOKENS[rng.gen_range(0..TOKENS.len())];
                out.splice(at..at, token.iter().copied());
            }
            6 => out.truncate(at),
            _ => {
                if at < out.len() {
                    out[at] = *TOKENS[rng.gen_range(0..TOKENS.len())].first().unwrap_or(&0);
                }
            }
        }
    }
    out
}

/// Feeds mutations of `seeds` (and now and then random bytes) to `check` until the budget is spent.
fn run(name: &str, seeds: &[Vec<u8>], check: impl Fn(&[u8])) {
    let seed = seed();
    let mut rng = StdRng::seed_from_u64(seed);
    let (start, budget) = (Instant::now(), budget());
    let mut count = 0u64;
    while start.elapsed() < budget || count == 0 {
        let input = if rng.gen_bool(0.05) {
            let mut random = vec![0; rng.gen_range(0..256)];
            rng.fill_bytes(&mut random);
            random
        } else {
            let base = &seeds[rng.gen_range(0..seeds.len())];
            mutate(&mut rng, base)
        };
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| check(&input))) {
            eprintln!("{name}: failed on {:?}; replay with KEYWARD_FUZZ_SEED={seed}", String::from_utf8_lossy(&input));
            resume_unwind(panic);
        }
        count += 1;
    }
    println!("{name}: {count} inputs in {:.1?} (KEYWARD_FUZZ_SEED={seed})", start.elapsed());
}

fn signer() -> Signer {
    Signer::from_bytes(&[0x4b; 32])
}

fn claims() -> OfflineClaims {
    OfflineClaims {
        license_id: "lic_01JGXKZ0Q8".into(),
        key: "ACME-3PMME-KZWDE-R8BXD-55PD4-0EHYG".into(),
        product_id: "prod_01JGXKYV2C".into(),
        customer_email: Some("ada@example.com".into()),
        status: "active".into(),
        feature_flags: serde_json::json!({"pro": true, "seats": 5}),
        license_expires_at: Some(Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap()),
        fingerprint: Some("device-1".into()),
        iat: 1_767_225_600,
        exp: 1_767_312_000,
    }
}

#[test]
fn offline_files() {
    let s = signer();
    let ring = s.key_ring();
    let now = DateTime::from_timestamp(1_767_229_200, 0).unwrap();
    let file = serde_json::to_vec(&OfflineFile::sign(&claims(), &s)).unwrap();
    let pretty = serde_json::to_vec_pretty(&OfflineFile::sign(&claims(), &s)).unwrap();
    let json = serde_json::to_vec(&claims()).unwrap();
    run("offline files", &[file, pretty, json], |input| {
        for fingerprint in [Some("device-1"), None] {
            if let Ok(accepted) = verify_file(input, &ring, now, fingerprint) {
                assert_eq!(accepted, claims(), "a changed file verified with other claims");
            }
        }
        // Past the signature: the input as the claims of a correctly signed file.
        let payload = URL_SAFE_NO_PAD.encode(input);
        let sig = URL_SAFE_NO_PAD.encode(s.key.sign(payload.as_bytes()).to_bytes());
        let signed = serde_json::json!({"payload": payload, "sig": sig, "alg": "ed25519", "kid": s.kid});
        let _ = verify_file(signed.to_string().as_bytes(), &ring, now, Some("device-1"));
    });
}

#[test]
fn signature_headers() {
    let s = signer();
    let ring = s.key_ring();
    let body = br#"{"valid":true}"#;
    let header = s.sign_answer("POST", "/api/v1/validate", 200, "n-1", body);
    let original = parse_header(&header).unwrap();
    let reordered = format!("sig={}, kid={}, alg=ed25519", &header[header.find("sig=").unwrap() + 4..], s.kid);
    run("signature headers", &[header.into_bytes(), reordered.into_bytes()], |input| {
        let Ok(text) = std::str::from_utf8(input) else { return };
        let parsed = parse_header(text);
        if verify_answer(&ring, text, "POST", "/api/v1/validate", 200, "n-1", body).is_ok() {
            assert_eq!(parsed.unwrap(), original, "a changed header verified");
        }
    });
}

#[test]
fn key_texts() {
    let formats = [
        KeyFormat::Uuid,
        KeyFormat::Chunked { prefix: None, groups: 4, group_length: 5, alphabet: None },
        KeyFormat::Chunked { prefix: Some("ACME".into()), groups: 2, group_length: 2, alphabet: None },
        KeyFormat::Chunked {
            prefix: Some("k".into()),
            groups: 3,
            group_length: 4,
            alphabet: Some("abcdefgh23456789!#$%&*+=".into()),
        },
        KeyFormat::Pattern { template: "ACME-{5}-{5}.{3}".into() },
    ];
    let mut rng = StdRng::seed_from_u64(5);
    let seeds: Vec<Vec<u8>> = formats.iter().map(|f| f.generate(&mut rng).into_bytes()).collect();
    run("key texts", &seeds, |input| {
        let Ok(text) = std::str::from_utf8(input) else { return };
        let valid = key_looks_valid(text);
        // A normalized key is judged like the key itself (36 bytes aside: `o`/`l` can make a UUID's shape).
        if text.len() != 36 {
            assert_eq!(valid, key_looks_valid(&normalize_crockford(text)), "normalizing changed the verdict");
        }
        for format in &formats {
            let _ = format.looks_valid(text);
        }
    });
}

#[test]
fn sealed_values() {
    let master = [5u8; 32];
    let secret = [42u8; 32];
    let sealed = seal(&master, &secret);
    run("sealed values", &[sealed.into_bytes()], |input| {
        let Ok(text) = std::str::from_utf8(input) else { return };
        if let Ok(opened) = unseal(&master, text) {
            assert_eq!(opened, secret, "a changed sealed value opened to something else");
        }
    });
}
