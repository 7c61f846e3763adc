//! The license API, authenticated by the key itself: validate, activate, deactivate, offline files.
//! Every answer, errors included, is signed over method, path, status, nonce and body.

use crate::cache::Snapshot;
use crate::error::ApiError;
use crate::extract::{read_body, ClientIp, Env, JsonBody, OriginalPath};
use crate::keys::PublicKey;
use crate::limits::RetryAfter;
use crate::state::AppState;
use crate::views::{activation_summary, license_summary};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use chrono::{DateTime, Utc};
use keyward_core::activation::{decide_activation, decide_deactivation, ActivationDecision, ValidityBasis};
use keyward_core::api::{
    ActivateAnswer, ActivateRequest, DeactivateAnswer, DeactivateRequest, ErrorBody, LicenseSummary,
    OfflineFileRequest, ValidateAnswer, ValidateRequest,
};
use keyward_core::ids::{new_id, IdKind};
use keyward_core::offline::{OfflineClaims, OfflineFile};
use keyward_core::signature::HEADER;
use keyward_core::status::effective_status;
use keyward_core::validation::{decide, ActivationKind, ValidationRequest, Verdict};
use keyward_core::values::{Domain, Fingerprint};
use keyward_core::{Refusal, ValidationCode};
use keyward_store::{Activation, ActivationChange, Audit, LicenseChange, LicenseEdit, ValidationRecord};
use serde::Serialize;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

const MAX_NONCE: usize = 256;
const MAX_KEY: usize = 512;

/// Builds this request's signed answers.
struct Answer<'a> {
    state: &'a AppState,
    environment: &'a str,
    path: &'a str,
    nonce: String,
}

impl Answer<'_> {
    fn json<T: Serialize>(&self, status: StatusCode, body: &T) -> Response {
        let bytes = serde_json::to_vec(body).unwrap_or_default();
        let signature = self.state.keys.current(self.environment).map(|signer| {
            HeaderValue::from_str(&signer.sign_answer("POST", self.path, status.as_u16(), &self.nonce, &bytes))
        });
        let mut response = (status, [(axum::http::header::CONTENT_TYPE, "application/json")], bytes).into_response();
        if let Some(Ok(value)) = signature {
            response.headers_mut().insert(HEADER, value);
        }
        response
    }

    fn error(&self, err: ApiError) -> Response {
        let mut response = self.json(err.status, &err.body());
        if let Some(seconds) = err.retry_after {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

/// Reads and parses the body, keeping the nonce for the signature even when the rest is refused.
async fn parse<T: serde::de::DeserializeOwned + HasNonce>(
    req: Request,
    answer: &mut Answer<'_>,
) -> Result<T, Response> {
    let bytes = read_body(req).await.map_err(|e| answer.error(e))?;
    let parsed: T = JsonBody::parse(&bytes).map_err(|e| answer.error(e))?;
    let nonce = parsed.nonce().unwrap_or_default();
    // A line break in the nonce would let one signature vouch for another nonce and body.
    if nonce.len() > MAX_NONCE || nonce.chars().any(char::is_control) {
        let why = format!("must be at most {MAX_NONCE} characters without control characters");
        return Err(answer.error(ApiError::invalid("nonce", why)));
    }
    answer.nonce = nonce.to_owned();
    if parsed.key().is_empty() {
        return Err(answer.error(ApiError::invalid("key", "must not be empty")));
    }
    Ok(parsed)
}

trait HasNonce {
    fn nonce(&self) -> Option<&str>;
    fn key(&self) -> &str;
}

macro_rules! has_nonce {
    ($($t:ty),*) => {$(
        impl HasNonce for $t {
            fn nonce(&self) -> Option<&str> { self.nonce.as_deref() }
            fn key(&self) -> &str { &self.key }
        }
    )*};
}
has_nonce!(ValidateRequest, ActivateRequest, DeactivateRequest, OfflineFileRequest);

/// Reads the request, runs `handle` on it, and signs whatever comes out, errors included.
async fn answer<T, B, F, Fut>(state: &AppState, environment: &str, path: &str, req: Request, handle: F) -> Response
where
    T: serde::de::DeserializeOwned + HasNonce,
    B: Serialize,
    F: FnOnce(T) -> Fut,
    Fut: std::future::Future<Output = Result<(StatusCode, B), ApiError>>,
{
    let mut answer = Answer { state, environment, path, nonce: String::new() };
    let request = match parse(req, &mut answer).await {
        Ok(request) => request,
        Err(response) => return response,
    };
    match handle(request).await {
        Ok((status, body)) => answer.json(status, &body),
        Err(err) => answer.error(err),
    }
}

fn field<T>(name: &str, parsed: Result<T, keyward_core::values::InvalidValue>) -> Result<T, ApiError> {
    parsed.map_err(|e| ApiError::invalid(name, e))
}

/// The license for `key`, from memory; `None` when no license has it. Counts the request
/// against the key's rate, or an unknown key against the client's.
async fn lookup(
    state: &AppState,
    environment: &str,
    key: &str,
    ip: Option<IpAddr>,
) -> Result<Option<Arc<Snapshot>>, ApiError> {
    state.limits.check_ip(ip).map_err(|RetryAfter(s)| ApiError::rate_limited(s))?;
    let found =
        if key.len() > MAX_KEY { None } else { state.licenses.get(state.store.as_ref(), environment, key).await? };
    let settings = state.settings(environment);
    let counted = match &found {
        Some(_) => state.limits.check_key(environment, &settings, key),
        None => state.limits.check_not_found(environment, &settings, ip),
    };
    counted.map_err(|RetryAfter(s)| ApiError::rate_limited(s))?;
    Ok(found)
}

#[utoipa::path(post, path = "/validate", tag = "license API", request_body = ValidateRequest,
    responses((status = 200, body = ValidateAnswer, description = "a known key, valid or not"),
              (status = 404, body = ValidateAnswer, description = "LICENSE_NOT_FOUND"),
              (status = 422, body = ErrorBody)))]
pub async fn validate(
    State(state): State<AppState>,
    Env(environment): Env,
    ClientIp(ip): ClientIp,
    Extension(OriginalPath(path)): Extension<OriginalPath>,
    req: Request,
) -> Response {
    let (state, environment) = (&state, environment.as_str());
    answer(state, environment, &path, req, |request: ValidateRequest| async move {
        validate_key(state, environment, ip, &request).await
    })
    .await
}

async fn validate_key(
    state: &AppState,
    environment: &str,
    ip: Option<IpAddr>,
    request: &ValidateRequest,
) -> Result<(StatusCode, ValidateAnswer), ApiError> {
    let fingerprint =
        request.fingerprint.as_deref().map(|f| field("fingerprint", Fingerprint::parse(f))).transpose()?;
    let domain = request.domain.as_deref().map(|d| field("domain", Domain::parse(d))).transpose()?;
    if fingerprint.is_some() && domain.is_some() {
        return Err(ApiError::invalid("domain", "cannot be given together with a fingerprint"));
    }
    let now = Utc::now();
    let nonce = request.nonce.clone();
    let Some(snapshot) = lookup(state, environment, &request.key, ip).await? else {
        let code = ValidationCode::LicenseNotFound;
        let body = ValidateAnswer {
            valid: false,
            code,
            detail: code.detail().into(),
            license: None,
            activation: None,
            in_grace: None,
            nonce,
            ts: now,
        };
        return Ok((StatusCode::NOT_FOUND, body));
    };
    let grace = state.grace(environment);
    let facts = snapshot.facts();
    let activations: Vec<_> = snapshot.activations.iter().map(Activation::as_ref).collect();
    let asked = ValidationRequest {
        fingerprint: fingerprint.as_ref().map(Fingerprint::as_str),
        domain: domain.as_ref().map(Domain::as_str),
        product: request.product.as_deref(),
    };
    let verdict = decide(&facts, &activations, &asked, grace, now);
    let count = || snapshot.validations_since_load.fetch_add(1, Ordering::Relaxed) + 1;
    let mut counted = None;
    let (code, status, in_grace, activation, fresh) = match verdict {
        Verdict::Answer { code, status, in_grace, activation } => {
            (code, status, in_grace, activation.map(|i| activation_summary(&snapshot.activations[i])), None)
        }
        Verdict::ActivateDomain { status, in_grace } => {
            let domain = domain.as_ref().map(Domain::as_str).unwrap_or_default();
            let audit = license_audit(&request.key, ip, "activation.created");
            let edit = activation_edit(ActivationKind::Domain, domain, &ActivateRequest::default(), ip, grace, now);
            match state.store.change_license(environment, &snapshot.id(), edit, &audit).await {
                Ok(changed) => {
                    // Counted before the snapshot is forgotten, so the one read afresh carries it.
                    counted = Some(count());
                    state.licenses.invalidate(environment, &request.key);
                    let added = match &changed.activation {
                        ActivationChange::Add(a) => Some(activation_summary(a)),
                        _ => changed.activations.iter().find(|a| a.fingerprint == domain).map(activation_summary),
                    };
                    (ValidationCode::Valid, status, in_grace, added, Some(changed.after))
                }
                Err(keyward_store::StoreError::Refused(Refusal::ActivationLimitExceeded)) => {
                    (ValidationCode::DomainLimitReached, status, in_grace, None, None)
                }
                Err(keyward_store::StoreError::Refused(Refusal::State(code))) => (code, status, in_grace, None, None),
                Err(err) => return Err(err.into()),
            }
        }
    };
    let extra = counted.unwrap_or_else(count);
    state.recorder.record(ValidationRecord {
        environment: environment.to_owned(),
        license_id: snapshot.id(),
        at: now,
        code,
        fingerprint: fingerprint.map(|f| f.as_str().to_owned()).or(domain.map(|d| d.as_str().to_owned())),
        ip: ip.map(|ip| ip.to_string()),
    });
    let summary = match &fresh {
        // The stored count lacks this node's queued validations; the snapshot's lacks other nodes'.
        Some(after) => license_summary(
            after,
            status,
            (snapshot.validation_count + extra - after.validation_count).max(1),
            Some(now),
        ),
        None => snapshot.summary(status, extra, Some(now)),
    };
    let body = ValidateAnswer {
        valid: code == ValidationCode::Valid,
        code,
        detail: code.detail().into(),
        license: Some(summary),
        activation,
        in_grace: Some(in_grace),
        nonce,
        ts: now,
    };
    Ok((StatusCode::OK, body))
}

/// An audit entry for a write made by the license API on behalf of a key's holder.
fn license_audit(key: &str, ip: Option<IpAddr>, action: &str) -> Audit {
    Audit {
        actor: format!("license:{}", keyward_core::values::redact_key(key)),
        ip: ip.map(|ip| ip.to_string()),
        action: action.to_owned(),
    }
}

/// The change one activation makes, decided by core on the locked license.
fn activation_edit(
    kind: ActivationKind,
    fingerprint: &str,
    details: &ActivateRequest,
    ip: Option<IpAddr>,
    grace: chrono::Duration,
    now: DateTime<Utc>,
) -> LicenseEdit {
    let fingerprint = fingerprint.to_owned();
    let (name, platform, hostname) = (details.name.clone(), details.platform.clone(), details.hostname.clone());
    Box::new(move |license, activations| {
        let (status, _) = effective_status(license.status, license.expires_at, grace, now);
        let refs: Vec<_> = activations.iter().map(Activation::as_ref).collect();
        let decision =
            decide_activation(status, license.activation_limit, &refs, kind, &fingerprint, license.ever_activated)?;
        let mut after = license.clone();
        let activation = match decision {
            ActivationDecision::AlreadyActivated { index } => {
                ActivationChange::Touch { id: activations[index].id.clone(), at: now }
            }
            ActivationDecision::Activate { status, first } => {
                after.status = status;
                after.ever_activated = true;
                after.updated_at = now;
                if first {
                    after.first_activated_at = Some(now);
                    if let Some(validity) = license.validity {
                        let validity: keyward_core::activation::Validity = validity.into();
                        after.expires_at = validity.expiry_on(ValidityBasis::FirstActivation, now, license.expires_at);
                    }
                }
                ActivationChange::Add(Activation {
                    id: new_id(IdKind::Activation),
                    license_id: license.id.clone(),
                    kind,
                    fingerprint,
                    name,
                    platform,
                    hostname,
                    ip: ip.map(|ip| ip.to_string()),
                    created_at: now,
                    last_seen_at: now,
                })
            }
        };
        Ok(LicenseChange { license: after, activation })
    })
}

fn optional_text(name: &str, value: &Option<String>) -> Result<(), ApiError> {
    match value {
        Some(text) if text.chars().count() > 255 || text.chars().any(char::is_control) => {
            Err(ApiError::invalid(name, "must be at most 255 characters without control characters"))
        }
        _ => Ok(()),
    }
}

#[utoipa::path(post, path = "/activate", tag = "license API", request_body = ActivateRequest,
    responses((status = 201, body = ActivateAnswer, description = "a new activation"),
              (status = 200, body = ActivateAnswer, description = "the device was already activated"),
              (status = 403, body = ErrorBody, description = "the license's state refuses activations"),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "ACTIVATION_LIMIT_EXCEEDED"),
              (status = 422, body = ErrorBody)))]
pub async fn activate(
    State(state): State<AppState>,
    Env(environment): Env,
    ClientIp(ip): ClientIp,
    Extension(OriginalPath(path)): Extension<OriginalPath>,
    req: Request,
) -> Response {
    let (state, environment) = (&state, environment.as_str());
    answer(state, environment, &path, req, |request: ActivateRequest| async move {
        activate_device(state, environment, ip, &request).await
    })
    .await
}

async fn activate_device(
    state: &AppState,
    environment: &str,
    ip: Option<IpAddr>,
    request: &ActivateRequest,
) -> Result<(StatusCode, ActivateAnswer), ApiError> {
    let fingerprint = field("fingerprint", Fingerprint::parse(&request.fingerprint))?;
    optional_text("name", &request.name)?;
    optional_text("platform", &request.platform)?;
    optional_text("hostname", &request.hostname)?;
    let Some(snapshot) = lookup(state, environment, &request.key, ip).await? else {
        return Err(ApiError::license_not_found());
    };
    let now = Utc::now();
    let grace = state.grace(environment);
    let edit = activation_edit(ActivationKind::Device, fingerprint.as_str(), request, ip, grace, now);
    let audit = license_audit(&request.key, ip, "license.activated");
    let changed =
        state.store.change_license(environment, &snapshot.id(), edit, &audit).await.map_err(|err| match err {
            keyward_store::StoreError::NotFound => ApiError::license_not_found(),
            keyward_store::StoreError::Refused(refusal) => ApiError::refused_to_device(refusal),
            other => other.into(),
        })?;
    state.licenses.invalidate(environment, &request.key);
    let (status, activation) = match &changed.activation {
        ActivationChange::Add(a) => (StatusCode::CREATED, a.clone()),
        _ => {
            let existing = changed.activations.iter().find(|a| a.fingerprint == fingerprint.as_str()).cloned();
            (StatusCode::OK, existing.ok_or_else(ApiError::internal)?)
        }
    };
    let (license_status, _) = effective_status(changed.after.status, changed.after.expires_at, grace, now);
    let body = ActivateAnswer {
        activation: activation_summary(&activation),
        license: license_summary(&changed.after, license_status, 0, None),
        nonce: request.nonce.clone(),
        ts: now,
    };
    Ok((status, body))
}

#[utoipa::path(post, path = "/deactivate", tag = "license API", request_body = DeactivateRequest,
    responses((status = 200, body = DeactivateAnswer), (status = 404, body = ErrorBody, description = "LICENSE_NOT_FOUND or NOT_ACTIVATED"),
              (status = 422, body = ErrorBody)))]
pub async fn deactivate(
    State(state): State<AppState>,
    Env(environment): Env,
    ClientIp(ip): ClientIp,
    Extension(OriginalPath(path)): Extension<OriginalPath>,
    req: Request,
) -> Response {
    let (state, environment) = (&state, environment.as_str());
    answer(state, environment, &path, req, |request: DeactivateRequest| async move {
        deactivate_device(state, environment, ip, &request).await.map(|body| (StatusCode::OK, body))
    })
    .await
}

async fn deactivate_device(
    state: &AppState,
    environment: &str,
    ip: Option<IpAddr>,
    request: &DeactivateRequest,
) -> Result<DeactivateAnswer, ApiError> {
    let fingerprint = field("fingerprint", Fingerprint::parse(&request.fingerprint))?;
    let Some(snapshot) = lookup(state, environment, &request.key, ip).await? else {
        return Err(ApiError::license_not_found());
    };
    let now = Utc::now();
    let edit: LicenseEdit = {
        let fingerprint = fingerprint.as_str().to_owned();
        Box::new(move |license, activations| {
            let refs: Vec<_> = activations.iter().map(Activation::as_ref).collect();
            let index = decide_deactivation(&refs, &fingerprint)?;
            let mut after = license.clone();
            after.updated_at = now;
            Ok(LicenseChange {
                license: after,
                activation: ActivationChange::Remove { id: activations[index].id.clone() },
            })
        })
    };
    let audit = license_audit(&request.key, ip, "license.deactivated");
    let changed =
        state.store.change_license(environment, &snapshot.id(), edit, &audit).await.map_err(|err| match err {
            keyward_store::StoreError::NotFound => ApiError::license_not_found(),
            keyward_store::StoreError::Refused(refusal) => ApiError::refused_to_device(refusal),
            other => other.into(),
        })?;
    state.licenses.invalidate(environment, &request.key);
    let (status, _) = effective_status(changed.after.status, changed.after.expires_at, state.grace(environment), now);
    Ok(DeactivateAnswer {
        deactivated: true,
        license: license_summary(&changed.after, status, 0, None),
        nonce: request.nonce.clone(),
        ts: now,
    })
}

#[utoipa::path(post, path = "/offline-file", tag = "license API", request_body = OfflineFileRequest,
    responses((status = 200, body = OfflineFile), (status = 403, body = ErrorBody, description = "the license is not in good standing, or NOT_ACTIVATED"),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn offline_file(
    State(state): State<AppState>,
    Env(environment): Env,
    ClientIp(ip): ClientIp,
    Extension(OriginalPath(path)): Extension<OriginalPath>,
    req: Request,
) -> Response {
    let (state, environment) = (&state, environment.as_str());
    answer(state, environment, &path, req, |request: OfflineFileRequest| async move {
        offline_file_for(state, environment, ip, &request).await.map(|file| (StatusCode::OK, file))
    })
    .await
}

async fn offline_file_for(
    state: &AppState,
    environment: &str,
    ip: Option<IpAddr>,
    request: &OfflineFileRequest,
) -> Result<OfflineFile, ApiError> {
    let fingerprint =
        request.fingerprint.as_deref().map(|f| field("fingerprint", Fingerprint::parse(f))).transpose()?;
    let Some(snapshot) = lookup(state, environment, &request.key, ip).await? else {
        return Err(ApiError::license_not_found());
    };
    let now = Utc::now();
    let activations: Vec<_> = snapshot.activations.iter().map(Activation::as_ref).collect();
    let asked = ValidationRequest { fingerprint: fingerprint.as_ref().map(Fingerprint::as_str), ..Default::default() };
    let verdict = decide(&snapshot.facts(), &activations, &asked, state.grace(environment), now);
    let Verdict::Answer { code: ValidationCode::Valid, status, .. } = verdict else {
        let code = verdict.code();
        return Err(ApiError::new(StatusCode::FORBIDDEN, code.as_str(), code.detail()));
    };
    let license = snapshot.summary(status, 0, None);
    offline_file_of(state, environment, &license, &request.key, fingerprint.as_ref().map(Fingerprint::as_str), now)
}

/// Signs an offline file for a license in good standing (also used by the admin API's preview).
pub fn offline_file_of(
    state: &AppState,
    environment: &str,
    license: &LicenseSummary,
    key: &str,
    fingerprint: Option<&str>,
    now: DateTime<Utc>,
) -> Result<OfflineFile, ApiError> {
    let signer = state.keys.current(environment).ok_or_else(ApiError::internal)?;
    let lifetime = state.settings(environment).offline_file_lifetime_secs;
    let claims = OfflineClaims {
        license_id: license.id.clone(),
        key: key.to_owned(),
        product_id: license.product.id.clone(),
        customer_email: license.customer_email.clone(),
        status: license.status.as_str().to_owned(),
        feature_flags: license.feature_flags.clone(),
        license_expires_at: license.expires_at,
        fingerprint: fingerprint.map(str::to_owned),
        iat: now.timestamp(),
        exp: now.timestamp() + lifetime,
    };
    Ok(OfflineFile::sign(&claims, &signer))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PublicKeys {
    pub keys: Vec<PublicKey>,
}

#[utoipa::path(get, path = "/public-keys", tag = "license API",
    responses((status = 200, body = PublicKeys, description = "the keys that sign answers and offline files")))]
pub async fn public_keys(
    State(state): State<AppState>,
    Env(environment): Env,
    Extension(OriginalPath(path)): Extension<OriginalPath>,
) -> Response {
    let body = PublicKeys { keys: state.keys.public_keys(&environment) };
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    let mut response =
        (StatusCode::OK, [(axum::http::header::CONTENT_TYPE, "application/json")], bytes.clone()).into_response();
    if let Some(signer) = state.keys.current(&environment) {
        if let Ok(value) = HeaderValue::from_str(&signer.sign_answer("GET", &path, 200, "", &bytes)) {
            response.headers_mut().insert(HEADER, value);
        }
    }
    response
}
