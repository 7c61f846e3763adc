//! The validation decision: what `validate` answers for a license, here and now.

use crate::status::{effective_status, InvalidTransition, LicenseStatus};
use crate::values::ActivationLimit;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// Every code the license API answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ValidationCode {
    Valid,
    LicenseNotFound,
    LicenseNotAssigned,
    LicenseInactive,
    LicenseSuspended,
    LicenseExpired,
    LicenseRevoked,
    ProductMismatch,
    NotActivated,
    DomainLimitReached,
    ActivationLimitExceeded,
}

impl ValidationCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ValidationCode::Valid => "VALID",
            ValidationCode::LicenseNotFound => "LICENSE_NOT_FOUND",
            ValidationCode::LicenseNotAssigned => "LICENSE_NOT_ASSIGNED",
            ValidationCode::LicenseInactive => "LICENSE_INACTIVE",
            ValidationCode::LicenseSuspended => "LICENSE_SUSPENDED",
            ValidationCode::LicenseExpired => "LICENSE_EXPIRED",
            ValidationCode::LicenseRevoked => "LICENSE_REVOKED",
            ValidationCode::ProductMismatch => "PRODUCT_MISMATCH",
            ValidationCode::NotActivated => "NOT_ACTIVATED",
            ValidationCode::DomainLimitReached => "DOMAIN_LIMIT_REACHED",
            ValidationCode::ActivationLimitExceeded => "ACTIVATION_LIMIT_EXCEEDED",
        }
    }

    /// A sentence for the `detail` field.
    pub fn detail(self) -> &'static str {
        match self {
            ValidationCode::Valid => "the license is valid",
            ValidationCode::LicenseNotFound => "no license has this key",
            ValidationCode::LicenseNotAssigned => "the license is not assigned to a customer yet",
            ValidationCode::LicenseInactive => "the license is inactive",
            ValidationCode::LicenseSuspended => "the license is suspended",
            ValidationCode::LicenseExpired => "the license has expired",
            ValidationCode::LicenseRevoked => "the license has been revoked",
            ValidationCode::ProductMismatch => "the license is for another product",
            ValidationCode::NotActivated => "this device is not activated for the license",
            ValidationCode::DomainLimitReached => "the license has no free slot for another domain",
            ValidationCode::ActivationLimitExceeded => "the license has reached its activation limit",
        }
    }

    /// The code a license in `status` is refused with, or `None` when the state is in good standing.
    pub fn for_status(status: LicenseStatus) -> Option<ValidationCode> {
        match status {
            LicenseStatus::Assigned | LicenseStatus::Active => None,
            LicenseStatus::Available => Some(ValidationCode::LicenseNotAssigned),
            LicenseStatus::Inactive => Some(ValidationCode::LicenseInactive),
            LicenseStatus::Suspended => Some(ValidationCode::LicenseSuspended),
            LicenseStatus::Expired => Some(ValidationCode::LicenseExpired),
            LicenseStatus::Revoked => Some(ValidationCode::LicenseRevoked),
        }
    }
}

/// Why a change to a license was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(transparent)]
    Transition(#[from] InvalidTransition),
    /// The license's state refuses the request (activate on a suspended license, …).
    #[error("{}", .0.detail())]
    State(ValidationCode),
    #[error("the license has reached its activation limit")]
    ActivationLimitExceeded,
    #[error("this device is not activated for the license")]
    NotActivated,
    #[error("the license was activated; revoke it, or delete with force=true")]
    WasActivated,
    #[error("{0}")]
    Invalid(String),
}

/// One existing activation, as the decision needs to see it.
#[derive(Debug, Clone, Copy)]
pub struct ActivationRef<'a> {
    pub kind: ActivationKind,
    pub fingerprint: &'a str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActivationKind {
    Device,
    Domain,
}

impl ActivationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActivationKind::Device => "device",
            ActivationKind::Domain => "domain",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "device" => Some(ActivationKind::Device),
            "domain" => Some(ActivationKind::Domain),
            _ => None,
        }
    }
}

/// The facts of one license that a validation looks at.
#[derive(Debug, Clone, Copy)]
pub struct LicenseFacts<'a> {
    pub status: LicenseStatus,
    pub expires_at: Option<DateTime<Utc>>,
    pub product_id: &'a str,
    pub activation_limit: ActivationLimit,
}

/// What the caller asked: `validate {key, fingerprint?, domain?, product?}`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ValidationRequest<'a> {
    pub fingerprint: Option<&'a str>,
    pub domain: Option<&'a str>,
    pub product: Option<&'a str>,
}

/// The decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Answer with this code; `activation` is the index of the matching activation, if any.
    Answer { code: ValidationCode, status: LicenseStatus, in_grace: bool, activation: Option<usize> },
    /// A new domain with a free slot: activate it as a site, then answer `VALID`.
    ActivateDomain { status: LicenseStatus, in_grace: bool },
}

impl Verdict {
    pub fn code(&self) -> ValidationCode {
        match self {
            Verdict::Answer { code, .. } => *code,
            Verdict::ActivateDomain { .. } => ValidationCode::Valid,
        }
    }
}

/// Is this license good, for this device or site and product, at `now`?
pub fn decide(
    license: &LicenseFacts<'_>,
    activations: &[ActivationRef<'_>],
    request: &ValidationRequest<'_>,
    grace: Duration,
    now: DateTime<Utc>,
) -> Verdict {
    let (status, in_grace) = effective_status(license.status, license.expires_at, grace, now);
    let answer = |code, activation| Verdict::Answer { code, status, in_grace, activation };
    if let Some(code) = ValidationCode::for_status(status) {
        return answer(code, None);
    }
    if request.product.is_some_and(|product| product != license.product_id) {
        return answer(ValidationCode::ProductMismatch, None);
    }
    if let Some(fingerprint) = request.fingerprint {
        let found = activations.iter().position(|a| a.kind == ActivationKind::Device && a.fingerprint == fingerprint);
        return match found {
            Some(index) => answer(ValidationCode::Valid, Some(index)),
            None => answer(ValidationCode::NotActivated, None),
        };
    }
    if let Some(domain) = request.domain {
        if let Some(index) =
            activations.iter().position(|a| a.kind == ActivationKind::Domain && a.fingerprint == domain)
        {
            return answer(ValidationCode::Valid, Some(index));
        }
        return if license.activation_limit.has_room_for_another(activations.len()) {
            Verdict::ActivateDomain { status, in_grace }
        } else {
            answer(ValidationCode::DomainLimitReached, None)
        };
    }
    answer(ValidationCode::Valid, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(status: LicenseStatus, limit: i64) -> LicenseFacts<'static> {
        LicenseFacts {
            status,
            expires_at: None,
            product_id: "prod_a",
            activation_limit: ActivationLimit::parse(limit).unwrap(),
        }
    }

    #[test]
    fn codes_for_each_state() {
        let now = Utc::now();
        let request = ValidationRequest::default();
        for (status, code) in [
            (LicenseStatus::Available, ValidationCode::LicenseNotAssigned),
            (LicenseStatus::Assigned, ValidationCode::Valid),
            (LicenseStatus::Active, ValidationCode::Valid),
            (LicenseStatus::Inactive, ValidationCode::LicenseInactive),
            (LicenseStatus::Suspended, ValidationCode::LicenseSuspended),
            (LicenseStatus::Expired, ValidationCode::LicenseExpired),
            (LicenseStatus::Revoked, ValidationCode::LicenseRevoked),
        ] {
            assert_eq!(decide(&facts(status, 1), &[], &request, Duration::zero(), now).code(), code);
        }
    }

    #[test]
    fn fingerprints_domains_and_products() {
        let now = Utc::now();
        let license = facts(LicenseStatus::Active, 2);
        let device = [ActivationRef { kind: ActivationKind::Device, fingerprint: "fp1" }];
        let ask = |fingerprint, domain, product| ValidationRequest { fingerprint, domain, product };
        let grace = Duration::zero();
        assert_eq!(decide(&license, &device, &ask(Some("fp1"), None, None), grace, now).code(), ValidationCode::Valid);
        assert_eq!(
            decide(&license, &device, &ask(Some("fp2"), None, None), grace, now).code(),
            ValidationCode::NotActivated
        );
        assert_eq!(
            decide(&license, &device, &ask(None, None, Some("prod_b")), grace, now).code(),
            ValidationCode::ProductMismatch
        );
        assert!(matches!(
            decide(&license, &device, &ask(None, Some("a.com"), None), grace, now),
            Verdict::ActivateDomain { .. }
        ));
        let full = [device[0], ActivationRef { kind: ActivationKind::Domain, fingerprint: "a.com" }];
        assert_eq!(decide(&license, &full, &ask(None, Some("a.com"), None), grace, now).code(), ValidationCode::Valid);
        assert_eq!(
            decide(&license, &full, &ask(None, Some("b.com"), None), grace, now).code(),
            ValidationCode::DomainLimitReached
        );
    }

    #[test]
    fn grace_keeps_a_license_valid_and_says_so() {
        let now = Utc::now();
        let mut license = facts(LicenseStatus::Active, 1);
        license.expires_at = Some(now - Duration::hours(1));
        let verdict = decide(&license, &[], &ValidationRequest::default(), Duration::days(1), now);
        assert_eq!(
            verdict,
            Verdict::Answer {
                code: ValidationCode::Valid,
                status: LicenseStatus::Active,
                in_grace: true,
                activation: None
            }
        );
        let verdict = decide(&license, &[], &ValidationRequest::default(), Duration::zero(), now);
        assert_eq!(verdict.code(), ValidationCode::LicenseExpired);
    }
}
