//! The license API for the vendor's app: validate, activate, deactivate, offline file, each
//! with a fresh nonce and a signature check that no forged or replayed answer passes.

use crate::client::{new_nonce, read_limited, Client, MAX_LICENSE_ANSWER_BYTES};
use crate::error::{Error, Result};
use bytes::Bytes;
use keyward_core::api::{
    ActivateAnswer, ActivateRequest, DeactivateAnswer, DeactivateRequest, OfflineFileRequest, ValidateAnswer,
    ValidateRequest,
};
use keyward_core::offline::OfflineFile;
use keyward_core::signature::{verify_answer, KeyRing, HEADER};
use keyward_core::ValidationCode;
use reqwest::header::HeaderMap;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// A successful activation: `created` is true for a new device (`201`), false when this
/// fingerprint was already activated (`200`).
#[derive(Debug, Clone, PartialEq)]
pub struct Activation {
    pub created: bool,
    pub answer: ActivateAnswer,
}

/// A license API answer whose signature has been checked.
struct SignedAnswer {
    status: u16,
    headers: HeaderMap,
    body: Bytes,
}

impl Client {
    /// Is this key good, here, now? `Ok` for every known key, valid or not (look at `valid` and
    /// `code`), and for an unknown one (`valid: false`, `LICENSE_NOT_FOUND`). The request's
    /// `nonce` is always replaced by a fresh one.
    pub async fn validate(&self, mut request: ValidateRequest) -> Result<ValidateAnswer> {
        let nonce = new_nonce();
        request.nonce = Some(nonce.clone());
        let answer = self.license_call("/validate", &request, &nonce).await?;
        let known = answer.status == 200;
        let unknown = answer.status == 404;
        if !known && !unknown {
            return Err(Error::from_answer(answer.status, &answer.headers, &answer.body));
        }
        let decoded = match decode::<ValidateAnswer>(&answer.body, "validate") {
            Ok(decoded) => decoded,
            // A `404` that is not the unknown-key answer (an unknown environment, …) is an error.
            Err(_) if unknown => return Err(Error::from_answer(answer.status, &answer.headers, &answer.body)),
            Err(err) => return Err(err),
        };
        check_echo(&nonce, decoded.nonce.as_deref())?;
        if unknown && (decoded.valid || decoded.code != ValidationCode::LicenseNotFound) {
            return Err(Error::Decode("a 404 answer that is not LICENSE_NOT_FOUND".to_owned()));
        }
        Ok(decoded)
    }

    /// Adds this device to the license. Repeating it for the same fingerprint is harmless
    /// (`created: false`). A refusal (`403` state, `409 ACTIVATION_LIMIT_EXCEEDED`, `404`, `422`)
    /// is `Error::Api`, `429` is `Error::RateLimited`.
    pub async fn activate(&self, mut request: ActivateRequest) -> Result<Activation> {
        let nonce = new_nonce();
        request.nonce = Some(nonce.clone());
        let answer = self.license_call("/activate", &request, &nonce).await?;
        let created = match answer.status {
            201 => true,
            200 => false,
            status => return Err(Error::from_answer(status, &answer.headers, &answer.body)),
        };
        let decoded = decode::<ActivateAnswer>(&answer.body, "activate")?;
        check_echo(&nonce, decoded.nonce.as_deref())?;
        Ok(Activation { created, answer: decoded })
    }

    /// Frees this device's slot.
    pub async fn deactivate(&self, key: &str, fingerprint: &str) -> Result<DeactivateAnswer> {
        let nonce = new_nonce();
        let request =
            DeactivateRequest { key: key.to_owned(), fingerprint: fingerprint.to_owned(), nonce: Some(nonce.clone()) };
        let answer = self.license_call("/deactivate", &request, &nonce).await?;
        if answer.status != 200 {
            return Err(Error::from_answer(answer.status, &answer.headers, &answer.body));
        }
        let decoded = decode::<DeactivateAnswer>(&answer.body, "deactivate")?;
        check_echo(&nonce, decoded.nonce.as_deref())?;
        Ok(decoded)
    }

    /// A signed offline license file for an activated device. Save it with
    /// `serde_json::to_vec(&file)` and check it later with `OfflineVerifier`. The answer may be the
    /// file itself or an object holding it under `file`.
    pub async fn offline_file(&self, key: &str, fingerprint: Option<&str>) -> Result<OfflineFile> {
        let nonce = new_nonce();
        let request = OfflineFileRequest {
            key: key.to_owned(),
            fingerprint: fingerprint.map(str::to_owned),
            nonce: Some(nonce.clone()),
        };
        let answer = self.license_call("/offline-file", &request, &nonce).await?;
        if !(200..300).contains(&answer.status) {
            return Err(Error::from_answer(answer.status, &answer.headers, &answer.body));
        }
        let mut decoded = decode::<serde_json::Value>(&answer.body, "offline file")?;
        check_echo(&nonce, decoded.get("nonce").and_then(|n| n.as_str()))?;
        let file = if decoded.get("payload").is_some() {
            decoded
        } else {
            decoded.get_mut("file").map(serde_json::Value::take).unwrap_or_default()
        };
        serde_json::from_value(file).map_err(|err| Error::Decode(format!("the offline file answer: {err}")))
    }

    /// Sends a license API request (no token: the key is the credential) and checks the answer's signature.
    async fn license_call<B: Serialize>(&self, endpoint: &str, body: &B, nonce: &str) -> Result<SignedAnswer> {
        let path = self.api_path(endpoint);
        let response = self.http.post(format!("{}{}", self.base_url(), path)).json(body).send().await?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = read_limited(response, MAX_LICENSE_ANSWER_BYTES).await?;
        if self.signatures_required() {
            let ring = self.key_ring().ok_or_else(|| {
                Error::Config("signatures are required but no key ring is set: call with_key_ring".to_owned())
            })?;
            check_signature(ring, "POST", &path, status, nonce, &headers, &body)?;
        }
        Ok(SignedAnswer { status, headers, body })
    }
}

/// Checks an answer's `Keyward-Signature` header: a missing or unreadable header is `Forged`,
/// a bad, unknown-key or mismatching one is `Signature`.
pub(crate) fn check_signature(
    ring: &KeyRing,
    method: &str,
    path: &str,
    status: u16,
    nonce: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<()> {
    let mut values = headers.get_all(HEADER).iter();
    let header =
        values.next().ok_or_else(|| Error::Forged(format!("the {status} answer carries no {HEADER} header")))?;
    if values.next().is_some() {
        return Err(Error::Forged(format!("the {status} answer carries more than one {HEADER} header")));
    }
    let header = header.to_str().map_err(|_| Error::Forged(format!("the {HEADER} header is not text")))?;
    verify_answer(ring, header, method, path, status, nonce, body)?;
    Ok(())
}

/// An answer that echoes a nonce must echo ours; the signature already binds ours, this also
/// catches a replay when signatures are not checked.
fn check_echo(sent: &str, echoed: Option<&str>) -> Result<()> {
    match echoed {
        Some(echoed) if echoed != sent => {
            Err(Error::Forged("the answer echoes another request's nonce (a replayed answer)".to_owned()))
        }
        _ => Ok(()),
    }
}

fn decode<T: DeserializeOwned>(body: &[u8], what: &str) -> Result<T> {
    serde_json::from_slice(body).map_err(|err| Error::Decode(format!("the {what} answer: {err}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyward_core::signature::{SignatureError, Signer};
    use reqwest::header::HeaderValue;

    const PATH: &str = "/env/staging/api/v1/validate";
    const BODY: &[u8] = br#"{"valid":true,"code":"VALID","nonce":"n-1"}"#;

    fn ring_of(signer: &Signer) -> KeyRing {
        let mut ring = KeyRing::default();
        ring.insert(signer.kid.clone(), signer.key.verifying_key());
        ring
    }

    fn signed(signer: &Signer, path: &str, status: u16, nonce: &str, body: &[u8]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let value = signer.sign_answer("POST", path, status, nonce, body);
        headers.insert(HEADER, HeaderValue::from_str(&value).expect("a header value"));
        headers
    }

    #[test]
    fn a_correctly_signed_answer_passes() {
        let signer = Signer::generate();
        let headers = signed(&signer, PATH, 200, "n-1", BODY);
        check_signature(&ring_of(&signer), "POST", PATH, 200, "n-1", &headers, BODY).expect("valid signature");
    }

    #[test]
    fn a_tampered_body_is_refused() {
        let signer = Signer::generate();
        let headers = signed(&signer, PATH, 200, "n-1", BODY);
        let tampered = br#"{"valid":true,"code":"VALID","nonce":"n-2"}"#;
        let err = check_signature(&ring_of(&signer), "POST", PATH, 200, "n-1", &headers, tampered).unwrap_err();
        assert!(matches!(err, Error::Signature(SignatureError::Mismatch)), "{err:?}");
    }

    #[test]
    fn an_answer_to_another_nonce_is_refused() {
        let signer = Signer::generate();
        let headers = signed(&signer, PATH, 200, "old-nonce", BODY);
        let err = check_signature(&ring_of(&signer), "POST", PATH, 200, "n-1", &headers, BODY).unwrap_err();
        assert!(matches!(err, Error::Signature(SignatureError::Mismatch)), "{err:?}");
    }

    #[test]
    fn an_answer_signed_for_another_status_or_path_is_refused() {
        let signer = Signer::generate();
        let ring = ring_of(&signer);
        let headers = signed(&signer, PATH, 404, "n-1", BODY);
        assert!(check_signature(&ring, "POST", PATH, 200, "n-1", &headers, BODY).is_err());
        let headers = signed(&signer, "/api/v1/validate", 200, "n-1", BODY);
        assert!(check_signature(&ring, "POST", PATH, 200, "n-1", &headers, BODY).is_err());
    }

    #[test]
    fn a_key_outside_the_ring_is_refused() {
        let trusted = Signer::generate();
        let mut stranger = Signer::generate();
        stranger.kid = format!("{}-stranger", trusted.kid);
        let headers = signed(&stranger, PATH, 200, "n-1", BODY);
        let err = check_signature(&ring_of(&trusted), "POST", PATH, 200, "n-1", &headers, BODY).unwrap_err();
        assert!(matches!(err, Error::Signature(SignatureError::UnknownKey(_))), "{err:?}");
    }

    #[test]
    fn a_key_outside_the_ring_under_a_known_kid_is_refused() {
        let trusted = Signer::generate();
        let mut impostor = Signer::generate();
        impostor.kid = trusted.kid.clone();
        let headers = signed(&impostor, PATH, 200, "n-1", BODY);
        let err = check_signature(&ring_of(&trusted), "POST", PATH, 200, "n-1", &headers, BODY).unwrap_err();
        assert!(matches!(err, Error::Signature(SignatureError::Mismatch)), "{err:?}");
    }

    #[test]
    fn a_missing_or_doubled_header_is_forged() {
        let signer = Signer::generate();
        let ring = ring_of(&signer);
        let err = check_signature(&ring, "POST", PATH, 200, "n-1", &HeaderMap::new(), BODY).unwrap_err();
        assert!(matches!(err, Error::Forged(_)), "{err:?}");

        let mut headers = signed(&signer, PATH, 200, "n-1", BODY);
        let stranger = Signer::generate();
        headers.append(HEADER, HeaderValue::from_str(&stranger.sign_answer("POST", PATH, 200, "n-1", BODY)).unwrap());
        let err = check_signature(&ring, "POST", PATH, 200, "n-1", &headers, BODY).unwrap_err();
        assert!(matches!(err, Error::Forged(_)), "{err:?}");
    }

    #[test]
    fn a_garbled_header_is_refused() {
        let signer = Signer::generate();
        let mut headers = HeaderMap::new();
        headers.insert(HEADER, HeaderValue::from_static("kid=, alg=rsa, sig=???"));
        let err = check_signature(&ring_of(&signer), "POST", PATH, 200, "n-1", &headers, BODY).unwrap_err();
        assert!(matches!(err, Error::Signature(_)), "{err:?}");
    }

    #[test]
    fn an_echoed_nonce_must_be_ours() {
        check_echo("mine", Some("mine")).expect("our own nonce");
        check_echo("mine", None).expect("no echo: the signature binds the nonce");
        assert!(matches!(check_echo("mine", Some("theirs")), Err(Error::Forged(_))));
    }
}
