//! The test vector of `docs/offline-licensing.md`: `docs/examples/vector.json` is what this file
//! builds, and it must still verify, so the guide and its Python example cannot drift from the code.
//! After a deliberate change of format: `KEYWARD_UPDATE_VECTORS=1 cargo test -p keyward-core --test vectors`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, TimeZone, Utc};
use keyward_core::key::{key_looks_valid, KeyFormat, CROCKFORD};
use keyward_core::offline::{verify_file, OfflineClaims, OfflineError, OfflineFile};
use keyward_core::signature::{signed_message, verify_answer, KeyRing, SignatureError, Signer};
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const VECTOR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/examples/vector.json");

/// A published test key: it signs nothing but this vector.
const TEST_SECRET: [u8; 32] = [0x4b; 32];

const ISSUED_AT: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z
const NOW: i64 = ISSUED_AT + 3_600;

fn build() -> Value {
    let signer = Signer::from_bytes(&TEST_SECRET);
    let format = KeyFormat::Chunked { prefix: Some("ACME".into()), groups: 4, group_length: 5, alphabet: None };
    let mut rng = StdRng::seed_from_u64(2026);
    let keys: Vec<String> = (0..3).map(|_| format.generate(&mut rng)).collect();
    let key = &keys[0];

    let (method, path, status, nonce) = ("POST", "/api/v1/validate?trace=1", 200, "3f6c1d0e8a2b4c5d");
    // Written out, not built with `json!`: the signed bytes must not depend on serde_json's features.
    let body = concat!(
        r#"{"valid":true,"code":"VALID","detail":"the license is valid","#,
        r#""license":{"id":"lic_01JGXKZ0Q8","status":"active","expires_at":"2027-01-01T00:00:00Z"},"#,
        r#""nonce":"3f6c1d0e8a2b4c5d","ts":"2026-01-01T01:00:00Z"}"#
    );
    let message = String::from_utf8(signed_message(method, path, status, nonce, body.as_bytes())).unwrap();
    let header = signer.sign_answer(method, path, status, nonce, body.as_bytes());

    let claims = OfflineClaims {
        license_id: "lic_01JGXKZ0Q8".into(),
        key: key.clone(),
        product_id: "prod_01JGXKYV2C".into(),
        customer_email: Some("ada@example.com".into()),
        status: "active".into(),
        feature_flags: json!({"pro": true, "seats": 5}),
        license_expires_at: Some(Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap()),
        fingerprint: Some("device-1".into()),
        iat: ISSUED_AT,
        exp: ISSUED_AT + 86_400,
    };
    let file = serde_json::to_string(&OfflineFile::sign(&claims, &signer)).unwrap();

    let text = &key[..key.len() - 6];
    let (s1, s2) = check_sums(text);
    json!({
        "about": "Test vector of docs/offline-licensing.md, built and checked by crates/keyward-core/tests/vectors.rs \
                  and checked by docs/examples/verify_offline.py. The key pair is a published test key: trust it nowhere.",
        "public_keys": {"keys": [{"kid": signer.kid, "alg": "ed25519", "public_key": signer.public_key_base64(), "status": "current"}]},
        "answer": {
            "method": method,
            "path": path,
            "status": status,
            "nonce": nonce,
            "body": body,
            "signed_message": message,
            "header": header,
        },
        "offline_file": {
            "file": file,
            "now": NOW,
            "fingerprint": "device-1",
            "claims": claims,
        },
        "chunked_keys": {
            "format": format,
            "valid": keys,
            "valid_when_normalized": [key.to_lowercase(), key.replace('0', "O").replace('1', "L")],
            "mistyped": mistypes(key),
            "worked_example": {"key": key, "text": text, "s1": s1, "s2": s2, "check_group": &key[key.len() - 5..]},
        },
    })
}

/// One typo of each kind; none of them may pass.
fn mistypes(key: &str) -> Vec<String> {
    let swap = |i: usize| {
        let mut bytes = key.as_bytes().to_vec();
        bytes.swap(i, i + 1);
        String::from_utf8(bytes).unwrap()
    };
    let other = |c: u8| if c == b'Z' { 'Y' } else { 'Z' };
    let at = |i: usize, with: &str| format!("{}{}{}", &key[..i], with, &key[i + 1..]);
    let b = key.as_bytes();
    let first_pair = (5..key.len() - 1).find(|&i| b[i] != b[i + 1] && b[i] != b'-' && b[i + 1] != b'-').unwrap();
    vec![
        at(7, &other(key.as_bytes()[7]).to_string()), // a substitution in a random group
        at(key.len() - 1, &other(key.as_bytes()[key.len() - 1]).to_string()), // in the check group
        at(1, "B"),                                   // in the prefix
        swap(first_pair),                             // a transposition
        format!("{}{}", &key[..8], &key[9..]),        // a deleted symbol
        at(8, "U"),                                   // a symbol outside the alphabet
        at(12, "-"),                                  // a dash typed for a symbol
    ]
}

/// `S1` and `S2` of the check group of a Crockford key, written again from the guide.
fn check_sums(text: &str) -> (u32, u32) {
    let p = 37;
    let (mut s1, mut s2) = (0, 0);
    for (i, byte) in text.bytes().enumerate() {
        let v = match CROCKFORD.bytes().position(|s| s == byte) {
            Some(index) => index as u32,
            None if byte == b'-' => 32,
            None => 33,
        };
        s1 = (s1 + v + 1) % p;
        s2 = (s2 + (1 + i as u32 % (p - 1)) * (v + 1)) % p;
    }
    (s1, s2)
}

/// The check group of a default-alphabet key, written again from the guide.
fn check_group_from_the_guide(text: &str, length: usize) -> String {
    let (s1, s2) = check_sums(text);
    let symbol = |n: u32| CROCKFORD.as_bytes()[n as usize] as char;
    let x = s1 * 37 + s2;
    let mut group: String = [x / 1024, x / 32 % 32, x % 32].into_iter().map(symbol).collect();
    group.extend(Sha256::digest(text.as_bytes()).iter().take(length - 3).map(|&h| symbol(u32::from(h) % 32)));
    group
}

fn committed() -> Value {
    let text = std::fs::read_to_string(VECTOR).unwrap_or_else(|e| panic!("cannot read {VECTOR}: {e}"));
    serde_json::from_str(&text).expect("the vector is JSON")
}

fn str_of<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value.pointer(pointer).and_then(Value::as_str).unwrap_or_else(|| panic!("the vector has no string at {pointer}"))
}

#[test]
fn the_committed_vector_is_current() {
    let fresh = build();
    if std::env::var_os("KEYWARD_UPDATE_VECTORS").is_some() {
        std::fs::write(VECTOR, serde_json::to_string_pretty(&fresh).unwrap() + "\n").unwrap();
        return;
    }
    // Compared as JSON values: the order of object keys is serde_json's business.
    let on_disk = std::fs::read_to_string(VECTOR).ok().and_then(|text| serde_json::from_str::<Value>(&text).ok());
    assert!(
        on_disk.as_ref() == Some(&fresh),
        "docs/examples/vector.json differs from what the code makes now; after a deliberate change run \
         `KEYWARD_UPDATE_VECTORS=1 cargo test -p keyward-core --test vectors` and re-run docs/examples/verify_offline.py"
    );
}

#[test]
fn the_committed_vector_verifies() {
    let vector = committed();
    let ring = KeyRing::from_public_keys_json(vector["public_keys"].to_string().as_bytes()).unwrap();

    let answer = &vector["answer"];
    let (method, path, nonce, body) =
        (str_of(answer, "/method"), str_of(answer, "/path"), str_of(answer, "/nonce"), str_of(answer, "/body"));
    let status = answer["status"].as_u64().unwrap() as u16;
    let signed = String::from_utf8(signed_message(method, path, status, nonce, body.as_bytes())).unwrap();
    assert_eq!(signed, str_of(answer, "/signed_message"));
    let header = str_of(answer, "/header");
    assert_eq!(verify_answer(&ring, header, method, path, status, nonce, body.as_bytes()), Ok(()));
    let altered = body.replacen("true", "false", 1);
    assert_eq!(
        verify_answer(&ring, header, method, path, status, nonce, altered.as_bytes()),
        Err(SignatureError::Mismatch)
    );

    let offline = &vector["offline_file"];
    let file = str_of(offline, "/file");
    let now = DateTime::from_timestamp(offline["now"].as_i64().unwrap(), 0).unwrap();
    let fingerprint = str_of(offline, "/fingerprint");
    let claims = verify_file(file.as_bytes(), &ring, now, Some(fingerprint)).unwrap();
    assert_eq!(serde_json::to_value(&claims).unwrap(), offline["claims"]);
    assert_eq!(verify_file(file.as_bytes(), &ring, now, Some("device-2")), Err(OfflineError::FingerprintMismatch));
    // The payload is base64url of the claims' JSON, and the signature covers the payload's text.
    let parsed: OfflineFile = serde_json::from_str(file).unwrap();
    let decoded: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parsed.payload).unwrap()).unwrap();
    assert_eq!(decoded, offline["claims"]);

    let keys = &vector["chunked_keys"];
    let format: KeyFormat = serde_json::from_value(keys["format"].clone()).unwrap();
    let list =
        |name: &str| keys[name].as_array().unwrap().iter().map(|k| k.as_str().unwrap().to_owned()).collect::<Vec<_>>();
    for key in list("valid").iter().chain(&list("valid_when_normalized")) {
        assert!(format.looks_valid(key) && key_looks_valid(key), "{key}");
    }
    for key in list("mistyped") {
        assert!(!format.looks_valid(&key) && !key_looks_valid(&key), "{key}");
    }
    let worked = &keys["worked_example"];
    let (s1, s2) = check_sums(str_of(worked, "/text"));
    assert_eq!((json!(s1), json!(s2)), (worked["s1"].clone(), worked["s2"].clone()));
}

#[test]
fn the_check_group_is_what_the_guide_says() {
    let mut rng = StdRng::seed_from_u64(1);
    for (prefix, groups, group_length) in [(Some("ACME"), 4, 5), (None, 4, 5), (Some("Cloud9"), 2, 3), (None, 16, 16)] {
        let format = KeyFormat::Chunked { prefix: prefix.map(str::to_owned), groups, group_length, alphabet: None };
        for _ in 0..200 {
            let key = format.generate(&mut rng);
            let cut = key.len() - group_length as usize - 1;
            let text = keyward_core::key::normalize_crockford(&key[..cut]);
            assert_eq!(check_group_from_the_guide(&text, group_length as usize), key[cut + 1..], "{key}");
        }
    }
}
