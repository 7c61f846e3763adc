//! License states and the only moves between them.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LicenseStatus {
    Available,
    Assigned,
    Active,
    Inactive,
    Suspended,
    Expired,
    Revoked,
}

impl LicenseStatus {
    pub const ALL: [LicenseStatus; 7] = [
        LicenseStatus::Available,
        LicenseStatus::Assigned,
        LicenseStatus::Active,
        LicenseStatus::Inactive,
        LicenseStatus::Suspended,
        LicenseStatus::Expired,
        LicenseStatus::Revoked,
    ];

    /// The states that time can move to `expired`.
    pub const EXPIRABLE: [LicenseStatus; 4] =
        [LicenseStatus::Assigned, LicenseStatus::Active, LicenseStatus::Inactive, LicenseStatus::Suspended];

    pub fn as_str(self) -> &'static str {
        match self {
            LicenseStatus::Available => "available",
            LicenseStatus::Assigned => "assigned",
            LicenseStatus::Active => "active",
            LicenseStatus::Inactive => "inactive",
            LicenseStatus::Suspended => "suspended",
            LicenseStatus::Expired => "expired",
            LicenseStatus::Revoked => "revoked",
        }
    }

    pub fn is_expirable(self) -> bool {
        Self::EXPIRABLE.contains(&self)
    }

    /// Only assigned and active licenses take new activations.
    pub fn can_activate(self) -> bool {
        matches!(self, LicenseStatus::Assigned | LicenseStatus::Active)
    }
}

impl fmt::Display for LicenseStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for LicenseStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|status| status.as_str() == s).ok_or_else(|| format!("unknown license status `{s}`"))
    }
}

/// What can be done to a license; each names the state it leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Assign,
    Activate,
    Suspend,
    Unsuspend,
    Inactivate,
    Reactivate,
    Expire,
    Revoke,
}

impl Action {
    pub const ALL: [Action; 8] = [
        Action::Assign,
        Action::Activate,
        Action::Suspend,
        Action::Unsuspend,
        Action::Inactivate,
        Action::Reactivate,
        Action::Expire,
        Action::Revoke,
    ];

    pub fn target(self) -> LicenseStatus {
        match self {
            Action::Assign => LicenseStatus::Assigned,
            Action::Activate | Action::Unsuspend | Action::Reactivate => LicenseStatus::Active,
            Action::Suspend => LicenseStatus::Suspended,
            Action::Inactivate => LicenseStatus::Inactive,
            Action::Expire => LicenseStatus::Expired,
            Action::Revoke => LicenseStatus::Revoked,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Assign => "assign",
            Action::Activate => "activate",
            Action::Suspend => "suspend",
            Action::Unsuspend => "unsuspend",
            Action::Inactivate => "inactivate",
            Action::Reactivate => "reactivate",
            Action::Expire => "expire",
            Action::Revoke => "revoke",
        }
    }
}

impl FromStr for Action {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|action| action.as_str() == s).ok_or_else(|| format!("unknown action `{s}`"))
    }
}

/// A move the state machine does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a license cannot move from {from} to {to}")]
pub struct InvalidTransition {
    pub from: LicenseStatus,
    pub to: LicenseStatus,
}

/// The state `action` leads to from `from`, or the refusal. The one place the graph lives.
pub fn transition(from: LicenseStatus, action: Action) -> Result<LicenseStatus, InvalidTransition> {
    use Action as A;
    use LicenseStatus as S;
    let to = action.target();
    let allowed = match action {
        A::Assign => from == S::Available,
        // A second device on an active license is not a move, but it is allowed.
        A::Activate => matches!(from, S::Assigned | S::Active),
        A::Suspend | A::Inactivate => from == S::Active,
        A::Unsuspend => from == S::Suspended,
        A::Reactivate => from == S::Inactive,
        A::Expire => from.is_expirable(),
        A::Revoke => from != S::Revoked,
    };
    if allowed {
        Ok(to)
    } else {
        Err(InvalidTransition { from, to })
    }
}

/// How a stored license reads at `now`: past expiry plus grace it is expired at once, before
/// any sweep writes it; past expiry but inside grace it keeps its state, `in_grace`.
pub fn effective_status(
    stored: LicenseStatus,
    expires_at: Option<DateTime<Utc>>,
    grace: Duration,
    now: DateTime<Utc>,
) -> (LicenseStatus, bool) {
    match expires_at {
        Some(expiry) if stored.is_expirable() && now >= expiry => {
            if now >= expiry + grace {
                (LicenseStatus::Expired, false)
            } else {
                (stored, true)
            }
        }
        _ => (stored, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use LicenseStatus as S;

    /// The table of DESIGN.md ("from, to, how"), written out once more by hand, by action.
    fn designed(from: S, action: Action) -> Option<S> {
        use Action as A;
        match (from, action) {
            (S::Available, A::Assign) => Some(S::Assigned),
            (S::Assigned, A::Activate) => Some(S::Active),
            // further devices on an active license are allowed and change nothing
            (S::Active, A::Activate) => Some(S::Active),
            (S::Active, A::Suspend) => Some(S::Suspended),
            (S::Suspended, A::Unsuspend) => Some(S::Active),
            (S::Active, A::Inactivate) => Some(S::Inactive),
            (S::Inactive, A::Reactivate) => Some(S::Active),
            (S::Assigned | S::Active | S::Inactive | S::Suspended, A::Expire) => Some(S::Expired),
            (S::Available | S::Assigned | S::Active | S::Inactive | S::Suspended | S::Expired, A::Revoke) => {
                Some(S::Revoked)
            }
            _ => None,
        }
    }

    #[test]
    fn every_pair_matches_the_design_table() {
        for from in S::ALL {
            for action in Action::ALL {
                let expected = designed(from, action).ok_or(InvalidTransition { from, to: action.target() });
                assert_eq!(transition(from, action), expected, "{from} by {action:?}");
            }
        }
    }

    #[test]
    fn revoked_is_final() {
        for action in Action::ALL {
            assert!(transition(S::Revoked, action).is_err());
        }
    }

    #[test]
    fn refusals_name_from_and_to() {
        let err = transition(S::Available, Action::Suspend).unwrap_err();
        assert_eq!((err.from, err.to), (S::Available, S::Suspended));
        assert_eq!(err.to_string(), "a license cannot move from available to suspended");
    }

    #[test]
    fn expiry_and_grace() {
        let now = Utc::now();
        let day = Duration::days(1);
        assert_eq!(effective_status(S::Active, Some(now - day), Duration::zero(), now), (S::Expired, false));
        assert_eq!(effective_status(S::Active, Some(now - day), day * 2, now), (S::Active, true));
        assert_eq!(effective_status(S::Active, Some(now + day), Duration::zero(), now), (S::Active, false));
        assert_eq!(effective_status(S::Revoked, Some(now - day), Duration::zero(), now), (S::Revoked, false));
        assert_eq!(effective_status(S::Available, Some(now - day), Duration::zero(), now), (S::Available, false));
        assert_eq!(effective_status(S::Active, None, Duration::zero(), now), (S::Active, false));
    }

    proptest! {
        #[test]
        fn no_sequence_of_actions_leaves_the_graph(actions in proptest::collection::vec(0usize..Action::ALL.len(), 0..40)) {
            let mut status = S::Available;
            for index in actions {
                let action = Action::ALL[index];
                let was_revoked = status == S::Revoked;
                match transition(status, action) {
                    Ok(next) => {
                        prop_assert_eq!(designed(status, action), Some(next));
                        prop_assert!(!was_revoked, "nothing leaves revoked");
                        status = next;
                    }
                    Err(err) => {
                        prop_assert_eq!(designed(status, action), None);
                        prop_assert_eq!((err.from, err.to), (status, action.target()));
                    }
                }
            }
        }
    }
}
