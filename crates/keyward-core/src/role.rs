//! Roles of portal users and API tokens, and what each may do.

use serde::{Deserialize, Serialize};
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Owner,
    Admin,
    LicenseManager,
    Support,
    ReadOnly,
}

/// What an admin request needs to be allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Read any record of the environment.
    Read,
    /// Create and change products, generators, customers, licenses and contracts.
    ManageLicensing,
    /// Assign a license to a customer.
    AssignLicense,
    /// See a license's offline file and code samples.
    PreviewLicense,
    /// Free one device's slot.
    DeactivateDevice,
    /// Settings and webhooks.
    ManageEnvironment,
    /// API tokens and signing keys.
    ManageTokens,
    ManageUsers,
}

impl Role {
    pub const ALL: [Role; 5] = [Role::Owner, Role::Admin, Role::LicenseManager, Role::Support, Role::ReadOnly];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::LicenseManager => "license_manager",
            Role::Support => "support",
            Role::ReadOnly => "read_only",
        }
    }

    pub fn allows(self, permission: Permission) -> bool {
        use Permission as P;
        match self {
            Role::Owner => true,
            Role::Admin => !matches!(permission, P::ManageUsers | P::ManageTokens),
            Role::LicenseManager => matches!(
                permission,
                P::Read | P::ManageLicensing | P::AssignLicense | P::PreviewLicense | P::DeactivateDevice
            ),
            Role::Support => matches!(permission, P::Read | P::AssignLicense | P::PreviewLicense | P::DeactivateDevice),
            Role::ReadOnly => permission == P::Read,
        }
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|role| role.as_str() == s)
            .ok_or_else(|| format!("unknown role `{s}` (owner, admin, license_manager, support, read_only)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_narrow_from_owner_to_read_only() {
        assert!(Role::Owner.allows(Permission::ManageTokens));
        assert!(!Role::Admin.allows(Permission::ManageUsers));
        assert!(Role::Admin.allows(Permission::ManageEnvironment));
        assert!(Role::LicenseManager.allows(Permission::ManageLicensing));
        assert!(!Role::LicenseManager.allows(Permission::ManageEnvironment));
        assert!(Role::Support.allows(Permission::AssignLicense));
        assert!(!Role::Support.allows(Permission::ManageLicensing));
        assert!(Role::ReadOnly.allows(Permission::Read));
        assert!(!Role::ReadOnly.allows(Permission::DeactivateDevice));
    }
}
