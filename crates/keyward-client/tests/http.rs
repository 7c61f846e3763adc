//! The SDK over real HTTP: a tiny axum server answers with bodies signed by a real `Signer`
//! (or deliberately mis-signed), and the client must accept exactly the genuine answers.
//! keyward's own behaviour is tested against the real server in keyward-server's tests.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use chrono::{TimeZone, Utc};
use keyward_client::api::{
    ActivateAnswer, ActivateRequest, ActivationSummary, DeactivateAnswer, ErrorBody, ErrorDetail, LicenseSummary,
    ProductRef, ValidateAnswer, ValidateRequest,
};
use keyward_client::{Client, Error, KeyRing, OfflineClaims, OfflineFile, OfflineVerifier, SignatureError};
use keyward_core::signature::{Signer, HEADER};
use keyward_core::validation::ActivationKind;
use keyward_core::{LicenseStatus, ValidationCode};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

const KEY: &str = "ACME-7QX2M-ABCDE-FGHJK";
const DEVICE: &str = "device-1";

/// What the test server saw.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    path: String,
    query: Option<String>,
    headers: HeaderMap,
    body: Bytes,
}

impl Seen {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    fn nonce(&self) -> String {
        self.json()["nonce"].as_str().unwrap_or_default().to_owned()
    }
}

/// How the test server signs its answer.
enum Sign {
    Genuine,
    Omitted,
    ForNonce(String),
    ForPath(String),
    ForBody(Vec<u8>),
    By(Box<Signer>),
}

struct Reply {
    status: u16,
    body: Vec<u8>,
    sign: Sign,
    headers: Vec<(&'static str, String)>,
}

fn reply(status: u16, body: impl serde::Serialize) -> Reply {
    Reply { status, body: serde_json::to_vec(&body).unwrap(), sign: Sign::Genuine, headers: Vec::new() }
}

impl Reply {
    fn signed(mut self, sign: Sign) -> Self {
        self.sign = sign;
        self
    }

    fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_owned()));
        self
    }
}

type Responder = dyn Fn(&Seen) -> Reply + Send + Sync;

#[derive(Clone)]
struct ServerState {
    signer: Arc<Signer>,
    respond: Arc<Responder>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

struct TestServer {
    base: String,
    signer: Arc<Signer>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl TestServer {
    fn ring(&self) -> KeyRing {
        ring_of(&self.signer)
    }

    fn last(&self) -> Seen {
        self.seen.lock().unwrap().last().cloned().expect("the server saw a request")
    }

    fn client(&self) -> Client {
        Client::new(&self.base).with_key_ring(self.ring())
    }
}

fn ring_of(signer: &Signer) -> KeyRing {
    let mut ring = KeyRing::default();
    ring.insert(signer.kid.clone(), signer.key.verifying_key());
    ring
}

async fn serve(respond: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> TestServer {
    let state = ServerState {
        signer: Arc::new(Signer::generate()),
        respond: Arc::new(respond),
        seen: Arc::new(Mutex::new(Vec::new())),
    };
    let server = TestServer { base: String::new(), signer: state.signer.clone(), seen: state.seen.clone() };
    let app = axum::Router::new().fallback(answer).with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    TestServer { base: format!("http://{address}"), ..server }
}

async fn answer(
    State(state): State<ServerState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let seen = Seen { method, path: uri.path().to_owned(), query: uri.query().map(str::to_owned), headers, body };
    let reply = (state.respond)(&seen);
    let nonce = seen.nonce();
    let method = seen.method.as_str();
    let signature = match &reply.sign {
        Sign::Genuine => Some(state.signer.sign_answer(method, &seen.path, reply.status, &nonce, &reply.body)),
        Sign::Omitted => None,
        Sign::ForNonce(other) => Some(state.signer.sign_answer(method, &seen.path, reply.status, other, &reply.body)),
        Sign::ForPath(other) => Some(state.signer.sign_answer(method, other, reply.status, &nonce, &reply.body)),
        Sign::ForBody(other) => Some(state.signer.sign_answer(method, &seen.path, reply.status, &nonce, other)),
        Sign::By(signer) => Some(signer.sign_answer(method, &seen.path, reply.status, &nonce, &reply.body)),
    };
    state.seen.lock().unwrap().push(seen);
    let mut response = Response::builder().status(reply.status).header("content-type", "application/json");
    if let Some(signature) = signature {
        response = response.header(HEADER, signature);
    }
    for (name, value) in reply.headers {
        response = response.header(name, value);
    }
    response.body(Body::from(reply.body)).unwrap()
}

fn license() -> LicenseSummary {
    LicenseSummary {
        id: "lic_01".into(),
        status: LicenseStatus::Active,
        product: ProductRef { id: "prod_01".into(), name: "Acme Studio".into() },
        customer_email: Some("ada@example.com".into()),
        expires_at: None,
        activation_limit: 3,
        activation_count: 1,
        feature_flags: json!({ "pro": true }),
        last_validated_at: None,
        validation_count: 4,
    }
}

fn activation() -> ActivationSummary {
    let when = Utc.timestamp_opt(1_750_000_000, 0).unwrap();
    ActivationSummary {
        id: "act_01".into(),
        kind: ActivationKind::Device,
        fingerprint: DEVICE.into(),
        name: None,
        platform: None,
        hostname: None,
        created_at: when,
        last_seen_at: when,
    }
}

fn validate_answer(code: ValidationCode, nonce: &str) -> ValidateAnswer {
    let known = code != ValidationCode::LicenseNotFound;
    ValidateAnswer {
        valid: code == ValidationCode::Valid,
        code,
        detail: code.detail().into(),
        license: known.then(license),
        activation: None,
        in_grace: None,
        nonce: Some(nonce.to_owned()),
        ts: Utc::now(),
    }
}

fn error(code: &str, message: &str) -> ErrorBody {
    ErrorBody { error: ErrorDetail { code: code.into(), message: message.into(), field: None } }
}

fn validate_request() -> ValidateRequest {
    ValidateRequest { key: KEY.into(), fingerprint: Some(DEVICE.into()), ..Default::default() }
}

// ---- the license API ----

#[tokio::test]
async fn a_genuine_valid_answer_is_accepted() {
    let server = serve(|seen| reply(200, validate_answer(ValidationCode::Valid, &seen.nonce()))).await;
    let client = server.client().with_token("kw_admin_token");
    let answer = client.validate(validate_request()).await.expect("a genuine answer");
    assert!(answer.valid);
    assert_eq!(answer.license.unwrap().id, "lic_01");

    let seen = server.last();
    assert_eq!((seen.method.as_str(), seen.path.as_str()), ("POST", "/api/v1/validate"));
    let body = seen.json();
    assert_eq!((body["key"].as_str(), body["fingerprint"].as_str()), (Some(KEY), Some(DEVICE)));
    let nonce = URL_SAFE_NO_PAD.decode(seen.nonce()).expect("a base64url nonce");
    assert!(nonce.len() >= 16);
    assert!(seen.headers.get("authorization").is_none(), "the token is for admin calls only");
}

#[tokio::test]
async fn every_call_sends_a_fresh_nonce_replacing_any_given() {
    let server = serve(|seen| reply(200, validate_answer(ValidationCode::Valid, &seen.nonce()))).await;
    let client = server.client();
    let stale = ValidateRequest { nonce: Some("chosen-by-caller".into()), ..validate_request() };
    client.validate(stale.clone()).await.unwrap();
    let first = server.last().nonce();
    client.validate(stale).await.unwrap();
    let second = server.last().nonce();
    assert_ne!(first, second);
    assert_ne!(first, "chosen-by-caller");
}

#[tokio::test]
async fn a_refused_key_is_an_answer_not_an_error() {
    let server = serve(|seen| reply(200, validate_answer(ValidationCode::LicenseSuspended, &seen.nonce()))).await;
    let answer = server.client().validate(validate_request()).await.unwrap();
    assert!(!answer.valid);
    assert_eq!(answer.code, ValidationCode::LicenseSuspended);
}

#[tokio::test]
async fn an_unknown_key_is_a_404_answer_that_is_not_valid() {
    let server = serve(|seen| reply(404, validate_answer(ValidationCode::LicenseNotFound, &seen.nonce()))).await;
    let answer = server.client().validate(validate_request()).await.unwrap();
    assert!(!answer.valid);
    assert_eq!(answer.code, ValidationCode::LicenseNotFound);
}

#[tokio::test]
async fn a_404_claiming_validity_is_refused() {
    let server = serve(|seen| reply(404, validate_answer(ValidationCode::Valid, &seen.nonce()))).await;
    assert!(server.client().validate(validate_request()).await.is_err());
}

#[tokio::test]
async fn a_404_error_body_is_an_api_error() {
    let server = serve(|_| reply(404, error("ENVIRONMENT_NOT_FOUND", "no such environment"))).await;
    let err = server.client().validate(validate_request()).await.unwrap_err();
    assert_eq!((err.status(), err.code()), (Some(404), Some("ENVIRONMENT_NOT_FOUND")));
}

#[tokio::test]
async fn staging_answers_are_signed_over_the_staging_path() {
    let server = serve(|seen| reply(200, validate_answer(ValidationCode::Valid, &seen.nonce()))).await;
    let client = server.client().environment("staging");
    assert!(client.validate(validate_request()).await.unwrap().valid);
    assert_eq!(server.last().path, "/env/staging/api/v1/validate");

    let misrouted = serve(|seen| {
        reply(200, validate_answer(ValidationCode::Valid, &seen.nonce()))
            .signed(Sign::ForPath("/api/v1/validate".into()))
    })
    .await;
    let err = misrouted.client().environment("staging").validate(validate_request()).await.unwrap_err();
    assert!(matches!(err, Error::Signature(SignatureError::Mismatch)), "{err:?}");
}

#[tokio::test]
async fn a_tampered_body_is_refused() {
    let server = serve(|seen| {
        let genuine = serde_json::to_vec(&validate_answer(ValidationCode::LicenseRevoked, &seen.nonce())).unwrap();
        let forged = serde_json::to_vec(&validate_answer(ValidationCode::Valid, &seen.nonce())).unwrap();
        Reply { status: 200, body: forged, sign: Sign::ForBody(genuine), headers: Vec::new() }
    })
    .await;
    let err = server.client().validate(validate_request()).await.unwrap_err();
    assert!(matches!(err, Error::Signature(SignatureError::Mismatch)), "{err:?}");
}

#[tokio::test]
async fn a_replayed_answer_is_refused() {
    // A genuine answer recorded for an earlier request: signed for, and echoing, the old nonce.
    let server = serve(|_| {
        reply(200, validate_answer(ValidationCode::Valid, "an-earlier-nonce"))
            .signed(Sign::ForNonce("an-earlier-nonce".into()))
    })
    .await;
    let err = server.client().validate(validate_request()).await.unwrap_err();
    assert!(matches!(err, Error::Signature(SignatureError::Mismatch)), "{err:?}");

    // Without signature checks the echoed nonce still gives the replay away.
    let unchecked = Client::new(&server.base).require_signatures(false);
    assert!(matches!(unchecked.validate(validate_request()).await, Err(Error::Forged(_))));
}

#[tokio::test]
async fn an_answer_echoing_another_nonce_is_forged_even_when_signed() {
    let server = serve(|_| reply(200, validate_answer(ValidationCode::Valid, "someone-elses"))).await;
    let err = server.client().validate(validate_request()).await.unwrap_err();
    assert!(matches!(err, Error::Forged(_)), "{err:?}");
}

#[tokio::test]
async fn an_unsigned_answer_is_forged() {
    let server =
        serve(|seen| reply(200, validate_answer(ValidationCode::Valid, &seen.nonce())).signed(Sign::Omitted)).await;
    let err = server.client().validate(validate_request()).await.unwrap_err();
    assert!(matches!(err, Error::Forged(_)), "{err:?}");
}

#[tokio::test]
async fn an_answer_signed_by_an_unknown_key_is_refused() {
    let mut stranger = Signer::generate();
    stranger.kid = "not-in-the-ring".into();
    let stranger = Arc::new(Mutex::new(Some(stranger)));
    let server = serve(move |seen| {
        let signer = stranger.lock().unwrap().take().expect("one request");
        reply(200, validate_answer(ValidationCode::Valid, &seen.nonce())).signed(Sign::By(Box::new(signer)))
    })
    .await;
    let err = server.client().validate(validate_request()).await.unwrap_err();
    assert!(
        matches!(err, Error::Signature(SignatureError::UnknownKey(ref kid)) if kid == "not-in-the-ring"),
        "{err:?}"
    );
}

#[tokio::test]
async fn signatures_are_only_skipped_when_the_caller_says_so() {
    let server =
        serve(|seen| reply(200, validate_answer(ValidationCode::Valid, &seen.nonce())).signed(Sign::Omitted)).await;
    // No key ring: refused before the answer is trusted, not waved through.
    let err = Client::new(&server.base).validate(validate_request()).await.unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err:?}");
    let err = Client::new(&server.base).require_signatures(true).validate(validate_request()).await.unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err:?}");
    assert!(server.client().require_signatures(false).validate(validate_request()).await.unwrap().valid);
    assert!(Client::new(&server.base).require_signatures(false).validate(validate_request()).await.unwrap().valid);
}

#[tokio::test]
async fn a_new_activation_is_created_and_a_repeated_one_is_not() {
    let calls = Arc::new(Mutex::new(0));
    let server = serve(move |seen| {
        let mut calls = calls.lock().unwrap();
        *calls += 1;
        let body =
            ActivateAnswer { activation: activation(), license: license(), nonce: Some(seen.nonce()), ts: Utc::now() };
        reply(if *calls == 1 { 201 } else { 200 }, body)
    })
    .await;
    let client = server.client();
    let request = ActivateRequest {
        key: KEY.into(),
        fingerprint: DEVICE.into(),
        name: Some("Ada's laptop".into()),
        ..Default::default()
    };
    let first = client.activate(request.clone()).await.unwrap();
    assert!(first.created);
    assert_eq!(first.answer.activation.fingerprint, DEVICE);
    let seen = server.last();
    assert_eq!(seen.path, "/api/v1/activate");
    assert_eq!(seen.json()["name"], "Ada's laptop");
    assert!(!client.activate(request).await.unwrap().created);
}

#[tokio::test]
async fn a_refused_activation_is_a_signed_api_error() {
    let server =
        serve(|_| reply(409, error("ACTIVATION_LIMIT_EXCEEDED", "the license has reached its activation limit"))).await;
    let request = ActivateRequest { key: KEY.into(), fingerprint: DEVICE.into(), ..Default::default() };
    let err = server.client().activate(request).await.unwrap_err();
    assert!(matches!(&err, Error::Api { status: 409, code, .. } if code == "ACTIVATION_LIMIT_EXCEEDED"), "{err:?}");
    assert!(!err.is_unreachable());
}

#[tokio::test]
async fn an_unsigned_refusal_is_forged_not_an_api_error() {
    let server =
        serve(|_| reply(403, error("LICENSE_SUSPENDED", "the license is suspended")).signed(Sign::Omitted)).await;
    let request = ActivateRequest { key: KEY.into(), fingerprint: DEVICE.into(), ..Default::default() };
    assert!(matches!(server.client().activate(request).await, Err(Error::Forged(_))));
}

#[tokio::test]
async fn too_many_requests_tells_when_to_retry() {
    let server = serve(|_| reply(429, error("RATE_LIMITED", "slow down")).header("retry-after", "7")).await;
    let err = server.client().validate(validate_request()).await.unwrap_err();
    assert!(matches!(err, Error::RateLimited { retry_after: Some(7) }), "{err:?}");
    assert!(err.is_unreachable());
}

#[tokio::test]
async fn a_device_is_deactivated() {
    let server = serve(|seen| {
        reply(
            200,
            DeactivateAnswer { deactivated: true, license: license(), nonce: Some(seen.nonce()), ts: Utc::now() },
        )
    })
    .await;
    let answer = server.client().deactivate(KEY, DEVICE).await.unwrap();
    assert!(answer.deactivated);
    let seen = server.last();
    assert_eq!(seen.path, "/api/v1/deactivate");
    assert_eq!((seen.json()["key"].as_str(), seen.json()["fingerprint"].as_str()), (Some(KEY), Some(DEVICE)));
}

fn claims() -> OfflineClaims {
    let now = Utc::now().timestamp();
    OfflineClaims {
        license_id: "lic_01".into(),
        key: KEY.into(),
        product_id: "prod_01".into(),
        customer_email: Some("ada@example.com".into()),
        status: "active".into(),
        feature_flags: json!({ "pro": true }),
        license_expires_at: None,
        fingerprint: Some(DEVICE.into()),
        iat: now,
        exp: now + 86_400,
    }
}

#[tokio::test]
async fn an_offline_file_is_fetched_and_verifies_offline() {
    let file_signer = Arc::new(Mutex::new(None::<Arc<Signer>>));
    let slot = file_signer.clone();
    let server = serve(move |seen| {
        let signer = slot.lock().unwrap().clone().expect("the signer is set before the first request");
        let mut file = serde_json::to_value(OfflineFile::sign(&claims(), &signer)).unwrap();
        file["nonce"] = json!(seen.nonce());
        reply(200, file)
    })
    .await;
    *file_signer.lock().unwrap() = Some(server.signer.clone());
    let file = server.client().offline_file(KEY, Some(DEVICE)).await.unwrap();
    assert_eq!(server.last().path, "/api/v1/offline-file");
    assert_eq!(server.last().json()["fingerprint"], DEVICE);

    let dir = tempfile::tempdir().unwrap();
    let verifier = OfflineVerifier::new(server.ring()).with_state_file(dir.path().join("state.json"));
    let saved = serde_json::to_vec(&file).unwrap();
    let claims = verifier.verify(&saved, Some(DEVICE)).unwrap();
    assert_eq!(claims.license_id, "lic_01");
    assert!(verifier.last_seen().unwrap().is_some());
}

#[tokio::test]
async fn an_offline_file_wrapped_in_an_object_is_unwrapped() {
    let signer = Arc::new(Signer::generate());
    let file = OfflineFile::sign(&claims(), &signer);
    let expected = file.clone();
    let server = serve(move |seen| reply(200, json!({ "file": file, "nonce": seen.nonce() }))).await;
    assert_eq!(server.client().offline_file(KEY, None).await.unwrap(), expected);
    assert!(server.last().json().get("fingerprint").is_none());
}

#[tokio::test]
async fn the_key_ring_is_fetched_without_a_token_and_then_trusted() {
    let public = Arc::new(Mutex::new(Value::Null));
    let keys = public.clone();
    let server = serve(move |seen| {
        if seen.path.ends_with("/public-keys") {
            reply(200, keys.lock().unwrap().clone()).signed(Sign::Omitted)
        } else {
            reply(200, validate_answer(ValidationCode::Valid, &seen.nonce()))
        }
    })
    .await;
    *public.lock().unwrap() = json!({ "keys": [{
        "kid": server.signer.kid,
        "alg": "ed25519",
        "public_key": STANDARD.encode(server.signer.key.verifying_key().to_bytes()),
        "status": "current",
    }] });
    let client = Client::new(&server.base).environment("staging").with_token("kw_admin");
    let ring = client.fetch_key_ring().await.unwrap();
    let seen = server.last();
    assert_eq!((seen.method.as_str(), seen.path.as_str()), ("GET", "/env/staging/api/v1/public-keys"));
    assert!(seen.headers.get("authorization").is_none());
    assert!(ring.keys.contains_key(&server.signer.kid));
    assert!(client.with_key_ring(ring).validate(validate_request()).await.unwrap().valid);
}

#[tokio::test]
async fn an_empty_or_failed_key_ring_answer_is_an_error() {
    let server = serve(|seen| {
        if seen.path.starts_with("/env/") {
            reply(503, error("UNAVAILABLE", "try later"))
        } else {
            reply(200, json!({ "keys": [] }))
        }
    })
    .await;
    assert!(matches!(Client::new(&server.base).fetch_key_ring().await, Err(Error::Decode(_))));
    let err = Client::new(&server.base).environment("staging").fetch_key_ring().await.unwrap_err();
    assert_eq!(err.status(), Some(503));
}

#[tokio::test]
async fn an_unreachable_server_is_an_http_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let err = Client::new(format!("http://{address}")).validate(validate_request()).await.unwrap_err();
    assert!(matches!(err, Error::Http(_)), "{err:?}");
    assert!(err.is_unreachable());
}

// ---- the admin API ----

#[tokio::test]
async fn request_answers_every_status_and_sends_the_token() {
    let server = serve(|seen| match seen.path.as_str() {
        "/api/v1/licenses" => reply(200, json!({ "data": [], "next_cursor": null, "total": 0 })),
        _ => reply(404, error("NOT_FOUND", "license not found")),
    })
    .await;
    let client = Client::new(&server.base).with_token("kw_secret");
    let listed = client.request(keyward_client::Method::GET, "/licenses?status=active", None).await.unwrap();
    assert_eq!(listed.status, 200);
    assert_eq!(listed.body["total"], 0);
    let seen = server.last();
    assert_eq!(seen.query.as_deref(), Some("status=active"));
    assert_eq!(seen.headers["authorization"], "Bearer kw_secret");

    let missing = client.request(keyward_client::Method::GET, "/licenses/lic_nope", None).await.unwrap();
    assert_eq!(missing.status, 404);
    assert_eq!(missing.error_code(), Some("NOT_FOUND"));
    assert_eq!(missing.body["error"]["code"], "NOT_FOUND");
}

#[tokio::test]
async fn raw_sends_exact_bytes_and_keeps_a_body_that_is_not_json() {
    let server =
        serve(|_| Reply { status: 400, body: b"\xff not json".to_vec(), sign: Sign::Omitted, headers: Vec::new() })
            .await;
    let client = Client::new(&server.base).environment("staging");
    let sent: &[u8] = b"{\"name\": \"\xc3\x28\"";
    let answer =
        client.raw(keyward_client::Method::POST, "/products", "application/json", sent.to_vec()).await.unwrap();
    assert_eq!(answer.status, 400);
    assert_eq!(answer.body, Value::Null);
    assert_eq!(&answer.raw[..], b"\xff not json");
    let seen = server.last();
    assert_eq!(seen.path, "/env/staging/api/v1/products");
    assert_eq!(&seen.body[..], sent);
    assert_eq!(seen.headers["content-type"], "application/json");
}

#[tokio::test]
async fn typed_helpers_send_the_contract_bodies_and_paths() {
    let server = serve(|seen| {
        let echo =
            json!({ "method": seen.method.as_str(), "path": seen.path, "query": seen.query, "body": seen.json() });
        match (seen.method.as_str(), seen.path.as_str()) {
            ("POST", "/api/v1/customers") => reply(
                422,
                ErrorBody {
                    error: ErrorDetail {
                        code: "INVALID_FIELD".into(),
                        message: "email is not valid".into(),
                        field: Some("email".into()),
                    },
                },
            ),
            ("DELETE", _) => reply(204, Value::Null),
            ("POST", _) => reply(201, echo),
            _ => reply(200, echo),
        }
    })
    .await;
    let client = Client::new(&server.base).with_token("kw_t");

    let product = client.create_product("Acme Studio").await.unwrap();
    assert_eq!(product["path"], "/api/v1/products");
    assert_eq!(product["body"], json!({ "name": "Acme Studio" }));

    let err = client.create_customer("Ada", "not-an-email").await.unwrap_err();
    assert!(matches!(&err, Error::Api { status: 422, field: Some(field), .. } if field == "email"), "{err:?}");
    assert_eq!(server.last().json(), json!({ "name": "Ada", "email": "not-an-email" }));

    let generator = json!({ "product": "prod_1", "name": "std", "format": { "type": "uuid" }, "activation_limit": 3 });
    assert_eq!(client.create_generator(&generator).await.unwrap()["body"], generator);
    let license = json!({ "product": "prod_1", "generator": "gen_1" });
    assert_eq!(client.create_license(&license).await.unwrap()["path"], "/api/v1/licenses");

    assert_eq!(client.license("KEY WITH/SLASH").await.unwrap()["path"], "/api/v1/licenses/KEY%20WITH%2FSLASH");
    let action = client.license_action("lic_1", "suspend", &json!({ "reason": "chargeback" })).await.unwrap();
    assert_eq!(
        (action["path"].as_str(), action["body"]["reason"].as_str()),
        (Some("/api/v1/licenses/lic_1/actions/suspend"), Some("chargeback"))
    );
    let edited = client.edit_license("lic_1", &json!({ "activation_limit": 5 })).await.unwrap();
    assert_eq!((edited["method"].as_str(), edited["body"]["activation_limit"].as_i64()), (Some("PATCH"), Some(5)));

    assert_eq!(client.delete_license("lic_1", true).await.unwrap(), Value::Null);
    assert_eq!(server.last().query.as_deref(), Some("force=true"));
    client.delete_license("lic_1", false).await.unwrap();
    assert_eq!(server.last().query, None);

    let listed = client.licenses(&[("q", "ada@example.com"), ("sort", "created_at")]).await.unwrap();
    assert_eq!(listed["query"], "q=ada%40example.com&sort=created_at");

    let generated = client.generate("gen_1", 10, Some("cus_1")).await.unwrap();
    assert_eq!(generated["path"], "/api/v1/generators/gen_1/generate");
    assert_eq!(generated["body"], json!({ "count": 10, "customer": "cus_1" }));
    assert_eq!(client.generate("gen_1", 2, None).await.unwrap()["body"], json!({ "count": 2 }));

    assert_eq!(client.activations("lic_1").await.unwrap()["path"], "/api/v1/licenses/lic_1/activations");
    let token = client.create_token("ci", "read_only", "staging").await.unwrap();
    assert_eq!(token["body"], json!({ "name": "ci", "role": "read_only", "environment": "staging" }));
    assert_eq!(server.last().headers["authorization"], "Bearer kw_t");
}
