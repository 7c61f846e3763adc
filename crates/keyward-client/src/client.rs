//! The client: which server, which environment, which credentials, and which signing keys to trust.

use crate::error::{Error, Result};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use keyward_core::signature::KeyRing;
use rand::rngs::OsRng;
use rand::RngCore;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// The largest answer the SDK reads into memory from the license API.
pub(crate) const MAX_LICENSE_ANSWER_BYTES: usize = 1024 * 1024;

/// A keyward server, seen from one environment. Cheap to clone: clones share the connection pool.
#[derive(Clone)]
pub struct Client {
    pub(crate) http: reqwest::Client,
    base: Arc<str>,
    /// `None` for production, which lives at `/api/v1`.
    environment: Option<Arc<str>>,
    pub(crate) token: Option<Arc<str>>,
    pub(crate) ring: Option<Arc<KeyRing>>,
    require_signatures: Option<bool>,
}

impl Client {
    /// A client of the server at `base_url` (`https://licenses.example.com`), in production.
    pub fn new(base_url: impl Into<String>) -> Self {
        let http = reqwest::Client::builder()
            .user_agent(concat!("keyward-client/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        let base: String = base_url.into();
        Client {
            http,
            base: Arc::from(base.trim_end_matches('/')),
            environment: None,
            token: None,
            ring: None,
            require_signatures: None,
        }
    }

    /// Uses this HTTP client (proxy, timeouts, TLS roots) instead of the default one.
    pub fn with_http_client(mut self, http: reqwest::Client) -> Self {
        self.http = http;
        self
    }

    /// Talks to this environment: `staging` is served at `/env/staging/api/v1`. `production` is
    /// the default and lives at `/api/v1`.
    pub fn environment(mut self, name: &str) -> Self {
        self.environment = if name == "production" { None } else { Some(Arc::from(name)) };
        self
    }

    /// The API token sent as `Authorization: Bearer …` on admin calls (never on license calls).
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(Arc::from(token.into()));
        self
    }

    /// Trusts answers signed by these keys: license answers must be signed by one of them.
    pub fn with_key_ring(mut self, ring: KeyRing) -> Self {
        self.ring = Some(Arc::new(ring));
        self
    }

    /// Whether license answers must carry a valid signature: true unless this says otherwise, so a
    /// license call without a key ring fails rather than trusting an answer it cannot check.
    /// `false` is for talking to a server whose keys the caller cannot know (a test, a probe).
    pub fn require_signatures(mut self, required: bool) -> Self {
        self.require_signatures = Some(required);
        self
    }

    pub fn signatures_required(&self) -> bool {
        self.require_signatures.unwrap_or(true)
    }

    pub fn key_ring(&self) -> Option<&KeyRing> {
        self.ring.as_deref()
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    pub fn environment_name(&self) -> &str {
        self.environment.as_deref().unwrap_or("production")
    }

    /// The path of an API endpoint as the server sees it and signs it, without the base URL:
    /// `/validate` → `/api/v1/validate` or `/env/staging/api/v1/validate`. The query, if any, stays.
    pub fn api_path(&self, endpoint: &str) -> String {
        let slash = if endpoint.starts_with('/') || endpoint.is_empty() { "" } else { "/" };
        match &self.environment {
            None => format!("/api/v1{slash}{endpoint}"),
            Some(env) => format!("/env/{}/api/v1{slash}{endpoint}", encode_component(env)),
        }
    }

    /// The full URL of an API endpoint.
    pub fn url(&self, endpoint: &str) -> String {
        format!("{}{}", self.base, self.api_path(endpoint))
    }

    /// The environment's signing keys, from `GET /public-keys` (unauthenticated). This trusts the
    /// connection on first use; an app that ships offline verification should pin the key at build
    /// time with `KeyRing::from_base64` instead, since a ring fetched later can be swapped by the user.
    pub async fn fetch_key_ring(&self) -> Result<KeyRing> {
        let response = self.http.get(self.url("/public-keys")).send().await?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = read_limited(response, MAX_LICENSE_ANSWER_BYTES).await?;
        if !(200..300).contains(&status) {
            return Err(Error::from_answer(status, &headers, &body));
        }
        let ring = KeyRing::from_public_keys_json(&body)
            .map_err(|err| Error::Decode(format!("the public keys answer: {err}")))?;
        if ring.keys.is_empty() {
            return Err(Error::Decode("the public keys answer lists no key".to_owned()));
        }
        Ok(ring)
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("environment", &self.environment_name())
            .field("token", &self.token.as_ref().map(|_| "<hidden>"))
            .field("key_ring", &self.ring.as_ref().map(|ring| ring.keys.keys().collect::<Vec<_>>()))
            .field("signatures_required", &self.signatures_required())
            .finish()
    }
}

/// A fresh request nonce: 192 bits from the operating system's CSPRNG, base64url without padding.
pub fn new_nonce() -> String {
    let mut bytes = [0u8; 24];
    OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Percent-encodes everything but RFC 3986's unreserved characters, for a path segment or a query part.
pub(crate) fn encode_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Reads a body, refusing one larger than `limit` bytes (a hostile server cannot exhaust memory).
pub(crate) async fn read_limited(mut response: reqwest::Response, limit: usize) -> Result<bytes::Bytes> {
    if response.content_length().is_some_and(|length| length > limit as u64) {
        return Err(Error::Decode(format!("the answer is larger than {limit} bytes")));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > limit {
            return Err(Error::Decode(format!("the answer is larger than {limit} bytes")));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn a_nonce_carries_at_least_128_random_bits_in_base64url() {
        let nonce = new_nonce();
        let decoded = URL_SAFE_NO_PAD.decode(&nonce).expect("base64url without padding");
        assert!(decoded.len() * 8 >= 128);
        assert!(nonce.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{nonce}");
    }

    #[test]
    fn nonces_do_not_repeat() {
        let nonces: HashSet<String> = (0..1000).map(|_| new_nonce()).collect();
        assert_eq!(nonces.len(), 1000);
    }

    #[test]
    fn production_lives_at_api_v1() {
        let client = Client::new("https://licenses.example.com/");
        assert_eq!(client.api_path("/validate"), "/api/v1/validate");
        assert_eq!(client.url("/validate"), "https://licenses.example.com/api/v1/validate");
        assert_eq!(client.url("licenses?status=active"), "https://licenses.example.com/api/v1/licenses?status=active");
        assert_eq!(client.environment_name(), "production");
        let named = Client::new("http://127.0.0.1:8080").environment("staging").environment("production");
        assert_eq!(named.url("/validate"), "http://127.0.0.1:8080/api/v1/validate");
    }

    #[test]
    fn another_environment_lives_under_env() {
        let client = Client::new("http://127.0.0.1:8080").environment("staging");
        assert_eq!(client.api_path("/validate"), "/env/staging/api/v1/validate");
        assert_eq!(client.url("/public-keys"), "http://127.0.0.1:8080/env/staging/api/v1/public-keys");
        assert_eq!(client.environment_name(), "staging");
    }

    #[test]
    fn an_environment_name_cannot_escape_its_path_segment() {
        let client = Client::new("http://h").environment("../x y");
        assert_eq!(client.api_path("/validate"), "/env/..%2Fx%20y/api/v1/validate");
    }

    #[test]
    fn signatures_are_required_unless_said_otherwise() {
        let client = Client::new("http://h");
        assert!(client.signatures_required(), "with no key ring too");
        let with_ring = client.clone().with_key_ring(KeyRing::default());
        assert!(with_ring.signatures_required());
        assert!(!with_ring.require_signatures(false).signatures_required());
        assert!(!client.clone().require_signatures(false).signatures_required());
        assert!(client.require_signatures(true).signatures_required());
    }

    #[test]
    fn debug_output_hides_the_token() {
        let client = Client::new("http://h").with_token("kw_secret_value");
        let shown = format!("{client:?}");
        assert!(!shown.contains("kw_secret_value"), "{shown}");
        assert!(shown.contains("<hidden>"));
    }

    #[test]
    fn components_are_percent_encoded() {
        assert_eq!(encode_component("ACME-7QX2M_a.b~"), "ACME-7QX2M_a.b~");
        assert_eq!(encode_component("a b/c?d&e=f#ü"), "a%20b%2Fc%3Fd%26e%3Df%23%C3%BC");
    }
}
