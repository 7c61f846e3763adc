//! The one error type at the HTTP edge: every failure maps to a status and a code here.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use keyward_core::api::{ErrorBody, ErrorDetail};
use keyward_core::{Refusal, ValidationCode};
use keyward_store::StoreError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
    /// Seconds, for a `429`.
    pub retry_after: Option<u64>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), field: None, retry_after: None }
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub fn rate_limited(retry_after: u64) -> Self {
        let mut err = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED", "too many requests; retry later");
        err.retry_after = Some(retry_after);
        err
    }

    /// A field that failed its check: `422`.
    pub fn invalid(field: impl Into<String>, message: impl std::fmt::Display) -> Self {
        let field = field.into();
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "INVALID_FIELD", format!("{field} {message}")).with_field(field)
    }

    /// A reference to a record that does not exist: `422`.
    pub fn unknown_reference(field: &str, what: &str) -> Self {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "UNKNOWN_REFERENCE",
            format!("no {what} with this id exists in this environment"),
        )
        .with_field(field)
    }

    pub fn not_found(what: &str) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", format!("{what} not found"))
    }

    pub fn internal() -> Self {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", "an internal error occurred; it has been logged")
    }

    /// A refused license change in the admin API: every refusal is a conflict with the state.
    pub fn refused(refusal: Refusal) -> Self {
        let message = refusal.to_string();
        match refusal {
            Refusal::Transition(_) => ApiError::new(StatusCode::CONFLICT, "INVALID_TRANSITION", message),
            Refusal::State(code) => ApiError::new(StatusCode::CONFLICT, code.as_str(), message),
            Refusal::ActivationLimitExceeded => {
                ApiError::new(StatusCode::CONFLICT, "ACTIVATION_LIMIT_EXCEEDED", message)
            }
            Refusal::NotActivated => ApiError::new(StatusCode::NOT_FOUND, "NOT_ACTIVATED", message),
            Refusal::WasActivated => ApiError::new(StatusCode::CONFLICT, "LICENSE_WAS_ACTIVATED", message),
            Refusal::Invalid(message) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "INVALID_FIELD", message),
        }
    }

    /// A refused request of the license API (activate, deactivate): a refused state is `403`.
    pub fn refused_to_device(refusal: Refusal) -> Self {
        match refusal {
            Refusal::State(code) => ApiError::new(StatusCode::FORBIDDEN, code.as_str(), code.detail()),
            other => ApiError::refused(other),
        }
    }

    pub fn license_not_found() -> Self {
        let code = ValidationCode::LicenseNotFound;
        ApiError::new(StatusCode::NOT_FOUND, code.as_str(), code.detail())
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail { code: self.code.to_owned(), message: self.message.clone(), field: self.field.clone() },
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound => ApiError::not_found("record"),
            StoreError::Conflict { code: "INVALID_CURSOR", message } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "INVALID_FIELD", message).with_field("cursor")
            }
            StoreError::Conflict { code: "REFERENCE_NOT_FOUND", message } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "UNKNOWN_REFERENCE", message)
            }
            StoreError::Conflict { code, message } => ApiError::new(StatusCode::CONFLICT, code, message),
            StoreError::DuplicateKey => {
                ApiError::new(StatusCode::CONFLICT, "KEY_TAKEN", "a license with this key exists already")
            }
            StoreError::Refused(refusal) => ApiError::refused(refusal),
            other => {
                tracing::error!(error = %other, "store failure");
                ApiError::internal()
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body())).into_response();
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}
