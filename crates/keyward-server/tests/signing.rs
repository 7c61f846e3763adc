//! Signed answers, offline files, key rotation and the SDK's refusals, against the real server.

mod common;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use common::{Fixture, TestServer};
use keyward_client::{Client, Error, OfflineVerifier};
use keyward_core::api::{ActivateRequest, ValidateRequest};
use keyward_core::offline::{OfflineClaims, OfflineError, OfflineFile};
use keyward_core::signature::{parse_header, verify_answer, KeyRing, SignatureError, Signer, HEADER};
use keyward_core::{LicenseStatus, ValidationCode};
use reqwest::Method;
use serde_json::{json, Value};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

on_both_backends!(
    every_license_answer_is_signed_for_exactly_its_request,
    a_nonce_cannot_carry_a_line_into_the_signed_message,
    the_sdk_refuses_forged_altered_and_replayed_answers,
    offline_files_carry_the_license_and_bind_the_device,
    rotation_keeps_old_answers_and_files_verifiable,
    a_cli_rotation_reaches_the_running_node,
    keyward_verify_checks_a_file_with_no_network,
    signing_keys_and_settings_survive_a_restart,
);

/// A key no license has: it reads as well-formed, so only the lookup can refuse it.
const UNKNOWN_KEY: &str = "ACME-NOPE0-NOPE0-NOPE0-NOPE0";

fn validate(key: &str, fingerprint: Option<&str>) -> ValidateRequest {
    ValidateRequest { key: key.into(), fingerprint: fingerprint.map(str::to_owned), ..Default::default() }
}

fn activate(key: &str, fingerprint: &str) -> ActivateRequest {
    ActivateRequest { key: key.into(), fingerprint: fingerprint.into(), ..Default::default() }
}

fn text<'a>(value: &'a Value, field: &str) -> &'a str {
    value[field].as_str().unwrap_or_else(|| panic!("`{field}` is not a string in {value}"))
}

/// A client of `environment` holding a new token of `role` there.
async fn with_role(server: &TestServer, admin: &Client, role: &str, environment: &str) -> Client {
    let created = admin.create_token(role, role, environment).await.expect("a token");
    Client::new(&server.base_url).environment(environment).with_token(text(&created, "token"))
}

/// The public keys an environment lists, as `(kid, status)` in the listed order, and as a ring.
async fn public_keys(base_url: &str, environment: &str) -> (Vec<(String, String)>, KeyRing) {
    let client = Client::new(base_url).environment(environment);
    let response = client.request(Method::GET, "/public-keys", None).await.expect("public keys");
    assert_eq!(response.status, 200, "{:?}", response.body);
    let listed = response.body["keys"]
        .as_array()
        .expect("a keys array")
        .iter()
        .map(|k| (text(k, "kid").to_owned(), text(k, "status").to_owned()))
        .collect();
    (listed, KeyRing::from_public_keys_json(&response.raw).expect("a well-formed key list"))
}

/// The one current kid of an environment.
async fn current_kid(base_url: &str, environment: &str) -> String {
    let (listed, _) = public_keys(base_url, environment).await;
    let current: Vec<_> = listed.iter().filter(|(_, status)| status == "current").collect();
    assert_eq!(current.len(), 1, "exactly one current key: {listed:?}");
    current[0].0.clone()
}

/// One license API answer, byte for byte.
#[derive(Debug, Clone)]
struct RawAnswer {
    status: u16,
    signature: Option<String>,
    body: Bytes,
}

impl RawAnswer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {:?}", self.body))
    }

    fn error_code(&self) -> String {
        text(&self.json()["error"], "code").to_owned()
    }

    fn kid(&self) -> String {
        parse_header(self.signature.as_deref().expect("a signature header")).expect("a well-formed header").kid
    }
}

/// POSTs these exact bytes to a license endpoint (`/validate`) of the client's environment.
async fn post_raw(app: &Client, endpoint: &str, body: impl Into<Bytes>) -> RawAnswer {
    let response = app.raw(Method::POST, endpoint, "application/json", body).await.expect("an answer");
    RawAnswer { status: response.status, signature: response.header(HEADER).map(str::to_owned), body: response.raw }
}

async fn post_json(app: &Client, endpoint: &str, body: &Value) -> RawAnswer {
    post_raw(app, endpoint, serde_json::to_vec(body).unwrap()).await
}

/// Checks that `answer` verifies for exactly this method, path, status and nonce, and that
/// changing any one of them, or one byte of the body, makes it fail.
fn assert_signed_for(ring: &KeyRing, method: &str, path: &str, nonce: &str, answer: &RawAnswer) {
    let header = answer.signature.as_deref().unwrap_or_else(|| panic!("no {HEADER} on {answer:?}"));
    let (status, body) = (answer.status, &answer.body[..]);
    assert_eq!(verify_answer(ring, header, method, path, status, nonce, body), Ok(()), "{path} {status} {answer:?}");
    let mismatch = Err(SignatureError::Mismatch);
    let other_nonce = format!("{nonce}x");
    assert_eq!(verify_answer(ring, header, method, path, status, &other_nonce, body), mismatch, "{path} nonce");
    let other_method = if method == "POST" { "GET" } else { "POST" };
    assert_eq!(verify_answer(ring, header, other_method, path, status, nonce, body), mismatch, "{path} method");
    let other_path = match path.strip_prefix("/env/staging") {
        Some(production) => production.to_owned(),
        None => format!("/env/staging{path}"),
    };
    assert_eq!(verify_answer(ring, header, method, &other_path, status, nonce, body), mismatch, "{path} path");
    let other_status = if status == 200 { 201 } else { 200 };
    assert_eq!(verify_answer(ring, header, method, path, other_status, nonce, body), mismatch, "{path} status");
    let mut changed = body.to_vec();
    let last = changed.len() - 1;
    changed[last] ^= 0x01;
    assert_eq!(verify_answer(ring, header, method, path, status, nonce, &changed), mismatch, "{path} body");
}

// 1. Every answer of the license API is signed over the request the client sent.

async fn every_license_answer_is_signed_for_exactly_its_request(server: TestServer) {
    let admin = server.admin().await;
    let staging_owner = with_role(&server, &admin, "owner", "staging").await;
    let production_keys = signature_matrix(&server, &admin, "production", "/api/v1").await;
    let staging_keys = signature_matrix(&server, &staging_owner, "staging", "/env/staging/api/v1").await;
    assert_ne!(production_keys.0, staging_keys.0, "each environment signs with a key of its own");

    // An answer of one environment does not verify with the other's keys.
    let staging_app = Client::new(&server.base_url).environment("staging");
    let answer = post_json(&staging_app, "/validate", &json!({"key": UNKNOWN_KEY, "nonce": "n-cross"})).await;
    assert_eq!(answer.status, 404);
    let header = answer.signature.as_deref().unwrap();
    let path = "/env/staging/api/v1/validate";
    assert_eq!(verify_answer(&staging_keys.1, header, "POST", path, 404, "n-cross", &answer.body), Ok(()));
    assert_eq!(
        verify_answer(&production_keys.1, header, "POST", path, 404, "n-cross", &answer.body),
        Err(SignatureError::UnknownKey(staging_keys.0.clone()))
    );
}

/// Drives every kind of answer of one environment's license API with raw HTTP and checks each
/// signature by hand. Returns the environment's current kid and ring.
async fn signature_matrix(server: &TestServer, admin: &Client, environment: &str, root: &str) -> (String, KeyRing) {
    let app = Client::new(&server.base_url).environment(environment);
    let (listed, ring) = public_keys(&server.base_url, environment).await;
    let kid = current_kid(&server.base_url, environment).await;
    assert_eq!(listed.len(), 1, "a fresh installation has one key per environment: {listed:?}");

    // The key list is itself signed (GET, no nonce).
    let keys = app.request(Method::GET, "/public-keys", None).await.unwrap();
    let keys = RawAnswer { status: keys.status, signature: keys.header(HEADER).map(str::to_owned), body: keys.raw };
    assert_signed_for(&ring, "GET", &format!("{root}/public-keys"), "", &keys);

    let fx = Fixture::with_generator(
        admin,
        json!({"type": "chunked", "prefix": "ACME", "groups": 4, "group_length": 5}),
        1,
        None,
    )
    .await;
    let assigned = fx.license(admin, true).await;
    let key = text(&assigned, "key");
    let available = fx.license(admin, false).await;
    let unassigned = text(&available, "key");
    let validate_path = format!("{root}/validate");
    let activate_path = format!("{root}/activate");
    let deactivate_path = format!("{root}/deactivate");
    let offline_path = format!("{root}/offline-file");

    // validate: valid, invalid (200), unknown (404); the nonce is echoed and signed.
    let cases = [
        (json!({"key": key, "nonce": "n-valid"}), 200, true, "VALID"),
        (json!({"key": key, "fingerprint": "dev-1", "nonce": "n-not-activated"}), 200, false, "NOT_ACTIVATED"),
        (json!({"key": unassigned, "nonce": "n-unassigned"}), 200, false, "LICENSE_NOT_ASSIGNED"),
        (json!({"key": UNKNOWN_KEY, "nonce": "n-unknown"}), 404, false, "LICENSE_NOT_FOUND"),
    ];
    for (request, status, valid, code) in cases {
        let nonce = text(&request, "nonce").to_owned();
        let answer = post_json(&app, "/validate", &request).await;
        let body = answer.json();
        assert_eq!((answer.status, body["valid"].as_bool(), text(&body, "code")), (status, Some(valid), code));
        assert_eq!(body["nonce"], nonce.as_str(), "validate echoes the nonce");
        assert_eq!(answer.kid(), kid);
        assert_signed_for(&ring, "POST", &validate_path, &nonce, &answer);
    }

    // activate: 201 new, 200 again, 403 refused state, 409 no slot left (the limit is 1).
    let cases = [
        (json!({"key": key, "fingerprint": "dev-1", "nonce": "n-a1"}), 201, None),
        (json!({"key": key, "fingerprint": "dev-1", "nonce": "n-a2"}), 200, None),
        (json!({"key": unassigned, "fingerprint": "dev-1", "nonce": "n-a3"}), 403, Some("LICENSE_NOT_ASSIGNED")),
        (json!({"key": key, "fingerprint": "dev-2", "nonce": "n-a4"}), 409, Some("ACTIVATION_LIMIT_EXCEEDED")),
    ];
    for (request, status, code) in cases {
        let nonce = text(&request, "nonce");
        let answer = post_json(&app, "/activate", &request).await;
        assert_eq!(answer.status, status, "{request}: {:?}", answer.body);
        match code {
            Some(code) => assert_eq!(answer.error_code(), code),
            None => assert_eq!(answer.json()["nonce"], nonce),
        }
        assert_signed_for(&ring, "POST", &activate_path, nonce, &answer);
    }

    // offline-file: 200 for the activated device, 403 for a license that is not in good standing.
    let file = post_json(&app, "/offline-file", &json!({"key": key, "fingerprint": "dev-1", "nonce": "n-o1"})).await;
    assert_eq!(file.status, 200, "{:?}", file.body);
    assert_eq!(file.json()["kid"], kid.as_str());
    assert_signed_for(&ring, "POST", &offline_path, "n-o1", &file);
    let refused = post_json(&app, "/offline-file", &json!({"key": unassigned, "nonce": "n-o2"})).await;
    assert_eq!((refused.status, refused.error_code().as_str()), (403, "LICENSE_NOT_ASSIGNED"));
    assert_signed_for(&ring, "POST", &offline_path, "n-o2", &refused);

    // deactivate: 200, then 404 for the device that is gone.
    let freed = post_json(&app, "/deactivate", &json!({"key": key, "fingerprint": "dev-1", "nonce": "n-d1"})).await;
    assert_eq!(freed.status, 200, "{:?}", freed.body);
    assert_eq!(freed.json()["deactivated"], true);
    assert_signed_for(&ring, "POST", &deactivate_path, "n-d1", &freed);
    let gone = post_json(&app, "/deactivate", &json!({"key": key, "fingerprint": "dev-1", "nonce": "n-d2"})).await;
    assert_eq!((gone.status, gone.error_code().as_str()), (404, "NOT_ACTIVATED"));
    assert_signed_for(&ring, "POST", &deactivate_path, "n-d2", &gone);

    // Errors are signed too. A body that is not JSON has no nonce to read: it signs the empty one.
    let broken = post_raw(&app, "/validate", format!(r#"{{"key": "{key}", "nonce": "n-broken""#)).await;
    assert_eq!((broken.status, broken.error_code().as_str()), (400, "MALFORMED_JSON"));
    assert_signed_for(&ring, "POST", &validate_path, "", &broken);
    let header = broken.signature.as_deref().unwrap();
    assert_eq!(
        verify_answer(&ring, header, "POST", &validate_path, 400, "n-broken", &broken.body),
        Err(SignatureError::Mismatch)
    );
    // A well-formed body with a bad field signs the nonce it carries; one without a key cannot be read.
    let empty_key = post_json(&app, "/activate", &json!({"key": "", "fingerprint": "dev-1", "nonce": "n-422"})).await;
    assert_eq!((empty_key.status, empty_key.error_code().as_str()), (422, "INVALID_FIELD"));
    assert_signed_for(&ring, "POST", &activate_path, "n-422", &empty_key);
    let bad_fingerprint =
        post_json(&app, "/validate", &json!({"key": key, "fingerprint": "", "nonce": "n-422-fp"})).await;
    assert_eq!(bad_fingerprint.status, 422, "{:?}", bad_fingerprint.body);
    assert_signed_for(&ring, "POST", &validate_path, "n-422-fp", &bad_fingerprint);
    let no_key = post_json(&app, "/deactivate", &json!({"fingerprint": "dev-1", "nonce": "n-422-nokey"})).await;
    assert_eq!(no_key.status, 422, "{:?}", no_key.body);
    assert_signed_for(&ring, "POST", &deactivate_path, "", &no_key);

    // A rate-limited request is refused with a signed 429 (one validation a minute per key).
    let limited = admin.request(Method::PATCH, "/settings", Some(&json!({"validate_rate_per_key": 1}))).await;
    assert_eq!(limited.unwrap().status, 200);
    let body = serde_json::to_vec(&json!({"key": key, "nonce": "n-429"})).unwrap();
    let response = validate_until_refused(&app, body).await;
    assert!(response.header("retry-after").is_some_and(|s| s.parse::<u64>().is_ok_and(|s| s >= 1)));
    let limited = RawAnswer { status: 429, signature: response.header(HEADER).map(str::to_owned), body: response.raw };
    assert_signed_for(&ring, "POST", &validate_path, "n-429", &limited);
    (kid, ring)
}

/// The signed text is `<METHOD> <path>\n<status>\n<nonce>\n<body>`: were a nonce `N\nX` signed,
/// the same signature would also vouch for nonce `N` with the body `X\n<body>`. A man in the middle
/// who sees an app's nonce `N` could then prepend what he likes to the real answer, which a client
/// reading only the first JSON value of a body (Go's `json.Decoder`, for one) would believe.
async fn a_nonce_cannot_carry_a_line_into_the_signed_message(server: TestServer) {
    let admin = server.admin().await;
    let fx = Fixture::new(&admin).await;
    let license = fx.license(&admin, false).await;
    let key = text(&license, "key");
    let app = Client::new(&server.base_url);
    let (_, ring) = public_keys(&server.base_url, "production").await;
    let smuggled =
        r#"{"valid":true,"code":"VALID","detail":"","license":null,"nonce":"app-nonce","ts":"2030-01-01T00:00:00Z"}"#;
    for nonce in [format!("app-nonce\n{smuggled}"), "app-nonce\r".to_owned(), "a\u{0}b".to_owned(), "\t".to_owned()] {
        for endpoint in ["/validate", "/activate", "/deactivate", "/offline-file"] {
            let answer = post_json(&app, endpoint, &json!({"key": key, "fingerprint": "dev-1", "nonce": nonce})).await;
            assert_eq!(answer.status, 422, "{endpoint} {nonce:?}: {:?}", answer.body);
            assert_eq!(answer.error_code(), "INVALID_FIELD");
            assert_eq!(answer.json()["error"]["field"], "nonce");
            // Refused before it is read: the refusal is signed over the empty nonce, not this one.
            assert_signed_for(&ring, "POST", &format!("/api/v1{endpoint}"), "", &answer);
        }
    }
    // Visible ASCII of any kind, spaces included, is a nonce.
    let nonce = "n 1:/+=?&\"\\~";
    let answer = post_json(&app, "/validate", &json!({"key": key, "nonce": nonce})).await;
    assert_eq!((answer.status, answer.json()["nonce"].as_str()), (200, Some(nonce)));
    assert_signed_for(&ring, "POST", "/api/v1/validate", nonce, &answer);
}

/// Validates the same key until the server says `429`; the budget is one a minute, so the second try.
async fn validate_until_refused(app: &Client, body: Vec<u8>) -> keyward_client::ApiResponse {
    for _ in 0..2 {
        let response = app.raw(Method::POST, "/validate", "application/json", body.clone()).await.unwrap();
        if response.status == 429 {
            return response;
        }
        assert_eq!(response.status, 200, "{:?}", response.body);
    }
    panic!("a second validation within the minute was not refused");
}

// 2. The SDK refuses what a man in the middle makes of the real server's answers.

/// What the proxy does to the real server's answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tamper {
    Nothing,
    /// Relays the answer and keeps a copy of it for `Replay`.
    Capture,
    /// Answers with the kept copy without asking the server.
    Replay,
    /// Flips the case of one letter of the body (it stays JSON).
    FlipOneByte,
    /// `"valid":false` becomes `"valid":true ` (same length, still JSON).
    MakeValid,
    StripSignature,
    /// `MakeValid`, then signs it for the request with another key under the server's kid.
    ForgeSignature,
    /// Sends a production request to staging's URL.
    ToStaging,
}

#[derive(Clone)]
struct Relayed {
    status: StatusCode,
    signature: Option<HeaderValue>,
    body: Bytes,
}

struct Proxy {
    upstream: String,
    http: reqwest::Client,
    tamper: Mutex<Tamper>,
    captured: Mutex<Option<Relayed>>,
    forger: Signer,
}

impl Proxy {
    /// A loopback proxy in front of `upstream`; it lives as long as the test's runtime.
    async fn start(upstream: &str) -> (String, Arc<Proxy>) {
        let proxy = Arc::new(Proxy {
            upstream: upstream.to_owned(),
            http: reqwest::Client::new(),
            tamper: Mutex::new(Tamper::Nothing),
            captured: Mutex::new(None),
            forger: Signer::generate(),
        });
        let app = axum::Router::new().fallback(relay).with_state(proxy.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (url, proxy)
    }

    fn set(&self, tamper: Tamper) {
        *self.tamper.lock().unwrap() = tamper;
    }
}

async fn relay(State(proxy): State<Arc<Proxy>>, request: Request) -> Response {
    let tamper = *proxy.tamper.lock().unwrap();
    let relayed = if tamper == Tamper::Replay {
        proxy.captured.lock().unwrap().clone().expect("an answer was captured before it is replayed")
    } else {
        forward(&proxy, tamper, request).await
    };
    let mut response = Response::new(Body::from(relayed.body));
    *response.status_mut() = relayed.status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(signature) = relayed.signature {
        response.headers_mut().insert(HEADER, signature);
    }
    response
}

async fn forward(proxy: &Proxy, tamper: Tamper, request: Request) -> Relayed {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let body = axum::body::to_bytes(request.into_body(), 1 << 20).await.expect("a request body");
    let upstream_path = if tamper == Tamper::ToStaging { format!("/env/staging{path}") } else { path.clone() };
    let answer = proxy
        .http
        .request(method.clone(), format!("{}{upstream_path}", proxy.upstream))
        .header(CONTENT_TYPE, "application/json")
        .body(body.clone())
        .send()
        .await
        .expect("the server answers");
    let mut relayed = Relayed {
        status: answer.status(),
        signature: answer.headers().get(HEADER).cloned(),
        body: answer.bytes().await.expect("an answer body"),
    };
    match tamper {
        Tamper::Capture => *proxy.captured.lock().unwrap() = Some(relayed.clone()),
        Tamper::FlipOneByte => relayed.body = flip_one_letter(&relayed.body),
        Tamper::MakeValid => relayed.body = make_valid(&relayed.body),
        Tamper::StripSignature => relayed.signature = None,
        Tamper::ForgeSignature => {
            // Everything but the private key: the request's nonce, the path, the server's kid.
            relayed.body = make_valid(&relayed.body);
            let nonce =
                serde_json::from_slice::<Value>(&body).ok().and_then(|b| b["nonce"].as_str().map(str::to_owned));
            let server_kid = parse_header(relayed.signature.as_ref().unwrap().to_str().unwrap()).unwrap().kid;
            let forger = Signer { kid: server_kid, key: proxy.forger.key.clone() };
            let header = forger.sign_answer(
                method.as_str(),
                &path,
                relayed.status.as_u16(),
                nonce.as_deref().unwrap_or(""),
                &relayed.body,
            );
            relayed.signature = Some(HeaderValue::from_str(&header).unwrap());
        }
        Tamper::Nothing | Tamper::Replay | Tamper::ToStaging => {}
    }
    relayed
}

/// The body with the case of the first letter of the first string value flipped.
fn flip_one_letter(body: &[u8]) -> Bytes {
    let at = body.windows(3).position(|w| w[0] == b':' && w[1] == b'"' && w[2].is_ascii_alphabetic());
    let at = at.expect("a string value starting with a letter") + 2;
    let mut changed = body.to_vec();
    changed[at] ^= 0x20;
    changed.into()
}

fn make_valid(body: &[u8]) -> Bytes {
    let text = std::str::from_utf8(body).unwrap();
    assert!(text.contains(r#""valid":false"#), "an invalid answer to make valid: {text}");
    Bytes::from(text.replacen(r#""valid":false"#, r#""valid":true "#, 1))
}

fn assert_mismatch<T: std::fmt::Debug>(result: Result<T, Error>, what: &str) {
    match result {
        Err(Error::Signature(SignatureError::Mismatch)) => {}
        other => panic!("{what}: expected a signature mismatch, got {other:?}"),
    }
}

async fn the_sdk_refuses_forged_altered_and_replayed_answers(server: TestServer) {
    let admin = server.admin().await;
    let fx = Fixture::new(&admin).await;
    let license = fx.license(&admin, true).await;
    let (id, key) = (text(&license, "id"), text(&license, "key"));
    let (_, ring) = public_keys(&server.base_url, "production").await;
    let (proxy_url, proxy) = Proxy::start(&server.base_url).await;
    // The app trusts the server's keys; every request goes through the proxy.
    let app = Client::new(&proxy_url).with_key_ring(ring.clone());
    // The SDK refuses to go without a key ring; an app that opts out shows what the ring prevents.
    let unchecked = Client::new(&proxy_url).require_signatures(false);
    assert!(matches!(Client::new(&proxy_url).validate(validate(key, None)).await, Err(Error::Config(_))));
    app.activate(activate(key, "dev-1")).await.expect("an untouched answer passes");

    proxy.set(Tamper::Nothing);
    assert!(app.validate(validate(key, Some("dev-1"))).await.unwrap().valid, "the proxy relays faithfully");
    proxy.set(Tamper::Capture);
    let captured = app.validate(validate(key, Some("dev-1"))).await.unwrap();
    assert!(captured.valid);

    proxy.set(Tamper::FlipOneByte);
    assert_mismatch(app.validate(validate(key, Some("dev-1"))).await, "validate, one byte changed");
    assert_mismatch(app.activate(activate(key, "dev-1")).await, "activate, one byte changed");
    assert_mismatch(app.offline_file(key, Some("dev-1")).await, "offline file, one byte changed");
    assert_mismatch(app.deactivate(key, "dev-9").await, "a refusal, one byte changed");

    proxy.set(Tamper::StripSignature);
    let stripped = app.validate(validate(key, Some("dev-1"))).await;
    assert!(matches!(stripped, Err(Error::Forged(_))), "no signature: {stripped:?}");

    // The license is suspended: the forger's goal is to make the app believe it is still valid.
    admin.license_action(id, "suspend", &json!({"reason": "chargeback"})).await.unwrap();
    proxy.set(Tamper::Nothing);
    let honest = app.validate(validate(key, Some("dev-1"))).await.unwrap();
    assert_eq!((honest.valid, honest.code), (false, ValidationCode::LicenseSuspended));

    proxy.set(Tamper::MakeValid);
    let fooled = unchecked.validate(validate(key, Some("dev-1"))).await.unwrap();
    assert!(fooled.valid, "unchecked, the altered answer is believed: the attack is real");
    assert_mismatch(app.validate(validate(key, Some("dev-1"))).await, "\"valid\":false made true");

    proxy.set(Tamper::ForgeSignature);
    assert_mismatch(app.validate(validate(key, Some("dev-1"))).await, "re-signed with another key");

    // The valid answer captured before the suspension, replayed for a new request.
    proxy.set(Tamper::Replay);
    assert_mismatch(app.validate(validate(key, Some("dev-1"))).await, "a replayed answer");
    let replayed = unchecked.validate(validate(key, Some("dev-1"))).await;
    assert!(matches!(replayed, Err(Error::Forged(_))), "the echoed nonce alone catches it: {replayed:?}");

    // Staging's keys do not vouch for production's answers.
    let (staging_kid, staging_ring) = {
        let (_, ring) = public_keys(&server.base_url, "staging").await;
        (current_kid(&server.base_url, "staging").await, ring)
    };
    let production_kid = current_kid(&server.base_url, "production").await;
    let wrong_ring = Client::new(&server.base_url).with_key_ring(staging_ring.clone());
    match wrong_ring.validate(validate(key, None)).await {
        Err(Error::Signature(SignatureError::UnknownKey(kid))) => assert_eq!(kid, production_kid),
        other => panic!("staging's ring against production: {other:?}"),
    }

    // A genuine staging answer passed off as production's: the signed path gives it away, even
    // to an app that trusts both environments' keys.
    let staging_owner = with_role(&server, &admin, "owner", "staging").await;
    let staging_fx = Fixture::new(&staging_owner).await;
    let staging_license = staging_fx.license(&staging_owner, true).await;
    let staging_key = text(&staging_license, "key");
    proxy.set(Tamper::ToStaging);
    assert!(unchecked.validate(validate(staging_key, None)).await.unwrap().valid, "the proxy reaches staging");
    match app.validate(validate(staging_key, None)).await {
        Err(Error::Signature(SignatureError::UnknownKey(kid))) => assert_eq!(kid, staging_kid),
        other => panic!("a staging answer with production's ring: {other:?}"),
    }
    let mut both = ring.clone();
    both.keys.extend(staging_ring.keys);
    let trusts_both = Client::new(&proxy_url).with_key_ring(both);
    assert_mismatch(trusts_both.validate(validate(staging_key, None)).await, "staging's answer at production's path");
}

// 3. Offline files.

async fn offline_files_carry_the_license_and_bind_the_device(server: TestServer) {
    let admin = server.admin().await;
    let app = server.client().await;
    let ring = app.key_ring().unwrap().clone();
    let kid = current_kid(&server.base_url, "production").await;
    let fx = Fixture::new(&admin).await;
    let flags = json!({"pro": true, "seats": 5, "tier": "studio"});
    let license = admin
        .create_license(&json!({"product": fx.product, "generator": fx.generator, "customer": fx.customer,
            "expires_at": "2031-05-06T07:08:09Z", "feature_flags": flags}))
        .await
        .unwrap();
    let (id, key) = (text(&license, "id"), text(&license, "key"));
    app.activate(activate(key, "dev-1")).await.unwrap();
    let state = tempfile::tempdir().unwrap();
    let verifier = OfflineVerifier::new(ring.clone()).with_state_file(state.path().join("license-state.json"));

    let before = Utc::now().timestamp();
    let file = app.offline_file(key, Some("dev-1")).await.expect("a file for the activated device");
    let after = Utc::now().timestamp();
    assert_eq!((file.alg.as_str(), file.kid.as_str()), ("ed25519", kid.as_str()));
    let bytes = serde_json::to_vec(&file).unwrap();
    let claims = verifier.verify(&bytes, Some("dev-1")).expect("the SDK accepts it on its device");
    let shown = admin.license(id).await.unwrap();
    let expected_expiry: DateTime<Utc> = serde_json::from_value(shown["expires_at"].clone()).unwrap();
    assert_eq!(claims.license_id, id);
    assert_eq!(claims.key, key);
    assert_eq!(claims.product_id, fx.product);
    assert_eq!(claims.customer_email.as_deref(), shown["customer"]["email"].as_str());
    assert!(claims.customer_email.is_some());
    assert_eq!(claims.status, "active");
    assert_eq!(claims.feature_flags, flags);
    assert_eq!(claims.license_expires_at, Some(expected_expiry));
    assert_eq!(expected_expiry.to_rfc3339(), "2031-05-06T07:08:09+00:00");
    assert_eq!(claims.fingerprint.as_deref(), Some("dev-1"));
    assert!((before..=after).contains(&claims.iat), "iat {} is the time of the request", claims.iat);
    assert_eq!(claims.exp - claims.iat, 86_400, "the default lifetime is a day");
    match verifier.verify(&bytes, Some("dev-2")) {
        Err(Error::Offline(OfflineError::FingerprintMismatch)) => {}
        other => panic!("another device: {other:?}"),
    }

    let err = app.offline_file(key, Some("dev-2")).await.unwrap_err();
    assert_eq!((err.status(), err.code()), (Some(403), Some("NOT_ACTIVATED")));

    // The lifetime is the environment's setting.
    let set = admin.request(Method::PATCH, "/settings", Some(&json!({"offline_file_lifetime_secs": 120}))).await;
    assert_eq!(set.unwrap().body["offline_file_lifetime_secs"], 120);
    let too_short = admin.request(Method::PATCH, "/settings", Some(&json!({"offline_file_lifetime_secs": 59}))).await;
    assert_eq!(too_short.unwrap().status, 422);
    let short = app.offline_file(key, Some("dev-1")).await.unwrap();
    let short_claims = verifier.verify(&serde_json::to_vec(&short).unwrap(), Some("dev-1")).unwrap();
    assert_eq!(short_claims.exp - short_claims.iat, 120);

    // The admin preview: support may, read_only may not.
    let support = with_role(&server, &admin, "support", "production").await;
    let preview_path = format!("/licenses/{id}/offline-file?fingerprint=dev-1");
    let preview = support.request(Method::GET, &preview_path, None).await.unwrap();
    assert_eq!(preview.status, 200, "{:?}", preview.body);
    let preview_claims = verifier.verify(&preview.raw, Some("dev-1")).expect("the preview is a real file");
    assert_eq!((preview_claims.license_id.as_str(), preview_claims.exp - preview_claims.iat), (id, 120));
    let unbound = support.request(Method::GET, &format!("/licenses/{id}/offline-file?fingerprint=dev-9"), None).await;
    let unbound = unbound.unwrap();
    assert_eq!((unbound.status, unbound.error_code()), (409, Some("NOT_ACTIVATED")));
    let read_only = with_role(&server, &admin, "read_only", "production").await;
    let refused = read_only.request(Method::GET, &preview_path, None).await.unwrap();
    assert_eq!((refused.status, refused.error_code()), (403, Some("FORBIDDEN")));

    // Not in good standing: no file, whatever the device.
    admin.license_action(id, "suspend", &json!({"reason": "chargeback"})).await.unwrap();
    let err = app.offline_file(key, Some("dev-1")).await.unwrap_err();
    assert_eq!((err.status(), err.code()), (Some(403), Some("LICENSE_SUSPENDED")));
    let revoked = fx.license(&admin, true).await;
    let revoked_key = text(&revoked, "key");
    app.activate(activate(revoked_key, "dev-1")).await.unwrap();
    admin.license_action(text(&revoked, "id"), "revoke", &json!({})).await.unwrap();
    let err = app.offline_file(revoked_key, Some("dev-1")).await.unwrap_err();
    assert_eq!((err.status(), err.code()), (Some(403), Some("LICENSE_REVOKED")));
}

// 4. Rotation.

/// A validate answer with everything needed to check it again later.
struct Kept {
    nonce: String,
    answer: RawAnswer,
}

async fn keep_a_validate_answer(app: &Client, key: &str, nonce: &str) -> Kept {
    let answer = post_json(app, "/validate", &json!({"key": key, "nonce": nonce})).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    Kept { nonce: nonce.to_owned(), answer }
}

fn still_verifies(ring: &KeyRing, kept: &Kept) -> Result<(), SignatureError> {
    let header = kept.answer.signature.as_deref().unwrap();
    verify_answer(ring, header, "POST", "/api/v1/validate", 200, &kept.nonce, &kept.answer.body)
}

async fn rotation_keeps_old_answers_and_files_verifiable(server: TestServer) {
    let admin = server.admin().await;
    let app = server.client().await;
    let fx = Fixture::new(&admin).await;
    let license = fx.license(&admin, true).await;
    let key = text(&license, "key");
    app.activate(activate(key, "dev-1")).await.unwrap();
    let raw_app = Client::new(&server.base_url);
    let k1 = current_kid(&server.base_url, "production").await;
    let staging_before = public_keys(&server.base_url, "staging").await.0;
    let old_answer = keep_a_validate_answer(&raw_app, key, "n-before").await;
    assert_eq!(old_answer.answer.kid(), k1);
    let old_file = serde_json::to_vec(&app.offline_file(key, Some("dev-1")).await.unwrap()).unwrap();
    let pinned_k1 = app.key_ring().unwrap().clone();

    // Only the owner rotates.
    let admin_role = with_role(&server, &admin, "admin", "production").await;
    let refused = admin_role.request(Method::POST, "/signing-keys/rotate", None).await.unwrap();
    assert_eq!((refused.status, refused.error_code()), (403, Some("FORBIDDEN")));
    assert_eq!(current_kid(&server.base_url, "production").await, k1, "a refused rotation changes nothing");
    let rotated = admin.request(Method::POST, "/signing-keys/rotate", None).await.unwrap();
    assert_eq!(rotated.status, 201, "{:?}", rotated.body);
    let k2 = text(&rotated.body, "kid").to_owned();
    assert_ne!(k2, k1);
    assert_eq!((text(&rotated.body, "status"), text(&rotated.body, "alg")), ("current", "ed25519"));

    let (listed, ring) = public_keys(&server.base_url, "production").await;
    let mut listed_sorted = listed.clone();
    listed_sorted.sort();
    let mut expected = vec![(k1.clone(), "retired".to_owned()), (k2.clone(), "current".to_owned())];
    expected.sort();
    assert_eq!(listed_sorted, expected);
    assert_eq!(public_keys(&server.base_url, "staging").await.0, staging_before, "staging keeps its key");

    // New answers and files use K2; what K1 signed still verifies with the new ring.
    let new_answer = keep_a_validate_answer(&raw_app, key, "n-after").await;
    assert_eq!(new_answer.answer.kid(), k2);
    assert_eq!(still_verifies(&ring, &new_answer), Ok(()));
    assert_eq!(still_verifies(&ring, &old_answer), Ok(()), "K1, retired, still verifies its answers");
    let verifier = OfflineVerifier::new(ring.clone());
    assert_eq!(verifier.verify(&old_file, Some("dev-1")).expect("K1's file still verifies").key, key);
    let new_file = app.offline_file(key, Some("dev-1")).await;
    assert!(matches!(new_file, Err(Error::Signature(SignatureError::UnknownKey(ref kid))) if *kid == k2));
    let fresh = server.client().await;
    let new_file = fresh.offline_file(key, Some("dev-1")).await.expect("a fresh ring trusts K2");
    assert_eq!(new_file.kid, k2);
    verifier.verify(&serde_json::to_vec(&new_file).unwrap(), Some("dev-1")).unwrap();
    assert!(fresh.validate(validate(key, Some("dev-1"))).await.unwrap().valid);
    // An app that pinned only K1 can no longer check new answers: it must ship or fetch K2.
    match Client::new(&server.base_url).with_key_ring(pinned_k1).validate(validate(key, None)).await {
        Err(Error::Signature(SignatureError::UnknownKey(kid))) => assert_eq!(kid, k2),
        other => panic!("a ring with K1 only: {other:?}"),
    }
}

/// Runs the `keyward` binary with the server's database and master key, and nothing else.
async fn keyward(server: &TestServer, args: &[&str]) -> std::process::Output {
    let config = &server.config;
    tokio::process::Command::new(env!("CARGO_BIN_EXE_keyward"))
        .args(args)
        .env_clear()
        .env("KEYWARD_DATA_DIR", &config.data_dir)
        .env("KEYWARD_DATABASE_URL", config.database_url())
        .env("KEYWARD_MASTER_KEY_FILE", config.master_key_file())
        .env("KEYWARD_LOG", "warn")
        .output()
        .await
        .expect("the keyward binary runs")
}

async fn a_cli_rotation_reaches_the_running_node(server: TestServer) {
    let admin = server.admin().await;
    let app = server.client().await;
    let fx = Fixture::new(&admin).await;
    let license = fx.license(&admin, true).await;
    let key = text(&license, "key");
    app.activate(activate(key, "dev-1")).await.unwrap();
    let raw_app = Client::new(&server.base_url);
    let k1 = current_kid(&server.base_url, "production").await;
    let old_answer = keep_a_validate_answer(&raw_app, key, "n-before").await;
    let old_file = serde_json::to_vec(&app.offline_file(key, Some("dev-1")).await.unwrap()).unwrap();

    let output = keyward(&server, &["signing-key", "rotate", "--environment", "production"]).await;
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "rotate failed: {stdout}{stderr}");
    let k2 = stdout.split_whitespace().next().expect("the new kid first").to_owned();
    assert!(stdout.contains("is now the current signing key of production"), "{stdout}");
    assert_ne!(k2, k1);

    // A running node rereads its keys every 5 s.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(8);
    let listed = loop {
        let (listed, _) = public_keys(&server.base_url, "production").await;
        if listed.iter().any(|(kid, status)| *kid == k2 && status == "current") {
            break listed;
        }
        assert!(tokio::time::Instant::now() < deadline, "the node did not pick up {k2} within 8 s: {listed:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(listed.contains(&(k1.clone(), "retired".to_owned())), "{listed:?}");
    assert_eq!(listed.len(), 2, "{listed:?}");
    let ring = public_keys(&server.base_url, "production").await.1;
    let new_answer = keep_a_validate_answer(&raw_app, key, "n-after").await;
    assert_eq!(new_answer.answer.kid(), k2, "the node signs with the key the CLI made");
    assert_eq!(still_verifies(&ring, &new_answer), Ok(()));
    assert_eq!(still_verifies(&ring, &old_answer), Ok(()));
    OfflineVerifier::new(ring).verify(&old_file, Some("dev-1")).expect("K1's file still verifies");
    assert!(server.client().await.validate(validate(key, Some("dev-1"))).await.unwrap().valid);

    let unknown = keyward(&server, &["signing-key", "rotate", "--environment", "nowhere"]).await;
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no environment is named `nowhere`"));
}

// 5. `keyward verify`.

struct Verdict {
    success: bool,
    stdout: String,
    stderr: String,
}

async fn keyward_verify(server: &TestServer, file: &Path, public_keys: &[&str], fingerprint: Option<&str>) -> Verdict {
    let mut args = vec!["verify".to_owned(), file.display().to_string()];
    for key in public_keys {
        args.extend(["--public-key".to_owned(), (*key).to_owned()]);
    }
    if let Some(fingerprint) = fingerprint {
        args.extend(["--fingerprint".to_owned(), fingerprint.to_owned()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = keyward(server, &args).await;
    Verdict {
        success: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn assert_refused(verdict: &Verdict, reason: &str) {
    assert!(!verdict.success, "expected a refusal ({reason}), got success: {}", verdict.stdout);
    assert!(verdict.stdout.is_empty(), "no claims on a refusal: {}", verdict.stdout);
    assert!(verdict.stderr.contains(reason), "expected `{reason}` on stderr, got: {}", verdict.stderr);
}

async fn keyward_verify_checks_a_file_with_no_network(server: TestServer) {
    let admin = server.admin().await;
    let app = server.client().await;
    let fx = Fixture::new(&admin).await;
    let license = fx.license(&admin, true).await;
    let key = text(&license, "key");
    app.activate(activate(key, "dev-1")).await.unwrap();
    let file = app.offline_file(key, Some("dev-1")).await.unwrap();
    let good = serde_json::to_vec(&file).unwrap();
    let expected = OfflineVerifier::new(app.key_ring().unwrap().clone()).verify(&good, Some("dev-1")).unwrap();
    let keys = admin.request(Method::GET, "/public-keys", None).await.unwrap().body;
    let public_key = text(&keys["keys"][0], "public_key");
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    };

    let good_path = write("good.json", &good);
    for fingerprint in [None, Some("dev-1")] {
        let verdict = keyward_verify(&server, &good_path, &[public_key], fingerprint).await;
        assert!(verdict.success, "a good file ({fingerprint:?}): {}", verdict.stderr);
        let printed: OfflineClaims = serde_json::from_str(&verdict.stdout).expect("the claims as JSON on stdout");
        assert_eq!(printed, expected);
    }
    let verdict = keyward_verify(&server, &good_path, &[public_key], Some("dev-2")).await;
    assert_refused(&verdict, "bound to another device");

    // Signed by a key that is not the server's: under its own kid, and under the server's.
    let stranger = Signer::generate();
    let foreign = write("foreign.json", &serde_json::to_vec(&OfflineFile::sign(&expected, &stranger)).unwrap());
    assert_refused(&keyward_verify(&server, &foreign, &[public_key], None).await, "no public key is known for kid");
    let mut impostor = OfflineFile::sign(&expected, &stranger);
    impostor.kid = file.kid.clone();
    let impostor = write("impostor.json", &serde_json::to_vec(&impostor).unwrap());
    assert_refused(&keyward_verify(&server, &impostor, &[public_key], None).await, "the signature does not match");

    // The claims changed after signing: a longer life.
    let mut claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&file.payload).unwrap()).unwrap();
    claims["exp"] = json!(claims["exp"].as_i64().unwrap() + 365 * 86_400);
    let tampered = OfflineFile { payload: URL_SAFE_NO_PAD.encode(claims.to_string()), ..file.clone() };
    let tampered = write("tampered.json", &serde_json::to_vec(&tampered).unwrap());
    assert_refused(&keyward_verify(&server, &tampered, &[public_key], None).await, "the signature does not match");

    // Expired an hour ago (the shortest server lifetime is a minute, so the file is made here).
    let signer = Signer::generate();
    let now = Utc::now().timestamp();
    let old = OfflineClaims { iat: now - 7_200, exp: now - 3_600, ..expected.clone() };
    let expired = write("expired.json", &serde_json::to_vec(&OfflineFile::sign(&old, &signer)).unwrap());
    let signer_key = signer.public_key_base64();
    let signer_key = signer_key.as_str();
    assert_refused(&keyward_verify(&server, &expired, &[signer_key], None).await, "the file expired at");
    let fresh = OfflineClaims { iat: now, exp: now + 3_600, ..expected.clone() };
    let fresh = write("fresh.json", &serde_json::to_vec(&OfflineFile::sign(&fresh, &signer)).unwrap());
    assert!(keyward_verify(&server, &fresh, &[signer_key], None).await.success, "the same key, not expired");

    let malformed = write("malformed.json", b"this is not a license file");
    assert_refused(&keyward_verify(&server, &malformed, &[public_key], None).await, "the file is malformed");
    let truncated = write("truncated.json", &good[..good.len() / 2]);
    assert_refused(&keyward_verify(&server, &truncated, &[public_key], None).await, "the file is malformed: not JSON");
    let missing = dir.path().join("missing.json");
    assert_refused(&keyward_verify(&server, &missing, &[public_key], None).await, "cannot read");
    assert_refused(&keyward_verify(&server, &good_path, &["bm90IGEga2V5"], None).await, "--public-key must be");

    // After a rotation, the old file needs the retired key among those given.
    admin.request(Method::POST, "/signing-keys/rotate", None).await.unwrap();
    let rotated_keys = admin.request(Method::GET, "/public-keys", None).await.unwrap().body;
    let current = rotated_keys["keys"].as_array().unwrap().iter().find(|k| k["status"] == "current").unwrap();
    let current_key = text(current, "public_key");
    assert_ne!(current_key, public_key);
    assert_refused(&keyward_verify(&server, &good_path, &[current_key], None).await, "no public key is known for kid");
    assert!(keyward_verify(&server, &good_path, &[current_key, public_key], None).await.success);
}

// 6. Restart.

async fn signing_keys_and_settings_survive_a_restart(mut server: TestServer) {
    let admin = server.admin().await;
    let fx = Fixture::new(&admin).await;
    let license = fx.license(&admin, true).await;
    let key = text(&license, "key").to_owned();
    let app = server.client().await;
    app.activate(activate(&key, "dev-1")).await.unwrap();
    let old_file = serde_json::to_vec(&app.offline_file(&key, Some("dev-1")).await.unwrap()).unwrap();
    let ring = app.key_ring().unwrap().clone();
    let before = (current_kid(&server.base_url, "production").await, current_kid(&server.base_url, "staging").await);
    admin.request(Method::PATCH, "/settings", Some(&json!({"offline_file_lifetime_secs": 3_600}))).await.unwrap();

    server.restart().await;
    let after = (current_kid(&server.base_url, "production").await, current_kid(&server.base_url, "staging").await);
    assert_eq!(after, before, "the keys are read back, not made anew");
    // An app that pinned the ring before the restart keeps working.
    let pinned = Client::new(&server.base_url).with_key_ring(ring.clone());
    let answer = pinned.validate(validate(&key, Some("dev-1"))).await.expect("the same key signs");
    assert!(answer.valid);
    let file = pinned.offline_file(&key, Some("dev-1")).await.unwrap();
    let claims = OfflineVerifier::new(ring.clone()).verify(&serde_json::to_vec(&file).unwrap(), Some("dev-1")).unwrap();
    assert_eq!(claims.exp - claims.iat, 3_600, "the lifetime setting survived");
    OfflineVerifier::new(ring).verify(&old_file, Some("dev-1")).unwrap();

    // A rotation survives too: the new key stays current, the old one retired.
    let admin = server.admin().await;
    let rotated = admin.request(Method::POST, "/signing-keys/rotate", None).await.unwrap();
    let k2 = text(&rotated.body, "kid").to_owned();
    server.restart().await;
    let (listed, ring) = public_keys(&server.base_url, "production").await;
    assert!(listed.contains(&(k2.clone(), "current".to_owned())), "{listed:?}");
    assert!(listed.contains(&(before.0.clone(), "retired".to_owned())), "{listed:?}");
    let app = Client::new(&server.base_url).with_key_ring(ring);
    let answer = app.validate(validate(&key, Some("dev-1"))).await.unwrap();
    assert_eq!((answer.valid, answer.license.unwrap().status), (true, LicenseStatus::Active));
}

// The cost of the signature, measured: bench/signature_cost.md reports the numbers. Run with
// `cargo test --release -p keyward-server --test signing -- --ignored --nocapture measure_signature_cost`.

/// CPU time, in nanoseconds, spent so far by this process's threads whose names start with one of
/// `prefixes` (from `/proc/self/task/*/schedstat`; Linux only).
fn thread_cpu_ns(prefixes: &[&str]) -> u64 {
    let mut total = 0;
    for task in std::fs::read_dir("/proc/self/task").expect("Linux's /proc").flatten() {
        let Ok(name) = std::fs::read_to_string(task.path().join("comm")) else { continue };
        if prefixes.iter().any(|prefix| name.trim_end().starts_with(prefix)) {
            let schedstat = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
            total += schedstat.split_whitespace().next().and_then(|ns| ns.parse::<u64>().ok()).unwrap_or(0);
        }
    }
    total
}

/// CPU nanoseconds of the calling thread so far (time spent preempted by other work is not counted).
fn this_thread_cpu_ns() -> u64 {
    let schedstat = std::fs::read_to_string("/proc/thread-self/schedstat").expect("Linux's /proc");
    schedstat.split_whitespace().next().and_then(|ns| ns.parse().ok()).expect("a CPU time")
}

/// CPU nanoseconds per call of `work`, over `rounds` calls on this thread.
fn ns_per_call(rounds: u32, mut work: impl FnMut()) -> f64 {
    let before = this_thread_cpu_ns();
    for _ in 0..rounds {
        work();
    }
    (this_thread_cpu_ns() - before) as f64 / f64::from(rounds)
}

#[test]
#[ignore = "a measurement, not a check"]
fn measure_signature_cost() {
    use ed25519_dalek::Signer as _;
    use sha2::Digest;
    use std::hint::black_box;
    const ROUNDS: u32 = 20_000;
    const REQUESTS: u32 = 20_000;
    const SERVER_THREADS: [&str; 2] = ["kw-server", "sqlx-sqlite"];

    // The server on a runtime of its own, so its threads' CPU time can be told from the client's.
    let server_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("kw-server")
        .thread_keep_alive(Duration::from_secs(3_600))
        .enable_all()
        .build()
        .unwrap();
    let server = server_runtime.block_on(TestServer::start(common::Backend::Sqlite)).unwrap();
    let client_runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let http = reqwest::Client::new();
    let validate_url = format!("{}/api/v1/validate", server.base_url);
    let (key, body) = client_runtime.block_on(async {
        let admin = server.admin().await;
        admin.request(Method::PATCH, "/settings", Some(&json!({"validate_rate_per_key": 1_000_000}))).await.unwrap();
        let fx = Fixture::new(&admin).await;
        let license = fx.license(&admin, true).await;
        let key = text(&license, "key").to_owned();
        server.client().await.activate(activate(&key, "dev-1")).await.unwrap();
        let nonce = keyward_client::new_nonce();
        let answer = post_json(
            &Client::new(&server.base_url),
            "/validate",
            &json!({"key": key, "fingerprint": "dev-1", "nonce": nonce}),
        )
        .await;
        assert_eq!(answer.status, 200);
        (key, answer.body)
    });
    let nonce = keyward_client::new_nonce();
    println!("a validate answer (fingerprint given, activated): {} bytes", body.len());

    // (a) Ed25519 alone, on that body.
    let signer = Signer::generate();
    let path = "/api/v1/validate";
    let message = keyward_core::signature::signed_message("POST", path, 200, &nonce, &body);
    let header = signer.sign_answer("POST", path, 200, &nonce, &body);
    let ring = signer.key_ring();
    let sign_answer = ns_per_call(ROUNDS, || {
        black_box(signer.sign_answer("POST", black_box(path), 200, &nonce, black_box(&body)));
    });
    let sign_raw = ns_per_call(ROUNDS, || {
        black_box(signer.key.sign(black_box(&message)));
    });
    let sign_empty = ns_per_call(ROUNDS, || {
        black_box(signer.key.sign(black_box(b"")));
    });
    let expand = ns_per_call(ROUNDS, || {
        black_box(sha2::Sha512::digest(black_box(signer.key.as_bytes())));
    });
    let verify = ns_per_call(ROUNDS, || {
        verify_answer(&ring, black_box(&header), "POST", path, 200, &nonce, black_box(&body)).unwrap();
    });
    println!("signed message: {} bytes", message.len());
    println!("Signer::sign_answer (message + Ed25519 + base64 + header text): {sign_answer:.0} ns");
    println!("SigningKey::sign over the signed message:                      {sign_raw:.0} ns");
    println!("SigningKey::sign over an empty message (the fixed part):       {sign_empty:.0} ns");
    println!("SHA-512 of the 32-byte seed (the expansion redone per sign):   {expand:.0} ns");
    println!("verify_answer (parse header + Ed25519 verify_strict):          {verify:.0} ns");

    // (b) The server's CPU time per request, over sequential requests on one connection.
    let server_cpu_per_request = |make: &dyn Fn() -> reqwest::RequestBuilder| {
        client_runtime.block_on(async {
            for _ in 0..1_000 {
                assert!(make().send().await.unwrap().status().is_success());
            }
            let before = thread_cpu_ns(&SERVER_THREADS);
            let started = std::time::Instant::now();
            for _ in 0..REQUESTS {
                let response = make().send().await.unwrap();
                assert!(response.status().is_success());
                black_box(response.bytes().await.unwrap());
            }
            let wall = started.elapsed().as_nanos() as f64 / f64::from(REQUESTS);
            // The validation recorder writes behind: let its last batch land in the count.
            tokio::time::sleep(Duration::from_secs(2)).await;
            ((thread_cpu_ns(&SERVER_THREADS) - before) as f64 / f64::from(REQUESTS), wall)
        })
    };
    let validate_request = || {
        let body = json!({"key": key, "fingerprint": "dev-1", "nonce": keyward_client::new_nonce()});
        http.post(&validate_url).header(CONTENT_TYPE, "application/json").body(body.to_string())
    };
    let (validate_cpu, validate_wall) = server_cpu_per_request(&validate_request);
    let public_keys_url = format!("{}/api/v1/public-keys", server.base_url);
    let (keys_cpu, keys_wall) = server_cpu_per_request(&|| http.get(&public_keys_url));
    let healthz_url = format!("{}/healthz", server.base_url);
    let (healthz_cpu, healthz_wall) = server_cpu_per_request(&|| http.get(&healthz_url));
    println!("server CPU per request over {REQUESTS} sequential requests (wall per request in brackets):");
    println!("  POST /api/v1/validate     {validate_cpu:.0} ns  ({validate_wall:.0} ns)");
    println!("  GET  /api/v1/public-keys  {keys_cpu:.0} ns  ({keys_wall:.0} ns)  signed, no store");
    println!("  GET  /healthz             {healthz_cpu:.0} ns  ({healthz_wall:.0} ns)  unsigned floor");
    println!("signing's share of a validate: {:.1} %", 100.0 * sign_answer / validate_cpu);
    drop(client_runtime);
    server_runtime.block_on(async move {
        let mut server = server;
        server.stop().await;
    });
}
