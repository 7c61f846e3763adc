//! keyward's license domain, with no I/O: ids, key formats, license states and transitions, the
//! validation decision, roles, signed answers and offline license files.

pub mod activation;
pub mod api;
pub mod ids;
pub mod key;
pub mod offline;
pub mod role;
pub mod seal;
pub mod signature;
pub mod status;
pub mod validation;
pub mod values;

pub use status::{Action, InvalidTransition, LicenseStatus};
pub use validation::{Refusal, ValidationCode};
