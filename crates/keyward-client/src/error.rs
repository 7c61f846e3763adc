//! Everything that can go wrong in the SDK, in one enum.

use keyward_core::api::ErrorBody;
use keyward_core::offline::OfflineError;
use keyward_core::signature::SignatureError;
use reqwest::header::{HeaderMap, RETRY_AFTER};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server could not be reached, or the connection broke: the caller may fall back to offline.
    #[error("the request failed: {0}")]
    Http(#[from] reqwest::Error),
    /// The server refused the request with `{"error": {code, message, field?}}`.
    #[error("the server answered {status} {code}: {message}")]
    Api { status: u16, code: String, message: String, field: Option<String> },
    /// The answer's signature header is malformed, names an unknown key, or does not match.
    #[error("the answer's signature is not valid: {0}")]
    Signature(#[from] SignatureError),
    /// The answer cannot be trusted: no signature, or it echoes another request's nonce.
    #[error("the answer cannot be trusted: {0}")]
    Forged(String),
    #[error("the offline license file is not valid: {0}")]
    Offline(#[from] OfflineError),
    /// The offline state file (the latest time seen) cannot be read, parsed or written.
    #[error("the offline state file: {0}")]
    State(String),
    #[error("too many requests; retry after {} seconds", retry_after.map_or_else(|| "some".to_owned(), |s| s.to_string()))]
    RateLimited { retry_after: Option<u64> },
    /// A signed answer whose body is not what the API promises.
    #[error("the answer could not be decoded: {0}")]
    Decode(String),
    /// The client is set up in a way that cannot work (signatures required without a key ring, …).
    #[error("the client is misconfigured: {0}")]
    Config(String),
}

impl Error {
    /// The error for a non-2xx answer: `RateLimited` for `429`, `Api` from the error body otherwise.
    pub(crate) fn from_answer(status: u16, headers: &HeaderMap, body: &[u8]) -> Error {
        if status == 429 {
            return Error::RateLimited { retry_after: retry_after(headers) };
        }
        match serde_json::from_slice::<ErrorBody>(body) {
            Ok(ErrorBody { error }) => {
                Error::Api { status, code: error.code, message: error.message, field: error.field }
            }
            Err(_) => Error::Api {
                status,
                code: format!("HTTP_{status}"),
                message: String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
                field: None,
            },
        }
    }

    /// The error code of an `Api` error, as the server spelled it.
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// The HTTP status of an `Api` or `RateLimited` error.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api { status, .. } => Some(*status),
            Error::RateLimited { .. } => Some(429),
            Error::Http(err) => err.status().map(|s| s.as_u16()),
            _ => None,
        }
    }

    /// True when the server could not be asked at all, or asked us to come back later: the
    /// moment for an app to fall back to its offline file.
    pub fn is_unreachable(&self) -> bool {
        match self {
            Error::Http(_) | Error::RateLimited { .. } => true,
            Error::Api { status, .. } => *status >= 500,
            _ => false,
        }
    }
}

/// `Retry-After` in seconds; the HTTP-date form is not used by keyward and reads as unknown.
fn retry_after(headers: &HeaderMap) -> Option<u64> {
    headers.get(RETRY_AFTER)?.to_str().ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn an_error_body_becomes_an_api_error() {
        let body = br#"{"error":{"code":"INVALID_FIELD","message":"email is not valid","field":"email"}}"#;
        let err = Error::from_answer(422, &HeaderMap::new(), body);
        match err {
            Error::Api { status, code, message, field } => {
                assert_eq!((status, code.as_str(), message.as_str()), (422, "INVALID_FIELD", "email is not valid"));
                assert_eq!(field.as_deref(), Some("email"));
            }
            other => panic!("expected Api, got {other:?}"),
        }
    }

    #[test]
    fn a_body_that_is_no_error_body_still_names_the_status() {
        let err = Error::from_answer(502, &HeaderMap::new(), b"<html>bad gateway</html>");
        assert_eq!(err.code(), Some("HTTP_502"));
        assert_eq!(err.status(), Some(502));
        assert!(err.is_unreachable());
        assert!(err.to_string().contains("bad gateway"));
    }

    #[test]
    fn too_many_requests_exposes_retry_after() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("17"));
        assert!(matches!(Error::from_answer(429, &headers, b"{}"), Error::RateLimited { retry_after: Some(17) }));
        headers.insert(RETRY_AFTER, HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"));
        assert!(matches!(Error::from_answer(429, &headers, b""), Error::RateLimited { retry_after: None }));
        assert!(matches!(Error::from_answer(429, &HeaderMap::new(), b""), Error::RateLimited { retry_after: None }));
    }

    #[test]
    fn refusals_are_not_mistaken_for_an_unreachable_server() {
        let err =
            Error::from_answer(403, &HeaderMap::new(), br#"{"error":{"code":"LICENSE_SUSPENDED","message":"x"}}"#);
        assert!(!err.is_unreachable());
        assert!(!Error::Forged("no header".into()).is_unreachable());
    }
}
