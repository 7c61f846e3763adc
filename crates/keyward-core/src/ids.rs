//! Record ids: a readable prefix and 128 random bits, e.g. `lic_5b0e…`.

use rand::RngCore;

/// The kinds of record that get an id, each with its prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    Product,
    Generator,
    Customer,
    License,
    Activation,
    Token,
    AuditEvent,
    Job,
}

impl IdKind {
    pub fn prefix(self) -> &'static str {
        match self {
            IdKind::Product => "prod",
            IdKind::Generator => "gen",
            IdKind::Customer => "cus",
            IdKind::License => "lic",
            IdKind::Activation => "act",
            IdKind::Token => "tok",
            IdKind::AuditEvent => "evt",
            IdKind::Job => "job",
        }
    }
}

/// A fresh id of this kind.
pub fn new_id(kind: IdKind) -> String {
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    let mut id = String::with_capacity(kind.prefix().len() + 33);
    id.push_str(kind.prefix());
    id.push('_');
    for b in bytes {
        id.push_str(&format!("{b:02x}"));
    }
    id
}

/// True when `s` looks like an id of this kind (used to tell an id from a key in `{id}` paths).
pub fn is_id(kind: IdKind, s: &str) -> bool {
    s.strip_prefix(kind.prefix())
        .and_then(|rest| rest.strip_prefix('_'))
        .is_some_and(|hex| hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_their_prefix_and_are_recognised() {
        let id = new_id(IdKind::License);
        assert!(id.starts_with("lic_"));
        assert!(is_id(IdKind::License, &id));
        assert!(!is_id(IdKind::Product, &id));
        assert_ne!(id, new_id(IdKind::License));
    }
}
