//! Signed answers of the license API: `Keyward-Signature: kid=<kid>, alg=ed25519, sig=<base64>`
//! over `<METHOD> <path>\n<status>\n<nonce>\n` followed by the raw body.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use rand::rngs::OsRng;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt;

pub const HEADER: &str = "Keyward-Signature";

/// The only signature algorithm keyward uses.
pub const ALGORITHM: &str = "ed25519";

/// A header value longer than this is refused before it is parsed (a real one is about 130 bytes).
pub const MAX_HEADER_BYTES: usize = 512;

/// The longest kid a header may carry.
pub const MAX_KID_CHARS: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the signature header is malformed: {0}")]
    Malformed(String),
    #[error("unsupported signature algorithm `{0}`")]
    UnsupportedAlgorithm(String),
    #[error("no public key is known for kid `{0}`")]
    UnknownKey(String),
    #[error("the signature does not match")]
    Mismatch,
}

/// A signing key with its id.
#[derive(Clone)]
pub struct Signer {
    pub kid: String,
    pub key: SigningKey,
}

/// Public keys by kid, current and retired.
#[derive(Debug, Clone, Default)]
pub struct KeyRing {
    pub keys: HashMap<String, VerifyingKey>,
}

/// A parsed `Keyward-Signature` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeader {
    pub kid: String,
    pub signature: Signature,
}

/// One entry of `GET /public-keys`, once its `alg` says it is ours.
#[derive(Deserialize)]
struct PublicKeyEntry {
    kid: String,
    public_key: String,
    #[serde(default)]
    status: Option<String>,
}

impl KeyRing {
    pub fn insert(&mut self, kid: String, key: VerifyingKey) {
        self.keys.insert(kid, key);
    }

    /// A ring from `GET /public-keys`' `{keys: [{kid, alg, public_key}]}`.
    ///
    /// Keys of another `alg` are left out (a newer server may list them); anything else that is
    /// not a well-formed ed25519 key (bad base64, wrong length, a weak key, an unknown `status`,
    /// a repeated kid) makes the whole document an error. The ring may come out empty.
    pub fn from_public_keys_json(json: &[u8]) -> Result<Self, SignatureError> {
        let malformed = |why: String| SignatureError::Malformed(format!("public keys: {why}"));
        let document: serde_json::Value =
            serde_json::from_slice(json).map_err(|e| malformed(format!("not JSON ({})", position(&e))))?;
        let entries = document
            .get("keys")
            .and_then(serde_json::Value::as_array)
            .ok_or_else(|| malformed("expected an object with a `keys` array".into()))?;
        let mut ring = KeyRing::default();
        for (n, entry) in entries.iter().enumerate() {
            let which = n + 1;
            let alg = entry
                .get("alg")
                .and_then(serde_json::Value::as_str)
                .ok_or_else(|| malformed(format!("key {which} has no `alg` string")))?;
            if alg != ALGORITHM {
                continue;
            }
            let entry = PublicKeyEntry::deserialize(entry)
                .map_err(|_| malformed(format!("key {which} needs `kid` and `public_key` strings")))?;
            if let Some(status) = entry.status.as_deref() {
                if status != "current" && status != "retired" {
                    return Err(malformed(format!("key {which} has an unknown status `{}`", clip(status))));
                }
            }
            let key = parse_public_key(&entry.public_key).map_err(|why| malformed(format!("key {which}: {why}")))?;
            if entry.kid.is_empty() || ring.keys.contains_key(&entry.kid) {
                return Err(malformed(format!("key {which} has an empty or repeated kid")));
            }
            ring.insert(entry.kid, key);
        }
        Ok(ring)
    }

    /// One key: base64 (standard) of the 32 raw bytes, under `kid`.
    pub fn from_base64(kid: &str, public_key: &str) -> Result<Self, SignatureError> {
        if kid.is_empty() {
            return Err(SignatureError::Malformed("the kid is empty".into()));
        }
        let key = parse_public_key(public_key).map_err(SignatureError::Malformed)?;
        let mut ring = KeyRing::default();
        ring.insert(kid.to_owned(), key);
        Ok(ring)
    }
}

/// Base64 (standard) of 32 raw bytes, a valid and not weak Ed25519 public key.
fn parse_public_key(text: &str) -> Result<VerifyingKey, String> {
    let bytes = STANDARD.decode(text.trim()).map_err(|_| "the public key is not base64".to_owned())?;
    let bytes: [u8; 32] =
        bytes.try_into().map_err(|b: Vec<u8>| format!("the public key is {} bytes, not 32", b.len()))?;
    let key = VerifyingKey::from_bytes(&bytes).map_err(|_| "the public key is not an Ed25519 point".to_owned())?;
    if key.is_weak() {
        return Err("the public key is a weak (small-order) key".into());
    }
    Ok(key)
}

/// The exact bytes that are signed.
pub fn signed_message(method: &str, path: &str, status: u16, nonce: &str, body: &[u8]) -> Vec<u8> {
    let path = path.split_once('?').map_or(path, |(before, _)| before);
    let head = format!("{} {path}\n{status:03}\n{nonce}\n", method.to_ascii_uppercase());
    let mut message = Vec::with_capacity(head.len() + body.len());
    message.extend_from_slice(head.as_bytes());
    message.extend_from_slice(body);
    message
}

/// The kid of a public key: the first 16 hex digits of the SHA-256 of its 32 raw bytes.
pub fn kid_of(key: &VerifyingKey) -> String {
    Sha256::digest(key.as_bytes()).iter().take(8).map(|b| format!("{b:02x}")).collect()
}

impl Signer {
    pub fn generate() -> Self {
        Self::from_key(SigningKey::generate(&mut OsRng))
    }

    /// The signer of a stored secret key (the 32-byte seed); its kid follows from the public key.
    pub fn from_bytes(secret: &[u8; 32]) -> Self {
        Self::from_key(SigningKey::from_bytes(secret))
    }

    fn from_key(key: SigningKey) -> Self {
        Signer { kid: kid_of(&key.verifying_key()), key }
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// Base64 (standard) of the 32 raw bytes of the public key, as `GET /public-keys` lists it.
    pub fn public_key_base64(&self) -> String {
        STANDARD.encode(self.key.verifying_key().as_bytes())
    }

    /// A ring holding this signer's public key alone.
    pub fn key_ring(&self) -> KeyRing {
        let mut ring = KeyRing::default();
        ring.insert(self.kid.clone(), self.verifying_key());
        ring
    }

    /// The `Keyward-Signature` header value for this answer.
    pub fn sign_answer(&self, method: &str, path: &str, status: u16, nonce: &str, body: &[u8]) -> String {
        let signature = self.key.sign(&signed_message(method, path, status, nonce, body));
        format!("kid={}, alg={ALGORITHM}, sig={}", self.kid, STANDARD.encode(signature.to_bytes()))
    }
}

/// Shows the kid only: the secret half never reaches a log.
impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer").field("kid", &self.kid).finish_non_exhaustive()
    }
}

/// Parses `kid=<kid>, alg=ed25519, sig=<base64>`: the three parameters once each, in any order,
/// with optional spaces or tabs around them and around `=`.
pub fn parse_header(header: &str) -> Result<SignatureHeader, SignatureError> {
    let malformed = |why: String| SignatureError::Malformed(why);
    if header.len() > MAX_HEADER_BYTES {
        return Err(malformed(format!("longer than {MAX_HEADER_BYTES} bytes")));
    }
    let optional_space = |c: char| c == ' ' || c == '\t';
    let (mut kid, mut alg, mut sig) = (None, None, None);
    for part in header.split(',') {
        let (name, value) = part
            .split_once('=')
            .ok_or_else(|| malformed("expected `name=value` parameters separated by commas".into()))?;
        let name = name.trim_matches(optional_space);
        let value = value.trim_matches(optional_space);
        let slot = match name {
            "kid" => &mut kid,
            "alg" => &mut alg,
            "sig" => &mut sig,
            other => return Err(malformed(format!("unknown parameter `{}`", clip(other)))),
        };
        if slot.is_some() {
            return Err(malformed(format!("`{name}` appears twice")));
        }
        if value.is_empty() {
            return Err(malformed(format!("`{name}` is empty")));
        }
        *slot = Some(value);
    }
    let (Some(kid), Some(alg), Some(sig)) = (kid, alg, sig) else {
        let missing =
            [("kid", kid), ("alg", alg), ("sig", sig)].iter().find(|(_, v)| v.is_none()).map_or("", |(n, _)| n);
        return Err(malformed(format!("`{missing}` is missing")));
    };
    if alg != ALGORITHM {
        return Err(SignatureError::UnsupportedAlgorithm(clip(alg)));
    }
    if kid.chars().count() > MAX_KID_CHARS || !kid.chars().all(|c| c.is_ascii_graphic()) {
        return Err(malformed(format!("`kid` must be 1 to {MAX_KID_CHARS} visible ASCII characters")));
    }
    let bytes = STANDARD.decode(sig).map_err(|_| malformed("`sig` is not base64 (standard, padded)".into()))?;
    let bytes: [u8; 64] =
        bytes.try_into().map_err(|b: Vec<u8>| malformed(format!("`sig` is {} bytes, not 64", b.len())))?;
    Ok(SignatureHeader { kid: kid.to_owned(), signature: Signature::from_bytes(&bytes) })
}

/// Checks an answer's `Keyward-Signature` header against the ring.
pub fn verify_answer(
    ring: &KeyRing,
    header: &str,
    method: &str,
    path: &str,
    status: u16,
    nonce: &str,
    body: &[u8],
) -> Result<(), SignatureError> {
    let parsed = parse_header(header)?;
    let key = ring.keys.get(&parsed.kid).ok_or_else(|| SignatureError::UnknownKey(parsed.kid.clone()))?;
    key.verify_strict(&signed_message(method, path, status, nonce, body), &parsed.signature)
        .map_err(|_| SignatureError::Mismatch)
}

/// At most 32 characters of an untrusted value, escaped, for an error message.
pub(crate) fn clip(value: &str) -> String {
    value.chars().take(32).collect::<String>().escape_debug().to_string()
}

/// Where a JSON error is, without echoing the input (it may hold a license key).
pub(crate) fn position(error: &serde_json::Error) -> String {
    format!("line {}, column {}", error.line(), error.column())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn signer() -> Signer {
        Signer::from_bytes(&[7; 32])
    }

    const BODY: &[u8] = br#"{"valid":true,"code":"VALID"}"#;

    #[test]
    fn the_signed_message_is_byte_exact() {
        let message = signed_message("post", "/api/v1/validate?x=1&y=?", 200, "n-1", BODY);
        assert_eq!(message, b"POST /api/v1/validate\n200\nn-1\n{\"valid\":true,\"code\":\"VALID\"}".to_vec());
        assert_eq!(signed_message("GET", "/api/v1/public-keys", 7, "", b""), b"GET /api/v1/public-keys\n007\n\n");
    }

    #[test]
    fn the_kid_follows_from_the_public_key() {
        let a = signer();
        assert_eq!(a.kid, Signer::from_bytes(&[7; 32]).kid);
        assert_eq!(a.kid.len(), 16);
        assert!(a.kid.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_eq!(a.kid, kid_of(&a.verifying_key()));
        let b = Signer::generate();
        assert_ne!(a.kid, b.kid);
        assert_eq!(Signer::from_bytes(b.key.as_bytes()).kid, b.kid);
        assert_eq!(format!("{a:?}"), format!("Signer {{ kid: {:?}, .. }}", a.kid));
    }

    #[test]
    fn the_header_has_the_documented_shape() {
        let header = signer().sign_answer("POST", "/api/v1/validate", 200, "n-1", BODY);
        let (head, sig) = header.split_once(", sig=").unwrap();
        assert_eq!(head, format!("kid={}, alg=ed25519", signer().kid));
        assert_eq!(sig.len(), 88);
        assert!(sig.ends_with("=="));
    }

    #[test]
    fn headers_in_any_order_and_spacing_verify() {
        let s = signer();
        let ring = s.key_ring();
        let header = s.sign_answer("POST", "/v", 200, "n", BODY);
        let parsed = parse_header(&header).unwrap();
        let sig = STANDARD.encode(parsed.signature.to_bytes());
        let kid = &s.kid;
        for variant in [
            format!("sig={sig},kid={kid},alg=ed25519"),
            format!("  alg = ed25519 ,\tsig={sig} , kid={kid}\t"),
            format!("kid={kid},alg=ed25519,sig={sig}"),
        ] {
            assert_eq!(verify_answer(&ring, &variant, "POST", "/v", 200, "n", BODY), Ok(()), "{variant}");
        }
    }

    #[test]
    fn bad_headers_are_refused_with_a_reason() {
        let s = signer();
        let ring = s.key_ring();
        let sig = STANDARD.encode([0u8; 64]);
        let kid = &s.kid;
        let malformed = |header: &str| match parse_header(header) {
            Err(SignatureError::Malformed(why)) => why,
            other => panic!("{header:?} gave {other:?}"),
        };
        assert_eq!(malformed(""), "expected `name=value` parameters separated by commas");
        assert_eq!(
            malformed(&format!("kid={kid}, alg=ed25519, sig={sig},")),
            "expected `name=value` parameters separated by commas"
        );
        assert_eq!(malformed(&format!("kid={kid}, kid={kid}, alg=ed25519, sig={sig}")), "`kid` appears twice");
        assert_eq!(malformed(&format!("kid={kid}, alg=ed25519, sig={sig}, extra=1")), "unknown parameter `extra`");
        assert_eq!(malformed(&format!("KID={kid}, alg=ed25519, sig={sig}")), "unknown parameter `KID`");
        assert_eq!(malformed(&format!("kid={kid}, alg=ed25519")), "`sig` is missing");
        assert_eq!(malformed(&format!("alg=ed25519, sig={sig}")), "`kid` is missing");
        assert_eq!(malformed(&format!("kid=, alg=ed25519, sig={sig}")), "`kid` is empty");
        assert_eq!(
            malformed(&format!("kid=a b, alg=ed25519, sig={sig}")),
            "`kid` must be 1 to 64 visible ASCII characters"
        );
        assert_eq!(
            malformed(&format!("kid={kid}, alg=ed25519, sig={}", &sig[..86])),
            "`sig` is not base64 (standard, padded)"
        );
        let url_safe = base64::engine::general_purpose::URL_SAFE.encode([0xfb; 64]);
        assert_eq!(
            malformed(&format!("kid={kid}, alg=ed25519, sig={url_safe}")),
            "`sig` is not base64 (standard, padded)"
        );
        assert_eq!(
            malformed(&format!("kid={kid}, alg=ed25519, sig={}", STANDARD.encode([1; 63]))),
            "`sig` is 63 bytes, not 64"
        );
        assert_eq!(
            malformed(&format!("kid={kid}, alg=ed25519, sig={sig}{}", " ".repeat(512))),
            "longer than 512 bytes"
        );
        assert_eq!(
            parse_header(&format!("kid={kid}, alg=rsa-sha256, sig={sig}")),
            Err(SignatureError::UnsupportedAlgorithm("rsa-sha256".into()))
        );
        assert_eq!(
            verify_answer(&ring, &format!("kid=0123, alg=ed25519, sig={sig}"), "POST", "/v", 200, "", b""),
            Err(SignatureError::UnknownKey("0123".into()))
        );
        assert_eq!(
            verify_answer(&ring, &format!("kid={kid}, alg=ed25519, sig={sig}"), "POST", "/v", 200, "", b""),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn a_key_ring_reads_the_public_keys_document() {
        let (current, retired) = (Signer::generate(), signer());
        let json = format!(
            r#"{{"keys": [
                {{"kid": "{}", "alg": "ed25519", "public_key": "{}", "status": "current", "created_at": "2026-01-01T00:00:00Z"}},
                {{"kid": "{}", "alg": "ed25519", "public_key": "{}", "status": "retired"}},
                {{"kid": "pq-1", "alg": "ml-dsa-65", "key": "…"}}
            ]}}"#,
            current.kid,
            current.public_key_base64(),
            retired.kid,
            retired.public_key_base64()
        );
        let ring = KeyRing::from_public_keys_json(json.as_bytes()).unwrap();
        assert_eq!(ring.keys.len(), 2);
        for s in [&current, &retired] {
            let header = s.sign_answer("GET", "/api/v1/public-keys", 200, "", json.as_bytes());
            assert_eq!(verify_answer(&ring, &header, "GET", "/api/v1/public-keys", 200, "", json.as_bytes()), Ok(()));
        }
        assert!(KeyRing::from_public_keys_json(br#"{"keys": []}"#).unwrap().keys.is_empty());
    }

    #[test]
    fn a_malformed_public_keys_document_is_an_error() {
        let good = signer().public_key_base64();
        let short = STANDARD.encode([1u8; 31]);
        let documents = [
            ("[]", "expected an object with a `keys` array"),
            ("{", "not JSON (line 1, column 1)"),
            (r#"{"keys": [{"kid": "a"}]}"#, "key 1 has no `alg` string"),
            (
                &format!(r#"{{"keys": [{{"kid": "a", "alg": "ed25519", "public_key": "{short}"}}]}}"#),
                "key 1: the public key is 31 bytes, not 32",
            ),
            (
                r#"{"keys": [{"kid": "a", "alg": "ed25519", "public_key": "%%%"}]}"#,
                "key 1: the public key is not base64",
            ),
            (r#"{"keys": [{"kid": "a", "alg": "ed25519"}]}"#, "key 1 needs `kid` and `public_key` strings"),
            (
                &format!(
                    r#"{{"keys": [{{"kid": "a", "alg": "ed25519", "public_key": "{good}", "status": "revoked"}}]}}"#
                ),
                "key 1 has an unknown status `revoked`",
            ),
            (
                &format!(
                    r#"{{"keys": [{{"kid": "a", "alg": "ed25519", "public_key": "{good}"}}, {{"kid": "a", "alg": "ed25519", "public_key": "{good}"}}]}}"#
                ),
                "key 2 has an empty or repeated kid",
            ),
            (
                &format!(
                    r#"{{"keys": [{{"kid": "a", "alg": "ed25519", "public_key": "{}"}}]}}"#,
                    STANDARD.encode([0u8; 32])
                ),
                "key 1: the public key is a weak (small-order) key",
            ),
        ];
        for (json, why) in documents {
            assert_eq!(
                KeyRing::from_public_keys_json(json.as_bytes()).unwrap_err(),
                SignatureError::Malformed(format!("public keys: {why}")),
                "{json}"
            );
        }
        assert!(KeyRing::from_base64("k", &short).is_err());
        assert!(KeyRing::from_base64("", &good).is_err());
        assert_eq!(KeyRing::from_base64("k", &good).unwrap().keys["k"], signer().verifying_key());
    }

    fn an_answer() -> impl Strategy<Value = (String, String, u16, String, Vec<u8>)> {
        ("[A-Za-z]{1,8}", "/[ -~]{0,40}", 100u16..=599, "[ -~]{0,24}", proptest::collection::vec(any::<u8>(), 0..200))
    }

    proptest! {
        #[test]
        fn signed_answers_verify((method, path, status, nonce, body) in an_answer()) {
            let s = signer();
            let header = s.sign_answer(&method, &path, status, &nonce, &body);
            prop_assert_eq!(verify_answer(&s.key_ring(), &header, &method, &path, status, &nonce, &body), Ok(()));
            // The verifier may see the method in another case and the query string.
            let lower = method.to_lowercase();
            let with_query = format!("{}?page=2", path.split('?').next().unwrap());
            prop_assert_eq!(verify_answer(&s.key_ring(), &header, &lower, &with_query, status, &nonce, &body), Ok(()));
        }

        #[test]
        fn any_changed_byte_is_refused(
            (method, path, status, nonce, body) in an_answer(),
            which in 0usize..5,
            at: prop::sample::Index,
            flip in 1u8..=255,
        ) {
            let s = signer();
            let ring = s.key_ring();
            let header = s.sign_answer(&method, &path, status, &nonce, &body);
            let flip_in = |text: &[u8]| -> Option<Vec<u8>> {
                if text.is_empty() { return None; }
                let mut changed = text.to_vec();
                let i = at.index(changed.len());
                changed[i] ^= flip;
                Some(changed)
            };
            let result = match which {
                0 => match flip_in(&body) {
                    Some(b) => verify_answer(&ring, &header, &method, &path, status, &nonce, &b),
                    None => verify_answer(&ring, &header, &method, &path, status, &nonce, b"x"),
                },
                1 => {
                    let changed = flip_in(nonce.as_bytes()).and_then(|n| String::from_utf8(n).ok()).unwrap_or_else(|| format!("{nonce}x"));
                    verify_answer(&ring, &header, &method, &path, status, &changed, &body)
                }
                2 => verify_answer(&ring, &header, &method, &path, status ^ (1 << (flip % 10)), &nonce, &body),
                3 => {
                    // Changed before any `?`: the query string is not signed.
                    let signed_path = path.split('?').next().unwrap();
                    let changed = flip_in(signed_path.as_bytes())
                        .and_then(|p| String::from_utf8(p).ok())
                        .filter(|p| !p.contains('?'))
                        .unwrap_or_else(|| format!("{signed_path}x"));
                    verify_answer(&ring, &header, &method, &changed, status, &nonce, &body)
                }
                _ => {
                    let sig_at = header.find("sig=").unwrap() + 4;
                    let mut changed = header.clone().into_bytes();
                    let i = sig_at + at.index(changed.len() - sig_at);
                    changed[i] ^= flip;
                    match String::from_utf8(changed) {
                        Ok(changed) => verify_answer(&ring, &changed, &method, &path, status, &nonce, &body),
                        Err(_) => Err(SignatureError::Mismatch),
                    }
                }
            };
            prop_assert!(result.is_err(), "change {} went unnoticed", which);
        }

        #[test]
        fn another_key_is_refused((method, path, status, nonce, body) in an_answer()) {
            let stranger = Signer::generate();
            let header = stranger.sign_answer(&method, &path, status, &nonce, &body);
            prop_assert_eq!(
                verify_answer(&signer().key_ring(), &header, &method, &path, status, &nonce, &body),
                Err(SignatureError::UnknownKey(stranger.kid.clone()))
            );
            // The same kid with another key is a mismatch.
            let mut forged_ring = KeyRing::default();
            forged_ring.insert(stranger.kid.clone(), signer().verifying_key());
            prop_assert_eq!(
                verify_answer(&forged_ring, &header, &method, &path, status, &nonce, &body),
                Err(SignatureError::Mismatch)
            );
        }

        #[test]
        fn the_header_parser_never_panics(header in "\\PC{0,200}") {
            let _ = parse_header(&header);
            let _ = verify_answer(&signer().key_ring(), &header, "POST", "/v", 200, "", b"");
        }

        #[test]
        fn near_miss_headers_never_panic(
            kid in "[ -~]{0,20}",
            alg in prop_oneof![Just("ed25519".to_owned()), "[ -~]{0,10}"],
            sig in "[A-Za-z0-9+/= ]{0,100}",
            separators in proptest::collection::vec(prop_oneof![Just(","), Just(", "), Just(" ,"), Just(",,"), Just("")], 2),
        ) {
            let header = format!("kid={kid}{}alg={alg}{}sig={sig}", separators[0], separators[1]);
            let _ = verify_answer(&signer().key_ring(), &header, "POST", "/v", 200, "", b"");
        }
    }

    /// Measures one sign and one verify; run with
    /// `cargo test -p keyward-core --release --lib -- --ignored --nocapture measure_ed25519`.
    /// Reports the fastest of ten batches (least disturbed by other work) and the mean.
    #[test]
    #[ignore = "a measurement, not a check"]
    fn measure_ed25519() {
        use std::time::{Duration, Instant};
        let s = signer();
        let ring = s.key_ring();
        let body = vec![b'x'; 400];
        let (batches, rounds) = (10, 2_000u32);
        let header = s.sign_answer("POST", "/api/v1/validate", 200, "n", &body);
        let (mut sign, mut verify) = (Vec::new(), Vec::new());
        for _ in 0..batches {
            let start = Instant::now();
            for i in 0..rounds {
                std::hint::black_box(s.sign_answer("POST", "/api/v1/validate", 200, &i.to_string(), &body));
            }
            sign.push(start.elapsed() / rounds);
            let start = Instant::now();
            for _ in 0..rounds {
                verify_answer(&ring, &header, "POST", "/api/v1/validate", 200, "n", &body).unwrap();
            }
            verify.push(start.elapsed() / rounds);
        }
        let report = |times: &[Duration]| {
            let mean = times.iter().sum::<Duration>() / times.len() as u32;
            format!("fastest batch {:?}/op, mean {mean:?}/op", times.iter().min().unwrap())
        };
        println!("ed25519 over a 400-byte answer: sign_answer {}", report(&sign));
        println!("ed25519 over a 400-byte answer: verify_answer {}", report(&verify));
    }
}
