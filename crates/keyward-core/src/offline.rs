//! Offline license files: `{"payload": b64url(claims JSON), "sig": b64url(Ed25519(payload string)),
//! "alg": "ed25519", "kid": …}`, checkable with the public key and no network.

use crate::signature::{clip, position, KeyRing, Signer, ALGORITHM};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use ed25519_dalek::{Signature, Signer as _};
use serde::{Deserialize, Serialize};

/// The largest file a verifier reads; anything bigger is refused before parsing.
pub const MAX_FILE_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OfflineFile {
    pub payload: String,
    pub sig: String,
    pub alg: String,
    pub kid: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OfflineClaims {
    pub license_id: String,
    pub key: String,
    pub product_id: String,
    pub customer_email: Option<String>,
    pub status: String,
    #[schema(value_type = Object)]
    pub feature_flags: serde_json::Value,
    pub license_expires_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// Issued at, unix seconds.
    pub iat: i64,
    /// The file's own expiry, unix seconds.
    pub exp: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OfflineError {
    #[error("the file is malformed: {0}")]
    Malformed(String),
    #[error("the file is larger than {MAX_FILE_BYTES} bytes")]
    TooLarge,
    #[error("unsupported algorithm `{0}`")]
    UnsupportedAlgorithm(String),
    #[error("no public key is known for kid `{0}`")]
    UnknownKey(String),
    #[error("the signature does not match")]
    BadSignature,
    #[error("the file expired at {0}")]
    Expired(DateTime<Utc>),
    #[error("the file is bound to another device")]
    FingerprintMismatch,
    #[error("the clock runs backwards: now is before {0}, a time already seen")]
    ClockRolledBack(DateTime<Utc>),
}

impl OfflineFile {
    pub fn sign(claims: &OfflineClaims, signer: &Signer) -> Self {
        let json = serde_json::to_vec(claims).expect("claims are strings, numbers, times and a JSON value");
        let payload = URL_SAFE_NO_PAD.encode(json);
        let signature = signer.key.sign(payload.as_bytes());
        OfflineFile {
            sig: URL_SAFE_NO_PAD.encode(signature.to_bytes()),
            payload,
            alg: ALGORITHM.to_owned(),
            kid: signer.kid.clone(),
        }
    }
}

/// Parses and checks a file: size, shape, alg, kid, signature, expiry at `now`, and the
/// fingerprint when `fingerprint` is given. Clock rollback is the SDK's (it keeps state).
///
/// A file bound to a fingerprint is accepted when the caller gives none, and an unbound file is
/// accepted whatever the caller gives: only two different fingerprints are a mismatch.
pub fn verify_file(
    bytes: &[u8],
    ring: &KeyRing,
    now: DateTime<Utc>,
    fingerprint: Option<&str>,
) -> Result<OfflineClaims, OfflineError> {
    let malformed = |why: String| OfflineError::Malformed(why);
    if bytes.len() > MAX_FILE_BYTES {
        return Err(OfflineError::TooLarge);
    }
    let text = std::str::from_utf8(bytes).map_err(|_| malformed("not UTF-8 text".into()))?;
    let file: OfflineFile = serde_json::from_str(text).map_err(|e| {
        malformed(match e.classify() {
            serde_json::error::Category::Data => {
                "expected an object with `payload`, `sig`, `alg` and `kid` strings".into()
            }
            _ => format!("not JSON ({})", position(&e)),
        })
    })?;
    if file.alg != ALGORITHM {
        return Err(OfflineError::UnsupportedAlgorithm(clip(&file.alg)));
    }
    let key = ring.keys.get(&file.kid).ok_or_else(|| OfflineError::UnknownKey(clip(&file.kid)))?;
    let sig =
        URL_SAFE_NO_PAD.decode(&file.sig).map_err(|_| malformed("`sig` is not base64url without padding".into()))?;
    let sig: [u8; 64] = sig.try_into().map_err(|_| OfflineError::BadSignature)?;
    key.verify_strict(file.payload.as_bytes(), &Signature::from_bytes(&sig)).map_err(|_| OfflineError::BadSignature)?;
    let json = URL_SAFE_NO_PAD
        .decode(&file.payload)
        .map_err(|_| malformed("`payload` is not base64url without padding".into()))?;
    let claims: OfflineClaims = serde_json::from_slice(&json)
        .map_err(|e| malformed(format!("the claims are not a license ({})", claims_reason(&e))))?;
    if claims.exp <= now.timestamp() {
        return Err(OfflineError::Expired(DateTime::from_timestamp(claims.exp, 0).unwrap_or(DateTime::<Utc>::MIN_UTC)));
    }
    if let (Some(wanted), Some(bound)) = (fingerprint, claims.fingerprint.as_deref()) {
        if wanted != bound {
            return Err(OfflineError::FingerprintMismatch);
        }
    }
    Ok(claims)
}

/// A missing field is named; other errors give their place only (a value may be a license key).
fn claims_reason(error: &serde_json::Error) -> String {
    let message = error.to_string();
    match message.split_once(" at line ") {
        Some((reason, _)) if reason.starts_with("missing field") || reason.starts_with("duplicate field") => {
            reason.into()
        }
        _ => position(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn signer() -> Signer {
        Signer::from_bytes(&[9; 32])
    }

    fn claims(fingerprint: Option<&str>) -> OfflineClaims {
        OfflineClaims {
            license_id: "lic_01HZX".into(),
            key: "ACME-7K3QX-9PZ2M-4RT8B-XQ2TZ".into(),
            product_id: "prod_01HZX".into(),
            customer_email: Some("ada@example.com".into()),
            status: "active".into(),
            feature_flags: serde_json::json!({"pro": true, "seats": 5}),
            license_expires_at: Some(Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap()),
            fingerprint: fingerprint.map(str::to_owned),
            iat: 1_767_225_600,
            exp: 1_767_225_600 + 86_400,
        }
    }

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(seconds, 0).unwrap()
    }

    fn file_bytes(claims: &OfflineClaims, signer: &Signer) -> Vec<u8> {
        serde_json::to_vec(&OfflineFile::sign(claims, signer)).unwrap()
    }

    const NOW: i64 = 1_767_225_600 + 3_600;

    #[test]
    fn a_signed_file_verifies_and_gives_back_its_claims() {
        let s = signer();
        let bytes = file_bytes(&claims(Some("device-1")), &s);
        assert_eq!(verify_file(&bytes, &s.key_ring(), at(NOW), Some("device-1")), Ok(claims(Some("device-1"))));
        // The caller gives no fingerprint: a bound file is still good.
        assert!(verify_file(&bytes, &s.key_ring(), at(NOW), None).is_ok());
        // An unbound file is good on any device.
        let unbound = file_bytes(&claims(None), &s);
        assert!(verify_file(&unbound, &s.key_ring(), at(NOW), Some("device-2")).is_ok());
        let json: serde_json::Value = serde_json::from_slice(&unbound).unwrap();
        let payload = URL_SAFE_NO_PAD.decode(json["payload"].as_str().unwrap()).unwrap();
        assert!(!String::from_utf8(payload).unwrap().contains("fingerprint"), "an unbound file names no fingerprint");
    }

    #[test]
    fn the_signature_covers_the_payload_text() {
        let s = signer();
        let file = OfflineFile::sign(&claims(None), &s);
        let sig: [u8; 64] = URL_SAFE_NO_PAD.decode(&file.sig).unwrap().try_into().unwrap();
        s.verifying_key().verify_strict(file.payload.as_bytes(), &Signature::from_bytes(&sig)).unwrap();
        assert_eq!((file.alg.as_str(), file.kid.as_str()), ("ed25519", s.kid.as_str()));
    }

    #[test]
    fn expiry_and_fingerprint_are_checked() {
        let s = signer();
        let bytes = file_bytes(&claims(Some("device-1")), &s);
        let exp = claims(None).exp;
        assert_eq!(verify_file(&bytes, &s.key_ring(), at(exp), None), Err(OfflineError::Expired(at(exp))));
        assert!(verify_file(&bytes, &s.key_ring(), at(exp - 1), None).is_ok());
        assert_eq!(
            verify_file(&bytes, &s.key_ring(), at(NOW), Some("device-2")),
            Err(OfflineError::FingerprintMismatch)
        );
        let mut ancient = claims(None);
        ancient.exp = i64::MIN;
        let ancient = file_bytes(&ancient, &s);
        assert_eq!(
            verify_file(&ancient, &s.key_ring(), at(NOW), None),
            Err(OfflineError::Expired(DateTime::<Utc>::MIN_UTC))
        );
    }

    #[test]
    fn bad_files_are_refused_with_a_reason() {
        let s = signer();
        let ring = s.key_ring();
        let good = OfflineFile::sign(&claims(None), &s);
        let check = |file: &serde_json::Value| verify_file(file.to_string().as_bytes(), &ring, at(NOW), None);
        let with = |field: &str, value: serde_json::Value| {
            let mut file = serde_json::to_value(&good).unwrap();
            file[field] = value;
            file
        };
        let malformed = |why: &str| Err(OfflineError::Malformed(why.into()));

        assert_eq!(verify_file(&vec![b' '; MAX_FILE_BYTES + 1], &ring, at(NOW), None), Err(OfflineError::TooLarge));
        assert_eq!(verify_file(b"\xff{}", &ring, at(NOW), None), malformed("not UTF-8 text"));
        assert_eq!(verify_file(b"{\"payload\":", &ring, at(NOW), None), malformed("not JSON (line 1, column 11)"));
        assert_eq!(
            verify_file(b"[1]", &ring, at(NOW), None),
            malformed("expected an object with `payload`, `sig`, `alg` and `kid` strings")
        );
        assert_eq!(
            check(&with("sig", 5.into())),
            malformed("expected an object with `payload`, `sig`, `alg` and `kid` strings")
        );
        assert_eq!(check(&with("alg", "rs256".into())), Err(OfflineError::UnsupportedAlgorithm("rs256".into())));
        assert_eq!(check(&with("kid", "other".into())), Err(OfflineError::UnknownKey("other".into())));
        assert_eq!(check(&with("sig", "not base64!".into())), malformed("`sig` is not base64url without padding"));
        assert_eq!(
            check(&with("sig", format!("{}==", good.sig).into())),
            malformed("`sig` is not base64url without padding")
        );
        assert_eq!(check(&with("sig", URL_SAFE_NO_PAD.encode([1; 63]).into())), Err(OfflineError::BadSignature));
        assert_eq!(check(&with("sig", URL_SAFE_NO_PAD.encode([1; 64]).into())), Err(OfflineError::BadSignature));

        // Signed, but not claims: only a broken server makes these.
        let signed_payload = |payload: &str| {
            let sig = URL_SAFE_NO_PAD.encode(s.key.sign(payload.as_bytes()).to_bytes());
            serde_json::json!({"payload": payload, "sig": sig, "alg": "ed25519", "kid": s.kid})
        };
        assert_eq!(check(&signed_payload("a+b")), malformed("`payload` is not base64url without padding"));
        let missing_exp = URL_SAFE_NO_PAD.encode(br#"{"license_id":"l","key":"SECRET-KEY-TEXT"}"#);
        let reason = check(&signed_payload(&missing_exp)).unwrap_err().to_string();
        assert_eq!(reason, "the file is malformed: the claims are not a license (missing field `product_id`)");
        let wrong_type = URL_SAFE_NO_PAD.encode(br#"{"license_id":5,"key":"SECRET-KEY-TEXT"}"#);
        let reason = check(&signed_payload(&wrong_type)).unwrap_err().to_string();
        assert!(reason.contains("line 1, column") && !reason.contains("SECRET"), "{reason}");
    }

    #[test]
    fn files_signed_with_a_retired_key_still_verify() {
        let (old, new) = (signer(), Signer::generate());
        let mut ring = new.key_ring();
        ring.insert(old.kid.clone(), old.verifying_key());
        for s in [&old, &new] {
            assert!(verify_file(&file_bytes(&claims(None), s), &ring, at(NOW), None).is_ok());
        }
    }

    proptest! {
        #[test]
        fn sign_then_verify(
            key in "[ -~]{1,40}",
            email in proptest::option::of("[a-z]{1,10}@[a-z]{1,10}\\.com"),
            fingerprint in proptest::option::of("\\PC{1,40}"),
            flags in proptest::collection::btree_map("[a-z]{1,8}", any::<i32>(), 0..5),
            iat in 0i64..4_000_000_000,
            lifetime in 1i64..10_000_000,
        ) {
            let s = Signer::generate();
            let mut c = claims(fingerprint.as_deref());
            c.key = key;
            c.customer_email = email;
            c.feature_flags = serde_json::to_value(flags).unwrap();
            c.iat = iat;
            c.exp = iat + lifetime;
            let bytes = file_bytes(&c, &s);
            prop_assert_eq!(verify_file(&bytes, &s.key_ring(), at(iat), fingerprint.as_deref()), Ok(c.clone()));
            prop_assert_eq!(verify_file(&bytes, &s.key_ring(), at(c.exp), None), Err(OfflineError::Expired(at(c.exp))));
        }

        #[test]
        fn any_changed_character_of_payload_or_sig_is_refused(at_char: prop::sample::Index, field in 0usize..2, replacement in "[A-Za-z0-9_\\-+/=. ]") {
            let s = signer();
            let mut file = OfflineFile::sign(&claims(Some("device-1")), &s);
            let text = if field == 0 { &mut file.payload } else { &mut file.sig };
            let i = at_char.index(text.len());
            if text[i..].starts_with(replacement.as_str()) {
                return Ok(());
            }
            text.replace_range(i..i + 1, &replacement);
            let result = verify_file(&serde_json::to_vec(&file).unwrap(), &s.key_ring(), at(NOW), None);
            prop_assert!(
                matches!(result, Err(OfflineError::BadSignature | OfflineError::Malformed(_))),
                "{:?}", result
            );
        }

        #[test]
        fn any_changed_byte_of_the_file_is_refused(at_byte: prop::sample::Index, flip in 1u8..=255) {
            let s = signer();
            let mut bytes = file_bytes(&claims(None), &s);
            let i = at_byte.index(bytes.len());
            bytes[i] ^= flip;
            prop_assert!(verify_file(&bytes, &s.key_ring(), at(NOW), None).is_err());
        }

        #[test]
        fn a_file_from_another_key_is_refused(kid_too in any::<bool>()) {
            let (ours, stranger) = (signer(), Signer::generate());
            let mut file = OfflineFile::sign(&claims(None), &stranger);
            if kid_too {
                file.kid = ours.kid.clone();
            }
            let result = verify_file(&serde_json::to_vec(&file).unwrap(), &ours.key_ring(), at(NOW), None);
            let expected = if kid_too { OfflineError::BadSignature } else { OfflineError::UnknownKey(stranger.kid.clone()) };
            prop_assert_eq!(result, Err(expected));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = verify_file(&bytes, &signer().key_ring(), at(NOW), Some("fp"));
        }

        #[test]
        fn arbitrary_signed_payloads_never_panic(json in "\\PC{0,200}") {
            // Past the signature: whatever a payload decodes to, the claims parser must cope.
            let s = signer();
            let payload = URL_SAFE_NO_PAD.encode(json.as_bytes());
            let sig = URL_SAFE_NO_PAD.encode(s.key.sign(payload.as_bytes()).to_bytes());
            let file = serde_json::json!({"payload": payload, "sig": sig, "alg": "ed25519", "kid": s.kid});
            let _ = verify_file(file.to_string().as_bytes(), &s.key_ring(), at(NOW), Some("fp"));
        }
    }
}
