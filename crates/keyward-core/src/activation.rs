//! The rules for changing a license: activation, deactivation, assignment, edits, expiry, delete.

use crate::status::{transition, Action, InvalidTransition, LicenseStatus};
use crate::validation::{ActivationKind, ActivationRef, Refusal, ValidationCode};
use crate::values::{ActivationLimit, InvalidValue};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// What a generator's validity counts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ValidityBasis {
    Creation,
    Assignment,
    FirstActivation,
}

impl ValidityBasis {
    pub fn as_str(self) -> &'static str {
        match self {
            ValidityBasis::Creation => "creation",
            ValidityBasis::Assignment => "assignment",
            ValidityBasis::FirstActivation => "first_activation",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "creation" => Some(ValidityBasis::Creation),
            "assignment" => Some(ValidityBasis::Assignment),
            "first_activation" => Some(ValidityBasis::FirstActivation),
            _ => None,
        }
    }
}

/// How long a license lasts, and from when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    pub days: i64,
    pub basis: ValidityBasis,
}

impl Validity {
    pub const MAX_DAYS: i64 = 36_500;

    pub fn parse(days: i64, basis: ValidityBasis) -> Result<Self, InvalidValue> {
        if (1..=Self::MAX_DAYS).contains(&days) {
            Ok(Validity { days, basis })
        } else {
            Err(InvalidValue(format!("must be between 1 and {} days", Self::MAX_DAYS)))
        }
    }

    /// The expiry that `event` (creation, assignment or first activation) at `at` sets, if it is
    /// this validity's basis and no expiry is set yet.
    pub fn expiry_on(
        self,
        event: ValidityBasis,
        at: DateTime<Utc>,
        current: Option<DateTime<Utc>>,
    ) -> Option<DateTime<Utc>> {
        match current {
            Some(expiry) => Some(expiry),
            None if event == self.basis => Some(at + Duration::days(self.days)),
            None => None,
        }
    }
}

/// An expiry given by the vendor must lie in the future.
pub fn check_new_expiry(expires_at: DateTime<Utc>, now: DateTime<Utc>) -> Result<DateTime<Utc>, InvalidValue> {
    if expires_at <= now {
        Err(InvalidValue("must be in the future".into()))
    } else {
        Ok(expires_at)
    }
}

/// What an `activate` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActivationDecision {
    /// The device is already activated: a no-op that answers `200`.
    AlreadyActivated { index: usize },
    /// A new activation; the license moves to `status` (active), `first` when it never had one.
    Activate { status: LicenseStatus, first: bool },
}

/// May this device or site activate? `status` is the license's effective status at `now`.
pub fn decide_activation(
    status: LicenseStatus,
    limit: ActivationLimit,
    activations: &[ActivationRef<'_>],
    kind: ActivationKind,
    fingerprint: &str,
    ever_activated: bool,
) -> Result<ActivationDecision, Refusal> {
    if let Some(code) = ValidationCode::for_status(status) {
        return Err(Refusal::State(code));
    }
    if let Some(index) = activations.iter().position(|a| a.kind == kind && a.fingerprint == fingerprint) {
        return Ok(ActivationDecision::AlreadyActivated { index });
    }
    if !limit.has_room_for_another(activations.len()) {
        return Err(Refusal::ActivationLimitExceeded);
    }
    let status = transition(status, Action::Activate)?;
    Ok(ActivationDecision::Activate { status, first: !ever_activated })
}

/// Which activation a `deactivate` frees.
pub fn decide_deactivation(activations: &[ActivationRef<'_>], fingerprint: &str) -> Result<usize, Refusal> {
    activations.iter().position(|a| a.fingerprint == fingerprint).ok_or(Refusal::NotActivated)
}

/// A license is deleted only if it never had an activation, or when the vendor forces it.
pub fn decide_delete(ever_activated: bool, force: bool) -> Result<(), Refusal> {
    if ever_activated && !force {
        Err(Refusal::WasActivated)
    } else {
        Ok(())
    }
}

/// Edits are refused on a revoked license (final) and on an expired one (issue a new license).
pub fn check_editable(status: LicenseStatus) -> Result<(), Refusal> {
    match status {
        LicenseStatus::Revoked => Err(Refusal::State(ValidationCode::LicenseRevoked)),
        LicenseStatus::Expired => Err(Refusal::State(ValidationCode::LicenseExpired)),
        _ => Ok(()),
    }
}

/// The state a license is in after its customer is set to `customer` (an edit or an assign).
pub fn status_after_customer_change(status: LicenseStatus, has_customer: bool) -> Result<LicenseStatus, Refusal> {
    check_editable(status)?;
    match (status, has_customer) {
        (LicenseStatus::Available, true) => Ok(transition(status, Action::Assign)?),
        (LicenseStatus::Available, false) => Ok(status),
        // Taking the customer away would move the license backward to available.
        (_, false) => Err(InvalidTransition { from: status, to: LicenseStatus::Available }.into()),
        (_, true) => Ok(status),
    }
}

/// A new activation limit may not fall below the devices already activated.
pub fn check_limit_change(limit: ActivationLimit, activation_count: i64) -> Result<ActivationLimit, Refusal> {
    if limit.get() != -1 && limit.get() < activation_count {
        Err(Refusal::Invalid(format!(
            "activation_limit cannot be below the {activation_count} devices already activated; deactivate some first"
        )))
    } else {
        Ok(limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(n: i64) -> ActivationLimit {
        ActivationLimit::parse(n).unwrap()
    }

    #[test]
    fn activation_respects_state_limit_and_repeats() {
        let one = [ActivationRef { kind: ActivationKind::Device, fingerprint: "a" }];
        assert_eq!(
            decide_activation(LicenseStatus::Assigned, limit(1), &[], ActivationKind::Device, "a", false),
            Ok(ActivationDecision::Activate { status: LicenseStatus::Active, first: true })
        );
        assert_eq!(
            decide_activation(LicenseStatus::Active, limit(1), &one, ActivationKind::Device, "a", true),
            Ok(ActivationDecision::AlreadyActivated { index: 0 })
        );
        assert_eq!(
            decide_activation(LicenseStatus::Active, limit(1), &one, ActivationKind::Device, "b", true),
            Err(Refusal::ActivationLimitExceeded)
        );
        assert_eq!(
            decide_activation(LicenseStatus::Available, limit(1), &[], ActivationKind::Device, "a", false),
            Err(Refusal::State(ValidationCode::LicenseNotAssigned))
        );
        assert_eq!(
            decide_activation(LicenseStatus::Suspended, limit(5), &one, ActivationKind::Device, "a", true),
            Err(Refusal::State(ValidationCode::LicenseSuspended))
        );
        assert!(decide_activation(
            LicenseStatus::Active,
            ActivationLimit::UNLIMITED,
            &one,
            ActivationKind::Device,
            "b",
            true
        )
        .is_ok());
    }

    #[test]
    fn customers_assign_but_never_unassign() {
        assert_eq!(status_after_customer_change(LicenseStatus::Available, true), Ok(LicenseStatus::Assigned));
        assert_eq!(status_after_customer_change(LicenseStatus::Active, true), Ok(LicenseStatus::Active));
        assert!(status_after_customer_change(LicenseStatus::Assigned, false).is_err());
        assert!(status_after_customer_change(LicenseStatus::Revoked, true).is_err());
    }

    #[test]
    fn validity_sets_expiry_once_on_its_basis() {
        let now = Utc::now();
        let validity = Validity::parse(30, ValidityBasis::FirstActivation).unwrap();
        assert_eq!(validity.expiry_on(ValidityBasis::Creation, now, None), None);
        assert_eq!(validity.expiry_on(ValidityBasis::FirstActivation, now, None), Some(now + Duration::days(30)));
        assert_eq!(validity.expiry_on(ValidityBasis::FirstActivation, now, Some(now)), Some(now));
        assert!(Validity::parse(0, ValidityBasis::Creation).is_err());
        assert!(decide_delete(true, false).is_err());
        assert!(decide_delete(true, true).is_ok());
        assert!(check_new_expiry(now - Duration::seconds(1), now).is_err());
        assert!(check_limit_change(limit(1), 2).is_err());
        assert!(check_limit_change(ActivationLimit::UNLIMITED, 2).is_ok());
    }
}
